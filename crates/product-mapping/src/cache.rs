//! The Redis side: per-shop epochs and read-through entries. Every failure degrades to "not cached".

use std::time::Duration;

use deadpool_redis::redis::{self, AsyncCommands as _};
use domain::ShopId;

/// How long an entry lives. Changes made through [`crate::Mappings`] invalidate at once through the epoch; the TTL
/// bounds memory, and how long a change written around this crate (plain SQL) can go unseen.
const TTL: Duration = Duration::from_secs(600);
/// "Not mapped" answers live shorter: a mapping added out of band is picked up within a minute.
const NEGATIVE_TTL: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub(crate) struct Cache {
    redis: Option<deadpool_redis::Pool>,
}

fn epoch_key(shop: ShopId) -> String {
    format!("sb:pm:epoch:{shop}")
}

fn entry_key(shop: ShopId, epoch: u64, key: &str) -> String {
    format!("sb:pm:{shop}:{epoch}:{key}")
}

impl Cache {
    pub(crate) fn new(redis: Option<deadpool_redis::Pool>) -> Self {
        Self { redis }
    }

    async fn conn(&self) -> Option<deadpool_redis::Connection> {
        let pool = self.redis.as_ref()?;
        match pool.get().await {
            Ok(conn) => Some(conn),
            Err(e) => {
                metrics::counter!("mapping_cache_total", "result" => "error").increment(1);
                tracing::debug!(error = %e, "mapping cache unavailable; reading PostgreSQL");
                None
            }
        }
    }

    /// The shop's current epoch, creating a random one when missing (first use, or after a flush). `None` when
    /// Redis is unavailable.
    pub(crate) async fn epoch(&self, shop: ShopId) -> Option<u64> {
        let mut conn = self.conn().await?;
        let key = epoch_key(shop);
        let current: redis::RedisResult<Option<u64>> = conn.get(&key).await;
        match current {
            Ok(Some(epoch)) => Some(epoch),
            Ok(None) => {
                let fresh: u64 = rand::random::<u64>() >> 2;
                let _: redis::RedisResult<bool> = conn.set_nx(&key, fresh).await;
                conn.get::<_, Option<u64>>(&key).await.ok().flatten()
            }
            Err(_) => None,
        }
    }

    pub(crate) async fn get(&self, shop: ShopId, key: &str) -> Option<String> {
        let epoch = self.epoch(shop).await?;
        let mut conn = self.conn().await?;
        let value: Option<String> = conn.get(entry_key(shop, epoch, key)).await.ok().flatten();
        let result = if value.is_some() { "hit" } else { "miss" };
        metrics::counter!("mapping_cache_total", "result" => result).increment(1);
        value
    }

    /// Caches `value` under the epoch read *before* PostgreSQL was read: if a change committed in between, the
    /// epoch moved on and this entry is never read.
    pub(crate) async fn put(&self, shop: ShopId, epoch: Option<u64>, key: &str, value: &str) {
        let Some(epoch) = epoch else { return };
        if let Some(mut conn) = self.conn().await {
            let ttl = if value.is_empty() { NEGATIVE_TTL } else { TTL };
            let _: redis::RedisResult<()> = conn
                .set_ex(entry_key(shop, epoch, key), value, ttl.as_secs())
                .await;
        }
    }

    /// After a committed change: every entry of the shop becomes unreachable.
    pub(crate) async fn invalidate(&self, shop: ShopId) {
        if let Some(mut conn) = self.conn().await {
            let key = epoch_key(shop);
            let fresh: u64 = rand::random::<u64>() >> 2;
            let _: redis::RedisResult<bool> = conn.set_nx(&key, fresh).await;
            let bumped: redis::RedisResult<u64> = conn.incr(&key, 1).await;
            if let Err(e) = bumped {
                tracing::warn!(error = %e, shop.id = shop.get(), "could not invalidate the mapping cache");
            }
        }
    }
}
