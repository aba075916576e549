//! The three wire families, in both directions, with no network I/O: bytes in, bytes out.
//!
//! A client (the runner) turns an abstract [`Call`] into exact [`HttpRequest`] bytes with
//! [`encode`] and a response into one [`Outcome`] with [`decode`]. A server (the emulator, the
//! proxy) recovers a [`ParsedRequest`] with [`parse_request`], checks it with [`verify`], and
//! answers with the family module's response builders. The clock and nonce are parameters, so
//! every signature is reproducible in tests.

pub mod aliyun_rpc;
pub mod capture;
pub mod describe;
pub mod discover;
mod encoding;
pub mod received;
pub mod redact;
pub mod request;
pub mod tencent_api3;
pub mod tencent_v2;

use serde::{Deserialize, Serialize};

pub use crate::spec::{FamilyId, Method, Params, ResponseFormat, SignatureMethod};

/// A secret id and key. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `SecretId` / `AccessKeyId`.
    pub id: String,
    /// `SecretKey` / `AccessKeySecret`.
    pub secret: String,
}

impl Credentials {
    /// Credentials from an `(id, secret)` pair, such as the documentation examples.
    pub fn from_pair((id, secret): (&str, &str)) -> Credentials {
        Credentials {
            id: id.to_string(),
            secret: secret.to_string(),
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The credentials one caller holds: a pair per vendor. The Tencent pair signs both Tencent
/// families, the Alibaba pair Alibaba RPC. One type, so that every option set, emulator and
/// signer takes the same thing and picks by family in one place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    /// `SecretId` / `SecretKey` (Tencent API 3.0 and 2.0).
    pub tencent: Credentials,
    /// `AccessKeyId` / `AccessKeySecret` (Alibaba RPC).
    pub alibaba: Credentials,
}

impl Keys {
    /// The pair that signs for `family`.
    pub fn for_family(&self, family: FamilyId) -> &Credentials {
        match family {
            FamilyId::TencentApi3 | FamilyId::TencentV2 => &self.tencent,
            FamilyId::AliyunRpc => &self.alibaba,
        }
    }

    /// Every id and secret, for redaction: none of them may appear in a report or a log.
    pub fn all_strings(&self) -> [&str; 4] {
        [
            &self.tencent.id,
            &self.tencent.secret,
            &self.alibaba.id,
            &self.alibaba.secret,
        ]
    }
}

/// The time and nonce a request is signed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clock {
    /// Unix seconds.
    pub timestamp: i64,
    /// A nonce (Tencent: decimal digits; Alibaba: any unique string).
    pub nonce: String,
}

/// One request to encode: everything but the credentials and the clock.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// Wire family.
    pub family: FamilyId,
    /// Action name.
    pub action: String,
    /// API version, if the family sends one.
    pub version: Option<String>,
    /// Region, if any.
    pub region: Option<String>,
    /// TC3 service name (`cvm`, `ecm`).
    pub service: String,
    /// The `Host` header as sent and signed, with the port when not the default.
    pub host: String,
    /// Request path (`/`, `/v2/index.php`).
    pub path: String,
    /// HTTP method.
    pub method: Method,
    /// Signature scheme.
    pub signature: SignatureMethod,
    /// Business parameters.
    pub params: Params,
    /// Response format to ask for.
    pub format: ResponseFormat,
    /// First index of `Name.N` list items on forms and queries: 0 as the SDKs send, 1 as some
    /// of the documents' examples write them. JSON bodies carry lists as arrays and ignore it.
    pub index_base: u32,
}

/// An HTTP request as bytes on the wire (minus framing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HttpRequest {
    /// `GET`, `POST`, or anything a client sent.
    pub method: String,
    /// Path and query, as in the request line.
    pub target: String,
    /// Headers in order.
    pub headers: Vec<(String, String)>,
    /// Body bytes: written as text when they are UTF-8 (a repro a person reads), as an array
    /// of bytes otherwise; either reads back (files written before were all arrays).
    #[serde(with = "body_text")]
    #[schemars(with = "body_text::Body")]
    pub body: Vec<u8>,
}

/// A request body in a file: text when it is UTF-8, bytes otherwise.
mod body_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(body: &[u8], s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(body) {
            Ok(text) => s.serialize_str(text),
            Err(_) => s.collect_seq(body),
        }
    }

    /// What a body is in a file: text, or (not UTF-8) an array of bytes.
    #[derive(Deserialize, schemars::JsonSchema)]
    #[serde(untagged)]
    pub enum Body {
        /// The body as UTF-8 text.
        Text(String),
        /// The body's bytes, when they are not UTF-8.
        Bytes(Vec<u8>),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        Ok(match Body::deserialize(d)? {
            Body::Text(text) => text.into_bytes(),
            Body::Bytes(bytes) => bytes,
        })
    }
}

impl HttpRequest {
    /// The first header with this name, case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path part of the target.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// The raw query string (without `?`), empty when none.
    pub fn query(&self) -> &str {
        self.target.split_once('?').map_or("", |(_, q)| q)
    }
}

/// An HTTP response as bytes on the wire (minus framing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers in order.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header with this name, case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The body format a response arrived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyFormat {
    /// JSON.
    Json,
    /// XML.
    Xml,
    /// Neither (empty, truncated, HTML, ...).
    Unknown,
}

/// A decoded response: what the oracle judges. Never the result of a panic: anything a target
/// sends becomes an `Outcome`, malformed bodies included.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// HTTP status.
    pub status: u16,
    /// Success, an error code, or a body that could not be read as the family's shape.
    pub result: OutcomeResult,
    /// The request id, where the body has one.
    pub request_id: Option<String>,
    /// The body as JSON (XML converted element by element; repeated elements become arrays).
    pub body: serde_json::Value,
    /// The format the body was in.
    pub format: BodyFormat,
    /// Deviations from the family's envelope noticed while decoding (for example an error
    /// object outside `Response`, a missing `RequestId`, a wrong content type).
    pub problems: Vec<String>,
    /// The root element's name of an XML body (`DetachKeyPairResponse`): the body keeps only
    /// what is inside it, and the family's rule on the root judges the name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xml_root: Option<String>,
}

impl Outcome {
    /// A success with no body yet: where each family's decoder starts before reading the body.
    pub fn new(status: u16) -> Outcome {
        Outcome {
            status,
            result: OutcomeResult::Success,
            request_id: None,
            body: serde_json::Value::Null,
            format: BodyFormat::Unknown,
            problems: Vec::new(),
            xml_root: None,
        }
    }
}

/// What a response says happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OutcomeResult {
    /// The call succeeded.
    Success,
    /// The call failed with a code (API 2.0's numeric `code` as decimal text).
    Error {
        /// The code.
        code: String,
        /// The message.
        message: String,
    },
    /// The body is not a response of the family at all.
    Malformed {
        /// Why.
        reason: String,
    },
}

/// A request as a server recovers it.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedRequest {
    /// Family, from the path, headers and parameters.
    pub family: FamilyId,
    /// Action as sent (case preserved: API 2.0 clients send `UnBindInstanceKey` or `unBindInstanceKey`).
    pub action: String,
    /// Version, if sent.
    pub version: Option<String>,
    /// Region, if sent.
    pub region: Option<String>,
    /// TC3 credential-scope service, if signed with TC3.
    pub service: Option<String>,
    /// Business parameters: JSON bodies as sent; form items un-flattened (`X.0`, `X.1` → array
    /// `X`), every form value a string.
    pub params: Params,
    /// The secret id the request claims.
    pub secret_id: String,
    /// The scheme it is signed with.
    pub signature: SignatureMethod,
    /// Unix seconds it claims to be signed at.
    pub timestamp: i64,
    /// Its nonce, if the scheme has one.
    pub nonce: Option<String>,
    /// The response format it asks for.
    pub format: ResponseFormat,
    /// For un-flattened form lists: the lowest index seen (0 as SDKs send, 1 as some examples).
    pub index_base: Option<u32>,
}

/// Why a server rejects a request before looking at its business parameters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct RequestError {
    /// Family whose error shape to answer with.
    pub family: FamilyId,
    /// The family's documented code (`AuthFailure.SignatureFailure`, `4100`, `SignatureDoesNotMatch`).
    pub code: String,
    /// A message for people.
    pub message: String,
    /// HTTP status to answer with (200 for Tencent families, 4xx for Alibaba).
    pub status: u16,
    /// Action, when it could be read, so the response can be shaped for it.
    pub action: Option<String>,
    /// Response format asked for, when it could be read.
    pub format: ResponseFormat,
}

/// Where a server looks up secrets by id.
pub trait SecretStore {
    /// The secret for `id` in `family`, if the id is known.
    fn secret(&self, family: FamilyId, id: &str) -> Option<String>;
}

/// Where a server remembers nonces within the replay window.
pub trait NonceStore {
    /// Records `nonce` (scoped by secret id) at `now`; false if it was already used.
    fn check_and_insert(&self, family: FamilyId, secret_id: &str, nonce: &str, now: i64) -> bool;
}

/// Errors at the protocol boundary on the client side.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The call cannot be expressed in this family.
    #[error("cannot encode {action} for {family:?} with {signature:?}: {reason}")]
    Unsupported {
        /// Family.
        family: FamilyId,
        /// Action.
        action: String,
        /// Scheme.
        signature: SignatureMethod,
        /// Why.
        reason: String,
    },
}

/// What a signature was computed from, for `apiconform sign` and for mismatch reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SigningExplanation {
    /// The canonical request (TC3, ACS3) or canonical query (RPC, v1); empty where the scheme has none.
    pub canonical_request: String,
    /// The exact string that was signed.
    pub string_to_sign: String,
    /// The signature as sent.
    pub signature: String,
    /// The request that carries it.
    pub request: HttpRequest,
}

/// Encodes and signs a call into exact request bytes.
pub fn encode(
    call: &Call,
    creds: &Credentials,
    clock: &Clock,
) -> Result<HttpRequest, ProtocolError> {
    explain(call, creds, clock).map(|e| e.request)
}

/// Encodes and signs a call, keeping the intermediate strings.
pub fn explain(
    call: &Call,
    creds: &Credentials,
    clock: &Clock,
) -> Result<SigningExplanation, ProtocolError> {
    match call.family {
        FamilyId::TencentApi3 => tencent_api3::explain(call, creds, clock),
        FamilyId::TencentV2 => tencent_v2::explain(call, creds, clock),
        FamilyId::AliyunRpc => aliyun_rpc::explain(call, creds, clock),
    }
}

/// Decodes a response of `family` into one outcome; never panics.
pub fn decode(family: FamilyId, resp: &HttpResponse) -> Outcome {
    if let Some(limit) = resp.header(TRUNCATED) {
        let mut out = Outcome::new(resp.status);
        out.result = OutcomeResult::Malformed {
            reason: format!(
                "the body is longer than {limit} bytes (no answer of these APIs comes near): read no further"
            ),
        };
        return out;
    }
    match family {
        FamilyId::TencentApi3 => tencent_api3::decode(resp),
        FamilyId::TencentV2 => tencent_v2::decode(resp),
        FamilyId::AliyunRpc => aliyun_rpc::decode(resp),
    }
}

/// The header a client adds to a response whose body it stopped reading at its size limit; the
/// value is the limit in bytes. [`decode`] reads such a response as malformed.
pub const TRUNCATED: &str = "x-apiconform-truncated";

/// Recovers the abstract request from bytes: routes to a family by path, headers and
/// parameters, then decodes its parameters. Does not check the signature.
pub fn parse_request(req: &HttpRequest) -> Result<ParsedRequest, RequestError> {
    let params = count_params(req.query().as_bytes()) + count_params(form_body(req));
    if params > MAX_PARAMS {
        return Err(too_many_params(req, params));
    }
    if req.path() == "/v2/index.php" {
        return tencent_v2::parse_request(req);
    }
    if req.header("x-tc-action").is_some()
        || req
            .header("authorization")
            .is_some_and(|a| a.starts_with("TC3-"))
    {
        return tencent_api3::parse_request(req);
    }
    if req.header("x-acs-action").is_some()
        || req
            .header("authorization")
            .is_some_and(|a| a.starts_with("ACS3-"))
    {
        return aliyun_rpc::parse_request(req);
    }
    // Signature v1 and RPC carry everything in parameters: tell them apart by the id's name.
    // Lazily, without copying the pairs: the family's parser decodes them properly.
    let names_id = |bytes: &[u8]| form_urlencoded::parse(bytes).any(|(k, _)| k == "AccessKeyId");
    if names_id(req.query().as_bytes()) || names_id(form_body(req)) {
        aliyun_rpc::parse_request(req)
    } else {
        tencent_api3::parse_request(req)
    }
}

/// The most form or query parameters a request may carry. The largest documented request — 100
/// instances and 100 keys as `Name.N` items plus the common parameters — needs about 215; a
/// server counts them (one pass over the bytes) before decoding or authenticating anything.
pub const MAX_PARAMS: usize = 1000;

fn count_params(bytes: &[u8]) -> usize {
    bytes
        .split(|b| *b == b'&')
        .filter(|p| !p.is_empty())
        .count()
}

/// The family's answer to a request with more than [`MAX_PARAMS`] parameters, told apart the way
/// [`parse_request`] does, without decoding them.
fn too_many_params(req: &HttpRequest, n: usize) -> RequestError {
    let alibaba = req.header("x-acs-action").is_some()
        || req.query().contains("AccessKeyId=")
        || req.body.windows(12).any(|w| w == b"AccessKeyId=");
    let (family, code, status) = if req.path() == "/v2/index.php" {
        (FamilyId::TencentV2, "4000", 200)
    } else if alibaba {
        (FamilyId::AliyunRpc, "InvalidParameter", 400)
    } else {
        (FamilyId::TencentApi3, "InvalidParameter", 200)
    };
    RequestError {
        family,
        code: code.into(),
        message: format!("the request carries {n} parameters; at most {MAX_PARAMS} are accepted"),
        status,
        action: None,
        format: ResponseFormat::Json,
    }
}

/// Checks signature, secret id, timestamp window and nonce of a parsed request.
pub fn verify(
    req: &HttpRequest,
    parsed: &ParsedRequest,
    secrets: &dyn SecretStore,
    now: i64,
    nonces: &dyn NonceStore,
) -> Result<(), RequestError> {
    match parsed.family {
        FamilyId::TencentApi3 => tencent_api3::verify(req, parsed, secrets, now, nonces),
        FamilyId::TencentV2 => tencent_v2::verify(req, parsed, secrets, now, nonces),
        FamilyId::AliyunRpc => aliyun_rpc::verify(req, parsed, secrets, now, nonces),
    }
}

/// Query pairs plus, for form bodies, body pairs: the parameters of v1 and RPC requests.
pub fn form_pairs(req: &HttpRequest) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = form_urlencoded::parse(req.query().as_bytes())
        .into_owned()
        .collect();
    pairs.extend(form_urlencoded::parse(form_body(req)).into_owned());
    pairs
}

/// The names of a request's `Name.N` list items (query and form body), in order: how its lists
/// went on the wire.
pub fn list_item_names(req: &HttpRequest) -> Vec<String> {
    form_pairs(req)
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| {
            k.rsplit_once('.')
                .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect()
}

/// The body when it is a form (empty otherwise).
fn form_body(req: &HttpRequest) -> &[u8] {
    let is_form = req
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if is_form {
        &req.body
    } else {
        &[]
    }
}

/// The response a server answers a rejected request with, in the family's error shape
/// (API 2.0: the code parsed as an integer, 4000 if it is not one).
pub fn request_error_response(err: &RequestError, request_id: &str) -> HttpResponse {
    match err.family {
        FamilyId::TencentApi3 => tencent_api3::error(&err.code, &err.message, request_id),
        FamilyId::TencentV2 => {
            let mut extra = Params::new();
            extra.insert("requestId".into(), request_id.into());
            tencent_v2::respond(err.code.parse().unwrap_or(4000), &err.message, extra)
        }
        FamilyId::AliyunRpc => {
            aliyun_rpc::error(err.status, &err.code, &err.message, request_id, err.format)
        }
    }
}

#[cfg(test)]
mod body_tests {
    use super::HttpRequest;

    #[test]
    fn a_utf8_body_is_written_as_text_bytes_only_otherwise_and_old_files_still_read() {
        let req = |body: &[u8]| HttpRequest {
            method: "POST".into(),
            target: "/".into(),
            headers: vec![],
            body: body.to_vec(),
        };
        let text = serde_json::to_value(req(br#"{"InstanceIds":["ins-1"]}"#)).unwrap();
        assert_eq!(text["body"], r#"{"InstanceIds":["ins-1"]}"#);
        let bytes = serde_json::to_value(req(&[0xff, 0x00])).unwrap();
        assert_eq!(bytes["body"], serde_json::json!([255, 0]));
        for v in [text, bytes] {
            let back: HttpRequest = serde_json::from_value(v.clone()).unwrap();
            assert_eq!(serde_json::to_value(back).unwrap(), v);
        }
        let old =
            serde_json::json!({"method": "POST", "target": "/", "headers": [], "body": [123, 125]});
        let old: HttpRequest = serde_json::from_value(old).unwrap();
        assert_eq!(old.body, b"{}");
    }
}
