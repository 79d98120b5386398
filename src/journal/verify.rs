//! `kharden journal verify`: redb's integrity check, every blob re-hashed, every
//! transaction's events replayed through the state machine, the indexes checked against the
//! records.

use super::schema::decode;
use super::store::{Journal, BLOBS, EVENTS, OPEN, TXNS};
use super::{hex, Event, EventKind, JournalError, JournalRead, Result, State, TxId, TxnRecord};
use redb::ReadableTable;
use std::collections::HashSet;

/// A fault found by [`Journal::verify`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Fault {
    pub txid: Option<TxId>,
    pub what: String,
}

fn fault(txid: Option<TxId>, what: impl Into<String>) -> Fault {
    Fault {
        txid,
        what: what.into(),
    }
}

impl Journal {
    /// Check redb's integrity, re-hash every blob, and check that every transaction's state,
    /// events and open-index entry agree. Needs a writable handle (redb's check may repair).
    pub fn verify(&mut self) -> Result<Vec<Fault>> {
        let mut faults = Vec::new();
        match self.check_integrity() {
            Ok(true) => {}
            Ok(false) => faults.push(fault(
                None,
                "redb integrity check failed (the database was repaired)",
            )),
            Err(e) => faults.push(fault(None, format!("redb integrity check: {e}"))),
        }
        let mut present = HashSet::new();
        let mut open_ids = HashSet::new();
        let mut seen = HashSet::new();
        self.read(|rt| {
            for item in rt.open_table(BLOBS)?.iter()? {
                let (k, v) = item?;
                let key = *k.value();
                let actual = crate::durable::hash(v.value());
                if actual != key {
                    faults.push(fault(
                        None,
                        format!("blob {} hashes to {}", hex(&key), hex(&actual)),
                    ));
                }
                present.insert(key);
            }
            for item in rt.open_table(OPEN)?.iter()? {
                open_ids.insert(item?.0.value());
            }
            let events = rt.open_table(EVENTS)?;
            for item in rt.open_table(TXNS)?.iter()? {
                let (k, v) = item?;
                let id = k.value();
                seen.insert(id);
                let rec: TxnRecord = match decode(v.value()) {
                    Ok(r) => r,
                    Err(e) => {
                        faults.push(fault(Some(id), format!("record does not decode: {e}")));
                        continue;
                    }
                };
                check_record(&rec, id, &open_ids, &present, &mut faults);
                let mut evs = Vec::new();
                for item in events.range((id, 0)..=(id, u32::MAX))? {
                    let (k, v) = item?;
                    let seq = k.value().1;
                    match decode::<Event>(v.value()) {
                        Ok(e) => evs.push((seq, Some(e))),
                        Err(e) => {
                            faults
                                .push(fault(Some(id), format!("event {seq} does not decode: {e}")));
                            evs.push((seq, None));
                        }
                    }
                }
                replay(&rec, id, &evs, &mut faults);
            }
            Ok(())
        })?;
        for id in open_ids.difference(&seen) {
            faults.push(fault(Some(*id), "in the open index but not in the journal"));
        }
        for id in self.unresolved()? {
            let state = match self.get(id) {
                Ok(r) => Some(r.state),
                Err(JournalError::NotFound(_)) => None,
                Err(e) => return Err(e),
            };
            if state != Some(State::NeedsManual) {
                faults.push(fault(
                    Some(id),
                    format!(
                        "listed as an unresolved needs-manual transaction but {}",
                        state.map_or("not in the journal".into(), |s| format!("is {s}"))
                    ),
                ));
            }
        }
        Ok(faults)
    }
}

/// The record against the indexes and the blob table.
fn check_record(
    rec: &TxnRecord,
    id: TxId,
    open_ids: &HashSet<TxId>,
    present: &HashSet<[u8; 32]>,
    faults: &mut Vec<Fault>,
) {
    if rec.id != id {
        faults.push(fault(
            Some(id),
            format!("record says it is transaction {}", rec.id),
        ));
    }
    if rec.state.is_terminal() == open_ids.contains(&id) {
        faults.push(fault(
            Some(id),
            format!(
                "state {} but {} the open index",
                rec.state,
                if open_ids.contains(&id) {
                    "in"
                } else {
                    "missing from"
                }
            ),
        ));
    }
    for f in &rec.files {
        for h in f.blob_hashes() {
            if !present.contains(h) {
                faults.push(fault(
                    Some(id),
                    format!("{}: blob {} missing", f.path, hex(h)),
                ));
            }
        }
    }
}

/// Replay the state events: each must be a legal transition, ending at the record's state,
/// with no gap in the sequence numbers.
fn replay(rec: &TxnRecord, id: TxId, events: &[(u32, Option<Event>)], faults: &mut Vec<Fault>) {
    let mut state: Option<State> = None;
    let mut expected_seq = 0u32;
    for (seq, ev) in events {
        if *seq != expected_seq {
            faults.push(fault(
                Some(id),
                format!("event {expected_seq} missing (next is {seq})"),
            ));
        }
        expected_seq = seq.saturating_add(1);
        let Some(Event {
            kind: EventKind::State { state: s, .. },
            ..
        }) = ev
        else {
            continue;
        };
        let ok = match state {
            None => *s == State::Prepared,
            Some(prev) => prev.may_go_to(*s),
        };
        if !ok {
            faults.push(fault(
                Some(id),
                format!(
                    "illegal transition {} -> {s}",
                    state.map(|p| p.name()).unwrap_or("(none)")
                ),
            ));
        }
        state = Some(*s);
    }
    if state != Some(rec.state) {
        faults.push(fault(
            Some(id),
            format!(
                "events end in {} but the record says {}",
                state.map(|p| p.name()).unwrap_or("(none)"),
                rec.state
            ),
        ));
    }
}
