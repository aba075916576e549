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

/// The JSON schema of repro files, as written to `docs/repro.schema.json` (`apiconform repro
/// schema`): generated from the [`Failure`] type, so it cannot drift from what is written.
pub fn schema_json() -> String {
    let mut schema =
        serde_json::to_value(schemars::schema_for!(Failure)).expect("schema serialises");
    if let Some(obj) = schema.as_object_mut() {
        obj.insert("title".into(), "apiconform repro file".into());
        obj.insert(
            "description".into(),
            "One failure (`run --repro-dir`, `repro import`; the proxy's records add `side`, `exchange` and `findings`). Generated from src/run/outcome.rs by `apiconform repro schema`; do not edit by hand. docs/repro.md describes the fields."
                .into(),
        );
    }
    let mut s = serde_json::to_string_pretty(&schema).expect("schema serialises");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    /// `docs/repro.schema.json` is what `apiconform repro schema` prints now: regenerate it with
    /// `cargo run -- repro schema > docs/repro.schema.json` when the repro format changes.
    #[test]
    fn the_repro_schema_in_docs_is_the_generated_one() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/repro.schema.json");
        let written = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            written == super::schema_json(),
            "docs/repro.schema.json is stale: run `cargo run -- repro schema > docs/repro.schema.json`"
        );
    }
}
