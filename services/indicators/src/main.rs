//! `throughcare-indicators`: the indicators service on its own, and `rebuild`,
//! which rebuilds its state from the observations topic.

use clap::{Parser, Subcommand};
use throughcare_indicators::catalogue::Catalogue;
use throughcare_indicators::domain::period::Period;
use throughcare_indicators::{CONSUMER_GROUP, Config, MIGRATIONS, app, run};
use throughcare_platform::bus::Bus;
use throughcare_platform::config::CommonArgs;
use throughcare_platform::db::Db;
use throughcare_platform::service::run_binary;
use throughcare_platform::telemetry::Metrics;
use throughcare_proto::topics;

/// Throughcare indicators service: the toolkit's quality indicators with disclosure control, for commissioners.
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
    /// Replay the observations topic from offset zero into a fresh core and
    /// compare it with the stored state: exits 0 when identical, 1 otherwise.
    Rebuild {
        /// Replace the stored state with the rebuilt one (stop the service first).
        #[arg(long)]
        replace: bool,
    },
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let Some(Command::Rebuild { replace }) = args.command else {
        return run_binary::<Config, _, _>(&args.common, run).await;
    };
    let config: Config = args.common.load()?;
    let platform = &config.platform;
    let db = Db::connect(platform.database.url.expose(), 4, MIGRATIONS).await?;
    let bus = Bus::connect(&platform.bus, Metrics::disabled()).await?;
    let catalogue = Catalogue::standard();
    let started = std::time::Instant::now();
    // Open spells of supervision run through the current month in both.
    let horizon = Period::month_index_of(chrono::Utc::now().date_naive());
    let stored = app::load(&db, catalogue, horizon).await?;
    let keys = app::record_keys(&db).await?;
    let topic = bus.topic(topics::OBSERVATIONS);
    let (rebuilt, stats) = app::rebuild::from_log(&bus, &topic, catalogue, keys, horizon).await?;
    println!(
        "replayed {} records ({} bytes, {} skipped) in {:.1}s",
        stats.records,
        stats.bytes,
        stats.skipped,
        started.elapsed().as_secs_f64()
    );
    for (name, core) in [("stored ", &stored), ("rebuilt", &rebuilt)] {
        println!(
            "{name}: {} people, {} observations, fingerprint {}",
            core.people(),
            core.observations(),
            core.fingerprint()
        );
    }
    if stored.fingerprint() == rebuilt.fingerprint() {
        println!("identical");
        return Ok(());
    }
    if replace {
        let people = app::rebuild::replace(&db, &rebuilt).await?;
        println!(
            "replaced the stored state with {people} rebuilt people; the consumer group \
             {CONSUMER_GROUP} resumes where it was (records are idempotent)"
        );
        return Ok(());
    }
    println!("differs: run again with --replace (service stopped) to adopt the rebuilt state");
    std::process::exit(1);
}
