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

    /// Where the problem is. A location the message spells out itself
    /// (`line 3, column 1: …`, `FILE:3:1: …`, as the libraries' errors
    /// read on their own) is taken out of the message and into the
    /// location, so that every error shows it one way, `path:line:column`
    /// for people and as fields in JSON, and a column the message knew is
    /// never `null`.
    pub fn at(mut self, path: &Path, line: Option<usize>, column: Option<usize>) -> Self {
        let (mut line, mut column) = (line, column);
        if let Some(spelled) = spelled_location(&self.0.what, path) {
            if line.is_none() || line == Some(spelled.line) {
                line = Some(spelled.line);
                column = column.or(spelled.column);
                self.0.what.replace_range(spelled.span, "");
            }
        }
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

/// A location written into an error message, and where in it.
#[derive(Debug, PartialEq, Eq)]
struct SpelledLocation {
    span: std::ops::Range<usize>,
    line: usize,
    column: Option<usize>,
}

/// The first `line N, column M: `, `line N: `, `FILE:N:M: ` or `FILE:N: `
/// of `message` (at its start or after a `: `), where FILE is `path` or
/// its end (a bundle names its files relative to the bundle).
fn spelled_location(message: &str, path: &Path) -> Option<SpelledLocation> {
    let path = path.to_string_lossy();
    let starts = std::iter::once(0).chain(message.match_indices(": ").map(|(i, _)| i + 2));
    for start in starts {
        let rest = &message[start..];
        let numbers = if let Some(after) = rest.strip_prefix("line ") {
            // `line N, column M: ` or `line N: `
            let (line, after) = leading_number(after)?;
            match after.strip_prefix(", column ") {
                Some(after) => {
                    let (column, after) = leading_number(after)?;
                    Some((line, Some(column), after))
                }
                None => Some((line, None, after)),
            }
        } else {
            rest.find(':')
                .map(|colon| (&rest[..colon], &rest[colon + 1..]))
                .filter(|(file, _)| !file.is_empty() && !file.contains(' ') && path.ends_with(file))
                .and_then(|(_, after)| {
                    let (line, after) = leading_number(after)?;
                    match after.strip_prefix(':').and_then(leading_number) {
                        Some((column, after)) => Some((line, Some(column), after)),
                        None => Some((line, None, after)),
                    }
                })
        };
        if let Some((line, column, after)) = numbers {
            if let Some(after) = after.strip_prefix(": ") {
                let end = message.len() - after.len();
                return Some(SpelledLocation {
                    span: start..end,
                    line,
                    column,
                });
            }
        }
    }
    None
}

/// A decimal number at the start of `text`, and what follows it.
fn leading_number(text: &str) -> Option<(usize, &str)> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let number = text[..digits].parse().ok()?;
    Some((number, &text[digits..]))
}

/// A command line clap refused (or `--help`, `--version`): help and the
/// version on stdout with exit 0 as clap prints them; a usage error for
/// people as clap prints it, and with `--json` as the same `{"error": …}`
/// object as every other error; either way exit 2.
pub fn usage_error(error: &clap::Error, as_json: bool) -> Exit {
    use clap::error::ErrorKind;
    let exit = match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => Exit::Ok,
        _ => Exit::BadInput,
    };
    if exit == Exit::Ok || !as_json {
        let _ = error.print();
        return exit;
    }
    let rendered = error.render().to_string();
    let (message, usage, mut tips) = split_usage_error(&rendered);
    // Without a subcommand clap prints the whole help: say what is missing.
    let message = if error.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        tips.push("`--help` lists the commands".to_string());
        "a command is required".to_string()
    } else {
        message
    };
    let mut failure = Failure::bad_input(message);
    if let Some(usage) = usage {
        failure = failure.expected(usage);
    }
    if !tips.is_empty() {
        failure = failure.hint(tips.join("; "));
    }
    json(&ErrorOutput::from(&failure));
    exit
}

/// clap's rendered error as (what is wrong, the usage line, the tips):
/// `error: …` up to the usage, `Usage: …`, and `tip: …` and `For more
/// information, try '…'` lines.
fn split_usage_error(rendered: &str) -> (String, Option<String>, Vec<String>) {
    let mut what = Vec::new();
    let mut usage = None;
    let mut tips = Vec::new();
    let mut in_usage = false;
    for line in rendered.lines() {
        let trimmed = line.trim();
        if let Some(rest) = trimmed.strip_prefix("Usage: ") {
            usage = Some(rest.to_string());
            in_usage = true;
        } else if let Some(tip) = trimmed.strip_prefix("tip: ") {
            tips.push(tip.to_string());
        } else if trimmed.starts_with("For more information, ") {
            tips.push(trimmed.to_string());
        } else if trimmed.is_empty() {
            in_usage = false;
        } else if !in_usage {
            what.push(
                trimmed
                    .strip_prefix("error: ")
                    .unwrap_or(trimmed)
                    .to_string(),
            );
        }
    }
    (what.join(" "), usage, tips)
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

/// One check of a plan for people: the severity's label, the finding's
/// stable key, what was found, and the remediation on the next line.
pub fn check_line(
    f: &mut std::fmt::Formatter<'_>,
    label: &str,
    key: &dyn std::fmt::Display,
    finding: &str,
    remediation: &str,
) -> std::fmt::Result {
    writeln!(
        f,
        "  {label:<8} [{key}] {finding}\n           -> {remediation}"
    )
}

#[cfg(test)]
mod tests {
    //! One location format: what the libraries spell into their messages
    //! moves into the location, and only when it agrees with it.

    use super::*;

    fn located(message: &str, path: &str, line: Option<usize>) -> (String, Location) {
        let failure = Failure::bad_input(message).at(Path::new(path), line, None);
        let location = failure.location.clone().unwrap();
        (failure.what.clone(), location)
    }

    #[test]
    fn a_location_in_the_message_moves_into_the_location() {
        let (what, at) = located(
            "line 3, column 1: `broken line` is not a field",
            "Packages",
            Some(3),
        );
        assert_eq!(what, "`broken line` is not a field");
        assert_eq!((at.line, at.column), (Some(3), Some(1)));

        let (what, at) = located(
            "the release bundle is refused: debian.sources:4:7: bad URI",
            "/tmp/b/debian.sources",
            Some(4),
        );
        assert_eq!(what, "the release bundle is refused: bad URI");
        assert_eq!((at.line, at.column), (Some(4), Some(7)));

        let (what, at) = located("bad index: line 9: no `Dist` field", "index", None);
        assert_eq!(what, "bad index: no `Dist` field");
        assert_eq!((at.line, at.column), (Some(9), None));
    }

    #[test]
    fn a_location_that_disagrees_or_is_not_one_stays_in_the_message() {
        let (what, at) = located("line 2: first at line 1", "index", Some(7));
        assert_eq!(what, "line 2: first at line 1");
        assert_eq!(at.line, Some(7));
        for message in [
            "cannot read Packages: No such file or directory",
            "release `12:1` is odd",
            "other.sources:4:7: bad URI",
        ] {
            let (what, at) = located(message, "debian.sources", None);
            assert_eq!(what, message);
            assert_eq!(at.line, None);
        }
    }

    #[test]
    fn people_read_path_line_column() {
        let failure =
            Failure::bad_input("line 3, column 1: bad").at(Path::new("Packages"), Some(3), None);
        assert_eq!(
            ErrorOutput::from(&failure).to_string(),
            "error: bad\n  --> Packages:3:1\n"
        );
    }
}
