//! Integration tests for campaign-api: the real app and binary, real PostgreSQL and Redis, the Shopee sandbox over
//! HTTP.

mod auth;
mod campaigns;
mod common;
mod openapi;
mod routes;
mod shops;

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
            ("CAMPAIGN_API_TOKENS", "test-token-0123456789abcdef".into()),
        ];
        let extra = vec![("REDIS_URL", test_support::redis_url())];
        check(Contract {
            exe: env!("CARGO_BIN_EXE_campaign-api"),
            required,
            extra,
        })
        .await;
    }
}
