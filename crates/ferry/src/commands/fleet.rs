//! `ferry fleet serve | enrol | devices | events` and `ferry agent`: flags
//! to ferry-fleet's server, agent and operator client, and their results
//! rendered for people or as JSON. The work is ferry-fleet's.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use ferry_fleet::{AgentConfig, AgentError, Cycle, DeviceRecord, ServeConfig, StoredEvent};
use serde::Serialize;

use crate::cli::{AgentArgs, FleetCommand, Global, OperatorToken};
use crate::exit::Exit;
use crate::render::{self, Failure};

pub fn run(command: FleetCommand, global: &Global) -> Result<Exit, Failure> {
    match command {
        FleetCommand::Serve {
            listen,
            db,
            operator_token_file,
            interval,
        } => serve(listen, db, &operator_token_file, interval, global),
        FleetCommand::Enrol {
            server,
            operator,
            state,
        } => enrol(&server, &operator, &state, global),
        FleetCommand::Devices { server, operator } => {
            let devices =
                ferry_fleet::devices(&server, &read_token(&operator)?).map_err(agent_failure)?;
            render::output(&Devices { devices }, global);
            Ok(Exit::Ok)
        }
        FleetCommand::Events {
            device,
            server,
            operator,
        } => {
            let events = ferry_fleet::events(&server, &read_token(&operator)?, &device)
                .map_err(agent_failure)?;
            render::output(&Events { device, events }, global);
            Ok(Exit::Ok)
        }
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

fn serve(
    listen: std::net::SocketAddr,
    db: PathBuf,
    token_file: &Path,
    interval: u64,
    global: &Global,
) -> Result<Exit, Failure> {
    let operator_token = read_secret(token_file)?;
    let quiet = global.quiet;
    let config = ServeConfig {
        listen,
        db,
        operator_token,
        interval_secs: interval,
    };
    // Only returns on failure: the server runs until it is stopped.
    ferry_fleet::serve(config, |addr| {
        // The line a supervisor or a test reads to learn the port.
        if !quiet {
            let mut out = std::io::stdout();
            let _ = writeln!(out, "listening on http://{addr}");
            let _ = out.flush();
        }
    })
    .map_err(|e| match e {
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
    global: &Global,
) -> Result<Exit, Failure> {
    let token = read_token(operator)?;
    let (os, version) = running_os(&global.root);
    let identity = ferry_fleet::enrol(server, &token, state, os, version).map_err(agent_failure)?;
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
    match &error {
        AgentError::NotEnrolled(_) => Failure::bad_input(error.to_string())
            .hint("ferry fleet enrol --server URL --operator-token-file FILE --state DIR"),
        AgentError::AlreadyEnrolled(_) | AgentError::Corrupt { .. } => {
            Failure::bad_input(error.to_string())
        }
        AgentError::Refused { status: 401, .. } => Failure::failed(error.to_string())
            .hint("check the token: the operator's file, or the device's identity.json"),
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
        )
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
    })
    .map_err(agent_failure)?;
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
        std::thread::sleep(agent.next_wait());
    }
}
