//! `ferry plan | run | status | history | rollback`: repository migrations.
//! The deciding and doing is ferry-apt's; this renders plans, progress
//! and outcomes for people or as JSON, and maps them to exit codes.

use std::fmt;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use ferry_apt::AptStep;
use ferry_apt::RollbackReport;
use ferry_apt::StepError;
use ferry_apt::SystemRoot;
use ferry_apt::TargetSource;
use ferry_apt::Upgrade;
use ferry_apt::{AptStatus, Layout, Progress, RunError, RunOptions, RunOutcome};
use ferry_apt::{Change, Transaction};
use ferry_apt::{Finding, KeyInstall, Plan, Severity, SourcesChange, SpaceCheck};
use ferry_apt::{Profile, ProfileError};
use ferry_apt::{SavedPlan, SavedPlanError, SystemFingerprint};
use ferry_journal::{
    after_failure, AfterFailure, EventState, Journal, Outcome, Step as _, StepObserver, StepState,
};
use serde::Serialize;

use crate::cli::{Global, PlanArgs, RollbackArgs, RunArgs};
use crate::exit::Exit;
use crate::progress::StepNumber;
use crate::render::{self, Failure};

fn profile_failure(e: ProfileError) -> Failure {
    let line = (e.line > 0).then_some(e.line);
    let column = (e.column > 0).then_some(e.column);
    let mut failure = Failure::bad_input(e.message.clone()).at(&e.path, line, column);
    if !e.source_line.is_empty() {
        failure = failure.expected(format!(
            "a valid profile (see docs/profile.md); the line is: {}",
            e.source_line.trim()
        ));
    }
    failure.hint("nothing was changed")
}

fn load_profile(path: &Path) -> Result<Profile, Failure> {
    Profile::load(path).map_err(profile_failure)
}

/// Test-only: with `FERRY_TEST_STOP_AFTER=STEP`, the process stops as a
/// power cut would, right after the journal records STEP as done. Without
/// it a run has no observer at all.
pub(crate) fn test_observer() -> Option<StepObserver<AptStep>> {
    let stop_after = std::env::var("FERRY_TEST_STOP_AFTER")
        .ok()
        .and_then(|name| AptStep::from_name(&name))?;
    Some(StepObserver::new(move |step| {
        if step == stop_after {
            std::process::exit(137);
        }
    }))
}

pub(crate) fn run_failure(e: RunError) -> Failure {
    match e {
        RunError::Profile(e) => profile_failure(e),
        RunError::Lock(e) => Failure::new(Exit::Blocked, e.to_string()).hint("nothing was changed"),
        RunError::DpkgBusy(e) => {
            Failure::new(Exit::Blocked, e.to_string()).hint("nothing was changed")
        }
        RunError::Interrupted(_) => Failure::new(Exit::Blocked, e.to_string()),
        RunError::NothingToResume(_)
        | RunError::UnknownMigration(_)
        | RunError::NothingToRollBack => Failure::bad_input(e.to_string()),
        RunError::SavedPlan(e) => saved_plan_failure(e, None),
        other => Failure::failed(other.to_string()),
    }
}

/// A saved plan that cannot be read (exit 2) or no longer applies (exit 3);
/// either way nothing was changed. `path` is the plan's file, when known.
fn saved_plan_failure(e: SavedPlanError, path: Option<&Path>) -> Failure {
    let again = "nothing was changed; make the plan again with `ferry plan PROFILE --save FILE`";
    match e {
        SavedPlanError::Json {
            path,
            line,
            column,
            message,
        } => Failure::bad_input(format!("not a saved plan: {message}"))
            .at(&path, Some(line), (column > 0).then_some(column))
            .expected("a plan written by `ferry plan PROFILE --save FILE`")
            .hint(again),
        SavedPlanError::Format { ref path, .. } => Failure::bad_input(e.to_string())
            .at(path, None, None)
            .hint(again),
        SavedPlanError::SystemChanged { .. } => {
            let failure = Failure::new(Exit::Blocked, e.to_string()).hint(again);
            match path {
                Some(path) => failure.at(path, None, None),
                None => failure,
            }
        }
        SavedPlanError::Io { ref path, .. } => {
            Failure::bad_input(e.to_string()).at(path, None, None)
        }
        other => Failure::failed(other.to_string()),
    }
}

fn human(bytes: u64) -> String {
    ferry_apt::human_bytes(bytes)
}

/// A package apt would act on, named as every output names packages.
#[derive(Debug, Serialize)]
pub struct ChangeView<'a> {
    pub package: &'a str,
    pub architecture: Option<&'a str>,
    /// The installed version, for upgrades, downgrades, reinstalls and removals.
    pub old_version: Option<&'a str>,
    /// The version apt would install, for installs, upgrades and downgrades.
    pub new_version: Option<&'a str>,
    /// `origin:version/suite` as apt prints it.
    pub from: Option<&'a str>,
}

impl<'a> From<&'a Change> for ChangeView<'a> {
    fn from(c: &'a Change) -> Self {
        ChangeView {
            package: &c.name,
            architecture: c.arch.as_deref(),
            old_version: c.old_version.as_deref(),
            new_version: c.new_version.as_deref(),
            from: c.from.as_deref(),
        }
    }
}

/// What apt would do, by kind of change.
#[derive(Debug, Serialize)]
pub struct TransactionView<'a> {
    pub install: Vec<ChangeView<'a>>,
    pub upgrade: Vec<ChangeView<'a>>,
    pub downgrade: Vec<ChangeView<'a>>,
    pub reinstall: Vec<ChangeView<'a>>,
    pub remove: Vec<ChangeView<'a>>,
}

impl<'a> From<&'a Transaction> for TransactionView<'a> {
    fn from(t: &'a Transaction) -> Self {
        let view = |changes: &'a [Change]| changes.iter().map(ChangeView::from).collect();
        TransactionView {
            install: view(&t.install),
            upgrade: view(&t.upgrade),
            downgrade: view(&t.downgrade),
            reinstall: view(&t.reinstall),
            remove: view(&t.remove),
        }
    }
}

/// A plan as ferry shows it (ferry-apt's `Plan`, with packages named
/// `package`/`architecture`).
#[derive(Debug, Serialize)]
pub struct PlanView<'a> {
    pub migration: &'a str,
    pub root: &'a Path,
    pub sources: &'a [SourcesChange],
    pub targets: &'a [TargetSource],
    pub keys: &'a [KeyInstall],
    pub upgrade: Upgrade,
    /// The packages handed to apt: installed, then removed.
    pub install: &'a [String],
    pub remove: &'a [String],
    pub transaction: TransactionView<'a>,
    pub download_bytes: u64,
    pub installed_size_delta_bytes: i64,
    pub space: &'a [SpaceCheck],
    pub findings: &'a [Finding],
    /// The command that carries this plan out, named in the last line for
    /// people: `ferry run` for a profile, `ferry release upgrade` for a bundle.
    #[serde(skip)]
    pub carried_out_by: &'static str,
    /// Whether people see each package of a finding about many (`--verbose`).
    #[serde(skip)]
    pub verbose: bool,
}

impl<'a> From<&'a Plan> for PlanView<'a> {
    fn from(plan: &'a Plan) -> Self {
        PlanView {
            migration: &plan.migration,
            root: &plan.root,
            sources: &plan.sources,
            targets: &plan.targets,
            keys: &plan.keys,
            upgrade: plan.upgrade,
            install: &plan.install,
            remove: &plan.remove,
            transaction: TransactionView::from(&plan.transaction),
            download_bytes: plan.download_bytes,
            installed_size_delta_bytes: plan.installed_size_delta_bytes,
            space: &plan.space,
            findings: &plan.findings,
            carried_out_by: "ferry run",
            verbose: false,
        }
    }
}

impl PlanView<'_> {
    /// The same plan, listing each package of a finding about many.
    pub fn verbose(mut self, verbose: bool) -> Self {
        self.verbose = verbose;
        self
    }

    /// The same plan, saying that `command` carries it out.
    pub fn carried_out_by(mut self, command: &'static str) -> Self {
        self.carried_out_by = command;
        self
    }

    pub fn blocked(&self) -> bool {
        self.findings
            .iter()
            .any(|f| f.severity == Severity::Blocker)
    }
}

/// `ferry plan`'s output: the plan, and whether its checks block it.
#[derive(Debug, Serialize)]
pub struct PlanOutput<'a> {
    pub blocked: bool,
    pub plan: PlanView<'a>,
}

impl<'a> From<&'a Plan> for PlanOutput<'a> {
    fn from(plan: &'a Plan) -> Self {
        let plan = PlanView::from(plan);
        PlanOutput {
            blocked: plan.blocked(),
            plan,
        }
    }
}

/// The plan as people read it.
impl fmt::Display for PlanView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Migration plan: {} on {}",
            self.migration,
            self.root.display()
        )?;
        writeln!(f, "\nSources")?;
        if self.sources.is_empty() {
            writeln!(f, "  (no sources file changes)")?;
        }
        for change in self.sources {
            for line in change.diff.lines() {
                writeln!(f, "  {line}")?;
            }
        }
        if !self.keys.is_empty() {
            writeln!(f, "\nKeys")?;
            for key in self.keys {
                let note = if key.replaces_existing {
                    " (replaces the file there)"
                } else {
                    ""
                };
                writeln!(f, "  + {}{note}", key.path)?;
            }
        }
        if !self.targets.is_empty() {
            writeln!(
                f,
                "\nTarget sources (each must answer with a verified Release)"
            )?;
            for target in self.targets {
                writeln!(f, "  {}", target.label())?;
            }
        }
        writeln!(f, "\nPackages (upgrade = \"{}\")", self.upgrade.as_str())?;
        let t = &self.transaction;
        let groups = [
            ("install", &t.install),
            ("upgrade", &t.upgrade),
            ("downgrade", &t.downgrade),
            ("reinstall", &t.reinstall),
            ("remove", &t.remove),
        ];
        if groups.iter().all(|(_, changes)| changes.is_empty()) {
            writeln!(f, "  (no package changes)")?;
        }
        for (label, changes) in groups {
            for c in changes {
                let versions = match (c.old_version, c.new_version) {
                    (Some(old), Some(new)) => format!("{old} -> {new}"),
                    (None, new) => new.unwrap_or_default().to_string(),
                    (old, None) => old.unwrap_or_default().to_string(),
                };
                writeln!(f, "  {label:<9} {:<32} {versions}", c.package)?;
            }
        }
        writeln!(
            f,
            "\n  download {}, installed size {}{}",
            human(self.download_bytes),
            if self.installed_size_delta_bytes < 0 {
                "-"
            } else {
                "+"
            },
            human(self.installed_size_delta_bytes.unsigned_abs())
        )?;
        if !self.space.is_empty() {
            writeln!(f, "\nFree space")?;
            for s in self.space {
                writeln!(
                    f,
                    "  {:<26} {:>12} free, {:>12} needed",
                    s.path,
                    human(s.free_bytes),
                    human(s.needed_bytes)
                )?;
            }
        }
        writeln!(f, "\nChecks")?;
        if self.findings.is_empty() {
            writeln!(f, "  all passed")?;
        }
        for finding in self.findings {
            let label = match finding.severity {
                Severity::Blocker => "BLOCKER",
                Severity::Warning => "warning",
                Severity::Info => "info",
            };
            render::check_line(
                f,
                label,
                &finding.key,
                &finding.finding,
                &finding.remediation,
            )?;
            if finding.packages.len() > 1 {
                if self.verbose {
                    for package in &finding.packages {
                        writeln!(f, "           {package}")?;
                    }
                } else {
                    writeln!(f, "           (--verbose lists them)")?;
                }
            }
        }
        if self.blocked() {
            f.write_str("\nBlocked: resolve the blockers above; nothing was changed.\n")
        } else {
            writeln!(
                f,
                "\nReady: `{}` would carry this out.",
                self.carried_out_by
            )
        }
    }
}

impl fmt::Display for PlanOutput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.plan.fmt(f)
    }
}

/// A plan needs no root: it reads the system and runs apt in a private
/// sandbox. It does need to read apt's sources, keyrings and lists; when
/// this user cannot read some of them, say so now (exit 2) rather than let
/// apt fail in the sandbox and report it as a blocker of the migration.
pub(crate) fn readable_for_plan(root: &SystemRoot, command: &str) -> Result<(), Failure> {
    if ferry_apt::is_privileged() {
        return Ok(());
    }
    let unreadable = root.unreadable_plan_inputs();
    let Some(first) = unreadable.first() else {
        return Ok(());
    };
    let shown: Vec<String> = unreadable
        .iter()
        .take(5)
        .map(|p| p.display().to_string())
        .collect();
    let more = match unreadable.len().saturating_sub(shown.len()) {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    Err(Failure::bad_input(format!(
        "`{command}` needs root to read {}{more} (this is uid {})",
        shown.join(", "),
        ferry_apt::effective_uid()
    ))
    .at(first, None, None)
    .expected("apt's sources, the keyrings they name, trusted keys and lists readable by this user")
    .hint(format!(
        "run it as root, e.g. `sudo {command} …` (a plan changes nothing either way), or make those files readable"
    )))
}

pub fn plan(args: PlanArgs, global: &Global, root: &SystemRoot) -> Result<Exit, Failure> {
    let profile = load_profile(&args.profile)?;
    readable_for_plan(root, "ferry plan")?;
    // Before the plan: a system that changes while it is computed refuses
    // the saved plan later.
    let fingerprint = match &args.save {
        Some(_) => Some(SystemFingerprint::capture(root).map_err(|e| saved_plan_failure(e, None))?),
        None => None,
    };
    let plan = planning(root, &profile, global)?;
    if let (Some(path), Some(fingerprint)) = (&args.save, fingerprint) {
        save_plan(path, fingerprint, &profile, &plan, global)?;
    }
    let mut output = PlanOutput::from(&plan);
    output.plan.verbose = global.verbose;
    render::output(&output, global);
    Ok(if plan.blocked() {
        Exit::Blocked
    } else {
        Exit::Ok
    })
}

/// Computes the plan, with progress: apt updates and simulates in a
/// sandbox, seconds to a minute on a real system.
pub(crate) fn planning(
    root: &SystemRoot,
    profile: &Profile,
    global: &Global,
) -> Result<Plan, Failure> {
    let mut progress = crate::progress::Progress::new(global);
    progress.phase(planning_phase(profile));
    ferry_apt::compute_plan(root, profile).map_err(|e| Failure::failed(e.to_string()))
}

/// The phase of computing a plan, as progress names it.
fn planning_phase(profile: &Profile) -> String {
    format!(
        "planning `{}`: apt update and simulation in a sandbox, checks",
        profile.name
    )
}

/// `plan --save FILE`: writes the plan for `run --plan FILE`, unless it is
/// blocked (a blocked plan is not one to carry out).
fn save_plan(
    path: &Path,
    fingerprint: SystemFingerprint,
    profile: &Profile,
    plan: &Plan,
    global: &Global,
) -> Result<(), Failure> {
    if plan.blocked() {
        if !global.json {
            say(format_args!(
                "The plan is blocked: not saved to {}.",
                path.display()
            ));
        }
        return Ok(());
    }
    SavedPlan::new(fingerprint, profile, plan)
        .and_then(|saved| saved.save(path))
        .map_err(|e| Failure::failed(e.to_string()).at(path, None, None))?;
    if !global.json {
        say(format_args!(
            "Plan saved to {}; `ferry run --plan {}` carries it out.",
            path.display(),
            path.display()
        ));
    }
    Ok(())
}

/// A run's progress, shown as `crate::progress` shows any work: a heading
/// per step (`==> update (4 of 9)`) with `done` or `FAILED` and apt's own
/// lines indented under it, in a log or pipe and on a terminal alike, where
/// a live line below them names the step, its time so far and how far apt
/// is; JSON events with `--json`; nothing with `--quiet`. Writes never fail
/// the run: when the terminal is gone (an SSH connection dropped), the
/// migration goes on and its log keeps every line.
pub(crate) struct RunProgress {
    progress: crate::progress::Progress,
    /// To know whether a failed step is followed by a rollback.
    no_rollback: bool,
    failed: Option<AptStep>,
}

impl RunProgress {
    pub(crate) fn new(global: &Global, no_rollback: bool) -> Self {
        RunProgress {
            progress: crate::progress::Progress::new(global),
            no_rollback,
            failed: None,
        }
    }

    /// Before the steps: computing the plan (a profile run), which the
    /// first step ends.
    pub(crate) fn planning(&mut self, profile: &Profile) {
        self.progress.phase(planning_phase(profile));
    }

    /// Ends what is shown before the outcome is: the live line cleared,
    /// and with `--json` the last phase (a rollback, say) ended, or failed
    /// with the error the run stops with.
    pub(crate) fn settle(
        &mut self,
        result: Result<RunOutcome, Failure>,
    ) -> Result<RunOutcome, Failure> {
        match &result {
            Ok(_) => self.progress.end(),
            Err(failure) => self.progress.fail(&failure.what),
        }
        result
    }
}

/// `step` as the k of N people and events count it by.
fn step_number(step: AptStep) -> StepNumber {
    StepNumber {
        number: AptStep::ALL
            .iter()
            .position(|s| *s == step)
            .map_or(0, |i| i + 1),
        count: AptStep::ALL.len(),
    }
}

fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

impl Progress for RunProgress {
    fn step(&mut self, step: AptStep, state: EventState, message: &str) {
        let name = step.as_str();
        match state {
            EventState::Ini => self.progress.step(name, step_number(step)),
            EventState::Ok => {
                self.progress.println(&format!("    {name} done"));
                self.progress.end();
            }
            EventState::Error | EventState::Fail => {
                self.progress
                    .println(&format!("    {name} FAILED: {message}"));
                self.progress.fail(message);
                self.failed = Some(step);
            }
            // The failed step is journaled; what follows it may take long.
            EventState::End
                if self.failed.take() == Some(step)
                    && after_failure(step, self.no_rollback) == AfterFailure::RollBack =>
            {
                self.progress.phase("rolling back from the backup");
            }
            EventState::Cmdlog => self.progress.println(&format!("    {message}")),
            _ => {}
        }
    }

    fn line(&mut self, _step: AptStep, line: &str) {
        self.progress.println(&format!("    | {line}"));
    }

    fn apt_status(&mut self, _step: AptStep, status: &AptStatus) {
        self.progress.percent(status.percent, &status.message);
    }
}

/// Keeps a long run alive when its terminal goes away: SIGHUP is ignored
/// (dpkg and apt inherit that), and output errors are ignored above.
pub(crate) fn detach_from_terminal_hangup() {
    // SAFETY: installing SIG_IGN for SIGHUP has no preconditions; no handler runs.
    unsafe {
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
    }
}

/// Over SSH, says what happens if the connection drops.
pub(crate) fn warn_if_remote(global: &Global) {
    let remote =
        std::env::var_os("SSH_CONNECTION").is_some() || std::env::var_os("SSH_TTY").is_some();
    if remote && !global.json {
        say(format_args!(
            "warning: this session runs over SSH and the connection may drop during the upgrade.\n\
             The run does not depend on it: it goes on, and after reconnecting `ferry status` and\n\
             {} show where it is.",
            Layout::new(&global.root).log_dir().display()
        ));
    }
}

/// The outcome of a run or a resumed run, rendered; a self-upgrade
/// continues under the new binary, which resumes from the journal.
pub(crate) fn finish(
    outcome: RunOutcome,
    global: &Global,
    no_rollback: bool,
) -> Result<Exit, Failure> {
    if let RunOutcome::Restart { id, executable } = &outcome {
        return Err(restart(id, executable, global, no_rollback));
    }
    Ok(report_outcome(outcome, global))
}

/// Replaces this process with `executable run --resume`; returns only when
/// that cannot start.
fn restart(id: &str, executable: &Path, global: &Global, no_rollback: bool) -> Failure {
    use std::os::unix::process::CommandExt;
    let mut command = std::process::Command::new(executable);
    command.arg("--root").arg(&global.root);
    if global.json {
        command.arg("--json");
    }
    if global.quiet {
        command.arg("--quiet");
    }
    command.args(["run", "--resume", "--yes"]);
    if no_rollback {
        command.arg("--no-rollback");
    }
    if !global.json && !global.quiet {
        say(format_args!(
            "==> continuing under {}",
            executable.display()
        ));
    }
    let error = command.exec();
    Failure::failed(format!(
        "migration {id}: ferry upgraded itself but {} cannot start: {error}",
        executable.display()
    ))
    .hint("`ferry run --resume --yes` continues the migration with this binary")
}

pub fn run(args: RunArgs, global: &Global, root: &SystemRoot) -> Result<Exit, Failure> {
    let options = RunOptions {
        no_rollback: args.no_rollback,
        observer: test_observer(),
    };
    let mut progress = RunProgress::new(global, args.no_rollback);
    detach_from_terminal_hangup();
    let result = if args.resume {
        ferry_apt::resume(root, &options, &mut progress).map_err(run_failure)
    } else if let Some(path) = args.plan.as_deref() {
        let saved = SavedPlan::load(path).map_err(|e| saved_plan_failure(e, Some(path)))?;
        confirm(args.yes, "ferry run", &saved.profile)?;
        ferry_apt::run_saved(root, saved, &options, &mut progress).map_err(|e| match e {
            RunError::SavedPlan(e) => saved_plan_failure(e, Some(path)),
            e => run_failure(e),
        })
    } else {
        let path = args
            .profile
            .as_deref()
            .ok_or_else(|| Failure::bad_input("a profile is needed"))?;
        let profile = load_profile(path)?;
        confirm(args.yes, "ferry run", &profile)?;
        progress.planning(&profile);
        ferry_apt::run(root, &profile, &options, &mut progress).map_err(run_failure)
    };
    let outcome = progress.settle(result)?;
    finish(outcome, global, args.no_rollback)
}

pub(crate) fn confirm(yes: bool, command: &str, profile: &Profile) -> Result<(), Failure> {
    ask(
        yes,
        command,
        &format!("Carry out migration `{}` now?", profile.name),
        "review `ferry plan` first, then pass --yes",
    )
}

/// Asks `question` on the terminal before `command` changes the system,
/// unless `--yes` answered it: every command that changes a system asks
/// the same way, and without a terminal refuses (exit 2) rather than guess.
fn ask(yes: bool, command: &str, question: &str, review: &str) -> Result<(), Failure> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure::bad_input(format!(
            "`{command}` changes the system and there is no terminal to ask; nothing was changed"
        ))
        .hint(review.to_string()));
    }
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(Failure::new(
            Exit::Failed,
            "not confirmed; nothing was changed",
        ))
    }
}

fn report_outcome(outcome: RunOutcome, global: &Global) -> Exit {
    let output = RunOutput::from(&outcome);
    render::output(&output, global);
    output.exit()
}

/// How a run (or a resumed run, or a release upgrade) ended.
#[derive(Debug, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum RunOutput<'a> {
    Succeeded {
        migration: &'a str,
    },
    /// Stopped by the plan's checks before anything changed.
    Blocked {
        plan: Box<PlanView<'a>>,
    },
    /// Failed at `step`; `changed` says whether the system was left
    /// changed (`--no-rollback`) or nothing had been changed yet.
    Failed {
        migration: &'a str,
        step: AptStep,
        error: &'a StepError,
        changed: bool,
    },
    RolledBack {
        migration: &'a str,
        step: AptStep,
        error: &'a StepError,
        rollback: &'a RollbackReport,
    },
    RollbackIncomplete {
        migration: &'a str,
        step: AptStep,
        error: &'a StepError,
        differences: &'a [String],
    },
    /// ferry upgraded itself; the run continues under `restart`.
    InProgress {
        migration: &'a str,
        restart: &'a Path,
    },
}

impl<'a> From<&'a RunOutcome> for RunOutput<'a> {
    fn from(outcome: &'a RunOutcome) -> Self {
        match outcome {
            RunOutcome::Succeeded { id } => RunOutput::Succeeded { migration: id },
            RunOutcome::Blocked { plan } => RunOutput::Blocked {
                plan: Box::new(PlanView::from(plan.as_ref())),
            },
            RunOutcome::FailedUnchanged { id, step, error } => RunOutput::Failed {
                migration: id,
                step: *step,
                error,
                changed: false,
            },
            RunOutcome::FailedLeftAsIs { id, step, error } => RunOutput::Failed {
                migration: id,
                step: *step,
                error,
                changed: true,
            },
            RunOutcome::RolledBack {
                id,
                step,
                error,
                report,
            } => RunOutput::RolledBack {
                migration: id,
                step: *step,
                error,
                rollback: report,
            },
            RunOutcome::RollbackIncomplete {
                id,
                step,
                error,
                differences,
            } => RunOutput::RollbackIncomplete {
                migration: id,
                step: *step,
                error,
                differences,
            },
            RunOutcome::Restart { id, executable } => RunOutput::InProgress {
                migration: id,
                restart: executable,
            },
        }
    }
}

impl RunOutput<'_> {
    fn exit(&self) -> Exit {
        match self {
            RunOutput::Succeeded { .. } => Exit::Ok,
            RunOutput::Blocked { .. } => Exit::Blocked,
            RunOutput::Failed { .. } | RunOutput::InProgress { .. } => Exit::Failed,
            RunOutput::RolledBack { .. } => Exit::RolledBack,
            RunOutput::RollbackIncomplete { .. } => Exit::RollbackIncomplete,
        }
    }
}

impl fmt::Display for RunOutput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunOutput::Succeeded { migration } => writeln!(f, "Migration {migration} complete."),
            RunOutput::Blocked { plan } => {
                write!(f, "{plan}")?;
                writeln!(f, "Blocked by the plan's checks; nothing was changed.")
            }
            RunOutput::Failed {
                migration,
                step,
                error,
                changed: false,
            } => writeln!(
                f,
                "Migration {migration} failed at {}: {error}\nNothing was changed.",
                step.as_str()
            ),
            RunOutput::Failed {
                migration,
                step,
                error,
                changed: true,
            } => writeln!(
                f,
                "Migration {migration} failed at {}: {error}\nLeft as it is (--no-rollback); `ferry rollback {migration}` restores the backup.",
                step.as_str()
            ),
            RunOutput::RolledBack {
                migration,
                step,
                error,
                ..
            } => writeln!(
                f,
                "Migration {migration} failed at {}: {error}\nRolled back: the system equals its backup again.",
                step.as_str()
            ),
            RunOutput::RollbackIncomplete {
                migration,
                step,
                error,
                differences,
            } => writeln!(
                f,
                "Migration {migration} failed at {}: {error}\nThe rollback is incomplete. Manual action needed for:\n  {}",
                step.as_str(),
                differences.join("\n  ")
            ),
            RunOutput::InProgress { migration, restart } => writeln!(
                f,
                "Migration {migration} continues under {}: run `ferry run --resume --yes`.",
                restart.display()
            ),
        }
    }
}

fn outcome_name(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::InProgress => "in progress",
        Outcome::Succeeded => "succeeded",
        Outcome::Failed => "failed",
        Outcome::RolledBack => "rolled back",
        Outcome::RollbackIncomplete => "rollback incomplete",
    }
}

/// One step of a migration's journal, times in ISO 8601 UTC.
#[derive(Debug, Serialize)]
pub struct StepView<'a> {
    pub step: AptStep,
    pub state: StepState,
    pub started: Option<String>,
    pub finished: Option<String>,
    /// The step's wall time in milliseconds, once it has finished.
    pub wall_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
}

/// A wall time as people read it: `0.42 s`, `12.3 s`, `2 min 05 s`.
fn wall_time(ms: u64) -> String {
    match ms {
        0..=9_999 => format!("{:.2} s", ms as f64 / 1000.0),
        10_000..=119_999 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{} min {:02} s", ms / 60_000, ms / 1000 % 60),
    }
}

/// A ferry process that drove the migration.
#[derive(Debug, Serialize)]
pub struct DriverView<'a> {
    pub version: &'a str,
    pub executable: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package_version: Option<&'a str>,
    pub started: String,
}

/// A migration as its journal records it, times in ISO 8601 UTC (the
/// journal file itself keeps seconds since the epoch).
#[derive(Debug, Serialize)]
pub struct MigrationView<'a> {
    pub id: &'a str,
    pub profile: &'a str,
    pub profile_sha256: &'a str,
    pub created: String,
    pub outcome: Outcome,
    pub steps: Vec<StepView<'a>>,
    /// The finished steps' wall times added up, in milliseconds.
    pub steps_wall_ms: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drivers: Vec<DriverView<'a>>,
}

impl<'a> From<&'a Journal<AptStep>> for MigrationView<'a> {
    fn from(j: &'a Journal<AptStep>) -> Self {
        MigrationView {
            id: &j.id,
            profile: &j.profile,
            profile_sha256: &j.profile_sha256,
            created: render::iso8601(j.created),
            outcome: j.outcome,
            steps: j
                .steps
                .iter()
                .map(|r| StepView {
                    step: r.step,
                    state: r.state,
                    started: r.started.map(render::iso8601),
                    finished: r.finished.map(render::iso8601),
                    wall_ms: r.wall_ms,
                    error: r.error.as_deref(),
                })
                .collect(),
            steps_wall_ms: j.steps.iter().filter_map(|r| r.wall_ms).sum(),
            drivers: j
                .drivers
                .iter()
                .map(|d| DriverView {
                    version: &d.version,
                    executable: &d.executable,
                    package_version: d.package_version.as_deref(),
                    started: render::iso8601(d.started),
                })
                .collect(),
        }
    }
}

/// The journals are root's alone (/var/lib/ferry is 0700): another user
/// must hear that, not "no migration" for a system that has some.
fn readable_journals(layout: &Layout, command: &str) -> Result<(), Failure> {
    let dir = layout.state_dir();
    match std::fs::read_dir(&dir) {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            Err(Failure::bad_input(format!(
                "`{command}` needs root to read the migration journals in {} (this is uid {})",
                dir.display(),
                ferry_apt::effective_uid()
            ))
            .at(&dir, None, None)
            .hint(format!("run it as root, e.g. `sudo {command}`")))
        }
        _ => Ok(()),
    }
}

pub fn status(global: &Global, root: &SystemRoot) -> Result<Exit, Failure> {
    let layout = Layout::new(root.path());
    readable_journals(&layout, "ferry status")?;
    let journal = layout.journals().pop();
    render::output(&StatusOutput::new(journal.as_ref(), &layout), global);
    Ok(Exit::Ok)
}

/// Where a migration keeps its log, events and backup.
#[derive(Debug, Serialize)]
pub struct MigrationFiles {
    pub log: PathBuf,
    pub events: PathBuf,
    pub backup: PathBuf,
}

/// The latest migration, if one has run, and where its files are.
#[derive(Debug, Serialize)]
pub struct StatusOutput<'a> {
    pub migration: Option<MigrationView<'a>>,
    #[serde(flatten)]
    pub files: Option<MigrationFiles>,
}

impl<'a> StatusOutput<'a> {
    fn new(journal: Option<&'a Journal<AptStep>>, layout: &Layout) -> Self {
        StatusOutput {
            migration: journal.map(MigrationView::from),
            files: journal.map(|j| MigrationFiles {
                log: layout.log(&j.id),
                events: layout.log_dir().join("events.jsonl"),
                backup: layout.backup_dir(&j.id),
            }),
        }
    }
}

impl fmt::Display for StatusOutput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(m) = &self.migration else {
            return writeln!(f, "No migration has run on this system.");
        };
        writeln!(
            f,
            "Migration {} (profile {}): {}",
            m.id,
            m.profile,
            outcome_name(m.outcome)
        )?;
        let rows: Vec<Vec<String>> = m
            .steps
            .iter()
            .map(|r| {
                let state = match r.state {
                    StepState::Pending => "pending",
                    StepState::Running => "running (interrupted)",
                    StepState::Done => "done",
                    StepState::Failed => "failed",
                };
                vec![
                    r.step.as_str().to_string(),
                    state.to_string(),
                    r.started.clone().unwrap_or_default(),
                    r.finished.clone().unwrap_or_default(),
                    r.wall_ms.map(wall_time).unwrap_or_default(),
                    r.error.unwrap_or_default().to_string(),
                ]
            })
            .collect();
        f.write_str(&render::table(
            &["STEP", "STATE", "STARTED", "FINISHED", "TIME", "ERROR"],
            &rows,
        ))?;
        writeln!(f, "steps took {} in all", wall_time(m.steps_wall_ms))?;
        if let Some(files) = &self.files {
            writeln!(
                f,
                "log: {}\nevents: {}\nbackup: {}",
                files.log.display(),
                files.events.display(),
                files.backup.display()
            )?;
        }
        Ok(())
    }
}

pub fn history(global: &Global, root: &SystemRoot) -> Result<Exit, Failure> {
    let layout = Layout::new(root.path());
    readable_journals(&layout, "ferry history")?;
    let journals = layout.journals();
    render::output(&HistoryOutput::new(&journals), global);
    Ok(Exit::Ok)
}

/// Every migration of the system, oldest first.
#[derive(Debug, Serialize)]
pub struct HistoryOutput<'a> {
    pub migrations: Vec<MigrationView<'a>>,
}

impl<'a> HistoryOutput<'a> {
    fn new(journals: &'a [Journal<AptStep>]) -> Self {
        HistoryOutput {
            migrations: journals.iter().map(MigrationView::from).collect(),
        }
    }
}

impl fmt::Display for HistoryOutput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.migrations.is_empty() {
            return writeln!(f, "No migration has run on this system.");
        }
        let rows: Vec<Vec<String>> = self
            .migrations
            .iter()
            .map(|m| {
                let last = m.steps.iter().rev().find(|r| r.state != StepState::Pending);
                vec![
                    m.id.to_string(),
                    m.profile.to_string(),
                    outcome_name(m.outcome).to_string(),
                    last.map(|r| r.step.as_str().to_string())
                        .unwrap_or_default(),
                    m.created.clone(),
                    wall_time(m.steps_wall_ms),
                ]
            })
            .collect();
        f.write_str(&render::table(
            &[
                "MIGRATION",
                "PROFILE",
                "OUTCOME",
                "LAST STEP",
                "CREATED",
                "TIME",
            ],
            &rows,
        ))
    }
}

pub fn rollback(args: RollbackArgs, global: &Global, root: &SystemRoot) -> Result<Exit, Failure> {
    ask(
        args.yes,
        "ferry rollback",
        &format!(
            "Roll back {} and restore its backup now?",
            args.id.as_deref().unwrap_or("the latest migration")
        ),
        "see what it restores with `ferry history` and `ferry status`, then pass --yes",
    )?;
    let (id, report) =
        ferry_apt::rollback_migration(root, args.id.as_deref()).map_err(run_failure)?;
    let output = RollbackOutput::new(&id, &report);
    render::output(&output, global);
    Ok(if output.complete {
        Exit::Ok
    } else {
        Exit::RollbackIncomplete
    })
}

/// What a rollback did, and whether the system equals its backup again.
#[derive(Debug, Serialize)]
pub struct RollbackOutput<'a> {
    pub migration: &'a str,
    pub complete: bool,
    pub rollback: &'a RollbackReport,
}

impl<'a> RollbackOutput<'a> {
    fn new(migration: &'a str, report: &'a RollbackReport) -> Self {
        RollbackOutput {
            migration,
            complete: report.complete(),
            rollback: report,
        }
    }
}

impl fmt::Display for RollbackOutput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (id, report) = (self.migration, self.rollback);
        if self.complete {
            return writeln!(
                f,
                "Rolled back {id}: reinstalled {}, purged {}. The installed packages and /etc/apt equal the backup.",
                report.reinstalled.len(),
                report.purged.len()
            );
        }
        writeln!(
            f,
            "Rollback of {id} is incomplete. Manual action needed for:"
        )?;
        for d in &report.differences {
            writeln!(f, "  {d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! What people and scripts see of a plan and a status, reviewed as
    //! snapshots (`cargo insta review` after an intended change).

    use super::*;
    use ferry_apt::FindingKey;

    fn change(name: &str, old: Option<&str>, new: Option<&str>) -> Change {
        Change {
            name: name.into(),
            arch: Some("all".into()),
            old_version: old.map(Into::into),
            new_version: new.map(Into::into),
            from: new.map(|_| "new-org:stable/stable".into()),
        }
    }

    /// A plan blocked by free space, with every kind of part; other
    /// commands' tests show it too.
    pub(crate) fn plan() -> Plan {
        let old = "# ACME\nTypes: deb\nURIs: http://old.example.org/acme\nSuites: stable\nComponents: main\n";
        let new = "# ACME\nTypes: deb\nURIs: http://new.example.org/acme\nSuites: stable\nComponents: main\n";
        Plan {
            migration: "acme-org-move".into(),
            root: "/".into(),
            sources: vec![SourcesChange {
                path: "/etc/apt/sources.list.d/acme.sources".into(),
                old_text: old.into(),
                new_text: new.into(),
                diff: ferry_deb::sources::unified_diff(
                    old,
                    new,
                    "a/etc/apt/sources.list.d/acme.sources",
                    "b/etc/apt/sources.list.d/acme.sources",
                ),
            }],
            targets: vec![ferry_apt::TargetSource {
                uri: "http://new.example.org/acme".into(),
                suite: "stable".into(),
                keyrings: vec!["/usr/share/keyrings/new-org.gpg".into()],
                inline_key: false,
            }],
            upgrade: ferry_apt::Upgrade::Full,
            keys: vec![KeyInstall {
                path: "/usr/share/keyrings/new-org.gpg".into(),
                replaces_existing: false,
            }],
            install: vec!["acme-core".into()],
            remove: vec!["acme-daemon".into(), "acme-legacy".into()],
            transaction: Transaction {
                install: vec![change("acme-core", None, Some("2.0"))],
                upgrade: vec![change("acme-sdk", Some("1.0"), Some("1.1"))],
                downgrade: vec![],
                reinstall: vec![],
                remove: vec![
                    change("acme-daemon", Some("1.0"), None),
                    change("acme-legacy", Some("1.0"), None),
                ],
            },
            download_bytes: 3 << 20,
            installed_size_delta_bytes: 512 << 10,
            space: vec![SpaceCheck {
                path: "/var/cache/apt/archives".into(),
                free_bytes: 2 << 20,
                needed_bytes: 3 << 20,
            }],
            findings: vec![
                Finding {
                    key: FindingKey::FreeSpace("/var/cache/apt/archives".into()),
                    severity: Severity::Blocker,
                    finding: "/var/cache/apt/archives has 2 MiB free, the migration needs 3 MiB".into(),
                    remediation: "free space on the filesystem of /var/cache/apt/archives (apt-get clean, remove old kernels)".into(),
                    packages: vec![],
                },
                Finding {
                    key: FindingKey::NotFromRepositories,
                    severity: Severity::Warning,
                    finding: "3 installed packages are at versions no configured repository offers".into(),
                    remediation: "ferry keeps a rebuilt .deb of each in the backup when the migration touches it".into(),
                    packages: vec!["local-tool 0.1".into(), "old-lib:i386 2.3-1".into(), "vendor-fw 7".into()],
                },
                Finding {
                    key: FindingKey::HeldPackage("acme-tools".into()),
                    severity: Severity::Info,
                    finding: "acme-tools is held and stays as it is".into(),
                    remediation: "nothing to do".into(),
                    packages: vec![],
                },
            ],
        }
    }

    #[test]
    fn plan_for_people() {
        insta::assert_snapshot!(PlanOutput::from(&plan()).to_string());
    }

    #[test]
    fn a_finding_about_many_packages_is_one_line_and_lists_them_with_verbose() {
        let p = plan();
        let terse = PlanOutput::from(&p).to_string();
        assert!(
            terse.contains("[not-from-a-repository] 3 installed packages"),
            "{terse}"
        );
        assert!(terse.contains("(--verbose lists them)"), "{terse}");
        assert!(!terse.contains("old-lib:i386"), "{terse}");
        let verbose = PlanView::from(&p).verbose(true).to_string();
        assert!(
            verbose.contains("           old-lib:i386 2.3-1\n"),
            "{verbose}"
        );
        assert!(!verbose.contains("--verbose lists them"), "{verbose}");
        // Scripts get the list whatever the flag.
        let json = serde_json::to_value(PlanOutput::from(&p)).unwrap();
        assert_eq!(
            json["plan"]["findings"][1]["packages"]
                .as_array()
                .unwrap()
                .len(),
            3
        );
    }

    #[test]
    fn plan_as_json() {
        insta::assert_json_snapshot!(PlanOutput::from(&plan()));
    }

    #[test]
    fn plan_names_packages_as_every_output_does() {
        let p = plan();
        let json = serde_json::to_value(PlanOutput::from(&p)).unwrap();
        let change = &json["plan"]["transaction"]["upgrade"][0];
        assert_eq!(change["package"], "acme-sdk");
        assert_eq!(change["architecture"], "all");
        assert!(change.get("name").is_none() && change.get("arch").is_none());
    }

    /// Every way a run ends, as (name, outcome), one of each.
    fn outcomes() -> Vec<(&'static str, RunOutcome)> {
        let id = || "acme-org-move-20261122T120000Z".to_string();
        let error = || StepError::Apt {
            args: "-y remove acme-daemon".into(),
            detail: "dpkg: error processing package acme-daemon (--remove)".into(),
            said: vec![],
        };
        vec![
            ("succeeded", RunOutcome::Succeeded { id: id() }),
            (
                "blocked",
                RunOutcome::Blocked {
                    plan: Box::new(plan()),
                },
            ),
            (
                "failed_unchanged",
                RunOutcome::FailedUnchanged {
                    id: id(),
                    step: AptStep::Update,
                    error: StepError::Update {
                        detail: "E: The repository is not signed.".into(),
                        said: vec![],
                    },
                },
            ),
            (
                "failed_left_as_is",
                RunOutcome::FailedLeftAsIs {
                    id: id(),
                    step: AptStep::Packages,
                    error: error(),
                },
            ),
            (
                "rolled_back",
                RunOutcome::RolledBack {
                    id: id(),
                    step: AptStep::Packages,
                    error: error(),
                    report: RollbackReport {
                        reinstalled: vec!["acme-daemon:amd64".into()],
                        purged: vec!["acme-core:all".into()],
                        differences: vec![],
                    },
                },
            ),
            (
                "rollback_incomplete",
                RunOutcome::RollbackIncomplete {
                    id: id(),
                    step: AptStep::Packages,
                    error: error(),
                    differences: vec!["acme-daemon:amd64 1.0 is not installed".into()],
                },
            ),
            (
                "restart",
                RunOutcome::Restart {
                    id: id(),
                    executable: "/usr/bin/ferry".into(),
                },
            ),
        ]
    }

    #[test]
    fn steps_are_counted_from_one_in_the_journals_order() {
        let first = step_number(AptStep::Preflight);
        let last = step_number(AptStep::Verify);
        assert_eq!((first.number, first.count), (1, 9));
        assert_eq!((last.number, last.count), (9, 9));
        assert_eq!(step_number(AptStep::Packages).number, 7);
    }

    #[test]
    fn run_outcomes_map_to_their_exit_codes() {
        let exits: Vec<(&str, u8)> = outcomes()
            .iter()
            .map(|(name, o)| (*name, RunOutput::from(o).exit() as u8))
            .collect();
        assert_eq!(
            exits,
            [
                ("succeeded", 0),
                ("blocked", 3),
                ("failed_unchanged", 1),
                ("failed_left_as_is", 1),
                ("rolled_back", 4),
                ("rollback_incomplete", 5),
                ("restart", 1)
            ]
        );
    }

    #[test]
    fn run_outcomes_for_people() {
        for (name, outcome) in outcomes() {
            insta::assert_snapshot!(
                format!("run_{name}_for_people"),
                RunOutput::from(&outcome).to_string()
            );
        }
    }

    #[test]
    fn run_outcomes_as_json() {
        for (name, outcome) in outcomes() {
            insta::assert_json_snapshot!(format!("run_{name}_as_json"), RunOutput::from(&outcome));
        }
    }

    fn journal() -> Journal<AptStep> {
        let mut j = Journal::new("acme-org-move-20261122T120000Z", "acme-org-move", "00");
        j.created = 1_795_348_800;
        for step in [AptStep::Preflight, AptStep::Backup, AptStep::Sources] {
            j.begin(step).unwrap();
            j.finish(step, Ok(())).unwrap();
        }
        j.begin(AptStep::Update).unwrap();
        j.finish(
            AptStep::Update,
            Err("apt-get update failed: E: The repository is not signed.".into()),
        )
        .unwrap();
        // Fixed times, one per human format of wall_time.
        for (record, ms) in j.steps.iter_mut().zip([120, 2_340, 15, 125_300]) {
            record.started = record.started.map(|_| 1_795_348_800);
            record.finished = record.finished.map(|_| 1_795_348_801);
            record.wall_ms = record.wall_ms.map(|_| ms);
        }
        j
    }

    #[test]
    fn status_for_people() {
        let layout = Layout::new(Path::new("/"));
        let journal = journal();
        insta::assert_snapshot!(StatusOutput::new(Some(&journal), &layout).to_string());
    }

    #[test]
    fn status_as_json() {
        let layout = Layout::new(Path::new("/"));
        let journal = journal();
        insta::assert_json_snapshot!(StatusOutput::new(Some(&journal), &layout));
    }

    #[test]
    fn status_gives_times_in_iso_8601_utc() {
        let layout = Layout::new(Path::new("/"));
        let journal = journal();
        let json = serde_json::to_value(StatusOutput::new(Some(&journal), &layout)).unwrap();
        assert_eq!(json["migration"]["created"], "2026-11-22T12:00:00Z");
        assert_eq!(
            json["migration"]["steps"][0]["finished"],
            "2026-11-22T12:00:01Z"
        );
    }

    #[test]
    fn status_gives_each_steps_wall_time_and_their_sum() {
        let layout = Layout::new(Path::new("/"));
        let journal = journal();
        let json = serde_json::to_value(StatusOutput::new(Some(&journal), &layout)).unwrap();
        let steps = &json["migration"]["steps"];
        assert_eq!(steps[1]["wall_ms"], 2_340);
        assert_eq!(steps[4]["wall_ms"], serde_json::Value::Null, "not run");
        assert_eq!(
            json["migration"]["steps_wall_ms"],
            120 + 2_340 + 15 + 125_300
        );
        assert_eq!(wall_time(120), "0.12 s");
        assert_eq!(wall_time(12_345), "12.3 s");
        assert_eq!(wall_time(125_300), "2 min 05 s");
    }

    #[test]
    fn status_without_a_migration() {
        let layout = Layout::new(Path::new("/"));
        let output = StatusOutput::new(None, &layout);
        insta::assert_snapshot!(output.to_string());
        insta::assert_json_snapshot!(output);
    }

    #[test]
    fn history_for_people_and_as_json() {
        let mut second = journal();
        second.id = "acme-org-move-20261123T120000Z".into();
        second.created += 86_400;
        second.outcome = Outcome::Succeeded;
        second.drivers.push(ferry_journal::Driver {
            version: "0.1.0".into(),
            executable: "/usr/bin/ferry".into(),
            package_version: Some("0.1.0-1".into()),
            started: second.created,
        });
        let journals = [journal(), second];
        let output = HistoryOutput::new(&journals);
        insta::assert_snapshot!(output.to_string());
        insta::assert_json_snapshot!(output);
    }

    #[test]
    fn empty_history() {
        let output = HistoryOutput::new(&[]);
        assert_eq!(output.to_string(), "No migration has run on this system.\n");
        assert_eq!(
            serde_json::to_value(&output).unwrap(),
            serde_json::json!({ "migrations": [] })
        );
    }

    #[test]
    fn rollback_for_people_and_as_json() {
        let complete = RollbackReport {
            reinstalled: vec!["acme-daemon:amd64".into(), "acme-legacy:all".into()],
            purged: vec!["acme-core:all".into()],
            differences: vec![],
        };
        let incomplete = RollbackReport {
            differences: vec!["acme-legacy:all 1.0 is not installed".into()],
            ..complete.clone()
        };
        for (name, report) in [("complete", complete), ("incomplete", incomplete)] {
            let output = RollbackOutput::new("acme-org-move-20261122T120000Z", &report);
            insta::assert_snapshot!(format!("rollback_{name}_for_people"), output.to_string());
            insta::assert_json_snapshot!(format!("rollback_{name}_as_json"), output);
        }
    }
}
