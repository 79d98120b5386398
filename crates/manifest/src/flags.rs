//! Reading flags out of an argv the way the Kubernetes flag parser (spf13/pflag) does: the one
//! reader of "the value of a flag" in kharden.
//!
//! Why one reader: the editor (which flag items to change), the built-in audit (is the change in
//! effect on the running process?) and the CIS catalog (does the component really use a secure
//! value?) must agree on what a command line means. When they used three readers, an apply on
//! `--bind-address 0.0.0.0` (two items) edited the file correctly and was then rolled back by
//! the audit as "not in effect". Every one of them now goes through [`Flags`].
//!
//! The rules:
//! - `-name` and `--name` are the same flag; `_` and `-` in a name are the same (Kubernetes'
//!   word-separator normalisation), so names are compared after [`normalize`];
//! - `--name=value` carries its value; `--name value` (two items) takes the next item as its
//!   value when that item does not start with `-` (a control-plane component takes no
//!   positional arguments, so that is the only reading under which the process runs);
//!   otherwise `--name` is bare (a boolean `true`);
//! - the last occurrence wins (kube-bench reads the first: [`Flags::first`] serves it);
//! - a bare `--` ends the flags: what follows is positional;
//! - booleans are Go's `strconv.ParseBool` ([`parse_bool`]), integers Go's
//!   `strconv.ParseInt(s, 0, 64)` ([`parse_int`]), as pflag's `bool` and `int` values use them;
//! - list values (`StringSlice`) are split at commas and not trimmed (Go's CSV reader keeps
//!   spaces); map values (`--feature-gates`, `K=V,K=V`) have their keys and values trimmed, as
//!   the feature-gate parser does.

/// A flag name as the flag parser compares it: without leading dashes, `_` read as `-`.
pub fn normalize(name: &str) -> String {
    name.trim_start_matches('-').replace('_', "-")
}

/// How one occurrence carries its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlagValue {
    /// `--name=value`.
    Inline(String),
    /// `--name value`: the value is the next argv item, at `index`.
    Separate { index: usize, value: String },
    /// `--name` alone.
    Bare,
}

impl FlagValue {
    /// The written value; `None` for a bare flag.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            FlagValue::Inline(v) | FlagValue::Separate { value: v, .. } => Some(v),
            FlagValue::Bare => None,
        }
    }

    /// The value the component uses: a bare flag is a boolean `true`.
    pub fn effective(&self) -> &str {
        self.as_str().unwrap_or("true")
    }
}

/// One occurrence of a flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagItem {
    /// Index of the flag item in the argv given to [`Flags::parse_from`].
    pub index: usize,
    /// The dashes and the name as written (`--name`, `-name`, `--name_with_underscores`).
    pub written: String,
    /// The name, [`normalize`]d.
    pub name: String,
    pub value: FlagValue,
}

impl FlagItem {
    /// Every argv index this occurrence uses (two for a two-item flag).
    pub fn indices(&self) -> impl Iterator<Item = usize> {
        let second = match self.value {
            FlagValue::Separate { index, .. } => Some(index),
            _ => None,
        };
        std::iter::once(self.index).chain(second)
    }

    /// The last argv index this occurrence uses.
    pub fn end(&self) -> usize {
        match self.value {
            FlagValue::Separate { index, .. } => index,
            _ => self.index,
        }
    }
}

/// Every flag of a command line, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Flags {
    items: Vec<FlagItem>,
}

/// `(dashes+name, inline value)` when `item` is a flag item (one or two dashes, a name).
fn split_flag(item: &str) -> Option<(&str, Option<&str>)> {
    if !item.starts_with('-') || item == "-" || item == "--" {
        return None;
    }
    let body = item.trim_start_matches('-');
    if body.is_empty() || item.len() - body.len() > 2 || body.starts_with('=') {
        return None;
    }
    Some(match item.split_once('=') {
        Some((w, v)) => (w, Some(v)),
        None => (item, None),
    })
}

impl Flags {
    /// The flags of `args`, a component's own flags (after its binary and any wrapper).
    pub fn parse(args: &[String]) -> Flags {
        Flags::parse_from(args, 0)
    }

    /// The flags of `argv[start..]`; indices stay those of `argv`.
    pub fn parse_from(argv: &[String], start: usize) -> Flags {
        let mut items = Vec::new();
        let mut i = start;
        while i < argv.len() {
            let item = &argv[i];
            if item == "--" {
                break;
            }
            let Some((written, inline)) = split_flag(item) else {
                i += 1;
                continue;
            };
            let value = match inline {
                Some(v) => FlagValue::Inline(v.to_string()),
                None => match argv.get(i + 1) {
                    Some(next) if !next.starts_with('-') => FlagValue::Separate {
                        index: i + 1,
                        value: next.clone(),
                    },
                    _ => FlagValue::Bare,
                },
            };
            let step = if matches!(value, FlagValue::Separate { .. }) {
                2
            } else {
                1
            };
            items.push(FlagItem {
                index: i,
                written: written.to_string(),
                name: normalize(written),
                value,
            });
            i += step;
        }
        Flags { items }
    }

    /// Every occurrence, in order.
    pub fn iter(&self) -> impl Iterator<Item = &FlagItem> {
        self.items.iter()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Every occurrence of `name` (compared [`normalize`]d), in order.
    pub fn all<'a>(&'a self, name: &str) -> impl DoubleEndedIterator<Item = &'a FlagItem> + 'a {
        let want = normalize(name);
        self.items.iter().filter(move |f| f.name == want)
    }

    /// The first occurrence (what kube-bench reads).
    pub fn first(&self, name: &str) -> Option<&FlagItem> {
        self.all(name).next()
    }

    /// The last occurrence (what the component uses).
    pub fn last(&self, name: &str) -> Option<&FlagItem> {
        self.all(name).next_back()
    }

    /// The value the component uses: `None` when absent, `"true"` for a bare flag.
    pub fn effective(&self, name: &str) -> Option<&str> {
        self.last(name).map(|f| f.value.effective())
    }

    /// Whether `name` occurs at all.
    pub fn has(&self, name: &str) -> bool {
        self.last(name).is_some()
    }

    /// The last argv index used by any flag (where a new flag goes).
    pub fn end(&self) -> Option<usize> {
        self.items.iter().map(FlagItem::end).max()
    }
}

/// Go's `strconv.ParseBool`.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)`: decimal, `0x`, `0o`, `0b`, a leading `0` for octal, `_`
/// between digits only after a base prefix.
pub fn parse_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits, prefixed) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d, true)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d, true)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d, true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..], true)
    } else {
        (10, lower.as_str(), false)
    };
    // Underscores are only allowed with a base prefix, between digits (the prefix counts as a
    // digit, so one may follow it directly).
    let digits = if prefixed && digits.contains('_') {
        if digits.ends_with('_') || digits.contains("__") {
            return None;
        }
        digits.replace('_', "")
    } else {
        digits.to_string()
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = i128::from_str_radix(&digits, radix).ok()?;
    i64::try_from(if neg { -magnitude } else { magnitude }).ok()
}

/// The items of a list value (`StringSlice`): split at commas, not trimmed; an empty value is
/// an empty list.
pub fn list_items(value: &str) -> Vec<&str> {
    if value.is_empty() {
        Vec::new()
    } else {
        value.split(',').collect()
    }
}

/// The value of `key` in a map value (`K=V,K=V`, keys and values trimmed; the last wins).
pub fn map_value<'a>(value: &'a str, key: &str) -> Option<&'a str> {
    value
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .rfind(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn double_dash_ends_the_flags() {
        let f = Flags::parse(&v(&["--v=2", "--", "--v=3"]));
        assert_eq!(f.effective("v"), Some("2"));
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn two_item_values_bare_flags_and_last_wins() {
        let f = Flags::parse(&v(&[
            "--p=true",
            "--x",
            "7",
            "--p=false",
            "--b",
            "--e=",
            "-s",
            "--bind_address",
            "0.0.0.0",
        ]));
        assert_eq!(f.effective("p"), Some("false"));
        assert_eq!(f.first("p").and_then(|o| o.value.as_str()), Some("true"));
        assert_eq!(f.effective("x"), Some("7"));
        assert_eq!(
            f.last("x").map(|o| o.indices().collect::<Vec<_>>()),
            Some(vec![1, 2])
        );
        assert_eq!(f.effective("b"), Some("true"));
        assert_eq!(f.last("b").map(|o| &o.value), Some(&FlagValue::Bare));
        assert_eq!(f.effective("e"), Some(""));
        assert_eq!(f.effective("s"), Some("true"));
        assert_eq!(f.effective("bind-address"), Some("0.0.0.0"));
        assert_eq!(f.effective("--bind_address"), Some("0.0.0.0"));
        assert_eq!(f.effective("q"), None);
        assert_eq!(f.end(), Some(8));
    }

    #[test]
    fn not_flags() {
        let f = Flags::parse(&v(&["-", "---x", "--=1", "value", "x-y"]));
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn go_integers_and_booleans() {
        assert_eq!(parse_int("30"), Some(30));
        assert_eq!(parse_int("0x1e"), Some(30));
        assert_eq!(parse_int("036"), Some(30));
        assert_eq!(parse_int("0o36"), Some(30));
        assert_eq!(parse_int("-5"), Some(-5));
        assert_eq!(parse_int("0x_1e"), Some(30));
        assert_eq!(parse_int("3_0"), None);
        assert_eq!(parse_int(" 30"), None);
        assert_eq!(parse_int("0"), Some(0));
        assert_eq!(parse_int("99999999999999999999"), None);
        assert_eq!(parse_bool("F"), Some(false));
        assert_eq!(parse_bool("no"), None);
    }

    #[test]
    fn lists_and_maps() {
        assert_eq!(list_items("A, B"), vec!["A", " B"]);
        assert!(list_items("").is_empty());
        assert_eq!(map_value("A=true, B = false,A=0", "A"), Some("0"));
        assert_eq!(map_value("A=true, B = false", "B"), Some("false"));
        assert_eq!(map_value("A", "A"), None);
    }
}
