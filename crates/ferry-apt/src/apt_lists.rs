//! apt's downloaded lists (`/var/lib/apt/lists`), kept with the backup and
//! put back by a rollback, so apt plans from the same state afterwards.
//!
//! A migration's `apt-get update` drops the old sources' lists and leaves
//! the target's; restoring `/etc/apt` alone would leave apt believing the
//! old packages come from no repository until the next update, which an
//! offline device may never get. Not for other apt state: `/etc/apt` and
//! the marks are the backup's and the rollback's own business.

use std::path::{Path, PathBuf};

use crate::system::SystemRoot;

/// Where the lists are kept inside a backup directory.
pub const BACKUP_SUBDIR: &str = "apt-lists";

const LISTS: &str = "var/lib/apt/lists";

#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct ListsError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> ListsError + '_ {
    move |source| ListsError {
        path: path.to_path_buf(),
        source,
    }
}

/// The list files apt keeps: regular files at the top of the directory
/// (its `lock` and `partial/` are apt's working state, not lists).
fn list_files(dir: &Path) -> Result<Vec<PathBuf>, ListsError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(dir)(e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io(dir))?;
        let path = entry.path();
        let is_file = entry.file_type().map_err(io(&path))?.is_file();
        if is_file && entry.file_name() != "lock" {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Copies the root's lists into `backup_dir/apt-lists`. Copies, not hard
/// links: a list changed in place later must not change the backup.
pub fn save(system: &SystemRoot, backup_dir: &Path) -> Result<usize, ListsError> {
    let to = backup_dir.join(BACKUP_SUBDIR);
    std::fs::create_dir_all(&to).map_err(io(&to))?;
    let files = list_files(&system.host_path(LISTS))?;
    for file in &files {
        if let Some(name) = file.file_name() {
            let target = to.join(name);
            std::fs::copy(file, &target).map_err(io(&target))?;
        }
    }
    Ok(files.len())
}

/// Puts the backup's lists back: every list file of the root is replaced
/// by the backup's set (so a target's lists go). Does nothing for a backup
/// taken before lists were kept. Safe to repeat after a crash.
pub fn restore(system: &SystemRoot, backup_dir: &Path) -> Result<bool, ListsError> {
    let saved = backup_dir.join(BACKUP_SUBDIR);
    if !saved.is_dir() {
        return Ok(false);
    }
    let live = system.host_path(LISTS);
    std::fs::create_dir_all(&live).map_err(io(&live))?;
    let keep: Vec<PathBuf> = list_files(&saved)?;
    let keep_names: Vec<&std::ffi::OsStr> = keep.iter().filter_map(|p| p.file_name()).collect();
    for file in list_files(&live)? {
        if file.file_name().is_none_or(|n| !keep_names.contains(&n)) {
            std::fs::remove_file(&file).map_err(io(&file))?;
        }
    }
    for file in &keep {
        if let Some(name) = file.file_name() {
            let target = live.join(name);
            let staged = live.join("partial").join(name);
            if let Some(parent) = staged.parent() {
                std::fs::create_dir_all(parent).map_err(io(parent))?;
            }
            // Staged then renamed: a list is never seen half-written.
            std::fs::copy(file, &staged).map_err(io(&staged))?;
            std::fs::rename(&staged, &target).map_err(io(&target))?;
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        list_files(dir)
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn restore_brings_back_the_saved_lists_and_drops_the_others() {
        let root = tempfile::tempdir().unwrap();
        let lists = root.path().join(LISTS);
        std::fs::create_dir_all(lists.join("partial")).unwrap();
        std::fs::write(lists.join("lock"), "").unwrap();
        std::fs::write(lists.join("old_dists_stable_InRelease"), "old").unwrap();
        std::fs::write(
            lists.join("old_dists_stable_main_binary-amd64_Packages"),
            "p",
        )
        .unwrap();
        let backup = tempfile::tempdir().unwrap();
        assert_eq!(
            save(&SystemRoot::new(root.path()), backup.path()).unwrap(),
            2
        );

        // What a migration's update does: old lists gone, target's there.
        std::fs::remove_file(lists.join("old_dists_stable_InRelease")).unwrap();
        std::fs::write(
            lists.join("old_dists_stable_main_binary-amd64_Packages"),
            "changed",
        )
        .unwrap();
        std::fs::write(lists.join("new_dists_stable_InRelease"), "new").unwrap();

        assert!(restore(&SystemRoot::new(root.path()), backup.path()).unwrap());
        assert_eq!(
            names(&lists),
            [
                "old_dists_stable_InRelease",
                "old_dists_stable_main_binary-amd64_Packages"
            ]
        );
        assert_eq!(
            std::fs::read_to_string(lists.join("old_dists_stable_main_binary-amd64_Packages"))
                .unwrap(),
            "p"
        );
        assert!(lists.join("lock").is_file(), "apt's lock file stays");
        // Again, as after a crash in the middle: the same result.
        assert!(restore(&SystemRoot::new(root.path()), backup.path()).unwrap());
        assert_eq!(names(&lists).len(), 2);
    }

    #[test]
    fn a_backup_without_lists_restores_nothing() {
        let root = tempfile::tempdir().unwrap();
        let backup = tempfile::tempdir().unwrap();
        assert!(!restore(&SystemRoot::new(root.path()), backup.path()).unwrap());
    }
}
