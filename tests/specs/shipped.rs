//! The shipped specs: they load and lint clean, and they carry what the seed documents say.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use apiconform::spec::{load_dir, ExampleFormat, SpecSet, EMBEDDED};

fn specs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("specs")
}

fn shipped() -> SpecSet {
    load_dir(&specs_dir()).unwrap_or_else(|e| panic!("{e}"))
}

/// The folder holding the vendors' documents (`seeds/`, `reference/`), from
/// `APICONFORM_SHARED`; `None`, with a visible `skipped:` line, when it is not set. A fresh clone
/// has nothing beside it; CI (`.ci/run`) sets it, and a set folder that is not there fails.
fn shared_dir(test: &str) -> Option<PathBuf> {
    use std::io::Write as _;
    let Some(dir) = std::env::var_os("APICONFORM_SHARED").map(PathBuf::from) else {
        // Straight to the process's stderr: the harness captures `eprintln!` of a passing test.
        let _ = writeln!(
            std::io::stderr(),
            "skipped: {test}: set APICONFORM_SHARED to the folder holding seeds/ and reference/ to check the specs against the vendors' documents"
        );
        return None;
    };
    assert!(
        dir.join("seeds").is_dir(),
        "APICONFORM_SHARED={} holds no seeds/ folder",
        dir.display()
    );
    Some(dir)
}

#[test]
fn shipped_specs_load_and_lint_clean() {
    let set = shipped();
    // One API per spec file outside `families/`, each embedded: adding an API is adding a file.
    let files = std::fs::read_dir(specs_dir())
        .unwrap()
        .flatten()
        .filter(|d| d.path().is_dir() && d.file_name() != "families")
        .flat_map(|d| std::fs::read_dir(d.path()).unwrap().flatten())
        .filter(|f| f.path().extension().is_some_and(|e| e == "yaml"))
        .count();
    assert_eq!(set.apis.len(), files, "an API spec per file");
    assert!(
        set.apis.len() >= 6,
        "the five seeded APIs and ECS AttachKeyPair"
    );
    assert_eq!(set.families.len(), 3, "three family specs");
}

/// Each seed's own error table, as printed (seed 002 prints none).
const SEED_TABLES: &[(&str, &str, &[&str])] = &[
    (
        "tencent-cvm/DisassociateInstancesKeyPairs",
        "seeds/000_4b5dedee49e0065e.txt",
        &[
            "MissingParameter",
            "InvalidParameterValue",
            "InvalidParameterValue.LimitExceeded",
            "InvalidInstanceId.NotFound",
            "InvalidInstanceId.Malformed",
            "InvalidInstance.NotSupported",
            "InvalidKeyPairId.Malformed",
            "InvalidKeyPairId.NotFound",
            "InternalServerError",
        ],
    ),
    (
        "tencent-ecm/DisassociateInstancesKeyPairs",
        "seeds/001_936c46579ebe04e9.txt",
        &[
            "InvalidParameterValue",
            "InvalidParameterValue.InstanceIdNotSupported",
            "InvalidParameterValue.InvalidKeyPairId",
            "InvalidParameterValue.LimitExceeded",
            "MissingParameter",
        ],
    ),
    (
        "tencent-cvm/UnBindInstanceKey",
        "seeds/002_5b8f6e7e1e7e2181.txt",
        &[],
    ),
    (
        "alibaba-ecs/DetachKeyPair",
        "seeds/003_891fbdade6f708d3.txt",
        &["DependencyViolation.WindowsInstance"],
    ),
    (
        "tencent-cvm/AssociateInstancesKeyPairs",
        "seeds/004_3d0f5c37590c992d.txt",
        &[
            "MissingParameter",
            "InvalidParameterValue",
            "InvalidParameterValue.LimitExceeded",
            "InvalidInstanceId.NotFound",
            "InvalidInstanceId.Malformed",
            "InvalidInstance.NotSupported",
            "InvalidKeyPairId.Malformed",
            "InvalidKeyPairId.NotFound",
            "InternalServerError",
        ],
    ),
];

#[test]
fn seed_error_tables_are_transcribed() {
    let set = shipped();
    for (name, seed, codes) in SEED_TABLES {
        let api = set.find(name).unwrap_or_else(|| panic!("no spec {name}"));
        let seed_id = format!("seed-{}", &seed["seeds/".len().."seeds/".len() + 3]);
        assert!(
            api.spec
                .documents
                .iter()
                .any(|d| d.id == seed_id && d.file.as_deref() == Some(*seed)),
            "{name} declares {seed_id} = {seed}"
        );
        for code in *codes {
            let entry = api.spec.error_codes.iter().find(|e| e.code == *code);
            let entry = entry.unwrap_or_else(|| panic!("{name}: seed code {code} missing"));
            assert_eq!(entry.source.doc, seed_id, "{name}: {code} cites its seed");
        }
        // The seed's codes come first in the table, in the seed's order.
        let first: Vec<&str> = api
            .spec
            .error_codes
            .iter()
            .take(codes.len())
            .map(|e| e.code.as_str())
            .collect();
        assert_eq!(first, *codes, "{name}: seed codes first");
        if let Some(shared) = shared_dir("seed error tables printed in the seeds") {
            let text = std::fs::read_to_string(shared.join(seed)).expect("seed readable");
            for code in *codes {
                assert!(text.contains(code), "{seed} prints {code}");
            }
        }
    }
}

#[test]
fn errata_are_recorded() {
    let expected: &[(&str, &[&str])] = &[
        (
            "tencent-cvm/AssociateInstancesKeyPairs",
            &["index-base", "force-stop-meaning", "error-table-size"],
        ),
        (
            "tencent-cvm/DisassociateInstancesKeyPairs",
            &[
                "index-base",
                "force-stop-meaning",
                "force-stop-password-wording",
                "error-table-size",
                "endpoint",
            ],
        ),
        (
            "tencent-ecm/DisassociateInstancesKeyPairs",
            &[
                "instance-ids-no-limit",
                "os-and-state-unstated",
                "force-stop-meaning",
            ],
        ),
        (
            "tencent-cvm/UnBindInstanceKey",
            &[
                "action-case",
                "trailing-comma",
                "index-base",
                "instance-ids-type",
                "partial-batch",
            ],
        ),
        (
            "alibaba-ecs/DetachKeyPair",
            &[
                "xml-malformed",
                "xml-access-denied-success",
                "field-types",
                "instance-ids-format",
                "action-not-required",
                "table-example-disk-ids",
                "item-failures-vs-status",
            ],
        ),
    ];
    let set = shipped();
    for (name, ids) in expected {
        let api = set.find(name).unwrap_or_else(|| panic!("no spec {name}"));
        let have: BTreeSet<&str> = api.spec.errata.iter().map(|e| e.id.as_str()).collect();
        for id in *ids {
            assert!(
                have.contains(id),
                "{name} records erratum {id}; has {have:?}"
            );
        }
    }
    let families: &[(&str, &[&str])] = &[
        ("tencent_api3", &["content-type-charset"]),
        ("tencent_v2", &["expired-or-replay", "code-is-integer"]),
        (
            "aliyun_rpc",
            &[
                "signature-status",
                "access-key-status",
                "empty-signature-type",
                "format-lower-case",
            ],
        ),
    ];
    for (family, ids) in families {
        let have: BTreeSet<&str> = set.families[family]
            .1
            .errata
            .iter()
            .map(|e| e.id.as_str())
            .collect();
        for id in *ids {
            assert!(have.contains(id), "family {family} records erratum {id}");
        }
    }
}

#[test]
fn every_api_has_an_example_and_well_formedness_is_true() {
    for api in &shipped().apis {
        // Each seed prints an example; an API transcribed from the vendor's definitions alone
        // (ECS AttachKeyPair) has none to copy: they print responses, no request.
        let seeded = api
            .spec
            .documents
            .iter()
            .any(|d| d.kind == apiconform::spec::DocumentKind::Seed);
        assert!(
            !seeded || !api.spec.examples.is_empty(),
            "{} has an example",
            api.name
        );
        for ex in &api.spec.examples {
            let parses = match ex.response_format {
                ExampleFormat::Json => {
                    serde_json::from_str::<serde_json::Value>(&ex.response).is_ok()
                }
                ExampleFormat::Xml => xml_well_formed(&ex.response),
            };
            assert_eq!(
                parses, ex.response_well_formed,
                "{}: example `{}` says response_well_formed: {}",
                api.name, ex.name, ex.response_well_formed
            );
        }
    }
}

fn xml_well_formed(text: &str) -> bool {
    let mut reader = quick_xml::Reader::from_str(text);
    let mut depth = 0usize;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Start(_)) => depth += 1,
            Ok(quick_xml::events::Event::End(_)) => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            Ok(quick_xml::events::Event::Eof) => return depth == 0,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
}

#[test]
fn embedded_lists_exactly_the_spec_files() {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).expect("specs dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, root, out);
            } else {
                let rel = path.strip_prefix(root).expect("below root");
                let rel = rel.to_str().expect("utf-8").replace('\\', "/");
                if rel != "schema.json" && rel != "README.md" {
                    out.insert(rel);
                }
            }
        }
    }
    let dir = specs_dir();
    let mut on_disk = BTreeSet::new();
    walk(&dir, &dir, &mut on_disk);
    let embedded: BTreeSet<String> = EMBEDDED.iter().map(|(p, _)| (*p).to_string()).collect();
    assert_eq!(embedded.len(), EMBEDDED.len(), "no file embedded twice");
    assert_eq!(
        embedded, on_disk,
        "EMBEDDED in src/spec/load.rs vs files under specs/"
    );
    for (path, text) in EMBEDDED {
        let disk = std::fs::read_to_string(dir.join(path)).expect("readable");
        assert_eq!(&disk, text, "{path}: embedded text is the file's");
    }
}

/// Every `quote:` is the document's own words: it occurs in the cited file (whitespace aside).
#[test]
fn quotes_are_verbatim() {
    let Some(shared) = shared_dir("quotes are verbatim") else {
        return;
    };
    fn norm(s: &str) -> String {
        s.split_whitespace().collect::<Vec<_>>().join(" ")
    }
    fn quotes(v: &serde_yaml_ng::Value, out: &mut Vec<(String, String)>) {
        match v {
            serde_yaml_ng::Value::Mapping(m) => {
                if let (Some(doc), Some(q)) = (m.get("doc"), m.get("quote")) {
                    if let (Some(doc), Some(q)) = (doc.as_str(), q.as_str()) {
                        out.push((doc.to_string(), q.to_string()));
                    }
                }
                m.values().for_each(|v| quotes(v, out));
            }
            serde_yaml_ng::Value::Sequence(s) => s.iter().for_each(|v| quotes(v, out)),
            _ => {}
        }
    }
    let set = shipped();
    let mut checked = 0;
    let family_docs = |fam: &str| set.families[fam].1.documents.clone();
    let mut files: Vec<(PathBuf, Vec<apiconform::spec::DocumentRef>)> = set
        .apis
        .iter()
        .map(|a| {
            let mut docs = a.spec.documents.clone();
            docs.extend(family_docs(a.spec.api.family.as_str()));
            (a.path.clone(), docs)
        })
        .collect();
    for (path, fam) in set.families.values() {
        files.push((path.clone(), fam.documents.clone()));
    }
    for (path, docs) in files {
        let text = std::fs::read_to_string(&path).expect("spec readable");
        let value: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).expect("yaml");
        let mut found = Vec::new();
        quotes(&value, &mut found);
        for (doc, quote) in found {
            let d = docs.iter().find(|d| d.id == doc).expect("declared (lint)");
            // A vendor page cited by its url alone has no copy here to check against.
            let Some(file) = &d.file else { continue };
            let source = std::fs::read_to_string(shared.join(file)).expect("document readable");
            assert!(
                norm(&source).contains(&norm(&quote)),
                "{}: quote not found verbatim in {}: {quote}",
                path.display(),
                file
            );
            checked += 1;
        }
    }
    assert!(checked > 100, "quotes checked: {checked}");
}
