//! The kubelet's kubeconfig, read for one purpose: to ask the API server about this node's
//! `Ready` condition with the kubelet's own credentials.
//!
//! Why the kubelet's credentials: the node authorizer lets a kubelet read its own Node object,
//! so no cluster-admin credential has to be on the node; and if the API server refuses them,
//! that is worth knowing too. Only what the question needs is read: the current context's
//! server, its CA (a file, or inline data that must be the node's `ca.crt`: kharden writes
//! nothing to hand it to the TLS layer), and the user's client certificate and key files (the
//! kubelet's rotating `kubelet-client-current.pem` on kubeadm nodes).

use crate::assess::gather::follow;
use crate::root::HostRoot;
use kharden_catalog::{ConfigContent, ConfigValue};
use std::path::PathBuf;

/// What a kubeconfig says about the current context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kubeconfig {
    pub server: Option<String>,
    /// The CA file, under the root (an inline CA only when it equals a file kharden found).
    pub ca_file: Option<PathBuf>,
    /// Why the CA cannot be used, when it cannot.
    pub ca_problem: Option<String>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// The current context's user name (`system:node:NAME` for a kubelet).
    pub user_name: Option<String>,
}

fn str_at<'a>(v: &'a ConfigValue, key: &str) -> Option<&'a str> {
    match v.get(key) {
        Some(ConfigValue::Str(s)) => Some(s.as_str()),
        _ => None,
    }
}

/// The entry of `list` (a kubeconfig's `clusters`, `users`, `contexts`) named `name`.
fn named<'a>(doc: &'a ConfigValue, list: &str, name: &str, inner: &str) -> Option<&'a ConfigValue> {
    match doc.get(list) {
        Some(ConfigValue::List(items)) => items
            .iter()
            .find(|i| str_at(i, "name") == Some(name))
            .and_then(|i| i.get(inner)),
        _ => None,
    }
}

/// Standard base64 (RFC 4648, padding optional, blanks ignored).
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            b' ' | b'\n' | b'\r' | b'\t' => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

impl Kubeconfig {
    /// Read the kubeconfig at host path `host` under `root`.
    pub fn read(root: &HostRoot, host: &str) -> Result<Kubeconfig, String> {
        let real = follow(root, host)?;
        let bytes = std::fs::read(&real).map_err(|e| format!("{host}: {e}"))?;
        let doc = match crate::assess::yaml::kube_bench_content(&bytes) {
            ConfigContent::Yaml(v) | ConfigContent::Json(v) => v,
            _ => return Err(format!("{host}: not a kubeconfig (YAML or JSON)")),
        };
        let ctx_name = str_at(&doc, "current-context").unwrap_or_default();
        let ctx = named(&doc, "contexts", ctx_name, "context");
        let cluster = ctx
            .and_then(|c| str_at(c, "cluster"))
            .and_then(|n| named(&doc, "clusters", n, "cluster"));
        let user_name = ctx.and_then(|c| str_at(c, "user")).map(str::to_string);
        let user = user_name
            .as_deref()
            .and_then(|n| named(&doc, "users", n, "user"));
        let under = |p: &str| -> Option<PathBuf> { follow(root, p).ok() };
        let (ca_file, ca_problem) = match cluster {
            None => (
                None,
                Some(format!("{host} has no cluster for its current context")),
            ),
            Some(c) => match (
                str_at(c, "certificate-authority"),
                str_at(c, "certificate-authority-data"),
            ) {
                (Some(f), _) => (under(f), None),
                (None, Some(data)) => {
                    // Inline: usable only as a file that holds the same certificate (kubeadm's
                    // inline CA is the cluster's ca.crt).
                    let inline = base64_decode(data);
                    let candidate = under("/etc/kubernetes/pki/ca.crt");
                    let same = match (&inline, &candidate) {
                        (Some(i), Some(p)) => std::fs::read(p).is_ok_and(|f| f == *i),
                        _ => false,
                    };
                    if same {
                        (candidate, None)
                    } else {
                        (
                            None,
                            Some(format!(
                                "{host} carries its CA inline and no file on the node holds the same certificate (/etc/kubernetes/pki/ca.crt)"
                            )),
                        )
                    }
                }
                (None, None) => (None, None),
            },
        };
        let client_cert = user
            .and_then(|u| str_at(u, "client-certificate"))
            .and_then(under);
        let client_key = user.and_then(|u| str_at(u, "client-key")).and_then(under);
        Ok(Kubeconfig {
            server: cluster
                .and_then(|c| str_at(c, "server"))
                .map(str::to_string),
            ca_file,
            ca_problem,
            client_cert,
            client_key,
            user_name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip() {
        assert_eq!(base64_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64_decode("aGVs\nbG8").unwrap(), b"hello");
        assert!(base64_decode("a*b").is_none());
    }

    #[test]
    fn reads_kubeadms_kubelet_conf() {
        let d = tempfile::tempdir().unwrap();
        let root = HostRoot::new(Some(d.path())).unwrap();
        let r = root.root().to_path_buf();
        std::fs::create_dir_all(r.join("etc/kubernetes/pki")).unwrap();
        #[allow(clippy::disallowed_methods)]
        std::fs::write(r.join("etc/kubernetes/pki/ca.crt"), b"CERT").unwrap();
        #[allow(clippy::disallowed_methods)]
        std::fs::write(
            r.join("etc/kubernetes/kubelet.conf"),
            "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: Q0VSVA==\n    server: https://10.0.0.1:6443\n  name: kubernetes\ncontexts:\n- context:\n    cluster: kubernetes\n    user: system:node:n1\n  name: system:node:n1@kubernetes\ncurrent-context: system:node:n1@kubernetes\nkind: Config\nusers:\n- name: system:node:n1\n  user:\n    client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem\n    client-key: /var/lib/kubelet/pki/kubelet-client-current.pem\n",
        )
        .unwrap();
        let k = Kubeconfig::read(&root, "/etc/kubernetes/kubelet.conf").unwrap();
        assert_eq!(k.server.as_deref(), Some("https://10.0.0.1:6443"));
        assert_eq!(k.ca_file, Some(r.join("etc/kubernetes/pki/ca.crt")));
        assert_eq!(k.user_name.as_deref(), Some("system:node:n1"));
        assert_eq!(
            k.client_cert,
            Some(r.join("var/lib/kubelet/pki/kubelet-client-current.pem"))
        );
    }
}
