//! What the fleet's integration tests share: the real server, started on a
//! free loopback port in a thread of the test process.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use ferry_fleet::ServeConfig;

/// Starts the server over a database in `dir`, with `operator` as the
/// operator token and `interval_secs` as the poll interval it hands out;
/// returns its base URL once it listens.
pub fn start(dir: &Path, operator: &str, interval_secs: u64) -> String {
    let (tx, rx) = mpsc::channel::<SocketAddr>();
    let config = ServeConfig {
        listen: "127.0.0.1:0".parse().expect("a literal address"),
        db: dir.join("fleet.db"),
        operator_token: operator.to_string(),
        interval_secs,
        tls: None,
        mqtt: None,
    };
    std::thread::spawn(move || {
        if let Err(e) = ferry_fleet::serve(config, |addr| {
            let _ = tx.send(addr);
        }) {
            eprintln!("server stopped: {e}");
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the server starts listening");
    format!("http://{addr}")
}
