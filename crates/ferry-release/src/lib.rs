//! ferry-release upgrades a system to the next release: the meta-release
//! index that says which release comes next, the signed bundle that says how
//! to get there, and the configuration naming both trust anchors
//! (`/etc/ferry/release.toml`).
//!
//! It fetches, verifies and unpacks with ferry-fetch and turns a bundle into
//! an apt migration profile (`to_migration`); running that profile is
//! ferry-apt's job, through the same journaled run as an org move.

mod bundle;
mod config;
mod meta;

// The crate's whole surface; the modules stay private so that what other
// crates may lean on is decided here, in one place.
pub use bundle::{
    build as build_bundle, obtain as obtain_bundle, parse_demoted, sha256_file, to_migration,
    Built, Bundle, BundleError, NewSources, Obtained, ReleaseMigration, SignWith,
};
pub use config::{Config, ConfigError, CONFIG_PATH};
pub use meta::{
    offer, parse_rfc2822, BundleRef, MetaError, MetaRelease, Offer, OfferError, ReleaseEntry,
};
