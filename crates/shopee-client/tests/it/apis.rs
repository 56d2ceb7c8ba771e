//! Every API the flows use, over HTTP against the sandbox: requests are built as Shopee expects them (the sandbox
//! checks signatures, tokens and parameters) and answers decode into the typed responses.

use std::time::Duration;

use chrono::Utc;
use domain::{ItemId, ModelId, Money, OrderSn, ShopId};
use shopee_client::ErrorKind;
use shopee_client::api::discount::{
    AddDiscountRequest, DeleteDiscountItemRequest, DiscountItem, DiscountItemsRequest, DiscountStatus,
    GetDiscountListRequest, GetDiscountRequest, UpdateDiscountRequest,
};
use shopee_client::api::logistics::{
    GetShippingParameterRequest, GetTrackingNumberRequest, LogisticsStatus, NonIntegrated, ShipMode,
    ShipOrderRequest, UpdateTrackingStatusRequest,
};
use shopee_client::api::order::{
    CancelOrderRequest, CancelReason, GetOrderListRequest, OptionalField, OrderStatus, TimeRangeField,
};
use shopee_client::api::product::{
    BatchTaskType, BatchUpdateOutletPriceRequest, BatchUpdateOutletStockRequest, GetItemListRequest,
    GetMartItemRequest, ItemStatus, OutletPriceItem, OutletStockItem, PriceEntry, PublishStatus, SellerStock,
    StockEntry, UpdateItemRequest, UpdatePriceRequest, UpdateStockRequest, price_number,
};
use shopee_sandbox::{MartLink, SeedDiscount, SeedItem, SeedModel, SeedOrder, SeedShop, ShopKind};

use crate::support::{Env, SHOP, shop};

fn sn(s: &str) -> OrderSn {
    OrderSn::parse(s).unwrap()
}

fn item(id: u64) -> ItemId {
    ItemId::new(id).unwrap()
}

fn model(id: u64) -> ModelId {
    ModelId::new(id).unwrap()
}

fn money(decimal: &str) -> Money {
    Money::parse_decimal(decimal).unwrap()
}

#[tokio::test]
async fn orders_list_by_cursor_detail_in_batches_of_50_and_cancel() {
    let env = Env::new().await;
    let client = env.client().await;
    env.authorized(&client, SHOP, 4 * 3600).await;
    let orders: Vec<SeedOrder> = (0..60)
        .map(|i| SeedOrder::example(SHOP, &format!("2511250A{i:04}"), 100_001, "789100000001"))
        .collect();
    env.sandbox.seed_orders(orders).await.unwrap();

    let now = Utc::now().timestamp();
    let mut req = GetOrderListRequest {
        time_range_field: TimeRangeField::CreateTime,
        time_from: now - 3600,
        time_to: now + 60,
        page_size: 25,
        cursor: String::new(),
        order_status: Some(OrderStatus::ReadyToShip),
        response_optional_fields: Vec::new(),
    };
    let mut sns = Vec::new();
    loop {
        let page = client.get_order_list(shop(), &req).await.unwrap();
        sns.extend(page.order_list.into_iter().map(|o| o.order_sn));
        if !page.more {
            break;
        }
        req.cursor = page.next_cursor;
    }
    assert_eq!(sns.len(), 60);
    assert_eq!(env.sandbox.calls_to("/api/v2/order/get_order_list"), 3);

    let details = client
        .get_order_detail(shop(), &sns, OptionalField::FOR_INTAKE)
        .await
        .unwrap();
    assert_eq!(details.len(), 60);
    assert_eq!(
        env.sandbox.calls_to("/api/v2/order/get_order_detail"),
        2,
        "50 + 10"
    );
    let d = &details[0];
    assert_eq!(d.order_status, OrderStatus::ReadyToShip);
    assert_eq!(
        Money::from_shopee_number(d.total_amount.as_ref().unwrap()).unwrap(),
        money("30.70")
    );
    let line = &d.item_list[0];
    assert_eq!(line.model_quantity_purchased, 2);
    assert_eq!(
        Money::from_shopee_number(line.model_discounted_price.as_ref().unwrap()).unwrap(),
        money("12.90")
    );
    assert_eq!(d.recipient_address.as_ref().unwrap().zipcode, "01310100");

    // An invalid window is refused before any call.
    let bad = GetOrderListRequest {
        time_to: now + 20 * 86_400,
        ..req.clone()
    };
    assert_eq!(
        client.get_order_list(shop(), &bad).await.unwrap_err().kind(),
        ErrorKind::Permanent
    );
    assert_eq!(env.sandbox.calls_to("/api/v2/order/get_order_list"), 3);

    let cancel = CancelOrderRequest {
        order_sn: sn("2511250A0001"),
        cancel_reason: CancelReason::CustomerRequest,
        item_list: vec![],
    };
    client.cancel_order(shop(), &cancel).await.unwrap();
    let again = client.cancel_order(shop(), &cancel).await.unwrap_err();
    assert_eq!(again.kind(), ErrorKind::Permanent, "{again}");
    assert_eq!(env.sandbox.calls_to("/api/v2/order/cancel_order"), 2);
    let view = env.sandbox.order(SHOP, "2511250A0001").unwrap();
    assert_eq!(view.order.order_status, "CANCELLED");
}

#[tokio::test]
async fn products_read_and_update_with_partial_failures() {
    let env = Env::new().await;
    let client = env.client().await;
    env.authorized(&client, SHOP, 4 * 3600).await;
    let mut locked = SeedModel::new(2, "SKU-B", 20.00, 5);
    locked.price_locked = true;
    env.sandbox
        .seed_items([
            SeedItem::single(SHOP, 100_001, "789100000001", 12.90, 37),
            SeedItem::with_models(
                SHOP,
                100_002,
                "Camiseta",
                vec![SeedModel::new(1, "SKU-A", 19.90, 3), locked],
            ),
        ])
        .unwrap();

    let list = client
        .get_item_list(
            shop(),
            &GetItemListRequest {
                offset: 0,
                page_size: 100,
                item_status: vec![ItemStatus::Normal],
                update_time_from: None,
                update_time_to: None,
            },
        )
        .await
        .unwrap();
    let mut ids: Vec<u64> = list.item.iter().map(|i| i.item_id.get()).collect();
    ids.sort_unstable();
    assert_eq!(ids, [100_001, 100_002]);

    let base = client
        .get_item_base_info(shop(), &[item(100_001), item(100_002)])
        .await
        .unwrap();
    assert_eq!(base.len(), 2);
    assert!(base.iter().any(|b| b.item_sku == "789100000001"));

    let models = client.get_model_list(shop(), item(100_002)).await.unwrap();
    assert_eq!(models.model.len(), 2);
    assert!(models.model.iter().any(|m| m.model_sku == "SKU-A"));

    // One model accepted, one refused: the call succeeds, the refusal is per model.
    let resp = client
        .update_price(
            shop(),
            &UpdatePriceRequest {
                item_id: item(100_002),
                price_list: vec![
                    PriceEntry {
                        model_id: model(1),
                        original_price: price_number(money("17.50")),
                    },
                    PriceEntry {
                        model_id: model(2),
                        original_price: price_number(money("18.00")),
                    },
                ],
            },
        )
        .await
        .unwrap();
    assert_eq!(resp.success_list.len(), 1);
    assert_eq!(resp.failure_list.len(), 1);
    assert_eq!(resp.failure_list[0].model_id, Some(model(2)));
    // Shopee documents `failed_reason` only for a refused model.
    assert_eq!(resp.failure_list[0].code(), None, "{:?}", resp.failure_list[0]);
    assert!(!resp.failure_list[0].message().is_empty());
    assert!(!resp.all_succeeded());
    assert_eq!(env.sandbox.price(SHOP, 100_002, 1), Some(17.5));
    assert_eq!(env.sandbox.price(SHOP, 100_002, 2), Some(20.0));

    let stock = client
        .update_stock(
            shop(),
            &UpdateStockRequest {
                item_id: item(100_001),
                stock_list: vec![StockEntry {
                    model_id: ModelId::NONE,
                    seller_stock: vec![SellerStock {
                        location_id: None,
                        stock: 5,
                    }],
                }],
            },
        )
        .await
        .unwrap();
    assert!(stock.all_succeeded(), "{stock:?}");
    assert_eq!(env.sandbox.stock(SHOP, 100_001, 0), Some(5));

    client
        .update_item(
            shop(),
            &UpdateItemRequest {
                item_id: item(100_001),
                item_name: Some("Água Mineral 500 ml".into()),
                description: None,
                item_sku: None,
                weight: None,
                dimension: None,
                image: None,
                item_status: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        env.sandbox.item(SHOP, 100_001).unwrap().item_name,
        "Água Mineral 500 ml"
    );

    // More than 50 models in one call is refused before any call.
    let calls = env.sandbox.calls_to("/api/v2/product/update_price");
    let too_many = UpdatePriceRequest {
        item_id: item(100_002),
        price_list: (0..51)
            .map(|i| PriceEntry {
                model_id: model(i),
                original_price: price_number(money("1.00")),
            })
            .collect(),
    };
    let err = client.update_price(shop(), &too_many).await.unwrap_err();
    assert!(
        matches!(err, shopee_client::Error::InvalidRequest { .. }),
        "{err}"
    );
    assert_eq!(env.sandbox.calls_to("/api/v2/product/update_price"), calls);
}

#[tokio::test]
async fn instant_mart_outlet_mapping_and_batch_updates() {
    const MART: u64 = 900_100;
    const OUTLET: u64 = 900_101;
    let env = Env::new().await;
    let client = env.client().await;
    env.sandbox
        .seed_shop(SeedShop {
            shop_id: MART,
            kind: ShopKind::Mart,
        })
        .unwrap();
    env.sandbox
        .seed_shop(SeedShop {
            shop_id: OUTLET,
            kind: ShopKind::Outlet { mart_shop_id: MART },
        })
        .unwrap();
    let mut outlet_item = SeedItem::single(OUTLET, 300_001, "789100000001", 12.90, 10);
    outlet_item.mart = Some(MartLink {
        mart_shop_id: MART,
        mart_item_id: 200_001,
    });
    env.sandbox.seed_item(outlet_item).unwrap();
    env.authorized(&client, OUTLET, 4 * 3600).await;
    let outlet = ShopId::new(OUTLET).unwrap();

    let link = client
        .get_mart_item_by_outlet_item_id(
            outlet,
            &GetMartItemRequest {
                outlet_item_id: item(300_001),
            },
        )
        .await
        .unwrap();
    assert_eq!(link.mart_item_id(), Some(item(200_001)));

    let task = client
        .batch_update_outlet_price(
            outlet,
            &BatchUpdateOutletPriceRequest {
                item_list: vec![OutletPriceItem {
                    outlet_shop_id: OUTLET,
                    item_id: item(300_001),
                    price_list: vec![PriceEntry {
                        model_id: ModelId::NONE,
                        original_price: price_number(money("11.00")),
                    }],
                }],
            },
        )
        .await
        .unwrap();
    let result = loop {
        let r = client
            .get_batch_task_result(outlet, BatchTaskType::Price, task.task_id)
            .await
            .unwrap();
        if r.publish_status != PublishStatus::Ongoing {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(result.publish_status, PublishStatus::Finished);
    assert!(result.failed_list.is_empty(), "{result:?}");
    assert_eq!(env.sandbox.price(OUTLET, 300_001, 0), Some(11.0));

    let task = client
        .batch_update_outlet_stock(
            outlet,
            &BatchUpdateOutletStockRequest {
                item_list: vec![
                    OutletStockItem {
                        outlet_shop_id: OUTLET,
                        item_id: item(300_001),
                        stock_list: vec![StockEntry {
                            model_id: ModelId::NONE,
                            seller_stock: vec![SellerStock {
                                location_id: None,
                                stock: 4,
                            }],
                        }],
                    },
                    OutletStockItem {
                        outlet_shop_id: OUTLET,
                        item_id: item(399_999),
                        stock_list: vec![StockEntry {
                            model_id: ModelId::NONE,
                            seller_stock: vec![SellerStock {
                                location_id: None,
                                stock: 1,
                            }],
                        }],
                    },
                ],
            },
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let result = client
        .get_batch_task_result(outlet, BatchTaskType::Stock, task.task_id)
        .await
        .unwrap();
    assert_eq!(result.publish_status, PublishStatus::Finished);
    assert_eq!(result.failed_list.len(), 1, "{result:?}");
    assert_eq!(result.failed_list[0].item_id, Some(item(399_999)));
    assert_eq!(env.sandbox.stock(OUTLET, 300_001, 0), Some(4));
}

#[tokio::test]
async fn logistics_ship_track_and_deliver() {
    let env = Env::new().await;
    let client = env.client().await;
    env.authorized(&client, SHOP, 4 * 3600).await;
    let mut order = SeedOrder::example(SHOP, "2511250SHIP1", 100_001, "789100000001");
    order.logistics_channel_id = 90026;
    env.sandbox.seed_order(order).await.unwrap();
    let order_sn = sn("2511250SHIP1");

    let params = client
        .get_shipping_parameter(
            shop(),
            &GetShippingParameterRequest {
                order_sn: order_sn.clone(),
                package_number: None,
            },
        )
        .await
        .unwrap();
    assert!(params.info_needed.non_integrated.is_some(), "{params:?}");

    client
        .ship_order(
            shop(),
            &ShipOrderRequest {
                order_sn: order_sn.clone(),
                package_number: None,
                mode: ShipMode::NonIntegrated(NonIntegrated {
                    tracking_number: Some("BR1234567890".into()),
                }),
            },
        )
        .await
        .unwrap();
    let tracking = client
        .get_tracking_number(
            shop(),
            &GetTrackingNumberRequest {
                order_sn: order_sn.clone(),
                package_number: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(tracking.tracking_number, "BR1234567890");

    // Shopee takes a tracking URL with pickup done only.
    let status = |s| UpdateTrackingStatusRequest {
        order_sn: order_sn.clone(),
        logistics_status: s,
        tracking_number: None,
        tracking_url: (s == LogisticsStatus::LogisticsPickupDone)
            .then(|| "https://track.test/BR1234567890".into()),
        failed_reason: None,
    };
    // Delivered before pickup: Shopee answers success with `update_result: failed`, which is an error, not retried.
    let early = client
        .update_tracking_status(shop(), &status(LogisticsStatus::LogisticsDeliveryDone))
        .await
        .unwrap_err();
    assert_eq!(early.kind(), ErrorKind::Permanent, "{early}");
    assert_eq!(
        early.shopee_code(),
        Some(shopee_client::api::logistics::UPDATE_RESULT_FAILED)
    );
    assert_eq!(
        env.sandbox.logistics_status(SHOP, "2511250SHIP1").as_deref(),
        Some("LOGISTICS_REQUEST_CREATED"),
        "nothing moved"
    );
    client
        .update_tracking_status(shop(), &status(LogisticsStatus::LogisticsPickupDone))
        .await
        .unwrap();
    client
        .update_tracking_status(shop(), &status(LogisticsStatus::LogisticsDeliveryDone))
        .await
        .unwrap();
    assert_eq!(
        env.sandbox.calls_to("/api/v2/logistics/update_tracking_status"),
        3
    );
    assert_eq!(
        env.sandbox.logistics_status(SHOP, "2511250SHIP1").as_deref(),
        Some("LOGISTICS_DELIVERY_DONE")
    );
}

#[tokio::test]
async fn discounts_full_lifecycle_with_per_item_errors() {
    let env = Env::new().await;
    let client = env.client().await;
    env.authorized(&client, SHOP, 4 * 3600).await;
    env.sandbox
        .seed_items([
            SeedItem::single(SHOP, 100_001, "789100000001", 12.90, 37),
            SeedItem::single(SHOP, 100_002, "789100000002", 5.00, 10),
        ])
        .unwrap();
    let now = Utc::now().timestamp();

    let created = client
        .add_discount(
            shop(),
            &AddDiscountRequest {
                discount_name: "Semana do Consumidor".into(),
                start_time: now + 2 * 3600,
                end_time: now + 5 * 86_400,
            },
        )
        .await
        .unwrap();
    let id = created.discount_id;

    let promo = |item_id, price: &str| DiscountItem {
        item_id: item(item_id),
        purchase_limit: 2,
        item_promotion_price: Some(price_number(money(price))),
        item_promotion_stock: None,
        model_list: vec![],
    };
    let added = client
        .add_discount_item(
            shop(),
            &DiscountItemsRequest {
                discount_id: id,
                item_list: vec![
                    promo(100_001, "9.90"),
                    promo(100_002, "7.00"),
                    promo(100_999, "1.00"),
                ],
            },
        )
        .await
        .unwrap();
    assert_eq!(added.count, 1, "{added:?}");
    let refused: Vec<u64> = added.error_list.iter().map(|e| e.item_id.get()).collect();
    assert_eq!(refused.len(), 2, "{added:?}");
    assert!(
        refused.contains(&100_002) && refused.contains(&100_999),
        "{added:?}"
    );

    let got = client
        .get_discount(
            shop(),
            &GetDiscountRequest {
                discount_id: id,
                page_no: 1,
                page_size: 50,
            },
        )
        .await
        .unwrap();
    assert_eq!(got.item_list.len(), 1);
    assert_eq!(
        Money::from_shopee_number(got.item_list[0].item_promotion_price.as_ref().unwrap()).unwrap(),
        money("9.90")
    );
    assert_eq!(got.status, Some(DiscountStatus::Upcoming));

    let list = client
        .get_discount_list(
            shop(),
            &GetDiscountListRequest {
                discount_status: DiscountStatus::Upcoming,
                page_no: 1,
                page_size: 100,
                update_time_from: None,
                update_time_to: None,
            },
        )
        .await
        .unwrap();
    assert!(list.discount_list.iter().any(|d| d.discount_id == id));

    client
        .update_discount(
            shop(),
            &UpdateDiscountRequest {
                discount_id: id,
                discount_name: Some("Semana do Consumidor 2".into()),
                end_time: Some(now + 4 * 86_400),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let updated = client
        .update_discount_item(
            shop(),
            &DiscountItemsRequest {
                discount_id: id,
                item_list: vec![promo(100_001, "9.50")],
            },
        )
        .await
        .unwrap();
    assert!(updated.error_list.is_empty(), "{updated:?}");
    let view = env.sandbox.discount(SHOP, id).unwrap();
    assert_eq!(view.discount_name, "Semana do Consumidor 2");
    assert_eq!(view.items[0].promotion_price, 9.5);

    let deleted = client
        .delete_discount_item(
            shop(),
            &DeleteDiscountItemRequest {
                discount_id: id,
                item_id: item(100_001),
                model_id: None,
            },
        )
        .await
        .unwrap();
    assert!(deleted.error_list.is_empty(), "{deleted:?}");
    client.delete_discount(shop(), id).await.unwrap();
    assert!(env.sandbox.discount(SHOP, id).is_none());

    // An ongoing discount can be ended.
    let ongoing = env
        .sandbox
        .seed_discount(SeedDiscount {
            shop_id: SHOP,
            discount_id: None,
            discount_name: "Em andamento".into(),
            start_time: now - 2 * 3600,
            end_time: now + 86_400,
            items: vec![],
        })
        .unwrap();
    client.end_discount(shop(), ongoing).await.unwrap();
    assert_eq!(env.sandbox.discount(SHOP, ongoing).unwrap().status, "expired");
}

#[tokio::test]
async fn lost_pushes_are_listed_and_confirmed() {
    let env = Env::new().await;
    let client = env.client().await;
    // No callback configured: the push of a new order is lost, kept for recovery.
    env.sandbox
        .seed_order(SeedOrder::example(SHOP, "2511250LOST1", 100_001, "789100000001"))
        .await
        .unwrap();
    env.sandbox.flush_pushes().await;

    let lost = client.get_lost_push_message().await.unwrap();
    assert!(!lost.push_message_list.is_empty(), "{lost:?}");
    let msg = &lost.push_message_list[0];
    assert_eq!(msg.code, 3);
    assert_eq!(msg.push_data()["ordersn"], "2511250LOST1");

    client
        .confirm_consumed_lost_push_message(lost.last_message_id.unwrap())
        .await
        .unwrap();
    let after = client.get_lost_push_message().await.unwrap();
    assert!(after.push_message_list.is_empty(), "{after:?}");
}

#[tokio::test]
async fn upload_image_gives_ids_that_update_item_takes() {
    use shopee_client::api::media::{MAX_IMAGE_BYTES, UploadImageRequest};
    use shopee_client::api::product::ItemImage;
    use shopee_sandbox::Fault;

    const UPLOAD: &str = "/api/v2/media_space/upload_image";
    let env = Env::new().await;
    let client = env.client().await;
    env.authorized(&client, SHOP, 4 * 3600).await;
    env.sandbox
        .seed_items([SeedItem::single(SHOP, 100_001, "789100000001", 12.90, 37)])
        .unwrap();
    let png = |extra: &[u8]| UploadImageRequest {
        file_name: "image.png".into(),
        content_type: "image/png".into(),
        data: [&b"\x89PNG\r\n\x1a\n"[..], extra].concat(),
    };

    // Two uploads (a 429 on the first is retried: Shopee did not take it), then both ids in update_item.
    env.sandbox.inject_fault(Fault::http_429().api(UPLOAD).times(1));
    let a = client.upload_image(&png(b"one")).await.unwrap();
    let b = client.upload_image(&png(b"two")).await.unwrap();
    assert_ne!(a.image_info.image_id, b.image_info.image_id);
    assert_eq!(a.image_info.image_url_list[0].image_url_region, "BR");
    assert_eq!(env.entries(UPLOAD).len(), 3);
    let upload = &env.entries(UPLOAD)[2];
    assert_eq!(upload.shop_id, None, "a public (partner-signed) call");
    assert_eq!(upload.request["image"]["size"], 11);
    let ids = vec![b.image_info.image_id.clone(), a.image_info.image_id.clone()];
    let mut req = UpdateItemRequest {
        item_id: item(100_001),
        item_name: None,
        description: None,
        item_sku: None,
        weight: None,
        dimension: None,
        image: Some(ItemImage {
            image_id_list: ids.clone(),
        }),
        item_status: None,
    };
    client.update_item(shop(), &req).await.unwrap();
    assert_eq!(env.sandbox.item(SHOP, 100_001).unwrap().images, ids);

    // Refusals are permanent; a server error is not retried (Shopee may have taken the image).
    req.image = Some(ItemImage {
        image_id_list: vec!["br-never-uploaded".into()],
    });
    let e = client.update_item(shop(), &req).await.unwrap_err();
    assert_eq!(
        (e.kind(), e.shopee_code()),
        (ErrorKind::Permanent, Some("error_param"))
    );
    let not_image = UploadImageRequest {
        file_name: "x.png".into(),
        content_type: "image/png".into(),
        data: b"<html>404</html>".to_vec(),
    };
    let e = client.upload_image(&not_image).await.unwrap_err();
    assert_eq!(
        (e.kind(), e.shopee_code()),
        (ErrorKind::Permanent, Some("error_param"))
    );
    env.sandbox
        .inject_fault(Fault::server_error(500).api(UPLOAD).times(1));
    let e = client.upload_image(&png(b"three")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Retryable);
    assert_eq!(
        env.entries(UPLOAD).len(),
        5,
        "one call for the refusal, one for the 500"
    );

    // Empty and oversized files are refused before any call.
    let before = env.entries(UPLOAD).len();
    for data in [Vec::new(), vec![0u8; MAX_IMAGE_BYTES + 1]] {
        let e = client
            .upload_image(&UploadImageRequest { data, ..png(b"") })
            .await
            .unwrap_err();
        assert!(matches!(e, shopee_client::Error::InvalidRequest { .. }), "{e}");
    }
    assert_eq!(env.entries(UPLOAD).len(), before);
}
