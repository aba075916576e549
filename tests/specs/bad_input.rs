//! Broken spec files are rejected with a located message and a help line that says what to
//! change. Each test starts from the shipped CVM Associate spec and the API 3.0 family spec and
//! changes exactly one thing; the expected line and column are computed from the text built.

use apiconform::spec::{load_files, Problem, SourceFile};

const API: &str = include_str!("../../specs/tencent-cvm/AssociateInstancesKeyPairs.yaml");
const FAMILY: &str = include_str!("../../specs/families/tencent_api3.yaml");
const API_PATH: &str = "specs/tencent-cvm/AssociateInstancesKeyPairs.yaml";
const FAMILY_PATH: &str = "specs/families/tencent_api3.yaml";

/// Loads the family spec with `api` as the Associate spec; the load must fail.
fn problems(api: &str) -> Vec<Problem> {
    let files = [
        SourceFile {
            path: FAMILY_PATH.into(),
            text: FAMILY.to_string(),
        },
        SourceFile {
            path: API_PATH.into(),
            text: api.to_string(),
        },
    ];
    match load_files(&files) {
        Ok(_) => panic!("the broken spec loaded without complaint"),
        Err(e) => e.problems().to_vec(),
    }
}

/// The only problem reported.
fn only(api: &str) -> Problem {
    let mut p = problems(api);
    assert_eq!(p.len(), 1, "exactly one problem expected, got: {p:#?}");
    p.remove(0)
}

/// Replaces the `nth` (0-based) occurrence of `from` with `to`.
fn replace_nth(text: &str, from: &str, to: &str, nth: usize) -> String {
    let (at, _) = text
        .match_indices(from)
        .nth(nth)
        .unwrap_or_else(|| panic!("`{from}` occurs fewer than {} times", nth + 1));
    format!("{}{}{}", &text[..at], to, &text[at + from.len()..])
}

/// 1-based line and column (in characters) of the `nth` occurrence of `needle`.
fn position(text: &str, needle: &str, nth: usize) -> (usize, usize) {
    let (at, _) = text
        .match_indices(needle)
        .nth(nth)
        .unwrap_or_else(|| panic!("`{needle}` occurs fewer than {} times", nth + 1));
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, text[line_start..at].chars().count() + 1)
}

/// The problem is in the API file at `line`:`column` and shows that line of `text`.
fn assert_at(p: &Problem, text: &str, line: usize, column: usize) {
    assert_eq!(p.path.to_str(), Some(API_PATH), "{p}");
    assert_eq!((p.line, p.column), (line, column), "{p}");
    let snippet = p
        .snippet
        .as_deref()
        .expect("a located problem shows its line");
    assert_eq!(Some(snippet), text.lines().nth(line - 1));
}

#[test]
fn unmodified_files_load() {
    let files = [
        SourceFile {
            path: FAMILY_PATH.into(),
            text: FAMILY.to_string(),
        },
        SourceFile {
            path: API_PATH.into(),
            text: API.to_string(),
        },
    ];
    load_files(&files).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn unknown_field() {
    let text = replace_nth(
        API,
        "  action: AssociateInstancesKeyPairs\n",
        "  action: AssociateInstancesKeyPairs\n  colour: red\n",
        0,
    );
    let p = only(&text);
    let (line, column) = position(&text, "colour: red", 0);
    assert!(
        p.message.contains("unknown field `colour`"),
        "{}",
        p.message
    );
    assert_at(&p, &text, line, column);
    assert!(
        p.help.starts_with("remove or rename the field"),
        "{}",
        p.help
    );
    assert!(
        p.help.contains("`action`"),
        "help lists the allowed fields: {}",
        p.help
    );
}

#[test]
fn wrong_type() {
    let text = replace_nth(API, "max_items: 100", "max_items: many", 0);
    let p = only(&text);
    let (line, column) = position(&text, "many", 0);
    assert!(p.message.contains("invalid type"), "{}", p.message);
    assert!(p.message.contains("many"), "{}", p.message);
    assert_at(&p, &text, line, column);
    assert_eq!(p.help, "change the value to the expected type");
}

#[test]
fn rule_without_source() {
    let rule_source = "    source: {doc: seed-004, section: 2. 输入参数}\n  - id: key-ids-required";
    let text = replace_nth(API, rule_source, "  - id: key-ids-required", 0);
    let p = only(&text);
    assert!(
        p.message.contains("missing field `source`"),
        "{}",
        p.message
    );
    // serde reports the mapping that lacks the field: the rule's first key.
    let (line, column) = position(&text, "id: instance-ids-required", 0);
    assert_at(&p, &text, line, column);
    assert!(p.help.contains("source: {doc:"), "{}", p.help);
}

#[test]
fn duplicate_rule_id() {
    let text = replace_nth(API, "id: key-ids-required", "id: instance-ids-required", 0);
    let p = only(&text);
    assert_eq!(p.message, "duplicate rule id `instance-ids-required`");
    // The second definition is marked, not the first.
    let (line, column) = position(&text, "instance-ids-required", 1);
    assert_at(&p, &text, line, column);
    assert_eq!(p.width, "instance-ids-required".len());
    assert!(p.help.contains("unique id"), "{}", p.help);
}

#[test]
fn error_code_in_no_table() {
    // The second rule answering LimitExceeded (key-ids-limit) gets a misspelt code.
    let code = "code: InvalidParameterValue.LimitExceeded";
    let text = replace_nth(API, code, "code: InvalidParameterValue.LimitExceded", 1);
    let p = only(&text);
    assert_eq!(
        p.message,
        "rule `key-ids-limit` answers `InvalidParameterValue.LimitExceded`, which is in neither this document's error_codes nor the family's"
    );
    let (line, column) = position(&text, "InvalidParameterValue.LimitExceded", 0);
    assert_at(&p, &text, line, column);
    assert!(
        p.help.contains("add the code to `error_codes`"),
        "{}",
        p.help
    );
}

#[test]
fn undefined_parameter() {
    let text = replace_nth(
        API,
        "{kind: required, param: KeyIds}",
        "{kind: required, param: KeyId}",
        0,
    );
    let p = only(&text);
    assert_eq!(p.message, "`KeyId` is not a parameter of this API");
    let (line, column) = position(&text, "KeyId}", 0);
    assert_at(&p, &text, line, column);
    assert!(
        p.help.contains("InstanceIds") && p.help.contains("KeyIds") && p.help.contains("ForceStop"),
        "help lists the parameters: {}",
        p.help
    );
}

#[test]
fn undefined_resource() {
    let text = replace_nth(API, "references: key_pair", "references: keypair", 0);
    let p = only(&text);
    assert_eq!(
        p.message,
        "parameter `KeyIds` references undefined resource `keypair`"
    );
    let (line, column) = position(&text, "references: keypair", 0);
    assert_at(&p, &text, line, column + "references: ".len());
    assert!(p.help.contains("instance, key_pair"), "{}", p.help);
}

#[test]
fn undeclared_document() {
    // The source of the ForceStop parameter names a document that is not declared.
    let from = "    source: {doc: seed-004, section: 2. 输入参数}\n\nresources:";
    let to = "    source: {doc: seed-044, section: 2. 输入参数}\n\nresources:";
    let text = replace_nth(API, from, to, 0);
    let p = only(&text);
    assert_eq!(
        p.message,
        "source names document `seed-044`, which is not declared"
    );
    let (line, column) = position(&text, "seed-044", 0);
    assert_at(&p, &text, line, column);
    assert!(
        p.help.starts_with("declare it under `documents:`"),
        "{}",
        p.help
    );
    assert!(
        p.help.contains("seed-004"),
        "help lists the declared ids: {}",
        p.help
    );
}

#[test]
fn table_code_never_produced() {
    let unreachable = "\n    unreachable: A server-side failure; no well-formed or malformed request from outside is documented to cause it.";
    let text = replace_nth(API, unreachable, "", 0);
    let p = only(&text);
    assert_eq!(
        p.message,
        "error code `InternalServerError` is in the table but no rule produces it"
    );
    let (line, column) = position(&text, "InternalServerError", 0);
    assert_at(&p, &text, line, column);
    assert!(p.help.contains("add `unreachable:"), "{}", p.help);
}

#[test]
fn invalid_regex() {
    let text = replace_nth(
        API,
        "pattern: \"^skey-[a-z0-9]{8}$\"",
        "pattern: \"^skey-[a-z0-9{8}$\"",
        0,
    );
    let p = only(&text);
    assert!(
        p.message
            .starts_with("pattern of `KeyIds` is not a valid regular expression"),
        "{}",
        p.message
    );
    // Marked right after the key: the second `pattern:` of the file.
    let (line, column) = position(&text, "pattern:", 1);
    assert_at(&p, &text, line, column + "pattern:".len());
    assert!(p.help.contains("Rust regex syntax"), "{}", p.help);
}

#[test]
fn rendered_error_shows_location_and_caret() {
    let text = replace_nth(API, "references: key_pair", "references: keypair", 0);
    let files = [
        SourceFile {
            path: FAMILY_PATH.into(),
            text: FAMILY.to_string(),
        },
        SourceFile {
            path: API_PATH.into(),
            text: text.clone(),
        },
    ];
    let err = load_files(&files).expect_err("broken spec");
    let rendered = err.to_string();
    let (line, column) = position(&text, "references: keypair", 0);
    let column = column + "references: ".len();
    assert!(
        rendered.contains(&format!("--> {API_PATH}:{line}:{column}")),
        "{rendered}"
    );
    let source_line = text.lines().nth(line - 1).unwrap();
    assert!(
        rendered.contains(&format!("{line} | {source_line}")),
        "{rendered}"
    );
    let caret = format!(
        "| {}{}",
        " ".repeat(column - 1),
        "^".repeat("keypair".len())
    );
    assert!(
        rendered
            .lines()
            .any(|l| l.ends_with(&caret) && l.trim_start().starts_with('|')),
        "caret line under the value: {rendered}"
    );
    assert!(
        rendered.contains("= help: define it under `resources:`"),
        "{rendered}"
    );
    assert!(rendered.ends_with("1 problem found"), "{rendered}");
}

#[test]
fn unspecified_entry_naming_no_variant() {
    let text = replace_nth(API, "\n    variants: [duplicate-ids-rejected]", "", 0);
    let p = only(&text);
    assert_eq!(
        p.message,
        "unspecified entry `duplicate-instance-ids` names no variant"
    );
    let (line, column) = position(&text, "duplicate-instance-ids", 0);
    assert_at(&p, &text, line, column);
    assert!(p.help.contains("serve --list-variants"), "{}", p.help);
}

#[test]
fn judgement_rule_naming_no_variant() {
    let text = replace_nth(
        API,
        "    description: Only Linux instances are supported.\n",
        "    description: Only Linux instances are supported.\n    judgement: A reading of ours, for this test.\n",
        0,
    );
    let p = only(&text);
    assert_eq!(
        p.message,
        "rule `instance-linux` is our reading (`judgement` or `open`) but names no variant"
    );
}

#[test]
fn a_code_meaning_a_rule_that_does_not_exist() {
    let text = replace_nth(
        API,
        "means: {rules: [instance-exists]}",
        "means: {rules: [instance-exist]}",
        0,
    );
    let p = only(&text);
    assert_eq!(
        p.message,
        "error code `InvalidInstanceId.NotFound` means rule `instance-exist`, which this spec and its family do not define"
    );
    let (line, column) = position(&text, "instance-exist]", 0);
    assert_at(&p, &text, line, column);
    assert!(p.help.contains("instance-exists"), "{}", p.help);
}

#[test]
fn a_code_meaning_a_check_kind_that_does_not_exist() {
    let text = replace_nth(
        API,
        "means: {kinds: [required, non_empty]}",
        "means: {kinds: [required, nonempty]}",
        0,
    );
    let p = only(&text);
    assert!(p.message.contains("check kind `nonempty`"), "{p}");
    let (line, column) = position(&text, "nonempty", 0);
    assert_at(&p, &text, line, column);
    assert!(p.help.contains("non_empty"), "{}", p.help);
}
