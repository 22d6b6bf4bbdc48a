//! What the tests of ferry-solve share: running ferry-solve and the peer,
//! dose-distcheck, on the same Packages text, and the broken sets they give.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use ferry_deb::package::parse_binary_packages;
use ferry_solve::{check_with_budget, Report, Universe};

pub fn dose_available() -> bool {
    Command::new("dose-distcheck")
        .arg("--version")
        .output()
        .is_ok()
}

pub fn ours(text: &str, foreign: &[&str], explain: bool) -> Vec<Report> {
    ours_with_budget(text, foreign, explain, ferry_solve::DEFAULT_BUDGET)
}

/// With a backtracking budget of 0, every package the search cannot
/// decide without backtracking goes to the CDCL solver.
pub fn ours_with_budget(text: &str, foreign: &[&str], explain: bool, budget: u64) -> Vec<Report> {
    let packages = parse_binary_packages(text).unwrap();
    let foreign: Vec<String> = foreign.iter().map(|s| s.to_string()).collect();
    let universe = Universe::new(&packages, "amd64", &foreign);
    check_with_budget(&universe, None, explain, budget)
}

/// `name version arch` of each broken package.
pub fn broken_set(reports: &[Report]) -> BTreeSet<String> {
    reports
        .iter()
        .filter(|r| r.status.is_broken())
        .map(|r| {
            format!(
                "{} {} {}",
                r.package.package, r.package.version, r.package.architecture
            )
        })
        .collect()
}

/// dose-distcheck's broken set for a Packages file, or `None` when dose
/// refuses the input (exit code 64 and up).
pub fn dose(path: &Path, foreign: &[&str]) -> Option<BTreeSet<String>> {
    let mut command = Command::new("dose-distcheck");
    command.args(["--deb-native-arch=amd64", "-f"]);
    if !foreign.is_empty() {
        command.arg(format!("--deb-foreign-archs={}", foreign.join(",")));
    }
    let output = command
        .arg(format!("deb://{}", path.display()))
        .output()
        .unwrap();
    if output.status.code().is_none_or(|c| c >= 64) {
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut set = BTreeSet::new();
    let (mut package, mut version, mut arch) = (String::new(), String::new(), String::new());
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("  package: ") {
            package = v.to_string();
        } else if let Some(v) = line.strip_prefix("  version: ") {
            version = v.to_string();
        } else if let Some(v) = line.strip_prefix("  architecture: ") {
            arch = v.to_string();
        } else if line == "  status: broken" {
            set.insert(format!("{package} {version} {arch}"));
        }
    }
    Some(set)
}

/// Where the real Debian indices are: `FERRY_DEBIAN_DATA`, or the
/// project's shared data folder.
pub fn data_dir() -> PathBuf {
    std::env::var_os("FERRY_DEBIAN_DATA").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/debian"),
        PathBuf::from,
    )
}

pub fn stanza(name: &str, version: &str, arch: &str, fields: &str) -> String {
    format!("Package: {name}\nVersion: {version}\nArchitecture: {arch}\n{fields}\n")
}
