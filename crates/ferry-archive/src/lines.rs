//! The line-based files an archive's maintainers write by hand (hints,
//! name maps): one entry a line, `#` starts a comment, words separated by
//! blanks, each word with the 1-based column it starts at so that errors
//! can say `file:line:column`. What the words mean is each file's parser's.

use std::path::Path;

use crate::ArchiveError;

/// A word of a line and the column (1-based, in bytes) it starts at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Word<'a> {
    pub column: usize,
    pub text: &'a str,
}

/// A line that says something: its number (1-based) and its words, at
/// least one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line<'a> {
    pub number: usize,
    pub words: Vec<Word<'a>>,
}

/// The lines of `text` that hold words once comments are cut off; blank
/// and comment-only lines are skipped but still counted.
pub(crate) fn lines(text: &str) -> impl Iterator<Item = Line<'_>> {
    text.lines().enumerate().filter_map(|(index, raw)| {
        let content = raw.split('#').next().unwrap_or("");
        let words: Vec<Word<'_>> = content
            .split_whitespace()
            // A word is a sub-slice of `raw`: its offset is its column.
            .map(|w| Word {
                column: w.as_ptr() as usize - raw.as_ptr() as usize + 1,
                text: w,
            })
            .collect();
        (!words.is_empty()).then_some(Line {
            number: index + 1,
            words,
        })
    })
}

/// The text of the file at `path`, or an error naming it.
pub(crate) fn read(path: &Path) -> Result<String, ArchiveError> {
    std::fs::read_to_string(path).map_err(|source| ArchiveError::Read {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let err = read(Path::new("/nonexistent/ferry-hints")).unwrap_err();
        assert!(
            err.to_string().starts_with("/nonexistent/ferry-hints: "),
            "{err}"
        );
    }

    #[test]
    fn skips_blank_and_comment_lines_and_keeps_positions() {
        let got: Vec<Line<'_>> = lines("# head\n\n  a  bb # c d\n\t#x\ne#f\n\u{e9} g\n").collect();
        let word = |column, text| Word { column, text };
        assert_eq!(
            got,
            vec![
                Line {
                    number: 3,
                    words: vec![word(3, "a"), word(6, "bb")]
                },
                Line {
                    number: 5,
                    words: vec![word(1, "e")]
                },
                // Columns count bytes, as the errors always have.
                Line {
                    number: 6,
                    words: vec![word(1, "\u{e9}"), word(4, "g")]
                },
            ]
        );
    }
}
