//! The transaction log: recording a transaction (prepare), its state transitions and events,
//! refusals and resolutions, and reading all of it back.
//!
//! Writes take a [`Transition`] value (the state, the reason, the rollback cause, the
//! durability) rather than a list of positional arguments; every transition is checked
//! against DESIGN.md's diagram ([`State::may_go_to`]) inside the redb transaction that
//! records it, and recorded as a state event beside the record.

use super::schema::{decode, encode};
use super::store::{Journal, PendingOp, ATTENTION, BLOBS, EVENTS, KEY_NEXT_TXID, META, OPEN, TXNS};
use super::{
    hex, AuditSpec, Durable, Event, EventKind, FileRecord, GateSpec, JournalError, Result,
    RollbackCause, State, TxId, TxnKind, TxnRecord,
};
use crate::failpoint;
use redb::{ReadTransaction, ReadableTable, ReadableTableMetadata, WriteTransaction};
use std::path::Path;

/// A move of a transaction to another state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub to: State,
    /// Why (recorded on the transaction and in the state event).
    pub reason: Option<String>,
    /// Why a rollback started (recorded on the transaction).
    pub cause: Option<RollbackCause>,
    pub durable: Durable,
}

impl Transition {
    /// A durable move to `state`, with no reason.
    pub fn to(state: State) -> Transition {
        Transition {
            to: state,
            reason: None,
            cause: None,
            durable: Durable::Yes,
        }
    }

    pub fn because(mut self, reason: impl Into<String>) -> Transition {
        self.reason = Some(reason.into());
        self
    }

    pub fn cause(mut self, cause: RollbackCause) -> Transition {
        self.cause = Some(cause);
        self
    }

    /// Queued with the next durable record instead (progress states only).
    pub fn later(mut self) -> Transition {
        self.durable = Durable::Later;
        self
    }

    pub fn durability(mut self, durable: Durable) -> Transition {
        self.durable = durable;
        self
    }
}

fn next_seq(tx: &WriteTransaction, id: TxId) -> Result<u32> {
    let t = tx.open_table(EVENTS)?;
    let last = t.range((id, 0)..=(id, u32::MAX))?.next_back().transpose()?;
    Ok(last.map(|(k, _)| k.value().1 + 1).unwrap_or(0))
}

pub(super) fn append_events(tx: &WriteTransaction, id: TxId, events: &[Event]) -> Result<()> {
    let first = next_seq(tx, id)?;
    let mut t = tx.open_table(EVENTS)?;
    for (seq, ev) in (first..).zip(events) {
        t.insert((id, seq), encode(ev)?.as_slice())?;
    }
    Ok(())
}

pub(super) fn apply_transition(
    tx: &WriteTransaction,
    id: TxId,
    t: &Transition,
    now_ms: u64,
) -> Result<()> {
    {
        let mut txns = tx.open_table(TXNS)?;
        let mut rec: TxnRecord = match txns.get(id)? {
            Some(g) => decode(g.value())?,
            None => return Err(JournalError::NotFound(id)),
        };
        if !rec.state.may_go_to(t.to) {
            return Err(JournalError::BadTransition {
                id,
                from: rec.state,
                to: t.to,
            });
        }
        rec.state = t.to;
        rec.updated_ms = now_ms;
        if t.reason.is_some() {
            rec.reason = t.reason.clone();
        }
        if t.cause.is_some() {
            rec.rollback_cause = t.cause;
        }
        txns.insert(id, encode(&rec)?.as_slice())?;
    }
    let ev = Event {
        time_ms: now_ms,
        kind: EventKind::State {
            state: t.to,
            note: t.reason.clone(),
        },
    };
    append_events(tx, id, std::slice::from_ref(&ev))?;
    if t.to.is_terminal() {
        tx.open_table(OPEN)?.remove(id)?;
    }
    if t.to == State::NeedsManual {
        tx.open_table(ATTENTION)?.insert(id, ())?;
    }
    Ok(())
}

impl Journal {
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
            put_blobs(tx, blobs)?;
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

    /// Keep some contents in the blob table (deduplicated), durably: a file found matching
    /// neither side of its transaction is kept before anything else happens to it.
    pub fn keep_blob(&self, contents: &[u8]) -> Result<[u8; 32]> {
        self.write(|tx| put_blobs(tx, &[contents]))?;
        Ok(crate::durable::hash(contents))
    }

    /// Move a transaction to another state and record the state event.
    pub fn transition(&self, id: TxId, t: Transition, now_ms: u64) -> Result<()> {
        failpoint::hit(state_point(t.to, true));
        let to = t.to;
        match t.durable {
            Durable::Yes => self.write(|tx| apply_transition(tx, id, &t, now_ms))?,
            Durable::Later => self.queue(PendingOp::Transition { id, t, now_ms })?,
        }
        failpoint::hit(state_point(to, false));
        Ok(())
    }

    /// Append events (probe outcomes, files written, audit output...), all at `now_ms`.
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
            Durable::Yes => self.write(|tx| append_events(tx, id, &events))?,
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
            restart: None,
            // A refusal writes no file, so it has no temp.
            temp_tag: 1,
        };
        let id = self.prepare(rec, &[], now_ms)?;
        self.transition(
            id,
            Transition::to(State::Aborted).because(format!("refused: {reason}")),
            now_ms,
        )?;
        Ok(id)
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
            append_events(tx, id, std::slice::from_ref(&ev))
        })
    }

    /// Commit every queued progress record now.
    pub fn sync(&self) -> Result<()> {
        self.write(|_| Ok(()))
    }
}

fn put_blobs(tx: &WriteTransaction, blobs: &[&[u8]]) -> Result<()> {
    let mut t = tx.open_table(BLOBS)?;
    for b in blobs {
        let h = crate::durable::hash(b);
        if t.get(&h)?.is_none() {
            t.insert(&h, *b)?;
        }
    }
    Ok(())
}

/// Reading, shared by [`Journal`] and [`super::JournalReader`].
pub trait JournalRead {
    #[doc(hidden)]
    fn begin_read_txn(&self) -> Result<ReadTransaction>;

    /// The database's path, for messages.
    fn location(&self) -> &Path;

    /// Run a read under the panic shield of `store.rs`.
    #[doc(hidden)]
    fn read<R>(&self, f: impl FnOnce(&ReadTransaction) -> Result<R>) -> Result<R> {
        let rt = self.begin_read_txn()?;
        super::store::shielded(self.location(), || f(&rt))
    }

    fn get(&self, id: TxId) -> Result<TxnRecord> {
        self.read(|rt| match rt.open_table(TXNS)?.get(id)? {
            Some(g) => Ok(decode(g.value())?),
            None => Err(JournalError::NotFound(id)),
        })
    }

    fn events(&self, id: TxId) -> Result<Vec<Event>> {
        self.read(|rt| {
            let t = rt.open_table(EVENTS)?;
            let mut out = Vec::new();
            for item in t.range((id, 0)..=(id, u32::MAX))? {
                let (_, v) = item?;
                out.push(decode(v.value())?);
            }
            Ok(out)
        })
    }

    /// Ids of the transactions that are not terminal, oldest first. O(open).
    fn open_ids(&self) -> Result<Vec<TxId>> {
        self.read(|rt| {
            let t = rt.open_table(OPEN)?;
            let mut out = Vec::new();
            for item in t.iter()? {
                out.push(item?.0.value());
            }
            Ok(out)
        })
    }

    /// NeedsManual transactions the operator has not resolved, oldest first.
    fn unresolved(&self) -> Result<Vec<TxId>> {
        self.read(|rt| {
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
        })
    }

    /// Newest first, at most `limit`, optionally only those in `state`.
    fn list(&self, limit: usize, state: Option<State>) -> Result<Vec<TxnRecord>> {
        self.read(|rt| {
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
        })
    }

    /// Number of transactions in the journal.
    fn len(&self) -> Result<u64> {
        self.read(|rt| Ok(rt.open_table(TXNS)?.len()?))
    }

    fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// A blob's contents, re-hashed: a corrupt blob is an error, never returned.
    fn blob(&self, hash: &[u8; 32]) -> Result<Vec<u8>> {
        self.read(|rt| {
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
        })
    }
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
