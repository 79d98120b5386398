//! Kubelet and kube-proxy checks (sections 4.2 and 4.3): kube-bench's verdict and the
//! effective one.
//!
//! kube-bench's reading, per test item (check/check.go `execute`): the flag is searched in the
//! process's `ps -fC` line (substring, first occurrence, `--flag value` reads `true`); only when
//! it is not there does kube-bench evaluate the item's JSONPath on the file `$kubeletconf`
//! resolved to ([`crate::config_path`]). A key missing from that file is "not set": the kubelet's
//! defaults are not applied, the kubelet's own `--config` is not consulted when it is another
//! file, and `--config-dir` drop-ins are never read. A file that is not YAML or JSON makes every
//! path item fail; a process that is not running makes the audit command fail (FAIL/WARN).
//!
//! The effective reading takes the value the component really uses for each key (flags over
//! drop-ins over the file over the defaults, computed by the caller with the kubelet's rules:
//! [`crate::facts::ConfigFacts::effective`]) and judges it with the component's parser, or with
//! the check's [`EffectiveRule`] where kube-bench's test is a poor proxy for the control.

use serde::Serialize;

use crate::audit::{ConfigTest, EffectiveRule};
use crate::config_path;
use crate::effective;
use crate::eval::Status;
use crate::facts::{ConfigContent, EffectiveValue, NodeFacts, ValueSource};
use crate::kube_bench::{self, ItemOutcome};
use crate::model::{BinOp, Check, Component, TestItem};
use crate::result::{CheckResult, Detail, MissingFact};
use kharden_manifest::flags::{parse_bool, parse_int};
use kharden_manifest::Flags;

/// Both readings of one test item of a configuration check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigReading {
    /// The flag kube-bench searches on the command line.
    pub flag: &'static str,
    /// The configuration key of the item's path (`authentication.anonymous.enabled`), if any.
    pub key: Option<String>,
    /// What kube-bench read; `None` when it found nothing.
    pub kube_bench: Option<String>,
    /// Where kube-bench read it: `command line`, the file's path, or why it found nothing.
    pub kube_bench_source: String,
    /// The value the component uses; `None` when unset (even after defaults) or unknown.
    pub effective: Option<String>,
    /// Where that value comes from (`flag --read-only-port`, a drop-in, `the default`), or
    /// `unknown` when the caller gave no effective value for the key.
    pub effective_source: String,
}

/// How kube-bench read one item.
struct KbItem {
    outcome: ItemOutcome,
    source: String,
}

fn kube_bench_item(item: &TestItem, line: &str, file: Option<&crate::facts::ConfigDoc>) -> KbItem {
    let from_flags = kube_bench::evaluate_text(item, line);
    if from_flags.found {
        return KbItem {
            outcome: from_flags,
            source: "the command line".to_string(),
        };
    }
    let Some(doc) = file else {
        return KbItem {
            outcome: from_flags,
            source: "not on the command line".to_string(),
        };
    };
    let (value, json) = match &doc.content {
        ConfigContent::Missing | ConfigContent::Empty | ConfigContent::Unreadable(_) => {
            return KbItem {
                outcome: from_flags,
                source: format!(
                    "not on the command line, and {} is missing or empty",
                    doc.path
                ),
            };
        }
        ConfigContent::Unparseable(e) => (Err(e.clone()), false),
        ConfigContent::Json(v) => (Ok(v), true),
        ConfigContent::Yaml(v) => (Ok(v), false),
    };
    let path = item.path.map(config_path::parse);
    let text: Result<String, String> = match (value, path) {
        (Err(e), _) => Err(format!("{} is neither JSON nor YAML: {e}", doc.path)),
        (Ok(_), None) => Ok(String::new()),
        (Ok(_), Some(Err(e))) => Err(e.to_string()),
        (Ok(v), Some(Ok(p))) => p.read(v, json),
    };
    let outcome = kube_bench::evaluate_path(item, text.as_deref().map_err(String::as_str));
    let source = match (&text, outcome.found) {
        (Err(e), _) => format!("{e} (the item fails)"),
        (Ok(_), true) => doc.path.clone(),
        (Ok(_), false) => format!("not on the command line, not in {}", doc.path),
    };
    KbItem { outcome, source }
}

/// `time.ParseDuration`'s zero test: `None` when not a Go duration.
fn duration_is_zero(s: &str) -> Option<bool> {
    let s = s.trim_start_matches(['+', '-']);
    if s == "0" {
        return Some(true);
    }
    if s.is_empty() {
        return None;
    }
    let mut rest = s;
    let mut zero = true;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_end);
        if num.is_empty() || num == "." {
            return None;
        }
        let unit_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_end);
        if !matches!(unit, "ns" | "us" | "µs" | "μs" | "ms" | "s" | "m" | "h") {
            return None;
        }
        if num.chars().any(|c| c.is_ascii_digit() && c != '0') {
            zero = false;
        }
        rest = next;
    }
    Some(zero)
}

/// The host of `host:port` (`[v6]:port` too).
fn host_of(addr: &str) -> &str {
    if let Some(rest) = addr.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match addr.rsplit_once(':') {
        Some((h, _)) => h,
        None => addr,
    }
}

/// The effective value of an item: from the component's flags for a flag-only item, else the
/// caller's effective value of the path's key. `Err(())`: not known.
fn effective_item(
    item: &TestItem,
    c: Component,
    facts: &NodeFacts,
) -> (Option<String>, Result<Option<String>, ()>, String) {
    match item.path.map(config_path::parse) {
        None => {
            let v = facts
                .argv(c)
                .and_then(|a| Flags::parse(a).effective(item.name()).map(str::to_string));
            (None, Ok(v), format!("{c}'s command line"))
        }
        Some(Err(_)) => (None, Err(()), "unknown".to_string()),
        Some(Ok(p)) => {
            let key = p.key();
            match facts.config(c).effective.get(&key) {
                None => (Some(key), Err(()), "unknown".to_string()),
                Some(EffectiveValue { value, source }) => (
                    Some(key),
                    Ok(value.clone().filter(|v| !v.is_empty())),
                    source.to_string(),
                ),
            }
        }
    }
}

fn effective_of<'a>(facts: &'a NodeFacts, c: Component, key: &str) -> Option<&'a EffectiveValue> {
    facts.config(c).effective.get(key)
}

/// Evaluate a kubelet or kube-proxy check (both readings).
pub(crate) fn evaluate_config(
    check: &Check,
    t: &ConfigTest,
    facts: &NodeFacts,
) -> Result<CheckResult, MissingFact> {
    let cf = facts.config(t.process);
    let file = match t.config_var {
        Some(v) => Some(
            cf.kube_bench_file
                .as_ref()
                .ok_or(MissingFact::ConfigFile(v))?,
        ),
        None => None,
    };
    let argv = facts.argv(t.process);

    // kube-bench's reading.
    let audit_error = match (argv, file.map(|f| &f.content)) {
        (None, _) => Some(format!(
            "{} is not running: `ps -fC {}` finds no process",
            t.process,
            t.process.name()
        )),
        (Some(_), Some(ConfigContent::Unreadable(e))) => Some(format!(
            "`cat {}` fails: {e}",
            file.map(|f| f.path.as_str()).unwrap_or_default()
        )),
        _ => None,
    };
    let line = argv.map(kube_bench::audit_line).unwrap_or_default();
    let kb_items: Vec<KbItem> = t
        .items
        .iter()
        .map(|i| kube_bench_item(i, &line, file))
        .collect();
    let outcomes: Vec<ItemOutcome> = kb_items.iter().map(|k| k.outcome.clone()).collect();
    let (kb_pass, expected) = if audit_error.is_some() {
        (false, String::new())
    } else {
        kube_bench::combine(t.bin_op, &outcomes)
    };
    let status = if check.manual {
        Status::Manual
    } else {
        Status::of(kb_pass, check.scored)
    };

    // The effective reading.
    let mut readings = Vec::new();
    let mut item_results: Vec<Option<bool>> = Vec::new();
    for (item, kb) in t.items.iter().zip(&kb_items) {
        let (key, value, source) = effective_item(item, t.process, facts);
        item_results.push(
            value
                .as_ref()
                .ok()
                .map(|v| effective::item_passes(item, v.as_deref())),
        );
        readings.push(ConfigReading {
            flag: item.flag,
            key,
            kube_bench: kb.outcome.value.clone(),
            kube_bench_source: kb.source.clone(),
            effective: value.ok().flatten(),
            effective_source: source,
        });
    }
    let value_of = |key: &str| effective_of(facts, t.process, key).map(|e| e.value.clone());
    let (effective, effective_note): (Option<bool>, Option<String>) = match t.effective {
        EffectiveRule::Items => {
            if item_results.iter().any(Option::is_none) {
                (
                    None,
                    Some("no effective value given for some of the check's keys".to_string()),
                )
            } else {
                let r = item_results.iter().flatten();
                let v = match t.bin_op {
                    BinOp::And => r.clone().all(|b| *b),
                    BinOp::Or => r.clone().any(|b| *b),
                };
                (Some(v), None)
            }
        }
        EffectiveRule::DurationNotZero { key } => match value_of(key) {
            None => (None, Some(format!("no effective value given for {key}"))),
            Some(None) => (Some(true), None),
            Some(Some(v)) => match duration_is_zero(&v) {
                Some(zero) => (
                    Some(!zero),
                    zero.then(|| format!("{key} is {v}: no timeout")),
                ),
                None => (Some(false), Some(format!("{key} is {v:?}, not a duration"))),
            },
        },
        EffectiveRule::PositiveInt { key } => match value_of(key) {
            None => (None, Some(format!("no effective value given for {key}"))),
            Some(v) => {
                let ok = v.as_deref().and_then(parse_int).is_some_and(|n| n > 0);
                (
                    Some(ok),
                    (!ok).then(|| {
                        format!("{key} is {}: no limit", v.as_deref().unwrap_or("not set"))
                    }),
                )
            }
        },
        EffectiveRule::BoolTrue { key } => match value_of(key) {
            None => (None, Some(format!("no effective value given for {key}"))),
            Some(v) => {
                let ok = v.as_deref().and_then(parse_bool) == Some(true);
                (
                    Some(ok),
                    (!ok).then(|| format!("{key} is {}", v.as_deref().unwrap_or("not set"))),
                )
            }
        },
        EffectiveRule::HostIs { key, host } => match value_of(key) {
            None => (None, Some(format!("no effective value given for {key}"))),
            Some(None) => (Some(false), Some(format!("{key} is not set"))),
            Some(Some(v)) => {
                let ok = host_of(&v) == host;
                (
                    Some(ok),
                    (!ok).then(|| format!("{key} is {v}, not on {host}")),
                )
            }
        },
        EffectiveRule::Unknown { reason } => (None, Some(reason.to_string())),
    };

    let disagreement = match effective {
        Some(e) if e != kb_pass && !check.manual && audit_error.is_none() => {
            let mut why: Vec<String> = Vec::new();
            if let (Some(doc), Some(own)) = (file, &cf.config_path) {
                if crate::facts::normalize_path(&doc.path) != crate::facts::normalize_path(own) {
                    why.push(format!(
                        "kube-bench reads {} (${}), but the {}'s --config is {own}",
                        doc.path,
                        t.config_var.unwrap_or(""),
                        t.process
                    ));
                }
            }
            for r in &readings {
                if r.kube_bench == r.effective {
                    continue;
                }
                let name = r.key.clone().unwrap_or_else(|| r.flag.to_string());
                let kb = match &r.kube_bench {
                    Some(v) => format!("kube-bench reads {v:?} from {}", r.kube_bench_source),
                    None => format!("kube-bench finds {name} {}", r.kube_bench_source),
                };
                let defaulted = r
                    .key
                    .as_deref()
                    .and_then(|k| effective_of(facts, t.process, k))
                    .is_some_and(|e| e.source == ValueSource::Default);
                let eff = match (&r.effective, r.effective_source.as_str()) {
                    (Some(v), _) if defaulted => format!(
                        "the {} uses its default {v:?}, which kube-bench does not apply",
                        t.process
                    ),
                    (Some(v), src) => format!("the {} uses {v:?} (from {src})", t.process),
                    (None, _) => format!("the {} has no value for it", t.process),
                };
                let line = format!("{name}: {kb}; {eff}");
                if !why.contains(&line) {
                    why.push(line);
                }
            }
            for r in &readings {
                if let Some(k) = &r.key {
                    if let Some(EffectiveValue {
                        source: ValueSource::DropIn { path },
                        ..
                    }) = effective_of(facts, t.process, k)
                    {
                        why.push(format!(
                            "a --config-dir drop-in ({path}) sets {k}, which kube-bench never reads"
                        ));
                    }
                }
            }
            if t.process == Component::KubeProxy && t.config_var == Some("proxykubeconfig") {
                why.push(
                    "kube-bench looks for the key in kube-proxy's kubeconfig, which never holds \
                     it"
                    .to_string(),
                );
            }
            if let Some(n) = &effective_note {
                why.push(n.clone());
            }
            Some(format!(
                "kube-bench {} this check but the {}'s effective configuration {} it ({})",
                if kb_pass { "passes" } else { "fails" },
                t.process,
                if e { "satisfies" } else { "does not satisfy" },
                why.join("; ")
            ))
        }
        _ => None,
    };
    let actual_value = match kb_items.first() {
        Some(k) if k.source == "the command line" => Some(line.clone()),
        Some(k) => Some(k.outcome.value.clone().unwrap_or_default()),
        None => None,
    };
    Ok(CheckResult {
        id: check.id,
        key: check.key,
        status: Some(status),
        kube_bench: (!check.manual).then_some(kb_pass),
        effective,
        effective_note,
        reason: audit_error.map(|e| format!("the audit command fails: {e}")),
        disagreement,
        actual_value,
        expected: (!check.manual).then_some(expected),
        detail: Detail::Config { readings },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_hosts() {
        assert_eq!(duration_is_zero("0"), Some(true));
        assert_eq!(duration_is_zero("0s"), Some(true));
        assert_eq!(duration_is_zero("0h0m0s"), Some(true));
        assert_eq!(duration_is_zero("4h0m0s"), Some(false));
        assert_eq!(duration_is_zero("1.5m"), Some(false));
        assert_eq!(duration_is_zero("5"), None);
        assert_eq!(duration_is_zero("abc"), None);
        assert_eq!(host_of("127.0.0.1:10249"), "127.0.0.1");
        assert_eq!(host_of("[::1]:10249"), "::1");
        assert_eq!(host_of("0.0.0.0"), "0.0.0.0");
    }
}
