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
use std::io::Write;
use std::path::{Path, PathBuf};

use ferry_deb::sources::{parse_sources_text, Format};
use ferry_fetch::{Compression, FetchError, Limits, SignatureError, TarError, Verified};

use crate::meta::BundleRef;
use ferry_apt::{PackageName, Profile, ProfileError};

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Tar(#[from] TarError),
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
    ferry_fetch::sha256_file(path).map_err(io(path))
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
    let url = ferry_fetch::resolve(base, &reference.url);
    let archive = work.join("bundle.tar.part");
    ferry_fetch::download(&url, &archive, reference.size, progress)?;
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
    let signature_url = ferry_fetch::resolve(base, &reference.signature_url);
    let signature_bytes = match ferry_fetch::fetch_bytes(&signature_url, 1 << 20) {
        Ok(bytes) => bytes,
        Err(FetchError::Status { status: 404, .. }) => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    std::fs::write(&signature_path, signature_bytes).map_err(io(&signature_path))?;
    let verified = ferry_fetch::verify_detached(keyring, &signature_path, &archive)?;
    let dir = work.join("bundle");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(io(&dir))?;
    }
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    ferry_fetch::extract(&archive, &dir, Limits::default())?;
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
    let unnamed = || BundleError::Build {
        path: out.to_path_buf(),
        message: "name it .tar, .tar.gz, .tar.xz or .tar.zst".into(),
    };
    let compression = ferry_fetch::compression_for_name(&name).ok_or_else(unnamed)?;
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
        // Not a name `compression_for_name` gives: bundles are not written so.
        Compression::Bzip2 | Compression::Lz4 => return Err(unnamed()),
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
pub fn to_migration(bundle: &Bundle, target: &crate::meta::ReleaseEntry) -> ReleaseMigration {
    use ferry_apt::{SourceChange, SourceRule};
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
    let mut verify = ferry_apt::Verify::default();
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
    let add_sources: Vec<ferry_apt::AddedSources> = bundle
        .sources
        .iter()
        .map(|s| ferry_apt::AddedSources {
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
                upgrade: ferry_apt::Upgrade::Full,
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
            upgrade: ferry_apt::Upgrade::Full,
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
        let index = crate::meta::MetaRelease::parse(
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
}
