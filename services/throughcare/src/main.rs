//! `throughcare`: the whole system in one binary.
//!
//! `throughcare dev` runs the three services in one process with no servers
//! at all: SQLite files and the in-process bus in a local data directory.
//! `throughcare demo` drives a synthetic population through a running system.
//! The role commands (`release`, `referral`, `consent`, `indicators`, ...)
//! call any of the services as one organisation in one role.

mod client;
mod dead_letters;
mod demo;
mod dev;
mod dev_registry;
mod health;
mod roles;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Throughcare: health information that follows people through the prison gate",
    after_help = "Exit codes: 0 done; 1 failed or unreachable; 2 bad command line or request \
                  (nothing sent); 3 refused as invalid or not allowed now; 4 not authenticated \
                  or not permitted; 5 not found."
)]
struct Cli {
    #[command(flatten)]
    connection: client::Connection,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run referrals, sharing and indicators in one process on SQLite and the
    /// in-process bus, printing each endpoint and the development tokens.
    Dev(dev::DevArgs),
    /// Drive a synthetic population through the running system (started with
    /// `throughcare dev`), then print the indicators a commissioner sees.
    Demo(demo::DemoArgs),
    /// List, show and replay the records a service could not process (read
    /// from the bus, never their contents).
    #[command(name = "dead-letters")]
    DeadLetters(dead_letters::DeadLetterArgs),
    /// Ask a service whether it is serving (grpc.health.v1); exits 0 only if so.
    /// Used by container health checks.
    Health(health::HealthArgs),
    #[command(flatten)]
    Role(roles::RoleCommand),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Dev(args) => dev::run(args, cli.connection.data_dir()).await,
        Command::Demo(args) => demo::run(args, &cli.connection).await,
        Command::DeadLetters(args) => dead_letters::run(args, cli.connection.data_dir()).await,
        Command::Health(args) => health::run(args).await,
        Command::Role(command) => roles::run(command, &cli.connection).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => ExitCode::from(client::report(&error)),
    }
}
