//! Downloads against a real local HTTP server that misbehaves on cue: the
//! transient failures (5xx, 429, a dropped or stalled connection, a body
//! cut short, nobody listening yet) are tried again and the file arrives
//! whole, resumed where it was cut; a 404 is asked once; a server that never
//! recovers is given up on after the configured attempts.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_fetch::{
    download_with, fetch_bytes_with, sha256_file, sha256_hex, FetchError, FetchOptions,
};

/// What the server does with one request.
#[derive(Clone, Debug)]
enum Answer {
    /// This status, with these headers and a short body.
    Status(u16, &'static [(&'static str, &'static str)]),
    /// Announces the whole rest of the body, sends this many bytes of it,
    /// then closes the connection.
    Cut(usize),
    /// Closes the connection without answering.
    Hang,
    /// Says nothing for this long, then closes.
    Stall(Duration),
    /// The body from the requested `Range` on (200 or 206).
    Serve,
}

/// The `Range` start of each request the server saw, in order (`None`:
/// no `Range`).
type Seen = Arc<Mutex<Vec<Option<usize>>>>;

/// Serves `body` on 127.0.0.1 from `listener`: answers follow `script`,
/// then `then` for every request after it.
fn serve_on(listener: TcpListener, body: Vec<u8>, script: Vec<Answer>, then: Answer) -> Seen {
    let seen: Seen = Arc::default();
    let script = Arc::new(Mutex::new(VecDeque::from(script)));
    let body = Arc::new(body);
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let range = read_request(&stream);
            log.lock().unwrap().push(range);
            let answer = script
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or_else(|| then.clone());
            let body = body.clone();
            // Its own thread, so a stalled answer does not hold up the next.
            std::thread::spawn(move || answer_with(stream, &answer, &body, range));
        }
    });
    seen
}

fn serve(body: Vec<u8>, script: Vec<Answer>, then: Answer) -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/bundle.tar", listener.local_addr().unwrap());
    (url, serve_on(listener, body, script, then))
}

/// Reads a request's head; the start of its `Range`, if any.
fn read_request(stream: &TcpStream) -> Option<usize> {
    let mut reader = BufReader::new(stream);
    let mut range = None;
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap_or(0) > 2 {
        if let Some(r) = line.to_ascii_lowercase().strip_prefix("range: bytes=") {
            range = r.trim().trim_end_matches('-').parse().ok();
        }
        line.clear();
    }
    range
}

fn answer_with(mut stream: TcpStream, answer: &Answer, body: &[u8], range: Option<usize>) {
    let from = range.unwrap_or(0).min(body.len());
    let status = if range.is_some() {
        "206 Partial Content"
    } else {
        "200 OK"
    };
    let head = |stream: &mut TcpStream, length: usize| {
        write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
        )
    };
    let _ = match answer {
        Answer::Status(code, headers) => {
            let extra: String = headers
                .iter()
                .map(|(n, v)| format!("{n}: {v}\r\n"))
                .collect();
            write!(
                stream,
                "HTTP/1.1 {code} Scripted\r\nContent-Length: 3\r\n{extra}Connection: close\r\n\r\nno\n"
            )
        }
        Answer::Cut(n) => head(&mut stream, body.len() - from)
            .and_then(|()| stream.write_all(&body[from..(from + n).min(body.len())])),
        Answer::Hang => Ok(()),
        Answer::Stall(time) => {
            std::thread::sleep(*time);
            Ok(())
        }
        Answer::Serve => {
            head(&mut stream, body.len() - from).and_then(|()| stream.write_all(&body[from..]))
        }
    };
    let _ = stream.flush();
}

fn quick(attempts: u32) -> FetchOptions {
    FetchOptions {
        attempts,
        backoff: Duration::from_millis(5),
        max_backoff: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_millis(500),
    }
}

fn payload() -> Vec<u8> {
    (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect()
}

#[test]
fn a_404_is_not_asked_again() {
    let (url, seen) = serve(payload(), vec![], Answer::Status(404, &[]));
    let dir = tempfile::tempdir().unwrap();
    let error = download_with(
        &url,
        &dir.path().join("b"),
        1 << 20,
        &quick(4),
        &mut |_, _| {},
    )
    .unwrap_err();
    assert!(
        matches!(error, FetchError::Status { status: 404, .. }),
        "{error}"
    );
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[test]
fn other_client_errors_are_final_but_408_is_retried() {
    let (url, seen) = serve(payload(), vec![], Answer::Status(403, &[]));
    let error = fetch_bytes_with(&url, 1 << 20, &quick(4)).unwrap_err();
    assert!(matches!(error, FetchError::Status { status: 403, .. }));
    assert_eq!(seen.lock().unwrap().len(), 1);

    let (url, seen) = serve(payload(), vec![Answer::Status(408, &[])], Answer::Serve);
    assert_eq!(
        fetch_bytes_with(&url, 1 << 20, &quick(4)).unwrap(),
        payload()
    );
    assert_eq!(seen.lock().unwrap().len(), 2);
}

#[test]
fn a_server_that_never_recovers_is_given_up_on_naming_url_and_last_failure() {
    let (url, seen) = serve(payload(), vec![Answer::Hang], Answer::Status(503, &[]));
    let dir = tempfile::tempdir().unwrap();
    let error = download_with(
        &url,
        &dir.path().join("b"),
        1 << 20,
        &quick(3),
        &mut |_, _| {},
    )
    .unwrap_err();
    match &error {
        FetchError::GaveUp { attempts: 3, last } => {
            assert!(matches!(**last, FetchError::Status { status: 503, .. }))
        }
        other => panic!("{other:?}"),
    }
    let message = error.to_string();
    assert!(message.contains(&url), "{message}");
    assert!(message.contains("503"), "{message}");
    assert!(message.contains("3 attempts"), "{message}");
    assert_eq!(seen.lock().unwrap().len(), 3);
}

#[test]
fn a_single_attempt_reports_the_failure_itself() {
    let (url, seen) = serve(payload(), vec![], Answer::Status(502, &[]));
    let error = fetch_bytes_with(&url, 1 << 20, &quick(1)).unwrap_err();
    assert!(matches!(error, FetchError::Status { status: 502, .. }));
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[test]
fn cut_and_refused_answers_are_retried_and_the_download_resumes_whole() {
    let body = payload();
    let (url, seen) = serve(
        body.clone(),
        vec![
            Answer::Status(503, &[]),
            Answer::Cut(30_000),
            Answer::Hang,
            Answer::Status(429, &[("Retry-After", "1")]),
            Answer::Cut(20_000),
        ],
        Answer::Serve,
    );
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("bundle.tar");
    let started = Instant::now();
    let mut last = (0, None);
    let got = download_with(&url, &dest, 1 << 20, &quick(6), &mut |d, t| last = (d, t)).unwrap();
    assert_eq!(got, 100_000);
    assert_eq!(last, (100_000, Some(100_000)));
    assert_eq!(sha256_file(&dest).unwrap(), (sha256_hex(&body), 100_000));
    // Every attempt after a cut asks only for what is missing.
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            None,
            None,
            Some(30_000),
            Some(30_000),
            Some(30_000),
            Some(50_000)
        ]
    );
    // The 429's Retry-After was waited, not the 5 ms backoff.
    assert!(started.elapsed() >= Duration::from_secs(1));
}

#[test]
fn a_stalled_server_times_out_and_is_asked_again() {
    let (url, seen) = serve(
        payload(),
        vec![Answer::Stall(Duration::from_secs(3))],
        Answer::Serve,
    );
    let started = Instant::now();
    assert_eq!(
        fetch_bytes_with(&url, 1 << 20, &quick(3)).unwrap(),
        payload()
    );
    assert_eq!(seen.lock().unwrap().len(), 2);
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn nobody_listening_yet_is_retried_until_the_server_is_up() {
    // Take a free port, leave it closed for a while, then serve on it: a
    // mirror that comes up after the device asked.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/bundle.tar");
    let late = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        serve_on(listener, payload(), vec![], Answer::Serve)
    });
    let options = FetchOptions {
        backoff: Duration::from_millis(100),
        ..quick(8)
    };
    assert_eq!(
        fetch_bytes_with(&url, 1 << 20, &options).unwrap(),
        payload()
    );
    assert_eq!(late.join().unwrap().lock().unwrap().len(), 1);
}
