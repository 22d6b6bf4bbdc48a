//! `flash`: writes an image to a device or file, streamed from a plain or
//! compressed image or a pipe, writing only the blocks that hold data (from
//! a bmap, or zero runs found on the fly), verifying what it wrote, and
//! fsyncing before it says done.
//!
//! The target is refused before the first write when it is mounted or in
//! use, or smaller than the image; after the first write, every error says
//! how many bytes were written, because the target is then no longer what it
//! was.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use ferry_deb::index::{decompressor, Compression};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::bmap::{hex, Bmap, ChecksumKind};
use crate::stream::ForwardReader;
use crate::table::{read_primary, Label};

/// The unit of zero detection and of the written-range list without a bmap.
pub(crate) const BLOCK: usize = 4096;
/// How much is read from the stream at a time.
pub(crate) const CHUNK: usize = 4 << 20;

/// What a flash is asked to do.
#[derive(Debug, Clone, Default)]
pub struct FlashOptions {
    pub bmap: Option<Bmap>,
    /// Re-read what was written, past the page cache, and compare.
    pub read_back: bool,
    /// Also zero (or discard) the ranges the image does not map, so a used
    /// target ends as an exact copy.
    pub exact: bool,
}

/// Why a flash did not complete.
#[derive(Debug, thiserror::Error)]
pub enum FlashError {
    /// Nothing was written: the target is as it was.
    #[error("{what}")]
    Refused { what: String },
    /// The target was partly written.
    #[error("{what} (after {written} bytes were written to the target)")]
    Failed { what: String, written: u64 },
}

impl FlashError {
    /// Bytes written to the target before the failure (0 when refused).
    pub fn bytes_written(&self) -> u64 {
        match self {
            FlashError::Refused { .. } => 0,
            FlashError::Failed { written, .. } => *written,
        }
    }
}

/// What a completed flash did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlashReport {
    pub target: PathBuf,
    /// The image's length in bytes, uncompressed.
    pub image_size: u64,
    /// Bytes written to the target (mapped data, and zeros with `--exact`).
    pub bytes_written: u64,
    /// Bytes of the image that hold data (mapped by the bmap, or not zero).
    pub mapped_bytes: u64,
    /// How the data was verified: "bmap-sha256", "bmap-sha1" (every mapped
    /// range against the bmap) or "stream-sha256" (the image's sha256).
    pub verified: String,
    /// The sha256 of the whole image stream (without a bmap).
    pub sha256: Option<String>,
    /// Whether the target was re-read past the page cache and matched.
    pub read_back: bool,
    /// Whether unmapped ranges were zeroed or discarded.
    pub exact: bool,
    pub compression: String,
    pub seconds: f64,
}

/// Told of progress: bytes of the image consumed, of how many (when known).
pub trait FlashProgress {
    fn progress(&mut self, consumed: u64, total: u64, written: u64);
}

impl FlashProgress for () {
    fn progress(&mut self, _: u64, _: u64, _: u64) {}
}

/// A written range and the sha256 of what was written there, for read-back.
pub(crate) struct Written {
    offset: u64,
    len: u64,
    sha256: [u8; 32],
}

pub(crate) fn refused(what: impl Into<String>) -> FlashError {
    FlashError::Refused { what: what.into() }
}

/// The decompressed stream of the image at `image` (`-`: standard input),
/// its compression, and its length when it is a regular file.
pub(crate) type ImageStream = ForwardReader<Box<dyn Read + Send>>;

pub(crate) fn open_image(
    image: &Path,
) -> Result<(ImageStream, Compression, Option<u64>), FlashError> {
    let (input, plain_len): (Box<dyn Read + Send>, Option<u64>) = if image == Path::new("-") {
        (Box::new(std::io::stdin()), None)
    } else {
        let file = File::open(image).map_err(|e| refused(format!("{}: {e}", image.display())))?;
        let len = file
            .metadata()
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len());
        (Box::new(file), len)
    };
    let mut buffered = BufReader::with_capacity(1 << 16, input);
    let head = buffered
        .fill_buf()
        .map_err(|e| refused(format!("{}: {e}", image.display())))?;
    let compression = Compression::sniff(head);
    let stream = decompressor(compression, buffered)
        .map_err(|e| refused(format!("{}: {e}", image.display())))?;
    Ok((ForwardReader::new(stream), compression, plain_len))
}

/// Flashes the image at `image` (`-`: standard input) to `target`.
pub fn flash(
    image: &Path,
    target: &Path,
    options: &FlashOptions,
    progress: &mut dyn FlashProgress,
) -> Result<FlashReport, FlashError> {
    let started = Instant::now();
    let (mut stream, compression, plain_len) = open_image(image)?;

    // The image's size, known before the first write.
    let image_size = match (&options.bmap, compression, plain_len) {
        (Some(bmap), _, _) => bmap.image_size,
        (None, Compression::None, Some(len)) => len,
        (None, _, Some(_)) => counted_size(image)?,
        (None, _, None) => table_extent(&mut stream)?.ok_or_else(|| {
            refused(
                "the image's size cannot be known before writing: it comes from a pipe, \
                 is compressed and has no partition table; give a --bmap, or the image as a file",
            )
        })?,
    };
    if let (Some(bmap), Compression::None, Some(len)) = (&options.bmap, compression, plain_len) {
        if bmap.image_size != len {
            return Err(refused(format!(
                "the bmap is for an image of {} bytes; {} has {len}",
                bmap.image_size,
                image.display()
            )));
        }
    }

    let (file, is_device) = open_target(target)?;
    let capacity = target_capacity(&file, is_device, target)?;
    if let Some(capacity) = capacity {
        if capacity < image_size {
            return Err(refused(format!(
                "{} holds {capacity} bytes, the image needs {image_size}",
                target.display()
            )));
        }
    }
    if !is_device {
        // A file target becomes exactly the image: sparse where it has no
        // data, so it needs no zeroing.
        file.set_len(0)
            .and_then(|()| file.set_len(image_size))
            .map_err(|e| refused(format!("{}: {e}", target.display())))?;
    }

    let mut writer = Writer {
        file: &file,
        target,
        written: 0,
        ranges: Vec::new(),
        zero_unmapped: options.exact && is_device,
        keep_hashes: options.read_back,
    };
    let copied = match &options.bmap {
        Some(bmap) => copy_mapped(&mut stream, bmap, &mut writer, image_size, progress)
            .map(|(mapped, sha)| (mapped, sha, image_size)),
        None => copy_nonzero(&mut stream, &mut writer, image_size, capacity, progress),
    };
    let (mapped_bytes, sha256, image_size) = copied?;
    if !is_device {
        // From a pipe, the size was the table's extent; the stream may
        // have gone on with zeros, which the file must hold too.
        file.set_len(image_size).map_err(|e| FlashError::Failed {
            what: format!("{}: {e}", target.display()),
            written: writer.written,
        })?;
    }
    let failed = |what: String, written: u64| FlashError::Failed { what, written };
    file.sync_all()
        .map_err(|e| failed(format!("fsync {}: {e}", target.display()), writer.written))?;
    if options.read_back {
        read_back(target, &writer.ranges, writer.written)?;
    }
    let verified = match options.bmap.as_ref().and_then(|b| b.checksum) {
        Some(ChecksumKind::Sha256) => "bmap-sha256",
        Some(ChecksumKind::Sha1) => "bmap-sha1",
        None => "stream-sha256",
    };
    Ok(FlashReport {
        target: target.to_path_buf(),
        image_size,
        bytes_written: writer.written,
        mapped_bytes,
        verified: verified.into(),
        sha256,
        read_back: options.read_back,
        exact: options.exact,
        compression: format!("{compression:?}").to_lowercase(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The decompressed length of a compressed image file, by reading it once:
/// gzip's trailer holds it only modulo 4 GiB and xz's index is at the end,
/// so counting is the one answer that is always right.
fn counted_size(image: &Path) -> Result<u64, FlashError> {
    let file = File::open(image).map_err(|e| refused(format!("{}: {e}", image.display())))?;
    let mut buffered = BufReader::with_capacity(1 << 16, file);
    let head = buffered
        .fill_buf()
        .map_err(|e| refused(format!("{}: {e}", image.display())))?;
    let compression = Compression::sniff(head);
    let mut stream = decompressor(compression, buffered)
        .map_err(|e| refused(format!("{}: {e}", image.display())))?;
    std::io::copy(&mut stream, &mut std::io::sink()).map_err(|e| {
        refused(format!(
            "{}: the compressed image is damaged: {e}",
            image.display()
        ))
    })
}

/// How far the image's partition table reaches, in bytes: the GPT's last
/// usable sector plus its backup, or the end of the last MBR partition.
fn table_extent<R: Read>(stream: &mut ForwardReader<R>) -> Result<Option<u64>, FlashError> {
    let Ok((table, _)) = read_primary(stream) else {
        return Ok(None);
    };
    let sector = u64::from(table.sector_size);
    let end = match table.label {
        // The backup entries (32 sectors at 128 entries) and header follow
        // the last usable sector.
        Label::Gpt { last_lba, .. } => (last_lba + 34) * sector,
        Label::Dos { .. } => table
            .partitions
            .iter()
            .map(|p| (p.start + p.size) * sector)
            .max()
            .unwrap_or(0),
    };
    Ok((end > 0).then_some(end))
}

/// Opens the target for writing. A block device is opened with O_EXCL, so
/// the kernel refuses it while it is mounted, a swap, or held by another
/// layer (LVM, RAID), which is bmaptool's check too.
pub(crate) fn open_target(target: &Path) -> Result<(File, bool), FlashError> {
    let metadata = std::fs::metadata(target).ok();
    let is_device = metadata
        .as_ref()
        .is_some_and(|m| m.file_type().is_block_device());
    if metadata.as_ref().is_some_and(|m| m.is_dir()) {
        return Err(refused(format!("{} is a directory", target.display())));
    }
    if !is_device {
        if let Some(loop_device) = attached_loop(target) {
            return Err(refused(format!(
                "{} is in use as {loop_device}; detach it first",
                target.display()
            )));
        }
    }
    let mut open = OpenOptions::new();
    open.write(true).read(true);
    if is_device {
        open.custom_flags(libc::O_EXCL);
    } else {
        open.create(true);
    }
    match open.open(target) {
        Ok(file) => Ok((file, is_device)),
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => Err(refused(format!(
            "{} is in use (mounted, a swap, or held by another device); nothing was written",
            target.display()
        ))),
        Err(e) => Err(refused(format!("{}: {e}", target.display()))),
    }
}

/// The loop device a file backs, if any (a mounted image file).
fn attached_loop(target: &Path) -> Option<String> {
    let target = std::fs::canonicalize(target).ok()?;
    let entries = std::fs::read_dir("/sys/block").ok()?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("loop") {
            continue;
        }
        let backing = entry.path().join("loop/backing_file");
        if let Ok(text) = std::fs::read_to_string(backing) {
            if Path::new(text.trim()) == target {
                return Some(format!("/dev/{name}"));
            }
        }
    }
    None
}

/// A block device's size; files grow, so they have none.
pub(crate) fn target_capacity(
    file: &File,
    is_device: bool,
    target: &Path,
) -> Result<Option<u64>, FlashError> {
    if !is_device {
        return Ok(None);
    }
    let mut handle = file;
    let size = handle
        .seek(SeekFrom::End(0))
        .map_err(|e| refused(format!("{}: cannot tell its size: {e}", target.display())))?;
    Ok(Some(size))
}

pub(crate) struct Writer<'a> {
    pub(crate) file: &'a File,
    pub(crate) target: &'a Path,
    pub(crate) written: u64,
    pub(crate) ranges: Vec<Written>,
    pub(crate) zero_unmapped: bool,
    /// Hash each write for the read-back; only asked for with `--read-back`.
    pub(crate) keep_hashes: bool,
}

impl Writer<'_> {
    pub(crate) fn write(&mut self, offset: u64, bytes: &[u8]) -> Result<(), FlashError> {
        self.file
            .write_all_at(bytes, offset)
            .map_err(|e| FlashError::Failed {
                what: format!("writing {} at byte {offset}: {e}", self.target.display()),
                written: self.written,
            })?;
        self.written += bytes.len() as u64;
        if self.keep_hashes {
            self.ranges.push(Written {
                offset,
                len: bytes.len() as u64,
                sha256: Sha256::digest(bytes).into(),
            });
        }
        Ok(())
    }

    /// Zeroes `offset..offset + len` of a device for `--exact`: the kernel's
    /// BLKZEROOUT (which may discard where the device reads discarded blocks
    /// as zeros), else written zeros.
    pub(crate) fn zero(&mut self, offset: u64, len: u64) -> Result<(), FlashError> {
        if !self.zero_unmapped || len == 0 {
            return Ok(());
        }
        let range = [offset, len];
        // BLKZEROOUT = _IO(0x12, 127)
        const BLKZEROOUT: libc::c_ulong = 0x127f;
        // SAFETY: BLKZEROOUT reads two u64s (start, length) from `range`,
        // which lives on our stack for the call.
        let status = unsafe {
            libc::ioctl(
                std::os::fd::AsRawFd::as_raw_fd(self.file),
                BLKZEROOUT,
                range.as_ptr(),
            )
        };
        if status == 0 {
            self.written += len;
            return Ok(());
        }
        let zeros = vec![0u8; CHUNK.min(len as usize)];
        let mut at = offset;
        while at < offset + len {
            let n = (offset + len - at).min(zeros.len() as u64) as usize;
            self.write(at, &zeros[..n])?;
            at += n as u64;
        }
        Ok(())
    }
}

pub(crate) fn stream_failed(e: impl std::fmt::Display, written: u64) -> FlashError {
    FlashError::Failed {
        what: format!("reading the image: {e}"),
        written,
    }
}

/// Copies the bmap's ranges, checking each against its checksum.
fn copy_mapped<R: Read>(
    stream: &mut ForwardReader<R>,
    bmap: &Bmap,
    writer: &mut Writer<'_>,
    image_size: u64,
    progress: &mut dyn FlashProgress,
) -> Result<(u64, Option<String>), FlashError> {
    let mut buf = vec![0u8; CHUNK];
    let mut mapped = 0;
    let mut unmapped_from = 0u64;
    for range in &bmap.ranges {
        let start = range.first * bmap.block_size;
        let end = ((range.last + 1) * bmap.block_size).min(image_size);
        writer.zero(unmapped_from, start - unmapped_from)?;
        let mut hasher = bmap.checksum.map(ChecksumKind::hasher);
        let mut at = start;
        while at < end {
            let n = (end - at).min(buf.len() as u64) as usize;
            let got = stream
                .read_at(at, &mut buf[..n])
                .map_err(|e| stream_failed(e, writer.written))?;
            if got < n {
                return Err(FlashError::Failed {
                    what: format!(
                        "the image ends at byte {}, before the end of its bmap's range {}-{}",
                        at + got as u64,
                        range.first,
                        range.last
                    ),
                    written: writer.written,
                });
            }
            if let Some(h) = hasher.as_mut() {
                h.update(&buf[..n]);
            }
            writer.write(at, &buf[..n])?;
            at += n as u64;
            mapped += n as u64;
            progress.progress(at, image_size, writer.written);
        }
        if let (Some(h), Some(expected)) = (hasher, &range.checksum) {
            let found = h.hex();
            if &found != expected {
                return Err(FlashError::Failed {
                    what: format!(
                        "blocks {}-{} of the image do not match the bmap's checksum \
                         (expected {expected}, read {found}): the image is damaged or not the bmap's",
                        range.first, range.last
                    ),
                    written: writer.written,
                });
            }
        }
        unmapped_from = end;
    }
    writer.zero(unmapped_from, image_size.saturating_sub(unmapped_from))?;
    progress.progress(image_size, image_size, writer.written);
    Ok((mapped, None))
}

/// Copies every block that is not all zeros, hashing the whole stream;
/// returns the bytes of data, the stream's sha256 and its length.
/// `expected` is the size known beforehand (exact, or the partition table's
/// extent for a pipe); `capacity` the device's size, past which data cannot go.
fn copy_nonzero<R: Read>(
    stream: &mut ForwardReader<R>,
    writer: &mut Writer<'_>,
    expected: u64,
    capacity: Option<u64>,
    progress: &mut dyn FlashProgress,
) -> Result<(u64, Option<String>, u64), FlashError> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut at = 0u64;
    let mut mapped = 0u64;
    let mut unmapped_from = 0u64;
    loop {
        let got = stream
            .read_at(at, &mut buf)
            .map_err(|e| stream_failed(e, writer.written))?;
        if got == 0 {
            break;
        }
        let chunk = &buf[..got];
        hasher.update(chunk);
        // Runs of non-zero blocks are written as one.
        let mut i = 0;
        while i < got {
            let block_end = (i + BLOCK).min(got);
            if chunk[i..block_end].iter().all(|b| *b == 0) {
                i = block_end;
                continue;
            }
            let run_start = i;
            while i < got {
                let e = (i + BLOCK).min(got);
                if chunk[i..e].iter().all(|b| *b == 0) {
                    break;
                }
                i = e;
            }
            let offset = at + run_start as u64;
            if let Some(capacity) = capacity {
                if offset + (i - run_start) as u64 > capacity {
                    return Err(FlashError::Failed {
                        what: format!(
                            "the image has data at byte {offset}, past the target's {capacity} bytes"
                        ),
                        written: writer.written,
                    });
                }
            }
            writer.zero(unmapped_from, offset - unmapped_from)?;
            writer.write(offset, &chunk[run_start..i])?;
            mapped += (i - run_start) as u64;
            unmapped_from = offset + (i - run_start) as u64;
        }
        at += got as u64;
        progress.progress(at, expected.max(at), writer.written);
    }
    if at < expected {
        return Err(FlashError::Failed {
            what: format!("the image ends at byte {at}, before its {expected} bytes"),
            written: writer.written,
        });
    }
    let end = match capacity {
        Some(capacity) => at.min(capacity),
        None => at,
    };
    writer.zero(unmapped_from, end.saturating_sub(unmapped_from))?;
    Ok((mapped, Some(hex(&hasher.finalize())), at))
}

/// Re-reads every written range past the page cache and compares it with
/// what was written: the page cache is dropped for the target (it was
/// fsynced), then each range is read again.
pub(crate) fn read_back(target: &Path, ranges: &[Written], written: u64) -> Result<(), FlashError> {
    let failed = |what: String| FlashError::Failed { what, written };
    let file = File::open(target).map_err(|e| failed(format!("{}: {e}", target.display())))?;
    // SAFETY: posix_fadvise only reads its integer arguments.
    unsafe {
        libc::posix_fadvise(
            std::os::fd::AsRawFd::as_raw_fd(&file),
            0,
            0,
            libc::POSIX_FADV_DONTNEED,
        );
    }
    let mut buf = Vec::new();
    for range in ranges {
        buf.resize(range.len as usize, 0);
        file.read_exact_at(&mut buf, range.offset)
            .map_err(|e| failed(format!("reading {} back: {e}", target.display())))?;
        let found: [u8; 32] = Sha256::digest(&buf).into();
        if found != range.sha256 {
            return Err(failed(format!(
                "{} reads back different bytes at {}..{} than were written",
                target.display(),
                range.offset,
                range.offset + range.len
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bmap::parse;

    /// A bmap of format 1.3 (sha1, `BmapFileSHA1`, `sha1=` ranges) for
    /// `image`, whose blocks `mapped` hold its data.
    fn bmap_1_3(image: &[u8], mapped: &[(u64, u64)], damage: bool) -> Vec<u8> {
        let blocks = (image.len() as u64).div_ceil(4096);
        let mut ranges = String::new();
        for (first, last) in mapped {
            let mut h = ChecksumKind::Sha1.hasher();
            let end = (((last + 1) * 4096) as usize).min(image.len());
            h.update(&image[(first * 4096) as usize..end]);
            let mut sum = h.hex();
            if damage {
                sum = sum.replace(&sum[..1], if &sum[..1] == "0" { "1" } else { "0" });
            }
            ranges.push_str(&format!("<Range sha1=\"{sum}\"> {first}-{last} </Range>\n"));
        }
        let count: u64 = mapped.iter().map(|(a, b)| b - a + 1).sum();
        let body = format!(
            "<?xml version=\"1.0\" ?>\n<bmap version=\"1.3\">\n<ImageSize> {} </ImageSize>\n\
             <BlockSize> 4096 </BlockSize>\n<BlocksCount> {blocks} </BlocksCount>\n\
             <MappedBlocksCount> {count} </MappedBlocksCount>\n\
             <BmapFileSHA1> {} </BmapFileSHA1>\n<BlockMap>\n{ranges}</BlockMap>\n</bmap>\n",
            image.len(),
            "0".repeat(40)
        );
        let mut h = ChecksumKind::Sha1.hasher();
        h.update(body.as_bytes());
        body.replace(&"0".repeat(40), &h.hex()).into_bytes()
    }

    fn image() -> Vec<u8> {
        let mut image = vec![0u8; 10 * 4096 + 100];
        image[..4096].fill(0x11);
        image[5 * 4096..7 * 4096].fill(0x22);
        let len = image.len();
        image[len - 50..].fill(0x33);
        image
    }

    #[test]
    fn a_format_1_3_bmap_with_sha1_flashes_and_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = image();
        let path = dir.path().join("img");
        std::fs::write(&path, &bytes).unwrap();
        let bmap = parse(&bmap_1_3(&bytes, &[(0, 0), (5, 6), (10, 10)], false)).unwrap();
        assert_eq!(bmap.checksum, Some(ChecksumKind::Sha1));
        let target = dir.path().join("target");
        let options = FlashOptions {
            bmap: Some(bmap),
            read_back: true,
            exact: false,
        };
        let report = flash(&path, &target, &options, &mut ()).unwrap();
        assert_eq!(report.verified, "bmap-sha1");
        assert_eq!(std::fs::read(&target).unwrap(), bytes);
    }

    #[test]
    fn a_range_whose_sha1_differs_fails_after_writing_and_says_how_much() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = image();
        let path = dir.path().join("img");
        std::fs::write(&path, &bytes).unwrap();
        let bmap = parse(&bmap_1_3(&bytes, &[(0, 0), (5, 6)], true)).unwrap();
        let options = FlashOptions {
            bmap: Some(bmap),
            ..FlashOptions::default()
        };
        match flash(&path, &dir.path().join("target"), &options, &mut ()) {
            Err(FlashError::Failed { written, what }) => {
                assert_eq!(written, 4096, "{what}");
                assert!(what.contains("blocks 0-0"), "{what}");
            }
            other => panic!("expected Failed, got {other:?}"),
        }
    }
}
