//! Content sync (placeholder until the GraphQL part lands).

use shopee_client::ShopeeClient;
use sqlx::PgPool;

pub struct ContentSync {
    #[allow(dead_code)]
    pool: PgPool,
    #[allow(dead_code)]
    shopee: ShopeeClient,
}

impl ContentSync {
    pub fn new(pool: PgPool, shopee: ShopeeClient, _url: &str) -> Self {
        Self { pool, shopee }
    }
    pub async fn run_next_job(&self) -> anyhow::Result<bool> {
        Ok(false)
    }
    pub async fn run_scheduled(&self) -> anyhow::Result<()> {
        Ok(())
    }
}
