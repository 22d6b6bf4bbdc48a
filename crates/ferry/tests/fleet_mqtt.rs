//! The MQTT "poll now" hint through a real Mosquitto (Debian's
//! /usr/sbin/mosquitto, started here on a free loopback port with its own
//! config): real `ferry fleet serve --mqtt` and `ferry agent --mqtt`
//! processes. Agents told to poll once an hour run a new rollout within
//! seconds, its next wave too; a malformed payload on a device's topic
//! becomes an error event on the server and the agent answers the next
//! hint; a killed broker leaves HTTP polling working; a flood of 1000
//! hints causes a handful of polls.

// Shared by the fleet tests; this one starts its server with other flags.
#[allow(dead_code)]
mod fleet_common;

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ferry_testkit::{skip_unless, Need, Signer};

use fleet_common::{free_port, serve_with, text, Server, FERRY};

/// Leaves a mark in the device's root, so the test sees it ran.
const SCRIPT: &str = "#!/bin/sh\necho applied > \"$FERRY_ROOT/applied\"\n";
/// The agents' poll interval in the hint tests: nothing but a hint makes
/// them poll within a test's lifetime.
const HOURLY: &str = "3600";

/// A Mosquitto of the test's own, killed when dropped.
struct Broker {
    child: Child,
    port: u16,
}

impl Broker {
    fn start(dir: &Path) -> Broker {
        let port = free_port();
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
                 log_dest stderr\n"
            ),
        )
        .expect("the broker's config");
        let log = std::fs::File::create(dir.join("mosquitto.log")).expect("the broker's log");
        // Debian puts it in /usr/sbin, which a user's PATH may lack.
        let program = ["/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or("mosquitto");
        let child = Command::new(program)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("mosquitto starts");
        let broker = Broker { child, port };
        assert!(
            wait_for(Duration::from_secs(10), || TcpStream::connect((
                "127.0.0.1",
                port
            ))
            .is_ok()),
            "mosquitto listens on {port}"
        );
        broker
    }

    fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// Publishes each of `lines` as one message (QoS 1) with mosquitto_pub.
    fn publish(&self, topic: &str, lines: &[&str]) {
        let mut child = Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-q", "1", "-t", topic, "-l"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mosquitto_pub starts");
        let mut stdin = child.stdin.take().expect("its stdin");
        for line in lines {
            writeln!(stdin, "{line}").expect("a line to publish");
        }
        drop(stdin);
        let output = child.wait_with_output().expect("mosquitto_pub ends");
        assert!(output.status.success(), "{}", text(&output));
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A long-running `ferry agent` whose stderr goes to a file.
struct AgentProcess {
    child: Child,
    log: PathBuf,
}

impl AgentProcess {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` every 100 ms until it holds or `limit` passes.
fn wait_for(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    check()
}

/// A test's fleet: its directory, the release key, the broker.
struct Lab {
    dir: tempfile::TempDir,
    signer: Signer,
}

impl Lab {
    fn new() -> Lab {
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(dir.path().join("operator.token"), "mqtt-test-operator\n")
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

    fn serve(&self, interval: &str, broker: &Broker) -> Server {
        serve_with(
            self.dir.path(),
            "127.0.0.1:0",
            &["--interval", interval, "--mqtt", &broker.url()],
        )
    }

    fn enrol(&self, server: &str, i: usize, group: &str) -> String {
        let root = self.path(&format!("root{i}"));
        std::fs::create_dir_all(root.join("etc")).expect("a root");
        std::fs::write(
            root.join("etc/os-release"),
            "ID=debian\nVERSION_ID=\"12\"\n",
        )
        .expect("os-release");
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

    /// Starts `ferry agent --mqtt` for device `i`, logging to agent{i}.log.
    fn agent(&self, i: usize, broker: &str) -> AgentProcess {
        let log = self.path(&format!("agent{i}.log"));
        let child = Command::new(FERRY)
            .arg("agent")
            .arg("--state")
            .arg(self.path(&format!("state{i}")))
            .arg("--root")
            .arg(self.path(&format!("root{i}")))
            .arg("--events")
            .arg(self.path(&format!("events{i}.jsonl")))
            .arg("--keyring")
            .arg(self.signer.keyring_path())
            .args(["--mqtt", broker])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("the agent's log"))
            .spawn()
            .expect("ferry agent starts");
        AgentProcess { child, log }
    }

    fn fleet_json(&self, server: &str, args: &[&str]) -> serde_json::Value {
        let output = Command::new(FERRY)
            .arg("fleet")
            .args(args)
            .args(["--json", "--server", server])
            .args(["--operator-token-file", &self.token_file()])
            .output()
            .expect("ferry fleet runs");
        assert!(output.status.success(), "{args:?}: {}", text(&output));
        serde_json::from_slice(&output.stdout).expect("JSON")
    }

    fn create(&self, server: &str, group: &str, extra: &[&str]) -> String {
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
        let created = self.fleet_json(server, &args);
        created["id"].as_str().expect("a rollout id").to_string()
    }

    fn succeeded(&self, server: &str, id: &str) -> u64 {
        self.fleet_json(server, &["rollout", "status", id])["counts"]["succeeded"]
            .as_u64()
            .unwrap_or(0)
    }
}

/// Waits until every agent says it is subscribed to its topic, so that a
/// hint published from now on reaches it.
fn wait_subscribed(agents: &[AgentProcess]) {
    for agent in agents {
        assert!(
            wait_for(Duration::from_secs(20), || agent
                .log()
                .contains("mqtt: subscribed to ferry/v1/devices/")),
            "the agent subscribed: {}",
            agent.log()
        );
    }
}

fn hint_polls(agent: &AgentProcess) -> usize {
    agent
        .log()
        .lines()
        .filter(|l| l.starts_with("hint: polling now"))
        .count()
}

#[test]
fn hourly_agents_run_a_new_rollout_and_its_next_wave_within_seconds_of_the_hint() {
    skip_unless!(Need::Tool("mosquitto"), Need::Tool("gpg"));
    const N: usize = 4;
    let lab = Lab::new();
    let broker = Broker::start(lab.dir.path());
    let server = lab.serve(HOURLY, &broker);
    for i in 0..N {
        lab.enrol(&server.url, i, "lab");
    }
    let agents: Vec<AgentProcess> = (0..N).map(|i| lab.agent(i, &broker.url())).collect();
    wait_subscribed(&agents);

    // A canary of one, then everyone after a 2-second dwell: the second
    // wave opens on the server's own clock and is hinted too. Without the
    // hint nothing would run for an hour.
    let start = Instant::now();
    let id = lab.create(&server.url, "lab", &["--canary", "1", "--dwell", "2"]);
    assert!(
        wait_for(Duration::from_secs(30), || lab.succeeded(&server.url, &id)
            >= 1),
        "the canary ran within seconds: {:#}",
        lab.fleet_json(&server.url, &["rollout", "status", &id])
    );
    let canary = start.elapsed();
    assert!(
        wait_for(Duration::from_secs(30), || lab.succeeded(&server.url, &id)
            == N as u64),
        "the second wave ran within seconds: {:#}",
        lab.fleet_json(&server.url, &["rollout", "status", &id])
    );
    let all = start.elapsed();
    eprintln!("hint latency: canary done after {canary:?}, all {N} after {all:?}");
    let status = lab.fleet_json(&server.url, &["rollout", "status", &id]);
    assert_eq!(status["state"], "completed", "{status:#}");
    for (i, agent) in agents.iter().enumerate() {
        assert_eq!(
            std::fs::read_to_string(lab.path(&format!("root{i}/applied"))).ok(),
            Some("applied\n".to_string()),
            "device {i} ran the script: {}",
            agent.log()
        );
        assert!(hint_polls(agent) >= 1, "a hint woke it: {}", agent.log());
    }
}

#[test]
fn a_malformed_payload_is_an_error_event_and_the_agent_answers_the_next_hint() {
    skip_unless!(
        Need::Tool("mosquitto"),
        Need::Tool("mosquitto_pub"),
        Need::Tool("gpg")
    );
    let lab = Lab::new();
    let broker = Broker::start(lab.dir.path());
    let server = lab.serve(HOURLY, &broker);
    let device = lab.enrol(&server.url, 0, "lab");
    let mut agents = vec![lab.agent(0, &broker.url())];
    wait_subscribed(&agents);

    let topic = format!("ferry/v1/devices/{device}/poll");
    broker.publish(
        &topic,
        &["not a hint", r#"{"v":1,"reason":"assignment","cmd":"x"}"#],
    );
    let error_event = || {
        let events = lab.fleet_json(&server.url, &["events", &device]);
        events["events"].as_array().is_some_and(|list| {
            list.iter().any(|e| {
                e["event"]["state"] == "ERROR"
                    && e["event"]["msg"]
                        .as_str()
                        .is_some_and(|m| m.contains("malformed MQTT hint"))
            })
        })
    };
    assert!(
        wait_for(Duration::from_secs(30), error_event),
        "an error event reached the server: {:#}\nagent: {}",
        lab.fleet_json(&server.url, &["events", &device]),
        agents[0].log()
    );
    assert!(
        agents[0].running(),
        "the agent goes on: {}",
        agents[0].log()
    );

    let id = lab.create(&server.url, "lab", &["--canary", "1"]);
    assert!(
        wait_for(Duration::from_secs(30), || lab.succeeded(&server.url, &id)
            == 1),
        "the next hint was answered: {}",
        agents[0].log()
    );
    assert!(agents[0].running());
}

#[test]
fn with_the_broker_killed_agents_go_on_over_http_polling() {
    skip_unless!(Need::Tool("mosquitto"), Need::Tool("gpg"));
    let lab = Lab::new();
    let mut broker = Broker::start(lab.dir.path());
    let url = broker.url();
    // Polls every second: HTTP alone must carry the rollout.
    let mut server = lab.serve("1", &broker);
    for i in 0..3 {
        lab.enrol(&server.url, i, "lab");
    }
    let mut agents: Vec<AgentProcess> = (0..2).map(|i| lab.agent(i, &url)).collect();
    wait_subscribed(&agents);

    broker.kill();
    for agent in &agents {
        assert!(
            wait_for(Duration::from_secs(20), || agent
                .log()
                .contains("cannot be reached")),
            "the agent noticed the broker is gone: {}",
            agent.log()
        );
    }
    // One more agent starts with the broker already down.
    agents.push(lab.agent(2, &url));
    let id = lab.create(&server.url, "lab", &["--canary", "3"]);
    assert!(
        wait_for(Duration::from_secs(40), || lab.succeeded(&server.url, &id)
            == 3),
        "the rollout ran over HTTP: {:#}",
        lab.fleet_json(&server.url, &["rollout", "status", &id])
    );
    for agent in &mut agents {
        assert!(agent.running(), "no agent crashed: {}", agent.log());
        assert_eq!(hint_polls(agent), 0, "no hint came: {}", agent.log());
    }
    assert!(
        matches!(server.child.try_wait(), Ok(None)),
        "the server still runs"
    );
    assert_eq!(lab.fleet_json(&server.url, &["status"])["devices"], 3);
}

#[test]
fn a_flood_of_a_thousand_hints_causes_a_bounded_number_of_polls() {
    skip_unless!(Need::Tool("mosquitto"), Need::Tool("mosquitto_pub"));
    const FLOOD: usize = 1000;
    let lab = Lab::new();
    let broker = Broker::start(lab.dir.path());
    let server = lab.serve(HOURLY, &broker);
    let device = lab.enrol(&server.url, 0, "lab");
    let agents = vec![lab.agent(0, &broker.url())];
    wait_subscribed(&agents);

    let topic = format!("ferry/v1/devices/{device}/poll");
    let hint = r#"{"v":1,"reason":"assignment"}"#;
    let start = Instant::now();
    broker.publish(&topic, &vec![hint; FLOOD]);
    let flood = start.elapsed();
    // Let the gate let out whatever the flood left pending.
    let gap = ferry_fleet::MIN_HINT_GAP;
    std::thread::sleep(gap + Duration::from_secs(2));
    let polls = hint_polls(&agents[0]);
    // One poll per gap at most, over the flood and the wait after it,
    // plus the one the first hint lets out.
    let window = start.elapsed().as_secs_f64();
    let bound = (window / gap.as_secs_f64()).ceil() as usize + 1;
    eprintln!(
        "hint flood: {FLOOD} hints published in {flood:?}, {polls} poll(s) in {window:.1} s \
         (bound {bound})"
    );
    assert!(polls >= 1, "the flood woke the agent: {}", agents[0].log());
    assert!(
        polls <= bound,
        "{polls} polls > {bound}: {}",
        agents[0].log()
    );
    let hinted: u64 = agents[0]
        .log()
        .lines()
        .filter_map(|l| l.strip_prefix("hint: polling now ("))
        .filter_map(|l| l.split(' ').next()?.parse::<u64>().ok())
        .sum();
    assert!(
        hinted > polls as u64,
        "hints were coalesced into polls: {}",
        agents[0].log()
    );
}
