//! `throughcare-sharing`: the sharing service on its own.

use clap::Parser;
use throughcare_platform::config::CommonArgs;
use throughcare_sharing::{Config, run};

/// Throughcare sharing service: consent and lawful basis, minimised disclosure and the tamper-evident audit log.
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
        "sharing",
        &args.common,
        &Config::defaults(),
        |c| &c.platform,
        run,
    )
    .await
}
