//! Every report as text, and as the command's [`Output`]: the one place kharden's text is
//! written. The JSON document is the report itself (serde).

use super::Output;
use kharden::harden::{HardenReport, StepOutcome};
use kharden::journal::State;
use kharden::report::{
    event_text, DiffReport, EditReport, LogReport, PruneReport, RecoverSummary, ResolveReport,
    ShowReport, TxnReport, VerifyReport,
};
use kharden::txn::RecoveryAction;
use serde::Serialize;

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

fn short(hash_hex: &str) -> &str {
    hash_hex.get(..12).unwrap_or(hash_hex)
}

/// An [`Output`] from a report, its text and where that goes.
pub fn output<R: Serialize>(report: &R, code: u8, text: String, stderr: String) -> Output {
    let outcome = text
        .lines()
        .chain(stderr.lines())
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or("")
        .to_string();
    Output {
        json: serde_json::to_value(report).unwrap_or(serde_json::Value::Null),
        text: text.into_bytes(),
        stderr,
        code,
        outcome,
    }
}

pub fn txn(r: &TxnReport) -> Output {
    let (text, stderr) = match r.result {
        "unchanged" => (format!("{}: unchanged (already so)\n", r.file), String::new()),
        "dry-run" => (r.diff.clone(), String::new()),
        "committed" => (
            format!(
                "{}transaction {} committed: {}\n",
                r.diff,
                r.txid.unwrap_or_default(),
                r.file
            ),
            String::new(),
        ),
        "rolled-back" => (
            String::new(),
            format!(
                "transaction {} ROLLED BACK: {}\nthe previous {} is {}; see `kharden journal show {0}`\n",
                r.txid.unwrap_or_default(),
                r.reason.as_deref().unwrap_or(""),
                r.file,
                r.verified.map(|v| v.text()).unwrap_or("restored"),
            ),
        ),
        "needs-manual" => (
            String::new(),
            format!(
                "transaction {} NEEDS MANUAL INTERVENTION: {}\n",
                r.txid.unwrap_or_default(),
                r.reason.as_deref().unwrap_or("")
            ),
        ),
        "left-open" => (
            String::new(),
            format!(
                "transaction {} LEFT OPEN: {}\n",
                r.txid.unwrap_or_default(),
                r.reason.as_deref().unwrap_or("")
            ),
        ),
        _ => (
            String::new(),
            format!(
                "transaction {} {}: {}\n",
                r.txid.unwrap_or_default(),
                r.result.to_uppercase(),
                r.reason.as_deref().unwrap_or("")
            ),
        ),
    };
    output(r, r.exit_code, text, stderr)
}

pub fn edit(r: &EditReport) -> Output {
    let mut o = output(r, r.exit_code, String::new(), String::new());
    o.text = r.bytes.clone();
    o.outcome = format!("{}: edited, nothing written", r.file);
    o
}

pub fn recover(r: &RecoverSummary) -> Output {
    let mut text = String::new();
    if r.report.transactions.is_empty() {
        text.push_str("nothing to recover: no open transaction\n");
    }
    for t in &r.report.transactions {
        text.push_str(&format!(
            "transaction {} (found {}): {} -> {}\n",
            t.txid,
            t.found,
            t.action.text(),
            t.ended.map(State::name).unwrap_or("left open")
        ));
        for p in &t.temps_removed {
            text.push_str(&format!("  removed temp file {p}\n"));
        }
        for p in &t.conflicts {
            if t.action == RecoveryAction::LeftConflict {
                text.push_str(&format!(
                    "  CONFLICT: {p} matches neither side (its contents are kept in the journal)\n"
                ));
            } else {
                text.push_str(&format!(
                    "  overwritten (--force): {p} matched neither side (its contents are kept in the journal)\n"
                ));
            }
        }
    }
    text.push_str(&reminder(&r.unresolved));
    output(r, r.exit_code, text, String::new())
}

/// NeedsManual transactions still waiting for the operator: recovery cannot finish them (a
/// person must), but says so at every boot until `kharden journal resolve` is run.
pub fn reminder(unresolved: &[u64]) -> String {
    unresolved
        .iter()
        .map(|id| {
            format!(
                "transaction {id} still needs manual intervention: its files are refused to every change until `kharden journal resolve {id}` (see `kharden journal show {id}`)\n"
            )
        })
        .collect()
}

fn glyph(s: State) -> &'static str {
    match s {
        State::Committed => "○",
        State::RolledBack | State::Aborted => "◌",
        State::NeedsManual => "✗",
        _ => "@",
    }
}

pub fn log(r: &LogReport) -> Output {
    let mut text = String::new();
    for (i, t) in r.transactions.iter().enumerate() {
        text.push_str(&format!(
            "{}  {} {}{} {}\n",
            glyph(t.state),
            t.txid,
            t.state,
            if t.unresolved { " (unresolved)" } else { "" },
            time(t.created_ms)
        ));
        let bar = if i + 1 == r.transactions.len() {
            " "
        } else {
            "│"
        };
        text.push_str(&format!("{bar}  {}\n", t.summary));
        for f in &t.files {
            let metadata = matches!(f.scope, kharden::journal::Scope::Metadata { .. });
            let side = |i: &Option<kharden::report::ImageView>| {
                i.as_ref()
                    .map(|i| {
                        if metadata {
                            format!("{} {}:{}", i.mode, i.uid, i.gid)
                        } else {
                            short(&i.hash).to_string()
                        }
                    })
                    .unwrap_or_else(|| "(absent)".into())
            };
            text.push_str(&format!(
                "{bar}  {} {} -> {}\n",
                f.path,
                side(&f.before),
                side(&f.after)
            ));
        }
        if let Some(reason) = &t.reason {
            text.push_str(&format!("{bar}  reason: {reason}\n"));
        }
    }
    if r.transactions.is_empty() {
        text.push_str("no transactions\n");
    }
    output(r, r.exit_code, text, String::new())
}

pub fn show(r: &ShowReport) -> Output {
    let t = &r.txn;
    let mut text = format!(
        "transaction {}  {}\n  {}\n  kind: {}\n  created: {}  updated: {}\n",
        t.txid,
        t.state,
        t.summary,
        t.kind,
        time(t.created_ms),
        time(t.updated_ms)
    );
    if t.gate.enabled {
        text.push_str(&format!(
            "  gate: timeout {}s, stable for {}s, deadline {}\n",
            t.gate.timeout_secs,
            t.gate.stable_for_secs,
            time(t.deadline_ms)
        ));
    } else {
        text.push_str("  gate: disabled\n");
    }
    if let Some(reason) = &t.reason {
        text.push_str(&format!("  reason: {reason}\n"));
    }
    for f in &t.files {
        match f.scope {
            kharden::journal::Scope::Metadata { directory } => text.push_str(&format!(
                "  {} {} (mode and owner; the contents are its identity, not kept)\n",
                if directory { "directory" } else { "file" },
                f.path
            )),
            kharden::journal::Scope::Contents => text.push_str(&format!("  file {}\n", f.path)),
        }
        for (side, img) in [("before", &f.before), ("after", &f.after)] {
            match img {
                Some(i) => text.push_str(&format!(
                    "    {side:6} blake3 {} {} bytes mode {} owner {}:{}\n",
                    i.hash, i.len, i.mode, i.uid, i.gid
                )),
                None => text.push_str(&format!("    {side:6} absent\n")),
            }
        }
        for c in &f.changes {
            text.push_str(&format!("    change: {c}\n"));
        }
        for s in &f.settings {
            text.push_str(&format!("    setting: {s}\n"));
        }
        if !f.controls.is_empty() {
            text.push_str(&format!("    controls: {}\n", f.controls.join(", ")));
        }
    }
    text.push_str("  events:\n");
    for e in &r.events {
        text.push_str(&format!(
            "    {}  {}\n",
            time(e.time_ms),
            event_text(&e.kind)
        ));
    }
    output(r, r.exit_code, text, String::new())
}

pub fn diff(r: &DiffReport) -> Output {
    let text: String = r.files.iter().map(|f| f.diff.as_str()).collect();
    output(r, r.exit_code, text, String::new())
}

pub fn verify(r: &VerifyReport) -> Output {
    let mut text = format!("{} transactions, {} open: ", r.transactions, r.open);
    if r.faults.is_empty() {
        text.push_str(
            "journal OK (redb integrity, every blob re-hashed, every state machine replayed)\n",
        );
    } else {
        text.push_str(&format!("{} FAULT(S)\n", r.faults.len()));
        for f in &r.faults {
            text.push_str(&format!(
                "  {}{}\n",
                f.txid
                    .map(|t| format!("transaction {t}: "))
                    .unwrap_or_default(),
                f.what
            ));
        }
    }
    output(r, r.exit_code, text, String::new())
}

pub fn prune(r: &PruneReport) -> Output {
    let text = format!(
        "pruned {} transaction(s) and {} unreferenced blob(s); kept the newest {} finished ones and every open one\n",
        r.pruned_transactions, r.pruned_blobs, r.keep
    );
    output(r, r.exit_code, text, String::new())
}

pub fn resolve(r: &ResolveReport) -> Output {
    let text = format!(
        "transaction {} resolved: kharden may change {} again\n",
        r.txid,
        r.files.join(", ")
    );
    output(r, r.exit_code, text, String::new())
}

pub fn harden(r: &HardenReport) -> Output {
    let mut text = String::new();
    for s in r.steps.iter().filter(|s| s.outcome == StepOutcome::Planned) {
        text.push_str(&format!(
            "== plan: {} on {}\n{}",
            s.controls.join(", "),
            s.component,
            s.diff
        ));
    }
    text.push_str(&format!(
        "\n== harden {} summary{}\n",
        r.benchmark,
        if r.dry_run {
            " (dry run: nothing changed)"
        } else {
            ""
        }
    ));
    if !r.benchmark_reason.is_empty() {
        text.push_str(&format!("  why: {}\n", r.benchmark_reason));
    }
    text.push_str(&format!(
        "passed before: {}\n",
        if r.passed_before.is_empty() {
            "none".into()
        } else {
            r.passed_before.join(", ")
        }
    ));
    for (label, outcome) in [
        ("fixed", StepOutcome::Fixed),
        ("planned", StepOutcome::Planned),
        ("rolled back", StepOutcome::RolledBack),
        ("interrupted", StepOutcome::Interrupted),
        ("needs manual", StepOutcome::NeedsManual),
        ("aborted (changed by another writer)", StepOutcome::Aborted),
        ("refused", StepOutcome::Refused),
        ("blocked", StepOutcome::Blocked),
    ] {
        let l: Vec<String> = r
            .steps
            .iter()
            .filter(|s| s.outcome == outcome)
            .map(|s| {
                let mut t = s.controls.join(", ");
                if s.bisected {
                    t.push_str(" [together; split to find the culprit]");
                } else if s.culprit {
                    t.push_str(" [CULPRIT: the component does not start or stay healthy with it]");
                }
                if let Some(x) = s.txid {
                    t.push_str(&format!(" (transaction {x})"));
                }
                if let Some(reason) = &s.reason {
                    t.push_str(&format!(": {reason}"));
                }
                t
            })
            .collect();
        if !l.is_empty() {
            text.push_str(&format!("{label}:\n"));
            for x in l {
                text.push_str(&format!("  {x}\n"));
            }
        }
    }
    if !r.manual.is_empty() {
        text.push_str("left manual:\n");
        for m in &r.manual {
            text.push_str(&format!("  {}: {}\n", m.id, m.reason));
        }
    }
    if !r.not_evaluated.is_empty() {
        text.push_str("not evaluated:\n");
        for m in &r.not_evaluated {
            text.push_str(&format!("  {}: {}\n", m.id, m.reason));
        }
    }
    if !r.reapplied.is_empty() {
        text.push_str(&format!(
            "re-applied after drift (committed before, undone since): {}\n",
            r.reapplied.join(", ")
        ));
    }
    if !r.dry_run {
        text.push_str(&format!(
            "automatable controls still failing: {}\n",
            if r.still_failing.is_empty() {
                "none".into()
            } else {
                r.still_failing.join(", ")
            }
        ));
    }
    let stderr: String = r
        .unreadable
        .iter()
        .map(|u| format!("kharden: {}: {}\n", u.path, u.why))
        .collect();
    output(r, r.exit_code, text, stderr)
}

/// `kharden kubelet set`: the transaction's result, where each change went, what an upgrade
/// would undo.
pub fn kubelet(r: &kharden::kubelet::KubeletReport) -> Output {
    let mut out = txn(&r.txn);
    let mut notes = String::new();
    if r.txn.result != "unchanged" || r.placements.iter().any(|p| p.file != "-") {
        for p in &r.placements {
            notes.push_str(&format!("{}: {} ({})\n", p.change, p.file, p.why));
        }
    }
    if !r.kept.is_empty() {
        notes.push_str(&format!(
            "static pods kept running through the restart: {}\n",
            r.kept.join(", ")
        ));
    }
    for n in &r.upgrade_notes {
        notes.push_str(&format!("note: {n}\n"));
    }
    if !notes.is_empty() {
        let mut text = notes.into_bytes();
        text.extend_from_slice(&out.text);
        out.text = text;
    }
    out.json = serde_json::to_value(r).unwrap_or(serde_json::Value::Null);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_utc_times() {
        assert_eq!(super::time(0), "1970-01-01 00:00:00");
        assert_eq!(super::time(1_795_000_000_000), "2026-11-18 11:06:40");
        assert_eq!(super::time(951_782_400_000), "2000-02-29 00:00:00");
    }

    #[test]
    fn exit_codes_are_the_documented_ones() {
        use kharden::exit::*;
        assert_eq!(
            [
                SUCCESS,
                ERROR,
                USAGE,
                ROLLED_BACK_GATE,
                ROLLED_BACK_AUDIT,
                NEEDS_MANUAL,
                CONFLICT,
                LOCKED,
                JOURNAL_FAULT,
                INTERRUPTED,
                DRIFT,
                INTERNAL
            ],
            [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 70]
        );
    }
}
