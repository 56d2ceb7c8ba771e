//! Integration tests for delivery-status-consumer: real PostgreSQL, the Shopee sandbox over HTTP, and Kafka as a
//! real broker process (tansu) for end-to-end and fault tests, librdkafka's mock cluster for unit-level ones.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod flows;
mod mock;
mod quirks;
mod reliability;
mod support;
mod workload;

mod contract {
    use test_support::contract::{Contract, check};

    #[tokio::test(flavor = "multi_thread")]
    async fn binary_honours_the_operational_contract() {
        let kafka = rdkafka::mocking::MockCluster::new(1).expect("mock cluster");
        kafka.create_topic("deliveries.out", 3, 1).expect("topic");
        let required = vec![
            ("SHOPEE_PARTNER_ID", "1000001".into()),
            ("SHOPEE_PARTNER_KEY", "test-partner-key".into()),
            (
                "TOKEN_ENCRYPTION_KEY",
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into(),
            ),
        ];
        let extra = vec![("KAFKA_BROKERS", kafka.bootstrap_servers())];
        check(Contract {
            exe: env!("CARGO_BIN_EXE_delivery-status-consumer"),
            required,
            extra,
        })
        .await;
    }
}
