use std::process::ExitCode;

use clap::Parser;
use service_runtime::cli::Command;

/// Turns the push inbox into exactly one ORDR new_order per Shopee order on Pub/Sub, and reconciles lost pushes.
#[derive(Parser)]
#[command(name = "order-publisher", version, after_help = order_publisher::help())]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    service_runtime::cli::run(
        order_publisher::NAME,
        cli.command,
        order_publisher::Config::from_env,
        order_publisher::run,
    )
}
