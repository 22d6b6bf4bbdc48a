//! Partition-wise flashing: each named partition of the image written into
//! a device (or file) of its own, in one forward pass over the stream, as
//! the seed's stage 2 pipes gunzip into dd "partition by partition".

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::bmap::hex;
use crate::flash::{
    open_image, open_target, read_back, refused, stream_failed, target_capacity, FlashError,
    FlashOptions, FlashProgress, Writer, BLOCK, CHUNK,
};
use crate::table::{read_primary, Chain, Partition};

/// One partition written.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartitionFlash {
    pub number: u32,
    pub target: PathBuf,
    /// The partition's length in bytes.
    pub size: u64,
    pub bytes_written: u64,
    /// sha256 of the partition's bytes as the image holds them.
    pub sha256: String,
    pub read_back: bool,
}

/// What a partition-wise flash did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartitionsReport {
    pub partitions: Vec<PartitionFlash>,
    pub compression: String,
    pub seconds: f64,
}

struct Route {
    number: u32,
    target: PathBuf,
    file: File,
    capacity: Option<u64>,
    is_device: bool,
}

/// Writes partition `number` of the image into `target`, for every
/// `(number, target)` of `routes`. Targets are opened (and refused when in
/// use) before anything is written; a primary or GPT partition's target
/// that is too small is refused then too. A logical partition is known only
/// when the stream reaches its boot record, so its target's size is checked
/// there, before its first write.
pub fn flash_partitions(
    image: &Path,
    routes: &[(u32, PathBuf)],
    options: &FlashOptions,
    progress: &mut dyn FlashProgress,
) -> Result<PartitionsReport, FlashError> {
    let started = Instant::now();
    if options.bmap.is_some() {
        return Err(refused(
            "--bmap applies to the whole image; give it without --partition",
        ));
    }
    let (mut stream, compression, _) = open_image(image)?;
    let (table, mut chain) =
        read_primary(&mut stream).map_err(|e| refused(format!("{}: {e}", image.display())))?;
    let sector = u64::from(table.sector_size);
    let mut known: Vec<Partition> = table
        .partitions
        .iter()
        .filter(|p| !p.is_extended())
        .cloned()
        .collect();
    let mut opened = Vec::new();
    for (number, target) in routes {
        if opened.iter().any(|r: &Route| r.number == *number) {
            return Err(refused(format!("partition {number} is named twice")));
        }
        let (file, is_device) = open_target(target)?;
        let capacity = target_capacity(&file, is_device, target)?;
        match known.iter().find(|p| p.number == *number) {
            Some(p) => check_fits(p, sector, capacity, target)?,
            None if chain.is_none() || *number < 5 => {
                return Err(refused(format!(
                    "the image has no partition {number} (it has {})",
                    known
                        .iter()
                        .map(|p| p.number.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )))
            }
            None => {}
        }
        opened.push(Route {
            number: *number,
            target: target.clone(),
            file,
            capacity,
            is_device,
        });
    }

    #[derive(PartialEq, Eq, PartialOrd, Ord)]
    enum Job {
        BootRecord,
        Copy(u32),
    }
    let mut queue: BinaryHeap<Reverse<(u64, Job)>> = BinaryHeap::new();
    for p in &known {
        if opened.iter().any(|r| r.number == p.number) {
            queue.push(Reverse((p.start * sector, Job::Copy(p.number))));
        }
    }
    if let Some(next) = chain.as_ref().and_then(Chain::next_sector) {
        queue.push(Reverse((next * 512, Job::BootRecord)));
    }
    let total: u64 = opened
        .iter()
        .filter_map(|r| known.iter().find(|p| p.number == r.number))
        .map(|p| p.size * sector)
        .sum();
    let mut done = Vec::new();
    let mut written_so_far = 0u64;
    while let Some(Reverse((offset, job))) = queue.pop() {
        match job {
            Job::BootRecord => {
                let Some(walk) = chain.as_mut() else { continue };
                let mut ebr = [0u8; 512];
                stream
                    .read_exact_at(offset, &mut ebr)
                    .map_err(|e| stream_failed(e, written_so_far))?;
                let logical = walk
                    .read(&ebr)
                    .map_err(|e| stream_failed(e, written_so_far))?;
                if let Some(p) = logical {
                    if let Some(route) = opened.iter().find(|r| r.number == p.number) {
                        check_fits(&p, sector, route.capacity, &route.target).map_err(|e| {
                            if written_so_far > 0 {
                                FlashError::Failed {
                                    what: e.to_string(),
                                    written: written_so_far,
                                }
                            } else {
                                e
                            }
                        })?;
                        queue.push(Reverse((p.start * sector, Job::Copy(p.number))));
                    }
                    known.push(p);
                }
                if let Some(next) = walk.next_sector() {
                    queue.push(Reverse((next * 512, Job::BootRecord)));
                }
            }
            Job::Copy(number) => {
                let Some(p) = known.iter().find(|p| p.number == number).cloned() else {
                    continue;
                };
                let Some(route) = opened.iter().find(|r| r.number == number) else {
                    continue;
                };
                let flashed = copy_partition(
                    &mut stream,
                    &p,
                    sector,
                    route,
                    options,
                    &mut written_so_far,
                    total,
                    progress,
                )?;
                done.push(flashed);
            }
        }
    }
    for route in &opened {
        if !done
            .iter()
            .any(|d: &PartitionFlash| d.number == route.number)
        {
            let what = format!("the image has no partition {}", route.number);
            return Err(if written_so_far > 0 {
                FlashError::Failed {
                    what,
                    written: written_so_far,
                }
            } else {
                refused(what)
            });
        }
    }
    done.sort_by_key(|d| d.number);
    Ok(PartitionsReport {
        partitions: done,
        compression: format!("{compression:?}").to_lowercase(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn check_fits(
    p: &Partition,
    sector: u64,
    capacity: Option<u64>,
    target: &Path,
) -> Result<(), FlashError> {
    let needed = p.size * sector;
    match capacity {
        Some(capacity) if capacity < needed => Err(refused(format!(
            "{} holds {capacity} bytes, partition {} needs {needed}",
            target.display(),
            p.number
        ))),
        _ => Ok(()),
    }
}

/// Streams one partition's bytes into its target, skipping zero blocks
/// (zeroing them instead with `--exact` on a device), then fsyncs and, if
/// asked, reads back.
#[allow(clippy::too_many_arguments)]
fn copy_partition(
    stream: &mut crate::flash::ImageStream,
    p: &Partition,
    sector: u64,
    route: &Route,
    options: &FlashOptions,
    written_so_far: &mut u64,
    total: u64,
    progress: &mut dyn FlashProgress,
) -> Result<PartitionFlash, FlashError> {
    let start = p.start * sector;
    let size = p.size * sector;
    if !route.is_device {
        route
            .file
            .set_len(0)
            .and_then(|()| route.file.set_len(size))
            .map_err(|e| FlashError::Failed {
                what: format!("{}: {e}", route.target.display()),
                written: *written_so_far,
            })?;
    }
    let mut writer = Writer {
        file: &route.file,
        target: &route.target,
        written: 0,
        ranges: Vec::new(),
        zero_unmapped: options.exact && route.is_device,
        keep_hashes: options.read_back,
    };
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut at = 0u64;
    let mut unmapped_from = 0u64;
    let fail = |what: String, written: u64| FlashError::Failed { what, written };
    while at < size {
        let n = (size - at).min(buf.len() as u64) as usize;
        let got = stream
            .read_at(start + at, &mut buf[..n])
            .map_err(|e| stream_failed(e, *written_so_far + writer.written))?;
        if got < n {
            return Err(fail(
                format!(
                    "the image ends inside partition {}, {} bytes into it",
                    p.number,
                    at + got as u64
                ),
                *written_so_far + writer.written,
            ));
        }
        let chunk = &buf[..n];
        hasher.update(chunk);
        let mut i = 0;
        while i < n {
            let block_end = (i + BLOCK).min(n);
            if chunk[i..block_end].iter().all(|b| *b == 0) {
                i = block_end;
                continue;
            }
            let run_start = i;
            while i < n {
                let e = (i + BLOCK).min(n);
                if chunk[i..e].iter().all(|b| *b == 0) {
                    break;
                }
                i = e;
            }
            let offset = at + run_start as u64;
            writer.zero(unmapped_from, offset - unmapped_from)?;
            writer.write(offset, &chunk[run_start..i])?;
            unmapped_from = offset + (i - run_start) as u64;
        }
        at += n as u64;
        progress.progress(
            *written_so_far + writer.written,
            total.max(*written_so_far + writer.written),
            *written_so_far + writer.written,
        );
    }
    writer.zero(unmapped_from, size - unmapped_from)?;
    route.file.sync_all().map_err(|e| {
        fail(
            format!("fsync {}: {e}", route.target.display()),
            *written_so_far + writer.written,
        )
    })?;
    if options.read_back {
        read_back(
            &route.target,
            &writer.ranges,
            *written_so_far + writer.written,
        )?;
    }
    *written_so_far += writer.written;
    Ok(PartitionFlash {
        number: p.number,
        target: route.target.clone(),
        size,
        bytes_written: writer.written,
        sha256: hex(&hasher.finalize()),
        read_back: options.read_back,
    })
}
