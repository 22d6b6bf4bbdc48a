//! britney's age and RC-bug policies: the files they read (`Dates`,
//! `Urgency`, `BugsV` / `rc-bugs-SUITE`), the day britney counts in, and
//! each candidate's verdict. Not the installability rule (excuses.rs).
//!
//! - **Age**: a candidate must have been in the source suite for the days
//!   its urgency asks (low 10, medium 5, high 2, critical and emergency 0;
//!   configurable). Urgencies are sticky: the most urgent upload between
//!   the target's version and the source suite's counts. A source new to
//!   the target gets no reduction below the default urgency. Hints
//!   `age-days N` and `urgent` change the requirement.
//! - **RC bugs**: a candidate whose source or binaries carry an RC bug in
//!   the source suite that the target's version does not have is blocked
//!   (britney: REJECTED_PERMANENTLY); hint `ignore-rc-bugs`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use ferry_deb::release::{days_from_civil, days_in_month};
use ferry_deb::Version;
use serde::Serialize;

use crate::lines::{lines, read};
use crate::ArchiveError;

/// britney's day: days since 1970-01-01, each beginning at 19:00 UTC (so
/// that packages age in the evening run).
pub fn britney_day(unix_seconds: i64) -> i64 {
    (unix_seconds / 3600 - 19).div_euclid(24)
}

/// `--now`: britney's day number, or an ISO date `YYYY-MM-DD` meaning the
/// day that begins at 19:00 UTC on that date.
pub fn parse_day(text: &str) -> Result<i64, String> {
    if let Ok(n) = text.parse::<i64>() {
        return Ok(n);
    }
    let bad = || format!("`{text}`: expected britney's day number or a date YYYY-MM-DD");
    let mut parts = text.splitn(3, '-');
    let (Some(y), Some(m), Some(d)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    let (Ok(y), Ok(m), Ok(d)) = (y.parse::<i64>(), m.parse::<u32>(), d.parse::<u32>()) else {
        return Err(bad());
    };
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return Err(bad());
    }
    Ok(days_from_civil(y, m, d))
}

/// The age requirement of each urgency, in days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinDays {
    pub days: BTreeMap<String, u32>,
    /// The urgency of an upload with none, or an unknown one; and the
    /// floor for a source new to the target.
    pub default_urgency: String,
}

impl Default for MinDays {
    fn default() -> Self {
        MinDays {
            days: [
                ("low", 10),
                ("medium", 5),
                ("high", 2),
                ("critical", 0),
                ("emergency", 0),
            ]
            .into_iter()
            .map(|(u, d)| (u.to_string(), d))
            .collect(),
            default_urgency: "medium".into(),
        }
    }
}

impl MinDays {
    fn of(&self, urgency: &str) -> Option<u32> {
        self.days.get(urgency).copied()
    }

    fn default_days(&self) -> u32 {
        self.of(&self.default_urgency).unwrap_or(0)
    }
}

/// The age policy's inputs: when each source version arrived, the
/// urgencies of uploads, today.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Age {
    /// source → (version, britney day it arrived in the source suite).
    pub dates: HashMap<String, (String, i64)>,
    /// source → [(version, urgency)] as the Urgency file lists them.
    pub urgencies: HashMap<String, Vec<(String, String)>>,
    pub now: i64,
    pub min_days: MinDays,
}

/// One line's three words, or an error at the line.
fn three_words<'a>(
    path: &Path,
    number: usize,
    words: &[crate::lines::Word<'a>],
    what: &str,
) -> Result<[&'a str; 3], ArchiveError> {
    match words {
        [a, b, c] => Ok([a.text, b.text, c.text]),
        _ => Err(ArchiveError::Parse {
            path: path.to_path_buf(),
            line: number,
            message: format!("expected `{what}`, found {} words", words.len()),
        }),
    }
}

impl Age {
    /// Reads britney's `Dates` file (`SOURCE VERSION DAY` a line).
    pub fn read_dates(&mut self, path: &Path) -> Result<(), ArchiveError> {
        self.parse_dates(&read(path)?, path)
    }

    /// A `Dates` file's text; `path` names it in errors.
    pub fn parse_dates(&mut self, text: &str, path: &Path) -> Result<(), ArchiveError> {
        for line in lines(text) {
            let [source, version, day] =
                three_words(path, line.number, &line.words, "SOURCE VERSION DAY")?;
            let day: i64 = day.parse().map_err(|_| ArchiveError::Parse {
                path: path.to_path_buf(),
                line: line.number,
                message: format!("`{day}` is not a day number"),
            })?;
            self.dates
                .insert(source.to_string(), (version.to_string(), day));
        }
        Ok(())
    }

    /// Reads britney's `Urgency` file (`SOURCE VERSION URGENCY` a line).
    pub fn read_urgencies(&mut self, path: &Path) -> Result<(), ArchiveError> {
        self.parse_urgencies(&read(path)?, path)
    }

    /// An `Urgency` file's text; `path` names it in errors.
    pub fn parse_urgencies(&mut self, text: &str, path: &Path) -> Result<(), ArchiveError> {
        for line in lines(text) {
            let [source, version, urgency] =
                three_words(path, line.number, &line.words, "SOURCE VERSION URGENCY")?;
            if Version::parse(version).is_err() {
                return Err(ArchiveError::Parse {
                    path: path.to_path_buf(),
                    line: line.number,
                    message: format!("`{version}` is not a Debian version"),
                });
            }
            self.urgencies
                .entry(source.to_string())
                .or_default()
                .push((version.to_string(), urgency.to_string()));
        }
        Ok(())
    }

    /// The candidate's age and requirement; `old` is the target's version
    /// (None: new to the target), `hinted_days` an `age-days` hint's.
    pub fn judge(
        &self,
        source: &str,
        old: Option<&str>,
        new: &str,
        hinted_days: Option<u32>,
    ) -> AgeVerdict {
        let newer_than_old = |v: &Version| {
            old.and_then(|o| Version::parse(o).ok())
                .is_none_or(|o| *v > o)
        };
        let not_after_new = |v: &Version| Version::parse(new).is_ok_and(|n| *v <= n);
        // Sticky: the most urgent upload since the target's version.
        let mut urgency = self.min_days.default_urgency.clone();
        let mut required = self.min_days.default_days();
        for (version, u) in self.urgencies.get(source).into_iter().flatten() {
            let Ok(v) = Version::parse(version) else {
                continue;
            };
            let days = self.min_days.of(u).unwrap_or(self.min_days.default_days());
            if newer_than_old(&v) && not_after_new(&v) && days < required {
                required = days;
                urgency = u.clone();
            }
        }
        if old.is_none() && required < self.min_days.default_days() {
            // New to the target: no reduction below the default urgency.
            required = self.min_days.default_days();
            urgency = self.min_days.default_urgency.clone();
        }
        let age = match self.dates.get(source) {
            Some((version, day)) if version == new => self.now.saturating_sub(*day).max(0),
            // Not seen at this version before: it arrives today.
            _ => 0,
        };
        AgeVerdict {
            age_days: u32::try_from(age).unwrap_or(u32::MAX),
            required_days: hinted_days.unwrap_or(required),
            urgency,
        }
    }
}

/// What the age policy found for one candidate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgeVerdict {
    pub age_days: u32,
    pub required_days: u32,
    pub urgency: String,
}

impl AgeVerdict {
    pub fn too_young(&self) -> bool {
        self.age_days < self.required_days
    }
}

/// RC bugs of one suite: package (binary, source or `src:NAME`) → bugs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RcBugs {
    pub bugs: HashMap<String, BTreeSet<String>>,
}

impl RcBugs {
    /// Reads a `BugsV` / `rc-bugs-SUITE` file: `PACKAGE BUG[,BUG…]` a line.
    pub fn read(path: &Path) -> Result<RcBugs, ArchiveError> {
        RcBugs::parse(&read(path)?, path)
    }

    /// A bugs file's text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<RcBugs, ArchiveError> {
        let mut bugs: HashMap<String, BTreeSet<String>> = HashMap::new();
        for line in lines(text) {
            let (package, list) = match &line.words[..] {
                [p, l] => (p.text, l.text),
                words => {
                    return Err(ArchiveError::Parse {
                        path: path.to_path_buf(),
                        line: line.number,
                        message: format!(
                            "expected `PACKAGE BUG[,BUG…]`, found {} words",
                            words.len()
                        ),
                    })
                }
            };
            let entry = bugs.entry(package.to_string()).or_default();
            for bug in list.split(',').filter(|b| !b.is_empty()) {
                entry.insert(bug.to_string());
            }
        }
        Ok(RcBugs { bugs })
    }

    /// The bugs of a source (by its name and `src:NAME`) and its binaries.
    fn of<'a>(&self, source: &str, binaries: impl Iterator<Item = &'a str>) -> BTreeSet<String> {
        let mut all = BTreeSet::new();
        let mut add = |key: &str| {
            if let Some(bugs) = self.bugs.get(key) {
                all.extend(bugs.iter().cloned());
            }
        };
        add(source);
        add(&format!("src:{source}"));
        binaries.for_each(add);
        all
    }
}

/// Both suites' RC bugs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RcBugPolicy {
    pub source: RcBugs,
    pub target: RcBugs,
}

impl RcBugPolicy {
    /// The RC bugs migrating would bring into the target (none when the
    /// source suite's are all the target's already), less `ignored`.
    pub fn new_bugs<'a>(
        &self,
        source: &str,
        in_target: bool,
        new_binaries: impl Iterator<Item = &'a str>,
        old_binaries: impl Iterator<Item = &'a str>,
        ignored: &BTreeSet<String>,
    ) -> Vec<String> {
        let from: BTreeSet<String> = self
            .source
            .of(source, new_binaries)
            .difference(ignored)
            .cloned()
            .collect();
        let to: BTreeSet<String> = if in_target {
            self.target.of(source, old_binaries)
        } else {
            BTreeSet::new()
        };
        from.difference(&to).cloned().collect()
    }
}

/// The policies a run applies besides installability; each is off unless
/// its files were given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policies {
    pub age: Option<Age>,
    pub rc_bugs: Option<RcBugPolicy>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn britneys_day_begins_at_seven_in_the_evening() {
        // 2026-12-02T00:00Z is day 20,789 since the epoch; britney's day
        // 20,789 begins at 19:00 that date.
        let midnight = 20_789 * 86_400;
        assert_eq!(britney_day(midnight), 20_788);
        assert_eq!(britney_day(midnight + 19 * 3600 - 1), 20_788);
        assert_eq!(britney_day(midnight + 19 * 3600), 20_789);
        assert_eq!(parse_day("2026-12-02"), Ok(20_789));
        assert_eq!(parse_day("20789"), Ok(20_789));
        assert_eq!(parse_day("1970-01-01"), Ok(0));
        assert_eq!(parse_day("2024-02-29"), Ok(19_782));
        for bad in ["2023-02-29", "2026-13-01", "yesterday", "2026-12", ""] {
            assert!(parse_day(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn gnu_date_agrees_on_the_days_since_the_epoch() {
        for date in ["1999-12-31", "2000-03-01", "2026-12-02", "2100-02-28"] {
            let Ok(out) = std::process::Command::new("date")
                .args(["-u", "-d", &format!("{date} 00:00"), "+%s"])
                .output()
            else {
                ferry_testkit::skip!("no date(1)");
            };
            let seconds: i64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
            assert_eq!(parse_day(date), Ok(seconds / 86_400), "{date}");
        }
    }

    fn age(now: i64) -> Age {
        Age {
            now,
            ..Age::default()
        }
    }

    #[test]
    fn urgency_is_sticky_and_a_new_source_gets_no_reduction() {
        let mut a = age(100);
        a.dates.insert("foo".into(), ("3".into(), 97));
        a.urgencies.insert(
            "foo".into(),
            vec![
                ("1".into(), "emergency".into()), // the target's already
                ("2".into(), "high".into()),      // since then: counts
                ("3".into(), "low".into()),
                ("4".into(), "critical".into()), // not yet in the source suite
            ],
        );
        let v = a.judge("foo", Some("1"), "3", None);
        assert_eq!((v.age_days, v.required_days), (3, 2));
        assert_eq!(v.urgency, "high");
        assert!(!v.too_young());
        // New to the target: high would be 2 days, the default is 5.
        let v = a.judge("foo", None, "3", None);
        assert_eq!((v.required_days, v.urgency.as_str()), (5, "medium"));
        assert!(v.too_young());
        // An age-days hint sets the requirement.
        assert_eq!(a.judge("foo", None, "3", Some(1)).required_days, 1);
        // A version the dates do not know arrives today.
        assert_eq!(a.judge("foo", Some("1"), "5", None).age_days, 0);
    }

    #[test]
    fn only_new_rc_bugs_block() {
        let mut p = RcBugPolicy::default();
        p.source
            .bugs
            .insert("src:foo".into(), ["1".into(), "2".into()].into());
        p.source.bugs.insert("libfoo1".into(), ["3".into()].into());
        p.target.bugs.insert("foo".into(), ["1".into()].into());
        let none = BTreeSet::new();
        let new = p.new_bugs("foo", true, ["libfoo1"].into_iter(), [].into_iter(), &none);
        assert_eq!(new, ["2", "3"]);
        let ignored: BTreeSet<String> = ["2".into(), "3".into()].into();
        assert!(p
            .new_bugs(
                "foo",
                true,
                ["libfoo1"].into_iter(),
                [].into_iter(),
                &ignored
            )
            .is_empty());
        // Not in the target: every bug is new.
        let new = p.new_bugs("foo", false, [].into_iter(), [].into_iter(), &none);
        assert_eq!(new, ["1", "2"]);
    }

    #[test]
    fn malformed_lines_are_errors_at_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let dates = dir.path().join("Dates");
        std::fs::write(&dates, "# comment\nfoo 1 20000\nbar 2\n").unwrap();
        let e = Age::default().read_dates(&dates).unwrap_err();
        assert!(
            e.to_string()
                .contains("Dates:3: expected `SOURCE VERSION DAY`"),
            "{e}"
        );
        std::fs::write(&dates, "foo 1 soon\n").unwrap();
        assert!(Age::default()
            .read_dates(&dates)
            .unwrap_err()
            .to_string()
            .contains(":1: `soon`"));
        let urgency = dir.path().join("Urgency");
        std::fs::write(&urgency, "foo not:a:version! high\n").unwrap();
        assert!(Age::default().read_urgencies(&urgency).is_err());
        let bugs = dir.path().join("BugsV");
        std::fs::write(&bugs, "foo 1,2\nbar\n").unwrap();
        let e = RcBugs::read(&bugs).unwrap_err();
        assert!(e.to_string().contains("BugsV:2:"), "{e}");
        std::fs::write(&bugs, "foo 1,2\nfoo 3\n").unwrap();
        assert_eq!(RcBugs::read(&bugs).unwrap().bugs["foo"].len(), 3);
    }
}
