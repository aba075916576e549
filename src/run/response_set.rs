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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oracle::VerdictKind;

    fn answer(id: &str) -> Outcome {
        let mut o = Outcome::new(200);
        o.request_id = Some(id.into());
        o
    }

    /// The second answer of a product carrying an id fails, naming the first; the same id from
    /// another product's host, or an API without the rule, is not compared.
    #[test]
    fn a_repeated_request_id_fails_within_a_product_only() {
        let set = crate::spec::load_embedded().unwrap();
        let api = |name: &str| set.apis.iter().find(|a| a.name == name).unwrap();
        let (assoc, disassoc, ecm, v2) = (
            api("tencent-cvm/AssociateInstancesKeyPairs"),
            api("tencent-cvm/DisassociateInstancesKeyPairs"),
            api("tencent-ecm/DisassociateInstancesKeyPairs"),
            api("tencent-cvm/UnBindInstanceKey"),
        );
        let case = Case::cvm_associate(serde_json::json!({}));
        let ids = RequestIds::default();
        assert_eq!(ids.check(&set, assoc, &case, &answer("a")), (true, None));
        assert_eq!(ids.check(&set, assoc, &case, &answer("b")), (true, None));
        assert_eq!(ids.check(&set, ecm, &case, &answer("a")), (true, None));
        assert_eq!(ids.check(&set, v2, &case, &answer("a")), (false, None));
        let (exercised, v) = ids.check(&set, disassoc, &case, &answer("a"));
        let v = v.expect("CVM answered `a` before");
        assert!(exercised);
        assert_eq!(v.kind, VerdictKind::Fail);
        assert_eq!(v.rule.as_deref(), Some("request-id-unique"));
        assert!(
            v.detail.contains("tencent-cvm/AssociateInstancesKeyPairs"),
            "{v:?}"
        );
        assert_eq!(
            ids.check(&set, assoc, &case, &Outcome::new(200)),
            (false, None)
        );
    }
}
