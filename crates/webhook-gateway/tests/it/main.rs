//! Integration tests for webhook-gateway, against the real binary and real PostgreSQL.

mod auth;
mod push;
mod quotation;

mod contract {
    use test_support::contract::{Contract, check};

    #[tokio::test(flavor = "multi_thread")]
    async fn binary_honours_the_operational_contract() {
        let required = vec![
            ("SHOPEE_PARTNER_ID", "1000001".into()),
            ("SHOPEE_PARTNER_KEY", "test-partner-key".into()),
            (
                "TOKEN_ENCRYPTION_KEY",
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into(),
            ),
            (
                "SHOPEE_PUSH_CALLBACK_URL",
                "http://127.0.0.1:1/webhooks/shopee".into(),
            ),
        ];
        check(Contract {
            exe: env!("CARGO_BIN_EXE_webhook-gateway"),
            required,
            extra: vec![],
        })
        .await;
    }
}
