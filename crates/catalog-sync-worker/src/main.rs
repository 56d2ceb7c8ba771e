use std::process::ExitCode;

use clap::Parser;
use service_runtime::cli::Command;

/// Keeps Shopee prices, stock and product content equal to the newest catalog state.
#[derive(Parser)]
#[command(name = "catalog-sync-worker", version, after_help = catalog_sync_worker::help())]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    service_runtime::cli::run(
        catalog_sync_worker::NAME,
        cli.command,
        catalog_sync_worker::Config::from_env,
        catalog_sync_worker::run,
    )
}
