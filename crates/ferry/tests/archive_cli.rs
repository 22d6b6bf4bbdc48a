//! `ferry archive excuses | nbs | coverage` as users run them: exit codes, JSON, and
//! bad input (a map with a typo, a directory that is not a suite) refused
//! with the file, line and column.

use std::path::Path;
use std::process::{Command, Output};

const FERRY: &str = env!("CARGO_BIN_EXE_ferry");

fn ferry(args: &[&str]) -> Output {
    Command::new(FERRY).args(args).output().unwrap()
}

fn write_suite(dir: &Path, packages: &str, sources: &str) {
    std::fs::create_dir_all(dir.join("main/binary-amd64")).unwrap();
    std::fs::create_dir_all(dir.join("main/source")).unwrap();
    std::fs::write(dir.join("main/binary-amd64/Packages"), packages).unwrap();
    std::fs::write(dir.join("main/source/Sources"), sources).unwrap();
}

#[test]
fn nbs_and_coverage_answer_and_refuse_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("unstable");
    write_suite(
        &suite,
        "Package: libjpeg1\nVersion: 1.0\nArchitecture: amd64\nSource: jpegtools (1.0)\n\n\
         Package: libjpeg2\nVersion: 2.0\nArchitecture: amd64\nSource: jpegtools\n\n\
         Package: imageviewer\nVersion: 8.4\nArchitecture: amd64\nDepends: libjpeg1\n",
        "Package: jpegtools\nVersion: 2.0\nBinary: libjpeg2\n\n\
         Package: imageviewer\nVersion: 8.4\nBinary: imageviewer\n",
    );
    let suite_arg = suite.to_string_lossy().into_owned();
    let out = ferry(&["--json", "archive", "nbs", &suite_arg]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["nbs"][0]["package"], "libjpeg1");
    assert_eq!(report["nbs"][0]["needed_by"][0]["package"], "imageviewer");
    assert_eq!(report["nbs"][0]["rebuild"][0], "imageviewer");
    let text = ferry(&["archive", "nbs", &suite_arg]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("no-change rebuild: src:imageviewer"));

    // Coverage of the suite by itself has no gaps.
    let same = ferry(&[
        "archive", "coverage", "--from", &suite_arg, "--to", &suite_arg,
    ]);
    assert_eq!(
        same.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&same.stdout)
    );

    let map = dir.path().join("map");
    std::fs::write(
        &map,
        "# renames\nlibjpeg1 libjpeg2\nimageviewer Imageviewer\n",
    )
    .unwrap();
    let bad = ferry(&[
        "archive",
        "coverage",
        "--from",
        &suite_arg,
        "--to",
        &suite_arg,
        "--map",
        &map.to_string_lossy(),
    ]);
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("map:3:13"), "{stderr}");

    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let none = ferry(&["archive", "nbs", &empty.to_string_lossy()]);
    assert_eq!(none.status.code(), Some(2));
}

#[test]
fn excuses_report_and_refuse_a_bad_hint() {
    let dir = tempfile::tempdir().unwrap();
    let release = dir.path().join("release");
    let proposed = dir.path().join("proposed");
    write_suite(
        &release,
        "Package: libjpeg1\nVersion: 1.0\nArchitecture: amd64\nSource: jpegtools\n\n\
         Package: imageviewer\nVersion: 8.4\nArchitecture: amd64\nDepends: libjpeg1\n",
        "Package: jpegtools\nVersion: 1.0\nBinary: libjpeg1\n\n\
         Package: imageviewer\nVersion: 8.4\nBinary: imageviewer\n",
    );
    write_suite(
        &proposed,
        "Package: libjpeg2\nVersion: 2.0\nArchitecture: amd64\nSource: jpegtools\n\n\
         Package: imageviewer\nVersion: 8.4\nArchitecture: amd64\nDepends: libjpeg1\n",
        "Package: jpegtools\nVersion: 2.0\nBinary: libjpeg2\n\n\
         Package: imageviewer\nVersion: 8.4\nBinary: imageviewer\n",
    );
    let (from, to) = (
        proposed.to_string_lossy().into_owned(),
        release.to_string_lossy().into_owned(),
    );
    let out = ferry(&["--json", "archive", "excuses", "--from", &from, "--to", &to]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["excuses"][0]["source"], "jpegtools");
    assert_eq!(report["excuses"][0]["migrates"], true);
    assert_eq!(
        report["excuses"][0]["reasons"][0]["kind"],
        "kept-old-binaries"
    );

    let yaml = ferry(&["archive", "excuses", "--from", &from, "--to", &to, "--yaml"]);
    let yaml = String::from_utf8_lossy(&yaml.stdout).into_owned();
    assert!(yaml.starts_with("generated-date: '"), "{yaml}");
    assert!(
        yaml.contains("'\nsources:\n- item-name: 'jpegtools'\n"),
        "{yaml}"
    );
    assert!(
        yaml.contains(
            "  new-version: '2.0'\n  is-candidate: true\n  migration-policy-verdict: PASS\n"
        ),
        "{yaml}"
    );

    let hints = dir.path().join("hints");
    std::fs::write(&hints, "block jpegtools\n").unwrap();
    let blocked = ferry(&[
        "archive",
        "excuses",
        "--from",
        &from,
        "--to",
        &to,
        "--hints",
        &hints.to_string_lossy(),
    ]);
    assert_eq!(blocked.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&blocked.stdout).contains("blocked by a hint"));

    std::fs::write(&hints, "unblock jpegtools\n").unwrap();
    let bad = ferry(&[
        "archive",
        "excuses",
        "--from",
        &from,
        "--to",
        &to,
        "--hints",
        &hints.to_string_lossy(),
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("hints:1:9"));
}

#[test]
fn excuses_apply_the_age_and_rc_bug_policies_from_britneys_files() {
    let dir = tempfile::tempdir().unwrap();
    let (from, to) = (dir.path().join("sid"), dir.path().join("forky"));
    write_suite(
        &from,
        "Package: foo\nVersion: 2\nArchitecture: amd64\n\n\
         Package: bar\nVersion: 2\nArchitecture: amd64\n",
        "Package: foo\nVersion: 2\nBinary: foo\n\nPackage: bar\nVersion: 2\nBinary: bar\n",
    );
    write_suite(
        &to,
        "Package: foo\nVersion: 1\nArchitecture: amd64\n\n\
         Package: bar\nVersion: 1\nArchitecture: amd64\n",
        "Package: foo\nVersion: 1\nBinary: foo\n\nPackage: bar\nVersion: 1\nBinary: bar\n",
    );
    let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    // foo arrived on 2026-11-30 (day 20,787), bar long ago with a new RC bug.
    std::fs::write(path("Dates"), "foo 2 20787\nbar 2 20000\n").unwrap();
    std::fs::write(path("Urgency"), "foo 2 high\n").unwrap();
    std::fs::write(path("bugs-sid"), "bar 4711\n").unwrap();
    std::fs::write(path("bugs-forky"), "").unwrap();
    let (f, t) = (path("sid"), path("forky"));
    let args = |now: &str| {
        vec![
            "--json".to_string(),
            "archive".into(),
            "excuses".into(),
            "--from".into(),
            f.clone(),
            "--to".into(),
            t.clone(),
            "--dates".into(),
            path("Dates"),
            "--urgencies".into(),
            path("Urgency"),
            "--now".into(),
            now.into(),
            "--bugs-from".into(),
            path("bugs-sid"),
            "--bugs-to".into(),
            path("bugs-forky"),
        ]
    };
    let run = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ferry(&args)
    };
    let reasons = |out: &Output, source: &str| -> serde_json::Value {
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        report["excuses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["source"] == source)
            .unwrap()["reasons"]
            .clone()
    };
    // On 2026-12-01, foo is 1 day old of the 2 that high asks.
    let out = run(args("2026-12-01"));
    assert_eq!(out.status.code(), Some(1));
    let foo = reasons(&out, "foo");
    assert_eq!(foo[0]["kind"], "too-young", "{foo}");
    assert_eq!(
        (
            foo[0]["age_days"].as_u64(),
            foo[0]["required_days"].as_u64()
        ),
        (Some(1), Some(2))
    );
    assert_eq!(reasons(&out, "bar")[0]["bugs"][0], "4711");
    // A day later foo is old enough; the same as britney's day number.
    for now in ["2026-12-02", "20789"] {
        let out = run(args(now));
        assert_eq!(reasons(&out, "foo"), serde_json::json!([]), "--now {now}");
    }
    // The YAML verdicts: bar's RC bug is permanent, foo's age temporary.
    let mut yaml_args = args("2026-12-01");
    yaml_args[0] = "--quiet".into();
    yaml_args.push("--yaml".into());
    let yaml = String::from_utf8_lossy(&run(yaml_args).stdout).into_owned();
    let verdict_of = |source: &str| {
        yaml.split("- item-name: ")
            .find(|item| item.starts_with(&format!("'{source}'")))
            .and_then(|item| {
                item.lines()
                    .find(|l| l.contains("migration-policy-verdict"))
            })
            .map(str::to_string)
            .unwrap_or_default()
    };
    assert!(
        verdict_of("foo").ends_with("REJECTED_TEMPORARILY"),
        "{yaml}"
    );
    assert!(
        verdict_of("bar").ends_with("REJECTED_PERMANENTLY"),
        "{yaml}"
    );

    // Bad input: a day that is none, a Dates line without its day, a
    // bugs file without the other one.
    let bad = run(args("tomorrow"));
    assert_eq!(bad.status.code(), Some(2));
    std::fs::write(path("Dates"), "foo 2 20787\nbar 2\n").unwrap();
    let bad = run(args("2026-12-02"));
    assert_eq!(bad.status.code(), Some(2));
    let said =
        String::from_utf8_lossy(&bad.stdout).into_owned() + &String::from_utf8_lossy(&bad.stderr);
    assert!(
        said.contains("Dates") && said.contains("\"line\": 2"),
        "{said}"
    );
    let alone = ferry(&[
        "archive",
        "excuses",
        "--from",
        &f,
        "--to",
        &t,
        "--bugs-from",
        &path("bugs-sid"),
    ]);
    assert_eq!(alone.status.code(), Some(2));
}
