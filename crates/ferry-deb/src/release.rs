//! Release and InRelease files: the typed fields of a suite's Release
//! (origin, suite, dates, architectures, components, checksum lists), the
//! splitting of a clear-signed InRelease into the signed text and its
//! armored signature, the RFC 2822 dates APT writes, and checking a
//! downloaded index against the size and SHA256 its Release lists.
//!
//! Not for signature verification: `split_clearsigned` only cuts the message
//! apart the way APT does before it hands both parts to gpgv. A `Release`
//! parsed from an InRelease is therefore *unverified* until a caller has
//! checked the signature.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::deb822::{self, Field, Syntax, SyntaxError};

/// The first line of a clear-signed message (RFC 4880 §7).
pub const SIGNED_MESSAGE_BEGIN: &str = "-----BEGIN PGP SIGNED MESSAGE-----";
/// The line that ends the signed text and opens an armored signature.
pub const SIGNATURE_BEGIN: &str = "-----BEGIN PGP SIGNATURE-----";
/// The line that closes an armored signature.
pub const SIGNATURE_END: &str = "-----END PGP SIGNATURE-----";

/// How far in the future a Release's `Date` may be before APT refuses it
/// (`Acquire::Max-FutureTime`, in seconds), to absorb clock skew.
pub const APT_MAX_FUTURE_SECONDS: i64 = 10;

// ---------------------------------------------------------------------------
// Dates
// ---------------------------------------------------------------------------

/// A point in time in whole seconds since 1970-01-01 00:00:00 UTC.
///
/// Release files only carry seconds in UTC, so this is all the precision and
/// all the zone handling they need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    unix_seconds: i64,
}

/// A date that is not in the form `Sun, 22 Nov 2026 08:12:34 UTC`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message} (expected {expected})")]
pub struct DateError {
    /// 1-based column inside the date text.
    pub column: usize,
    pub message: String,
    pub expected: &'static str,
}

const DATE_FORMAT: &str = "a date like `Sun, 22 Nov 2026 08:12:34 UTC`";
const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

impl Timestamp {
    pub const fn from_unix_seconds(unix_seconds: i64) -> Self {
        Timestamp { unix_seconds }
    }

    pub const fn unix_seconds(self) -> i64 {
        self.unix_seconds
    }

    /// Parses a date the way APT's `RFC1123StrToTime` reads Release files:
    /// `Www, DD Mon YYYY HH:MM:SS ZONE`, where the zone must be UTC (`UTC`,
    /// `GMT`, `Z` or a numeric zero offset such as `+0000`) — APT refuses any
    /// other offset, so accepting one here would promise more than apt does.
    /// The weekday is checked to be a weekday name, not to match the date,
    /// as in APT. Unlike APT (whose `timegm` rolls 31 Feb over into March),
    /// a day that does not exist in its month is an error.
    pub fn parse_rfc2822(text: &str) -> Result<Timestamp, DateError> {
        let fail = |offset: usize, message: String| DateError {
            column: char_column(text, offset),
            message,
            expected: DATE_FORMAT,
        };
        let mut tokens = text.split_ascii_whitespace().map(|token| {
            let offset = (token.as_ptr() as usize).saturating_sub(text.as_ptr() as usize);
            (offset, token)
        });
        let mut next = |what: &str| {
            tokens
                .next()
                .ok_or_else(|| fail(text.len(), format!("the date ends before the {what}")))
        };

        let (offset, weekday) = next("weekday")?;
        let weekday_bytes = weekday.as_bytes();
        let is_weekday = weekday_bytes.len() == 4
            && weekday_bytes[3] == b','
            && WEEKDAYS
                .iter()
                .any(|w| w.as_bytes().eq_ignore_ascii_case(&weekday_bytes[..3]));
        if !is_weekday {
            return Err(fail(offset, format!("`{weekday}` is not a weekday")));
        }

        let (day_offset, day_text) = next("day")?;
        let day = parse_digits(day_text, 1, 2)
            .filter(|d| (1..=31).contains(d))
            .ok_or_else(|| {
                fail(
                    day_offset,
                    format!("`{day_text}` is not a day of the month"),
                )
            })?;

        let (offset, month_text) = next("month")?;
        let month = MONTHS
            .iter()
            .position(|m| m.eq_ignore_ascii_case(month_text))
            .ok_or_else(|| fail(offset, format!("`{month_text}` is not a month")))?
            as u32
            + 1;

        let (offset, year_text) = next("year")?;
        let year = parse_digits(year_text, 4, 4)
            .ok_or_else(|| fail(offset, format!("`{year_text}` is not a four-digit year")))?;

        if day > days_in_month(year as i64, month) {
            return Err(fail(
                day_offset,
                format!(
                    "{} {} {} does not exist",
                    day,
                    MONTHS[month as usize - 1],
                    year
                ),
            ));
        }

        let (offset, time_text) = next("time")?;
        let (hour, minute, second) = parse_time(time_text)
            .ok_or_else(|| fail(offset, format!("`{time_text}` is not a time HH:MM:SS")))?;

        let (offset, zone) = next("time zone")?;
        if !is_utc_zone(zone) {
            return Err(fail(
                offset,
                format!("time zone `{zone}` is not UTC (APT accepts only UTC dates)"),
            ));
        }
        if let Some((offset, extra)) = tokens.next() {
            return Err(fail(
                offset,
                format!("unexpected `{extra}` after the time zone"),
            ));
        }

        let days = days_from_civil(year as i64, month, day);
        // A leap second (`:60`) counts as the first second of the next
        // minute, as `timegm` does in APT.
        let seconds = days * 86_400 + hour as i64 * 3600 + minute as i64 * 60 + second as i64;
        Ok(Timestamp::from_unix_seconds(seconds))
    }
}

impl From<SystemTime> for Timestamp {
    fn from(time: SystemTime) -> Self {
        let seconds = match time.duration_since(UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
            Err(before) => {
                let before = before.duration();
                let whole = i64::try_from(before.as_secs()).unwrap_or(i64::MAX);
                // Round towards the past so that a time is never reported
                // later than it was.
                whole.saturating_neg() - i64::from(before.subsec_nanos() > 0)
            }
        };
        Timestamp::from_unix_seconds(seconds)
    }
}

impl fmt::Display for Timestamp {
    /// The form APT and dak write: `Sun, 22 Nov 2026 08:12:34 UTC`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.unix_seconds.div_euclid(86_400);
        let second_of_day = self.unix_seconds.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        // 1970-01-01 was a Thursday.
        let weekday = WEEKDAYS[(days + 4).rem_euclid(7) as usize];
        write!(
            f,
            "{weekday}, {day:02} {} {year:04} {:02}:{:02}:{:02} UTC",
            MONTHS[(month - 1) as usize],
            second_of_day / 3600,
            second_of_day / 60 % 60,
            second_of_day % 60
        )
    }
}

fn parse_digits(text: &str, min_len: usize, max_len: usize) -> Option<u32> {
    if text.len() < min_len || text.len() > max_len || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn parse_time(text: &str) -> Option<(u32, u32, u32)> {
    let bytes = text.as_bytes();
    if bytes.len() != 8 || bytes[2] != b':' || bytes[5] != b':' {
        return None;
    }
    let hour = parse_digits(text.get(0..2)?, 2, 2)?;
    let minute = parse_digits(text.get(3..5)?, 2, 2)?;
    let second = parse_digits(text.get(6..8)?, 2, 2)?;
    (hour < 24 && minute < 60 && second <= 60).then_some((hour, minute, second))
}

fn is_utc_zone(zone: &str) -> bool {
    if matches!(zone, "UTC" | "GMT" | "Z") {
        return true;
    }
    // APT reads a numeric zone with `stoi` and requires it to be zero.
    let digits = zone.strip_prefix(['+', '-']).unwrap_or(zone);
    !digits.is_empty() && digits.bytes().all(|b| b == b'0')
}

/// Whether a proleptic Gregorian year has a 29 February.
pub fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// The days of a month (1–12) of a proleptic Gregorian year.
pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of `days_from_civil`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

// ---------------------------------------------------------------------------
// Release
// ---------------------------------------------------------------------------

/// A hash algorithm of a Release's checksum lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HashAlgorithm {
    Md5,
    Sha1,
    Sha256,
    Sha512,
}

impl HashAlgorithm {
    pub const ALL: [HashAlgorithm; 4] = [
        HashAlgorithm::Md5,
        HashAlgorithm::Sha1,
        HashAlgorithm::Sha256,
        HashAlgorithm::Sha512,
    ];

    /// The Release field that lists checksums of this algorithm.
    pub fn field_name(self) -> &'static str {
        match self {
            HashAlgorithm::Md5 => "MD5Sum",
            HashAlgorithm::Sha1 => "SHA1",
            HashAlgorithm::Sha256 => "SHA256",
            HashAlgorithm::Sha512 => "SHA512",
        }
    }

    pub fn hex_len(self) -> usize {
        match self {
            HashAlgorithm::Md5 => 32,
            HashAlgorithm::Sha1 => 40,
            HashAlgorithm::Sha256 => 64,
            HashAlgorithm::Sha512 => 128,
        }
    }

    fn expected_hash(self) -> &'static str {
        match self {
            HashAlgorithm::Md5 => "an MD5 hash of 32 hexadecimal digits",
            HashAlgorithm::Sha1 => "a SHA1 hash of 40 hexadecimal digits",
            HashAlgorithm::Sha256 => "a SHA256 hash of 64 hexadecimal digits",
            HashAlgorithm::Sha512 => "a SHA512 hash of 128 hexadecimal digits",
        }
    }

    fn from_field_name(name: &str) -> Option<Self> {
        HashAlgorithm::ALL
            .into_iter()
            .find(|a| a.field_name().eq_ignore_ascii_case(name))
    }
}

/// One line of a checksum list: `HASH SIZE PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChecksumEntry {
    /// Lowercase hexadecimal.
    pub hash: String,
    pub size: u64,
    /// Relative to the suite's directory (`dists/SUITE/`), never absolute and
    /// without `..`.
    pub path: String,
}

/// A suite's Release file. Fields APT does not require are optional; lists
/// that are absent are empty.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Release {
    pub origin: Option<String>,
    pub label: Option<String>,
    pub suite: Option<String>,
    pub codename: Option<String>,
    pub version: Option<String>,
    pub date: Option<Timestamp>,
    pub valid_until: Option<Timestamp>,
    pub architectures: Vec<String>,
    pub components: Vec<String>,
    pub acquire_by_hash: bool,
    /// `NotAutomatic: yes` pins the suite at 1 (100 with
    /// `ButAutomaticUpgrades`), as for experimental and backports.
    pub not_automatic: bool,
    pub but_automatic_upgrades: bool,
    /// Index types (usually `Packages`) that do not repeat `Architecture:
    /// all` packages in each architecture's index.
    pub no_support_for_architecture_all: Vec<String>,
    pub description: Option<String>,
    /// Fingerprints (uppercase, 40 hex digits, optionally ending in `!`) of
    /// the keys that must sign the *next* Release of this suite.
    pub signed_by: Vec<String>,
    pub md5sum: Vec<ChecksumEntry>,
    pub sha1: Vec<ChecksumEntry>,
    pub sha256: Vec<ChecksumEntry>,
    pub sha512: Vec<ChecksumEntry>,
    /// Fields this type does not interpret (Changelogs, Snapshots, …), in
    /// input order.
    pub other_fields: Vec<(String, String)>,
}

/// What a Release says about one file: its size and every hash listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedFile<'r> {
    pub path: &'r str,
    pub size: u64,
    pub md5: Option<&'r str>,
    pub sha1: Option<&'r str>,
    pub sha256: Option<&'r str>,
    pub sha512: Option<&'r str>,
}

/// A Release that cannot be read, with where and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseError {
    /// The text is not deb822.
    #[error(transparent)]
    Syntax(#[from] SyntaxError),
    /// A field's value is malformed.
    #[error("line {line}, column {column}: {message} (expected {expected})")]
    Invalid {
        line: usize,
        column: usize,
        message: String,
        expected: &'static str,
    },
    /// An InRelease whose clear-signed framing is broken.
    #[error(transparent)]
    ClearSigned(#[from] ClearSignedError),
}

impl ReleaseError {
    /// The 1-based line the error is on, counted in the text given to the
    /// parser (for an InRelease, in the whole clear-signed file).
    pub fn line(&self) -> Option<usize> {
        match self {
            ReleaseError::Syntax(e) => Some(e.line),
            ReleaseError::Invalid { line, .. } => Some(*line),
            ReleaseError::ClearSigned(ClearSignedError::Malformed { line, .. }) => Some(*line),
            ReleaseError::ClearSigned(ClearSignedError::NotClearSigned) => None,
        }
    }
}

/// A Release file that could not be read from disk.
#[derive(Debug, thiserror::Error)]
pub enum ReadReleaseError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: ReleaseError,
    },
}

/// A file that does not match what its Release lists.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("`{path}` is not listed in the Release file")]
    NotListed { path: String },
    #[error("`{path}` has no SHA256 in the Release file")]
    NoSha256 { path: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: size is {actual} bytes, the Release file lists {expected}")]
    SizeMismatch {
        path: PathBuf,
        expected: u64,
        actual: u64,
    },
    #[error("{path}: SHA256 is {actual}, the Release file lists {expected}")]
    Sha256Mismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
}

impl Release {
    /// Parses the text of a Release file (or the signed text taken out of an
    /// InRelease). Never panics; a clear-signed input is refused with a hint
    /// to use [`Release::parse_inrelease`].
    pub fn parse(text: &str) -> Result<Release, ReleaseError> {
        Self::parse_from_line(text, 0)
    }

    /// Splits a clear-signed InRelease and parses its signed text; line
    /// numbers in errors count from the top of the InRelease. The signature
    /// is returned, not checked.
    pub fn parse_inrelease(text: &str) -> Result<(Release, ClearSigned<'_>), ReleaseError> {
        let signed = split_clearsigned(text)?;
        let release = Self::parse_from_line(&signed.text, signed.text_first_line - 1)?;
        Ok((release, signed))
    }

    /// Reads a plain Release file.
    pub fn read(path: &Path) -> Result<Release, ReadReleaseError> {
        let text = std::fs::read_to_string(path).map_err(|source| ReadReleaseError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Release::parse(&text).map_err(|source| ReadReleaseError::Parse {
            path: path.to_path_buf(),
            source,
        })
    }

    fn parse_from_line(text: &str, lines_before: usize) -> Result<Release, ReleaseError> {
        if text.trim_end().starts_with(SIGNED_MESSAGE_BEGIN) {
            return Err(ReleaseError::Invalid {
                line: lines_before + 1,
                column: 1,
                message: "this is a clear-signed InRelease, not the text of a Release".into(),
                expected: "the signed text (split it with `split_clearsigned` first)",
            });
        }
        let mut paragraphs = deb822::paragraphs_from_line(text, Syntax::INDEX, lines_before);
        let paragraph = match paragraphs.next() {
            Some(paragraph) => paragraph?,
            None => {
                return Err(ReleaseError::Invalid {
                    line: lines_before + 1,
                    column: 1,
                    message: "the Release file is empty".into(),
                    expected: "fields such as `Suite:` and `SHA256:`",
                })
            }
        };
        if let Some(second) = paragraphs.next() {
            let second = second?;
            return Err(ReleaseError::Invalid {
                line: second.line,
                column: 1,
                message: "a second paragraph".into(),
                expected: "a single paragraph in a Release file",
            });
        }

        let mut reader = FieldReader {
            text,
            sizes: HashMap::new(),
        };
        let mut release = Release::default();
        for field in &paragraph.fields {
            reader.read(&mut release, field)?;
        }
        Ok(release)
    }

    /// The checksum list of one algorithm.
    pub fn checksums(&self, algorithm: HashAlgorithm) -> &[ChecksumEntry] {
        match algorithm {
            HashAlgorithm::Md5 => &self.md5sum,
            HashAlgorithm::Sha1 => &self.sha1,
            HashAlgorithm::Sha256 => &self.sha256,
            HashAlgorithm::Sha512 => &self.sha512,
        }
    }

    /// What the Release lists for `path` (relative to `dists/SUITE/`, e.g.
    /// `main/binary-amd64/Packages.xz`), from all checksum lists.
    pub fn file(&self, path: &str) -> Option<ListedFile<'_>> {
        let mut listed: Option<ListedFile<'_>> = None;
        for algorithm in HashAlgorithm::ALL {
            let Some(entry) = self.checksums(algorithm).iter().find(|e| e.path == path) else {
                continue;
            };
            let file = listed.get_or_insert(ListedFile {
                path: &entry.path,
                size: entry.size,
                md5: None,
                sha1: None,
                sha256: None,
                sha512: None,
            });
            let slot = match algorithm {
                HashAlgorithm::Md5 => &mut file.md5,
                HashAlgorithm::Sha1 => &mut file.sha1,
                HashAlgorithm::Sha256 => &mut file.sha256,
                HashAlgorithm::Sha512 => &mut file.sha512,
            };
            *slot = Some(&entry.hash);
        }
        listed
    }

    /// Whether `Valid-Until` lies before `now`, which makes APT refuse the
    /// suite ("Release file … is expired"). A Release without the field
    /// never expires.
    pub fn valid_until_passed(&self, now: Timestamp) -> bool {
        self.valid_until.is_some_and(|until| until < now)
    }

    /// Whether `Date` lies further in the future than APT tolerates
    /// ([`APT_MAX_FUTURE_SECONDS`]), which makes APT refuse the suite as
    /// "not valid yet".
    pub fn date_in_future(&self, now: Timestamp) -> bool {
        self.date.is_some_and(|date| {
            date.unix_seconds().saturating_sub(APT_MAX_FUTURE_SECONDS) > now.unix_seconds()
        })
    }

    /// Checks the size and SHA256 of `path` inside `suite_dir` (a directory
    /// laid out like `dists/SUITE/`) against this Release.
    pub fn verify_file(&self, suite_dir: &Path, path: &str) -> Result<(), VerifyError> {
        let listed = self.file(path).ok_or_else(|| VerifyError::NotListed {
            path: path.to_string(),
        })?;
        listed.verify(&suite_dir.join(path))
    }
}

impl ListedFile<'_> {
    /// Checks that `file` (wherever it is stored) has the listed size and
    /// SHA256. The size is compared first, so a truncated download is named
    /// as such rather than as a hash mismatch.
    pub fn verify(&self, file: &Path) -> Result<(), VerifyError> {
        let expected_hash = self.sha256.ok_or_else(|| VerifyError::NoSha256 {
            path: self.path.to_string(),
        })?;
        let io_error = |source| VerifyError::Io {
            path: file.to_path_buf(),
            source,
        };
        let mut reader = File::open(file).map_err(io_error)?;
        let on_disk = reader.metadata().map_err(io_error)?.len();
        if on_disk != self.size {
            return Err(VerifyError::SizeMismatch {
                path: file.to_path_buf(),
                expected: self.size,
                actual: on_disk,
            });
        }
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 1 << 16];
        let mut read_total: u64 = 0;
        loop {
            let n = match reader.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_error(e)),
            };
            hasher.update(&buffer[..n]);
            read_total += n as u64;
        }
        // The file may have changed between the size check and the read.
        if read_total != self.size {
            return Err(VerifyError::SizeMismatch {
                path: file.to_path_buf(),
                expected: self.size,
                actual: read_total,
            });
        }
        let actual = to_hex(&hasher.finalize());
        if !actual.eq_ignore_ascii_case(expected_hash) {
            return Err(VerifyError::Sha256Mismatch {
                path: file.to_path_buf(),
                expected: expected_hash.to_string(),
                actual,
            });
        }
        Ok(())
    }
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        hex.push(DIGITS[usize::from(byte >> 4)] as char);
        hex.push(DIGITS[usize::from(byte & 0xf)] as char);
    }
    hex
}

/// Reads the fields of one Release paragraph, remembering the size each
/// checksum list gave a path so that lists which disagree are caught.
struct FieldReader<'t> {
    text: &'t str,
    sizes: HashMap<&'t str, u64>,
}

impl<'t> FieldReader<'t> {
    fn read(&mut self, release: &mut Release, field: &Field<'t>) -> Result<(), ReleaseError> {
        let name = field.name;
        let value = field.value;
        let is = |known: &str| name.eq_ignore_ascii_case(known);
        if let Some(algorithm) = HashAlgorithm::from_field_name(name) {
            let entries = self.checksum_list(field, algorithm)?;
            match algorithm {
                HashAlgorithm::Md5 => release.md5sum = entries,
                HashAlgorithm::Sha1 => release.sha1 = entries,
                HashAlgorithm::Sha256 => release.sha256 = entries,
                HashAlgorithm::Sha512 => release.sha512 = entries,
            }
        } else if is("Origin") {
            release.origin = Some(value.to_string());
        } else if is("Label") {
            release.label = Some(value.to_string());
        } else if is("Suite") {
            release.suite = Some(value.to_string());
        } else if is("Codename") {
            release.codename = Some(value.to_string());
        } else if is("Version") {
            release.version = Some(value.to_string());
        } else if is("Description") {
            release.description = Some(value.to_string());
        } else if is("Date") {
            release.date = Some(self.date(field)?);
        } else if is("Valid-Until") {
            release.valid_until = Some(self.date(field)?);
        } else if is("Architectures") {
            release.architectures = words(value);
        } else if is("Components") {
            release.components = words(value);
        } else if is("No-Support-for-Architecture-all") {
            release.no_support_for_architecture_all = words(value);
        } else if is("Acquire-By-Hash") {
            release.acquire_by_hash = self.boolean(field)?;
        } else if is("NotAutomatic") {
            release.not_automatic = self.boolean(field)?;
        } else if is("ButAutomaticUpgrades") {
            release.but_automatic_upgrades = self.boolean(field)?;
        } else if is("Signed-By") {
            release.signed_by = self.fingerprints(field)?;
        } else {
            release
                .other_fields
                .push((name.to_string(), value.to_string()));
        }
        Ok(())
    }

    fn invalid(
        &self,
        field: &Field<'t>,
        at: &str,
        message: String,
        expected: &'static str,
    ) -> ReleaseError {
        let (line, column) = position(self.text, field, at);
        ReleaseError::Invalid {
            line,
            column,
            message,
            expected,
        }
    }

    fn date(&self, field: &Field<'t>) -> Result<Timestamp, ReleaseError> {
        Timestamp::parse_rfc2822(field.value).map_err(|e| {
            let (line, column) = position(self.text, field, field.value);
            ReleaseError::Invalid {
                line,
                column: column + e.column - 1,
                message: format!("{}: {}", field.name, e.message),
                expected: e.expected,
            }
        })
    }

    /// A yes/no value, with the spellings APT's `StringToBool` knows.
    fn boolean(&self, field: &Field<'t>) -> Result<bool, ReleaseError> {
        const TRUE: [&str; 6] = ["yes", "true", "with", "on", "enable", "1"];
        const FALSE: [&str; 6] = ["no", "false", "without", "off", "disable", "0"];
        let value = field.value;
        if TRUE.iter().any(|t| t.eq_ignore_ascii_case(value)) {
            Ok(true)
        } else if FALSE.iter().any(|f| f.eq_ignore_ascii_case(value)) {
            Ok(false)
        } else {
            Err(self.invalid(
                field,
                value,
                format!("{}: `{value}` is not yes or no", field.name),
                "`yes` or `no`",
            ))
        }
    }

    /// Fingerprints as APT's `NormalizeSignedBy` accepts them in a Release
    /// file: separated by spaces or commas, 40 hex digits, optionally with a
    /// trailing `!` that pins a subkey.
    fn fingerprints(&self, field: &Field<'t>) -> Result<Vec<String>, ReleaseError> {
        let mut fingerprints = Vec::new();
        for word in field
            .value
            .split(|c: char| c == ',' || c.is_ascii_whitespace())
            .filter(|w| !w.is_empty())
        {
            let hex = word.strip_suffix('!').unwrap_or(word);
            if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(self.invalid(
                    field,
                    word,
                    format!("Signed-By: `{word}` is not a key fingerprint"),
                    "fingerprints of 40 hexadecimal digits, separated by spaces or commas",
                ));
            }
            fingerprints.push(word.to_ascii_uppercase());
        }
        if fingerprints.is_empty() {
            return Err(self.invalid(
                field,
                field.value,
                "Signed-By is empty".into(),
                "at least one key fingerprint",
            ));
        }
        Ok(fingerprints)
    }

    fn checksum_list(
        &mut self,
        field: &Field<'t>,
        algorithm: HashAlgorithm,
    ) -> Result<Vec<ChecksumEntry>, ReleaseError> {
        const EXPECTED_LINE: &str = "`HASH SIZE PATH` on each line";
        let mut entries = Vec::new();
        let mut seen: HashMap<&'t str, ()> = HashMap::new();
        for line in field.value.split('\n') {
            let mut tokens = line.split_ascii_whitespace();
            let Some(hash) = tokens.next() else {
                // The value starts on the line after the field name.
                continue;
            };
            let (Some(size_text), Some(path)) = (tokens.next(), tokens.next()) else {
                return Err(self.invalid(
                    field,
                    hash,
                    format!(
                        "{}: incomplete line `{}`",
                        algorithm.field_name(),
                        line.trim()
                    ),
                    EXPECTED_LINE,
                ));
            };
            if let Some(extra) = tokens.next() {
                return Err(self.invalid(
                    field,
                    extra,
                    format!(
                        "{}: unexpected `{extra}` after the path",
                        algorithm.field_name()
                    ),
                    EXPECTED_LINE,
                ));
            }
            if hash.len() != algorithm.hex_len() || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(self.invalid(
                    field,
                    hash,
                    format!("{}: `{hash}` is not a hash", algorithm.field_name()),
                    algorithm.expected_hash(),
                ));
            }
            let size = parse_size(size_text).ok_or_else(|| {
                self.invalid(
                    field,
                    size_text,
                    format!("{}: `{size_text}` is not a size", algorithm.field_name()),
                    "a size in bytes (decimal digits)",
                )
            })?;
            if !is_safe_relative_path(path) {
                return Err(self.invalid(
                    field,
                    path,
                    format!(
                        "{}: `{path}` is not a path inside the suite",
                        algorithm.field_name()
                    ),
                    "a relative path without `..`",
                ));
            }
            if seen.insert(path, ()).is_some() {
                return Err(self.invalid(
                    field,
                    path,
                    format!("{}: `{path}` is listed twice", algorithm.field_name()),
                    "each path once per checksum list",
                ));
            }
            match self.sizes.get(path) {
                Some(&earlier) if earlier != size => {
                    return Err(self.invalid(
                        field,
                        size_text,
                        format!(
                            "{}: `{path}` is {size} bytes here but {earlier} bytes in an earlier list",
                            algorithm.field_name()
                        ),
                        "the same size in every checksum list",
                    ));
                }
                Some(_) => {}
                None => {
                    self.sizes.insert(path, size);
                }
            }
            entries.push(ChecksumEntry {
                hash: hash.to_ascii_lowercase(),
                size,
                path: path.to_string(),
            });
        }
        Ok(entries)
    }
}

fn words(value: &str) -> Vec<String> {
    value.split_ascii_whitespace().map(str::to_string).collect()
}

fn parse_size(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Whether a listed path stays inside the suite directory when joined to it:
/// a verifier must not be led to read `/etc/shadow` or `../../x`.
fn is_safe_relative_path(path: &str) -> bool {
    !path.starts_with('/')
        && !path.contains('\\')
        && !path.chars().any(char::is_control)
        && path.split('/').all(|part| part != "..")
}

/// 1-based line and column of `at`, a slice of `field.value`, inside `text`.
fn position(text: &str, field: &Field<'_>, at: &str) -> (usize, usize) {
    let value_offset = (at.as_ptr() as usize).saturating_sub(field.value.as_ptr() as usize);
    let newlines_before = field
        .value
        .get(..value_offset)
        .map_or(0, |before| before.matches('\n').count());
    let text_offset = (at.as_ptr() as usize).saturating_sub(text.as_ptr() as usize);
    (field.line + newlines_before, char_column(text, text_offset))
}

/// 1-based column (in characters) of byte `offset` within its line.
fn char_column(text: &str, offset: usize) -> usize {
    let Some(before) = text.get(..offset.min(text.len())) else {
        return 1;
    };
    let line_start = before.rfind('\n').map_or(0, |n| n + 1);
    before[line_start..].chars().count() + 1
}

// ---------------------------------------------------------------------------
// Clear-signed messages
// ---------------------------------------------------------------------------

/// A clear-signed message cut into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClearSigned<'a> {
    /// The hash algorithms named by the `Hash:` armor headers.
    pub hashes: Vec<&'a str>,
    /// The signed text as gpg verifies it: dash-escapes removed, trailing
    /// spaces and tabs of each line removed (RFC 4880 §7.1), lines joined by
    /// `\n`, and *without* the line ending before `-----BEGIN PGP
    /// SIGNATURE-----`, which belongs to the framing. Borrowed when no line
    /// needed changing.
    pub text: Cow<'a, str>,
    /// 1-based line of the input on which the signed text starts.
    pub text_first_line: usize,
    /// The armored signature block(s), from `-----BEGIN PGP SIGNATURE-----`
    /// to the end of the last `-----END PGP SIGNATURE-----` line, as in the
    /// input. Written to a file it is what `gpg --verify SIG TEXT` wants.
    pub signature: &'a str,
}

/// A clear-signed message that APT would refuse to split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClearSignedError {
    /// No `-----BEGIN PGP SIGNED MESSAGE-----` line at all: an unsigned file,
    /// which APT then reads as a plain Release.
    #[error("not a clear-signed message: no `{SIGNED_MESSAGE_BEGIN}` line")]
    NotClearSigned,
    #[error("line {line}: {message} (expected {expected})")]
    Malformed {
        line: usize,
        message: String,
        expected: &'static str,
    },
}

/// Hash names gpg accepts in a clear-signed message's `Hash:` header; gpg
/// refuses the message for any other header or name.
const ARMOR_HASHES: [&str; 7] = [
    "MD5",
    "SHA1",
    "RIPEMD160",
    "SHA224",
    "SHA256",
    "SHA384",
    "SHA512",
];

/// Splits a clear-signed message (RFC 4880 §7) the way APT's
/// `SplitClearSignedFile` does, and as strictly: nothing may stand before
/// the `BEGIN PGP SIGNED MESSAGE` line, a text line starting with `-` must be
/// dash-escaped, and after the last `END PGP SIGNATURE` only further
/// signature blocks may follow — anything else could make APT's reading and
/// gpgv's reading of the same file differ. Never panics.
pub fn split_clearsigned(text: &str) -> Result<ClearSigned<'_>, ClearSignedError> {
    let malformed =
        |line: usize, message: String, expected: &'static str| ClearSignedError::Malformed {
            line,
            message,
            expected,
        };
    let mut lines = LineCursor::new(text);

    let first = lines.next().ok_or(ClearSignedError::NotClearSigned)?;
    if first.content != SIGNED_MESSAGE_BEGIN {
        return match lines.find(|l| l.content == SIGNED_MESSAGE_BEGIN) {
            Some(begin) => Err(malformed(
                first.number,
                format!(
                    "text before the `{SIGNED_MESSAGE_BEGIN}` line on line {}",
                    begin.number
                ),
                "the clear-signed message to start on the first line",
            )),
            None => Err(ClearSignedError::NotClearSigned),
        };
    }

    let mut hashes = Vec::new();
    loop {
        let Some(line) = lines.next() else {
            return Err(malformed(
                lines.number + 1,
                "the message ends inside the armor headers".into(),
                "a blank line after the `Hash:` headers",
            ));
        };
        if line.content.is_empty() {
            break;
        }
        if line.content.starts_with('-') {
            return Err(malformed(
                line.number,
                format!("unexpected `{}` among the armor headers", line.content),
                "`Hash: ALGORITHM` headers and a blank line",
            ));
        }
        let names = line
            .content
            .strip_prefix("Hash:")
            .map(|names| names.split(',').map(str::trim).collect::<Vec<_>>())
            .filter(|names| names.iter().all(|n| ARMOR_HASHES.contains(n)));
        match names {
            Some(names) => hashes.extend(names),
            None => {
                return Err(malformed(
                    line.number,
                    format!("`{}` is not a `Hash:` armor header", line.content),
                    "`Hash: SHA256` (or another digest gpg knows) and a blank line",
                ))
            }
        }
    }

    let text_first_line = lines.number + 1;
    let message_start = lines.position;
    let mut message_end = message_start;
    let mut message_lines: Vec<&str> = Vec::new();
    let mut changed = false;
    let signature_start = loop {
        let Some(line) = lines.next() else {
            return Err(malformed(
                lines.number + 1,
                format!("the message ends before `{SIGNATURE_BEGIN}`"),
                "a signature after the signed text",
            ));
        };
        let content = if line.content == SIGNATURE_BEGIN {
            break line.start;
        } else if let Some(unescaped) = line.content.strip_prefix("- ") {
            changed = true;
            unescaped
        } else if line.content.starts_with('-') {
            // RFC 4880 only asks for a warning, but a stray armor line here
            // is how a file is made to read differently to APT and to gpgv.
            return Err(malformed(
                line.number,
                format!("unexpected `{}` in the signed text", line.content),
                "text lines starting with `-` to be dash-escaped as `- -`",
            ));
        } else {
            changed |= line.content.len() != line.raw.len();
            line.content
        };
        message_lines.push(content);
        message_end = line.start + line.raw.len();
    };

    let mut signature_end = signature_start;
    let mut open = true;
    while let Some(line) = lines.next() {
        if open {
            if line.content == SIGNATURE_END {
                open = false;
                signature_end = lines.position;
            } else if line.content.starts_with('-') {
                return Err(malformed(
                    line.number,
                    format!("unexpected `{}` inside the signature", line.content),
                    SIGNATURE_END,
                ));
            }
        } else if line.content == SIGNATURE_BEGIN {
            open = true;
        } else {
            return Err(malformed(
                line.number,
                "text after the signature".into(),
                "nothing after `-----END PGP SIGNATURE-----`",
            ));
        }
    }
    if open {
        return Err(malformed(
            lines.number + 1,
            "the signature is not closed".into(),
            SIGNATURE_END,
        ));
    }

    let signed_text = if changed {
        Cow::Owned(message_lines.join("\n"))
    } else {
        Cow::Borrowed(text.get(message_start..message_end).unwrap_or_default())
    };
    Ok(ClearSigned {
        hashes,
        text: signed_text,
        text_first_line,
        signature: text.get(signature_start..signature_end).unwrap_or_default(),
    })
}

/// One line of the input.
struct InputLine<'a> {
    /// 1-based.
    number: usize,
    /// Byte offset of the line's start.
    start: usize,
    /// The line without its `\n`.
    raw: &'a str,
    /// The line without trailing spaces, tabs and `\r`, which RFC 4880 and
    /// gpg do not count as part of the signed text.
    content: &'a str,
}

struct LineCursor<'a> {
    text: &'a str,
    /// Where the next line starts.
    position: usize,
    /// Number of the last line returned.
    number: usize,
}

impl<'a> LineCursor<'a> {
    fn new(text: &'a str) -> Self {
        LineCursor {
            text,
            position: 0,
            number: 0,
        }
    }
}

impl<'a> Iterator for LineCursor<'a> {
    type Item = InputLine<'a>;

    fn next(&mut self) -> Option<InputLine<'a>> {
        let rest = self.text.get(self.position..).filter(|r| !r.is_empty())?;
        let start = self.position;
        let (raw, consumed) = match memchr::memchr(b'\n', rest.as_bytes()) {
            Some(n) => (&rest[..n], n + 1),
            None => (rest, rest.len()),
        };
        self.position += consumed;
        self.number += 1;
        Some(InputLine {
            number: self.number,
            start,
            raw,
            content: raw.trim_end_matches([' ', '\t', '\r']),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_through_display() {
        let text = "Sun, 22 Nov 2026 08:12:34 UTC";
        let t = Timestamp::parse_rfc2822(text).unwrap();
        assert_eq!(t.unix_seconds(), 1_795_335_154);
        assert_eq!(t.to_string(), text);
        assert_eq!(
            Timestamp::from_unix_seconds(0).to_string(),
            "Thu, 01 Jan 1970 00:00:00 UTC"
        );
        assert_eq!(
            Timestamp::from_unix_seconds(-1).to_string(),
            "Wed, 31 Dec 1969 23:59:59 UTC"
        );
    }

    #[test]
    fn zones_other_than_utc_are_refused_like_apt() {
        for zone in ["UTC", "GMT", "Z", "+0000", "-0000", "0"] {
            let text = format!("Sun, 22 Nov 2026 08:12:34 {zone}");
            assert!(Timestamp::parse_rfc2822(&text).is_ok(), "{text}");
        }
        let e = Timestamp::parse_rfc2822("Sun, 22 Nov 2026 08:12:34 +0100").unwrap_err();
        assert_eq!(e.column, 27);
        assert!(e.message.contains("not UTC"), "{e}");
    }

    #[test]
    fn malformed_dates_say_where() {
        let cases = [
            ("", 1),
            ("Sat 22 Nov 2026 08:12:34 UTC", 1),
            ("Sat, 32 Nov 2026 08:12:34 UTC", 6),
            ("Sat, 29 Feb 2026 08:12:34 UTC", 6),
            ("Sat, 22 Nox 2026 08:12:34 UTC", 9),
            ("Sat, 22 Nov 26 08:12:34 UTC", 13),
            ("Sun, 22 Nov 2026 24:00:00 UTC", 18),
            ("Sun, 22 Nov 2026 08:12 UTC", 18),
            ("Sun, 22 Nov 2026 08:12:34", 26),
            ("Sun, 22 Nov 2026 08:12:34 UTC x", 31),
            ("Sät, 22 Nov 2026 08:12:34 UTC", 1),
        ];
        for (text, column) in cases {
            let e = Timestamp::parse_rfc2822(text).unwrap_err();
            assert_eq!(e.column, column, "{text}: {e}");
        }
        assert!(Timestamp::parse_rfc2822("Thu, 29 Feb 2024 00:00:00 UTC").is_ok());
    }

    #[test]
    fn system_time_before_the_epoch_rounds_down() {
        let t = UNIX_EPOCH - std::time::Duration::from_millis(1500);
        assert_eq!(Timestamp::from(t).unix_seconds(), -2);
    }

    #[test]
    fn split_keeps_the_text_borrowed_when_nothing_changes() {
        let input = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nA: b\nC: d\n-----BEGIN PGP SIGNATURE-----\n\nabc\n-----END PGP SIGNATURE-----\n";
        let s = split_clearsigned(input).unwrap();
        assert!(matches!(s.text, Cow::Borrowed("A: b\nC: d")));
        assert_eq!(s.hashes, ["SHA256"]);
        assert_eq!(s.text_first_line, 4);
        assert_eq!(
            s.signature,
            "-----BEGIN PGP SIGNATURE-----\n\nabc\n-----END PGP SIGNATURE-----\n"
        );
    }

    #[test]
    fn checksum_paths_may_not_leave_the_suite() {
        for path in ["/etc/shadow", "../x", "main/../../x", "a\\b"] {
            assert!(!is_safe_relative_path(path), "{path}");
        }
        assert!(is_safe_relative_path("main/binary-amd64/Packages.xz"));
    }
}
