//! The referrals service: release notifications and the other transitions,
//! continuity pathways, health assessments, and referrals into health services
//! through their whole lifecycle.
//!
//! `run` is the whole service; `main.rs` only parses flags and loads config,
//! and the embedded mode links this library beside the others.
//!
//! - `domain` — pure rules and validated commands: people, places, health
//!   summaries, the referral state machine, continuity pathway rules, tasks,
//!   transitions and the observation mapping; no I/O.
//! - `store` — the SQL, written once for PostgreSQL and SQLite.
//! - `app` — the use cases, each one unit of work (state, change feed entries
//!   and outbox events together), and the watch streams.
//! - `events` — what goes on the bus, built from domain values.
//! - `error` — the service's failures as the platform's one error type.
//! - `grpc` — authorise, delegate, answer errors in the one way; the only
//!   module that knows tonic besides the server wiring here.

pub mod app;
pub mod domain;
pub mod error;
pub mod events;
pub mod grpc;
pub mod store;

use app::App;
use domain::rules::PathwayRules;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use throughcare_platform::bus::Retention;
use throughcare_platform::config::PlatformConfig;
use throughcare_platform::db::Migrations;
use throughcare_platform::grpc::GrpcServer;
use throughcare_platform::identity::Authenticator;
use throughcare_platform::sealing::{Keyring, SealingConfig};
use throughcare_platform::service::{Platform, RunError, Runtime, ServiceConfig, StartError};
use throughcare_proto::referrals::v1::assessments_service_server::AssessmentsServiceServer;
use throughcare_proto::referrals::v1::continuity_service_server::ContinuityServiceServer;
use throughcare_proto::referrals::v1::referrals_service_server::ReferralsServiceServer;
use throughcare_proto::referrals::v1::transitions_service_server::TransitionsServiceServer;
use throughcare_proto::topics;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The referrals service's configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    #[serde(flatten)]
    pub platform: PlatformConfig,
    /// Keys that seal health records for the sharing service (it holds the same keys).
    #[serde(default)]
    pub sealing: SealingConfig,
    /// Continuity pathway rules; the built-in defaults when absent.
    #[serde(default)]
    pub pathways_file: Option<PathBuf>,
    /// How often open continuity tasks are checked against their deadlines.
    #[serde(default = "default_sweep_ms")]
    pub overdue_sweep_interval_ms: u64,
}

fn default_sweep_ms() -> u64 {
    30_000
}

impl ServiceConfig for Config {
    const SERVICE: &'static str = "referrals";

    fn platform(&self) -> &PlatformConfig {
        &self.platform
    }

    /// Defaults for a standalone deployment on port 50051.
    fn defaults() -> Self {
        Self {
            platform: PlatformConfig::defaults(Self::SERVICE, 50051),
            sealing: SealingConfig::default(),
            pathways_file: None,
            overdue_sweep_interval_ms: default_sweep_ms(),
        }
    }
}

/// The topics this service publishes to (and the one it consumes), created
/// at start-up with their retention: the indicators service rebuilds from the
/// observations topic from offset zero, so it is kept for ever.
pub const TOPICS: &[(&str, Retention)] = &[
    (topics::REFERRALS_EVENTS, Retention::BrokerDefault),
    (topics::HEALTH_RECORDS, Retention::BrokerDefault),
    (topics::OBSERVATIONS, Retention::Forever),
    // Consumed: what became of the pushes releases and referrals caused.
    (topics::SHARING_EVENTS, Retention::BrokerDefault),
];

/// Migrations applied at start-up.
pub static MIGRATIONS: Migrations = throughcare_platform::migrations!();

/// Runs the service on `listener` until `runtime.shutdown` is cancelled,
/// taking the time from `runtime.clock`.
pub async fn run(config: Config, listener: TcpListener, runtime: Runtime) -> Result<(), RunError> {
    let clock = runtime.clock.clone();
    let rules = pathway_rules(config.pathways_file.as_deref())?;
    let keyring = Keyring::new(&config.sealing).map_err(StartError::from)?;
    let pseudonyms = config.platform.pseudonym_key().map_err(StartError::from)?;
    let platform = Platform::start(&config.platform, MIGRATIONS, TOPICS, &runtime).await?;
    let app = Arc::new(App {
        store: store::Store::new(platform.db.clone()),
        transactions: platform.transactions.clone(),
        registry: platform.authenticator.registry().clone(),
        pseudonyms,
        keyring,
        rules,
        clock,
        topics: events::Topics::new(&platform.bus),
        release_queue: Default::default(),
    });

    let shutdown = runtime.shutdown.clone();
    let server = grpc_server(&app, platform.authenticator.clone(), &shutdown);
    let mut tasks = platform.supervisor();
    let interval = Duration::from_millis(config.overdue_sweep_interval_ms.max(10));
    tasks.spawn(
        "overdue sweep",
        sweep(app.clone(), interval, shutdown.clone()),
    );
    tasks.spawn("idempotency pruning", prune(platform.db.clone(), shutdown));
    let consumed = [topics::SHARING_EVENTS];
    let receipts = app::Consumer::new(app.clone());
    platform.consume(&mut tasks, "throughcare-referrals", &consumed, receipts);
    platform.serve(server, listener, tasks).await
}

/// The four gRPC services over one app, behind the platform's authenticator.
fn grpc_server(
    app: &Arc<App>,
    authenticator: Authenticator,
    shutdown: &CancellationToken,
) -> GrpcServer {
    let limit = grpc::MAX_MESSAGE_BYTES;
    let mut server = GrpcServer::new(authenticator);
    server
        .add_authenticated(
            TransitionsServiceServer::new(grpc::Transitions(app.clone(), shutdown.clone()))
                .max_decoding_message_size(limit),
        )
        .add_authenticated(
            AssessmentsServiceServer::new(grpc::Assessments(app.clone()))
                .max_decoding_message_size(limit),
        )
        .add_authenticated(
            ReferralsServiceServer::new(grpc::Referrals {
                app: app.clone(),
                shutdown: shutdown.clone(),
            })
            .max_decoding_message_size(limit),
        )
        .add_authenticated(
            ContinuityServiceServer::new(grpc::Continuity {
                app: app.clone(),
                shutdown: shutdown.clone(),
            })
            .max_decoding_message_size(limit),
        );
    server
}

/// The pathway rules in `path`, or the built-in defaults.
fn pathway_rules(path: Option<&std::path::Path>) -> Result<PathwayRules, StartError> {
    let Some(path) = path else {
        return Ok(PathwayRules::defaults());
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        StartError::Config(format!(
            "reading pathway rules file {}: {e}",
            path.display()
        ))
    })?;
    PathwayRules::parse(&text).map_err(|e| StartError::Config(e.to_string()))
}

async fn sweep(
    app: Arc<App>,
    every: Duration,
    shutdown: CancellationToken,
) -> Result<(), std::convert::Infallible> {
    let mut ticks = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = ticks.tick() => match app.sweep_overdue().await {
                Ok(0) => {}
                Ok(marked) => tracing::info!(marked, "continuity tasks overdue"),
                Err(error) => tracing::warn!(error = %error.chain(), "overdue sweep failed; will retry"),
            },
        }
    }
}

async fn prune(
    db: throughcare_platform::db::Db,
    shutdown: CancellationToken,
) -> Result<(), std::convert::Infallible> {
    let mut ticks = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = ticks.tick() => {
                if let Err(error) = throughcare_platform::idempotency::prune(&db, 30).await {
                    tracing::warn!(%error, "pruning idempotency keys failed");
                }
            }
        }
    }
}
