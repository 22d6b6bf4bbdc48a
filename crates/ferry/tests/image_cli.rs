//! `ferry image inspect` on the command line: the sfdisk script it prints
//! is one sfdisk reads back into the same table, a pipe works, and what is
//! not an image is exit 2 with the file named.

use std::process::Command;

use ferry_testkit::{partitioned_image, sfdisk_dump, sfdisk_write, skip_unless, Need};

mod disk_images;
use disk_images::{ferry, ferry_with_stdin, MIB};

#[test]
fn the_sfdisk_script_reads_back_into_the_same_table() {
    skip_unless!(Need::Tool("sfdisk"));
    let dir = tempfile::tempdir().unwrap();
    for script in [
        "label: dos\nlabel-id: 0x0badcafe\nstart=2048, size=8192, type=c, bootable\nstart=10240, type=5\nstart=12288, size=4096, type=83\nstart=18432, size=4096, type=82\n",
        "label: gpt\nstart=2048, size=8192, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=\"boot\", attrs=\"LegacyBIOSBootable\"\nstart=10240, size=8192, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n",
    ] {
        let original = dir.path().join("original.img");
        let copy = dir.path().join("copy.img");
        partitioned_image(&original, 64 * MIB, "").unwrap();
        partitioned_image(&copy, 64 * MIB, "").unwrap();
        sfdisk_write(&original, script).unwrap();
        let out = ferry(&["image", "inspect", "--format", "sfdisk", original.to_str().unwrap()]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        // The script names partitions after the original; sfdisk ignores
        // the device names when it writes another disk.
        sfdisk_write(&copy, &String::from_utf8(out.stdout).unwrap()).unwrap();
        assert_eq!(
            sfdisk_dump(&copy).unwrap().replace("copy.img", "X"),
            sfdisk_dump(&original).unwrap().replace("original.img", "X")
        );
    }
}

#[test]
fn standard_input_is_read_as_a_pipe() {
    skip_unless!(Need::Tool("sfdisk"), Need::Tool("gzip"));
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("disk.img");
    partitioned_image(&image, 64 * MIB, "").unwrap();
    sfdisk_write(&image, "label: dos\nstart=2048, size=8192, type=83\n").unwrap();
    let gz = Command::new("gzip")
        .arg("-c")
        .arg(&image)
        .output()
        .unwrap()
        .stdout;
    let out = ferry_with_stdin(&["image", "inspect", "-", "--json"], gz);
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["compression"], "gzip");
    assert_eq!(json["size"], 64 << 20);
    assert_eq!(json["partitions"][0]["type"], "83");
}

#[test]
fn what_is_not_an_image_is_exit_2_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "not a disk\n").unwrap();
    let out = ferry(&["image", "inspect", notes.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("notes.txt") && stderr.contains("no partition table"),
        "{stderr}"
    );
    let out = ferry(&[
        "image",
        "inspect",
        "--json",
        dir.path().join("missing.img").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("missing.img"));
}
