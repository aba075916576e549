//! `apiconform replay`: re-sign a repro file's case, send it and judge it again.

use std::path::PathBuf;

use clap::Args;

use super::{exit, finish, load_world, runtime, say, CredArgs, Failed};
use crate::input::text::Shown;
use crate::oracle::VerdictKind;
use crate::run::{self, Failure, Replayed, RunOptions, Setup, SetupOptions};
use crate::spec;
use crate::world::World;

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
    /// Replay this many times, setting the preconditions up before each, and say FIXED (no
    /// run failed), STILL FAILS (every run did) or FLAKY (k of N did).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=100))]
    runs: u16,
    #[command(flatten)]
    creds: CredArgs,
}

pub(super) fn replay(args: ReplayArgs) -> u8 {
    finish(replay_inner(args))
}

fn replay_inner(args: ReplayArgs) -> Result<u8, Failed> {
    let failure: Failure =
        crate::report::repro::read(&args.file).map_err(|e| Failed::usage(format!("error: {e}")))?;
    if let Some(side) = crate::report::repro::client_side(&args.file) {
        // The proxy's record of what a client sent: replaying would send apiconform's own,
        // correct encoding and signature of the same call, and a client bug would "pass".
        say(format!(
            "not reproduced: {} is a {side}-side finding of `apiconform proxy` (rule `{}`: {}): \
             the client's request broke it, and a replay signs the request itself (the client's \
             signature was dropped when it was recorded), so it cannot show whether the client \
             is fixed\n  = help: run the client through `apiconform proxy` again; `apiconform \
             repro curl {}` sends the recorded call as apiconform encodes it",
            args.file.display(),
            failure.rule,
            failure.detail,
            args.file.display()
        ));
        return Ok(exit::NOT_REPRODUCED);
    }
    let set = spec::load_embedded().map_err(Failed::usage)?;
    let mut world = load_world(args.world.as_deref())?;
    if args.target.is_none() && world.is_none() {
        // The embedded emulator starts from the built-in world with the instances as the
        // failing call met them (their state included, which no specced call can set).
        world = Some(with_preconditions(World::default_world(), &failure));
    }
    let keys = args.creds.resolve();
    let runs = usize::from(args.runs);
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
        let result = run::replay(
            &set,
            setup.world.clone(),
            &setup.target,
            &opts,
            &failure,
            runs,
        )
        .await;
        setup.finish().await;
        let replays = result?;
        let mut failed = 0;
        for (i, r) in replays.iter().enumerate() {
            if runs > 1 {
                say(format!("run {} of {runs}:", i + 1));
            }
            say(render(&failure, r));
            failed += usize::from(r.verdict.kind == VerdictKind::Fail);
        }
        Ok(match (failed, replays.len()) {
            (0, n) => {
                say(format!("FIXED: no run of {n} failed"));
                exit::OK
            }
            (k, n) if k == n => {
                say(format!("STILL FAILS: {k} of {n} runs failed"));
                exit::NONCONFORMANCE
            }
            (k, n) => {
                say(format!(
                    "FLAKY: {k} of {n} runs failed; the others passed (a target that answers differently from one call to the next, or a state this replay could not set up)"
                ));
                exit::NONCONFORMANCE
            }
        })
    })
}

/// One replay for people: what was set up, the verdict with its explanation, the answer.
fn render(failure: &Failure, r: &Replayed) -> String {
    let mut out = String::new();
    for line in &r.set_up {
        out += &format!("set up: {}\n", Shown(line));
    }
    let body = String::from_utf8_lossy(&r.response.body);
    let answer = format!(
        "  response: HTTP {}{} {}",
        r.response.status,
        r.code
            .as_deref()
            .map_or(String::new(), |c| format!(" (code {})", Shown(c))),
        Shown(&body)
    );
    out += &match r.verdict.kind {
        VerdictKind::Fail => {
            let rule = r.verdict.rule.clone().unwrap_or_default();
            let same = match rule == failure.rule {
                true => String::new(),
                false => format!(" (the repro's was `{}`)", Shown(&failure.rule)),
            };
            format!(
                "still fails: rule `{}`{same}\n  expected: {}\n  actual:   {}\n  why:      {}\n{answer}",
                Shown(&rule),
                Shown(&r.verdict.expected),
                Shown(&r.verdict.actual),
                Shown(&r.verdict.detail),
            )
        }
        kind => format!(
            "no longer fails ({kind:?}): {}\n{answer}",
            Shown(&r.verdict.detail)
        ),
    };
    out
}

/// The world with the instances and key pairs a failure's preconditions name as it met them.
pub(super) fn with_preconditions(mut world: World, failure: &Failure) -> World {
    let Some(pre) = &failure.preconditions else {
        return world;
    };
    for i in &pre.instances {
        world
            .instances
            .retain(|w| !(w.id == i.id && w.product == i.product));
        world.instances.push(i.clone());
    }
    for k in &pre.key_pairs {
        if !world
            .key_pairs
            .iter()
            .any(|w| w.id == k.id && w.product == k.product)
        {
            world.key_pairs.push(k.clone());
        }
    }
    world
}
