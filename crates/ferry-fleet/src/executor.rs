//! Runs a verified artifact on the device: a migration profile through the
//! ferry binary itself (`ferry run --yes --root ROOT PROFILE`, so the run is
//! journaled and resumable exactly as when a person starts it, and this
//! crate never links the apt layer), or a shell script with a timeout. A
//! profile whose run a kill or a reboot interrupted is resumed from its
//! journal (`ferry run --resume`), not started again.
//!
//! The run's output (stdout and stderr) is kept in the file the caller
//! names, cut to its last [`MAX_LOG`] bytes when the run ends, for the agent
//! to upload.
//!
//! Not for deciding whether an artifact may run (the agent checks the
//! command, the SHA-256 and the signature first).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::rollout::ArtifactKind;

/// The most of a run's output that is kept (its end): 1 MiB.
pub const MAX_LOG: u64 = 1024 * 1024;

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
    /// Where the run's output goes (`logs/<command-id>.log` in the state dir).
    pub log: PathBuf,
}

/// Where `ferry run` keeps its journals under the root, one
/// `<id>/state.json` per migration.
const JOURNALS: &str = "var/lib/ferry";

/// What [`interrupted_run_of`] reads of a journal; the rest of it is the
/// apt layer's.
#[derive(serde::Deserialize)]
struct JournalHead {
    profile_sha256: String,
    outcome: ferry_journal::Outcome,
}

/// Whether a journal under `root` holds an unfinished run of this very
/// profile (the same SHA-256): the agent, or the device, was killed while
/// it ran. Another profile's unfinished run is not this command's to
/// resume; `ferry run` refuses to start beside it.
fn interrupted_run_of(root: &Path, profile: &Path) -> bool {
    let Ok((digest, _)) = ferry_fetch::sha256_file(profile) else {
        return false;
    };
    let Ok(entries) = std::fs::read_dir(root.join(JOURNALS)) else {
        return false;
    };
    entries.flatten().any(|entry| {
        std::fs::read(entry.path().join("state.json"))
            .ok()
            .and_then(|bytes| serde_json::from_slice::<JournalHead>(&bytes).ok())
            .is_some_and(|head| {
                head.outcome == ferry_journal::Outcome::InProgress
                    && head.profile_sha256.eq_ignore_ascii_case(&digest)
            })
    })
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
                .arg(&config.root);
            // Started afresh, a run is refused while the one a kill left
            // is unfinished; resumed, it goes on from its journal.
            if interrupted_run_of(&config.root, artifact) {
                c.arg("--resume");
            } else {
                c.arg(artifact);
            }
            c
        }
    };
    // Output goes to a file, not a pipe that a chatty run could fill and
    // block on.
    let log = config.log.clone();
    if let Some(dir) = log.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
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
    // Best effort: a log that cannot be cut is uploaded as it is (the
    // server refuses one too large, the result is reported all the same).
    let _ = keep_tail(&log, MAX_LOG);
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

/// Cuts the file at `path` to its last `max` bytes, the first line saying
/// how much was dropped. A file within `max` is left alone.
pub fn keep_tail(path: &Path, max: u64) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    if len <= max {
        return Ok(());
    }
    let mut note = format!("[ferry: the first {} bytes of output were dropped]\n", len);
    let tail_len = max.saturating_sub(note.len() as u64);
    note = format!(
        "[ferry: the first {} bytes of output were dropped]\n",
        len - tail_len
    );
    file.seek(SeekFrom::Start(len - tail_len))?;
    let mut tail = Vec::with_capacity(usize::try_from(tail_len).unwrap_or(0));
    file.take(tail_len).read_to_end(&mut tail)?;
    let tmp = path.with_extension("log.tmp");
    let mut out = std::fs::File::create(&tmp)?;
    out.write_all(note.as_bytes())?;
    out.write_all(&tail)?;
    out.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A root whose journal holds one run of `profile` with `outcome`.
    fn root_with_run(profile: &[u8], outcome: &str) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join(JOURNALS).join("20260101-000000-move");
        std::fs::create_dir_all(&dir).unwrap();
        let journal = serde_json::json!({
            "format": 1,
            "id": "20260101-000000-move",
            "profile": "move",
            "profile_sha256": ferry_fetch::sha256_hex(profile),
            "created": 0,
            "outcome": outcome,
            "steps": [],
        });
        std::fs::write(dir.join("state.json"), journal.to_string()).unwrap();
        root
    }

    #[test]
    fn only_an_unfinished_run_of_the_same_profile_is_resumed() {
        let dir = tempfile::tempdir().unwrap();
        let profile = dir.path().join("artifact");
        std::fs::write(&profile, "schema = 1\nname = \"move\"\n").unwrap();
        let same = std::fs::read(&profile).unwrap();

        let root = root_with_run(&same, "in-progress");
        assert!(interrupted_run_of(root.path(), &profile));
        // Finished: a new command with the same profile starts afresh.
        let root = root_with_run(&same, "succeeded");
        assert!(!interrupted_run_of(root.path(), &profile));
        // Another profile's unfinished run is not this command's.
        let root = root_with_run(b"schema = 1\nname = \"other\"\n", "in-progress");
        assert!(!interrupted_run_of(root.path(), &profile));
        // No journal at all, or no profile: nothing to resume.
        assert!(!interrupted_run_of(dir.path(), &profile));
        assert!(!interrupted_run_of(
            root.path(),
            &dir.path().join("missing")
        ));
    }

    #[test]
    fn a_log_over_the_limit_keeps_its_end_and_says_what_was_dropped() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("run.log");
        let text: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, &text).expect("a log");
        keep_tail(&path, 4096).expect("cut");
        let kept = std::fs::read_to_string(&path).expect("the log");
        assert_eq!(kept.len(), 4096);
        assert!(kept.starts_with("[ferry: the first "), "{}", &kept[..80]);
        assert!(kept.ends_with("line 19999\n"));
        let small = dir.path().join("small.log");
        std::fs::write(&small, "ok\n").expect("a log");
        keep_tail(&small, 4096).expect("nothing to cut");
        assert_eq!(std::fs::read_to_string(&small).expect("the log"), "ok\n");
    }
}
