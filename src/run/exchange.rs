//! One case's life, in stages: **plan** (locks and the model's view before the call) → **send**
//! (sign, pace, retry) → **observe** (read the named instances back) → **reconcile** (the model
//! follows what was observed) → **judge** (the verdict). Each stage returns a named value;
//! [`exchange`] reads top to bottom.

use std::collections::HashMap;

use super::ctx::{shares, Ctx, Held, Ticket};
use super::observe::{observe, read, Read};
use super::restore::put_back;
use super::send::{send_case_unless, Sent, Slot};
use super::RunError;
use crate::case::{AuthFault, Case};
use crate::oracle::{self, Expectation, Verdict, VerdictKind};
use crate::protocol::describe::Seen;
use crate::protocol::{self, HttpRequest, HttpResponse, Outcome, OutcomeResult};
use crate::spec::{InstanceState, LoadedApi, Situation};
use crate::world::World;

/// One judged exchange.
pub(super) struct Judged {
    pub(super) verdict: Verdict,
    pub(super) outcome: Outcome,
    pub(super) request: HttpRequest,
    pub(super) response: HttpResponse,
    /// Rules the case exercises (coverage).
    pub(super) rules: Vec<String>,
    pub(super) retries: usize,
    /// A success whose effect nothing could observe.
    pub(super) unobservable: bool,
    /// Whether the verdict stands: the case was sent and judged, only throttled, not sent (and
    /// why), or halted before it ran.
    pub(super) disposition: Disposition,
    /// Why an unspecified verdict is open: the situations the documents leave open, or the
    /// judgement the target did not follow (the report tallies these).
    pub(super) open_reason: Option<OpenReason>,
    /// Whether the verdict comes from observed state disagreeing with the model, in a case that
    /// shared its instances' locks (another sharer may have made the change).
    shared_state_failure: bool,
    /// The model of what the case names, before the call: a re-run alone, and each shrink
    /// candidate of a failure judged on state, puts the target back to it first, so a change
    /// that sticks (a failed batch that bound keys anyway) shows again instead of the re-run
    /// finding its own leftovers.
    pub(super) before: World,
    /// Whether the verdict is the observed state's (bindings that disagree with the model),
    /// not the answer's.
    pub(super) judged_on_state: bool,
}

/// How a case may hold its instances.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Hold {
    /// Shared with other cases that must fail as a whole, where the run allows it.
    AsPlanned,
    /// Alone, after reading the instances back from the target into the model (put back
    /// first to what an earlier try met, when the re-run is given it).
    AloneFromTarget,
    /// Alone, from the model: a request someone else sent (the proxy), which may change state.
    Alone,
}

/// Sends one case and judges it.
///
/// A case sharing its instances that finds them changed cannot tell whose call changed them:
/// its own, or that of another case sharing them (a target that changes state on a call the
/// documents require to fail). It runs again alone, from what it met the first time (the
/// instances put back where the specs can undo the change, else what the target holds then),
/// and that verdict stands: the culprit's own failure names the bug, once, instead of every
/// sharer reporting a change it did not make — and which sharer is the culprit does not depend
/// on which of them the target served last.
///
/// `ticket` is the case's place in its instances' lock queues, taken by the dispatcher in plan
/// order ([`queue`]); `None` queues it now, behind everything queued before.
pub(super) async fn exchange(
    ctx: &Ctx,
    api: &LoadedApi,
    case: &Case,
    ticket: Option<Ticket>,
) -> Result<Judged, RunError> {
    let ticket = ticket.unwrap_or_else(|| queue(ctx, api, case));
    let judged = attempt(ctx, api, case, Hold::AsPlanned, ticket, None).await?;
    if judged.shared_state_failure {
        let alone = ctx.queue(&case.instance_ids(api), false);
        let met = Some(&judged.before);
        return attempt(ctx, api, case, Hold::AloneFromTarget, alone, met).await;
    }
    Ok(judged)
}

/// Queues a case for its instances' locks: shared when it must fail as a whole and the run
/// allows sharing, alone otherwise.
pub(super) fn queue(ctx: &Ctx, api: &LoadedApi, case: &Case) -> Ticket {
    ctx.queue(&case.instance_ids(api), shares(api, case, ctx.paced(api)))
}

/// One try at a case: plan → send → observe → reconcile → judge.
async fn attempt(
    ctx: &Ctx,
    api: &LoadedApi,
    case: &Case,
    hold: Hold,
    ticket: Ticket,
    met: Option<&World>,
) -> Result<Judged, RunError> {
    let plan = plan(ctx, api, case, hold, ticket, met).await?;
    if let Some(held) = held_but_unlisted(ctx, api, case, &plan).await? {
        let held = held.join(", ");
        let detail = format!(
            "not sent: {} named {held}, which the world file does not list but the target holds; only listed resources are touched",
            case.api
        );
        let said = (
            "ids the world does not list to be absent".into(),
            format!("the target holds {held}"),
            detail,
        );
        return not_sent(
            ctx,
            api,
            case,
            Disposition::NotSent(NotSent::UnlistedHeld),
            said,
        );
    }
    if let Some(running) = may_stop_running(ctx, api, case, &plan) {
        let running = running.join(", ");
        let detail = format!(
            "not sent: {} names {running}, RUNNING, and could stop it; pass --allow-force-stop to let such cases go to a target that is not on loopback",
            case.api
        );
        let said = (
            "no RUNNING instance stopped".into(),
            format!("{running} RUNNING"),
            detail,
        );
        return not_sent(
            ctx,
            api,
            case,
            Disposition::NotSent(NotSent::MayStopRunning),
            said,
        );
    }
    if plan.touches_model {
        if let Some(refused) = journal_before(ctx, api, case, &plan).await? {
            let detail = format!(
                "not sent: what {} names could not be read before the change ({refused}), so it could not be journaled and put back; check the credentials and that the read call is allowed",
                case.api
            );
            let said = (
                "a journaled read before every change".into(),
                format!("the read was refused: {refused}"),
                detail,
            );
            return not_sent(
                ctx,
                api,
                case,
                Disposition::NotSent(NotSent::PreReadRefused),
                said,
            );
        }
    }
    // A case of the plan gives up its wait for a pacing slot when the run halts; a re-run
    // alone finishes what an earlier try began.
    let slot = match hold {
        Hold::AsPlanned => Slot::UnlessHalted,
        Hold::AloneFromTarget | Hold::Alone => Slot::Wait,
    };
    let Some(sent) = send_case_unless(ctx, api, case, slot).await? else {
        let said = (
            "the case sent".into(),
            "not sent".into(),
            format!(
                "not sent: {} was waiting for its pacing slot when the run stopped",
                case.api
            ),
        );
        return not_sent(ctx, api, case, Disposition::Halted, said);
    };
    after_send(ctx, api, case, plan, sent).await
}

/// An exchange the harness did not send — the proxy forwards a client's request — judged by the
/// same stages, with `forward` as the send stage: it holds its instances alone (nothing says it
/// must fail, so nothing is shared), and nothing is re-sent (the client's bytes went once).
pub(super) async fn forwarded(
    ctx: &Ctx,
    api: &LoadedApi,
    case: &Case,
    request: HttpRequest,
    forward: impl std::future::Future<Output = Result<HttpResponse, RunError>>,
) -> Result<Judged, RunError> {
    let ticket = ctx.queue(&case.instance_ids(api), false);
    let plan = plan(ctx, api, case, Hold::Alone, ticket, None).await?;
    let response = forward.await?;
    let sent = Sent {
        throttled: super::send::throttled(ctx.set.family(api.spec.api.family), &response),
        request,
        first: None,
        response,
        retries: 0,
    };
    after_send(ctx, api, case, plan, sent).await
}

/// The stages after the send: predict → observe → reconcile → judge.
async fn after_send(
    ctx: &Ctx,
    api: &LoadedApi,
    case: &Case,
    mut plan: Plan,
    sent: Sent,
) -> Result<Judged, RunError> {
    if sent.throttled {
        // Throttling is never a verdict: the request was not served.
        return Ok(not_judged(api, case, sent));
    }
    let predicted = predict(api, case, &plan, &sent);
    let expectation = plan
        .expectation
        .take()
        .unwrap_or_else(|| oracle::expect(&ctx.set, api, &predicted.before, case));
    let seen = match plan.touches_model {
        true => observe(ctx, api, &case.region, &plan.instances).await?,
        false => None,
    };
    reconcile(ctx, api, &plan, &predicted, &expectation, seen.as_deref());
    drop(plan.locks);
    Ok(judge(ctx, api, case, expectation, predicted, seen, sent))
}

/// What is settled before sending: the instances the case names, their locks, and the model's
/// view of them.
struct Plan {
    /// The instance ids the case names, sorted and deduplicated.
    instances: Vec<String>,
    locks: Held,
    /// Whether the locks are shared (the case must fail as a whole).
    shared: bool,
    /// The part of the model the case can reach, before the call.
    before: World,
    /// Computed already when the locks are shared (to confirm sharing was safe).
    expectation: Option<Expectation>,
    /// Whether the case names an instance the model holds: only then is anything observed.
    touches_model: bool,
    /// Named instances whose state the model does not know, even after reading them back
    /// (nothing shows it): a verdict that depends on it is unspecified.
    state_unknown: Vec<String>,
}

/// Takes the instances' locks — shared among cases the documents require to fail as a whole
/// (a conforming target changes nothing for them), alone for anything that may succeed — and
/// reads the model. Sharing never makes a false failure against a conforming target; against
/// one that changes state on a failed call, a case sharing an instance with the culprit may see
/// the change too: shrinking re-runs failures alone and reports one that fails there. Paced
/// requests (every remote target by default) never share: a real cloud sees one call at a time
/// per instance.
async fn plan(
    ctx: &Ctx,
    api: &LoadedApi,
    case: &Case,
    hold: Hold,
    mut ticket: Ticket,
    met: Option<&World>,
) -> Result<Plan, RunError> {
    let mut instances = case.instance_ids(api);
    let mut shared = hold == Hold::AsPlanned && shares(api, case, ctx.paced(api));
    loop {
        let locks = ctx.lock_all(ticket, shared).await;
        let product = api.spec.instance_product();
        if let (Hold::AloneFromTarget, Some(met)) = (hold, met) {
            // A re-run meets what the try it re-runs met, not what the sharers left.
            put_back(ctx, api, case, met, &|| false).await?;
        }
        // An earlier call left a named instance's state open: read it back before judging.
        let unknown = !ctx.model().state_unknown(product, &instances).is_empty();
        if hold == Hold::AloneFromTarget || unknown {
            resync(ctx, api, &case.region, &instances).await?;
        }
        let state_unknown = match unknown {
            true => ctx.model().state_unknown(product, &instances),
            false => Vec::new(),
        };
        // Only what the case can name: every lookup of the oracle is by an id taken from it.
        let before = ctx.model().reach(case);
        let touches_model = before
            .instances
            .iter()
            .any(|i| i.product == product && instances.binary_search(&i.id).is_ok());
        let mut plan = Plan {
            instances,
            locks,
            shared,
            before,
            expectation: None,
            touches_model,
            state_unknown,
        };
        if !shared {
            return Ok(plan);
        }
        let expectation = oracle::expect(&ctx.set, api, &plan.before, case);
        if !expectation.success_ok {
            plan.expectation = Some(expectation);
            return Ok(plan);
        }
        // The model lets it succeed after all: it may change state, so it runs alone, from
        // its place in the queues.
        ticket = plan.locks.release();
        (instances, shared) = (plan.instances, false);
    }
}

/// The model takes what the target reports for these instances (their locks held alone).
async fn resync(
    ctx: &Ctx,
    api: &LoadedApi,
    region: &str,
    instances: &[String],
) -> Result<(), RunError> {
    if let Some(seen) = observe(ctx, api, region, instances).await? {
        let product = api.spec.instance_product();
        let mut model = ctx.model();
        for s in seen {
            model.set_keys(product, &s.id, &s.keys);
            if let Some(state) = s.state.as_deref().and_then(state_of) {
                model.set_state(product, &s.id, state);
            }
        }
    }
    Ok(())
}

/// An observed state (`RUNNING`, `STOPPED`, ...) as the world writes it.
fn state_of(text: &str) -> Option<InstanceState> {
    InstanceState::from_name(text)
}

/// The model around the call: before it (a replay's first, ordinary send applied) and after it
/// (the effect on success), with the decoded answer.
struct Predicted {
    before: World,
    after: Option<World>,
    outcome: Outcome,
    /// Whether the case names an instance the model holds (see [`Plan`]).
    touches_model: bool,
    /// Whether the case shared its instances' locks.
    shared: bool,
    /// Named instances whose state nothing could show (see [`Plan`]).
    state_unknown: Vec<String>,
}

fn predict(api: &LoadedApi, case: &Case, plan: &Plan, sent: &Sent) -> Predicted {
    let family = api.spec.api.family;
    let mut before = plan.before.clone();
    if let Some(first) = &sent.first {
        // A replayed nonce: the first send took effect; the replay is judged against that.
        let plain = Case {
            auth: AuthFault::None,
            ..case.clone()
        };
        oracle::apply(&mut before, api, &plain, &protocol::decode(family, first));
    }
    let outcome = protocol::decode(family, &sent.response);
    let after = (plan.touches_model && outcome.result == OutcomeResult::Success).then(|| {
        let mut after = before.clone();
        oracle::apply(&mut after, api, case, &outcome);
        after
    });
    Predicted {
        before,
        after,
        outcome,
        touches_model: plan.touches_model,
        shared: plan.shared,
        state_unknown: plan.state_unknown.clone(),
    }
}

/// The model follows the target where it could be observed, so one failure does not cascade
/// into the cases after it; elsewhere it follows the documents. Where the documents leave an
/// instance's state open after a success (a forced call on a RUNNING instance, or one a target
/// may shut down normally), the model forgets it until an observation says which.
fn reconcile<'a>(
    ctx: &Ctx,
    api: &LoadedApi,
    plan: &'a Plan,
    predicted: &'a Predicted,
    expectation: &Expectation,
    seen: Option<&'a [Seen]>,
) {
    if !plan.touches_model {
        return;
    }
    let product = api.spec.instance_product();
    let state_open = predicted.outcome.result == OutcomeResult::Success
        && expectation.situations.iter().any(|s| {
            matches!(
                s,
                Situation::RunningWithForce | Situation::RunningWithoutForce
            )
        });
    if state_open {
        let running: Vec<String> = predicted
            .before
            .instances
            .iter()
            .filter(|i| i.product == product && i.state == InstanceState::Running)
            .filter(|i| plan.instances.binary_search(&i.id).is_ok())
            .map(|i| i.id.clone())
            .collect();
        ctx.model().forget_state(product, &running);
    }
    {
        let mut model = ctx.model();
        for s in seen.into_iter().flatten() {
            if let Some(state) = s.state.as_deref().and_then(state_of) {
                model.set_state(product, &s.id, state);
            }
        }
    }
    let observed: Option<Vec<(&'a str, &'a Vec<String>)>> =
        seen.map(|seen| seen.iter().map(|s| (s.id.as_str(), &s.keys)).collect());
    // By id, the first of each (as a scan would find it).
    fn by_id<'b>(
        items: impl Iterator<Item = (&'b str, &'b Vec<String>)>,
    ) -> HashMap<&'b str, &'b Vec<String>> {
        let mut map = HashMap::new();
        for (id, keys) in items {
            map.entry(id).or_insert(keys);
        }
        map
    }
    let instances_of = |w: &'a World| {
        w.instances
            .iter()
            .filter(move |i| i.product == product)
            .map(|i| (i.id.as_str(), &i.keys))
    };
    let modelled = by_id(instances_of(
        predicted.after.as_ref().unwrap_or(&predicted.before),
    ));
    let seen = by_id(observed.into_iter().flatten());
    // A case sharing its locks writes only what differs from the model it started from:
    // another sharer may have written a newer observation already.
    let started = plan.shared.then(|| by_id(instances_of(&plan.before)));
    let mut model = ctx.model();
    for id in &plan.instances {
        let Some(keys) = seen.get(id.as_str()).or_else(|| modelled.get(id.as_str())) else {
            continue;
        };
        if started
            .as_ref()
            .is_some_and(|s| s.get(id.as_str()) == Some(keys))
        {
            continue;
        }
        model.set_keys(product, id, keys);
    }
}

/// The verdict: the answer against the expectation, then the observed state against the model.
fn judge(
    ctx: &Ctx,
    api: &LoadedApi,
    case: &Case,
    mut expectation: Expectation,
    predicted: Predicted,
    seen: Option<Vec<Seen>>,
    sent: Sent,
) -> Judged {
    let states: Vec<(String, Option<String>)> = seen
        .iter()
        .flatten()
        .map(|s| (s.id.clone(), s.state.clone()))
        .collect();
    let observed: Option<Vec<(String, Vec<String>)>> =
        seen.map(|seen| seen.into_iter().map(|s| (s.id, s.keys)).collect());
    let Predicted {
        before,
        after,
        outcome,
        touches_model,
        shared,
        state_unknown,
    } = predicted;
    let mut verdict = oracle::judge_by(
        &ctx.set,
        api,
        case,
        &expectation,
        &outcome,
        ctx.opts.revision,
    );
    let success = outcome.result == OutcomeResult::Success;
    let mut unobservable = false;
    let mut shared_state_failure = false;
    let mut judged_on_state = false;
    if touches_model {
        match &observed {
            Some(observed) => {
                let state = match &after {
                    Some(after) => oracle::check_state(api, after, observed),
                    None if success => oracle::check_state(api, &before, observed),
                    None => oracle::check_unchanged(api, &before, observed),
                };
                if let (Some(v), false) = (state, verdict.kind == VerdictKind::Fail) {
                    shared_state_failure = shared && v.kind == VerdictKind::Fail;
                    judged_on_state = v.kind == VerdictKind::Fail;
                    verdict = v;
                }
            }
            None => unobservable = success,
        }
    }
    // The seeds' literal reading of a RUNNING instance without the force flag, when asked for.
    let literal = ctx.opts.strict || ctx.opts.revision == oracle::Revision::Seed;
    if literal && success && verdict.kind != VerdictKind::Fail {
        if let Some(v) = oracle::check_literal_stopped(api, &before, &expectation, &states) {
            verdict = v;
        }
    }
    let mut state_open = false;
    if verdict.kind == VerdictKind::Fail && !state_unknown.is_empty() {
        verdict = unless_state_explains(ctx, api, case, &before, &outcome, &state_unknown, verdict);
        state_open = verdict.kind == VerdictKind::Unspecified;
    }
    // A response-set property: the answer's request id against the run's earlier answers.
    let (exercised, repeated) = ctx.request_ids.check(&ctx.set, api, case, &outcome);
    if exercised {
        if let Some(rule) = oracle::response_set::request_id_rule(&ctx.set, api) {
            expectation.rules.push(rule.id.clone());
        }
    }
    if let (Some(v), false) = (repeated, verdict.kind == VerdictKind::Fail) {
        verdict = v;
    }
    // Only what the documents state fails a target by default.
    let verdict = oracle::weigh(
        oracle::with_strength(&ctx.set, api, verdict),
        ctx.opts.strict,
    );
    let open_reason = match state_open {
        true => Some(OpenReason::StateUnknown),
        false => open_reason(&expectation, &verdict),
    };
    Judged {
        rules: expectation.rules,
        open_reason,
        verdict,
        outcome,
        request: sent.request,
        response: sent.response,
        retries: sent.retries,
        unobservable,
        disposition: Disposition::Judged,
        shared_state_failure,
        before,
        judged_on_state,
    }
}

/// On a remote target, the instances a case names that the world file does not list are
/// meant not to exist (their ids are random); before such a case is sent, the read APIs
/// confirm it. An id the target does hold is a resource the user did not list: the case is
/// not sent. `None` when nothing stands in the way (loopback targets, nothing unlisted named,
/// or no read API that could show it).
async fn held_but_unlisted(
    ctx: &Ctx,
    api: &LoadedApi,
    case: &Case,
    plan: &Plan,
) -> Result<Option<Vec<String>>, RunError> {
    if ctx.target.is_loopback() {
        return Ok(None);
    }
    let product = api.spec.instance_product();
    let unlisted: Vec<String> = plan
        .instances
        .iter()
        .filter(|id| {
            !plan
                .before
                .instances
                .iter()
                .any(|i| i.product == product && &i.id == *id)
        })
        .cloned()
        .collect();
    if unlisted.is_empty() {
        return Ok(None);
    }
    let Some(seen) = observe(ctx, api, &case.region, &unlisted).await? else {
        return Ok(None);
    };
    let held: Vec<String> = seen
        .into_iter()
        .map(|s| s.id)
        .filter(|id| unlisted.contains(id))
        .collect();
    Ok((!held.is_empty()).then_some(held))
}

/// Whether an exchange's verdict stands, and if not, why: a typed value the dispatcher, the
/// coverage and replay match on instead of flags and reason strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Disposition {
    /// Sent and answered: the verdict stands.
    Judged,
    /// Sent, and every answer was the target's throttling code: counted, not judged.
    Throttled,
    /// Not sent, for this reason: counted, never judged.
    NotSent(NotSent),
    /// The run stopped (Ctrl-C, a budget) while the case waited for its pacing slot: it did
    /// not run, and counts nowhere.
    Halted,
}

/// Why the runner's guards kept a case from being sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum NotSent {
    /// It names instances the target holds but the world does not list.
    UnlistedHeld,
    /// It could stop a RUNNING listed instance without `--allow-force-stop`.
    MayStopRunning,
    /// The read that journals what its instances hold was refused.
    PreReadRefused,
}

impl NotSent {
    /// The reason in the report's words (`not_sent` tallies by it).
    pub(super) fn why(self) -> &'static str {
        match self {
            NotSent::UnlistedHeld => {
                "names an instance the target holds but the world does not list"
            }
            NotSent::MayStopRunning => {
                "could stop a RUNNING listed instance (--allow-force-stop lets it)"
            }
            NotSent::PreReadRefused => {
                "its pre-change read was refused (nothing journaled, nothing changed)"
            }
        }
    }
}

/// A case not sent, and why: counted, never judged.
fn not_sent(
    ctx: &Ctx,
    api: &LoadedApi,
    case: &Case,
    disposition: Disposition,
    (expected, actual, detail): (String, String, String),
) -> Result<Judged, RunError> {
    let request = super::send::sign(ctx, api, case)?;
    let response = HttpResponse {
        status: 0,
        headers: vec![],
        body: vec![],
    };
    Ok(Judged {
        verdict: Verdict {
            kind: VerdictKind::Unspecified,
            rule: None,
            source: None,
            expected,
            actual,
            detail,
            strength: None,
        },
        outcome: protocol::decode(api.spec.api.family, &response),
        request,
        response,
        rules: Vec::new(),
        retries: 0,
        unobservable: false,
        disposition,
        open_reason: None,
        shared_state_failure: false,
        before: World::default(),
        judged_on_state: false,
    })
}

/// Against a target that is not on loopback, without `--allow-force-stop`: whether the case
/// could stop a RUNNING instance the world lists — it names one, in an API with a force flag
/// (CVM, ECM), and the documents do not require it to fail as a whole. With the flag set a
/// forced call stops the machine; without it the seed's reading tries a normal shutdown (the
/// `running_without_force` situation): either way someone's machine goes down.
fn may_stop_running(ctx: &Ctx, api: &LoadedApi, case: &Case, plan: &Plan) -> Option<Vec<String>> {
    if ctx.target.is_loopback() || ctx.opts.allow_force_stop || case.must_fail_whole(api) {
        return None;
    }
    // Only an API with a force flag stops instances.
    api.spec.force_flag()?;
    let product = api.spec.instance_product();
    let running: Vec<String> = plan
        .before
        .instances
        .iter()
        .filter(|i| {
            i.product == product
                && i.state == InstanceState::Running
                && plan.instances.binary_search(&i.id).is_ok()
        })
        .map(|i| i.id.clone())
        .collect();
    (!running.is_empty()).then_some(running)
}

/// Before a case that may change listed instances is sent, what each held is written to the
/// journal (read from the target where a read call shows it, else the world's word), once per
/// instance, and on disk before the request goes. A read call that exists but was refused
/// journals nothing and returns why: the change must not be sent.
async fn journal_before(
    ctx: &Ctx,
    api: &LoadedApi,
    case: &Case,
    plan: &Plan,
) -> Result<Option<String>, RunError> {
    let product = api.spec.instance_product();
    let fresh: Vec<String> = {
        let journal = ctx.journal();
        let Some(journal) = journal.as_ref() else {
            return Ok(None);
        };
        plan.before
            .instances
            .iter()
            .filter(|i| {
                i.product == product
                    && plan.instances.binary_search(&i.id).is_ok()
                    && !journal.has(product, &i.id)
            })
            .map(|i| i.id.clone())
            .collect()
    };
    if fresh.is_empty() {
        return Ok(None);
    }
    let seen = match read(ctx, api, &case.region, &fresh).await? {
        Read::Seen(seen) => Some(seen),
        Read::NoView => None,
        Read::Refused(why) => return Ok(Some(why)),
    };
    let mut records = Vec::with_capacity(fresh.len());
    for id in fresh {
        let listed = plan
            .before
            .instances
            .iter()
            .find(|i| i.product == product && i.id == id);
        let record = match seen.as_ref() {
            Some(seen) => match seen.iter().find(|s| s.id == id) {
                Some(s) => super::journal::Before {
                    product,
                    region: case.region.clone(),
                    id,
                    keys: s.keys.clone(),
                    state: s.state.clone(),
                    seen: true,
                },
                // Listed but not there: nothing of it can change.
                None => continue,
            },
            None => super::journal::Before {
                product,
                region: case.region.clone(),
                id,
                keys: listed.map(|i| i.keys.clone()).unwrap_or_default(),
                state: listed.map(|i| i.state.name().to_string()),
                seen: false,
            },
        };
        records.push(record);
    }
    let mut journal = ctx.journal();
    if let Some(journal) = journal.as_mut() {
        for r in records {
            journal.record(r)?;
        }
    }
    Ok(None)
}

/// A case whose every answer was the target's throttling code: recorded, not judged.
fn not_judged(api: &LoadedApi, case: &Case, sent: Sent) -> Judged {
    let outcome = protocol::decode(api.spec.api.family, &sent.response);
    Judged {
        verdict: Verdict {
            kind: VerdictKind::Unspecified,
            rule: None,
            source: None,
            expected: "an answer".into(),
            actual: format!(
                "HTTP {}: throttled after {} retries",
                sent.response.status, sent.retries
            ),
            detail: format!(
                "{} answered only with its throttling code; the case is not judged",
                case.api
            ),
            strength: None,
        },
        outcome,
        request: sent.request,
        response: sent.response,
        rules: Vec::new(),
        retries: sent.retries,
        unobservable: false,
        disposition: Disposition::Throttled,
        open_reason: None,
        shared_state_failure: false,
        before: World::default(),
        judged_on_state: false,
    }
}

/// A failure judged against a state the model could not confirm (nothing shows the state of
/// these instances since a call that left it open) is unspecified when the answer fits the
/// other state they may be in: STOPPED, where the model kept them RUNNING.
fn unless_state_explains(
    ctx: &Ctx,
    api: &LoadedApi,
    case: &Case,
    before: &World,
    outcome: &Outcome,
    unknown: &[String],
    failed: Verdict,
) -> Verdict {
    let mut other = before.clone();
    for i in other.instances.iter_mut() {
        if i.state == InstanceState::Running && unknown.binary_search(&i.id).is_ok() {
            i.state = InstanceState::Stopped;
        }
    }
    let exp = oracle::expect(&ctx.set, api, &other, case);
    let again = oracle::judge_by(&ctx.set, api, case, &exp, outcome, ctx.opts.revision);
    if again.kind == VerdictKind::Fail {
        return failed;
    }
    Verdict {
        kind: VerdictKind::Unspecified,
        detail: format!(
            "the state of {} is unknown since a call the documents leave open, and nothing shows it; the answer fits it being STOPPED ({})",
            unknown.join(", "),
            failed.detail
        ),
        ..failed
    }
}

/// What leaves an unspecified verdict open: the report tallies verdicts by its word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum OpenReason {
    /// A failure that an instance in an unknown state (an earlier answer's effect could not be
    /// told) could explain.
    StateUnknown,
    /// The target did not follow a reading of ours: the rule's judgement.
    Judgement(Option<String>),
    /// The situations the documents leave open that the case hit.
    Situations(Vec<crate::spec::Situation>),
    /// The open rule concerned.
    Rule(String),
    /// Open, nothing more to say.
    Open,
}

impl std::fmt::Display for OpenReason {
    /// `state_unknown`, `judgement RULE`, `duplicate_ids+one_based_index`, the rule, `open`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenReason::StateUnknown => f.write_str("state_unknown"),
            OpenReason::Judgement(rule) => {
                write!(f, "judgement {}", rule.as_deref().unwrap_or("?"))
            }
            OpenReason::Situations(situations) => {
                let names: Vec<String> = situations
                    .iter()
                    .filter_map(|s| serde_json::to_value(s).ok()?.as_str().map(String::from))
                    .collect();
                f.write_str(&names.join("+"))
            }
            OpenReason::Rule(rule) => f.write_str(rule),
            OpenReason::Open => f.write_str("open"),
        }
    }
}

/// What leaves an unspecified verdict open ([`OpenReason`]): the judgement the target did not
/// follow, else the situations hit, else the rule concerned (`StateUnknown` is set by
/// [`judge`] itself).
fn open_reason(expectation: &Expectation, verdict: &Verdict) -> Option<OpenReason> {
    if verdict.kind != VerdictKind::Unspecified {
        return None;
    }
    if verdict.strength == Some(oracle::Strength::Judgement) {
        return Some(OpenReason::Judgement(verdict.rule.clone()));
    }
    Some(match (expectation.situations.is_empty(), &verdict.rule) {
        (false, _) => OpenReason::Situations(expectation.situations.clone()),
        (true, Some(rule)) => OpenReason::Rule(rule.clone()),
        (true, None) => OpenReason::Open,
    })
}
