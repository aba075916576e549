//! Files a user may be handed — world, spec, repro, journal, run report — are bounded before a
//! parser sees them (issue 23, item 12): nesting deeper than any such file needs is refused at
//! once, naming the file and the line, instead of a YAML parse quadratic in the depth (100,000
//! levels in 200 KB took 40 s).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs the binary with `args` in `dir`; returns the exit code and everything it printed.
fn apiconform(args: &[&str], dir: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_apiconform"))
        .args(args)
        .env("CI", "true")
        .current_dir(dir)
        .output()
        .expect("the binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn deeply_nested_files_are_refused_before_parsing_naming_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    // 100,000 levels in 200 KB: YAML block sequences, and flow collections for the JSON files.
    let dashes = format!("{}x\n", "- ".repeat(100_000));
    let brackets = "[".repeat(100_000);
    let journal = format!(
        "{}\n{{\"before\": {brackets}\n",
        serde_json::json!({"started": {"version": 1, "target": "http://127.0.0.1:9", "at": 0}})
    );
    let cases: [(&str, String, &[&str], &str); 5] = [
        (
            "world.yaml",
            format!("instances:\n{dashes}"),
            &["run", "--dry-run", "--world"],
            "world.yaml:2:",
        ),
        (
            "Spec.yaml",
            format!("api:\n  name: X\n{dashes}"),
            &["specs", "lint"],
            "Spec.yaml:3:",
        ),
        ("repro.json", brackets.clone(), &["replay"], "repro.json:1:"),
        ("journal", journal, &["restore"], "journal:2"),
        (
            "report.json",
            format!("{{\"apis\": {brackets}"),
            &["report", "merge"],
            "at line 1 column",
        ),
    ];
    for (name, text, args, at) in cases {
        std::fs::write(dir.path().join(name), &text).unwrap();
        let mut all = args.to_vec();
        all.push(name);
        let started = Instant::now();
        let (code, out) = apiconform(&all, dir.path());
        assert_eq!(code, 2, "{name}: {out}");
        assert!(out.contains(name) && out.contains(at), "{name}: {out}");
        assert!(out.contains("nested more than 32 levels"), "{name}: {out}");
        // Not a speed target: the parse this replaces took 40 s.
        assert!(started.elapsed() < Duration::from_secs(20), "{name}");
    }
}

/// The files a user may be handed, each with a valid sample to mutate and its loader.
mod fuzz {
    use std::path::{Path, PathBuf};

    use apiconform::run::{ApiStats, RunReport, Shard};
    use apiconform::spec::{self, SourceFile};
    use apiconform::world::World;
    use proptest::prelude::*;

    #[derive(Debug, Clone, Copy)]
    pub enum File {
        WorldYaml,
        WorldJson,
        Spec,
        Repro,
        Journal,
        Report,
    }

    const ALL: [File; 6] = [
        File::WorldYaml,
        File::WorldJson,
        File::Spec,
        File::Repro,
        File::Journal,
        File::Report,
    ];

    fn failure() -> serde_json::Value {
        serde_json::json!({
            "api": "tencent-cvm/AssociateInstancesKeyPairs", "rule": "key-exists",
            "source": {"doc": "seed-004", "section": "4", "quote": "q"},
            "expected": "e", "actual": "a", "detail": "d",
            "case": {"api": "tencent-cvm/AssociateInstancesKeyPairs",
                "params": {"InstanceIds": ["ins-1"], "KeyIds": ["skey-1"]}, "region": "ap-guangzhou",
                "violates": ["key-exists"], "situations": [], "auth": "none",
                "transport": {"method": "POST", "signature": "tc3-hmac-sha256",
                "format": "default", "index_base": 0}},
            "request": {"method": "POST", "target": "/", "headers": [["Host", "h"]], "body": [123, 125]},
            "status": 200, "response": "{}", "curl": "curl", "shrink_steps": 3, "found_after": 2
        })
    }

    impl File {
        /// The file's name (the loaders read the product from a spec's folder).
        pub fn name(self) -> &'static str {
            match self {
                File::WorldYaml => "world.yaml",
                File::WorldJson => "world.json",
                File::Spec => "tencent-cvm/AssociateInstancesKeyPairs.yaml",
                File::Repro => "repro.json",
                File::Journal => "apiconform.journal",
                File::Report => "report.json",
            }
        }

        /// A valid file of this kind.
        pub fn sample(self) -> Vec<u8> {
            let mut world = World::default_world();
            world.instances.truncate(3);
            world.instances.iter_mut().for_each(|i| i.keys.clear());
            world.key_pairs.truncate(2);
            let text = match self {
                File::WorldYaml => serde_yaml_ng::to_string(&world).unwrap(),
                File::WorldJson => serde_json::to_string_pretty(&world).unwrap(),
                File::Spec => spec::EMBEDDED
                    .iter()
                    .find(|(p, _)| *p == self.name())
                    .unwrap()
                    .1
                    .to_string(),
                File::Repro => serde_json::to_string_pretty(&failure()).unwrap(),
                File::Journal => [
                    r#"{"started":{"version":1,"target":"http://127.0.0.1:9","at":1764662400}}"#,
                    r#"{"before":{"product":"cvm","region":"ap-guangzhou","id":"ins-a1","keys":["skey-1"],"state":"STOPPED","seen":true}}"#,
                    r#"{"closed":{"changed":1,"restored":1,"at":1764662460}}"#,
                    "",
                ]
                .join("\n"),
                File::Report => {
                    let report = RunReport {
                        seed: 7,
                        cases_per_api: 5,
                        shard: Some(Shard { index: 1, count: 2 }),
                        apis: vec![ApiStats {
                            api: "tencent-cvm/AssociateInstancesKeyPairs".into(),
                            cases: 5,
                            fail: 1,
                            failures: vec![serde_json::from_value(failure()).unwrap()],
                            ..Default::default()
                        }],
                        ..Default::default()
                    };
                    serde_json::to_string_pretty(&report).unwrap()
                }
            };
            text.into_bytes()
        }

        /// Loads the file at `path` as its command would; the error's text on failure.
        pub fn load(self, path: &Path) -> Result<(), String> {
            let text = |e: &dyn std::fmt::Display| e.to_string();
            match self {
                File::WorldYaml | File::WorldJson => {
                    World::load(path).map(drop).map_err(|e| text(&e))
                }
                File::Spec => {
                    let file = spec::read_source(path).map_err(|e| text(&e))?;
                    let mut files: Vec<SourceFile> = spec::EMBEDDED
                        .iter()
                        .filter(|(p, _)| p.starts_with("families/"))
                        .map(|(p, t)| SourceFile {
                            path: Path::new("specs").join(p),
                            text: t.to_string(),
                        })
                        .collect();
                    files.push(file);
                    spec::load_files(&files).map(drop).map_err(|e| text(&e))
                }
                File::Repro => apiconform::report::repro::read(path)
                    .map(drop)
                    .map_err(|e| text(&e)),
                File::Journal => apiconform::run::journal_read(path)
                    .map(drop)
                    .map_err(|e| text(&e)),
                File::Report => apiconform::report::merge::load(path)
                    .map(drop)
                    .map_err(|e| text(&e)),
            }
        }
    }

    /// Writes `bytes` as `file` in a fresh folder and loads it: it never panics, and a refusal
    /// names the file.
    pub fn check(file: File, bytes: &[u8]) -> Result<(), TestCaseError> {
        let dir = tempfile::tempdir().unwrap();
        let path: PathBuf = dir.path().join(file.name());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        if let Err(e) = file.load(&path) {
            let name = path.file_name().unwrap().to_str().unwrap();
            prop_assert!(e.contains(name), "{file:?}: {e}");
        }
        Ok(())
    }

    /// One edit of a file's bytes.
    #[derive(Debug, Clone)]
    pub enum Edit {
        Flip(prop::sample::Index, u8),
        Insert(prop::sample::Index, Vec<u8>),
        Delete(prop::sample::Index, usize),
        Repeat(prop::sample::Index, usize, usize),
        Nest(prop::sample::Index, usize),
        Truncate(prop::sample::Index),
    }

    pub fn edit() -> impl Strategy<Value = Edit> {
        let at = any::<prop::sample::Index>();
        prop_oneof![
            (at.clone(), any::<u8>()).prop_map(|(i, b)| Edit::Flip(i, b)),
            (at.clone(), prop::collection::vec(any::<u8>(), 1..24))
                .prop_map(|(i, b)| Edit::Insert(i, b)),
            (at.clone(), 1..64usize).prop_map(|(i, n)| Edit::Delete(i, n)),
            (at.clone(), 1..64usize, 1..50usize).prop_map(|(i, n, k)| Edit::Repeat(i, n, k)),
            (at.clone(), 1..200usize).prop_map(|(i, n)| Edit::Nest(i, n)),
            at.prop_map(Edit::Truncate),
        ]
    }

    pub fn apply(bytes: &mut Vec<u8>, edit: &Edit) {
        let len = bytes.len().max(1);
        match edit {
            Edit::Flip(i, b) => {
                if !bytes.is_empty() {
                    let i = i.index(len);
                    bytes[i] = *b;
                }
            }
            Edit::Insert(i, b) => {
                let i = i.index(len + 1).min(bytes.len());
                bytes.splice(i..i, b.iter().copied());
            }
            Edit::Delete(i, n) => {
                let i = i.index(len).min(bytes.len());
                let end = (i + n).min(bytes.len());
                bytes.drain(i..end);
            }
            Edit::Repeat(i, n, k) => {
                let i = i.index(len).min(bytes.len());
                let end = (i + n).min(bytes.len());
                let part = bytes[i..end].to_vec();
                for _ in 0..*k {
                    bytes.splice(end..end, part.iter().copied());
                }
            }
            Edit::Nest(i, n) => {
                let i = i.index(len + 1).min(bytes.len());
                let open: &[u8] = if n % 2 == 0 { b"[" } else { b"- " };
                let deep: Vec<u8> = open.repeat(*n);
                bytes.splice(i..i, deep);
            }
            Edit::Truncate(i) => bytes.truncate(i.index(len)),
        }
    }

    pub fn file() -> impl Strategy<Value = File> {
        prop::sample::select(ALL.to_vec())
    }
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config {
        cases: 256,
        ..Default::default()
    })]

    /// Arbitrary bytes as any file a user may be handed: never a panic, and a refusal names
    /// the file.
    #[test]
    fn arbitrary_bytes_in_any_input_file_are_refused_naming_the_file_never_a_panic(
        file in fuzz::file(),
        bytes in proptest::collection::vec(proptest::arbitrary::any::<u8>(), 0..2048),
    ) {
        fuzz::check(file, &bytes)?;
    }

    /// A valid file of each kind with a few bytes changed, inserted, deleted, repeated or
    /// nested deep, or cut short: never a panic, and a refusal names the file.
    #[test]
    fn mutated_valid_input_files_load_or_are_refused_naming_the_file_never_a_panic(
        file in fuzz::file(),
        edits in proptest::collection::vec(fuzz::edit(), 1..5),
    ) {
        let mut bytes = file.sample();
        for e in &edits {
            fuzz::apply(&mut bytes, e);
        }
        fuzz::check(file, &bytes)?;
    }
}

/// Each sample loads as it is: the properties above start from valid files.
#[test]
fn the_fuzzers_samples_are_valid_files() {
    for file in [
        fuzz::File::WorldYaml,
        fuzz::File::WorldJson,
        fuzz::File::Spec,
        fuzz::File::Repro,
        fuzz::File::Journal,
        fuzz::File::Report,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file.name());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, file.sample()).unwrap();
        file.load(&path).unwrap_or_else(|e| panic!("{file:?}: {e}"));
    }
}
