//! Sending: sign a case (through [`crate::protocol::request`]) with a fresh nonce and clock, wait
//! for the API's rate limiter, and retry transport faults and throttling answers with backoff.

use std::time::Duration;

use super::ctx::Ctx;
use super::{RunError, Target, TransportError};
use crate::case::{AuthFault, Case};
use crate::protocol::{self, request, Call, Clock, HttpRequest, HttpResponse};
use crate::spec::{FamilySpec, LoadedApi};

/// A case as it went out and came back.
pub struct Sent {
    /// The exact request judged.
    pub request: HttpRequest,
    /// For a replayed nonce: the answer to the first, ordinary send of the same bytes.
    pub first: Option<HttpResponse>,
    /// The answer judged.
    pub response: HttpResponse,
    /// Retries after transport faults and throttling.
    pub retries: usize,
    /// The judged answer is still a throttling one after every retry: the case is not judged.
    pub throttled: bool,
}

pub(super) fn now() -> i64 {
    crate::emulator::server::now()
}

/// Signs a case with the run's next nonce and the current time.
pub(super) fn sign(ctx: &Ctx, api: &LoadedApi, case: &Case) -> Result<HttpRequest, RunError> {
    let host = ctx.target.host_for_api(api, &case.region)?;
    request::sign_case(api, case, &host, &ctx.opts.keys, now(), ctx.next_nonce()).map_err(
        |source| RunError::Protocol {
            api: api.name.clone(),
            source,
        },
    )
}

/// Signs and sends a case; a replayed nonce is sent twice, byte for byte, and the second
/// answer is judged. Every other retry is signed afresh (a new nonce and timestamp): a target
/// that saw a lost request's nonce rightly refuses it again.
pub(super) async fn send_case(ctx: &Ctx, api: &LoadedApi, case: &Case) -> Result<Sent, RunError> {
    let sent = send_case_unless(ctx, api, case, Slot::Wait).await?;
    Ok(sent.expect("a send that waits for its slot is sent"))
}

/// How the first request of a call waits for the API's pacing slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Slot {
    /// As long as the pace asks (reads, restores, re-runs: what the run must finish).
    Wait,
    /// Until the run halts ([`Ctx::halt`]): a case not sent by then is not sent at all, so a
    /// slow pace cannot carry the run past its `--max-duration` or a Ctrl-C.
    UnlessHalted,
}

/// [`send_case`], or `None` when `slot` lets the run's halt cut the wait for the first send
/// short (nothing of the case went out).
pub(super) async fn send_case_unless(
    ctx: &Ctx,
    api: &LoadedApi,
    case: &Case,
    slot: Slot,
) -> Result<Option<Sent>, RunError> {
    let replay = case.auth == AuthFault::ReusedNonce;
    let Some(first) = send_with_retry(ctx, api, slot, || sign(ctx, api, case)).await? else {
        return Ok(None);
    };
    let (first, last) = if replay {
        // The first send is an ordinary call: a retry after a lost answer is signed afresh
        // (the lost request may have been served, and its nonce with it). The replay re-sends
        // the request that was answered, nonce and all.
        let request = first.request.clone();
        let again = send_with_retry(ctx, api, Slot::Wait, || Ok(request.clone())).await?;
        (
            Some(first.response),
            again.expect("a send that waits is sent"),
        )
    } else {
        (None, first)
    };
    Ok(Some(Sent {
        request: last.request,
        first,
        throttled: last.throttled,
        response: last.response,
        retries: last.retries,
    }))
}

/// Signs and sends a read call (an observation) for `api`: it shares the API's rate limiter
/// and retries throttling like every request.
pub(super) async fn send_call(
    ctx: &Ctx,
    api: &LoadedApi,
    call: &Call,
) -> Result<HttpResponse, RunError> {
    let creds = ctx.opts.keys.for_family(call.family);
    let sign = || {
        let n = ctx.next_nonce();
        let clock = Clock {
            timestamp: now(),
            nonce: format!("{:032x}", (now() as u128) << 64 | n as u128),
        };
        protocol::encode(call, creds, &clock).map_err(|source| RunError::Protocol {
            api: format!("{} (observing with {})", api.name, call.action),
            source,
        })
    };
    let sent = send_with_retry(ctx, api, Slot::Wait, sign).await?;
    Ok(sent.expect("a send that waits is sent").response)
}

/// One request's last attempt: what was sent and what came back.
pub(super) struct Attempted {
    pub(super) request: HttpRequest,
    pub(super) response: HttpResponse,
    pub(super) retries: usize,
    /// The answer is still a throttling one: every attempt was throttled.
    pub(super) throttled: bool,
}

/// The longest single wait a `Retry-After` may ask for.
pub(super) const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// Cases in a row that may get only throttling answers before the run gives up on the target.
const THROTTLED_IN_A_ROW: usize = 20;

/// Retries transport faults and throttling answers, with backoff (or the target's
/// `Retry-After`, up to [`MAX_RETRY_AFTER`]); any other response is returned as is. Each
/// attempt waits for the API's rate limiter and is signed by `sign` (the same bytes only for a
/// deliberate replay). Once a target throttles, the API is paced at its documented rate from
/// then on, loopback included. A target that throttles every request of
/// [`THROTTLED_IN_A_ROW`] calls in a row stops the run. `None`: the first request's wait for
/// its slot was cut short by the run's halt ([`Slot::UnlessHalted`]); nothing was sent.
pub(super) async fn send_with_retry(
    ctx: &Ctx,
    api: &LoadedApi,
    slot: Slot,
    sign: impl Fn() -> Result<HttpRequest, RunError>,
) -> Result<Option<Attempted>, RunError> {
    let family = ctx.set.family(api.spec.api.family);
    let mut delay = Duration::from_millis(100);
    for attempt in 0..4 {
        let limiter = ctx.limiter(api);
        if attempt == 0 && slot == Slot::UnlessHalted {
            let paced = async {
                if let Some(l) = &limiter {
                    l.acquire().await;
                }
            };
            tokio::select! {
                biased;
                _ = ctx.halted() => return Ok(None),
                _ = paced => {}
            }
        } else if let Some(l) = &limiter {
            l.acquire().await;
        }
        let last = attempt == 3;
        let request = sign()?;
        let wait = match ctx.target.send(&request).await {
            Ok(r) if throttled(family, &r) => {
                ctx.throttled(api);
                if last {
                    if ctx.throttled_in_a_row(api) >= THROTTLED_IN_A_ROW {
                        return Err(RunError::Throttled {
                            url: ctx.target.url().to_string(),
                            api: api.name.clone(),
                            cases: THROTTLED_IN_A_ROW,
                            rate: super::pace::documented_rate(api),
                        });
                    }
                    return Ok(Some(Attempted {
                        request,
                        response: r,
                        retries: attempt,
                        throttled: true,
                    }));
                }
                match retry_after(&r) {
                    Some(asked) => {
                        let why = format!(
                            "throttled (HTTP {}), waiting as its Retry-After asks",
                            r.status
                        );
                        ctx.wait_started(&api.name, std::time::Instant::now() + asked, why);
                        tokio::time::sleep(asked).await;
                        ctx.wait_ended(&api.name);
                        delay *= 4;
                        continue;
                    }
                    None => delay,
                }
            }
            Ok(r) => {
                ctx.answered(api);
                return Ok(Some(Attempted {
                    request,
                    response: r,
                    retries: attempt,
                    throttled: false,
                }));
            }
            Err(e) if last => return Err(e.into()),
            Err(_) => delay,
        };
        tokio::time::sleep(wait).await;
        delay *= 4;
    }
    unreachable!("the loop returns on its last attempt")
}

/// A `Retry-After` in seconds (the HTTP-date form is not used by these APIs), capped.
pub(super) fn retry_after(resp: &HttpResponse) -> Option<Duration> {
    let secs: f64 = resp.header("retry-after")?.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs).min(MAX_RETRY_AFTER))
}

/// Whether a response says "too many requests" in its family's words.
pub(super) fn throttled(family: &FamilySpec, resp: &HttpResponse) -> bool {
    if resp.status == 429 {
        return true;
    }
    let Some(code) = family.throttling_code.as_deref() else {
        return false;
    };
    // A body without the code's text (nearly every body: a DescribeInstances answer runs to
    // kilobytes) is not decoded here at all.
    if memchr::memmem::find(&resp.body, code.as_bytes()).is_none() {
        return false;
    }
    match protocol::decode(family.family, resp).result {
        protocol::OutcomeResult::Error { code, .. } => family.is_throttling(&code),
        _ => false,
    }
}

/// Sends exact bytes to a target, retrying transport faults (not throttling: these requests
/// are not an API's, such as the emulator's admin calls).
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
    use crate::spec::FamilyId;

    fn answer(family: FamilyId, code: &str) -> HttpResponse {
        let body = match family {
            FamilyId::AliyunRpc => {
                serde_json::json!({"RequestId": "r", "Code": code, "Message": "m"})
            }
            _ => {
                serde_json::json!({"Response": {"RequestId": "r", "Error": {"Code": code, "Message": "m"}}})
            }
        };
        let status = if family == FamilyId::AliyunRpc {
            400
        } else {
            200
        };
        HttpResponse {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: serde_json::to_vec(&body).unwrap(),
        }
    }

    /// The family spec's throttling code and its refinements are throttling; a code that
    /// merely starts with its letters, or another family's code, is not.
    #[test]
    fn throttling_is_what_the_family_spec_names() {
        let set = crate::spec::builtin();
        let tencent = set.family(FamilyId::TencentApi3);
        let alibaba = set.family(FamilyId::AliyunRpc);
        let t = |code: &str| throttled(tencent, &answer(FamilyId::TencentApi3, code));
        let a = |code: &str| throttled(alibaba, &answer(FamilyId::AliyunRpc, code));
        assert!(t("RequestLimitExceeded"));
        assert!(t("RequestLimitExceeded.UinLimitExceeded"));
        assert!(!t("RequestLimitExceededX"));
        assert!(!t("Throttling"));
        assert!(a("Throttling"));
        assert!(a("Throttling.User"));
        assert!(!a("ThrottlingSomething"));
        assert!(!a("RequestLimitExceeded"));
        assert!(!a("InvalidParameter"));
    }
}
