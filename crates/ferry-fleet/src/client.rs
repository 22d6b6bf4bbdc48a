//! The operator's side of the API with the operator token: list devices
//! and a device's events, label devices, create, list, pause, resume and
//! abort rollouts (`ferry fleet devices | events | label | rollout …`).
//!
//! Not for devices (the agent's).

use crate::agent::AgentError;
use crate::api::{
    DevicesResponse, EventsResponse, LabelsRequest, LabelsResponse, RolloutsResponse,
};
use crate::rollout::{Control, RolloutRequest, RolloutStatus};
use crate::store::{DeviceRecord, StoredEvent};

/// Every enrolled device.
pub fn devices(server: &str, operator_token: &str) -> Result<Vec<DeviceRecord>, AgentError> {
    let answer: DevicesResponse =
        crate::agent::get_json("the device list", server, "devices", operator_token, &[])?;
    Ok(answer.devices)
}

/// All of a device's stored events, in seq order (read page by page).
pub fn events(
    server: &str,
    operator_token: &str,
    device: &str,
) -> Result<Vec<StoredEvent>, AgentError> {
    let mut all: Vec<StoredEvent> = Vec::new();
    loop {
        let after = all.last().map_or(0, |e| e.seq).to_string();
        let page: EventsResponse = crate::agent::get_json(
            "the event list",
            server,
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

/// Adds labels (groups) to a device; answers all its labels.
pub fn label(
    server: &str,
    operator_token: &str,
    device: &str,
    labels: &[String],
) -> Result<LabelsResponse, AgentError> {
    crate::agent::post_json(
        "the labels",
        server,
        &format!("devices/{device}/labels"),
        operator_token,
        &LabelsRequest {
            labels: labels.to_vec(),
        },
    )
}

/// Creates a rollout; answers its status with the canary assigned.
pub fn rollout_create(
    server: &str,
    operator_token: &str,
    request: &RolloutRequest,
) -> Result<RolloutStatus, AgentError> {
    crate::agent::post_json("the rollout", server, "rollouts", operator_token, request)
}

/// Every rollout, newest first (without their devices).
pub fn rollouts(server: &str, operator_token: &str) -> Result<Vec<RolloutStatus>, AgentError> {
    let answer: RolloutsResponse =
        crate::agent::get_json("the rollout list", server, "rollouts", operator_token, &[])?;
    Ok(answer.rollouts)
}

/// One rollout with its devices.
pub fn rollout_status(
    server: &str,
    operator_token: &str,
    id: &str,
) -> Result<RolloutStatus, AgentError> {
    crate::agent::get_json(
        "the rollout",
        server,
        &format!("rollouts/{id}"),
        operator_token,
        &[],
    )
}

/// Pauses, resumes or aborts a rollout; answers its status after.
pub fn rollout_control(
    server: &str,
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
        server,
        &format!("rollouts/{id}/{action}"),
        operator_token,
        &serde_json::json!({}),
    )
}
