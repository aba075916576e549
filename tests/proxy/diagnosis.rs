//! The server side judges what the request breaks, all of it: a misspelt parameter (an SDK's
//! `InstanceId` for `InstanceIds`) breaks both the family's `parameter-known` and the API's
//! required rule, and the documents rank neither first, so either code is right. A target that
//! accepts such a request, or answers a code neither rule allows, is still caught; so is one
//! accepting a request whose only defect is an undefined parameter.

use std::sync::Arc;

use apiconform::emulator::{Config, Emulator};
use apiconform::protocol::{HttpRequest, HttpResponse};
use apiconform::proxy::{Proxy, Side};
use apiconform::run::Target;
use apiconform::spec::Method;

use crate::{cvm_case, options, rules_on, send, set};

/// The answer a [`behind`] target gives to an action (admin calls and reads pass through).
type Rewrite = Arc<dyn Fn(&str, HttpResponse) -> HttpResponse + Send + Sync>;

/// The emulator on loopback behind `rewrite`, which sees the action of each request (the
/// `X-TC-Action` header) and the emulator's answer, and returns the answer to give.
async fn behind(rewrite: Rewrite) -> String {
    let emu = Arc::new(Emulator::new(Config::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .fallback(
            |axum::extract::State((emu, rewrite)): axum::extract::State<(
                Arc<Emulator>,
                Rewrite,
            )>,
             req: axum::extract::Request| async move {
                let (parts, body) = req.into_parts();
                let http = HttpRequest {
                    method: parts.method.as_str().to_string(),
                    target: parts
                        .uri
                        .path_and_query()
                        .map_or("/".to_string(), |pq| pq.as_str().to_string()),
                    headers: parts
                        .headers
                        .iter()
                        .map(|(k, v)| {
                            (
                                k.to_string(),
                                String::from_utf8_lossy(v.as_bytes()).into_owned(),
                            )
                        })
                        .collect(),
                    body: axum::body::to_bytes(body, 1 << 24).await.unwrap().to_vec(),
                };
                let action = http.header("x-tc-action").unwrap_or("").to_string();
                let resp = rewrite(
                    &action,
                    emu.handle(&http, apiconform::emulator::server::now()),
                );
                let mut builder = axum::response::Response::builder().status(resp.status);
                for (k, v) in &resp.headers {
                    builder = builder.header(k.as_str(), v.as_str());
                }
                builder.body(axum::body::Body::from(resp.body)).unwrap()
            },
        )
        .with_state((emu, rewrite));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// A CVM answer in the API 3.0 envelope.
fn tencent(body: serde_json::Value) -> HttpResponse {
    HttpResponse {
        status: 200,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: serde_json::to_vec(&serde_json::json!({ "Response": body })).unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misspelt_parameter_answered_unknown_parameter_is_no_server_finding() {
    let set = set();
    let (api, good) = cvm_case(&set, Method::Post);
    // As the SDK would send a misspelt field: `InstanceId` in the TC3 JSON body.
    let mut misspelt = good.clone();
    let ids = misspelt.params.remove("InstanceIds").unwrap();
    misspelt.params.insert("InstanceId".into(), ids);

    // The correct emulator answers the family's UnknownParameter: right.
    let url = behind(Arc::new(|_, resp| resp)).await;
    let proxy = Proxy::start(&set, options(&url)).await.unwrap();
    let client = Target::new(&format!("http://{}", proxy.addr()), crate::TIMEOUT).unwrap();
    let resp = send(api, &misspelt, &client).await;
    assert!(
        String::from_utf8_lossy(&resp.body).contains("UnknownParameter"),
        "{resp:?}"
    );
    let summary = proxy.stop().await;
    let client_rules: Vec<String> = rules_on(&summary, Side::Client)
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    assert_eq!(
        client_rules,
        ["parameter-known", "instance-ids-required"],
        "{}",
        summary.table()
    );
    assert!(
        rules_on(&summary, Side::Server).is_empty(),
        "{}",
        summary.table()
    );
    // The client-side finding rests on the family's rule and its source.
    let known = &summary.findings[0].finding;
    assert_eq!(
        known.source.as_ref().map(|s| s.doc.as_str()),
        Some("family-api3-common-errors"),
        "{known:?}"
    );

    // A target answering the required rule's MissingParameter is right too; one that accepts
    // the request, or answers a code neither broken rule allows, is caught.
    let missing = tencent(serde_json::json!({
        "Error": {"Code": "MissingParameter", "Message": "InstanceIds"}, "RequestId": "r-1"
    }));
    let accepted = tencent(serde_json::json!({"RequestId": "r-2"}));
    let unrelated = tencent(serde_json::json!({
        "Error": {"Code": "InvalidParameterValue.LimitExceeded", "Message": "x"}, "RequestId": "r-3"
    }));
    // An undefined parameter alone (the table's `InstanceIds` also sent as `instanceIds`): the
    // family's rule alone is broken, and accepting the request fails it.
    let mut extra = good.clone();
    extra
        .params
        .insert("instanceIds".into(), good.params["InstanceIds"].clone());
    for (case, answer, finding) in [
        (&misspelt, missing, None),
        (&misspelt, accepted.clone(), Some("instance-ids-required")),
        (&misspelt, unrelated, Some("instance-ids-required")),
        (&extra, accepted, Some("parameter-known")),
    ] {
        let give = answer.clone();
        let url = behind(Arc::new(move |action, resp| {
            if action == "AssociateInstancesKeyPairs" {
                give.clone()
            } else {
                resp
            }
        }))
        .await;
        let proxy = Proxy::start(&set, options(&url)).await.unwrap();
        let client = Target::new(&format!("http://{}", proxy.addr()), crate::TIMEOUT).unwrap();
        send(api, case, &client).await;
        let summary = proxy.stop().await;
        let server: Vec<String> = rules_on(&summary, Side::Server)
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        let body = String::from_utf8_lossy(&answer.body).into_owned();
        match finding {
            None => assert!(server.is_empty(), "{body}: {}", summary.table()),
            Some(rule) => assert_eq!(server, [rule], "{body}: {}", summary.table()),
        }
    }
}
