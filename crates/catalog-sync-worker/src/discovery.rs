//! Mapping discovery: page through a shop's items and models and record a mapping wherever Shopee's
//! `item_sku` / `model_sku` is one of our SKUs (any non-empty value that parses as a `domain::Sku`).
//! Jobs are rows of `mapping_discovery_jobs` (campaign-api inserts them; this worker claims and runs them).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use domain::mapping::{MappingSource, ProductMapping};
use domain::{ItemId, ModelId, ShopId, Sku};
use pg_enum::JobStatus;
use product_mapping::Mappings;
use shopee_client::ShopeeClient;
use shopee_client::api::product::{GetItemListRequest, ItemStatus};
use sqlx::PgPool;

/// What a discovery run found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    pub items_scanned: i32,
    /// Recorded (new, updated or already there).
    pub matched: i32,
    /// Item/model SKUs that are empty or not SKUs.
    pub unmatched: i32,
    /// The SKU is mapped to another Shopee model in this shop, or the model belongs to another SKU.
    pub conflicting: i32,
}

/// Claims the oldest queued job (or a running one whose lease expired).
pub async fn claim(pool: &PgPool, lease: Duration) -> Result<Option<(i64, i64)>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE mapping_discovery_jobs SET status = $2, attempts = attempts + 1,
            started_at = COALESCE(started_at, now()), lease_until = now() + make_interval(secs => $1)
         WHERE id = (SELECT id FROM mapping_discovery_jobs
                     WHERE status = $3 OR (status = $2 AND lease_until < now())
                     ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
         RETURNING id, shop_id",
    )
    .bind(lease.as_secs_f64())
    .bind(JobStatus::Running)
    .bind(JobStatus::Queued)
    .fetch_optional(pool)
    .await
}

/// Queues a discovery (what campaign-api does); returns the job id.
pub async fn enqueue(pool: &PgPool, shop: ShopId) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("INSERT INTO mapping_discovery_jobs (shop_id) VALUES ($1) RETURNING id")
        .bind(shop.as_i64())
        .fetch_one(pool)
        .await
}

/// Claims and runs one job, if any; returns whether there was one.
pub async fn run_next(pool: &PgPool, shopee: &ShopeeClient, mappings: &Mappings) -> anyhow::Result<bool> {
    let Some((id, shop)) = claim(pool, Duration::from_secs(600)).await? else {
        return Ok(false);
    };
    let shop = ShopId::from_i64(shop)?;
    match discover(shopee, mappings, shop).await {
        Ok(r) => {
            sqlx::query(
                "UPDATE mapping_discovery_jobs SET status = $6, items_scanned = $2, matched = $3, unmatched = $4,
                    conflicting = $5, error = NULL, finished_at = now(), lease_until = NULL WHERE id = $1",
            )
            .bind(id)
            .bind(r.items_scanned)
            .bind(r.matched)
            .bind(r.unmatched)
            .bind(r.conflicting)
            .bind(JobStatus::Done)
            .execute(pool)
            .await?;
            tracing::info!(job.id = id, shop.id = %shop, matched = r.matched, unmatched = r.unmatched,
                conflicting = r.conflicting, "mapping discovery done");
        }
        Err(e) => {
            // Transient failures are retried (up to 3 runs); anything else fails the job with the reason.
            let retry = e
                .downcast_ref::<shopee_client::Error>()
                .is_some_and(shopee_client::Error::is_retryable);
            sqlx::query(
                "UPDATE mapping_discovery_jobs SET status = CASE WHEN $3 AND attempts < 3 THEN $4 ELSE $5 END,
                    error = $2, lease_until = NULL,
                    finished_at = CASE WHEN $3 AND attempts < 3 THEN NULL ELSE now() END WHERE id = $1",
            )
            .bind(id)
            .bind(format!("{e:#}"))
            .bind(retry)
            .bind(JobStatus::Queued)
            .bind(JobStatus::Failed)
            .execute(pool)
            .await?;
            tracing::warn!(job.id = id, shop.id = %shop, error = format!("{e:#}"), "mapping discovery failed");
        }
    }
    Ok(true)
}

/// Pages through the shop's items and models and records what matches.
pub async fn discover(shopee: &ShopeeClient, mappings: &Mappings, shop: ShopId) -> anyhow::Result<Report> {
    let mut report = Report::default();
    let mut candidates: Vec<(String, ItemId, ModelId)> = Vec::new();
    let mut offset = 0;
    loop {
        let page = shopee
            .get_item_list(
                shop,
                &GetItemListRequest {
                    offset,
                    page_size: 100,
                    item_status: vec![ItemStatus::Normal, ItemStatus::Unlist],
                    update_time_from: None,
                    update_time_to: None,
                },
            )
            .await?;
        let ids: Vec<ItemId> = page.item.iter().map(|i| i.item_id).collect();
        report.items_scanned += i32::try_from(ids.len()).unwrap_or(i32::MAX);
        if !ids.is_empty() {
            for info in shopee.get_item_base_info(shop, &ids).await? {
                if info.has_model {
                    for m in shopee.get_model_list(shop, info.item_id).await?.model {
                        candidates.push((m.model_sku, info.item_id, m.model_id));
                    }
                } else {
                    candidates.push((info.item_sku, info.item_id, ModelId::NONE));
                }
            }
        }
        if !page.has_next_page || page.next_offset <= offset {
            break;
        }
        offset = page.next_offset;
    }
    let mut found: Vec<ProductMapping> = Vec::new();
    let mut seen: HashSet<Sku> = HashSet::new();
    for (raw, item_id, model_id) in candidates {
        let Ok(sku) = Sku::parse(raw.trim()) else {
            report.unmatched += 1;
            continue;
        };
        if !seen.insert(sku.clone()) {
            // The same SKU on two Shopee models of one shop: ambiguous, never guessed.
            report.conflicting += 1;
            continue;
        }
        found.push(ProductMapping {
            sku,
            shop_id: shop,
            item_id,
            model_id,
            outlet_item_id: None,
        });
    }
    let skus: Vec<Sku> = found.iter().map(|m| m.sku.clone()).collect();
    let existing: HashMap<Sku, ProductMapping> = mappings.for_skus(shop, &skus).await?;
    let mut to_record = Vec::with_capacity(found.len());
    for m in found {
        match existing.get(&m.sku) {
            // A mapping made by hand (or earlier) to another model is kept and reported, never overwritten.
            Some(e) if (e.item_id, e.model_id) != (m.item_id, m.model_id) => report.conflicting += 1,
            Some(_) => report.matched += 1,
            None => to_record.push(m),
        }
    }
    let upserted = mappings.upsert(&to_record, MappingSource::Discovered).await?;
    report.matched +=
        i32::try_from(upserted.inserted + upserted.updated + upserted.unchanged).unwrap_or(i32::MAX);
    report.conflicting += i32::try_from(upserted.conflicts.len()).unwrap_or(i32::MAX);
    Ok(report)
}
