//! `ferry archive excuses | nbs | coverage`: the archive questions of
//! ferry-archive, rendered for people or as JSON, with exit 1 when the
//! answer lists problems (blocked candidates, binaries not built from
//! source, coverage gaps).

use std::fmt;
use std::path::Path;

use ferry_archive::{
    britney_day, Age, ArchiveError, Coverage, GapKind, Hints, MinDays, NameMap, Nbs, Policies,
    RcBugPolicy, RcBugs, Suite, Why,
};
use serde::Serialize;

use crate::cli::{ArchiveCommand, Global, PolicyArgs};
use crate::exit::Exit;
use crate::progress::Progress;
use crate::render::{self, Failure};

pub fn run(command: ArchiveCommand, global: &Global) -> Result<Exit, Failure> {
    match command {
        ArchiveCommand::Excuses {
            from,
            to,
            arch,
            hints,
            policies,
            yaml,
            write_result,
        } => excuses(
            &from,
            &to,
            &arch,
            hints.as_deref(),
            &policies,
            write_result.as_deref(),
            yaml,
            global,
        ),
        ArchiveCommand::Nbs { suite, arch } => nbs(&suite, &arch, global),
        ArchiveCommand::Coverage {
            from,
            to,
            map,
            arch,
        } => coverage(&from, &to, map.as_deref(), &arch, global),
    }
}

/// A suite, read; its warnings (indices not UTF-8) go to stderr, where
/// they reach people and stay out of `--json` and `--yaml` documents.
fn read_suite(dir: &Path, arch: &[String]) -> Result<Suite, Failure> {
    let suite = Suite::read(dir, arch).map_err(failure)?;
    for warning in &suite.warnings {
        eprintln!("warning: {warning}");
    }
    Ok(suite)
}

fn failure(error: ArchiveError) -> Failure {
    match &error {
        ArchiveError::Read { path, .. } => {
            Failure::bad_input(error.to_string()).at(path, None, None)
        }
        ArchiveError::NoIndices { dir } => Failure::bad_input(error.to_string())
            .at(dir, None, None)
            .expected("COMPONENT/binary-ARCH/Packages[.xz|.gz|…] under the suite directory"),
        ArchiveError::Parse { path, line, .. } => {
            Failure::bad_input(error.to_string()).at(path, Some(*line), None)
        }
        ArchiveError::Map {
            path, line, column, ..
        } => Failure::bad_input(error.to_string())
            .at(path, Some(*line), Some(*column))
            .expected("`old-name new-name` per line"),
        ArchiveError::Hints {
            path, line, column, ..
        } => Failure::bad_input(error.to_string())
            .at(path, Some(*line), Some(*column))
            .expected("block SRC, unblock SRC/VERSION, force SRC/VERSION, force-hint SRC/VERSION, remove SRC/VERSION, easy SRC/VERSION…, age-days N SRC/VERSION…, urgent SRC/VERSION… or ignore-rc-bugs BUG[,BUG…] SRC/VERSION…"),
    }
}

fn why_text(why: &Why) -> String {
    match why {
        Why::Blocked => "blocked by a hint".into(),
        Why::MissingBuild { architecture } => format!("missing build on {architecture}"),
        Why::UninstallableInSource { packages } => {
            let names: Vec<&str> = packages
                .iter()
                .map(|r| r.package.package.as_str())
                .collect();
            format!("uninstallable in the source suite: {}", names.join(", "))
        }
        Why::Breaks {
            architecture,
            before,
            after,
            broken,
        } => {
            let names: Vec<&str> = broken.iter().map(|r| r.package.package.as_str()).collect();
            format!(
                "would make {} uninstallable on {architecture} ({before} -> {after})",
                names.join(", ")
            )
        }
        Why::MigratedWith { sources } => format!("together with {}", sources.join(", ")),
        Why::TooYoung {
            age_days,
            required_days,
            urgency,
        } => format!("too young: {age_days} of {required_days} days (urgency {urgency})"),
        Why::NewRcBugs { bugs } => format!("would bring new RC bugs: {}", bugs.join(", ")),
        Why::NoBinaries => "no binary built from this version on any architecture checked".into(),
        Why::Forced => "forced by a hint (force: its policies overridden)".into(),
        Why::ForcedWhateverItBreaks => "forced by a hint (force-hint: whatever it breaks)".into(),
        Why::KeptOldBinaries { packages } => {
            format!("old binaries kept, still needed: {}", packages.join(", "))
        }
    }
}

/// The policies the flags ask for, their files read.
fn policies(args: &PolicyArgs) -> Result<Policies, Failure> {
    let mut policies = Policies::default();
    if let Some(dates) = &args.dates {
        let mut min_days = MinDays::default();
        min_days.days.extend(args.min_days.iter().cloned());
        if let Some(urgency) = &args.default_urgency {
            min_days.default_urgency = urgency.clone();
        }
        if !min_days.days.contains_key(&min_days.default_urgency) {
            return Err(Failure::bad_input(format!(
                "the default urgency `{}` has no age requirement; give --min-days {}=DAYS",
                min_days.default_urgency, min_days.default_urgency
            )));
        }
        let now = args.now.unwrap_or_else(|| {
            let seconds = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            britney_day(i64::try_from(seconds).unwrap_or(i64::MAX))
        });
        let mut age = Age {
            now,
            min_days,
            ..Age::default()
        };
        age.read_dates(dates).map_err(failure)?;
        if let Some(urgencies) = &args.urgencies {
            age.read_urgencies(urgencies).map_err(failure)?;
        }
        policies.age = Some(age);
    }
    if let (Some(from), Some(to)) = (&args.bugs_from, &args.bugs_to) {
        policies.rc_bugs = Some(RcBugPolicy {
            source: RcBugs::read(from).map_err(failure)?,
            target: RcBugs::read(to).map_err(failure)?,
        });
    }
    Ok(policies)
}

#[allow(clippy::too_many_arguments)] // each flag of `archive excuses`, passed on as read
fn excuses(
    from: &Path,
    to: &Path,
    arch: &[String],
    hints: Option<&Path>,
    policy_args: &PolicyArgs,
    write_result: Option<&Path>,
    yaml: bool,
    global: &Global,
) -> Result<Exit, Failure> {
    let hints = match hints {
        Some(path) => Hints::load(path).map_err(failure)?,
        None => Hints::default(),
    };
    let policies = policies(policy_args)?;
    let mut progress = Progress::new(global);
    progress.phase(format!("reading {}", from.display()));
    let source = read_suite(from, arch)?;
    progress.phase(format!("reading {}", to.display()));
    let target = read_suite(to, arch)?;
    progress.phase("finding what may migrate without breaking the target");
    let result =
        ferry_archive::excuses_with(&source, &target, &hints, &policies).map_err(failure)?;
    if let Some(dir) = write_result {
        progress.phase(format!("writing the result to {}", dir.display()));
        ferry_archive::write_result(dir, &source, &target, &result).map_err(failure)?;
    }
    progress.end();
    let output = ExcusesOutput(&result);
    if yaml && !global.json {
        use std::io::Write;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let yaml = excuses_yaml(&result, &render::iso8601(now));
        let _ = std::io::stdout().write_all(yaml.as_bytes());
    } else {
        render::output(&output, global);
    }
    Ok(if output.blocked() == 0 {
        Exit::Ok
    } else {
        Exit::Failed
    })
}

/// Every candidate's verdict and reasons, and what the target looks like
/// after: people get a line per candidate with its reasons indented.
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct ExcusesOutput<'a>(pub &'a ferry_archive::Excuses);

impl ExcusesOutput<'_> {
    fn blocked(&self) -> usize {
        self.0.excuses.iter().filter(|e| !e.migrates).count()
    }
}

impl fmt::Display for ExcusesOutput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let result = self.0;
        for e in &result.excuses {
            writeln!(
                f,
                "{} {} -> {}: {}",
                e.source,
                e.old_version.as_deref().unwrap_or("(new)"),
                e.new_version,
                if e.migrates { "migrates" } else { "BLOCKED" }
            )?;
            for why in &e.reasons {
                writeln!(f, "  {}", why_text(why))?;
            }
        }
        for name in &result.dropped {
            writeln!(f, "{name}: old binary no longer needed, dropped")?;
        }
        let blocked = self.blocked();
        writeln!(
            f,
            "{} candidates: {} migrate, {blocked} blocked.",
            result.excuses.len(),
            result.excuses.len() - blocked
        )
    }
}

/// A YAML scalar, single-quoted as britney's files quote versions.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// britney's `excuses.yaml` layout: one item per candidate with its
/// versions, the verdict (the worst of its reasons', see [`rejection`])
/// and the excuses as lines of text.
fn excuses_yaml(result: &ferry_archive::Excuses, generated: &str) -> String {
    // britney's excuses.yaml starts with when it was made.
    let mut out = format!("generated-date: {}\nsources:\n", quoted(generated));
    for e in &result.excuses {
        out.push_str(&format!("- item-name: {}\n", quoted(&e.source)));
        out.push_str(&format!("  source: {}\n", quoted(&e.source)));
        out.push_str(&format!(
            "  old-version: {}\n",
            quoted(e.old_version.as_deref().unwrap_or("-"))
        ));
        out.push_str(&format!("  new-version: {}\n", quoted(&e.new_version)));
        out.push_str(&format!("  is-candidate: {}\n", e.migrates));
        let verdict = if e.migrates {
            "PASS"
        } else {
            // britney's worst verdict wins.
            e.reasons
                .iter()
                .filter_map(rejection)
                .max_by_key(|(rank, _)| *rank)
                .map_or("REJECTED_PERMANENTLY", |(_, name)| name)
        };
        out.push_str(&format!("  migration-policy-verdict: {verdict}\n"));
        if e.reasons.is_empty() {
            out.push_str("  excuses: []\n");
        } else {
            out.push_str("  excuses:\n");
            for why in &e.reasons {
                out.push_str(&format!("  - {}\n", quoted(&why_text(why))));
            }
        }
    }
    out
}

fn nbs(dir: &Path, arch: &[String], global: &Global) -> Result<Exit, Failure> {
    let mut progress = Progress::new(global);
    progress.phase(format!("reading {}", dir.display()));
    let suite = read_suite(dir, arch)?;
    progress.phase("finding binaries not built from source");
    if !suite.has_sources() {
        return Err(Failure::bad_input(format!(
            "{}: no Sources index under COMPONENT/source/; NBS needs the sources",
            dir.display()
        )));
    }
    let found = ferry_archive::not_built_from_source(&suite).map_err(failure)?;
    progress.end();
    render::output(
        &NbsOutput {
            suite: dir,
            nbs: &found,
        },
        global,
    );
    Ok(if found.is_empty() {
        Exit::Ok
    } else {
        Exit::Failed
    })
}

/// The binaries of a suite no source builds any more, each with what
/// still needs it and the sources to rebuild.
#[derive(Debug, Serialize)]
pub struct NbsOutput<'a> {
    pub suite: &'a Path,
    pub nbs: &'a [Nbs],
}

impl fmt::Display for NbsOutput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for n in self.nbs {
            let source = match &n.source_version {
                Some(v) => format!("src:{} {v} no longer builds it", n.source),
                None => format!("src:{} is not in the suite", n.source),
            };
            writeln!(
                f,
                "{} {} [{}]: {source}",
                n.binary.package, n.binary.version, n.binary.architecture
            )?;
            if n.needed_by.is_empty() {
                writeln!(f, "  nothing needs it: it can be removed")?;
            } else {
                let by: Vec<String> = n
                    .needed_by
                    .iter()
                    .map(|p| format!("{} {}", p.package, p.version))
                    .collect();
                writeln!(f, "  needed by: {}", by.join(", "))?;
                writeln!(f, "  no-change rebuild: src:{}", n.rebuild.join(", src:"))?;
            }
        }
        let held = self.nbs.iter().filter(|n| !n.needed_by.is_empty()).count();
        writeln!(
            f,
            "{} binaries not built from source; {held} still needed, {} removable.",
            self.nbs.len(),
            self.nbs.len() - held
        )
    }
}

fn coverage(
    from: &Path,
    to: &Path,
    map: Option<&Path>,
    arch: &[String],
    global: &Global,
) -> Result<Exit, Failure> {
    let map = match map {
        Some(path) => NameMap::load(path).map_err(failure)?,
        None => NameMap::default(),
    };
    let mut progress = Progress::new(global);
    progress.phase(format!("reading {}", from.display()));
    let old = read_suite(from, arch)?;
    progress.phase(format!("reading {}", to.display()));
    let new = read_suite(to, arch)?;
    progress.phase("checking each old binary against the new suite");
    let report = ferry_archive::coverage(&old, &new, &map).map_err(failure)?;
    progress.end();
    render::output(&CoverageOutput::new(&report), global);
    Ok(if report.gaps.is_empty() {
        Exit::Ok
    } else {
        Exit::Failed
    })
}

/// The old repository's binaries the new one does not cover, and why.
#[derive(Debug, Serialize)]
pub struct CoverageOutput<'a> {
    pub checked: usize,
    pub architectures: &'a [String],
    pub gaps: Vec<GapView<'a>>,
    #[serde(skip)]
    report: &'a Coverage,
}

/// One old binary without a good counterpart. The counterpart's version
/// has a name of its own: flattened beside the old binary's `version`, it
/// would make a second key of that name.
#[derive(Debug, Serialize)]
pub struct GapView<'a> {
    pub package: &'a str,
    pub version: &'a str,
    pub architecture: &'a str,
    /// The name looked for in the new repository.
    pub counterpart: &'a str,
    /// `missing`, `older` or `uninstallable`.
    pub problem: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counterpart_version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasons: Option<&'a [ferry_solve::Reason]>,
}

impl<'a> CoverageOutput<'a> {
    pub fn new(report: &'a Coverage) -> Self {
        let gaps = report
            .gaps
            .iter()
            .map(|gap| {
                let (problem, counterpart_version, reasons) = match &gap.kind {
                    GapKind::Missing => ("missing", None, None),
                    GapKind::Older { version } => ("older", Some(version.as_str()), None),
                    GapKind::Uninstallable { version, reasons } => (
                        "uninstallable",
                        Some(version.as_str()),
                        Some(reasons.as_slice()),
                    ),
                };
                GapView {
                    package: &gap.old.package,
                    version: &gap.old.version,
                    architecture: &gap.old.architecture,
                    counterpart: &gap.counterpart,
                    problem,
                    counterpart_version,
                    reasons,
                }
            })
            .collect();
        CoverageOutput {
            checked: report.checked,
            architectures: &report.architectures,
            gaps,
            report,
        }
    }
}

impl fmt::Display for CoverageOutput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let report = self.report;
        for gap in &report.gaps {
            let what = match &gap.kind {
                GapKind::Missing => format!("no `{}` in the new repository", gap.counterpart),
                GapKind::Older { version } => {
                    format!("`{}` is only at {version}", gap.counterpart)
                }
                GapKind::Uninstallable { version, reasons } => format!(
                    "`{} {version}` cannot be installed there ({} reason{})",
                    gap.counterpart,
                    reasons.len(),
                    if reasons.len() == 1 { "" } else { "s" }
                ),
            };
            writeln!(
                f,
                "{} {} [{}]: {what}",
                gap.old.package, gap.old.version, gap.old.architecture
            )?;
        }
        writeln!(
            f,
            "{} binaries checked on {}; {} gaps.",
            report.checked,
            report.architectures.join(", "),
            report.gaps.len()
        )
    }
}

/// The britney verdict a reason rejects with, ranked as britney orders
/// them (the worst wins); None for what only informs.
fn rejection(why: &Why) -> Option<(u8, &'static str)> {
    match why {
        Why::Breaks { .. } | Why::TooYoung { .. } => Some((3, "REJECTED_TEMPORARILY")),
        Why::Blocked => Some((6, "REJECTED_NEEDS_APPROVAL")),
        Why::MissingBuild { .. } | Why::NoBinaries | Why::NewRcBugs { .. } => {
            Some((8, "REJECTED_PERMANENTLY"))
        }
        Why::UninstallableInSource { .. }
        | Why::MigratedWith { .. }
        | Why::Forced
        | Why::ForcedWhateverItBreaks
        | Why::KeptOldBinaries { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    //! What people and scripts see of the archive questions, reviewed as
    //! snapshots; the answers are ferry-archive's, on two small suites.

    use super::*;

    fn suite(dir: &Path, name: &str, packages: &str, sources: &str) -> Suite {
        let dir = dir.join(name);
        std::fs::create_dir_all(dir.join("main/binary-amd64")).unwrap();
        std::fs::create_dir_all(dir.join("main/source")).unwrap();
        std::fs::write(dir.join("main/binary-amd64/Packages"), packages).unwrap();
        std::fs::write(dir.join("main/source/Sources"), sources).unwrap();
        Suite::read(&dir, &["amd64".to_string()]).unwrap()
    }

    /// unstable: `app` 2.0 needs the new `libx`, `lonely` needs a package
    /// no one has, `libold` is left over from an old `x` and `viewer`
    /// still needs it. testing: the old `app` and `x`, a `viewer` newer
    /// than unstable's, an old `lonely`, and `gone`, which unstable lacks.
    fn suites(dir: &Path) -> (Suite, Suite) {
        let unstable = suite(
            dir,
            "unstable",
            "Package: app\nVersion: 2.0\nArchitecture: amd64\nDepends: libx (>= 2)\n\n\
             Package: libx\nVersion: 2\nArchitecture: amd64\nSource: x\n\n\
             Package: libold\nVersion: 1\nArchitecture: amd64\nSource: x (1)\n\n\
             Package: viewer\nVersion: 8\nArchitecture: amd64\nDepends: libold\n\n\
             Package: lonely\nVersion: 1.0\nArchitecture: amd64\nDepends: nowhere\n",
            "Package: app\nVersion: 2.0\nBinary: app\nArchitecture: any\n\n\
             Package: x\nVersion: 2\nBinary: libx\nArchitecture: any\n\n\
             Package: viewer\nVersion: 8\nBinary: viewer\nArchitecture: any\n\n\
             Package: lonely\nVersion: 1.0\nBinary: lonely\nArchitecture: any\n",
        );
        let testing = suite(
            dir,
            "testing",
            "Package: app\nVersion: 1.0\nArchitecture: amd64\nDepends: libx\n\n\
             Package: libx\nVersion: 1\nArchitecture: amd64\nSource: x\n\n\
             Package: viewer\nVersion: 9\nArchitecture: amd64\n\n\
             Package: lonely\nVersion: 0.9\nArchitecture: amd64\n\n\
             Package: gone\nVersion: 3\nArchitecture: amd64\n",
            "Package: app\nVersion: 1.0\nBinary: app\nArchitecture: any\n\n\
             Package: x\nVersion: 1\nBinary: libx\nArchitecture: any\n\n\
             Package: viewer\nVersion: 9\nBinary: viewer\nArchitecture: any\n\n\
             Package: lonely\nVersion: 0.9\nBinary: lonely\nArchitecture: any\n\n\
             Package: gone\nVersion: 3\nBinary: gone\nArchitecture: any\n",
        );
        (unstable, testing)
    }

    fn excuses() -> ferry_archive::Excuses {
        let dir = tempfile::tempdir().unwrap();
        let (unstable, testing) = suites(dir.path());
        ferry_archive::excuses(&unstable, &testing, &Hints::default()).unwrap()
    }

    #[test]
    fn excuses_for_people() {
        let result = excuses();
        insta::assert_snapshot!(ExcusesOutput(&result).to_string());
    }

    #[test]
    fn excuses_as_json() {
        insta::assert_json_snapshot!(ExcusesOutput(&excuses()));
    }

    fn nbs_of_unstable() -> Vec<Nbs> {
        let dir = tempfile::tempdir().unwrap();
        let (unstable, _) = suites(dir.path());
        ferry_archive::not_built_from_source(&unstable).unwrap()
    }

    #[test]
    fn nbs_for_people() {
        let found = nbs_of_unstable();
        let output = NbsOutput {
            suite: Path::new("/srv/archive/unstable"),
            nbs: &found,
        };
        insta::assert_snapshot!(output.to_string());
    }

    #[test]
    fn nbs_as_json() {
        let found = nbs_of_unstable();
        insta::assert_json_snapshot!(NbsOutput {
            suite: Path::new("/srv/archive/unstable"),
            nbs: &found,
        });
    }

    /// testing's binaries as unstable covers them: `gone` is missing,
    /// `viewer` only older, and `lonely` cannot be installed there.
    fn coverage_of_testing() -> Coverage {
        let dir = tempfile::tempdir().unwrap();
        let (unstable, testing) = suites(dir.path());
        ferry_archive::coverage(&testing, &unstable, &NameMap::default()).unwrap()
    }

    #[test]
    fn coverage_for_people() {
        let report = coverage_of_testing();
        insta::assert_snapshot!(CoverageOutput::new(&report).to_string());
    }

    #[test]
    fn coverage_as_json() {
        insta::assert_json_snapshot!(CoverageOutput::new(&coverage_of_testing()));
    }

    #[test]
    fn a_gap_names_each_version_once() {
        let report = coverage_of_testing();
        let text = serde_json::to_string(&CoverageOutput::new(&report)).unwrap();
        let older = text.split("\"package\":\"viewer\"").nth(1).unwrap();
        let older = &older[..older.find('}').unwrap()];
        assert_eq!(older.matches("\"version\":").count(), 1, "{older}");
        assert!(older.contains("\"counterpart_version\":\"8\""), "{older}");
    }
}
