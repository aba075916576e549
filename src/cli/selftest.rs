//! `apiconform selftest`: the harness's detection power, shown — every fault caught, every
//! variant clean.

use std::cell::Cell;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::Args;

use super::{exit, finish, parse_fault, parse_variant, runtime, say, Failed};
use crate::emulator::{Fault, Variant};
use crate::run::{self, Row, RunOptions, SelftestOptions};
use crate::spec;

/// Cases per API of every row unless `--cases` says otherwise: enough that the rarest fault of
/// the catalogue (an upper-cased key id: one rule's arm in ~20, one mutation in 6) is met
/// several times, and the variants see every rule's cases.
pub(super) const DEFAULT_CASES: usize = 1000;

#[derive(Args)]
pub(super) struct SelftestArgs {
    /// Cases per API in every row.
    #[arg(long, default_value_t = DEFAULT_CASES)]
    cases: usize,
    /// Seed of every row: the same seed runs the same cases.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Run this fault (repeatable); with --fault or --variant only the rows named run.
    #[arg(long = "fault", value_name = "NAME", value_parser = parse_fault)]
    faults: Vec<Fault>,
    /// Run this variant (repeatable); with --fault or --variant only the rows named run.
    #[arg(long = "variant", value_name = "NAME", value_parser = parse_variant)]
    variants: Vec<Variant>,
    /// Run every row on the APIs matching PATTERN (repeatable) instead of its own: the
    /// catalogue's spec for a fault, every spec for a variant.
    #[arg(long = "spec", value_name = "PATTERN")]
    specs: Vec<String>,
    /// Write the result as JSON here: every row and the median.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Requests in flight at once in each row's run.
    #[arg(long, default_value_t = 16)]
    jobs: usize,
}

pub(super) fn selftest(args: SelftestArgs) -> u8 {
    finish(selftest_inner(args))
}

fn selftest_inner(args: SelftestArgs) -> Result<u8, Failed> {
    let set = spec::load_embedded().map_err(Failed::usage)?;
    let everything = args.faults.is_empty() && args.variants.is_empty();
    let (faults, variants) = match everything {
        true => (Fault::ALL.to_vec(), Variant::ALL.to_vec()),
        false => (dedup(args.faults), dedup(args.variants)),
    };
    let opts = SelftestOptions {
        faults,
        variants,
        specs: args.specs,
        run: RunOptions {
            cases: args.cases.max(1),
            seed: args.seed,
            jobs: args.jobs.max(1),
            ..Default::default()
        },
    };
    let total = opts.faults.len() + opts.variants.len();
    let done = Cell::new(0usize);
    let progress = |row: Row<'_>| {
        done.set(done.get() + 1);
        let line = match row {
            Row::Fault(f) => crate::report::fault_line(f),
            Row::Variant(v) => crate::report::variant_line(v),
        };
        eprintln!("[{:>2}/{total}] {line}", done.get());
    };
    let rt = runtime()?;
    let report = rt.block_on(async {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("\ninterrupted: finishing this row and printing what ran");
                flag.store(true, Ordering::Relaxed);
            }
        });
        run::selftest(&set, &opts, &progress, &stop).await
    })?;
    say(crate::report::selftest_table(&report).trim_end());
    if let Some(p) = &args.json {
        let text = serde_json::to_string_pretty(&report).map_err(Failed::target)?;
        std::fs::write(p, text)
            .map_err(|e| Failed::target(format!("error: cannot write {}: {e}", p.display())))?;
    }
    Ok(if report.interrupted {
        exit::TARGET
    } else if report.passed {
        exit::OK
    } else {
        exit::NONCONFORMANCE
    })
}

/// The names in the order given, each once.
fn dedup<T: PartialEq + Copy>(items: Vec<T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(items.len());
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}
