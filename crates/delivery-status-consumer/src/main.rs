use std::process::ExitCode;

use clap::Parser;
use service_runtime::cli::Command;

/// Moves Shopee orders along as the fleet reports delivery progress on Kafka.
#[derive(Parser)]
#[command(name = "delivery-status-consumer", version, after_help = delivery_status_consumer::help())]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    service_runtime::cli::run(
        delivery_status_consumer::NAME,
        cli.command,
        delivery_status_consumer::Config::from_env,
        delivery_status_consumer::run,
    )
}
