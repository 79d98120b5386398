//! Where a component's own flags start in a container's argv, and which component it is.
//!
//! Why it exists: the effective argv is `command` + `args`, but the first items are not always
//! the component. kops runs `/go-runner --log-file=... --also-stdout /usr/local/bin/kube-apiserver
//! --flags...` (go-runner's own flags come *before* the binary), hyperkube takes a subcommand
//! (`/hyperkube apiserver --flags...`), and some setups wrap the binary in
//! `flock [options] LOCKFILE BINARY --flags...`. Editing a wrapper's flag instead of the
//! component's would be silently wrong, so this is decided in one place.

/// Control-plane components kharden recognises.
pub(crate) const COMPONENTS: &[&str] = &[
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "etcd",
];

/// How the container starts its component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Launch {
    /// The component's flags start at `flags_start`; `binary` is the argv index of the
    /// component's executable (or hyperkube's subcommand), when known.
    Flags {
        flags_start: usize,
        binary: Option<usize>,
    },
    /// `sh -c "<script>"` (or `flock -c`): the flags are inside one shell string. `index` is
    /// the argv index of the `-c` option.
    ShellC { index: usize },
}

fn basename(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

/// The component an executable path (or hyperkube subcommand) names, if any.
pub(crate) fn component_of_binary(s: &str) -> Option<&'static str> {
    let b = basename(s);
    let b = match b {
        "apiserver" => "kube-apiserver",
        "controller-manager" => "kube-controller-manager",
        "scheduler" => "kube-scheduler",
        other => other,
    };
    COMPONENTS.iter().copied().find(|c| *c == b)
}

fn is_shell(base: &str) -> bool {
    matches!(base, "sh" | "bash" | "ash" | "dash" | "zsh" | "ksh")
}

fn is_dash_c(s: &str) -> bool {
    s.len() >= 2 && s.starts_with('-') && !s.starts_with("--") && s.contains('c')
}

/// Decide where the component's flags start. `has_command` is false when the container has no
/// `command` (argv is then `args` alone, after the image's entrypoint).
pub(crate) fn analyse(argv: &[String], has_command: bool) -> Launch {
    let Some(first) = argv.first() else {
        return Launch::Flags {
            flags_start: 0,
            binary: None,
        };
    };
    if !has_command && first.starts_with('-') {
        return Launch::Flags {
            flags_start: 0,
            binary: None,
        };
    }
    let base = basename(first);
    if is_shell(base) {
        for (i, a) in argv.iter().enumerate().skip(1) {
            if is_dash_c(a) {
                return Launch::ShellC { index: i };
            }
            if !a.starts_with('-') {
                break;
            }
        }
    }
    match base {
        "go-runner" => {
            // go-runner's own flags use `--name=value`; the first non-flag is the binary.
            match argv.iter().skip(1).position(|a| !a.starts_with('-')) {
                Some(p) => Launch::Flags {
                    flags_start: p + 2,
                    binary: Some(p + 1),
                },
                None => Launch::Flags {
                    flags_start: argv.len(),
                    binary: None,
                },
            }
        }
        "hyperkube" => match argv.get(1) {
            Some(sub) if !sub.starts_with('-') => Launch::Flags {
                flags_start: 2,
                binary: Some(1),
            },
            _ => Launch::Flags {
                flags_start: 1,
                binary: Some(0),
            },
        },
        "flock" => flock(argv),
        _ => Launch::Flags {
            flags_start: 1,
            binary: Some(0),
        },
    }
}

/// `flock [options] FILE COMMAND [args...]`.
fn flock(argv: &[String]) -> Launch {
    if let Some(p) = argv
        .iter()
        .skip(1)
        .position(|a| component_of_binary(a).is_some())
    {
        return Launch::Flags {
            flags_start: p + 2,
            binary: Some(p + 1),
        };
    }
    let mut i = 1;
    while let Some(a) = argv.get(i) {
        if !a.starts_with('-') {
            break;
        }
        if a == "-c" || a.starts_with("--command") {
            return Launch::ShellC { index: i };
        }
        let takes_value = matches!(
            a.as_str(),
            "-w" | "-E" | "--timeout" | "--conflict-exit-code"
        );
        i += if takes_value { 2 } else { 1 };
    }
    // argv[i] is the lock file, argv[i + 1] the command.
    let binary = i + 1;
    if binary < argv.len() {
        Launch::Flags {
            flags_start: binary + 1,
            binary: Some(binary),
        }
    } else {
        Launch::Flags {
            flags_start: argv.len(),
            binary: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn wrappers() {
        assert_eq!(
            analyse(&v(&["kube-apiserver", "--a=1"]), true),
            Launch::Flags {
                flags_start: 1,
                binary: Some(0)
            }
        );
        assert_eq!(
            analyse(
                &v(&[
                    "/go-runner",
                    "--log-file=/x",
                    "--also-stdout",
                    "/usr/local/bin/kube-apiserver",
                    "--a"
                ]),
                true
            ),
            Launch::Flags {
                flags_start: 4,
                binary: Some(3)
            }
        );
        assert_eq!(
            analyse(&v(&["/hyperkube", "apiserver", "--a"]), true),
            Launch::Flags {
                flags_start: 2,
                binary: Some(1)
            }
        );
        assert_eq!(
            analyse(
                &v(&["flock", "-w", "30", "/var/lock/x", "/usr/bin/foo", "--a"]),
                true
            ),
            Launch::Flags {
                flags_start: 5,
                binary: Some(4)
            }
        );
        assert_eq!(
            analyse(
                &v(&[
                    "/usr/bin/flock",
                    "--exclusive",
                    "/l",
                    "kube-scheduler",
                    "--a"
                ]),
                true
            ),
            Launch::Flags {
                flags_start: 4,
                binary: Some(3)
            }
        );
        assert_eq!(
            analyse(&v(&["/bin/sh", "-c", "kube-apiserver --a"]), true),
            Launch::ShellC { index: 1 }
        );
        assert_eq!(
            analyse(&v(&["bash", "-ec", "x"]), true),
            Launch::ShellC { index: 1 }
        );
        assert_eq!(
            analyse(&v(&["--a=1"]), false),
            Launch::Flags {
                flags_start: 0,
                binary: None
            }
        );
    }

    #[test]
    fn components() {
        assert_eq!(
            component_of_binary("/usr/local/bin/kube-apiserver"),
            Some("kube-apiserver")
        );
        assert_eq!(component_of_binary("scheduler"), Some("kube-scheduler"));
        assert_eq!(component_of_binary("etcd"), Some("etcd"));
        assert_eq!(component_of_binary("/ko-app/etcd-manager"), None);
    }
}
