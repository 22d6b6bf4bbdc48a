//! Rendering for people and for machines: errors the way rustc and cargo
//! show them (what, where, what was expected, what to do), JSON on stdout.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::cli::Global;
use crate::exit::Exit;

/// A command that did not succeed, with all a person needs to act on it.
/// Boxed, so that `Result<_, Failure>` stays small on every return path.
#[derive(Debug)]
pub struct Failure(Box<FailureDetail>);

#[derive(Debug)]
pub struct FailureDetail {
    pub exit: Exit,
    pub what: String,
    pub location: Option<Location>,
    pub expected: Option<String>,
    pub hint: Option<String>,
    /// For a device write that failed part-way: how much reached it.
    pub bytes_written: Option<u64>,
}

impl std::ops::Deref for Failure {
    type Target = FailureDetail;
    fn deref(&self) -> &FailureDetail {
        &self.0
    }
}

/// Where in an input file a problem is.
#[derive(Debug, Clone)]
pub struct Location {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
}

impl Failure {
    pub fn new(exit: Exit, what: impl Into<String>) -> Self {
        Failure(Box::new(FailureDetail {
            exit,
            what: what.into(),
            location: None,
            expected: None,
            hint: None,
            bytes_written: None,
        }))
    }

    /// Bad usage or input: exit 2, nothing changed.
    pub fn bad_input(what: impl Into<String>) -> Self {
        Self::new(Exit::BadInput, what)
    }

    pub fn failed(what: impl Into<String>) -> Self {
        Self::new(Exit::Failed, what)
    }

    pub fn at(mut self, path: &Path, line: Option<usize>, column: Option<usize>) -> Self {
        self.0.location = Some(Location {
            path: path.to_path_buf(),
            line,
            column,
        });
        self
    }

    pub fn expected(mut self, expected: impl Into<String>) -> Self {
        self.0.expected = Some(expected.into());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.0.hint = Some(hint.into());
        self
    }

    pub fn bytes_written(mut self, bytes: u64) -> Self {
        self.0.bytes_written = Some(bytes);
        self
    }

    pub fn exit_code(&self) -> Exit {
        self.exit
    }
}

/// A failure as `--json` prints it, `{"error": {...}}`, and as people read
/// it on stderr (what, where, what was expected, what to do).
#[derive(Debug, Serialize)]
pub struct ErrorOutput<'a> {
    pub error: ErrorBody<'a>,
}

#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    pub exit_code: u8,
    pub message: &'a str,
    /// Lossy, so that a path that is not UTF-8 cannot hide the error.
    pub path: Option<String>,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub expected: Option<&'a str>,
    pub hint: Option<&'a str>,
    /// Only for a device write that failed part-way: how much reached it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_written: Option<u64>,
}

impl<'a> From<&'a Failure> for ErrorOutput<'a> {
    fn from(failure: &'a Failure) -> Self {
        let location = failure.location.as_ref();
        ErrorOutput {
            error: ErrorBody {
                exit_code: failure.exit as u8,
                message: &failure.what,
                path: location.map(|l| l.path.display().to_string()),
                line: location.and_then(|l| l.line),
                column: location.and_then(|l| l.column),
                expected: failure.expected.as_deref(),
                hint: failure.hint.as_deref(),
                bytes_written: failure.bytes_written,
            },
        }
    }
}

impl fmt::Display for ErrorOutput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.error;
        writeln!(f, "error: {}", e.message)?;
        if let Some(path) = &e.path {
            write!(f, "  --> {path}")?;
            if let Some(line) = e.line {
                write!(f, ":{line}")?;
                if let Some(column) = e.column {
                    write!(f, ":{column}")?;
                }
            }
            writeln!(f)?;
        }
        if let Some(expected) = e.expected {
            writeln!(f, "   = expected: {expected}")?;
        }
        if let Some(hint) = e.hint {
            writeln!(f, "   = help: {hint}")?;
        }
        Ok(())
    }
}

/// Prints a failure: as a JSON object on stdout with `--json`, else on stderr.
pub fn failure(failure: &Failure, global: &Global) {
    let output = ErrorOutput::from(failure);
    if global.json {
        json(&output);
    } else {
        use std::io::Write;
        let _ = write!(std::io::stderr(), "{output}");
    }
}

/// Prints a command's output on stdout: its JSON with `--json`, else its
/// `Display` for people. Both come from the one value, so they cannot
/// disagree on what happened.
pub fn output<T: Serialize + fmt::Display>(value: &T, global: &Global) {
    if global.json {
        json(value);
    } else {
        use std::io::Write;
        // As in `json`: a reader that went away is no reason to fail.
        let _ = write!(std::io::stdout(), "{value}");
    }
}

/// Prints one JSON document on stdout.
pub fn json(value: &impl Serialize) {
    use std::io::Write;
    // A reader that went away (a closed pipe, a dropped SSH session) is not
    // a reason to panic at the end of a run.
    let _ = match serde_json::to_string_pretty(value) {
        Ok(text) => writeln!(std::io::stdout(), "{text}"),
        Err(e) => writeln!(std::io::stderr(), "error: cannot render JSON: {e}"),
    };
}

/// A time of the journal (whole seconds since the epoch) as every output
/// gives times: ISO 8601 in UTC, to the second, `2026-12-02T04:12:47Z`.
pub fn iso8601(seconds: u64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds);
    // Whole seconds: the milliseconds ferry_journal writes are always 000.
    ferry_journal::rfc3339(time).replacen(".000Z", "Z", 1)
}

/// Lays out rows as left-aligned columns under a header.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        out.trim_end().to_string()
    };
    let mut out = line(header.to_vec());
    out.push('\n');
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}
