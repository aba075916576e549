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
                let resp = send_describe(ctx, api, &call).await?;
                if let Some(seen) = cvm_instance_set(&resp) {
                    return Ok(seen);
                }
                let body = protocol::decode(call.family, &resp).body;
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

/// The instances of a CVM DescribeInstances body, read straight into [`Seen`] without building
/// the JSON tree: the same answer as the general path below (`decode`, then the pointers), for
/// every body of the expected shape; `None` for anything else (a non-JSON body, an unexpected
/// type anywhere, a repeated field), which then takes the general path.
fn cvm_instance_set(resp: &protocol::HttpResponse) -> Option<Option<Vec<Seen>>> {
    // Borrowed `&str`s: a string with an escape fails to borrow, and the body then takes the
    // general path (serde would copy every string into a `Cow` otherwise).
    #[derive(serde::Deserialize)]
    struct Body<'a> {
        #[serde(rename = "Response", borrow)]
        response: Option<Response<'a>>,
    }
    #[derive(serde::Deserialize)]
    struct Response<'a> {
        #[serde(rename = "InstanceSet", borrow)]
        instance_set: Option<Vec<Item<'a>>>,
    }
    #[derive(serde::Deserialize)]
    struct Item<'a> {
        #[serde(rename = "InstanceId")]
        instance_id: Option<&'a str>,
        #[serde(rename = "InstanceState")]
        instance_state: Option<&'a str>,
        #[serde(rename = "LoginSettings", borrow)]
        login_settings: Option<LoginSettings<'a>>,
    }
    #[derive(serde::Deserialize)]
    struct LoginSettings<'a> {
        #[serde(rename = "KeyIds", borrow)]
        key_ids: Option<Vec<&'a str>>,
    }
    let body: Body = serde_json::from_slice(&resp.body).ok()?;
    let set = body.response.and_then(|r| r.instance_set);
    Some(set.map(|set| {
        set.into_iter()
            .map(|i| Seen {
                id: i.instance_id.unwrap_or_default().to_string(),
                keys: i
                    .login_settings
                    .and_then(|l| l.key_ids)
                    .map(|k| k.into_iter().map(String::from).collect())
                    .unwrap_or_default(),
                state: i.instance_state.map(str::to_ascii_uppercase),
            })
            .collect()
    }))
}

async fn describe(ctx: &Ctx, api: &LoadedApi, call: &Call) -> Result<Value, RunError> {
    let resp = send_describe(ctx, api, call).await?;
    // The decoded body: the parsed JSON (Tencent), or XML/JSON converted (Alibaba); Null when
    // the body does not parse.
    Ok(protocol::decode(call.family, &resp).body)
}

async fn send_describe(
    ctx: &Ctx,
    api: &LoadedApi,
    call: &Call,
) -> Result<protocol::HttpResponse, RunError> {
    let creds = match call.family {
        FamilyId::AliyunRpc => &ctx.opts.alibaba,
        _ => &ctx.opts.tencent,
    };
    let n = ctx.next_nonce();
    let clock = Clock {
        timestamp: now(),
        nonce: format!("{:032x}", (now() as u128) << 64 | n as u128),
    };
    let req = protocol::encode(call, creds, &clock).map_err(|e| {
        RunError::Transport(super::TransportError::BadUrl {
            url: call.action.clone(),
            reason: e.to_string(),
        })
    })?;
    // Describe calls share the API's rate limiter and retry throttling like every request.
    let (resp, _) = super::send_with_retry(ctx, api, &req).await?;
    Ok(resp)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The general path of `observe_full` for a CVM DescribeInstances body.
    fn general(resp: &protocol::HttpResponse) -> Option<Vec<Seen>> {
        let body = protocol::decode(FamilyId::TencentApi3, resp).body;
        let set = body
            .pointer("/Response/InstanceSet")
            .and_then(Value::as_array)?;
        Some(
            set.iter()
                .map(|i| Seen {
                    id: str_of(i.get("InstanceId")),
                    keys: strings(i.pointer("/LoginSettings/KeyIds")),
                    state: state_of(i.get("InstanceState")),
                })
                .collect(),
        )
    }

    #[test]
    fn the_direct_read_agrees_with_the_general_path() {
        let bodies = [
            r#"{"Response":{"TotalCount":2,"InstanceSet":[{"InstanceId":"ins-cs000001","InstanceState":"STOPPED","OsName":"x","LoginSettings":{"KeyIds":["skey-ck000001"]},"Placement":{"Zone":"z"}},{"InstanceId":"ins-c\u0073000002","InstanceState":"running","LoginSettings":{"KeyIds":[]}}],"RequestId":"r"}}"#,
            r#"{"Response":{"InstanceSet":[{"InstanceId":null,"LoginSettings":null},{"LoginSettings":{"KeyIds":null}}]}}"#,
            r#"{"Response":{"InstanceSet":null}}"#,
            r#"{"Response":{"Error":{"Code":"X","Message":"m"}}}"#,
            r#"{"Response":{"InstanceSet":[{"InstanceId":7}]}}"#,
            r#"{"Response":{"InstanceSet":[{"LoginSettings":{"KeyIds":["a",1]}}]}}"#,
            r#"{"Response":{"InstanceSet":{"InstanceId":"ins-cs000001"}}}"#,
            r#"{"Response":{"InstanceSet":[],"InstanceSet":[{"InstanceId":"ins-cs000001"}]}}"#,
            r#"[]"#,
            r#"not json"#,
        ];
        for body in bodies {
            let resp = protocol::HttpResponse {
                status: 200,
                headers: vec![("Content-Type".into(), "application/json".into())],
                body: body.as_bytes().to_vec(),
            };
            let direct = cvm_instance_set(&resp).unwrap_or_else(|| general(&resp));
            assert_eq!(direct, general(&resp), "{body}");
        }
        let plain = r#"{"Response":{"InstanceSet":[{"InstanceId":"ins-cs000001"}]}}"#;
        let resp = protocol::HttpResponse {
            status: 200,
            headers: vec![],
            body: plain.as_bytes().to_vec(),
        };
        assert!(
            cvm_instance_set(&resp).is_some(),
            "the usual shape is read directly"
        );
    }
}
