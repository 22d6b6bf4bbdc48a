//! Reading index files whatever their compression: xz, gz, bz2, zst and lz4
//! (APT keeps its own lists as lz4), detected by magic bytes, not by name.
//!
//! Not for parsing: this only turns a file into text.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

/// A compression format of an index file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Xz,
    Bzip2,
    Zstd,
    Lz4,
}

impl Compression {
    /// Recognises a format from the first bytes of a file.
    pub fn sniff(head: &[u8]) -> Self {
        match head {
            [0x1f, 0x8b, ..] => Compression::Gzip,
            [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => Compression::Xz,
            [b'B', b'Z', b'h', ..] => Compression::Bzip2,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
            [0x04, 0x22, 0x4d, 0x18, ..] => Compression::Lz4,
            _ => Compression::None,
        }
    }
}

/// An index that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct ReadError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

impl Compression {
    /// The compression a file's name claims (`Packages.xz`: xz), if any.
    pub fn claimed_by(path: &Path) -> Option<Self> {
        let extension = path.extension()?.to_str()?;
        Some(match extension {
            "gz" => Compression::Gzip,
            "xz" => Compression::Xz,
            "bz2" => Compression::Bzip2,
            "zst" => Compression::Zstd,
            "lz4" => Compression::Lz4,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Compression::None => "uncompressed",
            Compression::Gzip => "gzip",
            Compression::Xz => "xz",
            Compression::Bzip2 => "bzip2",
            Compression::Zstd => "zstd",
            Compression::Lz4 => "lz4",
        }
    }
}

/// What the first bytes of a file are, in words, for an error saying a
/// file is not what its name claims.
fn describe(head: &[u8]) -> String {
    let compression = Compression::sniff(head);
    if compression != Compression::None {
        return format!("{} data", compression.name());
    }
    if head.is_empty() {
        return "an empty file".to_string();
    }
    let start = &head[..head.len().min(24)];
    let printable = start
        .iter()
        .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace());
    if printable {
        let text = String::from_utf8_lossy(start);
        let first_line = text.lines().next().unwrap_or_default();
        format!("text starting `{first_line}`")
    } else {
        let hex: Vec<String> = start.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!("data starting with bytes {}", hex.join(" "))
    }
}

/// Opens a file as a decompressing reader. A file whose name claims a
/// compression (`.xz`, `.gz`, `.bz2`, `.zst`, `.lz4`) must hold it: an
/// error names what was found instead, rather than read it as text.
pub fn open(path: &Path) -> Result<Box<dyn Read + Send>, ReadError> {
    let wrap = |source| ReadError {
        path: path.to_path_buf(),
        source,
    };
    let mut file = BufReader::with_capacity(1 << 16, File::open(path).map_err(wrap)?);
    let head = {
        use std::io::BufRead;
        file.fill_buf().map_err(wrap)?.to_vec()
    };
    let found = Compression::sniff(&head);
    if let Some(claimed) = Compression::claimed_by(path) {
        if claimed != found {
            return Err(wrap(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "named as {} data, but it is {}",
                    claimed.name(),
                    describe(&head)
                ),
            )));
        }
    }
    decompressor(found, file).map_err(wrap)
}

/// Wraps a reader in the decompressor of `compression`.
pub fn decompressor<R: Read + Send + 'static>(
    compression: Compression,
    reader: R,
) -> io::Result<Box<dyn Read + Send>> {
    Ok(match compression {
        Compression::None => Box::new(reader),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(reader)),
        Compression::Xz => Box::new(xz2::read::XzDecoder::new_multi_decoder(reader)),
        Compression::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(reader)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(reader)?),
        Compression::Lz4 => Box::new(lz4_flex::frame::FrameDecoder::new(reader)),
    })
}

/// An index file's text, and where it was not UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexText {
    pub text: String,
    /// The 1-based lines that held bytes that are not UTF-8 (replaced by
    /// U+FFFD in `text`); empty for a clean file.
    pub not_utf8_lines: Vec<usize>,
}

impl IndexText {
    /// A warning for people naming the file and the first such line, or
    /// `None` for a clean file.
    pub fn warning(&self, path: &Path) -> Option<String> {
        let first = *self.not_utf8_lines.first()?;
        let more = match self.not_utf8_lines.len() {
            1 => String::new(),
            n => format!(" (and {} more lines)", n - 1),
        };
        Some(format!(
            "{}:{first}: not UTF-8{more}; read as bytes, as apt reads it",
            path.display()
        ))
    }
}

/// Reads a whole index file, decompressed, as text, noting the lines that
/// are not UTF-8.
///
/// Such bytes (old status files carry Latin-1 descriptions) are replaced
/// rather than refused, as apt reads an index as bytes: names, versions
/// and relations are ASCII, and one maintainer's name must not make a
/// whole system unreadable. The caller says so (`IndexText::warning`).
pub fn read_text(path: &Path) -> Result<IndexText, ReadError> {
    let mut bytes = Vec::new();
    open(path)?
        .read_to_end(&mut bytes)
        .map_err(|source| ReadError {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(match String::from_utf8(bytes) {
        Ok(text) => IndexText {
            text,
            not_utf8_lines: Vec::new(),
        },
        Err(e) => {
            let bytes = e.into_bytes();
            let not_utf8_lines = bytes
                .split(|b| *b == b'\n')
                .enumerate()
                .filter(|(_, line)| std::str::from_utf8(line).is_err())
                .map(|(i, _)| i + 1)
                .collect();
            IndexText {
                text: String::from_utf8_lossy(&bytes).into_owned(),
                not_utf8_lines,
            }
        }
    })
}

/// [`read_text`] for callers that only need the text: where the bytes were
/// not UTF-8 they read U+FFFD. Commands that show an index's content to
/// people use `read_text` and warn.
pub fn read_to_string(path: &Path) -> Result<String, ReadError> {
    read_text(path).map(|index| index.text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const TEXT: &str = "Package: a\nVersion: 1\n";

    fn roundtrip(name: &str, compressed: Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, compressed).unwrap();
        assert_eq!(read_to_string(&path).unwrap(), TEXT, "{name}");
    }

    #[test]
    fn reads_every_compression_apt_uses() {
        roundtrip("plain", TEXT.as_bytes().to_vec());

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(TEXT.as_bytes()).unwrap();
        roundtrip("Packages.gz", gz.finish().unwrap());

        let mut xz = xz2::write::XzEncoder::new(Vec::new(), 6);
        xz.write_all(TEXT.as_bytes()).unwrap();
        roundtrip("Packages.xz", xz.finish().unwrap());

        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
        bz.write_all(TEXT.as_bytes()).unwrap();
        roundtrip("Packages.bz2", bz.finish().unwrap());

        roundtrip(
            "Packages.zst",
            zstd::encode_all(TEXT.as_bytes(), 3).unwrap(),
        );

        let mut lz = lz4_flex::frame::FrameEncoder::new(Vec::new());
        lz.write_all(TEXT.as_bytes()).unwrap();
        roundtrip("Packages.lz4", lz.finish().unwrap());
    }

    #[test]
    fn a_file_that_is_not_the_compression_its_name_claims_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("Packages.xz");
        std::fs::write(&path, TEXT).unwrap();
        let err = read_to_string(&path).unwrap_err().to_string();
        assert!(err.starts_with(&path.display().to_string()), "{err}");
        assert!(
            err.ends_with("named as xz data, but it is text starting `Package: a`"),
            "{err}"
        );
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(TEXT.as_bytes()).unwrap();
        std::fs::write(&path, gz.finish().unwrap()).unwrap();
        let err = read_to_string(&path).unwrap_err().to_string();
        assert!(
            err.ends_with("named as xz data, but it is gzip data"),
            "{err}"
        );
        std::fs::write(&path, [0u8, 1, 2, 0xff]).unwrap();
        let err = read_to_string(&path).unwrap_err().to_string();
        assert!(
            err.ends_with("data starting with bytes 00 01 02 ff"),
            "{err}"
        );
    }

    #[test]
    fn bytes_that_are_not_utf8_are_read_and_their_lines_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("status");
        std::fs::write(
            &path,
            b"Package: a\nMaintainer: Jos\xe9\nVersion: 1\nDescription: \xff\n",
        )
        .unwrap();
        let index = read_text(&path).unwrap();
        assert_eq!(index.not_utf8_lines, [2, 4]);
        assert!(index.text.contains("Version: 1"));
        let warning = index.warning(&path).unwrap();
        assert!(
            warning.starts_with(&format!(
                "{}:2: not UTF-8 (and 1 more lines)",
                path.display()
            )),
            "{warning}"
        );
        std::fs::write(&path, TEXT).unwrap();
        assert_eq!(read_text(&path).unwrap().warning(&path), None);
    }

    #[test]
    fn a_missing_file_names_its_path() {
        let err = read_to_string(Path::new("/nonexistent/Packages")).unwrap_err();
        assert!(err.to_string().starts_with("/nonexistent/Packages: "));
    }

    #[test]
    fn truncated_compressed_data_is_an_error_not_a_panic() {
        let mut xz = xz2::write::XzEncoder::new(Vec::new(), 6);
        xz.write_all(TEXT.as_bytes()).unwrap();
        let mut bytes = xz.finish().unwrap();
        bytes.truncate(bytes.len() / 2);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("Packages.xz");
        std::fs::write(&path, bytes).unwrap();
        assert!(read_to_string(&path).is_err());
    }
}
