use std::process::ExitCode;

use clap::Parser;
use service_runtime::cli::{Command, ServiceArgs};

/// Turns the push inbox into exactly one ORDR new_order per Shopee order on Pub/Sub, and reconciles lost pushes.
#[derive(Parser)]
#[command(name = "order-publisher", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    args: ServiceArgs<order_publisher::Args>,
}

fn main() -> ExitCode {
    let cli: Cli = service_runtime::cli::parse(order_publisher::NAME);
    service_runtime::cli::run(order_publisher::NAME, cli.command, cli.args, order_publisher::run)
}
