//! The self-test's table and its one-line progress rows.

use std::fmt::Write as _;

use crate::run::{FaultRow, RowFailure, SelftestReport, VariantRow};

/// `api: rule` for each failure.
fn named(failures: &[RowFailure]) -> String {
    failures
        .iter()
        .map(|f| format!("{}: {}", f.api, f.rule))
        .collect::<Vec<_>>()
        .join(", ")
}

fn specs(specs: &[String]) -> String {
    match specs.is_empty() {
        true => "every spec".to_string(),
        false => specs.join(" "),
    }
}

/// What caught a fault, or what the run named instead.
fn caught_by(f: &FaultRow) -> String {
    match (&f.rule, f.failures.is_empty()) {
        (Some(rule), _) => rule.clone(),
        (None, true) => "- (no failure)".to_string(),
        (None, false) => format!("- (named only {})", named(&f.failures)),
    }
}

/// A fault's row as the progress line prints it.
pub fn fault_line(f: &FaultRow) -> String {
    match (&f.rule, f.cases_to_first_failure) {
        (Some(rule), Some(n)) => format!(
            "fault {}: caught by {rule} after {n} cases on {} ({:.1}s)",
            f.fault,
            specs(&f.specs),
            f.seconds
        ),
        _ => format!(
            "fault {}: NOT caught in {} cases on {}: {} ({:.1}s)",
            f.fault,
            f.cases,
            specs(&f.specs),
            caught_by(f),
            f.seconds
        ),
    }
}

/// A variant's row as the progress line prints it.
pub fn variant_line(v: &VariantRow) -> String {
    match v.clean {
        true => format!(
            "variant {}: clean in {} cases on {} ({:.1}s)",
            v.variant,
            v.cases,
            specs(&v.specs),
            v.seconds
        ),
        false => format!(
            "variant {}: NOT clean: {} ({:.1}s)",
            v.variant,
            named(&v.failures),
            v.seconds
        ),
    }
}

/// The closing table: the faults, the variants, and the verdict with the median.
pub fn selftest_table(report: &SelftestReport) -> String {
    let mut out = String::new();
    if !report.faults.is_empty() {
        let name = |f: &super::super::run::FaultRow| match f.strict {
            true => format!("{} (strict)", f.fault),
            false => f.fault.clone(),
        };
        let w = report
            .faults
            .iter()
            .map(|f| name(f).len())
            .max()
            .unwrap_or(0)
            .max(26);
        let _ = writeln!(
            out,
            "{:<w$} {:<26} {:<7} {:<24} {:>11}",
            "fault", "spec", "caught", "rule", "found after"
        );
        for f in &report.faults {
            let _ = writeln!(
                out,
                "{:<w$} {:<26} {:<7} {:<24} {:>11}",
                name(f),
                specs(&f.specs),
                if f.caught { "yes" } else { "NO" },
                caught_by(f),
                // A probe's burst is not a case: found before any case was.
                f.cases_to_first_failure
                    .map_or("-".to_string(), |n| match n {
                        0 => "probe".to_string(),
                        n => n.to_string(),
                    }),
            );
        }
        out.push('\n');
    }
    if !report.variants.is_empty() {
        let _ = writeln!(
            out,
            "{:<38} {:<10} {:<6} failing rules",
            "variant", "spec", "clean"
        );
        for v in &report.variants {
            let _ = writeln!(
                out,
                "{:<38} {:<10} {:<6} {}",
                v.variant,
                specs(&v.specs),
                if v.clean { "yes" } else { "NO" },
                named(&v.failures)
            );
        }
        out.push('\n');
    }
    let caught = report.faults.iter().filter(|f| f.caught).count();
    let clean = report.variants.iter().filter(|v| v.clean).count();
    let median = match report.median_cases_to_first_failure {
        Some(m) => format!("{m}"),
        None if report.faults.is_empty() => "- (no fault ran)".to_string(),
        None => "- (half the faults or more not caught)".to_string(),
    };
    let _ = writeln!(
        out,
        "{caught}/{} faults caught, {clean}/{} variants clean; seed {}, {} cases per API, {:.1}s{}",
        report.faults.len(),
        report.variants.len(),
        report.seed,
        report.cases,
        report.seconds,
        if report.interrupted {
            " — interrupted"
        } else {
            ""
        }
    );
    let _ = writeln!(out, "median cases to the first failure: {median}");
    out
}
