//! `apiconform run`: the main job.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::Args;

use super::{
    exit, finish, load_world, parse_fault, parse_variant, runtime, say, tell, CredArgs, Failed,
    TargetArgs,
};
use crate::emulator::{Fault, Variant};
use crate::oracle::Revision;
use crate::protocol::redact::{curl, redact};
use crate::run::{self, Progress, RunOptions, Setup, SetupOptions};
use crate::spec;

/// Where a run against a target that is not on loopback journals, unless told.
const DEFAULT_JOURNAL: &str = "apiconform.journal";

#[derive(Args)]
pub(super) struct RunArgs {
    #[command(flatten)]
    to: TargetArgs,
    /// World file describing what the target holds (required for non-loopback targets).
    #[arg(long)]
    world: Option<PathBuf>,
    /// Only APIs whose name contains PATTERN (`*` allowed); repeatable.
    #[arg(long = "spec", value_name = "PATTERN")]
    specs: Vec<String>,
    /// Read spec files from this folder instead of the built-in ones.
    #[arg(long = "specs-dir", value_name = "DIR")]
    specs_dir: Option<PathBuf>,
    /// Cases per API.
    #[arg(long, default_value_t = run::DEFAULT_CASES)]
    cases: usize,
    /// Seed: the same seed generates the same cases.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Requests in flight at once.
    #[arg(long, default_value_t = run::DEFAULT_JOBS)]
    jobs: usize,
    /// Rules broken at once by invalid cases.
    #[arg(long, default_value_t = 1)]
    violations: usize,
    /// Run only shard I of N (for CI matrices), e.g. 1/4.
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    shard: Option<(usize, usize)>,
    /// Write the JSON report here.
    #[arg(long)]
    report_json: Option<PathBuf>,
    /// Write a JUnit XML report here (one testcase per API and rule).
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Write the report as one self-contained HTML file here (no scripts, nothing fetched):
    /// per API the counts, the rule × outcome and code-coverage matrices, the probes and each
    /// failure with its request, response and curl.
    #[arg(long, value_name = "FILE")]
    report_html: Option<PathBuf>,
    /// Write one repro file per failure into this folder.
    #[arg(long)]
    repro_dir: Option<PathBuf>,
    /// Print the requests the run would send (secrets redacted), in spec order, and send
    /// none of them: the same plan as the run, from the same seed.
    #[arg(long)]
    dry_run: bool,
    /// Print what the run would change and send nothing: per API, the listed instances and key
    /// pairs that may change, the instances a forced case would stop, whether the specs can
    /// undo the changes, and the requests and their time at the documented rates. With
    /// --report-json, the same as JSON.
    #[arg(long, conflicts_with = "dry_run")]
    plan: bool,
    /// Inject a fault into the embedded emulator (self-tests; see `serve --list-faults`).
    #[arg(long = "fault", value_name = "NAME", value_parser = parse_fault)]
    faults: Vec<Fault>,
    /// Make the embedded emulator take another defensible reading where the documents leave a
    /// choice (repeatable; see `serve --list-variants`). A correct harness reports no failure
    /// under any of them.
    #[arg(long = "variant", value_name = "NAME", value_parser = parse_variant)]
    variants: Vec<Variant>,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
    /// Fail targets on our judgements too (where the documents leave a point open and the
    /// specs record the reading taken), not only on what the documents state.
    #[arg(long)]
    strict: bool,
    /// Judge error codes by one revision of the documents: `seed` (the seed documents alone)
    /// or `current` (the vendor's current definitions alone). Default: either passes.
    #[arg(long = "source", value_enum, value_name = "REVISION")]
    source: Option<RevisionArg>,
    /// Most of each API's cases spent on situations the documents leave open (such a case
    /// cannot fail): a share from 0 to 1.
    #[arg(long, value_name = "SHARE", default_value_t = 0.10, value_parser = parse_share)]
    unspecified_share: f64,
    /// Requests per second per API. Default: the documented limit against a remote target
    /// (CVM 10/s, ECM 20/s, 10/s where none is documented), no limit on loopback; 0 = no limit.
    #[arg(long, value_name = "PER_SECOND")]
    rate: Option<f64>,
    /// After each API's cases, send a burst a few requests over its documented rate limit to
    /// this target even though it is not on loopback (by default only loopback targets get
    /// one). Each request names only instances that do not exist: nothing changes.
    #[arg(long, conflicts_with = "no_rate_probes")]
    probe_rate_limits: bool,
    /// Send no rate-limit bursts at all, not even to a loopback target.
    #[arg(long)]
    no_rate_probes: bool,
    /// Write what each listed instance holds, before the run first changes it, to FILE (one
    /// JSON object per line, flushed before each such request); the run puts every reversible
    /// change back from it when it ends, and `apiconform restore FILE` after a crash. Default
    /// against a target that is not on loopback: ./apiconform.journal.
    #[arg(long, value_name = "FILE")]
    journal: Option<PathBuf>,
    /// Let APIs whose changes the specs cannot undo (ECM DisassociateInstancesKeyPairs, ECS
    /// DetachKeyPair) touch the listed instances of a target that is not on loopback.
    #[arg(long)]
    allow_irreversible: bool,
    /// Let cases that could stop a RUNNING listed instance (ForceStop, or a target that shuts
    /// it down normally) go to a target that is not on loopback; the restore may then stop it
    /// too, to put its keys back.
    #[arg(long)]
    allow_force_stop: bool,
    /// Stop starting cases once N requests were sent (the cases in flight finish, what changed
    /// is put back, every report is written; exit code 4).
    #[arg(long, value_name = "N")]
    max_requests: Option<usize>,
    /// Stop starting cases after this long: 90s, 45m, 2h (then as --max-requests).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    max_duration: Option<std::time::Duration>,
    /// After the cases, per product: 24 histories of one call then two or three branches sent
    /// at once on two shared STOPPED instances, mixing all the product's APIs (CVM's API 3.0
    /// and API 2.0 together). The keys are read before and after; some serial order of the
    /// calls must explain every answer and the keys read (rule `linearizable`: a lost update,
    /// an interleaved batch). Against a remote target only listed instances are used, they
    /// are journaled and restored, and requests are paced. See docs/stateful.md.
    #[arg(long)]
    concurrent: bool,
    /// After the cases, per product: 24 sequences of four to six calls over all the product's
    /// APIs on two shared STOPPED instances, one after another; after each call the keys are
    /// read and must follow from the calls so far by the specs' effects (rule `sequence`), and
    /// every view of a binding must agree (CVM DescribeInstances and DescribeKeyPairs; rule
    /// `views-agree`). Turns --concurrent on too against a loopback target. See
    /// docs/stateful.md.
    #[arg(long)]
    stateful: bool,
    /// Count a rule no judged case exercised as a failure (exit 1), for CI: a run that left a
    /// rule untested (no instance in the world for a valid case, cases held back, a budget
    /// ...) does not pass. The reports list each such rule with why.
    #[arg(long)]
    require_exercised: bool,
    /// Seconds between `progress:` lines on stderr when it is not a terminal (tests).
    #[arg(long, hide = true, value_name = "SECONDS", default_value_t = 10.0)]
    progress_every: f64,
    #[command(flatten)]
    creds: CredArgs,
}

/// A revision of the documents, as `--source` names it.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(super) enum RevisionArg {
    /// The seed documents alone.
    Seed,
    /// The vendor's current definitions alone.
    Current,
}

impl RevisionArg {
    /// The oracle's revision for an optional `--source`.
    pub(super) fn revision(arg: Option<RevisionArg>) -> Revision {
        match arg {
            None => Revision::Both,
            Some(RevisionArg::Seed) => Revision::Seed,
            Some(RevisionArg::Current) => Revision::Current,
        }
    }
}

fn parse_share(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "--unspecified-share takes a share from 0 to 1 (e.g. 0.1), not `{s}`"
        )),
    }
}

/// `90s`, `45m`, `2h`, or whole seconds.
pub(super) fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let bad =
        || format!("--max-duration takes a whole number with s, m or h (90s, 45m, 2h), not `{s}`");
    let t = s.trim();
    let (n, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => t.split_at(i),
        None => (t, "s"),
    };
    let n: u64 = n.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(bad()),
    };
    if secs == 0 {
        return Err(bad());
    }
    Ok(std::time::Duration::from_secs(secs))
}

fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let bad = || {
        format!(
            "--shard takes I/N with 1 <= I <= N <= {} (e.g. 2/4), not `{s}`",
            run::MAX_SHARDS
        )
    };
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let i: usize = i.parse().map_err(|_| bad())?;
    let n: usize = n.parse().map_err(|_| bad())?;
    if i == 0 || n == 0 || i > n || n > run::MAX_SHARDS {
        return Err(bad());
    }
    Ok((i - 1, n))
}

/// Live progress on stderr when it is a terminal and not under CI; elsewhere (a CI log, a
/// pipe) a `progress:` line every `every` so that a long run is never silent.
pub(super) struct Bar {
    enabled: bool,
    every: std::time::Duration,
    /// When the last `progress:` line was printed (or the run started).
    last: std::sync::Mutex<std::time::Instant>,
}

impl Bar {
    /// A bar that prints a `progress:` line every `every` where the live bar is off.
    pub(super) fn every(every: std::time::Duration) -> Bar {
        Bar {
            enabled: std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("CI").is_none(),
            every,
            last: std::sync::Mutex::new(std::time::Instant::now()),
        }
    }
}

impl Progress for Bar {
    fn update(&self, done: usize, total: usize, failed: usize) {
        if self.enabled && (done % 64 == 0 || done == total) {
            use std::io::Write;
            let mut err = std::io::stderr();
            let _ = write!(err, "\r{done}/{total} cases, {failed} failed ");
            if done == total {
                let _ = writeln!(err);
            }
        }
    }

    fn note(&self, what: &str) {
        tell(what);
    }

    fn waiting(&self, what: &str) {
        // Printed even where the bar is off (CI, a pipe): a long silence must explain itself.
        tell(format!("waiting: {what}"));
    }

    fn status(&self, status: &run::Status) {
        if self.enabled {
            return;
        }
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        // The status comes about once a second: print when the next one would be late.
        let tick = std::time::Duration::from_millis(500);
        if last.elapsed() + tick >= self.every {
            *last = std::time::Instant::now();
            eprintln!("{}", status.line());
        }
    }
}

pub(super) fn run(args: RunArgs) -> u8 {
    finish(run_inner(args))
}

fn run_inner(args: RunArgs) -> Result<u8, Failed> {
    let set = match &args.specs_dir {
        Some(d) => spec::load_dir(d),
        None => spec::load_embedded(),
    }
    .map_err(Failed::usage)?;
    let world = load_world(args.world.as_deref())?;
    let keys = args.creds.resolve();
    let mut opts = RunOptions {
        patterns: args.specs.clone(),
        cases: args.cases,
        seed: args.seed,
        jobs: args.jobs.max(1),
        violations: args.violations.max(1),
        shard: args.shard,
        keys: keys.clone(),
        timeout: std::time::Duration::from_secs(args.timeout.max(1)),
        rate: run::Pace::from_flag(args.rate),
        strict: args.strict,
        unspecified_share: args.unspecified_share,
        revision: RevisionArg::revision(args.source),
        rate_probes: match (args.probe_rate_limits, args.no_rate_probes) {
            (_, true) => run::RateProbes::Never,
            (true, false) => run::RateProbes::Always,
            (false, false) => run::RateProbes::Loopback,
        },
        allow_irreversible: args.allow_irreversible,
        allow_force_stop: args.allow_force_stop,
        max_requests: args.max_requests,
        max_duration: args.max_duration,
        concurrency: match (args.concurrent, args.stateful) {
            (true, _) => run::Concurrency::Always,
            (false, true) => run::Concurrency::Loopback,
            (false, false) => run::Concurrency::Off,
        },
        stateful: args.stateful,
        ..Default::default()
    };
    let reach = args.to.reach()?;
    let rt = runtime()?;
    rt.block_on(async move {
        let setup = Setup::prepare(SetupOptions {
            specs: Some(set.clone()),
            reach,
            target: args.to.destination(),
            world,
            faults: args.faults.iter().copied().collect(),
            variants: args.variants.iter().copied().collect(),
            keys,
            timeout: opts.timeout,
            // A dry run sends nothing at all, not even the admin view's read: it plans from
            // --world, else the built-in world.
            probe_world: !args.dry_run && !args.plan,
        })
        .await?;
        if !setup.target.is_loopback() && !args.dry_run && !args.plan {
            // The families this run signs for: the selected APIs' and their read calls'.
            let families = run::families_sent(&set, &opts.patterns);
            args.creds.require(families, setup.target.url())?;
        }
        opts.admin = setup.admin;
        if args.dry_run {
            let printed = dry_run(&set, &setup, &opts);
            setup.finish().await;
            return printed;
        }
        if args.plan {
            let printed = plan(&set, &setup, &opts, args.report_json.as_deref());
            setup.finish().await;
            return printed;
        }
        // Against a target that is not on this machine, what the run changes is always
        // journaled, so that it can be put back.
        opts.journal = args.journal.clone().or_else(|| {
            (!setup.target.is_loopback()).then(|| PathBuf::from(DEFAULT_JOURNAL))
        });
        if let Some(j) = &opts.journal {
            eprintln!(
                "journal: {} (what each instance held before its first change; `apiconform restore {}` puts it back after a crash)",
                j.display(),
                j.display()
            );
        }
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let journal = opts.journal.clone();
        let mut signals = Signals::new();
        tokio::spawn(async move {
            let name = signals.next().await;
            eprintln!("\ninterrupted ({name}): finishing the cases in flight, putting back what changed, writing the reports (a second Ctrl-C or SIGTERM quits at once)");
            flag.store(true, Ordering::Relaxed);
            let name = signals.next().await;
            match &journal {
                Some(j) => eprintln!(
                    "quit ({name}): what changed is still in {}: run `apiconform restore {}`",
                    j.display(),
                    shell_word(&j.display().to_string())
                ),
                None => eprintln!("quit ({name})"),
            }
            std::process::exit(exit::TARGET.into());
        });
        let result = run::run(
            &set,
            setup.world.clone(),
            &setup.target,
            &opts,
            &Bar::every(std::time::Duration::from_secs_f64(
                args.progress_every.clamp(0.5, 3600.0),
            )),
            &stop,
        )
        .await;
        let result = result.map_err(Failed::from);
        setup.finish().await;
        let mut report = result?;
        report.require_exercised = args.require_exercised;
        say(crate::report::table(&report).trim_end());
        super::report::write_reports(
            &report,
            args.report_json.as_deref(),
            args.junit.as_deref(),
            args.report_html.as_deref(),
        )?;
        if let Some(dir) = &args.repro_dir {
            let paths = crate::report::write_repros(&report, dir).map_err(|e| {
                Failed::target(format!(
                    "error: cannot write repros to {}: {e}",
                    dir.display()
                ))
            })?;
            for p in paths {
                say(format!("repro: {}", p.display()));
            }
        }
        Ok(if report.restore.as_ref().is_some_and(|r| !r.complete()) {
            exit::NOT_RESTORED
        } else if report.interrupted {
            exit::TARGET
        } else if report.failed() > 0 || (report.require_exercised && !report.all_exercised()) {
            exit::NONCONFORMANCE
        } else if report.stopped_by.is_some() {
            exit::BUDGET
        } else {
            exit::OK
        })
    })
}

/// SIGINT (Ctrl-C) and SIGTERM (what CI runners and `timeout` send), read as one: each asks the
/// run to stop, put back what it changed and write its reports.
pub(super) struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    /// Listens for both from now on (inside the runtime).
    pub(super) fn new() -> Signals {
        Signals {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok(),
        }
    }

    /// The next signal's name.
    pub(super) async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        if let Some(term) = self.term.as_mut() {
            return tokio::select! {
                _ = tokio::signal::ctrl_c() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            };
        }
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}

/// A path as one shell word, quoted when it needs to be.
fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:=@".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Prints the plan: each request as a redacted curl command under a line naming the case.
fn plan(
    set: &spec::SpecSet,
    setup: &Setup,
    opts: &RunOptions,
    json: Option<&std::path::Path>,
) -> Result<u8, Failed> {
    let plans = run::plan_summary(set, &setup.world, &setup.target, opts)?;
    say(format!(
        "{:<42} {:>8} {:>6} {:>14} {:>9} {:>9} {:>12}  undone by",
        "API", "requests", "reads", "at doc. rate", "instances", "key pairs", "force-stops"
    ));
    for p in &plans {
        say(format!(
            "{:<42} {:>8} {:>6} {:>14} {:>9} {:>9} {:>12}  {}",
            p.api,
            p.requests,
            p.reads,
            format!(
                "{:.0} s ({}/s{})",
                p.seconds_at_documented_rate.ceil(),
                p.documented_rate,
                if p.rate_documented { "" } else { "*" }
            ),
            p.instances.len(),
            p.key_pairs.len(),
            p.force_stopped.len(),
            match &p.reversible {
                Ok(by) => by.clone(),
                Err(why) => format!("NOT REVERSIBLE: {why}"),
            }
        ));
    }
    for note in run::kept_off(set, &setup.world, &setup.target, opts)? {
        say(format!("kept off: {note}"));
    }
    if plans.iter().any(|p| !p.rate_documented) {
        say("* no rate documented: the pace kept against remote targets".to_string());
    }
    let estimate = run::estimated_seconds(set, &plans);
    say(match estimate {
        Some(s) => format!(
            "estimated time: {:.0} s at this run's pace (requests and the reads that go with them; the products' lanes run at once; the restore after)",
            s.ceil()
        ),
        None => "estimated time: not paced (a loopback target without --rate): as fast as the target answers".to_string(),
    });
    for p in &plans {
        for w in &p.warnings {
            say(format!("warning: {}: {w}", p.api));
        }
    }
    for p in plans.iter().filter(|p| !p.instances.is_empty()) {
        say(format!("{} may change: {}", p.api, p.instances.join(", ")));
        if !p.force_stopped.is_empty() {
            say(format!(
                "{} may stop and start: {}",
                p.api,
                p.force_stopped.join(", ")
            ));
        }
    }
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(
            &serde_json::json!({ "plan": plans, "estimated_seconds": estimate }),
        )
        .unwrap_or_default();
        std::fs::write(path, text + "\n")
            .map_err(|e| Failed::usage(format!("cannot write {}: {e}", path.display())))?;
    }
    Ok(exit::OK)
}

fn dry_run(set: &spec::SpecSet, setup: &Setup, opts: &RunOptions) -> Result<u8, Failed> {
    let target = &setup.target;
    run::dry_run(set, &setup.world, target, opts, |p| {
        if let Some(probe) = &p.probe {
            let sent = match &probe.not_sent {
                None => format!(
                    "would be sent ({} times at once, a second burst if none is throttled, then a back-off to the next second)",
                    probe.burst
                ),
                Some(why) => format!("not sent: {why}"),
            };
            return say(format!(
                "# {} rate-limit probe: {}/s ({} § {}); the request below {sent}\n{}",
                p.api,
                probe.limit.per_second,
                probe.limit.source.doc,
                probe.limit.source.section,
                curl(&redact(&p.request), &target.base_for(&p.request))
            ));
        }
        let twice = if p.sends == 2 {
            " (sent twice: a replayed nonce)"
        } else {
            ""
        };
        let example = match &p.case.example {
            Some(name) => format!(" (the document's example «{name}»)"),
            None => String::new(),
        };
        say(format!(
            "# {} case {}: breaks {:?}{twice}{example}\n{}",
            p.api,
            p.index,
            p.case.violates,
            curl(&redact(&p.request), &target.base_for(&p.request))
        ))
    })?;
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn max_duration_takes_seconds_minutes_and_hours_and_refuses_the_rest() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("45m"), Ok(Duration::from_secs(45 * 60)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        for bad in ["", "0s", "1d", "m", "1.5h", "-3m"] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.contains("45m"), "{bad}: {err}");
        }
    }
}
