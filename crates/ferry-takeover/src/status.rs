//! `ferry takeover status`: what became of a takeover, read from the record
//! it left — in the new OS's data partition when stage 2 finished, or in
//! the old root when the old OS came back — and how long each step took.
//!
//! Where the record is found says which OS is running: the old root's
//! record is only visible from the old OS.

use std::fs;
use std::path::{Path, PathBuf};

use ferry_journal::{Outcome, StepState};
use serde::Serialize;

use crate::steps::{TakeoverJournal, TakeoverStep, DATA_RECORD, OLD_ROOT_RECORD};

#[derive(Debug, thiserror::Error)]
#[error("{}: {reason}", path.display())]
pub struct StatusError {
    pub path: PathBuf,
    pub reason: String,
}

/// The OS this status was read on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunningOs {
    /// The OS the takeover wrote (its record is in the data partition).
    New,
    /// The OS the takeover started from (its record is in the old root).
    Old,
}

/// What became of the takeover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Every step done; the new OS runs.
    Completed,
    /// Failed before the flash; the old OS is unchanged.
    FailedBeforeFlash,
    /// Stage 2 started and never reported back, and the old OS came back:
    /// a reset, a hang caught by the watchdog or a power cut before the
    /// flash.
    Interrupted,
    /// Failed once the disk was being written.
    FailedAfterFlash,
    /// Stage 1 is still running (or was killed).
    InProgress,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepTime {
    pub step: TakeoverStep,
    pub state: StepState,
    /// Wall time in whole seconds, when the step ran.
    pub seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TakeoverStatus {
    pub id: String,
    pub verdict: Verdict,
    pub running: RunningOs,
    /// One sentence for people.
    pub summary: String,
    /// The record read.
    pub record: PathBuf,
    pub steps: Vec<StepTime>,
    /// The events the record holds.
    pub events: usize,
}

impl TakeoverStatus {
    pub fn completed(&self) -> bool {
        self.verdict == Verdict::Completed
    }
}

/// Mount points of the system at `root`, from its `proc/self/mounts`.
fn mount_points(root: &Path) -> Vec<PathBuf> {
    let text = fs::read_to_string(root.join("proc/self/mounts")).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(|p| root.join(p.trim_start_matches('/')))
        .collect()
}

/// Finds and reads the takeover record of the system at `root`: a data
/// partition's record first (the new OS), then the old root's.
pub fn status(root: &Path) -> Result<Option<TakeoverStatus>, StatusError> {
    let mut candidates: Vec<(PathBuf, RunningOs)> = mount_points(root)
        .into_iter()
        .map(|p| (p.join(DATA_RECORD), RunningOs::New))
        .collect();
    candidates.push((root.join(OLD_ROOT_RECORD), RunningOs::Old));
    for (dir, running) in candidates {
        let path = dir.join("journal.json");
        if !path.is_file() {
            continue;
        }
        let journal = TakeoverJournal::load(&path).map_err(|e| StatusError {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let events = fs::read_to_string(dir.join("events.jsonl"))
            .map(|t| t.lines().filter(|l| l.contains(&journal.id)).count())
            .unwrap_or(0);
        return Ok(Some(judge(&journal, running, path, events)));
    }
    Ok(None)
}

fn judge(
    journal: &TakeoverJournal,
    running: RunningOs,
    record: PathBuf,
    events: usize,
) -> TakeoverStatus {
    let state = |step: TakeoverStep| {
        journal
            .steps
            .iter()
            .find(|r| r.step == step)
            .map_or(StepState::Pending, |r| r.state)
    };
    let failed = journal.steps.iter().find(|r| r.state == StepState::Failed);
    let error = failed.and_then(|r| r.error.clone()).unwrap_or_default();
    let flashed = state(TakeoverStep::Flash) != StepState::Pending;
    let (verdict, summary) = match (running, journal.outcome) {
        (RunningOs::New, Outcome::Succeeded) => (
            Verdict::Completed,
            "the takeover completed and this is the new OS".to_string(),
        ),
        (RunningOs::New, _) => (
            Verdict::FailedAfterFlash,
            format!("the new OS was written but the takeover did not complete: {error}"),
        ),
        (RunningOs::Old, Outcome::InProgress) if state(TakeoverStep::Handoff) == StepState::Running => (
            Verdict::Interrupted,
            "stage 2 started and did not report back, and the old OS came back: nothing was written (a reset, a hang caught by the watchdog, or a power cut before the flash)".to_string(),
        ),
        (RunningOs::Old, Outcome::InProgress) => (
            Verdict::InProgress,
            "stage 1 is running or was stopped; the old OS is unchanged".to_string(),
        ),
        (RunningOs::Old, _) if flashed => (
            Verdict::FailedAfterFlash,
            format!("the flash started and failed: {error}"),
        ),
        (RunningOs::Old, _) => (
            Verdict::FailedBeforeFlash,
            format!("the takeover failed before anything was written; this is the old OS, unchanged: {error}"),
        ),
    };
    TakeoverStatus {
        id: journal.id.clone(),
        verdict,
        running,
        summary,
        record,
        steps: journal
            .steps
            .iter()
            .map(|r| StepTime {
                step: r.step,
                state: r.state,
                seconds: r.started.zip(r.finished).map(|(s, f)| f.saturating_sub(s)),
                error: r.error.clone(),
            })
            .collect(),
        events,
    }
}
