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

use crate::deadline::{self, DeadlinePassed};
use crate::flasher::FlasherJournal;
use crate::steps::{TakeoverJournal, DATA_RECORD, OLD_ROOT_RECORD};

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
    /// Strategy flasher: the new OS runs, booted once, and has not
    /// confirmed yet.
    Unconfirmed,
    /// Strategy flasher: the new OS was booted once, did not confirm, and
    /// the old OS came back.
    FellBack,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepTime {
    /// The step's name in its strategy's journal.
    pub step: String,
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
    /// Strategy flasher, fell back: the new OS's report-in deadline
    /// rebooted it (its note on the old root), rather than a boot that
    /// never reached it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline_passed: Option<DeadlinePassed>,
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
        let journal = View::load(&path)?;
        // The old OS keeps its events in the shared log, the new OS's
        // record a copy of this takeover's.
        let log = match running {
            RunningOs::New => dir.join("events.jsonl"),
            RunningOs::Old => root.join("var/log/ferry/events.jsonl"),
        };
        let events = fs::read_to_string(log)
            .map(|t| t.lines().filter(|l| l.contains(&journal.id)).count())
            .unwrap_or(0);
        let seen = Seen {
            events,
            deadline_passed: match running {
                RunningOs::Old => deadline::passed(root, &journal.id),
                RunningOs::New => None,
            },
            deadline_armed: fs::read_to_string(root.join("proc/cmdline"))
                .ok()
                .and_then(|c| deadline::armed(&c)),
        };
        return Ok(Some(judge(journal, running, path, seen)));
    }
    Ok(None)
}

/// A journal of either strategy, by its steps' names.
struct View {
    id: String,
    outcome: Outcome,
    flasher: bool,
    steps: Vec<StepTime>,
}

impl View {
    fn of<S: ferry_journal::Step>(journal: ferry_journal::Journal<S>, flasher: bool) -> View {
        View {
            id: journal.id,
            outcome: journal.outcome,
            flasher,
            steps: journal
                .steps
                .into_iter()
                .map(|r| StepTime {
                    step: r.step.as_str().to_string(),
                    state: r.state,
                    seconds: r.started.zip(r.finished).map(|(s, f)| f.saturating_sub(s)),
                    error: r.error,
                })
                .collect(),
        }
    }

    fn load(path: &Path) -> Result<View, StatusError> {
        match TakeoverJournal::load(path) {
            Ok(journal) => Ok(View::of(journal, false)),
            Err(ram) => FlasherJournal::load(path)
                .map(|journal| View::of(journal, true))
                .map_err(|_| StatusError {
                    path: path.to_path_buf(),
                    reason: ram.to_string(),
                }),
        }
    }

    fn state(&self, step: &str) -> StepState {
        self.steps
            .iter()
            .find(|r| r.step == step)
            .map_or(StepState::Pending, |r| r.state)
    }
}

/// What besides the journal the status is judged from.
struct Seen {
    events: usize,
    deadline_passed: Option<DeadlinePassed>,
    /// The report-in deadline on this boot's kernel command line.
    deadline_armed: Option<u32>,
}

fn judge(journal: View, running: RunningOs, record: PathBuf, seen: Seen) -> TakeoverStatus {
    let failed = journal.steps.iter().find(|r| r.state == StepState::Failed);
    let error = failed.and_then(|r| r.error.clone()).unwrap_or_default();
    let flashed = journal.state("flash") != StepState::Pending;
    let waiting = journal.flasher && journal.state("confirm") == StepState::Running;
    let (verdict, summary) = match (running, journal.outcome) {
        (RunningOs::New, Outcome::Succeeded) => (
            Verdict::Completed,
            "the takeover completed and this is the new OS".to_string(),
        ),
        (RunningOs::New, Outcome::InProgress) if waiting => (
            Verdict::Unconfirmed,
            match seen.deadline_armed {
                Some(seconds) => format!("this is the new OS, booted once: run `ferry takeover confirm` to keep it; unless it runs within {seconds} s of this boot, the machine reboots into the old OS"),
                None => "this is the new OS, booted once: run `ferry takeover confirm` to keep it, or the next boot is the old OS's".to_string(),
            },
        ),
        (RunningOs::New, _) => (
            Verdict::FailedAfterFlash,
            format!("the new OS was written but the takeover did not complete: {error}"),
        ),
        (RunningOs::Old, Outcome::InProgress) if waiting => (
            Verdict::FellBack,
            match &seen.deadline_passed {
                Some(d) => format!("the new OS was booted once and did not confirm within its deadline ({} s); it rebooted at {} (its clock) and the old OS came back", d.seconds, d.new_os_time),
                None => "the new OS was booted once and did not confirm, and the old OS came back (the one-shot boot fell back)".to_string(),
            },
        ),
        (RunningOs::Old, Outcome::Succeeded) if journal.flasher => (
            Verdict::Completed,
            "the takeover completed (the new OS confirmed); this is the old OS, booted by hand".to_string(),
        ),
        (RunningOs::Old, Outcome::InProgress) if journal.state("handoff") == StepState::Running => (
            Verdict::Interrupted,
            "stage 2 started and did not report back, and the old OS came back: nothing was written (a reset, a hang caught by the watchdog, or a power cut before the flash)".to_string(),
        ),
        (RunningOs::Old, Outcome::InProgress) => (
            Verdict::InProgress,
            "stage 1 is running or was stopped; the old OS is unchanged".to_string(),
        ),
        (RunningOs::Old, _) if flashed && journal.flasher => (
            Verdict::FailedAfterFlash,
            format!("writing the new OS beside the old one failed: {error}; the old OS is intact, the spare partition's space is not"),
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
        id: journal.id,
        verdict,
        running,
        summary,
        record,
        steps: journal.steps,
        events: seen.events,
        deadline_passed: seen.deadline_passed,
    }
}
