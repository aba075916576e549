//! `apiconform repro`: from what a person captured to a judged, minimal repro (`import`), a
//! repro as a runnable, freshly signed curl line (`curl`), and repros as one Markdown bug
//! report (`bundle`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::Value;

use super::{exit, finish, load_world, runtime, say, CredArgs, Failed};
use crate::case::AuthFault;
use crate::input::{self, text::Shown};
use crate::oracle::VerdictKind;
use crate::protocol::capture;
use crate::proxy::client;
use crate::run::{self, Destination, Failure, RunOptions, Setup, SetupOptions, Target};
use crate::spec::{self, LoadedApi, ParamType, SpecSet};

#[derive(Subcommand)]
pub(super) enum ReproCommand {
    /// Import a request someone captured (a curl line, a raw HTTP request, a HAR file, an SDK's
    /// debug log) or
    /// described (--api NAME --param K=V): find its API in the specs, drop the old signature,
    /// map its ids onto the target's world, sign it with your credentials, send it, judge it,
    /// and when it fails shrink it and write the usual repro file.
    #[command(
        after_help = "The API and family come from the specs: the action, version and family the request carries (as `apiconform proxy` reads a client's request). The captured signature, timestamp and nonce are dropped and never printed: the request is signed afresh with the credentials of the environment (TENCENTCLOUD_SECRET_ID/_KEY, ALIBABA_CLOUD_ACCESS_KEY_ID/_SECRET; the emulator's documented defaults on loopback).\n\nIds: each instance and key id the request names is replaced by one of the target's world (the same id twice stays the same id twice), and the mapping is printed; --keep-ids keeps them, against the account they came from (a target off this machine touches only what --world lists).\n\nExamples:\n  apiconform repro import bug.curl                    # a `curl ...` line, against the embedded emulator\n  apiconform repro import capture.raw --target http://127.0.0.1:9000\n  apiconform repro import session.har --repro-dir repros\n  apiconform repro import --api tencent-cvm/DisassociateInstancesKeyPairs --param InstanceIds=ins-1e4r6y8i,ins-1e4r6y8i --param KeyIds=skey-1\n\nExit codes: 0 every request imported passed; 1 one failed (its repro is written); 2 usage, or a capture that cannot be read (its line named) or names no specced API; 3 the target could not be reached; 6 the request was not sent or only throttled (\"not reproduced\")."
    )]
    Import(ImportArgs),
    /// Print a repro's request as a runnable curl command, signed now with the credentials of
    /// the environment (printed, never written to a file).
    #[command(
        after_help = "The signature expires (Tencent API 3.0: 5 minutes; API 2.0: 2 hours; Alibaba: 15 minutes, and its nonce is single-use): print it again to re-run. The secret keys never appear; the secret id and the signature do, so do not paste the output into a public tracker (`repro bundle` removes them).\n\nExamples:\n  apiconform repro curl repros/tencent-cvm--AssociateInstancesKeyPairs--binds-keys.json --target http://127.0.0.1:9000\n  apiconform repro curl repro.json | sh            # the vendor's host for the request's region\n\nExit codes: 0 printed; 2 a bad repro file or missing credentials."
    )]
    Curl(CurlArgs),
    /// Write repros as one self-contained Markdown bug report: the API, the document's line
    /// and quote, the minimal request, the answer, the expected outcome and its strength, a
    /// curl line with the secrets removed, and each repro's replay verdict.
    #[command(
        after_help = "Each repro is replayed once against --target (default: the embedded emulator) and its verdict written; --no-replay leaves that out.\n\nExamples:\n  apiconform repro bundle repros/*.json -o report.md\n  apiconform repro bundle repro.json --target http://127.0.0.1:9000 -o issue.md\n\nExit codes: 0 written; 2 a bad repro file or output path."
    )]
    Bundle(BundleArgs),
    /// Print the JSON schema of repro files (what docs/repro.schema.json holds).
    Schema,
}

#[derive(Args)]
pub(super) struct ImportArgs {
    /// The capture: a file holding a curl command line, a raw HTTP request, a HAR file, or the
    /// debug log of tencentcloud-sdk-python or aliyun-python-sdk-core.
    capture: Option<PathBuf>,
    /// What the capture is; default: told from its first line.
    #[arg(long, value_parser = ["curl", "http", "har", "tencent-sdk-log", "alibaba-sdk-log"])]
    format: Option<String>,
    /// Describe the call instead of a capture: the API (`tencent-cvm/AssociateInstancesKeyPairs`,
    /// or an action a single spec names).
    #[arg(long, conflicts_with_all = ["capture", "format"])]
    api: Option<String>,
    /// With --api: a parameter by the document's name, `K=V`. Lists: `K=a,b`, a JSON array, or
    /// the parameter repeated. Repeatable.
    #[arg(long = "param", value_name = "K=V", requires = "api")]
    params: Vec<String>,
    /// With --api: the region (default: that of the world's first instance of the product).
    #[arg(long, requires = "api")]
    region: Option<String>,
    /// Keep the ids as captured (against the account they came from) instead of mapping them
    /// onto the target's world.
    #[arg(long)]
    keep_ids: bool,
    /// Target base URL; default: the embedded emulator.
    #[arg(long)]
    target: Option<String>,
    /// World file describing what the target holds.
    #[arg(long)]
    world: Option<PathBuf>,
    /// Judge strictly, as `run --strict`.
    #[arg(long)]
    strict: bool,
    /// Where the repro files go.
    #[arg(long, default_value = "repros")]
    repro_dir: PathBuf,
    #[command(flatten)]
    creds: CredArgs,
}

#[derive(Args)]
pub(super) struct CurlArgs {
    /// A repro file.
    file: PathBuf,
    /// The server the command calls; default: the vendor's host for the request's region, as
    /// the spec files' `api.endpoints` document it.
    #[arg(long)]
    target: Option<String>,
    #[command(flatten)]
    creds: CredArgs,
}

#[derive(Args)]
pub(super) struct BundleArgs {
    /// Repro files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The Markdown file to write.
    #[arg(short, long)]
    out: PathBuf,
    /// Replay each repro against this target for its verdict; default: the embedded emulator.
    #[arg(long)]
    target: Option<String>,
    /// Leave the replay verdicts out (nothing is sent).
    #[arg(long)]
    no_replay: bool,
    #[command(flatten)]
    creds: CredArgs,
}

pub(super) fn repro(cmd: ReproCommand) -> u8 {
    finish(match cmd {
        ReproCommand::Import(a) => import(a),
        ReproCommand::Curl(a) => curl(a),
        ReproCommand::Bundle(a) => bundle(a),
        ReproCommand::Schema => {
            use std::io::Write as _;
            let _ = write!(
                std::io::stdout().lock(),
                "{}",
                crate::report::console::escape_text(&crate::report::repro::schema_json())
            );
            Ok(exit::OK)
        }
    })
}

/// The spec named `name`, or the one spec whose action it is.
fn find_api<'a>(set: &'a SpecSet, name: &str) -> Result<&'a LoadedApi, Failed> {
    if let Some(api) = set.apis.iter().find(|a| a.name == name) {
        return Ok(api);
    }
    let by_action: Vec<&LoadedApi> = set
        .apis
        .iter()
        .filter(|a| a.spec.api.action.eq_ignore_ascii_case(name))
        .collect();
    match by_action.as_slice() {
        [one] => Ok(one),
        _ => Err(Failed::usage(format!(
            "error: --api {name}: {}\n  = help: pass one of: {}",
            match by_action.len() {
                0 => "no spec describes it".to_string(),
                n => format!("{n} specs describe this action"),
            },
            set.apis
                .iter()
                .map(|a| a.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// `--param K=V` values as the parameters of `api`'s case.
fn params_of(api: &LoadedApi, given: &[String]) -> Result<crate::protocol::Params, Failed> {
    let mut params = crate::protocol::Params::new();
    for kv in given {
        let Some((k, v)) = kv.split_once('=') else {
            return Err(Failed::usage(format!(
                "error: --param {kv}: no `=`\n  = help: write --param Name=value (lists: Name=a,b)"
            )));
        };
        let kind = api
            .spec
            .parameters
            .iter()
            .find(|p| p.name == k)
            .map(|p| p.kind);
        if kind.is_none() {
            say(format!(
                "note: --param {k}: {} lists no such parameter ({}); it is sent as given",
                api.name,
                api.spec
                    .parameters
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let items = |v: &str| -> Vec<Value> {
            match serde_json::from_str::<Vec<Value>>(v) {
                Ok(items) => items,
                Err(_) => v
                    .split(',')
                    .map(|s| Value::String(s.trim().into()))
                    .collect(),
            }
        };
        let value = match kind {
            Some(ParamType::StringList) => {
                let mut list = match params.remove(k) {
                    Some(Value::Array(old)) => old,
                    _ => Vec::new(),
                };
                list.extend(items(v));
                Value::Array(list)
            }
            // Alibaba's `InstanceIds`: the text of a JSON list, as the SDKs build it.
            Some(ParamType::JsonStringList) => match v.trim_start().starts_with('[') {
                true => Value::String(v.to_string()),
                false => Value::String(serde_json::to_string(&items(v)).unwrap_or_default()),
            },
            Some(ParamType::Boolean) => match v.to_ascii_lowercase().as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => Value::String(v.into()),
            },
            Some(ParamType::Integer) => v
                .parse::<i64>()
                .map_or_else(|_| Value::String(v.into()), Value::from),
            _ => Value::String(v.into()),
        };
        params.insert(k.to_string(), value);
    }
    Ok(params)
}

/// The cases a capture asks for, each with where it was; entries no spec describes are said
/// and skipped.
fn cases_of_capture(
    set: &SpecSet,
    file: &Path,
    format: Option<&str>,
    creds: &client::Creds<'_>,
) -> Result<Vec<(String, crate::case::Case)>, Failed> {
    let text = input::read(file, input::Kind::Capture)
        .map_err(|e| Failed::usage(format!("error: {e}")))?;
    let kind = match format {
        Some("curl") => Some(capture::Kind::Curl),
        Some("http") => Some(capture::Kind::Http),
        Some("har") => Some(capture::Kind::Har),
        Some("tencent-sdk-log") => Some(capture::Kind::TencentSdkLog),
        Some("alibaba-sdk-log") => Some(capture::Kind::AlibabaSdkLog),
        _ => None,
    };
    let (kind, captured) = capture::parse(&text, kind).map_err(|e| {
        Failed::usage(format!(
            "error: {}: {}\n  --> {}:{}\n  = help: {}",
            file.display(),
            e.what,
            file.display(),
            e.line,
            e.help
        ))
    })?;
    let nonces = client::Nonces::default();
    let now = crate::emulator::server::now();
    let mut cases = Vec::new();
    for mut c in captured {
        complete_for_parse(&mut c.request, now);
        let view = client::judge(set, creds, &nonces, &c.request, now);
        let Some(mut case) = view.case else {
            let why = view
                .findings
                .iter()
                .find(|f| f.rule == client::rules::READABLE)
                .map_or("no spec describes it".to_string(), |f| {
                    format!("it cannot be read ({})", f.actual)
                });
            let what = match (&view.family, &view.action) {
                (Some(f), Some(a)) => format!("{a} ({}): {why}", f.as_str()),
                _ => format!("a request no family reads: {why}"),
            };
            say(format!(
                "skipped: {} {}: {}",
                file.display(),
                c.at,
                Shown(&what)
            ));
            continue;
        };
        // The captured signature is dropped: the case is signed afresh.
        case.auth = AuthFault::None;
        for f in &view.findings {
            let auth = ["signature", "secret", "timestamp", "nonce"]
                .iter()
                .any(|w| f.rule.contains(w));
            if !auth {
                say(format!(
                    "note: as captured (before its ids are mapped), the request breaks `{}`: {}",
                    Shown(&f.rule),
                    Shown(&f.detail)
                ));
            }
        }
        say(format!(
            "imported: {} {} ({}): {}",
            file.display(),
            c.at,
            kind.as_str(),
            case.api
        ));
        cases.push((c.at, case));
    }
    if cases.is_empty() {
        return Err(Failed::usage(format!(
            "error: {}: no request in it calls an API the specs describe\n  = help: `apiconform specs list` shows them; or describe the call with --api NAME --param K=V",
            file.display()
        )));
    }
    Ok(cases)
}

/// A hand-written API 3.0 request often lacks what only the signature needs (a timestamp, the
/// `Authorization` header): placeholders let it be read; it is signed afresh anyway.
fn complete_for_parse(req: &mut crate::protocol::HttpRequest, now: i64) {
    if req.header("x-tc-action").is_none() {
        return;
    }
    if req.header("x-tc-timestamp").is_none() {
        req.headers.push(("X-TC-Timestamp".into(), now.to_string()));
    }
    if req.header("authorization").is_none() {
        let service = req
            .header("host")
            .and_then(|h| h.split('.').next())
            .filter(|s| s.chars().all(|c| c.is_ascii_alphabetic()))
            .unwrap_or("cvm")
            .to_string();
        req.headers.push((
            "Authorization".into(),
            format!("TC3-HMAC-SHA256 Credential=AKIDplaceholder/1970-01-01/{service}/tc3_request, SignedHeaders=content-type;host, Signature=0"),
        ));
    }
}

fn import(args: ImportArgs) -> Result<u8, Failed> {
    let set = spec::load_embedded().map_err(Failed::usage)?;
    let world = load_world(args.world.as_deref())?;
    let keys = args.creds.resolve();
    let creds = client::Creds { keys: &keys };
    let mut cases = match (&args.api, &args.capture) {
        (Some(name), _) => {
            let api = find_api(&set, name)?;
            let params = params_of(api, &args.params)?;
            let product = api.spec.instance_product();
            let region = args.region.clone().unwrap_or_else(|| {
                world
                    .clone()
                    .unwrap_or_else(crate::world::World::default_world)
                    .instances
                    .iter()
                    .find(|i| i.product == product)
                    .map(|i| i.region.clone())
                    .unwrap_or_default()
            });
            vec![("--param".to_string(), run::sdk_case(api, &region, params))]
        }
        (None, Some(file)) => cases_of_capture(&set, file, args.format.as_deref(), &creds)?,
        (None, None) => {
            return Err(Failed::usage(
                "error: nothing to import\n  = help: pass a capture file (curl line, raw HTTP request, HAR file), or --api NAME --param K=V",
            ))
        }
    };
    runtime()?.block_on(async {
        let setup = Setup::prepare(SetupOptions {
            specs: None,
            reach: Default::default(),
            target: args.target.clone(),
            world,
            faults: Default::default(),
            variants: Default::default(),
            keys: keys.clone(),
            timeout: Duration::from_secs(10),
            probe_world: true,
        })
        .await?;
        let opts = RunOptions {
            keys: keys.clone(),
            admin: setup.admin,
            strict: args.strict,
            ..Default::default()
        };
        let session = run::Session::new(&set, setup.world.clone(), &setup.target, &opts);
        let mut written: Vec<PathBuf> = Vec::new();
        let mut code = exit::OK;
        let mut outcome = Ok(());
        for (at, case) in &mut cases {
            let api = set
                .apis
                .iter()
                .find(|a| a.name == case.api)
                .expect("the case's API was found in the specs");
            if case.region.is_empty() {
                // aliyun-python-sdk-core's log leaves the region out.
                let product = api.spec.instance_product();
                if let Some(i) = setup.world.instances.iter().find(|i| i.product == product) {
                    case.region = i.region.clone();
                    if api.spec.parameters.iter().any(|p| p.name == "RegionId")
                        && !case.params.contains_key("RegionId")
                    {
                        case.params.insert("RegionId".into(), Value::String(i.region.clone()));
                        say(format!(
                            "note: {at} names no region; RegionId={} (the world's)",
                            i.region
                        ));
                    }
                }
            }
            if !args.keep_ids {
                for line in run::map_ids(api, case, &setup.world) {
                    say(format!("id: {}", Shown(&line)));
                }
            }
            let imported = match run::import(&session, case).await {
                Ok(i) => i,
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            };
            let v = &imported.verdict;
            let strength = v
                .strength
                .map_or(String::new(), |s| format!(" [{}]", strength_words(s)));
            let answer = format!(
                "  response: HTTP {}{} {}",
                imported.response.status,
                imported
                    .code
                    .as_deref()
                    .map_or(String::new(), |c| format!(" (code {})", Shown(c))),
                Shown(&String::from_utf8_lossy(&imported.response.body))
            );
            match v.kind {
                VerdictKind::Fail => {
                    say(format!(
                        "{at}: FAILS rule `{}`{strength}\n  expected: {}\n  actual:   {}\n  why:      {}\n{answer}",
                        Shown(v.rule.as_deref().unwrap_or("")),
                        Shown(&v.expected),
                        Shown(&v.actual),
                        Shown(&v.detail)
                    ));
                    code = exit::NONCONFORMANCE;
                }
                kind => {
                    say(format!(
                        "{at}: {kind:?}: {}{strength}\n  expected: {}\n{answer}",
                        Shown(&v.detail),
                        Shown(&v.expected)
                    ));
                }
            }
            if let Some(f) = &imported.failure {
                say(crate::report::render_failure(f));
                let path = write_repro(&args.repro_dir, f, &written)?;
                written.push(path.clone());
                say(format!("repro: {}", path.display()));
            }
        }
        setup.finish().await;
        outcome?;
        Ok(code)
    })
}

fn strength_words(s: crate::oracle::Strength) -> &'static str {
    match s {
        crate::oracle::Strength::Seed => "stated in a seed",
        crate::oracle::Strength::Current => "stated in the current definitions",
        crate::oracle::Strength::Judgement => "our judgement (--strict)",
    }
}

/// Writes a repro as `run --repro-dir` names it; a second failure of the same API and rule in
/// one import gets `--2`, `--3`, ... rather than overwriting the first.
fn write_repro(dir: &Path, f: &Failure, written: &[PathBuf]) -> Result<PathBuf, Failed> {
    let stem = format!("{}--{}", f.api.replace('/', "--"), f.rule);
    let mut path = dir.join(format!("{stem}.json"));
    let mut n = 1;
    while written.contains(&path) {
        n += 1;
        path = dir.join(format!("{stem}--{n}.json"));
    }
    std::fs::create_dir_all(dir)
        .and_then(|_| {
            std::fs::write(
                &path,
                crate::report::console::to_json_pretty(f).map_err(std::io::Error::other)?,
            )
        })
        .map_err(|e| Failed::usage(format!("error: cannot write {}: {e}", path.display())))?;
    Ok(path)
}

/// The repro's request signed now, as a curl command, and the URL it goes to.
fn signed_curl(
    set: &SpecSet,
    failure: &Failure,
    target: Option<&str>,
    keys: &crate::protocol::Keys,
) -> Result<String, Failed> {
    let api = set
        .apis
        .iter()
        .find(|a| a.name == failure.api)
        .ok_or_else(|| Failed::usage(format!("error: no spec is named {}", failure.api)))?;
    let dest = match target {
        Some(url) => Destination::One(url.to_string()),
        None => Destination::Cloud(Default::default()),
    };
    let t = Target::connect(
        &dest,
        Some(set),
        Duration::from_secs(10),
        &Default::default(),
    )
    .map_err(|e| Failed::usage(format!("error: {e}")))?;
    let host = t
        .host_for_api(api, &failure.case.region)
        .map_err(|e| Failed::usage(format!("error: {e}")))?;
    let now = crate::emulator::server::now();
    let nonce = u64::from(std::process::id()) << 20 ^ (now as u64 & 0xfffff);
    let req = crate::protocol::request::sign_case(api, &failure.case, &host, keys, now, nonce)
        .map_err(|e| Failed::usage(format!("error: {e}")))?;
    Ok(crate::protocol::redact::curl(&req, &t.base_for(&req)))
}

fn curl(args: CurlArgs) -> Result<u8, Failed> {
    let failure =
        crate::report::repro::read(&args.file).map_err(|e| Failed::usage(format!("error: {e}")))?;
    let set = spec::load_embedded().map_err(Failed::usage)?;
    let keys = args.creds.resolve();
    let line = signed_curl(&set, &failure, args.target.as_deref(), &keys)?;
    say(line);
    Ok(exit::OK)
}

fn bundle(args: BundleArgs) -> Result<u8, Failed> {
    let mut failures = Vec::new();
    for file in &args.files {
        let f =
            crate::report::repro::read(file).map_err(|e| Failed::usage(format!("error: {e}")))?;
        failures.push((file.clone(), f));
    }
    let set = spec::load_embedded().map_err(Failed::usage)?;
    let keys = args.creds.resolve();
    let mut verdicts = Vec::new();
    if !args.no_replay {
        let rt = runtime()?;
        for (_, f) in &failures {
            let verdict = rt.block_on(async {
                let setup = Setup::prepare(SetupOptions {
                    specs: None,
                    reach: Default::default(),
                    target: args.target.clone(),
                    world: None,
                    faults: Default::default(),
                    variants: Default::default(),
                    keys: keys.clone(),
                    timeout: Duration::from_secs(10),
                    probe_world: true,
                })
                .await?;
                let opts = RunOptions {
                    keys: keys.clone(),
                    admin: setup.admin,
                    ..Default::default()
                };
                let r = run::replay(&set, setup.world.clone(), &setup.target, &opts, f, 1).await;
                setup.finish().await;
                Ok::<_, run::RunError>(r)
            })?;
            let against = args.target.as_deref().unwrap_or("the embedded emulator");
            verdicts.push(Some(match verdict {
                Ok(r) => match r.first().map(|r| r.verdict.kind) {
                    Some(VerdictKind::Fail) => format!("STILL FAILS against {against}"),
                    _ => format!("FIXED against {against} (no longer fails)"),
                },
                Err(e) => format!("not reproduced against {against}: {e}"),
            }));
        }
    } else {
        verdicts.resize(failures.len(), None);
    }
    let mut md = String::from("# apiconform bug report\n\n");
    md += &format!(
        "{} finding(s), written by apiconform {}. Every request below is shown with its credentials and signature removed; `apiconform repro curl FILE` prints it signed afresh.\n\n",
        failures.len(),
        env!("CARGO_PKG_VERSION")
    );
    for ((file, f), verdict) in failures.iter().zip(&verdicts) {
        md += &crate::report::bundle_section(f, &file.display().to_string(), verdict.as_deref());
    }
    std::fs::write(&args.out, md)
        .map_err(|e| Failed::usage(format!("error: cannot write {}: {e}", args.out.display())))?;
    say(format!("wrote {}", args.out.display()));
    Ok(exit::OK)
}
