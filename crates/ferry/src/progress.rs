//! Progress on work that can take more than a second (reading archives,
//! planning, checking, downloading, the steps of a run), shown as people
//! and scripts expect: a live line (indicatif) on a terminal, one plain
//! line per phase in a log or pipe, nothing with `--quiet`, and JSON Lines
//! events on stderr with `--json` (stdout keeps the one result document).
//! What a phase prints for people besides (a run's apt lines) goes through
//! `println`, above the live line.

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
#[derive(Debug, Default, Serialize)]
struct Event<'a> {
    progress: &'a str,
    state: &'a str,
    /// A run's step: its number (from 1) and how many steps a run has.
    #[serde(skip_serializing_if = "Option::is_none")]
    step: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    steps: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    done: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unit: Option<&'a str>,
    /// What the work says it is doing (apt's `Unpacking libc6 (amd64)`).
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    /// Why a phase failed (`state` is `failed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    elapsed_seconds: f64,
}

/// A step of a run: its number from 1, and how many there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepNumber {
    pub number: usize,
    pub count: usize,
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
    step: Option<StepNumber>,
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

    /// Starts step `number` of a run, named `name` (its stable name, as
    /// journals and events give it). Unlike other phases its plain line
    /// (`==> name (k of N)`) is printed on a terminal too, above the live
    /// line: the lines the step prints below it need that heading.
    pub fn step(&mut self, name: &str, number: StepNumber) {
        self.end();
        let heading = format!("==> {name} ({} of {})", number.number, number.count);
        let bar = match self.mode {
            Mode::Live => {
                say(&heading);
                Some(live_step_bar(&step_message(name, number, None)))
            }
            Mode::Lines => {
                say(&heading);
                None
            }
            Mode::Json => {
                event(&Event {
                    progress: name,
                    state: "start",
                    step: Some(number.number),
                    steps: Some(number.count),
                    ..Event::default()
                });
                None
            }
            Mode::Quiet => None,
        };
        self.phase = Some(Phase {
            name: name.to_string(),
            started: Instant::now(),
            bar,
            unit: None,
            last_event: None,
            step: Some(number),
        });
    }

    /// How far the current step's work is, in percent, and what it says it
    /// is doing: shown on the live line and, a few a second, as `running`
    /// events with `--json`; a plain log gets no line for it.
    pub fn percent(&mut self, percent: f64, message: &str) {
        let mode = self.mode;
        let Some(phase) = &mut self.phase else {
            return;
        };
        // Whole percents: the bar and the events need no more.
        let done = percent.clamp(0.0, 100.0).round() as u64;
        if let Some(bar) = &phase.bar {
            if phase.unit.is_none() {
                // The first report: from a spinner to a bar with an ETA.
                bar.set_length(100);
                if let Ok(style) = ProgressStyle::with_template(
                    "{spinner} {wide_msg} {pos:>3}% ({elapsed}, ETA {eta})",
                ) {
                    bar.set_style(style);
                }
            }
            if let Some(number) = phase.step {
                bar.set_message(step_message(&phase.name, number, Some(message)));
            }
            bar.set_position(done);
        }
        phase.unit = Some("percent");
        if mode == Mode::Json && throttled(&mut phase.last_event, false) {
            event(&Event {
                progress: &phase.name,
                state: "running",
                step: phase.step.map(|s| s.number),
                steps: phase.step.map(|s| s.count),
                done: Some(done),
                total: Some(100),
                unit: Some("percent"),
                message: Some(message),
                elapsed_seconds: seconds(phase.started),
                ..Event::default()
            });
        }
    }

    /// A line for people about the current work (a run's apt output): on
    /// stderr above the live line, or in the log; none with `--quiet` or
    /// `--json`.
    pub fn println(&self, line: &str) {
        match self.mode {
            Mode::Live => match self.phase.as_ref().and_then(|p| p.bar.as_ref()) {
                Some(bar) => bar.suspend(|| say(line)),
                None => say(line),
            },
            Mode::Lines => say(line),
            Mode::Json | Mode::Quiet => {}
        }
    }

    /// Ends the current phase as failed with `error` (`--json` says
    /// `failed`; people read the failure from the command itself).
    pub fn fail(&mut self, error: &str) {
        self.finish("failed", Some(error));
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
        if mode == Mode::Json && throttled(&mut phase.last_event, Some(done) == total) {
            event(&Event {
                progress: &phase.name,
                state: "running",
                done: Some(done),
                total,
                unit: phase.unit,
                elapsed_seconds: seconds(phase.started),
                ..Event::default()
            });
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
                    total,
                    unit,
                    ..Event::default()
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
            step: None,
        });
    }

    /// Ends the current phase (the live line is cleared; `--json` says
    /// `done` with the time it took).
    pub fn end(&mut self) {
        self.finish("done", None);
    }

    /// Ends the current phase: the live line cleared, and with `--json`
    /// its last event (`done` with its unit, or `failed` with the error).
    fn finish(&mut self, state: &str, error: Option<&str>) {
        let Some(phase) = self.phase.take() else {
            return;
        };
        if let Some(bar) = phase.bar {
            bar.finish_and_clear();
        }
        if self.mode == Mode::Json {
            event(&Event {
                progress: &phase.name,
                state,
                step: phase.step.map(|s| s.number),
                steps: phase.step.map(|s| s.count),
                unit: if error.is_none() { phase.unit } else { None },
                error,
                elapsed_seconds: seconds(phase.started),
                ..Event::default()
            });
        }
    }
}

/// Whether a `running` event is due: the first, one at the end, and
/// otherwise a few a second (a download or apt reports many more).
fn throttled(last: &mut Option<Instant>, finished: bool) -> bool {
    let due = last.is_none_or(|t| t.elapsed() >= Duration::from_millis(250));
    if due || finished {
        *last = Some(Instant::now());
    }
    due || finished
}

/// The live line's text for a step: `step 4 of 9: update`, then what the
/// work says it is doing.
fn step_message(name: &str, number: StepNumber, doing: Option<&str>) -> String {
    let mut text = format!("step {} of {}: {name}", number.number, number.count);
    if let Some(doing) = doing.filter(|d| !d.is_empty()) {
        text.push_str(" · ");
        text.push_str(doing);
    }
    text
}

/// A step's live line: a spinner, the step and the time so far; the
/// message is cut to the terminal's width, so the line never wraps.
fn live_step_bar(message: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{spinner} {wide_msg} ({elapsed})") {
        bar.set_style(style);
    }
    bar.set_message(message.to_string());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steps_live_line_names_it_by_number_then_what_the_work_says() {
        let update = StepNumber {
            number: 4,
            count: 9,
        };
        assert_eq!(step_message("update", update, None), "step 4 of 9: update");
        assert_eq!(
            step_message("update", update, Some("")),
            "step 4 of 9: update"
        );
        assert_eq!(
            step_message("update", update, Some("Retrieving file 4 of 7")),
            "step 4 of 9: update · Retrieving file 4 of 7"
        );
    }

    #[test]
    fn events_leave_out_what_a_phase_does_not_have() {
        let phase = Event {
            progress: "reading 1 index file",
            state: "start",
            ..Event::default()
        };
        assert_eq!(
            serde_json::to_string(&phase).unwrap(),
            r#"{"progress":"reading 1 index file","state":"start","elapsed_seconds":0.0}"#
        );
        let step = Event {
            progress: "packages",
            state: "running",
            step: Some(7),
            steps: Some(9),
            done: Some(42),
            total: Some(100),
            unit: Some("percent"),
            message: Some("Unpacking acme-core (2.0)"),
            elapsed_seconds: 1.5,
            ..Event::default()
        };
        assert_eq!(
            serde_json::to_string(&step).unwrap(),
            r#"{"progress":"packages","state":"running","step":7,"steps":9,"done":42,"total":100,"unit":"percent","message":"Unpacking acme-core (2.0)","elapsed_seconds":1.5}"#
        );
    }

    #[test]
    fn running_events_are_throttled_but_the_last_one_is_never_dropped() {
        let mut last = None;
        assert!(throttled(&mut last, false), "the first is due");
        assert!(!throttled(&mut last, false), "the next is too soon");
        assert!(throttled(&mut last, true), "the last always goes");
    }
}
