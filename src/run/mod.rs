//! Running specs against a target: plan, send, observe, reconcile, judge, shrink.
//!
//! Cases enter from [`crate::generate`] through the [`plan`] of a run, verdicts come from
//! [`crate::oracle`], and everything a person or CI needs leaves as a [`RunReport`] (rendered by
//! [`crate::report`]). The pieces, in the order a run meets them:
//!
//! - `setup`: where requests go and what the target may be assumed to hold ([`Setup`]);
//! - `plan`: the lanes of APIs and the cases each sends, the same whatever the target answers
//!   ([`dry_run`] prints it);
//! - `dispatch`: one API's cases as tasks, at most `jobs` at once, counted;
//! - `exchange`: one case's life — plan → send → observe → reconcile → judge;
//! - `send` and `pace`: signing, rate limits, retries; `observe`: the read calls;
//! - `model`: what the runner believes the target holds; `ctx`: the state a run shares;
//! - `shrink`: the one shrink loop; `outcome`: stats, failures, the report, errors;
//! - `coverage`: which rules no judged case exercised, and why (`rules_not_exercised`);
//! - `estimate`: how long a paced run takes, the read calls paced with its cases included
//!   (`--plan`);
//! - `probe`: after an API's cases, a burst over each documented rate limit (loopback targets
//!   only unless asked), which must meet the family's throttling code;
//! - `embedded`: the in-process emulator;
//! - `discover`: a world file from the read APIs alone (`apiconform world discover`);
//! - `selftest`: the harness against the emulator under every fault and every variant.
//!
//! Cases that touch existing instances hold a lock per instance for the whole exchange: alone
//! when the case may change the instance, shared among cases that must fail as a whole.
//! Parallelism never produces a false failure against a conforming target.

mod concurrent;
mod coverage;
mod ctx;
mod discover;
mod dispatch;
mod embedded;
mod estimate;
mod exchange;
mod import;
mod journal;
mod linear;
mod model;
mod observe;
mod outcome;
mod pace;
mod plan;
mod probe;
mod response_set;
mod restore;
mod selftest;
mod send;
mod setup;
mod shrink;
pub mod target;
mod views;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::case::Case;
use crate::oracle::Verdict;
use crate::protocol::describe::Seen;
use crate::protocol::HttpResponse;
use crate::protocol::Keys;
use crate::spec::{LoadedApi, SpecSet};
use crate::world::World;

use ctx::Ctx;
use dispatch::{run_api, Counts, Watch};
use plan::Cases;

pub use crate::case::sdk_case;
pub use concurrent::{Concurrency, HISTORIES, LINEARIZABLE_RULE, SEQUENCE_RULE, VIEWS_RULE};
pub(crate) use coverage::not_drawn;
pub use discover::{
    discover, product_of_instance, products_for, DiscoverError, DiscoverOptions, Discovered,
};
pub use embedded::Embedded;
pub use import::{import, map_ids, Imported};
pub use journal::{
    read as journal_read, Before, Journal, JournalError, JournalFile, JOURNAL_VERSION,
};
pub use outcome::{
    ApiStats, Failure, Merged, MergedRun, NoProgress, NotExercised, ProbeStatus, Progress,
    RateProbe, RunError, RunReport, Shard, Status, Tally, Why, WhyKind, MAX_SHARDS,
};
pub use pace::{rate_for, Limiter, Pace};

/// Cases per API when none is asked for (the library's and the command line's default).
pub const DEFAULT_CASES: usize = 300;

/// Requests in flight at once when none is asked for.
pub const DEFAULT_JOBS: usize = 16;
pub use plan::{dry_run, estimated_seconds, families_sent, plan_summary, select, ApiPlan, Planned};
pub use probe::{PlannedProbe, RateProbes};
pub use restore::{RestoreReport, RestoreStatus, RestoredInstance};
pub use selftest::{
    median, selftest, FaultRow, Row, RowFailure, SelftestOptions, SelftestReport, VariantRow,
};
pub use send::{send_request, Sent};
pub use setup::{Setup, SetupOptions};
pub use shrink::{minimise, Minimised};
pub use target::{parse_endpoint, parse_resolve, Destination, Reach, Target, TransportError};

/// What to run and how.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// API name patterns (substring or `*` glob); empty = every spec.
    pub patterns: Vec<String>,
    /// Cases per API.
    pub cases: usize,
    /// Seed: the same seed gives the same cases.
    pub seed: u64,
    /// Requests in flight at once.
    pub jobs: usize,
    /// Rules broken at once in invalid cases.
    pub violations: usize,
    /// `(index, count)`: run only cases whose position modulo count is index.
    pub shard: Option<(usize, usize)>,
    /// The credentials, a pair per vendor.
    pub keys: Keys,
    /// Whether the target serves the emulator's admin view.
    pub admin: bool,
    /// Most shrink steps per failure.
    pub shrink_steps: usize,
    /// Per-request timeout.
    pub timeout: Duration,
    /// How fast requests go per API.
    pub rate: Pace,
    /// Fail targets on our judgements too, not only on what the documents state.
    pub strict: bool,
    /// Which revision of the documents to judge error codes by.
    pub revision: crate::oracle::Revision,
    /// Most of an API's cases spent on situations the documents leave open (they cannot fail):
    /// 0.10 by default.
    pub unspecified_share: f64,
    /// Where documented rate limits are probed with a burst after an API's cases: loopback
    /// targets only by default.
    pub rate_probes: RateProbes,
    /// Where to journal what instances held before their first change; the run puts back
    /// every reversible change from it when it ends. `None`: no journal, no restore.
    pub journal: Option<std::path::PathBuf>,
    /// Let APIs whose changes the specs cannot undo touch listed instances of a target that is
    /// not on loopback.
    pub allow_irreversible: bool,
    /// Let cases that could stop a RUNNING listed instance go to a target that is not on
    /// loopback (and the restore force-stop what it must put back).
    pub allow_force_stop: bool,
    /// Stop starting cases once this many requests were sent (the cases in flight finish).
    pub max_requests: Option<usize>,
    /// Stop starting cases once the run has taken this long.
    pub max_duration: Option<Duration>,
    /// Where the concurrency phase runs after the cases (`--concurrent`; off by default).
    pub concurrency: Concurrency,
    /// After the cases, sequences over each product's APIs checked step by step against the
    /// model and the views (`--stateful`; off by default).
    pub stateful: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            patterns: vec![],
            cases: DEFAULT_CASES,
            seed: 0,
            jobs: DEFAULT_JOBS,
            violations: 1,
            shard: None,
            keys: crate::emulator::example_keys(),
            admin: false,
            shrink_steps: 200,
            timeout: Duration::from_secs(10),
            rate: Pace::Documented,
            strict: false,
            revision: crate::oracle::Revision::Both,
            unspecified_share: 0.10,
            rate_probes: RateProbes::default(),
            journal: None,
            allow_irreversible: false,
            allow_force_stop: false,
            max_requests: None,
            max_duration: None,
            concurrency: Concurrency::Off,
            stateful: false,
        }
    }
}

/// Runs every selected spec against `target`, starting from the world model `world`.
///
/// The plan decides the cases; each product's lane runs its APIs in order while the lanes run
/// at once, and the report keeps the APIs in selection order.
pub async fn run(
    set: &SpecSet,
    world: World,
    target: &Target,
    opts: &RunOptions,
    progress: &dyn Progress,
    stop: &AtomicBool,
) -> Result<RunReport, RunError> {
    let lanes = plan::lanes(set, &opts.patterns)?;
    let started = Instant::now();
    let requests_before = target.requests_sent();
    let apis: usize = lanes.iter().map(Vec::len).sum();
    let given = world;
    let (world, notes) = plan::guard(set, &given, target, opts)?;
    let ctx = Ctx::new(set, world.clone(), target, opts);
    if let Some(path) = &opts.journal {
        ctx.keep_journal(Journal::create(path, target.url())?);
    }
    let budget = Budget::new(opts, target);
    let counts = Counts::new(lanes.iter().flatten().map(|s| s.api));
    let watch = Watch {
        progress,
        total: apis * opts.cases,
        counts: &counts,
        stop,
    };
    let runs = lanes.iter().map(|lane| {
        let (ctx, watch, world, given) = (&ctx, &watch, &world, &given);
        async move {
            let mut out = Vec::new();
            let mut probing = Duration::ZERO;
            let mut start = world.clone();
            for (n, step) in lane.iter().enumerate() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let cases = Cases::new(set, *step, &start, opts);
                let (mut stats, cases, withheld) = run_api(ctx, step.api, cases, watch).await?;
                let mut facts = coverage::Facts::new(set, &set.apis[step.api], given, &start);
                facts.withheld = withheld;
                facts.cut_short = stop.load(Ordering::Relaxed);
                // The lane waits for the probe's back-off: nothing else goes to the product
                // before the target's window is over.
                let api = &set.apis[step.api];
                let began = Instant::now();
                let (probes, failures) = probe::run(ctx, api, &start, step.position, stop).await?;
                probing += began.elapsed();
                stats.rate_probes = probes;
                stats.failures.extend(failures);
                if n + 1 < lane.len() {
                    start = cases.planned_world();
                }
                out.push((step.position, stats, facts));
            }
            Ok::<_, RunError>((out, probing))
        }
    });
    // Every few seconds of a wait the target asked for, the progress output says so: a run
    // waiting on Retry-After is not a hung one.
    let lanes_done = futures::future::join_all(runs);
    // Every second, where the run stands (a log that is not a terminal prints it now and then).
    let notices = async {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        let mut n = 0u64;
        loop {
            tick.tick().await;
            n += 1;
            let waiting = ctx.longest_wait();
            if let (Some(what), 0) = (&waiting, n % 2) {
                progress.waiting(what);
            }
            progress.status(&status(set, &lanes, &counts, opts.cases, &ctx, waiting));
        }
    };
    // Once the run stops starting cases (Ctrl-C, a budget), the cases waiting for a pacing
    // slot give up waiting: a slow pace must not carry the run past its deadline.
    let halting = async {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        loop {
            tick.tick().await;
            if stop.load(Ordering::Relaxed) {
                ctx.halt();
                return std::future::pending::<std::convert::Infallible>().await;
            }
        }
    };
    let finished = tokio::select! {
        finished = lanes_done => finished,
        never = notices => never,
        never = budget.watch(stop) => match never {},
        never = halting => match never {},
    };
    // The concurrency phase, once every lane is done (nothing else touches its instances).
    let concurrent = match finished.iter().all(Result::is_ok)
        && (opts.stateful || concurrent::wanted(opts, target))
    {
        true => {
            let lanes = concurrent::lanes_of(&lanes);
            Some(concurrent::run(&ctx, set, &lanes, &world, opts, stop).await)
        }
        false => None,
    };
    // Whatever ended the run — all cases, a failure, Ctrl-C, a budget, an error — what it
    // changed is put back before anything else happens.
    let restore = restore_journaled(&ctx, opts, progress).await;
    if let Err(e) = &restore {
        let path = ctx
            .journal()
            .as_ref()
            .map(|j| j.path().display().to_string());
        progress.note(&format!(
            "the restore did not finish: {e}\n  = help: `apiconform restore {}` puts back the rest once the target answers",
            path.unwrap_or_default()
        ));
    }
    if let (Ok(Some(r)), true) = (&restore, finished.iter().any(Result::is_err)) {
        // The run ends in an error and no report will show it: say it now.
        progress.note(&r.summary());
    }
    let mut done = Vec::new();
    let mut probing = Duration::ZERO;
    for lane in finished {
        let (stats, spent) = lane?;
        done.extend(stats);
        probing = probing.max(spent);
    }
    // An API the run stopped before is reported too, with none of its rules exercised.
    for step in lanes.iter().flatten() {
        if !done.iter().any(|(i, ..)| *i == step.position) {
            let api = &set.apis[step.api];
            let mut facts = coverage::Facts::new(set, api, &given, &world);
            facts.cut_short = true;
            done.push((step.position, dispatch::new_stats(&ctx, step.api), facts));
        }
    }
    done.sort_by_key(|(i, ..)| *i);
    let mut notes = notes;
    if let Some(phase) = concurrent {
        let phase = phase?;
        concurrent::merge(set, phase, &mut done, &mut notes);
    }
    let stopped_by = budget.spent();
    let ending = coverage::Ending {
        stopped: match (&stopped_by, stop.load(Ordering::Relaxed)) {
            (Some(budget), _) => Some(budget.as_str()),
            (None, true) => Some("interrupted"),
            (None, false) => None,
        },
        shard: opts.shard,
    };
    let apis = done
        .into_iter()
        .map(|(_, mut stats, facts)| {
            stats.rules_not_exercised = coverage::explain(&stats, &facts, &ending);
            stats
        })
        .collect();
    Ok(RunReport {
        target: target.url().to_string(),
        seed: opts.seed,
        apis,
        interrupted: stop.load(Ordering::Relaxed) && stopped_by.is_none(),
        stopped_by,
        notes,
        restore: restore?,
        seconds: started.elapsed().as_secs_f64(),
        probe_seconds: probing.as_secs_f64(),
        cases_per_api: opts.cases,
        patterns: opts.patterns.clone(),
        shard: opts.shard.map(|(i, n)| Shard {
            index: i + 1,
            count: n,
        }),
        merged: None,
        version: env!("CARGO_PKG_VERSION").to_string(),
        require_exercised: false,
        requests: target.requests_sent() - requests_before,
    })
}

/// Where the run stands now: cases done in all and per API, the current wait.
fn status(
    set: &SpecSet,
    lanes: &[Vec<plan::Step>],
    counts: &Counts,
    cases: usize,
    ctx: &Ctx,
    waiting: Option<String>,
) -> Status {
    let mut steps: Vec<&plan::Step> = lanes.iter().flatten().collect();
    steps.sort_by_key(|s| s.position);
    let apis: Vec<(String, usize, usize)> = steps
        .iter()
        .map(|s| {
            let done = counts
                .per_api
                .get(&s.api)
                .map_or(0, |n| n.load(Ordering::Relaxed));
            (set.apis[s.api].name.clone(), done, cases)
        })
        .collect();
    let waiting = waiting.or_else(|| {
        ctx.pace_wait()
            .map(|d| format!("rate limit {:.1}s", d.as_secs_f64()))
    });
    Status {
        done: counts.done.load(Ordering::Relaxed),
        total: apis.len() * cases,
        failed: counts.failed.load(Ordering::Relaxed),
        apis,
        waiting,
    }
}

/// Puts back what the run of a journal changed (`apiconform restore`): every journaled
/// instance is read again and, where it differs, put back with the specs' calls, then the
/// journal is closed. `opts` carries the credentials, the timeout, whether the target serves
/// the admin view and `allow_force_stop`.
pub async fn restore_journal(
    set: &SpecSet,
    file: &JournalFile,
    target: &Target,
    opts: &RunOptions,
) -> Result<RestoreReport, RunError> {
    let ctx = Ctx::new(set, World::default(), target, opts);
    let mut journal = Journal::reopen(file)?;
    let mut report = restore::restore(&ctx, &file.before, opts.allow_force_stop).await?;
    report.journal = Some(file.path.display().to_string());
    journal.close(report.changed(), report.restored())?;
    Ok(report)
}

/// What the safety rules keep a run against `target` off, one sentence each: the listed
/// instances of APIs whose changes the specs cannot undo, unless `--allow-irreversible`.
pub fn kept_off(
    set: &SpecSet,
    world: &World,
    target: &Target,
    opts: &RunOptions,
) -> Result<Vec<String>, RunError> {
    Ok(plan::guard(set, world, target, opts)?.1)
}

/// `--max-requests` and `--max-duration`: when one is spent, the run stops starting cases,
/// as on Ctrl-C, and says which.
struct Budget {
    target: Target,
    /// The limit given, and the requests the target had seen before the run (a setup's read
    /// of the admin view is not the run's).
    requests: Option<(usize, usize)>,
    duration: Option<(Duration, Instant)>,
    spent: std::sync::Mutex<Option<String>>,
}

impl Budget {
    fn new(opts: &RunOptions, target: &Target) -> Budget {
        Budget {
            target: target.clone(),
            requests: opts.max_requests.map(|n| (n, target.requests_sent())),
            duration: opts.max_duration.map(|d| (d, Instant::now() + d)),
            spent: Default::default(),
        }
    }

    /// Never returns: sets `stop` once a budget is spent.
    async fn watch(&self, stop: &AtomicBool) -> std::convert::Infallible {
        if self.requests.is_none() && self.duration.is_none() {
            return std::future::pending().await;
        }
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        loop {
            tick.tick().await;
            if stop.load(Ordering::Relaxed) {
                continue;
            }
            let sent = |base: usize| self.target.requests_sent() - base;
            let why = match (self.requests, self.duration) {
                (Some((max, base)), _) if sent(base) >= max => Some(format!(
                    "--max-requests {max} ({} requests sent when it stopped starting cases)",
                    sent(base)
                )),
                (_, Some((d, until))) if Instant::now() >= until => {
                    Some(format!("--max-duration {}", humanize(d)))
                }
                _ => None,
            };
            if let Some(why) = why {
                *self.spent.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
                stop.store(true, Ordering::Relaxed);
            }
        }
    }

    fn spent(&self) -> Option<String> {
        self.spent.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A duration as `--max-duration` takes it.
fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (h, 0, 0) => format!("{h}h"),
        _ => format!("{s}s"),
    }
}

/// Puts back what the journal recorded, closes the journal, and says so; `None` when no
/// journal was kept.
async fn restore_journaled(
    ctx: &Ctx,
    opts: &RunOptions,
    progress: &dyn Progress,
) -> Result<Option<RestoreReport>, RunError> {
    let entries = match ctx.journal().as_ref() {
        Some(j) => j.entries().to_vec(),
        None => return Ok(None),
    };
    if entries.is_empty() {
        // Nothing was journaled, so nothing was changed (a change is sent only after its
        // instance is journaled): no restore to report, and no journal left to puzzle over.
        if let Some(j) = ctx.journal().take() {
            let path = j.path().to_path_buf();
            drop(j);
            let _ = std::fs::remove_file(&path);
            progress.note(&format!(
                "journal: no listed instance was changed; {} removed",
                path.display()
            ));
        }
        return Ok(None);
    }
    progress.note(&format!(
        "restoring: {} journaled instance(s) are read back and put back where they changed",
        entries.len()
    ));
    let mut report = restore::restore(ctx, &entries, opts.allow_force_stop).await?;
    let mut journal = ctx.journal();
    if let Some(j) = journal.as_mut() {
        report.journal = Some(j.path().display().to_string());
        j.close(report.changed(), report.restored())?;
    }
    drop(journal);
    Ok(Some(report))
}

/// Runs the selected specs against an emulator started in-process on a loopback port (the
/// setup of `apiconform bench` and of the benchmarks).
pub async fn run_embedded(
    set: &SpecSet,
    world: World,
    opts: &RunOptions,
    progress: &dyn Progress,
    stop: &AtomicBool,
) -> Result<RunReport, RunError> {
    let correct = (Default::default(), Default::default());
    run_embedded_as(set, world, correct, opts, progress, stop).await
}

/// [`run_embedded`] against an emulator with these faults and variants (the self-test's rows).
pub(crate) async fn run_embedded_as(
    set: &SpecSet,
    world: World,
    (faults, variants): (
        std::collections::BTreeSet<crate::emulator::Fault>,
        std::collections::BTreeSet<crate::emulator::Variant>,
    ),
    opts: &RunOptions,
    progress: &dyn Progress,
    stop: &AtomicBool,
) -> Result<RunReport, RunError> {
    let setup = Setup::prepare(SetupOptions {
        specs: None,
        reach: Default::default(),
        target: None,
        world: Some(world),
        faults,
        variants,
        keys: opts.keys.clone(),
        timeout: opts.timeout,
        probe_world: false,
    })
    .await?;
    let opts = RunOptions {
        admin: setup.admin,
        ..opts.clone()
    };
    let result = run(
        set,
        setup.world.clone(),
        &setup.target,
        &opts,
        progress,
        stop,
    )
    .await;
    setup.finish().await;
    result
}

/// The runner's stages for one case at a time, for callers that are not a run: a replay
/// judges one case, a snapshot recording sends and observes each exchange of its corpus.
pub struct Session {
    ctx: Arc<Ctx>,
}

impl Session {
    /// A session against `target`, its model starting from `world`. Each session starts its
    /// nonces at random, like a run.
    pub fn new(set: &SpecSet, world: World, target: &Target, opts: &RunOptions) -> Session {
        Session {
            ctx: Ctx::new(set, world, target, opts),
        }
    }

    /// Signs and sends a case as a run does (a replayed nonce twice), without judging it.
    pub async fn send(&self, api: &LoadedApi, case: &Case) -> Result<Sent, RunError> {
        send::send_case(&self.ctx, api, case).await
    }

    /// Observes the instances a case names as a run does (the read calls, or the admin view
    /// when the options say the target serves it); `None` when nothing can observe this API.
    pub async fn observe(
        &self,
        api: &LoadedApi,
        case: &Case,
    ) -> Result<Option<Vec<Seen>>, RunError> {
        observe::observe(&self.ctx, api, &case.region, &case.instance_ids(api)).await
    }

    /// Sends a case and judges it as a run does, moving the session's model forward.
    pub async fn judge(
        &self,
        api: &LoadedApi,
        case: &Case,
    ) -> Result<(Verdict, HttpResponse), RunError> {
        let judged = exchange::exchange(&self.ctx, api, case, None).await?;
        Ok((judged.verdict, judged.response))
    }
}

/// What the runner's stages made of one exchange someone else sent (the proxy's server side).
#[derive(Debug, Clone)]
pub struct Exchanged {
    /// The verdict, weighed by strength as a run weighs it (`--strict`, `--source`).
    pub verdict: Verdict,
    /// The decoded answer.
    pub outcome: crate::protocol::Outcome,
    /// Rules the request exercises.
    pub rules: Vec<String>,
    /// Why an unspecified verdict is open, in the run report's words.
    pub open_reason: Option<String>,
    /// A success whose effect nothing could observe.
    pub unobservable: bool,
    /// The answer was the family's throttling code: not judged.
    pub throttled: bool,
}

impl Session {
    /// Judges an exchange a client sent, by the stages a run's case goes through: the plan
    /// (the instances' locks, the model before), `forward` in place of the send, then observe,
    /// reconcile and judge. `request` is what the client sent, `case` what it asks for.
    pub async fn judge_forwarded(
        &self,
        api: &LoadedApi,
        case: &Case,
        request: crate::protocol::HttpRequest,
        forward: impl std::future::Future<Output = Result<HttpResponse, RunError>>,
    ) -> Result<Exchanged, RunError> {
        let j = exchange::forwarded(&self.ctx, api, case, request, forward).await?;
        Ok(Exchanged {
            verdict: j.verdict,
            outcome: j.outcome,
            rules: j.rules,
            open_reason: j.open_reason.map(|r| r.to_string()),
            unobservable: j.unobservable,
            throttled: j.disposition == exchange::Disposition::Throttled,
        })
    }

    /// The part of the model a case can reach (the instances and key pairs it names, in any
    /// region), as the model holds them now.
    pub fn reach(&self, case: &Case) -> World {
        self.ctx.model().reach(case)
    }
}

/// One replay of a repro: what was set up first, the verdict and the answer.
#[derive(Debug, Clone)]
pub struct Replayed {
    /// What was done (or could not be done) to meet the preconditions the failing call met,
    /// one line per instance; empty when the repro records none.
    pub set_up: Vec<String>,
    /// The verdict.
    pub verdict: Verdict,
    /// The answer.
    pub response: HttpResponse,
    /// The answer's error code, when it carried one of the family's.
    pub code: Option<String>,
}

/// Re-signs a repro's case with a fresh clock, sends it and judges it again, `runs` times —
/// strictly when the failure rested on our judgement (it was found under `--strict`), so that
/// a target still doing the same thing is not reported as fixed.
///
/// Before each send, the instances the failing call named are put back to what they held
/// before it (`preconditions`), through the specs' own bind and unbind calls where those can
/// undo the difference: a change that sticks (a failed batch that bound keys anyway) shows on
/// every replay instead of once. Only instances `world` lists are touched; what could not be
/// set up is said.
pub async fn replay(
    set: &SpecSet,
    world: World,
    target: &Target,
    opts: &RunOptions,
    failure: &Failure,
    runs: usize,
) -> Result<Vec<Replayed>, RunError> {
    let api = set
        .apis
        .iter()
        .find(|a| a.name == failure.api)
        .ok_or_else(|| RunError::NoSpecs {
            patterns: vec![failure.api.clone()],
        })?;
    let opts = RunOptions {
        strict: opts.strict || failure.strength == Some(crate::oracle::Strength::Judgement),
        ..opts.clone()
    };
    let (pre, unlisted) = preconditions_in(failure, &world);
    let session = Session::new(set, world.clone(), target, &opts);
    let mut out = Vec::new();
    for _ in 0..runs.max(1) {
        // A sequence or a concurrent history, or a rate-limit burst: sent again as the run
        // sent it, checked step by step.
        let again = if !failure.sequence.is_empty() {
            Some(concurrent::replay(&session.ctx, set, &world, &opts, failure).await?)
        } else if failure.rule == crate::oracle::rate::RATE_LIMIT_RULE {
            Some(probe::replay(&session.ctx, api, failure).await?)
        } else {
            None
        };
        if let Some((verdict, response)) = again {
            let code = code_of(api, &response);
            out.push(Replayed {
                set_up: Vec::new(),
                verdict,
                response,
                code,
            });
            continue;
        }
        let mut set_up = unlisted.clone();
        if let Some(pre) = &pre {
            set_up
                .extend(restore::put_back(&session.ctx, api, &failure.case, pre, &|| false).await?);
        }
        let judged = exchange::exchange(&session.ctx, api, &failure.case, None).await?;
        if let Some(e) = not_reproduced(api, &judged) {
            return Err(e);
        }
        let code = code_of(api, &judged.response);
        out.push(Replayed {
            set_up,
            verdict: judged.verdict,
            response: judged.response,
            code,
        });
    }
    Ok(out)
}

/// Why an exchange reproduced nothing, if it did not: a case the guards held back or the run's
/// halt kept unsent, or one answered only with throttling. Never a pass.
fn not_reproduced(api: &LoadedApi, judged: &exchange::Judged) -> Option<RunError> {
    let why = match judged.disposition {
        exchange::Disposition::Judged => return None,
        exchange::Disposition::NotSent(_) | exchange::Disposition::Halted => {
            let detail = &judged.verdict.detail;
            detail
                .strip_prefix("not sent: ")
                .unwrap_or(detail)
                .to_string()
        }
        exchange::Disposition::Throttled => format!(
            "every answer was the target's throttling code ({}): nothing was judged; try again later",
            judged.verdict.actual
        ),
    };
    Some(RunError::NotReproduced {
        api: api.name.clone(),
        why,
    })
}

/// The preconditions a replay may set up — the instances `world` lists, as the failing call met
/// them — and a line for each it may not touch.
fn preconditions_in(failure: &Failure, world: &World) -> (Option<World>, Vec<String>) {
    let Some(pre) = &failure.preconditions else {
        return (None, Vec::new());
    };
    let mut unlisted = Vec::new();
    let instances = pre
        .instances
        .iter()
        .filter(|i| {
            let listed = world
                .instances
                .iter()
                .any(|w| w.id == i.id && w.product == i.product);
            if !listed {
                unlisted.push(format!(
                    "{}: not set up (the world does not list it, so it is not touched): the failing call met it {:?} holding {:?}",
                    i.id, i.state, i.keys
                ));
            }
            listed
        })
        .cloned()
        .collect();
    let pre = World {
        instances,
        key_pairs: pre.key_pairs.clone(),
    };
    (Some(pre), unlisted)
}

fn code_of(api: &LoadedApi, response: &HttpResponse) -> Option<String> {
    match crate::protocol::decode(api.spec.api.family, response).result {
        crate::protocol::OutcomeResult::Error { code, .. } => Some(code),
        _ => None,
    }
}

/// The process's peak resident set in KiB (`VmHWM` of `/proc/self/status`; Linux only).
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
