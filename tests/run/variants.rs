//! The other reading of every open point. The emulator under each variant — and under all of
//! them at once — takes a choice the documents leave open differently from the default one; a run
//! against it must still report no failure, on several seeds. A variant of a judgement of ours
//! fails under `--strict` only; every variant changes the exchanges of the spec entries that
//! name it (so none is vacuous), and every fault is still caught with all variants on.

use std::collections::BTreeMap;

use apiconform::emulator::{Config, Variant};
use apiconform::snapshot;
use apiconform::world::World;

use crate::{failures, run};

/// Runs every API against the embedded emulator under `variants`; asserts no failure.
fn passes(variants: &[&str], seed: &str, extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let mut args: Vec<&str> = vec!["--cases", "150", "--seed", seed];
    for v in variants {
        args.extend(["--variant", v]);
    }
    args.extend(extra);
    let (code, out, report) = run(&args, dir.path());
    let found: Vec<String> = failures(&report)
        .iter()
        .map(|(api, rule, f)| format!("{api}: {rule}: {}", f["detail"]))
        .collect();
    assert_eq!(
        code, 0,
        "variants {variants:?}, seed {seed}: {found:#?}\n{out}"
    );
    assert_eq!(
        report["apis"].as_array().map(Vec::len),
        Some(crate::api_count()),
        "{out}"
    );
}

fn every_seed(variant: &str) {
    for seed in ["1", "2", "3"] {
        passes(&[variant], seed, &[]);
    }
}

macro_rules! variant_tests {
    ($($name:ident => $variant:literal),* $(,)?) => {
        $(#[test] fn $name() { every_seed($variant); })*

        #[test]
        fn every_variant_has_a_test_here() {
            let tested = [$($variant),*];
            for v in Variant::ALL {
                assert!(tested.contains(&v.name()), "variant {} has no test", v.name());
            }
        }
    };
}

variant_tests! {
    passes_with_ecs_malformed_ids_code => "ecs-malformed-ids-code",
    passes_with_ecs_ids_as_unknown_instances => "ecs-ids-as-unknown-instances",
    passes_with_ecm_any_id_form => "ecm-any-id-form",
    passes_with_ecm_rejects_windows => "ecm-rejects-windows",
    passes_with_ecm_rejects_running => "ecm-rejects-running",
    passes_with_force_stop_leaves_stopped => "force-stop-leaves-stopped",
    passes_with_running_shut_down_normally => "running-shut-down-normally",
    passes_with_duplicate_ids_rejected => "duplicate-ids-rejected",
    passes_with_unbind_not_bound_rejected => "unbind-not-bound-rejected",
    passes_with_reverse_precedence => "reverse-precedence",
    passes_with_one_based_index_rejected => "one-based-index-rejected",
    passes_with_key_pair_any_region => "key-pair-any-region",
    passes_with_aliyun_timestamp_window_day => "aliyun-timestamp-window-day",
    passes_with_ecs_unknown_instance_rejects_request => "ecs-unknown-instance-rejects-request",
}

#[test]
fn all_variants_at_once_pass_on_three_seeds() {
    let all: Vec<&str> = Variant::ALL.iter().map(|v| v.name()).collect();
    for seed in ["1", "2", "3"] {
        passes(&all, seed, &[]);
    }
    // Several broken rules at once make the precedence variant matter.
    passes(&all, "4", &["--violations", "2"]);
    passes(&["reverse-precedence"], "4", &["--violations", "2"]);
}

/// A variant that takes the other side of a judgement of ours passes by default and fails under
/// `--strict`, naming the judgement; one of an unspecified situation passes under both.
#[test]
fn a_judgement_variant_fails_under_strict_only() {
    for (variant, spec, rule) in [
        ("ecs-malformed-ids-code", "alibaba-ecs", "instance-ids-json"),
        (
            "ecs-ids-as-unknown-instances",
            "alibaba-ecs",
            "instance-id-format",
        ),
        (
            "aliyun-timestamp-window-day",
            "alibaba-ecs",
            "timestamp-window",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let base = ["--variant", variant, "--spec", spec, "--cases", "300"];
        let (code, out, _) = run(&base, dir.path());
        assert_eq!(code, 0, "{variant} passes by default\n{out}");
        let strict: Vec<&str> = base.iter().copied().chain(["--strict"]).collect();
        let (code, out, report) = run(&strict, dir.path());
        assert_eq!(code, 1, "{variant} fails under --strict\n{out}");
        let found = failures(&report);
        assert!(
            found.iter().any(|(_, r, f)| {
                (r == rule || f["detail"].as_str().is_some_and(|d| d.contains(rule)))
                    && f["strength"] == "judgement"
            }),
            "{variant}: a judgement failure naming {rule}: {found:#?}"
        );
        assert!(
            found.iter().all(|(_, _, f)| f["strength"] == "judgement"),
            "{variant}: only judgements fail: {found:#?}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = run(
        &[
            "--variant",
            "duplicate-ids-rejected",
            "--cases",
            "150",
            "--strict",
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "an unspecified situation is never failed\n{out}");
}

/// Every spec entry that names a variant is one whose exchange (in the snapshot corpus) the
/// variant changes: no variant is listed where it takes no other reading, and none is vacuous.
#[test]
fn each_variant_changes_the_exchanges_of_the_entries_naming_it() {
    let set = apiconform::spec::load_embedded().unwrap();
    let world = World::default_world();
    let entries: Vec<snapshot::Entry> = set
        .apis
        .iter()
        .flat_map(|a| snapshot::api_corpus(&set, a, &world))
        .collect();
    let record = |variants: &[Variant]| -> BTreeMap<String, String> {
        let config = Config {
            variants: variants.iter().copied().collect(),
            ..Config::default()
        };
        snapshot::record_in_process(&set, &config, &entries)
            .unwrap()
            .into_iter()
            .map(|r| (r.name, r.yaml))
            .collect()
    };
    let plain = record(&[]);
    // Which corpus entries each variant is named by, per API.
    let mut named: BTreeMap<&str, Vec<(String, String)>> = BTreeMap::new();
    for api in &set.apis {
        let family = set.family(api.spec.api.family);
        let rules = api.spec.rules.iter().chain(family.rules.iter());
        for r in rules {
            let errs = r.errors.iter().flat_map(|e| &e.variants);
            for v in r.variants.iter().chain(errs) {
                named
                    .entry(v.as_str())
                    .or_default()
                    .push((api.name.clone(), r.id.clone()));
            }
        }
        for u in &api.spec.unspecified {
            for v in &u.variants {
                named
                    .entry(v.as_str())
                    .or_default()
                    .push((api.name.clone(), u.id.clone()));
            }
        }
    }
    for v in Variant::ALL {
        let entries = named.get(v.name()).cloned().unwrap_or_default();
        assert!(!entries.is_empty(), "no spec entry names {}", v.name());
        let under = record(&[*v]);
        let changed: Vec<&String> = plain
            .iter()
            .filter(|(name, yaml)| under.get(*name) != Some(yaml))
            .map(|(name, _)| name)
            .collect();
        for (api, id) in &entries {
            let here: Vec<&&String> = changed
                .iter()
                .filter(|n| {
                    n.starts_with(&format!("{api} "))
                        && n.split(' ')
                            .nth(1)
                            .and_then(|e| e.split('.').nth(1))
                            .is_some_and(|e| e == id)
                })
                .collect();
            let exists = plain.keys().any(|n| {
                n.starts_with(&format!("{api} "))
                    && n.split(' ')
                        .nth(1)
                        .and_then(|e| e.split('.').nth(1))
                        .is_some_and(|e| e == id)
            });
            if exists {
                assert!(
                    !here.is_empty(),
                    "{} is named by {api} {id} but changes none of its exchanges (changed: {changed:?})",
                    v.name()
                );
            }
        }
        assert!(!changed.is_empty(), "{} changes nothing", v.name());
    }
}

/// Every fault is still caught with every variant on: the variants make the harness accept other
/// readings, not bugs.
#[test]
fn every_fault_is_still_caught_under_all_variants() {
    let all: Vec<String> = Variant::ALL
        .iter()
        .flat_map(|v| ["--variant".to_string(), v.name().to_string()])
        .collect();
    for f in apiconform::emulator::Fault::ALL {
        let (fault, rules) = (f.name(), f.caught_by());
        let dir = tempfile::tempdir().unwrap();
        let mut args: Vec<&str> = vec![
            "--fault",
            fault,
            "--spec",
            f.spec(),
            "--cases",
            "1000",
            "--seed",
            "3",
        ];
        if f.strict() {
            args.push("--strict");
        }
        if rules.contains(&apiconform::run::LINEARIZABLE_RULE) {
            args.push("--concurrent");
        }
        // Faults between APIs and views show only in the stateful sequences.
        let stateful = [apiconform::run::SEQUENCE_RULE, apiconform::run::VIEWS_RULE];
        if stateful.iter().any(|r| rules.contains(r)) {
            args.push("--stateful");
        }
        // A replayed unbind finds its key unbound by the first send: a target that refuses to
        // unbind what is not bound refuses the replay too, so it is not open to the replay the
        // fault lets through, and nothing is there to catch.
        // A forced bind that leaves its instance STOPPED uses up the world's RUNNING instances
        // early, so no RUNNING instance without ForceStop is left to be accepted wrongly.
        let masks = |v: &str| {
            (fault == "nonce-replay-accepted" && v == "unbind-not-bound-rejected")
                || (fault == "running-accepted-without-shutdown"
                    && v == "force-stop-leaves-stopped")
        };
        args.extend(
            all.chunks(2)
                .filter(|pair| !masks(&pair[1]))
                .flatten()
                .map(String::as_str),
        );
        let (code, out, report) = run(&args, dir.path());
        assert_eq!(code, 1, "fault {fault} under all variants\n{out}");
        let found = failures(&report);
        assert!(
            found.iter().any(|(_, r, _)| rules.contains(&r.as_str())),
            "fault {fault} under all variants: expected one of {rules:?}, got {:?}",
            found
                .iter()
                .map(|(a, r, _)| format!("{a}:{r}"))
                .collect::<Vec<_>>()
        );
    }
}

/// A forced call may leave a RUNNING instance STOPPED. Where the target shows the state (CVM's
/// DescribeInstances) the model reads it back before a case that depends on it; where nothing
/// shows it, a verdict that depends on it is unspecified, never a failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_left_open_is_read_back_or_left_unspecified() {
    use apiconform::run::RunOptions;
    let config = || Config {
        variants: [Variant::ForceStopLeavesStopped].into(),
        ..Config::default()
    };
    let opts = || RunOptions {
        patterns: vec!["tencent-cvm".into()],
        cases: 300,
        seed: 0,
        ..RunOptions::default()
    };
    // Shown: the model follows what DescribeInstances reports.
    let (url, _) = crate::emulator_behind(config(), |_, resp| resp).await;
    let report = crate::run_against(&url, opts()).await;
    let failed: Vec<_> = report.apis.iter().flat_map(|a| &a.failures).collect();
    assert!(failed.is_empty(), "{failed:#?}");
    // Hidden: DescribeInstances no longer says the state, and the admin view is off.
    let (url, _) = crate::emulator_behind(config(), |req, mut resp| {
        if req
            .headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("x-tc-action") && v == "DescribeInstances")
            || String::from_utf8_lossy(&req.body).contains("DescribeInstances")
            || req.target.contains("DescribeInstances")
        {
            let text =
                String::from_utf8_lossy(&resp.body).replace("\"InstanceState\"", "\"Hidden\"");
            resp.body = text.into_bytes();
        }
        resp
    })
    .await;
    let set = apiconform::spec::load_embedded().unwrap();
    let target = apiconform::run::Target::new(&url, std::time::Duration::from_secs(10)).unwrap();
    let mut unknown = 0;
    for seed in 0..4 {
        let stop = std::sync::atomic::AtomicBool::new(false);
        let report = apiconform::run::run(
            &set,
            World::default_world(),
            &target,
            // Without the admin view nothing switches the emulator's rate limits on for a
            // burst: the probe is not what this run is about.
            &RunOptions {
                seed,
                rate_probes: apiconform::run::RateProbes::Never,
                ..opts()
            },
            &apiconform::run::NoProgress,
            &stop,
        )
        .await
        .unwrap();
        let failed: Vec<_> = report.apis.iter().flat_map(|a| &a.failures).collect();
        assert!(failed.is_empty(), "seed {seed}: {failed:#?}");
        unknown += report
            .apis
            .iter()
            .flat_map(|a| &a.unspecified_by)
            .filter(|(why, _)| why.as_str() == "state_unknown")
            .map(|(_, n)| n)
            .sum::<usize>();
    }
    assert!(unknown > 0, "some verdict rested on a state nothing showed");
}

/// The same against `apiconform serve --variant ...` as a target of the user's: `run --target`
/// reports no failure under all variants at once, seed after seed, on the world the server holds.
#[test]
fn run_against_a_served_emulator_with_every_variant_passes() {
    let mut args: Vec<&str> = vec!["--listen", "127.0.0.1:0"];
    for v in Variant::ALL {
        args.extend(["--variant", v.name()]);
    }
    let (mut server, banner, url) = crate::cli::serve(&args);
    assert!(
        banner.contains("variants:"),
        "the banner names them: {banner}"
    );
    for seed in ["1", "2", "3"] {
        let dir = tempfile::tempdir().unwrap();
        let (code, out, report) = run(
            &["--target", &url, "--cases", "150", "--seed", seed],
            dir.path(),
        );
        let found: Vec<String> = failures(&report)
            .iter()
            .map(|(api, rule, f)| format!("{api}: {rule}: {}", f["detail"]))
            .collect();
        assert_eq!(code, 0, "seed {seed}: {found:#?}\n{out}");
    }
    let _ = server.kill();
}
