//! A disk's partition table read and written through `sfdisk`, the tool
//! every Debian system has and that writes a table whole or not at all:
//! `dump` reads it, `write` writes a computed layout and reads it back.

use std::io::Write;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::layout::{parse_dump, DiskDump, Layout};

#[derive(Debug, thiserror::Error)]
pub enum SfdiskError {
    #[error("cannot run sfdisk: {0}")]
    Run(String),
    /// The disk could not be read as a disk with a table; nothing changed.
    #[error("sfdisk --dump {disk}: {message}")]
    Dump { disk: String, message: String },
    /// sfdisk refused the new table; it writes all or nothing.
    #[error("sfdisk refused the new table of {disk}: {message}")]
    Refused { disk: String, message: String },
    /// The table was written; the kernel could not be told of it.
    #[error(
        "the new table of {disk} is written, but the kernel was not told of it (partx): {message}"
    )]
    Tell { disk: String, message: String },
    /// The table was written but does not read back as laid out.
    #[error("the table read back from {disk} is not the one laid out: {problems}")]
    ReadBack { disk: String, problems: String },
}

fn is_block_device(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_block_device())
}

/// The table of `disk` (a device or an image file), as `sfdisk --dump`
/// prints it.
pub fn dump(disk: &Path) -> Result<DiskDump, SfdiskError> {
    let name = disk.display().to_string();
    let out = Command::new("sfdisk")
        .arg("--dump")
        .arg(disk)
        .output()
        .map_err(|e| SfdiskError::Run(e.to_string()))?;
    if !out.status.success() {
        return Err(SfdiskError::Dump {
            disk: name,
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    let bytes = std::fs::File::open(disk)
        .and_then(|mut f| std::io::Seek::seek(&mut f, std::io::SeekFrom::End(0)))
        .map_err(|e| SfdiskError::Dump {
            disk: name.clone(),
            message: e.to_string(),
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let sector_size: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("sector-size:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(512);
    parse_dump(&text, bytes / sector_size).map_err(|e| SfdiskError::Dump {
        disk: name,
        message: e.to_string(),
    })
}

/// Writes `layout`'s table to `disk` with sfdisk, then reads it back: every
/// kept partition as it was, every placed one where it was laid. Returns
/// the table read back. The kernel is told of the new partitions
/// (`partx --update` over every partition number); the ones in use stay
/// as they are.
pub fn write(disk: &Path, layout: &Layout, before: &DiskDump) -> Result<DiskDump, SfdiskError> {
    let name = disk.display().to_string();
    let mut child = Command::new("sfdisk")
        .args([
            "--quiet",
            "--no-reread",
            "--no-tell-kernel",
            "--wipe",
            "never",
        ])
        .arg(disk)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| SfdiskError::Run(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(layout.script.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| SfdiskError::Run(e.to_string()))?;
    if !out.status.success() {
        return Err(SfdiskError::Refused {
            disk: name,
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    let after = dump(disk)?;
    let mut problems = Vec::new();
    for p in before
        .partitions
        .iter()
        .filter(|p| Some(p.number) != layout.replaces)
    {
        let same = after.partitions.iter().any(|a| {
            a.number == p.number && a.start == p.start && a.size == p.size && a.kind == p.kind
        });
        if !(same || p.kind == "5" || p.kind == "f" || p.kind == "85") {
            problems.push(format!("partition {} changed", p.number));
        }
    }
    for placed in &layout.placements {
        if !after
            .partitions
            .iter()
            .any(|a| a.start == placed.start && a.size == placed.size)
        {
            problems.push(format!(
                "image partition {} is not at {}+{}",
                placed.image_partition, placed.start, placed.size
            ));
        }
    }
    if !problems.is_empty() {
        return Err(SfdiskError::ReadBack {
            disk: name,
            problems: problems.join("; "),
        });
    }
    if is_block_device(disk) {
        let last = after.partitions.iter().map(|p| p.number).max().unwrap_or(1);
        tell_kernel(disk, last)?;
    }
    Ok(after)
}

/// Tells the kernel of partitions 1 to `last` of block device `disk`.
/// Without a range `partx --update` stops at the table's count of
/// partitions, and logical ones numbered past it (5–8 in a table of six)
/// would never appear; partitions in use (a mounted root) stay as they are.
pub fn tell_kernel(disk: &Path, last: u32) -> Result<(), SfdiskError> {
    let out = Command::new("partx")
        .args(["--update", "--nr", &format!("1:{last}")])
        .arg(disk)
        .output()
        .map_err(|e| SfdiskError::Run(format!("partx: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(SfdiskError::Tell {
            disk: disk.display().to_string(),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// The disk partition each placed image partition became, matched by
/// where it was laid: `(image partition, disk partition)`.
pub fn placed_numbers(layout: &Layout, after: &DiskDump) -> Vec<(u32, u32)> {
    layout
        .placements
        .iter()
        .filter_map(|placed| {
            after
                .partitions
                .iter()
                .find(|a| a.start == placed.start && a.size == placed.size)
                .map(|a| (placed.image_partition, a.number))
        })
        .collect()
}
