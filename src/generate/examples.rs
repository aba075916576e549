//! The documents' own examples as cases. A target that refuses the request a document prints
//! breaks every user who copied it, and no generated case looks quite like it (seed 002's
//! `Action=unBindInstanceKey`, seeds 000/004's `InstanceIds.1`, seed 003's `["i-…", "i-…"]`
//! with a space). Each example becomes one case: its ids replaced by world ids of the same kind
//! (instances and key pairs that make the request valid, so it must succeed as the printed
//! response shows), everything else as the document writes it — the method, the action's
//! spelling, the list numbering, the JSON list's spacing, the response format.

use serde_json::Value;

use super::values::signature_method;
use crate::case::analysis::{analyze, param_of_wire, resource_of};
use crate::case::{AuthFault, Case, Forms, Transport};
use crate::spec::{
    Example, ExampleFormat, Freedom, InstanceState, LoadedApi, Method, Os, ParamType, Params,
    ResourceKind, ResponseFormat, SignatureMethod, SpecSet,
};
use crate::world::World;

/// One case per example of the API, or why an example cannot be sent as one (a request the
/// harness cannot read, or a world without resources that make it valid).
pub fn example_cases(set: &SpecSet, api: &LoadedApi, world: &World) -> Vec<Result<Case, String>> {
    api.spec
        .examples
        .iter()
        .map(|ex| {
            example_case(set, api, world, ex).map_err(|why| format!("example `{}`: {why}", ex.name))
        })
        .collect()
}

/// A request as an example prints it.
struct Printed {
    method: Method,
    /// From the URL's query or the `X-TC-Action` header.
    action: Option<String>,
    /// Wire name and value, in order (lists still flattened: `InstanceIds.1`).
    pairs: Vec<(String, Value)>,
}

fn parse(text: &str) -> Result<Printed, String> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().ok_or("the request is empty")?;
    if let Some(rest) = first.strip_prefix("POST ") {
        let _ = rest;
        // Headers, then the JSON body.
        let mut action = None;
        let mut body = String::new();
        let mut in_body = false;
        for line in text.lines().skip(1) {
            if in_body {
                body.push_str(line);
                body.push('\n');
            } else if line.trim().is_empty() {
                in_body = true;
            } else if let Some((k, v)) = line.split_once(':') {
                if k.trim().eq_ignore_ascii_case("X-TC-Action") {
                    action = Some(v.trim().to_string());
                }
            }
        }
        let json: Value = serde_json::from_str(body.trim())
            .map_err(|e| format!("the printed body is not JSON ({e})"))?;
        let obj = json
            .as_object()
            .ok_or("the printed body is not a JSON object")?;
        return Ok(Printed {
            method: Method::Post,
            action,
            pairs: obj.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        });
    }
    if !first.starts_with("http") {
        return Err(format!("cannot read a request starting `{first}`"));
    }
    let query = first.split_once('?').map_or("", |(_, q)| q);
    let mut text_pairs: Vec<&str> = query.split('&').collect();
    text_pairs.extend(lines.map(|l| l.trim_start_matches('&')));
    let mut action = None;
    let mut pairs = Vec::new();
    for p in text_pairs.into_iter().filter(|p| !p.is_empty()) {
        // `<Common request parameters>` and the like stand for the signature parameters.
        if p.starts_with('<') {
            continue;
        }
        let (k, v) = p
            .split_once('=')
            .ok_or(format!("`{p}` is not name=value"))?;
        match k {
            "Action" => action = Some(v.to_string()),
            "Version" => {}
            _ => pairs.push((k.to_string(), Value::String(v.to_string()))),
        }
    }
    Ok(Printed {
        method: Method::Get,
        action,
        pairs,
    })
}

fn example_case(
    set: &SpecSet,
    api: &LoadedApi,
    world: &World,
    ex: &Example,
) -> Result<Case, String> {
    let spec = &api.spec;
    let printed = parse(&ex.request)?;
    let mut forms = Forms::default();
    if let Some(action) = &printed.action {
        if action != &spec.api.action {
            match spec.wire_form(Freedom::ActionSpelling) {
                Some(w) if &w.form == action => forms.action_spelling = true,
                _ => {
                    return Err(format!(
                        "it calls `{action}`, a spelling the spec does not list"
                    ))
                }
            }
        }
    }
    // Gather the printed values by parameter: lists from `Name.N` items or JSON text.
    let mut params = Params::new();
    let mut base: Option<u32> = None;
    for (wire, value) in &printed.pairs {
        let (stem, index) = match wire.rsplit_once('.') {
            Some((stem, n)) if n.bytes().all(|b| b.is_ascii_digit()) && !n.is_empty() => {
                (stem, n.parse::<u32>().ok())
            }
            _ => (wire.as_str(), None),
        };
        let p = param_of_wire(spec, stem).ok_or(format!(
            "`{wire}` is not a parameter of {}",
            spec.api.action
        ))?;
        let entry = params.entry(p.name.clone());
        match (index, p.kind) {
            (Some(n), _) => {
                base = Some(base.map_or(n, |b| b.min(n)));
                let list = entry.or_insert_with(|| Value::Array(vec![]));
                if let Value::Array(items) = list {
                    items.push(value.clone());
                }
            }
            (None, ParamType::JsonStringList) => {
                let text = value.as_str().unwrap_or_default();
                if text.contains(", ") {
                    forms.spaced_json_lists = true;
                }
                let items: Vec<String> = serde_json::from_str(text)
                    .map_err(|e| format!("`{wire}` is not a JSON list ({e})"))?;
                entry.or_insert(Value::from(items));
            }
            (None, ParamType::Boolean) => {
                let text = value
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or(value.to_string());
                forms.upper_booleans |= text == "TRUE" || text == "FALSE";
                entry.or_insert(Value::Bool(text.eq_ignore_ascii_case("true")));
            }
            (None, _) => {
                entry.or_insert(value.clone());
            }
        }
    }
    let (region, ids) = substitute(api, world, &params)?;
    for (name, new) in ids {
        params.insert(name, new);
    }
    for p in &spec.parameters {
        if p.name.to_ascii_lowercase().contains("region") && params.contains_key(&p.name) {
            params.insert(p.name.clone(), Value::String(region.clone()));
        }
    }
    let family = set.family(spec.api.family);
    // A printed URL carries its signature in the query: a scheme other than TC3 that the
    // family signs GETs with; a printed POST with a JSON body is TC3's.
    let signature = family
        .signatures
        .iter()
        .filter(|s| {
            s.methods
                .iter()
                .any(|m| m.eq_ignore_ascii_case(printed.method.as_str()))
        })
        .filter_map(|s| signature_method(&s.id))
        .find(|s| (printed.method == Method::Post) == (*s == SignatureMethod::Tc3HmacSha256))
        .ok_or("the family signs no request of this method")?;
    let format = match (spec.api.family, ex.response_format) {
        (crate::protocol::FamilyId::AliyunRpc, ExampleFormat::Json) => ResponseFormat::Json,
        _ => ResponseFormat::Default,
    };
    let mut case = Case {
        api: api.name.clone(),
        region,
        params,
        violates: vec![],
        situations: vec![],
        auth: AuthFault::None,
        example: Some(ex.name.clone()),
        transport: Transport {
            method: printed.method,
            signature,
            format,
            index_base: base.unwrap_or(0),
            forms,
        },
    };
    let a = analyze(spec, family, world, &case);
    if !a.broken.is_empty() || !a.soft.is_empty() || !a.situations.is_empty() {
        return Err(format!(
            "the world holds no resources that make it valid (it would break {:?}, hit {:?})",
            a.broken.iter().chain(&a.soft).collect::<Vec<_>>(),
            a.situations
        ));
    }
    case.situations = a.situations;
    Ok(case)
}

/// World ids for the example's: as many instances as it names, Linux and STOPPED (no rule
/// holds them back), in one region with a key pair — bound to every one of them for an unbind,
/// so the call has something to remove. Returns the region and the replaced parameters.
fn substitute(
    api: &LoadedApi,
    world: &World,
    params: &Params,
) -> Result<(String, Vec<(String, Value)>), String> {
    let spec = &api.spec;
    let unbind = spec.effect.kind == crate::spec::EffectKind::Unbind;
    let mut inst_param = None;
    let mut key_param = None;
    for p in &spec.parameters {
        match resource_of(spec, p) {
            Some((_, ResourceKind::Instance)) if params.contains_key(&p.name) => {
                inst_param = Some(p)
            }
            Some((product, ResourceKind::KeyPair)) if params.contains_key(&p.name) => {
                key_param = Some((p, product))
            }
            _ => {}
        }
    }
    let inst_param = inst_param.ok_or("it names no instance")?;
    let (key_param, key_product) = key_param.ok_or("it names no key pair")?;
    let count = |v: Option<&Value>| match v {
        Some(Value::Array(a)) => a.len(),
        Some(_) => 1,
        None => 0,
    };
    let wanted = count(params.get(&inst_param.name));
    if count(params.get(&key_param.name)) != 1 {
        return Err("it names other than one key pair".into());
    }
    let product = spec.instance_product();
    for kp in world.key_pairs.iter().filter(|k| k.product == key_product) {
        let fit: Vec<&str> = world
            .instances
            .iter()
            .filter(|i| i.product == product && i.region == kp.region)
            .filter(|i| i.os == Os::Linux && i.state == InstanceState::Stopped)
            .filter(|i| !unbind || i.keys.contains(&kp.id))
            .map(|i| i.id.as_str())
            .collect();
        if fit.len() < wanted {
            continue;
        }
        let as_written = |name: &str, items: Vec<&str>| -> Value {
            match params.get(name) {
                Some(Value::Array(_)) => Value::from(items),
                _ => Value::String(items.concat()),
            }
        };
        return Ok((
            kp.region.clone(),
            vec![
                (
                    inst_param.name.clone(),
                    as_written(&inst_param.name, fit[..wanted].to_vec()),
                ),
                (
                    key_param.name.clone(),
                    as_written(&key_param.name, vec![&kp.id]),
                ),
            ],
        ));
    }
    Err(format!(
        "the world holds no key pair with {wanted} STOPPED Linux instances{}",
        if unbind { " bound to it" } else { "" }
    ))
}
