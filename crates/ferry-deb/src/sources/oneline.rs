//! The one-line format of `sources.list` and `*.list` files:
//! `deb [opt=val opt2=v1,v2] uri suite [component…]`, read the way apt's
//! `ParseFileOldStyle`/`ParseLine` read it (`#` starts a comment unless inside
//! `[…]`, `"` quotes and `%xx` escapes in words, a suite ending in `/` is a
//! flat repository without components).
//!
//! Besides apt's entries, a comment that holds a well-formed entry
//! (`# deb …`) is read as a disabled entry, so that it can be re-enabled.
//! Every token keeps its byte range for the lossless rewriter.

use std::ops::Range;

use super::entry::{SignedBy, SourceEntry, SourceOption, SourceType};
use super::{error_at, Format, ParseError};

/// An error at a byte offset, turned into line and column only when it is
/// reported: probing every comment for a disabled entry must stay cheap.
#[derive(Debug)]
struct Located {
    offset: usize,
    message: String,
    expected: &'static str,
}

fn located(offset: usize, message: String, expected: &'static str) -> Located {
    Located {
        offset,
        message,
        expected,
    }
}

/// A `.list` file's entries, their layouts and every line in order.
#[derive(Debug, Clone, Default)]
pub(crate) struct ParsedList {
    pub entries: Vec<SourceEntry>,
    pub layouts: Vec<LineLayout>,
    pub lines: Vec<ListLine>,
}

/// What one line of a `.list` file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ListLine {
    Blank,
    /// A comment that is not a disabled entry: from its `#` to the end of the
    /// line, without trailing whitespace.
    Comment(Range<usize>),
    /// An entry, enabled or disabled: its index in `entries`.
    Entry(usize),
}

/// Where the parts of a one-line entry are (absolute byte ranges).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LineLayout {
    /// The whole line without its `\n`.
    pub line: Range<usize>,
    /// From the `#` that disables the entry to its type, for re-enabling.
    pub disabled: Option<Range<usize>>,
    pub type_token: Range<usize>,
    pub options: Option<OptionsLayout>,
    pub uri: Range<usize>,
    pub suite: Range<usize>,
    pub components: Vec<Range<usize>>,
    /// A comment after the entry: from `#` to the end of the line, without
    /// trailing whitespace.
    pub trailing_comment: Option<Range<usize>>,
}

/// The `[…]` of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OptionsLayout {
    /// Offset of `[`.
    pub open: usize,
    /// Offset of `]`.
    pub close: usize,
    pub items: Vec<OptionLayout>,
}

/// One `key=value` inside `[…]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OptionLayout {
    pub range: Range<usize>,
    pub key: String,
    pub value_range: Range<usize>,
    /// Decoded (quotes and `%xx` escapes), as apt sees it.
    pub value: String,
}

/// Reads every line of a `.list` text.
pub(crate) fn parse(text: &str) -> Result<ParsedList, ParseError> {
    let mut parsed = ParsedList::default();
    let mut offset = 0;
    for (index, raw) in text.split_inclusive('\n').enumerate() {
        let start = offset;
        offset += raw.len();
        let line = start..start + raw.strip_suffix('\n').unwrap_or(raw).len();
        let line_number = index + 1;
        match classify(text, line, line_number)? {
            Classified::Blank => parsed.lines.push(ListLine::Blank),
            Classified::Comment(range) => parsed.lines.push(ListLine::Comment(range)),
            Classified::Entry(entry, layout) => {
                parsed.lines.push(ListLine::Entry(parsed.entries.len()));
                parsed.entries.push(*entry);
                parsed.layouts.push(layout);
            }
        }
    }
    Ok(parsed)
}

enum Classified {
    Blank,
    Comment(Range<usize>),
    Entry(Box<SourceEntry>, LineLayout),
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\x0b' | '\x0c')
}

fn is_space_byte(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\x0b' | b'\x0c')
}

fn classify(text: &str, line: Range<usize>, line_number: usize) -> Result<Classified, ParseError> {
    let s = &text[line.clone()];
    let comment = comment_start(s);
    let content = &s[..comment.unwrap_or(s.len())];
    let Some(first) = content.find(|c| !is_space(c)) else {
        let Some(hash) = comment else {
            return Ok(Classified::Blank);
        };
        let after_hashes = s.len() - s[hash..].trim_start_matches('#').len();
        let body = s.len() - s[after_hashes..].trim_start_matches(is_space).len();
        let disabled = line.start + hash..line.start + body;
        if let Ok((mut entry, mut layout)) =
            parse_entry(text, line.start + body..line.end, line.clone(), line_number)
        {
            entry.enabled = false;
            layout.disabled = Some(disabled);
            return Ok(Classified::Entry(Box::new(entry), layout));
        }
        let end = line.start + s.trim_end_matches(is_space).len();
        return Ok(Classified::Comment(line.start + hash..end));
    };
    let (entry, layout) = parse_entry(text, line.start + first..line.end, line, line_number)
        .map_err(|e| error_at(text, e.offset, e.message, e.expected))?;
    Ok(Classified::Entry(Box::new(entry), layout))
}

/// Where a comment starts: the first `#` not inside `[…]`, counting brackets
/// as apt does.
fn comment_start(s: &str) -> Option<usize> {
    let (mut open, mut close) = (0usize, 0usize);
    for (i, b) in s.bytes().enumerate() {
        match b {
            b'[' => open += 1,
            b']' => close += 1,
            b'#' if open <= close => return Some(i),
            _ => {}
        }
    }
    None
}

/// A cursor over one entry's text, up to where its comment starts.
struct Cursor<'a> {
    text: &'a str,
    pos: usize,
    end: usize,
}

impl Cursor<'_> {
    fn skip_spaces(&mut self) {
        while self.pos < self.end && is_space_byte(self.text.as_bytes()[self.pos]) {
            self.pos += 1;
        }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.end
    }

    fn peek(&self) -> Option<u8> {
        (self.pos < self.end).then(|| self.text.as_bytes()[self.pos])
    }

    /// One word as apt's `ParseQuoteWord` takes it: up to whitespace, with
    /// `"…"` and (outside options) `[…]` taken whole. Inside options a `]`
    /// also ends the word.
    fn word(&mut self, in_options: bool) -> Result<Range<usize>, Located> {
        let bytes = self.text.as_bytes();
        let start = self.pos;
        let mut i = self.pos;
        while i < self.end {
            match bytes[i] {
                b if is_space_byte(b) => break,
                b']' if in_options => break,
                quote @ (b'"' | b'[') if quote == b'"' || !in_options => {
                    let closing = if quote == b'"' { b'"' } else { b']' };
                    let Some(n) = bytes[i + 1..self.end].iter().position(|&b| b == closing) else {
                        let (message, expected) = if quote == b'"' {
                            ("this quote is not closed", "a closing `\"`")
                        } else {
                            ("this `[` is not closed", "a closing `]`")
                        };
                        return Err(located(i, message.into(), expected));
                    };
                    i += n + 2;
                }
                _ => i += 1,
            }
        }
        self.pos = i;
        Ok(start..i)
    }
}

/// A word as apt sees it: `"` removed and `%xx` escapes decoded.
fn decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push((high * 16 + low) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'"' => {}
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses an entry starting at its type token; `range` runs to the end of
/// the line.
fn parse_entry(
    text: &str,
    range: Range<usize>,
    line: Range<usize>,
    line_number: usize,
) -> Result<(SourceEntry, LineLayout), Located> {
    let s = &text[range.clone()];
    let comment = comment_start(s);
    let content_end = range.start
        + s[..comment.unwrap_or(s.len())]
            .trim_end_matches(is_space)
            .len();
    let trailing_comment =
        comment.map(|c| range.start + c..range.start + s.trim_end_matches(is_space).len());
    let mut cursor = Cursor {
        text,
        pos: range.start,
        end: content_end,
    };

    let type_token = range.start
        ..range.start
            + s[..content_end - range.start]
                .find(is_space)
                .unwrap_or(content_end - range.start);
    let type_text = &text[type_token.clone()];
    let Some(source_type) = SourceType::parse(type_text) else {
        return Err(located(
            type_token.start,
            format!("unknown type `{}`", truncate(type_text)),
            "`deb` or `deb-src`",
        ));
    };
    cursor.pos = type_token.end;
    cursor.skip_spaces();
    if cursor.at_end() {
        return Err(located(
            cursor.pos,
            format!("`{type_text}` without a URI"),
            "a URI such as http://repo.example.org/debian",
        ));
    }

    let options = if cursor.peek() == Some(b'[') {
        Some(parse_options(&mut cursor)?)
    } else {
        None
    };

    cursor.skip_spaces();
    if cursor.at_end() {
        return Err(located(
            cursor.pos,
            "missing URI".into(),
            "a URI such as http://repo.example.org/debian",
        ));
    }
    let uri_range = cursor.word(false)?;
    let uri = decode(&text[uri_range.clone()]);
    if !uri.contains(':') {
        return Err(located(
            uri_range.start,
            format!("`{}` is not a URI", truncate(&uri)),
            "a URI with a scheme, such as http://repo.example.org/debian",
        ));
    }

    cursor.skip_spaces();
    if cursor.at_end() {
        return Err(located(
            cursor.pos,
            "missing suite after the URI".into(),
            "a suite such as bookworm, or a path ending in `/` for a flat repository",
        ));
    }
    let suite_range = cursor.word(false)?;
    let suite = decode(&text[suite_range.clone()]);
    if suite.is_empty() {
        return Err(located(
            suite_range.start,
            "empty suite".into(),
            "a suite such as bookworm",
        ));
    }

    let mut component_ranges = Vec::new();
    let mut components = Vec::new();
    loop {
        cursor.skip_spaces();
        if cursor.at_end() {
            break;
        }
        let word = cursor.word(false)?;
        let component = decode(&text[word.clone()]);
        if component.is_empty() {
            return Err(located(
                word.start,
                "empty component".into(),
                "a component such as main",
            ));
        }
        component_ranges.push(word);
        components.push(component);
    }
    if suite.ends_with('/') {
        if let Some(first) = component_ranges.first() {
            return Err(located(
                first.start,
                format!("a flat repository (suite `{suite}` ends in `/`) takes no components"),
                "nothing after a suite that ends in `/`",
            ));
        }
    } else if components.is_empty() {
        return Err(located(
            cursor.pos,
            format!("suite `{suite}` without components"),
            "at least one component, such as main",
        ));
    }

    let mut architectures = Vec::new();
    let mut signed_by = None;
    let mut other_options = Vec::new();
    for item in options.iter().flat_map(|o| &o.items) {
        match item.key.as_str() {
            "arch" => {
                architectures = item
                    .value
                    .split(',')
                    .filter(|a| !a.is_empty())
                    .map(String::from)
                    .collect()
            }
            "signed-by" => {
                let keys = SignedBy::parse_keys(&item.value).map_err(|e| {
                    located(item.value_range.start + e.offset, e.message, e.expected)
                })?;
                signed_by = Some(keys);
            }
            _ => other_options.push(SourceOption {
                name: item.key.clone(),
                value: item.value.clone(),
            }),
        }
    }

    let entry = SourceEntry {
        format: Format::OneLine,
        types: vec![source_type],
        uris: vec![uri],
        suites: vec![suite],
        components,
        architectures,
        signed_by,
        enabled: true,
        options: other_options,
        path: Default::default(),
        line: line_number,
        stanza: None,
    };
    let layout = LineLayout {
        line,
        disabled: None,
        type_token,
        options,
        uri: uri_range,
        suite: suite_range,
        components: component_ranges,
        trailing_comment,
    };
    Ok((entry, layout))
}

/// `[key=value …]`, the cursor on `[`.
fn parse_options(cursor: &mut Cursor<'_>) -> Result<OptionsLayout, Located> {
    let text = cursor.text;
    let open = cursor.pos;
    cursor.pos += 1;
    let mut items = Vec::new();
    loop {
        cursor.skip_spaces();
        match cursor.peek() {
            None => {
                return Err(located(
                    open,
                    "the options' `[` is not closed".into(),
                    "`]` after the options",
                ));
            }
            Some(b']') => {
                let close = cursor.pos;
                cursor.pos += 1;
                return Ok(OptionsLayout { open, close, items });
            }
            Some(_) => {}
        }
        let word = cursor.word(true)?;
        let raw = &text[word.clone()];
        let Some(eq) = raw.find('=') else {
            return Err(located(
                word.start,
                format!("option `{}` is not an assignment", truncate(raw)),
                "`name=value`, such as arch=amd64",
            ));
        };
        if eq == 0 {
            return Err(located(
                word.start,
                "option without a name".into(),
                "`name=value`, such as arch=amd64",
            ));
        }
        if eq + 1 == raw.len() {
            return Err(located(
                word.end,
                format!("option `{}` without a value", &raw[..eq]),
                "a value after `=`",
            ));
        }
        items.push(OptionLayout {
            range: word.clone(),
            key: raw[..eq].to_string(),
            value_range: word.start + eq + 1..word.end,
            value: decode(&raw[eq + 1..]),
        });
    }
}

fn truncate(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::{KeyRef, SignedBy};

    fn one(line: &str) -> (SourceEntry, LineLayout) {
        let parsed = parse(line).unwrap();
        assert_eq!(parsed.entries.len(), 1, "{line}");
        (parsed.entries[0].clone(), parsed.layouts[0].clone())
    }

    fn err(line: &str) -> ParseError {
        parse(line).unwrap_err()
    }

    #[test]
    fn reads_options_uri_suite_and_components() {
        let line = "deb [ arch=amd64,arm64 signed-by=/usr/share/keyrings/x.gpg trusted=yes ] http://repo.example.org/debian bookworm main contrib\n";
        let (entry, layout) = one(line);
        assert_eq!(entry.types, [SourceType::Deb]);
        assert_eq!(entry.uris, ["http://repo.example.org/debian"]);
        assert_eq!(entry.suites, ["bookworm"]);
        assert_eq!(entry.components, ["main", "contrib"]);
        assert_eq!(entry.architectures, ["amd64", "arm64"]);
        assert_eq!(
            entry.signed_by,
            Some(SignedBy::Keys(vec![KeyRef::Keyring(
                "/usr/share/keyrings/x.gpg".into()
            )]))
        );
        assert_eq!(entry.option("trusted"), Some("yes"));
        assert!(entry.enabled);
        assert_eq!(&line[layout.uri], "http://repo.example.org/debian");
        let options = layout.options.unwrap();
        assert_eq!(
            &line[options.open..=options.close].chars().last(),
            &Some(']')
        );
        assert_eq!(options.items.len(), 3);
    }

    #[test]
    fn a_bracket_ends_the_last_option_without_a_space() {
        let (entry, _) = one("deb-src [arch=amd64]  http://r.example.org/d sid main");
        assert_eq!(entry.types, [SourceType::DebSrc]);
        assert_eq!(entry.architectures, ["amd64"]);
    }

    #[test]
    fn comments_disabled_entries_and_trailing_comments() {
        let text = "# plain comment\n\n#deb http://r.example.org/d bookworm main\n## deb-src http://r.example.org/d bookworm main # old\ndeb http://r.example.org/d sid main # note\n# deb is great\n";
        let parsed = parse(text).unwrap();
        assert_eq!(parsed.entries.len(), 3);
        assert!(
            !parsed.entries[0].enabled && !parsed.entries[1].enabled && parsed.entries[2].enabled
        );
        assert_eq!(parsed.entries[1].line, 4);
        assert_eq!(&text[parsed.layouts[1].disabled.clone().unwrap()], "## ");
        assert_eq!(
            &text[parsed.layouts[1].trailing_comment.clone().unwrap()],
            "# old"
        );
        assert_eq!(
            &text[parsed.layouts[2].trailing_comment.clone().unwrap()],
            "# note"
        );
        assert!(matches!(parsed.lines[0], ListLine::Comment(_)));
        assert_eq!(parsed.lines[1], ListLine::Blank);
        assert!(
            matches!(parsed.lines[5], ListLine::Comment(_)),
            "not an entry: no URI"
        );
    }

    #[test]
    fn a_hash_inside_options_is_not_a_comment() {
        assert_eq!(comment_start("deb [a=#] x # c"), Some(12));
        let e = err("deb [arch=amd64 # x] http://r.example.org/d s main");
        assert!(e.message.contains("not an assignment"), "{e}");
    }

    #[test]
    fn cdrom_uris_flat_repositories_and_escapes() {
        let (entry, _) = one(
            "deb cdrom:[Debian GNU/Linux 12.0.0 _Bookworm_ - Official amd64 DVD]/ bookworm main",
        );
        assert_eq!(
            entry.uris,
            ["cdrom:[Debian GNU/Linux 12.0.0 _Bookworm_ - Official amd64 DVD]/"]
        );
        let (entry, _) = one("deb [trusted=yes] file:/srv/repo ./");
        assert_eq!(entry.suites, ["./"]);
        assert!(entry.components.is_empty());
        let (entry, _) = one("deb \"http://r.example.org/a%20b\" s main");
        assert_eq!(entry.uris, ["http://r.example.org/a b"]);
    }

    #[test]
    fn errors_say_where_and_what_was_expected() {
        let e = err("deb http://r.example.org/d\n");
        assert_eq!((e.line, e.column), (1, 27));
        assert!(e.expected.contains("suite"));
        let e = err("\n\ndeb http://r.example.org/d bookworm\n");
        assert_eq!(e.line, 3);
        assert!(e.expected.contains("component"));
        let e = err("dep http://r.example.org/d bookworm main");
        assert_eq!((e.line, e.column), (1, 1));
        assert!(e.message.contains("unknown type"));
        assert!(err("deb").message.contains("without a URI"));
        assert!(err("deb [arch=amd64 trusted=yes")
            .message
            .contains("not closed"));
        assert!(err("deb [arch=amd64 http://x s main")
            .message
            .contains("not an assignment"));
        assert!(err("deb [arch=] http://x s main")
            .message
            .contains("without a value"));
        assert!(err("deb [=x] http://x s main")
            .message
            .contains("without a name"));
        assert!(err("deb repo.example.org s main")
            .message
            .contains("not a URI"));
        assert!(err("deb http://x ./ main").message.contains("flat"));
        let e = err("deb [signed-by=/a.gpg,foo] http://x s main");
        assert_eq!(e.column, 23);
        assert!(err("deb \"http://x s main").message.contains("quote"));
    }

    #[test]
    fn crlf_lines_and_no_final_newline() {
        let parsed =
            parse("deb http://r.example.org/d s main\r\n\r\ndeb http://r.example.org/d t main")
                .unwrap();
        assert_eq!(parsed.entries.len(), 2);
        assert_eq!(parsed.entries[0].components, ["main"]);
        assert_eq!(parsed.lines[1], ListLine::Blank);
    }

    #[test]
    fn decoding_never_panics_on_short_escapes() {
        assert_eq!(decode("a%"), "a%");
        assert_eq!(decode("a%4"), "a%4");
        assert_eq!(decode("a%41"), "aA");
        assert_eq!(decode("%zz"), "%zz");
    }
}
