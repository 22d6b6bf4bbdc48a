//! The offline backup taken before a migration's first change, in
//! `/var/backups/ferry/<id>/`: enough to go back with no network.
//!
//! It holds the whole `/etc/apt` tree (bytes, modes, links), apt's
//! extended_states (manual/auto marks), the snapshot that a rollback must
//! reproduce, and the `.deb` of every package the migration removes,
//! replaces or upgrades — from apt's cache, else downloaded from the *old*
//! sources, else rebuilt from the installed files by `repack` (with
//! dpkg-deb, which every Debian system has) — with a manifest of sha256
//! sums. `backup_findings` is the plan's proof, made before anything
//! changes, that each of those `.deb`s has a source. Not for restoring: see
//! `rollback`.

use std::collections::BTreeSet;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::finding::{Finding, FindingKey, Severity};
use crate::repack::RepackError;
use crate::snapshot::{Snapshot, SnapshotError};
use crate::system::SystemRoot;

/// A package whose current version must be kept as a `.deb`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PackageToSave {
    pub name: String,
    pub arch: String,
    pub version: String,
}

/// Where a saved `.deb` came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DebOrigin {
    AptCache,
    OldSources,
    Repacked,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedDeb {
    pub package: PackageToSave,
    /// Path relative to the backup directory.
    pub file: String,
    pub sha256: String,
    pub origin: DebOrigin,
}

/// `manifest.json` of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub migration: String,
    pub created: String,
    pub debs: Vec<SavedDeb>,
    /// sha256 of every other file of the backup, relative path → hash.
    pub files: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error("no .deb of {name}:{arch} {version} could be kept: not in apt's cache, not downloadable from the current sources, and not rebuildable from the installed files: {source}")]
    NoDeb {
        name: String,
        arch: String,
        version: String,
        #[source]
        source: Box<RepackError>,
    },
    #[error("backup {}: {file} does not match its manifest", dir.display())]
    Corrupt { dir: PathBuf, file: String },
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A backup directory on disk.
#[derive(Debug, Clone)]
pub struct Backup {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub snapshot: Snapshot,
}

pub const MANIFEST: &str = "manifest.json";
pub const SNAPSHOT: &str = "snapshot.json";

impl Backup {
    /// Takes the backup of `system` into `dir` (created; must not exist yet).
    pub fn create(
        system: &SystemRoot,
        dir: &Path,
        migration: &str,
        packages: &[PackageToSave],
    ) -> Result<Backup, BackupError> {
        std::fs::create_dir_all(dir.join("debs")).map_err(io(dir))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io(dir))?;
        let debs = dir.join("debs");
        std::fs::set_permissions(&debs, std::fs::Permissions::from_mode(0o700))
            .map_err(io(&debs))?;
        copy_tree(&system.host_path("etc/apt"), &dir.join("etc-apt"))?;
        let extended = system.host_path("var/lib/apt/extended_states");
        if extended.is_file() {
            let to = dir.join("extended_states");
            std::fs::copy(&extended, &to).map_err(io(&to))?;
        }
        let snapshot = Snapshot::capture(system)?;
        write_json(&dir.join(SNAPSHOT), &snapshot)?;

        let mut old_sources = OldSources::new(system, dir);
        old_sources.want(
            packages
                .iter()
                .filter(|p| {
                    let cached = system
                        .host_path("var/cache/apt/archives")
                        .join(deb_file_name(p));
                    !cached.is_file()
                })
                .cloned(),
        );
        let mut debs = Vec::new();
        for package in packages {
            debs.push(save_deb(system, dir, package, &mut old_sources)?);
        }
        old_sources.clean();
        let mut files = Vec::new();
        for (relative, state) in crate::snapshot::hash_tree(dir)? {
            if state.content != "dir" && !relative.starts_with("debs/") && relative != MANIFEST {
                files.push((relative, state.content));
            }
        }
        let manifest = Manifest {
            format: 1,
            migration: migration.to_string(),
            created: ferry_journal::rfc3339_now(),
            debs,
            files,
        };
        ferry_journal::write_atomic(
            &dir.join(MANIFEST),
            &serde_json::to_vec_pretty(&manifest).unwrap_or_default(),
        )
        .map_err(io(&dir.join(MANIFEST)))?;
        Ok(Backup {
            dir: dir.to_path_buf(),
            manifest,
            snapshot,
        })
    }

    /// Opens a backup and checks every file against its manifest.
    pub fn open(dir: &Path) -> Result<Backup, BackupError> {
        let manifest: Manifest = read_json(&dir.join(MANIFEST))?;
        let snapshot: Snapshot = read_json(&dir.join(SNAPSHOT))?;
        for deb in &manifest.debs {
            if sha256_file(&dir.join(&deb.file))? != deb.sha256 {
                return Err(BackupError::Corrupt {
                    dir: dir.to_path_buf(),
                    file: deb.file.clone(),
                });
            }
        }
        for (file, hash) in &manifest.files {
            let path = dir.join(file);
            let actual = if path.is_symlink() {
                format!(
                    "link:{}",
                    std::fs::read_link(&path).map_err(io(&path))?.display()
                )
            } else {
                sha256_file(&path)?
            };
            if &actual != hash {
                return Err(BackupError::Corrupt {
                    dir: dir.to_path_buf(),
                    file: file.clone(),
                });
            }
        }
        Ok(Backup {
            dir: dir.to_path_buf(),
            manifest,
            snapshot,
        })
    }
}

/// Writes ferry's own record of the backup (manifest, snapshot), 0600:
/// it lists the system's packages and sources, for root alone.
fn write_json(path: &Path, value: &impl Serialize) -> Result<(), BackupError> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| io(path)(std::io::Error::other(e)))?;
    ferry_journal::write_atomic(path, &bytes).map_err(io(path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io(path))
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, BackupError> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    serde_json::from_slice(&bytes).map_err(|e| io(path)(std::io::Error::other(e)))
}

pub fn sha256_file(path: &Path) -> Result<String, BackupError> {
    ferry_fetch::sha256_file(path)
        .map(|(hex, _)| hex)
        .map_err(io(path))
}

/// apt's file name for a version: the epoch colon is written `%3a`.
fn deb_file_name(p: &PackageToSave) -> String {
    format!(
        "{}_{}_{}.deb",
        p.name,
        p.version.replace(':', "%3a"),
        p.arch
    )
}

fn save_deb(
    system: &SystemRoot,
    dir: &Path,
    package: &PackageToSave,
    old_sources: &mut OldSources,
) -> Result<SavedDeb, BackupError> {
    let name = deb_file_name(package);
    let target = dir.join("debs").join(&name);
    let saved = |origin| -> Result<SavedDeb, BackupError> {
        Ok(SavedDeb {
            package: package.clone(),
            file: format!("debs/{name}"),
            sha256: sha256_file(&target)?,
            origin,
        })
    };
    let cached = system.host_path("var/cache/apt/archives").join(&name);
    if cached.is_file() && deb_is(&cached, package) {
        // apt never rewrites a cached .deb in place (it renames new ones
        // over), so a hard link is as good a copy and costs no bytes; across
        // filesystems, or where one exists already, it is copied.
        if std::fs::hard_link(&cached, &target).is_err() {
            std::fs::copy(&cached, &target).map_err(io(&target))?;
        }
        return saved(DebOrigin::AptCache);
    }
    if old_sources.fetch(package, &target) {
        return saved(DebOrigin::OldSources);
    }
    match repack(system, dir, package, &target) {
        Ok(()) => saved(DebOrigin::Repacked),
        Err(source) => Err(BackupError::NoDeb {
            name: package.name.clone(),
            arch: package.arch.clone(),
            version: package.version.clone(),
            source: Box::new(source),
        }),
    }
}

/// Whether a `.deb` really is that package at that version.
fn deb_is(path: &Path, package: &PackageToSave) -> bool {
    let Ok(out) = Command::new("dpkg-deb")
        .args([
            "--show",
            "--showformat=${Package} ${Version} ${Architecture}",
        ])
        .arg(path)
        .output()
    else {
        return false;
    };
    out.status.success()
        && String::from_utf8_lossy(&out.stdout).trim()
            == format!("{} {} {}", package.name, package.version, package.arch)
}

/// `apt-get download` with the root's current sources and lists, in a
/// private apt state so nothing of the root changes. The first package
/// asked for starts one download of every package not in apt's cache (a
/// release upgrade saves a hundred or more, and one apt run per package
/// cost a minute); what that batch missed is tried one by one.
struct OldSources<'a> {
    system: &'a SystemRoot,
    dir: &'a Path,
    wanted: Vec<PackageToSave>,
    sandbox: Option<(tempfile::TempDir, crate::apt::AptSandbox)>,
    batch_done: bool,
}

impl<'a> OldSources<'a> {
    fn new(system: &'a SystemRoot, dir: &'a Path) -> Self {
        OldSources {
            system,
            dir,
            wanted: Vec::new(),
            sandbox: None,
            batch_done: false,
        }
    }

    /// Tells which packages the batch should fetch; called before `fetch`.
    fn want(&mut self, packages: impl IntoIterator<Item = PackageToSave>) {
        self.wanted.extend(packages);
    }

    fn work(&self) -> PathBuf {
        self.dir.join("debs/.download")
    }

    fn sandbox(&mut self) -> Option<&crate::apt::AptSandbox> {
        if self.sandbox.is_none() {
            let dir = tempfile::Builder::new()
                .prefix("ferry-backup-")
                .tempdir()
                .ok()?;
            let sandbox =
                crate::apt::AptSandbox::for_current_sources(dir.path(), self.system).ok()?;
            self.sandbox = Some((dir, sandbox));
        }
        self.sandbox.as_ref().map(|(_, s)| s)
    }

    fn fetch(&mut self, package: &PackageToSave, target: &Path) -> bool {
        let work = self.work();
        if std::fs::create_dir_all(&work).is_err() {
            return false;
        }
        if !self.batch_done {
            self.batch_done = true;
            let specs: Vec<String> = self.wanted.iter().map(spec).collect();
            if let Some(sandbox) = self.sandbox() {
                // A spec apt cannot find fails the whole batch; the
                // one-by-one attempts below then sort it out.
                let _ = sandbox.download_all(&specs, &work);
            }
        }
        let downloaded = work.join(deb_file_name(package));
        if downloaded.is_file() && deb_is(&downloaded, package) {
            return std::fs::rename(&downloaded, target).is_ok();
        }
        let ok = match self.sandbox() {
            Some(sandbox) => sandbox.download(&spec(package), &work).is_ok(),
            None => false,
        };
        ok && downloaded.is_file()
            && deb_is(&downloaded, package)
            && std::fs::rename(&downloaded, target).is_ok()
    }

    fn clean(&self) {
        let _ = std::fs::remove_dir_all(self.work());
    }
}

fn spec(package: &PackageToSave) -> String {
    format!("{}:{}={}", package.name, package.arch, package.version)
}

/// Rebuilds the installed package from its files and dpkg's database, and
/// checks the result is that package at that version.
fn repack(
    system: &SystemRoot,
    dir: &Path,
    package: &PackageToSave,
    target: &Path,
) -> Result<(), RepackError> {
    let work = dir.join("debs/.repack");
    let result = crate::repack::rebuild(system, &package.name, &package.arch, &work, target);
    let _ = std::fs::remove_dir_all(&work);
    result?;
    if !deb_is(target, package) {
        let _ = std::fs::remove_file(target);
        return Err(RepackError::VersionMismatch {
            package: format!("{}:{}", package.name, package.arch),
            wanted: package.version.clone(),
        });
    }
    Ok(())
}

/// The plan's proof that the backup can be taken: for each package that
/// will change, a source of its installed version's `.deb` — apt's cache
/// (that exact file), else a rebuild from the installed files (all of them
/// on disk, dpkg's info readable), else the root's current apt lists
/// offering that exact version (a warning: the backup then depends on the
/// old repository still answering). A package with none is a blocker,
/// `backup-impossible:NAME`. One info finding sums up the sources.
/// Read-only; reads the lists only when a package needs them.
pub fn backup_findings(system: &SystemRoot, packages: &[PackageToSave]) -> Vec<Finding> {
    let mut findings = Vec::new();
    let (mut from_cache, mut rebuilt) = (0, 0);
    let mut unbuildable = Vec::new();
    let db = crate::repack::DpkgDb::open(system);
    for package in packages {
        let cached = system
            .host_path("var/cache/apt/archives")
            .join(deb_file_name(package));
        if cached.is_file() && deb_is(&cached, package) {
            from_cache += 1;
            continue;
        }
        let db = match &db {
            Ok(db) => db,
            Err(e) => {
                unbuildable.push((package, e.to_string()));
                continue;
            }
        };
        match db.inventory(&package.name, &package.arch) {
            Ok(inventory) if inventory.version == package.version => rebuilt += 1,
            Ok(inventory) => unbuildable.push((
                package,
                format!(
                    "{} is installed, not {}",
                    inventory.version, package.version
                ),
            )),
            Err(e) => unbuildable.push((package, e.to_string())),
        }
    }
    let offered = if unbuildable.is_empty() {
        BTreeSet::new()
    } else {
        offered_by_lists(system, unbuildable.iter().map(|(p, _)| *p))
    };
    let mut from_lists = 0;
    for (package, why) in &unbuildable {
        let PackageToSave {
            name,
            arch,
            version,
        } = package;
        if offered.contains(*package) {
            from_lists += 1;
            findings.push(Finding::new(
                FindingKey::BackupFromOldRepository(name.clone()),
                Severity::Warning,
                format!(
                    "the backup of {name}:{arch} {version} depends on the old repository still \
                     answering: it is not in apt's cache and cannot be rebuilt ({why})"
                ),
                format!(
                    "keep it in apt's cache before migrating: \
                     apt-get install --reinstall --download-only {name}:{arch}={version}"
                ),
            ));
        } else {
            findings.push(Finding::new(
                FindingKey::BackupImpossible(name.clone()),
                Severity::Blocker,
                format!(
                    "no source for the backup of {name}:{arch} {version}: it is not in apt's \
                     cache, cannot be rebuilt ({why}), and no current source offers that version"
                ),
                format!(
                    "put {file} into /var/cache/apt/archives (from a repository or machine \
                     that still has it), or restore the package's missing files \
                     (dpkg --verify {name} lists them) so ferry can rebuild it",
                    file = deb_file_name(package)
                ),
            ));
        }
    }
    if !packages.is_empty() {
        findings.push(Finding::new(
            FindingKey::BackupSources,
            Severity::Info,
            format!(
                "the backup keeps {} .deb(s): {from_cache} from apt's cache, {rebuilt} rebuilt \
                 from the installed files, {from_lists} from the old repository, {} without a source",
                packages.len(),
                unbuildable.len() - from_lists
            ),
            "nothing to do",
        ));
    }
    findings
}

/// Which of `wanted` the root's current apt lists offer at that exact
/// name, version and architecture.
fn offered_by_lists<'a>(
    system: &SystemRoot,
    wanted: impl Iterator<Item = &'a PackageToSave>,
) -> BTreeSet<PackageToSave> {
    let wanted: BTreeSet<(&str, &str, &str)> = wanted
        .map(|p| (p.name.as_str(), p.version.as_str(), p.arch.as_str()))
        .collect();
    let mut offered = BTreeSet::new();
    let lists = system.lists_dir();
    let Ok(entries) = std::fs::read_dir(&lists) else {
        return offered;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let file_name = file_name.to_string_lossy();
        let is_packages = file_name
            .rsplit_once("_Packages")
            .is_some_and(|(_, rest)| rest.is_empty() || rest.starts_with('.'));
        if !is_packages {
            continue;
        }
        // An unreadable list offers nothing; the finding then says so.
        let Ok(text) = ferry_deb::index::read_to_string(&entry.path()) else {
            continue;
        };
        for paragraph in ferry_deb::deb822::paragraphs(&text, ferry_deb::Syntax::INDEX).flatten() {
            let (Some(name), Some(version), Some(arch)) = (
                paragraph.get("Package"),
                paragraph.get("Version"),
                paragraph.get("Architecture"),
            ) else {
                continue;
            };
            if wanted.contains(&(name, version, arch)) {
                offered.insert(PackageToSave {
                    name: name.to_string(),
                    arch: arch.to_string(),
                    version: version.to_string(),
                });
            }
        }
    }
    offered
}

/// Copies a directory tree keeping file bytes, modes and symlinks as they are.
pub fn copy_tree(from: &Path, to: &Path) -> Result<(), BackupError> {
    std::fs::create_dir_all(to).map_err(io(to))?;
    let mode = std::fs::metadata(from)
        .map_err(io(from))?
        .permissions()
        .mode();
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode)).map_err(io(to))?;
    for entry in std::fs::read_dir(from).map_err(io(from))? {
        let entry = entry.map_err(io(from))?;
        let source = entry.path();
        let target = to.join(entry.file_name());
        let meta = std::fs::symlink_metadata(&source).map_err(io(&source))?;
        if meta.file_type().is_symlink() {
            let link = std::fs::read_link(&source).map_err(io(&source))?;
            symlink(&link, &target).map_err(io(&target))?;
        } else if meta.is_dir() {
            copy_tree(&source, &target)?;
        } else {
            std::fs::copy(&source, &target).map_err(io(&target))?;
            std::fs::set_permissions(&target, meta.permissions()).map_err(io(&target))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ferry_keeps_its_directories_0700_and_its_records_0600() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let layout = crate::run::Layout::new(root.path());
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        // An existing, too open /var/lib/ferry is closed too.
        std::fs::create_dir_all(layout.state_dir()).unwrap();
        std::fs::set_permissions(layout.state_dir(), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        for dir in [layout.migration_dir("m-1"), layout.backup_dir("m-1")] {
            layout.private_dir(&dir).unwrap();
        }
        for dir in [
            layout.state_dir(),
            layout.migration_dir("m-1"),
            layout.backups_dir(),
            layout.backup_dir("m-1"),
        ] {
            assert_eq!(mode(&dir), 0o700, "{}", dir.display());
        }
        // Above ferry's own directories nothing changes.
        assert_ne!(mode(&root.path().join("var/backups")), 0o700);
        let manifest = layout.backup_dir("m-1").join(MANIFEST);
        write_json(&manifest, &serde_json::json!({"a": 1})).unwrap();
        assert_eq!(mode(&manifest), 0o600);
    }

    #[test]
    fn apt_spells_epochs_in_file_names() {
        let p = PackageToSave {
            name: "libfoo".into(),
            arch: "amd64".into(),
            version: "1:2.0-1".into(),
        };
        assert_eq!(deb_file_name(&p), "libfoo_1%3a2.0-1_amd64.deb");
    }

    #[test]
    fn copy_tree_keeps_modes_and_links() {
        let from = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(from.path().join("sub")).unwrap();
        std::fs::write(from.path().join("sub/secret"), b"x").unwrap();
        std::fs::set_permissions(
            from.path().join("sub/secret"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        symlink("sub/secret", from.path().join("link")).unwrap();
        let to = tempfile::tempdir().unwrap();
        copy_tree(from.path(), &to.path().join("copy")).unwrap();
        let a = crate::snapshot::hash_tree(from.path()).unwrap();
        let b = crate::snapshot::hash_tree(&to.path().join("copy")).unwrap();
        assert_eq!(a, b);
    }
}
