//! Release/InRelease and os-release against the real tools: gpg signs and
//! verifies what `split_clearsigned` cuts apart, apt-ftparchive writes the
//! Release files that are parsed and verified, sha256sum and GNU date check
//! hashes and dates, and sh sources the os-release files that are parsed.
//! Each tool's test says so and passes when the tool is missing.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use ferry_deb::os_release::{OsRelease, OsReleaseError};
use ferry_deb::release::{
    split_clearsigned, ClearSignedError, HashAlgorithm, Release, ReleaseError, Timestamp,
    VerifyError,
};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/release")
}

fn suite_dir() -> PathBuf {
    fixtures().join("dists/example")
}

fn fixture_release_text() -> String {
    fs::read_to_string(suite_dir().join("Release")).unwrap()
}

fn have(tool: &str) -> bool {
    let found = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        ferry_testkit::note_skip!("`{tool}` is not installed");
    }
    found
}

fn run(command: &mut Command) -> Output {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// What GNU date makes of an RFC 2822 date, in seconds since the epoch.
fn gnu_date(text: &str) -> i64 {
    let output = run(Command::new("date").args(["-u", "-d", text, "+%s"]));
    String::from_utf8(output.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

// ---------------------------------------------------------------------------
// Release
// ---------------------------------------------------------------------------

#[test]
fn fixture_release_has_every_field_typed() {
    let release = Release::parse(&fixture_release_text()).unwrap();
    assert_eq!(release.origin.as_deref(), Some("Example"));
    assert_eq!(release.label.as_deref(), Some("Example Repo"));
    assert_eq!(release.suite.as_deref(), Some("stable"));
    assert_eq!(release.codename.as_deref(), Some("example"));
    assert_eq!(release.version.as_deref(), Some("1.2"));
    assert_eq!(
        release.description.as_deref(),
        Some("Example packages for ferry's tests")
    );
    assert_eq!(release.architectures, ["amd64", "arm64"]);
    assert_eq!(release.components, ["main", "contrib"]);
    assert!(release.acquire_by_hash);
    assert!(!release.not_automatic);
    assert_eq!(release.no_support_for_architecture_all, ["Packages"]);
    assert_eq!(
        release.signed_by,
        ["0123456789ABCDEF0123456789ABCDEF01234567"]
    );
    assert_eq!(
        release.other_fields,
        [(
            "Changelogs".to_string(),
            "https://metadata.example.org/changelogs/@CHANGEPATH@_changelog".to_string()
        )]
    );

    // apt-ftparchive wrote the dates with a `+0000` zone.
    let date = release.date.unwrap();
    let valid_until = release.valid_until.unwrap();
    assert_eq!(date.to_string(), "Sun, 22 Nov 2026 11:35:42 UTC");
    assert_eq!(
        date.unix_seconds(),
        gnu_date("Sun, 22 Nov 2026 11:35:42 +0000")
    );
    assert_eq!(valid_until.unix_seconds() - date.unix_seconds(), 7 * 86_400);
    assert!(!release.valid_until_passed(date));
    assert!(!release.valid_until_passed(valid_until));
    let after = Timestamp::from_unix_seconds(valid_until.unix_seconds() + 1);
    assert!(release.valid_until_passed(after));
    // APT's ten seconds of tolerated clock skew.
    let early = |seconds| Timestamp::from_unix_seconds(date.unix_seconds() - seconds);
    assert!(!release.date_in_future(early(10)));
    assert!(release.date_in_future(early(11)));

    for algorithm in HashAlgorithm::ALL {
        let list = release.checksums(algorithm);
        assert_eq!(list.len(), 4, "{algorithm:?}");
        assert!(list.iter().all(|e| e.hash.len() == algorithm.hex_len()));
    }
    let gz = release.file("main/binary-amd64/Packages.gz").unwrap();
    assert_eq!(gz.size, 379);
    assert_eq!(gz.md5, Some("9ea41ccf8997559200a608d94e1ffd8a"));
    assert_eq!(gz.sha1, Some("66f03d4dc5586093051d18e6ac626908df04d65c"));
    assert_eq!(
        gz.sha256,
        Some("7252df2e329568b5ab59bb882006a6baf6fa27a71e79bc2f42c7f489bf25dfb2")
    );
    assert_eq!(gz.sha512.map(str::len), Some(128));
    assert!(release.file("main/binary-amd64/Packages.xz").is_none());
}

#[test]
fn listed_files_verify_and_agree_with_sha256sum() {
    let release = Release::read(&suite_dir().join("Release")).unwrap();
    let sha256sum = have("sha256sum");
    for entry in &release.sha256 {
        release.verify_file(&suite_dir(), &entry.path).unwrap();
        if sha256sum {
            let output = run(Command::new("sha256sum").arg(suite_dir().join(&entry.path)));
            let stdout = String::from_utf8(output.stdout).unwrap();
            assert_eq!(stdout.split_whitespace().next(), Some(entry.hash.as_str()));
        }
    }
}

#[test]
fn changed_files_give_typed_mismatches() {
    let temp = tempfile::tempdir().unwrap();
    copy_tree(&suite_dir(), temp.path());
    let release = Release::read(&temp.path().join("Release")).unwrap();
    let packages = temp.path().join("main/binary-amd64/Packages");

    // Same size, one byte different: only the hash can tell.
    let mut bytes = fs::read(&packages).unwrap();
    bytes[0] ^= 0x20;
    fs::write(&packages, &bytes).unwrap();
    match release.verify_file(temp.path(), "main/binary-amd64/Packages") {
        Err(VerifyError::Sha256Mismatch {
            path,
            expected,
            actual,
        }) => {
            assert_eq!(path, packages);
            assert_eq!(
                expected,
                "c537a9fa034ec3f4a1827946c8e88868a2ced27546428102d6ebf7f6e8ecbf77"
            );
            assert_ne!(actual, expected);
        }
        other => panic!("expected a SHA256 mismatch, got {other:?}"),
    }

    fs::write(&packages, &bytes[..100]).unwrap();
    match release.verify_file(temp.path(), "main/binary-amd64/Packages") {
        Err(VerifyError::SizeMismatch {
            expected, actual, ..
        }) => assert_eq!((expected, actual), (664, 100)),
        other => panic!("expected a size mismatch, got {other:?}"),
    }

    fs::remove_file(&packages).unwrap();
    assert!(matches!(
        release.verify_file(temp.path(), "main/binary-amd64/Packages"),
        Err(VerifyError::Io { .. })
    ));
    assert!(matches!(
        release.verify_file(temp.path(), "main/binary-arm64/Packages"),
        Err(VerifyError::NotListed { .. })
    ));

    let md5_only = Release::parse(
        "Suite: x\nMD5Sum:\n d41d8cd98f00b204e9800998ecf8427e 0 main/binary-amd64/Packages\n",
    )
    .unwrap();
    assert!(matches!(
        md5_only.verify_file(&suite_dir(), "main/binary-amd64/Packages"),
        Err(VerifyError::NoSha256 { .. })
    ));
}

/// apt-ftparchive is the tool that writes Release files for small
/// repositories: what it writes over a tree of indices must parse, list
/// every file and verify.
#[test]
fn release_written_by_apt_ftparchive_parses_and_verifies() {
    if !have("apt-ftparchive") {
        return;
    }
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    copy_tree(&suite_dir(), dir);
    fs::remove_file(dir.join("Release")).unwrap();
    let big: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
    fs::create_dir_all(dir.join("main/source")).unwrap();
    fs::write(dir.join("main/source/Sources"), big).unwrap();
    let output = run(Command::new("apt-ftparchive")
        .args([
            "-o",
            "APT::FTPArchive::Release::Suite=testing",
            "-o",
            "APT::FTPArchive::Release::ValidTime=3600",
            "release",
            ".",
        ])
        .current_dir(dir));
    let text = String::from_utf8(output.stdout).unwrap();
    let release = Release::parse(&text).unwrap();
    assert_eq!(release.suite.as_deref(), Some("testing"));
    let (date, until) = (release.date.unwrap(), release.valid_until.unwrap());
    assert_eq!(until.unix_seconds() - date.unix_seconds(), 3600);
    assert_eq!(release.sha256.len(), 5, "{text}");
    for entry in &release.sha256 {
        release.verify_file(dir, &entry.path).unwrap();
    }
    for algorithm in HashAlgorithm::ALL {
        assert_eq!(release.checksums(algorithm).len(), 5, "{algorithm:?}");
    }
}

#[test]
fn rfc2822_dates_agree_with_gnu_date() {
    if !have("date") {
        return;
    }
    let dates = [
        "Thu, 01 Jan 1970 00:00:00 UTC",
        "Sat, 10 Jun 2023 09:24:18 UTC",
        "Thu, 29 Feb 2024 23:59:59 GMT",
        "Wed, 01 Mar 2000 12:00:00 +0000",
        "Sun, 22 Nov 2026 08:12:34 UTC",
        "Fri, 31 Dec 2100 00:00:01 UTC",
        "mon, 5 jan 2037 03:14:07 UTC",
    ];
    for text in dates {
        let ours = Timestamp::parse_rfc2822(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(ours.unix_seconds(), gnu_date(text), "{text}");
        let shown = ours.to_string();
        assert_eq!(
            Timestamp::parse_rfc2822(&shown).unwrap(),
            ours,
            "{text} shown as {shown}"
        );
    }
    // `date` also prints the weekday: ours must agree with it.
    for seconds in [0i64, 951_912_000, 1_709_251_199, 4_102_444_800] {
        let ours = Timestamp::from_unix_seconds(seconds).to_string();
        let theirs = run(Command::new("date").args([
            "-u",
            "-d",
            &format!("@{seconds}"),
            "+%a, %d %b %Y %H:%M:%S UTC",
        ]));
        assert_eq!(ours, String::from_utf8(theirs.stdout).unwrap().trim());
    }
}

fn invalid_at(text: &str) -> (usize, usize, String) {
    match Release::parse(text) {
        Err(ReleaseError::Invalid {
            line,
            column,
            message,
            ..
        }) => (line, column, message),
        other => panic!("expected an invalid field in {text:?}, got {other:?}"),
    }
}

#[test]
fn malformed_checksum_lines_point_at_line_and_column() {
    let head = "Origin: Example\nSuite: stable\nSHA256:\n";
    let good = " e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0 main/a\n";
    let cases = [
        // A hash of the wrong length.
        (" e3b0 0 main/b\n", 5, 2, "not a hash"),
        // Not hexadecimal.
        (
            " z3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0 main/b\n",
            5,
            2,
            "not a hash",
        ),
        // A size that is not a number.
        (
            " e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 12k main/b\n",
            5,
            67,
            "not a size",
        ),
        // A size past u64.
        (
            " e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 99999999999999999999 main/b\n",
            5,
            67,
            "not a size",
        ),
        // No path.
        (
            " e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0\n",
            5,
            2,
            "incomplete",
        ),
        // Something after the path.
        (
            " e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0 main/b extra\n",
            5,
            76,
            "after the path",
        ),
        // A path leaving the suite.
        (
            " e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0 ../../etc/shadow\n",
            5,
            69,
            "not a path inside the suite",
        ),
        // The same path twice.
        (good, 5, 69, "listed twice"),
    ];
    for (bad_line, line, column, message) in cases {
        let text = format!("{head}{good}{bad_line}");
        let (l, c, m) = invalid_at(&text);
        assert_eq!((l, c), (line, column), "{bad_line:?}: {m}");
        assert!(m.contains(message), "{bad_line:?}: {m}");
    }
}

#[test]
fn lists_that_disagree_on_a_size_are_refused() {
    let text = "Suite: s\n\
        MD5Sum:\n d41d8cd98f00b204e9800998ecf8427e 0 main/a\n\
        SHA256:\n e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 1 main/a\n";
    let (line, column, message) = invalid_at(text);
    assert_eq!((line, column), (5, 67));
    assert!(message.contains("1 bytes here but 0 bytes"), "{message}");
}

#[test]
fn malformed_fields_point_at_line_and_column() {
    let cases = [
        ("Suite: s\nDate: Sun, 22 Nov 2026 08:12:34 CET\n", 2, 33),
        ("Suite: s\nValid-Until: someday\n", 2, 14),
        ("Acquire-By-Hash: maybe\n", 1, 18),
        (
            "Signed-By: 0123456789ABCDEF0123456789ABCDEF01234567, ABCD\n",
            1,
            54,
        ),
        ("Signed-By:\n", 1, 11),
    ];
    for (text, line, column) in cases {
        let (l, c, m) = invalid_at(text);
        assert_eq!((l, c), (line, column), "{text:?}: {m}");
    }
    // A valid list: spaces or commas, lowercase, a `!` for a subkey.
    let release = Release::parse(
        "Signed-By: 0123456789abcdef0123456789abcdef01234567,\n 89ABCDEF0123456789ABCDEF0123456789ABCDEF!\n",
    )
    .unwrap();
    assert_eq!(
        release.signed_by,
        [
            "0123456789ABCDEF0123456789ABCDEF01234567",
            "89ABCDEF0123456789ABCDEF0123456789ABCDEF!"
        ]
    );
}

#[test]
fn structure_errors() {
    assert!(matches!(
        Release::parse(""),
        Err(ReleaseError::Invalid { line: 1, .. })
    ));
    let (line, _, message) = invalid_at("Suite: a\n\nSuite: b\n");
    assert_eq!(line, 3, "{message}");
    assert!(matches!(
        Release::parse("Suite: a\nnot a field\n"),
        Err(ReleaseError::Syntax(e)) if e.line == 2
    ));
    let (line, _, message) = invalid_at("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n");
    assert_eq!(line, 1);
    assert!(message.contains("clear-signed"), "{message}");
}

// ---------------------------------------------------------------------------
// Clear-signed messages, with the real gpg
// ---------------------------------------------------------------------------

/// A throwaway keyring; its gpg-agent is stopped when it is dropped.
struct Gpg {
    home: tempfile::TempDir,
}

impl Gpg {
    fn new() -> Option<Gpg> {
        if !have("gpg") {
            return None;
        }
        let gpg = Gpg {
            home: tempfile::tempdir().unwrap(),
        };
        run(gpg.command().args([
            "--passphrase",
            "",
            "--quick-gen-key",
            "test@example.org",
            "default",
            "default",
            "never",
        ]));
        Some(gpg)
    }

    fn command(&self) -> Command {
        let mut command = Command::new("gpg");
        command
            .env("GNUPGHOME", self.home.path())
            .args(["--batch", "--quiet"]);
        command
    }

    fn clearsign(&self, text: &[u8]) -> String {
        let input = self.home.path().join("input");
        let output = self.home.path().join("input.asc");
        fs::write(&input, text).unwrap();
        let _ = fs::remove_file(&output);
        run(self
            .command()
            .args(["--yes", "--clearsign", "-o"])
            .arg(&output)
            .arg(&input));
        fs::read_to_string(output).unwrap()
    }

    /// Whether `gpg --verify SIG TEXT` accepts the two parts as files.
    fn verifies(&self, signature: &str, text: &str) -> bool {
        let sig_path = self.home.path().join("part.sig");
        let text_path = self.home.path().join("part.txt");
        fs::write(&sig_path, signature).unwrap();
        fs::write(&text_path, text).unwrap();
        self.command()
            .arg("--verify")
            .arg(&sig_path)
            .arg(&text_path)
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.home.path())
            .args(["--kill", "all"])
            .status();
    }
}

#[test]
fn gpg_clearsigned_release_splits_into_parts_gpg_verifies() {
    let Some(gpg) = Gpg::new() else { return };
    let release_text = fixture_release_text();
    let inrelease = gpg.clearsign(release_text.as_bytes());

    let signed = split_clearsigned(&inrelease).unwrap();
    // The line ending before the signature belongs to the framing.
    assert_eq!(signed.text, release_text.strip_suffix('\n').unwrap());
    assert_eq!(signed.text_first_line, 4);
    assert!(!signed.hashes.is_empty());
    assert!(signed
        .signature
        .starts_with("-----BEGIN PGP SIGNATURE-----\n"));
    assert!(signed.signature.ends_with("-----END PGP SIGNATURE-----\n"));
    assert!(gpg.verifies(signed.signature, &signed.text));
    // The oracle is not vacuous: one changed byte fails.
    let tampered = signed.text.replacen("Suite: stable", "Suite: stablE", 1);
    assert!(!gpg.verifies(signed.signature, &tampered));

    let (from_inrelease, _) = Release::parse_inrelease(&inrelease).unwrap();
    assert_eq!(from_inrelease, Release::parse(&release_text).unwrap());
}

#[test]
fn gpg_dash_escaped_lines_come_back_unescaped() {
    let Some(gpg) = Gpg::new() else { return };
    let original = "First line\n-----BEGIN PGP SIGNATURE-----\n- a list item\n--\n-\ntrailing spaces   \n\nlast line\n";
    let clearsigned = gpg.clearsign(original.as_bytes());
    assert!(clearsigned.contains("\n- -----BEGIN PGP SIGNATURE-----\n"));
    assert!(clearsigned.contains("\n- - a list item\n"));

    let signed = split_clearsigned(&clearsigned).unwrap();
    let expected: Vec<&str> = original
        .strip_suffix('\n')
        .unwrap()
        .split('\n')
        .map(str::trim_end)
        .collect();
    assert_eq!(signed.text, expected.join("\n"));
    assert!(gpg.verifies(signed.signature, &signed.text));
}

#[test]
fn gpg_signed_crlf_message_splits_and_verifies() {
    let Some(gpg) = Gpg::new() else { return };
    let clearsigned = gpg.clearsign(b"Origin: Example\r\nSuite: stable\r\n");
    let signed = split_clearsigned(&clearsigned).unwrap();
    assert_eq!(signed.text, "Origin: Example\nSuite: stable");
    assert!(gpg.verifies(signed.signature, &signed.text));
}

const SIGNATURE: &str =
    "-----BEGIN PGP SIGNATURE-----\n\niQEzBAEBCAAdFiEE\n=abcd\n-----END PGP SIGNATURE-----\n";

fn message(text: &str) -> String {
    format!("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n{text}{SIGNATURE}")
}

fn malformed_line(input: &str) -> usize {
    match split_clearsigned(input) {
        Err(ClearSignedError::Malformed { line, .. }) => line,
        other => panic!("expected a malformed message for {input:?}, got {other:?}"),
    }
}

#[test]
fn clearsigned_framing_is_as_strict_as_apt() {
    assert_eq!(
        split_clearsigned("Suite: stable\n"),
        Err(ClearSignedError::NotClearSigned)
    );
    assert_eq!(split_clearsigned(""), Err(ClearSignedError::NotClearSigned));

    let good = message("Suite: stable\n");
    assert_eq!(split_clearsigned(&good).unwrap().text, "Suite: stable");

    // Anything before BEGIN, even a blank line.
    assert_eq!(malformed_line(&format!("junk\n{good}")), 1);
    assert_eq!(malformed_line(&format!("\n{good}")), 1);
    // Anything after END, even a blank line.
    assert_eq!(malformed_line(&format!("{good}\n")), 10);
    assert_eq!(malformed_line(&format!("{good}Suite: evil\n")), 10);
    // A second BEGIN PGP SIGNED MESSAGE inside the text.
    assert_eq!(
        malformed_line(&message(
            "Suite: stable\n-----BEGIN PGP SIGNED MESSAGE-----\n"
        )),
        5
    );
    // A line starting with a dash that is not escaped.
    assert_eq!(malformed_line(&message("Suite: stable\n-x\n")), 5);
    // Armor headers gpg does not know.
    assert_eq!(
        malformed_line("-----BEGIN PGP SIGNED MESSAGE-----\nComment: hi\n\nx\n"),
        2
    );
    assert_eq!(
        malformed_line("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256, NOPE\n\nx\n"),
        2
    );
    // No blank line after the headers.
    assert_eq!(
        malformed_line("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n"),
        3
    );
    // No signature, or one that is not closed.
    assert_eq!(
        malformed_line("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nSuite: s\n"),
        5
    );
    let unclosed = format!(
        "-----BEGIN PGP SIGNED MESSAGE-----\n\nSuite: s\n{}",
        SIGNATURE.replace("-----END PGP SIGNATURE-----\n", "")
    );
    assert_eq!(malformed_line(&unclosed), 8);
    // Armor lines other than END inside the signature.
    let inner = format!(
        "-----BEGIN PGP SIGNED MESSAGE-----\n\nSuite: s\n-----BEGIN PGP SIGNATURE-----\n-----BEGIN PGP SIGNATURE-----\n{}",
        &SIGNATURE[30..]
    );
    assert_eq!(malformed_line(&inner), 5);
}

#[test]
fn clearsigned_tolerates_what_apt_tolerates() {
    // No Hash header (RFC 9580 drops it), several signature blocks, CRLF
    // line endings and trailing blanks on armor lines.
    let two = format!("-----BEGIN PGP SIGNED MESSAGE-----\n\nSuite: s\n{SIGNATURE}{SIGNATURE}");
    let signed = split_clearsigned(&two).unwrap();
    assert!(signed.hashes.is_empty());
    assert_eq!(signed.signature, format!("{SIGNATURE}{SIGNATURE}"));

    let crlf = message("Suite: s\r\n")
        .replace('\n', "\r\n")
        .replace("\r\r", "\r");
    let signed = split_clearsigned(&crlf).unwrap();
    assert_eq!(signed.text, "Suite: s");
    assert_eq!(signed.hashes, ["SHA512"]);

    let blanks = message("Suite: s\n").replace("-----\n", "-----  \n");
    assert_eq!(split_clearsigned(&blanks).unwrap().text, "Suite: s");

    let no_final_newline = message("Suite: s\n");
    let no_final_newline = no_final_newline.trim_end();
    assert!(split_clearsigned(no_final_newline).is_ok());
}

#[test]
fn inrelease_errors_count_lines_from_the_top_of_the_file() {
    let inrelease = message("Suite: stable\nDate: someday\n");
    let error = Release::parse_inrelease(&inrelease).unwrap_err();
    assert_eq!(error.line(), Some(5), "{error}");
}

// ---------------------------------------------------------------------------
// The real Debian Release files
// ---------------------------------------------------------------------------

#[test]
fn real_debian_release_files_parse_and_match_their_packages() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/debian");
    let Ok(entries) = fs::read_dir(&data) else {
        ferry_testkit::skip!(
            "{} is absent; no real Release files to check",
            data.display()
        );
    };
    let mut releases: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with("-Release"))
        .collect();
    releases.sort();
    assert!(!releases.is_empty(), "no *-Release in {}", data.display());
    let date_oracle = have("date");
    for path in releases {
        let release = Release::read(&path).unwrap_or_else(|e| panic!("{e}"));
        let name = path.file_name().unwrap().to_string_lossy();
        let suite = name.strip_suffix("-Release").unwrap();
        assert_eq!(release.origin.as_deref(), Some("Debian"), "{name}");
        assert!(
            release.codename.as_deref() == Some(suite) || release.suite.as_deref() == Some(suite),
            "{name}"
        );
        assert!(release.components.iter().any(|c| c == "main"), "{name}");
        assert!(release.architectures.iter().any(|a| a == "amd64"), "{name}");
        assert!(release.sha256.len() > 100, "{name}");
        for algorithm in [HashAlgorithm::Md5, HashAlgorithm::Sha256] {
            assert!(!release.checksums(algorithm).is_empty(), "{name}");
        }
        if date_oracle {
            let text = fs::read_to_string(&path).unwrap();
            let paragraph_dates: BTreeMap<&str, &str> = text
                .lines()
                .filter_map(|l| l.split_once(": "))
                .filter(|(k, _)| *k == "Date" || *k == "Valid-Until")
                .collect();
            assert_eq!(
                release.date.map(Timestamp::unix_seconds),
                paragraph_dates.get("Date").map(|d| gnu_date(d)),
                "{name}"
            );
            assert_eq!(
                release.valid_until.map(Timestamp::unix_seconds),
                paragraph_dates.get("Valid-Until").map(|d| gnu_date(d)),
                "{name}"
            );
        }

        let listed = release
            .file("main/binary-amd64/Packages.xz")
            .unwrap_or_else(|| panic!("{name} does not list main/binary-amd64/Packages.xz"));
        assert!(listed.sha256.is_some() && listed.md5.is_some(), "{name}");
        let packages = data.join(format!("{suite}-main-amd64-Packages.xz"));
        if packages.exists() {
            listed
                .verify(&packages)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            println!("{name}: {} matches its SHA256", packages.display());
        } else {
            println!("{name}: no {} beside it", packages.display());
        }
    }
}

// ---------------------------------------------------------------------------
// os-release
// ---------------------------------------------------------------------------

/// What sh makes of each key when it sources `file`.
fn shell_values(file: &Path, keys: &[&str]) -> Vec<String> {
    let mut script = String::from(". \"$1\"\n");
    for key in keys {
        script.push_str(&format!("printf '%s\\0' \"${key}\"\n"));
    }
    let output = run(Command::new("sh").arg("-c").arg(script).arg("sh").arg(file));
    let mut values: Vec<String> = String::from_utf8(output.stdout)
        .unwrap()
        .split('\0')
        .map(str::to_string)
        .collect();
    values.pop();
    values
}

fn assert_agrees_with_sh(file: &Path) -> OsRelease {
    let os = OsRelease::parse(&fs::read_to_string(file).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    if !have("sh") {
        return os;
    }
    let mut keys: Vec<&str> = os.entries().map(|(k, _)| k).collect();
    keys.sort();
    keys.dedup();
    let shell = shell_values(file, &keys);
    for (key, from_shell) in keys.iter().zip(&shell) {
        assert_eq!(os.get(key), Some(from_shell.as_str()), "{key} in {file:?}");
    }
    assert_eq!(shell.len(), keys.len());
    os
}

fn os_fixture(name: &str) -> PathBuf {
    fixtures().join("os-release").join(name)
}

#[test]
fn this_machines_os_release_agrees_with_sh() {
    let os = match OsRelease::read(Path::new("/")) {
        Ok(os) => os,
        Err(OsReleaseError::NotFound { .. }) => {
            ferry_testkit::skip!("this machine has no os-release");
        }
        Err(e) => panic!("{e}"),
    };
    let file = ["/etc/os-release", "/usr/lib/os-release"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists())
        .unwrap();
    assert_eq!(assert_agrees_with_sh(file), os);
    if have("sh") {
        let codename = shell_values(file, &["VERSION_CODENAME"]);
        assert_eq!(os.version_codename().unwrap_or(""), codename[0]);
    }
    assert!(os.id().is_some());
}

#[test]
fn os_release_fixtures_have_typed_fields_and_agree_with_sh() {
    let debian = assert_agrees_with_sh(&os_fixture("debian-12"));
    assert_eq!(debian.id(), Some("debian"));
    assert!(debian.id_like().is_empty());
    assert_eq!(debian.name(), Some("Debian GNU/Linux"));
    assert_eq!(debian.pretty_name(), Some("Debian GNU/Linux 12 (bookworm)"));
    assert_eq!(debian.version_id(), Some("12"));
    assert_eq!(debian.version_codename(), Some("bookworm"));
    assert_eq!(debian.version(), Some("12 (bookworm)"));

    let ubuntu = assert_agrees_with_sh(&os_fixture("ubuntu-24.04"));
    assert_eq!(ubuntu.id(), Some("ubuntu"));
    assert_eq!(ubuntu.id_like(), ["debian"]);
    assert_eq!(ubuntu.version_id(), Some("24.04"));
    assert_eq!(ubuntu.version_codename(), Some("noble"));
    assert_eq!(ubuntu.get("UBUNTU_CODENAME"), Some("noble"));

    let raspios = assert_agrees_with_sh(&os_fixture("raspios-bookworm"));
    assert_eq!(raspios.id(), Some("raspbian"));
    assert_eq!(raspios.id_like(), ["debian"]);
    assert_eq!(raspios.version_codename(), Some("bookworm"));

    let balena = assert_agrees_with_sh(&os_fixture("balenaos"));
    assert_eq!(balena.id(), Some("balena-os"));
    assert_eq!(balena.version_id(), Some("5.3.21"));
    assert_eq!(balena.version_codename(), None);
    assert_eq!(balena.get("SLUG"), Some("raspberrypi4-64"));
    assert_eq!(balena.get("VARIANT_ID"), Some("prod"));

    let quoting = assert_agrees_with_sh(&os_fixture("quoting"));
    assert_eq!(quoting.id_like(), ["rhel", "centos", "fedora"]);
    assert_eq!(quoting.version(), Some(""));
    assert_eq!(quoting.get("REPEATED"), Some("second"));
    assert_eq!(quoting.version_codename(), Some("a b"));
}

#[test]
fn os_release_is_read_inside_the_root_with_fallback() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    assert!(matches!(
        OsRelease::read(root),
        Err(OsReleaseError::NotFound { .. })
    ));

    fs::create_dir_all(root.join("usr/lib")).unwrap();
    fs::copy(os_fixture("ubuntu-24.04"), root.join("usr/lib/os-release")).unwrap();
    assert_eq!(OsRelease::read(root).unwrap().id(), Some("ubuntu"));

    // An absolute link, as some images ship, must stay inside the root and
    // not read this machine's /usr/lib/os-release.
    fs::create_dir_all(root.join("etc")).unwrap();
    std::os::unix::fs::symlink("/usr/lib/os-release", root.join("etc/os-release")).unwrap();
    assert_eq!(OsRelease::read(root).unwrap().id(), Some("ubuntu"));

    // /etc wins over /usr/lib.
    fs::remove_file(root.join("etc/os-release")).unwrap();
    fs::copy(os_fixture("balenaos"), root.join("etc/os-release")).unwrap();
    assert_eq!(OsRelease::read(root).unwrap().id(), Some("balena-os"));

    // Errors name the file.
    fs::write(root.join("etc/os-release"), "ID=ok\nNAME=two words\n").unwrap();
    match OsRelease::read(root) {
        Err(OsReleaseError::Syntax { path, source }) => {
            assert_eq!(path, root.join("etc/os-release"));
            assert_eq!((source.line, source.column), (2, 10));
        }
        other => panic!("expected a syntax error, got {other:?}"),
    }

    // A symlink loop is an error, not a hang.
    fs::remove_file(root.join("etc/os-release")).unwrap();
    std::os::unix::fs::symlink("os-release", root.join("etc/os-release")).unwrap();
    assert!(matches!(
        OsRelease::read(root),
        Err(OsReleaseError::Io { .. })
    ));
}

// ---------------------------------------------------------------------------
// Totality
// ---------------------------------------------------------------------------

/// The three entry points are fuzzed elsewhere; this keeps a quick,
/// seeded run of mutated real inputs in the ordinary test suite so that a
/// panic shows up without a fuzzer.
#[test]
fn parsers_never_panic_on_mutated_input() {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    let release = fixture_release_text();
    let inrelease = message(&release);
    let os_release = fs::read_to_string(os_fixture("quoting")).unwrap();
    let seeds = [release, inrelease, os_release];
    let alphabet: &[u8] = b" \t\n\r-:=\"'\\$`#,!/.0123456789abcdefABCDEF";
    let mut rng = StdRng::seed_from_u64(0x5eed);
    for round in 0..6000 {
        let mut bytes = seeds[round % seeds.len()].clone().into_bytes();
        for _ in 0..rng.gen_range(1..6) {
            let at = rng.gen_range(0..=bytes.len());
            match rng.gen_range(0..4) {
                0 if at < bytes.len() => bytes[at] = alphabet[rng.gen_range(0..alphabet.len())],
                1 if at < bytes.len() => {
                    bytes.remove(at);
                }
                2 => bytes.insert(at, alphabet[rng.gen_range(0..alphabet.len())]),
                _ => bytes.truncate(at),
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        let _ = Release::parse(&text);
        let _ = Release::parse_inrelease(&text);
        let _ = split_clearsigned(&text);
        let _ = OsRelease::parse(&text);
    }
}
