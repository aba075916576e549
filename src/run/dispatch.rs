//! Dispatching one API's cases: draw them from the plan, keep at most `jobs` exchanges in
//! flight as tasks on every worker, count what comes back, keep the first failing cases of each
//! broken rule, and shrink them once every case has run.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use super::coverage::Withheld;
use super::ctx::Ctx;
use super::exchange::{exchange, queue, Disposition, Judged};
use super::plan::Cases;
use super::shrink::{shrink, Tree, CANDIDATES};
use super::{ApiStats, Progress, RunError};
use crate::oracle::{self, VerdictKind};
use crate::protocol::OutcomeResult;

/// Progress counters across APIs (the lanes update them concurrently).
#[derive(Default)]
pub(super) struct Counts {
    pub(super) done: AtomicUsize,
    pub(super) failed: AtomicUsize,
    /// Cases done per API, by the API's index in the spec set (the progress lines).
    pub(super) per_api: HashMap<usize, AtomicUsize>,
}

impl Counts {
    /// Counters for the APIs of these spec-set indices.
    pub(super) fn new(apis: impl IntoIterator<Item = usize>) -> Counts {
        Counts {
            per_api: apis.into_iter().map(|i| (i, AtomicUsize::new(0))).collect(),
            ..Counts::default()
        }
    }
}

/// What the run's progress reporting needs.
pub(super) struct Watch<'a> {
    pub(super) progress: &'a dyn Progress,
    pub(super) total: usize,
    pub(super) counts: &'a Counts,
    pub(super) stop: &'a AtomicBool,
}

/// An API's counters before its first case: its rules, documented codes and spec digest.
pub(super) fn new_stats(ctx: &Ctx, api_index: usize) -> ApiStats {
    let api = &ctx.set.apis[api_index];
    let family = ctx.set.family(api.spec.api.family);
    ApiStats {
        api: api.name.clone(),
        rules_total: api
            .spec
            .rules
            .iter()
            .chain(family.rules.iter())
            .map(|r| r.id.clone())
            .collect(),
        codes_documented: oracle::documented_codes(api).into_iter().collect(),
        spec_digest: spec_digest(api, family),
        ..Default::default()
    }
}

/// A short digest of what the run read of an API's spec and its family's.
fn spec_digest(api: &crate::spec::LoadedApi, family: &crate::spec::FamilySpec) -> String {
    use sha2::Digest;
    let mut hash = sha2::Sha256::new();
    hash.update(serde_json::to_vec(&api.spec).unwrap_or_default());
    hash.update(serde_json::to_vec(family).unwrap_or_default());
    hex::encode(&hash.finalize()[..8])
}

/// Runs one API's cases; only counters and, per broken rule, the first few failing cases'
/// value trees (for shrinking) outlive a case. Also returns, per rule, the cases that would
/// have exercised it but were not judged (held back, or only throttled).
pub(super) async fn run_api<'a>(
    ctx: &Arc<Ctx>,
    api_index: usize,
    mut cases: Cases<'a>,
    watch: &Watch<'_>,
) -> Result<(ApiStats, Cases<'a>, Withheld), RunError> {
    let api = &ctx.set.apis[api_index];
    let mut stats = new_stats(ctx, api_index);
    let mut withheld = Withheld::default();
    let api_done = watch.counts.per_api.get(&api_index);
    let jobs = ctx.opts.jobs.max(1);
    let mut in_flight = tokio::task::JoinSet::new();
    let mut pending: HashMap<usize, Tree> = HashMap::with_capacity(jobs);
    // Per broken rule, the failing cases earliest in the plan (at most `CANDIDATES`), by their
    // place in it: which cases are kept, and so what is shrunk, does not depend on the order
    // the target answered them in.
    let mut to_shrink: BTreeMap<String, BTreeMap<usize, (Tree, Judged)>> = BTreeMap::new();
    let mut exhausted = false;
    loop {
        while !exhausted && in_flight.len() < jobs {
            if watch.stop.load(Ordering::Relaxed) {
                exhausted = true;
                break;
            }
            let Some((i, tree, case)) = cases.next() else {
                exhausted = true;
                break;
            };
            pending.insert(i, tree);
            // Queued here, in plan order, so cases naming the same instance run in that order.
            let ticket = queue(ctx, &ctx.set.apis[api_index], &case);
            let ctx = Arc::clone(ctx);
            in_flight.spawn(async move {
                let api = &ctx.set.apis[api_index];
                let judged = exchange(&ctx, api, &case, Some(ticket)).await;
                (i, case, judged)
            });
        }
        let Some(joined) = in_flight.join_next().await else {
            break;
        };
        let (i, case, result) = match joined {
            Ok(r) => r,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("case task cancelled: {e}"),
        };
        let tree = pending.remove(&i).expect("a tree per case in flight");
        let mut judged = result?;
        let withheld_why = match judged.disposition {
            Disposition::Throttled => Some(None),
            Disposition::NotSent(why) => Some(Some(why)),
            // A case the run's halt kept back did not run at all.
            Disposition::Judged | Disposition::Halted => None,
        };
        if let Some(why) = withheld_why {
            // Not judged: the rules it would have exercised, as the oracle expects them of the
            // case in the model as it stands.
            let before = ctx.model().reach(&case);
            let rules = oracle::expect(&ctx.set, api, &before, &case).rules;
            withheld.add(&rules, why);
        }
        if let Some(rule) = count(&mut stats, &judged) {
            // Kept until shrinking: the verdict is made, the record needs little of the body.
            super::target::keep_little(&mut judged.response.body);
            watch.counts.failed.fetch_add(1, Ordering::Relaxed);
            let kept = to_shrink.entry(rule).or_default();
            kept.insert(i, (tree, judged));
            if kept.len() > CANDIDATES {
                kept.pop_last();
            }
        }
        if let Some(n) = api_done {
            n.fetch_add(1, Ordering::Relaxed);
        }
        let done = watch.counts.done.fetch_add(1, Ordering::Relaxed) + 1;
        let failed = watch.counts.failed.load(Ordering::Relaxed);
        watch.progress.update(done, watch.total, failed);
    }
    stats.unspecified_share = stats.unspecified as f64 / stats.cases.max(1) as f64;
    // Shrink one failure per rule, sequentially, so each candidate sees a settled world.
    for (rule, candidates) in to_shrink {
        // The first failing case's place in the plan, counted from 1.
        let first = candidates.keys().next().map_or(stats.cases, |i| i + 1);
        let candidates = candidates.into_values().collect();
        let mut failure = shrink(ctx, api, &rule, candidates, watch.stop).await?;
        failure.found_after = first;
        stats.failures.push(failure);
    }
    Ok((stats, cases, withheld))
}

/// Adds a judged case to the counters; the rule it fails, if it fails. A case the run's halt
/// kept from being sent did not run: it counts nowhere.
fn count(stats: &mut ApiStats, judged: &Judged) -> Option<String> {
    if judged.disposition == Disposition::Halted {
        return None;
    }
    stats.cases += 1;
    stats.retries += judged.retries;
    // Nearly always already there: look before copying.
    for rule in &judged.rules {
        if !stats.rules_exercised.contains(rule) {
            stats.rules_exercised.insert(rule.clone());
        }
    }
    if let OutcomeResult::Error { code, .. } = &judged.outcome.result {
        if stats.codes_documented.contains(code) && !stats.codes_provoked.contains(code) {
            stats.codes_provoked.insert(code.clone());
        }
    }
    match judged.disposition {
        Disposition::Judged => {}
        Disposition::NotSent(why) => {
            *stats.not_sent.entry(why.why().to_string()).or_default() += 1;
            stats.not_judged += 1;
            return None;
        }
        Disposition::Throttled | Disposition::Halted => {
            stats.not_judged += 1;
            return None;
        }
    }
    if judged.unobservable {
        stats.unobservable_effects += 1;
    }
    match judged.verdict.kind {
        VerdictKind::Pass => {
            stats.pass += 1;
            tally(stats, &judged.rules, |t| t.pass += 1);
        }
        VerdictKind::Unspecified => {
            stats.unspecified += 1;
            let reason = judged
                .open_reason
                .as_ref()
                .map_or_else(|| "open".to_string(), ToString::to_string);
            *stats.unspecified_by.entry(reason).or_default() += 1;
            tally(stats, &judged.rules, |t| t.unspecified += 1);
        }
        VerdictKind::Fail => {
            stats.fail += 1;
            let rule = judged.verdict.rule.clone().unwrap_or_else(|| "?".into());
            // Only the broken rule: the case says nothing of the others it exercised.
            tally(stats, std::slice::from_ref(&rule), |t| t.fail += 1);
            return Some(rule);
        }
    }
    None
}

/// Adds one case's outcome to the tallies of these rules.
fn tally(stats: &mut ApiStats, rules: &[String], add: impl Fn(&mut super::Tally)) {
    for rule in rules {
        match stats.rule_tallies.get_mut(rule) {
            Some(t) => add(t),
            None => add(stats.rule_tallies.entry(rule.clone()).or_default()),
        }
    }
}
