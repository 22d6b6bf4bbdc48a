//! `ferry check`: installability of every package of some Packages files
//! (and a dpkg status), as dose-distcheck answers it, for people, as JSON
//! or in dose's own YAML report layout.

use std::path::{Path, PathBuf};

use ferry_deb::package::{parse_binary_packages_with, RelationFields};
use ferry_deb::BinaryPackage;
use ferry_solve::{Reason, Report, Universe};

use crate::cli::{CheckArgs, CheckFormat, Global};
use crate::exit::Exit;
use crate::render::{self, Failure};

fn read_index(path: &Path) -> Result<String, Failure> {
    ferry_deb::index::read_to_string(path).map_err(|e| {
        Failure::bad_input(format!("cannot read {}: {}", path.display(), e.source))
            .at(path, None, None)
    })
}

fn parse<'t>(path: &Path, text: &'t str) -> Result<Vec<BinaryPackage<'t>>, Failure> {
    parse_binary_packages_with(text, RelationFields::Installability).map_err(|e| {
        Failure::bad_input(e.to_string())
            .at(path, Some(e.line()), None)
            .expected("a Packages or dpkg status file (deb822 stanzas)")
    })
}

fn native_arch(root: &Path) -> String {
    let mut command = std::process::Command::new("dpkg");
    if root != Path::new("/") {
        command.arg(format!("--root={}", root.display()));
    }
    command
        .arg("--print-architecture")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| {
            std::env::consts::ARCH
                .replace("x86_64", "amd64")
                .replace("aarch64", "arm64")
        })
}

pub fn run(args: CheckArgs, global: &Global) -> Result<Exit, Failure> {
    let arch = args
        .arch
        .clone()
        .unwrap_or_else(|| native_arch(&global.root));
    let status_path: Option<PathBuf> = args.status.clone().or_else(|| {
        args.installed
            .then(|| global.root.join("var/lib/dpkg/status"))
    });
    if args.files.is_empty() && status_path.is_none() {
        return Err(
            Failure::bad_input("nothing to check").hint("give Packages files, or --status FILE")
        );
    }
    let texts: Vec<(PathBuf, String)> = args
        .files
        .iter()
        .map(|p| read_index(p).map(|t| (p.clone(), t)))
        .collect::<Result<_, _>>()?;
    let status_text = match &status_path {
        Some(p) => Some((p.clone(), read_index(p)?)),
        None => None,
    };

    let mut packages: Vec<BinaryPackage> = Vec::new();
    for (path, text) in &texts {
        packages.extend(parse(path, text)?);
    }
    let installed = match &status_text {
        Some((path, text)) => {
            ferry_solve::add_installed(&mut packages, parse(path, text)?, |_| false)
        }
        None => Vec::new(),
    };
    let universe = Universe::new(&packages, &arch, &args.foreign_arch);

    let reports = if args.installed {
        ferry_solve::check_installed(&universe, &installed, args.explain)
    } else {
        ferry_solve::check(&universe, None, args.explain)
    };
    let total = reports.len();
    let broken = reports.iter().filter(|r| r.status == "broken").count();
    let shown: Vec<&Report> = reports
        .iter()
        .filter(|r| !args.failures || r.status == "broken")
        .collect();
    if global.json {
        render::json(&serde_json::json!({ "total": total, "broken": broken, "report": shown }));
    } else if args.format == Some(CheckFormat::DoseYaml) {
        print!("{}", dose_yaml(&arch, &shown, total, broken));
    } else {
        print!("{}", human(&reports, total, broken, args.installed));
    }
    Ok(if broken == 0 { Exit::Ok } else { Exit::Failed })
}

fn reason_line(reason: &Reason) -> String {
    let chain = |steps: &[ferry_solve::ChainStep]| {
        steps
            .iter()
            .map(|s| {
                format!(
                    "{} {} needs {}",
                    s.package.package, s.package.version, s.depends
                )
            })
            .collect::<Vec<_>>()
            .join(" -> ")
    };
    match reason {
        Reason::Missing {
            chain: steps,
            unsat_dependency,
        } => {
            format!("missing `{unsat_dependency}` ({})", chain(steps))
        }
        Reason::Conflict {
            pkg1,
            pkg2,
            chain1,
            chain2,
        } => format!(
            "{} {} conflicts with {} {} (via: {}; and: {})",
            pkg1.package,
            pkg1.version,
            pkg2.package,
            pkg2.version,
            if chain1.is_empty() {
                "itself".into()
            } else {
                chain(chain1)
            },
            if chain2.is_empty() {
                "itself".into()
            } else {
                chain(chain2)
            }
        ),
    }
}

fn human(reports: &[Report], total: usize, broken: usize, installed: bool) -> String {
    let mut out = String::new();
    for r in reports.iter().filter(|r| r.status == "broken") {
        out.push_str(&format!(
            "broken: {} {} [{}]\n",
            r.package.package, r.package.version, r.package.architecture
        ));
        for reason in &r.reasons {
            out.push_str(&format!("  {}\n", reason_line(reason)));
        }
    }
    let what = if installed {
        "installed packages have no installable version"
    } else {
        "packages are not installable"
    };
    out.push_str(&format!("{broken} of {total} {what}\n"));
    out
}

fn yaml_package(out: &mut String, indent: &str, p: &ferry_solve::PackageRef) {
    out.push_str(&format!("{indent}package: {}\n", p.package));
    out.push_str(&format!("{indent}version: {}\n", p.version));
    out.push_str(&format!("{indent}architecture: {}\n", p.architecture));
}

fn yaml_chain(out: &mut String, indent: &str, steps: &[ferry_solve::ChainStep]) {
    out.push_str(&format!("{indent}-\n{indent} depchain:\n"));
    for step in steps {
        out.push_str(&format!("{indent}  -\n"));
        yaml_package(out, &format!("{indent}   "), &step.package);
        out.push_str(&format!("{indent}   depends: {}\n", step.depends));
    }
}

/// dose-distcheck's report layout (output-version 1.2).
fn dose_yaml(arch: &str, reports: &[&Report], total: usize, broken: usize) -> String {
    let mut out = format!("output-version: 1.2\nnative-architecture: {arch}\n");
    if !reports.is_empty() {
        out.push_str("report:\n");
    }
    for r in reports {
        out.push_str(" -\n");
        yaml_package(&mut out, "  ", &r.package);
        out.push_str(&format!("  status: {}\n", r.status));
        if !r.reasons.is_empty() {
            out.push_str("  reasons:\n");
        }
        for reason in &r.reasons {
            out.push_str("   -\n");
            match reason {
                Reason::Missing {
                    chain,
                    unsat_dependency,
                } => {
                    out.push_str("    missing:\n     pkg:\n");
                    let last = chain
                        .last()
                        .map(|s| s.package.clone())
                        .unwrap_or_else(|| r.package.clone());
                    yaml_package(&mut out, "      ", &last);
                    out.push_str(&format!("      unsat-dependency: {unsat_dependency}\n"));
                    if chain.len() > 1 {
                        out.push_str("     depchains:\n");
                        yaml_chain(&mut out, "      ", &chain[..chain.len() - 1]);
                    }
                }
                Reason::Conflict {
                    pkg1,
                    pkg2,
                    chain1,
                    chain2,
                } => {
                    out.push_str("    conflict:\n     pkg1:\n");
                    yaml_package(&mut out, "      ", pkg1);
                    out.push_str(&format!("      unsat-conflict: {}\n", pkg2.package));
                    out.push_str("     pkg2:\n");
                    yaml_package(&mut out, "      ", pkg2);
                    for (label, chain) in [("depchain1", chain1), ("depchain2", chain2)] {
                        if !chain.is_empty() {
                            out.push_str(&format!("     {label}:\n"));
                            yaml_chain(&mut out, "      ", chain);
                        }
                    }
                }
            }
        }
        out.push_str("  \n");
    }
    out.push_str(&format!(
        "total-packages: {total}\nbroken-packages: {broken}\n"
    ));
    out
}
