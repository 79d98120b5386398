//! The simulated disk: one world holding the managed files, the directories and the journal
//! file, each with a *live* view (what a running process reads: the page cache) and a *durable*
//! view (what is on the platters), and the list of effects issued since the last fsync that
//! covers them.
//!
//! Why a model of its own rather than a tmpfs or a fault-injecting FUSE mount: a power cut is a
//! choice among many possible disks, and the explorer has to enumerate those choices; only a
//! model that keeps every unsynced effect as a separate, droppable item can do that
//! deterministically.
//!
//! The rules (they are the ones a POSIX file system promises, no more):
//! - a file's data and metadata (write, set_len, chown/chmod) become durable only when that
//!   file is fsync'd (`fsync`, redb's `sync_data`);
//! - a directory entry (create, rename, unlink) becomes durable only when its directory is
//!   fsync'd; the entry operations of one directory persist in order (a journaling file system
//!   commits metadata in order: a rename is never durable without the create before it);
//! - at a power cut every unsynced effect may be lost or kept, independently of every other
//!   (except the per-directory order above), and a kept write may be torn at a sector boundary
//!   or, where it wrote newly allocated space, come back as garbage.
//!
//! [`SimStorage`] implements `kharden::durable::Storage` with the exact sequence of primitive
//! operations [`kharden::durable::RealStorage`] performs, and [`SimBackend`] implements redb's
//! `StorageBackend` on the journal file of the same world. Both count their operations on one
//! shared counter, so a crash point is a position in one global order across the journal and
//! the managed files.

use kharden::durable::{
    hash, DurableError, Expect, FileMeta, FileState, Inode as FileInode, Storage, TempName,
    DIRECTORY_HASH,
};
use std::collections::BTreeMap;
use std::io;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// Inode number.
pub type Ino = u64;

/// The inode of the journal file (`journal.redb`).
pub const JOURNAL_INO: Ino = 1;
/// Where the journal lives in the simulated tree.
pub const STATE_DIR: &str = "/var/lib/kharden";
/// The journal's file name.
pub const JOURNAL_NAME: &str = "journal.redb";
/// The name the journal is built under before it is renamed in (as `journal/store.rs` does).
pub const JOURNAL_TEMP_NAME: &str = ".journal.redb.creating-1";
/// The sector size used for torn writes: a device writes a sector atomically or not at all.
pub const SECTOR: u64 = 512;

/// A file's contents and metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inode {
    pub data: Vec<u8>,
    pub meta: FileMeta,
}

impl Inode {
    fn empty() -> Inode {
        Inode {
            data: Vec::new(),
            meta: FileMeta::NEW_FILE,
        }
    }
}

/// A file system image: inodes and directory entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    pub inodes: BTreeMap<Ino, Inode>,
    pub dirs: BTreeMap<PathBuf, BTreeMap<String, Ino>>,
}

/// A change to a file's data or metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataOp {
    Write { offset: u64, bytes: Vec<u8> },
    SetLen(u64),
    Meta(FileMeta),
}

/// A change to a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryOp {
    Link { name: String, ino: Ino },
    Unlink { name: String },
    Rename { from: String, to: String },
}

/// One effect not yet made durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Data { ino: Ino, op: DataOp },
    Entry { dir: PathBuf, op: EntryOp },
}

/// How a crash treats one unsynced effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fate {
    Lost,
    Kept,
    /// A write kept up to a sector boundary around its middle; the rest is the old contents.
    Torn,
    /// A write into newly allocated space that came back as garbage.
    Garbage,
}

impl Tree {
    /// Apply one effect, as kept (`Kept`), torn or garbled.
    pub fn apply(&mut self, effect: &Effect, fate: Fate) {
        match effect {
            Effect::Data { ino, op } => {
                let inode = self.inodes.entry(*ino).or_insert_with(Inode::empty);
                match op {
                    DataOp::Write { offset, bytes } => {
                        let off = *offset as usize;
                        let bytes: Vec<u8> = match fate {
                            Fate::Torn => bytes[..torn_len(*offset, bytes.len())].to_vec(),
                            Fate::Garbage => garbage(bytes.len(), *offset),
                            _ => bytes.clone(),
                        };
                        let end = off + bytes.len();
                        if inode.data.len() < end {
                            inode.data.resize(end, 0);
                        }
                        inode.data[off..end].copy_from_slice(&bytes);
                    }
                    DataOp::SetLen(len) => inode.data.resize(*len as usize, 0),
                    DataOp::Meta(m) => inode.meta = *m,
                }
            }
            Effect::Entry { dir, op } => {
                let d = self.dirs.entry(dir.clone()).or_default();
                match op {
                    EntryOp::Link { name, ino } => {
                        d.insert(name.clone(), *ino);
                        self.inodes.entry(*ino).or_insert_with(Inode::empty);
                    }
                    EntryOp::Unlink { name } => {
                        d.remove(name);
                    }
                    EntryOp::Rename { from, to } => {
                        if let Some(ino) = d.remove(from) {
                            d.insert(to.clone(), ino);
                        }
                    }
                }
            }
        }
    }

    /// Drop inodes no directory entry names (what fsck does with orphans).
    pub fn gc(&mut self) {
        let live: std::collections::BTreeSet<Ino> = self
            .dirs
            .values()
            .flat_map(|d| d.values().copied())
            .collect();
        self.inodes.retain(|ino, _| live.contains(ino));
    }

    /// A content hash of the image (inode numbers left out), to deduplicate crash states.
    pub fn fingerprint(&self) -> [u8; 32] {
        let mut buf = Vec::new();
        for (dir, entries) in &self.dirs {
            buf.extend(dir.to_string_lossy().as_bytes());
            buf.push(0);
            for (name, ino) in entries {
                buf.extend(name.as_bytes());
                buf.push(0);
                if let Some(i) = self.inodes.get(ino) {
                    buf.extend(kharden::durable::hash(&i.data));
                    buf.extend(i.meta.mode.to_le_bytes());
                    buf.extend(i.meta.uid.to_le_bytes());
                    buf.extend(i.meta.gid.to_le_bytes());
                }
            }
            buf.push(1);
        }
        kharden::durable::hash(&buf)
    }

    /// The file at `path`, if its directory entry exists.
    pub fn file(&self, path: &Path) -> Option<&Inode> {
        let (dir, name) = split(path)?;
        let ino = self.dirs.get(&dir)?.get(&name)?;
        self.inodes.get(ino)
    }

    /// Put a file in place (used to build the initial disk).
    pub fn put(&mut self, ino: Ino, path: &Path, data: &[u8], meta: FileMeta) {
        if let Some((dir, name)) = split(path) {
            self.dirs.entry(dir).or_default().insert(name, ino);
            self.inodes.insert(
                ino,
                Inode {
                    data: data.to_vec(),
                    meta,
                },
            );
        }
    }
}

/// Bytes of a write of `len` at `offset` that survive a tear: up to the sector boundary at or
/// below its middle. A write within one sector is atomic and never torn.
pub fn torn_len(offset: u64, len: usize) -> usize {
    let mid = offset + (len as u64) / 2;
    let cut = (mid / SECTOR) * SECTOR;
    cut.saturating_sub(offset).min(len as u64) as usize
}

/// Whether a write can be torn at all (it spans a sector boundary strictly inside it).
pub fn can_tear(offset: u64, len: usize) -> bool {
    let k = torn_len(offset, len);
    k > 0 && k < len
}

fn garbage(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed ^ 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) as u8
        })
        .collect()
}

fn split(path: &Path) -> Option<(PathBuf, String)> {
    let name = path.file_name()?.to_str()?.to_string();
    let dir = path.parent()?.to_path_buf();
    Some((dir, name))
}

/// Deliberate bugs, to show the explorer can fail.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bugs {
    /// `replace` and `remove` skip the directory fsync (renames and unlinks may be lost).
    pub skip_dir_fsync: bool,
    /// `replace` skips the temp file's fsync before the rename.
    pub skip_file_fsync: bool,
    /// The journal's `sync_data` returns success without making anything durable (a disk that
    /// lies about flushes, or a journal committed without `Durability::Immediate`).
    pub journal_sync_noop: bool,
    /// `Storage::sync` does nothing: a state recovery *found* (rather than wrote) is journaled
    /// without being made durable (the core bug of VOPR seeds 1359 and 1964).
    pub skip_found_sync: bool,
    /// The journal is created in place (`journal.redb` linked first, then written), as
    /// kharden did before issue 11: a power cut during the first run leaves a journal redb
    /// cannot open.
    pub journal_created_in_place: bool,
    /// `set_meta` skips the file's fsync: a committed chmod/chown can be lost at a power cut.
    pub skip_meta_fsync: bool,
    /// The service manager says the kubelet is not running when it is: recovery restores the
    /// files of a kubelet transaction and restarts nothing (issue 14's failure: the kubelet
    /// keeps running a configuration no file holds).
    pub service_never_active: bool,
}

/// An I/O error the world injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Eio,
    Enospc,
}

/// Kinds of storage operation (the crash points).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    CreateTemp,
    SetMeta,
    WriteFile,
    FsyncFile,
    Rename,
    FsyncDir,
    Unlink,
    DbWrite,
    DbSetLen,
    DbSync,
    /// A service restarted (`systemctl restart kubelet`): not a storage operation, but a crash
    /// point between a write and the restart is one recovery must reason about.
    Restart,
}

impl OpKind {
    fn may_enospc(self) -> bool {
        matches!(
            self,
            OpKind::CreateTemp | OpKind::WriteFile | OpKind::DbWrite | OpKind::DbSetLen
        )
    }
    fn may_eio(self) -> bool {
        matches!(
            self,
            OpKind::WriteFile
                | OpKind::FsyncFile
                | OpKind::FsyncDir
                | OpKind::DbWrite
                | OpKind::DbSync
                | OpKind::DbSetLen
        )
    }
}

/// What a crash leaves to choose from: the durable image and the unsynced effects, in order.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Operations executed before the crash.
    pub at: u64,
    pub durable: Tree,
    pub pending: Vec<Effect>,
}

/// A small deterministic generator (SplitMix64), so a seed replays a schedule exactly.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n` > 0; 0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
    /// True with probability `num/den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }
}

/// Random fault injection: each eligible operation fails with probability `per_million`/10⁶.
#[derive(Debug, Clone)]
pub struct FaultPlan {
    pub rng: Rng,
    pub per_million: u64,
}

/// The whole simulated machine's disk.
#[derive(Debug)]
pub struct World {
    pub live: Tree,
    pub durable: Tree,
    pub pending: Vec<Effect>,
    /// Storage operations executed so far.
    pub ops: u64,
    /// Crash (power cut) before executing the operation with this index.
    pub crash_at: Option<u64>,
    /// Set at the crash: from then on every operation fails and changes nothing.
    pub crashed: Option<Snapshot>,
    /// Inject a fault at exactly these operation indexes.
    pub faults_at: BTreeMap<u64, Fault>,
    pub random_faults: Option<FaultPlan>,
    /// Faults injected so far.
    pub faults_injected: u64,
    pub bugs: Bugs,
    /// The kind of every operation begun, in order (to aim a fault at one of them).
    pub op_log: Vec<OpKind>,
    /// The running service (the kubelet) and the configuration it started with: the contents
    /// of each of its files when it started, in [`crate::harness::kubelet_files`]'s order
    /// (`None`: absent; the whole `None`: not running: a power cut stops it).
    pub service: Option<Vec<Option<Vec<u8>>>>,
    next_ino: Ino,
}

impl World {
    /// A world whose disk is `tree`, all of it durable.
    pub fn from_tree(tree: Tree) -> World {
        let next_ino = tree
            .inodes
            .keys()
            .next_back()
            .copied()
            .unwrap_or(JOURNAL_INO)
            + 1;
        World {
            live: tree.clone(),
            durable: tree,
            pending: Vec::new(),
            ops: 0,
            crash_at: None,
            crashed: None,
            faults_at: BTreeMap::new(),
            random_faults: None,
            faults_injected: 0,
            bugs: Bugs::default(),
            op_log: Vec::new(),
            service: None,
            next_ino,
        }
    }

    /// Restart the service: it reads its files (as the page cache has them) and runs on them.
    pub fn restart_service(&mut self, files: &[PathBuf]) -> io::Result<()> {
        self.begin(OpKind::Restart)?;
        self.service = Some(self.service_files(files));
        Ok(())
    }

    /// What `files` hold now (the page cache), as a service started now would read them.
    pub fn service_files(&self, files: &[PathBuf]) -> Vec<Option<Vec<u8>>> {
        files
            .iter()
            .map(|f| self.live.file(f).map(|i| i.data.clone()))
            .collect()
    }

    /// An empty disk with the state directory and no journal yet (the first `open_journal`
    /// creates it, atomically, as kharden does).
    pub fn fresh() -> World {
        let mut t = Tree::default();
        t.dirs.entry(PathBuf::from(STATE_DIR)).or_default();
        World::from_tree(t)
    }

    /// Whether the journal's directory entry exists.
    pub fn journal_exists(&self) -> bool {
        self.live
            .dirs
            .get(Path::new(STATE_DIR))
            .is_some_and(|d| d.contains_key(JOURNAL_NAME))
    }

    /// Start building a new journal: drop a leftover temp name, link the journal's inode under
    /// the temp name, empty. The backend then writes into it.
    pub fn begin_journal_creation(&mut self) -> io::Result<()> {
        let dir = PathBuf::from(STATE_DIR);
        let name = if self.bugs.journal_created_in_place {
            JOURNAL_NAME
        } else {
            JOURNAL_TEMP_NAME
        };
        if self
            .live
            .dirs
            .get(&dir)
            .is_some_and(|d| d.contains_key(JOURNAL_TEMP_NAME))
        {
            self.begin(OpKind::Unlink)?;
            self.effect(Effect::Entry {
                dir: dir.clone(),
                op: EntryOp::Unlink {
                    name: JOURNAL_TEMP_NAME.into(),
                },
            });
        }
        self.begin(OpKind::CreateTemp)?;
        self.effect(Effect::Entry {
            dir: dir.clone(),
            op: EntryOp::Link {
                name: name.into(),
                ino: JOURNAL_INO,
            },
        });
        if self.bugs.journal_created_in_place {
            // The old code fsync'd the directory right after creating the empty file.
            self.begin(OpKind::FsyncDir)?;
            self.fsync_dir(&dir);
        }
        self.effect(Effect::Data {
            ino: JOURNAL_INO,
            op: DataOp::SetLen(0),
        });
        self.effect(Effect::Data {
            ino: JOURNAL_INO,
            op: DataOp::Meta(FileMeta::NEW_FILE),
        });
        Ok(())
    }

    /// Finish building a new journal: fsync it, rename it in, fsync the directory.
    pub fn finish_journal_creation(&mut self) -> io::Result<()> {
        let dir = PathBuf::from(STATE_DIR);
        if self.bugs.journal_created_in_place {
            return Ok(());
        }
        self.begin(OpKind::FsyncFile)?;
        self.fsync_ino(JOURNAL_INO);
        self.begin(OpKind::Rename)?;
        self.effect(Effect::Entry {
            dir: dir.clone(),
            op: EntryOp::Rename {
                from: JOURNAL_TEMP_NAME.into(),
                to: JOURNAL_NAME.into(),
            },
        });
        self.begin(OpKind::FsyncDir)?;
        self.fsync_dir(&dir);
        Ok(())
    }

    /// The state a crash right now would choose from.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            at: self.ops,
            durable: self.durable.clone(),
            pending: self.pending.clone(),
        }
    }

    /// Make everything durable (a clean shutdown).
    pub fn sync_all(&mut self) {
        for e in std::mem::take(&mut self.pending) {
            self.durable.apply(&e, Fate::Kept);
        }
        debug_assert_eq!(self.durable.fingerprint(), self.live.fingerprint());
    }

    /// Start one storage operation: crash, inject a fault, or go ahead.
    fn begin(&mut self, kind: OpKind) -> io::Result<()> {
        let r = self.begin_inner(kind);
        if trace_on() {
            eprintln!(
                "sim op {:>4} {kind:?}: {}",
                self.ops.saturating_sub(1),
                match &r {
                    Ok(()) => "ok".to_string(),
                    Err(e) => e.to_string(),
                }
            );
        }
        r
    }

    fn begin_inner(&mut self, kind: OpKind) -> io::Result<()> {
        if self.crashed.is_some() {
            return Err(power_off());
        }
        let n = self.ops;
        self.ops += 1;
        self.op_log.push(kind);
        if self.crash_at == Some(n) {
            let mut snap = self.snapshot();
            snap.at = n;
            self.crashed = Some(snap);
            return Err(power_off());
        }
        let fault = match self.faults_at.get(&n) {
            Some(f) => Some(*f),
            None => match &mut self.random_faults {
                Some(plan) if (kind.may_eio() || kind.may_enospc()) && plan.per_million > 0 => {
                    if plan.rng.below(1_000_000) >= plan.per_million {
                        None
                    } else if kind.may_enospc() && (!kind.may_eio() || plan.rng.chance(1, 2)) {
                        Some(Fault::Enospc)
                    } else {
                        Some(Fault::Eio)
                    }
                }
                _ => None,
            },
        };
        match fault {
            Some(Fault::Eio) if kind.may_eio() => {
                self.faults_injected += 1;
                Err(io::Error::from_raw_os_error(libc_eio()))
            }
            Some(Fault::Enospc) if kind.may_enospc() => {
                self.faults_injected += 1;
                Err(io::Error::from_raw_os_error(libc_enospc()))
            }
            _ => Ok(()),
        }
    }

    fn effect(&mut self, e: Effect) {
        if trace_on() {
            match &e {
                Effect::Data { ino, op } => eprintln!(
                    "           effect ino {ino} {}",
                    match op {
                        DataOp::Write { offset, bytes } =>
                            format!("write {} @ {offset}", bytes.len()),
                        DataOp::SetLen(l) => format!("set_len {l}"),
                        DataOp::Meta(m) => format!("meta {m:?}"),
                    }
                ),
                Effect::Entry { dir, op } => {
                    eprintln!("           effect {} {op:?}", dir.display())
                }
            }
        }
        self.live.apply(&e, Fate::Kept);
        self.pending.push(e);
    }

    /// fsync of a file: its data and metadata effects become durable.
    fn fsync_ino(&mut self, ino: Ino) {
        let mut rest = Vec::with_capacity(self.pending.len());
        for e in std::mem::take(&mut self.pending) {
            match &e {
                Effect::Data { ino: i, .. } if *i == ino => self.durable.apply(&e, Fate::Kept),
                _ => rest.push(e),
            }
        }
        self.pending = rest;
    }

    /// fsync of a directory: its entry effects become durable.
    fn fsync_dir(&mut self, dir: &Path) {
        let mut rest = Vec::with_capacity(self.pending.len());
        for e in std::mem::take(&mut self.pending) {
            match &e {
                Effect::Entry { dir: d, .. } if d == dir => self.durable.apply(&e, Fate::Kept),
                _ => rest.push(e),
            }
        }
        self.pending = rest;
    }

    fn alloc_ino(&mut self) -> Ino {
        let i = self.next_ino;
        self.next_ino += 1;
        i
    }
}

/// Whether `KHARDEN_SIM_TRACE` is set: print every storage operation and effect (to replay a
/// failing VOPR seed step by step).
pub fn trace_on() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("KHARDEN_SIM_TRACE").is_some())
}

fn libc_eio() -> i32 {
    5
}
fn libc_enospc() -> i32 {
    28
}

fn power_off() -> io::Error {
    io::Error::other("simulated power cut: the machine is off")
}

/// The world, shared by the storage, the redb backend and the explorer.
pub type Shared = Arc<Mutex<World>>;

/// Lock the world. A poisoned lock only means a panic in another user of the world (a test
/// thread that failed); the model itself is still consistent, since every mutation is a single
/// `apply` under the lock.
pub fn lock(w: &Shared) -> MutexGuard<'_, World> {
    w.lock().unwrap_or_else(|p| p.into_inner())
}

/// `kharden::durable::Storage` on the simulated disk, step for step as `RealStorage`.
#[derive(Debug, Clone)]
pub struct SimStorage {
    pub world: Shared,
}

fn io_err(path: &Path, step: &'static str, e: io::Error) -> DurableError {
    DurableError::Io {
        path: path.to_path_buf(),
        step,
        source: e,
    }
}

fn bad(path: &Path) -> DurableError {
    DurableError::BadPath {
        path: path.to_path_buf(),
    }
}

impl Storage for SimStorage {
    fn read(&self, path: &Path) -> Result<Option<FileState>, DurableError> {
        let w = lock(&self.world);
        Ok(w.live.file(path).map(|i| FileState {
            contents: i.data.clone(),
            meta: i.meta,
            // Hard links are not simulated.
            nlink: 1,
        }))
    }

    fn replace(
        &self,
        path: &Path,
        contents: &[u8],
        meta: &FileMeta,
        tag: &TempName,
        expect: Expect,
    ) -> Result<(), DurableError> {
        let (dir, name) = split(path).ok_or_else(|| bad(path))?;
        let mut w = lock(&self.world);
        // A fresh name per attempt, as `RealStorage` picks it.
        let mut attempt = 0;
        let (temp, temp_name) = loop {
            let temp = tag.path(path, attempt).ok_or_else(|| bad(path))?;
            let (_, temp_name) = split(&temp).ok_or_else(|| bad(path))?;
            let taken = w
                .live
                .dirs
                .get(&dir)
                .is_some_and(|d| d.contains_key(&temp_name));
            if !taken || attempt >= 64 || tag.tag == kharden::journal::TEMP_TAG_V1 {
                break (temp, temp_name);
            }
            attempt += 1;
        };
        if !w.live.dirs.contains_key(&dir) {
            return Err(io_err(
                path,
                "open directory",
                io::Error::from(io::ErrorKind::NotFound),
            ));
        }
        // openat(O_CREAT|O_EXCL): one operation that links a new inode.
        w.begin(OpKind::CreateTemp)
            .map_err(|e| io_err(&temp, "create temp file", e))?;
        if w.live
            .dirs
            .get(&dir)
            .is_some_and(|d| d.contains_key(&temp_name))
        {
            return Err(io_err(
                &temp,
                "create temp file",
                io::Error::from(io::ErrorKind::AlreadyExists),
            ));
        }
        let ino = w.alloc_ino();
        w.effect(Effect::Entry {
            dir: dir.clone(),
            op: EntryOp::Link {
                name: temp_name.clone(),
                ino,
            },
        });
        // Up to the rename, a failed step unlinks the temp file (best effort, no directory
        // fsync), as `RealStorage` does on its error path.
        let prepared = (|| {
            // fchown + fchmod (+ xattrs): metadata before the first byte.
            w.begin(OpKind::SetMeta)
                .map_err(|e| io_err(&temp, "chmod temp file", e))?;
            w.effect(Effect::Data {
                ino,
                op: DataOp::Meta(*meta),
            });
            w.begin(OpKind::WriteFile)
                .map_err(|e| io_err(&temp, "write temp file", e))?;
            w.effect(Effect::Data {
                ino,
                op: DataOp::Write {
                    offset: 0,
                    bytes: contents.to_vec(),
                },
            });
            if !w.bugs.skip_file_fsync {
                w.begin(OpKind::FsyncFile)
                    .map_err(|e| io_err(&temp, "fsync temp file", e))?;
                w.fsync_ino(ino);
            }
            // The last look before the rename (a read: no storage operation).
            let now = w.live.file(path).map(|i| i.data.clone());
            if !expect.holds(now.as_deref()) {
                return Err(DurableError::Moved {
                    path: path.to_path_buf(),
                });
            }
            w.begin(OpKind::Rename)
                .map_err(|e| io_err(path, "rename temp file over target", e))
        })();
        if let Err(e) = prepared {
            if w.begin(OpKind::Unlink).is_ok() {
                w.effect(Effect::Entry {
                    dir: dir.clone(),
                    op: EntryOp::Unlink { name: temp_name },
                });
            }
            return Err(e);
        }
        w.effect(Effect::Entry {
            dir: dir.clone(),
            op: EntryOp::Rename {
                from: temp_name,
                to: name,
            },
        });
        if !w.bugs.skip_dir_fsync {
            w.begin(OpKind::FsyncDir)
                .map_err(|e| io_err(path, "fsync directory", e))?;
            w.fsync_dir(&dir);
        }
        Ok(())
    }

    fn remove(&self, path: &Path, expect: Expect) -> Result<(), DurableError> {
        let (dir, name) = split(path).ok_or_else(|| bad(path))?;
        let mut w = lock(&self.world);
        if !w.live.dirs.contains_key(&dir) {
            return Ok(());
        }
        let now = w.live.file(path).map(|i| i.data.clone());
        if now.is_some() && !expect.holds(now.as_deref()) {
            return Err(DurableError::Moved {
                path: path.to_path_buf(),
            });
        }
        w.begin(OpKind::Unlink)
            .map_err(|e| io_err(path, "unlink", e))?;
        if w.live.dirs.get(&dir).is_some_and(|d| d.contains_key(&name)) {
            w.effect(Effect::Entry {
                dir: dir.clone(),
                op: EntryOp::Unlink { name },
            });
        }
        if !w.bugs.skip_dir_fsync {
            w.begin(OpKind::FsyncDir)
                .map_err(|e| io_err(path, "fsync directory", e))?;
            w.fsync_dir(&dir);
        }
        Ok(())
    }

    fn remove_temps(&self, path: &Path, tag: &TempName) -> Result<Vec<PathBuf>, DurableError> {
        let (dir, _) = split(path).ok_or_else(|| bad(path))?;
        let mut w = lock(&self.world);
        let names: Vec<String> = w
            .live
            .dirs
            .get(&dir)
            .map(|d| d.keys().filter(|n| tag.matches(path, n)).cloned().collect())
            .unwrap_or_default();
        let mut removed = Vec::new();
        for temp_name in names {
            let temp = dir.join(&temp_name);
            w.begin(OpKind::Unlink)
                .map_err(|e| io_err(&temp, "remove temp file", e))?;
            w.effect(Effect::Entry {
                dir: dir.clone(),
                op: EntryOp::Unlink { name: temp_name },
            });
            removed.push(temp);
        }
        if !removed.is_empty() {
            w.begin(OpKind::FsyncDir)
                .map_err(|e| io_err(path, "fsync directory", e))?;
            w.fsync_dir(&dir);
        }
        Ok(removed)
    }

    fn list(&self, dir: &Path) -> Result<Option<Vec<String>>, DurableError> {
        let w = lock(&self.world);
        Ok(w.live.dirs.get(dir).map(|d| d.keys().cloned().collect()))
    }

    fn inode(&self, path: &Path) -> Result<Option<FileInode>, DurableError> {
        let w = lock(&self.world);
        if w.live.dirs.contains_key(path) {
            // Directory metadata is not simulated: every directory reads 0755 root:root.
            return Ok(Some(FileInode {
                directory: true,
                hash: DIRECTORY_HASH,
                len: 0,
                meta: FileMeta {
                    mode: 0o755,
                    uid: 0,
                    gid: 0,
                },
                nlink: 2,
            }));
        }
        Ok(w.live.file(path).map(|i| FileInode {
            directory: false,
            hash: hash(&i.data),
            len: i.data.len() as u64,
            meta: i.meta,
            nlink: 1,
        }))
    }

    fn set_meta(
        &self,
        path: &Path,
        meta: &FileMeta,
        expect: &FileInode,
    ) -> Result<(), DurableError> {
        let (dir, name) = split(path).ok_or_else(|| bad(path))?;
        let mut w = lock(&self.world);
        if w.live.dirs.contains_key(path) {
            return Err(io_err(
                path,
                "chmod",
                io::Error::new(
                    io::ErrorKind::Unsupported,
                    "directory metadata is not simulated",
                ),
            ));
        }
        let ino = w.live.dirs.get(&dir).and_then(|d| d.get(&name)).copied();
        let now = w.live.file(path);
        let same = now.is_some_and(|i| {
            !expect.directory && hash(&i.data) == expect.hash && i.meta == expect.meta
        });
        let (Some(ino), true) = (ino, same) else {
            return Err(DurableError::Moved {
                path: path.to_path_buf(),
            });
        };
        // fchown + fchmod on the open descriptor: one metadata effect of the inode.
        w.begin(OpKind::SetMeta)
            .map_err(|e| io_err(path, "chmod", e))?;
        w.effect(Effect::Data {
            ino,
            op: DataOp::Meta(*meta),
        });
        if !w.bugs.skip_meta_fsync {
            w.begin(OpKind::FsyncFile)
                .map_err(|e| io_err(path, "fsync", e))?;
            w.fsync_ino(ino);
        }
        Ok(())
    }

    fn sync(&self, path: &Path) -> Result<(), DurableError> {
        let (dir, name) = split(path).ok_or_else(|| bad(path))?;
        let mut w = lock(&self.world);
        if !w.live.dirs.contains_key(&dir) || w.bugs.skip_found_sync {
            return Ok(());
        }
        if let Some(ino) = w.live.dirs.get(&dir).and_then(|d| d.get(&name)).copied() {
            w.begin(OpKind::FsyncFile)
                .map_err(|e| io_err(path, "fsync file", e))?;
            w.fsync_ino(ino);
        }
        w.begin(OpKind::FsyncDir)
            .map_err(|e| io_err(path, "fsync directory", e))?;
        w.fsync_dir(&dir);
        Ok(())
    }
}

/// redb's `StorageBackend` on the journal file of the simulated disk: writes go to the live
/// image and the unsynced list; `sync_data` is the durability point.
#[derive(Clone)]
pub struct SimBackend {
    pub world: Shared,
}

impl std::fmt::Debug for SimBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SimBackend")
    }
}

fn journal_inode(w: &World) -> io::Result<&Inode> {
    w.live
        .inodes
        .get(&JOURNAL_INO)
        .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
}

/// Byte-range locks: the journal opens redb in `SingleWriter` mode, which needs them. The
/// simulation runs one kharden at a time (the lock file of DESIGN.md invariant 7 is not what is
/// under test here), so every lock is granted and nothing else ever holds one.
impl redb::StorageBackend for SimBackend {
    fn try_lock_range(
        &self,
        _start: Bound<u64>,
        _end: Bound<u64>,
    ) -> Result<bool, redb::BackendError> {
        Ok(true)
    }

    fn try_lock_shared_range(
        &self,
        _start: Bound<u64>,
        _end: Bound<u64>,
    ) -> Result<bool, redb::BackendError> {
        Ok(true)
    }

    fn lock_range(&self, _start: Bound<u64>, _end: Bound<u64>) -> Result<(), redb::BackendError> {
        Ok(())
    }

    fn lock_shared_range(
        &self,
        _start: Bound<u64>,
        _end: Bound<u64>,
    ) -> Result<(), redb::BackendError> {
        Ok(())
    }

    fn unlock_range(&self, _start: Bound<u64>, _end: Bound<u64>) -> Result<(), redb::BackendError> {
        Ok(())
    }

    fn query_lock_range(
        &self,
        _start: Bound<u64>,
        _end: Bound<u64>,
    ) -> Result<bool, redb::BackendError> {
        Ok(false)
    }

    fn len(&self) -> Result<u64, io::Error> {
        let w = lock(&self.world);
        Ok(journal_inode(&w)?.data.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        let w = lock(&self.world);
        let data = &journal_inode(&w)?.data;
        let start =
            usize::try_from(offset).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let end = start + out.len();
        if end > data.len() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "read past the end of the journal",
            ));
        }
        out.copy_from_slice(&data[start..end]);
        Ok(())
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        let mut w = lock(&self.world);
        w.begin(OpKind::DbSetLen)?;
        w.effect(Effect::Data {
            ino: JOURNAL_INO,
            op: DataOp::SetLen(len),
        });
        Ok(())
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        let mut w = lock(&self.world);
        w.begin(OpKind::DbSync)?;
        if !w.bugs.journal_sync_noop {
            w.fsync_ino(JOURNAL_INO);
        }
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        let mut w = lock(&self.world);
        w.begin(OpKind::DbWrite)?;
        w.effect(Effect::Data {
            ino: JOURNAL_INO,
            op: DataOp::Write {
                offset,
                bytes: data.to_vec(),
            },
        });
        Ok(())
    }
}
