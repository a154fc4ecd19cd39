//! Starts the referrals service for one test, on real parts, and talks to it.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tempfile::TempDir;
use throughcare_platform::bus::in_process::InProcessBus;
use throughcare_platform::bus::{Bus, BusSubscription, Event, Subscriber, Subscription};
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
use throughcare_platform::sealing::{Keyring, SealingConfig};
use throughcare_platform::service::Runtime;
use throughcare_platform::telemetry::Metrics;
use throughcare_platform::testing::{fresh_postgres, kafka_config, unique};
use throughcare_proto::referrals::v1::assessments_service_client::AssessmentsServiceClient;
use throughcare_proto::referrals::v1::continuity_service_client::ContinuityServiceClient;
use throughcare_proto::referrals::v1::referrals_service_client::ReferralsServiceClient;
use throughcare_proto::referrals::v1::transitions_service_client::TransitionsServiceClient;
use throughcare_proto::topics;
use throughcare_referrals::Config;
use tokio_util::sync::CancellationToken;
use tonic::codegen::InterceptedService;
use tonic::transport::Channel;

pub const WAIT: Duration = Duration::from_secs(30);

/// An organisation a test can act as: code, kind, its one role, its areas.
type TestOrganisation = (
    &'static str,
    OrganisationKind,
    Role,
    &'static [(AreaType, &'static str)],
);

/// The organisations every test can act as.
const ORGANISATIONS: &[TestOrganisation] = &[
    (
        "LEI",
        OrganisationKind::PrisonHealthcare,
        Role::System,
        &[(AreaType::Prison, "LEI")],
    ),
    (
        "NMI",
        OrganisationKind::PrisonHealthcare,
        Role::System,
        &[(AreaType::Prison, "NMI")],
    ),
    (
        "EMR",
        OrganisationKind::Probation,
        Role::Practitioner,
        &[(AreaType::ProbationRegion, "EMR")],
    ),
    (
        "EMR-LEI",
        OrganisationKind::Probation,
        Role::Practitioner,
        &[
            (AreaType::ProbationDeliveryUnit, "EMR-LEI"),
            (AreaType::ProbationRegion, "EMR"),
        ],
    ),
    (
        "EMR-NOT",
        OrganisationKind::Probation,
        Role::Practitioner,
        &[
            (AreaType::ProbationDeliveryUnit, "EMR-NOT"),
            (AreaType::ProbationRegion, "EMR"),
        ],
    ),
    ("TP-LEI", OrganisationKind::Provider, Role::System, &[]),
    ("RT5", OrganisationKind::Provider, Role::System, &[]),
    ("C82010", OrganisationKind::Provider, Role::System, &[]),
    (
        "QK1",
        OrganisationKind::Commissioner,
        Role::Analyst,
        &[(AreaType::IntegratedCareBoard, "QK1")],
    ),
];

pub fn token(organisation: &str) -> String {
    format!("test-token-for-{organisation}")
}

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
                token: Secret::new(token(code)),
                organisation: code.to_string(),
                role: *role,
            })
            .collect(),
    }
}

/// The day the tests' clock starts on.
pub fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
}

pub fn today() -> NaiveDate {
    start().date_naive()
}

/// The nth valid NHS number of the test population.
pub fn nhs(n: u32) -> String {
    (0..)
        .map(|i| format!("{:09}", 900_000_000 + n * 13 + i))
        .find_map(|prefix| {
            let digits: [u8; 9] = prefix.as_bytes().try_into().unwrap();
            NhsNumber::check_digit(&digits).map(|check| format!("{prefix}{check}"))
        })
        .unwrap()
}

type Authed = InterceptedService<Channel, Bearer>;

pub struct TestService {
    pub clock: Arc<ManualClock>,
    pub db: Db,
    pub bus: Bus,
    pub keyring: Keyring,
    channel: Channel,
    shutdown: CancellationToken,
    _dir: Option<TempDir>,
}

impl Drop for TestService {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl TestService {
    pub async fn postgres_kafka() -> Self {
        let bus = BusConfig {
            topic_prefix: format!("{}.", unique("ref")),
            backend: BusBackend::Kafka(kafka_config()),
        };
        Self::start(fresh_postgres().await, bus, None).await
    }

    pub async fn sqlite_in_process() -> Self {
        let dir = TempDir::new().unwrap();
        let bus_path = dir.path().join("bus.db");
        let bus = BusConfig {
            topic_prefix: String::new(),
            backend: BusBackend::InProcess {
                path: Some(bus_path.clone()),
            },
        };
        let url = format!("sqlite://{}", dir.path().join("referrals.db").display());
        Self::start(url, bus, Some(dir)).await
    }

    async fn start(url: String, bus_config: BusConfig, dir: Option<TempDir>) -> Self {
        let sealing = SealingConfig {
            current: "k1".into(),
            keys: [("k1".to_owned(), Secret::generate(32))].into(),
        };
        let config = Config {
            platform: PlatformConfig {
                grpc: GrpcConfig {
                    listen: "127.0.0.1:0".parse().unwrap(),
                    tls: None,
                },
                database: DatabaseConfig {
                    url: Secret::new(url.clone()),
                    max_connections: 8,
                },
                bus: bus_config.clone(),
                auth: auth(),
                telemetry: Default::default(),
                pseudonym_key: Secret::generate(32),
            },
            sealing: sealing.clone(),
            pathways_file: None,
            overdue_sweep_interval_ms: 50,
        };
        let shared = match &bus_config.backend {
            BusBackend::InProcess { path } => {
                let bus = InProcessBus::open(path.as_deref(), Metrics::disabled())
                    .await
                    .unwrap();
                Some(Bus::in_process(bus, ""))
            }
            BusBackend::Kafka(_) => None,
        };
        let bus = match &shared {
            Some(bus) => bus.clone(),
            None => Bus::connect(&bus_config, Metrics::disabled())
                .await
                .unwrap(),
        };
        let clock = ManualClock::new(start());
        let shutdown = CancellationToken::new();
        let runtime = Runtime {
            shutdown: shutdown.clone(),
            metrics: Metrics::disabled(),
            shared_bus: shared,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let service_clock = clock.clone();
        tokio::spawn(async move {
            if let Err(error) =
                throughcare_referrals::run_with_clock(config, listener, runtime, service_clock)
                    .await
            {
                panic!("referrals service failed: {error}");
            }
        });
        let channel = connect(&format!("http://{addr}")).await;
        let db = Db::connect(&url, 2, throughcare_referrals::MIGRATIONS)
            .await
            .unwrap();
        Self {
            clock,
            db,
            bus,
            keyring: Keyring::new(&sealing).unwrap(),
            channel,
            shutdown,
            _dir: dir,
        }
    }

    fn bearer(organisation: &str) -> Bearer {
        Bearer::new(&token(organisation)).unwrap()
    }

    pub fn transitions(&self, organisation: &str) -> TransitionsServiceClient<Authed> {
        TransitionsServiceClient::with_interceptor(self.channel.clone(), Self::bearer(organisation))
    }

    pub fn referrals(&self, organisation: &str) -> ReferralsServiceClient<Authed> {
        ReferralsServiceClient::with_interceptor(self.channel.clone(), Self::bearer(organisation))
    }

    pub fn continuity(&self, organisation: &str) -> ContinuityServiceClient<Authed> {
        ContinuityServiceClient::with_interceptor(self.channel.clone(), Self::bearer(organisation))
    }

    pub fn assessments(&self, organisation: &str) -> AssessmentsServiceClient<Authed> {
        AssessmentsServiceClient::with_interceptor(self.channel.clone(), Self::bearer(organisation))
    }

    /// Everything the service publishes, read from the start of its topics.
    pub async fn events(&self) -> EventLog {
        let topics = [
            topics::REFERRALS_EVENTS,
            topics::HEALTH_RECORDS,
            topics::OBSERVATIONS,
        ]
        .map(|t| self.bus.topic(t));
        EventLog {
            subscription: self
                .bus
                .subscribe(&unique("test-reader"), &topics)
                .await
                .unwrap(),
            events: Vec::new(),
        }
    }

    pub async fn count(&self, table: &str) -> i64 {
        let sql = sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}"));
        throughcare_platform::on_db!(&self.db, p => sqlx::query_scalar(sql).fetch_one(p).await.unwrap())
    }
}

async fn connect(endpoint: &str) -> Channel {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(channel) = Channel::from_shared(endpoint.to_owned())
            .unwrap()
            .connect()
            .await
        {
            let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
            let serving = health
                .check(tonic_health::pb::HealthCheckRequest {
                    service: "throughcare.referrals.v1.TransitionsService".into(),
                })
                .await
                .is_ok_and(|r| r.into_inner().status == 1);
            if serving {
                return channel;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the referrals service did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What the service published, accumulated as it arrives.
pub struct EventLog {
    subscription: BusSubscription,
    pub events: Vec<(Event, String)>,
}

impl EventLog {
    /// Reads until `find` finds what it wants in the events so far (each with
    /// its record key), failing after [`WAIT`].
    pub async fn wait_for<T>(
        &mut self,
        what: &str,
        mut find: impl FnMut(&[(Event, String)]) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(found) = find(&self.events) {
                return found;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let received = tokio::time::timeout(left, self.subscription.next())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "timed out waiting for {what}; saw {} events",
                        self.events.len()
                    )
                })
                .unwrap();
            let key = received.record.key.clone();
            self.events.push((
                Event::from_record(&received.record).expect("a cloudevent"),
                key,
            ));
        }
    }

    /// Every event of type `M` so far, decoded.
    pub fn all<M: prost::Message + prost::Name + Default>(&self) -> Vec<M> {
        self.events
            .iter()
            .filter(|(e, _)| e.is::<M>())
            .map(|(e, _)| e.decode().unwrap())
            .collect()
    }
}

/// Every observation in these events, out of their batches.
pub fn observations(events: &[(Event, String)]) -> Vec<throughcare_proto::events::v1::Observation> {
    events
        .iter()
        .filter(|(e, _)| e.is::<throughcare_proto::events::v1::ObservationsRecorded>())
        .flat_map(|(e, _)| {
            e.decode::<throughcare_proto::events::v1::ObservationsRecorded>()
                .unwrap()
                .observations
        })
        .collect()
}
