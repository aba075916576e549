//! The target: where requests go. One reqwest client with keep-alive; rustls for HTTPS.

use std::time::Duration;

use crate::protocol::{HttpRequest, HttpResponse};

/// Errors reaching a target.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The URL is not usable.
    #[error("invalid target URL `{url}`: {reason}\n  = help: give a base URL such as http://127.0.0.1:9000 or https://cvm.tencentcloudapi.com")]
    BadUrl {
        /// The URL given.
        url: String,
        /// Why.
        reason: String,
    },
    /// The request could not be sent or the response not read.
    #[error("cannot reach {url}: {reason}")]
    Unreachable {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
}

/// The URL of `target` (a request-target: path and query) on `base`'s scheme, host and port.
///
/// Built by setting the path and the query on `base`, never by resolving `target` against it:
/// resolution reads `//host/x` (or `/\\host/x`, which URL parsers take for `//host/x`) as another
/// host, so a request-target could send a signed request elsewhere. Whatever `target` holds, the
/// URL's scheme, host and port are `base`'s; a target that is not a path is refused.
pub fn on_origin(base: &reqwest::Url, target: &str) -> Result<reqwest::Url, String> {
    if !target.starts_with('/') {
        return Err("the request-target is not a path (origin-form, starting with `/`)".into());
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let mut url = base.clone();
    url.set_fragment(None);
    url.set_path(path);
    url.set_query(query);
    if url.scheme() != base.scheme()
        || url.host_str() != base.host_str()
        || url.port_or_known_default() != base.port_or_known_default()
    {
        return Err("the request-target would change the target's origin".into());
    }
    Ok(url)
}

/// A target endpoint.
#[derive(Clone, Debug)]
pub struct Target {
    base: reqwest::Url,
    client: reqwest::Client,
    /// Requests sent through this target and its clones (what `--max-requests` counts).
    sent: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// The most response bytes read. The largest answer the harness asks for (a DescribeInstances
/// of 100 instances, the admin view of a world of thousands) is well under a megabyte.
pub const MAX_RESPONSE_BYTES: usize = 8 << 20;

impl Target {
    /// A target at `url` (scheme, host, port; the path comes from each request).
    pub fn new(url: &str, timeout: Duration) -> Result<Target, TransportError> {
        let base = reqwest::Url::parse(url).map_err(|e| TransportError::BadUrl {
            url: url.into(),
            reason: e.to_string(),
        })?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            return Err(TransportError::BadUrl {
                url: url.into(),
                reason: "expected http:// or https:// with a host".into(),
            });
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            // A 3xx is the target's answer, to judge: following it would re-send a signed
            // request (secret id and signature included) to another host, past the --world
            // guard and the pacing.
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| TransportError::BadUrl {
                url: url.into(),
                reason: e.to_string(),
            })?;
        Ok(Target {
            base,
            client,
            sent: Default::default(),
        })
    }

    /// The `Host` header value requests to this target carry (and sign).
    pub fn authority(&self) -> String {
        let host = self.base.host_str().unwrap_or("");
        match self.base.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        }
    }

    /// Requests sent so far through this target (and its clones), every kind counted.
    pub fn requests_sent(&self) -> usize {
        self.sent.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The base URL.
    pub fn url(&self) -> &str {
        self.base.as_str()
    }

    /// Whether the target is on this machine (loopback), where the harness may touch anything.
    pub fn is_loopback(&self) -> bool {
        match self.base.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d == "localhost",
            None => false,
        }
    }

    /// The world the target holds now, as the emulator's admin view reports it; `None` when it
    /// serves no such view.
    pub async fn admin_world(&self) -> Option<crate::world::World> {
        let req = crate::protocol::describe::admin_world_request(&self.authority(), None);
        match self.send(&req).await {
            Ok(resp) if resp.status == 200 => serde_json::from_slice(&resp.body).ok(),
            _ => None,
        }
    }

    /// Sends exact request bytes and returns the response bytes (at most
    /// [`MAX_RESPONSE_BYTES`]; a longer body is cut there and marked
    /// [`crate::protocol::TRUNCATED`]).
    pub async fn send(&self, req: &HttpRequest) -> Result<HttpResponse, TransportError> {
        let url = on_origin(&self.base, &req.target).map_err(|reason| TransportError::BadUrl {
            // The path only: the query may carry a secret id and a signature.
            url: req.path().to_string(),
            reason,
        })?;
        let method = reqwest::Method::from_bytes(req.method.as_bytes()).map_err(|e| {
            TransportError::BadUrl {
                url: req.method.clone(),
                reason: e.to_string(),
            }
        })?;
        self.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut builder = self.client.request(method, url);
        for (k, v) in &req.headers {
            // reqwest sets Host and Content-Length from the URL and body.
            if k.eq_ignore_ascii_case("host") || k.eq_ignore_ascii_case("content-length") {
                continue;
            }
            builder = builder.header(k.as_str(), v.as_str());
        }
        let resp = builder
            .body(req.body.clone())
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        let status = resp.status().as_u16();
        let mut headers: Vec<(String, String)> = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        // Read up to the limit and no further: a huge or endless body is the target's fault, to
        // be judged, not a reason to run out of memory.
        let mut resp = resp;
        let mut body: Vec<u8> = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.unreachable(e))? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                body.extend_from_slice(&chunk[..MAX_RESPONSE_BYTES - body.len()]);
                headers.push((
                    crate::protocol::TRUNCATED.to_string(),
                    MAX_RESPONSE_BYTES.to_string(),
                ));
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }

    fn unreachable(&self, e: reqwest::Error) -> TransportError {
        // The request URL carries the signed query (AccessKeyId, Signature): never print it.
        let e = e.without_url();
        let mut reason = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            reason.push_str(": ");
            reason.push_str(&s.to_string());
            src = s.source();
        }
        TransportError::Unreachable {
            url: self.base.to_string(),
            reason,
        }
    }
}
