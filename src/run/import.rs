//! A request someone captured (`apiconform repro import`), as a case: its ids mapped onto the
//! target's world, signed afresh, sent, judged and — when it fails — shrunk while the same rule
//! keeps failing, into the usual [`Failure`].

use proptest::strategy::Just;
use serde_json::Value;

use super::exchange::exchange;
use super::shrink::{fails_with, failure, minimise, settle_from};
use super::{Failure, RunError, Session};
use crate::case::Case;
use crate::oracle::{Verdict, VerdictKind};
use crate::protocol::{HttpResponse, OutcomeResult};
use crate::spec::{LoadedApi, ResourceKind};
use crate::world::World;

/// Replaces the instance and key ids a case names by ids of `world` of the same product (and
/// region, where the world has some there), in order of first appearance: the same id twice
/// stays the same id twice. Returns one line per id mapped, and per id kept because the world
/// has no more of its kind.
pub fn map_ids(api: &LoadedApi, case: &mut Case, world: &World) -> Vec<String> {
    let spec = &api.spec;
    let mut said = Vec::new();
    let mut mapping: Vec<(String, String)> = Vec::new();
    for p in &spec.parameters {
        let Some(resource) = p
            .references
            .as_deref()
            .and_then(|r| spec.resources.iter().find(|x| x.name == r))
        else {
            continue;
        };
        let Some(value) = case.params.get_mut(&p.name) else {
            continue;
        };
        let candidates: Vec<(String, String)> = match resource.kind {
            ResourceKind::Instance => world
                .instances
                .iter()
                .filter(|i| i.product == resource.product)
                .map(|i| (i.region.clone(), i.id.clone()))
                .collect(),
            ResourceKind::KeyPair => world
                .key_pairs
                .iter()
                .filter(|k| k.product == resource.product)
                .map(|k| (k.region.clone(), k.id.clone()))
                .collect(),
        };
        // Those of the case's region first.
        let (here, there): (Vec<_>, Vec<_>) = candidates
            .into_iter()
            .partition(|(r, _)| case.region.is_empty() || *r == case.region);
        let mut pool: Vec<String> = here.into_iter().chain(there).map(|(_, id)| id).collect();
        pool.retain(|id| !mapping.iter().any(|(_, to)| to == id));
        let mut map_one = |old: &str, said: &mut Vec<String>| -> String {
            if let Some((_, to)) = mapping.iter().find(|(from, _)| from == old) {
                return to.clone();
            }
            if world_holds(world, old) {
                mapping.push((old.to_string(), old.to_string()));
                return old.to_string();
            }
            match pool.first().cloned() {
                Some(to) => {
                    pool.remove(0);
                    said.push(format!("{old} → {to} (the target's world)"));
                    mapping.push((old.to_string(), to.clone()));
                    to
                }
                None => {
                    said.push(format!(
                        "{old} kept: the world lists no more {} {}",
                        resource.product.as_str(),
                        match resource.kind {
                            ResourceKind::Instance => "instances",
                            ResourceKind::KeyPair => "key pairs",
                        }
                    ));
                    mapping.push((old.to_string(), old.to_string()));
                    old.to_string()
                }
            }
        };
        match value {
            Value::String(s) => match serde_json::from_str::<Vec<String>>(s) {
                // Alibaba's `InstanceIds` is the text of a JSON list: its spelling is kept.
                Ok(items) if s.trim_start().starts_with('[') => {
                    let mut text = s.clone();
                    for old in items {
                        let new = map_one(&old, &mut said);
                        text = text.replace(&format!("\"{old}\""), &format!("\"{new}\""));
                    }
                    *s = text;
                }
                _ => *s = map_one(s, &mut said),
            },
            Value::Array(items) => {
                for item in items {
                    if let Value::String(s) = item {
                        *s = map_one(s, &mut said);
                    }
                }
            }
            _ => {}
        }
    }
    said
}

fn world_holds(world: &World, id: &str) -> bool {
    world.instances.iter().any(|i| i.id == id) || world.key_pairs.iter().any(|k| k.id == id)
}

/// What an imported request came to.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The verdict on the request as imported (ids mapped, signed afresh).
    pub verdict: Verdict,
    /// The answer to it.
    pub response: HttpResponse,
    /// The answer's error code, when it carried one.
    pub code: Option<String>,
    /// When it failed: the failure, shrunk while the same rule kept failing.
    pub failure: Option<Failure>,
}

/// Sends an imported case, judges it and, when it fails, shrinks it while the same rule keeps
/// failing (the lists lose items; a failure judged on the observed state meets the state the
/// first send met before every candidate).
///
/// The cases of one capture go through one `session`, so that each meets the state the ones
/// before it left, as the target does.
pub async fn import(session: &Session, case: &Case) -> Result<Imported, RunError> {
    let ctx = &*session.ctx;
    let api = ctx
        .set
        .apis
        .iter()
        .find(|a| a.name == case.api)
        .ok_or_else(|| RunError::NoSpecs {
            patterns: vec![case.api.clone()],
        })?;
    let judged = exchange(ctx, api, case, None).await?;
    if let Some(e) = super::not_reproduced(api, &judged) {
        return Err(e);
    }
    let code = match crate::protocol::decode(api.spec.api.family, &judged.response).result {
        OutcomeResult::Error { code, .. } => Some(code),
        _ => None,
    };
    let (verdict, response) = (judged.verdict.clone(), judged.response.clone());
    if verdict.kind != VerdictKind::Fail {
        return Ok(Imported {
            verdict,
            response,
            code,
            failure: None,
        });
    }
    let rule = verdict.rule.clone().unwrap_or_default();
    let origin = judged.judged_on_state.then(|| judged.before.clone());
    let mut tree = Just(case.clone());
    let mut sent = 0;
    let never = std::sync::atomic::AtomicBool::new(false);
    let min = minimise(&mut tree, ctx.opts.shrink_steps, async |c: &Case| {
        settle_from(ctx, api, c, origin.as_ref(), &never).await?;
        sent += 1;
        let j = exchange(ctx, api, c, None).await?;
        Ok::<_, RunError>(fails_with(&j, &rule).then_some(j))
    })
    .await?;
    let shrunk = min.found.is_some();
    let best = min.found.unwrap_or(judged);
    let mut f = failure(ctx, api, &rule, best, min.case, sent);
    f.shrunk = shrunk;
    if let Some(before) = origin {
        f.preconditions.get_or_insert(before);
    }
    if sent >= ctx.opts.shrink_steps {
        f.notes.push(format!(
            "shrinking stopped at its cap of {} candidates: the case may not be minimal",
            ctx.opts.shrink_steps
        ));
    }
    Ok(Imported {
        verdict,
        response,
        code,
        failure: Some(f),
    })
}
