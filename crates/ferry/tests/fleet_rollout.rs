//! Rollouts as a user runs them: the real `ferry fleet serve` process, 50
//! real `ferry agent` processes with their own roots, state dirs and the
//! release keyring, artifacts signed by a gpg key the test makes. A fifth
//! of the devices fail: the rollout halts at the failing wave's gate with
//! later devices pending; the server SIGKILLed and restarted mid-rollout
//! goes on where it was; the operator's pause, resume and abort; a forged
//! artifact refused; malformed requests exit 2.

mod fleet_common;

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

use ferry_testkit::Signer;

use fleet_common::{free_port, text, Server, FERRY};

/// Fails on a device whose root holds etc/fail-me.
const SCRIPT: &str = "#!/bin/sh\n\
    if [ -e \"$FERRY_ROOT/etc/fail-me\" ]; then echo 'told to fail'; exit 1; fi\n\
    echo applied\n";

/// A test's fleet: its directory (operator token, database, roots) and
/// the release key that signs its artifacts.
struct Lab {
    dir: tempfile::TempDir,
    signer: Signer,
}

impl Lab {
    fn new() -> Lab {
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(dir.path().join("operator.token"), "rollout-test-operator\n")
            .expect("the operator token");
        let signer = Signer::new("fleet-release").expect("a signing key");
        let lab = Lab { dir, signer };
        std::fs::write(lab.path("update.sh"), SCRIPT).expect("the script");
        lab.signer
            .detach_sign(&lab.path("update.sh"), &lab.path("update.sh.asc"))
            .expect("its signature");
        lab
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn token_file(&self) -> String {
        self.path("operator.token").display().to_string()
    }

    fn serve(&self, listen: &str) -> Server {
        fleet_common::serve(self.dir.path(), listen)
    }

    /// Enrols device `i` with a root of its own (Debian 12) in `group`.
    fn enrol(&self, server: &str, i: usize, group: &str, fails: bool) -> String {
        let root = self.path(&format!("root{i}"));
        std::fs::create_dir_all(root.join("etc")).expect("a root");
        std::fs::write(
            root.join("etc/os-release"),
            "ID=debian\nVERSION_ID=\"12\"\n",
        )
        .expect("os-release");
        if fails {
            std::fs::write(root.join("etc/fail-me"), "").expect("the marker");
        }
        let output = Command::new(FERRY)
            .args(["fleet", "enrol", "--json", "--server", server])
            .args(["--operator-token-file", &self.token_file()])
            .args(["--label", group])
            .arg("--state")
            .arg(self.path(&format!("state{i}")))
            .arg("--root")
            .arg(&root)
            .output()
            .expect("ferry fleet enrol runs");
        assert!(output.status.success(), "{}", text(&output));
        let answer: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("enrolment JSON");
        answer["device_id"].as_str().expect("an id").to_string()
    }

    /// One `ferry agent --once` for each of `devices`, all at once.
    fn agents_once(&self, devices: &[usize], keyring: &std::path::Path) -> Vec<Output> {
        let children: Vec<Child> = devices
            .iter()
            .map(|i| {
                Command::new(FERRY)
                    .current_dir(self.dir.path())
                    .args(["agent", "--once", "--json", "--quiet"])
                    .arg("--state")
                    .arg(self.path(&format!("state{i}")))
                    .arg("--root")
                    .arg(self.path(&format!("root{i}")))
                    .arg("--events")
                    .arg(self.path(&format!("events{i}.jsonl")))
                    .arg("--keyring")
                    .arg(keyring)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("ferry agent starts")
            })
            .collect();
        children
            .into_iter()
            .map(|c| c.wait_with_output().expect("ferry agent ends"))
            .collect()
    }

    fn fleet(&self, server: &str, args: &[&str]) -> Output {
        Command::new(FERRY)
            .arg("fleet")
            .args(args)
            .args(["--json", "--server", server])
            .args(["--operator-token-file", &self.token_file()])
            .output()
            .expect("ferry fleet runs")
    }

    fn fleet_json(&self, server: &str, args: &[&str]) -> serde_json::Value {
        let output = self.fleet(server, args);
        assert!(output.status.success(), "{args:?}: {}", text(&output));
        serde_json::from_slice(&output.stdout).expect("JSON")
    }

    fn create(&self, server: &str, group: &str, extra: &[&str]) -> serde_json::Value {
        let artifact = self.path("update.sh").display().to_string();
        let signature = self.path("update.sh.asc").display().to_string();
        let mut args = vec![
            "rollout",
            "create",
            "--group",
            group,
            "--kind",
            "script",
            "--artifact",
            &artifact,
            "--signature",
            &signature,
        ];
        args.extend_from_slice(extra);
        self.fleet_json(server, &args)
    }
}

fn counts(status: &serde_json::Value) -> (u64, u64, u64) {
    let c = &status["counts"];
    (
        c["succeeded"].as_u64().unwrap_or(99),
        c["failed"].as_u64().unwrap_or(99),
        c["pending"].as_u64().unwrap_or(99),
    )
}

#[test]
fn fifty_agents_a_fifth_failing_halt_at_the_gate_and_survive_a_server_kill() {
    const N: usize = 50;
    let lab = Lab::new();
    let listen = format!("127.0.0.1:{}", free_port());
    let mut server = lab.serve(&listen);
    // Every fifth device (4, 9, 14, …) fails: 10 of 50.
    let devices: Vec<String> = (0..N)
        .map(|i| lab.enrol(&server.url, i, "lab", i % 5 == 4))
        .collect();
    let all: Vec<usize> = (0..N).collect();
    let keyring = lab.signer.keyring_path().to_path_buf();
    let created = lab.create(
        &server.url,
        "lab",
        &[
            "--canary",
            "4",
            "--wave",
            "30",
            "--wave",
            "60",
            "--gate-success",
            "95",
        ],
    );
    let id = created["id"].as_str().expect("a rollout id").to_string();
    assert_eq!(created["wave_targets"], serde_json::json!([4, 15, 30, 50]));

    // The canary (0-3) succeeds and wave 1 (4-14) is assigned; the agents
    // run it, 3 of its 11 fail: 73% < 95%, paused at wave 1's gate.
    let mut status = serde_json::Value::Null;
    for _ in 0..4 {
        for output in lab.agents_once(&all, &keyring) {
            assert!(output.status.success(), "{}", text(&output));
        }
        status = lab.fleet_json(&server.url, &["rollout", "status", &id]);
        if status["state"] != "active" {
            break;
        }
    }
    assert_eq!(status["state"], "paused", "{status:#}");
    assert_eq!(status["wave"], 1);
    assert_eq!(counts(&status), (12, 3, 35));
    let states: Vec<&str> = status["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .map(|d| d["state"].as_str().unwrap_or(""))
        .collect();
    assert!(states[15..].iter().all(|s| *s == "pending"), "{states:?}");
    for i in 15..N {
        assert!(
            !lab.path(&format!("state{i}/commands.json")).exists(),
            "device {i} was never given a command"
        );
    }

    // Resume: wave 2 (15-29) is assigned. Its first half runs, then the
    // server is SIGKILLed; the agents find it down (their results stay
    // with them), and it comes back on the same database.
    let resumed = lab.fleet_json(&server.url, &["rollout", "resume", &id]);
    assert_eq!(resumed["wave"], 2);
    let first: Vec<usize> = (15..22).collect();
    lab.agents_once(&first, &keyring);
    drop(server);
    let rest: Vec<usize> = (22..30).collect();
    for output in lab.agents_once(&rest, &keyring) {
        assert_eq!(output.status.code(), Some(1), "offline: {}", text(&output));
    }
    server = lab.serve(&listen);
    let after = lab.fleet_json(&server.url, &["rollout", "status", &id]);
    assert_eq!(after["state"], "active", "the rollout went on: {after:#}");
    assert_eq!(after["wave"], 2);
    for _ in 0..4 {
        lab.agents_once(&all, &keyring);
        status = lab.fleet_json(&server.url, &["rollout", "status", &id]);
        if status["state"] != "active" {
            break;
        }
    }
    // Wave 2 halts at its gate too (19, 24, 29 fail), nothing was lost or
    // run twice: every device of waves 0-2 ran once and says so once.
    assert_eq!(status["state"], "paused", "{status:#}");
    assert_eq!(counts(&status), (24, 6, 20));
    for (i, device) in devices.iter().enumerate().take(30) {
        let events = lab.fleet_json(&server.url, &["events", device]);
        let ends = events["events"]
            .as_array()
            .expect("events")
            .iter()
            .filter(|e| matches!(e["event"]["state"].as_str(), Some("SUCCESS" | "FAIL")))
            .count();
        assert_eq!(ends, 1, "device {i}: {events:#}");
    }

    // Abort: the 20 untouched devices stay pending for good.
    let aborted = lab.fleet_json(&server.url, &["rollout", "abort", &id]);
    assert_eq!(aborted["state"], "aborted");
    lab.agents_once(&all, &keyring);
    let last = lab.fleet_json(&server.url, &["rollout", "status", &id]);
    assert_eq!(counts(&last), (24, 6, 20));
    let overview = lab.fleet_json(&server.url, &["status"]);
    assert_eq!(overview["devices"], 50);
    assert_eq!(overview["rollouts"][0]["state"], "aborted");
}

#[test]
fn operator_controls_a_forged_artifact_and_bad_requests_through_the_cli() {
    let lab = Lab::new();
    let server = lab.serve("127.0.0.1:0");
    let url = server.url.clone();
    for i in 0..3 {
        lab.enrol(&url, i, "small", false);
    }
    // A keyring named relative to where the agent starts, as a person
    // types it (gpgv alone would look for it in its home directory).
    std::fs::copy(lab.signer.keyring_path(), lab.path("release.gpg")).expect("the keyring");
    let keyring = PathBuf::from("release.gpg");
    let created = lab.create(&url, "small", &["--canary", "1"]);
    let id = created["id"].as_str().expect("an id").to_string();
    assert_eq!(
        lab.fleet_json(&url, &["rollout", "pause", &id])["state"],
        "paused"
    );
    // Pausing a paused rollout is refused (exit 2), and the canary waits.
    assert_eq!(
        lab.fleet(&url, &["rollout", "pause", &id]).status.code(),
        Some(2)
    );
    lab.agents_once(&[0, 1, 2], &keyring);
    let held = lab.fleet_json(&url, &["rollout", "status", &id]);
    assert_eq!(held["counts"]["assigned"], 1);
    assert_eq!(
        lab.fleet_json(&url, &["rollout", "resume", &id])["state"],
        "active"
    );
    for _ in 0..3 {
        lab.agents_once(&[0, 1, 2], &keyring);
    }
    let done = lab.fleet_json(&url, &["rollout", "status", &id]);
    assert_eq!(done["state"], "completed", "{done:#}");
    assert_eq!(counts(&done), (3, 0, 0));

    // A device trusting another key refuses the artifact: reported, failed.
    let other = Signer::new("someone-else").expect("another key");
    lab.enrol(&url, 3, "other", false);
    let forged = lab.create(&url, "other", &[]);
    let forged_id = forged["id"].as_str().expect("an id").to_string();
    lab.agents_once(&[3], other.keyring_path());
    let status = lab.fleet_json(&url, &["rollout", "status", &forged_id]);
    let device = &status["devices"][0];
    assert_eq!(device["state"], "failed", "{status:#}");
    assert!(
        device["reason"]
            .as_str()
            .unwrap_or("")
            .contains("bad signature"),
        "{device:#}"
    );

    // Bad input is the operator's: exit 2 with the server's reason.
    let bad = lab.fleet(
        &url,
        &[
            "rollout",
            "create",
            "--group",
            "small",
            "--kind",
            "script",
            "--artifact",
            &lab.path("update.sh").display().to_string(),
            "--signature",
            &lab.path("update.sh.asc").display().to_string(),
            "--canary",
            "0",
        ],
    );
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert!(
        String::from_utf8_lossy(&bad.stdout).contains("canary"),
        "{}",
        text(&bad)
    );
    assert_eq!(
        lab.fleet(&url, &["rollout", "status", "ro-none"])
            .status
            .code(),
        Some(2)
    );
}
