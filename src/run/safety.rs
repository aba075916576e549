//! What a run may do to a target that is not on this machine, beyond the world file's list:
//! an API whose changes the specs cannot undo (ECM `DisassociateInstancesKeyPairs`, ECS
//! `DetachKeyPair`: no bind call for their instances is specced) keeps its cases off the
//! listed instances unless `--allow-irreversible` — its invalid cases still run, naming ids
//! that do not exist. (Cases that could stop a RUNNING instance are held back one by one, in
//! the exchange, unless `--allow-force-stop`.)

use super::plan::{lanes, reversible};
use super::{RunError, RunOptions, Target};
use crate::spec::SpecSet;
use crate::world::World;

/// The world the run plans with, and a sentence for each product whose listed instances were
/// taken out of it.
pub(super) fn guard(
    set: &SpecSet,
    world: &World,
    target: &Target,
    opts: &RunOptions,
) -> Result<(World, Vec<String>), RunError> {
    if target.is_loopback() || opts.allow_irreversible {
        return Ok((world.clone(), vec![]));
    }
    let mut world = world.clone();
    let mut notes = Vec::new();
    for step in lanes(set, &opts.patterns)?.into_iter().flatten() {
        let api = &set.apis[step.api];
        let Err(why) = reversible(set, api) else {
            continue;
        };
        let product = api.spec.instance_product();
        let listed = world
            .instances
            .iter()
            .filter(|i| i.product == product)
            .count();
        if listed == 0 {
            continue;
        }
        world.instances.retain(|i| i.product != product);
        notes.push(format!(
            "{}: its changes cannot be undone ({why}); its cases name none of the {listed} listed {} instance(s) — --allow-irreversible lets them",
            api.name,
            product.as_str().to_uppercase()
        ));
    }
    Ok((world, notes))
}
