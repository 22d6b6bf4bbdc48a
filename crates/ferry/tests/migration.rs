//! Repository migration end to end, on real minbase chroots with real
//! signed repositories served on 127.0.0.1 and the real apt and dpkg:
//! the organisation move, the offline rollback, a failing package that
//! rolls back by itself, crashes after every step, and the refusals that
//! must leave the system untouched. Faults of the target repository, the
//! backup, the pool and kills inside dpkg are the table of
//! `tests/fault_matrix.rs`.
//!
//! Needs root, mmdebstrap, apt-utils and gnupg, and a Debian mirror in the
//! host's apt configuration (for the first chroot only; it is cached).

mod support;

use std::process::Command;

use ferry_migrate::snapshot::Snapshot;
use support::{deb, expect_exit, unavailable, Chroot, Deb, Repo, Server, Signer};

macro_rules! skip_unless_possible {
    () => {
        if let Some(why) = unavailable() {
            ferry_testkit::skip!("{why}");
        }
    };
}

/// The old organisation's packages, as the seed describes them.
fn old_packages() -> Vec<Deb> {
    vec![
        deb("acme-sdk", "1.0").conffile("/etc/acme/sdk.conf", "level = 1\n"),
        deb("acme-daemon", "1.0").conffile("/etc/acme/daemon.conf", "port = 80\n"),
        deb("acme-legacy", "1.0"),
    ]
}

fn new_core() -> Deb {
    deb("acme-core", "2.0")
        .field("Conflicts", "acme-daemon")
        .field("Replaces", "acme-daemon")
        .field("Provides", "acme-daemon")
}

fn new_packages(core: Deb) -> Vec<Deb> {
    vec![
        deb("acme-sdk", "1.1").conffile("/etc/acme/sdk.conf", "level = 1\n"),
        core,
    ]
}

/// A device on the old organisation's repository, and the new one ready.
struct World {
    sys: Chroot,
    old_server: Option<Server>,
    new_server: Option<Server>,
    _old_repo: Repo,
    _new_repo: Repo,
    _signers: (Signer, Signer),
    profile_dir: tempfile::TempDir,
}

impl World {
    fn new(core: Deb) -> World {
        Self::with_new_signer(core, None)
    }

    /// `wrong_signer`: sign the new repository with another key than the
    /// one the profile installs.
    fn with_new_signer(core: Deb, wrong_signer: Option<&Signer>) -> World {
        let old_signer = Signer::new("old-org");
        let new_signer = Signer::new("new-org");
        let old_repo = Repo::new("old-org", &old_packages(), &old_signer);
        let new_repo = Repo::new(
            "new-org",
            &new_packages(core),
            wrong_signer.unwrap_or(&new_signer),
        );
        let old_server = Server::serve(old_repo.dir.path());
        let new_server = Server::serve(new_repo.dir.path());

        let sys = Chroot::bookworm();
        // Only the test's repositories: the tests never need the network.
        sys.write("/etc/apt/sources.list", "");
        sys.write(
            "/usr/share/keyrings/old-org.gpg",
            std::fs::read(&old_signer.keyring).unwrap(),
        );
        sys.write(
            "/etc/apt/sources.list.d/acme.sources",
            format!(
                "# ACME device packages\nTypes: deb\nURIs: {}\nSuites: stable\nComponents: main\nSigned-By: /usr/share/keyrings/old-org.gpg\n",
                old_server.uri()
            ),
        );
        sys.ok(&["apt-get", "update", "-q"]);
        sys.ok(&[
            "apt-get",
            "install",
            "-y",
            "-q",
            "acme-sdk",
            "acme-daemon",
            "acme-legacy",
        ]);
        // The admin's local edits, which must survive where the package stays.
        sys.write("/etc/acme/sdk.conf", "level = 7 # tuned on site\n");
        sys.write("/etc/acme/daemon.conf", "port = 8080\n");

        let profile_dir = tempfile::tempdir().unwrap();
        std::fs::copy(&new_signer.keyring, profile_dir.path().join("new-org.gpg")).unwrap();
        std::fs::write(
            profile_dir.path().join("move.toml"),
            format!(
                r#"schema = 1
name = "acme-org-move"
description = "ACME devices move from old-org to new-org"

[[sources]]
match = {{ uri = "{old}" }}
set = {{ uri = "{new}", signed_by = "/usr/share/keyrings/new-org.gpg" }}
expect_release = {{ origin = "new-org" }}

[[keys]]
install_to = "/usr/share/keyrings/new-org.gpg"
file = "new-org.gpg"

[packages]
replace = [{{ from = "acme-daemon", to = "acme-core" }}]
remove = ["acme-legacy"]
upgrade = "full"

[verify]
packages = [{{ name = "acme-sdk", version = ">= 1.1" }}, {{ name = "acme-core", version = "= 2.0" }}]
"#,
                old = old_server.uri(),
                new = new_server.uri()
            ),
        )
        .unwrap();
        World {
            sys,
            old_server: Some(old_server),
            new_server: Some(new_server),
            _old_repo: old_repo,
            _new_repo: new_repo,
            _signers: (old_signer, new_signer),
            profile_dir,
        }
    }

    fn profile(&self) -> String {
        self.profile_dir
            .path()
            .join("move.toml")
            .display()
            .to_string()
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot::capture(self.sys.path()).unwrap()
    }

    fn assert_moved(&self) {
        let sys = &self.sys;
        assert_eq!(sys.installed("acme-sdk").as_deref(), Some("1.1"));
        assert_eq!(sys.installed("acme-core").as_deref(), Some("2.0"));
        assert_eq!(sys.installed("acme-daemon"), None);
        assert_eq!(sys.installed("acme-legacy"), None);
        let sources = sys.read("/etc/apt/sources.list.d/acme.sources");
        let new_uri = self
            .new_server
            .as_ref()
            .map(Server::uri)
            .unwrap_or_default();
        assert!(sources.contains(&format!("URIs: {new_uri}")), "{sources}");
        assert!(
            sources.contains("Signed-By: /usr/share/keyrings/new-org.gpg"),
            "{sources}"
        );
        assert!(
            sources.starts_with("# ACME device packages\n"),
            "comments stay"
        );
        assert!(sys.path().join("usr/share/keyrings/new-org.gpg").is_file());
        assert_eq!(
            sys.read("/etc/acme/sdk.conf"),
            "level = 7 # tuned on site\n",
            "local edit kept"
        );
        assert_eq!(sys.ok(&["dpkg", "--audit"]), "");
    }
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn organisation_move_and_offline_rollback() {
    skip_unless_possible!();
    let mut world = World::new(new_core());
    let before = world.snapshot();

    let plan = world.sys.ferry(&["--json", "plan", &world.profile()]);
    expect_exit(&plan, 0);
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(plan["blocked"], false);
    assert_eq!(world.snapshot(), before, "plan changes nothing");

    let started = std::time::Instant::now();
    let run = world.sys.ferry(&["run", &world.profile(), "--yes"]);
    expect_exit(&run, 0);
    eprintln!("ferry run: {:.1} s", started.elapsed().as_secs_f64());
    world.assert_moved();

    let status = world.sys.ferry(&["--json", "status"]);
    expect_exit(&status, 0);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["migration"]["outcome"], "succeeded");
    let events = world.sys.read("/var/log/ferry/events.jsonl");
    for state in ["\"INI\"", "\"OK\"", "\"END\"", "\"CMDLOG\"", "\"SUCCESS\""] {
        assert!(events.contains(state), "events lack {state}");
    }

    // Offline: both repositories are gone.
    world.old_server = None;
    world.new_server = None;
    let rollback = world.sys.ferry(&["rollback"]);
    expect_exit(&rollback, 0);
    let after = world.snapshot();
    assert!(before.diff(&after).is_empty(), "{:#?}", before.diff(&after));
    assert_eq!(world.sys.read("/etc/acme/daemon.conf"), "port = 8080\n");
    assert_eq!(world.sys.ok(&["dpkg", "--audit"]), "");
}

#[test]
fn a_failing_package_rolls_back_by_itself() {
    skip_unless_possible!();
    let world = World::new(new_core().script(
        "postinst",
        "#!/bin/sh\necho 'acme-core cannot start' >&2\nexit 1\n",
    ));
    let before = world.snapshot();
    let run = world.sys.ferry(&["run", &world.profile(), "--yes"]);
    expect_exit(&run, 4);
    assert!(stdout(&run).contains("Rolled back"), "{}", stdout(&run));
    let after = world.snapshot();
    assert!(before.diff(&after).is_empty(), "{:#?}", before.diff(&after));
    assert_eq!(world.sys.ok(&["dpkg", "--audit"]), "");
}

#[test]
fn a_run_stopped_after_any_step_resumes_to_the_end() {
    skip_unless_possible!();
    for step in [
        "backup", "sources", "update", "download", "packages", "upgrade",
    ] {
        let world = World::new(new_core());
        let run = world.sys.ferry_env(
            &["run", &world.profile(), "--yes"],
            &[("FERRY_TEST_STOP_AFTER", step)],
        );
        assert_eq!(run.status.code(), Some(137), "stopped after {step}");
        let status = world.sys.ferry(&["--json", "status"]);
        let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
        assert_eq!(
            status["migration"]["outcome"], "in-progress",
            "after {step}"
        );

        let second = world.sys.ferry(&["run", &world.profile(), "--yes"]);
        expect_exit(&second, 3);
        assert!(String::from_utf8_lossy(&second.stderr).contains("interrupted"));

        let resume = world.sys.ferry(&["run", "--resume", "--yes"]);
        expect_exit(&resume, 0);
        world.assert_moved();
    }
}

/// The hash of everything a refused run must leave alone.
fn untouched_state(sys: &Chroot) -> (Snapshot, String) {
    (
        Snapshot::capture(sys.path()).unwrap(),
        sys.read("/var/lib/dpkg/status"),
    )
}

#[test]
fn refusals_change_nothing() {
    skip_unless_possible!();
    let world = World::new(new_core());
    let before = untouched_state(&world.sys);

    // A bad profile: line and column, exit 2.
    let bad = world.profile_dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "schema = 1\nname = \"x\"\n[packages]\nremvoe = [\"acme-legacy\"]\n",
    )
    .unwrap();
    let out = world.sys.ferry(&["run", bad.to_str().unwrap(), "--yes"]);
    expect_exit(&out, 2);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(stderr.contains("bad.toml:4:1"), "{stderr}");
    assert!(stderr.contains("unknown field `remvoe`"), "{stderr}");

    // A second run while one holds the lock: the holder is named, exit 3.
    let lock = ferry_journal::MigrationLock::acquire(
        &world.sys.path().join("var/lib/ferry/lock"),
        "other-migration",
    )
    .unwrap();
    let out = world.sys.ferry(&["run", &world.profile(), "--yes"]);
    expect_exit(&out, 3);
    assert!(String::from_utf8_lossy(&out.stderr).contains("other-migration"));
    drop(lock);

    // Without --yes and without a terminal: refused, exit 2.
    let out = world.sys.ferry(&["run", &world.profile()]);
    expect_exit(&out, 2);

    // Too little free space where apt downloads: a small filesystem there.
    let archives = world.sys.path().join("var/cache/apt/archives");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
        .arg(&archives)
        .status()
        .is_ok_and(|s| s.success());
    if mounted {
        let profile = std::fs::read_to_string(world.profile()).unwrap()
            + "\n[checks]\nmin_free_mib = { \"/var/cache/apt/archives\" = 1 }\n";
        let tight = world.profile_dir.path().join("tight.toml");
        std::fs::write(&tight, profile).unwrap();
        let out = world.sys.ferry(&["run", tight.to_str().unwrap(), "--yes"]);
        let _ = Command::new("umount").arg(&archives).status();
        expect_exit(&out, 3);
        assert!(
            stdout(&out).contains("free-space:/var/cache/apt/archives"),
            "{}",
            stdout(&out)
        );
    } else {
        eprintln!("note: could not mount a tmpfs; the free-space refusal was not exercised");
    }

    assert_eq!(untouched_state(&world.sys), before);
}

/// Benchmark, not a check (run by `bench/migration-overhead.sh`): the
/// organisation move with `ferry run` against plain apt-get making the same
/// package changes on an identical chroot, and the ratio.
#[test]
#[ignore]
fn bench_overhead_against_plain_apt() {
    skip_unless_possible!();
    let rounds: usize = std::env::var("FERRY_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let (mut ferry_best, mut apt_best) = (f64::MAX, f64::MAX);
    for _ in 0..rounds {
        let world = World::new(new_core());
        let started = std::time::Instant::now();
        expect_exit(&world.sys.ferry(&["run", &world.profile(), "--yes"]), 0);
        ferry_best = ferry_best.min(started.elapsed().as_secs_f64());
        world.assert_moved();

        let world = World::new(new_core());
        let new_uri = world
            .new_server
            .as_ref()
            .map(Server::uri)
            .unwrap_or_default();
        let started = std::time::Instant::now();
        world.sys.write(
            "/etc/apt/sources.list.d/acme.sources",
            format!("# ACME device packages\nTypes: deb\nURIs: {new_uri}\nSuites: stable\nComponents: main\nSigned-By: /usr/share/keyrings/new-org.gpg\n"),
        );
        world.sys.write(
            "/usr/share/keyrings/new-org.gpg",
            std::fs::read(world.profile_dir.path().join("new-org.gpg")).unwrap(),
        );
        world.sys.ok(&["apt-get", "update", "-q"]);
        world.sys.ok(&[
            "apt-get",
            "install",
            "-y",
            "-q",
            "acme-core",
            "acme-daemon-",
            "acme-legacy-",
        ]);
        world.sys.ok(&["apt-get", "dist-upgrade", "-y", "-q"]);
        apt_best = apt_best.min(started.elapsed().as_secs_f64());
        world.assert_moved();
    }
    println!("organisation move, best of {rounds}:");
    println!("  ferry run (plan, backup, journal, verify): {ferry_best:6.2} s");
    println!("  plain apt-get (same package changes):     {apt_best:6.2} s");
    println!("  overhead ratio: {:.2}x", ferry_best / apt_best);
}
