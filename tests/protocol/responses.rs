//! Response builders round-trip through `decode`; `decode` reads the families' envelopes.

use apiconform::protocol::{
    aliyun_rpc, decode, request_error_response, tencent_api3, tencent_v2, BodyFormat, FamilyId,
    HttpResponse, OutcomeResult, Params, RequestError, ResponseFormat,
};
use proptest::prelude::*;
use serde_json::json;

use crate::support::shared_dir;

fn obj(v: serde_json::Value) -> Params {
    v.as_object().unwrap().clone()
}

fn json_resp(status: u16, ct: &str, body: &str) -> HttpResponse {
    HttpResponse {
        status,
        headers: vec![("Content-Type".into(), ct.into())],
        body: body.as_bytes().to_vec(),
    }
}

#[test]
fn tencent_api3_builders_round_trip() {
    let ok = tencent_api3::ok("req-1", obj(json!({"TotalCount": 1})));
    assert_eq!(ok.status, 200);
    assert_eq!(ok.header("content-type"), Some("application/json"));
    let out = decode(FamilyId::TencentApi3, &ok);
    assert_eq!(out.result, OutcomeResult::Success);
    assert_eq!(out.request_id.as_deref(), Some("req-1"));
    assert!(out.problems.is_empty(), "{:?}", out.problems);
    assert_eq!(out.body["Response"]["TotalCount"], 1);

    let err = tencent_api3::error("InvalidParameter", "bad", "req-2");
    let out = decode(FamilyId::TencentApi3, &err);
    assert_eq!(
        out.result,
        OutcomeResult::Error {
            code: "InvalidParameter".into(),
            message: "bad".into()
        }
    );
    assert!(out.problems.is_empty());
}

#[test]
fn tencent_api3_decode_records_envelope_problems() {
    let top = json_resp(
        200,
        "application/json",
        r#"{"Error":{"Code":"X","Message":"m"}}"#,
    );
    let out = decode(FamilyId::TencentApi3, &top);
    assert!(matches!(out.result, OutcomeResult::Error { ref code, .. } if code == "X"));
    assert!(out.problems.iter().any(|p| p.contains("outside Response")));
    assert!(out.problems.iter().any(|p| p.contains("missing Response")));

    let charset = json_resp(
        500,
        "application/json; charset=utf-8",
        r#"{"Response":{"RequestId":1}}"#,
    );
    let out = decode(FamilyId::TencentApi3, &charset);
    assert_eq!(out.result, OutcomeResult::Success);
    assert_eq!(out.problems.len(), 3, "{:?}", out.problems);

    let html = json_resp(200, "text/html", "<html>");
    assert!(matches!(
        decode(FamilyId::TencentApi3, &html).result,
        OutcomeResult::Malformed { .. }
    ));
}

#[test]
fn tencent_v2_builders_round_trip_and_problems() {
    let ok = tencent_v2::respond(0, "", obj(json!({"detail": {}})));
    let out = decode(FamilyId::TencentV2, &ok);
    assert_eq!(out.result, OutcomeResult::Success);
    assert_eq!(out.body["codeDesc"], "Success");
    assert!(out.problems.is_empty());
    let err = tencent_v2::respond(4100, "auth", Params::new());
    assert_eq!(
        decode(FamilyId::TencentV2, &err).result,
        OutcomeResult::Error {
            code: "4100".into(),
            message: "auth".into()
        }
    );
    let stringy = json_resp(200, "application/json", r#"{"code":"0"}"#);
    let out = decode(FamilyId::TencentV2, &stringy);
    assert_eq!(out.result, OutcomeResult::Success);
    assert_eq!(out.problems.len(), 2, "{:?}", out.problems);
}

#[test]
fn aliyun_builders_round_trip_in_json_and_xml() {
    let fields = obj(json!({"TotalCount": 2, "Results": {"Result": [
        {"InstanceId": "i-1", "Success": "true", "Code": "200"},
        {"InstanceId": "i-2", "Success": "true", "Code": "200"}]}}));
    for format in [
        ResponseFormat::Json,
        ResponseFormat::Xml,
        ResponseFormat::Default,
    ] {
        let resp = aliyun_rpc::ok("DetachKeyPair", format, "RID", fields.clone());
        let out = decode(FamilyId::AliyunRpc, &resp);
        assert_eq!(out.result, OutcomeResult::Success, "{format:?}");
        assert_eq!(out.request_id.as_deref(), Some("RID"));
        assert!(out.problems.is_empty(), "{:?}", out.problems);
        let ids: Vec<&str> = out.body["Results"]["Result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["InstanceId"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["i-1", "i-2"]);
        let want = if format == ResponseFormat::Json {
            BodyFormat::Json
        } else {
            BodyFormat::Xml
        };
        assert_eq!(out.format, want);

        let resp = aliyun_rpc::error(403, "Forbidden", "a < b & c", "RID", format);
        let out = decode(FamilyId::AliyunRpc, &resp);
        assert_eq!(out.status, 403);
        assert_eq!(
            out.result,
            OutcomeResult::Error {
                code: "Forbidden".into(),
                message: "a < b & c".into()
            }
        );
        assert_eq!(out.body["HostId"], "ecs.aliyuncs.com");
    }
}

#[test]
fn aliyun_decode_flags_problems_and_the_seed_xml_is_malformed() {
    let ok_with_code = json_resp(
        200,
        "application/json",
        r#"{"Code":"Forbidden","RequestId":"r"}"#,
    );
    // The body is an error whatever the status: decoded as one, with the 200 it came with for
    // the oracle to judge on the family's envelope rule.
    let out = decode(FamilyId::AliyunRpc, &ok_with_code);
    assert_eq!(
        (out.status, out.result),
        (
            200,
            OutcomeResult::Error {
                code: "Forbidden".into(),
                message: String::new()
            }
        )
    );
    assert!(out.problems.is_empty(), "{:?}", out.problems);
    let no_code = json_resp(500, "application/json", r#"{"Message":"x"}"#);
    let out = decode(FamilyId::AliyunRpc, &no_code);
    assert!(matches!(out.result, OutcomeResult::Malformed { .. }));
    assert_eq!(out.problems.len(), 2);

    let Some(shared) = shared_dir("seed 003's XML example") else {
        return;
    };
    let seed = std::fs::read_to_string(shared.join("seeds/003_891fbdade6f708d3.txt")).unwrap();
    let start = seed.find("<DetachKeyPairResponse>").expect("seed XML");
    let end = seed.find("</DetachKeyPairResponse>").unwrap() + "</DetachKeyPairResponse>".len();
    let resp = json_resp(200, "text/xml", &seed[start..end]);
    let out = decode(FamilyId::AliyunRpc, &resp);
    assert!(
        matches!(out.result, OutcomeResult::Malformed { .. }),
        "{out:?}"
    );

    let fixed = seed[start..end].replace(
        "    </Result>\n      <Message>",
        "    <Result>\n      <Message>",
    );
    let out = decode(FamilyId::AliyunRpc, &json_resp(200, "text/xml", &fixed));
    assert_eq!(out.result, OutcomeResult::Success, "{out:?}");
    assert_eq!(out.body["Results"]["Result"].as_array().unwrap().len(), 2);
    assert_eq!(out.body["TotalCount"], "2");
}

#[test]
fn request_error_response_uses_each_family_shape() {
    let err = |family, code: &str, status| RequestError {
        family,
        code: code.into(),
        message: "m".into(),
        status,
        action: None,
        format: ResponseFormat::Xml,
    };
    for (e, want_status) in [
        (
            err(FamilyId::TencentApi3, "AuthFailure.SignatureFailure", 200),
            200,
        ),
        (err(FamilyId::TencentV2, "4100", 200), 200),
        (err(FamilyId::AliyunRpc, "SignatureDoesNotMatch", 400), 400),
    ] {
        let resp = request_error_response(&e, "rid");
        assert_eq!(resp.status, want_status);
        let out = decode(e.family, &resp);
        assert_eq!(
            out.result,
            OutcomeResult::Error {
                code: e.code.clone(),
                message: "m".into()
            }
        );
        assert_eq!(out.request_id.as_deref(), Some("rid"));
    }
}

proptest! {
    #[test]
    fn decode_never_panics_on_arbitrary_responses(
        status in any::<u16>(),
        ct in "\\PC{0,30}",
        body in prop::collection::vec(any::<u8>(), 0..300),
        xmlish in "<[A-Za-z/<>&;#x0-9 \"=]{0,60}",
    ) {
        for family in [FamilyId::TencentApi3, FamilyId::TencentV2, FamilyId::AliyunRpc] {
            for b in [body.clone(), xmlish.clone().into_bytes()] {
                let resp = HttpResponse { status, headers: vec![("Content-Type".into(), ct.clone())], body: b };
                let _ = decode(family, &resp);
            }
        }
    }

    #[test]
    fn builders_round_trip_through_decode(
        rid in "\\PC{0,20}",
        code in "[A-Za-z][A-Za-z.]{0,20}",
        message in "[^\u{0}-\u{1f}]{0,40}",
        value in "[^\u{0}-\u{1f}]{0,40}",
        n in 1i64..7000,
    ) {
        let out = decode(FamilyId::TencentApi3, &tencent_api3::ok(&rid, obj(json!({"V": value}))));
        prop_assert_eq!(out.result, OutcomeResult::Success);
        prop_assert_eq!(out.request_id.as_deref(), Some(rid.as_str()));
        let out = decode(FamilyId::TencentApi3, &tencent_api3::error(&code, &message, &rid));
        prop_assert_eq!(out.result, OutcomeResult::Error { code: code.clone(), message: message.clone() });
        let out = decode(FamilyId::TencentV2, &tencent_v2::respond(n, &message, Params::new()));
        prop_assert_eq!(out.result, OutcomeResult::Error { code: n.to_string(), message: message.clone() });
        for format in [ResponseFormat::Json, ResponseFormat::Xml] {
            let out = decode(FamilyId::AliyunRpc, &aliyun_rpc::ok("A", format, &rid, obj(json!({"V": value}))));
            prop_assert_eq!(&out.result, &OutcomeResult::Success);
            prop_assert_eq!(out.request_id.as_deref(), Some(rid.as_str()));
            prop_assert_eq!(out.body["V"].as_str(), Some(value.as_str()));
            let out = decode(FamilyId::AliyunRpc, &aliyun_rpc::error(400, &code, &message, &rid, format));
            prop_assert_eq!(out.result, OutcomeResult::Error { code: code.clone(), message: message.clone() });
        }
    }
}
