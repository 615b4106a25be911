//! The hourly change budget: a `governor` token bucket that runs on the
//! planner's injected time, never the wall clock, so the simulator and tests
//! can drive it and a replayed cycle decides the same way.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

/// `changes_per_hour` normal changes per hour, one at a time (burst 1): with
/// 6 per hour a change may start every 10 minutes, so any 60-minute window
/// `[t, t + 1h)` holds at most 6. Lives across cycles; the agent keeps one.
#[derive(Debug)]
pub struct RateBudget {
    changes_per_hour: u32,
    /// `None` when `changes_per_hour` is 0: nothing is ever granted.
    limiter: Option<Limiter>,
    /// The first instant seen; the clock counts from it.
    origin: Option<i64>,
}

type Limiter = RateLimiter<NotKeyed, InMemoryState, InjectedClock, NoOpMiddleware<Duration>>;

impl RateBudget {
    pub fn new(changes_per_hour: u32) -> Self {
        // Round the interval up, so n changes always span a full hour.
        let interval_ns = 3_600_000_000_000u64.div_ceil(u64::from(changes_per_hour.max(1)));
        let limiter = (changes_per_hour > 0)
            .then(|| Quota::with_period(Duration::from_nanos(interval_ns)))
            .flatten()
            .map(|quota| RateLimiter::direct_with_clock(quota, InjectedClock::default()));
        RateBudget {
            changes_per_hour,
            limiter,
            origin: None,
        }
    }

    pub fn changes_per_hour(&self) -> u32 {
        self.changes_per_hour
    }

    /// Takes one change from the budget at `now` (unix seconds) if there is
    /// one. Time never runs backwards here: an earlier `now` than one seen
    /// before counts as that later instant, so it cannot refill the bucket.
    pub fn try_take(&mut self, now: i64) -> bool {
        let Some(limiter) = &self.limiter else {
            return false;
        };
        let origin = *self.origin.get_or_insert(now);
        let elapsed = u64::try_from(now.saturating_sub(origin)).unwrap_or(0);
        limiter.clock().advance_to(elapsed);
        limiter.check().is_ok()
    }
}

/// Seconds since the budget's origin, set by [`RateBudget::try_take`].
#[derive(Debug, Default)]
struct InjectedClock {
    elapsed_secs: AtomicU64,
}

impl InjectedClock {
    fn advance_to(&self, secs: u64) {
        self.elapsed_secs.fetch_max(secs, Ordering::Relaxed);
    }
}

impl Clock for InjectedClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        Duration::from_secs(self.elapsed_secs.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T0: i64 = 1_717_718_400;

    #[test]
    fn six_per_hour_is_one_every_ten_minutes() {
        let mut budget = RateBudget::new(6);
        assert!(budget.try_take(T0));
        assert!(!budget.try_take(T0), "at most one at once");
        assert!(!budget.try_take(T0 + 599));
        assert!(budget.try_take(T0 + 600));
        assert!(!budget.try_take(T0 + 600));
    }

    #[test]
    fn time_going_backwards_refills_nothing() {
        let mut budget = RateBudget::new(6);
        assert!(budget.try_take(T0 + 3_600));
        assert!(!budget.try_take(T0));
        assert!(!budget.try_take(T0 + 3_600));
        assert!(budget.try_take(T0 + 4_200));
    }

    #[test]
    fn zero_per_hour_grants_nothing() {
        let mut budget = RateBudget::new(0);
        assert!(!budget.try_take(T0));
        assert!(!budget.try_take(T0 + 86_400));
    }

    /// The times at which takes succeeded when trying at each of `tries`.
    fn granted(per_hour: u32, tries: &[i64]) -> Vec<i64> {
        let mut budget = RateBudget::new(per_hour);
        tries
            .iter()
            .copied()
            .filter(|&t| budget.try_take(t))
            .collect()
    }

    fn max_in_any_hour(times: &[i64]) -> usize {
        times
            .iter()
            .map(|&start| {
                times
                    .iter()
                    .filter(|&&t| t >= start && t < start + 3_600)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn trying_every_minute_for_a_day_fills_each_hour_exactly() {
        let tries: Vec<i64> = (0..24 * 60).map(|m| T0 + m * 60).collect();
        let times = granted(6, &tries);
        assert_eq!(times.len(), 6 * 24);
        assert_eq!(max_in_any_hour(&times), 6);
    }

    proptest! {
        #[test]
        fn no_hour_ever_holds_more_than_the_quota(
            per_hour in 1u32..=60,
            gaps in prop::collection::vec(0i64..900, 1..400),
        ) {
            let tries: Vec<i64> = gaps
                .iter()
                .scan(T0, |t, gap| {
                    *t += gap;
                    Some(*t)
                })
                .collect();
            let mut budget = RateBudget::new(per_hour);
            let mut times = Vec::new();
            for &t in &tries {
                // Several takes at one instant: at most one succeeds.
                let took = (0..3).filter(|_| budget.try_take(t)).count();
                prop_assert!(took <= 1);
                if took == 1 {
                    times.push(t);
                }
            }
            prop_assert!(max_in_any_hour(&times) <= per_hour as usize);
        }
    }
}
