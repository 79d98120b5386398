//! Text rendering shared by the commands: times, hashes, unified diffs.

use similar::TextDiff;

/// `YYYY-MM-DD HH:MM:SS` UTC from milliseconds since the epoch.
pub fn time(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// The first 12 hex digits of a hash.
pub fn short(hash: &[u8; 32]) -> String {
    crate::journal::hex(hash)[..12].to_string()
}

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

#[cfg(test)]
mod tests {
    #[test]
    fn formats_utc_times() {
        assert_eq!(super::time(0), "1970-01-01 00:00:00");
        assert_eq!(super::time(1_795_000_000_000), "2026-11-18 11:06:40");
        assert_eq!(super::time(951_782_400_000), "2000-02-29 00:00:00");
    }
}
