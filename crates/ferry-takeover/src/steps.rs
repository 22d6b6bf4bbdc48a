//! The steps of a takeover, as its journal names them, and where each stage
//! keeps the journal, the events and the hand-off: the vocabulary stage 1,
//! stage 2 and `takeover status` share.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::plan::TakeoverPlan;

/// One step of a takeover. Stage 1 (the running old OS) does the first four;
/// stage 2 (in RAM, after `handoff`) the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TakeoverStep {
    /// The pre-flight and the plan, checked again at run time.
    Preflight,
    /// Network, identity and the backup collected from the old OS.
    Collect,
    /// ferry, its libraries, the image and the hand-off copied into a tmpfs.
    Stage,
    /// PID 1 replaced by ferry, which pivots into the tmpfs.
    Handoff,
    /// Every process of the old OS stopped, swap off.
    StopProcesses,
    /// Every filesystem of the old OS unmounted.
    Unmount,
    /// The image in RAM checked against the plan's sha256 once more.
    VerifyImage,
    /// The image written to the disk and read back. The first step that
    /// changes the disk: before it, a reset returns to the old OS untouched.
    Flash,
    /// Network, identity and backup written into the new OS and read back.
    Carry,
    /// The journal and events written into the new OS's data partition.
    Persist,
}

impl ferry_journal::Step for TakeoverStep {
    const ALL: &'static [Self] = &[
        TakeoverStep::Preflight,
        TakeoverStep::Collect,
        TakeoverStep::Stage,
        TakeoverStep::Handoff,
        TakeoverStep::StopProcesses,
        TakeoverStep::Unmount,
        TakeoverStep::VerifyImage,
        TakeoverStep::Flash,
        TakeoverStep::Carry,
        TakeoverStep::Persist,
    ];

    fn as_str(self) -> &'static str {
        match self {
            TakeoverStep::Preflight => "preflight",
            TakeoverStep::Collect => "collect",
            TakeoverStep::Stage => "stage",
            TakeoverStep::Handoff => "handoff",
            TakeoverStep::StopProcesses => "stop-processes",
            TakeoverStep::Unmount => "unmount",
            TakeoverStep::VerifyImage => "verify-image",
            TakeoverStep::Flash => "flash",
            TakeoverStep::Carry => "carry",
            TakeoverStep::Persist => "persist",
        }
    }

    fn changes_system(self) -> bool {
        matches!(
            self,
            TakeoverStep::Flash | TakeoverStep::Carry | TakeoverStep::Persist
        )
    }

    fn changes_packages(self) -> bool {
        false
    }
}

/// The journal of a takeover.
pub type TakeoverJournal = ferry_journal::Journal<TakeoverStep>;

/// Where stage 1 keeps the takeover's record on the old OS's root, so that
/// `takeover status` on an old OS that came back can say what happened.
pub const OLD_ROOT_RECORD: &str = "var/lib/ferry/takeover";
/// The directory in the new OS's data partition holding the persisted
/// journal, events and carry-over report.
pub const DATA_RECORD: &str = "ferry-takeover";
/// The tmpfs stage 2 runs in, on the old OS (it is `/` after the pivot).
pub const STAGE_ROOT: &str = "/run/ferry-takeover";
/// Within the stage root: the hand-off, the journal, the image.
pub const WORK: &str = "work";

/// Test hooks for the VM tests: faults stage 2 injects on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// Stop keeping the watchdog alive before the flash and hang.
    Stage2Hang,
    /// Wait a minute before the flash, keeping the watchdog alive (a reset
    /// from outside lands before the first write).
    Stage2Delay,
    /// Fail before the flash, as a failed unmount would.
    Stage2Fail,
}

impl std::str::FromStr for Fault {
    type Err = String;

    fn from_str(text: &str) -> Result<Fault, String> {
        match text {
            "stage2-hang" => Ok(Fault::Stage2Hang),
            "stage2-delay" => Ok(Fault::Stage2Delay),
            "stage2-fail" => Ok(Fault::Stage2Fail),
            other => Err(format!(
                "unknown fault `{other}` (stage2-hang, stage2-delay, stage2-fail)"
            )),
        }
    }
}

/// The old root's filesystem, so stage 2 can mount it again to leave its
/// record there when it fails before the flash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OldRoot {
    pub device: PathBuf,
    pub fstype: String,
}

/// What stage 1 hands to stage 2 (`work/stage2.json` in the tmpfs): the
/// plan and everything stage 2 cannot look up once the old root is gone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Handoff {
    pub format: u32,
    pub id: String,
    pub plan: TakeoverPlan,
    /// The image, copied into the tmpfs (a path inside it).
    pub image: PathBuf,
    /// The whole disk written.
    pub disk: PathBuf,
    pub old_root: Option<OldRoot>,
    /// LD_LIBRARY_PATH for ferry run from the tmpfs (its libraries' dirs).
    pub library_path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<Fault>,
}

pub const HANDOFF_FORMAT: u32 = 1;

impl Handoff {
    pub fn config(&self) -> &Config {
        &self.plan.config
    }
}

/// The device node of partition `number` of `disk`: `sda` → `sda3`,
/// `nvme0n1`/`mmcblk0`/`loop0` → `…p3`.
pub fn partition_device(disk: &Path, number: u32) -> PathBuf {
    let name = disk.as_os_str().to_string_lossy();
    let separator = if name.ends_with(|c: char| c.is_ascii_digit()) {
        "p"
    } else {
        ""
    };
    PathBuf::from(format!("{name}{separator}{number}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_journal::Step;

    #[test]
    fn only_the_flash_and_after_change_the_machine() {
        let changing: Vec<_> = TakeoverStep::ALL
            .iter()
            .filter(|s| s.changes_system())
            .map(|s| s.as_str())
            .collect();
        assert_eq!(changing, ["flash", "carry", "persist"]);
    }

    #[test]
    fn step_names_are_their_serde_form() {
        for step in TakeoverStep::ALL {
            let json = serde_json::to_string(step).unwrap();
            assert_eq!(json, format!("\"{}\"", step.as_str()));
        }
    }

    #[test]
    fn partition_devices_follow_the_kernel_naming() {
        assert_eq!(
            partition_device(Path::new("/dev/vda"), 4),
            Path::new("/dev/vda4")
        );
        assert_eq!(
            partition_device(Path::new("/dev/nvme0n1"), 2),
            Path::new("/dev/nvme0n1p2")
        );
        assert_eq!(
            partition_device(Path::new("/dev/mmcblk0"), 1),
            Path::new("/dev/mmcblk0p1")
        );
    }

    #[test]
    fn faults_parse_by_their_names_only() {
        assert_eq!("stage2-hang".parse::<Fault>(), Ok(Fault::Stage2Hang));
        assert!("hang".parse::<Fault>().is_err());
    }
}
