//! Tencent Cloud API 2.0: `/v2/index.php`, signature v1 (HmacSHA1 by default, HmacSHA256 when
//! asked), GET query or POST form, `{"code": int, "message": str}` bodies.
//!
//! Decisions:
//! - Lists flatten 0-based under the parameter name as given (`instanceIds.0`), as QcloudApi
//!   2.0.15 sends (captures 04, 04b); no `Version` when the call has none.
//! - Window: a timestamp more than 7200 s from server time answers 4200 (expired); a nonce
//!   reused (same SecretId) within the window answers 4500 (replay). Reference README: "API 2.0
//!   replay window: 2 hours (code 4500)".
//! - Order of checks: SecretId (4100), signature (4100), window (4200), nonce (4500).
//! - `codeDesc`: `Success` for 0, otherwise a short English description of the code class.

use super::tencent_api3::{v1_check, v1_explain, v1_parse, V1Codes};
use super::*;

/// Timestamp and replay window, seconds.
pub const WINDOW_SECS: i64 = 7200;

const FAMILY: FamilyId = FamilyId::TencentV2;

/// Encodes and signs a call, keeping the intermediate strings.
pub fn explain(
    call: &Call,
    creds: &Credentials,
    clock: &Clock,
) -> Result<SigningExplanation, ProtocolError> {
    v1_explain(call, creds, clock, "/v2/index.php")
}

/// Decodes a response.
pub fn decode(resp: &HttpResponse) -> Outcome {
    let mut out = Outcome::new(resp.status);
    if resp.status != 200 {
        out.problems
            .push(format!("HTTP status {} (API 2.0 answers 200)", resp.status));
    }
    let value: serde_json::Value = match serde_json::from_slice(&resp.body) {
        Ok(v) => v,
        Err(e) => {
            out.result = OutcomeResult::Malformed {
                reason: format!("body is not JSON: {e}"),
            };
            return out;
        }
    };
    out.format = BodyFormat::Json;
    out.body = value.clone();
    let Some(obj) = value.as_object() else {
        out.result = OutcomeResult::Malformed {
            reason: "body is not a JSON object".into(),
        };
        return out;
    };
    for key in ["requestId", "RequestId"] {
        if let Some(serde_json::Value::String(s)) = obj.get(key) {
            out.request_id = Some(s.clone());
        }
    }
    let message = match obj.get("message") {
        Some(serde_json::Value::String(m)) => m.clone(),
        Some(other) => {
            out.problems.push("message is not a string".into());
            other.to_string()
        }
        None => {
            out.problems.push("missing message".into());
            String::new()
        }
    };
    let code: String = match obj.get("code") {
        Some(serde_json::Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
        Some(serde_json::Value::Number(n)) => {
            out.problems.push(format!("code {n} is not an integer"));
            n.to_string()
        }
        Some(serde_json::Value::String(s)) => {
            out.problems
                .push(format!("code {s:?} is a string, not an integer"));
            s.trim().to_string()
        }
        Some(other) => {
            out.problems.push(format!("code {other} is not an integer"));
            other.to_string()
        }
        None => {
            out.result = OutcomeResult::Malformed {
                reason: "no code in the body".into(),
            };
            return out;
        }
    };
    out.result = if code == "0" {
        OutcomeResult::Success
    } else {
        OutcomeResult::Error { code, message }
    };
    out
}

fn req_err(code: i64, message: impl Into<String>, action: Option<String>) -> RequestError {
    RequestError {
        family: FAMILY,
        code: code.to_string(),
        message: message.into(),
        status: 200,
        action,
        format: ResponseFormat::Default,
    }
}

/// Parses a request.
pub fn parse_request(req: &HttpRequest) -> Result<ParsedRequest, RequestError> {
    if req.method != "GET" && req.method != "POST" {
        return Err(req_err(
            4600,
            format!("HTTP method {:?} is not supported.", req.method),
            None,
        ));
    }
    let parsed = v1_parse(
        req,
        &V1Codes {
            family: FAMILY,
            missing: "4000",
            invalid: "4000",
            version_required: false,
        },
    )?;
    // The family's common parameters are required and typed: Region, and Nonce a positive
    // integer (a nonce read as text would let `0123` replay `123`).
    let action = Some(parsed.action.clone());
    if parsed.region.as_deref().is_none_or(str::is_empty) {
        return Err(req_err(4000, "The parameter `Region` is missing.", action));
    }
    if nonce_value(&parsed).is_none() {
        return Err(req_err(
            4000,
            "The parameter `Nonce` must be a positive integer.",
            action,
        ));
    }
    Ok(parsed)
}

/// The request's `Nonce` as the integer it must be.
fn nonce_value(parsed: &ParsedRequest) -> Option<u64> {
    let n: u64 = parsed.nonce.as_deref()?.parse().ok()?;
    (n > 0).then_some(n)
}

/// Verifies a request.
pub fn verify(
    req: &HttpRequest,
    parsed: &ParsedRequest,
    secrets: &dyn SecretStore,
    now: i64,
    nonces: &dyn NonceStore,
) -> Result<(), RequestError> {
    let action = Some(parsed.action.clone());
    let secret = secrets.secret(FAMILY, &parsed.secret_id).ok_or_else(|| {
        req_err(
            4100,
            "Authentication failed: unknown SecretId.",
            action.clone(),
        )
    })?;
    v1_check(req, parsed, &secret).map_err(|_| {
        req_err(
            4100,
            "Authentication failed: signature mismatch.",
            action.clone(),
        )
    })?;
    if now.abs_diff(parsed.timestamp) > WINDOW_SECS.unsigned_abs() {
        return Err(req_err(4200, "The request has expired.", action));
    }
    // By value: the same integer written another way is the same nonce.
    let nonce = nonce_value(parsed)
        .map(|n| n.to_string())
        .unwrap_or_default();
    if !nonces.check_and_insert(FAMILY, &parsed.secret_id, &nonce, now) {
        return Err(req_err(
            4500,
            "Replay attack: the Nonce was already used.",
            action,
        ));
    }
    Ok(())
}

/// A short English description of an API 2.0 code (`codeDesc`).
pub fn code_desc(code: i64) -> &'static str {
    match code {
        0 => "Success",
        4000..=4099 => "InvalidParameter",
        4100..=4199 => "AuthFailure",
        4200..=4299 => "RequestExpired",
        4300..=4399 => "AccessDenied",
        4400..=4499 => "QuotaExceeded",
        4500..=4599 => "ReplayAttack",
        4600..=4699 => "UnsupportedProtocol",
        5000..=5099 => "ResourceNotFound",
        5100..=5199 => "OperationFailed",
        5400..=5499 => "PartialSuccess",
        6000..=6099 => "InternalError",
        6100..=6199 => "UnsupportedVersion",
        6200..=6299 => "ServiceUnavailable",
        _ => "Error",
    }
}

/// A response: HTTP 200, `application/json`, `{"code","message","codeDesc"}` plus `extra`.
pub fn respond(code: i64, message: &str, extra: Params) -> HttpResponse {
    let mut body = Params::new();
    body.insert("code".into(), code.into());
    body.insert("message".into(), message.into());
    body.insert("codeDesc".into(), code_desc(code).into());
    for (k, v) in extra {
        body.insert(k, v);
    }
    HttpResponse {
        status: 200,
        headers: vec![("Content-Type".to_string(), "application/json".to_string())],
        body: serde_json::to_vec(&body).unwrap_or_default(),
    }
}
