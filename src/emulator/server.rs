//! The emulator's HTTP listener: a real server (axum on tokio) that vendors' SDKs can call.

use std::future::Future;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;

use super::Emulator;
use crate::protocol::{self, FamilyId, HttpRequest, RequestError, ResponseFormat};

/// Largest request body accepted. Tencent documents 10 MB for API 3.0 POST bodies; anything
/// larger is answered with the family's parameter error rather than read.
pub const MAX_BODY: usize = 10 * 1024 * 1024;

/// Serves `emu` on `listener` until `shutdown` completes; in-flight requests finish first.
pub async fn serve(
    listener: tokio::net::TcpListener,
    emu: Arc<Emulator>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = axum::Router::new().fallback(handle).with_state(emu);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn handle(State(emu): State<Arc<Emulator>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let target = parts.uri.path_and_query().map_or_else(
        || parts.uri.path().to_string(),
        |pq| pq.as_str().to_string(),
    );
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut http = HttpRequest {
        method: parts.method.as_str().to_string(),
        target,
        headers,
        body: Vec::new(),
    };
    let resp = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(bytes) => {
            http.body = bytes.to_vec();
            let now = now();
            // Business logic takes one short lock; run it inline (it never blocks on I/O).
            emu.handle(&http, now)
        }
        Err(_) => {
            let err = too_large(&http);
            protocol::request_error_response(&err, &emu.request_id(err.family))
        }
    };
    let mut builder = Response::builder().status(resp.status);
    for (k, v) in &resp.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    builder
        .body(Body::from(resp.body))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

fn too_large(req: &HttpRequest) -> RequestError {
    let family = if req.path() == "/v2/index.php" {
        FamilyId::TencentV2
    } else if req.header("x-acs-action").is_some() || req.query().contains("AccessKeyId=") {
        FamilyId::AliyunRpc
    } else {
        FamilyId::TencentApi3
    };
    let (code, status) = match family {
        FamilyId::TencentV2 => ("4000", 200),
        FamilyId::AliyunRpc => ("InvalidParameter", 400),
        FamilyId::TencentApi3 => ("InvalidParameter", 200),
    };
    RequestError {
        family,
        code: code.into(),
        message: format!("the request body exceeds {MAX_BODY} bytes"),
        status,
        action: None,
        format: ResponseFormat::Default,
    }
}

/// Unix seconds now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
