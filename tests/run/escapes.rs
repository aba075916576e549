//! Text from outside never reaches a terminal raw (issue 23, item 3): a target whose error codes,
//! messages and request ids carry escape sequences (a window title, a cleared screen, NUL, C1
//! controls, a bidi override), a shard report and a journal carrying them — what `run`,
//! `report merge` and `restore` print, and every report they write, show them escaped.

use std::path::Path;
use std::process::Command;

use apiconform::emulator::Config;
use apiconform::protocol::HttpResponse;

/// What a hostile target puts in every error code, message and request id.
const CODE_TAIL: &str = "\u{1b}]0;owned\u{7}";
const MESSAGE: &str =
    "\u{1b}[2J\u{1b}[31mred\u{9b}1m\u{202e}gnp.exe\u{0}\r\nFAIL forged line\u{7f}";
const REQUEST_ID: &str = "\u{1b}[8mhidden\u{1b}[0m\u{2066}";

/// Every character of `text` a terminal would act on (a newline aside): C0 and C1 controls,
/// DEL, the bidi formatting characters.
fn raw_controls(text: &str) -> Vec<char> {
    let bidi = |c| matches!(c, '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    text.chars()
        .filter(|&c| c != '\n' && (c.is_control() || bidi(c)))
        .collect()
}

/// The emulator, with every error answer's code, message and request id made hostile.
async fn hostile_target() -> String {
    let (url, _) = super::emulator_behind(Config::default(), |_, resp| {
        let Ok(mut body) = serde_json::from_slice::<serde_json::Value>(&resp.body) else {
            return resp;
        };
        let Some(r) = body.get_mut("Response") else {
            return resp;
        };
        r["RequestId"] = REQUEST_ID.into();
        if let Some(e) = r.get_mut("Error") {
            let code = format!("{}{CODE_TAIL}", e["Code"].as_str().unwrap_or(""));
            e["Code"] = code.into();
            e["Message"] = MESSAGE.into();
        }
        HttpResponse {
            body: body.to_string().into_bytes(),
            ..resp
        }
    })
    .await;
    url
}

/// Runs the binary with `args` in `dir`; returns the exit code and everything it printed.
fn apiconform(args: &[&str], dir: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_apiconform"))
        .args(args)
        .env("CI", "true")
        .current_dir(dir)
        .output()
        .expect("the binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).expect("UTF-8 output")
            + &String::from_utf8(out.stderr).expect("UTF-8 output"),
    )
}

/// Every report file in `dir` (JSON, JUnit, HTML, repros): valid UTF-8 with no raw control;
/// the JUnit file is well-formed XML.
fn check_reports(dir: &Path, at_least: usize) {
    let mut files = vec![];
    for entry in walk(dir) {
        let text = std::fs::read_to_string(&entry).expect("a report is UTF-8");
        assert!(
            raw_controls(&text).is_empty(),
            "{}: {:?}",
            entry.display(),
            raw_controls(&text)
        );
        if entry.extension().is_some_and(|e| e == "xml") {
            let mut reader = quick_xml::Reader::from_str(&text);
            loop {
                match reader.read_event() {
                    Ok(quick_xml::events::Event::Eof) => break,
                    Ok(quick_xml::events::Event::Text(t)) => {
                        t.decode().expect("JUnit text decodes");
                    }
                    Ok(_) => {}
                    Err(e) => panic!("{}: not well-formed: {e}", entry.display()),
                }
            }
        }
        files.push(entry);
    }
    assert!(files.len() >= at_least, "{files:?}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p
            .extension()
            .is_some_and(|e| ["json", "xml", "html"].iter().any(|x| e == *x))
        {
            out.push(p);
        }
    }
    out
}

/// `run` against the hostile target, then `report merge` of its report (a shard file carrying
/// the same strings): nothing printed or written holds a raw control, and the hostile text is
/// there, escaped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_targets_escape_sequences_are_shown_escaped_by_run_and_merge() {
    let url = hostile_target().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("run")).unwrap();
    let d = dir.path().to_path_buf();
    let (code, out) = tokio::task::spawn_blocking(move || {
        apiconform(
            &[
                "run",
                "--target",
                &url,
                "--spec",
                "tencent-cvm/AssociateInstancesKeyPairs",
                "--cases",
                "40",
                "--no-rate-probes",
                "--report-json",
                "run/report.json",
                "--junit",
                "run/junit.xml",
                "--report-html",
                "run/report.html",
                "--repro-dir",
                "run/repros",
            ],
            &d,
        )
    })
    .await
    .unwrap();
    assert_eq!(code, 1, "the mangled codes are failures: {out}");
    assert!(
        raw_controls(&out).is_empty(),
        "{:?}\n{out}",
        raw_controls(&out)
    );
    assert!(out.contains("\\x1b]0;owned\\x07"), "{out}");
    // JSON, JUnit, HTML and a repro at least.
    check_reports(&dir.path().join("run"), 4);
    let report = std::fs::read_to_string(dir.path().join("run/report.json")).unwrap();
    assert!(
        report.contains("\\u001b]0;owned"),
        "the JSON keeps the code"
    );

    std::fs::create_dir(dir.path().join("merged")).unwrap();
    let (code, out) = apiconform(
        &[
            "report",
            "merge",
            "run/report.json",
            "--report-json",
            "merged/report.json",
            "--junit",
            "merged/junit.xml",
            "--report-html",
            "merged/report.html",
        ],
        dir.path(),
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        raw_controls(&out).is_empty(),
        "{:?}\n{out}",
        raw_controls(&out)
    );
    assert!(out.contains("\\x1b]0;owned\\x07"), "{out}");
    check_reports(&dir.path().join("merged"), 3);
}

/// `restore` of a journal whose ids and target carry escape sequences, against the hostile
/// target: what it prints and writes holds no raw control.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journals_escape_sequences_are_shown_escaped_by_restore() {
    let url = hostile_target().await;
    let dir = tempfile::tempdir().unwrap();
    let mut text = format!(
        "{}\n",
        serde_json::json!({"started": {"version": 1, "target": url, "at": 0}})
    );
    for id in [
        "ins-es000001",
        "ins-\u{1b}]0;owned\u{7}",
        "ins-\u{202e}1000",
    ] {
        let line = serde_json::json!({"before": {
            "product": "cvm", "region": "ap-guangzhou", "id": id,
            "keys": [format!("skey-\u{9b}{id}")], "state": "STOPPED\u{0}", "seen": true,
        }});
        text.push_str(&format!("{line}\n"));
    }
    std::fs::write(dir.path().join("journal"), text).unwrap();
    let d = dir.path().to_path_buf();
    let (code, out) = tokio::task::spawn_blocking(move || {
        apiconform(&["restore", "journal", "--report-json", "restore.json"], &d)
    })
    .await
    .unwrap();
    assert!(code > 0, "the hostile ids cannot be put back: {out}");
    assert!(
        raw_controls(&out).is_empty(),
        "{:?}\n{out}",
        raw_controls(&out)
    );
    assert!(out.contains("\\x1b"), "{out}");
    if let Ok(written) = std::fs::read_to_string(dir.path().join("restore.json")) {
        assert!(raw_controls(&written).is_empty(), "{written}");
    }
}
