//! The command line: parse, set up logging, take the lock, run a command, map the result to
//! an exit code. Errors get their context here, at the edge.

pub mod args;
mod commands;
mod format;

use crate::exit;
use args::{Cli, LogFormat, OutputFormat};
use clap::{CommandFactory, FromArgMatches};
use std::process::ExitCode;

/// A failed command: what to print and which exit code.
#[derive(Debug)]
pub struct CliError {
    pub code: u8,
    pub message: String,
}

impl CliError {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        CliError {
            code,
            message: message.into(),
        }
    }

    /// An error before any change.
    pub fn error(message: impl Into<String>) -> Self {
        Self::new(exit::ERROR, message)
    }
}

impl<E: std::error::Error> From<E> for CliError {
    fn from(e: E) -> Self {
        let mut msg = e.to_string();
        let mut src = e.source();
        while let Some(s) = src {
            let m = s.to_string();
            if !msg.contains(&m) {
                msg.push_str(": ");
                msg.push_str(&m);
            }
            src = s.source();
        }
        CliError::error(msg)
    }
}

pub type CliResult = Result<u8, CliError>;

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

/// Entry point of the `kharden` binary.
pub fn main() -> ExitCode {
    let matches = match Cli::command().try_get_matches() {
        Ok(m) => m,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::SUCCESS
            });
        }
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(exit::USAGE);
        }
    };
    init_logging(&cli);
    let json = cli.output == OutputFormat::Json;
    match commands::run(&cli, &matches) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({"result": "error", "exit_code": e.code, "error": e.message})
                );
            }
            eprintln!("kharden: {}", e.message);
            ExitCode::from(e.code)
        }
    }
}
