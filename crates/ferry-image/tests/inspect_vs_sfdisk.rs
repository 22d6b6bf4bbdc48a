//! `inspect` against the tools that own the answer: images built with
//! `sfdisk` and `mkfs.*` on sparse files, compressed each way, read by
//! ferry as a file and as a pipe; the table must equal `sfdisk --dump`, and
//! each partition's filesystem what `blkid -p` finds at its offset.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ferry_image::{inspect_path, inspect_reader, sfdisk_script, InspectError, Inspection};
use ferry_testkit::{
    partitioned_image, put_filesystem, sfdisk_dump, sfdisk_write, skip_unless, Need,
};

const MIB: u64 = 1 << 20;

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The seed's flasher layout: a FAT boot partition, ext4 root and state,
/// and an extended partition with two logical ones (ext2 data and swap).
fn dos_image(dir: &Path) -> PathBuf {
    let image = dir.join("flasher.img");
    partitioned_image(
        &image,
        96 * MIB,
        "label: dos\nlabel-id: 0x5eed0001\n\
         start=2048, size=16384, type=c, bootable\n\
         start=18432, size=40960, type=83\n\
         start=59392, size=20480, type=83\n\
         start=79872, type=5\n\
         start=81920, size=40960, type=83\n\
         start=124928, size=8192, type=82\n",
    )
    .unwrap();
    put_filesystem(
        &image,
        2048,
        16384,
        &["mkfs.vfat", "-n", "BOOT", "-i", "1234ABCD"],
        dir,
    )
    .unwrap();
    put_filesystem(
        &image,
        18432,
        40960,
        &["mkfs.ext4", "-q", "-L", "root", "-F"],
        dir,
    )
    .unwrap();
    put_filesystem(
        &image,
        59392,
        20480,
        &["mkfs.ext4", "-q", "-L", "state", "-F"],
        dir,
    )
    .unwrap();
    put_filesystem(
        &image,
        81920,
        40960,
        &["mkfs.ext2", "-q", "-L", "data", "-F"],
        dir,
    )
    .unwrap();
    put_filesystem(&image, 124928, 8192, &["mkswap", "-L", "swap0"], dir).unwrap();
    image
}

/// A GPT image with names, an attribute set and btrfs, squashfs, ext3.
fn gpt_image(dir: &Path) -> PathBuf {
    let image = dir.join("gpt.img");
    partitioned_image(
        &image,
        400 * MIB,
        "label: gpt\n\
         start=2048, size=16384, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=\"EFI system\", attrs=\"RequiredPartition LegacyBIOSBootable GUID:60\"\n\
         start=18432, size=278528, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=\"root\"\n\
         start=296960, size=40960, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n\
         start=337920, size=40960, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=\"rootfs-b\"\n",
    ).unwrap();
    put_filesystem(
        &image,
        2048,
        16384,
        &["mkfs.vfat", "-F", "32", "-n", "ESP"],
        dir,
    )
    .unwrap();
    put_filesystem(
        &image,
        18432,
        278528,
        &["mkfs.btrfs", "-q", "-L", "system", "-f"],
        dir,
    )
    .unwrap();
    put_filesystem(&image, 296960, 40960, &["mkfs.ext3", "-q", "-F"], dir).unwrap();
    let squash_src = dir.join("squash-src");
    std::fs::create_dir_all(&squash_src).unwrap();
    std::fs::write(squash_src.join("hello"), "hello\n").unwrap();
    let squash = dir.join("root.squashfs");
    run(Command::new("mksquashfs")
        .arg(&squash_src)
        .arg(&squash)
        .args(["-quiet", "-noappend"]));
    let bytes = std::fs::read(&squash).unwrap();
    let out = std::fs::OpenOptions::new()
        .write(true)
        .open(&image)
        .unwrap();
    use std::os::unix::fs::FileExt;
    out.write_all_at(&bytes, 337920 * 512).unwrap();
    image
}

/// `sfdisk --dump` without its `device:` line and with the device names
/// cut from partition lines, as the issue compares them.
fn without_device(dump: &str) -> String {
    dump.lines()
        .filter(|l| !l.starts_with("device:"))
        .map(|l| match l.split_once(" : ") {
            Some((name, rest)) => {
                let number: String = name
                    .chars()
                    .rev()
                    .take_while(char::is_ascii_digit)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                format!("{number} : {rest}")
            }
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// What blkid -p finds at a partition: (TYPE, LABEL, UUID).
fn blkid(image: &Path, start: u64, size: u64) -> Option<(String, Option<String>, Option<String>)> {
    let out = Command::new("blkid")
        .args(["-p", "-o", "export", "-O"])
        .arg((start * 512).to_string())
        .arg("-S")
        .arg((size * 512).to_string())
        .arg(image)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")).map(String::from))
    };
    Some((field("TYPE")?, field("LABEL"), field("UUID")))
}

fn assert_matches_tools(image: &Path, inspection: &Inspection) {
    let dump = sfdisk_dump(image).unwrap();
    let ours = sfdisk_script(inspection, "img");
    assert_eq!(
        without_device(&ours),
        without_device(&dump),
        "sfdisk --dump differs"
    );
    assert_eq!(
        inspection.size,
        std::fs::metadata(image).unwrap().len(),
        "uncompressed size"
    );
    for p in &inspection.partitions {
        if p.kind.to_string() == "5" {
            assert_eq!(p.filesystem, None);
            continue;
        }
        let found = blkid(image, p.start, p.size);
        let ours = p
            .filesystem
            .as_ref()
            .map(|f| (f.kind.clone(), f.label.clone(), f.uuid.clone()));
        assert_eq!(ours, found, "partition {} against blkid -p", p.number);
    }
}

const SFDISK: Need = Need::Tool("sfdisk");
const BLKID: Need = Need::Tool("blkid");
const MKFS_VFAT: Need = Need::Tool("mkfs.vfat");
const MKFS_EXT4: Need = Need::Tool("mkfs.ext4");
const MKFS_BTRFS: Need = Need::Tool("mkfs.btrfs");
const MKSQUASHFS: Need = Need::Tool("mksquashfs");
const MKSWAP: Need = Need::Tool("mkswap");
const GZIP: Need = Need::Tool("gzip");
const XZ: Need = Need::Tool("xz");
const DOS_TOOLS: [Need; 4] = [SFDISK, MKFS_VFAT, MKFS_EXT4, MKSWAP];

/// Compresses `image` with `tool` (gzip, xz, zstd, bzip2) to a new file.
fn compress(image: &Path, tool: &str) -> PathBuf {
    let out = image.with_extension(format!("img.{tool}"));
    let file = std::fs::File::create(&out).unwrap();
    let status = Command::new(tool)
        .args(["-c", "-1"])
        .arg(image)
        .stdout(file)
        .status()
        .unwrap();
    assert!(status.success(), "{tool}");
    out
}

#[test]
fn a_dos_flasher_image_reads_as_sfdisk_and_blkid_read_it() {
    skip_unless!(
        DOS_TOOLS[0],
        DOS_TOOLS[1],
        DOS_TOOLS[2],
        DOS_TOOLS[3],
        BLKID
    );
    let dir = tempfile::tempdir().unwrap();
    let image = dos_image(dir.path());
    let inspection = inspect_path(&image).unwrap();
    assert_eq!(inspection.partitions.len(), 6);
    assert_eq!(
        inspection
            .partitions
            .iter()
            .map(|p| p.number)
            .collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6]
    );
    assert_matches_tools(&image, &inspection);
}

#[test]
fn a_gpt_image_with_names_and_attributes_reads_as_sfdisk_and_blkid_read_it() {
    skip_unless!(SFDISK, BLKID, MKFS_VFAT, MKFS_BTRFS, MKSQUASHFS);
    let dir = tempfile::tempdir().unwrap();
    let image = gpt_image(dir.path());
    let inspection = inspect_path(&image).unwrap();
    assert_matches_tools(&image, &inspection);
    let json = serde_json::to_value(&inspection).unwrap();
    assert_eq!(json["label"], "gpt");
    assert_eq!(json["partitions"][0]["name"], "EFI system");
    assert_eq!(json["partitions"][1]["filesystem"]["type"], "btrfs");
}

#[test]
fn every_compression_gives_the_same_answer_from_a_file_and_from_a_pipe() {
    skip_unless!(
        DOS_TOOLS[0],
        DOS_TOOLS[1],
        DOS_TOOLS[2],
        DOS_TOOLS[3],
        GZIP,
        XZ
    );
    let dir = tempfile::tempdir().unwrap();
    let image = dos_image(dir.path());
    let plain = inspect_path(&image).unwrap();
    for tool in ["gzip", "xz", "zstd", "bzip2"] {
        if Command::new(tool).arg("--version").output().is_err() {
            ferry_testkit::note_skip!("{tool} is not installed; its compressed image is not read");
            continue;
        }
        let compressed = compress(&image, tool);
        let mut from_file = inspect_path(&compressed).unwrap();
        assert_ne!(from_file.compression, "none", "{tool}");
        from_file.compression = "none".into();
        assert_eq!(from_file, plain, "{tool} from a file");
        // A pipe: no seeking to a trailer or an index.
        let mut child = Command::new("cat")
            .arg(&compressed)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let pipe = child.stdout.take().unwrap();
        let mut from_pipe = inspect_reader(pipe, None, Path::new("-")).unwrap();
        child.wait().unwrap();
        from_pipe.compression = "none".into();
        assert_eq!(from_pipe, plain, "{tool} from a pipe");
    }
}

#[test]
fn a_truncated_image_and_a_table_past_the_end_are_clear_errors() {
    skip_unless!(DOS_TOOLS[0], DOS_TOOLS[1], DOS_TOOLS[2], DOS_TOOLS[3], GZIP);
    let dir = tempfile::tempdir().unwrap();
    let image = dos_image(dir.path());
    // The table says 96 MiB; the file ends at 40 MiB, inside the root.
    let bytes = std::fs::read(&image).unwrap();
    let short = dir.path().join("short.img");
    std::fs::write(&short, &bytes[..(40 * MIB) as usize]).unwrap();
    let err = inspect_path(&short).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("short.img"), "{text}");
    assert!(matches!(err, InspectError::Table { .. }), "{text}");
    // A gzip stream cut in the middle: the decompressor's error, named.
    let gz = compress(&image, "gzip");
    let gz_bytes = std::fs::read(&gz).unwrap();
    let cut = dir.path().join("cut.img.gz");
    std::fs::write(&cut, &gz_bytes[..gz_bytes.len() / 2]).unwrap();
    let text = inspect_path(&cut).unwrap_err().to_string();
    assert!(text.contains("cut.img.gz"), "{text}");
    // Not an image at all.
    let text_file = dir.path().join("notes.txt");
    std::fs::write(&text_file, "hello\n").unwrap();
    let text = inspect_path(&text_file).unwrap_err().to_string();
    assert!(text.contains("no partition table"), "{text}");
}

#[test]
fn a_gpt_with_4096_byte_sectors_reads_as_sfdisk_reads_it() {
    skip_unless!(Need::Root, Need::Tool("losetup"), SFDISK);
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("4k.img");
    partitioned_image(&image, 64 * MIB, "").unwrap();
    // sfdisk takes the sector size from the device: a loop device with
    // 4096-byte sectors over the file.
    let out = Command::new("losetup")
        .args(["-f", "--show", "--sector-size", "4096"])
        .arg(&image)
        .output()
        .unwrap();
    if !out.status.success() {
        ferry_testkit::skip!(
            "no loop device can be attached here: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let device = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let script = "label: gpt\nstart=256, size=2048, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=\"four\"\n";
    let written = sfdisk_write(&device, script);
    let dump = sfdisk_dump(&device).unwrap();
    let _ = Command::new("losetup").arg("-d").arg(&device).status();
    written.unwrap();
    let inspection = inspect_path(&image).unwrap();
    assert_eq!(inspection.sector_size, 4096);
    assert_eq!(
        without_device(&sfdisk_script(&inspection, "img")),
        without_device(&dump)
    );
}
