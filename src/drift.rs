//! `kharden drift`: what happened to kharden's changes since it committed them.
//!
//! Hardening is undone behind the operator's back: `kubeadm upgrade` rewrites the static pod
//! manifests from its own templates (the original flags, a new image tag), a package upgrade
//! restores a unit file, a colleague edits a flag by hand. For every file kharden has committed a
//! change to, the journal says what it must hold: the after-contents (and mode and owner) of the
//! latest committed transaction that touched it, a later `kharden rollback` taken into account
//! (its own after-contents are then what the file must hold, and the changes it undid are no
//! longer expected). Each file is compared with what it holds now:
//!
//! - **unchanged**: byte for byte the last committed contents, same mode and owner;
//! - **changed**: something else changed (the diff against the last committed after-contents
//!   says what), and every change kharden made still holds;
//! - **reverted**: some of kharden's changes no longer hold (or the file is back to its
//!   before-contents): the controls they implemented are no longer in effect;
//! - **missing**: the file kharden left is gone;
//! - **open** / **needs-manual**: a transaction on the file is not finished (`kharden recover`)
//!   or waits for an operator (`kharden journal resolve`): nothing to compare yet.
//!
//! A change "holds" as the component reads the file: a flag of a static pod manifest, or of the
//! kubelet in an environment file (every variable the file assigns), under the flag parser's
//! rules ([`kharden_manifest::Change::holds_in`]); a `KubeletConfiguration` setting as the
//! kubelet's YAML reader types it ([`kharden_kubelet_config::ConfigChange::holds_in`]).
//! kharden's changes survive a reordering or an unrelated edit, and a value rewritten to the
//! same one is not drift of a control: a `kubeadm upgrade` that rewrites `config.yaml` is
//! reported with the settings it undid, not only as a diff. Changes that the later contents
//! themselves do not hold (an `apply` that changed kharden's own flag again) are not expected
//! of the file.
//!
//! Nothing is written. [`undone_controls`] gives `kharden harden` the controls to re-apply.

use crate::durable::Storage;
use crate::error::Result;
use crate::exit;
use crate::journal::{Image, JournalRead, State, TxId, TxnKind};
use kharden_kubelet_config::{ConfigChange, ConfigDoc, EnvFile};
use kharden_manifest::{Change, Flags};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// What a file holds, compared with what kharden last committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileStatus {
    Unchanged,
    Changed,
    Reverted,
    Missing,
    Open,
    NeedsManual,
}

impl FileStatus {
    pub const ALL: [FileStatus; 6] = [
        FileStatus::Unchanged,
        FileStatus::Changed,
        FileStatus::Reverted,
        FileStatus::Missing,
        FileStatus::Open,
        FileStatus::NeedsManual,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FileStatus::Unchanged => "unchanged",
            FileStatus::Changed => "changed",
            FileStatus::Reverted => "reverted",
            FileStatus::Missing => "missing",
            FileStatus::Open => "open",
            FileStatus::NeedsManual => "needs-manual",
        }
    }

    /// The file no longer holds what kharden committed.
    pub fn is_drift(self) -> bool {
        matches!(
            self,
            FileStatus::Changed | FileStatus::Reverted | FileStatus::Missing
        )
    }
}

impl std::fmt::Display for FileStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One change of kharden's that no longer holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Undone {
    /// The control it implemented (`harden`), or `None` for an `apply`.
    pub control: Option<String>,
    /// The change (`set --profiling=false`), or `contents` for a whole file kharden wrote.
    pub change: String,
    /// The transaction that made it.
    pub txid: TxId,
}

/// One file kharden committed a change to.
#[derive(Debug, Clone, Serialize)]
pub struct DriftFile {
    pub path: String,
    pub status: FileStatus,
    /// The latest committed transaction that touched it (its after-contents are expected).
    pub txid: TxId,
    /// The controls kharden applied through this file and still expects of it.
    pub controls: Vec<String>,
    pub undone: Vec<Undone>,
    pub controls_undone: Vec<String>,
    /// A unified diff from the last committed after-contents to what the file holds now.
    pub diff: String,
    /// Mode and owner, when they changed (`0600 0:0 -> 0644 0:0`).
    pub meta_change: Option<String>,
    pub note: Option<String>,
}

/// `kharden drift`.
#[derive(Debug, Clone, Serialize)]
pub struct DriftReport {
    /// Whether there is a journal at all.
    pub journal: bool,
    pub files: Vec<DriftFile>,
    /// Files that drifted (changed, reverted or missing).
    pub drifted: usize,
    /// Every control no longer in effect, in id order.
    pub controls_undone: Vec<String>,
    pub exit_code: u8,
}

impl DriftReport {
    /// The report for a node where kharden never recorded anything.
    pub fn no_journal() -> DriftReport {
        DriftReport {
            journal: false,
            files: Vec::new(),
            drifted: 0,
            controls_undone: Vec::new(),
            exit_code: exit::SUCCESS,
        }
    }
}

/// One committed transaction's contribution to a file.
#[derive(Debug, Clone)]
struct Applied {
    txid: TxId,
    controls: Vec<String>,
    changes: Vec<Change>,
    settings: Vec<ConfigChange>,
    /// A change of the file's mode and owner only.
    metadata: bool,
    /// The benchmark the control ids are of.
    bench: &'static kharden_catalog::Benchmark,
}

impl Applied {
    /// A whole file kharden wrote (an audit policy) or a mode and owner: no flag or setting
    /// to judge it by.
    fn whole_file(&self) -> bool {
        self.changes.is_empty() && self.settings.is_empty()
    }
}

#[derive(Debug, Default)]
struct PathState {
    /// The latest committed transaction on the path, and its sides (of either scope: both
    /// carry the contents' hash and the mode and owner expected).
    committed: Option<(TxId, Option<Image>, Option<Image>)>,
    /// The after side of the latest committed change of the contents: the bytes expected
    /// (a metadata change keeps no contents in the journal).
    contents: Option<Option<Image>>,
    applied: Vec<Applied>,
    open: Option<TxId>,
    needs_manual: Option<TxId>,
}

/// The benchmark whose ids a harden transaction used: the one whose remediations of those
/// ids explain the most of the transaction's changes (the default benchmark on a tie). Ids
/// shift between versions (cis-1.8's 1.2.16 is cis-1.12's 1.2.15), so changes are mapped to
/// controls in one benchmark only.
fn benchmark_of(
    controls: &[String],
    changes: &[Expect<'_>],
) -> &'static kharden_catalog::Benchmark {
    let explained = |b: &'static kharden_catalog::Benchmark| {
        changes
            .iter()
            .filter(|c| {
                controls
                    .iter()
                    .any(|id| b.check(id).is_some_and(|k| c.implements(k)))
            })
            .count()
    };
    let mut best: Option<(&'static kharden_catalog::Benchmark, usize)> = None;
    for b in kharden_catalog::benchmarks().iter().copied() {
        let n = explained(b);
        let better = match best {
            None => true,
            Some((cur, m)) => {
                n > m || (n == m && b.id == kharden_catalog::DEFAULT_BENCHMARK && cur.id != b.id)
            }
        };
        if better {
            best = Some((b, n));
        }
    }
    // The catalog always compiles in at least one benchmark, so `best` is set; the default
    // benchmark is the answer otherwise.
    match best {
        Some((b, _)) => b,
        None => kharden_catalog::benchmarks()[0],
    }
}

/// One change kharden expects of a file: a flag (of a static pod manifest, or the kubelet's
/// in an environment file) or a `KubeletConfiguration` setting.
#[derive(Debug, Clone, Copy)]
enum Expect<'a> {
    Flag(&'a Change),
    Setting(&'a ConfigChange),
}

impl Expect<'_> {
    fn holds_in(self, r: &Reading) -> bool {
        match (self, r) {
            (Expect::Flag(c), Reading::Flags(f)) => c.holds_in(f),
            (Expect::Setting(c), Reading::Config(d)) => c.holds_in(d),
            _ => false,
        }
    }

    /// Whether the check's automated fix makes this change.
    fn implements(self, check: &kharden_catalog::Check) -> bool {
        let flag = |c: &Change| {
            check.kubelet_fix().is_some_and(|k| {
                k.settings.iter().any(|s| {
                    Some(s.flag.trim_start_matches('-'))
                        == c.flag_name().map(|n| n.trim_start_matches('-'))
                })
            })
        };
        match self {
            Expect::Flag(c) => {
                check.remediation().is_some_and(|r| r.changes.contains(c)) || flag(c)
            }
            Expect::Setting(c) => {
                let key = c.path().to_string();
                check
                    .kubelet_fix()
                    .is_some_and(|k| k.settings.iter().any(|s| s.key == key))
            }
        }
    }

    fn text(self) -> String {
        match self {
            Expect::Flag(c) => c.to_string(),
            Expect::Setting(c) => c.to_string(),
        }
    }
}

/// How kharden reads a file it changed settings of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKind {
    Manifest,
    /// The kubelet's flags in an environment file.
    EnvFile,
    /// A `KubeletConfiguration` file or drop-in.
    Config,
}

impl FileKind {
    /// From what kharden recorded of the file and the contents it committed.
    fn of(st: &PathState, expected: Option<&[u8]>) -> FileKind {
        if st.applied.iter().any(|a| !a.settings.is_empty()) {
            FileKind::Config
        } else if expected.is_some_and(|e| kharden_manifest::inspect(e, None).is_err())
            && st.applied.iter().any(|a| !a.changes.is_empty())
        {
            FileKind::EnvFile
        } else {
            FileKind::Manifest
        }
    }

    fn read(self, contents: &[u8]) -> Option<Reading> {
        match self {
            FileKind::Manifest => flags_of(contents).map(Reading::Flags),
            FileKind::EnvFile => {
                let env = EnvFile::parse(contents).ok()?;
                let words: Vec<String> = env
                    .assignments()
                    .iter()
                    .flat_map(|a| env.words(&a.name))
                    .collect();
                Some(Reading::Flags(Flags::parse(&words)))
            }
            FileKind::Config => ConfigDoc::parse(contents).ok().map(Reading::Config),
        }
    }

    fn what(self) -> &'static str {
        match self {
            FileKind::Manifest => "a static pod manifest",
            FileKind::EnvFile => "an environment file",
            FileKind::Config => "a KubeletConfiguration file",
        }
    }
}

/// A file's settings as its component reads them.
enum Reading {
    Flags(Flags),
    Config(ConfigDoc),
}

/// Which of a transaction's controls a change implements (in the transaction's benchmark); a
/// single-control transaction's changes are all that control's.
fn controls_of(change: Expect<'_>, a: &Applied) -> Vec<String> {
    let mut out: Vec<String> = a
        .controls
        .iter()
        .filter(|id| a.bench.check(id).is_some_and(|c| change.implements(c)))
        .cloned()
        .collect();
    if out.is_empty() && a.controls.len() == 1 {
        out = a.controls.clone();
    }
    out
}

/// The controls of a transaction that wrote the whole file `path` (an audit policy): those
/// whose remediation writes it, else all of them.
fn controls_writing(path: &str, a: &Applied) -> Vec<String> {
    let p = std::path::Path::new(path);
    let out: Vec<String> = a
        .controls
        .iter()
        .filter(|id| {
            a.bench
                .check(id)
                .and_then(|c| c.remediation())
                .is_some_and(|r| {
                    r.files.iter().any(|f| {
                        let rel = f.path.trim_start_matches('/');
                        !rel.is_empty() && p.ends_with(rel)
                    })
                })
        })
        .cloned()
        .collect();
    if out.is_empty() {
        a.controls.clone()
    } else {
        out
    }
}

fn flags_of(contents: &[u8]) -> Option<Flags> {
    let info = kharden_manifest::inspect(contents, None).ok()?;
    Some(Flags::parse(
        info.argv.get(info.flags_start..).unwrap_or_default(),
    ))
}

fn meta_text(m: &crate::durable::FileMeta) -> String {
    format!("{:04o} {}:{}", m.mode, m.uid, m.gid)
}

/// Compare every file kharden has committed a change to with what it holds now.
pub fn drift<J: JournalRead>(journal: &J, storage: &dyn Storage) -> Result<DriftReport> {
    let mut records = journal.list(usize::MAX, None)?;
    records.reverse();
    let unresolved: BTreeSet<TxId> = journal.unresolved()?.into_iter().collect();
    let mut paths: BTreeMap<String, PathState> = BTreeMap::new();
    for rec in &records {
        let all_changes: Vec<Expect<'_>> = rec
            .files
            .iter()
            .flat_map(|f| {
                f.changes
                    .iter()
                    .map(Expect::Flag)
                    .chain(f.settings.iter().map(Expect::Setting))
            })
            .collect();
        let txn_controls = match &rec.kind {
            TxnKind::Harden { controls } => controls.clone(),
            _ => Vec::new(),
        };
        let bench = benchmark_of(&txn_controls, &all_changes);
        for f in &rec.files {
            let st = paths.entry(f.path.clone()).or_default();
            match rec.state {
                State::Committed => {
                    st.committed = Some((rec.id, f.before.clone(), f.after.clone()));
                    if !f.is_metadata() {
                        st.contents = Some(f.after.clone());
                    }
                    st.needs_manual = None;
                    match &rec.kind {
                        TxnKind::Rollback { of } => st.applied.retain(|a| a.txid != *of),
                        TxnKind::Harden { .. } | TxnKind::Apply => st.applied.push(Applied {
                            txid: rec.id,
                            // The file's own controls when the transaction recorded them.
                            controls: if f.controls.is_empty() {
                                txn_controls.clone()
                            } else {
                                f.controls.clone()
                            },
                            changes: f.changes.clone(),
                            settings: f.settings.clone(),
                            metadata: f.is_metadata(),
                            bench,
                        }),
                    }
                }
                State::NeedsManual if unresolved.contains(&rec.id) => {
                    st.needs_manual = Some(rec.id)
                }
                State::NeedsManual | State::RolledBack | State::Aborted => {}
                _ => st.open = Some(rec.id),
            }
        }
    }
    let mut files = Vec::new();
    for (path, st) in paths {
        let Some((txid, before, after)) = st.committed.clone() else {
            continue;
        };
        files.push(judge(journal, storage, &path, txid, before, after, &st)?);
    }
    let mut controls_undone: Vec<String> = files
        .iter()
        .flat_map(|f| f.controls_undone.iter().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    controls_undone.sort_by_key(|id| kharden_catalog::id_key(id));
    let drifted = files.iter().filter(|f| f.status.is_drift()).count();
    Ok(DriftReport {
        journal: true,
        files,
        drifted,
        controls_undone,
        exit_code: if drifted > 0 {
            exit::DRIFT
        } else {
            exit::SUCCESS
        },
    })
}

#[allow(clippy::too_many_arguments)]
fn judge<J: JournalRead>(
    journal: &J,
    storage: &dyn Storage,
    path: &str,
    txid: TxId,
    before: Option<Image>,
    after: Option<Image>,
    st: &PathState,
) -> Result<DriftFile> {
    let mut file = DriftFile {
        path: path.to_string(),
        status: FileStatus::Unchanged,
        txid,
        controls: Vec::new(),
        undone: Vec::new(),
        controls_undone: Vec::new(),
        diff: String::new(),
        meta_change: None,
        note: None,
    };
    // The bytes expected: the latest committed contents, when they are still the file's
    // identity (a metadata change since kept them).
    let expected = match st.contents.as_ref().and_then(Option::as_ref) {
        Some(img) if after.as_ref().is_some_and(|a| a.hash == img.hash) => {
            Some(journal.blob(&img.hash)?)
        }
        _ => None,
    };
    // What kharden still expects of the file: the changes its last contents hold.
    let kind = FileKind::of(st, expected.as_deref());
    let expected_reading = expected.as_deref().and_then(|e| kind.read(e));
    let mut expecting: Vec<(&Applied, Expect<'_>)> = Vec::new();
    for a in &st.applied {
        let flags = a
            .changes
            .iter()
            .filter(|c| !matches!(c, Change::Mount(_)))
            .map(Expect::Flag);
        for c in flags.chain(a.settings.iter().map(Expect::Setting)) {
            if expected_reading.as_ref().is_some_and(|r| c.holds_in(r)) {
                expecting.push((a, c));
            }
        }
    }
    let mut controls: BTreeSet<String> = BTreeSet::new();
    for (a, c) in &expecting {
        controls.extend(controls_of(*c, a));
    }
    for a in st.applied.iter().filter(|a| a.whole_file()) {
        if a.metadata {
            controls.extend(a.controls.iter().cloned());
        } else {
            controls.extend(controls_writing(path, a));
        }
    }
    file.controls = controls.into_iter().collect();
    file.controls.sort_by_key(|id| kharden_catalog::id_key(id));
    if let Some(id) = st.open {
        file.status = FileStatus::Open;
        file.note = Some(format!(
            "transaction {id} on this file is not finished: `kharden recover` settles it"
        ));
        return Ok(file);
    }
    if let Some(id) = st.needs_manual {
        file.status = FileStatus::NeedsManual;
        file.note = Some(format!(
            "transaction {id} needs manual intervention: see `kharden journal show {id}`"
        ));
        return Ok(file);
    }
    // Identity and metadata first (a directory, a key: never read whole); the contents only
    // for a diff.
    let inode = match storage.inode(std::path::Path::new(path)) {
        Ok(i) => i,
        Err(e) => {
            file.status = FileStatus::Changed;
            file.note = Some(format!("cannot be examined as a managed file: {e}"));
            return Ok(file);
        }
    };
    let cur_hash = inode.map(|i| i.hash);
    let same_contents = cur_hash == after.as_ref().map(|i| i.hash);
    let current = match inode {
        Some(i) if !i.directory => match storage.read(std::path::Path::new(path)) {
            Ok(s) => s.map(|s| (s.contents, i.meta)),
            Err(e) => {
                file.status = FileStatus::Changed;
                file.note = Some(format!("cannot be read as a managed file: {e}"));
                return Ok(file);
            }
        },
        Some(i) => Some((Vec::new(), i.meta)),
        None => None,
    };
    let meta_change = match (&inode, &after) {
        (Some(c), Some(a)) if c.meta != a.meta => {
            Some(format!("{} -> {}", meta_text(&a.meta), meta_text(&c.meta)))
        }
        _ => None,
    };
    if same_contents && meta_change.is_none() {
        return Ok(file);
    }
    file.meta_change = meta_change;
    if !same_contents {
        file.diff = crate::diff::unified(
            path,
            expected.as_deref(),
            current.as_ref().map(|(c, _)| c.as_slice()),
        );
    }
    let metadata_record = before
        .as_ref()
        .zip(after.as_ref())
        .is_some_and(|(b, a)| b.hash == a.hash);
    let at_before = !metadata_record && cur_hash == before.as_ref().map(|i| i.hash);
    let now_reading = current.as_ref().and_then(|(c, _)| kind.read(c));
    for (a, c) in &expecting {
        if now_reading.as_ref().is_some_and(|r| c.holds_in(r)) {
            continue;
        }
        let owners = controls_of(*c, a);
        if owners.is_empty() {
            file.undone.push(Undone {
                control: None,
                change: c.text(),
                txid: a.txid,
            });
        }
        for id in owners {
            file.undone.push(Undone {
                control: Some(id),
                change: c.text(),
                txid: a.txid,
            });
        }
    }
    // A mode or owner kharden set that the file no longer has: the controls it implemented
    // are undone when their rule no longer holds (a mode tightened further by hand still
    // satisfies "600 or more restrictive").
    if let (Some(c), Some(a)) = (&inode, &after) {
        if c.meta != a.meta {
            for ap in st.applied.iter().filter(|ap| ap.metadata) {
                for id in &ap.controls {
                    let fix = ap.bench.check(id).and_then(|k| k.file_fix());
                    let holds = fix.is_some_and(|fx| {
                        fx.allowed_mode.is_none_or(|m| c.meta.mode & !m == 0)
                            && (fx.owner.is_none()
                                || (c.meta.uid, c.meta.gid) == (a.meta.uid, a.meta.gid))
                    });
                    if !holds {
                        file.undone.push(Undone {
                            control: Some(id.clone()),
                            change: "mode and owner".into(),
                            txid: ap.txid,
                        });
                    }
                }
            }
        }
    }
    if at_before || current.is_none() {
        for a in st.applied.iter().filter(|a| a.whole_file() && !a.metadata) {
            for id in controls_writing(path, a) {
                file.undone.push(Undone {
                    control: Some(id),
                    change: "contents".into(),
                    txid: a.txid,
                });
            }
        }
    }
    if current.is_some() && expected.is_some() && now_reading.is_none() && !expecting.is_empty() {
        file.note = Some(format!(
            "it is no longer {} kharden can read: none of kharden's changes can be in effect",
            kind.what()
        ));
    }
    let mut undone_ids: Vec<String> = file
        .undone
        .iter()
        .filter_map(|u| u.control.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    undone_ids.sort_by_key(|id| kharden_catalog::id_key(id));
    file.controls_undone = undone_ids;
    file.status = if current.is_none() && after.is_some() {
        FileStatus::Missing
    } else if !file.undone.is_empty() || (at_before && !same_contents) {
        FileStatus::Reverted
    } else if same_contents {
        // Mode or owner only: back to the before side's is a revert of a metadata change.
        match (&current, &before, &after) {
            (Some((_, c)), Some(b), Some(a)) if *c == b.meta && b.meta != a.meta => {
                FileStatus::Reverted
            }
            _ => FileStatus::Changed,
        }
    } else {
        FileStatus::Changed
    };
    Ok(file)
}

/// The controls kharden committed that are no longer in effect on this node (for `harden` to
/// say it re-applies them after a drift), in id order.
pub fn undone_controls<J: JournalRead>(journal: &J, storage: &dyn Storage) -> Result<Vec<String>> {
    Ok(drift(journal, storage)?.controls_undone)
}
