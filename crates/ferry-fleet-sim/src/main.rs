//! `ferry-fleet-sim`: flags to the simulator, its report as `key=value`
//! lines (for bench/fleet-scale.sh) and each device's sent seqs as CSV.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use ferry_fleet_sim::{RolloutPlan, SimConfig};

/// Simulates many fleet agents in one process against a running server.
#[derive(Debug, Parser)]
#[command(name = "ferry-fleet-sim")]
struct Args {
    /// The server's URL, http://ADDR:PORT
    #[arg(long)]
    server: String,
    /// A file holding the operator token
    #[arg(long)]
    operator_token_file: PathBuf,
    #[arg(long, default_value_t = 100)]
    agents: usize,
    /// Seconds the agents poll after enrolling
    #[arg(long, default_value_t = 60)]
    duration_secs: u64,
    #[arg(long, default_value_t = 5)]
    events_per_poll: usize,
    /// Percent of rollout commands reported failed
    #[arg(long, default_value_t = 10.0)]
    fail_percent: f64,
    #[arg(long, default_value_t = 64)]
    enrol_concurrency: usize,
    /// Seconds after enrolment that the rollout is made (none when absent)
    #[arg(long)]
    rollout_after_secs: Option<u64>,
    /// The rollout's first wave
    #[arg(long, default_value = "10%")]
    canary: String,
    /// Failed devices that halt the rollout
    #[arg(long, default_value_t = 50)]
    abort_failures: u64,
    /// Writes `device_id,highest_seq_sent` lines here
    #[arg(long)]
    sent_csv: Option<PathBuf>,
    #[arg(long, default_value_t = 17)]
    seed: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let token = match std::fs::read_to_string(&args.operator_token_file) {
        Ok(t) => t.trim().to_string(),
        Err(e) => {
            eprintln!(
                "error: cannot read {}: {e}",
                args.operator_token_file.display()
            );
            return ExitCode::from(2);
        }
    };
    let config = SimConfig {
        server: args.server,
        operator_token: token,
        agents: args.agents,
        duration: Duration::from_secs(args.duration_secs),
        events_per_poll: args.events_per_poll,
        fail_fraction: args.fail_percent / 100.0,
        enrol_concurrency: args.enrol_concurrency,
        rollout: args.rollout_after_secs.map(|after| RolloutPlan {
            after: Duration::from_secs(after),
            canary: args.canary,
            abort_failures: args.abort_failures,
        }),
        seed: args.seed,
    };
    let report = match ferry_fleet_sim::run_blocking(config) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(path) = &args.sent_csv {
        let text: String = report
            .sent
            .iter()
            .map(|(id, seq)| format!("{id},{seq}\n"))
            .collect();
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    let mut lines = Vec::new();
    if let Ok(serde_json::Value::Object(map)) = serde_json::to_value(&report) {
        for (key, value) in map {
            match value {
                serde_json::Value::Object(inner) => {
                    for (k, v) in inner {
                        lines.push(format!("{key}_{k}={v}"));
                    }
                }
                v => lines.push(format!("{key}={v}")),
            }
        }
    }
    let mut out = std::io::stdout();
    for line in lines {
        if writeln!(out, "{line}").is_err() {
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
