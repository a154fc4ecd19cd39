//! `throughcare-referrals`: the referrals service on its own.

use clap::Parser;
use throughcare_platform::config::CommonArgs;
use throughcare_platform::service::run_binary;
use throughcare_referrals::{Config, run};

/// Throughcare referrals service: release notifications, continuity pathways and the referral lifecycle.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    run_binary::<Config, _, _>(&args.common, run).await
}
