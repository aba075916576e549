//! Pacing: requests per second per API, evenly spaced.

use std::sync::Mutex;
use std::time::Duration;

use crate::spec::LoadedApi;

/// Spaces requests evenly at a fixed rate.
pub struct Limiter {
    interval: Duration,
    next: Mutex<tokio::time::Instant>,
}

impl Limiter {
    /// At most `per_second` requests per second.
    pub fn new(per_second: f64) -> Limiter {
        Limiter {
            interval: Duration::from_secs_f64(1.0 / per_second.max(0.001)),
            next: Mutex::new(tokio::time::Instant::now()),
        }
    }

    /// Waits for the next slot.
    pub async fn acquire(&self) {
        let at = {
            let mut next = self.next.lock().expect("limiter lock");
            let at = (*next).max(tokio::time::Instant::now());
            *next = at + self.interval;
            at
        };
        tokio::time::sleep_until(at).await;
    }

    /// How long a request asking now would wait for its slot.
    pub fn ahead(&self) -> Duration {
        let next = *self.next.lock().expect("limiter lock");
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
}
