//! Builds the Shopee client every binary uses from its configuration: shared rate limits in Redis, tokens in
//! PostgreSQL encrypted with `TOKEN_ENCRYPTION_KEY`.

use std::num::NonZeroU32;

use shopee_client::{ClientConfig, ShopeeClient, TokenStore};

use crate::config::{EncryptionKey, ShopeeConfig};

pub fn client(
    config: &ShopeeConfig,
    pool: sqlx::PgPool,
    redis: Option<deadpool_redis::Pool>,
    token_key: &EncryptionKey,
) -> anyhow::Result<ShopeeClient> {
    let mut cfg = ClientConfig::new(
        config.api_base_url.clone(),
        config.partner_id,
        config.partner_key.expose().to_owned(),
    );
    cfg.rate_limit.per_shop = NonZeroU32::new(config.rate_limit_per_shop).unwrap_or(NonZeroU32::MIN);
    let mut builder = ShopeeClient::builder(cfg).token_store(TokenStore::new(pool, token_key.0));
    if let Some(redis) = redis {
        builder = builder.redis(redis);
    }
    Ok(builder.build()?)
}
