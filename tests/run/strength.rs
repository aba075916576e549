//! Only what the documents state fails a target by default; `--strict` holds it to our
//! judgements too, and every failure says which it rests on.

use apiconform::emulator::Config;
use apiconform::oracle::Strength;
use apiconform::protocol::{self, aliyun_rpc, OutcomeResult, ResponseFormat};
use apiconform::run::RunOptions;
use apiconform::world::World;

use crate::{failures, run as run_cli};

/// Alibaba accepting timestamps of any age breaks only our reading of a window no reference
/// states: unspecified by default, a failure resting on a judgement under `--strict`.
#[test]
fn a_broken_judgement_fails_only_under_strict() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--fault",
        "stale-timestamp-accepted",
        "--spec",
        "alibaba-ecs",
        "--cases",
        "400",
        "--seed",
        "2",
    ];
    let (code, out, report) = run_cli(&args, dir.path());
    assert_eq!(code, 0, "{out}");
    assert!(failures(&report).is_empty());
    let strict = tempfile::tempdir().unwrap();
    let mut with = args.to_vec();
    with.push("--strict");
    let junit = strict.path().join("junit.xml");
    with.extend(["--junit", junit.to_str().unwrap()]);
    let (code, out, report) = run_cli(&with, strict.path());
    assert_eq!(code, 1, "{out}");
    let found = failures(&report);
    let (_, _, f) = found
        .iter()
        .find(|(_, r, _)| r == "timestamp-window")
        .unwrap_or_else(|| panic!("{found:?}"));
    assert_eq!(f["strength"], "judgement", "{f}");
    let xml = std::fs::read_to_string(junit).unwrap();
    assert!(xml.contains("[our judgement (--strict)]"), "{xml}");
    // The same fault on a family that states its window is a failure by default.
    let stated = tempfile::tempdir().unwrap();
    let (code, out, report) = run_cli(
        &[
            "--fault",
            "stale-timestamp-accepted",
            "--spec",
            "tencent-cvm/Associate",
            "--cases",
            "400",
        ],
        stated.path(),
    );
    assert_eq!(code, 1, "{out}");
    let found = failures(&report);
    let (_, _, f) = found
        .iter()
        .find(|(_, r, _)| r == "timestamp-window")
        .unwrap();
    assert_ne!(f["strength"], "judgement", "{f}");
}

/// A target answering 400 `InvalidInstanceIds.MalFormed` (a real ECS code) where the emulator
/// answers `InvalidInstanceIds.ValueNotSupported` or `InvalidParameter` for a bad InstanceIds:
/// no document maps these situations to a code, so it passes; `--strict` asks for our codes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_no_document_pins_pass_any_error_in_the_envelope() {
    let world = World::default_world();
    for strict in [false, true] {
        let config = Config {
            world: world.clone(),
            ..Config::default()
        };
        let (url, _) = super::emulator_behind(config, |req, resp| {
            let Ok(p) = protocol::parse_request(req) else {
                return resp;
            };
            if p.action != "DetachKeyPair" {
                return resp;
            }
            let out = protocol::decode(protocol::FamilyId::AliyunRpc, &resp);
            match out.result {
                OutcomeResult::Error { code, .. }
                    if code == "InvalidInstanceIds.ValueNotSupported"
                        || code == "InvalidParameter" =>
                {
                    let format = if p.format == ResponseFormat::Json {
                        ResponseFormat::Json
                    } else {
                        ResponseFormat::Xml
                    };
                    aliyun_rpc::error(400, "InvalidInstanceIds.MalFormed", "bad ids", "r", format)
                }
                _ => resp,
            }
        })
        .await;
        let opts = RunOptions {
            patterns: vec!["alibaba-ecs".into()],
            cases: 300,
            seed: 1,
            strict,
            ..Default::default()
        };
        let report = super::run_against(&url, opts).await;
        let failed: Vec<_> = report.apis.iter().flat_map(|a| &a.failures).collect();
        if strict {
            assert!(!failed.is_empty(), "--strict asks for our codes");
            assert!(
                failed
                    .iter()
                    .all(|f| f.strength == Some(Strength::Judgement)),
                "{failed:#?}"
            );
        } else {
            assert!(failed.is_empty(), "{failed:#?}");
            assert!(report.apis[0].unspecified > 0);
        }
    }
}

/// A failure found under `--source seed` is a failure of that revision: `replay --source seed`
/// still reports it, a replay judging by either revision does not.
#[test]
fn a_repro_found_under_source_is_replayed_by_the_same_revision() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, report) = run_cli(
        &[
            "--source",
            "seed",
            "--spec",
            "tencent-cvm/Associate",
            "--cases",
            "100",
        ],
        dir.path(),
    );
    assert_eq!(
        code, 1,
        "the emulator answers current codes in places\n{out}"
    );
    assert!(!failures(&report).is_empty());
    let repro = crate::first_repro(dir.path());
    let replay = |extra: &[&str]| {
        crate::bin()
            .arg("replay")
            .arg(&repro)
            .args(extra)
            .env("CI", "true")
            .output()
            .unwrap()
    };
    let by_seed = replay(&["--source", "seed"]);
    assert_eq!(
        by_seed.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&by_seed.stdout)
    );
    let either = replay(&[]);
    assert_eq!(
        either.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&either.stdout)
    );
}
