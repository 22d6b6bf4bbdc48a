//! The read-only pre-flight of a takeover: what this machine is (CPU,
//! firmware, the disk holding `/`, RAM, tools, watchdog, the backup's size,
//! the processes holding the old root) against what the
//! image and the config need, as findings with a stable key, a severity
//! and a remediation. Everything is read under a *system directory*
//! (`/` on a machine; a tree of fake `proc`, `sys`, `dev` in tests), so
//! nothing here needs root or changes anything.
//!
//! Not the plan file (`plan`), nor stage 2.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::config::{Config, Strategy};
use crate::plan::ImageSummary;

/// How much a finding matters: a blocker stops the takeover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Blocker,
}

/// The stable key of a finding. Its string form (`Display`, `FromStr` and
/// serde use the same one) is listed in docs/takeover.md; automation acts
/// on it, so changing one breaks it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FindingKey {
    /// This machine's CPU architecture against the image's.
    Architecture,
    /// The image's architecture cannot be known, or its sources disagree.
    ImageArchitecture,
    /// BIOS or UEFI.
    Firmware,
    SecureBoot,
    RaspberryPi,
    /// The image has no way to boot with this machine's firmware.
    ImageBoot,
    /// What the root filesystem sits on.
    RootDevice,
    RootLvm,
    RootCrypt,
    RootRaid,
    /// The disk the image is written to.
    TargetDisk,
    /// The image does not fit the disk.
    DiskSize,
    /// The config names this partition number, which the image lacks.
    ImagePartition(u32),
    /// Memory for the RAM stage: what stage 2 keeps in its tmpfs (ferry,
    /// its libraries, the tools, the backup, the image) against MemAvailable.
    Ram,
    /// The backup's size against the image's data partition.
    BackupSize,
    /// Processes that hold the old root (stage 2 stops them).
    OldRootHolders,
    /// This command is not on PATH.
    MissingCommand(String),
    Watchdog,
    /// The image file against the config's sha256.
    ImageChecksum,
    /// The partitions of the new OS the carry-over and the record go to.
    CarryTarget,
    /// Strategy flasher: the old OS's fstab names the spare partition it
    /// gives up.
    SpareInFstab,
}

impl FindingKey {
    fn parts(&self) -> (&'static str, Option<String>) {
        use FindingKey::*;
        match self {
            Architecture => ("architecture", None),
            ImageArchitecture => ("image-architecture", None),
            Firmware => ("firmware", None),
            SecureBoot => ("secure-boot", None),
            RaspberryPi => ("raspberry-pi", None),
            ImageBoot => ("image-boot", None),
            RootDevice => ("root-device", None),
            RootLvm => ("root-lvm", None),
            RootCrypt => ("root-crypt", None),
            RootRaid => ("root-raid", None),
            TargetDisk => ("target-disk", None),
            DiskSize => ("disk-size", None),
            ImagePartition(n) => ("image-partition", Some(n.to_string())),
            Ram => ("ram", None),
            BackupSize => ("backup-size", None),
            OldRootHolders => ("old-root-holders", None),
            MissingCommand(c) => ("missing-command", Some(c.clone())),
            Watchdog => ("watchdog", None),
            ImageChecksum => ("image-checksum", None),
            CarryTarget => ("carry-target", None),
            SpareInFstab => ("spare-in-fstab", None),
        }
    }
}

impl fmt::Display for FindingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.parts() {
            (name, None) => f.write_str(name),
            (name, Some(subject)) => write!(f, "{name}:{subject}"),
        }
    }
}

/// A string that is no finding key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a takeover finding key")]
pub struct UnknownFindingKey(pub String);

impl FromStr for FindingKey {
    type Err = UnknownFindingKey;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        use FindingKey::*;
        let unknown = || UnknownFindingKey(s.to_string());
        let (name, subject) = match s.split_once(':') {
            Some((name, subject)) => (name, Some(subject)),
            None => (s, None),
        };
        let key = match (name, subject) {
            ("architecture", None) => Architecture,
            ("image-architecture", None) => ImageArchitecture,
            ("firmware", None) => Firmware,
            ("secure-boot", None) => SecureBoot,
            ("raspberry-pi", None) => RaspberryPi,
            ("image-boot", None) => ImageBoot,
            ("root-device", None) => RootDevice,
            ("root-lvm", None) => RootLvm,
            ("root-crypt", None) => RootCrypt,
            ("root-raid", None) => RootRaid,
            ("target-disk", None) => TargetDisk,
            ("disk-size", None) => DiskSize,
            ("image-partition", Some(n)) => ImagePartition(n.parse().map_err(|_| unknown())?),
            ("ram", None) => Ram,
            ("backup-size", None) => BackupSize,
            ("old-root-holders", None) => OldRootHolders,
            ("missing-command", Some(c)) if !c.is_empty() => MissingCommand(c.to_string()),
            ("watchdog", None) => Watchdog,
            ("image-checksum", None) => ImageChecksum,
            ("carry-target", None) => CarryTarget,
            ("spare-in-fstab", None) => SpareInFstab,
            _ => return Err(unknown()),
        };
        Ok(key)
    }
}

impl Serialize for FindingKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for FindingKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One result of the pre-flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub key: FindingKey,
    pub severity: Severity,
    pub finding: String,
    pub remediation: String,
}

fn finding(
    key: FindingKey,
    severity: Severity,
    what: impl Into<String>,
    remediation: impl Into<String>,
) -> Finding {
    Finding {
        key,
        severity,
        finding: what.into(),
        remediation: remediation.into(),
    }
}

/// How the machine boots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Firmware {
    Bios,
    Uefi,
}

/// What the plan was made for: stage 2 refuses a plan whose machine is
/// not this one any more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// uname's machine (x86_64, aarch64); None when it cannot be read.
    pub architecture: Option<String>,
    /// The source of `/` in the mount table (`/dev/nvme0n1p2`).
    pub root_device: Option<String>,
    pub firmware: Firmware,
    /// UEFI only: the SecureBoot variable's value.
    pub secure_boot: Option<bool>,
    /// The device tree's model (a Raspberry Pi says so there).
    pub model: Option<String>,
}

/// The disk the image goes to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetDisk {
    pub device: String,
    pub size_bytes: u64,
    /// It is the disk that holds `/` (the usual case: the OS replaces itself).
    pub holds_root: bool,
}

/// What the pre-flight found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preflight {
    pub fingerprint: Fingerprint,
    pub target: Option<TargetDisk>,
    /// The image's architecture, as the pre-flight decided it.
    pub image_architecture: Option<String>,
    pub findings: Vec<Finding>,
}

/// Memory the RAM stage needs besides the files it copies into its tmpfs
/// (ferry, its libraries, the tools, the backup, the image: counted): the
/// kernel's own working room, page tables, tmpfs metadata and stage 2's
/// buffers while the old root is unmounted.
pub const RAM_MARGIN_BYTES: u64 = 128 << 20;

/// Room kept free on the data partition besides the backup: the new OS
/// writes its own state there on first boot, and the events go there too.
pub const BACKUP_MARGIN_BYTES: u64 = 16 << 20;

/// GPT root partition types (the Discoverable Partitions Specification)
/// that name a CPU architecture, with uname's name for it.
const ROOT_TYPES: &[(&str, &str)] = &[
    ("4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709", "x86_64"),
    ("B921B045-1DF0-41C3-AF44-4C6F280D3FAE", "aarch64"),
    ("72EC70A6-CF74-40E6-BD49-4BDA08E8F224", "riscv64"),
];

const ESP_GPT: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
const BIOS_BOOT_GPT: &str = "21686148-6449-6E6F-744E-656564454649";
const SECURE_BOOT_VAR: &str =
    "sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c";

/// The commands every takeover calls (stage 1 lists ferry's libraries with
/// `ldd`), then those of each strategy. Stage 2 mounts, pivots and flashes
/// with system calls, so it needs no command once the old root is gone.
const TOOLS: &[&str] = &["ldd"];
const RAM_TOOLS: &[&str] = &[];
const FLASHER_TOOLS: &[&str] = &["sfdisk", "grub-reboot"];

/// Debian's names for the architectures, as uname says them.
fn uname_name(arch: &str) -> String {
    match arch.trim() {
        "amd64" | "x86-64" => "x86_64".into(),
        "arm64" => "aarch64".into(),
        other => other.to_string(),
    }
}

/// Runs every check. `system` is the machine's root (`/`); `path_var` is
/// the PATH its commands are looked up on (each entry under `system`).
pub fn preflight(
    system: &Path,
    path_var: &str,
    config: &Config,
    image: &ImageSummary,
) -> Preflight {
    let mut findings = Vec::new();
    let at = |p: &str| system.join(p);

    // CPU architecture.
    let architecture = std::fs::read_to_string(at("proc/sys/kernel/arch"))
        .ok()
        .map(|a| uname_name(&a))
        .filter(|a| !a.is_empty())
        .or_else(|| (system == Path::new("/")).then(|| std::env::consts::ARCH.to_string()));
    let image_architecture = image_architecture(config, image, &mut findings);
    match (&architecture, &image_architecture) {
        (None, _) => findings.push(finding(
            FindingKey::Architecture,
            Severity::Blocker,
            "this machine's CPU architecture cannot be read (proc/sys/kernel/arch)",
            "run ferry on the machine itself, with /proc mounted",
        )),
        (Some(machine), Some(image_arch)) if machine != image_arch => findings.push(finding(
            FindingKey::Architecture,
            Severity::Blocker,
            format!("this machine is {machine}, the image is built for {image_arch}"),
            format!("use the {machine} build of the image"),
        )),
        (Some(machine), Some(_)) => findings.push(finding(
            FindingKey::Architecture,
            Severity::Info,
            format!("the image and this machine are both {machine}"),
            "nothing to do",
        )),
        (Some(_), None) => {}
    }

    // Boot firmware.
    let firmware = if at("sys/firmware/efi").is_dir() {
        Firmware::Uefi
    } else {
        Firmware::Bios
    };
    let secure_boot = match firmware {
        Firmware::Bios => None,
        // 4 bytes of attributes, then the value.
        Firmware::Uefi => std::fs::read(at(SECURE_BOOT_VAR))
            .ok()
            .and_then(|bytes| bytes.get(4).map(|b| *b == 1)),
    };
    let model = std::fs::read(at("proc/device-tree/model"))
        .ok()
        .map(|bytes| {
            String::from_utf8_lossy(&bytes)
                .trim_end_matches('\0')
                .trim()
                .to_string()
        });
    let raspberry_pi = model.as_deref().is_some_and(|m| m.contains("Raspberry Pi"));
    firmware_findings(
        firmware,
        secure_boot,
        (model.as_deref(), raspberry_pi),
        config.strategy,
        image,
        &mut findings,
    );

    // The disk holding / and the target disk.
    let root_device = root_source(system);
    let root_disk = root_disk(system, root_device.as_deref(), &mut findings);
    let target = target_disk(system, config, root_disk.as_deref(), &mut findings);
    if let Some(target) = &target {
        if image.size > target.size_bytes {
            findings.push(finding(
                FindingKey::DiskSize,
                Severity::Blocker,
                format!(
                    "the image is {} bytes, {} holds only {} bytes",
                    image.size, target.device, target.size_bytes
                ),
                "use an image made for a disk this size, or name a larger disk in [target] disk",
            ));
        }
    }
    for (field, number) in [
        ("grow", config.target.grow),
        ("data_partition", config.target.data_partition),
        ("root_partition", config.target.root_partition),
        ("boot_partition", config.target.boot_partition),
    ] {
        if let Some(n) = number {
            if !image.table.partitions.iter().any(|p| p.number == n) {
                findings.push(finding(
                    FindingKey::ImagePartition(n),
                    Severity::Blocker,
                    format!("[target] {field} names partition {n}, which the image does not have"),
                    "name one of the image's partitions (`ferry image inspect IMG` lists them)",
                ));
            }
        }
    }

    carry_target(config, &mut findings);
    spare_in_fstab(system, config, target.as_ref(), &mut findings);
    let backup_bytes = backup_size(system, config, image, target.as_ref(), &mut findings);
    let target_name = target
        .as_ref()
        .map(|t| t.device.trim_start_matches("/dev/").to_string());
    ram(
        system,
        path_var,
        config,
        image,
        target_name.as_deref(),
        backup_bytes,
        &mut findings,
    );
    tools(system, path_var, config, raspberry_pi, &mut findings);
    old_root_holders(
        system,
        target.as_ref().map(|t| t.device.as_str()),
        &mut findings,
    );
    watchdog(system, config, &mut findings);
    checksum(config, image, &mut findings);

    // Blockers first, so that what stops the takeover is read first.
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    Preflight {
        fingerprint: Fingerprint {
            architecture,
            root_device,
            firmware,
            secure_boot,
            model,
        },
        target,
        image_architecture,
        findings,
    }
}

/// The image's architecture: its GPT root partition type, else the
/// config's `image.architecture`; the two must agree when both are known.
fn image_architecture(
    config: &Config,
    image: &ImageSummary,
    findings: &mut Vec<Finding>,
) -> Option<String> {
    let from_table = image.table.partitions.iter().find_map(|p| {
        ROOT_TYPES
            .iter()
            .find(|(guid, _)| p.kind.eq_ignore_ascii_case(guid))
            .map(|(_, arch)| arch.to_string())
    });
    let from_config = config.image.architecture.as_deref().map(uname_name);
    match (from_table, from_config) {
        (Some(table), Some(said)) if table != said => {
            findings.push(finding(
                FindingKey::ImageArchitecture,
                Severity::Blocker,
                format!(
                    "the image's root partition type says {table}, the config's image.architecture says {said}"
                ),
                "check that this is the image you meant, and correct image.architecture",
            ));
            Some(table)
        }
        (Some(arch), _) | (None, Some(arch)) => Some(arch),
        (None, None) => {
            findings.push(finding(
                FindingKey::ImageArchitecture,
                Severity::Warning,
                "the image's architecture is not known: no GPT root partition type names one",
                "set image.architecture in the config (x86_64, aarch64, …) so that it is checked",
            ));
            None
        }
    }
}

fn firmware_findings(
    firmware: Firmware,
    secure_boot: Option<bool>,
    (model, raspberry_pi): (Option<&str>, bool),
    strategy: Strategy,
    image: &ImageSummary,
    findings: &mut Vec<Finding>,
) {
    let has = |dos: &str, gpt: &str| {
        image
            .table
            .partitions
            .iter()
            .any(|p| p.kind.eq_ignore_ascii_case(dos) || p.kind.eq_ignore_ascii_case(gpt))
    };
    if raspberry_pi {
        let found = format!(
            "a {} (boots from its firmware's boot partition)",
            model.unwrap_or("Raspberry Pi")
        );
        // Strategy flasher boots the new OS once through grub; the Pi's
        // own one-shot boot (tryboot) is not implemented, and a plan must
        // not promise what `run` cannot do.
        findings.push(match strategy {
            Strategy::Flasher => finding(
                FindingKey::RaspberryPi,
                Severity::Blocker,
                format!("{found}: strategy flasher boots the new OS once through grub, which this firmware does not run (its tryboot is not supported)"),
                "use strategy ram, with an image made for this model",
            ),
            Strategy::Ram => finding(
                FindingKey::RaspberryPi,
                Severity::Info,
                found,
                "use an image made for this model",
            ),
        });
        return;
    }
    match firmware {
        Firmware::Uefi => {
            findings.push(finding(
                FindingKey::Firmware,
                Severity::Info,
                "this machine boots with UEFI",
                "nothing to do",
            ));
            if !has("ef", ESP_GPT) {
                findings.push(finding(
                    FindingKey::ImageBoot,
                    Severity::Blocker,
                    "this machine boots with UEFI and the image has no EFI system partition",
                    "use the image's UEFI variant",
                ));
            }
            if secure_boot == Some(true) {
                findings.push(finding(
                    FindingKey::SecureBoot,
                    Severity::Warning,
                    "Secure Boot is on: the new OS boots only if its boot loader is signed by a key the firmware trusts",
                    "use an image with a signed boot loader (shim), or turn Secure Boot off in the firmware setup",
                ));
            }
        }
        Firmware::Bios => {
            findings.push(finding(
                FindingKey::Firmware,
                Severity::Info,
                "this machine boots with BIOS (no UEFI)",
                "nothing to do",
            ));
            let gpt = image.table.label == "gpt";
            let legacy = image.table.partitions.iter().any(|p| {
                p.attributes
                    .as_deref()
                    .is_some_and(|a| a.contains("LegacyBIOSBootable"))
            });
            if gpt && !legacy && !has("", BIOS_BOOT_GPT) {
                findings.push(finding(
                    FindingKey::ImageBoot,
                    Severity::Warning,
                    "the image is GPT without a BIOS boot partition: it may boot only with UEFI",
                    "use an image made to boot with BIOS, or check that its boot loader does",
                ));
            }
        }
    }
}

/// The source of `/` in the mount table (the last mount there wins).
fn root_source(system: &Path) -> Option<String> {
    let mounts = std::fs::read_to_string(system.join("proc/self/mounts")).ok()?;
    mounts.lines().rev().find_map(|line| {
        let mut fields = line.split_whitespace();
        let source = fields.next()?;
        (fields.next()? == "/").then(|| source.to_string())
    })
}

/// The kernel's name (sys/class/block) of the block device `source`.
fn block_name(system: &Path, source: &str) -> Option<String> {
    let class = system.join("sys/class/block");
    if let Some(mapped) = source.strip_prefix("/dev/mapper/") {
        let entries = std::fs::read_dir(&class).ok()?;
        return entries.flatten().find_map(|entry| {
            let name = std::fs::read_to_string(entry.path().join("dm/name")).ok()?;
            (name.trim() == mapped).then(|| entry.file_name().to_string_lossy().into_owned())
        });
    }
    let name = source.strip_prefix("/dev/")?.rsplit('/').next()?;
    class.join(name).exists().then(|| name.to_string())
}

/// The kernel's name of the device of `/` by its device number (the
/// mountinfo's `MAJ:MIN` → sys/dev/block): for a source that names no
/// device node, as `/dev/root` on a Raspberry Pi.
fn root_by_number(system: &Path) -> Option<String> {
    let mountinfo = std::fs::read_to_string(system.join("proc/self/mountinfo")).ok()?;
    let number = mountinfo.lines().rev().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields.get(4) == Some(&"/")).then(|| fields.get(2).map(|n| n.to_string()))?
    })?;
    let device = std::fs::canonicalize(system.join("sys/dev/block").join(number)).ok()?;
    let name = device.file_name()?.to_string_lossy().into_owned();
    system
        .join("sys/class/block")
        .join(&name)
        .exists()
        .then_some(name)
}

/// The disk that holds `/`, with the findings on it; None when `/` is not
/// on a plain partition of a disk.
fn root_disk(system: &Path, source: Option<&str>, findings: &mut Vec<Finding>) -> Option<String> {
    let Some(source) = source else {
        findings.push(finding(
            FindingKey::RootDevice,
            Severity::Blocker,
            "no filesystem is mounted at / in proc/self/mounts",
            "run ferry on the machine itself, with /proc mounted",
        ));
        return None;
    };
    let name = block_name(system, source).or_else(|| root_by_number(system));
    let Some(name) = name else {
        findings.push(finding(
            FindingKey::RootDevice,
            Severity::Blocker,
            format!("/ is mounted from {source}, which is no block device of sys/class/block"),
            "a takeover needs / on a disk partition; this root (a network or overlay filesystem?) is not one",
        ));
        return None;
    };
    let class = system.join("sys/class/block").join(&name);
    if name.starts_with("dm-") {
        let uuid = std::fs::read_to_string(class.join("dm/uuid")).unwrap_or_default();
        let (key, what, remediation) = if uuid.starts_with("LVM-") {
            (
                FindingKey::RootLvm,
                "an LVM logical volume",
                "the takeover rewrites the disk under the volume group; move / to a plain partition first",
            )
        } else if uuid.starts_with("CRYPT-") {
            (
                FindingKey::RootCrypt,
                "an encrypted (dm-crypt) volume",
                "the takeover cannot carry an encrypted root over; move / to a plain partition first",
            )
        } else {
            (
                FindingKey::RootDevice,
                "a device-mapper device",
                "move / to a plain partition first",
            )
        };
        findings.push(finding(
            key,
            Severity::Blocker,
            format!("/ is on {what} ({source}, {name})"),
            remediation,
        ));
        return None;
    }
    if name.starts_with("md") {
        findings.push(finding(
            FindingKey::RootRaid,
            Severity::Blocker,
            format!("/ is on MD RAID ({source}): writing one member breaks the array"),
            "break the mirror and keep / on one plain disk partition first",
        ));
        return None;
    }
    // A partition's directory sits inside its disk's in sysfs.
    let disk = if class.join("partition").exists() {
        std::fs::canonicalize(&class)
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
    } else {
        Some(name.clone())
    };
    let Some(disk) = disk else {
        findings.push(finding(
            FindingKey::RootDevice,
            Severity::Blocker,
            format!("the disk that holds {source} cannot be found in sys/class/block"),
            "name the disk in [target] disk",
        ));
        return None;
    };
    let kind = match disk.as_str() {
        d if d.starts_with("nvme") => "an NVMe disk",
        d if d.starts_with("sd") => "a SATA/SCSI/USB disk",
        d if d.starts_with("vd") => "a virtio disk",
        d if d.starts_with("xvd") => "a Xen disk",
        d if d.starts_with("mmcblk") => "an SD card or eMMC",
        _ => "a disk of a kind ferry does not know",
    };
    findings.push(finding(
        FindingKey::RootDevice,
        Severity::Info,
        format!("/ is {source} on {kind}, /dev/{disk}"),
        "nothing to do",
    ));
    Some(disk)
}

fn target_disk(
    system: &Path,
    config: &Config,
    root_disk: Option<&str>,
    findings: &mut Vec<Finding>,
) -> Option<TargetDisk> {
    let name = match &config.target.disk {
        Some(disk) => {
            let shown = disk.as_path().display().to_string();
            let name = block_name(system, &shown);
            let Some(name) = name else {
                findings.push(finding(
                    FindingKey::TargetDisk,
                    Severity::Blocker,
                    format!("[target] disk {shown} is no block device of this machine"),
                    "name a disk that `lsblk` lists",
                ));
                return None;
            };
            if system
                .join("sys/class/block")
                .join(&name)
                .join("partition")
                .exists()
            {
                findings.push(finding(
                    FindingKey::TargetDisk,
                    Severity::Blocker,
                    format!("[target] disk {shown} is a partition, not a disk"),
                    "name the whole disk (/dev/sda, not /dev/sda1)",
                ));
                return None;
            }
            name
        }
        None => root_disk?.to_string(),
    };
    let size_file = system.join("sys/class/block").join(&name).join("size");
    let sectors = std::fs::read_to_string(&size_file)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    let Some(sectors) = sectors else {
        findings.push(finding(
            FindingKey::TargetDisk,
            Severity::Blocker,
            format!(
                "the size of /dev/{name} cannot be read ({})",
                size_file.display()
            ),
            "run ferry on the machine itself, with /sys mounted",
        ));
        return None;
    };
    let target = TargetDisk {
        device: format!("/dev/{name}"),
        // sysfs counts 512-byte sectors whatever the disk's own.
        size_bytes: sectors.saturating_mul(512),
        holds_root: root_disk == Some(name.as_str()),
    };
    if !target.holds_root {
        findings.push(finding(
            FindingKey::TargetDisk,
            Severity::Warning,
            format!("the image goes to {}, which does not hold /", target.device),
            "check that this disk is the one the machine boots from",
        ));
    }
    Some(target)
}

fn mem_available(system: &Path) -> Option<u64> {
    let meminfo = std::fs::read_to_string(system.join("proc/meminfo")).ok()?;
    meminfo.lines().find_map(|line| {
        let rest = line.strip_prefix("MemAvailable:")?;
        let kib: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kib.saturating_mul(1024))
    })
}

/// The backup's size (config paths, walked under `system`) against the
/// image's data partition; returns the archive's estimated size (stage 2
/// holds it in RAM), 0 when there is nothing to back up or it cannot be
/// measured.
fn backup_size(
    system: &Path,
    config: &Config,
    image: &ImageSummary,
    target: Option<&TargetDisk>,
    findings: &mut Vec<Finding>,
) -> u64 {
    let backup = &config.backup;
    if backup.paths.is_empty() && backup.script.is_none() {
        return 0;
    }
    let paths: Vec<PathBuf> = backup
        .paths
        .iter()
        .map(|p| p.as_path().to_path_buf())
        .collect();
    let (entries, bytes) = match crate::backup::measure(&paths, system) {
        Ok(measured) => measured,
        Err(crate::backup::BackupError::MissingPath { path, .. }) => {
            findings.push(finding(
                FindingKey::BackupSize,
                Severity::Blocker,
                format!("the backup path {} does not exist", path.display()),
                "correct [backup] paths, or remove the path",
            ));
            return 0;
        }
        Err(e) => {
            findings.push(finding(
                FindingKey::BackupSize,
                Severity::Blocker,
                format!("the backup paths cannot be measured: {e}"),
                "correct [backup] paths",
            ));
            return 0;
        }
    };
    let archive = crate::backup::archive_estimate(entries, bytes);
    // No data partition at all is its own blocker (carry-target).
    let Some(number) = config.target.data_partition else {
        return archive;
    };
    // A partition the image lacks is its own blocker (image-partition:N).
    let Some(partition) = image.table.partitions.iter().find(|p| p.number == number) else {
        return archive;
    };
    let mut size = partition
        .size
        .saturating_mul(u64::from(image.table.sector_size));
    let grown = config.target.grow == Some(number);
    if let (true, Some(target)) = (grown, target) {
        size = size.saturating_add(target.size_bytes.saturating_sub(image.size));
    }
    // The filesystem's metadata and reserved blocks take about 5%.
    let usable = size - size / 20;
    // The archive, and its files extracted beside it, a block each at least.
    let needed = archive
        .saturating_add(bytes)
        .saturating_add(entries.saturating_mul(4096))
        .saturating_add(BACKUP_MARGIN_BYTES);
    let mib = |b: u64| b.div_ceil(1 << 20);
    let script = if backup.script.is_some() {
        "; the script's output is not counted (it is known once the script ran; stage 2 checks the space again)"
    } else {
        ""
    };
    let figures = format!(
        "the backup ({entries} entries, {} MiB of files) needs {} MiB on the data partition {number} \
         (archive and extracted copy, {} MiB kept free), which has {} MiB usable{}{script}",
        mib(bytes),
        mib(needed),
        mib(BACKUP_MARGIN_BYTES),
        mib(usable),
        if grown { " once grown to the disk's end" } else { "" },
    );
    if needed > usable {
        findings.push(finding(
            FindingKey::BackupSize,
            Severity::Blocker,
            figures,
            "back up less (or compress it in your backup script), or use an image with a larger data partition",
        ));
    } else {
        findings.push(finding(
            FindingKey::BackupSize,
            Severity::Info,
            figures,
            "nothing to do",
        ));
    }
    archive
}

/// The files stage 2 copies into its tmpfs to run from it: ferry itself,
/// the commands it calls, and the shared libraries of both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stage2Files {
    /// Every file, once (a library shared by two is counted once).
    pub files: Vec<PathBuf>,
    pub bytes: u64,
    /// Why the shared libraries could not all be listed (no `ldd`), if so.
    pub note: Option<String>,
}

/// What stage 2 copies into its tmpfs: the running ferry (`/proc/self/exe`),
/// the commands of [`TOOLS`] and the strategy's found on `path_var` under
/// `system`, and their shared libraries.
///
/// The libraries come from `ldd`, not from reading the ELF's DT_NEEDED:
/// ldd asks the dynamic loader itself, so the search path, ld.so.cache,
/// hwcaps subdirectories and libraries needed by libraries are resolved
/// as they will be when the binaries run. It is only run on ferry and on
/// the commands of the running system (`system` is `/`).
pub fn stage2_files(system: &Path, path_var: &str, config: &Config) -> Stage2Files {
    let mut binaries = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        binaries.push(exe);
    }
    // The first `own` binaries are ferry itself.
    let own = binaries.len();
    let dirs = path_dirs(system, path_var);
    let strategy_tools: &[&str] = match config.strategy {
        Strategy::Ram => RAM_TOOLS,
        Strategy::Flasher => FLASHER_TOOLS,
    };
    for tool in TOOLS.iter().chain(strategy_tools) {
        if let Some(path) = dirs.iter().map(|d| d.join(tool)).find(|p| is_executable(p)) {
            binaries.push(path);
        }
    }
    let mut out = Stage2Files::default();
    let mut seen = std::collections::BTreeSet::new();
    let mut add = |path: PathBuf, out: &mut Stage2Files| {
        let real = std::fs::canonicalize(&path).unwrap_or(path);
        if seen.insert(real.clone()) {
            if let Ok(meta) = std::fs::metadata(&real) {
                out.bytes = out.bytes.saturating_add(meta.len());
                out.files.push(real);
            }
        }
    };
    for (i, binary) in binaries.into_iter().enumerate() {
        // ldd may run code of the binary's choosing (its interpreter): only
        // ferry itself and the commands of the running system are asked;
        // under another tree (`--root`) the commands count alone.
        if i >= own && system != Path::new("/") {
            add(binary, &mut out);
            continue;
        }
        match shared_libraries(&binary) {
            Ok(libraries) => {
                for library in libraries {
                    add(library, &mut out);
                }
            }
            Err(why) => out.note = Some(why),
        }
        add(binary, &mut out);
    }
    out
}

/// The shared libraries `ldd` lists for `binary` (none for a static one or
/// a script).
fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>, String> {
    let output = std::process::Command::new("ldd")
        .arg(binary)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("ldd cannot be run ({e}): shared libraries not counted"))?;
    // ldd exits 1 with "not a dynamic executable" for static binaries and
    // scripts: nothing to add.
    let text = String::from_utf8_lossy(&output.stdout);
    Ok(text
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            // "libc.so.6 => /lib/…/libc.so.6 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)";
            // the vDSO has no file.
            let path = match line.split_once("=>") {
                Some((_, right)) => right.trim(),
                None => line,
            };
            let path = path.split(" (").next()?.trim();
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect())
}

/// The disk (its kernel name, `vdb`) holding the filesystem the file at
/// `path` is on, from `sys/dev/block/MAJ:MIN` of the system at `system`.
pub(crate) fn file_disk(system: &Path, path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(path).ok()?.dev();
    let link = std::fs::read_link(system.join(format!(
        "sys/dev/block/{}:{}",
        libc::major(dev),
        libc::minor(dev)
    )))
    .ok()?;
    // …/block/vdb/vdb1 for a partition, …/block/vdb for a whole disk.
    let parts: Vec<_> = link
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    let at = parts.iter().rposition(|c| c == "block")?;
    parts.get(at + 1).cloned()
}

#[allow(clippy::too_many_arguments)]
fn ram(
    system: &Path,
    path_var: &str,
    config: &Config,
    image: &ImageSummary,
    target_disk: Option<&str>,
    backup_bytes: u64,
    findings: &mut Vec<Finding>,
) {
    if config.strategy != Strategy::Ram {
        return;
    }
    let Some(available) = mem_available(system) else {
        findings.push(finding(
            FindingKey::Ram,
            Severity::Blocker,
            "the memory available cannot be read (MemAvailable in proc/meminfo)",
            "run ferry on the machine itself, with /proc mounted",
        ));
        return;
    };
    let files = stage2_files(system, path_var, config);
    let stage = files
        .bytes
        .saturating_add(backup_bytes)
        .saturating_add(RAM_MARGIN_BYTES);
    let with_image = stage.saturating_add(image.file_size);
    let mib = |b: u64| b.div_ceil(1 << 20);
    let parts = format!(
        "ferry, its tools and their {} files {} MiB, the backup {} MiB, working room {} MiB{}",
        files.files.len(),
        mib(files.bytes),
        mib(backup_bytes),
        mib(RAM_MARGIN_BYTES),
        files
            .note
            .as_deref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default(),
    );
    if available < stage {
        findings.push(finding(
            FindingKey::Ram,
            Severity::Blocker,
            format!(
                "{} MiB of memory available, the RAM stage alone needs {} MiB ({parts})",
                available >> 20,
                mib(stage)
            ),
            "stop services to free memory, back up less, or use strategy = \"flasher\"",
        ));
    } else if available < with_image
        && !matches!(
            (file_disk(system, &image.path), target_disk),
            (Some(file), Some(target)) if file != target
        )
    {
        findings.push(finding(
            FindingKey::Ram,
            Severity::Blocker,
            format!(
                "{} MiB of memory available, the image ({} MiB) and the RAM stage need {} MiB ({parts}), \
                 and the image lies on the disk it replaces (or on a disk that cannot be told apart from it): \
                 it can be neither held in RAM nor streamed",
                available >> 20,
                mib(image.file_size),
                mib(with_image)
            ),
            "put the image on another disk (a USB stick, a second disk) to stream it from there, or free memory",
        ));
    } else if available < with_image {
        findings.push(finding(
            FindingKey::Ram,
            Severity::Warning,
            format!(
                "{} MiB of memory available, the image ({} MiB) and the RAM stage need {} MiB ({parts}): \
                 the image will be streamed from its own disk (not the one it replaces) instead of held in RAM",
                available >> 20,
                mib(image.file_size),
                mib(with_image)
            ),
            "nothing to do; free memory to hold the image in RAM",
        ));
    } else {
        findings.push(finding(
            FindingKey::Ram,
            Severity::Info,
            format!(
                "{} MiB of memory available, {} MiB needed to hold the image ({} MiB) in RAM ({parts})",
                available >> 20,
                mib(with_image),
                mib(image.file_size)
            ),
            "nothing to do",
        ));
    }
}

/// Strategy flasher gives up the spare partition (the swap): an fstab line
/// naming it without `nofail` makes every boot of the old OS after a
/// fallback wait for a device that is gone (systemd: 90 s).
fn spare_in_fstab(
    system: &Path,
    config: &Config,
    target: Option<&TargetDisk>,
    findings: &mut Vec<Finding>,
) {
    let (Strategy::Flasher, Some(spare), Some(target)) =
        (config.strategy, config.target.spare_partition, target)
    else {
        return;
    };
    let spare_device = crate::steps::partition_device(Path::new(&target.device), spare);
    let Some(spare_name) = spare_device.file_name() else {
        return;
    };
    let Ok(fstab) = std::fs::read_to_string(system.join("etc/fstab")) else {
        return;
    };
    for (n, line) in fstab.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 2 || fields[0].starts_with('#') {
            continue;
        }
        let by_link = |dir: &str, key: &str| {
            std::fs::read_link(system.join("dev/disk").join(dir).join(key))
                .ok()
                .and_then(|l| l.file_name().map(|f| f.to_os_string()))
        };
        let names = if let Some(uuid) = fields[0].strip_prefix("UUID=") {
            by_link("by-uuid", uuid)
        } else if let Some(partuuid) = fields[0].strip_prefix("PARTUUID=") {
            by_link("by-partuuid", partuuid)
        } else {
            Path::new(fields[0]).file_name().map(|f| f.to_os_string())
        };
        let nofail = fields
            .get(3)
            .is_some_and(|o| o.split(',').any(|o| o == "nofail"));
        if names.as_deref() == Some(spare_name) && !nofail {
            findings.push(finding(
                FindingKey::SpareInFstab,
                Severity::Warning,
                format!(
                    "etc/fstab:{} names {} ({}), the spare partition the new OS takes: after a fallback the old OS waits for it at every boot",
                    n + 1,
                    spare_device.display(),
                    fields[0]
                ),
                "add `nofail,x-systemd.device-timeout=3s` to its options, or remove the line before the takeover",
            ));
        }
    }
}

/// Stage 2 writes into partitions of the new OS the config must name: its
/// record, events and backup into the data partition, the network
/// configuration and identity into the root partition.
fn carry_target(config: &Config, findings: &mut Vec<Finding>) {
    let identity = &config.identity;
    let into_root = config.network.carry
        || identity.hostname
        || identity.ssh_host_keys
        || identity.authorized_keys
        || identity.machine_id;
    if config.target.data_partition.is_none() {
        findings.push(finding(
            FindingKey::CarryTarget,
            Severity::Blocker,
            "[target] data_partition is not set: stage 2 keeps the takeover's record, its events and the backup there",
            "name the image's data partition in [target] data_partition (`ferry image inspect IMG` lists them)",
        ));
    }
    if config.strategy == Strategy::Flasher {
        for (field, value, why) in [
            (
                "spare_partition",
                config.target.spare_partition,
                "the disk's partition (the swap) whose space takes the new OS beside the old one",
            ),
            (
                "boot_partition",
                config.target.boot_partition,
                "the image's partition with the new OS's grub.cfg, booted once",
            ),
        ] {
            if value.is_none() {
                findings.push(finding(
                    FindingKey::CarryTarget,
                    Severity::Blocker,
                    format!("strategy flasher needs [target] {field}: {why}"),
                    format!("set [target] {field}"),
                ));
            }
        }
    }
    if into_root && config.target.root_partition.is_none() {
        findings.push(finding(
            FindingKey::CarryTarget,
            Severity::Blocker,
            "[target] root_partition is not set: the network configuration and identity are written there",
            "name the image's root partition in [target] root_partition, or turn [network] carry and the [identity] fields off",
        ));
    }
}

/// The absolute directories of `path_var`, under `system`.
fn path_dirs(system: &Path, path_var: &str) -> Vec<PathBuf> {
    path_var
        .split(':')
        .filter(|d| d.starts_with('/'))
        .map(|d| system.join(d.trim_start_matches('/')))
        .collect()
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn tools(
    system: &Path,
    path_var: &str,
    config: &Config,
    raspberry_pi: bool,
    findings: &mut Vec<Finding>,
) {
    let dirs = path_dirs(system, path_var);
    let strategy_tools: &[&str] = match config.strategy {
        Strategy::Ram => RAM_TOOLS,
        // A Raspberry Pi has no grub: the raspberry-pi blocker says why.
        Strategy::Flasher if raspberry_pi => &[],
        Strategy::Flasher => FLASHER_TOOLS,
    };
    for tool in TOOLS.iter().chain(strategy_tools) {
        if !dirs.iter().any(|dir| is_executable(&dir.join(tool))) {
            findings.push(finding(
                FindingKey::MissingCommand(tool.to_string()),
                Severity::Blocker,
                format!("`{tool}` is not on PATH"),
                format!(
                    "install the package that provides {tool} (libc-bin, util-linux, grub2-common)"
                ),
            ));
        }
    }
}

fn watchdog(system: &Path, config: &Config, findings: &mut Vec<Finding>) {
    let device = system.join("dev/watchdog").exists()
        || std::fs::read_dir(system.join("sys/class/watchdog"))
            .is_ok_and(|mut entries| entries.next().is_some());
    if device {
        findings.push(finding(
            FindingKey::Watchdog,
            Severity::Info,
            "a hardware watchdog is present: a hung stage 2 resets the machine",
            "nothing to do",
        ));
    } else if config.watchdog.require {
        findings.push(finding(
            FindingKey::Watchdog,
            Severity::Blocker,
            "no hardware watchdog (dev/watchdog, sys/class/watchdog) and the config requires one",
            "load the watchdog driver of this machine (e.g. iTCO_wdt, sp5100_tco, bcm2835_wdt), or set [watchdog] require = false",
        ));
    } else {
        findings.push(finding(
            FindingKey::Watchdog,
            Severity::Warning,
            "no hardware watchdog: a hung stage 2 waits for someone to reset the machine",
            "load the watchdog driver of this machine if it has one (e.g. iTCO_wdt, sp5100_tco, bcm2835_wdt)",
        ));
    }
}

fn checksum(config: &Config, image: &ImageSummary, findings: &mut Vec<Finding>) {
    match &config.image.sha256 {
        Some(expected) if expected.as_str() != image.sha256 => findings.push(finding(
            FindingKey::ImageChecksum,
            Severity::Blocker,
            format!(
                "the image's sha256 is {}, the config says {}",
                image.sha256,
                expected.as_str()
            ),
            "download the image again, or check the config's image.sha256",
        )),
        Some(_) => {}
        None => findings.push(finding(
            FindingKey::ImageChecksum,
            Severity::Warning,
            "the config gives no sha256 for the image: the plan records the one of this file",
            "set image.sha256 to the sha256 its publisher gives",
        )),
    }
}

/// `proc/self/mounts`'s octal escapes (`\040` for a space) undone.
pub(crate) fn unescape_mount(field: &str) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u8::from_str_radix(d, 8).ok());
        match (bytes[i], octal) {
            (b'\\', Some(b)) => {
                out.push(b);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

/// Every mount point, and which of them stage 2 unmounts: `/` and the
/// other filesystems on the target disk (`/boot`, `/boot/efi`, …).
fn mount_points(
    system: &Path,
    target_device: Option<&str>,
) -> (Vec<PathBuf>, std::collections::BTreeSet<PathBuf>) {
    let mounts = std::fs::read_to_string(system.join("proc/self/mounts")).unwrap_or_default();
    let disk = target_device.and_then(|d| d.strip_prefix("/dev/"));
    let mut all = Vec::new();
    let mut old = std::collections::BTreeSet::new();
    for line in mounts.lines() {
        let mut fields = line.split_whitespace();
        let (Some(source), Some(point)) = (fields.next(), fields.next()) else {
            continue;
        };
        let point = unescape_mount(point);
        let on_disk = disk.is_some_and(|disk| {
            block_name(system, source).is_some_and(|name| {
                name == disk
                    || system
                        .join("sys/class/block")
                        .join(disk)
                        .join(&name)
                        .exists()
            })
        });
        if point == Path::new("/") || on_disk {
            old.insert(point.clone());
        }
        all.push(point);
    }
    (all, old)
}

/// Whether `path` (as a process sees it) lies on a filesystem stage 2 unmounts.
fn on_old_root(path: &Path, all: &[PathBuf], old: &std::collections::BTreeSet<PathBuf>) -> bool {
    let owner = all
        .iter()
        .filter(|point| path.starts_with(point))
        .max_by_key(|point| point.components().count());
    owner.is_some_and(|point| old.contains(point))
}

/// A link of `proc/PID/` read, its ` (deleted)` dropped; only paths.
fn proc_link(path: &Path) -> std::io::Result<Option<PathBuf>> {
    let target = std::fs::read_link(path)?;
    let text = target.to_string_lossy();
    let text = text.strip_suffix(" (deleted)").unwrap_or(&text);
    Ok(text.starts_with('/').then(|| PathBuf::from(text)))
}

/// How a process holds the old root, if it does: its working directory,
/// its executable or mapped code, or a file it has open for writing.
fn holds(
    dir: &Path,
    all: &[PathBuf],
    old: &std::collections::BTreeSet<PathBuf>,
) -> std::io::Result<bool> {
    let on_old = |p: &Option<PathBuf>| p.as_deref().is_some_and(|p| on_old_root(p, all, old));
    if on_old(&proc_link(&dir.join("exe"))?) || on_old(&proc_link(&dir.join("cwd"))?) {
        return Ok(true);
    }
    let maps = std::fs::read_to_string(dir.join("maps"))?;
    let mapped = maps.lines().any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let executable = fields.get(1).is_some_and(|perms| perms.contains('x'));
        let path = fields.get(5..).map(|rest| rest.join(" "));
        executable
            && path.is_some_and(|p| {
                let p = p.strip_suffix(" (deleted)").unwrap_or(&p);
                p.starts_with('/') && on_old_root(Path::new(p), all, old)
            })
    });
    if mapped {
        return Ok(true);
    }
    for fd in std::fs::read_dir(dir.join("fd"))? {
        let fd = fd?;
        let Ok(Some(target)) = proc_link(&fd.path()) else {
            continue;
        };
        if !on_old_root(&target, all, old) {
            continue;
        }
        let info =
            std::fs::read_to_string(dir.join("fdinfo").join(fd.file_name())).unwrap_or_default();
        let flags = info.lines().find_map(|l| {
            let octal = l.strip_prefix("flags:")?.trim();
            u32::from_str_radix(octal, 8).ok()
        });
        // O_WRONLY or O_RDWR: a file open for reading does not keep a
        // read-only remount from succeeding, one open for writing does.
        if flags.is_some_and(|f| f & 0o3 != 0) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The name a process is shown by: its systemd service, else its command.
fn process_name(dir: &Path) -> String {
    let service = std::fs::read_to_string(dir.join("cgroup"))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.rsplit(':').next())
        .flat_map(|path| path.split('/'))
        .rfind(|part| part.ends_with(".service") && !part.starts_with("user@"))
        .map(str::to_string);
    service.unwrap_or_else(|| {
        std::fs::read_to_string(dir.join("comm"))
            .map(|c| c.trim().to_string())
            .unwrap_or_else(|_| "?".into())
    })
}

/// Processes that hold the old root, read from `system/proc/*/`: an info
/// finding naming them (stage 2 stops them before unmounting). PID 1 is
/// left out (stage 2 re-executes it rather than stopping it), and so is
/// ferry itself, and kernel threads (no executable).
fn old_root_holders(system: &Path, target_device: Option<&str>, findings: &mut Vec<Finding>) {
    let Ok(entries) = std::fs::read_dir(system.join("proc")) else {
        findings.push(finding(
            FindingKey::OldRootHolders,
            Severity::Warning,
            "the processes cannot be read (no proc)",
            "run ferry on the machine itself, with /proc mounted",
        ));
        return;
    };
    let (all, old) = mount_points(system, target_device);
    let own = (system == Path::new("/")).then(std::process::id);
    let mut count = 0usize;
    let mut unreadable = 0usize;
    let mut names = std::collections::BTreeSet::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == 1 || Some(pid) == own {
            continue;
        }
        let dir = entry.path();
        match holds(&dir, &all, &old) {
            Ok(true) => {
                count += 1;
                names.insert(process_name(&dir));
            }
            Ok(false) => {}
            // A kernel thread has no executable; a process may end meanwhile.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(_) => unreadable += 1,
        }
    }
    let unread = if unreadable > 0 {
        format!("; {unreadable} processes could not be read (run as root to see them)")
    } else {
        String::new()
    };
    if count == 0 {
        findings.push(finding(
            FindingKey::OldRootHolders,
            Severity::Info,
            format!("no process holds the old root{unread}"),
            "nothing to do",
        ));
        return;
    }
    const SHOWN: usize = 15;
    let mut listed: Vec<String> = names.iter().take(SHOWN).cloned().collect();
    if names.len() > SHOWN {
        listed.push(format!("and {} more", names.len() - SHOWN));
    }
    findings.push(finding(
        FindingKey::OldRootHolders,
        Severity::Info,
        format!(
            "{count} processes hold the old root (working directory, executable or mapped code, \
             files open for writing): {}{unread}",
            listed.join(", ")
        ),
        "nothing to do: stage 2 stops them before unmounting the old root; stop what must shut down \
         cleanly (databases) yourself first",
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_table_escapes_are_undone_and_odd_ones_kept() {
        assert_eq!(unescape_mount("/mnt/a\\040b"), Path::new("/mnt/a b"));
        assert_eq!(unescape_mount("/plain"), Path::new("/plain"));
        assert_eq!(unescape_mount("/odd\\"), Path::new("/odd\\"));
        assert_eq!(unescape_mount("/x\\04"), Path::new("/x\\04"));
        assert_eq!(unescape_mount("/y\\999"), Path::new("/y\\999"));
    }
}
