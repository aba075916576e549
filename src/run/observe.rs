//! Observing key bindings the way a user could: the read calls of [`crate::protocol::describe`],
//! or the emulator's admin view where the API offers none and the target serves it.

use super::ctx::Ctx;
use super::send::send_call;
use super::RunError;
use crate::protocol::describe::{self, Seen};
use crate::protocol::{self, OutcomeResult};
use crate::spec::{LoadedApi, Observation};

/// What a read of some instances gave.
pub(super) enum Read {
    /// Each named instance the target reports, with its keys and state.
    Seen(Vec<Seen>),
    /// Nothing can observe this API's effect: no read call in the specs shows it (ECM), and no
    /// admin view is served.
    NoView,
    /// A read call exists and the target did not answer it with a list: refused (an error code,
    /// e.g. `AuthFailure` for credentials it does not know) or an answer of another shape. The
    /// text says which call and what came back.
    Refused(String),
}

/// Each named instance the target reports, with its keys and state, or `None` when nothing can
/// observe this API's effect or the read was refused (see [`read`] to tell them apart).
pub(super) async fn observe(
    ctx: &Ctx,
    api: &LoadedApi,
    region: &str,
    ids: &[String],
) -> Result<Option<Vec<Seen>>, RunError> {
    Ok(match read(ctx, api, region, ids).await? {
        Read::Seen(seen) => Some(seen),
        Read::NoView | Read::Refused(_) => None,
    })
}

/// Reads the named instances through the spec's observations, best first.
pub(super) async fn read(
    ctx: &Ctx,
    api: &LoadedApi,
    region: &str,
    ids: &[String],
) -> Result<Read, RunError> {
    for &how in &api.spec.effect.observe {
        if how == Observation::Admin {
            if !ctx.opts.admin {
                continue;
            }
            let req = describe::admin_world_request(&ctx.target.authority(), Some(ids));
            let resp = ctx.target.send(&req).await?;
            match describe::read_admin_world(&resp, api.spec.instance_product(), ids) {
                Some(seen) => return Ok(Read::Seen(seen)),
                None => continue,
            }
        }
        let Some((product, family)) = describe::served_by(how) else {
            continue;
        };
        let host = ctx.target.host_for(product, family, Some(region))?;
        let Some(probe) = describe::describe_call(how, &[], region, &host) else {
            continue;
        };
        // A batch may name more instances than one read call takes (a target that accepts 101
        // ids must still be seen whole, or the model goes stale and every later case naming
        // those instances fails with it): read them in pages.
        let mut seen = Vec::with_capacity(ids.len());
        for page in ids.chunks(describe::MAX_IDS_PER_CALL) {
            let Some(call) = describe::describe_call(how, page, region, &host) else {
                return Ok(Read::NoView);
            };
            let resp = send_call(ctx, api, &call).await?;
            match describe::read_described(how, &resp) {
                Some(part) => seen.extend(part),
                None => {
                    let answer = match protocol::decode(call.family, &resp).result {
                        OutcomeResult::Error { code, .. } => format!("answered {code}"),
                        _ => format!("answered HTTP {} without an instance list", resp.status),
                    };
                    // The first refusal decides, as an unreadable answer always has: a later
                    // view is not asked to stand in for one that refused.
                    return Ok(Read::Refused(format!(
                        "{product} {} at {host} {answer}",
                        probe.action
                    )));
                }
            }
        }
        return Ok(Read::Seen(seen));
    }
    Ok(Read::NoView)
}
