//! A received request's signature, recomputed from its bytes: what a verifier signed, step by
//! step, so that a request that does not verify can be told apart at the step where the
//! client's signing diverges (the proxy's client side; `apiconform sign` prints the same
//! strings for a request the harness makes).
//!
//! The signature the verifier computes is compared and dropped, never kept: it is a valid
//! signature, made with the configured secret, over bytes the sender chose. Told back, it would
//! turn whoever shows the divergence (the proxy) into a signing oracle. What is kept is what an
//! honest client needs to find its mistake and holds no secret: the step, the canonical request,
//! the string to sign, the signed headers, the credential scope and the signature sent.

use serde::Serialize;

use super::encoding::{eq_ct, sha256_hex, utc_date};
use super::{aliyun_rpc, form_pairs, tencent_api3, HttpRequest, ParsedRequest, SignatureMethod};

/// Where a received signature stops matching, with the strings recomputed from the bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Divergence {
    /// The first step that does not hold, in the scheme's order (`signed headers`, `credential
    /// scope`, `payload hash`, `signature`).
    pub step: String,
    /// What is wrong at that step.
    pub why: String,
    /// The canonical request (TC3, ACS3) or canonical query (v1, RPC) as the bytes give it.
    pub canonical_request: String,
    /// The string to sign as the bytes give it.
    pub string_to_sign: String,
    /// The signature the request carries.
    pub sent: String,
    /// The headers the request says it signed, as it names them (TC3, ACS3; empty for the
    /// query-signed schemes).
    pub signed_headers: Vec<String>,
}

/// Recomputes the signature of `req` with `secret`; `None` when it matches (every step holds).
pub fn divergence(req: &HttpRequest, parsed: &ParsedRequest, secret: &str) -> Option<Divergence> {
    match parsed.signature {
        SignatureMethod::Tc3HmacSha256 => tc3(req, parsed, secret),
        SignatureMethod::V1HmacSha1 | SignatureMethod::V1HmacSha256 => v1(req, parsed, secret),
        SignatureMethod::RpcHmacSha1 => rpc(req, secret),
        SignatureMethod::Acs3HmacSha256 => acs3(req, secret),
    }
}

fn step(step: &str, why: impl Into<String>) -> Divergence {
    Divergence {
        step: step.into(),
        why: why.into(),
        canonical_request: String::new(),
        string_to_sign: String::new(),
        sent: String::new(),
        signed_headers: Vec::new(),
    }
}

fn tc3(req: &HttpRequest, parsed: &ParsedRequest, secret: &str) -> Option<Divergence> {
    let Some(auth) = req
        .header("authorization")
        .and_then(tencent_api3::parse_tc3_authorization)
    else {
        return Some(step(
            "authorization header",
            "the Authorization header does not read as `TC3-HMAC-SHA256 Credential=ID/DATE/SERVICE/tc3_request, SignedHeaders=..., Signature=...`",
        ));
    };
    for required in ["content-type", "host"] {
        if !auth.signed_headers.iter().any(|h| h == required) {
            return Some(step(
                "signed headers",
                format!("SignedHeaders must include {required}"),
            ));
        }
    }
    if auth.date != utc_date(parsed.timestamp) {
        return Some(step(
            "credential scope",
            format!(
                "the credential date {} is not the UTC date of X-TC-Timestamp {} ({})",
                auth.date,
                parsed.timestamp,
                utc_date(parsed.timestamp)
            ),
        ));
    }
    let mut headers = Vec::new();
    for name in &auth.signed_headers {
        match req.header(name) {
            Some(v) => headers.push((name.clone(), v.trim().to_string())),
            None => {
                return Some(step(
                    "signed headers",
                    format!("the signed header {name} is not in the request"),
                ))
            }
        }
    }
    let query = if req.method == "GET" { req.query() } else { "" };
    let parts = tencent_api3::tc3_sign(
        &req.method,
        req.path(),
        query,
        &headers,
        &req.body,
        &auth.service,
        parsed.timestamp,
        &auth.date,
        secret,
    );
    if eq_ct(&parts.signature, &auth.signature) {
        return None;
    }
    Some(Divergence {
        step: "signature".into(),
        why: format!(
            "the signature of this string to sign (credential scope {}/{}/tc3_request, hashed payload {}) is not the one sent: the client signed other strings, or with another secret",
            auth.date, auth.service, parts.hashed_payload
        ),
        canonical_request: parts.canonical_request,
        string_to_sign: parts.string_to_sign,
        sent: auth.signature,
        signed_headers: auth.signed_headers,
    })
}

fn v1(req: &HttpRequest, parsed: &ParsedRequest, secret: &str) -> Option<Divergence> {
    let pairs = form_pairs(req);
    let sent = pairs
        .iter()
        .find(|(k, _)| k == "Signature")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let unsigned: Vec<(String, String)> = pairs
        .into_iter()
        .filter(|(k, _)| k != "Signature")
        .collect();
    let host = req.header("host").unwrap_or("");
    let (canonical, sts) =
        tencent_api3::v1_string_to_sign(&req.method, host, req.path(), &unsigned);
    let sha256 = parsed.signature == SignatureMethod::V1HmacSha256;
    let expected = tencent_api3::v1_signature(&sts, secret, sha256);
    if eq_ct(&expected, &sent) {
        return None;
    }
    Some(Divergence {
        step: "signature".into(),
        why: format!(
            "the {} of this string to sign (METHOD + Host `{host}` + path + ? + the sorted parameters) is not the one sent",
            if sha256 { "HmacSHA256" } else { "HmacSHA1" }
        ),
        canonical_request: canonical,
        string_to_sign: sts,
        sent,
        signed_headers: Vec::new(),
    })
}

fn rpc(req: &HttpRequest, secret: &str) -> Option<Divergence> {
    let pairs = form_pairs(req);
    let sent = pairs
        .iter()
        .find(|(k, _)| k == "Signature")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let unsigned: Vec<(String, String)> = pairs
        .into_iter()
        .filter(|(k, _)| k != "Signature")
        .collect();
    let (canonical, sts, expected) = aliyun_rpc::rpc_sign(&req.method, &unsigned, secret);
    if eq_ct(&expected, &sent) {
        return None;
    }
    Some(Divergence {
        step: "signature".into(),
        why: "the HMAC-SHA1 (key `secret&`) of this string to sign is not the one sent".into(),
        canonical_request: canonical,
        string_to_sign: sts,
        sent,
        signed_headers: Vec::new(),
    })
}

fn acs3(req: &HttpRequest, secret: &str) -> Option<Divergence> {
    let Some(auth) = req
        .header("authorization")
        .and_then(aliyun_rpc::parse_acs3_authorization)
    else {
        return Some(step(
            "authorization header",
            "the Authorization header does not read as `ACS3-HMAC-SHA256 Credential=ID,SignedHeaders=...,Signature=...`",
        ));
    };
    let hashed = req
        .header("x-acs-content-sha256")
        .unwrap_or("")
        .trim()
        .to_string();
    let body_hash = sha256_hex(&req.body);
    if hashed != body_hash {
        return Some(step(
            "payload hash",
            format!("x-acs-content-sha256 is `{hashed}`; the body's SHA-256 is {body_hash}"),
        ));
    }
    let mut headers = Vec::new();
    for name in &auth.signed_headers {
        match req.header(name) {
            Some(v) => headers.push((name.clone(), v.to_string())),
            None => {
                return Some(step(
                    "signed headers",
                    format!("the signed header {name} is not in the request"),
                ))
            }
        }
    }
    let query: Vec<(String, String)> = form_urlencoded::parse(req.query().as_bytes())
        .into_owned()
        .collect();
    let (canonical, sts, expected, _) =
        aliyun_rpc::acs3_sign(&req.method, req.path(), &query, &headers, &hashed, secret);
    if eq_ct(&expected, &auth.signature.to_ascii_lowercase()) {
        return None;
    }
    Some(Divergence {
        step: "signature".into(),
        why: "the HMAC-SHA256 of this string to sign is not the one sent".into(),
        canonical_request: canonical,
        string_to_sign: sts,
        sent: auth.signature,
        signed_headers: auth.signed_headers,
    })
}
