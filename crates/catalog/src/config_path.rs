//! kube-bench's JSONPath reading of a configuration file, for the few path shapes its kubelet and
//! kube-proxy checks use: `{.a.b.c}` and `{range .a[:]}{}{','}{end}`.
//!
//! kube-bench evaluates the path with client-go's `jsonpath` (missing keys allowed) on the file
//! decoded by `encoding/json`, or by `gopkg.in/yaml.v2` when that fails, and tests the printed
//! text. What it prints is what the check sees, so the rendering matters:
//!
//! - a missing key, or a key under a `null`, prints nothing: the item is "not set";
//! - `null` itself prints `<nil>` (so `readOnlyPort:` with no value is "set");
//! - booleans print `true`/`false`, YAML integers in decimal, numbers from JSON (always floats
//!   for Go) with Go's `%v` (`1e+06` for a million, so `gte` cannot parse it);
//! - a list or map where a scalar is expected prints as JSON when the file was JSON, and makes
//!   the path fail when it was YAML (Go cannot marshal yaml.v2's maps);
//! - the `range` form prints each element followed by `,` (`A,B,`); over a missing key or
//!   `null` it prints nothing; over anything but a list it fails.
//!
//! The paths are compiled-in constants of the catalog: [`parse`] reads that tiny grammar and the
//! unit tests check every path of every benchmark parses.

use serde::Serialize;

use crate::facts::ConfigValue;

/// A parsed kube-bench path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigPath {
    /// The keys from the document's root (`["authentication", "anonymous", "enabled"]`).
    pub keys: Vec<&'static str>,
    /// The `{range ...}{}{','}{end}` form: the elements of a list, each followed by a comma.
    pub join_list: bool,
}

/// A path text this module does not understand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported kube-bench path {0:?}")]
pub struct PathError(pub &'static str);

/// Parse `{.a.b}` or `{range .a[:]}{}{','}{end}`.
pub fn parse(text: &'static str) -> Result<ConfigPath, PathError> {
    let keys_of = |dotted: &'static str| -> Result<Vec<&'static str>, PathError> {
        let rest = dotted.strip_prefix('.').ok_or(PathError(text))?;
        let keys: Vec<&'static str> = rest.split('.').collect();
        if keys.iter().any(|k| {
            k.is_empty()
                || !k
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        }) {
            return Err(PathError(text));
        }
        Ok(keys)
    };
    if let Some(inner) = text
        .strip_prefix("{range ")
        .and_then(|r| r.strip_suffix("[:]}{}{','}{end}"))
    {
        return Ok(ConfigPath {
            keys: keys_of(inner)?,
            join_list: true,
        });
    }
    let inner = text
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .ok_or(PathError(text))?;
    Ok(ConfigPath {
        keys: keys_of(inner)?,
        join_list: false,
    })
}

impl ConfigPath {
    /// The dotted key (`authentication.anonymous.enabled`), as the effective values are keyed.
    pub fn key(&self) -> String {
        self.keys.join(".")
    }

    /// What kube-bench prints for this path on a document decoded from JSON (`json`) or YAML:
    /// `Ok("")` when the key is missing, `Err` when client-go's jsonpath fails.
    pub fn read(&self, root: &ConfigValue, json: bool) -> Result<String, String> {
        let mut cur = Some(root);
        for k in &self.keys {
            cur = match cur {
                Some(v @ ConfigValue::Map(_)) => v.get(k),
                // A key under null, a scalar or a list: no result (missing keys are allowed).
                _ => None,
            };
        }
        let Some(value) = cur else {
            return Ok(String::new());
        };
        if !self.join_list {
            return render(value, json);
        }
        match value {
            ConfigValue::Null => Ok(String::new()),
            ConfigValue::List(items) => {
                let mut out = String::new();
                for i in items {
                    out.push_str(&render(i, json)?);
                    out.push(',');
                }
                Ok(out)
            }
            other => Err(format!("{} is not array or slice", go_type(other, json))),
        }
    }
}

fn go_type(v: &ConfigValue, json: bool) -> &'static str {
    match (v, json) {
        (ConfigValue::Null, _) => "<nil>",
        (ConfigValue::Bool(_), _) => "bool",
        (ConfigValue::Int(_), false) => "int",
        (ConfigValue::Int(_) | ConfigValue::Float(_), _) => "float64",
        (ConfigValue::Str(_), _) => "string",
        (ConfigValue::List(_), _) => "[]interface {}",
        (ConfigValue::Map(_), true) => "map[string]interface {}",
        (ConfigValue::Map(_), false) => "map[interface {}]interface {}",
    }
}

/// How client-go's jsonpath prints one value.
pub fn render(v: &ConfigValue, json: bool) -> Result<String, String> {
    match v {
        ConfigValue::Null => Ok("<nil>".to_string()),
        ConfigValue::Bool(b) => Ok(b.to_string()),
        // encoding/json decodes every number to float64.
        ConfigValue::Int(i) if json => Ok(go_float(*i as f64)),
        ConfigValue::Int(i) => Ok(i.to_string()),
        ConfigValue::Float(f) => Ok(go_float(*f)),
        ConfigValue::Str(s) => Ok(s.clone()),
        ConfigValue::List(_) | ConfigValue::Map(_) => to_json(v, json),
    }
}

/// `json.Marshal` of a decoded list or map (an approximation of Go's output: keys sorted,
/// numbers in Rust's shortest form). yaml.v2's maps cannot be marshalled.
fn to_json(v: &ConfigValue, json: bool) -> Result<String, String> {
    Ok(match v {
        ConfigValue::Null => "null".to_string(),
        ConfigValue::Bool(b) => b.to_string(),
        ConfigValue::Int(i) => i.to_string(),
        ConfigValue::Float(f) => f.to_string(),
        ConfigValue::Str(s) => {
            let mut out = String::from("\"");
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                    c => out.push(c),
                }
            }
            out.push('"');
            out
        }
        ConfigValue::List(items) => {
            let parts: Result<Vec<String>, String> =
                items.iter().map(|i| to_json(i, json)).collect();
            format!("[{}]", parts?.join(","))
        }
        ConfigValue::Map(entries) => {
            if !json {
                return Err("json: unsupported type: map[interface {}]interface {}".to_string());
            }
            let mut sorted: Vec<&(String, ConfigValue)> = entries.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(&b.0));
            let parts: Result<Vec<String>, String> = sorted
                .iter()
                .map(|(k, v)| {
                    Ok(format!(
                        "{}:{}",
                        to_json(&ConfigValue::Str(k.clone()), json)?,
                        to_json(v, json)?
                    ))
                })
                .collect();
            format!("{{{}}}", parts?.join(","))
        }
    })
}

/// Go's `fmt.Sprint(float64)`: `strconv.FormatFloat(v, 'g', -1, 64)`, i.e. the shortest digits
/// that round-trip, in exponent form when the exponent is below -4 or at least 6.
pub fn go_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    // Rust's `{:e}` prints the shortest round-trip digits too: `-1.2345e6`.
    let s = format!("{v:e}");
    let Some((mantissa, exp)) = s.split_once('e') else {
        return s;
    };
    let Ok(exp) = exp.parse::<i32>() else {
        return s;
    };
    let sign = if mantissa.starts_with('-') { "-" } else { "" };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if !(-4..6).contains(&exp) {
        let mut m = digits[..1].to_string();
        if digits.len() > 1 {
            m.push('.');
            m.push_str(&digits[1..]);
        }
        return format!(
            "{sign}{m}e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.unsigned_abs()
        );
    }
    if exp >= 0 {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            format!("{sign}{digits}{}", "0".repeat(int_len - digits.len()))
        } else {
            format!("{sign}{}.{}", &digits[..int_len], &digits[int_len..])
        }
    } else {
        format!(
            "{sign}0.{}{digits}",
            "0".repeat(exp.unsigned_abs() as usize - 1)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, ConfigValue)]) -> ConfigValue {
        ConfigValue::Map(
            entries
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn parses_the_shapes_kube_bench_uses() {
        let p = parse("{.authentication.anonymous.enabled}").expect("valid");
        assert_eq!(p.key(), "authentication.anonymous.enabled");
        assert!(!p.join_list);
        let p = parse("{range .tlsCipherSuites[:]}{}{','}{end}").expect("valid");
        assert_eq!(p.key(), "tlsCipherSuites");
        assert!(p.join_list);
        assert!(parse("{.a..b}").is_err());
        assert!(parse(".a").is_err());
        assert!(parse("{.a[0]}").is_err());
    }

    #[test]
    fn renders_like_client_go() {
        let doc = map(&[
            (
                "authentication",
                map(&[("anonymous", map(&[("enabled", ConfigValue::Bool(false))]))]),
            ),
            ("readOnlyPort", ConfigValue::Int(0)),
            ("eventRecordQPS", ConfigValue::Null),
            ("podPidsLimit", ConfigValue::Int(1_000_000)),
            (
                "tlsCipherSuites",
                ConfigValue::List(vec![
                    ConfigValue::Str("A".into()),
                    ConfigValue::Str("B".into()),
                ]),
            ),
            ("featureGates", ConfigValue::Null),
        ]);
        let read = |p: &'static str, json: bool| parse(p).expect("valid").read(&doc, json);
        assert_eq!(
            read("{.authentication.anonymous.enabled}", false).as_deref(),
            Ok("false")
        );
        assert_eq!(read("{.readOnlyPort}", false).as_deref(), Ok("0"));
        assert_eq!(read("{.readOnlyPort}", true).as_deref(), Ok("0"));
        assert_eq!(read("{.eventRecordQPS}", false).as_deref(), Ok("<nil>"));
        assert_eq!(read("{.podPidsLimit}", false).as_deref(), Ok("1000000"));
        assert_eq!(read("{.podPidsLimit}", true).as_deref(), Ok("1e+06"));
        assert_eq!(read("{.missing.key}", false).as_deref(), Ok(""));
        assert_eq!(
            read("{.featureGates.RotateKubeletServerCertificate}", false).as_deref(),
            Ok("")
        );
        assert_eq!(
            read("{range .tlsCipherSuites[:]}{}{','}{end}", false).as_deref(),
            Ok("A,B,")
        );
        assert_eq!(
            read("{range .missing[:]}{}{','}{end}", false).as_deref(),
            Ok("")
        );
        assert!(read("{range .readOnlyPort[:]}{}{','}{end}", false).is_err());
        assert!(read("{.authentication}", false).is_err());
        assert_eq!(
            read("{.authentication.anonymous}", true).as_deref(),
            Ok("{\"enabled\":false}")
        );
    }

    #[test]
    fn go_floats() {
        for (v, s) in [
            (0.0, "0"),
            (5.0, "5"),
            (0.5, "0.5"),
            (123456.0, "123456"),
            (1e6, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5, "-2.5"),
            (1e21, "1e+21"),
        ] {
            assert_eq!(go_float(v), s, "{v}");
        }
    }
}
