//! Rate limiting per shop and per API, shared by every replica through Redis.
//!
//! The algorithm is GCRA (a token bucket kept as one "theoretical arrival time" per key) with *reservation*: a
//! caller reserves the next free slot atomically (one Lua script over the shop key and, when configured, the API
//! key) and then sleeps until it, so waiting callers never poll Redis and slots are handed out in order. The clock
//! is Redis' own (`TIME`), so replicas with skewed clocks still share one timeline.
//!
//! If Redis cannot be reached, the limiter degrades to the same algorithm in process memory and logs a warning
//! (at most every 30 s): calls go on, each replica then enforcing the whole limit on its own.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use deadpool_redis::Pool;
use deadpool_redis::redis::Script;
use domain::ShopId;

use crate::config::RateLimitConfig;
use crate::error::{Error, Result};

const LUA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = #KEYS
local max_wait = tonumber(ARGV[2 * n + 1])
local start = now
local tats = {}
for i = 1, n do
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  if tat < now then tat = now end
  tats[i] = tat
  local earliest = tat - tonumber(ARGV[2 * i])
  if earliest > start then start = earliest end
end
local wait = start - now
if wait > max_wait then return -1 end
for i = 1, n do
  local interval = tonumber(ARGV[2 * i - 1])
  local tat = tats[i]
  if start > tat then tat = start end
  local new_tat = tat + interval
  local ttl_ms = math.floor((new_tat - now) / 1000) + 1000
  redis.call('SET', KEYS[i], string.format('%d', new_tat), 'PX', ttl_ms)
end
return string.format('%d', wait)
"#;

/// Redis answers slower than this count as "unreachable" for this call.
const REDIS_TIMEOUT: Duration = Duration::from_millis(500);
const WARN_EVERY: Duration = Duration::from_secs(30);

/// One bucket: its key and rate.
#[derive(Debug, Clone)]
struct Bucket {
    key: String,
    interval_us: u64,
    tolerance_us: u64,
}

/// Shared (Redis) or local rate limiter; cheap to share behind the client's `Arc`.
pub struct RateLimiter {
    cfg: RateLimitConfig,
    redis: Option<Pool>,
    script: Script,
    local: Mutex<LocalState>,
}

struct LocalState {
    epoch: Instant,
    tats: HashMap<String, u64>,
    last_warning: Option<Instant>,
}

impl RateLimiter {
    /// `redis = None` limits in process memory only (tests, a single replica).
    pub fn new(cfg: RateLimitConfig, redis: Option<Pool>) -> Self {
        Self {
            cfg,
            redis,
            script: Script::new(LUA),
            local: Mutex::new(LocalState {
                epoch: Instant::now(),
                tats: HashMap::new(),
                last_warning: None,
            }),
        }
    }

    pub fn config(&self) -> &RateLimitConfig {
        &self.cfg
    }

    fn buckets(&self, shop: Option<ShopId>, api: &str) -> Vec<Bucket> {
        let scope = shop.map_or_else(|| "partner".to_owned(), |s| s.to_string());
        // The hash tag `{scope}` keeps a shop's keys in one Redis Cluster slot (one script touches them all).
        let shop_key = format!("{}:{{{scope}}}", self.cfg.key_prefix);
        let burst = u64::from(self.cfg.burst.get());
        let bucket = |key: String, per_second: u32| {
            let interval_us = 1_000_000 / u64::from(per_second.max(1));
            Bucket {
                key,
                interval_us,
                tolerance_us: interval_us * (burst - 1),
            }
        };
        let mut out = vec![bucket(shop_key.clone(), self.cfg.per_shop.get())];
        if let Some(rate) = self.cfg.per_api.get(api) {
            out.push(bucket(format!("{shop_key}:{api}"), rate.get()));
        }
        out
    }

    /// Waits until this call may go; returns how long it waited. Records `shopee_rate_limit_wait_seconds{api}`.
    pub async fn acquire(&self, shop: Option<ShopId>, api: &'static str) -> Result<Duration> {
        let buckets = self.buckets(shop, api);
        let max_wait_us = u64::try_from(self.cfg.max_wait.as_micros()).unwrap_or(u64::MAX);
        let reserved = match self.reserve_redis(&buckets, max_wait_us).await {
            Some(r) => r,
            None => self.reserve_local(&buckets, max_wait_us),
        };
        let Some(wait) = reserved else {
            return Err(Error::Retryable {
                api,
                code: "local_rate_limit".to_owned(),
                message: format!(
                    "the shop's rate limit queue is longer than {:?}; lower the call volume or raise SHOPEE_RATE_LIMIT_PER_SHOP",
                    self.cfg.max_wait
                ),
                request_id: String::new(),
                http_status: None,
                retry_after: None,
            });
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        metrics::histogram!("shopee_rate_limit_wait_seconds", "api" => api).record(wait.as_secs_f64());
        Ok(wait)
    }

    /// `Some(Some(wait))`: reserved; `Some(None)`: queue too long; `None`: Redis unavailable.
    async fn reserve_redis(&self, buckets: &[Bucket], max_wait_us: u64) -> Option<Option<Duration>> {
        let pool = self.redis.as_ref()?;
        let attempt = async {
            let mut conn = pool.get().await.map_err(|e| e.to_string())?;
            let mut inv = self.script.prepare_invoke();
            for b in buckets {
                inv.key(&b.key);
            }
            for b in buckets {
                inv.arg(b.interval_us).arg(b.tolerance_us);
            }
            inv.arg(max_wait_us);
            let v: i64 = inv.invoke_async(&mut conn).await.map_err(|e| e.to_string())?;
            Ok::<i64, String>(v)
        };
        match tokio::time::timeout(REDIS_TIMEOUT, attempt).await {
            Ok(Ok(v)) if v < 0 => Some(None),
            Ok(Ok(v)) => Some(Some(Duration::from_micros(u64::try_from(v).unwrap_or(0)))),
            Ok(Err(e)) => {
                self.warn_degraded(&e);
                None
            }
            Err(_) => {
                self.warn_degraded("timed out");
                None
            }
        }
    }

    fn warn_degraded(&self, why: &str) {
        let mut st = self.local.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if st
            .last_warning
            .is_none_or(|t| now.duration_since(t) >= WARN_EVERY)
        {
            st.last_warning = Some(now);
            tracing::warn!(
                error = why,
                "Redis unreachable for Shopee rate limiting; limiting in this process only until it is back (replicas together may exceed the shop limit)"
            );
        }
    }

    fn reserve_local(&self, buckets: &[Bucket], max_wait_us: u64) -> Option<Duration> {
        let mut st = self.local.lock().unwrap_or_else(|p| p.into_inner());
        let now = u64::try_from(st.epoch.elapsed().as_micros()).unwrap_or(u64::MAX);
        let (wait, updates) = gcra_reserve(now, buckets, |k| st.tats.get(k).copied().unwrap_or(0));
        if wait > max_wait_us {
            return None;
        }
        for (k, tat) in updates {
            st.tats.insert(k, tat);
        }
        Some(Duration::from_micros(wait))
    }
}

/// The GCRA reservation the Lua script makes, in Rust: the wait (µs) and the new arrival time of each bucket.
fn gcra_reserve(now: u64, buckets: &[Bucket], tat_of: impl Fn(&str) -> u64) -> (u64, Vec<(String, u64)>) {
    let tats: Vec<u64> = buckets.iter().map(|b| tat_of(&b.key).max(now)).collect();
    let start = buckets
        .iter()
        .zip(&tats)
        .map(|(b, tat)| tat.saturating_sub(b.tolerance_us))
        .fold(now, u64::max);
    let updates = buckets
        .iter()
        .zip(&tats)
        .map(|(b, tat)| (b.key.clone(), (*tat).max(start) + b.interval_us))
        .collect();
    (start - now, updates)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::num::NonZeroU32;

    use proptest::prelude::*;

    use super::*;

    fn cfg(per_shop: u32, burst: u32) -> RateLimitConfig {
        RateLimitConfig {
            per_shop: NonZeroU32::new(per_shop).unwrap(),
            burst: NonZeroU32::new(burst).unwrap(),
            ..RateLimitConfig::default()
        }
    }

    #[test]
    fn keys_are_per_shop_and_per_api() {
        let mut c = cfg(10, 1);
        c.per_api
            .insert("/api/v2/product/update_stock".into(), NonZeroU32::new(2).unwrap());
        let rl = RateLimiter::new(c, None);
        let shop = ShopId::new(7).ok();
        let b = rl.buckets(shop, "/api/v2/product/update_stock");
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].key, "shopee:rl:{7}");
        assert_eq!(b[1].key, "shopee:rl:{7}:/api/v2/product/update_stock");
        assert_eq!(b[0].interval_us, 100_000);
        assert_eq!(b[1].interval_us, 500_000);
        assert_eq!(rl.buckets(shop, "/api/v2/order/get_order_list").len(), 1);
        assert_eq!(rl.buckets(None, "/x")[0].key, "shopee:rl:{partner}");
    }

    proptest! {
        /// Whatever the arrival pattern, granted slots never exceed burst + rate x elapsed.
        #[test]
        fn gcra_never_exceeds_rate(rate in 1u32..200, burst in 1u32..5, gaps in proptest::collection::vec(0u64..50_000, 1..300)) {
            let rl = RateLimiter::new(cfg(rate, burst), None);
            let buckets = rl.buckets(ShopId::new(1).ok(), "/a");
            let mut tats: HashMap<String, u64> = HashMap::new();
            let mut now = 1_000_000u64;
            let mut slots = Vec::new();
            for g in gaps {
                now += g;
                let (wait, updates) = gcra_reserve(now, &buckets, |k| tats.get(k).copied().unwrap_or(0));
                for (k, v) in updates { tats.insert(k, v); }
                slots.push(now + wait);
            }
            slots.sort_unstable();
            let interval = 1_000_000 / u64::from(rate);
            for (i, s) in slots.iter().enumerate() {
                // Within any window [s, s + w) at most burst + w / interval slots.
                let w = 1_000_000u64;
                let count = slots[i..].iter().take_while(|t| **t < s + w).count() as u64;
                prop_assert!(count <= u64::from(burst) + w / interval, "count {} rate {} burst {}", count, rate, burst);
            }
        }
    }

    #[tokio::test]
    async fn local_limiter_spaces_calls() {
        let rl = RateLimiter::new(cfg(20, 1), None);
        let shop = ShopId::new(1).ok();
        let started = Instant::now();
        for _ in 0..6 {
            rl.acquire(shop, "/a").await.unwrap();
        }
        // 6 calls at 20/s: the last one goes 5 x 50 ms after the first.
        assert!(
            started.elapsed() >= Duration::from_millis(240),
            "{:?}",
            started.elapsed()
        );
    }
}
