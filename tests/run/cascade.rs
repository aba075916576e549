//! One bug in a target is one failure, not a trail: the model follows what it observes, reads
//! large batches back in pages the read API accepts, and a case that shared its instances with
//! the culprit is judged again alone.

use apiconform::emulator::{Config, Fault};
use apiconform::protocol;
use apiconform::run::RunOptions;
use apiconform::world::World;

/// CVM accepting 101 instance ids (the emulator's `limit-off-by-one`), behind a read API that
/// holds to its own documented limit of 100 ids per `DescribeInstances`: only the limit rule
/// fails. Before, the 101-id batch could not be read back, or was made while other invalid
/// cases shared its instances, and `binds-keys` failed for the cases after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_unenforced_limit_is_one_failure_not_a_trail() {
    let world = World::default_world();
    for seed in [1, 2, 3] {
        let config = Config {
            world: world.clone(),
            faults: [Fault::LimitOffByOne].into(),
            ..Config::default()
        };
        let (url, _) = super::emulator_behind(config, |req, resp| {
            let Ok(p) = protocol::parse_request(req) else {
                return resp;
            };
            let named = p
                .params
                .get("InstanceIds")
                .and_then(|v| v.as_array())
                .map_or(0, Vec::len);
            if p.action == "DescribeInstances" && named > 100 {
                return protocol::tencent_api3::error(
                    "InvalidParameterValue.LimitExceeded",
                    "at most 100 InstanceIds",
                    "r",
                );
            }
            resp
        })
        .await;
        let opts = RunOptions {
            patterns: vec!["tencent-cvm/".into()],
            cases: 300,
            seed,
            ..Default::default()
        };
        let report = super::run_against(&url, opts).await;
        let rules: Vec<String> = report
            .apis
            .iter()
            .flat_map(|a| a.failures.iter().map(|f| format!("{} {}", a.api, f.rule)))
            .collect();
        assert!(!rules.is_empty(), "seed {seed}: the fault is caught");
        assert!(
            rules.iter().all(|r| r.ends_with(" instance-ids-limit")),
            "seed {seed}: {rules:?}"
        );
    }
}

/// A valid request relying on `ForceStop=true` for a RUNNING instance, rejected with
/// `InvalidInstance.NotSupported` (the code of the Linux-only rule), is reported under the
/// state rule the case exercised, with the code's rule as context; before, it was reported
/// under `instance-linux` for a Linux instance (issue 11, defect 7).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_valid_case_is_named_by_what_it_exercised() {
    let world = World::default_world();
    let config = Config {
        world: world.clone(),
        ..Config::default()
    };
    let (url, _) = super::emulator_behind(config, |req, resp| {
        let Ok(p) = protocol::parse_request(req) else {
            return resp;
        };
        let forced = p.params.get("ForceStop").is_some_and(|v| {
            v.as_bool() == Some(true) || v.as_str().is_some_and(|s| s.eq_ignore_ascii_case("true"))
        });
        if p.action == "AssociateInstancesKeyPairs" && forced {
            return protocol::tencent_api3::error(
                "InvalidInstance.NotSupported",
                "not supported",
                "r",
            );
        }
        resp
    })
    .await;
    let opts = RunOptions {
        patterns: vec!["tencent-cvm/Associate".into()],
        cases: 300,
        seed: 4,
        ..Default::default()
    };
    let report = super::run_against(&url, opts).await;
    let failures: Vec<_> = report.apis.iter().flat_map(|a| &a.failures).collect();
    let rules: Vec<&str> = failures.iter().map(|f| f.rule.as_str()).collect();
    // A valid case naming only STOPPED instances, rejected with the Linux rule's code, is
    // still reported under that rule (the target misapplied it); one relying on ForceStop for a
    // RUNNING instance never is.
    let running = |id: &serde_json::Value| {
        world.instances.iter().any(|i| {
            Some(i.id.as_str()) == id.as_str()
                && i.state == apiconform::spec::InstanceState::Running
        })
    };
    for f in failures.iter().filter(|f| f.rule == "instance-linux") {
        let ids = f.case.params["InstanceIds"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(!ids.iter().any(running), "{rules:?}: {f:#?}");
    }
    let state = failures
        .iter()
        .find(|f| f.rule == "instance-stopped")
        .unwrap_or_else(|| panic!("the state rule is named: {rules:?}"));
    assert!(
        state
            .detail
            .contains("InvalidInstance.NotSupported, the code of rule instance-linux"),
        "{}",
        state.detail
    );
}
