//! A failure that does not come back when re-run alone is reported unshrunk, saying what the
//! re-run sent and got; a deterministic failure is shrunk.

use std::sync::atomic::{AtomicBool, Ordering};

use apiconform::protocol::HttpResponse;
use apiconform::run::RunOptions;
use apiconform::world::World;

/// A target that garbles its first DetachKeyPair answer only: the run sees a failure, the
/// re-run alone gets the real answer to the same request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_that_does_not_recur_is_reported_unshrunk_with_what_the_rerun_got() {
    let world = World::default_world();
    let garbled = AtomicBool::new(false);
    let (url, _) = super::emulator_behind(
        apiconform::emulator::Config {
            world: world.clone(),
            ..Default::default()
        },
        move |req, resp| {
            let detach =
                apiconform::protocol::parse_request(req).is_ok_and(|p| p.action == "DetachKeyPair");
            if detach && !garbled.swap(true, Ordering::SeqCst) {
                return HttpResponse {
                    status: 500,
                    headers: vec![("Content-Type".into(), "text/html".into())],
                    body: b"<html>upstream hiccup</html>".to_vec(),
                };
            }
            resp
        },
    )
    .await;
    let opts = RunOptions {
        patterns: vec!["alibaba-ecs".into()],
        cases: 40,
        ..Default::default()
    };
    let report = super::run_against(&url, opts).await;
    let failures: Vec<_> = report.apis.iter().flat_map(|a| &a.failures).collect();
    assert_eq!(failures.len(), 1, "{failures:#?}");
    let f = failures[0];
    assert_eq!(f.shrink_steps, 0);
    assert!(
        f.detail.contains("not shrunk: re-run alone"),
        "{}",
        f.detail
    );
    assert!(f.detail.contains("the same request"), "{}", f.detail);
    assert!(
        f.detail.contains("where the run got HTTP 500 malformed"),
        "{}",
        f.detail
    );
}
