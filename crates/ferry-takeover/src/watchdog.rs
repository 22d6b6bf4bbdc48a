//! The hardware watchdog kept alive while stage 2 makes progress: a thread
//! pets `/dev/watchdog` only while the work reports progress, so a stage 2
//! that hangs (a stuck write, a deadlock) stops petting and the machine
//! resets — into the old OS when nothing was written yet.
//!
//! Not the decision of what to do after a reset: that is the boot order's.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const WDIOC_KEEPALIVE: libc::c_ulong = 0x8004_5705;
const WDIOC_SETTIMEOUT: libc::c_ulong = 0xc004_5706;

/// Progress reported by the work; the keeper reads it.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    started: Instant,
    /// Milliseconds since `started` of the last progress.
    last: Arc<AtomicU64>,
}

impl Heartbeat {
    pub fn new() -> Self {
        Heartbeat {
            started: Instant::now(),
            last: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The work made progress.
    pub fn beat(&self) {
        let now = self.started.elapsed().as_millis() as u64;
        self.last.store(now, Ordering::Relaxed);
    }

    fn since_last(&self) -> Duration {
        let now = self.started.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last.load(Ordering::Relaxed)))
    }
}

impl Default for Heartbeat {
    fn default() -> Self {
        Heartbeat::new()
    }
}

/// An armed hardware watchdog and the thread that keeps it alive.
pub struct Watchdog {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<File>>,
    /// The timeout the driver accepted (it may round).
    pub timeout_seconds: u32,
}

impl Watchdog {
    /// Opens and arms the watchdog at `path` with `timeout_seconds`; it is
    /// petted every few seconds while `heartbeat` beat within `stall`.
    pub fn arm(
        path: &Path,
        timeout_seconds: u32,
        stall: Duration,
        heartbeat: Heartbeat,
    ) -> io::Result<Watchdog> {
        let file = OpenOptions::new().write(true).open(path)?;
        let mut timeout = timeout_seconds as libc::c_int;
        // SAFETY: WDIOC_SETTIMEOUT reads and writes one int through the pointer.
        if unsafe { libc::ioctl(file.as_raw_fd(), WDIOC_SETTIMEOUT, &mut timeout) } != 0 {
            // Some drivers have a fixed timeout; keep-alives still work.
            timeout = timeout_seconds as libc::c_int;
        }
        let accepted = timeout.max(1) as u32;
        let interval = Duration::from_secs(u64::from((accepted / 4).max(1)));
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        heartbeat.beat();
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                if heartbeat.since_last() <= stall {
                    // SAFETY: WDIOC_KEEPALIVE ignores its argument.
                    unsafe { libc::ioctl(file.as_raw_fd(), WDIOC_KEEPALIVE, 0) };
                }
                std::thread::sleep(interval);
            }
            file
        });
        Ok(Watchdog {
            stop,
            thread: Some(thread),
            timeout_seconds: accepted,
        })
    }

    /// Stops the keeper and disarms the watchdog ("magic close"), for a
    /// clean reboot; a driver built with nowayout keeps it armed anyway.
    pub fn disarm(mut self) -> io::Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            if let Ok(mut file) = thread.join() {
                file.write_all(b"V")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heartbeat_measures_the_time_since_the_last_beat() {
        let heartbeat = Heartbeat::new();
        std::thread::sleep(Duration::from_millis(30));
        assert!(heartbeat.since_last() >= Duration::from_millis(30));
        heartbeat.beat();
        assert!(heartbeat.since_last() < Duration::from_millis(30));
    }

    #[test]
    fn a_missing_watchdog_device_is_an_error_not_a_panic() {
        let e = Watchdog::arm(
            Path::new("/nonexistent/watchdog"),
            30,
            Duration::from_secs(60),
            Heartbeat::new(),
        )
        .err()
        .unwrap();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}
