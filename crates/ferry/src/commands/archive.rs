//! `ferry archive excuses | nbs | coverage`: the archive questions of
//! ferry-archive, rendered for people or as JSON, with exit 1 when the
//! answer lists problems (blocked candidates, binaries not built from
//! source, coverage gaps).

use std::path::Path;

use ferry_archive::{ArchiveError, GapKind, Hints, NameMap, Suite, Why};

use crate::cli::{ArchiveCommand, Global};
use crate::exit::Exit;
use crate::render::{self, Failure};

pub fn run(command: ArchiveCommand, global: &Global) -> Result<Exit, Failure> {
    match command {
        ArchiveCommand::Excuses {
            from,
            to,
            arch,
            hints,
            yaml,
            write_result,
        } => excuses(
            &from,
            &to,
            &arch,
            hints.as_deref(),
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
            .expected("block SRC, unblock SRC/VERSION, force SRC/VERSION, remove SRC/VERSION or easy SRC/VERSION…"),
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
        Why::Forced => "forced by a hint".into(),
        Why::KeptOldBinaries { packages } => {
            format!("old binaries kept, still needed: {}", packages.join(", "))
        }
    }
}

fn excuses(
    from: &Path,
    to: &Path,
    arch: &[String],
    hints: Option<&Path>,
    write_result: Option<&Path>,
    yaml: bool,
    global: &Global,
) -> Result<Exit, Failure> {
    let hints = match hints {
        Some(path) => Hints::load(path).map_err(failure)?,
        None => Hints::default(),
    };
    let source = Suite::read(from, arch).map_err(failure)?;
    let target = Suite::read(to, arch).map_err(failure)?;
    let result = ferry_archive::excuses(&source, &target, &hints).map_err(failure)?;
    if let Some(dir) = write_result {
        ferry_archive::write_result(dir, &source, &target, &result).map_err(failure)?;
    }
    let blocked = result.excuses.iter().filter(|e| !e.migrates).count();
    if global.json {
        render::json(&result);
    } else if yaml {
        use std::io::Write;
        let _ = std::io::stdout().write_all(excuses_yaml(&result).as_bytes());
    } else {
        for e in &result.excuses {
            println!(
                "{} {} -> {}: {}",
                e.source,
                e.old_version.as_deref().unwrap_or("(new)"),
                e.new_version,
                if e.migrates { "migrates" } else { "BLOCKED" }
            );
            for why in &e.reasons {
                println!("  {}", why_text(why));
            }
        }
        for name in &result.dropped {
            println!("{name}: old binary no longer needed, dropped");
        }
        println!(
            "{} candidates: {} migrate, {blocked} blocked.",
            result.excuses.len(),
            result.excuses.len() - blocked
        );
    }
    Ok(if blocked == 0 { Exit::Ok } else { Exit::Failed })
}

/// A YAML scalar, single-quoted as britney's files quote versions.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// britney's `excuses.yaml` layout: one item per candidate with its
/// versions, the verdict and the excuses as lines of text.
fn excuses_yaml(result: &ferry_archive::Excuses) -> String {
    let mut out = String::from("sources:\n");
    for e in &result.excuses {
        out.push_str(&format!("- item-name: {}\n", quoted(&e.source)));
        out.push_str(&format!("  source: {}\n", quoted(&e.source)));
        out.push_str(&format!(
            "  old-version: {}\n",
            quoted(e.old_version.as_deref().unwrap_or("-"))
        ));
        out.push_str(&format!("  new-version: {}\n", quoted(&e.new_version)));
        out.push_str(&format!("  is-candidate: {}\n", e.migrates));
        let verdict = match (e.migrates, e.reasons.first()) {
            (true, _) => "PASS",
            (false, Some(Why::Blocked)) => "REJECTED_NEEDS_APPROVAL",
            (false, Some(Why::Breaks { .. })) => "REJECTED_TEMPORARILY",
            (false, _) => "REJECTED_PERMANENTLY",
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
    let suite = Suite::read(dir, arch).map_err(failure)?;
    if !suite.has_sources() {
        return Err(Failure::bad_input(format!(
            "{}: no Sources index under COMPONENT/source/; NBS needs the sources",
            dir.display()
        )));
    }
    let found = ferry_archive::not_built_from_source(&suite).map_err(failure)?;
    if global.json {
        render::json(&serde_json::json!({ "suite": dir, "nbs": found }));
    } else {
        for n in &found {
            let source = match &n.source_version {
                Some(v) => format!("src:{} {v} no longer builds it", n.source),
                None => format!("src:{} is not in the suite", n.source),
            };
            println!(
                "{} {} [{}]: {source}",
                n.binary.package, n.binary.version, n.binary.architecture
            );
            if n.needed_by.is_empty() {
                println!("  nothing needs it: it can be removed");
            } else {
                let by: Vec<String> = n
                    .needed_by
                    .iter()
                    .map(|p| format!("{} {}", p.package, p.version))
                    .collect();
                println!("  needed by: {}", by.join(", "));
                println!("  no-change rebuild: src:{}", n.rebuild.join(", src:"));
            }
        }
        let held = found.iter().filter(|n| !n.needed_by.is_empty()).count();
        println!(
            "{} binaries not built from source; {held} still needed, {} removable.",
            found.len(),
            found.len() - held
        );
    }
    Ok(if found.is_empty() {
        Exit::Ok
    } else {
        Exit::Failed
    })
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
    let old = Suite::read(from, arch).map_err(failure)?;
    let new = Suite::read(to, arch).map_err(failure)?;
    let report = ferry_archive::coverage(&old, &new, &map).map_err(failure)?;
    if global.json {
        render::json(&report);
    } else {
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
            println!(
                "{} {} [{}]: {what}",
                gap.old.package, gap.old.version, gap.old.architecture
            );
        }
        println!(
            "{} binaries checked on {}; {} gaps.",
            report.checked,
            report.architectures.join(", "),
            report.gaps.len()
        );
    }
    Ok(if report.gaps.is_empty() {
        Exit::Ok
    } else {
        Exit::Failed
    })
}
