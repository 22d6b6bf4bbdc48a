//! Going back: from a backup, offline, to the exact previous system, and
//! the proof that it got there.
//!
//! Reinstalls the saved `.deb`s at their old versions and purges what the
//! migration added in one apt transaction that sees no repository at all
//! (empty sources and lists), so it needs no network and cannot drift to
//! other versions; then restores `/etc/apt`, apt's marks and dpkg's
//! selections and the lists apt had, and compares a fresh snapshot with
//! the backup's.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde::Serialize;

use crate::backup::{copy_tree, Backup, BackupError};
use crate::snapshot::{Snapshot, SnapshotError};
use crate::system::{CommandError, StatusError, SystemRoot};

#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    #[error(transparent)]
    Backup(#[from] BackupError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error(transparent)]
    Status(#[from] StatusError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Lists(#[from] crate::apt_lists::ListsError),
    #[error("the backup has no .deb of {0}, which must be reinstalled")]
    MissingDeb(String),
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> RollbackError + '_ {
    move |source| RollbackError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What a rollback did and whether the system now equals the backup.
#[derive(Debug, Clone, Serialize)]
pub struct RollbackReport {
    pub reinstalled: Vec<String>,
    pub purged: Vec<String>,
    /// Differences that remain (empty: the system equals the backup).
    pub differences: Vec<String>,
}

impl RollbackReport {
    pub fn complete(&self) -> bool {
        self.differences.is_empty()
    }
}

/// Where the rollback stages its `.deb`s and an empty apt state inside the root.
const STAGING: &str = "var/cache/ferry/rollback";

/// The apt changes that bring `now` back to `before`: `.deb`s to install
/// (keys `name:arch`) and packages to purge.
pub fn package_changes(before: &Snapshot, now: &Snapshot) -> (Vec<String>, Vec<String>) {
    let reinstall = before
        .packages
        .iter()
        .filter(|(key, b)| {
            now.packages
                .get(*key)
                .is_none_or(|n| n.version != b.version)
        })
        .map(|(key, _)| key.clone())
        .collect();
    let purge = now
        .packages
        .keys()
        .filter(|key| !before.packages.contains_key(*key))
        .cloned()
        .collect();
    (reinstall, purge)
}

pub fn rollback(system: &SystemRoot, backup: &Backup) -> Result<RollbackReport, RollbackError> {
    // A run killed inside dpkg leaves packages half-configured or needing a
    // reinstall; settle what dpkg can finish, and purge the broken packages
    // the migration added (apt refuses to touch them without an archive).
    let _ = system.run("dpkg", &["--configure".into(), "-a".into()]);
    let now = Snapshot::capture(system)?;
    let (_, purge) = package_changes(&backup.snapshot, &now);
    for name in broken_packages(system)? {
        if purge
            .iter()
            .any(|key| key.split(':').next() == Some(name.as_str()))
        {
            system.run(
                "dpkg",
                &[
                    "--purge".into(),
                    "--force-remove-reinstreq".into(),
                    "--force-depends".into(),
                    name,
                ],
            )?;
        }
    }
    let now = Snapshot::capture(system)?;
    let (reinstall, purge) = package_changes(&backup.snapshot, &now);

    if !reinstall.is_empty() || !purge.is_empty() {
        restore_packages(system, backup, &reinstall, &purge)?;
    }
    restore_etc_apt(system, &backup.dir.join("etc-apt"))?;
    crate::apt_lists::restore(system, &backup.dir)?;
    restore_marks(system, &backup.dir)?;
    restore_selections(system, &backup.snapshot)?;

    let after = Snapshot::capture(system)?;
    Ok(RollbackReport {
        reinstalled: reinstall,
        purged: purge,
        differences: backup.snapshot.diff(&after),
    })
}

/// Packages dpkg left half-installed or flagged for reinstallation.
fn broken_packages(system: &SystemRoot) -> Result<Vec<String>, RollbackError> {
    let status = system.dpkg_status()?;
    let packages = status.records(ferry_deb::package::RelationFields::Installability)?;
    Ok(packages
        .iter()
        .filter(|p| {
            p.reinstall_required
                || matches!(
                    p.state,
                    ferry_deb::package::InstallState::HalfInstalled
                        | ferry_deb::package::InstallState::Unpacked
                        | ferry_deb::package::InstallState::HalfConfigured
                )
        })
        .map(|p| p.name.to_string())
        .collect())
}

fn restore_packages(
    system: &SystemRoot,
    backup: &Backup,
    reinstall: &[String],
    purge: &[String],
) -> Result<(), RollbackError> {
    let staging = system.host_path(STAGING);
    let _ = std::fs::remove_dir_all(&staging);
    for dir in ["lists/partial", "archives/partial", "empty"] {
        let path = staging.join(dir);
        std::fs::create_dir_all(&path).map_err(io(&path))?;
    }
    let mut args: Vec<String> = [
        "-y",
        "-q",
        "--allow-downgrades",
        "--allow-change-held-packages",
        "--allow-remove-essential",
        "--no-install-recommends",
        // What the migration added goes without a trace (no config-files
        // state left behind); nothing else is removed by this transaction.
        "--purge",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let inside = |sub: &str| format!("/{STAGING}/{sub}");
    for option in [
        format!("Dir::State::lists={}", inside("lists")),
        format!("Dir::Cache::archives={}", inside("archives")),
        "Dir::Etc::sourcelist=/dev/null".to_string(),
        format!("Dir::Etc::sourceparts={}", inside("empty")),
        // Unmodified conffiles go back to the old package's version,
        // ones the admin edited stay as they are.
        "Dpkg::Options::=--force-confdef".to_string(),
        "Dpkg::Options::=--force-confold".to_string(),
    ] {
        args.push("-o".into());
        args.push(option);
    }
    args.push("install".into());
    for key in reinstall {
        let (name, arch) = key.split_once(':').unwrap_or((key, ""));
        let saved = backup
            .manifest
            .debs
            .iter()
            .find(|d| d.package.name == name && (d.package.arch == arch || arch.is_empty()))
            .ok_or_else(|| RollbackError::MissingDeb(key.clone()))?;
        let file_name = Path::new(&saved.file)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let target = staging.join(&file_name);
        std::fs::copy(backup.dir.join(&saved.file), &target).map_err(io(&target))?;
        args.push(inside(&file_name));
    }
    for key in purge {
        // apt knows `all` packages under the native architecture only.
        let name = key.strip_suffix(":all").unwrap_or(key);
        args.push(format!("{name}-"));
    }
    let result = system.run("apt-get", &args);
    let _ = std::fs::remove_dir_all(&staging);
    result.map(drop).map_err(Into::into)
}

/// Puts the saved `/etc/apt` in place by swapping directories, so a crash
/// leaves either the old or the restored tree, never a mix.
fn restore_etc_apt(system: &SystemRoot, saved: &Path) -> Result<(), RollbackError> {
    let live = system.host_path("etc/apt");
    let incoming = system.host_path("etc/.apt.ferry-restore");
    let outgoing = system.host_path("etc/.apt.ferry-replaced");
    let _ = std::fs::remove_dir_all(&incoming);
    let _ = std::fs::remove_dir_all(&outgoing);
    copy_tree(saved, &incoming)?;
    std::fs::rename(&live, &outgoing).map_err(io(&live))?;
    std::fs::rename(&incoming, &live).map_err(io(&live))?;
    std::fs::remove_dir_all(&outgoing).map_err(io(&outgoing))?;
    Ok(())
}

fn restore_marks(system: &SystemRoot, backup_dir: &Path) -> Result<(), RollbackError> {
    let saved = backup_dir.join("extended_states");
    let live = system.host_path("var/lib/apt/extended_states");
    if saved.is_file() {
        let bytes = std::fs::read(&saved).map_err(io(&saved))?;
        ferry_journal::write_atomic(&live, &bytes).map_err(io(&live))?;
    } else if live.exists() {
        std::fs::remove_file(&live).map_err(io(&live))?;
    }
    Ok(())
}

fn restore_selections(system: &SystemRoot, before: &Snapshot) -> Result<(), RollbackError> {
    let mut input = String::new();
    for (key, package) in &before.packages {
        input.push_str(&format!("{key} {}\n", package.selection));
    }
    let mut child = system
        .command("dpkg")
        .arg("--set-selections")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| CommandError::Spawn {
            command: "dpkg --set-selections".into(),
            source,
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .map_err(io(Path::new("dpkg --set-selections")))?;
    }
    let output = child
        .wait_with_output()
        .map_err(io(Path::new("dpkg --set-selections")))?;
    if !output.status.success() {
        return Err(CommandError::Failed {
            command: "dpkg --set-selections".into(),
            code: output.status.code(),
            output: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::InstalledPackage;

    fn pkg(version: &str) -> InstalledPackage {
        InstalledPackage {
            version: version.into(),
            manual: true,
            selection: "install".into(),
        }
    }

    #[test]
    fn changes_reinstall_what_changed_or_went_and_purge_what_came() {
        let mut before = Snapshot::default();
        before.packages.insert("kept:all".into(), pkg("1.0"));
        before.packages.insert("upgraded:amd64".into(), pkg("1.0"));
        before.packages.insert("removed:all".into(), pkg("1.0"));
        let mut now = Snapshot::default();
        now.packages.insert("kept:all".into(), pkg("1.0"));
        now.packages.insert("upgraded:amd64".into(), pkg("1.1"));
        now.packages.insert("added:all".into(), pkg("2.0"));
        let (reinstall, purge) = package_changes(&before, &now);
        assert_eq!(reinstall, ["removed:all", "upgraded:amd64"]);
        assert_eq!(purge, ["added:all"]);
    }
}
