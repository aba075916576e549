//! The validating proxy: between any client (an SDK, a CLI, a user's code) and any target, it
//! forwards every request unchanged and judges both sides of the exchange.
//!
//! A request enters as bytes on a loopback listener. The **client side** is judged from the
//! bytes alone ([`client`]): the family, the signature with the configured credentials (and the
//! step where it diverges), the timestamp window, the nonce, the action and version, and the
//! parameters by the spec's rules. The request then goes to the target unchanged
//! ([`forward`]), and the answer goes back to the client as it came. The **server side** is
//! judged by the runner's own stages ([`crate::run::Session::judge_forwarded`]): the decoded
//! request becomes a [`Case`], the model of the target's world says what the documents allow
//! for it, the answer is decoded and weighed (strengths, unspecified situations, `--strict`,
//! `--source` as `run` has them), and the state change is observed as a run observes it (the
//! read APIs, or the admin view of a loopback emulator). The client gets its answer as soon as
//! the target gives it; observing and judging go on after, with the instances' locks held, so a
//! later request on the same instance waits for them.
//!
//! What leaves: per exchange with a finding, a repro file `apiconform replay` accepts (under
//! `--record`), and on stop a [`Summary`]: per API and side, exchanges, pass, findings,
//! unspecified, not judged.

pub mod client;
pub mod forward;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};

use crate::case::Case;
use crate::emulator::gate::Limits;
use crate::oracle::{Revision, Strength, VerdictKind};
use crate::protocol::describe::ADMIN_PREFIX;
use crate::protocol::redact::{curl, redact, scrub, secrets_in};
use crate::protocol::Keys;
use crate::protocol::{HttpRequest, HttpResponse};
use crate::run::{
    Exchanged, Failure, RunError, RunOptions, Session, Setup, SetupOptions, Target, TransportError,
};
use crate::spec::{Source, SpecSet};
use crate::world::World;

use forward::Forwarder;

/// Which side of an exchange a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The request: what the client sent.
    Client,
    /// The answer and the state change: what the target did.
    Server,
}

impl Side {
    /// `client` or `server`.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
}

/// One way an exchange breaks the documents (or, among notes, leaves them open): data, not an
/// error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Client or server.
    pub side: Side,
    /// The API, when the request is one of the specs' APIs.
    pub api: Option<String>,
    /// The rule: a spec's rule id, or one of [`client::rules`].
    pub rule: String,
    /// The document and section stating it.
    pub source: Option<Source>,
    /// What the documents expect.
    pub expected: String,
    /// What the exchange did.
    pub actual: String,
    /// More detail (for a signature: the step where it diverges, the canonical request and the
    /// string to sign).
    pub detail: String,
    /// What the expectation rests on.
    pub strength: Option<Strength>,
}

/// How the proxy is set up.
#[derive(Debug, Clone)]
pub struct ProxyOptions {
    /// Where to listen: a loopback address (port 0: any free port).
    pub listen: SocketAddr,
    /// The target's base URL.
    pub target: String,
    /// What the target holds (required for a target not on loopback, as for `run`).
    pub world: Option<World>,
    /// Where to write a repro file per exchange with a finding.
    pub record: Option<PathBuf>,
    /// The credentials, a pair per vendor.
    pub keys: Keys,
    /// Judge the server on our judgements too, as `run --strict`.
    pub strict: bool,
    /// The revision of the documents to judge codes by, as `run --source`.
    pub revision: Revision,
    /// Per-request timeout towards the target.
    pub timeout: Duration,
    /// Whether the target must answer a connection at start (`false`: start anyway, and
    /// answer 502 while it is down).
    pub require_target: bool,
    /// Connections per peer and in all, and the waits on each ([`Limits::PROXY`]).
    pub limits: Limits,
}

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// Only loopback addresses are listened on.
    #[error("--listen {addr}: the proxy listens on loopback only\n  = help: use 127.0.0.1:PORT (port 0 picks a free one)")]
    NotLoopback {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {reason}\n  = help: pick a free port, or 0 for any")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
    /// The target URL, the world or the remote-target guard.
    #[error(transparent)]
    Setup(#[from] RunError),
    /// The target refused or did not answer a connection at start.
    #[error("the target {url} cannot be reached: {reason}\n  = help: start it first (e.g. `apiconform serve --listen 127.0.0.1:9000`) or check --target")]
    Unreachable {
        /// The target.
        url: String,
        /// Why.
        reason: String,
    },
}

/// Counters of one API and side.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SideStats {
    /// The API (`(unrecognised)` for requests of no family).
    pub api: String,
    /// Client or server.
    pub side: Option<Side>,
    /// Exchanges seen.
    pub exchanges: usize,
    /// With nothing to find.
    pub pass: usize,
    /// With at least one finding.
    pub findings: usize,
    /// With only what the documents leave open.
    pub unspecified: usize,
    /// Not judged: the target throttled, could not be reached, or could not be observed.
    pub not_judged: usize,
}

/// A finding with the exchange it was found in (numbered from 1 in arrival order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Found {
    /// The exchange.
    pub exchange: u64,
    /// The finding.
    #[serde(flatten)]
    pub finding: Finding,
}

/// What the proxy saw, from start to stop.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Summary {
    /// The target.
    pub target: String,
    /// Requests received (admin calls included).
    pub requests: u64,
    /// Exchanges of the specs' APIs judged on both sides.
    pub judged: usize,
    /// Per API and side, in API then side order.
    pub apis: Vec<SideStats>,
    /// Every finding.
    pub findings: Vec<Found>,
    /// What the documents leave open, per exchange.
    pub notes: Vec<Found>,
    /// Requests of actions no spec describes (`DescribeInstances`, ...), forwarded unjudged,
    /// by action.
    pub other: BTreeMap<String, usize>,
    /// Calls to the emulator's admin view, forwarded unjudged.
    pub admin: usize,
    /// Requests answered 502: the target could not be reached.
    pub unreachable: usize,
    /// Requests refused with 400 and not forwarded: a target that is not a path (absolute-,
    /// authority- or asterisk-form), a path that could read as another host, two `Host`s.
    #[serde(default)]
    pub refused: usize,
    /// Repro files written.
    pub recorded: Vec<PathBuf>,
}

impl Summary {
    /// Findings on `side` (`None`: either side).
    pub fn findings_on(&self, side: Option<Side>) -> usize {
        self.findings
            .iter()
            .filter(|f| side.is_none_or(|s| f.finding.side == s))
            .count()
    }

    /// The summary as a table: one line per API and side.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<42} {:<6} {:>9} {:>6} {:>8} {:>11} {:>10}\n",
            "API", "side", "exchanges", "pass", "findings", "unspecified", "not judged"
        );
        for s in &self.apis {
            out.push_str(&format!(
                "{:<42} {:<6} {:>9} {:>6} {:>8} {:>11} {:>10}\n",
                s.api,
                s.side.map_or("", Side::as_str),
                s.exchanges,
                s.pass,
                s.findings,
                s.unspecified,
                s.not_judged
            ));
        }
        if !self.other.is_empty() {
            let other: Vec<String> = self
                .other
                .iter()
                .map(|(a, n)| format!("{a} ×{n}"))
                .collect();
            out.push_str(&format!(
                "forwarded, no spec to judge by: {}\n",
                other.join(", ")
            ));
        }
        out.push_str(&format!(
            "{} requests, {} exchanges judged, {} client-side and {} server-side findings, {} admin calls, {} answered 502{}\n",
            self.requests,
            self.judged,
            self.findings_on(Some(Side::Client)),
            self.findings_on(Some(Side::Server)),
            self.admin,
            self.unreachable,
            match self.refused {
                0 => String::new(),
                n => format!(", {n} refused (400, not forwarded)"),
            }
        ));
        for f in &self.findings {
            let g = &f.finding;
            out.push_str(&format!(
                "finding #{} {} {} `{}`{}\n  expected: {}\n  actual:   {}\n",
                f.exchange,
                g.side.as_str(),
                g.api.as_deref().unwrap_or("(unrecognised)"),
                g.rule,
                g.source
                    .as_ref()
                    .map_or(String::new(), |s| format!(" ({} § {})", s.doc, s.section)),
                g.expected,
                g.actual
            ));
        }
        out
    }
}

/// The state the connections share.
struct Shared {
    set: Arc<SpecSet>,
    /// Replaced when the emulator's world is reset through the proxy; every judge holds it
    /// shared, a reset alone.
    session: Arc<tokio::sync::RwLock<Arc<Session>>>,
    run_opts: RunOptions,
    target: Target,
    forward: Forwarder,
    admin: bool,
    nonces: client::Nonces,
    tally: Mutex<Tally>,
    record: Option<PathBuf>,
    seq: AtomicU64,
    /// One permit per exchange being judged; stopping waits for all of them.
    judging: Arc<tokio::sync::Semaphore>,
    /// The listener's limits.
    limits: Limits,
}

#[derive(Default)]
struct Tally {
    stats: BTreeMap<(String, Side), SideStats>,
    summary: Summary,
}

/// Most exchanges judged at once (the rest wait for a permit before they are forwarded).
const MAX_JUDGING: usize = 1024;

/// A running proxy.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: tokio::sync::watch::Sender<bool>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Checks the options, reaches the target (unless told not to), binds the listener and
    /// starts serving.
    pub async fn start(set: &SpecSet, opts: ProxyOptions) -> Result<Proxy, ProxyError> {
        if !opts.listen.ip().is_loopback() {
            return Err(ProxyError::NotLoopback { addr: opts.listen });
        }
        let setup = Setup::prepare(SetupOptions {
            specs: None,
            reach: Default::default(),
            target: Some(opts.target.clone()),
            world: opts.world.clone(),
            faults: Default::default(),
            variants: Default::default(),
            keys: opts.keys.clone(),
            timeout: opts.timeout,
            probe_world: true,
        })
        .await?;
        if opts.require_target {
            reachable(&setup.target, opts.timeout).await?;
        }
        let forward = Forwarder::new(setup.target.url(), opts.timeout).map_err(RunError::from)?;
        let run_opts = RunOptions {
            keys: opts.keys.clone(),
            admin: setup.admin,
            strict: opts.strict,
            revision: opts.revision,
            timeout: opts.timeout,
            ..Default::default()
        };
        let session = Session::new(set, setup.world.clone(), &setup.target, &run_opts);
        let listener = tokio::net::TcpListener::bind(opts.listen)
            .await
            .map_err(|e| ProxyError::Bind {
                addr: opts.listen,
                reason: e.to_string(),
            })?;
        let addr = listener.local_addr().map_err(|e| ProxyError::Bind {
            addr: opts.listen,
            reason: e.to_string(),
        })?;
        let shared = Arc::new(Shared {
            set: Arc::new(set.clone()),
            session: Arc::new(tokio::sync::RwLock::new(Arc::new(session))),
            run_opts,
            target: setup.target.clone(),
            forward,
            admin: setup.admin,
            nonces: client::Nonces::default(),
            tally: Mutex::new(Tally {
                summary: Summary {
                    target: setup.target.url().to_string(),
                    ..Default::default()
                },
                ..Default::default()
            }),
            record: opts.record.clone(),
            seq: AtomicU64::new(0),
            judging: Arc::new(tokio::sync::Semaphore::new(MAX_JUDGING)),
            limits: opts.limits,
        });
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let accept = tokio::spawn(accept_loop(listener, shared.clone(), opts.limits, stopped));
        Ok(Proxy {
            addr,
            shared,
            stop,
            accept,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What it saw so far (exchanges still being judged not yet counted).
    pub fn summary(&self) -> Summary {
        self.shared.summary()
    }

    /// Stops accepting, lets the exchanges in flight finish (for a bounded time) and returns
    /// the summary.
    pub async fn stop(self) -> Summary {
        let _ = self.stop.send(true);
        let _ = self.accept.await;
        let _ = tokio::time::timeout(
            Duration::from_secs(30),
            self.shared.judging.acquire_many(MAX_JUDGING as u32),
        )
        .await;
        self.shared.summary()
    }
}

/// Whether the target takes a TCP connection.
async fn reachable(target: &Target, timeout: Duration) -> Result<(), ProxyError> {
    let url = url::Url::parse(target.url()).map_err(|e| ProxyError::Unreachable {
        url: target.url().into(),
        reason: e.to_string(),
    })?;
    let host = url.host_str().unwrap_or("").trim_matches(['[', ']']);
    let port = url.port_or_known_default().unwrap_or(80);
    let unreachable = |reason: String| ProxyError::Unreachable {
        url: target.url().into(),
        reason,
    };
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect((host, port))).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(unreachable(e.to_string())),
        Err(_) => Err(unreachable(format!(
            "no connection within {} s",
            timeout.as_secs()
        ))),
    }
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    limits: Limits,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let app = axum::Router::new()
        .fallback(handle)
        .with_state(shared.clone());
    let stop = async move {
        let _ = stopped.wait_for(|s| *s).await;
    };
    crate::emulator::server::accept_loop(listener, app, limits, "proxy", None, stop).await;
}

fn now() -> i64 {
    crate::emulator::server::now()
}

async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path_and_query = parts.uri.path_and_query().map_or_else(
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
        target: path_and_query,
        headers,
        body: Vec::new(),
    };
    // Only an origin-form target with one Host is forwarded; nothing of it can name another
    // host (the forwarder builds the URL from --target's origin in any case).
    if let Some(why) = crate::emulator::server::framing_error(&parts)
        .or_else(|| forward::refuse_target(&parts.method, &parts.uri))
    {
        shared.tally().summary.refused += 1;
        return reply(forward::bad_request(&http, &why));
    }
    let declared = http
        .header("content-length")
        .and_then(|n| n.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > forward::MAX_BODY as u64) {
        // Answered before a byte of the body is read; what the client is still writing is then
        // read and dropped for a moment, so that it reads the answer instead of a reset.
        tokio::spawn(discard(body));
        return reply(forward::too_large(&http, declared));
    }
    let wait = shared.limits.body_timeout;
    match tokio::time::timeout(wait, axum::body::to_bytes(body, forward::MAX_BODY)).await {
        Ok(Ok(bytes)) => http.body = bytes.to_vec(),
        Ok(Err(_)) => return reply(forward::too_large(&http, None)),
        Err(_) => {
            return reply(forward::own_answer(
                &http,
                408,
                ("InvalidParameter", "4000", "InvalidParameter"),
                format!(
                    "apiconform proxy: the request body did not arrive within {} s",
                    wait.as_secs()
                ),
            ))
        }
    }
    crate::emulator::server::body_received(&parts);
    reply(shared.exchange(http).await)
}

/// Reads and drops a refused body: at most twice the largest forwarded, for at most 2 s.
async fn discard(body: Body) {
    use futures::StreamExt;
    let mut chunks = body.into_data_stream();
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let mut read = 0;
        while let Some(Ok(chunk)) = chunks.next().await {
            read += chunk.len();
            if read > 2 * forward::MAX_BODY {
                break;
            }
        }
    })
    .await;
}

fn reply(resp: HttpResponse) -> Response {
    let mut builder = Response::builder().status(resp.status);
    for (k, v) in &resp.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    builder
        .body(Body::from(resp.body))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

impl Shared {
    fn summary(&self) -> Summary {
        let t = self.tally.lock().unwrap_or_else(|e| e.into_inner());
        let mut s = t.summary.clone();
        s.apis = t.stats.values().cloned().collect();
        s
    }

    fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One request: judged on the client side, forwarded, answered, and (for the specs' APIs)
    /// judged on the server side after the answer went back.
    async fn exchange(self: &Arc<Self>, http: HttpRequest) -> HttpResponse {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        self.tally().summary.requests = seq;
        if http.path().starts_with(ADMIN_PREFIX) {
            return self.admin(http).await;
        }
        let creds = client::Creds {
            keys: &self.run_opts.keys,
        };
        let view = client::judge(&self.set, &creds, &self.nonces, &http, now());
        let (Some(api), Some(case)) = (view.api, view.case.clone()) else {
            let resp = self.forward(&http).await;
            self.unjudged(seq, view, &http, &resp);
            return resp;
        };
        let Ok(permit) = self.judging.clone().acquire_owned().await else {
            return self.forward(&http).await;
        };
        let (tx, rx) = tokio::sync::oneshot::channel::<Result<HttpResponse, String>>();
        let me = self.clone();
        let request = http.clone();
        tokio::spawn(async move {
            let session = me.session.clone().read_owned().await;
            let mut case = case;
            if case.region.is_empty() {
                // No region sent (ECM's Region is optional; an RPC call without RegionId): the
                // instances it names are looked up where the model holds them, as a target
                // that ignores the region finds them.
                let product = me.set.apis[api].spec.instance_product();
                if let Some(i) = session
                    .reach(&case)
                    .instances
                    .iter()
                    .find(|i| i.product == product)
                {
                    case.region = i.region.clone();
                }
            }
            let answered: Arc<Mutex<Option<HttpResponse>>> = Arc::default();
            let slot = answered.clone();
            let forwarder = &me.forward;
            let to = request.clone();
            let url = forwarder.url().to_string();
            let forward = async move {
                let r = forwarder.send(&to).await;
                if let Ok(resp) = &r {
                    *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(resp.clone());
                }
                let _ = tx.send(r.clone());
                r.map_err(|reason| RunError::Transport(TransportError::Unreachable { url, reason }))
            };
            let api_ref = &me.set.apis[api];
            let judged = session
                .judge_forwarded(api_ref, &case, request.clone(), forward)
                .await;
            drop(session);
            let response = answered.lock().unwrap_or_else(|e| e.into_inner()).take();
            me.judged(seq, view, case, judged, &request, response);
            drop(permit);
        });
        match rx.await {
            Ok(Ok(resp)) => resp,
            Ok(Err(why)) => {
                self.tally().summary.unreachable += 1;
                forward::bad_gateway(&http, self.forward.url(), &why)
            }
            // The judge stopped before forwarding (its model could not be read back from the
            // target): forward without it.
            Err(_) => self.forward(&http).await,
        }
    }

    /// Forwards without judging the server side; 502 when the target cannot be reached.
    async fn forward(&self, http: &HttpRequest) -> HttpResponse {
        match self.forward.send(http).await {
            Ok(resp) => resp,
            Err(why) => {
                self.tally().summary.unreachable += 1;
                forward::bad_gateway(http, self.forward.url(), &why)
            }
        }
    }

    /// The emulator's admin view, forwarded unjudged. A reset waits for every exchange being
    /// judged, then the model starts again from what the emulator holds.
    async fn admin(&self, http: HttpRequest) -> HttpResponse {
        self.tally().summary.admin += 1;
        let resets = http.method == "POST" && http.path() == format!("{ADMIN_PREFIX}/reset");
        if !resets {
            return self.forward(&http).await;
        }
        let mut session = self.session.write().await;
        let resp = self.forward(&http).await;
        if resp.status == 200 && self.admin {
            if let Some(world) = self.target.admin_world().await {
                *session = Arc::new(Session::new(&self.set, world, &self.target, &self.run_opts));
            }
        }
        resp
    }

    /// Counts a request no spec describes (or of no family) and records its client findings.
    fn unjudged(&self, seq: u64, view: client::ClientView, req: &HttpRequest, resp: &HttpResponse) {
        let mut t = self.tally();
        if view.findings.is_empty() {
            let name = format!(
                "{} {}",
                view.family.map_or("?", |f| f.as_str()),
                view.action.as_deref().unwrap_or("?")
            );
            *t.summary.other.entry(name).or_default() += 1;
            return;
        }
        let label = view
            .findings
            .first()
            .and_then(|f| f.api.clone())
            .unwrap_or_else(|| "(unrecognised)".into());
        let s = stats(&mut t, &label, Side::Client);
        s.exchanges += 1;
        s.findings += 1;
        let findings = view.findings.clone();
        for f in &findings {
            t.summary.findings.push(Found {
                exchange: seq,
                finding: f.clone(),
            });
        }
        drop(t);
        self.record(seq, None, &findings, req, Some(resp));
    }

    /// Counts both sides of a judged exchange and records it when it has a finding.
    fn judged(
        &self,
        seq: u64,
        view: client::ClientView,
        case: Case,
        judged: Result<Exchanged, RunError>,
        req: &HttpRequest,
        resp: Option<HttpResponse>,
    ) {
        let api = self.set.apis[view.api.unwrap_or_default()].name.clone();
        let mut findings = view.findings.clone();
        let mut notes = view.notes.clone();
        let mut t = self.tally();
        let c = stats(&mut t, &api, Side::Client);
        c.exchanges += 1;
        match (findings.is_empty(), notes.is_empty()) {
            (false, _) => c.findings += 1,
            (true, false) => c.unspecified += 1,
            (true, true) => c.pass += 1,
        }
        let s = stats(&mut t, &api, Side::Server);
        s.exchanges += 1;
        let server = |v: &crate::oracle::Verdict, detail: String| Finding {
            side: Side::Server,
            api: Some(api.clone()),
            rule: v.rule.clone().unwrap_or_else(|| "?".into()),
            source: v.source.clone(),
            expected: v.expected.clone(),
            actual: v.actual.clone(),
            detail,
            strength: v.strength,
        };
        match &judged {
            Ok(ex) if ex.throttled => s.not_judged += 1,
            Ok(ex) => match ex.verdict.kind {
                VerdictKind::Pass => s.pass += 1,
                VerdictKind::Fail => {
                    s.findings += 1;
                    findings.push(server(&ex.verdict, ex.verdict.detail.clone()));
                }
                VerdictKind::Unspecified => {
                    s.unspecified += 1;
                    let why = ex.open_reason.clone().unwrap_or_else(|| "open".into());
                    notes.push(server(
                        &ex.verdict,
                        format!("{} (open: {why})", ex.verdict.detail),
                    ));
                }
            },
            Err(_) => s.not_judged += 1,
        }
        if judged.as_ref().is_ok_and(|ex| !ex.throttled) {
            t.summary.judged += 1;
        }
        for (list, items) in [(false, &findings), (true, &notes)] {
            for f in items.iter() {
                let found = Found {
                    exchange: seq,
                    finding: f.clone(),
                };
                match list {
                    false => t.summary.findings.push(found),
                    true => t.summary.notes.push(found),
                }
            }
        }
        drop(t);
        if !findings.is_empty() {
            self.record(seq, Some(case), &findings, req, resp.as_ref());
        }
    }

    /// Writes an exchange with findings as a repro file: a [`Failure`] (what `apiconform
    /// replay` reads: the case, the request redacted, the answer, the first finding's rule)
    /// plus the side and every finding.
    fn record(
        &self,
        seq: u64,
        case: Option<Case>,
        findings: &[Finding],
        req: &HttpRequest,
        resp: Option<&HttpResponse>,
    ) {
        let (Some(dir), Some(first)) = (&self.record, findings.first()) else {
            return;
        };
        let o = &self.run_opts;
        let secrets = secrets_in(req, &o.keys.all_strings());
        let scrub = |t: &str| scrub(t, &secrets);
        let redacted = redact(req);
        let case = case.unwrap_or_else(|| Case {
            api: String::new(),
            region: String::new(),
            params: Default::default(),
            violates: vec![],
            situations: vec![],
            auth: Default::default(),
            example: None,
            transport: crate::case::Transport {
                method: crate::spec::Method::Get,
                signature: crate::spec::SignatureMethod::V1HmacSha1,
                format: crate::spec::ResponseFormat::Default,
                index_base: 0,
                forms: Default::default(),
            },
        });
        let failure = Failure {
            api: first.api.clone().unwrap_or_default(),
            rule: first.rule.clone(),
            source: first.source.clone(),
            expected: scrub(&first.expected),
            actual: scrub(&first.actual),
            detail: scrub(&first.detail),
            case,
            curl: curl(&redacted, self.forward.url()),
            request: redacted,
            status: resp.map_or(502, |r| r.status),
            response: resp.map_or_else(String::new, |r| scrub(&String::from_utf8_lossy(&r.body))),
            shrink_steps: 0,
            found_after: seq as usize,
            strength: first.strength,
            burst: None,
            sequence: Vec::new(),
            code: None,
            preconditions: None,
            notes: Vec::new(),
            shrunk: false,
        };
        let findings: Vec<Finding> = findings
            .iter()
            .map(|f| Finding {
                expected: scrub(&f.expected),
                actual: scrub(&f.actual),
                detail: scrub(&f.detail),
                ..f.clone()
            })
            .collect();
        let record = Recorded {
            failure,
            side: first.side,
            exchange: seq,
            findings,
        };
        let name = format!(
            "{seq:05}-{}-{}--{}.json",
            first.side.as_str(),
            first
                .api
                .as_deref()
                .unwrap_or("unrecognised")
                .replace('/', "--"),
            first.rule
        );
        let path = dir.join(name);
        let written = std::fs::create_dir_all(dir).and_then(|_| {
            std::fs::write(
                &path,
                serde_json::to_string_pretty(&record).map_err(std::io::Error::other)? + "\n",
            )
        });
        match written {
            Ok(()) => self.tally().summary.recorded.push(path),
            Err(e) => eprintln!("warning: cannot write {}: {e}", path.display()),
        }
    }
}

fn stats<'a>(t: &'a mut Tally, api: &str, side: Side) -> &'a mut SideStats {
    t.stats
        .entry((api.to_string(), side))
        .or_insert_with(|| SideStats {
            api: api.to_string(),
            side: Some(side),
            ..Default::default()
        })
}

/// A repro file of the proxy: a [`Failure`] `apiconform replay` reads (it ignores the rest),
/// the side of its first finding, the exchange's number, and every finding of the exchange.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Recorded {
    /// What replay reads.
    #[serde(flatten)]
    pub failure: Failure,
    /// The side of the first finding.
    pub side: Side,
    /// The exchange's number, from 1 in arrival order.
    pub exchange: u64,
    /// Every finding of the exchange.
    pub findings: Vec<Finding>,
}

/// Latency the proxy adds on loopback, as `apiconform bench --proxy` measures it.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Requests timed on each path (after a warm-up).
    pub requests: usize,
    /// Direct to an emulator: median and 99th percentile, microseconds.
    pub direct_p50_us: f64,
    /// See `direct_p50_us`.
    pub direct_p99_us: f64,
    /// Through the proxy to another emulator like it.
    pub proxied_p50_us: f64,
    /// See `proxied_p50_us`.
    pub proxied_p99_us: f64,
    /// Findings the proxy reported (a correct emulator and valid requests: 0).
    pub findings: usize,
    /// Exchanges the proxy judged on both sides.
    pub judged: usize,
}

impl Latency {
    /// Median added by the proxy, microseconds.
    pub fn added_p50_us(&self) -> f64 {
        self.proxied_p50_us - self.direct_p50_us
    }

    /// 99th percentile added by the proxy, microseconds.
    pub fn added_p99_us(&self) -> f64 {
        self.proxied_p99_us - self.direct_p99_us
    }
}

/// Times `requests` valid requests of every API (one at a time, so each time is one request's)
/// direct to an in-process emulator and through a proxy to a second one, interleaved; each is
/// signed just before it is sent, outside the timing.
pub async fn measure_latency(
    set: &SpecSet,
    requests: usize,
    seed: u64,
) -> Result<Latency, ProxyError> {
    use crate::run::Embedded;
    let timeout = Duration::from_secs(10);
    let direct = Embedded::start(Default::default(), timeout).await?;
    let behind = Embedded::start(Default::default(), timeout).await?;
    let opts = ProxyOptions {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        target: behind.target().url().to_string(),
        world: None,
        record: None,
        keys: crate::emulator::example_keys(),
        strict: false,
        revision: Revision::Both,
        timeout,
        require_target: true,
        limits: Limits::PROXY,
    };
    let keys = opts.keys.clone();
    let proxy = Proxy::start(set, opts).await?;
    let via = Target::new(&format!("http://{}", proxy.addr()), timeout).map_err(RunError::from)?;
    let world = World::default_world();
    let cases: Vec<(usize, Case)> = set
        .apis
        .iter()
        .enumerate()
        .flat_map(|(i, api)| {
            crate::generate::corpus(set, api, &world, seed + i as u64, 80, &Default::default())
                .into_iter()
                .filter(|c| c.violates.is_empty() && c.auth == crate::case::AuthFault::None)
                .map(move |c| (i, c))
        })
        .collect();
    let warm = 50;
    let mut nonce = u64::from(rand::random::<u32>()) << 20;
    let (mut d, mut p) = (Vec::new(), Vec::new());
    for n in 0..requests + warm {
        let (i, case) = &cases[n % cases.len()];
        let api = &set.apis[*i];
        for (target, times) in [(direct.target(), &mut d), (&via, &mut p)] {
            nonce += 1;
            let req = crate::protocol::request::sign_case(
                api,
                case,
                &target.authority(),
                &keys,
                now(),
                nonce,
            )
            .map_err(|source| RunError::Protocol {
                api: api.name.clone(),
                source,
            })?;
            let started = std::time::Instant::now();
            target.send(&req).await.map_err(RunError::from)?;
            if n >= warm {
                times.push(started.elapsed().as_secs_f64() * 1e6);
            }
        }
    }
    let summary = proxy.stop().await;
    direct.stop().await;
    behind.stop().await;
    let pct = |v: &mut Vec<f64>, q: f64| {
        v.sort_by(f64::total_cmp);
        v[((v.len() as f64 * q) as usize).min(v.len() - 1)]
    };
    Ok(Latency {
        requests,
        direct_p50_us: pct(&mut d, 0.50),
        direct_p99_us: pct(&mut d, 0.99),
        proxied_p50_us: pct(&mut p, 0.50),
        proxied_p99_us: pct(&mut p, 0.99),
        findings: summary.findings.len(),
        judged: summary.judged,
    })
}
