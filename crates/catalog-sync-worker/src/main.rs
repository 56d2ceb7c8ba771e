use std::process::ExitCode;

use clap::{Parser, Subcommand};
use service_runtime::cli::{Command as Base, ServiceArgs};

/// Keeps Shopee prices, stock and product content equal to the newest catalog state.
#[derive(Parser)]
#[command(name = "catalog-sync-worker", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    args: ServiceArgs<catalog_sync_worker::Args>,
}

#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Base(Base),
    /// Read prices and stocks back from Shopee and print every difference from the last applied state
    /// (exit code 1 when there is any). Reads DATABASE_URL, REDIS_URL, SHOPEE_* and TOKEN_ENCRYPTION_KEY.
    Audit {
        /// The Shopee shop to audit.
        #[arg(long)]
        shop: u64,
    },
}

fn main() -> ExitCode {
    let cli: Cli = service_runtime::cli::parse(catalog_sync_worker::NAME);
    let base = match cli.command {
        Some(Command::Audit { shop }) => return catalog_sync_worker::audit::main(shop),
        Some(Command::Base(base)) => Some(base),
        None => None,
    };
    service_runtime::cli::run(
        catalog_sync_worker::NAME,
        base,
        cli.args,
        catalog_sync_worker::run,
    )
}
