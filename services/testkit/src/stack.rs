//! The parts the services of one test share — a bus, databases, a clock, a
//! pseudonym key, transport keys, a registry and one shutdown — and starting
//! a service on them on port 0.

use crate::auth::{Organisation, auth};
use crate::clock::TestClock;
use crate::people::start;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tempfile::TempDir;
use throughcare_platform::bus::Bus;
use throughcare_platform::bus::in_process::InProcessBus;
use throughcare_platform::config::{
    BusBackend, BusConfig, DatabaseConfig, GrpcConfig, KafkaConfig, PlatformConfig, Secret,
};
use throughcare_platform::db::Db;
use throughcare_platform::identity::AuthConfig;
use throughcare_platform::sealing::SealingConfig;
use throughcare_platform::service::{RunError, Runtime};
use throughcare_platform::telemetry::Metrics;
use throughcare_platform::testing::{fresh_postgres, kafka_config, unique};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// How long a service may take to report SERVING.
const READY: Duration = Duration::from_secs(60);

/// Where the services keep their state and pass their events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A fresh PostgreSQL database per service and the Kafka broker, both
    /// started by `tests/run.sh`, under a topic prefix of the test's own.
    PostgresKafka,
    /// SQLite files and one in-process bus, in a temporary directory.
    SqliteInProcess,
}

/// What the services of one test share. Dropping it stops them all.
#[derive(Debug)]
pub struct Stack {
    pub backend: Backend,
    pub clock: Arc<TestClock>,
    /// The bus the services use, for reading what they publish and
    /// publishing as another service would.
    pub bus: Bus,
    pub bus_config: BusConfig,
    /// The pseudonym key every service derives person keys with.
    pub pseudonym_key: Secret,
    /// The keys the referrals service seals health records with for sharing.
    pub transport: SealingConfig,
    shared_bus: Option<Bus>,
    auth: AuthConfig,
    shutdown: CancellationToken,
    dir: Option<TempDir>,
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A service running for a test.
#[derive(Debug)]
pub struct Running {
    /// A connection to it, SERVING.
    pub channel: Channel,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Running {
    /// Stops it gracefully and waits until it has.
    pub async fn stop(self) {
        self.stop.cancel();
        self.task.await.expect("the service stopped cleanly");
    }
}

/// New signing keys under one id.
pub(crate) fn keys(id: &str) -> SealingConfig {
    SealingConfig {
        current: id.into(),
        keys: [(id.to_owned(), Secret::generate(32))].into(),
    }
}

impl Stack {
    /// A stack for tests: on `backend`, acting as `organisations`, with a
    /// manual clock at [`start`].
    pub async fn new(backend: Backend, organisations: &[Organisation]) -> Self {
        Self::with_clock(backend, organisations, TestClock::manual(start())).await
    }

    /// A stack for benchmarks: PostgreSQL, the broker and the system clock.
    pub async fn bench(organisations: &[Organisation]) -> Self {
        Self::with_clock(Backend::PostgresKafka, organisations, TestClock::system()).await
    }

    async fn with_clock(
        backend: Backend,
        organisations: &[Organisation],
        clock: Arc<TestClock>,
    ) -> Self {
        let (bus_config, shared_bus, dir) = match backend {
            Backend::PostgresKafka => {
                // One replica of each service, as a deployment would run it:
                // a service restarted in a test rejoins its groups as itself.
                let kafka = KafkaConfig {
                    instance_id: Some("1".into()),
                    ..kafka_config()
                };
                let config = BusConfig {
                    topic_prefix: format!("{}.", unique("tc")),
                    backend: BusBackend::Kafka(kafka),
                };
                (config, None, None)
            }
            Backend::SqliteInProcess => {
                let dir = TempDir::new().expect("a temporary directory");
                let path = dir.path().join("bus.db");
                let bus = InProcessBus::open(Some(&path), Metrics::disabled())
                    .await
                    .expect("the in-process bus");
                let config = BusConfig {
                    topic_prefix: String::new(),
                    backend: BusBackend::InProcess { path: Some(path) },
                };
                (config, Some(Bus::in_process(bus, "")), Some(dir))
            }
        };
        let bus = match &shared_bus {
            Some(bus) => bus.clone(),
            None => Bus::connect(&bus_config, Metrics::disabled())
                .await
                .expect("the broker"),
        };
        Self {
            backend,
            clock,
            bus,
            bus_config,
            pseudonym_key: Secret::generate(32),
            transport: keys("t1"),
            shared_bus,
            auth: auth(organisations),
            shutdown: CancellationToken::new(),
            dir,
        }
    }

    /// A new, empty database for one service: a fresh PostgreSQL database,
    /// or `{name}.db` in the stack's directory.
    pub async fn database(&self, name: &str) -> String {
        match &self.dir {
            None => fresh_postgres().await,
            Some(dir) => format!(
                "sqlite://{}",
                dir.path().join(name).with_extension("db").display()
            ),
        }
    }

    /// The platform part of a service's configuration, on this stack.
    pub fn platform(&self, database_url: &str) -> PlatformConfig {
        PlatformConfig {
            grpc: GrpcConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                tls: None,
                in_flight: Default::default(),
            },
            database: DatabaseConfig {
                url: Secret::new(database_url),
                max_connections: 8,
            },
            bus: self.bus_config.clone(),
            auth: self.auth.clone(),
            telemetry: Default::default(),
            // Only the services that mint person keys are given it.
            pseudonym_key: Secret::default(),
        }
    }

    /// [`Stack::platform`] for a service that mints person keys: with the
    /// stack's pseudonym key.
    pub fn keyed_platform(&self, database_url: &str) -> PlatformConfig {
        PlatformConfig {
            pseudonym_key: self.pseudonym_key.clone(),
            ..self.platform(database_url)
        }
    }

    /// Starts a service on port 0 — `run(listener, runtime)`, e.g. a
    /// service's `run` with its config — and waits until its
    /// `health` service reports SERVING. It stops with the stack, or alone
    /// with [`Running::stop`].
    pub async fn serve<F, Fut>(&self, health: &'static str, run: F) -> Running
    where
        F: FnOnce(TcpListener, Runtime) -> Fut,
        Fut: Future<Output = Result<(), RunError>> + Send + 'static,
    {
        let stop = self.shutdown.child_token();
        let runtime = Runtime {
            shutdown: stop.clone(),
            metrics: Metrics::disabled(),
            shared_bus: self.shared_bus.clone(),
            clock: self.clock.clone(),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let service = run(listener, runtime);
        let task = tokio::spawn(async move {
            if let Err(error) = service.await {
                panic!("{health} failed: {error}");
            }
        });
        Running {
            channel: wait_serving(&format!("http://{address}"), health).await,
            stop,
            task,
        }
    }
}

/// A number from a query (`SELECT count(*) ...`) on a service's database.
pub async fn count(db: &Db, sql: &str) -> i64 {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    throughcare_platform::on_db!(db, p => sqlx::query_scalar(sql).fetch_one(p).await.unwrap())
}

/// Connects to `endpoint` once it reports `service` SERVING, failing after a minute.
pub async fn wait_serving(endpoint: &str, service: &str) -> Channel {
    let deadline = Instant::now() + READY;
    loop {
        if let Ok(channel) = Channel::from_shared(endpoint.to_owned())
            .unwrap()
            .connect()
            .await
        {
            let serving = HealthClient::new(channel.clone())
                .check(HealthCheckRequest {
                    service: service.into(),
                })
                .await
                .is_ok_and(|r| r.into_inner().status == ServingStatus::Serving as i32);
            if serving {
                return channel;
            }
        }
        assert!(Instant::now() < deadline, "{service} did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
