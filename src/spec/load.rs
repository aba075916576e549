//! Reading spec files and checking them against each other.
//!
//! Parsing is serde's job (typed errors with line and column, `deny_unknown_fields`); the checks
//! here are the ones a type cannot express: unique ids, codes that appear in the tables, sources
//! that name declared documents, references to parameters and resources that exist. Each problem
//! is located by finding the offending text in the file, so the message can point at it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::error::{Problem, SpecError};
use super::model::*;

/// A spec file's text and where it came from.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Path shown in messages.
    pub path: PathBuf,
    /// The text.
    pub text: String,
}

/// One API spec with its name and file.
#[derive(Debug, Clone)]
pub struct LoadedApi {
    /// `tencent-cvm/AssociateInstancesKeyPairs`: the path below `specs/` without extension.
    pub name: String,
    /// The file it was read from.
    pub path: PathBuf,
    /// The spec.
    pub spec: ApiSpec,
}

impl LoadedApi {
    /// The product the API belongs to: its folder under `specs/` (`tencent-cvm`), which is how
    /// `--endpoint` and `serve --only` name it.
    pub fn product_dir(&self) -> &str {
        match self.name.rsplit_once('/') {
            Some((dir, _)) => dir,
            None => "",
        }
    }
}

/// Every family and API spec, checked.
#[derive(Debug, Clone)]
pub struct SpecSet {
    /// Family specs by family.
    pub families: BTreeMap<&'static str, (PathBuf, FamilySpec)>,
    /// API specs, sorted by name.
    pub apis: Vec<LoadedApi>,
}

impl SpecSet {
    /// The family spec an API belongs to.
    pub fn family(&self, id: FamilyId) -> &FamilySpec {
        // Checked by `check_set`: every API's family has a spec.
        &self.families[id.as_str()].1
    }

    /// The API whose name is `name`, or whose action is `name` if that is unambiguous.
    pub fn find(&self, name: &str) -> Option<&LoadedApi> {
        if let Some(api) = self.apis.iter().find(|a| a.name == name) {
            return Some(api);
        }
        let mut by_action = self
            .apis
            .iter()
            .filter(|a| a.spec.api.action.eq_ignore_ascii_case(name) || a.name.ends_with(name));
        match (by_action.next(), by_action.next()) {
            (Some(api), None) => Some(api),
            _ => None,
        }
    }
}

/// The specs compiled into the binary, so `apiconform run` works from any folder: every spec
/// file under `specs/` (families first), listed by `build.rs` at build time.
pub const EMBEDDED: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/embedded_specs.rs"));

/// The specs compiled into the binary, read once per process and shared: what the emulator
/// serves by default and where the families' facts (their throttling codes) are read from when
/// no spec set is at hand. Empty (no API, no family) only if they failed to load, which the
/// test suite rules out.
pub fn builtin() -> std::sync::Arc<SpecSet> {
    static SPECS: std::sync::OnceLock<std::sync::Arc<SpecSet>> = std::sync::OnceLock::new();
    SPECS
        .get_or_init(|| {
            std::sync::Arc::new(load_embedded().unwrap_or_else(|_| SpecSet {
                families: BTreeMap::new(),
                apis: Vec::new(),
            }))
        })
        .clone()
}

/// Loads the specs compiled into the binary.
pub fn load_embedded() -> Result<SpecSet, SpecError> {
    let files = EMBEDDED
        .iter()
        .map(|(p, t)| SourceFile {
            path: Path::new("specs").join(p),
            text: (*t).to_string(),
        })
        .collect::<Vec<_>>();
    load_files(&files)
}

/// Loads every `*.yaml`, `*.yml` and `*.json` below `dir` (except `schema.json`).
pub fn load_dir(dir: &Path) -> Result<SpecSet, SpecError> {
    let mut paths = Vec::new();
    collect(dir, &mut paths)?;
    paths.sort();
    let mut files = Vec::new();
    for path in paths {
        files.push(read_source(&path)?);
    }
    load_files(&files)
}

/// Reads one spec file; a file larger or nested deeper than a spec needs is refused unparsed
/// ([`crate::input`]).
pub fn read_source(path: &Path) -> Result<SourceFile, SpecError> {
    match crate::input::read(path, crate::input::Kind::Spec) {
        Ok(text) => Ok(SourceFile {
            path: path.to_path_buf(),
            text,
        }),
        Err(crate::input::InputError::Io { path, source }) => Err(SpecError::Io { path, source }),
        Err(e) => Err(SpecError::Invalid(vec![bounds_problem(&e, "")])),
    }
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), SpecError> {
    let entries = std::fs::read_dir(dir).map_err(|source| SpecError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| SpecError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if is_spec_file(&path) {
            out.push(path);
        }
    }
    Ok(())
}

fn is_spec_file(path: &Path) -> bool {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    matches!(ext, "yaml" | "yml" | "json") && name != "schema.json"
}

/// Whether a file is a family spec: it lives in a `families` folder.
fn is_family_file(path: &Path) -> bool {
    path.parent()
        .and_then(|p| p.file_name())
        .is_some_and(|n| n == "families")
}

/// Parses and checks a set of files, reporting every problem found, not just the first.
pub fn load_files(files: &[SourceFile]) -> Result<SpecSet, SpecError> {
    let mut problems = Vec::new();
    let mut families = BTreeMap::new();
    let mut apis = Vec::new();
    for file in files {
        if is_family_file(&file.path) {
            match parse::<FamilySpec>(file) {
                Ok(fam) => {
                    check_family(file, &fam, &mut problems);
                    let key = fam.family.as_str();
                    if families.contains_key(key) {
                        problems.push(at_file(
                            file,
                            format!("a second spec for family `{key}`"),
                            "keep one file per family under specs/families/",
                        ));
                    } else {
                        families.insert(key, (file.path.clone(), fam));
                    }
                }
                Err(p) => problems.push(p),
            }
        } else {
            match parse::<ApiSpec>(file) {
                Ok(spec) => apis.push(LoadedApi {
                    name: api_name(&file.path),
                    path: file.path.clone(),
                    spec,
                }),
                Err(p) => problems.push(p),
            }
        }
    }
    for api in &apis {
        let file = files.iter().find(|f| f.path == api.path).expect("loaded");
        let family = families.get(api.spec.api.family.as_str()).map(|(_, f)| f);
        if family.is_none() {
            problems.push(locate(
                file,
                "family",
                Some(api.spec.api.family.as_str()),
                0,
                format!(
                    "no family spec for `{}` was loaded",
                    api.spec.api.family.as_str()
                ),
                format!(
                    "add specs/families/{}.yaml or load the folder that holds it",
                    api.spec.api.family.as_str()
                ),
            ));
        }
        check_api(file, &api.spec, family, &mut problems);
    }
    let mut names = BTreeSet::new();
    for api in &apis {
        if !names.insert(api.name.clone()) {
            let file = files.iter().find(|f| f.path == api.path).expect("loaded");
            problems.push(at_file(
                file,
                format!("two specs are named `{}`", api.name),
                "keep one file per API (YAML or JSON, not both)",
            ));
        }
    }
    apis.sort_by(|a, b| a.name.cmp(&b.name));
    if problems.is_empty() {
        Ok(SpecSet { families, apis })
    } else {
        Err(SpecError::Invalid(problems))
    }
}

/// `specs/tencent-cvm/Associate.yaml` → `tencent-cvm/Associate`.
fn api_name(path: &Path) -> String {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("?");
    match path
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
    {
        Some(dir) => format!("{dir}/{stem}"),
        None => stem.to_string(),
    }
}

/// A spec file refused before parsing ([`crate::input`]): too large or nested too deep.
fn bounds_problem(e: &crate::input::InputError, text: &str) -> Problem {
    let (line, column) = e.location();
    Problem {
        path: e.path().to_path_buf(),
        line,
        column: column.max(1),
        width: 1,
        message: e.reason(),
        help: "a spec describes one API a few levels deep (see specs/ for the shipped ones); this file is not such a spec".into(),
        snippet: line_text(text, line).map(|l| l.chars().take(120).collect()),
    }
}

fn parse<T: serde::de::DeserializeOwned>(file: &SourceFile) -> Result<T, Problem> {
    if let Err(e) = crate::input::check(&file.path, &file.text, crate::input::Kind::Spec) {
        return Err(bounds_problem(&e, &file.text));
    }
    let is_json = file.path.extension().is_some_and(|e| e == "json");
    let (line, column, message) = if is_json {
        match serde_json::from_str::<T>(&file.text) {
            Ok(v) => return Ok(v),
            Err(e) => (e.line(), e.column(), strip_position(&e.to_string())),
        }
    } else {
        match serde_yaml_ng::from_str::<T>(&file.text) {
            Ok(v) => return Ok(v),
            Err(e) => {
                let (l, c) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
                (l, c, strip_position(&e.to_string()))
            }
        }
    };
    let help = help_for_serde(&message);
    let snippet = line_text(&file.text, line);
    Err(Problem {
        path: file.path.clone(),
        line,
        column: column.max(1),
        width: snippet
            .as_deref()
            .map_or(1, |s| word_width(s, column.max(1))),
        message,
        help,
        snippet,
    })
}

/// serde appends " at line L column C"; the location is shown separately.
fn strip_position(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

fn help_for_serde(message: &str) -> String {
    if message.contains("unknown field") {
        if let Some(i) = message.find("expected one of") {
            return format!(
                "remove or rename the field; {}",
                &message[i..].replace("expected", "the fields allowed here are")
            );
        }
        return "remove or rename the field (see specs/schema.json for the fields allowed here)"
            .into();
    }
    if message.contains("missing field `source`") {
        return "every rule, parameter and code needs `source: {doc: <document id>, section: <heading>}` so a reviewer can find it in the document".into();
    }
    if message.contains("missing field") {
        return "add the field (see specs/schema.json and specs/README.md)".into();
    }
    if message.contains("unknown variant") {
        return "use one of the values listed above".into();
    }
    if message.contains("invalid type") {
        return "change the value to the expected type".into();
    }
    "fix the syntax at the marked position (specs/README.md has a worked example)".into()
}

fn line_text(text: &str, line: usize) -> Option<String> {
    if line == 0 {
        return None;
    }
    text.lines().nth(line - 1).map(str::to_string)
}

fn word_width(line: &str, column: usize) -> usize {
    let rest: String = line.chars().skip(column - 1).collect();
    let w = rest
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != ',' && *c != '}')
        .count();
    w.max(1)
}

fn at_file(file: &SourceFile, message: String, help: &str) -> Problem {
    Problem {
        path: file.path.clone(),
        line: 0,
        column: 0,
        width: 0,
        message,
        help: help.to_string(),
        snippet: None,
    }
}

/// Finds the `occurrence`-th (0-based) line where `key` is followed by `value` (YAML `key: value`
/// or JSON `"key": "value"`), so a semantic problem can be shown where it is written.
fn locate(
    file: &SourceFile,
    key: &str,
    value: Option<&str>,
    occurrence: usize,
    message: String,
    help: String,
) -> Problem {
    let mut seen = 0;
    for (i, line) in file.text.lines().enumerate() {
        let Some(col) = key_position(line, key) else {
            continue;
        };
        let target = match value {
            None => Some(col),
            Some(v) => line[col..].find(v).map(|p| col + p).filter(|&p| {
                // The value must be the whole token, not a prefix of a longer one.
                let end = p + v.len();
                line[end..]
                    .chars()
                    .next()
                    .is_none_or(|c| !(c.is_alphanumeric() || c == '.' || c == '-' || c == '_'))
            }),
        };
        if let Some(p) = target {
            if seen == occurrence {
                let column = line[..p].chars().count() + 1;
                return Problem {
                    path: file.path.clone(),
                    line: i + 1,
                    column,
                    width: value.map_or(key.len(), |v| v.chars().count()),
                    message,
                    help,
                    snippet: Some(line.to_string()),
                };
            }
            seen += 1;
        }
    }
    Problem {
        path: file.path.clone(),
        line: 0,
        column: 0,
        width: 0,
        message,
        help,
        snippet: None,
    }
}

fn key_position(line: &str, key: &str) -> Option<usize> {
    for pat in [format!("{key}:"), format!("\"{key}\":")] {
        let mut from = 0;
        while let Some(p) = line[from..].find(&pat) {
            let at = from + p;
            let before = line[..at].chars().last();
            if before.is_none_or(|c| c == ' ' || c == '{' || c == '-' || c == ',') {
                return Some(at + pat.len());
            }
            from = at + pat.len();
        }
    }
    None
}

/// Counts how often `key: value` appeared before, so duplicate reports point at the duplicate.
struct Seen<'a> {
    counts: BTreeMap<(&'a str, String), usize>,
}

impl<'a> Seen<'a> {
    fn new() -> Self {
        Seen {
            counts: BTreeMap::new(),
        }
    }
    fn next(&mut self, key: &'a str, value: &str) -> usize {
        let n = self.counts.entry((key, value.to_string())).or_insert(0);
        let cur = *n;
        *n += 1;
        cur
    }
}

fn check_sources<'s>(
    file: &SourceFile,
    sources: impl Iterator<Item = &'s Source>,
    declared: &BTreeSet<&str>,
    problems: &mut Vec<Problem>,
) {
    let mut seen = Seen::new();
    for source in sources {
        let occ = seen.next("doc", &source.doc);
        if !declared.contains(source.doc.as_str()) {
            problems.push(locate(
                file,
                "doc",
                Some(&source.doc),
                occ,
                format!(
                    "source names document `{}`, which is not declared",
                    source.doc
                ),
                format!(
                    "declare it under `documents:` or use one of: {}",
                    declared.iter().copied().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        if source.section.trim().is_empty() {
            problems.push(locate(
                file,
                "doc",
                Some(&source.doc),
                occ,
                "source has an empty `section`".into(),
                "name the section heading of the document that states this".into(),
            ));
        }
    }
}

fn check_rule_ids(file: &SourceFile, rules: &[Rule], problems: &mut Vec<Problem>) {
    let mut seen = BTreeSet::new();
    let mut occ = Seen::new();
    for rule in rules {
        let n = occ.next("id", &rule.id);
        if !seen.insert(rule.id.as_str()) {
            problems.push(locate(
                file,
                "id",
                Some(&rule.id),
                n,
                format!("duplicate rule id `{}`", rule.id),
                "give each rule a unique id; reports and repro files name rules by id".into(),
            ));
        }
        if rule.id.is_empty()
            || !rule
                .id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            problems.push(locate(
                file,
                "id",
                Some(&rule.id),
                n,
                format!("rule id `{}` is not kebab-case", rule.id),
                "use lower-case letters, digits and `-` (for example `instance-ids-limit`)".into(),
            ));
        }
    }
}

/// Every reading of ours (a `judgement` or `open` rule, a judgement code) and every
/// `unspecified` entry names the emulator variants that take the other reading, so a run can show
/// the verdicts do not depend on the choice. Whether the names exist is checked where the
/// emulator is known (`apiconform specs lint`).
fn check_variants_named(
    file: &SourceFile,
    rules: &[Rule],
    unspecified: &[Unspecified],
    problems: &mut Vec<Problem>,
) {
    let help = "add `variants: [NAME]` naming the emulator variants that take the other reading (`apiconform serve --list-variants`)";
    for rule in rules {
        let ours = rule.judgement.is_some() || rule.open.is_some();
        if ours && rule.variants.is_empty() {
            problems.push(locate(
                file,
                "id",
                Some(&rule.id),
                0,
                format!(
                    "rule `{}` is our reading (`judgement` or `open`) but names no variant",
                    rule.id
                ),
                help.into(),
            ));
        }
        for err in rule.errors.iter().filter(|e| e.judgement.is_some()) {
            if err.variants.is_empty() {
                problems.push(locate(
                    file,
                    "id",
                    Some(&rule.id),
                    0,
                    format!(
                        "code `{}` of rule `{}` is our judgement but names no variant",
                        err.code, rule.id
                    ),
                    help.into(),
                ));
            }
        }
    }
    for u in unspecified.iter().filter(|u| u.variants.is_empty()) {
        problems.push(locate(
            file,
            "id",
            Some(&u.id),
            0,
            format!("unspecified entry `{}` names no variant", u.id),
            help.into(),
        ));
    }
}

/// Each wire form is one the harness can send, and a `wire_forms` rule names their failures.
fn check_wire(file: &SourceFile, spec: &ApiSpec, problems: &mut Vec<Problem>) {
    let mut occ = Seen::new();
    for w in &spec.wire {
        let n = occ.next("form", &w.form);
        let ok = match w.freedom {
            Freedom::IndexBase => w.form == "1",
            Freedom::BooleanSpelling => w.form == "upper",
            Freedom::JsonListSpacing => w.form == "spaced",
            Freedom::ActionSpelling => {
                w.form != spec.api.action && w.form.eq_ignore_ascii_case(&spec.api.action)
            }
        };
        if !ok {
            problems.push(locate(
                file,
                "form",
                Some(&w.form),
                n,
                format!("`{}` is not a form of {:?} the harness can send", w.form, w.freedom),
                "index_base takes `1`, boolean_spelling `upper`, json_list_spacing `spaced`, action_spelling another letter case of the action".into(),
            ));
        }
    }
    let rule = spec.rules.iter().any(|r| r.check == Check::WireForms);
    if !spec.wire.is_empty() && !rule {
        problems.push(locate(
            file,
            "wire",
            None,
            0,
            "`wire` lists forms but no rule checks them".into(),
            "add a rule with `check: {kind: wire_forms}` citing where the documents show them"
                .into(),
        ));
    }
}

/// A code's `means` names rules that exist and kinds that exist.
fn check_means(
    file: &SourceFile,
    entries: &[ErrorCodeEntry],
    rules: &[&str],
    problems: &mut Vec<Problem>,
) {
    let mut occ = Seen::new();
    for entry in entries {
        let Some(means) = &entry.means else { continue };
        for id in &means.rules {
            let n = occ.next("means", id);
            if !rules.contains(&id.as_str()) {
                problems.push(locate(
                    file,
                    "means",
                    Some(id),
                    n,
                    format!(
                        "error code `{}` means rule `{id}`, which this spec and its family do not define",
                        entry.code
                    ),
                    format!("name one of: {}", rules.join(", ")),
                ));
            }
        }
        for kind in &means.kinds {
            let n = occ.next("means", kind);
            if CheckKind::from_name(kind).is_none() {
                problems.push(locate(
                    file,
                    "means",
                    Some(kind),
                    n,
                    format!(
                        "error code `{}` means check kind `{kind}`, which does not exist",
                        entry.code
                    ),
                    format!(
                        "name one of: {}",
                        CheckKind::ALL.map(CheckKind::name).join(", ")
                    ),
                ));
            }
        }
        if means.rules.is_empty() && means.kinds.is_empty() {
            problems.push(locate(
                file,
                "code",
                Some(&entry.code),
                0,
                format!("error code `{}` has an empty `means`", entry.code),
                "list the rules its description asserts broken (`rules:`) or their kinds (`kinds:`), or drop `means`".into(),
            ));
        }
    }
}

fn check_family(file: &SourceFile, fam: &FamilySpec, problems: &mut Vec<Problem>) {
    let declared: BTreeSet<&str> = fam.documents.iter().map(|d| d.id.as_str()).collect();
    let sources = fam
        .common_parameters
        .iter()
        .map(|p| &p.source)
        .chain(fam.signatures.iter().map(|s| &s.source))
        .chain(
            fam.rules
                .iter()
                .flat_map(|r| std::iter::once(&r.source).chain(r.errors.iter().map(|e| &e.source))),
        )
        .chain(fam.error_codes.iter().map(|e| &e.source))
        .chain(fam.errata.iter().flat_map(|e| e.sources.iter()));
    check_sources(file, sources, &declared, problems);
    check_rule_ids(file, &fam.rules, problems);
    check_variants_named(file, &fam.rules, &[], problems);
    let own: Vec<&str> = fam.rules.iter().map(|r| r.id.as_str()).collect();
    check_means(file, &fam.error_codes, &own, problems);
    let table: BTreeSet<&str> = fam.error_codes.iter().map(|e| e.code.as_str()).collect();
    if let Some(code) = &fam.throttling_code {
        if !table.contains(code.as_str()) {
            problems.push(locate(
                file,
                "throttling_code",
                Some(code),
                0,
                format!("throttling_code `{code}` is not in the family's error_codes"),
                "add the code to `error_codes` with its source, or correct the spelling".into(),
            ));
        }
    }
    let mut occ = Seen::new();
    for rule in &fam.rules {
        for err in &rule.errors {
            let n = occ.next("code", &err.code);
            if !table.contains(err.code.as_str()) {
                problems.push(locate(
                    file,
                    "code",
                    Some(&err.code),
                    n,
                    format!(
                        "rule `{}` answers `{}`, which is not in the family's error_codes",
                        rule.id, err.code
                    ),
                    "add the code to `error_codes` with its source, or correct the spelling".into(),
                ));
            }
        }
        if rule.check.param().is_some() {
            problems.push(locate(
                file,
                "id",
                Some(&rule.id),
                0,
                format!(
                    "family rule `{}` checks a parameter (`{}`)",
                    rule.id,
                    rule.check.kind_name()
                ),
                "parameter rules belong in the API spec that lists the parameter".into(),
            ));
        }
    }
}

fn check_api(
    file: &SourceFile,
    spec: &ApiSpec,
    family: Option<&FamilySpec>,
    problems: &mut Vec<Problem>,
) {
    let mut declared: BTreeSet<&str> = spec.documents.iter().map(|d| d.id.as_str()).collect();
    if let Some(f) = family {
        declared.extend(f.documents.iter().map(|d| d.id.as_str()));
    }
    let sources = std::iter::once(&spec.api.source)
        .chain(spec.api.endpoints.iter().map(|e| &e.source))
        .chain(
            spec.api
                .endpoints
                .iter()
                .filter_map(|e| e.regional.as_ref().map(|r| &r.source)),
        )
        .chain(spec.api.rate_limits.iter().map(|r| &r.source))
        .chain(spec.parameters.iter().map(|p| &p.source))
        .chain(spec.resources.iter().map(|r| &r.source))
        .chain([&spec.batch.source, &spec.effect.source])
        .chain(spec.success_fields.iter().map(|f| &f.source))
        .chain(
            spec.rules
                .iter()
                .flat_map(|r| std::iter::once(&r.source).chain(r.errors.iter().map(|e| &e.source))),
        )
        .chain(match &spec.precedence {
            Precedence::Ordered { source, .. } => Some(source),
            Precedence::None => None,
        })
        .chain(spec.error_codes.iter().map(|e| &e.source))
        .chain(spec.examples.iter().map(|e| &e.source))
        .chain(spec.wire.iter().map(|w| &w.source))
        .chain(spec.errata.iter().flat_map(|e| e.sources.iter()))
        .chain(spec.unspecified.iter().flat_map(|u| u.sources.iter()));
    check_sources(file, sources, &declared, problems);
    for d in spec
        .documents
        .iter()
        .filter(|d| d.file.is_none() && d.url.is_none())
    {
        problems.push(locate(
            file,
            "id",
            Some(&d.id),
            0,
            format!("document `{}` names neither a file nor a url", d.id),
            "give `file:` (a path under the shared folder) or `url:` (the vendor's page)".into(),
        ));
    }
    check_rule_ids(file, &spec.rules, problems);
    let known: Vec<&str> = spec
        .rules
        .iter()
        .chain(family.iter().flat_map(|f| f.rules.iter()))
        .map(|r| r.id.as_str())
        .collect();
    check_means(file, &spec.error_codes, &known, problems);
    check_wire(file, spec, problems);
    if !spec.api.rate_limits.is_empty() && family.is_some_and(|f| f.throttling_code.is_none()) {
        problems.push(locate(
            file,
            "rate_limits",
            None,
            0,
            format!(
                "a rate limit is documented, but the {:?} family names no throttling_code to expect over it",
                spec.api.family
            ),
            "add `throttling_code:` (one of its error_codes) to the family's spec file, or drop the limit".into(),
        ));
    }

    // Parameters and resources that rules and sections refer to must exist.
    let params: BTreeMap<&str, &Parameter> = spec
        .parameters
        .iter()
        .map(|p| (p.name.as_str(), p))
        .collect();
    let resources: BTreeSet<&str> = spec.resources.iter().map(|r| r.name.as_str()).collect();
    let param_help = || {
        format!(
            "use a parameter listed under `parameters:` ({})",
            params.keys().copied().collect::<Vec<_>>().join(", ")
        )
    };
    let mut param_refs: Vec<(&str, &str)> = vec![
        ("param", spec.batch.param.as_str()),
        ("instances", spec.effect.instances.as_str()),
        ("keys", spec.effect.keys.as_str()),
    ];
    for rule in &spec.rules {
        if let Some(p) = rule.check.param() {
            param_refs.push(("param", p));
        }
        if let Check::InstanceState {
            unless: Some(u), ..
        } = &rule.check
        {
            param_refs.push(("unless", u.as_str()));
        }
    }
    let mut occ = Seen::new();
    for (key, name) in param_refs {
        let n = occ.next(key, name);
        if !params.contains_key(name) {
            problems.push(locate(
                file,
                key,
                Some(name),
                n,
                format!("`{name}` is not a parameter of this API"),
                param_help(),
            ));
        }
    }
    for p in &spec.parameters {
        if let Some(r) = &p.references {
            if !resources.contains(r.as_str()) {
                problems.push(locate(
                    file,
                    "references",
                    Some(r),
                    0,
                    format!("parameter `{}` references undefined resource `{r}`", p.name),
                    format!(
                        "define it under `resources:` or use one of: {}",
                        resources.iter().copied().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
        if let Some(pat) = &p.pattern {
            if let Err(e) = regex::Regex::new(pat) {
                problems.push(locate(
                    file,
                    "pattern",
                    None,
                    spec.parameters
                        .iter()
                        .take_while(|q| q.name != p.name)
                        .filter(|q| q.pattern.is_some())
                        .count(),
                    format!(
                        "pattern of `{}` is not a valid regular expression: {e}",
                        p.name
                    ),
                    "write the pattern in Rust regex syntax, anchored with ^ and $".into(),
                ));
            }
        }
    }
    for rule in &spec.rules {
        let needs = match &rule.check {
            Check::Pattern { param } => params.get(param.as_str()).map(|p| p.pattern.is_none()),
            Check::Exists { param } => params.get(param.as_str()).map(|p| p.references.is_none()),
            Check::MaxItems { param, .. } => {
                params.get(param.as_str()).map(|p| p.max_items.is_none())
            }
            _ => None,
        };
        if needs == Some(true) {
            problems.push(locate(
                file,
                "id",
                Some(&rule.id),
                0,
                format!(
                    "rule `{}` ({}) needs parameter `{}` to declare {}",
                    rule.id,
                    rule.check.kind_name(),
                    rule.check.param().unwrap_or(""),
                    match rule.check {
                        Check::Pattern { .. } => "a `pattern`",
                        Check::Exists { .. } => "`references`",
                        _ => "`max_items`",
                    }
                ),
                "add the field to the parameter, quoting the document".into(),
            ));
        }
    }
    if let Precedence::Ordered { rules, .. } = &spec.precedence {
        for id in rules {
            if !spec.rules.iter().any(|r| &r.id == id) {
                problems.push(locate(
                    file,
                    "rules",
                    None,
                    0,
                    format!("precedence names rule `{id}`, which is not defined"),
                    "list ids of rules defined under `rules:`".into(),
                ));
            }
        }
    }

    check_variants_named(file, &spec.rules, &spec.unspecified, problems);

    // Every code a rule answers is in a table; every table code is produced or explained.
    let mut table: BTreeSet<&str> = spec.error_codes.iter().map(|e| e.code.as_str()).collect();
    if let Some(f) = family {
        table.extend(f.error_codes.iter().map(|e| e.code.as_str()));
    }
    let mut produced = BTreeSet::new();
    let mut occ = Seen::new();
    for rule in &spec.rules {
        for err in &rule.errors {
            let n = occ.next("code", &err.code);
            produced.insert(err.code.as_str());
            if !table.contains(err.code.as_str()) {
                problems.push(locate(
                    file,
                    "code",
                    Some(&err.code),
                    n,
                    format!(
                        "rule `{}` answers `{}`, which is in neither this document's error_codes nor the family's",
                        rule.id, err.code
                    ),
                    "add the code to `error_codes` with the source that lists it, or correct the spelling".into(),
                ));
            }
        }
        let positive = matches!(
            rule.check,
            Check::BindsKeys
                | Check::UnbindsKeys
                | Check::SuccessShape
                | Check::ErrorShape
                | Check::PerItemConsistency
                | Check::ResponseFormat
                | Check::XmlRoot
                | Check::RequestIdUnique
                | Check::DocumentedCode
                | Check::WireForms
        );
        if !positive && rule.errors.is_empty() {
            problems.push(locate(
                file,
                "id",
                Some(&rule.id),
                0,
                format!("rule `{}` has no error code", rule.id),
                "list under `errors:` the code(s) the documents give when the rule is broken"
                    .into(),
            ));
        }
    }
    let mut occ = Seen::new();
    for entry in &spec.error_codes {
        let n = occ.next("code", &entry.code);
        if entry.unreachable.is_none() && !produced.contains(entry.code.as_str()) {
            problems.push(locate(
                file,
                "code",
                Some(&entry.code),
                n + spec
                    .rules
                    .iter()
                    .flat_map(|r| &r.errors)
                    .filter(|e| e.code == entry.code)
                    .count(),
                format!(
                    "error code `{}` is in the table but no rule produces it",
                    entry.code
                ),
                "link it from the rule that provokes it, or add `unreachable: <why no request from outside can produce it>`".into(),
            ));
        }
    }
    let mut ids = BTreeSet::new();
    for (key, id) in spec
        .errata
        .iter()
        .map(|e| ("id", &e.id))
        .chain(spec.unspecified.iter().map(|u| ("id", &u.id)))
    {
        if !ids.insert(id.as_str()) || spec.rules.iter().any(|r| &r.id == id) {
            problems.push(locate(
                file,
                key,
                Some(id),
                1,
                format!("id `{id}` is used twice"),
                "rules, errata and unspecified entries share one id space; rename one".into(),
            ));
        }
    }
}
