//! The run's memory of what its answers said, for the properties the documents state over
//! many answers ([`crate::oracle::response_set`]): here, the request ids answered so far, per
//! product (the APIs of one product share its host; another product's host is another
//! service, whose ids the documents do not compare). Cheap: one map insert per judged answer.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::case::Case;
use crate::oracle::{self, Verdict};
use crate::protocol::Outcome;
use crate::spec::{LoadedApi, SpecSet};

/// Request ids seen, by product and id, with the answer that carried each first.
#[derive(Default)]
pub(super) struct RequestIds {
    seen: Mutex<HashMap<(String, String), String>>,
}

impl RequestIds {
    /// Records the answer's request id; a failure of the API's `request_id_unique` rule when an
    /// earlier answer of the product carried it. `None` when the API has no such rule or the
    /// answer no id. Returns whether the rule was exercised too.
    pub(super) fn check(
        &self,
        set: &SpecSet,
        api: &LoadedApi,
        case: &Case,
        outcome: &Outcome,
    ) -> (bool, Option<Verdict>) {
        let (Some(rule), Some(id)) = (
            oracle::response_set::request_id_rule(set, api),
            outcome.request_id.as_deref().filter(|id| !id.is_empty()),
        ) else {
            return (false, None);
        };
        let product = api.name.split('/').next().unwrap_or(&api.name).to_string();
        let this = format!("a request to {} (region {})", api.name, case.region);
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        match seen.entry((product, id.to_string())) {
            std::collections::hash_map::Entry::Occupied(first) => (
                true,
                Some(oracle::response_set::repeated_request_id(
                    rule,
                    id,
                    first.get(),
                )),
            ),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(this);
                (true, None)
            }
        }
    }
}
