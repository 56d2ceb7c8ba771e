//! Instant Mart outlet shops: price and stock go in batch outlet updates (`batch_update_outlet_price/stock`, up to
//! 100 items, polled with `get_batch_task_result`) when enough items are due together, per item otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use domain::mapping::{MappingSource, ProductMapping};
use domain::{ItemId, ModelId, ShopId, Sku};
use shopee_sandbox::{Fault, FaultKind, MartLink, SeedItem, SeedModel, SeedShop, ShopKind};

use crate::support::{Rig, fast, not_applied, wait_for};

/// The rig's shop made an outlet of a new mart shop (at the sandbox and in our `shops` table), with `items`
/// outlet items 2000+i linked to mart items 1000+i. Item 2000 has three models (SKUs 0..3), the others one model
/// each (SKU i+2). Returns (sku index, outlet item, model) for every SKU.
async fn outlet_rig(items: u64) -> (Rig, Vec<(usize, u64, u64)>) {
    let rig = Rig::new(200).await;
    let mart = rig.shop + 2_000_000_000;
    rig.sandbox
        .seed_shop(SeedShop {
            shop_id: mart,
            kind: ShopKind::Mart,
        })
        .unwrap();
    rig.sandbox
        .seed_shop(SeedShop {
            shop_id: rig.shop,
            kind: ShopKind::Outlet { mart_shop_id: mart },
        })
        .unwrap();
    sqlx::query("INSERT INTO shops (shop_id, name) VALUES ($1, 'mart') ON CONFLICT DO NOTHING")
        .bind(mart as i64)
        .execute(&rig.db.pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO shops (shop_id, mart_shop_id) VALUES ($1, $2)
         ON CONFLICT (shop_id) DO UPDATE SET mart_shop_id = EXCLUDED.mart_shop_id",
    )
    .bind(rig.shop as i64)
    .bind(mart as i64)
    .execute(&rig.db.pool)
    .await
    .unwrap();
    let mut skus = Vec::new();
    let mut seeds = Vec::new();
    let mut maps = Vec::new();
    for i in 0..items {
        let (outlet_item, mart_item) = (2000 + i, 1000 + i);
        let models: Vec<u64> = if i == 0 { vec![1, 2, 3] } else { vec![0] };
        let mut seed_models = Vec::new();
        for model in models {
            let n = if i == 0 {
                model as usize - 1
            } else {
                i as usize + 2
            };
            seed_models.push(SeedModel::new(model, &rig.sku(n), 1.0, 0));
            skus.push((n, outlet_item, model));
            maps.push(ProductMapping {
                sku: Sku::parse(&rig.sku(n)).unwrap(),
                shop_id: ShopId::new(rig.shop).unwrap(),
                item_id: ItemId::new(mart_item).unwrap(),
                model_id: ModelId::new(model).unwrap(),
                outlet_item_id: Some(ItemId::new(outlet_item).unwrap()),
            });
        }
        let mut seed = SeedItem::with_models(rig.shop, outlet_item, &format!("Outlet item {i}"), seed_models);
        seed.mart = Some(MartLink {
            mart_shop_id: mart,
            mart_item_id: mart_item,
        });
        seeds.push(seed);
    }
    rig.sandbox.seed_items(seeds).unwrap();
    let r = rig.mappings.upsert(&maps, MappingSource::Manual).await.unwrap();
    assert!(r.conflicts.is_empty());
    (rig, skus)
}

fn calls(rig: &Rig, api: &str) -> usize {
    rig.sandbox
        .journal()
        .iter()
        .filter(|e| e.api.ends_with(api) && e.error.is_empty())
        .count()
}

/// Price (centavos) and stock of SKU n at version v.
fn values(n: usize, v: u64) -> (i64, i64) {
    (10_000 + 100 * n as i64 + v as i64, 10 * n as i64 + v as i64)
}

async fn publish_versions(rig: &Rig, skus: &[(usize, u64, u64)], versions: u64) {
    let mut events = Vec::new();
    for v in 1..=versions {
        for &(n, _, _) in skus {
            let (price, stock) = values(n, v);
            events.push((true, rig.price_event(&rig.sku(n), price, v)));
            events.push((false, rig.stock_event(&rig.sku(n), stock, v)));
        }
    }
    events.reverse(); // newest first: the older versions that follow must not win
    rig.publish(events).await;
}

async fn wait_all_at(rig: &Rig, skus: &[(usize, u64, u64)], version: u64) -> Duration {
    wait_for(
        Duration::from_secs(40),
        "every outlet SKU at its newest price and stock",
        || async {
            skus.iter().all(|&(n, item, model)| {
                rig.sandbox.model(rig.shop, item, model).is_some_and(|m| {
                    ((m.original_price * 100.0).round() as i64, m.total_stock) == values(n, version)
                })
            })
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_outlet_shops_due_items_go_in_one_batch_update_and_a_few_go_per_item() {
    let (rig, skus) = outlet_rig(40).await;
    // Every batch task's first reads fail transiently: the worker keeps polling.
    let mut busy = Fault::new(FaultKind::Error {
        status: 200,
        error: "error_system_busy".into(),
        message: "busy".into(),
    });
    busy.api = Some("/api/v2/product/get_batch_task_result".into());
    busy.calls = Some(4);
    rig.sandbox.inject_fault(busy);
    publish_versions(&rig, &skus, 3).await;
    let settings = catalog_sync_worker::Settings {
        flush_concurrency: 1,
        flush_window: Duration::from_millis(1500),
        outlet_task_poll: Duration::from_millis(100),
        ..fast()
    };
    let (stop, handle) = rig.spawn(settings);
    let took = wait_all_at(&rig, &skus, 3).await;
    let (price_batches, stock_batches) = (
        calls(&rig, "batch_update_outlet_price"),
        calls(&rig, "batch_update_outlet_stock"),
    );
    let per_item = calls(&rig, "/product/update_price") + calls(&rig, "/product/update_stock");
    assert_eq!(per_item, 0, "enough items were due together for batches");
    assert!((1..=3).contains(&price_batches), "{price_batches} price batches");
    assert!((1..=3).contains(&stock_batches), "{stock_batches} stock batches");
    // Each batch carries many items, each item all its models, with the outlet item ids.
    let batch = rig
        .sandbox
        .journal()
        .into_iter()
        .find(|e| e.api.ends_with("batch_update_outlet_stock") && e.error.is_empty())
        .unwrap();
    let list = batch.request["item_list"].as_array().unwrap();
    assert!(list.len() > 1 && list.len() <= 100, "{} items", list.len());
    for entry in list {
        let item = entry["item_id"].as_u64().unwrap();
        assert!((2000..2040).contains(&item), "outlet item ids are sent: {item}");
        if item == 2000 {
            assert_eq!(entry["stock_list"].as_array().unwrap().len(), 3);
        }
    }
    let pool = rig.db.pool.clone();
    wait_for(Duration::from_secs(10), "state settled", || async {
        not_applied(&pool).await == 0
    })
    .await;
    assert!(rig.dead_letters().await.is_empty());
    // The states were settled from the tasks' results, read after the 4 busy answers.
    let polls = rig
        .sandbox
        .journal()
        .iter()
        .filter(|e| e.api.ends_with("get_batch_task_result"))
        .count();
    println!(
        "outlet batch: 40 items (42 SKUs) x 3 versions -> {price_batches} price + {stock_batches} stock batch calls, \
         {polls} task polls (4 answered busy), {per_item} per-item calls; at Shopee in {took:?}"
    );
    assert!(polls >= price_batches + stock_batches + 4, "{polls} polls");

    // Two items changing alone: a batch would not pay off, so they go per item.
    rig.sandbox.clear_journal();
    publish_versions(&rig, &skus[5..7], 4).await;
    wait_all_at(&rig, &skus[5..7], 4).await;
    assert_eq!(
        calls(&rig, "batch_update_outlet_stock") + calls(&rig, "batch_update_outlet_price"),
        0
    );
    // One call per item and kind (more only if the versions straddled a flush window).
    assert!((2..=4).contains(&calls(&rig, "/product/update_stock")));
    assert!((2..=4).contains(&calls(&rig, "/product/update_price")));
    stop.cancel();
    handle.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_item_in_a_batch_is_parked_and_the_others_applied() {
    let (rig, skus) = outlet_rig(10).await;
    let deleted = 2004;
    rig.delete_item(deleted);
    publish_versions(&rig, &skus, 1).await;
    let settings = catalog_sync_worker::Settings {
        flush_concurrency: 1,
        flush_window: Duration::from_millis(1000),
        outlet_task_poll: Duration::from_millis(100),
        ..fast()
    };
    let (stop, handle) = rig.spawn(settings);
    let others: Vec<_> = skus.iter().copied().filter(|s| s.1 != deleted).collect();
    wait_all_at(&rig, &others, 1).await;
    let pool = rig.db.pool.clone();
    wait_for(Duration::from_secs(20), "every row applied or parked", || async {
        not_applied(&pool).await == 2
    })
    .await;
    let dead = rig.dead_letters().await;
    let sku = skus.iter().find(|s| s.1 == deleted).unwrap().0;
    assert_eq!(dead.len(), 2, "{dead:#?}");
    for d in &dead {
        assert_eq!(
            d.reference.as_deref(),
            Some(format!("{}@{}", rig.sku(sku), rig.hub).as_str())
        );
        assert!(d.reason.contains("deleted"), "reason says why: {}", d.reason);
        assert_eq!(d.attempts, 1, "parked after one attempt: {d:?}");
    }
    assert_eq!(
        calls(&rig, "/product/update_stock") + calls(&rig, "/product/update_price"),
        0
    );
    stop.cancel();
    handle.await.unwrap().unwrap();
}
