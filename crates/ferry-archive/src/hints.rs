//! Hints as britney reads them, one a line, `#` comments:
//! `block SRC…`, `unblock SRC/VERSION…`, `force SRC/VERSION…`,
//! `force-hint SRC/VERSION…`, `remove SRC/VERSION…`, `easy SRC/VERSION SRC/VERSION…`; a line
//! `finished` ends the file, as it does for britney. Item forms ferry does
//! not migrate yet (an architecture's `SRC/VERSION/ARCH`, a removal
//! `-SRC/VERSION`) are errors at their column, never read as something
//! else.

use std::path::Path;

use crate::lines::{lines, read, Word};
use crate::ArchiveError;

/// One source named by a hint, with the version it is meant for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HintItem {
    pub source: String,
    pub version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hint {
    /// Never migrate these sources.
    Block(Vec<HintItem>),
    /// Lift a block for this version.
    Unblock(Vec<HintItem>),
    /// britney's `force`: this version's policy reasons (blocks, missing
    /// builds, its own uninstallability) are overridden; it still migrates
    /// only if it breaks nothing in the target.
    Force(Vec<HintItem>),
    /// britney's `force-hint`: migrate this version whatever it breaks.
    ForceHint(Vec<HintItem>),
    /// Take the source and its binaries out of the target.
    Remove(Vec<HintItem>),
    /// Try these candidates together, as one.
    Easy(Vec<HintItem>),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hints {
    pub hints: Vec<Hint>,
}

impl Hints {
    pub fn parse(text: &str, path: &Path) -> Result<Hints, ArchiveError> {
        let mut hints = Vec::new();
        for line in lines(text) {
            let error = |column: usize, message: String| ArchiveError::Hints {
                path: path.to_path_buf(),
                line: line.number,
                column,
                message,
            };
            let (verb, items) = match line.words.split_first() {
                Some((verb, items)) => (verb.text, items),
                None => continue,
            };
            if verb == "finished" {
                break;
            }
            let mut parsed = Vec::new();
            for &Word { column, text: word } in items {
                let (source, version) = match word.split_once('/') {
                    Some((s, v)) => (s, Some(v)),
                    None => (word, None),
                };
                if source.starts_with('-') {
                    return Err(error(
                        column,
                        format!("`{word}`: removal items (-SOURCE/VERSION) are not supported; use `remove SOURCE/VERSION`"),
                    ));
                }
                if version.is_some_and(|v| v.contains('/')) {
                    return Err(error(
                        column,
                        format!("`{word}`: architecture items (SOURCE/VERSION/ARCH) are not supported; name the whole source"),
                    ));
                }
                if source.is_empty() || version.is_some_and(str::is_empty) {
                    return Err(error(
                        column,
                        format!("`{word}`: expected SOURCE or SOURCE/VERSION"),
                    ));
                }
                parsed.push(HintItem {
                    source: source.to_string(),
                    version: version.map(str::to_string),
                });
            }
            if parsed.is_empty() {
                return Err(error(
                    line.words[0].column,
                    format!("`{verb}` names no source"),
                ));
            }
            let needs_version = |parsed: &[HintItem]| -> Result<(), ArchiveError> {
                match items.iter().zip(parsed).find(|(_, p)| p.version.is_none()) {
                    Some((&Word { column, text: word }, _)) => Err(error(
                        column,
                        format!("`{verb}` needs SOURCE/VERSION, not `{word}`"),
                    )),
                    None => Ok(()),
                }
            };
            hints.push(match verb {
                "block" => Hint::Block(parsed),
                "unblock" => {
                    needs_version(&parsed)?;
                    Hint::Unblock(parsed)
                }
                "force" => {
                    needs_version(&parsed)?;
                    Hint::Force(parsed)
                }
                "force-hint" => {
                    needs_version(&parsed)?;
                    Hint::ForceHint(parsed)
                }
                "remove" => {
                    needs_version(&parsed)?;
                    Hint::Remove(parsed)
                }
                "easy" => {
                    needs_version(&parsed)?;
                    Hint::Easy(parsed)
                }
                other => {
                    return Err(error(
                        line.words[0].column,
                        format!(
                        "unknown hint `{other}`; expected block, unblock, force, force-hint, remove or easy"
                    ),
                    ))
                }
            });
        }
        Ok(Hints { hints })
    }

    pub fn load(path: &Path) -> Result<Hints, ArchiveError> {
        Hints::parse(&read(path)?, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_britneys_hints_and_points_at_mistakes() {
        let hints = Hints::parse(
            "# release team\nblock gcc-14\nunblock jpegtools/2.0\neasy jpegtools/2.0 imageviewer/8.4ubuntu1\nremove oldlib/1.0 # gone\nforce x/1\n",
            Path::new("hints"),
        )
        .unwrap();
        assert_eq!(hints.hints.len(), 5);
        assert!(
            matches!(&hints.hints[2], Hint::Easy(items) if items.len() == 2 && items[1].version.as_deref() == Some("8.4ubuntu1"))
        );
        match Hints::parse("unblock jpegtools\n", Path::new("h")) {
            Err(ArchiveError::Hints {
                line: 1, column: 9, ..
            }) => {}
            other => panic!("{other:?}"),
        }
        match Hints::parse("ok\n", Path::new("h")) {
            Err(ArchiveError::Hints {
                line: 1, column: 1, ..
            }) => {}
            other => panic!("{other:?}"),
        }
        assert!(Hints::parse("urgent foo/1\n", Path::new("h")).is_err());
        assert!(Hints::parse("force foo/\n", Path::new("h")).is_err());
    }

    #[test]
    fn item_forms_not_migrated_are_refused_where_they_stand() {
        for (text, column, says) in [
            ("unblock foo/1.0/amd64\n", 9, "architecture items"),
            ("block bar -foo/1.0\n", 11, "removal items"),
        ] {
            match Hints::parse(text, Path::new("h")) {
                Err(e @ ArchiveError::Hints { line: 1, .. }) => {
                    let ArchiveError::Hints { column: c, .. } = &e else {
                        unreachable!()
                    };
                    assert_eq!(*c, column, "{e}");
                    assert!(e.to_string().contains(says), "{e}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn finished_ends_the_file() {
        let hints = Hints::parse(
            "block a\nfinished\nthis is not a hint at all\n",
            Path::new("h"),
        )
        .unwrap();
        assert_eq!(hints.hints.len(), 1);
    }
}
