//! The journal: an embedded redb database at `<state-dir>/journal.redb`.
//!
//! Why redb: one file, ACID commits with an explicit durability level per commit, no server,
//! and a `StorageBackend` seam that the power-loss simulation plugs into.
//!
//! Tables:
//! - `meta`: schema version and the next transaction id;
//! - `txns`: transaction id → [`TxnRecord`] (postcard, version byte first);
//! - `events`: (transaction id, sequence) → [`Event`];
//! - `open`: the ids of transactions not yet terminal, so that recovery costs O(open
//!   transactions), not O(history);
//! - `blobs`: blake3 hash → file contents, deduplicated, verified on every read;
//! - `attention`: the ids of NeedsManual transactions not yet resolved by the operator, whose
//!   files no new transaction may touch.
//!
//! Every state change is one redb write transaction. The ones recovery depends on
//! (Prepared, Audited, Committed, RollingBack and the terminal states) are committed with
//! `Durability::Immediate`; progress notes in between may be `Durability::None`, which redb
//! persists with the next immediate commit or drops in a crash (recovery treats Prepared …
//! Auditing alike, so losing them changes nothing).

pub mod record;
mod state_dir;

pub use record::*;
pub use state_dir::{check_state_dir, prepare_state_dir, StateDirError};

use crate::failpoint;
use redb::{
    Builder, ConcurrencyMode, Database, Durability, ReadOnlyDatabase, ReadTransaction,
    ReadableDatabase, ReadableTable, ReadableTableMetadata, StorageBackend, TableDefinition,
    WriteTransaction,
};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const TXNS: TableDefinition<u64, &[u8]> = TableDefinition::new("txns");
const EVENTS: TableDefinition<(u64, u32), &[u8]> = TableDefinition::new("events");
const OPEN: TableDefinition<u64, ()> = TableDefinition::new("open");
const BLOBS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("blobs");
/// NeedsManual transactions the operator has not resolved yet (`kharden journal resolve`):
/// no new transaction may touch their files. Created on first use, so journals made before it
/// existed open unchanged (a missing table reads as empty).
const ATTENTION: TableDefinition<u64, ()> = TableDefinition::new("attention");

/// Schema version of the tables above.
pub const SCHEMA_VERSION: u64 = 1;
const KEY_SCHEMA: &str = "schema_version";
const KEY_NEXT_TXID: &str = "next_txid";

/// File name of the database inside the state directory.
pub const DB_FILE: &str = "journal.redb";

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal database: {0}")]
    Redb(#[from] redb::Error),
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

enum Db {
    Rw(Database),
    Ro(ReadOnlyDatabase),
}

/// A handle on the journal. Writers hold the state directory's lock (see [`crate::lock`]).
pub struct Journal {
    db: Db,
    pending: Mutex<Pending>,
}

/// Progress records not yet committed (see [`Durable::Later`]).
#[derive(Default)]
struct Pending {
    ops: Vec<PendingOp>,
    since: Option<Instant>,
}

enum PendingOp {
    State {
        id: TxId,
        state: State,
        reason: Option<String>,
        cause: Option<RollbackCause>,
        now_ms: u64,
    },
    Events {
        id: TxId,
        events: Vec<Event>,
    },
}

/// How old queued progress records may get before they are committed anyway.
pub const FLUSH_EVERY: Duration = Duration::from_secs(2);

fn lock_pending(m: &Mutex<Pending>) -> std::sync::MutexGuard<'_, Pending> {
    // A poisoned queue only means a panic elsewhere; the records in it are still valid.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Drop for Journal {
    fn drop(&mut self) {
        if matches!(self.db, Db::Rw(_)) && !lock_pending(&self.pending).ops.is_empty() {
            if let Err(e) = self.write(|_| Ok(())) {
                tracing::warn!("journal: could not commit progress records at exit: {e}");
            }
        }
    }
}

/// Whether a record must be on disk when the call returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durable {
    /// One redb commit with `Durability::Immediate` (one fdatasync).
    Yes,
    /// Queued and committed with the next durable record (or after [`FLUSH_EVERY`]): a crash
    /// may lose it, which recovery tolerates by design. This saves an fsync per progress
    /// record; redb's own `Durability::None` is not available to a multi-process database.
    Later,
}

/// A fault found by [`Journal::verify`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Fault {
    pub txid: Option<TxId>,
    pub what: String,
}

fn builder() -> Builder {
    let mut b = Builder::new();
    // One writer (the lock holder), any number of read-only inspectors alongside it.
    b.set_concurrency_mode(ConcurrencyMode::SingleWriter);
    b
}

impl Journal {
    /// Open (creating when needed) the journal in `state_dir` for writing. The caller holds
    /// the lock.
    pub fn open(state_dir: &Path) -> Result<Journal> {
        prepare_state_dir(state_dir)?;
        let path = state_dir.join(DB_FILE);
        let created = state_dir::create_db_file(&path)?;
        let db = builder().create(&path)?;
        let j = Journal {
            db: Db::Rw(db),
            pending: Mutex::new(Pending::default()),
        };
        j.init_meta()?;
        if created {
            // The new directory entry must survive a power cut before anything relies on it.
            state_dir::fsync_dir(state_dir)?;
        }
        Ok(j)
    }

    /// Open an existing journal read-only (for inspection while another kharden may be
    /// writing). `Ok(None)` when there is no journal yet.
    pub fn open_read_only(state_dir: &Path) -> Result<Option<Journal>> {
        let path = state_dir.join(DB_FILE);
        if !path.exists() {
            return Ok(None);
        }
        check_state_dir(state_dir)?;
        let db = builder().open_read_only(&path)?;
        let j = Journal {
            db: Db::Ro(db),
            pending: Mutex::new(Pending::default()),
        };
        j.check_schema()?;
        Ok(Some(j))
    }

    /// Open a journal on another storage backend (the power-loss simulation). The journal
    /// runs redb in `ConcurrencyMode::SingleWriter`, so the backend must grant redb's
    /// byte-range locks (`try_lock_range`).
    pub fn with_backend(backend: impl StorageBackend) -> Result<Journal> {
        let db = builder().create_with_backend(backend)?;
        let j = Journal {
            db: Db::Rw(db),
            pending: Mutex::new(Pending::default()),
        };
        j.init_meta()?;
        Ok(j)
    }

    fn rw(&self) -> &Database {
        match &self.db {
            Db::Rw(db) => db,
            // Only the read-only constructor makes `Ro`, and the CLI never writes through it.
            Db::Ro(_) => unreachable_ro(),
        }
    }

    fn begin_read(&self) -> Result<ReadTransaction> {
        Ok(match &self.db {
            Db::Rw(db) => db.begin_read()?,
            Db::Ro(db) => db.begin_read()?,
        })
    }

    fn begin_write(&self) -> Result<WriteTransaction> {
        let mut tx = self.rw().begin_write()?;
        tx.set_durability(Durability::Immediate)?;
        Ok(tx)
    }

    /// One durable redb commit: the queued progress records first, then `f`'s writes.
    fn write<R>(&self, f: impl FnOnce(&WriteTransaction) -> Result<R>) -> Result<R> {
        let tx = self.begin_write()?;
        let ops = std::mem::take(&mut *lock_pending(&self.pending));
        for op in &ops.ops {
            match op {
                PendingOp::State {
                    id,
                    state,
                    reason,
                    cause,
                    now_ms,
                } => {
                    Self::apply_state(&tx, *id, *state, reason.clone(), *cause, *now_ms)?;
                }
                PendingOp::Events { id, events } => Self::append_events(&tx, *id, events)?,
            }
        }
        let r = f(&tx)?;
        tx.commit()?;
        Ok(r)
    }

    /// Queue a progress record for the next durable commit; flush when the queue is older
    /// than [`FLUSH_EVERY`] so that inspectors see a gate's progress.
    fn queue(&self, op: PendingOp) -> Result<()> {
        let stale = {
            let mut p = lock_pending(&self.pending);
            p.ops.push(op);
            let since = *p.since.get_or_insert_with(Instant::now);
            since.elapsed() >= FLUSH_EVERY
        };
        if stale {
            self.write(|_| Ok(()))?;
        }
        Ok(())
    }

    fn init_meta(&self) -> Result<()> {
        let tx = self.begin_write()?;
        let existing = {
            let mut meta = tx.open_table(META)?;
            let v = meta.get(KEY_SCHEMA)?.map(|g| g.value());
            if v.is_none() {
                meta.insert(KEY_SCHEMA, SCHEMA_VERSION)?;
                meta.insert(KEY_NEXT_TXID, 1)?;
            }
            tx.open_table(TXNS)?;
            tx.open_table(EVENTS)?;
            tx.open_table(OPEN)?;
            tx.open_table(BLOBS)?;
            v
        };
        match existing {
            Some(v) if v != SCHEMA_VERSION => {
                tx.abort()?;
                Err(JournalError::Schema { found: v })
            }
            Some(_) => {
                tx.abort()?;
                Ok(())
            }
            None => {
                tx.commit()?;
                Ok(())
            }
        }
    }

    fn check_schema(&self) -> Result<()> {
        let rt = self.begin_read()?;
        let meta = rt.open_table(META)?;
        match meta.get(KEY_SCHEMA)?.map(|g| g.value()) {
            Some(SCHEMA_VERSION) | None => Ok(()),
            Some(found) => Err(JournalError::Schema { found }),
        }
    }

    /// Record a new transaction in state Prepared, with every blob it needs, durably. Returns
    /// its id. Nothing on disk may be touched before this returns (invariant 3).
    pub fn prepare(&self, mut rec: TxnRecord, blobs: &[&[u8]], now_ms: u64) -> Result<TxId> {
        failpoint::hit("journal.prepare.before");
        let id = self.write(|tx| {
            let id = {
                let mut meta = tx.open_table(META)?;
                let id = meta.get(KEY_NEXT_TXID)?.map(|g| g.value()).unwrap_or(1);
                meta.insert(KEY_NEXT_TXID, id + 1)?;
                id
            };
            rec.id = id;
            rec.state = State::Prepared;
            rec.created_ms = now_ms;
            rec.updated_ms = now_ms;
            {
                let mut t = tx.open_table(BLOBS)?;
                for b in blobs {
                    let h = crate::durable::hash(b);
                    if t.get(&h)?.is_none() {
                        t.insert(&h, *b)?;
                    }
                }
            }
            tx.open_table(TXNS)?.insert(id, encode(&rec)?.as_slice())?;
            tx.open_table(OPEN)?.insert(id, ())?;
            let ev = Event {
                time_ms: now_ms,
                kind: EventKind::State {
                    state: State::Prepared,
                    note: None,
                },
            };
            tx.open_table(EVENTS)?
                .insert((id, 0), encode(&ev)?.as_slice())?;
            Ok(id)
        })?;
        failpoint::hit("journal.prepare.after");
        Ok(id)
    }

    fn next_seq(tx: &WriteTransaction, id: TxId) -> Result<u32> {
        let t = tx.open_table(EVENTS)?;
        let last = t.range((id, 0)..=(id, u32::MAX))?.next_back().transpose()?;
        Ok(last.map(|(k, _)| k.value().1 + 1).unwrap_or(0))
    }

    /// Move a transaction to `state`, with an optional reason, and record the event.
    pub fn set_state(
        &self,
        id: TxId,
        state: State,
        reason: Option<String>,
        cause: Option<RollbackCause>,
        durable: Durable,
        now_ms: u64,
    ) -> Result<()> {
        failpoint::hit(state_point(state, true));
        match durable {
            Durable::Yes => {
                self.write(|tx| Self::apply_state(tx, id, state, reason, cause, now_ms))?
            }
            Durable::Later => self.queue(PendingOp::State {
                id,
                state,
                reason,
                cause,
                now_ms,
            })?,
        }
        failpoint::hit(state_point(state, false));
        Ok(())
    }

    fn apply_state(
        tx: &WriteTransaction,
        id: TxId,
        state: State,
        reason: Option<String>,
        cause: Option<RollbackCause>,
        now_ms: u64,
    ) -> Result<()> {
        {
            let mut txns = tx.open_table(TXNS)?;
            let mut rec: TxnRecord = match txns.get(id)? {
                Some(g) => decode(g.value())?,
                None => return Err(JournalError::NotFound(id)),
            };
            if !rec.state.may_go_to(state) {
                return Err(JournalError::BadTransition {
                    id,
                    from: rec.state,
                    to: state,
                });
            }
            rec.state = state;
            rec.updated_ms = now_ms;
            if reason.is_some() {
                rec.reason = reason.clone();
            }
            if cause.is_some() {
                rec.rollback_cause = cause;
            }
            txns.insert(id, encode(&rec)?.as_slice())?;
        }
        let ev = Event {
            time_ms: now_ms,
            kind: EventKind::State {
                state,
                note: reason,
            },
        };
        Self::append_events(tx, id, std::slice::from_ref(&ev))?;
        if state.is_terminal() {
            tx.open_table(OPEN)?.remove(id)?;
        }
        if state == State::NeedsManual {
            tx.open_table(ATTENTION)?.insert(id, ())?;
        }
        Ok(())
    }

    fn append_events(tx: &WriteTransaction, id: TxId, events: &[Event]) -> Result<()> {
        let first = Self::next_seq(tx, id)?;
        let mut t = tx.open_table(EVENTS)?;
        for (seq, ev) in (first..).zip(events) {
            t.insert((id, seq), encode(ev)?.as_slice())?;
        }
        Ok(())
    }

    /// Append events (probe outcomes, files written, audit output...).
    pub fn add_events(
        &self,
        id: TxId,
        kinds: Vec<EventKind>,
        durable: Durable,
        now_ms: u64,
    ) -> Result<()> {
        let events = kinds
            .into_iter()
            .map(|kind| Event {
                time_ms: now_ms,
                kind,
            })
            .collect();
        self.add_timed_events(id, events, durable)
    }

    /// Append events with their own times.
    pub fn add_timed_events(&self, id: TxId, events: Vec<Event>, durable: Durable) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        failpoint::hit("journal.event.before");
        match durable {
            Durable::Yes => self.write(|tx| Self::append_events(tx, id, &events))?,
            Durable::Later => self.queue(PendingOp::Events { id, events })?,
        }
        failpoint::hit("journal.event.after");
        Ok(())
    }

    /// Record a refused command (bad input, a file kharden will not touch): a transaction with
    /// no file that goes straight from Prepared to Aborted, with the reason. Nothing on disk
    /// was or will be changed; the record answers "why did nothing happen?".
    pub fn record_refusal(
        &self,
        kind: TxnKind,
        summary: String,
        files: Vec<FileRecord>,
        reason: String,
        now_ms: u64,
    ) -> Result<TxId> {
        let rec = TxnRecord {
            id: 0,
            kind,
            created_ms: now_ms,
            updated_ms: now_ms,
            summary,
            files,
            gate: GateSpec::default(),
            audit: AuditSpec::default(),
            deadline_ms: now_ms,
            state: State::Prepared,
            rollback_cause: None,
            reason: None,
        };
        let id = self.prepare(rec, &[], now_ms)?;
        self.set_state(
            id,
            State::Aborted,
            Some(format!("refused: {reason}")),
            None,
            Durable::Yes,
            now_ms,
        )?;
        Ok(id)
    }

    /// Commit every queued progress record now.
    pub fn sync(&self) -> Result<()> {
        self.write(|_| Ok(()))
    }

    pub fn get(&self, id: TxId) -> Result<TxnRecord> {
        let rt = self.begin_read()?;
        let t = rt.open_table(TXNS)?;
        match t.get(id)? {
            Some(g) => Ok(decode(g.value())?),
            None => Err(JournalError::NotFound(id)),
        }
    }

    pub fn events(&self, id: TxId) -> Result<Vec<Event>> {
        let rt = self.begin_read()?;
        let t = rt.open_table(EVENTS)?;
        let mut out = Vec::new();
        for item in t.range((id, 0)..=(id, u32::MAX))? {
            let (_, v) = item?;
            out.push(decode(v.value())?);
        }
        Ok(out)
    }

    /// Ids of the transactions that are not terminal, oldest first. O(open).
    pub fn open_ids(&self) -> Result<Vec<TxId>> {
        let rt = self.begin_read()?;
        let t = rt.open_table(OPEN)?;
        let mut out = Vec::new();
        for item in t.iter()? {
            out.push(item?.0.value());
        }
        Ok(out)
    }

    /// NeedsManual transactions the operator has not resolved, oldest first.
    pub fn unresolved(&self) -> Result<Vec<TxId>> {
        let rt = self.begin_read()?;
        let t = match rt.open_table(ATTENTION) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::new();
        for item in t.iter()? {
            out.push(item?.0.value());
        }
        Ok(out)
    }

    /// The operator has dealt with NeedsManual transaction `id` (restored its files, or
    /// accepted them as they are): its files may be changed again. Durable.
    pub fn resolve(&self, id: TxId, note: Option<String>, now_ms: u64) -> Result<()> {
        self.write(|tx| {
            let state = match tx.open_table(TXNS)?.get(id)? {
                Some(g) => decode::<TxnRecord>(g.value())?.state,
                None => return Err(JournalError::NotFound(id)),
            };
            let was = tx.open_table(ATTENTION)?.remove(id)?.is_some();
            if !was {
                return Err(JournalError::NotUnresolved { id, state });
            }
            let ev = Event {
                time_ms: now_ms,
                kind: EventKind::Resolved { note },
            };
            Self::append_events(tx, id, std::slice::from_ref(&ev))
        })
    }

    /// Newest first, at most `limit`, optionally only those in `state`.
    pub fn list(&self, limit: usize, state: Option<State>) -> Result<Vec<TxnRecord>> {
        let rt = self.begin_read()?;
        let t = rt.open_table(TXNS)?;
        let mut out = Vec::new();
        for item in t.iter()?.rev() {
            if out.len() >= limit {
                break;
            }
            let (_, v) = item?;
            let rec: TxnRecord = decode(v.value())?;
            if state.is_none_or(|s| s == rec.state) {
                out.push(rec);
            }
        }
        Ok(out)
    }

    /// Number of transactions in the journal.
    pub fn len(&self) -> Result<u64> {
        let rt = self.begin_read()?;
        Ok(rt.open_table(TXNS)?.len()?)
    }

    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// A blob's contents, re-hashed: a corrupt blob is an error, never returned.
    pub fn blob(&self, hash: &[u8; 32]) -> Result<Vec<u8>> {
        let rt = self.begin_read()?;
        let t = rt.open_table(BLOBS)?;
        let bytes = match t.get(hash)? {
            Some(g) => g.value().to_vec(),
            None => return Err(JournalError::MissingBlob { hash: hex(hash) }),
        };
        let actual = crate::durable::hash(&bytes);
        if &actual != hash {
            return Err(JournalError::CorruptBlob {
                hash: hex(hash),
                actual: hex(&actual),
            });
        }
        Ok(bytes)
    }

    /// Check redb's integrity, re-hash every blob, and check that every transaction's state,
    /// events and open-index entry agree. Needs a writable handle (redb's check may repair).
    pub fn verify(&mut self) -> Result<Vec<Fault>> {
        let mut faults = Vec::new();
        if let Db::Rw(db) = &mut self.db {
            match db.check_integrity() {
                Ok(true) => {}
                Ok(false) => faults.push(Fault {
                    txid: None,
                    what: "redb integrity check failed (the database was repaired)".into(),
                }),
                Err(e) => faults.push(Fault {
                    txid: None,
                    what: format!("redb integrity check: {e}"),
                }),
            }
        }
        let rt = self.begin_read()?;
        let blobs = rt.open_table(BLOBS)?;
        let mut present = HashSet::new();
        for item in blobs.iter()? {
            let (k, v) = item?;
            let key = *k.value();
            let actual = crate::durable::hash(v.value());
            if actual != key {
                faults.push(Fault {
                    txid: None,
                    what: format!("blob {} hashes to {}", hex(&key), hex(&actual)),
                });
            }
            present.insert(key);
        }
        let open = rt.open_table(OPEN)?;
        let mut open_ids = HashSet::new();
        for item in open.iter()? {
            open_ids.insert(item?.0.value());
        }
        let txns = rt.open_table(TXNS)?;
        let events = rt.open_table(EVENTS)?;
        let mut seen = HashSet::new();
        for item in txns.iter()? {
            let (k, v) = item?;
            let id = k.value();
            seen.insert(id);
            let rec: TxnRecord = match decode(v.value()) {
                Ok(r) => r,
                Err(e) => {
                    faults.push(Fault {
                        txid: Some(id),
                        what: format!("record does not decode: {e}"),
                    });
                    continue;
                }
            };
            if rec.id != id {
                faults.push(Fault {
                    txid: Some(id),
                    what: format!("record says it is transaction {}", rec.id),
                });
            }
            if rec.state.is_terminal() == open_ids.contains(&id) {
                faults.push(Fault {
                    txid: Some(id),
                    what: format!(
                        "state {} but {} the open index",
                        rec.state,
                        if open_ids.contains(&id) {
                            "in"
                        } else {
                            "missing from"
                        }
                    ),
                });
            }
            for f in &rec.files {
                for img in [&f.before, &f.after].into_iter().flatten() {
                    if !present.contains(&img.hash) {
                        faults.push(Fault {
                            txid: Some(id),
                            what: format!("{}: blob {} missing", f.path, hex(&img.hash)),
                        });
                    }
                }
            }
            // Replay the state events: each must be a legal transition, ending at the record's.
            let mut state: Option<State> = None;
            let mut expected_seq = 0u32;
            for item in events.range((id, 0)..=(id, u32::MAX))? {
                let (k, v) = item?;
                let seq = k.value().1;
                if seq != expected_seq {
                    faults.push(Fault {
                        txid: Some(id),
                        what: format!("event {expected_seq} missing (next is {seq})"),
                    });
                }
                expected_seq = seq + 1;
                let ev: Event = match decode(v.value()) {
                    Ok(e) => e,
                    Err(e) => {
                        faults.push(Fault {
                            txid: Some(id),
                            what: format!("event {seq} does not decode: {e}"),
                        });
                        continue;
                    }
                };
                if let EventKind::State { state: s, .. } = ev.kind {
                    let ok = match state {
                        None => s == State::Prepared,
                        Some(prev) => prev.may_go_to(s),
                    };
                    if !ok {
                        faults.push(Fault {
                            txid: Some(id),
                            what: format!(
                                "illegal transition {} -> {s}",
                                state.map(|p| p.name()).unwrap_or("(none)")
                            ),
                        });
                    }
                    state = Some(s);
                }
            }
            if state != Some(rec.state) {
                faults.push(Fault {
                    txid: Some(id),
                    what: format!(
                        "events end in {} but the record says {}",
                        state.map(|p| p.name()).unwrap_or("(none)"),
                        rec.state
                    ),
                });
            }
        }
        for id in open_ids.difference(&seen) {
            faults.push(Fault {
                txid: Some(*id),
                what: "in the open index but not in the journal".into(),
            });
        }
        drop((txns, events));
        for id in self.unresolved()? {
            let state = match self.get(id) {
                Ok(r) => Some(r.state),
                Err(JournalError::NotFound(_)) => None,
                Err(e) => return Err(e),
            };
            if state != Some(State::NeedsManual) {
                faults.push(Fault {
                    txid: Some(id),
                    what: format!(
                        "listed as an unresolved needs-manual transaction but {}",
                        state.map_or("not in the journal".into(), |s| format!("is {s}"))
                    ),
                });
            }
        }
        Ok(faults)
    }

    /// Delete all but the newest `keep` terminal transactions (open ones are always kept),
    /// then every blob no remaining transaction references. Returns (transactions, blobs)
    /// removed.
    pub fn prune(&self, keep: usize) -> Result<(usize, usize)> {
        failpoint::hit("journal.prune.before");
        let r = self.write(|tx| {
            let attention: HashSet<TxId> = {
                let t = tx.open_table(ATTENTION)?;
                let ids = t
                    .iter()?
                    .map(|r| r.map(|(k, _)| k.value()))
                    .collect::<Result<_, _>>()?;
                ids
            };
            let mut txns = tx.open_table(TXNS)?;
            let mut events = tx.open_table(EVENTS)?;
            let mut doomed = Vec::new();
            let mut kept_terminal = 0usize;
            let mut referenced: HashSet<[u8; 32]> = HashSet::new();
            for item in txns.iter()?.rev() {
                let (k, v) = item?;
                let rec: TxnRecord = decode(v.value())?;
                // An unresolved NeedsManual transaction says what to restore: never pruned.
                let drop_it = rec.state.is_terminal() && !attention.contains(&rec.id) && {
                    kept_terminal += 1;
                    kept_terminal > keep
                };
                if drop_it {
                    doomed.push(k.value());
                } else {
                    for f in &rec.files {
                        for img in [&f.before, &f.after].into_iter().flatten() {
                            referenced.insert(img.hash);
                        }
                    }
                }
            }
            for id in &doomed {
                txns.remove(*id)?;
                let keys: Vec<(u64, u32)> = events
                    .range((*id, 0)..=(*id, u32::MAX))?
                    .map(|r| r.map(|(k, _)| k.value()))
                    .collect::<Result<_, _>>()?;
                for key in keys {
                    events.remove(key)?;
                }
            }
            let mut blobs = tx.open_table(BLOBS)?;
            let unreferenced: Vec<[u8; 32]> = blobs
                .iter()?
                .map(|r| r.map(|(k, _)| *k.value()))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .filter(|h| !referenced.contains(h))
                .collect();
            for h in &unreferenced {
                blobs.remove(h)?;
            }
            Ok((doomed.len(), unreferenced.len()))
        })?;
        failpoint::hit("journal.prune.after");
        Ok(r)
    }
}

#[cold]
fn unreachable_ro() -> ! {
    // A read-only handle is only created by `open_read_only`, whose callers only read; a
    // write through it is a programming error, not a runtime condition.
    panic!("kharden bug: write through a read-only journal handle")
}

/// The failpoint name before/after recording `state`.
fn state_point(state: State, before: bool) -> &'static str {
    use State::*;
    match (state, before) {
        (Prepared, true) => "journal.state.prepared.before",
        (Prepared, false) => "journal.state.prepared.after",
        (Applied, true) => "journal.state.applied.before",
        (Applied, false) => "journal.state.applied.after",
        (Gating, true) => "journal.state.gating.before",
        (Gating, false) => "journal.state.gating.after",
        (Auditing, true) => "journal.state.auditing.before",
        (Auditing, false) => "journal.state.auditing.after",
        (Audited, true) => "journal.state.audited.before",
        (Audited, false) => "journal.state.audited.after",
        (Committed, true) => "journal.state.committed.before",
        (Committed, false) => "journal.state.committed.after",
        (RollingBack, true) => "journal.state.rolling-back.before",
        (RollingBack, false) => "journal.state.rolling-back.after",
        (RolledBack, true) => "journal.state.rolled-back.before",
        (RolledBack, false) => "journal.state.rolled-back.after",
        (NeedsManual, true) => "journal.state.needs-manual.before",
        (NeedsManual, false) => "journal.state.needs-manual.after",
        (Aborted, true) => "journal.state.aborted.before",
        (Aborted, false) => "journal.state.aborted.after",
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
impl Journal {
    pub(crate) fn verify_for_tests(&self) -> Vec<Fault> {
        // `verify` needs `&mut` for redb's integrity check; the rest is read-only.
        let mut faults = Vec::new();
        let rt = match self.begin_read() {
            Ok(r) => r,
            Err(e) => {
                return vec![Fault {
                    txid: None,
                    what: e.to_string(),
                }]
            }
        };
        let _ = rt;
        for id in self.open_ids().unwrap_or_default() {
            faults.push(Fault {
                txid: Some(id),
                what: "open".into(),
            });
        }
        faults
    }
}
