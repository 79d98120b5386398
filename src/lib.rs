//! kharden: transactional, health-gated hardening of Kubernetes control-plane static pods.
//!
//! Every change to a static pod manifest is a transaction in an embedded redb journal:
//! the intent is made durable first ([`journal`]), the file is replaced atomically under a lock
//! ([`durable`], [`lock`]), the restarted component must pass a health gate and an audit
//! ([`gate`], [`audit`]), and only then is the transaction committed. Anything else ends in a
//! verified rollback. [`txn::recover`] completes or reverts whatever a crash left open.
//!
//! Layers (each arrow is "uses"; nothing points back up):
//!
//! ```text
//! cli ──> txn ──> journal (redb)
//!   │      ├────> durable (file effects behind a trait)
//!   │      ├────> gate    (restart proof + health probe)
//!   │      └────> audit   (built-in argv check; external script)
//!   ├──> kharden_catalog (CIS controls as data)
//!   └──> kharden_manifest (pure YAML editor)
//! ```

pub mod audit;
pub mod cis;
pub mod cli;
pub mod durable;
pub mod exit;
pub mod failpoint;
pub mod gate;
pub mod journal;
pub mod lock;
pub mod paths;
pub mod probe_gate;
pub mod txn;
