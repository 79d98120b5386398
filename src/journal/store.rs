//! Opening, creating and checking the database; batching progress records into durable
//! commits; keeping redb's panics away from the user.
//!
//! - **Creation is atomic.** A journal is built under a dot-temp name in the state directory
//!   (tables and meta written, committed durably, the file fsync'd), renamed to
//!   `journal.redb`, and the directory fsync'd; then [`MARKER_FILE`] is written. A kill or a
//!   power cut during creation leaves either no journal (and a temp file the next creation
//!   removes) or a complete one, never a file redb cannot open.
//! - **Inspection never creates.** [`JournalReader::open`] and [`Journal::open_existing`] only
//!   open what is there; a journal that the marker says existed and is gone is a fault
//!   ([`JournalError::Missing`]), never a reason to start afresh (that would forget an open
//!   transaction).
//! - **Who may write it.** The database must be a regular file (not a symlink), owned by the
//!   user kharden runs as (root on a node), with no group or other permission bits: whoever
//!   can write the journal decides what recovery restores.
//! - **No panic escapes.** redb may panic on a damaged file. Every call into redb runs under
//!   [`shielded`], which turns a panic into [`JournalError::Corrupt`]; the CLI's panic hook
//!   keeps the message off the terminal.

use super::log::JournalRead;
use super::state_dir::{self, check_state_dir, prepare_state_dir};
use super::{JournalError, Result, DB_FILE, MARKER_FILE, SCHEMA_VERSION};
use redb::{
    Builder, ConcurrencyMode, Database, Durability, ReadOnlyDatabase, ReadTransaction,
    ReadableDatabase, ReadableTable, StorageBackend, TableDefinition, WriteTransaction,
};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub(super) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
pub(super) const TXNS: TableDefinition<u64, &[u8]> = TableDefinition::new("txns");
pub(super) const EVENTS: TableDefinition<(u64, u32), &[u8]> = TableDefinition::new("events");
pub(super) const OPEN: TableDefinition<u64, ()> = TableDefinition::new("open");
pub(super) const BLOBS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("blobs");
/// NeedsManual transactions the operator has not resolved yet (`kharden journal resolve`):
/// no new transaction may touch their files. Created on first use, so journals made before it
/// existed open unchanged (a missing table reads as empty).
pub(super) const ATTENTION: TableDefinition<u64, ()> = TableDefinition::new("attention");

pub(super) const KEY_SCHEMA: &str = "schema_version";
pub(super) const KEY_NEXT_TXID: &str = "next_txid";

/// How old queued progress records may get before they are committed anyway.
pub const FLUSH_EVERY: Duration = Duration::from_secs(2);

/// Run `f` (which calls into redb) and turn a panic into [`JournalError::Corrupt`].
pub(super) fn shielded<R>(what: &Path, f: impl FnOnce() -> Result<R>) -> Result<R> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let detail = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "redb panicked".into());
            Err(JournalError::Corrupt {
                path: what.display().to_string(),
                detail,
            })
        }
    }
}

/// Map an error redb gave while opening an existing file: a file that is not a database, or
/// is cut short, is damaged.
fn opened(path: &Path, e: redb::DatabaseError) -> JournalError {
    let corrupt = |detail: String| JournalError::Corrupt {
        path: path.display().to_string(),
        detail,
    };
    match e {
        redb::DatabaseError::Storage(redb::StorageError::Corrupted(d)) => corrupt(d),
        redb::DatabaseError::Storage(redb::StorageError::Io(io))
            if matches!(
                io.kind(),
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::InvalidData
            ) =>
        {
            corrupt(io.to_string())
        }
        redb::DatabaseError::UpgradeRequired(v) => {
            corrupt(format!("written by an unsupported redb file format {v}"))
        }
        other => other.into(),
    }
}

fn builder() -> Builder {
    let mut b = Builder::new();
    // One writer (the lock holder), any number of read-only inspectors alongside it.
    b.set_concurrency_mode(ConcurrencyMode::SingleWriter);
    b
}

/// What a journal file must be before kharden trusts it (see the module docs).
fn check_db_file(path: &Path) -> Result<()> {
    let md = std::fs::symlink_metadata(path).map_err(|source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let refuse = |why: String| {
        Err(JournalError::StateDir(state_dir::StateDirError::Journal {
            path: path.to_path_buf(),
            why,
        }))
    };
    if md.file_type().is_symlink() {
        return refuse("is a symbolic link; kharden only uses a regular file it owns".into());
    }
    if !md.is_file() {
        return refuse("is not a regular file".into());
    }
    let me = nix::unistd::geteuid().as_raw();
    if md.uid() != me {
        return refuse(format!(
            "is owned by uid {}, not by uid {me} that kharden runs as; run: chown {me} {}",
            md.uid(),
            path.display()
        ));
    }
    let mode = md.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return refuse(format!(
            "is accessible by group or others (mode {mode:04o}); run: chmod 0600 {}",
            path.display()
        ));
    }
    if md.len() == 0 {
        return Err(JournalError::Corrupt {
            path: path.display().to_string(),
            detail: "it is empty (zero bytes): not a journal kharden created".into(),
        });
    }
    Ok(())
}

/// `Ok(true)` when the journal exists; `Ok(false)` when it never did; an error when it is
/// missing although [`MARKER_FILE`] says it was created.
fn exists(state_dir: &Path) -> Result<bool> {
    let path = state_dir.join(DB_FILE);
    match std::fs::symlink_metadata(&path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let marker = state_dir.join(MARKER_FILE);
            if marker.exists() {
                Err(JournalError::Missing {
                    path: path.display().to_string(),
                    marker: marker.display().to_string(),
                })
            } else {
                Ok(false)
            }
        }
        Err(source) => Err(JournalError::Io { path, source }),
    }
}

/// Progress records not yet committed (see [`super::Durable::Later`]).
#[derive(Default)]
pub(super) struct Pending {
    pub(super) ops: Vec<PendingOp>,
    since: Option<Instant>,
}

pub(super) enum PendingOp {
    Transition {
        id: super::TxId,
        t: super::Transition,
        now_ms: u64,
    },
    Events {
        id: super::TxId,
        events: Vec<super::Event>,
    },
}

fn lock_pending(m: &Mutex<Pending>) -> std::sync::MutexGuard<'_, Pending> {
    // A poisoned queue only means a panic elsewhere; the records in it are still valid.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The writable journal. Its holder holds the state directory's lock (see [`crate::lock`]).
pub struct Journal {
    db: Database,
    path: PathBuf,
    pending: Mutex<Pending>,
}

/// A read-only journal handle, for inspection alongside a running kharden. It has no
/// method that writes.
pub struct JournalReader {
    db: ReadOnlyDatabase,
    path: PathBuf,
}

impl JournalRead for Journal {
    fn begin_read_txn(&self) -> Result<ReadTransaction> {
        shielded(&self.path, || Ok(self.db.begin_read()?))
    }
    fn location(&self) -> &Path {
        &self.path
    }
}

impl JournalRead for JournalReader {
    fn begin_read_txn(&self) -> Result<ReadTransaction> {
        shielded(&self.path, || Ok(self.db.begin_read()?))
    }
    fn location(&self) -> &Path {
        &self.path
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        if !lock_pending(&self.pending).ops.is_empty() {
            if let Err(e) = self.write(|_| Ok(())) {
                tracing::warn!("journal: could not commit progress records at exit: {e}");
            }
        }
    }
}

fn check_schema(rt: &ReadTransaction) -> Result<()> {
    let meta = match rt.open_table(META) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => {
            return Err(JournalError::Corrupt {
                path: String::new(),
                detail: "it has no meta table: not a journal kharden created".into(),
            })
        }
        Err(e) => return Err(e.into()),
    };
    match meta.get(KEY_SCHEMA)?.map(|g| g.value()) {
        Some(SCHEMA_VERSION) => Ok(()),
        Some(found) => Err(JournalError::Schema { found }),
        None => Err(JournalError::Corrupt {
            path: String::new(),
            detail: "its meta table has no schema version".into(),
        }),
    }
}

/// Name the file in a [`JournalError::Corrupt`] raised without one.
fn at(path: &Path, e: JournalError) -> JournalError {
    match e {
        JournalError::Corrupt { path: p, detail } if p.is_empty() => JournalError::Corrupt {
            path: path.display().to_string(),
            detail,
        },
        other => other,
    }
}

impl Journal {
    /// Open the journal in `state_dir` for writing, creating the state directory and the
    /// journal (atomically) when neither exists yet. The caller holds the lock. Commands that
    /// change files use this; inspection uses [`JournalReader::open`].
    pub fn open(state_dir: &Path) -> Result<Journal> {
        prepare_state_dir(state_dir)?;
        if !exists(state_dir)? {
            create(state_dir)?;
        }
        Self::open_checked(state_dir)
    }

    /// Open an existing journal for writing (`journal verify`, `journal prune`, `journal
    /// resolve`): `Ok(None)` when there has never been one here; never creates.
    pub fn open_existing(state_dir: &Path) -> Result<Option<Journal>> {
        if !state_dir.exists() {
            return Ok(None);
        }
        check_state_dir(state_dir)?;
        if !exists(state_dir)? {
            return Ok(None);
        }
        Self::open_checked(state_dir).map(Some)
    }

    fn open_checked(state_dir: &Path) -> Result<Journal> {
        let path = state_dir.join(DB_FILE);
        check_db_file(&path)?;
        let db = shielded(&path, || {
            builder().open(&path).map_err(|e| opened(&path, e))
        })?;
        let j = Journal {
            db,
            path: path.clone(),
            pending: Mutex::new(Pending::default()),
        };
        shielded(&path, || check_schema(&j.db.begin_read()?)).map_err(|e| at(&path, e))?;
        Ok(j)
    }

    /// Open a journal on another storage backend (the power-loss simulation), creating its
    /// tables when the backend is empty. The journal runs redb in
    /// `ConcurrencyMode::SingleWriter`, so the backend must grant redb's byte-range locks.
    pub fn with_backend(backend: impl StorageBackend) -> Result<Journal> {
        let path = PathBuf::from("(simulated)");
        let db = shielded(&path, || Ok(builder().create_with_backend(backend)?))?;
        let j = Journal {
            db,
            path,
            pending: Mutex::new(Pending::default()),
        };
        j.write(init_tables)?;
        Ok(j)
    }

    /// One durable redb commit: the queued progress records first, then `f`'s writes.
    pub(super) fn write<R>(&self, f: impl FnOnce(&WriteTransaction) -> Result<R>) -> Result<R> {
        shielded(&self.path, || {
            let mut tx = self.db.begin_write()?;
            tx.set_durability(Durability::Immediate)?;
            let ops = std::mem::take(&mut *lock_pending(&self.pending));
            for op in &ops.ops {
                match op {
                    PendingOp::Transition { id, t, now_ms } => {
                        super::log::apply_transition(&tx, *id, t, *now_ms)?
                    }
                    PendingOp::Events { id, events } => {
                        super::log::append_events(&tx, *id, events)?
                    }
                }
            }
            let r = f(&tx)?;
            tx.commit()?;
            Ok(r)
        })
    }

    /// Queue a progress record for the next durable commit; flush when the queue is older
    /// than [`FLUSH_EVERY`] so that inspectors see a gate's progress.
    pub(super) fn queue(&self, op: PendingOp) -> Result<()> {
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

    /// redb's own integrity check (may repair the file in place).
    pub(super) fn check_integrity(&mut self) -> Result<bool> {
        let path = self.path.clone();
        shielded(&path, || Ok(self.db.check_integrity()?))
    }
}

impl JournalReader {
    /// Open an existing journal read-only. `Ok(None)` when there has never been one here;
    /// never creates anything.
    pub fn open(state_dir: &Path) -> Result<Option<JournalReader>> {
        if !state_dir.exists() {
            return Ok(None);
        }
        check_state_dir(state_dir)?;
        if !exists(state_dir)? {
            return Ok(None);
        }
        let path = state_dir.join(DB_FILE);
        check_db_file(&path)?;
        let db = shielded(&path, || {
            builder()
                .open_read_only(&path)
                .map_err(|e| opened(&path, e))
        })?;
        let r = JournalReader { db, path };
        shielded(&r.path, || check_schema(&r.db.begin_read()?)).map_err(|e| at(&r.path, e))?;
        Ok(Some(r))
    }
}

/// The tables and meta of a new journal.
fn init_tables(tx: &WriteTransaction) -> Result<()> {
    let mut meta = tx.open_table(META)?;
    if meta.get(KEY_SCHEMA)?.is_none() {
        meta.insert(KEY_SCHEMA, SCHEMA_VERSION)?;
        meta.insert(KEY_NEXT_TXID, 1)?;
    }
    tx.open_table(TXNS)?;
    tx.open_table(EVENTS)?;
    tx.open_table(OPEN)?;
    tx.open_table(BLOBS)?;
    tx.open_table(ATTENTION)?;
    Ok(())
}

/// The temp name a journal is built under (one per creating process).
fn temp_name() -> String {
    format!(".{DB_FILE}.creating-{}", std::process::id())
}

/// Build a new journal atomically (see the module docs). The caller holds the lock.
fn create(state_dir: &Path) -> Result<()> {
    crate::failpoint::hit("journal.create.before");
    // Leftovers of a creation that was killed: ours by name, never holding anything.
    let prefix = format!(".{DB_FILE}.creating-");
    if let Ok(entries) = std::fs::read_dir(state_dir) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                state_dir::remove(&e.path())?;
            }
        }
    }
    let temp = state_dir.join(temp_name());
    let path = state_dir.join(DB_FILE);
    state_dir::create_db_file(&temp)?;
    {
        let db = shielded(&temp, || Ok(builder().create(&temp)?))?;
        shielded(&temp, || {
            let mut tx = db.begin_write()?;
            tx.set_durability(Durability::Immediate)?;
            init_tables(&tx)?;
            tx.commit()?;
            Ok(())
        })?;
        // Dropping the database closes it cleanly (redb writes and syncs its header).
    }
    state_dir::fsync_file(&temp)?;
    crate::failpoint::hit("journal.create.built");
    state_dir::rename(&temp, &path)?;
    crate::failpoint::hit("journal.create.renamed");
    state_dir::write_marker(&state_dir.join(MARKER_FILE))?;
    state_dir::fsync_dir(state_dir)?;
    crate::failpoint::hit("journal.create.after");
    Ok(())
}

/// A handle for inspection: read-only whenever redb allows it; after a crash, when redb must
/// repair the file first (which a read-only open cannot), a writer opened under the lock by
/// the caller, used only to read.
pub enum Inspector {
    ReadOnly(JournalReader),
    Repaired(Journal),
}

impl JournalRead for Inspector {
    fn begin_read_txn(&self) -> Result<ReadTransaction> {
        match self {
            Inspector::ReadOnly(r) => r.begin_read_txn(),
            Inspector::Repaired(j) => j.begin_read_txn(),
        }
    }
    fn location(&self) -> &Path {
        match self {
            Inspector::ReadOnly(r) => r.location(),
            Inspector::Repaired(j) => j.location(),
        }
    }
}
