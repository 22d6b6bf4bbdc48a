//! ferry-apt moves a system from one set of APT sources to another:
//! a profile says what to do, a plan computes it with the real apt in
//! simulation, and a run carries it out step by step, journaled, with an
//! offline backup and a rollback that proves it restored the system.
//!
//! Not for reading Debian formats (ferry-deb) or deciding installability
//! (ferry-solve); this crate decides, apt and dpkg act. The journal, the lock
//! and the event log are ferry-journal's; downloads and signatures are
//! ferry-fetch's.

mod apt;
mod apt_lists;
mod backup;
mod checks;
mod dpkg_lock;
mod finding;
mod plan;
mod profile;
mod repack;
mod rollback;
mod run;
mod saved_plan;
mod snapshot;
mod space;
mod steps;
mod system;
mod target;

// The crate's whole surface; the modules stay private so that what other
// crates may lean on is decided here, in one place.
pub use apt::{AptSandbox, Change, Transaction};
pub use backup::{backup_findings, Backup, BackupError, DebOrigin, PackageToSave};
pub use dpkg_lock::{check_dpkg_idle, DpkgLockError};
pub use finding::FindingKey;
pub use plan::{
    compute as compute_plan_in, compute_in_temp as compute_plan, Finding, KeyInstall, Plan,
    PlanError, Severity, SourcesChange,
};
pub use profile::{
    AddedSources, PackageName, Profile, ProfileError, SourceChange, SourceRule, Upgrade, Verify,
};
pub use repack::{inventory as repack_inventory, rebuild as repack_deb, RepackError};
pub use rollback::{RollbackError, RollbackReport};
pub use run::{
    resume, rollback_migration, run, run_saved, AptActivity, AptStatus, Layout, Progress, RunError,
    RunOptions, RunOutcome,
};
pub use saved_plan::{SavedPlan, SavedPlanError, SystemFingerprint};
pub use snapshot::{installed_packages, Snapshot};
pub use space::{human_bytes, SpaceCheck};
pub use steps::{AptStep, StepError};
pub use system::{effective_uid, is_privileged, RootError, SystemRoot, ROOT_EXPECTED};
pub use target::{unanswered_targets, TargetSource};
