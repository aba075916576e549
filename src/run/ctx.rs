//! The shared state of one run: the specs, the options, the target, the model of its world, the
//! instance locks, the nonce counter and the rate limiters. Owned, so that cases can run as
//! tasks on every worker thread.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::journal::Journal;
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
    /// The instances' locks, granted in plan order (see [`Locks`]).
    locks: Locks,
    /// The next nonce: a random start per run, then counting, so that no two requests of any
    /// runs share one (Alibaba rejects a nonce seen in the last 15 minutes, API 2.0 in the
    /// last two hours: a run repeated with the same seed must not look like a replay).
    nonce: AtomicU64,
    /// One rate limiter per API, made when the API first sends (or first throttled).
    limiters: Mutex<HashMap<String, Option<Arc<Limiter>>>>,
    /// Per API, calls in a row whose every attempt was throttled.
    throttled: Mutex<HashMap<String, usize>>,
    /// Throttled calls waiting to be retried: API, until when, and why (what a person watching
    /// a long wait is told).
    waits: Mutex<Vec<(String, std::time::Instant, String)>>,
    /// Where what instances held before their first change is written down (remote targets,
    /// or `--journal`): see [`super::journal`].
    journal: Mutex<Option<Journal>>,
    /// Set once the run stops starting cases (Ctrl-C, a budget): a case still waiting for its
    /// pacing slot then goes unsent instead of holding the run past its deadline.
    halt: tokio::sync::watch::Sender<bool>,
    /// The request ids answered so far (see [`super::response_set`]).
    pub(super) request_ids: super::response_set::RequestIds,
}

impl Ctx {
    pub(super) fn new(set: &SpecSet, world: World, target: &Target, opts: &RunOptions) -> Arc<Ctx> {
        Arc::new(Ctx {
            set: Arc::new(set.clone()),
            opts: opts.clone(),
            target: target.clone(),
            locks: Locks::new(&world),
            model: Mutex::new(Model::new(world)),
            nonce: AtomicU64::new(rand::random::<u64>() >> 2),
            limiters: Mutex::new(HashMap::new()),
            throttled: Mutex::new(HashMap::new()),
            waits: Mutex::new(Vec::new()),
            journal: Mutex::new(None),
            halt: tokio::sync::watch::Sender::new(false),
            request_ids: Default::default(),
        })
    }

    /// The run stops starting cases: cases waiting for a pacing slot give up.
    pub(super) fn halt(&self) {
        self.halt.send_replace(true);
    }

    /// Resolves once [`Ctx::halt`] was called.
    pub(super) async fn halted(&self) {
        let mut rx = self.halt.subscribe();
        // The sender lives as long as the context: the wait ends only by a halt.
        let _ = rx.wait_for(|h| *h).await;
    }

    /// From now on, instances are journaled before their first change.
    pub(super) fn keep_journal(&self, journal: Journal) {
        *self.journal.lock().unwrap_or_else(|e| e.into_inner()) = Some(journal);
    }

    /// The journal, when one is kept (held only for a short read or write, never across a
    /// send).
    pub(super) fn journal(&self) -> MutexGuard<'_, Option<Journal>> {
        self.journal.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A call of `api` waits until `until` before it is retried, for `why`.
    pub(super) fn wait_started(&self, api: &str, until: std::time::Instant, why: String) {
        let mut w = self.waits.lock().unwrap_or_else(|e| e.into_inner());
        w.push((api.to_string(), until, why));
    }

    /// The wait of `api` that ended (the first one registered for it).
    pub(super) fn wait_ended(&self, api: &str) {
        let mut w = self.waits.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(at) = w.iter().position(|(a, ..)| a == api) {
            w.remove(at);
        }
    }

    /// The longest wait under way, as a sentence: what a progress line shows meanwhile.
    pub(super) fn longest_wait(&self) -> Option<String> {
        let w = self.waits.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        w.iter()
            .max_by_key(|(_, until, _)| *until)
            .filter(|(_, until, _)| *until > now)
            .map(|(api, until, why)| {
                format!(
                    "{api}: {why}; retrying in {:.0} s",
                    until.duration_since(now).as_secs_f64().ceil()
                )
            })
    }

    /// The longest wait for a rate limiter's slot a request asking now would have.
    pub(super) fn pace_wait(&self) -> Option<std::time::Duration> {
        let all = self.limiters.lock().unwrap_or_else(|e| e.into_inner());
        all.values()
            .flatten()
            .map(|l| l.ahead())
            .max()
            .filter(|d| !d.is_zero())
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

    /// The target throttled one of this API's requests: from now on the API is paced at its
    /// documented rate, if nothing paced it yet (a loopback target is not paced by default).
    pub(super) fn throttled(&self, api: &LoadedApi) {
        let mut all = self.limiters.lock().unwrap_or_else(|e| e.into_inner());
        let slot = all.entry(api.name.clone()).or_insert(None);
        if slot.is_none() {
            *slot = Some(Arc::new(Limiter::new(super::pace::documented_rate(api))));
        }
    }

    /// A call of this API got only throttling answers; how many in a row now.
    pub(super) fn throttled_in_a_row(&self, api: &LoadedApi) -> usize {
        let mut all = self.throttled.lock().unwrap_or_else(|e| e.into_inner());
        let n = all.entry(api.name.clone()).or_insert(0);
        *n += 1;
        *n
    }

    /// A call of this API got an answer that is not throttling.
    pub(super) fn answered(&self, api: &LoadedApi) {
        let mut all = self.throttled.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = all.get_mut(&api.name) {
            *n = 0;
        }
    }

    /// Queues a case for the named instances' locks, behind every case queued before it
    /// (`ids` sorted and deduplicated). The dispatcher queues cases in plan order, so cases
    /// naming the same instance run in the order the plan drew them, however many are in
    /// flight: the plan's model, and so which cases hit an open situation, holds against the
    /// run's.
    pub(super) fn queue(&self, ids: &[String], shared: bool) -> Ticket {
        self.locks.queue(ids, shared)
    }

    /// Waits for a queued case's turn on each of its instances and holds them until the
    /// returned guard drops. A case queued to share may ask to hold alone after all (`shared`
    /// false): it then waits until every case holding one of its instances has let go.
    pub(super) async fn lock_all(&self, ticket: Ticket, shared: bool) -> Held {
        self.locks.acquire(ticket, shared).await
    }
}

/// Instance locks granted in the order cases were queued. Each instance of the world has a queue
/// of tickets; a ticket holds an instance when it is first in the queue and nobody else holds it
/// (alone), or when every ticket before it is a shared one too (shared). Tickets are numbered in
/// one order across every queue, so no two cases wait on each other. Ids the world does not
/// hold carry no state and need no lock.
#[derive(Clone)]
struct Locks(Arc<LocksInner>);

struct LocksInner {
    queues: Mutex<LockQueues>,
    changed: tokio::sync::Notify,
}

struct LockQueues {
    next: u64,
    by_instance: HashMap<String, VecDeque<Entry>>,
}

struct Entry {
    ticket: u64,
    shared: bool,
    holding: bool,
}

/// A case's place in the queues of its instances; dropping it leaves them.
pub(super) struct Ticket {
    locks: Locks,
    number: u64,
    ids: Vec<String>,
}

/// Held instance locks, released on drop.
pub(super) struct Held(Ticket);

impl Held {
    /// Lets go of the instances but keeps the case's place in their queues.
    pub(super) fn release(self) -> Ticket {
        let ticket = self.0;
        ticket.locks.update(&ticket, |e| e.holding = false);
        ticket
    }
}

impl Locks {
    fn new(world: &World) -> Locks {
        Locks(Arc::new(LocksInner {
            queues: Mutex::new(LockQueues {
                next: 0,
                by_instance: world
                    .instances
                    .iter()
                    .map(|i| (i.id.clone(), VecDeque::new()))
                    .collect(),
            }),
            changed: tokio::sync::Notify::new(),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, LockQueues> {
        self.0.queues.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn queue(&self, ids: &[String], shared: bool) -> Ticket {
        let mut q = self.lock();
        let number = q.next;
        q.next += 1;
        let mut queued = Vec::new();
        for id in ids {
            if let Some(queue) = q.by_instance.get_mut(id) {
                queue.push_back(Entry {
                    ticket: number,
                    shared,
                    holding: false,
                });
                queued.push(id.clone());
            }
        }
        Ticket {
            locks: self.clone(),
            number,
            ids: queued,
        }
    }

    /// Changes the ticket's entry in each of its queues, and wakes the waiters.
    fn update(&self, ticket: &Ticket, mut change: impl FnMut(&mut Entry)) {
        {
            let mut q = self.lock();
            for id in &ticket.ids {
                if let Some(queue) = q.by_instance.get_mut(id) {
                    queue
                        .iter_mut()
                        .filter(|e| e.ticket == ticket.number)
                        .for_each(&mut change);
                }
            }
        }
        self.0.changed.notify_waiters();
    }

    async fn acquire(&self, ticket: Ticket, shared: bool) -> Held {
        if !shared {
            // Holding alone: later shared tickets must no longer pass this one.
            self.update(&ticket, |e| e.shared = false);
        }
        loop {
            let changed = self.0.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.try_hold(&ticket, shared) {
                return Held(ticket);
            }
            changed.await;
        }
    }

    /// Takes every instance of the ticket if its turn has come on all of them.
    fn try_hold(&self, ticket: &Ticket, shared: bool) -> bool {
        let mut q = self.lock();
        let turn = |queue: &VecDeque<Entry>| {
            let mut before = queue.iter().take_while(|e| e.ticket != ticket.number);
            if shared {
                before.all(|e| e.shared)
            } else {
                before.next().is_none() && !queue.iter().skip(1).any(|e| e.holding)
            }
        };
        let ready = ticket
            .ids
            .iter()
            .all(|id| q.by_instance.get(id).is_none_or(turn));
        if ready {
            for id in &ticket.ids {
                if let Some(queue) = q.by_instance.get_mut(id) {
                    for e in queue.iter_mut().filter(|e| e.ticket == ticket.number) {
                        e.holding = true;
                    }
                }
            }
        }
        ready
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        {
            let mut q = self.locks.lock();
            for id in &self.ids {
                if let Some(queue) = q.by_instance.get_mut(id) {
                    queue.retain(|e| e.ticket != self.number);
                }
            }
        }
        self.locks.0.changed.notify_waiters();
    }
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
