//! The journal of a run that may change what a target holds: before the first request that may
//! change an instance, what the instance held (its keys and state, read back through the
//! vendors' read calls) is appended to a file and flushed to disk. At the end of the run —
//! passed, failed, interrupted or stopped by a budget — [`super::restore`] puts every
//! reversible change back from it; after a crash `apiconform restore JOURNAL` does the same.
//!
//! One JSON object per line, so that a crash mid-write loses at most the line being written
//! (a torn last line is ignored on reading) and a person can read the file with any pager:
//!
//! ```text
//! {"started":{"version":1,"target":"https://cvm.tencentcloudapi.com","at":1764662400}}
//! {"before":{"product":"cvm","region":"ap-guangzhou","id":"ins-a1","keys":["skey-1"],"state":"STOPPED","seen":true}}
//! {"closed":{"changed":1,"restored":1,"at":1764662460}}
//! ```
//!
//! A journal without a `closed` line belongs to a run whose changes may not have been undone:
//! a new run refuses to overwrite it.

use std::collections::HashSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::spec::Product;

/// The format's version, written in the `started` line.
pub const JOURNAL_VERSION: u32 = 1;

/// What one instance held before the run first touched it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Before {
    /// The instance's product.
    pub product: Product,
    /// Its region.
    pub region: String,
    /// Its id.
    pub id: String,
    /// Bound keys (key ids for Tencent, the key pair name for Alibaba).
    pub keys: Vec<String>,
    /// Its state as the read call spells it, upper case (`RUNNING`, `STOPPED`), where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Whether this was read from the target (`false`: no read call shows this product's
    /// bindings, and the world file's word was taken).
    pub seen: bool,
}

/// One line of a journal.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Line {
    /// The first line: which target the run went to.
    Started {
        version: u32,
        target: String,
        /// Unix seconds.
        at: i64,
    },
    /// An instance, before its first change.
    Before(Before),
    /// The run (or a later `restore`) undid what it could.
    Closed {
        changed: usize,
        restored: usize,
        at: i64,
    },
}

/// A journal read back from its file.
#[derive(Debug, Clone)]
pub struct JournalFile {
    /// The file.
    pub path: PathBuf,
    /// The target the run went to.
    pub target: String,
    /// The instances, in the order the run first touched them.
    pub before: Vec<Before>,
    /// `(changed, restored)` of the last restore, when one finished.
    pub closed: Option<(usize, usize)>,
}

/// Errors writing or reading a journal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// The file could not be written or read.
    #[error("journal {path}: {source}\n  = help: pass a writable file to --journal")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line is not a journal entry.
    #[error("error: {message}\n  --> {path}:{line}\n  = help: a journal is written by `apiconform run --journal FILE`, one JSON object per line; this one was changed or is not a journal")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The file holds a run whose changes were not undone.
    #[error("journal {path} holds a run against {target} that was not restored (no `closed` line)\n  = help: run `apiconform restore {path}` first (it puts back what that run changed), or pass another --journal file")]
    NotRestored {
        /// The file.
        path: PathBuf,
        /// The target of that run.
        target: String,
    },
}

/// The journal a run writes.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: std::fs::File,
    recorded: HashSet<(Product, String)>,
    entries: Vec<Before>,
}

impl Journal {
    /// Starts a journal at `path` for a run against `target`. An existing journal is only
    /// replaced when its run was restored (it has a `closed` line): otherwise its changes might
    /// be lost for good.
    pub fn create(path: &Path, target: &str) -> Result<Journal, JournalError> {
        if path.exists() {
            let old = read(path)?;
            if old.closed.is_none() && !old.before.is_empty() {
                return Err(JournalError::NotRestored {
                    path: path.to_path_buf(),
                    target: old.target,
                });
            }
        }
        let io = |source| JournalError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::create(path).map_err(io)?;
        let mut journal = Journal {
            path: path.to_path_buf(),
            file,
            recorded: HashSet::new(),
            entries: Vec::new(),
        };
        journal.append(&Line::Started {
            version: JOURNAL_VERSION,
            target: target.to_string(),
            at: now(),
        })?;
        Ok(journal)
    }

    /// Continues the journal of `file` (a `restore` after a crash closes it when done).
    pub fn reopen(file: &JournalFile) -> Result<Journal, JournalError> {
        let io = |source| JournalError::Io {
            path: file.path.clone(),
            source,
        };
        let handle = std::fs::OpenOptions::new()
            .append(true)
            .open(&file.path)
            .map_err(io)?;
        Ok(Journal {
            path: file.path.clone(),
            file: handle,
            recorded: file
                .before
                .iter()
                .map(|b| (b.product, b.id.clone()))
                .collect(),
            entries: file.before.clone(),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What is recorded, in the order it was.
    pub fn entries(&self) -> &[Before] {
        &self.entries
    }

    /// Whether the instance is in the journal already.
    pub fn has(&self, product: Product, id: &str) -> bool {
        self.recorded.contains(&(product, id.to_string()))
    }

    /// Writes down what an instance held, on disk before this returns: the request that may
    /// change it goes only after.
    pub fn record(&mut self, before: Before) -> Result<(), JournalError> {
        if !self.recorded.insert((before.product, before.id.clone())) {
            return Ok(());
        }
        self.append(&Line::Before(before.clone()))?;
        self.entries.push(before);
        Ok(())
    }

    /// Marks the run's changes as undone as far as they could be.
    pub fn close(&mut self, changed: usize, restored: usize) -> Result<(), JournalError> {
        self.append(&Line::Closed {
            changed,
            restored,
            at: now(),
        })
    }

    fn append(&mut self, line: &Line) -> Result<(), JournalError> {
        let mut text = serde_json::to_string(line).expect("journal lines serialise");
        text.push('\n');
        let io = |source| JournalError::Io {
            path: self.path.clone(),
            source,
        };
        self.file.write_all(text.as_bytes()).map_err(io)?;
        self.file.sync_data().map_err(io)
    }
}

/// Reads a journal. A last line cut short (the process died while writing it) is ignored; any
/// other line that is not an entry is an error naming it.
pub fn read(path: &Path) -> Result<JournalFile, JournalError> {
    let invalid = |line: usize, message: String| JournalError::Invalid {
        path: path.to_path_buf(),
        line,
        message,
    };
    // Larger or nested deeper than a journal needs: refused before it is parsed.
    let text = crate::input::read(path, crate::input::Kind::Journal).map_err(|e| match e {
        crate::input::InputError::Io { path, source } => JournalError::Io { path, source },
        e => invalid(e.location().0, e.reason()),
    })?;
    let lines: Vec<&str> = text.lines().collect();
    let mut target = None;
    let mut before: Vec<Before> = Vec::new();
    let mut closed = None;
    for (n, raw) in lines.iter().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        let line: Line = match serde_json::from_str(raw) {
            Ok(l) => l,
            // Torn by a crash: only the last line can be, and it had not been flushed.
            Err(_) if n + 1 == lines.len() && !text.ends_with('\n') => break,
            Err(e) => return Err(invalid(n + 1, format!("not a journal entry: {e}"))),
        };
        match line {
            Line::Started {
                version, target: t, ..
            } => {
                if version > JOURNAL_VERSION {
                    return Err(invalid(
                        n + 1,
                        format!("journal version {version} is newer than this apiconform reads ({JOURNAL_VERSION})"),
                    ));
                }
                if n != 0 {
                    return Err(invalid(n + 1, "a second `started` line".into()));
                }
                target = Some(t);
            }
            Line::Before(b) => {
                closed = None;
                if !before
                    .iter()
                    .any(|x| x.product == b.product && x.id == b.id)
                {
                    before.push(b);
                }
            }
            Line::Closed {
                changed, restored, ..
            } => closed = Some((changed, restored)),
        }
    }
    let target = target.ok_or_else(|| invalid(1, "no `started` line".into()))?;
    Ok(JournalFile {
        path: path.to_path_buf(),
        target,
        before,
        closed,
    })
}

fn now() -> i64 {
    crate::emulator::server::now()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn before(id: &str) -> Before {
        Before {
            product: Product::Cvm,
            region: "ap-guangzhou".into(),
            id: id.into(),
            keys: vec!["skey-1".into()],
            state: Some("STOPPED".into()),
            seen: true,
        }
    }

    #[test]
    fn what_is_recorded_reads_back_once_per_instance_and_a_torn_last_line_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let mut j = Journal::create(&path, "https://example.com").unwrap();
        j.record(before("ins-1")).unwrap();
        j.record(before("ins-1")).unwrap();
        j.record(before("ins-2")).unwrap();
        drop(j);
        // A crash while the next line was written.
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"before\":{\"prod");
        std::fs::write(&path, text).unwrap();
        let read = read(&path).unwrap();
        assert_eq!(read.target, "https://example.com");
        assert_eq!(read.before, vec![before("ins-1"), before("ins-2")]);
        assert_eq!(read.closed, None);
    }

    #[test]
    fn an_unrestored_journal_is_not_overwritten_but_a_closed_one_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let mut j = Journal::create(&path, "https://example.com").unwrap();
        j.record(before("ins-1")).unwrap();
        drop(j);
        let err = Journal::create(&path, "https://example.com").unwrap_err();
        assert!(matches!(err, JournalError::NotRestored { .. }), "{err}");
        assert!(err.to_string().contains("apiconform restore"), "{err}");
        let mut j = Journal::reopen(&read(&path).unwrap()).unwrap();
        j.close(1, 1).unwrap();
        drop(j);
        assert_eq!(read(&path).unwrap().closed, Some((1, 1)));
        let j = Journal::create(&path, "https://example.com").unwrap();
        drop(j);
        assert!(read(&path).unwrap().before.is_empty());
    }

    #[test]
    fn a_line_that_is_not_an_entry_is_named_by_its_number() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        std::fs::write(
            &path,
            "{\"started\":{\"version\":1,\"target\":\"t\",\"at\":0}}\nnot json\n{\"closed\":{\"changed\":0,\"restored\":0,\"at\":0}}\n",
        )
        .unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(err.contains(":2"), "{err}");
    }
}
