//! Generators of cases built from a spec: proptest strategies that produce valid requests across
//! the whole space the documents allow, invalid requests that break chosen rules (recording
//! which), the situations the documents leave open, and authentication faults.
//!
//! Everything is driven by the spec data and the world; nothing here knows an API by name.
//!
//! # How the runner uses it
//! 1. `let mut trees = generate::trees(&set, api, &world, seed, n, &opts);` (or [`corpus`] when no
//!    shrinking is wanted). Each tree's `current()` is a [`Case`].
//! 2. Sign and send `case.params` with `case.transport` (method, signature, format,
//!    `index_base`), in `case.region`, applying `case.auth` while signing (see [`AuthFault`]).
//! 3. Judge with `oracle::expect` and `oracle::judge`.
//! 4. On a failure, shrink the tree with the runner's loop (`run::minimise`); each candidate must
//!    be judged against the world as it is then, because cases change state.

mod examples;
mod values;

pub use examples::example_cases;

use std::sync::Arc;

use proptest::prelude::*;
use proptest::strategy::{Union, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use crate::case::{AuthFault, Case};
use crate::spec::{LoadedApi, Situation, SpecSet};
use crate::world::World;

pub use values::Ctx;

/// Knobs of the generator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenOptions {
    /// Most rules one invalid case breaks at once (default 1).
    pub violations: usize,
    /// Region to send requests to; default: the region holding most of the product's instances.
    pub region: Option<String>,
    /// Relative weight of valid cases (default 6).
    pub weight_valid: u32,
    /// Relative weight of each breakable rule (default 2).
    pub weight_rule: u32,
    /// Relative weight of each unspecified situation (default 1).
    pub weight_situation: u32,
    /// Relative weight of each authentication fault (default 1).
    pub weight_auth: u32,
    /// How many items beyond limit+1 a limit violation may add (default 3); shrinks to 0.
    pub extra_over_limit: usize,
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            violations: 1,
            region: None,
            weight_valid: 6,
            weight_rule: 2,
            weight_situation: 1,
            weight_auth: 1,
            extra_over_limit: 3,
        }
    }
}

/// The strategy of every case of one API: valid cases, one arm per breakable rule, one per listed
/// situation, one per authentication fault the family has a rule for.
pub fn case_strategy(
    set: &SpecSet,
    api: &LoadedApi,
    world: &World,
    opts: &GenOptions,
) -> BoxedStrategy<Case> {
    let ctx = Arc::new(Ctx::new(set, api, world, opts));
    let mut arms: Vec<(u32, BoxedStrategy<Case>)> = vec![(opts.weight_valid, ctx.valid())];
    for rule in ctx.breakable_rules() {
        if let Some(s) = ctx.violating(&[rule]) {
            arms.push((opts.weight_rule, s));
        }
    }
    for s in ctx.situation_arms() {
        arms.push((opts.weight_situation, s));
    }
    for fault in AuthFault::ALL {
        if let Some(s) = ctx.auth(fault) {
            arms.push((opts.weight_auth, s));
        }
    }
    if opts.violations > 1 {
        if let Some(s) = ctx.multi(opts.violations) {
            arms.push((opts.weight_rule, s));
        }
    }
    Union::new_weighted(arms).boxed()
}

/// The rules the generator can break in this world, in the spec's order: what a plan isolates
/// one case each for before it draws at random.
pub fn breakable_rules(
    set: &SpecSet,
    api: &LoadedApi,
    world: &World,
    opts: &GenOptions,
) -> Vec<String> {
    Ctx::new(set, api, world, opts).breakable_rules()
}

/// Cases that break exactly the named rule (plus whatever the world forces, recorded), for
/// targeted coverage; `None` when the generator cannot break it.
pub fn rule_strategy(
    set: &SpecSet,
    api: &LoadedApi,
    world: &World,
    opts: &GenOptions,
    rule_id: &str,
) -> Option<BoxedStrategy<Case>> {
    let ctx = Arc::new(Ctx::new(set, api, world, opts));
    let rule = ctx.breakable_rules().into_iter().find(|r| r == rule_id)?;
    ctx.violating(&[rule])
}

/// Cases that hit one unspecified situation the spec lists; `None` when it is not listed or the
/// generator cannot produce it in this world.
pub fn situation_strategy(
    set: &SpecSet,
    api: &LoadedApi,
    world: &World,
    opts: &GenOptions,
    situation: Situation,
) -> Option<BoxedStrategy<Case>> {
    Arc::new(Ctx::new(set, api, world, opts)).situation_arm(situation)
}

/// A correctly formed request carrying an authentication fault; `None` when the family has no
/// rule the fault breaks.
pub fn auth_strategy(
    set: &SpecSet,
    api: &LoadedApi,
    world: &World,
    opts: &GenOptions,
    fault: AuthFault,
) -> Option<BoxedStrategy<Case>> {
    Arc::new(Ctx::new(set, api, world, opts)).auth(fault)
}

/// Requests whose batch holds exactly the documented limit of instances; `None` without a limit
/// or when the world holds too few acceptable instances.
pub fn limit_strategy(
    set: &SpecSet,
    api: &LoadedApi,
    world: &World,
    opts: &GenOptions,
) -> Option<BoxedStrategy<Case>> {
    Arc::new(Ctx::new(set, api, world, opts)).at_limit()
}

/// Valid requests naming a RUNNING instance with the force flag true; `None` when no rule lifts
/// a state restriction with a flag, or no RUNNING instance exists.
pub fn forced_running_strategy(
    set: &SpecSet,
    api: &LoadedApi,
    world: &World,
    opts: &GenOptions,
) -> Option<BoxedStrategy<Case>> {
    Arc::new(Ctx::new(set, api, world, opts)).forced_running()
}

/// Valid cases only.
pub fn valid_strategy(
    set: &SpecSet,
    api: &LoadedApi,
    world: &World,
    opts: &GenOptions,
) -> BoxedStrategy<Case> {
    Arc::new(Ctx::new(set, api, world, opts)).valid()
}

/// A well-formed request naming only instances that exist nowhere in `world` (ids made as for
/// the `instance-exists` rule), drawn from `seed`: it changes nothing on any target, whatever
/// the answer. What the runner's rate-limit probe sends.
pub fn absent_case(set: &SpecSet, api: &LoadedApi, world: &World, seed: u64) -> Case {
    Arc::new(Ctx::new(set, api, world, &GenOptions::default())).absent(seed)
}

/// A runner whose randomness is fixed by `seed`.
pub fn seeded_runner(seed: u64) -> TestRunner {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8..16].copy_from_slice(&seed.rotate_left(17).to_le_bytes());
    TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &bytes),
    )
}

/// `n` value trees drawn deterministically from `seed`: the runner takes `current()` of each and
/// keeps the tree to shrink a failure (see the module docs).
pub fn trees(
    set: &SpecSet,
    api: &LoadedApi,
    world: &World,
    seed: u64,
    n: usize,
    opts: &GenOptions,
) -> Vec<Box<dyn ValueTree<Value = Case>>> {
    tree_stream(set, api, world, seed, opts).take(n).collect()
}

/// Value trees drawn deterministically from `seed`, one at a time: the first `n` are the trees
/// [`trees`] returns for `n`, without holding them all at once.
pub fn tree_stream(
    set: &SpecSet,
    api: &LoadedApi,
    world: &World,
    seed: u64,
    opts: &GenOptions,
) -> impl Iterator<Item = Box<dyn ValueTree<Value = Case>>> {
    let strategy = case_strategy(set, api, world, opts);
    let mut runner = seeded_runner(seed);
    std::iter::repeat_with(move || {
        strategy
            .new_tree(&mut runner)
            .expect("case strategies never reject")
    })
}

/// `n` cases drawn deterministically from `seed`.
pub fn corpus(
    set: &SpecSet,
    api: &LoadedApi,
    world: &World,
    seed: u64,
    n: usize,
    opts: &GenOptions,
) -> Vec<Case> {
    trees(set, api, world, seed, n, opts)
        .into_iter()
        .map(|t| t.current())
        .collect()
}

#[cfg(test)]
pub(crate) mod tests;
