//! Disk images for the tests of `ferry image`: sparse files partitioned by
//! the real sfdisk, filesystems made by the real mkfs.* and copied in at
//! their partition's offset, and what sfdisk reads back.

use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::command::{checked, describe};
use crate::TestkitError;

/// A sparse file of `bytes`, partitioned by `sfdisk` from `script` (empty:
/// no table).
pub fn partitioned_image(path: &Path, bytes: u64, script: &str) -> Result<(), TestkitError> {
    let file = std::fs::File::create(path).map_err(TestkitError::io(path))?;
    file.set_len(bytes).map_err(TestkitError::io(path))?;
    if script.is_empty() {
        return Ok(());
    }
    sfdisk_write(path, script)
}

/// Writes the table `script` to `disk` with `sfdisk`.
pub fn sfdisk_write(disk: &Path, script: &str) -> Result<(), TestkitError> {
    let mut command = Command::new("sfdisk");
    command
        .args(["-q", "--no-reread", "--no-tell-kernel"])
        .arg(disk)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().map_err(|source| TestkitError::Spawn {
        command: describe(&command),
        source,
    })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(TestkitError::io(disk))?;
    }
    let output = child.wait_with_output().map_err(TestkitError::io(disk))?;
    if !output.status.success() {
        return Err(TestkitError::Command {
            command: format!("{} <<< {script:?}", describe(&command)),
            status: output.status.to_string(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    Ok(())
}

/// What `sfdisk --dump` prints for `disk`.
pub fn sfdisk_dump(disk: &Path) -> Result<String, TestkitError> {
    let output = checked(Command::new("sfdisk").arg("--dump").arg(disk))?;
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Makes a filesystem with `mkfs` (program and its options; the partition
/// file is the last argument) in a file of `sectors` 512-byte sectors and
/// copies its non-zero 4 KiB blocks into `image` at sector `start`, so the
/// image stays sparse.
pub fn put_filesystem(
    image: &Path,
    start: u64,
    sectors: u64,
    mkfs: &[&str],
    work: &Path,
) -> Result<(), TestkitError> {
    let part = work.join(format!("ferry-testkit-part-{start}"));
    let file = std::fs::File::create(&part).map_err(TestkitError::io(&part))?;
    file.set_len(sectors * 512)
        .map_err(TestkitError::io(&part))?;
    let (program, options) = mkfs.split_first().ok_or_else(|| TestkitError::Spawn {
        command: "mkfs".into(),
        source: std::io::Error::other("no program given"),
    })?;
    checked(Command::new(program).args(options).arg(&part))?;
    let bytes = std::fs::read(&part).map_err(TestkitError::io(&part))?;
    let out = std::fs::OpenOptions::new()
        .write(true)
        .open(image)
        .map_err(TestkitError::io(image))?;
    for (i, block) in bytes.chunks(4096).enumerate() {
        if block.iter().any(|b| *b != 0) {
            out.write_all_at(block, start * 512 + i as u64 * 4096)
                .map_err(TestkitError::io(image))?;
        }
    }
    std::fs::remove_file(&part).map_err(TestkitError::io(&part))
}
