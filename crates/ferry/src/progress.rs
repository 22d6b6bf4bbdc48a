//! Progress on work that can take more than a second (reading archives,
//! planning, checking, downloading), shown as people and scripts expect:
//! a live line (indicatif) on a terminal, one plain line per phase in a
//! log or pipe, nothing with `--quiet`, and JSON Lines events on stderr
//! with `--json` (stdout keeps the one result document).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::cli::Global;

/// How progress is shown, chosen once from the flags and stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A live line on the terminal: phase, counts or bytes, rate, ETA.
    Live,
    /// One line per phase, for logs and pipes.
    Lines,
    /// `--quiet`: nothing.
    Quiet,
    /// `--json`: one JSON object per event on stderr.
    Json,
}

impl Mode {
    pub fn of(global: &Global) -> Mode {
        if global.json {
            Mode::Json
        } else if global.quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Live
        } else {
            Mode::Lines
        }
    }
}

/// One progress event as `--json` writes it on stderr.
#[derive(Debug, Serialize)]
struct Event<'a> {
    progress: &'a str,
    state: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    done: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unit: Option<&'a str>,
    elapsed_seconds: f64,
}

/// The progress of one command: a sequence of phases, each maybe with
/// counts or bytes. Ends the last phase when dropped.
pub struct Progress {
    mode: Mode,
    phase: Option<Phase>,
}

struct Phase {
    name: String,
    started: Instant,
    bar: Option<ProgressBar>,
    /// Bytes phases: the unit of `done`/`total`, and when the last event
    /// was written (events are throttled to a few a second).
    unit: Option<&'static str>,
    last_event: Option<Instant>,
}

impl Progress {
    pub fn new(global: &Global) -> Self {
        Self::with_mode(Mode::of(global))
    }

    pub fn with_mode(mode: Mode) -> Self {
        Progress { mode, phase: None }
    }

    /// Starts a phase of unknown length (a spinner and the time so far).
    pub fn phase(&mut self, name: impl Into<String>) {
        self.start(name.into(), None, None);
    }

    /// Starts a download of `total` bytes when known (bytes, rate, ETA).
    pub fn download(&mut self, name: impl Into<String>, total: Option<u64>) {
        self.start(name.into(), total, Some("bytes"));
    }

    /// How far the current phase is.
    pub fn advance_to(&mut self, done: u64, total: Option<u64>) {
        let mode = self.mode;
        let Some(phase) = &mut self.phase else {
            return;
        };
        if let Some(bar) = &phase.bar {
            if let Some(total) = total {
                bar.set_length(total);
            }
            bar.set_position(done);
        }
        if mode == Mode::Json {
            let due = phase
                .last_event
                .is_none_or(|t| t.elapsed() >= Duration::from_millis(250));
            if due || Some(done) == total {
                phase.last_event = Some(Instant::now());
                event(&Event {
                    progress: &phase.name,
                    state: "running",
                    done: Some(done),
                    total,
                    unit: phase.unit,
                    elapsed_seconds: seconds(phase.started),
                });
            }
        }
    }

    fn start(&mut self, name: String, total: Option<u64>, unit: Option<&'static str>) {
        self.end();
        let started = Instant::now();
        let bar = match self.mode {
            Mode::Live => Some(live_bar(&name, total, unit)),
            Mode::Lines => {
                let size = match (total, unit) {
                    (Some(total), Some("bytes")) => format!(" ({})", ferry_apt::human_bytes(total)),
                    (Some(total), _) => format!(" ({total})"),
                    _ => String::new(),
                };
                say(&format!("{name}{size}…"));
                None
            }
            Mode::Json => {
                event(&Event {
                    progress: &name,
                    state: "start",
                    done: None,
                    total,
                    unit,
                    elapsed_seconds: 0.0,
                });
                None
            }
            Mode::Quiet => None,
        };
        self.phase = Some(Phase {
            name,
            started,
            bar,
            unit,
            last_event: None,
        });
    }

    /// Ends the current phase (the live line is cleared; `--json` says
    /// `done` with the time it took).
    pub fn end(&mut self) {
        let Some(phase) = self.phase.take() else {
            return;
        };
        if let Some(bar) = phase.bar {
            bar.finish_and_clear();
        }
        if self.mode == Mode::Json {
            event(&Event {
                progress: &phase.name,
                state: "done",
                done: None,
                total: None,
                unit: phase.unit,
                elapsed_seconds: seconds(phase.started),
            });
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.end();
    }
}

fn live_bar(name: &str, total: Option<u64>, unit: Option<&str>) -> ProgressBar {
    let template = match (total, unit) {
        (Some(_), Some("bytes")) => {
            "{spinner} {msg} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} [{wide_bar}]"
        }
        (None, Some("bytes")) => "{spinner} {msg} {bytes} {bytes_per_sec} ({elapsed})",
        (Some(_), _) => "{spinner} {msg} {pos}/{len} ETA {eta} [{wide_bar}]",
        (None, _) => "{spinner} {msg} ({elapsed})",
    };
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(name.to_string());
    // The spinner and clock move even while a phase reports nothing.
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn seconds(since: Instant) -> f64 {
    (since.elapsed().as_secs_f64() * 1000.0).round() / 1000.0
}

/// A plain line on stderr; a reader that went away is no reason to fail.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn event(event: &Event<'_>) {
    if let Ok(text) = serde_json::to_string(event) {
        say(&text);
    }
}
