//! Release upgrades: the meta-release index that says which release comes
//! next, the signed bundle that says how to get there, and the
//! configuration naming both trust anchors (`/etc/ferry/release.toml`).
//!
//! This module fetches, verifies and unpacks (with ferry-fetch); turning a bundle into a
//! migration profile is `bundle::to_migration`, and running it is `run`'s job.

pub mod bundle;
pub mod config;
pub mod meta;

pub use bundle::{Bundle, BundleError};
pub use config::{Config, ConfigError};
pub use meta::{offer, MetaError, MetaRelease, Offer, OfferError, ReleaseEntry};
