//! The fleet as a user runs it: the real `ferry fleet serve` process and
//! real `ferry agent` processes on loopback, each agent with its own state
//! dir and event log. Every event an agent's log gains reaches the server
//! exactly once — with 50 agents at once, with the server SIGKILLed and
//! restarted mid-way, and with an agent that was offline for a while.

mod fleet_common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use fleet_common::{free_port, text, Server, FERRY};

/// A test's fleet: its directory (operator token, database, state dirs).
struct Fleet {
    dir: tempfile::TempDir,
}

impl Fleet {
    fn new() -> Fleet {
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(
            dir.path().join("operator.token"),
            "fleet-test-operator-token\n",
        )
        .expect("the operator token");
        Fleet { dir }
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

    fn enrol(&self, server: &str, name: &str) -> String {
        let output = Command::new(FERRY)
            .args(["fleet", "enrol", "--json", "--server", server])
            .args(["--operator-token-file", &self.token_file()])
            .arg("--state")
            .arg(self.path(name))
            .output()
            .expect("ferry fleet enrol runs");
        assert!(output.status.success(), "{}", text(&output));
        let answer: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("enrolment JSON");
        answer["device_id"]
            .as_str()
            .expect("a device id")
            .to_string()
    }

    fn agent(&self, name: &str) -> Command {
        let mut command = Command::new(FERRY);
        command
            .arg("agent")
            .arg("--state")
            .arg(self.path(name))
            .arg("--events")
            .arg(self.path(&format!("{name}.events.jsonl")));
        command
    }

    fn agent_once(&self, name: &str) -> Output {
        self.agent(name)
            .args(["--once", "--json"])
            .output()
            .expect("ferry agent runs")
    }

    /// Appends events `from..to` to an agent's event log, as the journal's
    /// EventLog writes them: one JSON line each.
    fn log_events(&self, name: &str, from: usize, to: usize) {
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path(&format!("{name}.events.jsonl")))
            .expect("the event log");
        let mut text = String::new();
        for i in from..to {
            let event = serde_json::json!({
                "ts": "2026-12-02T10:00:00.000Z", "device": name, "migration": "m1",
                "step": "packages", "function": "apt", "uptime": i as f64,
                "state": "CMDLOG", "msg": format!("{name} line {i}"),
            });
            text.push_str(&event.to_string());
            text.push('\n');
        }
        log.write_all(text.as_bytes()).expect("events written");
    }

    fn operator(&self, server: &str, args: &[&str]) -> serde_json::Value {
        let output = Command::new(FERRY)
            .args(["fleet"])
            .args(args)
            .args(["--json", "--server", server])
            .args(["--operator-token-file", &self.token_file()])
            .output()
            .expect("ferry fleet runs");
        assert!(output.status.success(), "{}", text(&output));
        serde_json::from_slice(&output.stdout).expect("JSON")
    }

    /// Asserts the server holds exactly events 0..k of `name`, seqs 1..=k,
    /// each once and in order.
    fn assert_exactly(&self, server: &str, name: &str, device: &str, k: usize) {
        let answer = self.operator(server, &["events", device]);
        let events = answer["events"].as_array().expect("an event list");
        let seqs: Vec<u64> = events.iter().filter_map(|e| e["seq"].as_u64()).collect();
        let msgs: Vec<&str> = events
            .iter()
            .filter_map(|e| e["event"]["msg"].as_str())
            .collect();
        let expected: Vec<String> = (0..k).map(|i| format!("{name} line {i}")).collect();
        assert_eq!(seqs, (1..=k as u64).collect::<Vec<_>>(), "{name}'s seqs");
        assert_eq!(msgs, expected, "{name}'s events");
    }

    fn counts(&self, server: &str) -> Vec<(String, u64, u64)> {
        let answer = self.operator(server, &["devices"]);
        answer["devices"]
            .as_array()
            .expect("a device list")
            .iter()
            .map(|d| {
                (
                    d["id"].as_str().unwrap_or_default().to_string(),
                    d["events"].as_u64().unwrap_or_default(),
                    d["acked_seq"].as_u64().unwrap_or_default(),
                )
            })
            .collect()
    }
}

#[test]
fn fifty_agents_deliver_every_event_exactly_once() {
    const N: usize = 50;
    const K: usize = 200;
    let fleet = Fleet::new();
    let server = fleet.serve("127.0.0.1:0");
    let names: Vec<String> = (0..N).map(|i| format!("agent{i:02}")).collect();
    let devices: Vec<String> = names.iter().map(|n| fleet.enrol(&server.url, n)).collect();
    for name in &names {
        fleet.log_events(name, 0, K);
    }

    let started = Instant::now();
    let children: Vec<Child> = names
        .iter()
        .map(|name| {
            fleet
                .agent(name)
                .args(["--once", "--json"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("ferry agent starts")
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().expect("the agent ends");
        assert!(output.status.success(), "{}", text(&output));
        let cycle: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
        assert_eq!(cycle["delivered"], K, "{}", text(&output));
        assert_eq!(cycle["pending"], 0);
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "figures: fleet {N} agent processes x {K} events = {} events delivered in {elapsed:.2} s, {:.0} events/s (2 cores, SQLite, one batch per agent)",
        N * K,
        (N * K) as f64 / elapsed
    );

    let counts = fleet.counts(&server.url);
    assert_eq!(counts.len(), N);
    let total: u64 = counts.iter().map(|(_, events, _)| events).sum();
    assert_eq!(total, (N * K) as u64, "the server holds exactly N*K events");
    assert!(counts
        .iter()
        .all(|(_, e, a)| *e == K as u64 && *a == K as u64));
    for (name, device) in names.iter().zip(&devices) {
        fleet.assert_exactly(&server.url, name, device, K);
    }

    // A second cycle sends nothing again.
    let output = fleet.agent_once(&names[0]);
    assert!(output.status.success(), "{}", text(&output));
    let cycle: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(cycle["delivered"], 0);
    assert_eq!(cycle["taken"], 0);
}

#[test]
fn a_server_killed_mid_way_and_restarted_loses_nothing_and_doubles_nothing() {
    const N: usize = 8;
    const ROUNDS: usize = 20;
    const PER_ROUND: usize = 15;
    let fleet = Fleet::new();
    let listen = format!("127.0.0.1:{}", free_port());
    let mut server = fleet.serve(&listen);
    let url = server.url.clone();
    let names: Vec<String> = (0..N).map(|i| format!("agent{i}")).collect();
    let devices: Vec<String> = names.iter().map(|n| fleet.enrol(&url, n)).collect();
    let spawn = |name: &str| {
        fleet
            .agent(name)
            .arg("--quiet")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ferry agent starts")
    };
    let mut agents: Vec<Child> = names.iter().map(|n| spawn(n)).collect();

    for round in 0..ROUNDS {
        for name in &names {
            fleet.log_events(name, round * PER_ROUND, (round + 1) * PER_ROUND);
        }
        std::thread::sleep(Duration::from_millis(150));
        if round == ROUNDS / 2 {
            // SIGKILL mid-way: batches in flight get no answer; half of
            // the agents are killed too and started again on their state.
            drop(server);
            for (i, agent) in agents.iter_mut().enumerate() {
                if i % 2 == 0 {
                    let _ = agent.kill();
                    let _ = agent.wait();
                    *agent = spawn(&names[i]);
                }
            }
            std::thread::sleep(Duration::from_millis(1500));
            server = fleet.serve(&listen);
            assert_eq!(server.url, url);
        }
    }

    let k = ROUNDS * PER_ROUND;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let counts = fleet.counts(&url);
        if counts.iter().all(|(_, _, acked)| *acked == k as u64) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not everything arrived in time: {counts:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    for agent in &mut agents {
        let _ = agent.kill();
        let _ = agent.wait();
    }
    let counts = fleet.counts(&url);
    let total: u64 = counts.iter().map(|(_, events, _)| events).sum();
    assert_eq!(
        total,
        (N * k) as u64,
        "nothing lost, nothing twice: {counts:?}"
    );
    for (name, device) in names.iter().zip(&devices) {
        fleet.assert_exactly(&url, name, device, k);
    }
}

#[test]
fn an_offline_agent_buffers_then_delivers_everything_once() {
    let fleet = Fleet::new();
    let listen = format!("127.0.0.1:{}", free_port());
    let server = fleet.serve(&listen);
    let url = server.url.clone();
    let device = fleet.enrol(&url, "dev");

    // The identity (with the device's token) is readable by its owner only.
    let mode = std::fs::metadata(fleet.path("dev/identity.json"))
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
        .expect("identity.json");
    assert_eq!(mode, 0o600);

    fleet.log_events("dev", 0, 30);
    let output = fleet.agent_once("dev");
    assert!(output.status.success(), "{}", text(&output));
    drop(server);

    // Offline: every cycle takes the new events into the outbox and fails
    // to deliver them, exit 1, saying they stay buffered.
    fleet.log_events("dev", 30, 70);
    let output = fleet.agent_once("dev");
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output).contains("40 event(s) stay buffered"),
        "{}",
        text(&output)
    );
    fleet.log_events("dev", 70, 100);
    let output = fleet.agent_once("dev");
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let outbox = std::fs::read_to_string(fleet.path("dev/outbox.jsonl")).expect("the outbox");
    assert_eq!(outbox.lines().count(), 70);

    // Back online: all 70 go, once.
    let server = fleet.serve(&listen);
    let output = fleet.agent_once("dev");
    assert!(output.status.success(), "{}", text(&output));
    let cycle: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(cycle["delivered"], 70, "{}", text(&output));
    assert_eq!(cycle["pending"], 0);
    let output = fleet.agent_once("dev");
    let cycle: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(cycle["delivered"], 0);
    fleet.assert_exactly(&server.url, "dev", &device, 100);
    let outbox = std::fs::read_to_string(fleet.path("dev/outbox.jsonl")).expect("the outbox");
    assert_eq!(outbox, "");
}

#[test]
fn a_wrong_operator_token_enrols_nothing() {
    let fleet = Fleet::new();
    let server = fleet.serve("127.0.0.1:0");
    let wrong = fleet.path("wrong.token");
    std::fs::write(&wrong, "not-the-token").expect("a token file");
    let output = Command::new(FERRY)
        .args(["fleet", "enrol", "--server", &server.url])
        .arg("--operator-token-file")
        .arg(&wrong)
        .arg("--state")
        .arg(fleet.path("dev"))
        .output()
        .expect("ferry fleet enrol runs");
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("HTTP 401"),
        "{}",
        text(&output)
    );
    assert!(!fleet.path("dev/identity.json").exists());
    // An agent over a state dir that never enrolled is bad input (exit 2).
    let output = fleet.agent_once("dev");
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(fleet.counts(&server.url).is_empty());
}
