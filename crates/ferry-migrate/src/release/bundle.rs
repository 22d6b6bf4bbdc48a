//! Release bundles: the signed tar a publisher puts beside the meta-release
//! index, holding the new release's APT sources (`sources.list`, `*.list`,
//! `*.sources`, at the top or under `sources.list.d/`), `demoted.cfg` (the
//! packages to remove, one a line, `#` comments) and optionally a ferry
//! `profile.toml` (renames, extra removals, hooks, checks).
//!
//! Getting one (`obtain`) is download → size and SHA-256 from the index →
//! detached signature → extraction, each refusing with a typed error before
//! anything outside the work directory exists. Extraction refuses absolute
//! paths, `..`, links leaving the bundle, devices and FIFOs, and files over
//! a size limit. `build` is the publisher's side; `to_migration` hands a
//! bundle to the migration runner.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};

use ferry_deb::sources::{parse_sources_text, Format};
use sha2::{Digest, Sha256};

use super::fetch::{self, FetchError};
use super::meta::BundleRef;
use super::signature::{self, SignatureError, Verified};
use crate::profile::{PackageName, Profile, ProfileError};

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a tar archive (plain, gzip, xz or zstd)", path.display())]
    NotATar { path: PathBuf },
    #[error("{}: the archive is damaged: {message}", path.display())]
    Corrupt { path: PathBuf, message: String },
    #[error("entry `{entry}`: absolute paths are refused")]
    Absolute { entry: String },
    #[error("entry `{entry}`: `..` would leave the bundle")]
    Traversal { entry: String },
    #[error("entry `{entry}`: links to `{target}`, outside the bundle")]
    LinkOut { entry: String, target: String },
    #[error("entry `{entry}`: {kind} entries are refused")]
    Special { entry: String, kind: &'static str },
    #[error("entry `{entry}`: {size} bytes, over the limit of {limit}")]
    EntryTooLarge {
        entry: String,
        size: u64,
        limit: u64,
    },
    #[error("the bundle unpacks to more than {limit} bytes or {max_entries} entries")]
    TooLarge { limit: u64, max_entries: usize },
    #[error("the bundle holds no APT sources (sources.list, *.list or *.sources)")]
    NoSources,
    #[error("{file}:{line}:{column}: {message} (expected {expected})")]
    Sources {
        file: String,
        line: usize,
        column: usize,
        message: String,
        expected: &'static str,
    },
    #[error("the bundle has no demoted.cfg")]
    NoDemoted,
    #[error("demoted.cfg:{line}: {message}")]
    Demoted { line: usize, message: String },
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error("the bundle is {actual} bytes, the index says {expected}")]
    Size { expected: u64, actual: u64 },
    #[error("the bundle's SHA-256 is {actual}, the index says {expected}")]
    Checksum { expected: String, actual: String },
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error("{}: {message}", path.display())]
    Build { path: PathBuf, message: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BundleError + '_ {
    move |source| BundleError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// How much a bundle may unpack to: it holds text files, so the defaults
/// are generous for that and small for anything else.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub file_bytes: u64,
    pub total_bytes: u64,
    pub entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            file_bytes: 16 << 20,
            total_bytes: 64 << 20,
            entries: 10_000,
        }
    }
}

/// The compressions a bundle may use, told by magic bytes, not the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Xz,
    Zstd,
}

impl Compression {
    pub fn detect(head: &[u8]) -> Option<Compression> {
        if head.starts_with(&[0x1f, 0x8b]) {
            Some(Compression::Gzip)
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Some(Compression::Xz)
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Some(Compression::Zstd)
        } else if head.len() >= 262 && &head[257..262] == b"ustar" {
            Some(Compression::None)
        } else {
            None
        }
    }

    /// The compression a file name asks for (`ferry release bundle -o`).
    pub fn for_name(name: &str) -> Option<Compression> {
        [
            (".tar", Compression::None),
            (".tar.gz", Compression::Gzip),
            (".tgz", Compression::Gzip),
            (".tar.xz", Compression::Xz),
            (".txz", Compression::Xz),
            (".tar.zst", Compression::Zstd),
            (".tzst", Compression::Zstd),
        ]
        .iter()
        .find(|(suffix, _)| name.ends_with(suffix))
        .map(|(_, c)| *c)
    }
}

fn open_archive(path: &Path) -> Result<Box<dyn Read>, BundleError> {
    let mut file = File::open(path).map_err(io(path))?;
    let mut head = vec![0u8; 512];
    let mut filled = 0;
    while filled < head.len() {
        let n = file.read(&mut head[filled..]).map_err(io(path))?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    head.truncate(filled);
    let compression = Compression::detect(&head).ok_or_else(|| BundleError::NotATar {
        path: path.to_path_buf(),
    })?;
    let file = File::open(path).map_err(io(path))?;
    let reader = BufReader::new(file);
    Ok(match compression {
        Compression::None => Box::new(reader),
        Compression::Gzip => Box::new(flate2::read::GzDecoder::new(reader)),
        Compression::Xz => Box::new(xz2::read::XzDecoder::new(reader)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::with_buffer(reader).map_err(io(path))?)
        }
    })
}

/// The path of an entry inside the bundle, or why it may not be there.
fn inside(entry: &str, path: &Path) -> Result<PathBuf, BundleError> {
    let mut clean = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(BundleError::Traversal {
                    entry: entry.to_string(),
                })
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(BundleError::Absolute {
                    entry: entry.to_string(),
                })
            }
        }
    }
    Ok(clean)
}

/// Where a link at `at` pointing to `target` lands, when it stays inside.
fn link_inside(at: &Path, target: &Path) -> Option<PathBuf> {
    if target.is_absolute() {
        return None;
    }
    let mut parts: Vec<&std::ffi::OsStr> = at
        .parent()
        .map(|p| p.components().filter_map(normal).collect())
        .unwrap_or_default();
    for component in target.components() {
        match component {
            Component::Normal(part) => parts.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            _ => return None,
        }
    }
    Some(parts.iter().collect())
}

fn normal(c: Component<'_>) -> Option<&std::ffi::OsStr> {
    match c {
        Component::Normal(p) => Some(p),
        _ => None,
    }
}

/// Unpacks `archive` into the empty directory `dest`, refusing anything
/// that would land outside it or is not a plain file, directory or
/// in-bundle link. Symlinks are made last, so no file is written through one.
pub fn extract(archive: &Path, dest: &Path, limits: Limits) -> Result<(), BundleError> {
    let corrupt = |e: std::io::Error| BundleError::Corrupt {
        path: archive.to_path_buf(),
        message: e.to_string(),
    };
    let mut tar = tar::Archive::new(open_archive(archive)?);
    let mut total = 0u64;
    let mut count = 0usize;
    let mut symlinks = Vec::new();
    for entry in tar.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        let raw = entry.path_bytes();
        let name = String::from_utf8_lossy(&raw).into_owned();
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
            continue;
        }
        count += 1;
        if count > limits.entries {
            return Err(BundleError::TooLarge {
                limit: limits.total_bytes,
                max_entries: limits.entries,
            });
        }
        let path = entry.path().map_err(corrupt)?.into_owned();
        let relative = inside(&name, &path)?;
        if relative.as_os_str().is_empty() {
            continue;
        }
        let target = dest.join(&relative);
        let special = |kind| BundleError::Special {
            entry: name.clone(),
            kind,
        };
        if kind.is_dir() {
            std::fs::create_dir_all(&target).map_err(io(&target))?;
        } else if kind.is_file() {
            let size = entry.header().size().map_err(corrupt)?;
            if size > limits.file_bytes {
                return Err(BundleError::EntryTooLarge {
                    entry: name,
                    size,
                    limit: limits.file_bytes,
                });
            }
            total += size;
            if total > limits.total_bytes {
                return Err(BundleError::TooLarge {
                    limit: limits.total_bytes,
                    max_entries: limits.entries,
                });
            }
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(io(parent))?;
            }
            let mut out = File::create(&target).map_err(io(&target))?;
            let copied = std::io::copy(&mut (&mut entry).take(limits.file_bytes + 1), &mut out)
                .map_err(corrupt)?;
            if copied > limits.file_bytes {
                return Err(BundleError::EntryTooLarge {
                    entry: name,
                    size: copied,
                    limit: limits.file_bytes,
                });
            }
        } else if kind.is_symlink() || kind.is_hard_link() {
            let link = entry
                .link_name()
                .map_err(corrupt)?
                .map(|l| l.into_owned())
                .unwrap_or_default();
            let link_text = link.display().to_string();
            let out = || BundleError::LinkOut {
                entry: name.clone(),
                target: link_text.clone(),
            };
            if kind.is_symlink() {
                link_inside(&relative, &link).ok_or_else(out)?;
                symlinks.push((target, link));
            } else {
                // Hard link names are archive paths, from the bundle's top.
                let source = inside(&name, &link).map_err(|_| out())?;
                let source = dest.join(source);
                if !source.is_file() {
                    return Err(BundleError::LinkOut {
                        entry: name,
                        target: link_text,
                    });
                }
                std::fs::copy(&source, &target).map_err(io(&target))?;
            }
        } else if kind.is_character_special() {
            return Err(special("character device"));
        } else if kind.is_block_special() {
            return Err(special("block device"));
        } else if kind.is_fifo() {
            return Err(special("FIFO"));
        } else {
            return Err(special("unsupported"));
        }
    }
    for (at, link) in symlinks {
        if let Some(parent) = at.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::os::unix::fs::symlink(&link, &at).map_err(io(&at))?;
    }
    Ok(())
}

/// One sources file of the bundle, checked to parse.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NewSources {
    /// Its path in the bundle, e.g. `sources.list` or `debian.sources`.
    pub name: String,
    /// Where it goes in the system: `etc/apt/sources.list` or
    /// `etc/apt/sources.list.d/NAME`.
    pub install_to: PathBuf,
    pub text: String,
}

/// An unpacked, checked bundle.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Bundle {
    pub dir: PathBuf,
    pub sources: Vec<NewSources>,
    pub demoted: Vec<PackageName>,
    pub profile: Option<Profile>,
}

impl Bundle {
    /// Reads and checks the contents of an unpacked bundle (or a
    /// publisher's directory before it is packed).
    pub fn read(dir: &Path) -> Result<Bundle, BundleError> {
        let mut sources = Vec::new();
        for (sub, install_dir) in [
            ("", "etc/apt/sources.list.d"),
            ("sources.list.d", "etc/apt/sources.list.d"),
        ] {
            let here = dir.join(sub);
            let Ok(listing) = std::fs::read_dir(&here) else {
                continue;
            };
            let mut names: Vec<String> = listing
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            for file in names {
                let format = if file.ends_with(".sources") {
                    Format::Deb822
                } else if file.ends_with(".list") {
                    Format::OneLine
                } else {
                    continue;
                };
                let name = if sub.is_empty() {
                    file.clone()
                } else {
                    format!("{sub}/{file}")
                };
                let install_to = if name == "sources.list" {
                    PathBuf::from("etc/apt/sources.list")
                } else {
                    Path::new(install_dir).join(&file)
                };
                let path = here.join(&file);
                let text = std::fs::read_to_string(&path).map_err(io(&path))?;
                parse_sources_text(&text, format).map_err(|e| BundleError::Sources {
                    file: name.clone(),
                    line: e.line,
                    column: e.column,
                    message: e.message,
                    expected: e.expected,
                })?;
                sources.push(NewSources {
                    name,
                    install_to,
                    text,
                });
            }
        }
        if sources.is_empty() {
            return Err(BundleError::NoSources);
        }
        let demoted_path = dir.join("demoted.cfg");
        let demoted = match std::fs::read_to_string(&demoted_path) {
            Ok(text) => parse_demoted(&text)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(BundleError::NoDemoted)
            }
            Err(source) => {
                return Err(BundleError::Io {
                    path: demoted_path,
                    source,
                })
            }
        };
        let profile_path = dir.join("profile.toml");
        let profile = if profile_path.is_file() {
            Some(Profile::load(&profile_path)?)
        } else {
            None
        };
        Ok(Bundle {
            dir: dir.to_path_buf(),
            sources,
            demoted,
            profile,
        })
    }
}

/// `demoted.cfg`: one package name a line; `#` starts a comment.
pub fn parse_demoted(text: &str) -> Result<Vec<PackageName>, BundleError> {
    let mut names: Vec<PackageName> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let name = PackageName::parse(line).map_err(|message| BundleError::Demoted {
            line: i + 1,
            message,
        })?;
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(names)
}

/// Hex SHA-256 and size of a file.
pub fn sha256_file(path: &Path) -> Result<(String, u64), BundleError> {
    let mut file = File::open(path).map_err(io(path))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buffer).map_err(io(path))?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buffer[..n]);
    }
    let hex = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((hex, size))
}

/// A bundle that was downloaded, verified and unpacked.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Obtained {
    pub bundle: Bundle,
    pub archive: PathBuf,
    pub verified: Verified,
}

/// Downloads the bundle `reference` names (URLs relative to `base`, the
/// index's URL) into `work`, checks it against the index and `keyring`,
/// and unpacks it into `work/bundle`. A partial download in `work` is
/// resumed; one that fails its checks is deleted.
pub fn obtain(
    reference: &BundleRef,
    base: &str,
    keyring: &Path,
    work: &Path,
    progress: &mut dyn FnMut(u64, Option<u64>),
) -> Result<Obtained, BundleError> {
    std::fs::create_dir_all(work).map_err(io(work))?;
    let url = fetch::resolve(base, &reference.url);
    let archive = work.join("bundle.tar.part");
    fetch::download(&url, &archive, reference.size, progress)?;
    let (sha256, size) = sha256_file(&archive)?;
    let refuse = |error| {
        let _ = std::fs::remove_file(&archive);
        Err(error)
    };
    if size != reference.size {
        return refuse(BundleError::Size {
            expected: reference.size,
            actual: size,
        });
    }
    if sha256 != reference.sha256 {
        return refuse(BundleError::Checksum {
            expected: reference.sha256.clone(),
            actual: sha256,
        });
    }
    let signature_path = work.join("bundle.sig");
    let signature_url = fetch::resolve(base, &reference.signature_url);
    let signature_bytes = match fetch::fetch_bytes(&signature_url, 1 << 20) {
        Ok(bytes) => bytes,
        Err(FetchError::Status { status: 404, .. }) => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    std::fs::write(&signature_path, signature_bytes).map_err(io(&signature_path))?;
    let verified = signature::verify_detached(keyring, &signature_path, &archive)?;
    let dir = work.join("bundle");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(io(&dir))?;
    }
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    extract(&archive, &dir, Limits::default())?;
    let bundle = Bundle::read(&dir)?;
    Ok(Obtained {
        bundle,
        archive,
        verified,
    })
}

/// Who signs a bundle: a key of the caller's GnuPG home, or of `gnupghome`.
#[derive(Debug, Clone, Default)]
pub struct SignWith {
    pub key: Option<String>,
    pub gnupghome: Option<PathBuf>,
}

/// What a publisher pastes into the index.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Built {
    pub archive: PathBuf,
    pub signature: PathBuf,
    pub size: u64,
    pub sha256: String,
    pub sources: Vec<String>,
    pub demoted: Vec<PackageName>,
}

/// Packs the publisher's directory `dir` into `out` (compressed as its
/// name says), after checking it reads as a bundle, and signs it with gpg
/// into `out.sig`. The tar is reproducible: sorted, owner root, mtime 0.
pub fn build(dir: &Path, out: &Path, sign: &SignWith) -> Result<Built, BundleError> {
    let checked = Bundle::read(dir)?;
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let compression = Compression::for_name(&name).ok_or_else(|| BundleError::Build {
        path: out.to_path_buf(),
        message: "name it .tar, .tar.gz, .tar.xz or .tar.zst".into(),
    })?;
    let mut files = Vec::new();
    collect(dir, Path::new(""), &mut files)?;
    let file = File::create(out).map_err(io(out))?;
    let writer: Box<dyn Write> = match compression {
        Compression::None => Box::new(file),
        Compression::Gzip => Box::new(flate2::write::GzEncoder::new(
            file,
            flate2::Compression::best(),
        )),
        Compression::Xz => Box::new(xz2::write::XzEncoder::new(file, 6)),
        Compression::Zstd => Box::new(
            zstd::stream::write::Encoder::new(file, 19)
                .map_err(io(out))?
                .auto_finish(),
        ),
    };
    let mut tar = tar::Builder::new(writer);
    for (relative, is_dir) in &files {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        if *is_dir {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            tar.append_data(&mut header, relative, std::io::empty())
                .map_err(io(out))?;
        } else {
            let path = dir.join(relative);
            let bytes = std::fs::read(&path).map_err(io(&path))?;
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(0o644);
            header.set_size(bytes.len() as u64);
            tar.append_data(&mut header, relative, bytes.as_slice())
                .map_err(io(out))?;
        }
    }
    let mut writer = tar.into_inner().map_err(io(out))?;
    writer.flush().map_err(io(out))?;
    drop(writer);
    let signature = PathBuf::from(format!("{}.sig", out.display()));
    gpg_detach_sign(out, &signature, sign)?;
    let (sha256, size) = sha256_file(out)?;
    Ok(Built {
        archive: out.to_path_buf(),
        signature,
        size,
        sha256,
        sources: checked.sources.iter().map(|s| s.name.clone()).collect(),
        demoted: checked.demoted,
    })
}

/// Regular files and directories under `dir`, sorted; anything else
/// (a symlink, a device) is refused rather than packed.
fn collect(dir: &Path, relative: &Path, out: &mut Vec<(PathBuf, bool)>) -> Result<(), BundleError> {
    let here = dir.join(relative);
    let mut entries: Vec<_> = std::fs::read_dir(&here)
        .map_err(io(&here))?
        .collect::<Result<_, _>>()
        .map_err(io(&here))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = relative.join(entry.file_name());
        let kind = entry.file_type().map_err(io(&entry.path()))?;
        if kind.is_dir() {
            out.push((path.clone(), true));
            collect(dir, &path, out)?;
        } else if kind.is_file() {
            out.push((path, false));
        } else {
            return Err(BundleError::Build {
                path: entry.path(),
                message: "only regular files and directories go into a bundle".into(),
            });
        }
    }
    Ok(())
}

fn gpg_detach_sign(file: &Path, signature: &Path, sign: &SignWith) -> Result<(), BundleError> {
    let mut command = std::process::Command::new("gpg");
    command.args(["--batch", "--yes", "--detach-sign"]);
    if let Some(home) = &sign.gnupghome {
        command.arg("--homedir").arg(home);
    }
    if let Some(key) = &sign.key {
        command.arg("--local-user").arg(key);
    }
    command.arg("--output").arg(signature).arg(file);
    let output = command.output().map_err(|e| BundleError::Build {
        path: file.to_path_buf(),
        message: format!("cannot run gpg: {e}"),
    })?;
    if !output.status.success() {
        return Err(BundleError::Build {
            path: file.to_path_buf(),
            message: format!(
                "gpg could not sign: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        });
    }
    Ok(())
}

/// A release upgrade as the migration runner takes it: the profile (every
/// old sources entry disabled, demoted packages removed, the bundle
/// profile's renames, removals, installs, pins, keys, checks and hooks, and
/// os-release verified to name the target) and the bundle's sources files,
/// which the upgrade installs after the old entries are disabled.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReleaseMigration {
    pub profile: Profile,
    pub install_sources: Vec<NewSources>,
}

/// Turns a checked bundle into the migration that upgrades to `target`.
/// The bundle profile's own `sources` rules are not used: its sources
/// files replace the system's entries wholesale.
pub fn to_migration(bundle: &Bundle, target: &super::meta::ReleaseEntry) -> ReleaseMigration {
    use crate::profile::{SourceChange, SourceRule};
    let base = bundle.profile.clone();
    let name: String = format!("release-{}", target.dist)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let mut remove = bundle.demoted.clone();
    let mut verify = crate::profile::Verify::default();
    verify
        .os_release
        .push(("VERSION_CODENAME".to_string(), target.dist.clone()));
    if !target.version_number().is_empty() {
        verify.os_release.push((
            "VERSION_ID".to_string(),
            target.version_number().to_string(),
        ));
    }
    let disable_all = SourceRule {
        matches: Default::default(),
        set: SourceChange {
            enabled: Some(false),
            ..Default::default()
        },
        expect_release: None,
    };
    let add_sources: Vec<crate::profile::AddedSources> = bundle
        .sources
        .iter()
        .map(|s| crate::profile::AddedSources {
            path: format!("/{}", s.install_to.display()),
            text: s.text.clone(),
        })
        .collect();
    let profile = match base {
        Some(p) => {
            for extra in p.remove {
                if !remove.contains(&extra) {
                    remove.push(extra);
                }
            }
            verify.packages = p.verify.packages;
            Profile {
                path: p.path,
                name: p.name,
                description: p.description.or(target.description.clone()),
                sources: vec![disable_all],
                keys: p.keys,
                replace: p.replace,
                remove,
                install: p.install,
                pins: p.pins,
                checks: p.checks,
                verify,
                hooks: p.hooks,
                add_sources,
                allow_removals: true,
                upgrade: crate::profile::Upgrade::Full,
            }
        }
        None => Profile {
            path: bundle.dir.join("demoted.cfg"),
            name,
            description: target.description.clone(),
            sources: vec![disable_all],
            keys: Vec::new(),
            replace: Vec::new(),
            remove,
            install: Vec::new(),
            pins: Vec::new(),
            checks: Default::default(),
            verify,
            hooks: Vec::new(),
            add_sources,
            allow_removals: true,
            upgrade: crate::profile::Upgrade::Full,
        },
    };
    ReleaseMigration {
        profile,
        install_sources: bundle.sources.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demoted_lists_names_and_comments() {
        let names = parse_demoted("# gone in 13\nlibfoo1\n\n  bar-utils # old\nlibfoo1\n").unwrap();
        let names: Vec<&str> = names.iter().map(PackageName::as_str).collect();
        assert_eq!(names, ["libfoo1", "bar-utils"]);
        assert!(matches!(
            parse_demoted("ok\nrm -rf /\n"),
            Err(BundleError::Demoted { line: 2, .. })
        ));
    }

    #[test]
    fn compression_is_told_by_magic_bytes() {
        assert_eq!(
            Compression::detect(&[0x1f, 0x8b, 8]),
            Some(Compression::Gzip)
        );
        assert_eq!(Compression::detect(b"\xfd7zXZ\0.."), Some(Compression::Xz));
        assert_eq!(
            Compression::detect(&[0x28, 0xb5, 0x2f, 0xfd]),
            Some(Compression::Zstd)
        );
        assert_eq!(Compression::detect(b"PK\x03\x04"), None);
        assert_eq!(
            Compression::for_name("trixie.tar.xz"),
            Some(Compression::Xz)
        );
    }

    #[test]
    fn a_bundle_becomes_a_migration() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("sources.list"),
            "deb http://127.0.0.1/debian trixie main\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("demoted.cfg"), "old-tool\n").unwrap();
        std::fs::write(
            dir.path().join("profile.toml"),
            "schema = 1\nname = \"to-13\"\n[packages]\nremove = [\"old-lib\"]\nreplace = [{ from = \"a-old\", to = \"a-new\" }]\n",
        )
        .unwrap();
        let bundle = Bundle::read(dir.path()).unwrap();
        let index = super::super::meta::MetaRelease::parse(
            "Dist: trixie\nVersion: 13\nDate: 09 Aug 2025 00:00 UTC\nSupported: 1\n",
        )
        .unwrap();
        let migration = to_migration(&bundle, &index.releases[0]);
        let profile = &migration.profile;
        assert_eq!(profile.name, "to-13");
        let removed: Vec<&str> = profile.remove.iter().map(PackageName::as_str).collect();
        assert_eq!(removed, ["old-tool", "old-lib"]);
        assert_eq!(profile.replace.len(), 1);
        assert_eq!(profile.sources.len(), 1);
        assert_eq!(profile.sources[0].set.enabled, Some(false));
        assert_eq!(profile.sources[0].matches, Default::default());
        assert!(profile
            .verify
            .os_release
            .contains(&("VERSION_ID".to_string(), "13".to_string())));
        assert_eq!(
            migration.install_sources[0].install_to,
            PathBuf::from("etc/apt/sources.list")
        );
    }

    #[test]
    fn links_stay_inside_or_are_refused() {
        assert_eq!(
            link_inside(Path::new("a/b"), Path::new("../c")),
            Some(PathBuf::from("c"))
        );
        assert_eq!(link_inside(Path::new("a/b"), Path::new("../../c")), None);
        assert_eq!(link_inside(Path::new("b"), Path::new("/etc/passwd")), None);
    }
}
