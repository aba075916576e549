//! What a case does to a spec's rules, given the world before the call: the rules it breaks,
//! per-item failures of per-item batches, and the unspecified situations it hits. The generator
//! uses this to record situations; the oracle uses it to recompute the broken rules instead of
//! trusting the generator's intent.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, OnceLock, RwLock};

use regex::Regex;
use serde_json::Value;

use super::{AuthFault, Case};
use crate::spec::{
    ApiSpec, BatchMode, Check, CheckKind, EffectKind, FamilySpec, InstanceState, ParamType,
    Parameter, Product, ResourceKind, Rule, Situation,
};
use crate::world::{Lookup, World};

/// The result of [`analyze`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Analysis {
    /// Rules the request breaks as a whole (API rules in spec order, then the family's auth rule).
    pub broken: Vec<String>,
    /// Rules broken only in a way the documents leave open (a RUNNING instance without force,
    /// a rule marked `open`).
    pub soft: Vec<String>,
    /// Rules the case satisfies only through the exception they state (a RUNNING instance with
    /// the force flag): what a valid case exercises beyond the plain path.
    pub lifted: Vec<String>,
    /// For per-item batches: items that fail on their own, with the item-level rules they break.
    pub item_failures: Vec<(String, Vec<String>)>,
    /// Unspecified situations the case hits (only those the spec lists).
    pub situations: Vec<Situation>,
}

/// The parameter named `name`.
pub fn param<'a>(spec: &'a ApiSpec, name: &str) -> Option<&'a Parameter> {
    spec.parameters.iter().find(|p| p.name == name)
}

/// The anchored pattern of a parameter, compiled once per process and shared (a `Regex` is
/// `Sync`; its match caches are pooled per thread). Specs hold a handful of patterns, so the
/// cache stays tiny.
pub fn pattern(p: &Parameter) -> Option<Arc<Regex>> {
    static CACHE: OnceLock<RwLock<HashMap<String, Option<Arc<Regex>>>>> = OnceLock::new();
    let src = p.pattern.as_deref()?;
    let cache = CACHE.get_or_init(Default::default);
    if let Some(re) = cache.read().unwrap_or_else(|e| e.into_inner()).get(src) {
        return re.clone();
    }
    let re = Regex::new(src).ok().map(Arc::new);
    cache
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .entry(src.to_string())
        .or_insert(re)
        .clone()
}

/// The parameter a wire name stands for, a list's `.N` index taken off first: its `wire` with
/// the `.n`/`.N` placeholder dropped, or its name.
pub fn param_of_wire<'a>(spec: &'a ApiSpec, stem: &str) -> Option<&'a Parameter> {
    spec.parameters.iter().find(|p| {
        let wire = p
            .wire
            .strip_suffix(".n")
            .or_else(|| p.wire.strip_suffix(".N"))
            .unwrap_or(&p.wire);
        wire == stem || p.name == stem
    })
}

/// The product and kind of the resource a parameter names.
pub fn resource_of(spec: &ApiSpec, p: &Parameter) -> Option<(Product, ResourceKind)> {
    let name = p.references.as_deref()?;
    spec.resources
        .iter()
        .find(|r| r.name == name)
        .map(|r| (r.product, r.kind))
}

/// The string items of a value: array items, a JSON array held in a string (json_string_list), or
/// the value itself for a scalar string. Non-string items are left out.
pub fn items(v: &Value, kind: ParamType) -> Vec<String> {
    match v {
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect(),
        Value::String(s) if kind == ParamType::JsonStringList => {
            serde_json::from_str::<Vec<String>>(s).unwrap_or_default()
        }
        Value::String(s) => vec![s.clone()],
        _ => vec![],
    }
}

/// The items of a named parameter of the case (empty when absent).
pub fn param_items(spec: &ApiSpec, case: &Case, name: &str) -> Vec<String> {
    let kind = param(spec, name)
        .map(|p| p.kind)
        .unwrap_or(ParamType::StringList);
    case.params
        .get(name)
        .map(|v| items(v, kind))
        .unwrap_or_default()
}

/// Whether a value has the parameter's documented type.
pub fn type_ok(v: &Value, kind: ParamType) -> bool {
    match kind {
        ParamType::String => v.is_string(),
        ParamType::Boolean => v.is_boolean(),
        ParamType::Integer => v.is_i64() || v.is_u64(),
        ParamType::StringList => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
        ParamType::JsonStringList => match v {
            Value::Array(a) => a.iter().all(Value::is_string),
            Value::String(s) => serde_json::from_str::<Vec<String>>(s).is_ok(),
            _ => false,
        },
    }
}

fn is_empty(v: &Value, kind: ParamType) -> bool {
    match v {
        Value::Array(a) => a.is_empty(),
        Value::String(s) if kind == ParamType::JsonStringList => {
            serde_json::from_str::<Vec<Value>>(s).is_ok_and(|a| a.is_empty())
        }
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

fn count(v: &Value, kind: ParamType) -> usize {
    match v {
        Value::Array(a) => a.len(),
        Value::String(s) if kind == ParamType::JsonStringList => {
            serde_json::from_str::<Vec<Value>>(s).map_or(0, |a| a.len())
        }
        _ => 1,
    }
}

/// The family rule an auth fault breaks, if the family has one.
pub fn auth_rule(family: &FamilySpec, fault: AuthFault) -> Option<&Rule> {
    let kind = match fault {
        AuthFault::None => return None,
        AuthFault::WrongSecret | AuthFault::TamperedSignature => CheckKind::Signature,
        AuthFault::UnknownSecretId => CheckKind::SecretIdKnown,
        AuthFault::ExpiredTimestamp | AuthFault::FutureTimestamp => CheckKind::TimestampWindow,
        AuthFault::ReusedNonce => CheckKind::NonceUnique,
        AuthFault::UnknownVersion => CheckKind::VersionKnown,
    };
    family.rules.iter().find(|r| r.check.kind() == kind)
}

/// Whether a boolean flag is on. Abstract params carry JSON booleans; nothing else is true.
pub fn flag_on(case: &Case, name: &str) -> bool {
    case.params.get(name) == Some(&Value::Bool(true))
}

/// Analyses a case against the API's rules and the world before the call.
pub fn analyze(spec: &ApiSpec, family: &FamilySpec, world: &World, case: &Case) -> Analysis {
    analyze_in(spec, family, &Lookup::new(world), case)
}

/// [`analyze`] against a world already indexed.
pub fn analyze_in(spec: &ApiSpec, family: &FamilySpec, look: &Lookup, case: &Case) -> Analysis {
    let listed: Vec<Situation> = spec.unspecified.iter().map(|u| u.situation).collect();
    // Every lookup below is by an id of the case: one hash probe each, not a scan of the world.
    let mut out = Analysis::default();
    let mut situations: Vec<Situation> = Vec::new();
    let per_item = spec.batch.mode == BatchMode::PerItem;
    let mut item_fail: Vec<(String, Vec<String>)> = Vec::new();
    let mut fail_item = |item: &str, rule: &str| {
        if let Some(e) = item_fail.iter_mut().find(|(i, _)| i == item) {
            if !e.1.iter().any(|r| r == rule) {
                e.1.push(rule.to_string());
            }
        } else {
            item_fail.push((item.to_string(), vec![rule.to_string()]));
        }
    };
    // The string items of each parameter the case sets, once: most rules read the same two
    // lists, and copying every id for every rule was most of the cost of an analysis.
    let listed_items: Vec<(&str, Vec<String>)> = spec
        .parameters
        .iter()
        .filter_map(|p| Some((p.name.as_str(), items(case.params.get(&p.name)?, p.kind))))
        .collect();
    let items_of = |name: &str| {
        listed_items
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(&[][..], |(_, its)| its.as_slice())
    };
    for rule in &spec.rules {
        let Some(pname) = rule.check.param() else {
            continue;
        };
        let Some(p) = param(spec, pname) else {
            continue;
        };
        let value = case.params.get(pname);
        if let Check::Required { .. } = rule.check {
            if value.is_none() {
                out.broken.push(rule.id.clone());
            }
            continue;
        }
        let Some(v) = value else { continue };
        let its = items_of(pname);
        let re = pattern(p);
        let well_formed = |s: &str| re.as_ref().is_none_or(|r| r.is_match(s));
        let resource = resource_of(spec, p);
        let item_level = per_item && pname == spec.batch.param;
        let broken = match &rule.check {
            // Judged above, on the value's absence.
            Check::Required { .. } => false,
            Check::NonEmpty { .. } => is_empty(v, p.kind),
            Check::MaxItems { limit, .. } => count(v, p.kind) > *limit as usize,
            Check::ValueType { .. } => !type_ok(v, p.kind),
            Check::Pattern { .. } => {
                let bad_item = match v {
                    Value::Array(a) => a
                        .iter()
                        .any(|x| x.as_str().is_some_and(|s| !well_formed(s))),
                    _ => its.iter().any(|s| !well_formed(s)),
                };
                bad_item
            }
            Check::Exists { .. } => {
                let Some((product, kind)) = resource else {
                    continue;
                };
                let missing: Vec<&String> = its
                    .iter()
                    .filter(|s| well_formed(s) && !exists(look, product, kind, &case.region, s))
                    .collect();
                let elsewhere = missing
                    .iter()
                    .filter(|s| exists_anywhere(look, product, kind, s))
                    .count();
                let other_region = kind == ResourceKind::KeyPair
                    && listed.contains(&Situation::OtherRegion)
                    && elsewhere > 0;
                if other_region {
                    add(&mut situations, Situation::OtherRegion);
                }
                if other_region && elsewhere == missing.len() {
                    // Every key pair it misses exists in another region: whether that counts
                    // as not existing is what the documents leave open.
                    out.soft.push(rule.id.clone());
                    false
                } else if item_level {
                    missing.iter().for_each(|s| fail_item(s, &rule.id));
                    false
                } else {
                    !missing.is_empty()
                }
            }
            Check::InstanceOs { allowed, .. } => {
                let product = resource.map_or(spec.api.product, |r| r.0);
                let bad: Vec<&String> = its
                    .iter()
                    .filter(|s| {
                        lookup_instance(look, product, &case.region, s)
                            .is_some_and(|i| !allowed.contains(&i.os))
                    })
                    .collect();
                if item_level {
                    bad.iter().for_each(|s| fail_item(s, &rule.id));
                    false
                } else {
                    !bad.is_empty()
                }
            }
            Check::InstanceState {
                allowed, unless, ..
            } => {
                let product = resource.map_or(spec.api.product, |r| r.0);
                let forced = unless.as_deref().is_some_and(|u| flag_on(case, u));
                let named: Vec<(&String, InstanceState)> = its
                    .iter()
                    .filter_map(|s| {
                        lookup_instance(look, product, &case.region, s).map(|i| (s, i.state))
                    })
                    .collect();
                if forced && named.iter().any(|(_, st)| *st == InstanceState::Running) {
                    out.lifted.push(rule.id.clone());
                    if listed.contains(&Situation::RunningWithForce) {
                        add(&mut situations, Situation::RunningWithForce);
                    }
                }
                {
                    // The force flag lifts the requirement for RUNNING instances only: it
                    // shuts a running instance down; other states stay unsupported.
                    let bad: Vec<(&String, InstanceState)> = named
                        .into_iter()
                        .filter(|(_, st)| {
                            !(allowed.contains(st) || (forced && *st == InstanceState::Running))
                        })
                        .collect();
                    let only_running = !bad.is_empty()
                        && bad.iter().all(|(_, st)| *st == InstanceState::Running)
                        && listed.contains(&Situation::RunningWithoutForce);
                    if only_running {
                        add(&mut situations, Situation::RunningWithoutForce);
                        out.soft.push(rule.id.clone());
                        false
                    } else if item_level {
                        bad.iter().for_each(|(s, _)| fail_item(s, &rule.id));
                        false
                    } else {
                        !bad.is_empty()
                    }
                }
            }
            // Not broken by a request's parameters: the response-level kinds (judged on
            // the answer), the family's authentication kinds (broken by `case.auth`, below),
            // the wire forms (a form the documents show is valid), and the parameter names
            // (names no parameter: judged below).
            Check::KnownParameters
            | Check::BindsKeys
            | Check::UnbindsKeys
            | Check::SuccessShape
            | Check::ErrorShape
            | Check::PerItemConsistency
            | Check::ResponseFormat
            | Check::XmlRoot
            | Check::RequestIdUnique
            | Check::VersionKnown
            | Check::Signature
            | Check::SecretIdKnown
            | Check::TimestampWindow { .. }
            | Check::NonceUnique
            | Check::DocumentedCode
            | Check::WireForms => false,
        };
        if broken && rule.open.is_some() {
            // The documents neither state nor rule out this rule: breaking it leaves the
            // outcome open, as a RUNNING instance without force does where that is open.
            out.soft.push(rule.id.clone());
        } else if broken {
            out.broken.push(rule.id.clone());
        }
    }
    // A parameter the table does not define (`InstanceId` for `InstanceIds`): the rule that
    // refuses it is broken besides whatever the request then lacks, and no document ranks the
    // two, so either code answers the request.
    if case.params.keys().any(|name| param(spec, name).is_none()) {
        for rule in spec.rules.iter().chain(&family.rules) {
            if rule.check != Check::KnownParameters {
                continue;
            }
            match rule.open {
                Some(_) => out.soft.push(rule.id.clone()),
                None => out.broken.push(rule.id.clone()),
            }
        }
    }
    if let Some(r) = auth_rule(family, case.auth) {
        out.broken.push(r.id.clone());
    }
    // Situations.
    if listed.contains(&Situation::DuplicateIds) {
        for p in &spec.parameters {
            if matches!(p.kind, ParamType::StringList | ParamType::JsonStringList)
                && case.params.contains_key(&p.name)
            {
                let its = items_of(&p.name);
                let set: BTreeSet<&String> = its.iter().collect();
                if set.len() < its.len() {
                    add(&mut situations, Situation::DuplicateIds);
                }
            }
        }
    }
    if out.broken.len() > 1 && listed.contains(&Situation::MultipleViolations) {
        add(&mut situations, Situation::MultipleViolations);
    }
    if case.transport.index_base == 1 && listed.contains(&Situation::OneBasedIndex) {
        add(&mut situations, Situation::OneBasedIndex);
    }
    let keys = items_of(&spec.effect.keys);
    let product = spec.instance_product();
    let instances = items_of(&spec.effect.instances);
    if spec.effect.kind == EffectKind::Unbind && listed.contains(&Situation::UnbindNotBound) {
        let not_bound = instances.iter().any(|id| {
            lookup_instance(look, product, &case.region, id)
                .is_some_and(|i| keys.iter().any(|k| !i.keys.contains(k)))
        });
        if not_bound {
            add(&mut situations, Situation::UnbindNotBound);
        }
    }
    if spec.effect.kind == EffectKind::BindReplace && listed.contains(&Situation::SeveralKeys) {
        let distinct: BTreeSet<&String> = keys.iter().collect();
        if distinct.len() > 1 {
            add(&mut situations, Situation::SeveralKeys);
        }
    }
    out.item_failures = item_fail;
    out.situations = situations;
    out
}

fn exists(look: &Lookup, product: Product, kind: ResourceKind, region: &str, id: &str) -> bool {
    match kind {
        ResourceKind::Instance => lookup_instance(look, product, region, id).is_some(),
        ResourceKind::KeyPair => look
            .key_pair(id, |k| k.product == product && k.region == region)
            .is_some(),
    }
}

fn exists_anywhere(look: &Lookup, product: Product, kind: ResourceKind, id: &str) -> bool {
    match kind {
        ResourceKind::Instance => look.instance(id, |i| i.product == product).is_some(),
        ResourceKind::KeyPair => look.key_pair(id, |k| k.product == product).is_some(),
    }
}

fn lookup_instance<'a>(
    look: &Lookup<'a>,
    product: Product,
    region: &str,
    id: &str,
) -> Option<&'a crate::world::Instance> {
    look.instance(id, |i| i.product == product && i.region == region)
        .map(|(_, i)| i)
}

/// The instance `id` of `product` in `region` (a scan: for a few lookups; [`Lookup`] for many).
pub fn find_instance<'a>(
    world: &'a World,
    product: Product,
    region: &str,
    id: &str,
) -> Option<&'a crate::world::Instance> {
    world
        .instances
        .iter()
        .find(|i| i.product == product && i.region == region && i.id == id)
}

fn add(v: &mut Vec<Situation>, s: Situation) {
    if !v.contains(&s) {
        v.push(s);
    }
}
