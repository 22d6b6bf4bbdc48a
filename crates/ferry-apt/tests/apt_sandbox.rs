//! The apt sandbox against the real apt: a repository of real `.deb`s built
//! with dpkg-deb, a system whose dpkg status says what is installed, and
//! `apt-get -s` run with the sandbox's private state. The transaction must
//! be apt's own, and the host's `/etc/apt` and lists must not change.

mod common;

use std::path::Path;

use common::{build_deb, hash_tree, have, index_flat_repo, STATUS};
use ferry_apt::AptSandbox;
use ferry_apt::FindingKey;
use ferry_apt::SystemRoot;

#[test]
fn simulation_uses_the_target_sources_and_leaves_the_host_alone() {
    if !have("apt-get") || !have("dpkg-deb") || !have("dpkg-scanpackages") {
        ferry_testkit::skip!("needs apt-get, dpkg-deb and dpkg-scanpackages (dpkg-dev)");
    }
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    std::fs::create_dir_all(root.join("var/lib/dpkg")).unwrap();
    std::fs::create_dir_all(root.join("etc/apt")).unwrap();
    std::fs::write(root.join("var/lib/dpkg/status"), STATUS).unwrap();
    let system = SystemRoot::open(&root).unwrap();

    let repo = work.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    build_deb(&repo, "acme-sdk", "1.1", "");
    build_deb(
        &repo,
        "acme-core",
        "2.0",
        "Conflicts: acme-daemon\nReplaces: acme-daemon\nProvides: acme-daemon\n",
    );
    index_flat_repo(&repo);

    let host_before = (
        hash_tree(Path::new("/etc/apt")),
        hash_tree(Path::new("/var/lib/apt/lists")),
    );
    let sandbox = AptSandbox::create(
        &work.path().join("sandbox"),
        &system,
        &[(
            "target.list".to_string(),
            format!("deb [trusted=yes] file:{} ./\n", repo.display()),
        )],
        &[],
    )
    .unwrap();
    sandbox.update().unwrap();
    let t = sandbox
        .simulate(
            &["acme-core".into()],
            &["acme-legacy".into()],
            ferry_apt::Upgrade::Full,
        )
        .unwrap();

    let names = |changes: &[ferry_apt::Change]| -> Vec<String> {
        let mut v: Vec<String> = changes.iter().map(|c| c.name.clone()).collect();
        v.sort();
        v
    };
    assert_eq!(names(&t.install), ["acme-core"]);
    assert_eq!(names(&t.upgrade), ["acme-sdk"]);
    assert_eq!(t.upgrade[0].old_version.as_deref(), Some("1.0"));
    assert_eq!(t.upgrade[0].new_version.as_deref(), Some("1.1"));
    assert_eq!(names(&t.remove), ["acme-daemon", "acme-legacy"]);

    // What else apt upgrades is the profile's choice: nothing by default,
    // `apt-get upgrade` for safe.
    let none = sandbox
        .simulate(
            &["acme-core".into()],
            &["acme-legacy".into()],
            ferry_apt::Upgrade::None,
        )
        .unwrap();
    assert_eq!(names(&none.install), ["acme-core"]);
    assert!(none.upgrade.is_empty(), "{:?}", none.upgrade);
    let safe = sandbox
        .simulate(
            &["acme-core".into()],
            &["acme-legacy".into()],
            ferry_apt::Upgrade::Safe,
        )
        .unwrap();
    assert_eq!(names(&safe.upgrade), ["acme-sdk"]);
    assert_eq!(names(&safe.install), ["acme-core"]);

    let host_after = (
        hash_tree(Path::new("/etc/apt")),
        hash_tree(Path::new("/var/lib/apt/lists")),
    );
    assert!(
        host_before == host_after,
        "the host's /etc/apt or apt lists changed"
    );
}

#[test]
fn an_unreachable_source_is_an_error_not_an_empty_plan() {
    if !have("apt-get") {
        ferry_testkit::skip!("needs apt-get");
    }
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    std::fs::create_dir_all(root.join("var/lib/dpkg")).unwrap();
    std::fs::create_dir_all(root.join("etc/apt")).unwrap();
    std::fs::write(root.join("var/lib/dpkg/status"), STATUS).unwrap();
    let system = SystemRoot::open(&root).unwrap();
    let sandbox = AptSandbox::create(
        &work.path().join("sandbox"),
        &system,
        &[(
            "target.list".to_string(),
            format!(
                "deb [trusted=yes] file:{}/missing ./\n",
                work.path().display()
            ),
        )],
        &[],
    )
    .unwrap();
    // apt may exit 0 here: what counts is that the source is named as
    // unanswered, whatever apt's exit code was.
    let lines = sandbox.update().unwrap().lines;
    let target = ferry_apt::TargetSource {
        uri: format!("file:{}/missing", work.path().display()),
        suite: "./".into(),
        keyrings: Vec::new(),
        inline_key: false,
    };
    let findings = ferry_apt::unanswered_targets(
        std::slice::from_ref(&target),
        &sandbox.lists_dir(),
        &lines,
        &sandbox,
    );
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(
        matches!(
            &findings[0].key,
            FindingKey::TargetUnreachable(url) if url.starts_with("file:")
        ),
        "{:?}",
        findings[0]
    );
}
