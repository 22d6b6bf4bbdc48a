//! The name map of an organisation move: `old-name new-name` per line,
//! `#` comments, for packages the new repository ships under another name.

use std::collections::HashMap;
use std::path::Path;

use crate::lines::{lines, read};
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
        for line in lines(text) {
            let error = |column: usize, message: String| ArchiveError::Map {
                path: path.to_path_buf(),
                line: line.number,
                column,
                message,
            };
            match line.words.as_slice() {
                [old, new] => {
                    for word in [old, new] {
                        let name = word.text;
                        if !valid_name(name) {
                            return Err(error(
                                word.column,
                                format!("`{name}` is not a Debian package name"),
                            ));
                        }
                    }
                    if names
                        .insert(old.text.to_string(), new.text.to_string())
                        .is_some()
                    {
                        return Err(error(old.column, format!("`{}` is mapped twice", old.text)));
                    }
                }
                _ => {
                    return Err(error(
                        line.words[0].column,
                        "expected `old-name new-name`".into(),
                    ))
                }
            }
        }
        Ok(NameMap { names })
    }

    /// Reads a map file.
    pub fn load(path: &Path) -> Result<NameMap, ArchiveError> {
        NameMap::parse(&read(path)?, path)
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
