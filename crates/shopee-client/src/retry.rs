//! Backoff between attempts.

use std::time::Duration;

use rand::RngExt;

use crate::config::RetryPolicy;

/// The wait before attempt `attempt + 1`, after attempt `attempt` (1-based) failed.
///
/// Without `Retry-After`: "equal jitter", a uniform value in `[d/2, d]` with `d = min(max_delay, base * 2^(attempt-1))`,
/// so callers that failed together do not come back together. With `Retry-After`: that value (capped at
/// `max_retry_after`) plus up to 10% jitter, never less than Shopee asked for.
pub fn backoff(policy: &RetryPolicy, attempt: u32, retry_after: Option<Duration>) -> Duration {
    let mut rng = rand::rng();
    backoff_with(policy, attempt, retry_after, |lo, hi| {
        if hi <= lo { lo } else { rng.random_range(lo..=hi) }
    })
}

/// `backoff` with the random source given (`pick(lo, hi)` returns a value in `lo..=hi`, in microseconds).
pub(crate) fn backoff_with(
    policy: &RetryPolicy,
    attempt: u32,
    retry_after: Option<Duration>,
    mut pick: impl FnMut(u64, u64) -> u64,
) -> Duration {
    if let Some(ra) = retry_after {
        let ra = ra.min(policy.max_retry_after);
        let us = micros(ra);
        return Duration::from_micros(pick(us, us + us / 10));
    }
    let exp = attempt.saturating_sub(1).min(30);
    let d = micros(policy.base_delay)
        .saturating_mul(1u64 << exp)
        .min(micros(policy.max_delay));
    Duration::from_micros(pick(d / 2, d))
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Parses `Retry-After` given in seconds (Shopee does not send HTTP dates).
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            max_retry_after: Duration::from_secs(30),
        }
    }

    #[test]
    fn doubles_up_to_the_cap() {
        let hi = |a| backoff_with(&policy(), a, None, |_, hi| hi);
        assert_eq!(hi(1), Duration::from_millis(100));
        assert_eq!(hi(2), Duration::from_millis(200));
        assert_eq!(hi(3), Duration::from_millis(400));
        assert_eq!(hi(6), Duration::from_secs(2));
        assert_eq!(hi(60), Duration::from_secs(2));
        let lo = |a| backoff_with(&policy(), a, None, |lo, _| lo);
        assert_eq!(lo(2), Duration::from_millis(100));
    }

    #[test]
    fn honours_retry_after_capped() {
        let d = backoff_with(&policy(), 1, Some(Duration::from_secs(3)), |lo, _| lo);
        assert_eq!(d, Duration::from_secs(3));
        let d = backoff_with(&policy(), 1, Some(Duration::from_secs(3600)), |lo, _| lo);
        assert_eq!(d, Duration::from_secs(30));
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    proptest! {
        #[test]
        fn jitter_stays_within_bounds(attempt in 1u32..100, base_ms in 1u64..5_000, max_ms in 1u64..60_000) {
            let p = RetryPolicy { base_delay: Duration::from_millis(base_ms), max_delay: Duration::from_millis(max_ms), ..policy() };
            let d = backoff(&p, attempt, None);
            let cap = Duration::from_millis(base_ms).saturating_mul(1 << (attempt - 1).min(30)).min(Duration::from_millis(max_ms));
            prop_assert!(d <= cap);
            prop_assert!(d >= cap / 2 - Duration::from_micros(1));
        }

        #[test]
        fn never_earlier_than_retry_after(secs in 0u64..30, attempt in 1u32..10) {
            let d = backoff(&policy(), attempt, Some(Duration::from_secs(secs)));
            prop_assert!(d >= Duration::from_secs(secs));
            prop_assert!(d <= Duration::from_secs(secs) + Duration::from_secs(secs) / 10 + Duration::from_micros(1));
        }
    }
}
