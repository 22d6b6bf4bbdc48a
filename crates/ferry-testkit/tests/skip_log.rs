//! Skips are counted: this test binary runs itself with `FERRY_SKIP_LOG`
//! set and one test made to skip, and the log must hold exactly that
//! test's line, named as libtest names it.

use std::process::Command;

use ferry_testkit::{skip, skip_unless, Need};

/// Set only in the child run below: these tests skip there and pass
/// (checking nothing) in the ordinary run.
const TRIGGER: &str = "FERRY_TESTKIT_SKIP_SELF_TEST";

#[test]
fn skips_when_triggered() {
    if std::env::var_os(TRIGGER).is_some() {
        skip!("triggered by {}", TRIGGER);
    }
}

#[test]
fn skip_unless_records_the_unmet_need() -> Result<(), String> {
    if std::env::var_os(TRIGGER).is_some() {
        skip_unless!(Need::Tool("ferry-testkit-no-such-tool"));
        return Err("an absent tool was found on PATH".into());
    }
    Ok(())
}

fn run_self(filter: &str, log: &std::path::Path) -> std::process::Output {
    let exe = std::env::current_exe().unwrap();
    let output = Command::new(exe)
        .args([filter, "--exact", "--test-threads=1"])
        .env(TRIGGER, "1")
        .env(ferry_testkit::SKIP_LOG, log)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    output
}

#[test]
fn a_skip_appends_its_test_and_reason_to_the_skip_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("skips");
    let output = run_self("skips_when_triggered", &log);
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("1 passed"),
        "{output:?}"
    );
    run_self("skip_unless_records_the_unmet_need", &log);
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "ferry-testkit/skip_log::skips_when_triggered: triggered by FERRY_TESTKIT_SKIP_SELF_TEST\n\
         ferry-testkit/skip_log::skip_unless_records_the_unmet_need: needs ferry-testkit-no-such-tool on PATH\n"
    );
}

#[test]
fn without_a_skip_log_nothing_is_written_and_the_test_still_skips() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let output = Command::new(exe)
        .args(["skips_when_triggered", "--exact", "--nocapture"])
        .env(TRIGGER, "1")
        .env_remove(ferry_testkit::SKIP_LOG)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("skipped: triggered by FERRY_TESTKIT_SKIP_SELF_TEST"),
        "{output:?}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
