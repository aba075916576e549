//! Merging JSON run reports into one: the shards of a run (`run --shard I/N`), runs of
//! different spec selections (one per product or region: `run --spec tencent-ecm` and
//! `run --spec alibaba-ecs`), or both.
//!
//! The inputs fall into runs: reports of the same seed, case count, `--spec` patterns and shard
//! count are shards of one run; every other report is a run of its own. Runs must not share an
//! API (its counts would be added twice), and every report must come from the same apiconform
//! version, each API's spec the same in all of its shards. What does not fit is refused with a
//! [`MergeError`] naming the file and saying the fix.
//!
//! The shards of a run are a partition of one plan (`src/run/plan.rs`): every case is sent by
//! exactly one shard, and the cases whose verdicts depend on earlier cases all go to the same
//! one. So the counts of the whole run are the shards' sums, what was exercised or provoked is
//! the union, and each broken rule keeps one failure: the one earliest in the plan (its
//! `found_after`, the unsharded plan's place, is the unsharded run's), the lowest shard's on a
//! tie, so the same files give the same report. Only shard 1 sends the rate-limit bursts: each
//! probe is taken from the shard that sent it. Runs of different selections hold different
//! APIs: their APIs are put side by side, in the order one run of them all lists them.
//!
//! [`merge`] is pure; [`load`] reads one file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::run::{ApiStats, Failure, Merged, MergedRun, NotExercised, ProbeStatus, RunReport};
use crate::run::{Why, WhyKind};

/// What `report merge` takes, for the help lines of its errors.
const TAKES: &str = "the JSON reports `apiconform run --report-json FILE` wrote: the shards of one run (`--shard I/N`), or runs of different --spec selections (one per product or region)";

/// Why reports cannot be merged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MergeError {
    /// A file could not be read.
    #[error("{}: cannot read it: {source}\n  = help: pass {TAKES}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// A file is not the JSON report of a run.
    #[error("{}: not a run report ({why})\n  = help: pass the files `apiconform run --report-json FILE` wrote (not a JUnit, self-test or --plan file)", file.display())]
    NotAReport {
        /// The file.
        file: PathBuf,
        /// What is wrong with it (serde's message, with line and column).
        why: String,
    },
    /// A report from a version that did not record what a merge must check.
    #[error("{}: written by an older apiconform that did not record its case count and shard\n  = help: run the shards again with this version", file.display())]
    TooOld {
        /// The file.
        file: PathBuf,
    },
    /// Two reports hold the same API and are not shards of one run: they differ in what
    /// decides the plan.
    #[error("{}: {what} is {theirs}, but {} has {ours}: not shards of one run, and they hold the same APIs\n  = help: merge only the shards of one run (same --seed, --cases, --spec and N in --shard I/N), or runs that share no API (e.g. one per product: --spec tencent-cvm, --spec alibaba-ecs)", file.display(), first.display())]
    Mismatch {
        /// The file that differs.
        file: PathBuf,
        /// The earlier file holding the same API.
        first: PathBuf,
        /// What differs (`the seed`, `--cases`, ...).
        what: &'static str,
        /// The first file's value.
        ours: String,
        /// This file's value.
        theirs: String,
    },
    /// Two whole runs (not shards) hold the same API.
    #[error("{}: {api} is also in {}, and the two are not shards of one run: its cases would count twice\n  = help: merge one report per API: run each product or region once (e.g. --spec tencent-ecm, --spec alibaba-ecs), or split one run with --shard I/N and merge its shards", file.display(), other.display())]
    Overlap {
        /// The later file.
        file: PathBuf,
        /// The earlier file holding the same API.
        other: PathBuf,
        /// An API both hold.
        api: String,
    },
    /// Reports written by different apiconform versions.
    #[error("{}: written by apiconform {theirs}, but {} by {ours}\n  = help: run every part with the same apiconform, then merge", file.display(), first.display())]
    Version {
        /// The file that differs.
        file: PathBuf,
        /// The first file.
        first: PathBuf,
        /// The first file's version (`unknown` for a file that did not record it).
        ours: String,
        /// This file's version.
        theirs: String,
    },
    /// Shards of one run that ran an API from different spec files.
    #[error("{}: the spec of {api} is not the one {} ran (digest {theirs}, there {ours})\n  = help: run every shard from the same spec files (the same --specs-dir, or the built-in ones of one apiconform)", file.display(), first.display())]
    SpecDiffers {
        /// The file that differs.
        file: PathBuf,
        /// The first shard holding the API.
        first: PathBuf,
        /// The API.
        api: String,
        /// The first shard's digest.
        ours: String,
        /// This file's digest.
        theirs: String,
    },
    /// A file claims a shard that no run writes: index 0, an index above the count, a count of
    /// 0 or above [`crate::run::MAX_SHARDS`].
    #[error("{}: not a shard: it claims shard {index}/{count}\n  = help: a shard is I/N with 1 <= I <= N <= {}, as `apiconform run --shard I/N` writes it", file.display(), crate::run::MAX_SHARDS)]
    NotAShard {
        /// The file.
        file: PathBuf,
        /// The index it claims.
        index: usize,
        /// The count it claims.
        count: usize,
    },
    /// The same shard was given twice.
    #[error("{}: shard {index}/{count} is given twice (also {})\n  = help: pass each shard's report once", file.display(), other.display())]
    Duplicate {
        /// The second file of that shard.
        file: PathBuf,
        /// The first file of that shard.
        other: PathBuf,
        /// The shard, 1-based.
        index: usize,
        /// How many shards.
        count: usize,
    },
    /// No file was given.
    #[error("no report to merge\n  = help: pass {TAKES}, e.g. `apiconform report merge report-1.json report-2.json report-3.json`")]
    Empty,
}

/// Reads one run report; a file that is not one is refused with serde's line and column.
pub fn load(file: &Path) -> Result<RunReport, MergeError> {
    let text =
        crate::input::read(file, crate::input::Kind::Report).map_err(|e| bounded(file, e))?;
    parse(file, &text)
}

/// A report refused before parsing: unreadable, larger or nested deeper than a run report.
fn bounded(file: &Path, e: crate::input::InputError) -> MergeError {
    match e {
        crate::input::InputError::Io { source, .. } => MergeError::Read {
            file: file.to_path_buf(),
            source,
        },
        e => MergeError::NotAReport {
            file: file.to_path_buf(),
            why: match e.location() {
                (0, _) => e.reason(),
                (line, column) => format!("at line {line} column {column}: {}", e.reason()),
            },
        },
    }
}

/// Parses one run report's text (`file` names it in errors).
pub fn parse(file: &Path, text: &str) -> Result<RunReport, MergeError> {
    crate::input::check(file, text, crate::input::Kind::Report).map_err(|e| bounded(file, e))?;
    let report: RunReport = serde_json::from_str(text).map_err(|e| MergeError::NotAReport {
        file: file.to_path_buf(),
        why: e.to_string(),
    })?;
    if report.cases_per_api == 0 {
        return Err(MergeError::TooOld {
            file: file.to_path_buf(),
        });
    }
    // Every size a file claims is bounded before anything is counted up to it: a merge lists
    // the shards 1..=count that are missing.
    if let Some(s) = report.shard {
        if s.index == 0 || s.count == 0 || s.index > s.count || s.count > crate::run::MAX_SHARDS {
            return Err(MergeError::NotAShard {
                file: file.to_path_buf(),
                index: s.index,
                count: s.count,
            });
        }
    }
    Ok(report)
}

/// The shard a report is: a whole run is shard 1 of 1.
fn shard_of(r: &RunReport) -> (usize, usize) {
    r.shard.map_or((1, 1), |s| (s.index, s.count))
}

/// What the shards of one run share: the seed, the case count, the patterns, the shard count.
fn run_key(r: &RunReport) -> (u64, usize, &[String], usize) {
    (r.seed, r.cases_per_api, &r.patterns, shard_of(r).1)
}

/// The reports of one run: its shards by index (a whole run is shard 1 of 1).
struct Run<'a> {
    shards: BTreeMap<usize, (&'a PathBuf, &'a RunReport)>,
    count: usize,
}

impl Run<'_> {
    fn first(&self) -> (&PathBuf, &RunReport) {
        let (_, (f, r)) = self.shards.first_key_value().expect("a run has a report");
        (f, r)
    }

    fn missing(&self) -> Vec<usize> {
        (1..=self.count)
            .filter(|i| !self.shards.contains_key(i))
            .collect()
    }

    /// The run as a merged report lists it.
    fn merged(&self) -> MergedRun {
        let (_, r) = self.first();
        MergedRun {
            patterns: r.patterns.clone(),
            seed: r.seed,
            cases_per_api: r.cases_per_api,
            count: self.count,
            shards: self.shards.keys().copied().collect(),
            missing: self.missing(),
            apis: r.apis.iter().map(|a| a.api.clone()).collect(),
        }
    }
}

/// Merges run reports (in any order) into one: the shards of each run summed, the runs' APIs
/// side by side. Refuses reports that do not fit (see the module's documentation); a missing
/// shard is recorded in [`RunReport::merged`] (the totals are then short of the whole run's).
pub fn merge(inputs: Vec<(PathBuf, RunReport)>) -> Result<RunReport, MergeError> {
    let mut inputs = inputs;
    inputs.sort_by_key(|(_, r)| shard_of(r).0);
    let Some((first_file, first)) = inputs.first() else {
        return Err(MergeError::Empty);
    };
    for (file, r) in &inputs {
        if r.version != first.version {
            let v = |s: &str| match s {
                "" => "unknown (an older one)".to_string(),
                s => s.to_string(),
            };
            return Err(MergeError::Version {
                file: file.clone(),
                first: first_file.clone(),
                ours: v(&first.version),
                theirs: v(&r.version),
            });
        }
    }
    let runs = runs(&inputs)?;
    check_apis(&runs)?;
    let reports: Vec<&RunReport> = inputs.iter().map(|(_, r)| r).collect();
    let several = runs.len() > 1;
    // Which part a report is, in the words of the merged report's notes.
    let label = |r: &RunReport| {
        let (i, n) = shard_of(r);
        let spec = match (several, r.patterns.is_empty()) {
            (false, _) => String::new(),
            (true, true) => "every spec".to_string(),
            (true, false) => format!("--spec {}", r.patterns.join(",")),
        };
        match (spec.is_empty(), n) {
            (_, 2..) if spec.is_empty() => format!("shard {i}/{n}"),
            (_, 2..) => format!("{spec} shard {i}/{n}"),
            (true, _) => "the run".to_string(),
            (false, _) => spec,
        }
    };
    let mut apis: Vec<ApiStats> = Vec::new();
    for run in &runs {
        let reports: Vec<&RunReport> = run.shards.values().map(|(_, r)| *r).collect();
        let missing = run.missing();
        apis.extend(merge_apis(&reports, (&missing, run.count)));
    }
    // The order one run of every API lists them in: the specs' (sorted by name).
    apis.sort_by(|a, b| a.api.cmp(&b.api));
    let merged = match several {
        false => {
            let run = &runs[0];
            Merged {
                count: run.count,
                shards: run.shards.keys().copied().collect(),
                missing: run.missing(),
                runs: Vec::new(),
            }
        }
        true => Merged {
            count: 0,
            shards: Vec::new(),
            missing: Vec::new(),
            runs: runs.iter().map(Run::merged).collect(),
        },
    };
    let mut targets: Vec<&str> = Vec::new();
    let mut patterns: Vec<String> = Vec::new();
    // Each run's target is its first shard's (the shards of a run against the embedded emulator
    // each had their own port).
    for run in &runs {
        let r = run.first().1;
        if !targets.contains(&r.target.as_str()) {
            targets.push(&r.target);
        }
        for p in &r.patterns {
            if !patterns.contains(p) {
                patterns.push(p.clone());
            }
        }
    }
    Ok(RunReport {
        target: targets.join(", "),
        seed: first.seed,
        apis,
        // The parts run at once (a CI matrix): the longest one's time is the whole's.
        seconds: reports.iter().map(|r| r.seconds).fold(0.0, f64::max),
        probe_seconds: reports.iter().map(|r| r.probe_seconds).fold(0.0, f64::max),
        interrupted: reports.iter().any(|r| r.interrupted),
        // Each part names its own budget; the merge says which parts one stopped.
        stopped_by: {
            let spent: Vec<String> = reports
                .iter()
                .filter_map(|r| r.stopped_by.as_ref().map(|b| format!("{}: {b}", label(r))))
                .collect();
            (!spent.is_empty()).then(|| spent.join("; "))
        },
        notes: {
            let mut notes: Vec<String> = Vec::new();
            for n in reports.iter().flat_map(|r| &r.notes) {
                if !notes.contains(n) {
                    notes.push(n.clone());
                }
            }
            notes
        },
        // Every part restored what it changed: the instances of all of them.
        restore: {
            let parts: Vec<&crate::run::RestoreReport> =
                reports.iter().filter_map(|r| r.restore.as_ref()).collect();
            (!parts.is_empty()).then(|| crate::run::RestoreReport {
                journal: None,
                instances: parts.iter().flat_map(|p| p.instances.clone()).collect(),
            })
        },
        cases_per_api: first.cases_per_api,
        patterns,
        shard: None,
        merged: Some(merged),
        version: first.version.clone(),
        require_exercised: reports.iter().any(|r| r.require_exercised),
        requests: reports.iter().map(|r| r.requests).sum(),
    })
}

/// The inputs grouped into runs, in the order of their first reports; a shard given twice is
/// refused.
fn runs(inputs: &[(PathBuf, RunReport)]) -> Result<Vec<Run<'_>>, MergeError> {
    let mut runs: Vec<Run> = Vec::new();
    for (file, r) in inputs {
        let (index, count) = shard_of(r);
        let run = match runs
            .iter_mut()
            .position(|run| run_key(run.first().1) == run_key(r))
        {
            Some(at) => &mut runs[at],
            None => {
                runs.push(Run {
                    shards: BTreeMap::new(),
                    count,
                });
                runs.last_mut().expect("pushed")
            }
        };
        if let Some((other, o)) = run.shards.insert(index, (file, r)) {
            let common = r
                .apis
                .iter()
                .find(|a| o.apis.iter().any(|b| b.api == a.api));
            if let (1, Some(a)) = (count, common) {
                return Err(MergeError::Overlap {
                    file: file.clone(),
                    other: other.clone(),
                    api: a.api.clone(),
                });
            }
            return Err(MergeError::Duplicate {
                file: file.clone(),
                other: other.clone(),
                index,
                count,
            });
        }
    }
    // The order does not depend on the order of the files: by each run's first API.
    runs.sort_by_key(|run| {
        run.first()
            .1
            .apis
            .iter()
            .map(|a| a.api.clone())
            .min()
            .unwrap_or_default()
    });
    Ok(runs)
}

/// No API in two runs; each API's spec the same in every shard of its run.
fn check_apis(runs: &[Run]) -> Result<(), MergeError> {
    // Per API: the run it was first seen in, and the file, report and spec digest there.
    let mut seen: BTreeMap<&str, (usize, &PathBuf, &RunReport, &str)> = BTreeMap::new();
    for (n, run) in runs.iter().enumerate() {
        for (file, r) in run.shards.values() {
            for a in &r.apis {
                let Some(&(at, first, o, digest)) = seen.get(a.api.as_str()) else {
                    seen.insert(&a.api, (n, file, r, &a.spec_digest));
                    continue;
                };
                if at != n {
                    return Err(overlap(file, r, first, o, &a.api));
                }
                if !digest.is_empty() && !a.spec_digest.is_empty() && digest != a.spec_digest {
                    return Err(MergeError::SpecDiffers {
                        file: (*file).clone(),
                        first: first.clone(),
                        api: a.api.clone(),
                        ours: digest.to_string(),
                        theirs: a.spec_digest.clone(),
                    });
                }
            }
        }
    }
    Ok(())
}

/// Why `file` and `other`, both holding `api`, cannot be merged: what differs between them
/// when either is a shard (they were likely meant to be shards of one run), else an overlap.
fn overlap(file: &Path, r: &RunReport, other: &Path, o: &RunReport, api: &str) -> MergeError {
    let mismatch = |what, ours: String, theirs: String| MergeError::Mismatch {
        file: file.to_path_buf(),
        first: other.to_path_buf(),
        what,
        ours,
        theirs,
    };
    if r.shard.is_none() && o.shard.is_none() {
        return MergeError::Overlap {
            file: file.to_path_buf(),
            other: other.to_path_buf(),
            api: api.to_string(),
        };
    }
    if r.seed != o.seed {
        return mismatch("the seed", o.seed.to_string(), r.seed.to_string());
    }
    if r.cases_per_api != o.cases_per_api {
        return mismatch(
            "--cases",
            o.cases_per_api.to_string(),
            r.cases_per_api.to_string(),
        );
    }
    if r.patterns != o.patterns {
        return mismatch(
            "--spec",
            format!("{:?}", o.patterns),
            format!("{:?}", r.patterns),
        );
    }
    let ((i, n), (oi, on)) = (shard_of(r), shard_of(o));
    mismatch("the shard count", format!("{oi}/{on}"), format!("{i}/{n}"))
}

/// The APIs of one run's shards, each merged from its shards' stats. `missing` is the run's
/// missing shards and its shard count.
fn merge_apis(reports: &[&RunReport], missing: (&[usize], usize)) -> Vec<ApiStats> {
    let mut order: Vec<&str> = Vec::new();
    for r in reports {
        for a in &r.apis {
            if !order.contains(&a.api.as_str()) {
                order.push(&a.api);
            }
        }
    }
    order
        .into_iter()
        .map(|name| {
            let parts: Vec<&ApiStats> = reports
                .iter()
                .filter_map(|r| r.apis.iter().find(|a| a.api == name))
                .collect();
            merge_api(name, &parts, missing)
        })
        .collect()
}

/// One API's stats from its shards' (in shard order).
fn merge_api(name: &str, parts: &[&ApiStats], (missing, count): (&[usize], usize)) -> ApiStats {
    let mut out = ApiStats {
        api: name.to_string(),
        ..Default::default()
    };
    let union = |into: &mut BTreeSet<String>, from: &BTreeSet<String>| {
        into.extend(from.iter().cloned());
    };
    // Per rule the failure earliest in the plan; the rate-limit failures after the cases' (as
    // a run lists them).
    let mut failures: BTreeMap<&str, &Failure> = BTreeMap::new();
    let mut probe_failures: Vec<&Failure> = Vec::new();
    let mut reasons: BTreeMap<&str, BTreeSet<&Why>> = BTreeMap::new();
    for p in parts {
        // Every field, so that a new one cannot be dropped by the merge unnoticed.
        let ApiStats {
            api: _,
            cases,
            pass,
            fail,
            unspecified,
            unspecified_share: _,
            unspecified_by,
            rules_exercised,
            rule_tallies,
            rules_total,
            codes_provoked,
            codes_documented,
            unobservable_effects,
            retries,
            not_judged,
            not_sent,
            rules_not_exercised,
            spec_digest,
            failures: part_failures,
            rate_probes,
        } = p;
        out.cases += cases;
        out.pass += pass;
        out.fail += fail;
        out.unspecified += unspecified;
        for (why, n) in unspecified_by {
            *out.unspecified_by.entry(why.clone()).or_default() += n;
        }
        union(&mut out.rules_exercised, rules_exercised);
        union(&mut out.rules_total, rules_total);
        union(&mut out.codes_provoked, codes_provoked);
        union(&mut out.codes_documented, codes_documented);
        for (rule, t) in rule_tallies {
            out.rule_tallies.entry(rule.clone()).or_default().add(t);
        }
        out.unobservable_effects += unobservable_effects;
        out.retries += retries;
        out.not_judged += not_judged;
        for (why, n) in not_sent {
            *out.not_sent.entry(why.clone()).or_default() += n;
        }
        for n in rules_not_exercised {
            reasons.entry(&n.rule).or_default().extend(&n.reasons);
        }
        if out.spec_digest.is_empty() {
            out.spec_digest = spec_digest.clone();
        }
        for f in part_failures {
            if f.burst.is_some() || f.rule == crate::oracle::rate::RATE_LIMIT_RULE {
                if !probe_failures.iter().any(|g| g.rule == f.rule) {
                    probe_failures.push(f);
                }
            } else {
                // The one earliest in the plan, as the unsharded run finds it (`found_after` is
                // the unsharded plan's place); files without it keep the lowest shard's.
                let earlier = |g: &&Failure| f.found_after > 0 && f.found_after < g.found_after;
                match failures.get(f.rule.as_str()) {
                    Some(g) if !earlier(g) => {}
                    _ => {
                        failures.insert(&f.rule, f);
                    }
                }
            }
        }
        for probe in rate_probes {
            let same = |q: &&mut crate::run::RateProbe| {
                q.rule == probe.rule && q.per_second == probe.per_second
            };
            match out.rate_probes.iter_mut().find(same) {
                // The shard that sent the burst wins over those that did not.
                Some(q) if q.status == ProbeStatus::NotSent && probe.status != q.status => {
                    *q = probe.clone();
                }
                Some(_) => {}
                None => out.rate_probes.push(probe.clone()),
            }
        }
    }
    out.unspecified_share = out.unspecified as f64 / out.cases.max(1) as f64;
    out.failures = failures
        .into_values()
        .chain(probe_failures)
        .cloned()
        .collect();
    out.rules_not_exercised = not_exercised(&out, &reasons, (missing, count));
    out
}

/// The rules no shard exercised, with the shards' reasons: "another shard may" is settled by
/// the merge (a missing shard is said instead), and a rule no reason explains was simply not
/// drawn.
fn not_exercised(
    out: &ApiStats,
    reasons: &BTreeMap<&str, BTreeSet<&Why>>,
    (missing, count): (&[usize], usize),
) -> Vec<NotExercised> {
    let list = |v: &[usize]| {
        v.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    out.rules_total
        .iter()
        .filter(|r| !out.rules_exercised.contains(*r))
        .map(|rule| {
            let mut why: Vec<Why> = reasons
                .get(rule.as_str())
                .into_iter()
                .flatten()
                .filter(|w| w.kind != WhyKind::OtherShard)
                .map(|w| (*w).clone())
                .collect();
            if !missing.is_empty() {
                why.push(Why {
                    kind: WhyKind::OtherShard,
                    detail: format!(
                        "shard(s) {} of {count} are missing from the merge: their cases may exercise it",
                        list(missing)
                    ),
                });
            }
            if why.is_empty() {
                why.push(crate::run::not_drawn(out.cases));
            }
            NotExercised {
                rule: rule.clone(),
                reasons: why,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::{RateProbe, Shard, Tally};

    fn stats(api: &str, pass: usize, fail: usize, rules: &[(&str, Tally)]) -> ApiStats {
        ApiStats {
            api: api.into(),
            cases: pass + fail,
            pass,
            fail,
            rules_exercised: rules.iter().map(|(r, _)| r.to_string()).collect(),
            rules_total: ["a", "b", "c"].iter().map(|r| r.to_string()).collect(),
            rule_tallies: rules.iter().map(|(r, t)| (r.to_string(), *t)).collect(),
            ..Default::default()
        }
    }

    fn shard(index: usize, count: usize, apis: Vec<ApiStats>) -> (PathBuf, RunReport) {
        (
            PathBuf::from(format!("report-{index}.json")),
            RunReport {
                target: format!("http://127.0.0.1:{}/", 9000 + index),
                seed: 7,
                apis,
                seconds: index as f64,
                cases_per_api: 10,
                shard: Some(Shard { index, count }),
                ..Default::default()
            },
        )
    }

    fn failure(api: &str, rule: &str, detail: &str) -> Failure {
        let text = serde_json::json!({
            "api": api, "rule": rule, "source": null, "expected": "e", "actual": "a",
            "detail": detail,
            "case": {"api": api, "params": {}, "region": "r", "violates": [], "situations": [],
                "auth": "none", "transport": {"method": "POST", "signature": "tc3-hmac-sha256",
                "format": "default", "index_base": 0}},
            "request": {"method": "GET", "target": "/", "headers": [], "body": []},
            "status": 200, "response": "", "curl": "curl", "shrink_steps": 0
        });
        serde_json::from_value(text).expect("a failure")
    }

    fn probe(status: ProbeStatus) -> RateProbe {
        serde_json::from_value(serde_json::json!({
            "rule": "rate-limit", "per_second": 10,
            "source": {"doc": "d", "section": "s", "quote": "q"},
            "strength": "seed", "code": "RequestLimitExceeded", "status": status,
            "burst": 15, "bursts": 1, "sent": 15, "throttled": 5, "answers": {},
            "backoff_ms": 0, "detail": "d"
        }))
        .expect("a probe")
    }

    /// Counts and tallies add up, sets are unioned, each rule keeps the failure earliest in the
    /// plan, the lowest shard's on a tie (whatever order the files come in), the probe comes
    /// from the shard that sent it, the longest shard's time is the run's.
    #[test]
    fn shards_add_up_to_the_whole_run() {
        let t = |pass, fail, unspecified| Tally {
            pass,
            fail,
            unspecified,
        };
        let mut one = stats("x", 4, 1, &[("a", t(4, 1, 0))]);
        one.failures.push(failure("x", "a", "from shard 1"));
        one.rate_probes.push(probe(ProbeStatus::Pass));
        let mut two = stats("x", 3, 2, &[("a", t(3, 1, 0)), ("b", t(0, 1, 0))]);
        two.failures.push(failure("x", "a", "from shard 2"));
        two.failures.push(failure("x", "b", "from shard 2"));
        let mut late = failure("x", "c", "from shard 1, 7th in the plan");
        late.found_after = 7;
        one.failures.push(late);
        let mut early = failure("x", "c", "from shard 2, 3rd in the plan");
        early.found_after = 3;
        two.failures.push(early);
        two.rate_probes.push(probe(ProbeStatus::NotSent));
        two.codes_provoked.insert("Code".into());
        let merged = merge(vec![shard(2, 2, vec![two]), shard(1, 2, vec![one])]).unwrap();
        let x = &merged.apis[0];
        assert_eq!((x.cases, x.pass, x.fail), (10, 7, 3));
        assert_eq!(x.rule_tallies["a"], t(7, 2, 0));
        assert_eq!(x.rule_tallies["b"], t(0, 1, 0));
        assert_eq!(x.rules_exercised.len(), 2);
        assert!(x.codes_provoked.contains("Code"));
        let details: Vec<(&str, &str)> = x
            .failures
            .iter()
            .map(|f| (f.rule.as_str(), f.detail.as_str()))
            .collect();
        assert_eq!(
            details,
            [
                ("a", "from shard 1"),
                ("b", "from shard 2"),
                ("c", "from shard 2, 3rd in the plan")
            ]
        );
        assert_eq!(x.rate_probes.len(), 1);
        assert_eq!(x.rate_probes[0].status, ProbeStatus::Pass);
        assert_eq!(merged.seconds, 2.0);
        assert_eq!(merged.target, "http://127.0.0.1:9001/");
        let m = merged.merged.unwrap();
        assert_eq!(m.summary(), "shards 1,2 of 2");
    }

    /// A probe sent by a later shard (shard 1's not sent) is still the one kept.
    #[test]
    fn the_probe_comes_from_the_shard_that_sent_it() {
        let mut one = stats("x", 1, 0, &[]);
        one.rate_probes.push(probe(ProbeStatus::NotSent));
        let mut two = stats("x", 1, 0, &[]);
        two.rate_probes.push(probe(ProbeStatus::Fail));
        let merged = merge(vec![shard(1, 2, vec![one]), shard(2, 2, vec![two])]).unwrap();
        assert_eq!(merged.apis[0].rate_probes[0].status, ProbeStatus::Fail);
    }

    /// A missing shard is recorded and said; the merge still happens.
    #[test]
    fn a_missing_shard_is_said() {
        let merged = merge(vec![
            shard(1, 3, vec![stats("x", 1, 0, &[])]),
            shard(3, 3, vec![stats("x", 2, 0, &[])]),
        ])
        .unwrap();
        let m = merged.merged.clone().unwrap();
        assert_eq!(m.missing, [2]);
        assert_eq!(m.summary(), "shards 1,3 of 3: shard 2 missing");
        assert_eq!(merged.apis[0].cases, 3);
    }

    /// Reports of different runs, or one shard twice, are refused naming the file.
    #[test]
    fn reports_of_different_runs_are_refused_naming_the_file() {
        let x = || vec![stats("x", 1, 0, &[])];
        let mut other_seed = shard(2, 3, x());
        other_seed.1.seed = 8;
        let e = merge(vec![shard(1, 3, x()), other_seed]).unwrap_err();
        assert!(
            e.to_string().starts_with("report-2.json: the seed is 8"),
            "{e}"
        );
        assert!(e.to_string().contains("= help:"), "{e}");
        let mut other_cases = shard(2, 3, x());
        other_cases.1.cases_per_api = 11;
        let e = merge(vec![shard(1, 3, x()), other_cases]).unwrap_err();
        assert!(e.to_string().contains("--cases is 11"), "{e}");
        let e = merge(vec![shard(1, 3, x()), shard(2, 4, x())]).unwrap_err();
        assert!(e.to_string().contains("the shard count is 2/4"), "{e}");
        let mut other_specs = shard(2, 3, x());
        other_specs.1.patterns = vec!["ecm".into()];
        let e = merge(vec![shard(1, 3, x()), other_specs]).unwrap_err();
        assert!(e.to_string().contains("--spec"), "{e}");
        let mut twice = shard(1, 3, x());
        twice.0 = PathBuf::from("again.json");
        let e = merge(vec![shard(1, 3, x()), twice]).unwrap_err();
        assert!(e.to_string().contains("shard 1/3 is given twice"), "{e}");
        assert!(matches!(merge(vec![]), Err(MergeError::Empty)));
    }

    /// A whole run per product merges into one report: the APIs side by side, every count
    /// kept (`not_sent` included), each run listed; a shard's "another shard may exercise it"
    /// is settled by the merge.
    #[test]
    fn runs_of_different_selections_merge_keeping_every_count() {
        let whole = |file: &str, spec: &str, api: &str, seed: u64| {
            let mut a = stats(api, 5, 0, &[("a", Tally::default())]);
            a.not_sent
                .insert("could stop a RUNNING listed instance".into(), 27);
            a.not_judged = 27;
            a.rules_not_exercised = vec![NotExercised {
                rule: "b".into(),
                reasons: vec![Why {
                    kind: WhyKind::NoInstance,
                    detail: "no instance".into(),
                }],
            }];
            (
                PathBuf::from(file),
                RunReport {
                    target: format!("https://{spec}.example"),
                    seed,
                    apis: vec![a],
                    seconds: 2.0,
                    cases_per_api: 10,
                    patterns: vec![spec.into()],
                    version: "1.0".into(),
                    ..Default::default()
                },
            )
        };
        let ecs = whole("ecs.json", "alibaba-ecs", "alibaba-ecs/DetachKeyPair", 1);
        let ecm = whole(
            "ecm.json",
            "tencent-ecm",
            "tencent-ecm/DisassociateInstancesKeyPairs",
            2,
        );
        let merged = merge(vec![ecm, ecs]).unwrap();
        let names: Vec<&str> = merged.apis.iter().map(|a| a.api.as_str()).collect();
        assert_eq!(
            names,
            [
                "alibaba-ecs/DetachKeyPair",
                "tencent-ecm/DisassociateInstancesKeyPairs"
            ]
        );
        for a in &merged.apis {
            assert_eq!(a.cases, 5);
            assert_eq!(a.not_judged, 27);
            assert_eq!(a.not_sent.values().sum::<usize>(), 27, "not_sent is kept");
            assert_eq!(a.rules_not_exercised.len(), 2, "b (with its reason) and c");
            assert_eq!(
                a.rules_not_exercised[0].reasons[0].kind,
                WhyKind::NoInstance
            );
            assert_eq!(a.rules_not_exercised[1].reasons[0].kind, WhyKind::NotDrawn);
        }
        let m = merged.merged.clone().unwrap();
        assert_eq!(m.runs.len(), 2);
        assert!(!m.incomplete());
        assert_eq!(
            m.summary(),
            "2 runs: --spec alibaba-ecs (whole run); --spec tencent-ecm (whole run)"
        );
        assert_eq!(merged.patterns, ["alibaba-ecs", "tencent-ecm"]);
        assert!(merged.target.contains("tencent-ecm") && merged.target.contains("alibaba-ecs"));
        // The shards of one run beside a whole run of another selection.
        let mut one = stats("y", 1, 0, &[("a", Tally::default())]);
        one.rules_not_exercised = vec![NotExercised {
            rule: "b".into(),
            reasons: vec![Why {
                kind: WhyKind::OtherShard,
                detail: "shard 1/2".into(),
            }],
        }];
        let mut two = stats("y", 1, 0, &[("b", Tally::default())]);
        two.rules_exercised.insert("b".into());
        let mut s1 = shard(1, 2, vec![one]);
        let mut s2 = shard(2, 2, vec![two]);
        for s in [&mut s1, &mut s2] {
            s.1.patterns = vec!["y".into()];
            s.1.version = "1.0".into();
        }
        let ecs = whole("ecs.json", "alibaba-ecs", "alibaba-ecs/DetachKeyPair", 7);
        let merged = merge(vec![s2, ecs, s1]).unwrap();
        let y = merged.apis.iter().find(|a| a.api == "y").unwrap();
        assert_eq!(y.cases, 2);
        let rules: Vec<&str> = y
            .rules_not_exercised
            .iter()
            .map(|n| n.rule.as_str())
            .collect();
        assert_eq!(rules, ["c"], "b was exercised by shard 2");
        assert_eq!(
            merged.merged.unwrap().summary(),
            "2 runs: --spec alibaba-ecs (whole run); --spec y (shards 1,2 of 2)"
        );
    }

    /// Two whole runs holding one API, reports of two versions, and shards that ran an API
    /// from different specs are refused, naming the files and the fix.
    #[test]
    fn overlaps_versions_and_specs_that_differ_are_refused() {
        let run = |file: &str, version: &str| {
            (
                PathBuf::from(file),
                RunReport {
                    apis: vec![stats("x", 1, 0, &[])],
                    cases_per_api: 10,
                    version: version.into(),
                    ..Default::default()
                },
            )
        };
        let e = merge(vec![run("a.json", "1"), run("b.json", "1")]).unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("b.json: x is also in a.json, and the two are not shards of one run"),
            "{text}"
        );
        assert!(text.contains("= help: merge one report per API"), "{text}");
        let e = merge(vec![run("a.json", "1"), run("b.json", "2")]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("b.json: written by apiconform 2, but a.json by 1"),
            "{e}"
        );
        let x = |digest: &str| {
            let mut a = stats("x", 1, 0, &[]);
            a.spec_digest = digest.into();
            vec![a]
        };
        let e = merge(vec![shard(1, 2, x("aa")), shard(2, 2, x("bb"))]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("report-2.json: the spec of x is not the one report-1.json ran"),
            "{e}"
        );
    }

    /// A file that is not a run report, or one written before shards were recorded, is refused
    /// naming it; reports with fields this version does not know (newer ones) still load.
    #[test]
    fn other_files_are_refused_and_newer_reports_load() {
        let e = parse(Path::new("junit.xml"), "<testsuites/>").unwrap_err();
        assert!(
            e.to_string().starts_with("junit.xml: not a run report"),
            "{e}"
        );
        let e = parse(Path::new("plan.json"), r#"{"plan": []}"#).unwrap_err();
        assert!(e.to_string().contains("missing field"), "{e}");
        let old = r#"{"target":"t","seed":0,"apis":[],"seconds":1.0,"interrupted":false}"#;
        let e = parse(Path::new("old.json"), old).unwrap_err();
        assert!(matches!(e, MergeError::TooOld { .. }), "{e}");
        let newer = r#"{"target":"t","seed":0,"apis":[],"seconds":1.0,"interrupted":false,
            "cases_per_api":5,"shard":{"index":1,"count":2},"restore":{"restored":1},"stopped_by":null}"#;
        let r = parse(Path::new("new.json"), newer).unwrap();
        assert_eq!(r.shard, Some(Shard { index: 1, count: 2 }));
    }
}
