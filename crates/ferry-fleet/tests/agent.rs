//! The agent's exactly-once across crashes, against the real server on
//! loopback: a crash between the outbox append and the state save, a torn
//! outbox line, and a crash between the server's acknowledgement and the
//! outbox trim each end with every event stored once.

mod common;

use std::io::Write;
use std::path::Path;

use ferry_fleet::{Agent, AgentConfig};

const OPERATOR: &str = "operator-secret-for-agent-tests";

fn start(dir: &Path) -> String {
    common::start(dir, OPERATOR, 1)
}

fn log_events(log: &Path, from: usize, to: usize) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("the event log");
    for i in from..to {
        writeln!(
            file,
            r#"{{"ts":"2026-12-02T10:00:00.000Z","device":"d","migration":"m","step":"s","function":"f","uptime":{i},"state":"OK","msg":"line {i}"}}"#
        )
        .expect("an event written");
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    server: String,
    device: String,
    config: AgentConfig,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = start(dir.path());
    let state = dir.path().join("state");
    let identity = ferry_fleet::enrol(&server, OPERATOR, &state, None, None, Vec::new())
        .expect("an enrolment");
    let config = AgentConfig {
        state_dir: state,
        event_log: dir.path().join("events.jsonl"),
        os: None,
        version: None,
        server: None,
        ..AgentConfig::default()
    };
    Setup {
        _dir: dir,
        server,
        device: identity.device_id,
        config,
    }
}

/// The messages the server holds for the device, in seq order, with their seqs.
fn stored(setup: &Setup) -> Vec<(i64, String)> {
    ferry_fleet::events(&setup.server, OPERATOR, &setup.device)
        .expect("the event list")
        .into_iter()
        .map(|e| {
            (
                e.seq,
                e.event["msg"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn expected(n: usize) -> Vec<(i64, String)> {
    (0..n)
        .map(|i| (i as i64 + 1, format!("line {i}")))
        .collect()
}

#[test]
fn a_crash_before_the_state_save_takes_no_event_twice() {
    let setup = setup();
    log_events(&setup.config.event_log, 0, 10);
    let state_file = setup.config.state_dir.join("state.json");
    let mut agent = Agent::open(setup.config.clone()).expect("the agent");
    let before = std::fs::read(&state_file).expect("state.json");
    assert_eq!(agent.take_events().expect("events taken"), (10, 0));
    drop(agent);
    // The crash: the outbox has the events, state.json does not know.
    std::fs::write(&state_file, before).expect("the old state");

    let mut agent = Agent::open(setup.config.clone()).expect("the agent again");
    assert_eq!(agent.pending(), 10);
    assert_eq!(agent.take_events().expect("events taken"), (0, 0));
    log_events(&setup.config.event_log, 10, 15);
    assert_eq!(agent.take_events().expect("events taken"), (5, 0));
    assert_eq!(agent.upload().expect("delivered"), 15);
    assert_eq!(stored(&setup), expected(15));
}

#[test]
fn a_torn_outbox_line_is_dropped_and_taken_again() {
    let setup = setup();
    log_events(&setup.config.event_log, 0, 4);
    let mut agent = Agent::open(setup.config.clone()).expect("the agent");
    agent.take_events().expect("events taken");
    drop(agent);
    // A crash in the middle of the next append: half a line, no newline.
    let outbox = setup.config.state_dir.join("outbox.jsonl");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&outbox)
        .expect("the outbox");
    file.write_all(br#"{"seq":5,"src_end":9"#)
        .expect("a torn line");
    drop(file);

    let mut agent = Agent::open(setup.config.clone()).expect("the agent again");
    assert_eq!(agent.pending(), 4);
    let text = std::fs::read_to_string(&outbox).expect("the outbox");
    assert_eq!(text.lines().count(), 4);
    assert!(text.ends_with('\n'));
    log_events(&setup.config.event_log, 4, 6);
    assert_eq!(agent.take_events().expect("events taken"), (2, 0));
    assert_eq!(agent.upload().expect("delivered"), 6);
    assert_eq!(stored(&setup), expected(6));
}

#[test]
fn a_crash_before_the_outbox_trim_resends_without_doubling() {
    let setup = setup();
    log_events(&setup.config.event_log, 0, 700);
    let mut agent = Agent::open(setup.config.clone()).expect("the agent");
    agent.take_events().expect("events taken");
    let outbox = setup.config.state_dir.join("outbox.jsonl");
    let state_file = setup.config.state_dir.join("state.json");
    let (outbox_before, state_before) = (
        std::fs::read(&outbox).expect("the outbox"),
        std::fs::read(&state_file).expect("state.json"),
    );
    // Two batches (500 + 200), both acknowledged.
    assert_eq!(agent.upload().expect("delivered"), 700);
    assert_eq!(agent.pending(), 0);
    drop(agent);
    // The crash: the server stored them, the device never trimmed.
    std::fs::write(&outbox, outbox_before).expect("the old outbox");
    std::fs::write(&state_file, state_before).expect("the old state");

    let mut agent = Agent::open(setup.config.clone()).expect("the agent again");
    assert_eq!(agent.pending(), 700);
    assert_eq!(agent.upload().expect("acknowledged again"), 700);
    assert_eq!(agent.pending(), 0);
    assert_eq!(stored(&setup), expected(700));
    // Unreadable lines in the log are skipped, not sent.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&setup.config.event_log)
        .and_then(|mut f| f.write_all(b"not an event\n"))
        .expect("a bad line");
    log_events(&setup.config.event_log, 700, 701);
    assert_eq!(agent.take_events().expect("events taken"), (1, 1));
    assert_eq!(agent.upload().expect("delivered"), 1);
    assert_eq!(stored(&setup), expected(701));
}

#[test]
fn an_event_line_still_being_written_waits_for_its_newline() {
    let setup = setup();
    log_events(&setup.config.event_log, 0, 2);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&setup.config.event_log)
        .and_then(|mut f| f.write_all(br#"{"ts":"2026-12-02T10:00:00.000Z","#))
        .expect("half a line");
    let mut agent = Agent::open(setup.config.clone()).expect("the agent");
    assert_eq!(agent.take_events().expect("events taken"), (2, 0));
    std::fs::OpenOptions::new()
        .append(true)
        .open(&setup.config.event_log)
        .and_then(|mut f| {
            f.write_all(
                br#""device":"d","migration":"m","step":"s","function":"f","uptime":2,"state":"OK","msg":"line 2"}"#,
            )?;
            f.write_all(b"\n")
        })
        .expect("the rest of the line");
    assert_eq!(agent.take_events().expect("events taken"), (1, 0));
    assert_eq!(agent.upload().expect("delivered"), 3);
    assert_eq!(stored(&setup), expected(3));
}
