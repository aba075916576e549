//! `apiconform repro import` (issue 26, item 1): what a person captured — a curl line, a raw
//! HTTP request, a HAR file, a described call — found in the specs, its old signature dropped,
//! its ids mapped onto the target's world, signed afresh, sent, judged and, when it fails,
//! shrunk into the usual repro file. Inline captures always run; the official SDKs' byte-exact
//! captures in `../shared/reference/sdk-captures/` run when `APICONFORM_SHARED` is set.

use std::path::{Path, PathBuf};

use apiconform::emulator::Config;

/// The old signature and secret id in the inline captures: never printed, never written.
const OLD_SIGNATURE: &str = "fd8839ce8698cf8eee245e2e4e254eb3dc6f58fb66207243c8eb7927f681e6c7";

/// Runs `apiconform repro import ARGS` in `dir`; returns the exit code and everything printed.
async fn import(dir: &Path, args: Vec<String>) -> (i32, String) {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let out = crate::bin()
            .args(["repro", "import"])
            .args(&args)
            .current_dir(&dir)
            .output()
            .expect("the binary runs");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    })
    .await
    .unwrap()
}

/// An emulator whose answers to the five APIs leave `RequestId` out (rule `success-shape`, or
/// the family's error envelope); its read calls answer as they should.
async fn faulty() -> String {
    let (url, _) = crate::emulator_behind(Config::default(), |req, resp| {
        let judged = apiconform::protocol::parse_request(req).is_ok_and(|p| {
            [
                "AssociateInstancesKeyPairs",
                "DisassociateInstancesKeyPairs",
                "DetachKeyPair",
            ]
            .iter()
            .any(|a| p.action.eq_ignore_ascii_case(a))
                || p.action.eq_ignore_ascii_case("UnBindInstanceKey")
        });
        if !judged {
            return resp;
        }
        let body = String::from_utf8_lossy(&resp.body)
            .replace("RequestId", "RequestID")
            .replace("requestId", "requestID");
        apiconform::protocol::HttpResponse {
            body: body.into_bytes(),
            ..resp
        }
    })
    .await;
    url
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Every repro file written into `dir/repros`.
fn repros(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_dir(dir.join("repros"))
        .map(|d| {
            d.map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
                .map(|t| serde_json::from_str(&t).unwrap())
                .collect()
        })
        .unwrap_or_default()
}

/// Asserts an import against the faulty target failed, wrote its repro
/// for `api`, and printed neither the old signature nor the captured secret id.
fn assert_failed_and_written(dir: &Path, code: i32, out: &str, api: &str) {
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAILS rule `"), "{out}");
    assert!(out.contains("[stated in"), "the strength: {out}");
    assert!(out.contains("why:"), "the explanation: {out}");
    assert!(
        !out.contains(OLD_SIGNATURE) && !out.contains("AKIDoldcapture"),
        "{out}"
    );
    let written = repros(dir);
    let f = written
        .iter()
        .find(|f| f["api"] == api)
        .unwrap_or_else(|| panic!("no repro of {api}: {out}"));
    let text = f.to_string();
    assert!(
        !text.contains(OLD_SIGNATURE) && !text.contains("AKIDoldcapture"),
        "{text}"
    );
}

const CURL: &str = r#"curl -sS -X POST 'https://cvm.tencentcloudapi.com/' \
  -H 'Content-Type: application/json' \
  -H 'X-TC-Action: AssociateInstancesKeyPairs' -H 'X-TC-Version: 2017-03-12' \
  -H 'X-TC-Region: ap-guangzhou' -H 'X-TC-Timestamp: 1551113065' \
  -H 'Authorization: TC3-HMAC-SHA256 Credential=AKIDoldcapture/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=fd8839ce8698cf8eee245e2e4e254eb3dc6f58fb66207243c8eb7927f681e6c7' \
  --data-raw '{"InstanceIds": ["ins-1e4r6y8i", "ins-3e56fg78"], "KeyIds": ["skey-4e5ty7i8"]}'
"#;

/// A curl line from a colleague: the API comes from the specs, the ids are mapped onto the
/// target's world (and said), the request is signed afresh and judged; it fails on the faulty
/// target, is shrunk (two instances to one) and written as the usual repro.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_curl_line_is_imported_judged_shrunk_and_written() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "bug.curl", CURL);
    let url = faulty().await;
    let args = vec![file.display().to_string(), "--target".into(), url];
    let (code, out) = import(dir.path(), args).await;
    assert!(
        out.contains("ins-1e4r6y8i → ins-"),
        "the mapping is said: {out}"
    );
    assert_failed_and_written(
        dir.path(),
        code,
        &out,
        "tencent-cvm/AssociateInstancesKeyPairs",
    );
    let f = &repros(dir.path())[0];
    assert_eq!(
        f["case"]["params"]["InstanceIds"].as_array().map(Vec::len),
        Some(1),
        "shrunk to one instance: {f}"
    );
    // The correct emulator: a pass, exit 0, nothing written.
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "bug.curl", CURL);
    let (code, out) = import(dir.path(), vec![file.display().to_string()]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Pass"), "{out}");
    assert!(repros(dir.path()).is_empty());
}

/// A raw HTTP request (Alibaba RPC, everything in the query, as aliyun-python-sdk-core sends
/// it) and a HAR file of two entries, one of an action no spec describes (said, skipped).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_request_and_a_har_file_are_imported() {
    let dir = tempfile::tempdir().unwrap();
    let raw = "POST /?KeyPairName=test&InstanceIds=%5B%22i-xxxxxxx%22%2C%20%22i-yyyyyyy%22%5D&Version=2014-05-26&Action=DetachKeyPair&Format=JSON&RegionId=cn-hangzhou&Timestamp=2026-11-22T21%3A52%3A49Z&SignatureMethod=HMAC-SHA1&SignatureType=&SignatureVersion=1.0&SignatureNonce=126279f2e659218740fd3d9e8c584042&AccessKeyId=AKIDoldcapture&Signature=XAZo69AcQaiLtniCvIeH3ulN6fs%3D HTTP/1.1\r\nHost: 127.0.0.1:19000\r\nx-acs-action: DetachKeyPair\r\nContent-Length: 0\r\n\r\n";
    let file = write(dir.path(), "capture.raw", raw);
    let url = faulty().await;
    let args = vec![file.display().to_string(), "--target".into(), url.clone()];
    let (code, out) = import(dir.path(), args).await;
    assert!(out.contains("(http): alibaba-ecs/DetachKeyPair"), "{out}");
    assert!(!out.contains("XAZo69AcQaiLtniCvIeH3ulN6fs"), "{out}");
    assert_failed_and_written(dir.path(), code, &out, "alibaba-ecs/DetachKeyPair");

    let dir = tempfile::tempdir().unwrap();
    let har = serde_json::json!({"log": {"entries": [
        {"request": {"method": "GET", "url": "https://cvm.tencentcloudapi.com/?Action=DescribeRegions",
            "headers": [{"name": "X-TC-Action", "value": "DescribeRegions"},
                        {"name": "X-TC-Version", "value": "2017-03-12"}]}},
        {"request": {"method": "POST", "url": "https://cvm.tencentcloudapi.com/",
            "headers": [{"name": ":authority", "value": "cvm.tencentcloudapi.com"},
                        {"name": "X-TC-Action", "value": "AssociateInstancesKeyPairs"},
                        {"name": "X-TC-Version", "value": "2017-03-12"},
                        {"name": "X-TC-Region", "value": "ap-guangzhou"}],
            "postData": {"mimeType": "application/json",
                "text": "{\"InstanceIds\": [\"ins-1e4r6y8i\"], \"KeyIds\": [\"skey-4e5ty7i8\"]}"}}}
    ]}});
    // The same call twice: two repros, the second not overwriting the first.
    let mut har = har;
    let again = har["log"]["entries"][1].clone();
    har["log"]["entries"].as_array_mut().unwrap().push(again);
    let file = write(dir.path(), "session.har", &har.to_string());
    let args = vec![file.display().to_string(), "--target".into(), url];
    let (code, out) = import(dir.path(), args).await;
    assert!(out.contains("skipped:") && out.contains("entry 1"), "{out}");
    assert!(
        out.contains("entry 2 (har)") && out.contains("entry 3 (har)"),
        "{out}"
    );
    assert_failed_and_written(
        dir.path(),
        code,
        &out,
        "tencent-cvm/AssociateInstancesKeyPairs",
    );
    assert_eq!(repros(dir.path()).len(), 2, "{out}");
}

/// The colleague's sentence as parameters: duplicate ids stay duplicates once mapped; with
/// --keep-ids an id the world does not hold stays as given. A capture that is none is refused
/// naming the file, the line and the fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_described_call_is_imported_and_a_bad_capture_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<String> = [
        "--api",
        "tencent-cvm/DisassociateInstancesKeyPairs",
        "--param",
        "InstanceIds=ins-1e4r6y8i,ins-1e4r6y8i",
        "--param",
        "KeyIds=skey-4e5ty7i8",
    ]
    .map(String::from)
    .to_vec();
    let (code, out) = import(dir.path(), args).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out.matches("ins-1e4r6y8i → ").count(),
        1,
        "mapped once: {out}"
    );
    assert!(
        out.contains("Unspecified"),
        "duplicate ids are left open: {out}"
    );

    let url = faulty().await;
    let args: Vec<String> = [
        "--api",
        "AssociateInstancesKeyPairs",
        "--param",
        "InstanceIds=[\"ins-cs000000\"]",
        "--param",
        "KeyIds=skey-ck000000",
        "--keep-ids",
        "--target",
        &url,
    ]
    .map(String::from)
    .to_vec();
    let (code, out) = import(dir.path(), args).await;
    assert!(!out.contains(" → "), "--keep-ids maps nothing: {out}");
    assert_failed_and_written(
        dir.path(),
        code,
        &out,
        "tencent-cvm/AssociateInstancesKeyPairs",
    );

    let file = write(
        dir.path(),
        "notes.txt",
        "DisassociateInstancesKeyPairs failed for me\n",
    );
    let (code, out) = import(dir.path(), vec![file.display().to_string()]).await;
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("notes.txt:1") && out.contains("help:"),
        "{out}"
    );
    let file = write(
        dir.path(),
        "broken.curl",
        "curl -H 'X-TC-Action: A http://h/\n",
    );
    let (code, out) = import(dir.path(), vec![file.display().to_string()]).await;
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("never closed"), "{out}");
}

/// The official SDKs' byte-exact captures (`../shared/reference/sdk-captures/`): every one is
/// read, found in the specs, signed afresh and judged; against the faulty target each fails and
/// is written, its old signature nowhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_official_sdk_capture_imports() {
    use std::io::Write as _;
    let Some(shared) = std::env::var_os("APICONFORM_SHARED").map(PathBuf::from) else {
        let _ = writeln!(
            std::io::stderr(),
            "skipped: every_official_sdk_capture_imports: set APICONFORM_SHARED to the folder holding reference/sdk-captures/"
        );
        return;
    };
    let captures = shared.join("reference/sdk-captures");
    assert!(captures.is_dir(), "{} is missing", captures.display());
    let url = faulty().await;
    let mut seen = 0;
    for entry in std::fs::read_dir(&captures).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "raw") {
            continue;
        }
        seen += 1;
        let dir = tempfile::tempdir().unwrap();
        let args = vec![path.display().to_string(), "--target".into(), url.clone()];
        let (code, out) = import(dir.path(), args).await;
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(out.contains("imported:"), "{name}: {out}");
        let text = std::fs::read_to_string(&path).unwrap();
        for secret in ["Signature=", "Signature%3D"] {
            if let Some(i) = text.find(secret) {
                let old: String = text[i + secret.len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric())
                    .collect();
                if old.len() > 8 {
                    assert!(
                        !out.contains(&old),
                        "{name} printed its old signature: {out}"
                    );
                }
            }
        }
        // The emulator leaves RequestId out: each API's answer breaks success-shape, or the
        // family's error envelope where the mapped request is refused.
        assert_eq!(code, 1, "{name}: {out}");
        assert!(out.contains("repro: "), "{name}: {out}");
    }
    assert!(seen >= 10, "{seen} captures");
}

/// tencentcloud-sdk-python 3.1.178's debug log (`set_stream_logger(level=DEBUG)`) of a TC3 POST,
/// as it printed it (against the emulator, the documentation's example credentials).
const TENCENT_SDK_LOG: &str = r##"2026-12-08 01:37:23,141 1066 request.py L100 DEBUG SendRequest: Host: 127.0.0.1:39113
Method: POST
Uri: /
Header: X-TC-TraceId: e32160e0-67eb-418f-a907-a11e691b2c76
Content-Type: application/json
Host: 127.0.0.1:39113
X-TC-Action: DisassociateInstancesKeyPairs
X-TC-RequestClient: SDK_PYTHON_3.1.178
X-TC-Timestamp: 1796693843
X-TC-Version: 2017-03-12
X-TC-Region: ap-guangzhou
X-TC-Language: zh-CN
Authorization: TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2026-12-08/cvm/tc3_request, SignedHeaders=content-type;host, Signature=fcbfbae12419d2683ce824bfe291f84b926936e77c54226717e5e9bf5764b39a
Data: {"InstanceIds": ["ins-1e4r6y8i", "ins-1e4r6y8i"], "KeyIds": ["skey-4e5ty7i8"]}

2026-12-08 01:37:23,214 1066 abstract_client.py L371 DEBUG GetResponse: HTTP/1.1 200 OK
content-type: application/json
content-length: 162
date: Tue, 08 Dec 2026 01:37:23 GMT

{"Response":{"Error":{"Code":"InvalidKeyPairId.NotFound","Message":"key pair `skey-4e5ty7i8` does not exist"},"RequestId":"5a17c0de-0000-4000-8000-000000000000"}}
"##;

/// The same SDK with `reqMethod="GET"`, `signMethod="HmacSHA256"`: the parameters in `Data`.
const TENCENT_SDK_LOG_GET: &str = r##"2026-12-08 01:37:29,504 1285 request.py L100 DEBUG SendRequest: Host: 127.0.0.1:39113
Method: GET
Uri: /
Header: X-TC-TraceId: e61c0c5d-8d64-4a21-80a7-a8c6076140d5
Content-Type: application/x-www-form-urlencoded
Data: InstanceIds.0=ins-1e4r6y8i&InstanceIds.1=ins-1e4r6y8i&KeyIds.0=skey-4e5ty7i8&Action=DisassociateInstancesKeyPairs&RequestClient=SDK_PYTHON_3.1.178&Nonce=5584893003083327026&Timestamp=1796693849&Version=2017-03-12&Region=ap-guangzhou&SecretId=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE&SignatureMethod=HmacSHA256&Language=zh-CN&Signature=%2FN7G%2BSumC4rQmfNOXpsuRjwLG4k%2BbxfK%2B50obmytxDE%3D

2026-12-08 01:37:29,544 1285 abstract_client.py L371 DEBUG GetResponse: HTTP/1.1 200 OK
content-type: application/json
content-length: 162
date: Tue, 08 Dec 2026 01:37:29 GMT

{"Response":{"Error":{"Code":"InvalidKeyPairId.NotFound","Message":"key pair `skey-4e5ty7i8` does not exist"},"RequestId":"5a17c0de-0000-4000-8000-000000000001"}}
"##;

/// aliyun-python-sdk-core 2.16.1 with aliyun-python-sdk-ecs: `set_stream_logger(log_level=DEBUG)`.
const ALIBABA_SDK_LOG: &str = r##"140410148248448 2026-12-08 01:37:31,302 aliyunsdkcore.client DEBUG Request received. Product:Ecs Endpoint:127.0.0.1:39113 Params: {'KeyPairName': 'kp-1', 'InstanceIds': '["i-xxxxxxx", "i-xxxxxxx"]', 'Version': '2014-05-26', 'Action': 'DetachKeyPair', 'Format': 'JSON'}
140410148248448 2026-12-08 01:37:31,324 aliyunsdkcore.client ERROR ServerException occurred. Host:127.0.0.1:39113 SDK-Version:2.16.1 ServerException:HTTP Status: 400 Error:InvalidKeyPairName.NotFound The specified KeyPairName `kp-1` does not exist. RequestID: 5A17C0DE-0000-4000-8000-000000000002
"##;

/// The vendors' SDK debug logs: each request logged is found in the specs (the log's region
/// filled in from the world where the SDK does not print it), signed afresh — its old
/// signature nowhere in the output — judged, and on the faulty target written as a repro.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_debug_logs_are_imported() {
    let url = faulty().await;
    for (name, log, api, old) in [
        (
            "tc.log",
            TENCENT_SDK_LOG,
            "tencent-cvm/DisassociateInstancesKeyPairs",
            "fcbfbae12419d2683ce824bfe291f84b926936e77c54226717e5e9bf5764b39a",
        ),
        (
            "tc-get.log",
            TENCENT_SDK_LOG_GET,
            "tencent-cvm/DisassociateInstancesKeyPairs",
            "N7G%2BSumC4rQmfNOXpsuRjwLG4k",
        ),
        (
            "ali.log",
            ALIBABA_SDK_LOG,
            "alibaba-ecs/DetachKeyPair",
            "5A17C0DE-never-a-signature",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), name, log);
        let args = vec![file.display().to_string(), "--target".into(), url.clone()];
        let (code, out) = import(dir.path(), args).await;
        assert!(
            out.contains("debug log): ") && out.contains(api),
            "{name}: {out}"
        );
        assert!(!out.contains(old), "{name}: the old signature: {out}");
        assert_failed_and_written(dir.path(), code, &out, api);
    }
}
