//! The meta-release index: the list of releases a system may upgrade to,
//! and the decision whether this system is offered one.
//!
//! The format is Ubuntu's (`UpdateManager/Core/MetaRelease.py`): deb822
//! paragraphs with `Dist`, `Version`, `Date` and `Supported` required and
//! `Name`, `Description`, `Release-File`, `ReleaseNotes`, `ReleaseNotesHtml`,
//! `UpgradeTool`, `UpgradeToolSignature` and `UpgradeBroken` optional. ferry
//! adds the fields of its release bundle: `Bundle` (URL), `Bundle-Size`,
//! `Bundle-SHA256` and `Bundle-Signature` (URL of the detached signature).
//!
//! Deciding is pure (`offer`); fetching the index is `fetch`'s job and
//! acting on the offer is the upgrade's.

use std::cmp::Ordering;

use ferry_deb::deb822::{self, Paragraph, Syntax};
use ferry_deb::os_release::OsRelease;
use ferry_deb::version::verrevcmp;

/// An index that cannot be used, with the line of the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetaError {
    #[error("line {line}, column {column}: {message} (expected {expected})")]
    Syntax {
        line: usize,
        column: usize,
        message: String,
        expected: &'static str,
    },
    #[error("line {line}: the release paragraph has no `{field}` field")]
    Missing { line: usize, field: &'static str },
    #[error("line {line}: `{field}: {value}` is not {expected}")]
    Invalid {
        line: usize,
        field: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("line {line}: release `{dist}` is listed twice (first at line {first})")]
    Duplicate {
        line: usize,
        first: usize,
        dist: String,
    },
    #[error("the index lists no release")]
    Empty,
}

impl MetaError {
    /// The line of the index the problem is on, when there is one.
    pub fn line(&self) -> Option<usize> {
        match self {
            MetaError::Syntax { line, .. }
            | MetaError::Missing { line, .. }
            | MetaError::Invalid { line, .. }
            | MetaError::Duplicate { line, .. } => Some(*line),
            MetaError::Empty => None,
        }
    }
}

/// One release of the index.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReleaseEntry {
    /// The codename (`Dist`), compared with os-release's VERSION_CODENAME.
    pub dist: String,
    pub name: Option<String>,
    /// As written, e.g. `13` or `24.04 LTS`; its first word is compared
    /// with os-release's VERSION_ID.
    pub version: String,
    /// As written (RFC 2822), and as seconds since the epoch for ordering.
    pub date: String,
    pub timestamp: i64,
    pub supported: bool,
    pub description: Option<String>,
    pub release_file: Option<String>,
    pub release_notes: Option<String>,
    pub release_notes_html: Option<String>,
    pub upgrade_tool: Option<String>,
    pub upgrade_tool_signature: Option<String>,
    /// The server's reason why upgrades to this release are stopped.
    pub upgrade_broken: Option<String>,
    pub bundle: Option<BundleRef>,
    /// The line of the index the paragraph starts on.
    pub line: usize,
}

/// Where a release's bundle is and what it must be.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BundleRef {
    pub url: String,
    pub size: u64,
    /// Lowercase hex.
    pub sha256: String,
    pub signature_url: String,
}

impl ReleaseEntry {
    /// The version number: the first word of `Version` (`24.04 LTS` → `24.04`).
    pub fn version_number(&self) -> &str {
        self.version.split_whitespace().next().unwrap_or("")
    }

    /// Chronological order, as ubuntu-release-upgrader compares releases
    /// (by `Date`), with the version number breaking ties.
    fn order(&self, other: &ReleaseEntry) -> Ordering {
        self.timestamp
            .cmp(&other.timestamp)
            .then_with(|| verrevcmp(self.version_number(), other.version_number()))
    }

    fn matches(&self, name: &str) -> bool {
        self.dist == name || self.name.as_deref() == Some(name)
    }
}

/// A parsed index, releases in file order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MetaRelease {
    pub releases: Vec<ReleaseEntry>,
}

impl MetaRelease {
    /// Parses an index. `#` comment lines are allowed. Never panics.
    pub fn parse(text: &str) -> Result<MetaRelease, MetaError> {
        let mut releases: Vec<ReleaseEntry> = Vec::new();
        for paragraph in deb822::paragraphs(text, Syntax::WITH_COMMENTS) {
            let paragraph = paragraph.map_err(|e| MetaError::Syntax {
                line: e.line,
                column: e.column,
                message: e.message,
                expected: e.expected,
            })?;
            let entry = entry(&paragraph)?;
            if let Some(first) = releases.iter().find(|r| r.dist == entry.dist) {
                return Err(MetaError::Duplicate {
                    line: entry.line,
                    first: first.line,
                    dist: entry.dist,
                });
            }
            releases.push(entry);
        }
        if releases.is_empty() {
            return Err(MetaError::Empty);
        }
        Ok(MetaRelease { releases })
    }

    pub fn find(&self, name: &str) -> Option<&ReleaseEntry> {
        self.releases.iter().find(|r| r.matches(name))
    }
}

fn entry(p: &Paragraph<'_>) -> Result<ReleaseEntry, MetaError> {
    let line = p.line;
    let required = |field: &'static str| -> Result<String, MetaError> {
        match p.get(field).map(str::trim) {
            Some(v) if !v.is_empty() => Ok(v.to_string()),
            _ => Err(MetaError::Missing { line, field }),
        }
    };
    let optional = |field: &str| {
        p.get(field)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(String::from)
    };
    let field_line = |field: &str| p.field(field).map_or(line, |f| f.line);
    let invalid = |field: &'static str, value: &str, expected: &'static str| MetaError::Invalid {
        line: field_line(field),
        field,
        value: value.to_string(),
        expected,
    };

    let dist = required("Dist")?;
    let version = required("Version")?;
    let date = required("Date")?;
    let timestamp =
        parse_rfc2822(&date).ok_or_else(|| invalid("Date", &date, "an RFC 2822 date"))?;
    let supported = match required("Supported")?.as_str() {
        "1" | "yes" | "true" => true,
        "0" | "no" | "false" => false,
        other => return Err(invalid("Supported", other, "1 or 0")),
    };
    let bundle = match optional("Bundle") {
        None => None,
        Some(url) => {
            let size_text = required("Bundle-Size")?;
            let size = size_text
                .parse::<u64>()
                .map_err(|_| invalid("Bundle-Size", &size_text, "a size in bytes"))?;
            let sha256 = required("Bundle-SHA256")?.to_ascii_lowercase();
            if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(invalid("Bundle-SHA256", &sha256, "64 hexadecimal digits"));
            }
            let signature_url =
                optional("Bundle-Signature").unwrap_or_else(|| format!("{url}.sig"));
            Some(BundleRef {
                url,
                size,
                sha256,
                signature_url,
            })
        }
    };
    Ok(ReleaseEntry {
        dist,
        name: optional("Name"),
        version,
        date,
        timestamp,
        supported,
        description: optional("Description"),
        release_file: optional("Release-File"),
        release_notes: optional("ReleaseNotes"),
        release_notes_html: optional("ReleaseNotesHtml"),
        upgrade_tool: optional("UpgradeTool"),
        upgrade_tool_signature: optional("UpgradeToolSignature"),
        upgrade_broken: optional("UpgradeBroken"),
        bundle,
        line,
    })
}

/// Seconds since the epoch of an RFC 2822 date as meta-release files write
/// them: `[Thu, ]01 Jun 2006 9:00:00 UTC` (zone `UTC`, `GMT`, `Z` or `±hhmm`;
/// seconds optional).
pub fn parse_rfc2822(text: &str) -> Option<i64> {
    let text = match text.split_once(',') {
        Some((_, rest)) => rest,
        None => text,
    };
    let words: Vec<&str> = text.split_whitespace().collect();
    let (day, month, year, time, zone) = match words.as_slice() {
        [d, m, y, t] => (*d, *m, *y, *t, "UTC"),
        [d, m, y, t, z] => (*d, *m, *y, *t, *z),
        _ => return None,
    };
    let day: i64 = day.parse().ok()?;
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    // `get`, not indexing: a month of non-ASCII text must be refused, not
    // split inside a character (found by the meta_release fuzzer).
    let month_prefix = month.get(..3)?;
    let month = MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(month_prefix))? as i64
        + 1;
    let year: i64 = year.parse().ok()?;
    if !(1..=31).contains(&day) || !(1970..=9999).contains(&year) {
        return None;
    }
    let mut clock = time.split(':');
    let hour: i64 = clock.next()?.parse().ok()?;
    let minute: i64 = clock.next()?.parse().ok()?;
    let second: i64 = clock.next().map_or(Some(0), |s| s.parse().ok())?;
    if clock.next().is_some() || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let offset = match zone {
        "UTC" | "GMT" | "UT" | "Z" => 0,
        z if z.len() == 5 && (z.starts_with('+') || z.starts_with('-')) => {
            let hh: i64 = z.get(1..3)?.parse().ok()?;
            let mm: i64 = z.get(3..5)?.parse().ok()?;
            let sign = if z.starts_with('-') { -1 } else { 1 };
            sign * (hh * 3600 + mm * 60)
        }
        _ => return None,
    };
    Some(
        ferry_deb::release::days_from_civil(
            year,
            u32::try_from(month).ok()?,
            u32::try_from(day).ok()?,
        ) * 86_400
            + hour * 3600
            + minute * 60
            + second
            - offset,
    )
}

/// What the index offers this system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offer<'a> {
    /// Upgrade to `target`. `current` is the system's own paragraph, when
    /// the index lists it.
    Upgrade {
        current: Option<&'a ReleaseEntry>,
        target: &'a ReleaseEntry,
    },
    /// No supported release is later than the system's.
    UpToDate { current: Option<&'a ReleaseEntry> },
    /// The release the system would move to is marked `UpgradeBroken`.
    Broken {
        current: Option<&'a ReleaseEntry>,
        target: &'a ReleaseEntry,
        reason: &'a str,
    },
}

/// Why no decision could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfferError {
    #[error("os-release names neither VERSION_CODENAME nor VERSION_ID, so the current release is unknown")]
    UnknownCurrent,
    #[error("the index lists no release `{0}`")]
    NoSuchRelease(String),
    #[error("`{target}` is not later than the system's release `{current}`")]
    NotNewer { target: String, current: String },
}

/// Decides what to offer, as ubuntu-release-upgrader does: the system's
/// release is the paragraph whose `Dist` is VERSION_CODENAME (or, when the
/// index does not list it, its VERSION_ID stands in); the offer is the
/// *next* supported release after it in time, since Debian-family upgrades
/// go one release at a time. A target marked `UpgradeBroken` is not
/// offered. `to` picks a later release by `Dist` or `Name` instead
/// (supported or not, as `do-release-upgrade -d` allows).
pub fn offer<'a>(
    index: &'a MetaRelease,
    os: &OsRelease,
    to: Option<&str>,
) -> Result<Offer<'a>, OfferError> {
    let codename = os.version_codename().filter(|c| !c.is_empty());
    let version_id = os.version_id().filter(|v| !v.is_empty());
    let current = codename.and_then(|c| index.releases.iter().find(|r| r.dist == c));
    let later = |r: &ReleaseEntry| match (current, version_id) {
        (Some(current), _) => r.order(current) == Ordering::Greater,
        (None, Some(id)) => verrevcmp(r.version_number(), id) == Ordering::Greater,
        (None, None) => false,
    };
    if current.is_none() && version_id.is_none() {
        return Err(OfferError::UnknownCurrent);
    }
    let target = match to {
        Some(name) => {
            let target = index
                .find(name)
                .ok_or_else(|| OfferError::NoSuchRelease(name.to_string()))?;
            if !later(target) {
                let current = current
                    .map(|c| c.dist.clone())
                    .or(codename.map(String::from))
                    .or(version_id.map(String::from))
                    .unwrap_or_default();
                return Err(OfferError::NotNewer {
                    target: target.dist.clone(),
                    current,
                });
            }
            target
        }
        None => {
            let next = index
                .releases
                .iter()
                .filter(|r| r.supported && later(r))
                .min_by(|a, b| a.order(b));
            match next {
                Some(next) => next,
                None => return Ok(Offer::UpToDate { current }),
            }
        }
    };
    Ok(match target.upgrade_broken.as_deref() {
        Some(reason) => Offer::Broken {
            current,
            target,
            reason,
        },
        None => Offer::Upgrade { current, target },
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates_with_non_ascii_text_are_refused_not_a_panic() {
        assert_eq!(
            super::parse_rfc2822("01 \u{bc}\u{bc}:JJun 2006 9:00 UTC"),
            None
        );
        assert_eq!(super::parse_rfc2822("01 Jun 2006 9:00 +\u{bc}1"), None);
        assert!(super::parse_rfc2822("Thu, 01 Jun 2006 9:00:00 UTC").is_some());
    }

    use super::*;

    const INDEX: &str = "\
# ferry test index
Dist: bullseye
Name: Debian 11
Version: 11
Date: Sat, 14 Aug 2021 00:00:00 UTC
Supported: 0

Dist: bookworm
Name: Debian 12
Version: 12
Date: Sat, 10 Jun 2023 00:00:00 UTC
Supported: 1

Dist: trixie
Name: Debian 13
Version: 13
Date: Sat, 09 Aug 2025 00:00:00 UTC
Supported: 1
Description: Debian 13 trixie
ReleaseNotes: http://127.0.0.1/notes
Bundle: http://127.0.0.1/trixie.tar.xz
Bundle-Size: 1234
Bundle-SHA256: 0123456789abcdef0123456789abcdef0123456789abcdef0123456789ABCDEF

Dist: forky
Version: 14
Date: Mon, 01 Jun 2027 00:00:00 +0200
Supported: 1
";

    fn os(text: &str) -> OsRelease {
        OsRelease::parse(text).unwrap()
    }

    #[test]
    fn parses_ubuntu_fields_and_the_bundle() {
        let index = MetaRelease::parse(INDEX).unwrap();
        assert_eq!(index.releases.len(), 4);
        let trixie = index.find("trixie").unwrap();
        assert_eq!(trixie.line, 14);
        assert_eq!(trixie.description.as_deref(), Some("Debian 13 trixie"));
        let bundle = trixie.bundle.as_ref().unwrap();
        assert_eq!(bundle.size, 1234);
        assert!(bundle.sha256.ends_with("abcdef"));
        assert_eq!(bundle.signature_url, "http://127.0.0.1/trixie.tar.xz.sig");
        assert!(index.find("Debian 12").is_some());
    }

    #[test]
    fn dates_are_rfc2822() {
        assert_eq!(parse_rfc2822("Thu, 01 Jan 1970 00:00:00 UTC"), Some(0));
        assert_eq!(
            parse_rfc2822("Thu, 01 Jun 2006 9:00:00 UTC"),
            Some(1_149_152_400)
        );
        assert_eq!(
            parse_rfc2822("01 Jun 2006 11:00 +0200"),
            Some(1_149_152_400)
        );
        assert_eq!(parse_rfc2822("yesterday"), None);
        assert_eq!(parse_rfc2822("Thu, 99 Foo 2006 9:00:00 UTC"), None);
    }

    #[test]
    fn a_missing_required_field_names_its_paragraph_line() {
        let text = "Dist: a\nVersion: 1\nDate: 01 Jun 2006 9:00 UTC\nSupported: 1\n\nDist: b\nVersion: 2\nSupported: 1\n";
        assert_eq!(
            MetaRelease::parse(text),
            Err(MetaError::Missing {
                line: 6,
                field: "Date"
            })
        );
        let bad = "Dist: a\nVersion: 1\nDate: 01 Jun 2006 9:00 UTC\nSupported: maybe\n";
        assert_eq!(MetaRelease::parse(bad).unwrap_err().line(), Some(4));
        let no_hash = "Dist: a\nVersion: 1\nDate: 01 Jun 2006 9:00 UTC\nSupported: 1\nBundle: x\nBundle-Size: 1\n";
        assert!(matches!(
            MetaRelease::parse(no_hash),
            Err(MetaError::Missing {
                field: "Bundle-SHA256",
                ..
            })
        ));
        assert_eq!(MetaRelease::parse("\n# nothing\n"), Err(MetaError::Empty));
        assert!(MetaRelease::parse("Dist a\n").unwrap_err().line().is_some());
    }

    #[test]
    fn offers_the_next_supported_release() {
        let index = MetaRelease::parse(INDEX).unwrap();
        let bookworm = os("VERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n");
        match offer(&index, &bookworm, None).unwrap() {
            Offer::Upgrade { current, target } => {
                assert_eq!(current.unwrap().dist, "bookworm");
                assert_eq!(target.dist, "trixie");
            }
            other => panic!("{other:?}"),
        }
        // An unsupported release in between is skipped.
        let bullseye = os("VERSION_ID=\"11\"\nVERSION_CODENAME=bullseye\n");
        assert!(matches!(
            offer(&index, &bullseye, None).unwrap(),
            Offer::Upgrade { target, .. } if target.dist == "bookworm"
        ));
        let forky = os("VERSION_ID=\"14\"\nVERSION_CODENAME=forky\n");
        assert!(matches!(
            offer(&index, &forky, None).unwrap(),
            Offer::UpToDate { current: Some(c) } if c.dist == "forky"
        ));
    }

    #[test]
    fn without_its_paragraph_the_version_id_decides() {
        let index = MetaRelease::parse(INDEX).unwrap();
        let unlisted = os("VERSION_ID=\"12.5\"\n");
        assert!(matches!(
            offer(&index, &unlisted, None).unwrap(),
            Offer::Upgrade { current: None, target } if target.dist == "trixie"
        ));
        assert_eq!(
            offer(&index, &os("ID=debian\n"), None),
            Err(OfferError::UnknownCurrent)
        );
    }

    #[test]
    fn an_index_with_only_older_releases_offers_nothing() {
        let index = MetaRelease::parse(INDEX).unwrap();
        let future = os("VERSION_ID=\"15\"\nVERSION_CODENAME=duke\n");
        assert_eq!(
            offer(&index, &future, None),
            Ok(Offer::UpToDate { current: None })
        );
    }

    #[test]
    fn a_broken_release_is_not_offered_and_says_why() {
        let text = INDEX.replace(
            "Description: Debian 13 trixie\n",
            "UpgradeBroken: a kernel regression, wait for 13.1\n",
        );
        let index = MetaRelease::parse(&text).unwrap();
        let bookworm = os("VERSION_CODENAME=bookworm\n");
        assert!(matches!(
            offer(&index, &bookworm, None).unwrap(),
            Offer::Broken { reason, target, .. }
                if target.dist == "trixie" && reason.starts_with("a kernel")
        ));
    }

    #[test]
    fn to_picks_a_later_release_only() {
        let index = MetaRelease::parse(INDEX).unwrap();
        let bookworm = os("VERSION_CODENAME=bookworm\n");
        assert!(matches!(
            offer(&index, &bookworm, Some("forky")).unwrap(),
            Offer::Upgrade { target, .. } if target.dist == "forky"
        ));
        assert!(matches!(
            offer(&index, &bookworm, Some("bullseye")),
            Err(OfferError::NotNewer { .. })
        ));
        assert!(matches!(
            offer(&index, &bookworm, Some("sid")),
            Err(OfferError::NoSuchRelease(_))
        ));
    }
}
