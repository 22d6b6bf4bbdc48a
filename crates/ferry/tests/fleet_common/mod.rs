//! What the fleet's CLI tests share: the real `ferry fleet serve` process
//! over a database in a test directory, stopped when dropped.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

pub const FERRY: &str = env!("CARGO_BIN_EXE_ferry");

/// A running server and the URL it said it listens on.
pub struct Server {
    pub child: Child,
    pub url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the server on `listen` (port 0: any) over `dir/fleet.db` with
/// the operator token in `dir/operator.token`, and waits for its
/// `listening on` line.
pub fn serve(dir: &Path, listen: &str) -> Server {
    serve_with(dir, listen, &["--interval", "1"])
}

/// [`serve`] with other flags than a 1-second interval (`--interval`,
/// `--mqtt`).
pub fn serve_with(dir: &Path, listen: &str, flags: &[&str]) -> Server {
    let mut child = Command::new(FERRY)
        .args(["fleet", "serve", "--listen", listen])
        .args(flags)
        .arg("--db")
        .arg(dir.join("fleet.db"))
        .arg("--operator-token-file")
        .arg(dir.join("operator.token"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("ferry fleet serve starts");
    let stdout = child.stdout.take().expect("its stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("its first line");
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("a `listening on` line, got {line:?}"))
        .to_string();
    Server { child, url }
}

/// A command's exit code and output, for an assertion's message.
pub fn text(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A loopback port free right now, for a server that must come back on
/// the same address after a kill.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
