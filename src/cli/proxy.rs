//! `apiconform proxy`: the validating proxy (see [`crate::proxy`]); flags in, summary and exit
//! code out.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::run::RevisionArg;
use super::{exit, finish, load_world, runtime, say, CredArgs, Failed};
use crate::proxy::{Proxy, ProxyError, ProxyOptions, Side};
use crate::spec;

#[derive(Args)]
pub(super) struct ProxyArgs {
    /// Where to listen: a loopback address (port 0 picks a free one; the banner names it).
    #[arg(long, value_name = "ADDR:PORT")]
    listen: std::net::SocketAddr,
    /// The target every request is forwarded to (an `apiconform serve`, a cloud endpoint).
    #[arg(long, value_name = "URL")]
    target: String,
    /// World file describing what the target holds (required for a target not on loopback;
    /// a loopback emulator is asked through its admin view).
    #[arg(long)]
    world: Option<PathBuf>,
    /// Write one repro file per exchange with a finding into this folder (secrets redacted;
    /// `apiconform replay FILE` re-sends it).
    #[arg(long, value_name = "DIR")]
    record: Option<PathBuf>,
    /// Which side's findings make the exit code 1.
    #[arg(long, value_enum, default_value_t = FailOn::Any)]
    fail_on: FailOn,
    /// Write the summary (per API and side, every finding and note) as JSON here on exit.
    #[arg(long, value_name = "FILE")]
    report_json: Option<PathBuf>,
    /// Judge the server on our judgements too, as `run --strict`.
    #[arg(long)]
    strict: bool,
    /// Judge error codes by one revision of the documents, as `run --source`.
    #[arg(long = "source", value_enum, value_name = "REVISION")]
    source: Option<RevisionArg>,
    /// Per-request timeout towards the target, in seconds.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// Start even when the target does not take a connection (requests are answered 502
    /// until it does).
    #[arg(long)]
    allow_down: bool,
    #[command(flatten)]
    creds: CredArgs,
}

/// The sides whose findings fail the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FailOn {
    /// The requests' findings only (verifying an SDK).
    Client,
    /// The answers' findings only (verifying a target).
    Server,
    /// Either.
    Any,
}

pub(super) fn proxy(args: ProxyArgs) -> u8 {
    finish(proxy_inner(args))
}

fn proxy_inner(args: ProxyArgs) -> Result<u8, Failed> {
    let set = spec::load_embedded().map_err(Failed::usage)?;
    let world = load_world(args.world.as_deref())?;
    let keys = args.creds.resolve();
    let opts = ProxyOptions {
        listen: args.listen,
        target: args.target.clone(),
        world,
        record: args.record.clone(),
        keys: keys.clone(),
        strict: args.strict,
        revision: RevisionArg::revision(args.source),
        timeout: std::time::Duration::from_secs(args.timeout.max(1)),
        require_target: !args.allow_down,
        limits: crate::emulator::gate::Limits::PROXY,
    };
    runtime()?.block_on(async move {
        let proxy = Proxy::start(&set, opts).await.map_err(|e| match e {
            ProxyError::Setup(e) => Failed::from(e),
            e @ ProxyError::NotLoopback { .. } => Failed::usage(format!("error: {e}")),
            e => Failed::target(format!("error: {e}")),
        })?;
        say(format!(
            "apiconform proxy on http://{} -> {} — judging client and server sides; Tencent id {}, Alibaba id {}",
            proxy.addr(),
            args.target,
            keys.tencent.id,
            keys.alibaba.id
        ));
        stopped().await;
        eprintln!("apiconform proxy: stopping; judging the exchanges in flight");
        let summary = proxy.stop().await;
        say(summary.table().trim_end());
        if let Some(p) = &args.report_json {
            let text = crate::report::console::to_json_pretty(&summary).unwrap_or_default();
            std::fs::write(p, text + "\n")
                .map_err(|e| Failed::target(format!("error: cannot write {}: {e}", p.display())))?;
        }
        for p in &summary.recorded {
            say(format!("repro: {}", p.display()));
        }
        let side = match args.fail_on {
            FailOn::Client => Some(Side::Client),
            FailOn::Server => Some(Side::Server),
            FailOn::Any => None,
        };
        Ok(if summary.findings_on(side) > 0 {
            exit::NONCONFORMANCE
        } else if summary.unreachable > 0 {
            exit::TARGET
        } else {
            exit::OK
        })
    })
}

/// Ctrl-C or SIGTERM.
async fn stopped() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
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
}
