//! The command line: parse, set up logging, call the library, render its typed report, exit
//! with the code the library decided. The only place kharden prints.
//!
//! Promises kept here (DESIGN.md invariant 12):
//! - `-o json` prints exactly one JSON document on stdout, on every path: success, a refused
//!   command, a usage error caught by the argument parser, `--help`, an internal error;
//! - no panic reaches the user: a panic (a bug) is caught, reported in one line, exit 70;
//! - a closed stdout (`| head -0`) is a normal end; any other write error is reported on
//!   stderr together with the command's real outcome and exit code.
// The one place kharden prints (clippy denies printing everywhere else).
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod args;
mod commands;
mod progress;
mod render;
mod render_audit;

use args::{Cli, LogFormat, OutputFormat};
use clap::{CommandFactory, FromArgMatches};
use kharden::exit;
use kharden::report::ErrorReport;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Mutex;

/// What a command produced: the JSON document, the text, where the text goes, and the exit
/// code its report carries.
pub struct Output {
    pub json: serde_json::Value,
    /// Printed on stdout in text mode.
    pub text: Vec<u8>,
    /// Printed on stderr in text mode (the news of a rollback belongs there).
    pub stderr: String,
    pub code: u8,
    /// One line for stderr when stdout cannot be written.
    pub outcome: String,
}

/// Logs go to stderr (text or `--log-format json`), never to stdout, so `-o json` stays one
/// document. Under systemd (`JOURNAL_STREAM` is set for a unit's stderr), text logs go to the
/// journal instead, with their levels and fields, when it can be reached.
fn init_logging(cli: &Cli) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{EnvFilter, Layer};
    let level = if cli.quiet {
        "error"
    } else {
        match cli.verbose {
            0 => "warn",
            1 => "info",
            2 => "debug",
            _ => "trace",
        }
    };
    let filter = EnvFilter::try_from_env("KHARDEN_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let under_systemd = std::env::var_os("JOURNAL_STREAM").is_some();
    let journald = match (under_systemd, cli.log_format) {
        (true, LogFormat::Text) => tracing_journald::layer().ok(),
        _ => None,
    };
    let stderr = match (&journald, cli.log_format) {
        (Some(_), _) => None,
        (None, LogFormat::Json) => Some(
            tracing_subscriber::fmt::layer()
                .json()
                .with_writer(std::io::stderr)
                .boxed(),
        ),
        (None, LogFormat::Text) => Some(
            tracing_subscriber::fmt::layer()
                .without_time()
                .with_target(false)
                .with_writer(std::io::stderr)
                .boxed(),
        ),
    };
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(journald.map(|j| j.with_syslog_identifier("kharden".into())))
        .with(stderr)
        .try_init();
}

/// Whether the raw arguments ask for JSON output (for errors the parser raises before there
/// is a parsed command line).
fn wants_json(args: &[String]) -> bool {
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--" => return false,
            "-o" | "--output" if it.next().map(String::as_str) == Some("json") => return true,
            "-ojson" | "-o=json" | "--output=json" => return true,
            _ => {}
        }
    }
    false
}

/// The last panic's message and place, kept by the hook for the one line kharden prints.
static PANIC: Mutex<Option<String>> = Mutex::new(None);

fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let mut slot = PANIC.lock().unwrap_or_else(|p| p.into_inner());
        *slot = Some(format!("{msg}{at}"));
    }));
}

/// Print one JSON document, or the text, and turn write errors into the right exit.
fn emit(out: &Output, json: bool) -> u8 {
    let result = if json {
        let mut doc = out.json.clone();
        if let serde_json::Value::Object(m) = &mut doc {
            m.entry("exit_code").or_insert(out.code.into());
        }
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{doc}").and_then(|_| stdout.flush())
    } else {
        if !out.stderr.is_empty() {
            let _ = std::io::stderr().write_all(out.stderr.as_bytes());
        }
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(&out.text).and_then(|_| stdout.flush())
    };
    match result {
        Ok(()) => out.code,
        // A reader that went away (`| head -0`) ends the output, not the command.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => out.code,
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "kharden: could not write the result to stdout ({e}); the command's outcome: {} (exit code {})",
                out.outcome,
                out.code
            );
            out.code
        }
    }
}

fn emit_error(e: &kharden::Error, json: bool) -> u8 {
    let code = e.exit_code();
    let msg = e.chain();
    error_out(&msg, code, json)
}

fn error_out(msg: &str, code: u8, json: bool) -> u8 {
    if json {
        let doc = serde_json::to_value(ErrorReport {
            result: "error",
            error: msg.to_string(),
            exit_code: code,
        })
        .unwrap_or_default();
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{doc}").and_then(|_| stdout.flush());
    }
    let _ = writeln!(std::io::stderr(), "kharden: {msg}");
    code
}

/// Entry point of the `kharden` binary.
pub fn main() -> ExitCode {
    install_panic_hook();
    let argv: Vec<String> = std::env::args().collect();
    let json = wants_json(&argv);
    let matches = match Cli::command().try_get_matches_from(&argv) {
        Ok(m) => m,
        Err(e) => {
            let informational = !e.use_stderr();
            if json {
                let doc = if informational {
                    serde_json::json!({"result": "help", "text": e.to_string(), "exit_code": 0})
                } else {
                    serde_json::to_value(ErrorReport {
                        result: "usage",
                        error: e.kind().to_string() + ": " + e.to_string().trim(),
                        exit_code: exit::USAGE,
                    })
                    .unwrap_or_default()
                };
                let _ = writeln!(std::io::stdout(), "{doc}");
                if !informational {
                    let _ = e.print();
                }
            } else {
                let _ = e.print();
            }
            return ExitCode::from(if informational {
                exit::SUCCESS
            } else {
                exit::USAGE
            });
        }
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => return ExitCode::from(error_out(&e.to_string(), exit::USAGE, json)),
    };
    init_logging(&cli);
    let json = cli.output == OutputFormat::Json;
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        commands::run(&cli, &matches)
    }));
    let code = match run {
        Ok(Ok(out)) => emit(&out, json),
        Ok(Err(e)) => emit_error(&e, json),
        Err(_) => {
            let what = PANIC
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
                .unwrap_or_else(|| "panic".into());
            error_out(
                &format!("internal error (a bug in kharden): {what}. Run `kharden journal log` and `kharden recover`: they say where any open transaction stands"),
                exit::INTERNAL,
                json,
            )
        }
    };
    ExitCode::from(code)
}
