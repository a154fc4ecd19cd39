//! Service scaffolding: what every service's `run` does before its own logic,
//! and the supervision of its background tasks.
//!
//! A service's `run(config, listener, runtime)` calls [`Platform::start`]
//! (database and migrations, bus and topics, identity, pseudonym key), spawns
//! its relay and consumers under a [`Supervisor`], serves gRPC until shutdown,
//! then waits for everything to drain.

use crate::bus::{
    Bus, BusError, ConsumerOptions, DeadLetterWatch, Handler, Retention, run_consumer,
};
use crate::clock::{SharedClock, SystemClock};
use crate::config::{self, CommonArgs, PlatformConfig, TlsConfig};
use crate::db::{Db, DbError, Migrations};
use crate::grpc::{GrpcServer, ServeError};
use crate::identifiers::PseudonymKeyError;
use crate::identity::{AuthConfigError, Authenticator};
use crate::outbox::{OutboxWaker, Relay};
use crate::telemetry::{self, Metrics};
use crate::work::Transactions;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::convert::Infallible;
use std::future::Future;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// What the caller of `run` provides: the shutdown token, the metrics, and —
/// in the embedded mode — a bus shared by the services of one process.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub shutdown: CancellationToken,
    pub metrics: Metrics,
    pub shared_bus: Option<Bus>,
    /// What the service takes the time from (tests move it).
    pub clock: SharedClock,
}

impl Runtime {
    /// A standalone service's runtime: its own bus, the system clock.
    pub fn new(shutdown: CancellationToken, metrics: Metrics) -> Self {
        Self {
            shutdown,
            metrics,
            shared_bus: None,
            clock: std::sync::Arc::new(SystemClock),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Database(#[from] DbError),
    #[error("bus: {0}")]
    Bus(#[from] BusError),
    #[error("auth configuration: {0}")]
    Auth(#[from] AuthConfigError),
    #[error(transparent)]
    PseudonymKey(#[from] PseudonymKeyError),
    #[error(transparent)]
    Sealing(#[from] crate::sealing::SealingError),
    /// A service's own configuration is unusable; the message says why.
    #[error("{0}")]
    Config(String),
}

/// What a service's configuration gives the binary scaffolding.
pub trait ServiceConfig: Serialize + DeserializeOwned {
    /// The service's name in telemetry and logs.
    const SERVICE: &'static str;
    /// The configuration of a standalone deployment, before any file or
    /// environment overrides it.
    fn defaults() -> Self;
    fn platform(&self) -> &PlatformConfig;
}

impl CommonArgs {
    /// The service's configuration: its defaults, then the `--config` file,
    /// then `THROUGHCARE_` environment variables.
    pub fn load<C: ServiceConfig>(&self) -> Result<C, Box<figment::Error>> {
        config::load(&C::defaults(), self.config.as_deref())
    }
}

/// The platform parts of one running service.
#[derive(Debug, Clone)]
pub struct Platform {
    pub db: Db,
    pub bus: Bus,
    pub authenticator: Authenticator,
    pub waker: OutboxWaker,
    /// Units of work on `db` that wake this service's relay.
    pub transactions: Transactions,
    pub metrics: Metrics,
    /// The runtime the service was started in (shutdown, clock).
    pub runtime: Runtime,
    tls: Option<TlsConfig>,
    in_flight: crate::grpc::InFlightLimits,
    /// The consumer groups started by [`Platform::consume`], for their dead letters.
    dead_letters: DeadLetterWatch,
}

impl Platform {
    /// Connects and migrates the database, opens the bus and creates `topics`
    /// (with the retention the service declares for each, and their
    /// dead-letter topics), and loads identity and keys.
    pub async fn start(
        config: &PlatformConfig,
        migrations: Migrations,
        topics: &[(&str, Retention)],
        runtime: &Runtime,
    ) -> Result<Self, StartError> {
        let authenticator = Authenticator::new(&config.auth)?;
        let db = Db::connect(
            config.database.url.expose(),
            config.database.max_connections,
            migrations,
        )
        .await?;
        let bus = match &runtime.shared_bus {
            Some(bus) => bus.clone(),
            None => Bus::connect(&config.bus, runtime.metrics.clone()).await?,
        };
        let topics: Vec<(String, Retention)> =
            topics.iter().map(|(t, r)| (bus.topic(t), *r)).collect();
        bus.ensure_topics_with(&topics).await?;
        let waker = OutboxWaker::new();
        Ok(Self {
            dead_letters: DeadLetterWatch::new(bus.clone(), runtime.metrics.clone()),
            transactions: Transactions::new(db.clone(), waker.clone()),
            db,
            bus,
            authenticator,
            waker,
            metrics: runtime.metrics.clone(),
            runtime: runtime.clone(),
            tls: config.grpc.tls.clone(),
            in_flight: config.grpc.in_flight,
        })
    }

    /// A supervisor for the service's background tasks, stopped with it.
    pub fn supervisor(&self) -> Supervisor {
        Supervisor::new(self.runtime.shutdown.clone())
    }

    /// Spawns a consumer under `tasks`: `handler` gets every record of
    /// `topics` (unprefixed names) as a member of the consumer `group`.
    pub fn consume<H>(&self, tasks: &mut Supervisor, group: &str, topics: &[&str], handler: H)
    where
        H: Handler + Send + Sync + 'static,
    {
        let bus = self.bus.clone();
        let topics = topics.iter().map(|t| bus.topic(t)).collect();
        let options = ConsumerOptions::new(bus.topic(group), topics);
        self.dead_letters.add(&options.group, &options.topics);
        let (metrics, shutdown) = (self.metrics.clone(), self.runtime.shutdown.clone());
        tasks.spawn("consumer", async move {
            run_consumer(&bus, &options, &handler, &metrics, shutdown).await
        });
    }

    /// The outbox relay for this service's database.
    pub fn relay(&self) -> Relay<Bus> {
        Relay::new(
            self.db.clone(),
            self.bus.clone(),
            self.waker.clone(),
            self.metrics.clone(),
        )
    }

    /// Runs the outbox relay beside `tasks`, serves `server` (with the
    /// configured TLS) until shutdown, then waits for every task to drain and
    /// closes the database.
    pub async fn serve(
        self,
        mut server: GrpcServer,
        listener: TcpListener,
        mut tasks: Supervisor,
    ) -> Result<(), RunError> {
        let runtime = &self.runtime;
        let relay = self.relay();
        let shutdown = runtime.shutdown.clone();
        tasks.spawn("outbox relay", async move {
            relay.run(shutdown).await;
            Ok::<(), Infallible>(())
        });
        server.limit_in_flight(self.in_flight);
        if let Some(consumers) = self.bus.consumer_health() {
            server.watch_consumers(consumers);
        }
        server.watch_dead_letters(self.dead_letters.clone());
        let served = server
            .serve(
                listener,
                self.tls.as_ref(),
                self.metrics.clone(),
                runtime.shutdown.clone(),
            )
            .await;
        // However the server stopped, stop the rest with it.
        runtime.shutdown.cancel();
        let drained = tasks.wait().await;
        self.db.close().await;
        served?;
        drained.map_err(RunError::Task)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Start(#[from] StartError),
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error("background task failed: {0}")]
    Task(String),
}

/// The body of a service binary's `main`: load config (defaults, `--config`
/// file, `THROUGHCARE_` environment), start telemetry, bind the gRPC listener,
/// run until SIGTERM or Ctrl-C, and flush telemetry on the way out.
pub async fn run_binary<C, F, Fut>(
    args: &CommonArgs,
    run: F,
) -> Result<(), Box<dyn std::error::Error>>
where
    C: ServiceConfig,
    F: FnOnce(C, TcpListener, Runtime) -> Fut,
    Fut: Future<Output = Result<(), RunError>>,
{
    let service = C::SERVICE;
    let config: C = args.load()?;
    let telemetry = telemetry::init_telemetry(service, &config.platform().telemetry)?;
    let listen = config.platform().grpc.listen;
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| format!("binding {listen}: {e}"))?;
    let runtime = Runtime::new(crate::shutdown::on_signals(), telemetry.metrics());
    let outcome = run(config, listener, runtime).await;
    if let Err(error) = &outcome {
        tracing::error!(%error, "{service} stopped with an error");
    }
    drop(telemetry);
    Ok(outcome?)
}

/// Runs a service's background tasks. If one fails, shutdown is triggered so
/// the whole service stops (and its orchestrator restarts it) rather than
/// running half-alive.
#[derive(Debug)]
pub struct Supervisor {
    tasks: JoinSet<(&'static str, Result<(), String>)>,
    shutdown: CancellationToken,
}

impl Supervisor {
    pub fn new(shutdown: CancellationToken) -> Self {
        Self {
            tasks: JoinSet::new(),
            shutdown,
        }
    }

    pub fn spawn<F, E>(&mut self, name: &'static str, task: F)
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: std::fmt::Display,
    {
        let shutdown = self.shutdown.clone();
        self.tasks.spawn(async move {
            let result = task.await.map_err(|e| e.to_string());
            if let Err(error) = &result {
                tracing::error!(task = name, %error, "background task failed; shutting down");
                shutdown.cancel();
            }
            (name, result)
        });
    }

    /// Waits for every task; the first failure, if any, is returned.
    pub async fn wait(mut self) -> Result<(), String> {
        let mut first_error = None;
        while let Some(joined) = self.tasks.join_next().await {
            let outcome = match joined {
                Ok((name, Err(error))) => Some(format!("{name}: {error}")),
                Ok((_, Ok(()))) => None,
                Err(panic) => Some(format!("task panicked: {panic}")),
            };
            if let Some(error) = outcome {
                self.shutdown.cancel();
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}
