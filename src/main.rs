//! The `kharden` binary. It is also, for the demo and the tests only, a kubelet emulator
//! (`kharden __kubelet ...`) and the fake control-plane components (when invoked through a
//! symlink named `kube-apiserver`, ...): one binary keeps `cargo run --release -- demo`
//! self-contained.

fn main() -> std::process::ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    if let Some(code) = kharden_testnode::dispatch_fake(&argv) {
        return std::process::ExitCode::from(code.clamp(0, 255) as u8);
    }
    if argv.get(1).map(String::as_str) == Some("__kubelet") {
        let code = kharden_testnode::multicall_main(&argv);
        return std::process::ExitCode::from(code.clamp(0, 255) as u8);
    }
    kharden::cli::main()
}
