//! The shared state of one run: the specs, the options, the target, the model of its world, the
//! instance locks, the nonce counter and the rate limiters. Owned, so that cases can run as
//! tasks on every worker thread.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::model::Model;
use super::pace::{rate_for, Limiter};
use super::{RunOptions, Target};
use crate::case::Case;
use crate::spec::{LoadedApi, SpecSet};
use crate::world::World;

pub(super) struct Ctx {
    pub(super) set: Arc<SpecSet>,
    pub(super) opts: RunOptions,
    pub(super) target: Target,
    model: Mutex<Model>,
    /// One lock per instance of the world, made up front: ids the world does not hold carry no
    /// state, need no lock, and so cannot grow this map as cases name new ids. Cases that may
    /// change an instance hold its lock alone; cases that must fail as a whole share it.
    locks: HashMap<String, Arc<tokio::sync::RwLock<()>>>,
    /// The next nonce: a random start per run, then counting, so that no two requests of any
    /// runs share one (Alibaba rejects a nonce seen in the last 15 minutes, API 2.0 in the
    /// last two hours: a run repeated with the same seed must not look like a replay).
    nonce: AtomicU64,
    /// One rate limiter per API, made when the API first sends.
    limiters: Mutex<HashMap<String, Option<Arc<Limiter>>>>,
}

impl Ctx {
    pub(super) fn new(set: &SpecSet, world: World, target: &Target, opts: &RunOptions) -> Arc<Ctx> {
        Arc::new(Ctx {
            set: Arc::new(set.clone()),
            opts: opts.clone(),
            target: target.clone(),
            locks: world
                .instances
                .iter()
                .map(|i| (i.id.clone(), Arc::default()))
                .collect(),
            model: Mutex::new(Model::new(world)),
            nonce: AtomicU64::new(rand::random::<u64>() >> 2),
            limiters: Mutex::new(HashMap::new()),
        })
    }

    /// Nonces counted from zero instead of a random start: a dry run prints the same text for
    /// the same plan, so two dry runs can be compared line by line.
    pub(super) fn counting_nonces_from_zero(&self) {
        self.nonce.store(0, Ordering::Relaxed);
    }

    pub(super) fn next_nonce(&self) -> u64 {
        self.nonce.fetch_add(1, Ordering::Relaxed)
    }

    /// The model, for a short read or update (never held across a send).
    pub(super) fn model(&self) -> MutexGuard<'_, Model> {
        self.model.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether this API's requests are paced at a rate against this target.
    pub(super) fn paced(&self, api: &LoadedApi) -> bool {
        rate_for(api, self.target.is_loopback(), self.opts.rate).is_some()
    }

    pub(super) fn limiter(&self, api: &LoadedApi) -> Option<Arc<Limiter>> {
        let mut all = self.limiters.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(made) = all.get(&api.name) {
            return made.clone();
        }
        all.entry(api.name.clone())
            .or_insert_with(|| {
                rate_for(api, self.target.is_loopback(), self.opts.rate)
                    .map(|r| Arc::new(Limiter::new(r)))
            })
            .clone()
    }

    /// Takes the locks of the named instances in id order (so no two cases wait on each other
    /// in a cycle), shared or alone. `ids` is sorted and deduplicated.
    pub(super) async fn lock_all(&self, ids: &[String], shared: bool) -> Held {
        let mut held = Held {
            _shared: Vec::new(),
            _alone: Vec::new(),
        };
        for lock in ids.iter().filter_map(|id| self.locks.get(id).cloned()) {
            if shared {
                held._shared.push(lock.read_owned().await);
            } else {
                held._alone.push(lock.write_owned().await);
            }
        }
        held
    }
}

/// Held instance locks, released on drop.
pub(super) struct Held {
    _shared: Vec<tokio::sync::OwnedRwLockReadGuard<()>>,
    _alone: Vec<tokio::sync::OwnedRwLockWriteGuard<()>>,
}

/// Whether a case shares its instances' locks: it must fail as a whole, and its requests are
/// not paced.
pub(super) fn shares(api: &LoadedApi, case: &Case, paced: bool) -> bool {
    !paced && case.must_fail_whole(api)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::AuthFault;
    use crate::generate::{self, GenOptions};
    use crate::oracle;

    /// Sharing locks is safe only for cases the documents require to fail as a whole; the
    /// runner re-checks against the model, and this pins the generator's side: every case it
    /// would share is one the oracle expects to fail, in the world it was generated from.
    #[test]
    fn only_cases_that_must_fail_as_a_whole_share_their_locks() {
        let set = crate::spec::load_embedded().expect("embedded specs load");
        let world = World::default_world();
        let mut shared = 0;
        for (i, api) in set.apis.iter().enumerate() {
            let per_item = api.spec.batch.mode == crate::spec::BatchMode::PerItem;
            for case in generate::corpus(&set, api, &world, i as u64, 400, &GenOptions::default()) {
                let share = shares(api, &case, false);
                assert!(!shares(api, &case, true), "paced requests never share");
                let exp = oracle::expect(&set, api, &world, &case);
                if share {
                    shared += 1;
                    assert!(
                        !exp.success_ok,
                        "{}: shared but may succeed: {case:?}",
                        api.name
                    );
                }
                if case.violates.is_empty() || (per_item && case.auth == AuthFault::None) {
                    assert!(!share, "{}: {case:?}", api.name);
                }
                if case.auth == AuthFault::ReusedNonce {
                    assert!(!share, "a replay's first send is an ordinary call");
                }
            }
        }
        assert!(shared > 500, "most invalid cases share: {shared}");
    }
}
