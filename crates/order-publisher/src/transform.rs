//! Shopee order detail -> ORDR `new_order` (docs/events/new_order.schema.json).

use chrono::{DateTime, TimeZone as _, Utc};
use domain::order::{Address, Customer, NewOrder, NewOrderEvent, OrderLine, Payment, Totals};
use domain::{HubId, ItemId, ModelId, Money, ShopId, Sku};
use serde_json::Number;
use shopee_client::api::order::OrderDetail;

/// Why an order cannot become a `new_order` yet (or at all).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransformError {
    /// Some lines have no SKU mapping: the order waits as `needs_mapping`.
    #[error("unmapped lines: {}", .0.iter().map(|(i, m)| format!("item {i} model {m}")).collect::<Vec<_>>().join(", "))]
    Unmapped(Vec<(ItemId, ModelId)>),
    /// The detail does not hold what ORDR needs; permanent for this detail.
    #[error("order detail is unusable: {0}")]
    Invalid(String),
}

/// The SKU of each (item, model) in the order, as resolved through the product mapping.
pub type SkuOf<'a> = dyn Fn(ItemId, ModelId) -> Option<Sku> + 'a;

fn money(field: &str, n: Option<&Number>) -> Result<Option<Money>, TransformError> {
    n.map(|n| {
        Money::from_shopee_number(n).map_err(|e| TransformError::Invalid(format!("{field}: {}", e.problem)))
    })
    .transpose()
}

fn time(secs: Option<i64>) -> Option<DateTime<Utc>> {
    secs.filter(|s| *s > 0)
        .and_then(|s| Utc.timestamp_opt(s, 0).single())
}

fn non_empty(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

fn coordinate(n: Option<&Number>) -> Option<f64> {
    n.and_then(Number::as_f64).filter(|v| v.is_finite() && *v != 0.0)
}

/// Builds the order. Every line must resolve to a SKU; otherwise [`TransformError::Unmapped`] lists the lines.
pub fn new_order(
    detail: &OrderDetail,
    shop_id: ShopId,
    hub_id: HubId,
    sku_of: &SkuOf<'_>,
) -> Result<NewOrder, TransformError> {
    if detail.item_list.is_empty() {
        return Err(TransformError::Invalid("the order has no items".into()));
    }
    let mut lines = Vec::with_capacity(detail.item_list.len());
    let mut unmapped = Vec::new();
    for item in &detail.item_list {
        let model = item.model_id.unwrap_or(ModelId::NONE);
        let Some(sku) = sku_of(item.item_id, model) else {
            unmapped.push((item.item_id, model));
            continue;
        };
        // What the buyer pays per unit: the discounted price when Shopee gives one (not for a bundle deal's
        // items, whose discount lands in `totals.discount`).
        let unit_price = money("model_discounted_price", item.paid_unit_price())?.ok_or_else(|| {
            TransformError::Invalid(format!("item {} model {model} has no price", item.item_id))
        })?;
        if item.model_quantity_purchased == 0 {
            return Err(TransformError::Invalid(format!(
                "item {} model {model} has quantity 0",
                item.item_id
            )));
        }
        let total_price = unit_price
            .times(item.model_quantity_purchased)
            .ok_or_else(|| TransformError::Invalid("line total out of range".into()))?;
        lines.push(OrderLine {
            sku,
            quantity: item.model_quantity_purchased,
            unit_price,
            total_price,
            shopee_item_id: item.item_id,
            shopee_model_id: model,
        });
    }
    if !unmapped.is_empty() {
        return Err(TransformError::Unmapped(unmapped));
    }
    let items: Money = lines.iter().map(|l| l.total_price).sum();
    let shipping = money("actual_shipping_fee", detail.actual_shipping_fee.as_ref())?
        .filter(|m| *m > Money::ZERO)
        .or(money(
            "estimated_shipping_fee",
            detail.estimated_shipping_fee.as_ref(),
        )?)
        .unwrap_or(Money::ZERO);
    let total = money("total_amount", detail.total_amount.as_ref())?
        .ok_or_else(|| TransformError::Invalid("total_amount is missing".into()))?;
    // Vouchers and coins: what the buyer did not pay of items + shipping.
    let discount = (items + shipping).checked_sub(total).unwrap_or(Money::ZERO);

    let address = detail.recipient_address.clone().unwrap_or_default();
    let geo = address.geolocation.clone().unwrap_or_default();
    let zipcode: String = address.zipcode.chars().filter(char::is_ascii_digit).collect();
    Ok(NewOrder {
        external_id: detail.order_sn.clone(),
        channel: "shopee".into(),
        shop_id,
        hub_id,
        customer: Customer {
            name: non_empty(&address.name).unwrap_or_else(|| "Shopee buyer".into()),
            phone: non_empty(&address.phone),
            document: detail.buyer_cpf_id.as_deref().and_then(non_empty),
        },
        delivery_address: Address {
            full_address: address.full_address.trim().to_owned(),
            street: None,
            district: non_empty(&address.district).or_else(|| non_empty(&address.town)),
            city: non_empty(&address.city),
            state: non_empty(&address.state),
            zipcode: (!zipcode.is_empty()).then_some(zipcode),
            latitude: coordinate(geo.latitude.as_ref()),
            longitude: coordinate(geo.longitude.as_ref()),
        },
        lines,
        totals: Totals {
            items,
            shipping,
            discount,
            total,
        },
        payment: Payment {
            method: detail.payment_method.as_deref().and_then(non_empty),
            paid_at: time(detail.pay_time),
        },
        // The buyer's message only: Shopee's `note` is the seller's private note.
        notes: detail.message_to_seller.as_deref().and_then(non_empty),
        created_at: time(Some(detail.create_time)).unwrap_or_else(Utc::now),
        promised_at: time(detail.edt_to).or_else(|| time(detail.ship_by_date)),
        shipping_channel_id: detail.package_list.iter().find_map(|p| p.logistics_channel_id),
    })
}

/// Wraps an order in its event envelope.
pub fn event(order: NewOrder, event_id: uuid::Uuid, occurred_at: DateTime<Utc>) -> NewOrderEvent {
    NewOrderEvent {
        event_id: event_id.to_string(),
        event_type: NewOrderEvent::EVENT_TYPE.into(),
        schema_version: NewOrderEvent::SCHEMA_VERSION,
        occurred_at,
        order,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `docs/events/new_order.schema.json`, with formats (`uuid`, `date-time`) asserted.
    fn schema() -> jsonschema::Validator {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../../docs/events/new_order.schema.json"))
                .expect("schema json");
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(&schema)
            .expect("a valid schema")
    }

    /// The violations of the documented contract, as `message at /path`.
    fn violations(event: &serde_json::Value) -> Vec<String> {
        schema()
            .iter_errors(event)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect()
    }

    fn assert_documented(order: NewOrder) {
        let event = serde_json::to_value(event(order, uuid::Uuid::new_v4(), Utc::now())).expect("json");
        let errors = violations(&event);
        assert!(errors.is_empty(), "{errors:#?}\n{event:#}");
    }

    pub(crate) const MULTI_LINE: &str = r#"{
      "order_sn": "2511250ABCDEF", "order_status": "READY_TO_SHIP", "region": "BR", "currency": "BRL", "cod": false,
      "create_time": 1764072000, "update_time": 1764072100, "pay_time": 1764072050, "ship_by_date": 1764075600,
      "total_amount": 33.7, "estimated_shipping_fee": 4.9, "actual_shipping_fee": 0,
      "buyer_cpf_id": "12345678909", "payment_method": "PIX", "message_to_seller": "Deixar na portaria",
      "recipient_address": {"name": "Maria Silva", "phone": "5511999999999", "town": "", "district": "Bela Vista",
        "city": "São Paulo", "state": "SP", "region": "BR", "zipcode": "01310-100",
        "full_address": "Av. Paulista, 1000, Bela Vista, São Paulo - SP",
        "geolocation": {"latitude": -23.5614, "longitude": -46.6559}},
      "item_list": [
        {"item_id": 100001, "item_name": "Água 500ml", "item_sku": "", "model_id": 0, "model_sku": "",
         "model_quantity_purchased": 2, "model_original_price": 12.9, "model_discounted_price": 12.9},
        {"item_id": 100002, "item_name": "Café", "item_sku": "", "model_id": 5001, "model_sku": "CAFE-250",
         "model_quantity_purchased": 1, "model_original_price": 15.0, "model_discounted_price": 10.9,
         "promotion_type": "product_promotion"}
      ],
      "package_list": [{"package_number": "PKG1", "logistics_status": "LOGISTICS_READY", "logistics_channel_id": 90026}]
    }"#;

    fn detail(json: &str) -> OrderDetail {
        serde_json::from_str(json).expect("detail")
    }

    fn skus(item: ItemId, model: ModelId) -> Option<Sku> {
        match (item.get(), model.get()) {
            (100001, 0) => Some(Sku::parse("789100000001").expect("sku")),
            (100002, 5001) => Some(Sku::parse("CAFE-250").expect("sku")),
            _ => None,
        }
    }

    fn shop() -> ShopId {
        ShopId::new(900001).expect("shop")
    }

    fn hub() -> HubId {
        HubId::parse("SAO-01").expect("hub")
    }

    /// The payload ORDR receives, with times and ids redacted: a multi-line order with a discounted line and a
    /// model-less item.
    #[test]
    fn multi_line_order_snapshot() {
        let order = new_order(&detail(MULTI_LINE), shop(), hub(), &skus).expect("order");
        assert_eq!(
            order.lines[1].unit_price.to_string(),
            "10.90",
            "discounted price wins"
        );
        assert_eq!(order.totals.items.to_string(), "36.70");
        assert_eq!(
            order.totals.total.to_string(),
            "33.70",
            "totals.total equals total_amount"
        );
        assert_eq!(order.totals.discount.to_string(), "7.90");
        let event = event(order, uuid::Uuid::nil(), Utc::now());
        // What the snapshot shows is also what the schema promises (times and buyer data unredacted).
        let json = serde_json::to_value(&event).expect("json");
        let errors = violations(&json);
        assert!(errors.is_empty(), "{errors:#?}\n{json:#}");
        insta::assert_json_snapshot!(event, {
            ".event_id" => "[event_id]",
            ".occurred_at" => "[time]",
            ".order.created_at" => "[time]",
            ".order.promised_at" => "[time]",
            ".order.payment.paid_at" => "[time]",
            ".order.customer.name" => "[buyer]",
            ".order.customer.phone" => "[buyer]",
            ".order.customer.document" => "[buyer]",
            ".order.delivery_address.full_address" => "[buyer]",
        });
    }

    /// The check above can fail: what ORDR would reject, the schema rejects too.
    #[test]
    fn the_schema_rejects_a_broken_new_order() {
        let order = new_order(&detail(MULTI_LINE), shop(), hub(), &skus).expect("order");
        let good = serde_json::to_value(event(order, uuid::Uuid::new_v4(), Utc::now())).expect("json");
        assert_eq!(violations(&good), Vec::<String>::new());
        let broken: [(&str, serde_json::Value); 5] = [
            ("/order/totals/total", serde_json::json!(33.7)),
            ("/order/lines/0/quantity", serde_json::json!(0)),
            ("/occurred_at", serde_json::json!("yesterday")),
            ("/event_id", serde_json::json!("not-a-uuid")),
            ("/order/external_id", serde_json::json!("lower-case")),
        ];
        for (pointer, value) in broken {
            let mut event = good.clone();
            *event.pointer_mut(pointer).expect("pointer") = value;
            assert!(!violations(&event).is_empty(), "{pointer} should be refused");
        }
        let mut event = good.clone();
        event["order"].as_object_mut().expect("order").remove("totals");
        assert!(!violations(&event).is_empty(), "totals are required");
    }

    #[test]
    fn unmapped_lines_are_listed() {
        let none = |_: ItemId, _: ModelId| None;
        let err = new_order(&detail(MULTI_LINE), shop(), hub(), &none).expect_err("unmapped");
        assert_eq!(
            err.to_string(),
            "unmapped lines: item 100001 model 0, item 100002 model 5001"
        );
    }

    /// Shopee sends `model_discounted_price: 0` for a bundle deal's items: the line is priced at the original price
    /// and the bundle's discount shows in `totals.discount` (items + shipping - total).
    #[test]
    fn a_bundle_deal_item_is_priced_at_its_original_price() {
        let json = MULTI_LINE
            .replace(
                r#""model_original_price": 15.0, "model_discounted_price": 10.9,
         "promotion_type": "product_promotion""#,
                r#""model_original_price": 15.0, "model_discounted_price": 0,
         "promotion_type": "bundle_deal""#,
            )
            .replace(r#""total_amount": 33.7"#, r#""total_amount": 35.0"#);
        let order = new_order(&detail(&json), shop(), hub(), &skus).expect("order");
        assert_eq!(order.lines[1].unit_price.to_string(), "15.00");
        assert_eq!(order.totals.items.to_string(), "40.80");
        assert_eq!(order.totals.discount.to_string(), "10.70");
        assert_eq!(order.totals.total.to_string(), "35.00");
        assert_documented(order);
    }

    /// `note` is the seller's private note: it never reaches ORDR as the buyer's notes.
    #[test]
    fn the_sellers_private_note_is_not_the_buyers_message() {
        let json = MULTI_LINE.replace(
            r#""message_to_seller": "Deixar na portaria","#,
            r#""message_to_seller": "", "note": "cliente chato, conferir troco","#,
        );
        let order = new_order(&detail(&json), shop(), hub(), &skus).expect("order");
        assert_eq!(order.notes, None);
        assert_documented(order);
        let order = new_order(&detail(MULTI_LINE), shop(), hub(), &skus).expect("order");
        assert_eq!(order.notes.as_deref(), Some("Deixar na portaria"));
    }

    #[test]
    fn an_order_without_total_is_invalid() {
        let json = MULTI_LINE.replace("\"total_amount\": 33.7,", "");
        let err = new_order(&detail(&json), shop(), hub(), &skus).expect_err("invalid");
        assert!(matches!(err, TransformError::Invalid(_)));
    }
}
