//! `apiconform snapshot`: record or check the snapshot corpus.

use std::path::PathBuf;

use clap::Args;

use super::{exit, finish, load_world, parse_fault, runtime, say, tell, CredArgs, Failed};
use crate::emulator::{self, Fault};
use crate::run::{self, RunError, Setup, SetupOptions};
use crate::snapshot;
use crate::spec;
use crate::world::World;

#[derive(Args)]
pub(super) struct SnapshotArgs {
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
    #[arg(long = "fault", value_name = "NAME", value_parser = parse_fault)]
    faults: Vec<Fault>,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
    #[command(flatten)]
    creds: CredArgs,
}

pub(super) fn snapshot(args: SnapshotArgs) -> u8 {
    finish(snapshot_inner(args))
}

fn snapshot_inner(args: SnapshotArgs) -> Result<u8, Failed> {
    let set = spec::load_embedded().map_err(Failed::usage)?;
    let listed = load_world(args.world.as_deref())?;
    let world = listed.clone().unwrap_or_else(World::default_world);
    let apis: Vec<String> = run::select(&set, &args.specs)
        .into_iter()
        .map(|a| a.name.clone())
        .collect();
    if apis.is_empty() {
        return Err(RunError::NoSpecs {
            patterns: args.specs.clone(),
        }
        .into());
    }
    let keys = args.creds.resolve();
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
                faults: args.faults.iter().copied().collect(),
                variants: Default::default(),
                keys,
                rate_limits: false,
                only: None,
                specs: std::sync::Arc::new(set.clone()),
            };
            snapshot::record_in_process(&set, &config, &entries)?
        }
        Some(_) => runtime()?.block_on(async {
            // The guard and the target come from the library's setup; the corpus resets the
            // target to `world` itself, so the target is not asked what it holds.
            let setup = Setup::prepare(SetupOptions {
            specs: None,
            reach: Default::default(),
                target: args.target.clone(),
                world: listed,
                faults: args.faults.iter().copied().collect(),
                variants: Default::default(),
                keys: keys.clone(),
                timeout: std::time::Duration::from_secs(args.timeout.max(1)),
                probe_world: false,
            })
            .await?;
            let (recorded, run) =
                snapshot::record_target(&set, &world, &setup.target, &keys, &entries).await?;
            if !run.reset {
                tell(format!(
                    "note: {} has no admin reset; the exchanges ran in corpus order, each seeing the effects of those before",
                    setup.target.url()
                ));
            }
            setup.finish().await;
            Ok::<_, Failed>(recorded)
        })?,
    };
    let mode = if args.update {
        snapshot::Mode::Record
    } else {
        snapshot::Mode::from_env()
    };
    let report = snapshot::compare(&args.dir, &recorded, mode)
        .map_err(|e| Failed::target(format!("error: {e}")))?;
    say(report.render().trim_end());
    let per_api: Vec<String> = snapshot::counts(&entries)
        .into_iter()
        .map(|(a, n)| format!("{a} {n}"))
        .collect();
    say(format!(
        "{} exchanges in {:.2}s ({})",
        entries.len(),
        started.elapsed().as_secs_f64(),
        per_api.join(", ")
    ));
    Ok(if report.differences() > 0 {
        exit::NONCONFORMANCE
    } else {
        exit::OK
    })
}
