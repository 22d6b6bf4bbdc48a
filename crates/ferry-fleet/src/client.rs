//! The operator's side of the API with the operator token: list devices,
//! a device's events and uploaded run logs, label devices, create, list, pause, resume and
//! abort rollouts (`ferry fleet devices | events | label | rollout …`).
//!
//! Not for devices (the agent's).

use crate::agent::AgentError;
use crate::api::{
    DevicesResponse, EventsResponse, LabelsRequest, LabelsResponse, LogsResponse, RolloutsResponse,
};
use crate::rollout::{Control, RolloutRequest, RolloutStatus};
use crate::store::{DeviceRecord, LogRecord, StoredEvent};
use crate::tls::{ClientTls, TlsError};

/// A fleet server as a client reaches it: its URL and an HTTP(S) client
/// with the TLS settings to use (the CA to trust, a client certificate).
#[derive(Debug, Clone)]
pub struct Remote {
    pub url: String,
    pub(crate) http: ureq::Agent,
}

impl Remote {
    /// Reads the TLS files now, so a bad one is an error before any request.
    pub fn new(url: impl Into<String>, tls: &ClientTls) -> Result<Remote, TlsError> {
        Ok(Remote {
            url: url.into(),
            http: tls.http_agent()?,
        })
    }

    /// Plain HTTP, or HTTPS trusting the public roots.
    pub fn plain(url: impl Into<String>) -> Remote {
        Remote {
            url: url.into(),
            http: crate::tls::plain_agent(),
        }
    }
}

impl From<&str> for Remote {
    fn from(url: &str) -> Remote {
        Remote::plain(url)
    }
}

impl From<&String> for Remote {
    fn from(url: &String) -> Remote {
        Remote::plain(url.as_str())
    }
}

impl From<&Remote> for Remote {
    fn from(remote: &Remote) -> Remote {
        remote.clone()
    }
}

/// Every enrolled device.
pub fn devices(
    server: impl Into<Remote>,
    operator_token: &str,
) -> Result<Vec<DeviceRecord>, AgentError> {
    let answer: DevicesResponse = crate::agent::get_json(
        "the device list",
        &server.into(),
        "devices",
        operator_token,
        &[],
    )?;
    Ok(answer.devices)
}

/// All of a device's stored events, in seq order (read page by page).
pub fn events(
    server: impl Into<Remote>,
    operator_token: &str,
    device: &str,
) -> Result<Vec<StoredEvent>, AgentError> {
    let mut all: Vec<StoredEvent> = Vec::new();
    let remote: Remote = server.into();
    loop {
        let after = all.last().map_or(0, |e| e.seq).to_string();
        let page: EventsResponse = crate::agent::get_json(
            "the event list",
            &remote,
            &format!("devices/{device}/events"),
            operator_token,
            &[("after", &after)],
        )?;
        if page.events.is_empty() {
            return Ok(all);
        }
        all.extend(page.events);
    }
}

/// The run logs a device uploaded, oldest first.
pub fn logs(
    server: impl Into<Remote>,
    operator_token: &str,
    device: &str,
) -> Result<Vec<LogRecord>, AgentError> {
    let answer: LogsResponse = crate::agent::get_json(
        "the log list",
        &server.into(),
        &format!("devices/{device}/logs"),
        operator_token,
        &[],
    )?;
    Ok(answer.logs)
}

/// The output of a device's run of one command, as it uploaded it.
pub fn log(
    server: impl Into<Remote>,
    operator_token: &str,
    device: &str,
    command: &str,
) -> Result<Vec<u8>, AgentError> {
    let remote: Remote = server.into();
    let url = format!(
        "{}/api/v1/devices/{device}/logs/{command}",
        remote.url.trim_end_matches('/')
    );
    let response = crate::agent::answer(
        "the log",
        &remote.url,
        remote
            .http
            .get(&url)
            .set(
                "Authorization",
                &format!("Bearer {}", operator_token.trim()),
            )
            .call(),
    )?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(response.into_reader(), crate::executor::MAX_LOG * 2),
        &mut bytes,
    )
    .map_err(|e| AgentError::BadAnswer {
        what: "the log",
        message: e.to_string(),
    })?;
    Ok(bytes)
}

/// Adds labels (groups) to a device; answers all its labels.
pub fn label(
    server: impl Into<Remote>,
    operator_token: &str,
    device: &str,
    labels: &[String],
) -> Result<LabelsResponse, AgentError> {
    crate::agent::post_json(
        "the labels",
        &server.into(),
        &format!("devices/{device}/labels"),
        operator_token,
        &LabelsRequest {
            labels: labels.to_vec(),
        },
    )
}

/// Creates a rollout; answers its status with the canary assigned.
pub fn rollout_create(
    server: impl Into<Remote>,
    operator_token: &str,
    request: &RolloutRequest,
) -> Result<RolloutStatus, AgentError> {
    crate::agent::post_json(
        "the rollout",
        &server.into(),
        "rollouts",
        operator_token,
        request,
    )
}

/// Every rollout, newest first (without their devices).
pub fn rollouts(
    server: impl Into<Remote>,
    operator_token: &str,
) -> Result<Vec<RolloutStatus>, AgentError> {
    let answer: RolloutsResponse = crate::agent::get_json(
        "the rollout list",
        &server.into(),
        "rollouts",
        operator_token,
        &[],
    )?;
    Ok(answer.rollouts)
}

/// One rollout with its devices.
pub fn rollout_status(
    server: impl Into<Remote>,
    operator_token: &str,
    id: &str,
) -> Result<RolloutStatus, AgentError> {
    crate::agent::get_json(
        "the rollout",
        &server.into(),
        &format!("rollouts/{id}"),
        operator_token,
        &[],
    )
}

/// Pauses, resumes or aborts a rollout; answers its status after.
pub fn rollout_control(
    server: impl Into<Remote>,
    operator_token: &str,
    id: &str,
    control: Control,
) -> Result<RolloutStatus, AgentError> {
    let action = match control {
        Control::Pause => "pause",
        Control::Resume => "resume",
        Control::Abort => "abort",
    };
    crate::agent::post_json(
        "the rollout",
        &server.into(),
        &format!("rollouts/{id}/{action}"),
        operator_token,
        &serde_json::json!({}),
    )
}
