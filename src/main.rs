//! The `apiconform` binary: all logic lives in the library.

// The hot loop allocates many small, short-lived JSON values and strings on two threads;
// glibc's allocator spent ~40% of `apiconform bench` in malloc/free (consolidating its bins).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    apiconform::cli::main()
}
