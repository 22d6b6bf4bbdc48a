//! `ferry release upgrade` end to end, on a real Debian 12 minbase chroot
//! upgraded to Debian 13 from the Debian mirror this host uses (read from
//! its apt configuration), with a meta-release index and a signed bundle
//! served on 127.0.0.1, and a local repository carrying a newer `ferry`
//! package so the run continues under the new binary.
//!
//! - `upgrade_to_trixie_and_back_offline`: `release check` offers trixie,
//!   `--dry-run` changes nothing, `upgrade --yes` (over a session that
//!   hangs up and stops reading) leaves os-release at 13, `dpkg --audit`
//!   clean, the demoted package gone and the journal showing the new ferry
//!   driving the run; then, with every server stopped and no network at all,
//!   `ferry rollback` brings back bookworm's exact package set and
//!   `/etc/apt`.
//! - `refusals_and_failures_leave_bookworm`: an Essential package in the
//!   demoted list, a suite that does not exist, a tampered bundle and an
//!   index offering only older releases change nothing; a target that fails
//!   verification after ferry upgraded itself — in a run cut off after the
//!   download and resumed — is rolled back (old sources, old ferry) with
//!   exit 4, and `apt-get update` works as before.
//!
//! Needs root, mmdebstrap, gpg and the mirror; skipped with a message
//! otherwise. `FERRY_BENCH_RELEASE_UPGRADE=1` also times plain
//! `apt-get full-upgrade` on the same chroot (bench/release-upgrade.sh).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use ferry_testkit::{deb, host_mirror, skip_unless, Chroot, FileServer, Need, Repo, Signer};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const FERRY: &str = env!("CARGO_BIN_EXE_ferry");
const OLD_FERRY: &str = "0.0.1-1";
const NEW_FERRY: &str = "99.0-1";

/// The ferry binary without its debug sections: what a package ships.
fn stripped_ferry(dir: &Path) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let out = dir.join("ferry");
    let status = Command::new("strip")
        .arg("-o")
        .arg(&out)
        .arg(FERRY)
        .status()?;
    if !status.success() {
        std::fs::copy(FERRY, &out)?;
    }
    Ok(std::fs::read(out)?)
}

fn ferry_package(version: &str, binary: &[u8]) -> ferry_testkit::DebBuilder {
    deb("ferry", version)
        .executable("/usr/bin/ferry", binary)
        .field("Description", "ferry, packaged for the test")
}

/// A bookworm system with ferry and a soon-demoted tool installed from a
/// local repository, and what the bundles need: the signing key, the
/// repository carrying the newer ferry, a publisher directory served on
/// 127.0.0.1 and the release configuration pointing at it.
struct World {
    sys: Chroot,
    publisher: tempfile::TempDir,
    index_server: Option<FileServer>,
    old_repo: Option<ferry_testkit::ServedRepo>,
    new_repo: Option<ferry_testkit::ServedRepo>,
    signer: Signer,
    mirror: String,
}

impl World {
    fn new() -> Result<World, Box<dyn std::error::Error>> {
        let sys = Chroot::minbase("bookworm")?.with_ferry_bin(FERRY);
        let scratch = tempfile::tempdir()?;
        let binary = stripped_ferry(scratch.path())?;
        let signer = Signer::new("ferry-local")?;
        let old_repo = Repo::new("local")
            .suite("bookworm-local")
            .key(&signer)
            .package(ferry_package(OLD_FERRY, &binary))
            .package(deb("legacy-tool", "1.0").file("/usr/share/legacy-tool/README", "old\n"))
            .serve()?;
        let new_repo = Repo::new("local")
            .suite("trixie-local")
            .key(&signer)
            .package(ferry_package(NEW_FERRY, &binary))
            .serve()?;
        sys.add_source(&old_repo, "local")?;
        sys.run_ok(["apt-get", "-q", "update"])?;
        sys.run_ok(["apt-get", "-y", "-q", "install", "ferry", "legacy-tool"])?;
        let publisher = tempfile::tempdir()?;
        let index_server = FileServer::serve_dir(publisher.path())?;
        sys.write_file(
            "/etc/ferry/release-keyring.gpg",
            std::fs::read(signer.keyring_path())?,
        )?;
        sys.write_file(
            "/etc/ferry/release.toml",
            format!(
                "meta_release = \"{}meta-release\"\nkeyring = \"/etc/ferry/release-keyring.gpg\"\n",
                index_server.uri()
            ),
        )?;
        Ok(World {
            sys,
            publisher,
            index_server: Some(index_server),
            old_repo: Some(old_repo),
            new_repo: Some(new_repo),
            signer,
            mirror: host_mirror("trixie")?,
        })
    }

    fn new_repo_uri(&self) -> String {
        self.new_repo.as_ref().map(|r| r.uri()).unwrap_or_default()
    }

    /// The bundle's sources: the Debian mirror at `suites`, and the local
    /// repository with the newer ferry.
    fn sources(&self, suites: &str) -> Vec<(String, String)> {
        vec![
            (
                "debian.sources".into(),
                format!(
                    "Types: deb\nURIs: {}\nSuites: {suites}\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n",
                    self.mirror
                ),
            ),
            (
                "local.sources".into(),
                format!(
                    "Types: deb\nURIs: {}\nSuites: trixie-local\nComponents: main\nSigned-By: /etc/apt/keyrings/local.gpg\n",
                    self.new_repo_uri()
                ),
            ),
        ]
    }

    /// Builds and signs a bundle with `ferry release bundle` and publishes
    /// it with an index offering `target` (trixie, 13) after bookworm.
    fn publish(&self, sources: &[(String, String)], demoted: &str) -> TestResult {
        let dir = tempfile::tempdir()?;
        for (name, text) in sources {
            std::fs::write(dir.path().join(name), text)?;
        }
        std::fs::write(dir.path().join("demoted.cfg"), demoted)?;
        let bundle = self.publisher.path().join("trixie.tar.xz");
        let built = Command::new(FERRY)
            .args(["--json", "release", "bundle"])
            .arg(dir.path())
            .arg("--gnupghome")
            .arg(self.signer.home())
            .arg("-o")
            .arg(&bundle)
            .output()?;
        assert!(
            built.status.success(),
            "ferry release bundle: {}",
            String::from_utf8_lossy(&built.stderr)
        );
        let fields: serde_json::Value = serde_json::from_slice(&built.stdout)?;
        self.write_index(&format!(
            "{}\n{}Bundle: trixie.tar.xz\nBundle-Size: {}\nBundle-SHA256: {}\n",
            paragraph("bookworm", "12", "Sat, 10 Jun 2023 00:00:00 UTC"),
            paragraph("trixie", "13", "Sat, 09 Aug 2025 00:00:00 UTC"),
            fields["size"],
            fields["sha256"].as_str().unwrap_or_default()
        ))
    }

    fn write_index(&self, text: &str) -> TestResult {
        std::fs::write(self.publisher.path().join("meta-release"), text)?;
        Ok(())
    }

    fn os_release(&self, key: &str) -> String {
        let text = String::from_utf8_lossy(
            &self
                .sys
                .read_file("/usr/lib/os-release")
                .unwrap_or_default(),
        )
        .into_owned();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or("")
            .trim_matches('"')
            .to_string()
    }

    /// The journal of the only migration under the root.
    fn journal(&self) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
        let state = self.sys.host_path("/var/lib/ferry");
        let mut journals = Vec::new();
        for entry in std::fs::read_dir(state)? {
            let path = entry?.path().join("state.json");
            if path.is_file() {
                journals.push(serde_json::from_slice::<serde_json::Value>(
                    &std::fs::read(path)?,
                )?);
            }
        }
        assert_eq!(journals.len(), 1, "one migration: {journals:?}");
        Ok(journals.remove(0))
    }

    /// Stops every HTTP server of the test.
    fn stop_servers(&mut self) {
        self.index_server = None;
        self.old_repo = None;
        self.new_repo = None;
    }
}

fn paragraph(dist: &str, version: &str, date: &str) -> String {
    format!("Dist: {dist}\nName: Debian {version}\nVersion: {version}\nDate: {date}\nSupported: 1\nDescription: Debian {version} ({dist})\n")
}

/// How long each step of a journal took, `step=seconds`, for the figures:
/// the journal's wall time in milliseconds, or whole seconds from its
/// start and end times when it has none.
fn step_seconds(journal: &serde_json::Value) -> String {
    journal["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let took = match r["wall_ms"].as_u64() {
                Some(ms) => ms as f64 / 1000.0,
                None => r["finished"]
                    .as_u64()
                    .unwrap_or(0)
                    .saturating_sub(r["started"].as_u64().unwrap_or(0))
                    as f64,
            };
            format!("{}={took:.2}", r["step"].as_str().unwrap_or("?"))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn dir_size(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

#[test]
fn upgrade_to_trixie_and_back_offline() -> TestResult {
    skip_unless!(Need::Chroots, Need::Tool("strip"));
    let mut world = World::new()?;
    let sys = &world.sys;
    world.publish(&world.sources("trixie"), "# gone in 13\nlegacy-tool\n")?;

    sys.ferry(["release", "check"]).success().prints("trixie");
    let before = sys.snapshot()?;
    let dry = sys.ferry(["release", "upgrade", "--dry-run"]);
    dry.success().prints("upgrade").prints("legacy-tool");
    sys.snapshot()?.assert_unchanged_from(&before);
    assert!(
        !sys.host_path("/var/lib/ferry").exists()
            || std::fs::read_dir(sys.host_path("/var/lib/ferry"))?.count() == 0,
        "a dry run starts no migration"
    );

    // The session drops mid-run: nobody reads the output any more and a
    // hangup arrives. The upgrade must go on to the end regardless.
    let started = Instant::now();
    let mut child = Command::new(FERRY)
        .arg("--root")
        .arg(sys.path())
        .args(["release", "upgrade", "--yes"])
        .env("SSH_CONNECTION", "192.0.2.1 50000 192.0.2.2 22")
        .current_dir(sys.workdir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let mut seen = Vec::new();
    for line in BufReader::new(stderr).lines() {
        let line = line?;
        let at_backup = line.contains("==> backup");
        seen.push(line);
        if at_backup {
            break;
        }
    }
    assert!(
        seen.iter().any(|l| l.contains("SSH")),
        "warns about SSH: {seen:?}"
    );
    // In a pipe: a plain line for the planning, then one per step.
    let planning = seen.iter().position(|l| l.starts_with("planning `"));
    let preflight = seen.iter().position(|l| l == "==> preflight (1 of 9)");
    assert!(
        planning.is_some() && planning < preflight,
        "plain progress: {seen:?}"
    );
    assert_eq!(seen.last().map(String::as_str), Some("==> backup (2 of 9)"));
    drop(child.stdout.take());
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGHUP);
    }
    let status = child.wait()?;
    let ferry_seconds = started.elapsed().as_secs_f64();
    let journal = world.journal()?;
    assert!(
        status.success(),
        "upgrade exit {status}; journal: {journal:#}"
    );

    assert_eq!(world.os_release("VERSION_ID"), "13");
    assert_eq!(world.os_release("VERSION_CODENAME"), "trixie");
    let audit = sys.run_ok(["dpkg", "--audit"])?;
    assert!(audit.trim().is_empty(), "dpkg --audit: {audit}");
    assert_eq!(sys.installed("legacy-tool")?, None, "demoted package gone");
    assert_eq!(sys.installed("ferry")?.as_deref(), Some(NEW_FERRY));
    assert_eq!(journal["outcome"], "succeeded");
    let drivers = journal["drivers"].as_array().ok_or("no drivers")?;
    assert_eq!(
        drivers.len(),
        2,
        "one restart after the self-upgrade: {drivers:?}"
    );
    assert_eq!(drivers[0]["package_version"], OLD_FERRY);
    assert_eq!(drivers[1]["package_version"], NEW_FERRY);
    assert_eq!(
        PathBuf::from(drivers[1]["executable"].as_str().unwrap_or_default()),
        sys.host_path("/usr/bin/ferry").canonicalize()?
    );
    let id = journal["id"].as_str().unwrap_or_default().to_string();
    let backup_bytes = dir_size(&sys.host_path(&format!("/var/backups/ferry/{id}")));
    let events =
        String::from_utf8_lossy(&sys.read_file("/var/log/ferry/events.jsonl")?).into_owned();
    for state in ["INI", "OK", "END", "CMDLOG", "SUCCESS"] {
        assert!(
            events.contains(&format!("\"{state}\"")),
            "events have {state}"
        );
    }
    sys.ferry(["status"]).success().prints("succeeded");

    // Back to bookworm with no server and no network at all.
    world.stop_servers();
    let sys = &world.sys;
    let rollback_started = Instant::now();
    let back = Command::new("unshare")
        .arg("--net")
        .arg(FERRY)
        .arg("--root")
        .arg(sys.path())
        .args(["--json", "rollback", "--yes"])
        .output()?;
    assert!(
        back.status.success(),
        "offline rollback: {}\n{}",
        String::from_utf8_lossy(&back.stdout),
        String::from_utf8_lossy(&back.stderr)
    );
    let rollback_seconds = rollback_started.elapsed().as_secs_f64();
    sys.snapshot()?.assert_unchanged_from(&before);
    assert_eq!(world.os_release("VERSION_ID"), "12");
    assert_eq!(sys.installed("ferry")?.as_deref(), Some(OLD_FERRY));
    assert_eq!(sys.installed("legacy-tool")?.as_deref(), Some("1.0"));
    let audit = sys.run_ok(["dpkg", "--audit"])?;
    assert!(
        audit.trim().is_empty(),
        "dpkg --audit after rollback: {audit}"
    );

    eprintln!(
        "figures: ferry release upgrade bookworm -> trixie {ferry_seconds:.1} s, backup {:.1} MiB",
        backup_bytes as f64 / f64::from(1 << 20)
    );
    eprintln!("figures: steps {}", step_seconds(&journal));
    eprintln!("figures: offline rollback to bookworm {rollback_seconds:.1} s");
    if std::env::var_os("FERRY_BENCH_RELEASE_UPGRADE").is_some() {
        plain_apt_upgrade(&world)?;
    }
    Ok(())
}

/// The peer: the same upgrade by hand with apt alone, on the rolled-back
/// chroot (no backup, no checks, no self-upgrade).
fn plain_apt_upgrade(world: &World) -> TestResult {
    let sys = &world.sys;
    sys.write_file("/etc/apt/sources.list", "")?;
    let (_, text) = &world.sources("trixie")[0];
    sys.write_file("/etc/apt/sources.list.d/debian.sources", text)?;
    let started = Instant::now();
    sys.run_ok(["apt-get", "-q", "update"])?;
    let update_seconds = started.elapsed().as_secs_f64();
    sys.run_ok([
        "apt-get",
        "-y",
        "-q",
        "-o",
        "Dpkg::Options::=--force-confdef",
        "-o",
        "Dpkg::Options::=--force-confold",
        "full-upgrade",
    ])?;
    let apt_seconds = started.elapsed().as_secs_f64();
    assert_eq!(world.os_release("VERSION_ID"), "13");
    eprintln!("figures: apt-get update + full-upgrade bookworm -> trixie {apt_seconds:.1} s");
    eprintln!(
        "figures: apt steps update={update_seconds:.2} full-upgrade={:.2}",
        apt_seconds - update_seconds
    );
    Ok(())
}

#[test]
fn refusals_and_failures_leave_bookworm() -> TestResult {
    skip_unless!(Need::Chroots, Need::Tool("strip"));
    let world = World::new()?;
    let sys = &world.sys;
    let before = sys.snapshot()?;
    let unchanged = |what: &str| -> TestResult {
        sys.snapshot()?.assert_unchanged_from(&before);
        assert_eq!(world.os_release("VERSION_ID"), "12", "{what}");
        Ok(())
    };

    // An Essential package in the demoted list blocks the plan.
    world.publish(&world.sources("trixie"), "legacy-tool\nbase-files\n")?;
    sys.ferry(["release", "upgrade", "--yes"])
        .failure(3)
        .prints("remove-essential:base-files");
    unchanged("essential demoted")?;

    // A suite the mirror does not have: the target is named as unanswered.
    world.publish(&world.sources("no-such-suite"), "")?;
    sys.ferry(["release", "upgrade", "--yes"])
        .failure(3)
        .prints("target-unreachable:")
        .prints("/dists/no-such-suite");
    unchanged("missing suite")?;

    // A tampered bundle is refused before anything else.
    world.publish(&world.sources("trixie"), "")?;
    let bundle = world.publisher.path().join("trixie.tar.xz");
    let mut bytes = std::fs::read(&bundle)?;
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&bundle, bytes)?;
    let tampered = sys.ferry(["release", "upgrade", "--yes"]);
    tampered.failure(2);
    unchanged("tampered bundle")?;

    // An index that offers only older releases: up to date, exit 1.
    world.write_index(&format!(
        "{}\n{}",
        paragraph("bullseye", "11", "Sat, 14 Aug 2021 00:00:00 UTC"),
        paragraph("bookworm", "12", "Sat, 10 Jun 2023 00:00:00 UTC")
    ))?;
    sys.ferry(["release", "upgrade", "--yes"])
        .failure(1)
        .prints("Up to date");
    unchanged("older release")?;

    // The bundle names bookworm again although the index says trixie:
    // ferry upgrades itself, the verification of os-release fails, and the
    // rollback restores the old sources and the old ferry.
    // The power goes after the download; the resumed run upgrades ferry,
    // restarts under it, fails verification and rolls back.
    world.publish(&world.sources("bookworm"), "legacy-tool\n")?;
    sys.ferry_env(
        &[("FERRY_TEST_STOP_AFTER", "download")],
        ["release", "upgrade", "--yes"],
    )
    .failure(137);
    sys.ferry(["status"]).success().prints("in progress");
    sys.ferry(["release", "upgrade", "--yes"])
        .failure(3)
        .prints("interrupted");
    let failed = sys.ferry(["run", "--resume", "--yes", "--json"]);
    failed.failure(4);
    let report = failed.stdout_json()?;
    assert_eq!(report["outcome"], "rolled-back", "{report:#}");
    assert_eq!(report["step"], "verify", "{report:#}");
    // Under --json stderr is progress events alone, across the restart
    // under the new ferry: the failed step, then the rollback.
    let events: Vec<serde_json::Value> = failed
        .stderr
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let states: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e["state"] != "running")
        .map(|e| {
            (
                e["progress"].as_str().unwrap_or("?"),
                e["state"].as_str().unwrap_or("?"),
            )
        })
        .collect();
    assert!(
        states.ends_with(&[
            ("verify", "start"),
            ("verify", "failed"),
            ("rolling back from the backup", "start"),
            ("rolling back from the backup", "done"),
        ]),
        "{states:?}"
    );
    assert!(states.contains(&("self-upgrade", "done")), "{states:?}");
    let journal = world.journal()?;
    let drivers = journal["drivers"].as_array().ok_or("no drivers")?;
    assert_eq!(
        drivers.last().map(|d| &d["package_version"]),
        Some(&NEW_FERRY.into())
    );
    assert_eq!(sys.installed("ferry")?.as_deref(), Some(OLD_FERRY));
    unchanged("failed verification")?;
    let update = sys.run(["apt-get", "-q", "update"]);
    update.success();
    assert!(!update.stdout.contains("E:") && !update.stderr.contains("E:"));
    Ok(())
}
