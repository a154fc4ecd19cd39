//! The sharing service: consent and lawful bases, disclosure of exactly the
//! permitted categories (on request, and pushed at transition points), and a
//! tamper-evident audit log of every decision.
//!
//! `run` is the whole service; `main.rs` only parses flags and loads config,
//! and the embedded mode links this library beside the others.
//!
//! - [`domain`]: the pure rules — the disclosure decision, minimisation, the
//!   audit chain, wire-to-domain conversion;
//! - [`store`]: the SQL, written once for PostgreSQL and SQLite;
//! - [`app`]: the use cases, each one unit of work, and the consumer of the
//!   referrals service's events;
//! - [`grpc`]: authorises each RPC and delegates; the one place errors become
//!   gRPC statuses (through the platform's mapping).

pub mod app;
pub mod domain;
pub mod grpc;
pub mod store;

use app::{App, Consumer};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use throughcare_platform::bus::Retention;
use throughcare_platform::config::PlatformConfig;
use throughcare_platform::db::Migrations;
use throughcare_platform::sealing::{Keyring, SealingConfig};
use throughcare_platform::service::{Platform, RunError, Runtime, ServiceConfig, StartError};
use throughcare_proto::topics;
use tokio::net::TcpListener;

/// The sharing service's configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    #[serde(flatten)]
    pub platform: PlatformConfig,
    /// Opens health records sealed by the referrals service (the same keys).
    #[serde(default)]
    pub sealing: SealingConfig,
    /// Seals health records at rest in this service's database; held by no
    /// other service.
    #[serde(default)]
    pub at_rest: SealingConfig,
}

impl ServiceConfig for Config {
    const SERVICE: &'static str = "sharing";

    /// Defaults for a standalone deployment on port 50052.
    fn defaults() -> Self {
        Self {
            platform: PlatformConfig::defaults(Self::SERVICE, 50052),
            sealing: SealingConfig::default(),
            at_rest: SealingConfig::default(),
        }
    }

    fn platform(&self) -> &PlatformConfig {
        &self.platform
    }
}

/// The topics this service publishes to or reads from, with their retention;
/// created at start-up. Observations are kept forever: the indicators service
/// rebuilds from them.
pub const TOPICS: &[(&str, Retention)] = &[
    (topics::SHARING_EVENTS, Retention::BrokerDefault),
    (topics::OBSERVATIONS, Retention::Forever),
    (topics::HEALTH_RECORDS, Retention::BrokerDefault),
    (topics::REFERRALS_EVENTS, Retention::BrokerDefault),
];

/// Migrations applied at start-up.
pub static MIGRATIONS: Migrations = throughcare_platform::migrations!();

/// Runs the service on `listener` until `runtime.shutdown` is cancelled,
/// taking the time from `runtime.clock`.
pub async fn run(config: Config, listener: TcpListener, runtime: Runtime) -> Result<(), RunError> {
    let clock = runtime.clock.clone();
    let transport = Keyring::new(&config.sealing).map_err(StartError::from)?;
    let pseudonyms = config.platform.pseudonym_key().map_err(StartError::from)?;
    let at_rest =
        Keyring::new(&config.at_rest).map_err(|e| StartError::Config(format!("at_rest: {e}")))?;
    let platform = Platform::start(&config.platform, MIGRATIONS, TOPICS, &runtime).await?;
    let app = Arc::new(App {
        transactions: platform.transactions.clone(),
        registry: platform.authenticator.registry().clone(),
        pseudonyms,
        transport,
        at_rest,
        clock,
        events_topic: platform.bus.topic(topics::SHARING_EVENTS),
        observations_topic: platform.bus.topic(topics::OBSERVATIONS),
    });

    let server = grpc::server(&app, platform.authenticator.clone(), runtime.shutdown);

    let mut tasks = platform.supervisor();
    let consumed = [topics::HEALTH_RECORDS, topics::REFERRALS_EVENTS];
    let consumer = Consumer::new(app.clone());
    platform.consume(&mut tasks, "throughcare-sharing", &consumed, consumer);
    platform.serve(server, listener, tasks).await
}
