//! Delivery progress of a Shopee order, and the legal ways it moves: forward only.
//!
//! ```text
//! ReadyToShip --arrange--> Arranged --pickup_done--> PickedUp --delivery_done--> Delivered
//!      |                      |                          '------delivery_failed--> DeliveryFailed
//!      '------cancel_order----'--> Cancelled
//! ```

use serde::{Deserialize, Serialize};

use crate::ParseError;

/// Where a Shopee order stands in its delivery, as we have told Shopee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    ReadyToShip,
    Arranged,
    PickedUp,
    Delivered,
    DeliveryFailed,
    Cancelled,
}

impl DeliveryState {
    /// Every state; `orders.delivery_state`'s CHECK holds the same spellings (bound with `pg_enum::Text`).
    pub const ALL: &'static [Self] = &[
        Self::ReadyToShip,
        Self::Arranged,
        Self::PickedUp,
        Self::Delivered,
        Self::DeliveryFailed,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReadyToShip => "ready_to_ship",
            Self::Arranged => "arranged",
            Self::PickedUp => "picked_up",
            Self::Delivered => "delivered",
            Self::DeliveryFailed => "delivery_failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        Ok(match raw {
            "ready_to_ship" => Self::ReadyToShip,
            "arranged" => Self::Arranged,
            "picked_up" => Self::PickedUp,
            "delivered" => Self::Delivered,
            "delivery_failed" => Self::DeliveryFailed,
            "cancelled" => Self::Cancelled,
            other => {
                return Err(ParseError::new(
                    "delivery state",
                    format!("unknown state `{other}`"),
                ));
            }
        })
    }

    /// How far along the order is; a legal step always increases it.
    pub fn rank(self) -> u8 {
        match self {
            Self::ReadyToShip => 0,
            Self::Arranged => 1,
            Self::PickedUp => 2,
            Self::Delivered | Self::DeliveryFailed | Self::Cancelled => 3,
        }
    }

    pub fn is_final(self) -> bool {
        self.rank() == 3
    }
}

impl std::str::FromStr for DeliveryState {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Self::parse(s)
    }
}

impl AsRef<str> for DeliveryState {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

/// Shopee's `failed_reason` values, also used by the fleet's `delivery.canceled` events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailedReason {
    BuyerUnreachable,
    BuyerUnresponsive,
    NoDeliveryLocationConsensus,
}

impl FailedReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BuyerUnreachable => "buyer_unreachable",
            Self::BuyerUnresponsive => "buyer_unresponsive",
            Self::NoDeliveryLocationConsensus => "no_delivery_location_consensus",
        }
    }
}

/// What the fleet reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryEvent {
    Ready,
    OnTheWay {
        tracking_number: Option<String>,
        tracking_url: Option<String>,
    },
    Delivered,
    Canceled {
        reason: Option<FailedReason>,
    },
}

/// One Shopee call that moves the order one legal step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `get_shipping_parameter` then `ship_order`.
    ArrangeShipment,
    /// `update_tracking_status` logistics_pickup_done.
    PickupDone {
        tracking_number: Option<String>,
        tracking_url: Option<String>,
    },
    /// `update_tracking_status` logistics_delivery_done.
    DeliveryDone,
    /// `update_tracking_status` logistics_delivery_failed.
    DeliveryFailed { reason: FailedReason },
    /// `cancel_order` (before pickup only).
    CancelOrder { reason: Option<FailedReason> },
}

impl Step {
    /// The state reached once this step is applied.
    pub fn target(&self) -> DeliveryState {
        match self {
            Self::ArrangeShipment => DeliveryState::Arranged,
            Self::PickupDone { .. } => DeliveryState::PickedUp,
            Self::DeliveryDone => DeliveryState::Delivered,
            Self::DeliveryFailed { .. } => DeliveryState::DeliveryFailed,
            Self::CancelOrder { .. } => DeliveryState::Cancelled,
        }
    }
}

/// The steps that bring an order from `current` to what `event` reports, in order. Empty when the event is late,
/// a duplicate, or would move the order backwards; a status that skips ahead gets the missing steps first.
pub fn plan(current: DeliveryState, event: &DeliveryEvent) -> Vec<Step> {
    use DeliveryState as S;
    if current.is_final() {
        return Vec::new();
    }
    let pickup = |tracking_number: &Option<String>, tracking_url: &Option<String>| Step::PickupDone {
        tracking_number: tracking_number.clone(),
        tracking_url: tracking_url.clone(),
    };
    let mut steps = Vec::new();
    match event {
        DeliveryEvent::Ready => {
            if current == S::ReadyToShip {
                steps.push(Step::ArrangeShipment);
            }
        }
        DeliveryEvent::OnTheWay {
            tracking_number,
            tracking_url,
        } => {
            if current == S::ReadyToShip {
                steps.push(Step::ArrangeShipment);
            }
            if current.rank() < S::PickedUp.rank() {
                steps.push(pickup(tracking_number, tracking_url));
            }
        }
        DeliveryEvent::Delivered => {
            if current == S::ReadyToShip {
                steps.push(Step::ArrangeShipment);
            }
            if current.rank() < S::PickedUp.rank() {
                steps.push(pickup(&None, &None));
            }
            steps.push(Step::DeliveryDone);
        }
        DeliveryEvent::Canceled { reason } => {
            if current == S::PickedUp {
                steps.push(Step::DeliveryFailed {
                    reason: reason.unwrap_or(FailedReason::BuyerUnreachable),
                });
            } else {
                steps.push(Step::CancelOrder { reason: *reason });
            }
        }
    }
    steps
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn event() -> impl Strategy<Value = DeliveryEvent> {
        prop_oneof![
            Just(DeliveryEvent::Ready),
            Just(DeliveryEvent::OnTheWay {
                tracking_number: Some("T1".into()),
                tracking_url: None
            }),
            Just(DeliveryEvent::Delivered),
            Just(DeliveryEvent::Canceled {
                reason: Some(FailedReason::BuyerUnresponsive)
            }),
        ]
    }

    #[test]
    fn each_transition() {
        use DeliveryState as S;
        assert_eq!(
            plan(S::ReadyToShip, &DeliveryEvent::Ready),
            vec![Step::ArrangeShipment]
        );
        assert!(plan(S::Arranged, &DeliveryEvent::Ready).is_empty());
        let on_the_way = DeliveryEvent::OnTheWay {
            tracking_number: None,
            tracking_url: None,
        };
        assert_eq!(
            plan(S::ReadyToShip, &on_the_way).len(),
            2,
            "arrange first when it was missed"
        );
        assert_eq!(plan(S::Arranged, &DeliveryEvent::Delivered).len(), 2);
        assert!(
            plan(S::Delivered, &DeliveryEvent::Canceled { reason: None }).is_empty(),
            "final is final"
        );
        assert_eq!(
            plan(S::PickedUp, &DeliveryEvent::Canceled { reason: None }),
            vec![Step::DeliveryFailed {
                reason: FailedReason::BuyerUnreachable
            }]
        );
        assert_eq!(
            plan(S::Arranged, &DeliveryEvent::Canceled { reason: None }),
            vec![Step::CancelOrder { reason: None }]
        );
    }

    proptest! {
        /// Any sequence of events, in any order and repeated: every step moves strictly forward.
        #[test]
        fn never_moves_backwards(events in proptest::collection::vec(event(), 1..20)) {
            let mut state = DeliveryState::ReadyToShip;
            for e in &events {
                for step in plan(state, e) {
                    prop_assert!(step.target().rank() > state.rank(), "{state:?} -> {step:?}");
                    state = step.target();
                }
            }
            // Replaying everything again changes nothing once final.
            if state.is_final() {
                for e in &events {
                    prop_assert!(plan(state, e).is_empty());
                }
            }
        }
    }
}
