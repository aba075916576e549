//! Documented request rates: a burst of requests over an API's limit, sent at once with the same
//! credentials, must meet the family's throttling code at least once ([`judge_burst`]).
//!
//! The runner's probe (`run::probe`) sends the burst; this module says what the documents
//! expect of it, with the strength the limit rests on.

use std::collections::BTreeMap;

use super::{doc_strength, Revision, Strength, Verdict, VerdictKind};
use crate::spec::{LoadedApi, RateLimit, SpecSet};

/// The rule a probe's verdict names (no spec rule: the limit is the API's `rate_limits` entry).
pub const RATE_LIMIT_RULE: &str = "rate-limit";

/// The code the family of `api` answers to a caller over a documented rate, as the family's
/// spec names it (`RequestLimitExceeded`, `Throttling`).
pub fn throttling_code<'a>(set: &'a SpecSet, api: &LoadedApi) -> Option<&'a str> {
    set.family(api.spec.api.family).throttling_code.as_deref()
}

/// What a documented limit rests on: a seed, or the vendor's current definitions.
pub fn limit_strength(set: &SpecSet, api: &LoadedApi, limit: &RateLimit) -> Strength {
    doc_strength(&api.spec, set.family(api.spec.api.family), &limit.source)
}

/// Whether a run judging by `revision` holds targets to `limit`: judged by the seeds alone
/// (`--source seed`), a limit only the current definitions state does not apply.
pub fn limit_applies(
    set: &SpecSet,
    api: &LoadedApi,
    limit: &RateLimit,
    revision: Revision,
) -> bool {
    revision != Revision::Seed || limit_strength(set, api, limit) == Strength::Seed
}

/// Requests in a burst over `per_second`: a few more than the limit (`limit + max(3, limit/2)`),
/// so a target counting a little generously still throttles, and a real cloud sees only a few
/// requests over what its documents allow.
pub fn burst_size(per_second: u32) -> usize {
    let n = per_second as usize;
    n + (n / 2).max(3)
}

/// What came back from a burst.
#[derive(Debug, Clone, Default)]
pub struct Burst {
    /// Requests sent at once.
    pub sent: usize,
    /// Answers carrying the family's throttling code.
    pub throttled: usize,
    /// Answers by what they carried (`success`, an error code, `HTTP 429`, `no answer`).
    pub answers: BTreeMap<String, usize>,
    /// Whether every answer arrived within one second of the first request going out: only
    /// then did the target see the whole burst inside one second.
    pub within_second: bool,
}

/// The verdict of the bursts sent over `limit`: a pass when any answer carried the throttling
/// code; a failure of [`RATE_LIMIT_RULE`] when none did although a burst was answered within
/// one second; unspecified when no burst was (the target may have seen it spread over two
/// seconds).
pub fn judge_burst(set: &SpecSet, api: &LoadedApi, limit: &RateLimit, bursts: &[Burst]) -> Verdict {
    let code = throttling_code(set, api).unwrap_or("a throttling code");
    let size = bursts.first().map_or(0, |b| b.sent);
    let expected = format!(
        "at least one of {size} requests sent at once within one second answered `{code}` (documented limit {}/s)",
        limit.per_second
    );
    let mut answers: BTreeMap<&str, usize> = BTreeMap::new();
    for b in bursts {
        for (k, n) in &b.answers {
            *answers.entry(k).or_default() += n;
        }
    }
    let actual = answers
        .iter()
        .map(|(k, n)| format!("{k} ×{n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let throttled: usize = bursts.iter().map(|b| b.throttled).sum();
    let strength = limit_strength(set, api, limit);
    let (kind, detail) = if throttled > 0 {
        (
            VerdictKind::Pass,
            format!("{throttled} of the answers carried `{code}`"),
        )
    } else if bursts.iter().any(|b| b.within_second) {
        (
            VerdictKind::Fail,
            format!(
                "{} burst(s) of {size} requests with the same credentials, each answered within one second, and not one answer carried `{code}`",
                bursts.len()
            ),
        )
    } else {
        (
            VerdictKind::Unspecified,
            "no burst was answered within one second: the target may have counted it over two windows".to_string(),
        )
    };
    Verdict {
        kind,
        rule: Some(RATE_LIMIT_RULE.to_string()),
        source: Some(limit.source.clone()),
        expected,
        actual,
        detail,
        strength: (kind != VerdictKind::Pass).then_some(strength),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> SpecSet {
        crate::spec::load_embedded().unwrap()
    }

    #[test]
    fn bursts_are_a_few_over_the_limit() {
        assert_eq!(burst_size(10), 15);
        assert_eq!(burst_size(20), 30);
        assert_eq!(burst_size(2), 5);
    }

    #[test]
    fn limits_rest_on_what_states_them() {
        let set = set();
        let cvm = set.find("tencent-cvm/AssociateInstancesKeyPairs").unwrap();
        let ecm = set
            .find("tencent-ecm/DisassociateInstancesKeyPairs")
            .unwrap();
        let (c, e) = (&cvm.spec.api.rate_limits[0], &ecm.spec.api.rate_limits[0]);
        assert_eq!(limit_strength(&set, cvm, c), Strength::Current);
        assert_eq!(limit_strength(&set, ecm, e), Strength::Seed);
        assert!(!limit_applies(&set, cvm, c, Revision::Seed));
        assert!(limit_applies(&set, ecm, e, Revision::Seed));
        assert!(limit_applies(&set, cvm, c, Revision::Both));
        assert_eq!(throttling_code(&set, cvm), Some("RequestLimitExceeded"));
    }

    #[test]
    fn a_burst_without_throttling_fails_only_when_it_fit_in_a_second() {
        let set = set();
        let ecm = set
            .find("tencent-ecm/DisassociateInstancesKeyPairs")
            .unwrap();
        let limit = &ecm.spec.api.rate_limits[0];
        let burst = |throttled, within_second| Burst {
            sent: 30,
            throttled,
            answers: [("InvalidInstanceId.NotFound".to_string(), 30 - throttled)].into(),
            within_second,
        };
        let v = judge_burst(&set, ecm, limit, &[burst(0, true), burst(0, true)]);
        assert_eq!(v.kind, VerdictKind::Fail);
        assert_eq!(v.rule.as_deref(), Some(RATE_LIMIT_RULE));
        assert_eq!(v.strength, Some(Strength::Seed));
        assert_eq!(v.source.as_ref().unwrap().doc, "seed-001");
        assert!(v.actual.contains("NotFound ×60"), "{}", v.actual);
        assert_eq!(
            judge_burst(&set, ecm, limit, &[burst(10, true)]).kind,
            VerdictKind::Pass
        );
        assert_eq!(
            judge_burst(&set, ecm, limit, &[burst(0, false)]).kind,
            VerdictKind::Unspecified
        );
    }
}
