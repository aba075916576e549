//! Helpers shared by the families: hashing, HMAC, base64, percent-encoding, parameter
//! flattening and un-flattening, timestamps.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::Digest as _;

use super::Params;

/// Hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(data))
}

/// HMAC-SHA256 of `msg` keyed with `key`.
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

/// HMAC-SHA1 of `msg` keyed with `key`.
pub fn hmac_sha1(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

/// Standard base64 with padding.
pub fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// RFC 3986 unreserved characters are kept; everything else is `%XX` (upper-case hex).
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// RFC 3986 percent-encoding as Alibaba signs it: space → `%20`, `*` → `%2A`, `~` kept.
pub fn pe(s: &str) -> String {
    utf8_percent_encode(s, RFC3986).to_string()
}

/// `application/x-www-form-urlencoded` serialisation of pairs, in order (space → `+`), as the
/// Tencent SDKs send forms and queries.
pub fn form_encode(pairs: &[(String, String)]) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        ser.append_pair(k, v);
    }
    ser.finish()
}

/// The wire text of a scalar: strings raw, booleans `true`/`false`, numbers as JSON, null empty.
pub fn scalar_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Flattens parameters the way the Tencent SDKs do for forms and queries: a list `X` becomes
/// `X.0`, `X.1`, ... (0-based, as tencentcloud-sdk-python and QcloudApi send; from `base` when
/// a case numbers from 1 as seeds 000 and 004 write their examples), an object `F` becomes
/// `F.Key`, recursively. An empty list sends nothing.
pub fn flatten(params: &Params, base: u32) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (k, v) in params {
        flatten_into(k, v, base as usize, &mut out);
    }
    out
}

fn flatten_into(prefix: &str, v: &serde_json::Value, base: usize, out: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                flatten_into(&format!("{prefix}.{}", base + i), item, base, out);
            }
        }
        serde_json::Value::Object(map) => {
            for (k, item) in map {
                flatten_into(&format!("{prefix}.{k}"), item, base, out);
            }
        }
        scalar => out.push((prefix.to_string(), scalar_text(scalar))),
    }
}

/// Un-flattens form pairs: `Name.N` (N decimal) items become a JSON array of strings under
/// `Name`, ordered by N; every other item stays a string under its own key (the last value
/// wins for a repeated key). Returns the lowest N seen, if any list was found. Linear in the
/// number of pairs (hash maps, one pass): servers decode it before authenticating anyone.
pub fn unflatten(pairs: &[(String, String)]) -> (Params, Option<u32>) {
    use std::collections::HashMap;
    let mut lists: HashMap<&str, Vec<(u32, &str)>> = HashMap::new();
    let mut scalars: HashMap<&str, &str> = HashMap::new();
    // Names in order of first appearance, as a list or as a scalar (a name may be both).
    let mut order: Vec<(&str, bool)> = Vec::new();
    let mut base: Option<u32> = None;
    for (k, v) in pairs {
        let indexed = k.rsplit_once('.').and_then(|(name, n)| {
            let ok = !name.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
            ok.then(|| n.parse::<u32>().ok().map(|n| (name, n)))
                .flatten()
        });
        match indexed {
            Some((name, n)) => {
                base = Some(base.map_or(n, |b| b.min(n)));
                let items = lists.entry(name).or_default();
                if items.is_empty() {
                    order.push((name, true));
                }
                items.push((n, v));
            }
            None => {
                if scalars.insert(k, v).is_none() {
                    order.push((k, false));
                }
            }
        }
    }
    let mut out = Params::new();
    for (name, is_list) in order {
        if is_list {
            if let Some(items) = lists.get_mut(name) {
                items.sort_by_key(|(n, _)| *n);
                let arr = items
                    .iter()
                    .map(|(_, v)| serde_json::Value::String((*v).to_string()))
                    .collect();
                out.insert(name.to_string(), serde_json::Value::Array(arr));
            }
        } else if let Some(v) = scalars.get(name) {
            if !out.contains_key(name) {
                out.insert(
                    name.to_string(),
                    serde_json::Value::String((*v).to_string()),
                );
            }
        }
    }
    (out, base)
}

/// `YYYY-MM-DD` (UTC) of a Unix timestamp, as the TC3 credential scope uses it.
pub fn utc_date(ts: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(ts) {
        Ok(t) => format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()),
        Err(_) => "1970-01-01".to_string(),
    }
}

/// ISO 8601 UTC `YYYY-MM-DDThh:mm:ssZ` of a Unix timestamp (Alibaba `Timestamp`, `x-acs-date`).
pub fn iso8601(ts: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(ts) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => "1970-01-01T00:00:00Z".to_string(),
    }
}

/// Parses `YYYY-MM-DDThh:mm:ssZ` into Unix seconds.
pub fn parse_iso8601(s: &str) -> Option<i64> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::PrimitiveDateTime::parse(s, fmt)
        .ok()
        .map(|t| t.assume_utc().unix_timestamp())
}

/// Constant-time-ish string comparison for signatures.
pub fn eq_ct(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// `true` if the content type is `application/x-www-form-urlencoded` (parameters allowed).
pub fn is_form(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|c| {
        c.trim()
            .to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pe_follows_rfc3986() {
        assert_eq!(pe("a b*~-_.+/"), "a%20b%2A~-_.%2B%2F");
        assert_eq!(pe("中"), "%E4%B8%AD");
    }

    #[test]
    fn unflatten_orders_lists_and_reports_base() {
        let pairs = vec![
            ("X.1".to_string(), "b".to_string()),
            ("X.0".to_string(), "a".to_string()),
            ("Y".to_string(), "c".to_string()),
        ];
        let (p, base) = unflatten(&pairs);
        assert_eq!(p["X"], serde_json::json!(["a", "b"]));
        assert_eq!(p["Y"], serde_json::json!("c"));
        assert_eq!(base, Some(0));
    }

    #[test]
    fn iso8601_round_trips() {
        assert_eq!(iso8601(1456231584), "2016-02-23T12:46:24Z");
        assert_eq!(parse_iso8601("2016-02-23T12:46:24Z"), Some(1456231584));
        assert_eq!(utc_date(1551113065), "2019-02-25");
    }
}
