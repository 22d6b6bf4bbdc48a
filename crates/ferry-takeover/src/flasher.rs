//! Strategy `flasher` (the seed's): the new OS laid into spare space of the
//! disk (the swap partition) beside the old OS, written partition by
//! partition, the carry-over written into it, and booted once through a
//! grub one-shot entry (`grub-reboot`). The new OS confirms with `ferry
//! takeover confirm`, which makes its entry the default; if it does not —
//! its kernel cannot be loaded, it panics, it hangs until a reset — the next
//! boot is the old OS's again, untouched but for the spare partition.
//!
//! Not the RAM strategy (run.rs, stage2.rs): the old OS keeps running here
//! until the reboot.

use std::fs;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ferry_image::{
    compute_layout, flash_partitions, inspect_path, placed_numbers, sfdisk_dump, sfdisk_write,
    FlashOptions, Region,
};
use ferry_journal::{Journal, Step};
use serde::{Deserialize, Serialize};

use crate::carry::{self, CollectOptions};
use crate::deadline;
use crate::run::{checked_plan, old_root, Record, RunError, RunRequest};
use crate::steps::{partition_device, OldRoot, DATA_RECORD, OLD_ROOT_RECORD};
use crate::sys;

/// The menu entry's id in grub, as `grub-reboot` names it.
pub const ENTRY_ID: &str = "ferry-takeover";
/// The grubenv variable `confirm` sets, which makes the entry the default.
pub const COMMITTED_VAR: &str = "ferry_takeover";
/// The grub variable holding the deadline's kernel argument (empty once
/// committed).
const DEADLINE_VAR: &str = "ferry_takeover_deadline";
/// Where Debian's generated grub.cfg sources extra entries from (41_custom).
const CUSTOM_CFG: &str = "boot/grub/custom.cfg";
const GRUBENV: &str = "boot/grub/grubenv";

/// One step of a flasher takeover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FlasherStep {
    Preflight,
    Collect,
    /// The image's partitions laid into the spare partition's space.
    Layout,
    /// The image's partitions written there and read back.
    Flash,
    /// Network, identity and backup written into the new OS.
    Carry,
    /// The grub entry written and chosen for the next boot only.
    BootOnce,
    /// The new OS said it runs; its entry became the default.
    Confirm,
}

impl Step for FlasherStep {
    const ALL: &'static [Self] = &[
        FlasherStep::Preflight,
        FlasherStep::Collect,
        FlasherStep::Layout,
        FlasherStep::Flash,
        FlasherStep::Carry,
        FlasherStep::BootOnce,
        FlasherStep::Confirm,
    ];

    fn as_str(self) -> &'static str {
        match self {
            FlasherStep::Preflight => "preflight",
            FlasherStep::Collect => "collect",
            FlasherStep::Layout => "layout",
            FlasherStep::Flash => "flash",
            FlasherStep::Carry => "carry",
            FlasherStep::BootOnce => "boot-once",
            FlasherStep::Confirm => "confirm",
        }
    }

    fn changes_system(self) -> bool {
        !matches!(self, FlasherStep::Preflight | FlasherStep::Collect)
    }

    fn changes_packages(self) -> bool {
        false
    }
}

pub type FlasherJournal = Journal<FlasherStep>;

/// What the new OS needs to confirm, kept in its data partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlasherRecord {
    pub format: u32,
    pub id: String,
    /// The old OS's root filesystem, which holds grub's environment.
    pub old_root: OldRoot,
}

pub const FLASHER_RECORD_FORMAT: u32 = 1;
const FLASHER_RECORD: &str = "flasher.json";

fn mounted_devices() -> String {
    fs::read_to_string("/proc/self/mounts").unwrap_or_default()
}

/// Mounts `device` at a fresh directory under `under`, trying the usual
/// filesystems; returns the mount point.
fn mount_at(
    device: &Path,
    under: &Path,
    name: &str,
    flags: libc::c_ulong,
) -> Result<PathBuf, String> {
    let point = under.join(name);
    fs::create_dir_all(&point).map_err(|e| format!("{}: {e}", point.display()))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    // udev makes the node of a new partition shortly after partx.
    while !device.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut errors = Vec::new();
    for fstype in ["ext4", "vfat", "btrfs", "xfs", "ext2"] {
        match sys::mount(&device.display().to_string(), &point, fstype, flags, "") {
            Ok(()) => return Ok(point),
            Err(e) => errors.push(format!("{fstype}: {e}")),
        }
    }
    Err(format!(
        "cannot mount {}: {}",
        device.display(),
        errors.join(", ")
    ))
}

/// Runs a flasher takeover's stage 1 up to the reboot into the new OS.
pub fn run(request: &RunRequest, say: &mut dyn FnMut(&str)) -> Result<String, RunError> {
    let (plan, target) = checked_plan(request, say)?;
    let config = plan.config.target.clone();
    let deadline = plan.config.confirm.deadline_seconds;
    let disk = PathBuf::from(&target.device);
    let missing = |what: &str| RunError::Step {
        step: "preflight",
        changed: false,
        message: format!("strategy flasher needs [target] {what}"),
    };
    let spare = config
        .spare_partition
        .ok_or_else(|| missing("spare_partition"))?;
    let boot = config
        .boot_partition
        .ok_or_else(|| missing("boot_partition"))?;
    let root_n = config
        .root_partition
        .ok_or_else(|| missing("root_partition"))?;
    let data_n = config
        .data_partition
        .ok_or_else(|| missing("data_partition"))?;
    let old = old_root().ok_or(RunError::Step {
        step: "preflight",
        changed: false,
        message: "the old root's device cannot be told from /proc/self/mounts".into(),
    })?;
    if !Path::new("/")
        .join(CUSTOM_CFG)
        .with_file_name("grub.cfg")
        .is_file()
    {
        return Err(RunError::Step {
            step: "preflight",
            changed: false,
            message: "no /boot/grub/grub.cfg: strategy flasher boots the new OS once through grub"
                .into(),
        });
    }
    let spare_device = partition_device(&disk, spare);
    let spare_name = spare_device.display().to_string();
    if mounted_devices()
        .lines()
        .any(|l| l.split_whitespace().next() == Some(spare_name.as_str()))
    {
        return Err(RunError::Step {
            step: "preflight",
            changed: false,
            message: format!(
                "{spare_name} is mounted; the spare partition must be unused (a swap is fine)"
            ),
        });
    }
    let (mut record, id, _lock) = Record::<FlasherStep>::start(request)?;
    record.step(FlasherStep::Preflight, |r| {
        ferry_journal::save_document(&r.dir.join("plan.json"), &plan).map_err(|e| e.to_string())
    })?;
    say("collecting network, identity and backup");
    let carried = record.step(FlasherStep::Collect, |r| {
        let staging = r.dir.join("carry");
        let _ = fs::remove_dir_all(&staging);
        fs::create_dir_all(&staging).map_err(|e| format!("{}: {e}", staging.display()))?;
        carry::collect(
            Path::new("/"),
            &plan.config,
            CollectOptions {
                staging: &staging,
                image: Some(&request.image),
                users: &[],
            },
        )
        .map_err(|e| e.to_string())
    })?;
    say(&format!("laying the image's partitions into {spare_name}"));
    let placed = record.step(FlasherStep::Layout, |_| {
        let swaps = fs::read_to_string("/proc/swaps").unwrap_or_default();
        if swaps
            .lines()
            .any(|l| l.split_whitespace().next() == Some(spare_name.as_str()))
        {
            sys::swapoff(&spare_device).map_err(|e| format!("swapoff {spare_name}: {e}"))?;
        }
        let inspection = inspect_path(&request.image).map_err(|e| e.to_string())?;
        let before = sfdisk_dump(&disk).map_err(|e| e.to_string())?;
        let layout = compute_layout(&inspection, &before, Region::Partition(spare), config.grow)
            .map_err(|e| format!("{}: {e}", disk.display()))?;
        let after = sfdisk_write(&disk, &layout, &before).map_err(|e| e.to_string())?;
        let placed = placed_numbers(&layout, &after);
        if placed.len() != layout.placements.len() {
            return Err("the new partitions cannot all be found in the table read back".into());
        }
        tell_kernel(&disk, &placed)?;
        Ok(placed)
    })?;
    let device_of = |image_partition: u32| -> Result<PathBuf, String> {
        placed
            .iter()
            .find(|(k, _)| *k == image_partition)
            .map(|(_, n)| partition_device(&disk, *n))
            .ok_or_else(|| format!("the image's partition {image_partition} was not laid out"))
    };
    say("writing the new OS partition by partition");
    record.step(FlasherStep::Flash, |_| {
        let routes = placed
            .iter()
            .map(|(k, n)| (*k, partition_device(&disk, *n)))
            .collect::<Vec<_>>();
        for (_, device) in &routes {
            let deadline = Instant::now() + Duration::from_secs(10);
            while !is_block_device(device) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(200));
            }
            // Never a file in /dev in place of a partition the kernel does
            // not know: the flash would "succeed" into RAM.
            if !is_block_device(device) {
                return Err(format!(
                    "{} is not a block device: the kernel does not know the new partition",
                    device.display()
                ));
            }
        }
        let options = FlashOptions {
            read_back: true,
            ..FlashOptions::default()
        };
        flash_partitions(&request.image, &routes, &options, &mut ())
            .map(|_| ())
            .map_err(|e| e.to_string())
    })?;
    let mounts = PathBuf::from("/run/ferry-takeover-flasher");
    say("carrying network, identity and backup over");
    record.step(FlasherStep::Carry, |r| {
        let root = mount_at(&device_of(root_n)?, &mounts, "root", 0)?;
        let data = mount_at(&device_of(data_n)?, &mounts, "data", 0);
        let data = match data {
            Ok(d) => d,
            Err(e) => {
                let _ = sys::umount(&root, 0);
                return Err(e);
            }
        };
        let result = carry::apply(&root, &data, &carried).map_err(|e| e.to_string());
        if let Ok(report) = &result {
            for file in report.files() {
                let line = format!("{} sha256 {}", file.path.display(), file.sha256);
                r.emit(FlasherStep::Carry, ferry_journal::EventState::Cmdlog, &line);
            }
        }
        // The report-in deadline, with the carry-over: the new OS is not
        // booted without it (unless the config says deadline 0).
        let result = result.and_then(|_| {
            if deadline == 0 {
                return Ok(());
            }
            let written = deadline::arm(&root, &id, &old).map_err(|e| e.to_string())?;
            for path in written {
                let line = format!("{} (the report-in deadline, {deadline} s)", path.display());
                r.emit(FlasherStep::Carry, ferry_journal::EventState::Cmdlog, &line);
            }
            Ok(())
        });
        let _ = sys::umount(&root, 0);
        let _ = sys::umount(&data, 0);
        result.map(|_| ())
    })?;
    say("adding a grub entry for the new OS and choosing it for the next boot only");
    record.step(FlasherStep::BootOnce, |_| {
        let boot_device = device_of(boot)?;
        let boot_dir = mount_at(&boot_device, &mounts, "boot", libc::MS_RDONLY)?;
        let entry = entry_of(&boot_dir);
        let _ = sys::umount(&boot_dir, 0);
        let (linux, initrd) = entry?;
        let uuid = filesystem_uuid(&boot_device)?;
        let text = custom_cfg(&id, &uuid, &linux, &initrd, deadline);
        ferry_journal::write_atomic(&Path::new("/").join(CUSTOM_CFG), text.as_bytes())
            .map_err(|e| format!("/{CUSTOM_CFG}: {e}"))?;
        grub_reboot()
    })?;
    // Confirm runs on the new OS; until then the journal says it waits.
    record.journal.begin(FlasherStep::Confirm)?;
    record.save()?;
    let persisted = device_of(data_n)
        .and_then(|device| mount_at(&device, &mounts, "data", 0))
        .and_then(|data| {
            let persisted = persist(&record, &plan, &old, &data.join(DATA_RECORD));
            let _ = sys::umount(&data, 0);
            persisted
        });
    persisted.map_err(|message| RunError::Step {
        step: "boot-once",
        message,
        changed: true,
    })?;
    say("rebooting into the new OS once; it must run `ferry takeover confirm`, or the next boot is the old OS's");
    // Asked, and checked: the grub entry is armed either way, but a reboot
    // that was not started must not be reported as one.
    let rebooting = Command::new("systemctl").arg("reboot").status();
    match rebooting {
        Ok(status) if status.success() => {}
        other => {
            let why = match other {
                Ok(status) => format!("systemctl reboot: {status}"),
                Err(e) => format!("cannot run systemctl reboot: {e}"),
            };
            return Err(RunError::Step {
                step: "boot-once",
                message: format!(
                    "{why}; the new OS is chosen for the next boot only: reboot the machine to start it"
                ),
                changed: true,
            });
        }
    }
    Ok(id)
}

fn is_block_device(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    fs::metadata(path).is_ok_and(|m| m.file_type().is_block_device())
}

/// Tells the kernel of the placed partitions, up to the highest placed
/// number (see `ferry_image::tell_kernel`).
fn tell_kernel(disk: &Path, placed: &[(u32, u32)]) -> Result<(), String> {
    if !is_block_device(disk) {
        return Ok(());
    }
    let last = placed.iter().map(|(_, n)| *n).max().unwrap_or(1);
    ferry_image::tell_kernel(disk, last).map_err(|e| e.to_string())
}

/// The new OS's record, for `confirm` and `status` there.
fn persist(
    record: &Record<FlasherStep>,
    plan: &crate::plan::TakeoverPlan,
    old: &OldRoot,
    dir: &Path,
) -> Result<(), String> {
    fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    record
        .journal
        .save(&dir.join("journal.json"))
        .map_err(|e| e.to_string())?;
    ferry_journal::save_document(&dir.join("plan.json"), plan).map_err(|e| e.to_string())?;
    ferry_journal::save_document(
        &dir.join(FLASHER_RECORD),
        &FlasherRecord {
            format: FLASHER_RECORD_FORMAT,
            id: record.journal.id.clone(),
            old_root: old.clone(),
        },
    )
    .map_err(|e| e.to_string())?;
    let events = fs::read_to_string(record.events.path()).unwrap_or_default();
    let ours: String = events
        .lines()
        .filter(|l| l.contains(&record.journal.id))
        .map(|l| format!("{l}\n"))
        .collect();
    ferry_journal::write_atomic(&dir.join("events.jsonl"), ours.as_bytes())
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    sys::sync();
    Ok(())
}

/// The `linux` and `initrd` lines of the first menu entry of the new OS's
/// grub.cfg (in its boot partition, mounted at `boot`).
fn entry_of(boot: &Path) -> Result<(String, String), String> {
    let cfg = ["grub/grub.cfg", "boot/grub/grub.cfg"]
        .iter()
        .map(|p| boot.join(p))
        .find(|p| p.is_file())
        .ok_or("the new OS's boot partition has no grub/grub.cfg")?;
    let text = fs::read_to_string(&cfg).map_err(|e| format!("{}: {e}", cfg.display()))?;
    parse_entry(&text).ok_or_else(|| {
        format!(
            "{}: no menu entry with linux and initrd lines",
            cfg.display()
        )
    })
}

/// The first menu entry's `linux …` and `initrd …` lines, trimmed.
pub fn parse_entry(grub_cfg: &str) -> Option<(String, String)> {
    let mut in_entry = false;
    let (mut linux, mut initrd) = (None, None);
    for line in grub_cfg.lines().map(str::trim) {
        if line.starts_with("menuentry ") {
            if in_entry {
                break;
            }
            in_entry = true;
        } else if in_entry && line == "}" {
            break;
        } else if in_entry {
            if line.starts_with("linux ") || line.starts_with("linux16 ") {
                linux.get_or_insert_with(|| line.to_string());
            } else if line.starts_with("initrd ") || line.starts_with("initrd16 ") {
                initrd.get_or_insert_with(|| line.to_string());
            }
        }
    }
    Some((linux?, initrd?))
}

/// The UUID of the filesystem on `device`, read from its superblock.
fn filesystem_uuid(device: &Path) -> Result<String, String> {
    let mut head = vec![0u8; ferry_image::PROBE_BYTES];
    let mut file = fs::File::open(device).map_err(|e| format!("{}: {e}", device.display()))?;
    file.read_exact(&mut head)
        .map_err(|e| format!("{}: {e}", device.display()))?;
    ferry_image::probe(&head)
        .and_then(|f| f.uuid)
        .ok_or_else(|| format!("{}: no filesystem UUID found", device.display()))
}

/// The grub snippet Debian's grub.cfg sources (41_custom): the new OS's
/// entry, a fallback to the first entry when it cannot be loaded, and the
/// entry as the default once the new OS confirmed. Until then the entry
/// passes the report-in deadline (`deadline_seconds`, 0: none) on the
/// kernel command line (see `deadline`).
pub fn custom_cfg(
    id: &str,
    uuid: &str,
    linux: &str,
    initrd: &str,
    deadline_seconds: u32,
) -> String {
    // A new OS that panics reboots, and the one-shot is spent: old OS.
    let linux = if linux.split_whitespace().any(|a| a.starts_with("panic=")) {
        linux.to_string()
    } else {
        format!("{linux} panic=10")
    };
    if deadline_seconds == 0 {
        return format!(
            "# Written by ferry takeover run (strategy flasher), takeover {id}.\n\
             # The new OS once through grub-reboot; the default once it confirmed.\n\
             set fallback=0\n\
             menuentry 'ferry takeover: new OS' --id {ENTRY_ID} {{\n\
             \tsearch --no-floppy --fs-uuid --set=root {uuid}\n\
             \t{linux}\n\
             \t{initrd}\n\
             }}\n\
             if [ \"${{{COMMITTED_VAR}}}\" = committed ]; then\n\
             \tset default={ENTRY_ID}\n\
             fi\n"
        );
    }
    // A menu entry runs in its own context: the variable is exported.
    let arg = deadline::KERNEL_ARG;
    format!(
        "# Written by ferry takeover run (strategy flasher), takeover {id}.\n\
         # The new OS once through grub-reboot, with its report-in deadline;\n\
         # the default, without one, once it confirmed.\n\
         set fallback=0\n\
         if [ \"${{{COMMITTED_VAR}}}\" = committed ]; then\n\
         \tset default={ENTRY_ID}\n\
         \tset {DEADLINE_VAR}=\n\
         else\n\
         \tset {DEADLINE_VAR}=\"{arg}={deadline_seconds}\"\n\
         fi\n\
         export {DEADLINE_VAR}\n\
         menuentry 'ferry takeover: new OS' --id {ENTRY_ID} {{\n\
         \tsearch --no-floppy --fs-uuid --set=root {uuid}\n\
         \t{linux} ${DEADLINE_VAR}\n\
         \t{initrd}\n\
         }}\n"
    )
}

fn grub_reboot() -> Result<(), String> {
    let out = Command::new("grub-reboot")
        .arg(ENTRY_ID)
        .output()
        .map_err(|e| format!("cannot run grub-reboot: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "grub-reboot {ENTRY_ID}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    // What grub reads at boot, checked rather than assumed.
    let env = fs::read_to_string(Path::new("/").join(GRUBENV)).unwrap_or_default();
    if env.lines().any(|l| l == format!("next_entry={ENTRY_ID}")) {
        Ok(())
    } else {
        Err(format!(
            "/{GRUBENV} does not name {ENTRY_ID} as the next entry after grub-reboot"
        ))
    }
}

/// Sets `key=value` in a grub environment block (1024 bytes: a header,
/// `key=value` lines, `#` padding), in place.
pub fn set_grubenv(text: &str, key: &str, value: &str) -> Result<String, String> {
    const HEADER: &str = "# GRUB Environment Block\n";
    const SIZE: usize = 1024;
    let body = text
        .strip_prefix(HEADER)
        .ok_or("not a grub environment block")?;
    let mut lines: Vec<String> = body
        .split('\n')
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter(|l| l.split_once('=').map(|(k, _)| k) != Some(key))
        .map(str::to_string)
        .collect();
    lines.push(format!("{key}={value}"));
    let mut out = String::from(HEADER);
    for line in &lines {
        out.push_str(line);
        out.push('\n');
    }
    if out.len() > SIZE {
        return Err("the grub environment block is full".into());
    }
    out.push_str(&"#".repeat(SIZE - out.len()));
    Ok(out)
}

#[derive(Debug, thiserror::Error)]
pub enum ConfirmError {
    #[error("no flasher takeover waits for confirmation on this system")]
    Nothing,
    #[error("{0}")]
    Failed(String),
}

/// What `confirm` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Confirmed {
    pub id: String,
    /// False when it had been confirmed before.
    pub now: bool,
    pub record: PathBuf,
}

/// On the new OS: finds the flasher takeover's record in a mounted data
/// partition, makes the new OS's entry the default in the old root's grub
/// environment, and records the confirmation (in both records).
pub fn confirm(root: &Path) -> Result<Confirmed, ConfirmError> {
    let mounts = fs::read_to_string(root.join("proc/self/mounts")).unwrap_or_default();
    let dir = mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(|p| root.join(p.trim_start_matches('/')).join(DATA_RECORD))
        .find(|d| d.join(FLASHER_RECORD).is_file())
        .ok_or(ConfirmError::Nothing)?;
    let failed = |e: String| ConfirmError::Failed(e);
    let flasher: FlasherRecord =
        ferry_journal::load_document(&dir.join(FLASHER_RECORD), FLASHER_RECORD_FORMAT)
            .map_err(|e| failed(e.to_string()))?;
    let journal_path = dir.join("journal.json");
    let mut journal = FlasherJournal::load(&journal_path).map_err(|e| failed(e.to_string()))?;
    if journal.outcome == ferry_journal::Outcome::Succeeded {
        return Ok(Confirmed {
            id: flasher.id,
            now: false,
            record: journal_path,
        });
    }
    let point = PathBuf::from("/run/ferry-takeover-confirm");
    fs::create_dir_all(&point).map_err(|e| failed(format!("{}: {e}", point.display())))?;
    sys::mount(
        &flasher.old_root.device.display().to_string(),
        &point,
        &flasher.old_root.fstype,
        0,
        "",
    )
    .map_err(|e| {
        failed(format!(
            "mounting the old root {}: {e}",
            flasher.old_root.device.display()
        ))
    })?;
    let result = commit(&point, &mut journal, &journal_path);
    let _ = sys::umount(&point, 0);
    result.map_err(failed)?;
    Ok(Confirmed {
        id: flasher.id,
        now: true,
        record: journal_path,
    })
}

fn commit(old: &Path, journal: &mut FlasherJournal, journal_path: &Path) -> Result<(), String> {
    let env_path = old.join(GRUBENV);
    let mut file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&env_path)
        .map_err(|e| format!("{}: {e}", env_path.display()))?;
    let mut text = String::new();
    file.read_to_string(&mut text)
        .map_err(|e| format!("{}: {e}", env_path.display()))?;
    let updated = set_grubenv(&text, COMMITTED_VAR, "committed")?;
    // In place: grub writes this file by its blocks and expects it to stay.
    file.rewind()
        .and_then(|()| file.write_all(updated.as_bytes()))
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("{}: {e}", env_path.display()))?;
    journal
        .finish(FlasherStep::Confirm, Ok(()))
        .map_err(|e| e.to_string())?;
    journal.save(journal_path).map_err(|e| e.to_string())?;
    let old_record = old.join(OLD_ROOT_RECORD).join("journal.json");
    if old_record.is_file() {
        journal.save(&old_record).map_err(|e| e.to_string())?;
    }
    sys::sync();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_entry_gives_its_kernel_and_initrd() {
        let cfg = "set timeout=1\nmenuentry 'new OS' {\n  linux /vmlinuz-6.1 root=LABEL=root ro\n  initrd /initrd.img-6.1\n}\nmenuentry 'other' {\n  linux /other\n  initrd /other.img\n}\n";
        assert_eq!(
            parse_entry(cfg),
            Some((
                "linux /vmlinuz-6.1 root=LABEL=root ro".to_string(),
                "initrd /initrd.img-6.1".to_string()
            ))
        );
        assert_eq!(parse_entry("menuentry 'x' {\n  linux /k\n}\n"), None);
        assert_eq!(parse_entry(""), None);
    }

    #[test]
    fn the_entry_panics_into_a_reboot_and_is_the_default_only_once_committed() {
        let cfg = custom_cfg("t-1", "abcd", "linux /k root=LABEL=root", "initrd /i", 0);
        assert!(cfg.contains("linux /k root=LABEL=root panic=10"), "{cfg}");
        assert!(cfg.contains("--id ferry-takeover"), "{cfg}");
        assert!(cfg.contains("--fs-uuid --set=root abcd"), "{cfg}");
        assert!(
            cfg.contains("if [ \"${ferry_takeover}\" = committed ]"),
            "{cfg}"
        );
        let kept = custom_cfg("t-1", "abcd", "linux /k panic=5", "initrd /i", 0);
        assert!(kept.contains("linux /k panic=5\n"), "{kept}");
    }

    #[test]
    fn the_deadline_rides_on_the_command_line_only_until_committed() {
        let cfg = custom_cfg("t-1", "abcd", "linux /k root=LABEL=root", "initrd /i", 90);
        assert!(
            cfg.contains("linux /k root=LABEL=root panic=10 $ferry_takeover_deadline\n"),
            "{cfg}"
        );
        let committed = cfg.find("= committed ]").unwrap();
        let empty = cfg.find("set ferry_takeover_deadline=\n").unwrap();
        let armed = cfg
            .find("set ferry_takeover_deadline=\"ferry.takeover_deadline=90\"")
            .unwrap();
        let export = cfg.find("export ferry_takeover_deadline\n").unwrap();
        let entry = cfg.find("menuentry").unwrap();
        assert!(
            committed < empty && empty < armed && armed < export && export < entry,
            "{cfg}"
        );
        assert_eq!(
            deadline::armed("root=LABEL=root panic=10 ferry.takeover_deadline=90"),
            Some(90)
        );
    }

    #[test]
    fn grub_reads_the_entry_with_and_without_a_deadline() {
        ferry_testkit::skip_unless!(ferry_testkit::Need::Tool("grub-script-check"));
        let dir = tempfile::tempdir().unwrap();
        for deadline in [0, 600] {
            let path = dir.path().join(format!("custom-{deadline}.cfg"));
            let cfg = custom_cfg(
                "t-1",
                "abcd",
                "linux /k root=LABEL=root",
                "initrd /i",
                deadline,
            );
            fs::write(&path, &cfg).unwrap();
            let out = Command::new("grub-script-check")
                .arg(&path)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "grub-script-check: {}{}\n{cfg}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // And it is a checker that refuses: an unclosed entry.
        let broken = dir.path().join("broken.cfg");
        fs::write(&broken, "menuentry 'x' {\n linux /k\n").unwrap();
        let out = Command::new("grub-script-check")
            .arg(&broken)
            .output()
            .unwrap();
        assert!(!out.status.success());
    }

    #[test]
    fn grubenv_is_rewritten_at_its_size_with_the_variable_replaced() {
        let mut env = String::from("# GRUB Environment Block\nnext_entry=\nferry_takeover=no\n");
        env.push_str(&"#".repeat(1024 - env.len()));
        let out = set_grubenv(&env, "ferry_takeover", "committed").unwrap();
        assert_eq!(out.len(), 1024);
        assert!(out.contains("\nferry_takeover=committed\n"));
        assert!(!out.contains("ferry_takeover=no"));
        assert!(out.contains("\nnext_entry=\n"));
        assert!(set_grubenv("not an env", "a", "b").is_err());
        let full = format!("# GRUB Environment Block\n{}\n", "x=".repeat(600));
        assert!(set_grubenv(&full, "a", "b").is_err());
    }

    fn run(program: &str, args: &[&str], stdin: Option<&str>) -> String {
        let mut child = Command::new(program)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.unwrap_or("").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{program} {args:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn the_kernel_learns_logical_partitions_numbered_past_the_tables_count() {
        use ferry_testkit::Need;
        ferry_testkit::skip_unless!(
            Need::Root,
            Need::Tool("losetup"),
            Need::Tool("sfdisk"),
            Need::Tool("partx")
        );
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("disk.raw");
        fs::File::create(&image).unwrap().set_len(64 << 20).unwrap();
        let path = image.to_str().unwrap();
        // Debian's MBR: root, extended, swap; then the swap's space holds
        // four logical partitions (5–8 in a table of six), as the flasher
        // lays them.
        run(
            "sfdisk",
            &["-q", path],
            Some("label: dos\nstart=2048, size=16MiB, type=83\ntype=5\ntype=82\n"),
        );
        let dev = run("losetup", &["-f", "--show", path], None)
            .trim()
            .to_string();
        let _ = Command::new("partx").args(["--add", &dev]).status();
        run(
            "sfdisk",
            &["-q", "--no-reread", "--no-tell-kernel", &dev],
            Some(
                "label: dos\nstart=2048, size=16MiB, type=83\nstart=34816, type=5\n\
                 start=36864, size=8MiB, type=83\nstart=55296, size=8MiB, type=83\n\
                 start=73728, size=8MiB, type=83\nstart=92160, size=8MiB, type=83\n",
            ),
        );
        let told = tell_kernel(Path::new(&dev), &[(1, 5), (2, 6), (3, 7), (4, 8)]);
        let last = PathBuf::from(format!("{dev}p8"));
        let known = is_block_device(&last);
        let _ = Command::new("losetup").args(["-d", &dev]).status();
        told.unwrap();
        assert!(known, "{} did not appear", last.display());
    }

    #[test]
    fn grub_editenv_reads_what_set_grubenv_writes() {
        ferry_testkit::skip_unless!(ferry_testkit::Need::Tool("grub-editenv"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grubenv");
        let ok = Command::new("grub-editenv")
            .arg(&path)
            .args(["create"])
            .status()
            .unwrap()
            .success();
        assert!(ok);
        let text = fs::read_to_string(&path).unwrap();
        fs::write(
            &path,
            set_grubenv(&text, COMMITTED_VAR, "committed").unwrap(),
        )
        .unwrap();
        let out = Command::new("grub-editenv")
            .arg(&path)
            .arg("list")
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "ferry_takeover=committed\n"
        );
    }
}
