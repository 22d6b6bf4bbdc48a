//! ferry-journal records what a device run does, so that a run killed at any
//! instant resumes or rolls back from what is on disk: a journal of typed
//! steps (`Journal<S: Step>`) written atomically before and after every step,
//! one lock so that only one run works on a system, and the event log every
//! ferry command and the fleet agent share.
//!
//! The runner (`drive`) journals around each step and decides what a
//! failure calls for; each kind of run (the apt migration, later an image or
//! a takeover) brings its own `Step` enum and the code that does each step
//! (`Steps`). Nothing here knows apt.

mod atomic;
mod document;
mod events;
mod journal;
mod lock;
mod runner;

// The crate's whole surface; the modules stay private so that what other
// crates may lean on is decided here, in one place.
pub use atomic::write_atomic;
pub use document::{document_format, load_document, parse_document, save_document, DocumentError};
pub use events::{rfc3339, rfc3339_now, Event, EventLog, EventState};
pub use journal::{
    now, Driver, Journal, JournalError, Outcome, Step, StepObserver, StepRecord, StepState,
    JOURNAL_FORMAT,
};
pub use lock::{Holder, LockError, MigrationLock};
pub use runner::{after_failure, drive, AfterFailure, Driven, StepEvent, Steps};
