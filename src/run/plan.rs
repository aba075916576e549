//! The plan of a run: which APIs run, in which lanes, and which cases each sends — decided
//! before anything is sent and the same whatever the target answers. `run` executes it;
//! `--dry-run` prints it ([`dry_run`]), so the two cannot drift apart.
//!
//! APIs acting on different products share no resource, so each product's APIs form one lane
//! and the lanes run at once. Within a lane the APIs run in spec order, each drawing its cases
//! from the world the APIs before it are predicted to leave ([`Model::predict`]): CVM
//! Disassociate unbinds what Associate bound. Against a real cloud this also keeps each API
//! within its own rate limit while the others proceed.

use super::ctx::Ctx;
use super::model::Model;
use super::send::sign;
use super::shrink::Tree;
use super::{RunError, RunOptions, Target};
use crate::case::{AuthFault, Case};
use crate::generate::{self, GenOptions};
use crate::protocol::HttpRequest;
use crate::spec::{LoadedApi, SpecSet};
use crate::world::World;

/// Selects the APIs whose names match any pattern (all when none given).
pub fn select<'a>(set: &'a SpecSet, patterns: &[String]) -> Vec<&'a LoadedApi> {
    set.apis
        .iter()
        .filter(|a| patterns.is_empty() || patterns.iter().any(|p| matches(p, &a.name)))
        .collect()
}

fn matches(pattern: &str, name: &str) -> bool {
    if let Some((pre, post)) = pattern.split_once('*') {
        return name.starts_with(pre) && name[pre.len()..].contains(post.trim_end_matches('*'));
    }
    name.contains(pattern) || name.eq_ignore_ascii_case(pattern)
}

/// One API of a lane: its place among the selected APIs (which seeds its cases) and its index
/// in the spec set.
#[derive(Debug, Clone, Copy)]
pub(super) struct Step {
    pub(super) position: usize,
    pub(super) api: usize,
}

/// The lanes of a run: the selected APIs grouped by product, each lane in spec order.
pub(super) fn lanes(set: &SpecSet, patterns: &[String]) -> Result<Vec<Vec<Step>>, RunError> {
    let apis: Vec<usize> = select(set, patterns)
        .into_iter()
        .filter_map(|a| set.apis.iter().position(|b| std::ptr::eq(a, b)))
        .collect();
    if apis.is_empty() {
        return Err(RunError::NoSpecs {
            patterns: patterns.to_vec(),
        });
    }
    let mut lanes: Vec<Vec<Step>> = Vec::new();
    for (position, &api) in apis.iter().enumerate() {
        let product = set.apis[api].spec.api.product;
        let step = Step { position, api };
        match lanes
            .iter_mut()
            .find(|l| set.apis[l[0].api].spec.api.product == product)
        {
            Some(lane) => lane.push(step),
            None => lanes.push(vec![step]),
        }
    }
    Ok(lanes)
}

/// The cases of one API: value trees drawn in order from one stream seeded by the run's seed
/// and the API's position (the same seed gives the same cases), the first `opts.cases`, kept by
/// the shard. Each case kept moves `planned` forward when `predict` is set (a later API of the
/// lane draws from it).
pub(super) struct Cases<'a> {
    api: &'a LoadedApi,
    trees: Box<dyn Iterator<Item = (usize, Tree)> + 'a>,
    planned: Option<Model>,
}

impl<'a> Cases<'a> {
    pub(super) fn new(
        set: &'a SpecSet,
        step: Step,
        world: &World,
        opts: &RunOptions,
        predict: bool,
    ) -> Cases<'a> {
        let api = &set.apis[step.api];
        let gen = GenOptions {
            violations: opts.violations,
            ..GenOptions::default()
        };
        let seed = opts.seed ^ (step.position as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let shard = opts.shard;
        let trees = generate::tree_stream(set, api, world, seed, &gen)
            .take(opts.cases)
            .enumerate()
            .filter(move |(i, _)| shard.is_none_or(|(k, n)| i % n == k));
        Cases {
            api,
            trees: Box::new(trees),
            planned: predict.then(|| Model::new(world.clone())),
        }
    }

    /// The world the later APIs of the lane draw from: the one this API started from, moved
    /// forward by every case drawn so far.
    pub(super) fn planned_world(self) -> Option<World> {
        self.planned.map(|m| m.world)
    }
}

impl Iterator for Cases<'_> {
    /// The case's position in the stream, its value tree (kept to shrink a failure), and the
    /// case itself (drawn from the tree once).
    type Item = (usize, Tree, Case);

    fn next(&mut self) -> Option<(usize, Tree, Case)> {
        let (i, tree) = self.trees.next()?;
        let case = tree.current();
        if let Some(model) = &mut self.planned {
            model.predict(self.api, &case);
        }
        Some((i, tree, case))
    }
}

/// One request of the plan, signed as the run would sign it.
#[derive(Debug, Clone)]
pub struct Planned {
    /// API name.
    pub api: String,
    /// The case's position in the API's stream.
    pub index: usize,
    /// The case.
    pub case: Case,
    /// The signed request (secrets in it: redact before showing it).
    pub request: HttpRequest,
    /// How many times the run sends it: twice for a replayed nonce.
    pub sends: usize,
}

/// The plan of a run, request by request, in spec order, without sending anything: what `run`
/// with the same options sends to `target` (timestamps, nonces and signatures aside), except
/// the read calls that observe effects and the re-runs that shrink a failure.
pub fn dry_run(
    set: &SpecSet,
    world: &World,
    target: &Target,
    opts: &RunOptions,
    mut each: impl FnMut(Planned) -> bool,
) -> Result<(), RunError> {
    let ctx = Ctx::new(set, World::default(), target, opts);
    ctx.counting_nonces_from_zero();
    let mut steps: Vec<(Step, bool)> = Vec::new();
    for lane in lanes(set, &opts.patterns)? {
        let last = lane.len() - 1;
        steps.extend(lane.into_iter().enumerate().map(|(n, s)| (s, n < last)));
    }
    steps.sort_by_key(|(s, _)| s.position);
    // Each product's world as its lane's earlier APIs leave it.
    let mut worlds: Vec<(crate::spec::Product, World)> = Vec::new();
    for (step, more) in steps {
        let api = &set.apis[step.api];
        let product = api.spec.api.product;
        let start = worlds
            .iter()
            .find(|(p, _)| *p == product)
            .map_or_else(|| world.clone(), |(_, w)| w.clone());
        let mut cases = Cases::new(set, step, &start, opts, more);
        for (index, _, case) in cases.by_ref() {
            let planned = Planned {
                api: api.name.clone(),
                index,
                request: sign(&ctx, api, &case)?,
                sends: if case.auth == AuthFault::ReusedNonce {
                    2
                } else {
                    1
                },
                case,
            };
            if !each(planned) {
                return Ok(());
            }
        }
        if let Some(w) = cases.planned_world() {
            worlds.retain(|(p, _)| *p != product);
            worlds.push((product, w));
        }
    }
    Ok(())
}
