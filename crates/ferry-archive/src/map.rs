//! The name map of an organisation move: `old-name new-name` per line,
//! `#` comments, for packages the new repository ships under another name.

use std::collections::HashMap;
use std::path::Path;

use crate::ArchiveError;

/// Old binary name → the name of its counterpart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameMap {
    names: HashMap<String, String>,
}

fn valid_name(name: &str) -> bool {
    name.len() >= 2
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b))
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
}

impl NameMap {
    /// Parses a map's text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<NameMap, ArchiveError> {
        let mut names = HashMap::new();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("");
            let words: Vec<(usize, &str)> = line
                .split_whitespace()
                .map(|w| (w.as_ptr() as usize - raw.as_ptr() as usize + 1, w))
                .collect();
            let error = |column: usize, message: String| ArchiveError::Map {
                path: path.to_path_buf(),
                line: index + 1,
                column,
                message,
            };
            match words.as_slice() {
                [] => {}
                [(c1, old), (c2, new)] => {
                    for (column, name) in [(c1, old), (c2, new)] {
                        if !valid_name(name) {
                            return Err(error(
                                *column,
                                format!("`{name}` is not a Debian package name"),
                            ));
                        }
                    }
                    if names.insert(old.to_string(), new.to_string()).is_some() {
                        return Err(error(*c1, format!("`{old}` is mapped twice")));
                    }
                }
                _ => {
                    return Err(error(
                        words.first().map_or(1, |w| w.0),
                        "expected `old-name new-name`".into(),
                    ))
                }
            }
        }
        Ok(NameMap { names })
    }

    /// Reads a map file.
    pub fn load(path: &Path) -> Result<NameMap, ArchiveError> {
        let text = std::fs::read_to_string(path).map_err(|source| ArchiveError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        NameMap::parse(&text, path)
    }

    /// The counterpart's name of `old`.
    pub fn counterpart<'a>(&'a self, old: &'a str) -> &'a str {
        self.names.get(old).map_or(old, String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_names_and_points_at_mistakes() {
        let map = NameMap::parse(
            "# moves\nacme-daemon acme-core\n\n libfoo1  libfoo1t64 # abi\n",
            Path::new("m"),
        )
        .unwrap();
        assert_eq!(map.counterpart("acme-daemon"), "acme-core");
        assert_eq!(map.counterpart("libfoo1"), "libfoo1t64");
        assert_eq!(map.counterpart("other"), "other");
        match NameMap::parse("ok ok2\nbad name here\n", Path::new("m")) {
            Err(ArchiveError::Map {
                line: 2, column: 1, ..
            }) => {}
            other => panic!("{other:?}"),
        }
        match NameMap::parse("a1 B2\n", Path::new("m")) {
            Err(ArchiveError::Map {
                line: 1, column: 4, ..
            }) => {}
            other => panic!("{other:?}"),
        }
        assert!(NameMap::parse("a1 b2\na1 c3\n", Path::new("m")).is_err());
    }
}
