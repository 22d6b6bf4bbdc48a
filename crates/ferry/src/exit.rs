//! The exit codes every ferry command uses (documented in `ferry --help` and
//! the README).

/// What a command's outcome means to a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Done, or the question answered yes.
    Ok = 0,
    /// Failed, or the question answered no.
    Failed = 1,
    /// Bad usage or bad input; nothing was changed.
    BadInput = 2,
    /// Blocked by a check; nothing was changed.
    Blocked = 3,
    /// Failed and rolled back.
    RolledBack = 4,
    /// Failed and the rollback is incomplete; manual action listed.
    RollbackIncomplete = 5,
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        std::process::ExitCode::from(exit as u8)
    }
}

pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  ok (or the answer is yes)
  1  failed (or the answer is no)
  2  bad usage or bad input, nothing changed
  3  blocked by a check, nothing changed
  4  failed and rolled back
  5  failed, rollback incomplete (manual action listed)";
