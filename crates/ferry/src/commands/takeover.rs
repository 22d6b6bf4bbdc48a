//! `ferry takeover plan|run|status`: the read-only pre-flight of an OS
//! takeover of the machine at `--root` (default `/`) and the stage-2 plan;
//! the run itself (stage 1 here, stage 2 as PID 1); and what became of it.

use std::fmt;
use std::path::Path;

use std::io::IsTerminal;

use ferry_takeover::{
    Config, ConfigError, Firmware, PlanError, RunError, RunRequest, Severity, TakeoverPlan,
    TakeoverStatus,
};
use serde::Serialize;

use crate::cli::{Global, TakeoverCommand, TakeoverPlanArgs, TakeoverRunArgs};
use crate::exit::Exit;
use crate::render::{self, Failure};

pub fn run(command: TakeoverCommand, global: &Global) -> Result<Exit, Failure> {
    match command {
        TakeoverCommand::Plan(args) => plan(args, global),
        TakeoverCommand::Run(args) => run_takeover(args, global),
        TakeoverCommand::Status => status(global),
        TakeoverCommand::Confirm => confirm(global),
        TakeoverCommand::Stage2 => Ok(match ferry_takeover::stage2::work() {
            0 => Exit::Ok,
            _ => Exit::Failed,
        }),
        TakeoverCommand::Stage2Init => Err(Failure::bad_input(
            "stage2-init runs only as PID 1, started by a takeover",
        )),
    }
}

fn run_takeover(args: TakeoverRunArgs, global: &Global) -> Result<Exit, Failure> {
    if global.root != Path::new("/") {
        return Err(Failure::bad_input(
            "takeover run replaces the running OS; it does not take --root",
        ));
    }
    let (config, label, sha256) = match &args.config {
        Some(path) => {
            let config = Config::load(path).map_err(config_failure)?;
            let (sha256, _) = ferry_fetch::sha256_file(path)
                .map_err(|e| Failure::bad_input(e.to_string()).at(path, None, None))?;
            (config, path.display().to_string(), sha256)
        }
        None => (Config::default(), "defaults".to_string(), String::new()),
    };
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            return Err(Failure::bad_input(
                "ferry takeover run replaces this machine's OS and there is no terminal to ask",
            )
            .hint("review `ferry takeover plan` first, then pass --yes"));
        }
        eprint!(
            "Replace the OS of this machine with {}? Everything not carried over or backed up is lost. [y/N] ",
            args.image.display()
        );
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Err(Failure::new(
                Exit::Failed,
                "not confirmed; nothing was changed",
            ));
        }
    }
    let path_var = std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    let request = RunRequest {
        config,
        config_label: label,
        config_sha256: sha256,
        image: args.image.clone(),
        path_var,
        fault: args.inject_fault,
    };
    let quiet = global.json;
    let mut say = |phase: &str| {
        if !quiet {
            eprintln!("takeover: {phase}");
        }
    };
    match ferry_takeover::run::run(request, &mut say) {
        // Strategy flasher: the machine reboots into the new OS once.
        Ok(id) => {
            render::output(&Rebooting { id }, global);
            Ok(Exit::Ok)
        }
        Err(RunError::Blocked(plan)) => {
            render::output(
                &PlanOutput {
                    blocked: true,
                    saved: None,
                    plan: &plan,
                },
                global,
            );
            Ok(Exit::Blocked)
        }
        Err(RunError::Plan(e)) => Err(plan_failure(e, &args.image)),
        Err(e @ (RunError::NotRoot | RunError::OtherNamespace)) => {
            Err(Failure::bad_input(e.to_string()).hint("nothing was changed"))
        }
        Err(e) => Err(Failure::failed(e.to_string())
            .hint("`ferry takeover status` shows the record of this attempt")),
    }
}

fn status(global: &Global) -> Result<Exit, Failure> {
    match ferry_takeover::status(&global.root) {
        Ok(Some(status)) => {
            render::output(&StatusOutput(&status), global);
            Ok(if status.completed() {
                Exit::Ok
            } else {
                Exit::Failed
            })
        }
        Ok(None) => Err(Failure::new(
            Exit::Failed,
            "no takeover on record on this system",
        )),
        Err(e) => Err(Failure::failed(e.reason.clone()).at(&e.path, None, None)),
    }
}

/// What `takeover run` prints when the machine reboots into the new OS
/// once (strategy flasher).
#[derive(Serialize)]
struct Rebooting {
    id: String,
}

impl fmt::Display for Rebooting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Takeover {}: the new OS is written beside the old one; the machine reboots into it once.\n\
             It must run `ferry takeover confirm`, or the next boot is the old OS's.",
            self.id
        )
    }
}

fn confirm(global: &Global) -> Result<Exit, Failure> {
    match ferry_takeover::flasher::confirm(&global.root) {
        Ok(confirmed) => {
            render::output(&ConfirmOutput(&confirmed), global);
            Ok(Exit::Ok)
        }
        Err(e @ ferry_takeover::flasher::ConfirmError::Nothing) => {
            Err(Failure::new(Exit::Failed, e.to_string()))
        }
        Err(e) => Err(Failure::failed(e.to_string())
            .hint("the new OS stays until the next boot, which is the old OS's")),
    }
}

#[derive(Serialize)]
#[serde(transparent)]
struct ConfirmOutput<'a>(&'a ferry_takeover::flasher::Confirmed);

impl fmt::Display for ConfirmOutput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.now {
            writeln!(
                f,
                "Takeover {} confirmed: this OS boots by default from now on.",
                self.0.id
            )
        } else {
            writeln!(f, "Takeover {} was confirmed before.", self.0.id)
        }
    }
}

/// What `takeover status` prints.
#[derive(Serialize)]
#[serde(transparent)]
struct StatusOutput<'a>(&'a TakeoverStatus);

impl fmt::Display for StatusOutput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        writeln!(f, "Takeover {}: {}", s.id, s.summary)?;
        for step in &s.steps {
            let state = serde_json::to_value(step.state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let time = step.seconds.map(|t| format!("{t} s")).unwrap_or_default();
            let name = &step.step;
            write!(f, "  {name:<15} {state:<8} {time:>6}")?;
            if let Some(e) = &step.error {
                write!(f, "  {e}")?;
            }
            writeln!(f)?;
        }
        writeln!(f, "  record {} ({} events)", s.record.display(), s.events)
    }
}

fn plan(args: TakeoverPlanArgs, global: &Global) -> Result<Exit, Failure> {
    let config = match &args.config {
        Some(path) => Config::load(path).map_err(config_failure)?,
        None => Config::default(),
    };
    // Tools are looked up where this ferry would look for them.
    let path_var = std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    let plan = TakeoverPlan::make(&global.root, &path_var, config, &args.image)
        .map_err(|e| plan_failure(e, &args.image))?;
    let mut saved = None;
    if let Some(path) = &args.save {
        match plan.save(path) {
            Ok(()) => saved = Some(path.display().to_string()),
            // Reported by the output below and by exit 3.
            Err(PlanError::Blocked { .. }) => {}
            Err(e) => return Err(Failure::failed(e.to_string()).at(path, None, None)),
        }
    }
    render::output(
        &PlanOutput {
            blocked: plan.blocked(),
            saved,
            plan: &plan,
        },
        global,
    );
    Ok(if plan.blocked() {
        Exit::Blocked
    } else {
        Exit::Ok
    })
}

fn config_failure(e: ConfigError) -> Failure {
    let line = (e.line > 0).then_some(e.line);
    let column = (e.column > 0).then_some(e.column);
    Failure::bad_input(e.message.clone())
        .at(&e.path, line, column)
        .expected("a takeover config (see docs/takeover.md)")
        .hint("nothing was changed")
}

fn plan_failure(e: PlanError, image: &Path) -> Failure {
    match e {
        PlanError::Image(e) => Failure::bad_input(e.to_string())
            .at(image, None, None)
            .expected("a disk image with an MBR or GPT partition table, plain or compressed with gzip, xz, zstd or bzip2"),
        PlanError::Io { ref path, .. } => {
            let path = path.clone();
            Failure::bad_input(e.to_string()).at(&path, None, None)
        }
        other => Failure::failed(other.to_string()),
    }
}

/// What `takeover plan` prints: the plan, whether it is blocked, and where
/// it was saved (null when it was not).
#[derive(Serialize)]
struct PlanOutput<'a> {
    blocked: bool,
    saved: Option<String>,
    #[serde(flatten)]
    plan: &'a TakeoverPlan,
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

impl fmt::Display for PlanOutput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plan = self.plan;
        let image = &plan.image;
        let fp = &plan.fingerprint;
        writeln!(f, "Takeover plan: {}", image.path.display())?;
        let compression = match image.compression.as_str() {
            "none" => "uncompressed".to_string(),
            other => format!("{other}, {}-byte file", image.file_size),
        };
        writeln!(
            f,
            "  image     {} table {}, {} bytes ({compression}), {}",
            image.table.label,
            image.table.id,
            image.size,
            image
                .architecture
                .as_deref()
                .unwrap_or("architecture unknown")
        )?;
        writeln!(f, "            sha256 {}", image.sha256)?;
        match &plan.target {
            Some(t) => writeln!(
                f,
                "  disk      {}, {} bytes{}",
                t.device,
                t.size_bytes,
                if t.holds_root { ", holds /" } else { "" }
            )?,
            None => writeln!(f, "  disk      none chosen (see the checks)")?,
        }
        let firmware = match (fp.firmware, fp.secure_boot) {
            (Firmware::Bios, _) => "BIOS".to_string(),
            (Firmware::Uefi, Some(true)) => "UEFI, Secure Boot on".into(),
            (Firmware::Uefi, Some(false)) => "UEFI, Secure Boot off".into(),
            (Firmware::Uefi, None) => "UEFI".into(),
        };
        writeln!(
            f,
            "  machine   {}, {firmware}{}, / on {}",
            fp.architecture.as_deref().unwrap_or("architecture unknown"),
            fp.model
                .as_deref()
                .map(|m| format!(", {m}"))
                .unwrap_or_default(),
            fp.root_device.as_deref().unwrap_or("(unknown)")
        )?;
        let c = &plan.config;
        writeln!(
            f,
            "  strategy  {}; network carried over: {}; hostname {}, SSH host keys {}, \
             authorized_keys {}, machine-id {}",
            c.strategy,
            yes_no(c.network.carry),
            yes_no(c.identity.hostname),
            yes_no(c.identity.ssh_host_keys),
            yes_no(c.identity.authorized_keys),
            yes_no(c.identity.machine_id)
        )?;
        writeln!(f, "\nImage partitions")?;
        let rows: Vec<Vec<String>> = image
            .table
            .partitions
            .iter()
            .map(|p| {
                let mut role = Vec::new();
                if c.target.grow == Some(p.number) {
                    role.push("grown");
                }
                if c.target.data_partition == Some(p.number) {
                    role.push("data");
                }
                vec![
                    p.number.to_string(),
                    p.start.to_string(),
                    p.size.to_string(),
                    p.kind.clone(),
                    p.name.clone().unwrap_or_default(),
                    p.filesystem.clone().unwrap_or_default(),
                    role.join(", "),
                ]
            })
            .collect();
        for line in render::table(
            &["#", "start", "sectors", "type", "name", "fs", "role"],
            &rows,
        )
        .lines()
        {
            writeln!(f, "  {line}")?;
        }
        writeln!(f, "\nChecks")?;
        for finding in &plan.findings {
            let label = match finding.severity {
                Severity::Blocker => "BLOCKER",
                Severity::Warning => "warning",
                Severity::Info => "info",
            };
            render::check_line(
                f,
                label,
                &finding.key,
                &finding.finding,
                &finding.remediation,
            )?;
        }
        if self.blocked {
            f.write_str("\nBlocked: resolve the blockers above; nothing was changed")?;
            f.write_str(if self.saved.is_none() {
                " and no plan was saved.\n"
            } else {
                ".\n"
            })
        } else if let Some(path) = &self.saved {
            writeln!(f, "\nReady: the stage-2 plan is saved to {path}.")
        } else {
            f.write_str("\nReady: `--save FILE` writes the stage-2 plan.\n")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_takeover::plan::{ImageSummary, PartitionSummary, TableSummary};
    use ferry_takeover::{Finding, FindingKey, Fingerprint, TargetDisk, TAKEOVER_PLAN_FORMAT};

    fn fixed_plan() -> TakeoverPlan {
        let mut config = Config::default();
        config.target.grow = Some(2);
        config.target.data_partition = Some(2);
        config.watchdog.require = true;
        let part = |number: u32, start: u64, size: u64, kind: &str, name: &str, fs: &str| {
            PartitionSummary {
                number,
                start,
                size,
                kind: kind.into(),
                name: Some(name.into()),
                attributes: None,
                filesystem: Some(fs.into()),
            }
        };
        TakeoverPlan {
            format: TAKEOVER_PLAN_FORMAT,
            config,
            image: ImageSummary {
                path: "/srv/images/new-os.img.gz".into(),
                sha256: "5e".repeat(32),
                file_size: 180 << 20,
                size: 2 << 30,
                compression: "gzip".into(),
                architecture: Some("x86_64".into()),
                table: TableSummary {
                    label: "gpt".into(),
                    id: "8F2C1E4A-1B2C-4D5E-8F90-A1B2C3D4E5F6".into(),
                    sector_size: 512,
                    partitions: vec![
                        part(1, 2048, 204800, "C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "boot", "vfat"),
                        part(2, 206848, 3987456, "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709", "root", "ext4"),
                    ],
                },
            },
            target: Some(TargetDisk {
                device: "/dev/nvme0n1".into(),
                size_bytes: 256 << 30,
                holds_root: true,
            }),
            fingerprint: Fingerprint {
                architecture: Some("x86_64".into()),
                root_device: Some("/dev/nvme0n1p2".into()),
                firmware: Firmware::Uefi,
                secure_boot: Some(false),
                model: None,
            },
            findings: vec![
                Finding {
                    key: FindingKey::Watchdog,
                    severity: Severity::Blocker,
                    finding: "no hardware watchdog (dev/watchdog, sys/class/watchdog) and the config requires one".into(),
                    remediation: "load the watchdog driver of this machine, or set [watchdog] require = false".into(),
                },
                Finding {
                    key: FindingKey::Ram,
                    severity: Severity::Warning,
                    finding: "300 MiB of memory available, the image and the RAM stage need 436 MiB: the image will be streamed from a partition instead of held in RAM".into(),
                    remediation: "nothing to do; free memory to hold the image in RAM".into(),
                },
                Finding {
                    key: FindingKey::Architecture,
                    severity: Severity::Info,
                    finding: "the image and this machine are both x86_64".into(),
                    remediation: "nothing to do".into(),
                },
            ],
        }
    }

    fn output(plan: &TakeoverPlan) -> PlanOutput<'_> {
        PlanOutput {
            blocked: plan.blocked(),
            saved: None,
            plan,
        }
    }

    #[test]
    fn takeover_plan_for_people() {
        let plan = fixed_plan();
        insta::assert_snapshot!(output(&plan).to_string());
    }

    #[test]
    fn takeover_plan_as_json() {
        let plan = fixed_plan();
        insta::assert_json_snapshot!(output(&plan));
    }
}
