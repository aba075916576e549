use std::sync::Arc;

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
