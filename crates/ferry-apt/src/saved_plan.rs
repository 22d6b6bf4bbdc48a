//! The plan as a file: what `ferry plan --save FILE` writes, what
//! `ferry run --plan FILE` carries out without planning again, and what a
//! run keeps beside its journal (`plan.json`) so that a resumed run does
//! what was planned. One type, one format, versioned; a fingerprint of the
//! system it was made for refuses it once that system has changed.
//!
//! Not the plan's computation (`plan`), nor the run (`run`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::backup::PackageToSave;
use crate::plan::Plan;
use crate::profile::Profile;
use crate::snapshot::SnapshotError;
use crate::system::SystemRoot;
use crate::target::TargetSource;

/// The format this ferry writes and reads. A file of another format is
/// refused, never half-understood: it was written for another ferry.
pub const SAVED_PLAN_FORMAT: u32 = 1;

/// The name of the saved plan beside a run's journal.
pub const PLAN_JSON: &str = "plan.json";

/// The checked profile beside the journal of a run from before the saved
/// plan held it; read only to resume such a run.
const PROFILE_JSON: &str = "profile.json";

#[derive(Debug, thiserror::Error)]
pub enum SavedPlanError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not JSON, or JSON that is no saved plan; where serde_json stopped.
    #[error("{}:{line}:{column}: not a saved plan: {message}", path.display())]
    Json {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// A format this ferry does not read (`none` when the file has none).
    #[error(
        "{}: saved plan format {found} is not one this ferry reads (it reads format {SAVED_PLAN_FORMAT})",
        path.display()
    )]
    Format { path: PathBuf, found: String },
    /// The system is not the one the plan was made for, or has changed
    /// since; each entry says what.
    #[error("the saved plan no longer applies to this system: {}", changes.join("; "))]
    SystemChanged { changes: Vec<String> },
    #[error("cannot tell the native architecture of {} (dpkg --print-architecture)", root.display())]
    Architecture { root: PathBuf },
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> SavedPlanError + '_ {
    move |source| SavedPlanError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl From<ferry_journal::DocumentError> for SavedPlanError {
    fn from(e: ferry_journal::DocumentError) -> Self {
        use ferry_journal::DocumentError;
        match e {
            DocumentError::Io { path, source } => SavedPlanError::Io { path, source },
            DocumentError::Json {
                path,
                line,
                column,
                message,
            } => SavedPlanError::Json {
                path,
                line,
                column,
                message,
            },
            DocumentError::Format { path, found } => SavedPlanError::Format { path, found },
        }
    }
}

fn json(path: &Path) -> impl Fn(serde_json::Error) -> SavedPlanError + '_ {
    move |e| SavedPlanError::Json {
        path: path.to_path_buf(),
        line: e.line(),
        // serde_json counts the characters read on the line, so 0 means
        // it stopped before the line's first: that is column 1.
        column: e.column().max(1),
        message: e.to_string(),
    }
}

/// What a plan depends on in the system it was made for: a plan made for
/// another root, architecture, installed set or set of sources would ask
/// apt for another transaction than the one reviewed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemFingerprint {
    pub root: PathBuf,
    /// dpkg's native architecture there.
    pub architecture: String,
    /// sha256 of `var/lib/dpkg/status`: any install, removal or mark.
    pub dpkg_status_sha256: String,
    /// sha256 over APT's sources (`sources.list`, then each `*.list` and
    /// `*.sources` of `sources.list.d` by name), names included.
    pub apt_sources_sha256: String,
    /// os-release's `VERSION_ID`, when there is one.
    #[serde(default)]
    pub os_version_id: Option<String>,
}

impl SystemFingerprint {
    /// The fingerprint of `system` as it is now.
    pub fn capture(system: &SystemRoot) -> Result<SystemFingerprint, SavedPlanError> {
        let root = system.path();
        let architecture =
            system
                .native_architecture()
                .map_err(|_| SavedPlanError::Architecture {
                    root: root.to_path_buf(),
                })?;
        let status = root.join("var/lib/dpkg/status");
        let status_bytes = std::fs::read(&status).map_err(io(&status))?;
        let os_version_id = ferry_deb::os_release::OsRelease::read(root)
            .ok()
            .and_then(|os| os.get("VERSION_ID").map(str::to_string));
        Ok(SystemFingerprint {
            root: std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf()),
            architecture,
            dpkg_status_sha256: ferry_fetch::sha256_hex(&status_bytes),
            apt_sources_sha256: apt_sources_sha256(root)?,
            os_version_id,
        })
    }

    /// What differs in `now` from this fingerprint, in words.
    pub fn differences(&self, now: &SystemFingerprint) -> Vec<String> {
        let mut changes = Vec::new();
        if self.root != now.root {
            changes.push(format!(
                "the plan was made for the system at {}, this is {}",
                self.root.display(),
                now.root.display()
            ));
        }
        if self.architecture != now.architecture {
            changes.push(format!(
                "the plan was made for architecture {}, this system is {}",
                self.architecture, now.architecture
            ));
        }
        if self.os_version_id != now.os_version_id {
            let shown = |v: &Option<String>| v.clone().unwrap_or_else(|| "(unset)".into());
            changes.push(format!(
                "os-release VERSION_ID was {}, is {}",
                shown(&self.os_version_id),
                shown(&now.os_version_id)
            ));
        }
        if self.dpkg_status_sha256 != now.dpkg_status_sha256 {
            changes
                .push("the installed packages changed (var/lib/dpkg/status differs)".to_string());
        }
        if self.apt_sources_sha256 != now.apt_sources_sha256 {
            changes.push(
                "APT's sources changed (etc/apt/sources.list or sources.list.d differs)"
                    .to_string(),
            );
        }
        changes
    }
}

/// The files of APT's sources, as apt reads them: `sources.list`, then
/// `sources.list.d/*.list` and `*.sources` sorted by name.
fn apt_source_files(root: &Path) -> Result<Vec<PathBuf>, SavedPlanError> {
    let mut files = Vec::new();
    let list = root.join("etc/apt/sources.list");
    if list.is_file() {
        files.push(list);
    }
    let dir = root.join("etc/apt/sources.list.d");
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(files),
        Err(e) => return Err(io(&dir)(e)),
    };
    let mut parts = Vec::new();
    for entry in entries {
        let path = entry.map_err(io(&dir))?.path();
        let read_by_apt = path
            .extension()
            .is_some_and(|ext| ext == "list" || ext == "sources");
        if read_by_apt && path.is_file() {
            parts.push(path);
        }
    }
    parts.sort();
    files.extend(parts);
    Ok(files)
}

fn apt_sources_sha256(root: &Path) -> Result<String, SavedPlanError> {
    let mut all = Vec::new();
    for path in apt_source_files(root)? {
        // Each file's name, then its bytes, each closed by a NUL: a file
        // moved or split changes the sum as an edit does.
        let name = path.strip_prefix(root).unwrap_or(&path);
        all.extend_from_slice(name.as_os_str().as_encoded_bytes());
        all.push(0);
        all.extend(std::fs::read(&path).map_err(io(&path))?);
        all.push(0);
    }
    Ok(ferry_fetch::sha256_hex(&all))
}

/// One finding of the plan, as text: for people reading the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedFinding {
    pub key: String,
    pub severity: String,
    pub finding: String,
}

/// A plan as a run carries it out.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedPlan {
    /// [`SAVED_PLAN_FORMAT`] when written by this ferry.
    pub format: u32,
    /// The checked profile, key bytes included: the run must not depend on
    /// files beside the original profile still being there.
    pub profile: Profile,
    /// The profile's file as it was read, for the migration's records.
    #[serde(default)]
    pub profile_text: String,
    /// The system the plan was made for.
    pub system: SystemFingerprint,
    /// The plan's findings; not needed to run, kept for whoever reads it.
    #[serde(default)]
    pub findings: Vec<SavedFinding>,
    /// Packages handed to apt to install, then to remove.
    pub install: Vec<String>,
    pub remove: Vec<String>,
    /// The installed versions the backup keeps as `.deb`s.
    pub backup: Vec<PackageToSave>,
    /// Sources files (path inside the root, new text) the run writes.
    pub sources: Vec<(String, String)>,
    /// Sources the update step must fetch; a plan saved before they were
    /// recorded has none to check.
    #[serde(default)]
    pub targets: Vec<TargetSource>,
}

/// `plan.json` beside a journal from before the format: the profile was in
/// `profile.json` and the system was not recorded.
#[derive(Deserialize)]
struct PlanBeforeFormat {
    install: Vec<String>,
    remove: Vec<String>,
    backup: Vec<PackageToSave>,
    sources: Vec<(String, String)>,
    #[serde(default)]
    targets: Vec<TargetSource>,
}

impl SavedPlan {
    /// `plan` of `profile` as a run carries it out, for the system
    /// `system` describes (captured before the plan was computed, so that
    /// anything that changes meanwhile refuses the plan).
    pub fn new(
        system: SystemFingerprint,
        profile: &Profile,
        plan: &Plan,
    ) -> Result<SavedPlan, SavedPlanError> {
        let installed =
            crate::snapshot::installed_packages(&crate::system::SystemRoot::new(&plan.root))?;
        // A profile made in memory (a release upgrade's) has no file.
        let profile_text = std::fs::read(&profile.path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        Ok(SavedPlan {
            format: SAVED_PLAN_FORMAT,
            profile: profile.clone(),
            profile_text,
            system,
            findings: plan
                .findings
                .iter()
                .map(|f| SavedFinding {
                    key: f.key.to_string(),
                    severity: format!("{:?}", f.severity).to_lowercase(),
                    finding: f.finding.clone(),
                })
                .collect(),
            install: plan.install.clone(),
            remove: plan.remove.clone(),
            backup: crate::plan::packages_to_save(&plan.transaction, &installed),
            sources: plan
                .sources
                .iter()
                .map(|c| (c.path.clone(), c.new_text.clone()))
                .collect(),
            targets: plan.targets.clone(),
        })
    }

    /// Writes the plan to `path` atomically: a reader sees the old file or
    /// the whole new one.
    pub fn save(&self, path: &Path) -> Result<(), SavedPlanError> {
        Ok(ferry_journal::save_document(path, self)?)
    }

    /// Reads a saved plan; its format must be this ferry's.
    pub fn load(path: &Path) -> Result<SavedPlan, SavedPlanError> {
        Ok(ferry_journal::load_document(path, SAVED_PLAN_FORMAT)?)
    }

    /// A saved plan from `bytes`, `path` naming it in errors.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<SavedPlan, SavedPlanError> {
        Ok(ferry_journal::parse_document(
            path,
            bytes,
            SAVED_PLAN_FORMAT,
        )?)
    }

    /// The plan a run keeps in `dir` beside its journal. A run started by a
    /// ferry from before the format kept it without one, and the profile in
    /// `profile.json`: such a run still resumes.
    pub fn load_beside_journal(dir: &Path) -> Result<SavedPlan, SavedPlanError> {
        let path = dir.join(PLAN_JSON);
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        if ferry_journal::document_format(&path, &bytes)?.is_some() {
            return Self::parse(&path, &bytes);
        }
        let before: PlanBeforeFormat = serde_json::from_slice(&bytes).map_err(json(&path))?;
        let profile_path = dir.join(PROFILE_JSON);
        let profile_bytes = std::fs::read(&profile_path).map_err(io(&profile_path))?;
        let profile: Profile =
            serde_json::from_slice(&profile_bytes).map_err(json(&profile_path))?;
        let profile_text = std::fs::read(dir.join("profile.toml"))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        Ok(SavedPlan {
            format: SAVED_PLAN_FORMAT,
            profile,
            profile_text,
            system: SystemFingerprint::default(),
            findings: Vec::new(),
            install: before.install,
            remove: before.remove,
            backup: before.backup,
            sources: before.sources,
            targets: before.targets,
        })
    }

    /// Whether `system` is, as far as the plan depends on it, the system
    /// the plan was made for; if not, everything that differs.
    pub fn check_matches(&self, system: &SystemRoot) -> Result<(), SavedPlanError> {
        let now = SystemFingerprint::capture(system)?;
        let changes = self.system.differences(&now);
        if changes.is_empty() {
            Ok(())
        } else {
            Err(SavedPlanError::SystemChanged { changes })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small Debian-looking root with one sources file and a status.
    fn system() -> (tempfile::TempDir, SystemRoot) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("etc/apt/sources.list.d")).unwrap();
        std::fs::create_dir_all(root.join("var/lib/dpkg")).unwrap();
        std::fs::write(
            root.join("var/lib/dpkg/status"),
            "Package: base-files\nStatus: install ok installed\nArchitecture: all\nVersion: 12.4\n\n\
             Package: dpkg\nStatus: install ok installed\nArchitecture: arm64\nVersion: 1.21.22\n\n",
        )
        .unwrap();
        std::fs::write(
            root.join("etc/apt/sources.list.d/acme.sources"),
            "Types: deb\nURIs: http://127.0.0.1:1/\nSuites: stable\nComponents: main\n",
        )
        .unwrap();
        std::fs::write(
            root.join("etc/os-release"),
            "ID=debian\nVERSION_ID=\"12\"\n",
        )
        .unwrap();
        let system = SystemRoot::open(root).unwrap();
        (dir, system)
    }

    fn profile(dir: &Path) -> Profile {
        let path = dir.join("move.toml");
        std::fs::write(&path, "schema = 1\nname = \"acme-move\"\n").unwrap();
        Profile::load(&path).unwrap()
    }

    fn saved(system: &SystemRoot, profile: Profile) -> SavedPlan {
        SavedPlan {
            format: SAVED_PLAN_FORMAT,
            profile,
            profile_text: String::new(),
            system: SystemFingerprint::capture(system).unwrap(),
            findings: vec![],
            install: vec!["acme-core".into()],
            remove: vec!["acme-legacy".into()],
            backup: vec![],
            sources: vec![("/etc/apt/sources.list.d/acme.sources".into(), "x".into())],
            targets: vec![],
        }
    }

    #[test]
    fn a_file_of_another_format_is_refused_naming_file_and_format() {
        let (dir, system) = system();
        let path = dir.path().join("plan.json");
        let mut value = serde_json::to_value(saved(&system, profile(dir.path()))).unwrap();
        for (format, shown) in [
            (serde_json::json!(2), "2"),
            (serde_json::json!(0), "0"),
            (serde_json::json!("1"), "\"1\""),
            (serde_json::Value::Null, "none"),
        ] {
            value["format"] = format;
            std::fs::write(&path, serde_json::to_vec(&value).unwrap()).unwrap();
            match SavedPlan::load(&path) {
                Err(e @ SavedPlanError::Format { .. }) => {
                    let text = e.to_string();
                    assert!(text.starts_with(&path.display().to_string()), "{text}");
                    assert!(text.contains(&format!("format {shown} ")), "{text}");
                }
                other => panic!("format {shown}: {other:?}"),
            }
        }
        value.as_object_mut().unwrap().remove("format");
        std::fs::write(&path, serde_json::to_vec(&value).unwrap()).unwrap();
        assert!(matches!(
            SavedPlan::load(&path),
            Err(SavedPlanError::Format { found, .. }) if found == "none"
        ));
    }

    #[test]
    fn a_truncated_file_is_an_error_with_its_line_and_column() {
        let (dir, system) = system();
        let path = dir.path().join("plan.json");
        saved(&system, profile(dir.path())).save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let cut = &text[..text.len() / 2];
        // The line the text stops on, counted as editors do: a cut just
        // after a newline stops on the (empty) line after it.
        let last_line = cut.matches('\n').count() + 1;
        std::fs::write(&path, cut).unwrap();
        match SavedPlan::load(&path) {
            Err(SavedPlanError::Json {
                path: p,
                line,
                column,
                ..
            }) => {
                assert_eq!(p, path);
                assert_eq!(line, last_line, "where the text stops");
                assert!(column >= 1, "a column is 1-based");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_saved_plan_reads_back_as_written() {
        let (dir, system) = system();
        let path = dir.path().join("plan.json");
        let plan = saved(&system, profile(dir.path()));
        plan.save(&path).unwrap();
        let again = SavedPlan::load(&path).unwrap();
        assert_eq!(again.format, SAVED_PLAN_FORMAT);
        assert_eq!(again.system, plan.system);
        assert_eq!(again.install, plan.install);
        assert_eq!(again.profile.name, "acme-move");
        assert_eq!(again.system.os_version_id.as_deref(), Some("12"));
        assert_eq!(again.system.dpkg_status_sha256.len(), 64);
        again.check_matches(&system).unwrap();
    }

    #[test]
    fn every_change_to_the_system_is_listed() {
        let (dir, system) = system();
        let plan = saved(&system, profile(dir.path()));
        let root = dir.path();
        // A package installed, a sources file added, the release changed.
        let mut status = std::fs::read_to_string(root.join("var/lib/dpkg/status")).unwrap();
        status.push_str(
            "Package: vim\nStatus: install ok installed\nArchitecture: all\nVersion: 1\n\n",
        );
        std::fs::write(root.join("var/lib/dpkg/status"), status).unwrap();
        std::fs::write(root.join("etc/apt/sources.list.d/extra.list"), "").unwrap();
        std::fs::write(
            root.join("etc/os-release"),
            "ID=debian\nVERSION_ID=\"13\"\n",
        )
        .unwrap();
        match plan.check_matches(&system) {
            Err(SavedPlanError::SystemChanged { changes }) => {
                assert_eq!(changes.len(), 3, "{changes:?}");
                assert!(
                    changes[0].contains("VERSION_ID was 12, is 13"),
                    "{changes:?}"
                );
                assert!(changes[1].contains("installed packages"), "{changes:?}");
                assert!(changes[2].contains("APT's sources"), "{changes:?}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_file_apt_does_not_read_leaves_the_sources_unchanged_but_an_edit_does_not() {
        let (dir, system) = system();
        let plan = saved(&system, profile(dir.path()));
        let d = dir.path().join("etc/apt/sources.list.d");
        std::fs::write(d.join("acme.sources.bak"), "anything").unwrap();
        plan.check_matches(&system).unwrap();
        std::fs::write(d.join("acme.sources"), "Types: deb\n").unwrap();
        assert!(matches!(
            plan.check_matches(&system),
            Err(SavedPlanError::SystemChanged { changes }) if changes.len() == 1
        ));
    }

    #[test]
    fn another_root_or_architecture_is_refused() {
        let (dir, system) = system();
        let mut plan = saved(&system, profile(dir.path()));
        plan.system.root = PathBuf::from("/srv/other");
        plan.system.architecture = "s390x".into();
        match plan.check_matches(&system) {
            Err(SavedPlanError::SystemChanged { changes }) => {
                assert_eq!(changes.len(), 2, "{changes:?}");
                assert!(changes[0].contains("/srv/other"), "{changes:?}");
                assert!(changes[1].contains("architecture s390x"), "{changes:?}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_journal_plan_from_before_the_format_still_loads_with_its_profile() {
        let (dir, system) = system();
        let profile = profile(dir.path());
        let run_dir = dir.path().join("run");
        std::fs::create_dir_all(&run_dir).unwrap();
        std::fs::write(
            run_dir.join(PLAN_JSON),
            r#"{"install":["acme-core"],"remove":["acme-legacy"],"backup":[{"name":"acme-daemon","arch":"all","version":"1.0"}],"sources":[["/etc/apt/sources.list.d/acme.sources","x"]]}"#,
        )
        .unwrap();
        std::fs::write(
            run_dir.join(PROFILE_JSON),
            serde_json::to_vec(&profile).unwrap(),
        )
        .unwrap();
        let plan = SavedPlan::load_beside_journal(&run_dir).unwrap();
        assert_eq!(plan.profile.name, "acme-move");
        assert_eq!(plan.backup[0].name, "acme-daemon");
        assert!(plan.targets.is_empty());
        // And a new one beside a journal is read as a saved plan.
        saved(&system, profile)
            .save(&run_dir.join(PLAN_JSON))
            .unwrap();
        let plan = SavedPlan::load_beside_journal(&run_dir).unwrap();
        assert!(!plan.system.architecture.is_empty());
        // Without profile.json the old form cannot resume: said, not guessed.
        std::fs::write(
            run_dir.join(PLAN_JSON),
            r#"{"install":[],"remove":[],"backup":[],"sources":[]}"#,
        )
        .unwrap();
        std::fs::remove_file(run_dir.join(PROFILE_JSON)).unwrap();
        assert!(matches!(
            SavedPlan::load_beside_journal(&run_dir),
            Err(SavedPlanError::Io { path, .. }) if path.ends_with(PROFILE_JSON)
        ));
    }
}
