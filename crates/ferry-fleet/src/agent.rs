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
//! a line), `commands.json` (every command it took, by id, with its outcome
//! and whether the server has it: a command id seen again is a replay).
//!
//! Commands: a poll answer may carry an assignment. The agent refuses one
//! for another device, an expired one, a replayed one, an artifact whose
//! SHA-256 or detached OpenPGP signature (against `--keyring`) does not
//! check; each refusal is an event in the log and a `refused` result to the
//! server. What passes runs through the executor (executor.rs).

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
use crate::client::Remote;
use crate::executor::{self, ExecConfig};
use crate::rollout::{unix_now, Assignment, Outcome, ResultAnswer, ResultReport};
use crate::tls::{ClientTls, TlsError};

/// The largest artifact or signature the agent downloads (256 MiB).
const MAX_ARTIFACT: u64 = 256 * 1024 * 1024;

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
    #[error(transparent)]
    Tls(#[from] TlsError),
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
    /// The last poll answer's assignment: a 304 repeats it without a body.
    #[serde(default)]
    assignment: Option<Assignment>,
}

/// How far a command got on this device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CommandState {
    /// Taken and verifying or running; an agent killed here runs it again.
    Started,
    Succeeded,
    Failed,
    /// Refused (forged, replayed, expired, another device's).
    Refused,
}

/// What the agent did with one command, kept in `commands.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandRecord {
    pub rollout_id: String,
    pub state: CommandState,
    pub reason: Option<String>,
    /// Whether the server acknowledged the final result.
    pub reported: bool,
    /// Whether the run's log (`logs/<command-id>.log`) is with the server,
    /// or there is none to send.
    #[serde(default)]
    pub log_uploaded: bool,
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
    /// The command handled in this cycle: its id and outcome.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<(String, CommandState)>,
}

/// What runs on the device: which server, where its state and the event log are.
#[derive(Debug, Clone, Default)]
pub struct AgentConfig {
    pub state_dir: PathBuf,
    /// The journal's event log the agent forwards (`/var/log/ferry/events.jsonl`).
    pub event_log: PathBuf,
    /// The running OS and its version, reported at each poll.
    pub os: Option<String>,
    pub version: Option<String>,
    /// Overrides the server URL saved at enrolment.
    pub server: Option<String>,
    /// The OpenPGP keyring artifacts must be signed with; without one the
    /// agent refuses every command.
    pub keyring: Option<PathBuf>,
    /// The system commands act on (`ferry --root`).
    pub root: PathBuf,
    /// The ferry binary that runs profiles (the running one when absent).
    pub ferry_exe: Option<PathBuf>,
    /// The CA to trust and the client certificate to present over HTTPS.
    pub tls: ClientTls,
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> AgentError + 'a {
    move |source| AgentError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

fn api_url(server: &str, path: &str) -> String {
    format!("{}/api/v1/{path}", server.trim_end_matches('/'))
}

/// Maps ureq's outcome to ours, reading a refusal's JSON message.
pub(crate) fn answer(
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
    remote: &Remote,
    path: &str,
    token: &str,
    query: &[(&str, &str)],
) -> Result<T, AgentError> {
    let server = remote.url.as_str();
    let mut request = remote
        .http
        .get(&api_url(server, path))
        .set("Authorization", &format!("Bearer {}", token.trim()));
    for (key, value) in query {
        request = request.query(key, value);
    }
    decode(what, answer(what, server, request.call())?)
}

/// POSTs `body` as JSON with `token` and decodes the JSON answer.
pub(crate) fn post_json<B: Serialize, T: for<'de> Deserialize<'de>>(
    what: &'static str,
    remote: &Remote,
    path: &str,
    token: &str,
    body: &B,
) -> Result<T, AgentError> {
    let server = remote.url.as_str();
    let text = serde_json::to_string(body).map_err(|e| AgentError::BadAnswer {
        what,
        message: e.to_string(),
    })?;
    let request = remote
        .http
        .post(&api_url(server, path))
        .set("Authorization", &format!("Bearer {}", token.trim()))
        .set("Content-Type", "application/json");
    decode(what, answer(what, server, request.send_string(&text))?)
}

/// `host:port` of an http(s) URL.
fn host_of(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))?;
    rest.split('/').next()
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
    server: impl Into<Remote>,
    operator_token: &str,
    state_dir: &Path,
    os: Option<String>,
    version: Option<String>,
    labels: Vec<String>,
) -> Result<Identity, AgentError> {
    let remote: Remote = server.into();
    let server = remote.url.as_str();
    let identity_path = state_dir.join("identity.json");
    if identity_path.exists() {
        return Err(AgentError::AlreadyEnrolled(state_dir.to_path_buf()));
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(state_dir)
        .map_err(io("create", state_dir))?;
    let body = serde_json::to_string(&EnrolRequest {
        os,
        version,
        labels,
    })
    .map_err(|e| AgentError::BadAnswer {
        what: "enrolment",
        message: e.to_string(),
    })?;
    let response = answer(
        "enrolment",
        server,
        remote
            .http
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
    commands: std::collections::BTreeMap<String, CommandRecord>,
    http: ureq::Agent,
}

impl Agent {
    /// Opens an enrolled state dir and reconciles it: an outbox append
    /// whose `state.json` update was lost to a crash still counts (its
    /// seqs and log offset are taken from the outbox), and a torn last
    /// line (never counted) is dropped.
    pub fn open(config: AgentConfig) -> Result<Agent, AgentError> {
        // Bad TLS files are found before the state dir is touched.
        let http = config.tls.http_agent()?;
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
        let commands = read_json(&config.state_dir.join("commands.json"))?.unwrap_or_default();
        let agent = Agent {
            config,
            identity,
            state,
            outbox,
            commands,
            http,
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

    /// The server with this agent's client (its TLS settings).
    fn remote(&self) -> Remote {
        Remote {
            url: self.server().to_string(),
            http: self.http.clone(),
        }
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
        self.state.assignment = polled.assignment;
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

    /// One cycle: take new events, poll, run the assignment if any, take
    /// the events that made, upload.
    pub fn cycle(&mut self) -> Result<Cycle, AgentError> {
        let (mut taken, unreadable) = self.take_events()?;
        let poll_changed = self.poll()?;
        self.report_pending()?;
        let command = match self.state.assignment.clone() {
            Some(assignment) => Some((
                assignment.command_id.clone(),
                self.handle(&assignment)?.state,
            )),
            None => None,
        };
        if command.is_some() {
            taken += self.take_events()?.0;
        }
        self.upload_logs()?;
        let delivered = self.upload()?;
        Ok(Cycle {
            taken,
            unreadable,
            poll_changed,
            delivered,
            pending: self.outbox.len(),
            acked_seq: self.state.acked_seq,
            command,
        })
    }

    /// Where the output of a command's run is kept.
    fn log_path(&self, command_id: &str) -> PathBuf {
        self.config
            .state_dir
            .join("logs")
            .join(format!("{command_id}.log"))
    }

    /// Uploads the logs of finished, reported runs the server does not
    /// have yet (after the result, so a lost upload never delays it); a
    /// failed upload is tried again next cycle. A log the server will
    /// never take (too large, a command it does not know) is given up.
    pub fn upload_logs(&mut self) -> Result<usize, AgentError> {
        let waiting: Vec<String> = self
            .commands
            .iter()
            .filter(|(_, r)| r.reported && !r.log_uploaded && r.state != CommandState::Started)
            .map(|(id, _)| id.clone())
            .collect();
        let mut uploaded = 0;
        for id in waiting {
            let path = self.log_path(&id);
            let content = match std::fs::read(&path) {
                Ok(content) => Some(content),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(io("read", &path)(e)),
            };
            if let Some(content) = content {
                let result = answer(
                    "the log",
                    self.server(),
                    self.http
                        .post(&api_url(self.server(), &format!("logs/{id}")))
                        .set("Authorization", &format!("Bearer {}", self.identity.token))
                        .set("Content-Type", "text/plain; charset=utf-8")
                        .send_bytes(&content),
                );
                match result {
                    Ok(_) => uploaded += 1,
                    Err(AgentError::Refused {
                        status: 404 | 413, ..
                    }) => {}
                    Err(e) => return Err(e),
                }
            }
            if let Some(record) = self.commands.get_mut(&id) {
                record.log_uploaded = true;
            }
            self.save_commands()?;
        }
        Ok(uploaded)
    }

    /// The commands this agent took, by id.
    pub fn commands(&self) -> &std::collections::BTreeMap<String, CommandRecord> {
        &self.commands
    }

    fn save_commands(&self) -> Result<(), AgentError> {
        let path = self.config.state_dir.join("commands.json");
        let text = serde_json::to_vec(&self.commands).map_err(|source| AgentError::Corrupt {
            path: path.clone(),
            source,
        })?;
        write_private(&path, &text, 0o600)
    }

    /// Sends the final results the server has not acknowledged yet (the
    /// answer was lost, the server was down).
    fn report_pending(&mut self) -> Result<(), AgentError> {
        let pending: Vec<(String, CommandRecord)> = self
            .commands
            .iter()
            .filter(|(_, r)| !r.reported && r.state != CommandState::Started)
            .map(|(id, r)| (id.clone(), r.clone()))
            .collect();
        for (id, record) in pending {
            let outcome = match record.state {
                CommandState::Succeeded => Outcome::Succeeded,
                CommandState::Refused => Outcome::Refused,
                CommandState::Failed | CommandState::Started => Outcome::Failed,
            };
            self.report(&id, outcome, None, record.reason.clone())?;
            self.mark_reported(&id)?;
        }
        Ok(())
    }

    fn mark_reported(&mut self, id: &str) -> Result<(), AgentError> {
        if let Some(record) = self.commands.get_mut(id) {
            record.reported = true;
        }
        self.save_commands()
    }

    fn report(
        &self,
        command_id: &str,
        outcome: Outcome,
        step: Option<&str>,
        reason: Option<String>,
    ) -> Result<(), AgentError> {
        let (os, version) = self.running_os();
        let report = ResultReport {
            command_id: command_id.to_string(),
            outcome,
            step: step.map(String::from),
            reason,
            os,
            version,
        };
        match post_json::<_, ResultAnswer>(
            "the result",
            &self.remote(),
            "results",
            &self.identity.token,
            &report,
        ) {
            Ok(_) => Ok(()),
            // A command the server does not know (forged, or not for this
            // device) has no row to count against: the refusal is in the
            // events.
            Err(AgentError::Refused { status: 404, .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The OS and version now: os-release under the root when it can be
    /// read (a run may have changed it), else what the agent started with.
    fn running_os(&self) -> (Option<String>, Option<String>) {
        let read = |name: &str| std::fs::read_to_string(self.config.root.join(name)).ok();
        let text = read("etc/os-release").or_else(|| read("usr/lib/os-release"));
        let field = |text: &str, key: &str| {
            text.lines().find_map(|line| {
                let value = line.strip_prefix(key)?.strip_prefix('=')?;
                Some(value.trim().trim_matches('"').to_string())
            })
        };
        match text {
            Some(text) => (
                field(&text, "ID").or_else(|| self.config.os.clone()),
                field(&text, "VERSION_ID").or_else(|| self.config.version.clone()),
            ),
            None => (self.config.os.clone(), self.config.version.clone()),
        }
    }

    /// Appends one event to the device's event log, as the journal writes
    /// them, so the agent's own decisions reach the server exactly once too.
    fn log_event(&self, rollout: &str, state: ferry_journal::EventState, msg: &str) {
        self.log_step_event(rollout, "rollout", state, msg);
    }

    fn log_step_event(
        &self,
        rollout: &str,
        step: &str,
        state: ferry_journal::EventState,
        msg: &str,
    ) {
        let event = Event {
            ts: ferry_journal::rfc3339_now(),
            device: self.identity.device_id.clone(),
            migration: rollout.to_string(),
            step: step.into(),
            function: "agent".into(),
            uptime: std::fs::read_to_string("/proc/uptime")
                .ok()
                .and_then(|t| t.split_whitespace().next()?.parse().ok())
                .unwrap_or(0.0),
            state,
            msg: msg.to_string(),
        };
        let Ok(mut line) = serde_json::to_vec(&event) else {
            return;
        };
        line.push(b'\n');
        if let Some(dir) = self.config.event_log.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        // One write with O_APPEND: a line never interleaves with the
        // journal's own. Best effort: a log that cannot be written must
        // not stop the result from reaching the server.
        if let Ok(mut log) = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.config.event_log)
        {
            let _ = log.write_all(&line);
        }
    }

    /// Records payloads on the device's hint topic that were not hints
    /// (forged or broken), as an error event that reaches the server with
    /// the next upload; the agent goes on.
    pub fn note_bad_hints(&self, count: u64, error: Option<&crate::hint::HintError>) {
        let why = error.map(|e| format!(": {e}")).unwrap_or_default();
        self.log_step_event(
            "",
            "hint",
            ferry_journal::EventState::Error,
            &format!("ignored {count} malformed MQTT hint(s){why}"),
        );
    }

    /// Refuses a command: an event, a record, a `refused` result.
    fn refuse(
        &mut self,
        assignment: &Assignment,
        why: String,
        record: bool,
    ) -> Result<CommandRecord, AgentError> {
        self.log_event(
            &assignment.rollout_id,
            ferry_journal::EventState::Fail,
            &format!("refused command {}: {why}", assignment.command_id),
        );
        let refused = CommandRecord {
            rollout_id: assignment.rollout_id.clone(),
            state: CommandState::Refused,
            reason: Some(why.clone()),
            reported: false,
            log_uploaded: true,
        };
        if record {
            self.commands
                .insert(assignment.command_id.clone(), refused.clone());
            self.save_commands()?;
        }
        self.report(
            &assignment.command_id,
            Outcome::Refused,
            Some("verify"),
            Some(why),
        )?;
        if record {
            self.mark_reported(&assignment.command_id)?;
        }
        Ok(refused)
    }

    /// Checks a command and, when it passes, downloads, verifies and runs
    /// its artifact, then reports the result. Public so that tests can
    /// hand the agent a command the server would not send (a replay, an
    /// expired or foreign one).
    pub fn handle(&mut self, assignment: &Assignment) -> Result<CommandRecord, AgentError> {
        if let Some(done) = self.commands.get(&assignment.command_id).cloned() {
            if done.state != CommandState::Started {
                if !done.reported {
                    // Not a replay: the result did not reach the server.
                    return Ok(done);
                }
                // Not recorded again: the first outcome stands.
                return self.refuse(
                    assignment,
                    format!("replayed: command already ran ({:?})", done.state).to_lowercase(),
                    false,
                );
            }
            // Started but not finished (the agent was killed mid-run): run
            // again, which for a profile resumes its journal.
        }
        if assignment.device_id != self.identity.device_id {
            return self.refuse(
                assignment,
                format!(
                    "the command is for {}, not this device",
                    assignment.device_id
                ),
                true,
            );
        }
        if assignment.expires <= unix_now() {
            return self.refuse(assignment, "the command has expired".into(), true);
        }
        let Some(keyring) = self.config.keyring.clone() else {
            return self.refuse(
                assignment,
                "no keyring is configured (ferry agent --keyring FILE): only signed artifacts run"
                    .into(),
                true,
            );
        };
        self.commands.insert(
            assignment.command_id.clone(),
            CommandRecord {
                rollout_id: assignment.rollout_id.clone(),
                state: CommandState::Started,
                reason: None,
                reported: false,
                log_uploaded: false,
            },
        );
        self.save_commands()?;
        self.log_event(
            &assignment.rollout_id,
            ferry_journal::EventState::Ini,
            &format!(
                "command {}: downloading the artifact",
                assignment.command_id
            ),
        );
        self.report(
            &assignment.command_id,
            Outcome::Running,
            Some("download"),
            None,
        )?;
        let dir = self
            .config
            .state_dir
            .join("artifacts")
            .join(&assignment.command_id);
        std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        let artifact = dir.join("artifact");
        let signature = dir.join("artifact.sig");
        let fetched = self
            .fetch(&assignment.artifact_url, &artifact)
            .and_then(|()| self.fetch(&assignment.signature_url, &signature));
        if let Err(why) = fetched {
            return self.finish(assignment, false, Some(why));
        }
        let digest = match ferry_fetch::sha256_file(&artifact) {
            Ok((digest, _)) => digest,
            Err(e) => return self.finish(assignment, false, Some(e.to_string())),
        };
        if !digest.eq_ignore_ascii_case(&assignment.sha256) {
            let why = format!(
                "the artifact's SHA-256 is {digest}, the command says {}",
                assignment.sha256
            );
            self.commands.remove(&assignment.command_id);
            return self.refuse(assignment, why, true);
        }
        if let Err(e) = ferry_fetch::verify_detached(&keyring, &signature, &artifact) {
            self.commands.remove(&assignment.command_id);
            return self.refuse(assignment, format!("bad signature: {e}"), true);
        }
        self.report(&assignment.command_id, Outcome::Running, Some("run"), None)?;
        self.log_event(
            &assignment.rollout_id,
            ferry_journal::EventState::Ok,
            &format!(
                "command {}: signature good, running the {:?}",
                assignment.command_id, assignment.kind
            ),
        );
        let executed = executor::run(
            assignment.kind,
            &artifact,
            Duration::from_secs(assignment.timeout_secs.max(1)),
            &ExecConfig {
                root: self.config.root.clone(),
                ferry_exe: self.config.ferry_exe.clone(),
                device_id: self.identity.device_id.clone(),
                log: self.log_path(&assignment.command_id),
            },
        );
        self.finish(assignment, executed.success, executed.reason)
    }

    /// Downloads `url` to `dest`: from the server with the device's token,
    /// from anywhere else through ferry-fetch.
    fn fetch(&self, url: &str, dest: &Path) -> Result<(), String> {
        let own = format!("{}/", self.server().trim_end_matches('/'));
        let same_host = host_of(url).is_some() && host_of(url) == host_of(&own);
        let bytes = if same_host {
            let response = self
                .http
                .get(url)
                .set("Authorization", &format!("Bearer {}", self.identity.token))
                .call()
                .map_err(|e| format!("cannot download {url}: {e}"))?;
            let mut bytes = Vec::new();
            response
                .into_reader()
                .take(MAX_ARTIFACT)
                .read_to_end(&mut bytes)
                .map_err(|e| format!("cannot download {url}: {e}"))?;
            bytes
        } else {
            ferry_fetch::fetch_bytes(url, MAX_ARTIFACT)
                .map_err(|e| format!("cannot download {url}: {e}"))?
        };
        std::fs::write(dest, bytes).map_err(|e| format!("cannot write {}: {e}", dest.display()))
    }

    /// Records and reports a run's end.
    fn finish(
        &mut self,
        assignment: &Assignment,
        success: bool,
        reason: Option<String>,
    ) -> Result<CommandRecord, AgentError> {
        let state = if success {
            CommandState::Succeeded
        } else {
            CommandState::Failed
        };
        self.log_event(
            &assignment.rollout_id,
            if success {
                ferry_journal::EventState::Success
            } else {
                ferry_journal::EventState::Fail
            },
            &format!(
                "command {} {}{}",
                assignment.command_id,
                if success { "succeeded" } else { "failed" },
                reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ),
        );
        let record = CommandRecord {
            rollout_id: assignment.rollout_id.clone(),
            state,
            reason: reason.clone(),
            reported: false,
            log_uploaded: false,
        };
        self.commands
            .insert(assignment.command_id.clone(), record.clone());
        self.save_commands()?;
        let outcome = if success {
            Outcome::Succeeded
        } else {
            Outcome::Failed
        };
        // On an error the record stays unreported and is sent again next
        // cycle (report_pending).
        self.report(&assignment.command_id, outcome, Some("done"), reason)?;
        self.mark_reported(&assignment.command_id)?;
        Ok(CommandRecord {
            reported: true,
            ..record
        })
    }
}
