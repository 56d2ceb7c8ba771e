//! Integration tests for catalog-sync-worker, against the real binary, PostgreSQL, Redis, the Pub/Sub emulator and
//! the Shopee sandbox over HTTP.

/// The `cargo xtask bench catalog` benchmark, compiled here too so it is checked with the crate; run it with
/// `cargo test -p catalog-sync-worker --release --test it bench_catalog -- --ignored --nocapture`.
#[allow(dead_code, clippy::unwrap_used)]
#[path = "../../../../xtask/src/bench_catalog.rs"]
mod bench_catalog;

#[test]
#[ignore = "benchmark: 100,000 events, about a minute"]
fn bench_catalog_100k_inventory_events() {
    bench_catalog::run().expect("bench catalog");
}

mod content_images;
mod jobs;
mod outlet;
mod redrive;
mod support;
mod sync;

mod contract {
    use service_runtime::config::PubSubConfig;
    use test_support::contract::{Contract, check};

    #[tokio::test(flavor = "multi_thread")]
    async fn binary_honours_the_operational_contract() {
        let pubsub = PubSubConfig {
            project_id: "contract-catalog-sync".into(),
            emulator_host: Some(test_support::pubsub_emulator_host()),
        };
        let topics = service_runtime::pubsub::topic_admin(&pubsub)
            .await
            .expect("topic admin");
        let subs = service_runtime::pubsub::subscription_admin(&pubsub)
            .await
            .expect("subscription admin");
        for (topic, sub) in [
            ("price-updates", "seller-backend-price-update-subscription"),
            (
                "inventory-updates",
                "seller-backend-inventory-update-subscription",
            ),
        ] {
            service_runtime::pubsub::ensure_topic(&topics, &pubsub.topic_path(topic))
                .await
                .expect("topic");
            service_runtime::pubsub::ensure_subscription(
                &subs,
                &pubsub.subscription_path(sub),
                &pubsub.topic_path(topic),
                10,
            )
            .await
            .expect("subscription");
        }
        let required = vec![
            ("SHOPEE_PARTNER_ID", "1000001".into()),
            ("SHOPEE_PARTNER_KEY", "test-partner-key".into()),
            (
                "TOKEN_ENCRYPTION_KEY",
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into(),
            ),
            ("PUBSUB_PROJECT_ID", pubsub.project_id.clone()),
            ("PRICE_UPDATE_TOPIC", "price-updates".into()),
            ("INVENTORY_UPDATE_TOPIC", "inventory-updates".into()),
        ];
        let extra = vec![
            ("REDIS_URL", test_support::redis_url()),
            ("PUBSUB_EMULATOR_HOST", test_support::pubsub_emulator_host()),
        ];
        check(Contract {
            exe: env!("CARGO_BIN_EXE_catalog-sync-worker"),
            required,
            extra,
        })
        .await;
    }
}
