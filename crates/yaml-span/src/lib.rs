//! The ground both of kharden's format-preserving editors stand on: a YAML syntax tree with
//! exact byte spans ([`tree`]), byte splices that remember which ranges of the original they
//! replaced ([`splice`]), and YAML 1.1's typing of plain scalars with the quoting it calls for
//! ([`yaml11`], also the audit's reading of configuration files).
//!
//! Why a crate of its own: the static pod manifest editor (`kharden-manifest`) and the
//! KubeletConfiguration editor (`kharden-kubelet-config`) must agree on where a node starts and
//! ends, byte for byte; one reading, fixed once, serves both. It knows nothing of Kubernetes.

pub mod splice;
pub mod tree;
pub mod yaml11;

pub use splice::{Misplaced, Provenance, Splice};
pub use tree::{Kind, Node, Style, SyntaxError};
