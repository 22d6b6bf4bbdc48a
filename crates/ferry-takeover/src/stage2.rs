//! Stage 2 of a takeover, in RAM: ferry as PID 1 pivots into the tmpfs
//! stage 1 prepared and re-executes from it (so nothing of the old root is
//! held), then a worker stops the old OS's processes, unmounts it, flashes
//! the image, writes the carry-over and the record into the new OS, and
//! PID 1 reboots.
//!
//! Until the flash's first write, every failure reboots into the old OS,
//! which is untouched; the failure is written into the old root's record
//! when it can be mounted again. A hardware watchdog is kept alive only
//! while the work makes progress, so a hung stage 2 resets the machine.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ferry_image::{flash, FlashOptions, FlashProgress};
use ferry_journal::{EventLog, EventState, Step};

use crate::carry::{self, Carried};
use crate::preflight::unescape_mount;
use crate::steps::{
    partition_device, Fault, Handoff, TakeoverJournal, TakeoverStep, DATA_RECORD, HANDOFF_FORMAT,
    OLD_ROOT_RECORD, STAGE_ROOT, WORK,
};
use crate::sys;
use crate::watchdog::{Heartbeat, Watchdog};

/// The prefix of every line stage 2 prints on the console.
pub const CONSOLE_PREFIX: &str = "ferry-takeover stage2: ";

const OLD_ROOT: &str = "/mnt/old_root";
const NEW_ROOT: &str = "/mnt/new_root";
const DATA: &str = "/mnt/data";
/// Filesystems tried, in order, when mounting a partition of the new OS.
const FILESYSTEMS: &[&str] = &["ext4", "vfat", "btrfs", "xfs", "f2fs", "ext2"];

fn console(message: &str) {
    // PID 1 and the worker have the console as standard output.
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{CONSOLE_PREFIX}{message}");
    let _ = out.flush();
}

fn reboot_now(why: &str) -> ! {
    console(&format!("rebooting: {why}"));
    sys::sync();
    let e = sys::reboot();
    console(&format!("reboot failed: {e}"));
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// Whether ferry, started as PID 1 with `args`, is stage 2 of a takeover:
/// re-executed from the tmpfs (`takeover stage2-init`), or by the old init
/// with a takeover staged. Otherwise PID 1 is just a container's first
/// process (or `cargo run` in a PID namespace) and ferry is the CLI.
pub fn is_stage2(args: &[String]) -> bool {
    args.get(1..3) == Some(&["takeover".to_string(), "stage2-init".to_string()][..])
        || Path::new(STAGE_ROOT)
            .join(WORK)
            .join("stage2.json")
            .is_file()
}

/// Entry of ferry as PID 1. First (re-executed by the old init, with its
/// arguments): pivot into the tmpfs and re-execute from there. Then (as
/// `ferry takeover stage2-init`): run the worker, reap orphans, reboot.
pub fn pid1(args: &[String]) -> ! {
    if args.get(1..3) == Some(&["takeover".to_string(), "stage2-init".to_string()][..]) {
        init()
    }
    // The old init's descriptors (its state, sockets, journal streams under
    // /run) would keep the old root busy; ferry needs none of them.
    close_inherited();
    // Until the re-exec, the console is the old root's.
    if let Ok(tty) = OpenOptions::new().write(true).open("/dev/console") {
        let fd = tty.as_raw_fd();
        // SAFETY: duplicating an open descriptor onto stdout and stderr.
        unsafe {
            libc::dup2(fd, 1);
            libc::dup2(fd, 2);
        }
    }
    match pivot() {
        Ok(e) => reboot_now(&format!("cannot start stage 2 from RAM: {e}")),
        Err(e) => reboot_now(&format!("cannot enter the staged root: {e}")),
    }
}

/// Pivots PID 1 into the stage root and re-executes ferry from it; returns
/// only on failure (the Ok error is exec's).
fn pivot() -> Result<io::Error, String> {
    let root = Path::new(STAGE_ROOT);
    let handoff_path = root.join(WORK).join("stage2.json");
    let handoff: Handoff = ferry_journal::load_document(&handoff_path, HANDOFF_FORMAT)
        .map_err(|e| format!("no staged takeover: {e}"))?;
    console(&format!("takeover {} entering RAM", handoff.id));
    let at = |p: &str| root.join(p);
    let step = |what: &str, r: io::Result<()>| r.map_err(|e| format!("{what}: {e}"));
    step(
        "mounting proc",
        sys::mount("proc", &at("proc"), "proc", 0, ""),
    )?;
    step(
        "mounting sysfs",
        sys::mount("sysfs", &at("sys"), "sysfs", 0, ""),
    )?;
    step(
        "mounting devtmpfs",
        sys::mount("devtmpfs", &at("dev"), "devtmpfs", 0, ""),
    )?;
    // pivot_root refuses shared mounts (systemd makes / shared).
    step(
        "making mounts private",
        sys::mount("", Path::new("/"), "", libc::MS_REC | libc::MS_PRIVATE, ""),
    )?;
    step("entering the stage root", std::env::set_current_dir(root))?;
    step(
        "pivot_root",
        sys::pivot_root(Path::new("."), Path::new("mnt/old_root")),
    )?;
    step("chroot", sys::chroot(Path::new(".")))?;
    step("chdir /", std::env::set_current_dir("/"))?;
    let env = [
        "PATH=/bin".to_string(),
        format!("LD_LIBRARY_PATH={}", handoff.library_path),
    ];
    Ok(sys::exec(
        Path::new("/bin/ferry"),
        &["ferry", "takeover", "stage2-init"],
        &env,
    ))
}

fn close_inherited() {
    // SAFETY: close_range(2) on descriptors from 3 up, none of which this
    // process uses; a kernel without it leaves them open (failure ignored).
    unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
}

/// PID 1 in the tmpfs: the worker does the work; this reaps and reboots.
fn init() -> ! {
    close_inherited();
    if let Ok(tty) = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/console")
    {
        let fd = tty.as_raw_fd();
        // SAFETY: duplicating an open descriptor onto the standard ones.
        unsafe {
            libc::dup2(fd, 0);
            libc::dup2(fd, 1);
            libc::dup2(fd, 2);
        }
    }
    let worker = Command::new("/bin/ferry")
        .args(["takeover", "stage2"])
        .stdin(Stdio::null())
        .spawn();
    let worker = match worker {
        Ok(child) => child.id() as i32,
        Err(e) => reboot_now(&format!("cannot start the stage 2 worker: {e}")),
    };
    let mut outcome = "the worker ended".to_string();
    while let Some((pid, status)) = sys::wait_any() {
        if pid == worker {
            outcome = if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
                "stage 2 is done".to_string()
            } else {
                format!("stage 2 failed (status {status})")
            };
            break;
        }
    }
    reboot_now(&outcome)
}

/// Stage 2's state while it works.
struct Worker {
    handoff: Handoff,
    journal: TakeoverJournal,
    journal_path: PathBuf,
    events: Option<EventLog>,
    heartbeat: Heartbeat,
}

impl Worker {
    fn emit(&mut self, step: TakeoverStep, state: EventState, msg: &str) {
        if let Some(events) = &mut self.events {
            let _ = events.emit(step.as_str(), "takeover-stage2", state, msg);
        }
    }

    fn step<T>(
        &mut self,
        step: TakeoverStep,
        work: impl FnOnce(&mut Worker) -> Result<T, String>,
    ) -> Result<T, String> {
        self.journal.begin(step).map_err(|e| e.to_string())?;
        let _ = self.journal.save(&self.journal_path);
        self.emit(step, EventState::Ini, "");
        console(&format!("{} ...", step.as_str()));
        self.heartbeat.beat();
        let started = Instant::now();
        let result = work(self);
        self.heartbeat.beat();
        let outcome = result.as_ref().map(|_| ()).map_err(String::clone);
        self.journal
            .finish(step, outcome)
            .map_err(|e| e.to_string())?;
        let _ = self.journal.save(&self.journal_path);
        match &result {
            Ok(_) => {
                self.emit(step, EventState::Ok, "");
                console(&format!(
                    "{} done ({:.1} s)",
                    step.as_str(),
                    started.elapsed().as_secs_f64()
                ));
            }
            Err(e) => {
                self.emit(step, EventState::Error, e);
                console(&format!("{} FAILED: {e}", step.as_str()));
            }
        }
        self.emit(step, EventState::End, "");
        result
    }

    fn flash_started(&self) -> bool {
        self.journal
            .steps
            .iter()
            .any(|r| r.step == TakeoverStep::Flash && r.state != ferry_journal::StepState::Pending)
    }
}

/// The worker (`ferry takeover stage2`), run by PID 1 in the tmpfs.
/// Returns the process exit code.
pub fn work() -> i32 {
    let work_dir = Path::new("/").join(WORK);
    let handoff: Handoff =
        match ferry_journal::load_document(&work_dir.join("stage2.json"), HANDOFF_FORMAT) {
            Ok(h) => h,
            Err(e) => {
                console(&format!("no staged takeover: {e}"));
                return 1;
            }
        };
    let journal_path = work_dir.join("journal.json");
    let journal = match TakeoverJournal::load(&journal_path) {
        Ok(j) => j,
        Err(e) => {
            console(&format!("no takeover journal: {e}"));
            return 1;
        }
    };
    let events = EventLog::open(Path::new("/"), &handoff.id).ok();
    let mut worker = Worker {
        handoff,
        journal,
        journal_path,
        events,
        heartbeat: Heartbeat::new(),
    };
    let config = worker.handoff.config().watchdog.clone();
    let watchdog = match Watchdog::arm(
        Path::new("/dev/watchdog"),
        config.timeout_seconds,
        Duration::from_secs(u64::from(config.stall_seconds)),
        worker.heartbeat.clone(),
    ) {
        Ok(w) => {
            console(&format!(
                "watchdog armed: {} s, kept alive while stage 2 progresses",
                w.timeout_seconds
            ));
            Some(w)
        }
        Err(e) => {
            console(&format!("no hardware watchdog: {e}"));
            None
        }
    };
    let result = if watchdog.is_none() && config.require {
        Err("the config requires a hardware watchdog and /dev/watchdog cannot be opened".into())
    } else {
        stages(&mut worker)
    };
    let code = match result {
        Ok(()) => {
            console("the new OS is written; rebooting into it");
            0
        }
        Err(e) => {
            if worker.flash_started() {
                console(&format!("failed after the flash started: {e}"));
            } else {
                console(&format!(
                    "failed before anything was written: {e}; the old OS comes back"
                ));
                worker.journal.outcome = ferry_journal::Outcome::Failed;
                if let Err(why) = persist_in_old_root(&worker) {
                    console(&format!(
                        "the old root's record could not be updated: {why}"
                    ));
                }
            }
            1
        }
    };
    if let Some(w) = watchdog {
        let _ = w.disarm();
    }
    code
}

fn stages(w: &mut Worker) -> Result<(), String> {
    // Stage 1 began the hand-off; reaching here completes it.
    w.journal
        .finish(TakeoverStep::Handoff, Ok(()))
        .map_err(|e| e.to_string())?;
    let _ = w.journal.save(&w.journal_path);
    w.emit(TakeoverStep::Handoff, EventState::Ok, "PID 1 runs from RAM");
    w.emit(TakeoverStep::Handoff, EventState::End, "");
    w.step(TakeoverStep::StopProcesses, |w| {
        swap_off();
        stop_processes(&w.heartbeat)
    })?;
    w.step(TakeoverStep::Unmount, |w| unmount_old_root(&w.heartbeat))?;
    match w.handoff.fault {
        Some(Fault::Stage2Hang) => {
            console("hanging before the flash (fault injected); the watchdog should reset");
            // Progress stops: the keeper stops petting after the stall time.
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        Some(Fault::Stage2Delay) => {
            console("waiting before flash (fault injected, 60 s)");
            for _ in 0..60 {
                w.heartbeat.beat();
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        Some(Fault::Stage2Fail) => {
            return Err("failing before the flash (fault injected)".into());
        }
        None => {}
    }
    w.step(TakeoverStep::VerifyImage, |w| {
        let (sha256, _) = ferry_fetch::sha256_file(&w.handoff.image)
            .map_err(|e| format!("{}: {e}", w.handoff.image.display()))?;
        if sha256 == w.handoff.plan.image.sha256 {
            Ok(())
        } else {
            Err(format!(
                "the image in RAM has sha256 {sha256}, the plan {}",
                w.handoff.plan.image.sha256
            ))
        }
    })?;
    let disk = w.handoff.disk.clone();
    w.step(TakeoverStep::Flash, |w| {
        let options = FlashOptions {
            read_back: true,
            ..FlashOptions::default()
        };
        let mut progress = Progress {
            heartbeat: w.heartbeat.clone(),
            reported: 0,
        };
        let report =
            flash(&w.handoff.image, &disk, &options, &mut progress).map_err(|e| e.to_string())?;
        console(&format!(
            "wrote {} MiB of {} MiB, verified ({})",
            report.bytes_written >> 20,
            report.image_size >> 20,
            report.verified
        ));
        reread_partitions(&disk)
    })?;
    let config = w.handoff.config().target.clone();
    w.step(TakeoverStep::Carry, |w| {
        let (Some(root_n), Some(data_n)) = (config.root_partition, config.data_partition) else {
            return Err(
                "the config names no root_partition and data_partition of the image to carry into"
                    .into(),
            );
        };
        mount_partition(
            &partition_device(&disk, root_n),
            Path::new(NEW_ROOT),
            &w.heartbeat,
        )?;
        mount_partition(
            &partition_device(&disk, data_n),
            Path::new(DATA),
            &w.heartbeat,
        )?;
        let path = Path::new("/").join(WORK).join("carried.json");
        let bytes = fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let carried: Carried =
            serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        let report = carry::apply(Path::new(NEW_ROOT), Path::new(DATA), &carried)
            .map_err(|e| e.to_string())?;
        let mut count = 0;
        for file in report.files() {
            count += 1;
            let line = format!(
                "{} sha256 {} ({} bytes)",
                file.path.display(),
                file.sha256,
                file.size
            );
            w.emit(TakeoverStep::Carry, EventState::Cmdlog, &line);
        }
        let report_json = serde_json::to_vec_pretty(&report).map_err(|e| e.to_string())?;
        fs::write(Path::new("/").join(WORK).join("carry.json"), report_json)
            .map_err(|e| format!("keeping the carry-over report: {e}"))?;
        console(&format!("carried over {count} files, each read back"));
        sys::umount(Path::new(NEW_ROOT), 0).map_err(|e| format!("unmounting the new root: {e}"))
    })?;
    w.journal
        .begin(TakeoverStep::Persist)
        .map_err(|e| e.to_string())?;
    w.emit(TakeoverStep::Persist, EventState::Ini, "");
    w.journal
        .finish(TakeoverStep::Persist, Ok(()))
        .map_err(|e| e.to_string())?;
    w.emit(TakeoverStep::Persist, EventState::Ok, "");
    w.emit(TakeoverStep::Persist, EventState::End, "");
    w.emit(
        TakeoverStep::Persist,
        EventState::Success,
        "the new OS is written",
    );
    persist(w, &Path::new(DATA).join(DATA_RECORD))?;
    sys::umount(Path::new(DATA), 0).map_err(|e| format!("unmounting the data partition: {e}"))?;
    Ok(())
}

/// Writes the journal, the events and the plan into `dir`, synced.
fn persist(w: &Worker, dir: &Path) -> Result<(), String> {
    fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let _ = fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700));
    w.journal
        .save(&dir.join("journal.json"))
        .map_err(|e| e.to_string())?;
    let events = fs::read("/var/log/ferry/events.jsonl").unwrap_or_default();
    ferry_journal::write_atomic(&dir.join("events.jsonl"), &events)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    ferry_journal::save_document(&dir.join("plan.json"), &w.handoff.plan)
        .map_err(|e| e.to_string())?;
    if let Ok(report) = fs::read(Path::new("/").join(WORK).join("carry.json")) {
        ferry_journal::write_atomic(&dir.join("carry.json"), &report)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    sys::sync();
    Ok(())
}

/// Before the flash: the old root is intact; mount it again (it may be
/// unmounted already) and leave the failure in its record.
fn persist_in_old_root(w: &Worker) -> Result<(), String> {
    let mounted = Path::new(OLD_ROOT).join(OLD_ROOT_RECORD);
    if !mounted.is_dir() {
        let Some(old) = &w.handoff.old_root else {
            return Err("the old root's device is not known".into());
        };
        sys::mount(
            &old.device.display().to_string(),
            Path::new(OLD_ROOT),
            &old.fstype,
            0,
            "",
        )
        .map_err(|e| format!("mounting {} again: {e}", old.device.display()))?;
    }
    let result = persist(w, &Path::new(OLD_ROOT).join(OLD_ROOT_RECORD));
    let _ = sys::umount(Path::new(OLD_ROOT), 0);
    result
}

struct Progress {
    heartbeat: Heartbeat,
    reported: u64,
}

impl FlashProgress for Progress {
    fn progress(&mut self, consumed: u64, total: u64, _written: u64) {
        self.heartbeat.beat();
        if let Some(tenth) = (consumed * 10).checked_div(total) {
            if tenth > self.reported {
                self.reported = tenth;
                console(&format!("flash {}%", tenth * 10));
            }
        }
    }
}

fn swap_off() {
    let text = fs::read_to_string("/proc/swaps").unwrap_or_default();
    for line in text.lines().skip(1) {
        if let Some(path) = line.split_whitespace().next() {
            let path = unescape_mount(path).display().to_string();
            match sys::swapoff(Path::new(&path)) {
                Ok(()) => console(&format!("swap {path} off")),
                Err(e) => console(&format!("swapoff {path}: {e}")),
            }
        }
    }
}

/// The processes to stop: every process but PID 1, this one and kernel
/// threads.
fn user_processes() -> Vec<i32> {
    const PF_KTHREAD: u64 = 0x0020_0000;
    let me = sys::getpid();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != 1 && pid != me)
        .filter(|pid| {
            let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // Fields after the command (which may hold spaces and parentheses).
            let Some((_, rest)) = stat.rsplit_once(')') else {
                return false;
            };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let zombie = fields.first() == Some(&"Z");
            let flags: u64 = fields.get(6).and_then(|f| f.parse().ok()).unwrap_or(0);
            !zombie && flags & PF_KTHREAD == 0
        })
        .collect()
}

fn stop_processes(heartbeat: &Heartbeat) -> Result<(), String> {
    for (signal, name) in [(libc::SIGTERM, "SIGTERM"), (libc::SIGKILL, "SIGKILL")] {
        let pids = user_processes();
        if pids.is_empty() {
            return Ok(());
        }
        console(&format!("{name} to {} processes", pids.len()));
        for &pid in &pids {
            let _ = sys::kill(pid, signal);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && !user_processes().is_empty() {
            heartbeat.beat();
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let left = user_processes();
    if left.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} processes survived SIGKILL: {left:?}",
            left.len()
        ))
    }
}

/// Mount points at or under `top`, deepest first.
fn mounts_under(top: &str) -> Vec<String> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<String> = text
        .lines()
        .filter_map(|l| {
            l.split_whitespace()
                .nth(4)
                .map(|p| unescape_mount(p).display().to_string())
        })
        .filter(|p| p == top || p.starts_with(&format!("{top}/")))
        .collect();
    // Later mounts may sit on earlier ones at the same path: undo in reverse.
    points.reverse();
    points.sort_by_key(|p| std::cmp::Reverse(p.matches('/').count()));
    points
}

fn unmount_old_root(heartbeat: &Heartbeat) -> Result<(), String> {
    for attempt in 0..3 {
        for point in mounts_under(OLD_ROOT) {
            heartbeat.beat();
            let _ = sys::umount(Path::new(&point), 0);
        }
        if mounts_under(OLD_ROOT).is_empty() {
            return Ok(());
        }
        if attempt < 2 {
            let _ = stop_processes(heartbeat);
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    let left = mounts_under(OLD_ROOT);
    // Detached, a filesystem nobody uses any more goes; one still in use
    // keeps its disk claimed, and the flash's exclusive open refuses it.
    for point in &left {
        let _ = sys::umount(Path::new(point), libc::MNT_DETACH);
    }
    console(&format!(
        "detached {} busy mounts: {}",
        left.len(),
        left.join(" ")
    ));
    Ok(())
}

fn reread_partitions(disk: &Path) -> Result<(), String> {
    let file = File::open(disk).map_err(|e| format!("{}: {e}", disk.display()))?;
    let mut last = None;
    for _ in 0..10 {
        match sys::reread_partitions(file.as_raw_fd()) {
            Ok(()) => return Ok(()),
            Err(e) => last = Some(e),
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Err(format!(
        "{}: the kernel did not re-read the new partition table: {}",
        disk.display(),
        last.map_or_else(String::new, |e| e.to_string())
    ))
}

/// Mounts `device` at `point`, trying the usual filesystems.
fn mount_partition(device: &Path, point: &Path, heartbeat: &Heartbeat) -> Result<(), String> {
    // devtmpfs creates the node when the kernel has the partition.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !device.exists() && Instant::now() < deadline {
        heartbeat.beat();
        std::thread::sleep(Duration::from_millis(200));
    }
    fs::create_dir_all(point).map_err(|e| format!("{}: {e}", point.display()))?;
    let source = device.display().to_string();
    let mut errors = Vec::new();
    for fstype in FILESYSTEMS {
        match sys::mount(&source, point, fstype, 0, "") {
            Ok(()) => return Ok(()),
            Err(e) => errors.push(format!("{fstype}: {e}")),
        }
    }
    Err(format!(
        "cannot mount {} ({})",
        device.display(),
        errors.join(", ")
    ))
}
