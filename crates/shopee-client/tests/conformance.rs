//! The client against Shopee's published contract (`shopee-contract`), never against our sandbox.
//!
//! For every endpoint in [`api::ENDPOINTS`] (and every `Endpoint` constant defined under `src/api/`):
//! - path, method and signature level equal the contract's;
//! - a request built with every optional field the client can send: each key exists in the contract for that API,
//!   in the right place (query for GET, JSON body for POST, multipart parts where the API takes a file), at a
//!   fitting type; the same request with every optional field left out still carries every required parameter;
//! - the response type decodes Shopee's `response_sample` and a synthetic answer with every documented field at its
//!   documented type, plus an unknown field at every level.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use domain::{ItemId, ModelId, OrderSn, ShopId};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Number, Value, json};
use shopee_client::api::{self, auth, discount as d, logistics as lg, media, order as o, product as p, push};
use shopee_client::envelope::{Endpoint, Method, Scope, ShopAuth, build_request};
use shopee_contract::{Auth, contract};

/// One endpoint's requests (every optional field set, then none) and its response decoder.
struct Case {
    endpoint: Endpoint,
    full: Sent,
    minimal: Sent,
    decode: fn(Value) -> Result<(), String>,
}

enum Sent {
    Params(Value),
    /// A `multipart/form-data` body: (part name, carries a file).
    Form(Vec<(String, bool)>),
}

fn decoder<R: DeserializeOwned>(payload: Value) -> Result<(), String> {
    serde_json::from_value::<R>(payload)
        .map(drop)
        .map_err(|e| e.to_string())
}

fn case<Q: Serialize, R: DeserializeOwned>(endpoint: Endpoint, full: &Q, minimal: &Q) -> Case {
    Case {
        endpoint,
        full: Sent::Params(serde_json::to_value(full).unwrap()),
        minimal: Sent::Params(serde_json::to_value(minimal).unwrap()),
        decode: decoder::<R>,
    }
}

fn item(n: u64) -> ItemId {
    ItemId::new(n).unwrap()
}
fn model(n: u64) -> ModelId {
    ModelId::new(n).unwrap()
}
fn sn(s: &str) -> OrderSn {
    OrderSn::parse(s).unwrap()
}
fn price(text: &str) -> Number {
    serde_json::from_str(text).unwrap()
}

fn cases() -> Vec<Case> {
    let price_entry = p::PriceEntry {
        model_id: model(2),
        original_price: price("12.9"),
    };
    let stock_entry = p::StockEntry {
        model_id: model(2),
        seller_stock: vec![p::SellerStock {
            location_id: Some("BRZ1".into()),
            stock: 3,
        }],
    };
    let stock_entry_min = p::StockEntry {
        model_id: model(2),
        seller_stock: vec![p::SellerStock {
            location_id: None,
            stock: 3,
        }],
    };
    let discount_item = d::DiscountItem {
        item_id: item(10),
        purchase_limit: 2,
        item_promotion_price: Some(price("9.9")),
        item_promotion_stock: Some(5),
        model_list: vec![d::DiscountModel {
            model_id: model(2),
            model_promotion_price: price("9.9"),
            model_promotion_stock: Some(5),
        }],
    };
    let discount_item_min = d::DiscountItem {
        item_id: item(10),
        purchase_limit: 0,
        item_promotion_price: Some(price("9.9")),
        item_promotion_stock: None,
        model_list: Vec::new(),
    };
    let ship = |mode: lg::ShipMode, package: Option<&str>| lg::ShipOrderRequest {
        order_sn: sn("2511250ABCDEF"),
        package_number: package.map(str::to_owned),
        mode,
    };
    let tracking = |full: bool| lg::UpdateTrackingStatusRequest {
        order_sn: sn("2511250ABCDEF"),
        logistics_status: lg::LogisticsStatus::LogisticsDeliveryFailed,
        tracking_number: full.then(|| "BR123".into()),
        tracking_url: full.then(|| "https://t.example/BR123".into()),
        failed_reason: full.then_some(lg::FailedReason::BuyerUnreachable),
    };
    let image = media::UploadImageRequest {
        file_name: "a.jpg".into(),
        content_type: "image/jpeg".into(),
        data: vec![0xFF, 0xD8, 0xFF],
    };
    let order_list = |full: bool| o::GetOrderListRequest {
        time_range_field: o::TimeRangeField::UpdateTime,
        time_from: 1_700_000_000,
        time_to: 1_700_086_400,
        page_size: 100,
        cursor: if full { "20".into() } else { String::new() },
        order_status: full.then_some(o::OrderStatus::ReadyToShip),
        response_optional_fields: if full {
            vec![o::OrderListField::OrderStatus]
        } else {
            Vec::new()
        },
    };
    vec![
        case::<_, auth::TokenResponse>(
            auth::TOKEN_GET,
            &auth::TokenGetRequest {
                code: "c0de".into(),
                partner_id: 7,
                shop_id: 900_001,
            },
            &auth::TokenGetRequest {
                code: "c0de".into(),
                partner_id: 7,
                shop_id: 900_001,
            },
        ),
        case::<_, auth::TokenResponse>(
            auth::ACCESS_TOKEN_GET,
            &auth::RefreshRequest {
                refresh_token: "r".into(),
                partner_id: 7,
                shop_id: 900_001,
            },
            &auth::RefreshRequest {
                refresh_token: "r".into(),
                partner_id: 7,
                shop_id: 900_001,
            },
        ),
        case::<_, push::GetLostPushMessageResponse>(push::GET_LOST_PUSH_MESSAGE, &json!({}), &json!({})),
        case::<_, Value>(
            push::CONFIRM_CONSUMED_LOST_PUSH_MESSAGE,
            &push::ConfirmConsumedRequest { last_message_id: 5 },
            &push::ConfirmConsumedRequest { last_message_id: 5 },
        ),
        case::<_, o::GetOrderListResponse>(o::GET_ORDER_LIST, &order_list(true), &order_list(false)),
        case::<_, o::GetOrderDetailResponse>(
            o::GET_ORDER_DETAIL,
            &o::GetOrderDetailRequest {
                order_sn_list: vec![sn("2511250ABCDEF"), sn("2511250GHIJKL")],
                response_optional_fields: o::OptionalField::FOR_INTAKE.to_vec(),
            },
            &o::GetOrderDetailRequest {
                order_sn_list: vec![sn("2511250ABCDEF")],
                response_optional_fields: Vec::new(),
            },
        ),
        case::<_, o::GetPackageDetailResponse>(
            o::GET_PACKAGE_DETAIL,
            &o::GetPackageDetailRequest {
                package_number_list: vec!["OFG1".into(), "OFG2".into()],
            },
            &o::GetPackageDetailRequest {
                package_number_list: vec!["OFG1".into()],
            },
        ),
        case::<_, o::CancelOrderResponse>(
            o::CANCEL_ORDER,
            &o::CancelOrderRequest {
                order_sn: sn("2511250ABCDEF"),
                cancel_reason: o::CancelReason::OutOfStock,
                item_list: vec![o::CancelItem {
                    item_id: item(10),
                    model_id: model(2),
                }],
            },
            &o::CancelOrderRequest {
                order_sn: sn("2511250ABCDEF"),
                cancel_reason: o::CancelReason::CustomerRequest,
                item_list: Vec::new(),
            },
        ),
        case::<_, lg::GetShippingParameterResponse>(
            lg::GET_SHIPPING_PARAMETER,
            &lg::GetShippingParameterRequest {
                order_sn: sn("2511250ABCDEF"),
                package_number: Some("OFG1".into()),
            },
            &lg::GetShippingParameterRequest {
                order_sn: sn("2511250ABCDEF"),
                package_number: None,
            },
        ),
        case::<_, Value>(
            lg::SHIP_ORDER,
            &ship(
                lg::ShipMode::Pickup(lg::Pickup {
                    address_id: 1,
                    pickup_time_id: Some("slot".into()),
                    tracking_number: Some("BR1".into()),
                }),
                Some("OFG1"),
            ),
            &ship(
                lg::ShipMode::Pickup(lg::Pickup {
                    address_id: 1,
                    pickup_time_id: None,
                    tracking_number: None,
                }),
                None,
            ),
        ),
        // The two other shipping modes, each sent alone.
        case::<_, Value>(
            lg::SHIP_ORDER,
            &ship(
                lg::ShipMode::Dropoff(lg::Dropoff {
                    branch_id: Some(3),
                    sender_real_name: Some("Hub".into()),
                    tracking_number: Some("BR1".into()),
                    slug: Some("s".into()),
                }),
                None,
            ),
            &ship(
                lg::ShipMode::NonIntegrated(lg::NonIntegrated {
                    tracking_number: Some("BR1".into()),
                }),
                None,
            ),
        ),
        case::<_, lg::UpdateTrackingStatusResponse>(
            lg::UPDATE_TRACKING_STATUS,
            &tracking(true),
            &tracking(false),
        ),
        case::<_, lg::GetTrackingNumberResponse>(
            lg::GET_TRACKING_NUMBER,
            &lg::GetTrackingNumberRequest {
                order_sn: sn("2511250ABCDEF"),
                package_number: Some("OFG1".into()),
            },
            &lg::GetTrackingNumberRequest {
                order_sn: sn("2511250ABCDEF"),
                package_number: None,
            },
        ),
        case::<_, p::GetItemListResponse>(
            p::GET_ITEM_LIST,
            &p::GetItemListRequest {
                offset: 0,
                page_size: 100,
                item_status: vec![p::ItemStatus::Normal, p::ItemStatus::Unlist],
                update_time_from: Some(1_700_000_000),
                update_time_to: Some(1_700_086_400),
            },
            &p::GetItemListRequest {
                offset: 0,
                page_size: 100,
                item_status: vec![p::ItemStatus::Normal],
                update_time_from: None,
                update_time_to: None,
            },
        ),
        case::<_, p::GetItemBaseInfoResponse>(
            p::GET_ITEM_BASE_INFO,
            &p::GetItemBaseInfoRequest {
                item_id_list: vec![item(10), item(11)],
            },
            &p::GetItemBaseInfoRequest {
                item_id_list: vec![item(10)],
            },
        ),
        case::<_, p::GetModelListResponse>(
            p::GET_MODEL_LIST,
            &p::GetModelListRequest { item_id: item(10) },
            &p::GetModelListRequest { item_id: item(10) },
        ),
        case::<_, p::UpdatePriceResponse>(
            p::UPDATE_PRICE,
            &p::UpdatePriceRequest {
                item_id: item(10),
                price_list: vec![price_entry.clone()],
            },
            &p::UpdatePriceRequest {
                item_id: item(10),
                price_list: vec![price_entry.clone()],
            },
        ),
        case::<_, p::UpdateStockResponse>(
            p::UPDATE_STOCK,
            &p::UpdateStockRequest {
                item_id: item(10),
                stock_list: vec![stock_entry.clone()],
            },
            &p::UpdateStockRequest {
                item_id: item(10),
                stock_list: vec![stock_entry_min.clone()],
            },
        ),
        case::<_, p::UpdateItemResponse>(
            p::UPDATE_ITEM,
            &p::UpdateItemRequest {
                item_id: item(10),
                item_name: Some("Agua 500 ml".into()),
                description: Some("Agua mineral".into()),
                item_sku: Some("789100000001".into()),
                weight: Some(price("0.5")),
                dimension: Some(p::ItemDimension {
                    package_length: 10,
                    package_width: 5,
                    package_height: 20,
                }),
                image: Some(p::ItemImage {
                    image_id_list: vec!["br-11134207-abc".into()],
                }),
                item_status: Some(p::ItemStatus::Normal),
            },
            &p::UpdateItemRequest {
                item_id: item(10),
                item_name: None,
                description: None,
                item_sku: None,
                weight: None,
                dimension: None,
                image: None,
                item_status: None,
            },
        ),
        case::<_, p::GetMartItemResponse>(
            p::GET_MART_ITEM_BY_OUTLET_ITEM_ID,
            &p::GetMartItemRequest {
                outlet_item_id: item(10),
            },
            &p::GetMartItemRequest {
                outlet_item_id: item(10),
            },
        ),
        case::<_, p::BatchTaskCreated>(
            p::BATCH_UPDATE_OUTLET_PRICE,
            &p::BatchUpdateOutletPriceRequest {
                item_list: vec![p::OutletPriceItem {
                    outlet_shop_id: 900_002,
                    item_id: item(10),
                    price_list: vec![price_entry.clone()],
                }],
            },
            &p::BatchUpdateOutletPriceRequest {
                item_list: vec![p::OutletPriceItem {
                    outlet_shop_id: 900_002,
                    item_id: item(10),
                    price_list: vec![price_entry],
                }],
            },
        ),
        case::<_, p::BatchTaskCreated>(
            p::BATCH_UPDATE_OUTLET_STOCK,
            &p::BatchUpdateOutletStockRequest {
                item_list: vec![p::OutletStockItem {
                    outlet_shop_id: 900_002,
                    item_id: item(10),
                    stock_list: vec![stock_entry],
                }],
            },
            &p::BatchUpdateOutletStockRequest {
                item_list: vec![p::OutletStockItem {
                    outlet_shop_id: 900_002,
                    item_id: item(10),
                    stock_list: vec![stock_entry_min],
                }],
            },
        ),
        case::<_, p::GetBatchTaskResultResponse>(
            p::GET_BATCH_TASK_RESULT,
            &p::GetBatchTaskResultRequest {
                task_type: p::BatchTaskType::Price,
                task_id: p::TaskId(77),
            },
            &p::GetBatchTaskResultRequest {
                task_type: p::BatchTaskType::Stock,
                task_id: p::TaskId(77),
            },
        ),
        case::<_, d::DiscountIdResponse>(
            d::ADD_DISCOUNT,
            &d::AddDiscountRequest {
                discount_name: "Semana".into(),
                start_time: 1_700_000_000,
                end_time: 1_700_086_400,
            },
            &d::AddDiscountRequest {
                discount_name: "Semana".into(),
                start_time: 1_700_000_000,
                end_time: 1_700_086_400,
            },
        ),
        case::<_, d::DiscountItemsResponse>(
            d::ADD_DISCOUNT_ITEM,
            &d::DiscountItemsRequest {
                discount_id: 5,
                item_list: vec![discount_item.clone()],
            },
            &d::DiscountItemsRequest {
                discount_id: 5,
                item_list: vec![discount_item_min.clone()],
            },
        ),
        case::<_, d::DiscountIdResponse>(
            d::UPDATE_DISCOUNT,
            &d::UpdateDiscountRequest {
                discount_id: 5,
                discount_name: Some("Semana 2".into()),
                start_time: Some(1_700_000_000),
                end_time: Some(1_700_086_400),
            },
            &d::UpdateDiscountRequest {
                discount_id: 5,
                ..d::UpdateDiscountRequest::default()
            },
        ),
        case::<_, d::DiscountItemsResponse>(
            d::UPDATE_DISCOUNT_ITEM,
            &d::DiscountItemsRequest {
                discount_id: 5,
                item_list: vec![d::DiscountItem {
                    item_promotion_stock: None,
                    model_list: vec![d::DiscountModel {
                        model_id: model(2),
                        model_promotion_price: price("9.9"),
                        model_promotion_stock: None,
                    }],
                    ..discount_item
                }],
            },
            &d::DiscountItemsRequest {
                discount_id: 5,
                item_list: vec![discount_item_min],
            },
        ),
        case::<_, d::DiscountIdResponse>(
            d::DELETE_DISCOUNT,
            &d::DiscountIdRequest { discount_id: 5 },
            &d::DiscountIdRequest { discount_id: 5 },
        ),
        case::<_, d::DeleteDiscountItemResponse>(
            d::DELETE_DISCOUNT_ITEM,
            &d::DeleteDiscountItemRequest {
                discount_id: 5,
                item_id: item(10),
                model_id: Some(model(2)),
            },
            &d::DeleteDiscountItemRequest {
                discount_id: 5,
                item_id: item(10),
                model_id: None,
            },
        ),
        case::<_, d::DiscountIdResponse>(
            d::END_DISCOUNT,
            &d::DiscountIdRequest { discount_id: 5 },
            &d::DiscountIdRequest { discount_id: 5 },
        ),
        case::<_, d::GetDiscountResponse>(
            d::GET_DISCOUNT,
            &d::GetDiscountRequest {
                discount_id: 5,
                page_no: 1,
                page_size: 100,
            },
            &d::GetDiscountRequest {
                discount_id: 5,
                page_no: 1,
                page_size: 100,
            },
        ),
        case::<_, d::GetDiscountListResponse>(
            d::GET_DISCOUNT_LIST,
            &d::GetDiscountListRequest {
                discount_status: d::DiscountStatus::Ongoing,
                page_no: 1,
                page_size: 100,
                update_time_from: Some(1_700_000_000),
                update_time_to: Some(1_700_086_400),
            },
            &d::GetDiscountListRequest {
                discount_status: d::DiscountStatus::All,
                page_no: 1,
                page_size: 100,
                update_time_from: None,
                update_time_to: None,
            },
        ),
        Case {
            endpoint: lg::UPLOAD_SERVICEABLE_POLYGON,
            full: Sent::Form(lg::polygon_form(b"<kml/>").parts().to_vec()),
            minimal: Sent::Form(lg::polygon_form(b"<kml/>").parts().to_vec()),
            decode: decoder::<lg::UploadServiceablePolygonResponse>,
        },
        case::<_, lg::CheckPolygonUpdateStatusResponse>(
            lg::CHECK_POLYGON_UPDATE_STATUS,
            &lg::CheckPolygonUpdateStatusRequest {
                task_id: "test_task_id".into(),
            },
            &lg::CheckPolygonUpdateStatusRequest {
                task_id: "test_task_id".into(),
            },
        ),
        Case {
            endpoint: media::UPLOAD_IMAGE,
            full: Sent::Form(image.form().parts().to_vec()),
            minimal: Sent::Form(image.form().parts().to_vec()),
            decode: decoder::<media::UploadImageResponse>,
        },
    ]
}

fn contract_api(ep: &Endpoint) -> &'static shopee_contract::Api {
    contract()
        .api(ep.path)
        .unwrap_or_else(|| panic!("{} is not in Shopee's contract", ep.path))
}

/// The request as it would leave the client.
fn violations(ep: &Endpoint, sent: &Sent) -> Vec<String> {
    let api = contract_api(ep);
    let shop = ShopAuth {
        shop_id: ShopId::new(900_001).unwrap(),
        access_token: "token",
    };
    let auth = (ep.scope == Scope::Shop).then_some(shop);
    let found = match sent {
        Sent::Form(parts) => {
            assert!(
                api.takes_file(),
                "{}: sent as multipart, but takes no file",
                ep.path
            );
            api.check_form(parts)
        }
        Sent::Params(params) => {
            assert!(
                !api.takes_file(),
                "{}: takes a file, but the client sends no multipart body",
                ep.path
            );
            let built = build_request("http://shopee.test", 7, "key", ep, auth, 1_700_000_000, params);
            match ep.method {
                Method::Get => {
                    assert!(built.body.is_none());
                    api.check_query(&built.query)
                }
                Method::Post => {
                    let v = api.check_body(built.body.as_ref().unwrap());
                    let stray: Vec<_> = built
                        .query
                        .iter()
                        .filter(|(k, _)| !shopee_contract::COMMON_QUERY_PARAMS.contains(&k.as_str()))
                        .collect();
                    assert!(
                        stray.is_empty(),
                        "{}: POST params in the query: {stray:?}",
                        ep.path
                    );
                    v
                }
            }
        }
    };
    found.iter().map(|v| format!("{}: {v}", ep.path)).collect()
}

#[test]
fn every_endpoint_the_client_defines_is_listed_and_in_the_contract() {
    let listed: BTreeSet<&str> = api::ENDPOINTS.iter().map(|e| e.path).collect();
    assert_eq!(listed.len(), api::ENDPOINTS.len(), "an endpoint is listed twice");
    // Every `Endpoint::get("...")` / `Endpoint::post("...")` written under src/api/.
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/api");
    let mut defined = BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for marker in ["Endpoint::get(\"", "Endpoint::post(\""] {
            for (at, _) in text.match_indices(marker) {
                let rest = &text[at + marker.len()..];
                defined.insert(rest[..rest.find('"').unwrap()].to_owned());
            }
        }
    }
    let defined: BTreeSet<&str> = defined.iter().map(String::as_str).collect();
    assert_eq!(
        defined, listed,
        "api::ENDPOINTS must list every endpoint defined in src/api/"
    );
    let cased: BTreeSet<&str> = cases().iter().map(|c| c.endpoint.path).collect();
    assert_eq!(cased, listed, "every endpoint needs a case in this suite");
    for ep in api::ENDPOINTS {
        contract_api(ep);
    }
    println!(
        "conformance: {} endpoints checked against contract {}",
        listed.len(),
        contract().source_commit()
    );
}

#[test]
fn path_method_and_signature_level_equal_the_contracts() {
    for ep in api::ENDPOINTS {
        let api = contract_api(ep);
        let method = match ep.method {
            Method::Get => shopee_contract::Method::Get,
            Method::Post => shopee_contract::Method::Post,
        };
        assert_eq!(method, api.method, "{}: method", ep.path);
        let auth = match ep.scope {
            Scope::Shop => Auth::Shop,
            Scope::Public => Auth::Public,
        };
        assert_eq!(auth, api.auth, "{}: signature level", ep.path);
    }
}

#[test]
fn requests_send_only_documented_keys_in_the_right_place_and_every_required_one() {
    let mut found = Vec::new();
    for c in cases() {
        found.extend(violations(&c.endpoint, &c.full));
        found.extend(violations(&c.endpoint, &c.minimal));
    }
    assert!(
        found.is_empty(),
        "requests departing from Shopee's contract:\n{}",
        found.join("\n")
    );
}

/// What the client reads: `response` for most APIs, the whole body for the top-level (auth) ones.
fn payload(ep: &Endpoint, answer: &Value) -> Value {
    if ep.top_level {
        answer.clone()
    } else {
        answer.get("response").cloned().unwrap_or(Value::Null)
    }
}

/// Adds an undocumented field to every object of `v`.
fn with_unknown_fields(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for child in map.values_mut() {
                with_unknown_fields(child);
            }
            map.insert("zz_field_shopee_added_later".into(), json!({"x": [1, "two"]}));
        }
        Value::Array(items) => items.iter_mut().for_each(with_unknown_fields),
        _ => {}
    }
}

#[test]
fn responses_decode_shopees_sample_and_every_documented_field_and_tolerate_unknown_ones() {
    let mut failures = Vec::new();
    let mut samples = 0;
    for c in cases() {
        let api = contract_api(&c.endpoint);
        if let Some(sample) = &api.response_sample {
            samples += 1;
            if let Err(e) = (c.decode)(payload(&c.endpoint, sample)) {
                failures.push(format!("{}: Shopee's sample: {e}", c.endpoint.path));
            }
        }
        let mut synthetic = api.synthesize_response();
        if let Err(e) = (c.decode)(payload(&c.endpoint, &synthetic)) {
            failures.push(format!("{}: every documented field: {e}", c.endpoint.path));
        }
        with_unknown_fields(&mut synthetic);
        if let Err(e) = (c.decode)(payload(&c.endpoint, &synthetic)) {
            failures.push(format!("{}: with unknown fields: {e}", c.endpoint.path));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(samples > 20, "only {samples} samples were read");
}

#[test]
fn the_suite_catches_a_departure() {
    // An undocumented key, a wrong type and a comma list where Shopee takes a repeated key are all reported.
    let bad = violations(
        &p::GET_ITEM_BASE_INFO,
        &Sent::Params(json!({"item_id_list": "10,11", "surprise": true})),
    );
    assert_eq!(bad.len(), 3, "{bad:?}");
    let statuses = violations(
        &p::GET_ITEM_LIST,
        &Sent::Params(json!({"offset": 0, "page_size": 10, "item_status": "NORMAL,UNLIST"})),
    );
    assert_eq!(statuses.len(), 1, "{statuses:?}");
    let post = violations(
        &p::UPDATE_PRICE,
        &Sent::Params(json!({"item_id": 10, "price_list": [{"price": 1}]})),
    );
    assert_eq!(post.len(), 2, "{post:?}");
    let broken: Result<(), String> =
        decoder::<p::GetItemBaseInfoResponse>(json!({"item_list": [{"item_id": 10, "weight": {"kg": 1}}]}));
    assert!(broken.is_err());
}

#[test]
fn every_endpoint_is_documented_in_docs_shopee_contract_md() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/shopee-contract.md"
    ))
    .unwrap();
    let missing: Vec<&str> = api::ENDPOINTS
        .iter()
        .map(|e| e.path)
        .filter(|p| !doc.contains(&format!("`{p}`")))
        .collect();
    assert!(missing.is_empty(), "not in docs/shopee-contract.md: {missing:?}");
    assert!(
        doc.contains(contract().source_commit()),
        "the doc names the contract's commit"
    );
}
