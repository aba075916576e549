//! Reports: the console table, JSON for machines, JUnit XML for CI, a self-contained HTML page
//! ([`html`]), repro files, and the merge of a run's shards into one report ([`merge`]).
//!
//! Reports only read results: requests arrive redacted ([`crate::protocol::redact`]) inside the
//! failures the runner made.

pub mod console;
pub mod html;
pub mod merge;
pub mod repro;
mod selftest;

use std::fmt::Write as _;
use std::path::Path;

use crate::run::{ApiStats, Failure, ProbeStatus, RateProbe, RunReport};
use console::Shown;

pub use selftest::{fault_line, selftest_table, variant_line};

/// The closing table.
pub fn table(report: &RunReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<46} {:>6} {:>6} {:>5} {:>6} {:>5} {:>7} {:>7}",
        "API", "cases", "pass", "fail", "unspec", "open%", "rules", "codes"
    );
    for a in &report.apis {
        let _ = writeln!(
            out,
            "{:<46} {:>6} {:>6} {:>5} {:>6} {:>5} {:>7} {:>7}",
            a.api,
            a.cases,
            a.pass,
            a.fail,
            a.unspecified,
            format!(
                "{:.0}%",
                100.0 * a.unspecified as f64 / a.cases.max(1) as f64
            ),
            format!("{}/{}", a.exercised_count(), a.rules_total.len()),
            format!("{}/{}", a.codes_provoked.len(), a.codes_documented.len()),
        );
    }
    let cases = report.cases();
    // Cases per second over the time the cases took: the probes' bursts and back-offs aside.
    let busy = report.seconds - report.probe_seconds;
    let rate = if busy > 0.0 { cases as f64 / busy } else { 0.0 };
    let probes = match report.probe_seconds > 0.0 {
        true => format!(", {:.2}s of it rate-limit probes", report.probe_seconds),
        false => String::new(),
    };
    // Which part of a run this is: one shard, or shards merged (`report merge`).
    let part = match (&report.merged, &report.shard) {
        (Some(m), _) => format!(", {}", m.summary()),
        (None, Some(s)) => format!(", shard {}/{}", s.index, s.count),
        (None, None) => String::new(),
    };
    let (exercised, rules) = report.rules_exercised();
    let _ = writeln!(
        out,
        "{} cases in {:.2}s{probes} ({:.0} cases/s), {} failed, {exercised} of {rules} rules exercised, seed {}{part}{}",
        cases,
        report.seconds,
        rate,
        report.failed(),
        report.seed,
        match (&report.stopped_by, report.interrupted) {
            (Some(budget), _) => format!(" — stopped by {budget}"),
            (None, true) => " — interrupted".to_string(),
            (None, false) => String::new(),
        }
    );
    for note in &report.notes {
        let _ = writeln!(out, "note: {note}");
    }
    for line in not_exercised_lines(report) {
        let _ = writeln!(out, "{line}");
    }
    let retries: usize = report.apis.iter().map(|a| a.retries).sum();
    if retries > 0 {
        let _ = writeln!(
            out,
            "note: {retries} requests were retried after throttling or a transport fault"
        );
    }
    for a in &report.apis {
        let throttled = a.not_judged - a.not_sent.values().sum::<usize>().min(a.not_judged);
        if throttled > 0 {
            let _ = writeln!(
                out,
                "note: {}: {} cases got only throttling answers and were not judged (pacing fell back to the documented rate)",
                a.api, throttled
            );
        }
        for (why, n) in &a.not_sent {
            let _ = writeln!(out, "note: {}: {n} cases not sent: each {why}", a.api);
        }
        if a.unobservable_effects > 0 {
            let _ = writeln!(
                out,
                "note: {}: {} successful effects could not be observed (the API offers no view of key bindings)",
                a.api, a.unobservable_effects
            );
        }
    }
    for a in &report.apis {
        for p in &a.rate_probes {
            let _ = writeln!(out, "{}", render_probe(&a.api, p));
        }
    }
    if let Some(r) = &report.restore {
        let _ = writeln!(out, "{}", r.summary());
    }
    for f in report.apis.iter().flat_map(|a| &a.failures) {
        let _ = writeln!(out, "\n{}", render_failure(f));
    }
    out
}

/// Per API whose rules were not all exercised: `N of M rules exercised`, then its unexercised
/// rules, grouped by their reasons, one line each.
pub fn not_exercised_lines(report: &RunReport) -> Vec<String> {
    let lead = match report.require_exercised {
        true => "FAIL not exercised (--require-exercised)",
        false => "not exercised",
    };
    let mut out = Vec::new();
    for a in &report.apis {
        if a.exercised_count() == a.rules_total.len() {
            continue;
        }
        out.push(format!(
            "{lead}: {}: {} of {} rules exercised",
            a.api,
            a.exercised_count(),
            a.rules_total.len()
        ));
        for (why, rules) in grouped_not_exercised(a) {
            out.push(format!("  {}: {why}", rules.join(", ")));
        }
    }
    out
}

/// An API's unexercised rules grouped by their reasons (in words), in rule order. A report
/// written before the reasons were recorded gives its unexercised rules without one.
pub fn grouped_not_exercised(a: &ApiStats) -> Vec<(String, Vec<String>)> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    let unexplained = a
        .rules_total
        .iter()
        .filter(|r| !a.rules_exercised.contains(*r))
        .filter(|r| !a.rules_not_exercised.iter().any(|n| &n.rule == *r))
        .map(|r| {
            (
                r.clone(),
                "no reason recorded (an older report)".to_string(),
            )
        });
    let explained = a
        .rules_not_exercised
        .iter()
        .map(|n| (n.rule.clone(), n.reasons_line()));
    for (rule, why) in explained.chain(unexplained) {
        match groups.iter_mut().find(|(w, _)| *w == why) {
            Some((_, rules)) => rules.push(rule),
            None => groups.push((why, vec![rule])),
        }
    }
    groups
}

/// A rate-limit probe in one line.
pub fn render_probe(api: &str, p: &RateProbe) -> String {
    let limit = format!(
        "rate limit {}: {}/s ({} § {})",
        api, p.per_second, p.source.doc, p.source.section
    );
    match p.status {
        ProbeStatus::NotSent => format!("probe: {limit} not probed: {}", p.detail),
        status => format!(
            "probe: {limit}: {} requests in {} burst(s) of {}, {} answered {}, back-off {} ms: {}",
            p.sent,
            p.bursts,
            p.burst,
            p.throttled,
            p.code,
            p.backoff_ms,
            match status {
                ProbeStatus::Pass => "pass",
                ProbeStatus::Fail => "FAIL",
                _ => "unspecified",
            }
        ),
    }
}

/// A failure for people. Each value in it may have come from a target (codes, messages, request
/// ids) or a file (a shard's, a repro's): it is shown on one line, its controls escaped.
pub fn render_failure(f: &Failure) -> String {
    let source = f
        .source
        .as_ref()
        .map(|s| format!("{} § {}", s.doc, s.section))
        .unwrap_or_default();
    let source = match strength_word(f) {
        Some(w) => format!("{source}; {w}"),
        None => source,
    };
    let case = match &f.case.example {
        Some(name) if !f.shrunk => {
            format!("the document's example «{name}», as printed (its ids the world's)")
        }
        Some(name) => format!(
            "minimal case shrunk from the document's example «{name}», no longer as printed (after {} shrink steps)",
            f.shrink_steps
        ),
        None => format!("minimal case (after {} shrink steps)", f.shrink_steps),
    };
    let mut out = format!(
        "FAIL {} — rule `{}` ({})\n  expected: {}\n  actual:   {}\n  {}\n  {case}: {}\n  reproduce: {}",
        Shown(&f.api),
        Shown(&f.rule),
        Shown(&source),
        Shown(&f.expected),
        Shown(&f.actual),
        Shown(&f.detail),
        Shown(&serde_json::to_string(&f.case.params).unwrap_or_default()),
        Shown(&f.curl)
    );
    if f.burst.is_none() && f.status != 0 {
        out += &format!(
            "\n  response: HTTP {}{} {}",
            f.status,
            f.code
                .as_deref()
                .map_or(String::new(), |c| format!(" (code {})", Shown(c))),
            Shown(&f.response)
        );
    }
    if let Some(pre) = &f.preconditions {
        for i in &pre.instances {
            out += &format!(
                "\n  met: {} {:?} holding {}",
                Shown(&i.id),
                i.state,
                Shown(&i.keys.join(", "))
            );
        }
    }
    for note in &f.notes {
        out += &format!("\n  note: {}", Shown(note));
    }
    out
}

/// The rest of a `<testcase` element that failed: the failure, its message in one line and
/// the whole rendered failure as its text.
fn junit_failure(f: &Failure) -> String {
    format!(
        ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>\n",
        xml_escape(&format!(
            "expected {}; got {}{}",
            f.expected,
            f.actual,
            strength_word(f).map_or(String::new(), |w| format!(" [{w}]"))
        )),
        xml_escape(&render_failure(f))
    )
}

/// What a failure rests on, in words.
fn strength_word(f: &Failure) -> Option<&'static str> {
    f.strength.map(|s| match s {
        crate::oracle::Strength::Seed => "stated in a seed",
        crate::oracle::Strength::Current => "stated in the current definitions",
        crate::oracle::Strength::Judgement => "our judgement (--strict)",
    })
}

/// Writes the JSON report.
pub fn write_json(report: &RunReport, path: &Path) -> std::io::Result<()> {
    let text = console::to_json_pretty(report).map_err(std::io::Error::other)?;
    std::fs::write(path, text)
}

/// Text for XML 1.0 content and attribute values: markup escaped, and every character XML
/// forbids (most controls, U+FFFE, U+FFFF) or a reader would be misled by (bidi overrides) shown
/// escaped as the console shows it, so the file stays well-formed whatever a target answered.
fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' | '\t' => out.push(c),
            c if console::needs_escape(c) => {
                let _ = console::write_escaped(&mut out, c);
            }
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML: one testsuite per API, one testcase per rule; a failing rule carries its minimal
/// repro.
pub fn junit(report: &RunReport) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    // Under --require-exercised a rule no case exercised is a failure, else skipped.
    let unexercised = |a: &ApiStats| match report.require_exercised {
        true => a.rules_total.len() - a.exercised_count(),
        false => 0,
    };
    let (exercised, rules) = report.rules_exercised();
    let _ = writeln!(
        out,
        "<testsuites name=\"apiconform: {exercised} of {rules} rules exercised\" tests=\"{}\" failures=\"{}\" time=\"{:.3}\">",
        report
            .apis
            .iter()
            .map(|a| a.rules_total.len() + a.rate_probes.len())
            .sum::<usize>(),
        report
            .apis
            .iter()
            .map(|a| a.failures.len() + unexercised(a))
            .sum::<usize>(),
        report.seconds
    );
    for a in &report.apis {
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\">",
            xml_escape(&a.api),
            a.rules_total.len() + a.rate_probes.len(),
            a.failures.len() + unexercised(a)
        );
        let _ = writeln!(
            out,
            "    <properties><property name=\"rules exercised\" value=\"{} of {}\"/></properties>",
            a.exercised_count(),
            a.rules_total.len()
        );
        for rule in &a.rules_total {
            let _ = write!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\"",
                xml_escape(&a.api),
                xml_escape(rule)
            );
            if let Some(f) = a.failures.iter().find(|f| &f.rule == rule) {
                out.push_str(&junit_failure(f));
            } else if !a.rules_exercised.contains(rule) {
                let why = a
                    .rules_not_exercised
                    .iter()
                    .find(|n| &n.rule == rule)
                    .map_or("not exercised by this run".to_string(), |n| {
                        format!("not exercised: {}", n.reasons_line())
                    });
                let element = match report.require_exercised {
                    true => "failure",
                    false => "skipped",
                };
                let _ = writeln!(
                    out,
                    ">\n      <{element} message=\"{}\"/>\n    </testcase>",
                    xml_escape(&why)
                );
            } else {
                out.push_str("/>\n");
            }
        }
        // One testcase per documented rate limit: the probe after the API's cases.
        for p in &a.rate_probes {
            let _ = write!(
                out,
                "    <testcase classname=\"{}\" name=\"{} {}/s\"",
                xml_escape(&a.api),
                xml_escape(&p.rule),
                p.per_second
            );
            let failed = a.failures.iter().find(|f| f.rule == p.rule);
            match (p.status, failed) {
                (ProbeStatus::Fail, Some(f)) => {
                    out.push_str(&junit_failure(f));
                }
                (ProbeStatus::Pass, _) => out.push_str("/>\n"),
                _ => {
                    let _ = writeln!(
                        out,
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                        xml_escape(&render_probe(&a.api, p))
                    );
                }
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
            console::to_json_pretty(f).map_err(std::io::Error::other)?,
        )?;
        paths.push(path);
    }
    Ok(paths)
}

/// A fenced Markdown block holding `text` as it is: the fence is longer than any run of
/// backticks in it, so nothing from a target can close it early.
fn fence(text: &str, lang: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let ticks = "`".repeat(longest.max(2) + 1);
    format!("{ticks}{lang}\n{}\n{ticks}\n", text.trim_end())
}

/// One text line for Markdown: controls escaped, and the characters Markdown would read as
/// markup inert.
fn md_line(text: &str) -> String {
    let shown = Shown(text).to_string();
    let mut out = String::with_capacity(shown.len());
    for c in shown.chars() {
        if "\\`*_[]<>#|".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// One repro as a section of a Markdown bug report (`apiconform repro bundle`): the API, the
/// document's line and quote, the minimal request (credentials and signature removed), the
/// answer, the expected outcome and its strength, a curl line with the secrets removed, and the
/// replay verdict when there is one.
pub fn bundle_section(f: &Failure, file: &str, verdict: Option<&str>) -> String {
    let mut md = format!("## {} — rule `{}`\n\n", md_line(&f.api), md_line(&f.rule));
    md += &format!("- repro file: `{}`\n", md_line(file));
    if let Some(s) = &f.source {
        md += &format!(
            "- document: {} § {}\n",
            md_line(&s.doc),
            md_line(&s.section)
        );
        if let Some(q) = &s.quote {
            md += &format!("- the document says:\n\n> {}\n\n", md_line(q));
        }
    }
    md += &format!(
        "- expected: {}{}\n- actual: {}\n- why: {}\n",
        md_line(&f.expected),
        strength_word(f).map_or(String::new(), |w| format!(" ({w})")),
        md_line(&f.actual),
        md_line(&f.detail)
    );
    if let Some(code) = &f.code {
        md += &format!("- the call's error code: `{}`\n", md_line(code));
    }
    if let Some(pre) = &f.preconditions {
        for i in &pre.instances {
            md += &format!(
                "- before the call, {} was {:?} holding {}\n",
                md_line(&i.id),
                i.state,
                md_line(&format!("{:?}", i.keys))
            );
        }
    }
    for note in &f.notes {
        md += &format!("- note: {}\n", md_line(note));
    }
    if let Some(v) = verdict {
        md += &format!("- replay: **{}**\n", md_line(v));
    }
    md += "\n### Minimal request\n\n";
    let mut req = format!("{} {} HTTP/1.1\n", f.request.method, f.request.target);
    for (k, v) in &f.request.headers {
        req += &format!("{k}: {v}\n");
    }
    if !f.request.body.is_empty() {
        req += &format!("\n{}", String::from_utf8_lossy(&f.request.body));
    }
    md += &fence(&req, "http");
    md += &format!("\n### Response (HTTP {})\n\n", f.status);
    md += &fence(&f.response, "");
    md += "\n### curl (credentials and signature removed: `apiconform repro curl FILE` prints it signed)\n\n";
    md += &fence(&f.curl, "sh");
    md += "\n";
    md
}
