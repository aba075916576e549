//! Reading a repro file back (`apiconform replay FILE`): bounded ([`crate::input`]) and parsed,
//! anything else refused with an error naming the file.

use std::path::{Path, PathBuf};

use crate::input::{self, InputError};
use crate::run::Failure;

/// Why a file is not a repro this version can replay.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReproError {
    /// Unreadable, larger or nested deeper than a repro file.
    #[error(transparent)]
    Input(#[from] InputError),
    /// Not a repro file.
    #[error("{} is not a repro file: {why}\n  --> {}:{line}:{column}\n  = help: pass a file written by `apiconform run --repro-dir DIR`", file.display(), file.display())]
    NotARepro {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// serde's message.
        why: String,
    },
}

/// Reads a repro file written by `run --repro-dir`.
pub fn read(file: &Path) -> Result<Failure, ReproError> {
    let text = input::read(file, input::Kind::Repro)?;
    serde_json::from_str(&text).map_err(|e| ReproError::NotARepro {
        file: file.to_path_buf(),
        line: e.line(),
        column: e.column(),
        why: {
            let m = e.to_string();
            m.split(" at line ").next().unwrap_or(&m).to_string()
        },
    })
}

/// For a record of `apiconform proxy --record`, the side of its first finding when it is not the
/// server's (`client`): what the client sent broke the rule, not what the target answered.
pub fn client_side(file: &Path) -> Option<String> {
    let text = input::read(file, input::Kind::Repro).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    match value.get("side")?.as_str()? {
        "server" => None,
        side => Some(side.to_string()),
    }
}
