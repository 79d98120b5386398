//! Independent checks that a configuration edit did exactly what was intended.
//!
//! Why it exists: the splicing code could be wrong in ways no unit test foresaw. Before an edit
//! is returned, (1) the output is re-parsed by an independent parser (serde_yaml, libyaml-based)
//! and the **whole** document is compared with serde_yaml's reading of the input with only the
//! intended changes applied; for a JSON file, the output must also be valid JSON (serde_json)
//! with that same meaning; (2) the output is read back with this crate's own parser and the
//! kubelet's YAML 1.1 typing: every value written must read back with the intended type and
//! value (a string that a YAML 1.1 reader would take for a boolean is a failure here even though
//! serde_yaml, a YAML 1.2 reader, would accept it). An edit that fails either check is an error;
//! its output is never returned.

use crate::doc::{self, strip_bom, Walk};
use crate::edit::{self, ConfigChange, Scalar};
use crate::error::{failed, Error};
use crate::keypath::KeyPath;
use crate::tree::{Kind, Node, Style};
use crate::yaml11::{self, Resolved};
use serde::Deserialize;
use serde_yaml::{Mapping, Value};

pub(crate) fn failed_msg(reason: impl Into<String>) -> Error {
    failed(reason)
}

/// The one document of `text` as serde_yaml reads it (a leading byte-order mark is skipped).
pub(crate) fn serde_doc(text: &str) -> Result<Value, String> {
    let mut docs = Vec::new();
    for d in serde_yaml::Deserializer::from_str(strip_bom(text)) {
        docs.push(Value::deserialize(d).map_err(|e| e.to_string())?);
    }
    match (docs.pop(), docs.is_empty()) {
        (Some(v), true) => Ok(v),
        _ => Err("not exactly one document".into()),
    }
}

fn to_value(s: &Scalar) -> Value {
    match s {
        Scalar::Bool(b) => Value::Bool(*b),
        Scalar::Int(i) => Value::Number((*i).into()),
        Scalar::Str(s) => Value::String(s.clone()),
    }
}

/// `doc` with `change` applied, as serde_yaml should read the output.
pub(crate) fn apply(mut doc: Value, change: &ConfigChange) -> Result<Value, Error> {
    match change {
        ConfigChange::Set { path, value } => set_at(&mut doc, path, to_value(value))?,
        ConfigChange::SetList { path, items } => set_at(
            &mut doc,
            path,
            Value::Sequence(items.iter().map(to_value).collect()),
        )?,
        ConfigChange::Unset { path } => unset_at(&mut doc, path)?,
    }
    Ok(doc)
}

fn set_at(doc: &mut Value, path: &KeyPath, leaf: Value) -> Result<(), Error> {
    let segs = path.segments();
    let mut cur = doc;
    for (i, seg) in segs.iter().enumerate() {
        let Value::Mapping(m) = cur else {
            return Err(failed(format!(
                "serde_yaml does not see `{}` as a mapping",
                path.prefix(i)
            )));
        };
        let key = Value::String(seg.clone());
        if i + 1 == segs.len() {
            m.insert(key, leaf);
            return Ok(());
        }
        if !m.contains_key(&key) {
            m.insert(key.clone(), Value::Mapping(Mapping::new()));
        }
        cur = m
            .get_mut(&key)
            .ok_or_else(|| failed("serde_yaml lost a key"))?;
    }
    Ok(())
}

fn unset_at(doc: &mut Value, path: &KeyPath) -> Result<(), Error> {
    let segs = path.segments();
    let mut cur = doc;
    for (i, seg) in segs.iter().enumerate() {
        let Value::Mapping(m) = cur else {
            return Err(failed(format!(
                "serde_yaml does not see `{}` as a mapping",
                path.prefix(i)
            )));
        };
        let key = Value::String(seg.clone());
        if i + 1 == segs.len() {
            m.remove(&key);
            return Ok(());
        }
        match m.get_mut(&key) {
            Some(next) => cur = next,
            None => return Ok(()),
        }
    }
    Ok(())
}

/// Compare the output's parse with the expected document (and, for JSON, its JSON reading).
pub(crate) fn compare(expected: &Value, output: &str, json: bool) -> Result<(), Error> {
    let got = serde_doc(output).map_err(|e| failed(format!("the output does not parse: {e}")))?;
    if got != *expected {
        let which = match (&got, expected) {
            (Value::Mapping(g), Value::Mapping(e)) => e
                .iter()
                .find(|(k, v)| g.get(*k) != Some(*v))
                .map(|(k, _)| k)
                .or_else(|| g.keys().find(|k| !e.contains_key(*k)))
                .and_then(Value::as_str)
                .map(|k| format!(" (at `{k}`)"))
                .unwrap_or_default(),
            _ => String::new(),
        };
        return Err(failed(format!(
            "the output differs from the intended result{which}"
        )));
    }
    if json {
        let j: serde_json::Value = serde_json::from_str(strip_bom(output))
            .map_err(|e| failed(format!("the output is no longer valid JSON: {e}")))?;
        let as_yaml = serde_yaml::to_value(&j)
            .map_err(|e| failed(format!("the output's JSON cannot be compared: {e}")))?;
        if as_yaml != *expected {
            return Err(failed(
                "the output's JSON reading differs from the intended result",
            ));
        }
    }
    Ok(())
}

fn overlaps(a: &KeyPath, b: &KeyPath) -> bool {
    let (a, b) = (a.segments(), b.segments());
    let n = a.len().min(b.len());
    a[..n] == b[..n]
}

/// Whether `node` reads back (YAML 1.1, the kubelet's typing) as `want`.
fn reads_as(node: &Node, want: &Scalar) -> bool {
    if node.props {
        return false;
    }
    match &node.kind {
        Kind::Scalar {
            value,
            style: Style::Plain,
        } => match (yaml11::resolve(value), want) {
            (Resolved::Bool(a), Scalar::Bool(b)) => a == *b,
            (Resolved::Int(a), Scalar::Int(b)) => a == *b,
            (Resolved::Str(a), Scalar::Str(b)) => a == *b,
            _ => false,
        },
        Kind::Scalar { value, .. } => matches!(want, Scalar::Str(s) if s == value),
        _ => false,
    }
}

/// Read the output back with this crate's parser and check each change's final effect under
/// the kubelet's YAML 1.1 typing.
pub(crate) fn typed_readback(output: &str, changes: &[ConfigChange]) -> Result<(), Error> {
    let root = edit::reload(output)?;
    for (i, c) in changes.iter().enumerate() {
        if changes[i + 1..]
            .iter()
            .any(|l| overlaps(l.path(), c.path()))
        {
            continue;
        }
        let path = c.path();
        let found = doc::walk(&root, path)
            .map_err(|e| failed(format!("the output cannot be walked ({})", e.reason)))?;
        let node = match found {
            Walk::Missing { .. } => {
                if matches!(c, ConfigChange::Unset { .. }) {
                    continue;
                }
                return Err(failed(format!("`{path}` is missing from the output")));
            }
            Walk::Found(trail) => {
                let Some(&(map, j)) = trail.last() else {
                    return Err(failed("empty key path"));
                };
                match map.map_pairs().and_then(|p| p.get(j)) {
                    Some((_, v)) => v,
                    None => return Err(failed("the output's key path moved")),
                }
            }
        };
        let ok = match c {
            ConfigChange::Unset { .. } => false,
            ConfigChange::Set { value, .. } => reads_as(node, value),
            ConfigChange::SetList { items, .. } => match node.seq_items() {
                Some(got) => {
                    got.len() == items.len() && got.iter().zip(items).all(|(n, w)| reads_as(n, w))
                }
                None => false,
            },
        };
        if !ok {
            return Err(failed(format!(
                "`{path}` does not read back as intended for the kubelet's YAML 1.1 reader ({c})"
            )));
        }
    }
    Ok(())
}
