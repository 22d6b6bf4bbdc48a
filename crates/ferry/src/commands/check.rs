//! `ferry check`: installability of every package of some Packages files
//! (and a dpkg status), as dose-distcheck answers it, for people, as JSON
//! or in dose's own YAML report layout. With `--installed`, the question a
//! migration asks instead: which installed packages would have no
//! installable version once the system uses only these Packages files.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use ferry_deb::package::{parse_binary_packages_with, RelationFields};
use ferry_deb::BinaryPackage;
use ferry_solve::{Reason, Report, Universe};
use serde::Serialize;

use crate::cli::{CheckArgs, CheckFormat, Global};
use crate::exit::Exit;
use crate::progress::Progress;
use crate::render::Failure;

/// An index's text; a file that is not UTF-8 throughout is read as apt
/// reads it, as bytes, with a warning on stderr naming the file and line.
fn read_index(path: &Path) -> Result<String, Failure> {
    let index = ferry_deb::index::read_text(path).map_err(|e| {
        Failure::bad_input(format!("cannot read {}: {}", path.display(), e.source))
            .at(path, None, None)
    })?;
    if let Some(warning) = index.warning(path) {
        eprintln!("warning: {warning}");
    }
    Ok(index.text)
}

fn parse<'t>(path: &Path, text: &'t str) -> Result<Vec<BinaryPackage<'t>>, Failure> {
    parse_binary_packages_with(text, RelationFields::Installability).map_err(|e| {
        Failure::bad_input(e.to_string())
            .at(path, Some(e.line()), None)
            .expected("a Packages or dpkg status file (deb822 stanzas)")
    })
}

/// The architecture packages are checked for when `--arch` is not given:
/// the checked system's own (its dpkg's) with `--installed`, else this
/// machine's. `dpkg --root` would still print the host's, so the root's is
/// read from its status.
fn native_arch(root: &Path, installed: bool) -> String {
    if installed {
        if let Some(arch) = ferry_apt::SystemRoot::open(root)
            .ok()
            .and_then(|system| system.native_architecture().ok())
        {
            return arch;
        }
    }
    std::process::Command::new("dpkg")
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
        .unwrap_or_else(|| native_arch(&global.root, args.installed && args.status.is_none()));
    let status_path: Option<PathBuf> = args.status.clone().or_else(|| {
        args.installed
            .then(|| global.root.join("var/lib/dpkg/status"))
    });
    if args.files.is_empty() && status_path.is_none() {
        return Err(
            Failure::bad_input("nothing to check").hint("give Packages files, or --status FILE")
        );
    }
    // Without repositories every installed package would be "broken": the
    // question needs the Packages files to answer it against.
    if args.installed && args.files.is_empty() {
        return Err(Failure::bad_input(
            "--installed checks installed packages against Packages files, and none was given",
        )
        .hint("give the Packages files of the repositories the system would use"));
    }
    let mut progress = Progress::new(global);
    let inputs = args.files.len() + usize::from(status_path.is_some());
    progress.phase(format!(
        "reading {inputs} index file{}",
        if inputs == 1 { "" } else { "s" }
    ));
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
    // Checking the installed packages, their installed copies must not
    // count: a package the files do not offer could not be reinstalled,
    // nor satisfy another one's dependency. Checking everything, the
    // status's packages join the files' ones.
    let installed = match &status_text {
        Some((path, text)) if args.installed => {
            ferry_solve::installed_packages(&parse(path, text)?, |_| false)
        }
        Some((path, text)) => {
            ferry_solve::add_installed(&mut packages, parse(path, text)?, |_| false)
        }
        None => Vec::new(),
    };
    // The system's foreign architectures are those its installed packages
    // have (as dpkg has them): without them those packages would vanish.
    let mut foreign = args.foreign_arch.clone();
    for (_, _, a) in &installed {
        if a != "all" && *a != arch && !foreign.contains(a) {
            foreign.push(a.clone());
        }
    }
    let universe = Universe::new(&packages, &arch, &foreign);
    let checked = if args.installed {
        installed.len()
    } else {
        packages.len()
    };
    progress.phase(format!(
        "checking the installability of {checked} package{}",
        if checked == 1 { "" } else { "s" }
    ));

    // People always get a short reason per broken package; the machine
    // forms carry reasons only when asked.
    let for_people = !global.json && args.format.is_none();
    let explain = args.explain || for_people;
    let reports = if args.installed {
        ferry_solve::check_installed(&universe, &installed, explain)
    } else {
        ferry_solve::check(&universe, None, explain)
    };
    progress.end();
    let output = CheckOutput::new(&reports, args.failures, args.installed, args.explain);
    let (total, broken) = (output.total, output.broken);
    let text = if global.json {
        match serde_json::to_string_pretty(&output) {
            Ok(text) => text + "\n",
            Err(e) => return Err(Failure::failed(format!("cannot render JSON: {e}"))),
        }
    } else if args.format == Some(CheckFormat::DoseYaml) {
        let dose = Dose {
            native: &arch,
            foreign: &foreign,
            provided: packages
                .iter()
                .flat_map(|p| p.provides.atoms().map(|a| a.name))
                .collect(),
        };
        dose_yaml(&dose, &output.report, total, broken)
    } else {
        output.to_string()
    };
    emit(&text)?;
    Ok(if broken == 0 { Exit::Ok } else { Exit::Failed })
}

/// Writes the report to stdout; a reader that stops early (`| head`) is
/// not an error, any other write failure is.
fn emit(text: &str) -> Result<(), Failure> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Failure::failed(format!("cannot write the report: {e}")))
        }
        _ => Ok(()),
    }
}

/// The verdicts: how many packages were checked and how many are broken,
/// and the reports shown (every one, or only the broken ones with
/// `--failures`). People read the broken ones, each with its reasons
/// (`--explain`) or the first one, and the count.
#[derive(Debug, Serialize)]
pub struct CheckOutput<'a> {
    pub total: usize,
    pub broken: usize,
    pub report: Vec<&'a Report>,
    /// The question was `--installed`'s: installed packages, not all.
    #[serde(skip)]
    pub installed: bool,
    #[serde(skip)]
    pub explain: bool,
}

impl<'a> CheckOutput<'a> {
    fn new(reports: &'a [Report], failures_only: bool, installed: bool, explain: bool) -> Self {
        CheckOutput {
            total: reports.len(),
            broken: reports.iter().filter(|r| r.status.is_broken()).count(),
            report: reports
                .iter()
                .filter(|r| !failures_only || r.status.is_broken())
                .collect(),
            installed,
            explain,
        }
    }
}

impl fmt::Display for CheckOutput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in self.report.iter().filter(|r| r.status.is_broken()) {
            let head = format!(
                "broken: {} {} [{}]",
                r.package.package, r.package.version, r.package.architecture
            );
            if self.explain {
                writeln!(f, "{head}")?;
                for reason in &r.reasons {
                    writeln!(f, "  {reason}")?;
                }
            } else {
                match r.reasons.first() {
                    Some(reason) => writeln!(f, "{head}: {reason:#}")?,
                    None => writeln!(f, "{head}")?,
                }
            }
        }
        let what = if self.installed {
            "installed packages have no installable version"
        } else {
            "packages are not installable"
        };
        writeln!(f, "{} of {} {what}", self.broken, self.total)?;
        if self.broken > 0 && !self.explain {
            writeln!(
                f,
                "(--explain shows every reason with the chain of dependencies behind it)"
            )?;
        }
        Ok(())
    }
}

/// What dose-distcheck's report layout needs to know of the archive.
struct Dose<'a> {
    native: &'a str,
    foreign: &'a [String],
    /// Names some package provides: dose prints an atom on such a name
    /// twice (`a:amd64 | a:amd64`), once for the real package and once
    /// for the virtual one.
    provided: HashSet<&'a str>,
}

impl Dose<'_> {
    /// A relation the way dose-distcheck prints it: each name with the
    /// architecture it was resolved on (none for `:any`), and CUDF's
    /// `<`/`>`; an alternative written twice once, where it was last
    /// (dose prints the list through ExtLib's `List.unique`).
    fn relation(&self, text: &str, arch: &str) -> String {
        self.atoms(text, arch, true)
    }

    /// A conflict as dose prints it: like a relation, each name once.
    fn conflict(&self, text: &str, arch: &str) -> String {
        self.atoms(text, arch, false)
    }

    fn atoms(&self, text: &str, arch: &str, twice_if_provided: bool) -> String {
        let Ok(relations) = ferry_deb::Relations::parse(text) else {
            return text.to_string();
        };
        let own = if arch == "all" || arch.is_empty() {
            self.native
        } else {
            arch
        };
        let mut atoms = Vec::new();
        for a in relations.atoms() {
            let mut out = a.name.to_string();
            match a.arch_qualifier {
                Some("any") => {}
                Some("native") => out.push_str(&format!(":{}", self.native)),
                Some(q) => out.push_str(&format!(":{q}")),
                None => out.push_str(&format!(":{own}")),
            }
            if let Some(c) = &a.constraint {
                let op = match c.op {
                    ferry_deb::RelOp::Lt => "<",
                    ferry_deb::RelOp::Gt => ">",
                    op => op.as_str(),
                };
                out.push_str(&format!(" ({op} {})", c.version));
            }
            // dose's real and virtual atoms print alike but are two.
            if twice_if_provided && self.provided.contains(a.name) {
                atoms.push((out.clone(), true));
            }
            atoms.push((out, false));
        }
        let unique: Vec<&str> = atoms
            .iter()
            .enumerate()
            .filter(|&(i, atom)| !atoms[i + 1..].contains(atom))
            .map(|(_, (text, _))| text.as_str())
            .collect();
        unique.join(" | ")
    }
}

fn yaml_package(out: &mut String, indent: &str, p: &ferry_solve::PackageRef) {
    out.push_str(&format!("{indent}package: {}\n", p.package));
    out.push_str(&format!("{indent}version: {}\n", p.version));
    out.push_str(&format!("{indent}architecture: {}\n", p.architecture));
}

/// One depchain; dose starts it at the package checked, so the essential
/// pseudo-package's step is left out.
fn yaml_chain(out: &mut String, indent: &str, steps: &[ferry_solve::ChainStep], dose: &Dose) {
    out.push_str(&format!("{indent}-\n{indent} depchain:\n"));
    for step in steps
        .iter()
        .filter(|s| s.package.package != ferry_solve::ESSENTIAL)
    {
        out.push_str(&format!("{indent}  -\n"));
        yaml_package(out, &format!("{indent}   "), &step.package);
        out.push_str(&format!(
            "{indent}   depends: {}\n",
            dose.relation(&step.depends, &step.package.architecture)
        ));
    }
}

fn yaml_reason(out: &mut String, r: &Report, reason: &Reason, dose: &Dose) {
    out.push_str("   -\n");
    match reason {
        Reason::Missing {
            chain,
            unsat_dependency,
        } => {
            out.push_str("    missing:\n     pkg:\n");
            let last = chain.last().map(|s| &s.package).unwrap_or(&r.package);
            yaml_package(out, "      ", last);
            out.push_str(&format!(
                "      unsat-dependency: {}\n",
                dose.relation(unsat_dependency, &last.architecture)
            ));
            let before = &chain[..chain.len().saturating_sub(1)];
            if before
                .iter()
                .any(|s| s.package.package != ferry_solve::ESSENTIAL)
            {
                out.push_str("     depchains:\n");
                yaml_chain(out, "      ", before, dose);
            }
        }
        Reason::Conflict {
            pkg1,
            pkg2,
            chain1,
            chain2,
            unsat_conflict,
        } => {
            out.push_str("    conflict:\n     pkg1:\n");
            yaml_package(out, "      ", pkg1);
            out.push_str(&format!(
                "      unsat-conflict: {}\n",
                dose.conflict(unsat_conflict, &pkg1.architecture)
            ));
            out.push_str("     pkg2:\n");
            yaml_package(out, "      ", pkg2);
            for (label, chain) in [("depchain1", chain1), ("depchain2", chain2)] {
                if chain
                    .iter()
                    .any(|s| s.package.package != ferry_solve::ESSENTIAL)
                {
                    out.push_str(&format!("     {label}:\n"));
                    yaml_chain(out, "      ", chain, dose);
                }
            }
        }
    }
}

/// dose-distcheck's report layout (output-version 1.2), byte for byte
/// where the content is the same, in dose's order (by name, then
/// version and architecture).
fn dose_yaml(dose: &Dose, reports: &[&Report], total: usize, broken: usize) -> String {
    let mut out = format!(
        "output-version: 1.2\nnative-architecture: {}\n",
        dose.native
    );
    if !dose.foreign.is_empty() {
        out.push_str(&format!(
            "foreign-architecture: {}\n",
            dose.foreign.join(",")
        ));
    }
    out.push_str("report:\n");
    let mut sorted: Vec<&&Report> = reports.iter().collect();
    sorted.sort_by(|a, b| {
        let version = |r: &Report| ferry_deb::Version::parse(&r.package.version).ok();
        (&a.package.package, version(a), &a.package.architecture).cmp(&(
            &b.package.package,
            version(b),
            &b.package.architecture,
        ))
    });
    for r in sorted {
        out.push_str(" -\n");
        yaml_package(&mut out, "  ", &r.package);
        out.push_str(&format!("  status: {}\n", r.status));
        if !r.reasons.is_empty() {
            out.push_str("  reasons:\n");
        }
        for reason in &r.reasons {
            yaml_reason(&mut out, r, reason, dose);
        }
    }
    out.push_str(&format!(
        " \ntotal-packages: {total}\nbroken-packages: {broken}\n"
    ));
    out
}

#[cfg(test)]
mod tests {
    //! What people and scripts see of a check, reviewed as snapshots; the
    //! verdicts are the solver's, on a small fixed archive.

    use super::*;

    const PACKAGES: &str = "\
Package: app
Version: 1.0-1
Architecture: amd64
Depends: libgone (>= 2)

Package: tool
Version: 2.0
Architecture: all
Depends: app

Package: fine
Version: 3
Architecture: amd64
";

    fn reports(explain: bool) -> Vec<Report> {
        let packages = parse(Path::new("Packages"), PACKAGES).unwrap();
        let universe = Universe::new(&packages, "amd64", &[]);
        ferry_solve::check(&universe, None, explain)
    }

    #[test]
    fn verdicts_serialize_as_dose_writes_them() {
        let reports = reports(false);
        let json = serde_json::to_value(CheckOutput::new(&reports, false, false, false)).unwrap();
        let statuses: Vec<&str> = json["report"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["status"].as_str().unwrap())
            .collect();
        assert_eq!(statuses, ["broken", "broken", "ok"]);
    }

    #[test]
    fn check_for_people() {
        let reports = reports(true);
        insta::assert_snapshot!(CheckOutput::new(&reports, false, false, false).to_string());
    }

    #[test]
    fn check_for_people_explained() {
        let reports = reports(true);
        insta::assert_snapshot!(CheckOutput::new(&reports, false, false, true).to_string());
    }

    #[test]
    fn check_as_json() {
        let reports = reports(true);
        insta::assert_json_snapshot!(CheckOutput::new(&reports, false, false, true));
    }

    #[test]
    fn failures_only_as_json() {
        let reports = reports(false);
        insta::assert_json_snapshot!(CheckOutput::new(&reports, true, false, false));
    }
}
