//! The plan of a run: a case that numbers its list items from 1 sends them so.

use std::time::Duration;

use apiconform::protocol::{self, HttpRequest};
use apiconform::run::{self, Planned, RunOptions, Target};
use apiconform::spec::{self, SpecSet};
use apiconform::world::World;

fn set() -> SpecSet {
    spec::load_embedded().expect("embedded specs load")
}

/// Every request of the plan, each as often as the run sends it.
fn planned(set: &SpecSet, world: &World, target: &Target, opts: &RunOptions) -> Vec<Planned> {
    let mut all = Vec::new();
    run::dry_run(set, world, target, opts, |p| {
        all.push(p);
        true
    })
    .expect("the plan signs");
    all
}

/// The names of the `Name.N` items of a request.
fn item_names(req: &HttpRequest) -> Vec<String> {
    protocol::form_pairs(req)
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| {
            k.rsplit_once('.')
                .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect()
}

#[test]
fn one_based_cases_number_their_items_from_one_on_the_wire() {
    let set = set();
    let target = Target::new("http://127.0.0.1:9", Duration::from_secs(1)).unwrap();
    let opts = RunOptions {
        cases: 300,
        ..Default::default()
    };
    let (mut one_based, mut zero_based) = (0, 0);
    for p in planned(&set, &World::default_world(), &target, &opts) {
        let names = item_names(&p.request);
        if names.is_empty() {
            continue;
        }
        let from_zero = names.iter().any(|n| n.ends_with(".0"));
        if p.case.transport.index_base == 1 {
            one_based += 1;
            assert!(!from_zero, "{} case {}: {names:?}", p.api, p.index);
            assert!(names.iter().any(|n| n.ends_with(".1")), "{names:?}");
        } else {
            zero_based += 1;
            assert!(from_zero, "{} case {}: {names:?}", p.api, p.index);
        }
    }
    assert!(
        one_based >= 5,
        "the one-based situation is drawn: {one_based}"
    );
    assert!(zero_based > one_based, "{zero_based} vs {one_based}");
}
