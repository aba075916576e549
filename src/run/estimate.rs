//! How long a run takes, before it is sent (`run --plan`): the cases' requests and the read
//! calls that go with them, at the pace the run keeps.
//!
//! A paced API shares one rate limiter among its cases and the read calls made for them
//! (`send::send_call`): before a case naming ids the world does not list goes to a remote
//! target, a read confirms they are absent (`exchange::held_but_unlisted`); before the first
//! change of a listed instance, a read journals it (`exchange::journal_before`); after a case
//! naming one, a read observes its effect (`observe::observe`). Against a remote target these
//! reads are about as many as the cases: left out, the estimate was half the real time.
//! The restore at the end reads the journaled instances back and puts back what changed.

use std::collections::BTreeSet;

use crate::case::Case;
use crate::protocol::describe::{self, MAX_IDS_PER_CALL};
use crate::spec::{LoadedApi, Observation, Product};
use crate::world::World;

/// The paced read calls of a plan, case by case.
pub(super) struct Reads<'a> {
    world: &'a World,
    loopback: bool,
    journal: bool,
    admin: bool,
    /// Instances journaled so far (only the first change of each is read before).
    journaled: BTreeSet<(Product, String)>,
}

impl<'a> Reads<'a> {
    /// The reads of a run against a target (`loopback` or not) from `world` (as the guard
    /// leaves it), journaling or not, observing through the admin view or not.
    pub(super) fn new(world: &'a World, loopback: bool, journal: bool, admin: bool) -> Reads<'a> {
        Reads {
            world,
            loopback,
            journal,
            admin,
            journaled: BTreeSet::new(),
        }
    }

    /// The paced read calls made for one case of `api`.
    pub(super) fn case(&mut self, api: &LoadedApi, case: &Case) -> usize {
        if !paced_read(api, self.admin) {
            return 0;
        }
        let product = api.spec.instance_product();
        let ids = case.instance_ids(api);
        let listed: Vec<&String> = ids
            .iter()
            .filter(|id| {
                self.world
                    .instances
                    .iter()
                    .any(|i| i.product == product && &i.id == *id)
            })
            .collect();
        let unlisted = ids.len() - listed.len();
        let mut reads = 0;
        if !self.loopback && unlisted > 0 {
            reads += pages(unlisted);
        }
        if !listed.is_empty() {
            if self.journal {
                let fresh: Vec<(Product, String)> = listed
                    .iter()
                    .map(|id| (product, (*id).clone()))
                    .filter(|k| !self.journaled.contains(k))
                    .collect();
                if !fresh.is_empty() {
                    reads += pages(fresh.len());
                    self.journaled.extend(fresh);
                }
            }
            reads += pages(ids.len());
        }
        reads
    }

    /// Requests the restore may send for `product`'s journaled instances: a read of them, a
    /// put-back call for each (at most), a read to confirm.
    pub(super) fn restore_requests(&self, product: Product) -> usize {
        let n = self.journaled.iter().filter(|(p, _)| *p == product).count();
        match n {
            0 => 0,
            n => 2 * pages(n) + n,
        }
    }
}

/// Read calls for `n` ids, a page of [`MAX_IDS_PER_CALL`] a call.
fn pages(n: usize) -> usize {
    n.div_ceil(MAX_IDS_PER_CALL)
}

/// Whether `api`'s observations go through a read call of the target (paced with the API),
/// not the emulator's admin view.
fn paced_read(api: &LoadedApi, admin: bool) -> bool {
    for &how in &api.spec.effect.observe {
        if how == Observation::Admin {
            if admin {
                return false;
            }
            continue;
        }
        if describe::describe_call(how, &[], "", "").is_some() {
            return true;
        }
    }
    false
}

/// Seconds a paced API's requests take at `rate`: every request and read spaced evenly, and
/// after each rate-limit burst sent, a back-off of about a second.
pub(super) fn seconds(paced: usize, bursts_sent: usize, rate: f64) -> f64 {
    paced as f64 / rate.max(0.001) + bursts_sent as f64
}
