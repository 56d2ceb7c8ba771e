//! Redrive: dead letters an operator asked to try again (campaign-api `POST /v1/dead-letters/{id}/redrive`) are
//! taken for this worker's source and put back through the normal newest-wins path.
//!
//! - An update Shopee refused for good ([`ParkedUpdate`]): its state row, still parked at that version, becomes
//!   pending again and its item dirty; the flusher checks the mapping, sends it, and if Shopee refuses it for good
//!   again, parks the same dead letter again with the new reason (`store::settle`). When a newer version of the model
//!   arrived meanwhile, nothing is sent: the newer value wins. When the row is gone (the SKU moved to other ids), the
//!   update is resolved again and recorded like a new event, where the UPSERT keeps whichever version is newest.
//! - An event that failed validation: validated again; recorded like a new event when it is valid now (a fixed
//!   validator), parked again with the reason otherwise.
//!
//! Every step is idempotent, so a redrive interrupted by a crash is simply handled again: letters taken in the last
//! [`RESUME_WINDOW`] and not parked again are looked at once more when the loop starts.

use std::time::Duration;

use dead_letters::{DeadLetter, DeadLetterStatus};
use serde_json::Value;
use sqlx::PgPool;

use crate::events::{self, Kind, Update};
use crate::resolve::Resolver;
use crate::store::{self, ParkedUpdate, SOURCE};

/// Letters taken per pass.
const BATCH: i64 = 100;
/// How far back the start-up pass looks for redrives a crash may have interrupted.
pub const RESUME_WINDOW: Duration = Duration::from_secs(3600);

/// What a redrive did with one letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The parked update is pending again; the flusher sends it.
    Rearmed,
    /// Recorded through the newest-wins UPSERT (taken, superseded or needs_mapping, as for a new event).
    Recorded,
    /// A newer version of the model arrived since (or this one was applied already): nothing to send.
    Superseded,
    /// Still cannot be done: parked again with this reason.
    ParkedAgain(String),
}

impl Outcome {
    fn label(&self) -> &'static str {
        match self {
            Outcome::Rearmed => "rearmed",
            Outcome::Recorded => "recorded",
            Outcome::Superseded => "superseded",
            Outcome::ParkedAgain(_) => "parked_again",
        }
    }
}

#[derive(Clone)]
pub struct Redriver {
    pub pool: PgPool,
    pub resolver: Resolver,
    pub flush_window: Duration,
}

impl Redriver {
    /// Takes this source's redrive requests (up to [`BATCH`]) and handles each; returns what happened to each.
    pub async fn run_once(&self) -> anyhow::Result<Vec<(i64, Outcome)>> {
        let letters = dead_letters::take_redrive_requests(&self.pool, SOURCE, BATCH).await?;
        self.handle_all(letters).await
    }

    /// Handles again the letters taken recently that are not parked again (a redrive a crash may have cut short).
    pub async fn resume_interrupted(&self) -> anyhow::Result<Vec<(i64, Outcome)>> {
        let letters: Vec<DeadLetter> = sqlx::query_as(
            "SELECT id, source, kind, reference, reason, payload, status, attempts, redrive_count, created_at, updated_at
             FROM dead_letters
             WHERE source = $1 AND status = $3 AND updated_at > now() - make_interval(secs => $2)
             ORDER BY id",
        )
        .bind(SOURCE)
        .bind(RESUME_WINDOW.as_secs_f64())
        .bind(DeadLetterStatus::Redriven)
        .fetch_all(&self.pool)
        .await?;
        self.handle_all(letters).await
    }

    async fn handle_all(&self, letters: Vec<DeadLetter>) -> anyhow::Result<Vec<(i64, Outcome)>> {
        let mut out = Vec::with_capacity(letters.len());
        for letter in letters {
            let outcome = self.handle(&letter).await?;
            metrics::counter!("catalog_sync_redrives_total", "outcome" => outcome.label()).increment(1);
            tracing::info!(
                dead_letter.id = letter.id,
                reference = letter.reference.as_deref(),
                outcome = outcome.label(),
                "dead letter redriven"
            );
            out.push((letter.id, outcome));
        }
        Ok(out)
    }

    /// One letter. An error leaves it `redriven` (handled again by [`Self::resume_interrupted`] at the next start).
    pub async fn handle(&self, letter: &DeadLetter) -> anyhow::Result<Outcome> {
        match read_letter(letter) {
            Ok(Letter::Parked(p)) => self.redrive_parked(letter, &p).await,
            Ok(Letter::Event { kind, data }) => match events::parse(kind, &data) {
                Ok(update) => {
                    self.record(update).await?;
                    Ok(Outcome::Recorded)
                }
                Err(reason) => self.park_again(letter, reason).await,
            },
            Err(reason) => self.park_again(letter, reason).await,
        }
    }

    async fn redrive_parked(&self, letter: &DeadLetter, p: &ParkedUpdate) -> anyhow::Result<Outcome> {
        let mut tx = self.pool.begin().await?;
        let rearmed = store::rearm_parked(&mut tx, p, self.flush_window).await?;
        tx.commit().await?;
        if rearmed {
            return Ok(Outcome::Rearmed);
        }
        match store::newest_version(&self.pool, p).await? {
            // Applied, pending or re-armed already, or superseded by a newer version: newest wins.
            Some(newest) if newest >= p.version => Ok(Outcome::Superseded),
            // The row is gone (the SKU moved) or older: the update goes through resolution and the UPSERT.
            _ => {
                let Some(update) = update_of(letter, p) else {
                    return self
                        .park_again(letter, format!("the parked update cannot be read back: {p:?}"))
                        .await;
                };
                self.record(update).await?;
                Ok(Outcome::Recorded)
            }
        }
    }

    async fn record(&self, update: Update) -> anyhow::Result<()> {
        let resolutions = self.resolver.resolve(std::slice::from_ref(&update)).await?;
        let resolved: Vec<_> = std::iter::once(update).zip(resolutions).collect();
        store::record(&self.pool, self.flush_window, &resolved, &[]).await?;
        Ok(())
    }

    async fn park_again(&self, letter: &DeadLetter, reason: String) -> anyhow::Result<Outcome> {
        dead_letters::repark(&self.pool, letter.id, &reason).await?;
        Ok(Outcome::ParkedAgain(reason))
    }
}

/// What a catalog dead letter holds.
#[derive(Debug)]
enum Letter {
    /// An update Shopee refused (parked by the flusher).
    Parked(ParkedUpdate),
    /// A message that failed validation (parked by the consumer): its body.
    Event { kind: Kind, data: Vec<u8> },
}

fn read_letter(letter: &DeadLetter) -> Result<Letter, String> {
    let Some(kind) = Kind::of_dead_letter(letter.kind) else {
        return Err(format!(
            "dead letters of kind {} cannot be redriven by {SOURCE}",
            letter.kind
        ));
    };
    if letter.payload.get("version").is_some() {
        let p: ParkedUpdate = serde_json::from_value(letter.payload.clone())
            .map_err(|e| format!("the parked update cannot be read ({e}); redrive cannot resend it"))?;
        return Ok(Letter::Parked(p));
    }
    match letter.payload.get("data") {
        // The consumer keeps JSON bodies as JSON and anything else as text.
        Some(Value::String(text)) => Ok(Letter::Event {
            kind,
            data: text.clone().into_bytes(),
        }),
        Some(json) => Ok(Letter::Event {
            kind,
            data: serde_json::to_vec(json).unwrap_or_default(),
        }),
        None => Err("the dead letter holds neither a parked update nor a message body".to_owned()),
    }
}

/// The update a parked letter stands for.
fn update_of(letter: &DeadLetter, p: &ParkedUpdate) -> Option<Update> {
    Some(Update {
        kind: p.kind,
        event_id: p
            .event_id
            .clone()
            .unwrap_or_else(|| format!("dead-letter-{}", letter.id)),
        sku: domain::Sku::parse(&p.sku).ok()?,
        hub_id: domain::HubId::parse(&p.hub_id).ok()?,
        version: p.version,
        value: p.value,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use chrono::Utc;
    use serde_json::json;

    use super::*;

    fn letter(kind: &str, payload: Value) -> DeadLetter {
        let kind = kind.parse().unwrap();
        DeadLetter {
            id: 7,
            source: SOURCE.into(),
            kind,
            reference: None,
            reason: "r".into(),
            payload,
            status: DeadLetterStatus::Redriven,
            attempts: 1,
            redrive_count: 1,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn reads_both_kinds_of_letter() {
        let parked = letter(
            "price_update",
            json!({"shop_id": 1, "item_id": 2, "model_id": 0, "kind": "price", "location_id": "", "sku": "A",
                   "hub_id": "H", "version": 5, "value": 1290}),
        );
        let Ok(Letter::Parked(p)) = read_letter(&parked) else {
            panic!("a parked update")
        };
        assert_eq!((p.version, p.value, p.event_id.as_deref()), (5, 1290, None));
        let u = update_of(&parked, &p).unwrap();
        assert_eq!(
            (u.kind, u.event_id.as_str(), u.version),
            (Kind::Price, "dead-letter-7", 5)
        );

        let text = letter(
            "inventory_update",
            json!({"message_id": "m", "subscription": "s", "data": "{not json"}),
        );
        let Ok(Letter::Event { kind, data }) = read_letter(&text) else {
            panic!("an event")
        };
        assert_eq!((kind, data.as_slice()), (Kind::Stock, b"{not json".as_slice()));

        let json_body = letter(
            "price_update",
            json!({"message_id": "m", "subscription": "s", "data": {"sku": "A"}}),
        );
        let Ok(Letter::Event { data, .. }) = read_letter(&json_body) else {
            panic!("an event")
        };
        assert!(events::parse(Kind::Price, &data).is_err());

        assert!(read_letter(&letter("order", json!({}))).is_err());
        assert!(read_letter(&letter("price_update", json!({"x": 1}))).is_err());
        assert!(read_letter(&letter("price_update", json!({"version": "x"}))).is_err());
    }
}
