//! Orders: Shopee's statuses, what each one means for us, and ORDR's `new_order` event
//! (schema: `docs/events/new_order.schema.json`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{HubId, ItemId, ModelId, Money, OrderSn, ParseError, ShopId, Sku};

/// Shopee's order status.
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
    InvoicePending,
}

impl ShopeeOrderStatus {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        serde_json::from_value(serde_json::Value::String(raw.to_owned()))
            .map_err(|_| ParseError::new("order status", format!("unknown Shopee order status `{raw}`")))
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
