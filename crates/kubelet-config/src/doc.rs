//! Loading a `KubeletConfiguration` file and finding keys in it.
//!
//! Why it exists: the editor and the effective-configuration reader must agree on what the file
//! says and refuse the same things. This module checks the input (size, UTF-8, line endings),
//! parses it into the byte-span tree, insists on exactly one document whose root is a mapping
//! (and whose `kind`, when present, is `KubeletConfiguration`), tells YAML from JSON, learns the
//! file's own layout (indentation step, how lists are written, line endings) so new text looks
//! like the old, and walks key paths refusing what it cannot read with certainty: aliases,
//! anchors or tags on the path, merge keys (`<<`) and duplicate keys in the mappings on the path,
//! and non-mappings where a mapping is needed.

use crate::error::{err, line_of, Error, ErrorKind};
use crate::keypath::KeyPath;
use crate::tree::{self, Kind, Node, Style};
use crate::yaml11::{self, Resolved};
use serde::{Deserialize, Serialize};

/// The largest configuration file accepted, before or after an edit (a kubelet configuration is
/// a few KiB).
pub const MAX_CONFIG_BYTES: usize = 256 * 1024;

/// How a configuration file is written. The kubelet accepts both (JSON is read as YAML).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Format {
    Yaml,
    /// The file is a JSON object: edits keep it valid JSON (double-quoted keys and strings).
    Json,
}

/// How the file writes new block lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ListLayout {
    /// `- item` lines, the dash `dash_offset` columns right of the key, `after_dash` between the
    /// dash and the item.
    Block {
        dash_offset: usize,
        after_dash: String,
    },
    /// `[a, b]`.
    Flow,
}

/// The file's own conventions, learnt from its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    pub eol: &'static str,
    /// Indentation added by a nested block mapping.
    pub step: usize,
    pub list: ListLayout,
    pub json: bool,
    /// Between flow entries on one line (`, ` or `,` in compact JSON).
    pub flow_sep: String,
    /// Between a key and its value in flow mappings (`: ` or `:`).
    pub flow_kv: String,
}

/// Size, UTF-8 and line-ending checks.
pub(crate) fn check_input<'a>(input: &'a [u8], what: &str) -> Result<&'a str, Error> {
    if input.len() > MAX_CONFIG_BYTES {
        return Err(err(
            ErrorKind::TooLarge,
            None,
            format!(
                "{} bytes is too large for {what} (limit {MAX_CONFIG_BYTES})",
                input.len()
            ),
        ));
    }
    let text = std::str::from_utf8(input).map_err(|e| {
        err(
            ErrorKind::Syntax,
            Some(line_of(input, e.valid_up_to())),
            "not valid UTF-8",
        )
    })?;
    let b = text.as_bytes();
    if let Some(p) = (0..b.len()).find(|&i| b[i] == b'\r' && b.get(i + 1) != Some(&b'\n')) {
        return Err(err(
            ErrorKind::Unsupported,
            Some(line_of(input, p)),
            "a carriage return without a line feed (old Mac line endings) is not supported",
        ));
    }
    if let Some(p) = b.iter().position(|&c| c == 0) {
        return Err(err(
            ErrorKind::Syntax,
            Some(line_of(input, p)),
            "a NUL byte in a text file",
        ));
    }
    if let Some((p, c)) = yaml11::yaml11_only_line_break(text) {
        return Err(err(
            ErrorKind::Unsupported,
            Some(line_of(input, p)),
            format!(
                "U+{:04X} is a line break to the kubelet's YAML reader and not to others: refusing a file that reads two ways",
                u32::from(c)
            ),
        ));
    }
    Ok(text)
}

/// The text without a leading byte-order mark (an encoding marker, not content).
pub(crate) fn strip_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

/// Whether `text` is a JSON object (what the kubelet would also read as YAML).
pub(crate) fn is_json(text: &str) -> bool {
    let t = strip_bom(text);
    t.trim_start().starts_with('{') && serde_json::from_str::<serde_json::Value>(t).is_ok()
}

/// Parse `text` into its one document's root mapping, checking what every caller needs.
pub(crate) fn load(text: &str) -> Result<Node, Error> {
    let mut docs = tree::parse(text)?;
    if docs.len() > 1 {
        return Err(err(
            ErrorKind::Unsupported,
            docs.get(1).map(|d| d.line),
            format!(
                "{} YAML documents; a KubeletConfiguration file holds exactly one",
                docs.len()
            ),
        ));
    }
    let Some(root) = docs.pop() else {
        return Err(err(
            ErrorKind::Type,
            None,
            "no document (an empty configuration file is refused by the kubelet)",
        ));
    };
    if matches!(root.kind, Kind::Alias) || root.props {
        return Err(err(
            ErrorKind::Unsupported,
            Some(root.line),
            "the document root carries an anchor, tag or alias",
        ));
    }
    let Some(pairs) = root.map_pairs() else {
        return Err(err(
            ErrorKind::Type,
            Some(root.line),
            format!("the document is {}, not a mapping", root.what()),
        ));
    };
    // Explicit `? key` entries: their text layout is not one this crate splices around (new
    // text after one can become part of the key), so the whole file is refused.
    // Each node with where the text before it starts (the end of the node before it, or of
    // its collection's start): an explicit key's `?` is in that text.
    let mut stack = vec![(&root, 0)];
    while let Some((n, from)) = stack.pop() {
        match &n.kind {
            Kind::Map { pairs, .. } => {
                let mut from = from.max(if n.is_flow() { n.span.start } else { 0 });
                for (k, v) in pairs {
                    if tree::explicit_key(text, from, k) {
                        return Err(err(
                            ErrorKind::Unsupported,
                            Some(k.line),
                            "an explicit `?` mapping key; refusing to edit or read this file",
                        ));
                    }
                    if empty_block_scalar(v) {
                        return Err(empty_block_refusal(k.line));
                    }
                    // Only a flow mapping's key can span lines; the kubelet's keys never do, and
                    // text spliced after one can join it (found by the fuzz target).
                    if text.get(k.span.clone()).is_some_and(|t| t.contains('\n')) {
                        return Err(err(
                            ErrorKind::Unsupported,
                            Some(k.line),
                            "a mapping key written over several lines; refusing to edit or read this file",
                        ));
                    }
                    stack.push((k, from));
                    stack.push((v, k.content_end()));
                    from = tree::pair_end(k, v);
                }
            }
            Kind::Seq { items, .. } => {
                let mut from = from.max(if n.is_flow() { n.span.start } else { 0 });
                for it in items {
                    if empty_block_scalar(it) {
                        // Its own line is wrong too: the line of the item's `-`.
                        let dash = text[from.min(text.len())..]
                            .find(|c: char| !c.is_whitespace() && !matches!(c, ',' | '[' | ':'))
                            .map_or(from, |i| from + i);
                        return Err(empty_block_refusal(line_of(text.as_bytes(), dash)));
                    }
                    stack.push((it, from));
                    from = it.content_end().max(from);
                }
            }
            _ => {}
        }
    }
    for (k, v) in pairs {
        let want = match k.scalar() {
            Some("kind") => "KubeletConfiguration",
            Some("apiVersion") => "kubelet.config.k8s.io/",
            _ => continue,
        };
        let ok = match v.scalar() {
            Some(s) if want.ends_with('/') => s.starts_with(want),
            Some(s) => s == want,
            None => false,
        };
        if !ok {
            return Err(err(
                ErrorKind::Type,
                Some(v.line),
                format!(
                    "`{}` is {:?}, not a KubeletConfiguration ({want}...)",
                    k.scalar().unwrap_or_default(),
                    v.scalar().unwrap_or("a collection")
                ),
            ));
        }
    }
    Ok(root)
}

/// Column (bytes from the line start) of `pos`.
pub(crate) fn col(text: &str, pos: usize) -> usize {
    pos - line_start(text, pos)
}

/// Where `pos`'s line starts (after a leading byte-order mark on the first line: it is an
/// encoding marker, not indentation).
pub(crate) fn line_start(text: &str, pos: usize) -> usize {
    let pos = pos.min(text.len());
    match text[..pos].rfind('\n') {
        Some(p) => p + 1,
        None if text.starts_with('\u{feff}') && pos >= 3 => 3,
        None => 0,
    }
}

/// Only spaces between the start of `pos`'s line and `pos`.
pub(crate) fn starts_line(text: &str, pos: usize) -> bool {
    text[line_start(text, pos)..pos].bytes().all(|c| c == b' ')
}

/// The position after the line break that ends the line holding `pos` (or the text's end).
pub(crate) fn after_line(text: &str, pos: usize) -> usize {
    text[pos.min(text.len())..]
        .find('\n')
        .map_or(text.len(), |p| pos + p + 1)
}

/// The end of `pos`'s line, before its line break (`\n` or `\r\n`).
pub(crate) fn line_end(text: &str, pos: usize) -> usize {
    let e = text[pos.min(text.len())..]
        .find('\n')
        .map_or(text.len(), |p| pos + p);
    if e > pos && text.as_bytes()[e - 1] == b'\r' {
        e - 1
    } else {
        e
    }
}

/// The `:` after a mapping key.
pub(crate) fn colon_after(text: &str, key: &Node) -> Result<usize, Error> {
    let b = text.as_bytes();
    let mut i = key.span.end;
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    if b.get(i) == Some(&b':') {
        Ok(i)
    } else {
        Err(err(
            ErrorKind::Unsupported,
            Some(key.line),
            "a mapping key written in a form this editor does not splice (explicit `?` key or a key spanning lines)",
        ))
    }
}

impl Layout {
    /// Learn the file's conventions from its tree.
    pub(crate) fn detect(text: &str, root: &Node, json: bool) -> Layout {
        let eol = if text.contains("\r\n") { "\r\n" } else { "\n" };
        let mut step = None;
        let mut list = None;
        let mut flow_list = false;
        let mut flow_sep: Option<String> = None;
        let mut flow_kv: Option<String> = None;
        let mut stack = vec![root];
        while let Some(n) = stack.pop() {
            if n.is_flow() {
                let ends: Vec<(usize, usize)> = match &n.kind {
                    Kind::Seq { items, .. } => items
                        .iter()
                        .map(|i| (i.span.start, i.content_end()))
                        .collect(),
                    Kind::Map { pairs, .. } => {
                        if flow_kv.is_none() {
                            if let Some((k, v)) = pairs.iter().find(|(_, v)| !v.span.is_empty()) {
                                let kv = text.get(k.span.end..v.span.start).unwrap_or("");
                                if kv == ":" || kv == ": " {
                                    flow_kv = Some(kv.to_string());
                                }
                            }
                        }
                        pairs
                            .iter()
                            .map(|(k, v)| (k.span.start, tree::pair_end(k, v)))
                            .collect()
                    }
                    _ => Vec::new(),
                };
                if flow_sep.is_none() {
                    if let Some(w) = ends.windows(2).next() {
                        let sep = text.get(w[0].1..w[1].0).unwrap_or("");
                        if sep.trim_matches(' ') == "," {
                            flow_sep = Some(sep.to_string());
                        }
                    }
                }
            }
            match &n.kind {
                Kind::Map { flow: false, pairs } => {
                    for (k, v) in pairs {
                        match &v.kind {
                            Kind::Map {
                                flow: false,
                                pairs: inner,
                            } if step.is_none() => {
                                if let Some((ik, _)) = inner.first() {
                                    let (c, p) =
                                        (col(text, ik.span.start), col(text, k.span.start));
                                    if c > p && starts_line(text, ik.span.start) {
                                        step = Some(c - p);
                                    }
                                }
                            }
                            Kind::Seq { flow: false, items } if list.is_none() => {
                                if let Some(first) = items.first() {
                                    let ls = line_start(text, first.span.start);
                                    let prefix = &text[ls..first.span.start];
                                    let indent = prefix.bytes().take_while(|&c| c == b' ').count();
                                    let rest = &prefix[indent..];
                                    if let Some(after) = rest.strip_prefix('-') {
                                        if !after.is_empty()
                                            && after.bytes().all(|c| c == b' ')
                                            && indent >= col(text, k.span.start)
                                        {
                                            list = Some(ListLayout::Block {
                                                dash_offset: indent - col(text, k.span.start),
                                                after_dash: after.to_string(),
                                            });
                                        }
                                    }
                                }
                            }
                            Kind::Seq { flow: true, .. } => flow_list = true,
                            _ => {}
                        }
                        stack.push(v);
                    }
                }
                Kind::Map { flow: true, pairs } => stack.extend(pairs.iter().map(|(_, v)| v)),
                Kind::Seq { items, flow } => {
                    if *flow {
                        flow_list = true;
                    }
                    stack.extend(items.iter());
                }
                _ => {}
            }
        }
        let step = step.unwrap_or(2);
        let list = if json {
            ListLayout::Flow
        } else {
            match (list, flow_list) {
                (Some(l), _) => l,
                (None, true) => ListLayout::Flow,
                (None, false) => ListLayout::Block {
                    dash_offset: step,
                    after_dash: " ".into(),
                },
            }
        };
        Layout {
            eol,
            step,
            list,
            json,
            flow_sep: flow_sep.unwrap_or_else(|| ", ".into()),
            flow_kv: flow_kv.unwrap_or_else(|| ": ".into()),
        }
    }
}

/// The result of walking a key path.
pub(crate) enum Walk<'t> {
    /// The key exists. The trail holds each mapping from the root and the index of the pair
    /// taken in it; the last entry is the target pair.
    Found(Vec<(&'t Node, usize)>),
    /// The mapping `map` (reached by the first `depth` keys) lacks the key `segments[depth]`.
    Missing { map: &'t Node, depth: usize },
}

/// `node` as a mapping on the way to `what`, refusing whatever could make a key mean something
/// other than it says: aliases, anchors and tags, merge keys, duplicate keys.
pub(crate) fn mapping_on_path<'t>(node: &'t Node, what: &str) -> Result<&'t [(Node, Node)], Error> {
    if matches!(node.kind, Kind::Alias) {
        return Err(err(
            ErrorKind::Unsupported,
            Some(node.line),
            format!("`{what}` is an alias; refusing to edit or read through aliases"),
        ));
    }
    if node.props {
        return Err(err(
            ErrorKind::Unsupported,
            Some(node.line),
            format!("`{what}` carries an anchor or tag; refusing to edit or read it"),
        ));
    }
    let Some(pairs) = node.map_pairs() else {
        return Err(err(
            ErrorKind::Type,
            Some(node.line),
            format!("`{what}` is {}, not a mapping", node.what()),
        ));
    };
    let mut seen: Vec<(&str, usize)> = Vec::new();
    for (k, _) in pairs {
        if k.props || matches!(k.kind, Kind::Alias) {
            return Err(err(
                ErrorKind::Unsupported,
                Some(k.line),
                format!(
                    "a key in `{what}` is an explicit `?` key or carries an anchor, tag or alias"
                ),
            ));
        }
        let Some(name) = k.scalar() else {
            return Err(err(
                ErrorKind::Unsupported,
                Some(k.line),
                format!("`{what}` has a key that is not a scalar (a `?` complex key); refusing to edit or read it"),
            ));
        };
        if name == "<<" && k.style() == Some(Style::Plain) {
            return Err(err(
                ErrorKind::Unsupported,
                Some(k.line),
                format!("`{what}` uses a merge key (`<<`); refusing to edit or read through it"),
            ));
        }
        if let Some((_, first)) = seen.iter().find(|(n, _)| *n == name) {
            return Err(err(
                ErrorKind::Unsupported,
                Some(k.line),
                format!("duplicate key `{name}` in `{what}` (first on line {first})"),
            ));
        }
        seen.push((name, k.line));
    }
    Ok(pairs)
}

/// Walk `path` from the root mapping.
pub(crate) fn walk<'t>(root: &'t Node, path: &KeyPath) -> Result<Walk<'t>, Error> {
    let mut cur = root;
    let mut trail = Vec::new();
    for (depth, seg) in path.segments().iter().enumerate() {
        let what = if depth == 0 {
            "the document".to_string()
        } else {
            path.prefix(depth)
        };
        let pairs = mapping_on_path(cur, &what)?;
        match pairs
            .iter()
            .position(|(k, _)| k.scalar() == Some(seg.as_str()))
        {
            Some(j) => {
                trail.push((cur, j));
                cur = &pairs[j].1;
            }
            None => return Ok(Walk::Missing { map: cur, depth }),
        }
    }
    Ok(Walk::Found(trail))
}

/// A block scalar (`|`, `>`) with no text: the parser gives it no place of its own in the
/// file (its span runs into what follows), so nothing can be spliced next to it (found by the
/// fuzz target: a key added or removed beside one landed in the wrong place).
fn empty_block_scalar(n: &Node) -> bool {
    matches!(&n.kind, Kind::Scalar { value, style: Style::Block } if value.trim().is_empty())
}

fn empty_block_refusal(line: usize) -> Error {
    err(
        ErrorKind::Unsupported,
        Some(line),
        "a block scalar (`|` or `>`) with no text; refusing to edit or read this file (write \
         `\"\"` for an empty value)",
    )
}

/// A value as the kubelet's YAML reader (go-yaml v2, YAML 1.1) types it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum YamlValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<YamlValue>),
    /// Keys in file order.
    Map(Vec<(String, YamlValue)>),
}

impl YamlValue {
    /// A short name of the value's type, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            YamlValue::Null => "null",
            YamlValue::Bool(_) => "a boolean",
            YamlValue::Int(_) => "an integer",
            YamlValue::Float(_) => "a number",
            YamlValue::Str(_) => "a string",
            YamlValue::List(_) => "a list",
            YamlValue::Map(_) => "a mapping",
        }
    }
}

/// The typed reading of `node` (aliases, anchors and tags refused).
pub(crate) fn typed(node: &Node, what: &str) -> Result<YamlValue, Error> {
    if node.props || matches!(node.kind, Kind::Alias) {
        return Err(err(
            ErrorKind::Unsupported,
            Some(node.line),
            format!("`{what}` holds an anchor, tag or alias; refusing to read through it"),
        ));
    }
    Ok(match &node.kind {
        Kind::Scalar {
            value,
            style: Style::Plain,
        } => match yaml11::resolve(value) {
            Resolved::Null => YamlValue::Null,
            Resolved::Bool(b) => YamlValue::Bool(b),
            Resolved::Int(i) => YamlValue::Int(i),
            // Beyond i64: no key the kubelet has takes it as an integer.
            Resolved::Uint(u) => YamlValue::Float(u as f64),
            Resolved::Float(f) => YamlValue::Float(f),
            // sigs.k8s.io/yaml decodes into interface{} first: the string as written.
            Resolved::Timestamp => YamlValue::Str(value.clone()),
            Resolved::Str(s) => YamlValue::Str(s),
        },
        Kind::Scalar { value, .. } => YamlValue::Str(value.clone()),
        Kind::Seq { items, .. } => YamlValue::List(
            items
                .iter()
                .map(|n| typed(n, what))
                .collect::<Result<_, _>>()?,
        ),
        Kind::Map { .. } => {
            let pairs = mapping_on_path(node, what)?;
            let mut out = Vec::with_capacity(pairs.len());
            for (k, v) in pairs {
                let Some(name) = k.scalar() else {
                    return Err(err(
                        ErrorKind::Unsupported,
                        Some(k.line),
                        format!("a non-scalar key in `{what}`"),
                    ));
                };
                out.push((name.to_string(), typed(v, &format!("{what}.{name}"))?));
            }
            YamlValue::Map(out)
        }
        Kind::Alias => YamlValue::Null,
    })
}

/// One value read from a configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileValue {
    pub value: YamlValue,
    /// 1-based line of the value (of its key for an empty value).
    pub line: usize,
    /// The value's text as written (for collections: up to the end of their last entry).
    pub written: String,
}

/// A parsed `KubeletConfiguration` file, for reading values (no defaults applied: this is what
/// the file says, as the kubelet's YAML reader types it).
pub struct ConfigDoc {
    text: String,
    root: Node,
    format: Format,
}

impl std::fmt::Debug for ConfigDoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigDoc")
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl ConfigDoc {
    /// Parse and check a configuration file: the same checks as the editor (size, UTF-8, one
    /// document, a mapping, `kind: KubeletConfiguration` when present).
    pub fn parse(input: &[u8]) -> Result<ConfigDoc, Error> {
        let text = check_input(input, "a kubelet configuration file")?;
        let root = load(text)?;
        Ok(ConfigDoc {
            format: if is_json(text) {
                Format::Json
            } else {
                Format::Yaml
            },
            text: text.to_string(),
            root,
        })
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// The value at `path`, or `None` when a key on the path is absent. Refuses (with the line)
    /// aliases, anchors, tags, merge keys and duplicate keys on the path, and a non-mapping where
    /// the path needs a mapping.
    pub fn get(&self, path: &KeyPath) -> Result<Option<FileValue>, Error> {
        match walk(&self.root, path)? {
            Walk::Missing { .. } => Ok(None),
            Walk::Found(trail) => {
                let Some(&(map, j)) = trail.last() else {
                    return Ok(None);
                };
                let Some((k, v)) = map.map_pairs().and_then(|p| p.get(j)) else {
                    return Ok(None);
                };
                let value = typed(v, &path.to_string())?;
                let (start, end) = if v.span.is_empty() {
                    (k.span.start, k.span.start)
                } else {
                    (v.span.start, v.content_end().max(v.span.start))
                };
                Ok(Some(FileValue {
                    value,
                    line: if v.span.is_empty() { k.line } else { v.line },
                    written: self.text.get(start..end).unwrap_or_default().to_string(),
                }))
            }
        }
    }

    /// The value at `path` as the kubelet reads it: `None` when a key on the path is absent or
    /// null (the kubelet leaves the setting alone then). A scalar or list where the path needs a
    /// mapping is a type error (the kubelet's decoder refuses the file).
    pub(crate) fn lookup(&self, path: &KeyPath) -> Result<Option<FileValue>, Error> {
        let mut cur = &self.root;
        for (depth, seg) in path.segments().iter().enumerate() {
            if cur.is_null() && !cur.props {
                return Ok(None);
            }
            let what = if depth == 0 {
                "the document".to_string()
            } else {
                path.prefix(depth)
            };
            let pairs = mapping_on_path(cur, &what)?;
            match pairs.iter().find(|(k, _)| k.scalar() == Some(seg.as_str())) {
                Some((_, v)) => cur = v,
                None => return Ok(None),
            }
        }
        match self.get(path)? {
            Some(FileValue {
                value: YamlValue::Null,
                ..
            }) => Ok(None),
            other => Ok(other),
        }
    }

    /// The whole document as the kubelet's reader types it.
    pub fn value(&self) -> Result<YamlValue, Error> {
        typed(&self.root, "the document")
    }
}
