//! What of a request may be shown to a person: signatures, secret ids and credentials replaced
//! with `<redacted>` wherever they travel (header, query, form body), and the request rendered as
//! a `curl` command. Everything the harness writes about a request goes through here first.

use std::fmt::Write as _;

use super::HttpRequest;

/// Replaces signatures, secret ids and credentials in a request with `<redacted>`.
pub fn redact(req: &HttpRequest) -> HttpRequest {
    let mut out = req.clone();
    for (k, v) in &mut out.headers {
        if k.eq_ignore_ascii_case("authorization") {
            *v = redact_authorization(v);
        }
    }
    out.target = redact_pairs(&out.target);
    let body = String::from_utf8_lossy(&out.body).into_owned();
    if body.contains('=') && !body.trim_start().starts_with('{') {
        out.body = redact_pairs(&body).into_bytes();
    }
    out
}

fn redact_authorization(v: &str) -> String {
    // Keep the scheme and signed headers (useful when debugging), hide credential and signature;
    // the separators stay as they were (TC3 and ACS3 separate their parts with `, `).
    v.split(',')
        .map(|segment| {
            segment
                .split(' ')
                .map(|part| match part.split_once('=') {
                    Some((k, _)) if k == "Credential" || k == "Signature" => {
                        format!("{k}=<redacted>")
                    }
                    _ => part.to_string(),
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn redact_pairs(s: &str) -> String {
    const SECRET_KEYS: [&str; 4] = ["Signature", "SecretId", "AccessKeyId", "Token"];
    let (head, query) = match s.split_once('?') {
        Some((h, q)) => (Some(h), q),
        None => (None, s),
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if SECRET_KEYS.contains(&k) => format!("{k}=<redacted>"),
            _ => pair.to_string(),
        })
        .collect();
    match head {
        Some(h) => format!("{h}?{}", pairs.join("&")),
        None => pairs.join("&"),
    }
}

/// The secrets a request carries — signatures, secret ids, tokens and credential scopes, as
/// sent and percent-decoded — with `also` (the run's own credentials): what [`scrub`] hides in
/// text the target sent back. A server may echo any of them (Alibaba's `SignatureDoesNotMatch`
/// message quotes the whole string to sign, `AccessKeyId` included).
pub fn secrets_in(req: &HttpRequest, also: &[&str]) -> Vec<String> {
    const SECRET_KEYS: [&str; 4] = ["Signature", "SecretId", "AccessKeyId", "Token"];
    let mut out: Vec<String> = also.iter().map(|s| s.to_string()).collect();
    let body = String::from_utf8_lossy(&req.body).into_owned();
    let query = req.target.split_once('?').map_or("", |(_, q)| q);
    for pairs in [query, body.as_str()] {
        for (k, v) in form_urlencoded::parse(pairs.as_bytes()) {
            if SECRET_KEYS.contains(&k.as_ref()) {
                out.push(v.into_owned());
            }
        }
        for pair in pairs.split('&') {
            if let Some((k, v)) = pair.split_once('=') {
                if SECRET_KEYS.contains(&k) {
                    out.push(v.to_string());
                }
            }
        }
    }
    for (k, v) in &req.headers {
        if k.eq_ignore_ascii_case("authorization") {
            for part in v.split([',', ' ']) {
                if let Some(("Credential" | "Signature", value)) = part.split_once('=') {
                    out.push(value.to_string());
                    // The secret id leads a credential scope (`AKID.../2026-12-01/cvm/tc3_request`).
                    if let Some((id, _)) = value.split_once('/') {
                        out.push(id.to_string());
                    }
                }
            }
        }
    }
    // Short values (an empty Token, a one-letter test id) would blank unrelated text.
    out.retain(|s| s.len() >= 4 && s != "<redacted>");
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out.dedup();
    out
}

/// Replaces every occurrence of each secret in `text` with `<redacted>` (longest first).
pub fn scrub(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), "<redacted>");
        }
    }
    out
}

/// The request as a `curl` command (already redacted: re-sign before sending it anywhere, or
/// use `apiconform replay`).
pub fn curl(req: &HttpRequest, base: &str) -> String {
    let url = format!("{}{}", base.trim_end_matches('/'), req.target);
    let mut cmd = format!(
        "curl -sS -X {} '{}'",
        req.method,
        url.replace('\'', "'\\''")
    );
    for (k, v) in &req.headers {
        if k.eq_ignore_ascii_case("host") || k.eq_ignore_ascii_case("content-length") {
            continue;
        }
        let _ = write!(cmd, " -H '{}: {}'", k, v.replace('\'', "'\\''"));
    }
    if !req.body.is_empty() {
        let _ = write!(
            cmd,
            " --data-binary '{}'",
            String::from_utf8_lossy(&req.body).replace('\'', "'\\''")
        );
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redacted_authorization_keeps_its_separators() {
        let req = HttpRequest {
            method: "POST".into(),
            target: "/".into(),
            headers: vec![(
                "Authorization".into(),
                "TC3-HMAC-SHA256 Credential=AKIDsecret/2026-01-01/cvm/tc3_request, SignedHeaders=content-type;host, Signature=deadbeef".into(),
            )],
            body: vec![],
        };
        assert_eq!(
            redact(&req).headers[0].1,
            "TC3-HMAC-SHA256 Credential=<redacted>, SignedHeaders=content-type;host, Signature=<redacted>"
        );
    }

    #[test]
    fn redaction_hides_signatures_and_ids_everywhere() {
        let req = HttpRequest {
            method: "POST".into(),
            target: "/?Action=X&SecretId=AKIDsecret&Signature=abc%3D".into(),
            headers: vec![(
                "Authorization".into(),
                "TC3-HMAC-SHA256 Credential=AKIDsecret/2026-01-01/cvm/tc3_request, SignedHeaders=content-type;host, Signature=deadbeef".into(),
            )],
            body: b"AccessKeyId=testid&Signature=xyz&KeyIds.0=skey-1".to_vec(),
        };
        let r = redact(&req);
        let all = format!("{:?}{}", r, String::from_utf8_lossy(&r.body));
        assert!(!all.contains("AKIDsecret"), "{all}");
        assert!(!all.contains("deadbeef"), "{all}");
        assert!(!all.contains("testid"), "{all}");
        assert!(!all.contains("xyz"), "{all}");
        assert!(all.contains("KeyIds.0=skey-1"));
    }
}
