//! A configuration file read the way kube-bench reads it: `json.Unmarshal` first, else
//! `gopkg.in/yaml.v2`'s `Unmarshal` into `interface{}` (check/test.go, `unmarshal`).
//!
//! Why its own reader: kube-bench's verdict on a kubelet key depends on how that Go code types
//! the value. JSON numbers are all `float64`; YAML is YAML 1.1 (`yes`, `on`, `off`, `y`, `n` are
//! booleans, `0644` is octal, `08` is the float 8, `1_000` is 1000), and only the first document
//! counts. This reader reproduces those rules into the catalog's neutral [`ConfigValue`], and
//! nothing more: it is not the kubelet's configuration loader (the kubelet-config crate is), and
//! it never applies defaults.
//!
//! The same reader gives `kharden audit` the container images of the static pod manifests (for
//! the Kubernetes version): a manifest is YAML too, and the image is a plain string.

use kharden_catalog::{ConfigContent, ConfigValue};
use saphyr_parser::{Event, Parser, ScalarStyle, Tag};
use std::collections::HashMap;

/// Deepest nesting accepted (a kubelet configuration is a few levels deep).
const MAX_DEPTH: usize = 64;

/// What kube-bench's `unmarshal` makes of a file's contents.
pub fn kube_bench_content(bytes: &[u8]) -> ConfigContent {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return ConfigContent::Empty;
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes) {
        return ConfigContent::Json(from_json(&v));
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => return ConfigContent::Unparseable(format!("not UTF-8: {e}")),
    };
    match parse_yaml11(text) {
        Ok(v) => ConfigContent::Yaml(v),
        Err(e) => ConfigContent::Unparseable(e),
    }
}

/// `encoding/json` into `interface{}`: every number is a float64.
fn from_json(v: &serde_json::Value) -> ConfigValue {
    match v {
        serde_json::Value::Null => ConfigValue::Null,
        serde_json::Value::Bool(b) => ConfigValue::Bool(*b),
        serde_json::Value::Number(n) => ConfigValue::Float(n.as_f64().unwrap_or(f64::NAN)),
        serde_json::Value::String(s) => ConfigValue::Str(s.clone()),
        serde_json::Value::Array(a) => ConfigValue::List(a.iter().map(from_json).collect()),
        serde_json::Value::Object(m) => {
            ConfigValue::Map(m.iter().map(|(k, v)| (k.clone(), from_json(v))).collect())
        }
    }
}

enum Frame {
    Seq {
        anchor: usize,
        items: Vec<ConfigValue>,
    },
    Map {
        anchor: usize,
        entries: Vec<(String, ConfigValue)>,
        key: Option<String>,
    },
}

/// The first YAML document of `text` as `yaml.v2` decodes it into `interface{}` (an empty
/// document is `Null`). Errors are the parser's message with its line.
pub fn parse_yaml11(text: &str) -> Result<ConfigValue, String> {
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, ConfigValue> = HashMap::new();
    let mut doc: Option<ConfigValue> = None;
    let mut started = false;
    while let Some(next) = parser.next_event() {
        let (ev, _span) = next.map_err(|e| format!("line {}: {}", e.marker().line(), e.info()))?;
        let done: Option<(ConfigValue, usize)> = match ev {
            Event::Nothing | Event::StreamStart | Event::StreamEnd => None,
            Event::DocumentStart(_) => {
                if started {
                    // yaml.v2's Unmarshal reads the first document only.
                    break;
                }
                started = true;
                None
            }
            // After the first document, yaml.v2 still reads the next token (the end of the
            // document, or the start of another): text that is neither is an error there too,
            // so read one more event before stopping.
            Event::DocumentEnd => None,
            Event::Alias(id) => Some((
                anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| format!("unknown anchor {id}"))?,
                0,
            )),
            Event::Scalar(value, style, anchor, tag) => {
                Some((scalar(&value, style, tag.as_deref()), anchor))
            }
            Event::SequenceStart(anchor, _) => {
                if stack.len() >= MAX_DEPTH {
                    return Err("nesting too deep".into());
                }
                stack.push(Frame::Seq {
                    anchor,
                    items: Vec::new(),
                });
                None
            }
            Event::MappingStart(anchor, _) => {
                if stack.len() >= MAX_DEPTH {
                    return Err("nesting too deep".into());
                }
                stack.push(Frame::Map {
                    anchor,
                    entries: Vec::new(),
                    key: None,
                });
                None
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq { anchor, items }) => Some((ConfigValue::List(items), anchor)),
                _ => return Err("unbalanced sequence".into()),
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map {
                    anchor, entries, ..
                }) => Some((ConfigValue::Map(entries), anchor)),
                _ => return Err("unbalanced mapping".into()),
            },
        };
        let Some((value, anchor)) = done else {
            continue;
        };
        if anchor != 0 {
            anchors.insert(anchor, value.clone());
        }
        match stack.last_mut() {
            None => doc = Some(value),
            Some(Frame::Seq { items, .. }) => items.push(value),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                None => *key = Some(key_text(&value)),
                Some(k) => {
                    // A repeated key: the later value wins, as in yaml.v2's map.
                    entries.retain(|(e, _)| *e != k);
                    entries.push((k, value));
                }
            },
        }
    }
    Ok(doc.unwrap_or(ConfigValue::Null))
}

/// A mapping key as the text `fmt` would print for it (`map[interface{}]interface{}` keys).
fn key_text(v: &ConfigValue) -> String {
    match v {
        ConfigValue::Null => "<nil>".into(),
        ConfigValue::Bool(b) => b.to_string(),
        ConfigValue::Int(i) => i.to_string(),
        ConfigValue::Float(f) => f.to_string(),
        ConfigValue::Str(s) => s.clone(),
        ConfigValue::List(_) | ConfigValue::Map(_) => format!("{v:?}"),
    }
}

fn scalar(value: &str, style: ScalarStyle, tag: Option<&Tag>) -> ConfigValue {
    let tag = tag.map(|t| (t.handle.as_str(), t.suffix.as_str()));
    let core = |s: &str| matches!(tag, Some(("!!" | "tag:yaml.org,2002:", x)) if x == s);
    if core("str") || core("binary") {
        return ConfigValue::Str(value.to_string());
    }
    match style {
        ScalarStyle::Plain => resolve_plain(value),
        // A quoted or block scalar is a string unless a tag says otherwise.
        _ if core("int") || core("float") || core("bool") || core("null") => resolve_plain(value),
        _ => ConfigValue::Str(value.to_string()),
    }
}

/// yaml.v2's `resolve` for a plain scalar ([`kharden_yaml_span::yaml11::resolve`]), decoded
/// into `interface{}` as kube-bench does: a timestamp stays the string as written, an integer
/// beyond `i64` becomes the nearest float (no check compares such a number).
pub fn resolve_plain(s: &str) -> ConfigValue {
    use kharden_yaml_span::yaml11::{resolve, Resolved};
    match resolve(s) {
        Resolved::Null => ConfigValue::Null,
        Resolved::Bool(b) => ConfigValue::Bool(b),
        Resolved::Int(i) => ConfigValue::Int(i),
        Resolved::Uint(u) => ConfigValue::Float(u as f64),
        Resolved::Float(f) => ConfigValue::Float(f),
        Resolved::Timestamp | Resolved::Str(_) => ConfigValue::Str(s.to_string()),
    }
}

/// The image of the container named `container` (or the first container) of a pod manifest.
pub fn container_image(manifest: &[u8], container: &str) -> Option<String> {
    let text = std::str::from_utf8(manifest).ok()?;
    let doc = parse_yaml11(text).ok()?;
    let containers = match doc.get("spec")?.get("containers")? {
        ConfigValue::List(l) => l,
        _ => return None,
    };
    let named = containers
        .iter()
        .find(|c| matches!(c.get("name"), Some(ConfigValue::Str(n)) if n == container));
    match named.or(containers.first())?.get("image")? {
        ConfigValue::Str(s) => Some(s.clone()),
        _ => None,
    }
}

/// The tag of an image reference (`registry.k8s.io/kube-apiserver:v1.30.2` -> `v1.30.2`);
/// `None` for a reference without a tag (a digest alone, or the implicit `latest`).
pub fn image_tag(image: &str) -> Option<&str> {
    let name = image.split('@').next().unwrap_or(image);
    let last = name.rsplit('/').next().unwrap_or(name);
    last.split_once(':')
        .map(|(_, t)| t)
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(t: &str) -> ConfigValue {
        match kube_bench_content(t.as_bytes()) {
            ConfigContent::Yaml(v) => v,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn yaml_1_1_scalars_as_yaml_v2_types_them() {
        for (t, want) in [
            ("yes", ConfigValue::Bool(true)),
            ("Off", ConfigValue::Bool(false)),
            ("y", ConfigValue::Bool(true)),
            ("~", ConfigValue::Null),
            ("0", ConfigValue::Int(0)),
            ("-1", ConfigValue::Int(-1)),
            ("0644", ConfigValue::Int(420)),
            ("0x1F", ConfigValue::Int(31)),
            ("1_000", ConfigValue::Int(1000)),
            ("08", ConfigValue::Float(8.0)),
            ("1e3", ConfigValue::Float(1000.0)),
            ("0b101", ConfigValue::Int(5)),
            ("4h0m0s", ConfigValue::Str("4h0m0s".into())),
            ("2001-12-14", ConfigValue::Str("2001-12-14".into())),
            ("Webhook", ConfigValue::Str("Webhook".into())),
        ] {
            assert_eq!(resolve_plain(t), want, "{t}");
        }
        let v = yaml("a: 'yes'\nb: yes\nc: \"0\"\nd: !!str 12\nlist: [A, B]\n");
        assert_eq!(v.get("a"), Some(&ConfigValue::Str("yes".into())));
        assert_eq!(v.get("b"), Some(&ConfigValue::Bool(true)));
        assert_eq!(v.get("c"), Some(&ConfigValue::Str("0".into())));
        assert_eq!(v.get("d"), Some(&ConfigValue::Str("12".into())));
        assert_eq!(
            v.get("list"),
            Some(&ConfigValue::List(vec![
                ConfigValue::Str("A".into()),
                ConfigValue::Str("B".into())
            ]))
        );
    }

    #[test]
    fn json_first_with_float_numbers_then_yaml_then_unparseable() {
        match kube_bench_content(br#"{"readOnlyPort": 0, "x": {"y": true}}"#) {
            ConfigContent::Json(v) => {
                assert_eq!(v.get("readOnlyPort"), Some(&ConfigValue::Float(0.0)));
                assert_eq!(
                    v.get("x").and_then(|x| x.get("y")),
                    Some(&ConfigValue::Bool(true))
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(kube_bench_content(b"  \n"), ConfigContent::Empty);
        // A systemd drop-in (one of kube-bench's $kubeletconf candidates) is neither.
        let dropin = b"[Service]\nEnvironment=\"KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml\"\nExecStart=\nExecStart=/usr/bin/kubelet $KUBELET_CONFIG_ARGS\n";
        assert!(
            matches!(kube_bench_content(dropin), ConfigContent::Unparseable(_)),
            "{:?}",
            kube_bench_content(dropin)
        );
        // Only the first document, anchors resolved, later duplicate keys win.
        let v = yaml("a: &x 1\nb: *x\na: 2\n---\nc: 3\n");
        assert_eq!(v.get("a"), Some(&ConfigValue::Int(2)));
        assert_eq!(v.get("b"), Some(&ConfigValue::Int(1)));
        assert_eq!(v.get("c"), None);
    }

    #[test]
    fn images_and_tags() {
        let m = b"apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: side\n    image: busybox\n  - name: kube-apiserver\n    image: registry.k8s.io/kube-apiserver:v1.31.2\n";
        assert_eq!(
            container_image(m, "kube-apiserver").as_deref(),
            Some("registry.k8s.io/kube-apiserver:v1.31.2")
        );
        assert_eq!(container_image(m, "other").as_deref(), Some("busybox"));
        assert_eq!(
            image_tag("registry.k8s.io/kube-apiserver:v1.31.2"),
            Some("v1.31.2")
        );
        assert_eq!(
            image_tag("localhost:5000/kube-apiserver:v1.30.0"),
            Some("v1.30.0")
        );
        assert_eq!(image_tag("localhost:5000/kube-apiserver"), None);
        assert_eq!(
            image_tag("registry.k8s.io/kube-apiserver:v1.30.1@sha256:abcd"),
            Some("v1.30.1")
        );
        assert_eq!(
            image_tag("registry.k8s.io/kube-apiserver@sha256:abcd"),
            None
        );
    }
}
