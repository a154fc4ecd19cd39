//! The indicators service: the toolkit's quality indicators with disclosure control, for commissioners.
//!
//! `run` is the whole service; `main.rs` only parses flags and loads config,
//! and the embedded mode links this library beside the others.

pub mod catalogue;
pub mod domain;

use serde::{Deserialize, Serialize};
use throughcare_platform::config::PlatformConfig;
use throughcare_platform::db::Migrations;
use throughcare_platform::grpc::GrpcServer;
use throughcare_platform::service::{Platform, RunError, Runtime, Supervisor};
use throughcare_proto::topics;
use tokio::net::TcpListener;

/// The indicators service's configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    #[serde(flatten)]
    pub platform: PlatformConfig,
}

impl Config {
    /// Defaults for a standalone deployment on port 50053.
    pub fn defaults() -> Self {
        Self {
            platform: PlatformConfig::defaults("indicators", 50053),
        }
    }
}

/// The topics this service publishes to or reads from; created at start-up.
pub const TOPICS: &[&str] = &[topics::INDICATOR_SNAPSHOTS, topics::OBSERVATIONS];

static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate::Migrator::DEFAULT;
static SQLITE: sqlx::migrate::Migrator = sqlx::migrate::Migrator::DEFAULT;

/// Migrations applied at start-up.
pub const MIGRATIONS: Migrations = Migrations {
    postgres: &POSTGRES,
    sqlite: &SQLITE,
};

/// Runs the service on `listener` until `runtime.shutdown` is cancelled.
pub async fn run(config: Config, listener: TcpListener, runtime: Runtime) -> Result<(), RunError> {
    let platform = Platform::start(&config.platform, MIGRATIONS, TOPICS, &runtime).await?;
    let server = GrpcServer::new(platform.authenticator.clone());
    let tasks = Supervisor::new(runtime.shutdown.clone());
    platform
        .serve(
            server,
            listener,
            config.platform.grpc.tls.as_ref(),
            tasks,
            &runtime,
        )
        .await
}
