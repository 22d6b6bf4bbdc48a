//! SHA-256 as indices and manifests write it: lower-case hex, of bytes in
//! memory or of a file read in pieces (a bundle or a `.deb` need not fit in
//! memory).

use std::fs::File;
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// Lower-case hex SHA-256 and size of the file at `path`.
pub fn sha256_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buffer[..n]);
    }
    Ok((format!("{:x}", hasher.finalize()), size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(sha256_file(&dir.path().join("gone")).is_err());
    }

    #[test]
    fn file_and_bytes_agree_with_the_known_digest() {
        // `printf abc | sha256sum`
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(sha256_hex(b"abc"), abc);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        // Larger than one read, so the pieces are joined right.
        let big: Vec<u8> = (0..=255u8).cycle().take(200_000).collect();
        std::fs::write(&path, &big).unwrap();
        assert_eq!(sha256_file(&path).unwrap(), (sha256_hex(&big), 200_000));
    }
}
