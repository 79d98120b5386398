//! `kharden journal prune`: drop old finished transactions and the blobs nobody references.
//!
//! Open transactions and unresolved needs-manual ones are always kept: the first are what
//! recovery works from, the second say what a person must restore.

use super::schema::decode;
use super::store::{Journal, ATTENTION, BLOBS, EVENTS, TXNS};
use super::{Result, TxId, TxnRecord};
use crate::failpoint;
use redb::ReadableTable;
use std::collections::HashSet;

impl Journal {
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
                        referenced.extend(f.blob_hashes().copied());
                    }
                    // What a conflict found (a hand edit kept before anything could happen
                    // to it) lives as long as its transaction.
                    for item in events.range((rec.id, 0)..=(rec.id, u32::MAX))? {
                        let (_, v) = item?;
                        let ev: super::Event = decode(v.value())?;
                        if let super::EventKind::Conflict { found: Some(h), .. } = ev.kind {
                            referenced.insert(h);
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
