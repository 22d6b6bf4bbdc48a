//! `ferry image inspect IMG`: an image's partition table and filesystems,
//! as text, JSON or an sfdisk script.

use std::io::Write;

use ferry_image::{inspect_path, sfdisk_script, InspectError, Inspection, Label};
use serde::Serialize;

use crate::cli::{Global, ImageCommand, ImageFormat};
use crate::exit::Exit;
use crate::render::{self, Failure};

pub fn run(command: ImageCommand, global: &Global) -> Result<Exit, Failure> {
    let (image, format) = match command {
        ImageCommand::Inspect { image, format } => (image, format),
        ImageCommand::Flash(args) => return flash(args, global),
        ImageCommand::Layout(args) => return layout(args, global),
    };
    let inspection = inspect_path(&image).map_err(|e| inspect_failure(&e, &image))?;
    let device = image
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| n != "-")
        .unwrap_or_else(|| "image".into());
    let text = match format {
        Some(ImageFormat::Sfdisk) => sfdisk_script(&inspection, &device),
        None => {
            render::output(&InspectOutput(&inspection), global);
            return Ok(Exit::Ok);
        }
    };
    // A reader that went away is not a reason to panic.
    let _ = std::io::stdout().write_all(text.as_bytes());
    Ok(Exit::Ok)
}

fn inspect_failure(error: &InspectError, image: &std::path::Path) -> Failure {
    let failure = Failure::bad_input(error.to_string()).at(image, None, None);
    match error {
        InspectError::Open { .. } => failure.hint("give the path of a disk image, or - for standard input"),
        InspectError::Table { .. } => failure.expected(
            "a disk image with an MBR or GPT partition table, plain or compressed with gzip, xz, zstd or bzip2",
        ),
    }
}

/// `image inspect`'s output: the inspection as JSON, a table for people.
#[derive(Serialize)]
#[serde(transparent)]
struct InspectOutput<'a>(&'a Inspection);

impl std::fmt::Display for InspectOutput<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&for_people(self.0))
    }
}

/// `image flash`'s output.
#[derive(Serialize)]
#[serde(transparent)]
struct FlashOutput(ferry_image::FlashReport);

impl std::fmt::Display for FlashOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let report = &self.0;
        writeln!(
            f,
            "flashed {} bytes of data ({} written) of a {}-byte image to {} in {:.1} s; \
             verified: {}{}{}",
            report.mapped_bytes,
            report.bytes_written,
            report.image_size,
            report.target.display(),
            report.seconds,
            report.verified,
            report
                .sha256
                .as_ref()
                .map(|s| format!(" {s}"))
                .unwrap_or_default(),
            if report.read_back { ", read back" } else { "" },
        )
    }
}

/// A progress event on stderr under `--json`.
#[derive(Serialize)]
struct ProgressEvent {
    event: &'static str,
    phase: &'static str,
    consumed: u64,
    total: u64,
    written: u64,
    bytes_per_second: u64,
    eta_seconds: Option<u64>,
}

fn for_people(inspection: &Inspection) -> String {
    let (label, id) = match &inspection.label {
        Label::Dos { id } => ("dos", format!("0x{id:08x}")),
        Label::Gpt { id, .. } => ("gpt", id.clone()),
    };
    let compression = match inspection.compression.as_str() {
        "none" => "uncompressed".to_string(),
        other => format!("{other}-compressed"),
    };
    let mut out = format!(
        "{label} partition table {id}, {}-byte sectors, {} bytes {compression}\n\n",
        inspection.sector_size, inspection.size
    );
    let rows: Vec<Vec<String>> = inspection
        .partitions
        .iter()
        .map(|p| {
            let fs = p.filesystem.as_ref();
            vec![
                p.number.to_string(),
                p.start.to_string(),
                p.size.to_string(),
                p.kind.to_string(),
                if p.bootable {
                    "*".into()
                } else {
                    String::new()
                },
                p.name.clone().unwrap_or_default(),
                fs.map(|f| f.kind.clone()).unwrap_or_default(),
                fs.and_then(|f| f.label.clone()).unwrap_or_default(),
                fs.and_then(|f| f.uuid.clone()).unwrap_or_default(),
            ]
        })
        .collect();
    out.push_str(&render::table(
        &[
            "#", "start", "sectors", "type", "boot", "name", "fs", "label", "uuid",
        ],
        &rows,
    ));
    out
}

/// Shows a flash's progress on stderr: a line redrawn on a terminal, one
/// line per tenth otherwise, JSON events with `--json`.
struct FlashMeter {
    started: std::time::Instant,
    json: bool,
    terminal: bool,
    last_shown: Option<std::time::Instant>,
    last_tenth: u64,
}

impl FlashMeter {
    fn new(json: bool) -> Self {
        use std::io::IsTerminal;
        FlashMeter {
            started: std::time::Instant::now(),
            json,
            terminal: std::io::stderr().is_terminal(),
            last_shown: None,
            last_tenth: 0,
        }
    }
}

impl ferry_image::FlashProgress for FlashMeter {
    fn progress(&mut self, consumed: u64, total: u64, written: u64) {
        let now = std::time::Instant::now();
        let tenth = (consumed * 10).checked_div(total).unwrap_or(0);
        let due = if self.terminal && !self.json {
            self.last_shown
                .is_none_or(|t| now.duration_since(t).as_millis() >= 200)
                || consumed >= total
        } else {
            tenth > self.last_tenth || self.last_shown.is_none()
        };
        if !due {
            return;
        }
        self.last_shown = Some(now);
        self.last_tenth = tenth;
        let seconds = now.duration_since(self.started).as_secs_f64().max(1e-3);
        let rate = consumed as f64 / seconds;
        let eta = (total > consumed && rate > 0.0).then(|| (total - consumed) as f64 / rate);
        let mut err = std::io::stderr();
        let _ = if self.json {
            let event = ProgressEvent {
                event: "progress",
                phase: "flash",
                consumed,
                total,
                written,
                bytes_per_second: rate as u64,
                eta_seconds: eta.map(|e| e.round() as u64),
            };
            writeln!(err, "{}", serde_json::to_string(&event).unwrap_or_default())
        } else {
            let line = format!(
                "flash: {} of {} MiB ({}%), {} MiB written, {:.0} MiB/s{}",
                consumed >> 20,
                total >> 20,
                (consumed * 100).checked_div(total).unwrap_or(0),
                written >> 20,
                rate / (1u64 << 20) as f64,
                eta.map(|e| format!(", {e:.0} s left")).unwrap_or_default()
            );
            if self.terminal {
                write!(err, "\r{line}\x1b[K")
            } else {
                writeln!(err, "{line}")
            }
        };
    }
}

pub fn flash(args: crate::cli::FlashArgs, global: &Global) -> Result<Exit, Failure> {
    let bmap = match &args.bmap {
        Some(path) => {
            let text = std::fs::read(path).map_err(|e| {
                Failure::bad_input(format!("{}: {e}", path.display())).at(path, None, None)
            })?;
            let bmap = ferry_image::parse_bmap(&text).map_err(|e| {
                let line = match &e {
                    ferry_image::BmapError::Syntax { line, .. } => Some(*line),
                    _ => None,
                };
                Failure::bad_input(format!("{}: {e}", path.display()))
                    .at(path, line, None)
                    .expected("a block map as bmaptool writes it (format 1.x or 2.0)")
                    .hint("nothing was written")
            })?;
            Some(bmap)
        }
        None => None,
    };
    let options = ferry_image::FlashOptions {
        bmap,
        read_back: args.read_back,
        exact: args.exact,
    };
    let mut meter = FlashMeter::new(global.json);
    let Some(target) = &args.target else {
        let result =
            ferry_image::flash_partitions(&args.image, &args.partition, &options, &mut meter);
        if meter.terminal && !global.json {
            let _ = writeln!(std::io::stderr());
        }
        return match result {
            Ok(report) => {
                render::output(&PartitionsOutput(report), global);
                Ok(Exit::Ok)
            }
            Err(e) => Err(flash_failure(e)),
        };
    };
    let result = ferry_image::flash(&args.image, target, &options, &mut meter);
    if meter.terminal && !global.json {
        let _ = writeln!(std::io::stderr());
    }
    match result {
        Ok(report) => {
            render::output(&FlashOutput(report), global);
            Ok(Exit::Ok)
        }
        Err(e) => Err(flash_failure(e)),
    }
}

fn flash_failure(e: ferry_image::FlashError) -> Failure {
    match e {
        e @ ferry_image::FlashError::Refused { .. } => {
            Failure::bad_input(e.to_string()).hint("nothing was written; the target is as it was")
        }
        e => Failure::failed(e.to_string())
            .bytes_written(e.bytes_written())
            .hint("the target was partly written: flash it again before using it"),
    }
}

/// `image flash --partition`'s output.
#[derive(Serialize)]
#[serde(transparent)]
struct PartitionsOutput(ferry_image::PartitionsReport);

impl std::fmt::Display for PartitionsOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for p in &self.0.partitions {
            writeln!(
                f,
                "partition {} ({} bytes, sha256 {}) to {}: {} bytes written{}",
                p.number,
                p.size,
                p.sha256,
                p.target.display(),
                p.bytes_written,
                if p.read_back { ", read back" } else { "" }
            )?;
        }
        Ok(())
    }
}

/// `DISK`, `DISK:N`, `DISK:free` or a partition's device (`/dev/sda5`) of
/// `--into`.
fn parse_into(text: &str) -> (std::path::PathBuf, ferry_image::Region) {
    use ferry_image::Region;
    if let Some((disk, suffix)) = text.rsplit_once(':') {
        if let Ok(n) = suffix.parse::<u32>() {
            return (disk.into(), Region::Partition(n));
        }
        if suffix == "free" {
            return (disk.into(), Region::FreeSpace);
        }
    }
    if let Some((disk, n)) = parent_disk(std::path::Path::new(text)) {
        return (disk, Region::Partition(n));
    }
    (text.into(), Region::WholeDisk)
}

/// The disk and number of a partition's block device, from sysfs.
fn parent_disk(device: &std::path::Path) -> Option<(std::path::PathBuf, u32)> {
    let canonical = std::fs::canonicalize(device).ok()?;
    let name = canonical.file_name()?.to_str()?.to_string();
    let sys = std::path::Path::new("/sys/class/block").join(&name);
    let number = std::fs::read_to_string(sys.join("partition")).ok()?;
    let parent = std::fs::canonicalize(&sys)
        .ok()?
        .parent()?
        .file_name()?
        .to_str()?
        .to_string();
    Some((
        std::path::Path::new("/dev").join(parent),
        number.trim().parse().ok()?,
    ))
}

/// What `sfdisk --dump DISK` says, and the disk's size in sectors.
fn dump_disk(disk: &std::path::Path) -> Result<ferry_image::DiskDump, Failure> {
    ferry_image::sfdisk_dump(disk).map_err(|e| match e {
        ferry_image::SfdiskError::Run(_) => Failure::failed(e.to_string()).hint("install fdisk"),
        _ => Failure::bad_input(e.to_string())
            .at(disk, None, None)
            .expected("a disk or disk image with a partition table"),
    })
}

/// The device node of partition `number` of block device `disk`
/// (`/dev/sda` 2 → `/dev/sda2`, `/dev/nvme0n1` 2 → `/dev/nvme0n1p2`).
fn partition_device(disk: &std::path::Path, number: u32) -> std::path::PathBuf {
    let text = disk.display().to_string();
    if text.ends_with(|c: char| c.is_ascii_digit()) {
        format!("{text}p{number}").into()
    } else {
        format!("{text}{number}").into()
    }
}

/// Whether `device` is mounted or an active swap.
fn in_use(device: &std::path::Path) -> bool {
    let canonical = std::fs::canonicalize(device).unwrap_or_else(|_| device.to_path_buf());
    let name = canonical.display().to_string();
    let listed = |file: &str| {
        std::fs::read_to_string(file)
            .map(|t| {
                t.lines()
                    .any(|l| l.split_whitespace().next() == Some(name.as_str()))
            })
            .unwrap_or(false)
    };
    listed("/proc/swaps") || listed("/proc/mounts")
}

/// `image layout`'s output.
#[derive(Serialize)]
struct LayoutOutput {
    #[serde(flatten)]
    layout: ferry_image::Layout,
    disk: std::path::PathBuf,
    applied: bool,
}

impl std::fmt::Display for LayoutOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let l = &self.layout;
        match l.replaces {
            Some(n) => writeln!(
                f,
                "into partition {n} of {} (sectors {}..{}):",
                self.disk.display(),
                l.region_start,
                l.region_end
            )?,
            None if l.whole_disk => writeln!(f, "into the whole of {}:", self.disk.display())?,
            None => writeln!(
                f,
                "into free space of {} (sectors {}..{}):",
                self.disk.display(),
                l.region_start,
                l.region_end
            )?,
        }
        let rows: Vec<Vec<String>> = l
            .placements
            .iter()
            .map(|p| {
                vec![
                    p.image_partition.to_string(),
                    p.start.to_string(),
                    p.size.to_string(),
                    p.kind.clone(),
                    if p.logical { "logical" } else { "" }.to_string(),
                    if p.grown { "grown" } else { "" }.to_string(),
                ]
            })
            .collect();
        f.write_str(&render::table(
            &["image #", "start", "sectors", "type", "kind", "grown"],
            &rows,
        ))?;
        writeln!(f, "\nnew table (sfdisk script):\n{}", l.script)?;
        if self.applied {
            writeln!(f, "written to {} and read back", self.disk.display())
        } else {
            writeln!(f, "nothing was written; --apply writes it")
        }
    }
}

pub fn layout(args: crate::cli::LayoutArgs, global: &Global) -> Result<Exit, Failure> {
    let (disk, into) = parse_into(&args.into);
    let inspection = inspect_path(&args.image).map_err(|e| inspect_failure(&e, &args.image))?;
    let before = dump_disk(&disk)?;
    let layout =
        ferry_image::compute_layout(&inspection, &before, into, args.grow).map_err(|e| {
            Failure::bad_input(format!("{}: {e}", disk.display())).hint("nothing was written")
        })?;
    if args.apply {
        let is_device = std::fs::metadata(&disk)
            .map(|m| std::os::unix::fs::FileTypeExt::is_block_device(&m.file_type()))
            .unwrap_or(false);
        if let (true, ferry_image::Region::Partition(n)) = (is_device, into) {
            let device = partition_device(&disk, n);
            if in_use(&device) {
                return Err(Failure::bad_input(format!(
                    "{} is mounted or an active swap; unmount it (swapoff) first",
                    device.display()
                ))
                .hint("nothing was written"));
            }
        }
        apply_layout(&disk, &layout, &before)?;
    }
    render::output(
        &LayoutOutput {
            layout,
            disk,
            applied: args.apply,
        },
        global,
    );
    Ok(Exit::Ok)
}

/// Writes the new table with sfdisk, then reads it back: every kept
/// partition as it was, every placed one where it was laid.
fn apply_layout(
    disk: &std::path::Path,
    layout: &ferry_image::Layout,
    before: &ferry_image::DiskDump,
) -> Result<(), Failure> {
    ferry_image::sfdisk_write(disk, layout, before)
        .map(|_| ())
        .map_err(|e| match e {
            ferry_image::SfdiskError::Refused { .. } => Failure::failed(e.to_string()).hint(
                "sfdisk writes a table whole or not at all; check `sfdisk --dump` of the disk",
            ),
            _ => Failure::failed(e.to_string()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_image::{Filesystem, FlashReport, PartitionInfo, PartitionType};

    fn inspection() -> Inspection {
        Inspection {
            label: Label::Dos { id: 0x5eed0001 },
            sector_size: 512,
            size: 96 << 20,
            compression: "gzip".into(),
            partitions: vec![
                PartitionInfo {
                    number: 1,
                    start: 2048,
                    size: 16384,
                    kind: PartitionType::Dos(0x0c),
                    bootable: true,
                    name: None,
                    uuid: None,
                    attributes: None,
                    filesystem: Some(Filesystem {
                        kind: "vfat".into(),
                        label: Some("BOOT".into()),
                        uuid: Some("1234-ABCD".into()),
                    }),
                },
                PartitionInfo {
                    number: 5,
                    start: 81920,
                    size: 40960,
                    kind: PartitionType::Dos(0x83),
                    bootable: false,
                    name: None,
                    uuid: None,
                    attributes: None,
                    filesystem: None,
                },
            ],
        }
    }

    #[test]
    fn inspect_for_people() {
        insta::assert_snapshot!(InspectOutput(&inspection()).to_string());
    }

    #[test]
    fn inspect_as_json() {
        insta::assert_json_snapshot!(InspectOutput(&inspection()));
    }

    #[test]
    fn inspect_as_an_sfdisk_script() {
        insta::assert_snapshot!(sfdisk_script(&inspection(), "disk.img"));
    }

    fn report() -> FlashReport {
        FlashReport {
            target: "/dev/sdz".into(),
            image_size: 2 << 30,
            bytes_written: 512 << 20,
            mapped_bytes: 512 << 20,
            verified: "bmap-sha256".into(),
            sha256: None,
            read_back: true,
            exact: false,
            compression: "gzip".into(),
            seconds: 12.5,
        }
    }

    #[test]
    fn flash_for_people() {
        insta::assert_snapshot!(FlashOutput(report()).to_string());
    }

    #[test]
    fn flash_as_json() {
        insta::assert_json_snapshot!(FlashOutput(report()));
    }
}
