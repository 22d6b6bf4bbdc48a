//! A static file server on 127.0.0.1 for repositories and downloads in
//! tests: HTTP/1.1 GET and HEAD with keep-alive (apt pipelines requests),
//! 404 for anything missing, and a log of every request so a test can say
//! "nothing was downloaded after step X". Not a general web server: no
//! ranges, no directory listings, nothing outside its root.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::TestkitError;

/// One request the server answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The path as requested, e.g. `/dists/stable/InRelease`.
    pub path: String,
    pub status: u16,
}

/// The requests a server answered, in order; shared with the server.
#[derive(Clone, Debug, Default)]
pub struct RequestLog(Arc<Mutex<Vec<Request>>>);

impl RequestLog {
    fn push(&self, request: Request) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(request);
    }

    /// Every request so far.
    pub fn all(&self) -> Vec<Request> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// How many requests so far; a mark for [`RequestLog::since`].
    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The requests after `mark` (a value [`RequestLog::len`] returned).
    pub fn since(&self, mark: usize) -> Vec<Request> {
        self.all().into_iter().skip(mark).collect()
    }

    /// Forgets what was logged so far.
    pub fn clear(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// Serves a directory on `127.0.0.1:<free port>` from a background thread
/// until dropped.
pub struct FileServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    log: RequestLog,
    acceptor: Option<JoinHandle<()>>,
}

impl FileServer {
    /// Starts serving `root`.
    pub fn serve_dir(root: impl Into<PathBuf>) -> Result<FileServer, TestkitError> {
        let root = root.into();
        let listener = TcpListener::bind("127.0.0.1:0").map_err(TestkitError::io(&root))?;
        let addr = listener.local_addr().map_err(TestkitError::io(&root))?;
        let stop = Arc::new(AtomicBool::new(false));
        let log = RequestLog::default();
        let acceptor = {
            let (stop, log) = (stop.clone(), log.clone());
            std::thread::spawn(move || accept(listener, &root, &stop, &log))
        };
        Ok(FileServer {
            addr,
            stop,
            log,
            acceptor: Some(acceptor),
        })
    }

    /// `http://127.0.0.1:PORT/`.
    pub fn uri(&self) -> String {
        format!("http://{}/", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every request answered so far.
    pub fn requests(&self) -> Vec<Request> {
        self.log.all()
    }

    /// The live log, to take marks and read what came after.
    pub fn log(&self) -> &RequestLog {
        &self.log
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept so the thread sees the flag and ends.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn accept(listener: TcpListener, root: &Path, stop: &AtomicBool, log: &RequestLog) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let (root, log) = (root.to_path_buf(), log.clone());
        // Idle keep-alive connections end on their own after the timeout.
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        std::thread::spawn(move || {
            let _ = serve_connection(stream, &root, &log);
        });
    }
}

fn serve_connection(stream: TcpStream, root: &Path, log: &RequestLog) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut close = false;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header)? == 0 {
                return Ok(());
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("connection")
                    && value.trim().eq_ignore_ascii_case("close")
                {
                    close = true;
                }
            }
        }
        let mut words = request_line.split_whitespace();
        let method = words.next().unwrap_or("").to_string();
        let target = words.next().unwrap_or("").to_string();
        close |= words.next() != Some("HTTP/1.1");

        let (status, body) = match method.as_str() {
            "GET" | "HEAD" => match resolve(root, &target).map(std::fs::read) {
                Some(Ok(body)) => (200, body),
                _ => (404, b"not found\n".to_vec()),
            },
            _ => (405, b"method not allowed\n".to_vec()),
        };
        log.push(Request {
            method: method.clone(),
            path: target,
            status,
        });
        let reason = match status {
            200 => "OK",
            404 => "Not Found",
            _ => "Method Not Allowed",
        };
        write!(
            writer,
            "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\n{}\r\n",
            body.len(),
            if close { "Connection: close\r\n" } else { "" }
        )?;
        if method != "HEAD" {
            writer.write_all(&body)?;
        }
        writer.flush()?;
        if close {
            return Ok(());
        }
    }
}

/// The file a request target names under `root`, if it is a plain path
/// that stays inside `root` and names a regular file.
fn resolve(root: &Path, target: &str) -> Option<PathBuf> {
    let path = target.split(['?', '#']).next()?;
    let decoded = percent_decode(path.strip_prefix('/')?)?;
    let relative = Path::new(&decoded);
    if !relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
    {
        return None;
    }
    let full = root.join(relative);
    full.is_file().then_some(full)
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn exchange(server: &FileServer, request: &str) -> String {
        let mut stream = TcpStream::connect(server.addr).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    }

    #[test]
    fn serves_files_heads_and_404s_and_logs_them() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("pool/main")).unwrap();
        std::fs::write(dir.path().join("pool/main/a_1~b.deb"), b"hello").unwrap();
        let server = FileServer::serve_dir(dir.path()).unwrap();

        // Two pipelined requests on one connection, as apt sends them.
        let response = exchange(
            &server,
            "GET /pool/main/a_1%7eb.deb HTTP/1.1\r\nHost: x\r\n\r\nHEAD /pool/main/a_1~b.deb HTTP/1.1\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(response.matches("200 OK").count(), 2, "{response}");
        assert_eq!(response.matches("hello").count(), 1, "{response}");

        let response = exchange(&server, "GET /../etc/passwd HTTP/1.0\r\n\r\n");
        assert!(response.starts_with("HTTP/1.1 404"), "{response}");
        let response = exchange(&server, "GET /pool HTTP/1.0\r\n\r\n");
        assert!(response.starts_with("HTTP/1.1 404"), "{response}");

        let statuses: Vec<(String, u16)> = server
            .requests()
            .into_iter()
            .map(|r| (r.method, r.status))
            .collect();
        assert_eq!(
            statuses,
            [
                ("GET".into(), 200),
                ("HEAD".into(), 200),
                ("GET".into(), 404),
                ("GET".into(), 404)
            ]
        );
        let mark = server.log().len();
        assert!(server.log().since(mark).is_empty());
    }

    #[test]
    fn stops_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let server = FileServer::serve_dir(dir.path()).unwrap();
        let addr = server.addr;
        drop(server);
        assert!(TcpStream::connect(addr).is_err());
    }
}
