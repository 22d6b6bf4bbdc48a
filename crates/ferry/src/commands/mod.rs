//! One module per subcommand; each returns an exit code or a `Failure`.

mod archive;
mod check;
mod generate;
mod migrate;
mod release;
mod sources;
mod version;

use crate::cli::{Cli, Command};
use crate::exit::Exit;
use crate::render::Failure;

pub fn run(cli: Cli) -> Result<Exit, Failure> {
    match cli.command {
        Command::Version(command) => version::run(command, &cli.global),
        Command::Sources(command) => sources::run(command, &cli.global),
        Command::Check(args) => check::run(args, &cli.global),
        Command::Plan(args) => migrate::plan(args, &cli.global),
        Command::Run(args) => migrate::run(args, &cli.global),
        Command::Status => migrate::status(&cli.global),
        Command::History => migrate::history(&cli.global),
        Command::Rollback(args) => migrate::rollback(args, &cli.global),
        Command::Release(command) => release::run(command, &cli.global),
        Command::Archive(command) => archive::run(command, &cli.global),
        Command::Generate(command) => generate::run(command, &cli.global),
    }
}
