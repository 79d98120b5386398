//! The command line (DESIGN.md, "Command line"), as clap derive types.
//!
//! Every number is bounded here, at parse time: a duration or a count out of range is a usage
//! error (exit 2), never an overflow later (`--health-timeout 18446744073709551615` used to
//! panic adding it to the clock). The library's enums know nothing of clap: the few that the
//! command line chooses have a mirror here.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// The longest gate, audit script or lock wait kharden accepts: a day.
pub const MAX_SECS: u64 = 86_400;

#[derive(Debug, Parser)]
#[command(
    name = "kharden",
    version,
    about = "Harden Kubernetes nodes without ever leaving them broken",
    long_about = "kharden changes flags in static pod manifests as transactions: the intent is \
journaled, the file is replaced atomically, kubelet's restart of the component is proven, the \
component must stay healthy, the change is audited on the running process, and only then is the \
transaction committed. Anything else ends in an automatic, verified rollback.",
    after_help = "Exit codes: 0 success, 1 error (nothing changed), 2 usage, 3 rolled back (gate failed), \
4 rolled back (audit failed), 5 needs manual intervention, 6 conflict found by recovery, \
7 lock held by another kharden, 8 journal fault, 9 interrupted by a signal (rolled back, or left \
for recover), 10 drift found, 70 internal error."
)]
pub struct Cli {
    /// Where the journal and the lock live.
    #[arg(
        long,
        global = true,
        env = "KHARDEN_STATE_DIR",
        default_value = "/var/lib/kharden"
    )]
    pub state_dir: PathBuf,
    /// Resolve default host paths (manifests, pki) under this root, as `kubeadm --rootfs` does.
    #[arg(long, global = true, env = "KHARDEN_ROOT")]
    pub root: Option<PathBuf>,
    /// Output format of the result on stdout (logs always go to stderr).
    #[arg(short = 'o', long = "output", global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// More logging on stderr (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Format of the logs on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Wait up to SECS for another kharden to release the lock.
    #[arg(long, global = true, value_name = "SECS", default_value_t = 0,
          value_parser = clap::value_parser!(u64).range(0..=MAX_SECS))]
    pub wait: u64,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Change flags in a manifest as a gated, journaled transaction.
    Apply(ApplyArgs),
    /// Print the edited manifest to stdout; writes nothing.
    Edit(EditArgs),
    /// Finish or revert whatever a crash left open (run at boot before kubelet).
    Recover(RecoverArgs),
    /// Undo a committed transaction, as a new transaction.
    Rollback(RollbackArgs),
    /// Inspect and maintain the journal.
    #[command(subcommand)]
    Journal(JournalCommand),
    /// Evaluate every check of the CIS benchmark that applies to this node (files, flags, the
    /// kubelet), as kube-bench reads it and as it really holds.
    Audit(AuditCmdArgs),
    /// Fix every failing check that can be fixed safely: the files first, then one gated
    /// transaction per component, the kubelet last.
    Harden(HardenArgs),
    /// A self-contained run on a simulated control-plane node and a worker (about 30 s).
    #[cfg(feature = "demo")]
    Demo(DemoArgs),
    /// Print shell completions to stdout.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Change the kubelet's configuration as a gated, journaled transaction (a restart of the
    /// kubelet, proven and probed; rolled back to the last known-good configuration).
    #[command(subcommand)]
    Kubelet(KubeletCommand),
    /// What was undone since kharden committed it (a `kubeadm upgrade`, a hand edit).
    Drift(DriftArgs),
    /// Print the man page (roff) to stdout.
    Man,
}

#[derive(Debug, Subcommand)]
pub enum KubeletCommand {
    /// Set KubeletConfiguration keys (KEY=VALUE, KEY a dotted path such as
    /// authentication.anonymous.enabled), or remove them with --unset.
    Set(KubeletSetArgs),
}

#[derive(Debug, Args)]
pub struct KubeletSetArgs {
    /// KEY=VALUE pairs. VALUE is read as the key's type in KubeletConfiguration v1beta1
    /// (true/false, an integer, a duration such as 4h0m0s, a string); a list is given
    /// comma-separated (tlsCipherSuites=A,B), a feature gate as featureGates.NAME=true.
    #[arg(value_name = "KEY=VALUE")]
    pub settings: Vec<String>,
    /// Remove a key (it takes the kubelet's default).
    #[arg(long, value_name = "KEY")]
    pub unset: Vec<String>,
    /// Print the diff; journal nothing, write nothing, restart nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub gate: GateArgs,
    #[command(flatten)]
    pub safety: SafetyArgs,
}

#[derive(Debug, Args)]
pub struct DriftArgs {
    /// Leave the diffs out of the text output (`-o json` always has them).
    #[arg(long)]
    pub no_diff: bool,
}

#[cfg(feature = "demo")]
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the simulated node's directory (journal, manifests, logs) for poking.
    #[arg(long)]
    pub keep: bool,
}

/// `kharden audit --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// By section: kube-bench's verdict and, beside it, the effective one.
    Text,
    /// kharden's own report (as `-o json`).
    Json,
    /// JUnit XML, one test suite per section.
    Junit,
    /// kube-bench's JSON report, field for field (`kube-bench --json`).
    KubeBenchJson,
    /// node_exporter textfile-collector metrics (exposition format 0.0.4).
    Prometheus,
}

/// Which argv `kharden audit` evaluates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SourceArg {
    /// The running process when found, else the manifest.
    Auto,
    Manifest,
    Running,
}

#[derive(Debug, Args)]
pub struct AuditCmdArgs {
    /// Benchmark version (cis-1.8 ... cis-1.12, cis-2.0); default: chosen from the node's
    /// Kubernetes version, as kube-bench's version_mapping does.
    #[arg(long, value_name = "ID", conflicts_with = "kubernetes_version")]
    pub benchmark: Option<String>,
    /// The Kubernetes version to choose the benchmark from (1.30, v1.30.2) instead of the
    /// version the node runs.
    #[arg(long, value_name = "VERSION")]
    pub kubernetes_version: Option<String>,
    /// kube-bench's targets to run (master, node, etcd, controlplane, policies; comma-separated);
    /// default: chosen from what runs and exists on the node.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub targets: Vec<String>,
    /// Static pod manifests directory (default: <root>/etc/kubernetes/manifests).
    #[arg(long, value_name = "DIR")]
    pub manifests: Option<PathBuf>,
    /// Report format (`-o json` prints kharden's own JSON whatever this says).
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
    /// With --format prometheus: write the metrics to this file atomically (for
    /// node_exporter's textfile collector; the name must end in .prom) instead of stdout.
    #[arg(long, value_name = "PATH")]
    pub textfile: Option<PathBuf>,
    /// Exit with N when a scored control fails (kube-bench's convention); default 0.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub exit_code: u8,
    /// Evaluate the running process (auto: when found), or the manifest.
    #[arg(long, value_enum, default_value_t = SourceArg::Auto)]
    pub source: SourceArg,
}

#[derive(Debug, Args)]
pub struct HardenArgs {
    /// The benchmark (cis-1.8 … cis-1.12, cis-2.0); default: chosen from the node's Kubernetes
    /// version, as `kharden audit` chooses it.
    #[arg(long, value_name = "ID", conflicts_with = "kubernetes_version")]
    pub benchmark: Option<String>,
    /// The Kubernetes version to choose the benchmark from instead of the node's.
    #[arg(long, value_name = "VERSION")]
    pub kubernetes_version: Option<String>,
    #[arg(long, value_name = "DIR")]
    pub manifests: Option<PathBuf>,
    /// Only these control ids (comma-separated).
    #[arg(long, value_name = "IDS", value_delimiter = ',')]
    pub only: Vec<String>,
    /// Skip these control ids (comma-separated).
    #[arg(long, value_name = "IDS", value_delimiter = ',')]
    pub skip: Vec<String>,
    /// Print the plan and the diffs; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// One transaction (one restart, one gate) per control, instead of one per component.
    #[arg(long, conflicts_with = "batch")]
    pub one_per_control: bool,
    /// One transaction per component (the default; kept for scripts written before it was).
    #[arg(long, hide = true)]
    pub batch: bool,
    /// Go on after a rollback (the default stops at the first one).
    #[arg(long)]
    pub keep_going: bool,
    #[command(flatten)]
    pub gate: GateArgs,
    #[command(flatten)]
    pub audit: AuditArgs,
    #[command(flatten)]
    pub safety: SafetyArgs,
}

/// Flag changes, applied in the order given.
#[derive(Debug, Args, Default, Clone)]
pub struct ChangeArgs {
    /// Set a flag: NAME=VALUE, or NAME alone for a bare boolean flag.
    #[arg(long = "set", value_name = "NAME[=VALUE]")]
    pub set: Vec<String>,
    /// Remove every occurrence of a flag.
    #[arg(long = "unset", value_name = "NAME")]
    pub unset: Vec<String>,
    /// Add ITEM to a comma-separated list flag.
    #[arg(long = "add-item", value_name = "NAME=ITEM")]
    pub add_item: Vec<String>,
    /// Remove ITEM from a comma-separated list flag (the flag goes when the list is empty).
    #[arg(long = "remove-item", value_name = "NAME=ITEM")]
    pub remove_item: Vec<String>,
    /// Make an integer flag at least N.
    #[arg(long = "at-least", value_name = "NAME=N")]
    pub at_least: Vec<String>,
    /// Set KEY=VALUE inside a map flag such as --feature-gates.
    #[arg(long = "set-key", value_name = "NAME=KEY=VALUE")]
    pub set_key: Vec<String>,
}

impl ChangeArgs {
    /// The clap ids of the change options, with the change kind each parses to.
    pub const IDS: [(&'static str, &'static str); 6] = [
        ("set", "set"),
        ("unset", "unset"),
        ("add_item", "add-item"),
        ("remove_item", "remove-item"),
        ("at_least", "at-least"),
        ("set_key", "set-key"),
    ];
}

#[derive(Debug, Args, Clone)]
pub struct GateArgs {
    /// Give up on the gate after SECS (1 to 86400; the deadline is stored in the journal).
    #[arg(long, value_name = "SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=MAX_SECS))]
    pub health_timeout: u64,
    /// The component must stay healthy, same process, for SECS (at most --health-timeout).
    #[arg(long, value_name = "SECS", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(0..=MAX_SECS))]
    pub stable_for: u64,
    /// Probe this URL instead of the manifest's own httpGet probe.
    #[arg(long, value_name = "URL")]
    pub health_url: Option<String>,
    /// CA bundle that signs the component's serving certificate (default: <root>/etc/kubernetes/pki/ca.crt).
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Client certificate for the probe (default: kubeadm's apiserver-kubelet-client.crt when present).
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// Client key for the probe.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Do not wait for the restart or probe health (commit right after the write).
    #[arg(long)]
    pub no_gate: bool,
    /// Fail the gate as soon as the new process has crashed N times (0: wait for the
    /// deadline). Every start and exit is seen through the kernel's process events.
    #[arg(long, value_name = "N", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(0..=1000))]
    pub max_crashes: u32,
    /// The systemctl program that restarts the kubelet (kubelet changes).
    #[arg(long, value_name = "PATH", env = "KHARDEN_SYSTEMCTL")]
    pub systemctl: Option<PathBuf>,
    /// The kubelet's systemd unit.
    #[arg(long, value_name = "UNIT", default_value = "kubelet.service")]
    pub kubelet_unit: String,
}

#[derive(Debug, Args, Clone)]
pub struct AuditArgs {
    /// Run this program after the gate; exit 0 passes (argv, no shell).
    #[arg(long, value_name = "PATH")]
    pub audit_script: Option<PathBuf>,
    /// Kill the audit script after SECS (1 to 86400).
    #[arg(long, value_name = "SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=MAX_SECS))]
    pub audit_timeout: u64,
    /// Skip the built-in audit of the running process's argv.
    #[arg(long)]
    pub no_audit: bool,
}

/// What a transaction may override, explicitly.
#[derive(Debug, Args, Clone, Default)]
pub struct SafetyArgs {
    /// Let an automatic rollback write over a file that matches neither side of the
    /// transaction (a hand edit made meanwhile); its contents are still kept in the journal.
    #[arg(long)]
    pub force: bool,
    /// Replace a managed file that has other hard links (they keep the old contents).
    #[arg(long)]
    pub split_hardlinks: bool,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The static pod manifest to change.
    pub manifest: PathBuf,
    /// The container to change (default: the only one, or the one named like the component).
    #[arg(long)]
    pub container: Option<String>,
    #[command(flatten)]
    pub changes: ChangeArgs,
    /// Print the unified diff; journal nothing, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub gate: GateArgs,
    #[command(flatten)]
    pub audit: AuditArgs,
    #[command(flatten)]
    pub safety: SafetyArgs,
}

#[derive(Debug, Args)]
pub struct EditArgs {
    pub manifest: PathBuf,
    #[arg(long)]
    pub container: Option<String>,
    #[command(flatten)]
    pub changes: ChangeArgs,
}

/// `kharden recover --policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PolicyArg {
    /// Restore the before side of an edit that never passed its gate (no network).
    Revert,
    /// Write the after side and gate and audit again.
    Resume,
}

#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// revert: restore the before side of an edit that never passed its gate (no network);
    /// resume: write the after side and gate and audit again.
    #[arg(long, value_enum, default_value_t = PolicyArg::Revert)]
    pub policy: PolicyArg,
    /// Also overwrite files that match neither side of their transaction (their contents are
    /// kept in the journal first).
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub gate: GateArgs,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    pub txid: u64,
    #[command(flatten)]
    pub gate: GateArgs,
    #[command(flatten)]
    pub audit: AuditArgs,
    #[command(flatten)]
    pub safety: SafetyArgs,
}

#[derive(Debug, Subcommand)]
pub enum JournalCommand {
    /// Transactions, newest first.
    Log {
        #[arg(long, default_value_t = 20,
              value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
        limit: u64,
        /// Only transactions in this state (prepared, committed, rolled-back, ...).
        #[arg(long)]
        state: Option<String>,
    },
    /// One transaction with every event and its time.
    Show { txid: u64 },
    /// Unified diff of a transaction's before and after.
    Diff { txid: u64 },
    /// Check redb's integrity, every blob's hash and every state machine.
    Verify,
    /// Delete all but the newest N terminal transactions, then unreferenced blobs.
    Prune {
        #[arg(long, value_parser = clap::value_parser!(u64).range(0..=100_000_000))]
        keep: u64,
    },
    /// Say that a needs-manual transaction's files are dealt with (restored by hand, or
    /// accepted as they are), so that kharden may change them again.
    Resolve {
        txid: u64,
        /// Why, or what was done (kept in the journal).
        #[arg(long)]
        note: Option<String>,
    },
}
