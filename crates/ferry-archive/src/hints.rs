//! Hints as britney reads them, one a line, `#` comments:
//! `block SRC…`, `unblock SRC/VERSION…`, `force SRC/VERSION…`,
//! `force-hint SRC/VERSION…`, `remove SRC/VERSION…`, `age-days N
//! SRC/VERSION…`, `urgent SRC/VERSION…`, `ignore-rc-bugs BUG[,BUG…]
//! SRC/VERSION…`, `easy SRC/VERSION SRC/VERSION…`; a line
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
    /// The age these versions must reach, in days.
    AgeDays(u32, Vec<HintItem>),
    /// Let these versions in however young.
    Urgent(Vec<HintItem>),
    /// These RC bugs do not count against these versions.
    IgnoreRcBugs(Vec<String>, Vec<HintItem>),
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
            // Hints whose first word after the verb is an argument, not an item.
            let (argument, items) = match verb {
                "age-days" | "ignore-rc-bugs" => match items.split_first() {
                    Some((first, rest)) => (Some(*first), rest),
                    None => {
                        return Err(error(
                            line.words[0].column,
                            format!("`{verb}` needs an argument and SOURCE/VERSION…"),
                        ))
                    }
                },
                _ => (None, items),
            };
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
                "urgent" => {
                    needs_version(&parsed)?;
                    Hint::Urgent(parsed)
                }
                "age-days" => {
                    needs_version(&parsed)?;
                    let Word { column, text } = argument.ok_or_else(|| {
                        error(line.words[0].column, format!("`{verb}` needs an argument"))
                    })?;
                    let days = text.parse().map_err(|_| {
                        error(column, format!("`{text}`: `age-days` needs a number of days"))
                    })?;
                    Hint::AgeDays(days, parsed)
                }
                "ignore-rc-bugs" => {
                    needs_version(&parsed)?;
                    let Word { column, text } = argument.ok_or_else(|| {
                        error(line.words[0].column, format!("`{verb}` needs an argument"))
                    })?;
                    let bugs: Vec<String> = text
                        .split(',')
                        .filter(|b| !b.is_empty())
                        .map(str::to_string)
                        .collect();
                    if bugs.is_empty() || bugs.iter().any(|b| !b.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')) {
                        return Err(error(column, format!("`{text}`: expected BUG[,BUG…]")));
                    }
                    Hint::IgnoreRcBugs(bugs, parsed)
                }
                other => {
                    return Err(error(
                        line.words[0].column,
                        format!(
                        "unknown hint `{other}`; expected block, unblock, force, force-hint, remove, easy, age-days, urgent or ignore-rc-bugs"
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
        assert!(Hints::parse("block-all source\n", Path::new("h")).is_err());
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
    fn policy_hints_take_their_argument_first() {
        let hints = Hints::parse(
            "age-days 3 foo/1.0 bar/2\nurgent foo/1.0\nignore-rc-bugs 1234,5678 foo/1.0\n",
            Path::new("h"),
        )
        .unwrap();
        assert!(matches!(&hints.hints[0], Hint::AgeDays(3, items) if items.len() == 2));
        assert!(matches!(&hints.hints[1], Hint::Urgent(items) if items[0].source == "foo"));
        assert!(
            matches!(&hints.hints[2], Hint::IgnoreRcBugs(bugs, items) if bugs == &["1234", "5678"] && items.len() == 1)
        );
        for (text, column) in [
            ("age-days soon foo/1\n", 10),
            ("age-days 3\n", 1),
            ("age-days\n", 1),
            ("ignore-rc-bugs foo/1\n", 1),
            ("ignore-rc-bugs 1;2 foo/1\n", 16),
            ("urgent foo\n", 8),
        ] {
            match Hints::parse(text, Path::new("h")) {
                Err(ArchiveError::Hints { column: c, .. }) => assert_eq!(c, column, "{text}"),
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
