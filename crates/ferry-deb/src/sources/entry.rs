//! The typed value of one APT source entry, whichever format it was written
//! in, and the small rules shared by both formats: apt's booleans, keys in
//! `Signed-By`, the one-line option names and their deb822 field names, and
//! what counts as the same URI.

use std::path::PathBuf;

use serde::Serialize;

/// What an entry fetches: binary packages or source packages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum SourceType {
    #[serde(rename = "deb")]
    Deb,
    #[serde(rename = "deb-src")]
    DebSrc,
}

impl SourceType {
    /// The types apt knows on Debian; anything else makes apt refuse the file.
    pub fn parse(text: &str) -> Option<SourceType> {
        match text {
            "deb" => Some(SourceType::Deb),
            "deb-src" => Some(SourceType::DebSrc),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SourceType::Deb => "deb",
            SourceType::DebSrc => "deb-src",
        }
    }
}

impl std::fmt::Display for SourceType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which format a sources file is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// `deb [options] uri suite components…`, one entry a line (`.list`).
    OneLine,
    /// deb822 stanzas (`.sources`).
    Deb822,
}

impl Format {
    /// The format apt reads a file in: deb822 for a `.sources` name, the
    /// one-line format for anything else (`sources.list`, `*.list`).
    pub fn for_path(path: &std::path::Path) -> Format {
        match path.extension() {
            Some(ext) if ext == "sources" => Format::Deb822,
            _ => Format::OneLine,
        }
    }
}

/// One key selector of `Signed-By`: a keyring file or a key's fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyRef {
    /// An absolute path to a keyring (binary or armored).
    Keyring(PathBuf),
    /// 40 upper-case hex digits, with a trailing `!` when subkeys must not
    /// count, as apt normalises it.
    Fingerprint(String),
}

/// The keys a source must be signed with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignedBy {
    /// Keyring files and fingerprints, in the order written (apt accepts a
    /// mix: the fingerprints then select keys from the keyrings).
    Keys(Vec<KeyRef>),
    /// An ASCII-armored public key block written into the stanza (deb822
    /// only), with real newlines and blank lines, ending in a newline.
    Inline(String),
}

const ARMOR_BEGIN: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----";
const ARMOR_END: &str = "-----END PGP PUBLIC KEY BLOCK-----";

/// Why a `Signed-By` value was refused; `offset` is the byte offset of the
/// bad part in the value as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SignedByError {
    pub offset: usize,
    pub message: String,
    pub expected: &'static str,
}

impl SignedBy {
    /// A keyring file, the usual case.
    pub fn keyring(path: impl Into<PathBuf>) -> SignedBy {
        SignedBy::Keys(vec![KeyRef::Keyring(path.into())])
    }

    /// Reads a value as apt does (`NormalizeSignedBy`): an armored key block
    /// when it holds one, else paths and fingerprints separated by commas or
    /// whitespace. `lines` are the value's lines without continuation
    /// markers; a lone `.` is an empty line of an inline key.
    pub(crate) fn parse_lines(lines: &[&str]) -> Result<SignedBy, SignedByError> {
        if lines.iter().any(|line| line.contains(ARMOR_BEGIN)) {
            let mut key = String::new();
            for line in lines.iter().map(|line| line.trim()) {
                if key.is_empty() && line.is_empty() {
                    continue;
                }
                key.push_str(if line == "." { "" } else { line });
                key.push('\n');
            }
            if !key.contains(ARMOR_END) {
                return Err(SignedByError {
                    offset: 0,
                    message: "the inline key block has no end line".into(),
                    expected: "`-----END PGP PUBLIC KEY BLOCK-----` closing the key",
                });
            }
            return Ok(SignedBy::Inline(key));
        }
        let joined = lines.join("\n");
        Self::parse_keys(&joined)
    }

    /// Paths and fingerprints separated by commas or whitespace.
    pub(crate) fn parse_keys(value: &str) -> Result<SignedBy, SignedByError> {
        let mut keys = Vec::new();
        for (offset, part) in split_keys(value) {
            if part.starts_with('/') {
                keys.push(KeyRef::Keyring(PathBuf::from(part)));
            } else if let Some(fingerprint) = normalize_fingerprint(part) {
                keys.push(KeyRef::Fingerprint(fingerprint));
            } else {
                return Err(SignedByError {
                    offset,
                    message: format!("`{part}` is neither an absolute keyring path nor a fingerprint"),
                    expected: "an absolute path such as /usr/share/keyrings/x.gpg or a 40-hex-digit fingerprint",
                });
            }
        }
        if keys.is_empty() {
            return Err(SignedByError {
                offset: 0,
                message: "`Signed-By` is empty".into(),
                expected: "a keyring path, a fingerprint or an inline key",
            });
        }
        Ok(SignedBy::Keys(keys))
    }

    /// The value as written in a one-line `[signed-by=…]` option; `None` for
    /// an inline key, which that format cannot hold.
    pub fn to_one_line(&self) -> Option<String> {
        match self {
            SignedBy::Keys(keys) => Some(
                keys.iter()
                    .map(KeyRef::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            SignedBy::Inline(_) => None,
        }
    }

    /// The value as written after `Signed-By:` in a stanza, continuation
    /// lines included, without the final newline.
    pub fn to_deb822(&self) -> String {
        match self {
            SignedBy::Keys(keys) => {
                let keys: Vec<String> = keys.iter().map(KeyRef::to_string).collect();
                format!(" {}", keys.join(" "))
            }
            SignedBy::Inline(key) => {
                let mut out = String::new();
                for line in key.lines() {
                    out.push_str("\n ");
                    out.push_str(if line.trim().is_empty() { "." } else { line });
                }
                out
            }
        }
    }

    /// The keyring files named, for backups and checks.
    pub fn keyrings(&self) -> Vec<&std::path::Path> {
        match self {
            SignedBy::Keys(keys) => keys
                .iter()
                .filter_map(|key| match key {
                    KeyRef::Keyring(path) => Some(path.as_path()),
                    KeyRef::Fingerprint(_) => None,
                })
                .collect(),
            SignedBy::Inline(_) => Vec::new(),
        }
    }

    /// A short human description, for tables.
    pub fn summary(&self) -> String {
        match self {
            SignedBy::Keys(keys) => keys
                .iter()
                .map(KeyRef::to_string)
                .collect::<Vec<_>>()
                .join(" "),
            SignedBy::Inline(_) => "(inline key)".to_string(),
        }
    }
}

impl std::fmt::Display for KeyRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyRef::Keyring(path) => write!(f, "{}", path.display()),
            KeyRef::Fingerprint(fingerprint) => f.write_str(fingerprint),
        }
    }
}

/// The comma- or whitespace-separated parts of a value, with their offsets.
fn split_keys(value: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut parts = Vec::new();
    let mut start = None;
    for (i, c) in value.char_indices() {
        let separator = c == ',' || c.is_ascii_whitespace();
        match (separator, start) {
            (true, Some(s)) => {
                parts.push((s, &value[s..i]));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        parts.push((s, &value[s..]));
    }
    parts.into_iter()
}

/// apt accepts exactly 40 hex digits, optionally followed by `!`.
fn normalize_fingerprint(text: &str) -> Option<String> {
    let (hex, bang) = match text.strip_suffix('!') {
        Some(hex) => (hex, "!"),
        None => (text, ""),
    };
    (hex.len() == 40 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| format!("{}{bang}", hex.to_ascii_uppercase()))
}

/// An option other than the typed ones, kept as written: the one-line key
/// (`trusted`, `lang`) or the deb822 field name (`Trusted`, `X-Repolib-Name`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceOption {
    pub name: String,
    pub value: String,
}

/// One entry of a sources file: a one-line entry (enabled or written as a
/// `# deb …` comment) or one deb822 stanza.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceEntry {
    pub format: Format,
    /// One type for a one-line entry; a stanza may list both.
    pub types: Vec<SourceType>,
    /// As written, `"` quotes and `%xx` escapes of the one-line format
    /// decoded as apt does. Empty only in a disabled stanza.
    pub uris: Vec<String>,
    pub suites: Vec<String>,
    /// Empty for a flat repository (a suite ending in `/`).
    pub components: Vec<String>,
    /// Empty when not restricted (`arch=` / `Architectures:`).
    pub architectures: Vec<String>,
    pub signed_by: Option<SignedBy>,
    /// False for a `# deb …` line or an `Enabled: no` stanza.
    pub enabled: bool,
    /// Every other option, in the order written.
    pub options: Vec<SourceOption>,
    /// The file it was read from; empty when parsed from bare text.
    pub path: PathBuf,
    /// 1-based line of the entry (a stanza's first field).
    pub line: usize,
    /// 1-based stanza number in a `.sources` file: what apt names the entry
    /// by (`Sourcesentry: file:N` in `apt-get indextargets`).
    pub stanza: Option<usize>,
}

impl SourceEntry {
    /// The value of an untyped option, by name, case-insensitively.
    pub fn option(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .rev()
            .find(|option| option.name.eq_ignore_ascii_case(name))
            .map(|option| option.value.as_str())
    }

    /// How apt names this entry: `path:line` for a one-line entry,
    /// `path:stanza` for a deb822 stanza.
    pub fn apt_location(&self) -> String {
        format!(
            "{}:{}",
            self.path.display(),
            self.stanza.unwrap_or(self.line)
        )
    }

    /// Whether any URI starts with `prefix`, path segment by path segment:
    /// `http://h/debian` matches `http://h/debian/` but not
    /// `http://h/debian-security/`.
    pub fn has_uri_prefix(&self, prefix: &str) -> bool {
        self.uris
            .iter()
            .any(|uri| strip_uri_prefix(uri, prefix).is_some())
    }
}

/// What follows `prefix` in `uri` when `uri` starts with it at a path
/// segment boundary; trailing slashes on either side do not matter.
pub(crate) fn strip_uri_prefix<'a>(uri: &'a str, prefix: &str) -> Option<&'a str> {
    let prefix = prefix.trim_end_matches('/');
    let rest = uri.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

/// A URI as apt compares it: with a final `/`.
pub(crate) fn normalized_uri(uri: &str) -> String {
    if uri.ends_with('/') {
        uri.to_string()
    } else {
        format!("{uri}/")
    }
}

/// apt's `StringToBool`: `None` when the text is none of its words, which
/// apt then treats as the default.
pub(crate) fn apt_bool(text: &str) -> Option<bool> {
    let text = text.trim();
    let is = |word: &str| text.eq_ignore_ascii_case(word);
    if text == "0"
        || ["no", "false", "without", "off", "disable"]
            .into_iter()
            .any(is)
    {
        Some(false)
    } else if text == "1" || ["yes", "true", "with", "on", "enable"].into_iter().any(is) {
        Some(true)
    } else {
        None
    }
}

/// One-line option keys and the deb822 fields apt maps them to (see
/// sources.list(5)); `true` when the value is a list (commas in one-line,
/// spaces in deb822).
pub(crate) const OPTION_FIELDS: &[(&str, &str, bool)] = &[
    ("arch", "Architectures", true),
    ("arch+", "Architectures-Add", true),
    ("arch-", "Architectures-Remove", true),
    ("lang", "Languages", true),
    ("lang+", "Languages-Add", true),
    ("lang-", "Languages-Remove", true),
    ("target", "Targets", true),
    ("target+", "Targets-Add", true),
    ("target-", "Targets-Remove", true),
    ("signed-by", "Signed-By", true),
    ("trusted", "Trusted", false),
    ("pdiffs", "PDiffs", false),
    ("by-hash", "By-Hash", false),
    ("check-valid-until", "Check-Valid-Until", false),
    ("valid-until-min", "Valid-Until-Min", false),
    ("valid-until-max", "Valid-Until-Max", false),
    ("check-date", "Check-Date", false),
    ("date-max-future", "Date-Max-Future", false),
    ("allow-insecure", "Allow-Insecure", false),
    ("allow-weak", "Allow-Weak", false),
    (
        "allow-downgrade-to-insecure",
        "Allow-Downgrade-To-Insecure",
        false,
    ),
    ("inrelease-path", "InRelease-Path", false),
    ("snapshot", "Snapshot", false),
    ("include", "Include", false),
    ("exclude", "Exclude", false),
];

/// The deb822 field for a one-line option, and its value in deb822 form.
/// Unknown keys are kept as they are: apt ignores them in both formats.
/// Whether a one-line option apt does not know would, written as a deb822
/// field, be read as a field apt does know: deb822 field names are
/// case-insensitive, one-line option names are not (`sIgned-by=` is ignored
/// in a `.list`, but `sIgned-by:` is `Signed-By:` in a `.sources`).
pub(crate) fn shadows_known_field(one_line_key: &str) -> bool {
    const CORE: [&str; 5] = ["Types", "URIs", "Suites", "Components", "Enabled"];
    let known = OPTION_FIELDS.iter().any(|(key, _, _)| *key == one_line_key);
    !known
        && (CORE.iter().any(|f| f.eq_ignore_ascii_case(one_line_key))
            || OPTION_FIELDS
                .iter()
                .any(|(_, field, _)| field.eq_ignore_ascii_case(one_line_key)))
}

pub(crate) fn deb822_option(key: &str, value: &str) -> (String, String) {
    match OPTION_FIELDS
        .iter()
        .find(|(one_line, _, _)| *one_line == key)
    {
        Some((_, field, true)) => (
            (*field).to_string(),
            value
                .split(',')
                .filter(|v| !v.is_empty())
                .collect::<Vec<_>>()
                .join(" "),
        ),
        Some((_, field, false)) => ((*field).to_string(), value.to_string()),
        None => (key.to_string(), value.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_by_paths_fingerprints_and_inline_keys() {
        let fpr = "f35057cb1d8c7bec072a3e18d0f45bebf101591f";
        let keys = SignedBy::parse_keys(&format!("/usr/share/keyrings/a.gpg, {fpr}!")).unwrap();
        assert_eq!(
            keys,
            SignedBy::Keys(vec![
                KeyRef::Keyring("/usr/share/keyrings/a.gpg".into()),
                KeyRef::Fingerprint(format!("{}!", fpr.to_uppercase())),
            ])
        );
        let err = SignedBy::parse_keys("/a.gpg relative.gpg").unwrap_err();
        assert_eq!(err.offset, 7);
        assert!(SignedBy::parse_keys(" , ").is_err());

        let lines = [
            "",
            "-----BEGIN PGP PUBLIC KEY BLOCK-----",
            ".",
            "abc",
            "-----END PGP PUBLIC KEY BLOCK-----",
        ];
        let inline = SignedBy::parse_lines(&lines).unwrap();
        let SignedBy::Inline(key) = &inline else {
            panic!("not inline: {inline:?}")
        };
        assert_eq!(
            key,
            "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nabc\n-----END PGP PUBLIC KEY BLOCK-----\n"
        );
        assert_eq!(
            inline.to_deb822(),
            "\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n abc\n -----END PGP PUBLIC KEY BLOCK-----"
        );
        assert!(SignedBy::parse_lines(&lines[..3]).is_err());
    }

    #[test]
    fn uri_prefixes_match_whole_path_segments() {
        assert_eq!(
            strip_uri_prefix("http://h/debian/", "http://h/debian"),
            Some("/")
        );
        assert_eq!(
            strip_uri_prefix("http://h/debian", "http://h/debian/"),
            Some("")
        );
        assert_eq!(
            strip_uri_prefix("http://h/debian-security", "http://h/debian"),
            None
        );
        assert_eq!(normalized_uri("http://h/x"), "http://h/x/");
    }

    #[test]
    fn apt_booleans() {
        assert_eq!(apt_bool("No"), Some(false));
        assert_eq!(apt_bool("0"), Some(false));
        assert_eq!(apt_bool("yes"), Some(true));
        assert_eq!(apt_bool("perhaps"), None);
    }

    #[test]
    fn option_names_map_to_fields() {
        assert_eq!(
            deb822_option("arch", "amd64,arm64"),
            ("Architectures".into(), "amd64 arm64".into())
        );
        assert_eq!(
            deb822_option("trusted", "yes"),
            ("Trusted".into(), "yes".into())
        );
        assert_eq!(
            deb822_option("x-custom", "a,b"),
            ("x-custom".into(), "a,b".into())
        );
    }
}
