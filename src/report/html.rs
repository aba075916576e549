//! The HTML report: one self-contained page (inline CSS, no script, nothing fetched) that a
//! person opens from a CI artifact.
//!
//! Everything in a report that came from a target (responses, codes, messages, even the echo of
//! our own parameters) is hostile: every piece of text goes through [`escape`], and nothing is
//! ever put into an attribute but escaped text and ids we make ourselves ([`anchor`]). Long parts
//! (requests, responses, curl) sit in `<details>`, which folds without JavaScript.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::run::{ApiStats, Failure, ProbeStatus, RateProbe, RunReport, Tally};

/// Text made safe for HTML content and attribute values: the five special characters escaped,
/// and control and bidi characters (other than newline and tab) shown escaped as the console
/// shows them ([`super::console`]).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\t' => out.push(c),
            c if super::console::needs_escape(c) => {
                let _ = super::console::write_escaped(&mut out, c);
            }
            c => out.push(c),
        }
    }
    out
}

/// An id for an in-page link: only ASCII letters, digits and `-`, so it needs no escaping.
fn anchor(prefix: &str, name: &str) -> String {
    let mut out = String::from(prefix);
    for c in name.chars() {
        out.push(match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' => c,
            _ => '-',
        });
    }
    out
}

const STYLE: &str = "\
body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1b1f24;background:#fff}\
header,main{max-width:1180px;margin:0 auto;padding:0 20px}\
header{padding-top:18px}\
h1{font-size:24px;margin:0 0 8px}h2{font-size:20px;margin:32px 0 8px;padding-top:8px;border-top:2px solid #d0d7de}\
h3{font-size:16px;margin:18px 0 6px}h4{font-size:15px;margin:0 0 6px}\
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:8px 0}\
dl.meta dt{font-weight:600;color:#57606a}dl.meta dd{margin:0}\
table{border-collapse:collapse;margin:4px 0 10px;font-size:14px}\
th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:left;vertical-align:top}\
th{background:#f6f8fa}td.n{text-align:right;font-variant-numeric:tabular-nums}\
tr.fail td{background:#ffebe9}tr.unexercised td{color:#8c959f;font-style:italic}\
tr.open td{background:#fff8c5}\
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:13px;font-weight:600}\
.pass{background:#dafbe1;color:#116329}.fail{background:#ffebe9;color:#a40e26}\
.open{background:#fff8c5;color:#7d4e00}.none{background:#eaeef2;color:#57606a}\
.verdict{font-size:18px;font-weight:700;margin:10px 0 14px}\
.failure{border:1px solid #ff8182;border-left:5px solid #cf222e;border-radius:6px;padding:10px 14px;margin:10px 0 16px}\
blockquote{margin:6px 0;padding:4px 12px;border-left:4px solid #d0d7de;color:#424a53;background:#f6f8fa}\
pre{background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:8px;overflow-x:auto;\
white-space:pre-wrap;word-break:break-all;font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;margin:4px 0}\
details{margin:4px 0}summary{cursor:pointer;font-weight:600}\
dl.f{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:4px 0}\
dl.f dt{font-weight:600;color:#57606a}dl.f dd{margin:0}\
.warn{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;padding:6px 10px}\
nav table td a{text-decoration:none}\
";

/// The whole report as one HTML page.
pub fn html(report: &RunReport) -> String {
    let mut out = String::with_capacity(64 * 1024);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(
        out,
        "<title>apiconform report — {} failed, seed {}</title>",
        report.failed(),
        report.seed
    );
    let _ = writeln!(out, "<style>{STYLE}</style>\n</head>\n<body>");
    header(&mut out, report);
    out.push_str("<main>\n");
    for a in &report.apis {
        api_section(&mut out, a);
    }
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

fn header(out: &mut String, r: &RunReport) {
    out.push_str("<header>\n<h1>apiconform conformance report</h1>\n");
    let failed = r.failed();
    let (exercised, rules) = r.rules_exercised();
    let (class, words) = match (failed, r.interrupted, exercised == rules) {
        (0, false, true) => ("pass", "every check passed".to_string()),
        (0, true, _) => ("open", "interrupted: no failure in what ran".to_string()),
        (0, false, false) if r.require_exercised => (
            "fail",
            format!(
                "{} rule(s) not exercised (--require-exercised): {exercised} of {rules} rules exercised",
                rules - exercised
            ),
        ),
        (0, false, false) => (
            "open",
            format!("no failure, but only {exercised} of {rules} rules exercised"),
        ),
        (n, ..) => ("fail", format!("{n} failed (cases and rate-limit probes)")),
    };
    let _ = writeln!(
        out,
        "<p class=\"verdict\"><span class=\"badge {class}\">{}</span></p>",
        escape(&words)
    );
    out.push_str("<dl class=\"meta\">\n");
    let mut row = |k: &str, v: String| {
        let _ = writeln!(out, "<dt>{}</dt><dd>{}</dd>", escape(k), escape(&v));
    };
    row("target", r.target.clone());
    row("seed", r.seed.to_string());
    if r.cases_per_api > 0 {
        row("cases per API", r.cases_per_api.to_string());
    }
    if !r.patterns.is_empty() {
        row("specs", r.patterns.join(", "));
    }
    let shards = match (&r.merged, &r.shard) {
        (Some(m), _) => format!("merged: {}", m.summary()),
        (None, Some(s)) => format!("shard {} of {} only", s.index, s.count),
        (None, None) => "whole run (not sharded)".to_string(),
    };
    row("shards", shards);
    let sum = |f: fn(&ApiStats) -> usize| r.apis.iter().map(f).sum::<usize>();
    row(
        "totals",
        format!(
            "{} cases: {} pass, {} fail, {} unspecified, {} not judged; {} rate-limit probe(s) failed",
            r.cases(),
            sum(|a| a.pass),
            sum(|a| a.fail),
            sum(|a| a.unspecified),
            sum(|a| a.not_judged),
            sum(|a| a.failed_probes()),
        ),
    );
    row("rules exercised", format!("{exercised} of {rules}"));
    row("time", format!("{:.2} s", r.seconds));
    row(
        "interrupted",
        if r.interrupted { "yes" } else { "no" }.to_string(),
    );
    if let Some(budget) = &r.stopped_by {
        row("stopped by", budget.clone());
    }
    for note in &r.notes {
        row("kept off", note.clone());
    }
    if let Some(restore) = &r.restore {
        row("restore", restore.summary());
    }
    out.push_str("</dl>\n");
    if let Some(m) = r.merged.as_ref().filter(|m| m.incomplete()) {
        let _ = writeln!(
            out,
            "<p class=\"warn\">{}: the totals lack the cases of the missing shard(s).</p>",
            escape(&m.summary())
        );
    }
    // The closing table of `run`, with links to each API's section.
    out.push_str("<nav>\n<table>\n<tr><th>API</th><th>cases</th><th>pass</th><th>fail</th><th>unspecified</th><th>rules exercised</th><th>codes provoked</th><th>failures</th></tr>\n");
    for a in &r.apis {
        let class = if a.failures.is_empty() && a.fail == 0 {
            ""
        } else {
            " class=\"fail\""
        };
        let _ = writeln!(
            out,
            "<tr{class}><td><a href=\"#{}\">{}</a></td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}/{}</td><td class=\"n\">{}/{}</td><td class=\"n\">{}</td></tr>",
            anchor("api-", &a.api),
            escape(&a.api),
            a.cases,
            a.pass,
            a.fail,
            a.unspecified,
            a.exercised_count(),
            a.rules_total.len(),
            a.codes_provoked.len(),
            a.codes_documented.len(),
            a.failures.len()
        );
    }
    out.push_str("</table>\n</nav>\n</header>\n");
}

fn api_section(out: &mut String, a: &ApiStats) {
    let _ = writeln!(
        out,
        "<section class=\"api\" id=\"{}\">\n<h2>{}</h2>",
        anchor("api-", &a.api),
        escape(&a.api)
    );
    let _ = writeln!(
        out,
        "<table class=\"counts\"><tr><th>cases</th><th>pass</th><th>fail</th><th>unspecified</th><th>open share</th><th>not judged</th><th>effects not observable</th><th>retries</th></tr>\n<tr><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{:.0}%</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr></table>",
        a.cases,
        a.pass,
        a.fail,
        a.unspecified,
        100.0 * a.unspecified as f64 / a.cases.max(1) as f64,
        a.not_judged,
        a.unobservable_effects,
        a.retries
    );
    if !a.unspecified_by.is_empty() {
        out.push_str("<h3>Unspecified, by what the documents leave open</h3>\n<table><tr><th>situation</th><th>cases</th></tr>\n");
        for (why, n) in &a.unspecified_by {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td class=\"n\">{n}</td></tr>",
                escape(why)
            );
        }
        out.push_str("</table>\n");
    }
    rules_matrix(out, a);
    not_exercised(out, a);
    codes_matrix(out, a);
    if !a.rate_probes.is_empty() {
        out.push_str("<h3>Rate-limit probes</h3>\n<table><tr><th>limit</th><th>stated in</th><th>outcome</th><th>sent</th><th>throttled</th><th>answers</th><th>detail</th></tr>\n");
        for p in &a.rate_probes {
            probe_row(out, p);
        }
        out.push_str("</table>\n");
    }
    let _ = writeln!(out, "<h3>Failures ({})</h3>", a.failures.len());
    if a.failures.is_empty() {
        out.push_str("<p>None.</p>\n");
    }
    for f in &a.failures {
        failure(out, f);
    }
    out.push_str("</section>\n");
}

/// Rules as rows, outcomes as columns; a rule no case exercised says so.
fn rules_matrix(out: &mut String, a: &ApiStats) {
    out.push_str("<h3>Rules × outcome</h3>\n<table class=\"rules\"><tr><th>rule</th><th>pass</th><th>fail</th><th>unspecified</th><th>status</th></tr>\n");
    let rules: BTreeSet<&String> = a
        .rules_total
        .iter()
        .chain(a.rule_tallies.keys())
        .chain(a.failures.iter().map(|f| &f.rule))
        .collect();
    let counted = !a.rule_tallies.is_empty() || a.cases == 0;
    for rule in rules {
        let t = a
            .rule_tallies
            .get(rule)
            .copied()
            .unwrap_or(Tally::default());
        let failed = t.fail > 0 || a.failures.iter().any(|f| &f.rule == rule);
        let exercised = a.rules_exercised.contains(rule) || t != Tally::default() || failed;
        let (class, status) = if failed {
            ("fail", "<span class=\"badge fail\">FAIL</span>")
        } else if !exercised {
            (
                "unexercised",
                "<span class=\"badge none\">not exercised</span>",
            )
        } else if t.pass == 0 && t.unspecified > 0 {
            ("open", "<span class=\"badge open\">only unspecified</span>")
        } else {
            ("pass", "<span class=\"badge pass\">pass</span>")
        };
        let n = |v: usize| match counted {
            true => v.to_string(),
            false => "–".to_string(),
        };
        let _ = writeln!(
            out,
            "<tr class=\"{class}\"><td><code>{}</code></td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{status}</td></tr>",
            escape(rule),
            n(t.pass),
            n(t.fail),
            n(t.unspecified)
        );
    }
    out.push_str("</table>\n");
    if !counted {
        out.push_str("<p>This report was written before outcomes were counted per rule.</p>\n");
    }
}

/// The rules no case exercised, grouped by why.
fn not_exercised(out: &mut String, a: &ApiStats) {
    let groups = super::grouped_not_exercised(a);
    if groups.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "<h3>Rules not exercised ({} of {} rules exercised)</h3>\n<table class=\"unexercised\"><tr><th>rules</th><th>why</th></tr>",
        a.exercised_count(),
        a.rules_total.len()
    );
    for (why, rules) in groups {
        let rules: Vec<String> = rules
            .iter()
            .map(|r| format!("<code>{}</code>", escape(r)))
            .collect();
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td></tr>",
            rules.join(", "),
            escape(&why)
        );
    }
    out.push_str("</table>\n");
}

/// Each documented code: provoked by some case or not.
fn codes_matrix(out: &mut String, a: &ApiStats) {
    let _ = writeln!(
        out,
        "<h3>Documented error codes ({} of {} provoked)</h3>",
        a.codes_provoked.len(),
        a.codes_documented.len()
    );
    out.push_str("<table class=\"codes\"><tr><th>code</th><th>provoked</th></tr>\n");
    for code in a.codes_documented.union(&a.codes_provoked) {
        let yes = a.codes_provoked.contains(code);
        let _ = writeln!(
            out,
            "<tr{}><td><code>{}</code></td><td>{}</td></tr>",
            if yes { "" } else { " class=\"unexercised\"" },
            escape(code),
            if yes {
                "<span class=\"badge pass\">provoked</span>"
            } else {
                "<span class=\"badge none\">not provoked</span>"
            }
        );
    }
    out.push_str("</table>\n");
}

fn probe_row(out: &mut String, p: &RateProbe) {
    let (class, word) = match p.status {
        ProbeStatus::Pass => ("pass", "pass"),
        ProbeStatus::Fail => ("fail", "FAIL"),
        ProbeStatus::Unspecified => ("open", "unspecified"),
        ProbeStatus::NotSent => ("none", "not sent"),
    };
    let answers: Vec<String> = p.answers.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    let _ = writeln!(
        out,
        "<tr><td>{}/s, <code>{}</code> expected</td><td>{} § {}</td><td><span class=\"badge {class}\">{word}</span></td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>",
        p.per_second,
        escape(&p.code),
        escape(&p.source.doc),
        escape(&p.source.section),
        p.sent,
        p.throttled,
        escape(&answers.join(", ")),
        escape(&p.detail)
    );
}

fn failure(out: &mut String, f: &Failure) {
    let _ = writeln!(
        out,
        "<article class=\"failure\" id=\"{}\">\n<h4><span class=\"badge fail\">FAIL</span> rule <code>{}</code></h4>",
        anchor(&anchor("fail-", &f.api), &format!("-{}", f.rule)),
        escape(&f.rule)
    );
    out.push_str("<dl class=\"f\">\n");
    if let Some(s) = &f.source {
        let _ = writeln!(
            out,
            "<dt>stated in</dt><dd>{} § {}</dd>",
            escape(&s.doc),
            escape(&s.section)
        );
    }
    if let Some(w) = super::strength_word(f) {
        let _ = writeln!(out, "<dt>rests on</dt><dd>{}</dd>", escape(w));
    }
    let _ = writeln!(out, "<dt>expected</dt><dd>{}</dd>", escape(&f.expected));
    let _ = writeln!(out, "<dt>actual</dt><dd>{}</dd>", escape(&f.actual));
    let _ = writeln!(out, "<dt>detail</dt><dd>{}</dd>", escape(&f.detail));
    if f.found_after > 0 {
        let _ = writeln!(
            out,
            "<dt>found after</dt><dd>{} cases of the API</dd>",
            f.found_after
        );
    }
    if let Some(n) = f.burst {
        let _ = writeln!(
            out,
            "<dt>burst</dt><dd>the request below, {n} times at once</dd>"
        );
    }
    out.push_str("</dl>\n");
    if let Some(q) = f.source.as_ref().and_then(|s| s.quote.as_deref()) {
        let _ = writeln!(out, "<blockquote>{}</blockquote>", escape(q));
    }
    let case_title = match &f.case.example {
        Some(name) => format!("The document's example «{name}», as printed"),
        None => format!("Minimal case (after {} shrink steps)", f.shrink_steps),
    };
    let case = serde_json::json!({
        "params": f.case.params,
        "region": f.case.region,
        "violates": f.case.violates,
        "situations": f.case.situations,
        "auth": f.case.auth,
        "transport": f.case.transport,
    });
    details(
        out,
        &case_title,
        &serde_json::to_string_pretty(&case).unwrap_or_default(),
        true,
    );
    let mut request = format!("{} {}\n", f.request.method, f.request.target);
    for (k, v) in &f.request.headers {
        let _ = writeln!(request, "{k}: {v}");
    }
    if !f.request.body.is_empty() {
        request.push('\n');
        request.push_str(&String::from_utf8_lossy(&f.request.body));
    }
    details(
        out,
        "Request (exactly as sent, secrets redacted)",
        &request,
        false,
    );
    details(
        out,
        &format!("Response (HTTP {})", f.status),
        &f.response,
        false,
    );
    details(out, "Reproduce with curl", &f.curl, true);
    out.push_str("</article>\n");
}

fn details(out: &mut String, summary: &str, body: &str, open: bool) {
    let _ = writeln!(
        out,
        "<details{}><summary>{}</summary><pre>{}</pre></details>",
        if open { " open" } else { "" },
        escape(summary),
        escape(body)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The characters that open markup or end an attribute never come through.
    #[test]
    fn escaping_leaves_no_markup() {
        let hostile = "</pre><script>alert('x')</script>\"><img src=x onerror=1>&\u{0}\u{1b}";
        let e = escape(hostile);
        assert!(!e.contains('<') && !e.contains('>') && !e.contains('"') && !e.contains('\''));
        assert!(e.contains("&lt;/pre&gt;&lt;script&gt;"), "{e}");
        assert!(!e.contains('\u{0}') && !e.contains('\u{1b}'));
        assert_eq!(escape("a\nb\tc"), "a\nb\tc");
    }

    /// Ids are made of letters, digits and dashes only, whatever the name.
    #[test]
    fn anchors_need_no_escaping() {
        let id = anchor("api-", "x/\"><script>");
        assert!(
            id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "{id}"
        );
    }
}
