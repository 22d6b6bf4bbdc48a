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

mod org_move;

use std::collections::BTreeMap;
use std::process::Command;

use ferry_apt::Snapshot;
use ferry_testkit::{skip_unless, Chroot, DebBuilder, Need};
use org_move::{new_core, TestResult, World, PROFILE};

/// The shared organisation-move world, with the admin's edit of
/// acme-daemon's conffile too (the package goes; a rollback brings it back).
fn world(core: DebBuilder) -> TestResult<World> {
    let world = World::new(core)?;
    world
        .sys
        .write_file("/etc/acme/daemon.conf", "port = 8080\n")?;
    Ok(world)
}

fn snapshot(world: &World) -> TestResult<Snapshot> {
    Ok(Snapshot::capture(&ferry_apt::SystemRoot::open(
        world.sys.path(),
    )?)?)
}

/// The move done, as far as the device's owner can see: the shared checks,
/// plus the new key trusted in the rewritten entry, its comment kept, and
/// dpkg clean.
fn assert_moved(world: &World) -> TestResult {
    world.assert_moved()?;
    let sources = world.read("/etc/apt/sources.list.d/acme.sources")?;
    assert!(
        sources.contains("Signed-By: /usr/share/keyrings/new-org.gpg"),
        "{sources}"
    );
    assert!(
        sources.starts_with("# ACME device packages\n"),
        "comments stay"
    );
    assert!(world
        .sys
        .host_path("/usr/share/keyrings/new-org.gpg")
        .is_file());
    assert_eq!(world.sys.run_ok(["dpkg", "--audit"])?, "");
    Ok(())
}

#[test]
fn organisation_move_and_offline_rollback() -> TestResult {
    skip_unless!(Need::Chroots);
    let mut world = world(new_core())?;
    let before = snapshot(&world)?;

    let plan = world.ferry(&["--json", "plan", PROFILE]);
    plan.success();
    assert_eq!(plan.stdout_json()?["blocked"], false);
    assert_eq!(snapshot(&world)?, before, "plan changes nothing");

    let started = std::time::Instant::now();
    let run = world.ferry(&["run", PROFILE, "--yes"]);
    run.success();
    eprintln!("ferry run: {:.1} s", started.elapsed().as_secs_f64());
    assert_moved(&world)?;
    assert_plain_progress(&run.stderr);

    let status = world.ferry(&["--json", "status"]);
    status.success();
    let status = status.stdout_json()?;
    assert_eq!(status["migration"]["outcome"], "succeeded");
    // Each step's wall time, and together no more than the whole run.
    let run_ms = started.elapsed().as_millis() as u64;
    for step in status["migration"]["steps"].as_array().ok_or("no steps")? {
        assert!(step["wall_ms"].is_u64(), "no wall time: {step}");
    }
    let in_steps = status["migration"]["steps_wall_ms"]
        .as_u64()
        .ok_or("no sum")?;
    assert!(
        in_steps > 0 && in_steps <= run_ms,
        "{in_steps} of {run_ms} ms"
    );
    let events = world.read("/var/log/ferry/events.jsonl")?;
    for state in ["\"INI\"", "\"OK\"", "\"END\"", "\"CMDLOG\"", "\"SUCCESS\""] {
        assert!(events.contains(state), "events lack {state}");
    }
    // The update step took the plan's lists: apt's own update on the moved
    // system leaves the very same files.
    assert!(events.contains("not fetched again"), "{events}");
    let lists = |world: &World| -> Result<BTreeMap<String, Vec<u8>>, Box<dyn std::error::Error>> {
        let dir = world.sys.host_path("/var/lib/apt/lists");
        let mut files = BTreeMap::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type()?.is_file() && name != "lock" {
                files.insert(name, std::fs::read(entry.path())?);
            }
        }
        Ok(files)
    };
    let taken = lists(&world)?;
    assert!(
        taken.keys().any(|n| n.ends_with("InRelease")),
        "{:?}",
        taken.keys()
    );
    world.sys.run_ok(["apt-get", "update", "-q"])?;
    let after = lists(&world)?;
    assert_eq!(
        taken.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "apt-get update left other list files"
    );
    for (name, bytes) in &taken {
        assert!(after[name] == *bytes, "apt-get update rewrote {name}");
    }

    // Offline: both repositories are gone.
    world.old = None;
    world.new = None;
    world.ferry(&["rollback", "--yes"]).success();
    let after = snapshot(&world)?;
    assert!(before.diff(&after).is_empty(), "{:#?}", before.diff(&after));
    assert_eq!(world.read("/etc/acme/daemon.conf")?, "port = 8080\n");
    assert_eq!(world.sys.run_ok(["dpkg", "--audit"])?, "");
    Ok(())
}

/// What a run shows in a pipe: the planning, then one heading per step,
/// `k of N`, in order, each with its `done` line and apt's own lines
/// indented under it; apt's status reports (`APT::Status-Fd`) never.
fn assert_plain_progress(stderr: &str) {
    assert!(
        stderr.starts_with("planning `acme-org-move`: "),
        "the planning comes first: {stderr}"
    );
    let headings: Vec<&str> = stderr.lines().filter(|l| l.starts_with("==> ")).collect();
    assert_eq!(
        headings,
        [
            "==> preflight (1 of 9)",
            "==> backup (2 of 9)",
            "==> sources (3 of 9)",
            "==> update (4 of 9)",
            "==> download (5 of 9)",
            "==> self-upgrade (6 of 9)",
            "==> packages (7 of 9)",
            "==> upgrade (8 of 9)",
            "==> verify (9 of 9)",
        ],
        "{stderr}"
    );
    for step in ["preflight", "update", "packages", "verify"] {
        let done = format!("    {step} done");
        assert_eq!(
            stderr.lines().filter(|l| *l == done).count(),
            1,
            "{done}: {stderr}"
        );
    }
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("    | Setting up acme-core")),
        "{stderr}"
    );
    assert!(
        !stderr.contains("dlstatus:") && !stderr.contains("pmstatus:"),
        "{stderr}"
    );
    assert!(!stderr.contains("{\""), "no JSON without --json: {stderr}");
}

/// The `--json` progress events on stderr, as (progress, state) pairs; every
/// line is one event.
fn progress_events(stderr: &str) -> TestResult<Vec<serde_json::Value>> {
    Ok(stderr
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?)
}

#[test]
fn on_a_terminal_a_run_keeps_its_step_headings_and_draws_a_live_line() -> TestResult {
    skip_unless!(Need::Chroots, Need::Tool("script"));
    let world = world(new_core())?;
    // `script` gives ferry a terminal; what it drew is in the typescript.
    let out = Command::new("script")
        .current_dir(world.sys.workdir())
        .args([
            "-qec",
            &format!(
                "{} --root {} run {PROFILE} --yes",
                env!("CARGO_BIN_EXE_ferry"),
                world.sys.path().display()
            ),
            "/dev/null",
        ])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert_moved(&world)?;
    assert!(text.contains("==> packages (7 of 9)\r\n"), "{text:?}");
    assert!(text.contains("    | Setting up acme-core"), "{text:?}");
    // The live line, below the lines, names the step by number.
    assert!(text.contains("step 7 of 9: packages"), "{text:?}");
    Ok(())
}

#[test]
fn a_failing_package_rolls_back_by_itself() -> TestResult {
    skip_unless!(Need::Chroots);
    let world = world(new_core().maintainer_script(
        "postinst",
        "#!/bin/sh\necho 'acme-core cannot start' >&2\nexit 1\n",
    ))?;
    let before = snapshot(&world)?;
    let run = world.ferry(&["--json", "run", PROFILE, "--yes"]);
    run.failure(4);
    let report = run.stdout_json()?;
    assert_eq!(report["outcome"], "rolled-back", "{run}");
    assert_eq!(report["step"], "packages", "{run}");
    // stderr holds JSON progress events and nothing else: each step of
    // the run up to the failing one, numbered, then the rollback.
    let events = progress_events(&run.stderr)?;
    let seen: Vec<(String, String)> = events
        .iter()
        .filter(|e| e["state"] != "running")
        .map(|e| {
            (
                e["progress"].as_str().unwrap_or("?").to_string(),
                e["state"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect();
    let mut expected: Vec<(String, String)> = vec![(
        "planning `acme-org-move`: apt update and simulation in a sandbox, checks".into(),
        "start".into(),
    )];
    expected.push((expected[0].0.clone(), "done".into()));
    for step in [
        "preflight",
        "backup",
        "sources",
        "update",
        "download",
        "self-upgrade",
    ] {
        expected.push((step.into(), "start".into()));
        expected.push((step.into(), "done".into()));
    }
    expected.push(("packages".into(), "start".into()));
    expected.push(("packages".into(), "failed".into()));
    expected.push(("rolling back from the backup".into(), "start".into()));
    expected.push(("rolling back from the backup".into(), "done".into()));
    assert_eq!(seen, expected, "{}", run.stderr);
    let packages = events
        .iter()
        .find(|e| e["progress"] == "packages" && e["state"] == "start")
        .ok_or("no packages event")?;
    assert_eq!(
        (&packages["step"], &packages["steps"]),
        (&7.into(), &9.into())
    );
    let failed = events
        .iter()
        .find(|e| e["state"] == "failed")
        .ok_or("no failed event")?;
    assert!(
        failed["error"].as_str().unwrap_or("").contains("apt-get"),
        "{failed}"
    );
    // apt's own report of how far dpkg is, as percent.
    assert!(
        events.iter().any(|e| e["state"] == "running"
            && e["unit"] == "percent"
            && e["total"] == 100
            && e["message"].is_string()),
        "{}",
        run.stderr
    );
    // The maintainer script kept its stderr: apt's status reports have a
    // pipe of their own (apt closes its status descriptor before dpkg runs).
    let log = world.read(&format!(
        "/var/log/ferry/{}.log",
        report["migration"].as_str().unwrap_or_default()
    ))?;
    assert!(log.contains("acme-core cannot start"), "{log}");
    let after = snapshot(&world)?;
    assert!(before.diff(&after).is_empty(), "{:#?}", before.diff(&after));
    assert_eq!(world.sys.run_ok(["dpkg", "--audit"])?, "");
    Ok(())
}

#[test]
fn a_run_stopped_after_any_step_resumes_to_the_end() -> TestResult {
    skip_unless!(Need::Chroots);
    for step in [
        "backup", "sources", "update", "download", "packages", "upgrade",
    ] {
        let world = world(new_core())?;
        let run = world.sys.ferry_env(
            &[("FERRY_TEST_STOP_AFTER", step)],
            ["run", PROFILE, "--yes"],
        );
        assert_eq!(run.code, Some(137), "stopped after {step}\n{run}");
        let status = world.ferry(&["--json", "status"]);
        assert_eq!(
            status.stdout_json()?["migration"]["outcome"],
            "in-progress",
            "after {step}"
        );

        let second = world.ferry(&["run", PROFILE, "--yes"]);
        second.failure(3);
        assert!(second.stderr.contains("interrupted"), "{second}");

        // --quiet: the result, and nothing at all on stderr.
        let resumed = world.ferry(&["--quiet", "run", "--resume", "--yes"]);
        resumed.success();
        assert_eq!(resumed.stderr, "", "after {step}");
        assert_moved(&world)?;
    }
    Ok(())
}

/// The hash of everything a refused run must leave alone.
fn untouched_state(sys: &Chroot) -> TestResult<(Snapshot, Vec<u8>)> {
    Ok((
        Snapshot::capture(&ferry_apt::SystemRoot::open(sys.path())?)?,
        sys.read_file("/var/lib/dpkg/status")?,
    ))
}

#[test]
fn refusals_change_nothing() -> TestResult {
    skip_unless!(Need::Chroots);
    let world = world(new_core())?;
    let before = untouched_state(&world.sys)?;
    let workdir = world.sys.workdir();

    // A bad profile: line and column, exit 2.
    std::fs::write(
        workdir.join("bad.toml"),
        "schema = 1\nname = \"x\"\n[packages]\nremvoe = [\"acme-legacy\"]\n",
    )?;
    let out = world.ferry(&["run", "bad.toml", "--yes"]);
    out.failure(2);
    assert!(out.stderr.contains("bad.toml:4:1"), "{out}");
    assert!(out.stderr.contains("unknown field `remvoe`"), "{out}");

    // A second run while one holds the lock: the holder is named, exit 3.
    let lock = ferry_journal::MigrationLock::acquire(
        &world.sys.host_path("/var/lib/ferry/lock"),
        "other-migration",
    )?;
    let out = world.ferry(&["run", PROFILE, "--yes"]);
    out.failure(3);
    assert!(out.stderr.contains("other-migration"), "{out}");
    drop(lock);

    // Without --yes and without a terminal: refused, exit 2.
    world.ferry(&["run", PROFILE]).failure(2);

    // Too little free space where apt downloads: a small filesystem there.
    let archives = world.sys.host_path("/var/cache/apt/archives");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
        .arg(&archives)
        .status()
        .is_ok_and(|s| s.success());
    if mounted {
        let profile = std::fs::read_to_string(workdir.join(PROFILE))?
            + "\n[checks]\nmin_free_mib = { \"/var/cache/apt/archives\" = 1 }\n";
        std::fs::write(workdir.join("tight.toml"), profile)?;
        let out = world.ferry(&["run", "tight.toml", "--yes"]);
        let _ = Command::new("umount").arg(&archives).status();
        out.failure(3);
        assert!(
            out.stdout.contains("free-space:/var/cache/apt/archives"),
            "{out}"
        );
        // The device's events say why nothing ran (a fleet server reads them).
        let events = world.read("/var/log/ferry/events.jsonl")?;
        let blocked = events
            .lines()
            .find(|l| l.contains("blocked by the plan's checks"))
            .ok_or_else(|| format!("no blocked event in\n{events}"))?;
        assert!(blocked.contains("\"FAIL\""), "{blocked}");
        assert!(
            blocked.contains("free-space:/var/cache/apt/archives"),
            "{blocked}"
        );
    } else {
        ferry_testkit::note_skip!(
            "could not mount a tmpfs; the free-space refusal was not exercised"
        );
    }

    assert_eq!(untouched_state(&world.sys)?, before);
    Ok(())
}

/// Benchmark, not a check (run by `bench/migration-overhead.sh`): the
/// organisation move with `ferry run` against plain apt-get making the same
/// package changes on an identical chroot, and the ratio.
#[test]
#[ignore]
fn bench_overhead_against_plain_apt() -> TestResult {
    skip_unless!(Need::Chroots);
    let rounds: usize = std::env::var("FERRY_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let (mut ferry_best, mut apt_best) = (f64::MAX, f64::MAX);
    let (mut ferry_steps, mut apt_steps) = (String::new(), String::new());
    for _ in 0..rounds {
        let world = world(new_core())?;
        let started = std::time::Instant::now();
        world.ferry(&["run", PROFILE, "--yes"]).success();
        let took = started.elapsed().as_secs_f64();
        assert_moved(&world)?;
        if took < ferry_best {
            ferry_best = took;
            // Where the time went, as `ferry status` tells a user.
            let status = world.ferry(&["--json", "status"]);
            status.success();
            let status = status.stdout_json()?;
            let mut parts: Vec<String> = status["migration"]["steps"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| {
                    let ms = r["wall_ms"].as_u64().unwrap_or(0);
                    format!(
                        "{}={:.2}",
                        r["step"].as_str().unwrap_or("?"),
                        ms as f64 / 1000.0
                    )
                })
                .collect();
            let in_steps =
                status["migration"]["steps_wall_ms"].as_u64().unwrap_or(0) as f64 / 1000.0;
            parts.push(format!("outside steps={:.2}", took - in_steps));
            ferry_steps = parts.join(" ");
        }

        let world = self::world(new_core())?;
        let started = std::time::Instant::now();
        world.sys.write_file(
            "/etc/apt/sources.list.d/acme.sources",
            format!(
                "# ACME device packages\n{}",
                world
                    .new
                    .as_ref()
                    .ok_or("no target")?
                    .sources_entry_signed_by("/usr/share/keyrings/new-org.gpg")
            ),
        )?;
        world.sys.write_file(
            "/usr/share/keyrings/new-org.gpg",
            std::fs::read(world.sys.workdir().join("new-org.gpg"))?,
        )?;
        let sources_done = started.elapsed().as_secs_f64();
        world.sys.run_ok(["apt-get", "update", "-q"])?;
        let update_done = started.elapsed().as_secs_f64();
        world.sys.run_ok([
            "apt-get",
            "install",
            "-y",
            "-q",
            "acme-core",
            "acme-daemon-",
            "acme-legacy-",
        ])?;
        let install_done = started.elapsed().as_secs_f64();
        world.sys.run_ok(["apt-get", "dist-upgrade", "-y", "-q"])?;
        let took = started.elapsed().as_secs_f64();
        assert_moved(&world)?;
        if took < apt_best {
            apt_best = took;
            apt_steps = format!(
                "sources={sources_done:.2} update={:.2} install={:.2} dist-upgrade={:.2}",
                update_done - sources_done,
                install_done - update_done,
                took - install_done
            );
        }
    }
    println!("organisation move, best of {rounds}:");
    println!("  ferry run (plan, backup, journal, verify): {ferry_best:6.2} s");
    println!("    steps: {ferry_steps}");
    println!("  plain apt-get (same package changes):     {apt_best:6.2} s");
    println!("    steps: {apt_steps}");
    println!("  overhead ratio: {:.2}x", ferry_best / apt_best);
    Ok(())
}
