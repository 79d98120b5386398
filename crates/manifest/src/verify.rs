//! Independent checks that an edit did exactly what was intended.
//!
//! Why it exists: the splicing code could be wrong in ways no unit test foresaw. Before an
//! edit is returned, (1) the intended argv is checked against the change's meaning under the
//! flag parser's rules (the change took effect, every other flag is untouched), and (2) the
//! output is re-parsed by an independent parser (serde_yaml, libyaml-based) and compared with
//! the input's parse by that same parser, with only the intended difference applied. An edit
//! that fails either check is an error; its output is never returned.

use crate::flags::{FlagItem, Flags};
use crate::locate::{err, ListKind, Step};
use crate::plan::{self, Slot};
use crate::{Change, EditError, EditErrorKind};
use serde::Deserialize;
use serde_yaml::{Mapping, Value};

fn failed(reason: impl Into<String>) -> EditError {
    err(
        EditErrorKind::Verification,
        None,
        format!("verification failed, nothing written: {}", reason.into()),
    )
}

/// The documents the output must parse to: serde_yaml's reading of the input (parsed on first
/// use), with each change's intended effect applied.
pub(crate) struct Expected<'a> {
    input: &'a str,
    n_docs: usize,
    docs: Option<Vec<Value>>,
}

impl<'a> Expected<'a> {
    pub(crate) fn new(input: &'a str, n_docs: usize) -> Self {
        Expected {
            input,
            n_docs,
            docs: None,
        }
    }

    /// The documents, parsing the input now if needed. serde_yaml must read the input, and see
    /// as many documents as saphyr does.
    pub(crate) fn get(&mut self) -> Result<&mut Vec<Value>, EditError> {
        if self.docs.is_none() {
            let docs = serde_docs(self.input).map_err(|e| {
                err(
                    EditErrorKind::Syntax,
                    None,
                    format!("the checking parser (serde_yaml) cannot read this file: {e}"),
                )
            })?;
            if docs.len() != self.n_docs {
                return Err(err(
                    EditErrorKind::Syntax,
                    None,
                    format!(
                        "the YAML parsers disagree on the number of documents ({} and {})",
                        self.n_docs,
                        docs.len()
                    ),
                ));
            }
            self.docs = Some(docs);
        }
        Ok(self.docs.get_or_insert_with(Vec::new))
    }
}

/// Every document of `text` as serde_yaml reads it (a leading byte-order mark is an encoding
/// marker, not content, and is skipped).
pub(crate) fn serde_docs(text: &str) -> Result<Vec<Value>, String> {
    let t = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for d in serde_yaml::Deserializer::from_str(t) {
        out.push(Value::deserialize(d).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

/// The value at `path` in document `doc`.
pub(crate) fn value_at_mut<'v>(
    docs: &'v mut [Value],
    doc: usize,
    path: &[Step],
) -> Result<&'v mut Value, EditError> {
    let mut cur = docs
        .get_mut(doc)
        .ok_or_else(|| failed("serde_yaml sees fewer documents"))?;
    for step in path {
        cur = match (step, cur) {
            (Step::Key(k), Value::Mapping(m)) => m
                .get_mut(*k)
                .ok_or_else(|| failed(format!("serde_yaml does not see `{k}`")))?,
            (Step::Index(i), Value::Sequence(s)) => s
                .get_mut(*i)
                .ok_or_else(|| failed("serde_yaml sees fewer containers"))?,
            _ => {
                return Err(failed(
                    "serde_yaml reads the path to the container differently",
                ))
            }
        };
    }
    Ok(cur)
}

/// Rewrite the container's `command`/`args` in `container` (a serde_yaml value) as `lists`.
pub(crate) fn set_lists(
    container: &mut Value,
    lists: &[(ListKind, Vec<Slot>)],
) -> Result<(), EditError> {
    let Value::Mapping(m) = container else {
        return Err(failed("the container is not a mapping for serde_yaml"));
    };
    for (kind, slots) in lists {
        let Some(Value::Sequence(old)) = m.get(kind.key()) else {
            return Err(failed(format!(
                "serde_yaml does not see `{}` as a list",
                kind.key()
            )));
        };
        let mut new = Vec::with_capacity(slots.len());
        for s in slots {
            new.push(match s {
                Slot::Keep(p) => old
                    .get(*p)
                    .cloned()
                    .ok_or_else(|| failed(format!("serde_yaml sees a shorter `{}`", kind.key())))?,
                Slot::New(v) => Value::String(v.clone()),
            });
        }
        m.insert(Value::String(kind.key().to_string()), Value::Sequence(new));
    }
    Ok(())
}

/// Append `item` to the list at `key` of a mapping value.
/// (The list is created when `key` is absent.)
pub(crate) fn push_to(map: &mut Value, key: &str, item: Mapping) -> Result<(), EditError> {
    match map {
        Value::Mapping(m) => match m.get_mut(key) {
            Some(Value::Sequence(s)) => {
                s.push(Value::Mapping(item));
                Ok(())
            }
            None => {
                m.insert(
                    Value::String(key.to_string()),
                    Value::Sequence(vec![Value::Mapping(item)]),
                );
                Ok(())
            }
            _ => Err(failed(format!("serde_yaml does not see `{key}` as a list"))),
        },
        _ => Err(failed("not a mapping for serde_yaml")),
    }
}

/// Compare the output's parse with the expected documents.
pub(crate) fn compare(expected: &[Value], output: &str) -> Result<(), EditError> {
    let got = serde_docs(output).map_err(|e| failed(format!("the output does not parse: {e}")))?;
    if got.len() != expected.len() {
        return Err(failed("the output has a different number of documents"));
    }
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        if g != e {
            return Err(failed(format!(
                "document {} of the output differs from the intended result",
                i + 1
            )));
        }
    }
    Ok(())
}

/// The argv from `flags_start` with every occurrence of `name` (and two-item values) removed.
fn others(argv: &[String], flags_start: usize, name: &str) -> Vec<String> {
    let skip: std::collections::HashSet<usize> = plan::occurrences(argv, flags_start, name)
        .iter()
        .flat_map(FlagItem::indices)
        .collect();
    argv.iter()
        .enumerate()
        .skip(flags_start)
        .filter(|(i, _)| !skip.contains(i))
        .map(|(_, s)| s.clone())
        .collect()
}

/// Check the new argv against the meaning of `change` (a flag change): the flags before the
/// component's own are untouched, no other flag changed, the flag occurs exactly once (the
/// editor consolidates duplicates) or not at all, and the change holds under the flag
/// parser's reading ([`Change::holds_in`]).
pub(crate) fn check_intent(
    change: &Change,
    old: &[String],
    new: &[String],
    old_start: usize,
    new_start: usize,
) -> Result<(), EditError> {
    let Some(raw) = change.flag_name() else {
        return Ok(());
    };
    let name = plan::clean_name(raw)?;
    if old_start != new_start || old.get(..old_start) != new.get(..new_start) {
        return Err(failed("the items before the component's flags changed"));
    }
    if others(old, old_start, name) != others(new, new_start, name) {
        return Err(failed(format!("flags other than --{name} changed")));
    }
    if old == new {
        return Ok(());
    }
    let flags = Flags::parse_from(new, new_start);
    let once = flags.all(name).count() <= 1;
    if once && change.holds_in(&flags) {
        Ok(())
    } else {
        Err(failed(format!("the new argv does not express `{change}`")))
    }
}
