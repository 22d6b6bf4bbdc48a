//! ferry-apt moves a system from one set of APT sources to another:
//! a profile says what to do, a plan computes it with the real apt in
//! simulation, and a run carries it out step by step, journaled, with an
//! offline backup and a rollback that proves it restored the system.
//!
//! Not for reading Debian formats (ferry-deb) or deciding installability
//! (ferry-solve); this crate decides, apt and dpkg act. The journal, the lock
//! and the event log are ferry-journal's; downloads and signatures are
//! ferry-fetch's.

pub mod apt;
pub mod apt_lists;
pub mod backup;
pub mod checks;
pub mod dpkg_lock;
pub mod finding;
pub mod plan;
pub mod profile;
pub mod repack;
pub mod rollback;
pub mod run;
pub mod saved_plan;
pub mod snapshot;
pub mod space;
pub mod steps;
pub mod system;
pub mod target;

pub use profile::{Profile, ProfileError};
pub use steps::AptStep;
