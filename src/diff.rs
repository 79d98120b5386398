//! Unified diffs of two versions of a file, for reports (`--dry-run`, `journal diff`, the
//! summary of a committed change).

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
