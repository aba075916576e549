//! The runner's model of the target's world: what it believes each instance holds, where each
//! resource sits, the part of it a case can reach, and how it moves forward — by prediction (the
//! plan of a run) or by observation (the run itself).

use std::collections::{HashMap, HashSet};

use crate::case::{AuthFault, Case};
use crate::oracle;
use crate::spec::{InstanceState, LoadedApi, Product, SpecSet};
use crate::world::{IdIndex, Lookup, World};

/// Where the resources with an id sit in the world's lists.
#[derive(Default)]
struct At {
    instances: Vec<usize>,
    key_pairs: Vec<usize>,
}

/// A world with its resources indexed by id. The runner never adds or removes resources, so
/// positions hold for the whole run, and for every world derived from the one indexed.
pub(super) struct Model {
    /// The world as the model believes it.
    pub(super) world: World,
    positions: HashMap<String, At>,
    /// The oracle's index of the same positions, made when a plan first predicts.
    index: Option<IdIndex>,
    /// Instances (by position) whose state the documents left open after a call that
    /// succeeded (a forced call on a RUNNING instance may leave it STOPPED or start it again):
    /// the model keeps the state it had until an observation says which.
    state_unknown: HashSet<usize>,
}

impl Model {
    pub(super) fn new(world: World) -> Model {
        let mut positions: HashMap<String, At> = HashMap::new();
        for (n, i) in world.instances.iter().enumerate() {
            positions.entry(i.id.clone()).or_default().instances.push(n);
        }
        for (n, k) in world.key_pairs.iter().enumerate() {
            positions.entry(k.id.clone()).or_default().key_pairs.push(n);
        }
        Model {
            world,
            positions,
            index: None,
            state_unknown: HashSet::new(),
        }
    }

    fn at<'a>(&'a self, product: Product, id: &'a str) -> impl Iterator<Item = usize> + 'a {
        self.positions
            .get(id)
            .map_or(&[][..], |p| &p.instances)
            .iter()
            .copied()
            .filter(move |&at| {
                let i = &self.world.instances[at];
                i.product == product && i.id == id
            })
    }

    /// Sets the state of every instance of `product` with this id, as observed: it is known
    /// again.
    pub(super) fn set_state(&mut self, product: Product, id: &str, state: InstanceState) {
        let at: Vec<usize> = self.at(product, id).collect();
        for n in at {
            self.world.instances[n].state = state;
            self.state_unknown.remove(&n);
        }
    }

    /// Marks the state of these instances unknown until observed.
    pub(super) fn forget_state(&mut self, product: Product, ids: &[String]) {
        let at: Vec<usize> = ids.iter().flat_map(|id| self.at(product, id)).collect();
        self.state_unknown.extend(at);
    }

    /// Which of these instances have a state the model does not know.
    pub(super) fn state_unknown(&self, product: Product, ids: &[String]) -> Vec<String> {
        ids.iter()
            .filter(|id| {
                self.at(product, id)
                    .any(|n| self.state_unknown.contains(&n))
            })
            .cloned()
            .collect()
    }

    /// The part of the world a case can reach: the instances and key pairs whose ids occur
    /// among its parameter values (scalars, list items, items of JSON lists held in strings), in
    /// world order. The oracle only ever looks resources up by ids taken from the case, so
    /// judging against this part is the same as judging against the whole world, without
    /// copying ~500 resources per case.
    pub(super) fn reach(&self, case: &Case) -> World {
        fn strings(v: &serde_json::Value, out: &mut dyn FnMut(&str)) {
            match v {
                serde_json::Value::String(s) => {
                    out(s);
                    if s.trim_start().starts_with('[') {
                        if let Ok(inner) = serde_json::from_str::<serde_json::Value>(s) {
                            strings(&inner, out);
                        }
                    }
                }
                serde_json::Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
                serde_json::Value::Object(o) => o.values().for_each(|x| strings(x, out)),
                _ => {}
            }
        }
        let mut instances = Vec::new();
        let mut key_pairs = Vec::new();
        let mut named = |s: &str| {
            if let Some(p) = self.positions.get(s) {
                instances.extend_from_slice(&p.instances);
                key_pairs.extend_from_slice(&p.key_pairs);
            }
        };
        case.params.values().for_each(|v| strings(v, &mut named));
        for v in [&mut instances, &mut key_pairs] {
            v.sort_unstable();
            v.dedup();
        }
        World {
            instances: instances
                .into_iter()
                .map(|at| self.world.instances[at].clone())
                .collect(),
            key_pairs: key_pairs
                .into_iter()
                .map(|at| self.world.key_pairs[at].clone())
                .collect(),
        }
    }

    /// Sets the keys of every instance of `product` with this id (mostly unchanged, as after
    /// every failed call: no copy then).
    pub(super) fn set_keys(&mut self, product: Product, id: &str, keys: &[String]) {
        for &at in self.positions.get(id).map_or(&[][..], |p| &p.instances) {
            let inst = &mut self.world.instances[at];
            if inst.product == product && inst.id == id && inst.keys != keys {
                inst.keys = keys.to_vec();
            }
        }
    }

    /// Whether the documents leave the whole outcome of `case` open in the world the model holds
    /// now (a valid unbind of a key earlier cases already unbound, a duplicate id), or — unless
    /// the run is `strict` — whether every rule it breaks is a reading of ours (an id format
    /// read off the examples): such a case cannot fail, so the plan spends only a small share of
    /// a run on them.
    ///
    /// `Some` when it cannot fail, with the judgement rules it breaks (empty for an open
    /// situation), so the plan can still keep the first case of each such rule.
    pub(super) fn leaves_open(
        &mut self,
        set: &SpecSet,
        api: &LoadedApi,
        case: &Case,
        strict: bool,
    ) -> Option<Vec<String>> {
        let index = self.index.get_or_insert_with(|| IdIndex::new(&self.world));
        let exp = oracle::expect_in(set, api, &Lookup::with_index(&self.world, index), case);
        if exp.open {
            return Some(Vec::new());
        }
        (!strict && oracle::rests_on_judgement(set, api, &exp)).then_some(exp.broken)
    }

    /// Moves the model forward by what a case is meant to do, without sending it.
    ///
    /// The effect is the documented one of a case that may succeed here (a replayed nonce's
    /// first send is an ordinary call) on every instance it names in its region; nothing for
    /// the rest. Where the outcome is open (a target may refuse the case or apply it), only what
    /// holds either way is kept: a key stays bound only if it is bound whichever the target
    /// chose, so a later case the plan counts as decidable is decidable against every target.
    /// This is how a run plans: each API of a product lane draws its cases from the world the
    /// earlier APIs are predicted to leave, so the same seed gives the same requests against
    /// every target (and `--dry-run` shows exactly what a run sends). Judging never reads this
    /// prediction: verdicts come from the model the run reconciles with what it observes.
    pub(super) fn predict(&mut self, set: &SpecSet, api: &LoadedApi, case: &Case) {
        // The whole world through an index built once: no copy of the reachable part.
        let index = self.index.get_or_insert_with(|| IdIndex::new(&self.world));
        let look = Lookup::with_index(&self.world, index);
        let sent_plain;
        let effective = match case.auth {
            AuthFault::None => case,
            AuthFault::ReusedNonce => {
                sent_plain = Case {
                    auth: AuthFault::None,
                    ..case.clone()
                };
                &sent_plain
            }
            _ => return,
        };
        let exp = oracle::expect_in(set, api, &look, effective);
        if !exp.success_ok {
            return;
        }
        let effect = oracle::effect(&api.spec, &look, effective, |_| true);
        for (at, _, keys) in effect {
            let inst = &mut self.world.instances[at];
            if exp.open {
                inst.keys.retain(|k| keys.contains(k));
            } else {
                inst.keys = keys;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::{self, GenOptions};

    #[test]
    fn the_reachable_part_judges_like_the_whole_world() {
        let set = crate::spec::load_embedded().expect("embedded specs load");
        let world = World::default_world();
        let model = Model::new(world.clone());
        for (i, api) in set.apis.iter().enumerate() {
            let opts = GenOptions::default();
            for case in generate::corpus(&set, api, &world, i as u64, 300, &opts) {
                assert_eq!(
                    oracle::expect(&set, api, &model.reach(&case), &case),
                    oracle::expect(&set, api, &world, &case),
                    "{}: {case:?}",
                    api.name
                );
            }
        }
    }

    /// The plan's prediction agrees with the oracle on every case it moves the model for: a
    /// case the generator made valid may succeed in the world the plan holds, and leaves each
    /// instance it names with the keys the oracle expects — or, where the documents leave the
    /// outcome open, with only the keys bound whichever way the target chose.
    #[test]
    fn a_predicted_bind_replaces_the_keys_and_an_error_changes_nothing() {
        let set = crate::spec::load_embedded().expect("embedded specs load");
        let api = set
            .find("tencent-cvm/AssociateInstancesKeyPairs")
            .expect("the CVM bind spec");
        let world = World::default_world();
        let mut model = Model::new(world.clone());
        let (mut changed, mut open) = (0, 0);
        for case in generate::corpus(&set, api, &world, 3, 200, &GenOptions::default()) {
            let before = model.world.clone();
            let exp = oracle::expect(&set, api, &before, &case);
            model.predict(&set, api, &case);
            let meant_valid = case.violates.is_empty()
                && matches!(case.auth, AuthFault::None | AuthFault::ReusedNonce);
            if meant_valid {
                assert!(exp.success_ok, "{case:?}");
                for (id, keys) in &exp.after {
                    let inst = model
                        .world
                        .instances
                        .iter()
                        .find(|i| &i.id == id && i.region == case.region)
                        .expect("the oracle names instances of the world");
                    if exp.open {
                        let was = &before
                            .instances
                            .iter()
                            .find(|i| &i.id == id && i.region == case.region)
                            .expect("the same instance before")
                            .keys;
                        let both: Vec<&String> = was.iter().filter(|k| keys.contains(k)).collect();
                        assert_eq!(inst.keys.iter().collect::<Vec<_>>(), both, "{case:?}");
                        open += 1;
                    } else {
                        assert_eq!(&inst.keys, keys, "{case:?}");
                    }
                }
                changed += usize::from(before != model.world);
            } else {
                assert_eq!(before, model.world, "an error changes nothing: {case:?}");
            }
        }
        assert!(changed > 20, "valid binds change the model: {changed}");
        assert!(open > 0, "some valid binds are open: {open}");
    }
}
