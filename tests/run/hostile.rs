//! The harness against targets that misbehave: what they answer is judged, and nothing they do
//! makes the harness send secrets elsewhere or print them.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use apiconform::emulator::Config;
use apiconform::protocol::{self, HttpResponse};
use apiconform::run::{self, NoProgress, RunOptions, Target};
use apiconform::world::World;

/// A 307 from the target is its answer: judged (a failure), never followed to the host it
/// names, which would receive the signed request, secret id and signature included (issue 15,
/// defect 8: reqwest's default policy followed up to ten redirects).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_is_an_answer_and_is_not_followed() {
    let (elsewhere, log) = super::emulator_behind(Config::default(), |_, resp| resp).await;
    let (url, _) = super::emulator_behind(Config::default(), move |req, resp| {
        if protocol::parse_request(req).is_ok_and(|p| p.action == "DetachKeyPair") {
            return HttpResponse {
                status: 307,
                headers: vec![("Location".into(), format!("{elsewhere}{}", req.target))],
                body: vec![],
            };
        }
        resp
    })
    .await;
    let report = super::run_against(
        &url,
        RunOptions {
            patterns: vec!["alibaba-ecs".into()],
            cases: 30,
            ..Default::default()
        },
    )
    .await;
    assert!(
        log.lock().unwrap().is_empty(),
        "nothing reaches the other host"
    );
    assert!(report.failed() > 0, "a 307 is judged");
}

/// A target that cannot be reached is reported without the signed URL: Alibaba's query carries
/// the AccessKeyId and a live Signature (issue 15, defect 12).
#[tokio::test]
async fn an_unreachable_target_is_reported_without_the_signed_url() {
    let set = apiconform::spec::load_embedded().unwrap();
    // Port 9 on loopback: nothing listens there on these machines.
    let target = Target::new("http://127.0.0.1:9", Duration::from_secs(2)).unwrap();
    let opts = RunOptions {
        patterns: vec!["alibaba-ecs".into()],
        cases: 3,
        admin: true,
        ..Default::default()
    };
    let stop = AtomicBool::new(false);
    let err = run::run(
        &set,
        World::default_world(),
        &target,
        &opts,
        &NoProgress,
        &stop,
    )
    .await
    .expect_err("nothing listens");
    let text = format!("{err} {err:?}");
    assert!(text.contains("cannot reach"), "{text}");
    for secret in ["AccessKeyId=", "Signature=", "testid"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
}
