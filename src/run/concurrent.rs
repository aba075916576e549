//! The concurrency phase (`run --concurrent`): after a run's cases, per product, histories of a
//! sequential prefix and two or three branches sent at once on shared instances, each checked
//! for linearizability against the specs' effects.
//!
//! A run's cases never send two calls that may change one instance at once (the per-instance
//! lock), so a target that reads an instance's keys, changes them and writes them back without
//! a lock passes every one of them. Here the calls of all of a product's APIs (CVM's API 3.0
//! Associate and Disassociate beside the legacy API 2.0's UnBindInstanceKey) go to the same two
//! instances from branches sent at once; the state is read before the prefix and after the
//! branches through the run's read calls ([`super::observe`]), and [`super::linear::check`]
//! looks for a serial order of the calls, consistent with real time, in which every answer is
//! one the oracle allows in the state at that point and which ends in the state read. None:
//! a failure of rule [`LINEARIZABLE_RULE`], with the whole history in its detail.
//!
//! What counts as allowed, from the documents only: each answer is judged by the oracle as a
//! case is (code, shape, with strength; open points stay open), in the state the order gives;
//! a success moves the state by the spec's effect (an open one may also leave it as it was); an
//! error changes nothing; the conflict codes the API's own table lists (the current CVM
//! definitions: `MutexOperation.TaskRunning`, `OperationDenied.InstanceOperationInProgress`)
//! are allowed at any point and change nothing; a call that timed out, met a transport fault
//! or only throttling answers has an unknown outcome (it may or may not have taken effect, at
//! any point after it was sent).
//!
//! Safety as a run's: only instances of the (guarded) world are used, STOPPED Linux ones, so
//! nothing is started or stopped; each is journaled from the first read before anything is
//! sent, and the run's restore puts it back; requests are paced as the run's.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use proptest::strategy::{Strategy, ValueTree};

use super::ctx::Ctx;
use super::linear::{self, Op, Spec};
use super::observe::{read, Read};
use super::outcome::Failure;
use super::send::send_case;
use super::{RunError, RunOptions};
use crate::case::{AuthFault, Case};
use crate::generate::{self, GenOptions};
use crate::oracle::{self, VerdictKind};
use crate::protocol::{self, HttpRequest, HttpResponse, Outcome, OutcomeResult};
use crate::spec::{InstanceState, LoadedApi, Os, SpecSet};
use crate::world::World;

/// The rule a history no serial order explains fails.
pub const LINEARIZABLE_RULE: &str = "linearizable";

/// The rule a sequence the model cannot explain fails.
pub const SEQUENCE_RULE: &str = "sequence";

/// The rule views that show the same fact differently fail.
pub const VIEWS_RULE: &str = "views-agree";

/// Histories per product.
pub const HISTORIES: usize = 24;

/// Instances the branches share.
const SHARED: usize = 2;

/// The codes a target may answer a call that meets another one in progress on its instance
/// (CVM's current definitions list both for Associate and Disassociate, "同样的任务正在运行" and
/// "实例正在执行其他操作，请稍后再试"): allowed wherever the API's own table lists them.
const CONFLICT_CODES: &[&str] = &[
    "MutexOperation.TaskRunning",
    "OperationDenied.InstanceOperationInProgress",
];

/// Where the concurrency phase runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Concurrency {
    /// Nowhere (the default run keeps its speed).
    #[default]
    Off,
    /// To loopback targets only.
    Loopback,
    /// To any target (`--concurrent`), the listed instances of a remote one only.
    Always,
}

/// What the phase did, for the report's notes.
#[derive(Debug, Default)]
pub(super) struct Phase {
    /// Per failing history: the API (position in the set), the calls it sent and the failure.
    pub failures: Vec<(usize, usize, Failure)>,
    /// One line per product.
    pub notes: Vec<String>,
    /// The rules each API's calls were checked on (API position in the set, rule).
    pub checked: Vec<(usize, &'static str)>,
}

/// One call of a history: the API and the case.
struct Call<'a> {
    api: &'a LoadedApi,
    case: Case,
}

/// What came back for one call: the request, the answer, decoded.
struct Answered {
    request: HttpRequest,
    response: HttpResponse,
    outcome: Outcome,
}

/// Runs the phase on every product lane of the run.
pub(super) async fn run(
    ctx: &Ctx,
    set: &SpecSet,
    lanes: &[Vec<usize>],
    world: &World,
    opts: &RunOptions,
    stop: &AtomicBool,
) -> Result<Phase, RunError> {
    let mut phase = Phase::default();
    for (n, lane) in lanes.iter().enumerate() {
        if stop.load(Ordering::Relaxed) || lane.is_empty() {
            continue;
        }
        let apis: Vec<&LoadedApi> = lane.iter().map(|&a| &set.apis[a]).collect();
        product(ctx, set, &apis, world, opts, n as u64, stop, &mut phase).await?;
    }
    Ok(phase)
}

/// The shared instances of a product: up to [`SHARED`] STOPPED Linux ones of its busiest
/// region, with the product's key pairs there (the world the branches' cases are drawn from).
fn shared_world(apis: &[&LoadedApi], world: &World) -> Option<(String, World)> {
    let product = apis[0].spec.instance_product();
    let fit = |i: &&crate::world::Instance| {
        i.product == product && i.os == Os::Linux && i.state == InstanceState::Stopped
    };
    let mut regions: Vec<(usize, &str)> = Vec::new();
    for i in world.instances.iter().filter(fit) {
        match regions.iter_mut().find(|(_, r)| *r == i.region) {
            Some((n, _)) => *n += 1,
            None => regions.push((1, &i.region)),
        }
    }
    let region = regions.iter().max_by_key(|(n, _)| *n)?.1.to_string();
    let instances: Vec<_> = world
        .instances
        .iter()
        .filter(fit)
        .filter(|i| i.region == region)
        .take(SHARED)
        .cloned()
        .collect();
    let key_pairs: Vec<_> = world
        .key_pairs
        .iter()
        .filter(|k| k.product == product && k.region == region)
        .cloned()
        .collect();
    (!key_pairs.is_empty()).then_some((
        region,
        World {
            instances,
            key_pairs,
        },
    ))
}

/// What the phase sends per product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `--stateful`: sequences of calls one after another, each step checked.
    Sequences,
    /// `--concurrent`: a prefix then branches sent at once.
    Branches,
}

/// Where a product's histories stand: the shared instances, the generators, the tallies.
struct Lane<'a> {
    name: String,
    region: String,
    shared: World,
    ids: Vec<String>,
    apis: Vec<&'a LoadedApi>,
    views: Vec<crate::spec::Observation>,
    strategies: Vec<proptest::strategy::BoxedStrategy<Case>>,
    runner: proptest::test_runner::TestRunner,
    sent: usize,
    unknown: usize,
}

#[allow(clippy::too_many_arguments)]
async fn product(
    ctx: &Ctx,
    set: &SpecSet,
    apis: &[&LoadedApi],
    world: &World,
    opts: &RunOptions,
    lane: u64,
    stop: &AtomicBool,
    phase: &mut Phase,
) -> Result<(), RunError> {
    let name = apis[0].spec.instance_product().as_str().to_uppercase();
    let Some((region, shared)) = shared_world(apis, world) else {
        phase.notes.push(format!(
            "stateful: {name}: no STOPPED Linux instance with a key pair beside it in the world; nothing sent"
        ));
        return Ok(());
    };
    let gen = GenOptions {
        region: Some(region.clone()),
        ..GenOptions::default()
    };
    let mut l = Lane {
        ids: shared.instances.iter().map(|i| i.id.clone()).collect(),
        strategies: apis
            .iter()
            .map(|api| generate::valid_strategy(set, api, &shared, &gen))
            .collect(),
        runner: generate::seeded_runner(opts.seed ^ (lane + 1).wrapping_mul(0x9e37_79b9)),
        views: super::views::of(apis),
        apis: apis.to_vec(),
        name,
        region,
        shared,
        sent: 0,
        unknown: 0,
    };
    let mut kinds = Vec::new();
    if opts.stateful {
        kinds.push(Kind::Sequences);
    }
    if wanted(opts, &ctx.target) {
        kinds.push(Kind::Branches);
    }
    for kind in kinds {
        let (mut explained, mut tried) = (0, 0);
        (l.sent, l.unknown) = (0, 0);
        for h in 0..HISTORIES {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            tried += 1;
            match history(ctx, set, opts, &mut l, kind, h).await? {
                Some(Ok(())) => explained += 1,
                Some(Err((api, calls, f))) => phase.failures.push((api, calls, f)),
                None => {
                    phase.notes.push(format!(
                        "stateful: {}: the instances' keys cannot be read on this target; stopped",
                        l.name
                    ));
                    break;
                }
            }
        }
        if explained > 0 || tried > 0 {
            let rule = match kind {
                Kind::Sequences => SEQUENCE_RULE,
                Kind::Branches => LINEARIZABLE_RULE,
            };
            for api in &l.apis {
                let at = set.apis.iter().position(|a| std::ptr::eq(a, *api));
                phase.checked.extend(at.map(|at| (at, rule)));
                if l.views.len() > 1 {
                    phase.checked.extend(at.map(|at| (at, VIEWS_RULE)));
                }
            }
        }
        let what = match kind {
            Kind::Sequences => "sequences explained by the model, every view agreeing",
            Kind::Branches => "concurrent histories explained by a serial order",
        };
        phase.notes.push(format!(
            "{}: {}: {explained} of {tried} {what} ({} calls on {} shared instance(s) in {}, {} of unknown outcome)",
            match kind {
                Kind::Sequences => "stateful",
                Kind::Branches => "concurrency",
            },
            l.name,
            l.sent,
            l.ids.len(),
            l.region,
            l.unknown
        ));
    }
    Ok(())
}

/// A failed history: the API of the call named, the calls sent, the failure.
type Failed = (usize, usize, Failure);

/// Sends and checks one history. `None`: the keys could not be read.
async fn history(
    ctx: &Ctx,
    set: &SpecSet,
    opts: &RunOptions,
    l: &mut Lane<'_>,
    kind: Kind,
    h: usize,
) -> Result<Option<Result<(), Failed>>, RunError> {
    // A sequence: four to six calls. Branches: one call, then two or three branches of one or
    // two calls each.
    let (prefix, branches): (Vec<Call>, Vec<Vec<Call>>) = match kind {
        Kind::Sequences => {
            let len = 4 + index(&mut l.runner, 3);
            (draw(&l.apis, &l.strategies, &mut l.runner, len), vec![])
        }
        Kind::Branches => {
            let prefix = draw(&l.apis, &l.strategies, &mut l.runner, 1);
            let width = 2 + index(&mut l.runner, 2);
            let branches = (0..width)
                .map(|_| {
                    let len = 1 + index(&mut l.runner, 2);
                    draw(&l.apis, &l.strategies, &mut l.runner, len)
                })
                .collect();
            (prefix, branches)
        }
    };
    let width = branches.len();
    let api0 = l.apis[0];
    let Some(before) = observe(ctx, api0, &l.region, &l.ids).await? else {
        return Ok(None);
    };
    journal(ctx, api0, &l.region, &l.ids, &before)?;
    let init = keys_of(&before, &l.ids);
    let start = Instant::now();
    let mut calls: Vec<Sent> = Vec::new();
    for call in prefix {
        calls.push(send(ctx, call, start).await?);
        if kind == Kind::Sequences {
            // Each step: the model explains the sequence so far and every view agrees.
            let Some(after) = observe(ctx, api0, &l.region, &l.ids).await? else {
                return Ok(None);
            };
            let failed = explain(ctx, set, opts, l, kind, h, &calls, &init, &after, width)
                .or(agree(ctx, set, opts, l, h, &calls).await?);
            if let Some(f) = failed {
                l.sent += calls.len();
                return Ok(Some(Err(f)));
            }
        }
    }
    let runs = branches.into_iter().map(|branch| async move {
        let mut out = Vec::new();
        for call in branch {
            out.push(send(ctx, call, start).await?);
        }
        Ok::<_, RunError>(out)
    });
    for branch in futures::future::join_all(runs).await {
        calls.extend(branch?);
    }
    l.sent += calls.len();
    l.unknown += calls.iter().filter(|c| c.answered.is_none()).count();
    if kind == Kind::Sequences {
        return Ok(Some(Ok(())));
    }
    let Some(after) = observe(ctx, api0, &l.region, &l.ids).await? else {
        return Ok(None);
    };
    let failed = explain(ctx, set, opts, l, kind, h, &calls, &init, &after, width)
        .or(agree(ctx, set, opts, l, h, &calls).await?);
    Ok(Some(failed.map_or(Ok(()), Err)))
}

/// The history checked against the model: `None` when some order explains it.
#[allow(clippy::too_many_arguments)]
fn explain(
    ctx: &Ctx,
    set: &SpecSet,
    opts: &RunOptions,
    l: &Lane<'_>,
    kind: Kind,
    h: usize,
    calls: &[Sent],
    init: &Keys,
    after: &[crate::protocol::describe::Seen],
    width: usize,
) -> Option<Failed> {
    let ops: Vec<Op<usize, usize>> = calls
        .iter()
        .enumerate()
        .map(|(n, c)| Op {
            call: n,
            answer: c.answered.as_ref().map(|_| n),
            sent: c.sent,
            answered: c.answered.as_ref().map(|(at, _)| *at),
        })
        .collect();
    let judge = Judge {
        set,
        base: &l.shared,
        calls,
        opts,
    };
    let last = keys_of(after, &l.ids);
    let why = linear::check(&judge, init.clone(), &ops, |s| *s == last).err()?;
    let history = describe(calls, &l.ids, init, &last);
    let stuck = (0..ops.len())
        .find(|n| !why.longest.contains(n))
        .unwrap_or(ops.len() - 1);
    // The call no order could place, else the last one answered.
    let at = (0..=stuck)
        .rev()
        .chain(stuck + 1..calls.len())
        .find(|&n| calls[n].answered.is_some())?;
    let (rule, expected, shape) = match kind {
        Kind::Sequences => (
            SEQUENCE_RULE,
            "each call's answer and the keys read after it follow from the calls before it, by the specs' effects",
            format!("a sequence of {} calls", calls.len()),
        ),
        Kind::Branches => (
            LINEARIZABLE_RULE,
            "some serial order of the calls, consistent with when each was sent and answered, explains every answer and the keys read afterwards",
            format!("{} calls, a prefix then {width} branches sent at once", calls.len()),
        ),
    };
    let actual = match why.answers_explained {
        true => format!(
            "no order ends in the keys read afterwards: {}",
            show(&l.ids, &last)
        ),
        false => "no order explains every answer".into(),
    };
    Some(failure(ctx, set, opts, l, h, calls, at, rule, expected, actual, format!(
        "{shape} on {} shared instance(s) of {} in {} (history {} of seed {}); the request below is the first call no order could place. {history}",
        l.ids.len(), l.name, l.region, h + 1, opts.seed
    ), None))
}

/// Every view read side by side: `None` when they agree (after one wait, if they did not at
/// once).
async fn agree(
    ctx: &Ctx,
    set: &SpecSet,
    opts: &RunOptions,
    l: &Lane<'_>,
    h: usize,
    calls: &[Sent<'_>],
) -> Result<Option<Failed>, RunError> {
    if l.views.len() < 2 {
        return Ok(None);
    }
    let api0 = l.apis[0];
    let mut readings = super::views::read_all(ctx, api0, &l.views, &l.region, &l.ids).await?;
    if super::views::disagreement(&readings, &l.ids).is_some() {
        tokio::time::sleep(super::views::SETTLE).await;
        readings = super::views::read_all(ctx, api0, &l.views, &l.region, &l.ids).await?;
    }
    let Some(which) = super::views::disagreement(&readings, &l.ids) else {
        return Ok(None);
    };
    let Some(at) = (0..calls.len())
        .rev()
        .find(|&n| calls[n].answered.is_some())
    else {
        return Ok(None);
    };
    let history = describe(
        calls,
        &l.ids,
        &vec![None; l.ids.len()],
        &vec![None; l.ids.len()],
    );
    Ok(Some(failure(
        ctx,
        set,
        opts,
        l,
        h,
        calls,
        at,
        VIEWS_RULE,
        "every view of a binding shows the same keys (read again after a short wait)",
        which,
        format!(
            "after {} call(s) on {} shared instance(s) of {} in {} (history {} of seed {}), the views still disagreed {} ms later; the request below is the last call sent. {history}",
            calls.len(),
            l.ids.len(),
            l.name,
            l.region,
            h + 1,
            opts.seed,
            super::views::SETTLE.as_millis()
        ),
        Some(crate::oracle::Strength::Current),
    )))
}

/// A failure of `rule` naming call `at` of the history.
#[allow(clippy::too_many_arguments)]
fn failure(
    ctx: &Ctx,
    set: &SpecSet,
    opts: &RunOptions,
    _l: &Lane<'_>,
    h: usize,
    calls: &[Sent],
    at: usize,
    rule: &str,
    expected: &str,
    actual: String,
    detail: String,
    strength: Option<crate::oracle::Strength>,
) -> Failed {
    let sent = &calls[at];
    let api = sent.call.api;
    let answered = &sent.answered.as_ref().expect("an answered call").1;
    let verdict = oracle::Verdict {
        kind: VerdictKind::Fail,
        rule: Some(rule.to_string()),
        source: oracle::effect_rule(&api.spec).map(|r| r.source.clone()),
        expected: expected.into(),
        actual,
        detail,
        strength: strength
            .or_else(|| oracle::effect_rule(&api.spec).map(|r| oracle::rule_strength(set, api, r))),
    };
    let mut f = super::shrink::record(
        ctx,
        api,
        &verdict,
        &answered.request,
        &answered.response,
        sent.call.case.clone(),
    );
    // The phase comes after the API's cases: its place in the plan is after them.
    f.found_after = opts.cases + h + 1;
    f.sequence = calls.iter().map(|c| c.call.case.clone()).collect();
    let position = set
        .apis
        .iter()
        .position(|a| std::ptr::eq(a, api))
        .unwrap_or_default();
    (position, calls.len(), f)
}

/// A number below `n` from the history's generator.
fn index(runner: &mut proptest::test_runner::TestRunner, n: usize) -> usize {
    use proptest::prelude::Rng;
    runner.rng().next_u32() as usize % n.max(1)
}

/// `n` valid cases of the product's APIs, each API drawn at random.
fn draw<'a>(
    apis: &[&'a LoadedApi],
    strategies: &[proptest::strategy::BoxedStrategy<Case>],
    runner: &mut proptest::test_runner::TestRunner,
    n: usize,
) -> Vec<Call<'a>> {
    (0..n)
        .filter_map(|_| {
            let pick = index(runner, apis.len());
            let case = strategies[pick].new_tree(runner).ok()?.current();
            (case.auth == AuthFault::None).then_some(Call {
                api: apis[pick],
                case,
            })
        })
        .collect()
}

/// One call as sent: when (nanoseconds since the history began), and when and what it
/// answered (`None`: its outcome is unknown).
struct Sent<'a> {
    call: Call<'a>,
    sent: u64,
    answered: Option<(u64, Answered)>,
}

/// Sends one call; its outcome is unknown after a transport fault, a timeout or only
/// throttling answers.
async fn send<'a>(ctx: &Ctx, call: Call<'a>, start: Instant) -> Result<Sent<'a>, RunError> {
    let at = |t: Instant| t.duration_since(start).as_nanos() as u64;
    let sent = at(Instant::now());
    let answered = match send_case(ctx, call.api, &call.case).await {
        Ok(s) if !s.throttled => {
            let outcome = protocol::decode(call.api.spec.api.family, &s.response);
            Some((
                at(Instant::now()),
                Answered {
                    request: s.request,
                    response: s.response,
                    outcome,
                },
            ))
        }
        Ok(_) | Err(RunError::Transport(_)) => None,
        Err(e) => return Err(e),
    };
    Ok(Sent {
        call,
        sent,
        answered,
    })
}

/// The keys of the shared instances as read, `None` when nothing can read them.
async fn observe(
    ctx: &Ctx,
    api: &LoadedApi,
    region: &str,
    ids: &[String],
) -> Result<Option<Vec<crate::protocol::describe::Seen>>, RunError> {
    Ok(match read(ctx, api, region, ids).await? {
        Read::Seen(seen) => Some(seen),
        Read::NoView | Read::Refused(_) => None,
    })
}

/// Journals what each shared instance holds, once, before the first change is sent.
fn journal(
    ctx: &Ctx,
    api: &LoadedApi,
    region: &str,
    ids: &[String],
    seen: &[crate::protocol::describe::Seen],
) -> Result<(), RunError> {
    let mut journal = ctx.journal();
    let Some(journal) = journal.as_mut() else {
        return Ok(());
    };
    let product = api.spec.instance_product();
    for s in seen.iter().filter(|s| ids.contains(&s.id)) {
        if journal.has(product, &s.id) {
            continue;
        }
        journal.record(super::journal::Before {
            product,
            region: region.to_string(),
            id: s.id.clone(),
            keys: s.keys.clone(),
            state: s.state.clone(),
            seen: true,
        })?;
    }
    Ok(())
}

/// The keys of each shared instance, sorted (`None` for one the read did not show).
type Keys = Vec<Option<Vec<String>>>;

fn keys_of(seen: &[crate::protocol::describe::Seen], ids: &[String]) -> Keys {
    ids.iter()
        .map(|id| {
            seen.iter().find(|s| &s.id == id).map(|s| {
                let mut k = s.keys.clone();
                k.sort();
                k.dedup();
                k
            })
        })
        .collect()
}

fn show(ids: &[String], keys: &Keys) -> String {
    ids.iter()
        .zip(keys)
        .map(|(id, k)| match k {
            Some(k) if k.len() > 6 => format!(
                "{id}: [{}, … {} keys in all, … {}]",
                k[..3].join(", "),
                k.len(),
                k[k.len() - 1]
            ),
            Some(k) => format!("{id}: {k:?}"),
            None => format!("{id}: not shown"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The history as text: the keys before, each call with its interval and answer, the keys
/// after.
fn describe(calls: &[Sent], ids: &[String], before: &Keys, after: &Keys) -> String {
    let mut out = format!("Before: {}.", show(ids, before));
    for (n, c) in calls.iter().enumerate() {
        let call = &c.call;
        let answer = match c.answered.as_ref().map(|(_, a)| &a.outcome.result) {
            None => "unknown outcome".to_string(),
            Some(OutcomeResult::Success) => "success".to_string(),
            Some(OutcomeResult::Error { code, .. }) => format!("error {code}"),
            Some(OutcomeResult::Malformed { .. }) => "a malformed answer".to_string(),
        };
        let params = serde_json::to_string(&call.case.params).unwrap_or_default();
        out.push_str(&format!(
            " Call {} [{:.1}–{} ms] {} {params}: {answer}.",
            n + 1,
            c.sent as f64 / 1e6,
            c.answered
                .as_ref()
                .map_or("?".to_string(), |(t, _)| format!("{:.1}", *t as f64 / 1e6)),
            call.api.name,
        ));
    }
    out.push_str(&format!(" After: {}.", show(ids, after)));
    out
}

/// The calls' sequential meaning, from the specs through the oracle.
struct Judge<'a> {
    set: &'a SpecSet,
    base: &'a World,
    calls: &'a [Sent<'a>],
    opts: &'a RunOptions,
}

impl Judge<'_> {
    fn world(&self, keys: &Keys) -> World {
        let mut w = self.base.clone();
        for (i, k) in w.instances.iter_mut().zip(keys) {
            if let Some(k) = k {
                i.keys = k.clone();
            }
        }
        w
    }

    fn keys(&self, w: &World, like: &Keys) -> Keys {
        w.instances
            .iter()
            .zip(like)
            .map(|(i, was)| {
                was.as_ref().map(|_| {
                    let mut k = i.keys.clone();
                    k.sort();
                    k.dedup();
                    k
                })
            })
            .collect()
    }
}

impl Spec for Judge<'_> {
    type State = Keys;
    type Call = usize;
    type Answer = usize;

    fn step(&self, state: &Keys, call: &usize, answer: Option<&usize>) -> Vec<Keys> {
        let sent = &self.calls[*call];
        let (api, case) = (sent.call.api, &sent.call.case);
        let world = self.world(state);
        let exp = oracle::expect(self.set, api, &world, case);
        let applied = || {
            let mut w = world.clone();
            let effect = oracle::effect(&api.spec, &crate::world::Lookup::new(&w), case, |_| true);
            for (at, _, keys) in effect {
                w.instances[at].keys = keys;
            }
            self.keys(&w, state)
        };
        let Some((_, answered)) = answer.and(sent.answered.as_ref()) else {
            // Unknown: it may not have happened, or happened as a success would.
            let mut out = vec![state.clone()];
            if exp.success_ok {
                out.push(applied());
            }
            return out;
        };
        let outcome = &answered.outcome;
        if let OutcomeResult::Error { code, .. } = &outcome.result {
            if conflict(api, code) {
                return vec![state.clone()];
            }
        }
        let verdict = oracle::weigh(
            oracle::judge_by(self.set, api, case, &exp, outcome, self.opts.revision),
            self.opts.strict,
        );
        if verdict.kind == VerdictKind::Fail {
            return vec![];
        }
        match outcome.result {
            OutcomeResult::Success => {
                let mut w = world.clone();
                oracle::apply(&mut w, api, case, outcome);
                let after = self.keys(&w, state);
                match exp.open && after != *state {
                    true => vec![after, state.clone()],
                    false => vec![after],
                }
            }
            _ => vec![state.clone()],
        }
    }
}

/// Whether `code` is a conflict code the API's own table lists.
fn conflict(api: &LoadedApi, code: &str) -> bool {
    CONFLICT_CODES.contains(&code) && api.spec.error_codes.iter().any(|c| c.code == code)
}

/// The lanes' APIs (positions in the set), as the run's plan orders them.
pub(super) fn lanes_of(lanes: &[Vec<super::plan::Step>]) -> Vec<Vec<usize>> {
    lanes
        .iter()
        .map(|l| {
            let mut seen = BTreeSet::new();
            l.iter()
                .map(|s| s.api)
                .filter(|a| seen.insert(*a))
                .collect()
        })
        .collect()
}

/// Whether the phase runs against `target`.
pub(super) fn wanted(opts: &RunOptions, target: &super::Target) -> bool {
    match opts.concurrency {
        Concurrency::Off => false,
        Concurrency::Loopback => target.is_loopback(),
        Concurrency::Always => true,
    }
}

/// The phase's failures into the stats of the APIs they name, its notes into the run's. Like
/// a run's cases, an API reports one failure per rule: of its failed histories, the one with
/// the fewest calls (the first such), saying how many failed; each counts as a failed check.
pub(super) fn merge(
    set: &SpecSet,
    phase: Phase,
    done: &mut [(usize, super::ApiStats, super::coverage::Facts)],
    notes: &mut Vec<String>,
) {
    let mut by_api: Vec<(usize, usize, usize, Failure)> = Vec::new();
    for (api, calls, failure) in phase.failures {
        match by_api.iter_mut().find(|(a, ..)| *a == api) {
            Some((_, n, fewest, kept)) => {
                *n += 1;
                let first = kept.found_after.min(failure.found_after);
                if calls < *fewest {
                    (*fewest, *kept) = (calls, failure);
                }
                kept.found_after = first;
            }
            None => by_api.push((api, 1, calls, failure)),
        }
    }
    for (api, n, _, mut failure) in by_api {
        let name = &set.apis[api].name;
        if n > 1 {
            failure.detail = format!(
                "{n} histories failed; the one with the fewest calls: {}",
                failure.detail
            );
        }
        if let Some((_, stats, _)) = done.iter_mut().find(|(_, s, _)| &s.api == name) {
            stats.fail += n;
            stats.failures.push(failure);
        }
    }
    // The rules checked count among the API's rules (a JUnit test case each).
    for (api, rule) in phase.checked {
        let name = &set.apis[api].name;
        if let Some((_, stats, _)) = done.iter_mut().find(|(_, s, _)| &s.api == name) {
            stats.rules_total.insert(rule.to_string());
            stats.rules_exercised.insert(rule.to_string());
        }
    }
    notes.extend(phase.notes);
}

/// Replays a failed sequence or history (`apiconform replay`): its calls one after another
/// against the target, the keys and every view read after each, checked as a sequence. A
/// concurrent history is replayed in the order its calls were sent, one at a time: a race is
/// not replayed, so a lost update that needs one no longer fails here. `Some` with the first
/// failing step's verdict and answer; `None` when every step passes.
pub(super) async fn replay(
    ctx: &Ctx,
    set: &SpecSet,
    world: &World,
    opts: &RunOptions,
    failure: &Failure,
) -> Result<(oracle::Verdict, HttpResponse), RunError> {
    let find = |name: &str| set.apis.iter().find(|a| a.name == name);
    let mut apis: Vec<&LoadedApi> = Vec::new();
    for case in &failure.sequence {
        let api = find(&case.api).ok_or_else(|| RunError::NoSpecs {
            patterns: vec![case.api.clone()],
        })?;
        if !apis.iter().any(|a| std::ptr::eq(*a, api)) {
            apis.push(api);
        }
    }
    let first = &failure.sequence[0];
    let product = apis[0].spec.instance_product();
    let named = |id: &str| {
        failure.sequence.iter().any(|c| {
            serde_json::to_string(&c.params).is_ok_and(|p| {
                p.contains(&format!("\"{id}\"")) || p.contains(&format!("\\\"{id}\\\""))
            })
        })
    };
    let shared = World {
        instances: world
            .instances
            .iter()
            .filter(|i| i.product == product && i.region == first.region && named(&i.id))
            .cloned()
            .collect(),
        key_pairs: world
            .key_pairs
            .iter()
            .filter(|k| k.product == product && k.region == first.region)
            .cloned()
            .collect(),
    };
    let mut l = Lane {
        name: product.as_str().to_uppercase(),
        region: first.region.clone(),
        ids: shared.instances.iter().map(|i| i.id.clone()).collect(),
        views: super::views::of(&apis),
        strategies: vec![],
        runner: generate::seeded_runner(0),
        apis: apis.clone(),
        shared,
        sent: 0,
        unknown: 0,
    };
    let api0 = l.apis[0];
    let Some(before) = observe(ctx, api0, &l.region, &l.ids).await? else {
        return Err(RunError::NotReproduced {
            api: failure.api.clone(),
            why: "the instances' keys cannot be read on this target".into(),
        });
    };
    let init = keys_of(&before, &l.ids);
    let start = Instant::now();
    let mut calls: Vec<Sent> = Vec::new();
    for case in &failure.sequence {
        let api = find(&case.api).expect("found above");
        calls.push(
            send(
                ctx,
                Call {
                    api,
                    case: case.clone(),
                },
                start,
            )
            .await?,
        );
        let Some(after) = observe(ctx, api0, &l.region, &l.ids).await? else {
            return Err(RunError::NotReproduced {
                api: failure.api.clone(),
                why: "the instances' keys could not be read after a step".into(),
            });
        };
        let failed = explain(
            ctx,
            set,
            opts,
            &l,
            Kind::Sequences,
            0,
            &calls,
            &init,
            &after,
            0,
        )
        .or(agree(ctx, set, opts, &l, 0, &calls).await?);
        if let Some((_, _, f)) = failed {
            let answered = calls.iter().rev().find_map(|c| c.answered.as_ref());
            let resp = answered
                .map(|(_, a)| a.response.clone())
                .unwrap_or_else(no_answer);
            let verdict = oracle::Verdict {
                kind: VerdictKind::Fail,
                rule: Some(f.rule),
                source: f.source,
                expected: f.expected,
                actual: f.actual,
                detail: f.detail,
                strength: f.strength,
            };
            return Ok((verdict, resp));
        }
    }
    l.sent = calls.len();
    let last = calls.iter().rev().find_map(|c| c.answered.as_ref());
    let resp = last
        .map(|(_, a)| a.response.clone())
        .unwrap_or_else(no_answer);
    let verdict = oracle::Verdict {
        kind: VerdictKind::Pass,
        rule: Some(failure.rule.clone()),
        source: failure.source.clone(),
        expected: "every step explained by the model, every view agreeing".into(),
        actual: format!(
            "{} calls replayed one after another, every step explained",
            l.sent
        ),
        detail: String::new(),
        strength: None,
    };
    Ok((verdict, resp))
}

/// The answer of a replay whose every call had an unknown outcome.
fn no_answer() -> HttpResponse {
    HttpResponse {
        status: 0,
        headers: vec![],
        body: vec![],
    }
}
