//! `run --shard I/N` and `report merge`: the shards of a run, merged, are the run — the same
//! counts, rules, codes and per-rule tallies as one unsharded run of the same seed and cases,
//! against a correct emulator and against faulty ones; inputs that do not fit together are
//! refused naming the file, and a missing shard is said.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// Runs `apiconform report merge ARGS`; returns (exit code, stdout + stderr).
fn merge(args: &[&Path], extra: &[&str]) -> (i32, String) {
    let out = crate::bin()
        .args(["report", "merge"])
        .args(args)
        .args(extra)
        .output()
        .expect("the binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// The three shards of a run with these arguments, each in its own folder (each against its
/// own fresh embedded emulator); returns the folders and their report files.
fn shards(args: &[&str]) -> Vec<(tempfile::TempDir, PathBuf)> {
    (1..=3)
        .map(|i| {
            let dir = tempfile::tempdir().unwrap();
            let shard = format!("{i}/3");
            let mut all = args.to_vec();
            all.extend(["--shard", &shard]);
            let (code, out, report) = crate::run(&all, dir.path());
            assert!(code == 0 || code == 1, "shard {i}: {out}");
            assert_eq!(report["shard"]["index"], i, "shard {i}: {report}");
            let file = dir.path().join("report.json");
            (dir, file)
        })
        .collect()
}

/// What must be equal, per API, between the merged shards and the whole run.
fn essentials(report: &Value) -> Vec<Value> {
    report["apis"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let mut rules: Vec<&str> = a["failures"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["rule"].as_str().unwrap())
                .collect();
            rules.sort();
            let probes: Vec<&Value> = a["rate_probes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| &p["status"])
                .collect();
            serde_json::json!({
                "api": a["api"],
                "cases": a["cases"], "pass": a["pass"], "fail": a["fail"],
                "unspecified": a["unspecified"], "unspecified_by": a["unspecified_by"],
                "not_judged": a["not_judged"],
                "rules_exercised": a["rules_exercised"],
                "codes_provoked": a["codes_provoked"],
                "rule_tallies": a["rule_tallies"],
                "failure_rules": rules,
                "probes": probes,
            })
        })
        .collect()
}

fn merged_shards_equal_the_whole_run(extra: &[&str]) -> Value {
    let mut args = vec!["--seed", "5", "--cases", "120"];
    args.extend(extra);
    let whole_dir = tempfile::tempdir().unwrap();
    let (whole_code, out, whole) = crate::run(&args, whole_dir.path());
    assert!(whole_code == 0 || whole_code == 1, "{out}");
    let parts = shards(&args);
    let files: Vec<&Path> = parts.iter().rev().map(|(_, f)| f.as_path()).collect();
    let out_dir = tempfile::tempdir().unwrap();
    let merged_file = out_dir.path().join("merged.json");
    let html = out_dir.path().join("merged.html");
    let junit = out_dir.path().join("merged.xml");
    let (code, text) = merge(
        &files,
        &[
            "--report-json",
            merged_file.to_str().unwrap(),
            "--report-html",
            html.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
        ],
    );
    assert_eq!(code, whole_code, "{text}");
    assert!(text.contains("merged: shards 1,2,3 of 3"), "{text}");
    assert!(text.contains("cases/s"), "the closing table: {text}");
    let merged: Value =
        serde_json::from_str(&std::fs::read_to_string(&merged_file).unwrap()).unwrap();
    let (a, b) = (essentials(&whole), essentials(&merged));
    assert_eq!(a.len(), crate::api_count());
    for (w, m) in a.iter().zip(&b) {
        assert_eq!(w, m, "the merged shards differ from the whole run");
    }
    // Every rule's tally adds up to what the API counted.
    for api in merged["apis"].as_array().unwrap() {
        let tallies = api["rule_tallies"].as_object().unwrap();
        assert!(!tallies.is_empty(), "{}", api["api"]);
        let fails: u64 = tallies.values().map(|t| t["fail"].as_u64().unwrap()).sum();
        assert_eq!(fails, api["fail"].as_u64().unwrap(), "{}", api["api"]);
    }
    assert!(std::fs::read_to_string(&html)
        .unwrap()
        .contains("shards 1,2,3 of 3"));
    assert!(std::fs::read_to_string(&junit)
        .unwrap()
        .contains("<testsuites"));
    merged
}

/// Against the correct emulator: the three shards merged are the unsharded run, per-rule
/// tallies and probes (sent by shard 1 alone) included.
#[test]
fn three_shards_merged_equal_one_run() {
    let merged = merged_shards_equal_the_whole_run(&[]);
    assert_eq!(merged["apis"][0]["fail"], 0);
}

/// Against emulators with faults: fail counts are non-zero and equal too, and the merged
/// report carries one failure per broken rule.
#[test]
fn three_shards_merged_equal_one_run_under_faults() {
    for fault in ["disassociate-noop", "wrong-http-status"] {
        let merged = merged_shards_equal_the_whole_run(&["--fault", fault]);
        let mut fails = 0;
        for api in merged["apis"].as_array().unwrap() {
            fails += api["fail"].as_u64().unwrap();
            let rules: Vec<&str> = api["failures"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["rule"].as_str().unwrap())
                .collect();
            let unique: std::collections::BTreeSet<&&str> = rules.iter().collect();
            assert_eq!(unique.len(), rules.len(), "one failure per rule: {rules:?}");
        }
        assert!(fails > 0, "{fault}: no failure");
    }
}

/// A missing shard is said, the merge still writes its reports, and the exit code is not 0;
/// reports of another seed or case count, a shard given twice and a file that is not a run
/// report are refused with exit 2, naming the file.
#[test]
fn merge_refuses_what_does_not_fit_and_says_a_missing_shard() {
    let args = ["--seed", "3", "--cases", "20", "--no-rate-probes"];
    let parts = shards(&args);
    let f = |i: usize| parts[i].1.as_path();
    let out = tempfile::tempdir().unwrap();
    let json = out.path().join("m.json");
    let (code, text) = merge(&[f(0), f(2)], &["--report-json", json.to_str().unwrap()]);
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("shards 1,3 of 3: shard 2 missing"), "{text}");
    assert!(json.exists(), "the merge still writes");

    let (code, text) = merge(&[f(0), f(0)], &[]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("is given twice"), "{text}");

    let other = tempfile::tempdir().unwrap();
    let (_, _, _) = crate::run(
        &[
            "--seed",
            "4",
            "--cases",
            "20",
            "--no-rate-probes",
            "--shard",
            "2/3",
        ],
        other.path(),
    );
    let other_seed = other.path().join("report.json");
    let (code, text) = merge(&[f(0), &other_seed], &[]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains(other_seed.to_str().unwrap()),
        "names the file: {text}"
    );
    assert!(text.contains("the seed is 4"), "{text}");

    let (_, _, _) = crate::run(
        &[
            "--seed",
            "3",
            "--cases",
            "21",
            "--no-rate-probes",
            "--shard",
            "2/3",
        ],
        other.path(),
    );
    let (code, text) = merge(&[f(0), &other_seed], &[]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("--cases is 21"), "{text}");

    let junk = out.path().join("junit.xml");
    std::fs::write(&junk, "<testsuites/>").unwrap();
    let (code, text) = merge(&[f(0), &junk], &[]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("junit.xml: not a run report"), "{text}");
}

/// One run per product (each its own `--spec`, its own target) merges into one report: every
/// count kept, the cases the force-stop gate held back still "not sent" (not turned into
/// throttled ones), each run listed; the same product twice is refused with the fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_of_different_products_merge_keeping_not_sent() {
    let (url, _) = crate::emulator_behind(Default::default(), |_, r| r).await;
    let remote = url.replace("127.0.0.1", "0.0.0.0");
    tokio::task::spawn_blocking(move || {
        let cvm_dir = tempfile::tempdir().unwrap();
        let world = cvm_dir.path().join("world.json");
        let w = apiconform::world::World::default_world();
        std::fs::write(&world, serde_json::to_string(&w).unwrap()).unwrap();
        // Remote-looking, without --allow-force-stop: cases that could stop a RUNNING
        // instance are held back.
        let (code, out, cvm) = crate::run(
            &[
                "--target",
                &remote,
                "--world",
                world.to_str().unwrap(),
                "--spec",
                "tencent-cvm",
                "--cases",
                "40",
                "--rate",
                "0",
            ],
            cvm_dir.path(),
        );
        assert_eq!(code, 0, "{out}");
        let held = |r: &Value| -> u64 {
            r["apis"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|a| a["not_sent"].as_object().cloned().unwrap_or_default())
                .map(|(_, n)| n.as_u64().unwrap())
                .sum()
        };
        assert!(held(&cvm) > 0, "the gate held cases back: {out}");
        let ecs_dir = tempfile::tempdir().unwrap();
        let (code, out, ecs) = crate::run(
            &["--spec", "alibaba-ecs", "--cases", "40", "--seed", "9"],
            ecs_dir.path(),
        );
        assert_eq!(code, 0, "{out}");
        let out_dir = tempfile::tempdir().unwrap();
        let json = out_dir.path().join("merged.json");
        let files = [
            ecs_dir.path().join("report.json"),
            cvm_dir.path().join("report.json"),
        ];
        let paths: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
        let (code, text) = merge(&paths, &["--report-json", json.to_str().unwrap()]);
        assert_eq!(code, 0, "{text}");
        assert!(
            text.contains(
                "merged: 2 runs: --spec alibaba-ecs (whole run); --spec tencent-cvm (whole run)"
            ),
            "{text}"
        );
        assert!(
            !text.contains("throttling answers"),
            "not_sent kept: {text}"
        );
        assert!(
            text.contains("cases not sent: each could stop a RUNNING"),
            "{text}"
        );
        let merged: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        assert_eq!(held(&merged), held(&cvm));
        let sum = |r: &Value, k: &str| -> u64 {
            r["apis"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a[k].as_u64().unwrap())
                .sum()
        };
        for k in [
            "cases",
            "pass",
            "fail",
            "unspecified",
            "not_judged",
            "retries",
        ] {
            assert_eq!(sum(&merged, k), sum(&cvm, k) + sum(&ecs, k), "{k}");
        }
        let count = |r: &Value| r["apis"].as_array().unwrap().len();
        assert_eq!(count(&merged), count(&cvm) + count(&ecs));
        // The same product in two whole runs would count its cases twice.
        let twice = [paths[0], paths[0]];
        let (code, text) = merge(&twice, &[]);
        assert_eq!(code, 2, "{text}");
        assert!(text.contains("= help: merge one report per API"), "{text}");
    })
    .await
    .unwrap();
}

/// A file's claimed shard is bounded before anything is counted up to it (issue 23, items 4
/// and 13): a count of 4294967295 grew a merge to 24 GB listing the missing shards, and index 0
/// or an index above the count was taken for a missing shard (exit 3). Each is "not a shard",
/// exit 2, naming the file.
#[test]
fn a_shard_no_run_writes_is_refused_naming_the_file() {
    use apiconform::run::{RunReport, Shard};
    let dir = tempfile::tempdir().unwrap();
    for (index, count) in [(1, 4_294_967_295), (0, 3), (4, 3), (1, 0), (1001, 1001)] {
        let report = RunReport {
            seed: 1,
            cases_per_api: 5,
            shard: Some(Shard { index, count }),
            ..Default::default()
        };
        let file = dir.path().join(format!("report-{index}-{count}.json"));
        std::fs::write(&file, serde_json::to_string(&report).unwrap()).unwrap();
        let (code, text) = merge(&[&file], &[]);
        assert_eq!(code, 2, "{index}/{count}: {text}");
        assert!(text.contains("not a shard"), "{index}/{count}: {text}");
        assert!(
            text.contains(file.file_name().unwrap().to_str().unwrap()),
            "{text}"
        );
    }
}
