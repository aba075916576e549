//! The rate-limit probe: after an API's cases, each rate limit its documents state is checked
//! with a burst a few requests over it ([`crate::oracle::rate::burst_size`]), all sent at once
//! with the run's credentials. Every request of the burst is the same well-formed call naming
//! only instances that exist nowhere in the world (the generator's absent ids), so nothing
//! changes whether the target serves it or not. At least one answer must carry the family's
//! throttling code ([`crate::oracle::rate::judge_burst`]).
//!
//! Safety: a burst goes by default only to a loopback target; a remote one needs
//! `--probe-rate-limits` ([`RateProbes::Always`]), and `--no-rate-probes` sends none anywhere.
//! Against the emulator's admin view (the embedded emulator, a separately started `serve`), the
//! probe switches the emulator's enforcement of that one action's limit on for the burst and off
//! after it, so the rest of the run goes at full speed. After the burst the lane backs off until
//! the target's window is over (the next full second, at least one second after the burst
//! began, or what a `Retry-After` asks, up to 30 s) before anything else goes to the product.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::ctx::Ctx;
use super::outcome::{ProbeStatus, RateProbe};
use super::send::{retry_after, send_request, sign, MAX_RETRY_AFTER};
use super::shrink::record;
use super::{Failure, RunError};
use crate::case::Case;
use crate::oracle::rate::{self, Burst, RATE_LIMIT_RULE};
use crate::oracle::{Verdict, VerdictKind};
use crate::protocol::describe::admin_rate_limits_request;
use crate::protocol::{self, HttpRequest, HttpResponse, OutcomeResult};
use crate::spec::{LoadedApi, RateLimit};
use crate::world::World;

/// Where a run sends rate-limit bursts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RateProbes {
    /// To loopback targets only (the default).
    #[default]
    Loopback,
    /// To any target, remote ones included (`--probe-rate-limits`).
    Always,
    /// Nowhere (`--no-rate-probes`).
    Never,
}

/// One probe of the plan: the limit, the request the burst repeats, and whether it is sent.
#[derive(Debug, Clone)]
pub struct PlannedProbe {
    /// The documented limit.
    pub limit: RateLimit,
    /// The request each burst sends `burst` times at once.
    pub case: Case,
    /// Requests per burst.
    pub burst: usize,
    /// Why the burst is not sent; `None` when it is.
    pub not_sent: Option<String>,
}

/// The probes after one API's cases, from the world the API's cases started from (`position`:
/// the API's place among the selected APIs, which seeds the request like its cases).
pub(super) fn plan(
    ctx: &Ctx,
    api: &LoadedApi,
    world: &World,
    position: usize,
) -> Vec<PlannedProbe> {
    let seed = ctx.opts.seed ^ (position as u64 + 1).wrapping_mul(0x5241_5445_5052_4f42);
    api.spec
        .api
        .rate_limits
        .iter()
        .map(|limit| PlannedProbe {
            limit: limit.clone(),
            case: crate::generate::absent_case(&ctx.set, api, world, seed),
            burst: rate::burst_size(limit.per_second),
            not_sent: why_not(ctx, api, limit),
        })
        .collect()
}

/// Why a limit is not probed in this run, if it is not.
fn why_not(ctx: &Ctx, api: &LoadedApi, limit: &RateLimit) -> Option<String> {
    let o = &ctx.opts;
    if o.rate_probes == RateProbes::Never {
        return Some("--no-rate-probes".into());
    }
    if rate::throttling_code(&ctx.set, api).is_none() {
        return Some(format!(
            "the {:?} family's spec names no throttling code",
            api.spec.api.family
        ));
    }
    if !rate::limit_applies(&ctx.set, api, limit, o.revision) {
        return Some("--source seed: only the current definitions state this limit".into());
    }
    if let Some((i, n)) = o.shard.filter(|(i, _)| *i != 0) {
        return Some(format!(
            "shard {}/{n}: only shard 1 probes rate limits",
            i + 1
        ));
    }
    if !ctx.target.is_loopback() && o.rate_probes != RateProbes::Always {
        return Some(
            "the target is not on loopback: --probe-rate-limits sends the burst there".into(),
        );
    }
    None
}

/// Probes the API's documented limits; the records for the report and a failure per limit
/// the target did not enforce.
pub(super) async fn run(
    ctx: &Ctx,
    api: &LoadedApi,
    world: &World,
    position: usize,
    stop: &std::sync::atomic::AtomicBool,
) -> Result<(Vec<RateProbe>, Vec<Failure>), RunError> {
    let mut probes = Vec::new();
    let mut failures = Vec::new();
    for planned in plan(ctx, api, world, position) {
        let interrupted = stop.load(std::sync::atomic::Ordering::Relaxed);
        let not_sent = match (&planned.not_sent, interrupted) {
            (Some(why), _) => Some(why.clone()),
            (None, true) => Some("the run was interrupted".into()),
            (None, false) => None,
        };
        if let Some(why) = not_sent {
            probes.push(not_sent_record(ctx, api, &planned, why));
            continue;
        }
        let (probe, failure) = probe(ctx, api, &planned).await?;
        probes.push(probe);
        failures.extend(failure);
    }
    Ok((probes, failures))
}

fn not_sent_record(ctx: &Ctx, api: &LoadedApi, p: &PlannedProbe, why: String) -> RateProbe {
    RateProbe {
        rule: RATE_LIMIT_RULE.into(),
        per_second: p.limit.per_second,
        source: p.limit.source.clone(),
        strength: rate::limit_strength(&ctx.set, api, &p.limit),
        code: rate::throttling_code(&ctx.set, api)
            .unwrap_or_default()
            .to_string(),
        status: ProbeStatus::NotSent,
        burst: p.burst,
        bursts: 0,
        sent: 0,
        throttled: 0,
        answers: BTreeMap::new(),
        backoff_ms: 0,
        detail: why,
    }
}

/// Bursts sent at most: a second only when the first met no throttling, started half a second
/// later in the clock's second (a target counting in fixed one-second windows may have split
/// the first between two of them).
const BURSTS: usize = 2;

/// One probe sent and judged: its record, and the failure when the target did not throttle.
async fn probe(
    ctx: &Ctx,
    api: &LoadedApi,
    planned: &PlannedProbe,
) -> Result<(RateProbe, Option<Failure>), RunError> {
    let admin = ctx.opts.admin;
    if admin && !switch(ctx, api, true).await {
        let why = "the target's admin view did not switch its rate limits on".to_string();
        return Ok((not_sent_record(ctx, api, planned, why), None));
    }
    let sent = bursts(ctx, api, planned).await;
    if admin {
        switch(ctx, api, false).await;
    }
    let Sent {
        bursts,
        request,
        response,
        backoff,
    } = sent?;
    let verdict = rate::judge_burst(&ctx.set, api, &planned.limit, &bursts);
    let status = match verdict.kind {
        VerdictKind::Pass => ProbeStatus::Pass,
        VerdictKind::Fail => ProbeStatus::Fail,
        VerdictKind::Unspecified => ProbeStatus::Unspecified,
    };
    let mut answers = BTreeMap::new();
    for b in &bursts {
        for (k, n) in &b.answers {
            *answers.entry(k.clone()).or_default() += n;
        }
    }
    let record_ = RateProbe {
        rule: RATE_LIMIT_RULE.into(),
        per_second: planned.limit.per_second,
        source: planned.limit.source.clone(),
        strength: rate::limit_strength(&ctx.set, api, &planned.limit),
        code: rate::throttling_code(&ctx.set, api)
            .unwrap_or_default()
            .to_string(),
        status,
        burst: planned.burst,
        bursts: bursts.len(),
        sent: bursts.iter().map(|b| b.sent).sum(),
        throttled: bursts.iter().map(|b| b.throttled).sum(),
        answers,
        backoff_ms: backoff.as_millis() as u64,
        detail: verdict.detail.clone(),
    };
    let failure = (status == ProbeStatus::Fail)
        .then(|| failure(ctx, api, planned, &verdict, &request, &response));
    Ok((record_, failure))
}

/// A failed probe as a repro-like record: the request of the burst and one answer to it; the
/// `curl` line sends the request `burst` times at once.
fn failure(
    ctx: &Ctx,
    api: &LoadedApi,
    planned: &PlannedProbe,
    verdict: &Verdict,
    request: &HttpRequest,
    response: &HttpResponse,
) -> Failure {
    let mut f = record(ctx, api, verdict, request, response, planned.case.clone());
    f.detail = format!(
        "{}. The request below was sent {} times at once (this is one of them, and one answer); a repro file cannot hold a burst: `apiconform replay` sends the burst again, and `curl` below sends it from a shell (its signature expires after 5 minutes)",
        f.detail, planned.burst
    );
    f.curl = format!(
        "for i in $(seq {}); do {} & done; wait",
        planned.burst, f.curl
    );
    f.burst = Some(planned.burst);
    f
}

/// The bursts and the back-off after them.
struct Sent {
    bursts: Vec<Burst>,
    /// One request of the last burst, and one answer to it (for the failure record).
    request: HttpRequest,
    response: HttpResponse,
    /// Waited after the last burst.
    backoff: Duration,
}

async fn bursts(ctx: &Ctx, api: &LoadedApi, planned: &PlannedProbe) -> Result<Sent, RunError> {
    let family = api.spec.api.family;
    let code = rate::throttling_code(&ctx.set, api).unwrap_or_default();
    let mut out = Vec::new();
    let mut last: Option<(HttpRequest, HttpResponse)> = None;
    let mut backoff = Duration::ZERO;
    for n in 0..BURSTS {
        align(n).await;
        let requests = (0..planned.burst)
            .map(|_| sign(ctx, api, &planned.case))
            .collect::<Result<Vec<_>, _>>()?;
        let began = SystemTime::now();
        let started = Instant::now();
        let answers = futures::future::join_all(requests.iter().map(|r| ctx.target.send(r))).await;
        let within_second = started.elapsed() < Duration::from_secs(1);
        let mut burst = Burst {
            sent: requests.len(),
            within_second,
            ..Default::default()
        };
        let mut wait = None;
        // The record keeps an answer that is not throttling when there is one.
        let mut sample: Option<(HttpResponse, bool)> = None;
        let mut unreachable = None;
        for answer in answers {
            let resp = match answer {
                Ok(resp) => resp,
                Err(e) => {
                    unreachable.get_or_insert(e);
                    *burst.answers.entry("no answer".into()).or_default() += 1;
                    continue;
                }
            };
            let key = match protocol::decode(family, &resp).result {
                OutcomeResult::Success => "success".to_string(),
                OutcomeResult::Error { code, .. } => code,
                OutcomeResult::Malformed { .. } => format!("HTTP {}", resp.status),
            };
            let throttling = key == code;
            if throttling {
                burst.throttled += 1;
                wait = wait.max(retry_after(&resp));
            }
            *burst.answers.entry(key).or_default() += 1;
            if sample.as_ref().is_none_or(|(_, t)| *t && !throttling) {
                sample = Some((resp, throttling));
            }
        }
        let response = match (sample, unreachable) {
            (Some((r, _)), _) => r,
            // Nothing answered at all: the target cannot be reached.
            (None, Some(e)) => return Err(e.into()),
            (None, None) => unreachable!("a burst sends requests"),
        };
        let request = requests.into_iter().next().expect("a burst sends requests");
        last = Some((request, response));
        backoff = wait_out(began, wait).await;
        let throttled = burst.throttled > 0;
        out.push(burst);
        if throttled {
            break;
        }
    }
    let (request, response) = last.expect("at least one burst");
    Ok(Sent {
        bursts: out,
        request,
        response,
        backoff,
    })
}

/// Switches the emulator's enforcement of this API's documented rate on or off through its
/// admin view; whether it answered 200.
async fn switch(ctx: &Ctx, api: &LoadedApi, on: bool) -> bool {
    let req = admin_rate_limits_request(
        &ctx.target.authority(),
        on,
        &api.spec.api.action,
        api.spec.api.version.as_deref(),
    );
    matches!(send_request(&ctx.target, &req).await, Ok(r) if r.status == 200)
}

/// How far into its second the clock is.
fn into_second(t: SystemTime) -> Duration {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    Duration::from_nanos(u64::from(since.subsec_nanos()))
}

/// Waits for a burst's moment: the first starts at once when the clock is early in its second
/// (the first 300 ms), else at the start of the next; a second one starts half-way through a
/// second.
async fn align(n: usize) {
    let now = into_second(SystemTime::now());
    let second = Duration::from_secs(1);
    let wait = match n {
        0 if now < Duration::from_millis(300) => Duration::ZERO,
        0 => second - now + Duration::from_millis(2),
        _ => {
            let half = Duration::from_millis(500);
            if now <= half {
                half - now
            } else {
                second - now + half
            }
        }
    };
    tokio::time::sleep(wait).await;
}

/// Waits until the target's window for a burst that began at `began` is over: the next full
/// second of the clock, and at least one second after the burst began (a sliding window), or
/// longer when a throttling answer's `Retry-After` asks (up to 30 s). Returns the wait.
async fn wait_out(began: SystemTime, retry_after: Option<Duration>) -> Duration {
    let now = SystemTime::now();
    let next_second = Duration::from_secs(1) - into_second(now) + Duration::from_millis(5);
    let since_began = now.duration_since(began).unwrap_or_default();
    let sliding = Duration::from_secs(1).saturating_sub(since_began);
    let asked = retry_after.unwrap_or_default().min(MAX_RETRY_AFTER);
    let wait = next_second.max(sliding).max(asked);
    tokio::time::sleep(wait).await;
    wait
}

/// Re-sends a failed probe's burst (its request re-signed `burst` times) and judges it again,
/// as `apiconform replay` does for a repro of [`RATE_LIMIT_RULE`].
pub(super) async fn replay(
    ctx: &Ctx,
    api: &LoadedApi,
    failure: &Failure,
) -> Result<(Verdict, HttpResponse), RunError> {
    let limit = api
        .spec
        .api
        .rate_limits
        .iter()
        .find(|l| Some(&l.source) == failure.source.as_ref())
        .or_else(|| api.spec.api.rate_limits.first())
        .cloned()
        .ok_or_else(|| RunError::NoSpecs {
            patterns: vec![format!("{} (with a rate limit)", failure.api)],
        })?;
    // A burst is a few requests over the documented limit, as the run sent it: a repro
    // claiming more (2^64 - 1 aborted on allocation; 100,000 were really sent) is refused.
    let most = rate::burst_size(limit.per_second);
    let burst = failure.burst.unwrap_or(most);
    if burst == 0 || burst > most {
        return Err(RunError::ReproOutOfBounds {
            field: "burst",
            value: burst as u64,
            allowed: format!(
                "a burst is 1 to {most} requests for {}'s documented limit of {}/s ({} § {}): a few over the limit, as `run` sends it",
                api.name, limit.per_second, limit.source.doc, limit.source.section
            ),
        });
    }
    let planned = PlannedProbe {
        burst,
        limit,
        case: failure.case.clone(),
        not_sent: None,
    };
    if let Some(why) = why_not(ctx, api, &planned.limit) {
        return Err(RunError::BurstNotSent {
            api: api.name.clone(),
            why,
        });
    }
    let admin = ctx.opts.admin && switch(ctx, api, true).await;
    let sent = bursts(ctx, api, &planned).await;
    if admin {
        switch(ctx, api, false).await;
    }
    let sent = sent?;
    let verdict = rate::judge_burst(&ctx.set, api, &planned.limit, &sent.bursts);
    Ok((verdict, sent.response))
}
