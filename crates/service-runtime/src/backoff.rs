//! The one backoff formula of seller-backend: exponential from `base`, capped at `max`. Every retry delay a binary
//! computes (a row's `next_attempt_at`, a step retried in place, a periodic task that keeps failing) comes from
//! [`delay`], optionally spread with [`full_jitter`].
//!
//! The Shopee client keeps its own (`shopee_client::retry`): it honours `Retry-After` and sits below this crate.

use std::time::Duration;

/// The wait after failed attempt number `attempt` (0-based): `base * 2^attempt`, never more than `max`.
///
/// `delay(base, max, 0) == base.min(max)`; the doubling saturates instead of overflowing, so any `attempt` is fine.
pub fn delay(base: Duration, max: Duration, attempt: u32) -> Duration {
    let factor = 1u32 << attempt.min(31);
    base.saturating_mul(factor).min(max)
}

/// "Full jitter": a uniform value in `[0, d]`, so that callers that failed together do not come back together.
/// Use it where nothing depends on the exact wait (a deadlock retried, a burst of failures); keep [`delay`] alone
/// where the wait is part of a contract (stored as a row's next attempt, asserted by a test).
pub fn full_jitter(d: Duration) -> Duration {
    let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(rand::random_range(0..=nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn doubles_from_the_base_up_to_the_cap() {
        let (base, max) = (100 * MS, 1000 * MS);
        let waits: Vec<_> = (0..6).map(|a| delay(base, max, a)).collect();
        assert_eq!(waits, [100 * MS, 200 * MS, 400 * MS, 800 * MS, max, max]);
    }

    #[test]
    fn a_huge_attempt_saturates_at_the_cap() {
        assert_eq!(delay(MS, Duration::from_secs(60), 1000), Duration::from_secs(60));
        assert_eq!(
            delay(Duration::MAX, Duration::from_secs(1), 5),
            Duration::from_secs(1)
        );
        assert_eq!(delay(500 * MS, Duration::from_secs(9), 0), 500 * MS);
        assert_eq!(
            delay(500 * MS, 200 * MS, 0),
            200 * MS,
            "the cap wins over the base"
        );
    }

    #[test]
    fn full_jitter_stays_between_zero_and_the_delay() {
        let d = 250 * MS;
        let spread: Vec<_> = (0..200).map(|_| full_jitter(d)).collect();
        assert!(spread.iter().all(|w| *w <= d));
        assert!(spread.iter().any(|w| *w != spread[0]), "not a constant");
        assert_eq!(full_jitter(Duration::ZERO), Duration::ZERO);
    }
}
