//! Go's `time.Duration`: parsing (`time.ParseDuration`) and formatting (`Duration.String`).
//!
//! Why it exists: the kubelet's duration settings (`streamingConnectionIdleTimeout`, cache
//! TTLs...) are Go durations both in the file (`metav1.Duration`, a string) and on the command
//! line (pflag's `DurationVar`). `4h`, `240m` and `4h0m0s` are the same value; comparing them
//! as strings would report a difference that the kubelet does not see, and `0s` must be known
//! to be zero (the kubelet's defaulting replaces a zero duration in the config file).

use serde::{Deserialize, Serialize};
use std::fmt;

/// A Go `time.Duration`: signed nanoseconds.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct GoDuration(pub i64);

const NS: u64 = 1;
const US: u64 = 1_000;
const MS: u64 = 1_000_000;
const S: u64 = 1_000_000_000;
const M: u64 = 60 * S;
const H: u64 = 60 * M;
const LIMIT: u64 = 1 << 63;

fn unit(u: &str) -> Option<u64> {
    Some(match u {
        "ns" => NS,
        "us" | "\u{b5}s" | "\u{3bc}s" => US,
        "ms" => MS,
        "s" => S,
        "m" => M,
        "h" => H,
        _ => return None,
    })
}

impl GoDuration {
    /// Go's `time.ParseDuration`: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, or `0` alone.
    pub fn parse(orig: &str) -> Result<GoDuration, String> {
        let bad = || format!("invalid duration {orig:?}");
        let mut s = orig;
        let mut neg = false;
        if let Some(c) = s.chars().next() {
            if c == '-' || c == '+' {
                neg = c == '-';
                s = &s[1..];
            }
        }
        if s == "0" {
            return Ok(GoDuration(0));
        }
        if s.is_empty() {
            return Err(bad());
        }
        let mut d: u64 = 0;
        while !s.is_empty() {
            let b = s.as_bytes();
            if !(b[0] == b'.' || b[0].is_ascii_digit()) {
                return Err(bad());
            }
            // [0-9]*
            let n_int = b.iter().take_while(|c| c.is_ascii_digit()).count();
            let mut v: u64 = 0;
            for &c in &b[..n_int] {
                if v > (LIMIT - 1) / 10 {
                    return Err(bad());
                }
                v = v * 10 + u64::from(c - b'0');
                if v > LIMIT {
                    return Err(bad());
                }
            }
            s = &s[n_int..];
            let pre = n_int > 0;
            // (\.[0-9]*)?
            let (mut f, mut scale, mut post) = (0u64, 1f64, false);
            if s.starts_with('.') {
                s = &s[1..];
                let digits = s.bytes().take_while(u8::is_ascii_digit).count();
                let mut overflow = false;
                for c in s[..digits].bytes() {
                    if overflow {
                        continue;
                    }
                    if f > (LIMIT - 1) / 10 {
                        overflow = true;
                        continue;
                    }
                    let y = f * 10 + u64::from(c - b'0');
                    if y > LIMIT {
                        overflow = true;
                        continue;
                    }
                    f = y;
                    scale *= 10.0;
                }
                post = digits > 0;
                s = &s[digits..];
            }
            if !pre && !post {
                return Err(bad());
            }
            // The unit: everything up to the next digit or '.'.
            let ulen = s
                .char_indices()
                .find(|&(_, c)| c == '.' || c.is_ascii_digit())
                .map_or(s.len(), |(i, _)| i);
            if ulen == 0 {
                return Err(format!("missing unit in duration {orig:?}"));
            }
            let u = unit(&s[..ulen])
                .ok_or_else(|| format!("unknown unit {:?} in duration {orig:?}", &s[..ulen]))?;
            s = &s[ulen..];
            if v > LIMIT / u {
                return Err(bad());
            }
            v *= u;
            if f > 0 {
                // As Go: float64 is exact enough for fractions of hours.
                #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
                let frac = (f as f64 * (u as f64 / scale)) as u64;
                v += frac;
                if v > LIMIT {
                    return Err(bad());
                }
            }
            d = match d.checked_add(v) {
                Some(d) if d <= LIMIT => d,
                _ => return Err(bad()),
            };
        }
        if neg {
            // d <= 2^63 here, so the negation fits.
            Ok(GoDuration(0i64.wrapping_sub_unsigned(d)))
        } else {
            i64::try_from(d).map(GoDuration).map_err(|_| bad())
        }
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
}

/// The fraction of `v / 10^prec` without trailing zeros (and without the point when zero),
/// prepended to `out`; returns `v / 10^prec`.
fn frac(out: &mut Vec<u8>, mut v: u64, prec: usize) -> u64 {
    let mut print = false;
    for _ in 0..prec {
        let digit = (v % 10) as u8;
        print = print || digit != 0;
        if print {
            out.push(b'0' + digit);
        }
        v /= 10;
    }
    if print {
        out.push(b'.');
    }
    v
}

fn int(out: &mut Vec<u8>, mut v: u64) {
    if v == 0 {
        out.push(b'0');
    }
    while v > 0 {
        out.push(b'0' + (v % 10) as u8);
        v /= 10;
    }
}

impl fmt::Display for GoDuration {
    /// Go's `Duration.String()`: `4h0m0s`, `1m30s`, `1.5s`, `300ms`, `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Built backwards, as Go does, then reversed.
        let mut out: Vec<u8> = Vec::with_capacity(32);
        let neg = self.0 < 0;
        let mut u = self.0.unsigned_abs();
        if u == 0 {
            return f.write_str("0s");
        }
        if u < S {
            out.push(b's');
            let prec = if u < US {
                out.push(b'n');
                0
            } else if u < MS {
                // "µ" (U+00B5) is 0xC2 0xB5; pushed reversed.
                out.push(0xB5);
                out.push(0xC2);
                3
            } else {
                out.push(b'm');
                6
            };
            u = frac(&mut out, u, prec);
            int(&mut out, u);
        } else {
            out.push(b's');
            u = frac(&mut out, u, 9);
            int(&mut out, u % 60);
            u /= 60;
            if u > 0 {
                out.push(b'm');
                int(&mut out, u % 60);
                u /= 60;
                if u > 0 {
                    out.push(b'h');
                    int(&mut out, u);
                }
            }
        }
        if neg {
            out.push(b'-');
        }
        out.reverse();
        f.write_str(&String::from_utf8_lossy(&out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> i64 {
        GoDuration::parse(s).unwrap().0
    }

    #[test]
    fn parses_like_go() {
        assert_eq!(p("0"), 0);
        assert_eq!(p("0s"), 0);
        assert_eq!(p("4h"), 4 * 3600 * 1_000_000_000);
        assert_eq!(p("4h0m0s"), p("240m"));
        assert_eq!(p("1.5h"), 90 * 60 * 1_000_000_000);
        assert_eq!(p("-1m30s"), -90_000_000_000);
        assert_eq!(p("300ms"), 300_000_000);
        assert_eq!(p("2us"), 2000);
        assert_eq!(p("2\u{b5}s"), 2000);
        assert_eq!(p(".5s"), 500_000_000);
        assert_eq!(p("5.s"), 5_000_000_000);
        for bad in [
            "",
            "4",
            "h",
            ".s",
            "1x",
            "1h-1m",
            "--1s",
            "9223372036854775808ns",
            " 1s",
        ] {
            assert!(GoDuration::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(p("-9223372036854775808ns"), i64::MIN);
        assert_eq!(p("2562047h47m16.854775807s"), i64::MAX);
    }

    #[test]
    fn formats_like_go() {
        for (s, want) in [
            ("0", "0s"),
            ("4h", "4h0m0s"),
            ("90s", "1m30s"),
            ("1.5s", "1.5s"),
            ("300ms", "300ms"),
            ("1500us", "1.5ms"),
            ("2us", "2\u{b5}s"),
            ("7ns", "7ns"),
            ("-5m", "-5m0s"),
            ("25h", "25h0m0s"),
            ("1h0m0.5s", "1h0m0.5s"),
        ] {
            assert_eq!(GoDuration::parse(s).unwrap().to_string(), want, "{s}");
        }
        assert_eq!(
            GoDuration(i64::MIN).to_string(),
            "-2562047h47m16.854775808s"
        );
    }
}
