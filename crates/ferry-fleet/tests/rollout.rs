//! Rollouts against the real server on loopback, with real agents (in this
//! process) and real OpenPGP keys made by gpg: a group where every fifth
//! device fails halts at the failing wave's gate with the later devices
//! untouched; pause, resume and abort; forged, replayed, expired and
//! foreign commands refused and reported; a success that did not reach the
//! expected version counted as failed; malformed requests answered 4xx.

mod common;

use std::path::PathBuf;

use ferry_fleet::{
    Agent, AgentConfig, ArtifactKind, ArtifactSpec, Assignment, CommandState, Control, DeviceState,
    Expect, Gate, OnFailure, RolloutRequest, RolloutState, RolloutStatus,
};
use ferry_testkit::Signer;

const OPERATOR: &str = "operator-secret-for-rollout-tests";

/// Fails on a device whose root holds etc/fail-me, succeeds elsewhere.
const SCRIPT: &str = "#!/bin/sh\n\
    if [ -e \"$FERRY_ROOT/etc/fail-me\" ]; then echo 'told to fail'; exit 1; fi\n\
    echo \"applied on $FERRY_DEVICE\"\n";

struct Lab {
    dir: tempfile::TempDir,
    server: String,
    signer: Signer,
    agents: Vec<Agent>,
}

impl Lab {
    fn new() -> Lab {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let server = common::start(dir.path(), OPERATOR, 1);
        let signer = Signer::new("fleet-release").expect("a signing key");
        Lab {
            dir,
            server,
            signer,
            agents: Vec::new(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Enrols device `i` with `labels`; `fails` makes its script fail.
    fn enrol(&mut self, i: usize, labels: &[&str], fails: bool) {
        self.enrol_with(i, labels, fails, None);
    }

    /// … with `ferry_exe` as the binary that runs profiles.
    fn enrol_with(&mut self, i: usize, labels: &[&str], fails: bool, ferry_exe: Option<PathBuf>) {
        let root = self.path(&format!("root{i}"));
        std::fs::create_dir_all(root.join("etc")).expect("a root");
        std::fs::write(
            root.join("etc/os-release"),
            "ID=debian\nVERSION_ID=\"12\"\n",
        )
        .expect("os-release");
        if fails {
            std::fs::write(root.join("etc/fail-me"), "").expect("the failure marker");
        }
        let state = self.path(&format!("state{i}"));
        ferry_fleet::enrol(
            &self.server,
            OPERATOR,
            &state,
            Some("debian".into()),
            Some("12".into()),
            labels.iter().map(|l| l.to_string()).collect(),
        )
        .expect("an enrolment");
        let agent = Agent::open(AgentConfig {
            state_dir: state,
            event_log: self.path(&format!("events{i}.jsonl")),
            keyring: Some(self.signer.keyring_path().to_path_buf()),
            root,
            ferry_exe,
            ..AgentConfig::default()
        })
        .expect("the agent opens");
        self.agents.push(agent);
    }

    /// The script and its armored detached signature by `signer`.
    fn signed(&self, signer: &Signer, text: &str) -> (String, String) {
        let script = self.path("artifact.sh");
        let signature = self.path("artifact.sh.asc");
        std::fs::write(&script, text).expect("the script");
        signer
            .detach_sign(&script, &signature)
            .expect("a signature");
        (
            text.to_string(),
            std::fs::read_to_string(&signature).expect("the signature"),
        )
    }

    fn request(&self, group: &str, signer: &Signer, canary: &str, waves: &[f64]) -> RolloutRequest {
        let (content, signature) = self.signed(signer, SCRIPT);
        RolloutRequest {
            name: format!("{group} script"),
            group: group.into(),
            artifact: ArtifactSpec {
                kind: ArtifactKind::Script,
                content: Some(content),
                signature: Some(signature),
                url: None,
                sha256: None,
                signature_url: None,
            },
            canary: canary.into(),
            waves: waves.to_vec(),
            dwell_secs: 0,
            gate: Gate {
                success_percent: 95.0,
                min_finished: None,
            },
            abort: None,
            on_failure: OnFailure::Pause,
            window: None,
            expect: None,
            timeout_secs: Some(30),
            command_ttl_secs: None,
        }
    }

    fn create(&self, request: &RolloutRequest) -> RolloutStatus {
        ferry_fleet::rollout_create(&self.server, OPERATOR, request).expect("the rollout is made")
    }

    fn status(&self, id: &str) -> RolloutStatus {
        ferry_fleet::rollout_status(&self.server, OPERATOR, id).expect("the rollout's status")
    }

    /// Runs every agent's cycle `rounds` times.
    fn cycles(&mut self, rounds: usize) {
        for _ in 0..rounds {
            for agent in &mut self.agents {
                agent.cycle().expect("a cycle");
            }
        }
    }

    /// Cycles until the rollout leaves `active` (at most 10 rounds).
    fn until_halted(&mut self, id: &str) -> RolloutStatus {
        for _ in 0..10 {
            self.cycles(1);
            let status = self.status(id);
            if status.state != RolloutState::Active {
                return status;
            }
        }
        self.status(id)
    }
}

fn device_state<'a>(status: &'a RolloutStatus, device: &str) -> &'a str {
    status
        .devices
        .iter()
        .find(|d| d.device_id == device)
        .map(|d| d.state.as_str())
        .unwrap_or("absent")
}

#[test]
fn a_failing_fifth_halts_the_rollout_at_its_gate_and_later_devices_stay_untouched() {
    let mut lab = Lab::new();
    // Every fifth device (4, 9, 14, …) fails: 10 of 50.
    for i in 0..50 {
        let fails = i % 5 == 4;
        let labels: &[&str] = if fails { &["lab", "fail"] } else { &["lab"] };
        lab.enrol(i, labels, fails);
    }
    let signer = lab.signer.clone();
    let created = lab.create(&lab.request("lab", &signer, "4", &[30.0, 60.0]));
    assert_eq!(created.wave_targets, vec![4, 15, 30, 50]);
    assert_eq!(created.counts.assigned, 4, "only the canary is assigned");
    assert_eq!(created.counts.pending, 46);

    let halted = lab.until_halted(&created.id);
    // The canary (devices 0-3) passed; wave 1 (devices 4-14) has 3 of 11
    // failed, 73% < 95%: paused there.
    assert_eq!(halted.state, RolloutState::Paused, "{halted:#?}");
    assert_eq!(halted.wave, 1);
    let reason = halted.reason.clone().unwrap_or_default();
    assert!(reason.contains("wave 1 failed its gate"), "{reason}");
    assert_eq!(
        (
            halted.counts.succeeded,
            halted.counts.failed,
            halted.counts.pending
        ),
        (12, 3, 35)
    );
    for (i, agent) in lab.agents.iter().enumerate() {
        let state = device_state(&halted, agent.device_id());
        if i >= 15 {
            assert_eq!(state, "pending", "device {i}");
            assert!(agent.commands().is_empty(), "device {i} got a command");
        } else if i % 5 == 4 {
            assert_eq!(state, "failed", "device {i}");
        } else {
            assert_eq!(state, "succeeded", "device {i}");
        }
    }
    let failed = halted
        .devices
        .iter()
        .find(|d| d.state == DeviceState::Failed)
        .expect("a failed device");
    assert!(
        failed
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("told to fail"),
        "{failed:?}"
    );
    assert!(failed.started_at.is_some() && failed.finished_at.is_some());

    // More cycles while paused change nothing.
    lab.cycles(2);
    assert_eq!(lab.status(&created.id).counts, halted.counts);

    // The operator resumes: wave 1 is accepted, wave 2 (devices 15-29)
    // starts and halts again at its own gate.
    let resumed = ferry_fleet::rollout_control(&lab.server, OPERATOR, &created.id, Control::Resume)
        .expect("a resume");
    assert_eq!(resumed.state, RolloutState::Active);
    assert_eq!(resumed.wave, 2);
    let again = lab.until_halted(&created.id);
    assert_eq!(again.state, RolloutState::Paused);
    assert_eq!(again.wave, 2);
    assert_eq!(again.counts.pending, 20);

    // Aborted: nothing more is handed out, the rest stays pending.
    let aborted = ferry_fleet::rollout_control(&lab.server, OPERATOR, &created.id, Control::Abort)
        .expect("an abort");
    assert_eq!(aborted.state, RolloutState::Aborted);
    lab.cycles(1);
    assert_eq!(lab.status(&created.id).counts.pending, 20);
    assert!(
        ferry_fleet::rollout_control(&lab.server, OPERATOR, &created.id, Control::Resume).is_err(),
        "an aborted rollout cannot be resumed"
    );
}

#[test]
fn pause_holds_assigned_devices_and_resume_completes_the_rollout() {
    let mut lab = Lab::new();
    for i in 0..4 {
        lab.enrol(i, &["small"], false);
    }
    let signer = lab.signer.clone();
    let created = lab.create(&lab.request("small", &signer, "1", &[]));
    let id = created.id.clone();
    let paused =
        ferry_fleet::rollout_control(&lab.server, OPERATOR, &id, Control::Pause).expect("a pause");
    assert_eq!(paused.state, RolloutState::Paused);
    lab.cycles(2);
    let held = lab.status(&id);
    assert_eq!(held.counts.assigned, 1, "the canary is held, not run");
    assert!(lab.agents.iter().all(|a| a.commands().is_empty()));
    // Pausing twice is a conflict, not a silent success.
    assert!(ferry_fleet::rollout_control(&lab.server, OPERATOR, &id, Control::Pause).is_err());

    ferry_fleet::rollout_control(&lab.server, OPERATOR, &id, Control::Resume).expect("a resume");
    let done = lab.until_halted(&id);
    assert_eq!(done.state, RolloutState::Completed, "{done:#?}");
    assert_eq!(done.counts.succeeded, 4);
    assert!(lab.agents.iter().all(|a| a
        .commands()
        .values()
        .all(|c| c.state == CommandState::Succeeded && c.reported)));
    let list = ferry_fleet::rollouts(&lab.server, OPERATOR).expect("the list");
    assert_eq!(list.len(), 1);
    assert!(ferry_fleet::rollout_status(&lab.server, OPERATOR, "ro-none").is_err());
}

#[test]
fn forged_replayed_expired_and_foreign_commands_are_refused_and_reported() {
    let mut lab = Lab::new();
    lab.enrol(0, &["forged"], false);
    lab.enrol(1, &["good"], false);
    let forger = Signer::new("forger").expect("another key");
    let forged = lab.create(&lab.request("forged", &forger, "1", &[]));
    lab.cycles(1);
    let status = lab.status(&forged.id);
    let device = &status.devices[0];
    assert_eq!(device.state, DeviceState::Failed, "{device:?}");
    let reason = device.reason.as_deref().unwrap_or("");
    assert!(
        reason.contains("refused by the device: bad signature"),
        "{reason}"
    );
    assert!(
        lab.agents[0]
            .commands()
            .values()
            .all(|c| c.state == CommandState::Refused),
        "the forged artifact did not run"
    );
    // The refusal is an event too, delivered to the server.
    let events =
        ferry_fleet::events(&lab.server, OPERATOR, lab.agents[0].device_id()).expect("the events");
    assert!(
        events.iter().any(|e| e.event["state"] == "FAIL"
            && e.event["msg"]
                .as_str()
                .unwrap_or("")
                .contains("bad signature")),
        "{events:?}"
    );

    let signer = lab.signer.clone();
    let good = lab.create(&lab.request("good", &signer, "1", &[]));
    lab.cycles(1);
    assert_eq!(lab.status(&good.id).state, RolloutState::Completed);
    let (command_id, record) = lab.agents[1]
        .commands()
        .iter()
        .next()
        .map(|(id, r)| (id.clone(), r.clone()))
        .expect("the command it ran");
    assert_eq!(record.state, CommandState::Succeeded);
    let device_id = lab.agents[1].device_id().to_string();
    let command = |id: &str, device: &str, expires: u64| Assignment {
        rollout_id: good.id.clone(),
        command_id: id.to_string(),
        device_id: device.to_string(),
        expires,
        kind: ArtifactKind::Script,
        artifact_url: format!("{}/api/v1/rollouts/{}/artifact", lab.server, good.id),
        sha256: "0".repeat(64),
        signature_url: format!("{}/api/v1/rollouts/{}/signature", lab.server, good.id),
        timeout_secs: 30,
        expect: None,
    };
    // Far in the future, so only the replay makes that refusal.
    let far = 4_000_000_000;
    let agent = &mut lab.agents[1];
    let replay = agent
        .handle(&command(&command_id, &device_id, far))
        .expect("handled");
    assert_eq!(replay.state, CommandState::Refused);
    assert!(replay.reason.unwrap_or_default().contains("replayed"));
    let expired = agent
        .handle(&command("cmd-expired", &device_id, 1))
        .expect("handled");
    assert_eq!(expired.state, CommandState::Refused);
    assert!(expired.reason.unwrap_or_default().contains("expired"));
    let foreign = agent
        .handle(&command("cmd-foreign", "dev-someone-else", far))
        .expect("handled");
    assert!(foreign
        .reason
        .unwrap_or_default()
        .contains("not this device"));
    // The first outcome stands on the server; the refusals are events.
    assert_eq!(device_state(&lab.status(&good.id), &device_id), "succeeded");
    lab.cycles(1);
    let events = ferry_fleet::events(&lab.server, OPERATOR, &device_id).expect("the events");
    let refusals: Vec<&str> = events
        .iter()
        .filter_map(|e| e.event["msg"].as_str())
        .filter(|m| m.starts_with("refused command"))
        .collect();
    assert_eq!(refusals.len(), 3, "{refusals:?}");
}

#[test]
fn a_success_that_did_not_reach_the_expected_version_counts_as_failed() {
    let mut lab = Lab::new();
    lab.enrol(0, &["upgrade"], false);
    let signer = lab.signer.clone();
    let mut request = lab.request("upgrade", &signer, "1", &[]);
    request.expect = Some(Expect {
        os: Some("debian".into()),
        version: Some("13".into()),
    });
    let created = lab.create(&request);
    lab.cycles(1);
    let status = lab.status(&created.id);
    let reason = status.devices[0].reason.as_deref().unwrap_or("");
    assert_eq!(status.devices[0].state, DeviceState::Failed);
    assert!(reason.contains("did not apply"), "{reason}");
}

/// The status and body of a raw request.
fn call(request: ureq::Request, body: &str) -> (u16, String) {
    let response = match request
        .set("Content-Type", "application/json")
        .send_string(body)
    {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("transport error: {e}"),
    };
    let status = response.status();
    (status, response.into_string().unwrap_or_default())
}

#[test]
fn malformed_rollout_requests_are_refused_with_a_4xx() {
    let mut lab = Lab::new();
    lab.enrol(0, &["g"], false);
    let signer = lab.signer.clone();
    let good = serde_json::to_value(lab.request("g", &signer, "1", &[])).expect("JSON");
    let post = |path: &str, token: &str, body: &str| {
        call(
            ureq::post(&format!("{}/api/v1/{path}", lab.server))
                .set("Authorization", &format!("Bearer {token}")),
            body,
        )
    };
    let with = |key: &str, value: serde_json::Value| {
        let mut v = good.clone();
        v[key] = value;
        v.to_string()
    };
    let cases = [
        ("{", 400),
        ("[]", 422),
        (&with("canary", "0".into()), 422),
        (&with("canary", "150%".into()), 422),
        (&with("waves", serde_json::json!([60, 30])), 422),
        (&with("group", "".into()), 422),
        (&with("group", "no spaces".into()), 422),
        (&with("surprise", true.into()), 422),
        (
            &with("gate", serde_json::json!({"success_percent": 101})),
            422,
        ),
        (
            &with(
                "artifact",
                serde_json::json!({"kind": "script", "content": "true"}),
            ),
            422,
        ),
        (
            &with(
                "artifact",
                serde_json::json!({"kind": "binary", "content": "x", "signature": "y"}),
            ),
            422,
        ),
        (
            &with(
                "artifact",
                serde_json::json!({"kind": "script", "url": "file:///etc/passwd",
                                   "sha256": "0", "signature_url": "http://x/s"}),
            ),
            422,
        ),
    ];
    for (body, want) in cases {
        let (status, text) = post("rollouts", OPERATOR, body);
        assert_eq!(status, want, "{body} → {text}");
        assert!(text.contains("\"error\""), "{text}");
    }
    // A device cannot make rollouts; results name commands it has.
    let token = {
        let identity: serde_json::Value = serde_json::from_slice(
            &std::fs::read(lab.path("state0/identity.json")).expect("the identity"),
        )
        .expect("JSON");
        identity["token"].as_str().expect("a token").to_string()
    };
    assert_eq!(post("rollouts", &token, &good.to_string()).0, 403);
    assert_eq!(
        post(
            "results",
            &token,
            r#"{"command_id": "cmd-none", "outcome": "succeeded"}"#
        )
        .0,
        404
    );
    let (status, _) = post("results", &token, r#"{"outcome": 1}"#);
    assert!((400..500).contains(&status), "{status}");
    assert_eq!(post("rollouts/ro-none/pause", OPERATOR, "{}").0, 404);
    assert_eq!(post("rollouts/ro-none/explode", OPERATOR, "{}").0, 404);
    assert_eq!(
        post("devices/dev-none/labels", OPERATOR, r#"{"labels": ["a"]}"#).0,
        404
    );
    // The server is still up and takes a good request.
    assert_eq!(post("rollouts", OPERATOR, &good.to_string()).0, 201);
}

#[test]
fn a_profile_runs_through_the_ferry_binary_with_the_agents_root() {
    let mut lab = Lab::new();
    // A stand-in for the ferry binary that records how it was called.
    let fake = lab.path("fake-ferry");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\necho \"$@\" > {}\n",
            lab.path("called").display()
        ),
    )
    .expect("the stand-in");
    let mut perms = std::fs::metadata(&fake)
        .expect("its metadata")
        .permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&fake, perms).expect("executable");
    lab.enrol_with(0, &["profiled"], false, Some(fake));
    let signer = lab.signer.clone();
    let mut request = lab.request("profiled", &signer, "1", &[]);
    request.artifact.kind = ArtifactKind::Profile;
    let created = lab.create(&request);
    lab.cycles(1);
    assert_eq!(lab.status(&created.id).state, RolloutState::Completed);
    let called = std::fs::read_to_string(lab.path("called")).expect("the binary ran");
    let (command_id, _) = lab.agents[0].commands().iter().next().expect("the command");
    assert_eq!(
        called.trim(),
        format!(
            "run --yes --quiet --root {} {}",
            lab.path("root0").display(),
            lab.path(&format!("state0/artifacts/{command_id}/artifact"))
                .display()
        )
    );
}

#[test]
fn outside_its_window_a_rollout_hands_out_nothing() {
    let mut lab = Lab::new();
    lab.enrol(0, &["night"], false);
    let signer = lab.signer.clone();
    let mut request = lab.request("night", &signer, "1", &[]);
    let hour = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
        / 3600
        % 24) as u8;
    // A window that starts two hours from now and lasts one hour.
    request.window = Some(ferry_fleet::Window {
        start_hour: (hour + 2) % 24,
        end_hour: (hour + 3) % 24,
    });
    let created = lab.create(&request);
    lab.cycles(2);
    let status = lab.status(&created.id);
    assert_eq!(status.counts.assigned, 1, "{status:#?}");
    assert!(lab.agents[0].commands().is_empty());
}

#[test]
fn after_its_dwell_the_next_wave_starts_when_its_devices_poll() {
    let mut lab = Lab::new();
    lab.enrol(0, &["slow"], false);
    lab.enrol(1, &["slow"], false);
    let signer = lab.signer.clone();
    let mut request = lab.request("slow", &signer, "1", &[]);
    request.dwell_secs = 2;
    let created = lab.create(&request);
    lab.cycles(2);
    assert!(
        lab.agents[1].commands().is_empty(),
        "the second wave waits for the dwell"
    );
    std::thread::sleep(std::time::Duration::from_millis(2100));
    // No operator looks: the waiting device's own poll starts its wave.
    lab.cycles(1);
    assert_eq!(lab.agents[1].commands().len(), 1);
    let status = lab.status(&created.id);
    assert_eq!(status.state, RolloutState::Completed, "{status:#?}");
    assert!(status
        .devices
        .iter()
        .all(|d| d.step.as_deref() == Some("done")));
}

#[test]
fn a_run_s_output_is_uploaded_after_its_result_and_operators_read_it() {
    let mut lab = Lab::new();
    lab.enrol(0, &["logged"], false);
    let created = lab.create(&lab.request("logged", &lab.signer, "1", &[]));
    lab.cycles(2);
    let status = lab.status(&created.id);
    assert_eq!(
        status.devices[0].state,
        DeviceState::Succeeded,
        "{status:?}"
    );
    let device = lab.agents[0].device_id().to_string();
    let (command, record) = lab.agents[0]
        .commands()
        .iter()
        .next()
        .map(|(id, r)| (id.clone(), r.clone()))
        .expect("the command the agent ran");
    assert!(record.log_uploaded, "{record:?}");
    let kept = std::fs::read_to_string(lab.path(&format!("state0/logs/{command}.log")))
        .expect("the agent keeps the run's output");
    assert!(kept.contains(&format!("applied on {device}")), "{kept}");
    let logs = ferry_fleet::logs(&lab.server, OPERATOR, &device).expect("the log list");
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert_eq!(logs[0].command_id, command);
    assert_eq!(logs[0].rollout_id, created.id);
    let uploaded = ferry_fleet::log(&lab.server, OPERATOR, &device, &command).expect("the log");
    assert_eq!(uploaded, kept.as_bytes());
}
