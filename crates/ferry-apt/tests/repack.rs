//! Rebuilding installed packages of a real minbase system, with
//! dpkg-repack as the oracle: the same control fields, members, file list
//! (modes, owners, mtimes, link targets) and file contents; the rebuilt
//! `.deb` reinstalls cleanly. Then the plan's proof of the backup
//! (`backup_findings`) and a backup taken when apt's cache was cleaned and
//! the old repository is gone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use ferry_apt::Severity;
use ferry_apt::SystemRoot;
use ferry_apt::{backup_findings, Backup, DebOrigin, PackageToSave};
use ferry_apt::{repack_deb, repack_inventory, RepackError};
use ferry_testkit::{host_architecture, skip_unless, Chroot, Need, TestkitError};
use sha2::{Digest, Sha256};

fn run(command: &mut Command) -> std::process::Output {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `dpkg-deb -f`: field → value.
fn control_fields(deb: &Path) -> BTreeMap<String, String> {
    let text = String::from_utf8(run(Command::new("dpkg-deb").arg("-f").arg(deb)).stdout).unwrap();
    let mut fields = BTreeMap::new();
    let mut last = String::new();
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            let value: &mut String = fields.get_mut(&last).unwrap();
            value.push('\n');
            value.push_str(line);
        } else if let Some((name, value)) = line.split_once(':') {
            last = name.to_string();
            fields.insert(last.clone(), value.trim().to_string());
        }
    }
    fields
}

/// `dpkg-deb -c`: path → mode, owner, size, mtime (not for directories:
/// dpkg-repack leaves them at the time it made them) and link target.
fn listing(deb: &Path) -> BTreeMap<String, String> {
    let text = String::from_utf8(run(Command::new("dpkg-deb").arg("-c").arg(deb)).stdout).unwrap();
    text.lines()
        .map(|line| {
            let t: Vec<&str> = line.split_whitespace().collect();
            let name = t[5..].join(" ");
            let (path, link) = match name.split_once(" -> ") {
                Some((p, l)) => (p.to_string(), l.to_string()),
                None => (name.clone(), String::new()),
            };
            let when = if t[0].starts_with('d') {
                String::new()
            } else {
                format!("{} {}", t[3], t[4])
            };
            (
                path.trim_end_matches('/').to_string(),
                format!("{} {} {} {when} {link}", t[0], t[1], t[2]),
            )
        })
        .collect()
}

/// Extracts the control members (`dpkg-deb -e`) or the files (`-x`) and
/// hashes every regular file by relative path.
fn extracted(deb: &Path, flag: &str) -> BTreeMap<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let into = dir.path().join("x");
    run(Command::new("dpkg-deb").arg(flag).arg(deb).arg(&into));
    let mut out = BTreeMap::new();
    let mut stack = vec![into.clone()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let relative = path.strip_prefix(&into).unwrap().display().to_string();
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() {
                let hash = format!("{:x}", Sha256::digest(std::fs::read(&path).unwrap()));
                out.insert(relative, hash);
            }
        }
    }
    out
}

fn repack_with_dpkg_repack(root: &Path, package: &str, out: &Path) -> PathBuf {
    let dir = out.join(format!("oracle-{}", package.replace(':', "_")));
    std::fs::create_dir_all(&dir).unwrap();
    let output = run(Command::new("dpkg-repack")
        .arg(format!("--root={}", root.display()))
        .arg("--tag=none")
        .arg(package)
        .current_dir(&dir));
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !stderr.trim().is_empty() {
        eprintln!("dpkg-repack {package}: {stderr}");
    }
    let mut debs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(debs.len(), 1, "dpkg-repack made {debs:?}");
    debs.remove(0)
}

/// Every difference between two maps, one line each.
fn differences(
    what: &str,
    ours: &BTreeMap<String, String>,
    theirs: &BTreeMap<String, String>,
) -> Vec<String> {
    let keys: std::collections::BTreeSet<&String> = ours.keys().chain(theirs.keys()).collect();
    keys.into_iter()
        .filter(|k| ours.get(*k) != theirs.get(*k))
        .map(|k| {
            format!(
                "{what} {k}: ours {:?}, dpkg-repack {:?}",
                ours.get(k),
                theirs.get(k)
            )
        })
        .collect()
}

fn status_arch(sys: &Chroot, name: &str) -> Result<String, TestkitError> {
    Ok(sys
        .run_ok(["dpkg-query", "-W", "-f=${Architecture}", name])?
        .trim()
        .to_string())
}

/// The chroot as the system ferry acts on.
fn system(sys: &Chroot) -> SystemRoot {
    SystemRoot::open(sys.path()).unwrap()
}

#[test]
fn rebuilt_packages_match_dpkg_repack_and_reinstall_cleanly() -> Result<(), TestkitError> {
    skip_unless!(Need::Chroots, Need::Tool("dpkg-repack"));
    let sys = Chroot::minbase("bookworm")?;
    let arch = host_architecture()?;
    // A conffile the admin edited.
    let mut defs = sys.read_file("/etc/login.defs")?;
    defs.extend_from_slice(b"# edited by the admin\nUMASK 027\n");
    sys.write_file("/etc/login.defs", &defs)?;
    // A file diverted locally: the package's content now lives at the
    // divert-to path, and the admin's own file is at the original one.
    sys.run_ok([
        "dpkg-divert",
        "--local",
        "--rename",
        "--divert",
        "/bin/hostname.distrib",
        "--add",
        "/bin/hostname",
    ])?;
    sys.write_file("/usr/bin/hostname", b"#!/bin/sh\necho local-hostname\n")?;

    // login: edited conffile and all four maintainer scripts; base-passwd:
    // templates; zlib1g: Multi-Arch: same with shlibs, symbols, triggers;
    // hostname: diverted locally; dash: diverts /bin/sh of others itself;
    // passwd: setgid files of group shadow; base-files: a setgid directory
    // of group staff and many conffiles.
    let packages = [
        "passwd".to_string(),
        "base-files".to_string(),
        "login".to_string(),
        "base-passwd".to_string(),
        format!("zlib1g:{arch}"),
        "hostname".to_string(),
        "dash".to_string(),
    ];
    let out = tempfile::tempdir().unwrap();
    let mut problems = Vec::new();
    let mut rebuilt = Vec::new();
    for package in &packages {
        let name = package.split(':').next().unwrap_or(package);
        let package_arch = status_arch(&sys, name)?;
        let ours = out.path().join(format!("{name}.deb"));
        let built = repack_deb(
            &system(&sys),
            name,
            &package_arch,
            &out.path().join("work"),
            &ours,
        )
        .unwrap_or_else(|e| panic!("rebuilding {package}: {e}"));
        assert!(built.warnings.is_empty(), "{package}: {:?}", built.warnings);
        let theirs = repack_with_dpkg_repack(sys.path(), package, out.path());
        problems.extend(differences(
            package,
            &control_fields(&ours),
            &control_fields(&theirs),
        ));
        problems.extend(differences(package, &listing(&ours), &listing(&theirs)));
        // DEBIAN/control is compared field by field above: dpkg-repack
        // reorders the fields, ferry keeps dpkg's order.
        let members = |deb: &Path| {
            let mut members = extracted(deb, "-e");
            members.remove("control");
            members
        };
        problems.extend(differences(package, &members(&ours), &members(&theirs)));
        problems.extend(differences(
            package,
            &extracted(&ours, "-x"),
            &extracted(&theirs, "-x"),
        ));
        rebuilt.push((name.to_string(), ours));
    }
    assert!(problems.is_empty(), "differences:\n{}", problems.join("\n"));

    // What the rebuild took from where it had to, checked directly too.
    let login = extracted(&out.path().join("login.deb"), "-x");
    let edited = format!("{:x}", Sha256::digest(&defs));
    assert_eq!(login.get("etc/login.defs"), Some(&edited));
    let members = extracted(&out.path().join("login.deb"), "-e");
    for member in [
        "conffiles",
        "preinst",
        "postinst",
        "prerm",
        "postrm",
        "md5sums",
    ] {
        assert!(
            members.contains_key(member),
            "login lacks {member}: {members:?}"
        );
    }
    let passwd = listing(&out.path().join("passwd.deb"));
    let chage = passwd.get("./usr/bin/chage").map(String::as_str);
    assert!(
        chage.is_some_and(|l| l.starts_with("-rwxr-sr-x root/shadow ")),
        "{chage:?}"
    );
    let hostname = extracted(&out.path().join("hostname.deb"), "-x");
    let distrib = format!(
        "{:x}",
        Sha256::digest(sys.read_file("/usr/bin/hostname.distrib")?)
    );
    assert_eq!(hostname.get("bin/hostname"), Some(&distrib));

    for (name, deb) in &rebuilt {
        let inside = format!("/tmp/{name}.deb");
        sys.write_file(&inside, std::fs::read(deb).unwrap())?;
        let installed = sys.run(["dpkg", "-i", &inside]);
        installed.success();
        assert!(
            !installed.stderr.contains("warning") && !installed.stderr.contains("error"),
            "dpkg -i {name}:\n{}",
            installed.stderr
        );
    }
    let audit = sys.run(["dpkg", "--audit"]);
    audit.success();
    assert_eq!(audit.stdout.trim(), "", "dpkg --audit after reinstalling");
    // The diversion held: the admin's file stayed, the package's went aside.
    assert_eq!(
        sys.read_file("/usr/bin/hostname")?,
        b"#!/bin/sh\necho local-hostname\n"
    );
    let after = format!(
        "{:x}",
        Sha256::digest(sys.read_file("/usr/bin/hostname.distrib")?)
    );
    assert_eq!(after, distrib);
    Ok(())
}

fn to_save(sys: &Chroot, name: &str) -> Result<PackageToSave, TestkitError> {
    Ok(PackageToSave {
        name: name.to_string(),
        arch: status_arch(sys, name)?,
        version: sys.installed(name)?.unwrap_or_default(),
    })
}

fn keys(findings: &[ferry_apt::Finding], severity: Severity) -> Vec<String> {
    findings
        .iter()
        .filter(|f| f.severity == severity)
        .map(|f| f.key.to_string())
        .collect()
}

#[test]
fn the_plan_proves_each_backup_source_or_blocks() -> Result<(), TestkitError> {
    skip_unless!(Need::Chroots);
    let sys = Chroot::minbase("bookworm")?;
    let hostname = to_save(&sys, "hostname")?;
    let cache = sys.host_path("/var/cache/apt/archives");
    let cached = cache.join(format!(
        "hostname_{}_{}.deb",
        hostname.version.replace(':', "%3a"),
        hostname.arch
    ));
    let work = tempfile::tempdir().unwrap();
    let kept = work.path().join("hostname.deb");
    repack_deb(
        &system(&sys),
        "hostname",
        &hostname.arch,
        &work.path().join("w"),
        &kept,
    )
    .unwrap();
    assert!(!cached.exists(), "minbase keeps no .deb in apt's cache");

    // A file of the package gone from disk: no rebuild, and the lists
    // still offer the version, so the backup hangs on the old repository.
    std::fs::remove_file(sys.host_path("/usr/bin/hostname")).unwrap();
    assert!(matches!(
        repack_inventory(&system(&sys), "hostname", &hostname.arch),
        Err(RepackError::MissingFile { .. })
    ));
    let findings = backup_findings(&system(&sys), std::slice::from_ref(&hostname));
    assert_eq!(keys(&findings, Severity::Blocker), Vec::<String>::new());
    assert_eq!(
        keys(&findings, Severity::Warning),
        ["backup-from-old-repository:hostname"]
    );

    // …and with the lists gone too, nothing can provide it.
    for entry in std::fs::read_dir(sys.host_path("/var/lib/apt/lists")).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().contains("_Packages") {
            std::fs::remove_file(path).unwrap();
        }
    }
    let findings = backup_findings(&system(&sys), std::slice::from_ref(&hostname));
    assert_eq!(
        keys(&findings, Severity::Blocker),
        ["backup-impossible:hostname"]
    );
    let blocker = findings
        .iter()
        .find(|f| f.severity == Severity::Blocker)
        .unwrap();
    assert!(
        blocker.finding.contains("/bin/hostname"),
        "{}",
        blocker.finding
    );
    assert!(blocker.remediation.contains("/var/cache/apt/archives"));

    // The .deb in apt's cache is a source whatever is on disk.
    std::fs::copy(&kept, &cached).unwrap();
    let findings = backup_findings(&system(&sys), std::slice::from_ref(&hostname));
    assert_eq!(keys(&findings, Severity::Blocker), Vec::<String>::new());
    assert_eq!(keys(&findings, Severity::Warning), Vec::<String>::new());
    assert_eq!(keys(&findings, Severity::Info), ["backup-sources"]);
    // A file of that name that is not that package is no source.
    std::fs::write(&cached, b"not a deb").unwrap();
    let findings = backup_findings(&system(&sys), std::slice::from_ref(&hostname));
    assert_eq!(
        keys(&findings, Severity::Blocker),
        ["backup-impossible:hostname"]
    );
    std::fs::remove_file(&cached).unwrap();
    Ok(())
}

#[test]
fn a_backup_without_cache_or_old_repository_rebuilds_the_deb() -> Result<(), TestkitError> {
    skip_unless!(Need::Chroots);
    let sys = Chroot::minbase("bookworm")?;
    let login = to_save(&sys, "login")?;
    // The old repository is gone: no sources, no lists; the cache is empty.
    for dir in ["/etc/apt/sources.list.d", "/var/lib/apt/lists"] {
        for entry in std::fs::read_dir(sys.host_path(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                std::fs::remove_file(path).unwrap();
            }
        }
    }
    let _ = std::fs::remove_file(sys.host_path("/etc/apt/sources.list"));
    let findings = backup_findings(&system(&sys), std::slice::from_ref(&login));
    assert_eq!(keys(&findings, Severity::Blocker), Vec::<String>::new());
    assert_eq!(keys(&findings, Severity::Warning), Vec::<String>::new());

    let dir = tempfile::tempdir().unwrap();
    let backup_dir = dir.path().join("m1");
    let backup = Backup::create(
        &system(&sys),
        &backup_dir,
        "m1",
        std::slice::from_ref(&login),
    )
    .unwrap_or_else(|e| panic!("backup: {e}"));
    assert_eq!(backup.manifest.debs.len(), 1);
    assert_eq!(backup.manifest.debs[0].origin, DebOrigin::Repacked);
    let deb = backup_dir.join(&backup.manifest.debs[0].file);
    let fields = control_fields(&deb);
    assert_eq!(fields.get("Package").map(String::as_str), Some("login"));
    assert_eq!(fields.get("Version"), Some(&login.version));
    assert!(
        !backup_dir.join("debs/.repack").exists(),
        "staging left behind"
    );
    Backup::open(&backup_dir).unwrap();
    Ok(())
}
