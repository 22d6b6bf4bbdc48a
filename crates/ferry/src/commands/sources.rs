//! `ferry sources show`: the system's APT sources as a table or JSON.

use crate::cli::{Global, SourcesCommand};
use crate::exit::Exit;
use crate::render::Failure;

pub fn run(command: SourcesCommand, _global: &Global) -> Result<Exit, Failure> {
    let SourcesCommand::Show = command;
    Err(Failure::failed("not yet implemented"))
}
