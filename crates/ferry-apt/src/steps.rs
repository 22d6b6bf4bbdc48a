//! The steps of an apt migration run, as the journal records them: their
//! order, their stable names in `state.json`, which of them change the
//! system or its packages, and why one fails (`StepError`). The journal
//! itself (transitions, atomic saves) is ferry-journal's; doing the steps is
//! `run`'s.

use std::path::PathBuf;

use serde::{Deserialize, Serialize, Serializer};

/// The steps of a run, in the order they happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AptStep {
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

impl ferry_journal::Step for AptStep {
    const ALL: &'static [AptStep] = &[
        AptStep::Preflight,
        AptStep::Backup,
        AptStep::Sources,
        AptStep::Update,
        AptStep::Download,
        AptStep::SelfUpgrade,
        AptStep::Packages,
        AptStep::Upgrade,
        AptStep::Verify,
    ];

    fn as_str(self) -> &'static str {
        match self {
            AptStep::Preflight => "preflight",
            AptStep::Backup => "backup",
            AptStep::Sources => "sources",
            AptStep::Update => "update",
            AptStep::Download => "download",
            AptStep::SelfUpgrade => "self-upgrade",
            AptStep::Packages => "packages",
            AptStep::Upgrade => "upgrade",
            AptStep::Verify => "verify",
        }
    }

    /// From the sources step on, the system's files differ from before.
    fn changes_system(self) -> bool {
        self >= AptStep::Sources
    }

    /// From the self-upgrade on, dpkg may have changed the installed set.
    fn changes_packages(self) -> bool {
        self >= AptStep::SelfUpgrade
    }
}

impl AptStep {
    /// The step of this name, as the CLI and the journal spell it.
    pub fn from_name(name: &str) -> Option<AptStep> {
        use ferry_journal::Step;
        AptStep::ALL
            .iter()
            .copied()
            .find(|step| step.as_str() == name)
    }
}

/// Why a step of a run failed. The text is what the journal, the events and
/// the CLI show; automation that needs more matches on the variant.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// apt-get, apt-cache or dpkg could not be started inside the root.
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    /// Waiting for the command failed.
    #[error("{program}: {source}")]
    Wait {
        program: String,
        #[source]
        source: std::io::Error,
    },
    /// apt-get failed (exit status, or an `E:` line where that fails the
    /// step); `detail` is its last `E:` line or its last line, `said` every
    /// `W:`/`E:`/`Err:` line it printed.
    #[error("apt-get {args} failed: {detail}")]
    Apt {
        args: String,
        detail: String,
        said: Vec<String>,
    },
    /// `apt-get update` itself failed or printed an `E:` line.
    #[error("apt-get update failed: {detail}")]
    Update { detail: String, said: Vec<String> },
    /// After the update, a target source has no Release in apt's lists, or
    /// apt said it could not fetch or verify it (`said`, joined in the text).
    #[error("the target source {target} did not answer: {}", said_or_no_release(.said))]
    TargetUnreachable { target: String, said: Vec<String> },
    /// The system after the run is not what the profile and plan say.
    #[error("{}", .problems.join("; "))]
    Verification { problems: Vec<String> },
    /// A profile hook exited unsuccessfully.
    #[error("hook `{run}` failed ({status})")]
    HookFailed { run: String, status: String },
    /// A profile hook ran past its timeout and was killed.
    #[error("hook `{run}` ran longer than {seconds} s")]
    HookTimedOut { run: String, seconds: u64 },
    /// A profile hook could not be started or waited for.
    #[error("hook `{run}`: {source}")]
    Hook {
        run: String,
        #[source]
        source: std::io::Error,
    },
    /// A file the step writes could not be written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Backup(#[from] crate::backup::BackupError),
    #[error(transparent)]
    Lists(#[from] crate::apt_lists::ListsError),
    #[error(transparent)]
    Snapshot(#[from] crate::snapshot::SnapshotError),
}

fn said_or_no_release(said: &[String]) -> String {
    if said.is_empty() {
        "no Release in apt's lists".to_string()
    } else {
        said.join(" | ")
    }
}

/// In JSON a step's error is its text, as the journal records it.
impl Serialize for StepError {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// The lines of a command's output that say something went wrong.
pub(crate) fn trouble_lines(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.starts_with("E:") || l.starts_with("W:") || l.starts_with("Err:"))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_journal::{Journal, Outcome, Step, StepState};

    /// `state.json` as ferry wrote it before the journal was generic: an
    /// interrupted run that a newer ferry must still resume.
    const WRITTEN_BEFORE: &str = r#"{
  "format": 1,
  "id": "acme-org-move-20261122T120000Z",
  "profile": "acme-org-move",
  "profile_sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
  "created": 1795348800,
  "outcome": "in-progress",
  "steps": [
    { "step": "preflight", "state": "done", "started": 1795348800, "finished": 1795348801 },
    { "step": "backup", "state": "done", "started": 1795348801, "finished": 1795348830 },
    { "step": "sources", "state": "done", "started": 1795348830, "finished": 1795348830 },
    { "step": "update", "state": "done", "started": 1795348830, "finished": 1795348840 },
    { "step": "download", "state": "done", "started": 1795348840, "finished": 1795348850 },
    { "step": "self-upgrade", "state": "done", "started": 1795348850, "finished": 1795348851 },
    { "step": "packages", "state": "running", "started": 1795348851, "finished": null },
    { "step": "upgrade", "state": "pending", "started": null, "finished": null },
    { "step": "verify", "state": "pending", "started": null, "finished": null }
  ],
  "drivers": [
    {
      "version": "0.1.0",
      "executable": "/usr/bin/ferry",
      "package_version": "0.1.0-1",
      "started": 1795348800
    }
  ]
}
"#;

    #[test]
    fn a_journal_written_by_the_previous_format_loads_and_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, WRITTEN_BEFORE).unwrap();
        let mut j: Journal<AptStep> = Journal::load(&path).unwrap();
        assert_eq!(j.outcome, Outcome::InProgress);
        assert_eq!(j.interrupted_step(), Some(AptStep::Packages));
        assert!(j.packages_touched());
        assert_eq!(j.drivers[0].package_version.as_deref(), Some("0.1.0-1"));
        assert!(j.begin(AptStep::Upgrade).is_err());
        j.begin(AptStep::Packages).unwrap();
        j.finish(AptStep::Packages, Ok(())).unwrap();
        assert_eq!(j.next_step(), Some(AptStep::Upgrade));
        // Saved again, it has the same shape: every key it had, same values.
        j.save(&path).unwrap();
        let again: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let before: serde_json::Value = serde_json::from_str(WRITTEN_BEFORE).unwrap();
        assert_eq!(again["steps"][5], before["steps"][5]);
        assert_eq!(again["steps"][6]["state"], "done");
        assert_eq!(again["drivers"], before["drivers"]);
        assert_eq!(again["profile_sha256"], before["profile_sha256"]);
    }

    #[test]
    fn a_step_error_reads_as_before_and_is_its_text_in_json() {
        let unreachable = StepError::TargetUnreachable {
            target: "http://127.0.0.1:1/ stable".into(),
            said: vec![],
        };
        assert_eq!(
            unreachable.to_string(),
            "the target source http://127.0.0.1:1/ stable did not answer: no Release in apt's lists"
        );
        let said = StepError::TargetUnreachable {
            target: "t".into(),
            said: vec!["Err:1 t".into(), "W: Failed to fetch t".into()],
        };
        assert_eq!(
            said.to_string(),
            "the target source t did not answer: Err:1 t | W: Failed to fetch t"
        );
        let verify = StepError::Verification {
            problems: vec!["a is not installed".into(), "b is still installed".into()],
        };
        assert_eq!(
            verify.to_string(),
            "a is not installed; b is still installed"
        );
        assert_eq!(
            serde_json::to_value(&verify).unwrap(),
            serde_json::Value::from("a is not installed; b is still installed")
        );
        let apt = StepError::Apt {
            args: "-y install x".into(),
            detail: "E: broken".into(),
            said: vec!["W: w".into(), "E: broken".into()],
        };
        assert_eq!(apt.to_string(), "apt-get -y install x failed: E: broken");
    }

    #[test]
    fn trouble_lines_are_apts_warnings_errors_and_failed_fetches() {
        let lines: Vec<String> = [
            "Hit:1 x",
            "W: w",
            "Err:2 y",
            "E: e",
            "Get:3 z",
            " E: indented",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(trouble_lines(&lines), ["W: w", "Err:2 y", "E: e"]);
    }

    #[test]
    fn names_are_stable_and_in_order() {
        let names: Vec<&str> = AptStep::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            names,
            [
                "preflight",
                "backup",
                "sources",
                "update",
                "download",
                "self-upgrade",
                "packages",
                "upgrade",
                "verify"
            ]
        );
        for step in AptStep::ALL {
            assert_eq!(
                serde_json::to_value(step).unwrap(),
                serde_json::Value::from(step.as_str())
            );
            assert_eq!(AptStep::from_name(step.as_str()), Some(*step));
        }
        assert_eq!(AptStep::from_name("flash"), None);
    }

    #[test]
    fn the_system_changes_from_sources_and_packages_from_the_self_upgrade() {
        assert!(!AptStep::Backup.changes_system());
        assert!(AptStep::Sources.changes_system());
        assert!(!AptStep::Download.changes_packages());
        assert!(AptStep::SelfUpgrade.changes_packages());
    }

    #[test]
    fn a_journal_from_before_the_self_upgrade_step_still_runs() {
        let mut j: Journal<AptStep> = Journal::new("m1", "move", "00");
        j.steps.retain(|r| r.step != AptStep::SelfUpgrade);
        let text = serde_json::to_string(&j).unwrap();
        let mut j: Journal<AptStep> = serde_json::from_str(&text).unwrap();
        let mut ran = Vec::new();
        while let Some(step) = j.next_step() {
            j.begin(step).unwrap();
            j.finish(step, Ok(())).unwrap();
            ran.push(step);
        }
        assert!(!ran.contains(&AptStep::SelfUpgrade));
        assert_eq!(ran.len(), AptStep::ALL.len() - 1);
        assert_eq!(j.outcome, Outcome::Succeeded);
        assert!(j.begin(AptStep::SelfUpgrade).is_err());
        assert!(j.steps.iter().all(|r| r.state == StepState::Done));
    }
}
