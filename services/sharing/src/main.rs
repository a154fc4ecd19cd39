//! `throughcare-sharing`: the sharing service on its own, and `verify-audit`,
//! which checks the audit chain straight in the database.

use clap::{Parser, Subcommand};
use throughcare_platform::config::CommonArgs;
use throughcare_platform::db::Db;
use throughcare_platform::service::run_binary;
use throughcare_sharing::domain::audit::CheckpointKey;
use throughcare_sharing::{Config, MIGRATIONS, run};

/// Throughcare sharing service: consent and lawful basis, minimised disclosure and the tamper-evident audit log.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Verify the audit chain in the configured database, against its signed
    /// checkpoints. Exits 0 when intact, 1 naming the first broken entry
    /// otherwise.
    VerifyAudit,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let Some(Command::VerifyAudit) = args.command else {
        return run_binary::<Config, _, _>(&args.common, run).await;
    };
    let config: Config = args.common.load()?;
    let url = config.platform.database.url.expose();
    let db = Db::connect(url, 2, MIGRATIONS).await?;
    let key = CheckpointKey::from_hex(config.audit.signing_key.expose())
        .map_err(|e| format!("audit.signing_key (THROUGHCARE_AUDIT__SIGNING_KEY) {e}"))?;
    match throughcare_sharing::store::audit::verify(&db, &key.public_key(), None).await? {
        Ok(entries) => {
            println!("audit chain intact: {entries} entries verified");
            Ok(())
        }
        Err(broken) => {
            println!(
                "audit chain broken at entry {}: {}",
                broken.seq, broken.reason
            );
            std::process::exit(1);
        }
    }
}
