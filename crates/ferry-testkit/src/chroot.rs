//! Real Debian systems to run ferry against: `mmdebstrap --variant=minbase`
//! made once per suite and mirror into a cached tarball, extracted afresh
//! for each test. Commands run inside through `unshare` + `chroot`, so /proc
//! is mounted in a private mount namespace and can never outlive the
//! command; removal still checks for mounts and never crosses filesystems.

use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use crate::command::{checked, Outcome};
use crate::mirror::host_mirror;
use crate::repo::{sha256_hex, ServedRepo};
use crate::snapshot::{self, Snapshot};
use crate::{unmet, Need, TestkitError};

/// The environment commands inside the chroot get, and nothing else.
const CHROOT_ENV: [(&str, &str); 4] = [
    (
        "PATH",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ),
    ("HOME", "/root"),
    ("LC_ALL", "C.UTF-8"),
    ("DEBIAN_FRONTEND", "noninteractive"),
];

/// Run by `unshare` in the new mount namespace: a private /dev/pts (apt
/// logs dpkg's output through a pty) and /dev/shm, then the command in the
/// chroot. `$0` is the root. The mounts vanish with the namespace.
const ENTER: &str = r#"set -e
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$0/dev/pts"
mount -t tmpfs -o mode=1777,size=64m tmpfs "$0/dev/shm"
exec chroot "$0" "$@""#;

/// A throwaway Debian system in a directory; removed on drop.
#[derive(Debug)]
pub struct Chroot {
    root: PathBuf,
    suite: String,
    /// The host directory ferry runs in, for files a test hands to it.
    work: tempfile::TempDir,
    ferry_bin: Option<PathBuf>,
}

impl Chroot {
    /// A fresh minbase system of `suite` (e.g. `bookworm`). The first call
    /// for a suite and mirror runs mmdebstrap into the cache
    /// (`$FERRY_TEST_CACHE`, default `/var/cache/ferry-test`); later calls,
    /// in any process, extract that tarball. The cached system keeps its
    /// apt lists, so `apt-get update` only revalidates them.
    pub fn minbase(suite: &str) -> Result<Chroot, TestkitError> {
        if let Some(why) = unmet(&[Need::Root, Need::Tool("unshare"), Need::Tool("chroot")]) {
            return Err(TestkitError::Unavailable(why));
        }
        let tarball = cached_minbase(suite, &host_mirror(suite)?)?;
        let work = tempfile::Builder::new()
            .prefix("ferry-work-")
            .tempdir()
            .map_err(TestkitError::io(std::env::temp_dir()))?;
        let parent = chroot_parent();
        let root = tempfile::Builder::new()
            .prefix("ferry-chroot-")
            .tempdir_in(&parent)
            .map_err(TestkitError::io(&parent))?
            .keep();
        let root = root.canonicalize().map_err(TestkitError::io(&root))?;
        // From here on Drop owns the directory and removes it carefully.
        let chroot = Chroot {
            root,
            suite: suite.into(),
            work,
            ferry_bin: None,
        };
        checked(
            Command::new("tar")
                .args(["--numeric-owner", "-xpf"])
                .arg(&tarball)
                .arg("-C")
                .arg(&chroot.root),
        )?;
        std::fs::set_permissions(&chroot.root, std::fs::Permissions::from_mode(0o755))
            .map_err(TestkitError::io(&chroot.root))?;
        if let Ok(resolv) = std::fs::read("/etc/resolv.conf") {
            chroot.write_file("/etc/resolv.conf", resolv)?;
        }
        Ok(chroot)
    }

    /// The chroot's root directory on the host.
    pub fn path(&self) -> &Path {
        &self.root
    }

    pub fn suite(&self) -> &str {
        &self.suite
    }

    /// The host path of `inside` (an absolute path in the chroot).
    pub fn host_path(&self, inside: &str) -> PathBuf {
        self.root.join(inside.trim_start_matches('/'))
    }

    /// The host directory `ferry` runs in: relative paths given to it (a
    /// profile, a bundle) are read from here.
    pub fn workdir(&self) -> &Path {
        self.work.path()
    }

    /// Runs a command inside the chroot, with /proc mounted for it alone,
    /// a clean environment (`DEBIAN_FRONTEND=noninteractive`, `LC_ALL=C.UTF-8`)
    /// and no stdin.
    pub fn run<I, S>(&self, args: I) -> Outcome
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<std::ffi::OsString> =
            args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let mut proc_arg = std::ffi::OsString::from("--mount-proc=");
        proc_arg.push(self.root.join("proc"));
        let mut command = Command::new("unshare");
        command
            .args(["--mount", "--pid", "--fork", "--kill-child"])
            .arg(proc_arg)
            .args(["sh", "-c", ENTER])
            .arg(&self.root)
            .args(&args)
            .env_clear()
            .envs(CHROOT_ENV);
        let mut outcome = Outcome::of(command);
        let words: Vec<_> = args.iter().map(|a| a.to_string_lossy()).collect();
        outcome.command = format!("[in {}] {}", self.root.display(), words.join(" "));
        outcome
    }

    /// Runs a setup command inside; its stdout, or an error with its output.
    pub fn run_ok<I, S>(&self, args: I) -> Result<String, TestkitError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Ok(self.run(args).ok()?.stdout)
    }

    /// Uses `bin` for [`Chroot::ferry`], e.g.
    /// `env!("CARGO_BIN_EXE_ferry")` in the ferry crate's tests.
    pub fn with_ferry_bin(mut self, bin: impl Into<PathBuf>) -> Self {
        self.ferry_bin = Some(bin.into());
        self
    }

    /// Runs ferry on the host as `ferry --root <chroot> ARGS` in
    /// [`Chroot::workdir`]. The binary is the one given to
    /// [`Chroot::with_ferry_bin`], else `$FERRY_BIN`, else the newer of the
    /// workspace's `target/{debug,release}/ferry`: tests must build it first
    /// (cargo does for the ferry crate's own integration tests).
    pub fn ferry<I, S>(&self, args: I) -> Outcome
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.ferry_env(&[], args)
    }

    /// [`Chroot::ferry`] with extra environment variables.
    pub fn ferry_env<I, S>(&self, env: &[(&str, &str)], args: I) -> Outcome
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        match self.ferry_bin.clone().map_or_else(find_ferry_bin, Ok) {
            Ok(bin) => self.ferry_command(&bin, env, args),
            Err(why) => Outcome::not_started("ferry".into(), why),
        }
    }

    /// Runs the ferry binary at `bin` as `bin --root <chroot> ARGS`.
    pub fn ferry_with<I, S>(&self, bin: impl AsRef<Path>, args: I) -> Outcome
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.ferry_command(bin.as_ref(), &[], args)
    }

    fn ferry_command<I, S>(&self, bin: &Path, env: &[(&str, &str)], args: I) -> Outcome
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = Command::new(bin);
        command
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .envs(env.iter().copied())
            .current_dir(self.work.path());
        Outcome::of(command)
    }

    /// The version of `name` dpkg has installed (`ii`), if any.
    pub fn installed(&self, name: &str) -> Result<Option<String>, TestkitError> {
        let outcome = self.run([
            "dpkg-query",
            "-W",
            "-f=${db:Status-Abbrev}\t${Version}\n",
            name,
        ]);
        if outcome.code == Some(1) && outcome.stderr.contains("no packages found") {
            return Ok(None);
        }
        let stdout = outcome.ok()?.stdout;
        Ok(stdout.lines().find_map(|line| {
            let (status, version) = line.split_once('\t')?;
            status.starts_with("ii").then(|| version.to_string())
        }))
    }

    /// Packages, apt marks, dpkg selections and /etc/apt, as they are now.
    pub fn snapshot(&self) -> Result<Snapshot, TestkitError> {
        let format = format!("-f={}", snapshot::DPKG_QUERY_FORMAT);
        let packages = self.run_ok(["dpkg-query", "-W", &format])?;
        let manual = self.run_ok(["apt-mark", "showmanual"])?;
        let selections = self.run_ok(["dpkg", "--get-selections"])?;
        let states = self.host_path("/var/lib/apt/extended_states");
        let states = match std::fs::read_to_string(&states) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(TestkitError::io(&states)(e)),
        };
        Ok(Snapshot {
            packages: snapshot::parse_packages(&packages),
            manual: snapshot::parse_words(&manual),
            auto: snapshot::parse_extended_states(&states),
            selections: snapshot::parse_selections(&selections),
            apt_files: snapshot::hash_apt_files(&self.root)?,
        })
    }

    /// Makes the served repository a source of this system: its keyring at
    /// `/etc/apt/keyrings/NAME.gpg` and a deb822 entry trusting it at
    /// `/etc/apt/sources.list.d/NAME.sources`.
    pub fn add_source(&self, repo: &ServedRepo, name: &str) -> Result<(), TestkitError> {
        let stem = name.strip_suffix(".sources").unwrap_or(name);
        let keyring = format!("/etc/apt/keyrings/{stem}.gpg");
        let key =
            std::fs::read(repo.keyring_path()).map_err(TestkitError::io(repo.keyring_path()))?;
        self.write_file(&keyring, key)?;
        self.write_file(
            &format!("/etc/apt/sources.list.d/{stem}.sources"),
            repo.sources_entry_signed_by(&keyring),
        )
    }

    /// Writes a file (mode 0644) at an absolute path inside, creating
    /// directories. Refuses to go through symlinks: an absolute link in
    /// the chroot would point at the host.
    pub fn write_file(&self, inside: &str, bytes: impl AsRef<[u8]>) -> Result<(), TestkitError> {
        let path = self.checked_path(inside)?;
        let parent = path.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(parent).map_err(TestkitError::io(parent))?;
        std::fs::write(&path, bytes).map_err(TestkitError::io(&path))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
            .map_err(TestkitError::io(&path))
    }

    /// Reads a file at an absolute path inside (not through symlinks).
    pub fn read_file(&self, inside: &str) -> Result<Vec<u8>, TestkitError> {
        let path = self.checked_path(inside)?;
        std::fs::read(&path).map_err(TestkitError::io(&path))
    }

    /// The host path of `inside`, provided no existing part of it is a
    /// symlink and it does not climb out with `..`.
    fn checked_path(&self, inside: &str) -> Result<PathBuf, TestkitError> {
        let relative = Path::new(inside.trim_start_matches('/'));
        let mut path = self.root.clone();
        for component in relative.components() {
            let Component::Normal(part) = component else {
                return Err(TestkitError::Invalid(format!(
                    "{inside:?}: only plain absolute paths inside the chroot"
                )));
            };
            path.push(part);
            if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(TestkitError::Invalid(format!(
                    "{inside:?}: {} is a symlink; the kit does not follow links out of a chroot",
                    path.display()
                )));
            }
        }
        Ok(path)
    }
}

impl Drop for Chroot {
    fn drop(&mut self) {
        if let Err(why) = remove_root(&self.root) {
            eprintln!(
                "ferry-testkit: left {} in place: {why}",
                self.root.display()
            );
        }
    }
}

/// The cache directory for chroot tarballs.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("FERRY_TEST_CACHE")
        .map_or_else(|| PathBuf::from("/var/cache/ferry-test"), PathBuf::from)
}

/// Where chroots are extracted: `$FERRY_TEST_CHROOTS`, else /dev/shm when it
/// is a RAM disk that allows device nodes and has room (extracting and
/// removing a minbase tree there takes under a second, against about ten
/// on a VM's ext4), else the temporary directory.
pub fn chroot_parent() -> PathBuf {
    if let Some(dir) = std::env::var_os("FERRY_TEST_CHROOTS") {
        return PathBuf::from(dir);
    }
    let shm = Path::new("/dev/shm");
    if roomy_with_devices(shm) {
        return shm.to_path_buf();
    }
    std::env::temp_dir()
}

/// Whether `dir` allows device nodes and executables, and has 2 GiB free.
fn roomy_with_devices(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c_path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: statvfs only writes into the zeroed struct we pass it.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c_path is NUL-terminated and outlives the call; stat is ours.
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) } != 0 {
        return false;
    }
    #[allow(clippy::useless_conversion)] // the fields are narrower on 32-bit targets
    let free = u64::from(stat.f_bavail).saturating_mul(u64::from(stat.f_frsize));
    let refused = libc::ST_NODEV | libc::ST_NOEXEC | libc::ST_RDONLY;
    stat.f_flag & refused == 0 && free >= 2 << 30
}

/// The cached minbase tarball of `suite` from `mirror`, made if missing.
/// A lock file serializes makers across threads and test processes.
fn cached_minbase(suite: &str, mirror: &str) -> Result<PathBuf, TestkitError> {
    if suite.is_empty()
        || !suite
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
    {
        return Err(TestkitError::Invalid(format!(
            "{suite:?} is not a suite name"
        )));
    }
    let dir = cache_dir();
    std::fs::create_dir_all(&dir).map_err(TestkitError::io(&dir))?;
    let stem = format!("{suite}-minbase-{}", &sha256_hex(mirror.as_bytes())[..12]);
    let tarball = dir.join(format!("{stem}.tar"));
    let lock_path = dir.join(format!("{stem}.lock"));
    let lock = File::create(&lock_path).map_err(TestkitError::io(&lock_path))?;
    // SAFETY: flock on a descriptor we own; the lock ends when `lock` drops.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(TestkitError::io(&lock_path)(std::io::Error::last_os_error()));
    }
    if tarball.is_file() {
        return Ok(tarball);
    }
    if let Some(why) = unmet(&[Need::Tool("mmdebstrap"), Need::Mirror]) {
        return Err(TestkitError::Unavailable(why));
    }
    let partial = dir.join(format!("{stem}.partial-{}.tar", std::process::id()));
    let made = checked(
        Command::new("mmdebstrap")
            .args([
                "--variant=minbase",
                "--format=tar",
                "--quiet",
                "--skip=cleanup/apt/lists",
                suite,
            ])
            .arg(&partial)
            .arg(mirror)
            // mmdebstrap builds the tree in TMPDIR; a RAM disk halves its time.
            .env("TMPDIR", chroot_parent()),
    );
    if let Err(e) = made {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    std::fs::rename(&partial, &tarball).map_err(TestkitError::io(&tarball))?;
    Ok(tarball)
}

fn find_ferry_bin() -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os("FERRY_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    );
    ["debug", "release"]
        .iter()
        .map(|profile| target.join(profile).join("ferry"))
        .filter_map(|bin| Some((std::fs::metadata(&bin).ok()?.modified().ok()?, bin)))
        .max()
        .map(|(_, bin)| bin)
        .ok_or_else(|| {
            format!(
                "no ferry binary: build it (cargo build -p ferry), set FERRY_BIN, or pass \
                 env!(\"CARGO_BIN_EXE_ferry\") to Chroot::with_ferry_bin (looked in {})",
                target.display()
            )
        })
}

/// Unmounts whatever is still mounted below `root`, then deletes it
/// without ever descending into another filesystem.
fn remove_root(root: &Path) -> Result<(), String> {
    let mut mounts = mounts_under(root)?;
    if !mounts.is_empty() {
        // Deepest first; lazily if busy, which detaches them from the tree.
        mounts.sort_by_key(|m| std::cmp::Reverse(m.as_os_str().len()));
        for mount in &mounts {
            let mut umount = Command::new("umount");
            umount.arg(mount);
            if checked(&mut umount).is_err() {
                let _ = checked(Command::new("umount").arg("--lazy").arg(mount));
            }
        }
        let left = mounts_under(root)?;
        if !left.is_empty() {
            return Err(format!("still mounted: {left:?}"));
        }
        eprintln!("ferry-testkit: unmounted {mounts:?}, left behind by the test");
    }
    let device = std::fs::symlink_metadata(root)
        .map_err(|e| format!("{}: {e}", root.display()))?
        .dev();
    remove_tree(root, device)
}

fn remove_tree(path: &Path, device: u64) -> Result<(), String> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_dir() {
        return std::fs::remove_file(path).map_err(|e| format!("{}: {e}", path.display()));
    }
    if meta.dev() != device {
        return Err(format!("{} is another filesystem", path.display()));
    }
    let entries = std::fs::read_dir(path).map_err(|e| format!("{}: {e}", path.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", path.display()))?;
        remove_tree(&entry.path(), device)?;
    }
    std::fs::remove_dir(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Mount points at or below `root` in this process's mount namespace.
fn mounts_under(root: &Path) -> Result<Vec<PathBuf>, String> {
    let table = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("/proc/self/mountinfo: {e}"))?;
    Ok(parse_mountinfo(&table)
        .into_iter()
        .filter(|m| m.starts_with(root))
        .collect())
}

/// The mount points (5th field, octal escapes decoded) of a mountinfo table.
fn parse_mountinfo(table: &str) -> Vec<PathBuf> {
    table
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape_octal(field)))
        .collect()
}

fn unescape_octal(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_are_decoded() {
        let table = "36 35 98:0 / /mnt/with\\040space rw,noatime master:1 - ext3 /dev/root rw\n\
                     37 35 0:5 / /tmp/ferry-chroot-x/proc rw - proc proc rw\n";
        assert_eq!(
            parse_mountinfo(table),
            [
                PathBuf::from("/mnt/with space"),
                PathBuf::from("/tmp/ferry-chroot-x/proc")
            ]
        );
        assert!(parse_mountinfo(table)[1].starts_with("/tmp/ferry-chroot-x"));
        assert!(!Path::new("/tmp/ferry-chroot-xy").starts_with("/tmp/ferry-chroot-x"));
    }

    #[test]
    fn removal_stops_at_another_filesystem() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/b/f"), b"x").unwrap();
        // A device number the tree does not have: nothing is removed.
        let device = std::fs::metadata(dir.path()).unwrap().dev();
        assert!(remove_tree(&dir.path().join("a"), device + 1).is_err());
        assert!(dir.path().join("a/b/f").exists());
        remove_tree(&dir.path().join("a"), device).unwrap();
        assert!(!dir.path().join("a").exists());
    }
}
