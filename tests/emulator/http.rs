use std::sync::Arc;
use std::time::Duration;

use apiconform::emulator::{server, Config, Emulator};
use apiconform::protocol::{self, Clock};
use serde_json::json;

use crate::support::*;

async fn start() -> (String, Arc<Emulator>, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let emu = Arc::new(Emulator::new(Config::default()));
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(server::serve(listener, emu.clone(), async {
        let _ = rx.await;
    }));
    (addr, emu, tx)
}

#[tokio::test]
async fn real_http_round_trip_and_admin_reset() {
    let (addr, emu, stop) = start().await;
    let mut call = cvm(
        "AssociateInstancesKeyPairs",
        json!({"InstanceIds": ["ins-cs000001"], "KeyIds": ["skey-ck000003"]}),
    );
    call.host = addr.clone();
    let req = protocol::encode(
        &call,
        &tencent(),
        &Clock {
            timestamp: server::now(),
            nonce: "7".into(),
        },
    )
    .unwrap();
    let client = reqwest::Client::new();
    let mut b = client.post(format!("http://{addr}/"));
    for (k, v) in &req.headers {
        if !k.eq_ignore_ascii_case("host") {
            b = b.header(k.as_str(), v.as_str());
        }
    }
    let resp = b.body(req.body.clone()).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body: serde_json::Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert!(body["Response"]["RequestId"].is_string(), "{body}");
    assert_eq!(keys(&emu, "ins-cs000001"), ["skey-ck000003"]);
    let r = client
        .post(format!("http://{addr}/__apiconform/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(keys(&emu, "ins-cs000001").is_empty());
    let garbage = client
        .post(format!("http://{addr}/"))
        .body(vec![0xff, 0x00, 0x13])
        .send()
        .await
        .unwrap();
    assert_eq!(
        garbage.status(),
        200,
        "Tencent-shaped error for unreadable requests"
    );
    let _ = stop.send(());
}

/// Half-sent requests are cut off, a lying `Content-Length` is not waited out, and a flood of idle
/// connections gets a clear `503` past the peer's cap instead of starving new requests (issue 15,
/// defect 2). Bounded: at most one header timeout of waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_lying_and_idle_clients_cannot_hold_the_server() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (addr, _emu, stop) = start().await;
    // Half a request: the connection is closed after the header timeout.
    let mut half = tokio::net::TcpStream::connect(&addr).await.unwrap();
    half.write_all(b"POST / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // A Content-Length of a terabyte: answered at once, not read.
    let mut liar = tokio::net::TcpStream::connect(&addr).await.unwrap();
    liar.write_all(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-TC-Action: DescribeInstances\r\nContent-Length: 1000000000000\r\n\r\n{}",
    )
    .await
    .unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), liar.read(&mut answer))
        .await
        .expect("the liar is answered without waiting for its body")
        .unwrap();
    assert!(
        String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 200"),
        "a family error: {}",
        String::from_utf8_lossy(&answer[..n])
    );
    // Idle connections up to one peer's cap, then one more: 503, said plainly.
    let mut idle = Vec::new();
    for _ in 0..server::PER_PEER {
        idle.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut over = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut text = String::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        over.read_to_string(&mut text),
    )
    .await
    .expect("the connection over the cap is answered and closed")
    .unwrap();
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("maximum of connections"), "{text}");
    assert!(text.contains("this address"), "{text}");
    drop(idle);
    // The half request's connection is closed by the server within the header timeout.
    let closed = tokio::time::timeout(
        server::HEADER_TIMEOUT + std::time::Duration::from_secs(3),
        half.read(&mut answer),
    )
    .await
    .expect("a half-sent request is cut off");
    assert!(matches!(closed, Ok(0) | Err(_)) || answer.starts_with(b"HTTP/1.1 408"));
    let _ = stop.send(());
}

/// Connections from the loopback address `from` (a 127.x address other than the good client's,
/// so that the server tells the peers apart), each sending `prefix` and then holding on.
async fn hold(
    from: [u8; 4],
    addr: std::net::SocketAddr,
    n: usize,
    prefix: &[u8],
) -> Vec<tokio::net::TcpStream> {
    use tokio::io::AsyncWriteExt;
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

/// `rounds` requests of a good client from 127.0.0.1, each on a new connection (each must be
/// let in): the statuses.
async fn good_client(addr: std::net::SocketAddr, rounds: usize) -> Vec<u16> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut statuses = Vec::new();
    for _ in 0..rounds {
        let status = client
            .get(format!(
                "http://{addr}/__apiconform/world?instances=ins-cs000001"
            ))
            .send()
            .await
            .map_or(0, |r| r.status().as_u16());
        statuses.push(status);
    }
    statuses
}

async fn start_with(
    limits: server::Limits,
) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let emu = Arc::new(Emulator::new(Config::default()));
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(server::serve_with(listener, emu, limits, async {
        let _ = rx.await;
    }));
    (addr, tx)
}

/// A request with two `Host` header fields is answered 400 (RFC 9112 § 3.2), in the family's
/// envelope, and not handled.
#[tokio::test]
async fn two_host_headers_are_refused_with_400() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (addr, _emu, stop) = start().await;
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(
            format!("GET /__apiconform/world HTTP/1.1\r\nHost: {addr}\r\nHost: 127.0.0.3\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
    let mut text = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut text))
        .await
        .expect("answered and closed")
        .unwrap();
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("Host header"), "{text}");
    let _ = stop.send(());
}

/// One peer holding more connections than its cap, idle, does not starve another: the good
/// client from 127.0.0.1 is served on every new connection, and the flooding peer's
/// connections past its cap are answered 503 (issue 23, item 7: 256 held connections used to
/// starve everyone).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_peer_holding_hundreds_of_idle_connections_does_not_starve_another() {
    use tokio::io::AsyncReadExt;
    let (addr, stop) = start_with(server::Limits::EMULATOR).await;
    let mut flood = hold([127, 0, 0, 2], addr, server::PER_PEER + 44, b"").await;
    assert_eq!(flood.len(), server::PER_PEER + 44);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let statuses = good_client(addr, 20).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let mut text = String::new();
    let last = flood.last_mut().unwrap();
    tokio::time::timeout(Duration::from_secs(5), last.read_to_string(&mut text))
        .await
        .expect("the connection past the cap is answered and closed")
        .unwrap();
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("this address holds the maximum"), "{text}");
    drop(flood);
    let _ = stop.send(());
}

/// Slow bodies from one peer (headers sent, the body promised and never sent) do not starve
/// another peer; held past half the peer's cap, they are pressure, and each is cut once it has
/// waited the pressed timeout instead of the body timeout (30 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_from_one_peer_do_not_starve_another_and_are_cut_under_pressure() {
    use tokio::io::AsyncReadExt;
    let (addr, stop) = start_with(server::Limits::EMULATOR).await;
    let started = std::time::Instant::now();
    let slow = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-TC-Action: DescribeInstances\r\nContent-Length: 1000\r\n\r\n{";
    let mut flood = hold([127, 0, 0, 2], addr, 300, slow).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let statuses = good_client(addr, 20).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    // The first slow body is cut within the pressed timeout (and a margin), far before the
    // body timeout.
    let mut answer = Vec::new();
    let cut = tokio::time::timeout(
        server::Limits::EMULATOR.pressed_timeout + Duration::from_secs(4),
        flood[0].read_to_end(&mut answer),
    )
    .await;
    assert!(cut.is_ok(), "a slow body held under pressure is cut");
    assert!(started.elapsed() < server::BODY_TIMEOUT);
    drop(flood);
    let _ = stop.send(());
}

/// Several peers filling the total: a peer holding fewer gets in by shedding a connection of
/// the peer holding the most; the good client is served every time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_total_the_biggest_holder_gives_way_to_a_new_peer() {
    let limits = server::Limits {
        per_peer: 32,
        total: 64,
        ..server::Limits::EMULATOR
    };
    let (addr, stop) = start_with(limits).await;
    let mut flood = Vec::new();
    for peer in 2..5u8 {
        flood.extend(hold([127, 0, 0, peer], addr, 32, b"").await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let statuses = good_client(addr, 10).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    drop(flood);
    let _ = stop.send(());
}
