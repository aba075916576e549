//! The read side of the wire: how a user sees key bindings. The calls that observe them (CVM and
//! ECS `DescribeInstances`), how their answers read, and the emulator's test-only admin view
//! (the one view of ECM bindings, which no ECM read API shows).
//!
//! Only bytes and their meaning live here; when and how often to observe is the runner's choice.

use serde_json::{json, Value};

use super::{decode, SignatureMethod};
use super::{Call, FamilyId, HttpRequest, HttpResponse, Method, Params, ResponseFormat};
use crate::spec::{Observation, Product};
use crate::world::World;

/// Where the emulator serves its admin view (`GET {ADMIN_PREFIX}/world`, `POST {ADMIN_PREFIX}/reset`,
/// `POST {ADMIN_PREFIX}/rate-limits?enforce=on|off`).
pub const ADMIN_PREFIX: &str = "/__apiconform";

/// Most instance ids one read call may name: CVM `DescribeInstances` documents at most 100
/// `InstanceIds` per request, ECS `DescribeInstances` at most 100 in its `InstanceIds` list.
pub const MAX_IDS_PER_CALL: usize = 100;

/// CVM's read API for instances: `DescribeInstances` of CVM 2017-03-12 (`LoginSettings.KeyIds`).
const CVM_DESCRIBE: (&str, &str, &str) = ("DescribeInstances", "2017-03-12", "cvm");

/// ECS's read API for instances: `DescribeInstances` of ECS 2014-05-26 (`KeyPairName`).
const ECS_DESCRIBE: (&str, &str) = ("DescribeInstances", "2014-05-26");

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

/// The read call that observes the named instances in `region` through `how`; `None` for the
/// admin view (see [`admin_world_request`]).
pub fn describe_call(how: Observation, ids: &[String], region: &str, host: &str) -> Option<Call> {
    let mut params = Params::new();
    match how {
        Observation::CvmDescribeInstances => {
            let (action, version, service) = CVM_DESCRIBE;
            params.insert("InstanceIds".into(), json!(ids));
            params.insert("Limit".into(), json!(100));
            Some(Call {
                family: FamilyId::TencentApi3,
                action: action.into(),
                version: Some(version.into()),
                region: Some(region.to_string()),
                service: service.into(),
                host: host.to_string(),
                path: "/".into(),
                method: Method::Post,
                signature: SignatureMethod::Tc3HmacSha256,
                params,
                format: ResponseFormat::Default,
                index_base: 0,
            })
        }
        Observation::EcsDescribeInstances => {
            let (action, version) = ECS_DESCRIBE;
            params.insert(
                "InstanceIds".into(),
                json!(serde_json::to_string(ids).unwrap_or_default()),
            );
            params.insert("RegionId".into(), json!(region));
            params.insert("PageSize".into(), json!("100"));
            Some(Call {
                family: FamilyId::AliyunRpc,
                action: action.into(),
                version: Some(version.into()),
                region: None,
                service: String::new(),
                host: host.to_string(),
                path: "/".into(),
                method: Method::Post,
                signature: SignatureMethod::RpcHmacSha1,
                params,
                format: ResponseFormat::Json,
                index_base: 0,
            })
        }
        _ => None,
    }
}

/// The product (its folder under `specs/`) and family whose host answers `how`'s read call:
/// `run --cloud` sends it there, whichever API's effect it observes (the legacy API 2.0's
/// effect is read through CVM API 3.0's `DescribeInstances`, on API 3.0's host).
pub fn served_by(how: Observation) -> Option<(&'static str, FamilyId)> {
    match how {
        Observation::CvmDescribeInstances | Observation::CvmDescribeKeyPairs => {
            Some(("tencent-cvm", FamilyId::TencentApi3))
        }
        Observation::EcsDescribeInstances => Some(("alibaba-ecs", FamilyId::AliyunRpc)),
        Observation::PerItemResults | Observation::Admin => None,
    }
}

/// The instances an answer to [`describe_call`] reports; `None` when the answer holds no
/// instance list (an error, a body of another shape).
pub fn read_described(how: Observation, resp: &HttpResponse) -> Option<Vec<Seen>> {
    match how {
        Observation::CvmDescribeInstances => {
            cvm_instance_set(resp).unwrap_or_else(|| cvm_instances_general(resp))
        }
        Observation::EcsDescribeInstances => {
            let body = decode(FamilyId::AliyunRpc, resp).body;
            let list = body
                .pointer("/Instances/Instance")
                .and_then(Value::as_array)?;
            Some(
                list.iter()
                    .map(|i| {
                        let key = str_of(i.get("KeyPairName"));
                        Seen {
                            id: str_of(i.get("InstanceId")),
                            keys: if key.is_empty() { vec![] } else { vec![key] },
                            state: state_of(i.get("Status")),
                        }
                    })
                    .collect(),
            )
        }
        _ => None,
    }
}

/// `GET {ADMIN_PREFIX}/world`, only the named instances when `ids` is given (the whole world is
/// ~500 resources).
pub fn admin_world_request(host: &str, ids: Option<&[String]>) -> HttpRequest {
    let target = match ids {
        Some(ids) => format!(
            "{ADMIN_PREFIX}/world?{}",
            form_urlencoded::Serializer::new(String::new())
                .append_pair("instances", &ids.join(","))
                .finish()
        ),
        None => format!("{ADMIN_PREFIX}/world"),
    };
    HttpRequest {
        method: "GET".into(),
        target,
        headers: vec![("Host".into(), host.to_string())],
        body: vec![],
    }
}

/// `POST {ADMIN_PREFIX}/reset` to `world`.
pub fn admin_reset_request(host: &str, world: &World) -> HttpRequest {
    HttpRequest {
        method: "POST".into(),
        target: format!("{ADMIN_PREFIX}/reset"),
        headers: vec![
            ("Host".into(), host.to_string()),
            ("Content-Type".into(), "application/json".into()),
        ],
        body: serde_json::to_vec(world).unwrap_or_default(),
    }
}

/// `POST {ADMIN_PREFIX}/rate-limits?enforce=on|off&action=ACTION&version=VERSION`: the emulator
/// enforces the documented rate of that action (of that version) from now on, or no longer.
pub fn admin_rate_limits_request(
    host: &str,
    on: bool,
    action: &str,
    version: Option<&str>,
) -> HttpRequest {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("enforce", if on { "on" } else { "off" });
    query.append_pair("action", action);
    if let Some(v) = version {
        query.append_pair("version", v);
    }
    HttpRequest {
        method: "POST".into(),
        target: format!("{ADMIN_PREFIX}/rate-limits?{}", query.finish()),
        headers: vec![("Host".into(), host.to_string())],
        body: vec![],
    }
}

/// The named instances of `product` in an admin view answer; `None` when the body is not a
/// world (the target serves no admin view).
pub fn read_admin_world(
    resp: &HttpResponse,
    product: Product,
    ids: &[String],
) -> Option<Vec<Seen>> {
    let world = serde_json::from_slice::<World>(&resp.body).ok()?;
    Some(
        world
            .instances
            .into_iter()
            .filter(|i| i.product == product && ids.contains(&i.id))
            .map(|i| Seen {
                id: i.id,
                keys: i.keys,
                state: serde_json::to_value(i.state)
                    .ok()
                    .as_ref()
                    .and_then(|v| state_of(Some(v))),
            })
            .collect(),
    )
}

fn state_of(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str).map(str::to_ascii_uppercase)
}

/// The general reading of a CVM DescribeInstances body: decode, then the pointers.
fn cvm_instances_general(resp: &HttpResponse) -> Option<Vec<Seen>> {
    let body = decode(FamilyId::TencentApi3, resp).body;
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

/// The instances of a CVM DescribeInstances body, read straight into [`Seen`] without building
/// the JSON tree: the same answer as the general path below (`decode`, then the pointers), for
/// every body of the expected shape; `None` for anything else (a non-JSON body, an unexpected
/// type anywhere, a repeated field), which then takes the general path.
fn cvm_instance_set(resp: &HttpResponse) -> Option<Option<Vec<Seen>>> {
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

/// A JSON string field as text, empty when absent (the read calls' answers and discovery's).
pub(super) fn str_of(v: Option<&Value>) -> String {
    v.and_then(Value::as_str).unwrap_or_default().to_string()
}

/// A JSON list of strings, empty when absent.
pub(super) fn strings(v: Option<&Value>) -> Vec<String> {
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

    fn general(resp: &HttpResponse) -> Option<Vec<Seen>> {
        cvm_instances_general(resp)
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
            let resp = HttpResponse {
                status: 200,
                headers: vec![("Content-Type".into(), "application/json".into())],
                body: body.as_bytes().to_vec(),
            };
            let direct = cvm_instance_set(&resp).unwrap_or_else(|| general(&resp));
            assert_eq!(direct, general(&resp), "{body}");
        }
        let plain = r#"{"Response":{"InstanceSet":[{"InstanceId":"ins-cs000001"}]}}"#;
        let resp = HttpResponse {
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
