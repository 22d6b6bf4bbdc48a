//! The takeover's backup: stage 1 archives the config's paths and the
//! output of the user's own backup script into one tar with a sha256
//! manifest ([`make`], on the running old OS, before anything changes);
//! stage 2 writes it into the new OS's data partition, extracts it there
//! and reads everything back against the manifest ([`write`], [`verify`]).
//!
//! Layout in the archive (and under `ferry-takeover/backup/` once
//! extracted): `files/<absolute path>` for the config's paths, `script/`
//! for what the script wrote. The manifest's names are these archive
//! paths, so `cd ferry-takeover/backup && sha256sum -c ../manifest.sha256`
//! checks the extracted tree.
//!
//! Not for: choosing what to back up (the config) or restoring it into
//! the new OS's applications (the new OS's business).

use std::collections::BTreeSet;
use std::ffi::{CString, OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::config::BackupConfig;

/// The directory ferry owns on the data partition.
pub const DATA_DIR: &str = "ferry-takeover";
/// The archive, in the staging directory and in [`DATA_DIR`].
pub const ARCHIVE: &str = "backup.tar";
/// The sha256sum-compatible manifest, next to the archive.
pub const MANIFEST: &str = "manifest.sha256";
/// The extracted archive, in [`DATA_DIR`].
pub const EXTRACTED: &str = "backup";
/// Prefix in the archive of the config's paths.
pub const FILES_PREFIX: &str = "files";
/// Prefix in the archive of what the backup script wrote.
pub const SCRIPT_PREFIX: &str = "script";

/// How many of the script's last output lines are kept (for errors and events).
const TAIL_LINES: usize = 20;
/// A kept line is cut after this many bytes (a script may print binary).
const TAIL_LINE_BYTES: usize = 400;
/// Between SIGTERM and SIGKILL to a timed-out script's process group.
const TERM_GRACE: Duration = Duration::from_secs(2);

/// Why a backup could not be made, written or verified.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("backup path {} does not exist (looked for {})", path.display(), under.display())]
    MissingPath { path: PathBuf, under: PathBuf },
    #[error("backup path {}: only a path below / without `..` can be backed up", path.display())]
    BadPath { path: PathBuf },
    #[error("{}: changed while it was archived ({expected} bytes when started, {found} after); run the backup again when it is quiet", path.display())]
    Changed {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
    #[error("backup script {}: cannot be started: {source}", script.display())]
    ScriptStart {
        script: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("backup script {} exited with code {code}{}", script.display(), tail(stderr))]
    ScriptFailed {
        script: PathBuf,
        code: i32,
        stderr: Vec<String>,
    },
    #[error("backup script {} was killed by signal {signal} ({name}){}", script.display(), tail(stderr))]
    ScriptKilled {
        script: PathBuf,
        signal: i32,
        name: &'static str,
        stderr: Vec<String>,
    },
    #[error("backup script {} did not finish within {seconds} s: its process group was killed{}", script.display(), tail(stderr))]
    ScriptTimeout {
        script: PathBuf,
        seconds: u64,
        stderr: Vec<String>,
    },
    #[error("{}: the backup needs {needed} bytes, the filesystem has {available} bytes free; nothing was written", dir.display())]
    NoSpace {
        dir: PathBuf,
        needed: u64,
        available: u64,
    },
    #[error("{}: sha256 is {found}, the backup recorded {expected}", path.display())]
    Mismatch {
        path: PathBuf,
        expected: String,
        found: String,
    },
    #[error("{}: {size} bytes, the backup recorded {expected}", path.display())]
    SizeMismatch {
        path: PathBuf,
        expected: u64,
        size: u64,
    },
    #[error("{}: listed in the manifest but not a regular file after writing", path.display())]
    NotWritten { path: PathBuf },
    #[error("{}: the archive is damaged: {message}", path.display())]
    Corrupt { path: PathBuf, message: String },
    #[error("archive entry `{entry}`: {why}")]
    UnsafeEntry { entry: String, why: &'static str },
    #[error("{}:{line}: not a sha256sum line", path.display())]
    Manifest { path: PathBuf, line: usize },
}

fn tail(lines: &[String]) -> String {
    if lines.is_empty() {
        String::new()
    } else {
        format!("; its last output on stderr:\n  {}", lines.join("\n  "))
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What the backup script did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptRun {
    pub script: PathBuf,
    pub millis: u64,
    /// Regular files it wrote (archived under `script/`).
    pub files: u64,
    pub stdout_tail: Vec<String>,
    pub stderr_tail: Vec<String>,
}

/// A backup made by [`make`], as stage 1 hands it to stage 2: where its
/// archive and manifest are and what they must hash to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backup {
    /// The tar (uncompressed: a data partition is written once, and a
    /// plain tar is read back and extracted without a decompressor).
    pub archive: PathBuf,
    pub sha256: String,
    pub size: u64,
    pub manifest: PathBuf,
    pub manifest_sha256: String,
    /// Entries in the archive (files, directories, symlinks).
    pub entries: u64,
    /// Regular files in the archive (the manifest's lines) and their bytes.
    pub files: u64,
    pub file_bytes: u64,
    /// What was not archived, and why (sockets, FIFOs, devices; files
    /// that vanished while the tree was walked).
    pub skipped: Vec<String>,
    pub script: Option<ScriptRun>,
}

impl Backup {
    /// The same backup with its archive and manifest in `dir` (stage 2
    /// copies them into its tmpfs before the old root goes away).
    pub fn relocated(&self, dir: &Path) -> Backup {
        Backup {
            archive: dir.join(ARCHIVE),
            manifest: dir.join(MANIFEST),
            ..self.clone()
        }
    }
}

/// A file ferry wrote into the new OS, as the events list it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WrittenFile {
    #[serde(serialize_with = "lossy_path")]
    pub path: PathBuf,
    pub sha256: String,
    pub size: u64,
}

pub(crate) fn lossy_path<S: Serializer>(path: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&path.to_string_lossy())
}

/// The backup in the data partition, read back and verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WrittenBackup {
    /// `data_dir/ferry-takeover`.
    #[serde(serialize_with = "lossy_path")]
    pub dir: PathBuf,
    /// The archive, the manifest, then every extracted regular file.
    pub files: Vec<WrittenFile>,
}

// ------------------------------------------------------------------ make

/// Stage 1: archives `config.paths` (read under `root`; the config's
/// absolute paths are taken relative to it) and the output of
/// `config.script`, when named, into `staging/backup.tar` with
/// `staging/manifest.sha256`. `image` is told to the script
/// (`FERRY_TAKEOVER_IMAGE`). Every path is checked before the script runs;
/// a missing one is an error naming it. Changes nothing outside `staging`.
pub fn make(
    config: &BackupConfig,
    root: &Path,
    staging: &Path,
    image: Option<&Path>,
) -> Result<Backup, BackupError> {
    let mut sources = Vec::new();
    for path in &config.paths {
        let (relative, source) = existing_source(path.as_path(), root)?;
        sources.push((source, Path::new(FILES_PREFIX).join(relative)));
    }
    fs::create_dir_all(staging).map_err(io_err(staging))?;
    let script_dir = staging.join("script-output");
    let script = match &config.script {
        Some(script) => {
            fresh_dir(&script_dir)?;
            Some(run_script(
                script.as_path(),
                config.script_timeout_seconds,
                root,
                &script_dir,
                image,
            )?)
        }
        None => None,
    };
    let archive = staging.join(ARCHIVE);
    let part = staging.join(format!("{ARCHIVE}.part"));
    let built = build(
        staging,
        &part,
        &sources,
        script.as_ref().map(|_| script_dir.as_path()),
    );
    // What the script wrote is in the archive now (or the backup failed).
    if script.is_some() {
        let _ = fs::remove_dir_all(&script_dir);
    }
    let archiver = match built {
        Ok(archiver) => archiver,
        Err(e) => {
            let _ = fs::remove_file(&part);
            return Err(e);
        }
    };
    fs::rename(&part, &archive).map_err(io_err(&archive))?;
    let manifest = staging.join(MANIFEST);
    ferry_journal::write_atomic(&manifest, &archiver.manifest).map_err(io_err(&manifest))?;
    let (sha256, size) = ferry_fetch::sha256_file(&archive).map_err(io_err(&archive))?;
    let script = script.map(|run| ScriptRun {
        files: archiver.script_files,
        ..run
    });
    Ok(Backup {
        archive,
        sha256,
        size,
        manifest,
        manifest_sha256: ferry_fetch::sha256_hex(&archiver.manifest),
        entries: archiver.entries,
        files: archiver.files,
        file_bytes: archiver.file_bytes,
        skipped: archiver.skipped,
        script,
    })
}

/// `path` without its root, when it has only plain components.
fn plain_relative(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(part) => out.push(part),
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// An empty directory at `dir`, only ours (0700): what was there is ferry's
/// own leftover from an earlier attempt.
fn fresh_dir(dir: &Path) -> Result<(), BackupError> {
    match fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(BackupError::Io {
                path: dir.into(),
                source: e,
            })
        }
    }
    fs::DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .map_err(io_err(dir))
}

struct Archiver {
    builder: tar::Builder<BufWriter<File>>,
    /// The staging directory's (device, inode): a backup path that holds
    /// it must not archive the archive being written.
    staging: Option<(u64, u64)>,
    archive: PathBuf,
    /// Archive names added, so overlapping config paths are archived once.
    names: BTreeSet<PathBuf>,
    manifest: Vec<u8>,
    entries: u64,
    files: u64,
    file_bytes: u64,
    script_files: u64,
    skipped: Vec<String>,
}

fn build(
    staging: &Path,
    part: &Path,
    sources: &[(PathBuf, PathBuf)],
    script_dir: Option<&Path>,
) -> Result<Built, BackupError> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(part)
        .map_err(io_err(part))?;
    let mut builder = tar::Builder::new(BufWriter::new(file));
    builder.follow_symlinks(false);
    let mut archiver = Archiver {
        builder,
        staging: fs::metadata(staging).ok().map(|m| (m.dev(), m.ino())),
        archive: part.to_path_buf(),
        names: BTreeSet::new(),
        manifest: Vec::new(),
        entries: 0,
        files: 0,
        file_bytes: 0,
        script_files: 0,
        skipped: Vec::new(),
    };
    for (source, name) in sources {
        archiver.add(source, name, true)?;
    }
    if let Some(dir) = script_dir {
        let before = archiver.files;
        archiver.add(dir, Path::new(SCRIPT_PREFIX), true)?;
        archiver.script_files = archiver.files - before;
    }
    let Archiver {
        builder,
        manifest,
        entries,
        files,
        file_bytes,
        script_files,
        skipped,
        ..
    } = archiver;
    let writer = builder
        .into_inner()
        .map_err(io_err(part))?
        .into_inner()
        .map_err(|e| BackupError::Io {
            path: part.to_path_buf(),
            source: e.into_error(),
        })?;
    writer.sync_all().map_err(io_err(part))?;
    Ok(Built {
        manifest,
        entries,
        files,
        file_bytes,
        script_files,
        skipped,
    })
}

/// What [`build`] archived.
struct Built {
    manifest: Vec<u8>,
    entries: u64,
    files: u64,
    file_bytes: u64,
    script_files: u64,
    skipped: Vec<String>,
}

impl Archiver {
    /// Adds `source` as `name`, directories recursively. `top`: a path the
    /// config named, which must exist (a vanished inner entry is skipped).
    fn add(&mut self, source: &Path, name: &Path, top: bool) -> Result<(), BackupError> {
        if !self.names.insert(name.to_path_buf()) {
            return Ok(());
        }
        let meta = match fs::symlink_metadata(source) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound && !top => {
                self.skipped.push(format!(
                    "{}: vanished while the backup was made",
                    source.display()
                ));
                return Ok(());
            }
            Err(e) => {
                return Err(BackupError::Io {
                    path: source.into(),
                    source: e,
                })
            }
        };
        let kind = meta.file_type();
        if kind.is_dir() && self.staging == Some((meta.dev(), meta.ino())) {
            self.skipped.push(format!(
                "{}: the backup's own staging directory, not backed up",
                source.display()
            ));
            return Ok(());
        }
        let mut header = tar::Header::new_gnu();
        header.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
        let corrupt = |e: io::Error| BackupError::Io {
            path: self.archive.clone(),
            source: e,
        };
        if kind.is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_size(0);
            self.builder
                .append_data(&mut header, name, io::empty())
                .map_err(corrupt)?;
            self.entries += 1;
            let mut children: Vec<OsString> = fs::read_dir(source)
                .map_err(io_err(source))?
                .map(|entry| entry.map(|e| e.file_name()))
                .collect::<Result<_, _>>()
                .map_err(io_err(source))?;
            children.sort();
            for child in children {
                self.add(&source.join(&child), &name.join(&child), false)?;
            }
        } else if kind.is_symlink() {
            let target = fs::read_link(source).map_err(io_err(source))?;
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            self.builder
                .append_link(&mut header, name, &target)
                .map_err(corrupt)?;
            self.entries += 1;
        } else if kind.is_file() {
            self.add_file(source, name, header)?;
        } else {
            let what = if kind.is_fifo() {
                "a FIFO"
            } else if kind.is_socket() {
                "a socket"
            } else if kind.is_block_device() {
                "a block device"
            } else if kind.is_char_device() {
                "a character device"
            } else {
                "of an unknown kind"
            };
            self.skipped.push(format!(
                "{}: {what}, not backed up (only files, directories and symlinks are)",
                source.display()
            ));
        }
        Ok(())
    }

    fn add_file(
        &mut self,
        source: &Path,
        name: &Path,
        mut header: tar::Header,
    ) -> Result<(), BackupError> {
        // O_NOFOLLOW: it was a file when looked at; if it became a link
        // since, nothing is read through it.
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(source)
            .map_err(io_err(source))?;
        let meta = file.metadata().map_err(io_err(source))?;
        let size = meta.len();
        header.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
        header.set_size(size);
        let mut reader = HashingReader {
            inner: (&file).take(size),
            hasher: Sha256::new(),
            count: 0,
        };
        self.builder
            .append_data(&mut header, name, &mut reader)
            .map_err(|e| BackupError::Io {
                path: source.to_path_buf(),
                source: e,
            })?;
        let after = file.metadata().map_err(io_err(source))?.len();
        if reader.count != size || after != size {
            return Err(BackupError::Changed {
                path: source.to_path_buf(),
                expected: size,
                found: if reader.count != size {
                    reader.count
                } else {
                    after
                },
            });
        }
        let sha = format!("{:x}", reader.hasher.finalize());
        self.manifest
            .extend_from_slice(&manifest_line(&sha, name.as_os_str()));
        self.entries += 1;
        self.files += 1;
        self.file_bytes += size;
        Ok(())
    }
}

/// Hashes what goes through it: the manifest is of the bytes archived,
/// read once.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// One `sha256sum` line. As coreutils does, a name with a backslash, a
/// newline or a carriage return is escaped and its line starts with `\`.
pub fn manifest_line(sha256: &str, name: &OsStr) -> Vec<u8> {
    let bytes = name.as_bytes();
    let mut line = Vec::with_capacity(bytes.len() + 70);
    let escape = bytes.iter().any(|b| matches!(b, b'\\' | b'\n' | b'\r'));
    if escape {
        line.push(b'\\');
    }
    line.extend_from_slice(sha256.as_bytes());
    line.extend_from_slice(b"  ");
    for &b in bytes {
        match b {
            b'\\' if escape => line.extend_from_slice(b"\\\\"),
            b'\n' => line.extend_from_slice(b"\\n"),
            b'\r' => line.extend_from_slice(b"\\r"),
            _ => line.push(b),
        }
    }
    line.push(b'\n');
    line
}

/// Reads a manifest written by [`make`]: (archive path, sha256) per line.
/// Every name must be a plain relative path.
pub fn parse_manifest(bytes: &[u8], path: &Path) -> Result<Vec<(PathBuf, String)>, BackupError> {
    let mut out = Vec::new();
    for (n, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let bad = || BackupError::Manifest {
            path: path.to_path_buf(),
            line: n + 1,
        };
        let (escaped, line) = match line.strip_prefix(b"\\") {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        let sha = line.get(..64).ok_or_else(bad)?;
        if !sha.iter().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let raw = line
            .get(64..)
            .and_then(|rest| {
                rest.strip_prefix(b"  ")
                    .or_else(|| rest.strip_prefix(b" *"))
            })
            .ok_or_else(bad)?;
        let mut name = Vec::with_capacity(raw.len());
        let mut chars = raw.iter();
        while let Some(&b) = chars.next() {
            if b == b'\\' && escaped {
                match chars.next() {
                    Some(b'\\') => name.push(b'\\'),
                    Some(b'n') => name.push(b'\n'),
                    Some(b'r') => name.push(b'\r'),
                    _ => return Err(bad()),
                }
            } else {
                name.push(b);
            }
        }
        let name = PathBuf::from(OsString::from_vec(name));
        if plain_relative(&name).as_deref() != Some(name.as_path()) {
            return Err(bad());
        }
        out.push((name, String::from_utf8_lossy(sha).to_ascii_lowercase()));
    }
    Ok(out)
}

// ---------------------------------------------------------------- script

/// Runs the user's backup script with the documented environment (see
/// docs/takeover.md "Backup"): no stdin, in `out` (where it writes what
/// is archived), killed with its whole process group after
/// `timeout_seconds`; a non-zero exit or a signal is an error. Processes
/// it leaves behind are killed when it exits (a backup that is still
/// being written cannot be archived).
fn run_script(
    script: &Path,
    timeout_seconds: u64,
    root: &Path,
    out: &Path,
    image: Option<&Path>,
) -> Result<ScriptRun, BackupError> {
    let started = Instant::now();
    let mut command = Command::new(script);
    command
        .env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| {
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()
            }),
        )
        .env(
            "HOME",
            std::env::var_os("HOME").unwrap_or_else(|| "/root".into()),
        )
        .env("LANG", "C.UTF-8")
        .env("FERRY_BACKUP_DIR", out)
        .env("FERRY_TAKEOVER_ROOT", root)
        .env("FERRY_BACKUP_TIMEOUT", timeout_seconds.to_string())
        .current_dir(out)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a timeout kills its children too.
        .process_group(0);
    if let Some(image) = image {
        command.env("FERRY_TAKEOVER_IMAGE", image);
    }
    let mut child = command.spawn().map_err(|e| BackupError::ScriptStart {
        script: script.to_path_buf(),
        source: e,
    })?;
    let (tx, rx) = mpsc::channel();
    if let Some(stdout) = child.stdout.take() {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let _ = tx.send((false, last_lines(stdout)));
        });
    }
    if let Some(stderr) = child.stderr.take() {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let _ = tx.send((true, last_lines(stderr)));
        });
    }
    drop(tx);
    let pid = child.id() as libc::pid_t;
    let deadline = started + Duration::from_secs(timeout_seconds);
    let mut timed_out = false;
    let mut term_sent: Option<Instant> = None;
    loop {
        // WNOWAIT: the script stays a zombie, so its process group id
        // cannot be reused before the group is killed below.
        match exited(pid) {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => {
                kill_group(pid, libc::SIGKILL);
                let _ = child.wait();
                return Err(BackupError::Io {
                    path: script.to_path_buf(),
                    source: e,
                });
            }
        }
        let now = Instant::now();
        match term_sent {
            None if now >= deadline => {
                timed_out = true;
                kill_group(pid, libc::SIGTERM);
                term_sent = Some(now);
            }
            Some(at) if now >= at + TERM_GRACE => {
                kill_group(pid, libc::SIGKILL);
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Whatever it left running dies with it.
    kill_group(pid, libc::SIGKILL);
    let status = child.wait().map_err(io_err(script))?;
    let mut stdout_tail = Vec::new();
    let mut stderr_tail = Vec::new();
    // The pipes close once the group is dead; a process that left the
    // group (setsid) and kept them open is not waited for.
    let readers_deadline = Instant::now() + Duration::from_secs(2);
    for _ in 0..2 {
        let left = readers_deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((true, lines)) => stderr_tail = lines,
            Ok((false, lines)) => stdout_tail = lines,
            Err(_) => break,
        }
    }
    let script_path = script.to_path_buf();
    if timed_out {
        return Err(BackupError::ScriptTimeout {
            script: script_path,
            seconds: timeout_seconds,
            stderr: stderr_tail,
        });
    }
    if let Some(signal) = status.signal() {
        return Err(BackupError::ScriptKilled {
            script: script_path,
            signal,
            name: signal_name(signal),
            stderr: stderr_tail,
        });
    }
    match status.code() {
        Some(0) => Ok(ScriptRun {
            script: script_path,
            millis: started.elapsed().as_millis() as u64,
            files: 0,
            stdout_tail,
            stderr_tail,
        }),
        code => Err(BackupError::ScriptFailed {
            script: script_path,
            code: code.unwrap_or(-1),
            stderr: stderr_tail,
        }),
    }
}

/// Whether `pid` (our child) has exited, leaving it unreaped.
fn exited(pid: libc::pid_t) -> io::Result<bool> {
    // SAFETY: a zeroed siginfo_t is a valid value for waitid to fill.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is a valid, writable siginfo_t; pid is our child.
    let status = unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    if status != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: waitid filled `info` (si_pid is 0 when nothing has exited).
    Ok(unsafe { info.si_pid() } != 0)
}

fn kill_group(pgid: libc::pid_t, signal: libc::c_int) {
    // SAFETY: kill has no memory preconditions; a group already gone
    // (ESRCH) is what we want, so its result is not needed.
    unsafe {
        libc::kill(-pgid, signal);
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGSYS => "SIGSYS",
        _ => "another signal",
    }
}

/// The last [`TAIL_LINES`] lines of `reader`, each cut to
/// [`TAIL_LINE_BYTES`], read to its end.
fn last_lines(mut reader: impl Read) -> Vec<String> {
    let mut lines: std::collections::VecDeque<Vec<u8>> = Default::default();
    let mut current = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        let n = match reader.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for &b in &buffer[..n] {
            if b == b'\n' {
                lines.push_back(std::mem::take(&mut current));
                if lines.len() > TAIL_LINES {
                    lines.pop_front();
                }
            } else if current.len() < TAIL_LINE_BYTES {
                current.push(b);
            }
        }
    }
    if !current.is_empty() {
        lines.push_back(current);
        if lines.len() > TAIL_LINES {
            lines.pop_front();
        }
    }
    lines
        .into_iter()
        .map(|l| String::from_utf8_lossy(&l).into_owned())
        .collect()
}

// ----------------------------------------------------------------- write

/// Stage 2: writes `backup` into the mounted data partition `data_dir`:
/// `ferry-takeover/backup.tar`, `ferry-takeover/manifest.sha256` and the
/// archive extracted under `ferry-takeover/backup/`, every file and
/// directory synced; then reads it all back ([`verify`]).
///
/// The source archive and manifest are checked against the sha256s
/// [`make`] recorded first, and the free space against what the backup
/// needs: either failing writes nothing. Everything is written under
/// `.part` names and put in place at the end, the manifest last, so a
/// manifest in `ferry-takeover/` always describes a complete backup.
pub fn write(backup: &Backup, data_dir: &Path) -> Result<WrittenBackup, BackupError> {
    check_file(&backup.archive, &backup.sha256, Some(backup.size))?;
    check_file(&backup.manifest, &backup.manifest_sha256, None)?;
    let manifest = fs::read(&backup.manifest).map_err(io_err(&backup.manifest))?;
    parse_manifest(&manifest, &backup.manifest)?;

    // Each entry takes at least a block of its own once extracted.
    let needed =
        backup.size + backup.file_bytes + manifest.len() as u64 + 4096 * (backup.entries + 4);
    let available = free_bytes(data_dir)?;
    if needed > available {
        return Err(BackupError::NoSpace {
            dir: data_dir.to_path_buf(),
            needed,
            available,
        });
    }

    let top = data_dir.join(DATA_DIR);
    match fs::DirBuilder::new().mode(0o755).create(&top) {
        Ok(()) => sync_dir(data_dir)?,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(BackupError::Io {
                path: top,
                source: e,
            })
        }
    }
    let archive_part = top.join(format!("{ARCHIVE}.part"));
    let extracted_part = top.join(format!("{EXTRACTED}.part"));
    let manifest_part = top.join(format!("{MANIFEST}.part"));
    let remove_parts = || {
        let _ = fs::remove_file(&archive_part);
        let _ = fs::remove_dir_all(&extracted_part);
        let _ = fs::remove_file(&manifest_part);
    };
    remove_parts();
    let staged = (|| {
        copy_synced(&backup.archive, &archive_part)?;
        extract(&archive_part, &extracted_part)?;
        write_synced(&manifest_part, &manifest)?;
        sync_dir(&top)
    })();
    if let Err(e) = staged {
        remove_parts();
        return Err(e);
    }

    let manifest_path = top.join(MANIFEST);
    let archive_path = top.join(ARCHIVE);
    let extracted = top.join(EXTRACTED);
    // An earlier attempt's manifest goes first: from here until the new
    // one is renamed in, there is none.
    remove_if_present(&manifest_path)?;
    sync_dir(&top)?;
    match fs::remove_dir_all(&extracted) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(BackupError::Io {
                path: extracted,
                source: e,
            })
        }
    }
    fs::rename(&extracted_part, &extracted).map_err(io_err(&extracted))?;
    fs::rename(&archive_part, &archive_path).map_err(io_err(&archive_path))?;
    sync_dir(&top)?;
    fs::rename(&manifest_part, &manifest_path).map_err(io_err(&manifest_path))?;
    sync_dir(&top)?;
    verify(backup, data_dir)
}

/// Reads back what [`write`] put under `data_dir/ferry-takeover`, past the
/// page cache: the archive's sha256 and size, the manifest's sha256, and
/// every file the manifest lists (a regular file, not a link) against it.
/// Any difference is an error naming the file. Usable again later (on
/// the new OS) to check the backup is still intact.
pub fn verify(backup: &Backup, data_dir: &Path) -> Result<WrittenBackup, BackupError> {
    let top = data_dir.join(DATA_DIR);
    let archive = top.join(ARCHIVE);
    let manifest_path = top.join(MANIFEST);
    let mut files = Vec::new();
    let (sha, size) = uncached_sha256(&archive)?;
    if size != backup.size {
        return Err(BackupError::SizeMismatch {
            path: archive,
            expected: backup.size,
            size,
        });
    }
    if sha != backup.sha256 {
        return Err(BackupError::Mismatch {
            path: archive,
            expected: backup.sha256.clone(),
            found: sha,
        });
    }
    files.push(WrittenFile {
        path: archive,
        sha256: sha,
        size,
    });
    let (sha, size) = uncached_sha256(&manifest_path)?;
    if sha != backup.manifest_sha256 {
        return Err(BackupError::Mismatch {
            path: manifest_path,
            expected: backup.manifest_sha256.clone(),
            found: sha,
        });
    }
    let manifest = fs::read(&manifest_path).map_err(io_err(&manifest_path))?;
    files.push(WrittenFile {
        path: manifest_path.clone(),
        sha256: sha,
        size,
    });
    let extracted = top.join(EXTRACTED);
    for (name, expected) in parse_manifest(&manifest, &manifest_path)? {
        let path = extracted.join(&name);
        let regular = fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_file());
        if !regular {
            return Err(BackupError::NotWritten { path });
        }
        let (found, size) = uncached_sha256(&path)?;
        if found != expected {
            return Err(BackupError::Mismatch {
                path,
                expected,
                found,
            });
        }
        files.push(WrittenFile {
            path,
            sha256: found,
            size,
        });
    }
    Ok(WrittenBackup { dir: top, files })
}

fn check_file(path: &Path, sha256: &str, size: Option<u64>) -> Result<(), BackupError> {
    let (found, found_size) = ferry_fetch::sha256_file(path).map_err(io_err(path))?;
    if let Some(expected) = size.filter(|s| *s != found_size) {
        return Err(BackupError::SizeMismatch {
            path: path.to_path_buf(),
            expected,
            size: found_size,
        });
    }
    if found != sha256 {
        return Err(BackupError::Mismatch {
            path: path.to_path_buf(),
            expected: sha256.to_string(),
            found,
        });
    }
    Ok(())
}

fn remove_if_present(path: &Path) -> Result<(), BackupError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(BackupError::Io {
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

/// Bytes an unprivileged writer may still use on the filesystem of `dir`.
fn free_bytes(dir: &Path) -> Result<u64, BackupError> {
    let c_path = CString::new(dir.as_os_str().as_bytes()).map_err(|e| BackupError::Io {
        path: dir.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidInput, e),
    })?;
    // SAFETY: a zeroed statvfs is a valid value for statvfs to fill.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c_path is NUL-terminated and `stat` is writable.
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) } != 0 {
        return Err(BackupError::Io {
            path: dir.to_path_buf(),
            source: io::Error::last_os_error(),
        });
    }
    Ok((stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
}

/// After a file's data is synced, its pages are dropped from the cache so
/// the read-back reads the device, not memory.
fn drop_cache(file: &File) {
    // SAFETY: the fd is open for the call's duration. The advice is only
    // advice: a kernel that ignores it leaves a slower check, not a wrong one.
    unsafe {
        libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
    }
}

fn uncached_sha256(path: &Path) -> Result<(String, u64), BackupError> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(io_err(path))?;
    drop_cache(&file);
    let mut reader = HashingReader {
        inner: file,
        hasher: Sha256::new(),
        count: 0,
    };
    io::copy(&mut reader, &mut io::sink()).map_err(io_err(path))?;
    Ok((format!("{:x}", reader.hasher.finalize()), reader.count))
}

fn sync_dir(dir: &Path) -> Result<(), BackupError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

fn create_new(path: &Path, mode: u32) -> Result<File, BackupError> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(io_err(path))
}

fn finish_file(file: &File, path: &Path) -> Result<(), BackupError> {
    file.sync_all().map_err(io_err(path))?;
    drop_cache(file);
    Ok(())
}

fn copy_synced(from: &Path, to: &Path) -> Result<(), BackupError> {
    let mut source = File::open(from).map_err(io_err(from))?;
    let mut out = create_new(to, 0o600)?;
    io::copy(&mut source, &mut out).map_err(io_err(to))?;
    finish_file(&out, to)
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), BackupError> {
    let mut out = create_new(path, 0o644)?;
    out.write_all(bytes).map_err(io_err(path))?;
    finish_file(&out, path)
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Owner, mode and time an entry gets once its content is in place.
struct Attributes {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: u64,
}

impl Attributes {
    fn of(header: &tar::Header, archive: &Path) -> Result<Attributes, BackupError> {
        let corrupt = |e: io::Error| BackupError::Corrupt {
            path: archive.to_path_buf(),
            message: e.to_string(),
        };
        Ok(Attributes {
            mode: header.mode().map_err(corrupt)? & 0o7777,
            uid: header.uid().map_err(corrupt)? as u32,
            gid: header.gid().map_err(corrupt)? as u32,
            mtime: header.mtime().map_err(corrupt)?,
        })
    }
}

/// Extracts ferry's own archive into the new directory `dest`, keeping
/// modes, owners (when run as root) and mtimes. Written defensively all
/// the same: only plain relative names; nothing is written through a
/// symlink (every parent is checked to be a real directory, files are
/// created new with O_NOFOLLOW, symlinks are made last); hard links and
/// special files are refused (ferry's archives have none).
fn extract(archive: &Path, dest: &Path) -> Result<(), BackupError> {
    let corrupt = |e: io::Error| BackupError::Corrupt {
        path: archive.to_path_buf(),
        message: e.to_string(),
    };
    fs::DirBuilder::new()
        .mode(0o755)
        .create(dest)
        .map_err(io_err(dest))?;
    let root = is_root();
    let file = File::open(archive).map_err(io_err(archive))?;
    let mut tar = tar::Archive::new(io::BufReader::new(file));
    let mut dirs: Vec<(PathBuf, Attributes)> = Vec::new();
    let mut symlinks: Vec<(PathBuf, PathBuf, Attributes)> = Vec::new();
    for entry in tar.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        let name = entry.path().map_err(corrupt)?.into_owned();
        let shown = name.to_string_lossy().into_owned();
        let unsafe_entry = |why| BackupError::UnsafeEntry {
            entry: shown.clone(),
            why,
        };
        let relative = plain_relative(&name)
            .filter(|r| !name.is_absolute() && r.as_path() == name.as_path())
            .ok_or_else(|| unsafe_entry("not a plain relative path"))?;
        let kind = entry.header().entry_type();
        let attributes = Attributes::of(entry.header(), archive)?;
        let target = dest.join(&relative);
        if kind.is_dir() {
            real_dirs(dest, &relative).map_err(|e| match e {
                Walk::NotADir => unsafe_entry("a parent is not a directory"),
                Walk::Io(path, e) => BackupError::Io { path, source: e },
            })?;
            dirs.push((target, attributes));
            continue;
        }
        if let Some(parent) = relative.parent() {
            real_dirs(dest, parent).map_err(|e| match e {
                Walk::NotADir => unsafe_entry("a parent is not a directory"),
                Walk::Io(path, e) => BackupError::Io { path, source: e },
            })?;
        }
        if kind.is_file() {
            let mut out = create_new(&target, 0o600)?;
            io::copy(&mut entry, &mut out).map_err(io_err(&target))?;
            if root {
                std::os::unix::fs::fchown(&out, Some(attributes.uid), Some(attributes.gid))
                    .map_err(io_err(&target))?;
            }
            // After chown, which clears set-id bits.
            out.set_permissions(fs::Permissions::from_mode(attributes.mode))
                .map_err(io_err(&target))?;
            out.set_modified(mtime(attributes.mtime))
                .map_err(io_err(&target))?;
            finish_file(&out, &target)?;
        } else if kind.is_symlink() {
            let link = entry
                .link_name()
                .map_err(corrupt)?
                .ok_or_else(|| unsafe_entry("a symlink without a target"))?
                .into_owned();
            symlinks.push((target, link, attributes));
        } else {
            return Err(unsafe_entry(
                "hard links and special files are not in ferry's backups",
            ));
        }
    }
    for (at, link, attributes) in symlinks {
        std::os::unix::fs::symlink(&link, &at).map_err(io_err(&at))?;
        if root {
            std::os::unix::fs::lchown(&at, Some(attributes.uid), Some(attributes.gid))
                .map_err(io_err(&at))?;
        }
        set_link_mtime(&at, attributes.mtime)?;
    }
    // Deepest first: a directory's mtime is set after its content is in
    // place, and a read-only directory is made so last.
    for (dir, attributes) in dirs.iter().rev() {
        if root {
            std::os::unix::fs::lchown(dir, Some(attributes.uid), Some(attributes.gid))
                .map_err(io_err(dir))?;
        }
        fs::set_permissions(dir, fs::Permissions::from_mode(attributes.mode))
            .map_err(io_err(dir))?;
        let handle = File::open(dir).map_err(io_err(dir))?;
        handle
            .set_modified(mtime(attributes.mtime))
            .map_err(io_err(dir))?;
        handle.sync_all().map_err(io_err(dir))?;
    }
    sync_tree_dirs(dest)
}

fn mtime(seconds: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
}

fn set_link_mtime(path: &Path, seconds: u64) -> Result<(), BackupError> {
    let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|e| BackupError::Io {
        path: path.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidInput, e),
    })?;
    let time = libc::timespec {
        tv_sec: seconds as libc::time_t,
        tv_nsec: 0,
    };
    let times = [time, time];
    // SAFETY: c_path is NUL-terminated, `times` holds two timespecs.
    let status = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c_path.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if status != 0 {
        return Err(BackupError::Io {
            path: path.to_path_buf(),
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// Syncs every directory of the extracted tree (their entries are what
/// makes the synced files findable after a power cut).
fn sync_tree_dirs(dir: &Path) -> Result<(), BackupError> {
    sync_dir(dir)?;
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        if entry.file_type().map_err(io_err(dir))?.is_dir() {
            sync_tree_dirs(&entry.path())?;
        }
    }
    Ok(())
}

enum Walk {
    NotADir,
    Io(PathBuf, io::Error),
}

/// Makes `relative` under `base` a chain of real directories (created
/// 0755 when missing; the archive's own entry sets its mode later).
fn real_dirs(base: &Path, relative: &Path) -> Result<(), Walk> {
    let mut at = base.to_path_buf();
    for part in relative.components() {
        at.push(part);
        match fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_dir() => {}
            Ok(_) => return Err(Walk::NotADir),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::DirBuilder::new()
                    .mode(0o755)
                    .create(&at)
                    .map_err(|e| Walk::Io(at.clone(), e))?;
            }
            Err(e) => return Err(Walk::Io(at.clone(), e)),
        }
    }
    Ok(())
}

/// A backup path (absolute, as the config gives it) checked and found under
/// `root`: its plain relative form and where it is. A missing one is an
/// error naming it.
fn existing_source(path: &Path, root: &Path) -> Result<(PathBuf, PathBuf), BackupError> {
    let relative = plain_relative(path).ok_or_else(|| BackupError::BadPath {
        path: path.to_path_buf(),
    })?;
    let source = root.join(&relative);
    match fs::symlink_metadata(&source) {
        Ok(_) => Ok((relative, source)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(BackupError::MissingPath {
            path: path.to_path_buf(),
            under: source,
        }),
        Err(e) => Err(BackupError::Io {
            path: source,
            source: e,
        }),
    }
}

/// The size the config's backup paths take under `root`, for the
/// pre-flight: (entries, bytes of regular files). A missing path is an
/// error naming it; what cannot be read inside is counted as nothing.
pub fn measure(paths: &[PathBuf], root: &Path) -> Result<(u64, u64), BackupError> {
    let mut entries = 0;
    let mut bytes = 0;
    for path in paths {
        let (_, source) = existing_source(path, root)?;
        walk(&source, &mut entries, &mut bytes);
    }
    Ok((entries, bytes))
}

fn walk(path: &Path, entries: &mut u64, bytes: &mut u64) {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return;
    };
    *entries += 1;
    if meta.file_type().is_file() {
        *bytes += meta.size();
    } else if meta.file_type().is_dir() {
        if let Ok(children) = fs::read_dir(path) {
            for child in children.flatten() {
                walk(&child.path(), entries, bytes);
            }
        }
    }
}

/// The archive's size for `entries` entries holding `bytes`: a 512-byte
/// header each (long names take another), content rounded up to 512, the
/// two zero blocks at the end.
pub fn archive_estimate(entries: u64, bytes: u64) -> u64 {
    bytes + entries * (2 * 512 + 511) + 1024
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_lines_escape_as_coreutils_does_and_read_back() {
        let sha = "ab".repeat(32);
        let plain = manifest_line(&sha, OsStr::new("files/etc/a b"));
        assert_eq!(plain, format!("{sha}  files/etc/a b\n").into_bytes());
        let odd = manifest_line(&sha, OsStr::new("files/new\nline\\x"));
        assert_eq!(
            odd,
            format!("\\{sha}  files/new\\nline\\\\x\n").into_bytes()
        );
        let mut both = plain.clone();
        both.extend_from_slice(&odd);
        let read = parse_manifest(&both, Path::new("m")).unwrap();
        assert_eq!(read[1].0, PathBuf::from("files/new\nline\\x"));
        assert_eq!(read[0].1, sha);
    }

    #[test]
    fn manifest_names_that_leave_the_tree_are_refused() {
        let sha = "00".repeat(32);
        for bad in ["../x", "/etc/x", "a/../../x"] {
            let line = format!("{sha}  {bad}\n");
            assert!(
                matches!(
                    parse_manifest(line.as_bytes(), Path::new("m")),
                    Err(BackupError::Manifest { line: 1, .. })
                ),
                "{bad}"
            );
        }
        assert!(parse_manifest(b"nothex  x\n", Path::new("m")).is_err());
    }

    #[test]
    fn the_last_lines_are_kept_and_cut() {
        let text: String = (0..30).map(|n| format!("line {n}\n")).collect();
        let lines = last_lines(text.as_bytes());
        assert_eq!(lines.len(), TAIL_LINES);
        assert_eq!(lines.last().map(String::as_str), Some("line 29"));
        let long = last_lines(&vec![b'x'; 1000][..]);
        assert_eq!(long[0].len(), TAIL_LINE_BYTES);
    }
}
