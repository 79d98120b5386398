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

pub(crate) use kharden_yaml_span::splice::{Provenance, Splice};

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
    let new = yaml11::render_str(value, quote_of(node), sibling_quote(siblings), flow);
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
    let scalar = yaml11::render_str(value, quote_of(anchor), sibling_quote(items), flow);
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

/// Apply non-overlapping splices to `text` ([`kharden_yaml_span::splice::apply`]).
pub(crate) fn apply(text: &str, splices: &mut [Splice]) -> Result<String, EditError> {
    kharden_yaml_span::splice::apply(text, splices)
        .map_err(|m| err(EditErrorKind::Verification, None, m.to_string()))
}
