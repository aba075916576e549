//! What each family's authentication must refuse beyond a wrong signature (issue 15, defects
//! 3–5): a signature that leaves out what the scheme signs, a credential scope naming another
//! product, API 2.0 common parameters missing or mistyped. Each refused request is otherwise
//! correctly signed, so only the rule under test can refuse it; the untouched request passes.

use apiconform::protocol::{self, aliyun_rpc, tencent_api3, Clock, HttpRequest, SignatureMethod};
use serde_json::json;

use crate::support::*;

fn signed(call: &apiconform::protocol::Call, nonce: &str) -> HttpRequest {
    let creds = if call.family == protocol::FamilyId::AliyunRpc {
        alibaba()
    } else {
        tencent()
    };
    protocol::encode(
        call,
        &creds,
        &Clock {
            timestamp: NOW,
            nonce: nonce.into(),
        },
    )
    .unwrap()
}

fn answer(req: &HttpRequest, family: protocol::FamilyId) -> String {
    code(&protocol::decode(family, &emu(&[]).handle(req, NOW)))
}

/// Re-signs a TC3 request over `signed` headers only, under `service`.
fn tc3_resigned(req: &HttpRequest, signed: &[&str], service: &str) -> HttpRequest {
    let headers: Vec<(String, String)> = signed
        .iter()
        .map(|h| {
            (
                h.to_string(),
                req.header(h).unwrap_or("").trim().to_string(),
            )
        })
        .collect();
    // The credential date of the original signature (`Credential=ID/DATE/service/tc3_request`).
    let auth = req.header("authorization").unwrap();
    let date = auth.split('/').nth(1).unwrap().to_string();
    let parts = tencent_api3::tc3_sign(
        &req.method,
        req.path(),
        "",
        &headers,
        &req.body,
        service,
        NOW,
        &date,
        &tencent().secret,
    );
    let mut out = req.clone();
    for (k, v) in &mut out.headers {
        if k.eq_ignore_ascii_case("authorization") {
            *v = format!(
                "TC3-HMAC-SHA256 Credential={}/{date}/{service}/tc3_request, SignedHeaders={}, Signature={}",
                tencent().id,
                signed.join(";"),
                parts.signature
            );
        }
    }
    out
}

#[test]
fn tc3_must_sign_host_and_content_type_under_the_products_service() {
    let call = cvm("DescribeInstances", json!({}));
    let req = signed(&call, "1");
    let api3 = protocol::FamilyId::TencentApi3;
    assert_eq!(answer(&req, api3), "success");
    let resigned = tc3_resigned(&req, &["content-type", "host"], "cvm");
    assert_eq!(
        answer(&resigned, api3),
        "success",
        "the re-signing is right"
    );
    for (signed, service) in [
        (&["host"][..], "cvm"),
        (&["content-type"][..], "cvm"),
        (&["content-type", "host"][..], "nonsense"),
        (&["content-type", "host"][..], "ecm"),
    ] {
        let req = tc3_resigned(&req, signed, service);
        assert_eq!(
            answer(&req, api3),
            "AuthFailure.SignatureFailure",
            "{signed:?} under {service}"
        );
    }
}

#[test]
fn acs3_must_sign_every_x_acs_header() {
    let mut call = ecs(
        "DescribeInstances",
        json!({"RegionId": "cn-hangzhou"}),
        protocol::ResponseFormat::Json,
    );
    call.signature = SignatureMethod::Acs3HmacSha256;
    let req = signed(&call, "acs3-nonce-1");
    let rpc = protocol::FamilyId::AliyunRpc;
    assert_eq!(answer(&req, rpc), "success");
    // Take x-acs-action out of SignedHeaders and sign the rest again: the action header can now
    // be rewritten (DescribeInstances into DetachKeyPair) without breaking the signature.
    let auth = req.header("authorization").unwrap().to_string();
    let signed_list = auth
        .split("SignedHeaders=")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap()
        .to_string();
    let kept: Vec<&str> = signed_list
        .split(';')
        .filter(|h| *h != "x-acs-action")
        .collect();
    let headers: Vec<(String, String)> = kept
        .iter()
        .map(|h| (h.to_string(), req.header(h).unwrap().to_string()))
        .collect();
    let query: Vec<(String, String)> = form_urlencoded::parse(req.query().as_bytes())
        .into_owned()
        .collect();
    let (_, _, sig, _) = aliyun_rpc::acs3_sign(
        &req.method,
        req.path(),
        &query,
        &headers,
        req.header("x-acs-content-sha256").unwrap(),
        &alibaba().secret,
    );
    let mut forged = req.clone();
    for (k, v) in &mut forged.headers {
        if k.eq_ignore_ascii_case("authorization") {
            *v = format!(
                "ACS3-HMAC-SHA256 Credential={},SignedHeaders={},Signature={sig}",
                alibaba().id,
                kept.join(";")
            );
        }
    }
    assert_eq!(answer(&forged, rpc), "SignatureDoesNotMatch");
}

#[test]
fn api2_common_parameters_are_required_and_typed() {
    let call = v2(json!({"keyId": "skey-ck000000", "instanceIds": ["ins-cs000000"]}));
    let v2f = protocol::FamilyId::TencentV2;
    assert_ne!(answer(&signed(&call, "123"), v2f), "4000");
    // A nonce that is not a positive integer.
    assert_eq!(answer(&signed(&call, "12a"), v2f), "4000");
    assert_eq!(answer(&signed(&call, "0"), v2f), "4000");
    // No Region.
    let mut no_region = call.clone();
    no_region.region = None;
    assert_eq!(answer(&signed(&no_region, "124"), v2f), "4000");
    // The same nonce written another way is the same nonce: a replay.
    let e = emu(&[]);
    let first = signed(&call, "125");
    let again = signed(&call, "0125");
    assert_ne!(code(&protocol::decode(v2f, &e.handle(&first, NOW))), "4500");
    assert_eq!(code(&protocol::decode(v2f, &e.handle(&again, NOW))), "4500");
}

/// A parameter the action does not define is refused with the family's `UnknownParameter` (API
/// 2.0: 4000), not dropped — a batch item renamed `InstanceIds_1` would otherwise vanish; a TC3
/// POST whose Content-Type is neither JSON nor a form is refused, not read as JSON on a guess
/// (issue 15, defect 6).
#[test]
fn undefined_parameters_and_unread_content_types_are_refused() {
    let api3 = protocol::FamilyId::TencentApi3;
    let good = json!({"InstanceIds": ["ins-cs000000"], "KeyIds": ["skey-ck000001"]});
    let call = cvm("AssociateInstancesKeyPairs", good.clone());
    assert_eq!(answer(&signed(&call, "1"), api3), "success");
    let mut renamed = good.clone();
    renamed["InstanceIds_1"] = json!("ins-cs000001");
    let call = cvm("AssociateInstancesKeyPairs", renamed);
    assert_eq!(answer(&signed(&call, "2"), api3), "UnknownParameter");
    // text/plain on a TC3 POST, re-signed so that only the content type is wrong.
    let call = cvm("AssociateInstancesKeyPairs", good);
    let mut plain = signed(&call, "3");
    for (k, v) in &mut plain.headers {
        if k.eq_ignore_ascii_case("content-type") {
            *v = "text/plain".into();
        }
    }
    let plain = tc3_resigned(&plain, &["content-type", "host"], "cvm");
    assert_eq!(answer(&plain, api3), "InvalidParameter");
    // API 2.0.
    let v2f = protocol::FamilyId::TencentV2;
    let call =
        v2(json!({"keyId": "skey-ck000000", "instanceIds": ["ins-cs000000"], "instanceId": "x"}));
    assert_eq!(answer(&signed(&call, "126"), v2f), "4000");
}
