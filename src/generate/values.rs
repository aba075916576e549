//! The generator's view of one API: resource pools from the world, and strategies for valid
//! parameters, rule-breaking mutations, situations and transports.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use proptest::prelude::*;
use proptest::sample::{subsequence, Index};
use proptest::strategy::Union;
use regex::Regex;
use serde_json::Value;

use super::GenOptions;
use crate::case::analysis::{self as analyze, analyze_in, auth_rule, items};
use crate::case::{AuthFault, Case, Forms, Transport};
use crate::protocol::{Method, Params, ResponseFormat, SignatureMethod};
use crate::spec::{
    ApiSpec, Check, EffectKind, Envelope, FamilySpec, Freedom, InstanceState, LoadedApi, ParamType,
    Parameter, ResourceKind, Situation, SpecSet,
};
use crate::world::{IdIndex, Instance, Lookup, World};

/// A change to valid parameters that breaks a rule or produces a situation.
#[derive(Debug, Clone)]
enum Mut {
    Remove(String),
    Set(String, Value),
    /// Replace one item of a list (or the scalar) by this value.
    ReplaceItem(String, Index, String),
    /// Make a list hold a duplicate, without going over its limit.
    DupItem(String, Index),
    /// Raw non-JSON text in place of a JSON list.
    RawText(String),
    /// Replace one instance by one that does not hold the request's keys.
    Unbound(String, Index, Index),
    /// Force flag: `Some(b)` sets it, `None` removes it.
    Force(Option<bool>),
    /// The parameter also under a name the table does not define — its first letter's case
    /// flipped (`instanceIds` beside `InstanceIds`), as a client's typo sends it — with its value
    /// (a placeholder when the case leaves it out).
    Undefined(String),
}

/// `name` with its first letter's case flipped.
fn miscased(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_uppercase() => c.to_ascii_lowercase().to_string() + chars.as_str(),
        Some(c) => c.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// Everything the strategies of one API need, computed once.
#[derive(Debug)]
pub struct Ctx {
    api: String,
    region: String,
    spec: ApiSpec,
    family: FamilySpec,
    world: World,
    /// `world` by id, so analysing a case probes instead of indexing the world again.
    index: IdIndex,
    all_ids: HashSet<String>,
    listed: Vec<Situation>,
    inst_param: Option<String>,
    key_param: Option<String>,
    force: Option<String>,
    // Pools are shared slices: strategies are rebuilt inside `prop_flat_map` for every case, and
    // copying a hundred ids into each was most of the cost of generating one.
    /// Instances every instance rule accepts without force.
    strict: Pool,
    /// Instances every rule accepts with force on.
    forced: Pool,
    running: Vec<String>,
    bad_os: Vec<String>,
    bad_state: Vec<String>,
    keys: Pool,
    transports: Vec<(u32, Transport)>,
    extra: usize,
    /// For unbind effects: each key with the strict (forced) instances it is bound to.
    pairs_strict: Arc<[(String, Pool)]>,
    pairs_forced: Arc<[(String, Pool)]>,
}

/// Ids to choose from, shared by every strategy that draws from them.
type Pool = Arc<[String]>;

/// Positions `0..len`: proptest's `subsequence` and `select` take owned values, so they draw
/// positions and the pool is read through them (the same draws as over the values themselves).
fn positions(len: usize) -> Vec<usize> {
    (0..len).collect()
}

fn pairs(world: &World, unbind: bool, keys: &[String], pool: &[String]) -> Arc<[(String, Pool)]> {
    if !unbind {
        return Arc::from([]);
    }
    // One pass over the instances (not one per key): the plan builds a generator per rule, and
    // a key-by-instance scan was most of a short run's time.
    let pool: HashSet<&str> = pool.iter().map(String::as_str).collect();
    let mut bound: HashMap<&str, Vec<String>> = HashMap::new();
    for i in world
        .instances
        .iter()
        .filter(|i| pool.contains(i.id.as_str()))
    {
        for k in &i.keys {
            let ids = bound.entry(k.as_str()).or_default();
            // An instance once per key, in world order, even if it lists the key twice.
            if ids.last() != Some(&i.id) {
                ids.push(i.id.clone());
            }
        }
    }
    keys.iter()
        .filter_map(|k| {
            let ids = bound.get(k.as_str())?;
            Some((k.clone(), Pool::from(ids.as_slice())))
        })
        .collect()
}

fn os_ok(spec: &ApiSpec, param: &str, i: &Instance) -> bool {
    spec.rules.iter().all(|r| match &r.check {
        Check::InstanceOs { param: p, allowed } if p == param => allowed.contains(&i.os),
        _ => true,
    })
}

fn state_ok(spec: &ApiSpec, param: &str, i: &Instance) -> bool {
    spec.rules.iter().all(|r| match &r.check {
        Check::InstanceState {
            param: p, allowed, ..
        } if p == param => allowed.contains(&i.state),
        _ => true,
    })
}

pub(super) fn signature_method(id: &str) -> Option<SignatureMethod> {
    // ACS3 is accepted by Alibaba servers but the harness, like the documents' SDKs of the time,
    // signs RPC requests with HMAC-SHA1.
    match id {
        "tc3-hmac-sha256" => Some(SignatureMethod::Tc3HmacSha256),
        "v1-hmac-sha1" => Some(SignatureMethod::V1HmacSha1),
        "v1-hmac-sha256" => Some(SignatureMethod::V1HmacSha256),
        "rpc-hmac-sha1" => Some(SignatureMethod::RpcHmacSha1),
        _ => None,
    }
}

fn transports(family: &FamilySpec) -> Vec<(u32, Transport)> {
    let formats: &[ResponseFormat] = match family.envelope {
        Envelope::AliyunTopLevel { .. } => &[
            ResponseFormat::Default,
            ResponseFormat::Json,
            ResponseFormat::Xml,
        ],
        _ => &[ResponseFormat::Default],
    };
    let mut out = Vec::new();
    for s in &family.signatures {
        let Some(sig) = signature_method(&s.id) else {
            continue;
        };
        for m in &s.methods {
            let method = if m.eq_ignore_ascii_case("GET") {
                Method::Get
            } else {
                Method::Post
            };
            for &format in formats {
                out.push((
                    1,
                    Transport {
                        method,
                        signature: sig,
                        format,
                        index_base: 0,
                        forms: Forms::default(),
                    },
                ));
            }
        }
    }
    if out.is_empty() {
        out.push((
            1,
            Transport {
                method: Method::Post,
                signature: SignatureMethod::Tc3HmacSha256,
                format: ResponseFormat::Default,
                index_base: 0,
                forms: Forms::default(),
            },
        ));
    }
    // The family's first scheme and method is what SDKs send: about half of the cases.
    let first = out[0].1;
    let others = out.len() as u32 - 1;
    for (w, t) in out.iter_mut() {
        if t.signature == first.signature && t.method == first.method {
            *w = others.max(1);
        }
    }
    out
}

/// Form encodings number list items; TC3 JSON bodies carry arrays.
/// How the size of a selection is drawn.
#[derive(Clone, Copy)]
enum Sizes {
    /// 1..=max, leaning on 1, max-1 and max.
    Full,
    /// 1..=3 (at most max), mostly 1.
    Few,
    /// Exactly max.
    Limit,
}

/// Sizes of a selection of at most `max` items (`max` ≥ 1; 0 gives 1, which the caller clamps).
fn sizes(max: usize, how: Sizes) -> BoxedStrategy<usize> {
    let max = max.max(1);
    match how {
        Sizes::Full => prop_oneof![
            2 => Just(1usize),
            1 => Just(max.saturating_sub(1).max(1)),
            2 => Just(max),
            3 => 1..=max,
        ]
        .boxed(),
        Sizes::Few => prop_oneof![2 => Just(1usize), 1 => 1..=max.min(3)].boxed(),
        Sizes::Limit => Just(max).boxed(),
    }
}

fn is_form(t: &Transport) -> bool {
    !(t.signature == SignatureMethod::Tc3HmacSha256 && t.method == Method::Post)
}

fn base36(mut n: u64, width: usize) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut s = Vec::new();
    while n > 0 {
        s.push(DIGITS[(n % 36) as usize]);
        n /= 36;
    }
    while s.len() < width {
        s.push(b'0');
    }
    s.truncate(width);
    s.reverse();
    String::from_utf8(s).expect("ascii")
}

impl Ctx {
    /// Analyses the spec and the world for one API.
    pub fn new(set: &SpecSet, api: &LoadedApi, world: &World, opts: &GenOptions) -> Ctx {
        let spec = api.spec.clone();
        let family = set.family(spec.api.family).clone();
        let product = spec.instance_product();
        let region = opts.region.clone().unwrap_or_else(|| {
            let mut counts: Vec<(usize, String)> = Vec::new();
            for i in world.instances.iter().filter(|i| i.product == product) {
                match counts.iter_mut().find(|(_, r)| *r == i.region) {
                    Some(c) => c.0 += 1,
                    None => counts.push((1, i.region.clone())),
                }
            }
            counts.sort_by_key(|c| std::cmp::Reverse(c.0));
            counts
                .first()
                .map(|c| c.1.clone())
                .unwrap_or_else(|| "ap-guangzhou".into())
        });
        let refs = |kind: ResourceKind| {
            spec.parameters
                .iter()
                .find(|p| analyze::resource_of(&spec, p).is_some_and(|r| r.1 == kind))
                .map(|p| p.name.clone())
        };
        let inst_param = refs(ResourceKind::Instance).or(Some(spec.effect.instances.clone()));
        let key_param = refs(ResourceKind::KeyPair).or(Some(spec.effect.keys.clone()));
        let force = spec.rules.iter().find_map(|r| match &r.check {
            Check::InstanceState { unless, .. } => unless.clone(),
            _ => None,
        });
        let ip = inst_param.clone().unwrap_or_default();
        let local: Vec<&Instance> = world
            .instances
            .iter()
            .filter(|i| i.product == product && i.region == region)
            .collect();
        let ids = |f: &dyn Fn(&Instance) -> bool| -> Vec<String> {
            local
                .iter()
                .filter(|i| f(i))
                .map(|i| i.id.clone())
                .collect()
        };
        let running_open = spec
            .unspecified
            .iter()
            .any(|u| u.situation == Situation::RunningWithoutForce);
        let strict = ids(&|i| os_ok(&spec, &ip, i) && state_ok(&spec, &ip, i));
        // The force flag shuts a RUNNING instance down (seeds: "是否对运行中的实例选择强制关机");
        // it does not make other states (PENDING, STOPPING, ...) acceptable.
        let forced = ids(&|i| {
            os_ok(&spec, &ip, i) && (state_ok(&spec, &ip, i) || i.state == InstanceState::Running)
        });
        let running = ids(&|i| os_ok(&spec, &ip, i) && i.state == InstanceState::Running);
        let bad_os = ids(&|i| !os_ok(&spec, &ip, i) && state_ok(&spec, &ip, i));
        let bad_state = ids(&|i| {
            os_ok(&spec, &ip, i)
                && !state_ok(&spec, &ip, i)
                && !(running_open && i.state == InstanceState::Running)
        });
        let key_product = key_param
            .as_deref()
            .and_then(|k| analyze::param(&spec, k))
            .and_then(|p| analyze::resource_of(&spec, p))
            .map_or(spec.api.product, |r| r.0);
        let keys: Vec<String> = world
            .key_pairs
            .iter()
            .filter(|k| k.product == key_product && k.region == region)
            .map(|k| k.id.clone())
            .collect();
        let all_ids = world
            .instances
            .iter()
            .map(|i| i.id.clone())
            .chain(world.key_pairs.iter().map(|k| k.id.clone()))
            .collect();
        let unbind = spec.effect.kind == EffectKind::Unbind;
        let pairs_strict = pairs(world, unbind, &keys, &strict);
        let pairs_forced = pairs(world, unbind, &keys, &forced);
        Ctx {
            pairs_strict,
            pairs_forced,
            api: api.name.clone(),
            region,
            listed: spec.unspecified.iter().map(|u| u.situation).collect(),
            transports: transports(&family),
            spec,
            family,
            world: world.clone(),
            index: IdIndex::new(world),
            all_ids,
            inst_param,
            key_param,
            force,
            strict: strict.into(),
            forced: forced.into(),
            running,
            bad_os,
            bad_state,
            keys: keys.into(),
            extra: opts.extra_over_limit,
        }
    }

    fn param(&self, name: &str) -> Option<&Parameter> {
        analyze::param(&self.spec, name)
    }

    /// The family's rule refusing parameters the table does not define, where it has one.
    fn known_rule(&self) -> Option<&str> {
        self.family
            .rules
            .iter()
            .find(|r| r.check == Check::KnownParameters)
            .map(|r| r.id.as_str())
    }

    fn limit(&self, name: &str) -> Option<usize> {
        let from_rule = self.spec.rules.iter().find_map(|r| match &r.check {
            Check::MaxItems { param, limit } if param == name => Some(*limit as usize),
            _ => None,
        });
        from_rule.or_else(|| {
            self.param(name)
                .and_then(|p| p.max_items.map(|m| m as usize))
        })
    }

    fn is_list(&self, name: &str) -> bool {
        self.param(name)
            .is_some_and(|p| matches!(p.kind, ParamType::StringList | ParamType::JsonStringList))
    }

    fn pool_of(&self, name: &str) -> &[String] {
        if Some(name) == self.inst_param.as_deref() {
            &self.strict
        } else if Some(name) == self.key_param.as_deref() {
            &self.keys
        } else {
            &[]
        }
    }

    /// Items as the parameter's type carries them.
    fn shape(&self, name: &str, items: Vec<String>) -> Value {
        if self.is_list(name) {
            Value::Array(items.into_iter().map(Value::String).collect())
        } else {
            items.into_iter().next().map_or(Value::Null, Value::String)
        }
    }

    /// The most items a selection of this parameter may hold from a pool of `len`.
    fn cap(&self, name: &str, len: usize) -> usize {
        let cap = if self.is_list(name) {
            self.limit(name).unwrap_or(10)
        } else {
            1
        };
        cap.min(len)
    }

    /// A selection of 1..=max items of a pool, leaning on 1, max-1 and max.
    fn pick(&self, name: &str, pool: Pool) -> BoxedStrategy<Value> {
        let max = self.cap(name, pool.len());
        self.pick_sized(name, pool, sizes(max, Sizes::Full))
    }

    /// A selection of a pool whose size is drawn from `size` (at most the pool's length).
    fn pick_sized(
        &self,
        name: &str,
        pool: Pool,
        size: BoxedStrategy<usize>,
    ) -> BoxedStrategy<Value> {
        let list = self.is_list(name);
        if pool.is_empty() || self.cap(name, pool.len()) == 0 {
            return Just(if list {
                Value::Array(vec![])
            } else {
                Value::Null
            })
            .boxed();
        }
        let len = pool.len();
        size.prop_flat_map(move |n| subsequence(positions(len), n.clamp(1, len)))
            .prop_map(move |at| {
                let mut v = at.into_iter().map(|i| Value::String(pool[i].clone()));
                if list {
                    Value::Array(v.collect())
                } else {
                    v.next().unwrap_or(Value::Null)
                }
            })
            .boxed()
    }

    /// Instances and keys chosen together. Each list spans its whole range (1, max-1, max and
    /// everything between) while the other stays short, and now and then both sit at their
    /// limits together: every size boundary of each list is reached, and the corner too,
    /// without every case naming ~50 instances bound to ~50 keys each (an instance keeps the
    /// keys a bind gave it, so long key lists would make every later case slower to observe).
    ///
    /// `strict` (the base of invalid, faulted and situation cases): what such a case breaks
    /// lies elsewhere, and a limit violation sets its own size, so both lists are short in half
    /// of them; one in four carries the instance list across its range, which is what shows a
    /// batch applied in part when one bad item fails it.
    fn pick_both(
        &self,
        inst: &str,
        pool: Pool,
        key: &str,
        keys: Pool,
        strict: bool,
    ) -> BoxedStrategy<(Value, Value)> {
        let (ni, nk) = (self.cap(inst, pool.len()), self.cap(key, keys.len()));
        let both = |a: Sizes, b: Sizes| {
            (
                self.pick_sized(inst, pool.clone(), sizes(ni, a)),
                self.pick_sized(key, keys.clone(), sizes(nk, b)),
            )
        };
        if strict {
            return prop_oneof![
                2 => both(Sizes::Few, Sizes::Few),
                1 => both(Sizes::Full, Sizes::Few),
                1 => both(Sizes::Few, Sizes::Full),
            ]
            .boxed();
        }
        prop_oneof![
            24 => both(Sizes::Full, Sizes::Few),
            8 => both(Sizes::Few, Sizes::Full),
            // Rare: such a bind leaves every named instance holding every named key, and all
            // later observations of those instances (and the unbind APIs' cases after it) carry
            // the keys until another bind replaces them (~30% of the run's cost at one valid
            // case in nine).
            1 => both(Sizes::Limit, Sizes::Limit),
        ]
        .boxed()
    }

    /// Force flag choices: absent (when optional), false, true.
    fn force_choices(&self) -> Vec<Option<bool>> {
        match self.force.as_deref().and_then(|f| self.param(f)) {
            None => vec![None],
            Some(p) if p.required => vec![Some(false), Some(true)],
            Some(_) => vec![None, Some(false), Some(true)],
        }
    }

    /// Values of parameters that are neither instances, keys nor the force flag.
    fn others(&self) -> BoxedStrategy<Vec<(String, Option<Value>)>> {
        let mut parts: Vec<BoxedStrategy<(String, Option<Value>)>> = Vec::new();
        for p in &self.spec.parameters {
            let n = p.name.clone();
            if Some(&n) == self.inst_param.as_ref()
                || Some(&n) == self.key_param.as_ref()
                || Some(&n) == self.force.as_ref()
            {
                continue;
            }
            let s: BoxedStrategy<Option<Value>> = match p.kind {
                ParamType::Boolean if p.required => {
                    any::<bool>().prop_map(|b| Some(Value::Bool(b))).boxed()
                }
                ParamType::Boolean => prop_oneof![
                    Just(None),
                    Just(Some(Value::Bool(true))),
                    Just(Some(Value::Bool(false)))
                ]
                .boxed(),
                _ if self.spec.region_param() == Some(p.name.as_str()) => {
                    Just(Some(Value::String(self.region.clone()))).boxed()
                }
                _ if p.default.is_some() => {
                    let d = p.default.clone();
                    if p.required {
                        Just(d).boxed()
                    } else {
                        prop_oneof![Just(None), Just(d)].boxed()
                    }
                }
                _ if p.pattern.is_some() && p.kind == ParamType::String => {
                    let pat = p.pattern.clone().unwrap_or_default();
                    let pat = pat
                        .trim_start_matches('^')
                        .trim_end_matches('$')
                        .to_string();
                    match proptest::string::string_regex(&pat) {
                        Ok(s) => s.prop_map(|v| Some(Value::String(v))).boxed(),
                        Err(_) => Just(None).boxed(),
                    }
                }
                _ if !p.required => Just(None).boxed(),
                _ => Just(Some(Value::String("apiconform".into()))).boxed(),
            };
            parts.push(s.prop_map(move |v| (n.clone(), v)).boxed());
        }
        parts.boxed()
    }

    /// Valid parameters. `strict`: no instance needs the force flag (the base of invalid cases).
    fn base(self: &Arc<Self>, strict: bool) -> BoxedStrategy<Params> {
        let me = self.clone();
        let forces = self.force_choices();
        let core = proptest::sample::select(forces).prop_flat_map(move |force| {
            let ctx = me.clone();
            let pool = if force == Some(true) && !strict {
                ctx.forced.clone()
            } else {
                ctx.strict.clone()
            };
            let inst = ctx.inst_param.clone().unwrap_or_default();
            let key = ctx.key_param.clone().unwrap_or_default();
            // For unbind: a key bound to some instances, then some of those instances.
            let pairs = if force == Some(true) && !strict {
                ctx.pairs_forced.clone()
            } else {
                ctx.pairs_strict.clone()
            };
            let ctx2 = ctx.clone();
            let pair_strategy: BoxedStrategy<(Value, Value)> = if !pairs.is_empty() {
                let c = ctx.clone();
                let (inst2, key2) = (inst.clone(), key.clone());
                proptest::sample::select(positions(pairs.len()))
                    .prop_flat_map(move |at| {
                        let (k, bound) = &pairs[at];
                        let kv = c.shape(&key2, vec![k.clone()]);
                        (c.pick(&inst2, bound.clone()), Just(kv))
                    })
                    .boxed()
            } else {
                ctx2.pick_both(&inst, pool, &key, ctx2.keys.clone(), strict)
            };
            let (inst3, key3, fname) = (inst.clone(), key.clone(), ctx.force.clone());
            pair_strategy.prop_map(move |(iv, kv)| {
                let mut p = Params::new();
                if !inst3.is_empty() {
                    p.insert(inst3.clone(), iv);
                }
                if !key3.is_empty() && key3 != inst3 {
                    p.insert(key3.clone(), kv);
                }
                if let (Some(f), Some(b)) = (&fname, force) {
                    p.insert(f.clone(), Value::Bool(b));
                }
                p
            })
        });
        let order: Vec<String> = self
            .spec
            .parameters
            .iter()
            .map(|p| p.name.clone())
            .collect();
        (core, self.others())
            .prop_map(move |(core, others)| {
                let mut all = core;
                for (n, v) in others {
                    if let Some(v) = v {
                        all.insert(n, v);
                    }
                }
                // Document order, for readable cases.
                let mut out = Params::new();
                for n in &order {
                    if let Some(v) = all.remove(n) {
                        out.insert(n.clone(), v);
                    }
                }
                out.extend(all);
                out
            })
            .boxed()
    }

    /// The transport, and the other wire forms the documents show, each in about one case in
    /// four where it applies (a value shrinking to 0 turns them off: a minimal case is in the
    /// SDKs' forms unless the form is what fails).
    fn transport(&self) -> BoxedStrategy<Transport> {
        let arms: Vec<(u32, Just<Transport>)> = self
            .transports
            .iter()
            .map(|(w, t)| (*w, Just(*t)))
            .collect();
        let has = |f: Freedom| self.spec.wire_form(f).is_some();
        let (one, action, upper, spaced) = (
            has(Freedom::IndexBase),
            has(Freedom::ActionSpelling),
            has(Freedom::BooleanSpelling),
            has(Freedom::JsonListSpacing),
        );
        (Union::new_weighted(arms), any::<u8>())
            .prop_map(move |(mut t, bits)| {
                let pick = |n: u8| (bits >> (2 * n)) & 3 == 3;
                let form = is_form(&t);
                if one && form && t.index_base == 0 && pick(0) {
                    t.index_base = 1;
                }
                t.forms = Forms {
                    action_spelling: action && pick(1),
                    upper_booleans: upper && form && pick(2),
                    spaced_json_lists: spaced && pick(3),
                };
                t
            })
            .boxed()
    }

    /// Builds the case, recording the intended rules first, then any other rule the analysis
    /// finds broken, and the situations hit.
    fn finish(
        &self,
        params: Params,
        intent: &[String],
        auth: AuthFault,
        transport: Transport,
    ) -> Case {
        let mut case = Case {
            api: self.api.clone(),
            region: self.region.clone(),
            params,
            violates: intent.to_vec(),
            situations: vec![],
            auth,
            example: None,
            transport,
        };
        let look = Lookup::with_index(&self.world, &self.index);
        let a = analyze_in(&self.spec, &self.family, &look, &case);
        let item_rules = a.item_failures.iter().flat_map(|(_, r)| r.iter());
        for r in a.broken.iter().chain(item_rules) {
            if !case.violates.contains(r) {
                case.violates.push(r.clone());
            }
        }
        case.situations = a.situations;
        case
    }

    /// Well-formed ids of a parameter that exist nowhere in the world, distinct from each other.
    fn fabricate(&self, name: &str, seed: u64, n: usize) -> Vec<String> {
        let p = self.param(name);
        let re: Option<std::sync::Arc<Regex>> = p.and_then(analyze::pattern);
        let template = self
            .pool_of(name)
            .first()
            .cloned()
            .unwrap_or_else(|| "apiconform-00000000".to_string());
        let cut = template.rfind('-').map_or(0, |i| i + 1);
        let (prefix, rest) = template.split_at(cut);
        // Where no pattern fixes the length (Alibaba key pair names), 16 characters drawn from
        // 36: a name that follows the world's own naming (`kp-linux-3`) may well exist on a
        // target holding more than the world lists.
        let width = match re {
            Some(_) => rest.len().max(1),
            None => rest.len().max(16),
        };
        let mut out: Vec<String> = Vec::new();
        let mut k: u64 = 0;
        while out.len() < n && k < 100_000 {
            let counter = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(k)
                % 36u64.pow(width.min(12) as u32);
            // Past 12 characters, more of the seed's bits: the name is not guessable.
            let counter = match width > 12 {
                true => seed.rotate_left(17).wrapping_add(k) ^ counter,
                false => counter,
            };
            k += 1;
            let alnum = format!("{prefix}{}", base36(counter, width));
            let digits = format!(
                "{prefix}{:0width$}",
                counter % 10u64.pow(width.min(18) as u32),
                width = width
            );
            for cand in [alnum, digits] {
                if re.as_ref().is_none_or(|r| r.is_match(&cand))
                    && !self.all_ids.contains(&cand)
                    && !out.contains(&cand)
                {
                    out.push(cand);
                    break;
                }
            }
        }
        out
    }

    /// A malformed variant of a well-formed id: it never matches the pattern.
    fn malform(&self, name: &str, id: &str, how: u8) -> String {
        let re = self.param(name).and_then(analyze::pattern);
        let list = self.is_list(name);
        let cand = match how % 6 {
            0 => id[..id.len().saturating_sub(1)].to_string(),
            1 => format!("{id}0"),
            2 => id.to_uppercase(),
            3 => match id.find('-') {
                Some(i) => format!("{}x{}", &id[..i], &id[i..]).replacen(&id[..i], "zz", 1),
                None => format!("x{id}"),
            },
            4 if list => String::new(),
            4 => format!("{id}-"),
            _ => {
                let mut s: String = id[..id.len().saturating_sub(1)].to_string();
                s.push('é');
                s
            }
        };
        match re {
            Some(r) if r.is_match(&cand) => {
                if list {
                    String::new()
                } else {
                    format!("{id}!")
                }
            }
            _ => cand,
        }
    }

    /// Rules the generator knows how to break, in spec order.
    pub fn breakable_rules(&self) -> Vec<String> {
        self.spec
            .rules
            .iter()
            .filter(|r| {
                let Some(p) = r.check.param().and_then(|n| self.param(n)) else {
                    return false;
                };
                match &r.check {
                    Check::Pattern { .. } => p.pattern.is_some(),
                    Check::InstanceOs { .. } => !self.bad_os.is_empty(),
                    Check::InstanceState { .. } => !self.bad_state.is_empty(),
                    Check::Exists { .. } => p.references.is_some(),
                    Check::Required { .. }
                    | Check::MaxItems { .. }
                    | Check::NonEmpty { .. }
                    | Check::ValueType { .. } => true,
                    // Not broken through a parameter: judged on the answer, or broken by an
                    // authentication fault (`auth`), or a valid wire form. Cases name only the
                    // table's parameters: an undefined one reaches the oracle from a client
                    // (the proxy), not from here.
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
                }
            })
            .map(|r| r.id.clone())
            // The family's rule on undefined parameters, after the API's own (a parameter of the
            // table under another name breaks it alone).
            .chain(
                self.known_rule()
                    .filter(|_| !self.spec.parameters.is_empty())
                    .map(String::from),
            )
            .collect()
    }

    fn mutation(self: &Arc<Self>, rule_id: &str) -> Option<BoxedStrategy<Vec<Mut>>> {
        if self.known_rule() == Some(rule_id) {
            let names: Vec<String> = self
                .spec
                .parameters
                .iter()
                .map(|p| p.name.clone())
                .collect();
            return Some(
                proptest::sample::select(names)
                    .prop_map(|n| vec![Mut::Undefined(n)])
                    .boxed(),
            );
        }
        let rule = self.spec.rules.iter().find(|r| r.id == rule_id)?;
        let name = rule.check.param()?.to_string();
        let p = self.param(&name)?.clone();
        let me = self.clone();
        let n = name.clone();
        Some(match &rule.check {
            Check::Required { .. } => Just(vec![Mut::Remove(name)]).boxed(),
            Check::NonEmpty { .. } => {
                let v = if self.is_list(&name) {
                    Value::Array(vec![])
                } else {
                    Value::String(String::new())
                };
                Just(vec![Mut::Set(name, v)]).boxed()
            }
            Check::MaxItems { limit, .. } => {
                let limit = *limit as usize;
                // Lean on the boundary: limit+1 most of the time, a few more now and then.
                let extra = self.strict_extra();
                (prop_oneof![3 => Just(0usize), 1 => 0..=extra], any::<u64>())
                    .prop_map(move |(extra, seed)| {
                        let want = limit + 1 + extra;
                        let pool = me.pool_of(&n);
                        let mut v: Vec<String> = Vec::with_capacity(want);
                        if !pool.is_empty() {
                            let off = (seed as usize) % pool.len();
                            v.extend(
                                pool.iter()
                                    .cycle()
                                    .skip(off)
                                    .take(want.min(pool.len()))
                                    .cloned(),
                            );
                        }
                        let missing = want - v.len();
                        v.extend(me.fabricate(&n, seed, missing));
                        vec![Mut::Set(n.clone(), me.shape(&n, v))]
                    })
                    .boxed()
            }
            Check::Pattern { .. } => {
                let pool = self.pool_of(&name).to_vec();
                let sample: BoxedStrategy<String> = if pool.is_empty() {
                    any::<u64>()
                        .prop_map({
                            let me = me.clone();
                            let n = n.clone();
                            move |s| me.fabricate(&n, s, 1).pop().unwrap_or_default()
                        })
                        .boxed()
                } else {
                    proptest::sample::select(pool).boxed()
                };
                (sample, 0u8..6, any::<Index>())
                    .prop_map(move |(id, how, idx)| {
                        vec![Mut::ReplaceItem(n.clone(), idx, me.malform(&n, &id, how))]
                    })
                    .boxed()
            }
            Check::ValueType { .. } => {
                let wrong: BoxedStrategy<Mut> = match p.kind {
                    ParamType::Boolean => prop_oneof![
                        Just(Mut::Set(n.clone(), Value::String("maybe".into()))),
                        Just(Mut::Set(n.clone(), Value::from(2))),
                    ]
                    .boxed(),
                    ParamType::Integer => {
                        Just(Mut::Set(n.clone(), Value::String("abc".into()))).boxed()
                    }
                    ParamType::String => Just(Mut::Set(n.clone(), Value::from(12345))).boxed(),
                    ParamType::StringList => {
                        Just(Mut::Set(n.clone(), Value::Array(vec![Value::from(12345)]))).boxed()
                    }
                    ParamType::JsonStringList => Just(Mut::RawText(n.clone())).boxed(),
                };
                wrong.prop_map(|m| vec![m]).boxed()
            }
            Check::Exists { .. } => (any::<u64>(), any::<Index>())
                .prop_map(move |(seed, idx)| {
                    let id = me.fabricate(&n, seed, 1).pop().unwrap_or_default();
                    vec![Mut::ReplaceItem(n.clone(), idx, id)]
                })
                .boxed(),
            Check::InstanceOs { .. } => (
                proptest::sample::select(self.bad_os.clone()),
                any::<Index>(),
            )
                .prop_map(move |(id, idx)| vec![Mut::ReplaceItem(n.clone(), idx, id)])
                .boxed(),
            Check::InstanceState { .. } => {
                let offs: Vec<Option<bool>> = self
                    .force_choices()
                    .into_iter()
                    .filter(|f| *f != Some(true))
                    .collect();
                (
                    proptest::sample::select(self.bad_state.clone()),
                    any::<Index>(),
                    proptest::sample::select(offs),
                )
                    .prop_map(move |(id, idx, off)| {
                        vec![Mut::ReplaceItem(n.clone(), idx, id), Mut::Force(off)]
                    })
                    .boxed()
            }
            // No parameter breaks these (see `breakable_rules`).
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
            | Check::WireForms => return None,
        })
    }

    fn strict_extra(&self) -> usize {
        self.extra
    }

    fn apply(&self, params: &mut Params, muts: &[Mut]) {
        for m in muts {
            match m {
                Mut::Remove(n) => {
                    params.remove(n);
                }
                Mut::Set(n, v) => {
                    params.insert(n.clone(), v.clone());
                }
                Mut::ReplaceItem(n, idx, id) => match params.get_mut(n) {
                    Some(Value::Array(a)) if !a.is_empty() => {
                        let i = idx.index(a.len());
                        a[i] = Value::String(id.clone());
                    }
                    _ => {
                        let v = self.shape(n, vec![id.clone()]);
                        params.insert(n.clone(), v);
                    }
                },
                Mut::DupItem(n, idx) => {
                    let limit = self.limit(n).unwrap_or(usize::MAX);
                    if let Some(Value::Array(a)) = params.get_mut(n) {
                        if a.is_empty() {
                            continue;
                        }
                        let i = idx.index(a.len());
                        let dup = a[i].clone();
                        if a.len() < limit {
                            a.push(dup);
                        } else if a.len() >= 2 {
                            let j = if i == a.len() - 1 { 0 } else { i };
                            let last = a.len() - 1;
                            a[last] = a[j].clone();
                        }
                    }
                }
                Mut::RawText(n) => {
                    let kind = self.param(n).map_or(ParamType::StringList, |p| p.kind);
                    let its = params.get(n).map(|v| items(v, kind)).unwrap_or_default();
                    // Comma-separated ids: readable, and never JSON.
                    let text = if its.is_empty() {
                        "[unterminated".to_string()
                    } else {
                        its.join(",")
                    };
                    params.insert(n.clone(), Value::String(text));
                }
                Mut::Unbound(n, idx, choice) => {
                    let key = self.key_param.clone().unwrap_or_default();
                    let kind = self.param(&key).map_or(ParamType::StringList, |p| p.kind);
                    let keys = params.get(&key).map(|v| items(v, kind)).unwrap_or_default();
                    let present = params
                        .get(n)
                        .map(|v| items(v, ParamType::StringList))
                        .unwrap_or_default();
                    let candidates: Vec<&String> =
                        self.strict
                            .iter()
                            .filter(|id| !present.contains(id))
                            .filter(|id| {
                                self.world.instances.iter().any(|i| {
                                    &i.id == *id && keys.iter().any(|k| !i.keys.contains(k))
                                })
                            })
                            .collect();
                    if !candidates.is_empty() {
                        let id = candidates[choice.index(candidates.len())].clone();
                        self.apply(params, &[Mut::ReplaceItem(n.clone(), *idx, id)]);
                    }
                }
                Mut::Undefined(n) => {
                    let name = miscased(n);
                    if self.param(&name).is_none() {
                        let v = params
                            .get(n)
                            .cloned()
                            .unwrap_or_else(|| Value::String("x".into()));
                        params.insert(name, v);
                    }
                }
                Mut::Force(v) => {
                    if let Some(f) = &self.force {
                        match v {
                            Some(b) => {
                                params.insert(f.clone(), Value::Bool(*b));
                            }
                            None => {
                                params.remove(f);
                            }
                        }
                    }
                }
            }
        }
    }

    /// A valid-looking case (drawn from `seed`) whose every instance id is one the generator
    /// makes for an instance that exists nowhere in the world: whatever a target answers to it,
    /// no instance changes. Signed as SDKs sign (the family's first scheme and method).
    pub fn absent(self: &Arc<Self>, seed: u64) -> Case {
        let mut runner = super::seeded_runner(seed);
        let tree = self
            .base(true)
            .new_tree(&mut runner)
            .expect("case strategies never reject");
        let mut params = proptest::strategy::ValueTree::current(&tree);
        if let Some(inst) = &self.inst_param {
            let ids = self.fabricate(inst, seed, 1);
            params.insert(inst.clone(), self.shape(inst, ids));
        }
        let transport = self
            .transports
            .iter()
            .map(|(_, t)| *t)
            .next()
            .expect("every family has a transport");
        self.finish(params, &[], AuthFault::None, transport)
    }

    /// Valid cases.
    pub fn valid(self: &Arc<Self>) -> BoxedStrategy<Case> {
        let me = self.clone();
        (self.base(false), self.transport())
            .prop_map(move |(p, t)| me.finish(p, &[], AuthFault::None, t))
            .boxed()
    }

    /// Cases breaking the given rules (distinct parameters), on a strict valid base.
    pub fn violating(self: &Arc<Self>, rules: &[String]) -> Option<BoxedStrategy<Case>> {
        let mut muts = Vec::new();
        let mut params_seen = BTreeSet::new();
        let mut intent = Vec::new();
        for r in rules {
            let param = match self.spec.rules.iter().find(|x| &x.id == r) {
                Some(x) => x.check.param()?.to_string(),
                // Names no parameter of the table: never shares one with another rule.
                None if self.known_rule() == Some(r.as_str()) => String::new(),
                None => return None,
            };
            if !params_seen.insert(param) {
                continue;
            }
            muts.push(self.mutation(r)?);
            intent.push(r.clone());
        }
        let me = self.clone();
        Some(
            (self.base(true), muts, self.transport())
                .prop_map(move |(mut p, ms, t)| {
                    me.apply(&mut p, &ms.concat());
                    me.finish(p, &intent, AuthFault::None, t)
                })
                .boxed(),
        )
    }

    /// Cases breaking 2..=`max` rules on distinct parameters.
    pub fn multi(self: &Arc<Self>, max: usize) -> Option<BoxedStrategy<Case>> {
        let rules = self.breakable_rules();
        if rules.len() < 2 {
            return None;
        }
        let me = self.clone();
        let hi = max.min(rules.len()).max(2);
        Some(
            subsequence(rules, 2..=hi)
                .prop_flat_map(move |rs| me.violating(&rs).unwrap_or_else(|| me.valid()))
                .boxed(),
        )
    }

    /// A valid request with an authentication fault, when the family has a rule for it.
    pub fn auth(self: &Arc<Self>, fault: AuthFault) -> Option<BoxedStrategy<Case>> {
        let rule = auth_rule(&self.family, fault)?.id.clone();
        let me = self.clone();
        Some(
            (self.base(true), self.transport())
                .prop_map(move |(p, t)| me.finish(p, std::slice::from_ref(&rule), fault, t))
                .boxed(),
        )
    }

    /// One arm per unspecified situation the spec lists and the generator can produce.
    pub fn situation_arms(self: &Arc<Self>) -> Vec<BoxedStrategy<Case>> {
        self.listed
            .clone()
            .into_iter()
            .filter_map(|s| self.situation_arm(s))
            .collect()
    }

    /// Cases that hit one listed situation; `None` when the spec does not list it or the
    /// generator cannot produce it in this world.
    pub fn situation_arm(self: &Arc<Self>, s: Situation) -> Option<BoxedStrategy<Case>> {
        if !self.listed.contains(&s) {
            return None;
        }
        let inst = self.inst_param.clone().unwrap_or_default();
        let muts: BoxedStrategy<Vec<Mut>> = match s {
            Situation::DuplicateIds if self.is_list(&self.spec.batch.param) => {
                let b = self.spec.batch.param.clone();
                any::<Index>()
                    .prop_map(move |i| vec![Mut::DupItem(b.clone(), i)])
                    .boxed()
            }
            Situation::RunningWithoutForce | Situation::RunningWithForce
                if !self.running.is_empty() =>
            {
                let force = if s == Situation::RunningWithForce {
                    vec![Some(true)]
                } else {
                    self.force_choices()
                        .into_iter()
                        .filter(|f| *f != Some(true))
                        .collect()
                };
                let n = inst.clone();
                // Where no rule names the flag (ECM states no state restriction), the spec's
                // boolean Force… parameter is the flag the situation is about.
                let flag = self
                    .force
                    .clone()
                    .or_else(|| self.spec.force_flag().map(String::from));
                (
                    proptest::sample::select(self.running.clone()),
                    any::<Index>(),
                    proptest::sample::select(force),
                )
                    .prop_map(move |(id, i, f)| {
                        let set = match (&flag, f) {
                            (Some(name), Some(b)) => Mut::Set(name.clone(), Value::Bool(b)),
                            (Some(name), None) => Mut::Remove(name.clone()),
                            (None, f) => Mut::Force(f),
                        };
                        vec![Mut::ReplaceItem(n.clone(), i, id), set]
                    })
                    .boxed()
            }
            Situation::UnbindNotBound if self.spec.effect.kind == EffectKind::Unbind => {
                let n = inst.clone();
                (any::<Index>(), any::<Index>())
                    .prop_map(move |(i, c)| vec![Mut::Unbound(n.clone(), i, c)])
                    .boxed()
            }
            Situation::OneBasedIndex => {
                let forms: Vec<Transport> = self
                    .transports
                    .iter()
                    .map(|(_, t)| *t)
                    .filter(is_form)
                    .map(|t| Transport { index_base: 1, ..t })
                    .collect();
                if forms.is_empty() {
                    return None;
                }
                let me = self.clone();
                return Some(
                    (self.base(true), proptest::sample::select(forms))
                        .prop_map(move |(p, t)| me.finish(p, &[], AuthFault::None, t))
                        .boxed(),
                );
            }
            Situation::MultipleViolations => return self.multi(2),
            Situation::OtherRegion => {
                // A key pair of the right product that exists only in another region.
                let key = self.key_param.clone()?;
                let product = analyze::param(&self.spec, &key)
                    .and_then(|p| analyze::resource_of(&self.spec, p))
                    .map_or(self.spec.api.product, |r| r.0);
                let elsewhere: Vec<String> = self
                    .world
                    .key_pairs
                    .iter()
                    .filter(|k| k.product == product && k.region != self.region)
                    .filter(|k| {
                        !self
                            .world
                            .key_pairs
                            .iter()
                            .any(|o| o.id == k.id && o.region == self.region)
                    })
                    .map(|k| k.id.clone())
                    .collect();
                if elsewhere.is_empty() {
                    return None;
                }
                (proptest::sample::select(elsewhere), any::<Index>())
                    .prop_map(move |(id, i)| vec![Mut::ReplaceItem(key.clone(), i, id)])
                    .boxed()
            }
            _ => return None,
        };
        let me = self.clone();
        Some(
            (self.base(true), muts, self.transport())
                .prop_map(move |(mut p, m, t)| {
                    me.apply(&mut p, &m);
                    me.finish(p, &[], AuthFault::None, t)
                })
                .boxed(),
        )
    }

    /// A batch of exactly the batch parameter's limit, taken from the instances every rule
    /// accepts (for unbind effects most of them do not hold the key: the case then also hits
    /// `unbind_not_bound`, recorded). `None` without a limit or with too few instances.
    pub fn at_limit(self: &Arc<Self>) -> Option<BoxedStrategy<Case>> {
        let n = self.spec.batch.param.clone();
        if Some(&n) != self.inst_param.as_ref() || !self.is_list(&n) {
            return None;
        }
        let limit = self.limit(&n)?;
        if self.strict.len() < limit {
            return None;
        }
        let me = self.clone();
        Some(
            (self.base(true), any::<u64>(), self.transport())
                .prop_map(move |(mut p, seed, t)| {
                    let off = (seed as usize) % me.strict.len();
                    let items: Vec<String> = me
                        .strict
                        .iter()
                        .cycle()
                        .skip(off)
                        .take(limit)
                        .cloned()
                        .collect();
                    p.insert(n.clone(), me.shape(&n, items));
                    me.finish(p, &[], AuthFault::None, t)
                })
                .boxed(),
        )
    }

    /// A valid request naming a RUNNING instance with the force flag true, where a rule lifts
    /// a state restriction with it; `None` otherwise.
    pub fn forced_running(self: &Arc<Self>) -> Option<BoxedStrategy<Case>> {
        if self.force.is_none() || self.running.is_empty() {
            return None;
        }
        let n = self.inst_param.clone()?;
        let me = self.clone();
        Some(
            (
                self.base(true),
                proptest::sample::select(self.running.clone()),
                any::<Index>(),
                self.transport(),
            )
                .prop_map(move |(mut p, id, i, t)| {
                    me.apply(
                        &mut p,
                        &[Mut::ReplaceItem(n.clone(), i, id), Mut::Force(Some(true))],
                    );
                    me.finish(p, &[], AuthFault::None, t)
                })
                .boxed(),
        )
    }
}
