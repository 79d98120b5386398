//! How many checks each benchmark has, per section, and what kharden does with them; the table
//! in docs/cis-catalog.md is this test's output (`cargo test -p kharden-catalog --test counts
//! -- --nocapture`).

// Test and tool code: a panic is how it fails, and it prints, writes its fixtures and reads
// the clock directly. The product rules of the workspace lints do not apply.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::disallowed_methods
)]

use kharden_catalog::{benchmarks, AuditKind, Fix};

#[test]
fn counts_per_version_and_section() {
    let mut totals = Vec::new();
    for b in benchmarks() {
        println!("{}", b.id);
        println!(
            "| section | checks | kube-bench manual | automated fix | manual fix | not evaluated |"
        );
        println!("|---|---|---|---|---|---|");
        let mut sum = [0usize; 5];
        for s in b.sections() {
            let checks: Vec<_> = b.checks.iter().filter(|c| c.section == s.id).collect();
            let not_evaluated = checks
                .iter()
                .filter(|c| c.audit.kind() == AuditKind::NotEvaluated && !c.manual)
                .count();
            let row = [
                checks.len(),
                checks.iter().filter(|c| c.manual).count(),
                checks.iter().filter(|c| c.fix.is_automated()).count(),
                checks
                    .iter()
                    .filter(|c| matches!(c.fix, Fix::Manual { .. }))
                    .count(),
                not_evaluated,
            ];
            for (t, r) in sum.iter_mut().zip(row) {
                *t += r;
            }
            println!(
                "| {} {} | {} | {} | {} | {} | {} |",
                s.id, s.title, row[0], row[1], row[2], row[3], row[4]
            );
        }
        println!(
            "| total | {} | {} | {} | {} | {} |\n",
            sum[0], sum[1], sum[2], sum[3], sum[4]
        );
        assert_eq!(sum[2] + sum[3], sum[0], "{}", b.id);
        totals.push((b.id, sum[0], sum[2]));
    }
    assert_eq!(
        totals
            .iter()
            .map(|(id, n, _)| (*id, *n))
            .collect::<Vec<_>>(),
        [
            ("cis-1.8", 130),
            ("cis-1.9", 130),
            ("cis-1.10", 130),
            ("cis-1.11", 133),
            ("cis-1.12", 131),
            ("cis-2.0", 131),
        ]
    );
}
