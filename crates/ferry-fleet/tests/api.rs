//! The server's API over real HTTP on loopback: who may call what (wrong
//! token 401, a token of the other kind 403, one device never reaching
//! another's data), idempotent batches, ETags, malformed and oversized
//! requests answered with a JSON 4xx while the server stays up, and the
//! store's schema versioning.

mod common;

use std::path::Path;

use ferry_fleet::{
    BatchResponse, DevicesResponse, EnrolResponse, ErrorBody, EventsResponse, PollResponse, Store,
    StoreError, SCHEMA_VERSION,
};

const OPERATOR: &str = "operator-secret-for-tests-0123456789";

fn start(dir: &Path) -> String {
    common::start(dir, OPERATOR, 7)
}

fn url(server: &str, path: &str) -> String {
    format!("{server}/api/v1/{path}")
}

/// The status and body of a request, whatever the status.
fn call(request: ureq::Request, body: Option<&str>) -> (u16, String) {
    let result = match body {
        Some(body) => request
            .set("Content-Type", "application/json")
            .send_string(body),
        None => request.call(),
    };
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("transport error: {e}"),
    };
    let status = response.status();
    (status, response.into_string().unwrap_or_default())
}

fn bearer(request: ureq::Request, token: &str) -> ureq::Request {
    request.set("Authorization", &format!("Bearer {token}"))
}

fn enrol(server: &str) -> EnrolResponse {
    let (status, body) = call(
        bearer(ureq::post(&url(server, "enrol")), OPERATOR),
        Some(r#"{"os":"debian","version":"12"}"#),
    );
    assert_eq!(status, 201, "{body}");
    serde_json::from_str(&body).expect("an enrolment answer")
}

fn event_json(msg: &str) -> String {
    format!(
        r#"{{"ts":"2026-12-02T10:00:00.000Z","device":"d","migration":"m","step":"s","function":"f","uptime":1.5,"state":"OK","msg":"{msg}"}}"#
    )
}

fn batch(seqs: &[u64]) -> String {
    let items: Vec<String> = seqs
        .iter()
        .map(|s| format!(r#"{{"seq":{s},"event":{}}}"#, event_json(&format!("e{s}"))))
        .collect();
    format!(r#"{{"events":[{}]}}"#, items.join(","))
}

fn post_events(server: &str, token: &str, body: &str) -> (u16, String) {
    call(
        bearer(ureq::post(&url(server, "events")), token),
        Some(body),
    )
}

fn assert_json_error(status: u16, body: &str, expected: u16) {
    assert_eq!(status, expected, "{body}");
    let error: ErrorBody = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("a {status} answer has a JSON error body ({e}): {body}"));
    assert_eq!(error.error.status, expected);
    assert!(!error.error.message.is_empty());
}

#[test]
fn tokens_are_checked_and_kept_apart() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = start(dir.path());
    let a = enrol(&server);
    let b = enrol(&server);
    assert_ne!(a.device_id, b.device_id);
    assert_eq!(a.interval_secs, 7);

    // No token, a wrong token: 401.
    let (status, body) = call(ureq::get(&url(&server, "devices")), None);
    assert_json_error(status, &body, 401);
    let (status, body) = call(bearer(ureq::get(&url(&server, "poll")), "nope"), None);
    assert_json_error(status, &body, 401);
    let (status, body) = call(
        bearer(ureq::post(&url(&server, "enrol")), "not-the-operator"),
        Some("{}"),
    );
    assert_json_error(status, &body, 401);

    // A device token on operator routes: 403, including reading its own
    // or another device's events and enrolling more devices.
    for path in [
        "devices".to_string(),
        format!("devices/{}/events", b.device_id),
        format!("devices/{}/events", a.device_id),
    ] {
        let (status, body) = call(bearer(ureq::get(&url(&server, &path)), &a.token), None);
        assert_json_error(status, &body, 403);
    }
    let (status, body) = call(
        bearer(ureq::post(&url(&server, "enrol")), &a.token),
        Some("{}"),
    );
    assert_json_error(status, &body, 403);

    // The operator token on device routes: 403.
    let (status, body) = call(bearer(ureq::get(&url(&server, "poll")), OPERATOR), None);
    assert_json_error(status, &body, 403);
    let (status, body) = post_events(&server, OPERATOR, &batch(&[1]));
    assert_json_error(status, &body, 403);

    // A device writes only under its own id: A's batch never shows up as B's.
    let (status, body) = post_events(&server, &a.token, &batch(&[1, 2]));
    assert_eq!(status, 200, "{body}");
    let (_, body) = call(
        bearer(
            ureq::get(&url(&server, &format!("devices/{}/events", b.device_id))),
            OPERATOR,
        ),
        None,
    );
    let b_events: EventsResponse = serde_json::from_str(&body).expect("an event list");
    assert!(b_events.events.is_empty(), "{body}");

    // An unknown device: 404.
    let (status, body) = call(
        bearer(
            ureq::get(&url(&server, "devices/dev-nope/events")),
            OPERATOR,
        ),
        None,
    );
    assert_json_error(status, &body, 404);
}

#[test]
fn a_replayed_batch_stores_nothing_twice() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = start(dir.path());
    let device = enrol(&server);

    let (status, body) = post_events(&server, &device.token, &batch(&[1, 2, 3]));
    assert_eq!(status, 200, "{body}");
    let first: BatchResponse = serde_json::from_str(&body).expect("a batch answer");
    assert_eq!((first.stored, first.duplicates, first.acked_seq), (3, 0, 3));

    // The same batch again (its answer lost, say): acknowledged, not stored.
    let (_, body) = post_events(&server, &device.token, &batch(&[1, 2, 3]));
    let again: BatchResponse = serde_json::from_str(&body).expect("a batch answer");
    assert_eq!((again.stored, again.duplicates, again.acked_seq), (0, 3, 3));

    // A gap holds the acknowledgement at the last contiguous seq.
    let (_, body) = post_events(&server, &device.token, &batch(&[3, 5]));
    let gap: BatchResponse = serde_json::from_str(&body).expect("a batch answer");
    assert_eq!((gap.stored, gap.duplicates, gap.acked_seq), (1, 1, 3));
    let (_, body) = post_events(&server, &device.token, &batch(&[4]));
    let filled: BatchResponse = serde_json::from_str(&body).expect("a batch answer");
    assert_eq!(filled.acked_seq, 5);

    let (_, body) = call(
        bearer(
            ureq::get(&url(
                &server,
                &format!("devices/{}/events", device.device_id),
            )),
            OPERATOR,
        ),
        None,
    );
    let events: EventsResponse = serde_json::from_str(&body).expect("an event list");
    let seqs: Vec<i64> = events.events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    assert_eq!(events.events[0].event["msg"], "e1");

    let (_, body) = call(bearer(ureq::get(&url(&server, "devices")), OPERATOR), None);
    let devices: DevicesResponse = serde_json::from_str(&body).expect("a device list");
    assert_eq!(devices.devices.len(), 1);
    assert_eq!(devices.devices[0].events, 5);
    assert_eq!(devices.devices[0].acked_seq, 5);
    assert_eq!(devices.devices[0].os.as_deref(), Some("debian"));
}

#[test]
fn polls_answer_the_interval_with_an_etag() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = start(dir.path());
    let device = enrol(&server);
    let response = bearer(
        ureq::get(&format!("{}?os=debian&version=13", url(&server, "poll"))),
        &device.token,
    )
    .call()
    .expect("a poll answer");
    let etag = response.header("ETag").expect("an ETag").to_string();
    let polled: PollResponse =
        serde_json::from_str(&response.into_string().expect("a poll body")).expect("poll JSON");
    assert_eq!(polled.interval_secs, 7);
    assert_eq!(polled.device_id, device.device_id);

    let (status, body) = call(
        bearer(ureq::get(&url(&server, "poll")), &device.token).set("If-None-Match", &etag),
        None,
    );
    assert_eq!(status, 304, "{body}");
    assert!(body.is_empty());

    // New events move acked_seq, so the answer (and its ETag) changes.
    post_events(&server, &device.token, &batch(&[1]));
    let (status, _) = call(
        bearer(ureq::get(&url(&server, "poll")), &device.token).set("If-None-Match", &etag),
        None,
    );
    assert_eq!(status, 200);

    // The version reported at the poll is what operators see.
    let (_, body) = call(bearer(ureq::get(&url(&server, "devices")), OPERATOR), None);
    let devices: DevicesResponse = serde_json::from_str(&body).expect("a device list");
    assert_eq!(devices.devices[0].version.as_deref(), Some("13"));
    assert!(devices.devices[0].last_seen.is_some());
}

#[test]
fn malformed_and_oversized_requests_get_a_json_4xx_and_the_server_stays_up() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = start(dir.path());
    let device = enrol(&server);
    let bad_bodies = [
        "{",
        "null",
        "[]",
        r#"{"events":"no"}"#,
        r#"{"events":[{"seq":-1,"event":{}}]}"#,
        r#"{"events":[{"seq":1}]}"#,
        r#"{"events":[{"seq":1,"event":{"ts":1}}]}"#,
        r#"{"events":[],"extra":1}"#,
        "\u{0}\u{1}\u{2}",
    ];
    for body in bad_bodies {
        let (status, answer) = post_events(&server, &device.token, body);
        assert!(
            (400..500).contains(&status),
            "{body:?} got {status}: {answer}"
        );
        assert_json_error(status, &answer, status);
    }
    // seq 0 parses but is out of range.
    let (status, answer) = post_events(&server, &device.token, &batch(&[0]));
    assert_json_error(status, &answer, 422);
    // Too many events in one batch.
    let many: Vec<u64> = (1..=ferry_fleet::MAX_BATCH as u64 + 1).collect();
    let (status, answer) = post_events(&server, &device.token, &batch(&many));
    assert_json_error(status, &answer, 413);
    // A body past the limit is refused without being read whole.
    let huge = format!(
        r#"{{"events":[{{"seq":1,"event":{}}}]}}"#,
        event_json(&"x".repeat(ferry_fleet::MAX_BODY + 1))
    );
    let (status, answer) = post_events(&server, &device.token, &huge);
    assert_json_error(status, &answer, 413);
    // Bad query and path values, an unknown route.
    let (status, answer) = call(
        bearer(
            ureq::get(&url(
                &server,
                &format!("devices/{}/events?after=abc", device.device_id),
            )),
            OPERATOR,
        ),
        None,
    );
    assert_json_error(status, &answer, 400);
    let (status, answer) = call(ureq::get(&url(&server, "nothing-here")), None);
    assert_json_error(status, &answer, 404);

    // Still up, and nothing of the above was stored.
    let (status, body) = post_events(&server, &device.token, &batch(&[1]));
    assert_eq!(status, 200, "{body}");
    let answer: BatchResponse = serde_json::from_str(&body).expect("a batch answer");
    assert_eq!((answer.stored, answer.acked_seq), (1, 1));
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

#[test]
fn a_fresh_database_migrates_to_the_current_schema() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let db = dir.path().join("fleet.db");
    runtime().block_on(async {
        let store = Store::open(&db).await.expect("a new store");
        assert_eq!(
            store.schema_version().await.expect("a version"),
            SCHEMA_VERSION
        );
        store.close().await;
        // Opening again migrates nothing and keeps the version.
        let store = Store::open(&db).await.expect("the store again");
        assert_eq!(
            store.schema_version().await.expect("a version"),
            SCHEMA_VERSION
        );
        assert!(store.devices().await.expect("devices").is_empty());
        store.close().await;
    });
}

#[test]
fn a_database_of_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let db = dir.path().join("fleet.db");
    runtime().block_on(async {
        let store = Store::open(&db).await.expect("a new store");
        store.close().await;
        // A newer ferry's migration, as far as the version table says.
        let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", db.display()))
            .await
            .expect("the database");
        sqlx::query("UPDATE schema_version SET version = ?")
            .bind(SCHEMA_VERSION + 1)
            .execute(&pool)
            .await
            .expect("an update");
        pool.close().await;
        match Store::open(&db).await {
            Err(
                error @ StoreError::Newer {
                    found, supported, ..
                },
            ) => {
                assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
                assert!(error.to_string().contains("newer ferry"), "{error}");
            }
            other => panic!("a newer schema must be refused, got {other:?}"),
        }
    });
}

/// Enrols a device in group `group` (the operator's call).
fn enrol_in(server: &str, group: &str) -> EnrolResponse {
    let (status, body) = call(
        bearer(ureq::post(&url(server, "enrol")), OPERATOR),
        Some(&format!(
            r#"{{"os":"debian","version":"12","labels":["{group}"]}}"#
        )),
    );
    assert_eq!(status, 201, "{body}");
    serde_json::from_str(&body).expect("an enrolment answer")
}

/// Starts a rollout to `group` whose canary is one device, and answers the
/// command the device's poll hands it. The server stores the artifact as
/// given; only the agent checks its signature, so any text does here.
fn assigned_command(server: &str, group: &str, device: &EnrolResponse) -> String {
    let request = serde_json::json!({
        "name": "logs", "group": group,
        "artifact": {"kind": "script", "content": "echo hi\n", "signature": "not checked by the server"},
        "canary": "1", "waves": [], "dwell_secs": 0,
        "gate": {"success_percent": 100.0},
        "on_failure": "pause",
    });
    let (status, body) = call(
        bearer(ureq::post(&url(server, "rollouts")), OPERATOR),
        Some(&request.to_string()),
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = call(bearer(ureq::get(&url(server, "poll")), &device.token), None);
    assert_eq!(status, 200, "{body}");
    let poll: PollResponse = serde_json::from_str(&body).expect("a poll answer");
    poll.assignment.expect("the canary's command").command_id
}

fn upload_log(server: &str, token: &str, command: &str, body: &[u8]) -> (u16, String) {
    let result = bearer(ureq::post(&url(server, &format!("logs/{command}"))), token)
        .set("Content-Type", "text/plain")
        .send_bytes(body);
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("transport error: {e}"),
    };
    (
        response.status(),
        response.into_string().unwrap_or_default(),
    )
}

#[test]
fn run_logs_go_up_for_own_commands_only_and_only_operators_read_them() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = start(dir.path());
    let a = enrol_in(&server, "logs-a");
    let b = enrol_in(&server, "logs-b");
    let command = assigned_command(&server, "logs-a", &a);

    // No token: 401; the operator's token cannot upload: 403.
    let (status, body) = call(
        ureq::post(&url(&server, &format!("logs/{command}"))),
        Some("x"),
    );
    assert_json_error(status, &body, 401);
    let (status, body) = upload_log(&server, OPERATOR, &command, b"x");
    assert_json_error(status, &body, 403);
    // Another device cannot upload for a's command, nor anyone for an
    // unknown one: 404, and nothing is stored.
    let (status, body) = upload_log(&server, &b.token, &command, b"b's forgery\n");
    assert_json_error(status, &body, 404);
    let (status, body) = upload_log(&server, &a.token, "cmd-unknown", b"x");
    assert_json_error(status, &body, 404);
    // Over the limit: 413, and the server stays up.
    let big = vec![b'x'; ferry_fleet::MAX_BODY + 1];
    let (status, body) = upload_log(&server, &a.token, &command, &big);
    assert_json_error(status, &body, 413);

    // Its own: stored; sent again (a lost answer): replaced, not doubled.
    let text = b"line 1\nline 2 \xe2\x9c\x93\n";
    for _ in 0..2 {
        let (status, body) = upload_log(&server, &a.token, &command, text);
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = call(
        bearer(
            ureq::get(&url(&server, &format!("devices/{}/logs", a.device_id))),
            OPERATOR,
        ),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let list: ferry_fleet::LogsResponse = serde_json::from_str(&body).expect("a log list");
    assert_eq!(list.logs.len(), 1, "{body}");
    assert_eq!(list.logs[0].command_id, command);
    assert_eq!(list.logs[0].bytes, text.len() as i64);
    let (status, body) = call(
        bearer(
            ureq::get(&url(
                &server,
                &format!("devices/{}/logs/{command}", a.device_id),
            )),
            OPERATOR,
        ),
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body.as_bytes(), text);
    // b has none.
    let (status, body) = call(
        bearer(
            ureq::get(&url(&server, &format!("devices/{}/logs", b.device_id))),
            OPERATOR,
        ),
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""logs":[]"#), "{body}");

    // A device token reads no logs, its own or another's: 403.
    for path in [
        format!("devices/{}/logs", a.device_id),
        format!("devices/{}/logs/{command}", a.device_id),
        format!("devices/{}/logs", b.device_id),
    ] {
        let (status, body) = call(bearer(ureq::get(&url(&server, &path)), &a.token), None);
        assert_json_error(status, &body, 403);
    }
    // An unknown device or command: 404.
    let (status, body) = call(
        bearer(ureq::get(&url(&server, "devices/dev-none/logs")), OPERATOR),
        None,
    );
    assert_json_error(status, &body, 404);
    let (status, body) = call(
        bearer(
            ureq::get(&url(
                &server,
                &format!("devices/{}/logs/cmd-none", a.device_id),
            )),
            OPERATOR,
        ),
        None,
    );
    assert_json_error(status, &body, 404);
}
