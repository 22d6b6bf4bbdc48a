//! Partition tables as they are on disk: an MBR with its chain of extended
//! boot records, or a GPT behind its protective MBR; read from a stream.
//!
//! Written here rather than taken from a table-editing crate because the
//! image may be a pipe: every structure is read at an offset at or after the
//! previous one (`ForwardReader`), and a table that points backwards or past
//! the image's end is an error, never a panic.

use serde::Serialize;

use crate::stream::{ForwardReader, StreamError, HEAD_BYTES};

/// MBR partition type of an extended partition (CHS, LBA, Linux).
const EXTENDED_TYPES: [u8; 3] = [0x05, 0x0f, 0x85];
/// MBR partition type of a GPT's protective entry.
const GPT_PROTECTIVE: u8 = 0xee;
/// A logical-partition chain longer than this is a loop, not a disk.
const MAX_LOGICAL: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error(transparent)]
    Stream(#[from] StreamError),
    #[error("no partition table: the first sector has no MBR signature (55 AA)")]
    NoTable,
    #[error("the GPT header at byte {offset} is damaged: {what}")]
    BadGpt { offset: u64, what: String },
    #[error("the extended partition's chain of logical partitions {what}")]
    BadChain { what: String },
    #[error("partitions {first} and {second} overlap")]
    Overlap { first: u32, second: u32 },
    #[error("partition {number} ends at sector {end}, past the last usable sector {last}")]
    PastEnd { number: u32, end: u64, last: u64 },
}

/// Which kind of table, with the identifiers it carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "label", rename_all = "lowercase")]
pub enum Label {
    /// An MBR ("dos" as sfdisk calls it) and its 32-bit disk identifier
    /// (in JSON as sfdisk prints it, "0x5eed0001").
    Dos {
        #[serde(serialize_with = "hex_id")]
        id: u32,
    },
    /// A GPT: disk GUID, usable sectors and the entry array's length.
    Gpt {
        id: String,
        first_lba: u64,
        last_lba: u64,
        table_length: u32,
    },
}

fn hex_id<S: serde::Serializer>(id: &u32, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&format_args!("0x{id:08x}"))
}

/// A partition's type: an MBR type byte or a GPT type GUID; in JSON the
/// text sfdisk prints ("83", "C12A7328-…").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionType {
    Dos(u8),
    Gpt(String),
}

impl Serialize for PartitionType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl std::fmt::Display for PartitionType {
    /// As sfdisk prints it: the byte in lower-case hex without leading
    /// zeros, the GUID in upper case.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PartitionType::Dos(byte) => write!(f, "{byte:x}"),
            PartitionType::Gpt(guid) => f.write_str(guid),
        }
    }
}

/// One partition, in sectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// 1–4 for primary MBR slots, 5 on for logical ones in chain order, the
    /// entry's index + 1 for GPT.
    pub number: u32,
    pub start: u64,
    pub size: u64,
    pub kind: PartitionType,
    pub bootable: bool,
    /// GPT only.
    pub name: Option<String>,
    pub uuid: Option<String>,
    pub attributes: u64,
}

impl Partition {
    pub fn is_extended(&self) -> bool {
        matches!(self.kind, PartitionType::Dos(t) if EXTENDED_TYPES.contains(&t))
    }
}

/// A whole table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub label: Label,
    pub sector_size: u32,
    pub partitions: Vec<Partition>,
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn le64(b: &[u8], at: usize) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(bytes)
}

/// A GUID in its text form (mixed-endian, as GPT stores it), upper case.
pub fn guid(b: &[u8]) -> String {
    format!(
        "{:08X}-{:04X}-{:04X}-{:02X}{:02X}-{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}",
        le32(b, 0),
        le16(b, 4),
        le16(b, 6),
        b[8],
        b[9],
        b[10],
        b[11],
        b[12],
        b[13],
        b[14],
        b[15]
    )
}

struct MbrEntry {
    bootable: bool,
    kind: u8,
    start: u64,
    size: u64,
}

fn mbr_entries(sector: &[u8]) -> [MbrEntry; 4] {
    std::array::from_fn(|i| {
        let e = &sector[446 + 16 * i..446 + 16 * (i + 1)];
        MbrEntry {
            bootable: e[0] == 0x80,
            kind: e[4],
            start: u64::from(le32(e, 8)),
            size: u64::from(le32(e, 12)),
        }
    })
}

/// Reads the whole table at the start of `image`, logical partitions too.
pub fn read_table<R: std::io::Read>(image: &mut ForwardReader<R>) -> Result<Table, TableError> {
    let (mut table, chain) = read_primary(image)?;
    if let Some(mut chain) = chain {
        while let Some(sector) = chain.next_sector() {
            let mut ebr = [0u8; 512];
            image.read_exact_at(sector.saturating_mul(512), &mut ebr)?;
            if let Some(logical) = chain.read(&ebr)? {
                table.partitions.push(logical);
            }
        }
    }
    Ok(table)
}

/// Reads the table at the start of `image` but leaves the chain of logical
/// partitions, if any, for the caller to walk in order with its other reads.
pub fn read_primary<R: std::io::Read>(
    image: &mut ForwardReader<R>,
) -> Result<(Table, Option<Chain>), TableError> {
    let mut mbr = [0u8; 512];
    image.read_exact_at(0, &mut mbr).map_err(|e| match e {
        StreamError::Truncated { .. } => TableError::NoTable,
        other => other.into(),
    })?;
    if mbr[510..512] != [0x55, 0xaa] {
        return Err(TableError::NoTable);
    }
    let entries = mbr_entries(&mbr);
    if entries.iter().any(|e| e.kind == GPT_PROTECTIVE) {
        for sector_size in [512u32, 4096] {
            let mut signature = [0u8; 8];
            let got = image.read_at(u64::from(sector_size), &mut signature)?;
            if got == 8 && &signature == b"EFI PART" {
                return Ok((read_gpt(image, sector_size)?, None));
            }
        }
        return Err(TableError::BadGpt {
            offset: 512,
            what: "a protective MBR but no \"EFI PART\" header at sector 1".into(),
        });
    }
    Ok(read_dos(&mbr, &entries))
}

fn read_dos(mbr: &[u8], entries: &[MbrEntry; 4]) -> (Table, Option<Chain>) {
    let mut partitions = Vec::new();
    let mut extended = None;
    for (i, e) in entries.iter().enumerate() {
        if e.kind == 0 || e.size == 0 {
            continue;
        }
        let partition = Partition {
            number: i as u32 + 1,
            start: e.start,
            size: e.size,
            kind: PartitionType::Dos(e.kind),
            bootable: e.bootable,
            name: None,
            uuid: None,
            attributes: 0,
        };
        if partition.is_extended() && extended.is_none() {
            extended = Some((e.start, e.size));
        }
        partitions.push(partition);
    }
    let table = Table {
        label: Label::Dos { id: le32(mbr, 440) },
        sector_size: 512,
        partitions,
    };
    (table, extended.map(|(start, size)| Chain::new(start, size)))
}

/// Where a walk along the logical partitions' chain stands: the caller reads
/// each boot record (`next_sector`) and hands it over (`read`), so that the
/// reads can be ordered with others on a forward-only stream.
#[derive(Debug, Clone)]
pub struct Chain {
    ext_start: u64,
    ext_size: u64,
    next: Option<u64>,
    number: u32,
    seen: Vec<u64>,
}

impl Chain {
    pub fn new(ext_start: u64, ext_size: u64) -> Self {
        Chain {
            ext_start,
            ext_size,
            next: Some(ext_start),
            number: 5,
            seen: Vec::new(),
        }
    }

    /// The sector of the next boot record to read, if the chain goes on.
    pub fn next_sector(&self) -> Option<u64> {
        self.next
    }

    /// Takes the boot record at `next_sector`; returns its logical partition.
    pub fn read(&mut self, ebr: &[u8; 512]) -> Result<Option<Partition>, TableError> {
        let Some(sector) = self.next.take() else {
            return Ok(None);
        };
        if self.seen.contains(&sector) || self.seen.len() >= MAX_LOGICAL {
            return Err(TableError::BadChain {
                what: format!("loops back to sector {sector}"),
            });
        }
        self.seen.push(sector);
        if ebr[510..512] != [0x55, 0xaa] {
            // An empty extended partition has no boot record at all.
            if self.seen.len() == 1 {
                return Ok(None);
            }
            return Err(TableError::BadChain {
                what: format!("has no boot record signature at sector {sector}"),
            });
        }
        let entries = mbr_entries(ebr);
        let data = &entries[0];
        let logical = (data.kind != 0 && data.size != 0).then(|| Partition {
            number: self.number,
            start: sector.saturating_add(data.start),
            size: data.size,
            kind: PartitionType::Dos(data.kind),
            bootable: data.bootable,
            name: None,
            uuid: None,
            attributes: 0,
        });
        if logical.is_some() {
            self.number += 1;
        }
        let link = &entries[1];
        if link.kind != 0 && link.start != 0 {
            if link.start >= self.ext_size {
                return Err(TableError::BadChain {
                    what: format!(
                        "links to sector {}, outside the extended partition",
                        self.ext_start.saturating_add(link.start)
                    ),
                });
            }
            self.next = Some(self.ext_start + link.start);
        }
        Ok(logical)
    }
}

fn read_gpt<R: std::io::Read>(
    image: &mut ForwardReader<R>,
    sector_size: u32,
) -> Result<Table, TableError> {
    let ss = u64::from(sector_size);
    let mut header = vec![0u8; 512];
    image.read_exact_at(ss, &mut header)?;
    let bad = |what: &str| TableError::BadGpt {
        offset: ss,
        what: what.to_string(),
    };
    let header_size = le32(&header, 12) as usize;
    if !(92..=512).contains(&header_size) {
        return Err(bad("its header size is out of range"));
    }
    let mut copy = header[..header_size].to_vec();
    copy[16..20].fill(0);
    if crc32fast::hash(&copy) != le32(&header, 16) {
        return Err(bad("its header checksum does not match"));
    }
    let first_lba = le64(&header, 40);
    let last_lba = le64(&header, 48);
    let disk_guid = guid(&header[56..72]);
    let entries_lba = le64(&header, 72);
    let count = le32(&header, 80);
    let entry_size = le32(&header, 84) as usize;
    if !(128..=4096).contains(&entry_size) || !entry_size.is_multiple_of(8) {
        return Err(bad("its entry size is out of range"));
    }
    let array_len = (count as usize)
        .checked_mul(entry_size)
        .filter(|len| *len <= HEAD_BYTES * 4)
        .ok_or_else(|| bad("its entry array is too large"))?;
    let mut array = vec![0u8; array_len];
    image.read_exact_at(entries_lba.saturating_mul(ss), &mut array)?;
    if crc32fast::hash(&array) != le32(&header, 88) {
        return Err(bad("its partition entries' checksum does not match"));
    }
    let mut partitions = Vec::new();
    for (i, entry) in array.chunks_exact(entry_size).enumerate() {
        if entry[..16].iter().all(|b| *b == 0) {
            continue;
        }
        let start = le64(entry, 32);
        let end = le64(entry, 40);
        if end < start {
            return Err(bad(&format!("entry {} ends before it starts", i + 1)));
        }
        let name: Vec<u16> = entry[56..128]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|c| *c != 0)
            .collect();
        let name = String::from_utf16_lossy(&name);
        partitions.push(Partition {
            number: i as u32 + 1,
            start,
            size: end - start + 1,
            kind: PartitionType::Gpt(guid(&entry[..16])),
            bootable: false,
            name: (!name.is_empty()).then_some(name),
            uuid: Some(guid(&entry[16..32])),
            attributes: le64(entry, 48),
        });
    }
    Ok(Table {
        label: Label::Gpt {
            id: disk_guid,
            first_lba,
            last_lba,
            table_length: count,
        },
        sector_size,
        partitions,
    })
}

/// Checks what a table may not say: partitions that overlap or end past the
/// image (`total_sectors`, when known) or, for GPT, past the last usable LBA.
pub fn validate(table: &Table, total_sectors: Option<u64>) -> Result<(), TableError> {
    // A partition ends inside the image, and for a GPT inside its usable
    // sectors too.
    let image_last = total_sectors.map(|t| t.saturating_sub(1));
    let last = match (&table.label, image_last) {
        (Label::Gpt { last_lba, .. }, Some(image_last)) => Some((*last_lba).min(image_last)),
        (Label::Gpt { last_lba, .. }, None) => Some(*last_lba),
        (Label::Dos { .. }, image_last) => image_last,
    };
    let data: Vec<&Partition> = table
        .partitions
        .iter()
        .filter(|p| !p.is_extended())
        .collect();
    for p in &table.partitions {
        let end = p.start.saturating_add(p.size).saturating_sub(1);
        if let Some(last) = last {
            if end > last {
                return Err(TableError::PastEnd {
                    number: p.number,
                    end,
                    last,
                });
            }
        }
    }
    for (i, a) in data.iter().enumerate() {
        for b in &data[i + 1..] {
            let a_end = a.start.saturating_add(a.size);
            let b_end = b.start.saturating_add(b.size);
            if a.start < b_end && b.start < a_end {
                return Err(TableError::Overlap {
                    first: a.number,
                    second: b.number,
                });
            }
        }
    }
    Ok(())
}

/// The names sfdisk gives GPT attribute bits 0–2; bits 48–63 are the
/// type's own (`GUID:N`), the rest unnamed.
pub fn gpt_attributes(bits: u64) -> String {
    let mut words: Vec<String> = Vec::new();
    for (bit, name) in [
        (0, "RequiredPartition"),
        (1, "NoBlockIOProtocol"),
        (2, "LegacyBIOSBootable"),
    ] {
        if bits & (1 << bit) != 0 {
            words.push(name.to_string());
        }
    }
    let type_bits: Vec<String> = (48..64)
        .filter(|bit| bits & (1u64 << bit) != 0)
        .map(|bit| bit.to_string())
        .collect();
    let other: Vec<String> = (3..48)
        .filter(|bit| bits & (1u64 << bit) != 0)
        .map(|bit| bit.to_string())
        .collect();
    if !other.is_empty() {
        words.push(other.join(","));
    }
    if !type_bits.is_empty() {
        words.push(format!("GUID:{}", type_bits.join(",")));
    }
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table_of(bytes: Vec<u8>) -> Result<Table, TableError> {
        read_table(&mut ForwardReader::new(std::io::Cursor::new(bytes)))
    }

    #[test]
    fn a_sector_without_the_signature_is_no_table() {
        assert!(matches!(table_of(vec![0; 4096]), Err(TableError::NoTable)));
        assert!(matches!(table_of(vec![0; 10]), Err(TableError::NoTable)));
    }

    #[test]
    fn an_extended_chain_that_loops_is_refused() {
        let mut disk = vec![0u8; 512 * 64];
        disk[510] = 0x55;
        disk[511] = 0xaa;
        // Slot 1: extended at sector 8, 32 sectors.
        disk[446 + 4] = 0x05;
        disk[446 + 8..446 + 12].copy_from_slice(&8u32.to_le_bytes());
        disk[446 + 12..446 + 16].copy_from_slice(&32u32.to_le_bytes());
        // The EBR at sector 8 links to itself (relative 0 would end it, so
        // link to relative 4, whose EBR links back to relative 4).
        for ebr in [8usize, 12] {
            let at = ebr * 512;
            disk[at + 510] = 0x55;
            disk[at + 511] = 0xaa;
            disk[at + 446 + 16 + 4] = 0x05;
            disk[at + 446 + 16 + 8..at + 446 + 16 + 12].copy_from_slice(&4u32.to_le_bytes());
        }
        match table_of(disk) {
            Err(TableError::BadChain { what }) => assert!(what.contains("loops"), "{what}"),
            other => panic!("expected BadChain, got {other:?}"),
        }
    }

    #[test]
    fn attribute_words_are_sfdisks() {
        assert_eq!(
            gpt_attributes(0b111 | (1 << 48) | (1 << 60) | (1 << 63)),
            "RequiredPartition NoBlockIOProtocol LegacyBIOSBootable GUID:48,60,63"
        );
        assert_eq!(
            gpt_attributes(1 << 2 | 1 << 60),
            "LegacyBIOSBootable GUID:60"
        );
        assert_eq!(gpt_attributes(0), "");
    }
}
