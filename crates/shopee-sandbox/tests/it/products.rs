//! Items, models, price and stock updates with per-model failures, update_item, Instant Mart outlets.

use std::time::Duration;

use serde_json::json;
use shopee_sandbox::{ItemFlags, MartLink, SeedItem, SeedModel, SeedShop, ShopKind};

use crate::support::*;

fn catalog(env: &Env) {
    env.sandbox
        .seed_items([
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
            SeedItem::with_models(
                SHOP,
                3,
                "Multi-warehouse",
                vec![SeedModel::new(31, "SKU31", 5.0, 0).at_location("BRZ01", 4)],
            ),
        ])
        .unwrap();
}

#[tokio::test]
async fn items_and_models_read_back() {
    let env = env().await;
    catalog(&env);
    let a = env
        .get(
            "/api/v2/product/get_item_list",
            &[("offset", "0"), ("page_size", "2"), ("item_status", "NORMAL")],
        )
        .await;
    let r = a.ok();
    assert_eq!(r["total_count"], 3);
    assert_eq!(r["has_next_page"], true);
    assert_eq!(r["next_offset"], 2);
    assert_eq!(r["item"][0]["item_id"], 1);

    let a = env
        .get(
            "/api/v2/product/get_item_base_info",
            &[("item_id_list", "1"), ("item_id_list", "2")],
        )
        .await;
    let list = a.ok()["item_list"].as_array().unwrap().clone();
    assert_eq!(list[0]["item_sku"], "SKU1");
    assert_eq!(list[0]["has_model"], false);
    assert_eq!(list[0]["price_info"][0]["original_price"], 12.9);
    assert_eq!(
        list[0]["stock_info_v2"]["seller_stock"][0]["stock"], 37,
        "in the item, as Shopee's sample has it"
    );
    assert_eq!(list[1]["has_model"], true);
    let ids: Vec<String> = (1..=51).map(|i| i.to_string()).collect();
    let too_many: Vec<(&str, &str)> = ids.iter().map(|i| ("item_id_list", i.as_str())).collect();
    let a = env.get("/api/v2/product/get_item_base_info", &too_many).await;
    assert_eq!(a.error(), "error_param");
    assert!(a.message().contains("50"), "{}", a.message());
    // An int64[] is repeated keys, never a comma list.
    let a = env
        .get("/api/v2/product/get_item_base_info", &[("item_id_list", "1,2")])
        .await;
    assert_eq!(a.error(), "error_param");
    assert!(a.message().contains("item_id_list"), "{}", a.message());

    let a = env
        .get("/api/v2/product/get_model_list", &[("item_id", "2")])
        .await;
    let models = a.ok()["model"].as_array().unwrap().clone();
    assert_eq!(models.len(), 2);
    assert_eq!(models[1]["model_sku"], "SKU22");
    assert_eq!(models[1]["price_info"][0]["current_price"], 39.9);
    assert_eq!(
        models[1]["stock_info_v2"]["summary_info"]["total_available_stock"],
        8
    );
}

#[tokio::test]
async fn update_price_reports_failures_per_model() {
    let env = env().await;
    catalog(&env);
    env.sandbox
        .set_item_flags(
            SHOP,
            2,
            ItemFlags {
                price_locked: Some(true),
                model_id: Some(22),
                ..Default::default()
            },
        )
        .unwrap();
    let body = json!({"item_id": 2, "price_list": [
        {"model_id": 21, "original_price": 35.5},
        {"model_id": 22, "original_price": 35.5},
        {"model_id": 99, "original_price": 1.0},
        {"model_id": 21, "original_price": 0}
    ]});
    let a = env.post("/api/v2/product/update_price", body).await;
    let r = a.ok();
    assert_eq!(
        r["success_list"],
        json!([{"model_id": 21, "original_price": 35.5}])
    );
    let failures = r["failure_list"].as_array().unwrap();
    assert_eq!(failures.len(), 3);
    assert_eq!(failures[0]["model_id"], 22);
    assert!(
        failures[0].get("error").is_none(),
        "failure_list has model_id and failed_reason only"
    );
    assert!(
        failures[0]["failed_reason"]
            .as_str()
            .unwrap()
            .contains("promotion")
    );
    assert_eq!(env.sandbox.price(SHOP, 2, 21), Some(35.5));
    assert_eq!(env.sandbox.price(SHOP, 2, 22), Some(39.9));

    env.sandbox
        .set_item_flags(
            SHOP,
            1,
            ItemFlags {
                deleted: Some(true),
                ..Default::default()
            },
        )
        .unwrap();
    let a = env
        .post(
            "/api/v2/product/update_price",
            json!({"item_id": 1, "price_list": [{"model_id": 0, "original_price": 9.9}]}),
        )
        .await;
    assert_eq!(
        a.ok()["failure_list"][0]["failed_reason"],
        "Can't edit this item. item status can not support editing."
    );

    let list: Vec<_> = (0..51)
        .map(|i| json!({"model_id": i, "original_price": 1.0}))
        .collect();
    let a = env
        .post(
            "/api/v2/product/update_price",
            json!({"item_id": 2, "price_list": list}),
        )
        .await;
    assert_eq!(a.error(), "error_param");
    let a = env
        .post(
            "/api/v2/product/update_price",
            json!({"item_id": 2, "price_list": []}),
        )
        .await;
    assert_eq!(a.error(), "error_param");
}

#[tokio::test]
async fn update_stock_respects_reserves_and_locations() {
    let env = env().await;
    catalog(&env);
    env.sandbox
        .set_item_flags(
            SHOP,
            2,
            ItemFlags {
                promotion_reserved: Some(5),
                model_id: Some(21),
                ..Default::default()
            },
        )
        .unwrap();
    let body = json!({"item_id": 2, "stock_list": [
        {"model_id": 21, "seller_stock": [{"stock": 4}]},
        {"model_id": 22, "seller_stock": [{"stock": 50}]}
    ]});
    let r = env.post("/api/v2/product/update_stock", body).await.ok().clone();
    assert_eq!(r["failure_list"][0]["model_id"], 21);
    assert!(
        r["failure_list"][0]["failed_reason"]
            .as_str()
            .unwrap()
            .contains("less than reserved stock")
    );
    assert_eq!(r["success_list"][0]["model_id"], 22);
    assert_eq!(env.sandbox.stock(SHOP, 2, 21), Some(10));
    assert_eq!(env.sandbox.stock(SHOP, 2, 22), Some(50));

    // Multi-warehouse: location_id is required and must exist.
    let no_location = json!({"item_id": 3, "stock_list": [{"model_id": 31, "seller_stock": [{"stock": 9}]}]});
    let r = env
        .post("/api/v2/product/update_stock", no_location)
        .await
        .ok()
        .clone();
    assert!(
        r["failure_list"][0]["failed_reason"]
            .as_str()
            .unwrap()
            .contains("location_id")
    );
    let wrong = json!({"item_id": 3, "stock_list": [{"model_id": 31, "seller_stock": [{"location_id": "XX", "stock": 9}]}]});
    assert_eq!(
        env.post("/api/v2/product/update_stock", wrong).await.ok()["failure_list"][0]["failed_reason"],
        "The location_id input is not matched the shop's location_id(more/wrong). Please double check."
    );
    let right = json!({"item_id": 3, "stock_list": [{"model_id": 31, "seller_stock": [{"location_id": "BRZ01", "stock": 9}]}]});
    let r = env.post("/api/v2/product/update_stock", right).await.ok().clone();
    assert_eq!(
        r["success_list"],
        json!([{"model_id": 31, "location_id": "BRZ01", "stock": 9}])
    );
    assert_eq!(env.sandbox.stock(SHOP, 3, 31), Some(9));
}

#[tokio::test]
async fn update_item_changes_content() {
    let env = env().await;
    catalog(&env);
    let img1 = env.upload("image", "image/png", PNG, false).await.ok()["image_info"]["image_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = json!({"item_id": 1, "item_name": "Arroz 5kg", "description": "Tipo 1", "weight": 5.1,
        "dimension": {"package_length": 30, "package_width": 20, "package_height": 10}, "image": {"image_id_list": [img1]}});
    let r = env.post("/api/v2/product/update_item", body).await.ok().clone();
    assert_eq!(r["item_name"], "Arroz 5kg");
    let item = env.sandbox.item(SHOP, 1).unwrap();
    assert_eq!(
        (item.item_name.as_str(), item.description.as_str(), item.weight),
        ("Arroz 5kg", "Tipo 1", Some(5.1))
    );
    assert_eq!(item.images, [img1]);
    let a = env
        .post(
            "/api/v2/product/update_item",
            json!({"item_id": 1, "item_name": ""}),
        )
        .await;
    assert_eq!(a.error(), "error_param");
    let a = env
        .post(
            "/api/v2/product/update_item",
            json!({"item_id": 404, "item_name": "x"}),
        )
        .await;
    assert_eq!(a.error(), "error_item_not_found");
}

#[tokio::test]
async fn outlet_batches_run_as_tasks() {
    let mut config = config();
    config.batch_task_delay = Duration::from_millis(150);
    let env = env_with(config).await;
    let (mart, outlet) = (900_100, 900_101);
    env.sandbox
        .seed_shop(SeedShop {
            shop_id: mart,
            kind: ShopKind::Mart,
        })
        .unwrap();
    env.sandbox
        .seed_shop(SeedShop {
            shop_id: outlet,
            kind: ShopKind::Outlet { mart_shop_id: mart },
        })
        .unwrap();
    let mut item = SeedItem::single(outlet, 301, "SKU1", 10.0, 5);
    item.mart = Some(MartLink {
        mart_shop_id: mart,
        mart_item_id: 1,
    });
    env.sandbox.seed_item(item).unwrap();
    let (mart_token, _) = env.sandbox.issue_tokens(mart);
    let (outlet_token, _) = env.sandbox.issue_tokens(outlet);

    for (shop, token) in [(outlet, &outlet_token), (mart, &mart_token)] {
        let a = env
            .post_as(
                "/api/v2/product/get_mart_item_by_outlet_item_id",
                shop,
                token,
                json!({"outlet_item_id": 301}),
            )
            .await;
        assert_eq!(
            a.ok()["item_mapping_list"],
            json!([{"mart_item_id": 1, "outlet_item_id": 301,
                "model_mapping": [{"mart_model_id": 0, "outlet_model_id": 0}]}])
        );
    }

    let body = json!({"item_list": [
        {"outlet_shop_id": outlet, "item_id": 301, "stock_list": [{"model_id": 0, "seller_stock": [{"stock": 42}]}]},
        {"outlet_shop_id": outlet, "item_id": 999, "stock_list": [{"model_id": 0, "seller_stock": [{"stock": 1}]}]}
    ]});
    let a = env
        .post_as(
            "/api/v2/product/batch_update_outlet_stock",
            mart,
            &mart_token,
            body,
        )
        .await;
    let task_id = a.ok()["task_id"].as_u64().unwrap().to_string();
    let poll = |task_type: &'static str| {
        let (env, token, task_id) = (&env, &mart_token, task_id.clone());
        async move {
            env.get_as(
                "/api/v2/product/get_batch_task_result",
                mart,
                token,
                &[("task_type", task_type), ("task_id", &task_id)],
            )
            .await
        }
    };
    assert_eq!(
        poll("2").await.ok().clone(),
        json!({"publish_status": 1, "success_list": [], "failed_list": []})
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = poll("2").await.ok().clone();
    assert_eq!(r["publish_status"], 2);
    assert_eq!(
        r["success_list"],
        json!([{"shop_id": outlet, "item_id": 301, "model_id": 0}])
    );
    assert_eq!(r["failed_list"][0]["item_id"], 999);
    assert_eq!(r["failed_list"][0]["shop_id"], outlet);
    assert!(r["failed_list"][0]["failed_reason"].is_string());
    assert_eq!(env.sandbox.stock(outlet, 301, 0), Some(42));
    assert_eq!(
        poll("1").await.error(),
        "product.error_busi",
        "a stock task is not a price task"
    );

    let body = json!({"item_list": [{"outlet_shop_id": outlet, "item_id": 301, "price_list": [{"model_id": 0, "original_price": 9.5}]}]});
    env.post_as(
        "/api/v2/product/batch_update_outlet_price",
        outlet,
        &outlet_token,
        body,
    )
    .await
    .ok();
    assert_eq!(env.sandbox.price(outlet, 301, 0), Some(9.5));
    // A top-level outlet_shop_id is not Shopee's shape: every item names its outlet.
    let top = json!({"outlet_shop_id": outlet, "item_list": [{"outlet_shop_id": outlet, "item_id": 301, "price_list": [{"model_id": 0, "original_price": 9.5}]}]});
    assert_eq!(
        env.post_as(
            "/api/v2/product/batch_update_outlet_price",
            outlet,
            &outlet_token,
            top
        )
        .await
        .error(),
        "error_param"
    );

    // Another mart may not touch this outlet; more than 100 items is a parameter error.
    let (other, _) = env.sandbox.issue_tokens(900_200);
    let body = json!({"item_list": [{"outlet_shop_id": outlet, "item_id": 301, "price_list": [{"model_id": 0, "original_price": 1.0}]}]});
    assert_eq!(
        env.post_as("/api/v2/product/batch_update_outlet_price", 900_200, &other, body)
            .await
            .error(),
        "error_permission"
    );
    let many: Vec<_> = (0..101)
        .map(|i| json!({"outlet_shop_id": outlet, "item_id": i, "price_list": [{"model_id": 0, "original_price": 1.0}]}))
        .collect();
    let a = env
        .post_as(
            "/api/v2/product/batch_update_outlet_price",
            outlet,
            &outlet_token,
            json!({"item_list": many}),
        )
        .await;
    assert_eq!(a.error(), "error_param");
}

#[tokio::test]
async fn uploaded_images_are_the_only_ids_update_item_takes() {
    let env = env().await;
    catalog(&env);
    // Public and shop-signed uploads both answer a new id with its URL.
    let a = env.upload("image", "image/png", PNG, false).await;
    let info = a.ok()["image_info"].clone();
    let png = info["image_id"].as_str().unwrap().to_owned();
    assert_eq!(info["image_url_list"][0]["image_url_region"], "BR");
    assert!(
        info["image_url_list"][0]["image_url"]
            .as_str()
            .unwrap()
            .contains(&png)
    );
    let a = env.upload("image", "image/jpeg", JPEG, true).await;
    let jpeg = a.ok()["image_info"]["image_id"].as_str().unwrap().to_owned();
    assert_ne!(png, jpeg);
    let uploaded = env.sandbox.uploaded_images();
    assert_eq!(
        uploaded
            .iter()
            .map(|i| (i.image_id.as_str(), i.format.as_str(), i.uploaded_by_shop))
            .collect::<Vec<_>>(),
        [(png.as_str(), "png", None), (jpeg.as_str(), "jpeg", Some(SHOP))]
    );
    // The journal describes the part, never its bytes.
    let entry = env
        .sandbox
        .journal()
        .into_iter()
        .rfind(|e| e.api.ends_with("upload_image"))
        .unwrap();
    assert_eq!(entry.request["image"]["size"], JPEG.len());
    assert_eq!(entry.request["image"]["format"], "jpeg");

    // Refusals: not an image (whatever the declared type), empty, over 10 MB, wrong field, not multipart, bad sign.
    for (field, data, what) in [
        ("image", b"<html>not found</html>".to_vec(), "must be a JPG"),
        ("image", Vec::new(), "empty"),
        ("image", [PNG, &vec![0u8; 10 * 1024 * 1024]].concat(), "10 MB"),
        ("file", PNG.to_vec(), "form.image: required parameter missing"),
    ] {
        let a = env.upload(field, "image/png", &data, false).await;
        assert_eq!((a.status, a.error()), (400, "error_param"), "{what}: {}", a.body);
        assert!(a.message().contains(what), "{what}: {}", a.message());
    }
    let a = env
        .public_post(
            "/api/v2/media_space/upload_image",
            json!({"image": {"size": 3, "format": "png"}}),
        )
        .await;
    assert_eq!(
        a.error(),
        "error_param",
        "a JSON body is not an upload: {}",
        a.body
    );
    assert_eq!(env.sandbox.uploaded_images().len(), 2, "nothing refused was kept");

    // update_item keeps the list in order; an id that was never uploaded is error_param and changes nothing.
    let set = |ids: Vec<&str>| json!({"item_id": 1, "image": {"image_id_list": ids}});
    env.post("/api/v2/product/update_item", set(vec![&jpeg, &png]))
        .await
        .ok();
    assert_eq!(
        env.sandbox.item(SHOP, 1).unwrap().images,
        [jpeg.clone(), png.clone()]
    );
    let a = env
        .post(
            "/api/v2/product/update_item",
            set(vec![&png, "br-never-uploaded"]),
        )
        .await;
    assert_eq!((a.status, a.error()), (400, "error_param"));
    assert!(a.message().contains("br-never-uploaded"), "{}", a.message());
    let a = env.post("/api/v2/product/update_item", set(vec![])).await;
    assert_eq!(a.error(), "error_param");
    let ten: Vec<&str> = std::iter::repeat_n(png.as_str(), 10).collect();
    assert_eq!(
        env.post("/api/v2/product/update_item", set(ten)).await.error(),
        "error_param"
    );
    assert_eq!(env.sandbox.item(SHOP, 1).unwrap().images, [jpeg, png]);
}
