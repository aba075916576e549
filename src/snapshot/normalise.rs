//! Normalisation: what varies from one recording to the next (request ids, timestamps, nonces,
//! signatures, host ids, loopback ports) is replaced with placeholders, so a snapshot changes only
//! when behaviour does.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

static VOLATILE: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        (
            r"(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
            "<request-id>",
        ),
        (
            r"\d{4}-\d{2}-\d{2}T\d{2}(?::|%3A|%253A)\d{2}(?::|%3A|%253A)\d{2}(?:\.\d+)?Z",
            "<timestamp>",
        ),
        (r"\b1\d{9}\b", "<timestamp>"),
        (r"(?i)((?:nonce)(?:=|%3D|%253D))[0-9a-z-]+", "${1}<nonce>"),
        (r"\b[0-9a-fA-F]{32}\b", "<nonce>"),
        (
            r"(?:127\.0\.0\.1|localhost|\[::1\])(?::|%3A|%253A)\d+",
            "<host>",
        ),
    ]
    .into_iter()
    .map(|(r, p)| (Regex::new(r).expect("valid regex"), p))
    .collect()
});

fn placeholder(key: &str) -> Option<&'static str> {
    match key.to_ascii_lowercase().as_str() {
        "requestid" | "request_id" => Some("<request-id>"),
        "hostid" => Some("<host-id>"),
        "timestamp" | "servertime" | "date" => Some("<timestamp>"),
        "nonce" | "signaturenonce" => Some("<nonce>"),
        "signature" => Some("<signature>"),
        _ => None,
    }
}

/// Replaces volatile values (request ids, timestamps, nonces, signatures, host ids, loopback
/// host:port) with placeholders, in place.
pub fn redact(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                match placeholder(k) {
                    Some(p) if !v.is_object() && !v.is_array() && !v.is_null() => {
                        *v = Value::String(p.into())
                    }
                    _ => redact(v),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        Value::String(s) => {
            for (re, p) in VOLATILE.iter() {
                if re.is_match(s) {
                    *s = re.replace_all(s, *p).into_owned();
                }
            }
        }
        _ => {}
    }
}
