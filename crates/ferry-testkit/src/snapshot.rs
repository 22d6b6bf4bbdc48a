//! What a system "is" for the question "did ferry lose anything?": the
//! packages dpkg knows, apt's manual/auto marks, dpkg's selections, and
//! every file under /etc/apt by hash. Two snapshots compare equal when
//! nothing a user would miss has changed, and `diff` says what did.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Display};
use std::path::Path;

use crate::repo::sha256_hex;
use crate::TestkitError;

/// A package dpkg has files or configuration of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstalledPackage {
    pub name: String,
    pub version: String,
    pub architecture: String,
    /// dpkg's `${db:Status-Abbrev}`, e.g. `ii`, `rc`, `hi`.
    pub status: String,
}

impl Display for InstalledPackage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}]", self.version, self.status)
    }
}

/// The state of a system that a migration and its rollback must account
/// for. `Debug` is a summary; use [`Snapshot::diff`] to see differences.
///
/// Deliberately not `ferry_apt::Snapshot`, though both answer
/// "is it the same system": this one is the oracle the end-to-end tests
/// judge ferry's rollback with, so it shares no code with what it checks.
/// It asks the system's own tools inside the chroot (`dpkg-query`,
/// `apt-mark`, `dpkg --get-selections`) where ferry-apt parses the files
/// itself; a bug in ferry-apt's reading of dpkg's status would otherwise
/// hide in both sides of the comparison. (It also could not be: ferry-apt's
/// tests depend on this crate, so this crate must not depend on ferry-apt.)
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// By `name:arch`; packages dpkg lists as not installed are left out.
    pub packages: BTreeMap<String, InstalledPackage>,
    /// `apt-mark showmanual`.
    pub manual: BTreeSet<String>,
    /// `name:arch` marked `Auto-Installed: 1` in /var/lib/apt/extended_states.
    pub auto: BTreeSet<String>,
    /// `dpkg --get-selections`: package → install, hold, deinstall, purge.
    pub selections: BTreeMap<String, String>,
    /// Every entry under /etc/apt → `sha256:HEX`, `symlink:TARGET` or `dir`.
    pub apt_files: BTreeMap<String, String>,
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Snapshot {{ {} packages, {} manual, {} auto, {} selections, {} entries under /etc/apt }}",
            self.packages.len(),
            self.manual.len(),
            self.auto.len(),
            self.selections.len(),
            self.apt_files.len()
        )
    }
}

impl Snapshot {
    /// What changed from `self` to `other`, one line per difference
    /// (`+` added, `-` removed, `~` changed); empty when equal.
    pub fn diff(&self, other: &Snapshot) -> String {
        let mut out = String::new();
        diff_maps(&mut out, "package", &self.packages, &other.packages);
        diff_sets(&mut out, "manual mark", &self.manual, &other.manual);
        diff_sets(&mut out, "auto mark", &self.auto, &other.auto);
        diff_maps(&mut out, "selection", &self.selections, &other.selections);
        diff_maps(&mut out, "file", &self.apt_files, &other.apt_files);
        out
    }

    /// Panics with the differences when `self` differs from `before`.
    #[track_caller]
    pub fn assert_unchanged_from(&self, before: &Snapshot) {
        let diff = before.diff(self);
        assert!(diff.is_empty(), "the system changed:\n{diff}");
    }
}

fn diff_maps<V: Display + PartialEq>(
    out: &mut String,
    what: &str,
    old: &BTreeMap<String, V>,
    new: &BTreeMap<String, V>,
) {
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for key in keys {
        match (old.get(key), new.get(key)) {
            (Some(a), Some(b)) if a != b => out.push_str(&format!("~ {what} {key}: {a} -> {b}\n")),
            (Some(a), None) => out.push_str(&format!("- {what} {key}: {a}\n")),
            (None, Some(b)) => out.push_str(&format!("+ {what} {key}: {b}\n")),
            _ => {}
        }
    }
}

fn diff_sets(out: &mut String, what: &str, old: &BTreeSet<String>, new: &BTreeSet<String>) {
    for gone in old.difference(new) {
        out.push_str(&format!("- {what} {gone}\n"));
    }
    for added in new.difference(old) {
        out.push_str(&format!("+ {what} {added}\n"));
    }
}

/// The format string for `dpkg-query -W` that [`parse_packages`] reads.
pub(crate) const DPKG_QUERY_FORMAT: &str =
    "${Package}\t${Architecture}\t${Version}\t${db:Status-Abbrev}\n";

pub(crate) fn parse_packages(text: &str) -> BTreeMap<String, InstalledPackage> {
    let mut packages = BTreeMap::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        let [name, architecture, version, status] = fields[..] else {
            continue;
        };
        let status = status.trim();
        // `un`, `pn`: dpkg remembers the name, but nothing is on the system.
        if status.chars().nth(1) == Some('n') {
            continue;
        }
        packages.insert(
            format!("{name}:{architecture}"),
            InstalledPackage {
                name: name.into(),
                version: version.into(),
                architecture: architecture.into(),
                status: status.into(),
            },
        );
    }
    packages
}

pub(crate) fn parse_selections(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            Some((words.next()?.to_string(), words.next()?.to_string()))
        })
        .collect()
}

pub(crate) fn parse_words(text: &str) -> BTreeSet<String> {
    text.split_whitespace().map(String::from).collect()
}

/// `name:arch` of every stanza with `Auto-Installed: 1`.
pub(crate) fn parse_extended_states(text: &str) -> BTreeSet<String> {
    let mut auto = BTreeSet::new();
    let lines: Vec<&str> = text.lines().collect();
    for stanza in lines.split(|l| l.trim().is_empty()) {
        let field = |name: &str| {
            stanza.iter().find_map(|l| {
                let (key, value) = l.split_once(':')?;
                key.eq_ignore_ascii_case(name).then(|| value.trim())
            })
        };
        if let (Some(name), Some("1")) = (field("Package"), field("Auto-Installed")) {
            let arch = field("Architecture").unwrap_or("");
            auto.insert(format!("{name}:{arch}"));
        }
    }
    auto
}

/// Hashes everything under `root/etc/apt`, keyed by the path inside root.
pub(crate) fn hash_apt_files(root: &Path) -> Result<BTreeMap<String, String>, TestkitError> {
    let mut files = BTreeMap::new();
    let base = root.join("etc/apt");
    if base.exists() {
        walk(root, &base, &mut files)?;
    }
    Ok(files)
}

fn walk(root: &Path, dir: &Path, files: &mut BTreeMap<String, String>) -> Result<(), TestkitError> {
    for entry in std::fs::read_dir(dir).map_err(TestkitError::io(dir))? {
        let path = entry.map_err(TestkitError::io(dir))?.path();
        let inside = format!(
            "/{}",
            path.strip_prefix(root).unwrap_or(&path).to_string_lossy()
        );
        let meta = std::fs::symlink_metadata(&path).map_err(TestkitError::io(&path))?;
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path).map_err(TestkitError::io(&path))?;
            files.insert(inside, format!("symlink:{}", target.display()));
        } else if meta.is_dir() {
            files.insert(inside, "dir".into());
            walk(root, &path, files)?;
        } else {
            let bytes = std::fs::read(&path).map_err(TestkitError::io(&path))?;
            files.insert(inside, format!("sha256:{}", sha256_hex(&bytes)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_are_parsed_and_not_installed_names_dropped() {
        let packages =
            parse_packages("apt\tamd64\t2.6.1\tii \nsdk\tall\t1.0\trc \ngone\tall\t\tpn \n");
        assert_eq!(
            packages.keys().collect::<Vec<_>>(),
            ["apt:amd64", "sdk:all"]
        );
        assert_eq!(packages["sdk:all"].status, "rc");

        let auto = parse_extended_states(
            "Package: libfoo\nArchitecture: amd64\nAuto-Installed: 1\n\nPackage: bar\nArchitecture: amd64\nAuto-Installed: 0\n",
        );
        assert_eq!(auto.into_iter().collect::<Vec<_>>(), ["libfoo:amd64"]);

        let selections = parse_selections("apt\t\t\t\t\tinstall\nsdk\t\t\t\t\thold\n");
        assert_eq!(selections["sdk"], "hold");
    }

    #[test]
    fn diff_lists_each_difference_once() {
        let mut before = Snapshot {
            packages: parse_packages("a\tall\t1\tii \nb\tall\t1\tii \n"),
            ..Snapshot::default()
        };
        before
            .apt_files
            .insert("/etc/apt/sources.list".into(), "sha256:00".into());
        let mut after = before.clone();
        assert_eq!(before.diff(&after), "");
        after.packages = parse_packages("a\tall\t2\tii \nc\tall\t1\tii \n");
        after.manual.insert("c".into());
        after.apt_files.clear();
        assert_eq!(
            before.diff(&after),
            "~ package a:all: 1 [ii] -> 2 [ii]\n\
             - package b:all: 1 [ii]\n\
             + package c:all: 1 [ii]\n\
             + manual mark c\n\
             - file /etc/apt/sources.list: sha256:00\n"
        );
        assert_ne!(before, after);
    }
}
