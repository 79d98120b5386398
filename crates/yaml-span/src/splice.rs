//! Byte splices and their provenance.
//!
//! Why it exists: both editors change a file by replacing exact byte ranges and leave every
//! other byte alone. This module applies non-overlapping splices and keeps track of which
//! ranges of the *original* input were replaced across several successive changes, so callers
//! (and the property tests) can check that nothing outside them moved.

use std::ops::Range;

/// Replace `range` of the current text with `text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Splice {
    pub range: Range<usize>,
    pub text: String,
}

impl Splice {
    pub fn new(range: Range<usize>, text: impl Into<String>) -> Splice {
        Splice {
            range,
            text: text.into(),
        }
    }

    /// Replace `range` (whose current text is `old`) by `new`, splicing only the bytes that
    /// differ (common prefix and suffix stay). `None` when nothing differs.
    pub fn minimal(range: Range<usize>, old: &str, new: &str) -> Option<Splice> {
        if old == new {
            return None;
        }
        let (ob, nb) = (old.as_bytes(), new.as_bytes());
        let mut p = ob.iter().zip(nb).take_while(|(a, b)| a == b).count();
        while !old.is_char_boundary(p) || !new.is_char_boundary(p) {
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
            range: range.start + p..range.end - s,
            text: new[p..nb.len() - s].to_string(),
        })
    }
}

/// Splices that overlap, or fall outside the text or inside a character: a bug of the editor
/// that made them (nothing is written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Misplaced;

impl std::fmt::Display for Misplaced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("internal error: overlapping or misplaced edits (nothing written)")
    }
}

impl std::error::Error for Misplaced {}

/// Apply non-overlapping splices to `text` (sorted first, stably: splices at the same place
/// keep the order given).
pub fn apply(text: &str, splices: &mut [Splice]) -> Result<String, Misplaced> {
    splices.sort_by_key(|s| (s.range.start, s.range.end));
    let mut out = String::with_capacity(text.len() + 64);
    let mut cur = 0;
    for s in splices.iter() {
        if s.range.start < cur
            || s.range.end > text.len()
            || s.range.start > s.range.end
            || !text.is_char_boundary(s.range.start)
            || !text.is_char_boundary(s.range.end)
        {
            return Err(Misplaced);
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
pub struct Provenance {
    segs: Vec<Seg>,
    input_len: usize,
}

impl Provenance {
    pub fn new(input_len: usize) -> Self {
        Provenance {
            segs: vec![Seg::Orig(0..input_len)],
            input_len,
        }
    }

    /// Record splices (sorted, non-overlapping, in current-text coordinates).
    pub fn record(&mut self, splices: &[Splice]) {
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
    pub fn replaced(&self) -> Vec<Range<usize>> {
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
        Splice::new(a..b, t)
    }

    #[test]
    fn provenance_single_and_chained() {
        let mut p = Provenance::new(10);
        p.record(&[sp(2, 4, "xyz")]);
        assert_eq!(p.replaced(), vec![2..4]);
        p.record(&[sp(0, 0, "A"), sp(8, 11, "")]);
        assert_eq!(p.replaced(), vec![0..0, 2..4, 7..10]);
        let mut p = Provenance::new(10);
        p.record(&[sp(5, 5, "abc")]);
        p.record(&[sp(4, 9, "")]);
        assert_eq!(p.replaced(), vec![4..6]);
    }

    #[test]
    fn minimal_splices() {
        assert_eq!(Splice::minimal(10..15, "10255", "0"), Some(sp(10, 15, "0")));
        assert_eq!(Splice::minimal(0..4, "true", "true"), None);
        assert_eq!(Splice::minimal(0..3, "a,b", "a,b,c"), Some(sp(3, 3, ",c")));
        let s = Splice::minimal(0..3, "éa", "èa").unwrap();
        assert_eq!((s.range, s.text.as_str()), (0..2, "è"));
    }

    #[test]
    fn overlapping_splices_are_refused() {
        let mut s = vec![sp(0, 3, "x"), sp(2, 4, "y")];
        assert!(apply("abcdef", &mut s).is_err());
        let mut s = vec![sp(4, 4, "Y"), sp(0, 1, "X")];
        assert_eq!(apply("abcdef", &mut s).unwrap(), "XbcdYef");
    }
}
