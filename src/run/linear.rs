//! A small linearizability checker: does some serial order of a history's calls explain every
//! answer and the state read afterwards?
//!
//! A history is calls with the instants they were sent and answered. Call `a` precedes call `b`
//! in real time when `a` was answered before `b` was sent; calls that overlap may take effect in
//! either order. A call whose outcome is unknown (a timeout, a transport fault, a throttling
//! answer) has no answer instant: it may take effect at any point after it was sent, or never,
//! and orders nothing after it. The search tries every order the real-time order allows, one
//! call at a time, asking the [`Spec`] which states a call may leave given the state before it
//! and its answer (none: the answer is impossible there), and accepts the first order whose
//! final state the reader accepts. States already met with the same calls done are not searched
//! twice, so a history of a few branches of a few calls each is checked in microseconds.
//!
//! Pure: no I/O, nothing of the specs. The concurrency phase ([`super::concurrent`]) supplies a
//! [`Spec`] built from the oracle; the tests here check it on small models and against
//! stateright's `LinearizabilityTester`, an independent implementation, on random histories.

use std::collections::HashSet;
use std::hash::Hash;

/// The sequential meaning of the calls: which states a call may leave.
pub trait Spec {
    /// What the calls act on (small: it is cloned and hashed at every step of the search).
    type State: Clone + Eq + Hash;
    /// One call.
    type Call;
    /// What a call answered.
    type Answer;

    /// The states `call` may leave when, taking effect in `state`, it answered `answer`
    /// (`None`: its outcome is unknown). Empty: that answer is impossible in that state.
    fn step(
        &self,
        state: &Self::State,
        call: &Self::Call,
        answer: Option<&Self::Answer>,
    ) -> Vec<Self::State>;
}

/// One call of a history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op<C, A> {
    /// What was asked.
    pub call: C,
    /// What came back; `None` when the outcome is unknown (a timeout, throttling).
    pub answer: Option<A>,
    /// When it was sent (any monotonic unit: nanoseconds since the history began).
    pub sent: u64,
    /// When its answer arrived; `None` with an unknown outcome.
    pub answered: Option<u64>,
}

/// Why no order explains a history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unexplained {
    /// The longest prefix of calls (indices into the history) that some order could explain
    /// before it got stuck: where to start reading.
    pub longest: Vec<usize>,
    /// Whether some order explained every answer and only the final state was refused.
    pub answers_explained: bool,
}

/// Most calls one history may hold (the search keeps its done-set in a `u64`).
pub const MAX_OPS: usize = 64;

/// Finds an order of `ops` that respects real time, explains every answer under `spec` from
/// `init`, and ends in a state `accept` takes; `Ok` with the order (indices into `ops`).
pub fn check<S: Spec>(
    spec: &S,
    init: S::State,
    ops: &[Op<S::Call, S::Answer>],
    accept: impl Fn(&S::State) -> bool,
) -> Result<Vec<usize>, Unexplained> {
    assert!(ops.len() <= MAX_OPS, "a history of at most {MAX_OPS} calls");
    // `before[i]`: the calls answered before call `i` was sent (they come first in any order).
    let before: Vec<u64> = ops
        .iter()
        .map(|op| {
            ops.iter()
                .enumerate()
                .fold(0u64, |mask, (j, other)| match other.answered {
                    Some(t) if t < op.sent => mask | (1 << j),
                    _ => mask,
                })
        })
        .collect();
    let full = if ops.len() == MAX_OPS {
        u64::MAX
    } else {
        (1u64 << ops.len()) - 1
    };
    let mut search = Search {
        spec,
        ops,
        before: &before,
        full,
        accept: &accept,
        seen: HashSet::new(),
        path: Vec::new(),
        longest: Vec::new(),
        answers_explained: false,
    };
    if search.go(0, &init) {
        return Ok(search.path);
    }
    Err(Unexplained {
        longest: search.longest,
        answers_explained: search.answers_explained,
    })
}

struct Search<'a, S: Spec, F> {
    spec: &'a S,
    ops: &'a [Op<S::Call, S::Answer>],
    before: &'a [u64],
    full: u64,
    accept: &'a F,
    seen: HashSet<(u64, S::State)>,
    path: Vec<usize>,
    longest: Vec<usize>,
    answers_explained: bool,
}

impl<S: Spec, F: Fn(&S::State) -> bool> Search<'_, S, F> {
    fn go(&mut self, done: u64, state: &S::State) -> bool {
        if self.path.len() > self.longest.len() {
            self.longest = self.path.clone();
        }
        if done == self.full {
            self.answers_explained = true;
            return (self.accept)(state);
        }
        if !self.seen.insert((done, state.clone())) {
            return false;
        }
        for i in 0..self.ops.len() {
            let bit = 1u64 << i;
            if done & bit != 0 || self.before[i] & !done != 0 {
                continue;
            }
            let op = &self.ops[i];
            for next in self.spec.step(state, &op.call, op.answer.as_ref()) {
                self.path.push(i);
                if self.go(done | bit, &next) {
                    return true;
                }
                self.path.pop();
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;

    /// A register of key sets per instance: bind replaces, unbind removes, read returns.
    #[derive(Debug, Clone, PartialEq, Eq, Hash)]
    enum Call {
        Bind(usize, u8),
        Unbind(usize, u8),
        Read(usize),
    }

    #[derive(Debug, Clone, PartialEq, Eq, Hash)]
    enum Answer {
        Ok,
        /// The documented conflict code: nothing changed.
        Busy,
        Keys(u8),
    }

    struct Keys;

    fn apply(state: &[u8; 2], call: &Call) -> ([u8; 2], Answer) {
        let mut s = *state;
        let answer = match *call {
            Call::Bind(i, k) => {
                s[i] = k;
                Answer::Ok
            }
            Call::Unbind(i, k) => {
                s[i] &= !k;
                Answer::Ok
            }
            Call::Read(i) => Answer::Keys(s[i]),
        };
        (s, answer)
    }

    impl Spec for Keys {
        type State = [u8; 2];
        type Call = Call;
        type Answer = Answer;

        fn step(&self, state: &[u8; 2], call: &Call, answer: Option<&Answer>) -> Vec<[u8; 2]> {
            let (after, meant) = apply(state, call);
            match answer {
                None => vec![*state, after],
                Some(Answer::Busy) if !matches!(call, Call::Read(_)) => vec![*state],
                Some(a) if *a == meant => vec![after],
                Some(_) => vec![],
            }
        }
    }

    fn op(
        call: Call,
        answer: Option<Answer>,
        sent: u64,
        answered: Option<u64>,
    ) -> Op<Call, Answer> {
        Op {
            call,
            answer,
            sent,
            answered,
        }
    }

    #[test]
    fn overlapping_writes_may_take_effect_in_either_order() {
        // Two binds at once on instance 0, then the state shows the first one's keys: the
        // second took effect first.
        let ops = [
            op(Call::Bind(0, 0b01), Some(Answer::Ok), 0, Some(10)),
            op(Call::Bind(0, 0b10), Some(Answer::Ok), 1, Some(9)),
        ];
        let order = check(&Keys, [0, 0], &ops, |s| s[0] == 0b01).expect("explained");
        assert_eq!(order, vec![1, 0]);
        check(&Keys, [0, 0], &ops, |s| s[0] == 0b10).expect("the other order too");
    }

    #[test]
    fn a_lost_update_has_no_serial_order() {
        // Keys 0b11; an unbind of 0b01 and a bind of 0b100 at once, both answered success; the
        // state afterwards is 0b10: the unbind wrote back what it read before the bind.
        let ops = [
            op(Call::Unbind(0, 0b01), Some(Answer::Ok), 0, Some(10)),
            op(Call::Bind(0, 0b100), Some(Answer::Ok), 1, Some(9)),
        ];
        let err = check(&Keys, [0b11, 0], &ops, |s| s[0] == 0b10).unwrap_err();
        assert!(
            err.answers_explained,
            "every answer is possible, the state is not"
        );
        assert_eq!(err.longest.len(), 2);
    }

    #[test]
    fn real_time_order_binds_calls_that_do_not_overlap() {
        // The bind was answered before the unbind was sent: only bind-then-unbind is allowed,
        // which leaves 0b10, not 0b01.
        let ops = [
            op(Call::Bind(0, 0b11), Some(Answer::Ok), 0, Some(5)),
            op(Call::Unbind(0, 0b10), Some(Answer::Ok), 6, Some(9)),
        ];
        assert!(check(&Keys, [0, 0], &ops, |s| s[0] == 0b11).is_err());
        assert!(check(&Keys, [0, 0], &ops, |s| s[0] == 0b01).is_ok());
    }

    #[test]
    fn an_unknown_outcome_may_or_may_not_have_happened_even_after_later_calls() {
        // A bind timed out; a read sent after it saw it not applied, the final state shows it
        // applied: it landed after the read.
        let ops = [
            op(Call::Bind(1, 0b1), None, 0, None),
            op(Call::Read(1), Some(Answer::Keys(0)), 50, Some(60)),
        ];
        assert!(check(&Keys, [0, 0], &ops, |s| s[1] == 0b1).is_ok());
        assert!(check(&Keys, [0, 0], &ops, |s| s[1] == 0).is_ok());
        assert!(check(&Keys, [0, 0], &ops, |s| s[1] == 0b10).is_err());
    }

    #[test]
    fn a_conflict_answer_changes_nothing() {
        let ops = [
            op(Call::Bind(0, 0b1), Some(Answer::Ok), 0, Some(10)),
            op(Call::Bind(0, 0b10), Some(Answer::Busy), 1, Some(9)),
        ];
        assert!(check(&Keys, [0, 0], &ops, |s| s[0] == 0b1).is_ok());
        assert!(check(&Keys, [0, 0], &ops, |s| s[0] == 0b10).is_err());
    }

    #[test]
    fn an_impossible_answer_is_unexplained_whatever_the_state() {
        let ops = [
            op(Call::Bind(0, 0b1), Some(Answer::Ok), 0, Some(10)),
            op(Call::Read(0), Some(Answer::Keys(0b111)), 1, Some(9)),
        ];
        let err = check(&Keys, [0, 0], &ops, |_| true).unwrap_err();
        assert!(!err.answers_explained);
        assert_eq!(err.longest, vec![0], "the bind alone could be placed");
    }

    // ---- The cross-check against stateright's tester, an independent implementation ----

    use stateright::semantics::{ConsistencyTester, LinearizabilityTester, SequentialSpec};

    /// The same register as a stateright reference object.
    #[derive(Debug, Clone, Default)]
    struct Reference([u8; 2]);

    impl SequentialSpec for Reference {
        type Op = Call;
        type Ret = Answer;

        fn invoke(&mut self, op: &Call) -> Answer {
            let (after, answer) = apply(&self.0, op);
            self.0 = after;
            answer
        }

        fn is_valid_step(&mut self, op: &Call, ret: &Answer) -> bool {
            if *ret == Answer::Busy && !matches!(op, Call::Read(_)) {
                return true;
            }
            &self.invoke(op) == ret
        }
    }

    /// An event of a history as stateright records it: a thread invokes or returns.
    #[derive(Debug, Clone)]
    enum Event {
        Invoke(usize, Call),
        Return(usize, Answer),
    }

    fn call() -> impl Strategy<Value = Call> {
        prop_oneof![
            (0..2usize, 0..4u8).prop_map(|(i, k)| Call::Bind(i, k)),
            (0..2usize, 1..4u8).prop_map(|(i, k)| Call::Unbind(i, k)),
            (0..2usize).prop_map(Call::Read),
        ]
    }

    /// A call and a random answer: writes mostly succeed (sometimes the conflict code, rarely
    /// an impossible read's answer), reads return any of a few key sets.
    fn call_answer() -> impl Strategy<Value = (Call, Answer)> {
        call().prop_flat_map(|c| {
            let answer = match c {
                Call::Read(_) => (0..4u8).prop_map(Answer::Keys).boxed(),
                _ => prop_oneof![
                    8 => Just(Answer::Ok),
                    2 => Just(Answer::Busy),
                    1 => (0..4u8).prop_map(Answer::Keys),
                ]
                .boxed(),
            };
            (Just(c), answer)
        })
    }

    /// Up to three threads with up to three calls each, interleaved by a random schedule; a
    /// thread's last call may never return (an unknown outcome). Answers are random, so about
    /// half the histories are linearizable.
    fn history() -> impl Strategy<Value = Vec<Event>> {
        let thread = prop::collection::vec(call_answer(), 1..=3);
        (
            prop::collection::vec(thread, 2..=3),
            prop::collection::vec(any::<prop::sample::Index>(), 24),
            prop::collection::vec(any::<bool>(), 3),
        )
            .prop_map(|(threads, schedule, unanswered)| {
                // Each thread's events: invoke, return, invoke, return, ...; the last return
                // may be left out.
                let mut queues: Vec<Vec<Event>> = threads
                    .iter()
                    .enumerate()
                    .map(|(t, calls)| {
                        let mut evs = Vec::new();
                        for (n, (c, a)) in calls.iter().enumerate() {
                            evs.push(Event::Invoke(t, c.clone()));
                            // stateright never places an unanswered call of a thread with
                            // no answered one (its search walks threads with answers), where
                            // ours may: only a thread's later calls are left unanswered.
                            if n + 1 < calls.len() || n == 0 || !unanswered[t] {
                                evs.push(Event::Return(t, a.clone()));
                            }
                        }
                        evs.reverse();
                        evs
                    })
                    .collect();
                let mut out = Vec::new();
                let mut pick = schedule.into_iter().cycle();
                while queues.iter().any(|q| !q.is_empty()) {
                    let live: Vec<usize> = (0..queues.len())
                        .filter(|&t| !queues[t].is_empty())
                        .collect();
                    let t = live[pick.next().expect("cycled").index(live.len())];
                    out.push(queues[t].pop().expect("live"));
                }
                out
            })
    }

    /// The events as our checker takes them: each call with its send and answer instants.
    fn ops_of(events: &[Event]) -> Vec<Op<Call, Answer>> {
        let mut ops: Vec<Op<Call, Answer>> = Vec::new();
        let mut open: Vec<Option<usize>> = vec![None; 3];
        for (at, e) in events.iter().enumerate() {
            match e {
                Event::Invoke(t, c) => {
                    open[*t] = Some(ops.len());
                    ops.push(op(c.clone(), None, at as u64, None));
                }
                Event::Return(t, a) => {
                    let n = open[*t].take().expect("a return follows its invoke");
                    ops[n].answer = Some(a.clone());
                    ops[n].answered = Some(at as u64);
                }
            }
        }
        ops
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Our verdict equals stateright's on every small history (the final state is not
        /// read: stateright's tester has no notion of it, so every state is accepted).
        #[test]
        fn the_checker_agrees_with_stateright_on_small_random_histories(events in history()) {
            let mut tester = LinearizabilityTester::new(Reference::default());
            for e in &events {
                match e {
                    Event::Invoke(t, c) => { tester.on_invoke(*t, c.clone()).expect("well formed"); }
                    Event::Return(t, a) => { tester.on_return(*t, a.clone()).expect("well formed"); }
                }
            }
            let ours = check(&Keys, [0, 0], &ops_of(&events), |_| true).is_ok();
            prop_assert_eq!(ours, tester.is_consistent(), "{:?}", events);
        }
    }

    #[test]
    fn the_random_histories_hold_both_verdicts() {
        // The cross-check above means something only if both verdicts occur often.
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let (mut yes, mut no) = (0, 0);
        for _ in 0..500 {
            let events = history()
                .new_tree(&mut runner)
                .expect("a history")
                .current();
            match check(&Keys, [0, 0], &ops_of(&events), |_| true) {
                Ok(_) => yes += 1,
                Err(_) => no += 1,
            }
        }
        assert!(yes > 50 && no > 50, "linearizable {yes}, not {no}");
    }
}
