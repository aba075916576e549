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
    let file = write(dir.path(), "session.har", &har.to_string());
    let args = vec![file.display().to_string(), "--target".into(), url];
    let (code, out) = import(dir.path(), args).await;
    assert!(out.contains("skipped:") && out.contains("entry 1"), "{out}");
    assert!(out.contains("entry 2 (har)"), "{out}");
    assert_failed_and_written(
        dir.path(),
        code,
        &out,
        "tencent-cvm/AssociateInstancesKeyPairs",
    );
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
