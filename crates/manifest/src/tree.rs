//! A small syntax tree built from saphyr-parser events, with exact **byte** spans.
//!
//! Why it exists: the editor splices bytes, so it needs to know exactly where each node of the
//! YAML text starts and ends. saphyr-parser reports positions as *character* indices and, for
//! quoted scalars, a span that also covers trailing blanks; this module converts positions to
//! byte offsets and trims quoted scalars to their closing quote, so that every other module can
//! work on `&str` byte ranges.

use crate::{EditError, EditErrorKind};
use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use std::ops::Range;

/// Deepest nesting accepted. Real manifests are ~10 levels deep; the limit keeps dropping and
/// walking the tree (both recursive) safe on hostile input.
const MAX_DEPTH: usize = 64;

/// How a scalar was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    Plain,
    Single,
    Double,
    /// `|` or `>` block scalars.
    Block,
}

#[derive(Debug)]
pub(crate) enum Kind {
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
pub(crate) struct Node {
    pub kind: Kind,
    /// Byte range in the text. For scalars without properties: exactly the scalar as written
    /// (quotes included, trailing blanks excluded). For block collections the start is the
    /// first entry; the end may run past trailing comments (callers use [`Node::content_end`]).
    pub span: Range<usize>,
    /// 1-based line of `span.start`.
    pub line: usize,
    /// The node carries an anchor or a tag.
    pub props: bool,
}

impl Node {
    pub(crate) fn scalar(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    pub(crate) fn style(&self) -> Option<Style> {
        match &self.kind {
            Kind::Scalar { style, .. } => Some(*style),
            _ => None,
        }
    }

    pub(crate) fn seq_items(&self) -> Option<(&[Node], bool)> {
        match &self.kind {
            Kind::Seq { items, flow } => Some((items, *flow)),
            _ => None,
        }
    }

    pub(crate) fn map_pairs(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            Kind::Map { pairs, .. } => Some(pairs),
            _ => None,
        }
    }

    /// End of the last scalar (or flow collection) inside this node: where its text really ends,
    /// before any trailing comment or blank line.
    pub(crate) fn content_end(&self) -> usize {
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
                .map(|(k, v)| k.content_end().max(v.content_end()))
                .max()
                .unwrap_or(self.span.start),
        }
    }

    /// True when this node or anything below it is an alias or carries an anchor or tag.
    pub(crate) fn has_props_below(&self) -> bool {
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

fn syntax(line: Option<usize>, reason: String) -> EditError {
    EditError {
        line,
        kind: EditErrorKind::Syntax,
        reason,
    }
}

/// Parse every document of `text`. Each returned node is a document's root.
pub(crate) fn parse(text: &str) -> Result<Vec<Node>, EditError> {
    let idx = CharIndex::new(text);
    let mut docs = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut parser = Parser::new_from_str(text);
    let bspan = |s: &Span| (idx.byte(s.start.index()), idx.byte(s.end.index()));
    // Lines are computed from byte offsets: saphyr's marker lines are not always those of the
    // marker's index (block scalars report the line after their content).
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let line_at = |pos: usize| line_starts.partition_point(|&s| s <= pos);
    while let Some(next) = parser.next_event() {
        let (ev, span) = next.map_err(|e| {
            syntax(
                Some(e.marker().line()),
                format!("invalid YAML: {}", e.info()),
            )
        })?;
        let (start, end) = bspan(&span);
        let line = line_at(start);
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
                    ScalarStyle::Literal | ScalarStyle::Folded => (Style::Block, end),
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
                    return Err(syntax(Some(line), "nesting too deep for a manifest".into()));
                }
                stack.push(Frame::Seq {
                    flow: end > start,
                    start,
                    line,
                    props: anchor != 0 || tag.is_some(),
                    items: Vec::new(),
                });
                None
            }
            Event::MappingStart(anchor, tag) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(syntax(Some(line), "nesting too deep for a manifest".into()));
                }
                stack.push(Frame::Map {
                    flow: end > start,
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
                    span: start..end.max(start),
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
                        span: start..end.max(start),
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
                    Some(k) => pairs.push((k, node)),
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
    fn byte_spans_for_quoted_and_unicode() {
        let text = "\u{feff}a: [\"x\" , 'y''z'  ]\nb: é\nc:\n  - \"q\"   # c\n";
        let docs = parse(text).unwrap();
        let pairs = docs[0].map_pairs().unwrap();
        let (items, flow) = pairs[0].1.seq_items().unwrap();
        assert!(flow);
        assert_eq!(&text[items[0].span.clone()], "\"x\"");
        assert_eq!(&text[items[1].span.clone()], "'y''z'");
        assert_eq!(items[1].scalar(), Some("y'z"));
        assert_eq!(&text[pairs[1].1.span.clone()], "é");
        let (items, flow) = pairs[2].1.seq_items().unwrap();
        assert!(!flow);
        assert_eq!(&text[items[0].span.clone()], "\"q\"");
        assert_eq!(items[0].line, 4);
    }

    #[test]
    fn depth_limit() {
        let text = "[".repeat(200);
        assert!(parse(&text).is_err());
    }
}
