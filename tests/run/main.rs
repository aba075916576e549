//! `apiconform run` end to end: every emulator fault is caught, named and shrunk; the correct
//! emulator passes across seeds.

mod catches;
mod cli;
mod plan;

use std::path::Path;
use std::process::Command;

/// Runs the binary; returns (exit code, stdout, parsed JSON report).
pub fn run(args: &[&str], dir: &Path) -> (i32, String, serde_json::Value) {
    let report = dir.join("report.json");
    let out = Command::new(env!("CARGO_BIN_EXE_apiconform"))
        .arg("run")
        .args(args)
        .arg("--report-json")
        .arg(&report)
        .arg("--repro-dir")
        .arg(dir.join("repros"))
        .env("CI", "true")
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let json = std::fs::read_to_string(&report)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    (
        out.status.code().unwrap_or(-1),
        stdout + &String::from_utf8_lossy(&out.stderr),
        json,
    )
}

/// Every failure in a report as (api, rule, failure object).
pub fn failures(report: &serde_json::Value) -> Vec<(String, String, serde_json::Value)> {
    report["apis"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|a| a["failures"].as_array().cloned().unwrap_or_default())
        .map(|f| {
            (
                f["api"].as_str().unwrap_or("").to_string(),
                f["rule"].as_str().unwrap_or("").to_string(),
                f,
            )
        })
        .collect()
}
