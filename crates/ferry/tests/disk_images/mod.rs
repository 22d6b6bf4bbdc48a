//! What the `ferry image` tests share: running ferry, and paths as text.
//! Images, tables and filesystems come from ferry-testkit's disk helpers.

#![allow(dead_code)] // each test file uses its own part of this module

use std::path::Path;
use std::process::{Command, Output};

pub const MIB: u64 = 1 << 20;

/// Runs the ferry under test.
pub fn ferry(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .output()
        .unwrap()
}

/// A test path as a command argument.
pub fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}
