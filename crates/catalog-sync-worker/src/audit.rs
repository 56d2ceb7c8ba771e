//! `catalog-sync-worker audit --shop N`: reads prices and stocks back from Shopee and reports every difference from
//! the last applied state.

use std::collections::BTreeMap;
use std::fmt;

use domain::{ItemId, Money, ShopId};
use shopee_client::ShopeeClient;
use shopee_client::api::product::{PriceInfo, StockInfoV2};
use sqlx::PgPool;

use crate::events::Kind;

/// One model whose Shopee value differs from what we last applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub item_id: i64,
    pub model_id: i64,
    pub kind: Kind,
    pub location_id: String,
    pub sku: String,
    /// Centavos or units, as last applied.
    pub applied: i64,
    /// What Shopee has (None: not found or unreadable).
    pub shopee: Option<i64>,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: i64| {
            if self.kind == Kind::Price {
                format!("{}.{:02}", v / 100, v % 100)
            } else {
                v.to_string()
            }
        };
        let location = if self.location_id.is_empty() {
            String::new()
        } else {
            format!(" location {}", self.location_id)
        };
        write!(
            f,
            "item {} model {}{location} sku {} {}: applied {}, Shopee has {}",
            self.item_id,
            self.model_id,
            self.sku,
            self.kind,
            show(self.applied),
            self.shopee.map_or_else(|| "nothing (missing)".to_owned(), show)
        )
    }
}

/// The audit result.
#[derive(Debug, Clone, Default)]
pub struct Audit {
    pub checked: usize,
    pub differences: Vec<Difference>,
}

type Row = (i64, i64, Kind, String, String, i64);

pub async fn audit(pool: &PgPool, shopee: &ShopeeClient, shop: ShopId) -> anyhow::Result<Audit> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT item_id, model_id, kind, location_id, sku, applied_value FROM catalog_sync_state
         WHERE shop_id = $1 AND applied_value IS NOT NULL ORDER BY item_id, model_id, kind, location_id",
    )
    .bind(shop.as_i64())
    .fetch_all(pool)
    .await?;
    let mut by_item: BTreeMap<i64, Vec<Row>> = BTreeMap::new();
    for r in rows {
        by_item.entry(r.0).or_default().push(r);
    }
    let mut out = Audit::default();
    for (item, rows) in by_item {
        let item_id = ItemId::from_i64(item)?;
        // model_id -> (price, stock info)
        let mut seen: BTreeMap<i64, (Vec<PriceInfo>, Option<StockInfoV2>)> = BTreeMap::new();
        match shopee.get_model_list(shop, item_id).await {
            Ok(list) if !list.model.is_empty() => {
                for m in list.model {
                    seen.insert(m.model_id.as_i64(), (m.price_info, m.stock_info_v2));
                }
            }
            Ok(_) => {
                for info in shopee.get_item_base_info(shop, &[item_id]).await? {
                    seen.insert(0, (info.price_info, info.stock_info_v2));
                }
            }
            Err(e) if e.kind() == shopee_client::ErrorKind::Permanent => {
                tracing::warn!(item.id = item, error = %e, "item not readable at Shopee");
            }
            Err(e) => return Err(e.into()),
        }
        for (_, model, kind, location, sku, applied) in rows {
            out.checked += 1;
            let theirs = seen.get(&model).and_then(|(price, stock)| match kind {
                Kind::Price => price
                    .first()
                    .and_then(|p| p.original_price.as_ref())
                    .and_then(|n| Money::from_shopee_number(n).ok())
                    .map(Money::centavos),
                Kind::Stock => stock.as_ref().map(|s| {
                    if location.is_empty() {
                        s.seller_stock.iter().map(|e| e.stock).sum()
                    } else {
                        s.seller_stock
                            .iter()
                            .filter(|e| e.location_id.as_deref() == Some(location.as_str()))
                            .map(|e| e.stock)
                            .sum()
                    }
                }),
            });
            if theirs != Some(applied) {
                out.differences.push(Difference {
                    item_id: item,
                    model_id: model,
                    kind,
                    location_id: location,
                    sku,
                    applied,
                    shopee: theirs,
                });
            }
        }
    }
    Ok(out)
}

/// The `audit` subcommand: prints the differences; exit code 0 = none, 1 = some, 2 = configuration error.
pub fn main(shop: u64) -> std::process::ExitCode {
    use service_runtime::config::{self, BaseConfig, Env, ShopeeConfig};
    use std::process::ExitCode;
    let env = Env::from_process();
    let loaded = (|| {
        Ok::<_, config::ConfigError>((
            BaseConfig::from_env(&env)?,
            ShopeeConfig::from_env(&env)?,
            config::token_encryption_key(&env)?,
            config::redis_url(&env)?,
        ))
    })();
    let (base, shopee_config, key, redis_url) = match loaded {
        Ok(c) => c,
        Err(e) => {
            eprintln!("catalog-sync-worker audit: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let Ok(shop) = ShopId::new(shop) else {
        eprintln!("catalog-sync-worker audit: --shop must be a positive Shopee shop id");
        return ExitCode::from(2);
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("catalog-sync-worker audit: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let pool = service_runtime::db::lazy_pool(&base.database_url, 2)?;
        let redis = service_runtime::redis::pool(&redis_url).ok();
        let client = service_runtime::shopee::client(&shopee_config, pool.clone(), redis, &key)?;
        audit(&pool, &client, shop).await
    });
    match result {
        Ok(a) => {
            for d in &a.differences {
                println!("DIFF shop {shop} {d}");
            }
            println!(
                "audit of shop {shop}: {} models checked, {} differences",
                a.checked,
                a.differences.len()
            );
            if a.differences.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("catalog-sync-worker audit: {e:#}");
            ExitCode::from(3)
        }
    }
}
