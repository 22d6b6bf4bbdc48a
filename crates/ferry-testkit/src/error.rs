//! The one error type of the kit. Its messages say which command or file
//! failed and what the command printed, because a test that fails while
//! setting up its world must tell why without a rerun.

use std::path::{Path, PathBuf};

/// What went wrong while building, serving or running a test's world.
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A program could not be started at all (not installed, not executable).
    #[error("could not start `{command}`: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    /// A program ran and exited unsuccessfully.
    #[error(
        "`{command}` exited with {status}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
    )]
    Command {
        command: String,
        status: String,
        stdout: String,
        stderr: String,
    },
    /// This machine lacks what the request needs (root, a tool, a mirror).
    #[error("cannot run here: {0}")]
    Unavailable(String),
    /// A request the kit refuses, or output it could not make sense of.
    #[error("{0}")]
    Invalid(String),
}

impl TestkitError {
    pub(crate) fn io(path: impl AsRef<Path>) -> impl FnOnce(std::io::Error) -> TestkitError {
        let path = path.as_ref().to_path_buf();
        move |source| TestkitError::Io { path, source }
    }
}
