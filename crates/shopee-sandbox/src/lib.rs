//! A stateful local simulator of the Shopee Open Platform v2 subset this project uses. See README.md.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use shopee_sandbox::{Sandbox, SandboxConfig, SeedItem};
//! let sandbox = Sandbox::start(SandboxConfig::new(1_000_001, "partner-key")).await?;
//! let (access_token, _refresh_token) = sandbox.issue_tokens(900_001);
//! sandbox.seed_item(SeedItem::single(900_001, 100_001, "789100000001", 12.90, 37))?;
//! let base_url = sandbox.base_url(); // point the client here
//! # Ok(()) }
//! ```

mod admin;
mod api;
mod args;
mod config;
mod error;
mod model;
mod state;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::routing::{any, get};
use shopee_client::sign;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use api::{NOT_IN_CONTRACT, routes};
pub use config::SandboxConfig;
pub use error::{Error, Result};
pub use model::*;
use state::Inner;

/// What the HTTP handlers and the [`Sandbox`] handle share.
pub(crate) struct Shared {
    inner: Mutex<Inner>,
    http: reqwest::Client,
    /// Held while pushes are being sent: keeps them in order and lets a flush wait for in-flight ones.
    delivering: tokio::sync::Mutex<()>,
}

impl Shared {
    fn new(config: SandboxConfig) -> Self {
        let http = reqwest::Client::builder()
            .timeout(config.push_timeout)
            .build()
            .unwrap_or_default();
        Self {
            inner: Mutex::new(Inner::new(config)),
            http,
            delivering: tokio::sync::Mutex::new(()),
        }
    }

    /// The state lock; a panic in another holder does not make the sandbox unusable.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends every queued push (in order); a push that is not answered 2xx becomes lost.
    pub(crate) async fn deliver_outgoing(&self) {
        let _delivering = self.delivering.lock().await;
        loop {
            let next = {
                let mut inner = self.lock();
                if inner.outgoing.is_empty() {
                    return;
                }
                let id = inner.outgoing.remove(0);
                let url = inner.cfg.push_callback_url.clone();
                let key = inner.cfg.push_key().to_owned();
                let mode = inner.cfg.push_signature_mode;
                inner.push_mut(id).map(|p| (id, p.body.clone(), url, key, mode))
            };
            let Some((id, body, Some(url), key, mode)) = next else {
                continue;
            };
            let authorization = sign::sign_push(mode, &key, &url, body.as_bytes());
            let outcome = self
                .http
                .post(&url)
                .header("Authorization", authorization)
                .header("Content-Type", "application/json")
                .body(body)
                .send()
                .await;
            let (state, error) = match outcome {
                Ok(r) if r.status().is_success() => (PushState::Delivered, None),
                Ok(r) => (
                    PushState::Lost,
                    Some(format!("callback answered HTTP {}", r.status())),
                ),
                Err(e) => (PushState::Lost, Some(format!("callback unreachable: {e}"))),
            };
            if let Some(error) = &error {
                tracing::info!(push.message_id = id, error = %error, "push lost: kept for get_lost_push_message");
            }
            if let Some(p) = self.lock().push_mut(id) {
                p.state = state;
                p.last_error = error;
            }
        }
    }
}

/// The router of the whole sandbox: Shopee's `/api/v2/...`, the admin `/_sandbox/...`, and `/health/live`.
fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        // Media uploads take up to 10 MB (refused above that with Shopee's envelope, not by the body limit).
        .route(
            "/api/v2/{*path}",
            any(api::shopee).layer(axum::extract::DefaultBodyLimit::max(32 * 1024 * 1024)),
        )
        .route("/health/live", get(|| async { "ok" }))
        .route("/health/ready", get(|| async { "ok" }))
        .nest("/_sandbox", admin::router())
        .with_state(shared)
}

/// Serves the sandbox on `listener` until `shutdown` completes (used by the binary).
pub async fn run(
    config: SandboxConfig,
    listener: TcpListener,
    seed: Option<SeedFile>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let shared = Arc::new(Shared::new(config));
    if let Some(seed) = seed {
        admin::apply_seed(&shared, &seed).await?;
    }
    axum::serve(listener, router(shared))
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

/// Everything that can be seeded at once (the `--seed-file` JSON and `POST /_sandbox/seed`).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SeedFile {
    pub shops: Vec<SeedShop>,
    pub items: Vec<SeedItem>,
    pub orders: Vec<SeedOrder>,
    pub discounts: Vec<SeedDiscount>,
    /// Shops to give tokens to at once (their tokens are readable with `GET /_sandbox/shops/{id}/tokens`).
    pub authorized_shops: Vec<u64>,
}

impl SeedFile {
    /// The demo data of `--demo`: shop 900001 (and a mart 900100 with outlet 900101), items, orders.
    pub fn demo() -> Self {
        let shop = 900_001;
        let mut items = vec![
            SeedItem::single(shop, 100_001, "789100000001", 12.90, 37),
            SeedItem::single(shop, 100_002, "789100000002", 5.49, 120),
            SeedItem {
                item_sku: "CAMISETA".into(),
                ..SeedItem::with_models(
                    shop,
                    100_003,
                    "Camiseta Básica",
                    vec![
                        SeedModel::new(200_001, "789100000031", 39.90, 10),
                        SeedModel::new(200_002, "789100000032", 39.90, 8),
                    ],
                )
            },
        ];
        let mut outlet_item = SeedItem::single(900_101, 300_001, "789100000001", 12.50, 15);
        outlet_item.mart = Some(MartLink {
            mart_shop_id: 900_100,
            mart_item_id: 100_001,
        });
        items.push(outlet_item);
        let mut unpaid = SeedOrder::example(shop, "2511250DEMO02", 100_002, "789100000002");
        unpaid.order_status = "UNPAID".into();
        Self {
            shops: vec![
                SeedShop {
                    shop_id: shop,
                    kind: ShopKind::Normal,
                },
                SeedShop {
                    shop_id: 900_100,
                    kind: ShopKind::Mart,
                },
                SeedShop {
                    shop_id: 900_101,
                    kind: ShopKind::Outlet {
                        mart_shop_id: 900_100,
                    },
                },
            ],
            items,
            orders: vec![
                SeedOrder::example(shop, "2511250DEMO01", 100_001, "789100000001"),
                unpaid,
            ],
            discounts: Vec::new(),
            authorized_shops: vec![shop, 900_100, 900_101],
        }
    }
}

/// A running sandbox (stops when dropped).
pub struct Sandbox {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Sandbox {
    /// Starts on 127.0.0.1 with a free port.
    pub async fn start(config: SandboxConfig) -> anyhow::Result<Sandbox> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        Self::start_on(config, listener).await
    }

    /// Starts on an already bound listener.
    pub async fn start_on(config: SandboxConfig, listener: TcpListener) -> anyhow::Result<Sandbox> {
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(config));
        let (stop, stopped) = oneshot::channel::<()>();
        let app = router(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "shopee sandbox stopped with an error");
            }
        });
        Ok(Sandbox {
            shared,
            addr,
            stop: Some(stop),
            task,
        })
    }

    /// `http://127.0.0.1:PORT`, the Shopee host to configure in the client.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving and waits for in-flight requests.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.shared.lock()
    }

    // ----- shops and tokens -----

    /// Creates (or re-kinds) a shop.
    pub fn seed_shop(&self, shop: SeedShop) -> Result<()> {
        self.lock().seed_shop(&shop)
    }

    /// A single-use authorization code for `shop_id` (valid 10 minutes), as after the seller's consent.
    pub fn authorize_shop(&self, shop_id: u64) -> String {
        self.lock().authorize_shop(shop_id)
    }

    /// Seeds an authorized shop directly: a new (access_token, refresh_token) pair.
    pub fn issue_tokens(&self, shop_id: u64) -> (String, String) {
        self.lock().issue_tokens(shop_id)
    }

    /// Makes every access token of the shop invalid now (the refresh token stays valid).
    pub fn expire_access_token(&self, shop_id: u64) -> Result<()> {
        self.lock().expire_access_token(shop_id)
    }

    // ----- catalog -----

    pub fn seed_item(&self, item: SeedItem) -> Result<()> {
        self.lock().seed_item(&item)
    }

    pub fn seed_items(&self, items: impl IntoIterator<Item = SeedItem>) -> Result<()> {
        let mut inner = self.lock();
        items.into_iter().try_for_each(|i| inner.seed_item(&i))
    }

    /// Injects permanent failures for an item: deleted, price locked, promotion-reserved stock.
    pub fn set_item_flags(&self, shop_id: u64, item_id: u64, flags: ItemFlags) -> Result<()> {
        self.lock().set_item_flags(shop_id, item_id, &flags)
    }

    pub fn item(&self, shop_id: u64, item_id: u64) -> Option<ItemView> {
        self.lock().item_view(shop_id, item_id)
    }

    /// Every image taken by `media_space/upload_image`, in upload order.
    pub fn uploaded_images(&self) -> Vec<UploadedImage> {
        let mut images: Vec<UploadedImage> = self.lock().images.values().cloned().collect();
        // Ids end in a growing hex sequence of fixed width.
        images.sort_by(|a, b| a.image_id.cmp(&b.image_id));
        images
    }

    /// The latest KML `shop_id` uploaded through `logistics/upload_serviceable_polygon` (Shopee keeps the latest).
    pub fn polygon(&self, shop_id: u64) -> Option<String> {
        self.lock().polygons.get(&shop_id).cloned()
    }

    /// The model's original price (model 0 for items without variations).
    pub fn price(&self, shop_id: u64, item_id: u64, model_id: u64) -> Option<f64> {
        self.model(shop_id, item_id, model_id).map(|m| m.original_price)
    }

    /// The model's total seller stock over all locations.
    pub fn stock(&self, shop_id: u64, item_id: u64, model_id: u64) -> Option<i64> {
        self.model(shop_id, item_id, model_id).map(|m| m.total_stock)
    }

    pub fn model(&self, shop_id: u64, item_id: u64, model_id: u64) -> Option<ModelView> {
        self.item(shop_id, item_id)?
            .models
            .into_iter()
            .find(|m| m.model_id == model_id)
    }

    // ----- orders and pushes -----

    /// Seeds an order and (with `push_on_seed`) pushes its status; waits until the push is delivered or lost.
    pub async fn seed_order(&self, order: SeedOrder) -> Result<()> {
        self.lock().seed_order(&order)?;
        self.shared.deliver_outgoing().await;
        Ok(())
    }

    pub async fn seed_orders(&self, orders: impl IntoIterator<Item = SeedOrder>) -> Result<()> {
        {
            let mut inner = self.lock();
            for o in orders {
                inner.seed_order(&o)?;
            }
        }
        self.shared.deliver_outgoing().await;
        Ok(())
    }

    /// Changes an order's status and pushes it (code 3); waits until the push is delivered or lost.
    pub async fn set_order_status(&self, shop_id: u64, order_sn: &str, status: &str) -> Result<()> {
        self.lock().set_order_status(shop_id, order_sn, status)?;
        self.shared.deliver_outgoing().await;
        Ok(())
    }

    pub fn order(&self, shop_id: u64, order_sn: &str) -> Option<OrderView> {
        self.lock().order_view(shop_id, order_sn)
    }

    /// The order's logistics status (LOGISTICS_NOT_START, ..._REQUEST_CREATED, ..._PICKUP_DONE, ...).
    pub fn logistics_status(&self, shop_id: u64, order_sn: &str) -> Option<String> {
        self.order(shop_id, order_sn).map(|o| o.logistics_status)
    }

    /// The next `n` pushes are not sent: they go straight to `get_lost_push_message`.
    pub fn drop_next_pushes(&self, n: u32) {
        self.lock().drop_next += n;
    }

    /// The next `n` pushes are neither sent nor kept for `get_lost_push_message` (a push lost for longer than the
    /// 3 days Shopee keeps it): only an order-list scan finds such an order.
    pub fn forget_next_pushes(&self, n: u32) {
        self.lock().forget_next += n;
    }

    /// Every push produced so far, with its delivery state.
    pub fn pushes(&self) -> Vec<PushRecord> {
        self.lock().pushes.clone()
    }

    /// Waits for pushes still being sent in the background (after an API call changed an order).
    pub async fn flush_pushes(&self) {
        self.shared.deliver_outgoing().await;
    }

    // ----- discounts -----

    /// Seeds a discount bypassing the creation rules (e.g. already ongoing). Returns its id.
    pub fn seed_discount(&self, discount: SeedDiscount) -> Result<u64> {
        self.lock().seed_discount(&discount)
    }

    pub fn discount(&self, shop_id: u64, discount_id: u64) -> Option<DiscountView> {
        self.lock().discount_view(shop_id, discount_id)
    }

    pub fn discounts(&self, shop_id: u64) -> Vec<DiscountView> {
        let inner = self.lock();
        let ids: Vec<u64> = inner
            .shops
            .get(&shop_id)
            .map(|s| s.discounts.keys().copied().collect())
            .unwrap_or_default();
        ids.into_iter()
            .filter_map(|id| inner.discount_view(shop_id, id))
            .collect()
    }

    // ----- rate limits, faults, journal -----

    /// At most `per_second` calls per second (sliding window) for the shop (None = each shop separately) and the
    /// API (None = all APIs together); beyond it the answer is `error_rate_limit`. 0 removes the limit.
    pub fn set_rate_limit(&self, shop_id: Option<u64>, api: Option<String>, per_second: u32) {
        self.lock().set_rate_limit(shop_id, api, per_second);
    }

    pub fn clear_rate_limits(&self) {
        self.lock().rate_rules.clear();
    }

    pub fn inject_fault(&self, fault: Fault) {
        self.lock().inject_fault(fault);
    }

    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Every Shopee API call so far, oldest first.
    pub fn journal(&self) -> Vec<JournalEntry> {
        self.lock().journal.clone()
    }

    pub fn clear_journal(&self) {
        self.lock().journal.clear();
    }

    /// How many calls the journal holds for `api` (either `/api/v2/x/y` or `x/y`).
    pub fn calls_to(&self, api: &str) -> usize {
        let api = state::normalize_api(api);
        self.lock().journal.iter().filter(|e| e.api == api).count()
    }

    /// Seeds everything in `seed` (items, orders, discounts, authorized shops).
    pub async fn apply_seed(&self, seed: &SeedFile) -> anyhow::Result<()> {
        admin::apply_seed(&self.shared, seed).await
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.abort();
    }
}
