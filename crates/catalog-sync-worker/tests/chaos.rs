//! Chaos scenarios of catalog sync (quality-bar.md R6, R7, R8, R12), run by `cargo xtask chaos`.
//!
//! Each runs the REAL `catalog-sync-worker` binary as a separate process against the Pub/Sub emulator, Redis,
//! PostgreSQL and the Shopee sandbox over HTTP; faults, item flags and the call journal go through the sandbox's
//! admin API (`/_sandbox/...`). Shopee's values are read from the sandbox's state. Sizes come from
//! `CHAOS_PROFILE` (`short`: each scenario well under 90 s; `full`: the quality-bar sizes). One alone:
//! `CHAOS_PROFILE=short cargo nextest run -p catalog-sync-worker --test chaos --run-ignored only --no-capture -E 'test(/^r6_/)'`
//! (R12 stops the machine's Redis: only under the exclusive servers lock).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
#[path = "it/support.rs"]
mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use domain::mapping::{MappingSource, ProductMapping};
use domain::{ItemId, ModelId, ShopId, Sku};
use rand::seq::SliceRandom as _;
use shopee_sandbox::{Fault, ItemFlags, JournalEntry, SeedItem, SeedModel};
use test_support::Proc;
use test_support::chaos::{Profile, Report, RestoreServers, start_redis, stop_redis};

use crate::support::{PARTNER_ID, PARTNER_KEY, Rig, sent_values};

/// `support::TOKEN_KEY` (`[7; 32]`) in base64, as `TOKEN_ENCRYPTION_KEY`.
const TOKEN_KEY_B64: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";

// ----- the rig around the real binary -----

/// The sandbox's admin API over HTTP.
struct Admin {
    base: String,
    http: reqwest::Client,
}

impl Admin {
    fn new(rig: &Rig) -> Self {
        Self {
            base: format!("{}/_sandbox", rig.sandbox.base_url()),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
        }
    }

    async fn post(&self, path: &str, body: &impl serde::Serialize) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "POST {path}: {}", resp.status());
    }

    async fn fault(&self, fault: &Fault) {
        self.post("/faults", fault).await;
    }

    async fn flags(&self, shop: u64, item: u64, flags: &ItemFlags) {
        self.post(&format!("/shops/{shop}/items/{item}/flags"), flags)
            .await;
    }

    /// Every call the shop made, oldest first.
    async fn journal(&self, shop: u64) -> Vec<JournalEntry> {
        self.http
            .get(format!("{}/journal?shop_id={shop}", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

fn is_update(e: &JournalEntry) -> bool {
    e.api.ends_with("/product/update_price") || e.api.ends_with("/product/update_stock")
}

/// The rig (database, sandbox, shop, topics) plus the environment the binary runs with.
struct Stack {
    rig: Rig,
    admin: Admin,
    env: Vec<(&'static str, String)>,
    scenario: &'static str,
    starts: u32,
}

/// One running worker process.
struct WorkerProc {
    proc: Proc,
    port: u16,
    log: PathBuf,
}

impl WorkerProc {
    fn ready_url(&self) -> String {
        format!("http://127.0.0.1:{}/health/ready", self.port)
    }

    fn running(&mut self) -> bool {
        matches!(self.proc.child.try_wait(), Ok(None))
    }

    /// The sum of a counter over its labels, from this process' `/metrics`; 0 when it cannot be asked.
    async fn counter(&self, name: &str) -> u64 {
        let Ok(resp) = reqwest::get(format!("http://127.0.0.1:{}/metrics", self.port)).await else {
            return 0;
        };
        let text = resp.text().await.unwrap_or_default();
        text.lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }

    /// Messages this process recorded so far (every kind and outcome).
    async fn handled(&self) -> u64 {
        self.counter("catalog_sync_events_total").await
    }

    /// SIGKILL, and waits until it is gone.
    fn kill(&mut self) {
        self.proc.signal("KILL");
        assert!(
            self.proc.wait_exit(Duration::from_secs(10)).is_some(),
            "worker still alive after SIGKILL"
        );
    }

    /// SIGTERM and a clean exit.
    fn stop(mut self) {
        self.proc.signal("TERM");
        let status = self.proc.wait_exit(Duration::from_secs(20));
        assert!(
            status.is_some_and(|s| s.success()),
            "worker did not exit cleanly on SIGTERM ({status:?}); log {}",
            self.log.display()
        );
    }
}

impl Stack {
    /// `rate`: SHOPEE_RATE_LIMIT_PER_SHOP; `extra`: more variables for the binary.
    async fn new(scenario: &'static str, rate: u32, extra: &[(&'static str, &str)]) -> Stack {
        let rig = Rig::new(rate).await;
        let admin = Admin::new(&rig);
        let mut env: Vec<(&'static str, String)> = vec![
            ("DATABASE_URL", rig.db.url.clone()),
            ("REDIS_URL", test_support::redis_url()),
            ("SHOPEE_API_BASE_URL", rig.sandbox.base_url()),
            ("SHOPEE_PARTNER_ID", PARTNER_ID.to_string()),
            ("SHOPEE_PARTNER_KEY", PARTNER_KEY.to_owned()),
            ("SHOPEE_RATE_LIMIT_PER_SHOP", rate.to_string()),
            ("TOKEN_ENCRYPTION_KEY", TOKEN_KEY_B64.to_owned()),
            ("PUBSUB_PROJECT_ID", rig.pubsub.project_id.clone()),
            ("PUBSUB_EMULATOR_HOST", test_support::pubsub_emulator_host()),
            ("PRICE_UPDATE_TOPIC", "price".to_owned()),
            ("INVENTORY_UPDATE_TOPIC", "inventory".to_owned()),
            ("PRICE_UPDATE_SUBSCRIPTION", "price-sub".to_owned()),
            ("INVENTORY_UPDATE_SUBSCRIPTION", "inventory-sub".to_owned()),
            ("HUB_CONFIG_URL", "http://127.0.0.1:9".to_owned()),
            ("CATALOG_GRAPHQL_URL", "http://127.0.0.1:9/graphql".to_owned()),
            ("CONTENT_SYNC_INTERVAL_SECS", "0".to_owned()),
            ("CATALOG_FLUSH_WINDOW_MS", "200".to_owned()),
            ("RUST_LOG", "info".to_owned()),
        ];
        env.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        Stack {
            rig,
            admin,
            env,
            scenario,
            starts: 0,
        }
    }

    /// Starts a worker process (logs to a file) and waits until it is ready.
    async fn start_worker(&mut self) -> WorkerProc {
        self.starts += 1;
        let port = test_support::free_port();
        let log = std::env::temp_dir().join(format!(
            "catalog-chaos-{}-{}-{}.log",
            self.scenario, self.rig.shop, self.starts
        ));
        let file = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_catalog-sync-worker"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HTTP_ADDR", format!("127.0.0.1:{port}"))
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file);
        let child = cmd.spawn().expect("start catalog-sync-worker");
        let worker = WorkerProc {
            proc: Proc {
                child,
                name: "catalog-sync-worker".into(),
            },
            port,
            log,
        };
        test_support::wait_for_status(&worker.ready_url(), 200, Duration::from_secs(30)).await;
        worker
    }

    async fn journal(&self) -> Vec<JournalEntry> {
        self.admin.journal(self.rig.shop).await
    }

    async fn update_calls(&self) -> Vec<JournalEntry> {
        self.journal().await.into_iter().filter(is_update).collect()
    }

    async fn dead_letters(&self) -> Vec<dead_letters::DeadLetter> {
        self.rig.dead_letters().await
    }

    /// State rows not at their newest version yet (pending, or parked when `parked_too`).
    async fn not_applied(&self) -> i64 {
        support::not_applied(&self.rig.db.pool).await
    }
}

// ----- values that tell which SKU and version they are -----

/// Price (centavos) of version `v` of SKU `n`; stock likewise. Both decode back to (n, v) from what Shopee got.
fn price(n: usize, v: u64) -> i64 {
    100_000 * (n as i64 + 1) + v as i64
}
fn stock(n: usize, v: u64) -> i64 {
    1_000 * (n as i64 + 1) + v as i64
}
/// (SKU index, version) of a value sent by an update call.
fn decode(is_price: bool, value: i64) -> (usize, i64) {
    if is_price {
        ((value / 100_000 - 1) as usize, value % 100_000)
    } else {
        ((value / 1_000 - 1) as usize, value % 1_000)
    }
}

/// A stale overwrite: a successful call that sets a model to a lower version than one it was set to before.
fn stale_overwrites(calls: &[JournalEntry]) -> u64 {
    let mut last: HashMap<(u64, u64, bool), i64> = HashMap::new();
    let mut stale = 0;
    for e in calls.iter().filter(|e| e.error.is_empty() && is_update(e)) {
        let item = e.request["item_id"].as_u64().unwrap_or(0);
        let is_price = e.api.ends_with("update_price");
        for (model, value) in sent_values(e) {
            let (_, version) = decode(is_price, value);
            let prev = last.entry((item, model, is_price)).or_insert(0);
            if version < *prev {
                stale += 1;
            }
            *prev = version.max(*prev);
        }
    }
    stale
}

/// Values sent again for a model that already had them (harmless: absolute values).
fn repeated_values(calls: &[JournalEntry]) -> u64 {
    let mut seen: HashSet<(u64, u64, bool, i64)> = HashSet::new();
    let mut repeated = 0;
    for e in calls.iter().filter(|e| e.error.is_empty() && is_update(e)) {
        let item = e.request["item_id"].as_u64().unwrap_or(0);
        let is_price = e.api.ends_with("update_price");
        for (model, value) in sent_values(e) {
            if !seen.insert((item, model, is_price, value)) {
                repeated += 1;
            }
        }
    }
    repeated
}

/// The largest number of calls in any window of `window` length.
fn peak(calls: &[JournalEntry], window: Duration) -> u64 {
    support::max_in_window(calls, window) as u64
}

/// `versions` price and stock updates of every SKU 0..skus, shuffled (versions arrive out of order).
fn updates(rig: &Rig, skus: usize, versions: u64) -> Vec<(bool, Vec<u8>)> {
    let mut out = Vec::with_capacity(skus * versions as usize * 2);
    for n in 0..skus {
        for v in 1..=versions {
            out.push((true, rig.price_event(&rig.sku(n), price(n, v), v)));
            out.push((false, rig.stock_event(&rig.sku(n), stock(n, v), v)));
        }
    }
    out.shuffle(&mut rand::rng());
    out
}

/// SKUs (of `skus`, at `map`'s ids) whose Shopee price or stock is not version `v`'s.
fn not_newest(rig: &Rig, map: &HashMap<String, (u64, u64)>, skus: usize, v: u64) -> u64 {
    (0..skus)
        .filter(|&n| {
            let (item, model) = map[&rig.sku(n)];
            rig.sandbox.model(rig.shop, item, model).is_none_or(|m| {
                ((m.original_price * 100.0).round() as i64, m.total_stock) != (price(n, v), stock(n, v))
            })
        })
        .count() as u64
}

/// Polls `check` every 200 ms until it holds or `timeout` passes; how long it took, None on timeout.
async fn wait_until<F, Fut>(timeout: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return Some(started.elapsed());
        }
        if started.elapsed() >= timeout {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Publishes `messages` in `chunks` evenly spread over `over`.
async fn publish_spread(rig: &Rig, messages: Vec<(bool, Vec<u8>)>, over: Duration, chunks: usize) {
    let per = messages.len().div_ceil(chunks.max(1)).max(1);
    let pause = over / chunks.max(1) as u32;
    for chunk in messages.chunks(per) {
        let sent = Instant::now();
        rig.publish(chunk.to_vec()).await;
        tokio::time::sleep(pause.saturating_sub(sent.elapsed())).await;
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

// ----- R6 -----

/// R6: Shopee answers 429, then `error_rate_limit`, then 503 for a window while 5,000 price and stock updates on 500
/// SKUs arrive (short: 1,000 on 100 SKUs, 10 s).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "chaos scenario: cargo xtask chaos"]
async fn r6_throttling_and_outage_window_during_price_and_stock_updates() {
    let profile = Profile::from_env();
    let (items, window) = profile.pick((20, Duration::from_secs(10)), (100, Duration::from_secs(30)));
    let (skus, versions, rate) = (items * 5, 5u64, 20u32);
    let mut report = Report::new(
        "R6",
        &format!(
            "Shopee 429 / error_rate_limit / 503 for {} during {} price+stock updates on {skus} SKUs",
            secs(window),
            skus * versions as usize * 2
        ),
    );
    let mut stack = Stack::new("r6", rate, &[]).await;
    let map = stack.rig.seed_catalog(items, 5).await;
    let worker = stack.start_worker().await;
    report.did(format!(
        "started the worker binary (pid {}, SHOPEE_RATE_LIMIT_PER_SHOP={rate}) on {items} items x 5 models",
        worker.proc.pid()
    ));
    let all = updates(&stack.rig, skus, versions);
    report.count("updates sent", all.len() as u64);
    report.count("SKUs", skus as u64);
    let third = window / 3;
    let faults = [
        ("HTTP 429", Fault::http_429()),
        ("HTTP 200 error_rate_limit", Fault::rate_limit()),
        ("HTTP 503 error_server", Fault::server_error(503)),
    ];
    let t0 = Instant::now();
    let injecting = async {
        for (what, fault) in faults {
            stack
                .admin
                .fault(&fault.shop(stack.rig.shop).for_duration(third))
                .await;
            report.did(format!("sandbox answers {what} for {}", secs(third)));
            tokio::time::sleep(third).await;
        }
    };
    tokio::join!(publish_spread(&stack.rig, all, window, 10), injecting);
    let recovered = Instant::now();
    report.did(format!(
        "fault window over after {}; every update published",
        secs(recovered - t0)
    ));
    let converged = wait_until(Duration::from_secs(90), || async {
        not_newest(&stack.rig, &map, skus, versions) == 0
    })
    .await;
    match converged {
        Some(d) => report.did(format!(
            "every SKU at its newest value {} after recovery",
            secs(d)
        )),
        None => report.did("NOT every SKU at its newest value 90 s after recovery"),
    }
    let journal = stack.journal().await;
    let faulted = journal.iter().filter(|e| !e.error.is_empty()).count() as u64;
    let limit_with_margin = (f64::from(rate) * 1.05).floor() as u64;
    let peak1 = peak(&journal, Duration::from_secs(1));
    let peak2 = peak(&journal, Duration::from_secs(2));
    let stale = stale_overwrites(&journal);
    let lagging = not_newest(&stack.rig, &map, skus, versions);
    let dead = stack.dead_letters().await.len() as u64;
    report.count("Shopee calls", journal.len() as u64);
    report.count("calls answered with a fault", faulted);
    report.count("peak calls in 1 s", peak1);
    report.count("peak calls in 2 s", peak2);
    report.count("calls above the limit", peak1.saturating_sub(limit_with_margin));
    report.count("stale overwrites", stale);
    report.count("SKUs not at newest", lagging);
    report.count("dead-lettered transient", dead);
    report.count(
        "seconds to converge after recovery",
        converged.map_or(u64::MAX, |d| d.as_secs_f64().ceil() as u64),
    );
    report.check(
        "the fault window was exercised (calls answered with a fault)",
        faulted > 0,
    );
    report.check(
        "100% of SKUs at their newest value within 90 s of recovery",
        converged.is_some() && lagging == 0,
    );
    report.check("0 stale overwrites", stale == 0);
    report.check(
        format!(
            "call rate never above the configured limit +5% ({peak1} in the busiest second, limit {rate}/s)"
        ),
        peak1 <= limit_with_margin,
    );
    report.check("0 transient errors dead-lettered", dead == 0);
    report.check("every state row applied", stack.not_applied().await == 0);
    worker.stop();
    report.finish();
}

// ----- R7 -----

/// R7: Shopee refuses 1% of the updates for good (deleted item, stock under a promotion's reserve, price locked by
/// a promotion); then the operator lifts half of the causes and redrives every dead letter.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "chaos scenario: cargo xtask chaos"]
async fn r7_permanent_refusals_parked_after_one_attempt_and_redriven() {
    let profile = Profile::from_env();
    let k = profile.pick(1usize, 5);
    // 95k items of 5 models and 25k single-model items: 500k SKUs, 1,000k updates (one price, one stock each).
    let (multi, singles) = (95 * k, 25 * k);
    let skus = multi * 5 + singles;
    let rate = 50u32;
    let mut report = Report::new(
        "R7",
        &format!(
            "permanent refusals in 1% of {} updates on {skus} SKUs; half of the causes lifted, then every dead letter redriven",
            skus * 2
        ),
    );
    let mut stack = Stack::new("r7", rate, &[]).await;
    let rig = &stack.rig;
    let mut map = rig.seed_catalog(multi, 5).await;
    let single_items: Vec<SeedItem> = (0..singles)
        .map(|i| SeedItem::single(rig.shop, 100_000 + i as u64, &rig.sku(multi * 5 + i), 1.0, 0))
        .collect();
    rig.sandbox.seed_items(single_items).unwrap();
    let single_maps: Vec<ProductMapping> = (0..singles)
        .map(|i| ProductMapping {
            sku: Sku::parse(&rig.sku(multi * 5 + i)).unwrap(),
            shop_id: ShopId::new(rig.shop).unwrap(),
            item_id: ItemId::new(100_000 + i as u64).unwrap(),
            model_id: ModelId::NONE,
            outlet_item_id: None,
        })
        .collect();
    rig.mappings
        .upsert(&single_maps, MappingSource::Manual)
        .await
        .unwrap();
    for i in 0..singles {
        map.insert(rig.sku(multi * 5 + i), (100_000 + i as u64, 0));
    }
    // 1%: 2k deleted single-model items (price and stock refused), 3k models under a promotion's reserve (stock
    // refused), 3k models with a locked price (price refused). A reserve and a lock share an item (models 1 and 3),
    // so the same call also carries models that apply.
    let shop = rig.shop;
    let mut refused: BTreeMap<(usize, bool), &'static str> = BTreeMap::new();
    let mut causes: Vec<(u64, ItemFlags, usize)> = Vec::new();
    for i in 0..2 * k {
        let n = multi * 5 + i * 7 % singles;
        let item = map[&rig.sku(n)].0;
        // What each dead letter's reason must say: the meaning of Shopee's documented failed_reason.
        refused.insert((n, true), "deleted");
        refused.insert((n, false), "deleted");
        causes.push((
            item,
            ItemFlags {
                deleted: Some(true),
                ..Default::default()
            },
            n,
        ));
    }
    for i in 0..3 * k {
        let n = (i * 31 % multi) * 5 + 1;
        let (item, model) = map[&rig.sku(n)];
        refused.insert((n, false), "reserved by promotions");
        let flags = ItemFlags {
            promotion_reserved: Some(1_000_000_000),
            model_id: Some(model),
            ..Default::default()
        };
        causes.push((item, flags, n));
    }
    for i in 0..3 * k {
        let n = (i * 31 % multi) * 5 + 3;
        let (item, model) = map[&rig.sku(n)];
        refused.insert((n, true), "price locked by promotion");
        let flags = ItemFlags {
            price_locked: Some(true),
            model_id: Some(model),
            ..Default::default()
        };
        causes.push((item, flags, n));
    }
    for (item, flags, _) in &causes {
        stack.admin.flags(shop, *item, flags).await;
    }
    report.did(format!(
        "flagged at the sandbox: {} deleted items, {} models under a promotion reserve, {} locked prices ({} updates refused)",
        2 * k,
        3 * k,
        3 * k,
        refused.len()
    ));
    let worker = stack.start_worker().await;
    report.did(format!("started the worker binary (pid {})", worker.proc.pid()));
    let rig = &stack.rig;
    let all = updates(rig, skus, 1);
    report.count("updates sent", all.len() as u64);
    report.count("updates refused for good", refused.len() as u64);
    let started = Instant::now();
    rig.publish(all).await;
    let pool = rig.db.pool.clone();
    let state_rows = skus as i64 * 2;
    let settled = wait_until(Duration::from_secs(profile.pick(60, 180)), || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM catalog_sync_state WHERE state IN ('applied', 'parked')",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
            == state_rows
    })
    .await;
    report.did(match settled {
        Some(_) => format!(
            "every update applied or parked {} after publishing began",
            secs(started.elapsed())
        ),
        None => "NOT every update applied or parked in time".to_owned(),
    });
    // Let a wrong retry show up before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let dead = stack.dead_letters().await;
    let journal = stack.journal().await;
    let refused_key = |d: &dead_letters::DeadLetter| -> Option<(usize, bool)> {
        let sku = d.reference.as_deref()?.split('@').next()?;
        let n: usize = sku.rsplit('-').next()?.parse().ok()?;
        Some((n, d.kind.as_str() == "price_update"))
    };
    let parked: BTreeMap<(usize, bool), &dead_letters::DeadLetter> =
        dead.iter().filter_map(|d| Some((refused_key(d)?, d))).collect();
    let parked_right = refused
        .iter()
        .filter(|(key, code)| {
            parked
                .get(key)
                .is_some_and(|d| d.attempts == 1 && d.reason.contains(**code))
        })
        .count() as u64;
    // Calls carrying each refused (item, model, kind): exactly one attempt.
    let mut attempts: HashMap<(usize, bool), u64> = HashMap::new();
    for e in journal.iter().filter(|e| is_update(e)) {
        let is_price = e.api.ends_with("update_price");
        for (_, value) in sent_values(e) {
            let (n, _) = decode(is_price, value);
            if refused.contains_key(&(n, is_price)) {
                *attempts.entry((n, is_price)).or_default() += 1;
            }
        }
    }
    let retried = attempts.values().filter(|&&a| a != 1).count() as u64;
    let applied_ok = (0..skus)
        .flat_map(|n| [(n, true), (n, false)])
        .filter(|key| !refused.contains_key(key))
        .filter(|&(n, is_price)| {
            let (item, model) = map[&rig.sku(n)];
            let m = rig.sandbox.model(shop, item, model).unwrap();
            if is_price {
                (m.original_price * 100.0).round() as i64 == price(n, 1)
            } else {
                m.total_stock == stock(n, 1)
            }
        })
        .count() as u64;
    let should_apply = (skus * 2 - refused.len()) as u64;
    report.count("dead letters", dead.len() as u64);
    report.count("parked with Shopee's code after 1 attempt", parked_right);
    report.count("refused updates sent more than once", retried);
    report.count("other updates applied", applied_ok);
    report.check(
        "every refused update parked once, after 1 attempt, with Shopee's code in the reason",
        parked_right == refused.len() as u64 && dead.len() == refused.len(),
    );
    report.check("no refused update retried", retried == 0);
    report.check(
        format!(
            "the other {}% apply ({applied_ok} of {should_apply})",
            100 - refused.len() * 100 / (skus * 2)
        ),
        applied_ok == should_apply,
    );
    report.check("nothing blocks: every update settled in time", settled.is_some());

    // Redrive: lift the cause of every other refusal, then redrive every dead letter (as campaign-api does).
    let mut lifted: HashSet<usize> = HashSet::new();
    for (item, flags, n) in causes.iter().step_by(2) {
        let undo = ItemFlags {
            deleted: flags.deleted.map(|_| false),
            price_locked: flags.price_locked.map(|_| false),
            promotion_reserved: flags.promotion_reserved.map(|_| 0),
            model_id: flags.model_id,
        };
        stack.admin.flags(shop, *item, &undo).await;
        lifted.insert(*n);
    }
    for d in &dead {
        dead_letters::request_redrive(&rig.db.pool, d.id).await.unwrap();
    }
    report.did(format!(
        "lifted every other cause at the sandbox ({} of {} SKUs cleared), redrive requested for all {} dead letters",
        lifted.len(),
        causes.len(),
        dead.len()
    ));
    let ids: Vec<i64> = dead.iter().map(|d| d.id).collect();
    let redriven = wait_until(Duration::from_secs(60), || async {
        let mut done = 0;
        for id in &ids {
            let d = dead_letters::get(&rig.db.pool, *id).await.unwrap().unwrap();
            let key = refused_key(&d).unwrap();
            let value_ok = {
                let (item, model) = map[&rig.sku(key.0)];
                let m = rig.sandbox.model(shop, item, model).unwrap();
                if key.1 {
                    (m.original_price * 100.0).round() as i64 == price(key.0, 1)
                } else {
                    m.total_stock == stock(key.0, 1)
                }
            };
            let ok = if lifted.contains(&key.0) {
                d.status.as_str() == "redriven" && value_ok
            } else {
                d.status.as_str() == "parked" && d.attempts == 2
            };
            done += usize::from(ok);
        }
        done == ids.len()
    })
    .await;
    let after = stack.dead_letters().await;
    let applied_after = after.iter().filter(|d| d.status.as_str() == "redriven").count() as u64;
    let parked_again = after
        .iter()
        .filter(|d| {
            d.status.as_str() == "parked"
                && d.attempts == 2
                && d.redrive_count == 1
                && d.reason.contains("(error_")
        })
        .count() as u64;
    report.count("applied after redrive", applied_after);
    report.count("parked again after redrive", parked_again);
    report.check(
        "redrive: a lifted cause applies, the others are parked again on the same letter with the new reason",
        redriven.is_some() && after.len() == dead.len(),
    );
    report.check(
        "0 stale overwrites",
        stale_overwrites(&stack.journal().await) == 0,
    );
    worker.stop();
    report.finish();
}

// ----- R8 -----

/// A poison message of one of the shapes that fail validation, made distinct by `i`.
fn poison(i: usize) -> (bool, Vec<u8>) {
    let id = format!("poison-{i}");
    let body = match i % 8 {
        0 => format!("{{not json {i}"),
        1 => format!(
            r#"{{"event_id":"{id}","sku":"A","hub_id":"X","price":"0.00","occurred_at":"2026-11-25T12:00:00Z","version":1}}"#
        ),
        2 => format!(
            r#"{{"event_id":"{id}","sku":"A","hub_id":"X","price":12.9,"occurred_at":"2026-11-25T12:00:00Z","version":1}}"#
        ),
        3 => format!(
            r#"{{"event_id":"{id}","sku":"A","hub_id":"X","quantity":-1,"occurred_at":"2026-11-25T12:00:00Z","version":1}}"#
        ),
        4 => format!(
            r#"{{"event_id":"{id}","hub_id":"X","quantity":1,"occurred_at":"2026-11-25T12:00:00Z","version":1}}"#
        ),
        5 => format!(
            r#"{{"event_id":"{id}","sku":"bad sku!","hub_id":"X","quantity":1,"occurred_at":"2026-11-25T12:00:00Z","version":1}}"#
        ),
        6 => format!(
            r#"{{"event_id":"{id}","sku":"A","hub_id":"X","price":"1.00","occurred_at":"yesterday","version":1}}"#
        ),
        _ => format!(
            r#"{{"event_id":"{id}","sku":"A","hub_id":"X","quantity":1,"occurred_at":"2026-11-25T12:00:00Z","version":1,"extra":true}}"#
        ),
    };
    // Price-shaped bodies go to the price topic, the others to the inventory topic.
    (matches!(i % 8, 0 | 1 | 2 | 6), body.into_bytes())
}

/// R8: redelivery. 10% of the updates delivered twice, the worker frozen past the ack deadline (every message it
/// held comes back, its acks arrive late), SIGKILLed mid-stream and restarted; 1% poison messages.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "chaos scenario: cargo xtask chaos"]
async fn r8_redelivery_late_acks_sigkill_and_poison() {
    let profile = Profile::from_env();
    let items = profile.pick(20usize, 100);
    let kills = profile.pick(2usize, 5);
    let (skus, versions) = (items * 5, 5u64);
    let ack_deadline = 10u64;
    let mut report = Report::new(
        "R8",
        &format!(
            "Pub/Sub redelivery: {} updates on {skus} SKUs, 10% delivered twice, acks late, {kills} SIGKILLs mid-stream, 1% poison",
            skus * versions as usize * 2
        ),
    );
    // Short leases: messages a dead worker held come back after the ack deadline; items it had claimed after 15 s.
    let mut stack = Stack::new(
        "r8",
        100,
        &[
            ("CATALOG_ACK_EXTENSION_SECS", "10"),
            ("CATALOG_FLUSH_LEASE_SECS", "15"),
        ],
    )
    .await;
    let map = stack.rig.seed_catalog(items, 5).await;
    let mut messages = updates(&stack.rig, skus, versions);
    let valid = messages.len();
    let duplicates: Vec<_> = messages.iter().take(valid / 10).cloned().collect();
    let poison_count = valid / 100;
    messages.extend(duplicates);
    messages.extend((0..poison_count).map(poison));
    messages.shuffle(&mut rand::rng());
    report.count("updates sent", valid as u64);
    report.count("duplicates sent", (valid / 10) as u64);
    report.count("poison messages sent", poison_count as u64);
    let total = messages.len();
    let mut worker = stack.start_worker().await;
    report.did(format!(
        "worker binary started (pid {}); stream ack deadline {ack_deadline} s, claim lease 15 s",
        worker.proc.pid()
    ));
    // Publish in slices. The first one arrives while the worker is frozen (SIGSTOP) past the ack deadline: what it
    // had pulled is redelivered, and its acks come late. Then SIGKILL mid-stream, restart, for each next slice.
    let slices = kills + 2;
    let per = total.div_ceil(slices);
    let gap = profile.pick(Duration::from_secs(4), Duration::from_secs(8));
    let mut starts = 1u64;
    let mut handled = 0u64;
    for (i, slice) in messages.chunks(per).enumerate() {
        if i == 0 {
            let publishing = stack.rig.publish(slice.to_vec());
            let freezing = async {
                tokio::time::sleep(Duration::from_millis(150)).await;
                worker.proc.signal("STOP");
            };
            tokio::join!(publishing, freezing);
            report.did(format!(
                "worker frozen (SIGSTOP) for {} s while the first {} messages arrived: past the ack deadline they are redelivered, its acks come late",
                ack_deadline + 2,
                slice.len()
            ));
            tokio::time::sleep(Duration::from_secs(ack_deadline + 2)).await;
            worker.proc.signal("CONT");
            continue;
        }
        // The slice flows in over `gap`; the worker is SIGKILLed half-way through it, restarted once it is in.
        let publishing = publish_spread(&stack.rig, slice.to_vec(), gap, 8);
        if i > kills {
            publishing.await;
            continue;
        }
        let killing = async {
            tokio::time::sleep(gap / 2).await;
            handled += worker.handled().await;
            worker.kill();
        };
        tokio::join!(publishing, killing);
        worker = stack.start_worker().await;
        starts += 1;
        report.did(format!(
            "SIGKILL while slice {i} ({} messages) was flowing in; restarted (pid {})",
            slice.len(),
            worker.proc.pid()
        ));
    }
    report.did("every message published");
    let poison_parked = || async {
        let dead = stack.dead_letters().await;
        dead.iter()
            .map(|d| d.payload["data"].to_string())
            .collect::<HashSet<_>>()
            .len()
    };
    let pool = stack.rig.db.pool.clone();
    let state_rows = skus as i64 * 2;
    // Bounded, but generous: the emulator keeps handing messages to the streams of killed workers, each time for
    // an ack deadline, before a live stream gets them.
    let converged = wait_until(Duration::from_secs(profile.pick(90, 300)), || async {
        let rows: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM catalog_sync_state WHERE state = 'applied' AND newest_version = $1",
        )
        .bind(versions as i64)
        .fetch_one(&pool)
        .await
        .unwrap();
        rows == state_rows
            && not_newest(&stack.rig, &map, skus, versions) == 0
            && poison_parked().await == poison_count
    })
    .await;
    report.did(match converged {
        Some(d) => format!(
            "every SKU at its newest value and every poison parked {} after the last message",
            secs(d)
        ),
        None => "NOT converged in time".to_owned(),
    });
    handled += worker.handled().await;
    let journal = stack.journal().await;
    let dead = stack.dead_letters().await;
    let lost = not_newest(&stack.rig, &map, skus, versions);
    let distinct_poison = poison_parked().await;
    let non_poison = dead
        .iter()
        .filter(|d| d.payload.get("message_id").is_none())
        .count() as u64;
    let stale = stale_overwrites(&journal);
    // Newest values not applied: acknowledged and lost, or still unacknowledged at Pub/Sub? (The emulator keeps
    // handing a message to the streams of killed workers, an ack deadline at a time, before a live one gets it.)
    let running = worker.running();
    worker.stop();
    let missing: HashSet<(String, String)> =
        sqlx::query_as("SELECT sku, kind FROM catalog_sync_state WHERE newest_version <> $1")
            .bind(versions as i64)
            .fetch_all(&pool)
            .await
            .unwrap()
            .into_iter()
            .collect();
    let still_queued = if missing.is_empty() {
        0
    } else {
        let queued = pending_newest(&stack.rig, versions, &missing, Duration::from_secs(120)).await;
        report.did(format!(
            "{} newest values never recorded; {queued} of them found still unacknowledged in the subscriptions \
             (pulled without acking after the worker stopped)",
            missing.len()
        ));
        queued
    };
    let acked_and_lost = (missing.len() as u64).saturating_sub(still_queued);
    report.count(
        "newest values still queued at Pub/Sub at the deadline",
        still_queued,
    );
    report.count("acknowledged and lost", acked_and_lost);
    report.count("worker starts", starts);
    report.count("messages recorded by the workers", handled);
    // At least: what a killed worker recorded after its last scrape is not counted.
    report.count(
        "redeliveries recorded (at least)",
        handled.saturating_sub(total as u64),
    );
    report.count(
        "update calls",
        journal.iter().filter(|e| is_update(e)).count() as u64,
    );
    report.count(
        "values sent again after a kill (harmless)",
        repeated_values(&journal),
    );
    report.count(
        "lost",
        lost + (poison_count - distinct_poison.min(poison_count)) as u64,
    );
    report.count("stale overwrites", stale);
    report.count("poison dead letters", dead.len() as u64 - non_poison);
    report.check(
        "0 lost: every SKU at its newest value, except newest values Pub/Sub still holds unacknowledged",
        acked_and_lost == 0 && lost <= still_queued,
    );
    report.check("duplicates applied idempotently: 0 stale overwrites", stale == 0);
    report.check(
        "every poison message in the dead letters once, with a reason",
        distinct_poison == poison_count
            && dead.len() == poison_count
            && dead.iter().all(|d| !d.reason.is_empty()),
    );
    report.check("no valid update dead-lettered", non_poison == 0);
    report.check("the last worker was still running", running);
    report.finish();
}

/// Pulls (without acking) from both subscriptions for up to `within`: how many of `missing` (sku, kind) have
/// their version-`v` message still waiting there.
async fn pending_newest(rig: &Rig, v: u64, missing: &HashSet<(String, String)>, within: Duration) -> u64 {
    let http = reqwest::Client::new();
    let host = test_support::pubsub_emulator_host();
    let mut found: HashSet<(String, String)> = HashSet::new();
    let started = Instant::now();
    while found.len() < missing.len() && started.elapsed() < within {
        for (sub, kind) in [(&rig.price_sub, "price"), (&rig.stock_sub, "stock")] {
            let Ok(resp) = http
                .post(format!("http://{host}/v1/{sub}:pull"))
                .json(&serde_json::json!({"maxMessages": 1000, "returnImmediately": true}))
                .send()
                .await
            else {
                continue;
            };
            let body: serde_json::Value = resp.json().await.unwrap_or_default();
            for m in body["receivedMessages"].as_array().into_iter().flatten() {
                let data = m["message"]["data"].as_str().unwrap_or_default();
                let Ok(bytes) = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, data)
                else {
                    continue;
                };
                let Ok(event) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
                    continue;
                };
                let key = (
                    event["sku"].as_str().unwrap_or_default().to_owned(),
                    kind.to_owned(),
                );
                if event["version"].as_u64() == Some(v) && missing.contains(&key) {
                    found.insert(key);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    found.len() as u64
}

// ----- R12 -----

/// Shopee (item, model) ids.
type Ids = (u64, u64);

/// Who a SKU's mapping pointed at, from when (unix ms).
#[derive(Default)]
struct History(HashMap<usize, Vec<(i64, Ids)>>);

impl History {
    fn moved(&mut self, n: usize, at_ms: i64, to: (u64, u64)) {
        self.0.entry(n).or_default().push((at_ms, to));
    }

    /// Whether a call at `at_ms` to `ids` was right for SKU `n`: its mapping at that time, or the previous one
    /// within `slack_ms` of a move (the call was verified against PostgreSQL just before the move committed).
    fn right(&self, n: usize, original: (u64, u64), ids: (u64, u64), at_ms: i64, slack_ms: i64) -> bool {
        let mut current = original;
        let mut previous: Option<(u64, u64, i64)> = None;
        for &(from, to) in self.0.get(&n).map(Vec::as_slice).unwrap_or(&[]) {
            if from <= at_ms {
                previous = Some((current.0, current.1, from));
                current = to;
            }
        }
        ids == current || previous.is_some_and(|(i, m, from)| ids == (i, m) && at_ms <= from + slack_ms)
    }
}

async fn redis_cmd(args: &[&str]) -> bool {
    Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", "6379"])
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
}

/// R12: Redis flushed, restarted, then down for a while, while SKUs move to other Shopee ids (one set moved around
/// the cache with plain SQL, so the cache lies until it is flushed; one set moved while Redis is down).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "chaos scenario: cargo xtask chaos"]
async fn r12_redis_flushed_restarted_and_down_never_causes_a_wrong_id() {
    let _servers = RestoreServers;
    let profile = Profile::from_env();
    let items = profile.pick(20usize, 100);
    let down_for = profile.pick(Duration::from_secs(10), Duration::from_secs(30));
    let skus = items * 5;
    let mut report = Report::new(
        "R12",
        &format!(
            "Redis flushed, restarted, down {} while {skus} SKUs get 5 waves of updates and 20% of them move",
            secs(down_for)
        ),
    );
    let mut stack = Stack::new("r12", 100, &[]).await;
    let map = stack.rig.seed_catalog(items, 5).await;
    // Spare single-model items the moved SKUs go to: the first set at 50_000 + n, the second at 60_000 + n.
    let first: Vec<usize> = (0..skus).step_by(10).collect();
    let second: Vec<usize> = (5..skus).step_by(10).collect();
    let spares: Vec<SeedItem> = first
        .iter()
        .map(|&n| (50_000 + n as u64, n))
        .chain(second.iter().map(|&n| (60_000 + n as u64, n)))
        .map(|(item, n)| {
            SeedItem::with_models(
                stack.rig.shop,
                item,
                "spare",
                vec![SeedModel::new(0, &stack.rig.sku(n), 1.0, 0)],
            )
        })
        .collect();
    stack.rig.sandbox.seed_items(spares).unwrap();
    let worker = stack.start_worker().await;
    let pid = worker.proc.pid();
    report.did(format!(
        "worker binary started (pid {pid}); {items} items x 5 models"
    ));
    let mut history = History::default();
    let mut current: HashMap<String, (u64, u64)> = map.clone();
    let wave = |v: u64| {
        let mut out = Vec::new();
        for n in 0..skus {
            out.push((true, stack.rig.price_event(&stack.rig.sku(n), price(n, v), v)));
            out.push((false, stack.rig.stock_event(&stack.rig.sku(n), stock(n, v), v)));
        }
        out.shuffle(&mut rand::rng());
        out
    };
    let deadline = Duration::from_secs(profile.pick(40, 90));
    let mut converged_all = true;

    // 1. Warm the cache.
    stack.rig.publish(wave(1)).await;
    let t = wait_until(deadline, || async {
        not_newest(&stack.rig, &current, skus, 1) == 0
    })
    .await;
    converged_all &= t.is_some();
    report.did(format!(
        "wave 1 applied ({}); the mapping cache is warm",
        t.map_or("timeout".into(), secs)
    ));

    // 2. The first set moves around the cache (plain SQL: no invalidation, the cache now lies), and Redis is
    //    flushed in the middle of wave 2.
    let pool = stack.rig.db.pool.clone();
    let mut tx = pool.begin().await.unwrap();
    for &n in &first {
        sqlx::query("UPDATE product_mappings SET item_id = $1, model_id = 0, updated_at = now() WHERE sku = $2 AND shop_id = $3")
            .bind(50_000 + n as i64)
            .bind(stack.rig.sku(n))
            .bind(stack.rig.shop as i64)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let moved_at = chrono::Utc::now().timestamp_millis();
    for &n in &first {
        history.moved(n, moved_at, (50_000 + n as u64, 0));
        current.insert(stack.rig.sku(n), (50_000 + n as u64, 0));
    }
    report.did(format!(
        "{} SKUs moved with plain SQL around the cache (stale entries left in Redis)",
        first.len()
    ));
    let w2 = wave(2);
    let (a, b) = w2.split_at(w2.len() / 2);
    stack.rig.publish(a.to_vec()).await;
    // Flush only once the first half went through the lying cache (recorded by the worker).
    let recorded = (skus * 2 + a.len()) as u64;
    let through = wait_until(deadline, || async { worker.handled().await >= recorded }).await;
    let flushed = redis_cmd(&["FLUSHALL"]).await;
    stack.rig.publish(b.to_vec()).await;
    report.did(format!(
        "Redis FLUSHALL once the first half of wave 2 was recorded ({}; {})",
        through.map_or("timeout".into(), secs),
        if flushed { "ok" } else { "FAILED" }
    ));
    let t = wait_until(deadline, || async {
        not_newest(&stack.rig, &current, skus, 2) == 0
    })
    .await;
    converged_all &= t.is_some();
    report.did(format!(
        "wave 2 applied at the SKUs' current ids ({})",
        t.map_or("timeout".into(), secs)
    ));

    // 3. Redis restarted (empty) in the middle of wave 3.
    let w3 = wave(3);
    let (a, b) = w3.split_at(w3.len() / 2);
    stack.rig.publish(a.to_vec()).await;
    tokio::task::spawn_blocking(stop_redis).await.unwrap();
    tokio::task::spawn_blocking(start_redis).await.unwrap();
    stack.rig.publish(b.to_vec()).await;
    report.did("Redis restarted (SHUTDOWN NOSAVE, started again) in the middle of wave 3");
    let t = wait_until(deadline, || async {
        not_newest(&stack.rig, &current, skus, 3) == 0
    })
    .await;
    converged_all &= t.is_some();
    report.did(format!("wave 3 applied ({})", t.map_or("timeout".into(), secs)));

    // 4. Redis down: wave 4 arrives and the second set moves (through the mapping API: it cannot invalidate).
    let down_at = Instant::now();
    tokio::task::spawn_blocking(stop_redis).await.unwrap();
    report.did("Redis stopped");
    let moves: Vec<ProductMapping> = second
        .iter()
        .map(|&n| ProductMapping {
            sku: Sku::parse(&stack.rig.sku(n)).unwrap(),
            shop_id: ShopId::new(stack.rig.shop).unwrap(),
            item_id: ItemId::new(60_000 + n as u64).unwrap(),
            model_id: ModelId::NONE,
            outlet_item_id: None,
        })
        .collect();
    stack
        .rig
        .mappings
        .upsert(&moves, MappingSource::Manual)
        .await
        .unwrap();
    let moved_at = chrono::Utc::now().timestamp_millis();
    for &n in &second {
        history.moved(n, moved_at, (60_000 + n as u64, 0));
        current.insert(stack.rig.sku(n), (60_000 + n as u64, 0));
    }
    stack.rig.publish(wave(4)).await;
    report.did(format!(
        "{} more SKUs moved and wave 4 published while Redis is down",
        second.len()
    ));
    let while_down = wait_until(down_for, || async {
        not_newest(&stack.rig, &current, skus, 4) == 0
    })
    .await;
    converged_all &= while_down.is_some();
    let ready_while_down = reqwest::get(worker.ready_url())
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0);
    report.did(format!(
        "wave 4 applied while Redis is down ({}); /health/ready answers {ready_while_down}",
        while_down.map_or("NOT within the outage".into(), secs)
    ));
    tokio::time::sleep(down_for.saturating_sub(down_at.elapsed())).await;
    tokio::task::spawn_blocking(start_redis).await.unwrap();
    report.did(format!("Redis started again after {}", secs(down_at.elapsed())));

    // 5. Recovery without a restart.
    stack.rig.publish(wave(5)).await;
    let t = wait_until(deadline, || async {
        not_newest(&stack.rig, &current, skus, 5) == 0
    })
    .await;
    converged_all &= t.is_some();
    report.did(format!(
        "wave 5 applied after Redis came back ({})",
        t.map_or("timeout".into(), secs)
    ));
    let ready = test_support::wait_for_status(&worker.ready_url(), 200, Duration::from_secs(20)).await;
    report.did(format!("/health/ready 200 again ({})", secs(ready)));

    // Every value sent names its SKU: check the ids it went to against the mapping at the time.
    let calls = stack.update_calls().await;
    let mut wrong = 0u64;
    // Every call, answered or refused: a wrong id is wrong even when Shopee refuses it.
    for e in &calls {
        let item = e.request["item_id"].as_u64().unwrap();
        let is_price = e.api.ends_with("update_price");
        for (model, value) in sent_values(e) {
            let (n, _) = decode(is_price, value);
            let original = map[&stack.rig.sku(n)];
            if !history.right(n, original, (item, model), e.at_ms, 500) {
                wrong += 1;
            }
        }
    }
    let mut worker = worker;
    let same_process = worker.running() && worker.proc.pid() == pid;
    let caught = worker.counter("catalog_sync_remapped_total").await;
    let dead = stack.dead_letters().await.len() as u64;
    report.count("updates sent", (skus * 2 * 5) as u64);
    report.count("SKUs moved", (first.len() + second.len()) as u64);
    report.count("update calls", calls.len() as u64);
    report.count(
        "updates resolved to old ids and caught by the PostgreSQL check before the call",
        caught,
    );
    report.count("calls with a wrong item or model id", wrong);
    report.count("dead letters", dead);
    report.check("0 calls with a wrong item or model id", wrong == 0);
    report.check(
        "the service continued while Redis was down (wave 4 applied during the outage)",
        while_down.is_some(),
    );
    report.check("every wave applied at the SKUs' current ids", converged_all);
    report.check(
        "recovered without a restart (same process, ready again)",
        same_process,
    );
    report.check("nothing dead-lettered", dead == 0);
    report.check("Redis flushed", flushed);
    report.check(
        "the stale cache was exercised (updates caught before the call)",
        caught > 0,
    );
    worker.stop();
    report.finish();
}
