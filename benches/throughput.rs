//! Checked cases per second against the embedded emulator (`cargo bench --bench throughput`).
//!
//! Runs the default suite (every spec, the built-in world) through the whole hot loop: generate,
//! sign, send over loopback HTTP, emulate, decode, judge, observe. Plain `Instant` timing, no
//! harness: `APICONFORM_BENCH_CASES` (default 300 per API) and `APICONFORM_BENCH_JOBS`
//! (default 16) size it; the first run warms up.

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use apiconform::run::{self, NoProgress, RunOptions};
use apiconform::world::World;

// As in the binary (src/main.rs): the same allocator, so this measures what users run.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let set = apiconform::spec::load_embedded().expect("the built-in specs load");
    let cases = env("APICONFORM_BENCH_CASES", 300);
    let jobs = env("APICONFORM_BENCH_JOBS", 16);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let stop = AtomicBool::new(false);
    let mut rates = Vec::new();
    for round in 0..4 {
        let opts = RunOptions {
            cases,
            jobs,
            seed: round,
            rate_probes: run::RateProbes::Never,
            ..Default::default()
        };
        let started = Instant::now();
        let report = rt
            .block_on(run::run_embedded(
                &set,
                World::default_world(),
                &opts,
                &NoProgress,
                &stop,
            ))
            .expect("the embedded run completes");
        let seconds = started.elapsed().as_secs_f64();
        assert_eq!(report.failed(), 0, "the correct emulator passes");
        let rate = report.cases() as f64 / seconds;
        println!(
            "round {round}: {} cases in {seconds:.3}s = {rate:.0} cases/s{}",
            report.cases(),
            if round == 0 { " (warm-up)" } else { "" }
        );
        if round > 0 {
            rates.push(rate);
        }
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "throughput: median {:.0} cases/s ({cases} cases per API, --jobs {jobs}); peak RSS {} KiB",
        rates[rates.len() / 2],
        run::peak_rss_kib().unwrap_or(0)
    );
}
