//! `shopee-sandbox`: the local Shopee Open Platform v2 simulator as a process (the default Shopee of `make run`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use service_runtime::config::LogFormat;
use shopee_sandbox::{SandboxConfig, SeedFile};

/// A stateful local simulator of the Shopee Open Platform v2 (auth, orders, push, products, logistics, discounts),
/// with an admin API under /_sandbox (seeding, rate limits, faults, journal). See crates/shopee-sandbox/README.md.
#[derive(Debug, Parser)]
#[command(name = "shopee-sandbox", version)]
struct Cli {
    /// Listen address.
    #[arg(long, env = "SANDBOX_ADDR", default_value = "127.0.0.1:8089")]
    addr: SocketAddr,
    /// Partner id the sandbox accepts.
    #[arg(long, env = "SHOPEE_PARTNER_ID", default_value_t = 1_000_001)]
    partner_id: u64,
    /// Partner key requests are signed with.
    #[arg(
        long,
        env = "SHOPEE_PARTNER_KEY",
        default_value = "sandbox-partner-key",
        hide_env_values = true
    )]
    partner_key: String,
    /// Where order pushes are POSTed (unset: every push is kept for get_lost_push_message).
    #[arg(long, env = "SHOPEE_PUSH_CALLBACK_URL")]
    push_callback_url: Option<String>,
    /// Key pushes are signed with [default: the partner key].
    #[arg(long, env = "SHOPEE_PUSH_PARTNER_KEY", hide_env_values = true)]
    push_partner_key: Option<String>,
    /// Seed the demo shop 900001 (items, orders; mart 900100 with outlet 900101), authorized.
    #[arg(long)]
    demo: bool,
    /// Seed from a JSON file shaped like POST /_sandbox/seed.
    #[arg(long, env = "SANDBOX_SEED_FILE")]
    seed_file: Option<PathBuf>,
    /// json | pretty
    #[arg(long, env = "LOG_FORMAT", default_value = "pretty")]
    log_format: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("shopee-sandbox: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(serve(cli));
    // Background tasks (push deliveries in flight) get a short grace period, never a hang.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shopee-sandbox: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(cli: Cli) -> anyhow::Result<()> {
    let format: LogFormat = cli
        .log_format
        .parse()
        .map_err(|e: String| anyhow::anyhow!("LOG_FORMAT is malformed: {e}"))?;
    let telemetry = service_runtime::telemetry::init("shopee-sandbox", format, None)?;

    let mut seed = match &cli.seed_file {
        Some(path) => {
            let raw = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the seed file {}", path.display()))?;
            serde_json::from_str::<SeedFile>(&raw)
                .with_context(|| format!("the seed file {} is not valid seed JSON", path.display()))?
        }
        None => SeedFile::default(),
    };
    if cli.demo {
        let demo = SeedFile::demo();
        seed.shops.extend(demo.shops);
        seed.items.extend(demo.items);
        seed.orders.extend(demo.orders);
        seed.discounts.extend(demo.discounts);
        seed.authorized_shops.extend(demo.authorized_shops);
    }

    let mut config = SandboxConfig::new(cli.partner_id, cli.partner_key);
    config.push_callback_url = cli.push_callback_url;
    config.push_partner_key = cli.push_partner_key;
    config.default_shop_id = seed.shops.first().map(|s| s.shop_id);

    let listener = tokio::net::TcpListener::bind(cli.addr)
        .await
        .with_context(|| format!("cannot listen on SANDBOX_ADDR {}", cli.addr))?;
    tracing::info!(
        http.addr = %listener.local_addr()?,
        partner.id = config.partner_id,
        push.callback = config.push_callback_url.as_deref().unwrap_or("(none)"),
        "shopee-sandbox starting; admin API under /_sandbox"
    );
    let shutdown = service_runtime::shutdown::on_signals();
    let result = shopee_sandbox::run(config, listener, Some(seed), shutdown.cancelled_owned()).await;
    tracing::info!("shopee-sandbox stopped");
    telemetry.shutdown();
    result
}
