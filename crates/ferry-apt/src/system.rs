//! The system a migration acts on: `/` or a mounted root. A `SystemRoot`
//! is made once, at the edge, by [`SystemRoot::open`], which refuses a path
//! that is not a Debian system (so nothing ever reads or writes a wrong
//! directory); it also says which of the files a plan reads this user
//! cannot read. Commands that change the system (apt-get, dpkg, hooks) run
//! inside it — directly for `/`, under `chroot` for any other root — so the
//! root's own apt and dpkg act, never the host's on the root's files. Not for
//! deciding anything about a migration.
//!
//! It is also the one reader of what the system *is* to a package tool:
//! its dpkg status ([`SystemRoot::dpkg_status`]), its native and foreign
//! architectures ([`SystemRoot::architectures`]) and the installability
//! universe built from them ([`Architectures::universe`]).

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ferry_deb::package::{parse_binary_packages_with, RelationFields};
use ferry_deb::BinaryPackage;

/// What [`SystemRoot::open`] asks of a directory, in words for error messages.
pub const ROOT_EXPECTED: &str =
    "a directory holding a Debian system: etc/apt/ (a directory) and var/lib/dpkg/status (a readable file)";

/// Why a path is not a system ferry can work on.
#[derive(Debug, thiserror::Error)]
pub enum RootError {
    #[error("{} does not exist", .path.display())]
    Missing { path: PathBuf },
    #[error("{} is not a directory", .path.display())]
    NotADirectory { path: PathBuf },
    #[error("{} does not look like a Debian system: {problem}", .root.display())]
    NotDebian {
        root: PathBuf,
        /// The part of the root that is wrong (`root/etc/apt`, …).
        path: PathBuf,
        problem: &'static str,
    },
    #[error("{}: cannot read {}: {source}", .root.display(), .path.display())]
    Unreadable {
        root: PathBuf,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl RootError {
    /// The path that is missing, wrong or unreadable.
    pub fn path(&self) -> &Path {
        match self {
            RootError::Missing { path }
            | RootError::NotADirectory { path }
            | RootError::NotDebian { path, .. }
            | RootError::Unreadable { path, .. } => path,
        }
    }
}

/// Why the root's dpkg status cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {source}", .path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: ferry_deb::RecordError,
    },
}

/// Why the system's architectures cannot be known.
#[derive(Debug, thiserror::Error)]
pub enum ArchitectureError {
    #[error(transparent)]
    Status(#[from] StatusError),
    /// dpkg's own package is what says the native architecture; a status
    /// without it (an empty or hand-made database) says nothing, and
    /// guessing the host's would plan for the wrong packages.
    #[error("{} has no installed `dpkg` package, whose architecture is the system's native one", .path.display())]
    NoDpkg { path: PathBuf },
    #[error("cannot read {}: {source}", .path.display())]
    ForeignList {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A root's dpkg status, read once. Every question about the installed
/// set (what is installed, at which version, Essential or not, the native
/// architecture) is answered from this one reading.
#[derive(Debug, Clone)]
pub struct DpkgStatus {
    path: PathBuf,
    text: String,
}

impl DpkgStatus {
    /// The status file's host path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every record, installed or not (a half-installed package is one a
    /// rollback must see), with the relation fields `fields` asks for.
    pub fn records(&self, fields: RelationFields) -> Result<Vec<BinaryPackage<'_>>, StatusError> {
        parse_binary_packages_with(&self.text, fields).map_err(|source| StatusError::Parse {
            path: self.path.clone(),
            source,
        })
    }

    /// The packages dpkg has unpacked or better.
    pub fn installed(&self, fields: RelationFields) -> Result<Vec<BinaryPackage<'_>>, StatusError> {
        let mut packages = self.records(fields)?;
        packages.retain(|p| p.is_installed());
        Ok(packages)
    }

    /// The system's native architecture: the architecture of its installed
    /// `dpkg`, which is the architecture that dpkg was built for and so
    /// the one `dpkg --print-architecture` prints inside the root. Asking
    /// the host's dpkg instead (even with `--root` or `--admindir`) answers
    /// for the host, not for the root.
    pub fn native_architecture(&self) -> Result<String, ArchitectureError> {
        self.installed(RelationFields::Installability)?
            .iter()
            .find(|p| p.name == "dpkg" && !matches!(p.architecture, "" | "all"))
            .map(|p| p.architecture.to_string())
            .ok_or_else(|| ArchitectureError::NoDpkg {
                path: self.path.clone(),
            })
    }
}

/// A system's architectures: what its dpkg installs natively and what it
/// also accepts (`dpkg --add-architecture`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Architectures {
    pub native: String,
    pub foreign: Vec<String>,
}

impl Architectures {
    /// The installability universe of `packages` as this system's dpkg
    /// and apt would see it: the one place a universe for a system is built.
    pub fn universe<'a>(&self, packages: &'a [BinaryPackage<'a>]) -> ferry_solve::Universe<'a> {
        ferry_solve::Universe::new(packages, &self.native, &self.foreign)
    }
}

/// Whether this process may change a system (effective uid 0): installing
/// packages, writing /etc/apt and running `chroot` all need it.
pub fn is_privileged() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// This process's effective uid, for messages about privileges.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed (exit {code:?}):\n{output}")]
    Failed {
        command: String,
        code: Option<i32>,
        output: String,
    },
}

#[derive(Debug, Clone)]
pub struct SystemRoot {
    root: PathBuf,
}

impl SystemRoot {
    /// The system at `root`, when it looks like a Debian system: a directory
    /// with an `etc/apt` directory (ferry reads and rewrites apt's sources
    /// there) and a `var/lib/dpkg/status` this user can open (every plan,
    /// check and backup reads the installed set from it). Both exist on any
    /// Debian system, minbase included, and neither in an empty mount point,
    /// a typo'd path or another distribution's tree. Reads only; creates
    /// nothing.
    pub fn open(root: &Path) -> Result<SystemRoot, RootError> {
        let unreadable = |path: &Path, source: std::io::Error| RootError::Unreadable {
            root: root.to_path_buf(),
            path: path.to_path_buf(),
            source,
        };
        let not_debian = |path: PathBuf, problem: &'static str| RootError::NotDebian {
            root: root.to_path_buf(),
            path,
            problem,
        };
        match std::fs::metadata(root) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(RootError::NotADirectory {
                    path: root.to_path_buf(),
                })
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(RootError::Missing {
                    path: root.to_path_buf(),
                })
            }
            Err(e) if e.kind() == ErrorKind::NotADirectory => {
                return Err(RootError::NotADirectory {
                    path: root.to_path_buf(),
                })
            }
            Err(e) => return Err(unreadable(root, e)),
        }
        let apt = root.join("etc/apt");
        match std::fs::metadata(&apt) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(not_debian(apt, "etc/apt is not a directory")),
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
                return Err(not_debian(apt, "it has no etc/apt directory"))
            }
            Err(e) => return Err(unreadable(&apt, e)),
        }
        let status = root.join("var/lib/dpkg/status");
        match std::fs::File::open(&status).and_then(|file| file.metadata()) {
            Ok(meta) if meta.is_file() => {}
            Ok(_) => return Err(not_debian(status, "var/lib/dpkg/status is not a file")),
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
                return Err(not_debian(
                    status,
                    "it has no var/lib/dpkg/status (dpkg's database)",
                ))
            }
            Err(e) => return Err(unreadable(&status, e)),
        }
        Ok(SystemRoot {
            root: root.to_path_buf(),
        })
    }

    /// A root already known to be a system (one journaled by a run).
    pub(crate) fn new(root: &Path) -> Self {
        SystemRoot {
            root: root.to_path_buf(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    /// dpkg's status file of the root (host path).
    pub fn status_path(&self) -> PathBuf {
        self.host_path("var/lib/dpkg/status")
    }

    /// apt's downloaded lists of the root (host path).
    pub fn lists_dir(&self) -> PathBuf {
        self.host_path("var/lib/apt/lists")
    }

    /// Reads the root's dpkg status (compressed or not, as ferry-deb reads
    /// any index).
    pub fn dpkg_status(&self) -> Result<DpkgStatus, StatusError> {
        let path = self.status_path();
        let text = ferry_deb::index::read_to_string(&path).map_err(|e| StatusError::Read {
            path: path.clone(),
            source: e.source,
        })?;
        Ok(DpkgStatus { path, text })
    }

    /// The system's native architecture (see
    /// [`DpkgStatus::native_architecture`]); an error, never a guess, when
    /// it cannot be known.
    pub fn native_architecture(&self) -> Result<String, ArchitectureError> {
        self.dpkg_status()?.native_architecture()
    }

    /// The architectures dpkg accepts besides the native one. dpkg lists
    /// them in `var/lib/dpkg/arch` once one is added, the native one among
    /// them; no file means none.
    pub fn foreign_architectures(&self) -> Result<Vec<String>, ArchitectureError> {
        Ok(self.architectures()?.foreign)
    }

    /// The native and foreign architectures, decided once: the one
    /// function every plan check, snapshot and apt sandbox asks.
    pub fn architectures(&self) -> Result<Architectures, ArchitectureError> {
        let native = self.native_architecture()?;
        let path = self.host_path("var/lib/dpkg/arch");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == ErrorKind::NotFound => String::new(),
            Err(source) => return Err(ArchitectureError::ForeignList { path, source }),
        };
        let mut foreign: Vec<String> = Vec::new();
        for arch in text.lines().map(str::trim) {
            if !arch.is_empty() && arch != native && !foreign.iter().any(|f| f == arch) {
                foreign.push(arch.to_string());
            }
        }
        Ok(Architectures { native, foreign })
    }

    pub fn is_host(&self) -> bool {
        self.root == Path::new("/")
    }

    /// The host path of a path inside the root.
    pub fn host_path(&self, inside: &str) -> PathBuf {
        self.root.join(inside.trim_start_matches('/'))
    }

    /// The files of the system a plan reads that this process cannot read
    /// (host paths): the sources, the keyrings they name, apt's trusted keys,
    /// preferences, lists and extended states. As root this is empty; as
    /// another user it names what only root may read (a private keyring, say),
    /// which would otherwise show up as a misleading plan blocker.
    pub fn unreadable_plan_inputs(&self) -> Vec<PathBuf> {
        // Directories this user may not list are named themselves.
        let mut denied = Vec::new();
        let mut files = vec![self.host_path("etc/apt/sources.list")];
        files.extend(dir_files(
            &self.host_path("etc/apt/sources.list.d"),
            &mut denied,
        ));
        files.push(self.host_path("etc/apt/trusted.gpg"));
        files.extend(dir_files(
            &self.host_path("etc/apt/trusted.gpg.d"),
            &mut denied,
        ));
        files.push(self.host_path("etc/apt/preferences"));
        files.extend(dir_files(
            &self.host_path("etc/apt/preferences.d"),
            &mut denied,
        ));
        files.push(self.host_path("var/lib/apt/extended_states"));
        // apt's `lock` guards the root's lists and is no list: a plan never
        // copies it.
        files.extend(
            dir_files(&self.host_path("var/lib/apt/lists"), &mut denied)
                .into_iter()
                .filter(|p| p.file_name().is_none_or(|n| n != "lock")),
        );
        denied.extend(files.into_iter().filter(|p| !readable(p)));
        // The keyrings the sources name, once the sources themselves can be
        // read (until then those files are named instead).
        if denied.is_empty() {
            if let Ok(system) = ferry_deb::sources::read_system_sources(&self.root) {
                let keyrings: std::collections::BTreeSet<PathBuf> = system
                    .entries()
                    .filter_map(|e| e.signed_by.as_ref())
                    .flat_map(|s| {
                        s.keyrings()
                            .into_iter()
                            .map(|k| self.host_path(&k.to_string_lossy()))
                    })
                    .collect();
                denied.extend(keyrings.into_iter().filter(|p| !readable(p)));
            }
        }
        denied.sort();
        denied.dedup();
        denied
    }

    /// A command that runs `program` inside the root, in the C locale and
    /// without questions.
    pub fn command(&self, program: &str) -> Command {
        let mut command = if self.is_host() {
            Command::new(program)
        } else {
            let mut c = Command::new("chroot");
            c.arg(&self.root).arg(program);
            c
        };
        command
            .env("LC_ALL", "C")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .env("APT_LISTCHANGES_FRONTEND", "none")
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            );
        command
    }

    /// Runs a command inside the root and returns its output, or an error
    /// holding everything it printed.
    pub fn run(&self, program: &str, args: &[String]) -> Result<Output, CommandError> {
        let rendered = format!("{program} {}", args.join(" "));
        let output = self
            .command(program)
            .args(args)
            .output()
            .map_err(|source| CommandError::Spawn {
                command: rendered.clone(),
                source,
            })?;
        if output.status.success() {
            Ok(output)
        } else {
            let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&output.stderr));
            Err(CommandError::Failed {
                command: rendered,
                code: output.status.code(),
                output: text.trim().to_string(),
            })
        }
    }
}

/// Whether this process can open `path` for reading; a file that is not
/// there is no reading problem (apt and the plan treat it as absent).
fn readable(path: &Path) -> bool {
    match std::fs::File::open(path) {
        Ok(_) => true,
        Err(e) => e.kind() == ErrorKind::NotFound,
    }
}

/// The regular files of a directory (following symlinks, as apt does); a
/// directory this user cannot list is recorded in `denied`.
fn dir_files(dir: &Path, denied: &mut Vec<PathBuf>) -> Vec<PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect(),
        Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
        Err(_) => {
            denied.push(dir.to_path_buf());
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn debian_like(dir: &Path) {
        std::fs::create_dir_all(dir.join("etc/apt")).unwrap();
        std::fs::create_dir_all(dir.join("var/lib/dpkg")).unwrap();
        std::fs::write(dir.join("var/lib/dpkg/status"), "").unwrap();
    }

    #[test]
    fn a_missing_path_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("not-there");
        let e = SystemRoot::open(&missing).unwrap_err();
        assert!(matches!(e, RootError::Missing { .. }), "{e}");
        assert_eq!(e.path(), missing);
        assert!(!missing.exists());
    }

    #[test]
    fn a_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("image");
        std::fs::write(&file, "x").unwrap();
        let e = SystemRoot::open(&file).unwrap_err();
        assert!(matches!(e, RootError::NotADirectory { .. }), "{e}");
        let below = SystemRoot::open(&file.join("sub")).unwrap_err();
        assert!(matches!(below, RootError::NotADirectory { .. }), "{below}");
    }

    #[test]
    fn an_empty_directory_is_no_debian_system() {
        let dir = tempfile::tempdir().unwrap();
        let e = SystemRoot::open(dir.path()).unwrap_err();
        assert!(
            matches!(e, RootError::NotDebian { ref path, .. } if *path == dir.path().join("etc/apt")),
            "{e}"
        );
        assert!(e.to_string().contains("no etc/apt directory"), "{e}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn etc_apt_alone_is_not_enough() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc/apt")).unwrap();
        let e = SystemRoot::open(dir.path()).unwrap_err();
        assert!(e.to_string().contains("var/lib/dpkg/status"), "{e}");
        std::fs::create_dir_all(dir.path().join("var/lib/dpkg/status")).unwrap();
        let e = SystemRoot::open(dir.path()).unwrap_err();
        assert!(e.to_string().contains("is not a file"), "{e}");
    }

    #[test]
    fn etc_apt_must_be_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        debian_like(dir.path());
        std::fs::remove_dir(dir.path().join("etc/apt")).unwrap();
        std::fs::write(dir.path().join("etc/apt"), "").unwrap();
        let e = SystemRoot::open(dir.path()).unwrap_err();
        assert!(e.to_string().contains("etc/apt is not a directory"), "{e}");
    }

    #[test]
    fn the_minimal_debian_tree_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        debian_like(dir.path());
        let root = SystemRoot::open(dir.path()).unwrap();
        assert_eq!(root.path(), dir.path());
        assert!(!root.is_host());
    }

    const DPKG_ARM64: &str =
        "Package: dpkg\nStatus: install ok installed\nVersion: 1.21.22\nArchitecture: arm64\n\n";

    #[test]
    fn a_status_without_dpkg_has_no_native_architecture() {
        let dir = tempfile::tempdir().unwrap();
        debian_like(dir.path());
        // dpkg known but not installed any more says nothing either.
        std::fs::write(
            dir.path().join("var/lib/dpkg/status"),
            "Package: dpkg\nStatus: deinstall ok config-files\nVersion: 1.0\nArchitecture: arm64\n\n\
             Package: base-files\nStatus: install ok installed\nVersion: 12.4\nArchitecture: arm64\n",
        )
        .unwrap();
        let root = SystemRoot::open(dir.path()).unwrap();
        let e = root.native_architecture().unwrap_err();
        assert!(matches!(e, ArchitectureError::NoDpkg { .. }), "{e}");
        assert!(e.to_string().contains("no installed `dpkg` package"), "{e}");
        assert!(root.architectures().is_err());
    }

    #[test]
    fn an_unparsable_status_is_an_error_not_an_architecture() {
        let dir = tempfile::tempdir().unwrap();
        debian_like(dir.path());
        std::fs::write(dir.path().join("var/lib/dpkg/status"), "Package dpkg\n").unwrap();
        let root = SystemRoot::open(dir.path()).unwrap();
        let e = root.native_architecture().unwrap_err();
        assert!(
            matches!(e, ArchitectureError::Status(StatusError::Parse { .. })),
            "{e}"
        );
    }

    #[test]
    fn the_native_architecture_is_the_roots_dpkg_not_the_hosts() {
        let dir = tempfile::tempdir().unwrap();
        debian_like(dir.path());
        std::fs::write(dir.path().join("var/lib/dpkg/status"), DPKG_ARM64).unwrap();
        let root = SystemRoot::open(dir.path()).unwrap();
        assert_eq!(root.native_architecture().unwrap(), "arm64");
        assert!(root.foreign_architectures().unwrap().is_empty());
        // dpkg writes the native architecture into its list too.
        std::fs::write(
            dir.path().join("var/lib/dpkg/arch"),
            "arm64\narmhf\n\narmhf\n",
        )
        .unwrap();
        assert_eq!(
            root.architectures().unwrap(),
            Architectures {
                native: "arm64".into(),
                foreign: vec!["armhf".into()],
            }
        );
    }

    #[test]
    fn on_this_host_the_native_architecture_is_what_dpkg_prints() {
        let output = match Command::new("dpkg").arg("--print-architecture").output() {
            Ok(output) if output.status.success() => output,
            _ => {
                ferry_testkit::note_skip!("needs dpkg on this host");
                return;
            }
        };
        let printed = String::from_utf8_lossy(&output.stdout).trim().to_string();
        let host = SystemRoot::open(Path::new("/")).unwrap();
        assert_eq!(host.native_architecture().unwrap(), printed);
    }

    #[test]
    fn the_universe_is_built_for_the_systems_architectures() {
        let archs = Architectures {
            native: "arm64".into(),
            foreign: vec![],
        };
        let text = "Package: a\nVersion: 1\nArchitecture: arm64\n\n\
                    Package: b\nVersion: 1\nArchitecture: amd64\n\n\
                    Package: c\nVersion: 1\nArchitecture: all\n";
        let packages = ferry_deb::package::parse_binary_packages(text).unwrap();
        let universe = archs.universe(&packages);
        let names: Vec<&str> = universe.records.iter().map(|p| p.name).collect();
        assert_eq!(
            names,
            ["a", "c"],
            "another architecture's package is left out"
        );
    }

    #[test]
    fn what_a_plan_reads_is_readable_here_or_named() {
        let dir = tempfile::tempdir().unwrap();
        debian_like(dir.path());
        std::fs::create_dir_all(dir.path().join("var/lib/apt/lists")).unwrap();
        std::fs::create_dir_all(dir.path().join("etc/apt/keyrings")).unwrap();
        std::fs::write(
            dir.path().join("etc/apt/sources.list"),
            "deb [signed-by=/etc/apt/keyrings/k.gpg] http://r.example.org/d s main\n",
        )
        .unwrap();
        let keyring = dir.path().join("etc/apt/keyrings/k.gpg");
        std::fs::write(&keyring, "key").unwrap();
        let lock = dir.path().join("var/lib/apt/lists/lock");
        std::fs::write(&lock, "").unwrap();
        use std::os::unix::fs::PermissionsExt;
        for path in [&keyring, &lock] {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o000)).unwrap();
        }
        let root = SystemRoot::open(dir.path()).unwrap();
        let unreadable = root.unreadable_plan_inputs();
        // Root reads every file whatever its mode; anyone else cannot read
        // the keyring, and the lock is never asked for.
        if is_privileged() {
            assert!(unreadable.is_empty(), "{unreadable:?}");
        } else {
            assert_eq!(unreadable, [keyring]);
        }
    }
}
