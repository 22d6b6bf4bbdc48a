//! ferry-takeover replaces the operating system of a running machine with a
//! disk image: a read-only pre-flight that writes the typed stage-2 plan,
//! the network configuration and identity carried over into the new OS,
//! and the journaled run: stage 1 on the old OS, stage 2 in RAM. Built on the engine (ferry-journal,
//! ferry-fetch) and the disk-image crate; nothing here knows apt.

// Pre-flight and the stage-2 plan (kept together; other modules below).
pub mod config;
pub mod plan;
pub mod preflight;

pub use config::{Config, ConfigError, Strategy};
pub use plan::{ImageSummary, PlanError, TakeoverPlan, TAKEOVER_PLAN_FORMAT};
pub use preflight::{
    preflight, Finding, FindingKey, Fingerprint, Firmware, Preflight, Severity, TargetDisk,
};

// Network and identity carried over into the new OS.
pub mod backup;
pub mod carry;
pub mod identity;
pub mod network;

// The run: stage 1 on the old OS, stage 2 in RAM, and what it left behind.
pub mod deadline;
pub mod flasher;
pub mod run;
pub mod stage2;
pub mod status;
pub mod steps;
mod sys;
pub mod watchdog;

pub use run::{RunError, RunRequest, Staged};
pub use status::{status, RunningOs, StatusError, TakeoverStatus, Verdict};
pub use steps::{Fault, TakeoverStep};
