//! The read-only plan of a migration: what the sources become (as diffs),
//! which keys arrive, what apt would install, remove, upgrade and downgrade
//! against the *target* sources, how much it downloads and needs on disk,
//! and every check with a stable key, a one-line finding and a remediation.
//! A plan with a blocker must not run.
//!
//! Deciding is pure (`rewrite_sources`, `transaction_findings`, …); the
//! I/O — reading the root, running apt in a sandbox, statvfs — is gathered in
//! `compute`. Nothing here writes to the root.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ferry_deb::sources::{read_system_sources, SignedBy, SystemSources};
use ferry_deb::sources::{
    unified_diff, ComponentsChange, Edit, Matcher, SignedByChange, SuiteChange, UriChange,
};
use serde::Serialize;

use crate::apt::{AptError, AptSandbox, Transaction};
use crate::backup::PackageToSave;
use crate::profile::{Profile, SourceRule};
use crate::snapshot::{installed_packages, InstalledPackage, SnapshotError};
use crate::system::SystemRoot;

pub use crate::finding::{Finding, FindingKey, Severity};
pub use crate::space::SpaceCheck;

/// A sources file before and after the migration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourcesChange {
    /// The path inside the root, e.g. `/etc/apt/sources.list.d/acme.sources`.
    pub path: String,
    pub old_text: String,
    pub new_text: String,
    pub diff: String,
}

/// A key the migration installs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyInstall {
    pub path: String,
    /// Whether a different file is there now (it will be replaced).
    pub replaces_existing: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub migration: String,
    pub root: PathBuf,
    pub sources: Vec<SourcesChange>,
    /// The sources the migration fetches that the system does not today;
    /// each answered with a verified Release, or the plan is blocked.
    pub targets: Vec<crate::target::TargetSource>,
    pub keys: Vec<KeyInstall>,
    /// How far apt may upgrade beyond the named packages.
    pub upgrade: crate::profile::Upgrade,
    /// The packages handed to apt: installed, then removed.
    pub install: Vec<String>,
    pub remove: Vec<String>,
    pub transaction: Transaction,
    pub download_bytes: u64,
    pub installed_size_delta_bytes: i64,
    pub space: Vec<SpaceCheck>,
    pub findings: Vec<Finding>,
}

impl Plan {
    pub fn blocked(&self) -> bool {
        self.findings
            .iter()
            .any(|f| f.severity == Severity::Blocker)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Sources(#[from] ferry_deb::sources::SourcesError),
    #[error("source rule {rule}: {error}")]
    Rewrite {
        rule: usize,
        error: ferry_deb::sources::RewriteError,
    },
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Apt(#[from] AptError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The profile's source rule as a matcher and an edit of the sources module.
pub fn rule_edit(rule: &SourceRule) -> (Matcher, Edit) {
    let matcher = Matcher {
        uri_prefix: rule.matches.uri.clone(),
        suite: rule.matches.suite.clone(),
        component: rule.matches.component.clone(),
        source_type: None,
        enabled: None,
    };
    let uri = rule.set.uri.as_ref().map(|to| match &rule.matches.uri {
        Some(from) => UriChange::ReplacePrefix {
            from: from.clone(),
            to: to.clone(),
        },
        None => UriChange::Set(to.clone()),
    });
    let suite = rule.set.suite.as_ref().map(|to| match &rule.matches.suite {
        Some(from) => SuiteChange::Rename {
            from: from.clone(),
            to: to.clone(),
        },
        None => SuiteChange::Set(to.clone()),
    });
    let edit = Edit {
        uri,
        suite,
        components: rule.set.components.clone().map(ComponentsChange::Set),
        signed_by: rule
            .set
            .signed_by
            .as_ref()
            .map(|path| SignedByChange::Set(SignedBy::keyring(path))),
        enabled: rule.set.enabled,
    };
    (matcher, edit)
}

/// Applies every source rule of the profile to the system's sources, in
/// order; returns the files whose text changes and the rules that matched
/// nothing (a profile for another system, or a typo).
pub fn rewrite_sources(
    system: &SystemSources,
    profile: &Profile,
    root: &Path,
) -> Result<(Vec<SourcesChange>, Vec<usize>), PlanError> {
    let mut changes = Vec::new();
    let mut matched = vec![false; profile.sources.len()];
    for file in &system.files {
        let mut document = file.document.clone();
        for (index, rule) in profile.sources.iter().enumerate() {
            let (matcher, edit) = rule_edit(rule);
            if document.entries().iter().any(|e| matcher.matches(e)) {
                matched[index] = true;
            }
            let rewritten =
                document
                    .rewrite(&matcher, &edit)
                    .map_err(|error| PlanError::Rewrite {
                        rule: index + 1,
                        error,
                    })?;
            document = rewritten.document;
        }
        if document.text() != file.document.text() {
            let inside = in_root_path(root, &file.path);
            changes.push(SourcesChange {
                diff: unified_diff(
                    file.document.text(),
                    document.text(),
                    &format!("a{inside}"),
                    &format!("b{inside}"),
                ),
                path: inside,
                old_text: file.document.text().to_string(),
                new_text: document.text().to_string(),
            });
        }
    }
    let unmatched = matched
        .iter()
        .enumerate()
        .filter(|(_, m)| !**m)
        .map(|(i, _)| i + 1)
        .collect();
    add_whole_files(&mut changes, system, profile, root);
    Ok((changes, unmatched))
}

/// The profile's whole sources files (a release bundle's) go in after the
/// rules: a file the rules changed gets the new text instead, an existing
/// file is replaced, a missing one is created.
fn add_whole_files(
    changes: &mut Vec<SourcesChange>,
    system: &SystemSources,
    profile: &Profile,
    root: &Path,
) {
    for added in &profile.add_sources {
        let old_text = system
            .files
            .iter()
            .find(|f| in_root_path(root, &f.path) == added.path)
            .map(|f| f.document.text().to_string())
            .unwrap_or_default();
        let diff = unified_diff(
            &old_text,
            &added.text,
            &format!("a{}", added.path),
            &format!("b{}", added.path),
        );
        let change = SourcesChange {
            path: added.path.clone(),
            old_text,
            new_text: added.text.clone(),
            diff,
        };
        match changes.iter_mut().find(|c| c.path == added.path) {
            Some(existing) => *existing = change,
            None => changes.push(change),
        }
    }
}

fn in_root_path(root: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(root).unwrap_or(path);
    format!(
        "/{}",
        relative.display().to_string().trim_start_matches('/')
    )
}

/// What apt is asked to install and remove: replacements whose old package
/// is installed, the profile's installs, and removals of installed packages.
pub fn package_requests(
    profile: &Profile,
    installed: &std::collections::BTreeMap<String, InstalledPackage>,
) -> (Vec<String>, Vec<String>) {
    let is_installed = |name: &str| installed.keys().any(|k| k.split(':').next() == Some(name));
    let mut install = Vec::new();
    let mut remove = Vec::new();
    for r in &profile.replace {
        if is_installed(r.from.as_str()) {
            install.push(r.to.to_string());
            remove.push(r.from.to_string());
        }
    }
    install.extend(profile.install.iter().map(|p| p.to_string()));
    remove.extend(
        profile
            .remove
            .iter()
            .filter(|p| is_installed(p.as_str()))
            .map(|p| p.to_string()),
    );
    (install, remove)
}

/// Findings about the transaction itself: removals the profile did not ask
/// for, held packages apt would change.
pub fn transaction_findings(
    profile: &Profile,
    transaction: &Transaction,
    installed: &std::collections::BTreeMap<String, InstalledPackage>,
) -> Vec<Finding> {
    let named: BTreeSet<&str> = profile
        .remove
        .iter()
        .map(|p| p.as_str())
        .chain(profile.replace.iter().map(|r| r.from.as_str()))
        .collect();
    let mut findings = Vec::new();
    for change in &transaction.remove {
        if !named.contains(change.name.as_str()) {
            findings.push(Finding::new(
                FindingKey::UnexpectedRemoval(change.name.clone()),
                Severity::Blocker,
                format!(
                    "apt would remove {} {} although the profile does not say so",
                    change.name,
                    change.old_version.as_deref().unwrap_or("")
                ),
                format!(
                    "add {} to [packages] remove or replace in the profile, or make the new repository provide what it needs",
                    change.name
                ),
            ));
        }
    }
    let held: Vec<&String> = installed
        .iter()
        .filter(|(_, p)| p.selection == "hold")
        .map(|(k, _)| k)
        .collect();
    for key in held {
        let name = key.split(':').next().unwrap_or(key);
        let touched = transaction
            .upgrade
            .iter()
            .chain(&transaction.downgrade)
            .chain(&transaction.remove)
            .any(|c| c.name == name);
        findings.push(if touched {
            Finding::new(
                FindingKey::HeldPackage(name.to_string()),
                Severity::Blocker,
                format!("{name} is held, and the migration would change it"),
                format!("release the hold (apt-mark unhold {name}) or keep the package out of the migration"),
            )
        } else {
            Finding::new(
                FindingKey::HeldPackage(name.to_string()),
                Severity::Info,
                format!("{name} is held and stays as it is"),
                "nothing to do",
            )
        });
    }
    findings
}

/// The installed versions of everything the plan removes, upgrades,
/// downgrades or reinstalls: what the backup must keep as `.deb`s.
pub fn packages_to_save(
    t: &Transaction,
    installed: &std::collections::BTreeMap<String, InstalledPackage>,
) -> Vec<PackageToSave> {
    t.remove
        .iter()
        .chain(&t.upgrade)
        .chain(&t.downgrade)
        .chain(&t.reinstall)
        .filter_map(|change| {
            installed
                .iter()
                .find(|(key, _)| {
                    let (name, arch) = key.split_once(':').unwrap_or((key, ""));
                    name == change.name
                        && change
                            .arch
                            .as_deref()
                            .is_none_or(|a| a == arch || arch == "all")
                })
                .map(|(key, p)| PackageToSave {
                    name: change.name.clone(),
                    arch: key.split_once(':').map_or("", |(_, a)| a).to_string(),
                    version: p.version.clone(),
                })
        })
        .collect()
}

/// The backup's proof for packages whose old `.deb` only the old
/// repository can give (not cached, not rebuildable): the plan downloads
/// them once, in a private apt state, and throws them away. A package that
/// does not come turns its warning into `backup-impossible:NAME`.
fn prove_old_repository_downloads(
    root: &Path,
    findings: &mut [Finding],
    packages: &[PackageToSave],
    work_dir: &Path,
) {
    let needed: Vec<&PackageToSave> = packages
        .iter()
        .filter(|p| {
            findings.iter().any(
                |f| matches!(&f.key, FindingKey::BackupFromOldRepository(name) if *name == p.name),
            )
        })
        .collect();
    if needed.is_empty() {
        return;
    }
    let sandbox_dir = work_dir.join("backup-proof");
    let into = sandbox_dir.join("debs");
    let attempt = std::fs::create_dir_all(&into)
        .map_err(|e| e.to_string())
        .and_then(|()| {
            AptSandbox::for_current_sources(
                &sandbox_dir.join("apt"),
                &crate::system::SystemRoot::new(root),
            )
            .map_err(|e| e.to_string())
        });
    for package in needed {
        let spec = format!("{}:{}={}", package.name, package.arch, package.version);
        let result = match &attempt {
            Ok(sandbox) => sandbox.download(&spec, &into).map_err(|e| e.to_string()),
            Err(e) => Err(e.clone()),
        };
        let key = FindingKey::BackupFromOldRepository(package.name.clone());
        if let Some(finding) = findings.iter_mut().find(|f| f.key == key) {
            match result {
                Ok(()) => {
                    finding.severity = Severity::Info;
                    finding
                        .finding
                        .push_str("; the plan downloaded it from there just now");
                }
                Err(why) => {
                    *finding = Finding::new(
                        FindingKey::BackupImpossible(package.name.clone()),
                        Severity::Blocker,
                        format!(
                            "no source for the backup of {spec}: not in apt's cache, cannot be rebuilt, and the old repository did not give it: {why}"
                        ),
                        format!(
                            "put the .deb of {spec} into /var/cache/apt/archives, or restore the package's missing files (dpkg --verify {}) so ferry can rebuild it",
                            package.name
                        ),
                    );
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&sandbox_dir);
}

/// Free and needed space for one path apt writes to.
pub fn space_finding(check: &SpaceCheck) -> Option<Finding> {
    (check.free_bytes < check.needed_bytes).then(|| {
        Finding::new(
            FindingKey::FreeSpace(check.path.clone()),
            Severity::Blocker,
            {
                let (mut free, mut needed) = (
                    crate::space::human_bytes(check.free_bytes),
                    crate::space::human_bytes(check.needed_bytes),
                );
                // Rounded to one decimal the two can read alike: then bytes.
                if free == needed {
                    free = format!("{} bytes", check.free_bytes);
                    needed = format!("{} bytes", check.needed_bytes);
                }
                format!(
                    "{} has {free} free, the migration needs {needed}",
                    check.path
                )
            },
            format!(
                "free space on the filesystem of {} (apt-get clean, remove old kernels)",
                check.path
            ),
        )
    })
}

/// Computes the plan of `profile` for `system` in a sandbox of its own in
/// the temporary directory, removed once the plan is made: what `plan`,
/// `run` and a release upgrade's dry run all do.
pub fn compute_in_temp(system: &SystemRoot, profile: &Profile) -> Result<Plan, PlanError> {
    let sandbox = tempfile::Builder::new()
        .prefix("ferry-plan-")
        .tempdir()
        .map_err(|source| PlanError::Io {
            path: std::env::temp_dir(),
            source,
        })?;
    compute(system, profile, sandbox.path())
}

/// Computes the plan of `profile` for the system at `root`, running apt in
/// a sandbox under `work_dir`. Read-only for the root.
pub fn compute(
    system_root: &SystemRoot,
    profile: &Profile,
    work_dir: &Path,
) -> Result<Plan, PlanError> {
    let root = system_root.path();
    let system = read_system_sources(root)?;
    let (sources, unmatched) = rewrite_sources(&system, profile, root)?;
    let installed = installed_packages(system_root)?;
    let mut findings = Vec::new();
    for rule in unmatched {
        findings.push(Finding::new(
            FindingKey::SourceRuleUnmatched(rule),
            Severity::Warning,
            format!("source rule {rule} of the profile matches no entry of this system's sources"),
            "check the rule's match (uri prefix, suite, component) against `ferry sources show`",
        ));
    }
    findings.extend(crate::checks::system_checks(system_root, profile));

    let keys = profile
        .keys
        .iter()
        .map(|key| {
            let host = root.join(key.install_to.strip_prefix("/").unwrap_or(&key.install_to));
            KeyInstall {
                path: key.install_to.display().to_string(),
                replaces_existing: std::fs::read(&host).is_ok_and(|bytes| bytes != key.bytes),
            }
        })
        .collect();

    let targets = crate::target::target_sources(
        &system,
        sources
            .iter()
            .map(|c| (c.path.as_str(), c.new_text.as_str())),
    );
    let sandbox = sandbox_for_target(root, profile, &system, &sources, &targets, work_dir)?;
    let (install, remove) = package_requests(profile, &installed);
    let answered = match sandbox.update() {
        Ok(update) => {
            let unanswered = crate::target::unanswered_targets(
                &targets,
                &sandbox.lists_dir(),
                &update.lines,
                &sandbox,
            );
            let answered = unanswered.is_empty();
            findings.extend(unanswered);
            findings.extend(other_update_findings(&targets, &update.lines));
            if !update.succeeded() && !findings.iter().any(|f| f.key == FindingKey::AptUpdate) {
                findings.push(Finding::new(
                    FindingKey::AptUpdate,
                    Severity::Blocker,
                    format!(
                        "apt-get update failed (exit {:?}): {}",
                        update.exit_code,
                        update.lines.last().map(String::as_str).unwrap_or("")
                    ),
                    "fix what apt reports and plan again",
                ));
            }
            answered && update.succeeded()
        }
        Err(e) => {
            findings.push(Finding::new(
                FindingKey::AptUpdate,
                Severity::Blocker,
                format!("the target sources cannot be read: {e}"),
                "check the new repository's URI, that it is reachable, and that its key is the one the profile installs",
            ));
            false
        }
    };
    // Without every target's lists, a transaction would be computed from
    // a part of the target: its findings would mislead, so none are made.
    let (transaction, sizes) = if answered {
        match sandbox.simulate(&install, &remove, profile.upgrade) {
            Ok(t) => {
                let sizes = crate::checks::transaction_sizes(&sandbox.lists_dir(), &t, system_root);
                (t, sizes)
            }
            Err(e) => {
                findings.push(Finding::new(
                    FindingKey::AptSimulation,
                    Severity::Blocker,
                    format!("apt cannot compute the transaction with the target sources: {e}"),
                    "make the packages the profile installs available in the new repository, or fix the profile",
                ));
                (Transaction::default(), Default::default())
            }
        }
    } else {
        (Transaction::default(), Default::default())
    };
    if answered {
        findings.extend(transaction_findings(profile, &transaction, &installed));
        let backup = packages_to_save(&transaction, &installed);
        let mut proof = crate::backup::backup_findings(system_root, &backup);
        prove_old_repository_downloads(root, &mut proof, &backup, work_dir);
        findings.extend(proof);
        if profile.allow_removals {
            let removed: Vec<&str> = transaction.remove.iter().map(|c| c.name.as_str()).collect();
            findings.extend(crate::checks::essential_removals(system_root, &removed));
        }
        findings.extend(crate::checks::missing_in_target(
            system_root,
            &sandbox.lists_dir(),
            &installed,
            &transaction,
            profile,
        ));
        let stranded: BTreeSet<String> = findings
            .iter()
            .filter_map(|f| match &f.key {
                FindingKey::NoVersionInTarget(name) => Some(name.clone()),
                _ => None,
            })
            .collect();
        findings.extend(
            crate::checks::uninstallable_in_target(system_root, &sandbox.lists_dir(), profile)
                .into_iter()
                .filter(|f| match &f.key {
                    FindingKey::UninstallableInTarget(name) => !stranded.contains(name),
                    _ => true,
                }),
        );
        findings.extend(crate::checks::release_findings(
            &sandbox.lists_dir(),
            profile,
            &targets,
        ));
    }
    if profile.allow_removals {
        for finding in &mut findings {
            let expected = matches!(
                finding.key,
                FindingKey::UnexpectedRemoval(_) | FindingKey::NoVersionInTarget(_)
            );
            if expected && finding.severity == Severity::Blocker {
                finding.severity = Severity::Warning;
            }
        }
    }
    let space = crate::checks::space_checks(system_root, profile, &sizes);
    findings.extend(space.iter().filter_map(space_finding));
    // Ordered by the keys' strings, as automation and people read them.
    findings.sort_by_cached_key(|f| (std::cmp::Reverse(f.severity), f.key.to_string()));
    // The same removal can be both asked for and computed by apt.
    findings.dedup_by(|a, b| a.key == b.key);

    Ok(Plan {
        migration: profile.name.clone(),
        root: root.to_path_buf(),
        sources,
        targets,
        keys,
        upgrade: profile.upgrade,
        install,
        remove,
        transaction,
        download_bytes: sizes.download_bytes,
        installed_size_delta_bytes: sizes.installed_delta_bytes,
        space,
        findings,
    })
}

/// What apt's update said that is not about a target source: an `E:` line
/// still blocks (apt refused something), `W:` lines are shown.
fn other_update_findings(
    targets: &[crate::target::TargetSource],
    lines: &[String],
) -> Vec<Finding> {
    let about_targets: BTreeSet<String> = targets
        .iter()
        .flat_map(|t| crate::target::apt_lines_about(t, lines))
        .collect();
    let generic = "Some index files failed to download";
    let rest = |prefix: &str| -> Vec<&str> {
        lines
            .iter()
            .map(|l| l.trim())
            .filter(|l| {
                l.starts_with(prefix) && !about_targets.contains(*l) && !l.contains(generic)
            })
            .collect()
    };
    let mut findings = Vec::new();
    let errors = rest("E:");
    if !errors.is_empty() {
        findings.push(Finding::new(
            FindingKey::AptUpdate,
            Severity::Blocker,
            format!("apt-get update reported errors: {}", errors.join(" | ")),
            "fix what apt reports (a source's URI, suite or key) and plan again",
        ));
    }
    let warnings = rest("W:");
    if !warnings.is_empty() {
        findings.push(Finding::new(
            FindingKey::AptUpdateWarnings,
            Severity::Warning,
            format!("apt-get update warned: {}", warnings.join(" | ")),
            "the sources that stay as they are answered with warnings; their current lists are used",
        ));
    }
    findings
}

/// A sandbox whose sources are the rewritten ones, with Signed-By paths
/// pointing at the sandbox's copies of new keys (or the root's files).
pub fn sandbox_for_target(
    root: &Path,
    profile: &Profile,
    system: &SystemSources,
    changes: &[SourcesChange],
    targets: &[crate::target::TargetSource],
    work_dir: &Path,
) -> Result<AptSandbox, PlanError> {
    let keys: Vec<(PathBuf, Vec<u8>)> = profile
        .keys
        .iter()
        .map(|k| (k.install_to.clone(), k.bytes.clone()))
        .collect();
    let mut files = Vec::new();
    for file in &system.files {
        let inside = in_root_path(root, &file.path);
        let text = changes
            .iter()
            .find(|c| c.path == inside)
            .map_or_else(|| file.document.text().to_string(), |c| c.new_text.clone());
        let name = match Path::new(&inside).file_name() {
            Some(n) if inside != "/etc/apt/sources.list" => n.to_string_lossy().into_owned(),
            _ => "00-sources.list".to_string(),
        };
        files.push((name, text));
    }
    // Files the migration creates (a release bundle's) join the sandbox too.
    for change in changes {
        let exists = system
            .files
            .iter()
            .any(|f| in_root_path(root, &f.path) == change.path);
        if !exists {
            let name = match Path::new(&change.path).file_name() {
                Some(n) if change.path != "/etc/apt/sources.list" => {
                    n.to_string_lossy().into_owned()
                }
                _ => "00-sources.list".to_string(),
            };
            files.push((name, change.new_text.clone()));
        }
    }
    let sandbox = AptSandbox::create(work_dir, &crate::system::SystemRoot::new(root), &[], &keys)?;
    // Keyring paths in the sources name files of the target system; in the
    // sandbox they must name the copies it can read.
    let mut keyrings: BTreeSet<PathBuf> = system
        .entries()
        .filter_map(|e| e.signed_by.as_ref())
        .flat_map(|s| s.keyrings().into_iter().map(Path::to_path_buf))
        .collect();
    keyrings.extend(profile.keys.iter().map(|k| k.install_to.clone()));
    for added in &profile.add_sources {
        let format = if added.path.ends_with(".sources") {
            ferry_deb::sources::Format::Deb822
        } else {
            ferry_deb::sources::Format::OneLine
        };
        if let Ok(document) = ferry_deb::sources::parse_sources_text(&added.text, format) {
            keyrings.extend(
                document
                    .entries()
                    .iter()
                    .filter_map(|e| e.signed_by.as_ref())
                    .flat_map(|s| s.keyrings().into_iter().map(Path::to_path_buf)),
            );
        }
    }
    keyrings.extend(
        profile
            .sources
            .iter()
            .filter_map(|r| r.set.signed_by.as_ref().map(PathBuf::from)),
    );
    let mut written = Vec::new();
    for (name, text) in files {
        let mut text = text;
        for keyring in &keyrings {
            let from = keyring.display().to_string();
            let to = sandbox.key_path(keyring).display().to_string();
            if from != to {
                text = replace_path_token(&text, &from, &to);
            }
        }
        written.push((name, text));
    }
    sandbox.write_sources(&written)?;
    let stems: Vec<String> = targets.iter().map(|t| t.list_stem()).collect();
    sandbox.seed_lists_from_root_except(&stems)?;
    Ok(sandbox)
}

/// Replaces `from` where it stands as a whole path (followed by a space,
/// comma, `]`, end of line or end of text), so `/a/k.gpg` never rewrites
/// `/a/k.gpg.old`.
fn replace_path_token(text: &str, from: &str, to: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(from) {
        let after = rest[at + from.len()..].chars().next();
        let whole = matches!(after, None | Some(' ' | '\t' | ',' | ']' | '\n' | '\r'));
        out.push_str(&rest[..at]);
        out.push_str(if whole { to } else { from });
        rest = &rest[at + from.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_tokens_are_replaced_whole() {
        assert_eq!(
            replace_path_token(
                "Signed-By: /k/a.gpg\nX: /k/a.gpg.old /k/a.gpg",
                "/k/a.gpg",
                "/s/a.gpg"
            ),
            "Signed-By: /s/a.gpg\nX: /k/a.gpg.old /s/a.gpg"
        );
        assert_eq!(
            replace_path_token(
                "deb [signed-by=/k/a.gpg] http://x s main",
                "/k/a.gpg",
                "/s/a.gpg"
            ),
            "deb [signed-by=/s/a.gpg] http://x s main"
        );
    }
}
