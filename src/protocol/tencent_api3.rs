//! Tencent Cloud API 3.0: TC3-HMAC-SHA256 (JSON POST or GET query), and signature v1
//! (HmacSHA1 / HmacSHA256, GET query or POST form). The v1 core here is shared with API 2.0.
//!
//! Decisions (sources in `shared/reference`):
//! - v1 string to sign uses the `Host` header exactly as sent, port included: the SDK captures
//!   (sent to `127.0.0.1:19001`) verify only with `127.0.0.1:19001`, not `127.0.0.1`.
//! - v1 flattening is 0-based (`InstanceIds.0`), as the captures show.
//! - v1: `_` in a parameter name is read as `.` when building the string to sign (reference
//!   README, from the v1 signature doc); the wire keeps the name as given.
//! - A malformed `Authorization` header (present but not `TC3-HMAC-SHA256 Credential=.../...
//!   /tc3_request, SignedHeaders=..., Signature=...`) answers `AuthFailure.InvalidAuthorization`
//!   (listed in Tencent's common error codes); a missing one answers `MissingParameter`.
//! - API 3.0 has no documented replay code: reused nonces are not rejected (TC3 has no nonce;
//!   v1 requests on API 3.0 are only checked for the ±300 s window).
//! - Checks run in the order secret id, signature, time window: a tampered request is always a
//!   signature failure.

use super::encoding::{
    b64, eq_ct, flatten, form_encode, hmac_sha1, hmac_sha256, is_form, sha256_hex, unflatten,
    utc_date,
};
use super::*;

/// API 3.0 signature window, seconds.
pub const WINDOW_SECS: i64 = 300;

const FAMILY: FamilyId = FamilyId::TencentApi3;

/// Parameters that v1 requests carry besides the business ones.
pub(crate) const V1_COMMON: &[&str] = &[
    "Action",
    "Version",
    "Region",
    "Timestamp",
    "Nonce",
    "SecretId",
    "SignatureMethod",
    "Signature",
    "Language",
    "RequestClient",
    "Token",
];

/// The intermediate values of a TC3 signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tc3Parts {
    /// Hex SHA-256 of the payload.
    pub hashed_payload: String,
    /// The canonical request.
    pub canonical_request: String,
    /// Hex SHA-256 of the canonical request.
    pub hashed_canonical_request: String,
    /// The string to sign.
    pub string_to_sign: String,
    /// Hex signature.
    pub signature: String,
}

/// Computes a TC3-HMAC-SHA256 signature. `headers` are the signed headers, lower-case names in
/// order, values as sent.
#[allow(clippy::too_many_arguments)]
pub fn tc3_sign(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(String, String)],
    payload: &[u8],
    service: &str,
    timestamp: i64,
    date: &str,
    secret: &str,
) -> Tc3Parts {
    let hashed_payload = sha256_hex(payload);
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
    let canonical_request = format!(
        "{method}\n{path}\n{query}\n{canonical_headers}\n{}\n{hashed_payload}",
        signed.join(";")
    );
    let hashed_canonical_request = sha256_hex(canonical_request.as_bytes());
    let string_to_sign = format!(
        "TC3-HMAC-SHA256\n{timestamp}\n{date}/{service}/tc3_request\n{hashed_canonical_request}"
    );
    let k_date = hmac_sha256(format!("TC3{secret}").as_bytes(), date.as_bytes());
    let k_service = hmac_sha256(&k_date, service.as_bytes());
    let k_signing = hmac_sha256(&k_service, b"tc3_request");
    let signature = hex::encode(hmac_sha256(&k_signing, string_to_sign.as_bytes()));
    Tc3Parts {
        hashed_payload,
        canonical_request,
        hashed_canonical_request,
        string_to_sign,
        signature,
    }
}

/// Signature v1: the sorted canonical `k=v&...` (values not URL-encoded, `_` in keys read as
/// `.`) and the string to sign `METHOD + host + path + "?" + canonical`. `pairs` excludes
/// `Signature`.
pub fn v1_string_to_sign(
    method: &str,
    host: &str,
    path: &str,
    pairs: &[(String, String)],
) -> (String, String) {
    let mut items: Vec<(String, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.replace('_', "."), v.as_str()))
        .collect();
    items.sort();
    let canonical = items
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let sts = format!("{method}{host}{path}?{canonical}");
    (canonical, sts)
}

/// Signature v1 over a string to sign: base64 HMAC-SHA1 or HMAC-SHA256.
pub fn v1_signature(string_to_sign: &str, secret: &str, sha256: bool) -> String {
    let mac = if sha256 {
        hmac_sha256(secret.as_bytes(), string_to_sign.as_bytes())
    } else {
        hmac_sha1(secret.as_bytes(), string_to_sign.as_bytes())
    };
    b64(&mac)
}

/// Encodes a v1-signed call (API 3.0 GET/form, API 2.0).
pub(crate) fn v1_explain(
    call: &Call,
    creds: &Credentials,
    clock: &Clock,
    default_path: &str,
) -> Result<SigningExplanation, ProtocolError> {
    let sha256 = match call.signature {
        SignatureMethod::V1HmacSha1 => false,
        SignatureMethod::V1HmacSha256 => true,
        other => return Err(unsupported(call, other, "not a v1 signature method")),
    };
    let path = if call.path.is_empty() {
        default_path
    } else {
        call.path.as_str()
    };
    let mut pairs = flatten(&call.params, call.index_base);
    pairs.push(("Action".into(), call.action.clone()));
    if let Some(v) = &call.version {
        pairs.push(("Version".into(), v.clone()));
    }
    if let Some(r) = &call.region {
        pairs.push(("Region".into(), r.clone()));
    }
    pairs.push(("Timestamp".into(), clock.timestamp.to_string()));
    pairs.push(("Nonce".into(), clock.nonce.clone()));
    pairs.push(("SecretId".into(), creds.id.clone()));
    // The SDK sends HmacSHA1 explicitly too; the server treats absence as HmacSHA1.
    let sm = if sha256 { "HmacSHA256" } else { "HmacSHA1" };
    pairs.push(("SignatureMethod".into(), sm.into()));
    let method = call.method.as_str();
    let (canonical, sts) = v1_string_to_sign(method, &call.host, path, &pairs);
    let signature = v1_signature(&sts, &creds.secret, sha256);
    pairs.push(("Signature".into(), signature.clone()));
    let encoded = form_encode(&pairs);
    let mut headers = vec![
        ("Host".to_string(), call.host.clone()),
        (
            "Content-Type".to_string(),
            "application/x-www-form-urlencoded".to_string(),
        ),
    ];
    let (target, body) = match call.method {
        Method::Get => {
            headers.truncate(1);
            (format!("{path}?{encoded}"), Vec::new())
        }
        Method::Post => (path.to_string(), encoded.into_bytes()),
    };
    Ok(SigningExplanation {
        canonical_request: canonical,
        string_to_sign: sts,
        signature,
        request: HttpRequest {
            method: method.to_string(),
            target,
            headers,
            body,
        },
    })
}

pub(crate) fn unsupported(call: &Call, sig: SignatureMethod, reason: &str) -> ProtocolError {
    ProtocolError::Unsupported {
        family: call.family,
        action: call.action.clone(),
        signature: sig,
        reason: reason.to_string(),
    }
}

/// Encodes and signs a call, keeping the intermediate strings.
pub fn explain(
    call: &Call,
    creds: &Credentials,
    clock: &Clock,
) -> Result<SigningExplanation, ProtocolError> {
    match call.signature {
        SignatureMethod::Tc3HmacSha256 => tc3_explain(call, creds, clock),
        SignatureMethod::V1HmacSha1 | SignatureMethod::V1HmacSha256 => {
            v1_explain(call, creds, clock, "/")
        }
        other => Err(unsupported(call, other, "API 3.0 signs with TC3 or v1")),
    }
}

fn tc3_explain(
    call: &Call,
    creds: &Credentials,
    clock: &Clock,
) -> Result<SigningExplanation, ProtocolError> {
    let path = if call.path.is_empty() {
        "/"
    } else {
        call.path.as_str()
    };
    let (content_type, query, body) = match call.method {
        Method::Post => (
            "application/json",
            String::new(),
            serde_json::to_vec(&call.params).unwrap_or_default(),
        ),
        Method::Get => (
            "application/x-www-form-urlencoded",
            form_encode(&flatten(&call.params, call.index_base)),
            Vec::new(),
        ),
    };
    let date = utc_date(clock.timestamp);
    let signed = vec![
        ("content-type".to_string(), content_type.to_string()),
        ("host".to_string(), call.host.clone()),
    ];
    let method = call.method.as_str();
    let parts = tc3_sign(
        method,
        path,
        &query,
        &signed,
        &body,
        &call.service,
        clock.timestamp,
        &date,
        &creds.secret,
    );
    let authorization = format!(
        "TC3-HMAC-SHA256 Credential={}/{date}/{}/tc3_request, SignedHeaders=content-type;host, Signature={}",
        creds.id, call.service, parts.signature
    );
    let mut headers = vec![
        ("Host".to_string(), call.host.clone()),
        ("Content-Type".to_string(), content_type.to_string()),
        ("X-TC-Action".to_string(), call.action.clone()),
    ];
    if let Some(v) = &call.version {
        headers.push(("X-TC-Version".to_string(), v.clone()));
    }
    headers.push(("X-TC-Timestamp".to_string(), clock.timestamp.to_string()));
    if let Some(r) = &call.region {
        headers.push(("X-TC-Region".to_string(), r.clone()));
    }
    headers.push(("Authorization".to_string(), authorization));
    let target = if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{query}")
    };
    Ok(SigningExplanation {
        canonical_request: parts.canonical_request,
        string_to_sign: parts.string_to_sign,
        signature: parts.signature,
        request: HttpRequest {
            method: method.to_string(),
            target,
            headers,
            body,
        },
    })
}

fn outcome(resp: &HttpResponse, format: BodyFormat) -> Outcome {
    Outcome {
        status: resp.status,
        result: OutcomeResult::Success,
        request_id: None,
        body: serde_json::Value::Null,
        format,
        problems: Vec::new(),
        xml_root: None,
    }
}

fn malformed(mut out: Outcome, reason: impl Into<String>) -> Outcome {
    out.result = OutcomeResult::Malformed {
        reason: reason.into(),
    };
    out
}

fn text_of(v: Option<&serde_json::Value>) -> Option<String> {
    match v {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Null) | None => None,
        Some(other) => Some(other.to_string()),
    }
}

/// Decodes a response.
pub fn decode(resp: &HttpResponse) -> Outcome {
    let mut out = outcome(resp, BodyFormat::Unknown);
    if resp.status != 200 {
        out.problems
            .push(format!("HTTP status {} (API 3.0 answers 200)", resp.status));
    }
    match resp.header("content-type") {
        Some("application/json") => {}
        Some(ct) => out.problems.push(format!(
            "Content-Type {ct:?} is not exactly application/json (the Python SDK requires it)"
        )),
        None => out.problems.push("no Content-Type header".to_string()),
    }
    let value: serde_json::Value = match serde_json::from_slice(&resp.body) {
        Ok(v) => v,
        Err(e) => return malformed(out, format!("body is not JSON: {e}")),
    };
    out.format = BodyFormat::Json;
    // Judge the body by reference, then move it into the outcome (no copy of the tree).
    let mut out = decode_body(out, &value);
    out.body = value;
    out
}

fn decode_body(mut out: Outcome, value: &serde_json::Value) -> Outcome {
    let Some(obj) = value.as_object() else {
        return malformed(out, "body is not a JSON object");
    };
    // An error object outside `Response`: report the code so the oracle can judge it.
    let top_error = match obj.get("Error") {
        Some(serde_json::Value::Object(e)) => Some((
            text_of(e.get("Code")).unwrap_or_default(),
            text_of(e.get("Message")).unwrap_or_default(),
        )),
        _ => text_of(obj.get("Code")).map(|c| (c, text_of(obj.get("Message")).unwrap_or_default())),
    };
    if top_error.is_some() {
        out.problems
            .push("error object at top level, outside Response".to_string());
    }
    let response = match obj.get("Response") {
        Some(serde_json::Value::Object(r)) => r,
        Some(_) => {
            out.problems.push("Response is not an object".to_string());
            return match top_error {
                Some((code, message)) => {
                    out.result = OutcomeResult::Error { code, message };
                    out
                }
                None => malformed(out, "Response is not an object"),
            };
        }
        None => {
            out.problems.push("missing Response".to_string());
            return match top_error {
                Some((code, message)) => {
                    out.result = OutcomeResult::Error { code, message };
                    out
                }
                None => malformed(out, "no Response object"),
            };
        }
    };
    match response.get("RequestId") {
        Some(serde_json::Value::String(s)) => out.request_id = Some(s.clone()),
        Some(_) => out
            .problems
            .push("Response.RequestId is not a string".to_string()),
        None => out.problems.push("missing Response.RequestId".to_string()),
    }
    match response.get("Error") {
        Some(serde_json::Value::Object(e)) => {
            let code = match e.get("Code") {
                Some(serde_json::Value::String(c)) => c.clone(),
                other => {
                    out.problems
                        .push("Response.Error.Code missing or not a string".to_string());
                    text_of(other).unwrap_or_default()
                }
            };
            if !matches!(e.get("Message"), Some(serde_json::Value::String(_))) {
                out.problems
                    .push("Response.Error.Message missing or not a string".to_string());
            }
            let message = text_of(e.get("Message")).unwrap_or_default();
            out.result = OutcomeResult::Error { code, message };
        }
        Some(_) => {
            out.problems
                .push("Response.Error is not an object".to_string());
            out.result = OutcomeResult::Error {
                code: String::new(),
                message: String::new(),
            };
        }
        None => match top_error {
            Some((code, message)) => out.result = OutcomeResult::Error { code, message },
            None => out.result = OutcomeResult::Success,
        },
    }
    out
}

/// A request error of this family (HTTP 200).
pub(crate) fn req_err(
    code: &str,
    message: impl Into<String>,
    action: Option<String>,
) -> RequestError {
    RequestError {
        family: FAMILY,
        code: code.to_string(),
        message: message.into(),
        status: 200,
        action,
        format: ResponseFormat::Default,
    }
}

/// The pieces of a TC3 `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tc3Authorization {
    /// Secret id.
    pub secret_id: String,
    /// Credential date.
    pub date: String,
    /// Credential service.
    pub service: String,
    /// Signed header names, lower case.
    pub signed_headers: Vec<String>,
    /// Hex signature.
    pub signature: String,
}

/// The TC3 service name of the products served at an API version (CVM 2017-03-12, ECM
/// 2019-07-19); `None` for a version no product here has.
fn service_of(version: Option<&str>) -> Option<&'static str> {
    match version? {
        "2017-03-12" => Some("cvm"),
        "2019-07-19" => Some("ecm"),
        _ => None,
    }
}

/// Parses `TC3-HMAC-SHA256 Credential=ID/DATE/SERVICE/tc3_request, SignedHeaders=a;b, Signature=hex`.
pub fn parse_tc3_authorization(value: &str) -> Option<Tc3Authorization> {
    let rest = value.strip_prefix("TC3-HMAC-SHA256 ")?;
    let (mut cred, mut signed, mut sig) = (None, None, None);
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "Credential" => cred = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => sig = Some(v),
            _ => return None,
        }
    }
    let scope: Vec<&str> = cred?.split('/').collect();
    if scope.len() != 4 || scope[3] != "tc3_request" || scope.iter().any(|s| s.is_empty()) {
        return None;
    }
    let signed_headers: Vec<String> = signed?.split(';').map(|h| h.to_ascii_lowercase()).collect();
    let signature = sig?.to_string();
    if signed_headers.iter().any(|h| h.is_empty()) || signature.is_empty() {
        return None;
    }
    Some(Tc3Authorization {
        secret_id: scope[0].to_string(),
        date: scope[1].to_string(),
        service: scope[2].to_string(),
        signed_headers,
        signature,
    })
}

/// Which codes a v1 parser answers with.
pub(crate) struct V1Codes {
    pub family: FamilyId,
    pub missing: &'static str,
    pub invalid: &'static str,
    pub version_required: bool,
}

pub(crate) fn v1_parse(req: &HttpRequest, codes: &V1Codes) -> Result<ParsedRequest, RequestError> {
    let pairs = form_pairs(req);
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let action = get("Action");
    let mk = |code: &str, msg: String| RequestError {
        family: codes.family,
        code: code.to_string(),
        message: msg,
        status: 200,
        action: action.clone(),
        format: ResponseFormat::Default,
    };
    let mut required = vec!["Action", "Timestamp", "Nonce", "SecretId", "Signature"];
    if codes.version_required {
        required.insert(1, "Version");
    }
    for k in required {
        if get(k).is_none_or(|v| v.is_empty()) {
            return Err(mk(
                codes.missing,
                format!("The parameter `{k}` is missing."),
            ));
        }
    }
    let timestamp = get("Timestamp")
        .and_then(|t| t.parse::<i64>().ok())
        .ok_or_else(|| mk(codes.invalid, "Timestamp is not an integer.".to_string()))?;
    let signature = match get("SignatureMethod").as_deref() {
        None | Some("HmacSHA1") => SignatureMethod::V1HmacSha1,
        Some("HmacSHA256") => SignatureMethod::V1HmacSha256,
        Some(other) => {
            return Err(mk(
                codes.invalid,
                format!("SignatureMethod `{other}` is not supported."),
            ))
        }
    };
    let business: Vec<(String, String)> = pairs
        .iter()
        .filter(|(k, _)| !V1_COMMON.contains(&k.as_str()))
        .cloned()
        .collect();
    let (params, index_base) = unflatten(&business);
    Ok(ParsedRequest {
        family: codes.family,
        action: action.clone().unwrap_or_default(),
        version: get("Version"),
        region: get("Region"),
        service: None,
        params,
        secret_id: get("SecretId").unwrap_or_default(),
        signature,
        timestamp,
        nonce: get("Nonce"),
        format: ResponseFormat::Default,
        index_base,
    })
}

/// Recomputes a v1 signature from the request bytes; `Ok(())` when it matches.
pub(crate) fn v1_check(
    req: &HttpRequest,
    parsed: &ParsedRequest,
    secret: &str,
) -> Result<(), String> {
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
    let (_, sts) = v1_string_to_sign(&req.method, host, req.path(), &unsigned);
    let expected = v1_signature(
        &sts,
        secret,
        parsed.signature == SignatureMethod::V1HmacSha256,
    );
    if eq_ct(&expected, &sent) {
        Ok(())
    } else {
        Err(sts)
    }
}

fn header_or_missing(
    req: &HttpRequest,
    name: &str,
    action: &Option<String>,
) -> Result<String, RequestError> {
    match req.header(name) {
        Some(v) if !v.trim().is_empty() => Ok(v.trim().to_string()),
        _ => Err(req_err(
            "MissingParameter",
            format!("The header `{name}` is missing."),
            action.clone(),
        )),
    }
}

/// Parses a request.
pub fn parse_request(req: &HttpRequest) -> Result<ParsedRequest, RequestError> {
    if req.method != "GET" && req.method != "POST" {
        return Err(req_err(
            "UnsupportedProtocol",
            format!(
                "HTTP method {:?} is not supported; use GET or POST.",
                req.method
            ),
            None,
        ));
    }
    let tc3 = req.header("x-tc-action").is_some() || req.header("authorization").is_some();
    if !tc3 {
        return v1_parse(
            req,
            &V1Codes {
                family: FAMILY,
                missing: "MissingParameter",
                invalid: "InvalidParameter",
                version_required: true,
            },
        );
    }
    let action = req.header("x-tc-action").map(|a| a.trim().to_string());
    let action_s = header_or_missing(req, "X-TC-Action", &action)?;
    let version = header_or_missing(req, "X-TC-Version", &action)?;
    let ts_text = header_or_missing(req, "X-TC-Timestamp", &action)?;
    let timestamp = ts_text.parse::<i64>().map_err(|_| {
        req_err(
            "InvalidParameter",
            "X-TC-Timestamp is not an integer.",
            action.clone(),
        )
    })?;
    let auth_text = header_or_missing(req, "Authorization", &action)?;
    let auth = parse_tc3_authorization(&auth_text).ok_or_else(|| {
        req_err(
            "AuthFailure.InvalidAuthorization",
            "The Authorization header does not follow the TC3-HMAC-SHA256 standard.",
            action.clone(),
        )
    })?;
    let (params, index_base) = if req.method == "GET" {
        unflatten(
            &form_urlencoded::parse(req.query().as_bytes())
                .into_owned()
                .collect::<Vec<_>>(),
        )
    } else if is_form(req.header("content-type")) {
        unflatten(
            &form_urlencoded::parse(&req.body)
                .into_owned()
                .collect::<Vec<_>>(),
        )
    } else if req.body.iter().all(|b| b.is_ascii_whitespace()) {
        (Params::new(), None)
    } else if !req
        .header("content-type")
        .is_some_and(|c| c.trim_start().starts_with("application/json"))
    {
        // TC3 POST bodies are JSON or a form, as the Content-Type says; anything else is not
        // read as JSON on a guess.
        return Err(req_err(
            "InvalidParameter",
            "The Content-Type of a TC3 POST must be application/json or application/x-www-form-urlencoded.",
            action.clone(),
        ));
    } else {
        match serde_json::from_slice::<serde_json::Value>(&req.body) {
            Ok(serde_json::Value::Object(m)) => (m, None),
            _ => {
                return Err(req_err(
                    "InvalidParameter",
                    "The request body is not a JSON object.",
                    action.clone(),
                ))
            }
        }
    };
    Ok(ParsedRequest {
        family: FAMILY,
        action: action_s,
        version: Some(version),
        region: req
            .header("x-tc-region")
            .map(|r| r.trim().to_string())
            .filter(|r| !r.is_empty()),
        service: Some(auth.service),
        params,
        secret_id: auth.secret_id,
        signature: SignatureMethod::Tc3HmacSha256,
        timestamp,
        nonce: None,
        format: ResponseFormat::Default,
        index_base,
    })
}

/// Verifies a request.
pub fn verify(
    req: &HttpRequest,
    parsed: &ParsedRequest,
    secrets: &dyn SecretStore,
    now: i64,
    _nonces: &dyn NonceStore,
) -> Result<(), RequestError> {
    let action = Some(parsed.action.clone());
    let secret = secrets.secret(FAMILY, &parsed.secret_id).ok_or_else(|| {
        req_err(
            "AuthFailure.SecretIdNotFound",
            "The SecretId is not found.",
            action.clone(),
        )
    })?;
    let sig_fail = |detail: &str| {
        req_err(
            "AuthFailure.SignatureFailure",
            format!("The provided credentials could not be validated. {detail}"),
            action.clone(),
        )
    };
    match parsed.signature {
        SignatureMethod::Tc3HmacSha256 => {
            let auth = req
                .header("authorization")
                .and_then(parse_tc3_authorization)
                .ok_or_else(|| {
                    req_err(
                        "AuthFailure.InvalidAuthorization",
                        "The Authorization header does not follow the TC3-HMAC-SHA256 standard.",
                        action.clone(),
                    )
                })?;
            // The scheme signs at least the host and the content type, under the product's own
            // service name.
            for required in ["content-type", "host"] {
                if !auth.signed_headers.iter().any(|h| h == required) {
                    return Err(sig_fail(&format!("SignedHeaders must include {required}.")));
                }
            }
            if let Some(service) = service_of(parsed.version.as_deref()) {
                if auth.service != service {
                    return Err(sig_fail(&format!(
                        "The credential scope names service `{}`; this API is `{service}`.",
                        auth.service
                    )));
                }
            }
            if auth.date != utc_date(parsed.timestamp) {
                return Err(sig_fail(
                    "The credential date does not match X-TC-Timestamp.",
                ));
            }
            let mut headers = Vec::new();
            for name in &auth.signed_headers {
                match req.header(name) {
                    Some(v) => headers.push((name.clone(), v.trim().to_string())),
                    None => return Err(sig_fail("A signed header is missing.")),
                }
            }
            let query = if req.method == "GET" { req.query() } else { "" };
            let parts = tc3_sign(
                &req.method,
                req.path(),
                query,
                &headers,
                &req.body,
                &auth.service,
                parsed.timestamp,
                &auth.date,
                &secret,
            );
            if !eq_ct(&parts.signature, &auth.signature) {
                return Err(sig_fail("Please check your signature."));
            }
        }
        SignatureMethod::V1HmacSha1 | SignatureMethod::V1HmacSha256 => {
            v1_check(req, parsed, &secret).map_err(|_| sig_fail("Please check your signature."))?;
        }
        _ => return Err(sig_fail("Unsupported signature method.")),
    }
    if now.abs_diff(parsed.timestamp) > WINDOW_SECS.unsigned_abs() {
        return Err(req_err(
            "AuthFailure.SignatureExpire",
            "Signature expired: the timestamp is more than 300 seconds away from server time.",
            action,
        ));
    }
    Ok(())
}

fn json_response(body: impl serde::Serialize) -> HttpResponse {
    HttpResponse {
        status: 200,
        headers: vec![("Content-Type".to_string(), "application/json".to_string())],
        body: serde_json::to_vec(&body).unwrap_or_default(),
    }
}

/// A success response: `{"Response": {...fields, "RequestId"}}`, HTTP 200, `application/json`.
pub fn ok(request_id: &str, fields: Params) -> HttpResponse {
    let mut inner = fields;
    inner.insert("RequestId".into(), request_id.into());
    let mut outer = Params::new();
    outer.insert("Response".into(), serde_json::Value::Object(inner));
    json_response(serde_json::Value::Object(outer))
}

/// [`ok`] for fields that serialize as a JSON object (a struct or a map), written without
/// building a JSON tree first.
pub fn ok_with<T: serde::Serialize>(request_id: &str, fields: &T) -> HttpResponse {
    #[derive(serde::Serialize)]
    struct Envelope<'a, T> {
        #[serde(rename = "Response")]
        response: Inner<'a, T>,
    }
    #[derive(serde::Serialize)]
    struct Inner<'a, T> {
        #[serde(flatten)]
        fields: &'a T,
        #[serde(rename = "RequestId")]
        request_id: &'a str,
    }
    json_response(Envelope {
        response: Inner { fields, request_id },
    })
}

/// An error response: `{"Response": {"Error": {"Code","Message"}, "RequestId"}}`, HTTP 200.
pub fn error(code: &str, message: &str, request_id: &str) -> HttpResponse {
    json_response(serde_json::json!({
        "Response": {
            "Error": {"Code": code, "Message": message},
            "RequestId": request_id,
        }
    }))
}
