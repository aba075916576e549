//! Exact envelopes: the names the family's documents print for a body's outer element, judged
//! as printed rather than by their likeness (a root `<DetachKeyPairsResponse>` or `<Response>`
//! is not `<DetachKeyPairResponse>`). The decoder keeps the root's name beside the body
//! ([`Outcome::xml_root`]); this module judges it on the family's `xml_root` rule.

use super::{rule_by_kind, verdict, VerdictKind};
use crate::case::Case;
use crate::protocol::{BodyFormat, Outcome, OutcomeResult, ResponseFormat, SignatureMethod};
use crate::spec::{ApiSpec, CheckKind, FamilySpec};

use super::Verdict;

/// The root element a success body must have: the action as the spec writes it, then
/// `Response` (seed 003's example `<DetachKeyPairResponse>`; the current definitions print
/// `<DeleteKeyPairsResponse>` for DeleteKeyPairs the same way).
pub(super) fn success_root(spec: &ApiSpec) -> String {
    format!("{}Response", spec.api.action)
}

/// Whether the answer to this case is judged on the root rule when it succeeds: a request
/// signed with RPC signature 1.0 that asks for XML or for nothing (XML is the default).
pub(super) fn judges_root(case: &Case) -> bool {
    case.transport.signature == SignatureMethod::RpcHmacSha1
        && case.transport.format != ResponseFormat::Json
}

/// A success body in XML whose root element is not the documented one: a failure of the
/// family's `xml_root` rule. `None` when the family has no such rule, or the answer is not an
/// XML success.
pub(super) fn xml_root(spec: &ApiSpec, family: &FamilySpec, outcome: &Outcome) -> Option<Verdict> {
    let rule = rule_by_kind(spec, family, CheckKind::XmlRoot)?;
    if outcome.format != BodyFormat::Xml || outcome.result != OutcomeResult::Success {
        return None;
    }
    let want = success_root(spec);
    let got = outcome.xml_root.as_deref().unwrap_or_default();
    (got != want).then(|| {
        verdict(
            VerdictKind::Fail,
            Some(rule),
            format!("an XML body with root element <{want}>"),
            format!("root element <{got}>"),
            "the documents print a success body's root element as the action's name followed by Response; a client binding the documented name finds nothing under another",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{aliyun_rpc, HttpResponse};

    fn xml(body: &str) -> Outcome {
        aliyun_rpc::decode(&HttpResponse {
            status: 200,
            headers: vec![("Content-Type".into(), "text/xml".into())],
            body: body.as_bytes().to_vec(),
        })
    }

    #[test]
    fn the_documented_root_passes_and_a_near_one_fails() {
        let set = crate::spec::load_embedded().unwrap();
        let api = set
            .apis
            .iter()
            .find(|a| a.name == "alibaba-ecs/DetachKeyPair")
            .unwrap();
        let family = set.family(api.spec.api.family);
        let inner = "<RequestId>r</RequestId><TotalCount>0</TotalCount>";
        let good = xml(&format!(
            "<DetachKeyPairResponse>{inner}</DetachKeyPairResponse>"
        ));
        assert_eq!(good.xml_root.as_deref(), Some("DetachKeyPairResponse"));
        assert!(xml_root(&api.spec, family, &good).is_none());
        for near in [
            "DetachKeyPairsResponse",
            "Response",
            "detachKeyPairResponse",
        ] {
            let bad = xml(&format!("<{near}>{inner}</{near}>"));
            let v = xml_root(&api.spec, family, &bad).expect("a near root fails");
            assert_eq!(v.kind, VerdictKind::Fail);
            assert_eq!(v.rule.as_deref(), Some("xml-root"));
            assert!(v.actual.contains(near), "{v:?}");
        }
        // An error body is judged by the error envelope rule, not this one.
        let err = xml("<Error><RequestId>r</RequestId><Code>X</Code></Error>");
        assert!(xml_root(&api.spec, family, &err).is_none());
    }
}
