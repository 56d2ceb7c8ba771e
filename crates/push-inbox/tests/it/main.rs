//! The inbox against real PostgreSQL.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use push_inbox::{Inbox, Push, Source, Stored};
use test_support::TestDb;

fn order_push(sn: &str, status: &str) -> Push {
    let raw = format!(
        r#"{{"shop_id": 900001, "code": 3, "timestamp": 1, "data": {{"ordersn": "{sn}", "status": "{status}", "update_time": 10}}}}"#
    );
    Push::parse(raw.as_bytes()).unwrap()
}

/// R4: the same push three times at once, then again later: one row, seen four times.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_repeats_store_one_row() {
    let db = TestDb::new().await;
    let inbox = Inbox::new(db.pool.clone());
    let push = order_push("R4ORDER", "READY_TO_SHIP");
    let results = futures_join3(&inbox, &push).await;
    assert_eq!(
        results.iter().filter(|r| **r == Stored::New).count(),
        1,
        "{results:?}"
    );
    assert_eq!(
        inbox.insert(&push, Source::Push, None).await.unwrap(),
        Stored::Duplicate
    );
    let (rows, seen): (i64, i64) = sqlx::query_as("SELECT count(*), sum(seen_count)::int8 FROM push_inbox")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!((rows, seen), (1, 4));
}

async fn futures_join3(inbox: &Inbox, push: &Push) -> Vec<Stored> {
    let (a, b, c) = tokio::join!(
        inbox.insert(push, Source::Push, None),
        inbox.insert(push, Source::Push, None),
        inbox.insert(push, Source::Push, None)
    );
    vec![a.unwrap(), b.unwrap(), c.unwrap()]
}

#[tokio::test(flavor = "multi_thread")]
async fn claims_are_exclusive_until_the_lease_ends() {
    let db = TestDb::new().await;
    let inbox = Inbox::new(db.pool.clone());
    for i in 0..10 {
        inbox
            .insert(
                &order_push(&format!("ORDER{i}"), "READY_TO_SHIP"),
                Source::Push,
                None,
            )
            .await
            .unwrap();
    }
    let (a, b) = tokio::join!(
        inbox.claim(6, Duration::from_secs(60)),
        inbox.claim(6, Duration::from_secs(60))
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.len() + b.len(), 10);
    assert!(
        a.iter().all(|x| b.iter().all(|y| x.id != y.id)),
        "a row was claimed twice"
    );
    assert!(inbox.claim(10, Duration::from_secs(60)).await.unwrap().is_empty());

    // Completed rows are never claimed again; rows put back are, after their delay.
    let ids: Vec<i64> = a.iter().map(|c| c.id).collect();
    inbox.complete(&ids).await.unwrap();
    let back: Vec<i64> = b.iter().map(|c| c.id).collect();
    inbox
        .retry_later(&back, Duration::ZERO, "shopee busy")
        .await
        .unwrap();
    let again = inbox.claim(10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(again.len(), back.len());
    assert!(again.iter().all(|c| c.attempts == 2));
    assert_eq!(inbox.lag().await.unwrap().0, back.len() as i64);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_lease_is_claimed_again() {
    let db = TestDb::new().await;
    let inbox = Inbox::new(db.pool.clone());
    inbox
        .insert(&order_push("LEASED1", "READY_TO_SHIP"), Source::Push, None)
        .await
        .unwrap();
    assert_eq!(inbox.claim(5, Duration::from_millis(200)).await.unwrap().len(), 1);
    assert!(inbox.claim(5, Duration::from_secs(1)).await.unwrap().is_empty());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(inbox.claim(5, Duration::from_secs(1)).await.unwrap().len(), 1);
}

/// The gateway's group commit: one statement for many pushes, repeats inside the batch and against the table
/// counted, outcomes in input order.
#[tokio::test(flavor = "multi_thread")]
async fn a_batch_stores_each_push_once_and_counts_repeats() {
    let db = TestDb::new().await;
    let inbox = Inbox::new(db.pool.clone());
    let old = order_push("BATCHOLD", "READY_TO_SHIP");
    inbox.insert(&old, Source::Push, None).await.unwrap();
    let a = order_push("BATCHA", "READY_TO_SHIP");
    let b = order_push("BATCHB", "UNPAID");
    let batch = vec![
        (&a, Source::Push, Some("00-aaaa-bbbb-01")),
        (&old, Source::Push, None),
        (&b, Source::Push, None),
        (&a, Source::Push, None),
    ];
    let outcomes = inbox.insert_batch(&batch).await.unwrap();
    assert_eq!(
        outcomes,
        vec![Stored::New, Stored::Duplicate, Stored::New, Stored::Duplicate]
    );
    let rows: Vec<(String, i32, Option<String>)> =
        sqlx::query_as("SELECT order_sn, seen_count, traceparent FROM push_inbox ORDER BY order_sn")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(
        rows,
        vec![
            ("BATCHA".to_owned(), 2, Some("00-aaaa-bbbb-01".to_owned())),
            ("BATCHB".to_owned(), 1, None),
            ("BATCHOLD".to_owned(), 2, None),
        ]
    );
}
