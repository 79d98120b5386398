//! Section 2: etcd's command line. Identical ids and tests in every version carried.
//!
//! kube-bench falls back to etcd's `ETCD_*` environment variables when a flag is absent; the
//! variable names are recorded ([`crate::TestItem::env`]) but not evaluated: kharden manages
//! flags, and kubeadm's etcd takes no configuration from the environment.

use super::{absent, check, cmp, env, fix_with, flags, manual, present, unset};
use crate::benchmarks::apiserver::NEEDS_FILES;
use crate::model::{BinOp, CheckDef, Component, Op};
use crate::remediation::Guard;

use BinOp::{And, Or};
use Component::Etcd;

pub(super) fn defs() -> Vec<CheckDef> {
    vec![
        check(
            "etcd-client-tls",
            "etcd serves clients over TLS",
            flags(
                Etcd,
                And,
                vec![
                    env(present("--cert-file"), "ETCD_CERT_FILE"),
                    env(present("--key-file"), "ETCD_KEY_FILE"),
                ],
            ),
        )
        .all("2.1")
        .scored()
        .fix(manual(NEEDS_FILES)),
        check(
            "etcd-client-cert-auth",
            "etcd requires client certificates",
            flags(
                Etcd,
                And,
                vec![env(
                    cmp("--client-cert-auth", Op::Eq, "true"),
                    "ETCD_CLIENT_CERT_AUTH",
                )],
            ),
        )
        .all("2.2")
        .scored()
        .fix(manual(
            "every etcd client (the API server first) must already present a certificate \
             signed by --trusted-ca-file; otherwise the API server loses its storage while \
             etcd's own health probe still passes",
        )),
        check(
            "etcd-no-auto-tls",
            "etcd does not use self-signed client certificates",
            flags(
                Etcd,
                Or,
                vec![
                    env(absent("--auto-tls"), "ETCD_AUTO_TLS"),
                    env(cmp("--auto-tls", Op::Eq, "false"), "ETCD_AUTO_TLS"),
                ],
            ),
        )
        .all("2.3")
        .scored()
        .fix(fix_with(
            vec![unset("auto-tls")],
            Vec::new(),
            vec![
                Guard::Present {
                    flag: "cert-file",
                    why: "without a real certificate etcd relies on auto-tls to serve TLS; set \
                          up --cert-file/--key-file (2.1) first",
                },
                Guard::Present {
                    flag: "key-file",
                    why: "without a real key etcd relies on auto-tls to serve TLS; set up \
                          --cert-file/--key-file (2.1) first",
                },
            ],
            "Removes --auto-tls (default off). Only applied when etcd has its own certificate, \
             which takes precedence over auto-tls anyway.",
        )),
        check(
            "etcd-peer-tls",
            "etcd peers talk over TLS",
            flags(
                Etcd,
                And,
                vec![
                    env(present("--peer-cert-file"), "ETCD_PEER_CERT_FILE"),
                    env(present("--peer-key-file"), "ETCD_PEER_KEY_FILE"),
                ],
            ),
        )
        .all("2.4")
        .scored()
        .fix(manual(NEEDS_FILES)),
        check(
            "etcd-peer-cert-auth",
            "etcd requires peer certificates",
            flags(
                Etcd,
                And,
                vec![env(
                    cmp("--peer-client-cert-auth", Op::Eq, "true"),
                    "ETCD_PEER_CLIENT_CERT_AUTH",
                )],
            ),
        )
        .all("2.5")
        .scored()
        .fix(manual(
            "every member of the etcd cluster must already present a peer certificate signed \
             by --peer-trusted-ca-file; a member that does not is cut off, which one member's \
             health probe does not show",
        )),
        check(
            "etcd-no-peer-auto-tls",
            "etcd does not use self-signed peer certificates",
            flags(
                Etcd,
                Or,
                vec![
                    env(absent("--peer-auto-tls"), "ETCD_PEER_AUTO_TLS"),
                    env(
                        cmp("--peer-auto-tls", Op::Eq, "false"),
                        "ETCD_PEER_AUTO_TLS",
                    ),
                ],
            ),
        )
        .all("2.6")
        .scored()
        .fix(fix_with(
            vec![unset("peer-auto-tls")],
            Vec::new(),
            vec![
                Guard::Present {
                    flag: "peer-cert-file",
                    why: "without a real peer certificate etcd relies on peer-auto-tls; set up \
                          --peer-cert-file/--peer-key-file (2.4) first",
                },
                Guard::Present {
                    flag: "peer-key-file",
                    why: "without a real peer key etcd relies on peer-auto-tls; set up \
                          --peer-cert-file/--peer-key-file (2.4) first",
                },
            ],
            "Removes --peer-auto-tls (default off). Only applied when etcd has its own peer \
             certificate, which takes precedence over peer-auto-tls anyway.",
        )),
        check(
            "etcd-dedicated-ca",
            "etcd trusts a dedicated CA",
            flags(
                Etcd,
                And,
                vec![env(present("--trusted-ca-file"), "ETCD_TRUSTED_CA_FILE")],
            ),
        )
        .all("2.7")
        .fix(manual(
            "a CA used only for etcd has to be created and every etcd client certificate \
             reissued from it; the check itself only sees that some CA file is named",
        )),
    ]
}
