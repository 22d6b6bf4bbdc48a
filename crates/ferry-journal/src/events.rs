//! Structured events: one JSON object per line in
//! `/var/log/ferry/events.jsonl`, the schema every ferry command and the
//! fleet agent share (`ts, device, migration, step, function, uptime, state,
//! msg`). Every step emits INI, then OK/ERROR/FAIL, then END; each line apt
//! or dpkg prints is a CMDLOG; a run ends with SUCCESS or FAIL.
//!
//! Not for sending events anywhere: the fleet agent reads this file.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The state an event reports, spelled as the fleet collector expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum EventState {
    Ini,
    End,
    Ok,
    Error,
    Fail,
    Success,
    Cmdlog,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// RFC 3339 UTC time with milliseconds.
    pub ts: String,
    pub device: String,
    pub migration: String,
    pub step: String,
    pub function: String,
    /// Seconds since the device booted, so events order across clock jumps.
    pub uptime: f64,
    pub state: EventState,
    pub msg: String,
}

/// Appends events to a JSON-lines file, one write per event so that lines
/// from concurrent writers never interleave.
#[derive(Debug)]
pub struct EventLog {
    file: File,
    path: PathBuf,
    device: String,
    migration: String,
}

impl EventLog {
    /// Opens (creating) `<root>/var/log/ferry/events.jsonl`.
    pub fn open(root: &Path, migration: &str) -> std::io::Result<EventLog> {
        let path = root.join("var/log/ferry/events.jsonl");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(EventLog {
            file,
            path,
            device: device_id(root),
            migration: migration.to_string(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn emit(
        &mut self,
        step: &str,
        function: &str,
        state: EventState,
        msg: &str,
    ) -> std::io::Result<()> {
        let event = Event {
            ts: rfc3339_now(),
            device: self.device.clone(),
            migration: self.migration.clone(),
            step: step.to_string(),
            function: function.to_string(),
            uptime: uptime_seconds(),
            state,
            msg: msg.to_string(),
        };
        let mut line = serde_json::to_vec(&event).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)
    }
}

/// The device's name in events: `/etc/machine-id` of the root, else its
/// hostname, else "unknown".
fn device_id(root: &Path) -> String {
    for file in ["etc/machine-id", "etc/hostname"] {
        if let Ok(text) = std::fs::read_to_string(root.join(file)) {
            let text = text.trim();
            if !text.is_empty() {
                return text.to_string();
            }
        }
    }
    "unknown".to_string()
}

fn uptime_seconds() -> f64 {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// Formats a UTC time as RFC 3339 with milliseconds, without a date crate:
/// days-from-civil arithmetic (Howard Hinnant's algorithm).
pub fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

pub fn rfc3339_now() -> String {
    rfc3339(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        // Checked with `date -u -d @1795348800`.
        let t = UNIX_EPOCH + Duration::from_millis(1_795_348_800_123);
        assert_eq!(rfc3339(t), "2026-11-22T12:00:00.123Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn events_are_json_lines_with_the_shared_schema() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("etc")).unwrap();
        std::fs::write(root.path().join("etc/machine-id"), "abc123\n").unwrap();
        let mut log = EventLog::open(root.path(), "m1").unwrap();
        log.emit("backup", "save_debs", EventState::Ini, "saving 3 packages")
            .unwrap();
        log.emit("backup", "save_debs", EventState::Ok, "saved")
            .unwrap();
        let text = std::fs::read_to_string(log.path()).unwrap();
        let events: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(events.len(), 2);
        for key in [
            "ts",
            "device",
            "migration",
            "step",
            "function",
            "uptime",
            "state",
            "msg",
        ] {
            assert!(events[0].get(key).is_some(), "missing {key}");
        }
        assert_eq!(events[0]["device"], "abc123");
        assert_eq!(events[0]["state"], "INI");
        assert_eq!(events[1]["state"], "OK");
    }
}
