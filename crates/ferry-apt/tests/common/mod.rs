//! Small fixtures shared by this crate's tests: real `.deb`s built with
//! dpkg-deb, flat repositories indexed with dpkg-scanpackages, tree hashes.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};

pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

pub fn build_deb(dir: &Path, name: &str, version: &str, extra: &str) {
    let tree = dir.join(format!("build-{name}"));
    std::fs::create_dir_all(tree.join("DEBIAN")).unwrap();
    std::fs::write(
        tree.join("DEBIAN/control"),
        format!(
            "Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: Test <test@example.org>\nDescription: test package {name}\n{extra}"
        ),
    )
    .unwrap();
    let status = Command::new("dpkg-deb")
        .args(["--root-owner-group", "-Zgzip", "--build"])
        .arg(&tree)
        .arg(dir.join(format!("{name}_{version}_all.deb")))
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    std::fs::remove_dir_all(tree).unwrap();
}

pub fn hash_tree(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                out.insert(
                    path.display().to_string(),
                    format!("{:x}", Sha256::digest(bytes)),
                );
            }
        }
    }
    out
}

/// Indexes the `.deb`s of `repo` as a flat repository (`deb [trusted=yes] file:REPO ./`).
pub fn index_flat_repo(repo: &Path) {
    let scan = Command::new("dpkg-scanpackages")
        .args(["-m", "."])
        .current_dir(repo)
        .output()
        .unwrap();
    assert!(scan.status.success());
    std::fs::write(repo.join("Packages"), &scan.stdout).unwrap();
}

/// Gives a flat repository a `Release` (apt-ftparchive) clear-signed by
/// `signer` as `InRelease`: a target source must answer with a verified
/// Release, or the plan is blocked.
#[allow(dead_code)]
pub fn sign_flat_repo(repo: &Path, signer: &ferry_testkit::Signer) {
    let release = Command::new("apt-ftparchive")
        .args(["release", "."])
        .current_dir(repo)
        .output()
        .unwrap();
    assert!(release.status.success());
    std::fs::write(repo.join("Release"), &release.stdout).unwrap();
    signer
        .clearsign(&repo.join("Release"), &repo.join("InRelease"))
        .unwrap();
}

/// A dpkg status with the old organisation's three packages installed.
pub const STATUS: &str = "\
Package: acme-daemon
Status: install ok installed
Version: 1.0
Architecture: all
Maintainer: Test <test@example.org>
Description: old daemon

Package: acme-legacy
Status: install ok installed
Version: 1.0
Architecture: all
Maintainer: Test <test@example.org>
Description: deprecated

Package: acme-sdk
Status: install ok installed
Version: 1.0
Architecture: all
Maintainer: Test <test@example.org>
Description: sdk
";
