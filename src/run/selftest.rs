//! The self-test: the harness's own detection power, shown. The embedded emulator is run under
//! each fault alone, on the spec the catalogue exercises it on ([`Fault::spec`]), and must be
//! caught by one of the rules the catalogue expects ([`Fault::caught_by`]); it is run under each
//! variant alone, on every spec, and must pass clean (a variant is another defensible reading of
//! the documents, so a failure there is a check of our choice, not of the documents).
//!
//! Every row is an ordinary run ([`super::run`]) against its own freshly started emulator, from
//! the built-in world, with the same seed and case count; what a row reports is read off that
//! run's report, never estimated. Cases to the first failure are the failure's
//! [`Failure::found_after`](super::Failure::found_after): the place in the API's plan of the
//! first case failing the catching rule.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicBool;

use serde::{Deserialize, Serialize};

use super::{NoProgress, RunError, RunOptions, RunReport};
use crate::emulator::{Fault, Variant};
use crate::spec::SpecSet;
use crate::world::World;

/// What to self-test and how.
#[derive(Debug, Clone)]
pub struct SelftestOptions {
    /// The faults to run, each alone (in this order).
    pub faults: Vec<Fault>,
    /// The variants to run, each alone (in this order).
    pub variants: Vec<Variant>,
    /// Spec patterns to run every row on instead of its own (a fault's [`Fault::spec`], every
    /// spec for a variant); empty = their own.
    pub specs: Vec<String>,
    /// Cases per API, seed, jobs, credentials, ...: the options of every row's run. `patterns`
    /// and `strict` are set per row (a fault that only `--strict` must catch runs strictly).
    pub run: RunOptions,
}

/// A failure a row's run reported, in the order found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowFailure {
    /// The API.
    pub api: String,
    /// The rule it broke.
    pub rule: String,
    /// The first case failing the rule: its place in the API's plan, counted from 1.
    pub found_after: usize,
}

/// One fault's row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRow {
    /// The fault's name.
    pub fault: String,
    /// The spec patterns it ran on.
    pub specs: Vec<String>,
    /// Whether it ran under `--strict` ([`Fault::strict`]).
    pub strict: bool,
    /// The rules any of which must be named ([`Fault::caught_by`]).
    pub expected: Vec<String>,
    /// Whether a failure named one of them.
    pub caught: bool,
    /// The expected rule that failed first (`None` when not caught).
    pub rule: Option<String>,
    /// That rule's first failing case's place in the plan, counted from 1 (`None` when not
    /// caught).
    pub cases_to_first_failure: Option<usize>,
    /// Every failure the run reported, earliest first (expected rules or not).
    pub failures: Vec<RowFailure>,
    /// Cases the run judged in all.
    pub cases: usize,
    /// The run's wall time in seconds.
    pub seconds: f64,
}

/// One variant's row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantRow {
    /// The variant's name.
    pub variant: String,
    /// The spec patterns it ran on (empty: every spec).
    pub specs: Vec<String>,
    /// Whether the run reported no failure.
    pub clean: bool,
    /// The failures it reported (none when clean), earliest first.
    pub failures: Vec<RowFailure>,
    /// Cases the run judged in all.
    pub cases: usize,
    /// The run's wall time in seconds.
    pub seconds: f64,
}

/// A row as it completes, for progress.
#[derive(Debug, Clone, Copy)]
pub enum Row<'a> {
    /// A fault's row.
    Fault(&'a FaultRow),
    /// A variant's row.
    Variant(&'a VariantRow),
}

/// The self-test's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelftestReport {
    /// The seed of every row.
    pub seed: u64,
    /// Cases per API of every row.
    pub cases: usize,
    /// Per fault, in the order asked.
    pub faults: Vec<FaultRow>,
    /// Per variant, in the order asked.
    pub variants: Vec<VariantRow>,
    /// The median of the faults' cases to the first failure, a fault not caught counting as
    /// more than any number (so `None` when half of them or more were not caught, or no fault
    /// ran).
    pub median_cases_to_first_failure: Option<f64>,
    /// Every fault caught and every variant clean.
    pub passed: bool,
    /// Whether it stopped early (Ctrl-C): rows not run are missing.
    pub interrupted: bool,
    /// Wall time in seconds.
    pub seconds: f64,
}

/// Runs the rows one after the other, calling `row` as each completes.
pub async fn selftest(
    set: &SpecSet,
    opts: &SelftestOptions,
    row: &dyn Fn(Row<'_>),
    stop: &AtomicBool,
) -> Result<SelftestReport, RunError> {
    let started = std::time::Instant::now();
    let stopped = || stop.load(std::sync::atomic::Ordering::Relaxed);
    let patterns = |own: Option<&str>| match (opts.specs.is_empty(), own) {
        (false, _) => opts.specs.clone(),
        (true, Some(p)) => vec![p.to_string()],
        (true, None) => vec![],
    };
    // A pattern that matches nothing is the user's mistake: say so before anything runs.
    for p in &opts.specs {
        if super::select(set, std::slice::from_ref(p)).is_empty() {
            return Err(RunError::NoSpecs {
                patterns: vec![p.clone()],
            });
        }
    }
    let mut faults = Vec::new();
    for &fault in &opts.faults {
        if stopped() {
            break;
        }
        let specs = patterns(Some(fault.spec()));
        // The rate-limit bursts (and the back-off after each) only matter to a fault of the
        // limiter: the other rows skip them, which keeps the self-test quick.
        let rate_probes = match fault
            .caught_by()
            .contains(&crate::oracle::rate::RATE_LIMIT_RULE)
        {
            true => opts.run.rate_probes,
            false => super::RateProbes::Never,
        };
        // Only a fault of concurrent calls needs the concurrency phase: the other rows skip it.
        let concurrency = match fault.caught_by().contains(&super::LINEARIZABLE_RULE) {
            true => super::Concurrency::Always,
            false => opts.run.concurrency,
        };
        let stateful = opts.run.stateful
            || [super::SEQUENCE_RULE, super::VIEWS_RULE]
                .iter()
                .any(|r| fault.caught_by().contains(r));
        let run_opts = RunOptions {
            patterns: specs.clone(),
            strict: fault.strict(),
            rate_probes,
            concurrency,
            stateful,
            ..opts.run.clone()
        };
        let report = embedded(set, [fault].into(), BTreeSet::new(), &run_opts, stop).await?;
        if stopped() {
            break; // an interrupted row proves nothing either way
        }
        let r = fault_row(
            fault,
            specs,
            row_failures(&report),
            report.cases(),
            report.seconds,
        );
        row(Row::Fault(&r));
        faults.push(r);
    }
    let mut variants = Vec::new();
    for &variant in &opts.variants {
        if stopped() {
            break;
        }
        let specs = patterns(None);
        // A variant reads an open point of the documents, never the rate limits: no bursts.
        let run_opts = RunOptions {
            patterns: specs.clone(),
            strict: false,
            rate_probes: super::RateProbes::Never,
            ..opts.run.clone()
        };
        let report = embedded(set, BTreeSet::new(), [variant].into(), &run_opts, stop).await?;
        if stopped() {
            break;
        }
        let failures = row_failures(&report);
        let r = VariantRow {
            variant: variant.name().to_string(),
            specs,
            clean: failures.is_empty() && report.failed() == 0,
            failures,
            cases: report.cases(),
            seconds: report.seconds,
        };
        row(Row::Variant(&r));
        variants.push(r);
    }
    let interrupted = stopped();
    let complete = faults.len() == opts.faults.len() && variants.len() == opts.variants.len();
    let passed = !interrupted && complete && passes(&faults, &variants);
    Ok(SelftestReport {
        seed: opts.run.seed,
        cases: opts.run.cases,
        median_cases_to_first_failure: median(
            faults.iter().map(|f| f.cases_to_first_failure).collect(),
        ),
        faults,
        variants,
        passed,
        interrupted,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The self-test's verdict on its rows: every fault caught (by an expected rule) and every
/// variant clean.
pub fn passes(faults: &[FaultRow], variants: &[VariantRow]) -> bool {
    faults.iter().all(|f| f.caught) && variants.iter().all(|v| v.clean)
}

/// One run against a freshly started in-process emulator with these faults and variants, from
/// the built-in world.
async fn embedded(
    set: &SpecSet,
    faults: BTreeSet<Fault>,
    variants: BTreeSet<Variant>,
    opts: &RunOptions,
    stop: &AtomicBool,
) -> Result<RunReport, RunError> {
    let world = World::default_world();
    super::run_embedded_as(set, world, (faults, variants), opts, &NoProgress, stop).await
}

/// The report's failures, earliest found first (ties in report order).
fn row_failures(report: &RunReport) -> Vec<RowFailure> {
    let mut out: Vec<RowFailure> = report
        .failures()
        .map(|f| RowFailure {
            api: f.api.clone(),
            rule: f.rule.clone(),
            found_after: f.found_after,
        })
        .collect();
    out.sort_by_key(|f| f.found_after);
    out
}

/// A fault's row from its run: caught when a failure names an expected rule; the earliest such
/// failure is the one that caught it.
fn fault_row(
    fault: Fault,
    specs: Vec<String>,
    mut failures: Vec<RowFailure>,
    cases: usize,
    seconds: f64,
) -> FaultRow {
    failures.sort_by_key(|f| f.found_after);
    let expected = fault.caught_by();
    let catching = failures
        .iter()
        .find(|f| expected.contains(&f.rule.as_str()));
    FaultRow {
        fault: fault.name().to_string(),
        specs,
        strict: fault.strict(),
        expected: expected.iter().map(|r| r.to_string()).collect(),
        caught: catching.is_some(),
        rule: catching.map(|f| f.rule.clone()),
        cases_to_first_failure: catching.map(|f| f.found_after),
        failures,
        cases,
        seconds,
    }
}

/// The median of `values`, `None` (not caught) counting as more than any number: `None` when
/// the middle falls on one, or there are no values.
pub fn median(mut values: Vec<Option<usize>>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    // `None` sorts first: put it last.
    values.sort_by_key(|v| (v.is_none(), *v));
    let n = values.len();
    let mid = |i: usize| values[i].map(|v| v as f64);
    if n % 2 == 1 {
        mid(n / 2)
    } else {
        Some((mid(n / 2 - 1)? + mid(n / 2)?) / 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failures(found: &[(&str, usize)]) -> Vec<RowFailure> {
        found
            .iter()
            .map(|(rule, after)| RowFailure {
                api: "tencent-cvm/AssociateInstancesKeyPairs".into(),
                rule: rule.to_string(),
                found_after: *after,
            })
            .collect()
    }

    fn row(fault: Fault, found: &[(&str, usize)]) -> FaultRow {
        fault_row(fault, vec![], failures(found), 100, 0.0)
    }

    #[test]
    fn a_fault_is_caught_only_by_an_expected_rule_the_earliest_of_them() {
        let f = Fault::MissingRequestId; // success-shape or error-envelope
        let r = row(f, &[]);
        assert!(!r.caught && r.rule.is_none() && r.cases_to_first_failure.is_none());
        let r = row(f, &[("binds-keys", 3)]);
        assert!(
            !r.caught,
            "a rule the catalogue does not expect catches nothing"
        );
        assert_eq!(r.failures.len(), 1);
        let r = row(
            f,
            &[
                ("success-shape", 40),
                ("binds-keys", 2),
                ("error-envelope", 9),
            ],
        );
        assert!(r.caught);
        assert_eq!(r.rule.as_deref(), Some("error-envelope"));
        assert_eq!(r.cases_to_first_failure, Some(9));
        let order: Vec<usize> = r.failures.iter().map(|f| f.found_after).collect();
        assert_eq!(order, [2, 9, 40], "earliest first");
    }

    #[test]
    fn it_passes_only_when_every_fault_is_caught_and_every_variant_clean() {
        let caught = row(Fault::XmlIgnored, &[("response-format", 1)]);
        let missed = row(Fault::XmlIgnored, &[]);
        let variant = |clean: bool| VariantRow {
            variant: "reverse-precedence".into(),
            specs: vec![],
            clean,
            failures: vec![],
            cases: 10,
            seconds: 0.0,
        };
        assert!(passes(&[], &[]));
        assert!(passes(std::slice::from_ref(&caught), &[variant(true)]));
        assert!(!passes(&[caught.clone(), missed.clone()], &[variant(true)]));
        assert!(!passes(std::slice::from_ref(&missed), &[]));
        assert!(!passes(
            std::slice::from_ref(&caught),
            &[variant(true), variant(false)]
        ));
    }

    #[test]
    fn the_median_counts_a_fault_not_caught_as_more_than_any_number() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![Some(7)]), Some(7.0));
        assert_eq!(median(vec![Some(9), Some(1), Some(4)]), Some(4.0));
        assert_eq!(median(vec![Some(9), Some(1), Some(4), Some(2)]), Some(3.0));
        assert_eq!(median(vec![None, Some(1), Some(4)]), Some(4.0));
        assert_eq!(median(vec![None, None, Some(4)]), None);
        assert_eq!(median(vec![None, Some(1), Some(4), Some(2)]), Some(3.0));
        assert_eq!(median(vec![None, Some(1), None, Some(2)]), None);
    }
}
