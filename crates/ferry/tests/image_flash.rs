//! `ferry image flash` against real images, real bmaps from bmaptool and
//! real loop devices: the target ends equal to the image (`cmp`), and every
//! fault gives exit 2 with the target untouched or exit 1 with the bytes
//! written said.

use std::path::{Path, PathBuf};
use std::process::Command;

use ferry_testkit::{partitioned_image, skip_unless, Need};

mod disk_images;
use disk_images::{ferry, ferry_with_stdin, s, MIB};

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A 48 MiB image, about a quarter data: a table, an ext4 with files.
fn image(dir: &Path) -> PathBuf {
    let image = dir.join("disk.img");
    partitioned_image(
        &image,
        48 * MIB,
        "label: dos\nstart=2048, size=94208, type=83\n",
    )
    .unwrap();
    let part = dir.join("part.ext4");
    let content = dir.join("content");
    std::fs::create_dir_all(&content).unwrap();
    for i in 0..12u8 {
        // Data that does not compress away and is not zero.
        let bytes: Vec<u8> = (0..MIB as usize)
            .map(|j| {
                (j as u32)
                    .wrapping_mul(2654435761)
                    .rotate_left(u32::from(i)) as u8
                    | 1
            })
            .collect();
        std::fs::write(content.join(format!("f{i}")), bytes).unwrap();
    }
    std::fs::File::create(&part)
        .unwrap()
        .set_len(94208 * 512)
        .unwrap();
    run(Command::new("mkfs.ext4").args(["-q", "-F", "-d", s(&content), s(&part)]));
    run(Command::new("dd").args([
        &format!("if={}", s(&part)),
        &format!("of={}", s(&image)),
        "bs=512",
        "seek=2048",
        "conv=notrunc,sparse",
        "status=none",
    ]));
    image
}

fn bmap(image: &Path) -> PathBuf {
    let out = image.with_extension("bmap");
    run(Command::new("bmaptool").args(["create", "-o", s(&out), s(image)]));
    out
}

fn same(a: &Path, b: &Path, len: u64) -> bool {
    Command::new("cmp")
        .args(["-s", "-n", &len.to_string(), s(a), s(b)])
        .status()
        .unwrap()
        .success()
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

fn tools() -> [Need; 4] {
    [
        Need::Tool("sfdisk"),
        Need::Tool("mkfs.ext4"),
        Need::Tool("bmaptool"),
        Need::Tool("gzip"),
    ]
}

/// A loop device over a file of `len` bytes, detached on drop.
struct Loop {
    device: PathBuf,
    _file: PathBuf,
}

impl Loop {
    fn new(dir: &Path, name: &str, len: u64, fill: u8) -> Option<Loop> {
        let file = dir.join(name);
        std::fs::write(&file, vec![fill; len as usize]).unwrap();
        let out = Command::new("losetup")
            .args(["-f", "--show", s(&file)])
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        let device = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        Some(Loop {
            device,
            _file: file,
        })
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.device).status();
    }
}

macro_rules! loop_or_skip {
    ($dir:expr, $name:expr, $len:expr, $fill:expr) => {
        match Loop::new($dir, $name, $len, $fill) {
            Some(l) => l,
            None => {
                ferry_testkit::skip!(
                    "no loop device can be attached here (needs root and /dev/loop*)"
                );
            }
        }
    };
}

#[test]
fn a_bmap_flash_to_a_file_and_a_pipe_flash_equal_the_image() {
    let [a, b, c, d] = tools();
    skip_unless!(a, b, c, d);
    let dir = tempfile::tempdir().unwrap();
    let image = image(dir.path());
    let map = bmap(&image);
    let target = dir.path().join("target.img");
    let out = ferry(&[
        "image",
        "flash",
        s(&image),
        s(&target),
        "--bmap",
        s(&map),
        "--read-back",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(same(&image, &target, 48 * MIB));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verified"], "bmap-sha256");
    assert_eq!(report["read_back"], true);
    let mapped = report["mapped_bytes"].as_u64().unwrap();
    assert!(mapped > 12 * MIB && mapped < 24 * MIB, "{mapped}");

    // gzip through a pipe, no bmap: zero runs found on the fly.
    let gz = Command::new("gzip")
        .args(["-c", "-1", s(&image)])
        .output()
        .unwrap()
        .stdout;
    let piped = dir.path().join("piped.img");
    let out = ferry_with_stdin(&["image", "flash", "-", s(&piped), "--json"], gz);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(same(&image, &piped, 48 * MIB));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["sha256"], sha256(&image));
    // Progress comes as JSON events on stderr.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.lines().any(|l| l.contains("\"event\":\"progress\"")),
        "{stderr}"
    );
}

#[test]
fn data_that_does_not_match_the_bmap_is_exit_1_with_the_bytes_written() {
    let [a, b, c, _] = tools();
    skip_unless!(a, b, c);
    let dir = tempfile::tempdir().unwrap();
    let image = image(dir.path());
    let map = bmap(&image);
    // Damage a byte inside the file system's data, after the first ranges.
    let mut bytes = std::fs::read(&image).unwrap();
    let at = bytes.len() / 2;
    let data_at = (at..bytes.len()).find(|i| bytes[*i] != 0).unwrap();
    bytes[data_at] ^= 0xff;
    let damaged = dir.path().join("damaged.img");
    std::fs::write(&damaged, &bytes).unwrap();
    let target = dir.path().join("target.img");
    let out = ferry(&[
        "image",
        "flash",
        s(&damaged),
        s(&target),
        "--bmap",
        s(&map),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let message = json["error"]["message"].as_str().unwrap();
    assert!(message.contains("do not match the bmap"), "{message}");
    assert!(json["error"]["bytes_written"].as_u64().unwrap() > 0);
}

#[test]
fn a_bad_bmap_or_an_image_of_unknown_size_is_exit_2_and_nothing_is_written() {
    let [a, b, c, _] = tools();
    skip_unless!(a, b, c);
    let dir = tempfile::tempdir().unwrap();
    let image = image(dir.path());
    let map = bmap(&image);
    let target = dir.path().join("target.img");
    std::fs::write(&target, b"precious").unwrap();
    // An edited bmap fails its own checksum.
    let text = std::fs::read_to_string(&map).unwrap();
    let edited = dir.path().join("edited.bmap");
    std::fs::write(
        &edited,
        text.replacen("<BlockSize> 4096", "<BlockSize> 4097", 1),
    )
    .unwrap();
    let out = ferry(&[
        "image",
        "flash",
        s(&image),
        s(&target),
        "--bmap",
        s(&edited),
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(&target).unwrap(), b"precious");
    // A compressed stream on a pipe with no table has no size to check.
    let junk = dir.path().join("junk");
    std::fs::write(&junk, vec![7u8; 100_000]).unwrap();
    let gz = Command::new("gzip")
        .args(["-c", s(&junk)])
        .output()
        .unwrap()
        .stdout;
    let out = ferry_with_stdin(&["image", "flash", "-", s(&target)], gz);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(&target).unwrap(), b"precious");
    // A truncated compressed file is found out before the first write.
    let gz = Command::new("gzip")
        .args(["-c", s(&image)])
        .output()
        .unwrap()
        .stdout;
    let cut = dir.path().join("cut.img.gz");
    std::fs::write(&cut, &gz[..gz.len() / 2]).unwrap();
    let out = ferry(&["image", "flash", s(&cut), s(&target)]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(&target).unwrap(), b"precious");
}

#[test]
fn a_device_too_small_or_mounted_is_refused_before_the_first_write() {
    let [a, b, c, _] = tools();
    skip_unless!(Need::Root, Need::Tool("losetup"), a, b, c);
    let dir = tempfile::tempdir().unwrap();
    let image = image(dir.path());
    let small = loop_or_skip!(dir.path(), "small", 32 * MIB, 0xaa);
    let before = sha256(&small.device);
    let out = ferry(&["image", "flash", s(&image), s(&small.device)]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds"));
    assert_eq!(
        sha256(&small.device),
        before,
        "the small device was written"
    );

    let mounted = loop_or_skip!(dir.path(), "mounted", 64 * MIB, 0);
    run(Command::new("mkfs.ext4").args(["-q", "-F", s(&mounted.device)]));
    let mountpoint = dir.path().join("mnt");
    std::fs::create_dir_all(&mountpoint).unwrap();
    if !Command::new("mount")
        .args([s(&mounted.device), s(&mountpoint)])
        .status()
        .unwrap()
        .success()
    {
        ferry_testkit::skip!("cannot mount a loop device here");
    }
    let out = ferry(&["image", "flash", s(&image), s(&mounted.device)]);
    let _ = Command::new("umount").arg(&mountpoint).status();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use"));
}

#[test]
fn exact_leaves_a_used_device_an_exact_copy() {
    let [a, b, c, _] = tools();
    skip_unless!(Need::Root, Need::Tool("losetup"), a, b, c);
    let dir = tempfile::tempdir().unwrap();
    let image = image(dir.path());
    let map = bmap(&image);
    // A used device: every byte 0xff.
    let used = loop_or_skip!(dir.path(), "used", 64 * MIB, 0xff);
    let out = ferry(&[
        "image",
        "flash",
        s(&image),
        s(&used.device),
        "--bmap",
        s(&map),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !same(&image, &used.device, 48 * MIB),
        "without --exact the old bytes stay where the image maps nothing"
    );
    let out = ferry(&[
        "image",
        "flash",
        s(&image),
        s(&used.device),
        "--bmap",
        s(&map),
        "--exact",
        "--read-back",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        same(&image, &used.device, 48 * MIB),
        "--exact left old bytes"
    );
}

/// A dos image with a primary and two logical partitions, each an ext4
/// holding files, so that every partition has data of its own.
fn image_with_logicals(dir: &Path) -> PathBuf {
    let image = dir.join("logical.img");
    partitioned_image(
        &image,
        40 * MIB,
        "label: dos\nstart=2048, size=20480, type=83\nstart=22528, type=5\n\
         start=24576, size=20480, type=83\nstart=47104, size=20480, type=83\n",
    )
    .unwrap();
    for (start, label) in [(2048u64, "one"), (24576, "five"), (47104, "six")] {
        let content = dir.join(format!("content-{label}"));
        std::fs::create_dir_all(&content).unwrap();
        std::fs::write(content.join("name"), label.repeat(5000)).unwrap();
        let part = dir.join(format!("{label}.ext4"));
        std::fs::File::create(&part)
            .unwrap()
            .set_len(20480 * 512)
            .unwrap();
        run(Command::new("mkfs.ext4").args(["-q", "-F", "-L", label, "-d", s(&content), s(&part)]));
        run(Command::new("dd").args([
            &format!("if={}", s(&part)),
            &format!("of={}", s(&image)),
            "bs=512",
            &format!("seek={start}"),
            "conv=notrunc,sparse",
            "status=none",
        ]));
    }
    image
}

/// The bytes of sectors `start..start + count` of `image`.
fn sectors(image: &Path, start: u64, count: u64) -> Vec<u8> {
    let bytes = std::fs::read(image).unwrap();
    bytes[(start * 512) as usize..((start + count) * 512) as usize].to_vec()
}

#[test]
fn partitions_go_one_by_one_into_targets_of_their_own_from_a_pipe() {
    let [a, b, _, d] = tools();
    skip_unless!(a, b, d);
    let dir = tempfile::tempdir().unwrap();
    let image = image_with_logicals(dir.path());
    let gz = Command::new("gzip")
        .args(["-c", s(&image)])
        .output()
        .unwrap()
        .stdout;
    let one = dir.path().join("one.part");
    let six = dir.path().join("six.part");
    let out = ferry_with_stdin(
        &[
            "image",
            "flash",
            "-",
            "--partition",
            &format!("1:{}", s(&one)),
            "--partition",
            &format!("6:{}", s(&six)),
            "--read-back",
            "--json",
        ],
        gz,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(&one).unwrap(), sectors(&image, 2048, 20480));
    assert_eq!(std::fs::read(&six).unwrap(), sectors(&image, 47104, 20480));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["partitions"][1]["number"], 6);
    // blkid sees the logical partition's own file system in its target.
    let label = Command::new("blkid")
        .args(["-p", "-s", "LABEL", "-o", "value", s(&six)])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&label.stdout).trim(), "six");
}

#[test]
fn a_partition_the_image_does_not_have_is_exit_2_and_nothing_is_written() {
    let [a, b, _, _] = tools();
    skip_unless!(a, b);
    let dir = tempfile::tempdir().unwrap();
    let image = image_with_logicals(dir.path());
    for number in ["3", "9"] {
        let target = dir.path().join(format!("p{number}"));
        let out = ferry(&[
            "image",
            "flash",
            s(&image),
            "--partition",
            &format!("{number}:{}", s(&target)),
        ]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(&format!("no partition {number}")),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let len = std::fs::metadata(&target).map(|m| m.len()).unwrap_or(0);
        assert_eq!(len, 0, "partition {number}'s target was written");
    }
}
