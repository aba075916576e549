//! `apiconform replay`: re-sign a repro file's case, send it and judge it again.

use std::path::PathBuf;

use clap::Args;

use super::{exit, finish, load_world, runtime, say, CredArgs, Failed};
use crate::oracle::VerdictKind;
use crate::run::{self, Failure, RunOptions, Setup, SetupOptions};
use crate::spec;

#[derive(Args)]
pub(super) struct ReplayArgs {
    /// A repro file written by `run --repro-dir`.
    file: PathBuf,
    /// Target base URL; default: the embedded emulator.
    #[arg(long)]
    target: Option<String>,
    /// World file describing what the target holds.
    #[arg(long)]
    world: Option<PathBuf>,
    /// Judge strictly, as `run --strict` (a repro whose failure rests on our judgement is
    /// always replayed strictly).
    #[arg(long)]
    strict: bool,
    /// Judge error codes by one revision of the documents, as `run --source` (pass the one the
    /// failure was found under).
    #[arg(long = "source", value_enum, value_name = "REVISION")]
    source: Option<super::run::RevisionArg>,
    /// Replaying a rate-limit repro sends a burst: to a target that is not on loopback only
    /// with this flag, as `run --probe-rate-limits`.
    #[arg(long)]
    probe_rate_limits: bool,
    #[command(flatten)]
    creds: CredArgs,
}

pub(super) fn replay(args: ReplayArgs) -> u8 {
    finish(replay_inner(args))
}

fn replay_inner(args: ReplayArgs) -> Result<u8, Failed> {
    let failure: Failure =
        crate::report::repro::read(&args.file).map_err(|e| Failed::usage(format!("error: {e}")))?;
    let set = spec::load_embedded().map_err(Failed::usage)?;
    let world = load_world(args.world.as_deref())?;
    let keys = args.creds.resolve();
    runtime()?.block_on(async move {
        let setup = Setup::prepare(SetupOptions {
            specs: None,
            reach: Default::default(),
            target: args.target.clone(),
            world,
            faults: Default::default(),
            variants: Default::default(),
            keys: keys.clone(),
            timeout: std::time::Duration::from_secs(10),
            probe_world: true,
        })
        .await?;
        let opts = RunOptions {
            keys,
            admin: setup.admin,
            strict: args.strict,
            revision: super::run::RevisionArg::revision(args.source),
            rate_probes: match args.probe_rate_limits {
                true => run::RateProbes::Always,
                false => run::RateProbes::Loopback,
            },
            ..Default::default()
        };
        let result = run::replay(&set, setup.world.clone(), &setup.target, &opts, &failure).await;
        setup.finish().await;
        let (verdict, resp) = result?;
        let body = String::from_utf8_lossy(&resp.body);
        Ok(match verdict.kind {
            VerdictKind::Fail => {
                say(format!(
                    "still fails: rule `{}`\n  expected: {}\n  actual:   {}\n  response: {} {}",
                    verdict.rule.unwrap_or_default(),
                    verdict.expected,
                    verdict.actual,
                    resp.status,
                    body
                ));
                exit::NONCONFORMANCE
            }
            kind => {
                say(format!(
                    "no longer fails ({kind:?}): response {} {}",
                    resp.status, body
                ));
                exit::OK
            }
        })
    })
}
