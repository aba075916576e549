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

/// A target endpoint.
#[derive(Clone, Debug)]
pub struct Target {
    base: reqwest::Url,
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
            big_bodies: std::sync::Arc::new(tokio::sync::Semaphore::new(BIG_BODIES_AT_ONCE)),
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
        let url = self
            .base
            .join(&req.target)
            .map_err(|e| TransportError::BadUrl {
                // The path only: the query may carry a secret id and a signature.
                url: req.path().to_string(),
                reason: e.to_string(),
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
            url: self.base.to_string(),
            reason,
        }
    }
}
