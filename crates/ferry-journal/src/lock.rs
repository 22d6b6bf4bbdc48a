//! One run at a time: ferry's own lock, which names its holder.
//!
//! The lock file `/var/lib/ferry/lock` (under the root) holds JSON
//! `{"migration": ID, "pid": PID}` and is held with `flock` for the life of
//! the run, so a crashed run never leaves a stale lock: the kernel drops it.
//! The Debian package's prerm reads the same file (docs/packaging.md).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Who holds the lock, as written in the lock file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub migration: String,
    pub pid: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another ferry run holds {} (migration `{}`, pid {})", path.display(), holder.migration, holder.pid)]
    HeldByFerry { path: PathBuf, holder: Holder },
    #[error("{} is locked by another process", path.display())]
    HeldByUnknown { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The held lock; dropping it releases the lock and clears the file.
#[derive(Debug)]
pub struct MigrationLock {
    file: File,
    path: PathBuf,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> LockError + '_ {
    move |source| LockError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl MigrationLock {
    /// Takes the lock at `path` for `migration`, or says who holds it.
    pub fn acquire(path: &Path, migration: &str) -> Result<MigrationLock, LockError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io(path))?;
        // SAFETY: flock on a file descriptor we own; no memory is involved.
        let taken = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
        if !taken {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            return Err(match serde_json::from_str::<Holder>(&text) {
                Ok(holder) => LockError::HeldByFerry {
                    path: path.to_path_buf(),
                    holder,
                },
                Err(_) => LockError::HeldByUnknown {
                    path: path.to_path_buf(),
                },
            });
        }
        let holder = Holder {
            migration: migration.to_string(),
            pid: std::process::id(),
        };
        let text = serde_json::to_string(&holder).unwrap_or_default();
        file.set_len(0).map_err(io(path))?;
        file.seek(SeekFrom::Start(0)).map_err(io(path))?;
        file.write_all(text.as_bytes()).map_err(io(path))?;
        file.sync_all().map_err(io(path))?;
        Ok(MigrationLock {
            file,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for MigrationLock {
    fn drop(&mut self) {
        // Clear the holder first, so a reader never sees a released lock
        // that still names a migration.
        let _ = self.file.set_len(0);
        // SAFETY: unlocking our own descriptor.
        unsafe {
            libc::flock(self.file.as_raw_fd(), libc::LOCK_UN);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Who holds the lock at `path` right now, read from outside as the
    /// package's prerm does: probe the flock, then read the file.
    fn current_holder(path: &Path) -> Option<Holder> {
        let file = File::open(path).ok()?;
        // SAFETY: a shared non-blocking flock probe on our own descriptor.
        let free = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) } == 0;
        if free {
            // SAFETY: release the probe.
            unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
            return None;
        }
        let text = std::fs::read_to_string(path).ok()?;
        serde_json::from_str(&text).ok()
    }

    #[test]
    fn a_second_run_is_refused_and_told_who_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("var/lib/ferry/lock");
        let lock = MigrationLock::acquire(&path, "first").unwrap();
        assert_eq!(current_holder(&path).unwrap().migration, "first");
        match MigrationLock::acquire(&path, "second") {
            Err(LockError::HeldByFerry { holder, .. }) => {
                assert_eq!(holder.migration, "first");
                assert_eq!(holder.pid, std::process::id());
            }
            other => panic!("expected HeldByFerry, got {other:?}"),
        }
        drop(lock);
        assert!(current_holder(&path).is_none());
        MigrationLock::acquire(&path, "second").unwrap();
    }
}
