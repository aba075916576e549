use std::sync::Arc;

use apiconform::emulator::{server, Config, Emulator};
use apiconform::protocol::{self, Clock, FamilyId, HttpRequest};
use proptest::prelude::*;
use serde_json::json;

use crate::support::*;

fn arb_request() -> impl Strategy<Value = HttpRequest> {
    let method = prop_oneof![
        Just("GET".to_string()),
        Just("POST".to_string()),
        Just("PUT".to_string()),
        "[A-Z]{0,8}"
    ];
    let path = prop_oneof![
        Just("/".to_string()),
        Just("/v2/index.php".to_string()),
        Just("/__apiconform/world".to_string()),
        "/[ -~]{0,20}"
    ];
    let query = prop_oneof![
        Just(String::new()),
        "[A-Za-z0-9=&%._-]{0,80}",
        Just("Action=DetachKeyPair&AccessKeyId=testid&Signature=x".to_string()),
        Just("Action=UnBindInstanceKey&SecretId=x&instanceIds.0=ins-1&Signature=y".to_string()),
    ];
    let header = prop_oneof![
        Just((
            "X-TC-Action".to_string(),
            "AssociateInstancesKeyPairs".to_string()
        )),
        Just((
            "Authorization".to_string(),
            "TC3-HMAC-SHA256 Credential=a/b".to_string()
        )),
        Just((
            "Authorization".to_string(),
            "ACS3-HMAC-SHA256 garbage".to_string()
        )),
        Just(("x-acs-action".to_string(), "DetachKeyPair".to_string())),
        Just(("Content-Type".to_string(), "application/json".to_string())),
        Just((
            "Content-Type".to_string(),
            "application/x-www-form-urlencoded".to_string()
        )),
        ("[A-Za-z-]{1,12}", "[ -~]{0,30}"),
    ];
    (
        method,
        path,
        query,
        proptest::collection::vec(header, 0..6),
        proptest::collection::vec(any::<u8>(), 0..200),
    )
        .prop_map(|(method, path, query, headers, body)| HttpRequest {
            method,
            target: if query.is_empty() {
                path
            } else {
                format!("{path}?{query}")
            },
            headers,
            body,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Whatever arrives, the emulator answers (never panics) with a body a family decoder reads.
    #[test]
    fn arbitrary_requests_get_an_answer_never_a_panic(req in arb_request()) {
        let e = emu(&[]);
        let resp = e.handle(&req, NOW);
        prop_assert!(resp.status >= 200 && resp.status < 600);
        prop_assert!(!resp.body.is_empty());
        for family in [FamilyId::TencentApi3, FamilyId::TencentV2, FamilyId::AliyunRpc] {
            let _ = protocol::decode(family, &resp);
        }
    }
}

#[test]
fn unknown_action_and_version_get_the_family_codes() {
    let e = emu(&[]);
    let mut call = cvm("RebootInstances", json!({}));
    assert_eq!(code(&send(&e, &call).1), "InvalidAction");
    call = cvm("AssociateInstancesKeyPairs", json!({}));
    call.version = Some("2099-01-01".into());
    assert_eq!(code(&send(&e, &call).1), "NoSuchVersion");
}

/// Codes of `n` calls made in the same second.
fn codes_of(emu: &Emulator, call: &protocol::Call, n: usize) -> Vec<String> {
    (0..n).map(|_| code(&send(emu, call).1)).collect()
}

fn limited(codes: &[String]) -> usize {
    codes
        .iter()
        .filter(|c| *c == "RequestLimitExceeded")
        .count()
}

fn absent() -> serde_json::Value {
    json!({"InstanceIds": ["ins-zz00zz00"], "KeyIds": ["skey-zz00zz00"]})
}

/// `--rate-limits documented`: the documented actions are limited per action (CVM Associate
/// and Disassociate 10/s each, ECM Disassociate 20/s); the read calls, which no document
/// limits, are not.
#[test]
fn documented_rate_limits_apply_only_when_asked() {
    let always = Emulator::new(Config {
        rate_limits: true,
        ..Config::default()
    });
    let associate = cvm("AssociateInstancesKeyPairs", absent());
    let codes = codes_of(&always, &associate, 12);
    assert_eq!(limited(&codes[..10]), 0, "CVM: 10 requests/s: {codes:?}");
    assert_eq!(limited(&codes[10..]), 2, "{codes:?}");
    // Another action has a window of its own; a read call has no limit at all.
    let disassociate = cvm("DisassociateInstancesKeyPairs", absent());
    assert_eq!(limited(&codes_of(&always, &disassociate, 10)), 0);
    let describe = cvm("DescribeInstances", json!({}));
    assert_eq!(limited(&codes_of(&always, &describe, 30)), 0);
    let codes = codes_of(&always, &ecm(absent()), 22);
    assert_eq!(limited(&codes), 2, "ECM: 20 requests/s: {codes:?}");
    let open = emu(&[]);
    assert_eq!(limited(&codes_of(&open, &associate, 30)), 0);
}

fn switch(emu: &Emulator, query: &str) -> (u16, String) {
    let req = HttpRequest {
        method: "POST".into(),
        target: format!("/__apiconform/rate-limits?{query}"),
        headers: vec![("Host".into(), "127.0.0.1:9000".into())],
        body: vec![],
    };
    let resp = emu.handle(&req, NOW);
    (
        resp.status,
        String::from_utf8_lossy(&resp.body).into_owned(),
    )
}

/// The admin view switches enforcement on and off at run time, for one action of one version
/// (what `run`'s probe does) or for every documented limit.
#[test]
fn the_admin_view_switches_rate_limits_on_and_off() {
    let e = emu(&[]);
    let associate = cvm("AssociateInstancesKeyPairs", absent());
    let disassociate = cvm("DisassociateInstancesKeyPairs", absent());
    let (status, body) = switch(
        &e,
        "enforce=on&action=DisassociateInstancesKeyPairs&version=2017-03-12",
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("DisassociateInstancesKeyPairs"), "{body}");
    assert_eq!(limited(&codes_of(&e, &disassociate, 15)), 5);
    // Only that action of that version: CVM Associate and ECM's Disassociate go on unlimited.
    assert_eq!(limited(&codes_of(&e, &associate, 15)), 0);
    assert_eq!(limited(&codes_of(&e, &ecm(absent()), 25)), 0);
    assert_eq!(switch(&e, "enforce=off").0, 200);
    assert_eq!(limited(&codes_of(&e, &disassociate, 15)), 0);
    // Everything at once; switching on starts the windows afresh.
    assert_eq!(switch(&e, "enforce=on").0, 200);
    assert_eq!(limited(&codes_of(&e, &associate, 15)), 5);
    assert_eq!(limited(&codes_of(&e, &ecm(absent()), 25)), 5);
    assert_eq!(switch(&e, "enforce=off").0, 200);
    assert_eq!(limited(&codes_of(&e, &associate, 15)), 0);
    assert_eq!(switch(&e, "enforce=maybe").0, 400);
}

/// The fault `never-throttles` ignores every switch.
#[test]
fn never_throttles_ignores_the_limits() {
    let e = Emulator::new(Config {
        rate_limits: true,
        faults: [apiconform::emulator::Fault::NeverThrottles].into(),
        ..Config::default()
    });
    assert_eq!(switch(&e, "enforce=on").0, 200);
    let associate = cvm("AssociateInstancesKeyPairs", absent());
    assert_eq!(limited(&codes_of(&e, &associate, 30)), 0);
}

async fn start(emu: Arc<Emulator>) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(server::serve(listener, emu, async {
        let _ = rx.await;
    }));
    (addr, tx)
}

async fn post(
    client: &reqwest::Client,
    addr: &str,
    call: &apiconform::protocol::Call,
    nonce: u64,
) -> apiconform::protocol::Outcome {
    let mut call = call.clone();
    call.host = addr.to_string();
    let req = protocol::encode(
        &call,
        &tencent(),
        &Clock {
            timestamp: server::now(),
            nonce: nonce.to_string(),
        },
    )
    .unwrap();
    let mut b = client.post(format!("http://{addr}{}", req.target));
    for (k, v) in &req.headers {
        if !k.eq_ignore_ascii_case("host") {
            b = b.header(k.as_str(), v.as_str());
        }
    }
    let resp = b.body(req.body).send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body = resp.bytes().await.unwrap().to_vec();
    protocol::decode(
        call.family,
        &apiconform::protocol::HttpResponse {
            status,
            headers,
            body,
        },
    )
}

/// Many tasks bind different keys to the same five instances at once, some batches failing on a
/// Windows instance: every instance must always end with the same keys, and a failed batch's key
/// must never appear.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_batches_are_never_half_applied() {
    let emu = Arc::new(Emulator::new(Config::default()));
    let (addr, stop) = start(emu.clone()).await;
    let batch: Vec<String> = (10..15).map(|n| format!("ins-cs{n:06}")).collect();
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for t in 0..16u64 {
        let (client, addr, batch) = (client.clone(), addr.clone(), batch.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..20u64 {
                let failing = (t + i) % 3 == 0;
                let mut ids = batch.clone();
                let key = if failing {
                    ids.insert(2, "ins-cw000000".into()); // Windows: the batch must fail whole
                    "skey-ck000099".to_string()
                } else {
                    format!("skey-ck{:06}", 20 + t)
                };
                let call = cvm(
                    "AssociateInstancesKeyPairs",
                    json!({"InstanceIds": ids, "KeyIds": [key]}),
                );
                let out = post(&client, &addr, &call, t * 1000 + i).await;
                assert_eq!(code(&out) == "success", !failing, "{out:?}");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let world = emu.world();
    let keys: Vec<&Vec<String>> = batch
        .iter()
        .map(|id| &world.instances.iter().find(|i| &i.id == id).unwrap().keys)
        .collect();
    assert!(
        keys.windows(2).all(|w| w[0] == w[1]),
        "half-applied batch: {keys:?}"
    );
    assert_eq!(keys[0].len(), 1);
    assert_ne!(
        keys[0][0], "skey-ck000099",
        "a failed batch's key was applied"
    );
    let _ = stop.send(());
}

#[tokio::test]
async fn oversized_bodies_get_a_family_error_not_a_hang() {
    let emu = Arc::new(Emulator::new(Config::default()));
    let (addr, stop) = start(emu).await;
    let big = vec![b'a'; server::MAX_BODY + 1];
    let resp = reqwest::Client::new()
        .post(format!("http://{addr}/"))
        .header("Content-Type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(
        body["Response"]["Error"]["Code"], "InvalidParameter",
        "{body}"
    );
    let _ = stop.send(());
}

/// A form with more parameters than any documented request needs is refused with the family's
/// parameter error, before anything is decoded or authenticated (decoding 128k keys used to
/// take half a minute of both worker threads); the largest documented request still passes.
#[test]
fn a_form_with_too_many_parameters_is_refused_before_decoding() {
    let e = emu(&[]);
    let many: String = (0..5000)
        .map(|n| format!("X.{n}=v"))
        .collect::<Vec<_>>()
        .join("&");
    let form = |path: &str, extra: &str| HttpRequest {
        method: "POST".into(),
        target: path.into(),
        headers: vec![(
            "Content-Type".into(),
            "application/x-www-form-urlencoded".into(),
        )],
        body: format!("{extra}{many}").into_bytes(),
    };
    for (req, family) in [
        (
            form("/", "Action=AssociateInstancesKeyPairs&"),
            FamilyId::TencentApi3,
        ),
        (
            form("/v2/index.php", "Action=UnBindInstanceKey&"),
            FamilyId::TencentV2,
        ),
        (
            form("/", "AccessKeyId=testid&Action=DetachKeyPair&"),
            FamilyId::AliyunRpc,
        ),
    ] {
        let resp = e.handle(&req, NOW);
        let out = protocol::decode(family, &resp);
        let want = match family {
            FamilyId::TencentV2 => "4000",
            _ => "InvalidParameter",
        };
        assert_eq!(
            code(&out),
            want,
            "{family:?}: {}",
            String::from_utf8_lossy(&resp.body)
        );
        assert!(
            String::from_utf8_lossy(&resp.body).contains("at most 1000"),
            "{family:?}: the answer says the limit"
        );
    }
    // 100 instances and 100 keys on a v1 form: well within the bound, and served.
    let ids: Vec<String> = (0..100).map(|n| format!("ins-cs{n:06}")).collect();
    let keys: Vec<String> = (0..100).map(|n| format!("skey-ck{n:06}")).collect();
    let call = cvm(
        "AssociateInstancesKeyPairs",
        json!({"InstanceIds": ids, "KeyIds": keys}),
    );
    assert_ne!(code(&send(&e, &call).1), "InvalidParameter");
}
