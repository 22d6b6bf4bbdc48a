//! Stage 1 of `ferry takeover run`, on the running old OS: the pre-flight
//! again, the carry-over collected, ferry with its libraries and the image
//! staged into a tmpfs, and PID 1 handed over to ferry (bind-mounted over
//! init's binary, then re-executed), which continues as stage 2.
//!
//! Nothing here writes to the disk the image goes to, except ferry's own
//! record under `/var/lib/ferry/takeover`: any failure leaves the old OS as
//! it was, and the record says what happened.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ferry_journal::{EventLog, EventState, JournalError, MigrationLock, Step};
use sha2::{Digest, Sha256};

use crate::carry::{self, CollectOptions};
use crate::config::Config;
use crate::plan::{PlanError, TakeoverPlan};
use crate::steps::{
    Fault, Handoff, OldRoot, TakeoverStep, HANDOFF_FORMAT, OLD_ROOT_RECORD, STAGE_ROOT, WORK,
};
use crate::sys;

/// Room left in the tmpfs and in RAM beyond what is copied.
const SLACK: u64 = 32 << 20;
const RAM_MARGIN: u64 = 64 << 20;
/// How long stage 1 waits for PID 1 to become stage 2 before undoing.
const HANDOFF_WAIT: Duration = Duration::from_secs(60);

/// What `takeover run` was asked.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub config: Config,
    /// The config file's path (or "defaults"), and its sha256, for the journal.
    pub config_label: String,
    pub config_sha256: String,
    pub image: PathBuf,
    /// PATH, to look tools up as the pre-flight does.
    pub path_var: String,
    pub fault: Option<Fault>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("ferry takeover run must run as root")]
    NotRoot,
    #[error("ferry runs in another mount namespace than PID 1 (a container or a private service?): the takeover must see the machine's mounts")]
    OtherNamespace,
    #[error("the pre-flight blocks this takeover")]
    Blocked(Box<TakeoverPlan>),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("{}: {reason}", record.display())]
    Record { record: PathBuf, reason: String },
    #[error("{step}: {message}; {}", disk_note(.changed))]
    Step {
        step: &'static str,
        message: String,
        /// Whether the disk may differ from before (a flasher step from
        /// `layout` on): the record says what is left.
        changed: bool,
    },
    #[error(transparent)]
    Journal(#[from] JournalError),
}

fn disk_note(changed: &bool) -> &'static str {
    if *changed {
        "the disk was changed: `ferry takeover status` says what is left"
    } else {
        "nothing on the disk was changed"
    }
}

/// What stage 1 did before handing over (it returns only when the hand-off
/// did not happen; on success the process is ended by stage 2).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Staged {
    pub id: String,
    pub stage_root: PathBuf,
    /// Bytes kept in RAM for stage 2: ferry, its libraries, the image, the
    /// carry-over.
    pub ferry_bytes: u64,
    pub library_bytes: u64,
    pub image_bytes: u64,
    pub carry_bytes: u64,
    pub tmpfs_bytes: u64,
    /// The image is read from its own disk in stage 2, not held in RAM.
    pub streamed: bool,
}

/// A run's record on the old root: its journal, saved at every step (and
/// into the tmpfs once staged), and its events.
pub(crate) struct Record<S: Step> {
    pub(crate) dir: PathBuf,
    pub(crate) journal: ferry_journal::Journal<S>,
    pub(crate) events: EventLog,
    /// The journal's copy in the tmpfs, once staged.
    pub(crate) staged_journal: Option<PathBuf>,
}

impl<S: Step> Record<S> {
    /// Opens the record directory (0700) and its lock, and starts a journal.
    pub(crate) fn start(
        request: &RunRequest,
    ) -> Result<(Record<S>, String, MigrationLock), RunError> {
        let dir = Path::new("/").join(OLD_ROOT_RECORD);
        let record_error = |reason: String| RunError::Record {
            record: dir.clone(),
            reason,
        };
        fs::create_dir_all(&dir).map_err(|e| record_error(e.to_string()))?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| record_error(e.to_string()))?;
        let id = format!("takeover-{}", ferry_journal::now());
        let lock = MigrationLock::acquire(&dir.join("lock"), &id)
            .map_err(|e| record_error(e.to_string()))?;
        let events =
            EventLog::open(Path::new("/"), &id).map_err(|e| record_error(e.to_string()))?;
        let record = Record {
            dir: dir.clone(),
            journal: ferry_journal::Journal::new(
                &id,
                &request.config_label,
                &request.config_sha256,
            ),
            events,
            staged_journal: None,
        };
        record.save()?;
        Ok((record, id, lock))
    }

    pub(crate) fn save(&self) -> Result<(), JournalError> {
        self.journal.save(&self.dir.join("journal.json"))?;
        if let Some(path) = &self.staged_journal {
            self.journal.save(path)?;
        }
        Ok(())
    }

    pub(crate) fn emit(&mut self, step: S, state: EventState, msg: &str) {
        // The journal is the record; an event that cannot be written is not
        // a reason to stop a takeover that is otherwise fine.
        let _ = self.events.emit(step.as_str(), "takeover-run", state, msg);
    }

    /// Runs `work` as `step`, journaled and reported.
    pub(crate) fn step<T>(
        &mut self,
        step: S,
        work: impl FnOnce(&mut Record<S>) -> Result<T, String>,
    ) -> Result<T, RunError> {
        self.journal.begin(step)?;
        self.save()?;
        self.emit(step, EventState::Ini, "");
        let result = work(self);
        let message = result.as_ref().err().cloned();
        self.journal
            .finish(step, result.as_ref().map(|_| ()).map_err(String::clone))?;
        self.save()?;
        match &message {
            None => self.emit(step, EventState::Ok, ""),
            Some(m) => self.emit(step, EventState::Error, m),
        }
        self.emit(step, EventState::End, "");
        result.map_err(|message| RunError::Step {
            step: step.as_str(),
            message,
            changed: step.changes_system(),
        })
    }
}

/// Checks common to both strategies: root, PID 1's mount namespace, the
/// pre-flight. Returns the plan and its target disk.
pub(crate) fn checked_plan(
    request: &RunRequest,
    say: &mut dyn FnMut(&str),
) -> Result<(TakeoverPlan, crate::preflight::TargetDisk), RunError> {
    if sys::geteuid() != 0 {
        return Err(RunError::NotRoot);
    }
    let namespace = |pid: &str| fs::read_link(format!("/proc/{pid}/ns/mnt")).ok();
    if namespace("self") != namespace("1") {
        return Err(RunError::OtherNamespace);
    }
    say("pre-flight");
    let plan = TakeoverPlan::make(
        Path::new("/"),
        &request.path_var,
        request.config.clone(),
        &request.image,
    )?;
    if plan.blocked() {
        return Err(RunError::Blocked(Box::new(plan)));
    }
    let Some(target) = plan.target.clone() else {
        return Err(RunError::Blocked(Box::new(plan)));
    };
    Ok((plan, target))
}

/// Runs stage 1; `say` is told each phase. Strategy `ram` returns only
/// when it failed (stage 2 ends this process); strategy `flasher` returns
/// the takeover's id once the machine is asked to reboot into the new OS.
pub fn run(request: RunRequest, say: &mut dyn FnMut(&str)) -> Result<String, RunError> {
    if request.config.strategy == crate::config::Strategy::Flasher {
        return crate::flasher::run(&request, say);
    }
    let (plan, target) = checked_plan(&request, say)?;
    let (mut record, id, _lock) = Record::<TakeoverStep>::start(&request)?;

    record.step(TakeoverStep::Preflight, |r| {
        ferry_journal::save_document(&r.dir.join("plan.json"), &plan).map_err(|e| e.to_string())
    })?;
    let stage_root = PathBuf::from(STAGE_ROOT);
    say("collecting network, identity and backup into RAM");
    let carried = record.step(TakeoverStep::Collect, |_| {
        mount_stage_root(&stage_root)?;
        collect(&stage_root, &plan, &request.image)
    });
    let carried = match carried {
        Ok(bytes) => bytes,
        Err(e) => {
            let _ = sys::umount(&stage_root, libc::MNT_DETACH);
            return Err(e);
        }
    };
    say("staging ferry and the image in RAM");
    let staged = record.step(TakeoverStep::Stage, |r| {
        stage(
            &stage_root,
            &id,
            &plan,
            &request,
            Path::new(&target.device),
            carried,
            r,
        )
    });
    let staged = match staged {
        Ok(staged) => staged,
        Err(e) => {
            let _ = sys::umount(&stage_root, libc::MNT_DETACH);
            return Err(e);
        }
    };
    say(&format!(
        "staged {} MiB in RAM: ferry {} MiB, libraries {} MiB, image {} MiB{}, carry-over {} MiB",
        staged.tmpfs_bytes >> 20,
        staged.ferry_bytes >> 20,
        staged.library_bytes >> 20,
        staged.image_bytes >> 20,
        if staged.streamed {
            " (streamed from its own disk)"
        } else {
            ""
        },
        staged.carry_bytes >> 20
    ));
    say("handing PID 1 over to stage 2; the machine reboots when it is done");
    let handed = record.step(TakeoverStep::Handoff, |_| handoff(&stage_root));
    // Reached only when PID 1 did not become stage 2: undone.
    let _ = sys::umount(&stage_root, libc::MNT_DETACH);
    handed.map(|()| staged.id)
}

/// The files ferry needs to run from the tmpfs: its libraries and the
/// dynamic loader, as `ldd` lists them.
fn libraries(exe: &Path) -> Result<Vec<PathBuf>, String> {
    let out = Command::new("ldd")
        .arg(exe)
        .output()
        .map_err(|e| format!("cannot run ldd: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ldd {}: {}",
            exe.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(parse_ldd(&String::from_utf8_lossy(&out.stdout)))
}

/// Absolute paths in `ldd` output: `name => /path (0x…)` and the loader's
/// own `/lib64/ld-linux-x86-64.so.2 (0x…)`.
pub fn parse_ldd(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            let path = match line.split_once("=>") {
                Some((_, right)) => right.trim(),
                None => line,
            };
            let path = path.split_whitespace().next()?;
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

fn mem_available() -> Option<u64> {
    let text = fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Copies `from` into the tmpfs at `to`, creating directories.
fn copy_in(from: &Path, to: &Path) -> Result<u64, String> {
    if let Some(dir) = to.parent() {
        fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    fs::copy(from, to).map_err(|e| format!("copying {} into RAM: {e}", from.display()))
}

/// Copies the image into the tmpfs, hashing it on the way: the copy stage 2
/// flashes is the one checked against the plan.
fn copy_image(from: &Path, to: &Path, sha256: &str) -> Result<u64, String> {
    let mut input = File::open(from).map_err(|e| format!("{}: {e}", from.display()))?;
    let mut output = File::create(to).map_err(|e| format!("{}: {e}", to.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = input
            .read(&mut buffer)
            .map_err(|e| format!("{}: {e}", from.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        output
            .write_all(&buffer[..n])
            .map_err(|e| format!("copying the image into RAM: {e}"))?;
        total += n as u64;
    }
    let found = format!("{:x}", hasher.finalize());
    if found != sha256 {
        return Err(format!(
            "the image changed since the pre-flight: sha256 {found}, the plan has {sha256}"
        ));
    }
    Ok(total)
}

/// The device and type of the filesystem mounted at `/`.
pub(crate) fn old_root() -> Option<OldRoot> {
    let text = fs::read_to_string("/proc/self/mounts").ok()?;
    let (device, fstype) = text.lines().rev().find_map(|l| {
        let mut f = l.split_whitespace();
        let (device, point, fstype) = (f.next()?, f.next()?, f.next()?);
        (point == "/").then(|| (device.to_string(), fstype.to_string()))
    })?;
    (device.starts_with("/dev/") && device != "/dev/root").then(|| OldRoot {
        device: PathBuf::from(device),
        fstype,
    })
}

/// Mounts the tmpfs stage 2 runs in, bounded by the memory available now
/// (a tmpfs takes memory only for what it holds), with its directories.
fn mount_stage_root(stage_root: &Path) -> Result<(), String> {
    if stage_root.exists()
        && fs::read_dir(stage_root)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(format!(
            "{} exists and is not empty: another takeover is staged",
            stage_root.display()
        ));
    }
    let available = mem_available().unwrap_or(0);
    if available < RAM_MARGIN * 2 {
        return Err(format!(
            "only {} MiB of memory are available for stage 2",
            available >> 20
        ));
    }
    fs::create_dir_all(stage_root).map_err(|e| format!("{}: {e}", stage_root.display()))?;
    sys::mount(
        "tmpfs",
        stage_root,
        "tmpfs",
        0,
        &format!("size={},mode=0700", available - RAM_MARGIN),
    )
    .map_err(|e| format!("mounting a tmpfs at {}: {e}", stage_root.display()))?;
    for dir in [
        "bin",
        "dev",
        "proc",
        "sys",
        "etc",
        "tmp",
        "mnt/old_root",
        "mnt/new_root",
        "mnt/data",
        WORK,
        "var/log/ferry",
    ] {
        let path = stage_root.join(dir);
        fs::create_dir_all(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// Collects network, identity and backup from `/` into the tmpfs and
/// writes the hand-off `work/carried.json` (0600: it holds private host
/// keys) with paths as stage 2 sees them. Returns the bytes it holds.
fn collect(stage_root: &Path, plan: &TakeoverPlan, image: &Path) -> Result<u64, String> {
    let work = stage_root.join(WORK);
    let staging = work.join("carry");
    fs::create_dir_all(&staging).map_err(|e| format!("{}: {e}", staging.display()))?;
    let mut carried = carry::collect(
        Path::new("/"),
        &plan.config,
        CollectOptions {
            staging: &staging,
            image: Some(image),
            users: &[],
        },
    )
    .map_err(|e| e.to_string())?;
    carried.backup = carried
        .backup
        .relocated(&Path::new("/").join(WORK).join("carry"));
    let json = serde_json::to_vec(&carried).map_err(|e| e.to_string())?;
    let path = work.join("carried.json");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(&json)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let staged: u64 = fs::read_dir(&staging)
        .map(|d| {
            d.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    Ok(staged + json.len() as u64)
}

fn stage(
    stage_root: &Path,
    id: &str,
    plan: &TakeoverPlan,
    request: &RunRequest,
    disk: &Path,
    carry_bytes: u64,
    record: &mut Record<TakeoverStep>,
) -> Result<Staged, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find ferry's binary: {e}"))?;
    let libs = libraries(&exe)?;
    let size = |p: &Path| fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let ferry_bytes = size(&exe);
    let library_bytes: u64 = libs.iter().map(|p| size(p)).sum();
    let image_bytes = plan.image.file_size;
    // The carry-over is in the tmpfs already: what is left to copy must fit.
    // Without room for the image, it is streamed from its own disk.
    let available = mem_available().unwrap_or(u64::MAX);
    let binaries = ferry_bytes + library_bytes + SLACK;
    let streamed = available < binaries + image_bytes + RAM_MARGIN;
    if available < binaries + RAM_MARGIN {
        return Err(format!(
            "stage 2 needs {} MiB more RAM (ferry and its libraries) and {} MiB are available",
            (binaries + RAM_MARGIN) >> 20,
            available >> 20
        ));
    }
    let image_bytes = if streamed { 0 } else { image_bytes };
    let tmpfs_bytes = binaries + image_bytes + carry_bytes;
    copy_in(&exe, &stage_root.join("bin/ferry"))?;
    let mut library_dirs = Vec::new();
    for lib in &libs {
        let relative = lib.strip_prefix("/").unwrap_or(lib);
        copy_in(lib, &stage_root.join(relative))?;
        if let Some(dir) = lib.parent() {
            let dir = dir.display().to_string();
            if !library_dirs.contains(&dir) {
                library_dirs.push(dir);
            }
        }
    }
    for file in ["etc/machine-id", "etc/hostname"] {
        // The event log names the device by these; absent is fine.
        let _ = copy_in(&Path::new("/").join(file), &stage_root.join(file));
    }
    let work = stage_root.join(WORK);
    let image = if streamed {
        stream_image(stage_root, &request.image, disk)?
    } else {
        copy_image(&request.image, &work.join("image"), &plan.image.sha256)?;
        Path::new("/").join(WORK).join("image")
    };

    let handoff = Handoff {
        format: HANDOFF_FORMAT,
        id: id.to_string(),
        plan: plan.clone(),
        image,
        disk: disk.to_path_buf(),
        old_root: old_root(),
        library_path: library_dirs.join(":"),
        fault: request.fault,
    };
    ferry_journal::save_document(&work.join("stage2.json"), &handoff).map_err(|e| e.to_string())?;
    // Stage 2's event log starts with stage 1's events of this takeover.
    let events = fs::read_to_string(record.events.path()).unwrap_or_default();
    let ours: String = events
        .lines()
        .filter(|l| {
            serde_json::from_str::<ferry_journal::Event>(l).is_ok_and(|e| e.migration == id)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(stage_root.join("var/log/ferry/events.jsonl"), ours)
        .map_err(|e| format!("staging the events: {e}"))?;
    record.staged_journal = Some(work.join("journal.json"));
    Ok(Staged {
        id: id.to_string(),
        stage_root: stage_root.to_path_buf(),
        ferry_bytes,
        library_bytes,
        image_bytes,
        carry_bytes,
        tmpfs_bytes,
        streamed,
    })
}

/// Makes the image readable in stage 2 without holding it in RAM: its
/// directory bind-mounted read-only into the stage root, which works only
/// when it lies on another disk than the one written. Returns the image's
/// path as stage 2 sees it.
fn stream_image(stage_root: &Path, image: &Path, disk: &Path) -> Result<PathBuf, String> {
    let target = disk.file_name().map(|n| n.to_string_lossy().into_owned());
    let on = crate::preflight::file_disk(Path::new("/"), image);
    match (&on, &target) {
        (Some(on), Some(target)) if on != target => {}
        _ => {
            return Err(format!(
                "the image does not fit in RAM and lies on {} — the disk it replaces, or one that cannot be told apart: put it on another disk or free memory",
                on.as_deref().unwrap_or("an unknown disk")
            ))
        }
    }
    let (Some(dir), Some(name)) = (image.parent(), image.file_name()) else {
        return Err(format!("{}: not a file path", image.display()));
    };
    let mount_point = stage_root.join("mnt/image");
    fs::create_dir_all(&mount_point).map_err(|e| format!("{}: {e}", mount_point.display()))?;
    let source = dir.display().to_string();
    sys::mount(&source, &mount_point, "", libc::MS_BIND, "")
        .and_then(|()| {
            sys::mount(
                "",
                &mount_point,
                "",
                libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY,
                "",
            )
        })
        .map_err(|e| format!("bind-mounting {source} for stage 2: {e}"))?;
    Ok(Path::new("/mnt/image").join(name))
}

/// Bind-mounts the staged ferry over PID 1's binary and asks init to
/// re-execute itself; returns only when that did not happen in time (the
/// bind mount is then undone).
fn handoff(stage_root: &Path) -> Result<(), String> {
    let init = fs::read_link("/proc/1/exe").map_err(|e| format!("/proc/1/exe: {e}"))?;
    let staged = stage_root.join("bin/ferry");
    sys::mount(&staged.display().to_string(), &init, "", libc::MS_BIND, "")
        .map_err(|e| format!("bind-mounting ferry over {}: {e}", init.display()))?;
    let comm = fs::read_to_string("/proc/1/comm").unwrap_or_default();
    let asked = if comm.trim() == "systemd" {
        // systemd(1): SIGTERM makes the system manager re-execute itself.
        sys::kill(1, libc::SIGTERM).map_err(|e| e.to_string())
    } else {
        Command::new("telinit")
            .arg("u")
            .status()
            .map_err(|e| e.to_string())
            .and_then(|s| {
                if s.success() {
                    Ok(())
                } else {
                    Err(format!("telinit u: {s}"))
                }
            })
    };
    let staged_inode = fs::metadata(&staged).map(|m| (m.dev(), m.ino())).ok();
    let started = Instant::now();
    if asked.is_ok() {
        while started.elapsed() < HANDOFF_WAIT {
            // Stage 2 stops this process once it runs; until then, watch.
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    let running = fs::metadata("/proc/1/exe").map(|m| (m.dev(), m.ino())).ok();
    let _ = sys::umount(&init, libc::MNT_DETACH);
    let why = match asked {
        Err(e) => format!("init was not asked to re-execute: {e}"),
        Ok(()) if running.is_some() && running == staged_inode => {
            "PID 1 runs ferry but stage 2 did not stop this process".to_string()
        }
        Ok(()) => format!(
            "PID 1 did not re-execute into ferry within {} s",
            HANDOFF_WAIT.as_secs()
        ),
    };
    Err(why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_gives_every_library_and_the_loader() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                    \tliblzma.so.5 => /lib/x86_64-linux-gnu/liblzma.so.5 (0x00007f)\n\
                    \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n\
                    \t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n";
        assert_eq!(
            parse_ldd(text),
            [
                PathBuf::from("/lib/x86_64-linux-gnu/liblzma.so.5"),
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
            ]
        );
    }

    #[test]
    fn ldd_of_this_test_binary_names_files_that_exist() {
        let exe = std::env::current_exe().unwrap();
        let libs = libraries(&exe).unwrap();
        assert!(!libs.is_empty());
        assert!(libs.iter().all(|p| p.is_file()), "{libs:?}");
    }

    #[test]
    fn copying_an_image_that_differs_from_the_plan_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("img");
        fs::write(&from, b"image bytes").unwrap();
        let e = copy_image(&from, &dir.path().join("copy"), &"0".repeat(64)).unwrap_err();
        assert!(e.contains("changed since the pre-flight"), "{e}");
        let good = format!("{:x}", Sha256::digest(b"image bytes"));
        assert_eq!(copy_image(&from, &dir.path().join("copy2"), &good), Ok(11));
    }
}
