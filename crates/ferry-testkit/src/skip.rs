//! Skips that can be counted. cargo reports a test that returned early as
//! passed and hides what it printed, so every skip also appends one line
//! `<package>/<target>::<test>: <why>` to the file named by `FERRY_SKIP_LOG`
//! (when set); scripts/test-all.sh reads it to report skips as skips.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

/// The environment variable naming the skip log.
pub const SKIP_LOG: &str = "FERRY_SKIP_LOG";

/// Records that the running test skipped all or part of what it checks:
/// prints `skipped: <why>` to stderr and appends its line to the skip log.
/// `package` and `target` are the caller's `CARGO_PKG_NAME` and
/// `CARGO_CRATE_NAME` (the macros [`skip!`](crate::skip),
/// [`note_skip!`](crate::note_skip) and [`skip_unless!`](crate::skip_unless)
/// pass them); the test's name is its thread's, which libtest sets.
///
/// Panics when the skip log is set but cannot be written: a skip that
/// cannot be counted would pass silently.
pub fn record_skip(package: &str, target: &str, why: &str) {
    eprintln!("skipped: {why}");
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("unnamed thread");
    let line = skip_line(package, target, test, why);
    if let Some(log) = std::env::var_os(SKIP_LOG).filter(|v| !v.is_empty()) {
        if let Err(e) = append_line(Path::new(&log), &line) {
            panic!(
                "{SKIP_LOG}={}: cannot record this skip: {e}",
                Path::new(&log).display()
            );
        }
    }
}

/// One line of the skip log; the test's name ends at the first `": "`, and
/// a reason spread over lines is joined so that a skip stays one line.
pub fn skip_line(package: &str, target: &str, test: &str, why: &str) -> String {
    let why = why.split_whitespace().collect::<Vec<_>>().join(" ");
    format!("{package}/{target}::{test}: {why}\n")
}

/// Appends `line` with one write: tests run in parallel threads and
/// processes, and O_APPEND keeps each write whole.
fn append_line(log: &Path, line: &str) -> std::io::Result<()> {
    let mut file = OpenOptions::new().create(true).append(true).open(log)?;
    file.write_all(line.as_bytes())
}

/// Records a skip (see [`record_skip`]) and returns from the test:
/// `skip!("needs {tool}")`. Works in tests returning `()` and
/// `Result<(), E>`.
#[macro_export]
macro_rules! skip {
    ($($why:tt)+) => {{
        $crate::record_skip(
            env!("CARGO_PKG_NAME"),
            env!("CARGO_CRATE_NAME"),
            &format!($($why)+),
        );
        return $crate::Skip::skipped();
    }};
}

/// Records a skip (see [`record_skip`]) without returning: for a helper
/// that answers whether a test can run, or a test that skips one part of
/// its checks and goes on with the rest.
#[macro_export]
macro_rules! note_skip {
    ($($why:tt)+) => {
        $crate::record_skip(
            env!("CARGO_PKG_NAME"),
            env!("CARGO_CRATE_NAME"),
            &format!($($why)+),
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_names_package_target_and_test_and_stays_one_line() {
        assert_eq!(
            skip_line("ferry-deb", "sources_apt", "tests::x", "needs\n  apt-get"),
            "ferry-deb/sources_apt::tests::x: needs apt-get\n"
        );
    }

    #[test]
    fn lines_are_appended_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("skips");
        append_line(&log, "a: one\n").unwrap();
        append_line(&log, "b: two\n").unwrap();
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "a: one\nb: two\n");
    }

    #[test]
    fn an_unwritable_log_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(append_line(&dir.path().join("missing/skips"), "a: b\n").is_err());
    }
}
