//! Channel 90026 (Entrega Expressa) serviceable area: after each hub sync, each shop's active hubs become one KML
//! file (`hub_config::kml::shop_kml`: one polygon per hub, the circle of its `delivery.radius_km`). When that file
//! differs from the last one uploaded for the shop (`shop_polygons.kml_sha256`), it is uploaded with
//! `logistics/upload_serviceable_polygon` and its task is checked with `logistics/check_polygon_update_status`
//! (a bounded number of times; a task still running is checked again next cycle).
//!
//! Runs in a task of its own, fed by the hub sync through a watch channel: a slow Shopee never delays the hub sync
//! nor the order loops. A failure (upload refused, call failed, KML rejected by the task) is logged with the shop id,
//! recorded in `shop_polygons.last_error` and retried next cycle. Replicas share the table: the upload is claimed
//! with one conditional upsert, so one replica uploads a given file.
//!
//! Metric: `polygon_uploads_total{outcome}`, once per upload, with how it ended this cycle: `done`, `failed` (Shopee
//! rejected the KML), `processing` (still running after the checks), `error` (the upload or a check failed).

use std::sync::Arc;
use std::time::Duration;

use domain::ShopId;
use hub_config::{Hub, Snapshot};
use shopee_client::api::logistics::PolygonTaskStatus;
use shopee_client::{ErrorKind, ShopeeClient};
use sqlx::PgPool;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// What happened to one shop in one cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// No active hub with a radius: nothing to upload (the last area uploaded stays at Shopee).
    NoArea,
    /// The file equals the last one uploaded and its task is done (or another replica is uploading it).
    Unchanged,
    /// The task completed: the area is in place.
    Done,
    /// Shopee's task is still running; checked again next cycle.
    Processing,
    /// Shopee rejected the file (task status 2); uploaded again next cycle.
    Failed(String),
    /// The upload, a check or the database failed; retried next cycle.
    Error(String),
}

impl Outcome {
    fn label(&self) -> &'static str {
        match self {
            Outcome::NoArea => "no_area",
            Outcome::Unchanged => "unchanged",
            Outcome::Done => "done",
            Outcome::Processing => "processing",
            Outcome::Failed(_) => "failed",
            Outcome::Error(_) => "error",
        }
    }
}

/// Uploads each shop's serviceable area when it changes.
#[derive(Clone)]
pub struct PolygonSync {
    pub pool: PgPool,
    pub shopee: ShopeeClient,
    /// The pause before each check of a task after its upload; their number bounds the wait.
    pub check_delays: Vec<Duration>,
}

impl PolygonSync {
    /// Checks after 1, 2, 4, 8, 15, 15, 15 s (about one minute), then next cycle.
    pub fn new(pool: PgPool, shopee: ShopeeClient) -> Self {
        let check_delays = [1, 2, 4, 8, 15, 15, 15]
            .into_iter()
            .map(Duration::from_secs)
            .collect();
        Self {
            pool,
            shopee,
            check_delays,
        }
    }

    /// One cycle over a hub snapshot, shop by shop (by shop id); one shop's failure never stops the others.
    pub async fn cycle(&self, snapshot: &Snapshot, shutdown: &CancellationToken) -> Vec<(u64, Outcome)> {
        let mut shops: Vec<(&u64, &Vec<Hub>)> = snapshot.by_shop.iter().collect();
        shops.sort_by_key(|(shop, _)| **shop);
        let mut outcomes = Vec::with_capacity(shops.len());
        for (&shop, hubs) in shops {
            if shutdown.is_cancelled() {
                break;
            }
            let outcome = self.shop(shop, hubs, shutdown).await;
            match &outcome {
                Outcome::Failed(e) => tracing::error!(
                    shop.id = shop,
                    problem = %e,
                    "Shopee rejected the serviceable area KML; uploading it again next cycle"
                ),
                Outcome::Error(e) => tracing::warn!(
                    shop.id = shop,
                    error = %e,
                    "serviceable area upload failed; retrying next cycle"
                ),
                Outcome::Done => tracing::info!(shop.id = shop, "serviceable area uploaded and in place"),
                other => tracing::debug!(shop.id = shop, outcome = other.label(), "serviceable area"),
            }
            outcomes.push((shop, outcome));
        }
        outcomes
    }

    async fn shop(&self, shop: u64, hubs: &[Hub], shutdown: &CancellationToken) -> Outcome {
        let Some(kml) = hub_config::kml::shop_kml(shop, hubs) else {
            return Outcome::NoArea;
        };
        let shop_id = match ShopId::new(shop) {
            Ok(s) => s,
            Err(e) => return Outcome::Error(format!("shop id {shop}: {e}")),
        };
        let claimed = match self.claim(shop, &kml).await {
            Ok(c) => c,
            Err(e) => return Outcome::Error(format!("claiming the upload: {e}")),
        };
        if !claimed {
            // Same file: resume a running task, else nothing to do.
            let row: Result<Option<(String, Option<String>)>, _> =
                sqlx::query_as("SELECT status, task_id FROM shop_polygons WHERE shop_id = $1")
                    .bind(shop as i64)
                    .fetch_optional(&self.pool)
                    .await;
            return match row {
                Ok(Some((status, Some(task_id)))) if status == "processing" => {
                    let once = &self.check_delays[..self.check_delays.len().min(1)];
                    self.check(shop, shop_id, &task_id, once, shutdown).await
                }
                Ok(_) => Outcome::Unchanged,
                Err(e) => Outcome::Error(format!("reading shop_polygons: {e}")),
            };
        }
        let outcome = match self
            .shopee
            .upload_serviceable_polygon(shop_id, kml.as_bytes())
            .await
        {
            Ok(resp) => {
                if let Err(e) = sqlx::query(
                    "UPDATE shop_polygons SET status = 'processing', task_id = $2, uploaded_at = now() \
                     WHERE shop_id = $1",
                )
                .bind(shop as i64)
                .bind(&resp.task_id)
                .execute(&self.pool)
                .await
                {
                    tracing::warn!(shop.id = shop, error = %e, "recording the polygon task failed");
                }
                self.check(shop, shop_id, &resp.task_id, &self.check_delays, shutdown)
                    .await
            }
            Err(e) => {
                let message = format!("upload_serviceable_polygon: {e}");
                self.record(shop, "error", Some(&message), false).await;
                Outcome::Error(message)
            }
        };
        metrics::counter!("polygon_uploads_total", "outcome" => outcome.label()).increment(1);
        outcome
    }

    /// Takes the upload of `kml` for `shop` when it differs from the last file, when the last attempt did not
    /// succeed, or when a claim is stale (`uploading` for 10 minutes: its replica died mid-upload) or a task has
    /// run 30 minutes. False: nothing to upload (or another replica is on it).
    async fn claim(&self, shop: u64, kml: &str) -> Result<bool, sqlx::Error> {
        let claimed: Option<i64> = sqlx::query_scalar(
            "INSERT INTO shop_polygons (shop_id, kml_sha256, status, uploaded_at) \
             VALUES ($1, encode(sha256(convert_to($2, 'UTF8')), 'hex'), 'uploading', now()) \
             ON CONFLICT (shop_id) DO UPDATE \
               SET kml_sha256 = EXCLUDED.kml_sha256, status = 'uploading', task_id = NULL, uploaded_at = now(), \
                   checked_at = NULL \
             WHERE shop_polygons.kml_sha256 <> EXCLUDED.kml_sha256 \
                OR shop_polygons.status IN ('error', 'failed') \
                OR (shop_polygons.status = 'uploading' AND shop_polygons.uploaded_at < now() - interval '10 minutes') \
                OR (shop_polygons.status = 'processing' AND shop_polygons.uploaded_at < now() - interval '30 minutes') \
             RETURNING shop_id",
        )
        .bind(shop as i64)
        .bind(kml)
        .fetch_optional(&self.pool)
        .await?;
        Ok(claimed.is_some())
    }

    /// Checks the task after each of `delays`, until it is done or failed.
    async fn check(
        &self,
        shop: u64,
        shop_id: ShopId,
        task_id: &str,
        delays: &[Duration],
        shutdown: &CancellationToken,
    ) -> Outcome {
        for delay in delays {
            tokio::select! {
                _ = shutdown.cancelled() => return Outcome::Processing,
                _ = tokio::time::sleep(*delay) => {}
            }
            match self.shopee.check_polygon_update_status(shop_id, task_id).await {
                Ok(answer) => match answer.task_status() {
                    PolygonTaskStatus::Completed => {
                        self.record(shop, "done", None, true).await;
                        return Outcome::Done;
                    }
                    PolygonTaskStatus::KmlError => {
                        let message = format!("task {task_id}: KML file errors: {}", answer.message);
                        self.record(shop, "failed", Some(&message), true).await;
                        return Outcome::Failed(message);
                    }
                    PolygonTaskStatus::InProgress => self.record(shop, "processing", None, true).await,
                    PolygonTaskStatus::Other(code) => {
                        let message =
                            format!("task {task_id}: undocumented status {code}: {}", answer.message);
                        self.record(shop, "processing", Some(&message), true).await;
                    }
                },
                Err(e) if e.kind() == ErrorKind::Retryable => {
                    // The task may still complete: checked again next cycle.
                    let message = format!("check_polygon_update_status: {e}");
                    self.record(shop, "processing", Some(&message), true).await;
                    return Outcome::Error(message);
                }
                Err(e) => {
                    // The task cannot be read (unknown task, no permission): upload again next cycle.
                    let message = format!("check_polygon_update_status: {e}");
                    self.record(shop, "error", Some(&message), true).await;
                    return Outcome::Error(message);
                }
            }
        }
        Outcome::Processing
    }

    /// Records the state reached (`checked`: by a check of the task). `done` clears `last_error`; another state
    /// without an error keeps the last one.
    async fn record(&self, shop: u64, status: &str, error: Option<&str>, checked: bool) {
        let result = sqlx::query(
            "UPDATE shop_polygons SET status = $2, \
                    checked_at = CASE WHEN $4 THEN now() ELSE checked_at END, \
                    last_error = CASE WHEN $2 = 'done' THEN NULL ELSE COALESCE($3, last_error) END \
             WHERE shop_id = $1",
        )
        .bind(shop as i64)
        .bind(status)
        .bind(error)
        .bind(checked)
        .execute(&self.pool)
        .await;
        if let Err(e) = result {
            tracing::warn!(shop.id = shop, error = %e, "recording the serviceable area state failed");
        }
    }
}

/// Runs a cycle for every hub snapshot the hub sync publishes, until shutdown.
pub async fn run(
    sync: PolygonSync,
    mut snapshots: watch::Receiver<Option<Arc<Snapshot>>>,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = snapshots.changed() => if changed.is_err() { return },
        }
        let snapshot = snapshots.borrow_and_update().clone();
        if let Some(snapshot) = snapshot {
            sync.cycle(&snapshot, &shutdown).await;
        }
    }
}
