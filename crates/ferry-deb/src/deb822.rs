//! A zero-copy reader of deb822 paragraphs: Packages, Sources, dpkg status,
//! Release files and APT's `.sources` files.
//!
//! Fields borrow from the input text; a multi-line value is one slice that
//! still holds its `\n ` continuations (relation parsers treat them as
//! whitespace, `Field::lines` splits them). Not for editing: the lossless
//! rewriter of `.sources` files lives in `sources`.
//!
//! Written here rather than taken from `deb822-fast`: that crate reads
//! bookworm's 50 MB in ~124 ms on this project's machines, so sid's 65 MB
//! would already miss the 150 ms bar for *typed* records before a single
//! relation is parsed. This reader scans with `memchr` and allocates one
//! small field vector per paragraph.

use memchr::memchr;

/// What the input may contain besides fields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Syntax {
    /// Lines starting with `#` are comments (APT's `.sources`, debian/control);
    /// in Packages and status files a `#` line is an error, as for dpkg.
    pub comments: bool,
}

impl Syntax {
    pub const INDEX: Syntax = Syntax { comments: false };
    pub const WITH_COMMENTS: Syntax = Syntax { comments: true };
}

/// A malformed line, with where it is and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message} (expected {expected})")]
pub struct SyntaxError {
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub expected: &'static str,
}

/// One `Name: value` field, borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    pub name: &'a str,
    /// The value with its first line trimmed; continuation lines are kept as
    /// they are, without the final newline.
    pub value: &'a str,
    /// 1-based line of the field name in the input.
    pub line: usize,
}

impl<'a> Field<'a> {
    /// The value's lines: the first, then each continuation line without its
    /// leading space; a lone `.` stands for an empty line, as in Description.
    pub fn lines(&self) -> impl Iterator<Item = &'a str> {
        self.value.split('\n').map(|line| {
            let line = line.strip_prefix([' ', '\t']).unwrap_or(line);
            if line == "." {
                ""
            } else {
                line.trim_end()
            }
        })
    }
}

/// One paragraph: its fields in input order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Paragraph<'a> {
    pub fields: Vec<Field<'a>>,
    /// 1-based line of the paragraph's first field.
    pub line: usize,
}

impl<'a> Paragraph<'a> {
    /// The value of a field; names compare case-insensitively, as in dpkg.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.field(name).map(|f| f.value)
    }

    pub fn field(&self, name: &str) -> Option<&Field<'a>> {
        self.fields
            .iter()
            .find(|f| f.name.len() == name.len() && f.name.eq_ignore_ascii_case(name))
    }
}

/// An iterator of paragraphs over text. Stops after the first error.
pub struct Paragraphs<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
    syntax: Syntax,
    failed: bool,
}

/// Reads the paragraphs of `text`.
pub fn paragraphs(text: &str, syntax: Syntax) -> Paragraphs<'_> {
    paragraphs_from_line(text, syntax, 0)
}

/// Reads the paragraphs of a piece of a larger text whose first line is
/// line `lines_before + 1` of the whole, so errors name the right line.
pub fn paragraphs_from_line(text: &str, syntax: Syntax, lines_before: usize) -> Paragraphs<'_> {
    Paragraphs {
        text,
        pos: 0,
        line: lines_before,
        syntax,
        failed: false,
    }
}

/// Reads all paragraphs, or the first error.
pub fn parse(text: &str, syntax: Syntax) -> Result<Vec<Paragraph<'_>>, SyntaxError> {
    paragraphs(text, syntax).collect()
}

impl<'a> Paragraphs<'a> {
    /// The next line (without `\n`) and the offset where it starts.
    fn next_line(&mut self) -> Option<(usize, &'a str)> {
        if self.pos >= self.text.len() {
            return None;
        }
        let start = self.pos;
        let rest = &self.text.as_bytes()[start..];
        let end = memchr(b'\n', rest).map_or(self.text.len(), |n| start + n);
        self.pos = if end < self.text.len() { end + 1 } else { end };
        self.line += 1;
        Some((start, &self.text[start..end]))
    }

    fn peek_is_continuation(&self) -> bool {
        matches!(self.text.as_bytes().get(self.pos), Some(b' ' | b'\t'))
    }

    fn peek_is_comment(&self) -> bool {
        self.syntax.comments && self.text.as_bytes().get(self.pos) == Some(&b'#')
    }

    fn error(&mut self, column: usize, message: String, expected: &'static str) -> SyntaxError {
        self.failed = true;
        SyntaxError {
            line: self.line,
            column,
            message,
            expected,
        }
    }

    /// Reads the next paragraph into `paragraph`, reusing its field vector
    /// (hot loops over a 65 MB index then allocate nothing per paragraph).
    /// `None` at the end of the input or after an error.
    pub fn read_into(&mut self, paragraph: &mut Paragraph<'a>) -> Option<Result<(), SyntaxError>> {
        if self.failed {
            return None;
        }
        // Skip blank lines and comments before the paragraph.
        let (mut start, mut line) = loop {
            let (start, line) = self.next_line()?;
            if is_blank(line) || (self.syntax.comments && line.starts_with('#')) {
                continue;
            }
            break (start, line);
        };
        paragraph.fields.clear();
        paragraph.line = self.line;
        // One bit per (name length, first letter) seen: a field whose bit is
        // unset cannot be a duplicate, which spares the quadratic search.
        let mut seen: u64 = 0;
        loop {
            if line.starts_with([' ', '\t']) {
                return Some(Err(self.error(
                    1,
                    "continuation line without a field before it".into(),
                    "`Name: value`",
                )));
            }
            let Some(colon) = memchr(b':', line.as_bytes()) else {
                let message = if line.starts_with('#') {
                    "comments are not allowed in this file".to_string()
                } else {
                    format!("`{}` is not a field", truncate(line))
                };
                return Some(Err(self.error(1, message, "`Name: value`")));
            };
            let name = &line[..colon];
            if let Some(bad) = name.find(|c: char| c.is_whitespace() || c.is_control()) {
                return Some(Err(self.error(
                    bad + 1,
                    format!("field name `{}` contains whitespace", truncate(name)),
                    "a field name without spaces",
                )));
            }
            if name.is_empty() || name.starts_with('-') {
                return Some(Err(self.error(
                    1,
                    "empty field name".into(),
                    "a field name before `:`",
                )));
            }
            let field_line = self.line;
            let value_start = start + colon + 1;
            let mut value_end = start + line.len();
            // Continuation lines (and, where allowed, comments between them).
            while self.peek_is_continuation() || self.peek_is_comment() {
                let comment = self.peek_is_comment();
                let (cont_start, cont) = self.next_line()?;
                if !comment {
                    value_end = cont_start + cont.len();
                }
            }
            let value = self.text[value_start..value_end]
                .trim_start_matches([' ', '\t'])
                .trim_end_matches([' ', '\t', '\r']);
            let bit = 1u64 << ((name.len() * 31 + (name.as_bytes()[0] | 0x20) as usize) % 64);
            if seen & bit != 0 && paragraph.field(name).is_some() {
                self.line = field_line;
                return Some(Err(self.error(
                    1,
                    format!("duplicate field `{name}`"),
                    "each field once per paragraph",
                )));
            }
            seen |= bit;
            paragraph.fields.push(Field {
                name,
                value,
                line: field_line,
            });
            match self.next_line() {
                None => break,
                Some((_, l)) if is_blank(l) => break,
                Some((_, l)) if self.syntax.comments && l.starts_with('#') => {
                    // A comment between fields; the paragraph goes on.
                    match self.skip_comments() {
                        Some((s, l)) if !is_blank(l) => {
                            start = s;
                            line = l;
                            continue;
                        }
                        _ => break,
                    }
                }
                Some((s, l)) => {
                    start = s;
                    line = l;
                }
            }
        }
        Some(Ok(()))
    }

    fn skip_comments(&mut self) -> Option<(usize, &'a str)> {
        loop {
            let (start, line) = self.next_line()?;
            if !line.starts_with('#') {
                return Some((start, line));
            }
        }
    }
}

impl<'a> Iterator for Paragraphs<'a> {
    type Item = Result<Paragraph<'a>, SyntaxError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut paragraph = Paragraph {
            fields: Vec::with_capacity(24),
            line: 0,
        };
        self.read_into(&mut paragraph)
            .map(|result| result.map(|()| paragraph))
    }
}

fn is_blank(line: &str) -> bool {
    line.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\r'))
}

fn truncate(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// Splits `text` into chunks of whole paragraphs of about `size` bytes, so a
/// large index can be parsed on several cores. Returns (line offset, chunk).
pub fn split_chunks(text: &str, size: usize) -> Vec<(usize, &str)> {
    let bytes = text.as_bytes();
    let mut chunks = Vec::new();
    let (mut start, mut first_line) = (0, 0);
    while start < text.len() {
        let mut end = (start + size).min(text.len());
        if end < text.len() {
            // Move forward to the end of a blank line that ends a paragraph.
            match memchr::memmem::find(&bytes[end..], b"\n\n") {
                Some(n) => end += n + 2,
                None => end = text.len(),
            }
        }
        let chunk = &text[start..end];
        chunks.push((first_line, chunk));
        first_line += memchr::memchr_iter(b'\n', chunk.as_bytes()).count();
        start = end;
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_continuations_and_blank_lines() {
        let text = "Package: a\nDescription: short\n long line\n .\n more\n\n\n  \nPackage: b\nVersion: 1\n";
        let ps = parse(text, Syntax::INDEX).unwrap();
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[0].get("package"), Some("a"));
        let desc = ps[0].field("Description").unwrap();
        assert_eq!(
            desc.lines().collect::<Vec<_>>(),
            ["short", "long line", "", "more"]
        );
        assert_eq!(ps[1].line, 9);
        assert_eq!(ps[1].field("Version").unwrap().line, 10);
    }

    #[test]
    fn comments_only_where_allowed() {
        let text = "# top\nTypes: deb\n# inside\nURIs: http://x\n  http://y\nSuites: s\n";
        let ps = parse(text, Syntax::WITH_COMMENTS).unwrap();
        assert_eq!(ps.len(), 1);
        assert_eq!(ps[0].get("URIs"), Some("http://x\n  http://y"));
        assert_eq!(ps[0].get("Suites"), Some("s"));
        let err = parse(text, Syntax::INDEX).unwrap_err();
        assert_eq!(err.line, 1);
    }

    #[test]
    fn errors_carry_the_line() {
        let err = parse("Package: a\nnot a field\n", Syntax::INDEX).unwrap_err();
        assert_eq!((err.line, err.column), (2, 1));
        let err = parse(" leading\n", Syntax::INDEX).unwrap_err();
        assert_eq!(err.line, 1);
        let err = parse("A: 1\nB: 2\nA: 3\n", Syntax::INDEX).unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.message.contains("duplicate"));
    }

    #[test]
    fn crlf_and_missing_final_newline() {
        let ps = parse("A: 1\r\nB: 2", Syntax::INDEX).unwrap();
        assert_eq!(ps[0].get("A"), Some("1"));
        assert_eq!(ps[0].get("B"), Some("2"));
    }

    #[test]
    fn chunks_hold_whole_paragraphs() {
        let text = "A: 1\n\nA: 2\nB: x\n\nA: 3\n";
        let chunks = split_chunks(text, 3);
        let joined: String = chunks.iter().map(|(_, c)| *c).collect();
        assert_eq!(joined, text);
        let lines: Vec<usize> = chunks.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [0, 2, 5]);
        for (_, chunk) in chunks {
            assert!(parse(chunk, Syntax::INDEX).is_ok());
        }
    }
}
