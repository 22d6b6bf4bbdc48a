//! `inspect`: an image's partition table and the filesystem in each
//! partition, read in one forward pass over the decompressed stream.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use ferry_deb::index::{decompressor, Compression};
use serde::Serialize;

use crate::fs::{probe, Filesystem, PROBE_BYTES};
use crate::stream::{ForwardReader, StreamError};
use crate::table::{
    gpt_attributes, read_primary, validate, Chain, Label, Partition, PartitionType, TableError,
};

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("{}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Table {
        path: PathBuf,
        #[source]
        source: TableError,
    },
}

/// One partition as `inspect` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionInfo {
    pub number: u32,
    /// First sector of the partition's data (for a logical partition, after
    /// its boot record, as sfdisk prints it).
    pub start: u64,
    /// Length in sectors.
    pub size: u64,
    #[serde(rename = "type")]
    pub kind: PartitionType,
    pub bootable: bool,
    pub name: Option<String>,
    pub uuid: Option<String>,
    /// GPT attribute bits as sfdisk names them; absent when none are set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attributes: Option<String>,
    pub filesystem: Option<Filesystem>,
}

/// What `ferry image inspect` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Inspection {
    /// "dos" or "gpt", with the table's own identifiers.
    #[serde(flatten)]
    pub label: Label,
    pub sector_size: u32,
    /// The image's length in bytes, uncompressed.
    pub size: u64,
    /// How the image was compressed, found from its content.
    pub compression: String,
    pub partitions: Vec<PartitionInfo>,
}

fn compression_name(c: Compression) -> &'static str {
    match c {
        Compression::None => "none",
        Compression::Gzip => "gzip",
        Compression::Xz => "xz",
        Compression::Bzip2 => "bzip2",
        Compression::Zstd => "zstd",
        Compression::Lz4 => "lz4",
    }
}

/// Inspects the image at `path`; `-` reads standard input.
pub fn inspect_path(path: &Path) -> Result<Inspection, InspectError> {
    let open = |source| InspectError::Open {
        path: path.to_path_buf(),
        source,
    };
    if path == Path::new("-") {
        return inspect_reader(std::io::stdin(), None, path);
    }
    let file = std::fs::File::open(path).map_err(open)?;
    let metadata = file.metadata().map_err(open)?;
    if metadata.is_dir() {
        return Err(open(std::io::Error::other("is a directory, not an image")));
    }
    let known_len = metadata.is_file().then_some(metadata.len());
    inspect_reader(file, known_len, path)
}

/// Inspects the image read from `input`; `plain_len` is its length when it
/// is a regular file, used only if it turns out not to be compressed.
pub fn inspect_reader<R: Read + Send + 'static>(
    input: R,
    plain_len: Option<u64>,
    path: &Path,
) -> Result<Inspection, InspectError> {
    let open = |source| InspectError::Open {
        path: path.to_path_buf(),
        source,
    };
    let table_error = |source| InspectError::Table {
        path: path.to_path_buf(),
        source,
    };
    let mut buffered = BufReader::with_capacity(1 << 16, input);
    let compression = Compression::sniff(buffered.fill_buf().map_err(open)?);
    let stream = decompressor(compression, buffered).map_err(open)?;
    let mut image = ForwardReader::new(stream);
    let (table, chain) = read_primary(&mut image).map_err(table_error)?;
    let sector_size = u64::from(table.sector_size);
    let mut partitions = table.partitions.clone();
    let mut filesystems = Vec::new();
    walk(
        &mut image,
        sector_size,
        &mut partitions,
        chain,
        &mut filesystems,
    )
    .map_err(table_error)?;
    let size = match (compression, plain_len) {
        (Compression::None, Some(len)) => len,
        _ => image.drain().map_err(|e| table_error(e.into()))?,
    };
    let mut checked = table.clone();
    checked.partitions = partitions.clone();
    validate(&checked, Some(size / sector_size)).map_err(table_error)?;
    partitions.sort_by_key(|p| p.number);
    let partitions = partitions
        .into_iter()
        .map(|p| {
            let filesystem = filesystems
                .iter()
                .find(|(n, _)| *n == p.number)
                .and_then(|(_, fs)| fs.clone());
            info(p, filesystem)
        })
        .collect();
    Ok(Inspection {
        label: table.label,
        sector_size: table.sector_size,
        size,
        compression: compression_name(compression).into(),
        partitions,
    })
}

fn info(p: Partition, filesystem: Option<Filesystem>) -> PartitionInfo {
    PartitionInfo {
        number: p.number,
        start: p.start,
        size: p.size,
        bootable: p.bootable,
        name: p.name,
        uuid: p.uuid,
        attributes: (p.attributes != 0).then(|| gpt_attributes(p.attributes)),
        kind: p.kind,
        filesystem,
    }
}

/// A read the forward pass still has to make.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Read_ {
    /// The next boot record of the logical partitions' chain.
    BootRecord,
    /// The first bytes of partition `number`, for its filesystem.
    Probe { number: u32 },
}

/// Reads, in order of their offsets, every boot record of the chain and the
/// head of every data partition, so that a pipe is read once, front to back.
fn walk<R: Read>(
    image: &mut ForwardReader<R>,
    sector_size: u64,
    partitions: &mut Vec<Partition>,
    mut chain: Option<Chain>,
    filesystems: &mut Vec<(u32, Option<Filesystem>)>,
) -> Result<(), TableError> {
    let mut queue: BinaryHeap<Reverse<(u64, Read_)>> = BinaryHeap::new();
    let probe_of = |p: &Partition| {
        Reverse((
            p.start.saturating_mul(sector_size),
            Read_::Probe { number: p.number },
        ))
    };
    for p in partitions.iter().filter(|p| !p.is_extended()) {
        queue.push(probe_of(p));
    }
    if let Some(sector) = chain.as_ref().and_then(Chain::next_sector) {
        queue.push(Reverse((sector.saturating_mul(512), Read_::BootRecord)));
    }
    while let Some(Reverse((offset, read))) = queue.pop() {
        match read {
            Read_::BootRecord => {
                let Some(walk) = chain.as_mut() else { continue };
                let mut ebr = [0u8; 512];
                image.read_exact_at(offset, &mut ebr)?;
                if let Some(logical) = walk.read(&ebr)? {
                    queue.push(probe_of(&logical));
                    partitions.push(logical);
                }
                if let Some(sector) = walk.next_sector() {
                    queue.push(Reverse((sector.saturating_mul(512), Read_::BootRecord)));
                }
            }
            Read_::Probe { number } => {
                let Some(p) = partitions.iter().find(|p| p.number == number) else {
                    continue;
                };
                let len = p.size.saturating_mul(sector_size).min(PROBE_BYTES as u64) as usize;
                let mut head = vec![0u8; len];
                let got = match image.read_at(offset, &mut head) {
                    Ok(got) => got,
                    // Another partition's probe read past this one's start:
                    // they overlap, which `validate` reports.
                    Err(StreamError::Backward { .. }) => 0,
                    Err(e) => return Err(e.into()),
                };
                head.truncate(got);
                filesystems.push((number, probe(&head)));
            }
        }
    }
    Ok(())
}

/// The table as `sfdisk --dump` prints it, partitions named `device` + number.
pub fn sfdisk_script(inspection: &Inspection, device: &str) -> String {
    let mut out = String::new();
    match &inspection.label {
        Label::Dos { id } => {
            out.push_str("label: dos\n");
            out.push_str(&format!("label-id: 0x{id:08x}\n"));
            out.push_str(&format!("device: {device}\n"));
            out.push_str("unit: sectors\n");
        }
        Label::Gpt {
            id,
            first_lba,
            last_lba,
            table_length,
        } => {
            out.push_str("label: gpt\n");
            out.push_str(&format!("label-id: {id}\n"));
            out.push_str(&format!("device: {device}\n"));
            out.push_str("unit: sectors\n");
            out.push_str(&format!("first-lba: {first_lba}\n"));
            out.push_str(&format!("last-lba: {last_lba}\n"));
            if *table_length != 128 {
                out.push_str(&format!("table-length: {table_length}\n"));
            }
        }
    }
    out.push_str(&format!("sector-size: {}\n\n", inspection.sector_size));
    for p in &inspection.partitions {
        out.push_str(&format!(
            "{device}{} : start={:>12}, size={:>12}, type={}",
            p.number, p.start, p.size, p.kind
        ));
        if let Some(uuid) = &p.uuid {
            out.push_str(&format!(", uuid={uuid}"));
        }
        if let Some(name) = &p.name {
            out.push_str(&format!(", name=\"{name}\""));
        }
        if let Some(attributes) = &p.attributes {
            out.push_str(&format!(", attrs=\"{attributes}\""));
        }
        if p.bootable {
            out.push_str(", bootable");
        }
        out.push('\n');
    }
    out
}
