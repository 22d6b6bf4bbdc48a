//! `ferry plan PROFILE --save FILE` then `ferry run --plan FILE`, on the
//! organisation-move chroot with the real apt and dpkg: the saved plan runs
//! to the same end as `ferry run PROFILE`, and is refused, with nothing
//! changed, when it cannot be read, is of another format, or the system
//! changed since it was saved. A blocked plan is not saved.
//!
//! Needs root, mmdebstrap, apt-utils and gnupg, and a Debian mirror in the
//! host's apt configuration (for the first chroot only; it is cached).

mod org_move;

use std::collections::BTreeMap;

use ferry_apt::Snapshot;
use ferry_testkit::{skip_unless, Chroot, Need};
use org_move::{new_core, TestResult, World, PROFILE};

/// The saved plan's file name, in the directory ferry runs in.
const SAVED: &str = "move.plan.json";

/// Everything a refused run must leave as it was: the files ferry
/// snapshots, and dpkg's status byte for byte.
fn untouched_state(sys: &Chroot) -> TestResult<(Snapshot, Vec<u8>)> {
    Ok((
        Snapshot::capture(&ferry_apt::SystemRoot::open(sys.path())?)?,
        sys.read_file("/var/lib/dpkg/status")?,
    ))
}

/// name:arch -> version of every installed package.
fn installed(sys: &Chroot) -> TestResult<BTreeMap<String, String>> {
    Ok(
        ferry_apt::installed_packages(&ferry_apt::SystemRoot::open(sys.path())?)?
            .into_iter()
            .map(|(key, p)| (key, p.version))
            .collect(),
    )
}

/// No migration was started: `ferry status` has none.
fn assert_no_migration(world: &World) -> TestResult {
    let status = world.ferry(&["--json", "status"]);
    assert!(
        status.stdout_json()?["migration"].is_null(),
        "a refused run started a migration:\n{status}"
    );
    Ok(())
}

#[test]
fn a_saved_plan_that_cannot_be_read_or_no_longer_applies_is_refused_then_runs_once_it_does(
) -> TestResult {
    skip_unless!(Need::Chroots);
    let world = World::new(new_core())?;
    let saved = world.sys.workdir().join(SAVED);

    let plan = world.ferry(&["--json", "plan", PROFILE, "--save", SAVED]);
    plan.success();
    assert_eq!(
        plan.stdout_json()?["blocked"],
        false,
        "--json output as before"
    );
    let text = std::fs::read_to_string(&saved)?;
    let value: serde_json::Value = serde_json::from_str(&text)?;
    assert_eq!(value["format"], 1);
    assert_eq!(value["profile"]["name"], "acme-org-move");
    assert_eq!(
        value["remove"],
        serde_json::json!(["acme-daemon", "acme-legacy"])
    );
    assert!(value["system"]["dpkg_status_sha256"].is_string());

    // A truncated file: where serde_json stopped, file and line.
    let before = untouched_state(&world.sys)?;
    let cut = &text[..text.len() / 2];
    std::fs::write(world.sys.workdir().join("cut.json"), cut)?;
    let run = world.ferry(&["run", "--plan", "cut.json", "--yes"]);
    run.failure(2);
    // The line the text stops on (a cut just after a newline stops on the
    // empty line after it), and always a column.
    let line = cut.matches('\n').count() + 1;
    assert!(
        run.stderr.contains(&format!("cut.json:{line}:")),
        "no file:line in\n{run}"
    );
    assert!(run.stderr.contains("not a saved plan"), "{run}");

    // Another format: refused, naming the file and the format found.
    let mut newer = value.clone();
    newer["format"] = serde_json::json!(99);
    std::fs::write(
        world.sys.workdir().join("newer.json"),
        serde_json::to_vec_pretty(&newer)?,
    )?;
    let run = world.ferry(&["--json", "run", "--plan", "newer.json", "--yes"]);
    run.failure(2);
    let error = &run.stdout_json()?["error"];
    assert!(
        error["message"]
            .as_str()
            .unwrap_or("")
            .contains("format 99"),
        "{run}"
    );
    assert!(
        error["path"].as_str().unwrap_or("").ends_with("newer.json"),
        "{run}"
    );
    assert_eq!(
        untouched_state(&world.sys)?,
        before,
        "refusals change nothing"
    );
    assert_no_migration(&world)?;

    // Made for another root and architecture: refused as not applying.
    let mut elsewhere = value.clone();
    elsewhere["system"]["root"] = serde_json::json!("/srv/elsewhere");
    elsewhere["system"]["architecture"] = serde_json::json!("s390x");
    std::fs::write(
        world.sys.workdir().join("elsewhere.json"),
        serde_json::to_vec_pretty(&elsewhere)?,
    )?;
    let run = world.ferry(&["run", "--plan", "elsewhere.json", "--yes"]);
    run.failure(3);
    assert!(run.stderr.contains("/srv/elsewhere"), "{run}");
    assert!(run.stderr.contains("architecture s390x"), "{run}");
    assert_eq!(untouched_state(&world.sys)?, before, "nothing changed");
    assert_no_migration(&world)?;

    // The sources edited after the plan was saved: refused, nothing changed.
    let sources = "/etc/apt/sources.list.d/acme.sources";
    let original = world.sys.read_file(sources)?;
    let mut edited = original.clone();
    edited.extend_from_slice(b"# edited after the plan was saved\n");
    world.sys.write_file(sources, &edited)?;
    let before = untouched_state(&world.sys)?;
    let run = world.ferry(&["run", "--plan", SAVED, "--yes"]);
    run.failure(3);
    assert!(run.stderr.contains("APT's sources changed"), "{run}");
    assert!(run.stderr.contains(SAVED), "names the plan: {run}");
    assert_eq!(untouched_state(&world.sys)?, before, "nothing changed");
    assert_no_migration(&world)?;

    // The same sources again: the plan applies, and runs to the move's end.
    world.sys.write_file(sources, &original)?;
    let started = std::time::Instant::now();
    world.ferry(&["run", "--plan", SAVED, "--yes"]).success();
    eprintln!("ferry run --plan: {:.1} s", started.elapsed().as_secs_f64());
    world.assert_moved()?;
    assert_eq!(world.sys.run_ok(["dpkg", "--audit"])?, "");
    let status = world.ferry(&["--json", "status"]);
    assert_eq!(status.stdout_json()?["migration"]["outcome"], "succeeded");
    // The run kept the plan it carried out beside its journal, unchanged.
    let id = status.stdout_json()?["migration"]["id"]
        .as_str()
        .ok_or("no migration id")?
        .to_string();
    let kept: serde_json::Value = serde_json::from_slice(
        &world
            .sys
            .read_file(&format!("/var/lib/ferry/{id}/plan.json"))?,
    )?;
    assert_eq!(kept, value, "the run carried out the saved plan");
    Ok(())
}

#[test]
fn a_package_change_after_saving_refuses_the_plan_and_run_profile_ends_where_the_saved_plan_does(
) -> TestResult {
    skip_unless!(Need::Chroots);
    // The same move from a saved plan, on a world of its own.
    let by_plan = World::new(new_core())?;
    by_plan.ferry(&["plan", PROFILE, "--save", SAVED]).success();
    by_plan.ferry(&["run", "--plan", SAVED, "--yes"]).success();
    by_plan.assert_moved()?;

    let world = World::new(new_core())?;
    world.ferry(&["plan", PROFILE, "--save", SAVED]).success();
    // A package removed after the plan was saved.
    world.sys.run_ok(["dpkg", "--remove", "acme-legacy"])?;
    let before = untouched_state(&world.sys)?;
    let run = world.ferry(&["--json", "run", "--plan", SAVED, "--yes"]);
    run.failure(3);
    let message = run.stdout_json()?["error"]["message"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(message.contains("installed packages changed"), "{run}");
    assert_eq!(untouched_state(&world.sys)?, before, "nothing changed");
    assert_no_migration(&world)?;

    // Planned afresh, the profile runs, to the same end as the saved plan.
    world.ferry(&["run", PROFILE, "--yes"]).success();
    world.assert_moved()?;
    assert_eq!(installed(&world.sys)?, installed(&by_plan.sys)?);

    // A blocked plan is not saved: exit 3, no file.
    std::fs::write(
        world.sys.workdir().join("blocked.toml"),
        "schema = 1\nname = \"blocked\"\n\n[packages]\nremove = [\"base-files\"]\n",
    )?;
    let plan = world.ferry(&["plan", "blocked.toml", "--save", "blocked.json"]);
    plan.failure(3);
    assert!(plan.stdout.contains("remove-essential"), "{plan}");
    assert!(!world.sys.workdir().join("blocked.json").exists());
    Ok(())
}
