//! What a run produces: per-API counters, the failures (shrunk, with everything needed to
//! reproduce them), the run report, and the errors that stop a run.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::TransportError;
use crate::case::Case;
use crate::protocol::{HttpRequest, ProtocolError};
use crate::spec::Source;

/// One nonconformance, shrunk, with everything needed to reproduce it.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Failure {
    /// API name.
    pub api: String,
    /// The rule broken by the target.
    pub rule: String,
    /// Where the rule is stated.
    pub source: Option<Source>,
    /// What the spec expects.
    #[serde(default)]
    pub expected: String,
    /// What the target did.
    #[serde(default)]
    pub actual: String,
    /// More detail.
    #[serde(default)]
    pub detail: String,
    /// The minimal case: with `api` and `rule`, all a hand-written repro needs (`replay`
    /// signs and sends it; the other fields say what was seen).
    pub case: Case,
    /// The exact request sent, secrets redacted.
    #[serde(default = "no_request")]
    pub request: HttpRequest,
    /// The response status.
    #[serde(default)]
    pub status: u16,
    /// The response body as text.
    #[serde(default)]
    pub response: String,
    /// The same request as a curl command.
    #[serde(default)]
    pub curl: String,
    /// Shrink steps taken.
    #[serde(default)]
    pub shrink_steps: usize,
    /// The place in the API's plan, counted from 1, of the first case failing this rule: the
    /// cases a run would have judged when it found the failure, one request at a time. The
    /// same whatever `--jobs` (the order answers come back in does not change it) and, being
    /// the unsharded plan's place, whatever `--shard`. 0 in files written before it was
    /// counted.
    #[serde(default)]
    pub found_after: usize,
    /// What the broken expectation rests on: a seed, the current definitions, or (under
    /// `--strict`) our judgement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strength: Option<crate::oracle::Strength>,
    /// For a failure of the rate-limit probe: the request was sent this many times at once
    /// (one repro file cannot hold a burst; `apiconform replay` sends the burst again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<usize>,
    /// For a failure of a sequence or a concurrent history (`run --stateful`, `--concurrent`):
    /// every call of it, in the order sent; `apiconform replay` sends them again one after
    /// another and checks each step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sequence: Vec<Case>,
    /// The error code of the failing call's answer (`None` for a success, or an answer that
    /// is not the family's): for a failure judged on the observed state, what the call said
    /// while the state changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// What the instances and key pairs the failing call named held just before it, as the
    /// run saw them (state and bound keys): `apiconform replay` sets them up again before
    /// sending. Absent in files written before it was recorded, and for records of requests
    /// the harness did not send.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preconditions: Option<crate::world::World>,
    /// What shrinking left that a reader must know: it stopped at its cap of candidates (the
    /// case may not be minimal), a document's example no longer as printed, ...
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Whether shrinking changed the case it started from: a document's example is then no
    /// longer as printed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shrunk: bool,
}

/// The request of a hand-written repro, which records none.
fn no_request() -> HttpRequest {
    HttpRequest {
        method: String::new(),
        target: String::new(),
        headers: Vec::new(),
        body: Vec::new(),
    }
}

/// How a rate-limit probe ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeStatus {
    /// Some answer carried the family's throttling code.
    Pass,
    /// A burst over the limit fitted in one second and no answer carried the code.
    Fail,
    /// No burst was answered within one second: nothing can be concluded.
    Unspecified,
    /// Not sent (a remote target without `--probe-rate-limits`, `--no-rate-probes`, ...):
    /// `detail` says why.
    NotSent,
}

/// One documented rate limit of an API, probed after its cases: a burst a few requests over
/// the limit, sent at once with the run's credentials, each naming only absent instances.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RateProbe {
    /// The rule a failure names: `rate-limit`.
    pub rule: String,
    /// The documented limit, requests per second.
    pub per_second: u32,
    /// Where the limit is stated.
    pub source: Source,
    /// What the limit rests on (a seed, or the current definitions).
    pub strength: crate::oracle::Strength,
    /// The family's throttling code the probe expects.
    pub code: String,
    /// How it ended.
    pub status: ProbeStatus,
    /// Requests per burst.
    pub burst: usize,
    /// Bursts sent: a second, half a second later in the clock's second, only when the first
    /// met no throttling.
    pub bursts: usize,
    /// Requests sent in all.
    pub sent: usize,
    /// Answers that carried the throttling code.
    pub throttled: usize,
    /// Answers by what they carried (`success`, an error code, `HTTP 429`, `no answer`).
    pub answers: BTreeMap<String, usize>,
    /// Milliseconds waited after the last burst before anything else went to the API's product.
    pub backoff_ms: u64,
    /// Why it ended so, or why it was not sent.
    pub detail: String,
}

/// How the cases exercising one rule ended: the rows of a report's rule × outcome matrix.
///
/// A passing or unspecified case counts under every rule it exercised; a failing case counts
/// only under the rule it breaks (it says nothing about the others it exercised), which need
/// not be among those it was generated to exercise (an effect observed wrong, say).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Cases that passed.
    pub pass: usize,
    /// Cases that failed on this rule.
    pub fail: usize,
    /// Cases the documents leave open.
    pub unspecified: usize,
}

impl Tally {
    /// Adds another tally to this one (shards merged).
    pub fn add(&mut self, other: &Tally) {
        self.pass += other.pass;
        self.fail += other.fail;
        self.unspecified += other.unspecified;
    }
}

/// Counters for one API.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ApiStats {
    /// API name.
    pub api: String,
    /// Cases run.
    pub cases: usize,
    /// Passed.
    pub pass: usize,
    /// Failed.
    pub fail: usize,
    /// Unspecified by the documents.
    pub unspecified: usize,
    /// `unspecified / cases`: the share of cases that could not fail.
    #[serde(default)]
    pub unspecified_share: f64,
    /// Unspecified cases by what left them open (a situation, or `judgement RULE`).
    #[serde(default)]
    pub unspecified_by: std::collections::BTreeMap<String, usize>,
    /// Rule ids exercised.
    pub rules_exercised: BTreeSet<String>,
    /// Per rule, how the cases exercising it ended (see [`Tally`]); empty in files written
    /// before it was counted.
    #[serde(default)]
    pub rule_tallies: BTreeMap<String, Tally>,
    /// All rule ids of the spec and its family.
    pub rules_total: BTreeSet<String>,
    /// Error codes the target answered that the spec documents.
    pub codes_provoked: BTreeSet<String>,
    /// Codes the spec documents as reachable.
    pub codes_documented: BTreeSet<String>,
    /// Effects that could not be observed (no view of the binding).
    pub unobservable_effects: usize,
    /// Retries after transport faults and throttling.
    pub retries: usize,
    /// Cases never judged: every answer was the target's throttling code, or the case was not
    /// sent (see `not_sent`).
    #[serde(default)]
    pub not_judged: usize,
    /// Cases not sent, by why: they named an instance the target holds but the world does not
    /// list, or could stop a RUNNING instance without `--allow-force-stop`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub not_sent: BTreeMap<String, usize>,
    /// The rules of `rules_total` no judged case exercised, each with why (empty when every
    /// rule was); in files written before it was recorded, empty whatever was exercised.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules_not_exercised: Vec<NotExercised>,
    /// A digest of the API's spec and its family's, as loaded by the run (`--specs-dir` or the
    /// built-in ones): reports merged must agree on it. Empty in files written before it was
    /// recorded.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub spec_digest: String,
    /// Failures, shrunk, one per rule (a failed rate-limit probe among them).
    pub failures: Vec<Failure>,
    /// The API's documented rate limits, probed after its cases (or why not).
    #[serde(default)]
    pub rate_probes: Vec<RateProbe>,
}

/// A rule of an API that no judged case exercised, and why.
///
/// A rule counts as exercised when at least one case that was sent and judged (not throttled
/// throughout, not held back) tested it: for a rule a case breaks, the case itself; for a
/// success, shape or effect rule, a case that could succeed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotExercised {
    /// The rule id.
    pub rule: String,
    /// Why, most specific first (at least one).
    pub reasons: Vec<Why>,
}

/// One reason a rule went unexercised: a kind for machines, a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Why {
    /// What kind of reason.
    pub kind: WhyKind,
    /// The reason in words, with what would exercise the rule.
    pub detail: String,
}

/// The kinds of [`Why`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WhyKind {
    /// The world lists no instance of the API's product for its cases to use.
    NoInstance,
    /// The world lists some, but the API's changes cannot be undone and the run keeps its
    /// cases off them (`--allow-irreversible` lets them).
    Irreversible,
    /// Cases that would have exercised it could stop a RUNNING instance and were not sent
    /// (`--allow-force-stop` lets them).
    ForceStop,
    /// Cases that would have exercised it were not sent for another reason (the guard found
    /// the target holding an instance the world does not list, ...).
    NotSent,
    /// Cases that would have exercised it got only the target's throttling answers.
    Throttled,
    /// The run stopped (a budget, Ctrl-C) before it was exercised.
    Stopped,
    /// This report is one shard of a run: another shard's cases may exercise it.
    OtherShard,
    /// None of the cases drawn exercised it (more `--cases`, another `--seed`).
    NotDrawn,
}

impl NotExercised {
    /// The reasons in one line.
    pub fn reasons_line(&self) -> String {
        self.reasons
            .iter()
            .map(|w| w.detail.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl ApiStats {
    /// How many of the API's rules judged cases exercised.
    pub fn exercised_count(&self) -> usize {
        self.rules_exercised.intersection(&self.rules_total).count()
    }

    /// Rate-limit probes that failed.
    pub fn failed_probes(&self) -> usize {
        self.rate_probes
            .iter()
            .filter(|p| p.status == ProbeStatus::Fail)
            .count()
    }
}

/// The result of a run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunReport {
    /// Target URL.
    pub target: String,
    /// Seed used.
    pub seed: u64,
    /// Per API.
    pub apis: Vec<ApiStats>,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Of the wall time, the most any lane spent on rate-limit probes (bursts and back-offs).
    #[serde(default)]
    pub probe_seconds: f64,
    /// Whether the run stopped early (Ctrl-C).
    pub interrupted: bool,
    /// The budget that stopped the run early (`--max-requests`, `--max-duration`), if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_by: Option<String>,
    /// What the safety rules kept from the run (irreversible APIs kept off listed instances).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// What was put back after the run, when instances were journaled (remote targets, or
    /// `--journal`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<super::RestoreReport>,
    /// Cases per API the run was asked for (`--cases`): what shards to be merged must share.
    /// 0 in files written before it was recorded.
    #[serde(default)]
    pub cases_per_api: usize,
    /// The `--spec` patterns given (empty: every spec).
    #[serde(default)]
    pub patterns: Vec<String>,
    /// The shard this run was (`--shard I/N`); `None` for a whole run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// For a report merged from shards (`apiconform report merge`): which were merged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<Merged>,
    /// The apiconform version that wrote the report (reports merged must agree on it); empty
    /// in files written before it was recorded.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// Whether a rule no case exercised counts as a failure (`--require-exercised`): the
    /// reports then show each as failed, and the exit code is 1.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_exercised: bool,
    /// Requests the run sent in all: cases, re-runs and shrinking, read calls, probes and the
    /// restore (`apiconform bench` divides it by the cases).
    #[serde(default)]
    pub requests: usize,
}

/// The most shards a run is cut into (`run --shard I/N`, N at most this), and so the most a
/// merge counts up to: far beyond any CI matrix, and a bound on what a report file may claim.
pub const MAX_SHARDS: usize = 1000;

/// One shard of a run, as the command line names it: `index` of `count`, from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// Which shard, 1 to `count`.
    pub index: usize,
    /// How many shards the run was cut into.
    pub count: usize,
}

/// What a merged report is made of.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Merged {
    /// How many shards the run was cut into.
    pub count: usize,
    /// The shards merged (1-based, ascending).
    pub shards: Vec<usize>,
    /// The shards not given: the totals are short of a whole run's by their cases.
    pub missing: Vec<usize>,
    /// When reports of several runs were merged (different `--spec` selections, each whole or
    /// sharded): each of them, and `count`, `shards` and `missing` above are then 0 and empty.
    /// Empty when the shards of one run were merged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<MergedRun>,
}

/// One run among several merged into one report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergedRun {
    /// Its `--spec` patterns (empty: every spec).
    pub patterns: Vec<String>,
    /// Its seed.
    pub seed: u64,
    /// Its cases per API.
    pub cases_per_api: usize,
    /// How many shards it was cut into (1: not sharded).
    pub count: usize,
    /// The shards merged (1-based, ascending).
    pub shards: Vec<usize>,
    /// The shards not given.
    pub missing: Vec<usize>,
    /// Its APIs.
    pub apis: Vec<String>,
}

impl Merged {
    /// One line for people: `shards 1,2,3 of 3`, or `shards 1,3 of 3: shard 2 missing`; for
    /// several runs, `2 runs: --spec tencent-ecm (whole run); --spec alibaba-ecs (shards 1,2 of 2)`.
    pub fn summary(&self) -> String {
        if self.runs.is_empty() {
            return shards_summary(&self.shards, self.count, &self.missing);
        }
        let runs: Vec<String> = self
            .runs
            .iter()
            .map(|r| {
                let spec = match r.patterns.is_empty() {
                    true => "every spec".to_string(),
                    false => format!("--spec {}", r.patterns.join(",")),
                };
                let part = match r.count {
                    1 => "whole run".to_string(),
                    _ => shards_summary(&r.shards, r.count, &r.missing),
                };
                format!("{spec} ({part})")
            })
            .collect();
        format!("{} runs: {}", self.runs.len(), runs.join("; "))
    }

    /// Whether a shard of some run is missing: the totals are short of the whole's.
    pub fn incomplete(&self) -> bool {
        !self.missing.is_empty() || self.runs.iter().any(|r| !r.missing.is_empty())
    }
}

/// `shards 1,2,3 of 3`, or `shards 1,3 of 3: shard 2 missing`.
fn shards_summary(shards: &[usize], count: usize, missing: &[usize]) -> String {
    let list = |v: &[usize]| {
        v.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut out = format!("shards {} of {count}", list(shards));
    if !missing.is_empty() {
        let word = if missing.len() == 1 {
            "shard"
        } else {
            "shards"
        };
        out += &format!(": {word} {} missing", list(missing));
    }
    out
}

impl RunReport {
    /// Cases run in all.
    pub fn cases(&self) -> usize {
        self.apis.iter().map(|a| a.cases).sum()
    }
    /// Failures in all: failed cases and failed rate-limit probes.
    pub fn failed(&self) -> usize {
        self.apis.iter().map(|a| a.fail + a.failed_probes()).sum()
    }
    /// Rules exercised and rules in all, over every API: `(N, M)` of "N of M rules exercised".
    pub fn rules_exercised(&self) -> (usize, usize) {
        self.apis.iter().fold((0, 0), |(n, m), a| {
            (n + a.exercised_count(), m + a.rules_total.len())
        })
    }

    /// Whether every rule of every API was exercised.
    pub fn all_exercised(&self) -> bool {
        let (n, m) = self.rules_exercised();
        n == m
    }

    /// The failures of every API, in report order.
    pub fn failures(&self) -> impl Iterator<Item = &Failure> {
        self.apis.iter().flat_map(|a| &a.failures)
    }
}

/// Errors that stop a run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// No spec matched the patterns.
    #[error("no spec matches {patterns:?}\n  = help: `apiconform specs list` shows the names")]
    NoSpecs {
        /// The patterns given.
        patterns: Vec<String>,
    },
    /// `--fault` was given with a target of the user's: faults live in the in-process emulator.
    #[error("--fault applies to the embedded emulator only\n  = help: start `apiconform serve --fault NAME` and pass its URL to --target, or drop --target")]
    FaultsNeedEmbedded,
    /// The target answered nothing but its throttling code for many cases in a row.
    #[error("{url} answered the last {cases} cases of {api} only with its throttling code, whatever the pace\n  = help: lower --rate (the documented limit is {rate}/s) or --jobs, or run when the account is quieter")]
    Throttled {
        /// The target.
        url: String,
        /// The API being run.
        api: String,
        /// Cases in a row that got only throttling answers.
        cases: usize,
        /// The documented rate the harness fell back to.
        rate: f64,
    },
    /// `--variant` was given with a target of the user's: variants live in the emulator.
    #[error("--variant applies to the embedded emulator only\n  = help: start `apiconform serve --variant NAME` and pass its URL to --target, or drop --target")]
    VariantsNeedEmbedded,
    /// A target that is not on this machine, and no world file saying what may be touched.
    #[error("{url} is not on this machine, and no --world was given\n  = help: list the instances and key pairs apiconform may touch in a world file (docs/world.md) and pass --world FILE; try --dry-run first")]
    RemoteNeedsWorld {
        /// The target's URL.
        url: String,
    },
    /// A rate-limit repro was replayed where the burst may not go.
    #[error("this repro is a burst of {api}'s rate-limit probe, and it is not sent: {why}")]
    BurstNotSent {
        /// The API.
        api: String,
        /// Why not (a remote target without `--probe-rate-limits`, ...).
        why: String,
    },
    /// A repro file claims more than its kind of case may do.
    #[error("this repro's `{field}` is {value}: {allowed}\n  = help: replay the file `apiconform run --repro-dir` wrote, unedited")]
    ReproOutOfBounds {
        /// The field.
        field: &'static str,
        /// What the file says.
        value: u64,
        /// What it may be, and why.
        allowed: String,
    },
    /// A replayed case was not sent, so nothing was reproduced (a case not sent is not a pass).
    #[error("not reproduced: not sent because {why}")]
    NotReproduced {
        /// The API.
        api: String,
        /// Why the case was held back.
        why: String,
    },
    /// The target is unreachable.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The journal could not be written or read.
    #[error(transparent)]
    Journal(#[from] super::journal::JournalError),
    /// A case cannot be signed in its family (a spec asks for a method or scheme the family's
    /// encoder does not have).
    #[error("{api}: {source}\n  = help: the family's spec file (specs/families/<family>.yaml, `signatures`) lists a scheme or method this family's encoder cannot produce: remove it, or use one the family has")]
    Protocol {
        /// The API whose case could not be signed.
        api: String,
        /// What the encoder said.
        source: ProtocolError,
    },
}

/// Live progress: called after every case.
pub trait Progress: Send + Sync {
    /// `done` of `total` cases, `failed` so far.
    fn update(&self, done: usize, total: usize, failed: usize);

    /// Nothing moves for a while because the target asked to wait (a throttling answer's
    /// `Retry-After`): what is waited for, in a sentence, every few seconds meanwhile.
    fn waiting(&self, _what: &str) {}

    /// Something a person watching should know now (a restore under way, what it did when the
    /// run itself ended in an error).
    fn note(&self, _what: &str) {}

    /// Where the run stands, about once a second while it runs: what a log that is not a
    /// terminal prints now and then (`progress: ...`).
    fn status(&self, _status: &Status) {}
}

/// Where a run stands: cases done in all and per API, failures so far, the current wait.
#[derive(Debug, Clone, Default)]
pub struct Status {
    /// Cases done.
    pub done: usize,
    /// Cases planned.
    pub total: usize,
    /// Failed cases so far.
    pub failed: usize,
    /// Per API in selection order: its name, cases done, cases planned.
    pub apis: Vec<(String, usize, usize)>,
    /// What the run waits for now, if anything: a rate limit's slot, or the target's
    /// `Retry-After`.
    pub waiting: Option<String>,
}

impl Status {
    /// One line: `progress: 1200/1500 cases (tencent-cvm/AssociateInstancesKeyPairs 300/300,
    /// ...) 0 failed, waiting for rate limit 0.4s`. APIs not started yet are left out.
    pub fn line(&self) -> String {
        let apis: Vec<String> = self
            .apis
            .iter()
            .filter(|(_, done, _)| *done > 0)
            .map(|(api, done, total)| format!("{api} {done}/{total}"))
            .collect();
        let apis = match apis.is_empty() {
            true => String::new(),
            false => format!(" ({})", apis.join(", ")),
        };
        let waiting = match &self.waiting {
            Some(w) => format!(", waiting for {w}"),
            None => String::new(),
        };
        format!(
            "progress: {}/{} cases{apis} {} failed{waiting}",
            self.done, self.total, self.failed
        )
    }
}

/// No progress output.
pub struct NoProgress;
impl Progress for NoProgress {
    fn update(&self, _: usize, _: usize, _: usize) {}
}
