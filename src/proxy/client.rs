//! The client side of an exchange: does the request speak the documents? Bytes in, a
//! [`ClientView`] out (the API it calls, the abstract [`Case`] it asks for, the findings), with
//! no I/O. The family is recognised and the request decoded by [`crate::protocol`] (the
//! emulator decodes with the same functions); the parameters are judged by the spec's own
//! rules through [`crate::case::analysis`], the same reading the oracle takes of a case.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::Value;

use super::{Finding, Side};
use crate::case::analysis::{self, param_of_wire};
use crate::case::{AuthFault, Case, Forms, Transport};
use crate::oracle::Strength;
use crate::protocol::{
    self, received, FamilyId, HttpRequest, Keys, NonceStore, ParsedRequest, SecretStore,
};
use crate::spec::{
    Check, Freedom, LoadedApi, Method, ParamType, Params, Rule, Situation, Source, SpecSet,
};
use crate::world::World;

/// What the client side of one exchange says.
#[derive(Debug, Clone, Default)]
pub struct ClientView {
    /// The family, when it could be told (also from a request that could not be decoded).
    pub family: Option<FamilyId>,
    /// The decoded request's action (as sent), when readable.
    pub action: Option<String>,
    /// Index of the API in the spec set, when the request calls one of the specs' APIs.
    pub api: Option<usize>,
    /// What the request asks for, by the document's parameter names, with the authentication
    /// fault it carries: the case the server side is judged by.
    pub case: Option<Case>,
    /// Where the client breaks the documents.
    pub findings: Vec<Finding>,
    /// What the documents leave open about the request (never a failure).
    pub notes: Vec<Finding>,
}

/// The credentials the client is expected to sign with, as the target knows them.
pub struct Creds<'a> {
    /// A pair per vendor.
    pub keys: &'a Keys,
}

impl SecretStore for Creds<'_> {
    fn secret(&self, family: FamilyId, id: &str) -> Option<String> {
        let c = self.keys.for_family(family);
        (c.id == id).then(|| c.secret.clone())
    }
}

/// Nonces the proxy saw, per family and secret id, within the longest window (API 2.0: two
/// hours): a client that reuses one within the window is told so.
#[derive(Default)]
pub struct Nonces {
    seen: Mutex<HashMap<(FamilyId, String, String), i64>>,
}

impl NonceStore for Nonces {
    fn check_and_insert(&self, family: FamilyId, secret_id: &str, nonce: &str, now: i64) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() > 100_000 {
            seen.retain(|_, t| now - *t < 7200);
        }
        let key = (family, secret_id.to_string(), nonce.to_string());
        match seen.get(&key) {
            Some(t) if now - *t < 7200 => false,
            _ => {
                seen.insert(key, now);
                true
            }
        }
    }
}

/// Accepts every nonce: the signature is checked apart from the replay window.
struct AnyNonce;

impl NonceStore for AnyNonce {
    fn check_and_insert(&self, _: FamilyId, _: &str, _: &str, _: i64) -> bool {
        true
    }
}

/// The proxy's own rule ids for what no spec rule names (the spec's rule ids are used
/// everywhere else).
pub mod rules {
    /// The request is a request of one of the families at all.
    pub const READABLE: &str = "request-readable";
    /// A known action is called with the version the spec documents.
    pub const VERSION: &str = "version-exists";
    /// Every business parameter is one the API's table lists, by its wire name.
    pub const PARAMETER_KNOWN: &str = "parameter-known";
    /// `Name.N` lists numbered from the base the documents show.
    pub const INDEX_BASE: &str = "index-base";
}

/// Judges the client side of a request received at `now` (Unix seconds).
pub fn judge(
    set: &SpecSet,
    creds: &Creds<'_>,
    nonces: &Nonces,
    req: &HttpRequest,
    now: i64,
) -> ClientView {
    let mut view = ClientView::default();
    let parsed = match protocol::parse_request(req) {
        Ok(p) => p,
        Err(e) => {
            view.family = Some(e.family);
            view.action = e.action.clone();
            view.findings.push(Finding {
                side: Side::Client,
                api: None,
                rule: rules::READABLE.into(),
                source: None,
                expected: format!(
                    "a request of {} with its common parameters and a supported method",
                    e.family.as_str()
                ),
                actual: format!("{}: {}", e.code, e.message),
                detail: "the request could not be decoded as any of the three families (Tencent API 3.0, Tencent API 2.0, Alibaba RPC); the target is expected to refuse it".into(),
                strength: None,
            });
            return view;
        }
    };
    view.family = Some(parsed.family);
    view.action = Some(parsed.action.clone());
    let Some(index) = find_api(set, &parsed, &mut view) else {
        return view;
    };
    let api = &set.apis[index];
    view.api = Some(index);
    let mut auth = authenticate(set, api, creds, nonces, req, &parsed, now, &mut view);
    if auth == AuthFault::None && unknown_version(set, api, &parsed) {
        auth = AuthFault::UnknownVersion;
    }
    let known = set
        .family(parsed.family)
        .rules
        .iter()
        .find(|r| r.check == Check::KnownParameters);
    if auth == AuthFault::UnknownVersion {
        // Refused for its version whatever it holds: its parameters are not judged against
        // an API guessed from the action alone (CVM and ECM share one).
        let case = to_case(
            set,
            api,
            known,
            req,
            &parsed,
            auth,
            &mut ClientView::default(),
        );
        view.case = Some(case);
        return view;
    }
    let case = to_case(set, api, known, req, &parsed, auth, &mut view);
    parameters(set, api, &case, &mut view);
    view.case = Some(case);
    view
}

/// The family's `version_known` rule, where its documents give a code for an unknown version.
fn version_rule(set: &SpecSet, family: FamilyId) -> Option<&Rule> {
    set.family(family)
        .rules
        .iter()
        .find(|r| r.check == Check::VersionKnown)
}

/// Whether the request names a version the API does not have, in a family with a rule for it
/// (the server side then expects that rule's code; [`find_api`] has named the finding).
fn unknown_version(set: &SpecSet, api: &LoadedApi, parsed: &ParsedRequest) -> bool {
    api.spec.api.version != parsed.version && version_rule(set, parsed.family).is_some()
}

/// The API the request calls: same family, the action as the spec or a documented wire form
/// spells it, and the spec's version. A known action under another version is a finding; an
/// action no spec describes (`DescribeInstances`, say) is forwarded and not judged.
fn find_api(set: &SpecSet, parsed: &ParsedRequest, view: &mut ClientView) -> Option<usize> {
    let spells = |api: &LoadedApi| {
        api.spec.api.action == parsed.action
            || api
                .spec
                .wire_form(Freedom::ActionSpelling)
                .is_some_and(|w| w.form == parsed.action)
    };
    let same_action: Vec<usize> = set
        .apis
        .iter()
        .enumerate()
        .filter(|(_, a)| a.spec.api.family == parsed.family && spells(a))
        .map(|(i, _)| i)
        .collect();
    if let Some(&i) = same_action
        .iter()
        .find(|&&i| set.apis[i].spec.api.version == parsed.version)
    {
        return Some(i);
    }
    let &first = same_action.first()?;
    let api = &set.apis[first];
    let versions: Vec<String> = same_action
        .iter()
        .filter_map(|&i| set.apis[i].spec.api.version.clone())
        .collect();
    let family_rule = version_rule(set, parsed.family);
    view.findings.push(Finding {
        side: Side::Client,
        api: Some(api.name.clone()),
        rule: family_rule.map_or(rules::VERSION.into(), |r| r.id.clone()),
        source: Some(family_rule.map_or(api.spec.api.source.clone(), |r| r.source.clone())),
        expected: format!("{} with Version {}", parsed.action, versions.join(" or ")),
        actual: format!("Version {}", parsed.version.as_deref().unwrap_or("(none)")),
        detail: format!(
            "no document describes {} at this version; judged as {}",
            parsed.action, api.name
        ),
        strength: Some(Strength::Seed),
    });
    Some(first)
}

/// The authentication checks in the order a server makes them — secret id, signature (with
/// the step where it diverges), timestamp window, nonce — each a finding naming the family
/// rule; the first that fails is the fault the case carries.
#[allow(clippy::too_many_arguments)]
fn authenticate(
    set: &SpecSet,
    api: &LoadedApi,
    creds: &Creds<'_>,
    nonces: &Nonces,
    req: &HttpRequest,
    parsed: &ParsedRequest,
    now: i64,
    view: &mut ClientView,
) -> AuthFault {
    let family = set.family(parsed.family);
    let rule_of = |fault: AuthFault| analysis::auth_rule(family, fault);
    let mut find = |fault: AuthFault, expected: String, actual: String, detail: String| {
        let rule = rule_of(fault);
        view.findings.push(Finding {
            side: Side::Client,
            api: Some(api.name.clone()),
            rule: rule.map_or("signature".into(), |r| r.id.clone()),
            source: rule.map(|r| r.source.clone()),
            expected,
            actual,
            detail,
            strength: Some(Strength::Seed),
        });
        fault
    };
    let Some(secret) = creds.secret(parsed.family, &parsed.secret_id) else {
        return find(
            AuthFault::UnknownSecretId,
            "the configured secret id (--tencent-secret-id / --alibaba-access-key-id)".into(),
            format!("secret id {}", parsed.secret_id),
            "the request is signed for a secret id the proxy was not given: it cannot verify the signature".into(),
        );
    };
    // The signature alone: the window and the nonce are checked below, each by its rule.
    let signed = protocol::verify(req, parsed, creds, parsed.timestamp, &AnyNonce);
    if let Err(e) = signed {
        // Never the signature the proxy computes: that would sign, with the configured
        // secret, whatever bytes the client chose (see `protocol::received`).
        let d = received::divergence(req, parsed, &secret);
        let detail = match &d {
            Some(d) => {
                let mut text = format!(
                    "diverges at step `{}`: {}\nsecret id {} is the configured one; compare these strings with the ones your client signed (`apiconform sign` prints them for a request you describe)",
                    d.step, d.why, parsed.secret_id
                );
                if !d.signed_headers.is_empty() {
                    text.push_str(&format!("\nsigned headers: {}", d.signed_headers.join(";")));
                }
                if !d.canonical_request.is_empty() {
                    text.push_str(&format!(
                        "\ncanonical request (from the bytes received):\n{}\nstring to sign:\n{}",
                        d.canonical_request, d.string_to_sign
                    ));
                }
                text
            }
            None => format!("{}: {}", e.code, e.message),
        };
        return find(
            AuthFault::TamperedSignature,
            format!(
                "a {:?} signature over the request with the configured secret",
                parsed.signature
            ),
            d.map_or_else(
                || format!("{}: {}", e.code, e.message),
                |d| format!("signature {} (step `{}` diverges)", d.sent, d.step),
            ),
            detail,
        );
    }
    if let Some(seconds) = family.rules.iter().find_map(|r| match r.check {
        Check::TimestampWindow { seconds } => Some(seconds),
        _ => None,
    }) {
        let skew = now.abs_diff(parsed.timestamp);
        if skew > u64::from(seconds) {
            let fault = if parsed.timestamp > now {
                AuthFault::FutureTimestamp
            } else {
                AuthFault::ExpiredTimestamp
            };
            return find(
                fault,
                format!("a timestamp within {seconds} s of the proxy's clock"),
                format!("timestamp {} ({skew} s away)", parsed.timestamp),
                "the client's clock, or a request signed long before it was sent".into(),
            );
        }
    }
    if let Some(nonce) = &parsed.nonce {
        if !nonces.check_and_insert(parsed.family, &parsed.secret_id, nonce, now) {
            return find(
                AuthFault::ReusedNonce,
                "a nonce not used before within the replay window".into(),
                format!("nonce {nonce}, already sent"),
                "a client must draw a fresh nonce for every request, retries included".into(),
            );
        }
    }
    AuthFault::None
}

/// The case the request asks for: its parameters by the document's names (form text read as
/// the parameter's type where it is that type's wire form), its transport and the wire forms it
/// uses. A parameter the table does not list is a finding, named by the family's `known` rule
/// where it has one; it stays in the case under the name sent, so the server side expects that
/// rule's code too.
fn to_case(
    set: &SpecSet,
    api: &LoadedApi,
    known: Option<&Rule>,
    req: &HttpRequest,
    parsed: &ParsedRequest,
    auth: AuthFault,
    view: &mut ClientView,
) -> Case {
    let spec = &api.spec;
    // A JSON body carries typed values; forms and queries carry text.
    let json_body = req
        .header("content-type")
        .is_some_and(|c| c.trim_start().starts_with("application/json"));
    let mut forms = Forms {
        action_spelling: parsed.action != spec.api.action,
        ..Forms::default()
    };
    let mut params = Params::new();
    for (wire, value) in &parsed.params {
        let Some(p) = param_of_wire(spec, wire) else {
            view.findings.push(Finding {
                side: Side::Client,
                api: Some(api.name.clone()),
                rule: known.map_or(rules::PARAMETER_KNOWN.into(), |r| r.id.clone()),
                source: Some(known.map_or(&spec.api.source, |r| &r.source).clone()),
                expected: format!(
                    "parameters of the table: {}",
                    spec.parameters
                        .iter()
                        .map(|p| p.wire.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                actual: format!("{wire}={value}"),
                detail: "a parameter the document does not list (a misspelt or mis-cased name does not count as the listed one)".into(),
                strength: Some(known.map_or(Strength::Seed, |r| crate::oracle::rule_strength(set, api, r))),
            });
            params.insert(wire.clone(), value.clone());
            continue;
        };
        let read = match (p.kind, value) {
            (ParamType::Boolean, Value::String(s)) if !json_body => {
                if s == "TRUE" || s == "FALSE" {
                    forms.upper_booleans = true;
                }
                match s.to_ascii_lowercase().as_str() {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    _ => value.clone(),
                }
            }
            (ParamType::Integer, Value::String(s)) if !json_body => s
                .trim()
                .parse::<i64>()
                .map_or_else(|_| value.clone(), Value::from),
            (ParamType::JsonStringList, Value::String(s)) => {
                if s.contains(", ") {
                    forms.spaced_json_lists = true;
                }
                value.clone()
            }
            _ => value.clone(),
        };
        params.insert(p.name.clone(), read);
    }
    let region = parsed
        .region
        .clone()
        .or_else(|| {
            params
                .get("RegionId")
                .and_then(Value::as_str)
                .map(String::from)
        })
        .unwrap_or_default();
    Case {
        api: api.name.clone(),
        region,
        params,
        violates: Vec::new(),
        situations: Vec::new(),
        auth,
        example: None,
        transport: Transport {
            method: if req.method == "GET" {
                Method::Get
            } else {
                Method::Post
            },
            signature: parsed.signature,
            format: parsed.format,
            index_base: parsed.index_base.unwrap_or(0),
            forms,
        },
    }
}

/// The parameter rules of the spec the request breaks (required, non-empty, limits, types,
/// formats): findings; the ones the documents leave open, and the list numbering where no
/// document shows it, are notes. Existence, OS and state are the world's, not the client's:
/// the server side judges them.
fn parameters(set: &SpecSet, api: &LoadedApi, case: &Case, view: &mut ClientView) {
    let spec = &api.spec;
    let family = set.family(spec.api.family);
    let plain = Case {
        auth: AuthFault::None,
        ..case.clone()
    };
    let found = analysis::analyze(spec, family, &World::default(), &plain);
    let of_client = |id: &str| {
        spec.rules
            .iter()
            .find(|r| r.id == id)
            .filter(|r| client_side(&r.check))
    };
    for (ids, open) in [(&found.broken, false), (&found.soft, true)] {
        for rule in ids.iter().filter_map(|id| of_client(id)) {
            let actual = rule
                .check
                .param()
                .map(|p| match case.params.get(p) {
                    Some(v) => format!("{p}={v}"),
                    None => format!("no {p}"),
                })
                .unwrap_or_default();
            let f = Finding {
                side: Side::Client,
                api: Some(api.name.clone()),
                rule: rule.id.clone(),
                source: Some(rule.source.clone()),
                expected: rule.description.clone(),
                actual,
                detail: match open {
                    false => "the request breaks this rule: the target must refuse it".into(),
                    true => "the documents leave this rule open".into(),
                },
                strength: Some(Strength::Seed),
            };
            match open {
                false => view.findings.push(f),
                true => view.notes.push(f),
            }
        }
    }
    if case.transport.index_base > 1 {
        view.findings
            .push(index_note(api, case, "0 (as the SDKs send)"));
    } else if case.transport.index_base == 1 {
        // CVM's examples number from 1 (a documented wire form); ECM's and API 2.0's
        // documents show no 1-based list: open, not wrong.
        let documented = spec
            .wire_form(Freedom::IndexBase)
            .is_some_and(|w| w.form == "1");
        if !documented && found.situations.contains(&Situation::OneBasedIndex) {
            let mut note = index_note(api, case, "0 (no document of this API numbers from 1)");
            note.detail = "the documents of this API show 0-based lists only; whether a target must accept 1-based ones is unspecified".into();
            view.notes.push(note);
        }
    }
    if found.situations.contains(&Situation::DuplicateIds) {
        view.notes.push(Finding {
            side: Side::Client,
            api: Some(api.name.clone()),
            rule: "duplicate_ids".into(),
            source: Some(spec.api.source.clone()),
            expected: "each id once".into(),
            actual: "an id named twice in one list".into(),
            detail: "the documents do not say what an id named twice means".into(),
            strength: None,
        });
    }
}

fn index_note(api: &LoadedApi, case: &Case, expected: &str) -> Finding {
    let source: Option<Source> = api
        .spec
        .wire_form(Freedom::IndexBase)
        .map(|w| w.source.clone())
        .or_else(|| Some(api.spec.api.source.clone()));
    Finding {
        side: Side::Client,
        api: Some(api.name.clone()),
        rule: rules::INDEX_BASE.into(),
        source,
        expected: format!("Name.N lists numbered from {expected}"),
        actual: format!("numbered from {}", case.transport.index_base),
        detail: "lists on forms and queries are numbered from 0 by the SDKs".into(),
        strength: Some(Strength::Seed),
    }
}

/// Whether a client breaks a rule of this kind by the parameter values it sends alone, without
/// knowing the world: the rules [`parameters`] judges on the client side (a parameter the API
/// does not define is judged apart, from the spec's parameter list). Exhaustive, so a new kind
/// says its side.
fn client_side(check: &Check) -> bool {
    match check {
        Check::Required { .. }
        | Check::NonEmpty { .. }
        | Check::MaxItems { .. }
        | Check::ValueType { .. }
        | Check::Pattern { .. } => true,
        // What the world holds, what an answer shows, and what the family's signing layer
        // judges on its own terms.
        Check::Exists { .. }
        | Check::InstanceOs { .. }
        | Check::InstanceState { .. }
        | Check::BindsKeys
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
        | Check::VersionKnown => false,
    }
}
