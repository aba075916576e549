//! Sending: sign a case (through [`crate::protocol::request`]) with a fresh nonce and clock, wait
//! for the API's rate limiter, and retry transport faults and throttling answers with backoff.

use std::time::Duration;

use super::ctx::Ctx;
use super::{RunError, Target, TransportError};
use crate::case::{AuthFault, Case};
use crate::protocol::{self, request, Call, Clock, FamilyId, HttpRequest, HttpResponse};
use crate::spec::LoadedApi;

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
}

pub(super) fn now() -> i64 {
    crate::emulator::server::now()
}

/// Signs a case with the run's next nonce and the current time.
pub(super) fn sign(ctx: &Ctx, api: &LoadedApi, case: &Case) -> Result<HttpRequest, RunError> {
    request::sign_case(
        api,
        case,
        &ctx.target.authority(),
        &ctx.opts.tencent,
        &ctx.opts.alibaba,
        now(),
        ctx.next_nonce(),
    )
    .map_err(|source| RunError::Protocol {
        api: api.name.clone(),
        source,
    })
}

/// Signs and sends a case; a replayed nonce is sent twice, byte for byte, and the second
/// answer is judged.
pub(super) async fn send_case(ctx: &Ctx, api: &LoadedApi, case: &Case) -> Result<Sent, RunError> {
    let request = sign(ctx, api, case)?;
    let first = if case.auth == AuthFault::ReusedNonce {
        Some(send_with_retry(ctx, api, &request).await?.0)
    } else {
        None
    };
    let (response, retries) = send_with_retry(ctx, api, &request).await?;
    Ok(Sent {
        request,
        first,
        response,
        retries,
    })
}

/// Signs and sends a read call (an observation) for `api`: it shares the API's rate limiter
/// and retries throttling like every request.
pub(super) async fn send_call(
    ctx: &Ctx,
    api: &LoadedApi,
    call: &Call,
) -> Result<HttpResponse, RunError> {
    let creds = match call.family {
        FamilyId::AliyunRpc => &ctx.opts.alibaba,
        _ => &ctx.opts.tencent,
    };
    let n = ctx.next_nonce();
    let clock = Clock {
        timestamp: now(),
        nonce: format!("{:032x}", (now() as u128) << 64 | n as u128),
    };
    let req = protocol::encode(call, creds, &clock).map_err(|source| RunError::Protocol {
        api: format!("{} (observing with {})", api.name, call.action),
        source,
    })?;
    Ok(send_with_retry(ctx, api, &req).await?.0)
}

/// Retries transport faults and throttling answers, with backoff; any other response is
/// returned as is. Each attempt waits for the API's rate limiter first.
pub(super) async fn send_with_retry(
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
