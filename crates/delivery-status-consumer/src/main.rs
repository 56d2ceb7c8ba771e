use std::process::ExitCode;

use clap::Parser;
use service_runtime::cli::{Command, ServiceArgs};

/// Moves Shopee orders along as the fleet reports delivery progress on Kafka.
#[derive(Parser)]
#[command(name = "delivery-status-consumer", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    args: ServiceArgs<delivery_status_consumer::Args>,
}

fn main() -> ExitCode {
    let cli: Cli = service_runtime::cli::parse(delivery_status_consumer::NAME);
    service_runtime::cli::run(
        delivery_status_consumer::NAME,
        cli.command,
        cli.args,
        delivery_status_consumer::run,
    )
}
