//! Runs a verified artifact on the device: a migration profile through the
//! ferry binary itself (`ferry run --yes --root ROOT PROFILE`, so the run is
//! journaled and resumable exactly as when a person starts it, and this
//! crate never links the apt layer), or a shell script with a timeout.
//!
//! Not for deciding whether an artifact may run (the agent checks the
//! command, the SHA-256 and the signature first).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::rollout::ArtifactKind;

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Executed {
    pub success: bool,
    /// Why it failed (exit status, timeout, cannot start), or its last
    /// line of output when it succeeded.
    pub reason: Option<String>,
}

/// What the executor needs besides the artifact.
#[derive(Debug, Clone)]
pub struct ExecConfig {
    /// The system a profile migrates (`ferry --root`); also `FERRY_ROOT`
    /// for a script.
    pub root: PathBuf,
    /// The ferry binary for profiles (the running one when absent).
    pub ferry_exe: Option<PathBuf>,
    pub device_id: String,
}

/// Runs `artifact` as `kind`, killing its process group after `timeout`.
pub fn run(
    kind: ArtifactKind,
    artifact: &Path,
    timeout: Duration,
    config: &ExecConfig,
) -> Executed {
    let mut command = match kind {
        ArtifactKind::Script => {
            let mut c = Command::new("sh");
            c.arg(artifact);
            c
        }
        ArtifactKind::Profile => {
            let exe = match &config.ferry_exe {
                Some(exe) => exe.clone(),
                None => match std::env::current_exe() {
                    Ok(exe) => exe,
                    Err(e) => {
                        return Executed {
                            success: false,
                            reason: Some(format!("cannot find the ferry binary: {e}")),
                        }
                    }
                },
            };
            let mut c = Command::new(exe);
            c.args(["run", "--yes", "--quiet", "--root"])
                .arg(&config.root)
                .arg(artifact);
            c
        }
    };
    // Output goes to a file beside the artifact, not a pipe that a
    // chatty run could fill and block on.
    let log = artifact.with_extension("log");
    let (stdout, stderr) = match std::fs::File::create(&log).and_then(|f| Ok((f.try_clone()?, f))) {
        Ok((a, b)) => (Stdio::from(a), Stdio::from(b)),
        Err(_) => (Stdio::null(), Stdio::null()),
    };
    command
        .env("FERRY_ROOT", &config.root)
        .env("FERRY_DEVICE", &config.device_id)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        // Its own process group, so a timeout kills what it started too.
        .process_group(0);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            return Executed {
                success: false,
                reason: Some(format!("cannot start the {kind:?} run: {e}")),
            }
        }
    };
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if started.elapsed() >= timeout => {
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{}", child.id())])
                    .stderr(Stdio::null())
                    .status();
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!("timed out after {} s, killed", timeout.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => break Err(format!("cannot wait for the run: {e}")),
        }
    };
    let output = std::fs::read(&log)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let last_line = output.lines().last().map(|l| l.trim().to_string());
    match status {
        Ok(status) if status.success() => Executed {
            success: true,
            reason: last_line.filter(|l| !l.is_empty()),
        },
        Ok(status) => Executed {
            success: false,
            reason: Some(match last_line {
                Some(line) if !line.is_empty() => format!("{status}: {line}"),
                _ => status.to_string(),
            }),
        },
        Err(reason) => Executed {
            success: false,
            reason: Some(reason),
        },
    }
}
