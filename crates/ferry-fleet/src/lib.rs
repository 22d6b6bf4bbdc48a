//! ferry-fleet: the server that devices enrol with and report to, its
//! versioned SQLite store, and the agent on each device that polls it and
//! delivers the journal's events exactly once (seq numbers, an fsync'd
//! outbox trimmed only on acknowledgement, `UNIQUE(device, seq)` on the
//! server).
//!
//! Rollouts: signed artifacts pushed to device groups in waves, gated on
//! success rates and halted on failures (rollout.rs); the agent checks each
//! command (device, expiry, replay, SHA-256, OpenPGP signature) and runs it
//! through the executor, whose output the agent uploads after the result.
//! HTTPS and mutual TLS with rustls (tls.rs). An optional MQTT "poll now"
//! hint (hint.rs for its format, mqtt.rs for the broker) wakes agents early;
//! it carries no command. The agent builds on the engine (ferry-journal,
//! ferry-fetch), never on apt: profiles run through the ferry binary.

mod agent;
mod api;
mod client;
mod executor;
mod hint;
mod mqtt;
mod rollout;
mod store;
mod tls;
mod token;

// The crate's whole surface, decided here in one place.
pub use agent::{
    enrol, Agent, AgentConfig, AgentError, CommandRecord, CommandState, Cycle, Identity, BATCH,
    DEFAULT_INTERVAL_SECS,
};
pub use api::{
    decode_request, router, serve, AppState, BatchResponse, DevicesResponse, EnrolRequest,
    EnrolResponse, ErrorBody, ErrorDetail, EventBatch, EventsResponse, LabelsRequest,
    LabelsResponse, LogsResponse, PollResponse, RequestKind, RolloutsResponse, SequencedEvent,
    ServeConfig, ServeError, MAX_BATCH, MAX_BODY,
};
pub use client::{
    devices, events, label, log, logs, rollout_control, rollout_create, rollout_status, rollouts,
    Remote,
};
pub use executor::{keep_tail, ExecConfig, Executed, MAX_LOG};
pub use hint::{
    decode_hint, poll_topic, Hint, HintError, HintGate, Hinted, Reason, HINT_VERSION, MAX_HINT,
    MIN_HINT_GAP, TOPIC_PREFIX,
};
pub use mqtt::{BrokerNote, BrokerUrl, HintListener, MqttError, Wake, DEFAULT_MQTT_PORT};
pub use rollout::{
    AbortCriteria, ArtifactKind, ArtifactSpec, Assignment, Control, Counts, DeviceState, Expect,
    Gate, OnFailure, Outcome, ResultAnswer, ResultReport, RolloutDevice, RolloutError,
    RolloutRequest, RolloutState, RolloutStatus, Window,
};
pub use store::{DeviceRecord, LogRecord, Store, StoreError, Stored, StoredEvent, SCHEMA_VERSION};
pub use tls::{cert_names_device, ClientTls, ServerTls, TlsError};
pub use token::hash as token_hash;
