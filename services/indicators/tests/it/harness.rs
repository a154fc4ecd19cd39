//! Starts the referrals and indicators services together, on real parts,
//! sharing a bus, a pseudonym key and a clock, the way they run in a
//! deployment; the indicators service can be restarted on its database.

use chrono::{DateTime, TimeZone, Utc};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tempfile::TempDir;
use throughcare_indicators::app::{self, PublicationConfig};
use throughcare_indicators::catalogue::Catalogue;
use throughcare_indicators::domain::core::Aggregator;
use throughcare_platform::bus::Bus;
use throughcare_platform::bus::in_process::InProcessBus;
use throughcare_platform::clock::ManualClock;
use throughcare_platform::config::{
    BusBackend, BusConfig, DatabaseConfig, GrpcConfig, PlatformConfig, Secret,
};
use throughcare_platform::db::Db;
use throughcare_platform::grpc::Bearer;
use throughcare_platform::identifiers::NhsNumber;
use throughcare_platform::identity::{
    AreaConfig, AreaType, AuthConfig, OrganisationConfig, OrganisationKind, Role, TokenConfig,
};
use throughcare_platform::sealing::SealingConfig;
use throughcare_platform::service::Runtime;
use throughcare_platform::telemetry::Metrics;
use throughcare_platform::testing::{eventually, fresh_postgres, kafka_config, unique};
use throughcare_proto::indicators::v1::indicators_service_client::IndicatorsServiceClient;
use throughcare_proto::referrals::v1::transitions_service_client::TransitionsServiceClient;
use throughcare_proto::topics;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::codegen::InterceptedService;
use tonic::transport::Channel;

pub const WAIT: Duration = Duration::from_secs(60);

type Org = (
    &'static str,
    OrganisationKind,
    Role,
    &'static [(AreaType, &'static str)],
);

/// Who the tests act as (one role each).
const ORGANISATIONS: &[Org] = &[
    (
        "LEI",
        OrganisationKind::PrisonHealthcare,
        Role::System,
        &[(AreaType::Prison, "LEI")],
    ),
    (
        "EMR",
        OrganisationKind::Probation,
        Role::HealthLead,
        &[(AreaType::ProbationRegion, "EMR")],
    ),
    (
        "EMR-LEI",
        OrganisationKind::Probation,
        Role::Governance,
        &[
            (AreaType::ProbationDeliveryUnit, "EMR-LEI"),
            (AreaType::ProbationRegion, "EMR"),
        ],
    ),
    (
        "QK1",
        OrganisationKind::Commissioner,
        Role::Analyst,
        &[
            (AreaType::IntegratedCareBoard, "QK1"),
            (AreaType::LocalAuthority, "E06000016"),
        ],
    ),
    (
        "QHM",
        OrganisationKind::Commissioner,
        Role::Analyst,
        &[(AreaType::IntegratedCareBoard, "QHM")],
    ),
    (
        "NHSE-HJ",
        OrganisationKind::National,
        Role::Analyst,
        &[(AreaType::National, "ENG")],
    ),
];

fn auth() -> AuthConfig {
    AuthConfig {
        organisations: ORGANISATIONS
            .iter()
            .map(|(code, kind, _, areas)| OrganisationConfig {
                code: code.to_string(),
                name: format!("{code} (test)"),
                kind: *kind,
                areas: areas
                    .iter()
                    .map(|(t, c)| AreaConfig {
                        area_type: *t,
                        code: c.to_string(),
                    })
                    .collect(),
            })
            .collect(),
        tokens: ORGANISATIONS
            .iter()
            .map(|(code, _, role, _)| TokenConfig {
                token: Secret::new(format!("indicators-test-token-{code}")),
                organisation: code.to_string(),
                role: *role,
            })
            .collect(),
    }
}

/// The tests' first morning: 2 March 2026.
pub fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
}

pub fn nhs(n: u32) -> String {
    (0..)
        .map(|i| format!("{:09}", 700_000_000 + n * 17 + i))
        .find_map(|prefix| {
            NhsNumber::check_digit(prefix.as_bytes().try_into().unwrap())
                .map(|c| format!("{prefix}{c}"))
        })
        .unwrap()
}

type Authed = InterceptedService<Channel, Bearer>;

/// The running indicators service.
struct Running {
    channel: Channel,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

pub struct Rig {
    pub clock: Arc<ManualClock>,
    /// The indicators service's database.
    pub db: Db,
    referrals_db: Db,
    /// The bus, for replaying the log and reading the snapshots topic.
    pub bus: Bus,
    config: throughcare_indicators::Config,
    runtime: Runtime,
    referrals: Channel,
    indicators: Option<Running>,
    shutdown: CancellationToken,
    _dir: Option<TempDir>,
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn platform(url: String, bus: BusConfig, key: &Secret) -> PlatformConfig {
    PlatformConfig {
        grpc: GrpcConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            tls: None,
        },
        database: DatabaseConfig {
            url: Secret::new(url),
            max_connections: 8,
        },
        bus,
        auth: auth(),
        telemetry: Default::default(),
        pseudonym_key: key.clone(),
    }
}

impl Rig {
    pub async fn postgres_kafka() -> Self {
        let config = BusConfig {
            topic_prefix: format!("{}.", unique("ind")),
            backend: BusBackend::Kafka(kafka_config()),
        };
        let bus = Bus::connect(&config, Metrics::disabled()).await.unwrap();
        Self::start(
            fresh_postgres().await,
            fresh_postgres().await,
            config,
            bus,
            None,
            None,
        )
        .await
    }

    pub async fn sqlite_in_process() -> Self {
        let dir = TempDir::new().unwrap();
        let path = |name: &str| format!("sqlite://{}", dir.path().join(name).display());
        let bus_path = dir.path().join("bus.db");
        let shared = Bus::in_process(
            InProcessBus::open(Some(&bus_path), Metrics::disabled())
                .await
                .unwrap(),
            "",
        );
        let config = BusConfig {
            topic_prefix: String::new(),
            backend: BusBackend::InProcess {
                path: Some(bus_path),
            },
        };
        Self::start(
            path("referrals.db"),
            path("indicators.db"),
            config,
            shared.clone(),
            Some(shared),
            Some(dir),
        )
        .await
    }

    async fn start(
        referrals_url: String,
        indicators_url: String,
        bus_config: BusConfig,
        bus: Bus,
        shared: Option<Bus>,
        dir: Option<TempDir>,
    ) -> Self {
        let pseudonym_key = Secret::generate(32);
        let clock = ManualClock::new(start());
        let shutdown = CancellationToken::new();
        let runtime = Runtime {
            shutdown: shutdown.clone(),
            metrics: Metrics::disabled(),
            shared_bus: shared,
        };
        let referrals = throughcare_referrals::Config {
            platform: platform(referrals_url.clone(), bus_config.clone(), &pseudonym_key),
            sealing: SealingConfig {
                current: "t1".into(),
                keys: [("t1".to_owned(), Secret::generate(32))].into(),
            },
            pathways_file: None,
            overdue_sweep_interval_ms: 60_000,
        };
        let listener = listen().await;
        let address = listener.local_addr().unwrap();
        let (r_runtime, r_clock) = (runtime.clone(), clock.clone());
        tokio::spawn(async move {
            throughcare_referrals::run_with_clock(referrals, listener, r_runtime, r_clock)
                .await
                .expect("referrals service");
        });
        let referrals = connect(
            &format!("http://{address}"),
            "throughcare.referrals.v1.TransitionsService",
        )
        .await;
        let config = throughcare_indicators::Config {
            platform: platform(indicators_url.clone(), bus_config, &pseudonym_key),
            publication: PublicationConfig {
                grace_days: 14,
                check_interval_ms: 50,
                settle_ms: 0,
            },
        };
        let mut rig = Self {
            clock,
            db: Db::connect(&indicators_url, 2, throughcare_indicators::MIGRATIONS)
                .await
                .unwrap(),
            referrals_db: Db::connect(&referrals_url, 2, throughcare_referrals::MIGRATIONS)
                .await
                .unwrap(),
            bus,
            config,
            runtime,
            referrals,
            indicators: None,
            shutdown,
            _dir: dir,
        };
        rig.start_indicators().await;
        rig
    }

    /// The indicators service's configuration (for its command line).
    pub fn config(&self) -> &throughcare_indicators::Config {
        &self.config
    }

    /// Changes the configuration the next (re)start uses.
    pub fn config_mut(&mut self) -> &mut throughcare_indicators::Config {
        &mut self.config
    }

    pub async fn start_indicators(&mut self) {
        let stop = self.shutdown.child_token();
        let runtime = Runtime {
            shutdown: stop.clone(),
            ..self.runtime.clone()
        };
        let (config, clock) = (self.config.clone(), self.clock.clone());
        let listener = listen().await;
        let address = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            throughcare_indicators::run_with_clock(config, listener, runtime, clock)
                .await
                .expect("indicators service");
        });
        let channel = connect(
            &format!("http://{address}"),
            "throughcare.indicators.v1.IndicatorsService",
        )
        .await;
        self.indicators = Some(Running {
            channel,
            stop,
            task,
        });
    }

    /// Stops the indicators service and starts it again on its database.
    pub async fn restart_indicators(&mut self) {
        self.stop_indicators().await;
        self.start_indicators().await;
    }

    pub async fn stop_indicators(&mut self) {
        if let Some(running) = self.indicators.take() {
            running.stop.cancel();
            running.task.await.unwrap();
        }
    }

    fn bearer(organisation: &str) -> Bearer {
        Bearer::new(&format!("indicators-test-token-{organisation}")).unwrap()
    }

    pub fn transitions(&self, org: &str) -> TransitionsServiceClient<Authed> {
        TransitionsServiceClient::with_interceptor(self.referrals.clone(), Self::bearer(org))
    }

    pub fn indicators(&self, org: &str) -> IndicatorsServiceClient<Authed> {
        let channel = self
            .indicators
            .as_ref()
            .expect("indicators running")
            .channel
            .clone();
        IndicatorsServiceClient::with_interceptor(channel, Self::bearer(org))
    }

    /// The stored state, loaded as the service loads it at start-up.
    pub async fn stored(&self) -> Aggregator {
        app::load(&self.db, Catalogue::standard()).await.unwrap()
    }

    /// The state rebuilt from the observations topic, from offset zero.
    pub async fn rebuilt(&self) -> Aggregator {
        let topic = self.bus.topic(topics::OBSERVATIONS);
        app::rebuild::from_log(&self.bus, &topic, Catalogue::standard())
            .await
            .unwrap()
            .0
    }

    /// Waits until everything the referrals service has recorded has reached
    /// the log and the indicators service has applied all of it: its stored
    /// state then equals the state rebuilt from offset zero.
    pub async fn settle(&self) -> Aggregator {
        eventually(WAIT, "indicators caught up with the log", || async {
            let pending: i64 = throughcare_platform::on_db!(&self.referrals_db, p =>
                sqlx::query_scalar("SELECT count(*) FROM outbox").fetch_one(p).await.unwrap());
            if pending > 0 {
                return None;
            }
            let stored = self.stored().await;
            (stored.fingerprint() == self.rebuilt().await.fingerprint()).then_some(stored)
        })
        .await
    }
}

async fn listen() -> tokio::net::TcpListener {
    tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap()
}

async fn connect(endpoint: &str, service: &str) -> Channel {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(channel) = Channel::from_shared(endpoint.to_owned())
            .unwrap()
            .connect()
            .await
        {
            let serving = tonic_health::pb::health_client::HealthClient::new(channel.clone())
                .check(tonic_health::pb::HealthCheckRequest {
                    service: service.into(),
                })
                .await
                .is_ok_and(|r| r.into_inner().status == 1);
            if serving {
                return channel;
            }
        }
        assert!(Instant::now() < deadline, "{service} did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
