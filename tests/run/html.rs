//! The HTML report: one self-contained page — a section per API, each failure with its curl,
//! nothing from the target able to become markup, no script, nothing fetched.

use apiconform::emulator::Config;
use apiconform::protocol::HttpResponse;
use apiconform::report::html::{escape, html};
use apiconform::run::RunOptions;

/// What a hostile target puts in its answers.
const HOSTILE: &str = "</pre><script>alert(1)</script><img src=https://evil.example/x.png>";

/// Checks the page's structure: a section per API, each failure's curl, no script, no
/// attribute pointing anywhere but into the page itself.
fn check_structure(page: &str, report: &apiconform::run::RunReport) {
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(!page.to_ascii_lowercase().contains("<script"), "a script");
    for a in &report.apis {
        assert!(
            page.contains(&format!("<h2>{}</h2>", escape(&a.api))),
            "no section for {}",
            a.api
        );
    }
    assert_eq!(
        page.matches("<section class=\"api\"").count(),
        report.apis.len()
    );
    for f in report.failures() {
        assert!(page.contains(&escape(&f.curl)), "no curl for {}", f.rule);
    }
    assert_eq!(
        page.matches("<article class=\"failure\"").count(),
        report.failures().count()
    );
    // The only attributes naming a place are in-page links. Text holds no `<` (it is all
    // escaped), so every `<...>` is one of our tags.
    let lower = page.to_ascii_lowercase();
    for tag in lower
        .split('<')
        .skip(1)
        .map(|t| t.split('>').next().unwrap_or(""))
    {
        assert!(!tag.contains(" src="), "a src attribute: <{tag}>");
        for (at, _) in tag.match_indices(" href=") {
            assert!(
                tag[at + 6..].starts_with("\"#"),
                "a link out of the page: <{tag}>"
            );
        }
    }
    assert!(
        !lower.contains("@import") && !lower.contains("url("),
        "CSS fetching something"
    );
}

/// A target whose error codes and messages are markup: the page shows them as text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_answer_comes_out_inert() {
    let (url, _) = crate::emulator_behind(Config::default(), |req, resp| {
        let body = String::from_utf8_lossy(&resp.body);
        // Every Tencent API 3.0 error (CVM and ECM): its code and message become markup.
        let api3_error = req.target.starts_with('/')
            && body.contains("\"Response\"")
            && body.contains("\"Error\"");
        if !api3_error {
            return resp;
        }
        let text = serde_json::json!({"Response": {
            "Error": {"Code": HOSTILE, "Message": format!("<a href=\"https://evil.example/\">{HOSTILE}</a>")},
            "RequestId": "00000000-0000-0000-0000-000000000000"
        }});
        HttpResponse {
            body: serde_json::to_vec(&text).unwrap(),
            ..resp
        }
    })
    .await;
    let report = crate::run_against(
        &url,
        RunOptions {
            cases: 40,
            ..Default::default()
        },
    )
    .await;
    let hostile: Vec<_> = report
        .failures()
        .filter(|f| f.response.contains(HOSTILE))
        .collect();
    assert!(
        !hostile.is_empty(),
        "the hostile answers fail: {:?}",
        report.apis.iter().map(|a| a.fail).collect::<Vec<_>>()
    );
    let page = html(&report);
    check_structure(&page, &report);
    assert!(!page.contains(HOSTILE));
    assert!(page.contains("&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;"));
}

/// `run --report-html` against a faulty emulator writes the page: the header says the seed
/// and shard, each API has its rule matrix and code matrix, each failure its quote and curl.
#[test]
fn run_writes_the_html_report() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    let (code, out, json) = crate::run(
        &[
            "--fault",
            "disassociate-noop",
            "--cases",
            "40",
            "--seed",
            "9",
            "--shard",
            "1/2",
            "--report-html",
            page.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(code, 1, "{out}");
    let report: apiconform::run::RunReport = serde_json::from_value(json).unwrap();
    let text = std::fs::read_to_string(&page).unwrap();
    check_structure(&text, &report);
    assert!(text.contains("<dt>seed</dt><dd>9</dd>"));
    assert!(text.contains("shard 1 of 2 only"));
    let apis = crate::api_count();
    assert_eq!(text.matches("<h3>Rules × outcome</h3>").count(), apis);
    assert_eq!(text.matches("<h3>Documented error codes").count(), apis);
    assert!(report.failures().count() > 0);
    for f in report.failures() {
        if let Some(q) = f.source.as_ref().and_then(|s| s.quote.as_deref()) {
            assert!(text.contains(&format!("<blockquote>{}</blockquote>", escape(q))));
        }
    }
}
