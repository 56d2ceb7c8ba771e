use std::process::ExitCode;

use clap::Parser;
use service_runtime::cli::Command;

/// Shopee-facing HTTP: signed pushes into the inbox, freight quotation, shop authorization callback.
#[derive(Parser)]
#[command(name = "webhook-gateway", version, after_help = webhook_gateway::help())]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    service_runtime::cli::run(
        webhook_gateway::NAME,
        cli.command,
        webhook_gateway::Config::from_env,
        webhook_gateway::run,
    )
}
