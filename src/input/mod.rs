//! What comes from outside: files a user may be handed — spec, world, repro, journal, run
//! report — bounded before any parser sees them (here), and text from targets, clients and
//! files made safe to show ([`text`]).
//!
//! Each kind of file has a size it never needs to exceed ([`Kind::max_bytes`]) and a nesting
//! depth no such file comes near ([`MAX_DEPTH`]). [`read`] refuses a larger file without reading
//! past the bound (a FIFO or `/dev/zero` included); [`check`] refuses deeper nesting with a
//! linear pre-scan ([`nesting`]), because the YAML parser takes time quadratic in the depth
//! (100,000 levels in 200 KB took 40 s) before its own recursion limit is reached. Both errors
//! name the file, and the depth error the line and column where the bound is crossed.

pub mod text;

use std::io::Read as _;
use std::path::{Path, PathBuf};

/// The deepest nesting of collections a file may have, as [`nesting`] counts it. The shipped
/// specs nest 6 deep, a run report about 11 (`apis` → a failure → its case → a parameter's
/// list), a world 5 (`instances` → an instance → `tags`), a journal line 3: 32 leaves room and
/// stays far from where parsing slows.
pub const MAX_DEPTH: usize = 32;

/// The kinds of file a user may be handed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A spec file (`specs/…/*.yaml`).
    Spec,
    /// A world file (`--world`).
    World,
    /// A repro file (`replay FILE`).
    Repro,
    /// A journal (`restore FILE`).
    Journal,
    /// A run report (`report merge FILE...`).
    Report,
    /// A captured request (`repro import FILE`): a curl line, a raw request, a HAR file.
    Capture,
}

impl Kind {
    /// The largest file of this kind read.
    pub fn max_bytes(self) -> u64 {
        match self {
            // The largest shipped spec is under 40 KB.
            Kind::Spec => 4 << 20,
            // A world of 100,000 instances is about 20 MB of YAML.
            Kind::World => 64 << 20,
            // A failure's request and response (the response at most 8 MiB as read).
            Kind::Repro => 64 << 20,
            // One line of about 200 bytes per instance a run touched.
            Kind::Journal => 64 << 20,
            // Counts, rule tallies and one failure per broken rule of every API.
            Kind::Report => 256 << 20,
            // A HAR file of a browser session's calls.
            Kind::Capture => 64 << 20,
        }
    }

    /// The kind, in words.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Spec => "spec file",
            Kind::World => "world file",
            Kind::Repro => "repro file",
            Kind::Journal => "journal",
            Kind::Report => "run report",
            Kind::Capture => "capture",
        }
    }
}

/// Why a file was not handed to its parser.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The file is larger than any file of its kind needs to be.
    #[error("{}: more than {} bytes, the most a {} is read at\n  = help: {}", path.display(), kind.max_bytes(), kind.name(), help(*kind))]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// What it should be.
        kind: Kind,
    },
    /// Collections nested deeper than [`MAX_DEPTH`].
    #[error("{}:{line}:{column}: nested more than {MAX_DEPTH} levels deep, deeper than any {} needs: not parsed\n  = help: {}", path.display(), kind.name(), help(*kind))]
    TooDeep {
        /// The file.
        path: PathBuf,
        /// What it should be.
        kind: Kind,
        /// 1-based line where the bound is crossed.
        line: usize,
        /// 1-based column.
        column: usize,
    },
}

impl InputError {
    /// The file.
    pub fn path(&self) -> &Path {
        match self {
            InputError::Io { path, .. }
            | InputError::TooLarge { path, .. }
            | InputError::TooDeep { path, .. } => path,
        }
    }

    /// Where in the file the problem is, `(line, column)`, 1-based; `(0, 0)` for the whole file.
    pub fn location(&self) -> (usize, usize) {
        match self {
            InputError::TooDeep { line, column, .. } => (*line, *column),
            _ => (0, 0),
        }
    }

    /// The problem in one sentence, without the file's name (for errors that name it apart).
    pub fn reason(&self) -> String {
        match self {
            InputError::Io { source, .. } => source.to_string(),
            InputError::TooLarge { kind, .. } => format!(
                "more than {} bytes, the most a {} is read at",
                kind.max_bytes(),
                kind.name()
            ),
            InputError::TooDeep { kind, .. } => format!(
                "nested more than {MAX_DEPTH} levels deep, deeper than any {} needs: not parsed",
                kind.name()
            ),
        }
    }
}

fn help(kind: Kind) -> &'static str {
    match kind {
        Kind::Spec => "a spec file describes one API (see specs/ for the shipped ones); this one is not such a file",
        Kind::World => "a world file lists instances and key pairs (docs/world.md); this one is not such a file",
        Kind::Repro => "pass a file written by `apiconform run --repro-dir DIR`",
        Kind::Journal => "pass a journal written by `apiconform run --journal FILE`",
        Kind::Capture => "pass a curl command line, a raw HTTP request or a HAR file (at most 64 MiB)",
        Kind::Report => "pass the JSON reports written by `apiconform run --report-json FILE`",
    }
}

/// Reads a file of `kind` as UTF-8, refusing it unread past [`Kind::max_bytes`] and checking
/// its nesting ([`check`]).
pub fn read(path: &Path, kind: Kind) -> Result<String, InputError> {
    let io = |source| InputError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let max = kind.max_bytes();
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > max {
        return Err(InputError::TooLarge {
            path: path.to_path_buf(),
            kind,
        });
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not UTF-8 text (at byte {})", e.utf8_error().valid_up_to()),
        ))
    })?;
    check(path, &text, kind)?;
    Ok(text)
}

/// Checks text of `kind` (`path` names it in errors): no larger than the kind's bound, nested no
/// deeper than [`MAX_DEPTH`].
pub fn check(path: &Path, text: &str, kind: Kind) -> Result<(), InputError> {
    if text.len() as u64 > kind.max_bytes() {
        return Err(InputError::TooLarge {
            path: path.to_path_buf(),
            kind,
        });
    }
    match nesting(text, MAX_DEPTH) {
        Ok(_) => Ok(()),
        Err((line, column)) => Err(InputError::TooDeep {
            path: path.to_path_buf(),
            kind,
            line,
            column,
        }),
    }
}

/// The depth of nesting of YAML (hence JSON) text, in one pass over its bytes: block
/// collections by indentation and `- `/`? ` indicators, flow collections by their brackets
/// (outside quoted scalars, plain scalars, block scalars and comments). An estimate within a
/// level or two of what the parser builds, never below the flow nesting a parser would see.
/// `Err((line, column))` where it first exceeds `max`.
pub fn nesting(text: &str, max: usize) -> Result<usize, (usize, usize)> {
    let mut scan = Scan {
        max,
        deepest: 0,
        flow: 0,
        block: Vec::new(),
        quote: None,
        block_scalar: None,
    };
    for (n, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        scan.line(line.as_bytes())
            .map_err(|column| (n + 1, column + 1))?;
    }
    Ok(scan.deepest)
}

/// The scanner's state between lines.
struct Scan {
    max: usize,
    deepest: usize,
    /// Open flow collections (`[`, `{`).
    flow: usize,
    /// Indentation columns of the open block nodes.
    block: Vec<usize>,
    /// Inside a quoted scalar that runs on over lines: its quote.
    quote: Option<u8>,
    /// Inside a block scalar (`|`, `>`): the indentation of the line that opened it.
    block_scalar: Option<usize>,
}

impl Scan {
    fn depth(&self) -> usize {
        self.block.len() + self.flow
    }

    /// Notes the depth at column `at`; `Err(at)` past the bound.
    fn reached(&mut self, at: usize) -> Result<(), usize> {
        let d = self.depth();
        self.deepest = self.deepest.max(d);
        match d > self.max {
            true => Err(at),
            false => Ok(()),
        }
    }

    fn line(&mut self, s: &[u8]) -> Result<(), usize> {
        let indent = s.iter().take_while(|&&b| b == b' ').count();
        let blank = s[indent..].iter().all(|b| b.is_ascii_whitespace());
        if let Some(opened) = self.block_scalar {
            if blank || indent > opened {
                return Ok(());
            }
            self.block_scalar = None;
        }
        let mut i = 0;
        if let Some(q) = self.quote {
            match end_of_quoted(s, 0, q) {
                Some(end) => {
                    self.quote = None;
                    i = end;
                }
                None => return Ok(()),
            }
        } else if self.flow == 0 {
            if blank || s[indent] == b'#' {
                return Ok(());
            }
            if s.starts_with(b"---") || s.starts_with(b"...") {
                self.block.clear();
                i = 3;
            } else {
                while self.block.last().is_some_and(|&top| top >= indent) {
                    self.block.pop();
                }
                self.block.push(indent);
                self.reached(indent)?;
                i = indent;
                // `- - - x` and `? x`: each indicator opens a node one level deeper.
                while i < s.len() && matches!(s[i], b'-' | b'?') && separated(s, i + 1) {
                    i += 1;
                    while i < s.len() && s[i] == b' ' {
                        i += 1;
                    }
                    self.block.push(i);
                    self.reached(i)?;
                }
            }
        }
        self.tokens(s, i, indent)
    }

    /// The rest of a line from `i`: where a node may start, a bracket opens a flow collection.
    fn tokens(&mut self, s: &[u8], mut i: usize, indent: usize) -> Result<(), usize> {
        let mut node_start = true;
        while i < s.len() {
            let b = s[i];
            match b {
                b' ' | b'\t' => {
                    i += 1;
                    continue;
                }
                b'#' if i == 0 || matches!(s[i - 1], b' ' | b'\t') => return Ok(()),
                _ => {}
            }
            if self.flow > 0 && matches!(b, b']' | b'}') {
                self.flow -= 1;
                node_start = false;
                i += 1;
                continue;
            }
            if self.flow > 0 && b == b',' {
                node_start = true;
                i += 1;
                continue;
            }
            if b == b':' && separated_or_flow(s, i + 1, self.flow > 0) {
                node_start = true;
                i += 1;
                continue;
            }
            if self.flow > 0 && matches!(b, b'[' | b'{') {
                // Where no node may start, YAML refuses a bracket; counted all the same.
                node_start = true;
            }
            if !node_start {
                // A plain scalar's end, one byte on at least.
                i = self.plain(s, i).max(i + 1);
                continue;
            }
            match b {
                b'[' | b'{' => {
                    self.flow += 1;
                    self.reached(i)?;
                    i += 1;
                }
                b'"' | b'\'' => {
                    node_start = false;
                    match end_of_quoted(s, i + 1, b) {
                        Some(end) => i = end,
                        None => {
                            self.quote = Some(b);
                            return Ok(());
                        }
                    }
                }
                b'|' | b'>' if self.flow == 0 => {
                    self.block_scalar = Some(indent);
                    return Ok(());
                }
                b'&' | b'!' | b'*' => {
                    node_start = b != b'*';
                    while i < s.len()
                        && !matches!(s[i], b' ' | b'\t' | b',' | b'[' | b']' | b'{' | b'}')
                    {
                        i += 1;
                    }
                }
                _ => {
                    node_start = false;
                    i = self.plain(s, i).max(i + 1);
                }
            }
        }
        Ok(())
    }

    /// The end of a plain scalar starting at `i`: a `: ` or ` #` ends it, and in a flow
    /// collection a `,`, `]` or `}`; brackets inside it are its text.
    fn plain(&self, s: &[u8], mut i: usize) -> usize {
        let flow = self.flow > 0;
        while i < s.len() {
            match s[i] {
                b':' if separated_or_flow(s, i + 1, flow) => return i,
                b'#' if matches!(s[i - 1], b' ' | b'\t') => return i,
                b',' | b']' | b'}' | b'[' | b'{' if flow => return i,
                _ => i += 1,
            }
        }
        i
    }
}

/// Whether the byte at `i` ends a token: a space, a tab, or the end of the line.
fn separated(s: &[u8], i: usize) -> bool {
    i >= s.len() || matches!(s[i], b' ' | b'\t')
}

/// As [`separated`], and in a flow collection also a flow indicator (`{"a":[1]}`).
fn separated_or_flow(s: &[u8], i: usize, flow: bool) -> bool {
    separated(s, i) || (flow && matches!(s[i], b',' | b'[' | b']' | b'{' | b'}' | b'"'))
}

/// Past the closing `quote` of a quoted scalar whose text starts at `i`; `None` when it runs on
/// past this line. `\` escapes in double quotes, `''` in single ones.
fn end_of_quoted(s: &[u8], mut i: usize, quote: u8) -> Option<usize> {
    while i < s.len() {
        match s[i] {
            b'\\' if quote == b'"' => i += 2,
            b'\'' if quote == b'\'' && s.get(i + 1) == Some(&b'\'') => i += 2,
            b if b == quote => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth(text: &str) -> usize {
        nesting(text, usize::MAX).unwrap()
    }

    #[test]
    fn deep_flow_block_and_compact_nesting_is_refused_where_it_crosses_the_bound() {
        let flow = "[".repeat(100_000);
        // The line is a node, and each bracket one more.
        assert_eq!(nesting(&flow, MAX_DEPTH), Err((1, MAX_DEPTH)));
        let json = format!("{{\"a\": {}", "{\"b\": ".repeat(100_000));
        assert!(nesting(&json, MAX_DEPTH).is_err());
        let dashes = format!("x:\n{}y\n", "- ".repeat(100_000));
        assert_eq!(nesting(&dashes, MAX_DEPTH).unwrap_err().0, 2);
        let mut block = String::new();
        for n in 0..100 {
            block.push_str(&format!("{}k{n}:\n", " ".repeat(n)));
        }
        let (line, column) = nesting(&block, MAX_DEPTH).unwrap_err();
        assert_eq!((line, column), (MAX_DEPTH + 1, MAX_DEPTH + 1));
        // Spread over lines, inside a flow collection.
        let lines = "[\n".repeat(1000);
        assert_eq!(nesting(&lines, MAX_DEPTH).unwrap_err().0, MAX_DEPTH);
    }

    #[test]
    fn brackets_in_scalars_and_comments_are_text() {
        let yaml = "\
description: values in [0, 100) or {a
pattern: ^[a-z]{3}$ # [[[[
quoted: \"[[[[\\\"[[[\"
single: 'it''s [[['
multi: \"[[[
  [[[[\"
block: |
  [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[
  {{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{
after: 1
list: [a, [b, c], {d: [e]}, \"]]]\"]
";
        assert_eq!(depth(yaml), 4, "list → [b, c] … {{d: [e]}}");
    }

    #[test]
    fn ordinary_yaml_and_json_nest_as_their_structure() {
        let world = "\
instances:
  - id: ins-1
    product: cvm
    tags:
      env: ci
key_pairs: []
";
        assert_eq!(depth(world), 4);
        let json = r#"{"instances": [{"id": "ins-1", "tags": {"env": "ci"}}], "key_pairs": []}"#;
        assert_eq!(depth(json), 5, "the line, and four brackets");
        assert_eq!(depth(""), 0);
        assert_eq!(depth("---\na: 1\n...\n"), 1);
    }

    #[test]
    fn the_shipped_specs_the_default_world_and_a_report_are_well_within_the_bound() {
        for (path, text) in crate::spec::EMBEDDED {
            let d = depth(text);
            assert!(d <= 16, "{path}: {d}");
        }
        let world = serde_yaml_ng::to_string(&crate::world::World::default_world()).unwrap();
        assert!(depth(&world) <= 6, "{}", depth(&world));
        let json = serde_json::to_string_pretty(&crate::world::World::default_world()).unwrap();
        assert!(depth(&json) <= 6, "{}", depth(&json));
    }

    #[test]
    fn a_file_too_large_is_refused_unread_past_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spec.yaml");
        std::fs::write(&path, vec![b'#'; (Kind::Spec.max_bytes() + 1) as usize]).unwrap();
        let err = read(&path, Kind::Spec).unwrap_err();
        assert!(matches!(err, InputError::TooLarge { .. }), "{err}");
        assert!(err.to_string().contains("spec.yaml"), "{err}");
        let zero = read(Path::new("/dev/zero"), Kind::Spec).unwrap_err();
        assert!(matches!(zero, InputError::TooLarge { .. }), "{zero}");
    }
}
