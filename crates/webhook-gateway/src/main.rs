use std::process::ExitCode;

use clap::Parser;
use service_runtime::cli::{Command, ServiceArgs};

/// Shopee-facing HTTP: signed pushes into the inbox, freight quotation, shop authorization callback.
#[derive(Parser)]
#[command(name = "webhook-gateway", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    args: ServiceArgs<webhook_gateway::Args>,
}

fn main() -> ExitCode {
    let cli: Cli = service_runtime::cli::parse(webhook_gateway::NAME);
    service_runtime::cli::run(webhook_gateway::NAME, cli.command, cli.args, webhook_gateway::run)
}
