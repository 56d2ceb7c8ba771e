//! Reconciliation, so a lost push never loses an order: Shopee's lost-push queue (stored, then confirmed) and an
//! order-list scan by update_time per shop. Orders already known in the same status are skipped, so they cost no
//! detail call. One replica at a time (PostgreSQL advisory lock).

use chrono::Utc;
use domain::{OrderSn, ShopId};
use pg_enum::Text;
use push_inbox::{Inbox, Push, PushCode, Source};
use shopee_client::ShopeeClient;
use shopee_client::api::order::{GetOrderListRequest, OrderListField, OrderStatus, TimeRangeField};
use sqlx::PgPool;

use crate::intake::IntakeState;

/// Advisory lock key: "reconcile" in ASCII.
const LOCK_KEY: i64 = 0x7265_636f_6e63_696c;
/// Re-read this much before the cursor: Shopee's update_time index is not instantaneous.
const OVERLAP_SECS: i64 = 300;
/// On the first run for a shop, look back this far.
const FIRST_LOOKBACK_SECS: i64 = 3 * 24 * 3600;
const MAX_WINDOW_SECS: i64 = 15 * 24 * 3600 - 60;

#[derive(Clone)]
pub struct Reconciler {
    pub pool: PgPool,
    pub inbox: Inbox,
    pub shopee: ShopeeClient,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub lost_pushes: usize,
    pub listed: usize,
    pub enqueued: usize,
}

impl Reconciler {
    /// One cycle; `None` when another replica holds the lock.
    pub async fn run_once(&self) -> anyhow::Result<Option<Report>> {
        let mut lock_conn = self.pool.acquire().await?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(LOCK_KEY)
            .fetch_one(&mut *lock_conn)
            .await?;
        if !locked {
            return Ok(None);
        }
        let result = self.cycle().await;
        let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(LOCK_KEY)
            .execute(&mut *lock_conn)
            .await;
        result.map(Some)
    }

    async fn cycle(&self) -> anyhow::Result<Report> {
        let mut report = Report {
            lost_pushes: self.lost_pushes().await?,
            ..Report::default()
        };
        let shops: Vec<i64> = sqlx::query_scalar("SELECT shop_id FROM shop_tokens ORDER BY shop_id")
            .fetch_all(&self.pool)
            .await?;
        for shop in shops.into_iter().filter_map(|s| ShopId::from_i64(s).ok()) {
            match self.scan_shop(shop).await {
                Ok((listed, enqueued)) => {
                    report.listed += listed;
                    report.enqueued += enqueued;
                }
                Err(e) => {
                    tracing::warn!(shop.id = shop.get(), error = %e, "order-list reconciliation failed for shop")
                }
            }
        }
        metrics::counter!("reconcile_enqueued_total", "source" => "order_list")
            .increment(report.enqueued as u64);
        metrics::counter!("reconcile_enqueued_total", "source" => "lost_push")
            .increment(report.lost_pushes as u64);
        tracing::info!(
            lost_pushes = report.lost_pushes,
            listed = report.listed,
            enqueued = report.enqueued,
            "reconciliation cycle done"
        );
        Ok(report)
    }

    /// Stores every lost push in the inbox, then confirms the page.
    async fn lost_pushes(&self) -> anyhow::Result<usize> {
        let mut stored = 0;
        for _ in 0..50 {
            let page = self.shopee.get_lost_push_message().await?;
            for msg in &page.push_message_list {
                let code = PushCode::from(i32::try_from(msg.code).unwrap_or(i32::MAX));
                match Push::from_lost(msg.shop_id, code, &msg.push_data(), Some(msg.timestamp)) {
                    Ok(push) => {
                        self.inbox.insert(&push, Source::LostPush, None).await?;
                        stored += 1;
                    }
                    Err(e) => tracing::warn!(error = %e, code = code.get(), "unparseable lost push skipped"),
                }
            }
            match page.last_message_id {
                Some(last) if !page.push_message_list.is_empty() => {
                    self.shopee.confirm_consumed_lost_push_message(last).await?;
                }
                _ => {}
            }
            if !page.has_next_page {
                break;
            }
        }
        Ok(stored)
    }

    /// Lists the shop's orders updated since its cursor; enqueues those we do not know in that status.
    async fn scan_shop(&self, shop: ShopId) -> anyhow::Result<(usize, usize)> {
        let now = Utc::now().timestamp();
        let cursor: Option<i64> =
            sqlx::query_scalar("SELECT last_update_time FROM reconcile_cursors WHERE shop_id = $1")
                .bind(shop.as_i64())
                .fetch_optional(&self.pool)
                .await?;
        let time_from = cursor
            .map_or(now - FIRST_LOOKBACK_SECS, |c| c - OVERLAP_SECS)
            .max(now - MAX_WINDOW_SECS);
        let (mut listed, mut enqueued) = (0, 0);
        let mut page_cursor = String::new();
        for _ in 0..100 {
            let req = GetOrderListRequest {
                time_range_field: TimeRangeField::UpdateTime,
                time_from,
                time_to: now,
                page_size: 100,
                cursor: page_cursor.clone(),
                order_status: None,
                // Without it Shopee answers order numbers only, and no order could be compared or enqueued.
                response_optional_fields: vec![OrderListField::OrderStatus],
            };
            let page = self.shopee.get_order_list(shop, &req).await?;
            for entry in &page.order_list {
                listed += 1;
                let Some(status) = entry.order_status else {
                    continue;
                };
                if self.enqueue_if_unknown(shop, &entry.order_sn, status).await? {
                    enqueued += 1;
                }
            }
            if !page.more || page.next_cursor.is_empty() {
                break;
            }
            page_cursor = page.next_cursor.clone();
        }
        sqlx::query(
            "INSERT INTO reconcile_cursors (shop_id, last_update_time) VALUES ($1, $2)
             ON CONFLICT (shop_id) DO UPDATE SET last_update_time = EXCLUDED.last_update_time, updated_at = now()",
        )
        .bind(shop.as_i64())
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok((listed, enqueued))
    }

    async fn enqueue_if_unknown(
        &self,
        shop: ShopId,
        sn: &OrderSn,
        status: OrderStatus,
    ) -> anyhow::Result<bool> {
        let known: Option<(IntakeState, Option<Text<OrderStatus>>)> = sqlx::query_as(
            "SELECT intake_state, shopee_status FROM orders WHERE shop_id = $1 AND order_sn = $2",
        )
        .bind(shop.as_i64())
        .bind(sn.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let already = match known {
            Some((state, _)) if state != IntakeState::Received => true,
            Some((_, Some(Text(seen)))) => seen == status,
            _ => false,
        };
        if already {
            return Ok(false);
        }
        let push = Push::order_status(shop, sn.clone(), status);
        Ok(self.inbox.insert(&push, Source::OrderList, None).await? == push_inbox::Stored::New)
    }
}
