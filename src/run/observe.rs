//! Observing key bindings the way a user could: Describe calls, or the emulator's admin view.

use serde_json::{json, Value};

use super::{now, Ctx, RunError};
use crate::generate::Case;
use crate::protocol::{
    self, Call, Clock, FamilyId, HttpRequest, Method, Params, ResponseFormat, SignatureMethod,
};
use crate::spec::{LoadedApi, Observation, ParamType, Product};
use crate::world::World;

/// The product whose instances an API acts on.
pub fn product(api: &LoadedApi) -> Product {
    api.spec.api.product
}

/// The instance ids a case names (whatever their validity), for locking and observing.
pub fn instance_ids(api: &LoadedApi, case: &Case) -> Vec<String> {
    let name = &api.spec.effect.instances;
    let kind = api
        .spec
        .parameters
        .iter()
        .find(|p| &p.name == name)
        .map(|p| p.kind);
    let value = case.params.get(name);
    let items: Vec<String> = match (value, kind) {
        (Some(Value::Array(a)), _) => a
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        (Some(Value::String(s)), Some(ParamType::JsonStringList)) => {
            serde_json::from_str::<Vec<String>>(s).unwrap_or_default()
        }
        (Some(Value::String(s)), _) => vec![s.clone()],
        _ => vec![],
    };
    let mut items = items;
    items.sort();
    items.dedup();
    items
}

/// One instance as the target reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Seen {
    /// Instance id.
    pub id: String,
    /// Bound keys (key ids for Tencent, the key pair name for Alibaba).
    pub keys: Vec<String>,
    /// The instance state, upper case (`RUNNING`, `STOPPED`, ...), where reported.
    pub state: Option<String>,
}

/// `(instance id, bound keys)` for each named instance that the target reports, or `None` when
/// nothing can observe this API's effect.
pub(super) async fn observe(
    ctx: &Ctx,
    api: &LoadedApi,
    case: &Case,
    ids: &[String],
) -> Result<Option<Vec<(String, Vec<String>)>>, RunError> {
    Ok(observe_full(ctx, api, case, ids)
        .await?
        .map(|v| v.into_iter().map(|s| (s.id, s.keys)).collect()))
}

fn state_of(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str).map(str::to_ascii_uppercase)
}

/// Each named instance the target reports, with its keys and state, or `None` when nothing can
/// observe this API's effect.
pub(super) async fn observe_full(
    ctx: &Ctx,
    api: &LoadedApi,
    case: &Case,
    ids: &[String],
) -> Result<Option<Vec<Seen>>, RunError> {
    for how in &api.spec.effect.observe {
        match how {
            Observation::CvmDescribeInstances => {
                let mut params = Params::new();
                params.insert("InstanceIds".into(), json!(ids));
                params.insert("Limit".into(), json!(100));
                let call = Call {
                    family: FamilyId::TencentApi3,
                    action: "DescribeInstances".into(),
                    version: Some("2017-03-12".into()),
                    region: Some(case.region.clone()),
                    service: "cvm".into(),
                    host: ctx.target.authority(),
                    path: "/".into(),
                    method: Method::Post,
                    signature: SignatureMethod::Tc3HmacSha256,
                    params,
                    format: ResponseFormat::Default,
                };
                let body = describe(ctx, api, &call).await?;
                let set = body
                    .pointer("/Response/InstanceSet")
                    .and_then(Value::as_array);
                return Ok(set.map(|set| {
                    set.iter()
                        .map(|i| Seen {
                            id: str_of(i.get("InstanceId")),
                            keys: strings(i.pointer("/LoginSettings/KeyIds")),
                            state: state_of(i.get("InstanceState")),
                        })
                        .collect()
                }));
            }
            Observation::EcsDescribeInstances => {
                let mut params = Params::new();
                params.insert(
                    "InstanceIds".into(),
                    json!(serde_json::to_string(ids).unwrap_or_default()),
                );
                params.insert("RegionId".into(), json!(case.region));
                params.insert("PageSize".into(), json!("100"));
                let call = Call {
                    family: FamilyId::AliyunRpc,
                    action: "DescribeInstances".into(),
                    version: Some("2014-05-26".into()),
                    region: None,
                    service: String::new(),
                    host: ctx.target.authority(),
                    path: "/".into(),
                    method: Method::Post,
                    signature: SignatureMethod::RpcHmacSha1,
                    params,
                    format: ResponseFormat::Json,
                };
                let body = describe(ctx, api, &call).await?;
                let list = body
                    .pointer("/Instances/Instance")
                    .and_then(Value::as_array);
                return Ok(list.map(|list| {
                    list.iter()
                        .map(|i| {
                            let key = str_of(i.get("KeyPairName"));
                            Seen {
                                id: str_of(i.get("InstanceId")),
                                keys: if key.is_empty() { vec![] } else { vec![key] },
                                state: state_of(i.get("Status")),
                            }
                        })
                        .collect()
                }));
            }
            Observation::Admin if ctx.opts.admin => {
                let req = HttpRequest {
                    method: "GET".into(),
                    // Only the named instances: the whole world is ~500 resources.
                    target: format!(
                        "/__apiconform/world?{}",
                        form_urlencoded::Serializer::new(String::new())
                            .append_pair("instances", &ids.join(","))
                            .finish()
                    ),
                    headers: vec![("Host".into(), ctx.target.authority())],
                    body: vec![],
                };
                let resp = ctx.target.send(&req).await?;
                let Ok(world) = serde_json::from_slice::<World>(&resp.body) else {
                    continue;
                };
                let p = product(api);
                return Ok(Some(
                    world
                        .instances
                        .into_iter()
                        .filter(|i| i.product == p && ids.contains(&i.id))
                        .map(|i| Seen {
                            id: i.id,
                            keys: i.keys,
                            state: serde_json::to_value(i.state)
                                .ok()
                                .as_ref()
                                .and_then(|v| state_of(Some(v))),
                        })
                        .collect(),
                ));
            }
            _ => {}
        }
    }
    Ok(None)
}

async fn describe(ctx: &Ctx, api: &LoadedApi, call: &Call) -> Result<Value, RunError> {
    let creds = match call.family {
        FamilyId::AliyunRpc => &ctx.opts.alibaba,
        _ => &ctx.opts.tencent,
    };
    let n = ctx.nonce.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let clock = Clock {
        timestamp: now(),
        nonce: format!("{:032x}", (now() as u128) << 64 | (n as u128 + (1 << 40))),
    };
    let req = protocol::encode(call, creds, &clock).map_err(|e| {
        RunError::Transport(super::TransportError::BadUrl {
            url: call.action.clone(),
            reason: e.to_string(),
        })
    })?;
    // Describe calls share the API's rate limiter and retry throttling like every request.
    let (resp, _) = super::send_with_retry(ctx, api, &req).await?;
    // The decoded body: the parsed JSON (Tencent), or XML/JSON converted (Alibaba); Null when
    // the body does not parse.
    Ok(protocol::decode(call.family, &resp).body)
}

fn str_of(v: Option<&Value>) -> String {
    v.and_then(Value::as_str).unwrap_or_default().to_string()
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}
