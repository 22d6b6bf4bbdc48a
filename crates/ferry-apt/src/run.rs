//! Carrying a migration out: pre-flight → backup → sources and keys →
//! update → download → packages → upgrade → verify, each step journaled
//! before and after it runs, every line apt prints kept as an event, and a
//! failure rolled back from the backup unless told not to.
//!
//! Everything the transaction needs is downloaded in the `download` step;
//! the steps that change the installed set run apt with `--no-download`, so
//! the point of no return comes after the network is no longer needed.
//! `resume` continues a run that was killed, from its journal.
//!
//! A run carries out a `SavedPlan`: `run` computes one from a profile,
//! `run_saved` takes one `ferry plan --save` wrote (refused when the system
//! is no longer the one it was made for), and either keeps it beside the
//! journal for `resume`.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::mpsc;

use crate::backup::Backup;
use crate::dpkg_lock::{check_dpkg_idle, DpkgLockError};
use ferry_journal::{
    after_failure, write_atomic, AfterFailure, Driven, EventLog, EventState, Journal, JournalError,
    LockError, MigrationLock, Outcome, Step as _, StepEvent, StepObserver, Steps,
};

use crate::plan::{Plan, PlanError};
use crate::profile::{HookWhen, Profile, Upgrade};
use crate::rollback::{rollback, RollbackError, RollbackReport};
use crate::saved_plan::{SavedPlan, SavedPlanError, SystemFingerprint, PLAN_JSON};
use crate::steps::{trouble_lines, AptStep, StepError};
use crate::system::SystemRoot;

/// Where ferry keeps its files, under the root.
#[derive(Debug, Clone)]
pub struct Layout {
    pub root: PathBuf,
}

impl Layout {
    pub fn new(root: &Path) -> Self {
        Layout {
            root: root.to_path_buf(),
        }
    }
    pub fn state_dir(&self) -> PathBuf {
        self.root.join("var/lib/ferry")
    }
    pub fn migration_dir(&self, id: &str) -> PathBuf {
        self.state_dir().join(id)
    }
    pub fn journal(&self, id: &str) -> PathBuf {
        self.migration_dir(id).join("state.json")
    }
    pub fn lock(&self) -> PathBuf {
        self.state_dir().join("lock")
    }
    pub fn log_dir(&self) -> PathBuf {
        self.root.join("var/log/ferry")
    }
    pub fn log(&self, id: &str) -> PathBuf {
        self.log_dir().join(format!("{id}.log"))
    }
    pub fn backup_dir(&self, id: &str) -> PathBuf {
        self.backups_dir().join(id)
    }
    pub fn backups_dir(&self) -> PathBuf {
        self.root.join("var/backups/ferry")
    }

    /// Creates `dir` (with its parents), making each of ferry's own
    /// directories on its way, from `/var/lib/ferry` or
    /// `/var/backups/ferry` down, mode 0700 (existing ones too): they hold
    /// copies of `/etc/apt` (keys, `auth.conf.d` credentials) and the
    /// migrations' state, for root alone.
    pub fn private_dir(&self, dir: &Path) -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir)?;
        for top in [self.state_dir(), self.backups_dir()] {
            let Ok(below) = dir.strip_prefix(&top) else {
                continue;
            };
            let mut at = top.clone();
            std::fs::set_permissions(&at, std::fs::Permissions::from_mode(0o700))?;
            for part in below.components() {
                at.push(part);
                std::fs::set_permissions(&at, std::fs::Permissions::from_mode(0o700))?;
            }
        }
        Ok(())
    }

    /// Every migration with a journal, oldest first.
    pub fn journals(&self) -> Vec<Journal<AptStep>> {
        let mut journals: Vec<Journal<AptStep>> = std::fs::read_dir(self.state_dir())
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| Journal::load(&e.path().join("state.json")).ok())
            .collect();
        journals.sort_by(|a, b| a.created.cmp(&b.created).then_with(|| a.id.cmp(&b.id)));
        journals
    }

    /// The migration still in progress (interrupted), if any.
    pub fn in_progress(&self) -> Option<Journal<AptStep>> {
        self.journals()
            .into_iter()
            .rev()
            .find(|j| j.outcome == Outcome::InProgress)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    DpkgBusy(#[from] DpkgLockError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no interrupted migration to resume under {}", .0.display())]
    NothingToResume(PathBuf),
    #[error("migration `{0}` was interrupted; finish it with `ferry run --resume` or undo it with `ferry rollback`")]
    Interrupted(String),
    #[error("no migration `{0}` under /var/lib/ferry")]
    UnknownMigration(String),
    #[error("no migration has a backup to roll back to")]
    NothingToRollBack,
    #[error(transparent)]
    Rollback(#[from] RollbackError),
    #[error("{0}")]
    Profile(#[from] crate::profile::ProfileError),
    /// The saved plan cannot be read, or no longer applies; nothing changed.
    #[error(transparent)]
    SavedPlan(#[from] SavedPlanError),
}

fn step_io(path: &Path) -> impl Fn(std::io::Error) -> StepError + '_ {
    move |source| StepError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> RunError + '_ {
    move |source| RunError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// How a run ended.
#[derive(Debug)]
pub enum RunOutcome {
    /// Every step done.
    Succeeded { id: String },
    /// The plan has blockers; nothing was changed.
    Blocked { plan: Box<Plan> },
    /// A step failed before anything changed.
    FailedUnchanged {
        id: String,
        step: AptStep,
        error: StepError,
    },
    /// A step failed and the rollback restored the system exactly.
    RolledBack {
        id: String,
        step: AptStep,
        error: StepError,
        report: RollbackReport,
    },
    /// A step failed and the system differs from the backup (listed).
    RollbackIncomplete {
        id: String,
        step: AptStep,
        error: StepError,
        differences: Vec<String>,
    },
    /// A step failed and `--no-rollback` left the system as it is.
    FailedLeftAsIs {
        id: String,
        step: AptStep,
        error: StepError,
    },
    /// ferry upgraded itself: the caller must start `executable` to resume
    /// the migration from its journal (`run --resume`).
    Restart { id: String, executable: PathBuf },
}

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub no_rollback: bool,
    /// A test seam, unset in a normal run: told of each step right after
    /// the journal records it as done (crash tests stop the process there).
    pub observer: Option<StepObserver<AptStep>>,
}

/// What the CLI shows while a run goes on.
pub trait Progress {
    fn step(&mut self, step: AptStep, state: EventState, message: &str);
    fn line(&mut self, step: AptStep, line: &str);
    /// How far apt-get is within `step`, as apt reports it on its status
    /// descriptor; these reports are not lines (`line` never sees them).
    fn apt_status(&mut self, _step: AptStep, _status: &AptStatus) {}
}

/// What apt-get is busy with, by its status descriptor
/// (`-o APT::Status-Fd`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AptActivity {
    /// `dlstatus`: fetching indices or packages.
    Download,
    /// `pmstatus`: dpkg unpacking, configuring or removing packages.
    Packages,
}

/// One progress report of apt-get: how far (percent) it is in an
/// activity, and what it says it is doing (`Retrieving file 4 of 7`,
/// `Unpacking libc6 (amd64)`).
#[derive(Debug, Clone, PartialEq)]
pub struct AptStatus {
    pub activity: AptActivity,
    pub percent: f64,
    pub message: String,
}

impl AptStatus {
    /// Reads one line of apt's status protocol,
    /// `dlstatus:ITEM:PERCENT:TEXT` or `pmstatus:PACKAGE:PERCENT:TEXT`;
    /// `None` for anything else (the protocol's other lines included).
    pub fn parse(line: &str) -> Option<AptStatus> {
        let mut fields = line.splitn(4, ':');
        let activity = match fields.next()? {
            "dlstatus" => AptActivity::Download,
            "pmstatus" => AptActivity::Packages,
            _ => return None,
        };
        let _item = fields.next()?;
        let percent: f64 = fields.next()?.trim().parse().ok()?;
        if !percent.is_finite() {
            return None;
        }
        Some(AptStatus {
            activity,
            percent: percent.clamp(0.0, 100.0),
            message: fields.next().unwrap_or_default().trim().to_string(),
        })
    }
}

/// Where a line of a command ferry runs came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    /// Its stdout or stderr: output for people, the log and the events.
    Output,
    /// apt-get's status descriptor: progress reports.
    Status,
}

/// A pipe for apt-get's status reports: the end ferry reads, and the end
/// the child writes to, both close-on-exec (other commands ferry starts
/// must not hold it open).
fn status_pipe() -> std::io::Result<(std::fs::File, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array it is given.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } == -1 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by nothing else.
    let (reader, writer) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((std::fs::File::from(reader), writer))
}

/// Takes the lock for a new migration of `profile_name` and checks that
/// nothing else is under way: dpkg idle, no interrupted migration.
fn begin_new(layout: &Layout, profile_name: &str) -> Result<(String, MigrationLock), RunError> {
    layout
        .private_dir(&layout.state_dir())
        .map_err(io(&layout.state_dir()))?;
    let id = format!("{profile_name}-{}", compact_time());
    let lock = MigrationLock::acquire(&layout.lock(), &id)?;
    check_dpkg_idle(&layout.root)?;
    if let Some(previous) = layout.in_progress() {
        return Err(RunError::Interrupted(previous.id));
    }
    Ok((id, lock))
}

/// Starts a migration of `root` with `profile`: plans it, then carries out
/// that plan.
pub fn run(
    system: &SystemRoot,
    profile: &Profile,
    options: &RunOptions,
    progress: &mut dyn Progress,
) -> Result<RunOutcome, RunError> {
    let root = system.path();
    let layout = Layout::new(root);
    let (id, _lock) = begin_new(&layout, &profile.name)?;
    // Before the plan: the plan is of the system as it was then.
    let fingerprint = SystemFingerprint::capture(system)?;
    // Kept until the run ends: the update step takes the lists the plan's
    // apt-get update fetched instead of fetching them again.
    let sandbox = tempfile::Builder::new()
        .prefix("ferry-plan-")
        .tempdir()
        .map_err(io(&std::env::temp_dir()))?;
    let plan = crate::plan::compute(system, profile, sandbox.path())?;
    if plan.blocked() {
        // Nothing ran, and whoever reads the device's events (a fleet
        // server, a person after the fact) must see why, not silence.
        let blockers: Vec<String> = plan
            .findings
            .iter()
            .filter(|f| f.severity == crate::finding::Severity::Blocker)
            .map(|f| format!("{}: {}", f.key, f.finding))
            .collect();
        if let Ok(mut events) = EventLog::open(root, &id) {
            let _ = events.emit(
                "plan",
                "run",
                EventState::Fail,
                &format!(
                    "blocked by the plan's checks, nothing was changed: {}",
                    blockers.join("; ")
                ),
            );
        }
        return Ok(RunOutcome::Blocked {
            plan: Box::new(plan),
        });
    }

    let saved = SavedPlan::new(fingerprint, profile, &plan)?;
    let lists = sandbox.path().join("var/lib/apt/lists");
    start(&layout, &id, saved, Some(&lists), options, progress)
}

/// Starts a migration of `root` that carries out `saved` as it is, without
/// planning again; refused, with nothing changed, when `root` is no longer
/// the system the plan was made for.
pub fn run_saved(
    system: &SystemRoot,
    saved: SavedPlan,
    options: &RunOptions,
    progress: &mut dyn Progress,
) -> Result<RunOutcome, RunError> {
    let root = system.path();
    let layout = Layout::new(root);
    let (id, _lock) = begin_new(&layout, &saved.profile.name)?;
    // Under the lock: nothing ferry runs can change the system between this
    // check and the run.
    saved.check_matches(system)?;
    start(&layout, &id, saved, None, options, progress)
}

/// Keeps `saved` beside a new journal and drives it.
/// `plan_lists`: the lists the plan's own `apt-get update` just fetched
/// for exactly the sources the run writes, when there are such.
fn start(
    layout: &Layout,
    id: &str,
    saved: SavedPlan,
    plan_lists: Option<&Path>,
    options: &RunOptions,
    progress: &mut dyn Progress,
) -> Result<RunOutcome, RunError> {
    let dir = layout.migration_dir(id);
    layout.private_dir(&dir).map_err(io(&dir))?;
    let profile_toml = dir.join("profile.toml");
    write_atomic(&profile_toml, saved.profile_text.as_bytes()).map_err(io(&profile_toml))?;
    saved.save(&dir.join(PLAN_JSON))?;
    let mut journal = Journal::new(
        id,
        &saved.profile.name,
        &ferry_fetch::sha256_hex(saved.profile_text.as_bytes()),
    );
    journal.save(&layout.journal(id))?;
    let mut runner = Runner::new(layout, id, saved, progress, options)?;
    runner.plan_lists = plan_lists.map(Path::to_path_buf);
    runner
        .events
        .emit(
            "run",
            "run",
            EventState::Ini,
            &format!("migration {id} of {}", layout.root.display()),
        )
        .ok();
    runner.drive(&mut journal)
}

/// Continues the interrupted migration of `root` from its journal.
pub fn resume(
    system: &SystemRoot,
    options: &RunOptions,
    progress: &mut dyn Progress,
) -> Result<RunOutcome, RunError> {
    let root = system.path();
    let layout = Layout::new(root);
    let mut journal = layout
        .in_progress()
        .ok_or_else(|| RunError::NothingToResume(layout.state_dir()))?;
    let id = journal.id.clone();
    let _lock = MigrationLock::acquire(&layout.lock(), &id)?;
    check_dpkg_idle(root)?;
    let saved = SavedPlan::load_beside_journal(&layout.migration_dir(&id))?;
    let mut runner = Runner::new(&layout, &id, saved, progress, options)?;
    // The interrupted step, if any, is recovered by the journal's runner
    // (`Steps::recover` below) before it runs again.
    runner.drive(&mut journal)
}

/// Rolls migration `id` (default: the latest with a backup) back from its
/// backup, offline, and records the outcome in its journal.
pub fn rollback_migration(
    system: &SystemRoot,
    id: Option<&str>,
) -> Result<(String, RollbackReport), RunError> {
    let root = system.path();
    let layout = Layout::new(root);
    let journals = layout.journals();
    let journal = match id {
        Some(id) => journals
            .into_iter()
            .find(|j| j.id == id)
            .ok_or_else(|| RunError::UnknownMigration(id.to_string()))?,
        None => journals
            .into_iter()
            .rev()
            .find(|j| {
                layout
                    .backup_dir(&j.id)
                    .join(crate::backup::MANIFEST)
                    .is_file()
            })
            .ok_or(RunError::NothingToRollBack)?,
    };
    let _lock = MigrationLock::acquire(&layout.lock(), &journal.id)?;
    check_dpkg_idle(root)?;
    let mut events = EventLog::open(root, &journal.id).map_err(io(&layout.log_dir()))?;
    let _ = events.emit(
        "rollback",
        "rollback",
        EventState::Ini,
        "restoring from the backup",
    );
    let backup = Backup::open(&layout.backup_dir(&journal.id)).map_err(RollbackError::from)?;
    let report = rollback(system, &backup)?;
    let mut journal = journal;
    journal.outcome = if report.complete() {
        Outcome::RolledBack
    } else {
        Outcome::RollbackIncomplete
    };
    journal.save(&layout.journal(&journal.id))?;
    let state = if report.complete() {
        EventState::Success
    } else {
        EventState::Fail
    };
    let _ = events.emit(
        "rollback",
        "rollback",
        state,
        &format!("{} differences remain", report.differences.len()),
    );
    Ok((journal.id, report))
}

struct Runner<'a> {
    layout: &'a Layout,
    system: SystemRoot,
    id: String,
    saved: SavedPlan,
    progress: &'a mut dyn Progress,
    options: &'a RunOptions,
    events: EventLog,
    log: std::fs::File,
    /// Set by the self-upgrade step: the new binary to continue under.
    restart_with: Option<PathBuf>,
    /// The lists the plan's `apt-get update` fetched moments ago for the
    /// sources this run writes; none for a saved or resumed plan.
    plan_lists: Option<PathBuf>,
}

impl<'a> Runner<'a> {
    fn new(
        layout: &'a Layout,
        id: &str,
        saved: SavedPlan,
        progress: &'a mut dyn Progress,
        options: &'a RunOptions,
    ) -> Result<Self, RunError> {
        std::fs::create_dir_all(layout.log_dir()).map_err(io(&layout.log_dir()))?;
        let events = EventLog::open(&layout.root, id).map_err(io(&layout.log_dir()))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(layout.log(id))
            .map_err(io(&layout.log(id)))?;
        Ok(Runner {
            layout,
            system: SystemRoot::new(&layout.root),
            id: id.to_string(),
            saved,
            progress,
            options,
            events,
            log,
            restart_with: None,
            plan_lists: None,
        })
    }

    fn note(&mut self, step: AptStep, state: EventState, message: &str) {
        use std::io::Write;
        let _ = writeln!(
            self.log,
            "[{}] {} {:?}: {message}",
            ferry_journal::rfc3339_now(),
            step.as_str(),
            state
        );
        let _ = self
            .events
            .emit(step.as_str(), step.as_str(), state, message);
        self.progress.step(step, state, message);
    }

    fn drive(&mut self, journal: &mut Journal<AptStep>) -> Result<RunOutcome, RunError> {
        let journal_path = self.layout.journal(&self.id);
        let driver = current_driver(&self.layout.root);
        self.note(
            journal.next_step().unwrap_or(AptStep::Verify),
            EventState::Cmdlog,
            &format!(
                "ferry {} at {}{}",
                driver.version,
                driver.executable,
                driver
                    .package_version
                    .as_deref()
                    .map(|v| format!(" (package {v})"))
                    .unwrap_or_default()
            ),
        );
        journal.drivers.push(driver);
        journal.save(&journal_path)?;
        let observer = self.options.observer.clone();
        match ferry_journal::drive(journal, &journal_path, self, observer.as_ref())? {
            Driven::Completed => {
                let _ = self
                    .events
                    .emit("run", "run", EventState::Success, "migration complete");
                Ok(RunOutcome::Succeeded {
                    id: self.id.clone(),
                })
            }
            Driven::Stopped(executable) => {
                let _ = self.events.emit(
                    "run",
                    "restart",
                    EventState::Cmdlog,
                    &format!("continuing under {}", executable.display()),
                );
                Ok(RunOutcome::Restart {
                    id: self.id.clone(),
                    executable,
                })
            }
            Driven::Failed { step, error } => self.fail(journal, step, error),
        }
    }

    fn fail(
        &mut self,
        journal: &mut Journal<AptStep>,
        step: AptStep,
        error: StepError,
    ) -> Result<RunOutcome, RunError> {
        let journal_path = self.layout.journal(&self.id);
        let id = self.id.clone();
        let outcome = match after_failure(step, self.options.no_rollback) {
            AfterFailure::Stop => {
                journal.outcome = Outcome::Failed;
                RunOutcome::FailedUnchanged { id, step, error }
            }
            AfterFailure::LeaveAsIs => {
                journal.outcome = Outcome::Failed;
                RunOutcome::FailedLeftAsIs { id, step, error }
            }
            AfterFailure::RollBack => {
                let _ = self.events.emit(
                    "rollback",
                    "rollback",
                    EventState::Ini,
                    "restoring from the backup",
                );
                match Backup::open(&self.layout.backup_dir(&id))
                    .map_err(RollbackError::from)
                    .and_then(|backup| rollback(&self.system, &backup))
                {
                    Ok(report) if report.complete() => {
                        journal.outcome = Outcome::RolledBack;
                        let _ = self.events.emit(
                            "rollback",
                            "rollback",
                            EventState::Ok,
                            "system equals the backup",
                        );
                        RunOutcome::RolledBack {
                            id,
                            step,
                            error,
                            report,
                        }
                    }
                    Ok(report) => {
                        journal.outcome = Outcome::RollbackIncomplete;
                        let _ = self.events.emit(
                            "rollback",
                            "rollback",
                            EventState::Fail,
                            &report.differences.join("; "),
                        );
                        RunOutcome::RollbackIncomplete {
                            id,
                            step,
                            error,
                            differences: report.differences,
                        }
                    }
                    Err(e) => {
                        journal.outcome = Outcome::RollbackIncomplete;
                        let _ = self.events.emit(
                            "rollback",
                            "rollback",
                            EventState::Fail,
                            &e.to_string(),
                        );
                        RunOutcome::RollbackIncomplete {
                            id,
                            step,
                            error,
                            differences: vec![format!("rollback failed: {e}")],
                        }
                    }
                }
            }
        };
        journal.save(&journal_path)?;
        let _ = self
            .events
            .emit("run", "run", EventState::Fail, "migration failed");
        Ok(outcome)
    }

    fn do_step(&mut self, step: AptStep) -> Result<(), StepError> {
        match step {
            // The plan was computed (and found unblocked) before the journal existed.
            AptStep::Preflight => Ok(()),
            AptStep::Backup => self.backup(),
            AptStep::Sources => self.write_sources(),
            AptStep::Update => self.update(),
            AptStep::Download => {
                let verb = match self.saved.profile.upgrade {
                    Upgrade::Full => "dist-upgrade",
                    Upgrade::None | Upgrade::Safe => "install",
                };
                let args = self.transaction_args(&["-d", verb]);
                self.apt(&args, step, false)?;
                if self.saved.profile.upgrade == Upgrade::Safe {
                    let args: Vec<String> = ["-y", "-q", "-d", "upgrade"]
                        .iter()
                        .map(|s| s.to_string())
                        .collect();
                    self.apt(&args, step, false)?;
                }
                Ok(())
            }
            AptStep::SelfUpgrade => self.self_upgrade(),
            AptStep::Packages => {
                self.hooks(HookWhen::Before, step)?;
                let args = self.transaction_args(&["--no-download", "install"]);
                self.apt(&args, step, false)
            }
            AptStep::Upgrade => {
                let verb = match self.saved.profile.upgrade {
                    Upgrade::None => None,
                    Upgrade::Safe => Some("upgrade"),
                    Upgrade::Full => Some("dist-upgrade"),
                };
                match verb {
                    Some(verb) => {
                        let args: Vec<String> = ["-y", "-q", "--no-download"]
                            .iter()
                            .map(|s| s.to_string())
                            .chain(dpkg_conffile_options())
                            .chain([verb.to_string()])
                            .collect();
                        self.apt(&args, step, false)?;
                    }
                    None => self.note(
                        step,
                        EventState::Cmdlog,
                        "the profile asks for no upgrade (upgrade = \"none\")",
                    ),
                }
                self.hooks(HookWhen::After, step)
            }
            AptStep::Verify => self.verify(),
        }
    }

    /// Runs the profile's hooks of one kind inside the root, each with its
    /// timeout; a hook that fails or overruns fails the step.
    fn hooks(&mut self, when: HookWhen, step: AptStep) -> Result<(), StepError> {
        let hooks: Vec<_> = self
            .saved
            .profile
            .hooks
            .iter()
            .filter(|h| h.when == when)
            .cloned()
            .collect();
        for hook in hooks {
            let _ = self
                .events
                .emit(step.as_str(), "hook", EventState::Ini, &hook.run);
            // Output goes straight to the migration's log: a pipe nobody
            // reads while waiting could fill up and stall the hook.
            let log = |source: std::io::Error| StepError::Hook {
                run: hook.run.clone(),
                source,
            };
            let mut child = self
                .system
                .command("sh")
                .args(["-c", &hook.run])
                .stdin(Stdio::null())
                .stdout(self.log.try_clone().map_err(log)?)
                .stderr(self.log.try_clone().map_err(log)?)
                .spawn()
                .map_err(log)?;
            let deadline =
                std::time::Instant::now() + std::time::Duration::from_secs(hook.timeout_seconds);
            let status = loop {
                match child.try_wait() {
                    Ok(Some(status)) => break status,
                    Ok(None) if std::time::Instant::now() >= deadline => {
                        let _ = child.kill();
                        let _ = child.wait();
                        return Err(StepError::HookTimedOut {
                            run: hook.run.clone(),
                            seconds: hook.timeout_seconds,
                        });
                    }
                    Ok(None) => std::thread::sleep(std::time::Duration::from_millis(50)),
                    Err(e) => return Err(log(e)),
                }
            };
            if !status.success() {
                return Err(StepError::HookFailed {
                    run: hook.run.clone(),
                    status: status.to_string(),
                });
            }
            let _ = self
                .events
                .emit(step.as_str(), "hook", EventState::Ok, &hook.run);
        }
        Ok(())
    }

    /// When ferry is installed as a package and the target sources carry
    /// a newer one, installs it before anything else changes, so the rest
    /// of the migration runs under the release's own ferry (as
    /// do-release-upgrade runs the new release's upgrader). The new binary
    /// must start here before the run switches to it.
    fn self_upgrade(&mut self) -> Result<(), StepError> {
        let step = AptStep::SelfUpgrade;
        let installed = crate::snapshot::installed_packages(&self.system)?;
        let Some(current) = installed
            .iter()
            .find(|(k, _)| k.split(':').next() == Some(SELF_PACKAGE))
            .map(|(_, p)| p.version.clone())
        else {
            self.note(
                step,
                EventState::Cmdlog,
                "ferry is not installed as a package here: nothing to upgrade first",
            );
            return Ok(());
        };
        let (_, policy) = self.apt_like(
            "apt-cache",
            &["policy".to_string(), SELF_PACKAGE.to_string()],
            step,
        )?;
        let candidate = policy
            .iter()
            .find_map(|l| l.trim().strip_prefix("Candidate:"))
            .map(|v| v.trim().to_string())
            .filter(|v| v != "(none)");
        let newer = candidate.as_deref().filter(|candidate| {
            match (
                ferry_deb::VersionRef::split(candidate),
                ferry_deb::VersionRef::split(&current),
            ) {
                (Ok(c), Ok(i)) => c > i,
                _ => false,
            }
        });
        let Some(newer) = newer.map(str::to_string) else {
            self.note(
                step,
                EventState::Cmdlog,
                &format!("ferry {current} is the newest the target sources carry"),
            );
            return Ok(());
        };
        let args: Vec<String> = ["-y", "-q", "--no-download"]
            .iter()
            .map(|s| s.to_string())
            .chain(dpkg_conffile_options())
            .chain(["install".to_string(), SELF_PACKAGE.to_string()])
            .collect();
        self.apt(&args, step, false)?;
        let executable = self.layout.root.join("usr/bin/ferry");
        // A binary that cannot start here (another libc in a foreign root)
        // must not take over: the run goes on under the current one.
        let starts = std::process::Command::new(&executable)
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .is_ok_and(|o| o.status.success());
        if starts {
            self.note(
                step,
                EventState::Cmdlog,
                &format!("ferry {current} -> {newer}; continuing under the new binary"),
            );
            self.restart_with = Some(executable);
        } else {
            self.note(
                step,
                EventState::Cmdlog,
                &format!(
                    "warning: ferry {newer} is installed but {} does not start here; continuing under this binary",
                    executable.display()
                ),
            );
        }
        Ok(())
    }

    fn backup(&mut self) -> Result<(), StepError> {
        let dir = self.layout.backup_dir(&self.id);
        if dir.join(crate::backup::MANIFEST).is_file() {
            // Resumed after the backup was complete.
            return Ok(Backup::open(&dir).map(drop)?);
        }
        let _ = std::fs::remove_dir_all(&dir);
        self.layout
            .private_dir(&dir)
            .map_err(|e| crate::backup::BackupError::Io {
                path: dir.clone(),
                source: e,
            })?;
        // Before the manifest is written, so the lists are in it too.
        crate::apt_lists::save(&self.system, &dir)?;
        Backup::create(&self.system, &dir, &self.id, &self.saved.backup)?;
        Ok(())
    }

    fn write_sources(&mut self) -> Result<(), StepError> {
        for (inside, text) in &self.saved.sources {
            let path = self.system.host_path(inside);
            write_atomic(&path, text.as_bytes()).map_err(step_io(&path))?;
        }
        for key in &self.saved.profile.keys {
            let path = self.system.host_path(&key.install_to.display().to_string());
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(step_io(parent))?;
            }
            write_atomic(&path, &key.bytes).map_err(step_io(&path))?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
                .map_err(step_io(&path))?;
        }
        if !self.saved.profile.pins.is_empty() {
            let text: String = self
                .saved
                .profile
                .pins
                .iter()
                .map(|p| {
                    format!(
                        "Package: {}\nPin: {}\nPin-Priority: {}\n\n",
                        p.package, p.pin, p.priority
                    )
                })
                .collect();
            let path = self.system.host_path(&format!(
                "/etc/apt/preferences.d/ferry-{}.pref",
                self.saved.profile.name
            ));
            write_atomic(&path, text.as_bytes()).map_err(step_io(&path))?;
        }
        Ok(())
    }

    /// `apt-get update` on the root, which must fetch every target source
    /// again: apt exits 0 when one fails and keeps the lists it had, so
    /// its `Err:`/`W:` lines about a target fail the step, and each target's
    /// Release must be in the root's lists afterwards.
    fn update(&mut self) -> Result<(), StepError> {
        let step = AptStep::Update;
        let lists = self.layout.root.join("var/lib/apt/lists");
        if let Some(fetched) = self.plan_lists.take() {
            // The plan's apt ran `update` on the same sources with the
            // root's configuration and checked every target's answer (a
            // plan that lacks one is blocked); fetching it all again is
            // the cost of a second update and nothing more.
            match install_lists(&fetched, &lists) {
                Ok(count)
                    if self
                        .saved
                        .targets
                        .iter()
                        .all(|t| t.release_in(&lists).is_some()) =>
                {
                    self.note(
                        step,
                        EventState::Cmdlog,
                        &format!(
                            "took the {count} list files the plan's apt-get update fetched; not fetched again"
                        ),
                    );
                    return Ok(());
                }
                Ok(_) => self.note(
                    step,
                    EventState::Cmdlog,
                    "the plan's lists lack a target's Release file; running apt-get update",
                ),
                Err(e) => self.note(
                    step,
                    EventState::Cmdlog,
                    &format!("cannot take the plan's lists ({e}); running apt-get update"),
                ),
            }
        }
        let mut args = vec!["-q".to_string()];
        args.extend(self.release_change_allowances());
        args.push("update".into());
        let (ok, lines) = self.apt_like("apt-get", &args, step)?;
        let errors: Vec<&String> = lines.iter().filter(|l| l.starts_with("E:")).collect();
        if !ok || !errors.is_empty() {
            let detail = errors.last().map(|l| l.to_string()).unwrap_or_default();
            return Err(StepError::Update {
                detail,
                said: trouble_lines(&lines),
            });
        }
        for target in &self.saved.targets {
            let said = crate::target::apt_lines_about(target, &lines);
            let failed = said.iter().any(|l| {
                l.starts_with("Err:")
                    || (l.starts_with("W:")
                        && (l.contains("Failed to fetch") || l.contains("GPG error")))
            });
            if failed || target.release_in(&lists).is_none() {
                return Err(StepError::TargetUnreachable {
                    target: target.label(),
                    said: said.iter().map(|l| l.to_string()).collect(),
                });
            }
        }
        Ok(())
    }

    /// apt refuses a repository whose Origin/Label/Suite/Codename changed
    /// unless told; the profile says which new values to expect, and only
    /// those fields are allowed to change (never a blanket allow).
    fn release_change_allowances(&self) -> Vec<String> {
        let mut fields = std::collections::BTreeSet::new();
        for rule in &self.saved.profile.sources {
            if let Some(e) = &rule.expect_release {
                if e.origin.is_some() {
                    fields.insert("Origin");
                }
                if e.label.is_some() {
                    fields.insert("Label");
                }
                if e.suite.is_some() {
                    fields.insert("Suite");
                }
                if e.codename.is_some() {
                    fields.insert("Codename");
                }
            }
        }
        fields
            .into_iter()
            .flat_map(|f| {
                [
                    "-o".to_string(),
                    format!("Acquire::AllowReleaseInfoChange::{f}=true"),
                ]
            })
            .collect()
    }

    /// apt's arguments for the planned transaction. Removals name only what
    /// is still installed: a resumed run may find some already gone, and apt
    /// refuses to remove a package it no longer knows.
    fn transaction_args(&self, verb: &[&str]) -> Vec<String> {
        let installed = crate::snapshot::installed_packages(&self.system).unwrap_or_default();
        let still_installed =
            |name: &str| installed.keys().any(|k| k.split(':').next() == Some(name));
        let mut args: Vec<String> = vec!["-y".into(), "-q".into()];
        args.extend(dpkg_conffile_options());
        args.extend(verb.iter().map(|s| s.to_string()));
        args.extend(self.saved.install.iter().cloned());
        args.extend(
            self.saved
                .remove
                .iter()
                .filter(|r| still_installed(r))
                .map(|r| format!("{r}-")),
        );
        args
    }

    fn apt(
        &mut self,
        args: &[String],
        step: AptStep,
        errors_in_output_fail: bool,
    ) -> Result<(), StepError> {
        let (ok, lines) = self.apt_like("apt-get", args, step)?;
        let error_lines: Vec<&String> = lines.iter().filter(|l| l.starts_with("E:")).collect();
        if !ok || (errors_in_output_fail && !error_lines.is_empty()) {
            let detail = error_lines
                .last()
                .map(|l| l.to_string())
                .or_else(|| lines.last().cloned())
                .unwrap_or_default();
            return Err(StepError::Apt {
                args: args.join(" "),
                detail,
                said: trouble_lines(&lines),
            });
        }
        Ok(())
    }

    /// Runs a command inside the root, every output line an event.
    /// apt-get also reports how far it is (`APT::Status-Fd`, many times a
    /// second), on a pipe of its own: those reports go to the progress
    /// alone, so the log, the events and the lines the steps judge stay
    /// what apt printed. (Not on its stderr: apt marks the status
    /// descriptor close-on-exec before it starts dpkg, which would leave
    /// dpkg and the maintainer scripts without a stderr.)
    fn apt_like(
        &mut self,
        program: &str,
        args: &[String],
        step: AptStep,
    ) -> Result<(bool, Vec<String>), StepError> {
        let mut command = self.system.command(program);
        // Without the pipe apt-get runs as before, only without percents.
        let status_pipe = (program == "apt-get")
            .then(status_pipe)
            .and_then(Result::ok);
        if let Some((_, writer)) = &status_pipe {
            let fd = writer.as_raw_fd();
            command.args(["-o", &format!("APT::Status-Fd={fd}")]);
            // SAFETY: between fork and exec the closure only calls fcntl,
            // which is async-signal-safe, on a descriptor this process
            // owns (kept open by `status_pipe` until after the spawn).
            unsafe {
                command.pre_exec(move || {
                    // The child keeps the write end across exec.
                    if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| StepError::Spawn {
                program: program.to_string(),
                source,
            })?;
        // Only the child holds the write end now: its exit ends the reports.
        let status_reader = status_pipe.map(|(reader, _writer)| reader);
        let (sender, receiver) = mpsc::channel::<(Stream, String)>();
        let readers: Vec<_> = [
            child
                .stdout
                .take()
                .map(|s| (Stream::Output, Box::new(s) as Box<dyn std::io::Read + Send>)),
            child
                .stderr
                .take()
                .map(|s| (Stream::Output, Box::new(s) as Box<dyn std::io::Read + Send>)),
            status_reader.map(|s| (Stream::Status, Box::new(s) as Box<dyn std::io::Read + Send>)),
        ]
        .into_iter()
        .flatten()
        .map(|(kind, stream)| {
            let sender = sender.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if sender.send((kind, line)).is_err() {
                        break;
                    }
                }
            })
        })
        .collect();
        drop(sender);
        let mut lines = Vec::new();
        for (kind, line) in receiver {
            use std::io::Write;
            if kind == Stream::Status {
                match AptStatus::parse(&line) {
                    Some(status) => self.progress.apt_status(step, &status),
                    // `pmerror`, `pmconffile`: what dpkg and apt also
                    // print as lines; kept in the log for whoever debugs
                    // apt itself.
                    None => {
                        let _ = writeln!(self.log, "{line}");
                    }
                }
                continue;
            }
            let _ = writeln!(self.log, "{line}");
            let _ = self
                .events
                .emit(step.as_str(), program, EventState::Cmdlog, &line);
            self.progress.line(step, &line);
            lines.push(line);
        }
        for reader in readers {
            let _ = reader.join();
        }
        let status = child.wait().map_err(|source| StepError::Wait {
            program: program.to_string(),
            source,
        })?;
        Ok((status.success(), lines))
    }

    fn verify(&mut self) -> Result<(), StepError> {
        let root = self.layout.root.clone();
        let mut problems = Vec::new();
        if !self.saved.profile.verify.os_release.is_empty() {
            match ferry_deb::os_release::OsRelease::read(&root) {
                Ok(os) => {
                    for (key, wanted) in &self.saved.profile.verify.os_release {
                        if os.get(key) != Some(wanted.as_str()) {
                            problems.push(format!(
                                "os-release {key} is {:?}, expected {wanted:?}",
                                os.get(key).unwrap_or("(unset)")
                            ));
                        }
                    }
                }
                Err(e) => problems.push(format!("cannot read os-release: {e}")),
            }
        }
        let installed = crate::snapshot::installed_packages(&self.system)?;
        let version_of = |name: &str| {
            installed
                .iter()
                .find(|(k, _)| k.split(':').next() == Some(name))
                .map(|(_, p)| p.version.clone())
        };
        for (name, requirement) in &self.saved.profile.verify.packages {
            match version_of(name.as_str()) {
                Some(v)
                    if ferry_deb::VersionRef::split(&v).is_ok_and(|v| requirement.allows(&v)) => {}
                Some(v) => problems.push(format!("{name} is {v}, expected {requirement}")),
                None => problems.push(format!("{name} is not installed, expected {requirement}")),
            }
        }
        for name in self.saved.remove.iter() {
            if version_of(name).is_some() {
                problems.push(format!("{name} is still installed"));
            }
        }
        for name in self.saved.install.iter() {
            if version_of(name).is_none() {
                problems.push(format!("{name} is not installed"));
            }
        }
        let (_, audit) = self.apt_like("dpkg", &["--audit".into()], AptStep::Verify)?;
        if audit.iter().any(|l| !l.trim().is_empty()) {
            problems.push("dpkg --audit reports unfinished packages".into());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(StepError::Verification { problems })
        }
    }
}

/// The apt run as the journal's runner drives it.
impl Steps<AptStep> for Runner<'_> {
    /// The new ferry binary to continue under, after a self-upgrade.
    type Stop = PathBuf;
    type Error = StepError;

    fn run(&mut self, step: AptStep) -> Result<(), StepError> {
        self.do_step(step)
    }

    fn report(&mut self, step: AptStep, event: StepEvent<'_>) {
        match event {
            StepEvent::Started => self.note(step, EventState::Ini, "started"),
            StepEvent::Done => self.note(step, EventState::Ok, "done"),
            StepEvent::Failed(error) => self.note(step, EventState::Error, error),
            StepEvent::Ended => self.note(step, EventState::End, ""),
        }
    }

    fn stop_after(&mut self, _step: AptStep) -> Option<PathBuf> {
        self.restart_with.take()
    }

    /// A step killed after the installed set may have changed may have
    /// killed dpkg mid-way: let dpkg finish what it started before the step
    /// runs again. When that fails, the step's own apt run fails and says why.
    fn recover(&mut self, step: AptStep) {
        let _ = self.events.emit(
            step.as_str(),
            "resume",
            EventState::Ini,
            "resuming an interrupted step",
        );
        if step.changes_packages() {
            if let Err(e) = self.apt_like("dpkg", &["--configure".into(), "-a".into()], step) {
                self.note(
                    step,
                    EventState::Cmdlog,
                    &format!("dpkg --configure -a: {e}"),
                );
            }
        }
    }
}

/// The package ferry itself ships as.
const SELF_PACKAGE: &str = "ferry";

/// This process, as the journal records it.
/// Makes `to` (a root's apt lists) hold exactly the list files of `from`,
/// as an `apt-get update` with the same sources would leave it: each file
/// replaced atomically, then those of sources no longer configured removed.
/// Interrupted, the update step runs again on resume, with apt itself.
fn install_lists(from: &Path, to: &Path) -> std::io::Result<usize> {
    // apt's `lock` and `partial/` belong to the directory, not to a source.
    let list_files = |dir: &Path| -> std::io::Result<BTreeSet<std::ffi::OsString>> {
        let mut names = BTreeSet::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() && entry.file_name() != "lock" {
                names.insert(entry.file_name());
            }
        }
        Ok(names)
    };
    let fetched = list_files(from)?;
    for name in &fetched {
        let mut temporary = std::ffi::OsString::from(".ferry-");
        temporary.push(name);
        let temporary = to.join(temporary);
        std::fs::copy(from.join(name), &temporary)?;
        std::fs::rename(&temporary, to.join(name))?;
    }
    for name in list_files(to)?.difference(&fetched) {
        std::fs::remove_file(to.join(name))?;
    }
    Ok(fetched.len())
}

fn current_driver(root: &Path) -> ferry_journal::Driver {
    let package_version = crate::snapshot::installed_packages(&SystemRoot::new(root))
        .ok()
        .and_then(|installed| {
            installed
                .iter()
                .find(|(k, _)| k.split(':').next() == Some(SELF_PACKAGE))
                .map(|(_, p)| p.version.clone())
        });
    ferry_journal::Driver {
        version: env!("CARGO_PKG_VERSION").to_string(),
        executable: std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        package_version,
        started: ferry_journal::now(),
    }
}

fn dpkg_conffile_options() -> Vec<String> {
    [
        "-o",
        "Dpkg::Options::=--force-confdef",
        "-o",
        "Dpkg::Options::=--force-confold",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// `20261122T114000Z`: sortable, and valid in file names.
fn compact_time() -> String {
    ferry_journal::rfc3339_now()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(15)
        .collect::<String>()
        + "Z"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taken_lists_replace_the_roots_and_drop_those_of_sources_gone() {
        let (from, to) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        std::fs::write(from.path().join("new_InRelease"), "new").unwrap();
        std::fs::write(from.path().join("kept_Packages"), "fresh").unwrap();
        std::fs::write(from.path().join("lock"), "").unwrap();
        std::fs::create_dir(from.path().join("partial")).unwrap();
        std::fs::write(to.path().join("kept_Packages"), "stale").unwrap();
        std::fs::write(to.path().join("old_InRelease"), "old").unwrap();
        std::fs::write(to.path().join(".ferry-new_InRelease"), "torn").unwrap();
        std::fs::write(to.path().join("lock"), "root's").unwrap();
        assert_eq!(install_lists(from.path(), to.path()).unwrap(), 2);
        let mut names: Vec<String> = std::fs::read_dir(to.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["kept_Packages", "lock", "new_InRelease"]);
        let read = |name: &str| std::fs::read_to_string(to.path().join(name)).unwrap();
        assert_eq!(read("kept_Packages"), "fresh");
        assert_eq!(read("lock"), "root's", "apt's lock is left alone");
        assert!(install_lists(&from.path().join("gone"), to.path()).is_err());
    }

    #[test]
    fn apt_status_lines_give_the_activity_percent_and_message() {
        assert_eq!(
            AptStatus::parse("dlstatus:4:42.5:Retrieving file 4 of 7"),
            Some(AptStatus {
                activity: AptActivity::Download,
                percent: 42.5,
                message: "Retrieving file 4 of 7".into()
            })
        );
        // The message may hold colons of its own.
        assert_eq!(
            AptStatus::parse("pmstatus:libc6:12.5000:Unpacking libc6 (amd64): new"),
            Some(AptStatus {
                activity: AptActivity::Packages,
                percent: 12.5,
                message: "Unpacking libc6 (amd64): new".into()
            })
        );
        assert_eq!(
            AptStatus::parse("pmstatus:dpkg-exec:150:Running dpkg").map(|s| s.percent),
            Some(100.0)
        );
    }

    #[test]
    fn other_lines_are_not_apt_status() {
        for line in [
            "Get:1 http://deb.example/debian bookworm InRelease",
            "E: Sub-process /usr/bin/dpkg returned an error code (1)",
            "dlstatus:1:NaN:x",
            "dlstatus:1:many:x",
            "pmerror:acme-core:50:installed post-installation script returned 1",
        ] {
            assert_eq!(AptStatus::parse(line), None, "{line}");
        }
    }
}
