//! Lossless rewriting of a [`SourcesDocument`]: a [`Matcher`] selects
//! entries, an [`Edit`] says what changes (URI, suite, components,
//! Signed-By, enabled), and the result is new text in which only the changed
//! words and fields differ; every other byte — comments, blank lines, field
//! order, spacing — stays as it was. The new text is parsed again before it
//! is returned, so a rewrite never yields a file apt would refuse.
//!
//! No I/O: writing the file (atomically, with a backup) is the caller's job.
//! [`unified_diff`] shows a change to people.

use std::ops::Range;

use super::deb822::StanzaLayout;
use super::entry::{strip_uri_prefix, KeyRef, SignedBy, SourceEntry, SourceType};
use super::oneline::LineLayout;
use super::{EntryLayout, ParseError, Replacement, SourcesDocument};

/// Which entries an edit applies to; every condition given must hold, and
/// an empty matcher selects every entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matcher {
    /// A URI of the entry starts with this, at a path segment boundary.
    pub uri_prefix: Option<String>,
    /// The entry lists this suite.
    pub suite: Option<String>,
    /// The entry lists this component.
    pub component: Option<String>,
    pub source_type: Option<SourceType>,
    pub enabled: Option<bool>,
}

impl Matcher {
    pub fn matches(&self, entry: &SourceEntry) -> bool {
        let has =
            |list: &[String], wanted: &Option<String>| wanted.iter().all(|w| list.contains(w));
        self.uri_prefix
            .iter()
            .all(|prefix| entry.has_uri_prefix(prefix))
            && has(&entry.suites, &self.suite)
            && has(&entry.components, &self.component)
            && self.source_type.iter().all(|t| entry.types.contains(t))
            && self.enabled.iter().all(|&e| entry.enabled == e)
    }
}

/// A change of the URIs of a matched entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UriChange {
    /// URIs starting with `from` (at a path segment boundary) start with `to`
    /// instead; the rest of each URI is kept. Other URIs stay.
    ReplacePrefix { from: String, to: String },
    /// The entry's URIs become this one URI.
    Set(String),
}

/// A change of the suites of a matched entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SuiteChange {
    /// The suite `from` becomes `to`; other suites stay.
    Rename { from: String, to: String },
    /// A release upgrade: `from`, `from-*` and `from/*` become `to`, `to-*`
    /// and `to/*` (bookworm-security → trixie-security).
    ReplaceCodename { from: String, to: String },
    /// The entry's suites become this one suite.
    Set(String),
}

/// A change of the components of a matched entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComponentsChange {
    Set(Vec<String>),
    /// Appended when missing.
    Add(Vec<String>),
    Remove(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignedByChange {
    Set(SignedBy),
    Remove,
}

/// What to change in each matched entry; `None` leaves that part alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Edit {
    pub uri: Option<UriChange>,
    pub suite: Option<SuiteChange>,
    pub components: Option<ComponentsChange>,
    pub signed_by: Option<SignedByChange>,
    pub enabled: Option<bool>,
}

/// A rewritten document and which of its entries changed.
#[derive(Debug, Clone)]
pub struct Rewritten {
    pub document: SourcesDocument,
    /// Indices into `document.entries()` of the entries whose text changed.
    pub changed: Vec<usize>,
}

/// Why a rewrite was refused; the document is left as it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    #[error("`{value}` is not a valid {what} (expected {expected})")]
    InvalidValue {
        what: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("line {line}: an inline key cannot be written in the one-line format")]
    InlineKeyInOneLine { line: usize },
    #[error("the rewritten file would be malformed: {0}")]
    WouldBreak(ParseError),
    #[error("internal error: changes overlap at byte {0}")]
    Overlap(usize),
}

impl SourcesDocument {
    /// Applies `edit` to every entry `matcher` selects and returns the new
    /// document; nothing matched gives the same text and no changed entries.
    pub fn rewrite(&self, matcher: &Matcher, edit: &Edit) -> Result<Rewritten, RewriteError> {
        edit.validate()?;
        let eol = if self.text.contains("\r\n") {
            "\r\n"
        } else {
            "\n"
        };
        let mut replacements = Vec::new();
        let mut changed = Vec::new();
        for (index, (entry, layout)) in self.entries.iter().zip(&self.layouts).enumerate() {
            if !matcher.matches(entry) {
                continue;
            }
            let before = replacements.len();
            match layout {
                EntryLayout::Line(line) => line_edits(entry, line, edit, &mut replacements)?,
                EntryLayout::Stanza(stanza) => {
                    stanza_edits(&self.text, eol, entry, stanza, edit, &mut replacements)
                }
            }
            if replacements.len() > before {
                changed.push(index);
            }
        }
        let text = apply(&self.text, replacements)?;
        let document = self.reparse(text).map_err(RewriteError::WouldBreak)?;
        Ok(Rewritten { document, changed })
    }
}

impl Edit {
    /// Refuses values that would break either format's syntax.
    fn validate(&self) -> Result<(), RewriteError> {
        match &self.uri {
            Some(UriChange::ReplacePrefix { from, to }) => {
                check_word("URI", from, true)?;
                check_word("URI", to, true)?;
            }
            Some(UriChange::Set(uri)) => check_word("URI", uri, true)?,
            None => {}
        }
        match &self.suite {
            Some(SuiteChange::Rename { from, to } | SuiteChange::ReplaceCodename { from, to }) => {
                check_word("suite", from, false)?;
                check_word("suite", to, false)?;
            }
            Some(SuiteChange::Set(suite)) => check_word("suite", suite, false)?,
            None => {}
        }
        match &self.components {
            Some(
                ComponentsChange::Set(list)
                | ComponentsChange::Add(list)
                | ComponentsChange::Remove(list),
            ) => {
                for component in list {
                    check_word("component", component, false)?;
                }
            }
            None => {}
        }
        if let Some(SignedByChange::Set(signed_by)) = &self.signed_by {
            check_signed_by(signed_by)?;
        }
        Ok(())
    }
}

fn check_word(what: &'static str, value: &str, uri: bool) -> Result<(), RewriteError> {
    let forbidden =
        |c: char| c.is_whitespace() || c.is_control() || matches!(c, '#' | '"' | ',' | '[' | ']');
    let bad = value.is_empty() || (uri && !value.contains(':')) || value.chars().any(forbidden);
    if bad {
        return Err(RewriteError::InvalidValue {
            what,
            value: value.to_string(),
            expected: if uri {
                "a URI with a scheme and without spaces, `#` or quotes"
            } else {
                "a word without spaces, `#`, quotes, commas or brackets"
            },
        });
    }
    Ok(())
}

fn check_signed_by(signed_by: &SignedBy) -> Result<(), RewriteError> {
    let invalid = |value: String, expected| RewriteError::InvalidValue {
        what: "Signed-By",
        value,
        expected,
    };
    match signed_by {
        SignedBy::Keys(keys) if keys.is_empty() => Err(invalid(String::new(), "at least one key")),
        SignedBy::Keys(keys) => {
            for key in keys {
                let text = key.to_string();
                let valid = match key {
                    KeyRef::Keyring(_) => {
                        text.starts_with('/') && check_word("path", &text, false).is_ok()
                    }
                    KeyRef::Fingerprint(_) => SignedBy::parse_keys(&text).is_ok(),
                };
                if !valid {
                    return Err(invalid(
                        text,
                        "an absolute keyring path without spaces, or a 40-hex-digit fingerprint",
                    ));
                }
            }
            Ok(())
        }
        SignedBy::Inline(key) => match SignedBy::parse_lines(&key.lines().collect::<Vec<_>>()) {
            Ok(SignedBy::Inline(_)) => Ok(()),
            _ => Err(invalid(
                key.lines().next().unwrap_or_default().to_string(),
                "an ASCII-armored public key block",
            )),
        },
    }
}

fn new_uris(uris: &[String], change: &UriChange) -> Vec<String> {
    match change {
        UriChange::ReplacePrefix { from, to } => uris
            .iter()
            .map(|uri| match strip_uri_prefix(uri, from) {
                Some(rest) => format!("{}{rest}", to.trim_end_matches('/')),
                None => uri.clone(),
            })
            .collect(),
        UriChange::Set(uri) => vec![uri.clone()],
    }
}

fn new_suites(suites: &[String], change: &SuiteChange) -> Vec<String> {
    match change {
        SuiteChange::Rename { from, to } => suites
            .iter()
            .map(|suite| {
                if suite == from {
                    to.clone()
                } else {
                    suite.clone()
                }
            })
            .collect(),
        SuiteChange::ReplaceCodename { from, to } => suites
            .iter()
            .map(|suite| match suite.strip_prefix(from.as_str()) {
                Some(rest) if rest.is_empty() || rest.starts_with(['-', '/']) => {
                    format!("{to}{rest}")
                }
                _ => suite.clone(),
            })
            .collect(),
        SuiteChange::Set(suite) => vec![suite.clone()],
    }
}

fn new_components(components: &[String], change: &ComponentsChange) -> Vec<String> {
    match change {
        ComponentsChange::Set(list) => list.clone(),
        ComponentsChange::Add(list) => {
            let mut out = components.to_vec();
            for component in list {
                if !out.contains(component) {
                    out.push(component.clone());
                }
            }
            out
        }
        ComponentsChange::Remove(list) => components
            .iter()
            .filter(|c| !list.contains(c))
            .cloned()
            .collect(),
    }
}

/// The smallest replacements that turn the words at `tokens` (values `old`)
/// into `new`: changed words in place, removed words with the space before
/// them, added words after the last one. Both lists must be non-empty.
fn list_replacements(
    tokens: &[Range<usize>],
    old: &[String],
    new: &[String],
    out: &mut Vec<Replacement>,
) {
    if old == new || tokens.len() != old.len() || tokens.is_empty() || new.is_empty() {
        return;
    }
    if old.len() == new.len() {
        for ((token, old), new) in tokens.iter().zip(old).zip(new) {
            if old != new {
                out.push(Replacement::new(token.clone(), new.as_str()));
            }
        }
        return;
    }
    let mut keep = vec![false; old.len()];
    let mut next = 0;
    for (i, value) in old.iter().enumerate() {
        if new.get(next) == Some(value) {
            keep[i] = true;
            next += 1;
        }
    }
    let last = tokens.len() - 1;
    let Some(first_kept) = keep.iter().position(|&k| k) else {
        out.push(Replacement::new(
            tokens[0].start..tokens[last].end,
            new.join(" "),
        ));
        return;
    };
    if first_kept > 0 {
        out.push(Replacement::delete(
            tokens[0].start..tokens[first_kept].start,
        ));
    }
    for i in first_kept + 1..tokens.len() {
        if !keep[i] {
            out.push(Replacement::delete(tokens[i - 1].end..tokens[i].end));
        }
    }
    if next < new.len() {
        out.push(Replacement::insert(
            tokens[last].end,
            format!(" {}", new[next..].join(" ")),
        ));
    }
}

fn line_edits(
    entry: &SourceEntry,
    layout: &LineLayout,
    edit: &Edit,
    out: &mut Vec<Replacement>,
) -> Result<(), RewriteError> {
    if let Some(change) = &edit.uri {
        list_replacements(
            std::slice::from_ref(&layout.uri),
            &entry.uris,
            &new_uris(&entry.uris, change),
            out,
        );
    }
    if let Some(change) = &edit.suite {
        list_replacements(
            std::slice::from_ref(&layout.suite),
            &entry.suites,
            &new_suites(&entry.suites, change),
            out,
        );
    }
    if let Some(change) = &edit.components {
        let new = new_components(&entry.components, change);
        match (layout.components.last(), new.is_empty()) {
            (Some(_), false) => list_replacements(&layout.components, &entry.components, &new, out),
            (Some(last), true) => out.push(Replacement::delete(layout.suite.end..last.end)),
            (None, false) => out.push(Replacement::insert(
                layout.suite.end,
                format!(" {}", new.join(" ")),
            )),
            (None, true) => {}
        }
    }
    if let Some(change) = &edit.signed_by {
        line_signed_by(entry, layout, change, out)?;
    }
    match (edit.enabled, entry.enabled, &layout.disabled) {
        (Some(false), true, _) => out.push(Replacement::insert(layout.type_token.start, "# ")),
        (Some(true), false, Some(disabled)) => out.push(Replacement::delete(disabled.clone())),
        _ => {}
    }
    Ok(())
}

/// `signed-by=` inside `[…]`: replaced in place, added to the options (or
/// in a new `[…]`), or removed with its `[…]` when it was the only option.
fn line_signed_by(
    entry: &SourceEntry,
    layout: &LineLayout,
    change: &SignedByChange,
    out: &mut Vec<Replacement>,
) -> Result<(), RewriteError> {
    let options = layout.options.as_ref();
    let items = options.map(|o| o.items.as_slice()).unwrap_or_default();
    let existing = items.iter().rposition(|item| item.key == "signed-by");
    match change {
        SignedByChange::Set(signed_by) => {
            if entry.signed_by.as_ref() == Some(signed_by) {
                return Ok(());
            }
            let value = signed_by
                .to_one_line()
                .ok_or(RewriteError::InlineKeyInOneLine { line: entry.line })?;
            match (options, existing) {
                (Some(_), Some(i)) => {
                    out.push(Replacement::new(items[i].value_range.clone(), value))
                }
                (Some(options), None) => {
                    let at = items.last().map_or(options.open + 1, |item| item.range.end);
                    let space = if items.is_empty() { "" } else { " " };
                    out.push(Replacement::insert(at, format!("{space}signed-by={value}")));
                }
                (None, _) => out.push(Replacement::insert(
                    layout.uri.start,
                    format!("[signed-by={value}] "),
                )),
            }
        }
        SignedByChange::Remove => {
            let (Some(options), Some(i)) = (options, existing) else {
                return Ok(());
            };
            if items.len() == 1 {
                out.push(Replacement::delete(options.open..layout.uri.start));
            } else if i == 0 {
                out.push(Replacement::delete(
                    items[0].range.start..items[1].range.start,
                ));
            } else {
                out.push(Replacement::delete(
                    items[i - 1].range.end..items[i].range.end,
                ));
            }
        }
    }
    Ok(())
}

fn stanza_edits(
    text: &str,
    eol: &str,
    entry: &SourceEntry,
    stanza: &StanzaLayout,
    edit: &Edit,
    out: &mut Vec<Replacement>,
) {
    if let Some(change) = &edit.uri {
        list_field(
            text,
            eol,
            stanza,
            "URIs",
            &entry.uris,
            &new_uris(&entry.uris, change),
            out,
        );
    }
    if let Some(change) = &edit.suite {
        list_field(
            text,
            eol,
            stanza,
            "Suites",
            &entry.suites,
            &new_suites(&entry.suites, change),
            out,
        );
    }
    if let Some(change) = &edit.components {
        let new = new_components(&entry.components, change);
        list_field(
            text,
            eol,
            stanza,
            "Components",
            &entry.components,
            &new,
            out,
        );
    }
    match (&edit.signed_by, stanza.field("Signed-By")) {
        (Some(SignedByChange::Set(signed_by)), _)
            if entry.signed_by.as_ref() == Some(signed_by) => {}
        (Some(SignedByChange::Set(signed_by)), Some(field)) => {
            out.push(Replacement::new(field.value.clone(), signed_by.to_deb822()));
        }
        (Some(SignedByChange::Set(signed_by)), None) => {
            out.push(append_field(
                text,
                eol,
                stanza,
                &format!("Signed-By:{}", signed_by.to_deb822()),
            ));
        }
        (Some(SignedByChange::Remove), Some(field)) => {
            out.push(Replacement::delete(field.region.clone()))
        }
        _ => {}
    }
    match (edit.enabled, entry.enabled, stanza.field("Enabled")) {
        (Some(false), true, Some(field)) => out.push(Replacement::new(field.value.clone(), " no")),
        (Some(false), true, None) => out.push(Replacement::insert(
            stanza.start,
            format!("Enabled: no{eol}"),
        )),
        // Enabling drops the field, so that disabling and enabling again
        // gives back the original bytes.
        (Some(true), false, Some(field)) => out.push(Replacement::delete(field.region.clone())),
        _ => {}
    }
}

/// A list-valued field changed word by word, filled when empty, added when
/// missing, removed when the list becomes empty.
fn list_field(
    text: &str,
    eol: &str,
    stanza: &StanzaLayout,
    name: &str,
    old: &[String],
    new: &[String],
    out: &mut Vec<Replacement>,
) {
    if old == new {
        return;
    }
    match (stanza.field(name), new.is_empty()) {
        (Some(field), true) => out.push(Replacement::delete(field.region.clone())),
        (Some(field), false) if field.tokens.is_empty() => {
            out.push(Replacement::new(
                field.value.clone(),
                format!(" {}", new.join(" ")),
            ));
        }
        (Some(field), false) => list_replacements(&field.tokens, old, new, out),
        (None, false) => out.push(append_field(
            text,
            eol,
            stanza,
            &format!("{name}: {}", new.join(" ")),
        )),
        (None, true) => {}
    }
}

/// A new field after the stanza's last field.
fn append_field(text: &str, eol: &str, stanza: &StanzaLayout, field: &str) -> Replacement {
    if stanza.end == text.len() && !text.ends_with('\n') {
        Replacement::insert(stanza.end, format!("{eol}{field}"))
    } else {
        Replacement::insert(stanza.end, format!("{field}{eol}"))
    }
}

/// Applies non-overlapping replacements; insertions at the same offset keep
/// the order they were made in.
fn apply(text: &str, mut replacements: Vec<Replacement>) -> Result<String, RewriteError> {
    replacements.sort_by_key(|r| (r.range.start, r.range.end));
    let mut out = String::with_capacity(text.len() + 64);
    let mut done = 0;
    for replacement in replacements {
        let Range { start, end } = replacement.range;
        let (Some(kept), true) = (
            text.get(done..start),
            end >= start && text.get(start..end).is_some(),
        ) else {
            return Err(RewriteError::Overlap(start));
        };
        out.push_str(kept);
        out.push_str(&replacement.text);
        done = end;
    }
    out.push_str(text.get(done..).unwrap_or_default());
    Ok(out)
}

/// A unified diff (`---`/`+++` headers, three lines of context), empty when
/// the texts are equal: what a plan shows of a sources change.
pub fn unified_diff(old: &str, new: &str, old_name: &str, new_name: &str) -> String {
    if old == new {
        return String::new();
    }
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(old_name, new_name)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::{parse_sources_text, Format};

    fn rewrite(text: &str, format: Format, matcher: Matcher, edit: Edit) -> String {
        let document = parse_sources_text(text, format).unwrap();
        document
            .rewrite(&matcher, &edit)
            .unwrap()
            .document
            .text()
            .to_string()
    }

    fn replace(old: &[&str], new: &[&str]) -> String {
        let text = old.join("  ");
        let tokens: Vec<Range<usize>> = crate::sources::tokens_in(&text, 0..text.len())
            .into_iter()
            .map(|(r, _)| r)
            .collect();
        let owned = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mut out = Vec::new();
        list_replacements(&tokens, &owned(old), &owned(new), &mut out);
        apply(&text, out).unwrap()
    }

    #[test]
    fn list_changes_touch_only_the_changed_words() {
        assert_eq!(
            replace(&["main", "contrib"], &["main", "contrib"]),
            "main  contrib"
        );
        assert_eq!(
            replace(&["main", "contrib"], &["main", "non-free"]),
            "main  non-free"
        );
        assert_eq!(
            replace(&["main", "contrib"], &["main", "contrib", "non-free"]),
            "main  contrib non-free"
        );
        assert_eq!(
            replace(&["main", "contrib", "non-free"], &["main", "non-free"]),
            "main  non-free"
        );
        assert_eq!(
            replace(&["main", "contrib", "non-free"], &["non-free"]),
            "non-free"
        );
        assert_eq!(replace(&["a", "b", "c"], &["c", "a"]), "c a");
        assert_eq!(replace(&["a", "b"], &["x", "y", "z"]), "x y z");
    }

    #[test]
    fn suite_changes() {
        let suites: Vec<String> = [
            "bookworm",
            "bookworm-security",
            "bookworm/updates",
            "bookwormish",
        ]
        .map(String::from)
        .to_vec();
        let change = SuiteChange::ReplaceCodename {
            from: "bookworm".into(),
            to: "trixie".into(),
        };
        assert_eq!(
            new_suites(&suites, &change),
            ["trixie", "trixie-security", "trixie/updates", "bookwormish"]
        );
    }

    #[test]
    fn one_line_signed_by_is_added_replaced_and_removed() {
        let set = |path: &str| Edit {
            signed_by: Some(SignedByChange::Set(SignedBy::keyring(path))),
            ..Edit::default()
        };
        let remove = Edit {
            signed_by: Some(SignedByChange::Remove),
            ..Edit::default()
        };
        let all = Matcher::default();
        let plain = "deb http://r.example.org/d s main\n";
        assert_eq!(
            rewrite(plain, Format::OneLine, all.clone(), set("/k.gpg")),
            "deb [signed-by=/k.gpg] http://r.example.org/d s main\n"
        );
        let with = "deb [arch=amd64  signed-by=/old.gpg] http://r.example.org/d s main\n";
        assert_eq!(
            rewrite(with, Format::OneLine, all.clone(), set("/k.gpg")),
            "deb [arch=amd64  signed-by=/k.gpg] http://r.example.org/d s main\n"
        );
        assert_eq!(
            rewrite(with, Format::OneLine, all.clone(), remove.clone()),
            "deb [arch=amd64] http://r.example.org/d s main\n"
        );
        let only = "deb [ signed-by=/old.gpg ]  http://r.example.org/d s main\n";
        assert_eq!(
            rewrite(only, Format::OneLine, all.clone(), remove),
            "deb http://r.example.org/d s main\n"
        );
        assert_eq!(
            rewrite(
                "deb [arch=amd64] http://r.example.org/d s main",
                Format::OneLine,
                all,
                set("/k.gpg")
            ),
            "deb [arch=amd64 signed-by=/k.gpg] http://r.example.org/d s main"
        );
    }

    #[test]
    fn one_line_enable_and_disable_round_trip() {
        let text = "  deb http://r.example.org/d s main\n#  deb http://r.example.org/d t main\n";
        let disable = Edit {
            enabled: Some(false),
            ..Edit::default()
        };
        let disabled = rewrite(text, Format::OneLine, Matcher::default(), disable);
        assert_eq!(
            disabled,
            "  # deb http://r.example.org/d s main\n#  deb http://r.example.org/d t main\n"
        );
        let enable = Edit {
            enabled: Some(true),
            ..Edit::default()
        };
        let enabled = rewrite(&disabled, Format::OneLine, Matcher::default(), enable);
        assert_eq!(
            enabled,
            "  deb http://r.example.org/d s main\ndeb http://r.example.org/d t main\n"
        );
    }

    #[test]
    fn deb822_fields_are_added_replaced_and_removed() {
        let text = "Types: deb\nURIs: http://r.example.org/d\nSuites: s\nComponents: main";
        let edit = Edit {
            signed_by: Some(SignedByChange::Set(SignedBy::keyring("/k.gpg"))),
            enabled: Some(false),
            components: Some(ComponentsChange::Add(vec!["contrib".into()])),
            ..Edit::default()
        };
        let out = rewrite(text, Format::Deb822, Matcher::default(), edit);
        assert_eq!(
            out,
            "Enabled: no\nTypes: deb\nURIs: http://r.example.org/d\nSuites: s\nComponents: main contrib\nSigned-By: /k.gpg"
        );
        let back = Edit {
            signed_by: Some(SignedByChange::Remove),
            enabled: Some(true),
            components: Some(ComponentsChange::Remove(vec!["contrib".into()])),
            ..Edit::default()
        };
        assert_eq!(
            rewrite(&out, Format::Deb822, Matcher::default(), back),
            text.to_string() + "\n"
        );
    }

    #[test]
    fn refusals_leave_the_document_alone() {
        let document =
            parse_sources_text("deb http://r.example.org/d s main\n", Format::OneLine).unwrap();
        let inline = Edit {
            signed_by: Some(SignedByChange::Set(SignedBy::Inline(
                "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nabc\n-----END PGP PUBLIC KEY BLOCK-----\n"
                    .into(),
            ))),
            ..Edit::default()
        };
        assert_eq!(
            document.rewrite(&Matcher::default(), &inline).unwrap_err(),
            RewriteError::InlineKeyInOneLine { line: 1 }
        );
        let spaces = Edit {
            suite: Some(SuiteChange::Set("a b".into())),
            ..Edit::default()
        };
        assert!(matches!(
            document.rewrite(&Matcher::default(), &spaces),
            Err(RewriteError::InvalidValue { what: "suite", .. })
        ));
        let empty = Edit {
            components: Some(ComponentsChange::Set(vec![])),
            ..Edit::default()
        };
        assert!(matches!(
            document.rewrite(&Matcher::default(), &empty),
            Err(RewriteError::WouldBreak(_))
        ));
    }

    #[test]
    fn matchers_select_by_uri_prefix_suite_component_type_and_state() {
        let text = "deb http://r.example.org/debian s main\ndeb-src http://r.example.org/debian-security s-security main\n# deb http://r.example.org/debian t contrib\n";
        let document = parse_sources_text(text, Format::OneLine).unwrap();
        let count = |matcher: Matcher| {
            document
                .entries()
                .iter()
                .filter(|e| matcher.matches(e))
                .count()
        };
        let prefix = |p: &str| Matcher {
            uri_prefix: Some(p.into()),
            ..Matcher::default()
        };
        assert_eq!(count(prefix("http://r.example.org/debian")), 2);
        assert_eq!(count(prefix("http://r.example.org/debian/")), 2);
        assert_eq!(count(prefix("http://r.example.org")), 3);
        assert_eq!(
            count(Matcher {
                component: Some("contrib".into()),
                enabled: Some(false),
                ..Matcher::default()
            }),
            1
        );
        assert_eq!(
            count(Matcher {
                source_type: Some(SourceType::DebSrc),
                suite: Some("s-security".into()),
                ..Matcher::default()
            }),
            1
        );
    }

    #[test]
    fn diffs_are_unified_and_empty_without_change() {
        assert_eq!(unified_diff("a\n", "a\n", "old", "new"), "");
        let diff = unified_diff("a\nb\n", "a\nc\n", "old", "new");
        assert!(diff.starts_with("--- old\n+++ new\n@@"), "{diff}");
        assert!(diff.contains("-b\n+c\n"), "{diff}");
    }
}
