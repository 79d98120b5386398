//! DESIGN.md's invariants, checked on a disk after `kharden recover` ran on it.
//!
//! The oracle knows only what an operator would: the files' contents before the first
//! transaction, and the outcomes kharden *reported* before the power went off. From the
//! journal it replays every transaction in order, per file: a transaction's before-image must
//! be what the previous one left (Committed leaves after; RolledBack and Aborted leave before;
//! NeedsManual may leave either), and the disk must end where the last one left it. That one
//! chain catches a committed change that a power cut reverted, a rollback that did not stick,
//! a partial or torn file, and an edit applied without its Prepared record.

use crate::harness::{Reported, MANIFESTS};
use crate::sim::{lock, Shared, Tree};
use kharden::durable::{hash, FileMeta};
use kharden::journal::{Journal, JournalRead, State, TxnRecord};
use kharden::txn::{recover, Outcome, Policy, RecoverReport};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What the operator knows.
#[derive(Debug, Clone, Default)]
pub struct Oracle {
    /// Every managed file before the first transaction (`None`: absent).
    pub initial: BTreeMap<PathBuf, Option<(Vec<u8>, FileMeta)>>,
    /// Outcomes reported before the crash.
    pub reported: Reported,
    /// Whether injected I/O errors may have made a rollback fail (NeedsManual is then legal).
    pub faults: bool,
    /// Whether a `journal prune` may have removed transactions (the chain then starts at the
    /// oldest transaction left).
    pub pruned: bool,
}

type H = Option<[u8; 32]>;

fn side(img: &Option<kharden::journal::Image>) -> H {
    img.as_ref().map(|i| i.hash)
}

fn short(h: &H) -> String {
    match h {
        None => "absent".into(),
        Some(h) => kharden::journal::hex(h)[..8].to_string(),
    }
}

/// Every transaction in the journal, oldest first.
pub fn all_txns(j: &Journal) -> Result<Vec<TxnRecord>, String> {
    let mut v = j
        .list(usize::MAX, None)
        .map_err(|e| format!("journal list: {e}"))?;
    v.reverse();
    Ok(v)
}

/// The invariants on the disk and journal as they are now (recovery already ran).
pub fn check_state(world: &Shared, journal: &mut Journal, oracle: &Oracle) -> Vec<String> {
    let mut bad = Vec::new();
    {
        // A kubelet that runs (recovery without a power cut) runs what its files hold.
        let w = lock(world);
        if let Some(running) = &w.service {
            let files = crate::harness::kubelet_files();
            let now = w.service_files(&files);
            for ((path, ran), holds) in files.iter().zip(running).zip(&now) {
                if ran != holds {
                    let size = |c: &Option<Vec<u8>>| {
                        c.as_ref()
                            .map_or_else(|| "absent".to_string(), |c| format!("{} bytes", c.len()))
                    };
                    bad.push(format!(
                        "the kubelet runs a configuration ({}) its file {} no longer holds ({})",
                        size(ran),
                        path.display(),
                        size(holds)
                    ));
                }
            }
        }
    }
    match journal.open_ids() {
        Ok(ids) if !ids.is_empty() => {
            bad.push(format!("transactions still open after recover: {ids:?}"))
        }
        Ok(_) => {}
        Err(e) => bad.push(format!("journal open index unreadable: {e}")),
    }
    let txns = match all_txns(journal) {
        Ok(t) => t,
        Err(e) => {
            bad.push(e);
            return bad;
        }
    };
    // The chain, per file: the set of hashes it may hold now, and the set of modes and
    // owners (a contents change keeps them; a metadata change moves them like contents).
    let mut cur: BTreeMap<String, Vec<H>> = BTreeMap::new();
    let mut metas: BTreeMap<String, Vec<FileMeta>> = BTreeMap::new();
    let pruned = oracle.pruned || txns.first().is_some_and(|t| t.id > 1);
    if !pruned {
        for (p, c) in &oracle.initial {
            cur.insert(
                p.to_string_lossy().into_owned(),
                vec![c.as_ref().map(|(d, _)| hash(d))],
            );
        }
    }
    for (p, c) in &oracle.initial {
        metas.insert(
            p.to_string_lossy().into_owned(),
            vec![c.as_ref().map_or(FileMeta::NEW_FILE, |(_, m)| *m)],
        );
    }
    for t in &txns {
        for f in &t.files {
            if let (true, Some(b), Some(a)) = (f.is_metadata(), &f.before, &f.after) {
                match metas.get(&f.path) {
                    Some(allowed) if !pruned && !allowed.contains(&b.meta) => bad.push(format!(
                        "txn {} ({}): {} before-metadata {} is not what the previous transactions left",
                        t.id, t.state, f.path, b.meta
                    )),
                    _ => {}
                }
                let next = match t.state {
                    State::Committed => vec![a.meta],
                    State::RolledBack | State::Aborted => vec![b.meta],
                    _ => vec![b.meta, a.meta],
                };
                metas.insert(f.path.clone(), next);
            }
            let (b, a) = (side(&f.before), side(&f.after));
            match cur.get(&f.path) {
                Some(allowed) if !allowed.contains(&b) => bad.push(format!(
                    "txn {} ({}): {} before-image {} is not what the previous transactions left ({})",
                    t.id,
                    t.state,
                    f.path,
                    short(&b),
                    allowed.iter().map(short).collect::<Vec<_>>().join("|")
                )),
                _ => {}
            }
            let next = match t.state {
                State::Committed => vec![a],
                State::RolledBack | State::Aborted => vec![b],
                State::NeedsManual => {
                    if !oracle.faults {
                        bad.push(format!(
                            "txn {} needs manual intervention without any injected fault",
                            t.id
                        ));
                    }
                    vec![b, a]
                }
                open => {
                    bad.push(format!("txn {} is still {open}", t.id));
                    vec![b, a]
                }
            };
            cur.insert(f.path.clone(), next);
        }
    }
    // Read from the journal before taking the world: the journal's reads lock it too.
    let unresolved = journal.unresolved().unwrap_or_default();
    let w = lock(world);
    for (path, allowed) in &cur {
        let p = Path::new(path);
        let actual = w.live.file(p);
        let h = actual.map(|i| hash(&i.data));
        if !allowed.contains(&h) {
            let what = match actual {
                None => "absent".to_string(),
                Some(i) if i.data.is_empty() => "empty".to_string(),
                Some(i) => format!("{} bytes, {}", i.data.len(), short(&h)),
            };
            bad.push(format!(
                "{path}: holds {what}, expected {} (the journal's last word on it)",
                allowed.iter().map(short).collect::<Vec<_>>().join(" or ")
            ));
        }
        if let Some(i) = actual {
            let expected = metas
                .get(path)
                .cloned()
                .unwrap_or_else(|| vec![FileMeta::NEW_FILE]);
            if !expected.contains(&i.meta) {
                bad.push(format!(
                    "{path}: mode/owner {}, expected {} (the journal's last word on it)",
                    i.meta,
                    expected
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(" or ")
                ));
            }
        }
    }
    for v in check_dir_tidy(&w.live) {
        // A transaction that ended NeedsManual told the operator to restore its files by hand
        // and delete its temp files: until they have (`kharden journal resolve`), kharden no
        // longer vouches for those directories, and a dot file is inert to kubelet
        // (invariant 4). Reachable only with two faults: an I/O error during the restore, then
        // a power cut before the operator acts.
        let awaiting_operator = v
            .split(':')
            .next()
            .and_then(|name| name.rsplit(".kharden-").next())
            .and_then(|t| t.split('-').next())
            .and_then(|t| t.parse::<u64>().ok())
            .is_some_and(|id| unresolved.contains(&id));
        if !awaiting_operator {
            bad.push(v);
        }
    }
    drop(w);
    for (id, out) in &oracle.reported {
        let want = match out {
            Outcome::Committed { .. } => State::Committed,
            Outcome::RolledBack { .. } => State::RolledBack,
            Outcome::NeedsManual { .. } => State::NeedsManual,
            Outcome::Aborted { .. } => State::Aborted,
            // Left for recovery, which the check has just run: any end is fine.
            Outcome::Unchanged | Outcome::LeftOpen { .. } => continue,
        };
        match txns.iter().find(|t| t.id == *id) {
            Some(t) if t.state == want => {}
            Some(t) => bad.push(format!(
                "txn {id} was reported {want} but the journal now says {}",
                t.state
            )),
            None if pruned => {}
            None => bad.push(format!(
                "txn {id} was reported {want} but is gone from the journal"
            )),
        }
    }
    match journal.verify() {
        Ok(faults) => {
            for f in faults {
                bad.push(format!("journal verify: txn {:?}: {}", f.txid, f.what));
            }
        }
        Err(e) => bad.push(format!("journal verify failed: {e}")),
    }
    bad
}

/// No temp file left in any managed directory, and nothing but manifests in the manifests
/// directory (invariant 4, and "recovery deletes its temp files").
pub fn check_dir_tidy(tree: &Tree) -> Vec<String> {
    let mut bad = Vec::new();
    for (dir, entries) in &tree.dirs {
        if dir == Path::new(crate::sim::STATE_DIR) {
            continue;
        }
        for name in entries.keys() {
            if name.contains(".kharden-") {
                bad.push(format!(
                    "{}/{name}: temp file left after recover",
                    dir.display()
                ));
            } else if dir == Path::new(MANIFESTS)
                && !name.starts_with('.')
                && !name.ends_with(".yaml")
            {
                bad.push(format!(
                    "{MANIFESTS}/{name}: unexpected file kubelet would load"
                ));
            }
        }
    }
    bad
}

/// Run recovery (default policy), check, run it again and check that nothing changed.
/// Returns the violations found.
pub fn recover_and_check(world: &Shared, oracle: &Oracle) -> Vec<String> {
    recover_and_check_full(world, oracle).0
}

/// [`recover_and_check`], also saying whether the first recovery had work to do. A panic
/// (in kharden or in redb) is a violation too.
pub fn recover_and_check_full(world: &Shared, oracle: &Oracle) -> (Vec<String>, bool) {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        recover_and_check_inner(world, oracle)
    })) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic".into());
            (
                vec![format!(
                    "panic while opening the journal or recovering: {msg}"
                )],
                false,
            )
        }
    }
}

fn recover_and_check_inner(world: &Shared, oracle: &Oracle) -> (Vec<String>, bool) {
    let mut journal = match crate::harness::open_journal(world) {
        Ok(j) => j,
        Err(e) => {
            return (
                vec![format!("journal does not open after the crash: {e}")],
                false,
            )
        }
    };
    let mut bad = Vec::new();
    let (ops_before, running_before) = {
        let w = lock(world);
        (w.op_log.len(), w.service.is_some())
    };
    let did_work = match run_recover(world, &journal) {
        Ok(r) => {
            if r.has_conflicts() {
                bad.push(format!("recover reported a conflict: {:?}", r.transactions));
            }
            !r.transactions.is_empty()
        }
        Err(e) => {
            bad.push(format!("recover failed: {e}"));
            return (bad, false);
        }
    };
    // After a power cut the kubelet is not running: `kharden recover` runs at boot before it,
    // restores files and starts nothing (a restart there would start the kubelet on files
    // recovery has not finished with). After a kill of kharden alone it may run, and then
    // recovery must restart it on what it restores (checked in `check_state`).
    if !running_before && lock(world).op_log[ops_before..].contains(&crate::sim::OpKind::Restart) {
        bad.push("recovery after a power cut restarted the kubelet".into());
    }
    bad.extend(check_state(world, &mut journal, oracle));
    // Recover twice changes nothing: no open transaction, no file touched.
    let before = lock(world).live.clone();
    let states: Vec<(u64, State)> = all_txns(&journal)
        .unwrap_or_default()
        .iter()
        .map(|t| (t.id, t.state))
        .collect();
    match run_recover(world, &journal) {
        Ok(r) if !r.transactions.is_empty() => {
            bad.push(format!("second recover acted: {:?}", r.transactions))
        }
        Ok(_) => {}
        Err(e) => bad.push(format!("second recover failed: {e}")),
    }
    let after = lock(world).live.clone();
    let managed = |t: &Tree| {
        t.dirs
            .iter()
            .filter(|(d, _)| d.as_path() != Path::new(crate::sim::STATE_DIR))
            .map(|(d, e)| {
                (
                    d.clone(),
                    e.iter()
                        .map(|(n, i)| (n.clone(), t.inodes.get(i).cloned()))
                        .collect::<Vec<_>>(),
                )
            })
            .collect::<Vec<_>>()
    };
    if managed(&before) != managed(&after) {
        bad.push("second recover changed the managed files".into());
    }
    let states2: Vec<(u64, State)> = all_txns(&journal)
        .unwrap_or_default()
        .iter()
        .map(|t| (t.id, t.state))
        .collect();
    if states != states2 {
        bad.push(format!(
            "second recover changed the journal: {states:?} -> {states2:?}"
        ));
    }
    // ... and neither does a reopen (a second boot).
    drop(journal);
    match crate::harness::open_journal(world) {
        Ok(j) => match run_recover(world, &j) {
            Ok(r) if !r.transactions.is_empty() => bad.push(format!(
                "recover after a reopen acted: {:?}",
                r.transactions
            )),
            Ok(_) => {}
            Err(e) => bad.push(format!("recover after a reopen failed: {e}")),
        },
        Err(e) => bad.push(format!("journal does not reopen after recover: {e}")),
    }
    (bad, did_work)
}

/// `kharden recover` with the default policy (revert, no force) on the world.
pub fn run_recover(
    world: &Shared,
    journal: &Journal,
) -> Result<RecoverReport, kharden::txn::TxnError> {
    let storage = crate::sim::SimStorage {
        world: world.clone(),
    };
    let clock = crate::harness::SimClock::new();
    let gate = crate::harness::ScriptedGate::default();
    let audit = crate::harness::FixedAudit(true);
    let services = crate::harness::SimServices {
        world: world.clone(),
    };
    let engine = kharden::txn::Engine::new(journal, &storage, &gate, &audit, &clock)
        .with_services(&services);
    recover(&engine, Policy::Revert, false)
}
