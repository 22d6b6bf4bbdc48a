//! The target sources of a migration — the entries it points apt at that
//! the system does not use today — and the proof that each of them
//! answered: a Release fetched in this update, verified against the key
//! the entry names, or a blocker that names the source and what apt said.
//!
//! apt-get update exits 0 when a source is unreachable or refused (it
//! prints `Err:`/`W:` lines and keeps whatever lists it had), so success
//! is never read from its exit code. Not for the sources that stay as they
//! are: their lists are the system's current state.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ferry_deb::sources::{Format, SignedBy, SourceEntry, SourceType, SystemSources};
use serde::{Deserialize, Serialize};

use crate::finding::{Finding, FindingKey, Severity};

/// One (URI, suite) the migration fetches that the system does not today.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TargetSource {
    pub uri: String,
    pub suite: String,
    /// Keyring files (paths inside the root) of the entry's `Signed-By`;
    /// empty when it names none (apt then trusts `trusted.gpg.d`).
    pub keyrings: Vec<PathBuf>,
    /// The entry has an inline key or an armored keyring: apt's own
    /// verification is the proof, gpgv cannot read those here.
    pub inline_key: bool,
}

impl TargetSource {
    /// How findings and messages name it: the URL of its Release directory.
    pub fn label(&self) -> String {
        let uri = self.uri.trim_end_matches('/');
        if self.suite.ends_with('/') {
            format!("{uri}/{}", self.suite.trim_end_matches('/'))
        } else {
            format!("{uri}/dists/{}", self.suite)
        }
    }

    /// The prefix apt gives this source's files in its lists directory
    /// (`host_path_dists_suite_`), so `…InRelease`, `…Release`, and the
    /// indices of the suite all start with it.
    pub fn list_stem(&self) -> String {
        format!("{}_", crate::checks::list_prefix(&self.label()))
    }

    /// The Release file apt kept for this source in `lists`, if any.
    pub fn release_in(&self, lists: &Path) -> Option<ReleaseFile> {
        let stem = self.list_stem();
        let inrelease = lists.join(format!("{stem}InRelease"));
        if inrelease.is_file() {
            return Some(ReleaseFile::InRelease(inrelease));
        }
        let release = lists.join(format!("{stem}Release"));
        release.is_file().then(|| ReleaseFile::Detached {
            signature: lists.join(format!("{stem}Release.gpg")),
            release,
        })
    }
}

/// A Release apt stored: clear-signed, or with a detached signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseFile {
    InRelease(PathBuf),
    Detached {
        release: PathBuf,
        signature: PathBuf,
    },
}

impl ReleaseFile {
    pub fn path(&self) -> &Path {
        match self {
            ReleaseFile::InRelease(p) => p,
            ReleaseFile::Detached { release, .. } => release,
        }
    }
}

/// What makes two entries the same source for apt: where, which suite,
/// and which key vouches for it.
fn entry_key(entry: &SourceEntry) -> (Vec<String>, Vec<String>, String) {
    (
        entry.uris.clone(),
        entry.suites.clone(),
        format!("{:?}", entry.signed_by),
    )
}

fn binary_enabled(entry: &SourceEntry) -> bool {
    entry.enabled && entry.types.contains(&SourceType::Deb)
}

/// The sources the migration's files point apt at that no enabled entry
/// of the system has today with the same URI, suite and key. `changes`
/// are the sources files after the migration: (path inside the root, new
/// text), as the plan's sources changes carry them.
pub fn target_sources<'c>(
    system: &SystemSources,
    changes: impl IntoIterator<Item = (&'c str, &'c str)>,
) -> Vec<TargetSource> {
    let current: BTreeSet<_> = system
        .entries()
        .filter(|e| binary_enabled(e))
        .map(entry_key)
        .collect();
    let mut targets = BTreeSet::new();
    for (path, new_text) in changes {
        let format = if path.ends_with(".sources") {
            Format::Deb822
        } else {
            Format::OneLine
        };
        let Ok(document) = ferry_deb::sources::parse_sources_text(new_text, format) else {
            continue;
        };
        for entry in document.entries() {
            if !binary_enabled(entry) || current.contains(&entry_key(entry)) {
                continue;
            }
            let (keyrings, inline_key) = match &entry.signed_by {
                Some(SignedBy::Inline(_)) => (Vec::new(), true),
                Some(signed_by) => {
                    let files: Vec<PathBuf> = signed_by
                        .keyrings()
                        .into_iter()
                        .map(Path::to_path_buf)
                        .collect();
                    let armored = files
                        .iter()
                        .any(|f| f.extension().is_some_and(|e| e == "asc"));
                    (files, armored)
                }
                None => (Vec::new(), false),
            };
            for uri in &entry.uris {
                for suite in &entry.suites {
                    targets.insert(TargetSource {
                        uri: uri.clone(),
                        suite: suite.clone(),
                        keyrings: keyrings.clone(),
                        inline_key,
                    });
                }
            }
        }
    }
    targets.into_iter().collect()
}

/// The lines of an `apt-get update` run that speak of `target`: `Err:`,
/// `W:` and `E:` lines naming it, with the indented reason under an `Err:`.
pub fn apt_lines_about(target: &TargetSource, output: &[String]) -> Vec<String> {
    let uri = target.uri.trim_end_matches('/');
    let names_it = |line: &str| {
        line.contains(uri)
            && (line.contains(&format!(" {} ", target.suite))
                || line.contains(&format!("/{}/", target.suite))
                || line.contains(&format!("dists/{}", target.suite)))
    };
    let mut lines = Vec::new();
    let mut in_err = false;
    for line in output {
        if line.starts_with(' ') && in_err {
            lines.push(line.trim().to_string());
            continue;
        }
        in_err = false;
        let speaks = ["Err:", "W:", "E:"].iter().any(|p| line.starts_with(p));
        if speaks && names_it(line) {
            in_err = line.starts_with("Err:");
            lines.push(line.trim().to_string());
        }
    }
    lines
}

/// Whether apt's lines about a source say its signature was refused.
fn signature_refused(lines: &[String]) -> bool {
    const SIGNS: [&str; 7] = [
        "NO_PUBKEY",
        "is not signed",
        "GPG error",
        "signatures were invalid",
        "EXPKEYSIG",
        "BADSIG",
        "signatures couldn't be verified",
    ];
    lines.iter().any(|l| SIGNS.iter().any(|s| l.contains(s)))
}

/// Where a keyring of a target entry is read while checking: the plan's
/// sandbox copy (a key the profile installs) or the root's file.
pub trait KeyringPaths {
    fn keyring_path(&self, inside: &Path) -> PathBuf;
}

impl KeyringPaths for crate::apt::AptSandbox {
    fn keyring_path(&self, inside: &Path) -> PathBuf {
        self.key_path(inside)
    }
}

/// One blocker per target source that did not yield a fetched, verified
/// Release in `lists` after `apt-get update` printed `output`; `lists` must
/// not hold a target's files from before that update (the plan's sandbox
/// never copies them in).
pub fn unanswered_targets(
    targets: &[TargetSource],
    lists: &Path,
    output: &[String],
    keys: &dyn KeyringPaths,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    for target in targets {
        let label = target.label();
        let said = apt_lines_about(target, output);
        let apt_said = if said.is_empty() {
            "apt printed nothing about it".to_string()
        } else {
            format!("apt: {}", said.join(" | "))
        };
        let Some(release) = target.release_in(lists) else {
            let (key, finding, remediation) = if signature_refused(&said) {
                (
                    FindingKey::TargetSignature(label.clone()),
                    format!("the target source {label} is not signed by the key the profile gives it; {apt_said}"),
                    "check that the profile installs the new repository's signing key and that Signed-By names it",
                )
            } else {
                (
                    FindingKey::TargetUnreachable(label.clone()),
                    format!("the target source {label} did not answer with a Release; {apt_said}"),
                    "check the new repository's URI and suite, and that this machine reaches it; nothing was changed",
                )
            };
            findings.push(Finding::new(key, Severity::Blocker, finding, remediation));
            continue;
        };
        if let Err(why) = verify(target, &release, keys) {
            findings.push(Finding::new(
                FindingKey::TargetSignature(label.clone()),
                Severity::Blocker,
                format!("the Release of {label} does not verify: {why}"),
                "check that the profile installs the new repository's signing key and that Signed-By names it",
            ));
        }
    }
    findings
}

/// ferry's own check of what apt accepted: the Release must carry a good
/// signature by a key of the entry's keyrings (or the trusted keyrings
/// when it names none).
fn verify(
    target: &TargetSource,
    release: &ReleaseFile,
    keys: &dyn KeyringPaths,
) -> Result<(), String> {
    if target.inline_key {
        // gpgv reads binary keyrings only; apt verified against the key.
        return Ok(());
    }
    let keyrings: Vec<PathBuf> = if target.keyrings.is_empty() {
        trusted_keyrings(keys)
    } else {
        target
            .keyrings
            .iter()
            .map(|k| keys.keyring_path(k))
            .collect()
    };
    if keyrings.is_empty() {
        return Err("no keyring to check it against".into());
    }
    match release {
        ReleaseFile::InRelease(file) => ferry_fetch::verify_clearsigned(&keyrings, file)
            .map(drop)
            .map_err(|e| e.to_string()),
        ReleaseFile::Detached { release, signature } => {
            let mut last = String::from("no keyring accepted it");
            for keyring in &keyrings {
                match ferry_fetch::verify_detached(keyring, signature, release) {
                    Ok(_) => return Ok(()),
                    Err(e) => last = e.to_string(),
                }
            }
            Err(last)
        }
    }
}

fn trusted_keyrings(keys: &dyn KeyringPaths) -> Vec<PathBuf> {
    let mut keyrings = Vec::new();
    let single = keys.keyring_path(Path::new("/etc/apt/trusted.gpg"));
    if single.is_file() {
        keyrings.push(single);
    }
    let parts = keys.keyring_path(Path::new("/etc/apt/trusted.gpg.d"));
    if let Ok(entries) = std::fs::read_dir(&parts) {
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "gpg"))
            .collect();
        files.sort();
        keyrings.extend(files);
    }
    keyrings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(uri: &str, suite: &str) -> TargetSource {
        TargetSource {
            uri: uri.into(),
            suite: suite.into(),
            keyrings: Vec::new(),
            inline_key: false,
        }
    }

    #[test]
    fn labels_and_list_stems_follow_apt() {
        let t = target("http://127.0.0.1:8080/", "stable");
        assert_eq!(t.label(), "http://127.0.0.1:8080/dists/stable");
        assert_eq!(t.list_stem(), "127.0.0.1:8080_dists_stable_");
        let t = target("http://h/debian", "bookworm-updates");
        assert_eq!(t.list_stem(), "h_debian_dists_bookworm-updates_");
        let flat = target("http://h/repo/", "./");
        assert_eq!(flat.label(), "http://h/repo/.");
    }

    #[test]
    fn apt_lines_about_a_source_keep_the_reason() {
        let t = target("http://127.0.0.1:9/", "stable");
        let output: Vec<String> = [
            "Hit:1 http://127.0.0.1:8000 stable InRelease",
            "Err:2 http://127.0.0.1:9 stable InRelease",
            "  Could not connect to 127.0.0.1:9 (127.0.0.1). - connect (111: Connection refused)",
            "Reading package lists...",
            "W: Failed to fetch http://127.0.0.1:9/dists/stable/InRelease  Could not connect",
            "W: Some index files failed to download. They have been ignored, or old ones used instead.",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let lines = apt_lines_about(&t, &output);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines[1].contains("Connection refused"));
        assert!(!signature_refused(&lines));
        let signed: Vec<String> = vec![
            "W: GPG error: http://127.0.0.1:9 stable InRelease: The following signatures couldn't be verified because the public key is not available: NO_PUBKEY 0123".into(),
            "E: The repository 'http://127.0.0.1:9 stable InRelease' is not signed.".into(),
        ];
        let lines = apt_lines_about(&t, &signed);
        assert_eq!(lines.len(), 2);
        assert!(signature_refused(&lines));
    }

    struct Root(PathBuf);
    impl KeyringPaths for Root {
        fn keyring_path(&self, inside: &Path) -> PathBuf {
            self.0.join(inside.strip_prefix("/").unwrap_or(inside))
        }
    }

    #[test]
    fn a_target_without_a_release_blocks_with_its_name() {
        let lists = tempfile::tempdir().unwrap();
        let t = target("http://127.0.0.1:9/", "stable");
        // The old source's lists are there; they must not count.
        std::fs::write(
            lists.path().join("127.0.0.1:8000_dists_stable_InRelease"),
            "x",
        )
        .unwrap();
        let findings = unanswered_targets(
            std::slice::from_ref(&t),
            lists.path(),
            &[
                "Err:1 http://127.0.0.1:9 stable InRelease".into(),
                "  404  Not Found".into(),
            ],
            &Root(lists.path().to_path_buf()),
        );
        assert_eq!(findings.len(), 1);
        assert_eq!(
            findings[0].key,
            FindingKey::TargetUnreachable("http://127.0.0.1:9/dists/stable".into())
        );
        assert_eq!(findings[0].severity, Severity::Blocker);
        assert!(
            findings[0].finding.contains("404  Not Found"),
            "{}",
            findings[0].finding
        );
        assert!(t.release_in(lists.path()).is_none());
    }
}
