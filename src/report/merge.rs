//! Merging the JSON reports of `run --shard I/N` runs into the report of the whole run.
//!
//! The shards of a run are a partition of one plan (`src/run/plan.rs`): every case is sent by
//! exactly one shard, and the cases whose verdicts depend on earlier cases all go to the same
//! one. So the counts of the whole run are the shards' sums, what was exercised or provoked is
//! the union, and each broken rule keeps one failure: the one earliest in the plan (its
//! `found_after`, the unsharded plan's place, is the unsharded run's), the lowest shard's on a
//! tie, so the same files give the same report. Only shard 1 sends the rate-limit bursts: each probe is taken from the
//! shard that sent it.
//!
//! [`merge`] is pure; [`load`] reads one file. Inputs that do not belong to one run are refused
//! with a [`MergeError`] naming the file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::run::{ApiStats, Failure, Merged, ProbeStatus, RunReport};

/// Why reports cannot be merged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MergeError {
    /// A file could not be read.
    #[error("{}: cannot read it: {source}\n  = help: pass the JSON reports the shards wrote with `run --shard I/N --report-json FILE`", file.display())]
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
    /// Two reports are not shards of one run: they differ in what decides the plan.
    #[error("{}: {what} is {theirs}, but {} has {ours}: not shards of one run\n  = help: merge only the shards of one run (same --seed, --cases, --spec and N in --shard I/N)", file.display(), first.display())]
    Mismatch {
        /// The file that differs.
        file: PathBuf,
        /// The first file, which the others are held to.
        first: PathBuf,
        /// What differs (`the seed`, `--cases`, ...).
        what: &'static str,
        /// The first file's value.
        ours: String,
        /// This file's value.
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
    #[error("no report to merge\n  = help: pass the JSON reports of the shards, e.g. `apiconform report merge report-1.json report-2.json report-3.json`")]
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

/// Merges the reports of a run's shards (in any order) into the whole run's report. Refuses
/// reports that are not shards of one run; a missing shard is recorded in
/// [`RunReport::merged`] (the totals are then short of the whole run's).
pub fn merge(inputs: Vec<(PathBuf, RunReport)>) -> Result<RunReport, MergeError> {
    let mut inputs = inputs;
    inputs.sort_by_key(|(_, r)| shard_of(r).0);
    let Some((first_file, first)) = inputs.first() else {
        return Err(MergeError::Empty);
    };
    let (_, count) = shard_of(first);
    let mut seen: BTreeMap<usize, &PathBuf> = BTreeMap::new();
    for (file, r) in &inputs {
        let mismatch = |what, ours: String, theirs: String| MergeError::Mismatch {
            file: file.clone(),
            first: first_file.clone(),
            what,
            ours,
            theirs,
        };
        if r.seed != first.seed {
            return Err(mismatch(
                "the seed",
                first.seed.to_string(),
                r.seed.to_string(),
            ));
        }
        if r.cases_per_api != first.cases_per_api {
            return Err(mismatch(
                "--cases",
                first.cases_per_api.to_string(),
                r.cases_per_api.to_string(),
            ));
        }
        if r.patterns != first.patterns {
            return Err(mismatch(
                "--spec",
                format!("{:?}", first.patterns),
                format!("{:?}", r.patterns),
            ));
        }
        let (index, n) = shard_of(r);
        if n != count {
            return Err(mismatch(
                "the shard count",
                format!("{}/{count}", shard_of(first).0),
                format!("{index}/{n}"),
            ));
        }
        if let Some(other) = seen.insert(index, file) {
            return Err(MergeError::Duplicate {
                file: file.clone(),
                other: other.clone(),
                index,
                count,
            });
        }
    }
    let shards: Vec<usize> = seen.keys().copied().collect();
    let missing: Vec<usize> = (1..=count).filter(|i| !seen.contains_key(i)).collect();
    let reports: Vec<&RunReport> = inputs.iter().map(|(_, r)| r).collect();
    Ok(RunReport {
        target: first.target.clone(),
        seed: first.seed,
        apis: merge_apis(&reports),
        seconds: reports.iter().map(|r| r.seconds).fold(0.0, f64::max),
        probe_seconds: reports.iter().map(|r| r.probe_seconds).fold(0.0, f64::max),
        interrupted: reports.iter().any(|r| r.interrupted),
        // Each shard names its own budget; the merge says which shards one stopped.
        stopped_by: {
            let spent: Vec<String> = inputs
                .iter()
                .filter_map(|(_, r)| {
                    let (i, n) = shard_of(r);
                    r.stopped_by.as_ref().map(|b| format!("shard {i}/{n}: {b}"))
                })
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
        // Every shard restored what it changed: the instances of all of them.
        restore: {
            let parts: Vec<&crate::run::RestoreReport> =
                reports.iter().filter_map(|r| r.restore.as_ref()).collect();
            (!parts.is_empty()).then(|| crate::run::RestoreReport {
                journal: None,
                instances: parts.iter().flat_map(|p| p.instances.clone()).collect(),
            })
        },
        cases_per_api: first.cases_per_api,
        patterns: first.patterns.clone(),
        shard: None,
        merged: Some(Merged {
            count,
            shards,
            missing,
        }),
    })
}

/// The APIs of every shard, in the order of the shard listing the most (an interrupted shard
/// may have stopped before its last APIs), then any others.
fn merge_apis(reports: &[&RunReport]) -> Vec<ApiStats> {
    let mut order: Vec<&str> = Vec::new();
    let mut by_length: Vec<&&RunReport> = reports.iter().collect();
    by_length.sort_by_key(|r| std::cmp::Reverse(r.apis.len()));
    for r in by_length {
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
            merge_api(name, &parts)
        })
        .collect()
}

/// One API's stats from its shards' (in shard order).
fn merge_api(name: &str, parts: &[&ApiStats]) -> ApiStats {
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
    for p in parts {
        out.cases += p.cases;
        out.pass += p.pass;
        out.fail += p.fail;
        out.unspecified += p.unspecified;
        for (why, n) in &p.unspecified_by {
            *out.unspecified_by.entry(why.clone()).or_default() += n;
        }
        union(&mut out.rules_exercised, &p.rules_exercised);
        union(&mut out.rules_total, &p.rules_total);
        union(&mut out.codes_provoked, &p.codes_provoked);
        union(&mut out.codes_documented, &p.codes_documented);
        for (rule, t) in &p.rule_tallies {
            out.rule_tallies.entry(rule.clone()).or_default().add(t);
        }
        out.unobservable_effects += p.unobservable_effects;
        out.retries += p.retries;
        out.not_judged += p.not_judged;
        for f in &p.failures {
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
        for probe in &p.rate_probes {
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
    out
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
