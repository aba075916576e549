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
//! 4. On a failure, shrink with the classic loop (see [`shrink`] for a synchronous version):
//!    `if tree.simplify() { if still_fails(tree.current()) { keep } else { tree.complicate() } }`
//!    until `simplify()` returns false and `complicate()` returns false; each candidate must be
//!    judged against a fresh world (or an emulator reset), because cases change state.

mod values;

use std::sync::Arc;

use proptest::prelude::*;
use proptest::strategy::{Union, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde::{Deserialize, Serialize};

use crate::protocol::{Method, Params, ResponseFormat, SignatureMethod};
use crate::spec::{LoadedApi, Situation, SpecSet};
use crate::world::World;

pub use values::Ctx;

/// One generated request: abstract parameters plus what it is meant to break.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    /// `LoadedApi.name` of the API.
    pub api: String,
    /// The region the request is sent to (resources are looked up there).
    pub region: String,
    /// Parameter values keyed by the document's parameter names.
    pub params: Params,
    /// Ids of the rules the generator meant to break (the oracle recomputes them).
    pub violates: Vec<String>,
    /// Unspecified situations the case hits (only those the spec lists).
    pub situations: Vec<Situation>,
    /// An authentication fault the runner applies while signing.
    pub auth: AuthFault,
    /// How the request travels.
    pub transport: Transport,
}

/// Authentication faults, applied by the runner when it signs the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AuthFault {
    /// A correctly signed request.
    #[default]
    None,
    /// Sign with a secret key other than the target's (family rule `signature`).
    WrongSecret,
    /// Send a secret id the target does not know (family rule `secret_id_known`).
    UnknownSecretId,
    /// Sign correctly, then change one character of the signature (family rule `signature`).
    TamperedSignature,
    /// Sign with a timestamp an hour in the past (family rule `timestamp_window`).
    ExpiredTimestamp,
    /// Send the same signed request twice; the second is judged (family rule `nonce_unique`).
    ReusedNonce,
}

impl AuthFault {
    /// Every fault, in a fixed order.
    pub const ALL: [AuthFault; 5] = [
        AuthFault::WrongSecret,
        AuthFault::UnknownSecretId,
        AuthFault::TamperedSignature,
        AuthFault::ExpiredTimestamp,
        AuthFault::ReusedNonce,
    ];
}

/// How a request travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Transport {
    /// HTTP method.
    pub method: Method,
    /// Signature scheme.
    pub signature: SignatureMethod,
    /// Response format to ask for.
    pub format: ResponseFormat,
    /// First index of `Name.N` list items on forms: 0 normally, 1 for the `one_based_index`
    /// situation.
    pub index_base: u32,
}

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

/// Shrinks a failing case: simplifies while `still_fails` holds, backs off when it does not.
/// Returns the smallest failing case found. `max_steps` bounds the number of candidates tried.
pub fn shrink(
    tree: &mut dyn ValueTree<Value = Case>,
    mut still_fails: impl FnMut(&Case) -> bool,
    max_steps: usize,
) -> Case {
    let mut best = tree.current();
    let mut steps = 0;
    if !tree.simplify() {
        return best;
    }
    loop {
        steps += 1;
        let candidate = tree.current();
        let more = if still_fails(&candidate) {
            best = candidate;
            tree.simplify()
        } else {
            tree.complicate()
        };
        if !more || steps >= max_steps {
            return best;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
