//! `excuses` on hand-made suites: the seed's jpegtools/imageviewer story,
//! a library transition that only migrates with its rebuilt reverse
//! dependency, a Conflicts that breaks an unrelated package, an arch:all
//! package, a missing build, a candidate broken in the source suite, and a
//! hint of each kind.

use std::path::Path;

use ferry_archive::{excuses, Excuses, Hints, Suite, Why};

/// A binary stanza: `name version arch [extra fields]`.
fn bin(name: &str, version: &str, arch: &str, extra: &str) -> String {
    format!("Package: {name}\nVersion: {version}\nArchitecture: {arch}\n{extra}\n")
}

fn src(name: &str, version: &str, binaries: &str) -> String {
    format!("Package: {name}\nVersion: {version}\nBinary: {binaries}\n\n")
}

/// Writes a suite with `main/binary-ARCH/Packages` per architecture.
fn suite(dir: &Path, per_arch: &[(&str, Vec<String>)], sources: &[String]) -> Suite {
    for (arch, stanzas) in per_arch {
        let binary = dir.join(format!("main/binary-{arch}"));
        std::fs::create_dir_all(&binary).unwrap();
        std::fs::write(binary.join("Packages"), stanzas.concat()).unwrap();
    }
    std::fs::create_dir_all(dir.join("main/source")).unwrap();
    std::fs::write(dir.join("main/source/Sources"), sources.concat()).unwrap();
    Suite::read(dir, &[]).unwrap()
}

fn run(
    from: &[String],
    from_src: &[String],
    to: &[String],
    to_src: &[String],
    hints: &str,
) -> Excuses {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let from = suite(a.path(), &[("amd64", from.to_vec())], from_src);
    let to = suite(b.path(), &[("amd64", to.to_vec())], to_src);
    let hints = Hints::parse(hints, Path::new("hints")).unwrap();
    excuses(&from, &to, &hints).unwrap()
}

fn verdict<'a>(e: &'a Excuses, source: &str) -> &'a ferry_archive::Excuse {
    e.excuses
        .iter()
        .find(|x| x.source == source)
        .unwrap_or_else(|| panic!("no excuse for {source}: {e:#?}"))
}

fn release_with_libjpeg1() -> (Vec<String>, Vec<String>) {
    (
        vec![
            bin("libjpeg1", "1.0", "amd64", "Source: jpegtools\n"),
            bin(
                "libjpeg-dev",
                "1.0",
                "amd64",
                "Source: jpegtools\nDepends: libjpeg1\n",
            ),
            bin("imageviewer", "8.4", "amd64", "Depends: libjpeg1\n"),
        ],
        vec![
            src("jpegtools", "1.0", "libjpeg1, libjpeg-dev"),
            src("imageviewer", "8.4", "imageviewer"),
        ],
    )
}

#[test]
fn the_seed_story_jpegtools_migrates_keeping_libjpeg1_until_imageviewer_follows() {
    let (release, release_src) = release_with_libjpeg1();
    // Step 1: jpegtools 2.0 in proposed, imageviewer not rebuilt yet.
    let proposed = vec![
        bin("libjpeg2", "2.0", "amd64", "Source: jpegtools\n"),
        bin(
            "libjpeg-dev",
            "2.0",
            "amd64",
            "Source: jpegtools\nDepends: libjpeg2\n",
        ),
        bin("libjpeg1", "1.0", "amd64", "Source: jpegtools (1.0)\n"),
        bin("imageviewer", "8.4", "amd64", "Depends: libjpeg1\n"),
    ];
    let proposed_src = vec![
        src("jpegtools", "2.0", "libjpeg2, libjpeg-dev"),
        src("imageviewer", "8.4", "imageviewer"),
    ];
    let e = run(&proposed, &proposed_src, &release, &release_src, "");
    let jpeg = verdict(&e, "jpegtools");
    assert!(jpeg.migrates, "{e:#?}");
    assert_eq!(
        jpeg.reasons,
        [Why::KeptOldBinaries {
            packages: vec!["libjpeg1".into()]
        }],
        "removing libjpeg1 is refused while imageviewer needs it"
    );
    assert!(e.dropped.is_empty(), "libjpeg1 stays: {e:#?}");
    assert_eq!(e.broken_after, e.broken_before);

    // Step 2: the no-change rebuild 8.4ubuntu1 is in proposed too: both
    // migrate and libjpeg1 goes.
    let mut proposed = proposed;
    proposed[3] = bin("imageviewer", "8.4ubuntu1", "amd64", "Depends: libjpeg2\n");
    let proposed_src = vec![
        src("jpegtools", "2.0", "libjpeg2, libjpeg-dev"),
        src("imageviewer", "8.4ubuntu1", "imageviewer"),
    ];
    let e = run(&proposed, &proposed_src, &release, &release_src, "");
    assert!(
        verdict(&e, "jpegtools").migrates && verdict(&e, "imageviewer").migrates,
        "{e:#?}"
    );
    assert_eq!(e.dropped, ["libjpeg1"]);
}

#[test]
fn a_transition_with_breaks_migrates_only_with_its_rebuilt_reverse_dependency() {
    // libx 2 replaces libx 1 under the same name; app 1 only works with
    // libx 1 and app 2 only with libx 2: neither can go alone.
    let to = vec![
        bin("libx", "1", "amd64", ""),
        bin("app", "1", "amd64", "Depends: libx (<< 2)\n"),
    ];
    let to_src = vec![src("libx", "1", "libx"), src("app", "1", "app")];
    let from = vec![
        bin("libx", "2", "amd64", "Breaks: app (<< 2)\n"),
        bin("app", "2", "amd64", "Depends: libx (>= 2)\n"),
    ];
    let from_src = vec![src("libx", "2", "libx"), src("app", "2", "app")];
    let e = run(&from, &from_src, &to, &to_src, "");
    for source in ["libx", "app"] {
        let x = verdict(&e, source);
        assert!(x.migrates, "{e:#?}");
        assert!(
            matches!(&x.reasons[0], Why::MigratedWith { sources } if sources.len() == 1),
            "{x:#?}"
        );
    }
    assert_eq!(e.broken_after["amd64"], 0);
}

#[test]
fn a_conflict_that_breaks_an_unrelated_package_blocks_with_the_reason() {
    let to = vec![
        bin("foo", "1", "amd64", ""),
        bin("bar", "1", "amd64", "Depends: foo\n"),
        bin("baz", "1", "amd64", "Depends: bar\n"),
    ];
    let to_src = vec![
        src("foo", "1", "foo"),
        src("bar", "1", "bar"),
        src("baz", "1", "baz"),
    ];
    let from = vec![
        bin("foo", "2", "amd64", "Conflicts: baz\n"),
        bin("bar", "1", "amd64", "Depends: foo\n"),
        bin("baz", "1", "amd64", "Depends: bar\n"),
    ];
    let from_src = vec![
        src("foo", "2", "foo"),
        src("bar", "1", "bar"),
        src("baz", "1", "baz"),
    ];
    // foo 2 is itself fine in the source suite? No: baz is broken there,
    // but baz is not foo's; foo's own binaries install.
    let e = run(&from, &from_src, &to, &to_src, "");
    let foo = verdict(&e, "foo");
    assert!(!foo.migrates);
    match &foo.reasons[..] {
        [Why::Breaks {
            broken,
            before: 0,
            after: 1,
            ..
        }] => {
            assert_eq!(broken[0].package.package, "baz");
            assert!(!broken[0].reasons.is_empty());
        }
        other => panic!("{other:#?}"),
    }
    // force-hint lets it in whatever it breaks.
    let forced = run(&from, &from_src, &to, &to_src, "force-hint foo/2\n");
    assert!(verdict(&forced, "foo").migrates);
    assert_eq!(
        verdict(&forced, "foo").reasons,
        [Why::ForcedWhateverItBreaks]
    );
    assert_eq!(forced.broken_after["amd64"], 1);
    // force overrides policies, not installability: still blocked, and
    // the excuse says both.
    let forced = run(&from, &from_src, &to, &to_src, "force foo/2\n");
    let foo = verdict(&forced, "foo");
    assert!(!foo.migrates);
    assert!(
        matches!(&foo.reasons[..], [Why::Forced, Why::Breaks { .. }]),
        "{:#?}",
        foo.reasons
    );
    assert_eq!(forced.broken_after["amd64"], 0);
}

#[test]
fn arch_all_packages_migrate_and_missing_builds_block() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let from = suite(
        a.path(),
        &[
            (
                "amd64",
                vec![bin("docs", "2", "all", ""), bin("tool", "2", "amd64", "")],
            ),
            ("arm64", vec![bin("docs", "2", "all", "")]),
        ],
        &[src("docs", "2", "docs"), src("tool", "2", "tool")],
    );
    let to = suite(
        b.path(),
        &[
            (
                "amd64",
                vec![bin("docs", "1", "all", ""), bin("tool", "1", "amd64", "")],
            ),
            (
                "arm64",
                vec![bin("docs", "1", "all", ""), bin("tool", "1", "arm64", "")],
            ),
        ],
        &[src("docs", "1", "docs"), src("tool", "1", "tool")],
    );
    let e = excuses(&from, &to, &Hints::default()).unwrap();
    assert!(verdict(&e, "docs").migrates, "{e:#?}");
    let tool = verdict(&e, "tool");
    assert!(!tool.migrates);
    assert_eq!(
        tool.reasons,
        [Why::MissingBuild {
            architecture: "arm64".into()
        }]
    );
}

#[test]
fn a_candidate_broken_in_the_source_suite_and_each_hint() {
    let to = vec![
        bin("a", "1", "amd64", ""),
        bin("b", "1", "amd64", ""),
        bin("old", "1", "amd64", ""),
    ];
    let to_src = vec![
        src("a", "1", "a"),
        src("b", "1", "b"),
        src("old", "1", "old"),
    ];
    let from = vec![
        bin("a", "2", "amd64", "Depends: nowhere\n"),
        bin("b", "2", "amd64", ""),
    ];
    let from_src = vec![src("a", "2", "a"), src("b", "2", "b")];
    let e = run(&from, &from_src, &to, &to_src, "");
    // Uninstallable in the source suite is no reason by itself: a 2 would
    // break itself in the target (0 -> 1), and that is why it waits.
    assert!(
        matches!(
            &verdict(&e, "a").reasons[..],
            [
                Why::Breaks {
                    before: 0,
                    after: 1,
                    ..
                },
                Why::UninstallableInSource { .. }
            ]
        ),
        "{:#?}",
        verdict(&e, "a").reasons
    );
    assert!(verdict(&e, "b").migrates);

    let blocked = run(&from, &from_src, &to, &to_src, "block b\n");
    assert_eq!(verdict(&blocked, "b").reasons, [Why::Blocked]);
    let unblocked = run(&from, &from_src, &to, &to_src, "block b\nunblock b/2\n");
    assert!(verdict(&unblocked, "b").migrates);
    let removed = run(&from, &from_src, &to, &to_src, "remove old/1\n");
    assert_eq!(removed.removed, ["old"]);
    let easy = run(&from, &from_src, &to, &to_src, "easy b/2 a/2\n");
    assert!(
        !verdict(&easy, "a").migrates,
        "easy does not lift plain reasons"
    );
}

#[test]
fn a_source_with_no_binary_of_its_new_version_waits_for_its_builds() {
    // foo 2 is in the source suite's Sources, but its binaries there are
    // still foo 1's: nothing of version 2 was built yet.
    let from = vec![bin("foo", "1", "amd64", "")];
    let from_src = vec![src("foo", "2", "foo")];
    let to = vec![bin("foo", "1", "amd64", "")];
    let to_src = vec![src("foo", "1", "foo")];
    let e = run(&from, &from_src, &to, &to_src, "");
    let foo = verdict(&e, "foo");
    assert!(!foo.migrates);
    assert_eq!(foo.reasons, [Why::NoBinaries]);
    assert!(e.result_sources.contains(&("foo".into(), "1".into())));
}

#[test]
fn extra_source_only_stanzas_are_no_candidates() {
    let from = vec![bin("foo", "1", "amd64", "")];
    let from_src = vec![
        src("foo", "1", "foo"),
        "Package: bar\nVersion: 3\nBinary: bar\nExtra-Source-Only: yes\n\n".to_string(),
    ];
    let to = vec![bin("foo", "1", "amd64", "")];
    let to_src = vec![src("foo", "1", "foo")];
    let e = run(&from, &from_src, &to, &to_src, "");
    assert!(
        e.excuses.iter().all(|x| x.source != "bar"),
        "{:#?}",
        e.excuses
    );
}

#[test]
fn force_overrides_a_block_and_a_missing_build_but_not_breakage() {
    let from = vec![bin("foo", "2", "amd64", "")];
    let from_src = vec![src("foo", "2", "foo")];
    let to = vec![bin("foo", "1", "amd64", "")];
    let to_src = vec![src("foo", "1", "foo")];
    let blocked = run(&from, &from_src, &to, &to_src, "block foo\n");
    assert_eq!(verdict(&blocked, "foo").reasons, [Why::Blocked]);
    let forced = run(&from, &from_src, &to, &to_src, "block foo\nforce foo/2\n");
    let foo = verdict(&forced, "foo");
    assert!(foo.migrates, "{foo:#?}");
    assert_eq!(foo.reasons, [Why::Forced]);
}

#[test]
fn uninstallable_in_the_source_suite_migrates_when_the_target_gets_no_worse() {
    // a 1 is already broken in the target; a 2 is broken in the source
    // suite as well. Replacing one broken package by another makes the
    // target no worse: britney lets it in, and so does ferry.
    let to = vec![bin("a", "1", "amd64", "Depends: gone\n")];
    let to_src = vec![src("a", "1", "a")];
    let from = vec![bin("a", "2", "amd64", "Depends: nowhere\n")];
    let from_src = vec![src("a", "2", "a")];
    let e = run(&from, &from_src, &to, &to_src, "");
    let a = verdict(&e, "a");
    assert!(a.migrates, "{a:#?}");
    assert_eq!(e.broken_before["amd64"], 1);
    assert_eq!(e.broken_after["amd64"], 1);
}

/// foo and qux in both suites, baz new; bar's binary libbar1.
fn policy_suites() -> (Vec<String>, Vec<String>, Vec<String>, Vec<String>) {
    (
        vec![
            bin("foo", "2", "amd64", ""),
            bin("libbar1", "2", "amd64", "Source: bar\n"),
            bin("qux", "2", "amd64", ""),
            bin("baz", "1", "amd64", ""),
        ],
        vec![
            src("foo", "2", "foo"),
            src("bar", "2", "libbar1"),
            src("qux", "2", "qux"),
            src("baz", "1", "baz"),
        ],
        vec![
            bin("foo", "1", "amd64", ""),
            bin("libbar1", "1", "amd64", "Source: bar\n"),
            bin("qux", "1", "amd64", ""),
        ],
        vec![
            src("foo", "1", "foo"),
            src("bar", "1", "libbar1"),
            src("qux", "1", "qux"),
        ],
    )
}

fn run_with(policies: &ferry_archive::Policies, hints: &str) -> Excuses {
    let (from, from_src, to, to_src) = policy_suites();
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let from = suite(a.path(), &[("amd64", from)], &from_src);
    let to = suite(b.path(), &[("amd64", to)], &to_src);
    let hints = Hints::parse(hints, Path::new("hints")).unwrap();
    ferry_archive::excuses_with(&from, &to, &hints, policies).unwrap()
}

#[test]
fn the_age_policy_counts_days_by_urgency_and_its_hints_change_that() {
    let dir = tempfile::tempdir().unwrap();
    let dates = dir.path().join("Dates");
    let urgency = dir.path().join("Urgency");
    std::fs::write(&dates, "foo 2 100\nbar 2 100\nqux 2 109\nbaz 1 107\n").unwrap();
    std::fs::write(&urgency, "foo 2 low\nbaz 1 emergency\n").unwrap();
    let mut age = ferry_archive::Age {
        now: 110,
        ..Default::default()
    };
    age.read_dates(&dates).unwrap();
    age.read_urgencies(&urgency).unwrap();
    let policies = ferry_archive::Policies {
        age: Some(age),
        rc_bugs: None,
    };
    let e = run_with(&policies, "");
    // foo: low, 10 days, 10 old. bar: medium, 5, 10 old.
    assert!(verdict(&e, "foo").migrates, "{e:#?}");
    assert!(verdict(&e, "bar").migrates);
    // qux: medium, 1 day old.
    assert_eq!(
        verdict(&e, "qux").reasons,
        [Why::TooYoung {
            age_days: 1,
            required_days: 5,
            urgency: "medium".into()
        }]
    );
    // baz is new: emergency gives it no less than the default's 5 days.
    assert_eq!(
        verdict(&e, "baz").reasons,
        [Why::TooYoung {
            age_days: 3,
            required_days: 5,
            urgency: "medium".into()
        }]
    );
    assert!(verdict(&run_with(&policies, "urgent qux/2\n"), "qux").migrates);
    assert!(verdict(&run_with(&policies, "age-days 1 qux/2\n"), "qux").migrates);
    assert!(!verdict(&run_with(&policies, "age-days 20 foo/2\n"), "foo").migrates);
    // force overrides the age policy as every other.
    assert!(verdict(&run_with(&policies, "force baz/1\n"), "baz").migrates);
}

#[test]
fn new_rc_bugs_block_and_ignore_rc_bugs_lifts_them() {
    let dir = tempfile::tempdir().unwrap();
    let from = dir.path().join("BugsV-sid");
    let to = dir.path().join("BugsV-forky");
    std::fs::write(&from, "src:foo 100\nlibbar1 200,201\nbaz 300\n").unwrap();
    std::fs::write(&to, "foo 100\nlibbar1 201\n").unwrap();
    let policies = ferry_archive::Policies {
        age: None,
        rc_bugs: Some(ferry_archive::RcBugPolicy {
            source: ferry_archive::RcBugs::read(&from).unwrap(),
            target: ferry_archive::RcBugs::read(&to).unwrap(),
        }),
    };
    let e = run_with(&policies, "");
    // foo's bug is the target's already; bar brings 200; baz (new) 300.
    assert!(verdict(&e, "foo").migrates, "{e:#?}");
    assert_eq!(
        verdict(&e, "bar").reasons,
        [Why::NewRcBugs {
            bugs: vec!["200".into()]
        }]
    );
    assert_eq!(
        verdict(&e, "baz").reasons,
        [Why::NewRcBugs {
            bugs: vec!["300".into()]
        }]
    );
    assert!(verdict(&run_with(&policies, "ignore-rc-bugs 200 bar/2\n"), "bar").migrates);
    // Ignoring another bug, or another version, changes nothing.
    assert!(!verdict(&run_with(&policies, "ignore-rc-bugs 201 bar/2\n"), "bar").migrates);
    assert!(!verdict(&run_with(&policies, "ignore-rc-bugs 200 bar/3\n"), "bar").migrates);
}

#[test]
fn a_candidate_rejected_in_one_round_migrates_in_the_next_once_what_it_needs_arrived() {
    // Candidates are tried in name order: aview 2 needs zlib 2, which is
    // not in the target when aview is tried first; zlib migrates after it
    // in that round, so the next round must try aview again (the retry
    // skips only candidates whose packages did not change) and let it in
    // on its own, not as a group.
    let to = vec![
        bin("aview", "1", "amd64", ""),
        bin("zlib", "1", "amd64", ""),
        bin("other", "1", "amd64", ""),
    ];
    let to_src = vec![
        src("aview", "1", "aview"),
        src("zlib", "1", "zlib"),
        src("other", "1", "other"),
    ];
    let from = vec![
        bin("aview", "2", "amd64", "Depends: zlib (>= 2)\n"),
        bin("zlib", "2", "amd64", ""),
        bin("other", "2", "amd64", "Depends: missing\n"),
    ];
    let from_src = vec![
        src("aview", "2", "aview"),
        src("zlib", "2", "zlib"),
        src("other", "2", "other"),
    ];
    let e = run(&from, &from_src, &to, &to_src, "");
    assert!(verdict(&e, "zlib").migrates, "{e:#?}");
    let aview = verdict(&e, "aview");
    assert!(aview.migrates, "{e:#?}");
    assert!(aview.reasons.is_empty(), "alone, not grouped: {aview:#?}");
    // `other` breaks itself in every round: rejected, and its excuse's
    // counts are those of the target as it ends.
    let other = verdict(&e, "other");
    assert!(!other.migrates);
    assert!(
        other.reasons.iter().any(|w| matches!(
            w,
            Why::Breaks { before: 0, after: 1, broken, .. } if broken[0].package.package == "other"
        )),
        "{other:#?}"
    );
    assert_eq!(e.broken_after["amd64"], 0);
}
