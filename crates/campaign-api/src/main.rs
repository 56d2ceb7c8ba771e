use std::process::ExitCode;

use clap::Parser;
use service_runtime::cli::Command;

/// Internal HTTP API: campaigns (Shopee discounts) in SKU terms, product mappings, shops, orders, dead letters.
#[derive(Parser)]
#[command(name = "campaign-api", version, after_help = campaign_api::help())]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    service_runtime::cli::run(
        campaign_api::NAME,
        cli.command,
        campaign_api::Config::from_env,
        campaign_api::run,
    )
}
