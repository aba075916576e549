//! The emulator's HTTP listener: a real server (axum on tokio) that vendors' SDKs can call.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;

pub use super::gate::Limits;
use super::gate::{self, Conn, Gate, Held, Phase, Refused};
use super::Emulator;
use crate::protocol::{self, FamilyId, HttpRequest, RequestError, ResponseFormat};

/// Largest request body accepted. Tencent documents 10 MB for API 3.0 POST bodies; anything
/// larger is answered with the family's parameter error rather than read.
pub const MAX_BODY: usize = 10 * 1024 * 1024;

/// Longest wait for a request's headers (on a new connection, or the next request on a kept-alive
/// one): a client that sends half a request, or nothing, is cut off after this.
pub const HEADER_TIMEOUT: Duration = Limits::EMULATOR.header_timeout;

/// Longest wait for a request's body once its headers arrived (a `Content-Length` that lies is
/// not waited out).
pub const BODY_TIMEOUT: Duration = Limits::EMULATOR.body_timeout;

/// Connections one peer (one IP address) may hold at once; one more is answered `503` and
/// closed, so that one peer's flood of idle or slow connections cannot starve the others.
pub const PER_PEER: usize = gate::PER_PEER;

/// Serves `emu` on `listener` until `shutdown` completes, with the emulator's [`Limits`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    emu: Arc<Emulator>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, emu, Limits::EMULATOR, shutdown).await
}

/// Serves `emu` on `listener` with `limits` until `shutdown` completes; requests in flight then
/// get up to the header timeout to finish.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    emu: Arc<Emulator>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_on(listener, emu, limits, None, shutdown).await
}

/// [`serve_with`], over TLS when `tls` is given (`serve --tls`): each admitted connection
/// completes its handshake within the header timeout or is dropped, then is served as a plain
/// one is.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    emu: Arc<Emulator>,
    limits: Limits,
    tls: Option<super::tls::Tls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = axum::Router::new()
        .fallback(handle)
        .with_state((emu, limits));
    accept_loop(listener, app, limits, "emulator", tls, shutdown).await;
    Ok(())
}

/// Accepts connections on `listener` and serves each with `app` (HTTP/1.1, keep-alive) until
/// `shutdown` completes; then every connection finishes the request in flight and closes, for
/// up to the header timeout. Who is let in is the [`Gate`]'s call: a connection it refuses is
/// answered 503 naming `who` (the emulator, the proxy) and closed; one it sheds is closed. The
/// emulator's and the proxy's listeners both run this loop.
pub async fn accept_loop(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    limits: Limits,
    who: &'static str,
    tls: Option<super::tls::Tls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let gate = Gate::new(limits);
    // Told to every connection on shutdown: finish the request in flight, then close.
    let (closing, closed) = tokio::sync::watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut sweep =
        tokio::time::interval((limits.pressed_timeout / 4).max(Duration::from_millis(50)));
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            _ = sweep.tick() => {
                gate.sweep();
                continue;
            }
            accepted = listener.accept() => match accepted {
                Ok(s) => s,
                // Out of descriptors, say: wait a moment rather than spin (the sweep frees
                // some under pressure).
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        match (gate.admit(peer.ip()), &tls) {
            (Ok(held), None) => {
                spawn_connection(stream, app.clone(), &limits, closed.clone(), held)
            }
            (Ok(held), Some(tls)) => {
                let (acceptor, app, closed) = (tls.acceptor.clone(), app.clone(), closed.clone());
                tokio::spawn(async move {
                    let handshake = acceptor.accept(stream);
                    if let Ok(Ok(stream)) =
                        tokio::time::timeout(limits.header_timeout, handshake).await
                    {
                        spawn_connection(stream, app, &limits, closed, held);
                    }
                });
            }
            (Err(why), _) => {
                tokio::spawn(busy(stream, who, why, limits.per_peer));
            }
        }
    }
    let _ = closing.send(true);
    // Let what is in flight finish, for a bounded time.
    let _ = tokio::time::timeout(limits.header_timeout, gate.drained()).await;
}

/// Serves one admitted connection — HTTP/1.1 with keep-alive, headers read within the header
/// timeout — until the peer closes it, the gate sheds it (closed at once), or `closed` turns
/// true (the request in flight then finishes). Each request carries the connection's [`Conn`]
/// in its extensions, so the handler can say when its body arrived ([`body_received`]).
fn spawn_connection<S>(
    stream: S,
    app: axum::Router,
    limits: &Limits,
    mut closed: tokio::sync::watch::Receiver<bool>,
    held: Held,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let conn = held.conn().clone();
    let inner = hyper_util::service::TowerToHyperService::new(app);
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            conn.enter(Phase::Body);
            req.extensions_mut().insert(conn.clone());
            let answer = hyper::service::Service::call(&inner, req);
            let conn = conn.clone();
            async move {
                let answered = answer.await;
                conn.enter(Phase::Waiting);
                answered
            }
        });
    let header_timeout = limits.header_timeout;
    tokio::spawn(async move {
        let io = hyper_util::rt::TokioIo::new(stream);
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(header_timeout)
            .keep_alive(true);
        let conn = builder.serve_connection(io, service);
        let mut conn = std::pin::pin!(conn);
        let shed = held.conn().clone();
        tokio::select! {
            _ = conn.as_mut() => {}
            // Dropped: the socket closes.
            _ = shed.shed() => {}
            _ = async { closed.wait_for(|c| *c).await.map(|_| ()) } => {
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
            }
        }
        drop(held);
    });
}

/// Marks the request's connection as working: its body arrived, so pressure no longer sheds it
/// for waiting. Handlers call it once they hold the body.
pub fn body_received(parts: &axum::http::request::Parts) {
    if let Some(conn) = parts.extensions.get::<Arc<Conn>>() {
        conn.enter(Phase::Work);
    }
}

/// The answer to a connection the gate refused: 503, said plainly, then closed.
async fn busy(mut stream: tokio::net::TcpStream, who: &str, why: Refused, per_peer: usize) {
    use tokio::io::AsyncWriteExt;
    let body = match why {
        Refused::PeerFull => format!(
            "this address holds the maximum of connections the {who} serves one peer ({per_peer}); close some or retry shortly"
        ),
        Refused::Full => format!(
            "the {who} is serving its maximum of connections; retry shortly"
        ),
    };
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(answer.as_bytes())).await;
}

/// Why a request's framing is refused with 400 before anything else is read: RFC 9112 § 3.2
/// ("a server MUST respond with a 400 ... to any request message that contains more than one
/// Host header field line").
pub fn framing_error(parts: &axum::http::request::Parts) -> Option<String> {
    let hosts = parts
        .headers
        .get_all(axum::http::header::HOST)
        .iter()
        .count();
    (hosts > 1)
        .then(|| format!("the request has {hosts} Host header fields; RFC 9112 § 3.2 allows one"))
}

async fn handle(State((emu, limits)): State<(Arc<Emulator>, Limits)>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let target = parts.uri.path_and_query().map_or_else(
        || parts.uri.path().to_string(),
        |pq| pq.as_str().to_string(),
    );
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut http = HttpRequest {
        method: parts.method.as_str().to_string(),
        target,
        headers,
        body: Vec::new(),
    };
    if let Some(why) = framing_error(&parts) {
        let mut err = parameter_error(&http, why);
        err.status = 400;
        let mut resp = protocol::request_error_response(&err, &emu.request_id(err.family));
        resp.status = 400;
        resp.headers.push(("Connection".into(), "close".into()));
        return reply(resp);
    }
    // A declared length over the limit is refused before a byte of the body is awaited.
    let declared = http
        .header("content-length")
        .and_then(|n| n.trim().parse::<u64>().ok());
    let read = match declared {
        Some(n) if n > MAX_BODY as u64 => Ok(Err(())),
        _ => tokio::time::timeout(limits.body_timeout, axum::body::to_bytes(body, MAX_BODY))
            .await
            .map(|r| r.map_err(|_| ())),
    };
    body_received(&parts);
    let resp = match read {
        Err(_) => {
            let err = parameter_error(
                &http,
                format!(
                    "the request body did not arrive within {} s of its headers",
                    limits.body_timeout.as_secs()
                ),
            );
            protocol::request_error_response(&err, &emu.request_id(err.family))
        }
        Ok(Ok(bytes)) => {
            http.body = bytes.to_vec();
            let now = now();
            // Business logic takes one short lock; run it inline (it never blocks on I/O;
            // only fault lost-update waits between its read and its write).
            super::race::handle(&emu, &http, now).await
        }
        Ok(Err(_)) => {
            let err = parameter_error(&http, format!("the request body exceeds {MAX_BODY} bytes"));
            protocol::request_error_response(&err, &emu.request_id(err.family))
        }
    };
    reply(resp)
}

fn reply(resp: protocol::HttpResponse) -> Response {
    let mut builder = Response::builder().status(resp.status);
    for (k, v) in &resp.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    builder
        .body(Body::from(resp.body))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

/// The family's parameter error for a request refused before it is decoded, saying `message`.
fn parameter_error(req: &HttpRequest, message: String) -> RequestError {
    let family = if req.path() == "/v2/index.php" {
        FamilyId::TencentV2
    } else if req.header("x-acs-action").is_some() || req.query().contains("AccessKeyId=") {
        FamilyId::AliyunRpc
    } else {
        FamilyId::TencentApi3
    };
    let (code, status) = match family {
        FamilyId::TencentV2 => ("4000", 200),
        FamilyId::AliyunRpc => ("InvalidParameter", 400),
        FamilyId::TencentApi3 => ("InvalidParameter", 200),
    };
    RequestError {
        family,
        code: code.into(),
        message,
        status,
        action: None,
        format: ResponseFormat::Default,
    }
}

/// Unix seconds now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
