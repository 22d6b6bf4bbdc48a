//! The journal of a run: which step it is at, written atomically before and
//! after every step, so a run killed at any instant resumes or rolls back
//! from what is on disk — never from a half-written file.
//!
//! Each kind of run names its steps with its own enum implementing `Step`;
//! the journal accepts only legal transitions: a step starts only when it is
//! the next one, finishes only while it runs, and a finished step never runs
//! again. An illegal transition is an error, never a silent skip. Not for
//! doing the steps, nor for the backup.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A step of one kind of run. Its serde form is its stable name (the one
/// `as_str` returns), as it is stored in `state.json`.
pub trait Step: Copy + Eq + fmt::Debug + Serialize + DeserializeOwned + 'static {
    /// Every step, in the order a run does them.
    const ALL: &'static [Self];

    /// The stable name, in journals, events and the CLI.
    fn as_str(self) -> &'static str;

    /// Whether the system may differ from before the run once this step
    /// started: a failure from here on needs a rollback, not just a stop.
    fn changes_system(self) -> bool;

    /// Whether the installed software may have changed once this step
    /// started: from here on, going back means reinstalling from the backup,
    /// and an interrupted step leaves the package manager to finish first.
    fn changes_packages(self) -> bool;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepState {
    Pending,
    Running,
    Done,
    Failed,
}

/// Where the run as a whole stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    InProgress,
    Succeeded,
    Failed,
    RolledBack,
    RollbackIncomplete,
}

impl Outcome {
    pub fn is_terminal(self) -> bool {
        self != Outcome::InProgress
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(deserialize = "S: Step"))]
pub struct StepRecord<S: Step> {
    pub step: S,
    pub state: StepState,
    pub started: Option<u64>,
    pub finished: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When the step last began, in milliseconds since the epoch: seconds
    /// are too coarse to show where a run of a few seconds spends them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_ms: Option<u64>,
    /// Its wall time, from its last beginning to its end (a step resumed
    /// after a crash counts the attempt that finished it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_ms: Option<u64>,
}

/// The journal of one run, as stored in `/var/lib/ferry/<id>/state.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(deserialize = "S: Step"))]
pub struct Journal<S: Step> {
    /// Format of this file; a newer ferry reads older ones.
    pub format: u32,
    pub id: String,
    /// The name of what the run was told to do (a migration profile).
    pub profile: String,
    pub profile_sha256: String,
    pub created: u64,
    pub outcome: Outcome,
    pub steps: Vec<StepRecord<S>>,
    /// Every ferry process that drove the run, in order: a self-upgrade
    /// shows as a second driver running the new binary.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drivers: Vec<Driver>,
}

/// One ferry process that worked on a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Driver {
    /// The version the binary was built as.
    pub version: String,
    /// The binary's path, as the process found it.
    pub executable: String,
    /// The version of the `ferry` package installed in the root when the
    /// process started, if it is installed as a package.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_version: Option<String>,
    pub started: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("step `{step}` cannot start: {why}")]
    IllegalTransition { step: &'static str, why: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a ferry journal: {source}", path.display())]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// Milliseconds since the Unix epoch, for step wall times.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The format this ferry writes in `Journal::format`; readers of a journal
/// compare against it.
pub const JOURNAL_FORMAT: u32 = 1;

/// Seconds since the Unix epoch, as the journal records times.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl<S: Step> Journal<S> {
    pub fn new(id: &str, profile: &str, profile_sha256: &str) -> Self {
        Journal {
            format: JOURNAL_FORMAT,
            id: id.to_string(),
            profile: profile.to_string(),
            profile_sha256: profile_sha256.to_string(),
            created: now(),
            outcome: Outcome::InProgress,
            drivers: Vec::new(),
            steps: S::ALL
                .iter()
                .map(|&step| StepRecord {
                    step,
                    state: StepState::Pending,
                    started: None,
                    finished: None,
                    error: None,
                    started_ms: None,
                    wall_ms: None,
                })
                .collect(),
        }
    }

    /// The record of `step`, by name: a journal written before a step
    /// existed has no record of it, and that step is skipped.
    fn record_mut(&mut self, step: S) -> Option<&mut StepRecord<S>> {
        self.steps.iter_mut().find(|r| r.step == step)
    }

    /// The step a run (or a resumed run) must do next: the first not done.
    pub fn next_step(&self) -> Option<S> {
        self.steps
            .iter()
            .find(|r| r.state != StepState::Done)
            .map(|r| r.step)
    }

    /// The step that was running when the process died, if any.
    pub fn interrupted_step(&self) -> Option<S> {
        self.steps
            .iter()
            .find(|r| r.state == StepState::Running)
            .map(|r| r.step)
    }

    /// Whether the installed packages may differ from the backup.
    pub fn packages_touched(&self) -> bool {
        self.steps
            .iter()
            .any(|r| r.step.changes_packages() && r.state != StepState::Pending)
    }

    /// Marks `step` running. Legal only for the next step of a run in
    /// progress; a step interrupted while running may start again (resume).
    pub fn begin(&mut self, step: S) -> Result<(), JournalError> {
        let illegal = |why: String| JournalError::IllegalTransition {
            step: step.as_str(),
            why,
        };
        if self.outcome.is_terminal() {
            return Err(illegal(format!(
                "the migration has ended ({:?})",
                self.outcome
            )));
        }
        match self.next_step() {
            Some(next) if next == step => {}
            Some(next) => return Err(illegal(format!("the next step is `{}`", next.as_str()))),
            None => return Err(illegal("every step is done".into())),
        }
        let Some(record) = self.record_mut(step) else {
            return Err(illegal("this journal has no such step".into()));
        };
        if record.state == StepState::Failed {
            return Err(illegal("it failed; roll back first".into()));
        }
        record.state = StepState::Running;
        record.started = Some(now());
        record.started_ms = Some(now_ms());
        record.wall_ms = None;
        record.error = None;
        Ok(())
    }

    /// Marks the running `step` done or failed; the last step done ends the
    /// run as succeeded.
    pub fn finish(&mut self, step: S, result: Result<(), String>) -> Result<(), JournalError> {
        let not = |why: &str| JournalError::IllegalTransition {
            step: step.as_str(),
            why: why.into(),
        };
        let Some(record) = self.record_mut(step) else {
            return Err(not("this journal has no such step"));
        };
        if record.state != StepState::Running {
            return Err(not("it is not running"));
        }
        record.finished = Some(now());
        record.wall_ms = record
            .started_ms
            .map(|started| now_ms().saturating_sub(started));
        match result {
            Ok(()) => record.state = StepState::Done,
            Err(error) => {
                record.state = StepState::Failed;
                record.error = Some(error);
                self.outcome = Outcome::Failed;
            }
        }
        if self.next_step().is_none() {
            self.outcome = Outcome::Succeeded;
        }
        Ok(())
    }

    /// Reads a journal written by `save`.
    pub fn load(path: &Path) -> Result<Self, JournalError> {
        let bytes = fs::read(path).map_err(|source| JournalError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        serde_json::from_slice(&bytes).map_err(|source| JournalError::Corrupt {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Writes the journal atomically (see `write_atomic`).
    pub fn save(&self, path: &Path) -> Result<(), JournalError> {
        let mut bytes =
            serde_json::to_vec_pretty(self).map_err(|source| JournalError::Corrupt {
                path: path.to_path_buf(),
                source,
            })?;
        bytes.push(b'\n');
        crate::write_atomic(path, &bytes).map_err(|source| JournalError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// A test seam: told of every step right after the journal recording it as
/// done is on disk. Crash tests install one that stops the process there,
/// as a power cut would; a normal run has none.
#[derive(Clone)]
pub struct StepObserver<S>(Arc<dyn Fn(S) + Send + Sync>);

impl<S> StepObserver<S> {
    pub fn new(observe: impl Fn(S) + Send + Sync + 'static) -> Self {
        StepObserver(Arc::new(observe))
    }

    pub fn step_done(&self, step: S) {
        (self.0)(step)
    }
}

impl<S> fmt::Debug for StepObserver<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StepObserver")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Steps of a small run, to test the journal without any real one.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "kebab-case")]
    enum Demo {
        Check,
        Save,
        Change,
        Verify,
    }

    impl Step for Demo {
        const ALL: &'static [Demo] = &[Demo::Check, Demo::Save, Demo::Change, Demo::Verify];
        fn as_str(self) -> &'static str {
            match self {
                Demo::Check => "check",
                Demo::Save => "save",
                Demo::Change => "change",
                Demo::Verify => "verify",
            }
        }
        fn changes_system(self) -> bool {
            matches!(self, Demo::Change | Demo::Verify)
        }
        fn changes_packages(self) -> bool {
            self.changes_system()
        }
    }

    #[test]
    fn a_step_that_is_not_next_neither_begins_nor_finishes() {
        let mut j: Journal<Demo> = Journal::new("m1", "move", "00");
        assert_eq!(j.next_step(), Some(Demo::Check));
        assert!(matches!(
            j.begin(Demo::Save),
            Err(JournalError::IllegalTransition { step: "save", .. })
        ));
        assert!(j.finish(Demo::Check, Ok(())).is_err(), "not running yet");
        j.begin(Demo::Check).unwrap();
        assert!(j.finish(Demo::Save, Ok(())).is_err());
        j.finish(Demo::Check, Ok(())).unwrap();
        assert!(
            j.begin(Demo::Check).is_err(),
            "a done step never runs again"
        );
        assert_eq!(j.next_step(), Some(Demo::Save));
        for step in &Demo::ALL[1..] {
            j.begin(*step).unwrap();
            j.finish(*step, Ok(())).unwrap();
        }
        assert_eq!(j.outcome, Outcome::Succeeded);
        assert!(j.begin(Demo::Verify).is_err());
    }

    #[test]
    fn a_failed_step_ends_the_run_and_cannot_restart() {
        let mut j: Journal<Demo> = Journal::new("m1", "move", "00");
        j.begin(Demo::Check).unwrap();
        j.finish(Demo::Check, Err("not enough space".into()))
            .unwrap();
        assert_eq!(j.outcome, Outcome::Failed);
        assert!(j.begin(Demo::Check).is_err());
        assert_eq!(j.steps[0].error.as_deref(), Some("not enough space"));
    }

    #[test]
    fn an_interrupted_step_is_found_and_may_start_again() {
        let mut j: Journal<Demo> = Journal::new("m1", "move", "00");
        for step in [Demo::Check, Demo::Save] {
            j.begin(step).unwrap();
            j.finish(step, Ok(())).unwrap();
        }
        assert!(!j.packages_touched());
        j.begin(Demo::Change).unwrap();
        // The process dies here; the next start reads this state.
        assert_eq!(j.interrupted_step(), Some(Demo::Change));
        assert!(j.packages_touched());
        j.begin(Demo::Change).unwrap();
    }

    #[test]
    fn a_finished_step_has_its_wall_time_and_an_old_journal_reads_without_one() {
        let mut j: Journal<Demo> = Journal::new("m1", "move", "00");
        j.begin(Demo::Check).unwrap();
        assert_eq!(j.steps[0].wall_ms, None, "running: no time yet");
        std::thread::sleep(std::time::Duration::from_millis(30));
        j.finish(Demo::Check, Ok(())).unwrap();
        let wall = j.steps[0].wall_ms.expect("a wall time");
        assert!((30..10_000).contains(&wall), "{wall} ms");
        // Begun again after a crash: the attempt that finishes counts.
        j.begin(Demo::Save).unwrap();
        j.begin(Demo::Save).unwrap();
        j.finish(Demo::Save, Ok(())).unwrap();
        assert!(j.steps[1].wall_ms.unwrap() < wall);

        let old = r#"{"format":1,"id":"m0","profile":"p","profile_sha256":"00",
            "created":1,"outcome":"in-progress","steps":[{"step":"check",
            "state":"done","started":1,"finished":2}]}"#;
        let old: Journal<Demo> = serde_json::from_str(old).unwrap();
        assert_eq!(old.steps[0].wall_ms, None);
    }

    #[test]
    fn save_and_load_round_trip_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut j: Journal<Demo> = Journal::new("m1", "move", "ab");
        j.save(&path).unwrap();
        j.begin(Demo::Check).unwrap();
        j.save(&path).unwrap();
        assert_eq!(Journal::<Demo>::load(&path).unwrap(), j);
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(leftovers.len(), 1, "no temporary files stay behind");
        fs::write(&path, b"{ half").unwrap();
        assert!(matches!(
            Journal::<Demo>::load(&path),
            Err(JournalError::Corrupt { .. })
        ));
    }

    #[test]
    fn a_step_unknown_to_this_kind_of_run_is_refused_on_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let j: Journal<Demo> = Journal::new("m1", "move", "ab");
        let text = serde_json::to_string(&j)
            .unwrap()
            .replace("\"save\"", "\"flash\"");
        fs::write(&path, text).unwrap();
        assert!(matches!(
            Journal::<Demo>::load(&path),
            Err(JournalError::Corrupt { .. })
        ));
    }

    #[test]
    fn a_journal_without_a_step_skips_it() {
        let mut j: Journal<Demo> = Journal::new("m1", "move", "00");
        j.steps.retain(|r| r.step != Demo::Save);
        let mut j: Journal<Demo> =
            serde_json::from_str(&serde_json::to_string(&j).unwrap()).unwrap();
        let mut ran = Vec::new();
        while let Some(step) = j.next_step() {
            j.begin(step).unwrap();
            j.finish(step, Ok(())).unwrap();
            ran.push(step);
        }
        assert_eq!(ran, [Demo::Check, Demo::Change, Demo::Verify]);
        assert_eq!(j.outcome, Outcome::Succeeded);
        assert!(j.begin(Demo::Save).is_err());
    }

    #[test]
    fn the_observer_is_told_each_step() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        let observer = StepObserver::new(move |s: Demo| record.lock().unwrap().push(s));
        observer.step_done(Demo::Check);
        observer.clone().step_done(Demo::Save);
        assert_eq!(*seen.lock().unwrap(), [Demo::Check, Demo::Save]);
    }
}
