//! From a crash snapshot (durable image + unsynced effects) to the disks a power cut may leave.
//!
//! Every subset of the unsynced effects is a legal outcome, so the number of post-crash states
//! is exponential; the explorer takes a documented, bounded family of them:
//!
//! 1. everything lost, and everything kept (a process kill);
//! 2. every prefix of the effects in issue order (an in-order device);
//! 3. every single effect lost with all others kept, and every single effect kept alone;
//! 4. every write torn at a sector boundary (and, where it wrote newly allocated space, turned
//!    to garbage), with all other effects kept, and with only the effects before it kept;
//! 5. all 2^n subsets when there are at most [`Bounds::full_subsets_up_to`] unsynced effects.
//!
//! A subset is then normalised: the entry effects of one directory persist in order (a rename
//! is never durable without the create before it), so an entry effect after a lost one of the
//! same directory is lost too. Equal disks are explored once.

use crate::sim::{can_tear, DataOp, Effect, Fate, Snapshot, Tree, JOURNAL_INO};
use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;

/// Limits of the enumeration.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Enumerate every subset when at most this many effects are unsynced.
    pub full_subsets_up_to: usize,
    /// Explore torn and garbage writes.
    pub tears: bool,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            full_subsets_up_to: 6,
            tears: true,
        }
    }
}

/// One post-crash disk and the fates that made it.
#[derive(Debug, Clone)]
pub struct CrashImage {
    pub tree: Tree,
    pub fates: Vec<Fate>,
}

impl CrashImage {
    /// A short description of the fates (`K` kept, `-` lost, `T` torn, `G` garbage).
    pub fn describe(&self) -> String {
        self.fates
            .iter()
            .map(|f| match f {
                Fate::Kept => 'K',
                Fate::Lost => '-',
                Fate::Torn => 'T',
                Fate::Garbage => 'G',
            })
            .collect()
    }
}

/// Whether `effect`, a write, went (at least partly) beyond what the durable image holds of
/// its file, i.e. into space that a crash may hand back as garbage.
fn writes_new_space(snap: &Snapshot, effect: &Effect) -> bool {
    match effect {
        Effect::Data {
            ino,
            op: DataOp::Write { offset, bytes },
        } => {
            let durable_len = snap
                .durable
                .inodes
                .get(ino)
                .map(|i| i.data.len() as u64)
                .unwrap_or(0);
            // The journal is preallocated by redb with set_len; its pages inside the durable
            // length are rewritten in place (sector-atomic), so only growth can be garbage.
            offset + bytes.len() as u64 > durable_len || *ino != JOURNAL_INO && durable_len == 0
        }
        _ => false,
    }
}

/// The fate vectors of the bounded family, before normalisation.
pub fn fate_family(snap: &Snapshot, bounds: Bounds) -> Vec<Vec<Fate>> {
    let n = snap.pending.len();
    let mut out = Vec::new();
    out.push(vec![Fate::Lost; n]);
    out.push(vec![Fate::Kept; n]);
    for i in 1..n {
        let mut v = vec![Fate::Lost; n];
        v[..i].fill(Fate::Kept);
        out.push(v);
    }
    for i in 0..n {
        let mut v = vec![Fate::Kept; n];
        v[i] = Fate::Lost;
        out.push(v);
        let mut v = vec![Fate::Lost; n];
        v[i] = Fate::Kept;
        out.push(v);
    }
    if bounds.tears {
        for (i, e) in snap.pending.iter().enumerate() {
            let Effect::Data {
                op: DataOp::Write { offset, bytes },
                ..
            } = e
            else {
                continue;
            };
            let mut kinds = Vec::new();
            if can_tear(*offset, bytes.len()) {
                kinds.push(Fate::Torn);
            }
            if writes_new_space(snap, e) {
                kinds.push(Fate::Garbage);
            }
            for k in kinds {
                let mut v = vec![Fate::Kept; n];
                v[i] = k;
                out.push(v);
                let mut v = vec![Fate::Lost; n];
                v[..i].fill(Fate::Kept);
                v[i] = k;
                out.push(v);
            }
        }
    }
    if n <= bounds.full_subsets_up_to {
        for mask in 0u64..(1u64 << n) {
            out.push(
                (0..n)
                    .map(|i| {
                        if mask & (1 << i) != 0 {
                            Fate::Kept
                        } else {
                            Fate::Lost
                        }
                    })
                    .collect(),
            );
        }
    }
    out
}

/// Build the disk for one fate vector (normalised for per-directory order).
pub fn build(snap: &Snapshot, fates: &[Fate]) -> CrashImage {
    let mut tree = snap.durable.clone();
    let mut cut: BTreeSet<PathBuf> = BTreeSet::new();
    let mut actual = Vec::with_capacity(fates.len());
    for (e, f) in snap.pending.iter().zip(fates) {
        let fate = match e {
            Effect::Entry { dir, .. } => {
                if cut.contains(dir) || *f == Fate::Lost {
                    cut.insert(dir.clone());
                    Fate::Lost
                } else {
                    Fate::Kept
                }
            }
            Effect::Data { .. } => *f,
        };
        if fate != Fate::Lost {
            tree.apply(e, fate);
        }
        actual.push(fate);
    }
    tree.gc();
    CrashImage {
        tree,
        fates: actual,
    }
}

/// Every distinct disk of the bounded family.
pub fn images(snap: &Snapshot, bounds: Bounds) -> Vec<CrashImage> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for fates in fate_family(snap, bounds) {
        let img = build(snap, &fates);
        if seen.insert(img.tree.fingerprint()) {
            out.push(img);
        }
    }
    out
}

/// One random post-crash disk: each effect lost, kept, torn or garbled independently.
pub fn random_image(snap: &Snapshot, rng: &mut crate::sim::Rng) -> CrashImage {
    let fates: Vec<Fate> = snap
        .pending
        .iter()
        .map(|e| {
            let r = rng.below(100);
            match e {
                Effect::Data {
                    op: DataOp::Write { offset, bytes },
                    ..
                } if r < 10 => {
                    if r < 5 && can_tear(*offset, bytes.len()) {
                        Fate::Torn
                    } else if writes_new_space(snap, e) {
                        Fate::Garbage
                    } else {
                        Fate::Lost
                    }
                }
                _ if r < 55 => Fate::Lost,
                _ => Fate::Kept,
            }
        })
        .collect();
    build(snap, &fates)
}
