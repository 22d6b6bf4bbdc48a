//! The steps of an apt migration run, as the journal records them: their
//! order, their stable names in `state.json`, and which of them change the
//! system or its packages. The journal itself (transitions, atomic saves) is
//! ferry-journal's; doing the steps is `run`'s.

use serde::{Deserialize, Serialize};

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
