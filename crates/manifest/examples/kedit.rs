//! Developer tool: apply changes to a manifest and print the result (or the refusal).
//!
//! `cargo run -p kharden-manifest --example kedit -- FILE [--container NAME] [--diff] --set a=b --unset c ...`
//! (`--mount NAME:HOSTPATH:MOUNTPATH[:ro]` adds a hostPath mount.)

// Test and tool code: a panic is how it fails, and it prints, writes its fixtures and reads
// the clock directly. The product rules of the workspace lints do not apply.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::disallowed_methods
)]

use kharden_manifest::{edit, Change, Mount};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(file) = args.next() else {
        eprintln!("usage: kedit FILE [--container NAME] [--diff] CHANGE...");
        std::process::exit(2);
    };
    let mut container = None;
    let mut changes = Vec::new();
    let mut diff = false;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--diff" => diff = true,
            "--container" => container = args.next(),
            "--mount" => {
                let spec = args.next().unwrap_or_default();
                let p: Vec<&str> = spec.split(':').collect();
                if p.len() < 3 {
                    eprintln!("--mount NAME:HOSTPATH:MOUNTPATH[:ro]");
                    std::process::exit(2);
                }
                changes.push(Change::Mount(Mount {
                    name: p[0].into(),
                    host_path: p[1].into(),
                    mount_path: p[2].into(),
                    read_only: p.get(3) == Some(&"ro"),
                    path_type: None,
                }));
            }
            kind => {
                let arg = args.next().unwrap_or_default();
                match Change::parse_cli(kind.trim_start_matches('-'), &arg) {
                    Ok(c) => changes.push(c),
                    Err(e) => {
                        eprintln!("{e}");
                        std::process::exit(2);
                    }
                }
            }
        }
    }
    let input = match std::fs::read(&file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{file}: {e}");
            std::process::exit(1);
        }
    };
    match edit(&input, container.as_deref(), &changes) {
        Ok(e) => {
            if diff {
                let before = String::from_utf8_lossy(&input);
                let after = String::from_utf8_lossy(&e.output);
                let (b, a): (Vec<&str>, Vec<&str>) =
                    (before.lines().collect(), after.lines().collect());
                let p = b.iter().zip(&a).take_while(|(x, y)| x == y).count();
                let s = b[p..]
                    .iter()
                    .rev()
                    .zip(a[p..].iter().rev())
                    .take_while(|(x, y)| x == y)
                    .count();
                println!("@@ line {} @@", p + 1);
                for l in &b[p..b.len() - s] {
                    println!("-{l}");
                }
                for l in &a[p..a.len() - s] {
                    println!("+{l}");
                }
                println!("replaced: {:?}", e.replaced);
            } else {
                print!("{}", String::from_utf8_lossy(&e.output));
            }
        }
        Err(e) => {
            eprintln!("{file}: {e}");
            std::process::exit(1);
        }
    }
}
