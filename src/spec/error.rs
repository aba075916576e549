//! Spec-file problems, located at file, line and column, rendered the way rustc renders errors so
//! that the person fixing a spec sees the offending line and what to change.

use std::fmt;
use std::path::PathBuf;

/// One problem in one spec file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file (as given to the loader).
    pub path: PathBuf,
    /// 1-based line, 0 when the problem concerns the whole file.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// How many characters to underline.
    pub width: usize,
    /// What is wrong.
    pub message: String,
    /// What to change.
    pub help: String,
    /// The offending source line, when known.
    pub snippet: Option<String>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "error: {}", self.message)?;
        if self.line == 0 {
            writeln!(f, "  --> {}", self.path.display())?;
        } else {
            writeln!(
                f,
                "  --> {}:{}:{}",
                self.path.display(),
                self.line,
                self.column
            )?;
        }
        if let Some(snippet) = &self.snippet {
            let gutter = self.line.to_string().len();
            writeln!(f, "{:gutter$} |", "")?;
            writeln!(f, "{} | {}", self.line, snippet)?;
            let pad = self.column.saturating_sub(1);
            writeln!(
                f,
                "{:gutter$} | {:pad$}{}",
                "",
                "",
                "^".repeat(self.width.max(1))
            )?;
        }
        write!(f, "  = help: {}", self.help)
    }
}

/// Errors at the spec boundary: reading files, parsing them, and checking what they say.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// A file or folder could not be read.
    #[error("cannot read {path}: {source}\n  = help: check the path; specs live in `specs/` (or pass --specs DIR)")]
    Io {
        /// What was being read.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// One or more files are malformed or inconsistent.
    #[error("{}", render(.0))]
    Invalid(Vec<Problem>),
}

fn render(problems: &[Problem]) -> String {
    let mut out = String::new();
    for (i, p) in problems.iter().enumerate() {
        if i > 0 {
            out.push_str("\n\n");
        }
        out.push_str(&p.to_string());
    }
    out.push_str(&format!(
        "\n\n{} problem{} found",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    ));
    out
}

impl SpecError {
    /// The located problems, if this is a content error.
    pub fn problems(&self) -> &[Problem] {
        match self {
            SpecError::Invalid(p) => p,
            SpecError::Io { .. } => &[],
        }
    }
}
