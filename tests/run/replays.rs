//! `apiconform replay` of repro files that claim too much or cannot be sent (issue 23, items 5
//! and 9): a burst larger than the documented limit needs is refused naming the field and the
//! bound; a case the guards hold back is "not reproduced", never a pass.

use std::path::{Path, PathBuf};
use std::process::Command;

use apiconform::emulator::Config;
use apiconform::protocol::{self, HttpResponse};

/// Runs `apiconform replay FILE ARGS`; returns the exit code and everything it printed.
fn replay(file: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_apiconform"))
        .arg("replay")
        .arg(file)
        .args(args)
        .output()
        .expect("the binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// The repro of `rule` a run with `args` wrote into `dir`.
fn repro_of(args: &[&str], dir: &Path, rule: &str) -> serde_json::Value {
    let (code, out, _) = crate::run(args, dir);
    assert_eq!(code, 1, "{out}");
    std::fs::read_dir(dir.join("repros"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .map(|t| serde_json::from_str::<serde_json::Value>(&t).unwrap())
        .find(|f| f["rule"] == rule)
        .unwrap_or_else(|| panic!("no repro of {rule}: {out}"))
}

fn write(dir: &Path, name: &str, value: &serde_json::Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, value.to_string()).unwrap();
    path
}

/// A rate-limit repro's burst is what the documented limit needs (ECM's 20/s: 30 requests at
/// once); 2^64 - 1 aborted on allocation and 100,000 were really sent. Each is refused, exit 2,
/// naming the field and the bound; the burst the run wrote still replays.
#[test]
fn a_burst_beyond_what_the_documented_limit_needs_is_refused_naming_field_and_bound() {
    let dir = tempfile::tempdir().unwrap();
    let repro = repro_of(
        &[
            "--fault",
            "never-throttles",
            "--spec",
            "tencent-ecm",
            "--cases",
            "3",
        ],
        dir.path(),
        "rate-limit",
    );
    assert_eq!(repro["burst"], 30, "{repro}");
    for burst in [u64::MAX, 100_000, 31, 0] {
        let mut edited = repro.clone();
        edited["burst"] = burst.into();
        let file = write(dir.path(), &format!("burst-{burst}.json"), &edited);
        let (code, out) = replay(&file, &[]);
        assert_eq!(code, 2, "{burst}: {out}");
        assert!(
            out.contains(&format!("`burst` is {burst}")) && out.contains("1 to 30 requests"),
            "{burst}: {out}"
        );
        assert!(out.contains("20/s"), "names the documented limit: {out}");
    }
    let file = write(dir.path(), "as-written.json", &repro);
    let (code, out) = replay(&file, &[]);
    assert_eq!(code, 0, "the correct emulator throttles the burst: {out}");
}

/// A case the guard does not send — it names an instance the world does not list, and the
/// remote target says it holds it — is "not reproduced: not sent because …", exit 6; it was
/// "no longer fails … response 0", exit 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_case_the_guard_holds_back_is_not_reproduced() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let mut repro = tokio::task::spawn_blocking(move || {
        repro_of(
            &[
                "--fault",
                "missing-request-id",
                "--spec",
                "tencent-cvm/AssociateInstancesKeyPairs",
                "--cases",
                "5",
                "--no-rate-probes",
            ],
            &d,
            "success-shape",
        )
    })
    .await
    .unwrap();
    repro["case"]["params"]["InstanceIds"] = serde_json::json!(["ins-unlisted1"]);
    let file = write(dir.path(), "unlisted.json", &repro);
    let world = dir.path().join("world.json");
    std::fs::write(
        &world,
        serde_json::to_string(&apiconform::world::World::default_world()).unwrap(),
    )
    .unwrap();
    // A target that says it holds every instance it is asked about.
    let (url, _) = crate::emulator_behind(Config::default(), |req, resp| {
        let Ok(p) = protocol::parse_request(req) else {
            return resp;
        };
        if p.action != "DescribeInstances" {
            return resp;
        }
        let set: Vec<serde_json::Value> = p.params["InstanceIds"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|id| {
                serde_json::json!({"InstanceId": id, "InstanceState": "STOPPED",
                    "OsName": "CentOS 7.9 64bit", "LoginSettings": {"KeyIds": []}})
            })
            .collect();
        let body = serde_json::json!({"Response": {"TotalCount": set.len(),
            "InstanceSet": set, "RequestId": "11111111-2222-3333-4444-555555555555"}});
        HttpResponse {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        }
    })
    .await;
    let remote = url.replace("127.0.0.1", "0.0.0.0");
    let (code, out) = tokio::task::spawn_blocking(move || {
        replay(
            &file,
            &["--target", &remote, "--world", world.to_str().unwrap()],
        )
    })
    .await
    .unwrap();
    assert_eq!(code, 6, "{out}");
    assert!(out.contains("not reproduced: not sent because"), "{out}");
    assert!(out.contains("ins-unlisted1"), "{out}");
    assert!(!out.contains("no longer fails"), "{out}");
}

/// Runs `apiconform replay FILE ARGS` on a blocking thread (the test's runtime serves the
/// target meanwhile).
async fn replay_bg(file: PathBuf, args: Vec<String>) -> (i32, String) {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        replay(&file, &args)
    })
    .await
    .unwrap()
}

/// The repro of a state failure a run under `fault` wrote (in a blocking thread).
async fn repro_under(dir: &Path, fault: &str, spec: &str, rule: &str) -> serde_json::Value {
    let (d, fault, spec, rule) = (
        dir.to_path_buf(),
        fault.to_string(),
        spec.to_string(),
        rule.to_string(),
    );
    tokio::task::spawn_blocking(move || {
        repro_of(
            &[
                "--fault",
                &fault,
                "--spec",
                &spec,
                "--cases",
                "30",
                "--no-rate-probes",
            ],
            &d,
            &rule,
        )
    })
    .await
    .unwrap()
}

/// A failure judged on the observed state (a batch that must fail binds its keys anyway)
/// changes what it names: a second replay against the still-faulty target met the keys bound
/// already and said "no longer fails (Pass)". The repro records what the instance held before
/// the failing call, and every replay puts it back first through the specs' own calls, saying
/// so: three runs, three failures. The correct emulator: FIXED, exit 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_failure_replays_from_the_state_it_met_every_time() {
    let dir = tempfile::tempdir().unwrap();
    let repro = repro_under(
        dir.path(),
        "non-atomic-batch",
        "tencent-cvm/AssociateInstancesKeyPairs",
        "binds-keys",
    )
    .await;
    let met = &repro["preconditions"]["instances"];
    assert!(
        met.as_array().is_some_and(|m| !m.is_empty()),
        "the repro records what the instances held: {repro}"
    );
    assert!(
        met[0]["state"].is_string() && met[0]["keys"].is_array(),
        "{met}"
    );
    assert!(
        repro["code"].is_string(),
        "the failing call's code: {repro}"
    );
    let file = write(dir.path(), "state.json", &repro);
    let mut faults = std::collections::BTreeSet::new();
    faults.insert(apiconform::emulator::Fault::NonAtomicBatch);
    let config = Config {
        faults,
        ..Config::default()
    };
    let (url, _) = crate::emulator_behind(config, |_, resp| resp).await;
    let args = vec!["--target".into(), url, "--runs".into(), "3".into()];
    let (code, out) = replay_bg(file.clone(), args).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("STILL FAILS: 3 of 3 runs failed"), "{out}");
    assert!(!out.contains("no longer fails"), "{out}");
    // The second and third runs find the keys the first bound, and put the old ones back.
    assert!(
        out.matches("set to").count() >= 2,
        "says what it set up: {out}"
    );
    assert!(out.contains("why:") && out.contains("(code "), "{out}");
    let (code, out) = replay_bg(file, vec![]).await;
    assert_eq!(code, 0, "the correct embedded emulator: {out}");
    assert!(out.contains("FIXED"), "{out}");
}

/// A target that fails one call in two is neither fixed nor a steady failure: FLAKY, k of N.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_failing_every_other_call_is_flaky() {
    let dir = tempfile::tempdir().unwrap();
    let repro = repro_under(
        dir.path(),
        "missing-request-id",
        "tencent-cvm/AssociateInstancesKeyPairs",
        "success-shape",
    )
    .await;
    let file = write(dir.path(), "shape.json", &repro);
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let (url, _) = crate::emulator_behind(Config::default(), move |req, resp| {
        let associate =
            protocol::parse_request(req).is_ok_and(|p| p.action == "AssociateInstancesKeyPairs");
        if !associate || calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) % 2 == 1 {
            return resp;
        }
        let body = String::from_utf8_lossy(&resp.body).replace("RequestId", "RequestID");
        HttpResponse {
            body: body.into_bytes(),
            ..resp
        }
    })
    .await;
    let args = vec!["--target".into(), url, "--runs".into(), "4".into()];
    let (code, out) = replay_bg(file, args).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FLAKY: 2 of 4 runs failed"), "{out}");
}

/// A record of what a client sent (`proxy --record`, side client) cannot be replayed by
/// re-signing: apiconform's own request would be correct, and the client's bug would "pass".
/// It is "not reproduced", exit 6, never "no longer fails".
#[test]
fn a_client_side_record_is_never_a_pass() {
    let dir = tempfile::tempdir().unwrap();
    let mut repro = repro_of(
        &[
            "--fault",
            "missing-request-id",
            "--spec",
            "tencent-cvm/AssociateInstancesKeyPairs",
            "--cases",
            "5",
            "--no-rate-probes",
        ],
        dir.path(),
        "success-shape",
    );
    repro["side"] = "client".into();
    repro["exchange"] = 1.into();
    repro["findings"] = serde_json::json!([]);
    let file = write(dir.path(), "client.json", &repro);
    let (code, out) = replay(&file, &[]);
    assert_eq!(code, 6, "{out}");
    assert!(
        out.contains("not reproduced") && out.contains("client-side"),
        "{out}"
    );
    assert!(
        !out.contains("no longer fails") && !out.contains("FIXED"),
        "{out}"
    );
}

/// `repro curl FILE` prints a curl line signed now: it carries no `<redacted>`, its
/// `Authorization` keeps the commas TC3 needs, and the emulator accepts its signature (read
/// back as the request curl sends). The secret key is never printed.
#[test]
fn repro_curl_prints_a_runnable_freshly_signed_command() {
    let dir = tempfile::tempdir().unwrap();
    let repro = repro_of(
        &[
            "--fault",
            "missing-request-id",
            "--spec",
            "tencent-cvm/AssociateInstancesKeyPairs",
            "--cases",
            "5",
            "--no-rate-probes",
        ],
        dir.path(),
        "success-shape",
    );
    assert!(
        repro["request"]["body"].is_string(),
        "the body is text: {}",
        repro["request"]
    );
    let file = write(dir.path(), "shape.json", &repro);
    let out = crate::bin()
        .args(["repro", "curl"])
        .arg(&file)
        .args(["--target", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        line.starts_with("curl ") && !line.contains("<redacted>"),
        "{line}"
    );
    if line.contains("TC3-HMAC-SHA256") {
        assert!(line.contains(", SignedHeaders="), "{line}");
    }
    let (_, key) = apiconform::emulator::TENCENT_DEFAULT;
    assert!(!line.contains(key), "the secret key: {line}");
    let req = apiconform::protocol::capture::curl(&line).unwrap();
    let emu = apiconform::emulator::Emulator::new(Config::default());
    let resp = emu.handle(&req, apiconform::emulator::server::now());
    let body = String::from_utf8_lossy(&resp.body);
    assert!(!body.contains("AuthFailure"), "{body}");
    assert!(body.contains("RequestId"), "{body}");
}

/// `repro bundle` writes one Markdown report: the API, the document's quote, the minimal
/// request and the answer in fences, the strength, the curl line without secrets, and the
/// replay verdict (the correct embedded emulator: FIXED).
#[test]
fn repro_bundle_writes_a_self_contained_markdown_report() {
    let dir = tempfile::tempdir().unwrap();
    let repro = repro_of(
        &[
            "--fault",
            "non-atomic-batch",
            "--spec",
            "tencent-cvm/AssociateInstancesKeyPairs",
            "--cases",
            "30",
            "--no-rate-probes",
        ],
        dir.path(),
        "binds-keys",
    );
    let file = write(dir.path(), "state.json", &repro);
    let md = dir.path().join("report.md");
    let out = crate::bin()
        .args(["repro", "bundle"])
        .arg(&file)
        .arg("-o")
        .arg(&md)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = std::fs::read_to_string(&md).unwrap();
    assert!(
        text.contains("## tencent-cvm/AssociateInstancesKeyPairs — rule `binds-keys`"),
        "{text}"
    );
    let quote = repro["source"]["quote"].as_str().unwrap();
    assert!(text.contains(&format!("> {quote}")), "{text}");
    assert!(text.contains("stated in a seed"), "{text}");
    assert!(
        text.contains("```http\nPOST") || text.contains("```http\nGET"),
        "{text}"
    );
    assert!(text.contains("before the call, ins-"), "{text}");
    assert!(text.contains("replay: **FIXED"), "{text}");
    let (id, key) = apiconform::emulator::TENCENT_DEFAULT;
    assert!(!text.contains(id) && !text.contains(key), "{text}");
}

/// A repro written by hand needs the API, the rule and the case (its parameters, region and
/// transport): the rest says what was seen, and replay does without it. It took ten tries, one
/// missing field named at a time.
#[test]
fn a_hand_written_repro_needs_only_api_rule_and_case() {
    let dir = tempfile::tempdir().unwrap();
    let repro = serde_json::json!({
        "api": "tencent-cvm/DisassociateInstancesKeyPairs",
        "rule": "meaning-holds",
        "case": {
            "api": "tencent-cvm/DisassociateInstancesKeyPairs",
            "region": "ap-guangzhou",
            "params": {"InstanceIds": ["ins-cs000000", "ins-cs000000"], "KeyIds": ["skey-ck000000"]},
            "transport": {"method": "POST", "signature": "tc3-hmac-sha256", "format": "default", "index_base": 0}
        }
    });
    let file = write(dir.path(), "by-hand.json", &repro);
    let (code, out) = replay(&file, &[]);
    assert!(!out.contains("missing field"), "{out}");
    assert_eq!(code, 0, "the correct emulator: {out}");
    assert!(
        out.contains("FIXED") && out.contains("response: HTTP 200"),
        "{out}"
    );
}
