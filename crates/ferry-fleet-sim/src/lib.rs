//! ferry-fleet-sim: many simulated agents in one process against a real
//! fleet server, for bench/fleet-scale.sh and its smoke test. Each agent
//! enrols with the operator token, polls with its ETag at the interval the
//! server sets (with jitter), posts numbered event batches until they are
//! acknowledged, and reports a result (succeeded, or failed for a set
//! fraction) for every rollout command it is given. An operator task makes
//! a rollout whose abort threshold the failures cross and times how long
//! the server takes to halt it.
//!
//! Not an agent: it downloads and verifies no artifact and runs nothing;
//! the real agent (ferry-fleet's agent.rs) is tested elsewhere. Not part
//! of the product: nothing ships this crate.

mod http;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_fleet::{
    BatchResponse, DevicesResponse, EnrolResponse, EventBatch, PollResponse, RolloutsResponse,
    SequencedEvent,
};
use ferry_journal::{Event, EventState};
use hyper::header::ETAG;
use hyper::{Method, StatusCode};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::http::{Answer, Conn};

/// The label every simulated device joins; the rollout goes to it.
pub const GROUP: &str = "sim";

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("the server URL {0:?} is not http://HOST:PORT with a numeric address")]
    Url(String),
    #[error("cannot connect to the server: {0}")]
    Connect(#[source] std::io::Error),
    #[error("HTTP error: {0}")]
    Http(#[source] hyper::Error),
    #[error("no connection to send on")]
    NoConnection,
    #[error("cannot build a request: {0}")]
    Request(String),
    #[error("{what}: the server answered {status}: {body}")]
    Status {
        what: &'static str,
        status: StatusCode,
        body: String,
    },
    #[error("{what}: the answer is not the JSON expected: {source}")]
    Decode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot start the runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("a simulated agent's task failed: {0}")]
    Join(String),
}

/// The rollout the operator task makes, and when it counts as crossed.
#[derive(Debug, Clone)]
pub struct RolloutPlan {
    /// Seconds after every agent enrolled that the rollout is created.
    pub after: Duration,
    /// The first wave, as the rollout request takes it ("10%" or "20").
    pub canary: String,
    /// The rollout halts once this many of its devices failed.
    pub abort_failures: u64,
}

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The server's base URL, `http://ADDR:PORT`.
    pub server: String,
    pub operator_token: String,
    pub agents: usize,
    /// How long the agents poll after they all enrolled.
    pub duration: Duration,
    /// Events each agent makes per poll cycle (posted as one batch).
    pub events_per_poll: usize,
    /// The fraction (0..=1) of rollout commands an agent reports failed.
    pub fail_fraction: f64,
    /// Enrolments in flight at once (each is a write on the server).
    pub enrol_concurrency: usize,
    pub rollout: Option<RolloutPlan>,
    pub seed: u64,
}

/// The rollout's halt as the operator saw it over the API.
#[derive(Debug, Clone, Serialize)]
pub struct HaltReport {
    pub rollout_id: String,
    /// The state the rollout ended in (paused or aborted when it halted).
    pub state: String,
    /// Failed results acknowledged by the server.
    pub failures_acked: u64,
    /// Seconds from the acknowledgement of the failure that crossed the
    /// threshold to the first status read showing the rollout halted;
    /// `None` when it never halted or was never crossed.
    pub halt_secs: Option<f64>,
}

/// What one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub agents: usize,
    pub enrol_secs: f64,
    pub run_secs: f64,
    pub polls: u64,
    pub poll_errors: u64,
    pub poll_p50_ms: f64,
    pub poll_p99_ms: f64,
    pub poll_max_ms: f64,
    /// Events made and sent at least once.
    pub events_sent: u64,
    /// Events the server answered as newly stored.
    pub events_stored: u64,
    /// Events the server answered as already held (a batch sent again).
    pub events_duplicate: u64,
    pub batch_errors: u64,
    pub events_per_sec: f64,
    pub results: u64,
    pub rollout: Option<HaltReport>,
    /// Counted from the server's device list at the end: events sent but
    /// not stored, and events stored beyond those sent.
    pub lost: u64,
    pub doubled: u64,
    /// Each device's id and the highest seq it sent (1..=seq, no gaps).
    #[serde(skip)]
    pub sent: Vec<(String, u64)>,
}

/// Counters all agents share.
#[derive(Default)]
struct Shared {
    stored: AtomicU64,
    duplicates: AtomicU64,
    batch_errors: AtomicU64,
    poll_errors: AtomicU64,
    results: AtomicU64,
    failures_acked: AtomicU64,
    /// The failure count that crosses the rollout's abort threshold.
    crossing: Option<u64>,
    /// When the failure that crossed the threshold was acknowledged.
    crossed: Mutex<Option<Instant>>,
}

struct Agent {
    id: String,
    token: String,
    interval: Duration,
}

/// What one agent hands back when it stops.
struct AgentEnd {
    id: String,
    sent: u64,
    latencies_us: Vec<u32>,
}

fn addr_of(server: &str) -> Result<SocketAddr, SimError> {
    server
        .trim_end_matches('/')
        .strip_prefix("http://")
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| SimError::Url(server.to_string()))
}

fn expect_json<T: serde::de::DeserializeOwned>(
    what: &'static str,
    answer: &Answer,
    ok: StatusCode,
) -> Result<T, SimError> {
    if answer.status != ok {
        return Err(SimError::Status {
            what,
            status: answer.status,
            body: String::from_utf8_lossy(&answer.body).into_owned(),
        });
    }
    serde_json::from_slice(&answer.body).map_err(|source| SimError::Decode { what, source })
}

fn to_json(value: &impl Serialize) -> Result<Vec<u8>, SimError> {
    serde_json::to_vec(value).map_err(|e| SimError::Request(e.to_string()))
}

/// Runs the simulation on a runtime of its own.
pub fn run_blocking(config: SimConfig) -> Result<Report, SimError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(SimError::Runtime)?;
    runtime.block_on(run(config))
}

/// Enrols `config.agents` devices, runs them for `config.duration` (with
/// the rollout, when planned), then flushes what they hold and counts what
/// the server stored.
pub async fn run(config: SimConfig) -> Result<Report, SimError> {
    let addr = addr_of(&config.server)?;
    let config = Arc::new(config);
    let started = Instant::now();
    let agents = enrol_all(addr, &config).await?;
    let enrol_secs = started.elapsed().as_secs_f64();

    let shared = Arc::new(Shared {
        crossing: config.rollout.as_ref().map(|plan| plan.abort_failures),
        ..Shared::default()
    });
    let run_start = Instant::now();
    let deadline = run_start + config.duration;
    let mut tasks = tokio::task::JoinSet::new();
    for (index, agent) in agents.into_iter().enumerate() {
        let shared = Arc::clone(&shared);
        let config = Arc::clone(&config);
        tasks.spawn(run_agent(addr, agent, index, config, shared, deadline));
    }
    let operator = config.rollout.clone().map(|plan| {
        tokio::spawn(watch_rollout(
            addr,
            Arc::clone(&config),
            plan,
            Arc::clone(&shared),
            deadline,
        ))
    });
    let mut ends = Vec::with_capacity(config.agents);
    while let Some(end) = tasks.join_next().await {
        ends.push(end.map_err(|e| SimError::Join(e.to_string()))?);
    }
    let run_secs = run_start.elapsed().as_secs_f64();
    let rollout = match operator {
        Some(task) => Some(task.await.map_err(|e| SimError::Join(e.to_string()))??),
        None => None,
    };

    let (lost, doubled) = count_stored(addr, &config.operator_token, &ends).await?;
    let mut latencies: Vec<u32> = ends
        .iter()
        .flat_map(|e| e.latencies_us.iter().copied())
        .collect();
    latencies.sort_unstable();
    let stored = shared.stored.load(Ordering::Relaxed);
    Ok(Report {
        agents: ends.len(),
        enrol_secs,
        run_secs,
        polls: latencies.len() as u64,
        poll_errors: shared.poll_errors.load(Ordering::Relaxed),
        poll_p50_ms: percentile_ms(&latencies, 0.50),
        poll_p99_ms: percentile_ms(&latencies, 0.99),
        poll_max_ms: percentile_ms(&latencies, 1.0),
        events_sent: ends.iter().map(|e| e.sent).sum(),
        events_stored: stored,
        events_duplicate: shared.duplicates.load(Ordering::Relaxed),
        batch_errors: shared.batch_errors.load(Ordering::Relaxed),
        events_per_sec: stored as f64 / run_secs.max(f64::EPSILON),
        results: shared.results.load(Ordering::Relaxed),
        rollout,
        lost,
        doubled,
        sent: ends.into_iter().map(|e| (e.id, e.sent)).collect(),
    })
}

/// The `q` quantile of sorted microseconds, in milliseconds (nearest rank).
pub fn percentile_ms(sorted_us: &[u32], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted_us.len() as f64).ceil() as usize).clamp(1, sorted_us.len());
    f64::from(sorted_us[rank - 1]) / 1000.0
}

async fn enrol_all(addr: SocketAddr, config: &Arc<SimConfig>) -> Result<Vec<Agent>, SimError> {
    let permits = Arc::new(Semaphore::new(config.enrol_concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..config.agents {
        let permits = Arc::clone(&permits);
        let config = Arc::clone(config);
        tasks.spawn(async move {
            let _permit = permits
                .acquire_owned()
                .await
                .map_err(|e| SimError::Join(e.to_string()))?;
            let mut conn = Conn::new(addr);
            let body = to_json(&ferry_fleet::EnrolRequest {
                os: Some("debian".into()),
                version: Some("12".into()),
                labels: vec![GROUP.into()],
            })?;
            let answer = conn
                .send(
                    Method::POST,
                    "/api/v1/enrol",
                    &config.operator_token,
                    Some(body),
                    None,
                )
                .await?;
            let enrolled: EnrolResponse = expect_json("enrol", &answer, StatusCode::CREATED)?;
            Ok::<_, SimError>(Agent {
                id: enrolled.device_id,
                token: enrolled.token,
                interval: Duration::from_secs(enrolled.interval_secs.max(1)),
            })
        });
    }
    let mut agents = Vec::with_capacity(config.agents);
    while let Some(agent) = tasks.join_next().await {
        agents.push(agent.map_err(|e| SimError::Join(e.to_string()))??);
    }
    Ok(agents)
}

/// `interval` times a random factor in [0.9, 1.1): the agents' jitter.
fn jittered(interval: Duration, rng: &mut StdRng) -> Duration {
    interval.mul_f64(rng.gen_range(0.9..1.1))
}

async fn run_agent(
    addr: SocketAddr,
    agent: Agent,
    index: usize,
    config: Arc<SimConfig>,
    shared: Arc<Shared>,
    deadline: Instant,
) -> AgentEnd {
    let mut rng = StdRng::seed_from_u64(config.seed ^ (index as u64).wrapping_mul(0x9E37_79B9));
    let mut conn = Conn::new(addr);
    let mut interval = agent.interval;
    let mut etag: Option<String> = None;
    let mut last_command: Option<String> = None;
    let mut next_seq: u64 = 1;
    let mut pending: Vec<SequencedEvent> = Vec::new();
    let mut latencies_us = Vec::new();
    let uptime = Instant::now();
    // Agents start spread over one interval, as a fleet's do.
    tokio::time::sleep(interval.mul_f64(rng.gen::<f64>())).await;
    while Instant::now() < deadline {
        let began = Instant::now();
        let answer = conn
            .send(
                Method::GET,
                "/api/v1/poll?os=debian&version=12",
                &agent.token,
                None,
                etag.as_deref(),
            )
            .await;
        let assignment = match answer {
            Ok(a) if a.status == StatusCode::NOT_MODIFIED => {
                latencies_us.push(elapsed_us(began));
                None
            }
            Ok(a) => match expect_json::<PollResponse>("poll", &a, StatusCode::OK) {
                Ok(poll) => {
                    latencies_us.push(elapsed_us(began));
                    etag = a
                        .headers
                        .get(ETAG)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    interval = Duration::from_secs(poll.interval_secs.max(1));
                    poll.assignment
                }
                Err(_) => {
                    shared.poll_errors.fetch_add(1, Ordering::Relaxed);
                    None
                }
            },
            Err(_) => {
                shared.poll_errors.fetch_add(1, Ordering::Relaxed);
                None
            }
        };
        if let Some(command) = assignment {
            if last_command.as_deref() != Some(command.command_id.as_str()) {
                let failed = rng.gen::<f64>() < config.fail_fraction;
                if report_result(
                    &mut conn,
                    &agent.token,
                    &command.command_id,
                    failed,
                    &shared,
                )
                .await
                {
                    last_command = Some(command.command_id);
                }
            }
        }
        for _ in 0..config.events_per_poll {
            pending.push(SequencedEvent {
                seq: next_seq,
                event: make_event(&agent.id, next_seq, uptime.elapsed().as_secs_f64()),
            });
            next_seq += 1;
        }
        send_batch(&mut conn, &agent.token, &mut pending, &shared).await;
        // The run ends at its deadline, not one interval after it.
        let wake = (Instant::now() + jittered(interval, &mut rng)).min(deadline);
        tokio::time::sleep_until(wake.into()).await;
    }
    // What is still unacknowledged is sent again, as an agent's outbox is
    // after a reconnect, until the server takes it.
    for _ in 0..20 {
        if pending.is_empty() {
            break;
        }
        if !send_batch(&mut conn, &agent.token, &mut pending, &shared).await {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    AgentEnd {
        id: agent.id,
        sent: next_seq - 1,
        latencies_us,
    }
}

fn elapsed_us(began: Instant) -> u32 {
    u32::try_from(began.elapsed().as_micros()).unwrap_or(u32::MAX)
}

fn make_event(device: &str, seq: u64, uptime: f64) -> Event {
    Event {
        ts: ferry_journal::rfc3339_now(),
        device: device.to_string(),
        migration: "fleet-scale".into(),
        step: "simulate".into(),
        function: "poll".into(),
        uptime,
        state: EventState::Ok,
        msg: format!("simulated event {seq}"),
    }
}

/// Posts what is pending (at most a batch's worth); drops what the answer
/// acknowledges. False when the batch did not get through.
async fn send_batch(
    conn: &mut Conn,
    token: &str,
    pending: &mut Vec<SequencedEvent>,
    shared: &Shared,
) -> bool {
    if pending.is_empty() {
        return true;
    }
    let take = pending.len().min(ferry_fleet::MAX_BATCH);
    let batch = EventBatch {
        events: pending[..take].to_vec(),
    };
    let Ok(body) = to_json(&batch) else {
        return false;
    };
    let answer = conn
        .send(Method::POST, "/api/v1/events", token, Some(body), None)
        .await;
    match answer.and_then(|a| expect_json::<BatchResponse>("events", &a, StatusCode::OK)) {
        Ok(stored) => {
            shared.stored.fetch_add(stored.stored, Ordering::Relaxed);
            shared
                .duplicates
                .fetch_add(stored.duplicates, Ordering::Relaxed);
            let acked = u64::try_from(stored.acked_seq).unwrap_or(0);
            pending.retain(|e| e.seq > acked);
            true
        }
        Err(_) => {
            shared.batch_errors.fetch_add(1, Ordering::Relaxed);
            false
        }
    }
}

/// Reports a command's outcome; true once the server took it.
async fn report_result(
    conn: &mut Conn,
    token: &str,
    command_id: &str,
    failed: bool,
    shared: &Shared,
) -> bool {
    let report = ferry_fleet::ResultReport {
        command_id: command_id.to_string(),
        outcome: if failed {
            ferry_fleet::Outcome::Failed
        } else {
            ferry_fleet::Outcome::Succeeded
        },
        step: Some("simulate".into()),
        reason: failed.then(|| "simulated failure".to_string()),
        os: None,
        version: None,
    };
    let Ok(body) = to_json(&report) else {
        return false;
    };
    let answer = conn
        .send(Method::POST, "/api/v1/results", token, Some(body), None)
        .await;
    match answer
        .and_then(|a| expect_json::<ferry_fleet::ResultAnswer>("result", &a, StatusCode::OK))
    {
        Ok(answer) => {
            shared.results.fetch_add(1, Ordering::Relaxed);
            if failed && answer.recorded {
                let n = shared.failures_acked.fetch_add(1, Ordering::Relaxed) + 1;
                if Some(n) == shared.crossing {
                    if let Ok(mut crossed) = shared.crossed.lock() {
                        *crossed = Some(Instant::now());
                    }
                }
            }
            true
        }
        Err(_) => false,
    }
}

/// The operator: makes the rollout after `plan.after`, then reads its
/// status every 50 ms until it halts (or the run ends).
async fn watch_rollout(
    addr: SocketAddr,
    config: Arc<SimConfig>,
    plan: RolloutPlan,
    shared: Arc<Shared>,
    deadline: Instant,
) -> Result<HaltReport, SimError> {
    tokio::time::sleep(plan.after).await;
    let mut conn = Conn::new(addr);
    let request = serde_json::json!({
        "name": "fleet-scale",
        "group": GROUP,
        "artifact": {
            "kind": "script",
            "content": "#!/bin/sh\nexit 0\n",
            // The simulated agents run nothing and check no signature.
            "signature": "-----BEGIN PGP SIGNATURE-----\nsimulated\n-----END PGP SIGNATURE-----\n",
        },
        "canary": plan.canary,
        "waves": [50.0, 100.0],
        // The canary's gate would pass (most succeed); the abort criteria
        // are what halts it.
        "dwell_secs": 3600,
        "gate": { "success_percent": 50.0 },
        "abort": { "failures": plan.abort_failures, "min_finished": 0 },
        "on_failure": "pause",
    });
    let answer = conn
        .send(
            Method::POST,
            "/api/v1/rollouts",
            &config.operator_token,
            Some(to_json(&request)?),
            None,
        )
        .await?;
    let created: serde_json::Value = expect_json("rollout", &answer, StatusCode::CREATED)?;
    let id = created["id"].as_str().unwrap_or_default().to_string();
    let mut state = "active".to_string();
    let mut halted_at = None;
    while Instant::now() < deadline {
        let answer = conn
            .send(
                Method::GET,
                "/api/v1/rollouts",
                &config.operator_token,
                None,
                None,
            )
            .await?;
        let list: RolloutsResponse = expect_json("rollouts", &answer, StatusCode::OK)?;
        if let Some(status) = list.rollouts.iter().find(|r| r.id == id) {
            state = serde_json::to_value(status.state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
        }
        if state != "active" {
            halted_at = Some(Instant::now());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let crossed = shared.crossed.lock().ok().and_then(|c| *c);
    let halt_secs = match (crossed, halted_at) {
        (Some(c), Some(h)) => Some(h.saturating_duration_since(c).as_secs_f64()),
        _ => None,
    };
    Ok(HaltReport {
        rollout_id: id,
        state,
        failures_acked: shared.failures_acked.load(Ordering::Relaxed),
        halt_secs,
    })
}

/// Compares what each agent sent with the server's device list: an event
/// is lost when its seq is past the device's acknowledged seq, doubled when
/// the device has more events stored than it sent.
async fn count_stored(
    addr: SocketAddr,
    operator_token: &str,
    ends: &[AgentEnd],
) -> Result<(u64, u64), SimError> {
    let mut conn = Conn::new(addr);
    let answer = conn
        .send(Method::GET, "/api/v1/devices", operator_token, None, None)
        .await?;
    let list: DevicesResponse = expect_json("devices", &answer, StatusCode::OK)?;
    let stored: std::collections::HashMap<&str, (i64, i64)> = list
        .devices
        .iter()
        .map(|d| (d.id.as_str(), (d.acked_seq, d.events)))
        .collect();
    let (mut lost, mut doubled) = (0, 0);
    for end in ends {
        let (acked, events) = stored.get(end.id.as_str()).copied().unwrap_or((0, 0));
        let acked = u64::try_from(acked).unwrap_or(0);
        let events = u64::try_from(events).unwrap_or(0);
        lost += end.sent.saturating_sub(acked);
        doubled += events.saturating_sub(end.sent);
    }
    Ok((lost, doubled))
}
