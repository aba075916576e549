//! Files a user may be handed — world, spec, repro, journal, run report — are bounded before a
//! parser sees them (issue 23, item 12): nesting deeper than any such file needs is refused at
//! once, naming the file and the line, instead of a YAML parse quadratic in the depth (100,000
//! levels in 200 KB took 40 s).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

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
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn deeply_nested_files_are_refused_before_parsing_naming_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    // 100,000 levels in 200 KB: YAML block sequences, and flow collections for the JSON files.
    let dashes = format!("{}x\n", "- ".repeat(100_000));
    let brackets = "[".repeat(100_000);
    let journal = format!(
        "{}\n{{\"before\": {brackets}\n",
        serde_json::json!({"started": {"version": 1, "target": "http://127.0.0.1:9", "at": 0}})
    );
    let cases: [(&str, String, &[&str], &str); 5] = [
        (
            "world.yaml",
            format!("instances:\n{dashes}"),
            &["run", "--dry-run", "--world"],
            "world.yaml:2:",
        ),
        (
            "Spec.yaml",
            format!("api:\n  name: X\n{dashes}"),
            &["specs", "lint"],
            "Spec.yaml:3:",
        ),
        ("repro.json", brackets.clone(), &["replay"], "repro.json:1:"),
        ("journal", journal, &["restore"], "journal:2"),
        (
            "report.json",
            format!("{{\"apis\": {brackets}"),
            &["report", "merge"],
            "at line 1 column",
        ),
    ];
    for (name, text, args, at) in cases {
        std::fs::write(dir.path().join(name), &text).unwrap();
        let mut all = args.to_vec();
        all.push(name);
        let started = Instant::now();
        let (code, out) = apiconform(&all, dir.path());
        assert_eq!(code, 2, "{name}: {out}");
        assert!(out.contains(name) && out.contains(at), "{name}: {out}");
        assert!(out.contains("nested more than 32 levels"), "{name}: {out}");
        // Not a speed target: the parse this replaces took 40 s.
        assert!(started.elapsed() < Duration::from_secs(20), "{name}");
    }
}
