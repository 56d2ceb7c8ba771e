//! `cargo xtask run`: the whole system on this machine, against the Shopee sandbox.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::services::{self, PUBSUB_EMULATOR_HOST};
use crate::{cargo, sh};

const PROJECT: &str = "seller-backend-local";
/// The subscription on `ordr-input` that lets a person see what ORDR receives (`cargo xtask ordr-pull`).
pub const DEMO_SUBSCRIPTION: &str = "ordr-input-demo";
const DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/seller_backend";
const PARTNER_ID: &str = "1000001";
/// Local-only credentials, shared with the sandbox. Never used outside `make run`.
const PARTNER_KEY: &str = "local-sandbox-partner-key-not-a-secret";
const TOKEN_KEY: &str = "bG9jYWwtb25seS10b2tlbi1rZXktMzItYnl0ZXMhISE=";
const API_TOKEN: &str = "local-dev-token-0123456789";
const SANDBOX_ADDR: &str = "127.0.0.1:8089";

struct Binary {
    name: &'static str,
    port: u16,
}

const BINARIES: &[Binary] = &[
    Binary {
        name: "webhook-gateway",
        port: 8080,
    },
    Binary {
        name: "catalog-sync-worker",
        port: 8082,
    },
    Binary {
        name: "delivery-status-consumer",
        port: 8083,
    },
    Binary {
        name: "campaign-api",
        port: 8084,
    },
    // Last: it starts once the demo shops are authorized and mapped, so the demo orders publish at once.
    Binary {
        name: "order-publisher",
        port: 8081,
    },
];
const HUB_CONFIG_ADDR: &str = "127.0.0.1:8090";

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from)
}

pub fn run() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run_stack())
}

async fn run_stack() -> anyhow::Result<()> {
    for b in BINARIES {
        anyhow::ensure!(
            !services::is_listening(&format!("127.0.0.1:{}", b.port)),
            "port {} (for {}) is already in use: is another `make run` running?",
            b.port,
            b.name
        );
    }
    sh(cargo().args(["build", "--workspace", "--bins"]))?;
    let _services = services::ensure_all()?;

    // Kafka: librdkafka's mock cluster, hosted here for the lifetime of the stack.
    let kafka = rdkafka::mocking::MockCluster::new(1)?;
    kafka.create_topic("deliveries.out", 3, 1)?;
    let brokers = kafka.bootstrap_servers();
    eprintln!("==> Kafka (librdkafka mock cluster) on {brokers}, topic deliveries.out");

    create_database()?;
    create_pubsub_resources().await?;

    let bin_dir = target_dir().join("debug");
    let migrate = Command::new(bin_dir.join("webhook-gateway"))
        .arg("migrate")
        .env("DATABASE_URL", DATABASE_URL)
        .env("LOG_FORMAT", "pretty")
        .status()?;
    anyhow::ensure!(migrate.success(), "migrations failed");

    let mut children: Vec<(String, Child)> = Vec::new();
    let sandbox = bin_dir.join("shopee-sandbox");
    let shopee_url = if sandbox.exists() {
        let child = Command::new(&sandbox)
            .arg("--demo")
            .env("SANDBOX_ADDR", SANDBOX_ADDR)
            .env("SHOPEE_PARTNER_ID", PARTNER_ID)
            .env("SHOPEE_PARTNER_KEY", PARTNER_KEY)
            .env(
                "SHOPEE_PUSH_CALLBACK_URL",
                "http://127.0.0.1:8080/webhooks/shopee",
            )
            .stdin(Stdio::null())
            .spawn()?;
        children.push(("shopee-sandbox".into(), child));
        format!("http://{SANDBOX_ADDR}")
    } else {
        eprintln!("    (shopee-sandbox is not built yet: the binaries point at {SANDBOX_ADDR} anyway)");
        format!("http://{SANDBOX_ADDR}")
    };

    let hub_config = tokio::net::TcpListener::bind(HUB_CONFIG_ADDR).await?;
    tokio::spawn(async move { axum::serve(hub_config, hub_config_fake()).await });
    eprintln!("==> Hub Config Service (local fake) on http://{HUB_CONFIG_ADDR}/v1/hubs");

    let env: Vec<(&str, String)> = vec![
        ("DATABASE_URL", DATABASE_URL.into()),
        ("REDIS_URL", "redis://127.0.0.1:6379".into()),
        ("SHOPEE_API_BASE_URL", shopee_url.clone()),
        ("SHOPEE_PARTNER_ID", PARTNER_ID.into()),
        ("SHOPEE_PARTNER_KEY", PARTNER_KEY.into()),
        (
            "SHOPEE_PUSH_CALLBACK_URL",
            "http://127.0.0.1:8080/webhooks/shopee".into(),
        ),
        ("TOKEN_ENCRYPTION_KEY", TOKEN_KEY.into()),
        ("PUBSUB_PROJECT_ID", PROJECT.into()),
        ("PUBSUB_EMULATOR_HOST", PUBSUB_EMULATOR_HOST.into()),
        ("PRICE_UPDATE_TOPIC", "price-updates".into()),
        ("INVENTORY_UPDATE_TOPIC", "inventory-updates".into()),
        ("KAFKA_BROKERS", brokers.clone()),
        ("CAMPAIGN_API_TOKENS", API_TOKEN.into()),
        ("HUB_CONFIG_URL", format!("http://{HUB_CONFIG_ADDR}")),
        ("RECONCILE_INTERVAL_SECS", "10".into()),
        // There is no Catalog Service here: content sync runs on demand only (POST /v1/catalog/content-sync).
        ("CONTENT_SYNC_INTERVAL_SECS", "86400".into()),
        ("LOG_FORMAT", "pretty".into()),
        (
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        ),
    ];
    let spawn = |b: &Binary| -> anyhow::Result<Child> {
        let mut cmd = Command::new(bin_dir.join(b.name));
        cmd.env("HTTP_ADDR", format!("127.0.0.1:{}", b.port))
            .stdin(Stdio::null());
        for (k, v) in &env {
            cmd.env(k, v);
        }
        Ok(cmd.spawn()?)
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let started = Instant::now();
    let (publisher, others) = BINARIES
        .split_last()
        .ok_or_else(|| anyhow::anyhow!("no binaries"))?;
    for b in others {
        children.push((b.name.into(), spawn(b)?));
    }
    for b in others {
        wait_ready(&client, b).await;
    }
    if let Err(e) = demo_setup(&client).await {
        eprintln!("    warning: demo setup incomplete: {e:#}");
    }
    children.push((publisher.name.into(), spawn(publisher)?));
    wait_ready(&client, publisher).await;
    print_banner(&brokers, started.elapsed());

    tokio::signal::ctrl_c().await?;
    eprintln!("\n==> stopping everything (SIGTERM, then 10 s)");
    for (_, child) in &children {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    for (name, child) in &mut children {
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    eprintln!("    {name} exited ({status})");
                    break;
                }
                _ if Instant::now() > deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    eprintln!("    {name} killed after 10 s");
                    break;
                }
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
    Ok(())
}

fn create_database() -> anyhow::Result<()> {
    let exists = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-tAc",
            "SELECT 1 FROM pg_database WHERE datname = 'seller_backend'",
        ])
        .output()?;
    if String::from_utf8_lossy(&exists.stdout).trim() != "1" {
        sh(Command::new("psql").args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-c",
            "CREATE DATABASE seller_backend",
        ]))?;
    }
    Ok(())
}

/// Topics and subscriptions the stack uses, created over the emulator's REST API (already existing is fine).
async fn create_pubsub_resources() -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let base = format!("http://{PUBSUB_EMULATOR_HOST}/v1/projects/{PROJECT}");
    for topic in ["ordr-input", "price-updates", "inventory-updates"] {
        let resp = http.put(format!("{base}/topics/{topic}")).send().await?;
        anyhow::ensure!(
            resp.status().is_success() || resp.status() == 409,
            "create topic {topic}: {}",
            resp.status()
        );
    }
    for (subscription, topic) in [
        ("seller-backend-price-update-subscription", "price-updates"),
        (
            "seller-backend-inventory-update-subscription",
            "inventory-updates",
        ),
        (DEMO_SUBSCRIPTION, "ordr-input"),
    ] {
        let body = serde_json::json!({"topic": format!("projects/{PROJECT}/topics/{topic}"), "ackDeadlineSeconds": 20});
        let resp = http
            .put(format!("{base}/subscriptions/{subscription}"))
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(
            resp.status().is_success() || resp.status() == 409,
            "create subscription {subscription}: {}",
            resp.status()
        );
    }
    Ok(())
}

async fn wait_ready(client: &reqwest::Client, b: &Binary) {
    let url = format!("http://127.0.0.1:{}/health/ready", b.port);
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if client
            .get(&url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("    warning: {} is not ready after 30 s ({url})", b.name);
}

/// The demo shops authorize the app through the real callback, and the demo products are mapped through
/// campaign-api, as a person would do it.
async fn demo_setup(client: &reqwest::Client) -> anyhow::Result<()> {
    for shop in DEMO_SHOPS {
        let code: serde_json::Value = client
            .post(format!("http://{SANDBOX_ADDR}/_sandbox/shops/{shop}/authorize"))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let code = code["code"].as_str().unwrap_or_default();
        let page = client
            .get(format!(
                "http://127.0.0.1:8080/shopee/auth/callback?code={code}&shop_id={shop}"
            ))
            .send()
            .await?;
        anyhow::ensure!(
            page.status().is_success(),
            "authorizing shop {shop} failed: {}",
            page.status()
        );
        eprintln!("==> shop {shop} authorized through /shopee/auth/callback");
    }
    let mappings = serde_json::json!([
        {"sku": "789100000001", "shop_id": 900001, "item_id": 100001, "model_id": 0},
        {"sku": "789100000002", "shop_id": 900001, "item_id": 100002, "model_id": 0},
        {"sku": "789100000031", "shop_id": 900001, "item_id": 100003, "model_id": 200001},
        {"sku": "789100000032", "shop_id": 900001, "item_id": 100003, "model_id": 200002},
        {"sku": "789100000001", "shop_id": 900101, "item_id": 300001, "model_id": 0}
    ]);
    let resp = client
        .put("http://127.0.0.1:8084/v1/mappings")
        .bearer_auth(API_TOKEN)
        .json(&mappings)
        .send()
        .await?;
    anyhow::ensure!(
        resp.status().is_success(),
        "mapping the demo products failed: {}",
        resp.status()
    );
    eprintln!("==> demo products mapped through PUT /v1/mappings");
    Ok(())
}

const DEMO_SHOPS: &[u64] = &[900_001, 900_101];

/// The Hub Config Service the binaries read hubs from: two demo hubs in São Paulo.
fn hub_config_fake() -> axum::Router {
    let hubs = serde_json::json!([
        {"hub_id": "SAO-01", "active": true, "shopee_shop_id": 900001,
         "location": {"zipcode": "01310100", "latitude": -23.5614, "longitude": -46.6559},
         "delivery": {"radius_km": 5.0, "base_fee": "4.90", "fee_per_km": "1.10", "free_above": "99.00",
                      "preparation_minutes": 8, "speed_kmh": 18},
         "opening_hours": (1..=7).map(|d| serde_json::json!({"weekday": d, "open": "00:00", "close": "24:00"})).collect::<Vec<_>>()},
        {"hub_id": "SAO-02", "active": true, "shopee_shop_id": 900101,
         "location": {"zipcode": "04538133", "latitude": -23.5868, "longitude": -46.6817},
         "delivery": {"radius_km": 4.0, "base_fee": "3.90", "fee_per_km": "1.20", "free_above": "79.00",
                      "preparation_minutes": 10, "speed_kmh": 16},
         "opening_hours": (1..=7).map(|d| serde_json::json!({"weekday": d, "open": "07:00", "close": "23:00"})).collect::<Vec<_>>()}
    ]);
    axum::Router::new().route(
        "/v1/hubs",
        axum::routing::get(move || async move { axum::Json(hubs.clone()) }),
    )
}

fn print_banner(brokers: &str, took: Duration) {
    use base64::Engine as _;
    let price = base64::engine::general_purpose::STANDARD.encode(
        r#"{"event_id":"demo-1","sku":"789100000001","hub_id":"SAO-01","price":"11.49","occurred_at":"2026-11-26T12:00:00Z","version":2}"#,
    );
    println!();
    println!(
        "seller-backend is running locally (ready in {:.1} s). Ctrl-C stops everything started here.",
        took.as_secs_f64()
    );
    println!();
    println!("  {:<26} address", "service");
    for b in BINARIES {
        println!("  {:<26} http://127.0.0.1:{}", b.name, b.port);
    }
    println!(
        "  {:<26} http://{SANDBOX_ADDR}  (partner_id {PARTNER_ID}; admin API under /_sandbox)",
        "shopee-sandbox"
    );
    println!(
        "  {:<26} http://{HUB_CONFIG_ADDR}/v1/hubs  (local fake: SAO-01 -> shop 900001, SAO-02 -> 900101)",
        "hub config"
    );
    println!(
        "  {:<26} {PUBSUB_EMULATOR_HOST}  (project {PROJECT})",
        "pubsub emulator"
    );
    println!(
        "  {:<26} {brokers}  (topic deliveries.out)",
        "kafka (mock cluster)"
    );
    println!("  {:<26} {DATABASE_URL}", "postgresql");
    println!();
    println!("Try (shops 900001 and 900101 are authorized, the demo products mapped):");
    println!(
        "  # the demo order 2511250DEMO01 (its push was lost at start-up, reconciliation recovered it) as ORDR sees it:"
    );
    println!("  cargo xtask ordr-pull      # each message's attributes and its new_order as pretty JSON");
    println!(
        "  curl -s -X POST localhost:8085/v1/projects/{PROJECT}/subscriptions/{DEMO_SUBSCRIPTION}:pull -H 'content-type: application/json' -d '{{\"maxMessages\":10}}'   # the raw pull (data in base64)"
    );
    println!(
        "  # an unpaid order becomes READY_TO_SHIP: Shopee pushes, the gateway stores, the publisher publishes:"
    );
    println!(
        "  curl -s -X POST localhost:8089/_sandbox/shops/900001/orders/2511250DEMO02/status -H 'content-type: application/json' -d '{{\"status\":\"READY_TO_SHIP\"}}'"
    );
    println!("  curl -s -H 'Authorization: Bearer {API_TOKEN}' localhost:8084/v1/orders/2511250DEMO02");
    println!("  # a price update for SKU 789100000001 at SAO-01, then Shopee's price for item 100001:");
    println!(
        "  curl -s -X POST localhost:8085/v1/projects/{PROJECT}/topics/price-updates:publish -H 'content-type: application/json' -d '{{\"messages\":[{{\"data\":\"{price}\"}}]}}'"
    );
    println!("  curl -s localhost:8089/_sandbox/shops/900001/items/100001");
    println!("  # shops, mappings, dead letters, the API description:");
    println!("  curl -s -H 'Authorization: Bearer {API_TOKEN}' localhost:8084/v1/shops");
    println!("  curl -s -H 'Authorization: Bearer {API_TOKEN}' 'localhost:8084/v1/mappings?shop_id=900001'");
    println!("  curl -s -H 'Authorization: Bearer {API_TOKEN}' localhost:8084/openapi.json | head -c 400");
    println!(
        "  curl -s localhost:8089/_sandbox/journal | head -c 600     # every call Shopee (the sandbox) received"
    );
    println!("  curl -s localhost:8081/metrics | grep -E '^(orders_intake|outbox_publish|inbox_pending)'");
    println!();
}

/// `cargo xtask ordr-pull`: the messages waiting on a subscription of the running `make run` (the emulator), each
/// with its attributes and its data decoded from base64 and pretty-printed when it is JSON. Without `ack` they are
/// released at once (ack deadline 0), so they can be pulled again.
pub fn ordr_pull(subscription: &str, max: u32, ack: bool) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(pull_and_print(subscription, max, ack))
}

async fn pull_and_print(subscription: &str, max: u32, ack: bool) -> anyhow::Result<()> {
    use base64::Engine as _;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let url = format!("http://{PUBSUB_EMULATOR_HOST}/v1/projects/{PROJECT}/subscriptions/{subscription}");
    // The emulator may answer an immediate pull empty while messages are on their way: a few tries, 3 s in all.
    let deadline = Instant::now() + Duration::from_secs(3);
    let messages = loop {
        let resp = http
            .post(format!("{url}:pull"))
            .json(&serde_json::json!({"maxMessages": max, "returnImmediately": true}))
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot reach the Pub/Sub emulator on {PUBSUB_EMULATOR_HOST} (is `make run` running?): {e}"
                )
            })?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        anyhow::ensure!(
            status.is_success(),
            "pull from {subscription} (project {PROJECT}): {status} {body}"
        );
        let messages = body["receivedMessages"].as_array().cloned().unwrap_or_default();
        if !messages.is_empty() || Instant::now() > deadline {
            break messages;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    if messages.is_empty() {
        println!("no message waiting on {subscription} (project {PROJECT})");
        return Ok(());
    }
    let mut ack_ids = Vec::new();
    for (i, received) in messages.iter().enumerate() {
        let m = &received["message"];
        ack_ids.push(received["ackId"].clone());
        println!(
            "message {} of {}: id {}, published {}",
            i + 1,
            messages.len(),
            m["messageId"].as_str().unwrap_or("?"),
            m["publishTime"].as_str().unwrap_or("?")
        );
        if let Some(key) = m["orderingKey"].as_str().filter(|k| !k.is_empty()) {
            println!("  ordering key: {key}");
        }
        println!("  attributes:");
        let mut attributes: Vec<(&String, &serde_json::Value)> =
            m["attributes"].as_object().into_iter().flatten().collect();
        attributes.sort_by_key(|(k, _)| *k);
        for (k, v) in attributes {
            println!(
                "    {k} = {}",
                v.as_str().map_or_else(|| v.to_string(), str::to_owned)
            );
        }
        let data = base64::engine::general_purpose::STANDARD
            .decode(m["data"].as_str().unwrap_or_default())
            .unwrap_or_default();
        match serde_json::from_slice::<serde_json::Value>(&data) {
            Ok(json) => println!(
                "  data ({} bytes, JSON):\n{}",
                data.len(),
                indent(&serde_json::to_string_pretty(&json)?)
            ),
            Err(_) => println!(
                "  data ({} bytes, not JSON):\n{}",
                data.len(),
                indent(&String::from_utf8_lossy(&data))
            ),
        }
        println!();
    }
    let (action, body) = if ack {
        ("acknowledge", serde_json::json!({"ackIds": ack_ids}))
    } else {
        (
            "modifyAckDeadline",
            serde_json::json!({"ackIds": ack_ids, "ackDeadlineSeconds": 0}),
        )
    };
    let resp = http.post(format!("{url}:{action}")).json(&body).send().await?;
    anyhow::ensure!(
        resp.status().is_success(),
        "{action} on {subscription}: {}",
        resp.status()
    );
    println!(
        "{} message(s) {}",
        messages.len(),
        if ack {
            "acknowledged: gone from the subscription"
        } else {
            "left on the subscription (--ack removes them)"
        }
    );
    Ok(())
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
