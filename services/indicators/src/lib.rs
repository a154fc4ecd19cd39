//! The indicators service: the toolkit's quality indicators with disclosure control, for commissioners.
//!
//! `run` is the whole service; `main.rs` only parses flags and loads config,
//! and the embedded mode links this library beside the others.
//!
//! - [`domain`]: periods, areas, strata, the per-person state, the
//!   aggregation core and disclosure control, free of I/O.
//! - [`catalogue`]: the indicator definitions (`indicators.toml`).
//! - [`app`]: the use cases: consuming observations, publishing each closed
//!   period once, reading what was published, structure indicators, and
//!   rebuilding from the log. Errors are the platform's plain
//!   [`Error`](throughcare_platform::error::Error).
//! - [`store`]: the SQL, written once for PostgreSQL and SQLite.
//! - [`grpc`]: the gRPC surface (authorise, delegate, map errors).

pub mod app;
pub mod catalogue;
pub mod domain;
pub mod grpc;
pub mod store;

use app::{App, Consumer, PublicationConfig};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use throughcare_platform::bus::Retention;
use throughcare_platform::config::PlatformConfig;
use throughcare_platform::db::Migrations;
use throughcare_platform::grpc::GrpcServer;
use throughcare_platform::service::{Platform, RunError, Runtime, ServiceConfig, StartError};
use throughcare_proto::indicators::v1::indicators_service_server::IndicatorsServiceServer;
use throughcare_proto::topics;
use tokio::net::TcpListener;

/// The indicators service's configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    #[serde(flatten)]
    pub platform: PlatformConfig,
    #[serde(default)]
    pub publication: PublicationConfig,
}

impl ServiceConfig for Config {
    const SERVICE: &'static str = "indicators";

    /// Defaults for a standalone deployment on port 50053.
    fn defaults() -> Self {
        Self {
            platform: PlatformConfig::defaults(Self::SERVICE, 50053),
            publication: PublicationConfig::default(),
        }
    }

    fn platform(&self) -> &PlatformConfig {
        &self.platform
    }
}

/// The topics this service publishes to or reads from, with their retention;
/// created at start-up. Observations are kept forever: a rebuild replays them
/// from offset zero.
pub const TOPICS: &[(&str, Retention)] = &[
    (topics::INDICATOR_SNAPSHOTS, Retention::BrokerDefault),
    (topics::OBSERVATIONS, Retention::Forever),
];

/// The consumer group reading observations.
pub const CONSUMER_GROUP: &str = "throughcare-indicators";

/// Migrations applied at start-up.
pub static MIGRATIONS: Migrations = throughcare_platform::migrations!();

/// Runs the service on `listener` until `runtime.shutdown` is cancelled,
/// taking the time from `runtime.clock`.
pub async fn run(config: Config, listener: TcpListener, runtime: Runtime) -> Result<(), RunError> {
    let clock = runtime.clock.clone();
    if config.platform.holds_pseudonym_key() {
        // Whoever holds it can re-identify every observation kept for ever on
        // the topic: only the services that mint person keys may.
        return Err(StartError::Config(
            "the indicators service must not be given THROUGHCARE_PSEUDONYM_KEY: \
             only referrals and sharing hold it"
                .into(),
        )
        .into());
    }
    let platform = Platform::start(&config.platform, MIGRATIONS, TOPICS, &runtime).await?;
    let app = Arc::new(
        App::start(
            platform.transactions.clone(),
            platform.authenticator.registry().clone(),
            clock,
            platform.bus.topic(topics::INDICATOR_SNAPSHOTS),
            config.publication.clone(),
        )
        .await
        .map_err(|e| StartError::Config(format!("loading the indicators' stored state: {e}")))?,
    );

    let shutdown = runtime.shutdown.clone();
    let mut server = GrpcServer::new(platform.authenticator.clone());
    server.add_authenticated(
        IndicatorsServiceServer::new(grpc::Indicators {
            app: app.clone(),
            shutdown: shutdown.clone(),
        })
        .max_decoding_message_size(grpc::MAX_MESSAGE_BYTES),
    );

    let mut tasks = platform.supervisor();
    let consumer = Consumer::new(app.clone());
    platform.consume(
        &mut tasks,
        CONSUMER_GROUP,
        &[topics::OBSERVATIONS],
        consumer,
    );
    let publisher = app.clone();
    tasks.spawn("publisher", async move {
        publisher.run_publisher(shutdown).await
    });
    platform.serve(server, listener, tasks).await
}
