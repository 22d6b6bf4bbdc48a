//! The carry-over between the stages: what stage 1 collects from the old OS
//! (network, identity, backup), staged into the tmpfs for stage 2 to write
//! into the new OS.

use std::path::Path;

use crate::config::Config;

/// What stage 1 collected, and its size in RAM.
#[derive(Debug, Clone, Default)]
pub struct Collected {
    pub bytes: u64,
}

/// Collects the carry-over of the OS at `root`, staging files in `staging`.
pub fn collect(_root: &Path, _config: &Config, _staging: &Path) -> Result<Collected, String> {
    Ok(Collected::default())
}

/// Copies what was collected into stage 2's work directory.
pub fn stage(_collected: &Collected, _work: &Path) -> Result<(), String> {
    Ok(())
}

/// Writes the staged carry-over into the new OS (root and data partitions
/// mounted at `new_root` and `data`); returns the files written.
pub fn apply(_work: &Path, _new_root: &Path, _data: &Path) -> Result<Vec<String>, String> {
    Ok(Vec::new())
}
