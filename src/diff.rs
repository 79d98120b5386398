//! Diffs for reports (`--dry-run`, `journal diff`, the summary of a committed change): unified
//! diffs of two versions of a file's contents, and one-line diffs of a file's metadata.

use crate::durable::{FileMeta, Storage};
use crate::journal::{FileRecord, JournalError, JournalRead};
use crate::txn::{FileOp, Target};
use crate::users::Names;
use similar::TextDiff;

/// A unified diff of two versions of a file (`None`: absent).
pub fn unified(path: &str, before: Option<&[u8]>, after: Option<&[u8]>) -> String {
    let b = before.map(String::from_utf8_lossy).unwrap_or_default();
    let a = after.map(String::from_utf8_lossy).unwrap_or_default();
    let rel = path.trim_start_matches('/');
    let old = if before.is_some() {
        format!("a/{rel}")
    } else {
        "/dev/null".into()
    };
    let new = if after.is_some() {
        format!("b/{rel}")
    } else {
        "/dev/null".into()
    };
    TextDiff::from_lines(b.as_ref(), a.as_ref())
        .unified_diff()
        .context_radius(3)
        .header(&old, &new)
        .to_string()
}

/// A metadata change of one file in one line: `/etc/kubernetes/pki/ca.key: mode 0644 -> 0600,
/// owner kube:kube -> root:root` (only what changes; owners named from the node's tables,
/// numeric where a name is unknown).
pub fn metadata(path: &str, before: FileMeta, after: FileMeta, names: &Names) -> String {
    let mut parts = Vec::new();
    if before.mode != after.mode {
        parts.push(format!("mode {:04o} -> {:04o}", before.mode, after.mode));
    }
    if (before.uid, before.gid) != (after.uid, after.gid) {
        parts.push(format!(
            "owner {} -> {}",
            names.owner(before.uid, before.gid),
            names.owner(after.uid, after.gid)
        ));
    }
    if parts.is_empty() {
        return String::new();
    }
    format!("{path}: {}\n", parts.join(", "))
}

/// The diff of a plan's operations against what the files hold now (`--dry-run`, the summary
/// of `rollback` and `harden`).
pub fn ops(storage: &dyn Storage, ops: &[FileOp], names: &Names) -> String {
    let mut out = String::new();
    for op in ops {
        let path = op.path.display().to_string();
        match &op.target {
            Target::Contents(after) => {
                let cur = storage.read(&op.path).ok().flatten().map(|s| s.contents);
                if cur.as_deref() != after.as_deref() {
                    out.push_str(&unified(&path, cur.as_deref(), after.as_deref()));
                }
            }
            Target::Metadata(after) => {
                if let Ok(Some(now)) = storage.inode(&op.path) {
                    out.push_str(&metadata(&path, now.meta, *after, names));
                }
            }
        }
    }
    out
}

/// The diff a journaled file records, from its before side to its after side: the contents
/// (from the journal's blobs) or the metadata.
pub fn record(
    journal: &impl JournalRead,
    f: &FileRecord,
    names: &Names,
) -> Result<String, JournalError> {
    if f.is_metadata() {
        return Ok(match (&f.before, &f.after) {
            (Some(b), Some(a)) => metadata(&f.path, b.meta, a.meta, names),
            _ => String::new(),
        });
    }
    let b = f
        .before
        .as_ref()
        .map(|i| journal.blob(&i.hash))
        .transpose()?;
    let a = f
        .after
        .as_ref()
        .map(|i| journal.blob(&i.hash))
        .transpose()?;
    Ok(unified(&f.path, b.as_deref(), a.as_deref()))
}
