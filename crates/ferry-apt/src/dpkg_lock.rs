//! apt and dpkg must be idle before a run starts: a look at dpkg's own
//! locks, without taking them.

use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum DpkgLockError {
    #[error("dpkg is in use: {} is locked by pid {pid}; wait for apt or dpkg to finish", path.display())]
    Busy { path: PathBuf, pid: i32 },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// dpkg's and apt's lock files, relative to the root.
const DPKG_LOCKS: [&str; 2] = ["var/lib/dpkg/lock-frontend", "var/lib/dpkg/lock"];

/// Fails when apt or dpkg holds one of its locks under `root`. dpkg uses
/// fcntl record locks; F_GETLK asks without taking them, so ferry never
/// holds dpkg's lock while the apt it starts needs it.
pub fn check_dpkg_idle(root: &Path) -> Result<(), DpkgLockError> {
    for relative in DPKG_LOCKS {
        let path = root.join(relative);
        let file = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(DpkgLockError::Io { path, source }),
        };
        // SAFETY: a zeroed flock struct is a valid argument for F_GETLK.
        let mut query: libc::flock = unsafe { std::mem::zeroed() };
        query.l_type = libc::F_WRLCK as libc::c_short;
        query.l_whence = libc::SEEK_SET as libc::c_short;
        // SAFETY: F_GETLK fills `query`, which lives on our stack.
        let status = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETLK, &mut query) };
        if status != 0 {
            return Err(DpkgLockError::Io {
                path,
                source: std::io::Error::last_os_error(),
            });
        }
        if query.l_type != libc::F_UNLCK as libc::c_short {
            return Err(DpkgLockError::Busy {
                path,
                pid: query.l_pid,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::process::{Command, Stdio};

    #[test]
    fn a_dpkg_lock_held_by_another_process_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("var/lib/dpkg/lock-frontend");
        std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
        std::fs::write(&lock, b"").unwrap();
        assert!(check_dpkg_idle(dir.path()).is_ok());
        // A real fcntl lock held by another process, as dpkg holds it:
        // python's fcntl.lockf is fcntl(F_SETLK).
        let Ok(mut holder) = Command::new("python3")
            .args([
                "-c",
                "import fcntl,sys,time; f=open(sys.argv[1],'r+'); fcntl.lockf(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(30)",
            ])
            .arg(&lock)
            .stdout(Stdio::piped())
            .spawn()
        else {
            ferry_testkit::skip!("python3 is not available");
        };
        let mut line = [0u8; 5];
        holder
            .stdout
            .as_mut()
            .unwrap()
            .read_exact(&mut line)
            .unwrap();
        let result = check_dpkg_idle(dir.path());
        let _ = holder.kill();
        let _ = holder.wait();
        match result {
            Err(DpkgLockError::Busy { pid, .. }) => assert_eq!(pid as u32, holder.id()),
            other => panic!("expected Busy, got {other:?}"),
        }
    }
}
