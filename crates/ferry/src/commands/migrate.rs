//! `ferry plan | run | status | history | rollback`: repository migrations.
//! The deciding and doing is ferry-apt's; this renders plans, progress
//! and outcomes for people or as JSON, and maps them to exit codes.

use std::io::IsTerminal;
use std::path::Path;

use ferry_apt::plan::{Plan, Severity};
use ferry_apt::run::{Layout, Progress, RunError, RunOptions, RunOutcome};
use ferry_apt::saved_plan::{SavedPlan, SavedPlanError, SystemFingerprint};
use ferry_apt::system::{self, SystemRoot};
use ferry_apt::AptStep;
use ferry_apt::{Profile, ProfileError};
use ferry_journal::{EventState, Journal, Outcome, Step as _, StepObserver, StepState};

use crate::cli::{Global, PlanArgs, RollbackArgs, RunArgs};
use crate::exit::Exit;
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

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
}

/// The plan as people read it.
pub fn render_plan(plan: &Plan) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "Migration plan: {} on {}\n",
        plan.migration,
        plan.root.display()
    ));
    out.push_str("\nSources\n");
    if plan.sources.is_empty() {
        out.push_str("  (no sources file changes)\n");
    }
    for change in &plan.sources {
        for line in change.diff.lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    if !plan.keys.is_empty() {
        out.push_str("\nKeys\n");
        for key in &plan.keys {
            let note = if key.replaces_existing {
                " (replaces the file there)"
            } else {
                ""
            };
            out.push_str(&format!("  + {}{note}\n", key.path));
        }
    }
    if !plan.targets.is_empty() {
        out.push_str("\nTarget sources (each must answer with a verified Release)\n");
        for target in &plan.targets {
            out.push_str(&format!("  {}\n", target.label()));
        }
    }
    out.push_str(&format!(
        "\nPackages (upgrade = \"{}\")\n",
        plan.upgrade.as_str()
    ));
    let t = &plan.transaction;
    let version = |v: &Option<String>| v.clone().unwrap_or_default();
    let groups: [(&str, &Vec<ferry_apt::apt::Change>); 5] = [
        ("install", &t.install),
        ("upgrade", &t.upgrade),
        ("downgrade", &t.downgrade),
        ("reinstall", &t.reinstall),
        ("remove", &t.remove),
    ];
    if t.is_empty() {
        out.push_str("  (no package changes)\n");
    }
    for (label, changes) in groups {
        for c in changes {
            let versions = match (&c.old_version, &c.new_version) {
                (Some(old), Some(new)) => format!("{old} -> {new}"),
                (None, new) => version(new),
                (old, None) => version(old),
            };
            out.push_str(&format!("  {label:<9} {:<32} {versions}\n", c.name));
        }
    }
    out.push_str(&format!(
        "\n  download {}, installed size {}{}\n",
        mib(plan.download_bytes),
        if plan.installed_size_delta_bytes < 0 {
            "-"
        } else {
            "+"
        },
        mib(plan.installed_size_delta_bytes.unsigned_abs())
    ));
    if !plan.space.is_empty() {
        out.push_str("\nFree space\n");
        for s in &plan.space {
            out.push_str(&format!(
                "  {:<26} {:>12} free, {:>12} needed\n",
                s.path,
                mib(s.free_bytes),
                mib(s.needed_bytes)
            ));
        }
    }
    out.push_str("\nChecks\n");
    if plan.findings.is_empty() {
        out.push_str("  all passed\n");
    }
    for f in &plan.findings {
        let label = match f.severity {
            Severity::Blocker => "BLOCKER",
            Severity::Warning => "warning",
            Severity::Info => "info",
        };
        out.push_str(&format!(
            "  {label:<8} [{}] {}\n           -> {}\n",
            f.key, f.finding, f.remediation
        ));
    }
    out.push_str(if plan.blocked() {
        "\nBlocked: resolve the blockers above; nothing was changed.\n"
    } else {
        "\nReady: `ferry run` would carry this out.\n"
    });
    out
}

/// A plan needs no root: it reads the system and runs apt in a private
/// sandbox. It does need to read apt's sources, keyrings and lists; when
/// this user cannot read some of them, say so now (exit 2) rather than let
/// apt fail in the sandbox and report it as a blocker of the migration.
pub(crate) fn readable_for_plan(root: &SystemRoot, command: &str) -> Result<(), Failure> {
    if system::is_privileged() {
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
        system::effective_uid()
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
    let sandbox = tempfile::Builder::new()
        .prefix("ferry-plan-")
        .tempdir()
        .map_err(|e| Failure::failed(format!("cannot create a temporary directory: {e}")))?;
    let plan = ferry_apt::plan::compute(root.path(), &profile, sandbox.path())
        .map_err(|e| Failure::failed(e.to_string()))?;
    if let (Some(path), Some(fingerprint)) = (&args.save, fingerprint) {
        save_plan(path, fingerprint, &profile, &plan, global)?;
    }
    if global.json {
        render::json(&serde_json::json!({ "blocked": plan.blocked(), "plan": plan }));
    } else {
        print!("{}", render_plan(&plan));
    }
    Ok(if plan.blocked() {
        Exit::Blocked
    } else {
        Exit::Ok
    })
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

/// Progress for people: a line per step, apt's own lines indented; plain
/// lines, so it reads the same on a terminal, in a log and over SSH.
/// Writes never fail the run: when the terminal is gone (an SSH connection
/// dropped), the migration goes on and its log keeps every line.
pub(crate) struct Lines {
    pub json: bool,
}

fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

impl Progress for Lines {
    fn step(&mut self, step: AptStep, state: EventState, message: &str) {
        if self.json {
            return;
        }
        match state {
            EventState::Ini => say(format_args!("==> {}", step.as_str())),
            EventState::Ok => say(format_args!("    {} done", step.as_str())),
            EventState::Error | EventState::Fail => {
                say(format_args!("    {} FAILED: {message}", step.as_str()))
            }
            EventState::Cmdlog => say(format_args!("    {message}")),
            _ => {}
        }
    }

    fn line(&mut self, _step: AptStep, line: &str) {
        if !self.json {
            say(format_args!("    | {line}"));
        }
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
    command.args(["run", "--resume", "--yes"]);
    if no_rollback {
        command.arg("--no-rollback");
    }
    if !global.json {
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
    let mut progress = Lines { json: global.json };
    detach_from_terminal_hangup();
    let outcome = if args.resume {
        ferry_apt::run::resume(root.path(), &options, &mut progress).map_err(run_failure)?
    } else if let Some(path) = args.plan.as_deref() {
        let saved = SavedPlan::load(path).map_err(|e| saved_plan_failure(e, Some(path)))?;
        confirm(args.yes, &saved.profile)?;
        ferry_apt::run::run_saved(root.path(), saved, &options, &mut progress).map_err(
            |e| match e {
                RunError::SavedPlan(e) => saved_plan_failure(e, Some(path)),
                e => run_failure(e),
            },
        )?
    } else {
        let path = args
            .profile
            .as_deref()
            .ok_or_else(|| Failure::bad_input("a profile is needed"))?;
        let profile = load_profile(path)?;
        confirm(args.yes, &profile)?;
        ferry_apt::run::run(root.path(), &profile, &options, &mut progress).map_err(run_failure)?
    };
    finish(outcome, global, args.no_rollback)
}

pub(crate) fn confirm(yes: bool, profile: &Profile) -> Result<(), Failure> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure::bad_input(
            "ferry run changes the system and there is no terminal to ask",
        )
        .hint("review `ferry plan` first, then pass --yes"));
    }
    eprint!("Carry out migration `{}` now? [y/N] ", profile.name);
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
    let (exit, value, text) = match &outcome {
        RunOutcome::Succeeded { id } => (
            Exit::Ok,
            serde_json::json!({ "outcome": "succeeded", "migration": id }),
            format!("Migration {id} complete."),
        ),
        RunOutcome::Blocked { plan } => {
            if !global.json {
                print!("{}", render_plan(plan));
            }
            (
                Exit::Blocked,
                serde_json::json!({ "outcome": "blocked", "plan": plan }),
                "Blocked by the plan's checks; nothing was changed.".to_string(),
            )
        }
        RunOutcome::FailedUnchanged { id, step, error } => (
            Exit::Failed,
            serde_json::json!({ "outcome": "failed", "migration": id, "step": step, "error": error, "changed": false }),
            format!("Migration {id} failed at {}: {error}\nNothing was changed.", step.as_str()),
        ),
        RunOutcome::RolledBack { id, step, error, report } => (
            Exit::RolledBack,
            serde_json::json!({ "outcome": "rolled-back", "migration": id, "step": step, "error": error, "rollback": report }),
            format!(
                "Migration {id} failed at {}: {error}\nRolled back: the system equals its backup again.",
                step.as_str()
            ),
        ),
        RunOutcome::RollbackIncomplete { id, step, error, differences } => (
            Exit::RollbackIncomplete,
            serde_json::json!({ "outcome": "rollback-incomplete", "migration": id, "step": step, "error": error, "differences": differences }),
            format!(
                "Migration {id} failed at {}: {error}\nThe rollback is incomplete. Manual action needed for:\n  {}",
                step.as_str(),
                differences.join("\n  ")
            ),
        ),
        RunOutcome::Restart { id, executable } => (
            Exit::Failed,
            serde_json::json!({ "outcome": "in-progress", "migration": id, "restart": executable }),
            format!(
                "Migration {id} continues under {}: run `ferry run --resume --yes`.",
                executable.display()
            ),
        ),
        RunOutcome::FailedLeftAsIs { id, step, error } => (
            Exit::Failed,
            serde_json::json!({ "outcome": "failed", "migration": id, "step": step, "error": error, "changed": true }),
            format!(
                "Migration {id} failed at {}: {error}\nLeft as it is (--no-rollback); `ferry rollback {id}` restores the backup.",
                step.as_str()
            ),
        ),
    };
    if global.json {
        render::json(&value);
    } else {
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), "{text}");
    }
    exit
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

fn time(seconds: Option<u64>) -> String {
    seconds
        .map(|s| ferry_journal::rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_secs(s)))
        .unwrap_or_default()
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
                system::effective_uid()
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
    let Some(journal) = layout.journals().pop() else {
        if global.json {
            render::json(&serde_json::json!({ "migration": null }));
        } else {
            println!("No migration has run on this system.");
        }
        return Ok(Exit::Ok);
    };
    if global.json {
        render::json(&serde_json::json!({
            "migration": journal,
            "log": layout.log(&journal.id),
            "events": layout.log_dir().join("events.jsonl"),
            "backup": layout.backup_dir(&journal.id),
        }));
        return Ok(Exit::Ok);
    }
    print!("{}", render_status(&journal, &layout));
    Ok(Exit::Ok)
}

pub fn render_status(journal: &Journal<AptStep>, layout: &Layout) -> String {
    let mut out = format!(
        "Migration {} (profile {}): {}\n",
        journal.id,
        journal.profile,
        outcome_name(journal.outcome)
    );
    let rows: Vec<Vec<String>> = journal
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
                time(r.started),
                time(r.finished),
                r.error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    out.push_str(&render::table(
        &["STEP", "STATE", "STARTED", "FINISHED", "ERROR"],
        &rows,
    ));
    out.push_str(&format!(
        "log: {}\nevents: {}\nbackup: {}\n",
        layout.log(&journal.id).display(),
        layout.log_dir().join("events.jsonl").display(),
        layout.backup_dir(&journal.id).display()
    ));
    out
}

pub fn history(global: &Global, root: &SystemRoot) -> Result<Exit, Failure> {
    let layout = Layout::new(root.path());
    readable_journals(&layout, "ferry history")?;
    let journals = layout.journals();
    if global.json {
        render::json(&serde_json::json!({ "migrations": journals }));
        return Ok(Exit::Ok);
    }
    if journals.is_empty() {
        println!("No migration has run on this system.");
        return Ok(Exit::Ok);
    }
    let rows: Vec<Vec<String>> = journals
        .iter()
        .map(|j| {
            let last = j.steps.iter().rev().find(|r| r.state != StepState::Pending);
            vec![
                j.id.clone(),
                j.profile.clone(),
                outcome_name(j.outcome).to_string(),
                last.map(|r| r.step.as_str().to_string())
                    .unwrap_or_default(),
                time(Some(j.created)),
            ]
        })
        .collect();
    print!(
        "{}",
        render::table(
            &["MIGRATION", "PROFILE", "OUTCOME", "LAST STEP", "CREATED"],
            &rows
        )
    );
    Ok(Exit::Ok)
}

pub fn rollback(args: RollbackArgs, global: &Global, root: &SystemRoot) -> Result<Exit, Failure> {
    let (id, report) =
        ferry_apt::run::rollback_migration(root.path(), args.id.as_deref()).map_err(run_failure)?;
    let exit = if report.complete() {
        Exit::Ok
    } else {
        Exit::RollbackIncomplete
    };
    if global.json {
        render::json(
            &serde_json::json!({ "migration": id, "complete": report.complete(), "rollback": report }),
        );
    } else if report.complete() {
        println!(
            "Rolled back {id}: reinstalled {}, purged {}. The installed packages and /etc/apt equal the backup.",
            report.reinstalled.len(),
            report.purged.len()
        );
    } else {
        println!("Rollback of {id} is incomplete. Manual action needed for:");
        for d in &report.differences {
            println!("  {d}");
        }
    }
    Ok(exit)
}

#[cfg(test)]
mod tests {
    //! What people and scripts see of a plan and a status, reviewed as
    //! snapshots (`cargo insta review` after an intended change).

    use super::*;
    use ferry_apt::apt::{Change, Transaction};
    use ferry_apt::plan::{Finding, FindingKey, KeyInstall, SourcesChange, SpaceCheck};

    fn change(name: &str, old: Option<&str>, new: Option<&str>) -> Change {
        Change {
            name: name.into(),
            arch: Some("all".into()),
            old_version: old.map(Into::into),
            new_version: new.map(Into::into),
            from: new.map(|_| "new-org:stable/stable".into()),
        }
    }

    fn plan() -> Plan {
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
            targets: vec![ferry_apt::target::TargetSource {
                uri: "http://new.example.org/acme".into(),
                suite: "stable".into(),
                keyrings: vec!["/usr/share/keyrings/new-org.gpg".into()],
                inline_key: false,
            }],
            upgrade: ferry_apt::profile::Upgrade::Full,
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
                },
                Finding {
                    key: FindingKey::HeldPackage("acme-tools".into()),
                    severity: Severity::Info,
                    finding: "acme-tools is held and stays as it is".into(),
                    remediation: "nothing to do".into(),
                },
            ],
        }
    }

    #[test]
    fn plan_for_people() {
        insta::assert_snapshot!(render_plan(&plan()));
    }

    #[test]
    fn plan_as_json() {
        let p = plan();
        insta::assert_json_snapshot!(serde_json::json!({ "blocked": p.blocked(), "plan": p }));
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
        for record in &mut j.steps {
            record.started = record.started.map(|_| 1_795_348_800);
            record.finished = record.finished.map(|_| 1_795_348_801);
        }
        j
    }

    #[test]
    fn status_for_people() {
        let layout = Layout::new(Path::new("/"));
        insta::assert_snapshot!(render_status(&journal(), &layout));
    }

    #[test]
    fn status_as_json() {
        insta::assert_json_snapshot!(journal());
    }
}
