//! The wire vocabulary the documents speak in: how parameters are valued, which HTTP methods,
//! signature schemes and response formats a request can use. It lives beside the spec model
//! (like [`super::FamilyId`]) so that abstract cases can name it without depending on the
//! protocol modules that turn cases into bytes.

use serde::{Deserialize, Serialize};

/// Abstract parameter values: JSON values keyed by the document's parameter names. Lists are
/// JSON arrays; each family flattens them its own way on the wire.
pub type Params = serde_json::Map<String, serde_json::Value>;

/// HTTP methods the families use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    /// Parameters in the query string.
    Get,
    /// Parameters in the body (JSON or form), or in the query with an empty body (Alibaba).
    Post,
}

impl Method {
    /// `GET` or `POST`.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// Signature schemes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureMethod {
    /// Tencent API 3.0 TC3-HMAC-SHA256 (`Authorization` header).
    Tc3HmacSha256,
    /// Tencent signature v1 with HmacSHA1 (API 3.0 GET/form and API 2.0).
    V1HmacSha1,
    /// Tencent signature v1 with HmacSHA256.
    V1HmacSha256,
    /// Alibaba RPC signature version 1.0, HMAC-SHA1.
    RpcHmacSha1,
    /// Alibaba ACS3-HMAC-SHA256 (`Authorization` header), sent by the newest Alibaba SDKs.
    Acs3HmacSha256,
}

/// Response formats a client may ask for (Alibaba `Format`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ResponseFormat {
    /// The family's default (XML for Alibaba RPC, JSON for Tencent).
    #[default]
    Default,
    /// JSON.
    Json,
    /// XML.
    Xml,
}
