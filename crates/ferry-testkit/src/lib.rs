//! Test machinery for ferry's end-to-end tests, so a test reads like the
//! user story it checks:
//!
//! ```no_run
//! use ferry_testkit::{deb, Chroot, Repo, TestkitError};
//! # fn main() -> Result<(), TestkitError> {
//! let sys = Chroot::minbase("bookworm")?; // real mmdebstrap, cached
//! let new = Repo::new("new-org").package(deb("sdk2", "2.0")).serve()?;
//! sys.add_source(&new, "new-org")?;
//! let before = sys.snapshot()?;
//! sys.ferry(["run", "move.toml", "--yes"]).success();
//! assert_eq!(sys.installed("sdk2")?, Some("2.0".into()));
//! sys.ferry(["rollback"]).success();
//! sys.snapshot()?.assert_unchanged_from(&before);
//! # Ok(()) }
//! ```
//!
//! Everything is real: `dpkg-deb` builds packages, `gpg` signs, apt reads
//! the repositories, `mmdebstrap` makes the systems. Dev-only: nothing here
//! belongs in a shipped binary. Tests that need root, a tool or the network
//! start with [`skip_unless!`] and return early, saying why, where they
//! cannot run; [`skip!`] and [`note_skip!`] say why for other skips. Every
//! skip is counted in the file `FERRY_SKIP_LOG` names (see [`record_skip`]).
//!
//! The environment it reads, all optional:
//! - `FERRY_TEST_MIRROR`: the Debian mirror for chroots (else the host's
//!   apt sources);
//! - `FERRY_TEST_CACHE`: where chroot tarballs are cached
//!   (`/var/cache/ferry-test`); delete a tarball there to refresh it;
//! - `FERRY_TEST_CHROOTS`: where chroots are extracted (/dev/shm when it
//!   allows device nodes and has 2 GiB free, else the temporary directory);
//! - `FERRY_BIN`: the ferry binary [`Chroot::ferry`] runs;
//! - `FERRY_SKIP_LOG`: a file every skip appends its line to.

mod chroot;
mod command;
mod deb;
mod disk;
mod error;
mod http;
mod mirror;
mod repo;
mod signer;
mod skip;
mod snapshot;

pub use chroot::{cache_dir, chroot_parent, Chroot};
pub use command::{expect_exit, Outcome};
pub use deb::{deb, DebBuilder};
pub use disk::{partitioned_image, put_filesystem, sfdisk_dump, sfdisk_write};
pub use error::TestkitError;
pub use http::{FileServer, Request, RequestLog};
pub use mirror::host_mirror;
pub use repo::{host_architecture, Repo, RepoLayout, ServedRepo};
pub use signer::Signer;
pub use skip::{record_skip, skip_line, SKIP_LOG};
pub use snapshot::{InstalledPackage, Snapshot};

use std::path::Path;

/// Something a test needs from the machine it runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Effective uid 0 (chroot, dpkg on a root).
    Root,
    /// A program on PATH (or in /usr/sbin, /sbin).
    Tool(&'static str),
    /// The host's Debian mirror is configured and reachable.
    Mirror,
    /// What building and signing repositories takes: dpkg-deb, gpg.
    Repos,
    /// What [`Chroot::minbase`] takes: root, mmdebstrap, unshare, chroot,
    /// tar, and a reachable mirror.
    Chroots,
}

/// Why this machine cannot give the test what it needs, or `None`.
pub fn unmet(needs: &[Need]) -> Option<String> {
    needs.iter().find_map(|need| match need {
        // SAFETY: geteuid has no preconditions and cannot fail.
        Need::Root => (unsafe { libc::geteuid() } != 0).then(|| "needs root".to_string()),
        Need::Tool(tool) => (!on_path(tool)).then(|| format!("needs {tool} on PATH")),
        Need::Mirror => host_mirror("")
            .map_err(|e| e.to_string())
            .and_then(|m| mirror::probe(&m))
            .err(),
        Need::Repos => unmet(&[Need::Tool("dpkg-deb"), Need::Tool("gpg")]),
        Need::Chroots => unmet(&[
            Need::Root,
            Need::Tool("mmdebstrap"),
            Need::Tool("unshare"),
            Need::Tool("chroot"),
            Need::Tool("tar"),
            Need::Repos,
            Need::Mirror,
        ]),
    })
}

fn on_path(tool: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(Into::into))
        .any(|dir| is_executable(&dir.join(tool)))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// What a test function returns when it skips: `()` or `Ok(())`.
pub trait Skip {
    fn skipped() -> Self;
}

impl Skip for () {
    fn skipped() -> Self {}
}

impl<E> Skip for Result<(), E> {
    fn skipped() -> Self {
        Ok(())
    }
}

/// Returns early from a test, recording why (see [`record_skip`]), unless
/// the machine meets every [`Need`]: `skip_unless!(Need::Chroots);`. Works
/// in tests returning `()` and `Result<(), E>`.
#[macro_export]
macro_rules! skip_unless {
    ($($need:expr),+ $(,)?) => {
        if let Some(why) = $crate::unmet(&[$($need),+]) {
            $crate::skip!("{why}");
        }
    };
}
