//! An organisation move rolled out to real devices: the real `ferry fleet
//! serve`, the real `ferry agent` on three real minbase chroots that run
//! the old organisation's packages from its signed repository, and one
//! signed migration profile (the move to the new organisation's signed
//! repository) in a canary and a second wave. The canary moves; in the
//! second wave one device is SIGKILLed, agent and run together, while dpkg
//! runs a package's preinst, and its restarted agent resumes the journal
//! to the end, dpkg clean; the other finds the target repository gone and
//! fails with nothing changed, and the wave's gate counts it. Every event
//! the runs and the agents wrote under each root reaches the server
//! exactly once.
//!
//! Needs root, mmdebstrap, gpg and gpgv, and a Debian mirror in the host's
//! apt configuration (for the first chroot only; it is cached).

// The server start is shared; its other helpers serve other targets.
#[allow(dead_code)]
mod fleet_common;
mod org_move;

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ferry_testkit::{skip_unless, Chroot, Need, Repo, ServedRepo, Signer};
use fleet_common::{text, FERRY};
use org_move::{new_core, new_packages, old_packages, TestResult};

/// Inside a device: while it exists, acme-core's preinst removes it and
/// then sleeps, so the test can kill the run while dpkg installs it; the
/// run resumed afterwards does not wait again.
const SLOW_ONCE: &str = "/etc/acme-slow-once";

/// Where the profile installs the new organisation's key: armored, because
/// the profile carries it inline (a device receives the profile alone).
const NEW_KEY: &str = "/usr/share/keyrings/new-org.asc";

/// The move as the fleet ships it: the profile of `tests/org_move` with
/// the key inline instead of in a file beside it.
fn profile(old_uri: &str, new_uri: &str, new_key: &str) -> String {
    format!(
        r#"schema = 1
name = "acme-org-move"
description = "ACME devices move from old-org to new-org"

[[sources]]
match = {{ uri = "{old_uri}" }}
set = {{ uri = "{new_uri}", signed_by = "{NEW_KEY}" }}
expect_release = {{ origin = "new-org" }}

[[keys]]
install_to = "{NEW_KEY}"
armored = """
{new_key}"""

[packages]
replace = [{{ from = "acme-daemon", to = "acme-core" }}]
remove = ["acme-legacy"]
upgrade = "full"

[verify]
packages = [{{ name = "acme-sdk", version = ">= 1.1" }}, {{ name = "acme-core", version = "= 2.0" }}]
"#
    )
}

/// One enrolled device: a chroot on the old organisation's repository,
/// its agent's state dir and the id the server gave it.
struct Device {
    sys: Chroot,
    state: PathBuf,
    id: String,
}

impl Device {
    /// A chroot with the old organisation's packages installed from its
    /// signed repository, its own machine-id (the device name in the
    /// journal's events) and the admin's edit of sdk.conf.
    fn install(old: &ServedRepo, n: usize) -> TestResult<Chroot> {
        let sys = Chroot::minbase("bookworm")?.with_ferry_bin(FERRY);
        sys.write_file("/etc/machine-id", format!("{:032x}\n", 0xac3e_0000 + n))?;
        // Only the test's repositories: the device never needs the network.
        sys.write_file("/etc/apt/sources.list", "")?;
        sys.write_file(
            "/usr/share/keyrings/old-org.gpg",
            std::fs::read(old.keyring_path())?,
        )?;
        sys.write_file(
            "/etc/apt/sources.list.d/acme.sources",
            format!(
                "# ACME device packages\n{}",
                old.sources_entry_signed_by("/usr/share/keyrings/old-org.gpg")
            ),
        )?;
        sys.run_ok(["apt-get", "update", "-q"])?;
        sys.run_ok([
            "apt-get",
            "install",
            "-y",
            "-q",
            "acme-sdk",
            "acme-daemon",
            "acme-legacy",
        ])?;
        sys.write_file("/etc/acme/sdk.conf", "level = 7 # tuned on site\n")?;
        Ok(sys)
    }

    /// The events the device's runs and its agent wrote, in order: the
    /// log the agent forwards by default (`var/log/ferry/events.jsonl`
    /// under its root).
    fn logged_events(&self) -> TestResult<Vec<serde_json::Value>> {
        let text = String::from_utf8_lossy(&self.sys.read_file("/var/log/ferry/events.jsonl")?)
            .into_owned();
        Ok(text
            .lines()
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()?)
    }

    /// The move is done as the profile says, the journal says so, and
    /// dpkg has nothing half-done.
    fn assert_moved(&self, new_uri: &str) -> TestResult {
        let sys = &self.sys;
        assert_eq!(sys.installed("acme-sdk")?.as_deref(), Some("1.1"));
        assert_eq!(sys.installed("acme-core")?.as_deref(), Some("2.0"));
        assert_eq!(sys.installed("acme-daemon")?, None);
        assert_eq!(sys.installed("acme-legacy")?, None);
        let sources =
            String::from_utf8_lossy(&sys.read_file("/etc/apt/sources.list.d/acme.sources")?)
                .into_owned();
        assert!(sources.contains(&format!("URIs: {new_uri}")), "{sources}");
        assert!(
            sources.contains(&format!("Signed-By: {NEW_KEY}")),
            "{sources}"
        );
        assert_eq!(
            sys.read_file("/etc/acme/sdk.conf")?,
            b"level = 7 # tuned on site\n",
            "the admin's edit is kept"
        );
        assert_eq!(sys.run_ok(["dpkg", "--audit"])?, "");
        Ok(())
    }

    /// `ferry status --json` of the device: its latest migration.
    fn migration(&self) -> TestResult<serde_json::Value> {
        let status = self.sys.ferry(["--json", "status"]);
        status.success();
        Ok(status.stdout_json()?["migration"].clone())
    }
}

/// The test's fleet: its directory (operator token, database, the signed
/// profile, the agents' state dirs), the release key and the server.
struct Lab {
    dir: tempfile::TempDir,
    release: Signer,
    server: fleet_common::Server,
}

impl Lab {
    fn new() -> TestResult<Lab> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("operator.token"), "org-move-operator\n")?;
        let release = Signer::new("fleet-release")?;
        let server = fleet_common::serve(dir.path(), "127.0.0.1:0");
        Ok(Lab {
            dir,
            release,
            server,
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn token_file(&self) -> String {
        self.path("operator.token").display().to_string()
    }

    /// `ferry fleet ARGS --json` against the server, as the operator.
    fn fleet_json(&self, args: &[&str]) -> TestResult<serde_json::Value> {
        let output = Command::new(FERRY)
            .arg("fleet")
            .args(args)
            .args(["--json", "--server", &self.server.url])
            .args(["--operator-token-file", &self.token_file()])
            .output()?;
        assert!(output.status.success(), "{args:?}: {}", text(&output));
        Ok(serde_json::from_slice(&output.stdout)?)
    }

    /// Enrols the chroot in `group` with a state dir of its own.
    fn enrol(&self, sys: Chroot, n: usize, group: &str) -> TestResult<Device> {
        let state = self.path(&format!("state{n}"));
        let output = Command::new(FERRY)
            .args(["fleet", "enrol", "--json", "--server", &self.server.url])
            .args(["--operator-token-file", &self.token_file()])
            .args(["--label", group])
            .arg("--state")
            .arg(&state)
            .arg("--root")
            .arg(sys.path())
            .output()?;
        assert!(output.status.success(), "{}", text(&output));
        let answer: serde_json::Value = serde_json::from_slice(&output.stdout)?;
        let id = answer["device_id"]
            .as_str()
            .ok_or("no device id")?
            .to_string();
        Ok(Device { sys, state, id })
    }

    /// `ferry --root ROOT agent --once` for `device`, trusting the release
    /// key, with the event log left at its default (the journal's, under
    /// the root).
    fn agent(&self, device: &Device) -> Command {
        let mut command = Command::new(FERRY);
        command
            .current_dir(self.dir.path())
            .arg("--root")
            .arg(device.sys.path())
            .args(["agent", "--once", "--json", "--quiet"])
            .arg("--state")
            .arg(&device.state)
            .arg("--keyring")
            .arg(self.release.keyring_path());
        command
    }

    /// One agent cycle to its end: its JSON, the command it handled.
    fn agent_once(&self, device: &Device) -> TestResult<serde_json::Value> {
        let output: Output = self.agent(device).output()?;
        assert!(output.status.success(), "{}", text(&output));
        Ok(serde_json::from_slice(&output.stdout)?)
    }

    /// Every event the server stored for `device`, in seq order.
    fn events(&self, device: &Device) -> TestResult<Vec<(u64, serde_json::Value)>> {
        let answer = self.fleet_json(&["events", &device.id])?;
        Ok(answer["events"]
            .as_array()
            .ok_or("no events")?
            .iter()
            .map(|e| (e["seq"].as_u64().unwrap_or(0), e["event"].clone()))
            .collect())
    }
}

/// `pid` and every process below it (children, theirs, …), from /proc.
fn process_tree(pid: u32) -> Vec<i32> {
    let mut parent_of = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // After the command name, which may hold spaces and parentheses:
        // the state, then the parent's pid.
        let parent = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<i32>().ok());
        if let Some(parent) = parent {
            parent_of.push((child, parent));
        }
    }
    let mut tree = vec![pid as i32];
    let mut next = 0;
    while next < tree.len() {
        let parent = tree[next];
        tree.extend(
            parent_of
                .iter()
                .filter(|(_, p)| *p == parent)
                .map(|(c, _)| *c),
        );
        next += 1;
    }
    tree
}

/// SIGKILLs the agent and everything it started (`ferry run` runs in a
/// process group of its own, apt and dpkg below it), as a power cut
/// would: all are stopped first, so none can start or reap another while
/// the rest die.
fn power_cut(agent: &mut Child) -> Vec<i32> {
    let tree = process_tree(agent.id());
    for pid in &tree {
        // SAFETY: signalling processes this test started (the agent and
        // its descendants); kill has no memory effects.
        unsafe { libc::kill(*pid, libc::SIGSTOP) };
    }
    // Whatever was forked between the scan and the stop.
    let tree = process_tree(agent.id());
    for pid in &tree {
        // SAFETY: as above.
        unsafe { libc::kill(*pid, libc::SIGKILL) };
    }
    let _ = agent.wait();
    tree
}

/// The rollout's devices by id: (state, reason).
fn device_states(status: &serde_json::Value) -> BTreeMap<String, (String, String)> {
    status["devices"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            (
                d["device_id"].as_str().unwrap_or("").to_string(),
                (
                    d["state"].as_str().unwrap_or("").to_string(),
                    d["reason"].as_str().unwrap_or("").to_string(),
                ),
            )
        })
        .collect()
}

/// The state an agent cycle's command ended in (`succeeded`, `failed`, …).
fn command_state(cycle: &serde_json::Value) -> &str {
    cycle["command"][1].as_str().unwrap_or("none")
}

/// Every line of the device's event log is on the server exactly once,
/// in the order written, under seqs 1, 2, 3, …; returns how many.
fn assert_delivered_once(lab: &Lab, device: &Device) -> TestResult<usize> {
    let logged = device.logged_events()?;
    let stored = lab.events(device)?;
    let seqs: Vec<u64> = stored.iter().map(|(s, _)| *s).collect();
    let expected: Vec<u64> = (1..=logged.len() as u64).collect();
    assert_eq!(seqs, expected, "device {}: seqs", device.id);
    let events: Vec<serde_json::Value> = stored.into_iter().map(|(_, e)| e).collect();
    assert!(
        events == logged,
        "device {}: the server holds\n{events:#?}\nthe log\n{logged:#?}",
        device.id
    );
    Ok(logged.len())
}

/// How many of `events` are in `state`, written by `function`.
fn count(events: &[serde_json::Value], function: &str, state: &str) -> usize {
    events
        .iter()
        .filter(|e| e["function"] == function && e["state"] == state)
        .count()
}

#[test]
fn an_org_move_rolls_out_to_chroots_resumes_after_a_kill_and_counts_a_failure() -> TestResult {
    skip_unless!(Need::Chroots, Need::Tool("gpgv"));
    let started = Instant::now();
    let old = Repo::new("old-org").packages(old_packages()).serve()?;
    let new_signer = Signer::new("new-org")?;
    let core = new_core().maintainer_script(
        "preinst",
        format!("#!/bin/sh\nif [ -e {SLOW_ONCE} ]; then rm -f {SLOW_ONCE}; sleep 120; fi\n"),
    );
    let new = Repo::new("new-org")
        .key(&new_signer)
        .packages(new_packages(core))
        .serve()?;
    let new_uri = new.uri();

    let lab = Lab::new()?;
    let artifact = lab.path("move.toml");
    std::fs::write(
        &artifact,
        profile(&old.uri(), &new_uri, new_signer.armored_key()),
    )?;
    let signature = lab.path("move.toml.asc");
    lab.release.detach_sign(&artifact, &signature)?;

    // Three devices on the old organisation, made side by side.
    let systems = std::thread::scope(|scope| {
        let old = &old;
        let makers: Vec<_> = (0..3)
            .map(|n| scope.spawn(move || Device::install(old, n).map_err(|e| e.to_string())))
            .collect();
        makers
            .into_iter()
            .map(|m| {
                m.join()
                    .unwrap_or_else(|_| Err("a setup thread panicked".into()))
            })
            .collect::<Result<Vec<Chroot>, String>>()
    })?;
    eprintln!(
        "three devices ready: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let devices = systems
        .into_iter()
        .enumerate()
        .map(|(n, sys)| lab.enrol(sys, n, "acme"))
        .collect::<TestResult<Vec<Device>>>()?;
    let (canary, killed, failing) = (&devices[0], &devices[1], &devices[2]);

    let created = lab.fleet_json(&[
        "rollout",
        "create",
        "--group",
        "acme",
        "--kind",
        "profile",
        "--artifact",
        &artifact.display().to_string(),
        "--signature",
        &signature.display().to_string(),
        "--canary",
        "1",
        "--expect-os",
        "debian",
        "--expect-version",
        "12",
    ])?;
    let id = created["id"].as_str().ok_or("no rollout id")?.to_string();
    assert_eq!(created["wave_targets"], serde_json::json!([1, 3]));

    // The canary alone has a command; the others wait for its result.
    let idle = lab.agent_once(killed)?;
    assert_eq!(command_state(&idle), "none", "{idle:#}");
    let cycle = lab.agent_once(canary)?;
    assert_eq!(command_state(&cycle), "succeeded", "{cycle:#}");
    canary.assert_moved(&new_uri)?;
    assert_eq!(canary.migration()?["outcome"], "succeeded");
    let status = lab.fleet_json(&["rollout", "status", &id])?;
    assert_eq!(status["state"], "active", "{status:#}");
    assert_eq!(status["wave"], 1, "the canary passed its gate: {status:#}");
    eprintln!("canary moved: {:.1} s", started.elapsed().as_secs_f64());

    // Wave 1: the agent and its run are killed while dpkg runs
    // acme-core's preinst.
    killed.sys.write_file(SLOW_ONCE, "")?;
    let mut agent = lab
        .agent(killed)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(300);
    while killed.sys.host_path(SLOW_ONCE).exists() {
        if let Some(status) = agent.try_wait()? {
            return Err(
                format!("the agent ended ({status}) before dpkg unpacked acme-core").into(),
            );
        }
        if Instant::now() > deadline {
            power_cut(&mut agent);
            return Err("dpkg never reached acme-core's preinst".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let victims = power_cut(&mut agent);
    assert!(victims.len() > 2, "the agent and its run: {victims:?}");
    assert_eq!(
        killed.migration()?["outcome"],
        "in-progress",
        "killed in the middle"
    );
    let audit = killed.sys.run(["dpkg", "--audit"]);
    assert!(
        audit.stdout.contains("acme-core"),
        "dpkg was left half-way through acme-core:\n{audit}"
    );
    let status = lab.fleet_json(&["rollout", "status", &id])?;
    assert_eq!(
        device_states(&status)[&killed.id].0,
        "running",
        "{status:#}"
    );

    // Restarted, the agent takes the same command again and the run
    // resumes from its journal.
    let cycle = lab.agent_once(killed)?;
    assert_eq!(
        command_state(&cycle),
        "succeeded",
        "{cycle:#}\n{:#?}",
        device_states(&lab.fleet_json(&["rollout", "status", &id])?)[&killed.id]
    );
    killed.assert_moved(&new_uri)?;
    let migration = killed.migration()?;
    assert_eq!(migration["outcome"], "succeeded", "{migration:#}");
    assert_eq!(
        migration["drivers"].as_array().map(Vec::len),
        Some(2),
        "the first run and the resumed one drove the journal: {migration:#}"
    );
    eprintln!(
        "killed device resumed: {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Wave 1's other device finds the target repository gone: its run
    // fails before changing anything.
    drop(new);
    let before = failing.sys.snapshot()?;
    let dpkg_status = failing.sys.read_file("/var/lib/dpkg/status")?;
    let failed_cycle = lab.agent_once(failing)?;
    assert_eq!(command_state(&failed_cycle), "failed", "{failed_cycle:#}");
    failing.sys.snapshot()?.assert_unchanged_from(&before);
    assert_eq!(failing.sys.read_file("/var/lib/dpkg/status")?, dpkg_status);
    assert_eq!(
        failing.sys.installed("acme-daemon")?.as_deref(),
        Some("1.0")
    );
    assert_eq!(failing.sys.run_ok(["dpkg", "--audit"])?, "");

    // The server: two moved, one failed and counted at wave 1's gate.
    let status = lab.fleet_json(&["rollout", "status", &id])?;
    let states = device_states(&status);
    assert_eq!(states[&canary.id].0, "succeeded", "{status:#}");
    assert_eq!(states[&killed.id].0, "succeeded", "{status:#}");
    let (state, reason) = &states[&failing.id];
    assert_eq!(state, "failed", "{status:#}");
    // The blocked plan's exit code, as the device said; its finding is in
    // the run's output the agent keeps.
    assert!(
        reason.contains("exit status: 3") && reason.contains("nothing was changed"),
        "{reason}"
    );
    let command = failed_cycle["command"][0].as_str().ok_or("no command")?;
    let output =
        std::fs::read_to_string(failing.state.join("logs").join(format!("{command}.log")))?;
    assert!(output.contains("target-unreachable:"), "{output}");
    assert_eq!(status["state"], "paused", "{status:#}");
    assert!(
        status["reason"].as_str().unwrap_or("").contains("gate"),
        "{status:#}"
    );
    let counts = &status["counts"];
    assert_eq!(
        (&counts["succeeded"], &counts["failed"], &counts["pending"]),
        (&2.into(), &1.into(), &0.into()),
        "{status:#}"
    );
    let listed = lab.fleet_json(&["devices"])?;
    for device in listed["devices"].as_array().ok_or("no devices")? {
        assert_eq!(
            (&device["os"], &device["version"]),
            (&"debian".into(), &"12".into()),
            "the running OS: {device:#}"
        );
    }

    // Every event each device's runs and agent wrote reached the server
    // once: the killed device's from before the kill and after it too.
    for device in &devices {
        let n = assert_delivered_once(&lab, device)?;
        eprintln!("device {}: {n} events delivered once", device.id);
    }
    let killed_events = killed.logged_events()?;
    assert_eq!(count(&killed_events, "run", "SUCCESS"), 1);
    assert_eq!(count(&killed_events, "agent", "SUCCESS"), 1);
    let failing_events = failing.logged_events()?;
    assert_eq!(count(&failing_events, "agent", "FAIL"), 1);
    assert_eq!(count(&failing_events, "run", "SUCCESS"), 0);
    // Why nothing ran is in the device's events, so on the server too.
    assert_eq!(count(&failing_events, "run", "FAIL"), 1);
    assert!(
        failing_events.iter().any(|e| e["msg"]
            .as_str()
            .unwrap_or("")
            .contains("target-unreachable:")),
        "{failing_events:#?}"
    );
    eprintln!("fleet org move: {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
