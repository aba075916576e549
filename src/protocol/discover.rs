//! The read calls that list a world (`apiconform world discover`): CVM `DescribeInstances` and
//! `DescribeKeyPairs` (API 3.0, 2017-03-12) and ECS `DescribeInstances` and `DescribeKeyPairs`
//! (RPC, 2014-05-26), selected by a tag or by ids and read page by page, and what their answers
//! say about each listed resource.
//!
//! Only bytes and their meaning live here: which calls to make, in which order, and what to
//! believe of an answer (nothing the selection did not ask for) is the caller's
//! (`crate::run::discover`).

use serde_json::{json, Value};

use super::describe::{str_of, strings};
use super::SignatureMethod;
use super::{decode, Call, FamilyId, HttpResponse, Method, OutcomeResult, Params, ResponseFormat};

/// One of the four listing calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// CVM `DescribeInstances`.
    CvmInstances,
    /// CVM `DescribeKeyPairs`.
    CvmKeyPairs,
    /// ECS `DescribeInstances`.
    EcsInstances,
    /// ECS `DescribeKeyPairs`.
    EcsKeyPairs,
}

impl Listing {
    /// The product (its folder under `specs/`) and family whose host answers this call.
    pub fn served_by(self) -> (&'static str, FamilyId) {
        match self {
            Listing::CvmInstances | Listing::CvmKeyPairs => ("tencent-cvm", FamilyId::TencentApi3),
            Listing::EcsInstances | Listing::EcsKeyPairs => ("alibaba-ecs", FamilyId::AliyunRpc),
        }
    }
}

/// What one listing call asks for.
#[derive(Debug, Clone, Copy)]
pub enum Select<'a> {
    /// The resources carrying this tag with this value.
    Tag {
        /// Tag key.
        key: &'a str,
        /// Tag value.
        value: &'a str,
    },
    /// These ids (at most [`Listing::ids_per_call`]); ECS key pairs by their one name.
    Ids(&'a [String]),
}

impl Listing {
    /// The action's name.
    pub fn action(self) -> &'static str {
        match self {
            Listing::CvmInstances | Listing::EcsInstances => "DescribeInstances",
            Listing::CvmKeyPairs | Listing::EcsKeyPairs => "DescribeKeyPairs",
        }
    }

    /// The most resources one page holds: CVM's `Limit` is at most 100 for both calls, ECS's
    /// `PageSize` at most 100 for instances and 50 for key pairs.
    pub fn page_size(self) -> usize {
        match self {
            Listing::CvmInstances | Listing::CvmKeyPairs | Listing::EcsInstances => 100,
            Listing::EcsKeyPairs => 50,
        }
    }

    /// The most ids one call may name: 100 (`InstanceIds` of both DescribeInstances, CVM
    /// `KeyIds` within one page); ECS DescribeKeyPairs names one key pair (`KeyPairName`).
    pub fn ids_per_call(self) -> usize {
        match self {
            Listing::EcsKeyPairs => 1,
            _ => 100,
        }
    }

    /// The call for page `page` (from 0) of `select` in `region`, to `host`.
    pub fn call(self, select: Select, region: &str, host: &str, page: usize) -> Call {
        let mut params = Params::new();
        let size = self.page_size();
        match self {
            Listing::CvmInstances | Listing::CvmKeyPairs => {
                let ids = if self == Listing::CvmInstances {
                    "InstanceIds"
                } else {
                    "KeyIds"
                };
                match select {
                    // "tag:tag-key": 按照【标签键值对】进行过滤 (both calls' `Filters`).
                    Select::Tag { key, value } => {
                        params.insert(
                            "Filters".into(),
                            json!([{"Name": format!("tag:{key}"), "Values": [value]}]),
                        );
                    }
                    Select::Ids(list) => {
                        params.insert(ids.into(), json!(list));
                    }
                }
                params.insert("Offset".into(), json!(page * size));
                params.insert("Limit".into(), json!(size));
                Call {
                    family: FamilyId::TencentApi3,
                    action: self.action().into(),
                    version: Some("2017-03-12".into()),
                    region: Some(region.to_string()),
                    service: "cvm".into(),
                    host: host.to_string(),
                    path: "/".into(),
                    method: Method::Post,
                    signature: SignatureMethod::Tc3HmacSha256,
                    params,
                    format: ResponseFormat::Default,
                    index_base: 0,
                }
            }
            Listing::EcsInstances | Listing::EcsKeyPairs => {
                params.insert("RegionId".into(), json!(region));
                match select {
                    Select::Tag { key, value } => {
                        params.insert("Tag.1.Key".into(), json!(key));
                        params.insert("Tag.1.Value".into(), json!(value));
                    }
                    Select::Ids(list) if self == Listing::EcsInstances => {
                        // A string holding a JSON array of at most 100 ids.
                        params.insert(
                            "InstanceIds".into(),
                            json!(serde_json::to_string(list).unwrap_or_default()),
                        );
                    }
                    Select::Ids(list) => {
                        params.insert(
                            "KeyPairName".into(),
                            json!(list.first().cloned().unwrap_or_default()),
                        );
                    }
                }
                params.insert("PageNumber".into(), json!((page + 1).to_string()));
                params.insert("PageSize".into(), json!(size.to_string()));
                Call {
                    family: FamilyId::AliyunRpc,
                    action: self.action().into(),
                    version: Some("2014-05-26".into()),
                    region: None,
                    service: String::new(),
                    host: host.to_string(),
                    path: "/".into(),
                    method: Method::Post,
                    signature: SignatureMethod::RpcHmacSha1,
                    params,
                    format: ResponseFormat::Json,
                    index_base: 0,
                }
            }
        }
    }

    fn family(self) -> FamilyId {
        match self {
            Listing::CvmInstances | Listing::CvmKeyPairs => FamilyId::TencentApi3,
            Listing::EcsInstances | Listing::EcsKeyPairs => FamilyId::AliyunRpc,
        }
    }

    /// What an answer to [`Listing::call`] says.
    pub fn read(self, resp: &HttpResponse) -> Answer {
        let outcome = decode(self.family(), resp);
        match outcome.result {
            OutcomeResult::Error { code, message } => {
                return Answer::Refused {
                    code,
                    message,
                    request_id: outcome.request_id,
                }
            }
            OutcomeResult::Malformed { reason } => return Answer::Unreadable(reason),
            OutcomeResult::Success => {}
        }
        let body = &outcome.body;
        let (list, total) = match self {
            Listing::CvmInstances => (
                body.pointer("/Response/InstanceSet"),
                body.pointer("/Response/TotalCount"),
            ),
            Listing::CvmKeyPairs => (
                body.pointer("/Response/KeyPairSet"),
                body.pointer("/Response/TotalCount"),
            ),
            Listing::EcsInstances => (body.pointer("/Instances/Instance"), body.get("TotalCount")),
            Listing::EcsKeyPairs => (body.pointer("/KeyPairs/KeyPair"), body.get("TotalCount")),
        };
        let items = match list {
            Some(Value::Array(items)) => items.as_slice(),
            // Alibaba's XML-to-JSON and some JSON answers write an empty list as nothing.
            None | Some(Value::Null) if self.family() == FamilyId::AliyunRpc => &[],
            Some(Value::Null) => &[],
            _ => {
                return Answer::Unreadable(format!("the answer holds no {} list", self.list_name()))
            }
        };
        let total = total.and_then(|t| {
            t.as_u64()
                .or_else(|| t.as_str().and_then(|s| s.parse().ok()))
        });
        Answer::Page(Page {
            items: items.iter().map(|i| self.listed(i)).collect(),
            total,
        })
    }

    fn list_name(self) -> &'static str {
        match self {
            Listing::CvmInstances => "Response.InstanceSet",
            Listing::CvmKeyPairs => "Response.KeyPairSet",
            Listing::EcsInstances => "Instances.Instance",
            Listing::EcsKeyPairs => "KeyPairs.KeyPair",
        }
    }

    fn listed(self, item: &Value) -> Listed {
        match self {
            Listing::CvmInstances => Listed {
                id: str_of(item.get("InstanceId")),
                place: item
                    .pointer("/Placement/Zone")
                    .and_then(Value::as_str)
                    .map(String::from),
                state: item
                    .get("InstanceState")
                    .and_then(Value::as_str)
                    .map(String::from),
                os: item.get("OsName").and_then(Value::as_str).map(String::from),
                // "注意：此字段可能返回 null" (LoginSettings.KeyIds): null is no key.
                keys: strings(item.pointer("/LoginSettings/KeyIds")),
                tags: tags(item.get("Tags"), "Key", "Value"),
                associated: vec![],
            },
            Listing::CvmKeyPairs => Listed {
                id: str_of(item.get("KeyId")),
                place: None,
                state: None,
                os: None,
                keys: vec![],
                tags: tags(item.get("Tags"), "Key", "Value"),
                associated: strings(item.get("AssociatedInstanceIds")),
            },
            Listing::EcsInstances => {
                let key = str_of(item.get("KeyPairName"));
                Listed {
                    id: str_of(item.get("InstanceId")),
                    place: item
                        .get("RegionId")
                        .and_then(Value::as_str)
                        .map(String::from),
                    state: item.get("Status").and_then(Value::as_str).map(String::from),
                    os: item.get("OSType").and_then(Value::as_str).map(String::from),
                    keys: if key.is_empty() { vec![] } else { vec![key] },
                    tags: tags(item.pointer("/Tags/Tag"), "TagKey", "TagValue"),
                    associated: vec![],
                }
            }
            Listing::EcsKeyPairs => Listed {
                id: str_of(item.get("KeyPairName")),
                place: None,
                state: None,
                os: None,
                keys: vec![],
                tags: tags(item.pointer("/Tags/Tag"), "TagKey", "TagValue"),
                associated: vec![],
            },
        }
    }
}

/// What a listing call answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// One page of resources.
    Page(Page),
    /// An error code in the family's envelope.
    Refused {
        /// The code (`AuthFailure.SecretIdNotFound`, `InvalidAccessKeyId.NotFound`, ...).
        code: String,
        /// The target's message.
        message: String,
        /// The request id, where the answer has one.
        request_id: Option<String>,
    },
    /// Not an answer of the documented shape.
    Unreadable(String),
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Page {
    /// The resources on this page, as answered (nothing checked yet).
    pub items: Vec<Listed>,
    /// `TotalCount`: every match, across pages, where the answer says.
    pub total: Option<u64>,
}

/// One resource as a listing answer describes it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Listed {
    /// Instance id, CVM key id, or ECS key pair name.
    pub id: String,
    /// Where it is: CVM's `Placement.Zone` (`ap-guangzhou-3`), ECS's `RegionId`; instances only.
    pub place: Option<String>,
    /// The state as answered (`RUNNING`, `Stopped`, ...); instances only.
    pub state: Option<String>,
    /// CVM's `OsName` or ECS's `OSType`; instances only.
    pub os: Option<String>,
    /// Bound keys (`LoginSettings.KeyIds`, `KeyPairName`); instances only.
    pub keys: Vec<String>,
    /// Tags as (key, value), in answer order.
    pub tags: Vec<(String, String)>,
    /// CVM key pairs: `AssociatedInstanceIds`.
    pub associated: Vec<String>,
}

impl Listed {
    /// Whether the resource carries `key` with `value`.
    pub fn carries(&self, key: &str, value: &str) -> bool {
        self.tags.iter().any(|(k, v)| k == key && v == value)
    }
}

/// A tag list: an array of objects with `key`/`value` fields (XML-to-JSON turns a single
/// element into an object: read that as a list of one).
fn tags(v: Option<&Value>, key: &str, value: &str) -> Vec<(String, String)> {
    let one = |t: &Value| {
        let k = t.get(key)?.as_str()?;
        let v = t.get(value).and_then(Value::as_str).unwrap_or_default();
        Some((k.to_string(), v.to_string()))
    };
    match v {
        Some(Value::Array(items)) => items.iter().filter_map(one).collect(),
        Some(obj @ Value::Object(_)) => one(obj).into_iter().collect(),
        _ => vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(body: &str) -> HttpResponse {
        HttpResponse {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn a_tag_selection_asks_the_target_to_filter_by_that_tag() {
        let sel = Select::Tag {
            key: "env",
            value: "nightly",
        };
        let cvm = Listing::CvmInstances.call(sel, "ap-guangzhou", "h", 2);
        assert_eq!(
            cvm.params["Filters"],
            json!([{"Name": "tag:env", "Values": ["nightly"]}])
        );
        assert_eq!(cvm.params["Offset"], json!(200));
        assert_eq!(cvm.params["Limit"], json!(100));
        assert!(!cvm.params.contains_key("InstanceIds"), "not both");
        let ecs = Listing::EcsKeyPairs.call(sel, "cn-hangzhou", "h", 0);
        assert_eq!(ecs.params["Tag.1.Key"], json!("env"));
        assert_eq!(ecs.params["Tag.1.Value"], json!("nightly"));
        assert_eq!(ecs.params["PageNumber"], json!("1"));
        assert_eq!(ecs.params["PageSize"], json!("50"));
        assert_eq!(ecs.params["RegionId"], json!("cn-hangzhou"));
        let ids = ["i-a".to_string(), "i-b".to_string()];
        let by_id = Listing::EcsInstances.call(Select::Ids(&ids), "cn-hangzhou", "h", 0);
        assert_eq!(by_id.params["InstanceIds"], json!(r#"["i-a","i-b"]"#));
    }

    #[test]
    fn answers_read_into_resources_and_errors_into_codes() {
        let cvm = r#"{"Response":{"TotalCount":101,"InstanceSet":[{"InstanceId":"ins-1","InstanceState":"STOPPED","OsName":"Windows Server 2019","LoginSettings":{"KeyIds":null},"Placement":{"Zone":"ap-guangzhou-3"},"Tags":[{"Key":"env","Value":"nightly"}]}],"RequestId":"r"}}"#;
        let Answer::Page(page) = Listing::CvmInstances.read(&resp(cvm)) else {
            panic!("a page")
        };
        assert_eq!(page.total, Some(101));
        let i = &page.items[0];
        assert_eq!(i.id, "ins-1");
        assert!(i.keys.is_empty());
        assert!(i.carries("env", "nightly") && !i.carries("env", "prod"));
        assert_eq!(i.place.as_deref(), Some("ap-guangzhou-3"));
        let ecs = r#"{"RequestId":"r","TotalCount":"1","Instances":{"Instance":[{"InstanceId":"i-1","RegionId":"cn-hangzhou","Status":"Running","OSType":"linux","KeyPairName":"kp","Tags":{"Tag":[{"TagKey":"env","TagValue":"nightly"}]}}]}}"#;
        let Answer::Page(page) = Listing::EcsInstances.read(&resp(ecs)) else {
            panic!("a page")
        };
        assert_eq!(page.total, Some(1));
        assert_eq!(page.items[0].keys, vec!["kp".to_string()]);
        assert!(page.items[0].carries("env", "nightly"));
        let refused = r#"{"Response":{"Error":{"Code":"AuthFailure.SecretIdNotFound","Message":"no such id"},"RequestId":"r1"}}"#;
        assert_eq!(
            Listing::CvmKeyPairs.read(&resp(refused)),
            Answer::Refused {
                code: "AuthFailure.SecretIdNotFound".into(),
                message: "no such id".into(),
                request_id: Some("r1".into()),
            }
        );
        let odd = r#"{"Response":{"InstanceSet":{"InstanceId":"ins-1"},"RequestId":"r"}}"#;
        assert!(matches!(
            Listing::CvmInstances.read(&resp(odd)),
            Answer::Unreadable(_)
        ));
    }
}
