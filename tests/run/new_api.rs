//! APIs as data: an API of a known family whose effect is in the specs' vocabulary needs a spec
//! file and nothing else. `fixtures/new-api/AddInstancesKeyPairs.yaml` (made up, effect `add`)
//! is copied beside the built-in specs and run: the emulator serves it from the file, the
//! generators break its rules, the oracle judges it, and the catalogue's faults that apply to
//! it are caught. ECS `AttachKeyPair` (specs/alibaba-ecs/AttachKeyPair.yaml, from the vendor's
//! definitions) is the shipped case: it makes `DetachKeyPair` reversible.

use std::path::Path;

use crate::{failures, run};

/// The built-in specs and the test-only API, in a folder of their own.
fn specs_with_new_api(dir: &Path) -> String {
    let specs = dir.join("specs");
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("specs"), &specs);
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/run/fixtures/new-api/AddInstancesKeyPairs.yaml"),
        specs.join("tencent-cvm/AddInstancesKeyPairs.yaml"),
    )
    .unwrap();
    specs.to_str().unwrap().to_string()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn failed_rules(report: &serde_json::Value) -> Vec<String> {
    failures(report)
        .into_iter()
        .map(|(_, rule, _)| rule)
        .collect()
}

#[test]
fn a_new_api_of_a_known_family_is_served_and_judged_from_its_spec_file_alone() {
    let dir = tempfile::tempdir().unwrap();
    let specs = specs_with_new_api(dir.path());
    let base = [
        "--specs-dir",
        &specs,
        "--spec",
        "AddInstancesKeyPairs",
        "--cases",
        "200",
    ];

    // The emulator serves it correctly: every rule exercised, nothing failed.
    let (code, out, report) = run(&base, dir.path());
    assert_eq!(code, 0, "{out}");
    let apis = report["apis"].as_array().unwrap();
    assert_eq!(apis.len(), 1, "{out}");
    assert_eq!(apis[0]["api"], "tencent-cvm/AddInstancesKeyPairs");
    let exercised = out
        .lines()
        .find_map(|l| l.split(", ").find(|w| w.ends_with("rules exercised")))
        .unwrap_or_else(|| panic!("a summary line: {out}"));
    let n: Vec<&str> = exercised.split(' ').collect();
    assert_eq!(n[0], n[2], "every rule exercised: {out}");

    // Faults of the catalogue, applied to the spec-served API, are caught by its own rules.
    for (fault, rule) in [
        ("windows-accepted", "instance-linux"),
        ("limit-off-by-one", "instance-ids-limit"),
    ] {
        let mut args = base.to_vec();
        args.extend(["--fault", fault]);
        let (code, out, report) = run(&args, dir.path());
        assert_eq!(code, 1, "{fault}: {out}");
        assert!(
            failed_rules(&report).iter().any(|r| r == rule),
            "{fault}: {out}"
        );
    }

    // The other reading of the open precedence is not failed.
    for seed in ["1", "2"] {
        let mut args = base.to_vec();
        args.extend(["--variant", "reverse-precedence", "--seed", seed]);
        let (code, out, _) = run(&args, dir.path());
        assert_eq!(code, 0, "seed {seed}: {out}");
    }
}

#[test]
fn ecs_attach_key_pair_is_judged_and_makes_detach_reversible() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = run(&["--spec", "alibaba-ecs", "--cases", "200"], dir.path());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("alibaba-ecs/AttachKeyPair"), "{out}");

    // An attach that keeps the key pair bound before breaks the replacement the definitions
    // state; a FailCount that counts successes breaks the per-item consistency.
    for (fault, rule) in [
        ("associate-appends", "binds-keys"),
        ("inconsistent-fail-count", "per-item-consistency"),
    ] {
        let (code, out, report) = run(
            &[
                "--spec",
                "AttachKeyPair",
                "--cases",
                "200",
                "--fault",
                fault,
            ],
            dir.path(),
        );
        assert_eq!(code, 1, "{fault}: {out}");
        assert!(
            failures(&report)
                .iter()
                .any(|(api, r, _)| api == "alibaba-ecs/AttachKeyPair" && r == rule),
            "{fault}: {out}"
        );
    }

    // The plan: what DetachKeyPair unbinds, AttachKeyPair binds again.
    let (code, out, report) = run(&["--spec", "alibaba-ecs", "--plan"], dir.path());
    assert_eq!(code, 0, "{out}");
    let detach = report["plan"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["api"] == "alibaba-ecs/DetachKeyPair")
        .expect("a plan for DetachKeyPair")
        .clone();
    assert_eq!(
        detach["reversible"]["Ok"], "alibaba-ecs/AttachKeyPair",
        "{detach}"
    );
}
