//! Disk space where apt writes: the free bytes of a filesystem and the
//! check of free against needed space that a plan carries. Below both the
//! plan and its checks, so neither imports the other for it.

use std::path::Path;

use serde::Serialize;

/// Free space where apt writes, against what the migration needs there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpaceCheck {
    pub path: String,
    pub free_bytes: u64,
    pub needed_bytes: u64,
}

/// Free bytes of the filesystem holding `path` (or its nearest existing parent).
pub fn free_bytes(path: &Path) -> Option<u64> {
    let mut probe = path.to_path_buf();
    while !probe.exists() {
        probe = probe.parent()?.to_path_buf();
    }
    let c_path = std::ffi::CString::new(probe.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: statvfs writes into the zeroed struct we own.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c_path is a valid NUL-terminated string for the call's duration.
    let status = unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) };
    (status == 0).then(|| stat.f_bavail as u64 * stat.f_frsize as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_not_yet_there_counts_on_its_nearest_parent() {
        let dir = tempfile::tempdir().unwrap();
        let here = free_bytes(dir.path()).unwrap();
        let below = free_bytes(&dir.path().join("not/yet/there")).unwrap();
        // Same filesystem; other processes may write in between.
        assert!(here.abs_diff(below) < 64 << 20, "{here} vs {below}");
        assert!(here > 0);
    }
}
