//! The format-preserving `KubeletConfiguration` editor.
//!
//! Why it exists: kharden changes one setting of the kubelet's configuration and must leave
//! everything else exactly as the operator (or kubeadm) wrote it: comments, key order,
//! indentation, quoting, line endings. Re-serialising the file would lose all of that and make
//! every diff and every audit trail noisy. So each change is planned on the byte-span tree and
//! applied as byte splices; new text copies the file's own conventions (indentation step, how
//! lists are written, sorted key order when the file keeps its keys sorted, as kubeadm does);
//! and the result is verified independently before it is returned (see [`crate::verify`]).
//!
//! What a change writes:
//! - a boolean or integer plainly (`true`, `0`), so the kubelet's YAML 1.1 reader gets that
//!   type; a string plainly when every reader sees a string, else quoted (the style of the value
//!   it replaces when that was quoted, else double quotes); JSON files get JSON;
//! - a missing key on the path creates the intermediate mappings, indented like the file's other
//!   nested mappings (or, in a flow mapping or JSON object, in its own style);
//! - removing a key removes its lines; removing the last key of a mapping leaves `{}`;
//! - a list keeps the items that do not change byte for byte, replaces the ones that do in their
//!   own quoting, and appends or removes whole items.

use crate::doc::{
    self, after_line, col, colon_after, line_end, line_start, starts_line, ConfigDoc, Format,
    Layout, ListLayout, Walk, YamlValue, MAX_CONFIG_BYTES,
};
use crate::duration::GoDuration;
use crate::error::{err, Error, ErrorKind};
use crate::keypath::KeyPath;
use crate::schema::{self, ValueType};
use crate::splice::{self, Provenance, Splice};
use crate::tree::{self, pair_end, Kind, Node, Style};
use crate::verify;
use crate::yaml11::{self, Quote};
use serde::{Deserialize, Serialize};
use std::ops::Range;

/// A typed scalar to write. The kubelet's configuration is typed: booleans and integers are
/// written plainly, strings (durations included: `4h0m0s`) so that they read back as strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scalar {
    Bool(bool),
    Int(i64),
    Str(String),
}

impl std::fmt::Display for Scalar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scalar::Bool(b) => write!(f, "{b}"),
            Scalar::Int(i) => write!(f, "{i}"),
            Scalar::Str(s) => write!(f, "{s:?}"),
        }
    }
}

/// One change to a configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfigChange {
    /// Set the scalar at `path` (a setting, or one entry of a map such as
    /// `featureGates.RotateKubeletServerCertificate`), creating missing mappings on the way.
    Set { path: KeyPath, value: Scalar },
    /// Remove the key at `path` (nothing happens when it is absent).
    Unset { path: KeyPath },
    /// Set the list at `path` (replacing the whole list, as the kubelet does with lists).
    SetList { path: KeyPath, items: Vec<Scalar> },
}

impl ConfigChange {
    /// `KEY=VALUE` as given to `kharden kubelet set`: the key is a `KubeletConfiguration` path
    /// (`readOnlyPort`), the flag of a known setting (`read-only-port`), or a feature gate
    /// (`featureGates.NAME`); the value is typed by the setting's type (`true`, `0`, `4h0m0s`,
    /// `A,B` for a list). Keys kharden does not know are refused: the kubelet silently ignores
    /// an unknown key, so a typo would change nothing.
    pub fn parse_set(arg: &str) -> Result<ConfigChange, Error> {
        let (k, v) = arg.split_once('=').ok_or_else(|| {
            err(
                ErrorKind::Value,
                None,
                format!("expected KEY=VALUE, got {arg:?}"),
            )
        })?;
        let (path, ty) = typed_key(k)?;
        yaml11::check_value("value", v)?;
        let bad = |why: String| err(ErrorKind::Value, None, format!("{k}: {why}"));
        let value = match ty {
            ValueType::Bool | ValueType::FeatureGate => {
                Scalar::Bool(ty.parse_text(v).map_err(bad)?.as_bool().unwrap_or_default())
            }
            ValueType::Int32 | ValueType::Int64 => {
                Scalar::Int(ty.parse_text(v).map_err(bad)?.as_int().unwrap_or_default())
            }
            ValueType::Duration => {
                ty.parse_text(v).map_err(bad)?;
                Scalar::Str(v.to_string())
            }
            ValueType::Str | ValueType::Path => Scalar::Str(v.to_string()),
            ValueType::StringList => {
                let items = kharden_manifest::flags::list_items(v)
                    .into_iter()
                    .map(|s| Scalar::Str(s.to_string()))
                    .collect();
                return Ok(ConfigChange::SetList { path, items });
            }
        };
        Ok(ConfigChange::Set { path, value })
    }

    /// `KEY` as given to `kharden kubelet --unset`.
    pub fn parse_unset(key: &str) -> Result<ConfigChange, Error> {
        let (path, _) = typed_key(key)?;
        Ok(ConfigChange::Unset { path })
    }

    pub fn path(&self) -> &KeyPath {
        match self {
            ConfigChange::Set { path, .. }
            | ConfigChange::Unset { path }
            | ConfigChange::SetList { path, .. } => path,
        }
    }

    /// Whether `doc` holds this change, as the kubelet reads the file: the value at the path
    /// is the one set (a duration compared as a duration: `4h` holds `4h0m0s`), a list is the
    /// one set item for item, an unset key is absent or null. A file that cannot be read at
    /// the path (an alias, a scalar where a mapping belongs) holds nothing.
    pub fn holds_in(&self, doc: &ConfigDoc) -> bool {
        let found = match doc.lookup(self.path()) {
            Ok(v) => v.map(|f| f.value),
            Err(_) => return false,
        };
        match (self, found) {
            (ConfigChange::Unset { .. }, found) => found.is_none(),
            (ConfigChange::Set { value, .. }, Some(v)) => scalar_is(value, &v),
            (ConfigChange::SetList { items, .. }, Some(YamlValue::List(v))) => {
                items.len() == v.len() && items.iter().zip(&v).all(|(s, y)| scalar_is(s, y))
            }
            _ => false,
        }
    }
}

/// Whether the file's value `v` is the scalar `s` (strings that are both Go durations are
/// compared as durations).
fn scalar_is(s: &Scalar, v: &YamlValue) -> bool {
    match (s, v) {
        (Scalar::Bool(a), YamlValue::Bool(b)) => a == b,
        (Scalar::Int(a), YamlValue::Int(b)) => a == b,
        (Scalar::Str(a), YamlValue::Str(b)) => {
            a == b
                || matches!(
                    (GoDuration::parse(a), GoDuration::parse(b)),
                    (Ok(x), Ok(y)) if x == y
                )
        }
        _ => false,
    }
}

impl std::fmt::Display for ConfigChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigChange::Set { path, value } => write!(f, "set {path} = {value}"),
            ConfigChange::Unset { path } => write!(f, "unset {path}"),
            ConfigChange::SetList { path, items } => {
                let items: Vec<String> = items.iter().map(ToString::to_string).collect();
                write!(f, "set {path} = [{}]", items.join(", "))
            }
        }
    }
}

/// The result of a successful [`edit_config`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEdited {
    /// The edited file. Equal to the input when nothing needed to change.
    pub output: Vec<u8>,
    pub format: Format,
    /// Byte ranges of the input that were replaced, in increasing order.
    pub replaced: Vec<Range<usize>>,
}

impl ConfigEdited {
    /// True when the output equals the input.
    pub fn unchanged(&self) -> bool {
        self.replaced.is_empty()
    }
}

/// Apply `changes` (in order) to a `KubeletConfiguration` file (YAML or JSON).
///
/// Returns the edited bytes or a refusal with the line and the reason. Never returns output that
/// failed verification; the whole call succeeds or fails as one.
pub fn edit_config(input: &[u8], changes: &[ConfigChange]) -> Result<ConfigEdited, Error> {
    let text = doc::check_input(input, "a kubelet configuration file")?;
    for c in changes {
        check_change(c)?;
    }
    let json = doc::is_json(text);
    let format = if json { Format::Json } else { Format::Yaml };
    let mut first = Some(doc::load(text)?);
    let mut expected: Option<serde_yaml::Value> = None;
    let mut cur = text.to_string();
    let mut provenance = Provenance::new(text.len());
    for change in changes {
        let root = match first.take() {
            Some(r) => r,
            None => doc::load(&cur).map_err(internal)?,
        };
        let layout = Layout::detect(&cur, &root, json);
        let mut splices = plan(&cur, &root, &layout, change)?;
        if splices.is_empty() {
            continue;
        }
        let exp = match expected.take() {
            Some(e) => e,
            None => verify::serde_doc(text).map_err(|e| {
                err(
                    ErrorKind::Syntax,
                    None,
                    format!("the checking parser (serde_yaml) cannot read this file: {e}"),
                )
            })?,
        };
        expected = Some(verify::apply(exp, change)?);
        let next = splice::apply(&cur, &mut splices)?;
        provenance.record(&splices);
        cur = next;
    }
    if cur.as_bytes() == input {
        return Ok(ConfigEdited {
            output: input.to_vec(),
            format,
            replaced: Vec::new(),
        });
    }
    if cur.len() > MAX_CONFIG_BYTES {
        return Err(err(
            ErrorKind::TooLarge,
            None,
            format!(
                "the edited file would be {} bytes (limit {MAX_CONFIG_BYTES})",
                cur.len()
            ),
        ));
    }
    let Some(expected) = expected else {
        return Err(verify::failed_msg("the text changed without a change"));
    };
    verify::compare(&expected, &cur, json)?;
    verify::typed_readback(&cur, changes)?;
    Ok(ConfigEdited {
        output: cur.into_bytes(),
        format,
        replaced: provenance.replaced(),
    })
}

/// The configuration path and type of a key named on the command line.
fn typed_key(k: &str) -> Result<(KeyPath, ValueType), Error> {
    if let Some(gate) = k.strip_prefix("featureGates.") {
        if gate.is_empty()
            || !gate
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
        {
            return Err(err(
                ErrorKind::Value,
                None,
                format!("invalid feature gate name {gate:?}"),
            ));
        }
        return Ok((
            KeyPath::new(["featureGates", gate])?,
            ValueType::FeatureGate,
        ));
    }
    let spec = schema::key(k).ok_or_else(|| {
        err(
            ErrorKind::Value,
            None,
            format!("{k:?} is not a KubeletConfiguration key kharden knows (see kharden_kubelet_config::KEYS)"),
        )
    })?;
    let Some(path) = spec.path else {
        return Err(err(
            ErrorKind::Value,
            None,
            format!(
                "--{} is a command-line flag only; it has no KubeletConfiguration key",
                spec.flag.unwrap_or(k)
            ),
        ));
    };
    Ok((KeyPath::parse(path)?, spec.ty))
}

/// An error met while re-reading text this crate produced: a bug guard.
fn internal(e: Error) -> Error {
    verify::failed_msg(format!(
        "the edited text does not read back cleanly ({})",
        e.reason
    ))
}

/// Values that cannot be written are refused before anything is planned.
fn check_change(c: &ConfigChange) -> Result<(), Error> {
    // A KubeletConfiguration is ~5 levels deep; the tree refuses 64.
    if c.path().segments().len() > 16 {
        return Err(err(
            ErrorKind::Value,
            None,
            format!(
                "the key path has {} keys (at most 16)",
                c.path().segments().len()
            ),
        ));
    }
    if let Some(first @ ("apiVersion" | "kind")) = c.path().segments().first().map(String::as_str) {
        return Err(err(
            ErrorKind::Value,
            None,
            format!("`{first}` says what the file is; it is not a setting to change"),
        ));
    }
    for s in c.path().segments() {
        yaml11::check_value("key", s)?;
    }
    let check = |v: &Scalar| match v {
        Scalar::Str(s) => yaml11::check_value("value", s),
        _ => Ok(()),
    };
    match c {
        ConfigChange::Set { value, .. } => check(value),
        ConfigChange::Unset { .. } => Ok(()),
        ConfigChange::SetList { items, .. } => items.iter().try_for_each(check),
    }
}

/// What goes at the end of a new path.
#[derive(Clone, Copy)]
enum Leaf<'a> {
    Scalar(&'a Scalar),
    List(&'a [Scalar]),
}

fn unsupported(line: usize, reason: impl Into<String>) -> Error {
    err(ErrorKind::Unsupported, Some(line), reason)
}

/// The splices of one change on the current text.
fn plan(
    text: &str,
    root: &Node,
    layout: &Layout,
    change: &ConfigChange,
) -> Result<Vec<Splice>, Error> {
    let path = change.path();
    match (change, doc::walk(root, path)?) {
        (ConfigChange::Unset { .. }, Walk::Missing { .. }) => Ok(Vec::new()),
        (ConfigChange::Unset { .. }, Walk::Found(trail)) => unset(text, &trail, path),
        (ConfigChange::Set { value, .. }, Walk::Found(trail)) => {
            let (map, j) = target(&trail)?;
            set_scalar(text, map, j, value, layout.json, path)
        }
        (ConfigChange::SetList { items, .. }, Walk::Found(trail)) => {
            let (map, j) = target(&trail)?;
            set_list(text, map, j, items, layout, path)
        }
        (ConfigChange::Set { value, .. }, Walk::Missing { map, depth, .. }) => insert(
            text,
            map,
            &path.segments()[depth..],
            Leaf::Scalar(value),
            layout,
        ),
        (ConfigChange::SetList { items, .. }, Walk::Missing { map, depth, .. }) => insert(
            text,
            map,
            &path.segments()[depth..],
            Leaf::List(items),
            layout,
        ),
    }
}

fn target<'t>(trail: &[(&'t Node, usize)]) -> Result<(&'t Node, usize), Error> {
    trail
        .last()
        .copied()
        .ok_or_else(|| verify::failed_msg("empty key path"))
}

/// The pair `j` of mapping `map` (the walk guarantees it exists).
fn pair(map: &Node, j: usize) -> Result<&(Node, Node), Error> {
    map.map_pairs()
        .and_then(|p| p.get(j))
        .ok_or_else(|| verify::failed_msg("the key path moved while planning"))
}

/// A scalar's text. `prefer` is the quoting to keep for strings; `flow` is true inside
/// `[...]`/`{...}`.
fn render(v: &Scalar, prefer: Quote, fallback: Quote, flow: bool, json: bool) -> String {
    match v {
        Scalar::Bool(b) => b.to_string(),
        Scalar::Int(i) => i.to_string(),
        Scalar::Str(s) if json => yaml11::encode(s, Quote::Double),
        Scalar::Str(s) => yaml11::render_str(s, prefer, fallback, flow),
    }
}

/// Whether an existing scalar already reads as `v` for every reader (then it is left alone,
/// whatever its spelling).
fn already(node: &Node, v: &Scalar) -> bool {
    if node.props {
        return false;
    }
    match (&node.kind, v) {
        (
            Kind::Scalar {
                value,
                style: Style::Plain,
            },
            Scalar::Str(s),
        ) => value == s && !yaml11::resolves_non_string(value) && !value.is_empty(),
        (
            Kind::Scalar {
                value,
                style: Style::Single | Style::Double,
            },
            Scalar::Str(s),
        ) => value == s,
        (
            Kind::Scalar {
                value,
                style: Style::Plain,
            },
            Scalar::Bool(b),
        ) => {
            if *b {
                matches!(value.as_str(), "true" | "True" | "TRUE")
            } else {
                matches!(value.as_str(), "false" | "False" | "FALSE")
            }
        }
        (
            Kind::Scalar {
                value,
                style: Style::Plain,
            },
            Scalar::Int(i),
        ) => *value == i.to_string(),
        _ => false,
    }
}

fn quote_of(node: &Node) -> Quote {
    match node.style() {
        Some(Style::Single) => Quote::Single,
        Some(Style::Double) => Quote::Double,
        _ => Quote::Plain,
    }
}

/// Set the value of an existing key.
fn set_scalar(
    text: &str,
    map: &Node,
    j: usize,
    value: &Scalar,
    json: bool,
    path: &KeyPath,
) -> Result<Vec<Splice>, Error> {
    let (k, v) = pair(map, j)?;
    if v.props || matches!(v.kind, Kind::Alias) {
        return Err(unsupported(
            v.line,
            format!("`{path}` holds an anchor, tag or alias; refusing to edit it"),
        ));
    }
    match &v.kind {
        Kind::Scalar {
            style: Style::Block,
            ..
        } => Err(unsupported(
            k.line,
            format!("`{path}` is a block scalar (`|` or `>`); refusing to rewrite it"),
        )),
        Kind::Scalar { .. } => {
            if already(v, value) {
                return Ok(Vec::new());
            }
            let new = render(value, quote_of(v), Quote::Double, map.is_flow(), json);
            if v.span.is_empty() {
                // `key:` with nothing after it (null): write the value after the colon.
                let c = colon_after(text, k)?;
                let add = comment_guard(text, c + 1, format!(" {new}"));
                return Ok(vec![Splice::new(c + 1..c + 1, add)]);
            }
            Ok(Splice::minimal(v.span.clone(), &text[v.span.clone()], &new)
                .into_iter()
                .collect())
        }
        _ => Err(err(
            ErrorKind::Type,
            Some(v.line),
            format!(
                "`{path}` is {}; refusing to replace it with a scalar",
                v.what()
            ),
        )),
    }
}

/// Text inserted right before a `#` ends with a blank, so that the `#` still starts a comment
/// (and does not join the new text).
fn comment_guard(text: &str, at: usize, add: String) -> String {
    if text[at.min(text.len())..].starts_with('#') {
        format!("{add} ")
    } else {
        add
    }
}

/// Where a new key goes among `pairs`: at its sorted place when the keys are sorted (as kubeadm
/// writes them), else after the last one.
fn insert_index(pairs: &[(Node, Node)], key: &str) -> usize {
    let keys: Option<Vec<&str>> = pairs.iter().map(|(k, _)| k.scalar()).collect();
    match keys {
        Some(keys) if keys.len() >= 2 && keys.windows(2).all(|w| w[0] < w[1]) => {
            keys.partition_point(|k| *k < key)
        }
        _ => pairs.len(),
    }
}

/// Insert `segs` (a key, then the keys of new nested mappings) ending in `leaf` into `map`.
fn insert(
    text: &str,
    map: &Node,
    segs: &[String],
    leaf: Leaf<'_>,
    layout: &Layout,
) -> Result<Vec<Splice>, Error> {
    let Some(first) = segs.first() else {
        return Err(verify::failed_msg("empty key path"));
    };
    let pairs = map.map_pairs().unwrap_or_default();
    let j = insert_index(pairs, first);
    if map.is_flow() {
        return insert_flow(text, map, pairs, j, segs, leaf, layout);
    }
    let Some((k0, _)) = pairs.first() else {
        return Err(unsupported(map.line, "an empty block mapping"));
    };
    if !starts_line(text, k0.span.start) {
        return Err(unsupported(
            k0.line,
            "the mapping does not start its own line (a mapping inside a list item?); refusing to add keys to it",
        ));
    }
    let c = col(text, k0.span.start);
    let entry = block_entry(segs, leaf, c, layout);
    if j == 0 {
        return Ok(vec![Splice::new(
            line_start(text, k0.span.start)..line_start(text, k0.span.start),
            entry,
        )]);
    }
    let (pk, pv) = &pairs[j - 1];
    // Blank lines after the entry before stay with it: they may be a keep-chomped block
    // scalar's own, and a blank line holding a tab becomes a bad indentation when it follows a
    // deeper new line (found by the fuzz target).
    let at = after_blank_lines(text, after_line(text, pair_end(pk, pv)));
    if at == text.len() && !text.ends_with('\n') {
        // Found by the fuzz target: the line break a new last line needs would end the block
        // scalar's value with one.
        if let Some(b) = block_scalar_ending_before(pv, text, at) {
            return Err(unsupported(
                b.line,
                "the file ends, without a final line break, in a block scalar (`|` or `>`): a \
                 key added after it would change its value; end the file with a line break first",
            ));
        }
        let body = entry.strip_suffix(layout.eol).unwrap_or(&entry);
        return Ok(vec![Splice::new(at..at, format!("{}{body}", layout.eol))]);
    }
    Ok(vec![Splice::new(at..at, entry)])
}

/// `at` (a line start) moved past the lines made only of blanks that follow it.
fn after_blank_lines(text: &str, mut at: usize) -> usize {
    while let Some(rest) = text.get(at..).filter(|r| !r.is_empty()) {
        let len = rest.find('\n').map_or(rest.len(), |e| e + 1);
        if !rest[..len]
            .chars()
            .all(|c| matches!(c, ' ' | '\t' | '\r' | '\n'))
        {
            break;
        }
        at += len;
    }
    at
}

/// The block scalar (`|`, `>`) that `node` ends with, when only blanks and line breaks follow it
/// up to `pos`: its value's final line breaks are read from that text, so a line break added or
/// taken away there changes the value.
fn block_scalar_ending_before<'a>(node: &'a Node, text: &str, pos: usize) -> Option<&'a Node> {
    let last = match &node.kind {
        Kind::Scalar {
            style: Style::Block,
            ..
        } => {
            let tail = text.get(node.span.end..pos)?;
            return tail.chars().all(char::is_whitespace).then_some(node);
        }
        Kind::Scalar { .. } | Kind::Alias => return None,
        Kind::Seq { items, .. } => items.last()?,
        Kind::Map { pairs, .. } => &pairs.last()?.1,
    };
    block_scalar_ending_before(last, text, pos)
}

/// Block lines for `segs: ... leaf`, the first key at column `c`.
fn block_entry(segs: &[String], leaf: Leaf<'_>, c: usize, layout: &Layout) -> String {
    let eol = layout.eol;
    let mut out = String::new();
    let last = segs.len() - 1;
    for (i, seg) in segs.iter().enumerate() {
        let indent = " ".repeat(c + i * layout.step);
        let key = yaml11::render_key(seg, false, false);
        if i < last {
            out.push_str(&format!("{indent}{key}:{eol}"));
            continue;
        }
        match leaf {
            Leaf::Scalar(v) => {
                out.push_str(&format!(
                    "{indent}{key}: {}{eol}",
                    render(v, Quote::Plain, Quote::Double, false, false)
                ));
            }
            Leaf::List([]) => out.push_str(&format!("{indent}{key}: []{eol}")),
            Leaf::List(items) => match &layout.list {
                ListLayout::Flow => out.push_str(&format!(
                    "{indent}{key}: {}{eol}",
                    flow_list(items, &layout.flow_sep, false)
                )),
                ListLayout::Block {
                    dash_offset,
                    after_dash,
                } => {
                    out.push_str(&format!("{indent}{key}:{eol}"));
                    let dash = " ".repeat(c + i * layout.step + dash_offset);
                    for it in items {
                        out.push_str(&format!(
                            "{dash}-{after_dash}{}{eol}",
                            render(it, Quote::Plain, Quote::Double, false, false)
                        ));
                    }
                }
            },
        }
    }
    out
}

fn flow_list(items: &[Scalar], sep: &str, json: bool) -> String {
    let items: Vec<String> = items
        .iter()
        .map(|v| render(v, Quote::Plain, Quote::Double, true, json))
        .collect();
    format!("[{}]", items.join(sep))
}

/// The text between two entries of a flow collection when it is only a comma and blanks.
fn flow_sep(text: &str, end_prev: usize, start_next: usize) -> Option<&str> {
    let sep = text.get(end_prev..start_next)?;
    // Blanks and line breaks only: a tab is not always accepted where a new entry would put it.
    (sep.trim_matches([' ', '\r', '\n']) == "," && !sep.contains('#')).then_some(sep)
}

/// Multi-line layout of a flow mapping (pretty-printed JSON): the column of its keys and the
/// indentation step, when its entries sit on their own lines.
struct Multi<'a> {
    col: usize,
    step: usize,
    eol: &'a str,
}

fn insert_flow(
    text: &str,
    map: &Node,
    pairs: &[(Node, Node)],
    j: usize,
    segs: &[String],
    leaf: Leaf<'_>,
    layout: &Layout,
) -> Result<Vec<Splice>, Error> {
    let json = layout.json;
    if pairs.is_empty() {
        // `{}` (or `{ }`): write the entry inside the braces.
        let at = map.span.start + 1;
        let entry = flow_entry(segs, leaf, &layout.flow_kv, &layout.flow_sep, None, json);
        let inner = text.get(at..map.span.end.saturating_sub(1)).unwrap_or("");
        if !inner.trim().is_empty() {
            return Err(unsupported(
                map.line,
                "unexpected text inside an empty mapping",
            ));
        }
        return Ok(vec![Splice::new(
            at..map.span.end.saturating_sub(1).max(at),
            entry,
        )]);
    }
    // The separator between entries and between a key and its value, copied from the mapping.
    let n = pairs.len();
    let sep = if n >= 2 {
        let (pk, pv) = &pairs[n - 2];
        let (lk, _) = &pairs[n - 1];
        flow_sep(text, pair_end(pk, pv), lk.span.start).map(str::to_string)
    } else {
        None
    };
    let opening = text
        .get(map.span.start + 1..pairs[0].0.span.start)
        .unwrap_or("");
    let multi_line = opening.contains('\n');
    let sep = sep.unwrap_or_else(|| {
        if multi_line && opening.trim_matches([' ', '\r', '\n']).is_empty() {
            format!(",{opening}")
        } else {
            layout.flow_sep.clone()
        }
    });
    let (k0, v0) = &pairs[0];
    let kv = text
        .get(k0.span.end..v0.span.start)
        .filter(|s| !v0.span.is_empty() && (*s == ":" || *s == ": "))
        .unwrap_or(&layout.flow_kv);
    let multi = if sep.contains('\n') {
        // The column of the keys: the last one's (the first may share the line with `{`).
        let kc = col(text, pairs[n - 1].0.span.start);
        let close = map.span.end.saturating_sub(1);
        let cc = if starts_line(text, close) {
            col(text, close)
        } else {
            kc.saturating_sub(layout.step)
        };
        Some(Multi {
            col: kc,
            step: if kc > cc { kc - cc } else { layout.step },
            eol: layout.eol,
        })
    } else {
        None
    };
    let entry = flow_entry(segs, leaf, kv, &layout.flow_sep, multi.as_ref(), json);
    if j == 0 {
        let at = k0.span.start;
        return Ok(vec![Splice::new(at..at, format!("{entry}{sep}"))]);
    }
    let (pk, pv) = &pairs[j - 1];
    let at = pair_end(pk, pv);
    // After an empty value (`{a: }`) the entry ends at its colon, and after a plain key `a:,`
    // is not a pair in a flow mapping: the colon keeps a blank after it (found by the fuzz
    // target). After a quoted key (`"a":,`) it is, and the text is left as it was.
    let quoted_key = matches!(pk.style(), Some(Style::Single | Style::Double));
    let blank =
        if pv.span.is_empty() && !quoted_key && text.get(..at).is_some_and(|t| t.ends_with(':')) {
            " "
        } else {
            ""
        };
    let add = comment_guard(text, at, format!("{blank}{sep}{entry}"));
    Ok(vec![Splice::new(at..at, add)])
}

/// `key: value` in flow style; nested new mappings inline, or on their own lines in a
/// multi-line (pretty JSON) mapping.
fn flow_entry(
    segs: &[String],
    leaf: Leaf<'_>,
    kv: &str,
    flow_sep: &str,
    multi: Option<&Multi<'_>>,
    json: bool,
) -> String {
    let key = yaml11::render_key(&segs[0], true, json);
    // `"k":v` is a pair only after a quoted key: after a plain key the colon needs a blank.
    let kv = if key.starts_with('"') || kv.ends_with([' ', '\t']) {
        kv
    } else {
        ": "
    };
    if segs.len() == 1 {
        let value = match leaf {
            Leaf::Scalar(v) => render(v, Quote::Plain, Quote::Double, true, json),
            Leaf::List(items) => flow_list(items, flow_sep, json),
        };
        return format!("{key}{kv}{value}");
    }
    match multi {
        Some(m) => {
            let inner = Multi {
                col: m.col + m.step,
                step: m.step,
                eol: m.eol,
            };
            format!(
                "{key}{kv}{{{eol}{pad}{}{eol}{close}}}",
                flow_entry(&segs[1..], leaf, kv, flow_sep, Some(&inner), json),
                eol = m.eol,
                pad = " ".repeat(inner.col),
                close = " ".repeat(m.col),
            )
        }
        None => format!(
            "{key}{kv}{{{}}}",
            flow_entry(&segs[1..], leaf, kv, flow_sep, None, json)
        ),
    }
}

/// Remove an existing key.
fn unset(text: &str, trail: &[(&Node, usize)], path: &KeyPath) -> Result<Vec<Splice>, Error> {
    let (map, j) = target(trail)?;
    let (k, v) = pair(map, j)?;
    if v.has_props_below() {
        return Err(unsupported(
            v.line,
            format!("`{path}` holds an anchor, tag or alias; refusing to remove it"),
        ));
    }
    let pairs = map.map_pairs().unwrap_or_default();
    let n = pairs.len();
    if map.is_flow() {
        let range = if n == 1 {
            map.span.start + 1..map.span.end.saturating_sub(1)
        } else if j + 1 < n {
            k.span.start..pairs[j + 1].0.span.start
        } else {
            let (pk, pv) = &pairs[j - 1];
            pair_end(pk, pv)..pair_end(k, v)
        };
        return Ok(vec![Splice::new(range, "")]);
    }
    if n == 1 {
        // The mapping becomes empty: its parent key gets `{}`.
        let Some(&(parent, pj)) = trail.len().checked_sub(2).and_then(|i| trail.get(i)) else {
            return Err(unsupported(
                k.line,
                "removing the only key would leave the document empty",
            ));
        };
        let (pk, _) = pair(parent, pj)?;
        let c = colon_after(text, pk)?;
        let end = line_end(text, map.content_end().max(c + 1));
        return Ok(vec![Splice::new(c + 1..end, " {}")]);
    }
    if !starts_line(text, k.span.start) {
        return Err(unsupported(
            k.line,
            format!("`{path}` does not start its own line; refusing to remove it"),
        ));
    }
    let mut start = line_start(text, k.span.start);
    let end = after_line(text, pair_end(k, v));
    // After a block scalar the line break before the key is the scalar's own last one (found
    // by the fuzz target): it stays, and the file then ends with a line break.
    let block_before = j
        .checked_sub(1)
        .and_then(|i| pairs.get(i))
        .and_then(|(_, pv)| block_scalar_ending_before(pv, text, start))
        .is_some();
    if end == text.len() && !text.ends_with('\n') && start > 0 && !block_before {
        // The last line of a file without a final newline: take the line break before it.
        start -= 1;
        if start > 0 && text.as_bytes()[start - 1] == b'\r' {
            start -= 1;
        }
    }
    Ok(vec![Splice::new(start..end, "")])
}

/// The layout of a block-sequence item's line: `<indent>-<blanks>ITEM<blanks># comment<EOL>`.
struct ItemLine {
    start: usize,
    end_incl: usize,
}

fn item_line(text: &str, item: &Node) -> Result<ItemLine, Error> {
    let start = line_start(text, item.span.start);
    let prefix = &text[start..item.span.start];
    let rest = prefix.trim_start_matches(' ');
    if !(rest.len() >= 2
        && rest.starts_with('-')
        && rest[1..].bytes().all(|c| c == b' ' || c == b'\t'))
    {
        return Err(unsupported(
            item.line,
            "a list item does not sit alone on its `- ` line; refusing to edit around it",
        ));
    }
    let end = line_end(text, item.span.end);
    let after = text[item.span.end..end].trim_start_matches([' ', '\t']);
    if !(after.is_empty() || after.starts_with('#')) {
        return Err(unsupported(item.line, "unexpected text after a list item"));
    }
    Ok(ItemLine {
        start,
        end_incl: after_line(text, item.span.end),
    })
}

/// The quote to use when a plain item must be quoted: the siblings' when they are quoted.
fn sibling_quote(items: &[Node]) -> Quote {
    let double = items.iter().any(|n| n.style() == Some(Style::Double));
    let single = items.iter().any(|n| n.style() == Some(Style::Single));
    if single && !double {
        Quote::Single
    } else {
        Quote::Double
    }
}

/// Replace an existing list, keeping unchanged items byte for byte.
fn set_list(
    text: &str,
    map: &Node,
    j: usize,
    new: &[Scalar],
    layout: &Layout,
    path: &KeyPath,
) -> Result<Vec<Splice>, Error> {
    let (json, default_sep) = (layout.json, layout.flow_sep.as_str());
    let (k, v) = pair(map, j)?;
    if v.has_props_below() {
        return Err(unsupported(
            v.line,
            format!("`{path}` holds an anchor, tag or alias; refusing to edit it"),
        ));
    }
    let Kind::Seq { flow, items: old } = &v.kind else {
        return Err(err(
            ErrorKind::Type,
            Some(v.line),
            format!(
                "`{path}` is {}, not a list; refusing to replace it with a list (unset it first)",
                v.what()
            ),
        ));
    };
    let flow = *flow;
    if let Some(bad) = old
        .iter()
        .find(|n| !matches!(n.kind, Kind::Scalar { style, .. } if style != Style::Block))
    {
        return Err(unsupported(
            bad.line,
            format!("`{path}` holds an item that is not a one-line scalar; refusing to edit it"),
        ));
    }
    // An item with no text (`-` alone, or before a comment) has no place of its own to splice
    // (found by the fuzz target).
    if let Some(bad) = old.iter().find(|n| !flow && n.span.is_empty()) {
        return Err(unsupported(
            bad.line,
            format!(
                "`{path}` holds an empty item (`-` with nothing after it); refusing to edit it"
            ),
        ));
    }
    if new.is_empty() {
        if old.is_empty() {
            return Ok(Vec::new());
        }
        if flow {
            return Ok(vec![Splice::new(v.span.clone(), "[]")]);
        }
        let c = colon_after(text, k)?;
        return Ok(vec![Splice::new(
            c + 1..line_end(text, v.content_end()),
            " []",
        )]);
    }
    if old.is_empty() {
        // Only a flow list can be empty.
        return Ok(vec![Splice::new(
            v.span.clone(),
            flow_list(new, default_sep, json),
        )]);
    }
    let mut splices = Vec::new();
    let fallback = sibling_quote(old);
    for (o, n) in old.iter().zip(new) {
        if already(o, n) {
            continue;
        }
        let r = render(n, quote_of(o), fallback, flow, json);
        splices.extend(Splice::minimal(o.span.clone(), &text[o.span.clone()], &r));
    }
    let (m, len) = (new.len(), old.len());
    if m > len {
        let last = &old[len - 1];
        let rendered: Vec<String> = new[len..]
            .iter()
            .map(|n| render(n, quote_of(last), fallback, flow, json))
            .collect();
        if flow {
            let opening = text.get(v.span.start + 1..old[0].span.start).unwrap_or("");
            let multi_line = format!(",{opening}");
            let sep = if len >= 2 {
                flow_sep(text, old[len - 2].span.end, last.span.start).unwrap_or(default_sep)
            } else if opening.contains('\n') && opening.trim_matches([' ', '\r', '\n']).is_empty() {
                multi_line.as_str()
            } else {
                default_sep
            };
            let add: String = rendered.iter().map(|r| format!("{sep}{r}")).collect();
            let add = comment_guard(text, last.span.end, add);
            splices.push(Splice::new(last.span.end..last.span.end, add));
        } else {
            let il = item_line(text, last)?;
            let prefix = &text[il.start..last.span.start];
            let eol = if text[..il.end_incl].ends_with("\r\n") || text.contains("\r\n") {
                "\r\n"
            } else {
                "\n"
            };
            let lines: String = rendered
                .iter()
                .map(|r| format!("{prefix}{r}{eol}"))
                .collect();
            if il.end_incl == text.len() && !text.ends_with('\n') {
                let body = lines.strip_suffix(eol).unwrap_or(&lines);
                splices.push(Splice::new(
                    il.end_incl..il.end_incl,
                    format!("{eol}{body}"),
                ));
            } else {
                splices.push(Splice::new(il.end_incl..il.end_incl, lines));
            }
        }
    } else if m < len {
        if flow {
            splices.push(Splice::new(old[m - 1].span.end..old[len - 1].span.end, ""));
        } else {
            let mut start = item_line(text, &old[m])?.start;
            let mut end = start;
            for it in &old[m..] {
                end = item_line(text, it)?.end_incl;
            }
            if end == text.len() && !text.ends_with('\n') && start > 0 {
                start -= 1;
                if start > 0 && text.as_bytes()[start - 1] == b'\r' {
                    start -= 1;
                }
            }
            splices.push(Splice::new(start..end, ""));
        }
    }
    Ok(splices)
}

/// Re-read `text` and return the root (for the verification module).
pub(crate) fn reload(text: &str) -> Result<Node, Error> {
    let docs = tree::parse(text).map_err(internal)?;
    let mut docs = docs;
    match (docs.pop(), docs.is_empty()) {
        (Some(root), true) => Ok(root),
        _ => Err(verify::failed_msg("the output is not one document")),
    }
}
