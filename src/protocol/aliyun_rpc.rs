//! Alibaba Cloud RPC style: signature version 1.0 HMAC-SHA1 (parameters in the query), and
//! ACS3-HMAC-SHA256 (`Authorization` header) as the Tea SDK sends by default.
//!
//! Decisions:
//! - POST carries every parameter in the query with an empty body, as aliyun-python-sdk-core
//!   2.16.1 does (capture 05); a form body is also read when a client sends one.
//! - A list or object parameter is sent as its compact JSON text; on the server every value
//!   stays a string (`InstanceIds` is the raw JSON text the client sent). `Name.N` items are
//!   un-flattened like the Tencent forms.
//! - The empty `SignatureType=` aliyun core sends is signed like any other parameter and is not
//!   a business parameter; this client does not send it.
//! - `Format` is read case-insensitively (`json` from the Tea SDK, capture 05c). ACS3 requests
//!   without `Format` are answered in JSON (the Tea SDK sends `accept: application/json`).
//! - Status codes: `InvalidAccessKeyId.NotFound` 404, `SignatureDoesNotMatch` 400 (aliyun core
//!   only rewrites a 400 into `InvalidAccessKeySecret`), the rest 400. Window ±900 s.
//! - Checks run in the order AccessKeyId, signature, timestamp window, nonce.

use super::encoding::{
    b64, eq_ct, hmac_sha1, hmac_sha256, iso8601, parse_iso8601, pe, scalar_text, sha256_hex,
    unflatten,
};
use super::tencent_api3::unsupported;
use super::*;

/// Timestamp window, seconds (15 minutes).
pub const WINDOW_SECS: i64 = 900;

const FAMILY: FamilyId = FamilyId::AliyunRpc;

/// The prefix of a `SignatureDoesNotMatch` message, followed by the server's string to sign.
pub const SIGNATURE_MISMATCH_PREFIX: &str =
    "Specified signature is not matched with our calculation. server string to sign is:";

const RPC_COMMON: &[&str] = &[
    "AccessKeyId",
    "Action",
    "Format",
    "SignatureMethod",
    "SignatureNonce",
    "SignatureVersion",
    "SignatureType",
    "Timestamp",
    "Version",
    "Signature",
];

/// RPC signature 1.0: canonical query (sorted `pe(k)=pe(v)`), string to sign
/// `METHOD&%2F&pe(canonical)`, and the base64 HMAC-SHA1 keyed with `secret&`.
pub fn rpc_sign(
    method: &str,
    pairs: &[(String, String)],
    secret: &str,
) -> (String, String, String) {
    let canonical = canonical_query(pairs);
    let sts = format!("{method}&%2F&{}", pe(&canonical));
    let sig = b64(&hmac_sha1(format!("{secret}&").as_bytes(), sts.as_bytes()));
    (canonical, sts, sig)
}

/// Sorted `pe(k)=pe(v)` joined by `&`.
pub fn canonical_query(pairs: &[(String, String)]) -> String {
    let mut items: Vec<(String, String)> = pairs.iter().map(|(k, v)| (pe(k), pe(v))).collect();
    items.sort();
    items
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// ACS3-HMAC-SHA256: canonical request, string to sign and hex signature. `headers` are the
/// signed headers with lower-case names; they are sorted here.
pub fn acs3_sign(
    method: &str,
    path: &str,
    query: &[(String, String)],
    headers: &[(String, String)],
    hashed_payload: &str,
    secret: &str,
) -> (String, String, String, String) {
    let mut hs: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    hs.sort();
    let canonical_headers: String = hs.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed = hs
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_request = format!(
        "{method}\n{path}\n{}\n{canonical_headers}\n{signed}\n{hashed_payload}",
        canonical_query(query)
    );
    let sts = format!(
        "ACS3-HMAC-SHA256\n{}",
        sha256_hex(canonical_request.as_bytes())
    );
    let sig = hex::encode(hmac_sha256(secret.as_bytes(), sts.as_bytes()));
    (canonical_request, sts, sig, signed)
}

fn business_pairs(call: &Call) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = call
        .params
        .iter()
        .map(|(k, v)| {
            let text = match v {
                serde_json::Value::Array(_) | serde_json::Value::Object(_) => v.to_string(),
                scalar => scalar_text(scalar),
            };
            (k.clone(), text)
        })
        .collect();
    if let Some(r) = &call.region {
        if !call.params.contains_key("RegionId") {
            pairs.push(("RegionId".into(), r.clone()));
        }
    }
    pairs
}

/// Encodes and signs a call, keeping the intermediate strings.
pub fn explain(
    call: &Call,
    creds: &Credentials,
    clock: &Clock,
) -> Result<SigningExplanation, ProtocolError> {
    let path = if call.path.is_empty() {
        "/"
    } else {
        call.path.as_str()
    };
    let method = call.method.as_str();
    match call.signature {
        SignatureMethod::RpcHmacSha1 => {
            let mut pairs = business_pairs(call);
            pairs.push(("AccessKeyId".into(), creds.id.clone()));
            pairs.push(("Action".into(), call.action.clone()));
            match call.format {
                ResponseFormat::Json => pairs.push(("Format".into(), "JSON".into())),
                ResponseFormat::Xml => pairs.push(("Format".into(), "XML".into())),
                ResponseFormat::Default => {}
            }
            pairs.push(("SignatureMethod".into(), "HMAC-SHA1".into()));
            pairs.push(("SignatureNonce".into(), clock.nonce.clone()));
            pairs.push(("SignatureVersion".into(), "1.0".into()));
            pairs.push(("Timestamp".into(), iso8601(clock.timestamp)));
            if let Some(v) = &call.version {
                pairs.push(("Version".into(), v.clone()));
            }
            let (canonical, sts, sig) = rpc_sign(method, &pairs, &creds.secret);
            let target = format!("{path}?{canonical}&Signature={}", pe(&sig));
            Ok(SigningExplanation {
                canonical_request: canonical,
                string_to_sign: sts,
                signature: sig,
                request: HttpRequest {
                    method: method.to_string(),
                    target,
                    headers: vec![("Host".to_string(), call.host.clone())],
                    body: Vec::new(),
                },
            })
        }
        SignatureMethod::Acs3HmacSha256 => {
            let query = business_pairs(call);
            let hashed = sha256_hex(b"");
            let mut headers = vec![
                ("host".to_string(), call.host.clone()),
                ("x-acs-action".to_string(), call.action.clone()),
            ];
            if let Some(v) = &call.version {
                headers.push(("x-acs-version".to_string(), v.clone()));
            }
            headers.push(("x-acs-date".to_string(), iso8601(clock.timestamp)));
            headers.push(("x-acs-signature-nonce".to_string(), clock.nonce.clone()));
            headers.push(("x-acs-content-sha256".to_string(), hashed.clone()));
            let (canonical_request, sts, sig, signed) =
                acs3_sign(method, path, &query, &headers, &hashed, &creds.secret);
            headers.push((
                "Authorization".to_string(),
                format!(
                    "ACS3-HMAC-SHA256 Credential={},SignedHeaders={signed},Signature={sig}",
                    creds.id
                ),
            ));
            let cq = canonical_query(&query);
            let target = if cq.is_empty() {
                path.to_string()
            } else {
                format!("{path}?{cq}")
            };
            Ok(SigningExplanation {
                canonical_request,
                string_to_sign: sts,
                signature: sig,
                request: HttpRequest {
                    method: method.to_string(),
                    target,
                    headers,
                    body: Vec::new(),
                },
            })
        }
        other => Err(unsupported(
            call,
            other,
            "Alibaba RPC signs with RPC 1.0 or ACS3",
        )),
    }
}

/// Converts an XML document to JSON: the root's name and its content (children as an object;
/// repeated siblings become arrays; leaves become strings).
pub fn xml_to_json(text: &str) -> Result<(String, serde_json::Value), String> {
    use quick_xml::events::Event;
    struct Node {
        name: String,
        children: Params,
        has_children: bool,
        text: String,
    }
    fn insert(map: &mut Params, name: String, value: serde_json::Value) {
        match map.get_mut(&name) {
            Some(serde_json::Value::Array(items)) => items.push(value),
            Some(existing) => {
                let first = existing.take();
                *existing = serde_json::Value::Array(vec![first, value]);
            }
            None => {
                map.insert(name, value);
            }
        }
    }
    fn finish(node: Node) -> serde_json::Value {
        if node.has_children {
            serde_json::Value::Object(node.children)
        } else {
            serde_json::Value::String(node.text)
        }
    }
    let mut reader = quick_xml::Reader::from_str(text);
    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<(String, serde_json::Value)> = None;
    loop {
        let event = reader.read_event().map_err(|e| e.to_string())?;
        match event {
            Event::Start(e) | Event::Empty(e) if root.is_some() => {
                let _ = e;
                return Err("content after the root element".into());
            }
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                if let Some(parent) = stack.last_mut() {
                    parent.has_children = true;
                }
                stack.push(Node {
                    name,
                    children: Params::new(),
                    has_children: false,
                    text: String::new(),
                });
            }
            Event::Empty(e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                match stack.last_mut() {
                    Some(parent) => {
                        parent.has_children = true;
                        insert(
                            &mut parent.children,
                            name,
                            serde_json::Value::String(String::new()),
                        );
                    }
                    None => root = Some((name, serde_json::Value::String(String::new()))),
                }
            }
            Event::End(_) => {
                let node = stack.pop().ok_or("unbalanced end tag")?;
                let name = node.name.clone();
                let value = finish(node);
                match stack.last_mut() {
                    Some(parent) => insert(&mut parent.children, name, value),
                    None => root = Some((name, value)),
                }
            }
            Event::Text(t) => {
                let s = t.decode().map_err(|e| e.to_string())?;
                match stack.last_mut() {
                    Some(node) => node.text.push_str(&s),
                    None if s.trim().is_empty() => {}
                    None => return Err("text outside the root element".into()),
                }
            }
            Event::CData(c) => {
                let s = c.decode().map_err(|e| e.to_string())?;
                match stack.last_mut() {
                    Some(node) => node.text.push_str(&s),
                    None => return Err("CDATA outside the root element".into()),
                }
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref().map_err(|e| e.to_string())? {
                    Some(c) => c.to_string(),
                    None => {
                        let name = r.decode().map_err(|e| e.to_string())?;
                        quick_xml::escape::resolve_predefined_entity(&name)
                            .ok_or_else(|| format!("unknown entity &{name};"))?
                            .to_string()
                    }
                };
                match stack.last_mut() {
                    Some(node) => node.text.push_str(&resolved),
                    None => return Err("reference outside the root element".into()),
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err("unexpected end of document: unclosed elements".into());
    }
    root.ok_or_else(|| "no root element".to_string())
}

fn code_looks_like_error(code: &str) -> bool {
    !matches!(
        code.to_ascii_lowercase().as_str(),
        "" | "200" | "0" | "ok" | "success"
    )
}

/// Decodes a response (JSON or XML, sniffed from the first non-blank byte). A body with an
/// error `Code` is an error whatever the status: a 2xx status on it is an [`Outcome`] with an
/// error result and that status, which the oracle judges on the family's envelope rule.
pub fn decode(resp: &HttpResponse) -> Outcome {
    let mut out = Outcome::new(resp.status);
    let first = resp.body.iter().find(|b| !b.is_ascii_whitespace()).copied();
    let parsed: Result<serde_json::Value, String> = if first == Some(b'<') {
        out.format = BodyFormat::Xml;
        std::str::from_utf8(&resp.body)
            .map_err(|e| e.to_string())
            .and_then(xml_to_json)
            .map(|(root, v)| {
                out.xml_root = Some(root);
                v
            })
    } else {
        out.format = BodyFormat::Json;
        serde_json::from_slice(&resp.body).map_err(|e| e.to_string())
    };
    let value = match parsed {
        Ok(v) => v,
        Err(e) => {
            out.format = BodyFormat::Unknown;
            out.result = OutcomeResult::Malformed {
                reason: format!("body is neither JSON nor well-formed XML: {e}"),
            };
            return out;
        }
    };
    out.body = value.clone();
    let Some(obj) = value.as_object() else {
        out.result = OutcomeResult::Malformed {
            reason: "body is not an object".into(),
        };
        return out;
    };
    let text = |k: &str| match obj.get(k) {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Null) | None => None,
        Some(other) => Some(other.to_string()),
    };
    out.request_id = text("RequestId");
    if out.request_id.is_none() {
        out.problems.push("missing RequestId".into());
    }
    let code = text("Code");
    let ok = (200..300).contains(&resp.status);
    if ok {
        // An error body under a success status is what the body says: an error. The status
        // that contradicts it stays in `status`, for the oracle to judge on the family's
        // envelope rule (the SDKs, which raise only on a non-2xx status, read it as success).
        out.result = match code {
            Some(code) if code_looks_like_error(&code) => OutcomeResult::Error {
                code,
                message: text("Message").unwrap_or_default(),
            },
            _ => OutcomeResult::Success,
        };
    } else {
        match code {
            Some(code) => {
                out.result = OutcomeResult::Error {
                    code,
                    message: text("Message").unwrap_or_default(),
                }
            }
            None => {
                out.problems
                    .push(format!("HTTP {} without Code", resp.status));
                out.result = OutcomeResult::Malformed {
                    reason: format!("HTTP {} without Code", resp.status),
                };
            }
        }
    }
    out
}

fn req_err(
    status: u16,
    code: &str,
    message: impl Into<String>,
    action: Option<String>,
    format: ResponseFormat,
) -> RequestError {
    RequestError {
        family: FAMILY,
        code: code.to_string(),
        message: message.into(),
        status,
        action,
        format,
    }
}

fn parse_format(s: Option<&str>) -> ResponseFormat {
    match s.map(|f| f.to_ascii_lowercase()).as_deref() {
        Some("json") => ResponseFormat::Json,
        Some("xml") => ResponseFormat::Xml,
        _ => ResponseFormat::Default,
    }
}

/// The pieces of an ACS3 `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acs3Authorization {
    /// AccessKeyId.
    pub access_key_id: String,
    /// Signed header names, lower case, as listed.
    pub signed_headers: Vec<String>,
    /// Hex signature.
    pub signature: String,
}

/// Parses `ACS3-HMAC-SHA256 Credential=ID,SignedHeaders=a;b,Signature=hex`.
pub fn parse_acs3_authorization(value: &str) -> Option<Acs3Authorization> {
    let rest = value.strip_prefix("ACS3-HMAC-SHA256 ")?;
    let (mut cred, mut signed, mut sig) = (None, None, None);
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "Credential" => cred = Some(v.to_string()),
            "SignedHeaders" => signed = Some(v),
            "Signature" => sig = Some(v.to_string()),
            _ => return None,
        }
    }
    let signed_headers: Vec<String> = signed?.split(';').map(|h| h.to_ascii_lowercase()).collect();
    let (access_key_id, signature) = (cred?, sig?);
    if access_key_id.is_empty()
        || signature.is_empty()
        || signed_headers.iter().any(|h| h.is_empty())
    {
        return None;
    }
    Some(Acs3Authorization {
        access_key_id,
        signed_headers,
        signature,
    })
}

/// Parses a request.
pub fn parse_request(req: &HttpRequest) -> Result<ParsedRequest, RequestError> {
    let pairs = form_pairs(req);
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let acs3 = req.header("authorization").is_some();
    let format = match get("Format") {
        Some(f) => parse_format(Some(&f)),
        None if acs3 => ResponseFormat::Json,
        None => ResponseFormat::Default,
    };
    let action = if acs3 {
        req.header("x-acs-action").map(str::to_string)
    } else {
        get("Action")
    }
    .filter(|a| !a.is_empty());
    let e400 = |code: &str, msg: String| req_err(400, code, msg, action.clone(), format);
    if req.method != "GET" && req.method != "POST" {
        return Err(e400(
            "UnsupportedHTTPMethod",
            format!("HTTP method {:?} is not supported.", req.method),
        ));
    }
    let business: Vec<(String, String)> = pairs
        .iter()
        .filter(|(k, _)| !RPC_COMMON.contains(&k.as_str()))
        .cloned()
        .collect();
    let (params, index_base) = unflatten(&business);
    let region = get("RegionId");
    if acs3 {
        let auth = req
            .header("authorization")
            .and_then(parse_acs3_authorization)
            .ok_or_else(|| {
                e400(
                    "IncompleteSignature",
                    "The Authorization header is malformed.".into(),
                )
            })?;
        let hdr = |n: &str| {
            req.header(n)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let action_s = action.clone().ok_or_else(|| {
            e400(
                "MissingParameter",
                "The header x-acs-action is missing.".into(),
            )
        })?;
        let version = hdr("x-acs-version").ok_or_else(|| {
            e400(
                "MissingParameter",
                "The header x-acs-version is missing.".into(),
            )
        })?;
        let date = hdr("x-acs-date").ok_or_else(|| {
            e400(
                "IncompleteSignature",
                "The header x-acs-date is missing.".into(),
            )
        })?;
        let timestamp = parse_iso8601(&date).ok_or_else(|| {
            e400(
                "IllegalTimestamp",
                format!("The input parameter x-acs-date {date:?} is not in YYYY-MM-DDThh:mm:ssZ."),
            )
        })?;
        let nonce = hdr("x-acs-signature-nonce").ok_or_else(|| {
            e400(
                "IncompleteSignature",
                "The header x-acs-signature-nonce is missing.".into(),
            )
        })?;
        if hdr("x-acs-content-sha256").is_none() {
            return Err(e400(
                "IncompleteSignature",
                "The header x-acs-content-sha256 is missing.".into(),
            ));
        }
        return Ok(ParsedRequest {
            family: FAMILY,
            action: action_s,
            version: Some(version),
            region,
            service: None,
            params,
            secret_id: auth.access_key_id,
            signature: SignatureMethod::Acs3HmacSha256,
            timestamp,
            nonce: Some(nonce),
            format,
            index_base,
        });
    }
    for k in ["Action", "Version"] {
        if get(k).is_none_or(|v| v.is_empty()) {
            return Err(e400("MissingParameter", format!("The input parameter {k} that is mandatory for processing this request is not supplied.")));
        }
    }
    for k in [
        "Signature",
        "AccessKeyId",
        "SignatureNonce",
        "Timestamp",
        "SignatureMethod",
    ] {
        if get(k).is_none_or(|v| v.is_empty()) {
            return Err(e400(
                "IncompleteSignature",
                format!("The request signature is incomplete: {k} is missing."),
            ));
        }
    }
    if get("SignatureMethod").as_deref() != Some("HMAC-SHA1") {
        return Err(e400(
            "InvalidParameter",
            "SignatureMethod must be HMAC-SHA1.".into(),
        ));
    }
    if get("SignatureVersion").is_some_and(|v| v != "1.0") {
        return Err(e400(
            "InvalidParameter",
            "SignatureVersion must be 1.0.".into(),
        ));
    }
    let ts = get("Timestamp").unwrap_or_default();
    let timestamp = parse_iso8601(&ts).ok_or_else(|| {
        e400(
            "IllegalTimestamp",
            format!("The input parameter Timestamp {ts:?} is not in YYYY-MM-DDThh:mm:ssZ."),
        )
    })?;
    Ok(ParsedRequest {
        family: FAMILY,
        action: action.clone().unwrap_or_default(),
        version: get("Version"),
        region,
        service: None,
        params,
        secret_id: get("AccessKeyId").unwrap_or_default(),
        signature: SignatureMethod::RpcHmacSha1,
        timestamp,
        nonce: get("SignatureNonce"),
        format,
        index_base,
    })
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
    let format = parsed.format;
    let secret = secrets.secret(FAMILY, &parsed.secret_id).ok_or_else(|| {
        req_err(
            404,
            "InvalidAccessKeyId.NotFound",
            "Specified access key is not found.",
            action.clone(),
            format,
        )
    })?;
    let mismatch = |sts: &str| {
        req_err(
            400,
            "SignatureDoesNotMatch",
            format!("{SIGNATURE_MISMATCH_PREFIX}{sts}"),
            action.clone(),
            format,
        )
    };
    match parsed.signature {
        SignatureMethod::RpcHmacSha1 => {
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
            let (_, sts, sig) = rpc_sign(&req.method, &unsigned, &secret);
            if !eq_ct(&sig, &sent) {
                return Err(mismatch(&sts));
            }
        }
        SignatureMethod::Acs3HmacSha256 => {
            let auth = req
                .header("authorization")
                .and_then(parse_acs3_authorization)
                .ok_or_else(|| {
                    req_err(
                        400,
                        "IncompleteSignature",
                        "The Authorization header is malformed.",
                        action.clone(),
                        format,
                    )
                })?;
            let hashed = req
                .header("x-acs-content-sha256")
                .unwrap_or("")
                .trim()
                .to_string();
            let body_hash = sha256_hex(&req.body);
            let mut headers = Vec::new();
            for name in &auth.signed_headers {
                match req.header(name) {
                    Some(v) => headers.push((name.clone(), v.to_string())),
                    None => return Err(mismatch("(a signed header is missing)")),
                }
            }
            for required in [
                "host",
                "x-acs-date",
                "x-acs-signature-nonce",
                "x-acs-content-sha256",
            ] {
                if !auth.signed_headers.iter().any(|h| h == required) {
                    return Err(mismatch(&format!("({required} is not signed)")));
                }
            }
            // The scheme signs every x-acs-* header: one left out (x-acs-action, say) could be
            // changed on the way without breaking the signature.
            if let Some((name, _)) = req.headers.iter().find(|(k, _)| {
                let k = k.to_ascii_lowercase();
                k.starts_with("x-acs-") && !auth.signed_headers.contains(&k)
            }) {
                return Err(mismatch(&format!(
                    "({} is not signed)",
                    name.to_ascii_lowercase()
                )));
            }
            let query: Vec<(String, String)> = form_urlencoded::parse(req.query().as_bytes())
                .into_owned()
                .collect();
            let (_, sts, sig, _) =
                acs3_sign(&req.method, req.path(), &query, &headers, &hashed, &secret);
            if hashed != body_hash || !eq_ct(&sig, &auth.signature.to_ascii_lowercase()) {
                return Err(mismatch(&sts));
            }
        }
        _ => return Err(mismatch("")),
    }
    if now.abs_diff(parsed.timestamp) > WINDOW_SECS.unsigned_abs() {
        return Err(req_err(
            400,
            "IllegalTimestamp",
            "The input parameter Timestamp is more than 15 minutes away from server time.",
            action,
            format,
        ));
    }
    let nonce = parsed.nonce.as_deref().unwrap_or("");
    if !nonces.check_and_insert(FAMILY, &parsed.secret_id, nonce, now) {
        return Err(req_err(
            400,
            "SignatureNonceUsed",
            "Specified signature nonce was used already.",
            action,
            format,
        ));
    }
    Ok(())
}

fn xml_escape(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

fn render_xml(map: &Params, out: &mut String) {
    for (k, v) in map {
        render_xml_value(k, v, out);
    }
}

fn render_xml_value(k: &str, v: &serde_json::Value, out: &mut String) {
    match v {
        serde_json::Value::Array(items) => {
            for item in items {
                render_xml_value(k, item, out);
            }
        }
        serde_json::Value::Object(m) => {
            out.push_str(&format!("<{k}>"));
            render_xml(m, out);
            out.push_str(&format!("</{k}>"));
        }
        scalar => out.push_str(&format!("<{k}>{}</{k}>", xml_escape(&scalar_text(scalar)))),
    }
}

fn response(status: u16, format: ResponseFormat, body: String) -> HttpResponse {
    let ct = if format == ResponseFormat::Json {
        "application/json;charset=utf-8"
    } else {
        "text/xml;charset=utf-8"
    };
    HttpResponse {
        status,
        headers: vec![("Content-Type".to_string(), ct.to_string())],
        body: body.into_bytes(),
    }
}

/// A success response: JSON for `Json`, `<{Action}Response>` XML otherwise; HTTP 200.
pub fn ok(action: &str, format: ResponseFormat, request_id: &str, fields: Params) -> HttpResponse {
    let mut body = Params::new();
    body.insert("RequestId".into(), request_id.into());
    for (k, v) in fields {
        if k != "RequestId" {
            body.insert(k, v);
        }
    }
    match format {
        ResponseFormat::Json => response(200, format, serde_json::Value::Object(body).to_string()),
        _ => {
            let mut s = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><{action}Response>");
            render_xml(&body, &mut s);
            s.push_str(&format!("</{action}Response>"));
            response(200, format, s)
        }
    }
}

/// The host id reported in error bodies.
pub const HOST_ID: &str = "ecs.aliyuncs.com";

/// An error response: `{"RequestId","HostId","Code","Message"}` or `<Error>...</Error>`.
pub fn error(
    status: u16,
    code: &str,
    message: &str,
    request_id: &str,
    format: ResponseFormat,
) -> HttpResponse {
    let mut body = Params::new();
    body.insert("RequestId".into(), request_id.into());
    body.insert("HostId".into(), HOST_ID.into());
    body.insert("Code".into(), code.into());
    body.insert("Message".into(), message.into());
    match format {
        ResponseFormat::Json => {
            response(status, format, serde_json::Value::Object(body).to_string())
        }
        _ => {
            let mut s = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error>".to_string();
            render_xml(&body, &mut s);
            s.push_str("</Error>");
            response(status, format, s)
        }
    }
}
