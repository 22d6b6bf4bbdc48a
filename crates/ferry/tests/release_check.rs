//! `ferry release check | fetch | bundle` end to end: a bundle built and
//! signed by `ferry release bundle` with keys made by the real gpg, a
//! meta-release index served on 127.0.0.1, and every refusal — tampered
//! bundle, wrong key, expired key, missing signature, path traversal,
//! absolute path, symlink out, a checksum that does not match — exiting 2
//! with nothing created under the system root. An index that only lists
//! older releases, or marks the next one broken, answers "up to date" (1).
//!
//! Needs gpg and gpgv (or sqv); skipped otherwise. No root needed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ferry_testkit::{expect_exit, FileServer, Outcome, Signer};

type TarGz = tar::Builder<flate2::write::GzEncoder<std::fs::File>>;

fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok()
}

const SOURCES: &str = "Types: deb\nURIs: http://127.0.0.1:9/debian\nSuites: trixie trixie-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n";

fn publisher_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("debian.sources"), SOURCES).unwrap();
    std::fs::write(
        dir.path().join("demoted.cfg"),
        "# gone in trixie\nlegacy-tool\n",
    )
    .unwrap();
    dir
}

fn ferry(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .unwrap()
}

/// Every path under `root`, to show a refusal created nothing.
fn listing(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
            out.push(e.path());
        }
    }
    out.sort();
    out
}

/// Signs `file` into `file.sig`, where ferry looks for a bundle's signature.
fn sign(key: &Signer, file: &Path) {
    key.detach_sign(file, Path::new(&format!("{}.sig", file.display())))
        .unwrap();
}

fn paragraph(dist: &str, version: &str, date: &str) -> String {
    format!(
        "Dist: {dist}\nName: Debian {version}\nVersion: {version}\nDate: {date}\nSupported: 1\n"
    )
}

fn index_with(bundle: &str, size: u64, sha256: &str, extra: &str) -> String {
    format!(
        "{}\n{}Description: Debian 13\n{extra}Bundle: {bundle}\nBundle-Size: {size}\nBundle-SHA256: {sha256}\n",
        paragraph("bookworm", "12", "Sat, 10 Jun 2023 00:00:00 UTC"),
        paragraph("trixie", "13", "Sat, 09 Aug 2025 00:00:00 UTC"),
    )
}

fn sha256(path: &Path) -> (u64, String) {
    let mut sum = Command::new("sha256sum");
    sum.arg(path);
    let text = Outcome::of(sum).ok().unwrap().stdout;
    (
        std::fs::metadata(path).unwrap().len(),
        text.split_whitespace().next().unwrap().to_string(),
    )
}

/// A tar.gz holding valid bundle files plus one hostile entry.
fn hostile_tar(path: &Path, evil: impl FnOnce(&mut TarGz)) {
    let file = std::fs::File::create(path).unwrap();
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        file,
        flate2::Compression::default(),
    ));
    for (name, text) in [
        ("debian.sources", SOURCES),
        ("demoted.cfg", "legacy-tool\n"),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        tar.append_data(&mut header, name, text.as_bytes()).unwrap();
    }
    evil(&mut tar);
    tar.into_inner().unwrap().finish().unwrap();
}

/// A header whose name is written raw, as an attacker would (the tar
/// crate's own setters refuse `..` and absolute names).
fn raw_header(name: &str, kind: tar::EntryType, size: u64, link: Option<&str>) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(0o644);
    let gnu = header.as_gnu_mut().unwrap();
    gnu.name[..name.len()].copy_from_slice(name.as_bytes());
    if let Some(link) = link {
        gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    header.set_cksum();
    header
}

#[test]
fn check_fetch_and_every_refusal() {
    if !have("gpg") || !(have("gpgv") || have("sqv")) {
        ferry_testkit::skip!("needs gpg and gpgv or sqv");
    }
    let root = tempfile::tempdir().unwrap();
    // The least --root accepts as a Debian system.
    std::fs::create_dir_all(root.path().join("etc/apt")).unwrap();
    std::fs::create_dir_all(root.path().join("var/lib/dpkg")).unwrap();
    std::fs::write(root.path().join("var/lib/dpkg/status"), "").unwrap();
    std::fs::write(
        root.path().join("etc/os-release"),
        "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n",
    )
    .unwrap();
    let www = tempfile::tempdir().unwrap();
    let good = Signer::new("release").unwrap();
    let wrong = Signer::new("stranger").unwrap();
    let expired = Signer::expired("old").unwrap();

    // The publisher builds and signs the bundle with ferry itself.
    let publisher = publisher_dir();
    let bundle = www.path().join("trixie.tar.xz");
    let built = ferry(
        root.path(),
        &[
            "release",
            "bundle",
            publisher.path().to_str().unwrap(),
            "--gnupghome",
            good.home().to_str().unwrap(),
            "-o",
            bundle.to_str().unwrap(),
        ],
    );
    expect_exit(&built, 0);
    let fields = String::from_utf8_lossy(&built.stdout).into_owned();
    let (size, hash) = sha256(&bundle);
    assert!(
        fields.contains(&format!("Bundle-Size: {size}\n")),
        "{fields}"
    );
    assert!(
        fields.contains(&format!("Bundle-SHA256: {hash}\n")),
        "{fields}"
    );
    std::fs::write(
        www.path().join("meta-release"),
        index_with("trixie.tar.xz", size, &hash, ""),
    )
    .unwrap();
    let server = FileServer::serve_dir(www.path()).unwrap();
    // The server's URI ends with a slash.
    let url = |name: &str| format!("{}{name}", server.uri());

    // The system's configuration names the index and the keyring.
    std::fs::create_dir_all(root.path().join("etc/ferry")).unwrap();
    std::fs::create_dir_all(root.path().join("usr/share/keyrings")).unwrap();
    std::fs::copy(
        good.keyring_path(),
        root.path().join("usr/share/keyrings/release.gpg"),
    )
    .unwrap();
    std::fs::write(
        root.path().join("etc/ferry/release.toml"),
        format!(
            "meta_release = \"{}\"\nkeyring = \"/usr/share/keyrings/release.gpg\"\n",
            url("meta-release")
        ),
    )
    .unwrap();
    let before = listing(root.path());

    let check = ferry(root.path(), &["release", "check"]);
    expect_exit(&check, 0);
    assert!(String::from_utf8_lossy(&check.stdout).contains("New release trixie"));
    let json = ferry(root.path(), &["--json", "release", "check"]);
    expect_exit(&json, 0);
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(value["upgrade"], true);
    assert_eq!(value["target"]["dist"], "trixie");
    assert_eq!(value["current"]["dist"], "bookworm");

    let fetched = ferry(root.path(), &["release", "fetch"]);
    expect_exit(&fetched, 0);
    let text = String::from_utf8_lossy(&fetched.stdout);
    assert!(text.contains("demoted: legacy-tool"), "{text}");
    assert!(
        text.contains("debian.sources -> /etc/apt/sources.list.d/debian.sources"),
        "{text}"
    );
    assert_eq!(listing(root.path()), before);

    // Each refusal: its own index, exit 2, nothing new under the root.
    let refuse = |case: &str, index: String, keyring: Option<&Path>, says: &str| {
        let name = format!("meta-{case}");
        std::fs::write(www.path().join(&name), index).unwrap();
        let mut args = vec![
            "release".to_string(),
            "fetch".into(),
            "--meta-release".into(),
            url(&name),
        ];
        if let Some(k) = keyring {
            args.extend(["--keyring".into(), k.display().to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = ferry(root.path(), &args);
        expect_exit(&out, 2);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{case}: {stderr}");
        assert_eq!(
            listing(root.path()),
            before,
            "{case} created files under the root"
        );
    };
    let copy_signed = |name: &str, key: &Signer| {
        let path = www.path().join(name);
        std::fs::copy(&bundle, &path).unwrap();
        sign(key, &path);
        let (size, hash) = sha256(&path);
        index_with(name, size, &hash, "")
    };

    refuse(
        "wrong-key",
        index_with("trixie.tar.xz", size, &hash, ""),
        Some(wrong.keyring_path()),
        "refused",
    );
    refuse(
        "expired",
        copy_signed("old.tar.xz", &expired),
        Some(expired.keyring_path()),
        "expired",
    );
    refuse(
        "unknown-key",
        copy_signed("other.tar.xz", &wrong),
        None,
        "refused",
    );

    let mut tampered = std::fs::read(&bundle).unwrap();
    let last = tampered.len() - 20;
    tampered[last] ^= 0x55;
    std::fs::write(www.path().join("tampered.tar.xz"), &tampered).unwrap();
    std::fs::copy(
        format!("{}.sig", bundle.display()),
        www.path().join("tampered.tar.xz.sig"),
    )
    .unwrap();
    let (t_size, t_hash) = sha256(&www.path().join("tampered.tar.xz"));
    refuse(
        "tampered",
        index_with("tampered.tar.xz", t_size, &t_hash, ""),
        None,
        "refused",
    );
    refuse(
        "checksum",
        index_with("tampered.tar.xz", t_size, &hash, ""),
        None,
        "SHA-256",
    );

    std::fs::copy(&bundle, www.path().join("unsigned.tar.xz")).unwrap();
    refuse(
        "unsigned",
        index_with("unsigned.tar.xz", size, &hash, ""),
        None,
        "no signature",
    );

    let hostile = |case: &str, evil: Box<dyn FnOnce(&mut TarGz)>, says: &str| {
        let name = format!("{case}.tar.gz");
        let path = www.path().join(&name);
        hostile_tar(&path, evil);
        sign(&good, &path);
        let (size, hash) = sha256(&path);
        refuse(case, index_with(&name, size, &hash, ""), None, says);
    };
    hostile(
        "traversal",
        Box::new(|t| {
            t.append(
                &raw_header(
                    "../ferry-bundle-escape-probe",
                    tar::EntryType::Regular,
                    2,
                    None,
                ),
                &b"x\n"[..],
            )
            .unwrap()
        }),
        "`..` would leave the bundle",
    );
    hostile(
        "absolute",
        Box::new(|t| {
            t.append(
                &raw_header("/etc/x", tar::EntryType::Regular, 2, None),
                &b"x\n"[..],
            )
            .unwrap()
        }),
        "absolute paths are refused",
    );
    hostile(
        "symlink",
        Box::new(|t| {
            t.append(
                &raw_header("keys", tar::EntryType::Symlink, 0, Some("../../etc")),
                &b""[..],
            )
            .unwrap()
        }),
        "outside the bundle",
    );
    hostile(
        "fifo",
        Box::new(|t| {
            t.append(&raw_header("pipe", tar::EntryType::Fifo, 0, None), &b""[..])
                .unwrap()
        }),
        "FIFO entries are refused",
    );
    // A name nothing else uses, so an unrelated file cannot fail the check.
    let probe = "ferry-bundle-escape-probe";
    assert!(
        !root.path().join(probe).exists() && !root.path().parent().unwrap().join(probe).exists()
    );

    // A bad index: file and line.
    std::fs::write(
        www.path().join("meta-bad"),
        "Dist: trixie\nVersion: 13\nSupported: 1\n",
    )
    .unwrap();
    let bad = ferry(
        root.path(),
        &["release", "check", "--meta-release", &url("meta-bad")],
    );
    expect_exit(&bad, 2);
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("no `Date` field") && stderr.contains("meta-bad:1"),
        "{stderr}"
    );

    // Only older releases: up to date, exit 1. A broken next release: 1 with the reason.
    let older = format!(
        "{}\n{}",
        paragraph("bullseye", "11", "Sat, 14 Aug 2021 00:00:00 UTC"),
        paragraph("bookworm", "12", "Sat, 10 Jun 2023 00:00:00 UTC")
    );
    std::fs::write(www.path().join("meta-older"), older).unwrap();
    let up_to_date = ferry(
        root.path(),
        &["release", "check", "--meta-release", &url("meta-older")],
    );
    expect_exit(&up_to_date, 1);
    assert!(String::from_utf8_lossy(&up_to_date.stdout).starts_with("Up to date"));
    let fetch_older = ferry(
        root.path(),
        &["release", "fetch", "--meta-release", &url("meta-older")],
    );
    expect_exit(&fetch_older, 1);
    std::fs::write(
        www.path().join("meta-broken"),
        index_with(
            "trixie.tar.xz",
            size,
            &hash,
            "UpgradeBroken: the kernel does not boot yet\n",
        ),
    )
    .unwrap();
    let broken = ferry(
        root.path(),
        &["release", "check", "--meta-release", &url("meta-broken")],
    );
    expect_exit(&broken, 1);
    assert!(String::from_utf8_lossy(&broken.stdout).contains("the kernel does not boot yet"));
    assert_eq!(listing(root.path()), before);
}
