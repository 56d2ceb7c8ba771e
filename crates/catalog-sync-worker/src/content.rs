//! Content sync: products from the Catalog Service (GraphQL through cynic, schema in `schema/catalog.graphql`) to
//! Shopee `update_item`, sending only the fields that changed since the last successful send
//! (`content_sync_state.sent`). On demand (`content_sync_jobs`, queued by campaign-api) and on a schedule
//! (`productsUpdatedSince` from the watermark in `content_sync_cursor`).
//!
//! Scope: name, description, images, weight and dimensions of items sold as one SKU (model 0). Items with several
//! models carry one SKU per model, so item-level content is not derived from them.
//!
//! Images: `sent.image_urls` keeps the Catalog's URL list last applied. When it changes, each URL is turned into a
//! Shopee image id by [`crate::images`] (downloaded and uploaded once per URL, remembered in `catalog_images`) and
//! the whole list goes as `image.image_id_list` (the Catalog's order, its first 9, duplicates dropped) in the same
//! `update_item` as the other changed fields. Unchanged images: no upload and no `image` field. A product without
//! images leaves Shopee's images alone. An image that cannot be had (download failure, not an image, upload
//! refused) fails that product: the other changed fields still go, the images are tried again on the next run,
//! and the job records the reason (redacted URL) in `content_sync_jobs.error` and goes on with the other products.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use domain::{ItemId, ShopId};
use pg_enum::JobStatus;
use serde_json::{Value, json};
use shopee_client::ShopeeClient;
use shopee_client::api::product::{ItemDimension, ItemImage, UpdateItemRequest};
use sqlx::PgPool;

use crate::images::{Images, MAX_ITEM_IMAGES};

#[cynic::schema_for_derives(file = r#"schema/catalog.graphql"#, module = "schema")]
pub mod queries {
    use super::schema;

    pub type DateTime = chrono::DateTime<chrono::Utc>;

    #[derive(cynic::QueryVariables, Debug)]
    pub struct ProductsVariables {
        pub skus: Vec<String>,
    }

    #[derive(cynic::QueryFragment, Debug)]
    #[cynic(graphql_type = "Query", variables = "ProductsVariables")]
    pub struct ProductsQuery {
        #[arguments(skus: $skus)]
        pub products: Vec<Product>,
    }

    #[derive(cynic::QueryVariables, Debug)]
    pub struct UpdatedSinceVariables {
        pub since: DateTime,
        pub first: i32,
        pub after: Option<String>,
    }

    #[derive(cynic::QueryFragment, Debug)]
    #[cynic(graphql_type = "Query", variables = "UpdatedSinceVariables")]
    pub struct UpdatedSinceQuery {
        #[arguments(since: $since, first: $first, after: $after)]
        pub products_updated_since: ProductConnection,
    }

    #[derive(cynic::QueryFragment, Debug)]
    pub struct ProductConnection {
        pub nodes: Vec<Product>,
        pub page_info: PageInfo,
    }

    #[derive(cynic::QueryFragment, Debug)]
    pub struct PageInfo {
        pub has_next_page: bool,
        pub end_cursor: Option<String>,
    }

    #[derive(cynic::QueryFragment, Debug, Clone)]
    pub struct Product {
        pub sku: String,
        pub name: String,
        pub description: Option<String>,
        pub active: bool,
        pub images: Vec<Image>,
        pub weight_grams: Option<i32>,
        pub dimensions: Option<Dimensions>,
    }

    #[derive(cynic::QueryFragment, Debug, Clone)]
    pub struct Image {
        pub url: String,
    }

    #[derive(cynic::QueryFragment, Debug, Clone)]
    pub struct Dimensions {
        pub length_cm: f64,
        pub width_cm: f64,
        pub height_cm: f64,
    }
}

#[allow(clippy::all)]
pub mod schema {
    cynic::use_schema!(r#"schema/catalog.graphql"#);
}

cynic::impl_scalar!(chrono::DateTime<chrono::Utc>, schema::DateTime);

use queries::Product;

/// The Shopee fields derived from a product, as JSON (what `content_sync_state.sent` stores).
pub fn desired(p: &Product) -> BTreeMap<&'static str, Value> {
    let mut out = BTreeMap::new();
    out.insert("item_name", json!(p.name.chars().take(120).collect::<String>()));
    if let Some(d) = &p.description {
        out.insert("description", json!(d));
    }
    if let Some(g) = p.weight_grams.filter(|g| *g > 0) {
        // Kilograms with gram precision, as text so equality is exact.
        out.insert("weight", json!(format!("{}.{:03}", g / 1000, g % 1000)));
    }
    if let Some(d) = &p.dimensions {
        let cm = |v: f64| v.ceil().max(1.0) as u32;
        out.insert(
            "dimension",
            json!({"package_length": cm(d.length_cm), "package_width": cm(d.width_cm), "package_height": cm(d.height_cm)}),
        );
    }
    let urls = image_urls(p);
    if !urls.is_empty() {
        out.insert("image_urls", json!(urls));
    }
    out
}

/// The product's image URLs as sent: the Catalog's order, blanks and duplicates dropped, the first 9.
pub fn image_urls(p: &Product) -> Vec<String> {
    let mut urls: Vec<String> = Vec::new();
    for image in &p.images {
        let url = image.url.trim();
        if !url.is_empty() && !urls.iter().any(|u| u == url) {
            urls.push(url.to_owned());
        }
    }
    urls.truncate(MAX_ITEM_IMAGES);
    urls
}

/// Only what differs from what was last sent.
pub fn changes(desired: &BTreeMap<&'static str, Value>, sent: &Value) -> BTreeMap<&'static str, Value> {
    desired
        .iter()
        .filter(|(k, v)| sent.get(**k) != Some(*v))
        .map(|(k, v)| (*k, v.clone()))
        .collect()
}

fn request(item_id: ItemId, changed: &BTreeMap<&'static str, Value>) -> UpdateItemRequest {
    UpdateItemRequest {
        item_id,
        item_name: changed
            .get("item_name")
            .and_then(Value::as_str)
            .map(str::to_owned),
        description: changed
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_owned),
        item_sku: None,
        weight: changed
            .get("weight")
            .and_then(Value::as_str)
            .and_then(|w| serde_json::from_str(w).ok()),
        dimension: changed
            .get("dimension")
            .and_then(|d| serde_json::from_value::<ItemDimension>(d.clone()).ok()),
        image: None,
        item_status: None,
    }
}

/// Counts of one sync run, and why each failed product failed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub items_seen: i32,
    pub updated: i32,
    pub unchanged: i32,
    pub failed: i32,
    /// One line per failed product: `SKU <sku> (shop <id>, item <id>): <reason>` (URLs redacted).
    pub errors: Vec<String>,
}

impl SyncReport {
    fn add(&mut self, other: SyncReport) {
        self.items_seen += other.items_seen;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
        self.failed += other.failed;
        self.errors.extend(other.errors);
    }

    /// What `content_sync_jobs.error` holds for a run whose products failed (None when none did).
    pub fn error_summary(&self) -> Option<String> {
        const SHOWN: usize = 20;
        if self.errors.is_empty() {
            return None;
        }
        let mut text = format!(
            "{} of {} products failed: {}",
            self.failed,
            self.items_seen,
            self.errors
                .iter()
                .take(SHOWN)
                .cloned()
                .collect::<Vec<_>>()
                .join("; ")
        );
        if self.errors.len() > SHOWN {
            text.push_str(&format!("; and {} more", self.errors.len() - SHOWN));
        }
        Some(text)
    }
}

pub struct ContentSync {
    pool: PgPool,
    shopee: ShopeeClient,
    images: Images,
    url: String,
    http: reqwest::Client,
}

impl ContentSync {
    pub fn new(pool: PgPool, shopee: ShopeeClient, url: &str) -> Self {
        Self {
            images: Images::new(pool.clone(), shopee.clone()),
            pool,
            shopee,
            url: url.to_owned(),
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
        }
    }

    async fn graphql<Q, V>(&self, op: cynic::Operation<Q, V>) -> anyhow::Result<Q>
    where
        Q: serde::de::DeserializeOwned,
        V: serde::Serialize,
    {
        let resp: cynic::GraphQlResponse<Q> = self
            .http
            .post(&self.url)
            .json(&op)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        if let Some(errors) = resp.errors.filter(|e| !e.is_empty()) {
            anyhow::bail!(
                "Catalog GraphQL answered errors: {}",
                errors
                    .iter()
                    .map(|e| e.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
        resp.data
            .ok_or_else(|| anyhow::anyhow!("Catalog GraphQL answered no data"))
    }

    /// `products(skus)`, in pages of 100 SKUs.
    pub async fn products(&self, skus: &[String]) -> anyhow::Result<Vec<Product>> {
        use cynic::QueryBuilder as _;
        let mut out = Vec::new();
        for chunk in skus.chunks(100) {
            let op = queries::ProductsQuery::build(queries::ProductsVariables { skus: chunk.to_vec() });
            out.extend(self.graphql(op).await?.products);
        }
        Ok(out)
    }

    /// Sends the changed content of these products to every single-SKU item they are mapped to.
    pub async fn sync_products(&self, products: &[Product]) -> anyhow::Result<SyncReport> {
        let mut report = SyncReport::default();
        let skus: Vec<&str> = products.iter().map(|p| p.sku.as_str()).collect();
        let targets: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT sku, shop_id, item_id FROM product_mappings WHERE sku = ANY($1) AND model_id = 0",
        )
        .bind(&skus)
        .fetch_all(&self.pool)
        .await?;
        let by_sku: HashMap<&str, &Product> = products.iter().map(|p| (p.sku.as_str(), p)).collect();
        for (sku, shop, item) in targets {
            let Some(product) = by_sku.get(sku.as_str()) else {
                continue;
            };
            if !product.active {
                continue;
            }
            report.items_seen += 1;
            let sent: Option<Value> =
                sqlx::query_scalar("SELECT sent FROM content_sync_state WHERE shop_id = $1 AND item_id = $2")
                    .bind(shop)
                    .bind(item)
                    .fetch_optional(&self.pool)
                    .await?;
            let sent = sent.unwrap_or_else(|| json!({}));
            let want = desired(product);
            let mut changed = changes(&want, &sent);
            if changed.is_empty() {
                report.unchanged += 1;
                continue;
            }
            let mut image_ids = None;
            let mut problem = None;
            if let Some(urls) = changed.get("image_urls") {
                let urls: Vec<String> = serde_json::from_value(urls.clone())?;
                match self.images.image_ids(&urls).await? {
                    Ok(ids) => image_ids = Some(ids),
                    Err(e) => {
                        // The other changed fields still go; the images are tried again on the next run.
                        changed.remove("image_urls");
                        problem = Some(e.to_string());
                    }
                }
            }
            let fail = |report: &mut SyncReport, reason: String| {
                tracing::warn!(shop.id = shop, item.id = item, sku = %sku, error = %reason, "content not fully sent");
                report.failed += 1;
                report
                    .errors
                    .push(format!("SKU {sku} (shop {shop}, item {item}): {reason}"));
            };
            if changed.is_empty() {
                fail(&mut report, problem.unwrap_or_default());
                continue;
            }
            let mut req = request(ItemId::from_i64(item)?, &changed);
            req.image = image_ids.map(|image_id_list| ItemImage { image_id_list });
            match self.shopee.update_item(ShopId::from_i64(shop)?, &req).await {
                Ok(_) => {
                    let mut merged = sent.as_object().cloned().unwrap_or_default();
                    for (k, v) in changed {
                        merged.insert(k.to_owned(), v);
                    }
                    sqlx::query(
                        "INSERT INTO content_sync_state (shop_id, item_id, sku, sent) VALUES ($1, $2, $3, $4)
                         ON CONFLICT (shop_id, item_id) DO UPDATE SET sku = EXCLUDED.sku, sent = EXCLUDED.sent,
                            updated_at = now()",
                    )
                    .bind(shop)
                    .bind(item)
                    .bind(&sku)
                    .bind(Value::Object(merged))
                    .execute(&self.pool)
                    .await?;
                    match problem {
                        Some(p) => fail(&mut report, format!("{p} (the other changed fields were sent)")),
                        None => report.updated += 1,
                    }
                }
                Err(e) => {
                    let mut reason = format!("update_item refused: {e}");
                    if let Some(p) = problem {
                        reason.push_str(&format!("; {p}"));
                    }
                    fail(&mut report, reason);
                }
            }
        }
        Ok(report)
    }

    /// Claims and runs one queued content-sync job; returns whether there was one.
    pub async fn run_next_job(&self) -> anyhow::Result<bool> {
        let job: Option<(i64, Option<Vec<String>>)> = sqlx::query_as(
            "UPDATE content_sync_jobs SET status = $1, attempts = attempts + 1,
                started_at = COALESCE(started_at, now()), lease_until = now() + interval '10 minutes'
             WHERE id = (SELECT id FROM content_sync_jobs
                         WHERE status = $2 OR (status = $1 AND lease_until < now())
                         ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
             RETURNING id, skus",
        )
        .bind(JobStatus::Running)
        .bind(JobStatus::Queued)
        .fetch_optional(&self.pool)
        .await?;
        let Some((id, skus)) = job else {
            return Ok(false);
        };
        let result = async {
            let skus = match skus {
                Some(s) => s,
                None => {
                    sqlx::query_scalar(
                        "SELECT DISTINCT sku FROM product_mappings WHERE model_id = 0 ORDER BY sku",
                    )
                    .fetch_all(&self.pool)
                    .await?
                }
            };
            let products = self.products(&skus).await?;
            self.sync_products(&products).await
        }
        .await;
        match result {
            Ok(r) => {
                // Done even when products failed: their reasons are in `error`, the others were sent.
                sqlx::query(
                    "UPDATE content_sync_jobs SET status = $7, items_seen = $2, updated = $3, unchanged = $4,
                        failed = $5, error = $6, finished_at = now(), lease_until = NULL WHERE id = $1",
                )
                .bind(id)
                .bind(r.items_seen)
                .bind(r.updated)
                .bind(r.unchanged)
                .bind(r.failed)
                .bind(r.error_summary())
                .bind(JobStatus::Done)
                .execute(&self.pool)
                .await?;
            }
            Err(e) => {
                sqlx::query(
                    "UPDATE content_sync_jobs SET status = CASE WHEN attempts < 3 THEN $3 ELSE $4 END,
                        error = $2, lease_until = NULL WHERE id = $1",
                )
                .bind(id)
                .bind(format!("{e:#}"))
                .bind(JobStatus::Queued)
                .bind(JobStatus::Failed)
                .execute(&self.pool)
                .await?;
            }
        }
        Ok(true)
    }

    /// The scheduled run: every product updated since the watermark, then the watermark moves to the start.
    pub async fn run_scheduled(&self) -> anyhow::Result<SyncReport> {
        use cynic::QueryBuilder as _;
        let started: DateTime<Utc> = Utc::now();
        let since: DateTime<Utc> =
            sqlx::query_scalar("SELECT since FROM content_sync_cursor WHERE name = 'products_updated_since'")
                .fetch_optional(&self.pool)
                .await?
                .unwrap_or(DateTime::UNIX_EPOCH);
        let mut after = None;
        let mut total = SyncReport::default();
        loop {
            let op = queries::UpdatedSinceQuery::build(queries::UpdatedSinceVariables {
                since,
                first: 100,
                after: after.clone(),
            });
            let page = self.graphql(op).await?.products_updated_since;
            total.add(self.sync_products(&page.nodes).await?);
            if !page.page_info.has_next_page || page.page_info.end_cursor.is_none() {
                break;
            }
            after = page.page_info.end_cursor;
        }
        sqlx::query(
            "INSERT INTO content_sync_cursor (name, since) VALUES ('products_updated_since', $1)
             ON CONFLICT (name) DO UPDATE SET since = EXCLUDED.since, updated_at = now()",
        )
        .bind(started)
        .execute(&self.pool)
        .await?;
        Ok(total)
    }
}
