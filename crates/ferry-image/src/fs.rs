//! What filesystem a partition holds, read from its first bytes the way
//! `blkid -p` reads them: type, label and UUID of ext2/3/4, vfat, btrfs,
//! squashfs and swap.

use serde::Serialize;

/// How many bytes from a partition's start the probes look at: btrfs keeps
/// its superblock at 64 KiB.
pub const PROBE_BYTES: usize = 0x10000 + 0x1000;

/// A filesystem as blkid names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Filesystem {
    /// blkid's TYPE: ext2, ext3, ext4, vfat, btrfs, squashfs, swap.
    #[serde(rename = "type")]
    pub kind: String,
    pub label: Option<String>,
    pub uuid: Option<String>,
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// A UUID stored as 16 bytes in order, in its lower-case text form.
fn uuid(b: &[u8]) -> Option<String> {
    if b.iter().all(|x| *x == 0) {
        return None;
    }
    let hex: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
    Some(format!(
        "{}-{}-{}-{}-{}",
        hex[0..4].concat(),
        hex[4..6].concat(),
        hex[6..8].concat(),
        hex[8..10].concat(),
        hex[10..16].concat()
    ))
}

/// A fixed-size, NUL-padded label; none when empty.
fn label(b: &[u8]) -> Option<String> {
    let end = b.iter().position(|x| *x == 0).unwrap_or(b.len());
    let text = String::from_utf8_lossy(&b[..end]).trim_end().to_string();
    (!text.is_empty()).then_some(text)
}

/// Identifies the filesystem whose first bytes are `head` (as many as the
/// partition has, up to `PROBE_BYTES`).
pub fn probe(head: &[u8]) -> Option<Filesystem> {
    btrfs(head)
        .or_else(|| ext(head))
        .or_else(|| squashfs(head))
        .or_else(|| swap(head))
        .or_else(|| vfat(head))
}

fn ext(head: &[u8]) -> Option<Filesystem> {
    let sb = head.get(1024..1024 + 256)?;
    if le16(sb, 0x38) != 0xef53 {
        return None;
    }
    let compat = le32(sb, 0x5c);
    let incompat = le32(sb, 0x60);
    let ro_compat = le32(sb, 0x64);
    const HAS_JOURNAL: u32 = 0x4;
    const JOURNAL_DEV: u32 = 0x8;
    // What ext2 and ext3 drivers knew, as libblkid counts them: anything
    // beyond makes it ext4.
    const RO_COMPAT_OLD: u32 = 0x1 | 0x2 | 0x4;
    const INCOMPAT_EXT2: u32 = 0x2 | 0x10;
    const INCOMPAT_EXT3: u32 = 0x2 | 0x4 | 0x10;
    if incompat & JOURNAL_DEV != 0 {
        return None;
    }
    let old_ro = ro_compat & !RO_COMPAT_OLD == 0;
    let kind = if compat & HAS_JOURNAL == 0 && old_ro && incompat & !INCOMPAT_EXT2 == 0 {
        "ext2"
    } else if compat & HAS_JOURNAL != 0 && old_ro && incompat & !INCOMPAT_EXT3 == 0 {
        "ext3"
    } else {
        "ext4"
    };
    Some(Filesystem {
        kind: kind.into(),
        label: label(&sb[0x78..0x88]),
        uuid: uuid(&sb[0x68..0x78]),
    })
}

fn btrfs(head: &[u8]) -> Option<Filesystem> {
    let sb = head.get(0x10000..0x10000 + 0x22b + 256)?;
    if &sb[0x40..0x48] != b"_BHRfS_M" {
        return None;
    }
    Some(Filesystem {
        kind: "btrfs".into(),
        label: label(&sb[0x12b..0x12b + 256]),
        uuid: uuid(&sb[0x20..0x30]),
    })
}

fn squashfs(head: &[u8]) -> Option<Filesystem> {
    (head.get(0..4)? == b"hsqs").then(|| Filesystem {
        kind: "squashfs".into(),
        label: None,
        uuid: None,
    })
}

fn swap(head: &[u8]) -> Option<Filesystem> {
    // The signature ends the first page; blkid looks for every page size.
    let found = [4096usize, 8192, 16384, 32768, 65536].iter().any(|page| {
        head.get(page - 10..*page)
            .is_some_and(|s| s == b"SWAPSPACE2")
    });
    if !found {
        return None;
    }
    let header = head.get(1024..1024 + 64)?;
    Some(Filesystem {
        kind: "swap".into(),
        label: label(&header[0x1c..0x2c]),
        uuid: uuid(&header[0x0c..0x1c]),
    })
}

fn vfat(head: &[u8]) -> Option<Filesystem> {
    let bs = head.get(0..512)?;
    if bs[510..512] != [0x55, 0xaa] {
        return None;
    }
    let bytes_per_sector = le16(bs, 11);
    if !matches!(bytes_per_sector, 512 | 1024 | 2048 | 4096) || bs[13] == 0 || bs[16] == 0 {
        return None;
    }
    // FAT32 keeps its extended boot record after a larger BPB.
    let (signature_at, serial_at, label_at) = if &bs[82..87] == b"FAT32" {
        (66, 67, 71)
    } else if &bs[54..57] == b"FAT" {
        (38, 39, 43)
    } else {
        return None;
    };
    let has_ebr = matches!(bs[signature_at], 0x28 | 0x29);
    let serial = &bs[serial_at..serial_at + 4];
    let volume_label = label(&bs[label_at..label_at + 11]).filter(|l| l != "NO NAME");
    Some(Filesystem {
        kind: "vfat".into(),
        label: volume_label.filter(|_| has_ebr),
        uuid: has_ebr.then(|| {
            format!(
                "{:02X}{:02X}-{:02X}{:02X}",
                serial[3], serial[2], serial[1], serial[0]
            )
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_recognised_in_zeros_or_short_input() {
        assert_eq!(probe(&[0u8; PROBE_BYTES]), None);
        assert_eq!(probe(&[]), None);
        assert_eq!(probe(&[0x55; 100]), None);
    }

    #[test]
    fn an_ext4_superblock_is_read() {
        let mut head = vec![0u8; 4096];
        let sb = 1024;
        head[sb + 0x38..sb + 0x3a].copy_from_slice(&0xef53u16.to_le_bytes());
        head[sb + 0x5c..sb + 0x60].copy_from_slice(&4u32.to_le_bytes());
        head[sb + 0x60..sb + 0x64].copy_from_slice(&0x40u32.to_le_bytes()); // extents
        head[sb + 0x68..sb + 0x78].copy_from_slice(&[0x11; 16]);
        head[sb + 0x78..sb + 0x7d].copy_from_slice(b"rootA");
        let fs = probe(&head).unwrap();
        assert_eq!(fs.kind, "ext4");
        assert_eq!(fs.label.as_deref(), Some("rootA"));
        assert_eq!(
            fs.uuid.as_deref(),
            Some("11111111-1111-1111-1111-111111111111")
        );
    }
}
