//! The `apiconform` binary: all logic lives in the library.

fn main() -> std::process::ExitCode {
    apiconform::cli::main()
}
