//! Migration profiles: the TOML file that says what a migration does.
//!
//! Schema version 1 is documented in `docs/profile.md`. Everything is
//! checked here, at the edge: unknown keys, wrong types, bad package names,
//! version constraints and paths are errors with the file, line and column,
//! so nothing later re-checks strings and nothing is touched on bad input.
//! Not for deciding what the profile means for a system: that is `plan`.

use std::path::{Path, PathBuf};

use ferry_deb::relation::RelOp;
use ferry_deb::Version;
use serde::Deserialize;
use toml::Spanned;

/// The schema versions this ferry reads.
pub const SCHEMA_VERSION: u32 = 1;

/// A profile that cannot be used, and where in its file the problem is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}:{column}: {message}", path.display())]
pub struct ProfileError {
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
    /// The offending line of the file, for a snippet under the message.
    pub source_line: String,
}

/// A checked profile, with key files already read.
#[derive(Debug, Clone, serde::Serialize, Deserialize)]
pub struct Profile {
    pub path: PathBuf,
    pub name: String,
    pub description: Option<String>,
    pub sources: Vec<SourceRule>,
    pub keys: Vec<Key>,
    pub replace: Vec<Replacement>,
    pub remove: Vec<PackageName>,
    pub install: Vec<PackageName>,
    pub pins: Vec<Pin>,
    pub checks: Checks,
    pub verify: Verify,
    pub hooks: Vec<Hook>,
    /// Whole sources files the migration writes after the rules are
    /// applied: a release upgrade's bundle brings them. Not written in a
    /// profile file; an older saved profile has none.
    #[serde(default)]
    pub add_sources: Vec<AddedSources>,
    /// apt may remove packages the target no longer carries (a release
    /// upgrade's library transitions): such removals are warnings, not
    /// blockers. Essential packages are never removed. Set for release
    /// upgrades; not written in a profile file.
    #[serde(default)]
    pub allow_removals: bool,
    /// How far apt may go beyond the packages the profile names. A saved
    /// profile from before this setting existed ran a full upgrade.
    #[serde(default = "Upgrade::before_setting_existed")]
    pub upgrade: Upgrade,
}

/// What a migration upgrades besides the packages its profile names
/// (`[packages] upgrade = "none" | "safe" | "full"`).
///
/// The default is `none`: moving a source is not a request to upgrade the
/// system, so only what the profile names changes, plus what apt must
/// change to satisfy those packages' dependencies. `safe` is `apt-get
/// upgrade` (newer versions, nothing removed, nothing new), `full` is
/// `apt-get dist-upgrade` (what a release upgrade does).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Upgrade {
    #[default]
    None,
    Safe,
    Full,
}

impl Upgrade {
    fn before_setting_existed() -> Self {
        Upgrade::Full
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Upgrade::None => "none",
            Upgrade::Safe => "safe",
            Upgrade::Full => "full",
        }
    }
}

/// A sources file a migration installs as it is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct AddedSources {
    /// The path inside the root, e.g. `/etc/apt/sources.list.d/debian.sources`.
    pub path: String,
    pub text: String,
}

/// A Debian package name: lowercase letters, digits and `+ - .`, at least
/// two characters, starting with a letter or digit (Debian policy 5.6.1).
/// It can never hold a space or a shell metacharacter.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PackageName(String);

impl TryFrom<String> for PackageName {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        PackageName::parse(&text)
    }
}

impl From<PackageName> for String {
    fn from(name: PackageName) -> String {
        name.0
    }
}

impl PackageName {
    pub fn parse(text: &str) -> Result<Self, String> {
        let valid_start = text
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let valid_rest = text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b));
        if text.len() >= 2 && valid_start && valid_rest {
            Ok(PackageName(text.to_string()))
        } else {
            Err(format!(
                "`{text}` is not a Debian package name (lowercase letters, digits, + - ., at least 2 characters)"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for PackageName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `>= 1.2`: an operator and a version.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct VersionRequirement {
    pub op: RelOp,
    pub version: Version,
}

impl VersionRequirement {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let ops = [
            ("<<", RelOp::Lt),
            ("<=", RelOp::Le),
            (">>", RelOp::Gt),
            (">=", RelOp::Ge),
            ("=", RelOp::Eq),
        ];
        let (op, rest) = ops
            .iter()
            .find_map(|(prefix, op)| text.strip_prefix(prefix).map(|rest| (*op, rest)))
            .ok_or_else(|| {
                format!("`{text}` has no operator: write e.g. `>= 1.2` (<< <= = >= >>)")
            })?;
        let version = Version::parse(rest.trim()).map_err(|e| format!("`{}`: {e}", rest.trim()))?;
        Ok(VersionRequirement { op, version })
    }

    pub fn allows(&self, version: &ferry_deb::VersionRef<'_>) -> bool {
        self.op.holds(version.cmp(&self.version.as_ref()))
    }
}

impl std::fmt::Display for VersionRequirement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.op.as_str(), self.version)
    }
}

/// Which APT source entries a rule applies to; unset fields match anything.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct SourceMatch {
    /// A URI prefix, compared without a trailing `/`.
    pub uri: Option<String>,
    pub suite: Option<String>,
    pub component: Option<String>,
}

/// What a matched entry becomes; unset fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct SourceChange {
    pub uri: Option<String>,
    pub suite: Option<String>,
    pub components: Option<Vec<String>>,
    pub signed_by: Option<String>,
    pub enabled: Option<bool>,
}

/// The Release fields the new repository is expected to carry. APT refuses
/// an Origin/Label/Suite change unless told; ferry allows exactly these.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct ExpectRelease {
    pub origin: Option<String>,
    pub label: Option<String>,
    pub suite: Option<String>,
    pub codename: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct SourceRule {
    pub matches: SourceMatch,
    pub set: SourceChange,
    pub expect_release: Option<ExpectRelease>,
}

/// A key to install: where it goes and its bytes (binary or armored).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct Key {
    pub install_to: PathBuf,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct Replacement {
    pub from: PackageName,
    pub to: PackageName,
}

/// An APT pin written to `/etc/apt/preferences.d/` for the migration.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct Pin {
    pub package: String,
    pub pin: String,
    pub priority: i32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct Checks {
    /// Minimum free space in MiB per path apt writes to (`/var/cache/apt`, `/usr`, `/boot`).
    pub min_free_mib: Vec<(PathBuf, u64)>,
    /// Accepted os-release `ID`s; empty accepts any.
    pub os_ids: Vec<String>,
    pub os_version: Option<VersionRequirement>,
    pub kernel: Option<VersionRequirement>,
    /// Commands that must be on PATH inside the root.
    pub commands: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct Verify {
    /// os-release fields and the values they must have afterwards.
    pub os_release: Vec<(String, String)>,
    pub packages: Vec<(PackageName, VersionRequirement)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HookWhen {
    Before,
    After,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct Hook {
    pub when: HookWhen,
    /// A script path, run with `/bin/sh -c` inside the root.
    pub run: String,
    pub timeout_seconds: u64,
}

// The file as written. Every table denies unknown keys so a typo is an
// error at its line, not a silently ignored setting.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    schema: Spanned<u32>,
    name: Spanned<String>,
    description: Option<String>,
    #[serde(default)]
    sources: Vec<RawSourceRule>,
    #[serde(default)]
    keys: Vec<Spanned<RawKey>>,
    #[serde(default)]
    packages: RawPackages,
    #[serde(default)]
    pins: Vec<RawPin>,
    #[serde(default)]
    checks: RawChecks,
    #[serde(default)]
    verify: RawVerify,
    #[serde(default)]
    hooks: Vec<RawHook>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSourceRule {
    #[serde(rename = "match")]
    matches: Spanned<RawSourceMatch>,
    set: RawSourceChange,
    expect_release: Option<RawExpectRelease>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSourceMatch {
    uri: Option<Spanned<String>>,
    suite: Option<String>,
    component: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSourceChange {
    uri: Option<Spanned<String>>,
    suite: Option<String>,
    components: Option<Vec<String>>,
    signed_by: Option<Spanned<String>>,
    enabled: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpectRelease {
    origin: Option<String>,
    label: Option<String>,
    suite: Option<String>,
    codename: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    install_to: Spanned<String>,
    file: Option<Spanned<String>>,
    armored: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPackages {
    #[serde(default)]
    replace: Vec<RawReplacement>,
    #[serde(default)]
    remove: Vec<Spanned<String>>,
    #[serde(default)]
    install: Vec<Spanned<String>>,
    #[serde(default)]
    upgrade: Upgrade,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReplacement {
    from: Spanned<String>,
    to: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPin {
    package: String,
    pin: String,
    priority: i32,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawChecks {
    #[serde(default)]
    min_free_mib: toml::Table,
    #[serde(default)]
    os_ids: Vec<String>,
    os_version: Option<Spanned<String>>,
    kernel: Option<Spanned<String>>,
    #[serde(default)]
    commands: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawVerify {
    #[serde(default)]
    os_release: toml::Table,
    #[serde(default)]
    packages: Vec<RawVersionCheck>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVersionCheck {
    name: Spanned<String>,
    version: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHook {
    when: HookWhen,
    run: Spanned<String>,
    #[serde(default = "default_hook_timeout")]
    timeout_seconds: u64,
}

fn default_hook_timeout() -> u64 {
    300
}

impl Profile {
    /// Reads and checks a profile file; key files are read relative to it.
    pub fn load(path: &Path) -> Result<Profile, ProfileError> {
        let bytes = std::fs::read(path).map_err(|e| ProfileError {
            path: path.to_path_buf(),
            line: 0,
            column: 0,
            message: format!("cannot read the profile: {e}"),
            source_line: String::new(),
        })?;
        let text =
            String::from_utf8(bytes).map_err(|e| not_utf8(path, e.as_bytes(), e.utf8_error()))?;
        Profile::parse(&text, path)
    }

    /// Checks a profile's text; `path` names it in errors and anchors key files.
    pub fn parse(text: &str, path: &Path) -> Result<Profile, ProfileError> {
        let checker = Checker { text, path };
        let raw: RawProfile = toml::from_str(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            checker.error(offset, e.message().trim().to_string())
        })?;
        checker.profile(raw)
    }
}

/// A profile that is not UTF-8 (TOML is UTF-8): where the first bad byte
/// is, its line and its column in characters, both 1-based.
fn not_utf8(path: &Path, bytes: &[u8], error: std::str::Utf8Error) -> ProfileError {
    let at = error.valid_up_to();
    let line_start = bytes[..at]
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    let line_end = bytes[at..]
        .iter()
        .position(|b| *b == b'\n')
        .map_or(bytes.len(), |i| at + i);
    // The bytes before `at` are valid UTF-8, so they count as characters.
    let column = String::from_utf8_lossy(&bytes[line_start..at])
        .chars()
        .count()
        + 1;
    ProfileError {
        path: path.to_path_buf(),
        line: bytes[..at].iter().filter(|b| **b == b'\n').count() + 1,
        column,
        message: format!(
            "the profile is not UTF-8 (byte 0x{:02x}); TOML files are UTF-8",
            bytes[at]
        ),
        source_line: String::from_utf8_lossy(&bytes[line_start..line_end]).into_owned(),
    }
}

struct Checker<'a> {
    text: &'a str,
    path: &'a Path,
}

impl Checker<'_> {
    fn error(&self, offset: usize, message: String) -> ProfileError {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |n| n + 1);
        let column = self.text[line_start..offset].chars().count() + 1;
        let source_line = self.text[line_start..]
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        ProfileError {
            path: self.path.to_path_buf(),
            line,
            column,
            message,
            source_line,
        }
    }

    fn at<T>(&self, spanned: &Spanned<T>, message: String) -> ProfileError {
        self.error(spanned.span().start, message)
    }

    fn package(&self, name: &Spanned<String>) -> Result<PackageName, ProfileError> {
        PackageName::parse(name.get_ref()).map_err(|m| self.at(name, m))
    }

    fn requirement(&self, text: &Spanned<String>) -> Result<VersionRequirement, ProfileError> {
        VersionRequirement::parse(text.get_ref()).map_err(|m| self.at(text, m))
    }

    fn uri(&self, uri: &Spanned<String>) -> Result<String, ProfileError> {
        let text = uri.get_ref();
        let scheme_ok = ["http://", "https://", "file:/", "mirror+", "tor+", "cdrom:"]
            .iter()
            .any(|s| text.starts_with(s));
        if !scheme_ok || text.contains(char::is_whitespace) {
            return Err(self.at(
                uri,
                format!("`{text}` is not an APT URI (expected http://, https://, file:/ …, without spaces)"),
            ));
        }
        Ok(text.trim_end_matches('/').to_string())
    }

    fn absolute(&self, path: &Spanned<String>) -> Result<PathBuf, ProfileError> {
        let p = Path::new(path.get_ref());
        if p.is_absolute() && !p.components().any(|c| c == std::path::Component::ParentDir) {
            Ok(p.to_path_buf())
        } else {
            Err(self.at(
                path,
                format!("`{}` must be an absolute path without `..`", path.get_ref()),
            ))
        }
    }

    fn profile(&self, raw: RawProfile) -> Result<Profile, ProfileError> {
        if *raw.schema.get_ref() != SCHEMA_VERSION {
            return Err(self.at(
                &raw.schema,
                format!(
                    "schema {} is not known to this ferry (it reads schema {SCHEMA_VERSION})",
                    raw.schema.get_ref()
                ),
            ));
        }
        let name = raw.name.get_ref();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(self.at(
                &raw.name,
                format!("migration name `{name}` must be letters, digits, - _ . (it names files)"),
            ));
        }
        let mut sources = Vec::new();
        for rule in &raw.sources {
            let m = rule.matches.get_ref();
            if m.uri.is_none() && m.suite.is_none() && m.component.is_none() {
                return Err(self.at(
                    &rule.matches,
                    "a source rule must match on at least one of uri, suite, component".into(),
                ));
            }
            sources.push(SourceRule {
                matches: SourceMatch {
                    uri: m.uri.as_ref().map(|u| self.uri(u)).transpose()?,
                    suite: m.suite.clone(),
                    component: m.component.clone(),
                },
                set: SourceChange {
                    uri: rule.set.uri.as_ref().map(|u| self.uri(u)).transpose()?,
                    suite: rule.set.suite.clone(),
                    components: rule.set.components.clone(),
                    signed_by: match &rule.set.signed_by {
                        Some(p) => Some(self.absolute(p)?.display().to_string()),
                        None => None,
                    },
                    enabled: rule.set.enabled,
                },
                expect_release: rule.expect_release.as_ref().map(|e| ExpectRelease {
                    origin: e.origin.clone(),
                    label: e.label.clone(),
                    suite: e.suite.clone(),
                    codename: e.codename.clone(),
                }),
            });
        }
        let mut keys = Vec::new();
        for key in &raw.keys {
            keys.push(self.key(key)?);
        }
        let replace = raw
            .packages
            .replace
            .iter()
            .map(|r| {
                Ok(Replacement {
                    from: self.package(&r.from)?,
                    to: self.package(&r.to)?,
                })
            })
            .collect::<Result<Vec<_>, ProfileError>>()?;
        let remove = raw
            .packages
            .remove
            .iter()
            .map(|n| self.package(n))
            .collect::<Result<Vec<_>, _>>()?;
        let install = raw
            .packages
            .install
            .iter()
            .map(|n| self.package(n))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Profile {
            path: self.path.to_path_buf(),
            name: name.clone(),
            description: raw.description,
            sources,
            keys,
            replace,
            remove,
            install,
            pins: raw
                .pins
                .into_iter()
                .map(|p| Pin {
                    package: p.package,
                    pin: p.pin,
                    priority: p.priority,
                })
                .collect(),
            checks: self.checks(&raw.checks)?,
            verify: self.verify(&raw.verify)?,
            add_sources: Vec::new(),
            allow_removals: false,
            upgrade: raw.packages.upgrade,
            hooks: raw
                .hooks
                .iter()
                .map(|h| {
                    if h.run.get_ref().trim().is_empty() {
                        return Err(self.at(&h.run, "a hook needs a command to run".into()));
                    }
                    Ok(Hook {
                        when: h.when,
                        run: h.run.get_ref().clone(),
                        timeout_seconds: h.timeout_seconds,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        })
    }

    fn key(&self, key: &Spanned<RawKey>) -> Result<Key, ProfileError> {
        let raw = key.get_ref();
        let install_to = self.absolute(&raw.install_to)?;
        let bytes = match (&raw.file, &raw.armored) {
            (Some(file), None) => {
                let base = self.path.parent().unwrap_or(Path::new("."));
                let full = base.join(file.get_ref());
                std::fs::read(&full).map_err(|e| {
                    self.at(
                        file,
                        format!("cannot read key file {}: {e}", full.display()),
                    )
                })?
            }
            (None, Some(armored)) => {
                if !armored.contains("-----BEGIN PGP PUBLIC KEY BLOCK-----") {
                    return Err(self.at(
                        key,
                        "`armored` must hold an ASCII-armored public key".into(),
                    ));
                }
                armored.as_bytes().to_vec()
            }
            _ => return Err(self.at(
                key,
                "a key needs exactly one of `file` (a path relative to the profile) or `armored`"
                    .into(),
            )),
        };
        Ok(Key { install_to, bytes })
    }

    fn checks(&self, raw: &RawChecks) -> Result<Checks, ProfileError> {
        let mut min_free_mib = Vec::new();
        for (path, value) in &raw.min_free_mib {
            let mib = value.as_integer().filter(|n| *n >= 0).ok_or_else(|| {
                self.error(
                    self.text.find(path.as_str()).unwrap_or(0),
                    format!("min_free_mib.\"{path}\" must be a whole number of MiB"),
                )
            })?;
            min_free_mib.push((PathBuf::from(path), mib as u64));
        }
        Ok(Checks {
            min_free_mib,
            os_ids: raw.os_ids.clone(),
            os_version: raw
                .os_version
                .as_ref()
                .map(|r| self.requirement(r))
                .transpose()?,
            kernel: raw
                .kernel
                .as_ref()
                .map(|r| self.requirement(r))
                .transpose()?,
            commands: raw.commands.clone(),
        })
    }

    fn verify(&self, raw: &RawVerify) -> Result<Verify, ProfileError> {
        let mut os_release = Vec::new();
        for (key, value) in &raw.os_release {
            let text = value.as_str().ok_or_else(|| {
                self.error(
                    self.text.find(key.as_str()).unwrap_or(0),
                    format!("verify.os_release.{key} must be a string"),
                )
            })?;
            os_release.push((key.clone(), text.to_string()));
        }
        let packages = raw
            .packages
            .iter()
            .map(|p| Ok((self.package(&p.name)?, self.requirement(&p.version)?)))
            .collect::<Result<Vec<_>, ProfileError>>()?;
        Ok(Verify {
            os_release,
            packages,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_that_is_not_utf8_is_refused_at_its_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(&path, b"schema = 1\nname = \"Jos\xe9\"\n").unwrap();
        let e = Profile::load(&path).unwrap_err();
        assert_eq!((e.line, e.column), (2, 12), "{e}");
        assert!(e.message.contains("not UTF-8 (byte 0xe9)"), "{e}");
        assert_eq!(e.source_line, "name = \"Jos\u{fffd}\"");
    }

    const FULL: &str = r#"
schema = 1
name = "acme-org-move"
description = "Move from the old-org repository to new-org"

[[sources]]
match = { uri = "http://old.example.org/debian/", suite = "stable" }
set = { uri = "http://new.example.org/debian", signed_by = "/usr/share/keyrings/new-org.gpg" }
expect_release = { origin = "new-org", label = "new-org" }

[[keys]]
install_to = "/usr/share/keyrings/new-org.gpg"
armored = """
-----BEGIN PGP PUBLIC KEY BLOCK-----
AAAA
-----END PGP PUBLIC KEY BLOCK-----
"""

[packages]
replace = [{ from = "acme-daemon", to = "acme-core" }]
remove = ["acme-legacy"]
install = ["acme-tools"]

[[pins]]
package = "acme-*"
pin = "origin new.example.org"
priority = 1001

[checks]
min_free_mib = { "/var/cache/apt" = 200, "/usr" = 500 }
os_ids = ["debian", "raspbian"]
os_version = ">= 12"
kernel = ">= 5.10"
commands = ["systemctl"]

[verify]
os_release = { VERSION_CODENAME = "bookworm" }
packages = [{ name = "acme-sdk", version = ">= 1.1" }]

[[hooks]]
when = "before"
run = "/usr/share/acme/stop-services"
timeout_seconds = 60
"#;

    #[test]
    fn a_full_profile_reads_into_checked_types() {
        let p = Profile::parse(FULL, Path::new("move.toml")).unwrap();
        assert_eq!(p.name, "acme-org-move");
        assert_eq!(
            p.sources[0].matches.uri.as_deref(),
            Some("http://old.example.org/debian")
        );
        assert_eq!(
            p.sources[0].set.signed_by.as_deref(),
            Some("/usr/share/keyrings/new-org.gpg")
        );
        assert_eq!(p.replace[0].to.as_str(), "acme-core");
        assert_eq!(p.remove[0].as_str(), "acme-legacy");
        assert_eq!(p.checks.min_free_mib.len(), 2);
        assert_eq!(p.checks.kernel.as_ref().unwrap().to_string(), ">= 5.10");
        assert_eq!(p.verify.packages[0].1.op, RelOp::Ge);
        assert_eq!(p.hooks[0].timeout_seconds, 60);
        assert!(p.keys[0].bytes.starts_with(b"-----BEGIN PGP"));
    }

    #[test]
    fn upgrade_defaults_to_none_and_takes_the_three_words_only() {
        let p = Profile::parse("schema = 1\nname = \"x\"\n", Path::new("p.toml")).unwrap();
        assert_eq!(p.upgrade, Upgrade::None);
        for (word, expected) in [
            ("none", Upgrade::None),
            ("safe", Upgrade::Safe),
            ("full", Upgrade::Full),
        ] {
            let text = format!("schema = 1\nname = \"x\"\n[packages]\nupgrade = \"{word}\"\n");
            assert_eq!(
                Profile::parse(&text, Path::new("p.toml")).unwrap().upgrade,
                expected
            );
        }
        let e = error_of("schema = 1\nname = \"x\"\n[packages]\nupgrade = \"dist\"\n");
        assert_eq!(e.line, 4);
        assert!(
            e.message.contains("unknown variant `dist`"),
            "{}",
            e.message
        );
        // A run saved before the setting existed did a full upgrade, and
        // resumes doing one.
        let mut saved = serde_json::to_value(&p).unwrap();
        saved.as_object_mut().unwrap().remove("upgrade");
        let resumed: Profile = serde_json::from_value(saved).unwrap();
        assert_eq!(resumed.upgrade, Upgrade::Full);
    }

    fn error_of(text: &str) -> ProfileError {
        Profile::parse(text, Path::new("p.toml")).unwrap_err()
    }

    #[test]
    fn unknown_keys_are_errors_at_their_line_and_column() {
        let e = error_of("schema = 1\nname = \"x\"\n[packages]\nremvoe = [\"a\"]\n");
        assert_eq!((e.line, e.column), (4, 1));
        assert!(
            e.message.contains("unknown field `remvoe`"),
            "{}",
            e.message
        );
        assert_eq!(e.source_line, "remvoe = [\"a\"]");
    }

    #[test]
    fn wrong_types_and_bad_values_point_at_the_value() {
        let e = error_of("schema = 1\nname = \"x\"\n[packages]\nremove = \"acme\"\n");
        assert_eq!(e.line, 4);
        let e = error_of(
            "schema = 1\nname = \"x\"\n[packages]\nremove = [\"ok-name\", \"Bad Name\"]\n",
        );
        assert_eq!((e.line, e.column), (4, 22));
        assert!(e.message.contains("not a Debian package name"));
        let e = error_of("schema = 2\nname = \"x\"\n");
        assert_eq!((e.line, e.column), (1, 10));
        let e = error_of("schema = 1\nname = \"x\"\n[checks]\nkernel = \"5.10\"\n");
        assert!(e.message.contains("no operator"), "{}", e.message);
        let e = error_of(
            "schema = 1\nname = \"x\"\n[[keys]]\ninstall_to = \"rel/path\"\narmored = \"x\"\n",
        );
        assert_eq!(e.line, 4);
        let e = error_of("schema = 1\nname = \"x\"\n[[sources]]\nmatch = {}\nset = {}\n");
        assert!(e.message.contains("at least one"));
        let e = error_of("schema = 1\nname = \"x\"\n[[sources]]\nmatch = { uri = \"old.example.org\" }\nset = {}\n");
        assert!(e.message.contains("not an APT URI"));
    }

    #[test]
    fn missing_required_fields_are_named() {
        let e = error_of("name = \"x\"\n");
        assert!(
            e.message.contains("missing field `schema`"),
            "{}",
            e.message
        );
    }

    #[test]
    fn key_files_are_read_relative_to_the_profile() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("new.gpg"), b"\x99binary").unwrap();
        let profile = dir.path().join("move.toml");
        std::fs::write(
            &profile,
            "schema = 1\nname = \"x\"\n[[keys]]\ninstall_to = \"/etc/apt/keyrings/new.gpg\"\nfile = \"new.gpg\"\n",
        )
        .unwrap();
        let p = Profile::load(&profile).unwrap();
        assert_eq!(p.keys[0].bytes, b"\x99binary");
        std::fs::remove_file(dir.path().join("new.gpg")).unwrap();
        let e = Profile::load(&profile).unwrap_err();
        assert_eq!(e.line, 5);
        assert!(e.message.contains("cannot read key file"));
    }
}
