//! Response-set properties: what the documents state about a run's answers taken together,
//! which no single answer can break. The run keeps what they need (the request ids answered so
//! far, per product) and asks here for the rule and the verdict.

use super::{verdict, Verdict, VerdictKind};
use crate::spec::{CheckKind, LoadedApi, Rule, SpecSet};

/// The API's (or its family's) `request_id_unique` rule, if it has one.
pub fn request_id_rule<'a>(set: &'a SpecSet, api: &'a LoadedApi) -> Option<&'a Rule> {
    let family = set.family(api.spec.api.family);
    api.spec
        .rules
        .iter()
        .chain(family.rules.iter())
        .find(|r| r.check.kind() == CheckKind::RequestIdUnique)
}

/// The failure of an answer whose request id an earlier answer of the same product carried
/// (`first` says which).
pub fn repeated_request_id(rule: &Rule, id: &str, first: &str) -> Verdict {
    verdict(
        VerdictKind::Fail,
        Some(rule),
        "a request id no other answer carried",
        format!("request id {id}"),
        format!(
            "{first} was answered with the same request id; the documents call it unique to each request, and a user quoting it to support names two calls"
        ),
    )
}
