//! The library's error type, and the exit code each error means.
//!
//! Why one type with [`Error::exit_code`]: the exit code is part of kharden's contract with
//! the scripts that run it (Ansible stops a rollout on 3, 4 or 5; systemd restarts nothing on
//! 1). When every call site had to remember its exception to a blanket "error means 1", a
//! refusal for an unresolved needs-manual transaction could come out as 1. Here the variant
//! decides.

use crate::durable::DurableError;
use crate::exit;
use crate::journal::{JournalError, StateDirError, TxId};
use crate::lock::LockError;
use crate::root::RootError;
use crate::txn::TxnError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line asks for something impossible (exit 2).
    #[error("{0}")]
    Usage(String),
    /// Bad input or a file kharden will not touch: nothing changed; `txid` is the journal's
    /// record of the refusal, when there is a journal to record it in.
    #[error("{message}{}", .txid.map(|t| format!(" (refusal recorded as transaction {t})")).unwrap_or_default())]
    Refused {
        message: String,
        txid: Option<TxId>,
        /// The exit code (1, or 5 for a file held by an unresolved needs-manual transaction).
        code: u8,
    },
    /// Automatic recovery before a change found a conflict: nothing changed.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Durable(#[from] DurableError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    StateDir(#[from] StateDirError),
    #[error(transparent)]
    Root(#[from] RootError),
    #[error(transparent)]
    Txn(TxnError),
    /// Anything else that stops a command before it changed anything.
    #[error("{0}")]
    Other(String),
}

impl From<TxnError> for Error {
    fn from(e: TxnError) -> Self {
        match e {
            TxnError::Journal(j) => Error::Journal(j),
            TxnError::Durable(d) => Error::Durable(d),
            other => Error::Txn(other),
        }
    }
}

impl Error {
    pub fn refused(message: impl Into<String>) -> Error {
        Error::Refused {
            message: message.into(),
            txid: None,
            code: exit::ERROR,
        }
    }

    /// The process exit code this error means (README, "Exit codes").
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => exit::USAGE,
            Error::Refused { code, .. } => *code,
            Error::Conflict(_) => exit::CONFLICT,
            Error::Journal(j) if j.is_fault() => exit::JOURNAL_FAULT,
            Error::StateDir(StateDirError::Journal { .. }) => exit::JOURNAL_FAULT,
            Error::Journal(JournalError::StateDir(StateDirError::Journal { .. })) => {
                exit::JOURNAL_FAULT
            }
            Error::Lock(LockError::Held { .. }) => exit::LOCKED,
            Error::Txn(t) => txn_code(t),
            _ => exit::ERROR,
        }
    }

    /// The whole chain of causes, for the one line kharden prints.
    pub fn chain(&self) -> String {
        let mut msg = self.to_string();
        let mut src = std::error::Error::source(self);
        while let Some(s) = src {
            let m = s.to_string();
            if !msg.contains(&m) {
                msg.push_str(": ");
                msg.push_str(&m);
            }
            src = s.source();
        }
        msg
    }
}

fn txn_code(t: &TxnError) -> u8 {
    match t {
        TxnError::Unresolved { .. } => exit::NEEDS_MANUAL,
        TxnError::Recorded { inner, .. } => txn_code(inner),
        TxnError::JournalMidway { .. } | TxnError::CommitUnknown { .. } => exit::JOURNAL_FAULT,
        TxnError::Journal(j) if j.is_fault() => exit::JOURNAL_FAULT,
        _ => exit::ERROR,
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
