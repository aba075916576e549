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
/// connections gets a clear `503` past the cap instead of starving new requests (issue 15,
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
    // Idle connections up to the cap, then one more: 503, said plainly.
    let mut idle = Vec::new();
    for _ in 0..server::MAX_CONNECTIONS {
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
