//! The pre-flight checks of a plan that look at the system and the target
//! repository rather than at the transaction: OS and kernel versions,
//! required commands, pending dpkg work, the native architecture, packages
//! no repository carries, the new repository's Release identity, and the
//! space apt will need.
//!
//! Each check returns findings (stable key, finding, remediation); none of
//! them changes anything.

use std::collections::{BTreeMap, HashMap};

use std::path::{Path, PathBuf};

use ferry_deb::os_release::OsRelease;
use ferry_deb::package::{parse_binary_packages, RelationFields};
use ferry_deb::release::{split_clearsigned, Release};
use ferry_deb::VersionRef;

use crate::apt::Transaction;
use crate::finding::{Finding, FindingKey, ReleaseField, Severity};
use crate::profile::{Profile, VersionRequirement};
use crate::space::{free_bytes, SpaceCheck};
use crate::system::SystemRoot;

fn blocker(key: FindingKey, finding: impl Into<String>, remediation: impl Into<String>) -> Finding {
    Finding::new(key, Severity::Blocker, finding, remediation)
}

/// The checks of the profile's `[checks]` and the system's own health.
pub fn system_checks(system: &SystemRoot, profile: &Profile) -> Vec<Finding> {
    let mut findings = Vec::new();
    let checks = &profile.checks;
    match OsRelease::read(system.path()) {
        Ok(os) => {
            let id = os.id().unwrap_or("linux").to_string();
            let like = os.id_like();
            if !checks.os_ids.is_empty()
                && !checks
                    .os_ids
                    .iter()
                    .any(|wanted| *wanted == id || like.contains(&wanted.as_str()))
            {
                findings.push(blocker(
                    FindingKey::OsId,
                    format!(
                        "this system is `{id}`; the profile is for {}",
                        checks.os_ids.join(", ")
                    ),
                    "use a profile written for this operating system",
                ));
            }
            if let Some(requirement) = &checks.os_version {
                findings.extend(version_check(
                    FindingKey::OsVersion,
                    "the OS version (VERSION_ID)",
                    os.version_id(),
                    requirement,
                    "upgrade the release first, or use a profile for this release",
                ));
            }
        }
        Err(e) if !checks.os_ids.is_empty() || checks.os_version.is_some() => {
            findings.push(blocker(
                FindingKey::OsRelease,
                format!("cannot read os-release: {e}"),
                "the profile checks the OS; make /etc/os-release readable",
            ))
        }
        Err(_) => {}
    }
    if let Some(requirement) = &checks.kernel {
        let release = kernel_release();
        let numeric = release.as_deref().map(|r| {
            r.split(|c: char| !(c.is_ascii_digit() || c == '.'))
                .next()
                .unwrap_or(r)
        });
        findings.extend(version_check(
            FindingKey::KernelVersion,
            "the running kernel",
            numeric,
            requirement,
            "boot a kernel the profile supports",
        ));
    }
    for command in &checks.commands {
        if !has_command(system, command) {
            findings.push(blocker(
                FindingKey::MissingCommand(command.clone()),
                format!("the command `{command}` is not installed"),
                format!("install the package that provides `{command}`"),
            ));
        }
    }
    if let Some(audit) = dpkg_audit(system) {
        findings.push(blocker(
            FindingKey::DpkgAudit,
            format!(
                "dpkg has unfinished work: {}",
                audit.lines().next().unwrap_or("")
            ),
            "finish it first: dpkg --configure -a, then apt-get -f install",
        ));
    }
    if let Err(e) = system.architectures() {
        // Every package apt and the installability check consider depends
        // on it; the host's architecture is no answer for another root.
        findings.push(blocker(
            FindingKey::NativeArchitecture,
            format!("the system's native architecture cannot be known: {e}"),
            "repair dpkg's database so that it lists the installed dpkg package (dpkg keeps copies of its status in /var/backups/dpkg.status.*)",
        ));
    }
    findings.extend(obsolete_packages(system));
    let asked: Vec<&str> = profile
        .remove
        .iter()
        .map(|p| p.as_str())
        .chain(profile.replace.iter().map(|r| r.from.as_str()))
        .collect();
    findings.extend(essential_removals(system, &asked));
    findings
}

/// A removal (asked by the profile — a demoted package, a replaced one —
/// or computed by apt) that names an Essential package: dpkg's base would
/// go, so the plan blocks.
pub fn essential_removals(system: &SystemRoot, asked: &[&str]) -> Vec<Finding> {
    if asked.is_empty() {
        return Vec::new();
    }
    let Ok(status) = system.dpkg_status() else {
        return Vec::new();
    };
    let Ok(packages) = status.installed(RelationFields::Installability) else {
        return Vec::new();
    };
    let mut essential: Vec<&str> = packages
        .iter()
        .filter(|p| p.essential && asked.contains(&p.name))
        .map(|p| p.name)
        .collect();
    essential.sort_unstable();
    essential.dedup();
    essential
        .into_iter()
        .map(|name| {
            blocker(
                FindingKey::RemoveEssential(name.to_string()),
                format!("`{name}` is Essential: removing it could leave the system unable to run dpkg or boot"),
                format!("take `{name}` off the removals (demoted.cfg or the profile); an Essential package is replaced by the upgrade, not removed"),
            )
        })
        .collect()
}

fn version_check(
    key: FindingKey,
    what: &str,
    actual: Option<&str>,
    requirement: &VersionRequirement,
    remediation: &str,
) -> Option<Finding> {
    let holds = actual
        .and_then(|a| VersionRef::split(a).ok())
        .is_some_and(|v| requirement.allows(&v));
    (!holds).then(|| {
        blocker(
            key,
            format!(
                "{what} is {}; the profile needs {requirement}",
                actual.unwrap_or("unknown")
            ),
            remediation,
        )
    })
}

fn kernel_release() -> Option<String> {
    // SAFETY: uname fills the zeroed struct we own.
    let mut name: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: as above; the release field is NUL-terminated by the kernel.
    if unsafe { libc::uname(&mut name) } != 0 {
        return None;
    }
    // SAFETY: the kernel NUL-terminates utsname fields.
    let release = unsafe { std::ffi::CStr::from_ptr(name.release.as_ptr()) };
    Some(release.to_string_lossy().into_owned())
}

fn has_command(system: &SystemRoot, command: &str) -> bool {
    !command.contains('/')
        && [
            "usr/local/sbin",
            "usr/local/bin",
            "usr/sbin",
            "usr/bin",
            "sbin",
            "bin",
        ]
        .iter()
        .any(|dir| system.host_path(dir).join(command).is_file())
}

/// What `dpkg --audit` reports, when it reports anything.
fn dpkg_audit(system: &SystemRoot) -> Option<String> {
    // The host's dpkg on the root's database: a root's own dpkg may not
    // run here (another architecture), and auditing needs no privilege.
    let mut command = std::process::Command::new("dpkg");
    if !system.is_host() {
        command.arg(format!("--root={}", system.path().display()));
    }
    let output = command.arg("--audit").env("LC_ALL", "C").output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout).trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// Installed packages whose installed version no configured repository
/// offers (foreign or obsolete): they cannot be reinstalled from anywhere.
/// One finding for them all, with the count and the list: a real device
/// has a hundred, and a hundred lines hide the findings that matter. With
/// no lists at all, one finding saying so instead of one per package.
fn obsolete_packages(system: &SystemRoot) -> Vec<Finding> {
    let available = available_versions(&system.lists_dir());
    if available.is_empty() {
        return vec![Finding::new(
            FindingKey::AptLists,
            Severity::Warning,
            format!(
                "apt has no package lists in {}: which installed packages a repository \
                 offers cannot be known",
                system.lists_dir().display()
            ),
            "run `apt-get update` as root, then plan again",
        )];
    }
    let Ok(installed) = crate::snapshot::installed_packages(system) else {
        return Vec::new();
    };
    let mut packages: Vec<String> = installed
        .iter()
        .filter(|(key, p)| {
            let name = key.split(':').next().unwrap_or(key);
            !available
                .get(name)
                .is_some_and(|versions| versions.iter().any(|v| v.0 == p.version))
        })
        .map(|(key, p)| format!("{key} {}", p.version))
        .collect();
    packages.sort();
    if packages.is_empty() {
        return Vec::new();
    }
    let what = match packages.as_slice() {
        [one] => format!("{one} is installed but no configured repository offers that version"),
        many => format!(
            "{} installed packages are at versions no configured repository offers",
            many.len()
        ),
    };
    let mut finding = Finding::new(
        FindingKey::NotFromRepositories,
        Severity::Warning,
        what,
        "ferry keeps a rebuilt .deb of each in the backup when the migration touches it",
    );
    finding.packages = packages;
    vec![finding]
}

/// Installed packages that a current repository offers, that the
/// transaction keeps, and that no target repository offers in any version:
/// the migration would strand them (nothing could reinstall or upgrade
/// them). Packages no current repository offers are not the migration's
/// doing (see `not-from-a-repository`).
pub fn missing_in_target(
    system: &SystemRoot,
    target_lists: &Path,
    installed: &BTreeMap<String, crate::snapshot::InstalledPackage>,
    transaction: &Transaction,
    profile: &Profile,
) -> Vec<Finding> {
    let target = available_versions(target_lists);
    let current = available_versions(&system.lists_dir());
    if target.is_empty() {
        return Vec::new();
    }
    let leaving: std::collections::BTreeSet<&str> = transaction
        .remove
        .iter()
        .map(|c| c.name.as_str())
        .chain(profile.remove.iter().map(|p| p.as_str()))
        .chain(profile.replace.iter().map(|r| r.from.as_str()))
        .collect();
    let mut names: Vec<&str> = installed
        .keys()
        .map(|k| k.split(':').next().unwrap_or(k))
        .collect();
    names.dedup();
    names
        .into_iter()
        .filter(|name| current.contains_key(*name) && !leaving.contains(name) && !target.contains_key(*name))
        .map(|name| {
            blocker(
                FindingKey::NoVersionInTarget(name.to_string()),
                format!("{name} is installed, and no repository of the target sources offers it"),
                // A release upgrade's removals come from its bundle's
                // demoted.cfg; a profile's from its [packages] remove.
                if profile.allow_removals {
                    format!("add {name} to the bundle's demoted.cfg, or publish it in the new release")
                } else {
                    format!("add {name} to [packages] remove in the profile, or publish it in the new repository")
                },
            )
        })
        .collect()
}

/// Installed packages that stay but that no version of could be installed
/// with the target sources (ferry-solve, the engine of `ferry check
/// --installed`): the dependency-level half of the gate, with the reason.
/// Nothing when the system's architectures cannot be known: that is its
/// own blocker (`native-architecture`, from `system_checks`).
pub fn uninstallable_in_target(
    system: &SystemRoot,
    target_lists: &Path,
    profile: &Profile,
) -> Vec<Finding> {
    let mut texts = Vec::new();
    if let Ok(entries) = std::fs::read_dir(target_lists) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().contains("_Packages") {
                if let Ok(text) = ferry_deb::index::read_to_string(&entry.path()) {
                    texts.push(text);
                }
            }
        }
    }
    let Ok(architectures) = system.architectures() else {
        return Vec::new();
    };
    let Ok(status) = system.dpkg_status() else {
        return Vec::new();
    };
    let fields = RelationFields::Installability;
    let mut packages = Vec::new();
    for text in &texts {
        if let Ok(parsed) = ferry_deb::package::parse_binary_packages_with(text, fields) {
            packages.extend(parsed);
        }
    }
    // Only what the profile removes is meant to go: a package apt would
    // drop unasked is exactly what this check must explain.
    let leaving: std::collections::BTreeSet<&str> = profile
        .remove
        .iter()
        .map(|p| p.as_str())
        .chain(profile.replace.iter().map(|r| r.from.as_str()))
        .collect();
    let Ok(status_packages) = status.installed(fields) else {
        return Vec::new();
    };
    // What the migration removes is gone afterwards: it neither needs a
    // version nor can it satisfy anything from its installed copy.
    let installed = ferry_solve::add_installed(&mut packages, status_packages, |name| {
        leaving.contains(name)
    });
    let universe = architectures.universe(&packages);
    ferry_solve::check_installed(&universe, &installed, true)
        .into_iter()
        .filter(|r| r.status.is_broken())
        .map(|r| {
            let why = r.reasons.first().map(ToString::to_string).unwrap_or_default();
            blocker(
                FindingKey::UninstallableInTarget(r.package.package.clone()),
                format!("{} {} could not stay installed with the target sources: {why}", r.package.package, r.package.version),
                format!(
                    "add {} to [packages] remove or replace, or publish what it needs in the new repository",
                    r.package.package
                ),
            )
        })
        .collect()
}

/// Versions offered by the Packages lists in `lists`: name → [(version,
/// Size, Installed-Size in KiB)].
pub fn available_versions(lists: &Path) -> HashMap<String, Vec<(String, u64, u64)>> {
    let mut out: HashMap<String, Vec<(String, u64, u64)>> = HashMap::new();
    let Ok(entries) = std::fs::read_dir(lists) else {
        return out;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.contains("_Packages") {
            continue;
        }
        let Ok(text) = ferry_deb::index::read_to_string(&entry.path()) else {
            continue;
        };
        let Ok(packages) = parse_binary_packages(&text) else {
            continue;
        };
        for p in packages {
            out.entry(p.name.to_string()).or_default().push((
                p.version.to_string(),
                p.size.unwrap_or(0),
                p.installed_size_kib.unwrap_or(0),
            ));
        }
    }
    out
}

/// Download and installed-size figures of a transaction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sizes {
    pub download_bytes: u64,
    pub installed_delta_bytes: i64,
}

pub fn transaction_sizes(
    target_lists: &Path,
    transaction: &Transaction,
    system: &SystemRoot,
) -> Sizes {
    let target = available_versions(target_lists);
    let installed_sizes = installed_sizes(system);
    let mut sizes = Sizes::default();
    let incoming = transaction
        .install
        .iter()
        .chain(&transaction.upgrade)
        .chain(&transaction.downgrade)
        .chain(&transaction.reinstall);
    for change in incoming {
        let offered = target.get(&change.name).and_then(|versions| {
            versions
                .iter()
                .find(|v| Some(&v.0) == change.new_version.as_ref())
        });
        if let Some((_, size, installed_kib)) = offered {
            sizes.download_bytes += size;
            sizes.installed_delta_bytes += (*installed_kib as i64) * 1024;
        }
        if change.old_version.is_some() {
            sizes.installed_delta_bytes -=
                installed_sizes.get(&change.name).copied().unwrap_or(0) as i64 * 1024;
        }
    }
    for change in &transaction.remove {
        sizes.installed_delta_bytes -=
            installed_sizes.get(&change.name).copied().unwrap_or(0) as i64 * 1024;
    }
    sizes
}

fn installed_sizes(system: &SystemRoot) -> HashMap<String, u64> {
    let Ok(status) = system.dpkg_status() else {
        return HashMap::new();
    };
    status
        .installed(RelationFields::Installability)
        .map(|ps| {
            ps.iter()
                .map(|p| (p.name.to_string(), p.installed_size_kib.unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default()
}

/// apt's list file prefix of a URI: scheme dropped (`http://`, and
/// `file:` with no host), `/` written `_`.
pub fn list_prefix(uri: &str) -> String {
    let without_scheme = match uri.split_once(':') {
        Some((scheme, rest))
            if scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) =>
        {
            rest.strip_prefix("//").unwrap_or(rest)
        }
        _ => uri,
    };
    without_scheme.trim_end_matches('/').replace('/', "_")
}

/// The new repositories' Release identity against what the profile
/// expects, read from the Release each target source of the rule's URI
/// fetched (never from lists an earlier update left).
pub fn release_findings(
    target_lists: &Path,
    profile: &Profile,
    targets: &[crate::target::TargetSource],
) -> Vec<Finding> {
    let mut findings = Vec::new();
    for rule in &profile.sources {
        let (Some(expect), Some(uri)) = (&rule.expect_release, &rule.set.uri) else {
            continue;
        };
        let releases: Vec<(PathBuf, Release)> = targets
            .iter()
            .filter(|t| t.uri.trim_end_matches('/') == uri.trim_end_matches('/'))
            .filter_map(|t| t.release_in(target_lists))
            .filter_map(|file| {
                let path = file.path().to_path_buf();
                let text = std::fs::read_to_string(&path).ok()?;
                let release = match split_clearsigned(&text) {
                    Ok(signed) => Release::parse(&signed.text).ok()?,
                    Err(_) => Release::parse(&text).ok()?,
                };
                Some((path, release))
            })
            .collect();
        for (path, release) in releases {
            let fields = [
                (ReleaseField::Origin, &expect.origin, &release.origin),
                (ReleaseField::Label, &expect.label, &release.label),
                (ReleaseField::Suite, &expect.suite, &release.suite),
                (ReleaseField::Codename, &expect.codename, &release.codename),
            ];
            for (field, wanted, actual) in fields {
                let name = field.field_name();
                if let Some(wanted) = wanted {
                    if actual.as_ref() != Some(wanted) {
                        findings.push(blocker(
                            FindingKey::Release(field, uri.clone()),
                            format!(
                                "{} says {name}: {}, the profile expects {wanted}",
                                path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                                actual.as_deref().unwrap_or("(none)")
                            ),
                            "check that the new URI is the repository you mean, or correct expect_release",
                        ));
                    }
                }
            }
        }
    }
    findings
}

/// Free space where apt writes, against the download, the installed-size
/// growth and the profile's own minimums.
pub fn space_checks(system: &SystemRoot, profile: &Profile, sizes: &Sizes) -> Vec<SpaceCheck> {
    let mut needs: BTreeMap<String, u64> = BTreeMap::new();
    needs.insert("/var/cache/apt/archives".into(), sizes.download_bytes);
    needs.insert("/usr".into(), sizes.installed_delta_bytes.max(0) as u64);
    for (path, mib) in &profile.checks.min_free_mib {
        let need = needs.entry(path.display().to_string()).or_default();
        *need = (*need).max(mib << 20);
    }
    needs
        .into_iter()
        .filter_map(|(path, needed_bytes)| {
            let host = system.host_path(&path);
            let free_bytes = free_bytes(&host)?;
            Some(SpaceCheck {
                path,
                free_bytes,
                needed_bytes,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_prefixes_follow_apt() {
        assert_eq!(
            list_prefix("http://repo.example.org/debian/"),
            "repo.example.org_debian"
        );
        assert_eq!(list_prefix("http://127.0.0.1:8080/"), "127.0.0.1:8080");
        assert_eq!(list_prefix("file:/tmp/flat/repo/."), "_tmp_flat_repo_.");
    }

    #[test]
    fn version_checks_block_when_unmet() {
        let requirement = VersionRequirement::parse(">= 12").unwrap();
        let check = |actual| version_check(FindingKey::OsVersion, "OS", actual, &requirement, "");
        assert!(check(Some("12")).is_none());
        assert_eq!(
            check(Some("11")).map(|f| f.key),
            Some(FindingKey::OsVersion)
        );
        assert!(check(None).is_some());
    }

    /// A root made of files: etc/apt and a dpkg status of `status`.
    fn root_with_status(status: &str) -> (tempfile::TempDir, SystemRoot) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc/apt")).unwrap();
        std::fs::create_dir_all(dir.path().join("var/lib/dpkg")).unwrap();
        std::fs::write(dir.path().join("var/lib/dpkg/status"), status).unwrap();
        let system = SystemRoot::open(dir.path()).unwrap();
        (dir, system)
    }

    const DPKG: &str =
        "Package: dpkg\nStatus: install ok installed\nVersion: 1.21.22\nArchitecture: amd64\n\n";

    const PLUGIN: &str = "Package: acme-daemon\nStatus: install ok installed\nVersion: 1.0\nArchitecture: all\n\n\
             Package: acme-plugin\nStatus: install ok installed\nVersion: 1.0\nArchitecture: all\nDepends: acme-daemon (= 1.0)\n";

    fn target_without_the_daemon() -> (tempfile::TempDir, Profile) {
        let lists = tempfile::tempdir().unwrap();
        std::fs::write(
            lists
                .path()
                .join("new_dists_stable_main_binary-all_Packages"),
            "Package: acme-core\nVersion: 2.0\nArchitecture: all\n",
        )
        .unwrap();
        let profile = Profile::parse(
            "schema = 1\nname = \"m\"\n[packages]\nremove = [\"acme-daemon\"]\n",
            Path::new("m.toml"),
        )
        .unwrap();
        (lists, profile)
    }

    #[test]
    fn an_unknown_architecture_blocks_and_nothing_is_assumed() {
        let (_dir, system) = root_with_status(PLUGIN);
        let (lists, profile) = target_without_the_daemon();
        // With no architecture there is no universe to check in: the
        // installability check says nothing rather than guess one.
        assert!(uninstallable_in_target(&system, lists.path(), &profile).is_empty());
        let blockers: Vec<Finding> = system_checks(&system, &profile)
            .into_iter()
            .filter(|f| f.key == FindingKey::NativeArchitecture)
            .collect();
        assert_eq!(blockers.len(), 1, "{blockers:#?}");
        assert_eq!(blockers[0].severity, Severity::Blocker);
        assert!(
            blockers[0].finding.contains("no installed `dpkg` package"),
            "{}",
            blockers[0].finding
        );
        assert!(blockers[0].remediation.contains("dpkg"));
    }

    #[test]
    fn a_known_architecture_is_no_finding() {
        let (_dir, system) = root_with_status(DPKG);
        let profile = Profile::parse("schema = 1\nname = \"m\"\n", Path::new("m.toml")).unwrap();
        let keys: Vec<FindingKey> = system_checks(&system, &profile)
            .into_iter()
            .map(|f| f.key)
            .collect();
        assert!(!keys.contains(&FindingKey::NativeArchitecture), "{keys:?}");
    }

    #[test]
    fn a_package_that_needs_what_goes_blocks_with_the_reason_in_words() {
        let (_dir, system) = root_with_status(&format!("{DPKG}{PLUGIN}"));
        let (lists, profile) = target_without_the_daemon();
        let findings = uninstallable_in_target(&system, lists.path(), &profile);
        assert_eq!(findings.len(), 1, "{findings:#?}");
        assert_eq!(
            findings[0].key,
            FindingKey::UninstallableInTarget("acme-plugin".into())
        );
        // The reason reads as `ferry check --explain` writes it.
        assert_eq!(
            findings[0].finding,
            "acme-plugin 1.0 could not stay installed with the target sources: \
             nothing satisfies `acme-daemon (= 1.0)`: acme-plugin 1.0 needs acme-daemon (= 1.0)"
        );
    }

    #[test]
    fn a_package_the_target_lacks_names_where_its_removal_is_written() {
        let (dir, system) = root_with_status(&format!("{DPKG}{PLUGIN}"));
        let lists = dir.path().join("var/lib/apt/lists");
        std::fs::create_dir_all(&lists).unwrap();
        std::fs::write(
            lists.join("old_dists_stable_main_binary-all_Packages"),
            "Package: acme-plugin\nVersion: 1.0\nArchitecture: all\n",
        )
        .unwrap();
        let (target, mut profile) = target_without_the_daemon();
        let installed = crate::snapshot::installed_packages(&system).unwrap();
        let remedy = |profile: &Profile| {
            let findings = missing_in_target(
                &system,
                target.path(),
                &installed,
                &Transaction::default(),
                profile,
            );
            assert_eq!(findings.len(), 1, "{findings:#?}");
            assert_eq!(
                findings[0].key,
                FindingKey::NoVersionInTarget("acme-plugin".into())
            );
            findings[0].remediation.clone()
        };
        assert!(remedy(&profile).contains("[packages] remove in the profile"));
        // A release upgrade: its removals are the bundle's demoted.cfg.
        profile.allow_removals = true;
        let remediation = remedy(&profile);
        assert!(remediation.contains("demoted.cfg"), "{remediation}");
        assert!(!remediation.contains("profile"), "{remediation}");
    }

    #[test]
    fn removing_an_essential_package_blocks() {
        let (_dir, system) = root_with_status(
            "Package: base-files\nEssential: yes\nStatus: install ok installed\nVersion: 12.4\nArchitecture: amd64\n\n\
             Package: old-tool\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\n\n\
             Package: gone-essential\nEssential: yes\nStatus: deinstall ok config-files\nVersion: 1.0\nArchitecture: amd64\n",
        );
        let profile = |removals: &str| {
            Profile::parse(
                &format!("schema = 1\nname = \"m\"\n[packages]\nremove = [{removals}]\n"),
                Path::new("m.toml"),
            )
            .unwrap()
        };
        let keys = |p: &Profile| -> Vec<FindingKey> {
            let asked: Vec<&str> = p.remove.iter().map(|n| n.as_str()).collect();
            essential_removals(&system, &asked)
                .into_iter()
                .map(|f| {
                    assert_eq!(f.severity, Severity::Blocker);
                    f.key
                })
                .collect()
        };
        assert_eq!(
            keys(&profile("\"old-tool\", \"base-files\", \"gone-essential\"")),
            [FindingKey::RemoveEssential("base-files".into())]
        );
        assert!(keys(&profile("\"old-tool\"")).is_empty());
    }
}
