//! The `ferry` command: parses flags, calls the libraries, renders results
//! for people or as JSON, and maps outcomes to the documented exit codes.
//! Deciding and doing belong to the library crates, not here.

mod cli;
mod commands;
mod exit;
mod progress;
mod render;

use clap::Parser;

fn main() -> std::process::ExitCode {
    // As PID 1 with a takeover staged, ferry is its stage 2 (init
    // re-executed into it); as any other PID 1 (a container), the CLI.
    if std::process::id() == 1 {
        let args: Vec<String> = std::env::args().collect();
        if ferry_takeover::stage2::is_stage2(&args) {
            ferry_takeover::stage2::pid1(&args);
        }
    }
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return render::usage_error(&error, json_asked()).into(),
    };
    let global = cli.global.clone();
    match commands::run(cli) {
        Ok(code) => code.into(),
        Err(failure) => {
            render::failure(&failure, &global);
            failure.exit_code().into()
        }
    }
}

/// Whether `--json` is on the command line (before a `--`), read from the
/// raw arguments: when clap refuses them there is no parsed `Global`, and a
/// script that asked for JSON must still get it.
fn json_asked() -> bool {
    std::env::args_os()
        .skip(1)
        .take_while(|arg| arg != "--")
        .any(|arg| arg == "--json")
}
