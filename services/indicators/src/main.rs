//! `throughcare-indicators`: the indicators service on its own.

use clap::Parser;
use throughcare_indicators::{Config, run};
use throughcare_platform::config::CommonArgs;

/// Throughcare indicators service: the toolkit's quality indicators with disclosure control, for commissioners.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    throughcare_platform::service::run_binary(
        "indicators",
        &args.common,
        &Config::defaults(),
        |c| &c.platform,
        run,
    )
    .await
}
