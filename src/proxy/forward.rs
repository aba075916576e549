//! Forwarding: the client's request to the target unchanged (method, path and query, headers
//! but the hop-by-hop ones, body bytes; the `Host` the client signed included), the target's
//! answer back unchanged; and the proxy's own answers when it cannot forward (413, 502), in the
//! family's error envelope.

use std::time::Duration;

use crate::protocol::{self, FamilyId, HttpRequest, HttpResponse, RequestError, ResponseFormat};
use crate::run::TransportError;

/// The largest request body forwarded. Tencent documents 10 MB for API 3.0 POST bodies (the
/// emulator's limit cites the same page); no document of API 2.0 or Alibaba RPC states a size,
/// and none of these APIs' requests comes near it.
pub const MAX_BODY: usize = crate::emulator::server::MAX_BODY;

/// The largest answer passed back. The largest a target sends these APIs' clients (a
/// DescribeInstances page, the admin view of a large world) is well under it.
pub const MAX_RESPONSE: usize = 64 << 20;

/// Headers that belong to one connection, not to the exchange (RFC 9110 § 7.6.1), plus the
/// framing the HTTP stacks set themselves.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Whether a header travels on to the next hop: not hop-by-hop, not named by `Connection`, and
/// not `Content-Length` (set again from the body, which travels byte for byte).
pub fn end_to_end(name: &str, connection: Option<&str>) -> bool {
    let name = name.to_ascii_lowercase();
    !HOP_BY_HOP.contains(&name.as_str())
        && name != "content-length"
        && !connection.is_some_and(|c| {
            c.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case(name.as_str()))
        })
}

/// The client that forwards: one keep-alive pool to the target.
pub struct Forwarder {
    base: reqwest::Url,
    client: reqwest::Client,
}

impl Forwarder {
    /// A forwarder to `url`.
    pub fn new(url: &str, timeout: Duration) -> Result<Forwarder, TransportError> {
        let bad = |reason: String| TransportError::BadUrl {
            url: url.into(),
            reason,
        };
        let base = reqwest::Url::parse(url).map_err(|e| bad(e.to_string()))?;
        let client = reqwest::Client::builder()
            .timeout(timeout)
            // A 3xx is the target's answer, passed back as it came.
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(256)
            .no_proxy()
            .build()
            .map_err(|e| bad(e.to_string()))?;
        Ok(Forwarder { base, client })
    }

    /// The target's base URL.
    pub fn url(&self) -> &str {
        self.base.as_str()
    }

    /// Sends the client's request as it came; the answer as it came, or why there is none.
    pub async fn send(&self, req: &HttpRequest) -> Result<HttpResponse, String> {
        // The target's origin with the client's path and query: nothing the client sends can
        // name another host.
        let url = crate::run::target::on_origin(&self.base, &req.target)?;
        let method =
            reqwest::Method::from_bytes(req.method.as_bytes()).map_err(|e| e.to_string())?;
        let connection = req.header("connection");
        let mut builder = self.client.request(method, url);
        for (k, v) in &req.headers {
            // The Host the client signed goes on unchanged: TC3, ACS3 and v1 sign it.
            if end_to_end(k, connection) {
                builder = builder.header(k.as_str(), v.as_str());
            }
        }
        let reason = |e: reqwest::Error| {
            let e = e.without_url();
            let mut text = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                text.push_str(": ");
                text.push_str(&s.to_string());
                src = s.source();
            }
            text
        };
        let mut resp = builder
            .body(req.body.clone())
            .send()
            .await
            .map_err(reason)?;
        let status = resp.status().as_u16();
        let connection = resp
            .headers()
            .get("connection")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let headers: Vec<(String, String)> = resp
            .headers()
            .iter()
            .filter(|(k, _)| end_to_end(k.as_str(), connection.as_deref()))
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(reason)? {
            if body.len() + chunk.len() > MAX_RESPONSE {
                return Err(format!(
                    "its answer is longer than {MAX_RESPONSE} bytes (no answer of these APIs comes near)"
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }
}

/// Why a request-target is refused with 400 rather than forwarded, if it is: anything but
/// origin-form (absolute-form, authority-form, `CONNECT`, asterisk-form), and a path that
/// could be read as naming a host — one starting with `//`, or holding a backslash (which URL
/// parsers read as `/`), as sent or percent-decoded. The APIs' paths (`/`, `/v2/index.php`,
/// the emulator's admin view) are none of these.
pub fn refuse_target(method: &axum::http::Method, uri: &axum::http::Uri) -> Option<String> {
    let refuse = |what: &str| {
        Some(format!(
            "apiconform proxy: {what}; the proxy forwards only to its --target and takes origin-form request-targets (a path such as `/` or `/v2/index.php`); not forwarded"
        ))
    };
    if uri.scheme().is_some() || uri.authority().is_some() {
        return refuse("the request-target names a host (absolute-form or authority-form)");
    }
    if method == axum::http::Method::CONNECT {
        return refuse("CONNECT asks for a tunnel");
    }
    let path = uri.path();
    if !path.starts_with('/') {
        return refuse("the request-target is not a path");
    }
    let decoded = percent_encoding::percent_decode_str(path).collect::<Vec<u8>>();
    for p in [path.as_bytes(), decoded.as_slice()] {
        if p.starts_with(b"//") || p.contains(&b'\\') {
            return refuse(
                "the path starts with `//` or holds a backslash, which could read as another host",
            );
        }
    }
    None
}

/// 400: a request the proxy refuses to forward; the body says why.
pub fn bad_request(req: &HttpRequest, why: &str) -> HttpResponse {
    let mut resp = own_answer(
        req,
        400,
        ("InvalidParameter", "4000", "InvalidParameter"),
        why.to_string(),
    );
    resp.headers.push(("Connection".into(), "close".into()));
    resp
}

/// The family a request that could not be decoded most likely belongs to, told apart as the
/// protocol module routes requests.
pub fn guess_family(req: &HttpRequest) -> FamilyId {
    match protocol::parse_request(req) {
        Ok(p) => p.family,
        Err(e) => e.family,
    }
}

/// The proxy's own answer, in the family's error envelope, with `status` and a header saying
/// the proxy (not the target) answered.
pub fn own_answer(
    req: &HttpRequest,
    status: u16,
    (tencent, v2, alibaba): (&str, &str, &str),
    message: String,
) -> HttpResponse {
    let family = guess_family(req);
    let code = match family {
        FamilyId::TencentApi3 => tencent,
        FamilyId::TencentV2 => v2,
        FamilyId::AliyunRpc => alibaba,
    };
    let err = RequestError {
        family,
        code: code.into(),
        message,
        status,
        action: None,
        format: ResponseFormat::Json,
    };
    let rid = uuid::Uuid::new_v4().to_string();
    let mut resp = protocol::request_error_response(&err, &rid);
    resp.status = status;
    resp.headers
        .push(("X-Apiconform-Proxy".into(), "answered by the proxy".into()));
    resp
}

/// 502: the target could not be reached; the body names it and says why.
pub fn bad_gateway(req: &HttpRequest, target: &str, why: &str) -> HttpResponse {
    own_answer(
        req,
        502,
        ("ServiceUnavailable", "6200", "ServiceUnavailable"),
        format!("apiconform proxy: the target {target} could not be reached: {why}"),
    )
}

/// 413: a body over [`MAX_BODY`], refused before it is read.
pub fn too_large(req: &HttpRequest, declared: Option<u64>) -> HttpResponse {
    let size = declared.map_or_else(|| "more than that".to_string(), |n| format!("{n} bytes"));
    own_answer(
        req,
        413,
        ("RequestSizeLimitExceeded", "4000", "InvalidParameter"),
        format!(
            "apiconform proxy: the request body ({size}) exceeds {MAX_BODY} bytes, the largest these APIs document (Tencent API 3.0: 10 MB); not forwarded"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hop-by-hop headers, those `Connection` names, and the length stay behind; the rest
    /// (Host and Authorization among them) travel.
    #[test]
    fn only_end_to_end_headers_travel() {
        for h in [
            "Connection",
            "keep-alive",
            "Transfer-Encoding",
            "Content-Length",
            "TE",
        ] {
            assert!(!end_to_end(h, None), "{h}");
        }
        assert!(!end_to_end("X-Trace", Some("close, x-trace")));
        for h in ["Host", "Authorization", "X-TC-Action", "Content-Type"] {
            assert!(end_to_end(h, Some("keep-alive")), "{h}");
        }
    }

    /// A 502 is in the family's envelope and names the target and the reason.
    #[test]
    fn a_gateway_error_names_the_target_and_why() {
        let req = HttpRequest {
            method: "GET".into(),
            target: "/v2/index.php?Action=UnBindInstanceKey".into(),
            headers: vec![],
            body: vec![],
        };
        let resp = bad_gateway(&req, "http://127.0.0.1:9", "connection refused");
        assert_eq!(resp.status, 502);
        let body: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
        assert_eq!(body["code"], 6200);
        let message = body["message"].as_str().unwrap();
        assert!(message.contains("http://127.0.0.1:9") && message.contains("connection refused"));
    }

    /// What request-targets are made of when they try to name another host: slashes,
    /// backslashes and their percent-encodings, schemes, userinfo, ports, dot segments.
    fn hostile_target() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let part = prop::sample::select(vec![
            "/",
            "//",
            "\\",
            "%5C",
            "%5c",
            "%2F",
            "%2f",
            "%252F",
            "@",
            ":",
            "?",
            "#",
            ".",
            "..",
            "http:",
            "https:",
            "http://",
            "127.0.0.3",
            "127.0.0.3:9",
            "evil.example",
            ":80",
            "[::1]",
            "%00",
            "%40",
            "x",
            "Action=Describe",
            "&",
        ]);
        prop_oneof![
            prop::collection::vec(part, 0..10).prop_map(|v| v.concat()),
            "[ -~]{0,40}",
            any::<String>(),
        ]
    }

    proptest::proptest! {
        /// Whatever the request-target, the URL a request is forwarded to has the target's
        /// scheme, host and port, or there is none; and telling a target apart never panics.
        #[test]
        fn any_request_target_stays_on_the_target_origin(
            target in hostile_target(),
            method in proptest::sample::select(vec!["GET", "POST", "CONNECT", "OPTIONS", "HEAD"]),
        ) {
            let base = reqwest::Url::parse("http://127.0.0.1:9000").unwrap();
            if let Ok(url) = crate::run::target::on_origin(&base, &target) {
                proptest::prop_assert_eq!(url.scheme(), "http");
                proptest::prop_assert_eq!(url.host_str(), Some("127.0.0.1"));
                proptest::prop_assert_eq!(url.port(), Some(9000));
                // As reqwest hands it to hyper: the same authority.
                let uri: axum::http::Uri = url.as_str().parse().unwrap();
                proptest::prop_assert_eq!(uri.authority().map(|a| a.as_str()), Some("127.0.0.1:9000"));
            }
            if let Ok(uri) = target.parse::<axum::http::Uri>() {
                let method = axum::http::Method::from_bytes(method.as_bytes()).unwrap();
                if refuse_target(&method, &uri).is_none() {
                    let path = uri.path_and_query().map_or("/", |p| p.as_str());
                    proptest::prop_assert!(crate::run::target::on_origin(&base, path).is_ok());
                    proptest::prop_assert!(!path.starts_with("//"));
                }
            }
        }
    }

    /// The forms that named another host are refused; the APIs' paths are not.
    #[test]
    fn only_origin_form_paths_are_forwarded() {
        let get = axum::http::Method::GET;
        for refused in [
            "//127.0.0.3:9/x",
            "/\\127.0.0.3:9/x",
            "/%5C%5C127.0.0.3:9/x",
            "/%2f%2f127.0.0.3/x",
            "http://127.0.0.3:9/x",
            "*",
        ] {
            let uri: axum::http::Uri = refused.parse().unwrap();
            assert!(refuse_target(&get, &uri).is_some(), "{refused}");
        }
        let connect: axum::http::Uri = "127.0.0.3:9".parse().unwrap();
        assert!(refuse_target(&axum::http::Method::CONNECT, &connect).is_some());
        for fine in [
            "/",
            "/?Action=X&Signature=a%2Fb%3D",
            "/v2/index.php?a=b",
            "/__apiconform/world",
        ] {
            let uri: axum::http::Uri = fine.parse().unwrap();
            assert!(refuse_target(&get, &uri).is_none(), "{fine}");
        }
    }
}
