//! Multi-call binary: the kubelet emulator (`kharden-testnode kubelet --root DIR ...`) and,
//! when invoked through a symlink named `kube-apiserver`, `kube-controller-manager` or
//! `kube-scheduler`, the fake component. See the crate docs.

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    std::process::exit(kharden_testnode::multicall_main(&argv));
}
