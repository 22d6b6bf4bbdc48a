//! APT's sources: the one-line `.list` format and the deb822 `.sources`
//! format, read into typed [`SourceEntry`] values, rewritten losslessly, and
//! converted from one-line to deb822.
//!
//! A parsed file is a [`SourcesDocument`]: the original text plus where each
//! entry's tokens and fields lie in it, so a rewrite replaces exactly the
//! changed tokens and every other byte stays as it was. Reading follows apt's
//! own rules (apt-pkg/sourcelist.cc): which files of `sources.list.d` count,
//! `#` comments, `[options]`, flat repositories, `Enabled:`.
//!
//! Not for fetching indices or checking keys: this module reads and writes
//! text, and only [`read_system_sources`] and [`read_sources_file`] touch the
//! file system.

mod convert;
mod deb822;
mod entry;
mod oneline;
mod rewrite;
mod system;

use std::ops::Range;
use std::path::{Path, PathBuf};

pub use convert::ConvertError;
pub use entry::{Format, KeyRef, SignedBy, SourceEntry, SourceOption, SourceType};
pub use rewrite::{
    unified_diff, ComponentsChange, Edit, Matcher, RewriteError, Rewritten, SignedByChange,
    SuiteChange, UriChange,
};
pub use system::{
    classify_parts_file, read_system_sources, IgnoreReason, IgnoredFile, SourcesFile,
    SystemSources, SOURCES_LIST, SOURCES_PARTS,
};

/// A malformed sources text: where, what is wrong and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message} (expected {expected})")]
pub struct ParseError {
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    pub message: String,
    pub expected: &'static str,
}

impl From<crate::deb822::SyntaxError> for ParseError {
    fn from(error: crate::deb822::SyntaxError) -> Self {
        ParseError {
            line: error.line,
            column: error.column,
            message: error.message,
            expected: error.expected,
        }
    }
}

/// A sources file that could not be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum SourcesError {
    #[error("{path}:{}:{}: {}", error.line, error.column, error.message)]
    Parse {
        path: PathBuf,
        #[source]
        error: ParseError,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A sources file kept losslessly: its text, its entries as typed values and
/// where each entry lies in the text.
#[derive(Debug, Clone)]
pub struct SourcesDocument {
    format: Format,
    text: String,
    entries: Vec<SourceEntry>,
    layouts: Vec<EntryLayout>,
    /// The one-line format's lines in order (empty for deb822): what the
    /// conversion to deb822 walks to carry comments over.
    lines: Vec<oneline::ListLine>,
}

/// Where an entry's parts are in the document's text.
#[derive(Debug, Clone)]
enum EntryLayout {
    Line(oneline::LineLayout),
    Stanza(deb822::StanzaLayout),
}

/// Parses sources text in the given format. Total: any input gives a document
/// or an error, never a panic (the fuzz target calls this).
pub fn parse_sources_text(text: &str, format: Format) -> Result<SourcesDocument, ParseError> {
    SourcesDocument::parse(text.to_string(), format)
}

/// Parses the text of the file at `path` (in the format its name says),
/// naming the file in entries and errors. Reads nothing.
pub fn parse_sources_file(path: &Path, text: String) -> Result<SourcesDocument, SourcesError> {
    let mut document = SourcesDocument::parse(text, Format::for_path(path)).map_err(|error| {
        SourcesError::Parse {
            path: path.to_path_buf(),
            error,
        }
    })?;
    for entry in &mut document.entries {
        entry.path = path.to_path_buf();
    }
    Ok(document)
}

/// Reads and parses one sources file.
pub fn read_sources_file(path: &Path) -> Result<SourcesDocument, SourcesError> {
    let text = std::fs::read_to_string(path).map_err(|source| SourcesError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_sources_file(path, text)
}

impl SourcesDocument {
    pub fn parse(text: String, format: Format) -> Result<SourcesDocument, ParseError> {
        let (entries, layouts, lines) = match format {
            Format::OneLine => {
                let parsed = oneline::parse(&text)?;
                let layouts = parsed.layouts.into_iter().map(EntryLayout::Line).collect();
                (parsed.entries, layouts, parsed.lines)
            }
            Format::Deb822 => {
                let (entries, layouts) = deb822::parse(&text)?;
                (
                    entries,
                    layouts.into_iter().map(EntryLayout::Stanza).collect(),
                    Vec::new(),
                )
            }
        };
        Ok(SourcesDocument {
            format,
            text,
            entries,
            layouts,
            lines,
        })
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// The text exactly as read (or as rewritten).
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn entries(&self) -> &[SourceEntry] {
        &self.entries
    }

    /// The file the entries name (empty when parsed from bare text).
    fn path(&self) -> PathBuf {
        self.entries
            .first()
            .map(|e| e.path.clone())
            .unwrap_or_default()
    }

    /// Re-parses new text in this document's format, keeping its path.
    fn reparse(&self, text: String) -> Result<SourcesDocument, ParseError> {
        let path = self.path();
        let mut document = SourcesDocument::parse(text, self.format)?;
        for entry in &mut document.entries {
            entry.path.clone_from(&path);
        }
        Ok(document)
    }
}

/// 1-based line and character column of a byte offset in `text`.
pub(crate) fn position(text: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char_boundary(text, offset.min(text.len()));
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |n| n + 1);
    (
        before.bytes().filter(|&b| b == b'\n').count() + 1,
        before[line_start..].chars().count() + 1,
    )
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while offset > 0 && !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// An error at a byte offset of `text`.
pub(crate) fn error_at(
    text: &str,
    offset: usize,
    message: String,
    expected: &'static str,
) -> ParseError {
    let (line, column) = position(text, offset);
    ParseError {
        line,
        column,
        message,
        expected,
    }
}

/// One change to a document's text: replace `range` by `text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Replacement {
    pub range: Range<usize>,
    pub text: String,
}

impl Replacement {
    pub fn new(range: Range<usize>, text: impl Into<String>) -> Self {
        Replacement {
            range,
            text: text.into(),
        }
    }

    pub fn insert(at: usize, text: impl Into<String>) -> Self {
        Self::new(at..at, text)
    }

    pub fn delete(range: Range<usize>) -> Self {
        Self::new(range, "")
    }
}

/// Whitespace-separated tokens of `text[range]` with their absolute ranges.
pub(crate) fn tokens_in(text: &str, range: Range<usize>) -> Vec<(Range<usize>, &str)> {
    let mut tokens = Vec::new();
    let Some(slice) = text.get(range.clone()) else {
        return tokens;
    };
    let mut start = None;
    for (i, c) in slice.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                tokens.push((range.start + s..range.start + i, &slice[s..i]));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        tokens.push((range.start + s..range.end, &slice[s..]));
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_lines_and_characters() {
        let text = "ab\ncé d\n";
        assert_eq!(position(text, 0), (1, 1));
        assert_eq!(position(text, 3), (2, 1));
        assert_eq!(position(text, 7), (2, 4));
        assert_eq!(position(text, 5), (2, 2), "inside a character: its start");
        assert_eq!(position(text, 99), (3, 1));
    }

    #[test]
    fn tokens_keep_their_ranges() {
        let text = "x: a  b\n c";
        let tokens = tokens_in(text, 2..text.len());
        let ranges: Vec<_> = tokens.iter().map(|(r, t)| (r.clone(), *t)).collect();
        assert_eq!(ranges, [(3..4, "a"), (6..7, "b"), (9..10, "c")]);
    }
}
