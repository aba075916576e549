//! Putting back what a run changed: every instance of the [`super::journal`] is read again,
//! and where it differs from what it held before the run, the specs' own calls undo the
//! change — CVM `AssociateInstancesKeyPairs` with the old keys (a bind replaces the keys held),
//! or `DisassociateInstancesKeyPairs` of the new ones when it held none — and the instance is
//! read once more to confirm. What cannot be undone is said with the reason: no call in the
//! specs binds keys for the product (ECM), the instance is RUNNING and the call would stop
//! it without `--allow-force-stop`, it was RUNNING and is now STOPPED (no call in the specs
//! starts an instance), or nothing shows the product's bindings at all.

use crate::input::text::Shown;
use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::ctx::Ctx;
use super::journal::Before;
use super::observe::{self, Read};
use super::send::send_case;
use super::RunError;
use crate::case::Case;
use crate::protocol::describe::Seen;
use crate::protocol::{self, OutcomeResult};
use crate::spec::{EffectKind, FamilyId, LoadedApi, Product};
use crate::world::{Instance, World};

/// How one journaled instance ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestoreStatus {
    /// It holds what it held before the run: nothing to undo.
    Unchanged,
    /// It differed and was put back (read again to confirm).
    Restored,
    /// It differs and could not be put back: `detail` says why and what to do.
    NotRestored,
    /// Nothing shows what it holds now: whether it changed cannot be told.
    Unknown,
}

/// One journaled instance after the restore.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestoredInstance {
    /// Its product.
    pub product: Product,
    /// Its region.
    pub region: String,
    /// Its id.
    pub id: String,
    /// What it held before the run (from the journal).
    pub before_keys: Vec<String>,
    /// Its state before the run, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_state: Option<String>,
    /// What it held when the restore began, where seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub found_keys: Option<Vec<String>>,
    /// What it holds now, where seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now_keys: Option<Vec<String>>,
    /// Its state now, where seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now_state: Option<String>,
    /// How it ended.
    pub status: RestoreStatus,
    /// The call that put it back, or why none could.
    pub detail: String,
}

/// What a restore did: "restored N of M".
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RestoreReport {
    /// The journal it followed, when one was written to a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal: Option<String>,
    /// Every journaled instance.
    #[serde(default)]
    pub instances: Vec<RestoredInstance>,
}

impl RestoreReport {
    /// Instances that differed from the journal when the restore began, or could not be read:
    /// the M of "restored N of M".
    pub fn changed(&self) -> usize {
        self.instances
            .iter()
            .filter(|i| i.status != RestoreStatus::Unchanged)
            .count()
    }
    /// Instances put back: the N.
    pub fn restored(&self) -> usize {
        self.count(RestoreStatus::Restored)
    }
    /// Instances that held what they held before.
    pub fn unchanged(&self) -> usize {
        self.count(RestoreStatus::Unchanged)
    }
    fn count(&self, status: RestoreStatus) -> usize {
        self.instances.iter().filter(|i| i.status == status).count()
    }
    /// Whether everything is as the run found it (as far as anything shows).
    pub fn complete(&self) -> bool {
        self.restored() == self.changed()
    }

    /// "restored N of M", then a line for each instance not put back, with why.
    pub fn summary(&self) -> String {
        let mut out = format!(
            "restore: restored {} of {} changed instance(s); {} unchanged of {} journaled{}",
            self.restored(),
            self.changed(),
            self.unchanged(),
            self.instances.len(),
            match &self.journal {
                Some(j) => format!(" (journal {j})"),
                None => String::new(),
            }
        );
        for i in &self.instances {
            let status = match i.status {
                RestoreStatus::NotRestored => "NOT RESTORED",
                RestoreStatus::Unknown => "UNKNOWN",
                _ => continue,
            };
            // The id and region come from a journal or a target: one line each, escaped.
            out.push_str(&format!(
                "\n  {status}: {} {} ({}): {}",
                i.product.as_str().to_uppercase(),
                Shown(&i.id),
                Shown(&i.region),
                Shown(&i.detail)
            ));
        }
        out
    }
}

/// Restores every instance of `before`: all of them read first, in as few read calls as the
/// read APIs take (a page of ids per call, per product and region), then each changed one
/// undone and read again, one at a time. At a remote target's documented pace a journal of a
/// hundred instances is then read in one call, not a hundred.
pub(super) async fn restore(
    ctx: &Ctx,
    before: &[Before],
    allow_force_stop: bool,
) -> Result<RestoreReport, RunError> {
    let (found, refused) = read_all(ctx, before).await?;
    let mut out = RestoreReport::default();
    for ((b, found), refused) in before.iter().zip(found).zip(refused) {
        let mut done = restore_one(ctx, b, allow_force_stop, found).await?;
        if let Some(why) = refused {
            // The read exists and was refused: say so, not that nothing can read it.
            done.detail = format!(
                "the read call was refused ({why}): whether {} changed cannot be told; check the credentials and rerun `apiconform restore`",
                b.id
            );
        }
        out.instances.push(done);
    }
    Ok(out)
}

/// What the target shows of each instance of `before`, in its order (see [`read`]), read a
/// page of ids at a time per product and region; beside it, why a read was refused.
async fn read_all(ctx: &Ctx, before: &[Before]) -> Result<Found, RunError> {
    let mut found: Vec<Option<Option<Seen>>> = vec![None; before.len()];
    let mut refused: Vec<Option<String>> = vec![None; before.len()];
    let mut groups: Vec<((Product, &str), Vec<usize>)> = Vec::new();
    for (n, b) in before.iter().enumerate() {
        let key = (b.product, b.region.as_str());
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(n),
            None => groups.push((key, vec![n])),
        }
    }
    for ((product, region), members) in groups {
        let ids: Vec<String> = members.iter().map(|&n| before[n].id.clone()).collect();
        let seen = match read_view(ctx, product, region, &ids).await? {
            Read::Seen(seen) => seen,
            Read::NoView => continue,
            Read::Refused(why) => {
                for n in members {
                    refused[n] = Some(why.clone());
                }
                continue;
            }
        };
        for n in members {
            found[n] = Some(seen.iter().find(|s| s.id == before[n].id).cloned());
        }
    }
    Ok((found, refused))
}

/// Each instance as read (see [`read`]), and why its read was refused.
type Found = (Vec<Option<Option<Seen>>>, Vec<Option<String>>);

async fn restore_one(
    ctx: &Ctx,
    b: &Before,
    allow_force_stop: bool,
    found: Option<Option<Seen>>,
) -> Result<RestoredInstance, RunError> {
    let mut done = RestoredInstance {
        product: b.product,
        region: b.region.clone(),
        id: b.id.clone(),
        before_keys: b.keys.clone(),
        before_state: b.state.clone(),
        found_keys: None,
        now_keys: None,
        now_state: None,
        status: RestoreStatus::Unknown,
        detail: String::new(),
    };
    let name = b.product.as_str().to_uppercase();
    let Some(found) = found else {
        done.detail = format!(
            "nothing shows {name} key bindings (no read call in the specs does): whether {} changed cannot be told{}",
            b.id,
            match bind_api(ctx, b.product) {
                Some(_) => String::new(),
                None => format!(", and no call in the specs binds {name} keys: check it by hand"),
            }
        );
        return Ok(done);
    };
    let Some(found) = found else {
        done.detail = format!("{} is no longer there: nothing to put back", b.id);
        done.status = RestoreStatus::NotRestored;
        return Ok(done);
    };
    done.found_keys = Some(found.keys.clone());
    done.now_keys = Some(found.keys.clone());
    done.now_state = found.state.clone();
    let keys_same = same(&found.keys, &b.keys);
    let state_same = b.state.is_none() || found.state == b.state;
    if keys_same && state_same {
        done.status = RestoreStatus::Unchanged;
        done.detail = "holds what it held before the run".into();
        return Ok(done);
    }
    done.status = RestoreStatus::NotRestored;
    if !keys_same {
        let (api, keys) = match b.keys.is_empty() {
            // A bind replaces what is bound: the old keys, bound again, are all it holds.
            false => (bind_api(ctx, b.product), b.keys.clone()),
            // It held none: the new ones are unbound.
            true => (unbind_api(ctx, b.product), found.keys.clone()),
        };
        let Some(api) = api else {
            let missing: Vec<&String> = b.keys.iter().filter(|k| !found.keys.contains(k)).collect();
            done.detail = format!(
                "it held {:?} and holds {:?}; no call in the specs binds {name} keys (the change is not reversible): bind {:?} again by hand",
                b.keys, found.keys, missing
            );
            return Ok(done);
        };
        let running = found.state.as_deref() == Some("RUNNING");
        let force = api.spec.force_flag();
        if running && force.is_some() && !allow_force_stop {
            done.detail = format!(
                "{} is RUNNING and {} would stop it (ForceStop): rerun `apiconform restore` with --allow-force-stop, or stop the instance and rerun",
                b.id, api.spec.api.action
            );
            return Ok(done);
        }
        // A call whose keys parameter names one key (Alibaba `KeyPairName`) unbinds them one
        // call each, and can bind back only one.
        let one_key = takes_one_key(api);
        if one_key && keys.len() > 1 && api.spec.effect.kind != EffectKind::Unbind {
            done.detail = format!(
                "it held {:?} and holds {:?}; {} binds one key per call and replaces what is bound: bind {:?} again by hand",
                b.keys, found.keys, api.spec.api.action, b.keys
            );
            return Ok(done);
        }
        let calls: Vec<Vec<String>> = match one_key {
            true => keys.iter().map(|k| vec![k.clone()]).collect(),
            false => vec![keys.clone()],
        };
        for keys in &calls {
            let case = undo_case(api, b, keys, force.filter(|_| running));
            let sent = send_case(ctx, api, &case).await?;
            let outcome = protocol::decode(api.spec.api.family, &sent.response);
            if let OutcomeResult::Error { code, message } = malformed_as_error(outcome.result) {
                done.detail = format!(
                    "{} answered {code}{}{message}",
                    api.spec.api.action,
                    if message.is_empty() { "" } else { ": " }
                );
                return Ok(done);
            }
        }
        let after = read(ctx, b).await?.flatten();
        done.now_keys = after.as_ref().map(|s| s.keys.clone());
        done.now_state = after.as_ref().and_then(|s| s.state.clone());
        match &after {
            Some(s) if same(&s.keys, &b.keys) => {
                done.detail = format!("put back with {} {:?}", api.spec.api.action, keys);
            }
            Some(s) => {
                done.detail = format!(
                    "{} succeeded, yet it holds {:?} instead of {:?}",
                    api.spec.api.action, s.keys, b.keys
                );
                return Ok(done);
            }
            None => {
                done.detail = format!(
                    "{} succeeded, and then the instance could not be read",
                    api.spec.api.action
                );
                return Ok(done);
            }
        }
    }
    if b.state.is_some() && done.now_state != b.state {
        done.detail = format!(
            "{}{}it was {} and is {}: no call in the specs changes an instance's state; start or stop it by hand",
            done.detail,
            if done.detail.is_empty() { "" } else { "; but " },
            b.state.as_deref().unwrap_or("?"),
            done.now_state.as_deref().unwrap_or("unknown")
        );
        return Ok(done);
    }
    done.status = RestoreStatus::Restored;
    Ok(done)
}

/// A malformed answer reads as an error with its reason.
fn malformed_as_error(r: OutcomeResult) -> OutcomeResult {
    match r {
        OutcomeResult::Malformed { reason } => OutcomeResult::Error {
            code: "a malformed answer".into(),
            message: reason,
        },
        other => other,
    }
}

/// What the target shows of the instance: `None` when nothing can show it, `Some(None)` when
/// the read call does not report it.
async fn read(ctx: &Ctx, b: &Before) -> Result<Option<Option<Seen>>, RunError> {
    let seen = read_ids(ctx, b.product, &b.region, std::slice::from_ref(&b.id)).await?;
    Ok(seen.map(|seen| seen.into_iter().find(|s| s.id == b.id)))
}

/// What the target reports of these instances, or `None` when nothing can show them.
async fn read_ids(
    ctx: &Ctx,
    product: Product,
    region: &str,
    ids: &[String],
) -> Result<Option<Vec<Seen>>, RunError> {
    Ok(match read_view(ctx, product, region, ids).await? {
        Read::Seen(seen) => Some(seen),
        Read::NoView | Read::Refused(_) => None,
    })
}

/// Reads these instances through the first API of the product with a view; a refusal is kept
/// only when no API of the product could read them.
async fn read_view(
    ctx: &Ctx,
    product: Product,
    region: &str,
    ids: &[String],
) -> Result<Read, RunError> {
    let mut refused = None;
    // Any API of the product observes its instances the same way.
    for api in ctx
        .set
        .apis
        .iter()
        .filter(|a| a.spec.instance_product() == product)
    {
        match observe::read(ctx, api, region, ids).await? {
            Read::Seen(seen) => return Ok(Read::Seen(seen)),
            Read::Refused(why) => refused = Some(why),
            Read::NoView => {}
        }
    }
    Ok(refused.map_or(Read::NoView, Read::Refused))
}

fn same(a: &[String], b: &[String]) -> bool {
    a.iter().collect::<BTreeSet<_>>() == b.iter().collect::<BTreeSet<_>>()
}

/// The product's bind call (CVM `AssociateInstancesKeyPairs`), API 3.0 first.
fn bind_api(ctx: &Ctx, product: Product) -> Option<&LoadedApi> {
    effect_api(ctx, product, EffectKind::BindReplace)
}

/// The product's unbind call, API 3.0 first (CVM `DisassociateInstancesKeyPairs`).
fn unbind_api(ctx: &Ctx, product: Product) -> Option<&LoadedApi> {
    effect_api(ctx, product, EffectKind::Unbind)
}

fn effect_api(ctx: &Ctx, product: Product, kind: EffectKind) -> Option<&LoadedApi> {
    let mut apis: Vec<&LoadedApi> = ctx
        .set
        .apis
        .iter()
        .filter(|a| a.spec.instance_product() == product && a.spec.effect.kind == kind)
        .collect();
    apis.sort_by_key(|a| a.spec.api.family != FamilyId::TencentApi3);
    apis.into_iter().next()
}

/// Whether the API's keys parameter names one key (a string, as Alibaba's `KeyPairName`)
/// rather than a list.
fn takes_one_key(api: &LoadedApi) -> bool {
    api.spec
        .parameters
        .iter()
        .find(|p| p.name == api.spec.effect.keys)
        .is_some_and(|p| p.kind == crate::spec::ParamType::String)
}

/// The call that undoes: this instance, these keys, the force flag where the instance runs.
fn undo_case(api: &LoadedApi, b: &Before, keys: &[String], force: Option<&str>) -> Case {
    let effect = &api.spec.effect;
    let mut params = crate::protocol::Params::new();
    params.insert(effect.instances.clone(), json!([b.id]));
    let keys = match takes_one_key(api) {
        true => json!(keys.first().cloned().unwrap_or_default()),
        false => Value::Array(keys.iter().map(|k| json!(k)).collect()),
    };
    params.insert(effect.keys.clone(), keys);
    if let Some(region) = api.spec.region_param() {
        params.insert(region.to_string(), json!(b.region));
    }
    if let Some(flag) = force {
        params.insert(flag.to_string(), json!(true));
    }
    // As the SDKs send it: TC3 JSON for API 3.0, a signed query for the other families.
    crate::case::sdk_case(api, &b.region, params)
}

/// Puts the instances `case` names back to the keys `origin` (the model's view before an
/// earlier try of a case) gives them, where the target shows they differ and the specs can
/// undo it, and the model follows what the target then shows: a re-run meets the instances as
/// the try it re-runs met them. The caller holds the instances' locks alone.
///
/// Only instances `origin` holds (the world lists them) are touched; against a remote target
/// they are journaled already (the run changed them). Where the specs cannot undo a change
/// (no read call shows it, or no call binds the product's keys), the re-run meets what the
/// target holds. Once `stopped` says so (Ctrl-C, a budget), nothing more is put back.
pub(super) async fn put_back(
    ctx: &Ctx,
    api: &LoadedApi,
    case: &Case,
    origin: &World,
    stopped: &(dyn Fn() -> bool + Sync),
) -> Result<Vec<String>, RunError> {
    let mut did = Vec::new();
    let product = api.spec.instance_product();
    let named = case.instance_ids(api);
    let wanted: Vec<&Instance> = origin
        .instances
        .iter()
        .filter(|i| i.product == product && named.binary_search(&i.id).is_ok())
        .collect();
    if wanted.is_empty() {
        return Ok(did);
    }
    let ids: Vec<String> = wanted.iter().map(|i| i.id.clone()).collect();
    let Some(seen) = observe::observe(ctx, api, &case.region, &ids).await? else {
        did.push(format!(
            "{}: nothing shows what it holds (no read call in the specs does), so it meets what the target holds",
            ids.join(", ")
        ));
        return Ok(did);
    };
    for w in &wanted {
        let Some(s) = seen.iter().find(|s| s.id == w.id) else {
            did.push(format!("{}: the target does not show it", w.id));
            continue;
        };
        let want = serde_json::to_value(w.state)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        if let Some(now) = s.state.as_deref() {
            if !now.eq_ignore_ascii_case(&want) {
                did.push(format!(
                    "{}: {now}, where the failing call met it {want}; no specced call changes an instance's state, so it stays {now}",
                    w.id
                ));
            }
        }
        if same(&s.keys, &w.keys) {
            did.push(format!(
                "{}: holds {:?} already, as the failing call met it",
                w.id, w.keys
            ));
        }
    }
    let differs: Vec<Before> = wanted
        .iter()
        .filter(|w| {
            seen.iter()
                .find(|s| s.id == w.id)
                .is_some_and(|s| !same(&s.keys, &w.keys))
        })
        .map(|w| Before {
            product,
            region: w.region.clone(),
            id: w.id.clone(),
            keys: w.keys.clone(),
            state: None,
            seen: true,
        })
        .collect();
    // A loopback target stops RUNNING instances in any case the run sends; elsewhere only
    // with the user's word.
    let may_stop = ctx.target.is_loopback() || ctx.opts.allow_force_stop;
    {
        let mut model = ctx.model();
        for s in &seen {
            model.set_keys(product, &s.id, &s.keys);
        }
    }
    // One at a time, so that Ctrl-C is not kept waiting for a long batch's worth.
    for b in &differs {
        if stopped() {
            break;
        }
        let found = Some(seen.iter().find(|s| s.id == b.id).cloned());
        let put = restore_one(ctx, b, may_stop, found).await?;
        if let Some(keys) = &put.now_keys {
            ctx.model().set_keys(product, &put.id, keys);
        }
        did.push(match put.status {
            RestoreStatus::Restored => format!(
                "{}: held {:?}, set to {:?} ({})",
                put.id,
                put.found_keys.clone().unwrap_or_default(),
                b.keys,
                put.detail
            ),
            _ => format!("{}: not set to {:?}: {}", put.id, b.keys, put.detail),
        });
    }
    Ok(did)
}
