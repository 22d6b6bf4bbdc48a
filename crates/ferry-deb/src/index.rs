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

/// Opens a file as a decompressing reader.
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
    decompressor(Compression::sniff(&head), file).map_err(wrap)
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

/// Reads a whole index file, decompressed, as text.
///
/// Invalid UTF-8 (old status files carry Latin-1 descriptions) is replaced
/// rather than refused: names, versions and relations are ASCII, and one
/// maintainer's name must not make a whole system unreadable.
pub fn read_to_string(path: &Path) -> Result<String, ReadError> {
    let mut bytes = Vec::new();
    open(path)?
        .read_to_end(&mut bytes)
        .map_err(|source| ReadError {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
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
