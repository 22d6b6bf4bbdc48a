//! The kit judged by the real tools it stands in front of: dpkg-deb reads
//! the packages, gpgv checks the signatures, apt inside a minbase chroot
//! accepts the repositories (and refuses a bad signature), and a snapshot
//! sees exactly what an install changed.

use std::process::Command;
use std::time::Instant;

use ferry_testkit::{
    deb, host_architecture, skip_unless, Chroot, Need, Repo, Signer, TestkitError,
};

fn stdout(command: &mut Command) -> String {
    let out = command.output().unwrap();
    assert!(out.status.success(), "{command:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn dpkg_deb_reads_back_what_the_builder_was_told() -> Result<(), TestkitError> {
    skip_unless!(Need::Tool("dpkg-deb"));
    let dir = tempfile::tempdir().unwrap();
    let path = deb("sdk", "1:2.0-1")
        .arch("amd64")
        .depends("libc6 (>= 2.36)")
        .depends("sdk-data")
        .pre_depends("dpkg (>= 1.17)")
        .conflicts("old-sdk")
        .breaks("sdk-plugins (<< 2)")
        .provides("sdk-api (= 2)")
        .replaces("old-sdk")
        .multi_arch("foreign")
        .essential(true)
        .field("Section", "devel")
        .file("/usr/share/sdk/README", "hello\n")
        .executable("/usr/bin/sdk", "#!/bin/sh\necho sdk\n")
        .conffile("/etc/sdk.conf", "answer = 42\n")
        .maintainer_script("postinst", "#!/bin/sh\nset -e\nexit 0\n")
        .build(dir.path())?;
    assert_eq!(path, dir.path().join("sdk_2.0-1_amd64.deb"));

    let info = stdout(Command::new("dpkg-deb").arg("-I").arg(&path));
    for line in [
        "Package: sdk",
        "Version: 1:2.0-1",
        "Architecture: amd64",
        "Depends: libc6 (>= 2.36), sdk-data",
        "Pre-Depends: dpkg (>= 1.17)",
        "Conflicts: old-sdk",
        "Breaks: sdk-plugins (<< 2)",
        "Provides: sdk-api (= 2)",
        "Replaces: old-sdk",
        "Multi-Arch: foreign",
        "Essential: yes",
        "Section: devel",
        "postinst",
        "conffiles",
    ] {
        assert!(info.contains(line), "no {line:?} in\n{info}");
    }
    let conffiles = stdout(
        Command::new("dpkg-deb")
            .arg("-I")
            .arg(&path)
            .arg("conffiles"),
    );
    assert_eq!(conffiles, "/etc/sdk.conf\n");
    let contents = stdout(Command::new("dpkg-deb").arg("-c").arg(&path));
    assert!(contents.contains("-rwxr-xr-x root/root") && contents.contains("./usr/bin/sdk"));
    assert!(contents.contains("./etc/sdk.conf"), "{contents}");
    Ok(())
}

#[test]
fn a_written_repository_verifies_with_gpgv_and_is_served() -> Result<(), TestkitError> {
    skip_unless!(Need::Repos, Need::Tool("gpgv"));
    let repo = Repo::new("old-org")
        .suite("stable")
        .codename("orca")
        .architectures(["amd64", "arm64"])
        .package(deb("sdk", "1.0"))
        .package(deb("libsdk1", "1.0").arch("arm64"))
        .serve()?;
    let root = repo.layout().root();
    for file in [
        "dists/stable/Release",
        "dists/stable/InRelease",
        "dists/stable/Release.gpg",
        "dists/stable/main/binary-amd64/Packages.xz",
        "dists/stable/main/binary-arm64/Packages.gz",
        "pool/main/s/sdk/sdk_1.0_all.deb",
        "pool/main/libs/libsdk1/libsdk1_1.0_arm64.deb",
    ] {
        assert!(root.join(file).is_file(), "{file} missing");
    }
    let amd64 =
        std::fs::read_to_string(root.join("dists/stable/main/binary-amd64/Packages")).unwrap();
    assert!(
        amd64.contains("Package: sdk\n") && !amd64.contains("libsdk1"),
        "{amd64}"
    );
    let release = std::fs::read_to_string(root.join("dists/stable/Release")).unwrap();
    assert!(release.contains("Codename: orca\n"), "{release}");
    assert!(
        release.contains(" main/binary-arm64/Packages.xz\n"),
        "{release}"
    );

    let keyring = repo.keyring_path();
    let gpgv = |args: &[&str]| {
        Command::new("gpgv")
            .arg("--keyring")
            .arg(&keyring)
            .args(args)
            .current_dir(root.join("dists/stable"))
            .output()
            .unwrap()
    };
    assert!(gpgv(&["InRelease"]).status.success());
    assert!(gpgv(&["Release.gpg", "Release"]).status.success());
    assert!(repo
        .armored_key()
        .starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----"));

    let entry = repo.sources_entry();
    assert!(
        entry.contains(&format!("URIs: {}\n", repo.uri())),
        "{entry}"
    );
    assert!(repo.uri().starts_with("http://127.0.0.1:") && repo.uri().ends_with('/'));

    // Signed by another key: the advertised key no longer verifies it.
    let intruder = Signer::new("intruder")?;
    let forged = Repo::new("old-org")
        .signed_by(&intruder)
        .package(deb("sdk", "1.0"));
    let dir = tempfile::tempdir().unwrap();
    let layout = forged.write(dir.path())?;
    let out = Command::new("gpgv")
        .arg("--keyring")
        .arg(layout.keyring_path())
        .arg(dir.path().join("dists/stable/InRelease"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let unsigned = Repo::new("old-org")
        .unsigned()
        .write(&dir.path().join("u"))?;
    assert!(!unsigned.root().join("dists/stable/InRelease").exists());
    Ok(())
}

#[test]
fn apt_installs_from_a_served_repository_and_the_snapshot_sees_exactly_that(
) -> Result<(), TestkitError> {
    skip_unless!(Need::Chroots);
    let started = Instant::now();
    let sys = Chroot::minbase("bookworm")?;
    eprintln!("chroot ready in {:?}", started.elapsed());
    let repo = Repo::new("old-org")
        .package(deb("sdk", "1.0").depends("sdk-data"))
        .package(deb("sdk-data", "1.0").file("/usr/share/sdk/data", "x"))
        .serve()?;
    sys.add_source(&repo, "old-org")?;
    let before = sys.snapshot()?;
    let arch = host_architecture()?;
    assert!(before.packages.contains_key(&format!("apt:{arch}")));

    sys.run_ok(["apt-get", "update"])?;
    let mark = repo.request_log().len();
    sys.run_ok(["apt-get", "install", "-y", "sdk"])?;
    assert_eq!(sys.installed("sdk")?, Some("1.0".into()));
    assert_eq!(sys.installed("sdk-data")?, Some("1.0".into()));
    assert_eq!(sys.installed("no-such-package")?, None);
    let downloads: Vec<String> = repo
        .request_log()
        .since(mark)
        .into_iter()
        .map(|r| r.path)
        .collect();
    assert_eq!(downloads.len(), 2, "{downloads:?}");
    assert!(downloads.iter().all(|p| p.starts_with("/pool/main/s/")));

    let after = sys.snapshot()?;
    assert_ne!(before, after);
    // apt records the mark of an `all` package under the native arch.
    assert_eq!(
        before.diff(&after),
        format!(
            "+ package sdk-data:all: 1.0 [ii]\n\
             + package sdk:all: 1.0 [ii]\n\
             + manual mark sdk\n\
             + auto mark sdk-data:{arch}\n\
             + selection sdk: install\n\
             + selection sdk-data: install\n"
        )
    );
    after.assert_unchanged_from(&sys.snapshot()?);

    let root = sys.path().to_path_buf();
    drop(sys);
    assert!(!root.exists(), "the chroot was not removed");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&*root.to_string_lossy()));
    Ok(())
}

#[test]
fn apt_refuses_a_forged_or_unsigned_repository() -> Result<(), TestkitError> {
    skip_unless!(Need::Chroots);
    let sys = Chroot::minbase("bookworm")?;
    // The sources entry trusts old-org's key; an intruder signed the Release.
    let intruder = Signer::new("intruder")?;
    let forged = Repo::new("old-org")
        .signed_by(&intruder)
        .package(deb("sdk", "1.0"))
        .serve()?;
    sys.add_source(&forged, "old-org")?;
    let update = sys.run(["apt-get", "update"]);
    assert_ne!(update.code, Some(0), "{update}");
    assert!(
        update
            .stderr
            .contains(intruder.fingerprint().get(24..).unwrap()),
        "{update}"
    );
    assert!(update.stderr.contains("is not signed"), "{update}");

    let unsigned = Repo::new("new-org")
        .unsigned()
        .package(deb("sdk", "1.0"))
        .serve()?;
    std::fs::remove_file(sys.host_path("/etc/apt/sources.list.d/old-org.sources")).unwrap();
    sys.add_source(&unsigned, "new-org")?;
    let update = sys.run(["apt-get", "update"]);
    assert_ne!(update.code, Some(0), "{update}");
    assert!(update.stderr.contains("is not signed"), "{update}");
    Ok(())
}

#[test]
fn ferry_runs_on_the_host_with_the_root_and_in_the_workdir() -> Result<(), TestkitError> {
    skip_unless!(Need::Chroots);
    let sys = Chroot::minbase("bookworm")?;
    let fake = sys.workdir().join("fake-ferry");
    std::fs::write(&fake, "#!/bin/sh\necho \"$@\"\npwd\nexit 4\n").unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let outcome = sys.ferry_with(&fake, ["run", "move.toml", "--yes"]);
    outcome.failure(4);
    let expected = format!(
        "--root {} run move.toml --yes\n{}\n",
        sys.path().display(),
        sys.workdir().display()
    );
    assert_eq!(outcome.stdout, expected);
    let sys = sys.with_ferry_bin("/nonexistent/ferry");
    assert!(sys.ferry(["--version"]).stderr.contains("not started"));

    // Files go in, not out through links.
    sys.write_file("/etc/ferry/test.toml", "x = 1\n")?;
    assert_eq!(sys.read_file("/etc/ferry/test.toml")?, b"x = 1\n");
    std::os::unix::fs::symlink("/tmp", sys.host_path("/etc/escape")).unwrap();
    assert!(sys.write_file("/etc/escape/owned", "no").is_err());
    assert!(sys.write_file("/../owned", "no").is_err());
    Ok(())
}
