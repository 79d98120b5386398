//! What a flag change means for the argv, decided on strings alone.
//!
//! Why it exists: the *decision* (which items to replace, remove or add, and what the new strings
//! are) is kept apart from the *rendering* (bytes, quoting, indentation: `splice.rs`), so that
//! the flag semantics can be read, tested and verified on plain `Vec<String>`s. The rules follow
//! the Kubernetes flag parser (pflag): `-name` and `--name` are the same flag, `_` and `-` in a
//! name are the same (kube's word-separator normalisation), the last occurrence wins, `--` ends
//! the flags, and `--name value` (two items) is one flag.

use crate::flags::{parse_int, FlagItem, FlagValue, Flags};
use crate::locate::err;
use crate::yaml11::check_value;
use crate::{Change, EditError, EditErrorKind};

/// One operation on the argv, by argv index (indices refer to the argv before the change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Op {
    Replace {
        idx: usize,
        value: String,
    },
    Remove {
        idx: usize,
    },
    /// Add a new item right after `argv[idx]`, in the same list.
    InsertAfter {
        idx: usize,
        value: String,
    },
}

impl Op {
    pub(crate) fn idx(&self) -> usize {
        match self {
            Op::Replace { idx, .. } | Op::Remove { idx } | Op::InsertAfter { idx, .. } => *idx,
        }
    }
}

/// Every occurrence of flag `name` in `argv[flags_start..]`, read by the one flag reader.
pub(crate) fn occurrences(argv: &[String], flags_start: usize, name: &str) -> Vec<FlagItem> {
    Flags::parse_from(argv, flags_start)
        .all(name)
        .cloned()
        .collect()
}

/// Where a new flag goes: after the last flag item (or two-item value) of the component's
/// flags, else after the binary.
fn anchor(argv: &[String], flags_start: usize) -> Option<usize> {
    Flags::parse_from(argv, flags_start)
        .end()
        .or_else(|| flags_start.checked_sub(1).filter(|&b| b < argv.len()))
}

/// Validate and return a flag name without leading dashes.
pub(crate) fn clean_name(name: &str) -> Result<&str, EditError> {
    let n = name.trim_start_matches('-');
    if n.is_empty()
        || !n
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(err(
            EditErrorKind::Value,
            None,
            format!("invalid flag name {name:?}"),
        ));
    }
    Ok(n)
}

fn list_item_ok(what: &str, item: &str) -> Result<(), EditError> {
    check_value(what, item)?;
    if item.is_empty() || item.contains(',') {
        return Err(err(
            EditErrorKind::Value,
            None,
            format!("{what} {item:?} must be non-empty and contain no comma"),
        ));
    }
    Ok(())
}

/// What the flag's value should become.
enum Target {
    Unchanged,
    Value(String),
    Remove,
}

/// Plan `change` (a flag change, not a mount) on `argv`. `line_of(idx)` gives the 1-based line
/// of an argv item, for refusals.
pub(crate) fn plan(
    argv: &[String],
    flags_start: usize,
    change: &Change,
    line_of: &dyn Fn(usize) -> usize,
) -> Result<Vec<Op>, EditError> {
    let Some(raw_name) = change.flag_name() else {
        return Ok(Vec::new());
    };
    let name = clean_name(raw_name)?;
    let occs = occurrences(argv, flags_start, name);
    let insert = |value: String| -> Result<Vec<Op>, EditError> {
        match anchor(argv, flags_start) {
            Some(idx)
                if !value.contains('=')
                    && argv.get(idx + 1).is_some_and(|n| !n.starts_with('-')) =>
            {
                Err(err(
                    EditErrorKind::Unsupported,
                    Some(line_of(idx + 1)),
                    format!(
                        "a bare --{name} added here would take the next item ({:?}) as its value",
                        argv[idx + 1]
                    ),
                ))
            }
            Some(idx) => Ok(vec![Op::InsertAfter { idx, value }]),
            None => Err(err(
                EditErrorKind::Unsupported,
                None,
                format!("the container has no command or args to add --{name} to"),
            )),
        }
    };
    let remove_all = |occs: &[FlagItem]| -> Vec<Op> {
        occs.iter()
            .flat_map(FlagItem::indices)
            .map(|idx| Op::Remove { idx })
            .collect()
    };
    match change {
        Change::Set { value, .. } => {
            if let Some(v) = value {
                check_value("value", v)?;
            }
            let Some((last, earlier)) = occs.split_last() else {
                return insert(match value {
                    Some(v) => format!("--{name}={v}"),
                    None => format!("--{name}"),
                });
            };
            let mut ops = remove_all(earlier);
            match (&last.value, value) {
                (FlagValue::Inline(old), Some(v)) if old == v => {}
                (FlagValue::Separate { value: old, .. }, Some(v)) if old == v => {}
                (FlagValue::Inline(_) | FlagValue::Bare, Some(v)) => ops.push(Op::Replace {
                    idx: last.index,
                    value: format!("{}={v}", last.written),
                }),
                (FlagValue::Separate { index, .. }, Some(v)) => {
                    two_item_value_ok(name, v, line_of(*index))?;
                    ops.push(Op::Replace {
                        idx: *index,
                        value: v.clone(),
                    })
                }
                (FlagValue::Bare, None) => {}
                (FlagValue::Inline(_), None) => ops.push(Op::Replace {
                    idx: last.index,
                    value: last.written.clone(),
                }),
                (FlagValue::Separate { value: old, .. }, None) => {
                    return Err(err(
                        EditErrorKind::Unsupported,
                        Some(line_of(last.index)),
                        format!(
                            "--{name} is written as two items (`{}` then `{old}`); setting it without a value is ambiguous, unset it first",
                            last.written
                        ),
                    ))
                }
            }
            Ok(ops)
        }
        Change::Unset { .. } => Ok(remove_all(&occs)),
        Change::Mount(_) => Ok(Vec::new()),
        Change::AddItem { .. }
        | Change::RemoveItem { .. }
        | Change::AtLeast { .. }
        | Change::SetKey { .. } => {
            let current = current_value(&occs, name, line_of)?;
            let target = match current {
                None => match change {
                    Change::AddItem { item, .. } => {
                        list_item_ok("item", item)?;
                        Target::Value(item.clone())
                    }
                    Change::AtLeast { min, .. } => Target::Value(min.to_string()),
                    Change::SetKey { key, value, .. } => {
                        key_value_ok(key, value)?;
                        Target::Value(format!("{key}={value}"))
                    }
                    _ => Target::Unchanged,
                },
                // `current` is `Some` only when `occs` is not empty.
                Some(cur) => value_target(change, cur, name, line_of(occs[occs.len() - 1].index))?,
            };
            match (target, occs.split_last()) {
                (Target::Unchanged, _) | (Target::Remove, None) => Ok(Vec::new()),
                (Target::Remove, Some(_)) => Ok(remove_all(&occs)),
                (Target::Value(v), None) => insert(format!("--{name}={v}")),
                (Target::Value(v), Some((last, earlier))) => {
                    let mut ops = remove_all(earlier);
                    ops.push(match &last.value {
                        FlagValue::Separate { index, .. } => {
                            two_item_value_ok(name, &v, line_of(*index))?;
                            Op::Replace {
                                idx: *index,
                                value: v,
                            }
                        }
                        _ => Op::Replace {
                            idx: last.index,
                            value: format!("{}={v}", last.written),
                        },
                    });
                    Ok(ops)
                }
            }
        }
    }
}

/// The value item of a two-item flag must not look like a flag itself.
fn two_item_value_ok(name: &str, v: &str, line: usize) -> Result<(), EditError> {
    if v.starts_with('-') {
        return Err(err(
            EditErrorKind::Unsupported,
            Some(line),
            format!("--{name} is written as two items and the new value {v:?} would read as a flag; unset it and set it again"),
        ));
    }
    Ok(())
}

fn key_value_ok(key: &str, value: &str) -> Result<(), EditError> {
    check_value("key", key)?;
    check_value("value", value)?;
    if key.is_empty() || key.contains([',', '=', ' ']) || value.contains(',') {
        return Err(err(
            EditErrorKind::Value,
            None,
            format!("invalid key/value {key:?}={value:?} for a K=V,K=V flag"),
        ));
    }
    Ok(())
}

/// The single current value of a flag used as a list or map; refuses bare and conflicting
/// duplicated occurrences (pflag's list flags accumulate repeated occurrences, so which one is
/// "the" list is not clear).
fn current_value<'o>(
    occs: &'o [FlagItem],
    name: &str,
    line_of: &dyn Fn(usize) -> usize,
) -> Result<Option<&'o str>, EditError> {
    let Some(last) = occs.last() else {
        return Ok(None);
    };
    let Some(v) = last.value.as_str() else {
        return Err(err(
            EditErrorKind::Value,
            Some(line_of(last.index)),
            format!("--{name} has no value to change"),
        ));
    };
    // `occs` is not empty here (it has a last element).
    if occs.iter().any(|o| o.value.as_str() != Some(v)) {
        let lines: Vec<String> = occs.iter().map(|o| line_of(o.index).to_string()).collect();
        return Err(err(
            EditErrorKind::Unsupported,
            Some(line_of(occs[0].index)),
            format!(
                "--{name} appears {} times with different values (lines {}); list flags accumulate repeated occurrences, so consolidate it with --set or --unset first",
                occs.len(),
                lines.join(", ")
            ),
        ));
    }
    Ok(Some(v))
}

fn value_target(change: &Change, cur: &str, name: &str, line: usize) -> Result<Target, EditError> {
    let items = crate::flags::list_items(cur);
    Ok(match change {
        Change::AddItem { item, .. } => {
            list_item_ok("item", item)?;
            if items.contains(&item.as_str()) {
                Target::Unchanged
            } else if cur.is_empty() {
                Target::Value(item.clone())
            } else {
                Target::Value(format!("{cur},{item}"))
            }
        }
        Change::RemoveItem { item, if_empty, .. } => {
            list_item_ok("item", item)?;
            if let Some(e) = if_empty {
                check_value("value", e)?;
            }
            if !items.contains(&item.as_str()) {
                Target::Unchanged
            } else {
                let rest: Vec<&str> = items.into_iter().filter(|i| *i != item).collect();
                let joined = rest.join(",");
                match (joined.is_empty(), if_empty) {
                    (false, _) => Target::Value(joined),
                    (true, Some(e)) => Target::Value(e.clone()),
                    (true, None) => Target::Remove,
                }
            }
        }
        Change::AtLeast { min, .. } => {
            let n = parse_int(cur).ok_or_else(|| {
                err(
                    EditErrorKind::Value,
                    Some(line),
                    format!("--{name}={cur} is not an integer"),
                )
            })?;
            if n >= *min {
                Target::Unchanged
            } else {
                Target::Value(min.to_string())
            }
        }
        Change::SetKey { key, value, .. } => {
            key_value_ok(key, value)?;
            let key_of = |e: &str| e.split_once('=').map_or(e, |(k, _)| k).trim().to_string();
            let val_of = |e: &str| e.split_once('=').map(|(_, v)| v.trim().to_string());
            let matching: Vec<usize> = (0..items.len())
                .filter(|&i| key_of(items[i]) == *key)
                .collect();
            match matching.split_last() {
                None if cur.is_empty() => Target::Value(format!("{key}={value}")),
                None => Target::Value(format!("{cur},{key}={value}")),
                Some(_)
                    if matching
                        .iter()
                        .all(|&i| val_of(items[i]).as_deref() == Some(value.as_str())) =>
                {
                    Target::Unchanged
                }
                Some((&last, earlier)) => {
                    let mut out = Vec::new();
                    for (i, e) in items.iter().enumerate() {
                        if earlier.contains(&i) {
                            continue;
                        }
                        if i == last {
                            let k = e.split_once('=').map_or(*e, |(k, _)| k);
                            out.push(format!("{k}={value}"));
                        } else {
                            out.push((*e).to_string());
                        }
                    }
                    Target::Value(out.join(","))
                }
            }
        }
        Change::Set { .. } | Change::Unset { .. } | Change::Mount(_) => Target::Unchanged,
    })
}

/// Where each item of one list comes from after the ops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Slot {
    /// The item at this position of the list before the change.
    Keep(usize),
    New(String),
}

/// Apply `ops` to an argv given as `(list, position)` per index; returns, per list id, the new
/// content of that list (only lists that exist). `lists` is the number of lists.
pub(crate) fn apply(homes: &[(usize, usize)], lists: usize, ops: &[Op]) -> Vec<Vec<Slot>> {
    // The ops of each index, found once (a change may remove tens of thousands of repeated
    // items: one pass over the ops, not one per item).
    let mut by_idx: std::collections::HashMap<usize, Vec<&Op>> = std::collections::HashMap::new();
    for op in ops {
        by_idx.entry(op.idx()).or_default().push(op);
    }
    let mut out: Vec<Vec<Slot>> = vec![Vec::new(); lists];
    for (idx, &(list, pos)) in homes.iter().enumerate() {
        let mine = by_idx.get(&idx).map(Vec::as_slice).unwrap_or_default();
        let mut removed = false;
        let mut replaced = None;
        for op in mine {
            match op {
                Op::Remove { .. } => removed = true,
                Op::Replace { value, .. } => replaced = Some(value.clone()),
                Op::InsertAfter { .. } => {}
            }
        }
        if let Some(slots) = out.get_mut(list) {
            if !removed {
                slots.push(replaced.map_or(Slot::Keep(pos), Slot::New));
            }
            for op in mine {
                if let Op::InsertAfter { value, .. } = op {
                    slots.push(Slot::New(value.clone()));
                }
            }
        }
    }
    out
}

/// The argv after `ops`.
pub(crate) fn apply_strings(argv: &[String], ops: &[Op]) -> Vec<String> {
    let homes: Vec<(usize, usize)> = (0..argv.len()).map(|i| (0, i)).collect();
    apply(&homes, 1, ops)
        .into_iter()
        .flatten()
        .map(|s| match s {
            Slot::Keep(i) => argv[i].clone(),
            Slot::New(v) => v,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn run(argv: &[&str], change: Change) -> Result<Vec<String>, EditError> {
        let argv = v(argv);
        let ops = plan(&argv, 1, &change, &|_| 1)?;
        Ok(apply_strings(&argv, &ops))
    }

    fn set(n: &str, val: &str) -> Change {
        Change::Set {
            name: n.into(),
            value: Some(val.into()),
        }
    }

    #[test]
    fn set_rules() {
        assert_eq!(
            run(&["b", "--a=1"], set("a", "2")).unwrap(),
            v(&["b", "--a=2"])
        );
        assert_eq!(
            run(&["b", "--x"], set("a", "2")).unwrap(),
            v(&["b", "--x", "--a=2"])
        );
        assert_eq!(run(&["b"], set("a", "2")).unwrap(), v(&["b", "--a=2"]));
        assert_eq!(
            run(&["b", "--a", "1", "--c"], set("a", "2")).unwrap(),
            v(&["b", "--a", "2", "--c"])
        );
        assert_eq!(
            run(&["b", "--a=1", "--c", "-a=3"], set("a", "2")).unwrap(),
            v(&["b", "--c", "-a=2"])
        );
        assert_eq!(
            run(&["b", "--a_b=1"], set("a-b", "2")).unwrap(),
            v(&["b", "--a_b=2"])
        );
        assert_eq!(
            run(
                &["b", "--a=1"],
                Change::Set {
                    name: "a".into(),
                    value: None
                }
            )
            .unwrap(),
            v(&["b", "--a"])
        );
        assert!(run(
            &["b", "--a", "1"],
            Change::Set {
                name: "a".into(),
                value: None
            }
        )
        .is_err());
        assert!(run(&["b"], set("a", "x\ny")).is_err());
        // after `--`, nothing is a flag
        assert_eq!(
            run(&["b", "--c", "--", "--a=1"], set("a", "2")).unwrap(),
            v(&["b", "--c", "--a=2", "--", "--a=1"])
        );
    }

    #[test]
    fn list_rules() {
        let add = |i: &str| Change::AddItem {
            name: "m".into(),
            item: i.into(),
        };
        let rm = |i: &str, e: Option<&str>| Change::RemoveItem {
            name: "m".into(),
            item: i.into(),
            if_empty: e.map(str::to_string),
        };
        assert_eq!(
            run(&["b", "--m=A,B"], add("C")).unwrap(),
            v(&["b", "--m=A,B,C"])
        );
        assert_eq!(
            run(&["b", "--m=A,B"], add("A")).unwrap(),
            v(&["b", "--m=A,B"])
        );
        assert_eq!(run(&["b", "--m="], add("A")).unwrap(), v(&["b", "--m=A"]));
        assert_eq!(run(&["b"], add("A")).unwrap(), v(&["b", "--m=A"]));
        assert_eq!(
            run(&["b", "--m=A,B,A"], rm("A", None)).unwrap(),
            v(&["b", "--m=B"])
        );
        assert_eq!(
            run(&["b", "--m=A", "--z"], rm("A", None)).unwrap(),
            v(&["b", "--z"])
        );
        assert_eq!(
            run(&["b", "--m=A"], rm("A", Some("X"))).unwrap(),
            v(&["b", "--m=X"])
        );
        assert_eq!(
            run(&["b", "--m=A", "--m=A"], add("B")).unwrap(),
            v(&["b", "--m=A,B"])
        );
        assert!(run(&["b", "--m=A", "--m=B"], add("C")).is_err());
        assert!(run(&["b", "--m"], add("C")).is_err());
        assert!(run(&["b"], add("C,D")).is_err());
    }

    #[test]
    fn at_least_and_set_key() {
        let al = |n: i64| Change::AtLeast {
            name: "n".into(),
            min: n,
        };
        assert_eq!(run(&["b", "--n=5"], al(3)).unwrap(), v(&["b", "--n=5"]));
        assert_eq!(run(&["b", "--n=2"], al(3)).unwrap(), v(&["b", "--n=3"]));
        assert_eq!(run(&["b"], al(3)).unwrap(), v(&["b", "--n=3"]));
        assert!(run(&["b", "--n=2d"], al(3)).is_err());
        let sk = |k: &str, val: &str| Change::SetKey {
            name: "f".into(),
            key: k.into(),
            value: val.into(),
        };
        assert_eq!(
            run(&["b", "--f=A=true,B=false"], sk("B", "true")).unwrap(),
            v(&["b", "--f=A=true,B=true"])
        );
        assert_eq!(
            run(&["b", "--f=A=true"], sk("B", "true")).unwrap(),
            v(&["b", "--f=A=true,B=true"])
        );
        assert_eq!(
            run(&["b", "--f=B=1,A=true, B=2"], sk("B", "3")).unwrap(),
            v(&["b", "--f=A=true, B=3"])
        );
        assert_eq!(
            run(&["b", "--f=A=true"], sk("A", "true")).unwrap(),
            v(&["b", "--f=A=true"])
        );
        assert_eq!(
            run(&["b"], sk("A", "true")).unwrap(),
            v(&["b", "--f=A=true"])
        );
    }

    #[test]
    fn unset_removes_all_including_two_item_values() {
        let un = Change::Unset { name: "a".into() };
        assert_eq!(
            run(&["b", "--a=1", "--c", "--a", "2", "--d"], un).unwrap(),
            v(&["b", "--c", "--d"])
        );
    }
}
