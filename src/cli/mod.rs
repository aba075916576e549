//! The command line: parses arguments, calls the library, maps results to exit codes. One
//! module per command; policy (which target, which world, the remote-target guard, the plan of
//! a run) lives in the library, so the commands only translate flags and print.

mod bench;
mod proxy;
mod replay;
mod report;
mod repro;
mod restore;
mod run;
mod selftest;
mod serve;
mod sign;
mod snapshot;
mod specs;
mod world;

use std::fmt::Display;
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::emulator::{self, Fault, Variant};
use crate::protocol::Credentials;
use crate::report::console::escape_text;
use crate::run::{RunError, TransportError};
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
    /// A budget (`--max-requests`, `--max-duration`) stopped the run, and nothing failed in
    /// what ran.
    pub const BUDGET: u8 = 4;
    /// The run's restore (or `apiconform restore`) left an instance not put back, or could not
    /// tell whether it changed: the account may not be as the run found it. It outranks every
    /// other code, since it asks for someone to act now.
    pub const NOT_RESTORED: u8 = 5;
    /// `replay` or `repro import` sent nothing that could be judged: the case was not sent (a
    /// guard held it back), every answer was throttling, or the repro is a client-side record a
    /// replay cannot re-create. It proves nothing either way: neither fixed nor still failing.
    pub const NOT_REPRODUCED: u8 = 6;
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
    after_help = "Exit codes: 0 every check passed; 1 nonconformance found; 2 usage, spec or world-file error; 3 target unreachable or run incomplete; 4 a budget stopped the run; 5 a restore left something not put back."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check every spec against a target (default: the built-in emulator, started in-process).
    #[command(
        after_help = "Examples:\n  apiconform run                                   # every spec against the embedded emulator\n  apiconform run --spec ecm --cases 2000 --seed 7  # one API, more cases, another seed\n  apiconform run --target http://127.0.0.1:9000    # a separately started `apiconform serve`\n  apiconform run --target https://cvm.tencentcloudapi.com --world mine.yaml --spec tencent-cvm --dry-run\n\nAgainst a target that is not on loopback a --world file is required: state-changing requests\ntouch only the resources it lists, and invalid requests use ids that do not exist. After each\nAPI's cases a burst a few requests over its documented rate limit must be throttled; it goes\nonly to loopback targets unless --probe-rate-limits (--no-rate-probes: never).\nWithout --world, a separately started `apiconform serve` is asked what it holds now (its admin\nview), and any other target is assumed to hold the emulator's built-in default world.\n\nAgainst a target that is not on loopback, what each listed instance holds is read and\njournaled (--journal FILE, default ./apiconform.journal) before its first change, and when the\nrun ends (passed, failed, interrupted, out of budget) every reversible change is put back and\nthe report says \"restored N of M\"; after a crash `apiconform restore FILE` does it. APIs whose\nchanges the specs cannot undo (ECM) keep off listed instances unless --allow-irreversible;\ncases that could stop a RUNNING instance are not sent unless --allow-force-stop.\n\nExit codes: 0 every check passed; 1 nonconformance; 2 usage, spec or world error; 3 target\nunreachable or the run could not complete (Ctrl-C, SIGTERM); 4 a budget (--max-requests,\n--max-duration) stopped the run and nothing failed in what ran; 5 the run's restore left an\ninstance not put back, or could not tell whether it changed (it outranks the others).\n\nAgainst a target off this machine the vendors' credentials must be set for every family the\nselected APIs use (TENCENTCLOUD_SECRET_ID/_KEY, ALIBABA_CLOUD_ACCESS_KEY_ID/_SECRET), else exit\n2 before any request: the documentation's example keys are used only on loopback.\n\n--cloud sends each API to its vendor's host for the request's region, as the spec files\ndocument it; --endpoint PRODUCT=URL sends one product elsewhere (an emulator per product, a\nstaging host); --ca-cert and --resolve reach a TLS emulator under the vendor's host name:\n  apiconform run --cloud --world world.yaml --spec tencent-cvm\n  apiconform run --cloud --endpoint tencent-cvm=https://cvm.tencentcloudapi.com:9443 \\\n      --resolve cvm.tencentcloudapi.com:9443:127.0.0.2 --ca-cert emu.pem --world world.yaml"
    )]
    Run(Box<run::RunArgs>),
    /// Measure checked cases per second and peak memory against the embedded emulator.
    #[command(
        after_help = "Runs the default suite (every spec, the built-in world) against the emulator \
started in-process, as `apiconform run` does, and prints the rate and the peak resident set \
(VmHWM). Nothing is written; the exit code is 1 if a case failed.\n\nExamples:\n  apiconform bench\n  apiconform bench --cases 100000 --jobs 32\n  apiconform bench --spec ecm --cases 20000"
    )]
    Bench(bench::BenchArgs),
    /// Show the harness's detection power: run it against the embedded emulator under every
    /// fault (each must be caught) and every variant (each must pass), and print the table.
    #[command(
        after_help = "Each row is an ordinary run against a fresh in-process emulator from the \
built-in world, with one seed and one case count for all:\n\n\
  - a fault (a narrow, deliberate bug; `serve --list-faults`) runs alone on the API the \
catalogue exercises it on. It is caught when a failure names one of the rules the catalogue \
expects for it; the row gives that rule and the cases of the API judged until its first \
failing case came back (that case included: a measurement, not an estimate). A fault marked \
(strict) breaks one of our judgements and runs under --strict.\n\
  - a variant (another defensible reading of the documents; `serve --list-variants`) runs \
alone on every API. It is clean when the run reports no failure; a failure there is a check \
of our reading, not of the documents: a harness bug.\n\n\
The last line gives the median of the faults' cases to the first failure (a fault not caught \
counts as more than any number). Progress goes to stderr, a line per row.\n\n\
Examples:\n  apiconform selftest                                  # every fault and every variant\n  apiconform selftest --fault xml-ignored --variant reverse-precedence --json selftest.json\n  apiconform selftest --fault xml-ignored --spec tencent-cvm   # where it cannot show: NOT caught\n  apiconform selftest --cases 300 --seed 7\n\n\
Exit codes: 0 every fault caught and every variant clean; 1 otherwise; 2 usage error; 3 the \
emulator could not start or the self-test was interrupted."
    )]
    Selftest(selftest::SelftestArgs),
    /// Validate both sides of every exchange between a client (an SDK, a CLI) and a target:
    /// forward each request unchanged, judge the request against the documents and the answer
    /// and state change as `run` judges them.
    #[command(
        after_help = "Point the client's endpoint at the proxy (plain HTTP on loopback). Each request is judged on the \
client side (family, signature with the configured credentials and the step where it diverges, \
timestamp window, nonce, action and version, parameters by the spec's rules), forwarded \
unchanged (the Host the client signed included), and the answer passed back unchanged; the \
answer and the state change are then judged as `apiconform run` judges them (strengths, \
unspecified situations, --strict, --source). Actions no spec describes are forwarded unjudged. \
A target that is down gets 502 in the family's error envelope. Ctrl-C or SIGTERM stops it and \
prints the summary per API and side.\n\n\
Examples:\n  apiconform serve --listen 127.0.0.1:9000 &\n  apiconform proxy --listen 127.0.0.1:9100 --target http://127.0.0.1:9000 --record findings/\n  apiconform proxy --listen 127.0.0.1:0 --target http://127.0.0.1:9000 --fail-on client --report-json proxy.json\n  apiconform proxy --listen 127.0.0.1:9100 --target https://cvm.tencentcloudapi.com --world mine.yaml\n\n\
Exit codes: 0 no finding on the sides --fail-on names; 1 a finding there; 2 usage, spec or \
world error; 3 the target could not be reached at start (or a request was answered 502)."
    )]
    Proxy(proxy::ProxyArgs),
    /// Re-send a repro file (re-signed with a fresh timestamp) and judge it again (strictly when
    /// the failure rested on our judgement, as found under `run --strict`).
    #[command(
        after_help = "Before it sends, the replay sets up what the failing call met (the repro's `preconditions`: each instance's bound keys, put back with the specs' own bind and unbind calls where they differ; only instances the world lists) and prints a `set up:` line per instance; against the embedded emulator the instances start as met, state included. --runs N replays N times, setting up before each, and ends with FIXED (no run failed, exit 0), STILL FAILS (every run, exit 1) or FLAKY (k of N, exit 1). A record of the proxy's client side is not reproduced (exit 6): a replay signs the request itself, so it cannot show whether the client is fixed.\n\nThe case goes through the same guards as in `run`: against a target that is not on loopback it is not sent when it names an instance the --world file does not list but the target holds, or could stop a RUNNING instance without --allow-force-stop; a rate-limit repro's burst goes only to loopback unless --probe-rate-limits. A case not sent, or answered only with throttling, reproduces nothing: it is not a pass.\n\nA rate-limit repro's `burst` must be 1 to the few requests over the documented limit that `run` sends (30 for 20/s); a repro claiming more is refused.\n\nExamples:\n  apiconform replay repros/tencent-cvm--AssociateInstancesKeyPairs--key-exists.json\n  apiconform replay repro.json --target https://cvm.tencentcloudapi.com --world mine.yaml\n  apiconform replay repro.json --target http://127.0.0.1:9000 --runs 5\n\nExit codes: 0 the failure no longer shows (FIXED); 1 it still fails (STILL FAILS or FLAKY); 2 usage, a bad repro or world file (a field out of bounds is named); 3 the target could not be reached; 6 the case was not sent or only throttled (\"not reproduced\": neither fixed nor failing)."
    )]
    Replay(replay::ReplayArgs),
    /// Bug reports: import a captured or described request into a judged, minimal repro
    /// (`repro import`), print a repro as a signed curl line (`repro curl`), bundle repros into
    /// one Markdown report (`repro bundle`).
    #[command(subcommand)]
    Repro(repro::ReproCommand),
    /// Put back what a run changed, from its journal (after a crash, or to retry what the
    /// run's own restore could not do).
    #[command(
        after_help = "Every instance of the journal is read again through the vendors' read calls; where it holds other keys than before the run, the specs' calls put the old ones back (CVM AssociateInstancesKeyPairs with the old keys, or DisassociateInstancesKeyPairs of the new ones when it held none), and it is read once more to confirm. What cannot be undone is named with the reason and what to do (no bind call for ECM instances is specced; an instance that was RUNNING and is STOPPED; a RUNNING instance the call would stop without --allow-force-stop). Safe to run twice: an instance that holds what it held is left alone.\n\nExamples:\n  apiconform restore apiconform.journal\n  apiconform restore journal-2.json --target https://cvm.tencentcloudapi.com --allow-force-stop\n\nExit codes: 0 every changed instance put back; 5 some could not be, or whether they changed could not be told (each is named with why); 2 usage, a bad journal or missing credentials; 3 the target could not be reached."
    )]
    Restore(restore::RestoreArgs),
    /// Record or check the snapshot corpus: one normalised exchange per rule, error code, valid
    /// path and unspecified behaviour, stored as insta `.snap` files.
    #[command(
        after_help = "Examples:\n  apiconform snapshot                              # check snapshots/ against the embedded emulator\n  apiconform snapshot --update                     # accept everything (rewrite the .snap files)\n  apiconform snapshot --target https://cvm.tencentcloudapi.com --world mine.yaml --spec tencent-cvm --dir recorded --update\n  apiconform snapshot --dir recorded --world mine.yaml   # check the emulator against that recording\n\nA difference is printed as a diff and written beside the snapshot as a pending .snap.new file:\naccept or reject it with `cargo insta review` (or rerun with --update). INSTA_UPDATE=always\nrecords, INSTA_UPDATE=no writes nothing. The embedded emulator starts fresh for every exchange;\na target that serves the emulator's admin endpoint is reset before each one; any other target\ngets the exchanges in corpus order, each seeing the effect of those before (record and check\nfrom the same starting state).\n\nExit codes: 0 same; 1 differences; 2 usage, spec or world error; 3 target unreachable."
    )]
    Snapshot(snapshot::SnapshotArgs),
    /// Serve the emulator: a stateful implementation of all five APIs that SDKs can call.
    #[command(
        after_help = "Default credentials (documentation examples): Tencent (every family) \
AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE / Gu5t9xGARNpq86cd98joQYCN3EXAMPLE; Alibaba testid / \
testsecret. Override with the flags or TENCENTCLOUD_SECRET_ID/KEY, \
ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET.\n\nAdmin (test-only): GET /__apiconform/world dumps the \
world (?instances=ID,ID: only those instances), POST /__apiconform/reset resets it (optionally to the JSON world in the body)."
    )]
    Serve(serve::ServeArgs),
    /// Inspect and check spec files.
    #[command(subcommand)]
    Specs(specs::SpecsCommand),
    /// Work on written reports: merge the JSON reports of a run's shards (`report merge`).
    #[command(subcommand)]
    Report(report::ReportCommand),
    /// Show how a request is signed: canonical request, string to sign, signature.
    #[command(
        after_help = "Use it when a server answers \"signature mismatch\": compare the \
string to sign printed here with the one the server reports (Alibaba prints its own in the \
SignatureDoesNotMatch message). The secret is read from the flags or the vendors' environment \
variables and never printed.\n\nExample:\n  apiconform sign --family tencent_api3 --action \
DescribeInstances --version 2017-03-12 --region ap-guangzhou --service cvm --host \
cvm.tencentcloudapi.com --timestamp 1551113065 --param Limit=1"
    )]
    Sign(sign::SignArgs),
    /// World files: `world discover` writes one from a target's read APIs.
    #[command(subcommand)]
    World(world::WorldCommand),
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

/// Where requests go, for the commands that send: one server, or each product to its vendor's
/// host (`--cloud`), and how to reach them.
#[derive(Args, Clone, Default)]
pub struct TargetArgs {
    /// Send every request to this one server (an `apiconform serve`, a mock, one vendor host).
    /// Default: the emulator, started in-process.
    #[arg(long, conflicts_with_all = ["cloud", "endpoints"])]
    target: Option<String>,
    /// Send each API to its vendor's host for the request's region, as the spec files'
    /// `api.endpoints` document it (CVM at cvm.<region>.tencentcloudapi.com, API 2.0 at
    /// cvm.api.qcloud.com, ECS at ecs.<region>.aliyuncs.com, ...).
    #[arg(long)]
    cloud: bool,
    /// With --cloud (implied): send one product's APIs and read calls to URL instead; PRODUCT
    /// is a folder of the specs (tencent-cvm, tencent-ecm, alibaba-ecs). Repeatable.
    #[arg(long = "endpoint", value_name = "PRODUCT=URL", value_parser = crate::run::parse_endpoint)]
    endpoints: Vec<(String, String)>,
    /// Trust this PEM certificate (a CA or a server's own) besides the system's roots, e.g. an
    /// emulator started with `serve --tls`. Repeatable.
    #[arg(long = "ca-cert", value_name = "FILE")]
    ca_certs: Vec<std::path::PathBuf>,
    /// Connect to ADDR whenever HOST:PORT is asked for (curl's --resolve), e.g.
    /// cvm.tencentcloudapi.com:443:127.0.0.2. Repeatable.
    #[arg(long = "resolve", value_name = "HOST:PORT:ADDR", value_parser = crate::run::parse_resolve)]
    resolve: Vec<(String, std::net::SocketAddr)>,
}

impl TargetArgs {
    /// Where requests go, in the text form `SetupOptions::target` takes; `None`: the emulator
    /// in-process.
    pub fn destination(&self) -> Option<String> {
        if self.cloud || !self.endpoints.is_empty() {
            let overrides = self.endpoints.iter().cloned().collect();
            return Some(crate::run::Destination::Cloud(overrides).to_string());
        }
        self.target.clone()
    }

    /// `--ca-cert` and `--resolve`, the certificates read.
    fn reach(&self) -> Result<crate::run::Reach, Failed> {
        let mut ca_certs = Vec::new();
        for path in &self.ca_certs {
            let pem = std::fs::read(path).map_err(|e| {
                Failed::usage(format!(
                    "error: cannot read --ca-cert {}: {e}\n  = help: give a PEM file (`serve --tls` writes one with --cert-out)",
                    path.display()
                ))
            })?;
            ca_certs.push(pem);
        }
        Ok(crate::run::Reach {
            ca_certs,
            resolve: self.resolve.clone(),
        })
    }
}

impl CredArgs {
    /// The environment variables missing for these families, each with the flag that stands
    /// for it: against a target off this machine the documentation's example keys are never
    /// used, so each family sent to needs its vendor's pair.
    pub fn missing(
        &self,
        families: impl IntoIterator<Item = crate::protocol::FamilyId>,
    ) -> Vec<&'static str> {
        use crate::protocol::FamilyId;
        let mut out = Vec::new();
        let (mut tencent, mut alibaba) = (false, false);
        for f in families {
            match f {
                FamilyId::TencentApi3 | FamilyId::TencentV2 => tencent = true,
                FamilyId::AliyunRpc => alibaba = true,
            }
        }
        if tencent {
            if self.tencent_secret_id.is_none() {
                out.push("TENCENTCLOUD_SECRET_ID (or --tencent-secret-id)");
            }
            if self.tencent_secret_key.is_none() {
                out.push("TENCENTCLOUD_SECRET_KEY (or --tencent-secret-key)");
            }
        }
        if alibaba {
            if self.alibaba_access_key_id.is_none() {
                out.push("ALIBABA_CLOUD_ACCESS_KEY_ID (or --alibaba-access-key-id)");
            }
            if self.alibaba_access_key_secret.is_none() {
                out.push("ALIBABA_CLOUD_ACCESS_KEY_SECRET (or --alibaba-access-key-secret)");
            }
        }
        out
    }

    /// A usage error when `missing` names anything: exit 2 before any request is sent.
    fn require(
        &self,
        families: impl IntoIterator<Item = crate::protocol::FamilyId>,
        target: &str,
    ) -> Result<(), Failed> {
        let missing = self.missing(families);
        if missing.is_empty() {
            return Ok(());
        }
        Err(Failed::usage(format!(
            "error: no credentials for {target}: {} not set\n  = help: export the vendor's variables (the documentation's example keys are used only against loopback targets)",
            missing.join(", ")
        )))
    }

    /// The Tencent and Alibaba credentials, falling back to the documentation examples.
    pub fn resolve(&self) -> crate::protocol::Keys {
        // Each value falls back on its own, so a flag can override just the secret id.
        let pick = |id: &Option<String>, secret: &Option<String>, default: (&str, &str)| {
            let d = Credentials::from_pair(default);
            Credentials {
                id: id.clone().unwrap_or(d.id),
                secret: secret.clone().unwrap_or(d.secret),
            }
        };
        crate::protocol::Keys {
            tencent: pick(
                &self.tencent_secret_id,
                &self.tencent_secret_key,
                emulator::TENCENT_DEFAULT,
            ),
            alibaba: pick(
                &self.alibaba_access_key_id,
                &self.alibaba_access_key_secret,
                emulator::ALIBABA_DEFAULT,
            ),
        }
    }
}

/// `--fault NAME`, parsed once for every command that takes it.
fn parse_fault(name: &str) -> Result<Fault, String> {
    name.parse::<Fault>().map_err(|e| e.to_string())
}

fn parse_variant(name: &str) -> Result<Variant, String> {
    name.parse::<Variant>()
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
        Command::Run(args) => run::run(*args),
        Command::Bench(args) => bench::bench(args),
        Command::Selftest(args) => selftest::selftest(args),
        Command::Proxy(args) => proxy::proxy(args),
        Command::Replay(args) => replay::replay(args),
        Command::Repro(cmd) => repro::repro(cmd),
        Command::Restore(args) => restore::restore(args),
        Command::Snapshot(args) => snapshot::snapshot(args),
        Command::Serve(args) => serve::serve(args),
        Command::Specs(cmd) => specs::specs(cmd),
        Command::Report(cmd) => report::report(cmd),
        Command::Sign(args) => sign::sign(args),
        Command::World(cmd) => world::world(cmd),
    };
    ExitCode::from(code)
}

/// A command's failure: the exit code and what to tell the user.
struct Failed {
    code: u8,
    message: String,
}

impl Failed {
    fn usage(message: impl Display) -> Failed {
        Failed {
            code: exit::USAGE,
            message: message.to_string(),
        }
    }

    fn target(message: impl Display) -> Failed {
        Failed {
            code: exit::TARGET,
            message: message.to_string(),
        }
    }
}

/// The one mapping from the library's run errors to exit codes: what the user asked for is
/// wrong (2: a flag, a spec, a world file, a journal), or the target could not be reached or the
/// run not completed (3), or a replay reproduced nothing (6). Every error is named: a new one does not compile until it has a code.
impl From<RunError> for Failed {
    fn from(e: RunError) -> Failed {
        match e {
            RunError::NoSpecs { .. }
            | RunError::FaultsNeedEmbedded
            | RunError::VariantsNeedEmbedded
            | RunError::RemoteNeedsWorld { .. }
            | RunError::BurstNotSent { .. }
            | RunError::ReproOutOfBounds { .. }
            | RunError::Protocol { .. }
            | RunError::Transport(TransportError::BadUrl { .. })
            | RunError::Transport(TransportError::NoEndpoint { .. }) => {
                Failed::usage(format!("error: {e}"))
            }
            // A journal is a file the user names: its errors carry their own wording and fix.
            RunError::Journal(e) => Failed::usage(e),
            RunError::Throttled { .. } => Failed::target(format!("error: {e}")),
            RunError::NotReproduced { .. } => Failed {
                code: exit::NOT_REPRODUCED,
                message: format!("error: {e}"),
            },
            RunError::Transport(TransportError::Unreachable { .. }) => Failed::target(format!(
                "error: {e}\n  = help: check that the target is up and the URL is right"
            )),
        }
    }
}

/// Prints a failure and returns its code; a command's body returns `Result<u8, Failed>`.
fn finish(result: Result<u8, Failed>) -> u8 {
    match result {
        Ok(code) => code,
        Err(f) => {
            tell(f.message);
            f.code
        }
    }
}

/// The world file given, or `None`; a bad file is a usage error naming the file and line.
fn load_world(path: Option<&Path>) -> Result<Option<World>, Failed> {
    path.map(|p| World::load(p).map_err(Failed::usage))
        .transpose()
}

fn runtime() -> Result<tokio::runtime::Runtime, Failed> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failed::target(format!("error: cannot start the runtime: {e}")))
}

/// Writes to standard output; false when it is closed (`apiconform run --dry-run | head`), so
/// a long listing stops quietly instead of panicking on a broken pipe. Whatever came from
/// outside in `text` is shown with its control characters escaped
/// ([`crate::report::console`]).
fn say(text: impl Display) -> bool {
    let text = text.to_string();
    writeln!(std::io::stdout().lock(), "{}", escape_text(&text)).is_ok()
}

/// Writes a line to standard error, control characters from outside escaped as [`say`] does.
fn tell(text: impl Display) {
    let text = text.to_string();
    let _ = writeln!(std::io::stderr().lock(), "{}", escape_text(&text));
}
