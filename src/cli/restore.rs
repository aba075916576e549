//! `apiconform restore`: put back what a run changed, from its journal.

use std::path::PathBuf;

use clap::Args;

use super::{exit, finish, runtime, say, CredArgs, Failed, TargetArgs};
use crate::run::{self, RunOptions, Setup, SetupOptions};
use crate::spec;
use crate::world::World;

#[derive(Args)]
pub(super) struct RestoreArgs {
    /// A journal written by `apiconform run --journal FILE` (or ./apiconform.journal).
    journal: PathBuf,
    /// Where to send (--target URL, or --cloud with --endpoint overrides); default: where the
    /// journal says the run sent.
    #[command(flatten)]
    to: TargetArgs,
    /// Let the restore stop a RUNNING instance (ForceStop) to put its keys back.
    #[arg(long)]
    allow_force_stop: bool,
    /// Read spec files from this folder instead of the built-in ones.
    #[arg(long = "specs-dir", value_name = "DIR")]
    specs_dir: Option<PathBuf>,
    /// Write what was done as JSON here.
    #[arg(long)]
    report_json: Option<PathBuf>,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
    #[command(flatten)]
    creds: CredArgs,
}

pub(super) fn restore(args: RestoreArgs) -> u8 {
    finish(restore_inner(args))
}

fn restore_inner(args: RestoreArgs) -> Result<u8, Failed> {
    let file = run::journal_read(&args.journal).map_err(Failed::usage)?;
    let set = match &args.specs_dir {
        Some(d) => spec::load_dir(d),
        None => spec::load_embedded(),
    }
    .map_err(Failed::usage)?;
    let keys = args.creds.resolve();
    let timeout = std::time::Duration::from_secs(args.timeout.max(1));
    let reach = args.to.reach()?;
    runtime()?.block_on(async move {
        let setup = Setup::prepare(SetupOptions {
            specs: Some(set.clone()),
            reach,
            target: Some(args.to.destination().unwrap_or_else(|| file.target.clone())),
            // The journal says what may be touched: nothing else is.
            world: Some(World::default()),
            faults: Default::default(),
            variants: Default::default(),
            keys: keys.clone(),
            timeout,
            probe_world: true,
        })
        .await?;
        if !setup.target.is_loopback() {
            // The families that read and put back the journal's products.
            let products: std::collections::BTreeSet<_> =
                file.before.iter().map(|b| b.product).collect();
            let families = set
                .apis
                .iter()
                .filter(|a| products.contains(&a.spec.instance_product()))
                .flat_map(|a| run::families_sent(&set, std::slice::from_ref(&a.name)));
            args.creds.require(families, setup.target.url())?;
        }
        let opts = RunOptions {
            keys,
            timeout,
            admin: setup.admin,
            allow_force_stop: args.allow_force_stop,
            ..Default::default()
        };
        let result = run::restore_journal(&set, &file, &setup.target, &opts).await;
        setup.finish().await;
        let report = result.map_err(Failed::from)?;
        say(report.summary());
        if let Some(p) = &args.report_json {
            let text = crate::report::console::to_json_pretty(&report).unwrap_or_default();
            std::fs::write(p, text + "\n")
                .map_err(|e| Failed::target(format!("error: cannot write {}: {e}", p.display())))?;
        }
        Ok(if report.complete() {
            exit::OK
        } else {
            exit::NOT_RESTORED
        })
    })
}
