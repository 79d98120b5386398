//! Every change kind on every manifest of the shared corpus (../shared/corpus/manifests),
//! when that corpus is present; skipped with a message otherwise.

// Test and tool code: a panic is how it fails, and it prints, writes its fixtures and reads
// the clock directly. The product rules of the workspace lints do not apply.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::disallowed_methods
)]

mod common;

use common::{changes_for, checked, round_trips};
use kharden_manifest::inspect;
use std::path::PathBuf;

fn corpus_dir() -> Option<PathBuf> {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/manifests");
    d.is_dir().then_some(d)
}

#[test]
fn corpus_every_change_kind() {
    let Some(dir) = corpus_dir() else {
        println!("corpus not found (../shared/corpus/manifests): skipped");
        return;
    };
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let (mut ok, mut changed, mut refused, mut not_target) = (0, 0, 0, 0);
    for f in &files {
        let input = std::fs::read(f).unwrap();
        let short = f.file_name().unwrap().to_string_lossy();
        let info = match inspect(&input, None) {
            Ok(i) => i,
            Err(e) => {
                println!("{short}: inspect refused: {e}");
                not_target += 1;
                continue;
            }
        };
        println!(
            "{short}: container {} component {:?} flags_start {}",
            info.container, info.component, info.flags_start
        );
        for ch in changes_for(info.component.as_deref()) {
            match checked(&input, None, &ch) {
                Ok(e) => {
                    ok += 1;
                    if !e.unchanged() {
                        changed += 1;
                    }
                }
                Err(e) => {
                    refused += 1;
                    println!("  {ch}: refused: {e}");
                }
            }
        }
        for (name, item) in [
            ("enable-admission-plugins", "KhardenTest"),
            ("authorization-mode", "Webhook"),
            ("kharden-list", "x"),
        ] {
            round_trips(&input, None, name, item);
        }
    }
    println!("corpus: {} files, {ok} edits ok ({changed} changed the file), {refused} refused, {not_target} files refused by inspect", files.len());
}
