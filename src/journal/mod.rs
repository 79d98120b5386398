//! The journal: an embedded redb database at `<state-dir>/journal.redb`.
//!
//! Why redb: one file, ACID commits with an explicit durability level per commit, no server,
//! and a `StorageBackend` seam that the power-loss simulation plugs into.
//!
//! Tables:
//! - `meta`: schema version and the next transaction id;
//! - `txns`: transaction id → [`TxnRecord`] (see [`schema`] for the encoding);
//! - `events`: (transaction id, sequence) → [`Event`];
//! - `open`: the ids of transactions not yet terminal, so that recovery costs O(open
//!   transactions), not O(history);
//! - `blobs`: blake3 hash → file contents, deduplicated, verified on every read;
//! - `attention`: the ids of NeedsManual transactions not yet resolved by the operator, whose
//!   files no new transaction may touch.
//!
//! Every state change is one redb write transaction. The ones recovery depends on
//! (Prepared, Audited, Committed, RollingBack and the terminal states) are committed with
//! `Durability::Immediate`; progress notes in between are queued ([`Durable::Later`]) and
//! committed with the next durable record (recovery treats Prepared … Auditing alike, so losing
//! them changes nothing).
//!
//! Two handles: [`Journal`] writes (its holder holds the state directory's lock) and reads;
//! [`JournalReader`] only reads (inspection alongside a running kharden): writing through it
//! does not compile. Both read through the [`JournalRead`] trait.
//!
//! The modules: [`store`] opens, creates (atomically) and checks the database and batches
//! writes; [`log`] is the transaction log (prepare, transitions, events, reads); [`verify`] and
//! [`prune`] are the maintenance commands; [`schema`] is the on-disk format; [`record`] the
//! domain types.

mod log;
mod prune;
pub mod record;
pub mod schema;
mod state_dir;
mod store;
mod verify;

pub use log::{JournalRead, Transition};
pub use record::*;
pub use schema::{CodecError, RECORD_VERSION};
pub use state_dir::{check_state_dir, prepare_state_dir, StateDirError};
pub use store::{Inspector, Journal, JournalReader, FLUSH_EVERY};
pub use verify::Fault;

use std::path::PathBuf;

/// Schema version of the tables (not of the records: see [`RECORD_VERSION`]).
pub const SCHEMA_VERSION: u64 = 1;

/// File name of the database inside the state directory.
pub const DB_FILE: &str = "journal.redb";

/// Written beside the database once it exists: a state directory that has it but no
/// database lost its journal (a fault, never a reason to start afresh).
pub const MARKER_FILE: &str = "journal.created";

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal database: {0}")]
    Redb(#[from] redb::Error),
    /// redb found (or tripped over) a damaged database. Never a panic: see [`store`].
    #[error("{path}: the journal is damaged ({detail}). Nothing was changed. Keep it for inspection: move it aside (mv {path} {path}.damaged), run `kharden journal verify` on the copy with --state-dir, and restore the state directory from a backup or start a new journal (which forgets any open transaction: check the managed files by hand first)")]
    Corrupt { path: String, detail: String },
    #[error("{path}: the journal is missing although {marker} says one was created here: it may have held an open transaction. Nothing was changed. Restore it from a backup, or, after checking every managed file by hand, remove {marker} to start a new journal")]
    Missing { path: String, marker: String },
    #[error("journal record: {0}")]
    Codec(#[from] CodecError),
    #[error("{0}")]
    StateDir(#[from] StateDirError),
    #[error("no transaction {0} in the journal")]
    NotFound(TxId),
    #[error("transaction {id}: {from} cannot go to {to}")]
    BadTransition { id: TxId, from: State, to: State },
    #[error("transaction {id} is {state} and has nothing to resolve (only an unresolved needs-manual transaction has)")]
    NotUnresolved { id: TxId, state: State },
    #[error("blob {hash} is missing from the journal")]
    MissingBlob { hash: String },
    #[error("blob {hash} is corrupt: its contents hash to {actual}")]
    CorruptBlob { hash: String, actual: String },
    #[error(
        "journal schema version {found} is not supported (this kharden knows {SCHEMA_VERSION})"
    )]
    Schema { found: u64 },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl JournalError {
    /// Whether this error means the journal itself cannot be trusted (exit code 8), as
    /// opposed to a request it refused or an I/O error of the moment.
    pub fn is_fault(&self) -> bool {
        matches!(
            self,
            JournalError::Corrupt { .. }
                | JournalError::Missing { .. }
                | JournalError::Codec(_)
                | JournalError::CorruptBlob { .. }
                | JournalError::MissingBlob { .. }
                | JournalError::Schema { .. }
                | JournalError::Redb(redb::Error::Corrupted(_))
                | JournalError::Redb(redb::Error::UpgradeRequired(_))
        )
    }
}

macro_rules! redb_err {
    ($($t:ty),*) => {$(
        impl From<$t> for JournalError {
            fn from(e: $t) -> Self { JournalError::Redb(e.into()) }
        }
    )*};
}
redb_err!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

pub type Result<T, E = JournalError> = std::result::Result<T, E>;

/// Whether a record must be on disk when the call returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durable {
    /// One redb commit with `Durability::Immediate` (one fdatasync).
    Yes,
    /// Queued and committed with the next durable record (or after [`store::FLUSH_EVERY`]):
    /// a crash may lose it, which recovery tolerates by design. This saves an fsync per
    /// progress record; redb's own `Durability::None` is not available to a multi-process
    /// database.
    Later,
}

#[cfg(test)]
mod tests;
