//! The kubelet's configuration, for kharden: a format-preserving `KubeletConfiguration` editor,
//! a format-preserving editor of kubelet flags in environment files, and the kubelet's
//! effective configuration (flags over `--config-dir` drop-ins over the `--config` file over the
//! v1beta1 defaults). Pure: bytes in, bytes out, no file or process I/O.
//!
//! Why a crate of its own: section 4.2 of the CIS benchmark is about the kubelet, whose settings
//! live in up to four places with precedence rules of their own. kharden must (1) know the value
//! the kubelet really runs with and which place decided it, so that it changes the place that
//! wins and can explain a disagreement with kube-bench; and (2) change that place exactly, the
//! way the manifest editor changes a static pod: splice the bytes, keep everything else, verify
//! the result with an independent parser, refuse with the line and the reason whatever it cannot
//! do with certainty. The transaction, the restart and the gate live in the binary; this crate
//! only computes.
//!
//! # Decisions (details in `docs/kubelet-config.md`)
//!
//! - **Typed values.** The kubelet decodes its file with a YAML 1.1 reader and typed fields:
//!   booleans and integers are written plain, strings (durations included) plain only when every
//!   reader sees a string, else quoted; values with line breaks or control characters are
//!   refused. [`ConfigChange::parse_set`] types `KEY=VALUE` by the setting's type.
//! - **Layout.** New keys copy the file's indentation step and go at their sorted place when the
//!   mapping's keys are sorted (kubeadm writes them sorted), else at the end; new lists copy how
//!   the file writes lists (kubeadm's `- item` at the key's column, or flow `[a, b]`).
//! - **Refusals.** Anchors, aliases, tags, merge keys, duplicate keys on the path; several
//!   documents; a non-mapping where a mapping is needed; block scalars being edited; invalid
//!   UTF-8/YAML; files over [`MAX_CONFIG_BYTES`] (before or after).
//! - **JSON.** A file that is a JSON object is edited as JSON, span for span like YAML (JSON is
//!   YAML's flow style): keys and strings double-quoted, new entries with the object's own
//!   separators and indentation; the result must still parse as JSON.
//! - **Verification.** The whole output is re-parsed with serde_yaml and must equal the input's
//!   parse with exactly the intended change; written values must read back with the intended
//!   type under YAML 1.1. Environment-file edits are re-read with the same systemd parser and
//!   checked with [`kharden_manifest::Flags`] and [`kharden_manifest::Change::holds_in`].
//! - **Environment files** are read as systemd's `EnvironmentFile=` and an unquoted `$VAR` in
//!   `ExecStart=` read them (see [`envfile`]); edits splice only the words they change.
//! - **Effective configuration** follows the kubelet's code (see [`effective`](mod@effective)).

mod doc;
pub mod duration;
mod edit;
pub mod effective;
pub mod envfile;
mod error;
mod keypath;
pub mod schema;
mod splice;
mod tree;
mod verify;
mod yaml11;

pub use doc::{ConfigDoc, FileValue, Format, YamlValue, MAX_CONFIG_BYTES};
pub use duration::GoDuration;
pub use edit::{edit_config, ConfigChange, ConfigEdited, Scalar};
pub use effective::{
    dropin_order, effective, is_dropin, ConfigSource, Effective, Layer, Note, Setting, Source,
    Sources,
};
pub use envfile::{
    edit_env_flags, env_flags, split_exec_words, Assignment, EnvEdited, EnvFile, FlagChange,
    Ignored, MAX_ENV_BYTES,
};
pub use error::{Error, ErrorKind};
pub use keypath::KeyPath;
pub use schema::{feature_gate, key, keys, DefaultRule, KeySpec, Lit, Value, ValueType, KEYS};
