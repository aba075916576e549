//! Byte-exact requests sent by the official SDKs (`sdk-captures/*.raw`): routed, decoded and
//! verified with the documentation's example credentials; then tampered with.

use apiconform::protocol::{
    parse_request, verify, FamilyId, HttpRequest, ParsedRequest, RequestError, ResponseFormat,
    SignatureMethod,
};
use serde_json::{json, Value};

use crate::support::{codes, example_creds, parse_raw, reference_files, window, Nonces, Secrets};

struct Expect {
    family: FamilyId,
    action: &'static str,
    version: Option<&'static str>,
    region: Option<&'static str>,
    signature: SignatureMethod,
    params: Value,
}

fn expectation(file: &str) -> Expect {
    use FamilyId::*;
    use SignatureMethod::*;
    let assoc = "AssociateInstancesKeyPairs";
    let disassoc = "DisassociateInstancesKeyPairs";
    let one = json!({"InstanceIds": ["ins-1e4r6y8i"], "KeyIds": ["skey-4e5ty7i8"]});
    let e = |family, action, version, region, signature, params| Expect {
        family,
        action,
        version,
        region,
        signature,
        params,
    };
    let cvm = Some("2017-03-12");
    let gz = Some("ap-guangzhou");
    match file.split('-').next().unwrap() {
        "01" => e(
            TencentApi3,
            assoc,
            cvm,
            gz,
            Tc3HmacSha256,
            json!({"InstanceIds": ["ins-1e4r6y8i", "ins-3e56fg78"], "KeyIds": ["skey-4e5ty7i8"]}),
        ),
        "01b" => e(TencentApi3, assoc, cvm, gz, V1HmacSha256, one),
        "01c" => e(
            TencentApi3,
            assoc,
            cvm,
            gz,
            V1HmacSha1,
            json!({"InstanceIds": ["ins-1e4r6y8i"], "KeyIds": ["skey-4e5ty7i8"], "ForceStop": "False"}),
        ),
        "01d" => e(TencentApi3, assoc, cvm, gz, Tc3HmacSha256, one),
        "02" => e(
            TencentApi3,
            disassoc,
            cvm,
            gz,
            Tc3HmacSha256,
            json!({"InstanceIds": ["ins-w34e5rl9"], "KeyIds": ["skey-e3r6y7ji"], "ForceStop": true}),
        ),
        "03" => e(
            TencentApi3,
            disassoc,
            Some("2019-07-19"),
            None,
            Tc3HmacSha256,
            json!({"InstanceIds": ["ein-ss23fw23"], "KeyIds": ["skey-3cvmq2vn"]}),
        ),
        "03b" => e(
            TencentApi3,
            disassoc,
            Some("2019-07-19"),
            gz,
            V1HmacSha256,
            json!({"InstanceIds": ["ein-ss23fw23"], "KeyIds": ["skey-3cvmq2vn"]}),
        ),
        "04" => e(
            TencentV2,
            "UnBindInstanceKey",
            None,
            Some("gz"),
            V1HmacSha1,
            json!({"keyId": "skey-xxxxx", "instanceIds": ["ins-aaaa1111", "ins-bbbb2222"]}),
        ),
        "04b" => e(
            TencentV2,
            "UnBindInstanceKey",
            None,
            Some("gz"),
            V1HmacSha256,
            json!({"keyId": "skey-xxxxx", "instanceIds": ["ins-aaaa1111"]}),
        ),
        "05" => e(
            AliyunRpc,
            "DetachKeyPair",
            Some("2014-05-26"),
            Some("cn-qingdao"),
            RpcHmacSha1,
            json!({"KeyPairName": "test", "InstanceIds": "[\"i-xxxxxxx\", \"i-yyyyyyy\"]", "RegionId": "cn-qingdao"}),
        ),
        "05b" => e(
            AliyunRpc,
            "DetachKeyPair",
            Some("2014-05-26"),
            Some("cn-qingdao"),
            Acs3HmacSha256,
            json!({"InstanceIds": "[\"i-xxxxxxx\"]", "KeyPairName": "test", "RegionId": "cn-qingdao"}),
        ),
        "05c" => e(
            AliyunRpc,
            "DetachKeyPair",
            Some("2014-05-26"),
            Some("cn-qingdao"),
            RpcHmacSha1,
            json!({"InstanceIds": "[\"i-xxxxxxx\"]", "KeyPairName": "test", "RegionId": "cn-qingdao"}),
        ),
        other => panic!("sdk-captures/{file}: no expectations for capture {other}; add them"),
    }
}

/// The SDK captures; `None` (the test skips, saying so) without the shared folder.
fn captures() -> Option<Vec<(String, HttpRequest)>> {
    let files = reference_files("sdk captures", "sdk-captures", ".raw")?;
    Some(
        files
            .into_iter()
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (name, parse_raw(&std::fs::read(&p).unwrap()))
            })
            .collect(),
    )
}

fn good_secrets(family: FamilyId) -> Secrets {
    let (id, secret) = example_creds(family);
    Secrets::one(family, id, secret)
}

fn check(
    req: &HttpRequest,
    secrets: &Secrets,
    now: i64,
    nonces: &Nonces,
) -> Result<ParsedRequest, RequestError> {
    let parsed = parse_request(req)?;
    verify(req, &parsed, secrets, now, nonces)?;
    Ok(parsed)
}

#[test]
fn every_capture_routes_decodes_and_verifies() {
    let Some(all) = captures() else { return };
    assert_eq!(
        all.len(),
        12,
        "captures: {:?}",
        all.iter().map(|c| &c.0).collect::<Vec<_>>()
    );
    for (name, req) in &all {
        let want = expectation(name);
        let parsed = parse_request(req).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(parsed.family, want.family, "{name}");
        assert_eq!(parsed.action, want.action, "{name}");
        assert_eq!(parsed.version.as_deref(), want.version, "{name}");
        assert_eq!(parsed.region.as_deref(), want.region, "{name}");
        assert_eq!(parsed.signature, want.signature, "{name}");
        assert_eq!(Value::Object(parsed.params.clone()), want.params, "{name}");
        let (id, _) = example_creds(want.family);
        assert_eq!(parsed.secret_id, id, "{name}");
        if !name.contains("post-json") && parsed.params.values().any(Value::is_array) {
            assert_eq!(parsed.index_base, Some(0), "{name}: SDKs flatten 0-based");
        }
        if want.signature == SignatureMethod::Tc3HmacSha256 {
            let service = if name.contains("-ecm-") { "ecm" } else { "cvm" };
            assert_eq!(parsed.service.as_deref(), Some(service), "{name}");
        }
        if want.family == FamilyId::AliyunRpc {
            assert_eq!(
                parsed.format,
                ResponseFormat::Json,
                "{name}: JSON, json or ACS3"
            );
        }
        verify(
            req,
            &parsed,
            &good_secrets(want.family),
            parsed.timestamp,
            &Nonces::default(),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

/// Changes one character of a business value inside the signed material.
fn tamper(req: &HttpRequest) -> HttpRequest {
    let mut out = req.clone();
    for needle in ["ins-", "ein-", "i-xxxxxxx"] {
        if let Some(i) = out.target.find(needle) {
            out.target.replace_range(i..i + 1, "j");
            return out;
        }
        if let Some(i) = out
            .body
            .windows(needle.len())
            .position(|w| w == needle.as_bytes())
        {
            out.body[i] = b'j';
            return out;
        }
    }
    panic!("nothing to tamper with in {req:?}");
}

#[test]
fn tampered_wrong_secret_unknown_id_expired_and_replayed_captures_fail() {
    for (name, req) in captures().unwrap_or_default() {
        let family = parse_request(&req).unwrap().family;
        let (sig_code, unknown_code, expired_code, replay_code) = codes(family);
        let (id, secret) = example_creds(family);
        let ts = parse_request(&req).unwrap().timestamp;
        let good = good_secrets(family);

        let err = check(&tamper(&req), &good, ts, &Nonces::default()).unwrap_err();
        assert_eq!(err.code, sig_code, "{name}: tampered");
        if family == FamilyId::AliyunRpc {
            assert_eq!(err.status, 400, "{name}");
            assert!(err.message.starts_with(
                "Specified signature is not matched with our calculation. server string to sign is:"
            ));
        } else {
            assert_eq!(err.status, 200, "{name}");
        }

        let wrong = Secrets::one(family, id, &format!("{secret}x"));
        let err = check(&req, &wrong, ts, &Nonces::default()).unwrap_err();
        assert_eq!(err.code, sig_code, "{name}: wrong secret");

        let unknown = Secrets::one(family, "someone-else", secret);
        let err = check(&req, &unknown, ts, &Nonces::default()).unwrap_err();
        assert_eq!(err.code, unknown_code, "{name}: unknown id");
        if family == FamilyId::AliyunRpc {
            assert_eq!(err.status, 404);
        }

        for now in [ts + window(family) + 1, ts - window(family) - 1] {
            let err = check(&req, &good, now, &Nonces::default()).unwrap_err();
            assert_eq!(err.code, expired_code, "{name}: expired");
        }
        assert!(check(&req, &good, ts + window(family), &Nonces::default()).is_ok());

        let nonces = Nonces::default();
        check(&req, &good, ts, &nonces).unwrap();
        let again = check(&req, &good, ts, &nonces);
        if family == FamilyId::TencentApi3 {
            assert!(again.is_ok(), "{name}: API 3.0 documents no replay code");
        } else {
            assert_eq!(again.unwrap_err().code, replay_code, "{name}: replay");
        }
    }
}

fn capture(prefix: &str) -> Option<HttpRequest> {
    captures().map(|all| {
        all.into_iter()
            .find(|(n, _)| n.starts_with(&format!("{prefix}-")))
            .expect("capture")
            .1
    })
}

fn set_header(req: &mut HttpRequest, name: &str, value: Option<&str>) {
    req.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
    if let Some(v) = value {
        req.headers.push((name.to_string(), v.to_string()));
    }
}

fn code_of(req: &HttpRequest) -> (String, u16) {
    let family = parse_request(req).map(|p| p.family);
    let err = match family {
        Ok(f) => check(req, &good_secrets(f), 1795384368, &Nonces::default()).unwrap_err(),
        Err(e) => e,
    };
    (err.code, err.status)
}

#[test]
fn malformed_requests_get_the_documented_codes() {
    let Some(tc3) = capture("01") else { return };
    let mut r = tc3.clone();
    set_header(
        &mut r,
        "Authorization",
        Some("TC3-HMAC-SHA256 Credential=broken"),
    );
    assert_eq!(code_of(&r).0, "AuthFailure.InvalidAuthorization");
    let mut r = tc3.clone();
    set_header(&mut r, "Authorization", None);
    assert_eq!(code_of(&r).0, "MissingParameter");
    let mut r = tc3.clone();
    set_header(&mut r, "X-TC-Timestamp", None);
    assert_eq!(code_of(&r).0, "MissingParameter");
    let mut r = tc3.clone();
    r.body = b"{not json".to_vec();
    assert_eq!(code_of(&r).0, "InvalidParameter");
    let mut r = tc3.clone();
    r.method = "PUT".into();
    assert_eq!(code_of(&r), ("UnsupportedProtocol".to_string(), 200));
    let mut r = tc3.clone();
    set_header(&mut r, "X-TC-Timestamp", Some("-9223372036854775808"));
    assert_eq!(code_of(&r).0, "AuthFailure.SignatureFailure");

    let Some(v1) = capture("01b") else { return };
    let mut r = v1.clone();
    r.target = r.target.replace("&Nonce=7200471765551931143", "");
    assert_eq!(code_of(&r).0, "MissingParameter");
    let mut r = v1.clone();
    r.target = r
        .target
        .replace("Timestamp=1795384401", "Timestamp=-9223372036854775808");
    assert_eq!(code_of(&r).0, "AuthFailure.SignatureFailure");

    let Some(v2) = capture("04") else { return };
    let mut r = v2.clone();
    r.method = "DELETE".into();
    assert_eq!(code_of(&r).0, "4600");
    let mut r = v2.clone();
    r.target = r.target.replace("&Signature=", "&Signaturx=");
    assert_eq!(code_of(&r).0, "4000");

    let Some(rpc) = capture("05") else { return };
    let mut r = rpc.clone();
    r.target = r.target.replace("&Action=DetachKeyPair", "");
    assert_eq!(code_of(&r), ("MissingParameter".to_string(), 400));
    let mut r = rpc.clone();
    r.target = r.target.replace("&SignatureNonce=", "&SignatureNonc=");
    assert_eq!(code_of(&r), ("IncompleteSignature".to_string(), 400));
    let mut r = rpc.clone();
    r.target = r
        .target
        .replace("Timestamp=2026-11-22T21%3A52%3A49Z", "Timestamp=yesterday");
    assert_eq!(code_of(&r), ("IllegalTimestamp".to_string(), 400));

    let Some(acs3) = capture("05b") else { return };
    let mut r = acs3.clone();
    r.body = b"x".to_vec();
    assert_eq!(code_of(&r), ("SignatureDoesNotMatch".to_string(), 400));
    let mut r = acs3.clone();
    set_header(&mut r, "x-acs-date", Some("2026-11-22 21:52:49"));
    assert_eq!(code_of(&r), ("IllegalTimestamp".to_string(), 400));
    let mut r = acs3.clone();
    set_header(&mut r, "Authorization", Some("ACS3-HMAC-SHA256 nonsense"));
    assert_eq!(code_of(&r), ("IncompleteSignature".to_string(), 400));
}
