//! Every vendor view of the same fact, read side by side: which keys each instance holds.
//!
//! CVM shows a binding twice: `DescribeInstances` `LoginSettings.KeyIds` per instance and
//! `DescribeKeyPairs` `AssociatedInstanceIds` per key pair (both in the current definitions:
//! `../reference/tencent-api-definitions/cvm-v20170312-keypair-actions.json`). A target may
//! update one and not the other; a run that reads through one view never sees it. The
//! sequences and histories of [`super::concurrent`] read every view the product's specs list
//! (`effect.observe`, the emulator's admin view and per-item results left out) and require
//! them to agree. A disagreement is read again after a short wait before it counts: a view
//! that catches up within it is eventual consistency, which no document excludes.

use std::time::Duration;

use serde_json::{json, Value};

use super::ctx::Ctx;
use super::send::send_call;
use super::RunError;
use crate::protocol::describe::{self, Seen};
use crate::protocol::{self, Call, FamilyId};
use crate::spec::{LoadedApi, Method, Observation, Params, ResponseFormat, SignatureMethod};

/// How long a disagreement may last before it counts.
pub(super) const SETTLE: Duration = Duration::from_millis(300);

/// Most key pairs one `DescribeKeyPairs` page returns (its `Limit`, current definitions).
const PAGE: usize = 100;

/// One view's reading: its name and each instance's keys (sorted), `None` where the view does
/// not show the instance.
pub(super) type Reading = (&'static str, Vec<Option<Vec<String>>>);

/// The vendor views of the product's APIs, each once.
pub(super) fn of(apis: &[&LoadedApi]) -> Vec<Observation> {
    let mut out = Vec::new();
    for how in apis
        .iter()
        .flat_map(|a| a.spec.effect.observe.iter().copied())
    {
        let vendor = matches!(
            how,
            Observation::CvmDescribeInstances
                | Observation::CvmDescribeKeyPairs
                | Observation::EcsDescribeInstances
        );
        if vendor && !out.contains(&how) {
            out.push(how);
        }
    }
    out
}

fn name(how: Observation) -> &'static str {
    match how {
        Observation::CvmDescribeInstances => "DescribeInstances LoginSettings.KeyIds",
        Observation::CvmDescribeKeyPairs => "DescribeKeyPairs AssociatedInstanceIds",
        Observation::EcsDescribeInstances => "DescribeInstances KeyPairName",
        Observation::PerItemResults => "per-item Results",
        Observation::Admin => "the admin view",
    }
}

/// Reads the instances through every view; a view the target refuses is left out.
pub(super) async fn read_all(
    ctx: &Ctx,
    api: &LoadedApi,
    views: &[Observation],
    region: &str,
    ids: &[String],
) -> Result<Vec<Reading>, RunError> {
    let mut out = Vec::new();
    for &how in views {
        let seen = match how {
            Observation::CvmDescribeKeyPairs => key_pairs(ctx, api, region, ids).await?,
            _ => described(ctx, api, how, region, ids).await?,
        };
        if let Some(seen) = seen {
            out.push((name(how), sorted(&seen, ids)));
        }
    }
    Ok(out)
}

/// The first pair of views that disagree on an instance, as text; `None` when all agree (an
/// instance a view does not show is not compared).
pub(super) fn disagreement(readings: &[Reading], ids: &[String]) -> Option<String> {
    for (n, (a, ka)) in readings.iter().enumerate() {
        for (b, kb) in &readings[n + 1..] {
            for (id, (x, y)) in ids.iter().zip(ka.iter().zip(kb)) {
                if let (Some(x), Some(y)) = (x, y) {
                    if x != y {
                        return Some(format!("{id}: {a} shows {x:?}, {b} shows {y:?}"));
                    }
                }
            }
        }
    }
    None
}

fn sorted(seen: &[Seen], ids: &[String]) -> Vec<Option<Vec<String>>> {
    ids.iter()
        .map(|id| {
            seen.iter().find(|s| &s.id == id).map(|s| {
                let mut k = s.keys.clone();
                k.sort();
                k.dedup();
                k
            })
        })
        .collect()
}

async fn described(
    ctx: &Ctx,
    api: &LoadedApi,
    how: Observation,
    region: &str,
    ids: &[String],
) -> Result<Option<Vec<Seen>>, RunError> {
    let Some((product, family)) = describe::served_by(how) else {
        return Ok(None);
    };
    let host = ctx.target.host_for(product, family, Some(region))?;
    let Some(call) = describe::describe_call(how, ids, region, &host) else {
        return Ok(None);
    };
    let resp = send_call(ctx, api, &call).await?;
    Ok(describe::read_described(how, &resp))
}

/// CVM `DescribeKeyPairs` of the region, page by page, turned around: each instance's keys
/// are the key pairs whose `AssociatedInstanceIds` name it.
async fn key_pairs(
    ctx: &Ctx,
    api: &LoadedApi,
    region: &str,
    ids: &[String],
) -> Result<Option<Vec<Seen>>, RunError> {
    let Some((product, family)) = describe::served_by(Observation::CvmDescribeKeyPairs) else {
        return Ok(None);
    };
    let host = ctx.target.host_for(product, family, Some(region))?;
    let mut seen: Vec<Seen> = ids
        .iter()
        .map(|id| Seen {
            id: id.clone(),
            keys: vec![],
            state: None,
        })
        .collect();
    let mut offset = 0;
    loop {
        let mut params = Params::new();
        params.insert("Offset".into(), json!(offset));
        params.insert("Limit".into(), json!(PAGE));
        let call = Call {
            family: FamilyId::TencentApi3,
            action: "DescribeKeyPairs".into(),
            version: Some("2017-03-12".into()),
            region: Some(region.to_string()),
            service: "cvm".into(),
            host: host.clone(),
            path: "/".into(),
            method: Method::Post,
            signature: SignatureMethod::Tc3HmacSha256,
            params,
            format: ResponseFormat::Default,
            index_base: 0,
        };
        let resp = send_call(ctx, api, &call).await?;
        let body = protocol::decode(FamilyId::TencentApi3, &resp).body;
        let Some(set) = body
            .pointer("/Response/KeyPairSet")
            .and_then(Value::as_array)
        else {
            return Ok(None);
        };
        for kp in set {
            let key = kp.get("KeyId").and_then(Value::as_str).unwrap_or_default();
            let bound = kp.get("AssociatedInstanceIds").and_then(Value::as_array);
            for id in bound.into_iter().flatten().filter_map(Value::as_str) {
                if let Some(s) = seen.iter_mut().find(|s| s.id == id) {
                    s.keys.push(key.to_string());
                }
            }
        }
        let total = body
            .pointer("/Response/TotalCount")
            .and_then(Value::as_u64)
            .unwrap_or(0) as usize;
        offset += set.len();
        if set.is_empty() || offset >= total {
            return Ok(Some(seen));
        }
    }
}
