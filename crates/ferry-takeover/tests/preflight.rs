//! The pre-flight against fake system trees (proc, sys, dev, usr/bin in a
//! tempdir): each test builds the machine it names and checks the finding
//! that machine must get, blockers first.

use std::path::Path;

use ferry_takeover::plan::{PartitionSummary, TableSummary};
use ferry_takeover::preflight::{stage2_files, RAM_MARGIN_BYTES};
use ferry_takeover::{
    preflight, Config, Finding, FindingKey, Firmware, ImageSummary, Preflight, Severity,
};

const PATH: &str = "/usr/sbin:/usr/bin";
const X86_ROOT: &str = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709";
const ARM64_ROOT: &str = "B921B045-1DF0-41C3-AF44-4C6F280D3FAE";
const ESP: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;

/// A machine: x86_64, BIOS, / on /dev/nvme0n1p2 of a 64 GiB disk, 4 GiB
/// of memory available, every tool, no watchdog.
struct Machine(tempfile::TempDir);

impl Machine {
    fn new() -> Machine {
        let m = Machine(tempfile::tempdir().unwrap());
        m.file("proc/sys/kernel/arch", "x86_64\n");
        m.mem_available(4 * GIB);
        for tool in ["ldd", "sfdisk", "grub-reboot"] {
            m.tool(tool);
        }
        m.disk("nvme0n1", 64 * GIB, &["nvme0n1p1", "nvme0n1p2"]);
        m.root("/dev/nvme0n1p2");
        m
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    fn file(&self, rel: &str, content: impl AsRef<[u8]>) {
        let path = self.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    fn tool(&self, name: &str) {
        use std::os::unix::fs::PermissionsExt;
        self.file(&format!("usr/bin/{name}"), "#!/bin/sh\n");
        let path = self.path().join("usr/bin").join(name);
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn remove(&self, rel: &str) {
        std::fs::remove_file(self.path().join(rel)).unwrap();
    }

    fn mem_available(&self, bytes: u64) {
        self.file(
            "proc/meminfo",
            format!(
                "MemTotal: 8000000 kB\nMemFree: 100 kB\nMemAvailable: {} kB\n",
                bytes / 1024
            ),
        );
    }

    /// A disk as sysfs shows it: partitions inside the disk's directory,
    /// sys/class/block entries linking to both.
    fn disk(&self, disk: &str, bytes: u64, partitions: &[&str]) {
        let dir = format!("sys/devices/virtual/block/{disk}");
        self.file(&format!("{dir}/size"), format!("{}\n", bytes / 512));
        self.link(disk, &format!("../../devices/virtual/block/{disk}"));
        for (i, part) in partitions.iter().enumerate() {
            self.file(&format!("{dir}/{part}/partition"), format!("{}\n", i + 1));
            self.file(&format!("{dir}/{part}/size"), "2048\n");
            self.link(part, &format!("../../devices/virtual/block/{disk}/{part}"));
        }
    }

    fn link(&self, name: &str, to: &str) {
        let class = self.path().join("sys/class/block");
        std::fs::create_dir_all(&class).unwrap();
        std::os::unix::fs::symlink(to, class.join(name)).unwrap();
    }

    /// A device-mapper device with its name and uuid.
    fn dm(&self, name: &str, mapped: &str, uuid: &str) {
        let dir = format!("sys/devices/virtual/block/{name}");
        self.file(&format!("{dir}/size"), "1000\n");
        self.file(&format!("{dir}/dm/name"), format!("{mapped}\n"));
        self.file(&format!("{dir}/dm/uuid"), format!("{uuid}\n"));
        self.link(name, &format!("../../devices/virtual/block/{name}"));
    }

    fn root(&self, source: &str) {
        self.file(
            "proc/self/mounts",
            format!(
                "proc /proc proc rw 0 0\nrootfs / rootfs rw 0 0\n{source} / ext4 rw,relatime 0 0\n"
            ),
        );
    }

    fn uefi(&self, secure_boot: Option<u8>) {
        std::fs::create_dir_all(self.path().join("sys/firmware/efi/efivars")).unwrap();
        if let Some(value) = secure_boot {
            self.file(
                "sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c",
                [6, 0, 0, 0, value],
            );
        }
    }

    fn check(&self, config: &Config, image: &ImageSummary) -> Preflight {
        preflight(self.path(), PATH, config, image)
    }
}

/// A GPT image of `size` bytes (a 100 MiB file) with partitions of these types.
fn image(size: u64, types: &[&str]) -> ImageSummary {
    ImageSummary {
        path: "/images/os.img".into(),
        sha256: "ab".repeat(32),
        file_size: 100 * MIB,
        size,
        compression: "none".into(),
        architecture: None,
        table: TableSummary {
            label: "gpt".into(),
            id: "5B1E3F4A-0000-4000-8000-000000000001".into(),
            sector_size: 512,
            partitions: types
                .iter()
                .enumerate()
                .map(|(i, t)| PartitionSummary {
                    number: i as u32 + 1,
                    start: 2048 + i as u64 * 4096,
                    size: 4096,
                    kind: t.to_string(),
                    name: None,
                    attributes: None,
                    filesystem: None,
                })
                .collect(),
        },
    }
}

/// The defaults, with the partitions stage 2 writes into named (every
/// image here has a partition 1).
fn config() -> Config {
    let mut config = Config::default();
    config.target.root_partition = Some(1);
    config.target.data_partition = Some(1);
    config
}

fn x86_image() -> ImageSummary {
    image(GIB, &[ESP, X86_ROOT])
}

fn find<'a>(p: &'a Preflight, key: &FindingKey) -> Option<&'a Finding> {
    p.findings.iter().find(|f| &f.key == key)
}

fn severity(p: &Preflight, key: &FindingKey) -> Option<Severity> {
    find(p, key).map(|f| f.severity)
}

fn blocked(p: &Preflight) -> bool {
    p.findings.iter().any(|f| f.severity == Severity::Blocker)
}

#[test]
fn an_image_for_another_architecture_is_a_blocker() {
    let m = Machine::new();
    let p = m.check(&config(), &image(GIB, &[ESP, ARM64_ROOT]));
    let f = find(&p, &FindingKey::Architecture).unwrap();
    assert_eq!(f.severity, Severity::Blocker);
    assert!(
        f.finding.contains("x86_64") && f.finding.contains("aarch64"),
        "{f:?}"
    );
    assert_eq!(
        p.findings[0].severity,
        Severity::Blocker,
        "blockers come first"
    );
    // The config's Debian name for it is understood, and disagreeing with
    // the table is a blocker of its own.
    let mut config = config();
    config.image.architecture = Some("amd64".into());
    let p = m.check(&config, &image(GIB, &[ESP, ARM64_ROOT]));
    assert_eq!(
        severity(&p, &FindingKey::ImageArchitecture),
        Some(Severity::Blocker)
    );
}

#[test]
fn an_image_of_unknown_architecture_is_a_warning_until_the_config_says_it() {
    let m = Machine::new();
    let untyped = image(GIB, &[ESP, "0FC63DAF-8483-4772-8E79-3D69D8477DE4"]);
    let p = m.check(&config(), &untyped);
    assert_eq!(
        severity(&p, &FindingKey::ImageArchitecture),
        Some(Severity::Warning)
    );
    assert_eq!(find(&p, &FindingKey::Architecture), None);
    let mut config = config();
    config.image.architecture = Some("amd64".into());
    let p = m.check(&config, &untyped);
    assert_eq!(
        severity(&p, &FindingKey::Architecture),
        Some(Severity::Info)
    );
    assert_eq!(p.image_architecture.as_deref(), Some("x86_64"));
    assert!(!blocked(&p), "{:#?}", p.findings);
}

#[test]
fn bios_uefi_and_secure_boot_are_told_apart() {
    let m = Machine::new();
    let p = m.check(&config(), &x86_image());
    assert_eq!(p.fingerprint.firmware, Firmware::Bios);
    assert_eq!(p.fingerprint.secure_boot, None);
    // A GPT image without a BIOS boot partition may not boot with BIOS.
    assert_eq!(
        severity(&p, &FindingKey::ImageBoot),
        Some(Severity::Warning)
    );

    m.uefi(Some(0));
    let p = m.check(&config(), &x86_image());
    assert_eq!(p.fingerprint.firmware, Firmware::Uefi);
    assert_eq!(p.fingerprint.secure_boot, Some(false));
    assert_eq!(find(&p, &FindingKey::SecureBoot), None);
    assert_eq!(find(&p, &FindingKey::ImageBoot), None);

    m.remove("sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c");
    m.uefi(Some(1));
    let p = m.check(&config(), &x86_image());
    assert_eq!(p.fingerprint.secure_boot, Some(true));
    assert_eq!(
        severity(&p, &FindingKey::SecureBoot),
        Some(Severity::Warning)
    );

    // UEFI and no EFI system partition in the image: it cannot boot.
    let p = m.check(&config(), &image(GIB, &[X86_ROOT]));
    assert_eq!(
        severity(&p, &FindingKey::ImageBoot),
        Some(Severity::Blocker)
    );
}

#[test]
fn a_raspberry_pi_is_recognised_by_its_device_tree_model() {
    let m = Machine::new();
    m.file("proc/sys/kernel/arch", "aarch64\n");
    m.file("proc/device-tree/model", "Raspberry Pi 4 Model B Rev 1.4\0");
    m.disk("mmcblk0", 32 * GIB, &["mmcblk0p1", "mmcblk0p2"]);
    m.root("/dev/mmcblk0p2");
    let p = m.check(&config(), &image(GIB, &["c", ARM64_ROOT]));
    assert_eq!(
        p.fingerprint.model.as_deref(),
        Some("Raspberry Pi 4 Model B Rev 1.4")
    );
    assert_eq!(severity(&p, &FindingKey::RaspberryPi), Some(Severity::Info));
    assert!(find(&p, &FindingKey::RootDevice)
        .unwrap()
        .finding
        .contains("SD card"));
    assert_eq!(p.target.as_ref().unwrap().device, "/dev/mmcblk0");
    assert!(!blocked(&p), "{:#?}", p.findings);
    // Strategy flasher boots once through grub, which a Pi does not run:
    // refused in the plan, not left for `run` to find out.
    let flasher = Config {
        strategy: ferry_takeover::Strategy::Flasher,
        ..config()
    };
    let p = m.check(&flasher, &image(GIB, &["c", ARM64_ROOT]));
    assert_eq!(
        severity(&p, &FindingKey::RaspberryPi),
        Some(Severity::Blocker)
    );
    assert!(find(&p, &FindingKey::RaspberryPi)
        .unwrap()
        .remediation
        .contains("strategy ram"));
}

#[test]
fn an_nvme_or_virtio_root_gives_its_disk_as_the_target() {
    let m = Machine::new();
    let p = m.check(&config(), &x86_image());
    assert!(find(&p, &FindingKey::RootDevice)
        .unwrap()
        .finding
        .contains("NVMe"));
    let target = p.target.as_ref().unwrap();
    assert_eq!(
        (target.device.as_str(), target.size_bytes, target.holds_root),
        ("/dev/nvme0n1", 64 * GIB, true)
    );
    assert_eq!(p.fingerprint.root_device.as_deref(), Some("/dev/nvme0n1p2"));

    m.disk("vda", 20 * GIB, &["vda1"]);
    m.root("/dev/vda1");
    let p = m.check(&config(), &x86_image());
    assert!(find(&p, &FindingKey::RootDevice)
        .unwrap()
        .finding
        .contains("virtio"));
    assert_eq!(p.target.unwrap().device, "/dev/vda");
}

#[test]
fn a_root_on_lvm_crypt_or_raid_is_a_blocker_with_no_target() {
    for (uuid, key) in [
        ("LVM-abcdef", FindingKey::RootLvm),
        ("CRYPT-LUKS2-1234-root", FindingKey::RootCrypt),
    ] {
        let m = Machine::new();
        m.dm("dm-0", "vg-root", uuid);
        m.root("/dev/mapper/vg-root");
        let p = m.check(&config(), &x86_image());
        assert_eq!(
            severity(&p, &key),
            Some(Severity::Blocker),
            "{uuid}: {:#?}",
            p.findings
        );
        assert_eq!(p.target, None);
    }
    let m = Machine::new();
    m.file("sys/devices/virtual/block/md0/size", "1000\n");
    m.link("md0", "../../devices/virtual/block/md0");
    m.root("/dev/md0");
    let p = m.check(&config(), &x86_image());
    assert_eq!(severity(&p, &FindingKey::RootRaid), Some(Severity::Blocker));
    assert_eq!(p.target, None);
}

#[test]
fn a_root_named_dev_root_is_found_by_its_device_number() {
    let m = Machine::new();
    m.file("proc/sys/kernel/arch", "aarch64\n");
    m.disk("mmcblk0", 32 * GIB, &["mmcblk0p1", "mmcblk0p2"]);
    m.root("/dev/root");
    let p = m.check(&config(), &image(GIB, &["c", ARM64_ROOT]));
    assert_eq!(
        severity(&p, &FindingKey::RootDevice),
        Some(Severity::Blocker)
    );
    m.file(
        "proc/self/mountinfo",
        "22 1 179:2 / / rw,noatime shared:1 - ext4 /dev/root rw\n",
    );
    std::fs::create_dir_all(m.path().join("sys/dev/block")).unwrap();
    std::os::unix::fs::symlink(
        "../../devices/virtual/block/mmcblk0/mmcblk0p2",
        m.path().join("sys/dev/block/179:2"),
    )
    .unwrap();
    let p = m.check(&config(), &image(GIB, &["c", ARM64_ROOT]));
    assert_eq!(
        severity(&p, &FindingKey::RootDevice),
        Some(Severity::Info),
        "{:#?}",
        p.findings
    );
    assert_eq!(p.target.unwrap().device, "/dev/mmcblk0");
}

#[test]
fn a_root_that_is_no_block_device_is_a_blocker() {
    let m = Machine::new();
    m.root("server:/export/root");
    let p = m.check(&config(), &x86_image());
    assert_eq!(
        severity(&p, &FindingKey::RootDevice),
        Some(Severity::Blocker)
    );
}

#[test]
fn an_image_bigger_than_the_disk_is_a_blocker() {
    let m = Machine::new();
    let p = m.check(&config(), &image(65 * GIB, &[ESP, X86_ROOT]));
    let f = find(&p, &FindingKey::DiskSize).unwrap();
    assert_eq!(f.severity, Severity::Blocker);
    assert!(f.finding.contains("/dev/nvme0n1"), "{f:?}");
    let p = m.check(&config(), &image(64 * GIB, &[ESP, X86_ROOT]));
    assert_eq!(
        find(&p, &FindingKey::DiskSize),
        None,
        "exactly the disk's size fits"
    );
}

#[test]
fn a_named_target_disk_must_exist_and_be_a_whole_disk() {
    let m = Machine::new();
    m.disk("sdb", 128 * GIB, &["sdb1"]);
    let mut config = config();
    config.target.disk = Some(toml::Value::String("/dev/sdz".into()).try_into().unwrap());
    let p = m.check(&config, &x86_image());
    assert_eq!(
        severity(&p, &FindingKey::TargetDisk),
        Some(Severity::Blocker)
    );
    assert_eq!(p.target, None);
    config.target.disk = Some(toml::Value::String("/dev/sdb1".into()).try_into().unwrap());
    let p = m.check(&config, &x86_image());
    assert!(find(&p, &FindingKey::TargetDisk)
        .unwrap()
        .finding
        .contains("partition"));
    config.target.disk = Some(toml::Value::String("/dev/sdb".into()).try_into().unwrap());
    let p = m.check(&config, &x86_image());
    let target = p.target.as_ref().unwrap();
    assert_eq!((target.size_bytes, target.holds_root), (128 * GIB, false));
    assert_eq!(
        severity(&p, &FindingKey::TargetDisk),
        Some(Severity::Warning)
    );
}

#[test]
fn config_partitions_the_image_lacks_are_blockers() {
    let m = Machine::new();
    let mut config = config();
    config.target.grow = Some(2);
    config.target.data_partition = Some(5);
    let p = m.check(&config, &x86_image());
    assert_eq!(
        severity(&p, &FindingKey::ImagePartition(5)),
        Some(Severity::Blocker)
    );
    assert_eq!(find(&p, &FindingKey::ImagePartition(2)), None);
}

#[test]
fn short_ram_streams_the_image_and_too_little_for_the_stage_blocks() {
    let m = Machine::new();
    let config = Config::default();
    // What stage 2 copies: the running binary (here the test) and its libraries.
    let files = stage2_files(m.path(), PATH, &config);
    let exe = std::env::current_exe().unwrap().canonicalize().unwrap();
    assert!(files.files.contains(&exe), "{files:?}");
    assert!(files.bytes >= std::fs::metadata(&exe).unwrap().len());
    if ferry_testkit::unmet(&[ferry_testkit::Need::Tool("ldd")]).is_none() {
        assert!(
            files
                .files
                .iter()
                .any(|f| f.to_string_lossy().contains("libc.so")),
            "{files:?}"
        );
    }
    let stage = files.bytes + RAM_MARGIN_BYTES;
    m.mem_available(stage + 50 * MIB);
    // An image whose disk is not known cannot be streamed: blocked.
    let p = m.check(&config, &x86_image());
    let f = find(&p, &FindingKey::Ram).unwrap();
    assert_eq!(f.severity, Severity::Blocker);
    assert!(
        f.finding.contains("neither held in RAM nor streamed"),
        "{f:?}"
    );
    // On its own disk (sdb), it is streamed from there.
    let mut on_disk = x86_image();
    on_disk.path = m.path().join("images/os.img");
    m.file("images/os.img", "image");
    let dev = std::os::unix::fs::MetadataExt::dev(&std::fs::metadata(&on_disk.path).unwrap());
    let link = m.path().join(format!(
        "sys/dev/block/{}:{}",
        libc::major(dev),
        libc::minor(dev)
    ));
    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink("../../devices/pci0/block/sdb/sdb1", &link).unwrap();
    let p = m.check(&config, &on_disk);
    let f = find(&p, &FindingKey::Ram).unwrap();
    assert_eq!(f.severity, Severity::Warning);
    assert!(f.finding.contains("streamed from its own disk"), "{f:?}");
    // On the disk it replaces, it cannot be.
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink("../../devices/pci0/block/nvme0n1/nvme0n1p2", &link).unwrap();
    let p = m.check(&config, &on_disk);
    assert_eq!(severity(&p, &FindingKey::Ram), Some(Severity::Blocker));
    m.mem_available(stage - MIB);
    let p = m.check(&config, &x86_image());
    assert_eq!(severity(&p, &FindingKey::Ram), Some(Severity::Blocker));
    m.mem_available(stage + 101 * MIB);
    let p = m.check(&config, &x86_image());
    assert_eq!(severity(&p, &FindingKey::Ram), Some(Severity::Info));
}

#[test]
fn the_backup_counts_in_the_ram_stage() {
    let m = Machine::new();
    m.file("srv/db/dump", vec![0u8; 40 * MIB as usize]);
    let config = parsed("[target]\ndata_partition = 2\n[backup]\npaths = [\"/srv/db\"]\n");
    let stage = stage2_files(m.path(), PATH, &config).bytes + RAM_MARGIN_BYTES;
    // Enough for the stage without the backup, not with it.
    m.mem_available(stage + 20 * MIB);
    let p = m.check(&config, &x86_image());
    let f = find(&p, &FindingKey::Ram).unwrap();
    assert_eq!(f.severity, Severity::Blocker, "{f:?}");
    assert!(f.finding.contains("the backup 41 MiB"), "{f:?}");
}

fn parsed(text: &str) -> Config {
    Config::parse(text, Path::new("takeover.toml")).unwrap()
}

/// The x86 image with a data partition 3 of `bytes`.
fn image_with_data(bytes: u64) -> ImageSummary {
    let mut image = x86_image();
    image.table.partitions.push(PartitionSummary {
        number: 3,
        start: 16384,
        size: bytes / 512,
        kind: "0FC63DAF-8483-4772-8E79-3D69D8477DE4".into(),
        name: Some("data".into()),
        attributes: None,
        filesystem: None,
    });
    image
}

#[test]
fn a_missing_backup_path_or_no_data_partition_is_a_blocker() {
    let m = Machine::new();
    m.file("etc/app/a.conf", "a\n");
    let p = m.check(
        &parsed("[target]\ndata_partition = 3\n[backup]\npaths = [\"/etc/app\", \"/srv/gone\"]\n"),
        &image_with_data(64 * MIB),
    );
    let f = find(&p, &FindingKey::BackupSize).unwrap();
    assert_eq!(f.severity, Severity::Blocker);
    assert!(f.finding.contains("/srv/gone"), "{f:?}");
    let p = m.check(
        &parsed("[backup]\npaths = [\"/etc/app\"]\n"),
        &image_with_data(64 * MIB),
    );
    // No data partition: carry-target says it, once.
    assert_eq!(find(&p, &FindingKey::BackupSize), None);
    let f = find(&p, &FindingKey::CarryTarget).unwrap();
    assert_eq!(f.severity, Severity::Blocker);
    assert!(f.remediation.contains("data_partition"), "{f:?}");
    // Nothing to back up: nothing to say.
    let p = m.check(&Config::default(), &image_with_data(64 * MIB));
    assert_eq!(find(&p, &FindingKey::BackupSize), None);
}

#[test]
fn a_backup_larger_than_the_data_partition_is_a_blocker_with_the_figures() {
    let m = Machine::new();
    m.file("srv/db/dump", vec![0u8; 40 * MIB as usize]);
    m.file("srv/db/small", "x");
    let config = parsed("[target]\ndata_partition = 3\n[backup]\npaths = [\"/srv/db\"]\n");
    // Archive and extracted copy: 80 MiB and the margin, in 64 MiB.
    let p = m.check(&config, &image_with_data(64 * MIB));
    let f = find(&p, &FindingKey::BackupSize).unwrap();
    assert_eq!(f.severity, Severity::Blocker, "{f:?}");
    assert!(
        f.finding.contains("3 entries, 41 MiB of files") && f.finding.contains("61 MiB usable"),
        "{f:?}"
    );
    let p = m.check(&config, &image_with_data(200 * MIB));
    let f = find(&p, &FindingKey::BackupSize).unwrap();
    assert_eq!(f.severity, Severity::Info, "{f:?}");
    // Grown to the end of the 64 GiB disk, the small partition is enough.
    let mut grown = config.clone();
    grown.target.grow = Some(3);
    let p = m.check(&grown, &image_with_data(64 * MIB));
    let f = find(&p, &FindingKey::BackupSize).unwrap();
    assert_eq!(f.severity, Severity::Info, "{f:?}");
    assert!(f.finding.contains("once grown"), "{f:?}");
}

impl Machine {
    /// A process as proc shows it: exe and cwd links, maps, files open.
    fn process(&self, pid: u32, comm: &str, cgroup: &str, exe: &str, cwd: &str) {
        let dir = self.path().join(format!("proc/{pid}"));
        std::fs::create_dir_all(dir.join("fd")).unwrap();
        std::fs::create_dir_all(dir.join("fdinfo")).unwrap();
        self.file(&format!("proc/{pid}/comm"), format!("{comm}\n"));
        self.file(&format!("proc/{pid}/cgroup"), format!("0::{cgroup}\n"));
        self.file(
            &format!("proc/{pid}/maps"),
            format!("55d0c0000000-55d0c0001000 r-xp 00000000 103:02 1234   {exe}\n"),
        );
        std::os::unix::fs::symlink(exe, dir.join("exe")).unwrap();
        std::os::unix::fs::symlink(cwd, dir.join("cwd")).unwrap();
    }

    fn open_file(&self, pid: u32, fd: u32, path: &str, flags: &str) {
        let dir = self.path().join(format!("proc/{pid}"));
        std::os::unix::fs::symlink(path, dir.join(format!("fd/{fd}"))).unwrap();
        self.file(
            &format!("proc/{pid}/fdinfo/{fd}"),
            format!("pos:\t0\nflags:\t{flags}\nmnt_id:\t30\n"),
        );
    }
}

#[test]
fn processes_holding_the_old_root_are_counted_and_named() {
    let m = Machine::new();
    m.disk("sdb", 8 * GIB, &["sdb1"]);
    m.file(
        "proc/self/mounts",
        "/dev/nvme0n1p2 / ext4 rw 0 0\nproc /proc proc rw 0 0\ntmpfs /run tmpfs rw 0 0\n\
         /dev/nvme0n1p1 /boot\\040efi vfat rw 0 0\n/dev/sdb1 /data ext4 rw 0 0\n",
    );
    // Init and a kernel thread are never counted.
    m.process(1, "systemd", "/init.scope", "/usr/lib/systemd/systemd", "/");
    std::fs::create_dir_all(m.path().join("proc/2")).unwrap();
    m.file("proc/2/comm", "kthreadd\n");
    // Executables on the old root: two processes of one service, a shell.
    m.process(
        200,
        "cron",
        "/system.slice/cron.service",
        "/usr/sbin/cron",
        "/",
    );
    m.process(
        201,
        "sh",
        "/system.slice/cron.service",
        "/usr/bin/dash",
        "/run",
    );
    m.process(
        300,
        "bash",
        "/user.slice/user-0.slice/session-1.scope",
        "/usr/bin/bash",
        "/run",
    );
    // From tmpfs, holding only a file open for writing on the old root.
    m.process(
        400,
        "logger",
        "/system.slice/logger.service",
        "/run/logger",
        "/run",
    );
    m.open_file(400, 3, "/var/log/app.log (deleted)", "0102001");
    // From tmpfs, the old root's files open only for reading: not a holder.
    m.process(
        401,
        "reader",
        "/system.slice/reader.service",
        "/run/reader",
        "/run",
    );
    m.open_file(401, 3, "/etc/passwd", "0100000");
    m.open_file(401, 4, "socket:[1234]", "02");
    // Working in /boot efi (the target disk) counts; /data (another disk) does not.
    m.process(
        500,
        "editor",
        "/user.slice/user-0.slice/session-2.scope",
        "/run/editor",
        "/boot efi/EFI",
    );
    m.process(
        600,
        "backupd",
        "/system.slice/backupd.service",
        "/run/backupd",
        "/data",
    );
    let p = m.check(&Config::default(), &x86_image());
    let f = find(&p, &FindingKey::OldRootHolders).unwrap();
    assert_eq!(f.severity, Severity::Info);
    assert!(
        f.finding.starts_with("5 processes hold the old root"),
        "{f:?}"
    );
    assert!(
        f.finding
            .ends_with(": bash, cron.service, editor, logger.service"),
        "{f:?}"
    );
    assert!(
        !f.finding.contains("reader") && !f.finding.contains("backupd"),
        "{f:?}"
    );
}

#[test]
fn no_process_holding_the_old_root_is_said() {
    let m = Machine::new();
    m.process(700, "worker", "/system.slice/w.service", "/run/w", "/run");
    m.file(
        "proc/self/mounts",
        "/dev/nvme0n1p2 / ext4 rw 0 0\ntmpfs /run tmpfs rw 0 0\n",
    );
    let p = m.check(&Config::default(), &x86_image());
    let f = find(&p, &FindingKey::OldRootHolders).unwrap();
    assert_eq!(f.finding, "no process holds the old root");
}

#[test]
fn a_missing_tool_is_a_blocker_named_after_it() {
    let m = Machine::new();
    m.remove("usr/bin/ldd");
    m.remove("usr/bin/sfdisk");
    let p = m.check(&config(), &x86_image());
    assert_eq!(
        severity(&p, &FindingKey::MissingCommand("ldd".into())),
        Some(Severity::Blocker)
    );
    // The RAM strategy flashes with the image crate, not sfdisk; the
    // flasher strategy lays partitions out with it.
    assert_eq!(find(&p, &FindingKey::MissingCommand("sfdisk".into())), None);
    let config = Config {
        strategy: ferry_takeover::Strategy::Flasher,
        ..config()
    };
    let p = m.check(&config, &x86_image());
    assert_eq!(
        severity(&p, &FindingKey::MissingCommand("sfdisk".into())),
        Some(Severity::Blocker)
    );
}

#[test]
fn a_watchdog_absent_blocks_only_when_the_config_requires_one() {
    let m = Machine::new();
    let mut config = config();
    let p = m.check(&config, &x86_image());
    assert_eq!(severity(&p, &FindingKey::Watchdog), Some(Severity::Warning));
    config.watchdog.require = true;
    let p = m.check(&config, &x86_image());
    assert_eq!(severity(&p, &FindingKey::Watchdog), Some(Severity::Blocker));
    m.file("sys/class/watchdog/watchdog0/identity", "i6300ESB timer\n");
    let p = m.check(&config, &x86_image());
    assert_eq!(severity(&p, &FindingKey::Watchdog), Some(Severity::Info));
}

#[test]
fn an_image_whose_sha256_differs_from_the_config_is_a_blocker() {
    let m = Machine::new();
    let mut config = config();
    let p = m.check(&config, &x86_image());
    assert_eq!(
        severity(&p, &FindingKey::ImageChecksum),
        Some(Severity::Warning)
    );
    config.image.sha256 = Some(toml::Value::String("cd".repeat(32)).try_into().unwrap());
    let p = m.check(&config, &x86_image());
    assert_eq!(
        severity(&p, &FindingKey::ImageChecksum),
        Some(Severity::Blocker)
    );
    config.image.sha256 = Some(toml::Value::String("AB".repeat(32)).try_into().unwrap());
    let p = m.check(&config, &x86_image());
    assert_eq!(find(&p, &FindingKey::ImageChecksum), None);
}

#[test]
fn a_clean_machine_has_no_blocker() {
    let m = Machine::new();
    m.file("dev/watchdog", "");
    let p = m.check(
        &config(),
        &image(
            GIB,
            &[ESP, "21686148-6449-6E6F-744E-656564454649", X86_ROOT],
        ),
    );
    assert!(!blocked(&p), "{:#?}", p.findings);
    assert_eq!(find(&p, &FindingKey::ImageBoot), None);
}

#[test]
fn finding_keys_read_back_from_their_string_form() {
    for key in [
        FindingKey::Architecture,
        FindingKey::ImageArchitecture,
        FindingKey::Firmware,
        FindingKey::SecureBoot,
        FindingKey::RaspberryPi,
        FindingKey::ImageBoot,
        FindingKey::RootDevice,
        FindingKey::RootLvm,
        FindingKey::RootCrypt,
        FindingKey::RootRaid,
        FindingKey::TargetDisk,
        FindingKey::DiskSize,
        FindingKey::ImagePartition(4),
        FindingKey::Ram,
        FindingKey::BackupSize,
        FindingKey::OldRootHolders,
        FindingKey::MissingCommand("sfdisk".into()),
        FindingKey::Watchdog,
        FindingKey::ImageChecksum,
    ] {
        assert_eq!(key.to_string().parse::<FindingKey>().unwrap(), key);
    }
    assert_eq!(
        FindingKey::MissingCommand("sfdisk".into()).to_string(),
        "missing-command:sfdisk"
    );
    for bad in [
        "",
        "ram:1",
        "image-partition:x",
        "missing-command:",
        "apt-update",
    ] {
        assert!(bad.parse::<FindingKey>().is_err(), "{bad}");
    }
}

#[test]
fn a_config_that_names_no_partition_to_carry_into_is_blocked() {
    let m = Machine::new();
    let p = m.check(&Config::default(), &x86_image());
    let carry: Vec<_> = p
        .findings
        .iter()
        .filter(|f| f.key == FindingKey::CarryTarget)
        .collect();
    assert_eq!(carry.len(), 2, "{carry:#?}");
    assert!(carry.iter().all(|f| f.severity == Severity::Blocker));
    assert!(
        carry[0].finding.contains("data_partition"),
        "{}",
        carry[0].finding
    );
    assert!(
        carry[1].finding.contains("root_partition"),
        "{}",
        carry[1].finding
    );
    // Nothing carried into the root: only the data partition is needed.
    let mut data_only = Config::default();
    data_only.target.data_partition = Some(1);
    data_only.network.carry = false;
    data_only.identity.hostname = false;
    data_only.identity.ssh_host_keys = false;
    data_only.identity.authorized_keys = false;
    let p = m.check(&data_only, &x86_image());
    assert_eq!(find(&p, &FindingKey::CarryTarget), None);
    // A partition the image lacks is named.
    let mut named = config();
    named.target.root_partition = Some(9);
    let p = m.check(&named, &x86_image());
    assert_eq!(
        severity(&p, &FindingKey::ImagePartition(9)),
        Some(Severity::Blocker)
    );
    // The flasher also needs the spare partition and the image's boot one.
    let flasher = Config {
        strategy: ferry_takeover::Strategy::Flasher,
        ..config()
    };
    let p = m.check(&flasher, &x86_image());
    let needs: Vec<_> = p
        .findings
        .iter()
        .filter(|f| f.key == FindingKey::CarryTarget)
        .map(|f| f.finding.as_str())
        .collect();
    assert_eq!(needs.len(), 2, "{needs:?}");
    assert!(needs[0].contains("spare_partition") && needs[1].contains("boot_partition"));
    assert_eq!(
        "carry-target".parse::<FindingKey>(),
        Ok(FindingKey::CarryTarget)
    );
}

#[test]
fn a_flasher_whose_spare_swap_is_in_fstab_without_nofail_is_warned() {
    let m = Machine::new();
    let mut flasher = Config {
        strategy: ferry_takeover::Strategy::Flasher,
        ..config()
    };
    flasher.target.spare_partition = Some(1);
    flasher.target.boot_partition = Some(1);
    let uuid = "0b1e2c3d-aaaa-bbbb-cccc-000000000001";
    let link = m.path().join("dev/disk/by-uuid").join(uuid);
    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink("../../nvme0n1p1", &link).unwrap();
    m.file(
        "etc/fstab",
        format!("# swap\nUUID=xyz / ext4 defaults 0 1\nUUID={uuid} none swap sw 0 0\n"),
    );
    let p = m.check(&flasher, &x86_image());
    let f = find(&p, &FindingKey::SpareInFstab).unwrap();
    assert_eq!(f.severity, Severity::Warning);
    assert!(
        f.finding.starts_with("etc/fstab:3 names /dev/nvme0n1p1"),
        "{f:?}"
    );
    // nofail: nothing to say; and the RAM strategy gives up no swap.
    m.file(
        "etc/fstab",
        format!("UUID={uuid} none swap sw,nofail 0 0\n"),
    );
    assert_eq!(
        find(&m.check(&flasher, &x86_image()), &FindingKey::SpareInFstab),
        None
    );
    m.file("etc/fstab", "/dev/nvme0n1p1 none swap sw 0 0\n");
    assert!(find(&m.check(&flasher, &x86_image()), &FindingKey::SpareInFstab).is_some());
    assert_eq!(
        find(&m.check(&config(), &x86_image()), &FindingKey::SpareInFstab),
        None
    );
}
