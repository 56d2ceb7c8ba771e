//! Redrive of the worker's dead letters (requested the way campaign-api does, `dead_letters::request_redrive`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use dead_letters::{DeadLetter, DeadLetterStatus};
use domain::mapping::{MappingSource, ProductMapping};
use domain::{ItemId, ModelId, ShopId, Sku};
use shopee_sandbox::{ItemFlags, SeedItem};

use crate::support::{Rig, fast, wait_for};

async fn letter(rig: &Rig, id: i64) -> DeadLetter {
    dead_letters::get(&rig.db.pool, id).await.unwrap().unwrap()
}

async fn letter_for(rig: &Rig, sku: &str, kind: &str) -> DeadLetter {
    let reference = format!("{sku}@{}", rig.hub);
    rig.dead_letters()
        .await
        .into_iter()
        .find(|d| d.reference.as_deref() == Some(&reference) && d.kind.as_str() == kind)
        .unwrap_or_else(|| panic!("a {kind} dead letter for {reference}"))
}

fn calls_to(rig: &Rig, item: u64, api: &str) -> Vec<shopee_sandbox::JournalEntry> {
    rig.update_calls()
        .into_iter()
        .filter(|e| e.api.ends_with(api) && e.request["item_id"].as_u64() == Some(item))
        .collect()
}

/// Four parked updates and a poison message, each redriven after something changed:
/// - the price lock was lifted: the parked price applies;
/// - the promotion reserve is still there: parked again, same letter, with Shopee's code in the reason;
/// - a newer price applied meanwhile: the redriven older one is not sent (newest wins);
/// - the item was deleted and the SKU mapped to a new item: the update goes to the new item only;
/// - the poison message is still invalid: parked again with the validation reason.
#[tokio::test(flavor = "multi_thread")]
async fn redriven_dead_letters_go_back_through_newest_wins() {
    let rig = Rig::new(200).await;
    let map = rig.seed_catalog(4, 1).await;
    let item = |n: usize| map[&rig.sku(n)].0;
    let (unlocked, reserved, overtaken, deleted) = (item(0), item(1), item(2), item(3));
    rig.sandbox
        .set_item_flags(
            rig.shop,
            unlocked,
            ItemFlags {
                price_locked: Some(true),
                ..Default::default()
            },
        )
        .unwrap();
    rig.sandbox
        .set_item_flags(
            rig.shop,
            overtaken,
            ItemFlags {
                price_locked: Some(true),
                ..Default::default()
            },
        )
        .unwrap();
    rig.sandbox
        .set_item_flags(
            rig.shop,
            reserved,
            ItemFlags {
                promotion_reserved: Some(1_000),
                ..Default::default()
            },
        )
        .unwrap();
    rig.delete_item(deleted);
    let (stop, handle) = rig.spawn(fast());
    rig.publish(vec![
        (true, rig.price_event(&rig.sku(0), 1001, 1)),
        (false, rig.stock_event(&rig.sku(1), 7, 1)),
        (true, rig.price_event(&rig.sku(2), 2001, 1)),
        (true, rig.price_event(&rig.sku(3), 3001, 1)),
        (
            false,
            br#"{"event_id":"p1","sku":"A","hub_id":"X","quantity":-1}"#.to_vec(),
        ),
    ])
    .await;
    wait_for(Duration::from_secs(30), "five dead letters", || async {
        rig.dead_letters().await.len() == 5
    })
    .await;
    let first = rig.dead_letters().await;
    for d in first.iter().filter(|d| d.reference.as_deref() != Some("A@X")) {
        assert!(
            d.reason.contains(" (") && d.reason.ends_with(')'),
            "the reason carries Shopee's failed_reason: {}",
            d.reason
        );
    }

    // What changed while they were parked.
    rig.sandbox
        .set_item_flags(
            rig.shop,
            unlocked,
            ItemFlags {
                price_locked: Some(false),
                ..Default::default()
            },
        )
        .unwrap();
    rig.sandbox
        .set_item_flags(
            rig.shop,
            overtaken,
            ItemFlags {
                price_locked: Some(false),
                ..Default::default()
            },
        )
        .unwrap();
    rig.publish(vec![(true, rig.price_event(&rig.sku(2), 2002, 2))])
        .await;
    wait_for(Duration::from_secs(20), "the newer price of SKU 2", || async {
        rig.shopee_value(overtaken, 0).0 == 2002
    })
    .await;
    let new_item = 900_u64;
    rig.sandbox
        .seed_item(SeedItem::single(rig.shop, new_item, &rig.sku(3), 1.0, 0))
        .unwrap();
    rig.mappings
        .upsert(
            &[ProductMapping {
                sku: Sku::parse(&rig.sku(3)).unwrap(),
                shop_id: ShopId::new(rig.shop).unwrap(),
                item_id: ItemId::new(new_item).unwrap(),
                model_id: ModelId::NONE,
                outlet_item_id: None,
            }],
            MappingSource::Manual,
        )
        .await
        .unwrap();
    let remapped_at = chrono::Utc::now().timestamp_millis();
    let calls_before = rig.update_calls().len();

    // The operator redrives every one of them.
    for d in &first {
        assert!(dead_letters::request_redrive(&rig.db.pool, d.id).await.unwrap());
    }
    let unlocked_letter = letter_for(&rig, &rig.sku(0), "price_update").await;
    let reserved_letter = letter_for(&rig, &rig.sku(1), "inventory_update").await;
    let overtaken_letter = letter_for(&rig, &rig.sku(2), "price_update").await;
    let deleted_letter = letter_for(&rig, &rig.sku(3), "price_update").await;
    let poison = first
        .iter()
        .find(|d| d.reference.as_deref() == Some("A@X"))
        .expect("the poison letter");

    wait_for(
        Duration::from_secs(30),
        "the redriven updates applied",
        || async { rig.shopee_value(unlocked, 0).0 == 1001 && rig.shopee_value(new_item, 0).0 == 3001 },
    )
    .await;
    wait_for(Duration::from_secs(30), "the refusals parked again", || async {
        letter(&rig, reserved_letter.id).await.status == DeadLetterStatus::Parked
            && letter(&rig, poison.id).await.status == DeadLetterStatus::Parked
    })
    .await;
    // Let any wrong extra call happen before counting.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    assert_eq!(
        letter(&rig, unlocked_letter.id).await.status,
        DeadLetterStatus::Redriven
    );
    let again = letter(&rig, reserved_letter.id).await;
    assert_eq!(again.attempts, 2, "{again:?}");
    assert_eq!(again.redrive_count, 1);
    assert!(
        again.reason.contains("stock reserved by promotions"),
        "the new reason, with Shopee's failed_reason: {}",
        again.reason
    );
    assert_eq!(
        calls_to(&rig, reserved, "update_stock").len(),
        2,
        "one attempt, one redriven attempt"
    );
    let poison_again = letter(&rig, poison.id).await;
    assert_eq!(poison_again.attempts, 2);
    assert!(
        poison_again.reason.contains("InventoryUpdateEvent"),
        "{}",
        poison_again.reason
    );

    // Newest wins: the redriven version 1 of SKU 2 is never sent after version 2.
    assert_eq!(rig.shopee_value(overtaken, 0).0, 2002);
    let late: Vec<_> = calls_to(&rig, overtaken, "update_price")
        .into_iter()
        .skip(2)
        .collect();
    assert!(late.is_empty(), "a stale price was sent again: {late:?}");
    assert_eq!(
        letter(&rig, overtaken_letter.id).await.status,
        DeadLetterStatus::Redriven
    );

    // The deleted item is not called again; the update went to the SKU's new item.
    let to_deleted: Vec<_> = calls_to(&rig, deleted, "update_price")
        .into_iter()
        .filter(|e| e.at_ms > remapped_at)
        .collect();
    assert!(to_deleted.is_empty(), "{to_deleted:?}");
    assert_eq!(
        letter(&rig, deleted_letter.id).await.status,
        DeadLetterStatus::Redriven
    );

    // No new dead letter: the refusals went back to their own letters.
    assert_eq!(rig.dead_letters().await.len(), 5);
    println!(
        "redrive: 5 letters redriven -> 2 applied (1 at the SKU's new item), 1 superseded by a newer value, 2 parked again; {} update calls after the request",
        rig.update_calls().len() - calls_before
    );
    stop.cancel();
    handle.await.unwrap().unwrap();
}

/// A redrive a crash cut short (taken, nothing done) is done when the worker starts.
#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_redrive_is_resumed_at_start() {
    let rig = Rig::new(200).await;
    let map = rig.seed_catalog(1, 1).await;
    let item = map[&rig.sku(0)].0;
    rig.sandbox
        .set_item_flags(
            rig.shop,
            item,
            ItemFlags {
                price_locked: Some(true),
                ..Default::default()
            },
        )
        .unwrap();
    let (stop, handle) = rig.spawn(fast());
    rig.publish(vec![(true, rig.price_event(&rig.sku(0), 4242, 1))])
        .await;
    wait_for(Duration::from_secs(20), "the parked price", || async {
        rig.dead_letters().await.len() == 1
    })
    .await;
    stop.cancel();
    handle.await.unwrap().unwrap();
    rig.sandbox
        .set_item_flags(
            rig.shop,
            item,
            ItemFlags {
                price_locked: Some(false),
                ..Default::default()
            },
        )
        .unwrap();
    let id = rig.dead_letters().await[0].id;
    assert!(dead_letters::request_redrive(&rig.db.pool, id).await.unwrap());
    // A replica takes the request and dies before doing anything with it.
    let taken = dead_letters::take_redrive_requests(&rig.db.pool, "catalog-sync-worker", 10)
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    let (stop, handle) = rig.spawn(fast());
    wait_for(Duration::from_secs(20), "the redriven price applied", || async {
        rig.shopee_value(item, 0).0 == 4242
    })
    .await;
    assert_eq!(letter(&rig, id).await.status, DeadLetterStatus::Redriven);
    stop.cancel();
    handle.await.unwrap().unwrap();
}
