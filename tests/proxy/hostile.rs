//! The proxy under a hostile client (issue 23): request-targets that name another host, a
//! wrongly signed request fishing for a valid signature, two `Host` headers, connection floods,
//! and arbitrary request-targets and headers. Loopback only; every flood is bounded in count
//! and stops by itself.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use apiconform::protocol::{self, FamilyId, NonceStore};

/// A listener the proxy must never reach: it counts connections and answers each with 200.
struct Decoy {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
}

async fn decoy(ip: [u8; 4]) -> Decoy {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((ip, 0)))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
    Decoy { addr, hits }
}

/// Sends raw bytes to `addr` and reads the answer until the server closes (the requests say
/// `Connection: close`), for at most 5 s.
async fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// A request with `target` as its request-target, a Host naming the proxy and a TC3
/// Authorization (the client's credentials must not travel elsewhere).
fn request_to(method: &str, target: &str, proxy: SocketAddr, extra: &str) -> Vec<u8> {
    format!(
        "{method} {target} HTTP/1.1\r\nHost: {proxy}\r\nAuthorization: TC3-HMAC-SHA256 Credential={}/2026-01-01/cvm/tc3_request, SignedHeaders=content-type;host, Signature=00\r\nContent-Type: application/json\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n",
        apiconform::emulator::TENCENT_DEFAULT.0
    )
    .into_bytes()
}

/// A request-target that names another host — `//HOST:PORT/x`, backslashes raw and
/// percent-encoded, absolute-form, authority-form — is refused with 400 and never reaches that
/// host (nor the target); a path that merely contains such characters further on stays on the
/// target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_targets_naming_another_host_get_400_and_reach_nothing() {
    let (emu, proxy, _) = proxied(&[], None).await;
    let elsewhere = decoy([127, 0, 0, 3]).await;
    let beside = decoy([127, 0, 0, 1]).await;
    let (d3, d1, me) = (elsewhere.addr, beside.addr, proxy.addr());
    let refused = [
        ("GET", format!("//{d3}/x")),
        ("POST", format!("//{d3}/?Action=DescribeInstances")),
        ("GET", format!("//{d1}/")),
        ("GET", format!("/\\{d3}/x")),
        ("GET", format!("/\\\\{d3}/x")),
        ("GET", format!("/%5C%5C{d3}/x")),
        ("GET", format!("/%5c{d3}/x")),
        ("GET", format!("/%2F{d3}/x")),
        ("GET", format!("/%2f%2f{d3}/x")),
        ("GET", format!("\\\\{d3}/x")),
        ("GET", format!("http://{d3}/x")),
        ("GET", format!("https://{d3}/x")),
        ("GET", format!("http://{me}/")),
        ("CONNECT", format!("{d3}")),
        ("OPTIONS", "*".to_string()),
    ];
    for (method, target) in &refused {
        let answer = raw(me, &request_to(method, target, me, "")).await;
        assert!(
            answer.starts_with("HTTP/1.1 400"),
            "{method} {target}: {answer}"
        );
    }
    assert_eq!(proxy.summary().requests, 0, "nothing was forwarded");
    // Paths that hold the characters further on are paths on the target.
    for target in [
        format!("/@{d3}/x"),
        format!("/..//{d3}/x"),
        format!("/x//{d3}/"),
    ] {
        let answer = raw(me, &request_to("GET", &target, me, "")).await;
        assert!(answer.starts_with("HTTP/1.1 "), "{target}: {answer}");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        elsewhere.hits.load(Ordering::SeqCst),
        0,
        "127.0.0.3 reached"
    );
    assert_eq!(
        beside.hits.load(Ordering::SeqCst),
        0,
        "another port reached"
    );
    let summary = proxy.stop().await;
    emu.stop().await;
    assert!(summary.refused >= 10, "{}", summary.table());
}

/// Two `Host` header fields: 400 (RFC 9112 § 3.2), not forwarded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_host_headers_get_400_and_are_not_forwarded() {
    let (emu, proxy, _) = proxied(&[], None).await;
    let me = proxy.addr();
    let answer = raw(me, &request_to("POST", "/", me, "Host: 127.0.0.3\r\n")).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("Host header"), "{answer}");
    let summary = proxy.stop().await;
    emu.stop().await;
    assert_eq!(summary.requests, 0, "{}", summary.table());
    assert_eq!(summary.refused, 1);
}

/// Accepts every nonce: only the signature is in question.
struct AnyNonce;

impl NonceStore for AnyNonce {
    fn check_and_insert(&self, _: FamilyId, _: &str, _: &str, _: i64) -> bool {
        true
    }
}

/// The signature a request carries (Authorization, or the `Signature` parameter).
fn signature_of(req: &HttpRequest) -> String {
    if let Some(auth) = req.header("authorization") {
        let from = auth.find("Signature=").unwrap() + "Signature=".len();
        let rest = &auth[from..];
        return rest[..rest.find(',').unwrap_or(rest.len())].to_string();
    }
    protocol::form_pairs(req)
        .into_iter()
        .find(|(k, _)| k == "Signature")
        .map(|(_, v)| v)
        .unwrap()
}

/// `req` with its signature replaced by `sig`, every other byte as it was.
fn with_signature(req: &HttpRequest, sig: &str) -> HttpRequest {
    let mut out = req.clone();
    if let Some((_, auth)) = out
        .headers
        .iter_mut()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
    {
        let from = auth.find("Signature=").unwrap() + "Signature=".len();
        let to = auth[from..].find(',').map_or(auth.len(), |e| from + e);
        auth.replace_range(from..to, sig);
        return out;
    }
    let encoded: String = form_urlencoded::byte_serialize(sig.as_bytes()).collect();
    let swap = |text: &str| -> Option<String> {
        let at = ["?Signature=", "&Signature="]
            .iter()
            .filter_map(|k| text.find(k).map(|i| i + k.len()))
            .next()
            .or_else(|| text.starts_with("Signature=").then_some("Signature=".len()))?;
        let end = text[at..].find('&').map_or(text.len(), |e| at + e);
        Some(format!("{}{encoded}{}", &text[..at], &text[end..]))
    };
    if let Some(t) = swap(&out.target) {
        out.target = t;
    } else {
        let body = String::from_utf8(out.body.clone()).unwrap();
        out.body = swap(&body).expect("a Signature parameter").into_bytes();
    }
    out
}

/// Every string in a JSON value.
fn strings(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|v| strings(v, out)),
        serde_json::Value::Object(o) => o.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

/// The words of `texts` that could be a signature (base64, hex, percent-encoded), as written
/// and percent-decoded.
fn candidates(texts: &[String]) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    for text in texts {
        for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || "+/=%".contains(c))) {
            if word.len() < 16 {
                continue;
            }
            out.insert(word.to_string());
            let decoded = percent_encoding::percent_decode_str(word).decode_utf8_lossy();
            out.insert(decoded.into_owned());
        }
    }
    out
}

/// A request signed with a wrong key, of every signature scheme, sent through the proxy: the
/// finding says where it diverges, and nothing the proxy prints, reports or records — no word
/// of it, put in the request as its signature — makes the request verify with the proxy's
/// secret (issue 23, item 2: the finding used to print the expected signature).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrongly_signed_request_gets_nothing_the_target_would_accept() {
    let set = set();
    let dir = tempfile::tempdir().unwrap();
    let (emu, proxy, client) = proxied(&[], Some(dir.path())).await;
    let world = World::default_world();
    // One valid case per API and signature scheme (ACS3 added by hand: the corpus signs
    // Alibaba with signature 1.0), signed with a wrong secret.
    let mut todo: Vec<(&LoadedApi, Case)> = Vec::new();
    let mut schemes = BTreeSet::new();
    for (n, api) in set.apis.iter().enumerate() {
        for case in generate::corpus(&set, api, &world, 70 + n as u64, 60, &GenOptions::default()) {
            let scheme = (
                api.name.clone(),
                format!("{:?}", case.transport.signature),
                format!("{:?}", case.transport.method),
            );
            if case.violates.is_empty() && case.auth == AuthFault::None && schemes.insert(scheme) {
                todo.push((api, case));
            }
        }
    }
    let (ecs, ecs_case) = todo
        .iter()
        .find(|(a, _)| a.spec.api.family == FamilyId::AliyunRpc)
        .cloned()
        .expect("an Alibaba case");
    let mut acs3 = ecs_case.clone();
    acs3.transport.signature = apiconform::spec::SignatureMethod::Acs3HmacSha256;
    acs3.transport.method = apiconform::spec::Method::Post;
    todo.push((ecs, acs3));
    let mut sent: Vec<(HttpRequest, HttpRequest)> = Vec::new();
    for (api, case) in &todo {
        let nonce = NONCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + rand_base();
        let now = apiconform::emulator::server::now();
        let sign_with = |auth| {
            let case = Case {
                auth,
                ..case.clone()
            };
            request::sign_case(api, &case, &client.authority(), &keys(), now, nonce).unwrap()
        };
        let (wrong, right) = (
            sign_with(AuthFault::WrongSecret),
            sign_with(AuthFault::None),
        );
        let answer = client.send(&wrong).await.unwrap();
        assert!(
            answer.status != 502,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
        sent.push((wrong, right));
    }
    assert!(
        sent.iter().any(|(w, _)| w
            .header("authorization")
            .is_some_and(|a| a.starts_with("ACS3"))),
        "ACS3 covered"
    );
    let summary = proxy.stop().await;
    emu.stop().await;
    let kinds: BTreeSet<&str> = sent
        .iter()
        .map(|(w, _)| {
            if w.header("authorization").is_some() {
                "header"
            } else {
                "query or form"
            }
        })
        .collect();
    assert_eq!(
        kinds.len(),
        2,
        "both places a signature travels are covered"
    );
    let signature_findings = summary
        .findings
        .iter()
        .filter(|f| f.finding.rule.contains("signature"))
        .count();
    assert!(signature_findings >= sent.len(), "{}", summary.table());
    assert!(
        summary
            .findings
            .iter()
            .any(|f| f.finding.detail.contains("string to sign")),
        "the finding still helps an honest client: {}",
        summary.table()
    );
    // Everything the proxy wrote: the table, the JSON summary, every record.
    let mut texts = vec![summary.table()];
    strings(&serde_json::to_value(&summary).unwrap(), &mut texts);
    assert!(!summary.recorded.is_empty());
    for path in &summary.recorded {
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        strings(&json, &mut texts);
    }
    let words = candidates(&texts);
    let keys = keys();
    let creds = apiconform::proxy::client::Creds { keys: &keys };
    for (wrong, right) in &sent {
        let parsed = protocol::parse_request(wrong).unwrap();
        let verifies = |req: &HttpRequest| {
            protocol::verify(req, &parsed, &creds, parsed.timestamp, &AnyNonce).is_ok()
        };
        // The check can tell: the right signature, put in the same way, verifies.
        let good = signature_of(right);
        assert!(verifies(&with_signature(wrong, &good)), "{}", wrong.target);
        assert!(!verifies(wrong));
        for word in &words {
            assert!(
                !verifies(&with_signature(wrong, word)),
                "`{word}` from the proxy's output signs a request made with a wrong key"
            );
        }
        let all = texts.join("\n");
        assert!(!all.contains(&good), "the valid signature {good} was shown");
    }
}

/// Connections from the loopback address `from`, each sending `prefix` and then holding on.
async fn hold(
    from: [u8; 4],
    addr: SocketAddr,
    n: usize,
    prefix: &[u8],
) -> Vec<tokio::net::TcpStream> {
    let mut held = Vec::new();
    for _ in 0..n {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket
            .bind((from, 0).into())
            .expect("any 127.x source address binds");
        let connect = tokio::time::timeout(Duration::from_secs(2), socket.connect(addr));
        let Ok(Ok(mut stream)) = connect.await else {
            continue;
        };
        if !prefix.is_empty() {
            let _ = stream.write_all(prefix).await;
        }
        held.push(stream);
    }
    held
}

/// 1,100 connections from five other loopback addresses, some idle and some holding a body
/// they never send, do not starve a client on 127.0.0.1: each of its requests, on a new
/// connection, is let in and answered by the target (issue 23, item 7: 1,100 idle connections
/// stopped the proxy accepting for 25–30 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_from_other_peers_does_not_starve_a_client() {
    let set = set();
    let (emu, proxy, client) = proxied(&[], None).await;
    let me = proxy.addr();
    let slow = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{";
    let mut flood = Vec::new();
    for peer in 2..7u8 {
        let prefix: &[u8] = if peer < 5 { b"" } else { slow };
        flood.extend(hold([127, 0, 0, peer], me, 220, prefix).await);
    }
    assert!(flood.len() >= 1000, "{} connections held", flood.len());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fresh = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let (api, case) = cvm_case(&set, apiconform::spec::Method::Post);
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let req = sign(api, &case, &client);
        let mut b = fresh.post(format!("http://{me}{}", req.target));
        for (k, v) in &req.headers {
            if !k.eq_ignore_ascii_case("host") && !k.eq_ignore_ascii_case("content-length") {
                b = b.header(k.as_str(), v.as_str());
            }
        }
        let status = b
            .body(req.body.clone())
            .send()
            .await
            .map_or_else(|e| format!("{e}"), |r| r.status().to_string());
        statuses.push(status);
    }
    assert!(statuses.iter().all(|s| s == "200 OK"), "{statuses:?}");
    drop(flood);
    let summary = proxy.stop().await;
    emu.stop().await;
    assert_eq!(summary.judged, 10, "{}", summary.table());
}

/// A request-target and headers as a fuzzer makes them: the pieces that name hosts (the
/// decoys' addresses among them), slashes, backslashes and their encodings.
fn hostile(
    hosts: Vec<String>,
) -> impl proptest::strategy::Strategy<Value = (String, String, Vec<(String, String)>)> {
    use proptest::prelude::*;
    let mut parts: Vec<String> = [
        "/",
        "//",
        "\\",
        "%5C",
        "%5c",
        "%2F",
        "%2f",
        "@",
        ":",
        "?",
        "#",
        ".",
        "..",
        "http://",
        "https:",
        "x",
        "Action=DescribeInstances",
        "&",
        "%00",
        " ",
        "*",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    parts.extend(hosts.clone());
    let part = prop::sample::select(parts);
    // Most targets start the way a host-naming one does, then name a host (or not), then
    // anything.
    let prefix = prop::sample::select(vec![
        "", "/", "//", "/\\", "\\\\", "/%5C%5C", "/%5c", "/%2F", "/%2f%2f", "http://", "https://",
        "//@", "/..//", "///",
    ]);
    let host = prop::sample::select([hosts, vec![String::new(), "x".into()]].concat());
    let shaped = (prefix, host, prop::collection::vec(part.clone(), 0..4))
        .prop_map(|(p, h, rest)| format!("{p}{h}{}", rest.concat()));
    let target = prop_oneof![
        3 => shaped,
        1 => prop::collection::vec(part.clone(), 1..8).prop_map(|v| v.concat()),
        1 => "[!-~]{1,30}",
    ];
    let method = prop::sample::select(vec!["GET", "POST", "CONNECT", "OPTIONS", "HEAD", "PUT"])
        .prop_map(String::from);
    let name = prop::sample::select(vec![
        "Host",
        "X-Forwarded-Host",
        "X-Forwarded-For",
        "Forwarded",
        "X-Original-URL",
        "X-Rewrite-URL",
        "X-Forwarded-Proto",
        "Via",
        "Referer",
        "Max-Forwards",
        "Proxy-Authorization",
        "X-TC-Action",
    ])
    .prop_map(String::from);
    let value =
        prop::collection::vec(part, 0..5).prop_map(|v| v.concat().replace(['\r', '\n'], ""));
    let headers = prop::collection::vec((name, value), 0..5);
    (method, target, headers)
}

/// A property over arbitrary request-targets and header sets, each sent as raw bytes: every
/// one gets an HTTP answer (none panics the proxy or hangs), and none reaches any host but
/// the target.
#[test]
fn arbitrary_request_targets_and_headers_reach_only_the_target() {
    use proptest::test_runner::{Config, TestRunner};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (emu, proxy, elsewhere, beside) = rt.block_on(async {
        let (emu, proxy, _) = proxied(&[], None).await;
        (
            emu,
            proxy,
            decoy([127, 0, 0, 3]).await,
            decoy([127, 0, 0, 1]).await,
        )
    });
    let me = proxy.addr();
    let hosts = vec![
        elsewhere.addr.to_string(),
        beside.addr.to_string(),
        format!("127.0.0.3:{}", elsewhere.addr.port()),
    ];
    let mut runner = TestRunner::new(Config {
        cases: 128,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&hostile(hosts), |(method, target, headers)| {
        let extra: String = headers
            .iter()
            .map(|(k, v)| format!("{k}: {v}\r\n"))
            .collect();
        let request = request_to(&method, &target, me, &extra);
        let hits = || elsewhere.hits.load(Ordering::SeqCst) + beside.hits.load(Ordering::SeqCst);
        let before = hits();
        let answer = rt.block_on(raw(me, &request));
        proptest::prop_assert!(
            answer.starts_with("HTTP/1.1 "),
            "no answer to {method} {target} {headers:?}"
        );
        proptest::prop_assert_eq!(hits(), before, "another host was reached");
        Ok(())
    });
    rt.block_on(async {
        proxy.stop().await;
        emu.stop().await;
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    assert_eq!(elsewhere.hits.load(Ordering::SeqCst), 0);
    assert_eq!(beside.hits.load(Ordering::SeqCst), 0);
}
