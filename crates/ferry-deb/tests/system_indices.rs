//! ferry-deb on the indices of the machine it runs on, against the tools
//! that own them: dpkg's status file against `dpkg-query`, APT's own (lz4)
//! lists and the real Debian Packages files against apt's parser
//! (python3-apt's `apt_pkg`), relation by relation.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use ferry_deb::package::parse_binary_packages;

fn data_dir() -> PathBuf {
    std::env::var_os("FERRY_DEBIAN_DATA").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/debian"),
        PathBuf::from,
    )
}

#[test]
fn dpkg_status_agrees_with_dpkg_query() {
    let status = Path::new("/var/lib/dpkg/status");
    let Ok(query) = Command::new("dpkg-query")
        .args([
            "-W",
            "-f=${db:Status-Status} ${Package} ${Version} ${Architecture}\n",
        ])
        .output()
    else {
        ferry_testkit::skip!("dpkg-query is not available");
    };
    if !status.exists() {
        ferry_testkit::skip!("no dpkg status file on this machine");
    }
    let expected: BTreeSet<String> = String::from_utf8_lossy(&query.stdout)
        .lines()
        .filter(|l| !l.starts_with("not-installed"))
        .map(|l| l.split_once(' ').map_or(l, |(_, rest)| rest).to_string())
        .collect();
    let text = ferry_deb::index::read_to_string(status).unwrap();
    let ours: BTreeSet<String> = parse_binary_packages(&text)
        .unwrap()
        .iter()
        .filter(|p| p.state != ferry_deb::package::InstallState::NotInstalled)
        .map(|p| format!("{} {} {}", p.name, p.version, p.architecture))
        .collect();
    assert!(!ours.is_empty());
    assert_eq!(ours, expected);
}

/// The Packages lists APT downloaded, whatever their compression.
fn apt_lists() -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir("/var/lib/apt/lists") else {
        return Vec::new();
    };
    let mut lists: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            name.contains("_Packages")
        })
        .collect();
    lists.sort();
    lists
}

/// Every relation field of every stanza, as apt's own parser reads it:
/// lines of `name\tfield\tname op version | …, …`.
fn apt_pkg_relations(path: &Path) -> Option<BTreeSet<String>> {
    let script = r#"
import sys, apt_pkg
apt_pkg.init_system()
# apt_pkg spells << and >> as < and >.
OPS = {"<": "<<", ">": ">>"}
FIELDS = ("Depends", "Pre-Depends", "Recommends", "Suggests", "Conflicts", "Breaks", "Replaces", "Provides", "Enhances")
with open(sys.argv[1]) as f:
    for s in apt_pkg.TagFile(f):
        for k in FIELDS:
            if k in s:
                groups = apt_pkg.parse_depends(s[k], False)
                text = ", ".join(" | ".join(f"{n} {OPS.get(o, o)} {v}".rstrip() for n, v, o in g) for g in groups)
                print(f"{s['Package']}\t{k}\t{text}")
"#;
    let out = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .arg(path)
        .output()
        .ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    })
}

fn our_relations(text: &str) -> BTreeSet<String> {
    let mut lines = BTreeSet::new();
    for p in parse_binary_packages(text).unwrap() {
        let fields = [
            ("Depends", &p.depends),
            ("Pre-Depends", &p.pre_depends),
            ("Recommends", &p.recommends),
            ("Suggests", &p.suggests),
            ("Conflicts", &p.conflicts),
            ("Breaks", &p.breaks),
            ("Replaces", &p.replaces),
            ("Provides", &p.provides),
            ("Enhances", &p.enhances),
        ];
        for (field, relations) in fields {
            if relations.is_empty() {
                continue;
            }
            let text = relations
                .groups
                .iter()
                .map(|g| {
                    g.iter()
                        .map(|a| {
                            let name = match a.arch_qualifier {
                                Some(q) => format!("{}:{q}", a.name),
                                None => a.name.to_string(),
                            };
                            match &a.constraint {
                                Some(c) => format!("{name} {} {}", c.op.as_str(), c.version),
                                None => name,
                            }
                        })
                        .collect::<Vec<_>>()
                        .join(" | ")
                })
                .collect::<Vec<_>>()
                .join(", ");
            lines.insert(format!("{}\t{field}\t{text}", p.name));
        }
    }
    lines
}

fn compare_with_apt_pkg(path: &Path) {
    let text = ferry_deb::index::read_to_string(path).unwrap();
    // apt_pkg reads plain files only; hand it the decompressed text.
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("Packages");
    std::fs::write(&plain, &text).unwrap();
    let Some(apt) = apt_pkg_relations(&plain) else {
        ferry_testkit::skip!("python3-apt is not available");
    };
    let ours = our_relations(&text);
    let only_ours: Vec<_> = ours.difference(&apt).take(5).collect();
    let only_apt: Vec<_> = apt.difference(&ours).take(5).collect();
    eprintln!(
        "{}: {} relation fields compared with apt_pkg",
        path.display(),
        apt.len()
    );
    assert!(
        only_ours.is_empty() && only_apt.is_empty(),
        "{}: ferry only: {only_ours:#?}\napt only: {only_apt:#?}",
        path.display()
    );
}

#[test]
fn apt_lists_read_like_apt_reads_them() {
    let lists = apt_lists();
    if lists.is_empty() {
        ferry_testkit::skip!("no Packages lists in /var/lib/apt/lists (run apt-get update)");
    }
    for list in lists {
        compare_with_apt_pkg(&list);
    }
}

#[test]
fn real_debian_archives_read_like_apt_reads_them() {
    let dir = data_dir();
    let files: Vec<PathBuf> = ["bookworm", "sid"]
        .iter()
        .map(|s| dir.join(format!("{s}-main-amd64-Packages.xz")))
        .filter(|p| p.exists())
        .collect();
    if files.is_empty() {
        ferry_testkit::skip!(
            "no Packages files in {} (set FERRY_DEBIAN_DATA)",
            dir.display()
        );
    }
    for file in files {
        compare_with_apt_pkg(&file);
    }
}
