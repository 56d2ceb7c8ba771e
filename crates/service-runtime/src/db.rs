//! PostgreSQL: the connection pool and the embedded migrations (`migrations/` at the workspace root).

use std::time::Duration;

use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;

use crate::config::Secret;

/// The schema, embedded at compile time so the binaries need no files at run time.
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations");

/// A pool that connects on first use, so a binary is ready to serve health checks at once and a database that is
/// down at start-up shows as "not ready" rather than a crash.
pub fn lazy_pool(url: &Secret, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(3))
        .idle_timeout(Duration::from_secs(300))
        .connect_lazy(url.expose())
}

/// Applies every pending migration (under PostgreSQL's advisory lock, so concurrent runs are safe).
pub async fn migrate(url: &Secret) -> anyhow::Result<usize> {
    use anyhow::Context as _;
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url.expose())
        .await
        .context("cannot connect to DATABASE_URL to migrate")?;
    let before = applied_count(&pool).await.unwrap_or(0);
    MIGRATOR.run(&pool).await.context("applying migrations failed")?;
    let after = applied_count(&pool).await?;
    pool.close().await;
    Ok(after.saturating_sub(before))
}

async fn applied_count(pool: &PgPool) -> Result<usize, sqlx::Error> {
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(pool)
        .await?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// Readiness: one round trip.
pub async fn ping(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT 1").execute(pool).await.map(|_| ())
}
