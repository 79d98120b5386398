//! `Change::Mount`: a hostPath volume in `spec.volumes` and its volumeMount in the container.
//!
//! Why it exists: some CIS remediations name a file (an audit policy, an encryption config)
//! that the component can only read when it is mounted. This module appends one entry to each
//! block list, copying the last sibling's indentation, dash spacing and key order, and does
//! nothing when an identical volume and mount are already there. When a list is absent, it
//! adds the key at the end of its mapping (the pod spec, the container), at the mapping's own
//! key column, with one entry laid out as kubeadm writes them (`- ` at the key's column, keys
//! in alphabetical order, two-space steps). It refuses rather than guesses when a list is
//! written in flow style, is empty or is not a list, or when a conflicting volume or mount
//! exists.

use crate::locate::{err, get, Located};
use crate::splice::{eol_for, BlockLine, Splice};
use crate::tree::Node;
use crate::verify;
use crate::yaml11::{self, check_value, Quote};
use crate::{EditError, EditErrorKind, Mount};
use serde_yaml::{Mapping, Value};

fn unsupported(line: Option<usize>, reason: impl Into<String>) -> EditError {
    err(EditErrorKind::Unsupported, line, reason)
}

fn scalar<'t>(map: &'t Node, key: &str) -> Result<Option<&'t str>, EditError> {
    Ok(get(map, key)?.and_then(Node::scalar))
}

fn yaml11_true(s: &str) -> bool {
    matches!(s.to_ascii_lowercase().as_str(), "true" | "yes" | "on" | "y")
}

fn w(s: &str) -> String {
    yaml11::render_str(s, Quote::Plain, Quote::Double, false)
}

/// The block list at `key` of `map` (`None`: the key is absent), or a refusal.
fn block_list<'t>(map: &'t Node, key: &str) -> Result<Option<&'t [Node]>, EditError> {
    let Some(list) = get(map, key)? else {
        return Ok(None);
    };
    match list.seq_items().map(|items| (items, list.is_flow())) {
        Some((items, false)) if !items.is_empty() => {
            if list.has_props_below() {
                return Err(unsupported(
                    Some(list.line),
                    format!("`{key}` uses anchors, aliases or tags"),
                ));
            }
            Ok(Some(items))
        }
        Some((_, true)) => Err(unsupported(
            Some(list.line),
            format!("`{key}` is a flow list (`[...]`); adding to it is not supported"),
        )),
        _ => Err(unsupported(
            Some(list.line),
            format!("`{key}` is empty or not a list; adding to it is not supported"),
        )),
    }
}

/// Where and how to add one mapping entry after the last one of a block list.
struct Layout<'a> {
    /// `<indent>- ` of the last entry.
    prefix: &'a str,
    /// Column of the entries' keys.
    key_col: usize,
    /// Indentation step of nested mappings.
    step: usize,
    /// The last entry starts with `name:`.
    name_first: bool,
    line: BlockLine,
    eol: &'static str,
}

fn layout<'a>(text: &'a str, items: &[Node]) -> Result<Layout<'a>, EditError> {
    let last = items
        .last()
        .ok_or_else(|| unsupported(None, "empty list"))?;
    let Some(pairs) = last.map_pairs() else {
        return Err(unsupported(
            Some(last.line),
            "a list entry is not a mapping",
        ));
    };
    let Some((first_key, _)) = pairs.first() else {
        return Err(unsupported(Some(last.line), "an empty list entry"));
    };
    let start = text[..first_key.span.start]
        .rfind('\n')
        .map_or(0, |p| p + 1);
    let prefix = &text[start..first_key.span.start];
    let trimmed = prefix.trim_start_matches(' ');
    if !(trimmed.starts_with('-') && trimmed.len() >= 2 && trimmed[1..].chars().all(|c| c == ' ')) {
        return Err(unsupported(
            Some(last.line),
            "the last list entry is not laid out as `- key: value` lines",
        ));
    }
    let key_col = prefix.len();
    // Indentation step: a nested block mapping's key column minus its parent's.
    let mut step = 2;
    'find: for item in items {
        for (k, v) in item.map_pairs().unwrap_or_default() {
            if let Some(Some((ck, _))) = v.map_pairs().map(|p| p.first()) {
                let col = |pos: usize| pos - text[..pos].rfind('\n').map_or(0, |p| p + 1);
                if ck.line > k.line && col(ck.span.start) > col(k.span.start) {
                    step = col(ck.span.start) - col(k.span.start);
                    break 'find;
                }
            }
        }
    }
    let end_pos = last.content_end();
    let end = text[end_pos..]
        .find('\n')
        .map_or(text.len(), |p| end_pos + p);
    let end_incl = if end < text.len() { end + 1 } else { end };
    let end_excl = if end < text.len() && end > 0 && text.as_bytes()[end - 1] == b'\r' {
        end - 1
    } else {
        end
    };
    let line = BlockLine {
        start,
        end: end_excl,
        end_incl,
    };
    let after = text[end_pos..end_excl].trim_start_matches([' ', '\t']);
    if !(after.is_empty() || after.starts_with('#')) {
        return Err(unsupported(
            Some(last.line),
            "unexpected text after the last list entry",
        ));
    }
    Ok(Layout {
        prefix,
        key_col,
        step,
        name_first: first_key.scalar() == Some("name"),
        eol: eol_for(text, &line),
        line,
    })
}

fn render(l: &Layout<'_>, lines: &[(usize, String)]) -> Splice {
    let mut out = Vec::new();
    for (i, (depth, body)) in lines.iter().enumerate() {
        if i == 0 {
            out.push(format!("{}{body}", l.prefix));
        } else {
            out.push(format!("{}{body}", " ".repeat(l.key_col + depth * l.step)));
        }
    }
    let joined = out.join(l.eol);
    if l.line.end_incl > l.line.end {
        Splice {
            range: l.line.end_incl..l.line.end_incl,
            text: format!("{joined}{}", l.eol),
        }
    } else {
        Splice {
            range: l.line.end..l.line.end,
            text: format!("{}{joined}", l.eol),
        }
    }
}

/// Add `key:` with a one-entry block list at the end of the block mapping `map`. `entry`:
/// the entry's lines as (depth, text), depth 0 at the entry's key column.
fn create_list(
    text: &str,
    map: &Node,
    key: &str,
    entry: &[(usize, String)],
) -> Result<Splice, EditError> {
    let Some(pairs) = map.map_pairs() else {
        return Err(unsupported(Some(map.line), "not a mapping"));
    };
    let Some((first_key, _)) = pairs.first() else {
        return Err(unsupported(Some(map.line), "an empty mapping"));
    };
    if map.span.start < text.len() && text[map.span.start..].starts_with('{') {
        return Err(unsupported(
            Some(map.line),
            format!("cannot add `{key}` to a flow mapping (`{{...}}`)"),
        ));
    }
    if map.has_props_below() {
        return Err(unsupported(
            Some(map.line),
            format!("cannot add `{key}` beside anchors, aliases or tags"),
        ));
    }
    let line_start = |pos: usize| text[..pos].rfind('\n').map_or(0, |p| p + 1);
    let key_col = first_key.span.start - line_start(first_key.span.start);
    // Every key of the mapping must sit at that column, each on its own line.
    for (k, _) in pairs {
        if k.span.start - line_start(k.span.start) != key_col {
            return Err(unsupported(
                Some(k.line),
                format!("the keys of this mapping are not aligned; not adding `{key}`"),
            ));
        }
    }
    let end_pos = map.content_end();
    let end = text[end_pos..]
        .find('\n')
        .map_or(text.len(), |p| end_pos + p);
    let after = text[end_pos..end]
        .trim_end_matches('\r')
        .trim_start_matches([' ', '\t']);
    if !(after.is_empty() || after.starts_with('#')) {
        return Err(unsupported(
            Some(map.line),
            format!("unexpected text after the mapping; not adding `{key}`"),
        ));
    }
    let end_incl = if end < text.len() { end + 1 } else { end };
    let end_excl = if end < text.len() && end > 0 && text.as_bytes()[end - 1] == b'\r' {
        end - 1
    } else {
        end
    };
    let eol = eol_for(
        text,
        &BlockLine {
            start: line_start(end_pos),
            end: end_excl,
            end_incl,
        },
    );
    let pad = " ".repeat(key_col);
    let mut lines = vec![format!("{pad}{key}:")];
    for (i, (depth, body)) in entry.iter().enumerate() {
        if i == 0 {
            lines.push(format!("{pad}- {body}"));
        } else {
            lines.push(format!("{pad}{}{body}", " ".repeat(2 + depth * 2)));
        }
    }
    let joined = lines.join(eol);
    Ok(if end_incl > end {
        Splice {
            range: end_incl..end_incl,
            text: format!("{joined}{eol}"),
        }
    } else {
        Splice {
            range: end..end,
            text: format!("{eol}{joined}"),
        }
    })
}

/// Plan a mount: splices for the current text, and the expected documents updated.
pub(crate) fn plan(
    text: &str,
    loc: &Located<'_>,
    m: &Mount,
    expected: &mut verify::Expected<'_>,
) -> Result<Vec<Splice>, EditError> {
    for (what, v) in [
        ("volume name", &m.name),
        ("hostPath", &m.host_path),
        ("mountPath", &m.mount_path),
    ] {
        check_value(what, v)?;
        if v.is_empty() {
            return Err(err(
                EditErrorKind::Value,
                None,
                format!("the {what} is empty"),
            ));
        }
    }
    if let Some(t) = &m.path_type {
        check_value("hostPath type", t)?;
    }
    let volumes = block_list(loc.pod_spec, "volumes")?;
    let mounts = block_list(loc.container, "volumeMounts")?;

    let mut have_volume = false;
    for v in volumes.unwrap_or_default() {
        if scalar(v, "name")? != Some(m.name.as_str()) {
            continue;
        }
        let hp = get(v, "hostPath")?;
        let path = match hp {
            Some(h) => scalar(h, "path")?,
            None => None,
        };
        let ty = match hp {
            Some(h) => scalar(h, "type")?,
            None => None,
        };
        let same_type = m.path_type.is_none() || ty == m.path_type.as_deref();
        if path != Some(m.host_path.as_str()) || !same_type {
            return Err(unsupported(
                Some(v.line),
                format!(
                    "a volume named {:?} already exists with a different source",
                    m.name
                ),
            ));
        }
        have_volume = true;
    }
    let mut have_mount = false;
    for v in mounts.unwrap_or_default() {
        if scalar(v, "mountPath")? != Some(m.mount_path.as_str()) {
            continue;
        }
        let ro = scalar(v, "readOnly")?.is_some_and(yaml11_true);
        if scalar(v, "name")? != Some(m.name.as_str()) || ro != m.read_only {
            return Err(unsupported(
                Some(v.line),
                format!("{:?} is already mounted differently", m.mount_path),
            ));
        }
        have_mount = true;
    }

    let mut splices = Vec::new();
    if !have_volume {
        let mut host = vec![(1, format!("path: {}", w(&m.host_path)))];
        if let Some(t) = &m.path_type {
            host.push((1, format!("type: {}", w(t))));
        }
        let name_line = (0, format!("name: {}", w(&m.name)));
        match volumes {
            Some(volumes) => {
                let l = layout(text, volumes)?;
                let mut lines = Vec::new();
                if l.name_first {
                    lines.push(name_line.clone());
                }
                lines.push((0, "hostPath:".to_string()));
                lines.extend(host);
                if !l.name_first {
                    lines.push(name_line);
                }
                splices.push(render(&l, &lines));
            }
            None => {
                let mut lines = vec![(0, "hostPath:".to_string())];
                lines.extend(host);
                lines.push(name_line);
                splices.push(create_list(text, loc.pod_spec, "volumes", &lines)?);
            }
        }

        let mut hp = Mapping::new();
        hp.insert("path".into(), Value::String(m.host_path.clone()));
        if let Some(t) = &m.path_type {
            hp.insert("type".into(), Value::String(t.clone()));
        }
        let mut vol = Mapping::new();
        vol.insert("hostPath".into(), Value::Mapping(hp));
        vol.insert("name".into(), Value::String(m.name.clone()));
        let spec = verify::value_at_mut(expected.get()?, loc.doc_index, loc.spec_path)?;
        verify::push_to(spec, "volumes", vol)?;
    }
    if !have_mount {
        let name_line = (0, format!("name: {}", w(&m.name)));
        let mount_line = (0, format!("mountPath: {}", w(&m.mount_path)));
        let ro_line = (0, "readOnly: true".to_string());
        match mounts {
            Some(mounts) => {
                let l = layout(text, mounts)?;
                let mut lines = Vec::new();
                if l.name_first {
                    lines.push(name_line.clone());
                }
                lines.push(mount_line);
                if !l.name_first {
                    lines.push(name_line);
                }
                if m.read_only {
                    lines.push(ro_line);
                }
                splices.push(render(&l, &lines));
            }
            None => {
                let mut lines = vec![mount_line, name_line];
                if m.read_only {
                    lines.push(ro_line);
                }
                splices.push(create_list(text, loc.container, "volumeMounts", &lines)?);
            }
        }

        let mut vm = Mapping::new();
        vm.insert("mountPath".into(), Value::String(m.mount_path.clone()));
        vm.insert("name".into(), Value::String(m.name.clone()));
        if m.read_only {
            vm.insert("readOnly".into(), Value::Bool(true));
        }
        let c = verify::value_at_mut(expected.get()?, loc.doc_index, &loc.container_path())?;
        verify::push_to(c, "volumeMounts", vm)?;
    }
    // Both keys may be added at the same place (the container is the last thing in the pod
    // spec): the container's `volumeMounts` must come before the spec's `volumes` there.
    // `splice::apply` sorts stably, so the order here decides.
    splices.reverse();
    Ok(splices)
}
