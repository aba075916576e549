//! The command line: parses arguments, calls the library, maps results to exit codes.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

use crate::emulator::{self, Emulator, Fault};
use crate::protocol::Credentials;
use crate::spec::{self, SpecSet};
use crate::world::World;

/// Exit codes (a contract: users' scripts rely on them).
pub mod exit {
    /// Every check passed.
    pub const OK: u8 = 0;
    /// At least one nonconformance.
    pub const NONCONFORMANCE: u8 = 1;
    /// Usage, spec or world-file error.
    pub const USAGE: u8 = 2;
    /// The target could not be reached or the run could not complete.
    pub const TARGET: u8 = 3;
}

#[derive(Parser)]
#[command(
    name = "apiconform",
    version,
    about = "Property-based conformance harness for cloud control-plane APIs",
    long_about = "Property-based conformance harness for cloud control-plane APIs.\n\n\
Spec files transcribed from the vendors' documents drive generators of valid and invalid \
requests; apiconform signs and sends them to a target (a real cloud, an emulator, a mock) and \
checks every response: the exact error code each invalid request must get, the response shape, \
and the state change a success must cause.\n\n\
Start with `apiconform run`: it starts the built-in emulator and checks every spec against it.",
    after_help = "Exit codes: 0 every check passed; 1 nonconformance found; 2 usage, spec or world-file error; 3 target unreachable or run incomplete."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check every spec against a target (default: the built-in emulator, started in-process).
    #[command(
        after_help = "Examples:\n  apiconform run                                   # every spec against the embedded emulator\n  apiconform run --spec ecm --cases 2000 --seed 7  # one API, more cases, another seed\n  apiconform run --target http://127.0.0.1:9000    # a separately started `apiconform serve`\n  apiconform run --target https://cvm.tencentcloudapi.com --world mine.yaml --spec tencent-cvm --dry-run\n\nAgainst a target that is not on loopback a --world file is required: state-changing requests\ntouch only the resources it lists, and invalid requests use ids that do not exist.\nWithout --world, a separately started `apiconform serve` is asked what it holds now (its admin\nview), and any other target is assumed to hold the emulator's built-in default world.\n\nExit codes: 0 every check passed; 1 nonconformance; 2 usage, spec or world error; 3 target\nunreachable or the run could not complete."
    )]
    Run(RunArgs),
    /// Measure checked cases per second and peak memory against the embedded emulator.
    #[command(
        after_help = "Runs the default suite (every spec, the built-in world) against the emulator \
started in-process, as `apiconform run` does, and prints the rate and the peak resident set \
(VmHWM). Nothing is written; the exit code is 1 if a case failed.\n\nExamples:\n  apiconform bench\n  apiconform bench --cases 100000 --jobs 32\n  apiconform bench --spec ecm --cases 20000"
    )]
    Bench(BenchArgs),
    /// Re-send a repro file (re-signed with a fresh timestamp) and judge it again.
    Replay(ReplayArgs),
    /// Record or check the snapshot corpus: one normalised exchange per rule, error code, valid
    /// path and unspecified behaviour, stored as insta `.snap` files.
    #[command(
        after_help = "Examples:\n  apiconform snapshot                              # check snapshots/ against the embedded emulator\n  apiconform snapshot --update                     # accept everything (rewrite the .snap files)\n  apiconform snapshot --target https://cvm.tencentcloudapi.com --world mine.yaml --spec tencent-cvm --dir recorded --update\n  apiconform snapshot --dir recorded --world mine.yaml   # check the emulator against that recording\n\nA difference is printed as a diff and written beside the snapshot as a pending .snap.new file:\naccept or reject it with `cargo insta review` (or rerun with --update). INSTA_UPDATE=always\nrecords, INSTA_UPDATE=no writes nothing. The embedded emulator starts fresh for every exchange;\na target that serves the emulator's admin endpoint is reset before each one; any other target\ngets the exchanges in corpus order, each seeing the effect of those before (record and check\nfrom the same starting state).\n\nExit codes: 0 same; 1 differences; 2 usage, spec or world error; 3 target unreachable."
    )]
    Snapshot(SnapshotArgs),
    /// Serve the emulator: a stateful implementation of all five APIs that SDKs can call.
    #[command(
        after_help = "Default credentials (documentation examples): Tencent (every family) \
AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE / Gu5t9xGARNpq86cd98joQYCN3EXAMPLE; Alibaba testid / \
testsecret. Override with the flags or TENCENTCLOUD_SECRET_ID/KEY, \
ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET.\n\nAdmin (test-only): GET /__apiconform/world dumps the \
world (?instances=ID,ID: only those instances), POST /__apiconform/reset resets it (optionally to the JSON world in the body)."
    )]
    Serve(ServeArgs),
    /// Inspect and check spec files.
    #[command(subcommand)]
    Specs(SpecsCommand),
    /// Show how a request is signed: canonical request, string to sign, signature.
    #[command(
        after_help = "Use it when a server answers \"signature mismatch\": compare the \
string to sign printed here with the one the server reports (Alibaba prints its own in the \
SignatureDoesNotMatch message). The secret is read from the flags or the vendors' environment \
variables and never printed.\n\nExample:\n  apiconform sign --family tencent_api3 --action \
DescribeInstances --version 2017-03-12 --region ap-guangzhou --service cvm --host \
cvm.tencentcloudapi.com --timestamp 1551113065 --param Limit=1"
    )]
    Sign(SignArgs),
}

#[derive(Args)]
struct RunArgs {
    /// Target base URL; default: start the emulator in-process on a loopback port.
    #[arg(long)]
    target: Option<String>,
    /// World file describing what the target holds (required for non-loopback targets).
    #[arg(long)]
    world: Option<PathBuf>,
    /// Only APIs whose name contains PATTERN (`*` allowed); repeatable.
    #[arg(long = "spec", value_name = "PATTERN")]
    specs: Vec<String>,
    /// Read spec files from this folder instead of the built-in ones.
    #[arg(long = "specs-dir", value_name = "DIR")]
    specs_dir: Option<PathBuf>,
    /// Cases per API.
    #[arg(long, default_value_t = 300)]
    cases: usize,
    /// Seed: the same seed generates the same cases.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 16)]
    jobs: usize,
    /// Rules broken at once by invalid cases.
    #[arg(long, default_value_t = 1)]
    violations: usize,
    /// Run only shard I of N (for CI matrices), e.g. 1/4.
    #[arg(long, value_name = "I/N")]
    shard: Option<String>,
    /// Write the JSON report here.
    #[arg(long)]
    report_json: Option<PathBuf>,
    /// Write a JUnit XML report here (one testcase per API and rule).
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Write one repro file per failure into this folder.
    #[arg(long)]
    repro_dir: Option<PathBuf>,
    /// Print the requests that would be sent (secrets redacted) and send nothing.
    #[arg(long)]
    dry_run: bool,
    /// Inject a fault into the embedded emulator (self-tests; see `serve --list-faults`).
    #[arg(long = "fault", value_name = "NAME")]
    faults: Vec<String>,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
    /// Requests per second per API. Default: the documented limit against a remote target
    /// (CVM 10/s, ECM 20/s, 10/s where none is documented), no limit on loopback; 0 = no limit.
    #[arg(long, value_name = "PER_SECOND")]
    rate: Option<f64>,
    #[command(flatten)]
    creds: CredArgs,
}

#[derive(Args)]
struct BenchArgs {
    /// Cases per API.
    #[arg(long, default_value_t = 300)]
    cases: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 16)]
    jobs: usize,
    /// Only APIs whose name contains PATTERN (`*` allowed); repeatable.
    #[arg(long = "spec", value_name = "PATTERN")]
    specs: Vec<String>,
    /// Seed: the same seed generates the same cases.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Args)]
struct ReplayArgs {
    /// A repro file written by `run --repro-dir`.
    file: PathBuf,
    /// Target base URL; default: the embedded emulator.
    #[arg(long)]
    target: Option<String>,
    /// World file describing what the target holds.
    #[arg(long)]
    world: Option<PathBuf>,
    #[command(flatten)]
    creds: CredArgs,
}

#[derive(Args)]
struct SnapshotArgs {
    /// Target base URL; default: the emulator, in-process (a fresh one per exchange).
    #[arg(long)]
    target: Option<String>,
    /// World file describing what the target holds (required for non-loopback targets).
    #[arg(long)]
    world: Option<PathBuf>,
    /// Folder of the snapshots (one sub-folder per API).
    #[arg(long, default_value = "snapshots")]
    dir: PathBuf,
    /// Record: write every exchange as the stored snapshot and remove unreferenced ones.
    #[arg(long)]
    update: bool,
    /// Only APIs whose name contains PATTERN (`*` allowed); repeatable.
    #[arg(long = "spec", value_name = "PATTERN")]
    specs: Vec<String>,
    /// Inject a fault into the embedded emulator (self-tests; see `serve --list-faults`).
    #[arg(long = "fault", value_name = "NAME")]
    faults: Vec<String>,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
    #[command(flatten)]
    creds: CredArgs,
}

#[derive(Args)]
struct SignArgs {
    /// Wire family: tencent_api3, tencent_v2 or aliyun_rpc.
    #[arg(long)]
    family: String,
    /// Action name.
    #[arg(long)]
    action: String,
    /// API version (omit for API 2.0).
    #[arg(long)]
    version: Option<String>,
    /// Region.
    #[arg(long)]
    region: Option<String>,
    /// TC3 service name (cvm, ecm).
    #[arg(long, default_value = "")]
    service: String,
    /// Host header as sent (with the port when not the default).
    #[arg(long)]
    host: String,
    /// Request path (default / , or /v2/index.php for API 2.0).
    #[arg(long)]
    path: Option<String>,
    /// HTTP method.
    #[arg(long, default_value = "POST")]
    method: String,
    /// Signature scheme: tc3-hmac-sha256, v1-hmac-sha1, v1-hmac-sha256, rpc-hmac-sha1, acs3-hmac-sha256.
    #[arg(long)]
    signature: Option<String>,
    /// A parameter NAME=VALUE (repeatable); VALUE is read as JSON when it parses (lists, numbers, booleans).
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// Unix timestamp to sign with (default: now).
    #[arg(long)]
    timestamp: Option<i64>,
    /// Nonce to sign with.
    #[arg(long, default_value = "11886")]
    nonce: String,
    /// Response format for Alibaba (json or xml).
    #[arg(long)]
    format: Option<String>,
    #[command(flatten)]
    creds: CredArgs,
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on (loopback unless you mean otherwise).
    #[arg(long, default_value = "127.0.0.1:9000")]
    listen: String,
    /// World file (YAML or JSON) to start with; default: the built-in world.
    #[arg(long)]
    world: Option<PathBuf>,
    /// Inject a named bug (repeatable); see --list-faults.
    #[arg(long = "fault", value_name = "NAME")]
    faults: Vec<String>,
    /// Enforce documented rate limits (CVM 10/s, ECM 20/s), or not.
    #[arg(long, value_name = "off|documented", default_value = "off")]
    rate_limits: String,
    /// Print the built-in default world as YAML and exit.
    #[arg(long)]
    print_world: bool,
    /// List the injectable faults, one a line, and exit.
    #[arg(long)]
    list_faults: bool,
    #[command(flatten)]
    creds: CredArgs,
}

/// Credentials: flags override the vendors' usual environment variables.
#[derive(Args, Clone)]
pub struct CredArgs {
    /// Tencent secret id.
    #[arg(long, env = "TENCENTCLOUD_SECRET_ID", hide_env_values = true)]
    tencent_secret_id: Option<String>,
    /// Tencent secret key (never printed).
    #[arg(long, env = "TENCENTCLOUD_SECRET_KEY", hide_env_values = true)]
    tencent_secret_key: Option<String>,
    /// Alibaba access key id.
    #[arg(long, env = "ALIBABA_CLOUD_ACCESS_KEY_ID", hide_env_values = true)]
    alibaba_access_key_id: Option<String>,
    /// Alibaba access key secret (never printed).
    #[arg(long, env = "ALIBABA_CLOUD_ACCESS_KEY_SECRET", hide_env_values = true)]
    alibaba_access_key_secret: Option<String>,
}

impl CredArgs {
    /// The Tencent and Alibaba credentials, falling back to the documentation examples.
    pub fn resolve(&self) -> (Credentials, Credentials) {
        // Each value falls back on its own, so a flag can override just the secret id.
        let pick = |id: &Option<String>, secret: &Option<String>, default: (&str, &str)| {
            let d = Credentials::from_pair(default);
            Credentials {
                id: id.clone().unwrap_or(d.id),
                secret: secret.clone().unwrap_or(d.secret),
            }
        };
        (
            pick(
                &self.tencent_secret_id,
                &self.tencent_secret_key,
                emulator::TENCENT_DEFAULT,
            ),
            pick(
                &self.alibaba_access_key_id,
                &self.alibaba_access_key_secret,
                emulator::ALIBABA_DEFAULT,
            ),
        )
    }
}

#[derive(Subcommand)]
enum SpecsCommand {
    /// A table of the specs: API, family, version, rules, error codes, source document.
    List(SpecsDir),
    /// Check spec files; exit 0 when valid, 2 otherwise, each problem with file:line:column.
    Lint {
        /// Files or folders to check (default: the built-in specs).
        paths: Vec<PathBuf>,
    },
    /// The rules of one API in document order, with their sources.
    Show {
        /// API name (`tencent-cvm/AssociateInstancesKeyPairs`) or unambiguous action.
        name: String,
        #[command(flatten)]
        dir: SpecsDir,
    },
    /// Print the JSON schema of spec files (what specs/schema.json holds).
    Schema,
}

#[derive(Args)]
struct SpecsDir {
    /// Read specs from this folder instead of the built-in ones.
    #[arg(long)]
    specs: Option<PathBuf>,
}

impl SpecsDir {
    fn load(&self) -> Result<SpecSet, spec::SpecError> {
        match &self.specs {
            Some(dir) => spec::load_dir(dir),
            None => spec::load_embedded(),
        }
    }
}

/// Runs the command line.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    let code = match cli.command {
        Command::Run(args) => run(args),
        Command::Bench(args) => bench(args),
        Command::Replay(args) => replay(args),
        Command::Snapshot(args) => snapshot(args),
        Command::Serve(args) => serve(args),
        Command::Specs(cmd) => specs(cmd),
        Command::Sign(args) => sign(args),
    };
    ExitCode::from(code)
}

/// The world file given, or the built-in default world; a bad file is a usage error (exit 2).
fn load_world(path: Option<&std::path::Path>) -> Result<World, u8> {
    match path {
        Some(p) => World::load(p).map_err(|e| fail(exit::USAGE, e)),
        None => Ok(World::default_world()),
    }
}

fn fail(code: u8, message: impl std::fmt::Display) -> u8 {
    eprintln!("{message}");
    code
}

fn specs(cmd: SpecsCommand) -> u8 {
    match cmd {
        SpecsCommand::List(dir) => match dir.load() {
            Ok(set) => {
                println!(
                    "{:<48} {:<13} {:<11} {:>5} {:>6}  SOURCE",
                    "API", "FAMILY", "VERSION", "RULES", "CODES"
                );
                for api in &set.apis {
                    let s = &api.spec;
                    let seed = s
                        .documents
                        .iter()
                        .find(|d| d.kind == spec::DocumentKind::Seed)
                        .map_or("-", |d| d.file.as_str());
                    println!(
                        "{:<48} {:<13} {:<11} {:>5} {:>6}  {}",
                        api.name,
                        s.api.family.as_str(),
                        s.api.version.as_deref().unwrap_or("-"),
                        s.rules.len(),
                        s.error_codes.len(),
                        seed
                    );
                }
                exit::OK
            }
            Err(e) => fail(exit::USAGE, e),
        },
        SpecsCommand::Lint { paths } => {
            let result = if paths.is_empty() {
                spec::load_embedded().map(|s| vec![s])
            } else {
                lint_paths(&paths)
            };
            match result {
                Ok(sets) => {
                    let n: usize = sets.iter().map(|s| s.apis.len() + s.families.len()).sum();
                    println!("{n} spec files, no problems");
                    exit::OK
                }
                Err(e) => fail(exit::USAGE, e),
            }
        }
        SpecsCommand::Show { name, dir } => match dir.load() {
            Ok(set) => match set.find(&name) {
                Some(api) => {
                    print!("{}", render_show(&set, api));
                    exit::OK
                }
                None => fail(
                    exit::USAGE,
                    format!(
                        "error: no spec named `{name}`\n  = help: `apiconform specs list` shows the names: {}",
                        set.apis.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                ),
            },
            Err(e) => fail(exit::USAGE, e),
        },
        SpecsCommand::Schema => {
            print!("{}", spec::schema_json());
            exit::OK
        }
    }
}

fn lint_paths(paths: &[PathBuf]) -> Result<Vec<SpecSet>, spec::SpecError> {
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    for p in paths {
        if p.is_dir() {
            dirs.push(p.clone());
        } else {
            let text = std::fs::read_to_string(p).map_err(|source| spec::SpecError::Io {
                path: p.clone(),
                source,
            })?;
            files.push(spec::SourceFile {
                path: p.clone(),
                text,
            });
        }
    }
    let mut sets = Vec::new();
    for d in dirs {
        sets.push(spec::load_dir(&d)?);
    }
    if !files.is_empty() {
        // Single files are checked with the built-in family specs beside them.
        for (p, t) in spec::EMBEDDED {
            if p.starts_with("families/")
                && !files.iter().any(|f| {
                    f.path.file_name() == std::path::Path::new(p).file_name()
                        && f.path.parent().and_then(|d| d.file_name()) == Some("families".as_ref())
                })
            {
                files.push(spec::SourceFile {
                    path: PathBuf::from("specs").join(p),
                    text: (*t).to_string(),
                });
            }
        }
        sets.push(spec::load_files(&files)?);
    }
    Ok(sets)
}

fn render_show(set: &SpecSet, api: &spec::LoadedApi) -> String {
    use std::fmt::Write;
    let s = &api.spec;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} — {} {} ({})\n",
        api.name,
        s.api.action,
        s.api.version.as_deref().unwrap_or(""),
        s.api.family.as_str()
    );
    let docs: Vec<_> = s
        .documents
        .iter()
        .chain(set.family(s.api.family).documents.iter())
        .collect();
    let cite = |src: &spec::Source| {
        let file = docs
            .iter()
            .find(|d| d.id == src.doc)
            .map_or(src.doc.as_str(), |d| d.file.as_str());
        format!("{file} § {}", src.section)
    };
    let _ = writeln!(out, "Rules ({}):", s.rules.len());
    for r in &s.rules {
        let codes: Vec<_> = r.errors.iter().map(|e| e.code.as_str()).collect();
        let _ = writeln!(out, "  {:<28} {}", r.id, r.description);
        let _ = writeln!(out, "  {:<28} check: {}", "", r.check.kind_name());
        if !codes.is_empty() {
            let _ = writeln!(out, "  {:<28} codes: {}", "", codes.join(", "));
        }
        let _ = writeln!(out, "  {:<28} source: {}", "", cite(&r.source));
    }
    let fam = set.family(s.api.family);
    let _ = writeln!(out, "\nFamily rules ({}):", fam.rules.len());
    for r in &fam.rules {
        let _ = writeln!(out, "  {:<28} {}", r.id, r.description);
    }
    if !s.errata.is_empty() {
        let _ = writeln!(out, "\nErrata:");
        for e in &s.errata {
            let _ = writeln!(out, "  {:<28} {}", e.id, e.description);
        }
    }
    if !s.unspecified.is_empty() {
        let _ = writeln!(out, "\nUnspecified:");
        for u in &s.unspecified {
            let _ = writeln!(out, "  {:<28} {}", u.id, u.description);
        }
    }
    out
}

fn serve(args: ServeArgs) -> u8 {
    if args.list_faults {
        for f in Fault::ALL {
            println!("{:<26} {}", f.name(), f.description());
        }
        return exit::OK;
    }
    if args.print_world {
        print!(
            "{}",
            serde_yaml_ng::to_string(&World::default_world()).unwrap_or_default()
        );
        return exit::OK;
    }
    let world = match load_world(args.world.as_deref()) {
        Ok(w) => w,
        Err(code) => return code,
    };
    let mut faults = BTreeSet::new();
    for name in &args.faults {
        match name.parse::<Fault>() {
            Ok(f) => {
                faults.insert(f);
            }
            Err(e) => return fail(exit::USAGE, format!("error: {e}")),
        }
    }
    let rate_limits = match args.rate_limits.as_str() {
        "off" => false,
        "documented" => true,
        other => {
            return fail(
                exit::USAGE,
                format!("error: --rate-limits takes `off` or `documented`, not `{other}`"),
            )
        }
    };
    let (tencent, alibaba) = args.creds.resolve();
    let world_name = args
        .world
        .as_ref()
        .map_or("built-in default world".to_string(), |p| {
            p.display().to_string()
        });
    let config = emulator::Config {
        world,
        faults,
        tencent,
        alibaba,
        rate_limits,
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return fail(
                exit::TARGET,
                format!("error: cannot start the runtime: {e}"),
            )
        }
    };
    rt.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(&args.listen).await {
            Ok(l) => l,
            Err(e) => {
                return fail(
                    exit::TARGET,
                    format!("error: cannot listen on {}: {e}\n  = help: pick a free port, e.g. --listen 127.0.0.1:0", args.listen),
                )
            }
        };
        let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
        let n = config.world.instances.len();
        let k = config.world.key_pairs.len();
        println!(
            "apiconform emulator on http://{addr} — accepts Tencent id {} and Alibaba id {}; world: {world_name} ({n} instances, {k} key pairs){}",
            config.tencent.id,
            config.alibaba.id,
            if config.faults.is_empty() {
                String::new()
            } else {
                format!("; faults: {}", config.faults.iter().map(|f| f.name()).collect::<Vec<_>>().join(", "))
            }
        );
        let emu = Arc::new(Emulator::new(config));
        // Ctrl-C or SIGTERM: stop accepting, finish what is in flight, exit 0.
        let shutdown = async {
            #[cfg(unix)]
            {
                let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
                match term.as_mut() {
                    Ok(t) => {
                        tokio::select! {
                            _ = tokio::signal::ctrl_c() => {}
                            _ = t.recv() => {}
                        }
                    }
                    Err(_) => {
                        let _ = tokio::signal::ctrl_c().await;
                    }
                }
            }
            #[cfg(not(unix))]
            {
                let _ = tokio::signal::ctrl_c().await;
            }
            eprintln!("apiconform emulator: shutting down");
        };
        match emulator::server::serve(listener, emu, shutdown).await {
            Ok(()) => exit::OK,
            Err(e) => fail(exit::TARGET, format!("error: server failed: {e}")),
        }
    })
}

fn sign(args: SignArgs) -> u8 {
    use crate::protocol::{Call, Clock, FamilyId, Method, ResponseFormat, SignatureMethod};
    let family = match args.family.as_str() {
        "tencent_api3" => FamilyId::TencentApi3,
        "tencent_v2" => FamilyId::TencentV2,
        "aliyun_rpc" => FamilyId::AliyunRpc,
        other => {
            return fail(
                exit::USAGE,
                format!("error: unknown family `{other}`\n  = help: use tencent_api3, tencent_v2 or aliyun_rpc"),
            )
        }
    };
    let signature = match args.signature.as_deref() {
        None => match family {
            FamilyId::TencentApi3 => SignatureMethod::Tc3HmacSha256,
            FamilyId::TencentV2 => SignatureMethod::V1HmacSha1,
            FamilyId::AliyunRpc => SignatureMethod::RpcHmacSha1,
        },
        Some(s) => match serde_json::from_value(serde_json::Value::String(s.to_string())) {
            Ok(m) => m,
            Err(_) => {
                return fail(
                    exit::USAGE,
                    format!("error: unknown signature `{s}`\n  = help: use tc3-hmac-sha256, v1-hmac-sha1, v1-hmac-sha256, rpc-hmac-sha1 or acs3-hmac-sha256"),
                )
            }
        },
    };
    let method = match args.method.to_ascii_uppercase().as_str() {
        "GET" => Method::Get,
        "POST" => Method::Post,
        other => {
            return fail(
                exit::USAGE,
                format!(
                    "error: method `{other}` is not used by these APIs\n  = help: use GET or POST"
                ),
            )
        }
    };
    let mut params = crate::protocol::Params::new();
    for p in &args.params {
        let Some((k, v)) = p.split_once('=') else {
            return fail(exit::USAGE, format!("error: `--param {p}` has no `=`\n  = help: write NAME=VALUE, e.g. --param 'InstanceIds=[\"ins-1e4r6y8i\"]'"));
        };
        let value =
            serde_json::from_str(v).unwrap_or_else(|_| serde_json::Value::String(v.to_string()));
        params.insert(k.to_string(), value);
    }
    let format = match args
        .format
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None => ResponseFormat::Default,
        Some("json") => ResponseFormat::Json,
        Some("xml") => ResponseFormat::Xml,
        Some(other) => {
            return fail(
                exit::USAGE,
                format!("error: unknown format `{other}`\n  = help: use json or xml"),
            )
        }
    };
    let (tencent, alibaba) = args.creds.resolve();
    let creds = if family == FamilyId::AliyunRpc {
        alibaba
    } else {
        tencent
    };
    let call = Call {
        family,
        action: args.action,
        version: args.version,
        region: args.region,
        service: args.service,
        host: args.host,
        path: args.path.unwrap_or_else(|| {
            if family == FamilyId::TencentV2 {
                "/v2/index.php".into()
            } else {
                "/".into()
            }
        }),
        method,
        signature,
        params,
        format,
    };
    let clock = Clock {
        timestamp: args.timestamp.unwrap_or_else(emulator::server::now),
        nonce: args.nonce,
    };
    match crate::protocol::explain(&call, &creds, &clock) {
        Ok(e) => {
            println!("secret id: {}", creds.id);
            if !e.canonical_request.is_empty() {
                println!("--- canonical request\n{}", e.canonical_request);
            }
            println!("--- string to sign\n{}", e.string_to_sign);
            println!("--- signature\n{}", e.signature);
            println!("--- request\n{} {}", e.request.method, e.request.target);
            for (k, v) in &e.request.headers {
                println!("{k}: {v}");
            }
            if !e.request.body.is_empty() {
                println!("\n{}", String::from_utf8_lossy(&e.request.body));
            }
            exit::OK
        }
        Err(e) => fail(exit::USAGE, format!("error: {e}")),
    }
}

/// Live progress on stderr when it is a terminal and not under CI.
struct Bar {
    enabled: bool,
}

impl crate::run::Progress for Bar {
    fn update(&self, done: usize, total: usize, failed: usize) {
        if self.enabled && (done % 64 == 0 || done == total) {
            use std::io::Write;
            let mut err = std::io::stderr();
            let _ = write!(err, "\r{done}/{total} cases, {failed} failed ");
            if done == total {
                let _ = writeln!(err);
            }
        }
    }
}

/// A target: the given URL, or the emulator started in-process on a loopback port.
struct Running {
    target: crate::run::Target,
    admin: bool,
    /// The world a separately started emulator reported when it was probed.
    reported: Option<World>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

async fn start_target(
    url: Option<&str>,
    faults: &[String],
    world: &World,
    tencent: &Credentials,
    alibaba: &Credentials,
    timeout: std::time::Duration,
) -> Result<Running, (u8, String)> {
    if let Some(url) = url {
        if !faults.is_empty() {
            return Err((exit::USAGE, "error: --fault applies to the embedded emulator only\n  = help: start `apiconform serve --fault NAME` and pass its URL to --target, or drop --target".into()));
        }
        let target = crate::run::Target::new(url, timeout)
            .map_err(|e| (exit::USAGE, format!("error: {e}")))?;
        // A loopback target that serves the emulator's admin view (a separately started
        // `apiconform serve`) lets effects be observed where the API itself offers no view.
        let reported = if target.is_loopback() {
            target.admin_world().await
        } else {
            None
        };
        return Ok(Running {
            target,
            admin: reported.is_some(),
            reported,
            stop: None,
        });
    }
    let mut set = BTreeSet::new();
    for name in faults {
        set.insert(
            name.parse::<Fault>()
                .map_err(|e| (exit::USAGE, format!("error: {e}")))?,
        );
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| {
            (
                exit::TARGET,
                format!("error: cannot listen on loopback: {e}"),
            )
        })?;
    let addr = listener
        .local_addr()
        .map_err(|e| (exit::TARGET, e.to_string()))?;
    let emu = Arc::new(Emulator::new(emulator::Config {
        world: world.clone(),
        faults: set,
        tencent: tencent.clone(),
        alibaba: alibaba.clone(),
        rate_limits: false,
    }));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(emulator::server::serve(listener, emu, async {
        let _ = rx.await;
    }));
    let target = crate::run::Target::new(&format!("http://{addr}"), timeout)
        .map_err(|e| (exit::TARGET, format!("error: {e}")))?;
    Ok(Running {
        target,
        admin: true,
        reported: None,
        stop: Some(tx),
    })
}

fn runtime() -> Result<tokio::runtime::Runtime, u8> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            fail(
                exit::TARGET,
                format!("error: cannot start the runtime: {e}"),
            )
        })
}

fn run(args: RunArgs) -> u8 {
    let set = match &args.specs_dir {
        Some(d) => spec::load_dir(d),
        None => spec::load_embedded(),
    };
    let set = match set {
        Ok(s) => s,
        Err(e) => return fail(exit::USAGE, e),
    };
    let world = match load_world(args.world.as_deref()) {
        Ok(w) => w,
        Err(code) => return code,
    };
    let shard = match args.shard.as_deref().map(parse_shard) {
        None => None,
        Some(Ok(s)) => Some(s),
        Some(Err(e)) => return fail(exit::USAGE, e),
    };
    let (tencent, alibaba) = args.creds.resolve();
    let mut opts = crate::run::RunOptions {
        patterns: args.specs.clone(),
        cases: args.cases,
        seed: args.seed,
        jobs: args.jobs.max(1),
        violations: args.violations.max(1),
        shard,
        tencent: tencent.clone(),
        alibaba: alibaba.clone(),
        timeout: std::time::Duration::from_secs(args.timeout.max(1)),
        rate: args.rate,
        ..Default::default()
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async move {
        let mut running = match start_target(args.target.as_deref(), &args.faults, &world, &tencent, &alibaba, opts.timeout).await {
            Ok(r) => r,
            Err((code, msg)) => return fail(code, msg),
        };
        if !running.target.is_loopback() && args.world.is_none() {
            return fail(exit::USAGE, format!(
                "error: {} is not on this machine, and no --world was given\n  = help: list the instances and key pairs apiconform may touch in a world file (docs/world.md) and pass --world FILE; try --dry-run first",
                running.target.url()
            ));
        }
        opts.admin = running.admin;
        // A separately started emulator may have run cases before: start from the world it
        // holds now rather than assume the built-in one (a --world file still decides).
        let world = match (&args.world, running.reported.take()) {
            (None, Some(reported)) => reported,
            _ => world,
        };
        if args.dry_run {
            return dry_run(&set, &world, &running.target, &opts);
        }
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("\ninterrupted: finishing the cases in flight and writing the reports");
                flag.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        });
        let bar = Bar {
            enabled: std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("CI").is_none(),
        };
        let result = crate::run::run(&set, world, &running.target, &opts, &bar, &stop).await;
        if let Some(tx) = running.stop {
            let _ = tx.send(());
        }
        let report = match result {
            Ok(r) => r,
            Err(crate::run::RunError::NoSpecs { patterns }) => {
                return fail(exit::USAGE, format!("error: no spec matches {patterns:?}\n  = help: `apiconform specs list` shows the names"))
            }
            Err(e) => return fail(exit::TARGET, format!("error: {e}\n  = help: check that the target is up and the URL is right")),
        };
        print!("{}", crate::report::table(&report));
        if let Some(p) = &args.report_json {
            if let Err(e) = crate::report::write_json(&report, p) {
                return fail(exit::TARGET, format!("error: cannot write {}: {e}", p.display()));
            }
        }
        if let Some(p) = &args.junit {
            if let Err(e) = std::fs::write(p, crate::report::junit(&report)) {
                return fail(exit::TARGET, format!("error: cannot write {}: {e}", p.display()));
            }
        }
        if let Some(dir) = &args.repro_dir {
            match crate::report::write_repros(&report, dir) {
                Ok(paths) => {
                    for p in paths {
                        println!("repro: {}", p.display());
                    }
                }
                Err(e) => return fail(exit::TARGET, format!("error: cannot write repros to {}: {e}", dir.display())),
            }
        }
        if report.interrupted {
            exit::TARGET
        } else if report.failed() > 0 {
            exit::NONCONFORMANCE
        } else {
            exit::OK
        }
    })
}

fn bench(args: BenchArgs) -> u8 {
    let set = match spec::load_embedded() {
        Ok(s) => s,
        Err(e) => return fail(exit::USAGE, e),
    };
    let opts = crate::run::RunOptions {
        patterns: args.specs,
        cases: args.cases,
        seed: args.seed,
        jobs: args.jobs.max(1),
        ..Default::default()
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let stop = std::sync::atomic::AtomicBool::new(false);
    let result = rt.block_on(crate::run::run_embedded(
        &set,
        World::default_world(),
        &opts,
        &crate::run::NoProgress,
        &stop,
    ));
    let report = match result {
        Ok(r) => r,
        Err(crate::run::RunError::NoSpecs { patterns }) => {
            return fail(exit::USAGE, format!("error: no spec matches {patterns:?}\n  = help: `apiconform specs list` shows the names"))
        }
        Err(e) => return fail(exit::TARGET, format!("error: {e}")),
    };
    for a in &report.apis {
        println!("{:<46} {:>8} cases", a.api, a.cases);
    }
    let cases = report.cases();
    let rate = cases as f64 / report.seconds.max(f64::EPSILON);
    let rss = crate::run::peak_rss_kib().map_or("unknown".to_string(), |k| {
        format!("{:.1} MiB", k as f64 / 1024.0)
    });
    println!(
        "{cases} checked cases in {:.2}s: {rate:.0} cases/s with --jobs {}; peak RSS {rss}; {} failed",
        report.seconds,
        opts.jobs,
        report.failed()
    );
    if report.failed() > 0 {
        exit::NONCONFORMANCE
    } else {
        exit::OK
    }
}

fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let bad = || format!("error: --shard takes I/N with 1 <= I <= N (e.g. 2/4), not `{s}`");
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let i: usize = i.parse().map_err(|_| bad())?;
    let n: usize = n.parse().map_err(|_| bad())?;
    if i == 0 || n == 0 || i > n {
        return Err(bad());
    }
    Ok((i - 1, n))
}

fn dry_run(
    set: &SpecSet,
    world: &World,
    target: &crate::run::Target,
    opts: &crate::run::RunOptions,
) -> u8 {
    let gen = crate::generate::GenOptions {
        violations: opts.violations,
        ..Default::default()
    };
    for (i, api) in crate::run::select(set, &opts.patterns)
        .into_iter()
        .enumerate()
    {
        let seed = opts.seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        for (n, case) in crate::generate::corpus(set, api, world, seed, opts.cases, &gen)
            .into_iter()
            .enumerate()
        {
            match crate::run::sign_case(
                api,
                &case,
                &target.authority(),
                &opts.tencent,
                &opts.alibaba,
                emulator::server::now(),
                n as u64,
            ) {
                Ok(req) => {
                    let req = crate::report::redact(&req);
                    println!("# {} case {n}: breaks {:?}", api.name, case.violates);
                    println!("{}", crate::report::curl(&req, target.url()));
                }
                Err(e) => return fail(exit::USAGE, format!("error: {e}")),
            }
        }
    }
    exit::OK
}

fn replay(args: ReplayArgs) -> u8 {
    let text = match std::fs::read_to_string(&args.file) {
        Ok(t) => t,
        Err(e) => {
            return fail(
                exit::USAGE,
                format!("error: cannot read {}: {e}", args.file.display()),
            )
        }
    };
    let failure: crate::run::Failure = match serde_json::from_str(&text) {
        Ok(f) => f,
        Err(e) => {
            return fail(exit::USAGE, format!(
                "error: {} is not a repro file: {e}\n  --> {}:{}:{}\n  = help: pass a file written by `apiconform run --repro-dir DIR`",
                args.file.display(), args.file.display(), e.line(), e.column()
            ))
        }
    };
    let set = match spec::load_embedded() {
        Ok(s) => s,
        Err(e) => return fail(exit::USAGE, e),
    };
    let world = match load_world(args.world.as_deref()) {
        Ok(w) => w,
        Err(code) => return code,
    };
    let (tencent, alibaba) = args.creds.resolve();
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async move {
        let running = match start_target(args.target.as_deref(), &[], &world, &tencent, &alibaba, std::time::Duration::from_secs(10)).await {
            Ok(r) => r,
            Err((code, msg)) => return fail(code, msg),
        };
        if !running.target.is_loopback() && args.world.is_none() {
            return fail(exit::USAGE, "error: replaying against a remote target needs --world FILE listing what it may touch");
        }
        let opts = crate::run::RunOptions { tencent, alibaba, admin: running.admin, ..Default::default() };
        let result = crate::run::replay(&set, world, &running.target, &opts, &failure).await;
        if let Some(tx) = running.stop {
            let _ = tx.send(());
        }
        match result {
            Ok((verdict, resp)) => {
                let body = String::from_utf8_lossy(&resp.body);
                match verdict.kind {
                    crate::oracle::VerdictKind::Fail => {
                        println!("still fails: rule `{}`\n  expected: {}\n  actual:   {}\n  response: {} {}", verdict.rule.unwrap_or_default(), verdict.expected, verdict.actual, resp.status, body);
                        exit::NONCONFORMANCE
                    }
                    kind => {
                        println!("no longer fails ({kind:?}): response {} {}", resp.status, body);
                        exit::OK
                    }
                }
            }
            Err(e) => fail(exit::TARGET, format!("error: {e}")),
        }
    })
}

fn snapshot(args: SnapshotArgs) -> u8 {
    use crate::snapshot;
    let set = match spec::load_embedded() {
        Ok(s) => s,
        Err(e) => return fail(exit::USAGE, e),
    };
    let world = match load_world(args.world.as_deref()) {
        Ok(w) => w,
        Err(code) => return code,
    };
    let apis: Vec<String> = crate::run::select(&set, &args.specs)
        .into_iter()
        .map(|a| a.name.clone())
        .collect();
    if apis.is_empty() {
        return fail(
            exit::USAGE,
            format!(
                "error: no spec matches {:?}\n  = help: `apiconform specs list` shows the names",
                args.specs
            ),
        );
    }
    let mut faults = BTreeSet::new();
    for name in &args.faults {
        match name.parse::<Fault>() {
            Ok(f) => {
                faults.insert(f);
            }
            Err(e) => return fail(exit::USAGE, format!("error: {e}")),
        }
    }
    let (tencent, alibaba) = args.creds.resolve();
    let started = std::time::Instant::now();
    let entries: Vec<snapshot::Entry> = set
        .apis
        .iter()
        .filter(|a| apis.contains(&a.name))
        .flat_map(|a| snapshot::api_corpus(&set, a, &world))
        .collect();
    let recorded = match &args.target {
        None => {
            let config = emulator::Config {
                world: world.clone(),
                faults,
                tencent,
                alibaba,
                rate_limits: false,
            };
            snapshot::record_in_process(&set, &config, &entries)
        }
        Some(url) => {
            if !args.faults.is_empty() {
                return fail(exit::USAGE, "error: --fault applies to the embedded emulator only\n  = help: start `apiconform serve --fault NAME` and pass its URL to --target, or drop --target");
            }
            let target = match crate::run::Target::new(
                url,
                std::time::Duration::from_secs(args.timeout.max(1)),
            ) {
                Ok(t) => t,
                Err(e) => return fail(exit::USAGE, format!("error: {e}")),
            };
            if !target.is_loopback() && args.world.is_none() {
                return fail(exit::USAGE, format!(
                    "error: {} is not on this machine, and no --world was given\n  = help: list the instances and key pairs apiconform may touch in a world file (docs/world.md) and pass --world FILE",
                    target.url()
                ));
            }
            let rt = match runtime() {
                Ok(rt) => rt,
                Err(code) => return code,
            };
            let creds = snapshot::Creds { tencent, alibaba };
            match rt.block_on(snapshot::record_target(
                &set, &world, &target, &creds, &entries,
            )) {
                Ok((recorded, run)) => {
                    if !run.reset {
                        eprintln!("note: {} has no admin reset; the exchanges ran in corpus order, each seeing the effects of those before", target.url());
                    }
                    recorded
                }
                Err(e) => {
                    return fail(
                        exit::TARGET,
                        format!(
                        "error: {e}\n  = help: check that the target is up and the URL is right"
                    ),
                    )
                }
            }
        }
    };
    let mode = if args.update {
        snapshot::Mode::Record
    } else {
        snapshot::Mode::from_env()
    };
    let report = match snapshot::compare(&args.dir, &recorded, mode) {
        Ok(r) => r,
        Err(e) => return fail(exit::TARGET, format!("error: {e}")),
    };
    print!("{}", report.render());
    let per_api: Vec<String> = snapshot::counts(&entries)
        .into_iter()
        .map(|(a, n)| format!("{a} {n}"))
        .collect();
    println!(
        "{} exchanges in {:.2}s ({})",
        entries.len(),
        started.elapsed().as_secs_f64(),
        per_api.join(", ")
    );
    if report.differences() > 0 {
        exit::NONCONFORMANCE
    } else {
        exit::OK
    }
}
