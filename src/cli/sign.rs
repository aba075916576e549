//! `apiconform sign`: show how a request is signed, step by step.

use clap::{Args, ValueEnum};

use super::{exit, finish, say, CredArgs, Failed};
use crate::emulator;
use crate::protocol::{
    self, Call, Clock, FamilyId, Method, Params, ResponseFormat, SignatureMethod,
};

/// A wire family, as the flag names it.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum FamilyArg {
    /// Tencent API 3.0 (TC3, or v1 on GET/form).
    #[value(name = "tencent_api3")]
    TencentApi3,
    /// Tencent legacy API 2.0 (`/v2/index.php`).
    #[value(name = "tencent_v2")]
    TencentV2,
    /// Alibaba RPC.
    #[value(name = "aliyun_rpc")]
    AliyunRpc,
}

impl From<FamilyArg> for FamilyId {
    fn from(f: FamilyArg) -> FamilyId {
        match f {
            FamilyArg::TencentApi3 => FamilyId::TencentApi3,
            FamilyArg::TencentV2 => FamilyId::TencentV2,
            FamilyArg::AliyunRpc => FamilyId::AliyunRpc,
        }
    }
}

/// A signature scheme, as the flag names it.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum SignatureArg {
    /// Tencent TC3-HMAC-SHA256 (`Authorization` header).
    Tc3HmacSha256,
    /// Tencent signature v1, HmacSHA1.
    V1HmacSha1,
    /// Tencent signature v1, HmacSHA256.
    V1HmacSha256,
    /// Alibaba RPC signature 1.0, HMAC-SHA1.
    RpcHmacSha1,
    /// Alibaba ACS3-HMAC-SHA256 (`Authorization` header).
    Acs3HmacSha256,
}

impl From<SignatureArg> for SignatureMethod {
    fn from(s: SignatureArg) -> SignatureMethod {
        match s {
            SignatureArg::Tc3HmacSha256 => SignatureMethod::Tc3HmacSha256,
            SignatureArg::V1HmacSha1 => SignatureMethod::V1HmacSha1,
            SignatureArg::V1HmacSha256 => SignatureMethod::V1HmacSha256,
            SignatureArg::RpcHmacSha1 => SignatureMethod::RpcHmacSha1,
            SignatureArg::Acs3HmacSha256 => SignatureMethod::Acs3HmacSha256,
        }
    }
}

/// An HTTP method the families use.
#[derive(Debug, Clone, Copy, ValueEnum)]
#[value(rename_all = "UPPER")]
enum MethodArg {
    /// Parameters in the query string.
    Get,
    /// Parameters in the body (or the query, for Alibaba).
    Post,
}

/// An Alibaba response format.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum FormatArg {
    /// JSON.
    Json,
    /// XML.
    Xml,
}

#[derive(Args)]
pub(super) struct SignArgs {
    /// Wire family.
    #[arg(long, value_enum)]
    family: FamilyArg,
    /// Action name.
    #[arg(long)]
    action: String,
    /// API version (omit for API 2.0).
    #[arg(long)]
    version: Option<String>,
    /// Region.
    #[arg(long)]
    region: Option<String>,
    /// TC3 service name (cvm, ecm).
    #[arg(long, default_value = "")]
    service: String,
    /// Host header as sent (with the port when not the default).
    #[arg(long)]
    host: String,
    /// Request path (default / , or /v2/index.php for API 2.0).
    #[arg(long)]
    path: Option<String>,
    /// HTTP method.
    #[arg(long, value_enum, ignore_case = true, default_value = "POST")]
    method: MethodArg,
    /// Signature scheme (default: the family's usual one).
    #[arg(long, value_enum)]
    signature: Option<SignatureArg>,
    /// A parameter NAME=VALUE (repeatable); VALUE is read as JSON when it parses (lists, numbers, booleans).
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = parse_param)]
    params: Vec<(String, serde_json::Value)>,
    /// Unix timestamp to sign with (default: now).
    #[arg(long)]
    timestamp: Option<i64>,
    /// Nonce to sign with.
    #[arg(long, default_value = "11886")]
    nonce: String,
    /// Response format for Alibaba.
    #[arg(long, value_enum, ignore_case = true)]
    format: Option<FormatArg>,
    /// First index of list items on forms and queries (0 as the SDKs send, 1 as some examples).
    #[arg(long, default_value_t = 0)]
    index_base: u32,
    #[command(flatten)]
    creds: CredArgs,
}

fn parse_param(p: &str) -> Result<(String, serde_json::Value), String> {
    let (k, v) = p.split_once('=').ok_or_else(|| {
        format!("`{p}` has no `=`: write NAME=VALUE, e.g. --param 'InstanceIds=[\"ins-1e4r6y8i\"]'")
    })?;
    let value =
        serde_json::from_str(v).unwrap_or_else(|_| serde_json::Value::String(v.to_string()));
    Ok((k.to_string(), value))
}

pub(super) fn sign(args: SignArgs) -> u8 {
    finish(sign_inner(args))
}

fn sign_inner(args: SignArgs) -> Result<u8, Failed> {
    let family = FamilyId::from(args.family);
    let signature = match args.signature {
        Some(s) => s.into(),
        None => match family {
            FamilyId::TencentApi3 => SignatureMethod::Tc3HmacSha256,
            FamilyId::TencentV2 => SignatureMethod::V1HmacSha1,
            FamilyId::AliyunRpc => SignatureMethod::RpcHmacSha1,
        },
    };
    let method = match args.method {
        MethodArg::Get => Method::Get,
        MethodArg::Post => Method::Post,
    };
    let format = match args.format {
        None => ResponseFormat::Default,
        Some(FormatArg::Json) => ResponseFormat::Json,
        Some(FormatArg::Xml) => ResponseFormat::Xml,
    };
    let params: Params = args.params.into_iter().collect();
    let keys = args.creds.resolve();
    let creds = keys.for_family(family).clone();
    let call = Call {
        family,
        action: args.action,
        version: args.version,
        region: args.region,
        service: args.service,
        host: args.host,
        path: args.path.unwrap_or_else(|| {
            if family == FamilyId::TencentV2 {
                "/v2/index.php".into()
            } else {
                "/".into()
            }
        }),
        method,
        signature,
        params,
        format,
        index_base: args.index_base,
    };
    let clock = Clock {
        timestamp: args.timestamp.unwrap_or_else(emulator::server::now),
        nonce: args.nonce,
    };
    let e = protocol::explain(&call, &creds, &clock)
        .map_err(|e| Failed::usage(format!("error: {e}")))?;
    let mut out = format!("secret id: {}\n", creds.id);
    if !e.canonical_request.is_empty() {
        out.push_str(&format!("--- canonical request\n{}\n", e.canonical_request));
    }
    out.push_str(&format!("--- string to sign\n{}\n", e.string_to_sign));
    out.push_str(&format!("--- signature\n{}\n", e.signature));
    out.push_str(&format!(
        "--- request\n{} {}",
        e.request.method, e.request.target
    ));
    for (k, v) in &e.request.headers {
        out.push_str(&format!("\n{k}: {v}"));
    }
    if !e.request.body.is_empty() {
        out.push_str(&format!("\n\n{}", String::from_utf8_lossy(&e.request.body)));
    }
    say(out);
    Ok(exit::OK)
}
