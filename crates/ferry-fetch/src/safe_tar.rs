//! Unpacking a tar archive that came from outside (a release bundle, later
//! an image's payload) so that nothing lands outside the target directory:
//! absolute paths, `..`, links leaving the archive, devices and FIFOs are
//! refused, and so are files and archives over a size limit. The archive
//! may be plain or compressed; the compression is told by magic bytes with
//! ferry-deb's `Compression`, never by the file's name.
//!
//! Not for building archives or deciding what their contents mean.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Component, Path, PathBuf};

use ferry_deb::index::{decompressor, Compression};

#[derive(Debug, thiserror::Error)]
pub enum TarError {
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
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TarError + '_ {
    move |source| TarError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// How much an archive may unpack to. The defaults suit a bundle of text
/// files: generous for that, small for anything else.
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

/// The compressions an archive may use: the ones tar archives are
/// published with. A plain archive must show tar's `ustar` magic.
fn archive_compression(head: &[u8]) -> Option<Compression> {
    match Compression::sniff(head) {
        found @ (Compression::Gzip | Compression::Xz | Compression::Zstd) => Some(found),
        Compression::None if head.len() >= 262 && &head[257..262] == b"ustar" => {
            Some(Compression::None)
        }
        Compression::None | Compression::Bzip2 | Compression::Lz4 => None,
    }
}

/// The compression an archive's file name asks for, for those who write
/// one (`ferry release bundle -o NAME`).
pub fn compression_for_name(name: &str) -> Option<Compression> {
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

fn open_archive(path: &Path) -> Result<Box<dyn Read + Send>, TarError> {
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
    let compression = archive_compression(&head).ok_or_else(|| TarError::NotATar {
        path: path.to_path_buf(),
    })?;
    let file = File::open(path).map_err(io(path))?;
    decompressor(compression, BufReader::new(file)).map_err(io(path))
}

/// The path of an entry inside the archive, or why it may not be there.
fn inside(entry: &str, path: &Path) -> Result<PathBuf, TarError> {
    let mut clean = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(TarError::Traversal {
                    entry: entry.to_string(),
                })
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(TarError::Absolute {
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
pub fn extract(archive: &Path, dest: &Path, limits: Limits) -> Result<(), TarError> {
    let corrupt = |e: std::io::Error| TarError::Corrupt {
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
            return Err(TarError::TooLarge {
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
        let special = |kind| TarError::Special {
            entry: name.clone(),
            kind,
        };
        if kind.is_dir() {
            std::fs::create_dir_all(&target).map_err(io(&target))?;
        } else if kind.is_file() {
            let size = entry.header().size().map_err(corrupt)?;
            if size > limits.file_bytes {
                return Err(TarError::EntryTooLarge {
                    entry: name,
                    size,
                    limit: limits.file_bytes,
                });
            }
            total += size;
            if total > limits.total_bytes {
                return Err(TarError::TooLarge {
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
                return Err(TarError::EntryTooLarge {
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
            let out = || TarError::LinkOut {
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
                    return Err(TarError::LinkOut {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar with one entry whose name is written raw, as a hostile
    /// archive would (the tar crate's own setters refuse such names).
    fn archive_with(name: &str, kind: tar::EntryType, link: Option<&str>, body: &[u8]) -> Vec<u8> {
        let mut header = tar::Header::new_gnu();
        let raw = &mut header.as_old_mut().name;
        raw[..name.len()].copy_from_slice(name.as_bytes());
        header.set_entry_type(kind);
        header.set_mode(0o644);
        header.set_size(body.len() as u64);
        if let Some(link) = link {
            header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_cksum();
        let mut builder = tar::Builder::new(Vec::new());
        builder.append(&header, body).unwrap();
        builder.into_inner().unwrap()
    }

    fn unpack(bytes: &[u8], limits: Limits) -> (tempfile::TempDir, Result<(), TarError>) {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("a.tar");
        std::fs::write(&archive, bytes).unwrap();
        let dest = dir.path().join("out");
        std::fs::create_dir(&dest).unwrap();
        let result = extract(&archive, &dest, limits);
        (dir, result)
    }

    #[test]
    fn entries_that_would_leave_the_directory_are_refused() {
        let regular = tar::EntryType::Regular;
        let (dir, result) = unpack(
            &archive_with("../evil", regular, None, b"x"),
            Limits::default(),
        );
        assert!(matches!(result, Err(TarError::Traversal { .. })));
        assert!(!dir.path().join("evil").exists());
        let (_, result) = unpack(
            &archive_with("/etc/evil", regular, None, b"x"),
            Limits::default(),
        );
        assert!(matches!(result, Err(TarError::Absolute { .. })));
        let symlink = tar::EntryType::Symlink;
        let (_, result) = unpack(
            &archive_with("link", symlink, Some("../../etc/passwd"), b""),
            Limits::default(),
        );
        assert!(matches!(result, Err(TarError::LinkOut { .. })));
        let fifo = tar::EntryType::Fifo;
        let (_, result) = unpack(&archive_with("pipe", fifo, None, b""), Limits::default());
        assert!(matches!(
            result,
            Err(TarError::Special { kind: "FIFO", .. })
        ));
    }

    #[test]
    fn sizes_over_the_limits_are_refused() {
        let bytes = archive_with("big", tar::EntryType::Regular, None, &[0u8; 100]);
        let limits = Limits {
            file_bytes: 99,
            ..Limits::default()
        };
        let (_, result) = unpack(&bytes, limits);
        assert!(matches!(
            result,
            Err(TarError::EntryTooLarge { size: 100, .. })
        ));
        let limits = Limits {
            entries: 0,
            ..Limits::default()
        };
        let (_, result) = unpack(&bytes, limits);
        assert!(matches!(result, Err(TarError::TooLarge { .. })));
    }

    #[test]
    fn what_is_not_a_tar_is_refused_and_a_compressed_one_unpacks() {
        let (_, result) = unpack(b"PK\x03\x04 a zip, not a tar", Limits::default());
        assert!(matches!(result, Err(TarError::NotATar { .. })));
        let plain = archive_with(
            "sources.list",
            tar::EntryType::Regular,
            None,
            b"deb x y z\n",
        );
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, &plain).unwrap();
        let (dir, result) = unpack(&gz.finish().unwrap(), Limits::default());
        result.unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("out/sources.list")).unwrap(),
            b"deb x y z\n"
        );
    }

    #[test]
    fn compression_is_told_by_magic_bytes() {
        assert_eq!(
            archive_compression(&[0x1f, 0x8b, 8]),
            Some(Compression::Gzip)
        );
        assert_eq!(archive_compression(b"\xfd7zXZ\0.."), Some(Compression::Xz));
        assert_eq!(
            archive_compression(&[0x28, 0xb5, 0x2f, 0xfd]),
            Some(Compression::Zstd)
        );
        assert_eq!(archive_compression(b"PK\x03\x04"), None);
        assert_eq!(archive_compression(b"BZh91AY&SY"), None);
        assert_eq!(compression_for_name("trixie.tar.xz"), Some(Compression::Xz));
        assert_eq!(compression_for_name("trixie.zip"), None);
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
