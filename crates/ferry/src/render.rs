//! Rendering for people and for machines: errors the way rustc and cargo
//! show them (what, where, what was expected, what to do), JSON on stdout.

use std::path::{Path, PathBuf};

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

impl Location {
    fn render(&self) -> String {
        let mut out = self.path.display().to_string();
        if let Some(line) = self.line {
            out.push_str(&format!(":{line}"));
            if let Some(column) = self.column {
                out.push_str(&format!(":{column}"));
            }
        }
        out
    }
}

/// Prints a failure: as a JSON object on stdout with `--json`, else on stderr.
pub fn failure(failure: &Failure, global: &Global) {
    if global.json {
        json(&serde_json::json!({
            "error": {
                "exit_code": failure.exit as u8,
                "message": failure.what,
                "path": failure.location.as_ref().map(|l| l.path.display().to_string()),
                "line": failure.location.as_ref().and_then(|l| l.line),
                "column": failure.location.as_ref().and_then(|l| l.column),
                "expected": failure.expected,
                "hint": failure.hint,
                "bytes_written": failure.bytes_written,
            }
        }));
        return;
    }
    eprintln!("error: {}", failure.what);
    if let Some(location) = &failure.location {
        eprintln!("  --> {}", location.render());
    }
    if let Some(expected) = &failure.expected {
        eprintln!("   = expected: {expected}");
    }
    if let Some(hint) = &failure.hint {
        eprintln!("   = help: {hint}");
    }
}

/// Prints one JSON document on stdout.
pub fn json(value: &impl serde::Serialize) {
    use std::io::Write;
    // A reader that went away (a closed pipe, a dropped SSH session) is not
    // a reason to panic at the end of a run.
    let _ = match serde_json::to_string_pretty(value) {
        Ok(text) => writeln!(std::io::stdout(), "{text}"),
        Err(e) => writeln!(std::io::stderr(), "error: cannot render JSON: {e}"),
    };
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
