//! Shrinking: the one loop that walks a failing case's value tree towards a minimal case that
//! still fails, and the runner's use of it — re-run a failure alone first, then shrink it.

use std::sync::atomic::{AtomicBool, Ordering};

use proptest::strategy::ValueTree;

use super::ctx::Ctx;
use super::exchange::{exchange, Judged};
use super::{Failure, RunError};
use crate::case::Case;
use crate::oracle::VerdictKind;
use crate::protocol::redact::{curl, redact};
use crate::protocol::request::same_call;
use crate::protocol::OutcomeResult;
use crate::spec::LoadedApi;

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

/// The classic proptest loop: simplify while the case still fails, complicate when it does not,
/// until neither moves or `max_steps` candidates were tried. `fails` runs a candidate and says
/// what it saw when it failed (`Some`), or `None` when it passed.
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
    if !tree.simplify() {
        return Ok(best);
    }
    loop {
        best.steps += 1;
        let candidate = tree.current();
        let more = match fails(&candidate).await? {
            Some(found) => {
                best.found = Some(found);
                best.case = candidate;
                tree.simplify()
            }
            None => tree.complicate(),
        };
        if !more || best.steps >= max_steps {
            return Ok(best);
        }
    }
}

fn fails_with(judged: &Judged, rule: &str) -> bool {
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
        let again = exchange(ctx, api, &tree.current(), None).await?;
        if !fails_with(&again, rule) {
            first.get_or_insert((tree, seen, again));
            continue;
        }
        let min = minimise(&mut *tree, ctx.opts.shrink_steps, async |case: &Case| {
            if stopped() {
                return Ok(None);
            }
            let judged = exchange(ctx, api, case, None).await?;
            Ok::<_, RunError>(fails_with(&judged, rule).then_some(judged))
        })
        .await?;
        let mut best = min.found.unwrap_or(again);
        if stopped() {
            best.verdict
                .detail
                .push_str(" (shrinking stopped: the run was interrupted)");
        }
        return Ok(failure(ctx, api, rule, best, min.case, min.steps));
    }
    let (tree, mut seen, again) = first.expect("a rule is kept with at least one failing case");
    seen.verdict.detail.push_str(&not_again(&seen, &again));
    Ok(failure(ctx, api, rule, seen, tree.current(), 0))
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

fn failure(
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
    let secrets = crate::protocol::redact::secrets_in(
        request,
        &[
            &o.tencent.id,
            &o.tencent.secret,
            &o.alibaba.id,
            &o.alibaba.secret,
        ],
    );
    let scrub = |t: &str| crate::protocol::redact::scrub(t, &secrets);
    Failure {
        api: api.name.clone(),
        rule: verdict.rule.clone().unwrap_or_default(),
        source: verdict.source.clone(),
        expected: scrub(&verdict.expected),
        actual: scrub(&verdict.actual),
        detail: scrub(&verdict.detail),
        case,
        curl: curl(&redacted, ctx.target.url()),
        request: redacted,
        status: response.status,
        response: scrub(&String::from_utf8_lossy(&response.body)),
        shrink_steps: 0,
        found_after: 0,
        strength: verdict.strength,
        burst: None,
    }
}
