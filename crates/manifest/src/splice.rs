//! Turning item operations into byte splices that keep what a person wrote.
//!
//! Why it exists: this is where formatting is preserved. A replaced item keeps its quoting style
//! (plain stays plain when that is safe, else it is quoted like its quoted siblings, else with
//! double quotes); a new item copies the indentation, dash spacing, quoting and line ending of
//! the item it follows; a removed item takes its whole line with it (or its separator, in a
//! flow list). Everything else in the file is left byte for byte. It also keeps track of which
//! ranges of the *original* input were replaced across several successive changes.

use crate::locate::err;
use crate::tree::{Node, Style};
use crate::yaml11::{self, Quote};
use crate::{EditError, EditErrorKind};
use std::ops::Range;

/// Replace `range` of the current text with `text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Splice {
    pub range: Range<usize>,
    pub text: String,
}

fn unsupported(line: usize, reason: impl Into<String>) -> EditError {
    err(EditErrorKind::Unsupported, Some(line), reason)
}

/// The line layout of a block-sequence item: `<indent>-<space>ITEM<blanks># comment<EOL>`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlockLine {
    /// Start of the item's (first) line.
    pub start: usize,
    /// End of the item's last line, before its line break.
    pub end: usize,
    /// After the line break (`== end` at the end of a file without a final newline).
    pub end_incl: usize,
}

/// Lay out the block-sequence entry whose content starts at `item_start` and ends at
/// `item_end`; refuses anything but `<indent>-<blanks>ITEM` on its line(s).
pub(crate) fn block_line(
    text: &str,
    item_start: usize,
    item_end: usize,
    line: usize,
) -> Result<BlockLine, EditError> {
    let b = text.as_bytes();
    let start = text[..item_start].rfind('\n').map_or(0, |p| p + 1);
    let prefix = &b[start..item_start];
    let indent = prefix.iter().take_while(|&&c| c == b' ').count();
    let rest = &prefix[indent..];
    if !(rest.len() >= 2 && rest[0] == b'-' && rest[1..].iter().all(|&c| c == b' ' || c == b'\t')) {
        return Err(unsupported(
            line,
            "a list item does not sit alone on its `- ` line; refusing to edit around it",
        ));
    }
    let end = text[item_end..]
        .find('\n')
        .map_or(text.len(), |p| item_end + p);
    let end_incl = if end < text.len() { end + 1 } else { end };
    let end = if end > item_end && b[end - 1] == b'\r' && end < text.len() {
        end - 1
    } else {
        end
    };
    let after = text[item_end..end].trim_start_matches([' ', '\t']);
    if !(after.is_empty() || after.starts_with('#')) {
        return Err(unsupported(line, "unexpected text after a list item"));
    }
    Ok(BlockLine {
        start,
        end,
        end_incl,
    })
}

/// The line break to write after a line ending at `end_incl` (CRLF when the file uses it).
pub(crate) fn eol_for(text: &str, bl: &BlockLine) -> &'static str {
    if bl.end_incl > bl.end {
        if text[bl.end..bl.end_incl].starts_with('\r') {
            "\r\n"
        } else {
            "\n"
        }
    } else if text.contains("\r\n") {
        "\r\n"
    } else {
        "\n"
    }
}

/// The quoting of an existing scalar item.
pub(crate) fn quote_of(node: &Node) -> Quote {
    match node.style() {
        Some(Style::Single) => Quote::Single,
        Some(Style::Double) => Quote::Double,
        _ => Quote::Plain,
    }
}

/// The quote to fall back to when a plain value must be quoted: the siblings' style when they
/// are quoted, else double quotes.
pub(crate) fn sibling_quote(items: &[Node]) -> Quote {
    let double = items.iter().any(|n| n.style() == Some(Style::Double));
    let single = items.iter().any(|n| n.style() == Some(Style::Single));
    if single && !double {
        Quote::Single
    } else {
        Quote::Double
    }
}

/// Replace a scalar item's text with `value`, keeping its style. Only the bytes that differ are
/// spliced (common prefix and suffix stay), so appending `,x` to a list is a pure insertion.
pub(crate) fn replace_scalar(
    text: &str,
    node: &Node,
    siblings: &[Node],
    flow: bool,
    value: &str,
) -> Option<Splice> {
    let new = yaml11::render(value, quote_of(node), sibling_quote(siblings), flow);
    let old = &text[node.span.clone()];
    if old == new {
        return None;
    }
    let (ob, nb) = (old.as_bytes(), new.as_bytes());
    let mut p = ob.iter().zip(nb).take_while(|(a, b)| a == b).count();
    while !old.is_char_boundary(p) {
        p -= 1;
    }
    let max_s = ob.len().min(nb.len()) - p;
    let mut s = ob
        .iter()
        .rev()
        .zip(nb.iter().rev())
        .take(max_s)
        .take_while(|(a, b)| a == b)
        .count();
    while !old.is_char_boundary(ob.len() - s) || !new.is_char_boundary(nb.len() - s) {
        s -= 1;
    }
    Some(Splice {
        range: node.span.start + p..node.span.end - s,
        text: new[p..nb.len() - s].to_string(),
    })
}

/// Splices that remove the items at `removed` (positions) of a sequence.
pub(crate) fn remove_items(
    text: &str,
    items: &[Node],
    flow: bool,
    removed: &[usize],
    what: &str,
) -> Result<Vec<Splice>, EditError> {
    let mut out = Vec::new();
    if removed.is_empty() {
        return Ok(out);
    }
    if flow {
        // Maximal runs of removed positions, each removed with one separator.
        let mut i = 0;
        while i < items.len() {
            // `removed` is sorted: binary search keeps this linear-logarithmic.
            if removed.binary_search(&i).is_err() {
                i += 1;
                continue;
            }
            let a = i;
            while i + 1 < items.len() && removed.binary_search(&(i + 1)).is_ok() {
                i += 1;
            }
            let b = i;
            // Take the separator *before* the run when there is one: that is the separator an
            // insertion after the previous item writes, so add-then-remove restores the bytes.
            let range = if a > 0 {
                items[a - 1].span.end..items[b].span.end
            } else if b + 1 < items.len() {
                items[a].span.start..items[b + 1].span.start
            } else {
                items[a].span.start..items[b].span.end
            };
            out.push(Splice {
                range,
                text: String::new(),
            });
            i += 1;
        }
        return Ok(out);
    }
    if removed.len() >= items.len() {
        return Err(unsupported(
            items.first().map_or(0, |n| n.line),
            format!("the change would leave `{what}` empty; refusing to rewrite the key"),
        ));
    }
    let mut ranges: Vec<Range<usize>> = Vec::new();
    for &pos in removed {
        let n = &items[pos];
        let bl = block_line(text, n.span.start, n.span.end, n.line)?;
        match ranges.last_mut() {
            Some(r) if r.end == bl.start => r.end = bl.end_incl,
            _ => ranges.push(bl.start..bl.end_incl),
        }
    }
    for r in &mut ranges {
        // The last line of a file without a final newline: take the line break before it.
        if r.end == text.len() && !text.ends_with('\n') && r.start > 0 {
            r.start -= 1;
            if r.start > 0 && text.as_bytes()[r.start - 1] == b'\r' {
                r.start -= 1;
            }
        }
    }
    out.extend(ranges.into_iter().map(|range| Splice {
        range,
        text: String::new(),
    }));
    Ok(out)
}

/// A splice that inserts the new scalar `value` after `items[pos]`.
pub(crate) fn insert_item(
    text: &str,
    items: &[Node],
    flow: bool,
    pos: usize,
    value: &str,
) -> Result<Splice, EditError> {
    let anchor = &items[pos];
    let scalar = yaml11::render(value, quote_of(anchor), sibling_quote(items), flow);
    if flow {
        let sep = separator(text, items, pos).unwrap_or(", ");
        return Ok(Splice {
            range: anchor.span.end..anchor.span.end,
            text: format!("{sep}{scalar}"),
        });
    }
    let bl = block_line(text, anchor.span.start, anchor.span.end, anchor.line)?;
    let prefix = &text[bl.start..anchor.span.start];
    let eol = eol_for(text, &bl);
    Ok(if bl.end_incl > bl.end {
        Splice {
            range: bl.end_incl..bl.end_incl,
            text: format!("{prefix}{scalar}{eol}"),
        }
    } else {
        Splice {
            range: bl.end..bl.end,
            text: format!("{eol}{prefix}{scalar}"),
        }
    })
}

/// The separator written between flow items near `pos` (`, `, `,`, `,\n    `...), when it is
/// only a comma and blanks.
fn separator<'a>(text: &'a str, items: &[Node], pos: usize) -> Option<&'a str> {
    let (a, b) = if pos >= 1 {
        (&items[pos - 1], &items[pos])
    } else {
        (items.first()?, items.get(1)?)
    };
    let sep = text.get(a.span.end..b.span.start)?;
    let ok = sep.trim_matches([' ', '\t', '\r', '\n']) == "," && !sep.contains('#');
    ok.then_some(sep)
}

/// Apply non-overlapping splices to `text`.
pub(crate) fn apply(text: &str, splices: &mut [Splice]) -> Result<String, EditError> {
    splices.sort_by_key(|s| (s.range.start, s.range.end));
    let mut out = String::with_capacity(text.len() + 64);
    let mut cur = 0;
    for s in splices.iter() {
        if s.range.start < cur || s.range.end > text.len() || s.range.start > s.range.end {
            return Err(err(
                EditErrorKind::Verification,
                None,
                "internal error: overlapping edits (nothing written)",
            ));
        }
        out.push_str(&text[cur..s.range.start]);
        out.push_str(&s.text);
        cur = s.range.end;
    }
    out.push_str(&text[cur..]);
    Ok(out)
}

/// One piece of the current text: a range of the original input, or new text.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Orig(Range<usize>),
    New(usize),
}

impl Seg {
    fn len(&self) -> usize {
        match self {
            Seg::Orig(r) => r.len(),
            Seg::New(n) => *n,
        }
    }
}

/// Tracks which parts of the original input survive successive splices, to report the
/// replaced ranges of the original.
#[derive(Debug, Clone)]
pub(crate) struct Provenance {
    segs: Vec<Seg>,
    input_len: usize,
}

impl Provenance {
    pub(crate) fn new(input_len: usize) -> Self {
        Provenance {
            segs: vec![Seg::Orig(0..input_len)],
            input_len,
        }
    }

    /// Record splices (sorted, non-overlapping, in current-text coordinates).
    pub(crate) fn record(&mut self, splices: &[Splice]) {
        let total: usize = self.segs.iter().map(Seg::len).sum();
        let mut out = Vec::new();
        let mut cur = 0;
        for s in splices {
            self.slice(cur, s.range.start, &mut out);
            if !s.text.is_empty() {
                out.push(Seg::New(s.text.len()));
            }
            cur = s.range.end;
        }
        self.slice(cur, total, &mut out);
        // Merge neighbours and drop empty pieces.
        let mut merged: Vec<Seg> = Vec::with_capacity(out.len());
        for s in out {
            match (merged.last_mut(), &s) {
                (_, Seg::Orig(r)) if r.is_empty() => {}
                (_, Seg::New(0)) => {}
                (Some(Seg::Orig(a)), Seg::Orig(b)) if a.end == b.start => a.end = b.end,
                (Some(Seg::New(a)), Seg::New(b)) => *a += b,
                _ => merged.push(s),
            }
        }
        self.segs = merged;
    }

    /// The pieces of the current text's range `[a, b)`.
    fn slice(&self, a: usize, b: usize, out: &mut Vec<Seg>) {
        let mut pos = 0;
        for seg in &self.segs {
            let len = seg.len();
            let (from, to) = (a.max(pos), b.min(pos + len));
            if from < to {
                out.push(match seg {
                    Seg::Orig(r) => Seg::Orig(r.start + (from - pos)..r.start + (to - pos)),
                    Seg::New(_) => Seg::New(to - from),
                });
            }
            pos += len;
        }
    }

    /// Ranges of the original input that were replaced (possibly empty: pure insertions).
    pub(crate) fn replaced(&self) -> Vec<Range<usize>> {
        let mut out: Vec<Range<usize>> = Vec::new();
        let mut cursor = 0;
        let mut pending_new = false;
        for s in &self.segs {
            match s {
                Seg::New(_) => pending_new = true,
                Seg::Orig(r) => {
                    if r.start != cursor || pending_new {
                        out.push(cursor..r.start);
                    }
                    cursor = r.end;
                    pending_new = false;
                }
            }
        }
        if cursor != self.input_len || pending_new {
            out.push(cursor..self.input_len);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp(a: usize, b: usize, t: &str) -> Splice {
        Splice {
            range: a..b,
            text: t.into(),
        }
    }

    #[test]
    fn provenance_single_and_chained() {
        let mut p = Provenance::new(10);
        p.record(&[sp(2, 4, "xyz")]);
        assert_eq!(p.replaced(), vec![2..4]);
        // current text: 0..2 orig, 3 new, 4..10 orig (len 11). Insert at 0 and remove 8..11 (orig 7..10)
        p.record(&[sp(0, 0, "A"), sp(8, 11, "")]);
        assert_eq!(p.replaced(), vec![0..0, 2..4, 7..10]);
        let mut p = Provenance::new(10);
        p.record(&[sp(10, 10, "tail")]);
        assert_eq!(p.replaced(), vec![10..10]);
        // A splice spanning new text and original text.
        let mut p = Provenance::new(10);
        p.record(&[sp(5, 5, "abc")]);
        p.record(&[sp(4, 9, "")]);
        assert_eq!(p.replaced(), vec![4..6]);
    }
}
