//! Running specs against a target: generate, sign, send, decode, judge, observe, shrink.
//!
//! Cases enter from [`crate::generate`], verdicts come from [`crate::oracle`], and everything a
//! person or CI needs leaves as a [`RunReport`] (rendered by [`crate::report`]). Cases that touch
//! existing instances hold a lock per instance for the whole exchange (send, observe, update the
//! model): alone when the case may change the instance, shared among cases that must fail as a
//! whole. Parallelism never produces a false failure against a conforming target; the rest run
//! freely. The APIs of one product run in spec order; different products run at once.

mod observe;
pub mod target;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proptest::strategy::ValueTree;
use serde::{Deserialize, Serialize};

use crate::generate::{self, AuthFault, Case, GenOptions};
use crate::oracle::{self, VerdictKind};
use crate::protocol::{
    self, Call, Clock, Credentials, FamilyId, HttpRequest, HttpResponse, Outcome,
};
use crate::spec::{LoadedApi, Source, SpecSet};
use crate::world::World;
pub use observe::{instance_ids, Seen};
pub use target::{Target, TransportError};

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
    /// Tencent credentials.
    pub tencent: Credentials,
    /// Alibaba credentials.
    pub alibaba: Credentials,
    /// Whether the target serves the emulator's admin view.
    pub admin: bool,
    /// Most shrink steps per failure.
    pub shrink_steps: usize,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Requests per second per API: `None` = the documented limit against non-loopback targets
    /// (unlimited on loopback), `Some(0.0)` = unlimited, `Some(r)` = at most `r`.
    pub rate: Option<f64>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            patterns: vec![],
            cases: 256,
            seed: 0,
            jobs: 16,
            violations: 1,
            shard: None,
            tencent: Credentials::from_pair(crate::emulator::TENCENT_DEFAULT),
            alibaba: Credentials::from_pair(crate::emulator::ALIBABA_DEFAULT),
            admin: false,
            shrink_steps: 200,
            timeout: Duration::from_secs(10),
            rate: None,
        }
    }
}

/// One nonconformance, shrunk, with everything needed to reproduce it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Failure {
    /// API name.
    pub api: String,
    /// The rule broken by the target.
    pub rule: String,
    /// Where the rule is stated.
    pub source: Option<Source>,
    /// What the spec expects.
    pub expected: String,
    /// What the target did.
    pub actual: String,
    /// More detail.
    pub detail: String,
    /// The minimal case.
    pub case: Case,
    /// The exact request sent, secrets redacted.
    pub request: HttpRequest,
    /// The response status.
    pub status: u16,
    /// The response body as text.
    pub response: String,
    /// The same request as a curl command.
    pub curl: String,
    /// Shrink steps taken.
    pub shrink_steps: usize,
}

/// Counters for one API.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ApiStats {
    /// API name.
    pub api: String,
    /// Cases run.
    pub cases: usize,
    /// Passed.
    pub pass: usize,
    /// Failed.
    pub fail: usize,
    /// Unspecified by the documents.
    pub unspecified: usize,
    /// Rule ids exercised.
    pub rules_exercised: BTreeSet<String>,
    /// All rule ids of the spec and its family.
    pub rules_total: BTreeSet<String>,
    /// Error codes the target answered that the spec documents.
    pub codes_provoked: BTreeSet<String>,
    /// Codes the spec documents as reachable.
    pub codes_documented: BTreeSet<String>,
    /// Effects that could not be observed (no view of the binding).
    pub unobservable_effects: usize,
    /// Retries after transport faults.
    pub retries: usize,
    /// Failures, shrunk, one per rule.
    pub failures: Vec<Failure>,
}

/// The result of a run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunReport {
    /// Target URL.
    pub target: String,
    /// Seed used.
    pub seed: u64,
    /// Per API.
    pub apis: Vec<ApiStats>,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Whether the run stopped early (Ctrl-C).
    pub interrupted: bool,
}

impl RunReport {
    /// Cases run in all.
    pub fn cases(&self) -> usize {
        self.apis.iter().map(|a| a.cases).sum()
    }
    /// Failures in all.
    pub fn failed(&self) -> usize {
        self.apis.iter().map(|a| a.fail).sum()
    }
}

/// Errors that stop a run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// No spec matched the patterns.
    #[error("no spec matches {patterns:?}\n  = help: `apiconform specs list` shows the names")]
    NoSpecs {
        /// The patterns given.
        patterns: Vec<String>,
    },
    /// The target is unreachable.
    #[error(transparent)]
    Transport(#[from] TransportError),
}

/// Live progress: called after every case.
pub trait Progress: Send + Sync {
    /// `done` of `total` cases, `failed` so far.
    fn update(&self, done: usize, total: usize, failed: usize);
}

/// No progress output.
pub struct NoProgress;
impl Progress for NoProgress {
    fn update(&self, _: usize, _: usize, _: usize) {}
}

/// Selects the APIs whose names match any pattern (all when none given).
pub fn select<'a>(set: &'a SpecSet, patterns: &[String]) -> Vec<&'a LoadedApi> {
    set.apis
        .iter()
        .filter(|a| patterns.is_empty() || patterns.iter().any(|p| matches(p, &a.name)))
        .collect()
}

fn matches(pattern: &str, name: &str) -> bool {
    if let Some((pre, post)) = pattern.split_once('*') {
        return name.starts_with(pre) && name[pre.len()..].contains(post.trim_end_matches('*'));
    }
    name.contains(pattern) || name.eq_ignore_ascii_case(pattern)
}

/// Shared state of one run, owned so that exchanges can run as tasks on every worker thread.
struct Ctx {
    set: Arc<SpecSet>,
    opts: RunOptions,
    target: Target,
    world: Mutex<World>,
    /// One lock per instance of the world, made up front: ids the world does not hold carry no
    /// state, need no lock, and so cannot grow this map as cases name new ids. Cases that may
    /// change an instance hold its lock alone; cases that must fail as a whole share it.
    locks: HashMap<String, Arc<tokio::sync::RwLock<()>>>,
    /// Positions of the world's resources by id, for snapshots and model updates.
    positions: Positions,
    /// The next nonce: a random start per run, then counting, so that no two requests of any
    /// runs share one (Alibaba rejects a nonce seen in the last 15 minutes, API 2.0 in the
    /// last two hours: a run repeated with the same seed must not look like a replay).
    nonce: AtomicU64,
    /// One rate limiter per API, made when the API first sends.
    limiters: Mutex<HashMap<String, Option<Arc<Limiter>>>>,
}

impl Ctx {
    fn next_nonce(&self) -> u64 {
        self.nonce.fetch_add(1, Ordering::Relaxed)
    }

    fn limiter(&self, api: &LoadedApi) -> Option<Arc<Limiter>> {
        let mut all = self.limiters.lock().expect("limiters lock");
        if let Some(made) = all.get(&api.name) {
            return made.clone();
        }
        all.entry(api.name.clone())
            .or_insert_with(|| {
                rate_for(api, self.target.is_loopback(), self.opts.rate)
                    .map(|r| Arc::new(Limiter::new(r)))
            })
            .clone()
    }

    fn new(set: &SpecSet, world: World, target: &Target, opts: &RunOptions) -> Arc<Ctx> {
        Arc::new(Ctx {
            set: Arc::new(set.clone()),
            opts: opts.clone(),
            target: target.clone(),
            locks: world
                .instances
                .iter()
                .map(|i| (i.id.clone(), Arc::default()))
                .collect(),
            positions: positions(&world),
            world: Mutex::new(world),
            nonce: AtomicU64::new(rand::random::<u64>() >> 2),
            limiters: Mutex::new(HashMap::new()),
        })
    }
}

/// Runs every selected spec against `target`, starting from the world model `world`.
///
/// Cases are generated lazily, in order, from one seeded runner per API (the same seed gives the
/// same cases) and run as tasks, at most `jobs` at a time; only counters and, per broken rule,
/// the first failing case's value tree (for shrinking) outlive a case.
pub async fn run(
    set: &SpecSet,
    world: World,
    target: &Target,
    opts: &RunOptions,
    progress: &dyn Progress,
    stop: &std::sync::atomic::AtomicBool,
) -> Result<RunReport, RunError> {
    let apis: Vec<usize> = select(set, &opts.patterns)
        .into_iter()
        .filter_map(|a| set.apis.iter().position(|b| std::ptr::eq(a, b)))
        .collect();
    if apis.is_empty() {
        return Err(RunError::NoSpecs {
            patterns: opts.patterns.clone(),
        });
    }
    let started = Instant::now();
    let ctx = Ctx::new(set, world, target, opts);
    let total = apis.len() * opts.cases;
    let counts = Counts::default();
    // APIs acting on different products share no resource, so each product's APIs form one lane
    // and the lanes run at once. Within a lane the APIs run in spec order, each generating its
    // cases from the world the ones before it left (CVM Disassociate unbinds what Associate
    // bound). Against a real cloud this also keeps each API within its own rate limit while the
    // others proceed.
    let mut lanes: Vec<Vec<(usize, usize)>> = Vec::new();
    for (i, &api) in apis.iter().enumerate() {
        let product = set.apis[api].spec.api.product;
        match lanes
            .iter_mut()
            .find(|l| set.apis[l[0].1].spec.api.product == product)
        {
            Some(lane) => lane.push((i, api)),
            None => lanes.push(vec![(i, api)]),
        }
    }
    let runs = lanes.iter().map(|lane| {
        let (ctx, counts) = (&ctx, &counts);
        async move {
            let mut out = Vec::new();
            for &(i, api) in lane {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let stats = run_api(ctx, api, i as u64, progress, total, counts, stop).await?;
                out.push((i, stats));
            }
            Ok::<_, RunError>(out)
        }
    });
    let mut done = Vec::new();
    for lane in futures::future::join_all(runs).await {
        done.extend(lane?);
    }
    done.sort_by_key(|(i, _)| *i);
    let mut report = RunReport {
        target: target.url().to_string(),
        seed: opts.seed,
        apis: done.into_iter().map(|(_, stats)| stats).collect(),
        interrupted: stop.load(Ordering::Relaxed),
        ..Default::default()
    };
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Runs the selected specs against an emulator started in-process on a loopback port (the
/// setup of `apiconform run` without `--target`, and of `apiconform bench`).
pub async fn run_embedded(
    set: &SpecSet,
    world: World,
    opts: &RunOptions,
    progress: &dyn Progress,
    stop: &std::sync::atomic::AtomicBool,
) -> Result<RunReport, RunError> {
    let unreachable = |e: std::io::Error| {
        RunError::Transport(TransportError::Unreachable {
            url: "127.0.0.1:0".into(),
            reason: e.to_string(),
        })
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(unreachable)?;
    let addr = listener.local_addr().map_err(unreachable)?;
    let emu = Arc::new(crate::emulator::Emulator::new(crate::emulator::Config {
        world: world.clone(),
        tencent: opts.tencent.clone(),
        alibaba: opts.alibaba.clone(),
        ..Default::default()
    }));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(crate::emulator::server::serve(listener, emu, async {
        let _ = rx.await;
    }));
    let target = Target::new(&format!("http://{addr}"), opts.timeout)?;
    let opts = RunOptions {
        admin: true,
        ..opts.clone()
    };
    let result = run(set, world, &target, &opts, progress, stop).await;
    let _ = tx.send(());
    let _ = server.await;
    result
}

/// The process's peak resident set in KiB (`VmHWM` of `/proc/self/status`; Linux only).
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Progress counters across APIs (the lanes update them concurrently).
#[derive(Default)]
struct Counts {
    done: AtomicUsize,
    failed: AtomicUsize,
}

type Tree = Box<dyn ValueTree<Value = Case>>;

async fn run_api(
    ctx: &Arc<Ctx>,
    api_index: usize,
    index: u64,
    progress: &dyn Progress,
    total: usize,
    counts: &Counts,
    stop: &std::sync::atomic::AtomicBool,
) -> Result<ApiStats, RunError> {
    let api = &ctx.set.apis[api_index];
    let family = ctx.set.family(api.spec.api.family);
    let mut stats = ApiStats {
        api: api.name.clone(),
        rules_total: api
            .spec
            .rules
            .iter()
            .chain(family.rules.iter())
            .map(|r| r.id.clone())
            .collect(),
        codes_documented: oracle::documented_codes(api).into_iter().collect(),
        ..Default::default()
    };
    let gen_opts = GenOptions {
        violations: ctx.opts.violations,
        ..GenOptions::default()
    };
    let world = ctx.world.lock().expect("world lock").clone();
    let seed = ctx.opts.seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    // One tree at a time, in the order `generate::trees` would give them.
    let mut trees = generate::tree_stream(&ctx.set, api, &world, seed, &gen_opts)
        .take(ctx.opts.cases)
        .enumerate()
        .filter(|(i, _)| ctx.opts.shard.is_none_or(|(k, n)| i % n == k));
    drop(world);

    let jobs = ctx.opts.jobs.max(1);
    let mut in_flight = tokio::task::JoinSet::new();
    let mut pending: HashMap<usize, Tree> = HashMap::with_capacity(jobs);
    // The first few failing cases per broken rule, with what they got.
    let mut to_shrink: BTreeMap<String, Vec<(Tree, Judged)>> = BTreeMap::new();
    let mut exhausted = false;
    loop {
        while !exhausted && in_flight.len() < jobs {
            if stop.load(Ordering::Relaxed) {
                exhausted = true;
                break;
            }
            let Some((i, tree)) = trees.next() else {
                exhausted = true;
                break;
            };
            let case = tree.current();
            pending.insert(i, tree);
            let ctx = Arc::clone(ctx);
            in_flight.spawn(async move {
                let api = &ctx.set.apis[api_index];
                (i, exchange(&ctx, api, &case).await)
            });
        }
        let Some(joined) = in_flight.join_next().await else {
            break;
        };
        let (i, result) = match joined {
            Ok(r) => r,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("case task cancelled: {e}"),
        };
        let tree = pending.remove(&i).expect("a tree per case in flight");
        let judged = result?;
        stats.cases += 1;
        stats.retries += judged.retries;
        // Nearly always already there: look before copying.
        for rule in &judged.rules {
            if !stats.rules_exercised.contains(rule) {
                stats.rules_exercised.insert(rule.clone());
            }
        }
        if let protocol::OutcomeResult::Error { code, .. } = &judged.outcome.result {
            if stats.codes_documented.contains(code) && !stats.codes_provoked.contains(code) {
                stats.codes_provoked.insert(code.clone());
            }
        }
        if judged.unobservable {
            stats.unobservable_effects += 1;
        }
        match judged.verdict.kind {
            VerdictKind::Pass => stats.pass += 1,
            VerdictKind::Unspecified => stats.unspecified += 1,
            VerdictKind::Fail => {
                stats.fail += 1;
                counts.failed.fetch_add(1, Ordering::Relaxed);
                let rule = judged.verdict.rule.clone().unwrap_or_else(|| "?".into());
                let kept = to_shrink.entry(rule).or_default();
                if kept.len() < SHRINK_CANDIDATES {
                    kept.push((tree, judged));
                }
            }
        }
        let done = counts.done.fetch_add(1, Ordering::Relaxed) + 1;
        progress.update(done, total, counts.failed.load(Ordering::Relaxed));
    }
    // Shrink one failure per rule, sequentially, so each candidate sees a settled world.
    for (rule, candidates) in to_shrink {
        let failure = shrink(ctx, api, &rule, candidates).await?;
        stats.failures.push(failure);
    }
    Ok(stats)
}

/// One judged exchange.
struct Judged {
    verdict: oracle::Verdict,
    outcome: Outcome,
    request: HttpRequest,
    response: HttpResponse,
    rules: Vec<String>,
    retries: usize,
    unobservable: bool,
}

/// Sends one case and judges it. The locks of the instances it names are held only while the
/// model is read, the case sent, the instances observed and the model moved forward; judging
/// happens after they are released, so cases naming the same instances wait for each other as
/// little as possible.
///
/// A case the documents require to fail as a whole changes nothing on a conforming target, so
/// it shares its instances' locks with other such cases; anything that may succeed holds them
/// alone. Sharing never makes a false failure against a conforming target. Against one that
/// changes state on a failed call, a case sharing an instance with the culprit may see the
/// change too: the shrinking phase re-runs failures alone and reports one that fails there.
/// Requests paced at a rate (every remote target by default) gain nothing from sharing, so
/// they never share: a real cloud sees one call at a time per instance.
async fn exchange(ctx: &Ctx, api: &LoadedApi, case: &Case) -> Result<Judged, RunError> {
    let instances = observe::instance_ids(api, case);
    let product = observe::product(api);
    let paced = rate_for(api, ctx.target.is_loopback(), ctx.opts.rate).is_some();
    let mut shared = shares(api, case, paced);
    let (guards, mut before, expectation) = loop {
        let guards = lock_all(ctx, &instances, shared).await;
        // Only what the case can name: every lookup of the oracle is by an id taken from the case.
        let before = snapshot(ctx, case);
        if !shared {
            break (guards, before, None);
        }
        let expectation = oracle::expect(&ctx.set, api, &before, case);
        if !expectation.success_ok {
            break (guards, before, Some(expectation));
        }
        // The model lets it succeed after all: it may change state, so it runs alone.
        drop(guards);
        shared = false;
    };
    let (request, first, response, retries) = send_case(ctx, api, case).await?;
    if let Some(first) = first {
        // A replayed nonce: the first, ordinary send took effect; judge the replay against that.
        let outcome = protocol::decode(api.spec.api.family, &first);
        let plain = Case {
            auth: AuthFault::None,
            ..case.clone()
        };
        oracle::apply(&mut before, api, &plain, &outcome);
    }
    let outcome = protocol::decode(api.spec.api.family, &response);
    let success = outcome.result == protocol::OutcomeResult::Success;
    // `instances` is sorted and deduplicated.
    let touched_existing = before
        .instances
        .iter()
        .any(|i| i.product == product && instances.binary_search(&i.id).is_ok());
    // The model after the call: the effect on success, no change otherwise.
    let after = (touched_existing && success).then(|| {
        let mut after = before.clone();
        oracle::apply(&mut after, api, case, &outcome);
        after
    });
    let mut observed = None;
    if touched_existing {
        observed = observe::observe(ctx, api, case, &instances).await?;
        // The model follows the target where it can be observed, so one failure does not
        // cascade into the cases after it; elsewhere it follows the documents.
        // By id, the first of each (as a scan would find it).
        fn by_id<'a>(
            items: impl Iterator<Item = (&'a str, &'a Vec<String>)>,
        ) -> HashMap<&'a str, &'a Vec<String>> {
            let mut map = HashMap::new();
            for (id, keys) in items {
                map.entry(id).or_insert(keys);
            }
            map
        }
        let modelled = by_id(
            after
                .as_ref()
                .unwrap_or(&before)
                .instances
                .iter()
                .filter(|i| i.product == product)
                .map(|i| (i.id.as_str(), &i.keys)),
        );
        let seen = by_id(
            observed
                .iter()
                .flatten()
                .map(|(id, keys)| (id.as_str(), keys)),
        );
        // A case sharing its locks writes only what differs from the model it started from:
        // another sharer may have written a newer observation already.
        let started = shared.then(|| {
            by_id(
                before
                    .instances
                    .iter()
                    .filter(|i| i.product == product)
                    .map(|i| (i.id.as_str(), &i.keys)),
            )
        });
        let mut world = ctx.world.lock().expect("world lock");
        for id in &instances {
            let Some(keys) = seen.get(id.as_str()).or_else(|| modelled.get(id.as_str())) else {
                continue;
            };
            if started
                .as_ref()
                .is_some_and(|s| s.get(id.as_str()) == Some(keys))
            {
                continue;
            }
            for &at in ctx.positions.get(id).map_or(&[][..], |p| &p.instances) {
                let inst = &mut world.instances[at];
                // Mostly unchanged (every failed call): no copy then.
                if inst.product == product && inst.id == *id && inst.keys != **keys {
                    inst.keys = (*keys).clone();
                }
            }
        }
    }
    drop(guards);
    let expectation = expectation.unwrap_or_else(|| oracle::expect(&ctx.set, api, &before, case));
    let mut verdict = oracle::judge(&ctx.set, api, case, &expectation, &outcome);
    let mut unobservable = false;
    if touched_existing {
        if let Some(observed) = &observed {
            let state = match &after {
                Some(after) => oracle::check_state(api, after, observed),
                None if success => oracle::check_state(api, &before, observed),
                None => oracle::check_unchanged(api, &before, observed),
            };
            if let (Some(v), false) = (state, verdict.kind == VerdictKind::Fail) {
                verdict = v;
            }
        } else {
            unobservable = success;
        }
    }
    Ok(Judged {
        rules: expectation.rules,
        verdict,
        outcome,
        request,
        response,
        retries,
        unobservable,
    })
}

/// The part of the world a case can reach: the instances and key pairs whose ids occur among
/// its parameter values (scalars, list items, items of JSON lists held in strings), in world
/// order. The oracle only ever looks resources up by ids taken from the case, so judging against
/// this snapshot is the same as judging against the whole world, without copying ~500 resources
/// per case.
fn snapshot(ctx: &Ctx, case: &Case) -> World {
    snapshot_of(&ctx.world.lock().expect("world lock"), &ctx.positions, case)
}

fn snapshot_of(world: &World, positions: &Positions, case: &Case) -> World {
    fn strings(v: &serde_json::Value, out: &mut dyn FnMut(&str)) {
        match v {
            serde_json::Value::String(s) => {
                out(s);
                if s.trim_start().starts_with('[') {
                    if let Ok(inner) = serde_json::from_str::<serde_json::Value>(s) {
                        strings(&inner, out);
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
            serde_json::Value::Object(o) => o.values().for_each(|x| strings(x, out)),
            _ => {}
        }
    }
    let mut instances = Vec::new();
    let mut key_pairs = Vec::new();
    let mut named = |s: &str| {
        if let Some(p) = positions.get(s) {
            instances.extend_from_slice(&p.instances);
            key_pairs.extend_from_slice(&p.key_pairs);
        }
    };
    case.params.values().for_each(|v| strings(v, &mut named));
    for v in [&mut instances, &mut key_pairs] {
        v.sort_unstable();
        v.dedup();
    }
    World {
        instances: instances
            .into_iter()
            .map(|at| world.instances[at].clone())
            .collect(),
        key_pairs: key_pairs
            .into_iter()
            .map(|at| world.key_pairs[at].clone())
            .collect(),
    }
}

/// Where the resources with an id sit in the world's lists (the runner never adds or removes
/// resources, so positions hold for the whole run).
#[derive(Default)]
struct At {
    instances: Vec<usize>,
    key_pairs: Vec<usize>,
}

type Positions = HashMap<String, At>;

fn positions(world: &World) -> Positions {
    let mut map = Positions::new();
    for (n, i) in world.instances.iter().enumerate() {
        map.entry(i.id.clone()).or_default().instances.push(n);
    }
    for (n, k) in world.key_pairs.iter().enumerate() {
        map.entry(k.id.clone()).or_default().key_pairs.push(n);
    }
    map
}

/// Whether the documents require this case to fail as a whole, judged from what the generator
/// meant it to break: an all-or-nothing batch breaking a rule, or a signing fault other than a
/// replay (whose first send is an ordinary call). The runner confirms it against the model
/// before relying on it.
fn must_fail_whole(api: &LoadedApi, case: &Case) -> bool {
    match case.auth {
        AuthFault::None => {
            api.spec.batch.mode == crate::spec::BatchMode::AllOrNothing && !case.violates.is_empty()
        }
        AuthFault::ReusedNonce => false,
        _ => true,
    }
}

/// Whether a case shares its instances' locks: it must fail as a whole, and its requests are
/// not paced.
fn shares(api: &LoadedApi, case: &Case, paced: bool) -> bool {
    !paced && must_fail_whole(api, case)
}

/// Held instance locks, released on drop.
struct Held {
    _shared: Vec<tokio::sync::OwnedRwLockReadGuard<()>>,
    _alone: Vec<tokio::sync::OwnedRwLockWriteGuard<()>>,
}

/// Takes the locks of the named instances in id order (so no two cases wait on each other in a
/// cycle), shared or alone.
async fn lock_all(ctx: &Ctx, ids: &[String], shared: bool) -> Held {
    // `ids` is sorted and deduplicated.
    let locks = ids.iter().filter_map(|id| ctx.locks.get(id).cloned());
    let mut held = Held {
        _shared: Vec::new(),
        _alone: Vec::new(),
    };
    for lock in locks {
        if shared {
            held._shared.push(lock.read_owned().await);
        } else {
            held._alone.push(lock.write_owned().await);
        }
    }
    held
}

fn now() -> i64 {
    crate::emulator::server::now()
}

/// Builds the call a case describes.
pub fn call_for(api: &LoadedApi, case: &Case, authority: &str) -> Call {
    let s = &api.spec.api;
    let family = s.family;
    let path = match family {
        FamilyId::TencentV2 => "/v2/index.php".to_string(),
        _ => "/".to_string(),
    };
    Call {
        family,
        action: s.action.clone(),
        version: s.version.clone(),
        region: match family {
            FamilyId::AliyunRpc => None,
            _ => Some(case.region.clone()),
        },
        service: s.service.clone().unwrap_or_default(),
        host: authority.to_string(),
        path,
        method: case.transport.method,
        signature: case.transport.signature,
        params: case.params.clone(),
        format: case.transport.format,
    }
}

/// Signs a case for sending, applying its authentication fault.
pub fn sign_case(
    api: &LoadedApi,
    case: &Case,
    authority: &str,
    tencent: &Credentials,
    alibaba: &Credentials,
    now: i64,
    nonce: u64,
) -> Result<HttpRequest, protocol::ProtocolError> {
    let mut call = call_for(api, case, authority);
    if case.transport.index_base != 0 {
        call.params = call.params.clone();
    }
    let mut creds = match api.spec.api.family {
        FamilyId::AliyunRpc => alibaba.clone(),
        _ => tencent.clone(),
    };
    let mut clock = Clock {
        timestamp: now,
        nonce: format!("{}", 100_000 + nonce),
    };
    if api.spec.api.family == FamilyId::AliyunRpc {
        clock.nonce = format!("{:032x}", (now as u128) << 64 | nonce as u128);
    }
    match case.auth {
        AuthFault::WrongSecret => creds.secret.push_str("-wrong"),
        AuthFault::UnknownSecretId => {
            creds.id = format!("{}UNKNOWN", &creds.id[..creds.id.len().min(8)])
        }
        AuthFault::ExpiredTimestamp => clock.timestamp -= 3 * 3600,
        _ => {}
    }
    let mut req = protocol::encode(&call, &creds, &clock)?;
    if case.auth == AuthFault::TamperedSignature {
        tamper(&mut req);
    }
    Ok(req)
}

/// Changes one character of the signature wherever it travels (header, query or body).
fn tamper(req: &mut HttpRequest) {
    fn flip(s: &mut String) -> bool {
        if let Some(i) = s.find("Signature=") {
            let at = i + "Signature=".len();
            if let Some(c) = s[at..].chars().next() {
                let repl = if c == 'A' { "B" } else { "A" };
                s.replace_range(at..at + c.len_utf8(), repl);
                return true;
            }
        }
        false
    }
    for (k, v) in &mut req.headers {
        if k.eq_ignore_ascii_case("authorization") && flip(v) {
            return;
        }
    }
    if flip(&mut req.target) {
        return;
    }
    let mut body = String::from_utf8_lossy(&req.body).into_owned();
    if flip(&mut body) {
        req.body = body.into_bytes();
    }
}

type Sent = (HttpRequest, Option<HttpResponse>, HttpResponse, usize);

/// Signs and sends a case; for a replayed nonce, also returns the first send's response.
async fn send_case(ctx: &Ctx, api: &LoadedApi, case: &Case) -> Result<Sent, RunError> {
    let nonce = ctx.next_nonce();
    let req = sign_case(
        api,
        case,
        &ctx.target.authority(),
        &ctx.opts.tencent,
        &ctx.opts.alibaba,
        now(),
        nonce,
    )
    .map_err(|e| {
        RunError::Transport(TransportError::BadUrl {
            url: api.name.clone(),
            reason: e.to_string(),
        })
    })?;
    let first = if case.auth == AuthFault::ReusedNonce {
        // First send is an ordinary request; the second, byte for byte the same, is judged.
        Some(send_with_retry(ctx, api, &req).await?.0)
    } else {
        None
    };
    let (resp, retries) = send_with_retry(ctx, api, &req).await?;
    Ok((req, first, resp, retries))
}

/// Retries transport faults and throttling answers, with backoff; any other response is
/// returned as is. Each attempt waits for the API's rate limiter first.
async fn send_with_retry(
    ctx: &Ctx,
    api: &LoadedApi,
    req: &HttpRequest,
) -> Result<(HttpResponse, usize), RunError> {
    let limiter = ctx.limiter(api);
    let mut delay = Duration::from_millis(100);
    for attempt in 0..4 {
        if let Some(l) = &limiter {
            l.acquire().await;
        }
        let last = attempt == 3;
        match ctx.target.send(req).await {
            Ok(r) if !last && throttled(api.spec.api.family, &r) => {}
            Ok(r) => return Ok((r, attempt)),
            Err(e) if last => return Err(e.into()),
            Err(_) => {}
        }
        tokio::time::sleep(delay).await;
        delay *= 4;
    }
    unreachable!("the loop returns on its last attempt")
}

/// Whether a response says "too many requests" in its family's words.
fn throttled(family: FamilyId, resp: &HttpResponse) -> bool {
    if resp.status == 429 {
        return true;
    }
    // Every throttling code below contains one of these words, so a body without them (nearly
    // every body: a DescribeInstances answer runs to kilobytes) is not decoded here at all.
    let has = |word: &str| memchr::memmem::find(&resp.body, word.as_bytes()).is_some();
    if !has("LimitExceeded") && !has("Throttling") {
        return false;
    }
    match protocol::decode(family, resp).result {
        protocol::OutcomeResult::Error { code, .. } => matches!(
            code.as_str(),
            "RequestLimitExceeded" | "Throttling" | "Throttling.User" | "Throttling.Api"
        ),
        _ => false,
    }
}

/// Spaces requests evenly at a fixed rate.
pub struct Limiter {
    interval: Duration,
    next: Mutex<tokio::time::Instant>,
}

impl Limiter {
    /// At most `per_second` requests per second.
    pub fn new(per_second: f64) -> Limiter {
        Limiter {
            interval: Duration::from_secs_f64(1.0 / per_second.max(0.001)),
            next: Mutex::new(tokio::time::Instant::now()),
        }
    }

    /// Waits for the next slot.
    pub async fn acquire(&self) {
        let at = {
            let mut next = self.next.lock().expect("limiter lock");
            let at = (*next).max(tokio::time::Instant::now());
            *next = at + self.interval;
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

/// Requests per second for an API against this target: `--rate`, else the documented limit
/// against a remote target (10/s where the documents state none), else unlimited on loopback.
pub fn rate_for(api: &LoadedApi, loopback: bool, rate: Option<f64>) -> Option<f64> {
    match rate {
        Some(r) if r > 0.0 => Some(r),
        Some(_) => None,
        None if loopback => None,
        None => Some(
            api.spec
                .api
                .rate_limits
                .iter()
                .map(|r| f64::from(r.per_second))
                .reduce(f64::min)
                .unwrap_or(10.0),
        ),
    }
}

/// Failing cases kept per broken rule, for shrinking.
const SHRINK_CANDIDATES: usize = 4;

fn fails_with(judged: &Judged, rule: &str) -> bool {
    judged.verdict.kind == VerdictKind::Fail && judged.verdict.rule.as_deref() == Some(rule)
}

/// Shrinks the first of the failing cases that fails again when run alone. When none does (the
/// target answers differently now, or the change came from another case that shared the
/// instances), the first is reported as it was seen, saying so.
async fn shrink(
    ctx: &Ctx,
    api: &LoadedApi,
    rule: &str,
    candidates: Vec<(Tree, Judged)>,
) -> Result<Failure, RunError> {
    let mut first = None;
    for (mut tree, seen) in candidates {
        let again = exchange(ctx, api, &tree.current()).await?;
        if !fails_with(&again, rule) {
            first.get_or_insert((tree, seen));
            continue;
        }
        let mut best = again;
        let mut best_case = tree.current();
        let mut steps = 0;
        if tree.simplify() {
            loop {
                steps += 1;
                let candidate = tree.current();
                let judged = exchange(ctx, api, &candidate).await?;
                let more = if fails_with(&judged, rule) {
                    best = judged;
                    best_case = candidate;
                    tree.simplify()
                } else {
                    tree.complicate()
                };
                if !more || steps >= ctx.opts.shrink_steps {
                    break;
                }
            }
        }
        return Ok(failure(ctx, api, rule, best, best_case, steps));
    }
    let (tree, mut seen) = first.expect("a rule is kept with at least one failing case");
    seen.verdict.detail.push_str(
        " (not shrunk: it did not fail again when re-run alone after the run, so the target \
         answers differently now or the change came from another case sharing its instances)",
    );
    Ok(failure(ctx, api, rule, seen, tree.current(), 0))
}

fn failure(
    ctx: &Ctx,
    api: &LoadedApi,
    rule: &str,
    best: Judged,
    case: Case,
    steps: usize,
) -> Failure {
    let request = crate::report::redact(&best.request);
    Failure {
        api: api.name.clone(),
        rule: best
            .verdict
            .rule
            .clone()
            .unwrap_or_else(|| rule.to_string()),
        source: best.verdict.source.clone(),
        expected: best.verdict.expected.clone(),
        actual: best.verdict.actual.clone(),
        detail: best.verdict.detail,
        case,
        curl: crate::report::curl(&request, ctx.target.url()),
        request,
        status: best.response.status,
        response: String::from_utf8_lossy(&best.response.body).into_owned(),
        shrink_steps: steps,
    }
}

/// Re-signs a repro's case with a fresh clock, sends it and judges it again.
pub async fn replay(
    set: &SpecSet,
    world: World,
    target: &Target,
    opts: &RunOptions,
    failure: &Failure,
) -> Result<(oracle::Verdict, HttpResponse), RunError> {
    let api = set
        .apis
        .iter()
        .find(|a| a.name == failure.api)
        .ok_or_else(|| RunError::NoSpecs {
            patterns: vec![failure.api.clone()],
        })?;
    let ctx = Ctx::new(set, world, target, opts);
    let judged = exchange(&ctx, api, &failure.case).await?;
    Ok((judged.verdict, judged.response))
}

/// Observes the instances a case names the way the runner does (Describe calls, or the admin
/// view when `opts.admin`); `None` when nothing can observe this API's effect.
pub async fn observe_instances(
    set: &SpecSet,
    target: &Target,
    opts: &RunOptions,
    api: &LoadedApi,
    case: &Case,
) -> Result<Option<Vec<Seen>>, RunError> {
    // Each context starts its nonces at random: a before and an after Describe may share a
    // second, and still differ.
    let ctx = Ctx::new(set, World::default(), target, opts);
    let ids = observe::instance_ids(api, case);
    observe::observe_full(&ctx, api, case, &ids).await
}

/// Sends exact bytes to a target, retrying transport faults like the runner does.
pub async fn send_request(
    target: &Target,
    req: &HttpRequest,
) -> Result<HttpResponse, TransportError> {
    let mut delay = Duration::from_millis(50);
    let mut attempt = 0;
    loop {
        match target.send(req).await {
            Ok(r) => return Ok(r),
            Err(e) if attempt == 2 => return Err(e),
            Err(_) => {
                attempt += 1;
                tokio::time::sleep(delay).await;
                delay *= 4;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_rates_apply_to_remote_targets_only() {
        let set = crate::spec::load_embedded().unwrap();
        let api = |n: &str| set.find(n).unwrap();
        let cvm = api("tencent-cvm/AssociateInstancesKeyPairs");
        let ecm = api("tencent-ecm/DisassociateInstancesKeyPairs");
        let ecs = api("alibaba-ecs/DetachKeyPair");
        assert_eq!(rate_for(cvm, false, None), Some(10.0));
        assert_eq!(rate_for(ecm, false, None), Some(20.0));
        assert_eq!(
            rate_for(ecs, false, None),
            Some(10.0),
            "none documented: a careful default"
        );
        assert_eq!(rate_for(cvm, true, None), None, "loopback is not capped");
        assert_eq!(
            rate_for(cvm, false, Some(0.0)),
            None,
            "--rate 0 lifts the cap"
        );
        assert_eq!(rate_for(cvm, true, Some(3.0)), Some(3.0));
    }

    #[tokio::test(start_paused = true)]
    async fn the_limiter_spaces_requests_evenly() {
        let l = Limiter::new(4.0);
        let start = tokio::time::Instant::now();
        for _ in 0..5 {
            l.acquire().await;
        }
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(1000),
            "5 slots at 4/s span 1 s"
        );
    }

    /// Sharing locks is safe only for cases the documents require to fail as a whole; the
    /// runner re-checks against the model, and this pins the generator's side: every case it
    /// would share is one the oracle expects to fail, in the world it was generated from.
    #[test]
    fn only_cases_that_must_fail_as_a_whole_share_their_locks() {
        let set = crate::spec::load_embedded().expect("embedded specs load");
        let world = World::default_world();
        let mut shared = 0;
        for (i, api) in set.apis.iter().enumerate() {
            let per_item = api.spec.batch.mode == crate::spec::BatchMode::PerItem;
            for case in generate::corpus(&set, api, &world, i as u64, 400, &GenOptions::default()) {
                let share = shares(api, &case, false);
                assert!(!shares(api, &case, true), "paced requests never share");
                let exp = oracle::expect(&set, api, &world, &case);
                if share {
                    shared += 1;
                    assert!(
                        !exp.success_ok,
                        "{}: shared but may succeed: {case:?}",
                        api.name
                    );
                }
                if case.violates.is_empty() || (per_item && case.auth == AuthFault::None) {
                    assert!(!share, "{}: {case:?}", api.name);
                }
                if case.auth == AuthFault::ReusedNonce {
                    assert!(!share, "a replay's first send is an ordinary call");
                }
            }
        }
        assert!(shared > 500, "most invalid cases share: {shared}");
    }

    #[test]
    fn the_snapshot_judges_like_the_whole_world() {
        let set = crate::spec::load_embedded().expect("embedded specs load");
        let world = World::default_world();
        for (i, api) in set.apis.iter().enumerate() {
            let opts = GenOptions::default();
            for case in generate::corpus(&set, api, &world, i as u64, 300, &opts) {
                let part = snapshot_of(&world, &positions(&world), &case);
                assert_eq!(
                    oracle::expect(&set, api, &part, &case),
                    oracle::expect(&set, api, &world, &case),
                    "{}: {case:?}",
                    api.name
                );
            }
        }
    }
}
