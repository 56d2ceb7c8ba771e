//! Redis: caches and shared rate-limit buckets only; losing it loses no data.

use deadpool_redis::{Config, Pool, Runtime};

use crate::config::Secret;

pub use deadpool_redis;

/// A pool that connects on first use.
pub fn pool(url: &Secret) -> anyhow::Result<Pool> {
    let mut cfg = Config::from_url(url.expose());
    cfg.pool = Some(deadpool_redis::PoolConfig {
        max_size: 16,
        timeouts: deadpool_redis::Timeouts {
            wait: Some(std::time::Duration::from_secs(2)),
            create: Some(std::time::Duration::from_secs(2)),
            recycle: Some(std::time::Duration::from_secs(2)),
        },
        ..Default::default()
    });
    Ok(cfg.create_pool(Some(Runtime::Tokio1))?)
}

/// Readiness: `PING`.
pub async fn ping(pool: &Pool) -> anyhow::Result<()> {
    let mut conn = pool.get().await?;
    let pong: String = deadpool_redis::redis::cmd("PING").query_async(&mut conn).await?;
    anyhow::ensure!(pong == "PONG", "unexpected answer to PING: {pong}");
    Ok(())
}
