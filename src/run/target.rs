//! The target: where requests go. One reqwest client with keep-alive; rustls for HTTPS.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::protocol::{FamilyId, HttpRequest, HttpResponse};
use crate::spec::{Endpoint, LoadedApi, SpecSet};

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
    /// `--cloud` has no host for a product's family: no spec documents one.
    #[error("no spec file documents a {family} endpoint for {product}\n  = help: add it to the spec's `api.endpoints`, or give --endpoint {product}=URL")]
    NoEndpoint {
        /// The spec folder.
        product: String,
        /// The family.
        family: &'static str,
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

/// Where requests go: one server for everything, or each product to its vendor's host.
///
/// Written as text in journals and reports (`http://127.0.0.1:9000`, or `cloud` followed by the
/// `--endpoint` overrides, `cloud tencent-cvm=https://...`) and read back by `restore`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// `--target URL`: every request to that server, whatever the API.
    One(String),
    /// `--cloud`: each API to the host its spec file documents for the request's region;
    /// `--endpoint PRODUCT=URL` sends one product (a spec folder: `tencent-cvm`) elsewhere.
    Cloud(BTreeMap<String, String>),
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Destination::One(url) => f.write_str(url),
            Destination::Cloud(overrides) => {
                f.write_str("cloud")?;
                for (product, url) in overrides {
                    write!(f, " {product}={url}")?;
                }
                Ok(())
            }
        }
    }
}

impl Destination {
    /// Reads [`Destination`]'s text form back (a journal's or a report's `target`).
    pub fn parse(text: &str) -> Result<Destination, TransportError> {
        let mut words = text.split_whitespace();
        if words.next() != Some("cloud") {
            return Ok(Destination::One(text.trim().to_string()));
        }
        let mut overrides = BTreeMap::new();
        for w in words {
            let (product, url) = parse_endpoint(w).map_err(|reason| TransportError::BadUrl {
                url: w.to_string(),
                reason,
            })?;
            overrides.insert(product, url);
        }
        Ok(Destination::Cloud(overrides))
    }
}

/// `PRODUCT=URL`, as `--endpoint` takes it.
pub fn parse_endpoint(s: &str) -> Result<(String, String), String> {
    let (product, url) = s.split_once('=').ok_or_else(|| {
        format!(
            "expected PRODUCT=URL (e.g. tencent-cvm=https://cvm.tencentcloudapi.com), not `{s}`"
        )
    })?;
    if product.is_empty()
        || !product
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(format!(
            "`{product}` is not a product: name a spec folder such as tencent-cvm, tencent-ecm or alibaba-ecs"
        ));
    }
    Ok((product.to_string(), url.to_string()))
}

/// `HOST:PORT:ADDR`, as `--resolve` takes it (curl's meaning: connect to ADDR for HOST:PORT).
pub fn parse_resolve(s: &str) -> Result<(String, std::net::SocketAddr), String> {
    let bad = || {
        format!("--resolve takes HOST:PORT:ADDR (e.g. cvm.tencentcloudapi.com:443:127.0.0.2), not `{s}`")
    };
    let mut parts = s.splitn(3, ':');
    let (Some(host), Some(port), Some(addr)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    let port: u16 = port.parse().map_err(|_| bad())?;
    let addr: std::net::IpAddr = addr
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| bad())?;
    if host.is_empty() {
        return Err(bad());
    }
    Ok((
        host.to_ascii_lowercase(),
        std::net::SocketAddr::new(addr, port),
    ))
}

/// How to reach the servers besides their URLs: extra trust roots, fixed addresses.
#[derive(Debug, Clone, Default)]
pub struct Reach {
    /// PEM certificates trusted besides the system's roots (`--ca-cert`).
    pub ca_certs: Vec<Vec<u8>>,
    /// Host names connected to at a fixed address (`--resolve`).
    pub resolve: Vec<(String, std::net::SocketAddr)>,
}

/// One documented host of a product for one family (the spec files' `api.endpoints`).
#[derive(Debug, Clone)]
struct Route {
    product: String,
    family: FamilyId,
    endpoint: Endpoint,
}

/// How requests find their server.
#[derive(Debug)]
enum Routes {
    One(reqwest::Url),
    Cloud {
        documented: Vec<Route>,
        overrides: BTreeMap<String, reqwest::Url>,
    },
}

/// A target: one server, or a product's hosts.
#[derive(Clone, Debug)]
pub struct Target {
    routes: Arc<Routes>,
    /// The text form of where requests go (what reports and journals record).
    shown: Arc<str>,
    client: reqwest::Client,
    /// Requests sent through this target and its clones (what `--max-requests` counts).
    sent: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// Bodies past [`SMALL_BODY`] being read through this target and its clones, at most
    /// [`BIG_BODIES_AT_ONCE`]: with 16 or 64 cases in flight, a target answering every one
    /// with megabytes is read a few answers at a time, not all of them at once.
    big_bodies: std::sync::Arc<tokio::sync::Semaphore>,
}

/// The most response bytes read. The largest answer the harness asks for (a DescribeInstances
/// of 100 instances, the admin view of a world of thousands) is well under a megabyte.
pub const MAX_RESPONSE_BYTES: usize = 8 << 20;

fn parse_base(url: &str) -> Result<reqwest::Url, TransportError> {
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
    Ok(base)
}

fn authority_of(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    }
}

fn url_is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

/// What is kept of a body cut at [`MAX_RESPONSE_BYTES`]: enough to show what it was. The rest
/// is dropped as soon as the cut is known, so that cases in flight and the failures kept for
/// shrinking do not each hold 8 MiB of a target's padding.
pub const KEPT_OF_A_CUT_BODY: usize = 64 << 10;

/// A body kept past its judging (a failing case kept for shrinking, a failure's record) keeps
/// its first [`KEPT_OF_A_CUT_BODY`] bytes and says how many more there were: the verdict is
/// made, and a report needs no more to show what the target answered.
pub(super) fn keep_little(body: &mut Vec<u8>) {
    if let Some(note) = not_kept(body) {
        body.truncate(KEPT_OF_A_CUT_BODY);
        body.extend_from_slice(note.as_bytes());
        body.shrink_to_fit();
    }
}

/// A body as a failure's record shows it: at most [`KEPT_OF_A_CUT_BODY`] bytes of it, as text.
pub(super) fn kept_text(body: &[u8]) -> String {
    match not_kept(body) {
        Some(note) => String::from_utf8_lossy(&body[..KEPT_OF_A_CUT_BODY]).into_owned() + &note,
        None => String::from_utf8_lossy(body).into_owned(),
    }
}

/// What [`keep_little`] appends to a body it shortens; `None` when the body is kept whole (a
/// body already shortened is: the note's length is allowed for).
fn not_kept(body: &[u8]) -> Option<String> {
    (body.len() > KEPT_OF_A_CUT_BODY + 64).then(|| {
        format!(
            "\n… {} more bytes not kept",
            body.len() - KEPT_OF_A_CUT_BODY
        )
    })
}

/// A body up to this size is read alongside any others; a larger one waits for one of
/// [`BIG_BODIES_AT_ONCE`] turns (every answer these APIs give is far smaller).
const SMALL_BODY: usize = 256 << 10;

/// Bodies larger than [`SMALL_BODY`] read at once: at most 4 × 8 MiB buffered, whatever
/// `--jobs`, so the harness stays far under 200 MB whatever a target sends.
const BIG_BODIES_AT_ONCE: usize = 4;

impl Target {
    /// A target at `url` (scheme, host, port; the path comes from each request).
    pub fn new(url: &str, timeout: Duration) -> Result<Target, TransportError> {
        Target::connect(
            &Destination::One(url.to_string()),
            None,
            timeout,
            &Reach::default(),
        )
    }

    /// A target for `dest`; `--cloud` needs the specs, whose `api.endpoints` say each product's
    /// hosts.
    pub fn connect(
        dest: &Destination,
        specs: Option<&SpecSet>,
        timeout: Duration,
        net: &Reach,
    ) -> Result<Target, TransportError> {
        let shown = dest.to_string();
        let routes = match dest {
            Destination::One(url) => Routes::One(parse_base(url)?),
            Destination::Cloud(overrides) => {
                let documented: Vec<Route> = specs
                    .map(|s| s.apis.as_slice())
                    .unwrap_or_default()
                    .iter()
                    .flat_map(|api| {
                        let product = api.product_dir().to_string();
                        let family = api.spec.api.family;
                        api.spec.api.endpoints.iter().map(move |e| Route {
                            product: product.clone(),
                            family,
                            endpoint: e.clone(),
                        })
                    })
                    .collect();
                let mut parsed = BTreeMap::new();
                for (product, url) in overrides {
                    if !documented.iter().any(|r| &r.product == product) {
                        let mut known: Vec<&str> =
                            documented.iter().map(|r| r.product.as_str()).collect();
                        known.dedup();
                        return Err(TransportError::BadUrl {
                            url: format!("{product}={url}"),
                            reason: format!(
                                "no spec folder is named `{product}`; products: {}",
                                known.join(", ")
                            ),
                        });
                    }
                    parsed.insert(product.clone(), parse_base(url)?);
                }
                Routes::Cloud {
                    documented,
                    overrides: parsed,
                }
            }
        };
        let bad = |reason: String| TransportError::BadUrl {
            url: shown.clone(),
            reason,
        };
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            // A 3xx is the target's answer, to judge: following it would re-send a signed
            // request (secret id and signature included) to another host, past the --world
            // guard and the pacing.
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(64);
        for pem in &net.ca_certs {
            let cert = reqwest::Certificate::from_pem(pem)
                .map_err(|e| bad(format!("--ca-cert is not a PEM certificate: {e}")))?;
            builder = builder.add_root_certificate(cert);
        }
        for (host, addr) in &net.resolve {
            builder = builder.resolve(host, *addr);
        }
        let client = builder.build().map_err(|e| bad(e.to_string()))?;
        Ok(Target {
            routes: Arc::new(routes),
            shown: shown.into(),
            client,
            sent: Default::default(),
            big_bodies: std::sync::Arc::new(tokio::sync::Semaphore::new(BIG_BODIES_AT_ONCE)),
        })
    }

    /// The `Host` header value requests to this target carry (and sign): the one server's, or
    /// for `--cloud` the first documented host (use [`Target::host_for`] there).
    pub fn authority(&self) -> String {
        match &*self.routes {
            Routes::One(base) => authority_of(base),
            Routes::Cloud { .. } => String::new(),
        }
    }

    /// The `Host` a request of `product` (a spec folder) in `family` for `region` carries and
    /// signs: the one server's, an `--endpoint` override's, or the host the spec files document
    /// (its regional form where one is documented and the request names a region).
    pub fn host_for(
        &self,
        product: &str,
        family: FamilyId,
        region: Option<&str>,
    ) -> Result<String, TransportError> {
        match &*self.routes {
            Routes::One(base) => Ok(authority_of(base)),
            Routes::Cloud {
                documented,
                overrides,
            } => {
                if let Some(url) = overrides.get(product) {
                    return Ok(authority_of(url));
                }
                documented
                    .iter()
                    .find(|r| r.product == product && r.family == family)
                    .map(|r| r.endpoint.host_for(region))
                    .ok_or_else(|| TransportError::NoEndpoint {
                        product: product.to_string(),
                        family: family.as_str(),
                    })
            }
        }
    }

    /// The `Host` an API's request for `region` carries (see [`Target::host_for`]).
    pub fn host_for_api(&self, api: &LoadedApi, region: &str) -> Result<String, TransportError> {
        let region = (!region.is_empty()).then_some(region);
        self.host_for(api.product_dir(), api.spec.api.family, region)
    }

    /// Requests sent so far through this target (and its clones), every kind counted.
    pub fn requests_sent(&self) -> usize {
        self.sent.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Where requests go, as text: the base URL, or `cloud` and the overrides.
    pub fn url(&self) -> &str {
        &self.shown
    }

    /// The base URL a request goes to (what a curl line for it names).
    pub fn base_for(&self, req: &HttpRequest) -> String {
        match self.resolve(req) {
            Ok(url) => url.as_str().trim_end_matches('/').to_string(),
            Err(_) => self.shown.to_string(),
        }
    }

    /// Whether every request goes to this machine (loopback), where the harness may touch
    /// anything. A `--cloud` target is on loopback only when every documented product is
    /// overridden with a loopback URL; a vendor's host name (even one `--resolve` points at
    /// 127.0.0.x) is not.
    pub fn is_loopback(&self) -> bool {
        match &*self.routes {
            Routes::One(base) => url_is_loopback(base),
            Routes::Cloud {
                documented,
                overrides,
            } => {
                overrides.values().all(url_is_loopback)
                    && documented
                        .iter()
                        .all(|r| overrides.contains_key(&r.product))
            }
        }
    }

    /// Whether requests go to a vendor's hosts by product (`--cloud`).
    pub fn is_cloud(&self) -> bool {
        matches!(&*self.routes, Routes::Cloud { .. })
    }

    /// The server a request goes to: the one server, or by its `Host` header the override or
    /// documented host that header names. A `Host` no spec documents is refused, so nothing a
    /// request carries can send it elsewhere.
    fn resolve(&self, req: &HttpRequest) -> Result<reqwest::Url, TransportError> {
        match &*self.routes {
            Routes::One(base) => Ok(base.clone()),
            Routes::Cloud {
                documented,
                overrides,
            } => {
                let host = req
                    .headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("host"))
                    .map(|(_, v)| v.to_ascii_lowercase())
                    .unwrap_or_default();
                if let Some(url) = overrides.values().find(|u| authority_of(u) == host) {
                    return Ok(url.clone());
                }
                let documented_host = documented.iter().any(|r| {
                    r.endpoint.host == host
                        || r.endpoint.regional.as_ref().is_some_and(|g| {
                            g.host.split_once("{region}").is_some_and(|(pre, post)| {
                                host.len() > pre.len() + post.len()
                                    && host.starts_with(pre)
                                    && host.ends_with(post)
                                    && r.endpoint
                                        .host_for(Some(&host[pre.len()..host.len() - post.len()]))
                                        == host
                            })
                        })
                });
                if !documented_host {
                    return Err(TransportError::BadUrl {
                        url: host,
                        reason: "no spec documents this host and no --endpoint names it".into(),
                    });
                }
                parse_base(&format!("https://{host}"))
            }
        }
    }

    /// The world the target holds now, as the emulator's admin view reports it; `None` when it
    /// serves no such view.
    pub async fn admin_world(&self) -> Option<crate::world::World> {
        if self.is_cloud() {
            return None;
        }
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
        let base = self.resolve(req)?;
        let url = on_origin(&base, &req.target).map_err(|reason| TransportError::BadUrl {
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
        // be judged, not a reason to run out of memory. Chunk by chunk (reqwest buffers
        // nothing: no decompression is enabled); the buffer grows with what arrived, not with
        // what Content-Length claims.
        let mut resp = resp;
        // The chunks as they came (no buffer that doubles on the way to the limit): joined
        // once the body is whole, dropped when it is cut.
        let mut chunks: Vec<bytes::Bytes> = Vec::new();
        let mut read = 0;
        // A body that says it is longer than the limit is judged by that: only what is kept of
        // a cut body is read.
        let declared = resp.content_length().unwrap_or(0);
        let limit = match declared > MAX_RESPONSE_BYTES as u64 {
            true => KEPT_OF_A_CUT_BODY,
            false => MAX_RESPONSE_BYTES,
        };
        let mut big_turn = None;
        let mut cut = false;
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.unreachable(e))? {
            if read + chunk.len() > SMALL_BODY && big_turn.is_none() && limit > SMALL_BODY {
                // Never closed: the semaphore lives as long as the target.
                big_turn = self.big_bodies.acquire().await.ok();
            }
            read += chunk.len();
            chunks.push(chunk);
            if read > limit {
                cut = true;
                break;
            }
        }
        drop(resp);
        // Judged by the cut alone: keep what shows what it was, drop the rest now.
        let keep = match cut {
            true => KEPT_OF_A_CUT_BODY,
            false => read,
        };
        let mut body = Vec::with_capacity(keep);
        for c in &chunks {
            let room = keep - body.len();
            body.extend_from_slice(&c[..c.len().min(room)]);
            if body.len() == keep {
                break;
            }
        }
        drop(chunks);
        drop(big_turn);
        if cut {
            headers.push((
                crate::protocol::TRUNCATED.to_string(),
                MAX_RESPONSE_BYTES.to_string(),
            ));
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
            url: self.shown.to_string(),
            reason,
        }
    }
}
