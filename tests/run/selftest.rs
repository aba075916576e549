//! `apiconform selftest`: the harness against the embedded emulator under faults (each must be
//! caught by a rule the catalogue expects) and variants (each must pass clean), as a table, a
//! JSON file and an exit code.

use apiconform::emulator::Fault;

/// Runs `apiconform selftest ARGS --json FILE`; returns (exit code, stdout, stderr, JSON).
fn selftest(args: &[&str]) -> (i32, String, String, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("selftest.json");
    let out = crate::bin()
        .arg("selftest")
        .args(args)
        .arg("--json")
        .arg(&json)
        .env("CI", "true")
        .output()
        .expect("the binary runs");
    let report = std::fs::read_to_string(&json)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        report,
    )
}

fn row<'a>(report: &'a serde_json::Value, kind: &str, name: &str) -> &'a serde_json::Value {
    let key = kind.trim_end_matches('s');
    report[kind]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r[key] == name))
        .unwrap_or_else(|| panic!("a {key} row for {name}: {report:#}"))
}

#[test]
fn faults_caught_and_a_variant_clean_exit_0_and_the_json_names_the_rules() {
    let (code, out, err, report) = selftest(&[
        "--fault",
        "limit-off-by-one",
        "--fault",
        "xml-ignored",
        "--variant",
        "reverse-precedence",
        "--cases",
        "200",
        "--seed",
        "3",
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    for name in ["limit-off-by-one", "xml-ignored"] {
        let fault: Fault = name.parse().unwrap();
        let r = row(&report, "faults", name);
        assert_eq!(r["caught"], true, "{r:#}");
        let rule = r["rule"].as_str().expect("the catching rule");
        assert!(fault.caught_by().contains(&rule), "{name}: {rule}");
        assert_eq!(r["specs"], serde_json::json!([fault.spec()]), "{r:#}");
        let n = r["cases_to_first_failure"].as_u64().expect("a count");
        assert!((1..=200).contains(&n), "{name}: {n}");
        // The count is the run's own: the failure it reports was found after that many cases.
        let first = r["failures"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["rule"] == rule)
            .expect("the catching failure is listed");
        assert_eq!(first["found_after"].as_u64(), Some(n));
        assert!(out.contains(name) && out.contains(rule), "the table: {out}");
        assert!(
            err.contains(&format!("fault {name}: caught by {rule}")),
            "{err}"
        );
    }
    let v = row(&report, "variants", "reverse-precedence");
    assert_eq!(v["clean"], true, "{v:#}");
    assert_eq!(v["failures"], serde_json::json!([]));
    assert_eq!(
        v["cases"].as_u64(),
        Some(crate::api_count() as u64 * 200),
        "every spec: {v:#}"
    );
    assert_eq!(report["passed"], true);
    assert!(report["median_cases_to_first_failure"].as_f64().is_some());
    assert!(
        out.contains("2/2 faults caught, 1/1 variants clean"),
        "{out}"
    );
    assert!(out.contains("median cases to the first failure:"), "{out}");
}

/// A fault run where it cannot show (Alibaba's XML on a Tencent API) is not caught: the row says
/// so, and one such row fails the whole self-test however the others went.
#[test]
fn a_fault_not_caught_fails_the_selftest_with_exit_1() {
    let (code, out, err, report) = selftest(&[
        "--fault",
        "xml-ignored",
        "--fault",
        "wrong-http-status",
        "--spec",
        "tencent-cvm/Associate",
        "--cases",
        "150",
    ]);
    assert_eq!(code, 1, "{out}\n{err}");
    for name in ["xml-ignored", "wrong-http-status"] {
        let r = row(&report, "faults", name);
        assert_eq!(r["caught"], false, "{r:#}");
        assert_eq!(r["rule"], serde_json::Value::Null);
        assert_eq!(r["cases_to_first_failure"], serde_json::Value::Null);
        assert_eq!(r["specs"], serde_json::json!(["tencent-cvm/Associate"]));
        assert!(err.contains(&format!("fault {name}: NOT caught")), "{err}");
    }
    assert_eq!(
        report["median_cases_to_first_failure"],
        serde_json::Value::Null
    );
    assert!(out.contains("0/2 faults caught"), "{out}");
    // Too few cases to meet the fault: not caught either.
    let (code, out, _, report) = selftest(&["--fault", "limit-off-by-one", "--cases", "1"]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(row(&report, "faults", "limit-off-by-one")["caught"], false);
}

/// One caught fault and one missed one exit 1, not 0: the exit code is the verdict on every
/// row, and the median counts the missed fault as more than any number.
#[test]
fn one_missed_fault_among_caught_ones_exits_1() {
    let (code, out, err, report) = selftest(&[
        "--fault",
        "xml-ignored",
        "--fault",
        "inconsistent-fail-count",
        "--fault",
        "missing-request-id",
        "--spec",
        "alibaba-ecs",
        "--cases",
        "200",
    ]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert_eq!(row(&report, "faults", "xml-ignored")["caught"], true);
    assert_eq!(
        row(&report, "faults", "inconsistent-fail-count")["caught"],
        true
    );
    // Tencent API 3.0's envelope has no counterpart on Alibaba: not caught there.
    assert_eq!(
        row(&report, "faults", "missing-request-id")["caught"],
        false
    );
    assert!(out.contains("2/3 faults caught"), "{out}");
    // Two of three caught: the middle value is a caught fault's count.
    assert!(
        report["median_cases_to_first_failure"].as_f64().is_some(),
        "{report:#}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let (code, _, err, _) = selftest(&["--fault", "no-such-fault"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--list-faults"), "{err}");
    let (code, _, err, _) = selftest(&["--variant", "no-such-variant"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err, _) = selftest(&["--fault", "xml-ignored", "--spec", "nothing-matches"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no spec matches"), "{err}");
}

#[test]
fn help_explains_the_table_and_the_exit_codes() {
    let out = crate::bin().args(["selftest", "--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    for word in [
        "--fault",
        "--variant",
        "--json",
        "--spec",
        "median",
        "Exit codes",
        "Examples",
    ] {
        assert!(text.contains(word), "{word}: {text}");
    }
}
