//! The deb822 `.sources` format: stanzas of `Types`, `URIs`, `Suites`,
//! `Components`, `Architectures`, `Signed-By` (paths, fingerprints or an
//! inline armored key), `Enabled` and any other option field, read as apt's
//! `ParseFileDeb822`/`ParseStanza` read them.
//!
//! The paragraphs come from the crate's zero-copy reader
//! (`crate::deb822`, comments allowed as in apt); this module adds where each
//! field and value word lies in the text, for the lossless rewriter.

use std::ops::Range;

use super::entry::{apt_bool, SignedBy, SourceEntry, SourceOption, SourceType};
use super::{error_at, tokens_in, Format, ParseError};
use crate::deb822::{Paragraph, Syntax};

/// Where a stanza's fields are (absolute byte ranges).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StanzaLayout {
    /// Start of the first field's line.
    pub start: usize,
    /// End of the last field's last line, after its `\n` when it has one.
    pub end: usize,
    pub fields: Vec<FieldLayout>,
}

/// One field of a stanza.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldLayout {
    pub name: String,
    /// The field's whole lines, the last `\n` included when there is one.
    pub region: Range<usize>,
    /// From just after the `:` to the end of the value's last line (without
    /// trailing whitespace and newline).
    pub value: Range<usize>,
    /// The value's lines (comment lines between them skipped), each with the
    /// range of its text without surrounding whitespace.
    pub lines: Vec<Range<usize>>,
    /// The value's whitespace-separated words.
    pub tokens: Vec<Range<usize>>,
}

impl StanzaLayout {
    pub fn field(&self, name: &str) -> Option<&FieldLayout> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }
}

/// The fields with a typed place in [`SourceEntry`]; every other field is
/// kept as an option.
const TYPED_FIELDS: [&str; 7] = [
    "Types",
    "URIs",
    "Suites",
    "Components",
    "Architectures",
    "Signed-By",
    "Enabled",
];

/// Reads every stanza of a `.sources` text.
pub(crate) fn parse(text: &str) -> Result<(Vec<SourceEntry>, Vec<StanzaLayout>), ParseError> {
    let mut entries = Vec::new();
    let mut layouts = Vec::new();
    for (index, paragraph) in crate::deb822::paragraphs(text, Syntax::WITH_COMMENTS).enumerate() {
        let paragraph = paragraph?;
        let layout = layout_of(text, &paragraph);
        entries.push(entry_of(text, &paragraph, &layout, index + 1)?);
        layouts.push(layout);
    }
    Ok((entries, layouts))
}

/// Byte offset of `part` in `text`; the reader's slices all borrow from it.
fn offset_in(text: &str, part: &str) -> usize {
    (part.as_ptr() as usize)
        .wrapping_sub(text.as_ptr() as usize)
        .min(text.len())
}

fn layout_of(text: &str, paragraph: &Paragraph<'_>) -> StanzaLayout {
    let fields: Vec<FieldLayout> = paragraph
        .fields
        .iter()
        .map(|field| {
            let start = offset_in(text, field.name);
            let after_colon = (start + field.name.len() + 1).min(text.len());
            let value_end =
                (offset_in(text, field.value) + field.value.len()).clamp(after_colon, text.len());
            let region_end = text[value_end..]
                .find('\n')
                .map_or(text.len(), |n| value_end + n + 1);
            let lines = value_lines(text, after_colon..value_end);
            let tokens = lines
                .iter()
                .flat_map(|line| tokens_in(text, line.clone()))
                .map(|(range, _)| range)
                .collect();
            FieldLayout {
                name: field.name.to_string(),
                region: start..region_end,
                value: after_colon..value_end,
                lines,
                tokens,
            }
        })
        .collect();
    StanzaLayout {
        start: fields.first().map_or(0, |f| f.region.start),
        end: fields.last().map_or(0, |f| f.region.end),
        fields,
    }
}

/// The lines of a value without comment lines, each trimmed.
fn value_lines(text: &str, value: Range<usize>) -> Vec<Range<usize>> {
    let mut lines = Vec::new();
    let mut offset = value.start;
    for (index, line) in text[value.clone()].split('\n').enumerate() {
        let start = offset;
        offset += line.len() + 1;
        if index > 0 && line.starts_with('#') {
            continue;
        }
        let trimmed_start = start + (line.len() - line.trim_start().len());
        let trimmed_end = start + line.trim_end().len();
        lines.push(trimmed_start..trimmed_end.max(trimmed_start));
    }
    lines
}

fn entry_of(
    text: &str,
    paragraph: &Paragraph<'_>,
    layout: &StanzaLayout,
    stanza: usize,
) -> Result<SourceEntry, ParseError> {
    let words = |name: &str| -> Vec<(usize, String)> {
        layout
            .field(name)
            .map(|f| {
                f.tokens
                    .iter()
                    .map(|t| (t.start, text[t.clone()].to_string()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let Some(types_field) = layout.field("Types") else {
        return Err(error_at(
            text,
            layout.start,
            "stanza without a `Types` field".into(),
            "`Types: deb` (or deb-src, or both)",
        ));
    };
    let mut types = Vec::new();
    for (offset, word) in words("Types") {
        let Some(source_type) = SourceType::parse(&word) else {
            return Err(error_at(
                text,
                offset,
                format!("unknown type `{word}`"),
                "`deb` or `deb-src`",
            ));
        };
        if !types.contains(&source_type) {
            types.push(source_type);
        }
    }
    if types.is_empty() {
        return Err(error_at(
            text,
            types_field.value.start,
            "empty `Types`".into(),
            "`deb` or `deb-src`",
        ));
    }
    let enabled = layout
        .field("Enabled")
        .and_then(|f| apt_bool(&text[f.value.clone()]))
        != Some(false);

    let uris = words("URIs");
    let suites = words("Suites");
    let components = words("Components");
    // apt checks nothing more in a disabled stanza, so neither do we.
    if enabled {
        check_enabled_stanza(text, layout, &uris, &suites, &components)?;
    }

    let signed_by = match layout.field("Signed-By") {
        Some(field) => Some(signed_by(text, field)?),
        None => None,
    };
    let options = layout
        .fields
        .iter()
        .filter(|f| {
            !TYPED_FIELDS
                .iter()
                .any(|typed| f.name.eq_ignore_ascii_case(typed))
        })
        .map(|f| SourceOption {
            name: f.name.clone(),
            value: joined_lines(text, f),
        })
        .collect();
    let values = |words: Vec<(usize, String)>| words.into_iter().map(|(_, w)| w).collect();
    Ok(SourceEntry {
        format: Format::Deb822,
        types,
        uris: values(uris),
        suites: values(suites),
        components: values(components),
        architectures: values(words("Architectures")),
        signed_by,
        enabled,
        options,
        path: Default::default(),
        line: paragraph.line,
        stanza: Some(stanza),
    })
}

/// apt's `ParseStanza` checks, in its order.
fn check_enabled_stanza(
    text: &str,
    layout: &StanzaLayout,
    uris: &[(usize, String)],
    suites: &[(usize, String)],
    components: &[(usize, String)],
) -> Result<(), ParseError> {
    if uris.is_empty() {
        return Err(error_at(
            text,
            missing_at(layout, "URIs"),
            "stanza without URIs".into(),
            "`URIs: http://repo.example.org/debian`",
        ));
    }
    if suites.is_empty() {
        return Err(error_at(
            text,
            missing_at(layout, "Suites"),
            "stanza without suites".into(),
            "`Suites: bookworm` (or a path ending in `/` for a flat repository)",
        ));
    }
    if let Some((offset, uri)) = uris.iter().find(|(_, uri)| !uri.contains(':')) {
        return Err(error_at(
            text,
            *offset,
            format!("`{uri}` is not a URI"),
            "a URI with a scheme, such as http://repo.example.org/debian",
        ));
    }
    for (offset, suite) in suites {
        if suite.ends_with('/') {
            if let Some((component_offset, _)) = components.first() {
                return Err(error_at(
                    text,
                    *component_offset,
                    format!("a flat repository (suite `{suite}` ends in `/`) takes no components"),
                    "no `Components` with a suite that ends in `/`",
                ));
            }
        } else if components.is_empty() {
            let at = layout
                .field("Components")
                .map_or(*offset, |f| f.region.start);
            return Err(error_at(
                text,
                at,
                format!("suite `{suite}` without components"),
                "`Components: main` (at least one)",
            ));
        }
    }
    Ok(())
}

/// Where to point at a missing or empty field: the field when present (and
/// empty), else the stanza.
fn missing_at(layout: &StanzaLayout, name: &str) -> usize {
    layout.field(name).map_or(layout.start, |f| f.region.start)
}

fn signed_by(text: &str, field: &FieldLayout) -> Result<SignedBy, ParseError> {
    let lines: Vec<&str> = field.lines.iter().map(|line| &text[line.clone()]).collect();
    SignedBy::parse_lines(&lines).map_err(|error| {
        // Map the offset in the joined lines back onto the text.
        let mut remaining = error.offset;
        let mut at = field.value.start;
        for line in &field.lines {
            at = line.start + remaining.min(line.len());
            if remaining <= line.len() {
                break;
            }
            remaining -= line.len() + 1;
        }
        error_at(text, at, error.message, error.expected)
    })
}

/// A value's lines joined by `\n`, without a leading empty first line.
fn joined_lines(text: &str, field: &FieldLayout) -> String {
    let mut lines: Vec<&str> = field.lines.iter().map(|line| &text[line.clone()]).collect();
    if lines.len() > 1 && lines[0].is_empty() {
        lines.remove(0);
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::KeyRef;

    #[test]
    fn reads_stanzas_with_comments_between_fields() {
        let text = "Types: deb deb-src\n# mirror: http://old.example.org/debian\nURIs: http://repo.example.org/debian\n  http://mirror.example.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\nX-Repolib-Name: Debian\n\nTypes: deb\nURIs: file:/srv/repo\nSuites: ./\nEnabled: no\n";
        let (entries, layouts) = parse(text).unwrap();
        assert_eq!(entries.len(), 2);
        let first = &entries[0];
        assert_eq!(first.types, [SourceType::Deb, SourceType::DebSrc]);
        assert_eq!(
            first.uris,
            [
                "http://repo.example.org/debian",
                "http://mirror.example.org/debian"
            ]
        );
        assert_eq!(first.suites, ["bookworm", "bookworm-updates"]);
        assert_eq!(
            first.signed_by,
            Some(SignedBy::keyring(
                "/usr/share/keyrings/debian-archive-keyring.gpg"
            ))
        );
        assert_eq!(first.option("x-repolib-name"), Some("Debian"));
        assert_eq!((first.line, first.stanza), (1, Some(1)));
        let second = &entries[1];
        assert!(!second.enabled);
        assert!(second.components.is_empty());
        assert_eq!((second.line, second.stanza), (10, Some(2)));
        let uris = layouts[0].field("uris").unwrap();
        assert_eq!(uris.tokens.len(), 2);
        assert_eq!(
            &text[uris.region.clone()],
            "URIs: http://repo.example.org/debian\n  http://mirror.example.org/debian\n"
        );
        assert_eq!(layouts[1].end, text.len());
    }

    #[test]
    fn reads_inline_keys_and_fingerprints() {
        let text = "Types: deb\nURIs: https://apt.example.com\nSuites: stable\nComponents: main\nSigned-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n mDMEawLP6BYJ\n -----END PGP PUBLIC KEY BLOCK-----\n";
        let (entries, _) = parse(text).unwrap();
        assert_eq!(
            entries[0].signed_by,
            Some(SignedBy::Inline(
                "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEawLP6BYJ\n-----END PGP PUBLIC KEY BLOCK-----\n".into()
            ))
        );
        let text = "Types: deb\nURIs: https://apt.example.com\nSuites: stable\nComponents: main\nSigned-By: F35057CB1D8C7BEC072A3E18D0F45BEBF101591F\n";
        let (entries, _) = parse(text).unwrap();
        assert_eq!(
            entries[0].signed_by,
            Some(SignedBy::Keys(vec![KeyRef::Fingerprint(
                "F35057CB1D8C7BEC072A3E18D0F45BEBF101591F".into()
            )]))
        );
    }

    #[test]
    fn errors_point_at_the_stanza_or_the_word() {
        let err = parse("Types: deb\nSuites: s\nComponents: main\n").unwrap_err();
        assert_eq!((err.line, err.column), (1, 1));
        assert!(err.message.contains("URIs"));
        let err = parse("URIs: http://x\nSuites: s\n").unwrap_err();
        assert!(err.message.contains("Types"));
        let err =
            parse("Types: deb rpm\nURIs: http://x\nSuites: s\nComponents: main\n").unwrap_err();
        assert_eq!((err.line, err.column), (1, 12));
        let err = parse("Types: deb\nURIs: http://x\nSuites: s\n").unwrap_err();
        assert!(err.message.contains("without components"));
        let err = parse("Types: deb\nURIs: http://x\nSuites: ./\nComponents: main\n").unwrap_err();
        assert_eq!((err.line, err.column), (4, 13));
        let err = parse(
            "Types: deb\nURIs: http://x\nSuites: s\nComponents: main\nSigned-By: /a.gpg\n  nope\n",
        )
        .unwrap_err();
        assert_eq!((err.line, err.column), (6, 3));
        let err = parse("Types: deb\nURIs: x\nSuites: s\nComponents: main\n").unwrap_err();
        assert!(err.message.contains("not a URI"));
        let err = parse("Types: deb\ndeb http://x s main\n").unwrap_err();
        assert_eq!(err.line, 2);
    }

    #[test]
    fn a_disabled_stanza_may_be_incomplete_as_apt_allows() {
        let (entries, _) = parse("Types: deb\nEnabled: no\n").unwrap();
        assert!(!entries[0].enabled && entries[0].uris.is_empty());
        let (entries, _) =
            parse("Enabled: perhaps\nTypes: deb\nURIs: http://x\nSuites: s\nComponents: c\n")
                .unwrap();
        assert!(
            entries[0].enabled,
            "apt treats words it does not know as the default"
        );
    }
}
