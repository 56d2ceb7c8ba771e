//! Mappings against real PostgreSQL and Redis: the cache never answers with a value PostgreSQL no longer holds.
#![allow(clippy::unwrap_used)]

use domain::mapping::{MappingSource, ProductMapping};
use domain::{HubId, ItemId, ModelId, ShopId, Sku};
use product_mapping::{HubLocation, Hubs, Mappings};
use service_runtime::config::Secret;
use test_support::TestDb;

fn redis() -> deadpool_redis::Pool {
    service_runtime::redis::pool(&Secret::new(test_support::redis_url())).unwrap()
}

/// A shop id no other test uses, so Redis keys do not collide.
fn shop() -> ShopId {
    ShopId::new(1_000_000 + u64::from(rand_u32())).unwrap()
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    );
    (h.finish() % 1_000_000_000) as u32
}

fn mapping(sku: &str, shop: ShopId, item: u64, model: u64) -> ProductMapping {
    ProductMapping {
        sku: Sku::parse(sku).unwrap(),
        shop_id: shop,
        item_id: ItemId::new(item).unwrap(),
        model_id: ModelId::new(model).unwrap(),
        outlet_item_id: None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_follow_writes_through_the_cache() {
    let db = TestDb::new().await;
    let m = Mappings::new(db.pool.clone(), Some(redis()));
    let shop = shop();
    let (item, model) = (ItemId::new(100).unwrap(), ModelId::new(7).unwrap());

    // Unmapped (and that answer is cached) ...
    assert_eq!(m.sku_for_model(shop, item, model).await.unwrap(), None);
    assert_eq!(m.sku_for_model(shop, item, model).await.unwrap(), None);
    // ... until a mapping is added: the negative entry must not survive it.
    let report = m
        .upsert(&[mapping("SKU-A", shop, 100, 7)], MappingSource::Manual)
        .await
        .unwrap();
    assert_eq!(report.inserted, 1);
    assert_eq!(
        m.sku_for_model(shop, item, model)
            .await
            .unwrap()
            .unwrap()
            .as_str(),
        "SKU-A"
    );
    let cached = m
        .for_sku(&Sku::parse("SKU-A").unwrap(), shop)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cached.item_id.get(), 100);

    // Remapping the SKU to another model: neither old answer is served again.
    m.upsert(&[mapping("SKU-A", shop, 100, 8)], MappingSource::Manual)
        .await
        .unwrap();
    assert_eq!(m.sku_for_model(shop, item, model).await.unwrap(), None);
    assert_eq!(
        m.for_sku(&Sku::parse("SKU-A").unwrap(), shop)
            .await
            .unwrap()
            .unwrap()
            .model_id
            .get(),
        8
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_model_belongs_to_one_sku_and_conflicts_are_reported() {
    let db = TestDb::new().await;
    let m = Mappings::new(db.pool.clone(), Some(redis()));
    let shop = shop();
    m.upsert(&[mapping("SKU-1", shop, 200, 0)], MappingSource::Manual)
        .await
        .unwrap();
    let report = m
        .upsert(
            &[mapping("SKU-2", shop, 200, 0), mapping("SKU-1", shop, 200, 0)],
            MappingSource::Discovered,
        )
        .await
        .unwrap();
    assert_eq!(report.conflicts.len(), 1);
    assert_eq!(report.conflicts[0].1.as_str(), "SKU-1");
    assert_eq!(report.unchanged, 1);
    assert_eq!(m.list(None, Some(shop), 10, 0).await.unwrap().len(), 1);
}

/// R12: Redis flushed or unreachable: answers still come from PostgreSQL and are right.
#[tokio::test(flavor = "multi_thread")]
async fn flushed_or_missing_redis_never_gives_a_wrong_id() {
    let db = TestDb::new().await;
    let pool = redis();
    let m = Mappings::new(db.pool.clone(), Some(pool.clone()));
    let shop = shop();
    m.upsert(&[mapping("SKU-F", shop, 300, 1)], MappingSource::Manual)
        .await
        .unwrap();
    assert_eq!(
        m.for_sku(&Sku::parse("SKU-F").unwrap(), shop)
            .await
            .unwrap()
            .unwrap()
            .model_id
            .get(),
        1
    );

    // Drop the shop's epoch (what a flush does), then change the mapping behind a writer that has no Redis.
    let mut conn = pool.get().await.unwrap();
    let _: () = deadpool_redis::redis::cmd("DEL")
        .arg(format!("sb:pm:epoch:{shop}"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let without_redis = Mappings::new(db.pool.clone(), None);
    without_redis
        .upsert(&[mapping("SKU-F", shop, 300, 2)], MappingSource::Manual)
        .await
        .unwrap();
    assert_eq!(
        m.for_sku(&Sku::parse("SKU-F").unwrap(), shop)
            .await
            .unwrap()
            .unwrap()
            .model_id
            .get(),
        2
    );

    // Redis unreachable: still correct.
    let dead = service_runtime::redis::pool(&Secret::new("redis://127.0.0.1:1".to_owned())).unwrap();
    let m_dead = Mappings::new(db.pool.clone(), Some(dead));
    assert_eq!(
        m_dead
            .for_sku(&Sku::parse("SKU-F").unwrap(), shop)
            .await
            .unwrap()
            .unwrap()
            .model_id
            .get(),
        2
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hubs_link_to_their_shop() {
    let db = TestDb::new().await;
    let hubs = Hubs::new(db.pool.clone());
    let shop = shop();
    let hub = HubLocation {
        hub_id: HubId::parse("SAO-01").unwrap(),
        shop_id: shop,
        location_id: None,
        active: true,
    };
    hubs.upsert(std::slice::from_ref(&hub)).await.unwrap();
    assert_eq!(hubs.location(&hub.hub_id).await.unwrap().unwrap(), hub);
    assert_eq!(hubs.for_shop(shop).await.unwrap().len(), 1);
}
