//! The store: `.snap` files under the snapshot folder, one per exchange, in insta's format so
//! `cargo insta review` can accept a pending `.snap.new`; comparison with diffs naming the
//! exchange, and what to write by [`Mode`].

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::Recorded;

/// What to do with a difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Write `.snap` files (accept everything): `--update`, `INSTA_UPDATE=always`.
    Record,
    /// Write a pending `.snap.new` beside each differing snapshot, for `cargo insta review`.
    Pending,
    /// Write nothing: `INSTA_UPDATE=no`, and the default under CI.
    Check,
}

impl Mode {
    /// The mode insta would use, from `INSTA_UPDATE` (and `CI`).
    pub fn from_env() -> Mode {
        match std::env::var("INSTA_UPDATE").as_deref() {
            Ok("always") | Ok("1") => Mode::Record,
            Ok("no") | Ok("0") => Mode::Check,
            Ok("new") => Mode::Pending,
            _ if std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false") => {
                Mode::Check
            }
            _ => Mode::Pending,
        }
    }
}

/// The result of comparing one exchange with its snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Same as stored.
    Same,
    /// Differs: the unified diff (stored → now), naming the exchange.
    Changed(String),
    /// No snapshot stored yet: the new contents.
    New(String),
    /// Written as the stored snapshot (record mode).
    Written,
}

/// A whole check.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Per exchange: name, snapshot path, status.
    pub results: Vec<(String, PathBuf, Status)>,
    /// `.snap` files in the APIs' folders that no exchange of the corpus has.
    pub unreferenced: Vec<PathBuf>,
    /// `.snap.new` files written.
    pub pending: Vec<PathBuf>,
}

impl Report {
    /// Differences (changed, new, unreferenced).
    pub fn differences(&self) -> usize {
        self.results
            .iter()
            .filter(|(_, _, s)| matches!(s, Status::Changed(_) | Status::New(_)))
            .count()
            + self.unreferenced.len()
    }

    /// Diffs and a summary, for people.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (name, path, status) in &self.results {
            match status {
                Status::Changed(diff) => {
                    let _ = writeln!(out, "changed: {name} ({})\n{diff}", path.display());
                }
                Status::New(text) => {
                    let _ = writeln!(out, "new: {name} ({}), no snapshot stored", path.display());
                    for l in text.lines() {
                        let _ = writeln!(out, "+{l}");
                    }
                }
                _ => {}
            }
        }
        for p in &self.unreferenced {
            let _ = writeln!(
                out,
                "unreferenced: {} (no exchange of the corpus has it)",
                p.display()
            );
        }
        let count = |f: fn(&Status) -> bool| self.results.iter().filter(|r| f(&r.2)).count();
        let _ = writeln!(
            out,
            "{} exchanges: {} same, {} changed, {} new, {} written, {} unreferenced",
            self.results.len(),
            count(|s| *s == Status::Same),
            count(|s| matches!(s, Status::Changed(_))),
            count(|s| matches!(s, Status::New(_))),
            count(|s| *s == Status::Written),
            self.unreferenced.len()
        );
        if !self.pending.is_empty() {
            let _ = writeln!(
                out,
                "{} pending .snap.new files written: review them with `cargo insta review`",
                self.pending.len()
            );
        }
        out
    }
}

#[derive(Serialize)]
struct Meta<'a> {
    source: &'a str,
    description: &'a str,
    expression: &'a str,
}

/// Contents as insta compares and writes those of a file snapshot: trailing white space
/// trimmed, CRLF line ends as LF (`TextSnapshotContents`'s normalisation, which insta keeps
/// out of its stable API; written here so no unstable item is needed).
fn normalised(contents: &str) -> String {
    contents.trim_end().replace("\r\n", "\n")
}

/// The file text insta writes for a snapshot: the metadata header, then the contents.
pub fn snap_file(r: &Recorded) -> String {
    let meta = serde_yaml_ng::to_string(&Meta {
        source: "src/snapshot/mod.rs",
        description: &r.about,
        expression: &r.name,
    })
    .unwrap_or_default();
    format!("---\n{meta}---\n{}\n", normalised(&r.yaml))
}

fn pending_path(path: &Path) -> PathBuf {
    path.with_extension("snap.new")
}

/// Compares recorded exchanges with the snapshots under `dir`, writing according to `mode`.
pub fn compare(dir: &Path, recorded: &[Recorded], mode: Mode) -> std::io::Result<Report> {
    let mut report = Report::default();
    let write = |path: &Path, text: String| -> std::io::Result<()> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, text)
    };
    for r in recorded {
        let path = dir.join(&r.file);
        let pending = pending_path(&path);
        let new = normalised(&r.yaml);
        let old = if path.exists() {
            let snap = insta::Snapshot::from_file(&path).map_err(|e| {
                std::io::Error::other(format!("{}: not a snapshot: {e}", path.display()))
            })?;
            snap.as_text().map(|t| t.to_string())
        } else {
            None
        };
        let status = match &old {
            Some(old) if *old == new => Status::Same,
            _ if mode == Mode::Record => Status::Written,
            Some(old) => {
                let diff = similar::TextDiff::from_lines(old.as_str(), new.as_str())
                    .unified_diff()
                    .context_radius(3)
                    .header(
                        &format!("{} (stored)", r.name),
                        &format!("{} (now)", r.name),
                    )
                    .to_string();
                Status::Changed(diff)
            }
            None => Status::New(new.clone()),
        };
        match (&status, mode) {
            (Status::Written, _) => {
                write(&path, snap_file(r))?;
                if pending.exists() {
                    std::fs::remove_file(&pending)?;
                }
            }
            (Status::Same, Mode::Record | Mode::Pending) if pending.exists() => {
                std::fs::remove_file(&pending)?;
            }
            (Status::Changed(_) | Status::New(_), Mode::Pending) => {
                write(&pending, snap_file(r))?;
                report.pending.push(pending.clone());
            }
            _ => {}
        }
        report.results.push((r.name.clone(), path, status));
    }
    // Snapshots of these APIs that the corpus no longer has.
    let known: BTreeSet<PathBuf> = recorded.iter().map(|r| dir.join(&r.file)).collect();
    let folders: BTreeSet<PathBuf> = known
        .iter()
        .filter_map(|p| p.parent().map(Path::to_path_buf))
        .collect();
    for folder in folders {
        let Ok(rd) = std::fs::read_dir(&folder) else {
            continue;
        };
        let mut stale: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "snap") && !known.contains(p))
            .collect();
        stale.sort();
        for p in stale {
            if mode == Mode::Record {
                std::fs::remove_file(&p)?;
            } else {
                report.unreferenced.push(p);
            }
        }
    }
    Ok(report)
}
