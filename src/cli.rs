//! The command line: parses arguments, calls the library, maps results to exit codes.

use std::process::ExitCode;

/// Exit codes (a contract: users' scripts rely on them).
pub mod exit {
    /// Every check passed.
    pub const OK: u8 = 0;
    /// At least one nonconformance.
    pub const NONCONFORMANCE: u8 = 1;
    /// Usage, spec or world-file error.
    pub const USAGE: u8 = 2;
    /// The target could not be reached or the run could not complete.
    pub const TARGET: u8 = 3;
}

/// Runs the command line.
pub fn main() -> ExitCode {
    ExitCode::from(exit::OK)
}
