//! The emulator's reading of the five documents (plus the Describe calls that make bindings
//! observable). Codes, limits and patterns are written here from the seeds and the reference
//! definitions, independently of the spec files.

use serde_json::{json, Value};

use super::{dedup, Emulator, Fault, Held, Variant};
use crate::protocol::{
    aliyun_rpc, tencent_api3, tencent_v2, FamilyId, HttpResponse, Params, ParsedRequest,
    ResponseFormat,
};
use crate::spec::{InstanceState, Os, Product};
use crate::world::Instance;

/// A business error: code, message, and (Alibaba) HTTP status.
struct Fail {
    code: &'static str,
    message: String,
    status: u16,
}

fn fail(code: &'static str, message: impl Into<String>) -> Fail {
    Fail {
        code,
        message: message.into(),
        status: 400,
    }
}

pub(super) fn dispatch(emu: &Emulator, req: &ParsedRequest) -> HttpResponse {
    let rid = emu.request_id(req.family);
    let specs = &emu.config.specs;
    if let Some(api) = super::generic::find(specs, req) {
        let resp = super::generic::serve(emu, specs, api, req, &rid);
        return finish(emu, req, resp);
    }
    let resp = match req.family {
        FamilyId::TencentApi3 => tencent(emu, req, &rid),
        FamilyId::TencentV2 => v2(emu, req),
        FamilyId::AliyunRpc => aliyun(emu, req, &rid),
    };
    finish(emu, req, resp)
}

/// Response-shape faults, applied to the bytes a correct emulator would send.
fn finish(emu: &Emulator, req: &ParsedRequest, mut resp: HttpResponse) -> HttpResponse {
    let shape_faults = match req.family {
        FamilyId::TencentApi3 => {
            emu.has(Fault::MissingRequestId) || emu.has(Fault::ErrorOutsideResponse)
        }
        FamilyId::TencentV2 => emu.has(Fault::V2CodeAsString),
        FamilyId::AliyunRpc => emu.has(Fault::WrongHttpStatus),
    };
    if !shape_faults {
        // The common case: nothing to rewrite, so the body is not parsed again.
        return resp;
    }
    let mut body: Value = match serde_json::from_slice(&resp.body) {
        Ok(v) => v,
        Err(_) => return resp,
    };
    let mut changed = false;
    match req.family {
        FamilyId::TencentApi3 => {
            if emu.has(Fault::MissingRequestId) {
                if let Some(r) = body.get_mut("Response").and_then(Value::as_object_mut) {
                    changed |= r.remove("RequestId").is_some();
                }
            }
            if emu.has(Fault::ErrorOutsideResponse) {
                let err = body
                    .get_mut("Response")
                    .and_then(Value::as_object_mut)
                    .and_then(|r| r.remove("Error"));
                if let (Some(err), Some(top)) = (err, body.as_object_mut()) {
                    top.insert("Error".into(), err);
                    changed = true;
                }
            }
        }
        FamilyId::TencentV2 => {
            if emu.has(Fault::V2CodeAsString) {
                if let Some(code) = body.get("code").and_then(Value::as_i64) {
                    body["code"] = Value::String(code.to_string());
                    changed = true;
                }
            }
        }
        FamilyId::AliyunRpc => {
            if emu.has(Fault::WrongHttpStatus) && resp.status >= 400 {
                resp.status = 200;
            }
        }
    }
    if changed {
        resp.body = serde_json::to_vec(&body).unwrap_or_default();
    }
    resp
}

// ---------------------------------------------------------------------------------------------
// Parameter reading, shared by the families.

enum List {
    Missing,
    Items(Vec<String>),
    WrongType,
}

fn list(params: &Params, name: &str) -> List {
    match params.get(name) {
        None => List::Missing,
        Some(Value::Array(items)) => {
            let strings: Option<Vec<String>> = items
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect();
            strings.map_or(List::WrongType, List::Items)
        }
        Some(_) => List::WrongType,
    }
}

/// Booleans as JSON or as the SDKs write them on forms (`True`, `true`, `TRUE`).
fn boolean(params: &Params, name: &str) -> Result<Option<bool>, ()> {
    match params.get(name) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(_) => Err(()),
    }
}

/// The variant that reads form lists as 0-based only: a list numbered from another base is
/// rejected.
fn one_based_rejected(emu: &Emulator, req: &ParsedRequest) -> bool {
    emu.reads(Variant::OneBasedIndexRejected) && req.index_base.is_some_and(|b| b != 0)
}

/// The first business parameter of `req` that `known` does not list, for the actions `checked`
/// applies to.
fn unknown_param<'a>(req: &'a ParsedRequest, checked: bool, known: &[&str]) -> Option<&'a str> {
    checked
        .then(|| req.params.keys().find(|k| !known.contains(&k.as_str())))
        .flatten()
        .map(String::as_str)
}

/// Whether any item is named twice.
fn has_duplicates(items: &[String]) -> bool {
    dedup(items).len() != items.len()
}

/// `prefix` followed by exactly `len` lower-case letters or digits.
fn id_ok(id: &str, prefix: &str, len: usize) -> bool {
    id.strip_prefix(prefix).is_some_and(|rest| {
        rest.len() == len
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

/// The state as CVM's DescribeInstances spells it.
fn state_upper(state: InstanceState) -> &'static str {
    match state {
        InstanceState::Stopped => "STOPPED",
        InstanceState::Running => "RUNNING",
        InstanceState::Pending => "PENDING",
        InstanceState::Stopping => "STOPPING",
        InstanceState::Starting => "STARTING",
        InstanceState::Rebooting => "REBOOTING",
    }
}

fn state_name(state: InstanceState) -> &'static str {
    match state {
        InstanceState::Stopped => "Stopped",
        InstanceState::Running => "Running",
        InstanceState::Pending => "Pending",
        InstanceState::Stopping => "Stopping",
        InstanceState::Starting => "Starting",
        InstanceState::Rebooting => "Rebooting",
    }
}

// ---------------------------------------------------------------------------------------------
// Tencent API 3.0: CVM 2017-03-12 and ECM 2019-07-19.

/// How one Tencent product words its errors (seed tables first, current definitions where the
/// seeds name no specific code).
struct TencentCodes {
    product: Product,
    instance_prefix: &'static str,
    instance_limit: Option<usize>,
    malformed_instance: &'static str,
    malformed_key: &'static str,
    instance_not_found: &'static str,
    key_not_found: &'static str,
    /// `None`: the document states no OS restriction (ECM).
    windows: Option<&'static str>,
    /// Whether the document restricts instance states (CVM: STOPPED, or RUNNING with ForceStop).
    checks_state: bool,
    empty_list: &'static str,
}

const CVM: TencentCodes = TencentCodes {
    product: Product::Cvm,
    instance_prefix: "ins-",
    instance_limit: Some(100),
    malformed_instance: "InvalidInstanceId.Malformed",
    malformed_key: "InvalidKeyPairId.Malformed",
    instance_not_found: "InvalidInstanceId.NotFound",
    key_not_found: "InvalidKeyPairId.NotFound",
    windows: Some("UnsupportedOperation.InstanceOsWindows"),
    checks_state: true,
    empty_list: "InvalidParameterValue",
};

// Seed 001 lists five codes only; every instance problem maps to InstanceIdNotSupported and
// every key problem to InvalidKeyPairId. ECM states no limit on InstanceIds, and no OS or state
// restriction, so none is enforced.
const ECM: TencentCodes = TencentCodes {
    product: Product::Ecm,
    instance_prefix: "ein-",
    instance_limit: None,
    malformed_instance: "InvalidParameterValue",
    malformed_key: "InvalidParameterValue.InvalidKeyPairId",
    instance_not_found: "InvalidParameterValue.InstanceIdNotSupported",
    key_not_found: "InvalidParameterValue.InvalidKeyPairId",
    windows: None,
    checks_state: false,
    empty_list: "InvalidParameterValue",
};

fn tencent(emu: &Emulator, req: &ParsedRequest, rid: &str) -> HttpResponse {
    let err = |f: Fail| tencent_api3::error(f.code, &f.message, rid);
    let codes = match req.version.as_deref() {
        Some("2017-03-12") => &CVM,
        Some("2019-07-19") => &ECM,
        Some(_) if emu.has(Fault::VersionIgnored) => &CVM,
        Some(v) => {
            return tencent_api3::error(
                "NoSuchVersion",
                &format!("version `{v}` is not served; use 2017-03-12 (CVM) or 2019-07-19 (ECM)"),
                rid,
            )
        }
        None => return tencent_api3::error("MissingParameter", "missing Version", rid),
    };
    // CVM's seeds (000, 004) write their examples numbered from 1: this emulator reads that as
    // documented for CVM, and takes the 0-only reading (the variant) for ECM alone.
    let from_one = req.index_base.is_some_and(|b| b != 0);
    if (one_based_rejected(emu, req) && codes.product != Product::Cvm)
        || (emu.has(Fault::OneBasedRejected) && codes.product == Product::Cvm && from_one)
    {
        return err(fail(
            "InvalidParameter",
            "list items are numbered from 0 (InstanceIds.0, InstanceIds.1, ...)",
        ));
    }
    let upper = |v: &Value| matches!(v, Value::String(s) if s == "TRUE" || s == "FALSE");
    if emu.has(Fault::UpperBooleansRejected) && req.params.get("ForceStop").is_some_and(upper) {
        return err(fail(
            "InvalidParameterValue",
            "ForceStop must be true or false",
        ));
    }
    let key_action = matches!(
        req.action.as_str(),
        "AssociateInstancesKeyPairs" | "DisassociateInstancesKeyPairs"
    );
    if let Some(unknown) = unknown_param(req, key_action, &["InstanceIds", "KeyIds", "ForceStop"]) {
        // The family's common error for a parameter the action does not define (a batch item
        // renamed `InstanceIds_1` is not quietly dropped).
        return err(fail(
            "UnknownParameter",
            format!(
                "the parameter `{unknown}` is not defined for {}",
                req.action
            ),
        ));
    }
    let result = match (codes.product, req.action.as_str()) {
        (_, "DisassociateInstancesKeyPairs") => bind(emu, req, codes, false),
        (Product::Cvm, "AssociateInstancesKeyPairs") => bind(emu, req, codes, true),
        (Product::Cvm, "DescribeInstances") => return cvm_describe_instances(emu, req, rid),
        (Product::Cvm, "DescribeKeyPairs") => cvm_describe_key_pairs(emu, req),
        _ => Err(fail(
            "InvalidAction",
            format!("action `{}` is not served for this version", req.action),
        )),
    };
    match result {
        Ok(fields) => tencent_api3::ok(rid, fields),
        Err(f) => err(f),
    }
}

/// Associate (`bind`) or disassociate: all or nothing (seed 004/000: "如果批量实例存在不允许操作的
/// 实例，操作会以特定错误码返回").
fn bind(
    emu: &Emulator,
    req: &ParsedRequest,
    c: &TencentCodes,
    associate: bool,
) -> Result<Params, Fail> {
    let missing = |name: &str| {
        if emu.has(Fault::MissingParamWrongCode) {
            fail("InvalidParameterValue", format!("{name} has no value"))
        } else {
            fail(
                "MissingParameter",
                format!("the required parameter {name} is missing"),
            )
        }
    };
    let region_ok = |r: &str| req.region.as_deref().is_none_or(|want| want == r);
    let key_checks = |keys: &[String]| -> Result<(), Fail> {
        if keys.is_empty() {
            return Err(fail(c.empty_list, "KeyIds is empty"));
        }
        if keys.len() > 100 {
            return Err(fail(
                "InvalidParameterValue.LimitExceeded",
                format!("KeyIds holds {} items; the limit is 100", keys.len()),
            ));
        }
        let lenient = emu.has(Fault::KeyIdCaseInsensitive);
        let key_of = |id: &str| match lenient {
            true => id.to_ascii_lowercase(),
            false => id.to_string(),
        };
        if let Some(id) = keys.iter().find(|id| !id_ok(&key_of(id), "skey-", 8)) {
            return Err(fail(
                c.malformed_key,
                format!("key pair id `{id}` is malformed"),
            ));
        }
        let world = emu.lock();
        match keys.iter().find(|k| {
            !world
                .key_pairs
                .iter()
                .any(|kp| kp.product == c.product && kp.id == key_of(k) && region_ok(&kp.region))
        }) {
            Some(k) => Err(fail(
                c.key_not_found,
                format!("key pair `{k}` does not exist"),
            )),
            None => Ok(()),
        }
    };
    // The other order: the keys before the instances.
    if emu.reads(Variant::ReversePrecedence) {
        match list(&req.params, "KeyIds") {
            List::Missing => return Err(missing("KeyIds")),
            List::WrongType => {
                return Err(fail("InvalidParameter", "KeyIds must be a list of strings"))
            }
            List::Items(keys) => key_checks(&keys)?,
        }
    }
    let instances = match list(&req.params, "InstanceIds") {
        List::Missing => return Err(missing("InstanceIds")),
        List::WrongType => {
            return Err(fail(
                "InvalidParameter",
                "InstanceIds must be a list of strings",
            ))
        }
        List::Items(i) => i,
    };
    let keys = match list(&req.params, "KeyIds") {
        List::Missing => return Err(missing("KeyIds")),
        List::WrongType => {
            return Err(fail("InvalidParameter", "KeyIds must be a list of strings"))
        }
        List::Items(k) => k,
    };
    let force = boolean(&req.params, "ForceStop")
        .map_err(|_| fail("InvalidParameterValue", "ForceStop must be true or false"))?
        .unwrap_or(false);
    if instances.is_empty() {
        return Err(fail(c.empty_list, "InstanceIds is empty"));
    }
    if keys.is_empty() {
        return Err(fail(c.empty_list, "KeyIds is empty"));
    }
    if let Some(limit) = c.instance_limit {
        let limit = if emu.has(Fault::LimitOffByOne) {
            limit + 1
        } else {
            limit
        };
        if instances.len() > limit {
            return Err(fail(
                "InvalidParameterValue.LimitExceeded",
                format!(
                    "InstanceIds holds {} items; the limit is 100",
                    instances.len()
                ),
            ));
        }
    }
    if keys.len() > 100 {
        return Err(fail(
            "InvalidParameterValue.LimitExceeded",
            format!("KeyIds holds {} items; the limit is 100", keys.len()),
        ));
    }
    let lax = emu.has(Fault::LaxInstanceIdPattern) && c.product == Product::Cvm;
    let any_form = emu.reads(Variant::EcmAnyIdForm) && c.product == Product::Ecm;
    for id in instances.iter().filter(|_| !any_form) {
        let ok = if lax {
            id.starts_with(c.instance_prefix)
        } else {
            id_ok(id, c.instance_prefix, 8)
        };
        if !ok {
            return Err(fail(
                c.malformed_instance,
                format!("instance id `{id}` is malformed"),
            ));
        }
    }
    for id in &keys {
        let ok = id_ok(id, "skey-", 8)
            || (emu.has(Fault::KeyIdCaseInsensitive)
                && id_ok(&id.to_ascii_lowercase(), "skey-", 8));
        if !ok {
            return Err(fail(
                c.malformed_key,
                format!("key pair id `{id}` is malformed"),
            ));
        }
    }
    if emu.has(Fault::NotFoundForRepeatedId)
        && c.product == Product::Cvm
        && has_duplicates(&instances)
    {
        return Err(fail(
            c.instance_not_found,
            "an instance named twice is reported as not existing",
        ));
    }
    if emu.reads(Variant::DuplicateIdsRejected)
        && (has_duplicates(&instances) || has_duplicates(&keys))
    {
        return Err(fail(
            "InvalidParameterValue",
            "an id is named twice in one request",
        ));
    }
    let instances = dedup(&instances);
    let keys: Vec<String> = dedup(&keys)
        .into_iter()
        .map(|k| {
            if emu.has(Fault::KeyIdCaseInsensitive) {
                k.to_ascii_lowercase()
            } else {
                k
            }
        })
        .collect();

    let mut world = emu.lock();
    let region = req.region.as_deref();
    let in_region = |r: &str| region.is_none_or(|want| want == r);
    for k in &keys {
        if !world
            .key_pairs
            .iter()
            .any(|kp| kp.product == c.product && kp.id == *k && in_region(&kp.region))
        {
            return Err(fail(
                c.key_not_found,
                format!("key pair `{k}` does not exist"),
            ));
        }
    }
    // Check every instance before changing any, unless the non-atomic fault is injected.
    let atomic = !emu.has(Fault::NonAtomicBatch);
    let check = |inst: Option<&Instance>, id: &str| -> Result<(), Fail> {
        let Some(inst) = inst.filter(|i| in_region(&i.region)) else {
            return Err(fail(
                c.instance_not_found,
                format!("instance `{id}` does not exist"),
            ));
        };
        if let Some(code) = c.windows {
            if inst.os == Os::Windows && !emu.has(Fault::WindowsAccepted) {
                return Err(fail(
                    code,
                    format!("instance `{id}` runs Windows; key pairs need Linux"),
                ));
            }
        }
        let ecm = c.product == Product::Ecm;
        if ecm && inst.os == Os::Windows && emu.has(Fault::ForeignCode) {
            return Err(fail(
                "InvalidInstance.NotSupported",
                format!("instance `{id}` runs Windows"),
            ));
        }
        if ecm && inst.os == Os::Windows && emu.reads(Variant::EcmRejectsWindows) {
            return Err(fail(
                c.instance_not_found,
                format!("instance `{id}` runs Windows and does not support key pairs"),
            ));
        }
        let running = inst.state == InstanceState::Running;
        let stopped = inst.state == InstanceState::Stopped;
        if ecm && !stopped && !(running && force) && emu.reads(Variant::EcmRejectsRunning) {
            return Err(fail(
                c.instance_not_found,
                format!(
                    "instance `{id}` is {}; shut it down (or set ForceStop if it is RUNNING)",
                    state_upper(inst.state)
                ),
            ));
        }
        let forced = force && running && !emu.has(Fault::ForceStopIgnored);
        let shut_down = !force
            && running
            && (emu.reads(Variant::RunningShutDownNormally)
                || emu.has(Fault::RunningAcceptedWithoutShutdown));
        if c.checks_state && inst.state != InstanceState::Stopped && !forced && !shut_down {
            let code = match inst.state {
                InstanceState::Running => "UnsupportedOperation.InstanceStateRunning",
                InstanceState::Pending => "UnsupportedOperation.InstanceStatePending",
                InstanceState::Stopping => "UnsupportedOperation.InstanceStateStopping",
                InstanceState::Starting => "UnsupportedOperation.InstanceStateStarting",
                _ => "UnsupportedOperation.InstanceStateRebooting",
            };
            return Err(fail(
                code,
                format!("instance `{id}` is {}; only STOPPED instances (or RUNNING with ForceStop=true) are supported", state_upper(inst.state)),
            ));
        }
        Ok(())
    };
    if atomic {
        for id in &instances {
            check(world.instance(c.product, id), id)?;
        }
    }
    if !associate && emu.reads(Variant::UnbindNotBoundRejected) {
        if let Some(id) = instances.iter().find(|id| {
            world
                .instance(c.product, id)
                .is_some_and(|i| keys.iter().any(|k| !i.keys.contains(k)))
        }) {
            let code = match c.product {
                Product::Ecm => "InvalidParameterValue.InvalidKeyPairId",
                _ => "FailedOperation.DisassociateKeyPairFailed",
            };
            return Err(fail(
                code,
                format!("a named key is not bound to instance `{id}`"),
            ));
        }
    }
    for id in &instances {
        if !atomic {
            check(world.instance(c.product, id), id)?;
        }
        let inst = world
            .instance_mut(c.product, id, |_| true)
            .expect("checked above");
        if inst.state == InstanceState::Running
            && ((force && emu.reads(Variant::ForceStopLeavesStopped))
                || (!force
                    && c.checks_state
                    && emu.reads(Variant::RunningShutDownNormally)
                    && !emu.has(Fault::RunningAcceptedWithoutShutdown)))
        {
            inst.state = InstanceState::Stopped;
        }
        // A forced operation stops, changes and starts the instance again (current CVM
        // definition), so the state it ends in is the state it had.
        if associate {
            if emu.has(Fault::AssociateAppends) {
                for k in &keys {
                    if !inst.keys.contains(k) {
                        inst.keys.push(k.clone());
                    }
                }
            } else {
                inst.keys = keys.clone();
            }
        } else if !emu.has(Fault::DisassociateNoop) {
            if let Some(read) = super::race::read_keys(c.product, id) {
                inst.keys = read; // fault lost-update: writes back what it read
            }
            inst.keys.retain(|k| !keys.contains(k));
        }
    }
    Ok(Params::new())
}

/// The instances of `product`, in world order, that `wanted` names (all when `None`).
fn wanted_instances<'a>(
    world: &'a Held,
    product: Product,
    wanted: Option<&[String]>,
) -> Box<dyn Iterator<Item = &'a Instance> + 'a> {
    match wanted {
        None => Box::new(world.instances.iter().filter(move |i| i.product == product)),
        Some(ids) => {
            // Every instance with a wanted id and the product, by position, so in world order.
            let mut at: Vec<usize> = ids
                .iter()
                .filter_map(|id| world.at.get(id.as_str()))
                .flatten()
                .copied()
                .filter(|&n| world.instances[n].product == product)
                .collect();
            at.sort_unstable();
            at.dedup();
            Box::new(at.into_iter().map(move |n| &world.instances[n]))
        }
    }
}

/// One CVM `Filters` item the emulator reads: `tag:KEY` (the tag with one of the values),
/// `tag-key`, `tag-value`, `instance-id`, `key-name` (CVM 2017-03-12 DescribeInstances and
/// DescribeKeyPairs, `Filters`; a filter's values are alternatives, the filters all apply).
enum CvmFilter {
    Tag(String, Vec<String>),
    TagKey(Vec<String>),
    TagValue(Vec<String>),
    Id(Vec<String>),
}

impl CvmFilter {
    fn keeps(&self, id: &str, tags: &std::collections::BTreeMap<String, String>) -> bool {
        match self {
            CvmFilter::Tag(key, values) => tags.get(key).is_some_and(|v| values.contains(v)),
            CvmFilter::TagKey(keys) => keys.iter().any(|k| tags.contains_key(k)),
            CvmFilter::TagValue(values) => tags.values().any(|v| values.contains(v)),
            CvmFilter::Id(ids) => ids.iter().any(|i| i == id),
        }
    }
}

/// `Filters` as a JSON list of `{Name, Values}` (TC3 bodies carry it as sent); `id_filter` is
/// the name that filters on the resource id (`instance-id`, `key-name`: keys are named by id
/// here).
fn cvm_filters(params: &Params, id_filter: &str) -> Result<Vec<CvmFilter>, Fail> {
    let Some(raw) = params.get("Filters") else {
        return Ok(vec![]);
    };
    let bad = || fail("InvalidFilter", "Filters is a list of {Name, Values}");
    let items = raw.as_array().ok_or_else(bad)?;
    if items.len() > 10 {
        return Err(fail(
            "InvalidFilterValue.LimitExceeded",
            "at most 10 Filters per request",
        ));
    }
    let mut out = Vec::new();
    for item in items {
        let name = item.get("Name").and_then(Value::as_str).ok_or_else(bad)?;
        let values: Vec<String> = item
            .get("Values")
            .and_then(Value::as_array)
            .ok_or_else(bad)?
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or_else(bad)?;
        if values.len() > 5 {
            return Err(fail(
                "InvalidFilterValue.LimitExceeded",
                "at most 5 Values per filter",
            ));
        }
        out.push(match name {
            "tag-key" => CvmFilter::TagKey(values),
            "tag-value" => CvmFilter::TagValue(values),
            n if n == id_filter => CvmFilter::Id(values),
            n => match n.strip_prefix("tag:") {
                Some(key) if !key.is_empty() => CvmFilter::Tag(key.to_string(), values),
                _ => {
                    return Err(fail(
                        "InvalidFilter",
                        format!("the filter `{n}` is not supported"),
                    ))
                }
            },
        });
    }
    Ok(out)
}

/// `Offset` and `Limit` (default 0 and 20, at most 100), as JSON numbers or form strings.
fn offset_limit(params: &Params) -> Result<(usize, usize), Fail> {
    let number = |name: &str, default: usize| match params.get(name) {
        None => Ok(default),
        Some(Value::Number(n)) => n.as_u64().map(|n| n as usize).ok_or(()),
        Some(Value::String(s)) => s.parse::<usize>().map_err(|_| ()),
        Some(_) => Err(()),
    };
    let offset = number("Offset", 0).map_err(|_| {
        fail(
            "InvalidParameterValue",
            "Offset must be a non-negative integer",
        )
    })?;
    let limit = number("Limit", 20).map_err(|_| {
        fail(
            "InvalidParameterValue",
            "Limit must be a non-negative integer",
        )
    })?;
    if limit > 100 {
        return Err(fail("InvalidParameterValue", "Limit is at most 100"));
    }
    Ok((offset, limit))
}

/// CVM's `Tags` list: `[{Key, Value}]`.
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct TagOut<'a> {
    key: &'a str,
    value: &'a str,
}

fn tags_out(tags: &std::collections::BTreeMap<String, String>) -> Vec<TagOut<'_>> {
    tags.iter()
        .map(|(key, value)| TagOut { key, value })
        .collect()
}

/// The answer is written straight from the world (no JSON tree): the runner observes every
/// CVM case through this call, so it is the emulator's busiest path. `InstanceIds` or
/// `Filters` (not both: "参数不支持同时指定`InstanceIds`和`Filters`"), paged by `Offset`/`Limit`;
/// `TotalCount` counts every match, not the page.
fn cvm_describe_instances(emu: &Emulator, req: &ParsedRequest, rid: &str) -> HttpResponse {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Described<'a> {
        instance_id: &'a str,
        instance_state: &'static str,
        os_name: &'static str,
        login_settings: LoginSettings<'a>,
        placement: Placement,
        tags: Vec<TagOut<'a>>,
    }
    #[derive(serde::Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct LoginSettings<'a> {
        key_ids: &'a [String],
    }
    #[derive(serde::Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Placement {
        zone: String,
    }
    #[derive(serde::Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Answer<'a> {
        total_count: usize,
        instance_set: Vec<Described<'a>>,
    }
    let err = |f: Fail| tencent_api3::error(f.code, &f.message, rid);
    let filters = match cvm_filters(&req.params, "instance-id") {
        Ok(f) => f,
        Err(f) => return err(f),
    };
    let (offset, limit) = match offset_limit(&req.params) {
        Ok(p) => p,
        Err(f) => return err(f),
    };
    let wanted = match list(&req.params, "InstanceIds") {
        List::Items(ids) => Some(ids),
        _ => None,
    };
    if wanted.is_some() && !filters.is_empty() {
        return err(fail(
            "InvalidParameterCombination",
            "InstanceIds and Filters cannot be given together",
        ));
    }
    let world = emu.lock();
    let matching: Vec<&Instance> = wanted_instances(&world, Product::Cvm, wanted.as_deref())
        .filter(|i| req.region.as_deref().is_none_or(|r| r == i.region))
        .filter(|i| filters.iter().all(|f| f.keeps(&i.id, &i.tags)))
        .collect();
    let total = matching.len();
    let set: Vec<Described> = matching
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|i| Described {
            instance_id: &i.id,
            instance_state: state_upper(i.state),
            os_name: match i.os {
                Os::Linux => "TencentOS Server 3.1",
                Os::Windows => "Windows Server 2019",
            },
            login_settings: LoginSettings { key_ids: &i.keys },
            placement: Placement {
                zone: format!("{}-1", i.region),
            },
            tags: tags_out(&i.tags),
        })
        .collect();
    tencent_api3::ok_with(
        rid,
        &Answer {
            total_count: total,
            instance_set: set,
        },
    )
}

/// CVM DescribeKeyPairs: the key pairs of the request's region, by `KeyIds` or `Filters` (not
/// both), paged by `Offset`/`Limit`, each with the instances it is bound to and its tags.
fn cvm_describe_key_pairs(emu: &Emulator, req: &ParsedRequest) -> Result<Params, Fail> {
    let filters = cvm_filters(&req.params, "key-name")?;
    let (offset, limit) = offset_limit(&req.params)?;
    let wanted = match list(&req.params, "KeyIds") {
        List::Items(ids) => Some(ids),
        _ => None,
    };
    if wanted.is_some() && !filters.is_empty() {
        return Err(fail(
            "InvalidParameterCombination",
            "KeyIds and Filters cannot be given together",
        ));
    }
    let world = emu.lock();
    let matching: Vec<&crate::world::KeyPair> = world
        .key_pairs
        .iter()
        .filter(|k| k.product == Product::Cvm)
        .filter(|k| req.region.as_deref().is_none_or(|r| r == k.region))
        .filter(|k| wanted.as_ref().is_none_or(|w| w.contains(&k.id)))
        .filter(|k| filters.iter().all(|f| f.keeps(&k.id, &k.tags)))
        .collect();
    let set: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(limit)
        .map(|k| {
            // Fault lagging-view: the keys as they were before the last change.
            let lagged = world
                .stores
                .lagged
                .as_ref()
                .filter(|_| emu.has(Fault::LaggingView));
            let bound: Vec<&str> = world
                .instances
                .iter()
                .filter(|i| {
                    let keys = lagged.and_then(|l| l.get(&i.id)).unwrap_or(&i.keys);
                    i.product == Product::Cvm && i.region == k.region && keys.contains(&k.id)
                })
                .map(|i| i.id.as_str())
                .collect();
            json!({
                "KeyId": k.id,
                "KeyName": k.id,
                "AssociatedInstanceIds": bound,
                "Tags": tags_out(&k.tags),
            })
        })
        .collect();
    let mut out = Params::new();
    out.insert("TotalCount".into(), json!(matching.len()));
    out.insert("KeyPairSet".into(), Value::Array(set));
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Tencent API 2.0: UnBindInstanceKey (seed 002). Codes from the family's common table: 4000 bad
// parameter, 5000 resource not found, 5100 operation failed.

fn v2(emu: &Emulator, req: &ParsedRequest) -> HttpResponse {
    // The SDK sends `UnBindInstanceKey`; the seed's example spells `unBindInstanceKey`.
    let spelt = match emu.has(Fault::ActionCaseRejected) {
        true => req.action == "UnBindInstanceKey",
        false => req.action.eq_ignore_ascii_case("UnBindInstanceKey"),
    };
    if !spelt {
        return tencent_v2::respond(
            4000,
            &format!("action `{}` is not served", req.action),
            Params::new(),
        );
    }
    if one_based_rejected(emu, req) {
        return tencent_v2::respond(4000, "instanceIds items are numbered from 0", Params::new());
    }
    if let Some(unknown) = unknown_param(req, true, &["keyId", "instanceIds"]) {
        return tencent_v2::respond(
            4000,
            &format!("the parameter `{unknown}` is not defined for UnBindInstanceKey"),
            Params::new(),
        );
    }
    match unbind_v2(emu, req) {
        Ok(()) => tencent_v2::respond(0, "", Params::new()),
        Err((code, message)) => tencent_v2::respond(code, &message, Params::new()),
    }
}

fn unbind_v2(emu: &Emulator, req: &ParsedRequest) -> Result<(), (i64, String)> {
    if emu.reads(Variant::ReversePrecedence) {
        // The other order: the instances before the key.
        match list(&req.params, "instanceIds") {
            List::Missing => {
                return Err((4000, "the required parameter instanceIds is missing".into()))
            }
            List::Items(i) if i.is_empty() => return Err((4000, "instanceIds is empty".into())),
            List::Items(i) => {
                if let Some(bad) = i.iter().find(|i| !id_ok(i, "ins-", 8)) {
                    return Err((4000, format!("instance id `{bad}` is malformed")));
                }
            }
            List::WrongType => {}
        }
    }
    let key = match req.params.get("keyId") {
        None => return Err((4000, "the required parameter keyId is missing".into())),
        Some(Value::String(k)) => k.clone(),
        Some(_) => return Err((4000, "keyId must be a string".into())),
    };
    let instances = match list(&req.params, "instanceIds") {
        List::Missing => {
            return Err((4000, "the required parameter instanceIds is missing".into()))
        }
        List::WrongType => {
            return Err((
                4000,
                "instanceIds must be instanceIds.0, instanceIds.1, ...".into(),
            ))
        }
        List::Items(i) if i.is_empty() => return Err((4000, "instanceIds is empty".into())),
        List::Items(i) if emu.reads(Variant::DuplicateIdsRejected) && has_duplicates(&i) => {
            return Err((4000, "an instance is named twice".into()))
        }
        List::Items(i) => dedup(&i),
    };
    if !id_ok(&key, "skey-", 8) {
        return Err((4000, format!("keyId `{key}` is malformed")));
    }
    if let Some(bad) = instances.iter().find(|i| !id_ok(i, "ins-", 8)) {
        return Err((4000, format!("instance id `{bad}` is malformed")));
    }
    let mut world = emu.lock();
    if !world
        .key_pairs
        .iter()
        .any(|k| k.product == Product::Cvm && k.id == key)
    {
        return Err((5000, format!("key `{key}` does not exist")));
    }
    let atomic = !emu.has(Fault::NonAtomicBatch);
    let check = |world: &Held, id: &str| -> Result<(), (i64, String)> {
        let Some(inst) = world.instance(Product::Cvm, id) else {
            return Err((5000, format!("instance `{id}` does not exist")));
        };
        if inst.os == Os::Windows && !emu.has(Fault::WindowsAccepted) {
            return Err((5100, format!("instance `{id}` runs Windows")));
        }
        if inst.state != InstanceState::Stopped {
            return Err((5100, format!("instance `{id}` is not shut down")));
        }
        Ok(())
    };
    if atomic {
        for id in &instances {
            check(&world, id)?;
        }
    }
    if emu.reads(Variant::UnbindNotBoundRejected) {
        if let Some(id) = instances.iter().find(|id| {
            world
                .instance(Product::Cvm, id)
                .is_some_and(|i| !i.keys.contains(&key))
        }) {
            return Err((5100, format!("key `{key}` is not bound to `{id}`")));
        }
    }
    for id in &instances {
        if !atomic {
            check(&world, id)?;
        }
        if emu.has(Fault::DisassociateNoop) {
            continue;
        }
        // Fault legacy-second-store: the API's own store, filled from the instance once.
        let second = emu.has(Fault::LegacySecondStore).then(|| {
            let now = world.instance(Product::Cvm, id).map(|i| i.keys.clone());
            let store = world.stores.legacy.entry(id.clone());
            let kept = store.or_insert_with(|| now.unwrap_or_default());
            kept.retain(|k| *k != key);
            kept.clone()
        });
        if let Some(inst) = world.instance_mut(Product::Cvm, id, |_| true) {
            if let Some(read) = super::race::read_keys(Product::Cvm, id) {
                inst.keys = read; // fault lost-update: writes back what it read
            }
            inst.keys.retain(|k| *k != key);
            if let Some(kept) = second {
                inst.keys = kept;
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Alibaba ECS 2014-05-26: DetachKeyPair (seed 003) per item, plus the Describe calls.

fn aliyun(emu: &Emulator, req: &ParsedRequest, rid: &str) -> HttpResponse {
    let format = if emu.has(Fault::XmlIgnored) {
        ResponseFormat::Json
    } else {
        req.format
    };
    if req.version.as_deref() != Some("2014-05-26") {
        return aliyun_rpc::error(
            400,
            "InvalidVersion",
            "Specified parameter Version is not valid; ECS is served at 2014-05-26",
            rid,
            format,
        );
    }
    let result = match req.action.as_str() {
        "DetachKeyPair" => detach(emu, req),
        "DescribeInstances" => ecs_describe_instances(emu, req),
        "DescribeKeyPairs" => ecs_describe_key_pairs(emu, req),
        _ => Err(Fail {
            code: "InvalidAction.NotFound",
            message: format!("Specified api `{}` is not found", req.action),
            status: 404,
        }),
    };
    match result {
        Ok(fields) if emu.has(Fault::XmlRootMisnamed) => {
            aliyun_rpc::ok(&format!("{}s", req.action), format, rid, fields)
        }
        Ok(fields) => aliyun_rpc::ok(&req.action, format, rid, fields),
        Err(f) => aliyun_rpc::error(f.status, f.code, &f.message, rid, format),
    }
}

fn string_param<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    params.get(name).and_then(Value::as_str)
}

/// `InstanceIds` is a string holding a JSON array (seed 003's table: String, example `["i-…"]`).
fn json_ids(raw: &str) -> Option<Vec<String>> {
    serde_json::from_str::<Vec<String>>(raw).ok()
}

fn detach(emu: &Emulator, req: &ParsedRequest) -> Result<Params, Fail> {
    if emu.reads(Variant::ReversePrecedence) {
        // The other order: the required parameters checked last to first.
        for name in ["KeyPairName", "InstanceIds", "RegionId"] {
            if string_param(&req.params, name).is_none() {
                return Err(fail("MissingParameter", format!("The input parameter \"{name}\" that is mandatory for processing this request is not supplied.")));
            }
        }
    }
    let Some(region) = string_param(&req.params, "RegionId") else {
        return Err(fail("MissingParameter", "The input parameter \"RegionId\" that is mandatory for processing this request is not supplied."));
    };
    let Some(raw) = string_param(&req.params, "InstanceIds") else {
        return Err(fail("MissingParameter", "The input parameter \"InstanceIds\" that is mandatory for processing this request is not supplied."));
    };
    let Some(name) = string_param(&req.params, "KeyPairName") else {
        return Err(fail("MissingParameter", "The input parameter \"KeyPairName\" that is mandatory for processing this request is not supplied."));
    };
    let key_known = |world: &Held| {
        world.key_pairs.iter().any(|k| {
            k.product == Product::Ecs
                && k.id == name
                && (k.region == region || emu.reads(Variant::KeyPairAnyRegion))
        })
    };
    let unknown_key = || {
        fail(
            "InvalidKeyPairName.NotFound",
            format!("The specified KeyPairName `{name}` does not exist."),
        )
    };
    if emu.reads(Variant::ReversePrecedence) && !key_known(&emu.lock()) {
        return Err(unknown_key());
    }
    // The code for a bad InstanceIds: no document ties one to these situations.
    let (not_json, bad_ids) = if emu.reads(Variant::EcsMalformedIdsCode) {
        (
            "InvalidInstanceIds.MalFormed",
            "InvalidInstanceIds.MalFormed",
        )
    } else {
        ("InvalidParameter", "InvalidInstanceIds.ValueNotSupported")
    };
    let spaced = emu.has(Fault::SpacedJsonRejected) && raw.contains(", ");
    let Some(ids) = json_ids(raw).filter(|_| !spaced) else {
        return Err(fail(
            not_json,
            "InstanceIds must be a JSON array of instance ids",
        ));
    };
    if ids.is_empty() || ids.len() > 50 {
        return Err(fail(
            bad_ids,
            format!("InstanceIds must hold 1 to 50 ids; it holds {}", ids.len()),
        ));
    }
    if emu.reads(Variant::DuplicateIdsRejected) && has_duplicates(&ids) {
        return Err(fail(
            "InvalidParameter",
            "An instance is named twice in InstanceIds.",
        ));
    }
    // Instance ids: `i-` and lower-case letters or digits (seed 003's examples); the other
    // reading looks every id up, and one of another form names no instance.
    let as_unknown = emu.reads(Variant::EcsIdsAsUnknownInstances);
    if let Some(bad) = ids.iter().filter(|_| !as_unknown).find(|id| {
        !id.strip_prefix("i-").is_some_and(|r| {
            (1..=30).contains(&r.len())
                && r.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
    }) {
        return Err(fail(
            bad_ids,
            format!("The specified InstanceIds contains an invalid id `{bad}`."),
        ));
    }
    let mut world = emu.lock();
    if !key_known(&world) {
        return Err(unknown_key());
    }
    let ids = dedup(&ids);
    if !emu.has(Fault::WindowsAccepted) {
        if let Some(w) = ids.iter().find(|id| {
            world
                .instance(Product::Ecs, id)
                .is_some_and(|i| i.region == region && i.os == Os::Windows)
        }) {
            return Err(Fail {
                code: "DependencyViolation.WindowsInstance",
                message: format!(
                    "The instance creating is windows, cannot use ssh key pair to login ({w})"
                ),
                status: 403,
            });
        }
    }
    if emu.reads(Variant::EcsUnknownInstanceRejectsRequest) {
        if let Some(unknown) = ids.iter().find(|id| {
            world
                .instance(Product::Ecs, id)
                .is_none_or(|i| i.region != region)
        }) {
            return Err(fail(
                "InvalidInstanceIds.ValueNotSupported",
                format!("The specified instance `{unknown}` does not exist."),
            ));
        }
    }
    let mut results = Vec::new();
    let mut failed = 0;
    for id in &ids {
        let inst = world.instance_mut(Product::Ecs, id, |i| i.region == region);
        match inst {
            Some(inst)
                if emu.reads(Variant::UnbindNotBoundRejected)
                    && !inst.keys.iter().any(|k| k == name) =>
            {
                failed += 1;
                results.push(json!({"InstanceId": id, "Code": "InvalidKeyPairName.NotFound", "Message": "The specified key pair is not bound to the instance.", "Success": false}));
            }
            Some(inst) => {
                if !emu.has(Fault::DisassociateNoop) {
                    if let Some(read) = super::race::read_keys(Product::Ecs, id) {
                        inst.keys = read; // fault lost-update: writes back what it read
                    }
                    inst.keys.retain(|k| k != name);
                }
                results.push(json!({"InstanceId": id, "Code": "200", "Message": "successful", "Success": true}));
            }
            None => {
                failed += 1;
                results.push(json!({"InstanceId": id, "Code": "InvalidInstanceId.NotFound", "Message": "The specified instance does not exist.", "Success": false}));
            }
        }
    }
    let fail_count = if emu.has(Fault::InconsistentFailCount) {
        ids.len() - failed
    } else {
        failed
    };
    let mut out = Params::new();
    out.insert("KeyPairName".into(), json!(name));
    out.insert("TotalCount".into(), json!(ids.len()));
    out.insert("FailCount".into(), json!(fail_count));
    out.insert("Results".into(), json!({"Result": results}));
    Ok(out)
}

/// `Tag.N.Key` / `Tag.N.Value` (N from 1 to 20, ECS 2014-05-26 DescribeInstances and
/// DescribeKeyPairs): a resource matches when it carries every tag named (any value where only
/// the key is given).
fn ecs_tags(params: &Params) -> Vec<(String, Option<String>)> {
    (1..=20)
        .filter_map(|n| {
            let key = string_param(params, &format!("Tag.{n}.Key"))?;
            let value = string_param(params, &format!("Tag.{n}.Value")).map(str::to_string);
            Some((key.to_string(), value))
        })
        .collect()
}

fn ecs_tagged(
    wanted: &[(String, Option<String>)],
    tags: &std::collections::BTreeMap<String, String>,
) -> bool {
    wanted.iter().all(|(k, v)| {
        tags.get(k)
            .is_some_and(|have| v.as_ref().is_none_or(|v| v == have))
    })
}

/// `PageNumber` (from 1, default 1) and `PageSize` (default 10, at most `max`).
fn ecs_page(params: &Params, max: usize) -> Result<(usize, usize), Fail> {
    let number = |name: &str, default: usize| match params.get(name) {
        None => Ok(default),
        Some(Value::String(s)) => s.parse::<usize>().map_err(|_| ()),
        Some(Value::Number(n)) => n.as_u64().map(|n| n as usize).ok_or(()),
        Some(_) => Err(()),
    };
    let page = number("PageNumber", 1)
        .ok()
        .filter(|&p| p >= 1)
        .ok_or_else(|| fail("InvalidParameter", "PageNumber starts from 1"))?;
    let size = number("PageSize", 10)
        .ok()
        .filter(|&s| (1..=max).contains(&s))
        .ok_or_else(|| fail("InvalidParameter", format!("PageSize is from 1 to {max}")))?;
    Ok((page, size))
}

/// Alibaba's `Tags` object: `{"Tag": [{TagKey, TagValue}]}`.
fn ecs_tags_out(tags: &std::collections::BTreeMap<String, String>) -> Value {
    let list: Vec<Value> = tags
        .iter()
        .map(|(k, v)| json!({"TagKey": k, "TagValue": v}))
        .collect();
    json!({ "Tag": list })
}

fn ecs_describe_instances(emu: &Emulator, req: &ParsedRequest) -> Result<Params, Fail> {
    let (page, size) = ecs_page(&req.params, 100)?;
    let tags = ecs_tags(&req.params);
    let world = emu.lock();
    let wanted = string_param(&req.params, "InstanceIds").and_then(json_ids);
    let region = string_param(&req.params, "RegionId");
    let matching: Vec<&Instance> = wanted_instances(&world, Product::Ecs, wanted.as_deref())
        .filter(|i| region.is_none_or(|r| r == i.region))
        .filter(|i| ecs_tagged(&tags, &i.tags))
        .collect();
    let list: Vec<Value> = matching
        .iter()
        .skip((page - 1).saturating_mul(size))
        .take(size)
        .map(|i| {
            let mut out = json!({
                "InstanceId": i.id,
                "RegionId": i.region,
                "Status": state_name(i.state),
                "OSType": match i.os { Os::Linux => "linux", Os::Windows => "windows" },
                "KeyPairName": i.keys.first().cloned().unwrap_or_default(),
            });
            if !i.tags.is_empty() {
                out["Tags"] = ecs_tags_out(&i.tags);
            }
            out
        })
        .collect();
    let mut out = Params::new();
    out.insert("TotalCount".into(), json!(matching.len()));
    out.insert("PageNumber".into(), json!(page));
    out.insert("PageSize".into(), json!(size));
    out.insert("Instances".into(), json!({"Instance": list}));
    Ok(out)
}

/// ECS DescribeKeyPairs: the region's key pairs, by `KeyPairName` (an exact name here; the
/// document's `*` patterns are not served) and tags, paged (`PageSize` at most 50).
fn ecs_describe_key_pairs(emu: &Emulator, req: &ParsedRequest) -> Result<Params, Fail> {
    let (page, size) = ecs_page(&req.params, 50)?;
    let tags = ecs_tags(&req.params);
    let world = emu.lock();
    let wanted = string_param(&req.params, "KeyPairName");
    let region = string_param(&req.params, "RegionId");
    let matching: Vec<&crate::world::KeyPair> = world
        .key_pairs
        .iter()
        .filter(|k| k.product == Product::Ecs)
        .filter(|k| region.is_none_or(|r| r == k.region))
        .filter(|k| wanted.is_none_or(|w| w == k.id))
        .filter(|k| ecs_tagged(&tags, &k.tags))
        .collect();
    let list: Vec<Value> = matching
        .iter()
        .skip((page - 1).saturating_mul(size))
        .take(size)
        .map(|k| {
            let mut out = json!({"KeyPairName": k.id});
            if !k.tags.is_empty() {
                out["Tags"] = ecs_tags_out(&k.tags);
            }
            out
        })
        .collect();
    let mut out = Params::new();
    out.insert("TotalCount".into(), json!(matching.len()));
    out.insert("PageNumber".into(), json!(page));
    out.insert("PageSize".into(), json!(size));
    out.insert("KeyPairs".into(), json!({"KeyPair": list}));
    Ok(out)
}
