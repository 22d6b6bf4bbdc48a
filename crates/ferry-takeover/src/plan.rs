//! The stage-2 plan: what `ferry takeover plan --save FILE` writes and
//! stage 2 executes — the config, the image (its sha256 and table), the
//! target disk and its size, the pre-flight's findings and the fingerprint
//! of the machine it was made for. One type, one format, versioned: a file
//! of another format is refused, never half-understood.
//!
//! Not the checks (`preflight`), nor stage 2 itself.

use std::path::{Path, PathBuf};

use ferry_image::{inspect_path, InspectError, Inspection, Label};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::preflight::{preflight, Finding, Fingerprint, Severity, TargetDisk};

/// The format this ferry writes and reads.
pub const TAKEOVER_PLAN_FORMAT: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Image(#[from] InspectError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not JSON, or JSON that is no takeover plan; where serde_json stopped.
    #[error("{}:{line}:{column}: not a takeover plan: {message}", path.display())]
    Json {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// A format this ferry does not read (`none` when the file has none).
    #[error(
        "{}: takeover plan format {found} is not one this ferry reads (it reads format {TAKEOVER_PLAN_FORMAT})",
        path.display()
    )]
    Format { path: PathBuf, found: String },
    /// A blocked plan is not one to carry out, so it is not written.
    #[error("the takeover plan is blocked: not saved to {}", path.display())]
    Blocked { path: PathBuf },
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> PlanError + '_ {
    move |source| PlanError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl From<ferry_journal::DocumentError> for PlanError {
    fn from(e: ferry_journal::DocumentError) -> Self {
        use ferry_journal::DocumentError;
        match e {
            DocumentError::Io { path, source } => PlanError::Io { path, source },
            DocumentError::Json {
                path,
                line,
                column,
                message,
            } => PlanError::Json {
                path,
                line,
                column,
                message,
            },
            DocumentError::Format { path, found } => PlanError::Format { path, found },
        }
    }
}

/// One partition of the image, as stage 2 needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionSummary {
    pub number: u32,
    /// In sectors of the table's sector size.
    pub start: u64,
    pub size: u64,
    /// As sfdisk prints it: MBR byte in hex, GPT GUID in upper case.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filesystem: Option<String>,
}

/// The image's partition table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSummary {
    /// `dos` or `gpt`.
    pub label: String,
    pub id: String,
    pub sector_size: u32,
    pub partitions: Vec<PartitionSummary>,
}

/// The image the plan was made with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageSummary {
    pub path: PathBuf,
    /// sha256 of the file as it is (compressed or not).
    pub sha256: String,
    pub file_size: u64,
    /// Uncompressed: what is written to the disk.
    pub size: u64,
    pub compression: String,
    /// As the pre-flight decided it (docs/takeover.md says how).
    pub architecture: Option<String>,
    pub table: TableSummary,
}

impl ImageSummary {
    /// The summary of an inspected image file.
    pub fn new(path: &Path, inspection: &Inspection, sha256: String, file_size: u64) -> Self {
        let (label, id) = match &inspection.label {
            Label::Dos { id } => ("dos", format!("0x{id:08x}")),
            Label::Gpt { id, .. } => ("gpt", id.clone()),
        };
        ImageSummary {
            path: path.to_path_buf(),
            sha256,
            file_size,
            size: inspection.size,
            compression: inspection.compression.clone(),
            architecture: None,
            table: TableSummary {
                label: label.into(),
                id,
                sector_size: inspection.sector_size,
                partitions: inspection
                    .partitions
                    .iter()
                    .map(|p| PartitionSummary {
                        number: p.number,
                        start: p.start,
                        size: p.size,
                        kind: p.kind.to_string(),
                        name: p.name.clone(),
                        attributes: p.attributes.clone(),
                        filesystem: p.filesystem.as_ref().map(|f| f.kind.clone()),
                    })
                    .collect(),
            },
        }
    }
}

/// The plan stage 2 executes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TakeoverPlan {
    pub format: u32,
    pub config: Config,
    pub image: ImageSummary,
    /// None when no disk could be chosen (the findings say why).
    pub target: Option<TargetDisk>,
    pub fingerprint: Fingerprint,
    pub findings: Vec<Finding>,
}

impl TakeoverPlan {
    /// Inspects and hashes `image`, and runs the pre-flight of the machine
    /// at `system` (commands looked up on `path_var`) against it.
    pub fn make(
        system: &Path,
        path_var: &str,
        config: Config,
        image: &Path,
    ) -> Result<TakeoverPlan, PlanError> {
        let inspection = inspect_path(image)?;
        let (sha256, file_size) = ferry_fetch::sha256_file(image).map_err(io(image))?;
        let mut summary = ImageSummary::new(image, &inspection, sha256, file_size);
        let checked = preflight(system, path_var, &config, &summary);
        summary.architecture = checked.image_architecture;
        Ok(TakeoverPlan {
            format: TAKEOVER_PLAN_FORMAT,
            config,
            image: summary,
            target: checked.target,
            fingerprint: checked.fingerprint,
            findings: checked.findings,
        })
    }

    pub fn blocked(&self) -> bool {
        self.findings
            .iter()
            .any(|f| f.severity == Severity::Blocker)
    }

    /// Writes the plan to `path` atomically; a blocked plan is refused.
    pub fn save(&self, path: &Path) -> Result<(), PlanError> {
        if self.blocked() {
            return Err(PlanError::Blocked {
                path: path.to_path_buf(),
            });
        }
        Ok(ferry_journal::save_document(path, self)?)
    }

    /// Reads a saved plan, refusing any other format than this ferry's.
    pub fn load(path: &Path) -> Result<TakeoverPlan, PlanError> {
        Ok(ferry_journal::load_document(path, TAKEOVER_PLAN_FORMAT)?)
    }
}
