//! The `ferry` command: parses flags, calls the libraries, renders results
//! for people or as JSON, and maps outcomes to the documented exit codes.
//! Deciding and doing belong to the library crates, not here.

mod cli;
mod commands;
mod exit;
mod render;

use clap::Parser;

fn main() -> std::process::ExitCode {
    // As PID 1, ferry is stage 2 of a takeover (init re-executed into it).
    if std::process::id() == 1 {
        let args: Vec<String> = std::env::args().collect();
        ferry_takeover::stage2::pid1(&args);
    }
    let cli = cli::Cli::parse();
    let global = cli.global.clone();
    match commands::run(cli) {
        Ok(code) => code.into(),
        Err(failure) => {
            render::failure(&failure, &global);
            failure.exit_code().into()
        }
    }
}
