//! Keeps the `hubs` table (hub <-> shop, read by every worker) equal to the Hub Config Service: at start, then every
//! minute. A failed refresh keeps the table as it is. Each snapshot fetched goes to the serviceable area upload
//! (`polygons.rs`) through a watch channel.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use hub_config::Snapshot;
use product_mapping::{HubLocation, Hubs};
use tokio::sync::watch;

/// How often the hubs are fetched again.
pub const EVERY: Duration = Duration::from_secs(60);

pub struct HubSync {
    hubs: Hubs,
    client: reqwest::Client,
    base_url: String,
    snapshots: watch::Sender<Option<Arc<Snapshot>>>,
}

impl HubSync {
    pub fn new(
        hubs: Hubs,
        base_url: String,
        snapshots: watch::Sender<Option<Arc<Snapshot>>>,
    ) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .context("cannot build the Hub Config client")?;
        Ok(Self {
            hubs,
            client,
            base_url,
            snapshots,
        })
    }

    /// One refresh: fetch, store the hubs, hand the snapshot on (even when storing failed: the upload reads the
    /// snapshot, not the table).
    pub async fn run_once(&self) -> anyhow::Result<()> {
        let snapshot = hub_config::fetch(&self.client, &self.base_url)
            .await
            .map_err(|e| anyhow::anyhow!("Hub Config Service unavailable; hubs table unchanged: {e}"))?;
        let locations = locations(&snapshot);
        let stored = self.hubs.upsert(&locations).await;
        self.snapshots.send_replace(Some(Arc::new(snapshot)));
        stored.context("storing hubs failed")?;
        tracing::debug!(
            hubs = locations.len(),
            "hubs synchronised from the Hub Config Service"
        );
        Ok(())
    }
}

/// The hubs of a snapshot as rows of `hubs`; a hub whose ids do not parse is skipped (and logged).
fn locations(snapshot: &Snapshot) -> Vec<HubLocation> {
    let mut locations = Vec::new();
    for hub in snapshot.by_shop.values().flatten() {
        let parsed = domain::HubId::parse(&hub.hub_id)
            .map_err(|e| e.to_string())
            .and_then(|id| {
                domain::ShopId::new(hub.shop_id)
                    .map(|s| (id, s))
                    .map_err(|e| e.to_string())
            });
        match parsed {
            Ok((hub_id, shop_id)) => locations.push(HubLocation {
                hub_id,
                shop_id,
                location_id: None,
                active: hub.active,
            }),
            Err(e) => tracing::warn!(hub.id = %hub.hub_id, problem = %e, "hub from Hub Config skipped"),
        }
    }
    locations
}
