//! Getting a file (an index, a bundle, its signature): over HTTP(S) with a
//! small blocking client, or from `file://` URLs and plain paths (a mirror
//! on a USB stick, a test). Downloads resume with an HTTP `Range` request
//! and never write past the size the caller announced.
//!
//! Transient failures (connection refused or reset, a timeout, a body cut
//! short, HTTP 408, 429 and 5xx) are tried again with a growing pause
//! (`Retry-After` when the server gives one); a download picks up where the
//! cut one stopped. Other answers (404, 403, …) are final at once: asking
//! again would get the same.
//!
//! Not for deciding whether what arrived is good: that is the checksum
//! (`digest`) and signature (`signature`) checks the caller makes, and a
//! mismatch there is never retried here.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{url}: {message}")]
    Http { url: String, message: String },
    #[error("{url}: the server answered {status}")]
    Status { url: String, status: u16 },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{url}: more than the {limit} bytes announced")]
    TooLarge { url: String, limit: u64 },
    #[error("{url}: unsupported URL scheme (http, https, file or a path)")]
    Scheme { url: String },
    /// Every attempt failed on something transient; `last` is the last
    /// failure (it names the URL).
    #[error("{last} (gave up after {attempts} attempts)")]
    GaveUp {
        attempts: u32,
        last: Box<FetchError>,
    },
}

/// How a fetch talks to servers: timeouts, and how often and how patiently
/// it tries again after a transient failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchOptions {
    /// Attempts in all, the first included (1: never try again).
    pub attempts: u32,
    /// The pause before the second attempt; it doubles for each later one.
    pub backoff: Duration,
    /// The longest pause, also the most a `Retry-After` is waited.
    pub max_backoff: Duration,
    /// How long connecting may take.
    pub connect_timeout: Duration,
    /// How long the server may stay silent while answering.
    pub read_timeout: Duration,
}

impl Default for FetchOptions {
    /// Five attempts, 1 s then 2, 4, 8 s apart (at most 30 s), 30 s to
    /// connect, 60 s of silence: enough for a mirror that restarts or a
    /// link that comes up late, without hanging a device for long.
    fn default() -> Self {
        FetchOptions {
            attempts: 5,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(60),
        }
    }
}

impl FetchOptions {
    /// The pause after failed attempt number `attempt` (1-based), or the
    /// server's `Retry-After`, within `max_backoff`.
    fn pause(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let doubled = self
            .backoff
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
        retry_after.unwrap_or(doubled).min(self.max_backoff)
    }
}

/// A failed attempt: the error, and whether another attempt may succeed.
struct Failure {
    error: FetchError,
    transient: bool,
    retry_after: Option<Duration>,
}

impl From<FetchError> for Failure {
    /// Final unless said otherwise: local files, sizes, writing `dest`.
    fn from(error: FetchError) -> Self {
        Failure {
            error,
            transient: false,
            retry_after: None,
        }
    }
}

impl Failure {
    fn transient(error: FetchError) -> Self {
        Failure {
            error,
            transient: true,
            retry_after: None,
        }
    }
}

/// Runs `attempt` until it succeeds, fails for good, or `options.attempts`
/// are spent.
fn retrying<T>(
    options: &FetchOptions,
    mut attempt: impl FnMut() -> Result<T, Failure>,
) -> Result<T, FetchError> {
    let attempts = options.attempts.max(1);
    let mut number = 1;
    loop {
        match attempt() {
            Ok(value) => return Ok(value),
            Err(failure) if !failure.transient => return Err(failure.error),
            Err(failure) if number >= attempts => {
                return Err(if attempts == 1 {
                    failure.error
                } else {
                    FetchError::GaveUp {
                        attempts,
                        last: Box::new(failure.error),
                    }
                })
            }
            Err(failure) => {
                std::thread::sleep(options.pause(number, failure.retry_after));
                number += 1;
            }
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FetchError + '_ {
    move |source| FetchError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A URL that names a local file, as a path.
fn local_path(url: &str) -> Option<PathBuf> {
    if let Some(rest) = url.strip_prefix("file://") {
        return Some(PathBuf::from(rest));
    }
    (!url.contains("://")).then(|| PathBuf::from(url))
}

fn is_http(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://")
}

fn agent(options: &FetchOptions) -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(options.connect_timeout)
        .timeout_read(options.read_timeout)
        .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
        .build()
}

fn http_error(url: &str, error: ureq::Error) -> Failure {
    match error {
        ureq::Error::Status(status, response) => Failure {
            transient: status == 408 || status == 429 || (500..600).contains(&status),
            // Only the delay-seconds form; an HTTP date falls back to the backoff.
            retry_after: response
                .header("Retry-After")
                .and_then(|v| v.trim().parse().ok())
                .map(Duration::from_secs),
            error: FetchError::Status {
                url: url.to_string(),
                status,
            },
        },
        ureq::Error::Transport(t) => Failure {
            // A refused or reset connection or a timeout may heal; a bad
            // URL, an unknown host or a TLS refusal will not.
            transient: matches!(
                t.kind(),
                ureq::ErrorKind::ConnectionFailed | ureq::ErrorKind::Io
            ),
            retry_after: None,
            error: FetchError::Http {
                url: url.to_string(),
                message: t.to_string(),
            },
        },
    }
}

/// A failure reading a response body: the connection dropped or stalled.
fn body_error(url: &str, error: std::io::Error) -> Failure {
    Failure::transient(FetchError::Http {
        url: url.to_string(),
        message: error.to_string(),
    })
}

/// Resolves `reference` against `base` as a browser would for the simple
/// cases an index has: an absolute URL stays, `/path` keeps the base's
/// host, anything else replaces the base's last path segment.
pub fn resolve(base: &str, reference: &str) -> String {
    if reference.contains("://") || reference.starts_with("file:") {
        return reference.to_string();
    }
    if let Some(rest) = reference.strip_prefix('/') {
        if let Some((scheme, after)) = base.split_once("://") {
            let host = after.split('/').next().unwrap_or("");
            if scheme == "file" {
                return format!("file:///{rest}");
            }
            return format!("{scheme}://{host}/{rest}");
        }
        return reference.to_string();
    }
    match base.rfind('/') {
        Some(slash) => format!("{}{reference}", &base[..=slash]),
        None => reference.to_string(),
    }
}

/// The whole body at `url`, up to `limit` bytes, with the default
/// [`FetchOptions`].
pub fn fetch_bytes(url: &str, limit: u64) -> Result<Vec<u8>, FetchError> {
    fetch_bytes_with(url, limit, &FetchOptions::default())
}

/// The whole body at `url`, up to `limit` bytes; a failed attempt starts
/// over.
pub fn fetch_bytes_with(
    url: &str,
    limit: u64,
    options: &FetchOptions,
) -> Result<Vec<u8>, FetchError> {
    retrying(options, || fetch_bytes_once(url, limit, options))
}

fn fetch_bytes_once(url: &str, limit: u64, options: &FetchOptions) -> Result<Vec<u8>, Failure> {
    let reader: Box<dyn Read> = if is_http(url) {
        let response = agent(options)
            .get(url)
            .set("Cache-Control", "no-cache")
            .call()
            .map_err(|e| http_error(url, e))?;
        Box::new(response.into_reader())
    } else if let Some(path) = local_path(url) {
        Box::new(File::open(&path).map_err(io(&path))?)
    } else {
        return Err(FetchError::Scheme {
            url: url.to_string(),
        }
        .into());
    };
    let mut body = Vec::new();
    reader
        .take(limit + 1)
        .read_to_end(&mut body)
        .map_err(|e| body_error(url, e))?;
    if body.len() as u64 > limit {
        return Err(FetchError::TooLarge {
            url: url.to_string(),
            limit,
        }
        .into());
    }
    Ok(body)
}

/// Downloads `url` into `dest`, continuing a partial `dest` with a `Range`
/// request when the server allows it (starting over when it does not).
/// Stops with `TooLarge` past `limit` bytes. `progress` gets the bytes
/// done so far and the total when known. Uses the default
/// [`FetchOptions`].
pub fn download(
    url: &str,
    dest: &Path,
    limit: u64,
    progress: &mut dyn FnMut(u64, Option<u64>),
) -> Result<u64, FetchError> {
    download_with(url, dest, limit, &FetchOptions::default(), progress)
}

/// [`download`] with `options`: after a transient failure the next
/// attempt resumes from what `dest` already holds.
pub fn download_with(
    url: &str,
    dest: &Path,
    limit: u64,
    options: &FetchOptions,
    progress: &mut dyn FnMut(u64, Option<u64>),
) -> Result<u64, FetchError> {
    retrying(options, || {
        download_once(url, dest, limit, options, &mut *progress)
    })
}

fn download_once(
    url: &str,
    dest: &Path,
    limit: u64,
    options: &FetchOptions,
    progress: &mut dyn FnMut(u64, Option<u64>),
) -> Result<u64, Failure> {
    let have = std::fs::metadata(dest).map(|m| m.len()).unwrap_or(0);
    let have = if have > limit { 0 } else { have };
    if !is_http(url) {
        let path = local_path(url).ok_or_else(|| FetchError::Scheme {
            url: url.to_string(),
        })?;
        let source = File::open(&path).map_err(io(&path))?;
        let out = File::create(dest).map_err(io(dest))?;
        // A local file does not heal by reading it again.
        return copy_limited(url, source, out, dest, 0, limit, None, progress)
            .map_err(|failure| failure.error.into());
    }
    let mut request = agent(options).get(url);
    if have > 0 && have < limit {
        request = request.set("Range", &format!("bytes={have}-"));
    }
    let response = match request.call() {
        // The partial file is already whole (or the server lost it): start over.
        Err(ureq::Error::Status(416, _)) => agent(options).get(url).call(),
        other => other,
    }
    .map_err(|e| http_error(url, e))?;
    let resumed = response.status() == 206 && have > 0;
    let length: Option<u64> = response
        .header("Content-Length")
        .and_then(|l| l.parse().ok());
    let (out, start) = if resumed {
        let out = OpenOptions::new()
            .append(true)
            .open(dest)
            .map_err(io(dest))?;
        (out, have)
    } else {
        (File::create(dest).map_err(io(dest))?, 0)
    };
    let total = length.map(|l| l + start);
    copy_limited(
        url,
        response.into_reader(),
        out,
        dest,
        start,
        limit,
        total,
        progress,
    )
}

#[allow(clippy::too_many_arguments)]
fn copy_limited(
    url: &str,
    mut source: impl Read,
    mut out: File,
    dest: &Path,
    start: u64,
    limit: u64,
    total: Option<u64>,
    progress: &mut dyn FnMut(u64, Option<u64>),
) -> Result<u64, Failure> {
    let mut done = start;
    let mut buffer = vec![0u8; 64 * 1024];
    progress(done, total);
    loop {
        let n = source.read(&mut buffer).map_err(|e| body_error(url, e))?;
        if n == 0 {
            break;
        }
        done += n as u64;
        if done > limit {
            return Err(FetchError::TooLarge {
                url: url.to_string(),
                limit,
            }
            .into());
        }
        out.write_all(&buffer[..n]).map_err(io(dest))?;
        progress(done, total);
    }
    out.sync_all().map_err(io(dest))?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_relative_references() {
        let base = "http://127.0.0.1:8000/releases/meta-release";
        assert_eq!(
            resolve(base, "trixie.tar.xz"),
            "http://127.0.0.1:8000/releases/trixie.tar.xz"
        );
        assert_eq!(resolve(base, "/b.tar"), "http://127.0.0.1:8000/b.tar");
        assert_eq!(resolve(base, "file:///x"), "file:///x");
        assert_eq!(resolve("/srv/meta", "b.tar"), "/srv/b.tar");
    }

    /// A server that honours `Range` once, to show the resume.
    #[test]
    fn resumes_with_a_range_request() {
        use std::io::{BufRead, BufReader};
        let body: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let served = body.clone();
        let server = std::thread::spawn(move || {
            let mut ranges = Vec::new();
            if let Ok((stream, _)) = listener.accept() {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut stream = stream;
                let mut range = None;
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap() > 2 {
                    if let Some(r) = line.to_ascii_lowercase().strip_prefix("range: bytes=") {
                        range = r.trim().trim_end_matches('-').parse::<usize>().ok();
                    }
                    line.clear();
                }
                let from = range.unwrap_or(0);
                ranges.push(range);
                let part = &served[from..];
                let status = if range.is_some() {
                    "206 Partial Content"
                } else {
                    "200 OK"
                };
                write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    part.len()
                )
                .unwrap();
                stream.write_all(part).unwrap();
            }
            ranges
        });
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("bundle.part");
        std::fs::write(&dest, &body[..40_000]).unwrap();
        let mut last = (0, None);
        let url = format!("http://127.0.0.1:{port}/b.tar");
        let got = download(&url, &dest, 100_000, &mut |d, t| last = (d, t)).unwrap();
        assert_eq!(got, 100_000);
        assert_eq!(last, (100_000, Some(100_000)));
        assert_eq!(std::fs::read(&dest).unwrap(), body);
        assert_eq!(server.join().unwrap(), vec![Some(40_000)]);
    }

    #[test]
    fn stops_past_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("big");
        std::fs::write(&source, vec![0u8; 1000]).unwrap();
        let dest = dir.path().join("out");
        let error = download(source.to_str().unwrap(), &dest, 999, &mut |_, _| {}).unwrap_err();
        assert!(matches!(error, FetchError::TooLarge { limit: 999, .. }));
        assert!(matches!(
            fetch_bytes(source.to_str().unwrap(), 10),
            Err(FetchError::TooLarge { .. })
        ));
    }
}
