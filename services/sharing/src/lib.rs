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
use domain::audit::CheckpointKey;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use throughcare_platform::bus::Retention;
use throughcare_platform::config::{PlatformConfig, Secret};
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
    /// Signs the audit chain's checkpoints.
    #[serde(default)]
    pub audit: AuditConfig,
    /// When pushes fall due, and how often overdue ones are looked for.
    #[serde(default)]
    pub deliveries: DeliveriesConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeliveriesConfig {
    /// The least time a push's recipient has to read it from its feed before
    /// it is overdue and a continuity alert is raised (24 hours). A push at
    /// release is due no sooner than the end of the day after the release:
    /// the toolkit's "health information reaching probation by the day after
    /// release".
    #[serde(default = "default_due_within_secs")]
    pub due_within_secs: u64,
    /// How often overdue pushes are looked for.
    #[serde(default = "default_overdue_check_ms")]
    pub overdue_check_ms: u64,
}

fn default_due_within_secs() -> u64 {
    24 * 60 * 60
}

fn default_overdue_check_ms() -> u64 {
    60_000
}

impl DeliveriesConfig {
    /// The longest a push may be due within: a year.
    const MAX_DUE_WITHIN_SECS: u64 = 366 * 24 * 60 * 60;

    /// How long a push's recipient has to read it, checked.
    pub fn due_within(&self) -> Result<chrono::Duration, StartError> {
        let secs = self.due_within_secs;
        if !(1..=Self::MAX_DUE_WITHIN_SECS).contains(&secs) {
            return Err(StartError::Config(format!(
                "deliveries.due_within_secs (THROUGHCARE_DELIVERIES__DUE_WITHIN_SECS) must be \
                 from 1 to {} seconds, not {secs}",
                Self::MAX_DUE_WITHIN_SECS
            )));
        }
        Ok(chrono::Duration::seconds(secs as i64))
    }
}

impl Default for DeliveriesConfig {
    fn default() -> Self {
        Self {
            due_within_secs: default_due_within_secs(),
            overdue_check_ms: default_overdue_check_ms(),
        }
    }
}

/// The audit chain's signed checkpoints.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditConfig {
    /// The Ed25519 seed that signs checkpoints, 32 bytes in hex
    /// (`THROUGHCARE_AUDIT__SIGNING_KEY`); held by this service alone.
    #[serde(default)]
    pub signing_key: Secret,
    /// How often the chain's head is signed, when it has grown.
    #[serde(default = "default_checkpoint_ms")]
    pub checkpoint_interval_ms: u64,
}

fn default_checkpoint_ms() -> u64 {
    10_000
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            signing_key: Secret::default(),
            checkpoint_interval_ms: default_checkpoint_ms(),
        }
    }
}

impl ServiceConfig for Config {
    const SERVICE: &'static str = "sharing";

    /// Defaults for a standalone deployment on port 50052.
    fn defaults() -> Self {
        Self {
            platform: PlatformConfig::defaults(Self::SERVICE, 50052),
            sealing: SealingConfig::default(),
            at_rest: SealingConfig::default(),
            audit: AuditConfig::default(),
            deliveries: DeliveriesConfig::default(),
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
    let audit_key = CheckpointKey::from_hex(config.audit.signing_key.expose()).map_err(|e| {
        StartError::Config(format!(
            "audit.signing_key (THROUGHCARE_AUDIT__SIGNING_KEY) {e}"
        ))
    })?;
    let delivery_due = config.deliveries.due_within()?;
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
        audit_key,
        checkpoint: Default::default(),
        delivery_due,
    });

    let server = grpc::server(
        &app,
        platform.authenticator.clone(),
        runtime.shutdown.clone(),
    );

    let mut tasks = platform.supervisor();
    let consumed = [topics::HEALTH_RECORDS, topics::REFERRALS_EVENTS];
    let consumer = Consumer::new(app.clone());
    platform.consume(&mut tasks, "throughcare-sharing", &consumed, consumer);
    let (checkpoints, every) = (app.clone(), config.audit.checkpoint_interval_ms.max(10));
    let shutdown = runtime.shutdown.clone();
    tasks.spawn("audit checkpoints", async move {
        checkpoints
            .sign_checkpoints(Duration::from_millis(every), shutdown)
            .await
    });
    let (overdue, every) = (app.clone(), config.deliveries.overdue_check_ms.max(10));
    let shutdown = runtime.shutdown.clone();
    tasks.spawn("overdue pushes", async move {
        overdue
            .watch_overdue(Duration::from_millis(every), shutdown)
            .await
    });
    platform.serve(server, listener, tasks).await
}
