//! `apiconform run` end to end: every emulator fault is caught, named and shrunk; the correct
//! emulator passes across seeds; `apiconform selftest` shows both as a table.

mod cascade;
mod catches;
mod cli;
mod cloud;
mod concurrent;
mod coverage;
mod detection;
mod discover;
mod escapes;
mod hostile;
mod html;
mod imports;
mod inputs;
mod new_api;
mod plan;
mod probes;
mod progress;
mod replays;
mod rerun;
mod restore;
mod selftest;
mod shards;
mod strength;
mod variants;

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use apiconform::emulator::{Config, Emulator};
use apiconform::protocol::{HttpRequest, HttpResponse};
use apiconform::run::{NoProgress, RunOptions, RunReport, Target};

/// The binary, with the vendors' credential variables set to the emulator's documented
/// defaults: a run against a remote-looking target (0.0.0.0, a vendor's host name through
/// `--resolve`) needs credentials, as against a real account.
/// How many APIs the built-in specs hold: every file under `specs/` is built in, so tests that
/// count APIs read it instead of writing a number down.
pub fn api_count() -> usize {
    apiconform::spec::load_embedded()
        .expect("built-in specs")
        .apis
        .len()
}

pub fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_apiconform"));
    let (tid, tkey) = apiconform::emulator::TENCENT_DEFAULT;
    let (aid, akey) = apiconform::emulator::ALIBABA_DEFAULT;
    cmd.env("TENCENTCLOUD_SECRET_ID", tid)
        .env("TENCENTCLOUD_SECRET_KEY", tkey)
        .env("ALIBABA_CLOUD_ACCESS_KEY_ID", aid)
        .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", akey);
    cmd
}

/// Runs the binary; returns (exit code, stdout, parsed JSON report).
pub fn run(args: &[&str], dir: &Path) -> (i32, String, serde_json::Value) {
    let report = dir.join("report.json");
    let out = bin()
        .arg("run")
        .args(args)
        .arg("--report-json")
        .arg(&report)
        .arg("--repro-dir")
        .arg(dir.join("repros"))
        .env("CI", "true")
        // A run against a remote-looking target journals to ./apiconform.journal by default:
        // in the test's folder, never the source tree.
        .current_dir(dir)
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

/// The first repro file a run wrote into `dir/repros`.
pub fn first_repro(dir: &Path) -> std::path::PathBuf {
    std::fs::read_dir(dir.join("repros"))
        .expect("a repro folder")
        .next()
        .expect("a repro file")
        .expect("a readable entry")
        .path()
}

/// Runs the built-in specs matching `pattern` against the loopback emulator at `url`.
pub async fn run_spec(url: &str, pattern: &str, cases: usize) -> RunReport {
    run_against(
        url,
        RunOptions {
            patterns: vec![pattern.into()],
            cases,
            ..Default::default()
        },
    )
    .await
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

/// What the server behind [`emulator_behind`] holds: the emulator, the hook, and the log.
type Behind = (Arc<Emulator>, Arc<Hook>, Arc<Mutex<Vec<HttpRequest>>>);

/// Rewrites the emulator's answer to a request (a deliberately wrong or flaky target). An
/// answer with status [`LOST`] is never delivered: the connection breaks after the emulator
/// served the request (a response lost on the way).
pub type Hook = dyn Fn(&HttpRequest, HttpResponse) -> HttpResponse + Send + Sync;

/// The status a [`Hook`] answers with to lose the response.
pub const LOST: u16 = 0;

/// The emulator (as `config` sets it up) on a loopback port behind a `hook` that may rewrite its
/// answers; every request received is written down. Returns the URL and the log.
pub async fn emulator_behind(
    config: Config,
    hook: impl Fn(&HttpRequest, HttpResponse) -> HttpResponse + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<HttpRequest>>>) {
    let emu = Arc::new(Emulator::new(config));
    let log: Arc<Mutex<Vec<HttpRequest>>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let hook: Arc<Hook> = Arc::new(hook);
    let state = (emu, hook, log.clone());
    let app = axum::Router::new()
        .fallback(
            |axum::extract::State((emu, hook, log)): axum::extract::State<Behind>,
             req: axum::extract::Request| async move {
                let (parts, body) = req.into_parts();
                let http = HttpRequest {
                    method: parts.method.as_str().to_string(),
                    target: parts
                        .uri
                        .path_and_query()
                        .map_or("/".to_string(), |pq| pq.as_str().to_string()),
                    headers: parts
                        .headers
                        .iter()
                        .map(|(k, v)| {
                            (
                                k.to_string(),
                                String::from_utf8_lossy(v.as_bytes()).into_owned(),
                            )
                        })
                        .collect(),
                    body: axum::body::to_bytes(body, 1 << 24).await.unwrap().to_vec(),
                };
                let resp = hook(
                    &http,
                    emu.handle(&http, apiconform::emulator::server::now()),
                );
                log.lock().unwrap().push(http);
                if resp.status == LOST {
                    let broken = futures::stream::once(async {
                        Err::<bytes::Bytes, _>(std::io::Error::other("response lost"))
                    });
                    return axum::response::Response::builder()
                        .status(200)
                        .header("content-length", "1000")
                        .body(axum::body::Body::from_stream(broken))
                        .unwrap();
                }
                let mut builder = axum::response::Response::builder().status(resp.status);
                for (k, v) in &resp.headers {
                    builder = builder.header(k.as_str(), v.as_str());
                }
                builder.body(axum::body::Body::from(resp.body)).unwrap()
            },
        )
        .with_state(state);
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, log)
}

/// Runs the built-in specs against the loopback emulator at `url` (its admin view on), from the
/// built-in world.
pub async fn run_against(url: &str, opts: RunOptions) -> RunReport {
    let set = apiconform::spec::load_embedded().expect("embedded specs load");
    let target = Target::new(url, std::time::Duration::from_secs(10)).expect("a loopback URL");
    let opts = RunOptions {
        admin: true,
        ..opts
    };
    let stop = std::sync::atomic::AtomicBool::new(false);
    apiconform::run::run(
        &set,
        apiconform::world::World::default_world(),
        &target,
        &opts,
        &NoProgress,
        &stop,
    )
    .await
    .expect("the run completes")
}
