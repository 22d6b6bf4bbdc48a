//! The simulator against the real server in this process, small and short,
//! so that the bench (bench/fleet-scale.sh, 10,000 agents) cannot rot: its
//! faults first (server down, wrong operator token), then 50 agents with a
//! rollout that halts at its abort threshold and nothing lost or doubled.

// The fleet's own tests start the real server this way; one copy of it.
#[path = "../../ferry-fleet/tests/common/mod.rs"]
mod common;

use std::time::Duration;

use ferry_fleet_sim::{RolloutPlan, SimConfig, SimError};

const OPERATOR: &str = "smoke-operator-token";

fn config(server: String, agents: usize) -> SimConfig {
    SimConfig {
        server,
        operator_token: OPERATOR.into(),
        agents,
        duration: Duration::from_secs(4),
        events_per_poll: 3,
        fail_fraction: 0.5,
        enrol_concurrency: 8,
        rollout: None,
        seed: 1,
    }
}

#[test]
fn a_server_that_is_down_fails_the_run_with_a_connect_error() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let error = ferry_fleet_sim::run_blocking(config(format!("http://127.0.0.1:{port}"), 3))
        .expect_err("nothing to enrol with");
    assert!(matches!(error, SimError::Connect(_)), "{error}");
}

#[test]
fn a_wrong_operator_token_is_refused_at_enrolment() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let server = common::start(dir.path(), OPERATOR, 1);
    let mut wrong = config(server, 2);
    wrong.operator_token = "not-the-operator".into();
    let error = ferry_fleet_sim::run_blocking(wrong).expect_err("enrolment is refused");
    assert!(
        matches!(error, SimError::Status { what: "enrol", status, .. } if status.as_u16() == 401),
        "{error}"
    );
}

#[test]
fn a_url_that_is_not_http_addr_port_is_refused() {
    let error = ferry_fleet_sim::run_blocking(config("fleet.invalid:80".into(), 1))
        .expect_err("not a URL the simulator takes");
    assert!(matches!(error, SimError::Url(_)), "{error}");
}

#[test]
fn fifty_agents_poll_deliver_every_event_once_and_the_rollout_halts() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let server = common::start(dir.path(), OPERATOR, 1);
    let mut sim = config(server, 50);
    sim.rollout = Some(RolloutPlan {
        after: Duration::from_millis(1500),
        canary: "20".into(),
        abort_failures: 3,
    });
    let report = ferry_fleet_sim::run_blocking(sim).expect("the simulation runs");
    eprintln!("{report:?}");
    assert_eq!(report.agents, 50);
    assert_eq!(report.poll_errors, 0, "every poll answered");
    // Each agent polls about once a second for 4 s, after a spread start.
    assert!(report.polls >= 50 * 2, "{} polls", report.polls);
    assert!(report.poll_p50_ms > 0.0 && report.poll_p50_ms <= report.poll_p99_ms);
    assert!(report.events_sent >= 50 * 3 * 2);
    assert_eq!(report.events_stored, report.events_sent, "all stored once");
    assert_eq!((report.lost, report.doubled), (0, 0));
    assert_eq!(report.sent.len(), 50);
    let halt = report.rollout.expect("the rollout was made");
    assert_eq!(halt.state, "paused", "halted at the abort threshold");
    assert!(halt.failures_acked >= 3, "{halt:?}");
    let secs = halt
        .halt_secs
        .expect("the threshold was crossed and seen halted");
    assert!(secs < 5.0, "halted {secs} s after the threshold");
}
