//! `run --concurrent`: per product, a prefix then branches sent at once on shared instances,
//! each history checked for linearizability against the specs' effects. A lost update is
//! caught there and nowhere else; the correct emulator is clean across seeds; against a
//! remote-looking target only listed instances are touched, journaled and put back.

use apiconform::emulator::Config;
use apiconform::run::{HISTORIES, LINEARIZABLE_RULE, SEQUENCE_RULE, VIEWS_RULE};

use super::restore::{bindings, remote_looking};
use super::{failures, run};

fn notes(report: &serde_json::Value) -> Vec<String> {
    report["notes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str().map(String::from))
        .collect()
}

#[test]
fn the_correct_emulator_is_clean_across_seeds_and_every_history_is_explained() {
    for seed in ["1", "2", "3", "4"] {
        let dir = tempfile::tempdir().unwrap();
        let (code, out, report) = run(
            &[
                "--cases",
                "10",
                "--seed",
                seed,
                "--no-rate-probes",
                "--stateful",
            ],
            dir.path(),
        );
        assert_eq!(code, 0, "seed {seed}\n{out}");
        let notes = notes(&report);
        for product in ["CVM", "ECM", "ECS"] {
            let h = HISTORIES;
            for want in [
                format!("concurrency: {product}: {h} of {h} concurrent histories explained"),
                format!("stateful: {product}: {h} of {h} sequences explained"),
            ] {
                assert!(
                    notes.iter().any(|n| n.starts_with(&want)),
                    "seed {seed}: {want}\n{notes:#?}"
                );
            }
        }
    }
}

#[test]
fn a_lost_update_is_caught_by_the_concurrent_branches_and_missed_by_single_requests() {
    let dir = tempfile::tempdir().unwrap();
    let alone = [
        "--fault",
        "lost-update",
        "--spec",
        "tencent-cvm",
        "--cases",
        "300",
        "--no-rate-probes",
    ];
    let (code, out, _) = run(&alone, dir.path());
    assert_eq!(code, 0, "one request at a time cannot see it\n{out}");

    let dir = tempfile::tempdir().unwrap();
    let mut both = alone.to_vec();
    both[5] = "10";
    both.push("--concurrent");
    let (code, out, report) = run(&both, dir.path());
    assert_eq!(code, 1, "{out}");
    let found = failures(&report);
    assert!(!found.is_empty(), "{out}");
    for (api, rule, f) in &found {
        assert_eq!(rule, LINEARIZABLE_RULE, "{api}: {f}");
        assert!(api.starts_with("tencent-cvm/"), "{api}");
        // The whole history is in the failure: the keys before, each call, the keys after.
        let detail = f["detail"].as_str().unwrap();
        assert!(
            detail.contains("Before: ") && detail.contains("Call 2 ") && detail.contains("After: "),
            "{detail}"
        );
        assert_eq!(f["strength"], "seed", "{f}");
    }
    let repros = std::fs::read_dir(dir.path().join("repros"))
        .unwrap()
        .count();
    assert_eq!(repros, found.len(), "one repro per failed history");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn against_a_remote_target_only_listed_instances_are_touched_and_all_are_put_back() {
    let dir = tempfile::tempdir().unwrap();
    let (url, remote) = remote_looking(Config::default()).await;
    let before = bindings(&url, "cvm").await;
    // The world lists two STOPPED Linux CVM instances of one region (with their key pairs)
    // and nothing else.
    let mut world = apiconform::world::World::default_world();
    let listed: Vec<_> = world
        .instances
        .iter()
        .filter(|i| {
            i.product == apiconform::spec::Product::Cvm
                && i.os == apiconform::spec::Os::Linux
                && i.state == apiconform::spec::InstanceState::Stopped
                && i.region == "ap-guangzhou"
        })
        .take(2)
        .cloned()
        .collect();
    assert_eq!(listed.len(), 2);
    world.instances = listed.clone();
    world
        .key_pairs
        .retain(|k| k.product == apiconform::spec::Product::Cvm);
    let world_file = dir.path().join("world.json");
    std::fs::write(&world_file, serde_json::to_string(&world).unwrap()).unwrap();
    let journal = dir.path().join("journal");
    let (code, out, report) = run(
        &[
            "--target",
            &remote,
            "--world",
            world_file.to_str().unwrap(),
            "--spec",
            "tencent-cvm",
            "--cases",
            "5",
            "--rate",
            "0",
            "--journal",
            journal.to_str().unwrap(),
            "--concurrent",
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        notes(&report).iter().any(|n| n.starts_with(&format!(
            "concurrency: CVM: {HISTORIES} of {HISTORIES} concurrent"
        ))),
        "{out}"
    );
    // Every binding is as before, and only the listed instances were journaled.
    assert_eq!(bindings(&url, "cvm").await, before, "{out}");
    let text = std::fs::read_to_string(&journal).unwrap();
    for i in &listed {
        assert!(text.contains(&i.id), "{} journaled: {text}", i.id);
    }
    for line in text.lines().filter(|l| l.contains("\"id\"")) {
        assert!(
            listed.iter().any(|i| line.contains(&i.id)),
            "an unlisted instance was journaled: {line}"
        );
    }
}

/// A fault between APIs or views: missed by the single-request run, caught by `--stateful`
/// under one of `rules`, the whole sequence in the failure.
fn caught_only_by_sequences(fault: &str, rules: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let alone = [
        "--fault",
        fault,
        "--spec",
        "tencent-cvm",
        "--cases",
        "300",
        "--no-rate-probes",
    ];
    let (code, out, _) = run(&alone, dir.path());
    assert_eq!(
        code, 0,
        "{fault}: one request at a time cannot see it\n{out}"
    );
    let dir = tempfile::tempdir().unwrap();
    let mut stateful = alone.to_vec();
    stateful[5] = "10";
    stateful.push("--stateful");
    let (code, out, report) = run(&stateful, dir.path());
    assert_eq!(code, 1, "{fault}\n{out}");
    let found = failures(&report);
    assert!(
        found
            .iter()
            .any(|(_, rule, _)| rules.contains(&rule.as_str())),
        "{fault}: {found:?}"
    );
    for (_, _, f) in &found {
        assert!(f["detail"].as_str().unwrap().contains("Call 1 "), "{f}");
    }
}

#[test]
fn a_legacy_api_with_a_second_store_is_caught_by_sequences_across_api_families() {
    caught_only_by_sequences("legacy-second-store", &[SEQUENCE_RULE, LINEARIZABLE_RULE]);
}

#[test]
fn a_lagging_key_pair_view_is_caught_by_the_views_invariant() {
    caught_only_by_sequences("lagging-view", &[VIEWS_RULE]);
}

/// A failed sequence's repro holds the whole sequence: `replay` sends it again step by step,
/// still failing against a target with the fault and passing against a correct one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replay_sends_the_whole_sequence_again() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, report) = run(
        &[
            "--fault",
            "lagging-view",
            "--stateful",
            "--spec",
            "tencent-cvm",
            "--cases",
            "5",
            "--no-rate-probes",
        ],
        dir.path(),
    );
    assert_eq!(code, 1, "{out}");
    let (_, _, f) = failures(&report)
        .into_iter()
        .find(|(_, rule, _)| rule == VIEWS_RULE)
        .expect("the views disagree");
    let steps = f["sequence"].as_array().expect("the sequence").len();
    assert!(steps >= 1, "{f}");
    let repro = std::fs::read_dir(dir.path().join("repros"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains(VIEWS_RULE))
        .expect("a repro of the views rule");

    // The same fault behind a real server (the faults of stores and views live on its path).
    let config = Config {
        faults: [apiconform::emulator::Fault::LaggingView].into(),
        ..Config::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let emu = std::sync::Arc::new(apiconform::emulator::Emulator::new(config));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(apiconform::emulator::server::serve(
        listener,
        emu,
        async move {
            let _ = stopped.await;
        },
    ));
    let replay = |target: Option<String>| {
        let repro = repro.clone();
        tokio::task::spawn_blocking(move || {
            let mut cmd = crate::bin();
            cmd.arg("replay").arg(&repro);
            if let Some(t) = target {
                cmd.args(["--target", &t]);
            }
            let out = cmd.output().unwrap();
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
            )
        })
    };
    let (code, out) = replay(Some(url)).await.unwrap();
    assert_eq!(code, Some(1), "still fails against the fault: {out}");
    assert!(out.contains("views-agree"), "{out}");
    let (code, out) = replay(None).await.unwrap();
    assert_eq!(code, Some(0), "passes against the correct emulator: {out}");
    let _ = stop.send(());
    let _ = server.await;
}
