//! Debian package versions, ordered exactly as dpkg orders them.
//!
//! `[epoch:]upstream[-revision]`, compared with dpkg's `verrevcmp`: runs of
//! non-digits compare character by character (letters before other symbols,
//! `~` before everything, even the end of the string), runs of digits compare
//! numerically. Not for: version *ranges* (see `relation`).
//!
//! Written here rather than taken from the `debversion` crate because the
//! solver compares millions of borrowed versions while reading a Packages file
//! and must not allocate for each one; `VersionRef` borrows from the input.

use std::cmp::Ordering;
use std::fmt;

/// Why a version string is not a valid Debian version (dpkg's own rules).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error("version is empty")]
    Empty,
    #[error("version contains whitespace")]
    Whitespace,
    #[error("epoch `{0}` is not a number")]
    BadEpoch(String),
    #[error("epoch `{0}` is too large")]
    EpochTooLarge(String),
    #[error("nothing after the epoch colon")]
    EmptyUpstream,
    #[error("revision after the last `-` is empty")]
    EmptyRevision,
    #[error("upstream version must start with a digit, found `{0}`")]
    UpstreamStartsWithNonDigit(char),
    #[error("invalid character `{0}` in upstream version")]
    BadUpstreamChar(char),
    #[error("invalid character `{0}` in revision")]
    BadRevisionChar(char),
}

/// A version borrowed from the text it was read from.
#[derive(Debug, Clone, Copy)]
pub struct VersionRef<'a> {
    /// The version as written (`0:1.0` stays `0:1.0`), for reports.
    pub text: &'a str,
    pub epoch: u32,
    pub upstream: &'a str,
    pub revision: &'a str,
}

impl<'a> VersionRef<'a> {
    /// Parses with dpkg's validation: the checks `dpkg --compare-versions`
    /// and `dpkg-deb` make before they accept a version.
    pub fn parse(text: &'a str) -> Result<Self, VersionError> {
        let version = Self::split(text)?;
        version.validate()?;
        Ok(version)
    }

    /// Splits without checking the characters: for trusted indices on hot
    /// paths, where a bad character must not make a whole archive unreadable.
    pub fn split(text: &'a str) -> Result<Self, VersionError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(VersionError::Empty);
        }
        if text.bytes().any(|b| b.is_ascii_whitespace()) {
            return Err(VersionError::Whitespace);
        }
        let (epoch, rest) = match memchr::memchr(b':', text.as_bytes()) {
            Some(colon) => {
                let digits = &text[..colon];
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(VersionError::BadEpoch(digits.to_string()));
                }
                let epoch = digits
                    .parse::<u32>()
                    .ok()
                    .filter(|e| *e <= i32::MAX as u32)
                    .ok_or_else(|| VersionError::EpochTooLarge(digits.to_string()))?;
                (epoch, &text[colon + 1..])
            }
            None => (0, text),
        };
        if rest.is_empty() {
            return Err(VersionError::EmptyUpstream);
        }
        let (upstream, revision) = match memchr::memrchr(b'-', rest.as_bytes()) {
            Some(dash) => (&rest[..dash], &rest[dash + 1..]),
            None => (rest, ""),
        };
        if upstream.is_empty() {
            return Err(VersionError::EmptyUpstream);
        }
        if revision.is_empty() && rest.len() != upstream.len() {
            return Err(VersionError::EmptyRevision);
        }
        Ok(VersionRef {
            text,
            epoch,
            upstream,
            revision,
        })
    }

    fn validate(&self) -> Result<(), VersionError> {
        let first = self
            .upstream
            .chars()
            .next()
            .ok_or(VersionError::EmptyUpstream)?;
        if !first.is_ascii_digit() {
            return Err(VersionError::UpstreamStartsWithNonDigit(first));
        }
        if let Some(c) = self
            .upstream
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || ".-+~:".contains(*c)))
        {
            return Err(VersionError::BadUpstreamChar(c));
        }
        if let Some(c) = self
            .revision
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || ".+~".contains(*c)))
        {
            return Err(VersionError::BadRevisionChar(c));
        }
        Ok(())
    }

    pub fn to_owned(&self) -> Version {
        Version::from_ref(*self)
    }
}

impl Ord for VersionRef<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| verrevcmp(self.upstream, other.upstream))
            .then_with(|| verrevcmp(self.revision, other.revision))
    }
}

impl PartialOrd for VersionRef<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Equality is dpkg's: `1.0` equals `0:1.0` and `1.0-0`.
impl PartialEq for VersionRef<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for VersionRef<'_> {}

impl fmt::Display for VersionRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text)
    }
}

/// dpkg's ordering weight of one character of a non-digit run; 0 is the end.
fn order(c: u8) -> i32 {
    match c {
        b'~' => -1,
        0 => 0,
        c if c.is_ascii_digit() => 0,
        c if c.is_ascii_alphabetic() => c as i32,
        c => c as i32 + 256,
    }
}

/// dpkg's `verrevcmp` over bytes, with the end of a string read as 0.
pub fn verrevcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let at = |s: &[u8], i: usize| s.get(i).copied().unwrap_or(0);
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let (ac, bc) = (order(at(a, i)), order(at(b, j)));
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        while at(a, i) == b'0' {
            i += 1;
        }
        while at(b, j) == b'0' {
            j += 1;
        }
        let mut first_diff = Ordering::Equal;
        while at(a, i).is_ascii_digit() && at(b, j).is_ascii_digit() {
            if first_diff == Ordering::Equal {
                first_diff = a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
        if at(a, i).is_ascii_digit() {
            return Ordering::Greater;
        }
        if at(b, j).is_ascii_digit() {
            return Ordering::Less;
        }
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}

/// An owned version, for values that outlive the text they came from.
#[derive(Clone)]
pub struct Version {
    text: Box<str>,
    epoch: u32,
    upstream_start: u32,
    upstream_end: u32,
}

impl Version {
    pub fn parse(text: &str) -> Result<Self, VersionError> {
        VersionRef::parse(text).map(Self::from_ref)
    }

    fn from_ref(v: VersionRef<'_>) -> Self {
        let text = v.text.to_string();
        let upstream_start = text.find(':').map_or(0, |c| c + 1);
        Version {
            epoch: v.epoch,
            upstream_start: upstream_start as u32,
            upstream_end: (upstream_start + v.upstream.len()) as u32,
            text: text.into_boxed_str(),
        }
    }

    pub fn as_ref(&self) -> VersionRef<'_> {
        let revision_start = (self.upstream_end as usize + 1).min(self.text.len());
        VersionRef {
            text: &self.text,
            epoch: self.epoch,
            upstream: &self.text[self.upstream_start as usize..self.upstream_end as usize],
            revision: &self.text[revision_start..],
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_ref().cmp(&other.as_ref())
    }
}
impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Version {}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}
impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Version({:?})", self.text)
    }
}

impl std::str::FromStr for Version {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Version::parse(s)
    }
}

impl serde::Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for Version {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Version::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// One version argument of `dpkg --compare-versions`, read as dpkg reads
/// it: dpkg compares some versions it calls bad (with a warning) and
/// refuses others (exit 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DpkgArgument<'a> {
    /// Empty, or `<unknown>`: no version. It sorts before every version
    /// (after every one for the `-nl` relations).
    Missing,
    /// A valid version.
    Valid(VersionRef<'a>),
    /// A version dpkg compares anyway, warning `version 'X' has bad
    /// syntax: …`: its upstream part does not start with a digit, or holds
    /// a character Debian versions do not allow.
    Warned(VersionRef<'a>, VersionError),
}

impl<'a> DpkgArgument<'a> {
    /// Reads `text` as dpkg's `parseversion` does: blanks (space, tab)
    /// around it are dropped, the epoch is what C's `strtol` reads before
    /// the first `:` (so `+1:` is epoch 1), the revision follows the last
    /// `-`. An error is what dpkg refuses with exit 2.
    pub fn parse(text: &'a str) -> Result<Self, VersionError> {
        if text.is_empty() || text == "<unknown>" {
            return Ok(DpkgArgument::Missing);
        }
        let blank = |c: char| c == ' ' || c == '\t';
        let trimmed = text.trim_start_matches(blank);
        let end = trimmed.find(blank).unwrap_or(trimmed.len());
        if !trimmed[end..].trim_start_matches(blank).is_empty() {
            return Err(VersionError::Whitespace);
        }
        let string = &trimmed[..end];
        let (epoch, rest) = match string.find(':') {
            Some(colon) => {
                let epoch = c_strtol_epoch(&string[..colon])?;
                let rest = &string[colon + 1..];
                if rest.is_empty() {
                    return Err(VersionError::EmptyUpstream);
                }
                (epoch, rest)
            }
            None => (0, string),
        };
        let (upstream, revision) = match rest.rfind('-') {
            Some(dash) if dash + 1 == rest.len() => return Err(VersionError::EmptyRevision),
            Some(dash) => (&rest[..dash], &rest[dash + 1..]),
            None => (rest, ""),
        };
        if upstream.is_empty() {
            return Err(VersionError::Empty);
        }
        let version = VersionRef {
            text: string,
            epoch,
            upstream,
            revision,
        };
        Ok(match version.validate() {
            Ok(()) => DpkgArgument::Valid(version),
            Err(warning) => DpkgArgument::Warned(version, warning),
        })
    }

    /// The version, when there is one (valid or warned).
    pub fn version(&self) -> Option<VersionRef<'a>> {
        match self {
            DpkgArgument::Missing => None,
            DpkgArgument::Valid(v) | DpkgArgument::Warned(v, _) => Some(*v),
        }
    }
}

/// The epoch before a version's first `:` as dpkg reads it with C's
/// `strtol`: leading white space, an optional sign, digits, and nothing
/// else up to the colon; 0 to `INT_MAX`.
fn c_strtol_epoch(text: &str) -> Result<u32, VersionError> {
    let bad = || VersionError::BadEpoch(text.to_string());
    let body = text.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '\x0b');
    let (negative, digits) = match body.as_bytes().first() {
        Some(b'-') => (true, &body[1..]),
        Some(b'+') => (false, &body[1..]),
        _ => (false, body),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let value = digits.trim_start_matches('0');
    if value.is_empty() {
        return Ok(0);
    }
    if negative {
        return Err(bad());
    }
    value
        .parse::<u32>()
        .ok()
        .filter(|e| *e <= i32::MAX as u32)
        .ok_or_else(|| VersionError::EpochTooLarge(text.to_string()))
}

/// A relation of `dpkg --compare-versions`: its comparison, where a
/// missing version sorts, and whether dpkg calls it obsolete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DpkgRelation {
    pub op: CompareOp,
    /// `lt-nl`, `le-nl`, `ge-nl`, `gt-nl`: a missing version is later
    /// than any version, not earlier.
    pub missing_is_latest: bool,
    /// `<` and `>`, dpkg 1.0's spelling of `<=` and `>=`: accepted with
    /// `warning: --compare-versions used with obsolete relation operator`.
    pub obsolete: bool,
}

impl DpkgRelation {
    /// The relations dpkg 1.21 accepts, and no other.
    pub fn parse(text: &str) -> Option<Self> {
        let (op, missing_is_latest, obsolete) = match text {
            "lt" | "<<" => (CompareOp::Lt, false, false),
            "le" | "<=" => (CompareOp::Le, false, false),
            "eq" | "=" => (CompareOp::Eq, false, false),
            "ne" => (CompareOp::Ne, false, false),
            "ge" | ">=" => (CompareOp::Ge, false, false),
            "gt" | ">>" => (CompareOp::Gt, false, false),
            "lt-nl" => (CompareOp::Lt, true, false),
            "le-nl" => (CompareOp::Le, true, false),
            "ge-nl" => (CompareOp::Ge, true, false),
            "gt-nl" => (CompareOp::Gt, true, false),
            "<" => (CompareOp::Le, false, true),
            ">" => (CompareOp::Ge, false, true),
            _ => return None,
        };
        Some(DpkgRelation {
            op,
            missing_is_latest,
            obsolete,
        })
    }

    /// Whether `a RELATION b` holds, a missing version sorting first (or
    /// last for the `-nl` relations) and two missing ones equal.
    pub fn holds(self, a: Option<VersionRef<'_>>, b: Option<VersionRef<'_>>) -> bool {
        let ordering = match (a, b) {
            (Some(a), Some(b)) => a.cmp(&b),
            (None, None) => Ordering::Equal,
            (None, Some(_)) if self.missing_is_latest => Ordering::Greater,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) if self.missing_is_latest => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
        };
        self.op.holds(ordering)
    }
}

/// dpkg's relation operators for `--compare-versions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Lt,
    Le,
    Eq,
    Ne,
    Ge,
    Gt,
}

impl CompareOp {
    /// Accepts dpkg's names (`lt`, `le`, …) and its symbols (`<<`, `<=`, …).
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "lt" | "<<" | "lt-nl" => CompareOp::Lt,
            "le" | "<=" | "le-nl" => CompareOp::Le,
            "eq" | "=" | "eq-nl" => CompareOp::Eq,
            "ne" | "ne-nl" => CompareOp::Ne,
            "ge" | ">=" | "ge-nl" => CompareOp::Ge,
            "gt" | ">>" | "gt-nl" => CompareOp::Gt,
            _ => return None,
        })
    }

    pub fn holds(self, ordering: Ordering) -> bool {
        match self {
            CompareOp::Lt => ordering == Ordering::Less,
            CompareOp::Le => ordering != Ordering::Greater,
            CompareOp::Eq => ordering == Ordering::Equal,
            CompareOp::Ne => ordering != Ordering::Equal,
            CompareOp::Ge => ordering != Ordering::Less,
            CompareOp::Gt => ordering == Ordering::Greater,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpkg_arguments_refuse_warn_or_pass_as_dpkg_does() {
        use DpkgArgument as A;
        assert_eq!(A::parse("").unwrap(), A::Missing);
        assert_eq!(A::parse("<unknown>").unwrap(), A::Missing);
        for refused in [
            "1.0-",
            "1 2",
            ":1",
            "x:1",
            "-1:1",
            "1:",
            "  ",
            "1:-1",
            "2147483648:1",
        ] {
            assert!(A::parse(refused).is_err(), "{refused:?}");
        }
        assert!(matches!(A::parse("a1").unwrap(), A::Warned(..)));
        assert!(matches!(A::parse("1_2").unwrap(), A::Warned(..)));
        // strtol's epoch: a sign, leading zeros; blanks around are dropped.
        let epoch = |t| A::parse(t).unwrap().version().unwrap().epoch;
        assert_eq!(epoch("+1:2"), 1);
        assert_eq!(epoch("-0:2"), 0);
        assert_eq!(epoch("007:2"), 7);
        assert_eq!(A::parse(" \t1.0\t").unwrap(), A::parse("1.0").unwrap());
    }

    #[test]
    fn dpkg_relations_place_a_missing_version() {
        let v = VersionRef::parse("1").ok();
        let lt = DpkgRelation::parse("lt").unwrap();
        let lt_nl = DpkgRelation::parse("lt-nl").unwrap();
        assert!(lt.holds(None, v));
        assert!(!lt_nl.holds(None, v));
        assert!(lt_nl.holds(v, None));
        assert!(DpkgRelation::parse("<").unwrap().holds(v, v));
        assert!(DpkgRelation::parse("<").unwrap().obsolete);
        assert!(DpkgRelation::parse("eq-nl").is_none());
    }

    fn cmp(a: &str, b: &str) -> Ordering {
        VersionRef::parse(a)
            .unwrap()
            .cmp(&VersionRef::parse(b).unwrap())
    }

    #[test]
    fn tilde_sorts_before_everything_even_the_end() {
        assert_eq!(cmp("1.0~rc1", "1.0"), Ordering::Less);
        assert_eq!(cmp("1.0~~", "1.0~"), Ordering::Less);
        assert_eq!(cmp("1.0~", "1.0"), Ordering::Less);
    }

    #[test]
    fn letters_sort_before_symbols_and_digits_numerically() {
        assert_eq!(cmp("1.0a", "1.0+"), Ordering::Less);
        assert_eq!(cmp("1.10", "1.9"), Ordering::Greater);
        assert_eq!(cmp("1.010", "1.10"), Ordering::Equal);
        assert_eq!(cmp("1.0", "1.0.0"), Ordering::Less);
    }

    #[test]
    fn epoch_wins_and_missing_parts_equal_zero() {
        assert_eq!(cmp("1:0.1", "9.9"), Ordering::Greater);
        assert_eq!(cmp("0:1.0", "1.0"), Ordering::Equal);
        assert_eq!(cmp("1.0-0", "1.0"), Ordering::Equal);
        assert_eq!(cmp("1.0-1", "1.0"), Ordering::Greater);
    }

    #[test]
    fn revision_is_after_the_last_dash() {
        let v = VersionRef::parse("2:1.2-3-4ubuntu1").unwrap();
        assert_eq!((v.epoch, v.upstream, v.revision), (2, "1.2-3", "4ubuntu1"));
        let owned = Version::parse("2:1.2-3-4ubuntu1").unwrap();
        assert_eq!(owned.as_ref().upstream, "1.2-3");
        assert_eq!(owned.as_ref().revision, "4ubuntu1");
        assert_eq!(owned.to_string(), "2:1.2-3-4ubuntu1");
    }

    #[test]
    fn rejects_what_dpkg_rejects() {
        assert_eq!(VersionRef::parse(""), Err(VersionError::Empty));
        assert_eq!(VersionRef::parse("1.0 1"), Err(VersionError::Whitespace));
        assert!(matches!(
            VersionRef::parse("a:1.0"),
            Err(VersionError::BadEpoch(_))
        ));
        assert_eq!(VersionRef::parse("1:"), Err(VersionError::EmptyUpstream));
        assert_eq!(VersionRef::parse("1.0-"), Err(VersionError::EmptyRevision));
        assert!(matches!(
            VersionRef::parse("1.0_1"),
            Err(VersionError::BadUpstreamChar('_'))
        ));
        assert!(matches!(
            VersionRef::parse("x1.0"),
            Err(VersionError::UpstreamStartsWithNonDigit('x'))
        ));
    }
}
