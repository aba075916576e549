//! Shrinking: the one loop that walks a failing case's value tree towards a minimal case that
//! still fails, and the runner's use of it — re-run a failure alone first, then shrink it.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};

use proptest::strategy::ValueTree;
use serde_json::Value;

use super::ctx::Ctx;
use super::exchange::{exchange, Judged};
use super::restore::put_back;
use super::{Failure, RunError};
use crate::case::Case;
use crate::oracle::VerdictKind;
use crate::protocol::redact::{curl, redact};
use crate::protocol::request::same_call;
use crate::protocol::OutcomeResult;
use crate::spec::LoadedApi;
use crate::world::World;

/// A case's value tree, as the generator draws it.
pub(super) type Tree = Box<dyn ValueTree<Value = Case>>;

/// Failing cases kept per broken rule, for shrinking.
pub(super) const CANDIDATES: usize = 4;

/// The smallest failing case a shrink found, with what its last failing run returned.
#[derive(Debug)]
pub struct Minimised<T> {
    /// The smallest case that still failed (the tree's starting case when none smaller did).
    pub case: Case,
    /// What `fails` returned for it; `None` when no smaller case failed.
    pub found: Option<T>,
    /// Candidates tried.
    pub steps: usize,
}

/// Shrinking in two passes, within `max_steps` candidates sent in all. First the classic
/// proptest loop: simplify while the case still fails, complicate when it does not, until
/// neither moves. Then each list parameter of the smallest failing case loses runs of items —
/// halves first, then quarters, down to single items — while the case still fails.
///
/// The second pass is there because a tree shrinks a list only along the paths its strategy
/// built: a batch drawn by size, then by which items, simplifies its size first, and once a
/// one-item batch no longer fails, complicating it regenerates that same batch over and over
/// (a 99-instance batch whose failure needs two of them stayed at 99 after 200 steps). The
/// first pass ends once [`STALL`] candidates in a row passed. A candidate already seen to pass
/// is not sent again; only sent candidates count.
///
/// `fails` runs a candidate and says what it saw when it failed (`Some`), or `None` when it
/// passed.
pub async fn minimise<T, E>(
    tree: &mut dyn ValueTree<Value = Case>,
    max_steps: usize,
    mut fails: impl AsyncFnMut(&Case) -> Result<Option<T>, E>,
) -> Result<Minimised<T>, E> {
    let mut best = Minimised {
        case: tree.current(),
        found: None,
        steps: 0,
    };
    let mut passed: HashSet<String> = HashSet::new();
    // A tree that offers only candidates seen before, or only passing ones for a while, has
    // stopped making progress: the rest of the budget goes to the lists.
    let (mut offered, mut stalled) = (0, 0);
    let mut more = tree.simplify();
    while more && best.steps < max_steps && offered < max_steps * 4 && stalled < STALL {
        offered += 1;
        let candidate = tree.current();
        let key = key_of(&candidate);
        if passed.contains(&key) {
            more = tree.complicate();
            continue;
        }
        best.steps += 1;
        more = match fails(&candidate).await? {
            Some(found) => {
                stalled = 0;
                best.found = Some(found);
                best.case = candidate;
                tree.simplify()
            }
            None => {
                stalled += 1;
                passed.insert(key);
                tree.complicate()
            }
        };
    }
    let names: Vec<String> = best.case.params.keys().cloned().collect();
    for name in names {
        let mut chunk = list_len(&best.case, &name) / 2;
        while chunk >= 1 && best.steps < max_steps {
            let mut start = 0;
            while start < list_len(&best.case, &name) && best.steps < max_steps {
                let len = list_len(&best.case, &name);
                let end = (start + chunk).min(len);
                if end - start >= len {
                    // Never the whole list: one item is kept.
                    start += chunk;
                    continue;
                }
                let mut candidate = best.case.clone();
                if let Some(Value::Array(items)) = candidate.params.get_mut(&name) {
                    items.drain(start..end);
                }
                let key = key_of(&candidate);
                if passed.contains(&key) {
                    start += chunk;
                    continue;
                }
                best.steps += 1;
                match fails(&candidate).await? {
                    Some(found) => {
                        best.found = Some(found);
                        best.case = candidate;
                    }
                    None => {
                        passed.insert(key);
                        start += chunk;
                    }
                }
            }
            chunk /= 2;
        }
    }
    Ok(best)
}

/// `(101 items left in InstanceIds)`: the lists a capped shrink left, for its note.
fn list_sizes(case: &Case) -> String {
    let lists: Vec<String> = case
        .params
        .iter()
        .filter_map(|(name, v)| match v {
            Value::Array(items) if items.len() > 1 => {
                Some(format!("{} items left in {name}", items.len()))
            }
            _ => None,
        })
        .collect();
    match lists.is_empty() {
        true => String::new(),
        false => format!(" ({})", lists.join(", ")),
    }
}

/// Passing candidates in a row after which the tree pass gives up.
const STALL: usize = 40;

/// A list parameter's length (0 for anything else, and for a list of one: it is not trimmed to
/// nothing, which a tree reaches on its own where it still fails).
fn list_len(case: &Case, name: &str) -> usize {
    match case.params.get(name) {
        Some(Value::Array(items)) if items.len() > 1 => items.len(),
        _ => 0,
    }
}

/// What tells two candidates apart: everything the request is built from.
fn key_of(case: &Case) -> String {
    serde_json::to_string(case).unwrap_or_default()
}

pub(super) fn fails_with(judged: &Judged, rule: &str) -> bool {
    judged.verdict.kind == VerdictKind::Fail && judged.verdict.rule.as_deref() == Some(rule)
}

/// Shrinks the first of the failing cases that fails again when run alone. When none does (the
/// target answers differently now, or the change came from another case that shared the
/// instances), the first is reported as it was seen, saying so.
///
/// Once `stop` is set (Ctrl-C), nothing more is sent: the failure is reported as found, or as
/// far as shrinking got, saying so.
pub(super) async fn shrink(
    ctx: &Ctx,
    api: &LoadedApi,
    rule: &str,
    candidates: Vec<(Tree, Judged)>,
    stop: &AtomicBool,
) -> Result<Failure, RunError> {
    let stopped = || stop.load(Ordering::Relaxed);
    if stopped() {
        let (tree, mut seen) = candidates
            .into_iter()
            .next()
            .expect("a rule is kept with at least one failing case");
        seen.verdict
            .detail
            .push_str(" (not shrunk: the run was interrupted)");
        return Ok(failure(ctx, api, rule, seen, tree.current(), 0));
    }
    let mut first = None;
    for (mut tree, seen) in candidates {
        // Only a failure seen in the observed state needs the state it met; any other is
        // judged by the answer alone, and putting back what later cases changed would cost
        // requests for nothing.
        let origin = seen.judged_on_state.then(|| seen.before.clone());
        settle(ctx, api, &tree.current(), origin.as_ref(), stop).await?;
        let again = exchange(ctx, api, &tree.current(), None).await?;
        if !fails_with(&again, rule) {
            first.get_or_insert((tree, seen, again));
            continue;
        }
        // Candidates sent: once the run is stopped, minimise's remaining ones are not.
        let mut sent = 0;
        let min = minimise(&mut *tree, ctx.opts.shrink_steps, async |case: &Case| {
            if stopped() {
                return Ok(None);
            }
            settle(ctx, api, case, origin.as_ref(), stop).await?;
            sent += 1;
            let judged = exchange(ctx, api, case, None).await?;
            Ok::<_, RunError>(fails_with(&judged, rule).then_some(judged))
        })
        .await?;
        let shrunk = min.found.is_some();
        let mut best = min.found.unwrap_or(again);
        if stopped() {
            best.verdict
                .detail
                .push_str(" (shrinking stopped: the run was interrupted)");
        }
        let mut f = failure(ctx, api, rule, best, min.case, sent);
        f.shrunk = shrunk;
        if sent >= ctx.opts.shrink_steps {
            f.notes.push(format!(
                "shrinking stopped at its cap of {} candidates: the case may not be minimal{}",
                ctx.opts.shrink_steps,
                list_sizes(&f.case)
            ));
        }
        if let (Some(name), true) = (&f.case.example, shrunk) {
            f.notes.push(format!(
                "shrunk from the document's example «{name}»: the case is no longer as printed"
            ));
        }
        return Ok(f);
    }
    let (tree, mut seen, again) = first.expect("a rule is kept with at least one failing case");
    seen.verdict.detail.push_str(&not_again(&seen, &again));
    Ok(failure(ctx, api, rule, seen, tree.current(), 0))
}

/// [`settle`] for callers outside a run's shrink (an imported request).
pub(super) async fn settle_from(
    ctx: &Ctx,
    api: &LoadedApi,
    case: &Case,
    origin: Option<&World>,
    stop: &AtomicBool,
) -> Result<(), RunError> {
    settle(ctx, api, case, origin, stop).await
}

/// Each candidate of a failure seen in the observed state meets the instances it names as the
/// failure met them (see [`put_back`]), holding their locks alone meanwhile.
///
/// Without it a failure whose change sticks never shows twice: a batch that must fail but binds
/// its keys anyway binds them once, and every candidate after meets instances that hold them
/// already, so nothing changes and the candidate passes. With it shrinking is a function of the
/// failing case, not of what earlier candidates left.
async fn settle(
    ctx: &Ctx,
    api: &LoadedApi,
    case: &Case,
    origin: Option<&World>,
    stop: &AtomicBool,
) -> Result<(), RunError> {
    let Some(origin) = origin else {
        return Ok(());
    };
    let _alone = ctx
        .lock_all(ctx.queue(&case.instance_ids(api), false), false)
        .await;
    put_back(ctx, api, case, origin, &|| stop.load(Ordering::Relaxed))
        .await
        .map(|_| ())
}

/// Why a failure is reported unshrunk: what the re-run alone sent and got. The re-run signs the
/// same case afresh (a new timestamp, nonce and so signature); anything else that differs in
/// the request is the harness's fault, and the report says so.
fn not_again(seen: &Judged, again: &Judged) -> String {
    let answer = |j: &Judged| match &j.outcome.result {
        OutcomeResult::Success => format!("HTTP {} success", j.outcome.status),
        OutcomeResult::Error { code, .. } => format!("HTTP {} {code}", j.outcome.status),
        OutcomeResult::Malformed { reason } => {
            format!("HTTP {} malformed ({reason})", j.outcome.status)
        }
    };
    if !same_call(&seen.request, &again.request) {
        return format!(
            " (not shrunk: the re-run alone sent a different request than the run did, which is \
             a bug of apiconform's; please report it with this file. Run: {} {}; re-run: {} {})",
            seen.request.method, seen.request.target, again.request.method, again.request.target
        );
    }
    if answer(again) == answer(seen) {
        return format!(
            " (not shrunk: re-run alone after the run, the same request (timestamp, nonce and \
             signature aside) got the same answer, {}, which no longer fails: the world the rest \
             of the run left is not the one it met — an earlier case changed what it names)",
            answer(again)
        );
    }
    format!(
        " (not shrunk: re-run alone after the run, the same request (timestamp, nonce and \
         signature aside) got {} where the run got {}, so the target answers differently now or \
         the change came from another case sharing its instances)",
        answer(again),
        answer(seen)
    )
}

pub(super) fn failure(
    ctx: &Ctx,
    api: &LoadedApi,
    rule: &str,
    best: Judged,
    case: Case,
    steps: usize,
) -> Failure {
    let mut f = record(ctx, api, &best.verdict, &best.request, &best.response, case);
    if f.rule.is_empty() {
        f.rule = rule.to_string();
    }
    f.shrink_steps = steps;
    if !best.before.instances.is_empty() || !best.before.key_pairs.is_empty() {
        f.preconditions = Some(best.before);
    }
    f
}

/// The record of a failure: the verdict, the exact request redacted, the answer, with whatever
/// the target echoed of the request's secrets (or the run's credentials) hidden in everything
/// written about it.
pub(super) fn record(
    ctx: &Ctx,
    api: &LoadedApi,
    verdict: &crate::oracle::Verdict,
    request: &crate::protocol::HttpRequest,
    response: &crate::protocol::HttpResponse,
    case: Case,
) -> Failure {
    let redacted = redact(request);
    let o = &ctx.opts;
    let secrets = crate::protocol::redact::secrets_in(request, &o.keys.all_strings());
    let scrub = |t: &str| crate::protocol::redact::scrub(t, &secrets);
    Failure {
        api: api.name.clone(),
        rule: verdict.rule.clone().unwrap_or_default(),
        source: verdict.source.clone(),
        expected: scrub(&verdict.expected),
        actual: scrub(&verdict.actual),
        detail: scrub(&verdict.detail),
        case,
        curl: curl(&redacted, &ctx.target.base_for(&redacted)),
        request: redacted,
        status: response.status,
        response: scrub(&super::target::kept_text(&response.body)),
        shrink_steps: 0,
        found_after: 0,
        strength: verdict.strength,
        burst: None,
        sequence: Vec::new(),
        code: match crate::protocol::decode(api.spec.api.family, response).result {
            OutcomeResult::Error { code, .. } => Some(scrub(&code)),
            _ => None,
        },
        preconditions: None,
        notes: Vec::new(),
        shrunk: false,
    }
}

#[cfg(test)]
mod tests {
    use proptest::strategy::ValueTree;
    use serde_json::json;

    use super::{minimise, Minimised};
    use crate::case::Case;

    fn batch(ids: impl IntoIterator<Item = usize>) -> Case {
        let ids: Vec<String> = ids.into_iter().map(|i| format!("ins-{i:08}")).collect();
        Case::cvm_associate(json!({"InstanceIds": ids, "KeyIds": ["skey-00000001"]}))
    }

    /// A tree like a batch drawn by size, then by items: it simplifies to a one-item batch
    /// and, from there, only ever offers that batch again.
    struct StuckTree {
        start: Case,
        small: Case,
        simplified: bool,
    }

    impl ValueTree for StuckTree {
        type Value = Case;
        fn current(&self) -> Case {
            match self.simplified {
                true => self.small.clone(),
                false => self.start.clone(),
            }
        }
        fn simplify(&mut self) -> bool {
            self.simplified = true;
            true
        }
        fn complicate(&mut self) -> bool {
            true
        }
    }

    fn ids(case: &Case) -> Vec<String> {
        case.params["InstanceIds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    }

    fn shrink(tree: &mut dyn ValueTree<Value = Case>, sent: &mut Vec<Case>) -> Minimised<()> {
        // Fails while it names both instance 10 and instance 40 (a good one before the bad one).
        let run = minimise(tree, 200, async |c: &Case| {
            sent.push(c.clone());
            let ids = ids(c);
            let needs = ["ins-00000010", "ins-00000040"];
            Ok::<_, std::convert::Infallible>(
                needs
                    .iter()
                    .all(|n| ids.iter().any(|i| i == n))
                    .then_some(()),
            )
        });
        futures::executor::block_on(run).unwrap_or_else(|never| match never {})
    }

    #[test]
    fn a_stuck_tree_hands_its_lists_to_the_trimming_pass() {
        let mut tree = StuckTree {
            start: batch(0..99),
            small: batch([40]),
            simplified: false,
        };
        let mut sent = Vec::new();
        let min = shrink(&mut tree, &mut sent);
        assert_eq!(ids(&min.case), ["ins-00000010", "ins-00000040"]);
        assert_eq!(min.steps, sent.len(), "every candidate sent is counted");
        // The one-item batch the tree repeats is sent once; halving finds the two items in far
        // fewer candidates than removing one item at a time (97) would.
        let repeats = sent.iter().filter(|c| ids(c) == ["ins-00000040"]).count();
        assert_eq!(repeats, 1, "a candidate seen to pass is not sent again");
        assert!(min.steps < 40, "{} candidates", min.steps);
        assert!(min.found.is_some());
    }

    #[test]
    fn a_list_of_one_is_left_alone_and_the_budget_holds() {
        // Fails whatever it names: the list pass stops at one item, not at none.
        let mut tree = StuckTree {
            start: batch(0..8),
            small: batch(0..8),
            simplified: false,
        };
        let run = minimise(&mut tree, 5, async |_: &Case| {
            Ok::<_, std::convert::Infallible>(Some(()))
        });
        let min = futures::executor::block_on(run).unwrap_or_else(|never| match never {});
        assert_eq!(min.steps, 5, "no more candidates than the budget");
        let mut tree = StuckTree {
            start: batch(0..8),
            small: batch(0..8),
            simplified: true,
        };
        let mut calls = 0;
        let run = minimise(&mut tree, 10_000, async |_: &Case| {
            calls += 1;
            Ok::<_, std::convert::Infallible>((calls > 1).then_some(()))
        });
        let min = futures::executor::block_on(run).unwrap_or_else(|never| match never {});
        assert_eq!(ids(&min.case).len(), 1, "{:?}", ids(&min.case));
    }
}
