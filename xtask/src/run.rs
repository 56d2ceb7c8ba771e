//! `cargo xtask run`: the whole system on this machine, against the Shopee sandbox.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::services::{self, PUBSUB_EMULATOR_HOST};
use crate::{cargo, sh};

const PROJECT: &str = "seller-backend-local";
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
        name: "order-publisher",
        port: 8081,
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
];

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

    for b in BINARIES {
        let child = Command::new(bin_dir.join(b.name))
            .env("HTTP_ADDR", format!("127.0.0.1:{}", b.port))
            .env("DATABASE_URL", DATABASE_URL)
            .env("REDIS_URL", "redis://127.0.0.1:6379")
            .env("SHOPEE_API_BASE_URL", &shopee_url)
            .env("SHOPEE_PARTNER_ID", PARTNER_ID)
            .env("SHOPEE_PARTNER_KEY", PARTNER_KEY)
            .env(
                "SHOPEE_PUSH_CALLBACK_URL",
                "http://127.0.0.1:8080/webhooks/shopee",
            )
            .env("TOKEN_ENCRYPTION_KEY", TOKEN_KEY)
            .env("PUBSUB_PROJECT_ID", PROJECT)
            .env("PUBSUB_EMULATOR_HOST", PUBSUB_EMULATOR_HOST)
            .env("PRICE_UPDATE_TOPIC", "price-updates")
            .env("INVENTORY_UPDATE_TOPIC", "inventory-updates")
            .env("KAFKA_BROKERS", &brokers)
            .env("CAMPAIGN_API_TOKENS", API_TOKEN)
            .env("LOG_FORMAT", "pretty")
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .spawn()?;
        children.push((b.name.into(), child));
    }

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()?;
    let started = Instant::now();
    for b in BINARIES {
        let url = format!("http://127.0.0.1:{}/health/ready", b.port);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = client
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                break;
            }
            if Instant::now() > deadline {
                eprintln!("    warning: {} is not ready after 30 s ({url})", b.name);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
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
        ("ordr-input-demo", "ordr-input"),
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

fn print_banner(brokers: &str, took: Duration) {
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
        "  {:<26} http://{SANDBOX_ADDR}  (partner_id {PARTNER_ID})",
        "shopee-sandbox"
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
    println!("Try:");
    println!(
        "  curl -s localhost:8080/health/ready            # every worker: /health/live, /health/ready, /metrics"
    );
    println!("  curl -s localhost:8081/metrics | head");
    println!("  curl -s -H 'Authorization: Bearer {API_TOKEN}' localhost:8084/v1/shops");
    println!("  curl -s localhost:8089/_sandbox/journal          # every call the sandbox received");
    println!();
}
