//! Converting a one-line `.list` document to deb822 `.sources` text, as
//! `apt modernize-sources` (apt 3) does, but keeping what apt's command
//! drops: comments are carried over (each before the stanza of the entry it
//! preceded, a trailing `# …` with its entry), disabled `# deb …` lines become
//! `Enabled: no` stanzas, and every `[option]` becomes its deb822 field.
//!
//! Entries merge into one stanza when apt would read the stanza as exactly
//! the same entries: the same options and state, and at most one of types,
//! URIs, suites and components differing (the cross product of the stanza's
//! lists then is the union of the entries). So a stanza may gather entries
//! from different places of the file; the set of index targets apt sees
//! stays the same.

use std::collections::HashMap;

use super::entry::{deb822_option, normalized_uri, shadows_known_field, SourceType};
use super::oneline::ListLine;
use super::{EntryLayout, Format, SourcesDocument};

/// A stanza being built.
#[derive(Debug, Clone)]
struct Stanza {
    /// Comment lines with their line index, to keep the file's order when
    /// stanzas merge.
    comments: Vec<(usize, String)>,
    enabled: bool,
    types: Vec<SourceType>,
    uris: Vec<String>,
    suites: Vec<String>,
    components: Vec<String>,
    /// deb822 field name and value, in the order written.
    options: Vec<(String, String)>,
}

/// An entry the deb822 format cannot express: a suite, component or
/// option value of the one-line format holding whitespace (apt takes
/// `[…]` and `"…"` whole in one-line words; deb822 lists split on blanks).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: `{word}` holds whitespace or a control character, which a deb822 list cannot hold")]
pub struct ConvertError {
    pub line: usize,
    pub word: String,
}

fn representable(word: &str) -> bool {
    !word.chars().any(|c| c.is_whitespace() || c.is_control())
}

impl SourcesDocument {
    /// This document as deb822 `.sources` text (a deb822 document is
    /// returned as it is), or which entry cannot be expressed in deb822.
    pub fn to_deb822(&self) -> Result<String, ConvertError> {
        if self.format == Format::Deb822 {
            return Ok(self.text.clone());
        }
        let mut stanzas = Vec::new();
        let mut pending_comments = Vec::new();
        for (line_index, line) in self.lines.iter().enumerate() {
            match line {
                ListLine::Blank => {}
                ListLine::Comment(range) => {
                    pending_comments.push((line_index, self.text[range.clone()].to_string()))
                }
                ListLine::Entry(index) => {
                    let (Some(entry), Some(EntryLayout::Line(layout))) =
                        (self.entries.get(*index), self.layouts.get(*index))
                    else {
                        continue;
                    };
                    let mut comments = std::mem::take(&mut pending_comments);
                    if let Some(trailing) = &layout.trailing_comment {
                        comments.push((line_index, self.text[trailing.clone()].to_string()));
                    }
                    let mut options: Vec<(String, String)> = Vec::new();
                    for item in layout.options.iter().flat_map(|o| &o.items) {
                        let (mut name, value) = deb822_option(&item.key, &item.value);
                        if shadows_known_field(&item.key) {
                            // Kept as a comment (a `#` name is never a field).
                            name = format!("#{name}");
                        }
                        // apt keeps the last of a repeated option; deb822
                        // allows a field once.
                        options.retain(|(existing, _)| !existing.eq_ignore_ascii_case(&name));
                        options.push((name, value));
                    }
                    let words = entry.suites.iter().chain(&entry.components).chain(
                        layout
                            .options
                            .iter()
                            .flat_map(|o| &o.items)
                            .map(|item| &item.value),
                    );
                    for word in words {
                        if !representable(word) {
                            return Err(ConvertError {
                                line: entry.line,
                                word: word.clone(),
                            });
                        }
                    }
                    stanzas.push(Stanza {
                        comments,
                        enabled: entry.enabled,
                        types: entry.types.clone(),
                        uris: entry.uris.clone(),
                        suites: entry.suites.clone(),
                        components: entry.components.clone(),
                        options,
                    });
                }
            }
        }
        merge_all(&mut stanzas);
        Ok(render(&stanzas, &pending_comments))
    }
}

/// The lists of a stanza that merging may extend, in the order tried:
/// components first, so that the suites of a release gather afterwards with
/// the same components, then URIs, then types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dimension {
    Components,
    Suites,
    Uris,
    Types,
}

/// Merges stanzas until no two can merge, one dimension at a time: merging
/// whatever pair comes first gathers fewer entries (a `deb` and its `deb-src`
/// merged early can no longer gather the suites of each).
fn merge_all(stanzas: &mut Vec<Stanza>) {
    let dimensions = [
        Dimension::Components,
        Dimension::Suites,
        Dimension::Uris,
        Dimension::Types,
    ];
    while dimensions.iter().fold(false, |merged, &dimension| {
        merge_on(stanzas, dimension) | merged
    }) {}
}

/// Merges every group of stanzas that differ in `dimension` at most (one
/// stanza with the union of that list then holds exactly the entries of
/// all) into the first of the group. Whether any merged.
fn merge_on(stanzas: &mut Vec<Stanza>, dimension: Dimension) -> bool {
    let mut first_with: HashMap<MergeKey, usize> = HashMap::new();
    let mut merged: Vec<Stanza> = Vec::with_capacity(stanzas.len());
    let mut any = false;
    for stanza in stanzas.drain(..) {
        let key = MergeKey::of(&stanza, dimension);
        match first_with.get(&key) {
            Some(&index) => {
                merged[index].absorb(stanza);
                any = true;
            }
            None => {
                first_with.insert(key, merged.len());
                merged.push(stanza);
            }
        }
    }
    *stanzas = merged;
    any
}

/// What must be equal for two stanzas to merge along a dimension: all but
/// that dimension's list, each as a set.
#[derive(Debug, PartialEq, Eq, Hash)]
struct MergeKey {
    enabled: bool,
    options: Vec<(String, String)>,
    types: Vec<SourceType>,
    uris: Vec<String>,
    suites: Vec<String>,
    components: Vec<String>,
}

fn as_set<T: Ord + Clone>(list: &[T]) -> Vec<T> {
    let mut set = list.to_vec();
    set.sort();
    set.dedup();
    set
}

impl MergeKey {
    fn of(stanza: &Stanza, free: Dimension) -> MergeKey {
        let uris: Vec<String> = stanza.uris.iter().map(|u| normalized_uri(u)).collect();
        let unless = |dimension: Dimension, set: Vec<String>| {
            if dimension == free {
                Vec::new()
            } else {
                set
            }
        };
        MergeKey {
            enabled: stanza.enabled,
            options: as_set(&stanza.options),
            types: if free == Dimension::Types {
                Vec::new()
            } else {
                as_set(&stanza.types)
            },
            uris: unless(Dimension::Uris, as_set(&uris)),
            suites: unless(Dimension::Suites, as_set(&stanza.suites)),
            components: unless(Dimension::Components, as_set(&stanza.components)),
        }
    }
}

impl Stanza {
    fn absorb(&mut self, other: Stanza) {
        self.comments.extend(other.comments);
        self.comments.sort_by_key(|(line, _)| *line);
        for t in other.types {
            if !self.types.contains(&t) {
                self.types.push(t);
            }
        }
        for uri in other.uris {
            if !self
                .uris
                .iter()
                .any(|u| normalized_uri(u) == normalized_uri(&uri))
            {
                self.uris.push(uri);
            }
        }
        union(&mut self.suites, other.suites);
        union(&mut self.components, other.components);
    }
}

fn union(list: &mut Vec<String>, more: Vec<String>) {
    for value in more {
        if !list.contains(&value) {
            list.push(value);
        }
    }
}

fn is_field_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+'))
}

fn render(stanzas: &[Stanza], trailing_comments: &[(usize, String)]) -> String {
    let mut out = String::new();
    for (index, stanza) in stanzas.iter().enumerate() {
        if index > 0 {
            out.push('\n');
        }
        for (_, comment) in &stanza.comments {
            out.push_str(comment);
            out.push('\n');
        }
        if !stanza.enabled {
            out.push_str("Enabled: no\n");
        }
        let mut types = stanza.types.clone();
        types.sort();
        let types: Vec<&str> = types.iter().map(|t| t.as_str()).collect();
        out.push_str(&format!("Types: {}\n", types.join(" ")));
        // Whitespace ends a word in deb822 lists and a control character
        // cannot stand in a field; a cdrom URI may hold either.
        let uris: Vec<String> = stanza.uris.iter().map(|u| escape_uri_word(u)).collect();
        out.push_str(&format!("URIs: {}\n", uris.join(" ")));
        out.push_str(&format!("Suites: {}\n", stanza.suites.join(" ")));
        if !stanza.components.is_empty() {
            out.push_str(&format!("Components: {}\n", stanza.components.join(" ")));
        }
        for (name, value) in &stanza.options {
            if is_field_name(name) {
                out.push_str(&format!("{name}: {value}\n"));
            } else {
                // apt ignores an option it does not know in either format;
                // one whose name cannot be a field, or would be read as a
                // field apt knows, is kept for people as a comment.
                out.push_str(&format!("# {}={value}\n", name.trim_start_matches('#')));
            }
        }
    }
    if !trailing_comments.is_empty() {
        if !stanzas.is_empty() {
            out.push('\n');
        }
        for (_, comment) in trailing_comments {
            out.push_str(comment);
            out.push('\n');
        }
    }
    out
}

/// Writes whitespace and control characters of a URI as `%XX`, so the URI
/// stays one word of a deb822 list (a fuzzer found `\x0b` inside a cdrom
/// label, which deb822 splits on).
fn escape_uri_word(uri: &str) -> String {
    let mut out = String::with_capacity(uri.len());
    for c in uri.chars() {
        if c.is_whitespace() || c.is_control() {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn uris_with_whitespace_or_control_characters_stay_one_word() {
        assert_eq!(
            super::escape_uri_word("cdrom:[Debian 12\u{b}NETINST]/"),
            "cdrom:[Debian%2012%0BNETINST]/"
        );
    }

    use crate::sources::{parse_sources_text, Format};

    #[test]
    fn an_unknown_option_never_becomes_a_field_apt_knows() {
        let converted =
            convert("deb [sIgned-by=relative.gpg x-note=1] http://r.example.org/d s main\n");
        assert!(
            converted.contains("# sIgned-by=relative.gpg\n"),
            "{converted}"
        );
        assert!(converted.contains("x-note: 1\n"), "{converted}");
    }

    #[test]
    fn a_suite_with_a_space_is_refused_not_mangled() {
        let doc = parse_sources_text(
            "# x\ndeb http://r.example.org/d \"two words\" main\n",
            Format::OneLine,
        )
        .unwrap();
        let err = doc.to_deb822().unwrap_err();
        assert_eq!((err.line, err.word.as_str()), (2, "two words"));
    }

    fn convert(text: &str) -> String {
        let converted = parse_sources_text(text, Format::OneLine)
            .unwrap()
            .to_deb822()
            .unwrap();
        parse_sources_text(&converted, Format::Deb822)
            .unwrap_or_else(|e| panic!("{e}\n{converted}"));
        converted
    }

    #[test]
    fn entries_merge_into_the_fewest_stanzas() {
        let text = "deb http://r.example.org/debian bookworm main\ndeb-src http://r.example.org/debian bookworm main\n\ndeb http://s.example.org/security bookworm-security main\n\n# updates\ndeb http://r.example.org/debian/ bookworm-updates main\ndeb-src http://r.example.org/debian bookworm-updates main\n";
        assert_eq!(
            convert(text),
            "# updates\nTypes: deb deb-src\nURIs: http://r.example.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb\nURIs: http://s.example.org/security\nSuites: bookworm-security\nComponents: main\n"
        );
    }

    #[test]
    fn options_state_and_comments_are_carried_over() {
        let text = "# header\n\ndeb [arch=amd64,arm64 signed-by=/k.gpg lang=en] http://a.example.com/x stable main # vendor\n# deb http://a.example.com/x testing main\ndeb [trusted=yes] file:/srv/repo ./\n# trailer\n";
        assert_eq!(
            convert(text),
            "# header\n# vendor\nTypes: deb\nURIs: http://a.example.com/x\nSuites: stable\nComponents: main\nArchitectures: amd64 arm64\nSigned-By: /k.gpg\nLanguages: en\n\nEnabled: no\nTypes: deb\nURIs: http://a.example.com/x\nSuites: testing\nComponents: main\n\nTypes: deb\nURIs: file:/srv/repo\nSuites: ./\nTrusted: yes\n\n# trailer\n"
        );
    }

    #[test]
    fn different_options_or_two_differences_do_not_merge() {
        let text = "deb [arch=amd64] http://r.example.org/d s main\ndeb http://r.example.org/d s contrib\ndeb http://q.example.org/d t main\n";
        assert_eq!(convert(text).matches("Types:").count(), 3);
    }

    #[test]
    fn a_repeated_option_keeps_the_last_value() {
        let converted = convert("deb [trusted=no trusted=yes] http://r.example.org/d s main\n");
        assert!(
            converted.contains("Trusted: yes\n") && !converted.contains("Trusted: no"),
            "{converted}"
        );
    }

    #[test]
    fn options_that_cannot_be_fields_become_comments() {
        let converted = convert("deb [x-note=1 -odd=2 a:b=3] http://r.example.org/d s main\n");
        assert!(
            converted.ends_with("x-note: 1\n# -odd=2\n# a:b=3\n"),
            "{converted}"
        );
    }

    #[test]
    fn only_comments_stay_comments() {
        assert_eq!(convert("# nothing here\n\n"), "# nothing here\n");
        assert_eq!(convert(""), "");
    }
}
