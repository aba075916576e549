//! Honest coverage: a run says "N of M rules exercised" in the console, the HTML and the JUnit,
//! lists each rule no judged case exercised with why in the JSON, never says "every check
//! passed" while one is left, and `--require-exercised` makes that a failure. The default run
//! exercises every rule.

use std::path::Path;

use serde_json::Value;

/// A world with CVM instances and key pairs of every product, but no ECM or ECS instance (the
/// situation issue 22 met: those APIs could only send invalid cases).
fn cvm_only_world(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("world.yaml");
    std::fs::write(
        &path,
        "instances:
  - {id: ins-1e4r6y8i, product: cvm, region: ap-guangzhou, os: linux, state: STOPPED, keys: [skey-4e5ty7i8]}
  - {id: ins-3e56fg78, product: cvm, region: ap-guangzhou, os: linux, state: RUNNING}
key_pairs:
  - {id: skey-4e5ty7i8, product: cvm, region: ap-guangzhou}
  - {id: skey-3cvmq2vn, product: ecm, region: ap-guangzhou}
  - {id: test, product: ecs, region: cn-qingdao}
",
    )
    .unwrap();
    path
}

/// An API's unexercised rules, each with its reasons' kinds.
type Unexercised = Vec<(String, Vec<String>)>;

/// Per API, its unexercised rules with their reasons' kinds.
fn not_exercised(report: &Value) -> Vec<(String, Unexercised)> {
    report["apis"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let rules = a["rules_not_exercised"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|n| {
                    let kinds = n["reasons"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|w| w["kind"].as_str().unwrap().to_string())
                        .collect();
                    (n["rule"].as_str().unwrap().to_string(), kinds)
                })
                .collect();
            (a["api"].as_str().unwrap().to_string(), rules)
        })
        .collect()
}

#[test]
fn a_world_without_ecs_or_ecm_instances_says_which_rules_were_not_exercised_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let world = cvm_only_world(dir.path());
    let (html, junit) = (dir.path().join("r.html"), dir.path().join("j.xml"));
    let args = [
        "--world",
        world.to_str().unwrap(),
        "--spec",
        "tencent-ecm",
        "--spec",
        "alibaba-ecs",
        "--cases",
        "80",
        "--no-rate-probes",
        "--report-html",
        html.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ];
    let (code, out, report) = crate::run(&args, dir.path());
    assert_eq!(code, 0, "nothing failed: {out}");
    let line = out
        .lines()
        .find(|l| l.contains("rules exercised, seed"))
        .unwrap_or_else(|| panic!("a summary line: {out}"));
    let words: Vec<&str> = line.split(", ").collect();
    let coverage = words
        .iter()
        .find(|w| w.ends_with("rules exercised"))
        .unwrap();
    let nums: Vec<usize> = coverage.split(' ').filter_map(|w| w.parse().ok()).collect();
    assert!(nums[0] < nums[1], "N < M: {line}");
    for (api, rules) in not_exercised(&report) {
        let product = if api.starts_with("alibaba-ecs") {
            "ECS"
        } else {
            "ECM"
        };
        // The effect rule: AttachKeyPair binds, the others unbind.
        let effect = match api.ends_with("/AttachKeyPair") {
            true => "binds-keys",
            false => "unbinds-keys",
        };
        let mut wanted = vec!["success-shape", effect];
        if product == "ECS" {
            wanted.push("per-item-consistency");
        }
        for rule in wanted {
            let (_, kinds) = rules
                .iter()
                .find(|(r, _)| r == rule)
                .unwrap_or_else(|| panic!("{api}: {rule} listed: {rules:?}"));
            assert_eq!(kinds[0], "no_instance", "{api} {rule}");
        }
        assert!(
            out.contains(&format!("not exercised: {api}: ")),
            "the console names {api}: {out}"
        );
        assert!(
            out.contains(&format!("the world lists no {product} instance")),
            "{out}"
        );
    }
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(!page.contains("every check passed"), "the HTML claims it");
    assert!(page.contains("rules exercised"), "{page}");
    assert!(page.contains("Rules not exercised"), "{page}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("rules exercised"), "{xml}");
    assert!(
        xml.contains("<skipped message=\"not exercised: the world lists no"),
        "{xml}"
    );

    // For CI: any rule not exercised is a failure.
    let mut strict = args.to_vec();
    strict.push("--require-exercised");
    let (code, out, report) = crate::run(&strict, dir.path());
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("FAIL not exercised (--require-exercised)"),
        "{out}"
    );
    assert_eq!(report["require_exercised"], true);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("<failure message=\"not exercised: the world lists no"),
        "{xml}"
    );
    assert!(!std::fs::read_to_string(&html)
        .unwrap()
        .contains("every check passed"));
}

/// The default run against the embedded emulator exercises every rule of every API, and
/// passes `--require-exercised`.
#[test]
fn the_default_run_exercises_every_rule() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, report) = crate::run(&["--require-exercised"], dir.path());
    assert_eq!(code, 0, "{out}");
    for (api, rules) in not_exercised(&report) {
        assert!(rules.is_empty(), "{api}: {rules:?}");
    }
    let total: usize = report["apis"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["rules_total"].as_array().unwrap().len())
        .sum();
    assert!(
        out.contains(&format!("{total} of {total} rules exercised")),
        "{out}"
    );
    assert!(!out.contains("not exercised"), "{out}");
}

/// A budget that stops the run before some APIs start: they are reported, every rule of
/// theirs unexercised because the run stopped.
#[test]
fn apis_a_budget_stopped_before_are_reported_unexercised() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, report) = crate::run(
        &[
            "--spec",
            "tencent-cvm",
            "--cases",
            "200",
            "--jobs",
            "1",
            "--max-requests",
            "20",
            "--no-rate-probes",
        ],
        dir.path(),
    );
    assert_eq!(code, 4, "{out}");
    let apis = not_exercised(&report);
    assert_eq!(apis.len(), 3, "every selected API is reported: {out}");
    let (api, rules) = apis.last().unwrap();
    assert!(!rules.is_empty(), "{api}");
    assert!(
        rules
            .iter()
            .all(|(_, kinds)| kinds.contains(&"stopped".to_string())),
        "{api}: {rules:?}"
    );
}
