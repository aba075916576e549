//! Architecture: the crate's internal module dependencies point one way.
//!
//! apiconform is a staged pipeline: specs (`spec`), the world (`world`), cases (`case`), wire
//! formats (`protocol`), generating, judging and emulating (`generate`, `oracle`, `emulator`),
//! the runner (`run`), rendering (`report`, `snapshot`), the command line (`cli`). A stage uses
//! only the stages before it, so each can be tested and reused alone. Cycles creep in one handy
//! `use` at a time; this test reads the source text (std only, nothing compiled) and checks:
//!
//! * `top_level_modules_form_no_cycle`: modules collapsed to their first segment form no cycle;
//! * `submodules_form_no_cycle`: inside each top-level module, its direct submodules and the
//!   module itself form no cycle (a parent's uses of its own children do not count);
//! * `modules_depend_only_on_earlier_layers`: each top-level module uses only modules of
//!   [`LAYERS`] at its own layer or earlier, none of its own layer unless the pair is in
//!   [`ALLOWED_SAME_LAYER`], and every top-level module in `src/` is listed.
//!
//! A reference is a `crate::`, `super::` or `self::` path (grouped imports expanded) outside
//! comments, literals, `#[cfg(test)]` items and `tests` modules (tests may import freely). It
//! counts against the longest prefix that is a module file: `crate::run::Target` uses `run`.
//! Paths inside an inline `mod x { … }` resolve as if written in the file's own module.
//!
//! Reading a failure: a cycle prints as `a -> b -> a`, then each of its edges with the
//! `file:line`s that make it; layer violations print the same way. Fix one by moving the shared
//! item down into the earlier stage (or a new lower module) or by having the caller pass it in.
//! The `checker_*` tests show that the checker finds what it should.

use std::collections::{btree_map::Entry, BTreeMap, BTreeSet, VecDeque};
use std::{cmp::Ordering, fs, path::Path};

/// The stages, earliest first. Listed modules that do not exist (yet) are skipped.
const LAYERS: &[&[&str]] = &[
    &["input"],
    &["spec"],
    &["world"],
    &["case"],
    &["protocol"],
    &["generate", "oracle", "emulator"],
    &["run"],
    &["report", "snapshot", "proxy"],
    &["cli"],
];

/// `(from, to)` pairs of one layer where `from` may use `to`; say why next to each.
const ALLOWED_SAME_LAYER: &[(&str, &str)] = &[];

/// A module path such as `["run", "observe"]`; empty for the crate root.
type ModPath = Vec<String>;

/// Edges `from -> to`, each with the `(file, line)`s that make it.
type Graph = BTreeMap<String, BTreeMap<String, BTreeSet<(String, usize)>>>;

/// One source file and the module it defines.
struct Source {
    file: String,
    module: ModPath,
    text: String,
}

/// A path in module `from` naming module `to` (or an item of it), at `(file, line)`.
struct Reference {
    from: ModPath,
    to: ModPath,
    at: (String, usize),
}

// ---- Reading the tree ----

/// Every module file under `src/`, binaries and `tests` modules left out.
fn crate_sources() -> Vec<Source> {
    let src = Path::new(option_env!("CARGO_MANIFEST_DIR").unwrap_or(".")).join("src");
    let (mut sources, mut dirs) = (Vec::new(), vec![src.clone()]);
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("directory entry").path();
            let rel = path.strip_prefix(&src).expect("under src/").iter();
            let rel: Vec<String> = rel.map(|c| c.to_string_lossy().into()).collect();
            let module = module_of(&rel).filter(|m| !m.contains(&"tests".into()));
            if path.is_dir() {
                dirs.push(path);
            } else if let Some(module) = module {
                let text = fs::read_to_string(&path).expect("readable source file");
                let file = format!("src/{}", rel.join("/"));
                sources.push(Source { file, module, text });
            }
        }
    }
    assert!(!sources.is_empty(), "no module files in {}", src.display());
    sources.sort_by(|a, b| a.file.cmp(&b.file));
    sources
}

/// The module a file defines, from its path under `src/`: `lib.rs` is the root, `a/mod.rs` and
/// `a.rs` are `a`, `a/b.rs` is `a::b`; `None` for binaries and other files.
fn module_of(rel: &[String]) -> Option<ModPath> {
    let (file, dirs) = rel.split_last()?;
    let mut module = dirs.to_vec();
    match file.strip_suffix(".rs")? {
        "main" if dirs.is_empty() => return None,
        "lib" if dirs.is_empty() => {}
        "mod" => {}
        stem => module.push(stem.to_string()),
    }
    (module.first().map(String::as_str) != Some("bin")).then_some(module)
}

// ---- Lexing: blank out what is not code, keeping offsets and newlines ----

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// How many bytes from `i` on satisfy `pred`.
fn span(s: &[u8], i: usize, pred: impl Fn(u8) -> bool) -> usize {
    s.get(i..)
        .map_or(0, |r| r.iter().take_while(|&&c| pred(c)).count())
}

fn skip_ws(s: &[u8], i: usize) -> usize {
    i + span(s, i, |c| c.is_ascii_whitespace())
}

/// The identifier at `i` (empty if none) and the index after it.
fn ident_at(s: &[u8], i: usize) -> (String, usize) {
    let end = i + span(s, i, is_ident);
    (String::from_utf8_lossy(&s[i..end]).into(), end)
}

fn find(s: &[u8], pat: &[u8], from: usize) -> Option<usize> {
    let at = s.get(from..)?.windows(pat.len()).position(|w| w == pat);
    at.map(|p| from + p)
}

fn blank(s: &mut [u8], from: usize, to: usize) {
    let to = to.min(s.len());
    for c in s[from..to].iter_mut().filter(|c| **c != b'\n') {
        *c = b' ';
    }
}

/// The index of the `}` matching the `{` at `open` (the end of `s` if unmatched).
fn matching_brace(s: &[u8], open: usize) -> usize {
    let mut depth = 0;
    let close = s[open..].iter().position(|&c| {
        depth += i32::from(c == b'{') - i32::from(c == b'}');
        depth == 0
    });
    close.map_or(s.len(), |p| open + p)
}

/// `src` with comments and string, byte-string and char literals blanked.
fn strip(src: &str) -> Vec<u8> {
    let mut out = src.as_bytes().to_vec();
    let mut i = 0;
    while i < out.len() {
        match skipped_end(src, i) {
            Some(end) => {
                blank(&mut out, i, end);
                i = end;
            }
            None => i += 1, // code, or the quote of a lifetime or label
        }
    }
    out
}

/// If a comment or a string or char literal starts at `i`, the index after it.
fn skipped_end(src: &str, i: usize) -> Option<usize> {
    let b = src.as_bytes();
    match (b[i], b.get(i + 1).copied()) {
        (b'/', Some(b'/')) => Some(find(b, b"\n", i).unwrap_or(b.len())),
        (b'/', Some(b'*')) => {
            let (mut depth, mut j) = (1, i + 2); // block comments nest
            while depth > 0 && j < b.len() {
                match &b[j..b.len().min(j + 2)] {
                    b"/*" => (depth, j) = (depth + 1, j + 2),
                    b"*/" => (depth, j) = (depth - 1, j + 2),
                    _ => j += 1,
                }
            }
            Some(j)
        }
        (b'"', _) => {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            Some(j + 1)
        }
        // `'\n'`, `'\''`, `'\u{1F600}'`: the closing quote comes after the escaped char.
        (b'\'', Some(b'\\')) => find(b, b"'", i + 3).map(|p| p + 1),
        (b'\'', _) => {
            // `'x'` is a char literal; `'a` (no closing quote after one char) a lifetime.
            let len = src.get(i + 1..)?.chars().next()?.len_utf8();
            (b.get(i + 1 + len) == Some(&b'\'')).then_some(i + 2 + len)
        }
        (b'r', _) => {
            // `r"…"`, `r#"…"#`, `br"…"`, `cr"…"`; not `for"` or the raw identifier `r#type`.
            let before = |k: usize| i.checked_sub(k).map(|k| b[k]);
            let starts_token = match before(1) {
                Some(b'b' | b'c') => !before(2).is_some_and(is_ident),
                c => !c.is_some_and(is_ident),
            };
            let hashes = span(b, i + 1, |c| c == b'#');
            if !starts_token || b.get(i + 1 + hashes) != Some(&b'"') {
                return None;
            }
            let close = [&b"\""[..], &vec![b'#'; hashes]].concat();
            let end = find(b, &close, i + hashes + 2);
            Some(end.map_or(b.len(), |p| p + close.len()))
        }
        _ => None,
    }
}

/// Blanks each item after `#[cfg(test)]`: up to its first `;` or `{…}` outside `(…)`, `[…]`.
fn blank_test_items(s: &mut [u8]) {
    const ATTR: &[u8] = b"#[cfg(test)]";
    while let Some(at) = find(s, ATTR, 0) {
        let (mut end, mut depth) = (at + ATTR.len(), 0);
        while end < s.len() && !(depth == 0 && matches!(s[end], b';' | b'{')) {
            depth += i32::from(matches!(s[end], b'(' | b'['));
            depth -= i32::from(matches!(s[end], b')' | b']'));
            end += 1;
        }
        if s.get(end) == Some(&b'{') {
            end = matching_brace(s, end);
        }
        blank(s, at, end + 1);
    }
}

// ---- Paths ----

/// Parses the use tree or path at `i` (`a::b`, `a::{b, c::{self, d}}`, `*`, `x as y`), pushes
/// `prefix` plus each path it names onto `out`, and returns the index after it.
fn parse_tree(s: &[u8], i: usize, prefix: &[String], out: &mut Vec<ModPath>) -> usize {
    let i = skip_ws(s, i);
    if s.get(i) == Some(&b'{') {
        let mut j = skip_ws(s, i + 1);
        while j < s.len() && s[j] != b'}' {
            let end = match s[j] {
                b',' => j + 1,
                _ => parse_tree(s, j, prefix, out),
            };
            j = skip_ws(s, end.max(j + 1)); // never stall on something unexpected
        }
        return j + 1;
    }
    let (seg, after) = ident_at(s, i);
    let next = skip_ws(s, after);
    let mut path = prefix.to_vec();
    if !seg.is_empty() {
        path.push(seg);
        if s[next..].starts_with(b"::") {
            return parse_tree(s, next + 2, &path, out);
        }
    }
    out.push(path); // a leaf; `*` and `Target::<T>` name the prefix
    match ident_at(s, next) {
        (word, end) if word == "as" => ident_at(s, skip_ws(s, end)).1,
        _ => after,
    }
}

/// The absolute path that `root::rel` (root `crate`, `super` or `self`) names, seen from `here`.
fn resolve(root: &str, rel: &[String], here: &[String]) -> ModPath {
    let supers = rel.iter().take_while(|s| *s == "super").count();
    let up = supers + usize::from(root == "super");
    let base = match root {
        "crate" => &[],
        _ => &here[..here.len().saturating_sub(up)],
    };
    let rest = rel[supers..].iter().filter(|s| *s != "self");
    base.iter().chain(rest).cloned().collect()
}

/// The modules that `sources` define, and every reference they make.
fn analyze(sources: &[Source]) -> (BTreeSet<ModPath>, Vec<Reference>) {
    let known: BTreeSet<ModPath> = sources.iter().map(|s| s.module.clone()).collect();
    let refs = sources.iter().flat_map(|s| references_in(s, &known));
    let refs = refs.collect();
    (known, refs)
}

fn references_in(source: &Source, known: &BTreeSet<ModPath>) -> Vec<Reference> {
    let mut s = strip(&source.text);
    blank_test_items(&mut s);
    if find(&s, b"#![cfg(test)]", 0).is_some() {
        return Vec::new();
    }
    let (mut refs, mut i) = (Vec::new(), 0);
    while i < s.len() {
        let (root, after) = ident_at(&s, i);
        let colons = skip_ws(&s, after);
        let is_root = matches!(&*root, "crate" | "super" | "self");
        if !is_root || !s[colons..].starts_with(b"::") {
            i = after.max(i + 1);
            continue;
        }
        let line = 1 + s[..i].iter().filter(|&&c| c == b'\n').count();
        let mut paths = Vec::new();
        i = parse_tree(&s, colons + 2, &[], &mut paths).max(after);
        for rel in paths {
            let mut to = resolve(&root, &rel, &source.module);
            while !known.contains(&to) && to.pop().is_some() {}
            let (from, at) = (source.module.clone(), (source.file.clone(), line));
            refs.push(Reference { from, to, at });
        }
    }
    refs
}

// ---- Graphs and checks ----

fn name(module: &[String]) -> String {
    match module {
        [] => "crate".to_string(),
        m => m.join("::"),
    }
}

/// The graph of `refs`, each `from -> to` mapped to an edge by `edge`; self-edges left out.
fn graph(refs: &[Reference], edge: impl Fn(&[String], &[String]) -> Option<[String; 2]>) -> Graph {
    let mut g = Graph::new();
    for r in refs {
        if let Some([from, to]) = edge(&r.from, &r.to).filter(|[f, t]| f != t) {
            let at = g.entry(from).or_default().entry(to).or_default();
            at.insert(r.at.clone());
        }
    }
    g
}

/// Modules collapsed to their first segment (`run::observe` is `run`); the root left out.
fn top_level_graph(refs: &[Reference]) -> Graph {
    graph(refs, |from, to| {
        Some([from.first()?.clone(), to.first()?.clone()])
    })
}

/// Module `top` and its direct submodules (deeper ones collapsed into those), without the
/// parent's edges to its own children: it declares and re-exports them.
fn submodule_graph(refs: &[Reference], top: &str) -> Graph {
    graph(refs, |from, to| {
        let (from, to) = (&from[..from.len().min(2)], &to[..to.len().min(2)]);
        let inside = |m: &[String]| m.first().is_some_and(|t| t == top);
        let parent_to_child = from.len() == 1 && to.len() == 2;
        let counts = inside(from) && inside(to) && !parent_to_child;
        counts.then(|| [name(from), name(to)])
    })
}

/// For each node on a cycle, the shortest cycle through it (found breadth-first); each cycle
/// listed once, starting from its least node.
fn cycles(g: &Graph) -> BTreeSet<Vec<String>> {
    let mut found = BTreeSet::new();
    for start in g.keys() {
        let mut prev = BTreeMap::<&String, &String>::new();
        let mut queue = VecDeque::from([start]);
        'search: while let Some(node) = queue.pop_front() {
            for next in g.get(node).into_iter().flat_map(BTreeMap::keys) {
                if next == start {
                    let mut cycle = vec![node.clone()];
                    while cycle.last() != Some(start) {
                        cycle.push(prev[cycle.last().expect("not empty")].clone());
                    }
                    cycle.reverse();
                    let least = (0..cycle.len()).min_by_key(|&k| &cycle[k]);
                    cycle.rotate_left(least.unwrap_or(0));
                    found.insert(cycle);
                    break 'search;
                }
                if let Entry::Vacant(e) = prev.entry(next) {
                    e.insert(node);
                    queue.push_back(next);
                }
            }
        }
    }
    found
}

/// Up to three `file:line`s, and how many more.
fn places(at: &BTreeSet<(String, usize)>) -> String {
    let shown = at.iter().take(3).map(|(f, l)| format!("{f}:{l}"));
    let mut shown: Vec<String> = shown.collect();
    if at.len() > 3 {
        shown.push(format!("and {} more", at.len() - 3));
    }
    shown.join(", ")
}

/// Each cycle as `a -> b -> a`, then one line per edge with where it is made.
fn cycle_problems(g: &Graph) -> Vec<String> {
    let describe = |cycle: Vec<String>| {
        let mut lines = vec![format!("cycle: {} -> {}", cycle.join(" -> "), cycle[0])];
        for (k, from) in cycle.iter().enumerate() {
            let to = &cycle[(k + 1) % cycle.len()];
            lines.push(format!("    {from} -> {to}: {}", places(&g[from][to])));
        }
        lines.join("\n")
    };
    cycles(g).into_iter().map(describe).collect()
}

/// Top-level modules missing from `layers`, and uses of later layers or of the same layer.
fn layer_problems(known: &BTreeSet<ModPath>, g: &Graph, layers: &[&[&str]]) -> Vec<String> {
    let layer_of = |m: &str| layers.iter().position(|l| l.contains(&m)).map(|k| k + 1);
    let mut problems = Vec::new();
    for m in known.iter().filter(|m| m.len() == 1) {
        if layer_of(&m[0]).is_none() {
            let add = format!("add it to LAYERS in {}", file!());
            problems.push(format!("module `{}` is in no layer: {add}", m[0]));
        }
    }
    for (from, edges) in g {
        for (to, at) in edges {
            let (Some(lf), Some(lt)) = (layer_of(from), layer_of(to)) else {
                continue;
            };
            let allowed = ALLOWED_SAME_LAYER.contains(&(from.as_str(), to.as_str()));
            let why = match lt.cmp(&lf) {
                Ordering::Greater => "a later layer",
                Ordering::Equal if !allowed => "the same layer (see ALLOWED_SAME_LAYER)",
                _ => continue,
            };
            let at = places(at);
            problems.push(format!(
                "{from} (layer {lf}) -> {to} (layer {lt}), {why}: {at}"
            ));
        }
    }
    problems
}

fn assert_none(what: &str, problems: &[String]) {
    assert!(problems.is_empty(), "{what}\n\n{}\n", problems.join("\n"));
}

// ---- The checks on this crate ----

/// Where the code may still name an API (its action) or a product (its spec folder), and why.
/// APIs are data: anything else that names one would make adding or changing an API a code
/// change. A file that no longer names any must leave this list.
const MAY_NAME_APIS: &[(&str, &str)] = &[
    (
        "src/emulator/",
        "the hand-written handlers of the five seeded APIs (the emulator's independent reading \
         of the documents) and the fault catalogue's note of where each fault shows",
    ),
    (
        "src/protocol/describe.rs",
        "the read calls that observe bindings, not yet described in the spec files",
    ),
    (
        "src/protocol/discover.rs",
        "the listing calls of `world discover`, not yet described in the spec files",
    ),
    ("src/cli/mod.rs", "examples in --help"),
    ("src/cli/repro.rs", "examples in --help"),
    ("src/cli/world.rs", "examples in --help"),
    (
        "src/report/merge.rs",
        "examples in error messages' help lines",
    ),
    (
        "src/run/target.rs",
        "examples in error messages' help lines",
    ),
];

#[test]
fn only_listed_files_name_an_api_or_a_product() {
    let specs = Path::new(option_env!("CARGO_MANIFEST_DIR").unwrap_or(".")).join("specs");
    let mut names: BTreeSet<String> = BTreeSet::new();
    for dir in fs::read_dir(&specs).expect("specs/").flatten() {
        let folder = dir.file_name().to_string_lossy().into_owned();
        if !dir.path().is_dir() || folder == "families" {
            continue;
        }
        names.insert(folder);
        for file in fs::read_dir(dir.path()).expect("a spec folder").flatten() {
            let path = file.path();
            if path.extension().is_some_and(|e| e == "yaml") {
                let stem = path.file_stem().expect("a file name").to_string_lossy();
                names.insert(stem.into_owned());
            }
        }
    }
    assert!(names.len() >= 6, "specs/ holds APIs: {names:?}");
    let mut problems = Vec::new();
    let mut used: BTreeSet<&str> = BTreeSet::new();
    for source in crate_sources() {
        // Test items name APIs freely: they are the examples.
        let mut text = source.text.clone().into_bytes();
        blank_test_items(&mut text);
        let text = String::from_utf8_lossy(&text);
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            let Some(name) = names.iter().find(|name| line.contains(name.as_str())) else {
                continue;
            };
            match MAY_NAME_APIS
                .iter()
                .find(|(p, _)| source.file.starts_with(p))
            {
                Some((p, _)) => {
                    used.insert(p);
                }
                None => problems.push(format!("{}:{}: names `{name}`", source.file, n + 1)),
            }
        }
    }
    for (p, why) in MAY_NAME_APIS {
        if !used.contains(p) {
            problems.push(format!(
                "{p} ({why}) names no API any more: take it off MAY_NAME_APIS"
            ));
        }
    }
    assert_none(
        "APIs are data (specs/): read what the code needs from the spec files instead of naming an API or product",
        &problems,
    );
}

#[test]
fn top_level_modules_form_no_cycle() {
    let (_, refs) = analyze(&crate_sources());
    let problems = cycle_problems(&top_level_graph(&refs));
    assert_none("top-level modules form a cycle:", &problems);
}

#[test]
fn submodules_form_no_cycle() {
    let (known, refs) = analyze(&crate_sources());
    let nested = known.iter().filter(|m| m.len() > 1);
    let parents: BTreeSet<&String> = nested.map(|m| &m[0]).collect();
    let graphs = parents.iter().map(|top| submodule_graph(&refs, top));
    let problems: Vec<String> = graphs.flat_map(|g| cycle_problems(&g)).collect();
    assert_none("the submodules of a module form a cycle:", &problems);
}

#[test]
fn modules_depend_only_on_earlier_layers() {
    let (known, refs) = analyze(&crate_sources());
    let problems = layer_problems(&known, &top_level_graph(&refs), LAYERS);
    assert_none("module dependencies break LAYERS:", &problems);
}

// ---- The checker itself, on inline sources ----

/// Sources from `(module, text)` pairs; the file of module `a::b` is `a::b.rs`.
fn sources(list: &[(&str, &str)]) -> Vec<Source> {
    let source = |&(module, text): &(&str, &str)| {
        let module: ModPath = module.split("::").map(Into::into).collect();
        let module = if module == [""] { vec![] } else { module };
        let (file, text) = (format!("{}.rs", name(&module)), text.into());
        Source { file, module, text }
    };
    list.iter().map(source).collect()
}

/// The modules that module `of` uses, and the lines where.
fn uses(sources: &[Source], of: &str) -> (BTreeSet<String>, BTreeSet<usize>) {
    let (_, refs) = analyze(sources);
    let mine: Vec<_> = refs.iter().filter(|r| name(&r.from) == of).collect();
    let lines = mine.iter().map(|r| r.at.1).collect();
    (mine.iter().map(|r| name(&r.to)).collect(), lines)
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn checker_maps_files_to_modules() {
    for (path, want) in [
        ("lib.rs", Some("crate")),
        ("main.rs", None),
        ("run/mod.rs", Some("run")),
        ("run/exchange.rs", Some("run::exchange")),
        ("cli/run.rs", Some("cli::run")),
    ] {
        let rel: Vec<String> = path.split('/').map(String::from).collect();
        assert_eq!(module_of(&rel).map(|m| name(&m)).as_deref(), want);
    }
}

#[test]
fn checker_expands_grouped_imports_with_nested_braces() {
    let user = "use crate::{a::{x::{self, X}, y::Z}, b::c, d as e};\nuse crate::f::*;\n";
    let mut list: Vec<_> = ["", "a", "a::x", "b", "b::c", "d", "f"]
        .map(|m| (m, ""))
        .into();
    list.push(("user", user));
    let want = (names(&["a", "a::x", "b::c", "d", "f"]), [1, 2].into());
    assert_eq!(uses(&sources(&list), "user"), want);
}

#[test]
fn checker_resolves_super_and_self() {
    let run = "mod exchange;\nuse super::spec::Api;\nuse self::send::go;\n";
    let exchange =
        "use super::send::{go, Packet};\nfn f() -> super::Target { super::super::spec::X }";
    let set = sources(&[
        ("", ""),
        ("spec", ""),
        ("run", run),
        ("run::exchange", exchange),
        ("run::send", ""),
    ]);
    assert_eq!(uses(&set, "run").0, names(&["spec", "run::send"]));
    let want = names(&["run", "run::send", "spec"]);
    assert_eq!(uses(&set, "run::exchange").0, want);
}

#[test]
fn checker_ignores_comments_strings_and_test_code() {
    let text = r##"
// crate::a::X
/// crate::a::X  //! crate::a::X
/* crate::a::X /* nested */ crate::a::X */
const S: &str = "crate::a::X \" crate::a::X";
const R: &str = r#"crate::a::X "still inside" crate::a::X"#;
const Q: char = '"'; use crate::b::One;
fn f<'a>(x: &'a str) -> crate::b::Two<'a> { let _ = b'\''; crate::b::three() }
#[cfg(test)]
mod tests { use crate::a::X; fn g() { crate::a::f() } }
#[cfg(test)]
use crate::a::{Y, Z};
"##;
    let set = sources(&[("", ""), ("a", ""), ("b", ""), ("user", text)]);
    assert_eq!(uses(&set, "user"), (names(&["b"]), [7, 8].into()));
}

#[test]
fn checker_detects_a_cycle() {
    let set = sources(&[
        ("", ""),
        ("a", "use crate::b::X;"),
        ("b", "\n\nfn f() { crate::a::g() }"),
        ("c", "use crate::a::Z;"),
    ]);
    let problems = cycle_problems(&top_level_graph(&analyze(&set).1));
    let want = "cycle: a -> b -> a\n    a -> b: a.rs:1\n    b -> a: b.rs:3";
    assert_eq!(problems, [want]);
}

#[test]
fn checker_ignores_parents_using_children_but_not_sibling_cycles() {
    let run = "mod send;\npub use send::Go;\nuse crate::run::send::Go2;\nuse self::exchange::Ex;";
    let mut set = sources(&[
        ("", ""),
        ("run", run),
        ("run::send", "use super::Target;\n"),
        ("run::exchange", "use super::Thing;\n"),
    ]);
    let problems = |set: &[Source]| cycle_problems(&submodule_graph(&analyze(set).1, "run"));
    assert_eq!(problems(&set), Vec::<String>::new());
    set[2].text.push_str("use crate::run::exchange::Ex;\n");
    set[3].text.push_str("fn f() { super::send::go() }\n");
    let found = problems(&set);
    assert_eq!(found.len(), 1, "{found:#?}");
    let want = "cycle: run::exchange -> run::send -> run::exchange\n";
    assert!(found[0].starts_with(want), "{found:#?}");
}

#[test]
fn checker_flags_later_layers_same_layer_and_unlisted_modules() {
    let set = sources(&[
        ("", ""),
        ("spec", "use crate::run::Report;"),
        ("run", "use crate::spec::Api;\nuse crate::report::R;"),
        ("report", ""),
        ("extra", ""),
    ]);
    let (known, refs) = analyze(&set);
    let layers: &[&[&str]] = &[&["spec"], &["run", "report"], &["not_yet"]];
    let found = layer_problems(&known, &top_level_graph(&refs), layers);
    let same = "the same layer (see ALLOWED_SAME_LAYER)";
    let want = [
        format!(
            "module `extra` is in no layer: add it to LAYERS in {}",
            file!()
        ),
        format!("run (layer 2) -> report (layer 2), {same}: run.rs:2"),
        "spec (layer 1) -> run (layer 2), a later layer: spec.rs:1".to_string(),
    ];
    assert_eq!(found, want);
}
