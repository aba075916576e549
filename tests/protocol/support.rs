//! Test support: the shared reference folder, a raw HTTP/1.1 parser, in-memory stores.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Mutex;

use apiconform::protocol::{FamilyId, HttpRequest, NonceStore, SecretStore};

/// The folder holding the vendors' documents (`seeds/`, `reference/`), from
/// `APICONFORM_SHARED`; `None`, with a visible `skipped:` line, when it is not set. A fresh clone
/// has nothing beside it; CI (`.ci/run`) sets it, and a set folder that is not there fails.
pub fn shared_dir(test: &str) -> Option<PathBuf> {
    use std::io::Write as _;
    let Some(dir) = std::env::var_os("APICONFORM_SHARED").map(PathBuf::from) else {
        // Straight to the process's stderr: the test harness captures `eprintln!` of a test
        // that passes, and a skip must be seen.
        let _ = writeln!(
            std::io::stderr(),
            "skipped: {test}: set APICONFORM_SHARED to the folder holding seeds/ and reference/ to check against the vendors' documents"
        );
        return None;
    };
    assert!(
        dir.join("reference").is_dir() && dir.join("seeds").is_dir(),
        "APICONFORM_SHARED={} holds no seeds/ and reference/ folders",
        dir.display()
    );
    Some(dir)
}

/// Files in `<shared>/reference/<sub>` ending with `ext`, sorted (fails when there are none);
/// `None` when the shared folder is not given.
pub fn reference_files(test: &str, sub: &str, ext: &str) -> Option<Vec<PathBuf>> {
    let dir = shared_dir(test)?.join("reference").join(sub);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.to_string_lossy().ends_with(ext))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no *{ext} files in {}", dir.display());
    Some(files)
}

/// Parses one raw HTTP/1.1 request: request line, headers, body by Content-Length.
pub fn parse_raw(bytes: &[u8]) -> HttpRequest {
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no end of headers");
    let head = std::str::from_utf8(&bytes[..split]).expect("head is UTF-8");
    let mut lines = head.split("\r\n");
    let request_line = lines.next().expect("request line");
    let mut parts = request_line.split(' ');
    let method = parts.next().expect("method").to_string();
    let target = parts.next().expect("target").to_string();
    assert_eq!(parts.next(), Some("HTTP/1.1"));
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (k, v) = l.split_once(':').expect("header line");
            (k.to_string(), v.trim().to_string())
        })
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, v)| v.parse().expect("Content-Length"));
    let body = bytes[split + 4..split + 4 + len].to_vec();
    HttpRequest {
        method,
        target,
        headers,
        body,
    }
}

/// Secrets by family and id.
pub struct Secrets(pub Vec<(FamilyId, String, String)>);

impl Secrets {
    pub fn one(family: FamilyId, id: &str, secret: &str) -> Self {
        Secrets(vec![(family, id.to_string(), secret.to_string())])
    }
}

impl SecretStore for Secrets {
    fn secret(&self, family: FamilyId, id: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(f, i, _)| *f == family && i == id)
            .map(|(_, _, s)| s.clone())
    }
}

/// Nonces remembered forever (tests stay inside one window).
#[derive(Default)]
pub struct Nonces(Mutex<HashSet<(FamilyId, String, String)>>);

impl NonceStore for Nonces {
    fn check_and_insert(&self, family: FamilyId, secret_id: &str, nonce: &str, _now: i64) -> bool {
        self.0
            .lock()
            .expect("lock")
            .insert((family, secret_id.to_string(), nonce.to_string()))
    }
}

/// The example credentials of each family.
pub fn example_creds(family: FamilyId) -> (&'static str, &'static str) {
    match family {
        FamilyId::TencentApi3 => (
            "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
            "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
        ),
        FamilyId::TencentV2 => (
            "AKIDz8krbsJ5yKBZQpn74WFkmLPx3gnPhESA",
            "Gu5t9xGARNpq86cd98joQYCN3Cozk1qA",
        ),
        FamilyId::AliyunRpc => ("testid", "testsecret"),
    }
}

/// The family's codes: (bad signature, unknown id, expired, replay).
pub fn codes(family: FamilyId) -> (&'static str, &'static str, &'static str, &'static str) {
    match family {
        FamilyId::TencentApi3 => (
            "AuthFailure.SignatureFailure",
            "AuthFailure.SecretIdNotFound",
            "AuthFailure.SignatureExpire",
            "",
        ),
        FamilyId::TencentV2 => ("4100", "4100", "4200", "4500"),
        FamilyId::AliyunRpc => (
            "SignatureDoesNotMatch",
            "InvalidAccessKeyId.NotFound",
            "IllegalTimestamp",
            "SignatureNonceUsed",
        ),
    }
}

/// The family's timestamp window in seconds.
pub fn window(family: FamilyId) -> i64 {
    match family {
        FamilyId::TencentApi3 => apiconform::protocol::tencent_api3::WINDOW_SECS,
        FamilyId::TencentV2 => apiconform::protocol::tencent_v2::WINDOW_SECS,
        FamilyId::AliyunRpc => apiconform::protocol::aliyun_rpc::WINDOW_SECS,
    }
}
