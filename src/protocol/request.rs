//! From an abstract [`Case`] to signed request bytes: the [`Call`] a case describes (the index
//! base of its form lists included) and its authentication fault, applied while signing. The
//! runner, the dry run and the snapshots all sign through here, so what one shows is what the
//! others send.

use super::{Call, Clock, Credentials, FamilyId, HttpRequest, ProtocolError};
use crate::case::{AuthFault, Case};
use crate::spec::LoadedApi;

/// Builds the call a case describes.
pub fn call_for(api: &LoadedApi, case: &Case, authority: &str) -> Call {
    let s = &api.spec.api;
    let family = s.family;
    let path = match family {
        FamilyId::TencentV2 => "/v2/index.php".to_string(),
        _ => "/".to_string(),
    };
    Call {
        family,
        action: s.action.clone(),
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
        params: case.params.clone(),
        format: case.transport.format,
        index_base: case.transport.index_base,
    }
}

/// Signs a case for sending, applying its authentication fault.
pub fn sign_case(
    api: &LoadedApi,
    case: &Case,
    authority: &str,
    tencent: &Credentials,
    alibaba: &Credentials,
    now: i64,
    nonce: u64,
) -> Result<HttpRequest, ProtocolError> {
    let call = call_for(api, case, authority);
    let mut creds = match api.spec.api.family {
        FamilyId::AliyunRpc => alibaba.clone(),
        _ => tencent.clone(),
    };
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
        _ => {}
    }
    let mut req = super::encode(&call, &creds, &clock)?;
    if case.auth == AuthFault::TamperedSignature {
        tamper(&mut req);
    }
    Ok(req)
}

/// Changes one character of the signature wherever it travels (header, query or body).
pub fn tamper(req: &mut HttpRequest) {
    fn flip(s: &mut String) -> bool {
        if let Some(i) = s.find("Signature=") {
            let at = i + "Signature=".len();
            if let Some(c) = s[at..].chars().next() {
                let repl = if c == 'A' { "B" } else { "A" };
                s.replace_range(at..at + c.len_utf8(), repl);
                return true;
            }
        }
        false
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
