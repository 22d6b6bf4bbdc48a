//! ferry-archive answers the questions of the people who run a package
//! archive, on suites laid out as a mirror's `dists/SUITE/`
//! (`COMPONENT/binary-ARCH/Packages*`, `COMPONENT/source/Sources*`, any
//! compression):
//!
//! - `nbs`: binaries whose source no longer builds them (Not Built from
//!   Source), the packages that still need each, and the sources that need
//!   a no-change rebuild before the binary can go;
//! - `excuses`: which sources of a proposed suite may migrate to the
//!   target without making anything there uninstallable, and why not;
//!   With britney's Dates/Urgency and BugsV files, its age and RC-bug
//!   policies too;
//! - `coverage`: for an organisation move, whether every binary of the
//!   old repository has an installable counterpart in the new one.
//!
//! Installability is ferry-solve's (dose-distcheck's semantics). Reading
//! index files is ferry-deb's; rendering is the CLI's.

mod coverage;
mod excuses;
mod hints;
mod lines;
mod map;
mod nbs;
mod policies;
mod suite;

// The crate's whole surface; the modules stay private so that what other
// crates may lean on is decided here, in one place.
pub use coverage::{coverage, Coverage, Gap, GapKind};
pub use excuses::{excuses, excuses_with, write_result, Excuse, Excuses, Why};
pub use hints::{Hint, HintItem, Hints};
pub use map::NameMap;
pub use nbs::{not_built_from_source, Nbs};
pub use policies::{
    britney_day, parse_day, Age, AgeVerdict, MinDays, Policies, RcBugPolicy, RcBugs,
};
pub use suite::{Key, Suite};

use std::path::PathBuf;

/// Why an archive question could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: no Packages index under COMPONENT/binary-ARCH/ (a mirror's dists/SUITE/ directory is expected)", dir.display())]
    NoIndices { dir: PathBuf },
    #[error("{}:{line}: {message}", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{}:{line}:{column}: {message}", path.display())]
    Hints {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}:{line}:{column}: {message}", path.display())]
    Map {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
}
