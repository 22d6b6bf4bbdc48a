//! The operator's side of the API: list devices and a device's events with
//! the operator token, for `ferry fleet devices` and `ferry fleet events`.
//!
//! Not for devices (the agent's) nor for changing anything on the server.

use crate::agent::AgentError;
use crate::api::{DevicesResponse, EventsResponse};
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
