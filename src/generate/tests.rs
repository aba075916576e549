use std::collections::BTreeSet;
use std::path::PathBuf;

use proptest::strategy::{Strategy, ValueTree};

use super::*;
use crate::case::analysis::analyze;

/// The runner's shrink loop, driven synchronously by a plain predicate.
fn shrink(
    tree: &mut dyn ValueTree<Value = Case>,
    still_fails: impl Fn(&Case) -> bool,
    max_steps: usize,
) -> Case {
    let run = crate::run::minimise(tree, max_steps, async |c: &Case| {
        Ok::<_, std::convert::Infallible>(still_fails(c).then_some(()))
    });
    match futures::executor::block_on(run) {
        Ok(min) => min.case,
        Err(never) => match never {},
    }
}
use crate::case::Case;
use crate::spec::{load_files, Check, Product, SourceFile};
use crate::spec::{Method, SignatureMethod};

pub(crate) fn cvm_set() -> SpecSet {
    load_files(&[
        SourceFile {
            path: PathBuf::from("specs/families/tencent_api3.yaml"),
            text: include_str!("../../specs/families/tencent_api3.yaml").into(),
        },
        SourceFile {
            path: PathBuf::from("specs/tencent-cvm/AssociateInstancesKeyPairs.yaml"),
            text: include_str!("../../specs/tencent-cvm/AssociateInstancesKeyPairs.yaml").into(),
        },
    ])
    .expect("the CVM spec loads")
}

fn draw(s: &BoxedStrategy<Case>, seed: u64, n: usize) -> Vec<Case> {
    let mut runner = seeded_runner(seed);
    (0..n)
        .map(|_| s.new_tree(&mut runner).unwrap().current())
        .collect()
}

fn len(case: &Case, p: &str) -> Option<usize> {
    case.params.get(p).and_then(|v| v.as_array()).map(Vec::len)
}

#[test]
fn same_seed_gives_the_same_corpus_and_another_seed_another() {
    let set = cvm_set();
    let api = &set.apis[0];
    let w = World::default_world();
    let o = GenOptions::default();
    let a = corpus(&set, api, &w, 7, 40, &o);
    assert_eq!(a, corpus(&set, api, &w, 7, 40, &o));
    assert_ne!(a, corpus(&set, api, &w, 8, 40, &o));
}

#[test]
fn valid_cases_break_no_rule_and_span_sizes_flags_and_states() {
    let set = cvm_set();
    let api = &set.apis[0];
    let w = World::default_world();
    let fam = set.family(api.spec.api.family);
    let cases = draw(
        &valid_strategy(&set, api, &w, &GenOptions::default()),
        1,
        300,
    );
    let mut sizes = BTreeSet::new();
    let mut force = BTreeSet::new();
    for c in &cases {
        let a = analyze(&api.spec, fam, &w, c);
        assert!(
            a.broken.is_empty() && a.soft.is_empty(),
            "{c:?} breaks {a:?}"
        );
        assert!(c.violates.is_empty());
        sizes.insert(len(c, "InstanceIds").unwrap());
        force.insert(format!("{:?}", c.params.get("ForceStop")));
    }
    assert!(
        sizes.contains(&1) && sizes.contains(&99) && sizes.contains(&100),
        "{sizes:?}"
    );
    assert_eq!(
        force.len(),
        3,
        "ForceStop absent, true and false: {force:?}"
    );
    // A RUNNING instance appears only with ForceStop=true.
    assert!(cases
        .iter()
        .any(|c| c.situations.contains(&Situation::RunningWithForce)));
}

#[test]
fn each_list_reaches_its_size_boundaries_and_both_reach_the_limit_together() {
    let set = cvm_set();
    let api = &set.apis[0];
    let w = World::default_world();
    let cases = draw(
        &valid_strategy(&set, api, &w, &GenOptions::default()),
        2,
        400,
    );
    let sizes: Vec<(usize, usize)> = cases
        .iter()
        .map(|c| (len(c, "InstanceIds").unwrap(), len(c, "KeyIds").unwrap()))
        .collect();
    for (what, of) in [("InstanceIds", 0), ("KeyIds", 1)] {
        let seen: BTreeSet<usize> = sizes
            .iter()
            .map(|s| if of == 0 { s.0 } else { s.1 })
            .collect();
        for want in [1, 2, 50, 99, 100] {
            if want == 50 {
                assert!(seen.iter().any(|n| (3..99).contains(n)), "{what}: {seen:?}");
            } else {
                assert!(
                    seen.contains(&want),
                    "{what} never has {want} items: {seen:?}"
                );
            }
        }
    }
    assert!(
        sizes.contains(&(100, 100)),
        "the corner: both lists at the limit"
    );
    // Long lists of both at once are the exception: a bind gives every named instance every
    // named key, and later cases observe all of them.
    let both_long = sizes.iter().filter(|(i, k)| *i > 3 && *k > 3).count();
    let corner = sizes.iter().filter(|s| **s == (100, 100)).count();
    assert_eq!(both_long, corner, "long lists together only at the corner");
    assert!(corner * 5 < cases.len(), "{corner} of {}", cases.len());
}

#[test]
fn every_parameter_rule_of_the_cvm_spec_can_be_broken() {
    let set = cvm_set();
    let api = &set.apis[0];
    let ctx = Ctx::new(&set, api, &World::default_world(), &GenOptions::default());
    let with_param: Vec<String> = api
        .spec
        .rules
        .iter()
        .filter(|r| r.check.param().is_some())
        .map(|r| r.id.clone())
        // Then the family's rule on parameters the table does not define.
        .chain(["parameter-known".to_string()])
        .collect();
    assert_eq!(ctx.breakable_rules(), with_param);
}

#[test]
fn each_invalid_case_breaks_exactly_the_intended_rule() {
    let set = cvm_set();
    let api = &set.apis[0];
    let w = World::default_world();
    let fam = set.family(api.spec.api.family);
    let o = GenOptions::default();
    let ctx = Ctx::new(&set, api, &w, &o);
    for rule in ctx.breakable_rules() {
        let s = rule_strategy(&set, api, &w, &o, &rule).unwrap();
        for c in draw(&s, 3, 40) {
            let a = analyze(&api.spec, fam, &w, &c);
            assert_eq!(c.violates.first(), Some(&rule), "{c:?}");
            // Only 100 keys exist: 101 keys also break key-exists, and the case says so.
            if rule == "key-ids-limit" {
                assert_eq!(c.violates, a.broken, "{c:?}");
            } else {
                assert_eq!(c.violates, vec![rule.clone()], "{c:?}");
                assert_eq!(a.broken, vec![rule.clone()], "{rule}: {c:?}");
            }
        }
    }
}

#[test]
fn nonexistent_ids_never_exist_in_the_world_and_match_the_pattern() {
    let set = cvm_set();
    let api = &set.apis[0];
    let w = World::default_world();
    let o = GenOptions::default();
    let re = regex::Regex::new("^ins-[a-z0-9]{8}$").unwrap();
    let s = rule_strategy(&set, api, &w, &o, "instance-exists").unwrap();
    for c in draw(&s, 5, 100) {
        let ids: Vec<&str> = c.params["InstanceIds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let missing: Vec<&&str> = ids
            .iter()
            .filter(|i| w.instance(Product::Cvm, i).is_none())
            .collect();
        assert_eq!(missing.len(), 1, "{ids:?}");
        assert!(re.is_match(missing[0]));
    }
}

#[test]
fn a_limit_case_shrinks_to_exactly_limit_plus_one_items() {
    let set = cvm_set();
    let api = &set.apis[0];
    let w = World::default_world();
    let s = rule_strategy(&set, api, &w, &GenOptions::default(), "instance-ids-limit").unwrap();
    let mut runner = seeded_runner(11);
    for _ in 0..10 {
        let mut tree = s.new_tree(&mut runner).unwrap();
        let violates = |c: &Case| len(c, "InstanceIds").unwrap_or(0) > 100;
        assert!(violates(&tree.current()));
        let best = shrink(&mut tree, violates, 10_000);
        assert_eq!(len(&best, "InstanceIds"), Some(101));
    }
    // Through the full strategy too: shrinking keeps a case that still breaks the limit.
    let full = case_strategy(&set, api, &w, &GenOptions::default());
    let mut runner = seeded_runner(12);
    let mut found = 0;
    while found < 3 {
        let mut tree = full.new_tree(&mut runner).unwrap();
        if tree.current().violates.first().map(String::as_str) != Some("instance-ids-limit") {
            continue;
        }
        found += 1;
        let best = shrink(
            &mut tree,
            |c| len(c, "InstanceIds").unwrap_or(0) > 100,
            10_000,
        );
        assert_eq!(len(&best, "InstanceIds"), Some(101));
    }
}

#[test]
fn the_corpus_covers_transports_auth_faults_and_situations_the_spec_allows() {
    let set = cvm_set();
    let api = &set.apis[0];
    let w = World::default_world();
    let cases = corpus(&set, api, &w, 2, 600, &GenOptions::default());
    let transports: BTreeSet<(String, String)> = cases
        .iter()
        .map(|c| {
            (
                format!("{:?}", c.transport.signature),
                format!("{:?}", c.transport.method),
            )
        })
        .collect();
    assert_eq!(transports.len(), 6, "{transports:?}");
    let tc3_post = cases
        .iter()
        .filter(|c| {
            c.transport.signature == SignatureMethod::Tc3HmacSha256
                && c.transport.method == Method::Post
        })
        .count();
    assert!(
        tc3_post * 3 > cases.len(),
        "TC3 POST is the most common: {tc3_post}"
    );
    let faults: BTreeSet<String> = cases.iter().map(|c| format!("{:?}", c.auth)).collect();
    assert!(
        faults.contains("WrongSecret") && faults.contains("ExpiredTimestamp"),
        "{faults:?}"
    );
    assert!(!faults.contains("ReusedNonce"), "API 3.0 has no nonce rule");
    let listed: Vec<Situation> = api.spec.unspecified.iter().map(|u| u.situation).collect();
    for s in &listed {
        assert!(
            cases.iter().any(|c| c.situations.contains(s)),
            "{s:?} never generated"
        );
    }
    assert!(cases
        .iter()
        .all(|c| c.situations.iter().all(|s| listed.contains(s))));
    assert!(cases.iter().any(|c| c.transport.index_base == 1));
    assert!(cases
        .iter()
        .filter(|c| c.transport.index_base == 1)
        .all(
            |c| !(c.transport.signature == SignatureMethod::Tc3HmacSha256
                && c.transport.method == Method::Post)
        ));
}

#[test]
fn several_violations_at_once_when_asked() {
    let set = cvm_set();
    let api = &set.apis[0];
    let w = World::default_world();
    let o = GenOptions {
        violations: 3,
        ..GenOptions::default()
    };
    let cases = corpus(&set, api, &w, 4, 2000, &o);
    let most = cases.iter().map(|c| c.violates.len()).max();
    assert!(most >= Some(3), "most rules broken at once: {most:?}");
    let _ = Check::BindsKeys;
}

/// An unbind API with a scalar key parameter (like API 2.0's `keyId`), built from the CVM spec.
fn unbind_api(set: &SpecSet) -> LoadedApi {
    use crate::spec::{EffectKind, ParamType, Unspecified};
    let mut api = set.apis[0].clone();
    api.spec.effect.kind = EffectKind::Unbind;
    for p in &mut api.spec.parameters {
        if p.name == "KeyIds" {
            p.kind = ParamType::String;
            p.max_items = None;
        }
    }
    api.spec.rules.retain(|r| {
        !matches!(&r.check, Check::MaxItems { param, .. } | Check::NonEmpty { param } if param == "KeyIds")
    });
    for r in &mut api.spec.rules {
        if r.check == Check::BindsKeys {
            r.check = Check::UnbindsKeys;
        }
    }
    let src = api.spec.batch.source.clone();
    api.spec.unspecified.push(Unspecified {
        id: "not-bound".into(),
        situation: Situation::UnbindNotBound,
        description: "d".into(),
        emulator: "e".into(),
        oracle: "o".into(),
        sources: vec![src],
        variants: vec!["unbind-not-bound-rejected".into()],
    });
    api
}

#[test]
fn unbind_cases_name_bound_keys_and_the_not_bound_situation_is_generated() {
    let set = cvm_set();
    let api = unbind_api(&set);
    let w = World::default_world();
    let fam = set.family(api.spec.api.family);
    for c in draw(
        &valid_strategy(&set, &api, &w, &GenOptions::default()),
        9,
        100,
    ) {
        let key = c.params["KeyIds"]
            .as_str()
            .expect("a scalar key")
            .to_string();
        let a = analyze(&api.spec, fam, &w, &c);
        assert!(
            a.broken.is_empty() && !c.situations.contains(&Situation::UnbindNotBound),
            "{c:?}"
        );
        let exp = crate::oracle::expect(&set, &api, &w, &c);
        assert!(exp.after.iter().all(|(_, keys)| !keys.contains(&key)));
    }
    let cases = corpus(&set, &api, &w, 9, 300, &GenOptions::default());
    assert!(cases
        .iter()
        .any(|c| c.situations.contains(&Situation::UnbindNotBound)));
    for rule in Ctx::new(&set, &api, &w, &GenOptions::default()).breakable_rules() {
        let s = rule_strategy(&set, &api, &w, &GenOptions::default(), &rule).unwrap();
        for c in draw(&s, 4, 20) {
            assert_eq!(c.violates, vec![rule.clone()], "{c:?}");
        }
    }
}

#[test]
fn the_stream_gives_the_trees_in_order() {
    let set = cvm_set();
    let world = World::default_world();
    let opts = GenOptions::default();
    for api in &set.apis {
        let all: Vec<Case> = corpus(&set, api, &world, 42, 50, &opts);
        let streamed: Vec<Case> = tree_stream(&set, api, &world, 42, &opts)
            .take(50)
            .map(|t| t.current())
            .collect();
        assert_eq!(all, streamed, "{}", api.name);
    }
}

/// A key pair name meant not to exist is not guessable from the world's own names: a target
/// holding more key pairs than the world lists (`kp-linux-11`) must not happen to have it.
#[test]
fn nonexistent_names_without_a_pattern_are_long_and_unguessable() {
    let set = crate::spec::load_embedded().unwrap();
    let api = set.find("alibaba-ecs/DetachKeyPair").unwrap();
    let w = World::default_world();
    let s = rule_strategy(&set, api, &w, &GenOptions::default(), "key-pair-exists").unwrap();
    let names: std::collections::BTreeSet<String> = draw(&s, 5, 50)
        .iter()
        .filter_map(|c| c.params.get("KeyPairName")?.as_str().map(String::from))
        .filter(|n| !w.key_pairs.iter().any(|k| &k.id == n))
        .collect();
    assert!(names.len() > 10, "{names:?}");
    for n in &names {
        let suffix = n.rsplit('-').next().unwrap();
        assert!(suffix.len() >= 16, "{n} follows the world's naming");
    }
}

/// Each wire form a spec lists is generated, on the transports it applies to, and no form a spec
/// does not list ever is.
#[test]
fn the_documents_wire_forms_are_generated_where_they_are_listed_and_only_there() {
    use crate::spec::Freedom;
    let set = crate::spec::load_embedded().unwrap();
    let w = World::default_world();
    for api in &set.apis {
        let cases = corpus(&set, api, &w, 4, 400, &GenOptions::default());
        let listed = |f: Freedom| api.spec.wire_form(f).is_some();
        let json_body = |c: &Case| {
            c.transport.signature == SignatureMethod::Tc3HmacSha256
                && c.transport.method == Method::Post
        };
        for (freedom, used) in [
            (
                Freedom::ActionSpelling,
                cases
                    .iter()
                    .filter(|c| c.transport.forms.action_spelling)
                    .count(),
            ),
            (
                Freedom::BooleanSpelling,
                cases
                    .iter()
                    .filter(|c| c.transport.forms.upper_booleans)
                    .count(),
            ),
            (
                Freedom::JsonListSpacing,
                cases
                    .iter()
                    .filter(|c| c.transport.forms.spaced_json_lists)
                    .count(),
            ),
        ] {
            assert_eq!(
                listed(freedom),
                used > 0,
                "{} {freedom:?}: {used}",
                api.name
            );
        }
        assert!(
            cases
                .iter()
                .filter(|c| c.transport.forms.upper_booleans || c.transport.index_base == 1)
                .all(|c| !json_body(c)),
            "{}: forms of forms only",
            api.name
        );
    }
}

/// Every example of every shipped spec becomes a valid case in the default world, keeping the
/// forms the document prints.
#[test]
fn every_example_is_a_valid_case_in_the_documents_forms() {
    let set = crate::spec::load_embedded().unwrap();
    let w = World::default_world();
    let mut seen = Vec::new();
    for api in &set.apis {
        for case in crate::generate::example_cases(&set, api, &w) {
            let case = case.unwrap_or_else(|e| panic!("{}: {e}", api.name));
            let a = crate::case::analysis::analyze(
                &api.spec,
                set.family(api.spec.api.family),
                &w,
                &case,
            );
            assert!(
                a.broken.is_empty() && a.situations.is_empty(),
                "{case:?}: {a:?}"
            );
            seen.push((api.name.clone(), case));
        }
    }
    assert_eq!(seen.len(), 6, "one case per printed example");
    let by = |name: &str| {
        seen.iter()
            .find(|(a, _)| a.contains(name))
            .unwrap()
            .1
            .clone()
    };
    assert!(by("UnBindInstanceKey").transport.forms.action_spelling);
    assert_eq!(by("AssociateInstancesKeyPairs").transport.index_base, 1);
    assert_eq!(by("tencent-cvm/Disassociate").transport.index_base, 1);
    assert_eq!(by("UnBindInstanceKey").transport.index_base, 0);
    assert!(by("alibaba-ecs").transport.forms.spaced_json_lists);
    assert_eq!(by("tencent-ecm").transport.method, Method::Post);
    assert_eq!(by("tencent-cvm/Assoc").transport.method, Method::Get);
}
