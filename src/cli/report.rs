//! `apiconform report`: work on reports already written — `merge` combines the JSON reports of
//! a run's shards, or of runs of different spec selections, into one report (JSON, JUnit, HTML).

use std::path::{Path, PathBuf};

use clap::Subcommand;

use super::{exit, finish, say, tell, Failed};
use crate::report::merge::{self, MergeError};
use crate::run::RunReport;

#[derive(Subcommand)]
pub(super) enum ReportCommand {
    /// Merge JSON run reports into one: the shards of a run (`run --shard I/N`), runs of
    /// different spec selections (one per product or region), or both.
    #[command(
        after_help = "Reports of the same --seed, --cases, --spec and N in --shard I/N are the \
shards of one run, each given once; every other report is a run of its own, and runs must share \
no API (its cases would count twice). Every report must come from the same apiconform, and an \
API's spec must be the same in all of its shards. The shards of a run merge into the totals a \
single run of that seed and case count gives: per API the counts summed (not_sent included), the \
rules exercised and codes provoked unioned, one failure per broken rule (the one earliest in the \
plan), the rate-limit probes from shard 1 (the only one that sends them). The runs' APIs are put \
side by side. A missing shard is said (\"shards 1,3 of 3: shard 2 missing\"); the reports are \
still written.\n\nExamples:\n  apiconform report merge report-1.json report-2.json \
report-3.json\n  apiconform report merge cvm.json ecm.json ecs.json --require-exercised\n  \
apiconform report merge report-*.json --junit junit.xml --report-html report.html --report-json \
report.json\n\nExit codes: 0 every check passed in every report; 1 nonconformance (with \
--require-exercised, also a rule no report exercised); 2 a file is unreadable, not a run report, \
claims a shard no run writes (0, or above its count or 1000), or does not fit with the others; 3 a shard is missing or was interrupted."
    )]
    Merge(MergeArgs),
}

#[derive(clap::Args)]
pub(super) struct MergeArgs {
    /// The JSON reports (`run --report-json FILE`, sharded or not), in any order.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Write the merged JSON report here.
    #[arg(long, value_name = "FILE")]
    report_json: Option<PathBuf>,
    /// Write the merged JUnit XML report here.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write the merged report as one self-contained HTML file here.
    #[arg(long, value_name = "FILE")]
    report_html: Option<PathBuf>,
    /// Count a rule no case of any merged report exercised as a failure (exit 1), as
    /// `run --require-exercised` does for one run.
    #[arg(long)]
    require_exercised: bool,
}

pub(super) fn report(cmd: ReportCommand) -> u8 {
    match cmd {
        ReportCommand::Merge(args) => finish(merge_inner(args)),
    }
}

fn merge_inner(args: MergeArgs) -> Result<u8, Failed> {
    let usage = |e: MergeError| Failed::usage(format!("error: {e}"));
    let mut inputs = Vec::new();
    for file in &args.files {
        inputs.push((file.clone(), merge::load(file).map_err(usage)?));
    }
    let mut report = merge::merge(inputs).map_err(usage)?;
    report.require_exercised |= args.require_exercised;
    say(crate::report::table(&report).trim_end());
    let merged = report.merged.clone().unwrap_or_default();
    say(format!("merged: {}", merged.summary()));
    if merged.incomplete() {
        tell(format!(
            "warning: {}: the totals lack those shards' cases\n  = help: the missing shard wrote no report (it crashed or was cancelled before the end); run it again with the same --seed and --cases and merge again",
            merged.summary()
        ));
    }
    write_reports(
        &report,
        args.report_json.as_deref(),
        args.junit.as_deref(),
        args.report_html.as_deref(),
    )?;
    Ok(if report.interrupted || merged.incomplete() {
        exit::TARGET
    } else if report.failed() > 0 || (report.require_exercised && !report.all_exercised()) {
        exit::NONCONFORMANCE
    } else {
        exit::OK
    })
}

/// Writes the reports asked for (`run` and `report merge` alike); a file that cannot be written
/// is the run not completing (exit 3).
pub(super) fn write_reports(
    report: &RunReport,
    json: Option<&Path>,
    junit: Option<&Path>,
    html: Option<&Path>,
) -> Result<(), Failed> {
    let cannot = |p: &Path, e: std::io::Error| {
        Failed::target(format!(
            "error: cannot write {}: {e}\n  = help: check that its folder exists and is writable",
            p.display()
        ))
    };
    if let Some(p) = json {
        crate::report::write_json(report, p).map_err(|e| cannot(p, e))?;
    }
    if let Some(p) = junit {
        std::fs::write(p, crate::report::junit(report)).map_err(|e| cannot(p, e))?;
    }
    if let Some(p) = html {
        std::fs::write(p, crate::report::html::html(report)).map_err(|e| cannot(p, e))?;
    }
    Ok(())
}
