//! Running programs: a checked runner for the kit's own setup steps, and
//! [`Outcome`], what a test gets back from a command it wants to judge
//! itself (ferry's exit codes are part of its interface).

use std::fmt;
use std::process::{Command, Output};

use crate::TestkitError;

/// Asserts that a finished command exited with `code`; on mismatch panics
/// showing everything it printed. For tests that run a program with
/// [`Command::output`] themselves (e.g. as another user), where
/// [`Outcome::failure`] reads what the kit ran.
#[track_caller]
pub fn expect_exit(output: &Output, code: i32) {
    let outcome = Outcome {
        command: "(the command)".into(),
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    if code == 0 {
        outcome.success();
    } else {
        outcome.failure(code);
    }
}

/// The command line as a person would type it, for messages.
pub(crate) fn describe(command: &Command) -> String {
    let mut words = vec![command.get_program().to_string_lossy().into_owned()];
    words.extend(command.get_args().map(|a| a.to_string_lossy().into_owned()));
    words.join(" ")
}

/// Runs a setup step; any failure is an error carrying what it printed.
pub(crate) fn checked(command: &mut Command) -> Result<Output, TestkitError> {
    let output = command.output().map_err(|source| TestkitError::Spawn {
        command: describe(command),
        source,
    })?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(TestkitError::Command {
            command: describe(command),
            status: output.status.to_string(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }
}

/// How a command ended and what it printed.
///
/// A command that could not even be started is an `Outcome` too (no exit
/// code, the reason in `stderr`), so `sys.ferry([..]).success()` reads as one
/// line and still explains a missing binary.
#[derive(Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The command line, for messages.
    pub command: String,
    /// The exit code; `None` when killed by a signal or never started.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// Runs `command` to the end and keeps what it printed; for a test's
    /// own commands (ferry on a plain directory, a checksum tool) that it
    /// judges with [`Outcome::success`], [`Outcome::failure`] or
    /// [`Outcome::ok`].
    pub fn of(mut command: Command) -> Outcome {
        let line = describe(&command);
        match command.output() {
            Ok(output) => Outcome {
                command: line,
                code: output.status.code(),
                stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            },
            Err(e) => Outcome::not_started(line, e.to_string()),
        }
    }

    pub(crate) fn not_started(command: String, why: String) -> Outcome {
        Outcome {
            command,
            code: None,
            stdout: String::new(),
            stderr: format!("(not started: {why})"),
        }
    }

    /// Whether the command exited with 0.
    pub fn is_success(&self) -> bool {
        self.code == Some(0)
    }

    /// Asserts exit code 0; on mismatch panics showing everything printed.
    #[track_caller]
    pub fn success(&self) -> &Self {
        assert!(self.is_success(), "expected success\n{self}");
        self
    }

    /// Asserts the given exit code; on mismatch panics showing everything
    /// printed.
    #[track_caller]
    pub fn failure(&self, code: i32) -> &Self {
        assert!(self.code == Some(code), "expected exit code {code}\n{self}");
        self
    }

    /// Asserts that stdout or stderr contains `text`.
    #[track_caller]
    pub fn prints(&self, text: &str) -> &Self {
        assert!(
            self.stdout.contains(text) || self.stderr.contains(text),
            "expected output containing {text:?}\n{self}"
        );
        self
    }

    /// Stdout parsed as one JSON document (for `--json`).
    pub fn stdout_json(&self) -> Result<serde_json::Value, TestkitError> {
        serde_json::from_str(&self.stdout)
            .map_err(|e| TestkitError::Invalid(format!("stdout is not JSON ({e})\n{self}")))
    }

    /// `Ok(self)` on exit code 0, else an error carrying the output; for
    /// setup steps written with `?`.
    pub fn ok(self) -> Result<Outcome, TestkitError> {
        if self.is_success() {
            Ok(self)
        } else {
            Err(TestkitError::Command {
                status: match self.code {
                    Some(code) => format!("exit code {code}"),
                    None => "no exit code".into(),
                },
                command: self.command,
                stdout: self.stdout,
                stderr: self.stderr,
            })
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = match self.code {
            Some(code) => code.to_string(),
            None => "none".into(),
        };
        write!(
            f,
            "command: {}\nexit code: {code}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.command, self.stdout, self.stderr
        )
    }
}

impl fmt::Debug for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_program_is_an_outcome_that_says_so() {
        let outcome = Outcome::of(Command::new("/nonexistent/ferry-testkit-probe"));
        assert_eq!(outcome.code, None);
        assert!(outcome.stderr.contains("not started"), "{outcome}");
        assert!(outcome.ok().is_err());
    }

    #[test]
    fn exit_codes_and_json_are_read() {
        let mut command = Command::new("sh");
        command.args(["-c", "echo '{\"a\": 1}'; exit 3"]);
        let outcome = Outcome::of(command);
        outcome.failure(3);
        assert_eq!(outcome.stdout_json().unwrap()["a"], 1);
    }

    #[test]
    fn expect_exit_accepts_the_code_it_names() {
        let output = Command::new("sh").args(["-c", "exit 2"]).output().unwrap();
        expect_exit(&output, 2);
    }

    #[test]
    #[should_panic(expected = "shown")]
    fn expect_exit_panics_with_the_output_on_another_code() {
        let output = Command::new("sh")
            .args(["-c", "echo shown >&2; exit 3"])
            .output()
            .unwrap();
        expect_exit(&output, 2);
    }

    #[test]
    #[should_panic(expected = "expected success")]
    fn success_panics_with_the_output() {
        let mut command = Command::new("sh");
        command.args(["-c", "echo oops >&2; exit 1"]);
        Outcome::of(command).success();
    }
}
