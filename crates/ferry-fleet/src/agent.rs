//! The device agent: polls the server (interval set by the server, with
//! jitter; ETag so an unchanged answer costs nothing), takes new events
//! from the journal's event log into an on-disk outbox, and uploads the
//! outbox in batches, dropping only what the server acknowledged.
//!
//! Exactly once: every event gets the next seq when it enters the outbox
//! (an append-only JSON-lines file, fsync'd before anything else counts it
//! as taken); the server stores `(device, seq)` at most once; the outbox is
//! trimmed only to the server's `acked_seq`. A crash at any instant
//! therefore re-sends at worst what the server already holds, and never
//! gives an event a second seq.
//!
//! State dir: `identity.json` (device id and token, mode 0600),
//! `state.json` (next seq, how far the event log was read, the last ETag),
//! `outbox.jsonl` (events not yet acknowledged, one `{seq, src_end, event}`
//! a line). Not for running artifacts or rollouts (not built yet).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ferry_journal::Event;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::api::{
    BatchResponse, EnrolRequest, EnrolResponse, ErrorBody, EventBatch, PollResponse, SequencedEvent,
};

/// Events per upload; well under the server's limit of 1000.
pub const BATCH: usize = 500;
/// The interval used until the server has said one.
pub const DEFAULT_INTERVAL_SECS: u64 = 60;
/// An answer larger than this is not read.
const MAX_ANSWER: u64 = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("cannot {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a valid agent file: {source}")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("the state dir {0} is not enrolled: run `ferry fleet enrol` first")]
    NotEnrolled(PathBuf),
    #[error("the state dir {0} is already enrolled; use another dir to enrol again")]
    AlreadyEnrolled(PathBuf),
    #[error("the server {server} cannot be reached: {message}")]
    Offline { server: String, message: String },
    #[error("the server refused {what} with HTTP {status}: {message}")]
    Refused {
        what: &'static str,
        status: u16,
        message: String,
    },
    #[error("the server's answer to {what} is not understood: {message}")]
    BadAnswer { what: &'static str, message: String },
}

impl AgentError {
    /// Whether trying again later may work (the server down or restarting),
    /// as opposed to a refusal or a broken state dir.
    pub fn is_transient(&self) -> bool {
        match self {
            AgentError::Offline { .. } => true,
            AgentError::Refused { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

/// The device's identity, given once at enrolment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Identity {
    pub server: String,
    pub device_id: String,
    pub token: String,
}

/// How far the agent got; saved atomically after each change.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct AgentState {
    /// The seq the next event taken from the log gets.
    next_seq: u64,
    /// Bytes of the event log already taken into the outbox.
    log_offset: u64,
    /// Everything up to this seq is acknowledged by the server.
    acked_seq: u64,
    etag: Option<String>,
    interval_secs: Option<u64>,
}

/// One line of the outbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct OutboxRecord {
    seq: u64,
    /// The event log's offset just past this event's line.
    src_end: u64,
    event: Event,
}

/// What one poll-and-upload cycle did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Cycle {
    /// Events newly taken from the log into the outbox.
    pub taken: usize,
    /// Lines of the log that are not events (skipped).
    pub unreadable: usize,
    /// Whether the poll's answer was new (false on 304).
    pub poll_changed: bool,
    /// Events the server acknowledged in this cycle.
    pub delivered: usize,
    /// Events still in the outbox.
    pub pending: usize,
    pub acked_seq: u64,
}

/// What runs on the device: which server, where its state and the event log are.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub state_dir: PathBuf,
    /// The journal's event log the agent forwards (`/var/log/ferry/events.jsonl`).
    pub event_log: PathBuf,
    /// The running OS and its version, reported at each poll.
    pub os: Option<String>,
    pub version: Option<String>,
    /// Overrides the server URL saved at enrolment.
    pub server: Option<String>,
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> AgentError + 'a {
    move |source| AgentError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

fn http_agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .build()
}

fn api_url(server: &str, path: &str) -> String {
    format!("{}/api/v1/{path}", server.trim_end_matches('/'))
}

/// Maps ureq's outcome to ours, reading a refusal's JSON message.
fn answer(
    what: &'static str,
    server: &str,
    result: Result<ureq::Response, ureq::Error>,
) -> Result<ureq::Response, AgentError> {
    match result {
        Ok(response) => Ok(response),
        Err(ureq::Error::Status(status, response)) => {
            let text = read_text(response).unwrap_or_default();
            let message = serde_json::from_str::<ErrorBody>(&text)
                .map(|b| b.error.message)
                .unwrap_or(text);
            Err(AgentError::Refused {
                what,
                status,
                message,
            })
        }
        Err(ureq::Error::Transport(transport)) => Err(AgentError::Offline {
            server: server.to_string(),
            message: transport.to_string(),
        }),
    }
}

fn read_text(response: ureq::Response) -> std::io::Result<String> {
    let mut text = String::new();
    response
        .into_reader()
        .take(MAX_ANSWER)
        .read_to_string(&mut text)?;
    Ok(text)
}

fn decode<T: for<'de> Deserialize<'de>>(
    what: &'static str,
    response: ureq::Response,
) -> Result<T, AgentError> {
    let text = read_text(response).map_err(|e| AgentError::BadAnswer {
        what,
        message: e.to_string(),
    })?;
    serde_json::from_str(&text).map_err(|e| AgentError::BadAnswer {
        what,
        message: e.to_string(),
    })
}

/// GETs `/api/v1/{path}` with a bearer token and decodes the JSON answer.
pub(crate) fn get_json<T: for<'de> Deserialize<'de>>(
    what: &'static str,
    server: &str,
    path: &str,
    token: &str,
    query: &[(&str, &str)],
) -> Result<T, AgentError> {
    let mut request = http_agent()
        .get(&api_url(server, path))
        .set("Authorization", &format!("Bearer {}", token.trim()));
    for (key, value) in query {
        request = request.query(key, value);
    }
    decode(what, answer(what, server, request.call())?)
}

/// Writes `bytes` to `path` through a temporary file with `mode`, fsync'd
/// and renamed, so a crash leaves the old file or the new one.
fn write_private(path: &Path, bytes: &[u8], mode: u32) -> Result<(), AgentError> {
    let tmp = path.with_extension("tmp");
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io("write", &tmp))?;
    file.write_all(bytes).map_err(io("write", &tmp))?;
    file.sync_all().map_err(io("sync", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io("rename into place", path))?;
    if let Some(dir) = path.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io("sync", dir))?;
    }
    Ok(())
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, AgentError> {
    match std::fs::read(path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| AgentError::Corrupt {
                    path: path.to_path_buf(),
                    source,
                })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io("read", path)(e)),
    }
}

/// Enrols this device with `server` under the operator's token and keeps
/// the device token in `state_dir/identity.json` (0600).
pub fn enrol(
    server: &str,
    operator_token: &str,
    state_dir: &Path,
    os: Option<String>,
    version: Option<String>,
) -> Result<Identity, AgentError> {
    let identity_path = state_dir.join("identity.json");
    if identity_path.exists() {
        return Err(AgentError::AlreadyEnrolled(state_dir.to_path_buf()));
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(state_dir)
        .map_err(io("create", state_dir))?;
    let body = serde_json::to_string(&EnrolRequest { os, version }).map_err(|e| {
        AgentError::BadAnswer {
            what: "enrolment",
            message: e.to_string(),
        }
    })?;
    let response = answer(
        "enrolment",
        server,
        http_agent()
            .post(&api_url(server, "enrol"))
            .set(
                "Authorization",
                &format!("Bearer {}", operator_token.trim()),
            )
            .set("Content-Type", "application/json")
            .send_string(&body),
    )?;
    let enrolled: EnrolResponse = decode("enrolment", response)?;
    let identity = Identity {
        server: server.to_string(),
        device_id: enrolled.device_id,
        token: enrolled.token,
    };
    let text = serde_json::to_vec_pretty(&identity).map_err(|e| AgentError::BadAnswer {
        what: "enrolment",
        message: e.to_string(),
    })?;
    write_private(&identity_path, &text, 0o600)?;
    Ok(identity)
}

/// A running agent over its state dir.
#[derive(Debug)]
pub struct Agent {
    config: AgentConfig,
    identity: Identity,
    state: AgentState,
    outbox: Vec<OutboxRecord>,
    http: ureq::Agent,
}

impl Agent {
    /// Opens an enrolled state dir and reconciles it: an outbox append
    /// whose `state.json` update was lost to a crash still counts (its
    /// seqs and log offset are taken from the outbox), and a torn last
    /// line (never counted) is dropped.
    pub fn open(config: AgentConfig) -> Result<Agent, AgentError> {
        let identity: Identity = read_json(&config.state_dir.join("identity.json"))?
            .ok_or_else(|| AgentError::NotEnrolled(config.state_dir.clone()))?;
        let mut state: AgentState =
            read_json(&config.state_dir.join("state.json"))?.unwrap_or_default();
        state.next_seq = state.next_seq.max(1);
        let outbox_path = config.state_dir.join("outbox.jsonl");
        let mut outbox = Vec::new();
        let mut torn = false;
        match std::fs::read(&outbox_path) {
            Ok(bytes) => {
                for line in bytes.split_inclusive(|b| *b == b'\n') {
                    match serde_json::from_slice::<OutboxRecord>(line) {
                        Ok(record) if line.ends_with(b"\n") => outbox.push(record),
                        _ => torn = true,
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("read", &outbox_path)(e)),
        }
        if let Some(last) = outbox.last() {
            state.next_seq = state.next_seq.max(last.seq + 1);
            state.log_offset = state.log_offset.max(last.src_end);
        }
        outbox.retain(|r| r.seq > state.acked_seq);
        let agent = Agent {
            config,
            identity,
            state,
            outbox,
            http: http_agent(),
        };
        if torn {
            agent.rewrite_outbox()?;
        }
        agent.save_state()?;
        Ok(agent)
    }

    pub fn device_id(&self) -> &str {
        &self.identity.device_id
    }

    fn server(&self) -> &str {
        self.config
            .server
            .as_deref()
            .unwrap_or(&self.identity.server)
    }

    /// Events in the outbox, not yet acknowledged.
    pub fn pending(&self) -> usize {
        self.outbox.len()
    }

    /// Seconds until the next poll: the server's interval ± 10%.
    pub fn next_wait(&self) -> Duration {
        let secs = self
            .state
            .interval_secs
            .unwrap_or(DEFAULT_INTERVAL_SECS)
            .max(1) as f64;
        let jitter = rand::thread_rng().gen_range(0.9..=1.1);
        Duration::from_secs_f64(secs * jitter)
    }

    fn save_state(&self) -> Result<(), AgentError> {
        let path = self.config.state_dir.join("state.json");
        let text = serde_json::to_vec(&self.state).map_err(|source| AgentError::Corrupt {
            path: path.clone(),
            source,
        })?;
        write_private(&path, &text, 0o600)
    }

    fn rewrite_outbox(&self) -> Result<(), AgentError> {
        let path = self.config.state_dir.join("outbox.jsonl");
        let mut text = Vec::new();
        for record in &self.outbox {
            serde_json::to_writer(&mut text, record).map_err(|source| AgentError::Corrupt {
                path: path.clone(),
                source,
            })?;
            text.push(b'\n');
        }
        write_private(&path, &text, 0o600)
    }

    /// Takes the complete lines the event log gained since the last call
    /// into the outbox, each with the next seq; fsync'd before the state
    /// says they were taken.
    pub fn take_events(&mut self) -> Result<(usize, usize), AgentError> {
        let log = &self.config.event_log;
        let mut file = match File::open(log) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, 0)),
            Err(e) => return Err(io("open", log)(e)),
        };
        let len = file.metadata().map_err(io("read", log))?.len();
        if len < self.state.log_offset {
            // The log was rotated or truncated: read the new one from its start.
            self.state.log_offset = 0;
        }
        file.seek(SeekFrom::Start(self.state.log_offset))
            .map_err(io("read", log))?;
        let mut bytes = Vec::new();
        file.take(len - self.state.log_offset)
            .read_to_end(&mut bytes)
            .map_err(io("read", log))?;
        let mut offset = self.state.log_offset;
        let mut records = Vec::new();
        let mut unreadable = 0;
        let mut next_seq = self.state.next_seq;
        for line in bytes.split_inclusive(|b| *b == b'\n') {
            if !line.ends_with(b"\n") {
                // A line still being written: taken next time, whole.
                break;
            }
            offset += line.len() as u64;
            match serde_json::from_slice::<Event>(line) {
                Ok(event) => {
                    records.push(OutboxRecord {
                        seq: next_seq,
                        src_end: offset,
                        event,
                    });
                    next_seq += 1;
                }
                Err(_) => unreadable += 1,
            }
        }
        if offset == self.state.log_offset {
            return Ok((0, unreadable));
        }
        if !records.is_empty() {
            let path = self.config.state_dir.join("outbox.jsonl");
            let mut text = Vec::new();
            for record in &records {
                serde_json::to_writer(&mut text, record).map_err(|source| AgentError::Corrupt {
                    path: path.clone(),
                    source,
                })?;
                text.push(b'\n');
            }
            let mut outbox = OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(&path)
                .map_err(io("open", &path))?;
            outbox.write_all(&text).map_err(io("append to", &path))?;
            outbox.sync_all().map_err(io("sync", &path))?;
        }
        let taken = records.len();
        self.outbox.extend(records);
        self.state.next_seq = next_seq;
        self.state.log_offset = offset;
        self.save_state()?;
        Ok((taken, unreadable))
    }

    /// Polls the server; returns whether its answer changed (false on 304).
    pub fn poll(&mut self) -> Result<bool, AgentError> {
        let mut request = self
            .http
            .get(&api_url(self.server(), "poll"))
            .set("Authorization", &format!("Bearer {}", self.identity.token));
        if let Some(os) = &self.config.os {
            request = request.query("os", os);
        }
        if let Some(version) = &self.config.version {
            request = request.query("version", version);
        }
        if let Some(etag) = &self.state.etag {
            request = request.set("If-None-Match", etag);
        }
        let response = answer("the poll", self.server(), request.call())?;
        if response.status() == 304 {
            return Ok(false);
        }
        let etag = response.header("ETag").map(String::from);
        let polled: PollResponse = decode("the poll", response)?;
        self.state.etag = etag;
        self.state.interval_secs = Some(polled.interval_secs);
        self.save_state()?;
        Ok(true)
    }

    /// Uploads the outbox in batches; returns how many events the server
    /// acknowledged. Stops at the first batch that moves nothing forward.
    pub fn upload(&mut self) -> Result<usize, AgentError> {
        let mut delivered = 0;
        while !self.outbox.is_empty() {
            let batch = EventBatch {
                events: self
                    .outbox
                    .iter()
                    .take(BATCH)
                    .map(|r| SequencedEvent {
                        seq: r.seq,
                        event: r.event.clone(),
                    })
                    .collect(),
            };
            let body = serde_json::to_string(&batch).map_err(|e| AgentError::BadAnswer {
                what: "the events",
                message: e.to_string(),
            })?;
            let response = answer(
                "the events",
                self.server(),
                self.http
                    .post(&api_url(self.server(), "events"))
                    .set("Authorization", &format!("Bearer {}", self.identity.token))
                    .set("Content-Type", "application/json")
                    .send_string(&body),
            )?;
            let answer: BatchResponse = decode("the events", response)?;
            let acked = u64::try_from(answer.acked_seq).unwrap_or(0);
            let before = self.outbox.len();
            self.outbox.retain(|r| r.seq > acked);
            let dropped = before - self.outbox.len();
            if dropped == 0 {
                break;
            }
            delivered += dropped;
            // The outbox first, then the state: a crash in between leaves
            // acked events in the state's eyes pending, re-sent harmlessly.
            self.rewrite_outbox()?;
            self.state.acked_seq = self.state.acked_seq.max(acked);
            self.save_state()?;
        }
        Ok(delivered)
    }

    /// One cycle: take new events, poll, upload.
    pub fn cycle(&mut self) -> Result<Cycle, AgentError> {
        let (taken, unreadable) = self.take_events()?;
        let poll_changed = self.poll()?;
        let delivered = self.upload()?;
        Ok(Cycle {
            taken,
            unreadable,
            poll_changed,
            delivered,
            pending: self.outbox.len(),
            acked_seq: self.state.acked_seq,
        })
    }
}
