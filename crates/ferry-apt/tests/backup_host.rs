//! A backup of the machine the tests run on (read-only for it): the saved
//! `.deb` is the installed version (dpkg-deb says so), the manifest checks,
//! the snapshot's marks agree with `apt-mark showmanual`, and a tampered
//! file is caught.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use ferry_apt::Snapshot;
use ferry_apt::SystemRoot;
use ferry_apt::{Backup, PackageToSave};

fn installed(name: &str) -> Option<PackageToSave> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Version} ${Architecture}", name])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (version, arch) = text.split_once(' ')?;
    out.status.success().then(|| PackageToSave {
        name: name.to_string(),
        arch: arch.to_string(),
        version: version.to_string(),
    })
}

#[test]
fn snapshot_marks_agree_with_apt_mark() {
    let Ok(out) = Command::new("apt-mark").arg("showmanual").output() else {
        ferry_testkit::skip!("apt-mark is not available");
    };
    let manual: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split(':').next().unwrap_or(l).to_string())
        .collect();
    let snapshot = Snapshot::capture(&SystemRoot::open(Path::new("/")).unwrap()).unwrap();
    let ours: BTreeSet<String> = snapshot
        .packages
        .iter()
        .filter(|(_, p)| p.manual)
        .map(|(k, _)| k.split(':').next().unwrap_or(k).to_string())
        .collect();
    assert_eq!(ours, manual);
}

#[test]
fn backup_of_this_machine_keeps_a_verified_deb() {
    if !nix_root() {
        ferry_testkit::skip!("needs root (apt-get download and the rebuild from installed files read root-only state)");
    }
    let Some(package) = installed("xz-utils") else {
        ferry_testkit::skip!("xz-utils is not installed");
    };
    let dir = tempfile::tempdir().unwrap();
    let backup_dir = dir.path().join("m1");
    let backup = Backup::create(
        &SystemRoot::open(Path::new("/")).unwrap(),
        &backup_dir,
        "m1",
        std::slice::from_ref(&package),
    )
    .unwrap();
    assert_eq!(backup.manifest.debs.len(), 1);
    let deb = backup_dir.join(&backup.manifest.debs[0].file);
    let shown = Command::new("dpkg-deb")
        .args(["--show", "--showformat=${Package} ${Version}"])
        .arg(&deb)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&shown.stdout),
        format!("{} {}", package.name, package.version)
    );
    eprintln!("kept from: {:?}", backup.manifest.debs[0].origin);
    let reopened = Backup::open(&backup_dir).unwrap();
    assert_eq!(reopened.snapshot, backup.snapshot);
    assert!(backup_dir.join("etc-apt/sources.list.d").is_dir());

    std::fs::write(&deb, b"tampered").unwrap();
    assert!(Backup::open(&backup_dir).is_err());
}

fn nix_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
