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

fn init_logging(cli: &Cli) {
    use tracing_subscriber::EnvFilter;
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
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match cli.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.without_time().with_target(false).try_init(),
    };
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
