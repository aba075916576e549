//! APIs the emulator serves from their spec file alone: an API of a known family whose effect is
//! in the specs' vocabulary (replace, remove or add key bindings of instances) needs no code
//! here. The hand-written handlers in [`super::actions`] stay the emulator's own reading of the
//! five documents; this module is its reading of a spec file, for every other API.
//!
//! It reads the spec's parameters, rules and effect with its own code, never the oracle's: the
//! checks run in the spec's rule order, each refusal answers the rule's first stated code (a
//! judgement code only where no code is stated), a per-item batch reports each item, an
//! all-or-nothing batch refuses the whole request for one bad item, and a success changes the
//! world as the effect says. The fault catalogue's faults that have a meaning here (an effect
//! that appends or does nothing, a limit off by one, Windows accepted, a FailCount that counts
//! successes, JSON for XML) apply as they do to the hand-written APIs, so the self-test's
//! faults can be shown caught on an API that has no code of its own.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use super::{dedup, Emulator, Fault, Held, Variant};
use crate::protocol::{
    aliyun_rpc, tencent_api3, tencent_v2, FamilyId, HttpResponse, Params, ParsedRequest,
};
use crate::spec::{
    ApiSpec, BatchMode, Check, EffectKind, ErrorRef, FamilySpec, IdentifiedBy, LoadedApi,
    ParamType, Parameter, ResourceKind, Rule, Situation, SpecSet,
};

/// The `(family, version, action)` of each API the hand-written handlers serve; every other
/// API of the emulator's specs is served here.
const HAND_WRITTEN: &[(FamilyId, &str, &str)] = &[
    (
        FamilyId::TencentApi3,
        "2017-03-12",
        "AssociateInstancesKeyPairs",
    ),
    (
        FamilyId::TencentApi3,
        "2017-03-12",
        "DisassociateInstancesKeyPairs",
    ),
    (
        FamilyId::TencentApi3,
        "2019-07-19",
        "DisassociateInstancesKeyPairs",
    ),
    (FamilyId::TencentV2, "", "UnBindInstanceKey"),
    (FamilyId::AliyunRpc, "2014-05-26", "DetachKeyPair"),
];

/// The spec-served API this request calls, if any: same family, version and action (API 2.0
/// has no version; its action is matched without case, as its examples spell it both ways).
pub(super) fn find<'a>(set: &'a SpecSet, req: &ParsedRequest) -> Option<&'a LoadedApi> {
    let version = req.version.as_deref().unwrap_or("");
    let same_action = |a: &str| match req.family {
        FamilyId::TencentV2 => a.eq_ignore_ascii_case(&req.action),
        _ => a == req.action,
    };
    let hand_written = HAND_WRITTEN.iter().any(|(f, v, a)| {
        *f == req.family && (req.family == FamilyId::TencentV2 || *v == version) && same_action(a)
    });
    if hand_written {
        return None;
    }
    set.apis.iter().find(|api| {
        let id = &api.spec.api;
        id.family == req.family
            && (req.family == FamilyId::TencentV2 || id.version.as_deref() == Some(version))
            && same_action(&id.action)
    })
}

/// A refusal: the rule's code, its HTTP status where the family ties one, and a message.
struct Refusal {
    code: String,
    status: u16,
    message: String,
}

impl Refusal {
    fn of(emu: &Emulator, rule: &Rule, message: String) -> Refusal {
        // The code of the other reading the emulator takes, where it takes one; else a stated
        // code; a judgement code only where the rule states none.
        let code: Option<&ErrorRef> = taken(emu, rule)
            .or_else(|| rule.errors.iter().find(|e| e.judgement.is_none()))
            .or_else(|| rule.errors.first());
        Refusal {
            code: code.map_or_else(|| "InvalidParameter".to_string(), |e| e.code.clone()),
            status: code.and_then(|e| e.status).unwrap_or(400),
            message,
        }
    }
}

/// Whether the emulator takes any of these readings (`--variant NAME`).
fn reads_any(emu: &Emulator, names: &[String]) -> bool {
    names
        .iter()
        .any(|n| n.parse::<Variant>().is_ok_and(|v| emu.reads(v)))
}

/// The code a variant the emulator takes answers for this rule: the spec names the variants
/// that answer each judgement code.
fn taken<'a>(emu: &Emulator, rule: &'a Rule) -> Option<&'a ErrorRef> {
    rule.errors.iter().find(|e| reads_any(emu, &e.variants))
}

/// Whether the emulator enforces the rule: a judgement rule unless a variant taking the other
/// reading is on; an open rule only when such a variant is on; a stated rule always.
fn enforced(emu: &Emulator, rule: &Rule) -> bool {
    match (&rule.judgement, &rule.open) {
        (_, Some(_)) => reads_any(emu, &rule.variants),
        (Some(_), None) => !reads_any(emu, &rule.variants),
        (None, None) => true,
    }
}

/// A parameter's value as its declared type reads it.
#[derive(Debug, Clone)]
enum Read {
    Missing,
    WrongType,
    One(String),
    Many(Vec<String>),
    Flag(bool),
    Number,
}

impl Read {
    fn items(&self) -> Vec<String> {
        match self {
            Read::One(s) => vec![s.clone()],
            Read::Many(v) => v.clone(),
            Read::Missing | Read::WrongType | Read::Flag(_) | Read::Number => Vec::new(),
        }
    }
}

fn read(params: &Params, p: &Parameter) -> Read {
    let Some(v) = params.get(&p.name).or_else(|| params.get(&p.wire)) else {
        return Read::Missing;
    };
    let strings = |items: &[Value]| -> Option<Vec<String>> {
        items
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect()
    };
    match (p.kind, v) {
        (ParamType::String, Value::String(s)) => Read::One(s.clone()),
        (ParamType::StringList, Value::Array(items)) => {
            strings(items).map_or(Read::WrongType, Read::Many)
        }
        (ParamType::JsonStringList, Value::String(s)) => serde_json::from_str::<Vec<String>>(s)
            .ok()
            .map_or(Read::WrongType, Read::Many),
        (ParamType::Boolean, Value::Bool(b)) => Read::Flag(*b),
        (ParamType::Boolean, Value::String(s)) if s.eq_ignore_ascii_case("true") => {
            Read::Flag(true)
        }
        (ParamType::Boolean, Value::String(s)) if s.eq_ignore_ascii_case("false") => {
            Read::Flag(false)
        }
        (ParamType::Integer, Value::Number(n)) => {
            n.as_i64().map_or(Read::WrongType, |_| Read::Number)
        }
        (ParamType::Integer, Value::String(s)) => {
            s.parse::<i64>().map_or(Read::WrongType, |_| Read::Number)
        }
        _ => Read::WrongType,
    }
}

/// Answers one request to a spec-served API.
pub(super) fn serve(
    emu: &Emulator,
    set: &SpecSet,
    api: &LoadedApi,
    req: &ParsedRequest,
    rid: &str,
) -> HttpResponse {
    let family = set.family(api.spec.api.family);
    let format = match emu.has(Fault::XmlIgnored) {
        true => crate::protocol::ResponseFormat::Json,
        false => req.format,
    };
    match call(emu, &api.spec, family, req) {
        Ok(fields) => match req.family {
            FamilyId::TencentApi3 => tencent_api3::ok(rid, fields),
            FamilyId::TencentV2 => tencent_v2::respond(0, "", fields),
            FamilyId::AliyunRpc => aliyun_rpc::ok(&req.action, format, rid, fields),
        },
        Err(r) => match req.family {
            FamilyId::TencentApi3 => tencent_api3::error(&r.code, &r.message, rid),
            FamilyId::TencentV2 => {
                tencent_v2::respond(r.code.parse().unwrap_or(4000), &r.message, Params::new())
            }
            FamilyId::AliyunRpc => aliyun_rpc::error(r.status, &r.code, &r.message, rid, format),
        },
    }
}

fn call(
    emu: &Emulator,
    spec: &ApiSpec,
    family: &FamilySpec,
    req: &ParsedRequest,
) -> Result<Params, Refusal> {
    let param = |name: &str| spec.parameters.iter().find(|p| p.name == name);
    let value = |name: &str| param(name).map_or(Read::Missing, |p| read(&req.params, p));
    let region = req.region.clone().unwrap_or_default();
    let resource = |p: &Parameter| {
        p.references
            .as_deref()
            .and_then(|r| spec.resources.iter().find(|x| x.name == r))
    };

    // The family's rule for a parameter the action does not define.
    for rule in &family.rules {
        if matches!(rule.check, Check::KnownParameters) {
            if let Some(unknown) = req.params.keys().find(|k| {
                !spec
                    .parameters
                    .iter()
                    .any(|p| p.name == **k || p.wire == **k)
                    && !family.common_parameters.iter().any(|c| c.name == **k)
            }) {
                return Err(Refusal::of(
                    emu,
                    rule,
                    format!(
                        "the parameter `{unknown}` is not defined for {}",
                        req.action
                    ),
                ));
            }
        }
    }

    // What the documents leave open, read the other way where a variant the spec names for
    // it is on: a key pair found in any region, a batch naming an item twice refused with the
    // family's generic code for a bad parameter (a code tied to a rule would claim a rule the
    // request does not break).
    let other_reading = |s: Situation| {
        spec.unspecified
            .iter()
            .any(|u| u.situation == s && reads_any(emu, &u.variants))
    };
    let any_region = other_reading(Situation::OtherRegion);
    if other_reading(Situation::DuplicateIds) {
        let items = value(&spec.batch.param).items();
        if dedup(&items).len() != items.len() {
            let generic = family
                .error_codes
                .iter()
                .find(|c| c.code == "InvalidParameter")
                .or_else(|| family.error_codes.first());
            return Err(Refusal {
                code: generic.map_or_else(|| "InvalidParameter".into(), |c| c.code.clone()),
                status: generic.and_then(|c| c.status).unwrap_or(400),
                message: format!("{} names an item twice", spec.batch.param),
            });
        }
    }
    let world = emu.lock();
    // Instances of the batch that fail on their own (per item), with the rule that fails them.
    let mut item_failures: Vec<(String, Refusal)> = Vec::new();
    // Presence, then the values' form, then what the world holds: a lookup needs its key
    // (a key pair is looked up in the request's region) and a well-formed id (a malformed id
    // is malformed, not unknown). Within each stage, the rules in file order; the documents
    // give no precedence, and the other reading checks each stage last to first.
    let stage = |r: &&Rule| match r.check {
        Check::Required { .. } => 0,
        Check::ValueType { .. }
        | Check::NonEmpty { .. }
        | Check::MaxItems { .. }
        | Check::Pattern { .. } => 1,
        Check::Exists { .. } | Check::InstanceOs { .. } | Check::InstanceState { .. } => 2,
        Check::BindsKeys
        | Check::UnbindsKeys
        | Check::SuccessShape
        | Check::ErrorShape
        | Check::ResponseFormat
        | Check::PerItemConsistency
        | Check::Signature
        | Check::SecretIdKnown
        | Check::TimestampWindow { .. }
        | Check::NonceUnique
        | Check::WireForms
        | Check::DocumentedCode
        | Check::KnownParameters
        | Check::XmlRoot
        | Check::RequestIdUnique
        | Check::VersionKnown => 3,
    };
    let mut ordered: Vec<&Rule> = spec.rules.iter().collect();
    if other_reading(Situation::MultipleViolations) {
        ordered.reverse();
    }
    ordered.sort_by_key(stage);
    for rule in ordered.into_iter().filter(|r| enforced(emu, r)) {
        let refuse = |message: String| Err(Refusal::of(emu, rule, message));
        match &rule.check {
            Check::Required { param } => {
                if matches!(value(param), Read::Missing) {
                    return refuse(format!("the required parameter {param} is missing"));
                }
            }
            Check::ValueType { param } => {
                if matches!(value(param), Read::WrongType) {
                    return refuse(format!("{param} does not have its documented type"));
                }
            }
            Check::NonEmpty { param } => {
                let empty = match value(param) {
                    Read::Many(v) => v.is_empty(),
                    Read::One(s) => s.is_empty(),
                    _ => false,
                };
                if empty {
                    return refuse(format!("{param} is empty"));
                }
            }
            Check::MaxItems { param, limit } => {
                let n = value(param).items().len();
                let limit = limit + u32::from(emu.has(Fault::LimitOffByOne));
                if n > limit as usize {
                    return refuse(format!("{param} holds {n} items; at most {limit}"));
                }
            }
            Check::Pattern { param: name } => {
                let Some(pattern) = param(name).and_then(|p| p.pattern.as_deref()) else {
                    continue;
                };
                let Ok(re) = regex::Regex::new(pattern) else {
                    continue;
                };
                if let Some(bad) = value(name).items().into_iter().find(|i| !re.is_match(i)) {
                    return refuse(format!("`{bad}` is not a valid {name}"));
                }
            }
            Check::Exists { param: name } => {
                let Some(p) = param(name) else { continue };
                let Some(res) = resource(p) else { continue };
                let per_item = spec.batch.mode == BatchMode::PerItem && spec.batch.param == *name;
                for id in dedup(&value(name).items()) {
                    let known = match res.kind {
                        ResourceKind::Instance => world
                            .instance(res.product, &id)
                            .is_some_and(|i| i.region == region),
                        ResourceKind::KeyPair => world.key_pairs.iter().any(|k| {
                            k.product == res.product
                                && (k.region == region || any_region)
                                && match res.identified_by {
                                    IdentifiedBy::Id | IdentifiedBy::Name => k.id == id,
                                }
                        }),
                    };
                    if known {
                        continue;
                    }
                    let message = format!("the {} `{id}` does not exist", p.name);
                    // A variant answering this rule's code refuses the whole request.
                    if per_item && taken(emu, rule).is_none() {
                        item_failures.push((id, Refusal::of(emu, rule, message)));
                    } else {
                        return refuse(message);
                    }
                }
            }
            Check::InstanceOs { param, allowed } => {
                if emu.has(Fault::WindowsAccepted) {
                    continue;
                }
                for id in value(param).items() {
                    let inst = world.instance(spec.instance_product(), &id);
                    if let Some(i) = inst.filter(|i| i.region == region && !allowed.contains(&i.os))
                    {
                        return refuse(format!("the instance `{}` runs {:?}", i.id, i.os));
                    }
                }
            }
            Check::InstanceState {
                param,
                allowed,
                unless,
            } => {
                let forced = unless
                    .as_deref()
                    .is_some_and(|flag| matches!(value(flag), Read::Flag(true)));
                for id in value(param).items() {
                    let inst = world.instance(spec.instance_product(), &id);
                    if let Some(i) = inst
                        .filter(|i| i.region == region && !allowed.contains(&i.state) && !forced)
                    {
                        return refuse(format!("the instance `{}` is {:?}", i.id, i.state));
                    }
                }
            }
            // What a response shows, the effect, and what the family's protocol layer checks
            // before a request reaches here: nothing to refuse a request for.
            Check::BindsKeys
            | Check::UnbindsKeys
            | Check::SuccessShape
            | Check::ErrorShape
            | Check::ResponseFormat
            | Check::PerItemConsistency
            | Check::Signature
            | Check::SecretIdKnown
            | Check::TimestampWindow { .. }
            | Check::NonceUnique
            | Check::WireForms
            | Check::DocumentedCode
            | Check::KnownParameters
            | Check::XmlRoot
            | Check::RequestIdUnique
            | Check::VersionKnown => {}
        }
    }
    drop(world);

    let instances = dedup(&value(&spec.effect.instances).items());
    let keys = dedup(&value(&spec.effect.keys).items());
    let failed: BTreeSet<&str> = item_failures.iter().map(|(id, _)| id.as_str()).collect();
    let mut world = emu.lock();
    apply(
        emu,
        &mut world,
        spec,
        &region,
        instances.iter().filter(|i| !failed.contains(i.as_str())),
        &keys,
    );
    drop(world);

    let mut out = Params::new();
    // Top-level success fields that name a request parameter echo it (Alibaba `KeyPairName`).
    for field in &spec.success_fields {
        if let Some(Read::One(v)) = param(&field.path).map(|p| read(&req.params, p)) {
            out.insert(field.path.clone(), json!(v));
        }
    }
    if spec.batch.mode == BatchMode::PerItem && req.family == FamilyId::AliyunRpc {
        // The family's per-item layout (ECS 2014-05-26): one result per named instance.
        let results: Vec<Value> = instances
            .iter()
            .map(|id| match item_failures.iter().find(|(f, _)| f == id) {
                Some((_, r)) => {
                    json!({"InstanceId": id, "Code": r.code, "Message": r.message, "Success": false})
                }
                None => {
                    json!({"InstanceId": id, "Code": "200", "Message": "successful", "Success": true})
                }
            })
            .collect();
        out.insert("TotalCount".into(), json!(instances.len()));
        let fail_count = match emu.has(Fault::InconsistentFailCount) {
            true => instances.len() - item_failures.len(),
            false => item_failures.len(),
        };
        out.insert("FailCount".into(), json!(fail_count));
        out.insert("Results".into(), json!({ "Result": results }));
    }
    Ok(out)
}

/// The effect on each named instance of the instance product in the request's region.
fn apply<'a>(
    emu: &Emulator,
    world: &mut Held,
    spec: &ApiSpec,
    region: &str,
    instances: impl Iterator<Item = &'a String>,
    keys: &[String],
) {
    let product = spec.instance_product();
    for id in instances {
        let Some(inst) = world.instance_mut(product, id, |i| i.region == region) else {
            continue;
        };
        // The catalogue's effect faults, read as the effect kinds they break.
        let kind = match spec.effect.kind {
            EffectKind::BindReplace if emu.has(Fault::AssociateAppends) => EffectKind::Add,
            EffectKind::Unbind if emu.has(Fault::DisassociateNoop) => continue,
            kind => kind,
        };
        match kind {
            EffectKind::BindReplace => inst.keys = keys.to_vec(),
            EffectKind::Unbind => inst.keys.retain(|k| !keys.contains(k)),
            EffectKind::Add => {
                for k in keys {
                    if !inst.keys.contains(k) {
                        inst.keys.push(k.clone());
                    }
                }
            }
        }
    }
}
