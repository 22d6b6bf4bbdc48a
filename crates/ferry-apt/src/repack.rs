//! Rebuilding the `.deb` of an installed package from dpkg's database and
//! the files on disk: the backup's last source of an old version when apt's
//! cache was cleaned and the old repository is gone. Not for building
//! packages from source, nor for packages dpkg has not fully installed.
//!
//! ferry rebuilds the `.deb` itself and packs it with `dpkg-deb --build`
//! rather than running dpkg-repack: dpkg is Essential, so dpkg-deb is on
//! every Debian system (and works on a foreign root given by `--root`),
//! while dpkg-repack is a perl program a stock device does not have.
//! dpkg-repack stays the oracle of the tests. What is taken, as it does:
//!
//! - the files of `var/lib/dpkg/info/<name>.list` (`<name>:<arch>.list` for
//!   `Multi-Arch: same`), with owner, mode, mtime; symlinks as links,
//!   directories as directories (a listed symlink with listed paths under
//!   it, like `/bin` on a merged-/usr system, as the directory it points
//!   to); hard links become copies. A file diverted away from this package
//!   (`var/lib/dpkg/diversions`, by another package or locally) is read
//!   from its divert-to path, where dpkg put this package's content.
//!   Obsolete and remove-on-upgrade conffiles are left out.
//! - `DEBIAN/control`: the package's dpkg status stanza without the fields
//!   only dpkg's database has (Status, Config-Version, Conffiles,
//!   Triggers-Pending, Triggers-Awaited); unlike dpkg-repack, fields dpkg
//!   does not know are kept (they came from the original `.deb`) and the
//!   description is not tagged (a rollback must get the very same package).
//! - `DEBIAN/conffiles`: the Conffiles entries that are neither obsolete
//!   nor remove-on-upgrade; every other member (maintainer scripts,
//!   templates, triggers, shlibs, symbols, md5sums, …) copied from
//!   `var/lib/dpkg/info`.
//!
//! Owners are the real ones, set with chown in the staging tree, not
//! `--root-owner-group`: a package may ship files owned by another group
//! (setgid helpers, spool directories), and a `.deb` that made them
//! root-owned would restore a different system. That needs root, which a
//! backup has anyway. dpkg-deb names owners from the host's user database.
//!
//! A listed file missing on disk refuses the rebuild with an error naming
//! it: an incomplete `.deb` must never be kept as if it were the package.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::ffi::{CString, OsString};
use std::ops::Range;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use crate::system::SystemRoot;

/// Status fields dpkg keeps in its database that a `.deb` never carries.
const STATUS_ONLY_FIELDS: [&str; 5] = [
    "Status",
    "Config-Version",
    "Conffiles",
    "Triggers-Pending",
    "Triggers-Awaited",
];

/// Info files that are dpkg's bookkeeping, not control members.
const NOT_MEMBERS: [&str; 2] = ["list", "conffiles"];

/// More symlinks than this while resolving one path is a loop (Linux's limit).
const MAX_LINKS: usize = 40;

#[derive(Debug, thiserror::Error)]
pub enum RepackError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{package} is not in dpkg's status database")]
    NotInstalled { package: String },
    #[error(
        "{package} is not fully installed (dpkg status: {status}); its files may be incomplete"
    )]
    NotFullyInstalled { package: String, status: String },
    #[error("{package}: {path} is listed by dpkg but missing on disk; a .deb without it would not be the package")]
    MissingFile { package: String, path: String },
    #[error("{package}: dpkg lists {path:?}, which is not a plain absolute path")]
    BadPath { package: String, path: String },
    #[error("{package}: resolving {path} inside the root meets more than {MAX_LINKS} symlinks")]
    LinkLoop { package: String, path: String },
    #[error("{package}: the rebuilt .deb is not version {wanted}")]
    VersionMismatch { package: String, wanted: String },
    #[error("{package}: dpkg-deb --build failed: {stderr}")]
    Build { package: String, stderr: String },
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> RepackError + '_ {
    move |source| RepackError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The control information of a `.deb`, as made from a status stanza.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Control {
    /// `DEBIAN/control`, byte for byte the kept fields of the stanza.
    pub control: Vec<u8>,
    /// `DEBIAN/conffiles`: the paths of live conffiles.
    pub conffiles: Vec<String>,
    /// Obsolete and remove-on-upgrade conffiles: not part of the package.
    pub dropped_conffiles: Vec<String>,
}

/// One field of a deb822 stanza: its name and its whole text (name line
/// and continuation lines, with their newlines).
fn stanza_fields(stanza: &[u8]) -> Vec<(String, &[u8])> {
    let mut fields: Vec<(String, &[u8])> = Vec::new();
    let mut start = None::<(usize, String)>;
    let mut offset = 0;
    for line in stanza.split_inclusive(|&b| b == b'\n') {
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        if !continuation {
            if let Some((from, name)) = start.take() {
                fields.push((name, &stanza[from..offset]));
            }
            let name = line
                .iter()
                .position(|&b| b == b':')
                .map(|colon| String::from_utf8_lossy(&line[..colon]).trim().to_string());
            if let Some(name) = name {
                start = Some((offset, name));
            }
        }
        offset += line.len();
    }
    if let Some((from, name)) = start {
        fields.push((name, &stanza[from..]));
    }
    fields
}

/// The value of a field's text: what follows the colon, continuation
/// lines included, trimmed.
fn field_value(text: &[u8]) -> String {
    let text = String::from_utf8_lossy(text);
    text.split_once(':')
        .map_or(String::new(), |(_, value)| value.trim().to_string())
}

/// Makes a `.deb`'s control information from the package's dpkg status
/// stanza: the fields only dpkg's database has are dropped, Conffiles
/// becomes the `conffiles` member (live entries only).
pub fn control_from_status(stanza: &[u8]) -> Control {
    let mut control = Vec::new();
    let mut conffiles = Vec::new();
    let mut dropped_conffiles = Vec::new();
    for (name, text) in stanza_fields(stanza) {
        if name.eq_ignore_ascii_case("Conffiles") {
            for line in field_value(text).lines() {
                match parse_conffile(line) {
                    Some((path, true)) => dropped_conffiles.push(path),
                    Some((path, false)) => conffiles.push(path),
                    None => {}
                }
            }
        }
        if STATUS_ONLY_FIELDS
            .iter()
            .any(|f| f.eq_ignore_ascii_case(&name))
        {
            continue;
        }
        control.extend_from_slice(text);
        if !text.ends_with(b"\n") {
            control.push(b'\n');
        }
    }
    Control {
        control,
        conffiles,
        dropped_conffiles,
    }
}

/// One Conffiles line, ` /path hash [obsolete|remove-on-upgrade]`: the
/// path (it may hold spaces) and whether it is no longer part of the package.
fn parse_conffile(line: &str) -> Option<(String, bool)> {
    let line = line.trim();
    let (rest, last) = line.rsplit_once(char::is_whitespace)?;
    let (rest, dropped) = match last {
        "obsolete" | "remove-on-upgrade" => {
            (rest.trim_end().rsplit_once(char::is_whitespace)?.0, true)
        }
        _ => (rest, false),
    };
    let path = rest.trim_end();
    path.starts_with('/').then(|| (path.to_string(), dropped))
}

/// What a listed path is on disk, and so in the `.deb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
    Link,
    /// FIFO or device node.
    Special,
}

/// A path of the package: where it goes in the `.deb` and where its
/// content and metadata are read.
#[derive(Debug, Clone)]
struct Entry {
    /// As dpkg lists it, without the leading `/`.
    path: String,
    source: PathBuf,
    kind: Kind,
    meta: Meta,
}

#[derive(Debug, Clone, Copy)]
struct Meta {
    uid: u32,
    gid: u32,
    /// Permission bits with setuid, setgid and sticky.
    mode: u32,
    /// File type and permissions, for mknod.
    raw_mode: u32,
    rdev: u64,
    mtime: i64,
    mtime_nsec: i64,
}

impl Meta {
    fn of(meta: &std::fs::Metadata) -> Meta {
        Meta {
            uid: meta.uid(),
            gid: meta.gid(),
            mode: meta.mode() & 0o7777,
            raw_mode: meta.mode(),
            rdev: meta.rdev(),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
        }
    }
}

/// Everything a rebuild takes from the system, checked: the package's
/// stanza is there and installed, its info files are readable, and every
/// listed file is on disk.
#[derive(Debug, Clone)]
pub struct Inventory {
    /// `name:arch`, for messages.
    pub package: String,
    pub version: String,
    pub control: Control,
    /// `DEBIAN/<member>` ← the info file it is copied from.
    members: Vec<(String, PathBuf)>,
    entries: Vec<Entry>,
}

/// Reads what rebuilding `name:arch` of the system at `root` takes, and
/// refuses when the result could not be the installed package. Read-only.
/// For many packages, open a [`DpkgDb`] once instead.
pub fn inventory(system: &SystemRoot, name: &str, arch: &str) -> Result<Inventory, RepackError> {
    DpkgDb::open(system)?.inventory(name, arch)
}

/// dpkg's database of a root, read once: the status file indexed by
/// package, the names in the info directory, the diversions. Asking about
/// hundreds of packages then costs their file lists, not hundreds of
/// status files.
#[derive(Debug)]
pub struct DpkgDb {
    root: PathBuf,
    status: Vec<u8>,
    /// `(name, arch)` → the byte range of its stanza in `status`.
    stanzas: HashMap<(String, String), Range<usize>>,
    /// File names in `var/lib/dpkg/info`, sorted.
    info_files: Vec<String>,
    diversions: BTreeMap<String, (String, String)>,
}

impl DpkgDb {
    pub fn open(system: &SystemRoot) -> Result<DpkgDb, RepackError> {
        let root = system.path();
        let status_path = system.status_path();
        let status = std::fs::read(&status_path).map_err(io(&status_path))?;
        let info = root.join("var/lib/dpkg/info");
        let mut info_files = Vec::new();
        for entry in std::fs::read_dir(&info).map_err(io(&info))? {
            let entry = entry.map_err(io(&info))?;
            info_files.push(entry.file_name().to_string_lossy().into_owned());
        }
        info_files.sort();
        Ok(DpkgDb {
            root: root.to_path_buf(),
            stanzas: stanza_index(&status),
            status,
            info_files,
            diversions: read_diversions(root)?,
        })
    }

    /// What rebuilding `name:arch` takes, checked; see [`inventory`].
    pub fn inventory(&self, name: &str, arch: &str) -> Result<Inventory, RepackError> {
        let root = self.root.as_path();
        let package = format!("{name}:{arch}");
        let stanza = self
            .stanzas
            .get(&(name.to_string(), arch.to_string()))
            .and_then(|range| self.status.get(range.clone()))
            .ok_or_else(|| RepackError::NotInstalled {
                package: package.clone(),
            })?;
        let fields = stanza_fields(stanza);
        let value = |field: &str| {
            fields
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(field))
                .map(|(_, text)| field_value(text))
        };
        let state = value("Status").unwrap_or_default();
        if state.split_whitespace().nth(2) != Some("installed") {
            return Err(RepackError::NotFullyInstalled {
                package,
                status: state,
            });
        }
        let version = value("Version").unwrap_or_default();
        let multi_arch_same = value("Multi-Arch").as_deref() == Some("same");
        let control = control_from_status(stanza);

        let info = root.join("var/lib/dpkg/info");
        let stem = if multi_arch_same {
            package.clone()
        } else {
            name.to_string()
        };
        let members = control_members(&info, &self.info_files, &stem)?;
        let list_path = info.join(format!("{stem}.list"));
        let list = std::fs::read(&list_path).map_err(io(&list_path))?;
        let diversions = &self.diversions;

        let dropped: BTreeSet<&str> = control
            .dropped_conffiles
            .iter()
            .map(String::as_str)
            .collect();
        let mut listed = BTreeSet::new();
        for line in list.split(|&b| b == b'\n') {
            let path = String::from_utf8_lossy(line).into_owned();
            if path.is_empty() || path == "/." || dropped.contains(path.as_str()) {
                continue;
            }
            if !is_plain_absolute(&path) {
                return Err(RepackError::BadPath { package, path });
            }
            listed.insert(path.trim_end_matches('/').to_string());
        }

        let mut entries = Vec::new();
        for path in &listed {
            // A file diverted away from this package holds its content at the
            // divert-to path; a diversion this package made leaves its own file
            // in place.
            let from = match diversions.get(path.as_str()) {
                Some((to, by)) if by != name => to.clone(),
                _ => path.clone(),
            };
            let shown = if &from == path {
                path.clone()
            } else {
                format!("{path} (diverted to {from})")
            };
            let missing = || RepackError::MissingFile {
                package: package.clone(),
                path: shown.clone(),
            };
            let source = in_root(root, &from, false).map_err(|e| e.for_package(&package))?;
            let meta = match std::fs::symlink_metadata(&source) {
                Ok(meta) => meta,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(missing()),
                Err(e) => return Err(io(&source)(e)),
            };
            let has_children = listed
                .range(format!("{path}/")..)
                .next()
                .is_some_and(|p| p.starts_with(&format!("{path}/")));
            let (kind, meta, source) = if meta.file_type().is_symlink() && has_children {
                // A local link to a directory the package fills (merged /usr):
                // the package holds the directory itself.
                let target = in_root(root, &from, true).map_err(|e| e.for_package(&package))?;
                match std::fs::metadata(&target) {
                    Ok(m) if m.is_dir() => (Kind::Dir, Meta::of(&m), target),
                    Ok(_) => (Kind::Link, Meta::of(&meta), source),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(missing()),
                    Err(e) => return Err(io(&target)(e)),
                }
            } else {
                let kind = if meta.file_type().is_symlink() {
                    Kind::Link
                } else if meta.is_dir() {
                    Kind::Dir
                } else if meta.is_file() {
                    Kind::File
                } else {
                    Kind::Special
                };
                (kind, Meta::of(&meta), source)
            };
            if kind == Kind::File {
                // Readable now, or the rebuild would fail half-way.
                std::fs::File::open(&source).map_err(io(&source))?;
            }
            entries.push(Entry {
                path: path.trim_start_matches('/').to_string(),
                source,
                kind,
                meta,
            });
        }
        for conffile in &control.conffiles {
            if !listed.contains(conffile.as_str()) {
                return Err(RepackError::MissingFile {
                    package,
                    path: format!("{conffile} (a conffile dpkg does not list)"),
                });
            }
        }
        Ok(Inventory {
            package,
            version,
            control,
            members,
            entries,
        })
    }
}

/// Where each package's stanza is in a dpkg status file, by name and
/// architecture.
fn stanza_index(status: &[u8]) -> HashMap<(String, String), Range<usize>> {
    let mut index = HashMap::new();
    for range in stanza_ranges(status) {
        let stanza = &status[range.clone()];
        let (mut name, mut arch) = (None, None);
        for line in stanza.split(|&b| b == b'\n') {
            let value = |prefix: &[u8]| {
                line.strip_prefix(prefix)
                    .map(|v| String::from_utf8_lossy(v).trim().to_string())
            };
            name = name.or_else(|| value(b"Package:"));
            arch = arch.or_else(|| value(b"Architecture:"));
        }
        if let (Some(name), Some(arch)) = (name, arch) {
            index.insert((name, arch), range);
        }
    }
    index
}

/// The byte ranges of the stanzas of a deb822 file, split at empty lines.
fn stanza_ranges(text: &[u8]) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let mut start = None;
    let mut offset = 0;
    for line in text.split_inclusive(|&b| b == b'\n') {
        let blank = line.iter().all(|b| b.is_ascii_whitespace());
        match (blank, start) {
            (true, Some(from)) => {
                ranges.push(from..offset);
                start = None;
            }
            (false, None) => start = Some(offset),
            _ => {}
        }
        offset += line.len();
    }
    if let Some(from) = start {
        ranges.push(from..offset);
    }
    ranges
}

/// `var/lib/dpkg/diversions`: diverted path → (divert-to path, package
/// that diverts it, `:` for a local diversion).
fn read_diversions(root: &Path) -> Result<BTreeMap<String, (String, String)>, RepackError> {
    let path = root.join("var/lib/dpkg/diversions");
    let text = match std::fs::read(&path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(io(&path)(e)),
    };
    let lines: Vec<&str> = text.lines().collect();
    Ok(lines
        .chunks_exact(3)
        .map(|d| (d[0].to_string(), (d[1].to_string(), d[2].to_string())))
        .collect())
}

/// The control members of a package in dpkg's info directory:
/// `<stem>.<member>` files other than dpkg's own bookkeeping. A member name
/// has no dot, which keeps `python3.list` apart from `python3.11.list`.
fn control_members(
    info: &Path,
    info_files: &[String],
    stem: &str,
) -> Result<Vec<(String, PathBuf)>, RepackError> {
    let prefix = format!("{stem}.");
    let first = info_files.partition_point(|f| f.as_str() < prefix.as_str());
    let mut members = Vec::new();
    for file_name in &info_files[first..] {
        let Some(member) = file_name.strip_prefix(&prefix) else {
            break;
        };
        if member.is_empty() || member.contains('.') || NOT_MEMBERS.contains(&member) {
            continue;
        }
        let path = info.join(file_name);
        std::fs::File::open(&path).map_err(io(&path))?;
        members.push((member.to_string(), path));
    }
    Ok(members)
}

fn is_plain_absolute(path: &str) -> bool {
    path.starts_with('/')
        && Path::new(path)
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
}

/// Errors of path resolution, before the package is known.
enum ResolveError {
    Io(RepackError),
    Loop(String),
}

impl ResolveError {
    fn for_package(self, package: &str) -> RepackError {
        match self {
            ResolveError::Io(e) => e,
            ResolveError::Loop(path) => RepackError::LinkLoop {
                package: package.to_string(),
                path,
            },
        }
    }
}

/// The host path of `inside` (absolute, in the root), with symlinks
/// followed as the root's own processes would see them: an absolute link
/// target is taken inside the root, never on the host. The last component
/// is followed only when `follow_last`.
fn in_root(root: &Path, inside: &str, follow_last: bool) -> Result<PathBuf, ResolveError> {
    let mut pending: VecDeque<OsString> = Path::new(inside)
        .components()
        .filter_map(|c| match c {
            Component::Normal(part) => Some(part.to_os_string()),
            _ => None,
        })
        .collect();
    let mut resolved: Vec<OsString> = Vec::new();
    let mut links = 0;
    while let Some(part) = pending.pop_front() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        if part == "." {
            continue;
        }
        let mut candidate = root.to_path_buf();
        candidate.extend(&resolved);
        candidate.push(&part);
        let is_last = pending.is_empty();
        let is_link =
            std::fs::symlink_metadata(&candidate).is_ok_and(|m| m.file_type().is_symlink());
        if !is_link || (is_last && !follow_last) {
            resolved.push(part);
            continue;
        }
        links += 1;
        if links > MAX_LINKS {
            return Err(ResolveError::Loop(inside.to_string()));
        }
        let target =
            std::fs::read_link(&candidate).map_err(|e| ResolveError::Io(io(&candidate)(e)))?;
        if target.is_absolute() {
            resolved.clear();
        }
        for component in target.components().rev() {
            match component {
                Component::Normal(p) => pending.push_front(p.to_os_string()),
                Component::ParentDir => pending.push_front("..".into()),
                Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            }
        }
    }
    let mut path = root.to_path_buf();
    path.extend(&resolved);
    Ok(path)
}

/// A rebuilt `.deb` and what dpkg-deb said while building it.
#[derive(Debug, Clone)]
pub struct Rebuilt {
    pub path: PathBuf,
    /// dpkg-deb's warnings; empty when it had nothing to say.
    pub warnings: Vec<String>,
}

/// Rebuilds `name:arch` of `system` into the `.deb` `target`, staging its
/// tree in a directory under `work` (removed afterwards). Needs root to
/// give the staged files their owners. Read-only for `system`.
pub fn rebuild(
    system: &SystemRoot,
    name: &str,
    arch: &str,
    work: &Path,
    target: &Path,
) -> Result<Rebuilt, RepackError> {
    let inventory = inventory(system, name, arch)?;
    std::fs::create_dir_all(work).map_err(io(work))?;
    let staging = tempfile::Builder::new()
        .prefix("repack-")
        .tempdir_in(work)
        .map_err(io(work))?;
    let tree = staging.path().join("tree");
    stage(&inventory, system.path(), &tree)?;
    build(&inventory.package, &tree, target)
}

/// Writes the package's tree and `DEBIAN` directory under `tree`.
fn stage(inventory: &Inventory, root: &Path, tree: &Path) -> Result<(), RepackError> {
    make_dir(tree, 0o755)?;
    let mut dirs: Vec<(PathBuf, Meta)> = Vec::new();
    for entry in &inventory.entries {
        let dest = tree.join(&entry.path);
        if std::fs::symlink_metadata(&dest).is_ok() {
            // Listed twice, or a parent made earlier: its metadata is set.
            continue;
        }
        make_parents(root, tree, &entry.path, &mut dirs, &inventory.package)?;
        match entry.kind {
            Kind::Dir => {
                make_dir(&dest, entry.meta.mode)?;
                dirs.push((dest, entry.meta));
            }
            Kind::File => {
                std::fs::copy(&entry.source, &dest).map_err(io(&entry.source))?;
                set_meta(&dest, &entry.meta, false)?;
            }
            Kind::Link => {
                let link = std::fs::read_link(&entry.source).map_err(io(&entry.source))?;
                symlink(&link, &dest).map_err(io(&dest))?;
                set_meta(&dest, &entry.meta, true)?;
            }
            Kind::Special => {
                let c_path = c_path(&dest)?;
                // SAFETY: mknod reads the NUL-terminated path we own.
                let made = unsafe {
                    libc::mknod(
                        c_path.as_ptr(),
                        entry.meta.raw_mode as libc::mode_t,
                        entry.meta.rdev as libc::dev_t,
                    )
                };
                if made != 0 {
                    return Err(io(&dest)(std::io::Error::last_os_error()));
                }
                set_meta(&dest, &entry.meta, false)?;
            }
        }
    }
    // Directory times last: adding entries changed them.
    for (dir, meta) in dirs.iter().rev() {
        set_meta(dir, meta, false)?;
    }

    let debian = tree.join("DEBIAN");
    make_dir(&debian, 0o755)?;
    for (member, from) in &inventory.members {
        let to = debian.join(member);
        std::fs::copy(from, &to).map_err(io(from))?;
    }
    let control = debian.join("control");
    std::fs::write(&control, &inventory.control.control).map_err(io(&control))?;
    if !inventory.control.conffiles.is_empty() {
        let conffiles = debian.join("conffiles");
        let text: String = inventory
            .control
            .conffiles
            .iter()
            .map(|c| format!("{c}\n"))
            .collect();
        std::fs::write(&conffiles, text).map_err(io(&conffiles))?;
    }
    Ok(())
}

/// Creates the missing parent directories of `relative` in `tree`, each
/// with the metadata of the directory it stands for in the root.
fn make_parents(
    root: &Path,
    tree: &Path,
    relative: &str,
    dirs: &mut Vec<(PathBuf, Meta)>,
    package: &str,
) -> Result<(), RepackError> {
    let mut inside = String::new();
    let parents: Vec<&str> = relative.split('/').collect();
    for part in &parents[..parents.len().saturating_sub(1)] {
        inside.push('/');
        inside.push_str(part);
        let dest = tree.join(inside.trim_start_matches('/'));
        if dest.is_dir() {
            continue;
        }
        let source = in_root(root, &inside, true).map_err(|e| e.for_package(package))?;
        let meta = Meta::of(&std::fs::metadata(&source).map_err(io(&source))?);
        make_dir(&dest, meta.mode)?;
        dirs.push((dest, meta));
    }
    Ok(())
}

fn make_dir(path: &Path, mode: u32) -> Result<(), RepackError> {
    std::fs::create_dir(path).map_err(io(path))?;
    // mkdir applies the umask and drops setgid/sticky bits.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io(path))
}

fn c_path(path: &Path) -> Result<CString, RepackError> {
    CString::new(path.as_os_str().as_bytes()).map_err(|e| io(path)(std::io::Error::other(e)))
}

/// Owner, then mode (chown clears setuid and setgid), then mtime.
fn set_meta(path: &Path, meta: &Meta, is_link: bool) -> Result<(), RepackError> {
    if is_link {
        std::os::unix::fs::lchown(path, Some(meta.uid), Some(meta.gid)).map_err(io(path))?;
    } else {
        std::os::unix::fs::chown(path, Some(meta.uid), Some(meta.gid)).map_err(io(path))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(meta.mode))
            .map_err(io(path))?;
    }
    let c_path = c_path(path)?;
    let times = [
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        libc::timespec {
            tv_sec: meta.mtime as libc::time_t,
            tv_nsec: meta.mtime_nsec as _,
        },
    ];
    // SAFETY: utimensat reads the NUL-terminated path and the two
    // timespecs we own; AT_SYMLINK_NOFOLLOW sets a link's own time.
    let done = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c_path.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if done != 0 {
        return Err(io(path)(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Packs the staged tree with dpkg-deb. gzip, because every dpkg reads it
/// (zstd needs dpkg 1.21.18, and a rollback may run an older one), at
/// level 1: coreutils packs in 0.6 s instead of 5 s at the default level,
/// for a file 10 % larger — a backup rebuilds hundreds of packages.
fn build(package: &str, tree: &Path, target: &Path) -> Result<Rebuilt, RepackError> {
    let output = Command::new("dpkg-deb")
        .args(["-Zgzip", "-z1", "--build"])
        .arg(tree)
        .arg(target)
        .env("LC_ALL", "C")
        // It would clamp every mtime to that date; the files keep theirs.
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .map_err(io(Path::new("dpkg-deb")))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    let said_error = stderr.lines().any(|l| l.contains("error:"));
    if !output.status.success() || said_error || !target.is_file() {
        let _ = std::fs::remove_file(target);
        return Err(RepackError::Build {
            package: package.to_string(),
            stderr: stderr.trim().to_string(),
        });
    }
    Ok(Rebuilt {
        path: target.to_path_buf(),
        warnings: stderr
            .lines()
            .filter(|l| l.contains("warning:"))
            .map(str::to_string)
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STANZA: &str = "Package: login\n\
Essential: yes\n\
Status: install ok installed\n\
Priority: required\n\
Architecture: amd64\n\
Version: 1:4.13+dfsg1-1\n\
Config-Version: 1:4.13+dfsg1-1\n\
Conffiles:\n \
/etc/login.defs f43a7b1eb7e082f1d4e2cb8f8376e71b\n \
/etc/pam.d/login 5afbc06eb5f71fef25170cf3c936a442\n \
/etc/old thing 0123456789abcdef0123456789abcdef obsolete\n \
/etc/gone 0123456789abcdef0123456789abcdef remove-on-upgrade\n\
Triggers-Pending: ldconfig\n\
Description: system login tools\n \
This package provides some required infrastructure.\n \
.\n \
Second paragraph.\n\
Ruby-Versions: all\n\
Homepage: https://example.org/shadow\n";

    #[test]
    fn control_drops_what_only_dpkg_database_has() {
        let control = control_from_status(STANZA.as_bytes());
        let text = String::from_utf8(control.control).unwrap();
        for field in [
            "Status:",
            "Config-Version:",
            "Conffiles:",
            "Triggers-Pending:",
        ] {
            assert!(!text.contains(field), "{field} kept in:\n{text}");
        }
        assert!(!text.contains("/etc/login.defs"));
        assert_eq!(
            text,
            "Package: login\n\
Essential: yes\n\
Priority: required\n\
Architecture: amd64\n\
Version: 1:4.13+dfsg1-1\n\
Description: system login tools\n \
This package provides some required infrastructure.\n \
.\n \
Second paragraph.\n\
Ruby-Versions: all\n\
Homepage: https://example.org/shadow\n"
        );
    }

    #[test]
    fn conffiles_member_keeps_only_live_entries() {
        let control = control_from_status(STANZA.as_bytes());
        assert_eq!(control.conffiles, ["/etc/login.defs", "/etc/pam.d/login"]);
        assert_eq!(control.dropped_conffiles, ["/etc/old thing", "/etc/gone"]);
    }

    #[test]
    fn a_stanza_without_final_newline_still_ends_its_last_field() {
        let control = control_from_status(b"Package: a\nStatus: install ok installed\nVersion: 1");
        assert_eq!(control.control, b"Package: a\nVersion: 1\n");
    }

    #[test]
    fn the_right_stanza_is_found_by_name_and_architecture() {
        let status = b"Package: zlib1g\nArchitecture: i386\nVersion: 1\n\n\
Package: zlib1g\nArchitecture: amd64\nVersion: 2\n\n";
        let index = stanza_index(status);
        let at = |name: &str, arch: &str| {
            index
                .get(&(name.to_string(), arch.to_string()))
                .map(|range| &status[range.clone()])
        };
        assert!(at("zlib1g", "amd64").unwrap().ends_with(b"Version: 2\n"));
        assert!(at("zlib1g", "i386").unwrap().ends_with(b"Version: 1\n"));
        assert!(at("zlib1g", "arm64").is_none());
        assert!(at("zlib", "amd64").is_none());
    }

    /// A fake root with one installed package `demo` listing `files`, of
    /// which those in `present` exist.
    fn fake_root(files: &[&str], present: &[&str]) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let info = root.path().join("var/lib/dpkg/info");
        std::fs::create_dir_all(&info).unwrap();
        std::fs::write(
            root.path().join("var/lib/dpkg/status"),
            "Package: demo\nStatus: install ok installed\nArchitecture: all\nVersion: 1.0\n\
Maintainer: T <t@example.org>\nDescription: demo\n\n",
        )
        .unwrap();
        let mut list = String::from("/.\n/usr\n/usr/share\n/usr/share/demo\n");
        for file in files {
            list.push_str(file);
            list.push('\n');
        }
        std::fs::write(info.join("demo.list"), list).unwrap();
        std::fs::write(info.join("demo.postinst"), "#!/bin/sh\n").unwrap();
        std::fs::create_dir_all(root.path().join("usr/share/demo")).unwrap();
        for file in present {
            std::fs::write(root.path().join(file.trim_start_matches('/')), b"x").unwrap();
        }
        root
    }

    #[test]
    fn a_listed_file_missing_on_disk_refuses_the_rebuild_naming_it() {
        let root = fake_root(
            &["/usr/share/demo/a", "/usr/share/demo/b"],
            &["/usr/share/demo/a"],
        );
        let work = tempfile::tempdir().unwrap();
        let target = work.path().join("demo.deb");
        match rebuild(
            &SystemRoot::new(root.path()),
            "demo",
            "all",
            work.path(),
            &target,
        ) {
            Err(RepackError::MissingFile { package, path }) => {
                assert_eq!(package, "demo:all");
                assert_eq!(path, "/usr/share/demo/b");
            }
            other => panic!("expected MissingFile, got {other:?}"),
        }
        assert!(!target.exists(), "no partial .deb may be left");
    }

    #[test]
    fn a_diverted_file_is_read_at_its_divert_to_path() {
        let root = fake_root(&["/usr/share/demo/a"], &["/usr/share/demo/a.distrib"]);
        std::fs::write(
            root.path().join("var/lib/dpkg/diversions"),
            "/usr/share/demo/a\n/usr/share/demo/a.distrib\n:\n",
        )
        .unwrap();
        let inventory = inventory(&SystemRoot::new(root.path()), "demo", "all").unwrap();
        let entry = inventory
            .entries
            .iter()
            .find(|e| e.path == "usr/share/demo/a")
            .unwrap();
        assert_eq!(entry.source, root.path().join("usr/share/demo/a.distrib"));
        // The same diversion made by the package itself leaves its file in place.
        std::fs::write(
            root.path().join("var/lib/dpkg/diversions"),
            "/usr/share/demo/a\n/usr/share/demo/a.distrib\ndemo\n",
        )
        .unwrap();
        match inventory_of(root.path()) {
            Err(RepackError::MissingFile { path, .. }) => assert_eq!(path, "/usr/share/demo/a"),
            other => panic!("expected MissingFile, got {other:?}"),
        }
    }

    fn inventory_of(root: &Path) -> Result<Inventory, RepackError> {
        inventory(&SystemRoot::new(root), "demo", "all")
    }

    #[test]
    fn a_package_not_fully_installed_is_refused() {
        let root = fake_root(&[], &[]);
        std::fs::write(
            root.path().join("var/lib/dpkg/status"),
            "Package: demo\nStatus: install ok half-configured\nArchitecture: all\nVersion: 1.0\n",
        )
        .unwrap();
        assert!(matches!(
            inventory_of(root.path()),
            Err(RepackError::NotFullyInstalled { .. })
        ));
        assert!(matches!(
            inventory(&SystemRoot::new(root.path()), "other", "all"),
            Err(RepackError::NotInstalled { .. })
        ));
    }

    #[test]
    fn absolute_links_resolve_inside_the_root() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("usr/lib")).unwrap();
        symlink("/usr/lib", root.path().join("lib")).unwrap();
        std::fs::write(root.path().join("usr/lib/x"), b"x").unwrap();
        let Ok(path) = in_root(root.path(), "/lib/x", false) else {
            panic!("resolution failed");
        };
        assert_eq!(path, root.path().join("usr/lib/x"));
        symlink("loop", root.path().join("loop")).unwrap();
        assert!(matches!(
            in_root(root.path(), "/loop/x", false),
            Err(ResolveError::Loop(_))
        ));
    }

    #[test]
    fn member_names_are_not_confused_with_dotted_package_names() {
        let info = tempfile::tempdir().unwrap();
        for file in [
            "python3.postinst",
            "python3.11.postinst",
            "python3.list",
            "python3.conffiles",
        ] {
            std::fs::write(info.path().join(file), b"").unwrap();
        }
        let mut files: Vec<String> = std::fs::read_dir(info.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        let members = control_members(info.path(), &files, "python3").unwrap();
        let names: Vec<&str> = members.iter().map(|(m, _)| m.as_str()).collect();
        assert_eq!(names, ["postinst"]);
    }
}
