//! The one step runner every kind of run shares: it journals each step
//! before and after it runs, so a run killed at any instant resumes from
//! `state.json`, and it decides what a failure calls for. The steps
//! themselves, and what a rollback does, belong to the kind of run (the apt
//! migration, later a takeover) through the `Steps` trait, and so does
//! what an interrupted step needs before it runs again (`Steps::recover`):
//! resuming is driving a journal that has one, written here once.

use std::path::Path;

use crate::journal::{Journal, JournalError, Step, StepObserver};

/// What the runner tells the kind of run about a step, in this order:
/// `Started`, then `Done` and `Ended`, or `Failed` and `Ended`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepEvent<'a> {
    /// The journal records the step as running.
    Started,
    /// The step succeeded; the journal records it as done.
    Done,
    /// The step failed with this error (as the journal records it); the
    /// journal is about to record it.
    Failed(&'a str),
    /// The step is over, either way, and the journal says so on disk.
    Ended,
}

/// A kind of run, as the runner drives it.
pub trait Steps<S: Step> {
    /// Why a run stops early after a step that succeeded (for the apt run:
    /// ferry upgraded itself and the new binary must take over).
    type Stop;

    /// Why a step failed; its `Display` text is what the journal and the
    /// events record, the value itself goes back to the caller.
    type Error: std::fmt::Display;

    /// Does `step`.
    fn run(&mut self, step: S) -> Result<(), Self::Error>;

    /// Called once, before anything else runs, when the journal says `step`
    /// was running when the process died: the kind of run puts right what a
    /// step killed half-way may have left (for apt, dpkg's unfinished
    /// configuration). `step` then runs again from its start. A recovery
    /// that does not succeed shows when the step runs again, so it reports
    /// its trouble through `report` or its own log, not as an error here.
    fn recover(&mut self, _step: S) {}

    /// Told of each step's progress, to log it and show it.
    fn report(&mut self, step: S, event: StepEvent<'_>);

    /// Asked after each step that succeeded whether the run stops here.
    fn stop_after(&mut self, _step: S) -> Option<Self::Stop> {
        None
    }
}

/// How driving a journal ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Driven<S, T, E> {
    /// Every step is done.
    Completed,
    /// `step` failed; the journal records it and the run's outcome as failed.
    Failed { step: S, error: E },
    /// A step asked to stop the run after it (`Steps::stop_after`).
    Stopped(T),
}

/// Runs the journal's remaining steps in order, saving it to `path` before
/// and after each one; `observer` (a test seam) is told of every step done.
/// A journal whose step was interrupted (a resumed run) has that step
/// recovered first (`Steps::recover`), then run again.
pub fn drive<S: Step, R: Steps<S> + ?Sized>(
    journal: &mut Journal<S>,
    path: &Path,
    steps: &mut R,
    observer: Option<&StepObserver<S>>,
) -> Result<Driven<S, R::Stop, R::Error>, JournalError> {
    if let Some(step) = journal.interrupted_step() {
        steps.recover(step);
    }
    while let Some(step) = journal.next_step() {
        journal.begin(step)?;
        journal.save(path)?;
        steps.report(step, StepEvent::Started);
        match steps.run(step) {
            Ok(()) => {
                journal.finish(step, Ok(()))?;
                journal.save(path)?;
                steps.report(step, StepEvent::Done);
                steps.report(step, StepEvent::Ended);
                if let Some(observer) = observer {
                    observer.step_done(step);
                }
                if let Some(stop) = steps.stop_after(step) {
                    return Ok(Driven::Stopped(stop));
                }
            }
            Err(error) => {
                let text = error.to_string();
                steps.report(step, StepEvent::Failed(&text));
                journal.finish(step, Err(text))?;
                journal.save(path)?;
                steps.report(step, StepEvent::Ended);
                return Ok(Driven::Failed { step, error });
            }
        }
    }
    journal.save(path)?;
    Ok(Driven::Completed)
}

/// What a failed step calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Nothing outside ferry's own state had changed: stop, nothing to undo.
    Stop,
    /// The system changed, and the caller asked not to roll back.
    LeaveAsIs,
    /// The system changed: restore it from the backup.
    RollBack,
}

/// Decides what a failure of `step` calls for.
pub fn after_failure<S: Step>(step: S, no_rollback: bool) -> AfterFailure {
    if !step.changes_system() {
        AfterFailure::Stop
    } else if no_rollback {
        AfterFailure::LeaveAsIs
    } else {
        AfterFailure::RollBack
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{Outcome, StepState};
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "kebab-case")]
    enum Flash {
        Check,
        Write,
        Verify,
    }

    impl Step for Flash {
        const ALL: &'static [Flash] = &[Flash::Check, Flash::Write, Flash::Verify];
        fn as_str(self) -> &'static str {
            match self {
                Flash::Check => "check",
                Flash::Write => "write",
                Flash::Verify => "verify",
            }
        }
        fn changes_system(self) -> bool {
            self != Flash::Check
        }
        fn changes_packages(self) -> bool {
            false
        }
    }

    /// Records what the runner asked and what was on disk at each report.
    struct Recorder<'a> {
        path: &'a Path,
        fail: Option<Flash>,
        stop: Option<Flash>,
        seen: Vec<String>,
    }

    impl<'a> Recorder<'a> {
        fn new(path: &'a Path, fail: Option<Flash>, stop: Option<Flash>) -> Self {
            Recorder {
                path,
                fail,
                stop,
                seen: Vec::new(),
            }
        }
    }

    impl Steps<Flash> for Recorder<'_> {
        type Stop = &'static str;
        type Error = String;
        fn run(&mut self, step: Flash) -> Result<(), String> {
            let on_disk: Journal<Flash> = Journal::load(self.path).unwrap();
            let record = on_disk.steps.iter().find(|r| r.step == step).unwrap();
            assert_eq!(record.state, StepState::Running, "saved before it runs");
            self.seen.push(format!("run {}", step.as_str()));
            match self.fail {
                Some(failing) if failing == step => Err("no space".into()),
                _ => Ok(()),
            }
        }
        fn report(&mut self, step: Flash, event: StepEvent<'_>) {
            self.seen.push(format!("{event:?} {}", step.as_str()));
        }
        fn stop_after(&mut self, step: Flash) -> Option<&'static str> {
            (self.stop == Some(step)).then_some("restart")
        }
        fn recover(&mut self, step: Flash) {
            let on_disk: Journal<Flash> = Journal::load(self.path).unwrap();
            assert_eq!(on_disk.interrupted_step(), Some(step), "what is recovered");
            self.seen.push(format!("recover {}", step.as_str()));
        }
    }

    fn drive_with(
        fail: Option<Flash>,
        stop: Option<Flash>,
    ) -> (
        Driven<Flash, &'static str, String>,
        Vec<String>,
        Journal<Flash>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut journal: Journal<Flash> = Journal::new("f1", "image", "00");
        journal.save(&path).unwrap();
        let mut recorder = Recorder::new(&path, fail, stop);
        let driven = drive(&mut journal, &path, &mut recorder, None).unwrap();
        assert_eq!(
            Journal::<Flash>::load(&path).unwrap(),
            journal,
            "what is on disk"
        );
        (driven, recorder.seen, journal)
    }

    #[test]
    fn a_failing_step_ends_the_run_with_its_error_journaled() {
        let (driven, seen, journal) = drive_with(Some(Flash::Write), None);
        assert_eq!(
            driven,
            Driven::Failed {
                step: Flash::Write,
                error: "no space".into()
            }
        );
        assert_eq!(
            seen[seen.len() - 3..],
            ["run write", "Failed(\"no space\") write", "Ended write"]
        );
        assert_eq!(journal.outcome, Outcome::Failed);
        assert_eq!(journal.steps[1].error.as_deref(), Some("no space"));
        assert_eq!(journal.steps[2].state, StepState::Pending);
    }

    #[test]
    fn a_step_may_stop_the_run_after_it_is_journaled_done() {
        let (driven, _, journal) = drive_with(None, Some(Flash::Check));
        assert_eq!(driven, Driven::Stopped("restart"));
        assert_eq!(journal.next_step(), Some(Flash::Write));
        assert_eq!(journal.outcome, Outcome::InProgress);
    }

    #[test]
    fn every_step_runs_once_in_order_and_the_observer_sees_each() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut journal: Journal<Flash> = Journal::new("f1", "image", "00");
        journal.save(&path).unwrap();
        let mut recorder = Recorder::new(&path, None, None);
        let observed = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let into = std::sync::Arc::clone(&observed);
        let observer = StepObserver::new(move |s: Flash| into.lock().unwrap().push(s));
        let driven = drive(&mut journal, &path, &mut recorder, Some(&observer)).unwrap();
        assert_eq!(driven, Driven::Completed);
        assert_eq!(journal.outcome, Outcome::Succeeded);
        assert_eq!(*observed.lock().unwrap(), Flash::ALL);
        assert_eq!(
            recorder.seen[..4],
            ["Started check", "run check", "Done check", "Ended check"]
        );
        // A finished journal has nothing left to drive.
        let mut again = Recorder::new(&path, None, None);
        assert_eq!(
            drive(&mut journal, &path, &mut again, None).unwrap(),
            Driven::Completed
        );
        assert!(again.seen.is_empty());
    }

    #[test]
    fn an_interrupted_step_is_recovered_once_then_run_again_and_the_rest_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        // A run killed while `write` was running: check done, write running.
        let mut journal: Journal<Flash> = Journal::new("f1", "image", "00");
        journal.begin(Flash::Check).unwrap();
        journal.finish(Flash::Check, Ok(())).unwrap();
        journal.begin(Flash::Write).unwrap();
        journal.save(&path).unwrap();
        let mut journal: Journal<Flash> = Journal::load(&path).unwrap();
        let mut recorder = Recorder::new(&path, None, None);
        let driven = drive(&mut journal, &path, &mut recorder, None).unwrap();
        assert_eq!(driven, Driven::Completed);
        assert_eq!(
            recorder.seen,
            [
                "recover write",
                "Started write",
                "run write",
                "Done write",
                "Ended write",
                "Started verify",
                "run verify",
                "Done verify",
                "Ended verify"
            ]
        );
        assert_eq!(journal.outcome, Outcome::Succeeded);
    }

    #[test]
    fn a_run_with_no_interrupted_step_recovers_nothing() {
        let (driven, seen, _) = drive_with(None, None);
        assert_eq!(driven, Driven::Completed);
        assert!(!seen.iter().any(|s| s.starts_with("recover")), "{seen:?}");
        // Stopped between steps (a self-upgrade's hand-over): nothing was
        // running, so the next driver recovers nothing either.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut journal: Journal<Flash> = Journal::new("f1", "image", "00");
        journal.save(&path).unwrap();
        let mut first = Recorder::new(&path, None, Some(Flash::Check));
        drive(&mut journal, &path, &mut first, None).unwrap();
        let mut second = Recorder::new(&path, None, None);
        drive(&mut journal, &path, &mut second, None).unwrap();
        assert_eq!(second.seen[0], "Started write");
    }

    #[test]
    fn a_failure_is_rolled_back_only_once_the_system_changed() {
        assert_eq!(after_failure(Flash::Check, false), AfterFailure::Stop);
        assert_eq!(after_failure(Flash::Check, true), AfterFailure::Stop);
        assert_eq!(after_failure(Flash::Write, false), AfterFailure::RollBack);
        assert_eq!(after_failure(Flash::Write, true), AfterFailure::LeaveAsIs);
    }
}
