//! The MQTT "poll now" hint: its wire format (a small versioned JSON
//! object, `{"v":1,"reason":"assignment"}`), a decoder that refuses
//! anything else without panicking, the topic a device listens on
//! (`ferry/v1/devices/<device-id>/poll`), and the gate that turns hints
//! into polls at most once per [`MIN_HINT_GAP`].
//!
//! A hint is only a wake-up: it carries no command and nothing the agent
//! trusts. The agent answers it by polling over HTTP with its own token, so
//! a forged hint costs at worst one poll, and a flood of them at most one
//! poll per gap. Not for the transport (mqtt.rs) nor for what a poll
//! brings (agent.rs).

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The only version of the hint this code reads and writes.
pub const HINT_VERSION: u64 = 1;
/// The largest payload read as a hint; a real one is about 30 bytes.
pub const MAX_HINT: usize = 1024;
/// The shortest time between two polls that hints cause: a flood of hints
/// (forged, or a broker replaying) becomes at most one poll per gap.
pub const MIN_HINT_GAP: Duration = Duration::from_secs(5);
/// Every device's topic starts with this; the version in it is the
/// topic scheme's, so a later scheme can live beside this one.
pub const TOPIC_PREFIX: &str = "ferry/v1/devices";

/// Why the server hints a device; the agent polls whatever the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reason {
    /// The device has a command waiting (a rollout created, resumed, or a
    /// wave opened).
    Assignment,
    /// A reason a newer server gives: still a wake-up, still one poll.
    #[serde(other)]
    Other,
}

/// A decoded hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hint {
    pub v: u64,
    pub reason: Reason,
}

impl Hint {
    /// A version-1 hint for `reason`.
    pub fn new(reason: Reason) -> Hint {
        Hint {
            v: HINT_VERSION,
            reason,
        }
    }

    /// The payload published for this hint.
    pub fn encode(&self) -> Vec<u8> {
        // Two plain fields: serialising cannot fail, but the fallback keeps
        // this free of a panic path all the same.
        serde_json::to_vec(self)
            .unwrap_or_else(|_| format!(r#"{{"v":{},"reason":"assignment"}}"#, self.v).into_bytes())
    }
}

/// Why a payload is not a hint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HintError {
    #[error("the payload is {0} bytes, more than a hint's {MAX_HINT}")]
    TooLarge(usize),
    #[error("the payload is not a hint: {0}")]
    Malformed(String),
    #[error("the hint is version {0}; this agent reads version {HINT_VERSION}")]
    Version(u64),
    #[error("{0:?} cannot name an MQTT topic (empty, or holds '/', '+', '#' or NUL)")]
    BadDeviceId(String),
}

/// The version alone, read first so that a later version's fields are
/// reported as a version mismatch, not as a malformed payload.
#[derive(Deserialize)]
struct Versioned {
    v: u64,
}

/// Reads `payload` as a hint; never panics, whatever the bytes.
pub fn decode_hint(payload: &[u8]) -> Result<Hint, HintError> {
    if payload.len() > MAX_HINT {
        return Err(HintError::TooLarge(payload.len()));
    }
    let versioned: Versioned =
        serde_json::from_slice(payload).map_err(|e| HintError::Malformed(e.to_string()))?;
    if versioned.v != HINT_VERSION {
        return Err(HintError::Version(versioned.v));
    }
    serde_json::from_slice(payload).map_err(|e| HintError::Malformed(e.to_string()))
}

/// The topic `device_id` listens on for hints.
pub fn poll_topic(device_id: &str) -> Result<String, HintError> {
    let unusable = device_id.is_empty()
        || device_id
            .chars()
            .any(|c| matches!(c, '/' | '+' | '#' | '\0'));
    if unusable {
        return Err(HintError::BadDeviceId(device_id.to_string()));
    }
    Ok(format!("{TOPIC_PREFIX}/{device_id}/poll"))
}

/// What hints came in since the last poll, handed out as one wake-up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hinted {
    /// Valid hints (and reconnects, after which hints may have been missed).
    pub hints: u64,
    /// Payloads on the topic that were not hints.
    pub malformed: u64,
    /// The last of those payloads' faults.
    pub error: Option<HintError>,
}

/// Collects hints and lets them out as a poll at most once per gap. Pure:
/// the caller says what time it is, so the deciding is testable.
#[derive(Debug, Clone)]
pub struct HintGate {
    gap: Duration,
    last_poll: Option<Instant>,
    pending: Option<Hinted>,
}

impl HintGate {
    pub fn new(gap: Duration) -> HintGate {
        HintGate {
            gap,
            last_poll: None,
            pending: None,
        }
    }

    /// Notes one payload heard on the topic, decoded.
    pub fn heard(&mut self, decoded: Result<Hint, HintError>) {
        let pending = self.pending.get_or_insert_with(Hinted::default);
        match decoded {
            Ok(_) => pending.hints += 1,
            Err(error) => {
                pending.malformed += 1;
                pending.error = Some(error);
            }
        }
    }

    /// Notes a poll made for any reason (the interval ran out too): the
    /// next hint-caused poll waits a gap from it.
    pub fn polled(&mut self, now: Instant) {
        self.last_poll = Some(now);
    }

    /// When the pending wake-up may be let out, if one is pending.
    pub fn due(&self) -> Option<Instant> {
        self.pending.as_ref()?;
        Some(match self.last_poll {
            Some(last) => last + self.gap,
            // Nothing polled yet through this gate: at once.
            None => Instant::now(),
        })
    }

    /// The pending wake-up, if there is one and the gap since the last
    /// poll has passed; taking it counts as a poll at `now`.
    pub fn take(&mut self, now: Instant) -> Option<Hinted> {
        let open = self
            .last_poll
            .is_none_or(|last| now.saturating_duration_since(last) >= self.gap);
        if !open {
            return None;
        }
        let hinted = self.pending.take()?;
        self.last_poll = Some(now);
        Some(hinted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hint_round_trips_through_its_wire_format() {
        let hint = Hint::new(Reason::Assignment);
        assert_eq!(hint.encode(), br#"{"v":1,"reason":"assignment"}"#);
        assert_eq!(decode_hint(&hint.encode()), Ok(hint));
    }

    #[test]
    fn an_unknown_reason_of_version_1_is_still_a_wake_up() {
        assert_eq!(
            decode_hint(br#"{"v":1,"reason":"maintenance"}"#),
            Ok(Hint::new(Reason::Other))
        );
    }

    #[test]
    fn malformed_payloads_are_refused_with_their_fault() {
        let too_big = vec![b' '; MAX_HINT + 1];
        assert_eq!(
            decode_hint(&too_big),
            Err(HintError::TooLarge(MAX_HINT + 1))
        );
        assert_eq!(
            decode_hint(br#"{"v":2,"reason":"assignment"}"#),
            Err(HintError::Version(2))
        );
        for bad in [
            &b""[..],
            b"not json",
            b"\xff\xfe\x00",
            b"{}",
            b"[]",
            b"null",
            b"{\"v\":1}",
            b"{\"v\":\"1\",\"reason\":\"assignment\"}",
            b"{\"v\":-1,\"reason\":\"assignment\"}",
            b"{\"v\":1,\"reason\":7}",
            b"{\"v\":1,\"reason\":\"assignment\",\"command\":\"rm -rf /\"}",
            b"{\"v\":1,\"reason\":\"assignment\"",
            b"{\"v\":1e400,\"reason\":\"assignment\"}",
        ] {
            assert!(
                matches!(decode_hint(bad), Err(HintError::Malformed(_))),
                "{:?} gave {:?}",
                String::from_utf8_lossy(bad),
                decode_hint(bad)
            );
        }
    }

    #[test]
    fn deeply_nested_payloads_are_refused_without_overflowing_the_stack() {
        let nested = format!("{}{}", "[".repeat(MAX_HINT / 2), "]".repeat(MAX_HINT / 2));
        assert!(decode_hint(nested.as_bytes()).is_err());
    }

    #[test]
    fn topics_name_the_device_and_refuse_wildcards() {
        assert_eq!(
            poll_topic("dev-0123").as_deref(),
            Ok("ferry/v1/devices/dev-0123/poll")
        );
        for bad in ["", "a/b", "+", "#", "x\0"] {
            assert!(
                matches!(poll_topic(bad), Err(HintError::BadDeviceId(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_gate_lets_a_flood_out_as_one_poll_per_gap() {
        let start = Instant::now();
        let gap = Duration::from_secs(5);
        let mut gate = HintGate::new(gap);
        gate.polled(start);
        assert_eq!(gate.due(), None, "nothing pending, nothing due");
        // 1001 hints over ten seconds, one every 10 ms (0 s to 10 s).
        let mut polls = Vec::new();
        for i in 0..=1000u32 {
            let now = start + Duration::from_millis(10 * u64::from(i));
            gate.heard(Ok(Hint::new(Reason::Assignment)));
            if let Some(hinted) = gate.take(now) {
                polls.push((now, hinted));
            }
        }
        assert_eq!(polls.len(), 2, "at 5 s and at 10 s: {polls:?}");
        assert!(polls.windows(2).all(|w| w[1].0 - w[0].0 >= gap));
        // Every hint is counted in some wake-up or is still pending.
        let counted: u64 = polls.iter().map(|(_, h)| h.hints).sum();
        let pending = gate.pending.as_ref().map_or(0, |p| p.hints);
        assert_eq!(counted + pending, 1001);
    }

    #[test]
    fn a_hint_after_a_quiet_gap_wakes_at_once_and_a_malformed_one_is_reported() {
        let start = Instant::now();
        let mut gate = HintGate::new(Duration::from_secs(5));
        gate.polled(start);
        let later = start + Duration::from_secs(60);
        gate.heard(Err(HintError::Malformed("x".into())));
        assert_eq!(gate.due(), Some(start + Duration::from_secs(5)));
        let hinted = gate.take(later).expect("the gap has long passed");
        assert_eq!(hinted.hints, 0);
        assert_eq!(hinted.malformed, 1);
        assert_eq!(hinted.error, Some(HintError::Malformed("x".into())));
        assert_eq!(gate.take(later), None, "nothing left");
    }
}
