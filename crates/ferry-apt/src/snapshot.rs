//! What "the same system" means for ferry: the installed package set (name,
//! architecture, version, manual/auto mark, dpkg selection) and every file
//! under `/etc/apt` (content hash, mode, link target). A backup stores one;
//! a rollback captures another and proves equality with `diff`.
//!
//! Read from files only (dpkg status, apt's extended_states, the tree), so
//! it works the same on `/` and on a mounted root. Not for saving files.
//!
//! The end-to-end tests compare systems with ferry-testkit's own snapshot,
//! built from dpkg's and apt's tools, on purpose: an oracle does not share
//! code with what it checks.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ferry_deb::package::{RelationFields, Selection};
use serde::{Deserialize, Serialize};

use crate::system::{StatusError, SystemRoot};

/// One installed package, keyed by `name:arch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstalledPackage {
    pub version: String,
    /// Installed because the admin asked (manual) or as a dependency (auto).
    pub manual: bool,
    /// dpkg's selection: install, hold, deinstall, purge.
    pub selection: String,
}

/// A file under `/etc/apt`: what it holds and how it may be accessed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileState {
    /// sha256 of the content, `dir` for directories, `link:TARGET` for symlinks.
    pub content: String,
    pub mode: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub packages: BTreeMap<String, InstalledPackage>,
    pub etc_apt: BTreeMap<String, FileState>,
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Status(#[from] StatusError),
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Snapshot {
    pub fn capture(system: &SystemRoot) -> Result<Snapshot, SnapshotError> {
        Ok(Snapshot {
            packages: installed_packages(system)?,
            etc_apt: hash_tree(&system.host_path("etc/apt"))?,
        })
    }

    /// Every difference, one readable line each; empty when equal.
    pub fn diff(&self, after: &Snapshot) -> Vec<String> {
        let mut lines = Vec::new();
        let names: BTreeSet<&String> = self.packages.keys().chain(after.packages.keys()).collect();
        for name in names {
            match (self.packages.get(name), after.packages.get(name)) {
                (Some(b), None) => lines.push(format!("package {name} {} is gone", b.version)),
                (None, Some(a)) => lines.push(format!("package {name} {} was added", a.version)),
                (Some(b), Some(a)) if b != a => {
                    if b.version != a.version {
                        lines.push(format!(
                            "package {name}: version {} -> {}",
                            b.version, a.version
                        ));
                    }
                    if b.manual != a.manual {
                        let mark = |m: bool| if m { "manual" } else { "auto" };
                        lines.push(format!(
                            "package {name}: mark {} -> {}",
                            mark(b.manual),
                            mark(a.manual)
                        ));
                    }
                    if b.selection != a.selection {
                        lines.push(format!(
                            "package {name}: selection {} -> {}",
                            b.selection, a.selection
                        ));
                    }
                }
                _ => {}
            }
        }
        let paths: BTreeSet<&String> = self.etc_apt.keys().chain(after.etc_apt.keys()).collect();
        for path in paths {
            match (self.etc_apt.get(path), after.etc_apt.get(path)) {
                (Some(_), None) => lines.push(format!("/etc/apt/{path} is gone")),
                (None, Some(_)) => lines.push(format!("/etc/apt/{path} was added")),
                (Some(b), Some(a)) if b.content != a.content => {
                    lines.push(format!("/etc/apt/{path}: content differs"))
                }
                (Some(b), Some(a)) if b.mode != a.mode => lines.push(format!(
                    "/etc/apt/{path}: mode {:o} -> {:o}",
                    b.mode, a.mode
                )),
                _ => {}
            }
        }
        lines
    }
}

/// The packages dpkg has unpacked or better, with apt's marks.
pub fn installed_packages(
    system: &SystemRoot,
) -> Result<BTreeMap<String, InstalledPackage>, SnapshotError> {
    let status = system.dpkg_status()?;
    // Without a native architecture no arch:all package can be matched to
    // apt's mark (apt records it under the native one): they read manual,
    // the same before and after, so a snapshot still compares.
    let native = status.native_architecture().ok();
    let auto = auto_installed(system, native.as_deref())?;
    let packages = status.installed(RelationFields::All)?;
    Ok(packages
        .iter()
        .map(|p| {
            let key = format!("{}:{}", p.name, p.architecture);
            let manual = !auto.contains(&key);
            let selection = match p.selection {
                Selection::Install => "install",
                Selection::Hold => "hold",
                Selection::Deinstall => "deinstall",
                Selection::Purge => "purge",
                Selection::Unknown => "unknown",
            };
            (
                key,
                InstalledPackage {
                    version: p.version.to_string(),
                    manual,
                    selection: selection.to_string(),
                },
            )
        })
        .collect())
}

/// `name:arch` of every package apt marks as automatically installed.
/// Architecture `all` packages are recorded by apt under the native arch.
fn auto_installed(
    system: &SystemRoot,
    native: Option<&str>,
) -> Result<BTreeSet<String>, SnapshotError> {
    let path = system.host_path("var/lib/apt/extended_states");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
        Err(e) => return Err(io(&path)(e)),
    };
    let mut auto = BTreeSet::new();
    for paragraph in ferry_deb::deb822::paragraphs(&text, ferry_deb::Syntax::INDEX).flatten() {
        if paragraph.get("Auto-Installed") != Some("1") {
            continue;
        }
        let (Some(name), Some(arch)) = (paragraph.get("Package"), paragraph.get("Architecture"))
        else {
            continue;
        };
        auto.insert(format!("{name}:{arch}"));
        if Some(arch) == native {
            auto.insert(format!("{name}:all"));
        }
    }
    Ok(auto)
}

/// Hashes every entry under `dir`, keyed by its path relative to `dir`.
pub fn hash_tree(dir: &Path) -> Result<BTreeMap<String, FileState>, SnapshotError> {
    let mut out = BTreeMap::new();
    if !dir.exists() {
        return Ok(out);
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).map_err(io(&current))? {
            let entry = entry.map_err(io(&current))?;
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path).map_err(io(&path))?;
            let relative = path
                .strip_prefix(dir)
                .map_or_else(|_| path.display().to_string(), |r| r.display().to_string());
            let content = if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).map_err(io(&path))?;
                format!("link:{}", target.display())
            } else if meta.is_dir() {
                stack.push(path.clone());
                "dir".to_string()
            } else {
                let bytes = std::fs::read(&path).map_err(io(&path))?;
                ferry_fetch::sha256_hex(&bytes)
            };
            out.insert(
                relative,
                FileState {
                    content,
                    mode: meta.permissions().mode() & 0o7777,
                },
            );
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_with(status: &str, extended: &str) -> (tempfile::TempDir, SystemRoot) {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("var/lib/dpkg")).unwrap();
        std::fs::create_dir_all(root.path().join("var/lib/apt")).unwrap();
        std::fs::create_dir_all(root.path().join("etc/apt/sources.list.d")).unwrap();
        std::fs::write(root.path().join("var/lib/dpkg/status"), status).unwrap();
        std::fs::write(root.path().join("var/lib/apt/extended_states"), extended).unwrap();
        std::fs::write(
            root.path().join("etc/apt/sources.list"),
            "deb http://repo.example.org/debian stable main\n",
        )
        .unwrap();
        let system = SystemRoot::open(root.path()).unwrap();
        (root, system)
    }

    /// The root's dpkg is arm64 (not this host's architecture), so apt's
    /// marks of arch:all packages are recorded under arm64.
    const STATUS: &str =
        "Package: dpkg\nStatus: install ok installed\nVersion: 1.21.22\nArchitecture: arm64\n\n\
Package: a\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\n\n\
Package: b\nStatus: hold ok installed\nVersion: 2.0\nArchitecture: all\n\n\
Package: gone\nStatus: deinstall ok config-files\nVersion: 1\nArchitecture: amd64\n";

    #[test]
    fn captures_packages_marks_selections_and_files() {
        let (_root, system) = root_with(
            STATUS,
            "Package: a\nArchitecture: amd64\nAuto-Installed: 1\n",
        );
        let snap = Snapshot::capture(&system).unwrap();
        assert_eq!(
            snap.packages.keys().collect::<Vec<_>>(),
            ["a:amd64", "b:all", "dpkg:arm64"],
            "config-files packages are not installed"
        );
        assert!(!snap.packages["a:amd64"].manual);
        assert!(snap.packages["b:all"].manual);
        assert_eq!(snap.packages["b:all"].selection, "hold");
        assert!(snap.etc_apt.contains_key("sources.list"));
        assert_eq!(snap.etc_apt["sources.list.d"].content, "dir");
    }

    #[test]
    fn diff_names_every_difference() {
        let (root, system) = root_with(STATUS, "");
        let before = Snapshot::capture(&system).unwrap();
        assert!(before.diff(&before).is_empty());
        std::fs::write(
            root.path().join("var/lib/dpkg/status"),
            STATUS.replace("Version: 1.0", "Version: 1.1"),
        )
        .unwrap();
        std::fs::write(
            root.path().join("var/lib/apt/extended_states"),
            "Package: b\nArchitecture: arm64\nAuto-Installed: 1\n",
        )
        .unwrap();
        std::fs::write(root.path().join("etc/apt/sources.list"), "").unwrap();
        std::fs::write(root.path().join("etc/apt/new.list"), "").unwrap();
        let after = Snapshot::capture(&system).unwrap();
        let diff = before.diff(&after);
        assert!(
            diff.contains(&"package a:amd64: version 1.0 -> 1.1".to_string()),
            "{diff:?}"
        );
        assert!(
            diff.contains(&"package b:all: mark manual -> auto".to_string()),
            "{diff:?}"
        );
        assert!(diff.contains(&"/etc/apt/sources.list: content differs".to_string()));
        assert!(diff.contains(&"/etc/apt/new.list was added".to_string()));
        assert_eq!(diff.len(), 4);
    }
}
