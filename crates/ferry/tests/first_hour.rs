//! What a new user meets in their first hour with ferry (issue 19), run as
//! the binary and reviewed as snapshots: words that say what is meant,
//! one `--json` error contract, inputs that are not what they claim, and
//! quiet, plain or live progress. Exit code, stdout and stderr are in each
//! snapshot, with the temporary directory redacted.

use std::path::Path;
use std::process::{Command, Stdio};

use ferry_testkit::{skip_unless, Need};

const FERRY: &str = env!("CARGO_BIN_EXE_ferry");

/// Runs ferry in `dir`, standard input closed, and renders what it said.
fn run(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(FERRY)
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = format!(
        "$ ferry {}\nexit: {}\n--- stdout\n{}--- stderr\n{}",
        args.join(" "),
        out.status
            .code()
            .map_or("signal".to_string(), |c| c.to_string()),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    text.replace(&dir.display().to_string(), "[DIR]")
}

fn write(dir: &Path, path: &str, bytes: impl AsRef<[u8]>) {
    let path = dir.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// A Debian system as far as ferry's root check goes, with an os-release.
fn fixture_root(dir: &Path) {
    write(dir, "root/var/lib/dpkg/status", "");
    write(dir, "root/etc/apt/sources.list", "");
    write(
        dir,
        "root/etc/os-release",
        "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n",
    );
}

#[test]
fn archive_help_lists_every_archive_question() {
    let dir = tempfile::tempdir().unwrap();
    let help = run(dir.path(), &["--help"]);
    let archive_line = help
        .lines()
        .find(|l| l.trim_start().starts_with("archive "))
        .unwrap();
    assert!(archive_line.contains("excuses"), "{archive_line}");
    insta::assert_snapshot!("archive_help", run(dir.path(), &["archive", "--help"]));
}

#[test]
fn a_bundle_without_a_signer_names_both_ways_to_give_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["release", "bundle", ".", "-o", "out.tar"]);
    assert!(out.contains("exit: 2"), "{out}");
    assert!(out.contains("--gnupghome"), "{out}");
    insta::assert_snapshot!("bundle_without_a_signer", out);
}

#[test]
fn a_missing_meta_release_index_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    fixture_root(dir.path());
    let index = dir.path().join("no-such-index");
    let out = run(
        dir.path(),
        &[
            "--root",
            "root",
            "--json",
            "release",
            "check",
            "--meta-release",
            index.to_str().unwrap(),
        ],
    );
    insta::assert_snapshot!("missing_meta_release_index", out);
}

#[test]
fn rollback_asks_like_run_and_refuses_without_a_terminal() {
    // Rollback is refused earlier without root, for another reason.
    skip_unless!(Need::Root);
    let dir = tempfile::tempdir().unwrap();
    fixture_root(dir.path());
    let out = run(dir.path(), &["--root", "root", "rollback"]);
    assert!(out.contains("exit: 2"), "{out}");
    assert!(out.contains("no terminal to ask"), "{out}");
    insta::assert_snapshot!("rollback_without_yes", out);
}

#[test]
fn usage_errors_under_json_are_the_one_error_object_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [&[&str]; 4] = [
        &["--json", "plan"],
        &["--json", "--no-such-flag", "status"],
        &["--json", "plann", "p.toml"],
        &["--json"],
    ];
    let mut all = String::new();
    for args in cases {
        let out = Command::new(FERRY)
            .current_dir(dir.path())
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stderr.is_empty(), "{args:?}: stderr {:?}", out.stderr);
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["error"]["exit_code"], 2, "{json}");
        assert!(
            json["error"]["message"].as_str().unwrap().len() > 5,
            "{json}"
        );
        all.push_str(&run(dir.path(), args));
    }
    insta::assert_snapshot!("usage_errors_as_json", all);
    // For people, clap's own words, and the same exit code; help is exit 0.
    let plain = run(dir.path(), &["plan"]);
    assert!(
        plain.starts_with("$ ferry plan\nexit: 2\n--- stdout\n--- stderr\nerror: "),
        "{plain}"
    );
    assert!(run(dir.path(), &["--json", "--help"]).contains("exit: 0"));
}

#[test]
fn inputs_that_are_not_what_they_claim() {
    let dir = tempfile::tempdir().unwrap();
    fixture_root(dir.path());
    // A `.xz` that is plain text: refused, naming the file and what it is.
    write(
        dir.path(),
        "Packages.xz",
        "Package: a\nVersion: 1\nArchitecture: all\n",
    );
    let xz = run(dir.path(), &["check", "--arch", "amd64", "Packages.xz"]);
    assert!(xz.contains("exit: 2"), "{xz}");
    // An index with Latin-1 bytes: read, with a warning naming file and line.
    write(
        dir.path(),
        "Packages",
        b"Package: a\nVersion: 1\nArchitecture: all\nMaintainer: Jos\xe9\n".as_slice(),
    );
    let latin1 = run(dir.path(), &["check", "--arch", "amd64", "Packages"]);
    assert!(latin1.contains("exit: 0"), "{latin1}");
    assert!(
        latin1.contains("warning: Packages:4: not UTF-8"),
        "{latin1}"
    );
    // A profile with Latin-1 bytes: an error at its line and column.
    write(
        dir.path(),
        "p.toml",
        b"schema = 1\nname = \"Jos\xe9\"\n".as_slice(),
    );
    let profile = run(dir.path(), &["--root", "root", "plan", "p.toml"]);
    assert!(profile.contains("exit: 2"), "{profile}");
    assert!(profile.contains("--> p.toml:2:12"), "{profile}");
    insta::assert_snapshot!("not_what_they_claim", format!("{xz}\n{latin1}\n{profile}"));
}

#[test]
fn progress_is_a_line_per_phase_in_a_pipe_none_with_quiet_and_events_with_json() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "Packages",
        "Package: a\nVersion: 1\nArchitecture: all\nDepends: b\n\nPackage: b\nVersion: 1\nArchitecture: all\n",
    );
    let ferry = |args: &[&str]| {
        Command::new(FERRY)
            .current_dir(dir.path())
            .args(args)
            .output()
            .unwrap()
    };
    let plain = ferry(&["check", "--arch", "amd64", "Packages"]);
    assert_eq!(
        String::from_utf8_lossy(&plain.stderr),
        "reading 1 index file…\nchecking the installability of 2 packages…\n"
    );
    let quiet = ferry(&["--quiet", "check", "--arch", "amd64", "Packages"]);
    assert!(quiet.stderr.is_empty(), "{:?}", quiet.stderr);
    assert_eq!(quiet.stdout, plain.stdout, "progress never reaches stdout");
    let json = ferry(&["--json", "check", "--arch", "amd64", "Packages"]);
    serde_json::from_slice::<serde_json::Value>(&json.stdout).unwrap();
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&json.stderr)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let states: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["progress"].as_str().unwrap(),
                e["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("reading 1 index file", "start"),
            ("reading 1 index file", "done"),
            ("checking the installability of 2 packages", "start"),
            ("checking the installability of 2 packages", "done"),
        ]
    );
    assert!(events[1]["elapsed_seconds"].is_number());
}

#[test]
fn progress_on_a_terminal_is_a_live_line_that_is_cleared() {
    skip_unless!(Need::Tool("script"));
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "Packages",
        "Package: a\nVersion: 1\nArchitecture: all\n",
    );
    // `script` gives ferry a terminal; what it drew is in the typescript.
    let out = Command::new("script")
        .current_dir(dir.path())
        .args([
            "-qec",
            &format!("{FERRY} check --arch amd64 Packages"),
            "/dev/null",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("0 of 1 packages are not installable"),
        "{text}"
    );
    // No plain phase line on a terminal: the live line is drawn and erased.
    assert!(!text.contains("index file…\r\n"), "{text:?}");
}
