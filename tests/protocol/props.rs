//! Properties over every family x method x signature scheme: parse_request(encode(x)) recovers
//! the parameters (forms stringify scalars and drop empty lists; Alibaba sends lists as JSON
//! text), verify(encode(x)) holds, and tampering, another secret or a clock out of the window
//! fail with the family's code.

use apiconform::protocol::{
    encode, parse_request, verify, Call, Clock, Credentials, FamilyId, HttpRequest, Method, Params,
    ResponseFormat, SignatureMethod,
};
use proptest::prelude::*;
use serde_json::Value;

use crate::support::{codes, window, Nonces, Secrets};

const COMBOS: &[(FamilyId, Method, SignatureMethod)] = &[
    (
        FamilyId::TencentApi3,
        Method::Post,
        SignatureMethod::Tc3HmacSha256,
    ),
    (
        FamilyId::TencentApi3,
        Method::Get,
        SignatureMethod::Tc3HmacSha256,
    ),
    (
        FamilyId::TencentApi3,
        Method::Get,
        SignatureMethod::V1HmacSha1,
    ),
    (
        FamilyId::TencentApi3,
        Method::Post,
        SignatureMethod::V1HmacSha1,
    ),
    (
        FamilyId::TencentApi3,
        Method::Get,
        SignatureMethod::V1HmacSha256,
    ),
    (
        FamilyId::TencentApi3,
        Method::Post,
        SignatureMethod::V1HmacSha256,
    ),
    (
        FamilyId::TencentV2,
        Method::Get,
        SignatureMethod::V1HmacSha1,
    ),
    (
        FamilyId::TencentV2,
        Method::Post,
        SignatureMethod::V1HmacSha1,
    ),
    (
        FamilyId::TencentV2,
        Method::Get,
        SignatureMethod::V1HmacSha256,
    ),
    (
        FamilyId::TencentV2,
        Method::Post,
        SignatureMethod::V1HmacSha256,
    ),
    (
        FamilyId::AliyunRpc,
        Method::Get,
        SignatureMethod::RpcHmacSha1,
    ),
    (
        FamilyId::AliyunRpc,
        Method::Post,
        SignatureMethod::RpcHmacSha1,
    ),
    (
        FamilyId::AliyunRpc,
        Method::Get,
        SignatureMethod::Acs3HmacSha256,
    ),
    (
        FamilyId::AliyunRpc,
        Method::Post,
        SignatureMethod::Acs3HmacSha256,
    ),
];

const MARKER: &str = "qqqqmarker";

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,12}",
        "[&=+%~ *a-z/?#]{0,12}",
        Just(String::new()),
        Just("a b&c=d+e%20~f*".to_string()),
        Just("中文 ünïcødé 🙂".to_string()),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => text().prop_map(Value::String),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => any::<i32>().prop_map(Value::from),
        3 => prop::collection::vec(text(), 0..6).prop_map(Value::from),
        1 => prop::collection::vec(text(), 100..130).prop_map(Value::from),
    ]
}

fn params() -> impl Strategy<Value = Params> {
    let names = prop::sample::select(vec![
        "InstanceIds",
        "KeyIds",
        "KeyName",
        "Description",
        "ForceStop",
        "Zone",
        "instanceIds",
        "Tag",
    ]);
    prop::collection::vec((names, value()), 0..5).prop_map(|items| {
        let mut p = Params::new();
        for (k, v) in items {
            p.insert(k.to_string(), v);
        }
        p.insert("Marker".into(), Value::String(MARKER.into()));
        p
    })
}

fn call(combo: (FamilyId, Method, SignatureMethod), params: Params) -> Call {
    let (family, method, signature) = combo;
    Call {
        family,
        action: "AssociateInstancesKeyPairs".into(),
        version: (family != FamilyId::TencentV2).then(|| "2017-03-12".to_string()),
        region: (family != FamilyId::AliyunRpc).then(|| "ap-guangzhou".to_string()),
        service: "cvm".into(),
        host: "127.0.0.1:19000".into(),
        path: if family == FamilyId::TencentV2 {
            "/v2/index.php"
        } else {
            "/"
        }
        .into(),
        method,
        signature,
        params,
        format: ResponseFormat::Json,
        index_base: 0,
    }
}

fn creds() -> Credentials {
    Credentials {
        id: "AKIDtest".into(),
        secret: "s3cr3t".into(),
    }
}

fn secrets(family: FamilyId) -> Secrets {
    Secrets::one(family, "AKIDtest", "s3cr3t")
}

/// What a server can recover of `params` on the wire of `combo`.
fn expected(combo: (FamilyId, Method, SignatureMethod), params: &Params) -> Params {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut out = Params::new();
    for (k, v) in params {
        match (combo.0, combo.2, v) {
            (FamilyId::TencentApi3, SignatureMethod::Tc3HmacSha256, _)
                if combo.1 == Method::Post =>
            {
                out.insert(k.clone(), v.clone());
            }
            (FamilyId::AliyunRpc, _, _) => {
                out.insert(k.clone(), Value::String(text(v)));
            }
            (_, _, Value::Array(items)) if items.is_empty() => {}
            (_, _, Value::Array(items)) => {
                out.insert(
                    k.clone(),
                    Value::from(items.iter().map(text).collect::<Vec<_>>()),
                );
            }
            _ => {
                out.insert(k.clone(), Value::String(text(v)));
            }
        }
    }
    out
}

fn sorted(p: &Params) -> Vec<(String, Value)> {
    let mut v: Vec<_> = p.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn check(req: &HttpRequest, family: FamilyId, secret: &Secrets, now: i64) -> Result<(), String> {
    let parsed = parse_request(req).map_err(|e| e.code)?;
    assert_eq!(parsed.family, family);
    verify(req, &parsed, secret, now, &Nonces::default()).map_err(|e| e.code)
}

/// Rotates one alphanumeric character to another one (never only a case change).
fn flip(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'8' | b'a'..=b'y' | b'A'..=b'Y' => Some(c + 1),
        b'9' => Some(b'0'),
        b'z' => Some(b'a'),
        b'Z' => Some(b'A'),
        _ => None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn decode_of_encode_is_identity(params in params(), ts in 1_000_000_000i64..4_000_000_000, nonce in 1u64..u64::MAX) {
        for &combo in COMBOS {
            let clock = Clock { timestamp: ts, nonce: nonce.to_string() };
            let req = encode(&call(combo, params.clone()), &creds(), &clock).unwrap();
            let parsed = parse_request(&req).unwrap();
            prop_assert_eq!(parsed.family, combo.0);
            prop_assert_eq!(parsed.signature, combo.2);
            prop_assert_eq!(&parsed.action, "AssociateInstancesKeyPairs");
            prop_assert_eq!(parsed.timestamp, ts);
            prop_assert_eq!(sorted(&parsed.params), sorted(&expected(combo, &params)), "{:?}", combo);
        }
    }

    #[test]
    fn verify_of_encode_holds(params in params(), ts in 1_000_000_000i64..4_000_000_000, nonce in 1u64..u64::MAX, skew in -250i64..250) {
        for &combo in COMBOS {
            let clock = Clock { timestamp: ts, nonce: nonce.to_string() };
            let req = encode(&call(combo, params.clone()), &creds(), &clock).unwrap();
            prop_assert_eq!(check(&req, combo.0, &secrets(combo.0), ts + skew), Ok(()), "{:?}", combo);
        }
    }

    #[test]
    fn another_secret_or_a_clock_out_of_the_window_fails(params in params(), ts in 1_000_000_000i64..4_000_000_000, extra in 1i64..100_000, sign in any::<bool>()) {
        for &combo in COMBOS {
            let clock = Clock { timestamp: ts, nonce: "42".into() };
            let req = encode(&call(combo, params.clone()), &creds(), &clock).unwrap();
            let (sig_code, _, expired, _) = codes(combo.0);
            let other = Secrets::one(combo.0, "AKIDtest", "other");
            prop_assert_eq!(check(&req, combo.0, &other, ts), Err(sig_code.to_string()));
            let off = window(combo.0) + extra;
            let now = if sign { ts + off } else { ts - off };
            prop_assert_eq!(check(&req, combo.0, &secrets(combo.0), now), Err(expired.to_string()));
        }
    }

    #[test]
    fn changing_a_signed_value_fails_with_the_signature_code(params in params(), ts in 1_000_000_000i64..4_000_000_000, pos in 0usize..MARKER.len()) {
        for &combo in COMBOS {
            let clock = Clock { timestamp: ts, nonce: "7".into() };
            let mut req = encode(&call(combo, params.clone()), &creds(), &clock).unwrap();
            if let Some(i) = req.target.find(MARKER) {
                let mut t = req.target.into_bytes();
                t[i + pos] = b'x';
                req.target = String::from_utf8(t).unwrap();
            } else {
                let i = req.body.windows(MARKER.len()).position(|w| w == MARKER.as_bytes()).expect("marker");
                req.body[i + pos] = b'x';
            }
            prop_assert_eq!(check(&req, combo.0, &secrets(combo.0), ts), Err(codes(combo.0).0.to_string()), "{:?}", combo);
        }
    }

    #[test]
    fn flipping_any_signed_byte_fails_verification(params in params(), ts in 1_000_000_000i64..4_000_000_000, at in any::<prop::sample::Index>()) {
        for &combo in COMBOS {
            let clock = Clock { timestamp: ts, nonce: "7".into() };
            let mut req = encode(&call(combo, params.clone()), &creds(), &clock).unwrap();
            // The signed material on the wire: the query and the body.
            let q0 = req.target.find('?').map_or(req.target.len(), |i| i + 1);
            let mut spots: Vec<(bool, usize)> = (q0..req.target.len())
                .filter(|&i| flip(req.target.as_bytes()[i]).is_some())
                .map(|i| (true, i))
                .collect();
            spots.extend((0..req.body.len()).filter(|&i| flip(req.body[i]).is_some()).map(|i| (false, i)));
            let (in_target, i) = spots[at.index(spots.len())];
            if in_target {
                let mut t = req.target.into_bytes();
                t[i] = flip(t[i]).unwrap();
                req.target = String::from_utf8(t).unwrap();
            } else {
                req.body[i] = flip(req.body[i]).unwrap();
            }
            let allowed: &[&str] = match combo.0 {
                FamilyId::TencentApi3 => &["AuthFailure.SignatureFailure", "AuthFailure.SecretIdNotFound", "MissingParameter", "InvalidParameter"],
                FamilyId::TencentV2 => &["4100", "4000"],
                FamilyId::AliyunRpc => &["SignatureDoesNotMatch", "InvalidAccessKeyId.NotFound", "IncompleteSignature", "MissingParameter", "IllegalTimestamp", "InvalidParameter"],
            };
            let got = check(&req, combo.0, &secrets(combo.0), ts);
            prop_assert!(matches!(&got, Err(c) if allowed.contains(&c.as_str())), "{:?}: {:?} after flipping {:?}", combo, got, req);
        }
    }

    #[test]
    fn parse_request_never_panics_on_arbitrary_requests(
        method in prop_oneof![Just("GET".to_string()), Just("POST".to_string()), "[A-Z]{0,7}"],
        target in prop_oneof![Just("/v2/index.php?".to_string()), Just("/?".to_string())].prop_flat_map(|p| "\\PC{0,80}".prop_map(move |s| format!("{p}{s}"))),
        headers in prop::collection::vec((prop::sample::select(vec!["Authorization", "X-TC-Action", "x-acs-action", "Content-Type", "Host", "X-TC-Timestamp", "x-acs-date", "X-TC-Version"]), "\\PC{0,60}"), 0..6),
        auth in prop_oneof![Just("TC3-HMAC-SHA256 Credential=a/b/c/tc3_request, SignedHeaders=host, Signature=00".to_string()), Just("ACS3-HMAC-SHA256 Credential=x,SignedHeaders=host,Signature=00".to_string()), "\\PC{0,40}"],
        body in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        let mut hs: Vec<(String, String)> = headers.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        hs.push(("Authorization".into(), auth));
        let req = HttpRequest { method, target, headers: hs, body };
        if let Ok(parsed) = parse_request(&req) {
            let _ = verify(&req, &parsed, &secrets(parsed.family), 0, &Nonces::default());
        }
    }
}
