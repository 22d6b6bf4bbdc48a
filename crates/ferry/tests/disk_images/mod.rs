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

/// Runs the ferry under test with `input` on its standard input, as a pipe
/// (written from another thread, so a ferry that stops reading early does
/// not hang the test; the write's own result is ignored for that reason).
pub fn ferry_with_stdin(args: &[&str], input: Vec<u8>) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    let _ = writer.join();
    out
}
