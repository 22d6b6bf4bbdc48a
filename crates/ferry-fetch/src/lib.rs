//! ferry-fetch gets files onto a device and proves them before anything
//! uses them: HTTP(S) or local downloads that resume, try again after a
//! transient failure (`FetchOptions`) and never grow past an announced
//! size, SHA-256 of what arrived, OpenPGP signatures checked by the
//! verifiers apt uses (gpgv, sqv), and tar archives unpacked without
//! letting an entry escape the target directory. Compressed streams are
//! read with ferry-deb's one `Compression`.
//!
//! Not for deciding what to fetch or what a file means (a meta-release
//! index, a bundle, an image): that is the caller's. Nothing here runs apt.

mod digest;
mod http;
mod safe_tar;
mod signature;

// The crate's whole surface; the modules stay private so that what other
// crates may lean on is decided here, in one place.
pub use digest::{sha256_file, sha256_hex};
pub use ferry_deb::index::Compression;
pub use http::{
    download, download_with, fetch_bytes, fetch_bytes_with, resolve, FetchError, FetchOptions,
};
pub use safe_tar::{compression_for_name, extract, Limits, TarError};
pub use signature::{verify_clearsigned, verify_detached, SignatureError, Verified};
