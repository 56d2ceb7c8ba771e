//! Orders: Shopee's statuses, what each one means for us, and ORDR's `new_order` event
//! (schema: `docs/events/new_order.schema.json`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{HubId, ItemId, ModelId, Money, OrderSn, ParseError, ShopId, Sku};

/// Shopee's order status: the one type for it, on the wire (`shopee-client` re-exports it as
/// `api::order::OrderStatus`), in pushes (`push-inbox`) and in `orders.shopee_status` / `push_inbox.order_status`
/// (bound with `pg_enum::Text`; the CHECK lists are in `20261126000090_states_checked.sql`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ShopeeOrderStatus {
    Unpaid,
    ReadyToShip,
    Processed,
    RetryShip,
    Shipped,
    ToConfirmReceive,
    InCancel,
    Cancelled,
    ToReturn,
    Completed,
    /// Brazil: waiting for the NF-e.
    InvoicePending,
    /// Sent only with `request_order_status_pending=true` (Shopee's migration flag); never requested here.
    Pending,
    /// A status Shopee added after this code was written: recorded, never acted on.
    #[serde(other)]
    Unknown,
}

impl ShopeeOrderStatus {
    pub const ALL: &'static [Self] = &[
        Self::Unpaid,
        Self::ReadyToShip,
        Self::Processed,
        Self::RetryShip,
        Self::Shipped,
        Self::ToConfirmReceive,
        Self::InCancel,
        Self::Cancelled,
        Self::ToReturn,
        Self::Completed,
        Self::InvoicePending,
        Self::Pending,
        Self::Unknown,
    ];

    /// The exact spelling; an unknown one is an error (use [`ShopeeOrderStatus::lenient`] for Shopee's input).
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        Self::ALL
            .iter()
            .copied()
            .find(|s| s.as_str() == raw)
            .ok_or_else(|| ParseError::new("order status", format!("unknown Shopee order status `{raw}`")))
    }

    /// What Shopee sent, as the wire reads it: a status this code does not know is `Unknown`.
    pub fn lenient(raw: &str) -> Self {
        Self::parse(raw).unwrap_or(Self::Unknown)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unpaid => "UNPAID",
            Self::ReadyToShip => "READY_TO_SHIP",
            Self::Processed => "PROCESSED",
            Self::RetryShip => "RETRY_SHIP",
            Self::Shipped => "SHIPPED",
            Self::ToConfirmReceive => "TO_CONFIRM_RECEIVE",
            Self::InCancel => "IN_CANCEL",
            Self::Cancelled => "CANCELLED",
            Self::ToReturn => "TO_RETURN",
            Self::Completed => "COMPLETED",
            Self::InvoicePending => "INVOICE_PENDING",
            Self::Pending => "PENDING",
            Self::Unknown => "UNKNOWN",
        }
    }

    /// READY_TO_SHIP is the moment the seller can act: the only status that creates a `new_order`.
    /// Later statuses (PROCESSED, SHIPPED, ...) for an order we never published also create it, because the
    /// READY_TO_SHIP push may have been lost; earlier ones (UNPAID, INVOICE_PENDING) and cancellations do not.
    pub fn publishes_new_order(self) -> bool {
        matches!(self, Self::ReadyToShip | Self::Processed | Self::RetryShip)
    }

    pub fn is_cancellation(self) -> bool {
        matches!(self, Self::InCancel | Self::Cancelled)
    }
}

impl std::str::FromStr for ShopeeOrderStatus {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Self::parse(s)
    }
}

impl AsRef<str> for ShopeeOrderStatus {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Display for ShopeeOrderStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// ORDR's `new_order` event (Pub/Sub `ordr-input`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewOrderEvent {
    pub event_id: String,
    pub event_type: String,
    pub schema_version: u32,
    pub occurred_at: DateTime<Utc>,
    pub order: NewOrder,
}

impl NewOrderEvent {
    pub const EVENT_TYPE: &'static str = "new_order";
    pub const SCHEMA_VERSION: u32 = 1;

    /// `shopee:{shop_id}:{order_sn}`: the same for every copy of one order's event.
    pub fn idempotency_key(shop_id: ShopId, order_sn: &OrderSn) -> String {
        format!("shopee:{shop_id}:{order_sn}")
    }

    /// `{shop_id}:{order_sn}`.
    pub fn ordering_key(shop_id: ShopId, order_sn: &OrderSn) -> String {
        format!("{shop_id}:{order_sn}")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewOrder {
    pub external_id: OrderSn,
    pub channel: String,
    pub shop_id: ShopId,
    pub hub_id: HubId,
    pub customer: Customer,
    pub delivery_address: Address,
    pub lines: Vec<OrderLine>,
    pub totals: Totals,
    pub payment: Payment,
    pub notes: Option<String>,
    pub created_at: DateTime<Utc>,
    pub promised_at: Option<DateTime<Utc>>,
    pub shipping_channel_id: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    pub name: String,
    pub phone: Option<String>,
    /// CPF/CNPJ when Shopee provides it.
    pub document: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Address {
    pub full_address: String,
    pub street: Option<String>,
    pub district: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub zipcode: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderLine {
    pub sku: Sku,
    pub quantity: u32,
    /// What the buyer pays per unit (Shopee's discounted price when there is one).
    pub unit_price: Money,
    pub total_price: Money,
    pub shopee_item_id: ItemId,
    pub shopee_model_id: ModelId,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub items: Money,
    pub shipping: Money,
    pub discount: Money,
    /// Equals Shopee's `total_amount`.
    pub total: Money,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payment {
    pub method: Option<String>,
    pub paid_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_actionable_statuses_publish() {
        assert!(
            ShopeeOrderStatus::parse("READY_TO_SHIP")
                .unwrap()
                .publishes_new_order()
        );
        assert!(!ShopeeOrderStatus::parse("UNPAID").unwrap().publishes_new_order());
        assert!(
            !ShopeeOrderStatus::parse("CANCELLED")
                .unwrap()
                .publishes_new_order()
        );
        assert!(ShopeeOrderStatus::parse("ready_to_ship").is_err());
        assert_eq!(ShopeeOrderStatus::InvoicePending.as_str(), "INVOICE_PENDING");
        assert_eq!(
            ShopeeOrderStatus::lenient("SOMETHING_NEW"),
            ShopeeOrderStatus::Unknown
        );
    }

    /// One spelling per status, the same in `as_str` and on the wire (serde), and unknown wire values are `Unknown`.
    #[test]
    fn spellings_agree_with_the_wire() {
        for s in ShopeeOrderStatus::ALL {
            assert_eq!(ShopeeOrderStatus::parse(s.as_str()).unwrap(), *s);
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        let later: ShopeeOrderStatus = serde_json::from_str("\"SOMETHING_NEW\"").unwrap();
        assert_eq!(later, ShopeeOrderStatus::Unknown);
    }

    #[test]
    fn keys_follow_the_contract() {
        let shop = ShopId::new(900001).unwrap();
        let sn = OrderSn::parse("2511250ABCDEF").unwrap();
        assert_eq!(
            NewOrderEvent::idempotency_key(shop, &sn),
            "shopee:900001:2511250ABCDEF"
        );
        assert_eq!(NewOrderEvent::ordering_key(shop, &sn), "900001:2511250ABCDEF");
    }
}
