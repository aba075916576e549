//! Observing key bindings the way a user could: the read calls of [`crate::protocol::describe`],
//! or the emulator's admin view where the API offers none and the target serves it.

use super::ctx::Ctx;
use super::send::send_call;
use super::RunError;
use crate::protocol::describe::{self, Seen};
use crate::spec::{LoadedApi, Observation};

/// Each named instance the target reports, with its keys and state, or `None` when nothing can
/// observe this API's effect. Observations are tried in the spec's order, best first.
pub(super) async fn observe(
    ctx: &Ctx,
    api: &LoadedApi,
    region: &str,
    ids: &[String],
) -> Result<Option<Vec<Seen>>, RunError> {
    for &how in &api.spec.effect.observe {
        if how == Observation::Admin {
            if !ctx.opts.admin {
                continue;
            }
            let req = describe::admin_world_request(&ctx.target.authority(), Some(ids));
            let resp = ctx.target.send(&req).await?;
            match describe::read_admin_world(&resp, api.spec.instance_product(), ids) {
                Some(seen) => return Ok(Some(seen)),
                None => continue,
            }
        }
        let host = ctx.target.authority();
        if describe::describe_call(how, &[], region, &host).is_none() {
            continue;
        }
        // A batch may name more instances than one read call takes (a target that accepts 101
        // ids must still be seen whole, or the model goes stale and every later case naming
        // those instances fails with it): read them in pages.
        let mut seen = Vec::with_capacity(ids.len());
        for page in ids.chunks(describe::MAX_IDS_PER_CALL) {
            let Some(call) = describe::describe_call(how, page, region, &host) else {
                return Ok(None);
            };
            let resp = send_call(ctx, api, &call).await?;
            match describe::read_described(how, &resp) {
                Some(part) => seen.extend(part),
                None => return Ok(None),
            }
        }
        return Ok(Some(seen));
    }
    Ok(None)
}
