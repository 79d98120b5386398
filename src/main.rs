fn main() -> std::process::ExitCode {
    kharden::cli::main()
}
