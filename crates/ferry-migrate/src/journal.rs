//! The journal of a migration: which step it is at, written atomically
//! before and after every step, so a run killed at any instant resumes or
//! rolls back from what is on disk — never from a half-written file.
//!
//! Steps are an enum and only legal transitions are accepted: a step starts
//! only after the one before it finished, and a finished step never runs
//! again. Not for doing the steps (see `run`) or for the backup itself.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The steps of a run, in the order they happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    Preflight,
    Backup,
    Sources,
    Update,
    Download,
    /// A newer ferry in the target sources is installed first, and the run
    /// continues under it.
    SelfUpgrade,
    Packages,
    Upgrade,
    Verify,
}

impl Step {
    pub const ALL: [Step; 9] = [
        Step::Preflight,
        Step::Backup,
        Step::Sources,
        Step::Update,
        Step::Download,
        Step::SelfUpgrade,
        Step::Packages,
        Step::Upgrade,
        Step::Verify,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Step::Preflight => "preflight",
            Step::Backup => "backup",
            Step::Sources => "sources",
            Step::Update => "update",
            Step::Download => "download",
            Step::SelfUpgrade => "self-upgrade",
            Step::Packages => "packages",
            Step::Upgrade => "upgrade",
            Step::Verify => "verify",
        }
    }

    /// Whether the installed package set may have changed once this step
    /// started: from here on, going back means reinstalling from the backup.
    pub fn changes_packages(self) -> bool {
        self >= Step::SelfUpgrade
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepState {
    Pending,
    Running,
    Done,
    Failed,
}

/// Where the migration as a whole stands.
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
pub struct StepRecord {
    pub step: Step,
    pub state: StepState,
    pub started: Option<u64>,
    pub finished: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The journal of one migration, as stored in `/var/lib/ferry/<id>/state.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    /// Format of this file; a newer ferry reads older ones.
    pub format: u32,
    pub id: String,
    pub profile: String,
    pub profile_sha256: String,
    pub created: u64,
    pub outcome: Outcome,
    pub steps: Vec<StepRecord>,
    /// Every ferry process that drove the migration, in order: a
    /// self-upgrade shows as a second driver running the new binary.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drivers: Vec<Driver>,
}

/// One ferry process that worked on a migration.
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

pub const JOURNAL_FORMAT: u32 = 1;

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Journal {
    pub fn new(id: &str, profile: &str, profile_sha256: &str) -> Self {
        Journal {
            format: JOURNAL_FORMAT,
            id: id.to_string(),
            profile: profile.to_string(),
            profile_sha256: profile_sha256.to_string(),
            created: now(),
            outcome: Outcome::InProgress,
            drivers: Vec::new(),
            steps: Step::ALL
                .iter()
                .map(|&step| StepRecord {
                    step,
                    state: StepState::Pending,
                    started: None,
                    finished: None,
                    error: None,
                })
                .collect(),
        }
    }

    /// The record of `step`, by name: a journal written before a step
    /// existed has no record of it, and that step is skipped.
    fn record(&self, step: Step) -> Option<&StepRecord> {
        self.steps.iter().find(|r| r.step == step)
    }

    fn record_mut(&mut self, step: Step) -> Option<&mut StepRecord> {
        self.steps.iter_mut().find(|r| r.step == step)
    }

    /// The step a run (or a resumed run) must do next: the first not done.
    pub fn next_step(&self) -> Option<Step> {
        self.steps
            .iter()
            .find(|r| r.state != StepState::Done)
            .map(|r| r.step)
    }

    /// The step that was running when the process died, if any.
    pub fn interrupted_step(&self) -> Option<Step> {
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

    /// Marks `step` running. Legal only for the next step of a migration in
    /// progress; a step interrupted while running may start again (resume).
    pub fn begin(&mut self, step: Step) -> Result<(), JournalError> {
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
        record.error = None;
        Ok(())
    }

    /// Marks the running `step` done or failed; the last step done ends the
    /// migration as succeeded.
    pub fn finish(&mut self, step: Step, result: Result<(), String>) -> Result<(), JournalError> {
        if self.record(step).map(|r| r.state) != Some(StepState::Running) {
            return Err(JournalError::IllegalTransition {
                step: step.as_str(),
                why: "it is not running".into(),
            });
        }
        let Some(record) = self.record_mut(step) else {
            return Err(JournalError::IllegalTransition {
                step: step.as_str(),
                why: "this journal has no such step".into(),
            });
        };
        record.finished = Some(now());
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
    pub fn load(path: &Path) -> Result<Journal, JournalError> {
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
        write_atomic(path, &bytes).map_err(|source| JournalError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// Replaces `path` with `bytes` so that a crash at any instant leaves
/// either the old or the new content: write a temporary file in the same
/// directory, fsync it, rename it over the target, fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map_or_else(|| "state".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_run_in_order_and_only_once() {
        let mut j = Journal::new("m1", "move", "00");
        assert_eq!(j.next_step(), Some(Step::Preflight));
        assert!(j.begin(Step::Backup).is_err());
        j.begin(Step::Preflight).unwrap();
        assert!(j.finish(Step::Backup, Ok(())).is_err());
        j.finish(Step::Preflight, Ok(())).unwrap();
        assert!(j.begin(Step::Preflight).is_err());
        assert_eq!(j.next_step(), Some(Step::Backup));
        for step in &Step::ALL[1..] {
            j.begin(*step).unwrap();
            j.finish(*step, Ok(())).unwrap();
        }
        assert_eq!(j.outcome, Outcome::Succeeded);
        assert!(j.begin(Step::Verify).is_err());
    }

    #[test]
    fn a_failed_step_ends_the_migration_and_cannot_restart() {
        let mut j = Journal::new("m1", "move", "00");
        j.begin(Step::Preflight).unwrap();
        j.finish(Step::Preflight, Err("not enough space".into()))
            .unwrap();
        assert_eq!(j.outcome, Outcome::Failed);
        assert!(j.begin(Step::Preflight).is_err());
    }

    #[test]
    fn an_interrupted_step_is_found_and_may_start_again() {
        let mut j = Journal::new("m1", "move", "00");
        for step in [
            Step::Preflight,
            Step::Backup,
            Step::Sources,
            Step::Update,
            Step::Download,
        ] {
            j.begin(step).unwrap();
            j.finish(step, Ok(())).unwrap();
        }
        assert!(!j.packages_touched());
        j.begin(Step::SelfUpgrade).unwrap();
        // The process dies here; the next start reads this state.
        assert_eq!(j.interrupted_step(), Some(Step::SelfUpgrade));
        assert!(j.packages_touched());
        j.begin(Step::SelfUpgrade).unwrap();
    }

    #[test]
    fn save_and_load_round_trip_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut j = Journal::new("m1", "move", "ab");
        j.save(&path).unwrap();
        j.begin(Step::Preflight).unwrap();
        j.save(&path).unwrap();
        assert_eq!(Journal::load(&path).unwrap(), j);
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(leftovers.len(), 1, "no temporary files stay behind");
        fs::write(&path, b"{ half").unwrap();
        assert!(matches!(
            Journal::load(&path),
            Err(JournalError::Corrupt { .. })
        ));
    }

    #[test]
    fn a_journal_from_before_the_self_upgrade_step_still_runs() {
        let mut j = Journal::new("m1", "move", "00");
        j.steps.retain(|r| r.step != Step::SelfUpgrade);
        let text = serde_json::to_string(&j).unwrap();
        let mut j: Journal = serde_json::from_str(&text).unwrap();
        let mut ran = Vec::new();
        while let Some(step) = j.next_step() {
            j.begin(step).unwrap();
            j.finish(step, Ok(())).unwrap();
            ran.push(step);
        }
        assert!(!ran.contains(&Step::SelfUpgrade));
        assert_eq!(ran.len(), Step::ALL.len() - 1);
        assert_eq!(j.outcome, Outcome::Succeeded);
        assert!(j.begin(Step::SelfUpgrade).is_err());
    }
}
