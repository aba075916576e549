//! The rate-limit probe: after an API's cases, a burst over each documented limit must meet the
//! family's throttling code; the emulator throttles only while the probe runs; no burst goes to
//! a remote target unasked; the lane backs off after the burst.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use apiconform::emulator::Config;
use apiconform::protocol::{self, describe::ADMIN_PREFIX, HttpRequest};
use apiconform::run::{self, ProbeStatus, RateProbes, RunOptions, Target};
use apiconform::world::World;

use crate::emulator_behind;

/// Every request the server behind the hook answered, with when it answered and its action
/// (`admin …` for the emulator's admin view).
type Timed = Arc<Mutex<Vec<(SystemTime, String, HttpRequest)>>>;

async fn timed_emulator(config: Config) -> (String, Timed) {
    let timed: Timed = Arc::default();
    let log = timed.clone();
    let (url, _) = emulator_behind(config, move |req, resp| {
        let what = match protocol::parse_request(req) {
            _ if req.path().starts_with(ADMIN_PREFIX) => format!("admin {}", req.target),
            Ok(p) => format!("{} {}", p.version.unwrap_or_default(), p.action),
            Err(e) => format!("unparsed {}", e.code),
        };
        log.lock()
            .unwrap()
            .push((SystemTime::now(), what, req.clone()));
        resp
    })
    .await;
    (url, timed)
}

fn secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// The correct emulator passes the probe of each documented limit: it throttles the burst
/// (enforcement switched on through its admin view for that one action) and, switched off
/// again, throttles nothing else of the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_throttles_the_burst_and_nothing_else() {
    let (url, log) = timed_emulator(Config::default()).await;
    let report = crate::run_spec(&url, "tencent-ecm", 60).await;
    let api = &report.apis[0];
    assert_eq!(report.failed(), 0, "{report:?}");
    assert_eq!(api.rate_probes.len(), 1, "{:?}", api.rate_probes);
    let p = &api.rate_probes[0];
    assert_eq!(p.status, ProbeStatus::Pass, "{p:?}");
    assert_eq!((p.per_second, p.burst, p.bursts), (20, 30, 1), "{p:?}");
    assert_eq!(p.source.doc, "seed-001");
    assert_eq!(p.throttled, 10, "30 requests at once, 20 served: {p:?}");
    assert_eq!(api.retries, 0, "no ordinary case was throttled");
    {
        let log = log.lock().unwrap();
        let at = |needle: &str| {
            log.iter()
                .position(|(_, w, _)| w.contains(needle))
                .unwrap_or_else(|| panic!("no {needle}"))
        };
        let (on, off) = (at("enforce=on"), at("enforce=off"));
        assert!(log[on].1.contains("action=DisassociateInstancesKeyPairs"));
        assert!(log[on].1.contains("version=2019-07-19"), "{}", log[on].1);
        assert_eq!(off - on - 1, 30, "the burst, between the switches");
        let api_requests = log
            .iter()
            .filter(|(_, w, _)| !w.starts_with("admin"))
            .count();
        assert_eq!(api_requests, 60 + 30, "every case once, and the burst");
    }
    // Nothing stays switched on.
    let target = Target::new(&url, Duration::from_secs(5)).unwrap();
    let state = target
        .send(&HttpRequest {
            method: "GET".into(),
            target: format!("{ADMIN_PREFIX}/rate-limits"),
            headers: vec![("Host".into(), target.authority())],
            body: vec![],
        })
        .await
        .unwrap();
    let state: serde_json::Value = serde_json::from_slice(&state.body).unwrap();
    assert_eq!(state["all"], false, "{state}");
    assert_eq!(state["only"], serde_json::json!([]), "{state}");
}

/// After the burst the lane waits out the target's window: the next request to the product
/// (the next API's first case) is answered in a later second than the burst's last answer, and
/// at least half a second after the burst's first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lane_backs_off_after_the_burst() {
    let (url, log) = timed_emulator(Config::default()).await;
    let report = crate::run_spec(&url, "tencent-cvm/*ssociate", 20).await;
    assert_eq!(report.apis.len(), 2, "Associate, then Disassociate");
    assert_eq!(report.failed(), 0, "{report:?}");
    let log = log.lock().unwrap();
    let off = log
        .iter()
        .position(|(_, w, _)| w.contains("enforce=off") && w.contains("action=Associate"))
        .expect("Associate's probe switched enforcement off");
    let burst: Vec<&SystemTime> = log[..off]
        .iter()
        .rev()
        .take_while(|(_, w, _)| !w.contains("enforce=on"))
        .map(|(t, _, _)| t)
        .collect();
    assert_eq!(burst.len(), 15, "10/s: a burst of 15");
    let first = burst.iter().map(|t| secs(**t)).fold(f64::MAX, f64::min);
    let last = burst.iter().map(|t| secs(**t)).fold(0.0, f64::max);
    let (next, what) = log[off + 1..]
        .iter()
        .find(|(_, w, _)| !w.starts_with("admin"))
        .map(|(t, w, _)| (secs(*t), w.clone()))
        .expect("the lane went on");
    assert!(
        what.contains("DisassociateInstancesKeyPairs") || what.contains("Describe"),
        "{what}"
    );
    assert!(
        next >= last.floor() + 1.0,
        "the next request ({next}) came in the burst's second ({last})"
    );
    assert!(next - first >= 0.5, "{first} → {next}");
}

/// A world file listing the default world, for a target that is not on loopback.
fn world_file(dir: &std::path::Path) -> String {
    let path = dir.join("world.json");
    std::fs::write(
        &path,
        serde_json::to_string(&World::default_world()).unwrap(),
    )
    .unwrap();
    path.display().to_string()
}

/// `0.0.0.0` reaches this machine (on Linux) but is not a loopback address: the harness treats
/// it as a remote target. Without `--probe-rate-limits` no burst goes there (the mock counts
/// exactly the cases); with it, the burst does, and the emulator (enforcing always) throttles
/// it; `--no-rate-probes` keeps even a loopback target from getting one.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_burst_goes_to_a_remote_target_unasked() {
    let (url, log) = timed_emulator(Config {
        rate_limits: true,
        ..Config::default()
    })
    .await;
    let remote = url.replace("127.0.0.1", "0.0.0.0");
    let dir = tempfile::tempdir().unwrap();
    let world = world_file(dir.path());
    let sent = |log: &Timed| {
        log.lock()
            .unwrap()
            .iter()
            .filter(|(_, w, _)| !w.starts_with("admin"))
            .count()
    };
    let run = |extra: &'static [&'static str], target: String| {
        let (world, dir, url) = (world.clone(), dir.path().to_path_buf(), url.clone());
        tokio::task::spawn_blocking(move || {
            // Each run starts from the world file's world.
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let admin = Target::new(&url, Duration::from_secs(5)).unwrap();
                let reset = protocol::describe::admin_reset_request(
                    &admin.authority(),
                    &World::default_world(),
                );
                assert_eq!(admin.send(&reset).await.unwrap().status, 200);
            });
            let mut args = vec![
                "--target",
                &target,
                "--world",
                &world,
                "--spec",
                "tencent-ecm",
                "--cases",
                "10",
            ];
            args.extend_from_slice(extra);
            crate::run(&args, &dir)
        })
    };
    let (code, out, report) = run(&[], remote.clone()).await.unwrap();
    assert_eq!(code, 0, "{out}");
    assert_eq!(sent(&log), 10, "the cases alone: {out}");
    let probe = &report["apis"][0]["rate_probes"][0];
    assert_eq!(probe["status"], "not_sent", "{probe}");
    assert!(
        probe["detail"]
            .as_str()
            .unwrap()
            .contains("--probe-rate-limits"),
        "{probe}"
    );
    assert!(out.contains("not probed"), "{out}");

    let (code, out, report) = run(&["--probe-rate-limits"], remote).await.unwrap();
    assert_eq!(code, 0, "{out}");
    let probe = &report["apis"][0]["rate_probes"][0];
    assert_eq!(probe["status"], "pass", "{probe}");
    assert_eq!(sent(&log), 10 + 10 + 30, "asked: the burst went too");

    let (code, out, report) = run(&["--no-rate-probes"], url.clone()).await.unwrap();
    assert_eq!(code, 0, "{out}");
    assert_eq!(report["apis"][0]["rate_probes"][0]["status"], "not_sent");
    assert_eq!(
        sent(&log),
        10 + 10 + 30 + 10,
        "switched off: no burst on loopback either"
    );
}

/// The plan shows each probe after its API's cases, and whether the burst would be sent.
#[test]
fn the_plan_says_whether_each_burst_would_be_sent() {
    let set = apiconform::spec::load_embedded().unwrap();
    let probes = |url: &str, rate_probes: RateProbes| {
        let target = Target::new(url, Duration::from_secs(1)).unwrap();
        let opts = RunOptions {
            cases: 3,
            rate_probes,
            ..Default::default()
        };
        let mut out = Vec::new();
        run::dry_run(&set, &World::default_world(), &target, &opts, |p| {
            if let Some(probe) = p.probe {
                out.push((p.api, p.index, p.sends, probe.not_sent));
            }
            true
        })
        .unwrap();
        out
    };
    let local = probes("http://127.0.0.1:9", RateProbes::Loopback);
    let names: Vec<&str> = local.iter().map(|(a, ..)| a.as_str()).collect();
    assert_eq!(
        names,
        [
            "tencent-cvm/AssociateInstancesKeyPairs",
            "tencent-cvm/DisassociateInstancesKeyPairs",
            "tencent-ecm/DisassociateInstancesKeyPairs"
        ],
        "the APIs with a documented limit; Alibaba and API 2.0 state none"
    );
    assert!(local.iter().all(|(_, i, _, why)| *i == 3 && why.is_none()));
    assert_eq!(local[2].2, 30, "ECM: 20/s, a burst of 30");
    let remote = probes("https://cvm.tencentcloudapi.com", RateProbes::Loopback);
    assert!(
        remote.iter().all(|(.., sends, why)| *sends == 0
            && why
                .as_deref()
                .is_some_and(|w| w.contains("--probe-rate-limits"))),
        "{remote:?}"
    );
    let asked = probes("https://cvm.tencentcloudapi.com", RateProbes::Always);
    assert!(asked.iter().all(|(.., why)| why.is_none()), "{asked:?}");
    let never = probes("http://127.0.0.1:9", RateProbes::Never);
    assert!(never.iter().all(|(.., why)| why.is_some()), "{never:?}");
}

/// The probe's request names only instances the world does not hold, well-formed: nothing can
/// change on any target.
#[test]
fn the_burst_names_only_absent_instances() {
    let set = apiconform::spec::load_embedded().unwrap();
    let world = World::default_world();
    let target = Target::new("http://127.0.0.1:9", Duration::from_secs(1)).unwrap();
    let mut seen = 0;
    for seed in 0..5 {
        let opts = RunOptions {
            cases: 1,
            seed,
            ..Default::default()
        };
        run::dry_run(&set, &world, &target, &opts, |p| {
            if p.probe.is_some() {
                seen += 1;
                let api = set.find(&p.api).unwrap();
                let ids = p.case.instance_ids(api);
                assert!(!ids.is_empty(), "{:?}", p.case);
                for id in ids {
                    assert!(!world.instances.iter().any(|i| i.id == id), "{id} exists");
                }
                assert_eq!(p.case.violates, ["instance-exists"], "{:?}", p.case);
            }
            true
        })
        .unwrap();
    }
    assert_eq!(seen, 15);
}

/// A failed probe's repro holds one request of the burst, says how many went at once, and
/// `apiconform replay` sends the burst again: still failing against a target that never
/// throttles, passing against the correct emulator.
#[test]
fn a_probe_failure_is_replayed_as_a_burst() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, report) = crate::run(
        &[
            "--fault",
            "never-throttles",
            "--spec",
            "tencent-ecm",
            "--cases",
            "20",
        ],
        dir.path(),
    );
    assert_eq!(code, 1, "{out}");
    let (_, rule, f) = &crate::failures(&report)[0];
    assert_eq!(rule, "rate-limit", "{f}");
    assert_eq!(f["burst"], 30, "{f}");
    assert_eq!(f["strength"], "seed", "{f}");
    assert!(
        f["curl"]
            .as_str()
            .unwrap()
            .starts_with("for i in $(seq 30)"),
        "{f}"
    );
    assert!(f["detail"].as_str().unwrap().contains("replay"), "{f}");
    assert_eq!(
        report["apis"][0]["rate_probes"][0]["bursts"], 2,
        "a second try"
    );
    let repro = crate::first_repro(dir.path());
    let replay = |extra: &[&str]| {
        let out = crate::bin()
            .arg("replay")
            .arg(&repro)
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (code, out) = replay(&[]);
    assert_eq!(code, 0, "the correct emulator throttles the burst: {out}");
    let (mut server, _, url) =
        crate::cli::serve(&["--listen", "127.0.0.1:0", "--fault", "never-throttles"]);
    let (code, out) = replay(&["--target", &url]);
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("still fails: rule `rate-limit`"), "{out}");
}
