//! CI logs: where stderr is not a terminal, a long run prints a `progress:` line now and then
//! (every 10 s by default; the hidden `--progress-every` shortens it for this test), with the
//! cases done per API, the failures so far and the current wait.

/// A run paced at 20 requests a second for about 3 s, its stderr a pipe: progress lines come,
/// each saying where the run stands.
#[test]
fn a_paced_run_in_a_log_prints_progress_lines() {
    let dir = tempfile::tempdir().unwrap();
    let began = std::time::Instant::now();
    let (code, out, _) = crate::run(
        &[
            "--spec",
            "tencent-ecm",
            "--cases",
            "60",
            "--rate",
            "20",
            "--no-rate-probes",
            "--progress-every",
            "1",
        ],
        dir.path(),
    );
    let took = began.elapsed().as_secs_f64();
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("progress: "))
        .collect();
    // One a second, give or take the first and last.
    assert!(
        lines.len() + 2 >= took as usize && !lines.is_empty(),
        "{took:.1} s, {} progress lines: {out}",
        lines.len()
    );
    let api = "tencent-ecm/DisassociateInstancesKeyPairs";
    for l in &lines {
        assert!(l.contains("/60 cases ("), "{l}");
        assert!(l.contains(api), "{l}");
        assert!(l.contains(" 0 failed"), "{l}");
    }
    assert!(
        lines.iter().any(|l| l.contains("waiting for rate limit")),
        "a paced run waits for its rate limit: {lines:?}"
    );
}
