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

/// A size as people read it: bytes below 1 KiB, else one decimal in the
/// largest binary unit that keeps the number at least 1 (`512 B`,
/// `3.0 MiB`, `1.4 GiB`), the units `df -h` and apt's sizes use.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    // 1023.96 KiB would print as "1024.0 KiB": move up before rounding does.
    while value >= 1023.95 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
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

#[cfg(test)]
mod human_tests {
    use super::human_bytes;

    #[test]
    fn sizes_take_the_largest_unit_that_keeps_the_number_at_least_one() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1024), "1.0 KiB");
        assert_eq!(human_bytes(3 << 20), "3.0 MiB");
        assert_eq!(human_bytes((1 << 20) - 1), "1.0 MiB");
        assert_eq!(human_bytes(1536 << 20), "1.5 GiB");
        assert_eq!(human_bytes(5 << 40), "5.0 TiB");
        assert_eq!(human_bytes(u64::MAX), "16384.0 PiB");
    }
}
