//! The gauges order-publisher reports every few seconds: inbox and outbox lag, parked dead letters, and each shop's
//! token and authorization expiry (for the "re-authorize soon" alerts).

use std::time::Duration;

use push_inbox::Inbox;
use sqlx::PgPool;

use crate::outbox::OutboxRelay;

/// How often the gauges are refreshed.
pub const EVERY: Duration = Duration::from_secs(5);

/// Inbox and outbox lag, dead letters parked per source.
pub async fn report_lag(inbox: &Inbox, relay: &OutboxRelay) -> anyhow::Result<()> {
    let (pending, age) = inbox.lag().await?;
    metrics::gauge!("inbox_pending").set(pending as f64);
    metrics::gauge!("inbox_oldest_age_seconds").set(age);
    let (pending, age) = relay.lag().await?;
    metrics::gauge!("outbox_pending").set(pending as f64);
    metrics::gauge!("outbox_oldest_age_seconds").set(age);
    for (source, count) in dead_letters::parked_counts(inbox.pool()).await? {
        metrics::gauge!("dead_letters_parked", "source" => source).set(count as f64);
    }
    Ok(())
}

/// Token and authorization expiry per authorized shop.
pub async fn report_token_expiry(pool: &PgPool) -> anyhow::Result<()> {
    let expiries: Vec<(i64, Option<f64>, Option<f64>)> = sqlx::query_as(
        "SELECT s.shop_id, EXTRACT(EPOCH FROM t.access_expires_at)::float8,
                EXTRACT(EPOCH FROM s.authorization_expires_at)::float8
         FROM shops s LEFT JOIN shop_tokens t USING (shop_id) WHERE s.deauthorized_at IS NULL",
    )
    .fetch_all(pool)
    .await?;
    for (shop, token, authorization) in expiries {
        if let Some(t) = token {
            metrics::gauge!("shop_token_expiry_timestamp_seconds", "shop_id" => shop.to_string()).set(t);
        }
        if let Some(a) = authorization {
            metrics::gauge!("shop_authorization_expiry_timestamp_seconds", "shop_id" => shop.to_string())
                .set(a);
        }
    }
    Ok(())
}
