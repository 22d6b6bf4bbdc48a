//! The fault matrix of a repository migration: one organisation-move
//! fixture (a real minbase chroot, real signed repositories on 127.0.0.1,
//! the real apt and dpkg), one fault per case, and what ferry must answer —
//! the exit code, the finding's key, and the state it leaves: exactly the
//! one before (installed set with versions, marks, selections, `/etc/apt`,
//! apt's lists, dpkg's status) or exactly the moved one, `dpkg --audit`
//! clean either way.
//!
//! The table is `MATRIX`; each case prints one line of the results table.
//! Needs root, mmdebstrap, gpg and the host's Debian mirror (for the first
//! chroot only; it is cached); skipped with a message otherwise.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

mod org_move;

use ferry_testkit::{deb, skip_unless, Chroot, Need, Outcome, Repo, Signer};
use org_move::{new_core, new_packages, old_packages, Move, TestResult, World};

/// What is done to the world before ferry runs, or while it runs.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Nothing listens where the target repository should be.
    TargetUnreachable,
    /// The target went down after an earlier update left its lists on the device.
    TargetDownWithStaleLists,
    /// The target repository answers with a 404 for its Release files.
    TargetReleaseMissing,
    /// The target is signed by a key the profile does not install.
    TargetSignedByAnotherKey,
    /// The target has neither InRelease nor Release.gpg.
    TargetUnsigned,
    /// The target's Release says another Origin than `expect_release`.
    TargetOtherOrigin,
    /// The old repository is gone and apt's cache was cleaned: the backup
    /// must rebuild the old `.deb`s from the installed files.
    OldRepoGoneCacheCleaned,
    /// As above, and a file of a package that will change was deleted: no
    /// source for its old `.deb` is left.
    OldRepoGoneFileLost,
    /// A `.deb` the index lists is missing from the pool (404 in `download`).
    DebMissingFromPool,
    /// kill -9 of the whole run while dpkg unpacks, then `run --resume`.
    KilledInDpkgThenResume,
    /// kill -9 of the whole run while dpkg unpacks, then `rollback`.
    KilledInDpkgThenRollback,
    /// plan → run → rollback → plan → run: the same plan twice, the same end.
    RunRollbackRunAgain,
    /// A profile that only re-points the source to a mirror of the same
    /// archive, where a newer acme-sdk waits: nothing is upgraded.
    RepointOnly,
}

/// The state a case must leave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// Byte for byte what it was (dpkg's status included).
    Unchanged,
    /// Rolled back: packages, marks, selections, `/etc/apt` and lists as
    /// before (dpkg rewrites the status file's stanzas on reinstall).
    RestoredExactly,
    /// The organisation move done.
    Moved,
    /// Only the sources re-pointed; every package as before.
    SourcesOnly,
}

struct Case {
    fault: Fault,
    /// `ferry plan`'s exit code.
    plan: i32,
    /// The exit code of the run (or of the command that finishes it).
    run: i32,
    /// A finding key (prefix) the plan or run must print.
    key: Option<&'static str>,
    end: End,
}

const MATRIX: &[Case] = &[
    Case {
        fault: Fault::TargetUnreachable,
        plan: 3,
        run: 3,
        key: Some("target-unreachable:"),
        end: End::Unchanged,
    },
    Case {
        fault: Fault::TargetDownWithStaleLists,
        plan: 3,
        run: 3,
        key: Some("target-unreachable:"),
        end: End::Unchanged,
    },
    Case {
        fault: Fault::TargetReleaseMissing,
        plan: 3,
        run: 3,
        key: Some("target-unreachable:"),
        end: End::Unchanged,
    },
    Case {
        fault: Fault::TargetSignedByAnotherKey,
        plan: 3,
        run: 3,
        key: Some("target-signature:"),
        end: End::Unchanged,
    },
    Case {
        fault: Fault::TargetUnsigned,
        plan: 3,
        run: 3,
        key: Some("target-signature:"),
        end: End::Unchanged,
    },
    Case {
        fault: Fault::TargetOtherOrigin,
        plan: 3,
        run: 3,
        key: Some("release-origin:"),
        end: End::Unchanged,
    },
    Case {
        fault: Fault::OldRepoGoneCacheCleaned,
        plan: 0,
        run: 0,
        key: None,
        end: End::RestoredExactly,
    },
    Case {
        fault: Fault::OldRepoGoneFileLost,
        plan: 3,
        run: 3,
        key: Some("backup-impossible:acme-daemon"),
        end: End::Unchanged,
    },
    Case {
        fault: Fault::DebMissingFromPool,
        plan: 0,
        run: 4,
        key: None,
        end: End::RestoredExactly,
    },
    Case {
        fault: Fault::KilledInDpkgThenResume,
        plan: 0,
        run: 0,
        key: None,
        end: End::Moved,
    },
    Case {
        fault: Fault::KilledInDpkgThenRollback,
        plan: 0,
        run: 0,
        key: None,
        end: End::RestoredExactly,
    },
    Case {
        fault: Fault::RunRollbackRunAgain,
        plan: 0,
        run: 0,
        key: None,
        end: End::Moved,
    },
    Case {
        fault: Fault::RepointOnly,
        plan: 0,
        run: 0,
        key: None,
        end: End::SourcesOnly,
    },
];

/// Everything a case's end state is compared on.
#[derive(Debug, PartialEq, Eq)]
struct State {
    system: ferry_testkit::Snapshot,
    /// apt's list files → sha256.
    lists: BTreeMap<String, String>,
    dpkg_status: String,
}

fn state(sys: &Chroot) -> TestResult<State> {
    let mut lists = BTreeMap::new();
    for entry in std::fs::read_dir(sys.host_path("/var/lib/apt/lists"))? {
        let entry = entry?;
        if entry.file_type()?.is_file() && entry.file_name() != "lock" {
            use sha2::Digest;
            let bytes = std::fs::read(entry.path())?;
            lists.insert(
                entry.file_name().to_string_lossy().into_owned(),
                format!("{:x}", sha2::Sha256::digest(bytes)),
            );
        }
    }
    Ok(State {
        system: sys.snapshot()?,
        lists,
        dpkg_status: String::from_utf8_lossy(&sys.read_file("/var/lib/dpkg/status")?).into_owned(),
    })
}

fn differences(before: &State, after: &State, with_status: bool) -> String {
    let mut out = before.system.diff(&after.system);
    for (name, hash) in &before.lists {
        match after.lists.get(name) {
            None => out.push_str(&format!("- list {name}\n")),
            Some(h) if h != hash => out.push_str(&format!("~ list {name}\n")),
            _ => {}
        }
    }
    for name in after
        .lists
        .keys()
        .filter(|n| !before.lists.contains_key(*n))
    {
        out.push_str(&format!("+ list {name}\n"));
    }
    if with_status && before.dpkg_status != after.dpkg_status {
        out.push_str("~ /var/lib/dpkg/status\n");
    }
    out
}

/// The shared organisation-move world with `fault` built into its target
/// repository; a killed run needs an acme-core whose preinst takes a while.
fn world(fault: Fault) -> TestResult<World> {
    let profile = match fault {
        Fault::RepointOnly => Move::RepointOnly,
        _ => Move::Organisation,
    };
    World::build(
        |key| {
            let new = Repo::new("new-org").key(key);
            let new = match fault {
                Fault::TargetSignedByAnotherKey => new.signed_by(&Signer::new("stranger")?),
                Fault::TargetUnsigned => new.unsigned(),
                Fault::TargetOtherOrigin => new.origin("someone-else"),
                // A mirror of the old archive, one update ahead.
                Fault::RepointOnly => {
                    let mut packages = old_packages();
                    packages[0] =
                        deb("acme-sdk", "1.1").conffile("/etc/acme/sdk.conf", "level = 1\n");
                    return Ok(Repo::new("old-org").key(key).packages(packages));
                }
                _ => new,
            };
            let core = match fault {
                Fault::KilledInDpkgThenResume | Fault::KilledInDpkgThenRollback => {
                    new_core().maintainer_script("preinst", "#!/bin/sh\nsleep 4\n")
                }
                _ => new_core(),
            };
            Ok(new.packages(new_packages(core)))
        },
        profile,
    )
}

fn exit_of(outcome: &Outcome) -> i32 {
    outcome.code.unwrap_or(-1)
}

/// The parts of a plan that must be the same when nothing has changed
/// (free space and the root's path are not the system's state).
fn plan_essence(outcome: &Outcome) -> TestResult<serde_json::Value> {
    let mut plan = outcome.stdout_json()?;
    if let Some(p) = plan.get_mut("plan").and_then(|p| p.as_object_mut()) {
        p.remove("space");
    }
    if let Some(findings) = plan
        .pointer_mut("/plan/findings")
        .and_then(|f| f.as_array_mut())
    {
        findings.retain(|f| !f["key"].as_str().unwrap_or("").starts_with("free-space:"));
    }
    Ok(plan)
}

/// Starts `ferry run` and kills its whole process group once dpkg unpacks
/// acme-core (its preinst sleeps), as a power cut would.
fn kill_while_dpkg_unpacks(world: &World) -> TestResult {
    use std::os::unix::process::CommandExt;
    let bin = env!("CARGO_BIN_EXE_ferry");
    let mut child = Command::new(bin)
        .arg("--root")
        .arg(world.sys.path())
        .args(["run", "move.toml", "--yes"])
        .current_dir(world.sys.workdir())
        .process_group(0)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let events = world.sys.host_path("/var/log/ferry/events.jsonl");
    let deadline = Instant::now() + Duration::from_secs(180);
    while !std::fs::read_to_string(&events)
        .unwrap_or_default()
        .contains("Preparing to unpack")
    {
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err("apt never started unpacking".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: signalling the process group this test created.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    let _ = child.wait();
    Ok(())
}

/// Runs one case; returns a line for the results table, or why it failed.
fn run_case(case: &Case) -> TestResult<String> {
    let mut world = world(case.fault)?;
    let before = state(&world.sys)?;
    match case.fault {
        Fault::TargetUnreachable => world.new = None,
        Fault::TargetDownWithStaleLists => {
            // An earlier update fetched the target, then its source went
            // away again; its lists stay on the device.
            let new = world.new.as_ref().ok_or("no target")?;
            world.sys.write_file(
                "/etc/apt/sources.list.d/probe.sources",
                new.sources_entry_signed_by("/etc/apt/keyrings/probe.gpg"),
            )?;
            world.sys.write_file(
                "/etc/apt/keyrings/probe.gpg",
                std::fs::read(world.new_signer.keyring_path())?,
            )?;
            world.sys.run_ok(["apt-get", "update", "-q"])?;
            std::fs::remove_file(world.sys.host_path("/etc/apt/sources.list.d/probe.sources"))?;
            std::fs::remove_file(world.sys.host_path("/etc/apt/keyrings/probe.gpg"))?;
            world.new = None;
        }
        Fault::TargetReleaseMissing => {
            let new = world.new.as_ref().ok_or("no target")?;
            for name in ["InRelease", "Release", "Release.gpg"] {
                std::fs::remove_file(new.layout().root().join("dists/stable").join(name))?;
            }
        }
        Fault::OldRepoGoneCacheCleaned | Fault::OldRepoGoneFileLost => {
            world.sys.run_ok(["apt-get", "clean"])?;
            world.old = None;
            if matches!(case.fault, Fault::OldRepoGoneFileLost) {
                std::fs::remove_file(world.sys.host_path("/usr/share/acme/daemon.txt"))?;
            }
        }
        Fault::DebMissingFromPool => {
            let new = world.new.as_ref().ok_or("no target")?;
            let core = new
                .layout()
                .debs()
                .iter()
                .find(|d| d.to_string_lossy().contains("acme-core"))
                .ok_or("no acme-core in the pool")?
                .clone();
            std::fs::remove_file(core)?;
        }
        _ => {}
    }
    // The state the case's checks compare against: after the fault, before ferry.
    let before = if matches!(
        case.fault,
        Fault::TargetDownWithStaleLists
            | Fault::OldRepoGoneCacheCleaned
            | Fault::OldRepoGoneFileLost
    ) {
        state(&world.sys)?
    } else {
        before
    };

    let plan = world.ferry(&["--json", "plan", "move.toml"]);
    let plan_text = format!("{}{}", plan.stdout, plan.stderr);
    if exit_of(&plan) != case.plan {
        return Err(format!(
            "plan exited {} (expected {}):\n{plan_text}",
            exit_of(&plan),
            case.plan
        )
        .into());
    }
    let mut shown = plan_text.clone();
    let finished = match case.fault {
        Fault::KilledInDpkgThenResume => {
            kill_while_dpkg_unpacks(&world)?;
            world.ferry(&["run", "--resume", "--yes"])
        }
        Fault::KilledInDpkgThenRollback => {
            kill_while_dpkg_unpacks(&world)?;
            world.ferry(&["rollback", "--yes"])
        }
        Fault::RunRollbackRunAgain => {
            let first = world.ferry(&["run", "move.toml", "--yes"]);
            if exit_of(&first) != 0 {
                return Err(format!("first run exited {}:\n{first}", exit_of(&first)).into());
            }
            world.assert_moved()?;
            let moved = state(&world.sys)?;
            let rollback = world.ferry(&["rollback", "--yes"]);
            if exit_of(&rollback) != 0 {
                return Err(format!("rollback exited {}:\n{rollback}", exit_of(&rollback)).into());
            }
            let restored = differences(&before, &state(&world.sys)?, false);
            if !restored.is_empty() {
                return Err(format!("the rollback left differences:\n{restored}").into());
            }
            let again = world.ferry(&["--json", "plan", "move.toml"]);
            if plan_essence(&plan)? != plan_essence(&again)? {
                return Err(format!(
                    "the plan after the rollback differs:\nfirst: {}\nagain: {}",
                    plan.stdout, again.stdout
                )
                .into());
            }
            let second = world.ferry(&["run", "move.toml", "--yes"]);
            let diff = differences(&moved, &state(&world.sys)?, false);
            if !diff.is_empty() {
                return Err(
                    format!("the second run ended elsewhere than the first:\n{diff}").into(),
                );
            }
            second
        }
        _ => world.ferry(&["run", "move.toml", "--yes"]),
    };
    shown.push_str(&format!("{}{}", finished.stdout, finished.stderr));
    if exit_of(&finished) != case.run {
        return Err(format!(
            "the run exited {} (expected {}):\n{finished}",
            exit_of(&finished),
            case.run
        )
        .into());
    }
    if let Some(key) = case.key {
        if !shown.contains(key) {
            return Err(format!("no `{key}` in what ferry printed:\n{shown}").into());
        }
    }
    let after = state(&world.sys)?;
    match case.end {
        End::Unchanged => {
            let diff = differences(&before, &after, true);
            if !diff.is_empty() {
                return Err(format!("the system changed:\n{diff}").into());
            }
        }
        End::RestoredExactly => {
            if case.run == 0 && !matches!(case.fault, Fault::KilledInDpkgThenRollback) {
                // It moved; now back, offline: no repository answers.
                world.assert_moved()?;
                world.old = None;
                world.new = None;
                let rollback = world.ferry(&["rollback", "--yes"]);
                if exit_of(&rollback) != 0 {
                    return Err(format!(
                        "offline rollback exited {}:\n{rollback}",
                        exit_of(&rollback)
                    )
                    .into());
                }
                let manifest = String::from_utf8_lossy(&world.sys.read_file(&format!(
                    "/var/backups/ferry/{}/manifest.json",
                    latest_migration(&world.sys)?
                ))?)
                .into_owned();
                if matches!(case.fault, Fault::OldRepoGoneCacheCleaned)
                    && !manifest.contains("repacked")
                {
                    return Err(
                        format!("the backup did not rebuild the old .debs:\n{manifest}").into(),
                    );
                }
            }
            let diff = differences(&before, &state(&world.sys)?, false);
            if !diff.is_empty() {
                return Err(format!("not restored exactly:\n{diff}").into());
            }
        }
        End::Moved => world.assert_moved()?,
        End::SourcesOnly => {
            let diff = before.system.diff(&after.system);
            let only_sources = diff.lines().all(|l| {
                l.contains("/etc/apt/sources.list.d/acme.sources")
                    || l.contains("/usr/share/keyrings")
                    || l.contains("/etc/apt/preferences.d")
            });
            if !only_sources || before.system.packages != after.system.packages {
                return Err(format!("more than the sources changed:\n{diff}").into());
            }
            let sources = String::from_utf8_lossy(
                &world
                    .sys
                    .read_file("/etc/apt/sources.list.d/acme.sources")?,
            )
            .into_owned();
            if !sources.contains(&world.new_uri) {
                return Err(format!("the source was not re-pointed:\n{sources}").into());
            }
            let transaction = &plan.stdout_json()?["plan"]["transaction"];
            let changes: usize = ["install", "upgrade", "downgrade", "reinstall", "remove"]
                .iter()
                .map(|k| transaction[k].as_array().map_or(0, Vec::len))
                .sum();
            if changes != 0 {
                return Err(format!("the plan changes packages: {transaction}").into());
            }
        }
    }
    let audit = world.sys.run_ok(["dpkg", "--audit"])?;
    if !audit.trim().is_empty() {
        return Err(format!("dpkg --audit: {audit}").into());
    }
    Ok(format!(
        "plan {} run {} {}",
        exit_of(&plan),
        exit_of(&finished),
        case.key.unwrap_or("")
    ))
}

/// The id of the newest migration under the root.
fn latest_migration(sys: &Chroot) -> TestResult<String> {
    let mut ids: Vec<String> = std::fs::read_dir(sys.host_path("/var/lib/ferry"))?
        .flatten()
        .filter(|e| e.path().join("state.json").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    ids.sort();
    ids.pop().ok_or_else(|| "no migration".into())
}

#[test]
fn fault_matrix() {
    skip_unless!(Need::Chroots);
    let only = std::env::var("FERRY_MATRIX_CASE").ok();
    let mut failures = Vec::new();
    println!("{:<28} {:>6}  result", "fault", "time");
    for case in MATRIX {
        let name = format!("{:?}", case.fault);
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        let started = Instant::now();
        let result = run_case(case);
        let seconds = started.elapsed().as_secs_f64();
        match result {
            Ok(line) => println!("{name:<28} {seconds:>5.1}s  ok: {line}"),
            Err(why) => {
                println!("{name:<28} {seconds:>5.1}s  FAILED");
                failures.push(format!("{name}: {why}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
