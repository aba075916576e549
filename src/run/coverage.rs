//! Honest coverage: which rules of an API no judged case exercised, and why.
//!
//! The dispatcher records, per rule, the cases that would have exercised it but were held back
//! or only throttled ([`Withheld`]); the run adds what it knows of the world and of how it
//! ended ([`Facts`], [`Ending`]), and [`explain`] turns that into the report's
//! `rules_not_exercised`. A run never says "every check passed" while this list is not empty.

use std::collections::{BTreeMap, BTreeSet};

use super::exchange::NotSent;
use super::{ApiStats, NotExercised, Why, WhyKind};
use crate::spec::{Check, LoadedApi, Product, SpecSet};
use crate::world::World;

/// Per rule, the cases that would have exercised it and were not judged, by kind and reason.
#[derive(Debug, Default)]
pub(super) struct Withheld {
    by_rule: BTreeMap<String, BTreeMap<(WhyKind, String), usize>>,
}

impl Withheld {
    /// A case not judged: it would have exercised `rules`; `why` is the runner's reason for
    /// not sending it, `None` when it was sent and only throttled.
    pub(super) fn add(&mut self, rules: &[String], why: Option<NotSent>) {
        let key = match why {
            None => (WhyKind::Throttled, String::new()),
            Some(w @ NotSent::MayStopRunning) => (WhyKind::ForceStop, w.why().into()),
            Some(w @ (NotSent::UnlistedHeld | NotSent::PreReadRefused)) => {
                (WhyKind::NotSent, w.why().into())
            }
        };
        for rule in rules {
            *self
                .by_rule
                .entry(rule.clone())
                .or_default()
                .entry(key.clone())
                .or_default() += 1;
        }
    }
}

/// What the run knows about one API's cases beyond its counters.
#[derive(Debug, Default)]
pub(super) struct Facts {
    /// The API's product.
    pub(super) product: Option<Product>,
    /// Instances of the product the world given to the run lists.
    pub(super) listed: usize,
    /// Of them, those the API's cases could name (the guard may keep an API off them).
    pub(super) usable: usize,
    /// Cases held back or only throttled.
    pub(super) withheld: Withheld,
    /// Whether the run was stopping when the API's cases ended (a budget, Ctrl-C).
    pub(super) cut_short: bool,
    /// The rules only a case naming a listed instance can exercise (see [`needs_instance`]).
    pub(super) need_instance: BTreeSet<String>,
}

impl Facts {
    /// The facts of an API whose cases were drawn from `start`, in a run given `world`.
    pub(super) fn new(set: &SpecSet, api: &LoadedApi, world: &World, start: &World) -> Facts {
        let product = api.spec.instance_product();
        let count = |w: &World| w.instances.iter().filter(|i| i.product == product).count();
        let family = set.family(api.spec.api.family);
        Facts {
            product: Some(product),
            listed: count(world),
            usable: count(start),
            need_instance: api
                .spec
                .rules
                .iter()
                .chain(&family.rules)
                .filter(|r| needs_instance(api, &r.check))
                .map(|r| r.id.clone())
                .collect(),
            ..Facts::default()
        }
    }
}

/// Whether only a case naming an instance the world lists can exercise a rule with this check:
/// what valid cases exercise (the success shape, per-item results, the effect), and the rules
/// about the instances named (their number, existence, OS, state), which the generator breaks
/// on batches built from listed instances. The rest (parameters missing, malformed, signing)
/// need no instance.
fn needs_instance(api: &LoadedApi, check: &Check) -> bool {
    match check {
        Check::BindsKeys | Check::UnbindsKeys | Check::SuccessShape | Check::PerItemConsistency => {
            true
        }
        Check::MaxItems { param, .. }
        | Check::Exists { param }
        | Check::InstanceOs { param, .. }
        | Check::InstanceState { param, .. } => *param == api.spec.effect.instances,
        Check::Required { .. }
        | Check::NonEmpty { .. }
        | Check::Pattern { .. }
        | Check::ValueType { .. }
        | Check::ErrorShape
        | Check::ResponseFormat
        | Check::XmlRoot
        | Check::RequestIdUnique
        | Check::VersionKnown
        | Check::Signature
        | Check::SecretIdKnown
        | Check::TimestampWindow { .. }
        | Check::NonceUnique
        | Check::DocumentedCode
        | Check::WireForms
        | Check::KnownParameters => false,
    }
}

/// How the run ended, as far as coverage is concerned.
pub(super) struct Ending<'a> {
    /// What stopped the run early: a budget's words, or `Ctrl-C`.
    pub(super) stopped: Option<&'a str>,
    /// `(index, count)` from 0, under `--shard`.
    pub(super) shard: Option<(usize, usize)>,
}

/// Why no instance was there for an API's cases, if none was: a world listing none of its
/// product, or the guard keeping an irreversible API off those it lists. `None` when the API's
/// cases had instances to name.
pub(super) fn no_instance(product: Product, listed: usize, usable: usize) -> Option<Why> {
    let name = product.as_str().to_uppercase();
    match (listed, usable) {
        (_, 1..) => None,
        (0, _) => Some(Why {
            kind: WhyKind::NoInstance,
            detail: format!(
                "the world lists no {name} instance, so no valid case could be made (list one in the world file: docs/world.md)"
            ),
        }),
        (n, _) => Some(Why {
            kind: WhyKind::Irreversible,
            detail: format!(
                "its changes cannot be undone, so its cases keep off the {n} listed {name} instance(s) (--allow-irreversible lets them)"
            ),
        }),
    }
}

/// The rules of `stats.rules_total` no judged case exercised, each with its reasons.
pub(super) fn explain(stats: &ApiStats, facts: &Facts, ending: &Ending) -> Vec<NotExercised> {
    let none = BTreeMap::new();
    stats
        .rules_total
        .iter()
        .filter(|r| !stats.rules_exercised.contains(*r))
        .map(|rule| {
            let mut reasons = Vec::new();
            let no = facts
                .product
                .and_then(|p| no_instance(p, facts.listed, facts.usable));
            if let (Some(why), true) = (no, facts.need_instance.contains(rule)) {
                reasons.push(why);
            }
            for ((kind, why), n) in facts.withheld.by_rule.get(rule).unwrap_or(&none) {
                let detail = match kind {
                    WhyKind::Throttled => format!(
                        "{n} case(s) that would exercise it got only throttling answers (lower --rate or --jobs)"
                    ),
                    _ => format!("{n} case(s) that would exercise it were not sent: each {why}"),
                };
                reasons.push(Why {
                    kind: *kind,
                    detail,
                });
            }
            if let (true, Some(stopped)) = (facts.cut_short, ending.stopped) {
                reasons.push(Why {
                    kind: WhyKind::Stopped,
                    detail: format!(
                        "the run stopped ({stopped}) after {} of the API's cases",
                        stats.cases
                    ),
                });
            }
            if let Some((i, n)) = ending.shard {
                reasons.push(Why {
                    kind: WhyKind::OtherShard,
                    detail: format!(
                        "this is shard {}/{n}: another shard's cases may exercise it (merge the shards' reports with `apiconform report merge`)",
                        i + 1
                    ),
                });
            }
            if reasons.is_empty() {
                reasons.push(not_drawn(stats.cases));
            }
            NotExercised {
                rule: rule.clone(),
                reasons,
            }
        })
        .collect()
}

/// The reason left when nothing else explains an unexercised rule.
pub(crate) fn not_drawn(cases: usize) -> Why {
    Why {
        kind: WhyKind::NotDrawn,
        detail: format!(
            "none of the {cases} case(s) judged exercised it (raise --cases, or try another --seed)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(exercised: &[&str]) -> ApiStats {
        ApiStats {
            api: "x".into(),
            cases: 12,
            rules_exercised: exercised.iter().map(|r| r.to_string()).collect(),
            rules_total: ["a", "b", "c"].iter().map(|r| r.to_string()).collect(),
            ..Default::default()
        }
    }

    const WHOLE: Ending = Ending {
        stopped: None,
        shard: None,
    };

    /// Every unexercised rule is listed with at least one reason; the exercised ones are not.
    #[test]
    fn every_unexercised_rule_has_a_reason() {
        let facts = Facts {
            product: Some(Product::Ecm),
            listed: 1,
            usable: 1,
            ..Facts::default()
        };
        let out = explain(&stats(&["a"]), &facts, &WHOLE);
        let rules: Vec<&str> = out.iter().map(|n| n.rule.as_str()).collect();
        assert_eq!(rules, ["b", "c"]);
        assert!(out.iter().all(|n| n.reasons.len() == 1));
        assert_eq!(out[0].reasons[0].kind, WhyKind::NotDrawn);
        assert!(explain(&stats(&["a", "b", "c"]), &facts, &WHOLE).is_empty());
    }

    /// No instance, instances kept off, cases held back or throttled, a stop and a shard are
    /// each said, the most specific first.
    #[test]
    fn each_reason_is_said() {
        let mut facts = Facts {
            product: Some(Product::Ecs),
            listed: 0,
            usable: 0,
            cut_short: true,
            need_instance: ["b".to_string()].into(),
            ..Facts::default()
        };
        facts
            .withheld
            .add(&["b".into()], Some(NotSent::MayStopRunning));
        facts.withheld.add(&["b".into()], None);
        facts.withheld.add(&["b".into()], None);
        let ending = Ending {
            stopped: Some("--max-requests 10"),
            shard: Some((1, 3)),
        };
        let out = explain(&stats(&["a", "c"]), &facts, &ending);
        let kinds: Vec<WhyKind> = out[0].reasons.iter().map(|w| w.kind).collect();
        assert_eq!(
            kinds,
            [
                WhyKind::NoInstance,
                WhyKind::ForceStop,
                WhyKind::Throttled,
                WhyKind::Stopped,
                WhyKind::OtherShard
            ]
        );
        let line = out[0].reasons_line();
        assert!(line.contains("no ECS instance"), "{line}");
        assert!(line.contains("2 case(s)"), "{line}");
        assert!(line.contains("--allow-force-stop"), "{line}");
        assert!(line.contains("shard 2/3"), "{line}");
        facts.listed = 2;
        let out = explain(&stats(&["a", "c"]), &facts, &WHOLE);
        assert_eq!(out[0].reasons[0].kind, WhyKind::Irreversible);
        assert!(out[0].reasons[0].detail.contains("--allow-irreversible"));
        // A rule no instance is needed for is not blamed on the world.
        let out = explain(&stats(&["a", "b"]), &facts, &WHOLE);
        assert_eq!(out[0].reasons[0].kind, WhyKind::NotDrawn);
    }

    /// The rules blamed on a world without instances are those only a listed instance can
    /// exercise: the effect and success shape, and the checks on the instances named.
    #[test]
    fn rules_needing_an_instance_are_the_valid_cases_and_the_instances_ones() {
        let set = crate::spec::load_embedded().unwrap();
        let api = set
            .find("tencent-ecm/DisassociateInstancesKeyPairs")
            .unwrap();
        let facts = Facts::new(&set, api, &World::default(), &World::default());
        for rule in [
            "success-shape",
            "unbinds-keys",
            "instance-exists",
            "instance-linux",
            "instance-stopped",
        ] {
            assert!(facts.need_instance.contains(rule), "{rule}");
        }
        for rule in ["secret-id-known", "instance-ids-required", "key-exists"] {
            assert!(!facts.need_instance.contains(rule), "{rule}");
        }
    }
}
