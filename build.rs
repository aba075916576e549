//! Embeds every spec under `specs/` into the binary, so the built-in specs are whatever that
//! folder holds: adding an API is adding a file there, with no list to keep in step.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let specs = root.join("specs");
    println!("cargo:rerun-if-changed=specs");
    let mut files = Vec::new();
    collect(&specs, &mut files);
    // Families first (an API spec names its family), then API specs; each group sorted, so the
    // embedded order does not depend on the file system.
    files.sort_by_key(|p| (!p.starts_with(specs.join("families")), p.clone()));
    let mut out = String::from("&[\n");
    for path in files {
        println!("cargo:rerun-if-changed={}", path.display());
        let rel = path
            .strip_prefix(&specs)
            .expect("below specs/")
            .to_string_lossy()
            .replace('\\', "/");
        writeln!(
            out,
            "    ({rel:?}, include_str!({:?})),",
            path.to_string_lossy()
        )
        .expect("writing to a String");
    }
    out.push(']');
    let dest =
        PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo")).join("embedded_specs.rs");
    std::fs::write(dest, out).expect("OUT_DIR is writable");
}

/// Every `*.yaml` / `*.yml` below `dir`, folders included (`schema.json` and the README are not
/// specs).
fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        println!("cargo:rerun-if-changed={}", path.display());
        if path.is_dir() {
            collect(&path, out);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            out.push(path);
        }
    }
}
