//! The plan of a run: `--dry-run` prints exactly the requests a run sends, and a case that
//! numbers its list items from 1 sends them so.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use apiconform::protocol::{self, HttpRequest};
use apiconform::run::{self, NoProgress, Planned, RunOptions, Target};
use apiconform::spec::{self, SpecSet};
use apiconform::world::World;

fn set() -> SpecSet {
    spec::load_embedded().expect("embedded specs load")
}

/// Every request of the plan, each as often as the run sends it.
fn planned(set: &SpecSet, world: &World, target: &Target, opts: &RunOptions) -> Vec<Planned> {
    let mut all = Vec::new();
    run::dry_run(set, world, target, opts, |p| {
        all.push(p);
        true
    })
    .expect("the plan signs");
    all
}

#[test]
fn one_based_cases_number_their_items_from_one_on_the_wire() {
    let set = set();
    let target = Target::new("http://127.0.0.1:9", Duration::from_secs(1)).unwrap();
    let opts = RunOptions {
        cases: 300,
        ..Default::default()
    };
    let (mut one_based, mut zero_based) = (0, 0);
    for p in planned(&set, &World::default_world(), &target, &opts) {
        let names = protocol::list_item_names(&p.request);
        if names.is_empty() {
            continue;
        }
        let from_zero = names.iter().any(|n| n.ends_with(".0"));
        if p.case.transport.index_base == 1 {
            one_based += 1;
            assert!(!from_zero, "{} case {}: {names:?}", p.api, p.index);
            assert!(names.iter().any(|n| n.ends_with(".1")), "{names:?}");
        } else {
            zero_based += 1;
            assert!(from_zero, "{} case {}: {names:?}", p.api, p.index);
        }
    }
    assert!(
        one_based >= 5,
        "the one-based situation is drawn: {one_based}"
    );
    assert!(zero_based > one_based, "{zero_based} vs {one_based}");
}

/// What a request asks for, without what changes from one signing to the next (timestamp,
/// nonce, signature).
fn meaning(req: &HttpRequest) -> String {
    match protocol::parse_request(req) {
        Ok(p) => format!(
            "{} {} {:?} {} {:?} {:?} {:?} {} {:?} {:?} {:?}",
            req.method,
            req.path(),
            p.family,
            p.action,
            p.version,
            p.region,
            p.service,
            p.secret_id,
            p.signature,
            p.format,
            (p.index_base, &p.params),
        ),
        Err(e) => format!("{} {} unparsed: {}", req.method, req.path(), e.code),
    }
}

/// `--dry-run` and `run` share one plan: the requests a loopback emulator receives in a real
/// run (its read calls and admin views aside) are the dry run's, with the same seed, shard
/// and world — the later APIs of a lane included, which draw from the world the earlier ones
/// leave.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_prints_the_requests_a_run_sends() {
    let set = set();
    let world = World::default_world();
    for (seed, shard) in [(5, None), (6, Some((1, 3)))] {
        let (url, log) = super::emulator_behind(
            apiconform::emulator::Config {
                world: world.clone(),
                ..Default::default()
            },
            |_, resp| resp,
        )
        .await;
        let target = Target::new(&url, Duration::from_secs(10)).unwrap();
        let opts = RunOptions {
            cases: 80,
            seed,
            shard,
            admin: true,
            ..Default::default()
        };
        let report = run::run(
            &set,
            world.clone(),
            &target,
            &opts,
            &NoProgress,
            &AtomicBool::new(false),
        )
        .await
        .unwrap();
        assert_eq!(report.failed(), 0, "a failure's shrinking would send more");
        let mut sent: Vec<String> = log
            .lock()
            .unwrap()
            .iter()
            .filter(|r| {
                !r.path()
                    .starts_with(apiconform::protocol::describe::ADMIN_PREFIX)
            })
            .map(meaning)
            .filter(|m| !m.contains(" DescribeInstances "))
            .collect();
        let (probes, plan): (Vec<Planned>, Vec<Planned>) = planned(&set, &world, &target, &opts)
            .into_iter()
            .partition(|p| p.probe.is_some());
        assert_eq!(
            plan.len(),
            report.cases(),
            "one planned request per case run"
        );
        // The rate-limit bursts: each probe's request as often as its burst sends it (twice
        // as often when the first burst met no throttling); none from a shard but the first.
        assert_eq!(probes.len(), 3, "three documented limits");
        for p in &probes {
            let m = meaning(&p.request);
            let n = sent.iter().filter(|s| **s == m).count();
            assert!(
                n == p.sends || n == 2 * p.sends,
                "{}: sent {n}, planned {}",
                p.api,
                p.sends
            );
            assert_eq!(p.sends == 0, shard.is_some(), "{}", p.api);
            sent.retain(|s| *s != m);
        }
        let mut shown: Vec<String> = plan
            .iter()
            .flat_map(|p| std::iter::repeat_n(meaning(&p.request), p.sends))
            .collect();
        sent.sort();
        shown.sort();
        assert_eq!(sent.len(), shown.len(), "seed {seed}, shard {shard:?}");
        for (a, b) in sent.iter().zip(&shown) {
            assert_eq!(a, b, "seed {seed}, shard {shard:?}");
        }
    }
}

/// `--shard I/N` runs are a partition of the unsharded run: together the shards plan every
/// request of it once, later APIs of a lane included (each shard predicts the whole plan).
#[test]
fn shards_partition_the_plan() {
    let set = set();
    let world = World::default_world();
    let target = Target::new("http://127.0.0.1:9", Duration::from_secs(1)).unwrap();
    let opts = RunOptions {
        cases: 90,
        seed: 11,
        ..Default::default()
    };
    let key = |p: &Planned| format!("{} {} {:?}", p.api, p.index, p.case);
    // The cases; the rate-limit probes after them are not cases (only shard 1 sends them).
    let mut whole: Vec<String> = planned(&set, &world, &target, &opts)
        .iter()
        .filter(|p| p.probe.is_none())
        .map(key)
        .collect();
    let mut parts: Vec<String> = (0..3)
        .flat_map(|k| {
            let opts = RunOptions {
                shard: Some((k, 3)),
                ..opts.clone()
            };
            planned(&set, &world, &target, &opts)
                .iter()
                .filter(|p| p.probe.is_none())
                .map(key)
                .collect::<Vec<_>>()
        })
        .collect();
    whole.sort();
    parts.sort();
    assert_eq!(whole.len(), crate::api_count() * 90);
    assert_eq!(parts, whole);
}

/// A default run spends at most a tenth of each API's cases where nothing can fail (open
/// situations, judgement-only cases), however the earlier cases left the world: the share is
/// counted in the world the plan holds, and cases on one instance run in plan order.
#[test]
fn a_default_run_keeps_each_apis_open_share_within_ten_percent() {
    for seed in ["0", "1", "2", "3"] {
        let dir = tempfile::tempdir().unwrap();
        let (code, out, report) = crate::run(&["--seed", seed], dir.path());
        assert_eq!(code, 0, "{out}");
        for api in report["apis"].as_array().unwrap() {
            let share = api["unspecified_share"].as_f64().unwrap();
            assert!(
                share <= 0.10 + 1e-9,
                "seed {seed}: {} spends {share} on open cases: {}",
                api["api"],
                api["unspecified_by"]
            );
        }
    }
}

/// `run --plan` sends nothing, and says per API what may change (only listed resources, the
/// forced instances among them RUNNING), whether the specs can undo it (CVM and ECS yes; ECM,
/// whose specs hold no bind call, no), and how many requests at what rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plan_says_what_may_change_and_whether_it_can_be_undone_and_sends_nothing() {
    let (url, log) = crate::emulator_behind(Default::default(), |_, r| r).await;
    let (code, out, report) = tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        crate::run(&["--target", &url, "--plan", "--cases", "50"], dir.path())
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{out}");
    assert!(log.lock().unwrap().is_empty(), "the plan sent requests");
    let plans = report["plan"].as_array().expect("a plan per API");
    assert_eq!(plans.len(), crate::api_count(), "{report}");
    let world = World::default_world();
    for p in plans {
        let api = p["api"].as_str().unwrap();
        let reversible = p["reversible"].get("Ok").is_some();
        // CVM binds and unbinds; ECS attaches and detaches; ECM only disassociates.
        let expected = !api.starts_with("tencent-ecm/");
        assert_eq!(reversible, expected, "{api}: {}", p["reversible"]);
        assert!(p["requests"].as_u64().unwrap() >= 50, "{p}");
        // Every paced request and read at the documented rate, and a second's back-off after
        // the burst where one is sent.
        let seconds = p["seconds_at_documented_rate"].as_f64().unwrap();
        let rate = p["documented_rate"].as_f64().unwrap();
        let bursts = p["burst_requests"].as_f64().unwrap();
        let paced = p["requests"].as_f64().unwrap() - bursts + p["reads"].as_f64().unwrap();
        let backoff = if bursts > 0.0 { 1.0 } else { 0.0 };
        assert!((seconds - paced / rate - backoff).abs() < 1e-9, "{p}");
        for id in p["instances"].as_array().unwrap() {
            assert!(
                world.instances.iter().any(|i| i.id == id.as_str().unwrap()),
                "{id}"
            );
        }
        for id in p["force_stopped"].as_array().unwrap() {
            let i = world
                .instances
                .iter()
                .find(|i| i.id == id.as_str().unwrap())
                .unwrap();
            assert_eq!(i.state, apiconform::spec::InstanceState::Running, "{id}");
        }
    }
    assert!(out.contains("NOT REVERSIBLE"), "{out}");
}

/// `run --plan` estimates a paced run's time with the read calls that go with its cases
/// (confirming unlisted ids absent, journaling, observing) and the restore: against a target
/// that looks remote, at `--rate`, the estimate is within 25 % of the time the same run takes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plans_estimate_of_a_paced_remote_run_is_within_a_quarter_of_its_time() {
    let (url, _) = crate::emulator_behind(Default::default(), |_, r| r).await;
    let remote = url.replace("127.0.0.1", "0.0.0.0");
    let (estimate, measured, out) = tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        let world = dir.path().join("world.json");
        std::fs::write(
            &world,
            serde_json::to_string(&World::default_world()).unwrap(),
        )
        .unwrap();
        let args = [
            "--target",
            &remote,
            "--world",
            world.to_str().unwrap(),
            "--spec",
            "tencent-cvm",
            "--cases",
            "40",
            "--rate",
            "40",
            "--allow-force-stop",
        ];
        let mut plan = args.to_vec();
        plan.push("--plan");
        let (code, out, report) = crate::run(&plan, dir.path());
        assert_eq!(code, 0, "{out}");
        let estimate = report["estimated_seconds"].as_f64().expect("an estimate");
        for p in report["plan"].as_array().unwrap() {
            assert!(p["reads"].as_u64().unwrap() > 0, "{p}");
        }
        let began = std::time::Instant::now();
        let (code, out, _) = crate::run(&args, dir.path());
        let measured = began.elapsed().as_secs_f64();
        assert_eq!(code, 0, "{out}");
        (estimate, measured, out)
    })
    .await
    .unwrap();
    eprintln!("plan estimate {estimate:.2} s, run {measured:.2} s");
    assert!(
        (estimate - measured).abs() <= 0.25 * measured,
        "estimate {estimate:.2} s, measured {measured:.2} s: {out}"
    );
}
