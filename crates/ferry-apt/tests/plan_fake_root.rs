//! `plan` on a system root made of files (sources, dpkg status, os-release)
//! with real repositories of real `.deb`s and the real apt: the sources
//! diff, apt's transaction, the blockers, and not one byte of the root
//! changed. End-to-end runs on real chroots live in the CLI's tests.

mod common;

use std::path::Path;

use common::{build_deb, hash_tree, have, index_flat_repo, sign_flat_repo, STATUS};
use ferry_apt::Profile;
use ferry_apt::{compute_plan_in, FindingKey, Severity, SystemRoot};

/// dpkg's own entry: its architecture is the system's native one, here
/// this host's (apt in the sandbox then installs for it).
fn dpkg_entry() -> String {
    let arch = ferry_testkit::host_architecture().unwrap();
    format!(
        "Package: dpkg\nStatus: install ok installed\nVersion: 1.21.22\nArchitecture: {arch}\nMaintainer: Test <test@example.org>\nDescription: Debian package management system\n"
    )
}

/// The common status plus a package the new core may conflict with, and dpkg.
fn status() -> String {
    format!(
        "{STATUS}\nPackage: acme-extra\nStatus: install ok installed\nVersion: 1.0\nArchitecture: all\nMaintainer: Test <test@example.org>\nDescription: something the new core conflicts with\n\n{}",
        dpkg_entry()
    )
}

struct Fixture {
    _work: tempfile::TempDir,
    _signer: ferry_testkit::Signer,
    root: std::path::PathBuf,
    old: std::path::PathBuf,
    new: std::path::PathBuf,
    sandbox: std::path::PathBuf,
}

/// `core_conflicts` are packages acme-core conflicts with besides acme-daemon.
fn fixture(core_conflicts: &str) -> Fixture {
    fixture_with(core_conflicts, true)
}

/// `new_has_extra`: whether the new repository still offers acme-extra.
fn fixture_with(core_conflicts: &str, new_has_extra: bool) -> Fixture {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    let old = work.path().join("old-org");
    let new = work.path().join("new-org");
    for dir in [&old, &new] {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::create_dir_all(root.join("var/lib/dpkg")).unwrap();
    std::fs::create_dir_all(root.join("etc/apt/sources.list.d")).unwrap();
    std::fs::write(root.join("var/lib/dpkg/status"), status()).unwrap();
    // dpkg --audit expects a file list and md5sums for every installed package.
    std::fs::create_dir_all(root.join("var/lib/dpkg/info")).unwrap();
    for name in [
        "acme-daemon",
        "acme-legacy",
        "acme-sdk",
        "acme-extra",
        "dpkg",
    ] {
        for file in ["list", "md5sums"] {
            std::fs::write(root.join(format!("var/lib/dpkg/info/{name}.{file}")), "").unwrap();
        }
    }
    std::fs::write(
        root.join("etc/os-release"),
        "ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n",
    )
    .unwrap();
    // One organisation key signs both repositories; the entry trusts it.
    let signer = ferry_testkit::Signer::new("acme").unwrap();
    std::fs::create_dir_all(root.join("etc/apt/keyrings")).unwrap();
    std::fs::copy(
        signer.keyring_path(),
        root.join("etc/apt/keyrings/acme.gpg"),
    )
    .unwrap();
    std::fs::write(
        root.join("etc/apt/sources.list.d/acme.list"),
        format!(
            "# ACME packages\ndeb [signed-by=/etc/apt/keyrings/acme.gpg] file:{} ./\n",
            old.display()
        ),
    )
    .unwrap();
    for (name, version) in [
        ("acme-daemon", "1.0"),
        ("acme-legacy", "1.0"),
        ("acme-sdk", "1.0"),
        ("acme-extra", "1.0"),
    ] {
        build_deb(&old, name, version, "");
    }
    index_flat_repo(&old);
    sign_flat_repo(&old, &signer);
    build_deb(&new, "acme-sdk", "1.1", "");
    build_deb(
        &new,
        "acme-core",
        "2.0",
        &format!("Conflicts: acme-daemon{core_conflicts}\nReplaces: acme-daemon\n"),
    );
    if new_has_extra {
        build_deb(&new, "acme-extra", "1.0", "");
    }
    index_flat_repo(&new);
    sign_flat_repo(&new, &signer);
    // What apt downloaded for the current sources, as apt names it.
    std::fs::create_dir_all(root.join("var/lib/apt/lists")).unwrap();
    std::fs::copy(
        old.join("Packages"),
        root.join("var/lib/apt/lists/old-org_._Packages"),
    )
    .unwrap();
    let sandbox = work.path().join("sandbox");
    Fixture {
        root,
        old,
        new,
        sandbox,
        _work: work,
        _signer: signer,
    }
}

fn profile(f: &Fixture) -> Profile {
    let text = format!(
        r#"
schema = 1
name = "acme-org-move"

[[sources]]
match = {{ uri = "file:{old}" }}
set = {{ uri = "file:{new}" }}

[packages]
replace = [{{ from = "acme-daemon", to = "acme-core" }}]
remove = ["acme-legacy"]
upgrade = "full"

[checks]
os_ids = ["debian"]
os_version = ">= 12"
"#,
        old = f.old.display(),
        new = f.new.display()
    );
    Profile::parse(&text, Path::new("move.toml")).unwrap()
}

fn apt_tools() -> bool {
    let ok = have("apt-get")
        && have("dpkg-deb")
        && have("dpkg-scanpackages")
        && have("apt-ftparchive")
        && have("gpg");
    if !ok {
        ferry_testkit::note_skip!("needs apt-get, dpkg-deb, dpkg-scanpackages (dpkg-dev), apt-ftparchive (apt-utils) and gpg");
    }
    ok
}

#[test]
fn plan_shows_the_sources_diff_and_apts_transaction_and_changes_nothing() {
    if !apt_tools() {
        return;
    }
    let f = fixture("");
    let before = hash_tree(&f.root);
    let plan = compute_plan_in(
        &SystemRoot::open(&f.root).unwrap(),
        &profile(&f),
        &f.sandbox,
    )
    .unwrap();
    assert_eq!(hash_tree(&f.root), before, "plan must not touch the root");

    assert_eq!(plan.sources.len(), 1);
    let change = &plan.sources[0];
    assert_eq!(change.path, "/etc/apt/sources.list.d/acme.list");
    assert!(change.diff.contains(&format!(
        "-deb [signed-by=/etc/apt/keyrings/acme.gpg] file:{} ./",
        f.old.display()
    )));
    assert!(change.diff.contains(&format!(
        "+deb [signed-by=/etc/apt/keyrings/acme.gpg] file:{} ./",
        f.new.display()
    )));
    assert!(
        change.new_text.starts_with("# ACME packages\n"),
        "comments stay"
    );

    let names = |c: &[ferry_apt::Change]| c.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&plan.transaction.install), ["acme-core"]);
    assert_eq!(names(&plan.transaction.upgrade), ["acme-sdk"]);
    let mut removed = names(&plan.transaction.remove);
    removed.sort();
    assert_eq!(removed, ["acme-daemon", "acme-legacy"]);
    assert!(plan.download_bytes > 0);
    assert!(!plan.blocked(), "{:#?}", plan.findings);
}

#[test]
fn an_unexpected_removal_blocks_the_plan_with_a_stable_key() {
    if !apt_tools() {
        return;
    }
    let f = fixture(", acme-extra");
    let plan = compute_plan_in(
        &SystemRoot::open(&f.root).unwrap(),
        &profile(&f),
        &f.sandbox,
    )
    .unwrap();
    assert!(plan.blocked());
    let blocker = plan
        .findings
        .iter()
        .find(|b| b.key == FindingKey::UnexpectedRemoval("acme-extra".into()))
        .unwrap_or_else(|| panic!("{:#?}", plan.findings));
    assert_eq!(blocker.severity, Severity::Blocker);
    assert!(blocker.remediation.contains("acme-extra"));
}

#[test]
fn os_checks_block_a_profile_for_another_system() {
    if !apt_tools() {
        return;
    }
    let f = fixture("");
    std::fs::write(
        f.root.join("etc/os-release"),
        "ID=ubuntu\nVERSION_ID=\"24.04\"\n",
    )
    .unwrap();
    let plan = compute_plan_in(
        &SystemRoot::open(&f.root).unwrap(),
        &profile(&f),
        &f.sandbox,
    )
    .unwrap();
    let keys: Vec<&FindingKey> = plan
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Blocker)
        .map(|f| &f.key)
        .collect();
    assert!(keys.contains(&&FindingKey::OsId), "{keys:?}");
}

#[test]
fn a_package_the_new_repository_lacks_blocks_the_plan() {
    if !apt_tools() {
        return;
    }
    let f = fixture_with("", false);
    let plan = compute_plan_in(
        &SystemRoot::open(&f.root).unwrap(),
        &profile(&f),
        &f.sandbox,
    )
    .unwrap();
    let keys: Vec<&FindingKey> = plan
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Blocker)
        .map(|f| &f.key)
        .collect();
    assert_eq!(
        keys,
        [&FindingKey::NoVersionInTarget("acme-extra".into())],
        "{:#?}",
        plan.findings
    );
}

#[test]
fn an_installed_package_that_needs_what_goes_is_a_blocker_with_its_reason() {
    if !apt_tools() {
        return;
    }
    let f = fixture("");
    let status = std::fs::read_to_string(f.root.join("var/lib/dpkg/status")).unwrap()
        + "\nPackage: acme-plugin\nStatus: install ok installed\nVersion: 1.0\nArchitecture: all\nMaintainer: Test <test@example.org>\nDepends: acme-daemon (= 1.0)\nDescription: a plugin of the old daemon\n";
    std::fs::write(f.root.join("var/lib/dpkg/status"), status).unwrap();
    for file in ["list", "md5sums"] {
        std::fs::write(
            f.root.join(format!("var/lib/dpkg/info/acme-plugin.{file}")),
            "",
        )
        .unwrap();
    }
    let plan = compute_plan_in(
        &SystemRoot::open(&f.root).unwrap(),
        &profile(&f),
        &f.sandbox,
    )
    .unwrap();
    let finding = plan
        .findings
        .iter()
        .find(|b| b.key == FindingKey::UninstallableInTarget("acme-plugin".into()))
        .unwrap_or_else(|| panic!("{:#?}", plan.findings));
    assert_eq!(finding.severity, Severity::Blocker);
    assert!(
        finding.finding.contains("acme-daemon (= 1.0)"),
        "{}",
        finding.finding
    );
}

#[test]
fn a_root_whose_architecture_cannot_be_known_is_blocked_not_assumed_amd64() {
    if !apt_tools() {
        return;
    }
    let f = fixture("");
    // The same root without dpkg's own entry: nothing in it says which
    // architecture it is (the host's dpkg would answer for the host).
    let status = std::fs::read_to_string(f.root.join("var/lib/dpkg/status")).unwrap();
    let without_dpkg = status.replace(&dpkg_entry(), "");
    assert_ne!(status, without_dpkg);
    std::fs::write(f.root.join("var/lib/dpkg/status"), without_dpkg).unwrap();
    let before = hash_tree(&f.root);
    let plan = compute_plan_in(
        &SystemRoot::open(&f.root).unwrap(),
        &profile(&f),
        &f.sandbox,
    )
    .unwrap();
    assert_eq!(hash_tree(&f.root), before, "plan must not touch the root");
    assert!(plan.blocked());
    let blocker = plan
        .findings
        .iter()
        .find(|b| b.key == FindingKey::NativeArchitecture)
        .unwrap_or_else(|| panic!("{:#?}", plan.findings));
    assert_eq!(blocker.severity, Severity::Blocker);
    assert_eq!(blocker.key.to_string(), "native-architecture");
    assert!(
        blocker.finding.contains("no installed `dpkg` package"),
        "{}",
        blocker.finding
    );
    assert!(
        blocker.remediation.contains("dpkg"),
        "{}",
        blocker.remediation
    );
}
