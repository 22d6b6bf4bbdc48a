//! `ferry check` on the command line: exit codes, the three output forms,
//! and the installed-packages gate, on a small Packages file made here.

use std::process::{Command, Output};

const PACKAGES: &str = "\
Package: app
Version: 1
Architecture: amd64
Depends: tool

Package: tool
Version: 1
Architecture: all
Conflicts: app

Package: ok
Version: 2
Architecture: amd64
Depends: tool | helper

Package: helper
Version: 1
Architecture: amd64
";

fn ferry(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn broken_packages_are_named_with_their_reason_in_every_form() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("Packages");
    std::fs::write(&file, PACKAGES).unwrap();
    let file = file.to_str().unwrap();

    let out = ferry(&["check", "--arch", "amd64", "--explain", file]);
    assert_eq!(out.status.code(), Some(1), "some package is broken");
    let human = text(&out);
    assert!(human.contains("broken: app 1 [amd64]"), "{human}");
    assert!(human.contains("tool 1 conflicts with app 1"), "{human}");
    assert!(
        human.ends_with("1 of 4 packages are not installable\n"),
        "{human}"
    );

    let out = ferry(&["--json", "check", "--arch", "amd64", "--failures", file]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (json["total"].as_u64(), json["broken"].as_u64()),
        (Some(4), Some(1))
    );
    assert_eq!(json["report"].as_array().unwrap().len(), 1);

    let out = ferry(&[
        "check",
        "--arch",
        "amd64",
        "--failures",
        "--explain",
        "--format",
        "dose-yaml",
        file,
    ]);
    let yaml = text(&out);
    assert!(
        yaml.starts_with("output-version: 1.2\nnative-architecture: amd64\nreport:\n"),
        "{yaml}"
    );
    assert!(yaml.contains("    conflict:\n"), "{yaml}");
    assert!(
        yaml.ends_with("total-packages: 4\nbroken-packages: 1\n"),
        "{yaml}"
    );
}

#[test]
fn installed_packages_without_an_installable_version_are_the_gate() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("Packages");
    std::fs::write(&repo, "Package: base\nVersion: 2\nArchitecture: amd64\n").unwrap();
    let status = dir.path().join("status");
    std::fs::write(
        &status,
        "Package: base\nStatus: install ok installed\nVersion: 1\nArchitecture: amd64\n\n\
         Package: plugin\nStatus: install ok installed\nVersion: 1\nArchitecture: amd64\nDepends: base (<< 1)\n",
    )
    .unwrap();
    let out = ferry(&[
        "check",
        "--arch",
        "amd64",
        "--installed",
        "--explain",
        "--status",
        status.to_str().unwrap(),
        repo.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let human = text(&out);
    assert!(human.contains("broken: plugin 1"), "{human}");
    assert!(human.contains("base (<< 1)"), "{human}");
    assert!(
        human.contains("1 of 2 installed packages have no installable version"),
        "{human}"
    );
}

#[test]
fn a_malformed_file_is_bad_input_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("Packages");
    std::fs::write(
        &file,
        "Package: a\nVersion: 1\nArchitecture: amd64\nDepends: b (>= \n",
    )
    .unwrap();
    let out = ferry(&["check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(":4"), "{stderr}");
}
