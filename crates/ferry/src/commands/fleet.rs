//! `ferry fleet serve | enrol | label | devices | events | status | rollout`
//! and `ferry agent`: flags to ferry-fleet's server, agent and operator
//! client, and their results rendered for people or as JSON. The work is
//! ferry-fleet's.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use ferry_fleet::{
    AbortCriteria, AgentConfig, AgentError, ArtifactKind, ArtifactSpec, ClientTls, Control, Cycle,
    DeviceRecord, Expect, Gate, LogRecord, OnFailure, Remote, RolloutRequest, RolloutStatus,
    ServeConfig, ServerTls, StoredEvent, TlsError, Window,
};
use serde::Serialize;

use crate::cli::{
    AgentArgs, ClientTlsArgs, FleetCommand, Global, OperatorToken, RolloutCommand,
    RolloutCreateArgs, RolloutIdArgs,
};
use crate::exit::Exit;
use crate::render::{self, Failure};

pub fn run(command: FleetCommand, global: &Global) -> Result<Exit, Failure> {
    match command {
        FleetCommand::Serve {
            listen,
            db,
            operator_token_file,
            interval,
            tls_cert,
            tls_key,
            client_ca,
            mqtt,
        } => {
            let tls = match (tls_cert, tls_key) {
                (Some(cert), Some(key)) => Some(ServerTls {
                    cert,
                    key,
                    client_ca,
                }),
                _ => None,
            };
            serve(
                listen,
                db,
                &operator_token_file,
                interval,
                tls,
                mqtt,
                global,
            )
        }
        FleetCommand::Enrol {
            server,
            operator,
            state,
            labels,
        } => enrol(&server, &operator, &state, labels, global),
        FleetCommand::Label {
            device,
            labels,
            server,
            operator,
        } => {
            let answer = ferry_fleet::label(
                &remote(&server, &operator)?,
                &read_token(&operator)?,
                &device,
                &labels,
            )
            .map_err(agent_failure)?;
            render::output(
                &Labelled {
                    device_id: answer.device_id,
                    labels: answer.labels,
                },
                global,
            );
            Ok(Exit::Ok)
        }
        FleetCommand::Rollout(command) => rollout(command, global),
        FleetCommand::Status { server, operator } => {
            let token = read_token(&operator)?;
            let server = remote(&server, &operator)?;
            let devices = ferry_fleet::devices(&server, &token).map_err(agent_failure)?;
            let rollouts = ferry_fleet::rollouts(&server, &token).map_err(agent_failure)?;
            render::output(
                &Overview {
                    devices: devices.len(),
                    rollouts,
                },
                global,
            );
            Ok(Exit::Ok)
        }
        FleetCommand::Devices { server, operator } => {
            let devices =
                ferry_fleet::devices(&remote(&server, &operator)?, &read_token(&operator)?)
                    .map_err(agent_failure)?;
            render::output(&Devices { devices }, global);
            Ok(Exit::Ok)
        }
        FleetCommand::Events {
            device,
            server,
            operator,
        } => {
            let events = ferry_fleet::events(
                &remote(&server, &operator)?,
                &read_token(&operator)?,
                &device,
            )
            .map_err(agent_failure)?;
            render::output(&Events { device, events }, global);
            Ok(Exit::Ok)
        }
        FleetCommand::Logs {
            device,
            command,
            server,
            operator,
        } => {
            let token = read_token(&operator)?;
            let server = remote(&server, &operator)?;
            match command {
                None => {
                    let logs =
                        ferry_fleet::logs(&server, &token, &device).map_err(agent_failure)?;
                    render::output(&Logs { device, logs }, global);
                }
                Some(command) => {
                    let bytes = ferry_fleet::log(&server, &token, &device, &command)
                        .map_err(agent_failure)?;
                    render::output(
                        &Log {
                            device,
                            command,
                            log: String::from_utf8_lossy(&bytes).into_owned(),
                        },
                        global,
                    );
                }
            }
            Ok(Exit::Ok)
        }
    }
}

#[derive(Debug, Serialize)]
struct Logs {
    device: String,
    logs: Vec<LogRecord>,
}

impl fmt::Display for Logs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.logs.is_empty() {
            return writeln!(f, "{} has uploaded no logs", self.device);
        }
        let rows: Vec<Vec<String>> = self
            .logs
            .iter()
            .map(|l| {
                vec![
                    l.command_id.clone(),
                    l.rollout_id.clone(),
                    l.uploaded_at.clone(),
                    l.bytes.to_string(),
                ]
            })
            .collect();
        write!(
            f,
            "{}",
            render::table(&["COMMAND", "ROLLOUT", "UPLOADED", "BYTES"], &rows)
        )
    }
}

/// One run's output: as it is for people, in a JSON string with `--json`.
#[derive(Debug, Serialize)]
struct Log {
    device: String,
    command: String,
    log: String,
}

impl fmt::Display for Log {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.log)
    }
}

fn read_secret(path: &Path) -> Result<String, Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Failure::bad_input(format!("cannot read the operator token: {e}")).at(path, None, None)
    })?;
    let token = text.trim().to_string();
    if token.is_empty() {
        return Err(Failure::bad_input("the operator token file is empty")
            .at(path, None, None)
            .hint(
                "put a long random secret in it, e.g. `head -c 32 /dev/urandom | base64 > FILE`",
            ));
    }
    Ok(token)
}

fn read_token(operator: &OperatorToken) -> Result<String, Failure> {
    read_secret(&operator.operator_token_file)
}

fn client_tls(args: &ClientTlsArgs) -> ClientTls {
    ClientTls {
        ca: args.ca.clone(),
        cert: args.cert.clone(),
        key: args.key.clone(),
    }
}

/// The server at `url` as the operator's flags say to reach it; a bad
/// CA, certificate or key file is an error before any request.
fn remote(url: &str, operator: &OperatorToken) -> Result<Remote, Failure> {
    Remote::new(url, &client_tls(&operator.tls)).map_err(tls_failure)
}

/// A TLS file that cannot be used: bad input (exit 2), located at the file.
fn tls_failure(error: TlsError) -> Failure {
    let path = error.path().map(Path::to_path_buf);
    let failure = Failure::bad_input(error.to_string());
    match path {
        Some(path) => failure.at(&path, None, None),
        None => failure,
    }
}

fn serve(
    listen: std::net::SocketAddr,
    db: PathBuf,
    token_file: &Path,
    interval: u64,
    tls: Option<ServerTls>,
    mqtt: Option<ferry_fleet::BrokerUrl>,
    global: &Global,
) -> Result<Exit, Failure> {
    let operator_token = read_secret(token_file)?;
    let quiet = global.quiet;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let config = ServeConfig {
        listen,
        db,
        operator_token,
        interval_secs: interval,
        tls,
        mqtt,
    };
    // Only returns on failure: the server runs until it is stopped.
    ferry_fleet::serve(config, |addr| {
        // The line a supervisor or a test reads to learn the port.
        if !quiet {
            let mut out = std::io::stdout();
            let _ = writeln!(out, "listening on {scheme}://{addr}");
            let _ = out.flush();
        }
    })
    .map_err(|e| match e {
        ferry_fleet::ServeError::Tls(e) => tls_failure(e),
        ferry_fleet::ServeError::Store(ferry_fleet::StoreError::Newer { .. })
        | ferry_fleet::ServeError::Listen { .. } => Failure::bad_input(e.to_string()),
        _ => Failure::failed(e.to_string()),
    })?;
    Ok(Exit::Ok)
}

#[derive(Debug, Serialize)]
struct Enrolled {
    device_id: String,
    state: PathBuf,
}

impl fmt::Display for Enrolled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "enrolled as {}; identity kept in {}",
            self.device_id,
            self.state.join("identity.json").display()
        )
    }
}

fn enrol(
    server: &str,
    operator: &OperatorToken,
    state: &Path,
    labels: Vec<String>,
    global: &Global,
) -> Result<Exit, Failure> {
    let token = read_token(operator)?;
    let (os, version) = running_os(&global.root);
    let identity = ferry_fleet::enrol(
        &remote(server, operator)?,
        &token,
        state,
        os,
        version,
        labels,
    )
    .map_err(agent_failure)?;
    render::output(
        &Enrolled {
            device_id: identity.device_id,
            state: state.to_path_buf(),
        },
        global,
    );
    Ok(Exit::Ok)
}

/// The OS and version os-release names under `root`, when it can be read.
fn running_os(root: &Path) -> (Option<String>, Option<String>) {
    match ferry_deb::os_release::OsRelease::read(root) {
        Ok(release) => (
            release.id().map(String::from),
            release.version_id().map(String::from),
        ),
        Err(_) => (None, None),
    }
}

fn agent_failure(error: AgentError) -> Failure {
    match error {
        AgentError::Tls(e) => tls_failure(e),
        error => agent_failure_other(error),
    }
}

fn agent_failure_other(error: AgentError) -> Failure {
    match &error {
        AgentError::NotEnrolled(_) => Failure::bad_input(error.to_string())
            .hint("ferry fleet enrol --server URL --operator-token-file FILE --state DIR"),
        AgentError::AlreadyEnrolled(_) | AgentError::Corrupt { .. } => {
            Failure::bad_input(error.to_string())
        }
        AgentError::Refused { status: 401, .. } => Failure::failed(error.to_string())
            .hint("check the token: the operator's file, or the device's identity.json"),
        // The server found the request wrong (a bad rollout, an unknown
        // id, a pause of a paused rollout): the caller's input.
        AgentError::Refused { status, .. } if (400..500).contains(status) => {
            Failure::bad_input(error.to_string())
        }
        _ => Failure::failed(error.to_string()),
    }
}

#[derive(Debug, Serialize)]
struct Devices {
    devices: Vec<DeviceRecord>,
}

impl fmt::Display for Devices {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows: Vec<Vec<String>> = self
            .devices
            .iter()
            .map(|d| {
                vec![
                    d.id.clone(),
                    d.last_seen.clone().unwrap_or_else(|| "never".into()),
                    format!(
                        "{} {}",
                        d.os.as_deref().unwrap_or("-"),
                        d.version.as_deref().unwrap_or("")
                    )
                    .trim_end()
                    .to_string(),
                    d.events.to_string(),
                    d.acked_seq.to_string(),
                ]
            })
            .collect();
        write!(
            f,
            "{}",
            render::table(&["DEVICE", "LAST SEEN", "OS", "EVENTS", "ACKED"], &rows)
        )
    }
}

#[derive(Debug, Serialize)]
struct Events {
    device: String,
    events: Vec<StoredEvent>,
}

impl fmt::Display for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for stored in &self.events {
            let field = |name: &str| {
                stored
                    .event
                    .get(name)
                    .and_then(|v| v.as_str())
                    .unwrap_or("-")
                    .to_string()
            };
            writeln!(
                f,
                "{:>6} {} {} {} {}",
                stored.seq,
                field("ts"),
                field("state"),
                field("step"),
                field("msg")
            )?;
        }
        Ok(())
    }
}

#[derive(Debug, Serialize)]
struct AgentRun {
    device_id: String,
    #[serde(flatten)]
    cycle: Cycle,
}

impl fmt::Display for AgentRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: took {} event(s), delivered {}, {} pending, acknowledged up to seq {}",
            self.device_id,
            self.cycle.taken,
            self.cycle.delivered,
            self.cycle.pending,
            self.cycle.acked_seq
        )?;
        if let Some((command, state)) = &self.cycle.command {
            writeln!(
                f,
                "command {command}: {}",
                format!("{state:?}").to_lowercase()
            )?;
        }
        Ok(())
    }
}

/// `ferry agent`: one cycle with `--once`, else cycles forever, waiting the
/// server's interval with jitter; an unreachable server only delays
/// delivery, the outbox keeps every event meanwhile.
pub fn agent(args: AgentArgs, global: &Global) -> Result<Exit, Failure> {
    let (os, version) = running_os(&global.root);
    let event_log = args
        .events
        .unwrap_or_else(|| global.root.join("var/log/ferry/events.jsonl"));
    let mut agent = ferry_fleet::Agent::open(AgentConfig {
        state_dir: args.state,
        event_log,
        os,
        version,
        server: args.server,
        // Absolute: gpgv reads a keyring name without a slash from its
        // home directory, not from where the agent was started.
        keyring: match args.keyring {
            Some(keyring) => Some(std::path::absolute(&keyring).map_err(|e| {
                Failure::bad_input(format!("cannot resolve the keyring: {e}"))
                    .at(&keyring, None, None)
            })?),
            None => None,
        },
        root: global.root.clone(),
        // Profiles run through this very binary (`ferry run --yes`).
        ferry_exe: None,
        tls: client_tls(&args.tls),
    })
    .map_err(agent_failure)?;
    let mut hints = match &args.mqtt {
        Some(broker) => Some(
            ferry_fleet::HintListener::start(broker, agent.device_id(), ferry_fleet::MIN_HINT_GAP)
                .map_err(|e| Failure::bad_input(e.to_string()))?,
        ),
        None => None,
    };
    loop {
        match agent.cycle() {
            Ok(cycle) => {
                let run = AgentRun {
                    device_id: agent.device_id().to_string(),
                    cycle,
                };
                if args.once {
                    render::output(&run, global);
                    return Ok(Exit::Ok);
                }
                if !global.quiet && (run.cycle.taken > 0 || run.cycle.delivered > 0) {
                    eprint!("{run}");
                }
            }
            Err(error) if error.is_transient() => {
                if args.once {
                    return Err(agent_failure(error).hint(format!(
                        "{} event(s) stay buffered in the outbox and are sent once the server answers",
                        agent.pending()
                    )));
                }
                if !global.quiet {
                    eprintln!(
                        "warning: {error}; {} event(s) buffered, trying again",
                        agent.pending()
                    );
                }
            }
            Err(error) => return Err(agent_failure(error)),
        }
        let deadline = std::time::Instant::now() + agent.next_wait();
        match &mut hints {
            Some(hints) => wait_for_hint(hints, deadline, &agent, global.quiet),
            None => {
                std::thread::sleep(deadline.saturating_duration_since(std::time::Instant::now()))
            }
        }
    }
}

/// Waits out the interval unless a hint comes first; payloads that were
/// not hints become an error event (sent with the next cycle's upload).
fn wait_for_hint(
    hints: &mut ferry_fleet::HintListener,
    deadline: std::time::Instant,
    agent: &ferry_fleet::Agent,
    quiet: bool,
) {
    loop {
        match hints.wait(deadline) {
            ferry_fleet::Wake::Interval => return,
            ferry_fleet::Wake::Hinted(hinted) => {
                if hinted.malformed > 0 {
                    agent.note_bad_hints(hinted.malformed, hinted.error.as_ref());
                }
                if !quiet {
                    eprintln!(
                        "hint: polling now ({} hint(s), {} malformed, since the last poll)",
                        hinted.hints, hinted.malformed
                    );
                }
                return;
            }
            ferry_fleet::Wake::Broker(note) => {
                if !quiet {
                    eprintln!("{note}");
                }
            }
        }
    }
}

#[derive(Debug, Serialize)]
struct Labelled {
    device_id: String,
    labels: Vec<String>,
}

impl fmt::Display for Labelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}: {}", self.device_id, self.labels.join(", "))
    }
}

#[derive(Debug, Serialize)]
struct Overview {
    devices: usize,
    rollouts: Vec<RolloutStatus>,
}

impl fmt::Display for Overview {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} device(s) enrolled", self.devices)?;
        write!(f, "{}", Rollouts(&self.rollouts))
    }
}

struct Rollouts<'a>(&'a [RolloutStatus]);

impl fmt::Display for Rollouts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return writeln!(f, "no rollouts");
        }
        let rows: Vec<Vec<String>> = self
            .0
            .iter()
            .map(|r| {
                vec![
                    r.id.clone(),
                    r.name.clone(),
                    r.group.clone(),
                    format!("{:?}", r.state).to_lowercase(),
                    format!("{}/{}", r.wave, r.waves.saturating_sub(1)),
                    counts(r),
                ]
            })
            .collect();
        write!(
            f,
            "{}",
            render::table(
                &["ROLLOUT", "NAME", "GROUP", "STATE", "WAVE", "DEVICES"],
                &rows
            )
        )
    }
}

fn counts(r: &RolloutStatus) -> String {
    let c = &r.counts;
    format!(
        "{} ok, {} failed, {} running, {} assigned, {} pending",
        c.succeeded, c.failed, c.running, c.assigned, c.pending
    )
}

/// One rollout in detail, for `status ID` and after create/pause/resume/abort.
#[derive(Debug, Serialize)]
#[serde(transparent)]
struct Rollout(RolloutStatus);

impl fmt::Display for Rollout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.0;
        writeln!(
            f,
            "rollout {} ({}) to group {}: {}{}",
            r.id,
            r.name,
            r.group,
            format!("{:?}", r.state).to_lowercase(),
            r.reason
                .as_deref()
                .map(|why| format!(" — {why}"))
                .unwrap_or_default()
        )?;
        let targets: Vec<String> = r.wave_targets.iter().map(u64::to_string).collect();
        writeln!(
            f,
            "wave {} of 0..{} (0 is the canary; devices per wave, cumulative: {})",
            r.wave,
            r.waves.saturating_sub(1),
            targets.join(", ")
        )?;
        writeln!(f, "{}", counts(r))?;
        if !r.devices.is_empty() {
            let rows: Vec<Vec<String>> = r
                .devices
                .iter()
                .map(|d| {
                    vec![
                        d.device_id.clone(),
                        d.state.as_str().to_string(),
                        d.wave.map_or("-".into(), |w| w.to_string()),
                        d.step.clone().unwrap_or_else(|| "-".into()),
                        d.reason.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            write!(
                f,
                "{}",
                render::table(&["DEVICE", "STATE", "WAVE", "STEP", "REASON"], &rows)
            )?;
        }
        Ok(())
    }
}

fn rollout(command: RolloutCommand, global: &Global) -> Result<Exit, Failure> {
    let control = |args: RolloutIdArgs, control: Control| -> Result<Exit, Failure> {
        let status = ferry_fleet::rollout_control(
            &remote(&args.server, &args.operator)?,
            &read_token(&args.operator)?,
            &args.id,
            control,
        )
        .map_err(agent_failure)?;
        render::output(&Rollout(status), global);
        Ok(Exit::Ok)
    };
    match command {
        RolloutCommand::Create(args) => {
            let token = read_token(&args.operator)?;
            let server = remote(&args.server, &args.operator)?;
            let request = rollout_request(*args)?;
            let status =
                ferry_fleet::rollout_create(&server, &token, &request).map_err(agent_failure)?;
            render::output(&Rollout(status), global);
            Ok(Exit::Ok)
        }
        RolloutCommand::Status {
            id: Some(id),
            server,
            operator,
        } => {
            let status = ferry_fleet::rollout_status(
                &remote(&server, &operator)?,
                &read_token(&operator)?,
                &id,
            )
            .map_err(agent_failure)?;
            render::output(&Rollout(status), global);
            Ok(Exit::Ok)
        }
        RolloutCommand::Status {
            id: None,
            server,
            operator,
        } => {
            let rollouts =
                ferry_fleet::rollouts(&remote(&server, &operator)?, &read_token(&operator)?)
                    .map_err(agent_failure)?;
            render::output(&RolloutList { rollouts }, global);
            Ok(Exit::Ok)
        }
        RolloutCommand::Pause(args) => control(args, Control::Pause),
        RolloutCommand::Resume(args) => control(args, Control::Resume),
        RolloutCommand::Abort(args) => control(args, Control::Abort),
    }
}

#[derive(Debug, Serialize)]
struct RolloutList {
    rollouts: Vec<RolloutStatus>,
}

impl fmt::Display for RolloutList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", Rollouts(&self.rollouts))
    }
}

/// The request the flags describe; the artifact and its signature are
/// read here and uploaded as text (the server checks the rest: a 422
/// names what is wrong).
fn rollout_request(args: RolloutCreateArgs) -> Result<RolloutRequest, Failure> {
    let read = |path: &Path, what: &str| {
        std::fs::read_to_string(path).map_err(|e| {
            Failure::bad_input(format!("cannot read the {what}: {e}")).at(path, None, None)
        })
    };
    let content = read(&args.artifact, "artifact")?;
    let signature = read(&args.signature, "signature")?;
    let window = match &args.window {
        Some(text) => {
            let parsed = text
                .split_once('-')
                .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)));
            match parsed {
                Some((start_hour, end_hour)) => Some(Window {
                    start_hour,
                    end_hour,
                }),
                None => {
                    return Err(Failure::bad_input(format!(
                        "--window {text:?} is not START-END in UTC hours, e.g. 2-5"
                    )))
                }
            }
        }
        None => None,
    };
    let abort =
        (args.abort_failures.is_some() || args.abort_percent.is_some()).then_some(AbortCriteria {
            failures: args.abort_failures,
            failure_percent: args.abort_percent,
            min_finished: args.abort_min,
        });
    let expect = (args.expect_os.is_some() || args.expect_version.is_some()).then(|| Expect {
        os: args.expect_os.clone(),
        version: args.expect_version.clone(),
    });
    let name = args.name.clone().unwrap_or_else(|| {
        args.artifact
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "rollout".into())
    });
    Ok(RolloutRequest {
        name,
        group: args.group,
        artifact: ArtifactSpec {
            kind: if args.kind == "script" {
                ArtifactKind::Script
            } else {
                ArtifactKind::Profile
            },
            content: Some(content),
            signature: Some(signature),
            url: None,
            sha256: None,
            signature_url: None,
        },
        canary: args.canary,
        waves: args.waves,
        dwell_secs: args.dwell,
        gate: Gate {
            success_percent: args.gate_success,
            min_finished: args.gate_min,
        },
        abort,
        on_failure: if args.on_failure == "abort" {
            OnFailure::Abort
        } else {
            OnFailure::Pause
        },
        window,
        expect,
        timeout_secs: args.timeout,
        command_ttl_secs: args.command_ttl,
    })
}
