//! One module per subcommand; each returns an exit code or a `Failure`.
//! Commands that read or change a system get it here as a `SystemRoot`,
//! checked once (`--root` exists and is a Debian system) before they start;
//! those that change it are refused here too when not run as root.

mod archive;
mod check;
mod fleet;
mod generate;
mod image;
mod manual;
mod migrate;
mod release;
mod sources;
mod takeover;
mod version;

use ferry_apt::{RootError, SystemRoot, ROOT_EXPECTED};

use crate::cli::{Cli, Command, Global};
use crate::exit::Exit;
use crate::render::Failure;

pub fn run(cli: Cli) -> Result<Exit, Failure> {
    let global = &cli.global;
    match cli.command {
        Command::Version(command) => version::run(command, global),
        Command::Sources(command) => sources::run(command, global, &system_root(global)?),
        Command::Check(args) => {
            // Only the installed packages of --root's dpkg status read a
            // system; Packages files and --status FILE are plain inputs.
            if args.installed && args.status.is_none() {
                system_root(global)?;
            }
            check::run(args, global)
        }
        Command::Plan(args) => migrate::plan(args, global, &system_root(global)?),
        Command::Run(args) => {
            let root = system_root(global)?;
            require_privileges("ferry run")?;
            migrate::run(args, global, &root)
        }
        Command::Status => migrate::status(global, &system_root(global)?),
        Command::History => migrate::history(global, &system_root(global)?),
        Command::Rollback(args) => {
            let root = system_root(global)?;
            require_privileges("ferry rollback")?;
            migrate::rollback(args, global, &root)
        }
        Command::Release(command) => release::run(command, global),
        Command::Archive(command) => archive::run(command, global),
        Command::Image(command) => image::run(command, global),
        Command::Takeover(command) => takeover::run(command, global),
        Command::Fleet(command) => fleet::run(command, global),
        Command::Agent(args) => fleet::agent(args, global),
        Command::Generate(command) => generate::run(command, global),
    }
}

/// The system `--root` names, or exit 2 saying what is wrong with it.
pub(crate) fn system_root(global: &Global) -> Result<SystemRoot, Failure> {
    SystemRoot::open(&global.root).map_err(|e| root_failure(&e, global))
}

fn root_failure(error: &RootError, global: &Global) -> Failure {
    let hint = if matches!(error, RootError::Unreadable { .. }) {
        "run ferry as a user who can read it (root), or check the path"
    } else if global.root == std::path::Path::new("/") {
        "ferry works on Debian systems: run it on one, or pass --root DIR where one is mounted"
    } else {
        "check the path and that the system is mounted there, or drop --root to work on this machine (/)"
    };
    Failure::bad_input(format!("--root {error}"))
        .at(error.path(), None, None)
        .expected(ROOT_EXPECTED)
        .hint(hint)
}

/// Refuses, before any work, a command that changes the system when this
/// process is not root: apt, dpkg and chroot would fail part-way otherwise.
pub(crate) fn require_privileges(command: &str) -> Result<(), Failure> {
    if ferry_apt::is_privileged() {
        return Ok(());
    }
    Err(Failure::bad_input(format!(
        "`{command}` changes the system and must run as root (this is uid {}); nothing was changed",
        ferry_apt::effective_uid()
    ))
    .hint(format!(
        "run it as root, e.g. `sudo {command} …`; `ferry plan` shows what it would do without root"
    )))
}
