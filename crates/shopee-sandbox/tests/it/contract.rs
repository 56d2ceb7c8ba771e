//! The sandbox follows Shopee's published documentation (`shopee_contract`), not our client: every route exists in
//! the documentation with its method, every route answers a valid request with only documented fields at their
//! documented types, and every route refuses a request missing a required parameter or carrying an undocumented
//! one with `error_param`. A route added to the sandbox without an exercise here fails `every_route_*`.

use reqwest::StatusCode;
use serde_json::{Value, json};
use shopee_contract::{Auth, Strictness, contract};
use shopee_sandbox::{
    MartLink, NOT_IN_CONTRACT, SeedDiscount, SeedDiscountItem, SeedItem, SeedModel, SeedOrder,
};

use crate::support::*;

const H: i64 = 3600;
const D: i64 = 86_400;
const UNDOCUMENTED: &str = "sandbox_undocumented";
/// A serviceable area with one closed ring.
const KML: &[u8] =
    b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><kml xmlns=\"http://www.opengis.net/kml/2.2\"><Document>\
<Placemark><Polygon><outerBoundaryIs><LinearRing><coordinates>-46.6,-23.5 -46.7,-23.6 -46.5,-23.6 -46.6,-23.5\
</coordinates></LinearRing></outerBoundaryIs></Polygon></Placemark></Document></kml>";

/// A request as it goes on the wire.
#[derive(Clone)]
enum Req {
    Get(Vec<(String, String)>),
    Post(Value),
    /// (part name, is a file, bytes)
    Form(Vec<(String, bool, Vec<u8>)>),
}

fn get(pairs: &[(&str, &str)]) -> Req {
    Req::Get(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )
}

fn public(path: &str) -> bool {
    NOT_IN_CONTRACT.contains(&path) || contract().api(path).is_some_and(|a| a.auth == Auth::Public)
}

async fn send(env: &Env, path: &str, req: &Req) -> Answer {
    let mut q = if public(path) {
        Env::public_query(path, now())
    } else {
        env.signed_shop_query(path, now())
    };
    let url = env.url(path);
    let r = match req {
        Req::Get(pairs) => {
            q.extend(pairs.iter().cloned());
            env.http.get(url).query(&q).send().await.unwrap()
        }
        Req::Post(body) => env.http.post(url).query(&q).json(body).send().await.unwrap(),
        Req::Form(parts) => {
            let boundary = "sbx-contract-boundary";
            let mut body = Vec::new();
            for (name, file, data) in parts {
                body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
                if *file {
                    body.extend_from_slice(
                        format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n")
                            .as_bytes(),
                    );
                } else {
                    body.extend_from_slice(
                        format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
                    );
                }
                body.extend_from_slice(data);
                body.extend_from_slice(b"\r\n");
            }
            body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
            env.http
                .post(url)
                .query(&q)
                .header(
                    "Content-Type",
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    answer(r).await
}

/// What the valid requests below rely on.
struct World {
    image_id: String,
    polygon_task_id: String,
    auth_code: String,
    task_id: u64,
}

async fn world(env: &Env) -> World {
    let mut items = vec![
        SeedItem::single(SHOP, 1, "SKU1", 12.90, 37),
        SeedItem::with_models(
            SHOP,
            2,
            "Camiseta",
            vec![
                SeedModel::new(21, "SKU21", 39.90, 10),
                SeedModel::new(22, "SKU22", 39.90, 8),
            ],
        ),
    ];
    let mut outlet_item = SeedItem::single(SHOP, 5, "SKU5", 5.0, 3);
    outlet_item.mart = Some(MartLink {
        mart_shop_id: 900_100,
        mart_item_id: 105,
    });
    items.push(outlet_item);
    env.sandbox.seed_items(items).unwrap();
    let created = now() - 100;
    let mut orders = Vec::new();
    for (sn, status) in [
        ("R1", "READY_TO_SHIP"),
        ("S1", "READY_TO_SHIP"),
        ("C1", "READY_TO_SHIP"),
        ("P1", "PROCESSED"),
        ("U1", "UNPAID"),
    ] {
        let mut o = SeedOrder::example(SHOP, sn, 1, "SKU1");
        o.order_status = status.into();
        o.create_time = Some(created);
        o.message_to_seller = "Deixar na portaria".into();
        o.note = "nota interna".into();
        let mut bundle = o.item_list[0].clone();
        bundle.item_id = 2;
        bundle.model_id = 21;
        bundle.promotion_type = "bundle_deal".into();
        o.item_list.push(bundle);
        orders.push(o);
    }
    env.sandbox.seed_orders(orders).await.unwrap();
    let n = now();
    let item = |item_id, model_id| SeedDiscountItem {
        item_id,
        model_id,
        promotion_price: 5.0,
        promotion_stock: 0,
        purchase_limit: 0,
    };
    for (id, start, end, items) in [
        (801, n + 2 * H, n + 2 * D, vec![item(1, 0)]),
        (802, n + 2 * H, n + 2 * D, vec![]),
        (803, n + 2 * H, n + 2 * D, vec![item(1, 0)]),
        (804, n - 2 * H, n + 2 * D, vec![]),
        (805, n + 2 * H, n + 2 * D, vec![]),
    ] {
        env.sandbox
            .seed_discount(SeedDiscount {
                shop_id: SHOP,
                discount_id: Some(id),
                discount_name: format!("D{id}"),
                start_time: start,
                end_time: end,
                items,
            })
            .unwrap();
    }
    let image_id = env.upload("image", "image/png", PNG, true).await.ok()["image_info"]["image_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let task = env
        .post(
            "/api/v2/product/batch_update_outlet_price",
            json!({"item_list": [{"outlet_shop_id": SHOP, "item_id": 1, "price_list": [{"model_id": 0, "original_price": 11.5}]}]}),
        )
        .await;
    let polygon = send(
        env,
        "/api/v2/logistics/upload_serviceable_polygon",
        &Req::Form(vec![("file".into(), true, KML.to_vec())]),
    )
    .await;
    World {
        polygon_task_id: polygon.ok()["task_id"].as_str().unwrap().to_owned(),
        image_id,
        auth_code: env.sandbox.authorize_shop(900_002),
        task_id: task.ok()["task_id"].as_u64().unwrap(),
    }
}

/// A valid request for every route; a route without one fails the test.
fn valid_request(env: &Env, w: &World, path: &str) -> Req {
    let n = now();
    let (from, to) = ((n - 1000).to_string(), (n + 10).to_string());
    let task_id = w.task_id.to_string();
    match path {
        "/api/v2/shop/auth_partner" => get(&[("redirect", "https://seller.test/callback")]),
        "/api/v2/auth/token/get" => {
            Req::Post(json!({"code": w.auth_code, "partner_id": PARTNER_ID, "shop_id": 900_002}))
        }
        "/api/v2/auth/access_token/get" => {
            Req::Post(json!({"refresh_token": env.refresh, "partner_id": PARTNER_ID, "shop_id": SHOP}))
        }
        "/api/v2/push/get_lost_push_message" => get(&[]),
        "/api/v2/push/confirm_consumed_lost_push_message" => Req::Post(json!({"last_message_id": 1})),
        "/api/v2/order/get_order_list" => get(&[
            ("time_range_field", "create_time"),
            ("time_from", &from),
            ("time_to", &to),
            ("page_size", "10"),
            ("response_optional_fields", "order_status"),
        ]),
        "/api/v2/order/get_order_detail" => get(&[
            ("order_sn_list", "R1,P1,U1,NOPE"),
            (
                "response_optional_fields",
                "buyer_user_id,buyer_username,estimated_shipping_fee,recipient_address,actual_shipping_fee,\
                 goods_to_declare,note,note_update_time,item_list,pay_time,dropshipper,dropshipper_phone,split_up,\
                 buyer_cancel_reason,cancel_by,cancel_reason,actual_shipping_fee_confirmed,buyer_cpf_id,\
                 fulfillment_flag,pickup_done_time,package_list,shipping_carrier,payment_method,total_amount,\
                 invoice_data,order_chargeable_weight_gram,return_request_due_date,edt,payment_info,\
                 checkout_shipping_carrier",
            ),
        ]),
        "/api/v2/order/get_package_detail" => get(&[("package_number_list", "PNR1,PNP1,PNNOPE")]),
        "/api/v2/order/cancel_order" => Req::Post(
            json!({"order_sn": "C1", "cancel_reason": "OUT_OF_STOCK", "item_list": [{"item_id": 1, "model_id": 0}]}),
        ),
        "/api/v2/product/get_item_list" => get(&[
            ("offset", "0"),
            ("page_size", "10"),
            ("item_status", "NORMAL"),
            ("item_status", "UNLIST"),
        ]),
        "/api/v2/product/get_item_base_info" => get(&[("item_id_list", "1"), ("item_id_list", "2")]),
        "/api/v2/product/get_model_list" => get(&[("item_id", "2")]),
        "/api/v2/product/update_price" => Req::Post(
            json!({"item_id": 2, "price_list": [{"model_id": 21, "original_price": 30.0}, {"model_id": 99, "original_price": 1.0}]}),
        ),
        "/api/v2/product/update_stock" => Req::Post(
            json!({"item_id": 2, "stock_list": [{"model_id": 22, "seller_stock": [{"stock": 5}]}, {"model_id": 99, "seller_stock": [{"stock": 1}]}]}),
        ),
        "/api/v2/product/update_item" => {
            Req::Post(json!({"item_id": 1, "item_name": "Arroz 5kg", "weight": 1.5,
            "item_sku": "SKU1", "dimension": {"package_length": 30, "package_width": 20, "package_height": 10},
            "image": {"image_id_list": [w.image_id]}}))
        }
        "/api/v2/product/get_mart_item_by_outlet_item_id" => Req::Post(json!({"outlet_item_id": 5})),
        "/api/v2/product/batch_update_outlet_price" => Req::Post(
            json!({"item_list": [{"outlet_shop_id": SHOP, "item_id": 5, "price_list": [{"model_id": 0, "original_price": 6.0}]},
                {"outlet_shop_id": SHOP, "item_id": 404, "price_list": [{"original_price": 6.0}]}]}),
        ),
        "/api/v2/product/batch_update_outlet_stock" => Req::Post(
            json!({"item_list": [{"outlet_shop_id": SHOP, "item_id": 5, "stock_list": [{"model_id": 0, "seller_stock": [{"stock": 4}]}]}]}),
        ),
        "/api/v2/product/get_batch_task_result" => get(&[("task_type", "1"), ("task_id", &task_id)]),
        "/api/v2/logistics/get_shipping_parameter" => get(&[("order_sn", "R1")]),
        "/api/v2/logistics/ship_order" => {
            Req::Post(json!({"order_sn": "S1", "non_integrated": {"tracking_number": "BR1"}}))
        }
        "/api/v2/logistics/update_tracking_status" => Req::Post(
            json!({"order_sn": "P1", "logistics_status": "logistics_pickup_done", "tracking_number": "BR2", "tracking_url": "https://t.test/2"}),
        ),
        "/api/v2/logistics/get_tracking_number" => get(&[("order_sn", "P1")]),
        "/api/v2/logistics/upload_serviceable_polygon" => {
            Req::Form(vec![("file".into(), true, KML.to_vec())])
        }
        "/api/v2/logistics/check_polygon_update_status" => Req::Post(json!({"task_id": w.polygon_task_id})),
        "/api/v2/discount/add_discount" => {
            Req::Post(json!({"discount_name": "Nova", "start_time": n + 2 * H, "end_time": n + 2 * D}))
        }
        "/api/v2/discount/add_discount_item" => Req::Post(json!({"discount_id": 802, "item_list": [
            {"item_id": 2, "purchase_limit": 0, "model_list": [{"model_id": 22, "model_promotion_price": 20.0, "model_promotion_stock": 1}]},
            {"item_id": 404, "purchase_limit": 0, "item_promotion_price": 1.0}]})),
        "/api/v2/discount/update_discount" => {
            Req::Post(json!({"discount_id": 801, "discount_name": "Renomeada"}))
        }
        "/api/v2/discount/update_discount_item" => Req::Post(
            json!({"discount_id": 801, "item_list": [{"item_id": 1, "item_promotion_price": 6.0, "purchase_limit": 2}]}),
        ),
        "/api/v2/discount/delete_discount_item" => Req::Post(json!({"discount_id": 803, "item_id": 1})),
        "/api/v2/discount/end_discount" => Req::Post(json!({"discount_id": 804})),
        "/api/v2/discount/delete_discount" => Req::Post(json!({"discount_id": 805})),
        "/api/v2/discount/get_discount" => {
            get(&[("discount_id", "801"), ("page_no", "1"), ("page_size", "10")])
        }
        "/api/v2/discount/get_discount_list" => {
            get(&[("discount_status", "all"), ("page_no", "1"), ("page_size", "10")])
        }
        "/api/v2/media_space/upload_image" => Req::Form(vec![
            ("image".into(), true, PNG.to_vec()),
            ("scene".into(), false, b"normal".to_vec()),
        ]),
        other => panic!("route {other} has no valid request in tests/it/contract.rs: add one"),
    }
}

#[test]
fn every_route_is_in_the_documentation_with_its_method() {
    let mut checked = 0;
    for (path, method) in shopee_sandbox::routes() {
        if NOT_IN_CONTRACT.contains(&path) {
            assert!(
                contract().api(path).is_none(),
                "{path} is documented now: check it"
            );
            continue;
        }
        let doc = contract()
            .api(path)
            .unwrap_or_else(|| panic!("{path} is not in Shopee's documentation"));
        let documented = match doc.method {
            shopee_contract::Method::Get => reqwest::Method::GET,
            shopee_contract::Method::Post => reqwest::Method::POST,
        };
        assert_eq!(method.as_str(), documented.as_str(), "{path}");
        checked += 1;
    }
    assert_eq!(checked + NOT_IN_CONTRACT.len(), shopee_sandbox::routes().count());
    println!("{checked} routes match the documentation; not documented: {NOT_IN_CONTRACT:?}");
}

#[tokio::test]
async fn every_route_answers_a_valid_request_with_documented_fields_only() {
    let mut config = config();
    config.batch_task_delay = std::time::Duration::ZERO;
    let env = env_with(config).await;
    let w = world(&env).await;
    let mut validated = 0;
    for (path, _) in shopee_sandbox::routes() {
        let req = valid_request(&env, &w, path);
        let a = send(&env, path, &req).await;
        let Some(doc) = contract().api(path) else {
            assert_eq!(a.status, StatusCode::FOUND.as_u16(), "{path}: {}", a.body);
            continue;
        };
        assert_eq!((a.status, a.error()), (200, ""), "{path}: {}", a.body);
        let violations = doc.check_response(&a.body, Strictness::DocumentedOnly);
        assert!(
            violations.is_empty(),
            "{path} answers outside the documentation: {violations:?}\n{}",
            a.body
        );
        validated += 1;
    }
    println!("{validated} routes answered a valid request within the documentation");
    // What the shapes above carry.
    let detail = send(
        &env,
        "/api/v2/order/get_order_detail",
        &valid_request(&env, &w, "/api/v2/order/get_order_detail"),
    )
    .await;
    let r1 = &detail.body["response"]["order_list"][0];
    assert_eq!(r1["item_list"][1]["model_discounted_price"], 0.0, "bundle deal");
    assert_eq!(
        (r1["note"].as_str(), r1["message_to_seller"].as_str()),
        (Some("nota interna"), Some("Deixar na portaria"))
    );
    assert_eq!(detail.body["warning"][0], "order_sn NOPE not found");
    let list = send(
        &env,
        "/api/v2/order/get_order_list",
        &get(&[
            ("time_range_field", "create_time"),
            ("time_from", &(now() - 1000).to_string()),
            ("time_to", &(now() + 10).to_string()),
            ("page_size", "10"),
        ]),
    )
    .await;
    assert_eq!(
        list.body["response"]["order_list"][0].as_object().unwrap().len(),
        1,
        "order_sn only"
    );
}

#[tokio::test]
async fn every_route_refuses_a_missing_required_or_an_undocumented_parameter() {
    let env = env().await;
    let w = world(&env).await;
    let mut refused = 0;
    for (path, _) in shopee_sandbox::routes() {
        let Some(doc) = contract().api(path) else {
            continue;
        };
        let valid = valid_request(&env, &w, path);
        // One undocumented parameter.
        let extra = match &valid {
            Req::Get(pairs) => {
                let mut pairs = pairs.clone();
                pairs.push((UNDOCUMENTED.into(), "1".into()));
                Req::Get(pairs)
            }
            Req::Post(body) => {
                let mut body = body.clone();
                body[UNDOCUMENTED] = json!(1);
                Req::Post(body)
            }
            Req::Form(parts) => {
                let mut parts = parts.clone();
                parts.push((UNDOCUMENTED.into(), false, b"1".to_vec()));
                Req::Form(parts)
            }
        };
        let a = send(&env, path, &extra).await;
        assert_eq!(
            (a.status, a.error()),
            (400, "error_param"),
            "{path} with {UNDOCUMENTED}: {}",
            a.body
        );
        assert!(a.message().contains(UNDOCUMENTED), "{path}: {}", a.message());
        // Without its first required parameter.
        let Some(required) = doc.request.iter().find(|f| f.required) else {
            assert!(
                matches!(valid, Req::Get(ref p) if p.is_empty()),
                "{path} documents no required parameter"
            );
            refused += 1;
            continue;
        };
        let name = required.name.clone();
        let missing = match &valid {
            Req::Get(pairs) => Req::Get(pairs.iter().filter(|(k, _)| *k != name).cloned().collect()),
            Req::Post(body) => {
                let mut body = body.clone();
                body.as_object_mut().unwrap().remove(&name);
                Req::Post(body)
            }
            Req::Form(parts) => Req::Form(parts.iter().filter(|(k, ..)| *k != name).cloned().collect()),
        };
        let a = send(&env, path, &missing).await;
        assert_eq!(
            (a.status, a.error()),
            (400, "error_param"),
            "{path} without {name}: {}",
            a.body
        );
        assert!(a.message().contains(&name), "{path}: {}", a.message());
        refused += 1;
    }
    assert_eq!(refused + NOT_IN_CONTRACT.len(), shopee_sandbox::routes().count());
    println!("{refused} routes refused a missing required and an undocumented parameter");
}
