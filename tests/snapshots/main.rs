//! The snapshot corpus: every API's fixed exchanges against the in-process emulator, compared
//! with `snapshots/` (insta's `.snap` format; `cargo insta review` accepts changes).

use std::collections::BTreeSet;
use std::path::PathBuf;

use apiconform::emulator::{Config, Fault};
use apiconform::protocol::{self, OutcomeResult};
use apiconform::snapshot::{self, Mode, Status};
use apiconform::spec::{self, SpecSet};
use apiconform::world::World;

fn snapshots_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("snapshots")
}

fn set() -> SpecSet {
    spec::load_embedded().expect("embedded specs load")
}

/// `cargo test` checks every corpus; a difference fails with its diff and, as insta does,
/// leaves a `.snap.new` for `cargo insta review` (`INSTA_UPDATE=always` accepts, `=no` or CI
/// writes nothing).
#[test]
fn every_corpus_matches_its_snapshots() {
    let set = set();
    let started = std::time::Instant::now();
    let entries = snapshot::corpus(&set, &World::default_world());
    let recorded = snapshot::record_in_process(&set, &Config::default(), &entries)
        .expect("the in-process emulator answers");
    let report = snapshot::compare(&snapshots_dir(), &recorded, Mode::from_env()).unwrap();
    eprintln!(
        "{} exchanges {:?} checked in {:.2}s",
        entries.len(),
        snapshot::counts(&entries),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(report.differences(), 0, "\n{}", report.render());
}

/// An emulator bug changes the corpus: the check fails with a readable diff naming the exchange.
#[test]
fn an_emulator_fault_fails_with_a_diff_naming_the_exchange() {
    let set = set();
    let api = set
        .apis
        .iter()
        .find(|a| a.name == "tencent-cvm/AssociateInstancesKeyPairs")
        .unwrap();
    let entries = snapshot::api_corpus(&set, api, &World::default_world());
    let config = Config {
        faults: [Fault::AssociateAppends].into(),
        ..Config::default()
    };
    let recorded = snapshot::record_in_process(&set, &config, &entries)
        .expect("the in-process emulator answers");
    // Check only: a self-test must not leave pending files behind.
    let report = snapshot::compare(&snapshots_dir(), &recorded, Mode::Check).unwrap();
    assert!(report.differences() > 0, "{}", report.render());
    assert!(report.pending.is_empty());
    let text = report.render();
    // A valid binding over instances that already hold keys shows the appended keys.
    let (name, ..) = report
        .results
        .iter()
        .find(|(name, _, status)| name.contains(" valid.") && *status != Status::Same)
        .unwrap_or_else(|| panic!("a valid exchange changed:\n{text}"));
    assert!(text.contains(&format!("changed: {name} (")), "{text}");
    assert!(text.contains(&format!("--- {name} (stored)")), "{text}");
    assert!(text.contains(&format!("+++ {name} (now)")), "{text}");
    // Only exchanges that bind keys over old ones change; errors stay the same.
    for (name, _, status) in &report.results {
        if name.contains(" rule.") || name.contains(" family.") {
            assert_eq!(*status, Status::Same, "{name} changed:\n{text}");
        }
    }
}

/// The corpus covers every rule, every listed unspecified situation the default world allows,
/// and for every rule it breaks, a documented code (the others are the same rule's alternatives:
/// the seed's code beside the current definitions' one).
#[test]
fn the_corpus_covers_rules_situations_and_codes() {
    let set = set();
    let world = World::default_world();
    let entries = snapshot::corpus(&set, &world);
    let config = Config::default();
    let mut problems = String::new();
    for api in &set.apis {
        let mine: Vec<snapshot::Entry> = entries
            .iter()
            .filter(|e| e.api == api.name)
            .cloned()
            .collect();
        let exercised: BTreeSet<String> = mine
            .iter()
            .flat_map(|e| apiconform::oracle::expect(&set, api, &world, &e.case).rules)
            .collect();
        // `response_format` is judged on every response, not expected of a case: it is covered
        // when the corpus asks for every format.
        let formats: BTreeSet<String> = mine
            .iter()
            .map(|e| format!("{:?}", e.case.transport.format))
            .collect();
        let family = set.family(api.spec.api.family);
        let judged_on_formats = |r: &str| {
            family
                .rules
                .iter()
                .any(|x| x.id == r && x.check.kind_name() == "response_format")
                && formats.len() == 3
        };
        // A response-set property (`request_id_unique`) is judged over a run's answers, never
        // by one exchange: the corpus holds no case for it.
        let over_a_run = |r: &str| {
            api.spec
                .rules
                .iter()
                .any(|x| x.id == r && x.check.kind_name() == "request_id_unique")
        };
        for r in apiconform::oracle::all_rules(&set, api) {
            if !exercised.contains(&r) && !judged_on_formats(&r) && !over_a_run(&r) {
                problems.push_str(&format!("{}: rule {r} not exercised\n", api.name));
            }
        }
        for u in snapshot::missing_situations(api, &mine) {
            // The default world holds no ECS key pair outside cn-hangzhou.
            if u != "key-pair-other-region" {
                problems.push_str(&format!("{}: situation {u} missing\n", api.name));
            }
        }
        let now = apiconform::emulator::server::now();
        let codes: BTreeSet<String> = mine
            .iter()
            .enumerate()
            .filter_map(|(n, e)| {
                let emu = apiconform::emulator::Emulator::new(config.clone());
                let req = apiconform::protocol::request::sign_case(
                    api,
                    &e.case,
                    "127.0.0.1:9000",
                    &config.keys,
                    now,
                    n as u64,
                )
                .ok()?;
                if e.case.auth == apiconform::case::AuthFault::ReusedNonce {
                    emu.handle(&req, now);
                }
                match protocol::decode(api.spec.api.family, &emu.handle(&req, now)).result {
                    OutcomeResult::Error { code, .. } => Some(code),
                    _ => None,
                }
            })
            .collect();
        for rule in &api.spec.rules {
            let broken = mine.iter().any(|e| {
                e.id == format!("rule.{}", rule.id)
                    || e.id.starts_with(&format!("rule.{}.", rule.id))
            });
            if broken
                && !rule.errors.is_empty()
                && !rule.errors.iter().any(|e| codes.contains(&e.code))
            {
                problems.push_str(&format!(
                    "{}: no code of rule {} answered\n",
                    api.name, rule.id
                ));
            }
        }
        for code in apiconform::oracle::documented_codes(api) {
            let alternative = api.spec.rules.iter().any(|r| {
                r.errors.iter().any(|e| e.code == code)
                    && r.errors.iter().any(|e| codes.contains(&e.code))
            });
            if !codes.contains(&code) && !alternative {
                problems.push_str(&format!(
                    "{}: documented code {code} never answered\n",
                    api.name
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{problems}");
}

/// Files are written in insta's format (insta reads them back), pending changes go to
/// `.snap.new`, and record mode rewrites and prunes.
#[test]
fn files_are_insta_snapshots_and_modes_write_as_insta_does() {
    let set = set();
    let api = set
        .apis
        .iter()
        .find(|a| a.name == "tencent-cvm/UnBindInstanceKey")
        .unwrap();
    let entries = snapshot::api_corpus(&set, api, &World::default_world());
    let recorded = snapshot::record_in_process(&set, &Config::default(), &entries[..3])
        .expect("the in-process emulator answers");
    let dir = tempfile::tempdir().unwrap();
    let report = snapshot::compare(dir.path(), &recorded, Mode::Check).unwrap();
    assert_eq!(report.differences(), 3, "new snapshots are differences");
    assert!(report
        .render()
        .contains("new: tencent-cvm/UnBindInstanceKey"));
    snapshot::compare(dir.path(), &recorded, Mode::Record).unwrap();
    let path = dir.path().join(&recorded[0].file);
    let snap = insta::Snapshot::from_file(&path).unwrap();
    assert_eq!(
        snap.metadata().expression(),
        Some(recorded[0].name.as_str())
    );
    assert!(snap.metadata().description().is_some());
    assert_eq!(
        snapshot::compare(dir.path(), &recorded, Mode::Check)
            .unwrap()
            .differences(),
        0
    );
    // A changed snapshot: a diff, and a pending file beside it.
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("status: 200", "status: 201")).unwrap();
    let report = snapshot::compare(dir.path(), &recorded, Mode::Pending).unwrap();
    assert_eq!(report.differences(), 1);
    assert!(
        report.render().contains("-  status: 201"),
        "{}",
        report.render()
    );
    let pending = path.with_extension("snap.new");
    assert!(pending.exists());
    // What `cargo insta review` does on accept: the pending file becomes the snapshot.
    std::fs::rename(&pending, &path).unwrap();
    assert_eq!(
        snapshot::compare(dir.path(), &recorded, Mode::Check)
            .unwrap()
            .differences(),
        0
    );
    // A snapshot the corpus no longer has is reported, and pruned on record.
    std::fs::write(path.with_file_name("stale.snap"), "---\n---\nx\n").unwrap();
    assert_eq!(
        snapshot::compare(dir.path(), &recorded, Mode::Check)
            .unwrap()
            .unreferenced
            .len(),
        1
    );
    snapshot::compare(dir.path(), &recorded, Mode::Record).unwrap();
    assert!(!path.with_file_name("stale.snap").exists());
}

/// The command: exit 0 same, 1 differences (with a pending file), 2 usage, 3 unreachable.
#[test]
fn the_snapshot_command_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let cmd = || {
        let mut c = assert_cmd::Command::cargo_bin("apiconform").unwrap();
        c.env_remove("INSTA_UPDATE").env_remove("CI");
        c.arg("snapshot").arg("--dir").arg(dir.path());
        c
    };
    cmd()
        .args(["--spec", "UnBind", "--update"])
        .assert()
        .code(0);
    cmd().args(["--spec", "UnBind"]).assert().code(0);
    cmd()
        .args(["--spec", "UnBind", "--fault", "disassociate-noop"])
        .assert()
        .code(1)
        .stdout(predicates::str::contains(
            "changed: tencent-cvm/UnBindInstanceKey valid.single",
        ));
    let pending = dir
        .path()
        .join("tencent-cvm/UnBindInstanceKey/valid.single.snap.new");
    assert!(pending.exists());
    cmd().args(["--spec", "no-such-api"]).assert().code(2);
    cmd()
        .args(["--spec", "UnBind", "--target", "http://127.0.0.1:1"])
        .assert()
        .code(3);
}
