//! The stage-2 plan made from a real image file (partitioned by sfdisk):
//! its table and sha256 are in the plan, it is saved only when nothing
//! blocks it, and a file of another format is refused with its version.

use std::path::Path;

use ferry_takeover::{Config, FindingKey, PlanError, Severity, TakeoverPlan, TAKEOVER_PLAN_FORMAT};
use ferry_testkit::{partitioned_image, skip_unless, Need};

const MIB: u64 = 1 << 20;

/// A 64 MiB GPT image: an ESP and an x86-64 root.
const GPT: &str = "label: gpt\nstart=2048, size=16384, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=\"boot\"\nstart=18432, size=100000, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, name=\"root\"\n";

/// A machine whose / is /dev/vda1 on a disk of `disk_bytes`, with every
/// tool, a watchdog and memory to spare.
fn machine(dir: &Path, disk_bytes: u64) {
    let w = |rel: &str, text: &str| {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    w("proc/sys/kernel/arch", "x86_64\n");
    w("proc/meminfo", "MemAvailable: 4000000 kB\n");
    w("proc/self/mounts", "/dev/vda1 / ext4 rw 0 0\n");
    w("dev/watchdog", "");
    w(
        "sys/devices/virtual/block/vda/size",
        &format!("{}\n", disk_bytes / 512),
    );
    w("sys/devices/virtual/block/vda/vda1/partition", "1\n");
    std::fs::create_dir_all(dir.join("sys/class/block")).unwrap();
    std::os::unix::fs::symlink(
        "../../devices/virtual/block/vda",
        dir.join("sys/class/block/vda"),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        "../../devices/virtual/block/vda/vda1",
        dir.join("sys/class/block/vda1"),
    )
    .unwrap();
    for tool in ["ldd", "sfdisk", "grub-reboot"] {
        use std::os::unix::fs::PermissionsExt;
        w(&format!("usr/bin/{tool}"), "");
        std::fs::set_permissions(
            dir.join("usr/bin").join(tool),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
    }
}

#[test]
fn an_image_too_big_for_the_disk_blocks_and_is_not_saved() {
    skip_unless!(Need::Tool("sfdisk"));
    let dir = tempfile::tempdir().unwrap();
    let system = dir.path().join("system");
    machine(&system, 32 * MIB);
    let image = dir.path().join("os.img");
    partitioned_image(&image, 64 * MIB, GPT).unwrap();
    let plan = TakeoverPlan::make(&system, "/usr/bin", Config::default(), &image).unwrap();
    assert!(plan.blocked());
    let f = plan
        .findings
        .iter()
        .find(|f| f.key == FindingKey::DiskSize)
        .unwrap();
    assert_eq!(f.severity, Severity::Blocker);
    let saved = dir.path().join("plan.json");
    assert!(matches!(plan.save(&saved), Err(PlanError::Blocked { .. })));
    assert!(!saved.exists(), "a blocked plan leaves no file");
}

#[test]
fn a_plan_carries_the_image_table_and_reads_back_equal() {
    skip_unless!(Need::Tool("sfdisk"));
    let dir = tempfile::tempdir().unwrap();
    let system = dir.path().join("system");
    machine(&system, 128 * MIB);
    let image = dir.path().join("os.img");
    partitioned_image(&image, 64 * MIB, GPT).unwrap();
    let mut config = Config::default();
    config.target.root_partition = Some(2);
    config.target.data_partition = Some(2);
    config.image.sha256 = Some(toml::Value::String(sha256sum(&image)).try_into().unwrap());
    let plan = TakeoverPlan::make(&system, "/usr/bin", config, &image).unwrap();
    assert!(!plan.blocked(), "{:#?}", plan.findings);
    assert_eq!(plan.format, TAKEOVER_PLAN_FORMAT);
    assert_eq!(plan.image.size, 64 * MIB);
    assert_eq!(plan.image.table.label, "gpt");
    assert_eq!(plan.image.table.partitions.len(), 2);
    assert_eq!(
        plan.image.architecture.as_deref(),
        Some("x86_64"),
        "from the root partition's type"
    );
    let target = plan.target.as_ref().unwrap();
    assert_eq!(
        (target.device.as_str(), target.size_bytes),
        ("/dev/vda", 128 * MIB)
    );
    assert_eq!(plan.fingerprint.root_device.as_deref(), Some("/dev/vda1"));

    let saved = dir.path().join("plan.json");
    plan.save(&saved).unwrap();
    assert_eq!(TakeoverPlan::load(&saved).unwrap(), plan);
}

fn sha256sum(path: &Path) -> String {
    use std::process::Command;
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

#[test]
fn another_format_or_none_is_refused_with_what_was_found() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.json");
    std::fs::write(&path, "{\"format\": 2, \"config\": {}}").unwrap();
    match TakeoverPlan::load(&path) {
        Err(PlanError::Format { found, .. }) => assert_eq!(found, "2"),
        other => panic!("{other:?}"),
    }
    std::fs::write(&path, "{\"config\": {}}").unwrap();
    match TakeoverPlan::load(&path) {
        Err(e @ PlanError::Format { .. }) => assert!(e.to_string().contains("format none"), "{e}"),
        other => panic!("{other:?}"),
    }
    std::fs::write(&path, "{\"format\": 1,\n \"config\": 7}").unwrap();
    match TakeoverPlan::load(&path) {
        Err(PlanError::Json { line, .. }) => assert_eq!(line, 2),
        other => panic!("{other:?}"),
    }
}
