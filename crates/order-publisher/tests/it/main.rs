//! Integration tests for order-publisher, against the real binary, PostgreSQL, Redis and the Pub/Sub emulator.

#[path = "../common/stack.rs"]
mod stack;

mod crash;
mod e2e;
mod polygons;
mod tracing;

mod contract {
    use service_runtime::config::PubSubConfig;
    use test_support::contract::{Contract, check};

    #[tokio::test(flavor = "multi_thread")]
    async fn binary_honours_the_operational_contract() {
        let pubsub = PubSubConfig {
            project_id: "contract-order-publisher".into(),
            emulator_host: Some(test_support::pubsub_emulator_host()),
        };
        let admin = service_runtime::pubsub::topic_admin(&pubsub)
            .await
            .expect("topic admin");
        service_runtime::pubsub::ensure_topic(&admin, &pubsub.topic_path("ordr-input"))
            .await
            .expect("topic");
        let required = vec![
            ("SHOPEE_PARTNER_ID", "1000001".into()),
            ("SHOPEE_PARTNER_KEY", "test-partner-key".into()),
            (
                "TOKEN_ENCRYPTION_KEY",
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into(),
            ),
            ("PUBSUB_PROJECT_ID", pubsub.project_id.clone()),
        ];
        let extra = vec![
            ("REDIS_URL", test_support::redis_url()),
            ("PUBSUB_EMULATOR_HOST", test_support::pubsub_emulator_host()),
        ];
        check(Contract {
            exe: env!("CARGO_BIN_EXE_order-publisher"),
            required,
            extra,
        })
        .await;
    }
}
