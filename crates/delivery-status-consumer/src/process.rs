//! What one delivery event does: parse, find the order, plan the forward steps, call Shopee, record each step.

use std::time::Duration;

use domain::delivery::{DeliveryState, plan};
use service_runtime::backoff;
use tokio_util::sync::CancellationToken;

use crate::event::{self, Parsed, ShopeeDelivery};
use crate::steps::{Done, Shopee, StepError, step_name};
use crate::store::{OrderRow, Store, StoreError};

/// How an event ended; every outcome but [`Failure`] lets its offset be committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// At least one step reached Shopee and was recorded.
    Applied,
    /// Another sales channel.
    SkippedChannel,
    /// A Shopee order this service never received.
    SkippedUnknown,
    /// Late or duplicate: nothing to do.
    Noop,
    /// Could not be applied: park it with the reason (redrivable).
    Park { reference: String, reason: String },
    /// Not a valid event: dead-letter it with the reason.
    Invalid { reason: String },
}

impl Decision {
    /// The `outcome` label of `delivery_events_total`.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::SkippedChannel => "skipped_channel",
            Self::SkippedUnknown => "skipped_unknown",
            Self::Noop => "noop",
            Self::Park { .. } => "parked",
            Self::Invalid { .. } => "invalid",
        }
    }
}

/// Why an event could not be finished now; its offset stays uncommitted so it is replayed.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("abandoned: the consumer is stopping")]
    Abandoned,
}

/// How hard to try a step before parking it.
#[derive(Debug, Clone)]
pub struct RetrySettings {
    /// Attempts per step (each may itself retry inside the Shopee client).
    pub attempts: u32,
    /// Wait before the second attempt; each further one waits twice as long, up to [`MAX_STEP_BACKOFF`].
    pub first_backoff: Duration,
}

/// The longest wait between two attempts of a step (the lane is held meanwhile).
pub const MAX_STEP_BACKOFF: Duration = Duration::from_secs(10);

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            attempts: 3,
            first_backoff: Duration::from_millis(250),
        }
    }
}

#[derive(Clone)]
pub struct Processor {
    store: Store,
    shopee: Shopee,
    retry: RetrySettings,
}

/// A compare-and-set that lost this many times in a row means something is badly wrong: replay later.
const MAX_REPLANS: usize = 8;

impl Processor {
    pub fn new(store: Store, shopee: Shopee, retry: RetrySettings) -> Self {
        Self { store, shopee, retry }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Decides and performs what `payload` asks for. `stop` abandons retries (the offset is then not committed).
    pub async fn handle(&self, payload: &[u8], stop: &CancellationToken) -> Result<Decision, Failure> {
        let ev = match event::parse(payload) {
            Ok(Parsed::OtherChannel) => return Ok(Decision::SkippedChannel),
            Ok(Parsed::Shopee(ev)) => ev,
            Err(reason) => return Ok(Decision::Invalid { reason }),
        };
        tracing::Span::current().record("order.sn", ev.order_sn.as_str());
        let Some(order) = self.store.order(&ev.order_sn).await? else {
            return Ok(Decision::SkippedUnknown);
        };
        self.apply(&ev, order, stop).await
    }

    async fn apply(
        &self,
        ev: &ShopeeDelivery,
        mut order: OrderRow,
        stop: &CancellationToken,
    ) -> Result<Decision, Failure> {
        let mut applied = false;
        for _ in 0..MAX_REPLANS {
            let steps = plan(order.state, &ev.event);
            if steps.is_empty() {
                if order.ordr_order_id.as_deref() != Some(ev.ordr_order_id.as_str()) {
                    self.store
                        .record_ordr_order_id(&ev.order_sn, &ev.ordr_order_id)
                        .await?;
                }
                return Ok(if applied {
                    Decision::Applied
                } else {
                    Decision::Noop
                });
            }
            let mut lost_race = false;
            for step in &steps {
                if let Err(e) = self.perform(ev, &order, step, stop).await? {
                    let reason = format!(
                        "{} for {} ({} -> {}) failed: {}",
                        step_name(step),
                        ev.event_type.as_str(),
                        order.state.as_str(),
                        step.target().as_str(),
                        e.reason()
                    );
                    tracing::warn!(order.sn = %ev.order_sn, reason = %reason, "delivery event parked");
                    return Ok(Decision::Park {
                        reference: ev.reference(),
                        reason,
                    });
                }
                let target = step.target();
                if self
                    .store
                    .advance(&ev.order_sn, order.state, target, &ev.ordr_order_id)
                    .await?
                {
                    applied = true;
                    order.state = target;
                    order.ordr_order_id = Some(ev.ordr_order_id.clone());
                } else {
                    // Someone else moved the order meanwhile: start again from where it is now.
                    lost_race = true;
                    break;
                }
            }
            if !lost_race {
                return Ok(Decision::Applied);
            }
            match self.store.order(&ev.order_sn).await? {
                Some(now) => order = now,
                None => return Ok(Decision::SkippedUnknown),
            }
        }
        Ok(Decision::Park {
            reference: ev.reference(),
            reason: format!(
                "the order's delivery_state kept changing under this event ({MAX_REPLANS} tries); redrive it"
            ),
        })
    }

    /// One step with bounded retries of transient failures. `Ok(Err(_))` = give up and park.
    async fn perform(
        &self,
        ev: &ShopeeDelivery,
        order: &OrderRow,
        step: &domain::delivery::Step,
        stop: &CancellationToken,
    ) -> Result<Result<Done, StepError>, Failure> {
        let attempts = self.retry.attempts.max(1);
        let mut attempt = 1;
        loop {
            let result = self
                .shopee
                .perform(order.shop_id, &ev.order_sn, step, ev.tracking_number.as_deref())
                .await;
            match result {
                Err(StepError::Transient(reason)) if attempt < attempts => {
                    tracing::debug!(order.sn = %ev.order_sn, attempt, reason = %reason, "transient Shopee failure; retrying");
                    let wait = backoff::delay(self.retry.first_backoff, MAX_STEP_BACKOFF, attempt - 1);
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = stop.cancelled() => return Err(Failure::Abandoned),
                    }
                    attempt += 1;
                }
                Err(StepError::Transient(reason)) => {
                    return Ok(Err(StepError::Transient(format!(
                        "still failing after {attempts} attempts: {reason}"
                    ))));
                }
                other => return Ok(other),
            }
        }
    }
}

/// The state an order would reach from `start` with `events` applied in order (what the consumer must end at).
pub fn furthest(start: DeliveryState, events: &[domain::delivery::DeliveryEvent]) -> DeliveryState {
    let mut state = start;
    for e in events {
        for step in plan(state, e) {
            state = step.target();
        }
    }
    state
}
