//! The vendors' worked signing examples, driven from `signature-vectors/*.json`: every vector
//! marked `reproduces: true` is reproduced with all its intermediate strings; the others differ.

use std::collections::BTreeMap;

use apiconform::protocol::{
    aliyun_rpc, explain, tencent_api3, Call, Clock, Credentials, FamilyId, Method, ResponseFormat,
    SignatureMethod,
};
use serde_json::Value;

use crate::support::reference_files;

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn pairs(obj: &Value) -> Vec<(String, String)> {
    obj.as_object()
        .expect("params object")
        .iter()
        .map(|(k, v)| (k.clone(), s(v)))
        .collect()
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(data))
}

/// Our values for a vector, keyed like the vector files' `expected` / `computed` fields.
fn ours(kind: &str, input: &Value) -> BTreeMap<&'static str, String> {
    let mut m = BTreeMap::new();
    match kind {
        "tc3" => {
            let headers: Vec<(String, String)> = input["canonical_headers"]
                .as_str()
                .expect("canonical_headers")
                .lines()
                .filter(|l| !l.is_empty())
                .map(|l| {
                    let (k, v) = l.split_once(':').expect("k:v");
                    (k.to_string(), v.to_string())
                })
                .collect();
            let p = tencent_api3::tc3_sign(
                input["method"].as_str().unwrap(),
                input["canonical_uri"].as_str().unwrap(),
                input["canonical_query"].as_str().unwrap(),
                &headers,
                input["payload"].as_str().unwrap().as_bytes(),
                input["service"].as_str().unwrap(),
                input["timestamp"].as_i64().unwrap(),
                input["date"].as_str().unwrap(),
                input["secret_key"].as_str().unwrap(),
            );
            m.insert(
                "authorization",
                format!(
                    "TC3-HMAC-SHA256 Credential={}/{}/{}/tc3_request, SignedHeaders={}, Signature={}",
                    input["secret_id"].as_str().unwrap(),
                    input["date"].as_str().unwrap(),
                    input["service"].as_str().unwrap(),
                    input["signed_headers"].as_str().unwrap(),
                    p.signature
                ),
            );
            m.insert("hashed_payload", p.hashed_payload);
            m.insert("canonical_request", p.canonical_request);
            m.insert("hashed_canonical_request", p.hashed_canonical_request);
            m.insert("string_to_sign", p.string_to_sign);
            m.insert("signature", p.signature);
        }
        "v1" => {
            let (_, sts) = tencent_api3::v1_string_to_sign(
                input["method"].as_str().unwrap(),
                input["host"].as_str().unwrap(),
                input["path"].as_str().unwrap(),
                &pairs(&input["params"]),
            );
            let sha256 = input["algorithm"] == "HmacSHA256";
            let sig =
                tencent_api3::v1_signature(&sts, input["secret_key"].as_str().unwrap(), sha256);
            m.insert(
                "signature_urlencoded",
                form_urlencoded::byte_serialize(sig.as_bytes()).collect(),
            );
            m.insert("string_to_sign", sts);
            m.insert("signature", sig);
        }
        "rpc" => {
            let (canonical, sts, sig) = aliyun_rpc::rpc_sign(
                input["method"].as_str().unwrap(),
                &pairs(&input["params"]),
                input["access_key_secret"].as_str().unwrap(),
            );
            m.insert("canonicalized_query", canonical);
            m.insert("string_to_sign", sts);
            m.insert("signature", sig);
        }
        "acs3" => {
            let payload = input["payload"].as_str().unwrap();
            let hashed = sha256_hex(payload.as_bytes());
            let mut headers = pairs(&input["headers"]);
            headers.push(("x-acs-content-sha256".into(), hashed.clone()));
            let (cr, sts, sig, signed) = aliyun_rpc::acs3_sign(
                input["method"].as_str().unwrap(),
                input["canonical_uri"].as_str().unwrap(),
                &pairs(&input["query"]),
                &headers,
                &hashed,
                input["access_key_secret"].as_str().unwrap(),
            );
            m.insert(
                "authorization",
                format!(
                    "ACS3-HMAC-SHA256 Credential={},SignedHeaders={signed},Signature={sig}",
                    input["access_key_id"].as_str().unwrap()
                ),
            );
            m.insert("canonical_request", cr);
            m.insert("string_to_sign", sts);
            m.insert("signature", sig);
        }
        other => panic!("unknown vector kind {other}"),
    }
    m
}

fn kind_of(file: &str) -> &'static str {
    if file.starts_with("tencent-tc3") {
        "tc3"
    } else if file.starts_with("tencent-signature-v1") {
        "v1"
    } else if file.starts_with("aliyun-rpc") {
        "rpc"
    } else if file.starts_with("aliyun-acs3") {
        "acs3"
    } else {
        panic!("signature-vectors/{file}: no signer known for this file; add one to the test")
    }
}

#[test]
fn every_signature_vector_reproduces_with_its_intermediate_strings() {
    let mut reproduced = 0;
    let mut differing = 0;
    let Some(files) = reference_files("signature vectors", "signature-vectors", ".json") else {
        return;
    };
    for path in files {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let kind = kind_of(&file);
        let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        for v in doc["vectors"].as_array().expect("vectors") {
            let name = v["name"].as_str().unwrap();
            let mine = ours(kind, &v["input"]);
            if v["reproduces"] == Value::Bool(true) {
                let mut checked = 0;
                for section in ["expected", "computed"] {
                    for (key, want) in v[section].as_object().into_iter().flatten() {
                        let got = mine.get(key.as_str()).unwrap_or_else(|| {
                            panic!("{file} {name}: no value for {section}.{key}")
                        });
                        assert_eq!(got, &s(want), "{file} {name}: {section}.{key}");
                        checked += 1;
                    }
                }
                assert!(checked > 0, "{name}: nothing compared");
                reproduced += 1;
            } else {
                let want = v["expected"]["signature"]
                    .as_str()
                    .expect("expected.signature");
                assert_ne!(
                    mine["signature"], want,
                    "{name} is marked as not reproducing"
                );
                differing += 1;
            }
        }
    }
    assert!(reproduced >= 10, "only {reproduced} vectors reproduced");
    assert!(differing >= 1);
}

/// The same vectors through `explain`, where a `Call` can express them.
#[test]
fn explain_reproduces_the_rpc_and_acs3_vectors() {
    let base = |sig, method| Call {
        family: FamilyId::AliyunRpc,
        action: String::new(),
        version: Some("2014-05-26".into()),
        region: None,
        service: String::new(),
        host: String::new(),
        path: "/".into(),
        method,
        signature: sig,
        params: Default::default(),
        format: ResponseFormat::Xml,
        index_base: 0,
    };
    let mut call = base(SignatureMethod::RpcHmacSha1, Method::Get);
    call.action = "DescribeRegions".into();
    let creds = Credentials {
        id: "testid".into(),
        secret: "testsecret".into(),
    };
    let clock = Clock {
        timestamp: 1456231584,
        nonce: "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf".into(),
    };
    let e = explain(&call, &creds, &clock).unwrap();
    assert_eq!(e.signature, "OLeaidS1JvxuMvnyHOwuJ+uX5qY=");
    call.method = Method::Post;
    assert_eq!(
        explain(&call, &creds, &clock).unwrap().signature,
        "MxbnVAM4w6sft9xjVpe/GCKueuk="
    );

    let mut call = base(SignatureMethod::Acs3HmacSha256, Method::Post);
    call.action = "RunInstances".into();
    call.host = "ecs.cn-shanghai.aliyuncs.com".into();
    call.params.insert(
        "ImageId".into(),
        "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd".into(),
    );
    call.params.insert("RegionId".into(), "cn-shanghai".into());
    let creds = Credentials {
        id: "YourAccessKeyId".into(),
        secret: "YourAccessKeySecret".into(),
    };
    let clock = Clock {
        timestamp: 1698315752,
        nonce: "3156853299f313e23d1673dc12e1703d".into(),
    };
    let e = explain(&call, &creds, &clock).unwrap();
    assert_eq!(
        e.request.header("authorization"),
        Some("ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0")
    );
}

/// The TC3 GET vector through `explain` (the query `Limit=10&Offset=0` as sent).
#[test]
fn explain_reproduces_the_tc3_get_vector() {
    let mut params = apiconform::protocol::Params::new();
    params.insert("Limit".into(), 10.into());
    params.insert("Offset".into(), 0.into());
    let call = Call {
        family: FamilyId::TencentApi3,
        action: "DescribeInstances".into(),
        version: Some("2017-03-12".into()),
        region: Some("ap-guangzhou".into()),
        service: "cvm".into(),
        host: "cvm.tencentcloudapi.com".into(),
        path: "/".into(),
        method: Method::Get,
        signature: SignatureMethod::Tc3HmacSha256,
        params,
        format: ResponseFormat::Default,
        index_base: 0,
    };
    let creds = Credentials {
        id: "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE".into(),
        secret: "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE".into(),
    };
    let clock = Clock {
        timestamp: 1539084154,
        nonce: "1".into(),
    };
    let e = explain(&call, &creds, &clock).unwrap();
    assert_eq!(
        e.signature,
        "5da7a33f6993f0614b047e5df4582db9e9bf4672ba50567dba16c6ccf174c474"
    );
    assert_eq!(e.request.target, "/?Limit=10&Offset=0");
}
