//! Reports: the console table, JSON for machines, JUnit XML for CI, repro files.
//!
//! Secrets never leave through here: requests are redacted before they are stored.

use std::fmt::Write as _;
use std::path::Path;

use crate::protocol::HttpRequest;
use crate::run::{Failure, RunReport};

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
    // Keep the scheme and signed headers (useful when debugging), hide credential and signature.
    v.split([',', ' '])
        .filter(|s| !s.is_empty())
        .map(|part| {
            if let Some((k, _)) = part.split_once('=') {
                if k == "Credential" || k == "Signature" {
                    return format!("{k}=<redacted>");
                }
            }
            part.to_string()
        })
        .collect::<Vec<_>>()
        .join(" ")
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

/// The closing table.
pub fn table(report: &RunReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<46} {:>6} {:>6} {:>5} {:>6} {:>7} {:>7}",
        "API", "cases", "pass", "fail", "unspec", "rules", "codes"
    );
    for a in &report.apis {
        let _ = writeln!(
            out,
            "{:<46} {:>6} {:>6} {:>5} {:>6} {:>7} {:>7}",
            a.api,
            a.cases,
            a.pass,
            a.fail,
            a.unspecified,
            format!(
                "{}/{}",
                a.rules_exercised.intersection(&a.rules_total).count(),
                a.rules_total.len()
            ),
            format!("{}/{}", a.codes_provoked.len(), a.codes_documented.len()),
        );
    }
    let cases = report.cases();
    let rate = if report.seconds > 0.0 {
        cases as f64 / report.seconds
    } else {
        0.0
    };
    let _ = writeln!(
        out,
        "{} cases in {:.2}s ({:.0} cases/s), {} failed, seed {}{}",
        cases,
        report.seconds,
        rate,
        report.failed(),
        report.seed,
        if report.interrupted {
            " — interrupted"
        } else {
            ""
        }
    );
    let retries: usize = report.apis.iter().map(|a| a.retries).sum();
    if retries > 0 {
        let _ = writeln!(
            out,
            "note: {retries} requests were retried after throttling or a transport fault"
        );
    }
    for a in &report.apis {
        if a.unobservable_effects > 0 {
            let _ = writeln!(
                out,
                "note: {}: {} successful effects could not be observed (the API offers no view of key bindings)",
                a.api, a.unobservable_effects
            );
        }
    }
    for f in report.apis.iter().flat_map(|a| &a.failures) {
        let _ = writeln!(out, "\n{}", render_failure(f));
    }
    out
}

/// A failure for people.
pub fn render_failure(f: &Failure) -> String {
    let source = f
        .source
        .as_ref()
        .map(|s| format!("{} § {}", s.doc, s.section))
        .unwrap_or_default();
    format!(
        "FAIL {} — rule `{}` ({})\n  expected: {}\n  actual:   {}\n  {}\n  minimal case (after {} shrink steps): {}\n  reproduce: {}",
        f.api,
        f.rule,
        source,
        f.expected,
        f.actual,
        f.detail,
        f.shrink_steps,
        serde_json::to_string(&f.case.params).unwrap_or_default(),
        f.curl
    )
}

/// Writes the JSON report.
pub fn write_json(report: &RunReport, path: &Path) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(report).map_err(std::io::Error::other)?;
    std::fs::write(path, text)
}

fn xml_escape(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect::<String>()
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// JUnit XML: one testsuite per API, one testcase per rule; a failing rule carries its minimal
/// repro.
pub fn junit(report: &RunReport) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"apiconform\" tests=\"{}\" failures=\"{}\" time=\"{:.3}\">",
        report
            .apis
            .iter()
            .map(|a| a.rules_total.len())
            .sum::<usize>(),
        report.apis.iter().map(|a| a.failures.len()).sum::<usize>(),
        report.seconds
    );
    for a in &report.apis {
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\">",
            xml_escape(&a.api),
            a.rules_total.len(),
            a.failures.len()
        );
        for rule in &a.rules_total {
            let _ = write!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\"",
                xml_escape(&a.api),
                xml_escape(rule)
            );
            if let Some(f) = a.failures.iter().find(|f| &f.rule == rule) {
                let _ = writeln!(
                    out,
                    ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                    xml_escape(&format!("expected {}; got {}", f.expected, f.actual)),
                    xml_escape(&render_failure(f))
                );
            } else if !a.rules_exercised.contains(rule) {
                let _ = writeln!(
                    out,
                    ">\n      <skipped message=\"not exercised by this run\"/>\n    </testcase>"
                );
            } else {
                out.push_str("/>\n");
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// Writes one repro file per failure into `dir`; returns the paths.
pub fn write_repros(report: &RunReport, dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut paths = Vec::new();
    for f in report.apis.iter().flat_map(|a| &a.failures) {
        let name = format!("{}--{}.json", f.api.replace('/', "--"), f.rule);
        let path = dir.join(name);
        std::fs::write(
            &path,
            serde_json::to_string_pretty(f).map_err(std::io::Error::other)?,
        )?;
        paths.push(path);
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

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
