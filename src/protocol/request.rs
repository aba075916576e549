//! From an abstract [`Case`] to signed request bytes: the [`Call`] a case describes (the index
//! base of its form lists included) and its authentication fault, applied while signing. The
//! runner, the dry run and the snapshots all sign through here, so what one shows is what the
//! others send.

use super::{Call, Clock, FamilyId, HttpRequest, Keys, ProtocolError};
use crate::case::{AuthFault, Case};
use crate::spec::{Freedom, LoadedApi, Method, ParamType, Params, SignatureMethod};
use serde_json::Value;

/// Builds the call a case describes.
pub fn call_for(api: &LoadedApi, case: &Case, authority: &str) -> Call {
    let s = &api.spec.api;
    let family = s.family;
    let path = match family {
        FamilyId::TencentV2 => "/v2/index.php".to_string(),
        _ => "/".to_string(),
    };
    let forms = case.transport.forms;
    let action = match api.spec.wire_form(Freedom::ActionSpelling) {
        Some(w) if forms.action_spelling => w.form.clone(),
        _ => s.action.clone(),
    };
    Call {
        family,
        action,
        version: s.version.clone(),
        region: match family {
            FamilyId::AliyunRpc => None,
            _ => Some(case.region.clone()),
        },
        service: s.service.clone().unwrap_or_default(),
        host: authority.to_string(),
        path,
        method: case.transport.method,
        signature: case.transport.signature,
        params: wire_params(api, case),
        format: case.transport.format,
        index_base: case.transport.index_base,
    }
}

/// The case's parameters in the wire forms it takes: booleans `TRUE`/`FALSE` on forms (a JSON
/// body keeps JSON booleans), JSON list parameters with a space after each comma.
fn wire_params(api: &LoadedApi, case: &Case) -> Params {
    let forms = case.transport.forms;
    let json_body = case.transport.signature == SignatureMethod::Tc3HmacSha256
        && case.transport.method == Method::Post;
    let mut params = case.params.clone();
    if forms.is_sdk() {
        return params;
    }
    for (name, value) in params.iter_mut() {
        let kind = api
            .spec
            .parameters
            .iter()
            .find(|p| &p.name == name)
            .map(|p| p.kind);
        match value {
            Value::Bool(b) if forms.upper_booleans && !json_body => {
                *value = Value::String(if *b { "TRUE" } else { "FALSE" }.into());
            }
            _ if forms.spaced_json_lists && kind == Some(ParamType::JsonStringList) => {
                // A list, or the text of one (a case holding deliberately broken text keeps it).
                let items = match value {
                    Value::Array(items) => Some(items.clone()),
                    Value::String(text) => serde_json::from_str::<Vec<Value>>(text).ok(),
                    _ => None,
                };
                if let Some(items) = items {
                    let items: Vec<String> = items.iter().map(Value::to_string).collect();
                    *value = Value::String(format!("[{}]", items.join(", ")));
                }
            }
            _ => {}
        }
    }
    params
}

/// Signs a case for sending, applying its authentication fault.
pub fn sign_case(
    api: &LoadedApi,
    case: &Case,
    authority: &str,
    keys: &Keys,
    now: i64,
    nonce: u64,
) -> Result<HttpRequest, ProtocolError> {
    let mut call = call_for(api, case, authority);
    if case.auth == AuthFault::UnknownVersion {
        // A date no version has: the spec's month and day in 1999.
        call.version = call
            .version
            .as_deref()
            .map(|v| format!("1999{}", v.get(4..).unwrap_or_default()));
    }
    let mut creds = keys.for_family(api.spec.api.family).clone();
    let mut clock = Clock {
        timestamp: now,
        nonce: format!("{}", 100_000 + nonce),
    };
    if api.spec.api.family == FamilyId::AliyunRpc {
        clock.nonce = format!("{:032x}", (now as u128) << 64 | nonce as u128);
    }
    match case.auth {
        AuthFault::WrongSecret => creds.secret.push_str("-wrong"),
        AuthFault::UnknownSecretId => {
            creds.id = format!("{}UNKNOWN", &creds.id[..creds.id.len().min(8)])
        }
        AuthFault::ExpiredTimestamp => clock.timestamp -= 3 * 3600,
        AuthFault::FutureTimestamp => clock.timestamp += 3 * 3600,
        _ => {}
    }
    let mut req = super::encode(&call, &creds, &clock)?;
    if case.auth == AuthFault::TamperedSignature {
        tamper(&mut req);
    }
    Ok(req)
}

/// Whether two signed requests ask for the same thing: the same method, path, family, action,
/// version, region, credentials' id, scheme, format, list numbering and parameters — all but
/// what changes from one signing to the next (timestamp, nonce, signature).
pub fn same_call(a: &HttpRequest, b: &HttpRequest) -> bool {
    let meaning = |r: &HttpRequest| {
        super::parse_request(r).map(|mut p| {
            p.timestamp = 0;
            p.nonce = None;
            (r.method.clone(), r.path().to_string(), p)
        })
    };
    match (meaning(a), meaning(b)) {
        (Ok(x), Ok(y)) => x == y,
        // Not readable as any family's request: only the bytes can be compared.
        _ => a == b,
    }
}

/// Changes the signature wherever it travels (header, query or body) so that it differs under
/// every normalisation a verifier may rightly apply: hex compared without case (TC3 and ACS3
/// signatures are lower-case hex), base64 padding, percent-encoding. Its first character
/// becomes the digit `0` (`1` when it was `0`): a digit has no case, is in both alphabets, and
/// is never padding; a percent escape (`%2B`) is replaced whole.
pub fn tamper(req: &mut HttpRequest) {
    fn flip(s: &mut String) -> bool {
        let Some(i) = s.find("Signature=") else {
            return false;
        };
        let at = i + "Signature=".len();
        let rest = &s[at..];
        let Some(c) = rest.chars().next() else {
            return false;
        };
        let escaped =
            c == '%' && rest.len() >= 3 && rest.as_bytes()[1..3].iter().all(u8::is_ascii_hexdigit);
        let len = if escaped { 3 } else { c.len_utf8() };
        let repl = if c == '0' { "1" } else { "0" };
        s.replace_range(at..at + len, repl);
        true
    }
    for (k, v) in &mut req.headers {
        if k.eq_ignore_ascii_case("authorization") && flip(v) {
            return;
        }
    }
    if flip(&mut req.target) {
        return;
    }
    let mut body = String::from_utf8_lossy(&req.body).into_owned();
    if flip(&mut body) {
        req.body = body.into_bytes();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::SignatureMethod;

    /// Two signings of one case are the same call; an added parameter or another list numbering
    /// is not.
    #[test]
    fn same_call_ignores_only_the_clock_and_the_signature() {
        let set = crate::spec::load_embedded().expect("embedded specs load");
        let world = crate::world::World::default_world();
        let keys = crate::emulator::example_keys();
        for (n, api) in set.apis.iter().enumerate() {
            let gen = crate::generate::GenOptions::default();
            for case in crate::generate::corpus(&set, api, &world, n as u64, 40, &gen) {
                let sign = |c: &Case, now: i64, nonce: u64| {
                    sign_case(api, c, "h:1", &keys, now, nonce).expect("signs")
                };
                let a = sign(&case, 1_700_000_000, 1);
                assert!(
                    same_call(&a, &sign(&case, 1_700_000_999, 2)),
                    "{}",
                    api.name
                );
                let mut other = case.clone();
                other.params.insert("ApiconformProbe".into(), "1".into());
                assert!(
                    !same_call(&a, &sign(&other, 1_700_000_000, 1)),
                    "{}",
                    api.name
                );
                if case
                    .params
                    .values()
                    .any(|v| v.as_array().is_some_and(|a| !a.is_empty()))
                    && api.spec.api.family != crate::spec::FamilyId::AliyunRpc
                {
                    let mut renumbered = case.clone();
                    renumbered.transport.index_base = 1 - renumbered.transport.index_base.min(1);
                    let b = sign(&renumbered, 1_700_000_000, 1);
                    let form = b.body.is_empty() || !b.body.starts_with(b"{");
                    if form && renumbered.transport.method == crate::spec::Method::Get {
                        assert!(!same_call(&a, &b), "{}: {:?}", api.name, b);
                    }
                }
            }
        }
    }

    /// The signature a request carries, as a lenient verifier would compare it: percent-decoded,
    /// padding stripped, lower case.
    fn normalised_signature(req: &HttpRequest) -> String {
        let auth = req.header("authorization").unwrap_or_default().to_string();
        let body = String::from_utf8_lossy(&req.body).into_owned();
        let all = format!("{auth}&{}&{body}", req.query());
        let raw = all
            .split(['&', ',', ' '])
            .find_map(|p| p.trim().strip_prefix("Signature="))
            .unwrap_or_default();
        percent_encoding::percent_decode_str(raw)
            .decode_utf8_lossy()
            .trim_end_matches('=')
            .to_ascii_lowercase()
    }

    /// Over many clocks (so signatures start with every character), a tampered signature never
    /// equals the real one under hex case folding, percent-decoding or padding: a verifier that
    /// compares leniently still rejects it. With the old tamper (`A` in place of the first
    /// character) one TC3 signature in sixteen, the ones starting with `a`, survived.
    #[test]
    fn a_tampered_signature_differs_under_every_normalisation() {
        let set = crate::spec::load_embedded().expect("embedded specs load");
        let world = crate::world::World::default_world();
        let keys = crate::emulator::example_keys();
        let mut seen = std::collections::HashMap::<SignatureMethod, usize>::new();
        for (n, api) in set.apis.iter().enumerate() {
            let gen = crate::generate::GenOptions::default();
            let cases = crate::generate::corpus(&set, api, &world, n as u64, 60, &gen);
            for (k, case) in cases.iter().enumerate() {
                let case = Case {
                    auth: AuthFault::None,
                    ..case.clone()
                };
                for t in 0..8 {
                    let now = 1_700_000_000 + (k * 8 + t) as i64;
                    let Ok(req) = sign_case(api, &case, "h:1", &keys, now, 7) else {
                        continue;
                    };
                    let mut bad = req.clone();
                    tamper(&mut bad);
                    assert_ne!(bad, req);
                    assert_ne!(
                        normalised_signature(&bad),
                        normalised_signature(&req),
                        "{}: {:?}",
                        api.name,
                        req
                    );
                    *seen.entry(case.transport.signature).or_default() += 1;
                }
            }
        }
        assert!(seen.len() >= 4, "every scheme is tampered: {seen:?}");
    }
}
