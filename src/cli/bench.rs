//! `apiconform bench`: checked cases per second and peak memory against the embedded emulator.

use clap::Args;

use super::{exit, finish, runtime, say, Failed};
use crate::run::{self, NoProgress, RunOptions};
use crate::spec;
use crate::world::World;

#[derive(Args)]
pub(super) struct BenchArgs {
    /// Cases per API.
    #[arg(long, default_value_t = 300)]
    cases: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 16)]
    jobs: usize,
    /// Only APIs whose name contains PATTERN (`*` allowed); repeatable.
    #[arg(long = "spec", value_name = "PATTERN")]
    specs: Vec<String>,
    /// Seed: the same seed generates the same cases.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Measure instead the latency `apiconform proxy` adds per request on loopback: valid
    /// requests one at a time, direct to an in-process emulator and through a proxy to a
    /// second one; prints p50 and p99 of each path and the difference.
    #[arg(long)]
    proxy: bool,
    /// Requests timed on each path with --proxy.
    #[arg(long, default_value_t = 2000, requires = "proxy")]
    requests: usize,
}

pub(super) fn bench(args: BenchArgs) -> u8 {
    finish(bench_inner(args))
}

fn bench_inner(args: BenchArgs) -> Result<u8, Failed> {
    let set = spec::load_embedded().map_err(Failed::usage)?;
    if args.proxy {
        let l = runtime()?
            .block_on(crate::proxy::measure_latency(
                &set,
                args.requests.max(1),
                args.seed,
            ))
            .map_err(|e| Failed::target(format!("error: {e}")))?;
        say(format!(
            "{} requests per path, one at a time, on loopback:\n  direct:        p50 {:>7.0} µs  p99 {:>7.0} µs\n  through proxy: p50 {:>7.0} µs  p99 {:>7.0} µs\n  added:         p50 {:>7.0} µs  p99 {:>7.0} µs\nthe proxy judged {} exchanges, {} findings",
            l.requests,
            l.direct_p50_us,
            l.direct_p99_us,
            l.proxied_p50_us,
            l.proxied_p99_us,
            l.added_p50_us(),
            l.added_p99_us(),
            l.judged,
            l.findings
        ));
        return Ok(if l.findings > 0 {
            exit::NONCONFORMANCE
        } else {
            exit::OK
        });
    }
    let opts = RunOptions {
        patterns: args.specs,
        cases: args.cases,
        seed: args.seed,
        jobs: args.jobs.max(1),
        // A burst and its back-off measure nothing of throughput.
        rate_probes: run::RateProbes::Never,
        ..Default::default()
    };
    let stop = std::sync::atomic::AtomicBool::new(false);
    let report = runtime()?.block_on(run::run_embedded(
        &set,
        World::default_world(),
        &opts,
        &NoProgress,
        &stop,
    ))?;
    for a in &report.apis {
        say(format!("{:<46} {:>8} cases", a.api, a.cases));
    }
    let cases = report.cases();
    let rate = cases as f64 / report.seconds.max(f64::EPSILON);
    let rss = run::peak_rss_kib().map_or("unknown".to_string(), |k| {
        format!("{:.1} MiB", k as f64 / 1024.0)
    });
    say(format!(
        "{cases} checked cases in {:.2}s: {rate:.0} cases/s with --jobs {}; {:.2} requests per case ({} requests: cases, re-runs, shrinking, read calls); peak RSS {rss}; {} failed",
        report.seconds,
        opts.jobs,
        report.requests as f64 / cases.max(1) as f64,
        report.requests,
        report.failed()
    ));
    Ok(if report.failed() > 0 {
        exit::NONCONFORMANCE
    } else {
        exit::OK
    })
}
