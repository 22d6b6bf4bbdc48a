//! What people and scripts see of the commands cheap to run for real
//! (version compare, sources show, status and history on a fixture root,
//! check on a small Packages file, the archive questions on two small
//! suites, generate), run as the binary and reviewed as snapshots: exit
//! code, stdout and stderr, with the temporary directory and times
//! redacted by `sanitise`.

use std::path::Path;
use std::process::Command;

const FERRY: &str = env!("CARGO_BIN_EXE_ferry");

/// Replaces what differs from run to run: the fixture directory and ISO
/// 8601 times.
fn sanitise(text: &str, dir: &Path) -> String {
    let text = redact_elapsed(&text.replace(&dir.display().to_string(), "[DIR]"));
    let bytes = text.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < text.len() {
        match iso8601_len(&bytes[i..]) {
            Some(len) => {
                out.push_str("[TIME]");
                i += len;
            }
            None => {
                let c = text[i..].chars().next().unwrap_or_default();
                out.push(c);
                i += c.len_utf8();
            }
        }
    }
    out
}

/// Progress events' `"elapsed_seconds":N` (under `--json`, on stderr)
/// with N replaced by `[S]`: it is the time the phase took.
fn redact_elapsed(text: &str) -> String {
    const KEY: &str = "\"elapsed_seconds\":";
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(KEY) {
        out.push_str(&rest[..at + KEY.len()]);
        out.push_str("[S]");
        rest = rest[at + KEY.len()..].trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
    }
    out.push_str(rest);
    out
}

/// The length of an ISO 8601 UTC time (`2026-12-02T04:12:47Z`, with or
/// without fractions of a second) at the start of `b`.
fn iso8601_len(b: &[u8]) -> Option<usize> {
    const SHAPE: &[u8] = b"dddd-dd-ddTdd:dd:dd";
    if b.len() < SHAPE.len() + 1 {
        return None;
    }
    let fits = SHAPE.iter().zip(b).all(|(&s, &c)| {
        if s == b'd' {
            c.is_ascii_digit()
        } else {
            c == s
        }
    });
    if !fits {
        return None;
    }
    let mut end = SHAPE.len();
    if b[end] == b'.' {
        end += 1;
        while end < b.len() && b[end].is_ascii_digit() {
            end += 1;
        }
    }
    (b.get(end) == Some(&b'Z')).then_some(end + 1)
}

/// Runs ferry in `dir` and renders what it said for review.
fn run(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(FERRY)
        .current_dir(dir)
        .args(args)
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
    sanitise(&text, dir)
}

fn write(dir: &Path, path: &str, text: &str) {
    let path = dir.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn the_sanitiser_redacts_the_directory_and_times() {
    let dir = Path::new("/tmp/.tmpAbC123");
    assert_eq!(
        sanitise(
            "/tmp/.tmpAbC123/x at 2026-12-02T04:12:47Z and 2026-12-02T04:12:47.123Z, not 2026-12-02",
            dir
        ),
        "[DIR]/x at [TIME] and [TIME], not 2026-12-02"
    );
    assert_eq!(
        sanitise("{\"state\":\"done\",\"elapsed_seconds\":12.345}", dir),
        "{\"state\":\"done\",\"elapsed_seconds\":[S]}"
    );
}

#[test]
fn bad_input_for_people_and_as_json() {
    let dir = tempfile::tempdir().unwrap();
    insta::assert_snapshot!(
        "error_for_people",
        run(dir.path(), &["version", "compare", "1.0", "less", "2.0"])
    );
    write(
        dir.path(),
        "Packages",
        "Package: a\nVersion: 1\nbroken line\n",
    );
    insta::assert_snapshot!(
        "error_as_json",
        run(
            dir.path(),
            &["--json", "check", "--arch", "amd64", "Packages"]
        )
    );
}

#[test]
fn version_compare() {
    let dir = tempfile::tempdir().unwrap();
    insta::assert_snapshot!(
        "version_compare_for_people",
        run(dir.path(), &["version", "compare", "1:0.9", "gt", "2.0"])
    );
    insta::assert_snapshot!(
        "version_compare_as_json",
        run(
            dir.path(),
            &["--json", "version", "compare", "1.0~rc1", "ge", "1.0"]
        )
    );
}

/// A Debian system as far as ferry's root check and the sources reader go.
fn fixture_root(dir: &Path) {
    write(dir, "root/var/lib/dpkg/status", "");
    write(
        dir,
        "root/etc/apt/sources.list",
        "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.example.org/debian bookworm main contrib\n\
         # deb-src http://deb.example.org/debian bookworm main\n",
    );
    write(
        dir,
        "root/etc/apt/sources.list.d/acme.sources",
        "Types: deb\nURIs: http://acme.example.org/apt\nSuites: stable\nComponents: main\nSigned-By: /usr/share/keyrings/acme.gpg\n",
    );
    write(dir, "root/etc/apt/sources.list.d/old.list.save", "");
}

#[test]
fn sources_show_status_and_history_on_a_fixture_root() {
    let dir = tempfile::tempdir().unwrap();
    fixture_root(dir.path());
    for (name, args) in [
        (
            "sources_show_for_people",
            &["--root", "root", "sources", "show"][..],
        ),
        (
            "sources_show_as_json",
            &["--json", "--root", "root", "sources", "show"],
        ),
        ("status_for_people", &["--root", "root", "status"]),
        ("status_as_json", &["--json", "--root", "root", "status"]),
        ("history_for_people", &["--root", "root", "history"]),
        ("history_as_json", &["--json", "--root", "root", "history"]),
    ] {
        insta::assert_snapshot!(name, run(dir.path(), args));
    }
}

const PACKAGES: &str = "\
Package: app
Version: 1
Architecture: amd64
Depends: tool

Package: tool
Version: 1
Architecture: all
Conflicts: app

Package: viewer
Version: 2
Architecture: amd64
Depends: libgone (>= 2)

Package: ok
Version: 2
Architecture: amd64
";

#[test]
fn check_on_a_small_packages_file() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "Packages", PACKAGES);
    for (name, args) in [
        (
            "check_for_people",
            &["check", "--arch", "amd64", "Packages"][..],
        ),
        (
            "check_explained",
            &["check", "--arch", "amd64", "--explain", "Packages"],
        ),
        (
            "check_as_json",
            &[
                "--json",
                "check",
                "--arch",
                "amd64",
                "--failures",
                "Packages",
            ],
        ),
        (
            "check_as_dose_yaml",
            &[
                "check",
                "--arch",
                "amd64",
                "--explain",
                "--format",
                "dose-yaml",
                "Packages",
            ],
        ),
    ] {
        insta::assert_snapshot!(name, run(dir.path(), args));
    }
}

fn suite(dir: &Path, name: &str, packages: &str, sources: &str) {
    write(dir, &format!("{name}/main/binary-amd64/Packages"), packages);
    write(dir, &format!("{name}/main/source/Sources"), sources);
}

#[test]
fn archive_questions_on_two_small_suites() {
    let dir = tempfile::tempdir().unwrap();
    suite(
        dir.path(),
        "unstable",
        "Package: app\nVersion: 2.0\nArchitecture: amd64\nDepends: libx (>= 2)\n\n\
         Package: libx\nVersion: 2\nArchitecture: amd64\nSource: x\n\n\
         Package: libold\nVersion: 1\nArchitecture: amd64\nSource: x (1)\n\n\
         Package: viewer\nVersion: 8\nArchitecture: amd64\nDepends: libold\n\n\
         Package: lonely\nVersion: 1.0\nArchitecture: amd64\nDepends: nowhere\n",
        "Package: app\nVersion: 2.0\nBinary: app\nArchitecture: any\n\n\
         Package: x\nVersion: 2\nBinary: libx\nArchitecture: any\n\n\
         Package: viewer\nVersion: 8\nBinary: viewer\nArchitecture: any\n\n\
         Package: lonely\nVersion: 1.0\nBinary: lonely\nArchitecture: any\n",
    );
    suite(
        dir.path(),
        "testing",
        "Package: app\nVersion: 1.0\nArchitecture: amd64\nDepends: libx\n\n\
         Package: libx\nVersion: 1\nArchitecture: amd64\nSource: x\n\n\
         Package: gone\nVersion: 3\nArchitecture: amd64\n",
        "Package: app\nVersion: 1.0\nBinary: app\nArchitecture: any\n\n\
         Package: x\nVersion: 1\nBinary: libx\nArchitecture: any\n\n\
         Package: gone\nVersion: 3\nBinary: gone\nArchitecture: any\n",
    );
    let excuses = [
        "archive", "excuses", "--from", "unstable", "--to", "testing",
    ];
    let coverage = [
        "archive", "coverage", "--from", "testing", "--to", "unstable",
    ];
    for (name, args) in [
        ("excuses_for_people", excuses.to_vec()),
        ("excuses_as_json", [&["--json"][..], &excuses].concat()),
        ("excuses_as_yaml", [&excuses[..], &["--yaml"]].concat()),
        ("nbs_for_people", vec!["archive", "nbs", "unstable"]),
        ("nbs_as_json", vec!["--json", "archive", "nbs", "unstable"]),
        ("coverage_for_people", coverage.to_vec()),
        ("coverage_as_json", [&["--json"][..], &coverage].concat()),
    ] {
        insta::assert_snapshot!(name, run(dir.path(), &args));
    }
}

#[test]
fn generate_lists_what_it_wrote() {
    let dir = tempfile::tempdir().unwrap();
    insta::assert_snapshot!(
        "generate_completions_for_people",
        run(
            dir.path(),
            &["generate", "completions", "--dir", "completions"]
        )
    );
    insta::assert_snapshot!(
        "generate_man_as_json",
        run(dir.path(), &["--json", "generate", "man", "man"])
    );
}
