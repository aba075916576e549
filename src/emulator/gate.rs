//! Who may hold a connection: the admission and shedding policy shared by the emulator's and
//! the proxy's listeners, so that one peer (one IP address) cannot starve the others.
//!
//! A connection enters through [`Gate::admit`] with its peer's address and leaves when its
//! [`Held`] is dropped. Three bounds hold:
//! - a peer holds at most [`Limits::per_peer`] connections; one more is refused (answered 503);
//! - at most [`Limits::total`] are held at once; past that, a peer holding fewer than the peer
//!   holding the most is let in by shedding one of the latter's connections (one waiting for a
//!   request first, then one waiting for its body, then the oldest), else it is refused;
//! - under pressure (half of either bound reached), [`Gate::sweep`] sheds every connection of
//!   the pressed peers (all peers, when the total is pressed) that has waited longer than
//!   [`Limits::pressed_timeout`] for a request or for its body.
//!
//! No I/O here: a shed connection is told so through [`Conn::shed`], and its task closes it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How many connections a listener holds, and how long it waits on each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections one peer (one IP address) may hold at once. The vendors' SDKs open a few;
    /// the harness's own pool keeps up to 64 idle per host and `tests/proxy` runs 16 clients
    /// at once from one address: [`PER_PEER`] leaves them ample room.
    pub per_peer: usize,
    /// Connections held at once, from every peer.
    pub total: usize,
    /// Longest wait for a request's headers (on a new connection, or the next request on a
    /// kept-alive one).
    pub header_timeout: Duration,
    /// Longest wait for a request's body once its headers arrived.
    pub body_timeout: Duration,
    /// Under pressure, the longest a connection may wait for a request or for its body before
    /// it is shed.
    pub pressed_timeout: Duration,
}

/// The default of [`Limits::per_peer`].
pub const PER_PEER: usize = 256;

/// The default of [`Limits::total`]: four peers at their cap.
pub const TOTAL: usize = 4 * PER_PEER;

/// The default of [`Limits::pressed_timeout`]: an honest client sends a request's head and
/// body in one go once it starts; a pooled idle connection is reopened at no cost.
pub const PRESSED_TIMEOUT: Duration = Duration::from_secs(3);

impl Limits {
    /// The emulator's listener: headers within 10 s, the body within 30 s of them.
    pub const EMULATOR: Limits = Limits {
        per_peer: PER_PEER,
        total: TOTAL,
        header_timeout: Duration::from_secs(10),
        body_timeout: Duration::from_secs(30),
        pressed_timeout: PRESSED_TIMEOUT,
    };

    /// The proxy's listener: headers and body within 30 s each.
    pub const PROXY: Limits = Limits {
        header_timeout: Duration::from_secs(30),
        ..Limits::EMULATOR
    };

    /// Whether `count` connections of one peer, or `live` in all, is pressure.
    fn pressed(&self, count: usize, live: usize) -> bool {
        count * 2 >= self.per_peer || live * 2 >= self.total
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::EMULATOR
    }
}

/// What a held connection is doing, for the shedding order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Waiting for a request (new, or kept alive after an answer).
    Waiting,
    /// Its request's headers arrived; waiting for the body.
    Body,
    /// The body arrived; the answer is being made (the proxy: forwarded).
    Work,
}

/// One held connection, as the gate and the connection's task share it.
#[derive(Debug)]
pub struct Conn {
    id: u64,
    peer: IpAddr,
    phase: Mutex<(Phase, Instant)>,
    shed: tokio::sync::Notify,
    gone: AtomicBool,
}

impl Conn {
    /// Marks the start of a phase.
    pub fn enter(&self, phase: Phase) {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner()) = (phase, Instant::now());
    }

    fn phase(&self) -> (Phase, Instant) {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Completes when the gate sheds this connection: its task then closes it.
    pub async fn shed(&self) {
        self.shed.notified().await;
    }
}

/// Why a connection was not let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Its peer holds [`Limits::per_peer`] connections.
    PeerFull,
    /// [`Limits::total`] are held, none by a peer holding more than this one.
    Full,
}

/// The connections a listener holds, by peer.
#[derive(Debug)]
pub struct Gate {
    limits: Limits,
    state: Mutex<State>,
    live: tokio::sync::watch::Sender<usize>,
}

#[derive(Debug, Default)]
struct State {
    next: u64,
    peers: HashMap<IpAddr, Vec<Arc<Conn>>>,
    live: usize,
}

/// A connection the gate let in; dropping it lets the gate count it out.
#[derive(Debug)]
pub struct Held {
    gate: Arc<Gate>,
    conn: Arc<Conn>,
}

impl Held {
    /// The connection's shared state.
    pub fn conn(&self) -> &Arc<Conn> {
        &self.conn
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.gate.remove(&self.conn);
    }
}

impl Gate {
    /// A gate with `limits`.
    pub fn new(limits: Limits) -> Arc<Gate> {
        Arc::new(Gate {
            limits,
            state: Mutex::default(),
            live: tokio::sync::watch::Sender::new(0),
        })
    }

    /// Its limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Connections held now.
    pub fn live(&self) -> usize {
        self.state().live
    }

    /// Lets a connection of `peer` in (shedding another peer's when the total is reached), or
    /// says why not.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Held, Refused> {
        let mut s = self.state();
        let count = s.peers.get(&peer).map_or(0, Vec::len);
        if count >= self.limits.per_peer {
            return Err(Refused::PeerFull);
        }
        if s.live >= self.limits.total {
            // The peers holding the most give one up, if they hold more than this one would.
            let most = s.peers.values().map(Vec::len).max().unwrap_or(0);
            if s.peers.get(&peer).is_some_and(|c| c.len() == most) || most <= count + 1 {
                return Err(Refused::Full);
            }
            let victim = first_to_shed(
                s.peers
                    .values()
                    .filter(|c| c.len() == most)
                    .flat_map(|c| c.iter()),
            );
            match victim {
                Some(v) => Self::shed_locked(&mut s, &v),
                None => return Err(Refused::Full),
            }
        }
        s.next += 1;
        let conn = Arc::new(Conn {
            id: s.next,
            peer,
            phase: Mutex::new((Phase::Waiting, Instant::now())),
            shed: tokio::sync::Notify::new(),
            gone: AtomicBool::new(false),
        });
        s.peers.entry(peer).or_default().push(conn.clone());
        s.live += 1;
        self.live.send_replace(s.live);
        Ok(Held {
            gate: self.clone(),
            conn,
        })
    }

    /// Under pressure, sheds the connections that waited longer than the pressed timeout for
    /// a request or its body; returns how many.
    pub fn sweep(&self) -> usize {
        let now = Instant::now();
        let mut s = self.state();
        let live = s.live;
        let mut victims = Vec::new();
        for conns in s.peers.values() {
            if !self.limits.pressed(conns.len(), live) {
                continue;
            }
            for c in conns {
                let (phase, since) = c.phase();
                if phase != Phase::Work
                    && now.saturating_duration_since(since) > self.limits.pressed_timeout
                {
                    victims.push(c.clone());
                }
            }
        }
        for v in &victims {
            Self::shed_locked(&mut s, v);
        }
        if !victims.is_empty() {
            self.live.send_replace(s.live);
        }
        victims.len()
    }

    /// Completes when no connection is held.
    pub async fn drained(&self) {
        let mut rx = self.live.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }

    /// Counts `conn` out and tells its task to close it.
    fn shed_locked(s: &mut State, conn: &Arc<Conn>) {
        Self::forget(s, conn);
        conn.shed.notify_one();
    }

    fn forget(s: &mut State, conn: &Conn) {
        if conn.gone.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(conns) = s.peers.get_mut(&conn.peer) {
            conns.retain(|c| c.id != conn.id);
            if conns.is_empty() {
                s.peers.remove(&conn.peer);
            }
        }
        s.live -= 1;
    }

    fn remove(&self, conn: &Conn) {
        let mut s = self.state();
        Self::forget(&mut s, conn);
        self.live.send_replace(s.live);
    }
}

/// The connection to shed first: waiting for a request, then for a body, then working; the
/// longest in its phase first.
fn first_to_shed<'a>(conns: impl Iterator<Item = &'a Arc<Conn>>) -> Option<Arc<Conn>> {
    conns.min_by_key(|c| c.phase()).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    fn small() -> Limits {
        Limits {
            per_peer: 4,
            total: 8,
            pressed_timeout: Duration::from_millis(50),
            ..Limits::EMULATOR
        }
    }

    /// A peer at its cap is refused; another peer is not.
    #[test]
    fn a_peer_at_its_cap_is_refused_and_others_are_not() {
        let gate = Gate::new(small());
        let held: Vec<Held> = (0..4).map(|_| gate.admit(ip(2)).unwrap()).collect();
        assert_eq!(gate.admit(ip(2)).unwrap_err(), Refused::PeerFull);
        let other = gate.admit(ip(1)).unwrap();
        assert_eq!(gate.live(), 5);
        drop(held);
        drop(other);
        assert_eq!(gate.live(), 0);
        gate.admit(ip(2)).unwrap();
    }

    /// At the total, a peer holding fewer gets in by shedding a connection of the biggest
    /// holders, a waiting one before a working one; a peer as big as the biggest is refused.
    #[test]
    fn at_the_total_the_biggest_holder_gives_way_to_a_smaller_one() {
        let gate = Gate::new(small());
        let mut held = Vec::new();
        for peer in [2, 2, 2, 2, 3, 3, 3, 4] {
            held.push(gate.admit(ip(peer)).unwrap());
        }
        for h in &held[1..4] {
            h.conn().enter(Phase::Work);
        }
        let gone = |h: &Held| h.conn().gone.load(Ordering::Acquire);
        // 127.0.0.2 holds four, the most: its waiting one goes.
        let _five = gate.admit(ip(5)).unwrap();
        assert!(gone(&held[0]));
        assert_eq!(gate.live(), 8);
        // Three (working) and three (waiting): a waiting one goes, the working ones stay.
        let _six = gate.admit(ip(6)).unwrap();
        assert!(gone(&held[4]), "the longest waiting of the biggest holders");
        assert!(held[1..4].iter().all(|h| !gone(h)));
        // 127.0.0.2 now holds the most (three): it is refused, and so is 127.0.0.3 (two), as
        // the biggest holds no more than it would.
        assert_eq!(gate.admit(ip(2)).unwrap_err(), Refused::Full);
        assert_eq!(gate.admit(ip(3)).unwrap_err(), Refused::Full);
        assert_eq!(gate.live(), 8);
    }

    /// Under pressure the connections that waited too long are shed; working ones stay, and
    /// without pressure nothing is.
    #[test]
    fn under_pressure_long_waits_are_shed() {
        let gate = Gate::new(small());
        let calm = gate.admit(ip(1)).unwrap();
        let held: Vec<Held> = (0..2).map(|_| gate.admit(ip(2)).unwrap()).collect();
        held[1].conn().enter(Phase::Work);
        std::thread::sleep(Duration::from_millis(80));
        // 127.0.0.2 holds half its cap: pressed; 127.0.0.1 is not (3 of 8 in all).
        assert_eq!(gate.sweep(), 1);
        assert!(held[0].conn().gone.load(Ordering::Acquire));
        assert!(!held[1].conn().gone.load(Ordering::Acquire));
        assert!(!calm.conn().gone.load(Ordering::Acquire));
        assert_eq!(gate.live(), 2);
    }
}
