//! Block maps in bmaptool's format: which blocks of an image hold data, and
//! the checksum of each run of them. Format 2.0 (and its twin 1.4) carries
//! sha256 or another named checksum; 1.3 carries sha1; older ones none.
//! The file's own checksum is checked as bmaptool checks it.

use sha1::Sha1;
use sha2::{Digest, Sha256};

/// A bmap that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BmapError {
    #[error("line {line}: {what}")]
    Syntax { line: usize, what: String },
    #[error("bmap format version {0} is not supported (ferry reads 1.x and 2.x)")]
    Version(String),
    #[error("the <{0}> element is missing")]
    Missing(&'static str),
    #[error("checksum type `{0}` is not supported (sha256 and sha1 are)")]
    ChecksumType(String),
    #[error(
        "the bmap's own checksum does not match: it says {stated}, its content gives {computed}"
    )]
    SelfChecksum { stated: String, computed: String },
    #[error("inconsistent bmap: {0}")]
    Inconsistent(String),
}

/// How a range's checksum is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumKind {
    Sha256,
    Sha1,
}

impl ChecksumKind {
    fn hex_len(self) -> usize {
        match self {
            ChecksumKind::Sha256 => 64,
            ChecksumKind::Sha1 => 40,
        }
    }

    pub fn hasher(self) -> RangeHasher {
        match self {
            ChecksumKind::Sha256 => RangeHasher::Sha256(Sha256::new()),
            ChecksumKind::Sha1 => RangeHasher::Sha1(Sha1::new()),
        }
    }
}

/// A running checksum of one range.
pub enum RangeHasher {
    Sha256(Sha256),
    Sha1(Sha1),
}

impl RangeHasher {
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            RangeHasher::Sha256(h) => h.update(bytes),
            RangeHasher::Sha1(h) => h.update(bytes),
        }
    }

    pub fn hex(self) -> String {
        match self {
            RangeHasher::Sha256(h) => hex(&h.finalize()),
            RangeHasher::Sha1(h) => hex(&h.finalize()),
        }
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A run of mapped blocks, `first..=last`, with its checksum if the bmap has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockRange {
    pub first: u64,
    pub last: u64,
    pub checksum: Option<String>,
}

/// A parsed, checked bmap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bmap {
    pub version: String,
    pub image_size: u64,
    pub block_size: u64,
    pub blocks_count: u64,
    pub mapped_blocks: u64,
    pub checksum: Option<ChecksumKind>,
    pub ranges: Vec<BlockRange>,
}

impl Bmap {
    /// The bytes the ranges cover (the last block may be short).
    pub fn mapped_bytes(&self) -> u64 {
        self.ranges
            .iter()
            .map(|r| {
                let start = r.first * self.block_size;
                let end = ((r.last + 1) * self.block_size).min(self.image_size);
                end.saturating_sub(start)
            })
            .sum()
    }
}

fn line_of(text: &[u8], position: usize) -> usize {
    1 + text[..position.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
}

/// Parses and checks a bmap file's content.
pub fn parse(input: &[u8]) -> Result<Bmap, BmapError> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(input);
    let syntax = |position: u64, what: String| BmapError::Syntax {
        line: line_of(input, position as usize),
        what,
    };
    let mut version = None;
    let mut fields: Vec<(String, String)> = Vec::new();
    // (line, checksum attribute name and value, the range's text)
    type RawRange = (usize, Option<(String, String)>, String);
    let mut raw_ranges: Vec<RawRange> = Vec::new();
    let mut open: Vec<String> = Vec::new();
    let mut range_attr: Option<(String, String)> = None;
    let mut buf = Vec::new();
    loop {
        let position = reader.buffer_position();
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| syntax(reader.error_position(), e.to_string()))?;
        match event {
            Event::Start(start) => {
                let name = String::from_utf8_lossy(start.name().as_ref()).into_owned();
                if name == "bmap" {
                    for attribute in start.attributes() {
                        let attribute = attribute.map_err(|e| syntax(position, e.to_string()))?;
                        if attribute.key.as_ref() == b"version" {
                            version = Some(String::from_utf8_lossy(&attribute.value).into_owned());
                        }
                    }
                }
                if name == "Range" {
                    range_attr = None;
                    for attribute in start.attributes() {
                        let attribute = attribute.map_err(|e| syntax(position, e.to_string()))?;
                        let key = String::from_utf8_lossy(attribute.key.as_ref()).into_owned();
                        if key == "chksum" || key == "sha1" {
                            range_attr =
                                Some((key, String::from_utf8_lossy(&attribute.value).into_owned()));
                        }
                    }
                }
                open.push(name);
            }
            Event::End(_) => {
                open.pop();
            }
            Event::Text(t) => {
                let text = t
                    .unescape()
                    .map_err(|e| syntax(position, e.to_string()))?
                    .trim()
                    .to_string();
                match open.last().map(String::as_str) {
                    Some("Range") => raw_ranges.push((
                        line_of(input, position as usize),
                        range_attr.take(),
                        text,
                    )),
                    Some(tag) if open.len() == 2 => fields.push((tag.to_string(), text)),
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    let version = version.ok_or(BmapError::Missing("bmap version=\"…\""))?;
    let (major, minor) = version
        .split_once('.')
        .and_then(|(a, b)| Some((a.trim().parse::<u32>().ok()?, b.trim().parse::<u32>().ok()?)))
        .ok_or_else(|| BmapError::Version(version.clone()))?;
    if major == 0 || major > 2 {
        return Err(BmapError::Version(version));
    }
    let field = |name: &'static str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .ok_or(BmapError::Missing(name))
    };
    let number = |name: &'static str| -> Result<u64, BmapError> {
        let text = field(name)?;
        text.parse::<u64>()
            .map_err(|_| BmapError::Inconsistent(format!("<{name}> is `{text}`, not a number")))
    };
    let image_size = number("ImageSize")?;
    let block_size = number("BlockSize")?;
    let blocks_count = number("BlocksCount")?;
    let mapped_blocks = number("MappedBlocksCount")?;
    if block_size == 0 || !block_size.is_power_of_two() {
        return Err(BmapError::Inconsistent(format!(
            "block size {block_size} is not a power of two"
        )));
    }
    if image_size.div_ceil(block_size) != blocks_count {
        return Err(BmapError::Inconsistent(format!(
            "{image_size} bytes are not {blocks_count} blocks of {block_size}"
        )));
    }
    let (checksum, self_tag, range_attr_name) = if major == 2 || (major == 1 && minor == 4) {
        let kind = match field("ChecksumType")? {
            "sha256" => ChecksumKind::Sha256,
            "sha1" => ChecksumKind::Sha1,
            other => return Err(BmapError::ChecksumType(other.to_string())),
        };
        (Some(kind), "BmapFileChecksum", "chksum")
    } else if major == 1 && minor == 3 {
        (Some(ChecksumKind::Sha1), "BmapFileSHA1", "sha1")
    } else {
        (None, "", "")
    };
    if let Some(kind) = checksum {
        let stated = field(if self_tag == "BmapFileChecksum" {
            "BmapFileChecksum"
        } else {
            "BmapFileSHA1"
        })?
        .to_string();
        check_self(input, &stated, kind)?;
    }
    let mut ranges = Vec::with_capacity(raw_ranges.len());
    let mut mapped = 0u64;
    for (line, attr, text) in raw_ranges {
        let bad = |what: String| BmapError::Syntax { line, what };
        let (first, last) = match text.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (text.as_str(), text.as_str()),
        };
        let first: u64 = first
            .parse()
            .map_err(|_| bad(format!("range `{text}` is not FIRST-LAST")))?;
        let last: u64 = last
            .parse()
            .map_err(|_| bad(format!("range `{text}` is not FIRST-LAST")))?;
        if first > last || last >= blocks_count {
            return Err(bad(format!(
                "range `{text}` is outside the image's {blocks_count} blocks"
            )));
        }
        if let Some(previous) = ranges.last().map(|r: &BlockRange| r.last) {
            if first <= previous {
                return Err(bad(format!(
                    "range `{text}` overlaps or precedes the one before it"
                )));
            }
        }
        let checksum_text = match (checksum, attr) {
            (Some(kind), Some((name, value))) if name == range_attr_name => {
                if value.len() != kind.hex_len() || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(bad(format!("range `{text}` has a malformed checksum")));
                }
                Some(value.to_ascii_lowercase())
            }
            _ => None,
        };
        mapped += last - first + 1;
        ranges.push(BlockRange {
            first,
            last,
            checksum: checksum_text,
        });
    }
    if mapped != mapped_blocks {
        return Err(BmapError::Inconsistent(format!(
            "the ranges map {mapped} blocks, <MappedBlocksCount> says {mapped_blocks}"
        )));
    }
    Ok(Bmap {
        version,
        image_size,
        block_size,
        blocks_count,
        mapped_blocks,
        checksum,
        ranges,
    })
}

/// The bmap's checksum of itself: its bytes with the stated checksum
/// replaced by as many `0`s.
fn check_self(text: &[u8], stated: &str, kind: ChecksumKind) -> Result<(), BmapError> {
    let Some(at) = find(text, stated.as_bytes()) else {
        return Err(BmapError::Inconsistent(
            "the bmap's own checksum is empty".into(),
        ));
    };
    let mut copy = text.to_vec();
    copy[at..at + stated.len()].fill(b'0');
    let mut hasher = kind.hasher();
    hasher.update(&copy);
    let computed = hasher.hex();
    if !computed.eq_ignore_ascii_case(stated) {
        return Err(BmapError::SelfChecksum {
            stated: stated.to_string(),
            computed,
        });
    }
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bmap_text(ranges: &str, mapped: u64) -> Vec<u8> {
        let body = format!(
            "<?xml version=\"1.0\" ?>\n<bmap version=\"2.0\">\n<ImageSize> 20480 </ImageSize>\n\
             <BlockSize> 4096 </BlockSize>\n<BlocksCount> 5 </BlocksCount>\n\
             <MappedBlocksCount> {mapped} </MappedBlocksCount>\n<ChecksumType> sha256 </ChecksumType>\n\
             <BmapFileChecksum> {} </BmapFileChecksum>\n<BlockMap>\n{ranges}</BlockMap>\n</bmap>\n",
            "0".repeat(64)
        );
        let mut hasher = ChecksumKind::Sha256.hasher();
        hasher.update(body.as_bytes());
        body.replace(&"0".repeat(64), &hasher.hex()).into_bytes()
    }

    #[test]
    fn a_consistent_bmap_parses() {
        let text = bmap_text(
            &format!(
                "<Range chksum=\"{}\"> 0-1 </Range>\n<Range> 4 </Range>\n",
                "a".repeat(64)
            ),
            3,
        );
        let bmap = parse(&text).unwrap();
        assert_eq!(bmap.ranges.len(), 2);
        assert_eq!(bmap.ranges[1].first, 4);
        assert_eq!(bmap.mapped_bytes(), 3 * 4096);
    }

    #[test]
    fn an_edited_bmap_fails_its_own_checksum() {
        let mut text = bmap_text("<Range> 0-1 </Range>\n", 2);
        let at = find(&text, b"0-1").unwrap();
        text[at] = b'1';
        text[at + 2] = b'1';
        // 1-1 maps one block, so the count check would fail too; the self
        // checksum is checked first.
        assert!(matches!(parse(&text), Err(BmapError::SelfChecksum { .. })));
    }

    #[test]
    fn ranges_outside_the_image_or_out_of_order_are_refused_with_their_line() {
        let text = bmap_text("<Range> 2-3 </Range>\n<Range> 1 </Range>\n", 3);
        match parse(&text) {
            Err(BmapError::Syntax { line, what }) => {
                assert!(what.contains("precedes"), "{what}");
                assert_eq!(line, 11);
            }
            other => panic!("expected a syntax error, got {other:?}"),
        }
        let text = bmap_text("<Range> 3-9 </Range>\n", 7);
        assert!(matches!(parse(&text), Err(BmapError::Syntax { .. })));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for text in [
            &b""[..],
            b"<bmap",
            b"<bmap version=\"9.0\"></bmap>",
            b"\xff\xfe<",
        ] {
            assert!(parse(text).is_err());
        }
    }
}
