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
    std::fs::write(
        &repo,
        "Package: base\nVersion: 2\nArchitecture: amd64\n\n\
         Package: plugin\nVersion: 1\nArchitecture: amd64\nDepends: base (<< 1)\n",
    )
    .unwrap();
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

/// A system whose every dependency is met by what is installed: `lib` is
/// installed but the repositories no longer offer it, and `app` needs it.
const SYSTEM: &str = "\
Package: app
Status: install ok installed
Version: 1
Architecture: amd64
Depends: lib

Package: lib
Status: install ok installed
Version: 1
Architecture: amd64

Package: gone
Status: deinstall ok config-files
Version: 1
Architecture: amd64
";

/// `ferry --root ROOT check --installed --arch amd64 [EXTRA…] REPO` with
/// `SYSTEM` as ROOT's dpkg status and `repo` as the only Packages file.
fn check_installed(repo: &str, extra: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    // What `--root` must look like: a Debian system's etc/apt and dpkg status.
    std::fs::create_dir_all(root.join("etc/apt")).unwrap();
    std::fs::create_dir_all(root.join("var/lib/dpkg")).unwrap();
    std::fs::write(root.join("var/lib/dpkg/status"), SYSTEM).unwrap();
    let file = dir.path().join("Packages");
    std::fs::write(&file, repo).unwrap();
    let mut args = vec![
        "--root",
        root.to_str().unwrap(),
        "check",
        "--installed",
        "--arch",
        "amd64",
    ];
    args.extend(extra);
    args.push(file.to_str().unwrap());
    ferry(&args)
}

#[test]
fn installed_copies_do_not_make_installed_packages_installable() {
    let repo = "Package: app\nVersion: 1\nArchitecture: amd64\nDepends: lib\n";
    let out = check_installed(repo, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let human = text(&out);
    assert!(
        human.contains("broken: app 1 [amd64]: nothing satisfies `lib`"),
        "{human}"
    );
    assert!(
        human.contains("broken: lib 1 [amd64]: no version of lib:amd64 is offered"),
        "{human}"
    );
    assert!(
        human.contains("2 of 2 installed packages have no installable version"),
        "{human}"
    );

    let out = check_installed(repo, &["--json", "--explain"]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (json["total"].as_u64(), json["broken"].as_u64()),
        (Some(2), Some(2))
    );
    let report = json["report"].as_array().unwrap();
    let app = &report[0];
    assert_eq!(
        (app["package"].as_str(), app["status"].as_str()),
        (Some("app"), Some("broken"))
    );
    let missing = &app["reasons"][0]["missing"];
    assert_eq!(missing["unsat_dependency"], "lib");
    assert_eq!(missing["chain"][0]["package"], "app");
    let lib = &report[1];
    assert_eq!(
        (lib["package"].as_str(), lib["status"].as_str()),
        (Some("lib"), Some("broken"))
    );
    assert_eq!(lib["reasons"][0]["missing"]["chain"], serde_json::json!([]));
    assert_eq!(
        lib["reasons"][0]["missing"]["unsat_dependency"],
        "lib:amd64"
    );
}

#[test]
fn installed_packages_the_files_can_install_pass() {
    // app's installed version is gone, a newer one is offered; lib is
    // offered at the installed version.
    let repo = "Package: app\nVersion: 2\nArchitecture: amd64\nDepends: lib (>= 1)\n\n\
                Package: lib\nVersion: 1\nArchitecture: amd64\n";
    let out = check_installed(repo, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        text(&out),
        "0 of 2 installed packages have no installable version\n"
    );

    let out = check_installed(repo, &["--json"]);
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (json["total"].as_u64(), json["broken"].as_u64()),
        (Some(2), Some(0))
    );
    let statuses: Vec<(&str, &str)> = json["report"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["package"].as_str().unwrap(),
                r["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(statuses, [("app", "ok"), ("lib", "ok")]);
}

#[test]
fn installed_without_packages_files_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let status = dir.path().join("status");
    std::fs::write(&status, SYSTEM).unwrap();
    let out = ferry(&[
        "check",
        "--installed",
        "--arch",
        "amd64",
        "--status",
        status.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Packages files"), "{stderr}");
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
