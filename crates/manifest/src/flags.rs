//! Reading flags out of an argv the way the Kubernetes flag parser (spf13/pflag) does.

/// One flag occurrence: `--name=value` → (`name`, `Some(value)`), `--name` → (`name`, `None`).
/// `index` is the argv index (relative to the slice given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagOccurrence {
    pub index: usize,
    pub name: String,
    pub value: Option<String>,
}

/// Every `-x`/`--x` item of `args` (the component's own flags, after wrappers), in order.
/// A two-item flag (`--name value`) is reported with `value: None` for the flag item; the
/// bare item after it is not a flag. A bare `--` ends the flags, as in pflag: what follows
/// is positional.
pub fn parse_flags(args: &[String]) -> Vec<FlagOccurrence> {
    let mut out = Vec::new();
    for (index, a) in args.iter().enumerate() {
        if a == "--" {
            break;
        }
        let Some(body) = a.strip_prefix("--").or_else(|| a.strip_prefix('-')) else {
            continue;
        };
        if body.is_empty() {
            continue;
        }
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (body.to_string(), None),
        };
        out.push(FlagOccurrence { index, name, value });
    }
    out
}

/// The effective value under the flag parser's rule (the last occurrence wins).
/// `None`: absent; `Some(None)`: present without `=value`.
pub fn last_value(args: &[String], name: &str) -> Option<Option<String>> {
    parse_flags(args)
        .into_iter()
        .rev()
        .find(|f| f.name == name)
        .map(|f| f.value)
}

/// The value kube-bench reads (the first occurrence).
pub fn first_value(args: &[String], name: &str) -> Option<Option<String>> {
    parse_flags(args)
        .into_iter()
        .find(|f| f.name == name)
        .map(|f| f.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn double_dash_ends_the_flags() {
        let args: Vec<String> = ["--v=2", "--", "--v=3"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(last_value(&args, "v"), Some(Some("2".into())));
        assert_eq!(parse_flags(&args).len(), 1);
    }
}
