//! ferry-deb reads Debian's formats into typed values: versions, deb822
//! paragraphs, package relations, binary and source package records, index
//! files in any compression APT uses, APT sources, Release files and
//! os-release.
//!
//! It does no I/O beyond reading the files it is pointed at, and decides
//! nothing: installability lives in `ferry-solve`, migrations in
//! `ferry-apt`.

// Unlike the other library crates, the modules stay public: each is one
// Debian format, and its name is part of what its items say. The free
// functions are verbs that only read right qualified (`deb822::parse`,
// `index::open`, `index::read_to_string`), and some 85 call sites in 34
// files across the workspace name items that way. The curation happens one
// level down instead (`sources` keeps its submodules private behind a
// `pub use` list); the types most crates need are also re-exported here.
pub mod deb822;
pub mod index;
pub mod os_release;
pub mod package;
pub mod relation;
pub mod release;
pub mod sources;
pub mod version;

pub use deb822::{Field, Paragraph, Syntax, SyntaxError};
pub use package::{BinaryPackage, RecordError, SourcePackage};
pub use relation::{Atom, Constraint, MultiArch, RelOp, Relations};
pub use version::{CompareOp, DpkgArgument, DpkgRelation, Version, VersionRef};
