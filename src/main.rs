//! The `kharden` binary: the command line over the `kharden` library.
//!
//! With the `demo` cargo feature (on by default, off in the .deb and the static build) it is
//! also, for `kharden demo` and the tests only, a kubelet emulator (`kharden __kubelet ...`)
//! and the fake control-plane components (when invoked through a symlink named
//! `kube-apiserver`, ...): one binary keeps `cargo run --release -- demo` self-contained.

mod cli;

fn main() -> std::process::ExitCode {
    #[cfg(feature = "demo")]
    {
        let argv: Vec<String> = std::env::args().collect();
        if let Some(code) = kharden_testnode::dispatch_fake(&argv) {
            return std::process::ExitCode::from(code.clamp(0, 255) as u8);
        }
        if argv.get(1).map(String::as_str) == Some("__kubelet") {
            let code = kharden_testnode::multicall_main(&argv);
            return std::process::ExitCode::from(code.clamp(0, 255) as u8);
        }
    }
    cli::main()
}
