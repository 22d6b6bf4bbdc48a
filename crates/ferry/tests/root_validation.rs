//! `--root` is checked once, before a command reads or changes a system:
//! a path that is missing, a file, or a directory that is no Debian system
//! stops every system command with exit 2, a message naming the path, what
//! was expected and what to do, and nothing created there. Commands that
//! only read files named on the command line do not ask for a system.
//! Without root, `plan` reads the system and works, or names the files only
//! root may read; `run`, `rollback` and `release upgrade` refuse at once.
//!
//! The unprivileged cases run ferry as `nobody` (setpriv), which needs
//! root; the real-system plan also needs what the chroot tests need.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ferry_testkit::{deb, expect_exit, skip_unless, Chroot, Need, Repo, ServedRepo};

/// A meta-release index nothing answers on: reaching for it would fail
/// with exit 1, so an exit 2 proves the refusal came first.
const NO_INDEX: &str = "http://127.0.0.1:9/meta-release";

struct Inputs {
    dir: tempfile::TempDir,
}

impl Inputs {
    /// A valid profile and a Packages file, readable by anyone.
    fn new() -> Inputs {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(
            dir.path().join("move.toml"),
            "schema = 1\nname = \"root-check\"\n[packages]\ninstall = [\"acme-tool\"]\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("Packages"),
            "Package: a\nVersion: 1\nArchitecture: all\n\n",
        )
        .unwrap();
        Inputs { dir }
    }

    fn profile(&self) -> String {
        self.dir.path().join("move.toml").display().to_string()
    }

    fn packages(&self) -> String {
        self.dir.path().join("Packages").display().to_string()
    }

    /// Every command that reads or changes the system under --root.
    fn system_commands(&self) -> Vec<Vec<String>> {
        let p = self.profile();
        let lines: [&[&str]; 12] = [
            &["sources", "show"],
            &["plan", &p],
            &["run", &p, "--yes"],
            &["run", "--resume", "--yes"],
            &["status"],
            &["history"],
            &["rollback", "--yes"],
            &["release", "check", "--meta-release", NO_INDEX],
            &["release", "fetch", "--meta-release", NO_INDEX],
            &["release", "upgrade", "--meta-release", NO_INDEX, "--yes"],
            &[
                "release",
                "upgrade",
                "--meta-release",
                NO_INDEX,
                "--dry-run",
            ],
            &["check", "--installed", &self.packages()],
        ];
        lines
            .iter()
            .map(|l| l.iter().map(|s| s.to_string()).collect())
            .collect()
    }
}

fn ferry(root: &Path, args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("--root")
        .arg(root)
        .args(args)
        .env_remove("SSH_CONNECTION")
        .env_remove("SSH_TTY")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Exit 2 with the path, the problem, what was expected and a hint.
fn assert_refused(output: &Output, args: &[String], root: &Path, problem: &str) {
    let stderr = text(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(2),
        "ferry {args:?}\nstdout:\n{}\nstderr:\n{stderr}",
        text(&output.stdout)
    );
    assert!(
        stderr.contains(&format!("error: --root {} {problem}", root.display())),
        "ferry {args:?}: {stderr}"
    );
    assert!(
        stderr.contains("expected: a directory holding a Debian system"),
        "ferry {args:?}: {stderr}"
    );
    assert!(
        stderr.contains("help: check the path"),
        "ferry {args:?}: {stderr}"
    );
}

/// Every path under `dir`, to show nothing was created or removed.
fn tree(dir: &Path) -> BTreeSet<PathBuf> {
    let mut paths = BTreeSet::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path.clone());
            }
            paths.insert(path);
        }
    }
    paths
}

/// The least a directory needs to count as a Debian system, readable by all.
fn fake_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("etc/apt")).unwrap();
    std::fs::create_dir_all(dir.path().join("var/lib/dpkg")).unwrap();
    std::fs::write(dir.path().join("var/lib/dpkg/status"), "").unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

#[test]
fn a_missing_root_stops_every_system_command() {
    let inputs = Inputs::new();
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path().join("not-mounted");
    for args in inputs.system_commands() {
        let output = ferry(&root, &args);
        assert_refused(&output, &args, &root, "does not exist");
        assert!(!root.exists(), "ferry {args:?} created {}", root.display());
    }
}

#[test]
fn a_file_as_root_stops_every_system_command() {
    let inputs = Inputs::new();
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path().join("disk.img");
    std::fs::write(&root, "not a directory").unwrap();
    for args in inputs.system_commands() {
        let output = ferry(&root, &args);
        assert_refused(&output, &args, &root, "is not a directory");
        assert_eq!(std::fs::read_to_string(&root).unwrap(), "not a directory");
    }
}

#[test]
fn an_empty_directory_stops_every_system_command_and_stays_empty() {
    let inputs = Inputs::new();
    let root = tempfile::tempdir().unwrap();
    for args in inputs.system_commands() {
        let output = ferry(root.path(), &args);
        assert_refused(
            &output,
            &args,
            root.path(),
            "does not look like a Debian system: it has no etc/apt directory",
        );
        assert_eq!(
            tree(root.path()),
            BTreeSet::new(),
            "ferry {args:?} created files in a wrong root"
        );
    }
}

#[test]
fn a_root_without_dpkg_status_is_refused_by_name() {
    let inputs = Inputs::new();
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("etc/apt")).unwrap();
    let before = tree(root.path());
    for args in inputs.system_commands() {
        let output = ferry(root.path(), &args);
        assert_refused(
            &output,
            &args,
            root.path(),
            "does not look like a Debian system: it has no var/lib/dpkg/status",
        );
        assert_eq!(tree(root.path()), before, "ferry {args:?} changed the root");
    }
}

#[test]
fn json_gets_the_refusal_as_an_error_object() {
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path().join("not-mounted");
    for command in ["status", "history"] {
        let output = Command::new(env!("CARGO_BIN_EXE_ferry"))
            .arg("--json")
            .arg("--root")
            .arg(&root)
            .arg(command)
            .output()
            .unwrap();
        expect_exit(&output, 2);
        let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let error = &value["error"];
        assert_eq!(error["exit_code"], 2, "{value}");
        assert_eq!(error["path"], root.display().to_string(), "{value}");
        assert_eq!(
            error["message"],
            format!("--root {} does not exist", root.display()),
            "{value}"
        );
        assert!(
            error["expected"]
                .as_str()
                .unwrap()
                .contains("var/lib/dpkg/status"),
            "{value}"
        );
        assert!(
            error["hint"].as_str().unwrap().contains("--root"),
            "{value}"
        );
        assert!(output.stderr.is_empty(), "{}", text(&output.stderr));
    }
}

#[test]
fn a_minimal_debian_root_has_no_migration_and_keeps_no_trace() {
    let root = fake_root();
    let before = tree(root.path());
    for command in ["status", "history"] {
        let output = ferry(root.path(), &[command.to_string()]);
        expect_exit(&output, 0);
        assert_eq!(
            text(&output.stdout),
            "No migration has run on this system.\n"
        );
    }
    let status = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["--json", "--root"])
        .arg(root.path())
        .arg("status")
        .output()
        .unwrap();
    expect_exit(&status, 0);
    let value: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(value, serde_json::json!({ "migration": null }));
    let sources = ferry(root.path(), &["sources".into(), "show".into()]);
    expect_exit(&sources, 0);
    assert_eq!(
        tree(root.path()),
        before,
        "status/history wrote into the root"
    );
    assert!(!root.path().join("var/lib/ferry").exists());
}

#[test]
fn commands_on_named_files_do_not_ask_for_a_system() {
    let inputs = Inputs::new();
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path().join("not-mounted");
    let suite = scratch.path().join("suite");
    std::fs::create_dir_all(suite.join("main/binary-amd64")).unwrap();
    std::fs::create_dir_all(suite.join("main/source")).unwrap();
    std::fs::write(
        suite.join("main/binary-amd64/Packages"),
        "Package: a\nVersion: 1\nArchitecture: amd64\nSource: a\n\n",
    )
    .unwrap();
    std::fs::write(
        suite.join("main/source/Sources"),
        "Package: a\nVersion: 1\nBinary: a\nArchitecture: any\n\n",
    )
    .unwrap();
    let cases: [&[&str]; 3] = [
        &["version", "compare", "1.0", "lt", "1.1"],
        &["check", "--arch", "amd64", &inputs.packages()],
        &["archive", "nbs", &suite.display().to_string()],
    ];
    for args in cases {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let output = ferry(&root, &args);
        expect_exit(&output, 0);
        assert!(
            !text(&output.stderr).contains("--root"),
            "ferry {args:?}: {}",
            text(&output.stderr)
        );
    }
    assert!(!root.exists());
}

/// Runs ferry as `nobody`, or says why it cannot (dropping privileges
/// needs root, and setpriv).
fn as_nobody(root: &Path, args: &[&str]) -> Result<Output, String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err("needs root to run ferry as nobody".into());
    }
    Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_ferry"))
        .arg("--root")
        .arg(root)
        .args(args)
        .current_dir("/")
        .env_remove("SSH_CONNECTION")
        .env_remove("SSH_TTY")
        .output()
        .map_err(|e| format!("needs setpriv (util-linux): {e}"))
}

#[test]
fn changing_commands_refuse_a_non_root_user_before_any_work() {
    let inputs = Inputs::new();
    let root = fake_root();
    let before = tree(root.path());
    let profile = inputs.profile();
    let cases: [(&[&str], &str); 4] = [
        (&["run", &profile, "--yes"], "ferry run"),
        (&["run", "--resume", "--yes"], "ferry run"),
        (&["rollback", "--yes"], "ferry rollback"),
        (
            &["release", "upgrade", "--meta-release", NO_INDEX, "--yes"],
            "ferry release upgrade",
        ),
    ];
    for (args, command) in cases {
        let output = match as_nobody(root.path(), args) {
            Ok(output) => output,
            Err(why) => ferry_testkit::skip!("{why}"),
        };
        expect_exit(&output, 2);
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains(&format!(
                "error: `{command}` changes the system and must run as root"
            )),
            "{args:?}: {stderr}"
        );
        assert!(stderr.contains("nothing was changed"), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("sudo {command}")),
            "{args:?}: {stderr}"
        );
        assert_eq!(tree(root.path()), before, "{args:?} wrote into the root");
    }
    // Reading needs no root while there is nothing root-only to read.
    let status = as_nobody(root.path(), &["status"]).unwrap();
    expect_exit(&status, 0);
    assert_eq!(
        text(&status.stdout),
        "No migration has run on this system.\n"
    );
}

#[test]
fn status_as_nobody_does_not_hide_root_only_journals() {
    let root = fake_root();
    let journals = root.path().join("var/lib/ferry");
    std::fs::create_dir_all(&journals).unwrap();
    std::fs::set_permissions(&journals, std::fs::Permissions::from_mode(0o700)).unwrap();
    for command in ["status", "history"] {
        let output = match as_nobody(root.path(), &[command]) {
            Ok(output) => output,
            Err(why) => ferry_testkit::skip!("{why}"),
        };
        expect_exit(&output, 2);
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains(&format!(
                "error: `ferry {command}` needs root to read the migration journals in {}",
                journals.display()
            )),
            "{stderr}"
        );
        assert!(output.stdout.is_empty(), "{}", text(&output.stdout));
    }
}

/// A minbase system on a signed repository of the test, its lists fetched
/// by root (so apt's lists lock is root's alone, as on a real system).
struct RealSystem {
    sys: Chroot,
    _repo: ServedRepo,
}

impl RealSystem {
    fn new() -> RealSystem {
        let repo = Repo::new("acme")
            .package(deb("acme-tool", "1.0"))
            .serve()
            .unwrap();
        let sys = Chroot::minbase("bookworm").unwrap();
        std::fs::set_permissions(sys.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        sys.write_file("/etc/apt/sources.list", "").unwrap();
        sys.write_file(
            "/usr/share/keyrings/acme.gpg",
            std::fs::read(repo.keyring_path()).unwrap(),
        )
        .unwrap();
        sys.write_file(
            "/etc/apt/sources.list.d/acme.sources",
            repo.sources_entry_signed_by("/usr/share/keyrings/acme.gpg"),
        )
        .unwrap();
        sys.run_ok(["apt-get", "update", "-q"]).unwrap();
        RealSystem { sys, _repo: repo }
    }
}

#[test]
fn plan_as_nobody_reads_a_real_system_or_names_what_needs_root() {
    skip_unless!(Need::Chroots);
    let inputs = Inputs::new();
    let world = RealSystem::new();
    let root = world.sys.path();
    let profile = inputs.profile();

    // A private keyring: the plan cannot verify the repository without it,
    // and says so instead of calling the repository unsigned.
    let keyring = root.join("usr/share/keyrings/acme.gpg");
    std::fs::set_permissions(&keyring, std::fs::Permissions::from_mode(0o600)).unwrap();
    let refused = as_nobody(root, &["plan", &profile]).unwrap();
    expect_exit(&refused, 2);
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains(&format!(
            "error: `ferry plan` needs root to read {}",
            keyring.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("sudo ferry plan"), "{stderr}");
    assert!(!stderr.contains("lists/lock"), "{stderr}");

    // Readable as on a stock system: nobody gets the same plan as root.
    std::fs::set_permissions(&keyring, std::fs::Permissions::from_mode(0o644)).unwrap();
    let lock = root.join("var/lib/apt/lists/lock");
    assert_eq!(
        std::fs::metadata(&lock).unwrap().permissions().mode() & 0o004,
        0,
        "the lists lock is root's alone, as apt leaves it"
    );
    let plan = as_nobody(root, &["plan", &profile]).unwrap();
    expect_exit(&plan, 0);
    let stdout = text(&plan.stdout);
    assert!(
        stdout.contains("install   acme-tool                        1.0"),
        "{stdout}"
    );
    assert!(stdout.contains("Ready: `ferry run` would carry this out."));
    assert!(!root.join("var/lib/ferry").exists());
    let as_root = ferry(root, &["plan".into(), profile.clone()]);
    expect_exit(&as_root, 0);
    let packages = |plan: &str| -> Vec<String> {
        plan.lines()
            .filter(|l| l.starts_with("  install") || l.starts_with("  download"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(packages(&text(&as_root.stdout)), packages(&stdout));
}
