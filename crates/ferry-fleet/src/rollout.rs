//! Rollouts: a signed artifact pushed to a device group in waves (a canary,
//! then cumulative percentages), each wave gated on its success rate after
//! a dwell time, the whole halted (paused or aborted, as the rollout says)
//! when failures pass its abort criteria. Devices not yet in a wave stay
//! pending and untouched. Also the group labels devices join.
//!
//! The server advances a rollout whenever something may have changed it (a
//! device's result, a poll, an operator's look): there is no timer to lose
//! in a crash, and everything it decides is committed in the database
//! before an answer says so. Not for the agent's side (agent.rs) nor for
//! who may call what (api.rs).

use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::store::{Store, StoreError};
use crate::token;

/// The longest a command stays valid when the rollout does not say (a day).
pub const DEFAULT_COMMAND_TTL_SECS: u64 = 86_400;
/// The longest a script or profile may run when the rollout does not say.
pub const DEFAULT_RUN_TIMEOUT_SECS: u64 = 3_600;

/// What the artifact is and so how the agent runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArtifactKind {
    /// A migration profile: the agent runs `ferry run --yes PROFILE`.
    Profile,
    /// A shell script run with a timeout (for labs and tests).
    Script,
}

/// The artifact: uploaded (its text and an armored detached signature) or
/// referenced (a URL, its SHA-256 and the signature's URL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactSpec {
    pub kind: ArtifactKind,
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub signature: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default)]
    pub signature_url: Option<String>,
}

/// A wave's gate: once `min_finished` of its devices finished, at least
/// `success_percent` of the finished must have succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gate {
    pub success_percent: f64,
    /// Finished devices needed before the gate is judged (capped at the
    /// wave's size); the gate waits for all of the wave's devices when absent.
    #[serde(default)]
    pub min_finished: Option<u64>,
}

/// When the rollout halts by itself: `failures` failed devices, or
/// `failure_percent` of the finished once `min_finished` finished.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbortCriteria {
    #[serde(default)]
    pub failures: Option<u64>,
    #[serde(default)]
    pub failure_percent: Option<f64>,
    #[serde(default)]
    pub min_finished: u64,
}

/// What a halt does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    #[default]
    Pause,
    Abort,
}

/// UTC hours in which devices may start: `[start_hour, end_hour)`,
/// wrapping past midnight when end < start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    pub start_hour: u8,
    pub end_hour: u8,
}

impl Window {
    pub fn contains(&self, unix_secs: u64) -> bool {
        let hour = ((unix_secs / 3600) % 24) as u8;
        if self.start_hour <= self.end_hour {
            (self.start_hour..self.end_hour).contains(&hour)
        } else {
            hour >= self.start_hour || hour < self.end_hour
        }
    }
}

/// What the device must run after the artifact, or it did not apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    #[serde(default)]
    pub os: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
}

/// `POST /api/v1/rollouts` (operator). Versioned by the API's path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutRequest {
    pub name: String,
    /// The group: every device with this label when the rollout is made.
    pub group: String,
    pub artifact: ArtifactSpec,
    /// The first wave: a count (`"2"`) or a percentage (`"10%"`).
    pub canary: String,
    /// Later waves, as cumulative percentages of the group, ascending;
    /// 100 is added when the last is below it.
    #[serde(default)]
    pub waves: Vec<f64>,
    /// Seconds a wave must have run before the next may start.
    #[serde(default)]
    pub dwell_secs: u64,
    pub gate: Gate,
    #[serde(default)]
    pub abort: Option<AbortCriteria>,
    #[serde(default)]
    pub on_failure: OnFailure,
    #[serde(default)]
    pub window: Option<Window>,
    #[serde(default)]
    pub expect: Option<Expect>,
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    #[serde(default)]
    pub command_ttl_secs: Option<u64>,
}

fn percent_ok(p: f64) -> bool {
    p.is_finite() && (0.0..=100.0).contains(&p)
}

impl RolloutRequest {
    /// Checks what serde cannot; the message says what is wrong (a 422).
    pub fn validate(&self) -> Result<(), String> {
        if self.name.trim().is_empty() || self.group.trim().is_empty() {
            return Err("name and group must not be empty".into());
        }
        let a = &self.artifact;
        match (&a.content, &a.url) {
            (Some(_), None) => {
                if a.signature.as_deref().is_none_or(|s| s.trim().is_empty()) {
                    return Err("an uploaded artifact needs its detached signature".into());
                }
                if a.sha256.is_some() || a.signature_url.is_some() {
                    return Err("an uploaded artifact takes no sha256 or signature_url".into());
                }
            }
            (None, Some(url)) => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err("the artifact's url must be http:// or https://".into());
                }
                let sha_ok = a
                    .sha256
                    .as_deref()
                    .is_some_and(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()));
                if !sha_ok {
                    return Err("a referenced artifact needs its sha256 (64 hex digits)".into());
                }
                if a.signature_url.is_none() && a.signature.is_none() {
                    return Err("a referenced artifact needs signature_url or signature".into());
                }
            }
            _ => return Err("the artifact needs either content or url, not both".into()),
        }
        parse_canary(&self.canary)?;
        let mut last = 0.0;
        for p in &self.waves {
            if !percent_ok(*p) || *p <= last {
                return Err("waves are ascending percentages in (0, 100]".into());
            }
            last = *p;
        }
        if !percent_ok(self.gate.success_percent) {
            return Err("gate.success_percent must be within 0..=100".into());
        }
        if let Some(abort) = &self.abort {
            if abort.failure_percent.is_some_and(|p| !percent_ok(p)) {
                return Err("abort.failure_percent must be within 0..=100".into());
            }
        }
        if let Some(w) = &self.window {
            if w.start_hour > 23 || w.end_hour > 24 || w.start_hour == w.end_hour {
                return Err("window hours are 0..=23 and 1..=24 and must differ".into());
            }
        }
        if self.timeout_secs == Some(0) || self.command_ttl_secs == Some(0) {
            return Err("timeout_secs and command_ttl_secs must be positive".into());
        }
        Ok(())
    }

    /// The cumulative device count each wave reaches in a group of `n`.
    pub fn wave_targets(&self, n: u64) -> Vec<u64> {
        let mut targets = Vec::new();
        let canary = match parse_canary(&self.canary) {
            Ok(Canary::Count(c)) => c.min(n),
            Ok(Canary::Percent(p)) => percent_of(p, n),
            Err(_) => n,
        };
        targets.push(canary.max(1).min(n));
        let mut percents = self.waves.clone();
        if percents.last().is_none_or(|p| *p < 100.0) {
            percents.push(100.0);
        }
        for p in percents {
            let t = percent_of(p, n).max(targets.last().copied().unwrap_or(0));
            if targets.last() != Some(&t) {
                targets.push(t);
            }
        }
        targets
    }
}

enum Canary {
    Count(u64),
    Percent(f64),
}

fn parse_canary(text: &str) -> Result<Canary, String> {
    let bad = || format!("canary {text:?} is neither a count (\"2\") nor a percentage (\"10%\")");
    match text.trim().strip_suffix('%') {
        Some(p) => {
            let p: f64 = p.trim().parse().map_err(|_| bad())?;
            if !percent_ok(p) || p == 0.0 {
                return Err(bad());
            }
            Ok(Canary::Percent(p))
        }
        None => match text.trim().parse::<u64>() {
            Ok(c) if c > 0 => Ok(Canary::Count(c)),
            _ => Err(bad()),
        },
    }
}

/// `p`% of `n`, rounded up so that a small group still gets a device.
fn percent_of(p: f64, n: u64) -> u64 {
    ((p / 100.0 * n as f64).ceil() as u64).min(n)
}

/// A rollout's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RolloutState {
    Active,
    Paused,
    Aborted,
    Completed,
}

impl RolloutState {
    fn as_str(self) -> &'static str {
        match self {
            RolloutState::Active => "active",
            RolloutState::Paused => "paused",
            RolloutState::Aborted => "aborted",
            RolloutState::Completed => "completed",
        }
    }

    fn parse(text: &str) -> RolloutState {
        match text {
            "active" => RolloutState::Active,
            "paused" => RolloutState::Paused,
            "completed" => RolloutState::Completed,
            _ => RolloutState::Aborted,
        }
    }
}

/// Where one device of a rollout stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceState {
    /// Not in a wave yet: never given a command.
    Pending,
    /// Given a command it has not started.
    Assigned,
    Running,
    Succeeded,
    Failed,
}

impl DeviceState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceState::Pending => "pending",
            DeviceState::Assigned => "assigned",
            DeviceState::Running => "running",
            DeviceState::Succeeded => "succeeded",
            DeviceState::Failed => "failed",
        }
    }

    /// The state a database row holds; anything else is a broken row.
    fn parse(text: &str) -> Result<DeviceState, sqlx::Error> {
        Ok(match text {
            "pending" => DeviceState::Pending,
            "assigned" => DeviceState::Assigned,
            "running" => DeviceState::Running,
            "succeeded" => DeviceState::Succeeded,
            "failed" => DeviceState::Failed,
            _ => {
                return Err(sqlx::Error::Decode(
                    format!("{text:?} is not a device state").into(),
                ))
            }
        })
    }

    pub fn is_finished(self) -> bool {
        matches!(self, DeviceState::Succeeded | DeviceState::Failed)
    }
}

/// One device of a rollout, as operators see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutDevice {
    pub device_id: String,
    pub state: DeviceState,
    pub wave: Option<i64>,
    /// The step the device's last report named while running.
    pub step: Option<String>,
    pub reason: Option<String>,
    pub assigned_at: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}

/// Counts of a rollout's devices by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub pending: u64,
    pub assigned: u64,
    pub running: u64,
    pub succeeded: u64,
    pub failed: u64,
}

/// A rollout as `GET /api/v1/rollouts/{id}` answers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutStatus {
    pub id: String,
    pub name: String,
    pub group: String,
    pub created_at: String,
    pub state: RolloutState,
    /// Why it halted, completed or was aborted.
    pub reason: Option<String>,
    /// The wave assigned last (0 = the canary), and how many there are.
    pub wave: i64,
    pub waves: usize,
    /// The cumulative device count each wave reaches.
    pub wave_targets: Vec<u64>,
    pub counts: Counts,
    pub request: RolloutRequest,
    #[serde(default)]
    pub devices: Vec<RolloutDevice>,
}

/// What a device is told to do, carried in its poll answer. Bound to the
/// device's token (only it receives it) and naming the device, so that a
/// command copied to another device is refused there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    pub rollout_id: String,
    /// Random and single use: the agent refuses one it already ran.
    pub command_id: String,
    pub device_id: String,
    /// Unix seconds after which the agent refuses the command.
    pub expires: u64,
    pub kind: ArtifactKind,
    /// Where the artifact and its detached signature are downloaded from.
    pub artifact_url: String,
    pub sha256: String,
    pub signature_url: String,
    pub timeout_secs: u64,
    #[serde(default)]
    pub expect: Option<Expect>,
}

/// `POST /api/v1/results` (device): how a command went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultReport {
    pub command_id: String,
    pub outcome: Outcome,
    #[serde(default)]
    pub step: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    /// What the device runs after the command (after a reboot, if any).
    #[serde(default)]
    pub os: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Running,
    Succeeded,
    Failed,
    /// The agent refused the command (forged, replayed, expired): a failure.
    Refused,
}

/// What the server made of a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultAnswer {
    /// The device's state in the rollout now.
    pub state: DeviceState,
    /// False when the command was already finished (a result sent again).
    pub recorded: bool,
}

/// Seconds since the epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// An operator's call on a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Pause,
    Resume,
    Abort,
}

/// Why a control or a result was not applied (the API's 404 or 409).
#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    #[error("no rollout {0}")]
    NoRollout(String),
    #[error("no command {0} for this device")]
    NoCommand(String),
    #[error("rollout {id} is {state}: {action} is not possible")]
    Conflict {
        id: String,
        state: &'static str,
        action: &'static str,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for RolloutError {
    fn from(e: sqlx::Error) -> RolloutError {
        RolloutError::Store(StoreError::Query(e))
    }
}

impl Store {
    /// Adds labels to a device (its groups); already-held labels are kept.
    pub async fn add_labels(&self, device: &str, labels: &[String]) -> Result<(), StoreError> {
        for label in labels {
            sqlx::query("INSERT OR IGNORE INTO device_labels (device_id, label) VALUES (?, ?)")
                .bind(device)
                .bind(label)
                .execute(self.pool())
                .await?;
        }
        Ok(())
    }

    /// A device's labels, sorted.
    pub async fn labels(&self, device: &str) -> Result<Vec<String>, StoreError> {
        let rows =
            sqlx::query("SELECT label FROM device_labels WHERE device_id = ? ORDER BY label")
                .bind(device)
                .fetch_all(self.pool())
                .await?;
        rows.iter()
            .map(|r| r.try_get(0).map_err(StoreError::from))
            .collect()
    }

    /// Makes a rollout over every device labelled `request.group` (in
    /// enrolment order), all pending, then assigns the canary.
    pub async fn create_rollout(
        &self,
        request: &RolloutRequest,
        artifact: Option<&[u8]>,
        signature: Option<&[u8]>,
    ) -> Result<String, RolloutError> {
        let id = format!("ro-{}", &token::new_token()[..16]);
        let spec = serde_json::to_string(request)
            .map_err(|e| StoreError::Query(sqlx::Error::Protocol(e.to_string())))?;
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO rollouts (id, created_at, spec, artifact, signature, state, wave, \
             wave_started) VALUES (?, ?, ?, ?, ?, 'active', 0, ?)",
        )
        .bind(&id)
        .bind(ferry_journal::rfc3339_now())
        .bind(&spec)
        .bind(artifact)
        .bind(signature)
        .bind(unix_now() as i64)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO rollout_devices (rollout_id, device_id, rank, state) \
             SELECT ?, d.id, d.rowid, 'pending' FROM devices d \
             JOIN device_labels l ON l.device_id = d.id WHERE l.label = ? ORDER BY d.rowid",
        )
        .bind(&id)
        .bind(&request.group)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.assign_wave(&id, request, 0).await?;
        self.advance(&id).await?;
        Ok(id)
    }

    async fn spec(&self, id: &str) -> Result<(RolloutRequest, RolloutRow), RolloutError> {
        let row = sqlx::query(
            "SELECT spec, state, wave, wave_started, accepted_wave, failure_base, created_at, \
             reason FROM rollouts WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| RolloutError::NoRollout(id.to_string()))?;
        let spec: String = row.try_get(0)?;
        let request: RolloutRequest = serde_json::from_str(&spec)
            .map_err(|e| StoreError::Query(sqlx::Error::Protocol(e.to_string())))?;
        let state: String = row.try_get(1)?;
        Ok((
            request,
            RolloutRow {
                state: RolloutState::parse(&state),
                wave: row.try_get(2)?,
                wave_started: row.try_get(3)?,
                accepted_wave: row.try_get(4)?,
                failure_base: row.try_get(5)?,
                created_at: row.try_get(6)?,
                reason: row.try_get(7)?,
            },
        ))
    }

    /// Gives a command to every pending device ranked within `wave`'s target.
    async fn assign_wave(
        &self,
        id: &str,
        request: &RolloutRequest,
        wave: usize,
    ) -> Result<(), RolloutError> {
        let total: i64 = sqlx::query("SELECT COUNT(*) FROM rollout_devices WHERE rollout_id = ?")
            .bind(id)
            .fetch_one(self.pool())
            .await?
            .try_get(0)?;
        let targets = request.wave_targets(total as u64);
        let Some(target) = targets.get(wave) else {
            return Ok(());
        };
        let ttl = request.command_ttl_secs.unwrap_or(DEFAULT_COMMAND_TTL_SECS);
        let rows = sqlx::query(
            "SELECT device_id FROM rollout_devices WHERE rollout_id = ? ORDER BY rank LIMIT ?",
        )
        .bind(id)
        .bind(*target as i64)
        .fetch_all(self.pool())
        .await?;
        let now = ferry_journal::rfc3339_now();
        let mut tx = self.pool().begin().await?;
        sqlx::query("UPDATE rollouts SET wave = ?, wave_started = ? WHERE id = ?")
            .bind(wave as i64)
            .bind(unix_now() as i64)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        for row in rows {
            let device: String = row.try_get(0)?;
            sqlx::query(
                "UPDATE rollout_devices SET state = 'assigned', wave = ?, command_id = ?, \
                 expires = ?, assigned_at = ? \
                 WHERE rollout_id = ? AND device_id = ? AND state = 'pending'",
            )
            .bind(wave as i64)
            .bind(format!("cmd-{}", token::new_token()))
            .bind((unix_now() + ttl) as i64)
            .bind(&now)
            .bind(id)
            .bind(&device)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn counts(&self, id: &str, wave: Option<i64>) -> Result<Counts, RolloutError> {
        let rows = sqlx::query(
            "SELECT state, COUNT(*) FROM rollout_devices WHERE rollout_id = ? \
             AND (? IS NULL OR wave = ?) GROUP BY state",
        )
        .bind(id)
        .bind(wave)
        .bind(wave)
        .fetch_all(self.pool())
        .await?;
        let mut counts = Counts::default();
        for row in rows {
            let state: String = row.try_get(0)?;
            let n: i64 = row.try_get(1)?;
            let n = n as u64;
            match DeviceState::parse(&state)? {
                DeviceState::Pending => counts.pending = n,
                DeviceState::Assigned => counts.assigned = n,
                DeviceState::Running => counts.running = n,
                DeviceState::Succeeded => counts.succeeded = n,
                DeviceState::Failed => counts.failed = n,
            }
        }
        Ok(counts)
    }

    async fn set_state(
        &self,
        id: &str,
        state: RolloutState,
        reason: Option<&str>,
    ) -> Result<(), RolloutError> {
        sqlx::query("UPDATE rollouts SET state = ?, reason = ? WHERE id = ?")
            .bind(state.as_str())
            .bind(reason)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Decides what the rollout's devices' results allow: halts it past
    /// its abort criteria or at a failed gate, starts the next wave when
    /// the current one passed its gate and dwelt long enough, completes it
    /// when every device finished. Idempotent: called again, it decides
    /// the same.
    pub async fn advance(&self, id: &str) -> Result<(), RolloutError> {
        let (request, row) = self.spec(id).await?;
        if row.state != RolloutState::Active {
            return Ok(());
        }
        let all = self.counts(id, None).await?;
        let wave = self.counts(id, Some(row.wave)).await?;
        match decide(&request, &row, &all, &wave, unix_now()) {
            Decision::Wait => Ok(()),
            Decision::Halt(reason) => self.halt(id, &request, &reason).await,
            Decision::Complete(reason) => {
                self.set_state(id, RolloutState::Completed, Some(&reason))
                    .await
            }
            Decision::NextWave => self.assign_wave(id, &request, row.wave as usize + 1).await,
        }
    }

    async fn halt(
        &self,
        id: &str,
        request: &RolloutRequest,
        reason: &str,
    ) -> Result<(), RolloutError> {
        let state = match request.on_failure {
            OnFailure::Pause => RolloutState::Paused,
            OnFailure::Abort => RolloutState::Aborted,
        };
        self.set_state(id, state, Some(reason)).await
    }

    /// Pauses, resumes or aborts a rollout. A resume accepts the wave that
    /// halted it (its gate is not judged again) and counts failures anew.
    pub async fn control(&self, id: &str, control: Control) -> Result<(), RolloutError> {
        let (_, row) = self.spec(id).await?;
        let conflict = |action| RolloutError::Conflict {
            id: id.to_string(),
            state: row.state.as_str(),
            action,
        };
        match control {
            Control::Pause => {
                if row.state != RolloutState::Active {
                    return Err(conflict("pause"));
                }
                self.set_state(id, RolloutState::Paused, Some("paused by the operator"))
                    .await?;
            }
            Control::Resume => {
                if row.state != RolloutState::Paused {
                    return Err(conflict("resume"));
                }
                let failed = self.counts(id, None).await?.failed;
                sqlx::query(
                    "UPDATE rollouts SET state = 'active', reason = NULL, accepted_wave = wave, \
                     failure_base = ? WHERE id = ?",
                )
                .bind(failed as i64)
                .bind(id)
                .execute(self.pool())
                .await?;
                self.advance(id).await?;
            }
            Control::Abort => {
                if matches!(row.state, RolloutState::Aborted | RolloutState::Completed) {
                    return Err(conflict("abort"));
                }
                self.set_state(id, RolloutState::Aborted, Some("aborted by the operator"))
                    .await?;
            }
        }
        Ok(())
    }

    /// Every rollout, newest first, without its devices.
    pub async fn rollouts(&self) -> Result<Vec<RolloutStatus>, RolloutError> {
        let rows = sqlx::query("SELECT id FROM rollouts ORDER BY created_at DESC, id")
            .fetch_all(self.pool())
            .await?;
        let mut all = Vec::new();
        for row in rows {
            let id: String = row.try_get(0)?;
            all.push(self.rollout(&id, false).await?);
        }
        Ok(all)
    }

    /// One rollout with (or without) its devices, advanced first so that a
    /// dwell that ran out shows as the next wave.
    pub async fn rollout(&self, id: &str, devices: bool) -> Result<RolloutStatus, RolloutError> {
        self.advance(id).await?;
        let (request, row) = self.spec(id).await?;
        let counts = self.counts(id, None).await?;
        let targets = request.wave_targets(all_devices(&counts));
        let mut list = Vec::new();
        if devices {
            let rows = sqlx::query(
                "SELECT device_id, state, wave, step, reason, assigned_at, started_at, \
                 finished_at FROM rollout_devices WHERE rollout_id = ? ORDER BY rank",
            )
            .bind(id)
            .fetch_all(self.pool())
            .await?;
            for r in rows {
                let state: String = r.try_get(1)?;
                list.push(RolloutDevice {
                    device_id: r.try_get(0)?,
                    state: DeviceState::parse(&state)?,
                    wave: r.try_get(2)?,
                    step: r.try_get(3)?,
                    reason: r.try_get(4)?,
                    assigned_at: r.try_get(5)?,
                    started_at: r.try_get(6)?,
                    finished_at: r.try_get(7)?,
                });
            }
        }
        Ok(RolloutStatus {
            id: id.to_string(),
            name: request.name.clone(),
            group: request.group.clone(),
            created_at: row.created_at,
            state: row.state,
            reason: row.reason,
            wave: row.wave,
            waves: targets.len(),
            wave_targets: targets,
            counts,
            request,
            devices: list,
        })
    }

    /// The command for `device`, if an active rollout has one for it that
    /// it has not finished, inside the rollout's window. `base` is the
    /// server's URL as the device reached it, for the artifact's URLs.
    pub async fn assignment(
        &self,
        device: &str,
        base: &str,
    ) -> Result<Option<Assignment>, RolloutError> {
        // Every active rollout the device is in, pending too: a dwell that
        // ran out is noticed by the devices waiting for the next wave.
        let rows = sqlx::query(
            "SELECT rd.rollout_id FROM rollout_devices rd JOIN rollouts r ON r.id = rd.rollout_id \
             WHERE rd.device_id = ? AND r.state = 'active' ORDER BY r.created_at, r.id",
        )
        .bind(device)
        .fetch_all(self.pool())
        .await?;
        let ids: Vec<String> = rows
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        for id in ids {
            self.advance(&id).await?;
        }
        let row = sqlx::query(
            "SELECT rd.rollout_id, rd.command_id, rd.expires, r.spec, r.artifact, r.signature \
             FROM rollout_devices rd JOIN rollouts r ON r.id = rd.rollout_id \
             WHERE rd.device_id = ? AND r.state = 'active' AND rd.state IN ('assigned', 'running') \
             ORDER BY r.created_at, r.id LIMIT 1",
        )
        .bind(device)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let rollout_id: String = row.try_get(0)?;
        let spec: String = row.try_get(3)?;
        let request: RolloutRequest = serde_json::from_str(&spec)
            .map_err(|e| StoreError::Query(sqlx::Error::Protocol(e.to_string())))?;
        if request.window.is_some_and(|w| !w.contains(unix_now())) {
            return Ok(None);
        }
        let artifact: Option<Vec<u8>> = row.try_get(4)?;
        let signature: Option<Vec<u8>> = row.try_get(5)?;
        let own = format!(
            "{}/api/v1/rollouts/{rollout_id}",
            base.trim_end_matches('/')
        );
        let (artifact_url, sha256) = match (&artifact, &request.artifact.url) {
            (Some(bytes), _) => (format!("{own}/artifact"), token::hash_bytes(bytes)),
            (None, Some(url)) => (
                url.clone(),
                request.artifact.sha256.clone().unwrap_or_default(),
            ),
            (None, None) => return Ok(None),
        };
        let signature_url = match (&signature, &request.artifact.signature_url) {
            (Some(_), _) => format!("{own}/signature"),
            (None, Some(url)) => url.clone(),
            (None, None) => return Ok(None),
        };
        let expires: i64 = row.try_get(2)?;
        Ok(Some(Assignment {
            rollout_id,
            command_id: row.try_get(1)?,
            device_id: device.to_string(),
            expires: expires.max(0) as u64,
            kind: request.artifact.kind,
            artifact_url,
            sha256,
            signature_url,
            timeout_secs: request.timeout_secs.unwrap_or(DEFAULT_RUN_TIMEOUT_SECS),
            expect: request.expect.clone(),
        }))
    }

    /// Notes the step a running device's newest event names, so the
    /// status shows where its run is.
    pub async fn note_step(&self, device: &str, step: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE rollout_devices SET step = ? WHERE device_id = ? AND state = 'running'",
        )
        .bind(step)
        .bind(device)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The uploaded artifact or signature of a rollout the device is in.
    pub async fn artifact(
        &self,
        rollout: &str,
        device: &str,
        signature: bool,
    ) -> Result<Option<Vec<u8>>, RolloutError> {
        let column = if signature { "signature" } else { "artifact" };
        let row = sqlx::query(&format!(
            "SELECT r.{column} FROM rollouts r JOIN rollout_devices rd ON rd.rollout_id = r.id \
             WHERE r.id = ? AND rd.device_id = ?"
        ))
        .bind(rollout)
        .bind(device)
        .fetch_optional(self.pool())
        .await?;
        Ok(match row {
            Some(row) => row.try_get(0)?,
            None => None,
        })
    }

    /// Records a device's result for one of its commands and advances the
    /// rollout. A success whose OS/version is not the one the rollout
    /// expects counts as failed (it did not apply); a refusal is a failure.
    pub async fn record_result(
        &self,
        device: &str,
        report: &ResultReport,
    ) -> Result<ResultAnswer, RolloutError> {
        let row = sqlx::query(
            "SELECT rollout_id, state FROM rollout_devices WHERE device_id = ? AND command_id = ?",
        )
        .bind(device)
        .bind(&report.command_id)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| RolloutError::NoCommand(report.command_id.clone()))?;
        let rollout: String = row.try_get(0)?;
        let state: String = row.try_get(1)?;
        let state = DeviceState::parse(&state)?;
        if state.is_finished() {
            return Ok(ResultAnswer {
                state,
                recorded: false,
            });
        }
        let (request, _) = self.spec(&rollout).await?;
        let now = ferry_journal::rfc3339_now();
        let (new_state, reason) = match report.outcome {
            Outcome::Running => (DeviceState::Running, report.reason.clone()),
            Outcome::Failed => (DeviceState::Failed, report.reason.clone()),
            Outcome::Refused => (
                DeviceState::Failed,
                Some(format!(
                    "refused by the device: {}",
                    report.reason.as_deref().unwrap_or("no reason given")
                )),
            ),
            Outcome::Succeeded => match not_applied(request.expect.as_ref(), report) {
                Some(why) => (DeviceState::Failed, Some(why)),
                None => (DeviceState::Succeeded, report.reason.clone()),
            },
        };
        let finished = new_state.is_finished();
        sqlx::query(
            "UPDATE rollout_devices SET state = ?, step = COALESCE(?, step), reason = ?, \
             started_at = COALESCE(started_at, ?), finished_at = ? \
             WHERE device_id = ? AND command_id = ?",
        )
        .bind(new_state.as_str())
        .bind(&report.step)
        .bind(&reason)
        .bind(&now)
        .bind(finished.then_some(&now))
        .bind(device)
        .bind(&report.command_id)
        .execute(self.pool())
        .await?;
        self.advance(&rollout).await?;
        Ok(ResultAnswer {
            state: new_state,
            recorded: true,
        })
    }
}

/// What an active rollout's results allow now.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Decision {
    /// Nothing yet: the wave is still running or dwelling.
    Wait,
    /// The abort criteria or the wave's gate failed: pause or abort.
    Halt(String),
    /// The last wave passed and every device finished.
    Complete(String),
    /// The wave passed its gate and dwelt long enough.
    NextWave,
}

/// Decides, without I/O, what an active rollout does next from its
/// request, where its waves stand, the counts of all its devices and of
/// the current wave's, and the time.
fn decide(
    request: &RolloutRequest,
    row: &RolloutRow,
    all: &Counts,
    wave: &Counts,
    now: u64,
) -> Decision {
    let finished = all.succeeded + all.failed;
    let failures = all.failed.saturating_sub(row.failure_base.max(0) as u64);
    if let Some(abort) = &request.abort {
        let by_count = abort.failures.is_some_and(|n| failures >= n);
        let by_rate = abort.failure_percent.is_some_and(|p| {
            finished > 0
                && finished >= abort.min_finished
                && failures as f64 * 100.0 / finished as f64 >= p
        });
        if by_count || by_rate {
            return Decision::Halt(format!(
                "abort criteria met: {failures} device(s) failed of {finished} finished"
            ));
        }
    }
    let size = wave.assigned + wave.running + wave.succeeded + wave.failed;
    let done = wave.succeeded + wave.failed;
    let needed = request.gate.min_finished.unwrap_or(size).min(size);
    if size > 0 && done < needed.max(1) {
        return Decision::Wait;
    }
    if row.wave > row.accepted_wave && done > 0 {
        let rate = wave.succeeded as f64 * 100.0 / done as f64;
        if rate < request.gate.success_percent {
            return Decision::Halt(format!(
                "wave {}{} failed its gate: {:.0}% of {done} finished succeeded, {}% needed",
                row.wave,
                if row.wave == 0 { " (the canary)" } else { "" },
                rate,
                request.gate.success_percent
            ));
        }
    }
    let targets = request.wave_targets(all_devices(all));
    if row.wave as usize + 1 >= targets.len() {
        if all.pending + all.assigned + all.running == 0 {
            return Decision::Complete(format!(
                "{} succeeded, {} failed",
                all.succeeded, all.failed
            ));
        }
        return Decision::Wait;
    }
    if now < (row.wave_started.max(0) as u64).saturating_add(request.dwell_secs) {
        return Decision::Wait;
    }
    Decision::NextWave
}

/// Why a reported success did not apply, when the rollout expects an OS
/// or version the device does not report.
fn not_applied(expect: Option<&Expect>, report: &ResultReport) -> Option<String> {
    let expect = expect?;
    let mismatch = |want: &Option<String>, got: &Option<String>| {
        want.as_ref()
            .is_some_and(|w| got.as_deref() != Some(w.as_str()))
    };
    if mismatch(&expect.os, &report.os) || mismatch(&expect.version, &report.version) {
        return Some(format!(
            "did not apply: the device runs {} {}, the rollout expects {} {}",
            report.os.as_deref().unwrap_or("?"),
            report.version.as_deref().unwrap_or("?"),
            expect.os.as_deref().unwrap_or("any"),
            expect.version.as_deref().unwrap_or("any"),
        ));
    }
    None
}

fn all_devices(c: &Counts) -> u64 {
    c.pending + c.assigned + c.running + c.succeeded + c.failed
}

struct RolloutRow {
    state: RolloutState,
    wave: i64,
    wave_started: i64,
    accepted_wave: i64,
    failure_base: i64,
    created_at: String,
    reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(canary: &str, waves: &[f64]) -> RolloutRequest {
        RolloutRequest {
            name: "r".into(),
            group: "g".into(),
            artifact: ArtifactSpec {
                kind: ArtifactKind::Script,
                content: Some("true".into()),
                signature: Some("sig".into()),
                url: None,
                sha256: None,
                signature_url: None,
            },
            canary: canary.into(),
            waves: waves.to_vec(),
            dwell_secs: 0,
            gate: Gate {
                success_percent: 90.0,
                min_finished: None,
            },
            abort: None,
            on_failure: OnFailure::Pause,
            window: None,
            expect: None,
            timeout_secs: None,
            command_ttl_secs: None,
        }
    }

    #[test]
    fn waves_are_cumulative_and_end_at_the_whole_group() {
        assert_eq!(request("2", &[50.0]).wave_targets(50), vec![2, 25, 50]);
        assert_eq!(request("10%", &[]).wave_targets(50), vec![5, 50]);
        // A small group: every wave still takes at least one device, no
        // wave repeats a target.
        assert_eq!(request("10%", &[20.0, 100.0]).wave_targets(3), vec![1, 3]);
        assert_eq!(request("5", &[]).wave_targets(3), vec![3]);
    }

    #[test]
    fn bad_requests_are_refused_with_a_reason() {
        assert!(request("2", &[50.0]).validate().is_ok());
        for canary in ["0", "x", "0%", "150%", ""] {
            assert!(request(canary, &[]).validate().is_err(), "{canary}");
        }
        assert!(request("2", &[50.0, 40.0]).validate().is_err());
        assert!(request("2", &[f64::NAN]).validate().is_err());
        let mut unsigned = request("2", &[]);
        unsigned.artifact.signature = None;
        assert!(unsigned.validate().is_err());
        let mut both = request("2", &[]);
        both.artifact.url = Some("http://x/a".into());
        assert!(both.validate().is_err());
    }

    fn row(wave: i64) -> RolloutRow {
        RolloutRow {
            state: RolloutState::Active,
            wave,
            wave_started: 1000,
            accepted_wave: -1,
            failure_base: 0,
            created_at: String::new(),
            reason: None,
        }
    }

    fn counts(pending: u64, assigned: u64, succeeded: u64, failed: u64) -> Counts {
        Counts {
            pending,
            assigned,
            running: 0,
            succeeded,
            failed,
        }
    }

    #[test]
    fn a_wave_waits_for_its_devices_then_passes_or_halts_at_its_gate() {
        let r = request("2", &[50.0]); // 10 devices: waves of 2, 5, 10
        let all = |a, s, f| counts(10 - a - s - f, a, s, f);
        assert_eq!(
            decide(&r, &row(0), &all(1, 1, 0), &counts(0, 1, 1, 0), 1000),
            Decision::Wait
        );
        assert_eq!(
            decide(&r, &row(0), &all(0, 2, 0), &counts(0, 0, 2, 0), 1000),
            Decision::NextWave
        );
        let halted = decide(&r, &row(1), &all(0, 4, 1), &counts(0, 0, 2, 1), 1000);
        assert!(
            matches!(&halted, Decision::Halt(why) if why.contains("wave 1 failed its gate")),
            "{halted:?}"
        );
        // Accepted by a resume: the same wave goes on.
        let mut accepted = row(1);
        accepted.accepted_wave = 1;
        assert_eq!(
            decide(&r, &accepted, &all(0, 4, 1), &counts(0, 0, 2, 1), 1000),
            Decision::NextWave
        );
        assert!(matches!(
            decide(&r, &row(2), &all(0, 10, 0), &counts(0, 0, 5, 0), 1000),
            Decision::Complete(_)
        ));
    }

    #[test]
    fn dwell_holds_the_next_wave_and_abort_criteria_halt_at_once() {
        let mut r = request("2", &[50.0]);
        r.dwell_secs = 60;
        let done = counts(8, 0, 2, 0);
        assert_eq!(
            decide(&r, &row(0), &done, &counts(0, 0, 2, 0), 1059),
            Decision::Wait
        );
        assert_eq!(
            decide(&r, &row(0), &done, &counts(0, 0, 2, 0), 1060),
            Decision::NextWave
        );
        r.abort = Some(AbortCriteria {
            failures: Some(2),
            failure_percent: None,
            min_finished: 0,
        });
        // Two failures halt even while the wave is still running.
        let running = counts(5, 2, 1, 2);
        assert!(matches!(
            decide(&r, &row(1), &running, &counts(0, 2, 1, 2), 1000),
            Decision::Halt(why) if why.contains("abort criteria")
        ));
        // After a resume the failures before it are not held against it.
        let mut resumed = row(1);
        resumed.failure_base = 2;
        resumed.accepted_wave = 1;
        assert_eq!(
            decide(&r, &resumed, &running, &counts(0, 2, 1, 2), 1000),
            Decision::Wait
        );
    }

    #[test]
    fn windows_wrap_past_midnight() {
        let w = Window {
            start_hour: 22,
            end_hour: 4,
        };
        assert!(w.contains(23 * 3600));
        assert!(w.contains(2 * 3600));
        assert!(!w.contains(12 * 3600));
    }
}
