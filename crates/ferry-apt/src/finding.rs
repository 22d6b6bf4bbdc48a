//! What a plan reports: findings, their severity, and the stable key each
//! one carries. A key is a `FindingKey` in code and one string outside it
//! (`unexpected-removal:acme-tools`, `apt-update`): the human output, the
//! JSON and automation that acts on it all see that string, and code
//! matches on the variant, never on the string. Not for deciding what is
//! found (plan, checks, target, backup do that).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Blocker,
}

/// One result of a check: a stable key automation can act on, what was
/// found, and what to do about it (the shape of Leapp's inhibitors).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub key: FindingKey,
    pub severity: Severity,
    pub finding: String,
    pub remediation: String,
    /// The packages a finding about many stands for (`not-from-a-repository`):
    /// one finding with a count for people, the list here for scripts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<String>,
}

impl Finding {
    pub fn new(
        key: FindingKey,
        severity: Severity,
        finding: impl Into<String>,
        remediation: impl Into<String>,
    ) -> Self {
        Finding {
            key,
            severity,
            finding: finding.into(),
            remediation: remediation.into(),
            packages: Vec::new(),
        }
    }
}

/// A field of a Release file a profile's `expect_release` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReleaseField {
    Origin,
    Label,
    Suite,
    Codename,
}

impl ReleaseField {
    /// The field as a Release file spells it.
    pub fn field_name(self) -> &'static str {
        match self {
            ReleaseField::Origin => "Origin",
            ReleaseField::Label => "Label",
            ReleaseField::Suite => "Suite",
            ReleaseField::Codename => "Codename",
        }
    }

    /// The field in a finding key (`release-origin:URI`).
    fn key_name(self) -> &'static str {
        match self {
            ReleaseField::Origin => "release-origin",
            ReleaseField::Label => "release-label",
            ReleaseField::Suite => "release-suite",
            ReleaseField::Codename => "release-codename",
        }
    }
}

/// The stable key of a finding, with its subject (a package name, a URL, a
/// path…). Its string form — `Display`, `FromStr` and serde all use the
/// same one — is what docs/profile.md lists; changing it breaks automation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FindingKey {
    /// apt would remove this installed package, and the profile does not say so.
    UnexpectedRemoval(String),
    /// This installed package stays, and no target repository offers it.
    NoVersionInTarget(String),
    /// No version of this installed package is installable with the target sources.
    UninstallableInTarget(String),
    /// This package is held.
    HeldPackage(String),
    AptUpdate,
    AptUpdateWarnings,
    AptSimulation,
    /// A target source (`URI/dists/SUITE`) did not answer with a Release.
    TargetUnreachable(String),
    /// A target source's Release is not signed by its key.
    TargetSignature(String),
    /// The new Release at this URI does not carry what `expect_release` says.
    Release(ReleaseField, String),
    /// Too little free space on the filesystem of this path.
    FreeSpace(String),
    OsId,
    OsVersion,
    KernelVersion,
    OsRelease,
    /// This required command is missing.
    MissingCommand(String),
    DpkgAudit,
    /// The system's native architecture cannot be known (dpkg's own
    /// package is not in its status); nothing is assumed in its place.
    NativeArchitecture,
    /// No configured repository offers this package's installed version
    /// (the key of plans before these were counted in one finding).
    NotFromARepository(String),
    /// No configured repository offers the installed version of some
    /// packages (`Finding::packages` lists them).
    NotFromRepositories,
    /// apt has no package lists: what repositories offer is unknown.
    AptLists,
    /// Source rule N (from 1) of the profile matches no entry.
    SourceRuleUnmatched(usize),
    /// A removal names this Essential package.
    RemoveEssential(String),
    /// Nothing can provide this package's `.deb` for the backup.
    BackupImpossible(String),
    /// Only the old repository can provide this package's `.deb` for the backup.
    BackupFromOldRepository(String),
    /// Where the backup's `.deb`s come from.
    BackupSources,
}

/// A string that is no finding key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a finding key")]
pub struct UnknownFindingKey(pub String);

impl FindingKey {
    /// The part before the `:`, and the subject after it if there is one.
    fn parts(&self) -> (&'static str, Option<Subject<'_>>) {
        use FindingKey::*;
        fn text(s: &str) -> Option<Subject<'_>> {
            Some(Subject::Text(s))
        }
        match self {
            UnexpectedRemoval(s) => ("unexpected-removal", text(s)),
            NoVersionInTarget(s) => ("no-version-in-target", text(s)),
            UninstallableInTarget(s) => ("uninstallable-in-target", text(s)),
            HeldPackage(s) => ("held-package", text(s)),
            AptUpdate => ("apt-update", None),
            AptUpdateWarnings => ("apt-update-warnings", None),
            AptSimulation => ("apt-simulation", None),
            TargetUnreachable(s) => ("target-unreachable", text(s)),
            TargetSignature(s) => ("target-signature", text(s)),
            Release(field, s) => (field.key_name(), text(s)),
            FreeSpace(s) => ("free-space", text(s)),
            OsId => ("os-id", None),
            OsVersion => ("os-version", None),
            KernelVersion => ("kernel-version", None),
            OsRelease => ("os-release", None),
            MissingCommand(s) => ("missing-command", text(s)),
            DpkgAudit => ("dpkg-audit", None),
            NativeArchitecture => ("native-architecture", None),
            NotFromARepository(s) => ("not-from-a-repository", text(s)),
            NotFromRepositories => ("not-from-a-repository", None),
            AptLists => ("apt-lists", None),
            SourceRuleUnmatched(n) => ("source-rule-unmatched", Some(Subject::Number(*n))),
            RemoveEssential(s) => ("remove-essential", text(s)),
            BackupImpossible(s) => ("backup-impossible", text(s)),
            BackupFromOldRepository(s) => ("backup-from-old-repository", text(s)),
            BackupSources => ("backup-sources", None),
        }
    }
}

/// What follows a key's `:`.
enum Subject<'a> {
    Text(&'a str),
    Number(usize),
}

impl fmt::Display for FindingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, subject) = self.parts();
        f.write_str(name)?;
        match subject {
            None => Ok(()),
            Some(Subject::Text(text)) => write!(f, ":{text}"),
            Some(Subject::Number(n)) => write!(f, ":{n}"),
        }
    }
}

impl FromStr for FindingKey {
    type Err = UnknownFindingKey;

    /// The inverse of `Display`. The subject is everything after the first
    /// `:` (URLs carry their own).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        use FindingKey::*;
        let unknown = || UnknownFindingKey(s.to_string());
        let Some((name, subject)) = s.split_once(':') else {
            return Ok(match s {
                "apt-update" => AptUpdate,
                "apt-update-warnings" => AptUpdateWarnings,
                "apt-simulation" => AptSimulation,
                "os-id" => OsId,
                "os-version" => OsVersion,
                "kernel-version" => KernelVersion,
                "os-release" => OsRelease,
                "dpkg-audit" => DpkgAudit,
                "native-architecture" => NativeArchitecture,
                "backup-sources" => BackupSources,
                "not-from-a-repository" => NotFromRepositories,
                "apt-lists" => AptLists,
                _ => return Err(unknown()),
            });
        };
        let text = subject.to_string();
        Ok(match name {
            "unexpected-removal" => UnexpectedRemoval(text),
            "no-version-in-target" => NoVersionInTarget(text),
            "uninstallable-in-target" => UninstallableInTarget(text),
            "held-package" => HeldPackage(text),
            "target-unreachable" => TargetUnreachable(text),
            "target-signature" => TargetSignature(text),
            "release-origin" => Release(ReleaseField::Origin, text),
            "release-label" => Release(ReleaseField::Label, text),
            "release-suite" => Release(ReleaseField::Suite, text),
            "release-codename" => Release(ReleaseField::Codename, text),
            "free-space" => FreeSpace(text),
            "missing-command" => MissingCommand(text),
            "not-from-a-repository" => NotFromARepository(text),
            // Only the digits `Display` writes: `+1` or `01` would not
            // come back as they were.
            "source-rule-unmatched" => match subject.parse::<usize>() {
                Ok(n) if n.to_string() == subject => SourceRuleUnmatched(n),
                _ => return Err(unknown()),
            },
            "remove-essential" => RemoveEssential(text),
            "backup-impossible" => BackupImpossible(text),
            "backup-from-old-repository" => BackupFromOldRepository(text),
            _ => return Err(unknown()),
        })
    }
}

impl Serialize for FindingKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for FindingKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One of each variant; the match makes a new variant fail to compile
    /// here until it has an example.
    fn examples() -> Vec<FindingKey> {
        use FindingKey::*;
        let all = vec![
            UnexpectedRemoval("acme-extra".into()),
            NoVersionInTarget("acme-extra".into()),
            UninstallableInTarget("acme-plugin".into()),
            HeldPackage("acme-tools".into()),
            AptUpdate,
            AptUpdateWarnings,
            AptSimulation,
            TargetUnreachable("http://127.0.0.1:9/dists/stable".into()),
            TargetSignature("file:/srv/repo/dists/bookworm".into()),
            Release(
                ReleaseField::Origin,
                "http://repo.example.org/debian".into(),
            ),
            Release(ReleaseField::Label, "http://repo.example.org/debian".into()),
            Release(ReleaseField::Suite, "http://repo.example.org/debian".into()),
            Release(
                ReleaseField::Codename,
                "http://repo.example.org/debian".into(),
            ),
            FreeSpace("/var/cache/apt/archives".into()),
            OsId,
            OsVersion,
            KernelVersion,
            OsRelease,
            MissingCommand("systemctl".into()),
            DpkgAudit,
            NotFromARepository("local-tool".into()),
            SourceRuleUnmatched(2),
            RemoveEssential("base-files".into()),
            BackupImpossible("acme-daemon".into()),
            BackupFromOldRepository("acme-daemon".into()),
            BackupSources,
            NativeArchitecture,
            NotFromRepositories,
            AptLists,
        ];
        let mut variants = std::collections::BTreeSet::new();
        for key in &all {
            variants.insert(match key {
                UnexpectedRemoval(_) => 0,
                NoVersionInTarget(_) => 1,
                UninstallableInTarget(_) => 2,
                HeldPackage(_) => 3,
                AptUpdate => 4,
                AptUpdateWarnings => 5,
                AptSimulation => 6,
                TargetUnreachable(_) => 7,
                TargetSignature(_) => 8,
                Release(ReleaseField::Origin, _) => 9,
                Release(ReleaseField::Label, _) => 10,
                Release(ReleaseField::Suite, _) => 11,
                Release(ReleaseField::Codename, _) => 12,
                FreeSpace(_) => 13,
                OsId => 14,
                OsVersion => 15,
                KernelVersion => 16,
                OsRelease => 17,
                MissingCommand(_) => 18,
                DpkgAudit => 19,
                NotFromARepository(_) => 20,
                SourceRuleUnmatched(_) => 21,
                RemoveEssential(_) => 22,
                BackupImpossible(_) => 23,
                BackupFromOldRepository(_) => 24,
                BackupSources => 25,
                NativeArchitecture => 26,
                NotFromRepositories => 27,
                AptLists => 28,
            });
        }
        assert_eq!(variants.len(), 29, "an example of every variant");
        all
    }

    #[test]
    fn strings_that_are_no_key_are_refused() {
        for text in [
            "",
            "apt-update:",
            "os-id:debian",
            "native-architecture:amd64",
            "unexpected-removal",
            "release-version:http://x/",
            "source-rule-unmatched:one",
            "source-rule-unmatched:+1",
            "source-rule-unmatched:01",
            "Held-Package:acme",
        ] {
            assert_eq!(
                text.parse::<FindingKey>(),
                Err(UnknownFindingKey(text.into())),
                "{text:?}"
            );
        }
        let json = serde_json::from_str::<FindingKey>("\"dpkg-audit:now\"");
        assert!(json.is_err(), "{json:?}");
    }

    #[test]
    fn every_key_round_trips_through_its_one_string() {
        let strings: Vec<String> = examples().iter().map(ToString::to_string).collect();
        for (key, text) in examples().into_iter().zip(&strings) {
            assert_eq!(text.parse::<FindingKey>().as_ref(), Ok(&key), "{text}");
            let json = serde_json::to_string(&key).unwrap();
            assert_eq!(json, serde_json::to_string(text).unwrap());
            assert_eq!(serde_json::from_str::<FindingKey>(&json).unwrap(), key);
        }
        // The strings docs/profile.md documents, as automation reads them.
        assert_eq!(
            strings,
            [
                "unexpected-removal:acme-extra",
                "no-version-in-target:acme-extra",
                "uninstallable-in-target:acme-plugin",
                "held-package:acme-tools",
                "apt-update",
                "apt-update-warnings",
                "apt-simulation",
                "target-unreachable:http://127.0.0.1:9/dists/stable",
                "target-signature:file:/srv/repo/dists/bookworm",
                "release-origin:http://repo.example.org/debian",
                "release-label:http://repo.example.org/debian",
                "release-suite:http://repo.example.org/debian",
                "release-codename:http://repo.example.org/debian",
                "free-space:/var/cache/apt/archives",
                "os-id",
                "os-version",
                "kernel-version",
                "os-release",
                "missing-command:systemctl",
                "dpkg-audit",
                "not-from-a-repository:local-tool",
                "source-rule-unmatched:2",
                "remove-essential:base-files",
                "backup-impossible:acme-daemon",
                "backup-from-old-repository:acme-daemon",
                "backup-sources",
                "native-architecture",
                "not-from-a-repository",
                "apt-lists",
            ]
        );
    }

    #[test]
    fn a_finding_serializes_its_key_as_the_string() {
        let finding = Finding::new(
            FindingKey::HeldPackage("acme-tools".into()),
            Severity::Info,
            "acme-tools is held and stays as it is",
            "nothing to do",
        );
        let json = serde_json::to_value(&finding).unwrap();
        assert_eq!(json["key"], "held-package:acme-tools");
        assert_eq!(json["severity"], "info");
    }
}
