//! `Idempotency-Key`: the first request's hash and, once it finished, its response. A retry with the same key and
//! body gets the stored response; a retry while the first is still working gets 409; a retry after the first died
//! (its lease expired) takes over and resumes the campaign where it stopped.

use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::error::ApiError;

/// How long a request holds a key before a retry may take over; renewed as the work goes on.
pub const LEASE_SECS: i64 = 120;

pub enum Begin {
    /// First time: go ahead.
    New,
    /// The first request finished: answer this.
    Replay { status: u16, body: Value },
    /// The first request died after recording its campaign: resume it.
    Resume { campaign_id: i64 },
}

/// SHA-256 of the canonical JSON (serde_json sorts object keys), hex.
pub fn request_hash(body: &Value) -> String {
    hex::encode(Sha256::digest(body.to_string().as_bytes()))
}

pub fn validate_key(key: &str) -> Result<(), ApiError> {
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::BadRequest(
            "Idempotency-Key must be 1 to 255 visible ASCII characters (a UUID is a good choice)".into(),
        ));
    }
    Ok(())
}

pub async fn begin(pool: &PgPool, scope: &str, key: &str, hash: &str) -> Result<Begin, ApiError> {
    let mut tx = pool.begin().await?;
    let inserted: Option<String> = sqlx::query_scalar(
        "INSERT INTO idempotency_keys (scope, key, request_hash, locked_until)
         VALUES ($1, $2, $3, now() + make_interval(secs => $4))
         ON CONFLICT DO NOTHING RETURNING key",
    )
    .bind(scope)
    .bind(key)
    .bind(hash)
    .bind(LEASE_SECS as f64)
    .fetch_optional(&mut *tx)
    .await?;
    if inserted.is_some() {
        tx.commit().await?;
        return Ok(Begin::New);
    }
    let (stored_hash, campaign_id, status, body, leased): (
        String,
        Option<i64>,
        Option<i32>,
        Option<Value>,
        Option<f64>,
    ) = sqlx::query_as(
        "SELECT request_hash, campaign_id, response_status, response_body,
                    CASE WHEN locked_until > now() THEN EXTRACT(EPOCH FROM locked_until - now())::float8 END
             FROM idempotency_keys WHERE scope = $1 AND key = $2 FOR UPDATE",
    )
    .bind(scope)
    .bind(key)
    .fetch_one(&mut *tx)
    .await?;
    if stored_hash != hash {
        return Err(ApiError::unprocessable(
            "this Idempotency-Key was already used with a different request body; use a new key for a new request",
        ));
    }
    if let (Some(status), Some(body)) = (status, body) {
        return Ok(Begin::Replay {
            status: u16::try_from(status).unwrap_or(500),
            body,
        });
    }
    if let Some(left) = leased {
        return Err(ApiError::Conflict(format!(
            "a request with this Idempotency-Key is still being processed; retry in a few seconds (if that request \
             stopped, its lease lets a retry take over in at most {} s)",
            left.ceil()
        )));
    }
    sqlx::query(
        "UPDATE idempotency_keys SET locked_until = now() + make_interval(secs => $3)
         WHERE scope = $1 AND key = $2",
    )
    .bind(scope)
    .bind(key)
    .bind(LEASE_SECS as f64)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(match campaign_id {
        Some(campaign_id) => Begin::Resume { campaign_id },
        None => Begin::New,
    })
}

/// Links the key to the campaign it created (in the transaction that records the campaign).
pub async fn attach(
    tx: &mut sqlx::PgConnection,
    scope: &str,
    key: &str,
    campaign_id: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE idempotency_keys SET campaign_id = $3 WHERE scope = $1 AND key = $2")
        .bind(scope)
        .bind(key)
        .bind(campaign_id)
        .execute(tx)
        .await
        .map(|_| ())
}

/// Extends the lease while the work goes on.
pub async fn renew(pool: &PgPool, scope: &str, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE idempotency_keys SET locked_until = now() + make_interval(secs => $3)
         WHERE scope = $1 AND key = $2 AND response_status IS NULL",
    )
    .bind(scope)
    .bind(key)
    .bind(LEASE_SECS as f64)
    .execute(pool)
    .await
    .map(|_| ())
}

/// Stores the final response.
pub async fn finish(
    pool: &PgPool,
    scope: &str,
    key: &str,
    status: u16,
    body: &Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE idempotency_keys SET response_status = $3, response_body = $4, locked_until = NULL,
                completed_at = now()
         WHERE scope = $1 AND key = $2",
    )
    .bind(scope)
    .bind(key)
    .bind(i32::from(status))
    .bind(body)
    .execute(pool)
    .await
    .map(|_| ())
}

/// Stores a response for the key (if any) of a campaign whose creation ended without its request: a retry with the
/// key gets it.
pub async fn answer_unfinished(
    pool: &PgPool,
    campaign_id: i64,
    status: u16,
    body: &Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE idempotency_keys SET response_status = $2, response_body = $3, locked_until = NULL,
                completed_at = now()
         WHERE campaign_id = $1 AND response_status IS NULL",
    )
    .bind(campaign_id)
    .bind(i32::from(status))
    .bind(body)
    .execute(pool)
    .await
    .map(|_| ())
}

/// Gives the key up without a response (the request failed transiently before recording anything): a retry
/// starts afresh at once.
pub async fn release(pool: &PgPool, scope: &str, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE idempotency_keys SET locked_until = NULL WHERE scope = $1 AND key = $2 AND response_status IS NULL",
    )
    .bind(scope)
    .bind(key)
    .execute(pool)
    .await
    .map(|_| ())
}
