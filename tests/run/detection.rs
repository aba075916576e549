//! What a default run catches beyond the codes each rule names: a code outside the documents, a
//! code whose documented meaning is false for the request (both where the outcome is otherwise
//! open), an error body under a status the family keeps for successes, and, under `--strict`,
//! the seeds' literal reading of a RUNNING instance accepted without the force flag. Each check is shown to fire on a fault and not on the variant that
//! takes the other defensible reading.

use crate::{failures, run};

/// Runs 400 cases of `spec` (seed 3) under `against` (`--fault X` or `--variant X`) and `extra`;
/// returns (exit code, output, failures as (rule, failure)).
fn under(
    against: [&str; 2],
    spec: &str,
    extra: &[&str],
) -> (i32, String, Vec<(String, serde_json::Value)>) {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec![against[0], against[1], "--spec", spec];
    args.extend(["--cases", "400", "--seed", "3"]);
    args.extend(extra);
    let (code, out, report) = run(&args, dir.path());
    let found = failures(&report)
        .into_iter()
        .map(|(_, rule, f)| (rule, f))
        .collect();
    (code, out, found)
}

/// The failure naming `rule` that `also` accepts.
fn named<'a>(
    found: &'a [(String, serde_json::Value)],
    rule: &str,
    also: impl Fn(&serde_json::Value) -> bool,
) -> &'a serde_json::Value {
    found
        .iter()
        .find(|(r, f)| r == rule && also(f))
        .map(|(_, f)| f)
        .unwrap_or_else(|| panic!("{rule} is named: {found:#?}"))
}

#[test]
fn a_code_outside_the_documents_fails_where_the_outcome_is_open() {
    // ECM states no OS restriction: a Windows instance may be refused or not, but not with
    // CVM's InvalidInstance.NotSupported, which seed 001 does not list.
    let (code, out, found) = under(["--fault", "foreign-code"], "tencent-ecm", &[]);
    assert_eq!(code, 1, "{out}");
    let f = named(&found, "documented-code", |_| true);
    let actual = f["actual"].as_str().unwrap();
    assert!(actual.contains("InvalidInstance.NotSupported"), "{f}");
    assert_eq!(f["strength"], "seed", "{f}");
    // The other reading (refusing Windows with a code of ECM's own table) stays clean.
    let (code, out, _) = under(["--variant", "ecm-rejects-windows"], "tencent-ecm", &[]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn a_code_whose_meaning_is_false_fails_where_the_outcome_is_open() {
    // An instance named twice: the documents leave the outcome open, but "does not exist" is
    // false for an instance that exists.
    let cvm = "tencent-cvm/Associate";
    let (code, out, found) = under(["--fault", "not-found-for-repeated-id"], cvm, &[]);
    assert_eq!(code, 1, "{out}");
    let f = named(&found, "instance-exists", |_| true);
    let ids = f["case"]["params"]["InstanceIds"].as_array().unwrap();
    assert_eq!(ids.len(), 2, "shrunk to one instance named twice: {f}");
    assert_eq!(ids[0], ids[1], "{f}");
    assert!(f["detail"].as_str().unwrap().contains("false"), "{f}");
    // Refusing duplicates with a code whose meaning fits them is the other reading: clean.
    let (code, out, _) = under(["--variant", "duplicate-ids-rejected"], cvm, &[]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn a_running_instance_accepted_and_left_running_fails_only_the_literal_reading() {
    let fault = ["--fault", "running-accepted-without-shutdown"];
    let cvm = "tencent-cvm/Associate";
    let (code, out, _) = under(fault, cvm, &[]);
    assert_eq!(code, 0, "the default leaves it open\n{out}");
    // (Under --source seed the rule's one reported failure may be another of its cases: the
    // emulator answers the current definitions' state codes, which the seeds do not give.)
    let (code, out, found) = under(fault, cvm, &["--strict"]);
    assert_eq!(code, 1, "{out}");
    let still = |f: &serde_json::Value| f["actual"].as_str().unwrap().contains("still RUNNING");
    let f = named(&found, "instance-stopped", still);
    assert_eq!(f["strength"], "seed", "{f}");
    // A target that shuts the instance down normally (the seed's ForceStop=FALSE) passes the
    // literal reading, and so does the emulator refusing it (the current definitions).
    for variant in ["running-shut-down-normally", "force-stop-leaves-stopped"] {
        let (code, out, _) = under(["--variant", variant], "tencent-cvm", &["--strict"]);
        assert_eq!(code, 0, "{variant}\n{out}");
    }
}

#[test]
fn an_error_under_a_success_status_is_the_envelope_rule_not_a_request_accepted() {
    // Alibaba errors answered with HTTP 200 and the right code: the family documents errors
    // with a 4xx/5xx status. The defect is the status, named on the envelope rule; the code is
    // named as the one the case's rule expects, and nothing says the request "was accepted".
    let (code, out, found) = under(["--fault", "wrong-http-status"], "alibaba-ecs", &[]);
    assert_eq!(code, 1, "{out}");
    assert!(!found.is_empty(), "{out}");
    for (rule, f) in &found {
        assert_eq!(rule, "error-envelope", "{f:#}");
        let detail = f["detail"].as_str().unwrap();
        assert!(
            detail.contains("with HTTP 200") && detail.contains("4xx/5xx"),
            "{f:#}"
        );
        assert!(
            f["actual"]
                .as_str()
                .unwrap()
                .starts_with("HTTP 200 with error "),
            "{f:#}"
        );
        assert_eq!(f["strength"], "current", "{f:#}");
    }
    let f = named(&found, "error-envelope", |f| {
        f["detail"]
            .as_str()
            .is_some_and(|d| d.contains("expects) with HTTP 200"))
    });
    assert!(
        f["detail"].as_str().unwrap().starts_with("answered "),
        "{f:#}"
    );
    assert!(!out.contains("was accepted"), "{out}");
    // Tencent API 3.0 documents its errors with HTTP 200: the correct emulator stays clean.
    let (code, out, _) = under(["--jobs", "2"], "tencent-", &[]);
    assert_eq!(code, 0, "{out}");
}
