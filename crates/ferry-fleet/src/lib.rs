//! ferry-fleet: the server that devices enrol with and report to, its
//! versioned SQLite store, and the agent on each device that polls it and
//! delivers the journal's events exactly once (seq numbers, an fsync'd
//! outbox trimmed only on acknowledgement, `UNIQUE(device, seq)` on the
//! server).
//!
//! Not built yet: rollouts in waves, the MQTT "poll now" hint, signed
//! artifacts and running them through the journal (docs/fleet.md). The
//! agent builds on the engine (ferry-journal, ferry-fetch), never on apt.

mod agent;
mod api;
mod client;
mod store;
mod token;

// The crate's whole surface, decided here in one place.
pub use agent::{
    enrol, Agent, AgentConfig, AgentError, Cycle, Identity, BATCH, DEFAULT_INTERVAL_SECS,
};
pub use api::{
    decode_request, router, serve, AppState, BatchResponse, DevicesResponse, EnrolRequest,
    EnrolResponse, ErrorBody, ErrorDetail, EventBatch, EventsResponse, PollResponse, RequestKind,
    SequencedEvent, ServeConfig, ServeError, MAX_BATCH, MAX_BODY,
};
pub use client::{devices, events};
pub use store::{DeviceRecord, Store, StoreError, Stored, StoredEvent, SCHEMA_VERSION};
pub use token::hash as token_hash;
