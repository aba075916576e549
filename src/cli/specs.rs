//! `apiconform specs`: list, lint, show the spec files, and print their schema.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::exit;
use crate::emulator::Variant;
use crate::spec::{self, SpecSet};

/// `println!` that stops quietly on a closed standard output instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        // Spec files may be handed to a user: what they say is shown escaped.
        let text = format!($($arg)*);
        let _ = writeln!(
            std::io::stdout().lock(),
            "{}",
            $crate::report::console::escape_text(&text)
        );
    }};
}

/// `print!` likewise.
macro_rules! out_raw {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let text = format!($($arg)*);
        let _ = write!(
            std::io::stdout().lock(),
            "{}",
            $crate::report::console::escape_text(&text)
        );
    }};
}

fn fail(code: u8, message: impl std::fmt::Display) -> u8 {
    super::tell(message);
    code
}

#[derive(Subcommand)]
pub(super) enum SpecsCommand {
    /// A table of the specs: API, family, version, rules, error codes, source document.
    List(SpecsDir),
    /// Check spec files; exit 0 when valid, 2 otherwise, each problem with file:line:column.
    Lint {
        /// Files or folders to check (default: the built-in specs).
        paths: Vec<PathBuf>,
    },
    /// The rules of one API in document order, with their sources.
    Show {
        /// API name (`tencent-cvm/AssociateInstancesKeyPairs`) or unambiguous action.
        name: String,
        #[command(flatten)]
        dir: SpecsDir,
    },
    /// Print the JSON schema of spec files (what specs/schema.json holds).
    Schema,
}

#[derive(Args)]
pub(super) struct SpecsDir {
    /// Read specs from this folder instead of the built-in ones.
    #[arg(long)]
    specs: Option<PathBuf>,
}

impl SpecsDir {
    fn load(&self) -> Result<SpecSet, spec::SpecError> {
        match &self.specs {
            Some(dir) => spec::load_dir(dir),
            None => spec::load_embedded(),
        }
    }
}

pub(super) fn specs(cmd: SpecsCommand) -> u8 {
    match cmd {
        SpecsCommand::List(dir) => match dir.load() {
            Ok(set) => {
                out!(
                    "{:<48} {:<13} {:<11} {:>5} {:>6}  SOURCE",
                    "API", "FAMILY", "VERSION", "RULES", "CODES"
                );
                for api in &set.apis {
                    let s = &api.spec;
                    // The seed, or where no seed describes the API, the document its
                    // description cites (ECS AttachKeyPair: the vendor's definitions).
                    let seed = s
                        .documents
                        .iter()
                        .find(|d| d.kind == spec::DocumentKind::Seed)
                        .or_else(|| s.documents.iter().find(|d| d.id == s.api.source.doc))
                        .map_or("-", |d| d.location());
                    out!(
                        "{:<48} {:<13} {:<11} {:>5} {:>6}  {}",
                        api.name,
                        s.api.family.as_str(),
                        s.api.version.as_deref().unwrap_or("-"),
                        s.rules.len(),
                        s.error_codes.len(),
                        seed
                    );
                }
                exit::OK
            }
            Err(e) => fail(exit::USAGE, e),
        },
        SpecsCommand::Lint { paths } => {
            let result = if paths.is_empty() {
                spec::load_embedded().map(|s| vec![s])
            } else {
                lint_paths(&paths)
            };
            match result {
                Ok(sets) => {
                    let unknown: Vec<String> = sets.iter().flat_map(unknown_variants).collect();
                    if !unknown.is_empty() {
                        return fail(exit::USAGE, unknown.join("\n"));
                    }
                    let n: usize = sets.iter().map(|s| s.apis.len() + s.families.len()).sum();
                    out!("{n} spec files, no problems");
                    exit::OK
                }
                Err(e) => fail(exit::USAGE, e),
            }
        }
        SpecsCommand::Show { name, dir } => match dir.load() {
            Ok(set) => match set.find(&name) {
                Some(api) => {
                    out_raw!("{}", render_show(&set, api));
                    exit::OK
                }
                None => fail(
                    exit::USAGE,
                    format!(
                        "error: no spec named `{name}`\n  = help: `apiconform specs list` shows the names: {}",
                        set.apis.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                ),
            },
            Err(e) => fail(exit::USAGE, e),
        },
        SpecsCommand::Schema => {
            out_raw!("{}", spec::schema_json());
            exit::OK
        }
    }
}

/// Variant names the specs give that the emulator does not know, one message each (the loader
/// checks that every reading of ours names one; only here is the emulator's catalogue known).
pub(super) fn unknown_variants(set: &spec::SpecSet) -> Vec<String> {
    let mut named: Vec<(&std::path::Path, String, &str)> = Vec::new();
    for api in &set.apis {
        for r in &api.spec.rules {
            let errs = r.errors.iter().flat_map(|e| &e.variants);
            for v in r.variants.iter().chain(errs) {
                named.push((&api.path, format!("rule `{}`", r.id), v));
            }
        }
        for u in &api.spec.unspecified {
            for v in &u.variants {
                named.push((&api.path, format!("unspecified entry `{}`", u.id), v));
            }
        }
    }
    for (path, fam) in set.families.values() {
        for r in &fam.rules {
            let errs = r.errors.iter().flat_map(|e| &e.variants);
            for v in r.variants.iter().chain(errs) {
                named.push((path, format!("rule `{}`", r.id), v));
            }
        }
    }
    let known: Vec<&str> = Variant::ALL.iter().map(|v| v.name()).collect();
    named
        .into_iter()
        .filter(|(_, _, v)| !known.contains(v))
        .map(|(path, what, v)| {
            format!(
                "error: {what} names variant `{v}`, which the emulator does not have\n  --> {}\n  = help: use one of: {}",
                path.display(),
                known.join(", ")
            )
        })
        .collect()
}

fn lint_paths(paths: &[PathBuf]) -> Result<Vec<SpecSet>, spec::SpecError> {
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    for p in paths {
        if p.is_dir() {
            dirs.push(p.clone());
        } else {
            files.push(spec::read_source(p)?);
        }
    }
    let mut sets = Vec::new();
    for d in dirs {
        sets.push(spec::load_dir(&d)?);
    }
    if !files.is_empty() {
        // Single files are checked with the built-in family specs beside them.
        for (p, t) in spec::EMBEDDED {
            if p.starts_with("families/")
                && !files.iter().any(|f| {
                    f.path.file_name() == std::path::Path::new(p).file_name()
                        && f.path.parent().and_then(|d| d.file_name()) == Some("families".as_ref())
                })
            {
                files.push(spec::SourceFile {
                    path: PathBuf::from("specs").join(p),
                    text: (*t).to_string(),
                });
            }
        }
        sets.push(spec::load_files(&files)?);
    }
    Ok(sets)
}

fn render_show(set: &SpecSet, api: &spec::LoadedApi) -> String {
    use std::fmt::Write;
    let s = &api.spec;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} — {} {} ({})\n",
        api.name,
        s.api.action,
        s.api.version.as_deref().unwrap_or(""),
        s.api.family.as_str()
    );
    let docs: Vec<_> = s
        .documents
        .iter()
        .chain(set.family(s.api.family).documents.iter())
        .collect();
    let cite = |src: &spec::Source| {
        let file = docs
            .iter()
            .find(|d| d.id == src.doc)
            .map_or(src.doc.as_str(), |d| d.location());
        format!("{file} § {}", src.section)
    };
    let _ = writeln!(out, "Rules ({}):", s.rules.len());
    for r in &s.rules {
        let codes: Vec<_> = r.errors.iter().map(|e| e.code.as_str()).collect();
        let _ = writeln!(out, "  {:<28} {}", r.id, r.description);
        let _ = writeln!(out, "  {:<28} check: {}", "", r.check.kind_name());
        if !codes.is_empty() {
            let _ = writeln!(out, "  {:<28} codes: {}", "", codes.join(", "));
        }
        let _ = writeln!(out, "  {:<28} source: {}", "", cite(&r.source));
    }
    let fam = set.family(s.api.family);
    let _ = writeln!(out, "\nFamily rules ({}):", fam.rules.len());
    for r in &fam.rules {
        let _ = writeln!(out, "  {:<28} {}", r.id, r.description);
    }
    if !s.errata.is_empty() {
        let _ = writeln!(out, "\nErrata:");
        for e in &s.errata {
            let _ = writeln!(out, "  {:<28} {}", e.id, e.description);
        }
    }
    if !s.unspecified.is_empty() {
        let _ = writeln!(out, "\nUnspecified:");
        for u in &s.unspecified {
            let _ = writeln!(out, "  {:<28} {}", u.id, u.description);
        }
    }
    out
}
