//! ferry-image reads disk images: the partition table (MBR with logical
//! partitions, or GPT) and the filesystem in each partition, from a plain or
//! compressed image, streamed, so that it works on a pipe.
//!
//! Not for apt or packages: this crate sits on ferry-deb's decompression
//! only, and the takeover builds on it.

mod bmap;
mod flash;
mod fs;
mod inspect;
mod layout;
mod partitions;
mod sfdisk;
mod stream;
mod table;

// The crate's whole surface; the modules stay private so that what other
// crates may lean on is decided here, in one place.
pub use bmap::{parse as parse_bmap, BlockRange, Bmap, BmapError, ChecksumKind};
pub use flash::{flash, FlashError, FlashOptions, FlashProgress, FlashReport};
pub use fs::{probe, Filesystem, PROBE_BYTES};
pub use inspect::{
    inspect_path, inspect_reader, sfdisk_script, InspectError, Inspection, PartitionInfo,
};
pub use layout::{
    compute as compute_layout, parse_dump, DiskDump, DumpedPartition, Layout, LayoutError,
    Placement, Region,
};
pub use partitions::{flash_partitions, PartitionFlash, PartitionsReport};
pub use sfdisk::{
    dump as sfdisk_dump, placed_numbers, tell_kernel, write as sfdisk_write, SfdiskError,
};
pub use stream::{ForwardReader, StreamError, HEAD_BYTES};
pub use table::{
    gpt_attributes, read_primary, read_table, validate, Chain, Label, Partition, PartitionType,
    Table, TableError,
};
