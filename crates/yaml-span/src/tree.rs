//! A small syntax tree built from saphyr-parser events, with exact **byte** spans.
//!
//! Why it exists: both editors (static pod manifests, the kubelet's configuration) splice
//! bytes, so they must know exactly where each node of the text starts and ends. saphyr-parser
//! reports positions as *character* indices and, for quoted scalars, a span that also covers
//! trailing blanks and comments; this module converts positions to byte offsets, trims quoted
//! scalars to their closing quote and block scalars to their last character, gives an empty
//! value an empty span where it stands, tells a tagged block collection from a flow one, and
//! computes 1-based lines from byte offsets, so that every other module works on `&str` byte
//! ranges.

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use std::ops::Range;

/// Deepest nesting accepted. A manifest is ~10 levels deep, a KubeletConfiguration ~5; the
/// limit keeps the recursive walks and drops safe on hostile input.
pub const MAX_DEPTH: usize = 64;

/// How a scalar was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    Single,
    Double,
    /// `|` or `>` block scalars.
    Block,
}

#[derive(Debug)]
pub enum Kind {
    Scalar {
        value: String,
        style: Style,
    },
    Seq {
        flow: bool,
        items: Vec<Node>,
    },
    Map {
        flow: bool,
        pairs: Vec<(Node, Node)>,
    },
    Alias,
}

#[derive(Debug)]
pub struct Node {
    pub kind: Kind,
    /// Byte range in the text. Scalars without properties: exactly the scalar as written
    /// (quotes included, trailing blanks excluded; an empty plain scalar is an empty range).
    /// Flow collections: from the opening to after the closing bracket. Block collections: the
    /// start is the first entry; the end may run past trailing comments (see
    /// [`Node::content_end`]).
    pub span: Range<usize>,
    /// 1-based line of `span.start`.
    pub line: usize,
    /// The node carries an anchor or a tag.
    pub props: bool,
}

impl Node {
    pub fn scalar(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    pub fn style(&self) -> Option<Style> {
        match &self.kind {
            Kind::Scalar { style, .. } => Some(*style),
            _ => None,
        }
    }

    pub fn is_flow(&self) -> bool {
        matches!(
            self.kind,
            Kind::Seq { flow: true, .. } | Kind::Map { flow: true, .. }
        )
    }

    pub fn seq_items(&self) -> Option<&[Node]> {
        match &self.kind {
            Kind::Seq { items, .. } => Some(items),
            _ => None,
        }
    }

    pub fn map_pairs(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            Kind::Map { pairs, .. } => Some(pairs),
            _ => None,
        }
    }

    /// A plain scalar that YAML reads as null (`~`, `null`, or nothing at all).
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar { value, style: Style::Plain }
            if matches!(value.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// A short name of the node's kind, for messages.
    pub fn what(&self) -> &'static str {
        match &self.kind {
            Kind::Scalar { .. } if self.is_null() => "null",
            Kind::Scalar { .. } => "a scalar",
            Kind::Seq { .. } => "a list",
            Kind::Map { .. } => "a mapping",
            Kind::Alias => "an alias",
        }
    }

    /// End of the last scalar (or flow collection) inside this node: where its text really ends,
    /// before any trailing comment or blank line.
    pub fn content_end(&self) -> usize {
        match &self.kind {
            Kind::Scalar { .. } | Kind::Alias => self.span.end,
            Kind::Seq { flow: true, .. } | Kind::Map { flow: true, .. } => self.span.end,
            Kind::Seq { items, .. } => items
                .iter()
                .map(Node::content_end)
                .max()
                .unwrap_or(self.span.start),
            Kind::Map { pairs, .. } => pairs
                .iter()
                .map(|(k, v)| pair_end(k, v))
                .max()
                .unwrap_or(self.span.start),
        }
    }

    /// True when this node or anything below it is an alias or carries an anchor or tag.
    pub fn has_props_below(&self) -> bool {
        if self.props {
            return true;
        }
        match &self.kind {
            Kind::Alias => true,
            Kind::Scalar { .. } => false,
            Kind::Seq { items, .. } => items.iter().any(Node::has_props_below),
            Kind::Map { pairs, .. } => pairs
                .iter()
                .any(|(k, v)| k.has_props_below() || v.has_props_below()),
        }
    }
}

/// Whether a mapping key is written as an explicit `? key`: a `?` indicator (followed by a blank,
/// a line break or the key) in the text between `from` (where the node before the key ends, or
/// where its collection starts) and the key. That text holds no scalar, only indicators, blanks
/// and comments, so a `#` at a line's start or after a blank starts a comment, and a `?` inside
/// one is not an indicator (found by the fuzz target: `# why?` before a key, and `? # c` with
/// the key on the next line).
pub fn explicit_key(text: &str, from: usize, k: &Node) -> bool {
    let end = k.span.start.min(text.len());
    let Some(region) = text.get(from.min(end)..end) else {
        return false;
    };
    let mut blank_before = from == 0 || text[..from.min(end)].ends_with(['\n', ' ', '\t', '\r']);
    let mut chars = region.chars().peekable();
    let mut in_comment = false;
    while let Some(c) = chars.next() {
        if c == '\n' {
            in_comment = false;
            blank_before = true;
            continue;
        }
        if in_comment {
            continue;
        }
        match c {
            '#' if blank_before => in_comment = true,
            '?' if chars
                .peek()
                .is_none_or(|n| matches!(n, ' ' | '\t' | '\r' | '\n')) =>
            {
                return true
            }
            _ => {}
        }
        blank_before = matches!(c, ' ' | '\t' | '\r');
    }
    false
}

/// Where a mapping entry's text ends.
pub fn pair_end(k: &Node, v: &Node) -> usize {
    k.content_end().max(v.content_end())
}

/// An empty value (null, no text) sits right after its key's `:`, or right after the key when
/// it has no colon (`{a, b}`): saphyr places it at the colon or on the next token.
fn place_empty_value(text: &str, k: &Node, v: &mut Node) {
    let empty = v.span.is_empty()
        && !v.props
        && matches!(&v.kind, Kind::Scalar { value, style: Style::Plain } if value.is_empty());
    if !empty {
        return;
    }
    let b = text.as_bytes();
    let mut i = k.span.end;
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    let at = if b.get(i) == Some(&b':') {
        i + 1
    } else {
        k.span.end
    };
    v.span = at..at;
}

/// The end of the properties (`!tag`, `&anchor`, separated by blanks, comments or line breaks)
/// starting at `start`.
fn props_end(text: &str, start: usize) -> usize {
    let b = text.as_bytes();
    let blank = |c: u8| matches!(c, b' ' | b'\t' | b'\r' | b'\n');
    let mut i = start;
    let mut end = start;
    loop {
        // Properties may continue after blanks, a comment and line breaks (`&a\n  !t`).
        while i < b.len() && blank(b[i]) {
            i += 1;
        }
        if i < b.len() && b[i] == b'#' && (i == 0 || blank(b[i - 1])) {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if !(i < b.len() && (b[i] == b'!' || b[i] == b'&')) {
            return end;
        }
        while i < b.len() && !matches!(b[i], b' ' | b'\t' | b'\r' | b'\n' | b',' | b'}' | b']') {
            i += 1;
        }
        end = i;
    }
}

/// Converts saphyr's character indices into byte offsets.
struct CharIndex {
    /// `None` for ASCII text (indices are already bytes).
    offsets: Option<Vec<usize>>,
    len: usize,
}

impl CharIndex {
    fn new(text: &str) -> Self {
        let offsets = if text.is_ascii() {
            None
        } else {
            let mut v: Vec<usize> = text.char_indices().map(|(b, _)| b).collect();
            v.push(text.len());
            Some(v)
        };
        CharIndex {
            offsets,
            len: text.len(),
        }
    }

    fn byte(&self, char_index: usize) -> usize {
        match &self.offsets {
            None => char_index.min(self.len),
            Some(v) => v.get(char_index).copied().unwrap_or(self.len),
        }
    }
}

/// End (exclusive) of a quoted scalar starting at `start` (on its opening quote), searching no
/// further than `limit`. Falls back to `limit` when no closing quote is found.
fn quoted_end(text: &str, start: usize, limit: usize, quote: u8) -> usize {
    let b = text.as_bytes();
    let limit = limit.min(b.len());
    let mut i = start + 1;
    while i < limit {
        let c = b[i];
        if quote == b'"' && c == b'\\' {
            i += 2;
            continue;
        }
        if c == quote {
            if quote == b'\'' && i + 1 < limit && b[i + 1] == b'\'' {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    limit
}

/// End of a block scalar's text: its span may run to the start of the next line.
fn block_end(text: &str, start: usize, end: usize) -> usize {
    let b = text.as_bytes();
    let mut e = end.min(b.len());
    while e > start && matches!(b[e - 1], b' ' | b'\t' | b'\n' | b'\r') {
        e -= 1;
    }
    e
}

/// Whether a collection's start event (`start..end`) opens a flow collection with `bracket`.
/// A block collection's start is empty, unless it carries a tag or anchor: then it covers them
/// (and the blanks after), which must not be mistaken for a flow collection.
fn opens(text: &str, start: usize, end: usize, bracket: char) -> bool {
    let Some(mut s) = text.get(start..end) else {
        return false;
    };
    // Skip the properties (`!tag`, `&anchor`) and blanks; a comment may follow the bracket.
    loop {
        s = s.trim_start_matches([' ', '\t', '\r', '\n']);
        if s.starts_with(['!', '&']) {
            let n = s.find([' ', '\t', '\r', '\n', '{', '[']).unwrap_or(s.len());
            s = &s[n..];
        } else {
            return s.starts_with(bracket);
        }
    }
}

/// The end of a collection: for a flow one, right after its closing bracket (saphyr's end
/// event may also cover blanks and a comment after it).
fn flow_end(text: &str, flow: bool, start: usize, ev: (usize, usize), close: char) -> usize {
    let (ev_start, ev_end) = ev;
    let end = ev_end.max(start);
    if !flow {
        return end;
    }
    // The end event starts on the closing bracket (or on a trailing comma before it).
    let Some(rest) = text.get(ev_start..) else {
        return end;
    };
    let skipped = rest.trim_start_matches([',', ' ', '\t', '\r', '\n']);
    if skipped.starts_with(close) {
        ev_start + (rest.len() - skipped.len()) + 1
    } else {
        end
    }
}

enum Frame {
    Seq {
        flow: bool,
        start: usize,
        line: usize,
        props: bool,
        items: Vec<Node>,
    },
    Map {
        flow: bool,
        start: usize,
        line: usize,
        props: bool,
        pairs: Vec<(Node, Node)>,
        key: Option<Node>,
    },
}

/// Text that is not YAML the tree can hold, with the 1-based line when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: Option<usize>,
    pub reason: String,
}

impl std::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: {}", self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

impl std::error::Error for SyntaxError {}

fn syntax(line: Option<usize>, reason: String) -> SyntaxError {
    SyntaxError { line, reason }
}

/// Byte offsets of line starts, for [`line_at`].
pub fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

/// 1-based line of byte `pos`, given [`line_starts`].
pub fn line_at(starts: &[usize], pos: usize) -> usize {
    starts.partition_point(|&s| s <= pos)
}

/// Parse every document of `text`. Each returned node is a document's root.
pub fn parse(text: &str) -> Result<Vec<Node>, SyntaxError> {
    let idx = CharIndex::new(text);
    let mut docs = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut parser = Parser::new_from_str(text);
    let bspan = |s: &Span| (idx.byte(s.start.index()), idx.byte(s.end.index()));
    // Lines are computed from byte offsets: saphyr's marker lines are not always those of the
    // marker's index (block scalars report the line after their content).
    let starts = line_starts(text);
    while let Some(next) = parser.next_event() {
        let (ev, span) = next.map_err(|e| {
            syntax(
                Some(e.marker().line()),
                format!("invalid YAML: {}", e.info()),
            )
        })?;
        let (start, end) = bspan(&span);
        let ev_start = start;
        let line = line_at(&starts, start);
        let done: Option<Node> = match ev {
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart(_)
            | Event::DocumentEnd => None,
            Event::Alias(_) => Some(Node {
                kind: Kind::Alias,
                span: start..end,
                line,
                props: true,
            }),
            Event::Scalar(value, style, anchor, tag) => {
                let props = anchor != 0 || tag.is_some();
                let (style, end) = match style {
                    ScalarStyle::Plain => (Style::Plain, end),
                    ScalarStyle::SingleQuoted if !props => {
                        (Style::Single, quoted_end(text, start, end, b'\''))
                    }
                    ScalarStyle::DoubleQuoted if !props => {
                        (Style::Double, quoted_end(text, start, end, b'"'))
                    }
                    ScalarStyle::SingleQuoted => (Style::Single, end),
                    ScalarStyle::DoubleQuoted => (Style::Double, end),
                    ScalarStyle::Literal | ScalarStyle::Folded => {
                        (Style::Block, block_end(text, start, end))
                    }
                };
                // saphyr gives an empty (null) plain scalar the span of the token after it (`}`,
                // `, `): it has no text, so its span is empty, where it starts.
                // With a tag or anchor, its text is the properties (`!tag`, `&a`).
                let end = if style == Style::Plain && value.is_empty() {
                    if props {
                        props_end(text, start)
                    } else {
                        start
                    }
                } else {
                    end.max(start)
                };
                Some(Node {
                    kind: Kind::Scalar {
                        value: value.into_owned(),
                        style,
                    },
                    span: start..end,
                    line,
                    props,
                })
            }
            Event::SequenceStart(anchor, tag) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(syntax(Some(line), "nesting too deep".into()));
                }
                stack.push(Frame::Seq {
                    flow: opens(text, start, end, '['),
                    start,
                    line,
                    props: anchor != 0 || tag.is_some(),
                    items: Vec::new(),
                });
                None
            }
            Event::MappingStart(anchor, tag) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(syntax(Some(line), "nesting too deep".into()));
                }
                stack.push(Frame::Map {
                    flow: opens(text, start, end, '{'),
                    start,
                    line,
                    props: anchor != 0 || tag.is_some(),
                    pairs: Vec::new(),
                    key: None,
                });
                None
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq {
                    flow,
                    start,
                    line,
                    props,
                    items,
                }) => Some(Node {
                    kind: Kind::Seq { flow, items },
                    span: start..flow_end(text, flow, start, (ev_start, end), ']'),
                    line,
                    props,
                }),
                _ => return Err(syntax(Some(line), "unbalanced sequence".into())),
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map {
                    flow,
                    start,
                    line,
                    props,
                    pairs,
                    key,
                }) => {
                    if key.is_some() {
                        return Err(syntax(Some(line), "mapping key without value".into()));
                    }
                    Some(Node {
                        kind: Kind::Map { flow, pairs },
                        span: start..flow_end(text, flow, start, (ev_start, end), '}'),
                        line,
                        props,
                    })
                }
                _ => return Err(syntax(Some(line), "unbalanced mapping".into())),
            },
        };
        if let Some(node) = done {
            match stack.last_mut() {
                None => docs.push(node),
                Some(Frame::Seq { items, .. }) => items.push(node),
                Some(Frame::Map { pairs, key, .. }) => match key.take() {
                    None => *key = Some(node),
                    Some(k) => {
                        let mut node = node;
                        place_empty_value(text, &k, &mut node);
                        pairs.push((k, node));
                    }
                },
            }
        }
    }
    if !stack.is_empty() {
        return Err(syntax(None, "unexpected end of YAML".into()));
    }
    Ok(docs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_spans_for_quoted_unicode_and_empty() {
        let text = "a: [\"x\" , 'y''z'  ]\nb: é\nc:\nd: 'q' # c\ne: |\n  t\n\nf: 1\n";
        let docs = parse(text).unwrap();
        let pairs = docs[0].map_pairs().unwrap();
        let items = pairs[0].1.seq_items().unwrap();
        assert!(pairs[0].1.is_flow());
        assert_eq!(&text[items[0].span.clone()], "\"x\"");
        assert_eq!(&text[items[1].span.clone()], "'y''z'");
        assert_eq!(items[1].scalar(), Some("y'z"));
        assert_eq!(&text[pairs[1].1.span.clone()], "é");
        assert!(pairs[2].1.is_null());
        assert!(pairs[2].1.span.is_empty());
        assert_eq!(&text[pairs[3].1.span.clone()], "'q'");
        assert_eq!(pairs[4].1.style(), Some(Style::Block));
        assert!(text[..pairs[4].1.content_end()].ends_with("  t"));
        assert_eq!(pairs[5].0.line, 8);
    }

    #[test]
    fn tagged_block_collections_are_not_flow() {
        let text = "a: !!map\n  b: 1\nc: &x\n- 1\nd: !!map {e: 1}\n";
        let docs = parse(text).unwrap();
        let pairs = docs[0].map_pairs().unwrap();
        assert!(!pairs[0].1.is_flow() && pairs[0].1.props);
        assert_eq!(pairs[0].1.content_end(), text.find("1\n").unwrap() + 1);
        assert!(!pairs[1].1.is_flow());
        assert!(pairs[2].1.is_flow());
    }

    #[test]
    fn depth_limit() {
        let text = "[".repeat(200);
        assert!(parse(&text).is_err());
    }

    #[test]
    fn a_question_mark_ending_a_comment_is_no_explicit_key() {
        let text = "a: b # why ?\nc: 1\n";
        let docs = parse(text).unwrap();
        let pairs = docs[0].map_pairs().unwrap();
        assert!(!explicit_key(text, pairs[0].1.content_end(), &pairs[1].0));
        let text = "? c\n: 1\n";
        let docs = parse(text).unwrap();
        let pairs = docs[0].map_pairs().unwrap();
        assert!(explicit_key(text, 0, &pairs[0].0));
    }

    #[test]
    fn an_explicit_key_is_seen_through_a_comment_and_a_quoted_hash_is_no_comment() {
        // The key on the line after `? # comment` (found by the fuzz target).
        let text = "{\n  ? #,\n  \"k\": 1\n}\n";
        let docs = parse(text).unwrap();
        let pairs = docs[0].map_pairs().unwrap();
        assert!(explicit_key(text, docs[0].span.start, &pairs[0].0));
        // A `#` inside the quoted key before is not a comment hiding the `?`.
        let text = "{\"a #b\": 1, ? c: 2}\n";
        let docs = parse(text).unwrap();
        let pairs = docs[0].map_pairs().unwrap();
        assert!(!explicit_key(text, docs[0].span.start, &pairs[0].0));
        assert!(explicit_key(text, pairs[0].1.content_end(), &pairs[1].0));
        // Plain keys with a question mark are not explicit.
        let text = "{a?: 1, b ?c: 2}\n";
        let docs = parse(text).unwrap();
        let pairs = docs[0].map_pairs().unwrap();
        assert!(!explicit_key(text, docs[0].span.start, &pairs[0].0));
        assert!(!explicit_key(text, pairs[0].1.content_end(), &pairs[1].0));
    }
}
