//! `layout`: the seed's stage-1 computation. The image's partitions are laid
//! into a region of a disk (a partition that gives up its space, such as the
//! swap, or the whole disk), aligned, with one partition grown to take the
//! region's trailing space; the result is the disk's whole new table as an
//! sfdisk script, in which every partition outside the region is the line
//! `sfdisk --dump` gave for it, unchanged.

use serde::Serialize;

use crate::inspect::Inspection;
use crate::table::{Label, PartitionType};

/// Partitions start on 1 MiB boundaries, as sfdisk and parted place them.
const ALIGN_BYTES: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("the disk's table could not be read from `sfdisk --dump`: {0}")]
    Dump(String),
    #[error("the disk has no partition {0}")]
    NoPartition(u32),
    #[error(
        "partition {0} is an extended partition; name the partition inside it to give up its space"
    )]
    Extended(u32),
    #[error("the image has no partition {0} to grow")]
    NoGrow(u32),
    #[error("the image's partitions need {needed} sectors; the region has {available}")]
    TooSmall { needed: u64, available: u64 },
    #[error("the image has {sector}-byte sectors, the disk {disk}-byte ones")]
    SectorSize { sector: u32, disk: u32 },
    #[error("an MBR has four primary slots: {0}")]
    Slots(String),
}

/// A disk's table as `sfdisk --dump` printed it.
#[derive(Debug, Clone)]
pub struct DiskDump {
    /// `label: dos` or `label: gpt`.
    pub gpt: bool,
    pub sector_size: u32,
    /// Header lines (label, label-id, device, unit, first-lba, …).
    pub header: Vec<String>,
    pub partitions: Vec<DumpedPartition>,
    /// The disk's size in sectors.
    pub sectors: u64,
}

/// One partition line of a dump.
#[derive(Debug, Clone)]
pub struct DumpedPartition {
    pub number: u32,
    pub start: u64,
    pub size: u64,
    pub kind: String,
    /// The whole line, as sfdisk printed it.
    pub line: String,
}

impl DumpedPartition {
    fn is_extended(&self) -> bool {
        matches!(self.kind.as_str(), "5" | "f" | "85")
    }
}

/// Reads an `sfdisk --dump` script; `sectors` is the disk's size.
pub fn parse_dump(text: &str, sectors: u64) -> Result<DiskDump, LayoutError> {
    let mut header = Vec::new();
    let mut partitions = Vec::new();
    let mut gpt = false;
    let mut sector_size = 512;
    for line in text.lines() {
        if let Some((name, rest)) = line.split_once(" : ") {
            let digits: String = name
                .chars()
                .rev()
                .take_while(char::is_ascii_digit)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            let number = digits
                .parse()
                .map_err(|_| LayoutError::Dump(format!("no partition number in `{line}`")))?;
            let field = |key: &str| {
                rest.split(',')
                    .map(str::trim)
                    .find_map(|f| f.strip_prefix(key).map(|v| v.trim().to_string()))
            };
            let number_of = |key: &str| -> Result<u64, LayoutError> {
                field(key)
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| LayoutError::Dump(format!("no {key} in `{line}`")))
            };
            partitions.push(DumpedPartition {
                number,
                start: number_of("start=")?,
                size: number_of("size=")?,
                kind: field("type=").unwrap_or_default(),
                line: line.to_string(),
            });
        } else if !line.trim().is_empty() {
            if line.trim() == "label: gpt" {
                gpt = true;
            }
            if let Some(size) = line.strip_prefix("sector-size:") {
                sector_size = size
                    .trim()
                    .parse()
                    .map_err(|_| LayoutError::Dump(format!("bad sector size in `{line}`")))?;
            }
            header.push(line.to_string());
        }
    }
    if header.is_empty() {
        return Err(LayoutError::Dump("no `label:` line".into()));
    }
    Ok(DiskDump {
        gpt,
        sector_size,
        header,
        partitions,
        sectors,
    })
}

/// Where on the disk the image's partitions go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    /// The space of this partition, which gives it up (the seed's swap).
    Partition(u32),
    /// The largest free space between the disk's partitions.
    FreeSpace,
    /// The whole disk, under a new table.
    WholeDisk,
}

/// Where one of the image's partitions goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Placement {
    /// The partition's number in the image.
    pub image_partition: u32,
    /// First sector on the disk.
    pub start: u64,
    /// Length in sectors (larger than in the image for the grown one).
    pub size: u64,
    /// The partition type as the disk's table writes it.
    #[serde(rename = "type")]
    pub kind: String,
    /// Whether the partition became a logical one (MBR, region in the
    /// extended partition).
    pub logical: bool,
    pub grown: bool,
    /// The image's bootable flag (MBR) and name (GPT), carried over where
    /// the disk's table has them.
    pub bootable: bool,
    pub name: Option<String>,
}

/// The computed layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Layout {
    /// The region, in the disk's sectors: `start..end`.
    pub region_start: u64,
    pub region_end: u64,
    /// The partition whose space the region is, if it is one.
    pub replaces: Option<u32>,
    /// Whether the region is the whole disk under a new table (else, with
    /// no partition replaced, it is free space between partitions).
    pub whole_disk: bool,
    pub placements: Vec<Placement>,
    /// The disk's whole new table, for `sfdisk`.
    pub script: String,
}

fn align_up(value: u64, align: u64) -> u64 {
    value.div_ceil(align) * align
}

/// A GPT type GUID for an MBR type byte, and the reverse, for an image
/// whose table is not the disk's kind.
fn gpt_type_for(byte: u8) -> &'static str {
    match byte {
        0x82 => "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F",
        0xef => "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
        0x01 | 0x04 | 0x06 | 0x07 | 0x0b | 0x0c | 0x0e => "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7",
        _ => "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
    }
}

fn dos_type_for(guid: &str) -> &'static str {
    match guid {
        "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F" => "82",
        "C12A7328-F81F-11D2-BA4B-00A0C93EC93B" => "ef",
        "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7" => "c",
        _ => "83",
    }
}

/// Lays `image`'s partitions into `disk`: into partition `into`'s space, or
/// the whole disk when `into` is `None`; `grow` names the image partition
/// that takes the trailing space.
pub fn compute(
    image: &Inspection,
    disk: &DiskDump,
    region: Region,
    grow: Option<u32>,
) -> Result<Layout, LayoutError> {
    let into = match region {
        Region::Partition(n) => Some(n),
        Region::FreeSpace | Region::WholeDisk => None,
    };
    if image.sector_size != disk.sector_size {
        return Err(LayoutError::SectorSize {
            sector: image.sector_size,
            disk: disk.sector_size,
        });
    }
    let sector = u64::from(disk.sector_size);
    let align = ALIGN_BYTES / sector;
    let data: Vec<_> = image
        .partitions
        .iter()
        .filter(|p| !matches!(p.kind, PartitionType::Dos(0x05 | 0x0f | 0x85)))
        .collect();
    if let Some(grow) = grow {
        if !data.iter().any(|p| p.number == grow) {
            return Err(LayoutError::NoGrow(grow));
        }
    }
    // A GPT keeps 33 sectors (at 512 bytes) at the end for its backup.
    let usable_end = if disk.gpt {
        disk.sectors.saturating_sub(33 * 512 / sector + 1)
    } else {
        disk.sectors
    };
    let (region_start, region_end, logical, kept) = match into {
        Some(number) => {
            let target = disk
                .partitions
                .iter()
                .find(|p| p.number == number)
                .ok_or(LayoutError::NoPartition(number))?;
            if !disk.gpt && target.is_extended() {
                return Err(LayoutError::Extended(number));
            }
            let logical = !disk.gpt && number >= 5;
            let kept: Vec<&DumpedPartition> = disk
                .partitions
                .iter()
                .filter(|p| p.number != number)
                .collect();
            (target.start, target.start + target.size, logical, kept)
        }
        None if region == Region::WholeDisk => (align, usable_end, false, Vec::new()),
        None => {
            // Gaps between the partitions at the top of the table (an
            // extended partition counts whole), aligned; the largest wins.
            let mut top: Vec<&DumpedPartition> = disk
                .partitions
                .iter()
                .filter(|p| disk.gpt || p.number <= 4)
                .collect();
            top.sort_by_key(|p| p.start);
            let mut best = (0, 0);
            let mut from = align;
            for p in top
                .iter()
                .map(|p| (p.start, p.start + p.size))
                .chain([(usable_end, usable_end)])
            {
                let start = align_up(from, align);
                if p.0 > start && p.0 - start > best.1 - best.0 {
                    best = (start, p.0);
                }
                from = from.max(p.1);
            }
            if best.1 == best.0 {
                return Err(LayoutError::TooSmall {
                    needed: data.iter().map(|p| p.size).sum(),
                    available: 0,
                });
            }
            (best.0, best.1, false, disk.partitions.iter().collect())
        }
    };
    if !disk.gpt && !logical {
        let used = kept.iter().filter(|p| p.number <= 4).count();
        if used + data.len() > 4 {
            return Err(LayoutError::Slots(format!(
                "{used} are in use outside the region and the image has {} partitions; \
                 give the space of a logical partition (or a whole disk) instead",
                data.len()
            )));
        }
    }
    // First pass at the image's sizes, each start aligned; a logical
    // partition needs room for its boot record before it.
    let mut placements = Vec::new();
    let mut cursor = region_start;
    for p in &data {
        if logical {
            cursor += 1;
        }
        let start = align_up(cursor, align);
        let kind = match (&p.kind, disk.gpt) {
            (PartitionType::Dos(byte), false) => format!("{byte:x}"),
            (PartitionType::Dos(byte), true) => gpt_type_for(*byte).to_string(),
            (PartitionType::Gpt(guid), true) => guid.clone(),
            (PartitionType::Gpt(guid), false) => dos_type_for(guid).to_string(),
        };
        placements.push(Placement {
            image_partition: p.number,
            start,
            size: p.size,
            kind,
            logical,
            grown: Some(p.number) == grow,
            bootable: p.bootable && !disk.gpt,
            name: p.name.clone().filter(|_| disk.gpt),
        });
        cursor = start + p.size;
    }
    let end = region_end.min(usable_end);
    if cursor > end {
        return Err(LayoutError::TooSmall {
            needed: cursor - region_start,
            available: end.saturating_sub(region_start),
        });
    }
    // The grown partition takes what is left; those after it move up by
    // whole alignment units, so they stay aligned.
    if let Some(index) = placements.iter().position(|p| p.grown) {
        let spare = end - cursor;
        let last = index + 1 == placements.len();
        let extra = if last { spare } else { spare / align * align };
        placements[index].size += extra;
        for later in &mut placements[index + 1..] {
            later.start += extra;
        }
    }
    let script = script(disk, &kept, &placements, region == Region::WholeDisk, image);
    Ok(Layout {
        region_start,
        region_end: end,
        replaces: into,
        whole_disk: region == Region::WholeDisk,
        placements,
        script,
    })
}

/// The new table: the disk's header (or the image's kind for a whole disk),
/// every kept partition's line as dumped, then the placed partitions.
fn script(
    disk: &DiskDump,
    kept: &[&DumpedPartition],
    placements: &[Placement],
    whole_disk: bool,
    image: &Inspection,
) -> String {
    let mut out = String::new();
    if whole_disk {
        let label = match image.label {
            Label::Dos { .. } if !disk.gpt => "dos",
            Label::Gpt { .. } if disk.gpt => "gpt",
            Label::Dos { .. } => "dos",
            Label::Gpt { .. } => "gpt",
        };
        out.push_str(&format!(
            "label: {label}\nunit: sectors\nsector-size: {}\n\n",
            disk.sector_size
        ));
    } else {
        for line in &disk.header {
            if !line.starts_with("device:") {
                out.push_str(line);
                out.push('\n');
            }
        }
        out.push('\n');
    }
    for p in kept {
        out.push_str(&p.line);
        out.push('\n');
    }
    for p in placements {
        out.push_str(&format!(
            "start={:>12}, size={:>12}, type={}",
            p.start, p.size, p.kind
        ));
        if let Some(name) = &p.name {
            // sfdisk's script quotes names; a quote inside cannot be said.
            out.push_str(&format!(", name=\"{}\"", name.replace('"', "'")));
        }
        if p.bootable {
            out.push_str(", bootable");
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::PartitionInfo;

    fn image() -> Inspection {
        let part = |number, start, size, kind| PartitionInfo {
            number,
            start,
            size,
            kind: PartitionType::Dos(kind),
            bootable: false,
            name: None,
            uuid: None,
            attributes: None,
            filesystem: None,
        };
        Inspection {
            label: Label::Dos { id: 1 },
            sector_size: 512,
            size: 0,
            compression: "none".into(),
            partitions: vec![
                part(1, 8192, 81920, 0x0e),
                part(2, 90112, 901120, 0x83),
                part(3, 991232, 8192, 0x83),
                part(4, 999424, 40960, 0x05),
                part(5, 1007616, 8192, 0x83),
                part(6, 1024000, 16384, 0x83),
            ],
        }
    }

    fn disk() -> DiskDump {
        parse_dump(
            "label: dos\nlabel-id: 0x1234\ndevice: sda\nunit: sectors\nsector-size: 512\n\n\
             sda1 : start=        2048, size=    16775168, type=83, bootable\n\
             sda2 : start=    16779262, size=     4190210, type=5\n\
             sda5 : start=    16779264, size=     4190208, type=82\n",
            20971520,
        )
        .unwrap()
    }

    #[test]
    fn the_seeds_flasher_lands_in_the_swap_with_the_data_partition_grown() {
        let layout = compute(&image(), &disk(), Region::Partition(5), Some(6)).unwrap();
        assert_eq!(layout.placements.len(), 5);
        assert!(layout.placements.iter().all(|p| p.logical));
        let first = &layout.placements[0];
        assert!(first.start > 16779264 && first.start.is_multiple_of(2048));
        let grown = layout.placements.last().unwrap();
        assert!(grown.grown);
        assert_eq!(grown.start + grown.size, 16779264 + 4190208);
        assert!(layout.script.contains("type=83, bootable"));
        assert!(!layout.script.contains("type=82"));
    }

    #[test]
    fn free_space_is_the_largest_gap_and_keeps_every_partition() {
        // Root, then 4 GiB free, then a small data partition.
        let disk = parse_dump(
            "label: dos\nunit: sectors\nsector-size: 512\n\n\
             d1 : start=        2048, size=     8388608, type=83\n\
             d2 : start=    16777216, size=     2097152, type=83\n",
            20971520,
        )
        .unwrap();
        let layout = compute(&image(), &disk, Region::FreeSpace, Some(6)).unwrap_err();
        // Five data partitions do not fit the two free primary slots.
        assert!(matches!(layout, LayoutError::Slots(_)), "{layout}");
        let mut two = image();
        two.partitions.truncate(2);
        let layout = compute(&two, &disk, Region::FreeSpace, Some(2)).unwrap();
        assert_eq!(layout.region_start, 8390656);
        assert_eq!(layout.region_end, 16777216);
        assert!(layout.script.contains("d1 : ") && layout.script.contains("d2 : "));
        let grown = layout.placements.last().unwrap();
        assert_eq!(grown.start + grown.size, 16777216);
    }

    #[test]
    fn a_region_too_small_is_refused_with_the_sizes() {
        let mut disk = disk();
        disk.partitions[2].size = 100_000;
        match compute(&image(), &disk, Region::Partition(5), Some(6)) {
            Err(LayoutError::TooSmall { needed, available }) => assert!(needed > available),
            other => panic!("expected TooSmall, got {other:?}"),
        }
    }

    #[test]
    fn a_primary_region_without_enough_slots_is_refused() {
        let err = compute(&image(), &disk(), Region::Partition(1), None).unwrap_err();
        assert!(matches!(err, LayoutError::Slots(_)), "{err}");
    }
}
