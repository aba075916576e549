//! Pacing: requests per second per API, evenly spaced.

use std::time::Duration;

use crate::spec::LoadedApi;

/// Spaces requests evenly at a fixed rate. Waiters are served in turn; one that gives up
/// waiting (a run cut short by its deadline) leaves no slot taken behind it.
pub struct Limiter {
    interval: Duration,
    next: tokio::sync::Mutex<tokio::time::Instant>,
    /// The next free slot as last taken, for [`Limiter::ahead`] (the lock above is held across
    /// a waiter's sleep).
    shown: std::sync::Mutex<tokio::time::Instant>,
}

impl Limiter {
    /// At most `per_second` requests per second.
    pub fn new(per_second: f64) -> Limiter {
        Limiter {
            interval: Duration::from_secs_f64(1.0 / per_second.max(0.001)),
            next: tokio::sync::Mutex::new(tokio::time::Instant::now()),
            shown: std::sync::Mutex::new(tokio::time::Instant::now()),
        }
    }

    /// Waits for the next slot. Cancel-safe: the slot is taken only once the wait is over (the
    /// lock is fair, so waiters go in the order they came).
    pub async fn acquire(&self) {
        let mut next = self.next.lock().await;
        let at = (*next).max(tokio::time::Instant::now());
        tokio::time::sleep_until(at).await;
        *next = at + self.interval;
        *self.shown.lock().unwrap_or_else(|e| e.into_inner()) = *next;
    }

    /// How long a request asking now would wait for its slot.
    pub fn ahead(&self) -> Duration {
        let next = *self.shown.lock().unwrap_or_else(|e| e.into_inner());
        next.saturating_duration_since(tokio::time::Instant::now())
    }
}

/// Requests per second for an API against this target: `--rate`, else the documented limit
/// against a remote target (10/s where the documents state none), else unlimited on loopback.
pub fn rate_for(api: &LoadedApi, loopback: bool, rate: Pace) -> Option<f64> {
    match rate {
        Pace::PerSecond(r) => Some(r),
        Pace::Unlimited => None,
        Pace::Documented if loopback => None,
        Pace::Documented => Some(documented_rate(api)),
    }
}

/// How fast requests go per API (`--rate`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Pace {
    /// The documented limit against a target off this machine (10/s where none is
    /// documented), no limit on loopback.
    #[default]
    Documented,
    /// No limit (`--rate 0`).
    Unlimited,
    /// At most this many requests per second (a positive number).
    PerSecond(f64),
}

impl Pace {
    /// `--rate`'s value: absent → documented, 0 (or less) → unlimited, else at most that.
    pub fn from_flag(rate: Option<f64>) -> Pace {
        match rate {
            None => Pace::Documented,
            Some(r) if r > 0.0 => Pace::PerSecond(r),
            Some(_) => Pace::Unlimited,
        }
    }
}

/// The API's documented rate (the lowest, if several are given), or 10/s where none is.
pub fn documented_rate(api: &LoadedApi) -> f64 {
    api.spec
        .api
        .rate_limits
        .iter()
        .map(|r| f64::from(r.per_second))
        .reduce(f64::min)
        .unwrap_or(10.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_rates_apply_to_remote_targets_only() {
        let set = crate::spec::load_embedded().unwrap();
        let api = |n: &str| set.find(n).unwrap();
        let cvm = api("tencent-cvm/AssociateInstancesKeyPairs");
        let ecm = api("tencent-ecm/DisassociateInstancesKeyPairs");
        let ecs = api("alibaba-ecs/DetachKeyPair");
        assert_eq!(rate_for(cvm, false, Pace::Documented), Some(10.0));
        assert_eq!(rate_for(ecm, false, Pace::Documented), Some(20.0));
        assert_eq!(
            rate_for(ecs, false, Pace::Documented),
            Some(10.0),
            "none documented: a careful default"
        );
        assert_eq!(
            rate_for(cvm, true, Pace::Documented),
            None,
            "loopback is not capped"
        );
        assert_eq!(
            rate_for(cvm, false, Pace::from_flag(Some(0.0))),
            None,
            "--rate 0 lifts the cap"
        );
        assert_eq!(rate_for(cvm, true, Pace::from_flag(Some(3.0))), Some(3.0));
        assert_eq!(Pace::from_flag(None), Pace::Documented);
        assert_eq!(Pace::from_flag(Some(-1.0)), Pace::Unlimited);
    }

    #[tokio::test(start_paused = true)]
    async fn the_limiter_spaces_requests_evenly() {
        let l = Limiter::new(4.0);
        let start = tokio::time::Instant::now();
        for _ in 0..5 {
            l.acquire().await;
        }
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(1000),
            "5 slots at 4/s span 1 s"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_given_up_takes_no_slot() {
        let l = Limiter::new(0.05);
        l.acquire().await;
        for _ in 0..16 {
            let given_up = tokio::time::timeout(Duration::from_millis(10), l.acquire()).await;
            assert!(given_up.is_err());
        }
        let start = tokio::time::Instant::now();
        l.acquire().await;
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(20_000 - 160),
            "the next slot is 20 s after the first, not after 16 abandoned ones"
        );
    }
}
