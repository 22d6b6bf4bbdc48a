//! `ferry image layout` on disks made by sfdisk: the image's partitions land
//! aligned in the region with one grown to its end, `--apply` writes exactly
//! that (read back with `sfdisk --dump`), and every other partition stays as
//! it was; a region that is too small changes nothing.

use std::path::Path;

use ferry_testkit::{partitioned_image, sfdisk_dump, skip_unless, Need};

mod disk_images;
use disk_images::{ferry, s};

/// (number, start, size, type) of every partition, from `sfdisk --dump`.
fn table(path: &Path) -> Vec<(u32, u64, u64, String)> {
    sfdisk_dump(path)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let (name, rest) = l.split_once(" : ")?;
            let number = name.trim_start_matches(s(path)).parse().ok()?;
            let field = |k: &str| {
                rest.split(',')
                    .find_map(|f| f.trim().strip_prefix(k).map(|v| v.trim().to_string()))
            };
            Some((
                number,
                field("start=")?.parse().ok()?,
                field("size=")?.parse().ok()?,
                field("type=")?,
            ))
        })
        .collect()
}

/// The seed's flasher layout (sizes in sectors as parted printed them).
const FLASHER: &str = "label: dos\nstart=8192, size=81920, type=e, bootable\n\
     start=90112, size=901120, type=83\nstart=991232, size=8192, type=83\n\
     start=999424, size=40960, type=5\nstart=1007616, size=8192, type=83\n\
     start=1024000, size=16384, type=83\n";

#[test]
fn the_flasher_layout_goes_into_the_swap_with_the_data_partition_grown() {
    skip_unless!(Need::Tool("sfdisk"));
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("flasher.img");
    partitioned_image(&image, 1048576 * 512, FLASHER).unwrap();
    // A running Debian: root, and a 2 GiB swap in an extended partition.
    let target = dir.path().join("sda.img");
    partitioned_image(&target,
        10 << 30,
        "label: dos\nstart=2048, size=16775168, type=83, bootable\nstart=16779262, type=5\nstart=16779264, type=82\n",
    ).unwrap();
    let before = table(&target);
    let out = ferry(&[
        "image",
        "layout",
        s(&image),
        "--into",
        &format!("{}:5", s(&target)),
        "--grow",
        "6",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(table(&target), before, "without --apply nothing is written");
    let planned: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    let out = ferry(&[
        "image",
        "layout",
        s(&image),
        "--into",
        &format!("{}:5", s(&target)),
        "--grow",
        "6",
        "--apply",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = table(&target);
    // Root and the extended container are as they were.
    assert_eq!(after[0], before[0]);
    assert_eq!(after[1], before[1]);
    // The five data partitions of the image, as logical ones, in order.
    let placed: Vec<_> = after.iter().filter(|p| p.0 >= 5).collect();
    assert_eq!(placed.len(), 5, "{after:?}");
    let swap = &before[2];
    for (p, want) in placed.iter().zip(planned["placements"].as_array().unwrap()) {
        assert_eq!(p.1, want["start"].as_u64().unwrap());
        assert_eq!(p.2, want["size"].as_u64().unwrap());
        assert_eq!(p.1 % 2048, 0, "aligned");
        assert!(
            p.1 >= swap.1 && p.1 + p.2 <= swap.1 + swap.2,
            "inside the old swap"
        );
    }
    assert_eq!(placed[0].2, 81920);
    assert_eq!(placed[0].3, "e");
    let grown = placed.last().unwrap();
    assert_eq!(
        grown.1 + grown.2,
        swap.1 + swap.2,
        "the data partition reaches the region's end"
    );
    assert!(grown.2 > 16384);
}

#[test]
fn a_region_too_small_or_a_missing_partition_changes_nothing() {
    skip_unless!(Need::Tool("sfdisk"));
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("flasher.img");
    partitioned_image(&image, 1048576 * 512, FLASHER).unwrap();
    let target = dir.path().join("small.img");
    // The swap (about 170 MiB) cannot hold the flasher's 520 MiB.
    partitioned_image(&target,
        1640 << 20,
        "label: dos\nstart=2048, size=3000000, type=83\nstart=3002368, type=5\nstart=3004416, type=82\n",
    ).unwrap();
    let before = table(&target);
    for into in ["5", "9"] {
        let out = ferry(&[
            "image",
            "layout",
            s(&image),
            "--into",
            &format!("{}:{into}", s(&target)),
            "--grow",
            "6",
            "--apply",
        ]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(table(&target), before);
    }
}

#[test]
fn a_gpt_image_lays_into_a_whole_gpt_disk() {
    skip_unless!(Need::Tool("sfdisk"));
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("gpt.img");
    partitioned_image(
        &image,
        64 << 20,
        "label: gpt\nstart=2048, size=16384, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=\"boot\"\n\
         start=18432, size=65536, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n",
    )
    .unwrap();
    let target = dir.path().join("blank.img");
    // The image's names go along.
    partitioned_image(&target, 1 << 30, "label: gpt\n").unwrap();
    let out = ferry(&[
        "image",
        "layout",
        s(&image),
        "--into",
        s(&target),
        "--grow",
        "2",
        "--apply",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = table(&target);
    assert_eq!(after.len(), 2);
    assert_eq!(after[0].3, "C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
    assert_eq!(after[0].2, 16384);
    assert!(after[1].2 > 65536, "grown: {after:?}");
    assert!(
        sfdisk_dump(&target).unwrap().contains("name=\"boot\""),
        "the name was not carried over"
    );
}

#[test]
fn free_space_between_partitions_takes_the_image_and_keeps_them_all() {
    skip_unless!(Need::Tool("sfdisk"));
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("two.img");
    partitioned_image(
        &image,
        64 << 20,
        "label: dos\nstart=2048, size=16384, type=c, bootable\nstart=18432, size=32768, type=83\n",
    )
    .unwrap();
    let target = dir.path().join("gap.img");
    // Root, a 1 GiB gap, then data.
    partitioned_image(
        &target,
        3 << 30,
        "label: dos\nstart=2048, size=2097152, type=83\nstart=4196352, size=2000000, type=83\n",
    )
    .unwrap();
    let before = table(&target);
    let out = ferry(&[
        "image",
        "layout",
        s(&image),
        "--into",
        &format!("{}:free", s(&target)),
        "--grow",
        "2",
        "--apply",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = table(&target);
    assert_eq!(after.len(), 4, "{after:?}");
    assert!(after.contains(&before[0]) && after.contains(&before[1]));
    let new: Vec<_> = after.iter().filter(|p| !before.contains(p)).collect();
    assert_eq!(new[0].1, 2099200, "first aligned sector after root");
    assert_eq!(new[1].1 + new[1].2, 4196352, "grown to the next partition");
}
