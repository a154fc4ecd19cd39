//! `throughcare`: the whole system in one binary.
//!
//! `throughcare dev` runs the three services in one process with no servers
//! at all: SQLite files and the in-process bus in a local data directory.

mod dev;
mod dev_registry;
mod health;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Throughcare: health information that follows people through the prison gate"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run referrals, sharing and indicators in one process on SQLite and the
    /// in-process bus, printing each endpoint and the development tokens.
    Dev(dev::DevArgs),
    /// Ask a service whether it is serving (grpc.health.v1); exits 0 only if so.
    /// Used by container health checks.
    Health(health::HealthArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Dev(args) => dev::run(args).await,
        Command::Health(args) => health::run(args).await,
    }
}
