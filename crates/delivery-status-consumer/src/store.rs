//! PostgreSQL: the orders' delivery state (forward-only, compare-and-set) and this worker's dead letters.

use dead_letters::{DeadLetterKind, DeadLetterStatus};
use domain::delivery::DeliveryState;
use domain::{OrderSn, ShopId};
use pg_enum::Text;
use sqlx::{PgPool, Postgres, Row, Transaction};

/// The `dead_letters.source` of this worker.
pub const SOURCE: &str = "delivery-status-consumer";
/// The `dead_letters.kind` of every row it parks.
pub const KIND: DeadLetterKind = DeadLetterKind::DeliveryEvent;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("PostgreSQL failed ({0}); check DATABASE_URL and that PostgreSQL is up")]
    Db(#[from] sqlx::Error),
    #[error("orders.delivery_state of {order_sn} holds an unknown value: {problem}")]
    Corrupt { order_sn: String, problem: String },
}

impl StoreError {
    /// Worth retrying (the database is unreachable or busy), as opposed to a value it will never accept
    /// (SQLSTATE classes 22 data exception and 23 integrity violation) or corrupt data.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Db(sqlx::Error::Database(e)) => !e
                .code()
                .is_some_and(|c| c.starts_with("22") || c.starts_with("23")),
            Self::Db(_) => true,
            Self::Corrupt { .. } => false,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What the consumer needs to know about a Shopee order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRow {
    pub shop_id: ShopId,
    pub state: DeliveryState,
    pub ordr_order_id: Option<String>,
}

/// A dead letter claimed for a redrive.
#[derive(Debug, Clone)]
pub struct Redrive {
    pub id: i64,
    pub payload: serde_json::Value,
}

#[derive(Clone)]
pub struct Store {
    pool: PgPool,
}

impl Store {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The order by its Shopee number, `None` when it is not a Shopee order we received.
    pub async fn order(&self, order_sn: &OrderSn) -> Result<Option<OrderRow>> {
        let row =
            sqlx::query("SELECT shop_id, delivery_state, ordr_order_id FROM orders WHERE order_sn = $1")
                .bind(order_sn.as_str())
                .fetch_optional(&self.pool)
                .await?;
        let Some(row) = row else { return Ok(None) };
        let corrupt = |problem: String| StoreError::Corrupt {
            order_sn: order_sn.to_string(),
            problem,
        };
        let shop_id: i64 = row.try_get("shop_id")?;
        let Text(state): Text<DeliveryState> = row
            .try_get("delivery_state")
            .map_err(|e| corrupt(e.to_string()))?;
        Ok(Some(OrderRow {
            shop_id: ShopId::from_i64(shop_id).map_err(|e| corrupt(e.to_string()))?,
            state,
            ordr_order_id: row.try_get("ordr_order_id")?,
        }))
    }

    /// Moves the order from `from` to `to` and records the ORDR id. `false` when the order is no longer in `from`
    /// (another consumer moved it): it never moves backwards, whoever writes last.
    pub async fn advance(
        &self,
        order_sn: &OrderSn,
        from: DeliveryState,
        to: DeliveryState,
        ordr_order_id: &str,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE orders SET delivery_state = $3, delivery_updated_at = now(), updated_at = now(), \
               ordr_order_id = $4 \
             WHERE order_sn = $1 AND delivery_state = $2",
        )
        .bind(order_sn.as_str())
        .bind(Text(from))
        .bind(Text(to))
        .bind(ordr_order_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records the ORDR id of an order the event did not move (only called when it differs).
    pub async fn record_ordr_order_id(&self, order_sn: &OrderSn, ordr_order_id: &str) -> Result<()> {
        sqlx::query(
            "UPDATE orders SET ordr_order_id = $2, updated_at = now() \
             WHERE order_sn = $1 AND ordr_order_id IS DISTINCT FROM $2",
        )
        .bind(order_sn.as_str())
        .bind(ordr_order_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Parks an event with its reason. The same event parked again (replayed after a crash) bumps the existing
    /// row's attempts instead of adding a second row.
    pub async fn park(&self, reference: &str, reason: &str, payload: &serde_json::Value) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let bumped = sqlx::query(
            "UPDATE dead_letters SET attempts = attempts + 1, reason = $3, updated_at = now() \
             WHERE source = $1 AND kind = $2 AND reference = $4 AND status = $5",
        )
        .bind(SOURCE)
        .bind(KIND)
        .bind(reason)
        .bind(reference)
        .bind(DeadLetterStatus::Parked)
        .execute(&mut *tx)
        .await?;
        if bumped.rows_affected() == 0 {
            sqlx::query(
                "INSERT INTO dead_letters (source, kind, reference, reason, payload) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(SOURCE)
            .bind(KIND)
            .bind(reference)
            .bind(reason)
            .bind(payload)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        metrics::counter!("dead_letters_total", "source" => SOURCE, "kind" => KIND.as_str()).increment(1);
        Ok(())
    }

    /// Claims up to `limit` rows whose redrive was requested (locked until the transaction ends, so replicas
    /// share them out).
    pub async fn claim_redrives(&self, limit: i64) -> Result<(Transaction<'static, Postgres>, Vec<Redrive>)> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(
            "SELECT id, payload FROM dead_letters \
             WHERE source = $1 AND status = $3 \
             ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED",
        )
        .bind(SOURCE)
        .bind(limit)
        .bind(DeadLetterStatus::RedriveRequested)
        .fetch_all(&mut *tx)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(Redrive {
                id: row.try_get("id")?,
                payload: row.try_get("payload")?,
            });
        }
        Ok((tx, out))
    }

    /// Ends a redrive: `redriven` when the event now has its effect, back to `parked` with the new reason otherwise.
    pub async fn finish_redrive(
        tx: &mut Transaction<'static, Postgres>,
        id: i64,
        parked_again: Option<&str>,
    ) -> Result<()> {
        match parked_again {
            None => {
                sqlx::query(
                    "UPDATE dead_letters SET status = $2, redrive_count = redrive_count + 1, updated_at = now() \
                     WHERE id = $1",
                )
                .bind(id)
                .bind(DeadLetterStatus::Redriven)
                .execute(&mut **tx)
                .await?;
            }
            Some(reason) => {
                sqlx::query(
                    "UPDATE dead_letters SET status = $3, reason = $2, attempts = attempts + 1, \
                       redrive_count = redrive_count + 1, updated_at = now() \
                     WHERE id = $1",
                )
                .bind(id)
                .bind(reason)
                .bind(DeadLetterStatus::Parked)
                .execute(&mut **tx)
                .await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `orders.delivery_state`'s CHECK holds `domain`'s spellings.
    #[test]
    fn delivery_states_match_the_migration() {
        let sql = include_str!("../../../migrations/20261126000020_orders_outbox_dead_letters.sql");
        let states: Vec<&str> = DeliveryState::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(pg_enum::check_lists(sql, "delivery_state"), vec![states]);
    }
}
