//! kharden: transactional, health-gated hardening of Kubernetes nodes.
//!
//! Every change is a transaction in an embedded redb journal: the intent is made durable first
//! ([`journal`]), the file is replaced atomically under a lock ([`durable`], [`lock`]), the
//! restarted component must pass a health gate and an audit ([`gate`], [`audit`]), and only
//! then is the transaction committed. Anything else ends in a verified rollback.
//! [`txn::recover`] completes or reverts whatever a crash left open.
//!
//! The library does every command; the binary's `cli` module only parses, calls and
//! renders. Layers (each arrow is "uses"; nothing points back up; see docs/architecture.md):
//!
//! ```text
//! cli ──> session ──> txn ──> journal (redb)
//!   │        │         ├────> durable (file effects behind a trait)
//!   │        │         ├────> gate    (restart proof + health probe)
//!   │        │         └────> audit   (built-in argv check; external script)
//!   ├──> harden, assess ──> kharden_catalog (CIS controls as data)
//!   └──> report (typed results)     kharden_manifest (pure YAML editor)
//! ```

pub mod apply;
pub mod assess;
pub mod audit;
pub mod diff;
pub mod drift;
pub mod durable;
pub mod error;
pub mod exit;
pub mod failpoint;
pub mod files;
pub mod gate;
pub mod harden;
pub mod journal;
pub mod kubelet;
pub mod lock;
pub mod report;
pub mod root;
pub mod services;
pub mod session;
pub mod signals;
pub mod txn;
pub mod users;

pub use error::{Error, Result};
