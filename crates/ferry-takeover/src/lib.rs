//! ferry-takeover replaces the operating system of a running machine with a
//! disk image: a read-only pre-flight that writes the typed stage-2 plan,
//! the network configuration and identity carried over into the new OS,
//! and (next) the journaled run in RAM. Built on the engine (ferry-journal,
//! ferry-fetch) and the disk-image crate; nothing here knows apt.

pub mod identity;
pub mod network;
