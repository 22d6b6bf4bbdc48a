//! ferry-deb reads Debian's formats into typed values: versions, deb822
//! paragraphs, package relations, binary and source package records, index
//! files in any compression APT uses, APT sources, Release files and
//! os-release.
//!
//! It does no I/O beyond reading the files it is pointed at, and decides
//! nothing: installability lives in `ferry-solve`, migrations in
//! `ferry-apt`.

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
pub use version::{CompareOp, Version, VersionRef};
