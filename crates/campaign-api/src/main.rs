use std::process::ExitCode;

use clap::Parser;
use service_runtime::cli::{Command, ServiceArgs};

/// Internal HTTP API: campaigns (Shopee discounts) in SKU terms, product mappings, shops, orders, dead letters.
#[derive(Parser)]
#[command(name = "campaign-api", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    args: ServiceArgs<campaign_api::Args>,
}

fn main() -> ExitCode {
    let cli: Cli = service_runtime::cli::parse(campaign_api::NAME);
    service_runtime::cli::run(campaign_api::NAME, cli.command, cli.args, campaign_api::run)
}
