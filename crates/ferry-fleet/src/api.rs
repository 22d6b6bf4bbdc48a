//! The server's versioned JSON API (`/api/v1/...`) on axum: enrolment by an
//! operator, polls and event batches from devices, device and event lists
//! for operators. Every refusal is a 4xx with a JSON error body; a request
//! body is never read past [`MAX_BODY`].
//!
//! Not for storage (the store's) nor for the agent's side of the wire,
//! though both sides share the request and answer types defined here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ferry_journal::Event;
use serde::{Deserialize, Serialize};

use crate::rollout::{
    Assignment, Control, ResultAnswer, ResultReport, RolloutError, RolloutRequest, RolloutStatus,
};
use crate::store::{DeviceRecord, LogRecord, Store, StoreError, StoredEvent};
use crate::tls::{Peer, ServerTls, TlsError, TlsListener};
use crate::token;

/// The largest request body the server reads (1 MiB): a full batch of
/// events fits many times over.
pub const MAX_BODY: usize = 1024 * 1024;
/// The most events one batch may carry.
pub const MAX_BATCH: usize = 1000;
/// The most events one page of `GET .../events` returns.
pub const MAX_PAGE: i64 = 10_000;

/// `POST /api/v1/enrol` (operator).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolRequest {
    #[serde(default)]
    pub os: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    /// Groups the device joins at once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
}

/// The answer to an enrolment: the device's token is given this once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnrolResponse {
    pub device_id: String,
    pub token: String,
    pub interval_secs: u64,
}

/// `GET /api/v1/poll` query (device): what the device runs now.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct PollQuery {
    pub os: Option<String>,
    pub version: Option<String>,
}

/// The answer to a poll; its ETag is a hash of this JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollResponse {
    pub device_id: String,
    /// Seconds until the next poll (the agent adds jitter).
    pub interval_secs: u64,
    /// Every event up to this seq is stored.
    pub acked_seq: i64,
    /// What the device is to run now, if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment: Option<Assignment>,
}

/// `POST /api/v1/devices/{id}/labels` (operator): groups to join.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelsRequest {
    pub labels: Vec<String>,
}

/// The answer: all of the device's labels now.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabelsResponse {
    pub device_id: String,
    pub labels: Vec<String>,
}

/// `GET /api/v1/rollouts` (operator).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RolloutsResponse {
    pub rollouts: Vec<RolloutStatus>,
}

/// One event of a batch, numbered by the device from 1 without gaps.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SequencedEvent {
    pub seq: u64,
    pub event: Event,
}

/// `POST /api/v1/events` (device).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventBatch {
    pub events: Vec<SequencedEvent>,
}

/// The answer to a batch: the agent drops what is at or below `acked_seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchResponse {
    pub stored: u64,
    pub duplicates: u64,
    pub acked_seq: i64,
}

/// `GET /api/v1/devices` (operator).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DevicesResponse {
    pub devices: Vec<DeviceRecord>,
}

/// `GET /api/v1/devices/{id}/events` query.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct EventsQuery {
    pub after: Option<i64>,
    pub limit: Option<i64>,
}

/// `GET /api/v1/devices/{id}/events` (operator).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventsResponse {
    pub device_id: String,
    pub events: Vec<StoredEvent>,
}

/// `GET /api/v1/devices/{id}/logs` (operator): the device's uploaded run
/// logs; each one's text is at `.../logs/{command_id}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogsResponse {
    pub device_id: String,
    pub logs: Vec<LogRecord>,
}

/// Every refusal's body: `{"error": {"status": 403, "message": "…"}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub status: u16,
    pub message: String,
}

/// A refusal or failure, answered as JSON.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                status: self.status.as_u16(),
                message: self.message,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
    }
}

impl From<RolloutError> for ApiError {
    fn from(error: RolloutError) -> ApiError {
        let status = match &error {
            RolloutError::NoRollout(_) | RolloutError::NoCommand(_) => StatusCode::NOT_FOUND,
            RolloutError::Conflict { .. } => StatusCode::CONFLICT,
            RolloutError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, error.to_string())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> ApiError {
        ApiError::new(rejection.status(), rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> ApiError {
        ApiError::new(rejection.status(), rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> ApiError {
        ApiError::new(rejection.status(), rejection.body_text())
    }
}

/// What the server knows besides the store.
#[derive(Debug)]
pub struct AppState {
    pub store: Store,
    /// SHA-256 (hex) of the operator token; the token itself is not kept.
    pub operator_hash: String,
    pub interval_secs: u64,
    /// Whether the server speaks HTTPS (the artifact URLs it hands out say so).
    pub https: bool,
    /// Mutual TLS: a device token counts only over a connection whose
    /// client certificate names that device.
    pub bind_devices: bool,
}

/// Who a request's bearer token belongs to.
enum Caller {
    Operator,
    Device(String),
}

async fn caller(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let unauthorised = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing or unknown token: send `Authorization: Bearer TOKEN`",
        )
    };
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(unauthorised)?;
    let token = value
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(unauthorised)?;
    let hash = token::hash(token);
    if token::same(&hash, &state.operator_hash) {
        return Ok(Caller::Operator);
    }
    match state.store.device_for_token(&hash).await? {
        Some(id) => Ok(Caller::Device(id)),
        None => Err(unauthorised()),
    }
}

async fn operator(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    match caller(state, headers).await? {
        Caller::Operator => Ok(()),
        Caller::Device(_) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "a device token cannot be used for an operator's request",
        )),
    }
}

async fn device(state: &AppState, headers: &HeaderMap) -> Result<String, ApiError> {
    match caller(state, headers).await? {
        Caller::Device(id) => Ok(id),
        Caller::Operator => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "the operator token cannot be used for a device's request",
        )),
    }
}

/// The API's routes, with the body limit and a JSON 404 for anything else.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/api/v1/enrol", post(enrol))
        .route("/api/v1/poll", get(poll))
        .route("/api/v1/events", post(events))
        .route("/api/v1/devices", get(devices))
        .route("/api/v1/devices/{id}/events", get(device_events))
        .route("/api/v1/devices/{id}/labels", post(device_labels))
        .route("/api/v1/rollouts", post(create_rollout).get(list_rollouts))
        .route("/api/v1/rollouts/{id}", get(rollout_status))
        .route("/api/v1/rollouts/{id}/{action}", post(control_rollout))
        .route("/api/v1/rollouts/{id}/artifact", get(rollout_artifact))
        .route("/api/v1/rollouts/{id}/signature", get(rollout_signature))
        .route("/api/v1/results", post(result))
        .route("/api/v1/logs/{command_id}", post(upload_log))
        .route("/api/v1/devices/{id}/logs", get(device_logs))
        .route("/api/v1/devices/{id}/logs/{command_id}", get(device_log))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such API endpoint") })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            bind_to_certificate,
        ))
        .with_state(state)
}

/// Over mutual TLS, refuses a device token sent over a connection whose
/// client certificate does not name that device (its SAN DNS name), so a
/// token copied off a device is useless without the device's key too.
/// The operator token needs only a certificate the client CA signed (the
/// handshake checked that); anything else goes on to its handler.
async fn bind_to_certificate(
    State(state): State<Arc<AppState>>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<Peer>>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if !state.bind_devices {
        return next.run(request).await;
    }
    let device = match caller(&state, request.headers()).await {
        Ok(Caller::Device(id)) => id,
        Ok(Caller::Operator) | Err(_) => return next.run(request).await,
    };
    let cert = peer.and_then(|p| p.0 .0.cert);
    if cert.is_some_and(|c| crate::tls::cert_names_device(&c, &device)) {
        return next.run(request).await;
    }
    ApiError::new(
        StatusCode::FORBIDDEN,
        format!(
            "the token of {device} is accepted only with that device's client certificate \
             (a subject alternative name of DNS:{device})"
        ),
    )
    .into_response()
}

async fn enrol(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Json<EnrolRequest>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    operator(&state, &headers).await?;
    let Json(request) = body?;
    let id = token::device_id();
    let secret = token::new_token();
    state
        .store
        .enrol(
            &id,
            &token::hash(&secret),
            &ferry_journal::rfc3339_now(),
            request.os.as_deref(),
            request.version.as_deref(),
        )
        .await?;
    check_labels(&request.labels)?;
    state.store.add_labels(&id, &request.labels).await?;
    Ok((
        StatusCode::CREATED,
        Json(EnrolResponse {
            device_id: id,
            token: secret,
            interval_secs: state.interval_secs,
        }),
    ))
}

async fn poll(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    query: Result<Query<PollQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let id = device(&state, &headers).await?;
    let Query(query) = query?;
    state
        .store
        .seen(
            &id,
            &ferry_journal::rfc3339_now(),
            query.os.as_deref(),
            query.version.as_deref(),
        )
        .await?;
    // The artifact's URLs name the server as the device reached it.
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    let scheme = if state.https { "https" } else { "http" };
    let assignment = state
        .store
        .assignment(&id, &format!("{scheme}://{host}"))
        .await?;
    let answer = PollResponse {
        acked_seq: state.store.acked_seq(&id).await?,
        device_id: id,
        interval_secs: state.interval_secs,
        assignment,
    };
    let body = serde_json::to_vec(&answer)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let etag = format!("\"{}\"", &token::hash_bytes(&body)[..32]);
    let etag_value = HeaderValue::from_str(&etag)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    if unchanged {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag_value)]).into_response());
    }
    Ok((
        [
            (header::ETAG, etag_value),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
        ],
        body,
    )
        .into_response())
}

async fn events(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Json<EventBatch>, JsonRejection>,
) -> Result<Json<BatchResponse>, ApiError> {
    let id = device(&state, &headers).await?;
    let Json(batch) = body?;
    let rows = batch_rows(&batch)?;
    let stored = state
        .store
        .insert_events(&id, &rows, &ferry_journal::rfc3339_now())
        .await?;
    // A running device's current step is its newest event's.
    if let Some(last) = batch.events.iter().max_by_key(|e| e.seq) {
        state.store.note_step(&id, &last.event.step).await?;
    }
    Ok(Json(BatchResponse {
        stored: stored.stored,
        duplicates: stored.duplicates,
        acked_seq: stored.acked_seq,
    }))
}

/// Checks a batch and gives its rows as stored: `(seq, event JSON)`. A
/// batch over [`MAX_BATCH`] events or a seq outside 1..=i64::MAX is refused.
fn batch_rows(batch: &EventBatch) -> Result<Vec<(i64, String)>, ApiError> {
    if batch.events.len() > MAX_BATCH {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "a batch carries at most {MAX_BATCH} events, this one {}",
                batch.events.len()
            ),
        ));
    }
    let mut rows = Vec::with_capacity(batch.events.len());
    for item in &batch.events {
        let seq = i64::try_from(item.seq)
            .ok()
            .filter(|s| *s >= 1)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("seq {} is out of range: seqs start at 1", item.seq),
                )
            })?;
        let text = serde_json::to_string(&item.event)
            .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
        rows.push((seq, text));
    }
    Ok(rows)
}

/// Labels are short names: 1 to 64 of letters, digits, `-`, `_`, `.`.
fn check_labels(labels: &[String]) -> Result<(), ApiError> {
    for label in labels {
        let ok = (1..=64).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !ok {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("label {label:?} is not 1 to 64 of letters, digits, '-', '_', '.'"),
            ));
        }
    }
    Ok(())
}

/// Checks a rollout request beyond its JSON: a 422 says what is wrong.
fn check_rollout(request: &RolloutRequest) -> Result<(), ApiError> {
    request
        .validate()
        .map_err(|m| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, m))?;
    check_labels(std::slice::from_ref(&request.group))
}

async fn device_labels(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<LabelsRequest>, JsonRejection>,
) -> Result<Json<LabelsResponse>, ApiError> {
    operator(&state, &headers).await?;
    let Path(id) = path?;
    let Json(request) = body?;
    check_labels(&request.labels)?;
    if state.store.device(&id).await?.is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no device {id} is enrolled"),
        ));
    }
    state.store.add_labels(&id, &request.labels).await?;
    Ok(Json(LabelsResponse {
        labels: state.store.labels(&id).await?,
        device_id: id,
    }))
}

async fn create_rollout(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Json<RolloutRequest>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    operator(&state, &headers).await?;
    let Json(request) = body?;
    check_rollout(&request)?;
    // An uploaded artifact and its signature are kept as given; the
    // request's copy of them is not stored twice.
    let artifact = request.artifact.content.clone().map(String::into_bytes);
    let signature = request.artifact.signature.clone().map(String::into_bytes);
    let mut kept = request.clone();
    kept.artifact.content = None;
    if artifact.is_some() || kept.artifact.signature_url.is_none() {
        kept.artifact.signature = None;
    }
    let id = state
        .store
        .create_rollout(&kept, artifact.as_deref(), signature.as_deref())
        .await?;
    let status = state.store.rollout(&id, true).await?;
    Ok((StatusCode::CREATED, Json(status)))
}

async fn list_rollouts(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<RolloutsResponse>, ApiError> {
    operator(&state, &headers).await?;
    Ok(Json(RolloutsResponse {
        rollouts: state.store.rollouts().await?,
    }))
}

async fn rollout_status(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<RolloutStatus>, ApiError> {
    operator(&state, &headers).await?;
    let Path(id) = path?;
    Ok(Json(state.store.rollout(&id, true).await?))
}

async fn control_rollout(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<RolloutStatus>, ApiError> {
    operator(&state, &headers).await?;
    let Path((id, action)) = path?;
    let control = match action.as_str() {
        "pause" => Control::Pause,
        "resume" => Control::Resume,
        "abort" => Control::Abort,
        _ => return Err(ApiError::new(StatusCode::NOT_FOUND, "no such API endpoint")),
    };
    state.store.control(&id, control).await?;
    Ok(Json(state.store.rollout(&id, true).await?))
}

async fn rollout_file(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
    signature: bool,
) -> Result<Response, ApiError> {
    let device = device(state, headers).await?;
    match state.store.artifact(id, &device, signature).await? {
        Some(bytes) => Ok((
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            )],
            bytes,
        )
            .into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("rollout {id} has no such file for this device"),
        )),
    }
}

async fn rollout_artifact(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = path?;
    rollout_file(&state, &headers, &id, false).await
}

async fn rollout_signature(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = path?;
    rollout_file(&state, &headers, &id, true).await
}

async fn result(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Json<ResultReport>, JsonRejection>,
) -> Result<Json<ResultAnswer>, ApiError> {
    let id = device(&state, &headers).await?;
    let Json(report) = body?;
    Ok(Json(state.store.record_result(&id, &report).await?))
}

/// A device uploads the output of its run of a command: its own commands
/// only (another device's is a 404, as an unknown one), at most
/// [`MAX_BODY`] bytes (413), raw bytes as the run wrote them.
async fn upload_log(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<LogRecord>, ApiError> {
    let id = device(&state, &headers).await?;
    let Path(command) = path?;
    let Some(rollout) = state.store.command_rollout(&id, &command).await? else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no command {command} was given to this device"),
        ));
    };
    let content = body.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
    Ok(Json(
        state
            .store
            .put_log(
                &id,
                &command,
                &rollout,
                &content,
                &ferry_journal::rfc3339_now(),
            )
            .await?,
    ))
}

async fn enrolled(state: &AppState, id: &str) -> Result<(), ApiError> {
    match state.store.device(id).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no device {id} is enrolled"),
        )),
    }
}

async fn device_logs(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<LogsResponse>, ApiError> {
    operator(&state, &headers).await?;
    let Path(id) = path?;
    enrolled(&state, &id).await?;
    Ok(Json(LogsResponse {
        logs: state.store.logs(&id).await?,
        device_id: id,
    }))
}

async fn device_log(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    operator(&state, &headers).await?;
    let Path((id, command)) = path?;
    enrolled(&state, &id).await?;
    match state.store.log(&id, &command).await? {
        Some(content) => Ok((
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            )],
            content,
        )
            .into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("device {id} has uploaded no log of command {command}"),
        )),
    }
}

/// The request bodies the API decodes, by the endpoint that takes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    Enrol,
    Events,
    PollQuery,
    EventsQuery,
    Rollout,
    Result,
}

/// Decodes `bytes` as the body (or query string) of `kind` the way the
/// server does, without a server: `Ok` with what would be stored or used,
/// or the 4xx status and message the server would answer. For fuzzing the
/// decoders and for checking a request offline.
pub fn decode_request(kind: RequestKind, bytes: &[u8]) -> Result<String, (u16, String)> {
    let refused = |e: ApiError| (e.status.as_u16(), e.message);
    let bad = |e: &dyn std::fmt::Display| (400, e.to_string());
    match kind {
        RequestKind::Enrol => {
            let request: EnrolRequest = serde_json::from_slice(bytes).map_err(|e| bad(&e))?;
            Ok(format!("{request:?}"))
        }
        RequestKind::Events => {
            let batch: EventBatch = serde_json::from_slice(bytes).map_err(|e| bad(&e))?;
            let rows = batch_rows(&batch).map_err(refused)?;
            for (_, text) in &rows {
                // What is stored reads back as an event.
                serde_json::from_str::<Event>(text).map_err(|e| (500, e.to_string()))?;
            }
            Ok(format!("{} event(s)", rows.len()))
        }
        RequestKind::PollQuery => {
            let text = std::str::from_utf8(bytes).map_err(|e| bad(&e))?;
            let query = Query::<PollQuery>::try_from_uri(
                &format!("/?{text}").parse().map_err(|e| bad(&e))?,
            )
            .map_err(|e| refused(e.into()))?;
            Ok(format!("{:?}", query.0))
        }
        RequestKind::Rollout => {
            let request: RolloutRequest = serde_json::from_slice(bytes).map_err(|e| bad(&e))?;
            check_rollout(&request).map_err(refused)?;
            Ok(format!("rollout {:?} to {:?}", request.name, request.group))
        }
        RequestKind::Result => {
            let report: ResultReport = serde_json::from_slice(bytes).map_err(|e| bad(&e))?;
            Ok(format!("{report:?}"))
        }
        RequestKind::EventsQuery => {
            let text = std::str::from_utf8(bytes).map_err(|e| bad(&e))?;
            let query = Query::<EventsQuery>::try_from_uri(
                &format!("/?{text}").parse().map_err(|e| bad(&e))?,
            )
            .map_err(|e| refused(e.into()))?;
            Ok(format!("{:?}", query.0))
        }
    }
}

async fn devices(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<DevicesResponse>, ApiError> {
    operator(&state, &headers).await?;
    Ok(Json(DevicesResponse {
        devices: state.store.devices().await?,
    }))
}

async fn device_events(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Json<EventsResponse>, ApiError> {
    operator(&state, &headers).await?;
    let Path(id) = path?;
    let Query(query) = query?;
    if state.store.device(&id).await?.is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no device {id} is enrolled"),
        ));
    }
    let limit = query.limit.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
    Ok(Json(EventsResponse {
        events: state
            .store
            .events(&id, query.after.unwrap_or(0), limit)
            .await?,
        device_id: id,
    }))
}

/// How `ferry fleet serve` is set up.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub db: PathBuf,
    pub operator_token: String,
    pub interval_secs: u64,
    /// HTTPS (and mutual TLS) instead of plain HTTP.
    pub tls: Option<ServerTls>,
    /// The broker to publish "poll now" hints through (mqtt.rs), if any.
    pub mqtt: Option<crate::mqtt::BrokerUrl>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("the operator token is empty: put a long random secret in the file")]
    EmptyOperatorToken,
    #[error("cannot start the server's runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("the server stopped: {0}")]
    Serve(#[source] std::io::Error),
}

/// Runs the server until it fails (or the process is killed), calling
/// `ready` with the bound address once it accepts connections. Every
/// acknowledged batch is committed before its answer is sent, so killing
/// the process at any instant loses nothing a device dropped.
pub fn serve(config: ServeConfig, ready: impl FnOnce(SocketAddr)) -> Result<(), ServeError> {
    if config.operator_token.trim().is_empty() {
        return Err(ServeError::EmptyOperatorToken);
    }
    // Bad certificate or key files stop the start before anything listens.
    let tls = config.tls.as_ref().map(ServerTls::config).transpose()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(ServeError::Runtime)?;
    runtime.block_on(async move {
        let store = Store::open(&config.db).await?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| ServeError::Listen {
                addr: config.listen,
                source,
            })?;
        let bound = listener.local_addr().map_err(|source| ServeError::Listen {
            addr: config.listen,
            source,
        })?;
        let state = Arc::new(AppState {
            store,
            operator_hash: token::hash(config.operator_token.trim()),
            interval_secs: config.interval_secs,
            https: tls.is_some(),
            bind_devices: config.tls.as_ref().is_some_and(|t| t.client_ca.is_some()),
        });
        if let Some(broker) = config.mqtt.clone() {
            crate::mqtt::spawn_notifier(state.clone(), broker);
        }
        let app = router(state).into_make_service_with_connect_info::<Peer>();
        match tls {
            Some(tls) => {
                let listener = TlsListener::new(listener, tls);
                ready(bound);
                axum::serve(listener, app).await.map_err(ServeError::Serve)
            }
            None => {
                ready(bound);
                axum::serve(listener, app).await.map_err(ServeError::Serve)
            }
        }
    })
}
