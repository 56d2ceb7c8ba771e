//! Mapping discovery and the audit command.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use domain::mapping::{MappingSource, ProductMapping};
use domain::{ItemId, ModelId, ShopId, Sku};
use shopee_sandbox::{SeedItem, SeedModel};

use crate::support::{PARTNER_ID, PARTNER_KEY, Rig};

#[tokio::test(flavor = "multi_thread")]
async fn discovery_records_matches_and_reports_counts() {
    let rig = Rig::new(200).await;
    let shop = rig.shop;
    let mut items = vec![
        // Weighed: Shopee's get_item_base_info answers `"weight": "10.02"`, a string.
        SeedItem {
            weight: Some(10.02),
            ..SeedItem::single(shop, 1, &rig.sku(1), 1.0, 1)
        },
        SeedItem::single(shop, 2, "", 1.0, 1),
        SeedItem::single(shop, 3, "not a sku!", 1.0, 1),
        SeedItem::single(shop, 4, &rig.sku(4), 1.0, 1),
        SeedItem::with_models(
            shop,
            5,
            "Camiseta",
            vec![
                SeedModel::new(51, &rig.sku(51), 1.0, 1),
                SeedModel::new(52, &rig.sku(52), 1.0, 1),
                SeedModel::new(53, "", 1.0, 1),
            ],
        ),
    ];
    // 150 more items so discovery pages (page size 100).
    for i in 0..150 {
        items.push(SeedItem::single(
            shop,
            1_000 + i,
            &rig.sku(1_000 + i as usize),
            1.0,
            1,
        ));
    }
    rig.sandbox.seed_items(items).unwrap();
    // SKU 4 is already mapped by hand to another item: reported as conflicting, never moved.
    rig.mappings
        .upsert(
            &[ProductMapping {
                sku: Sku::parse(&rig.sku(4)).unwrap(),
                shop_id: ShopId::new(shop).unwrap(),
                item_id: ItemId::new(444).unwrap(),
                model_id: ModelId::NONE,
                outlet_item_id: None,
            }],
            MappingSource::Manual,
        )
        .await
        .unwrap();
    let id = catalog_sync_worker::discovery::enqueue(&rig.db.pool, ShopId::new(shop).unwrap())
        .await
        .unwrap();
    assert!(
        catalog_sync_worker::discovery::run_next(&rig.db.pool, &rig.client, &rig.mappings)
            .await
            .unwrap()
    );
    let (status, scanned, matched, unmatched, conflicting): (String, i32, i32, i32, i32) = sqlx::query_as(
        "SELECT status, items_scanned, matched, unmatched, conflicting FROM mapping_discovery_jobs WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&rig.db.pool)
    .await
    .unwrap();
    assert_eq!(
        (status.as_str(), scanned, matched, unmatched, conflicting),
        ("done", 155, 153, 3, 1)
    );
    let m = rig
        .mappings
        .for_sku(&Sku::parse(&rig.sku(52)).unwrap(), ShopId::new(shop).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((m.item_id.get(), m.model_id.get()), (5, 52));
    let kept = rig
        .mappings
        .for_sku(&Sku::parse(&rig.sku(4)).unwrap(), ShopId::new(shop).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.item_id.get(), 444, "a manual mapping is never overwritten");
    println!(
        "discovery: 155 items scanned -> matched {matched}, unmatched {unmatched}, conflicting {conflicting}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_finds_a_difference_planted_at_shopee() {
    let rig = Rig::new(200).await;
    let map = rig.seed_catalog(3, 2).await;
    let (stop, handle) = rig.spawn(crate::support::fast());
    let mut events = Vec::new();
    for n in 0..6 {
        events.push((true, rig.price_event(&rig.sku(n), 1000 + n as i64, 1)));
        events.push((false, rig.stock_event(&rig.sku(n), 10 + n as i64, 1)));
    }
    rig.publish(events).await;
    let pool = rig.db.pool.clone();
    crate::support::wait_for(std::time::Duration::from_secs(30), "all applied", || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM catalog_sync_state WHERE state = 'applied'")
            .fetch_one(&pool)
            .await
            .unwrap()
            == 12
    })
    .await;
    stop.cancel();
    handle.await.unwrap().unwrap();
    let shop = ShopId::new(rig.shop).unwrap();
    let clean = catalog_sync_worker::audit::audit(&rig.db.pool, &rig.client, shop)
        .await
        .unwrap();
    assert_eq!((clean.checked, clean.differences.len()), (12, 0));
    // Someone changes a stock in Seller Center.
    let (item, model) = map[&rig.sku(3)];
    let mut models: Vec<SeedModel> = rig
        .sandbox
        .item(rig.shop, item)
        .unwrap()
        .models
        .iter()
        .map(|m| SeedModel::new(m.model_id, &m.model_sku, m.original_price, m.total_stock))
        .collect();
    for m in &mut models {
        if m.model_id == model {
            m.seller_stock[0].stock = 99;
        }
    }
    rig.sandbox
        .seed_item(SeedItem::with_models(rig.shop, item, "changed", models))
        .unwrap();
    let found = catalog_sync_worker::audit::audit(&rig.db.pool, &rig.client, shop)
        .await
        .unwrap();
    assert_eq!(found.differences.len(), 1, "{:?}", found.differences);
    let d = &found.differences[0];
    assert_eq!((d.kind.as_str(), d.applied, d.shopee), ("stock", 13, Some(99)));
    // The command: prints the difference and exits 1.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_catalog-sync-worker"))
        .args(["audit", "--shop", &rig.shop.to_string()])
        .env_clear()
        .env("DATABASE_URL", &rig.db.url)
        .env("REDIS_URL", test_support::redis_url())
        .env("SHOPEE_API_BASE_URL", rig.sandbox.base_url())
        .env("SHOPEE_PARTNER_ID", PARTNER_ID.to_string())
        .env("SHOPEE_PARTNER_KEY", PARTNER_KEY)
        .env(
            "TOKEN_ENCRYPTION_KEY",
            "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=",
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&rig.sku(3)) && stdout.contains("applied 13, Shopee has 99"),
        "{stdout}"
    );
    println!("audit: {stdout}");
}

/// A small Catalog Service: answers `products(skus)` and `productsUpdatedSince` (one page) from a fixture.
pub(crate) async fn catalog_server(
    products: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
) -> String {
    use axum::Json;
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/graphql",
        post(move |Json(req): Json<serde_json::Value>| {
            let products = products.clone();
            async move {
                let all = products.lock().unwrap().clone();
                let query = req["query"].as_str().unwrap_or_default();
                if query.contains("productsUpdatedSince") {
                    Json(serde_json::json!({"data": {"productsUpdatedSince": {
                        "nodes": all, "pageInfo": {"hasNextPage": false, "endCursor": null}}}}))
                } else {
                    let wanted: Vec<String> =
                        serde_json::from_value(req["variables"]["skus"].clone()).unwrap();
                    let nodes: Vec<_> = all
                        .into_iter()
                        .filter(|p| wanted.iter().any(|s| p["sku"] == *s))
                        .collect();
                    Json(serde_json::json!({"data": {"products": nodes}}))
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/graphql")
}

#[tokio::test(flavor = "multi_thread")]
async fn content_sync_sends_only_what_changed() {
    let rig = Rig::new(200).await;
    let map = rig.seed_catalog(3, 1).await;
    let product = |n: usize, name: &str| {
        serde_json::json!({"sku": rig.sku(n), "name": name, "description": "Arroz tipo 1", "brand": null, "ean": null,
            "active": true, "images": [], "weightGrams": 1000,
            "dimensions": {"lengthCm": 20.0, "widthCm": 10.5, "heightCm": 5.0}})
    };
    let fixture = std::sync::Arc::new(std::sync::Mutex::new(vec![
        product(0, "Arroz 1kg"),
        product(1, "Feijão 1kg"),
        product(2, "Café 500g"),
    ]));
    let url = catalog_server(fixture.clone()).await;
    let sync = catalog_sync_worker::content::ContentSync::new(rig.db.pool.clone(), rig.client.clone(), &url);
    sqlx::query("INSERT INTO content_sync_jobs (skus) VALUES (NULL)")
        .execute(&rig.db.pool)
        .await
        .unwrap();
    assert!(sync.run_next_job().await.unwrap());
    let (status, updated): (String, i32) = sqlx::query_as("SELECT status, updated FROM content_sync_jobs")
        .fetch_one(&rig.db.pool)
        .await
        .unwrap();
    assert_eq!((status.as_str(), updated), ("done", 3));
    let item0 = rig.sandbox.item(rig.shop, map[&rig.sku(0)].0).unwrap();
    assert_eq!((item0.item_name.as_str(), item0.weight), ("Arroz 1kg", Some(1.0)));
    let first: Vec<_> = rig
        .sandbox
        .journal()
        .into_iter()
        .filter(|e| e.api.ends_with("update_item"))
        .collect();
    assert_eq!(first.len(), 3);
    assert!(first[0].request.get("dimension").is_some());
    // One name changes: the scheduled run sends that name only, nothing else, to that item only.
    fixture.lock().unwrap()[1] = product(1, "Feijão Carioca 1kg");
    rig.sandbox.clear_journal();
    let r = sync.run_scheduled().await.unwrap();
    assert_eq!((r.updated, r.unchanged), (1, 2));
    let calls: Vec<_> = rig
        .sandbox
        .journal()
        .into_iter()
        .filter(|e| e.api.ends_with("update_item"))
        .collect();
    assert_eq!(calls.len(), 1);
    let body = calls[0].request.as_object().unwrap();
    let mut keys: Vec<&str> = body.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["item_id", "item_name"], "{body:?}");
    println!("content sync: 3 items sent in full, then 1 changed name -> 1 update_item with item_name only");
}

/// Items without models are read back with get_item_base_info, whose `weight` Shopee sends as a string ("0.35"):
/// the audit reads them (a number-typed weight failed to decode the whole answer).
#[tokio::test(flavor = "multi_thread")]
async fn audit_reads_weighed_items_without_models() {
    let rig = Rig::new(200).await;
    let map = rig.seed_catalog(2, 1).await;
    assert!(map.values().all(|(_, model)| *model == 0));
    let (stop, handle) = rig.spawn(crate::support::fast());
    let mut events = Vec::new();
    for n in 0..2 {
        events.push((true, rig.price_event(&rig.sku(n), 2000 + n as i64, 1)));
        events.push((false, rig.stock_event(&rig.sku(n), 20 + n as i64, 1)));
    }
    rig.publish(events).await;
    let pool = rig.db.pool.clone();
    crate::support::wait_for(std::time::Duration::from_secs(30), "all applied", || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM catalog_sync_state WHERE state = 'applied'")
            .fetch_one(&pool)
            .await
            .unwrap()
            == 4
    })
    .await;
    stop.cancel();
    handle.await.unwrap().unwrap();
    let shop = ShopId::new(rig.shop).unwrap();
    let report = catalog_sync_worker::audit::audit(&rig.db.pool, &rig.client, shop)
        .await
        .unwrap();
    assert_eq!((report.checked, report.differences.len()), (4, 0), "{report:?}");
    assert!(
        rig.sandbox
            .journal()
            .iter()
            .any(|e| e.api == "/api/v2/product/get_item_base_info" && e.error.is_empty()),
        "read through get_item_base_info"
    );
}
