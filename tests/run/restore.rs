//! Leaving the world as found: against a target that looks remote (a loopback emulator reached
//! as 0.0.0.0, which the harness treats as not on this machine), what a run changes is
//! journaled and put back — after a complete run, an interrupted one, a budget, and by
//! `apiconform restore` after a crash — and nothing irreversible or force-stopping happens
//! without its flag. The emulator's admin view (reached on 127.0.0.1) is the judge.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use apiconform::emulator::{Config, Variant};

use super::{emulator_behind, run};

/// Per instance of `product`: its keys (sorted) and state, as the admin view reports them.
pub(crate) async fn bindings(url: &str, product: &str) -> BTreeMap<String, (Vec<String>, String)> {
    let body = reqwest::get(format!("{url}/__apiconform/world"))
        .await
        .expect("the admin view answers")
        .bytes()
        .await
        .expect("the admin view is read");
    bindings_in(&body, product)
}

/// Per instance of `product` in an admin view's answer: its keys (sorted) and state.
pub(crate) fn bindings_in(body: &[u8], product: &str) -> BTreeMap<String, (Vec<String>, String)> {
    let world: serde_json::Value = serde_json::from_slice(body).expect("the admin view is JSON");
    world["instances"]
        .as_array()
        .expect("instances")
        .iter()
        .filter(|i| i["product"] == product)
        .map(|i| {
            let mut keys: Vec<String> = i["keys"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|k| k.as_str().map(String::from))
                .collect();
            keys.sort();
            let state = i["state"].as_str().unwrap_or("").to_string();
            (i["id"].as_str().unwrap().to_string(), (keys, state))
        })
        .collect()
}

/// A paced CVM run against `remote`, journaled, long enough to be stopped midway.
fn spawn_long_cvm_run(
    remote: &str,
    world: &Path,
    journal: &Path,
    dir: &Path,
) -> std::process::Child {
    spawn_run(
        &[
            "--target",
            remote,
            "--world",
            world.to_str().unwrap(),
            "--spec",
            "tencent-cvm",
            "--cases",
            "2000",
            "--rate",
            "40",
            "--journal",
            journal.to_str().unwrap(),
        ],
        dir,
    )
}

/// The built-in world as a world file: what the emulator holds, listed for the run.
fn world_file(dir: &Path) -> PathBuf {
    let path = dir.join("world.json");
    let world = apiconform::world::World::default_world();
    std::fs::write(&path, serde_json::to_string(&world).unwrap()).unwrap();
    path
}

/// An emulator set up by `config`, and the URL that makes it look remote.
pub(crate) async fn remote_looking(config: Config) -> (String, String) {
    let (url, _) = emulator_behind(config, |_, r| r).await;
    let remote = url.replace("127.0.0.1", "0.0.0.0");
    (url, remote)
}

/// The run's `restore` section: (changed, restored, statuses by instance).
fn restore_of(report: &serde_json::Value) -> (usize, usize, BTreeMap<String, String>) {
    let instances = report["restore"]["instances"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let status: BTreeMap<String, String> = instances
        .iter()
        .map(|i| {
            (
                i["id"].as_str().unwrap_or("").to_string(),
                i["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let changed = status.values().filter(|s| *s != "unchanged").count();
    let restored = status.values().filter(|s| *s == "restored").count();
    (changed, restored, status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_a_run_every_reversible_binding_is_as_before_and_the_report_says_restored_n_of_m() {
    let dir = tempfile::tempdir().unwrap();
    let (url, remote) = remote_looking(Config::default()).await;
    let before = bindings(&url, "cvm").await;
    let world = world_file(dir.path());
    let journal = dir.path().join("journal");
    let (code, out, report) = run(
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
            "--allow-force-stop",
            "--journal",
            journal.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{out}");
    let (changed, restored, _) = restore_of(&report);
    assert!(changed > 10, "the run changed bindings: {out}");
    assert_eq!(restored, changed, "{out}");
    assert!(
        out.contains(&format!("restored {restored} of {changed}")),
        "{out}"
    );
    assert_eq!(bindings(&url, "cvm").await, before, "{out}");
    // The journal is closed: a new run may reuse it.
    let text = std::fs::read_to_string(&journal).unwrap();
    assert!(
        text.lines().last().unwrap().contains("\"closed\""),
        "{text}"
    );
}

/// Starts `apiconform run` in the background.
fn spawn_run(args: &[&str], dir: &Path) -> std::process::Child {
    crate::bin()
        .arg("run")
        .args(args)
        .arg("--report-json")
        .arg(dir.join("report.json"))
        .env("CI", "true")
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts")
}

/// Waits until the emulator's CVM bindings differ from `before` (the run has changed
/// something), at most 60 s.
async fn until_changed(url: &str, before: &BTreeMap<String, (Vec<String>, String)>) {
    let began = Instant::now();
    while bindings(url, "cvm").await == *before {
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "the run changed nothing in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn finish(child: std::process::Child) -> (i32, String) {
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_interrupted_midway_puts_back_what_it_changed() {
    interrupted_midway("-INT").await;
}

/// SIGTERM (what CI runners and `timeout` send) is read as Ctrl-C: restore, reports, exit 3.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_terminated_midway_puts_back_what_it_changed() {
    interrupted_midway("-TERM").await;
}

/// A second signal quits at once, and says the exact command that puts the rest back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_signal_quits_and_names_the_restore_command() {
    let dir = tempfile::tempdir().unwrap();
    let (url, remote) = remote_looking(Config::default()).await;
    let before = bindings(&url, "cvm").await;
    let world = world_file(dir.path());
    let journal = dir.path().join("journal");
    let child = spawn_long_cvm_run(&remote, &world, &journal, dir.path());
    until_changed(&url, &before).await;
    for signal in ["-TERM", "-TERM"] {
        Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (code, out) = finish(child).await;
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains(&format!("run `apiconform restore {}`", journal.display())),
        "{out}"
    );
    // What the quit left is put back by that command.
    let (code, out) = {
        let out = crate::bin()
            .args(["restore", journal.to_str().unwrap(), "--target", &remote])
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    assert_eq!(code, 0, "{out}");
    assert_eq!(bindings(&url, "cvm").await, before, "{out}");
}

async fn interrupted_midway(signal: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (url, remote) = remote_looking(Config::default()).await;
    let before = bindings(&url, "cvm").await;
    let world = world_file(dir.path());
    let journal = dir.path().join("journal");
    let child = spawn_long_cvm_run(&remote, &world, &journal, dir.path());
    until_changed(&url, &before).await;
    let interrupted = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let (code, out) = finish(child).await;
    assert_eq!(code, 3, "an interrupted run exits 3: {out}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["interrupted"], true, "{out}");
    let (changed, restored, _) = restore_of(&report);
    assert!(changed > 0 && restored == changed, "{out}");
    assert!(
        report["apis"][0]["cases"].as_u64().unwrap() < 2000,
        "stopped midway: {out}"
    );
    assert_eq!(bindings(&url, "cvm").await, before, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_leaves_a_journal_that_restore_replays_and_a_new_run_will_not_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let (url, remote) = remote_looking(Config::default()).await;
    let before = bindings(&url, "cvm").await;
    let world = world_file(dir.path());
    let journal = dir.path().join("journal");
    let args = [
        "--target",
        &remote,
        "--world",
        world.to_str().unwrap(),
        "--spec",
        "tencent-cvm/Associate",
        "--cases",
        "2000",
        "--rate",
        "40",
        "--journal",
        journal.to_str().unwrap(),
    ];
    let mut child = spawn_run(&args, dir.path());
    until_changed(&url, &before).await;
    child.kill().unwrap(); // SIGKILL: no restore, no report.
    let _ = finish(child).await;
    let changed = bindings(&url, "cvm").await;
    assert_ne!(changed, before, "the crash left changes behind");

    // Nothing overwrites the journal of a run that was not put back.
    let (code, out, _) = run(&args, dir.path());
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("apiconform restore"), "{out}");
    assert_eq!(
        bindings(&url, "cvm").await,
        changed,
        "that run sent nothing"
    );

    let out = crate::bin()
        .args(["restore", journal.to_str().unwrap()])
        .arg("--report-json")
        .arg(dir.path().join("restore.json"))
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("restored"), "{text}");
    assert_eq!(bindings(&url, "cvm").await, before, "{text}");
    // Restoring twice changes nothing more.
    let again = crate::bin()
        .args(["restore", journal.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&again.stdout).into_owned();
    assert_eq!(again.status.code(), Some(0), "{text}");
    assert!(text.contains("restored 0 of 0"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn apis_whose_changes_cannot_be_undone_touch_no_listed_instance_without_their_flag() {
    let dir = tempfile::tempdir().unwrap();
    let (url, log) = emulator_behind(Config::default(), |_, r| r).await;
    let remote = url.replace("127.0.0.1", "0.0.0.0");
    let (ecs, ecm) = (bindings(&url, "ecs").await, bindings(&url, "ecm").await);
    let world = world_file(dir.path());
    let args = [
        "--target",
        remote.as_str(),
        "--world",
        world.to_str().unwrap(),
        "--spec",
        "ecs",
        "--spec",
        "ecm",
        "--cases",
        "60",
        "--rate",
        "0",
    ];
    let (code, out, report) = run(&args, dir.path());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("--allow-irreversible lets them"), "{out}");
    // ECM's changes cannot be undone (no bind call is specced): its cases keep off the listed
    // instances. ECS's can (AttachKeyPair binds what DetachKeyPair unbinds): they are changed
    // and put back.
    let listed: Vec<&String> = ecm.keys().collect();
    let named: Vec<String> = log
        .lock()
        .unwrap()
        .iter()
        .flat_map(|r| {
            let text = format!("{}{}", r.target, String::from_utf8_lossy(&r.body));
            listed
                .iter()
                .filter(|id| text.contains(id.as_str()))
                .map(|id| id.to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        named.is_empty(),
        "requests named listed ECM instances: {named:?}"
    );
    assert_eq!(bindings(&url, "ecs").await, ecs, "ECS put back: {out}");
    assert_eq!(bindings(&url, "ecm").await, ecm);
    let (changed, restored, _) = restore_of(&report);
    assert!(changed > 0 && restored == changed, "ECS restored: {out}");
    assert_eq!(report["notes"].as_array().map(Vec::len), Some(1), "{out}");

    // With the flag ECM's are named too, and the restore names what it could not put back,
    // and why.
    let mut with = args.to_vec();
    with.push("--allow-irreversible");
    let (code, out, report) = run(&with, dir.path());
    // The account is not as found: the run says so in its exit code.
    assert_eq!(code, 5, "{out}");
    assert_ne!(bindings(&url, "ecm").await, ecm, "ECM keys were unbound");
    assert_eq!(bindings(&url, "ecs").await, ecs, "ECS put back: {out}");
    let (changed, restored, status) = restore_of(&report);
    assert!(changed > restored, "{out}");
    assert!(status.keys().any(|id| id.starts_with("ein-")), "{out}");
    assert!(
        out.contains("no call in the specs binds ECM keys"),
        "the reason is given: {out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn running_instances_are_not_stopped_without_allow_force_stop() {
    let dir = tempfile::tempdir().unwrap();
    // A target that leaves a force-stopped instance STOPPED: a stop shows in the world.
    let config = Config {
        variants: [Variant::ForceStopLeavesStopped].into(),
        ..Config::default()
    };
    let (url, remote) = remote_looking(config).await;
    let before = bindings(&url, "cvm").await;
    let running = before.values().filter(|(_, s)| s == "RUNNING").count();
    assert!(running > 0);
    let world = world_file(dir.path());
    let args = [
        "--target",
        remote.as_str(),
        "--world",
        world.to_str().unwrap(),
        "--spec",
        "tencent-cvm/Associate",
        "--cases",
        "150",
        "--rate",
        "0",
    ];
    let (code, out, report) = run(&args, dir.path());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("cases not sent"), "{out}");
    let held = report["apis"][0]["not_sent"]
        .as_object()
        .map(|m| m.values().filter_map(|v| v.as_u64()).sum::<u64>())
        .unwrap_or(0);
    assert!(held > 0, "{out}");
    assert_eq!(bindings(&url, "cvm").await, before, "{out}");

    // With the flag they are stopped, and the restore says it cannot start them again.
    let mut with = args.to_vec();
    with.push("--allow-force-stop");
    let (code, out, report) = run(&with, dir.path());
    assert_eq!(
        code, 5,
        "a restore that left an instance not put back: {out}"
    );
    let (changed, restored, _) = restore_of(&report);
    assert!(restored < changed, "{out}");
    assert!(out.contains("was RUNNING and is STOPPED"), "{out}");
    let after = bindings(&url, "cvm").await;
    // Every binding is put back, even where the state cannot be.
    for (id, (keys, _)) in &before {
        assert_eq!(&after[id].0, keys, "{id}: {out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_budget_stops_the_run_restores_writes_the_reports_and_exits_4() {
    let dir = tempfile::tempdir().unwrap();
    let (url, remote) = remote_looking(Config::default()).await;
    let before = bindings(&url, "cvm").await;
    let world = world_file(dir.path());
    let junit = dir.path().join("junit.xml");
    let (code, out, report) = run(
        &[
            "--target",
            &remote,
            "--world",
            world.to_str().unwrap(),
            "--spec",
            "tencent-cvm/Disassociate",
            "--cases",
            "1000",
            "--rate",
            "0",
            "--max-requests",
            "80",
            "--journal",
            dir.path().join("j").to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(code, 4, "{out}");
    assert!(
        report["stopped_by"]
            .as_str()
            .is_some_and(|s| s.contains("--max-requests 80")),
        "{out}"
    );
    assert_eq!(report["interrupted"], false);
    assert!(report["apis"][0]["cases"].as_u64().unwrap() < 1000, "{out}");
    assert!(junit.exists());
    let (changed, restored, _) = restore_of(&report);
    assert_eq!(restored, changed, "{out}");
    assert_eq!(bindings(&url, "cvm").await, before, "{out}");
}

/// A time budget stops a paced run that would take a minute or more (1000 cases, each a call
/// and a read, at 50 requests/s): it stops starting cases once the time is spent, puts back
/// what it changed, writes its reports and exits 4, naming the budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_time_budget_stops_a_paced_run_restores_and_exits_4() {
    let dir = tempfile::tempdir().unwrap();
    let (url, remote) = remote_looking(Config::default()).await;
    let before = bindings(&url, "cvm").await;
    let world = world_file(dir.path());
    let started = std::time::Instant::now();
    let (code, out, report) = run(
        &[
            "--target",
            &remote,
            "--world",
            world.to_str().unwrap(),
            "--spec",
            "tencent-cvm/Associate",
            "--cases",
            "1000",
            "--rate",
            "50",
            "--max-duration",
            "3s",
            "--journal",
            dir.path().join("j").to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(code, 4, "{out}");
    assert_eq!(report["stopped_by"], "--max-duration 3s", "{out}");
    let cases = report["apis"][0]["cases"].as_u64().unwrap();
    assert!(cases > 0 && cases < 1000, "{cases} cases\n{out}");
    // Not a speed target: a run that ignored the budget would go on for 40 s and more.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "{out}"
    );
    let (changed, restored, _) = restore_of(&report);
    assert_eq!(restored, changed, "{out}");
    assert_eq!(bindings(&url, "cvm").await, before, "{out}");
}

/// A time budget cuts a slow pace short (issue 23, item 11): at `--rate 0.05` (one request every
/// 20 s) each of the 16 cases in flight waits for its slot, and the run went on for minutes after
/// its `--max-duration 3s`. The waits give up when the budget is spent: the run stops, writes its
/// report and exits 4, the cases that never got a slot counted nowhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_budget_cuts_the_wait_for_a_slow_pacing_slot() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _) = emulator_behind(Config::default(), |_, r| r).await;
    let started = Instant::now();
    let mut child = spawn_run(
        &[
            "--target",
            &url,
            "--spec",
            "tencent-ecm",
            "--rate",
            "0.05",
            "--max-duration",
            "3s",
            "--no-rate-probes",
        ],
        dir.path(),
    );
    // Not a speed target: the run this replaces went on for 16 slots of 20 s.
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running 90 s into a --max-duration 3s run");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (code, out) = finish(child).await;
    assert_eq!(code, 4, "{out}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["stopped_by"], "--max-duration 3s", "{out}");
    let cases = report["apis"][0]["cases"].as_u64().unwrap();
    assert!(
        (1..16).contains(&cases),
        "only cases that got a slot: {cases}\n{out}"
    );
}

/// `restore` reads a journal's instances a page of ids per read call, per product and region,
/// not one call per instance: a journal of every CVM instance the emulator holds, none of them
/// changed, costs one `DescribeInstances` call per region (at a remote target's 10 requests/s,
/// a hundred instances took ten seconds to check before).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restore_reads_the_journal_a_page_of_instances_per_call() {
    let dir = tempfile::tempdir().unwrap();
    let (url, log) = emulator_behind(Config::default(), |_, r| r).await;
    let remote = url.replace("127.0.0.1", "0.0.0.0");
    let body = reqwest::get(format!("{url}/__apiconform/world"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let world: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let cvm: Vec<&serde_json::Value> = world["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["product"] == "cvm")
        .collect();
    let regions: std::collections::BTreeSet<&str> =
        cvm.iter().map(|i| i["region"].as_str().unwrap()).collect();
    assert!(cvm.len() > 20, "{} CVM instances", cvm.len());
    let mut text = format!(
        "{}\n",
        serde_json::json!({"started": {"version": 1, "target": remote, "at": 0}})
    );
    for i in &cvm {
        let before = serde_json::json!({"before": {
            "product": "cvm", "region": i["region"], "id": i["id"],
            "keys": i["keys"], "seen": true,
        }});
        text.push_str(&format!("{before}\n"));
    }
    let journal = dir.path().join("journal");
    std::fs::write(&journal, text).unwrap();
    log.lock().unwrap().clear();
    let out = crate::bin()
        .args(["restore", journal.to_str().unwrap()])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("restored 0 of 0"), "{text}");
    let actions: Vec<String> = log
        .lock()
        .unwrap()
        .iter()
        .filter_map(|r| {
            r.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("x-tc-action"))
                .map(|(_, v)| v.clone())
        })
        .collect();
    let pages: usize = regions
        .iter()
        .map(|r| {
            let n = cvm.iter().filter(|i| i["region"] == *r).count();
            n.div_ceil(100)
        })
        .sum();
    assert_eq!(
        actions,
        vec!["DescribeInstances".to_string(); pages],
        "{} instances in {} regions",
        cvm.len(),
        regions.len()
    );
}
