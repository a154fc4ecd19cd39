//! Starts the referrals and sharing services together, on real parts, sharing
//! a bus and keys, the way they run in a deployment.

use chrono::{DateTime, TimeZone, Utc};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tempfile::TempDir;
use throughcare_platform::bus::in_process::InProcessBus;
use throughcare_platform::bus::{Bus, Event, Subscriber, Subscription};
use throughcare_platform::clock::ManualClock;
use throughcare_platform::config::{
    BusBackend, BusConfig, DatabaseConfig, GrpcConfig, PlatformConfig, Secret,
};
use throughcare_platform::db::Db;
use throughcare_platform::grpc::Bearer;
use throughcare_platform::identifiers::{NhsNumber, PseudonymKey};
use throughcare_platform::identity::{
    AreaConfig, AreaType, AuthConfig, OrganisationConfig, OrganisationKind, Role, TokenConfig,
};
use throughcare_platform::sealing::SealingConfig;
use throughcare_platform::service::Runtime;
use throughcare_platform::telemetry::Metrics;
use throughcare_platform::testing::{eventually, fresh_postgres, kafka_config, unique};
use throughcare_proto::events::v1::ObservationsRecorded;
use throughcare_proto::referrals::v1::referrals_service_client::ReferralsServiceClient;
use throughcare_proto::referrals::v1::transitions_service_client::TransitionsServiceClient;
use throughcare_proto::sharing::v1::agreements_service_client::AgreementsServiceClient;
use throughcare_proto::sharing::v1::audit_service_client::AuditServiceClient;
use throughcare_proto::sharing::v1::consent_service_client::ConsentServiceClient;
use throughcare_proto::sharing::v1::disclosure_service_client::DisclosureServiceClient;
use throughcare_proto::topics;
use tokio_util::sync::CancellationToken;
use tonic::codegen::InterceptedService;
use tonic::transport::Channel;

pub const WAIT: Duration = Duration::from_secs(30);

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
        Role::Governance,
        &[(AreaType::ProbationRegion, "EMR")],
    ),
    (
        "EMR-LEI",
        OrganisationKind::Probation,
        Role::Practitioner,
        &[(AreaType::ProbationRegion, "EMR")],
    ),
    (
        "EMR-NOT",
        OrganisationKind::Probation,
        Role::Practitioner,
        &[(AreaType::ProbationRegion, "EMR")],
    ),
    ("TP-LEI", OrganisationKind::Provider, Role::System, &[]),
    ("RT5", OrganisationKind::Provider, Role::System, &[]),
    ("QK1", OrganisationKind::Commissioner, Role::Analyst, &[]),
    ("NHSE-HJ", OrganisationKind::National, Role::Auditor, &[]),
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
                token: Secret::new(format!("sharing-test-token-{code}")),
                organisation: code.to_string(),
                role: *role,
            })
            .collect(),
    }
}

pub fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
}

pub fn nhs(n: u32) -> String {
    (0..)
        .map(|i| format!("{:09}", 800_000_000 + n * 17 + i))
        .find_map(|prefix| {
            NhsNumber::check_digit(prefix.as_bytes().try_into().unwrap())
                .map(|c| format!("{prefix}{c}"))
        })
        .unwrap()
}

type Authed = InterceptedService<Channel, Bearer>;

pub struct Rig {
    pub clock: Arc<ManualClock>,
    /// The sharing service's database.
    pub db: Db,
    pub db_url: String,
    /// The bus both services use, for reading what they publish.
    pub bus: Bus,
    /// The services' pseudonym key, to derive the keys they publish.
    pub pseudonyms: PseudonymKey,
    referrals: Channel,
    sharing: Channel,
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

fn keys(id: &str) -> SealingConfig {
    SealingConfig {
        current: id.into(),
        keys: [(id.to_owned(), Secret::generate(32))].into(),
    }
}

impl Rig {
    pub async fn postgres_kafka() -> Self {
        let bus = BusConfig {
            topic_prefix: format!("{}.", unique("shr")),
            backend: BusBackend::Kafka(kafka_config()),
        };
        Self::start(
            fresh_postgres().await,
            fresh_postgres().await,
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
        let bus = InProcessBus::open(Some(&bus_path), Metrics::disabled())
            .await
            .unwrap();
        let config = BusConfig {
            topic_prefix: String::new(),
            backend: BusBackend::InProcess {
                path: Some(bus_path),
            },
        };
        Self::start(
            path("referrals.db"),
            path("sharing.db"),
            config,
            Some(Bus::in_process(bus, "")),
            Some(dir),
        )
        .await
    }

    async fn start(
        referrals_url: String,
        sharing_url: String,
        bus: BusConfig,
        shared: Option<Bus>,
        dir: Option<TempDir>,
    ) -> Self {
        let pseudonym_key = Secret::generate(32);
        let transport = keys("t1");
        let clock = ManualClock::new(start());
        let shutdown = CancellationToken::new();
        let reader = match &shared {
            Some(bus) => bus.clone(),
            None => Bus::connect(&bus, Metrics::disabled()).await.unwrap(),
        };
        let runtime = Runtime {
            shutdown: shutdown.clone(),
            metrics: Metrics::disabled(),
            shared_bus: shared,
        };

        let referrals = throughcare_referrals::Config {
            platform: platform(referrals_url, bus.clone(), &pseudonym_key),
            sealing: transport.clone(),
            pathways_file: None,
            overdue_sweep_interval_ms: 60_000,
        };
        let sharing = throughcare_sharing::Config {
            platform: platform(sharing_url.clone(), bus, &pseudonym_key),
            sealing: transport,
            at_rest: keys("r1"),
        };
        let (r_listener, s_listener) = (listen().await, listen().await);
        let (r_addr, s_addr) = (
            r_listener.local_addr().unwrap(),
            s_listener.local_addr().unwrap(),
        );
        let (r_runtime, r_clock) = (runtime.clone(), clock.clone());
        tokio::spawn(async move {
            throughcare_referrals::run_with_clock(referrals, r_listener, r_runtime, r_clock)
                .await
                .expect("referrals service");
        });
        let s_clock = clock.clone();
        tokio::spawn(async move {
            throughcare_sharing::run_with_clock(sharing, s_listener, runtime, s_clock)
                .await
                .expect("sharing service");
        });
        let referrals = connect(
            &format!("http://{r_addr}"),
            "throughcare.referrals.v1.TransitionsService",
        )
        .await;
        let sharing = connect(
            &format!("http://{s_addr}"),
            "throughcare.sharing.v1.DisclosureService",
        )
        .await;
        Self {
            clock,
            db: Db::connect(&sharing_url, 2, throughcare_sharing::MIGRATIONS)
                .await
                .unwrap(),
            db_url: sharing_url,
            bus: reader,
            pseudonyms: PseudonymKey::from_hex(pseudonym_key.expose()).unwrap(),
            referrals,
            sharing,
            shutdown,
            _dir: dir,
        }
    }

    fn bearer(organisation: &str) -> Bearer {
        Bearer::new(&format!("sharing-test-token-{organisation}")).unwrap()
    }

    pub fn transitions(&self, org: &str) -> TransitionsServiceClient<Authed> {
        TransitionsServiceClient::with_interceptor(self.referrals.clone(), Self::bearer(org))
    }

    pub fn referrals(&self, org: &str) -> ReferralsServiceClient<Authed> {
        ReferralsServiceClient::with_interceptor(self.referrals.clone(), Self::bearer(org))
    }

    pub fn consents(&self, org: &str) -> ConsentServiceClient<Authed> {
        ConsentServiceClient::with_interceptor(self.sharing.clone(), Self::bearer(org))
    }

    pub fn agreements(&self, org: &str) -> AgreementsServiceClient<Authed> {
        AgreementsServiceClient::with_interceptor(self.sharing.clone(), Self::bearer(org))
    }

    pub fn disclosures(&self, org: &str) -> DisclosureServiceClient<Authed> {
        DisclosureServiceClient::with_interceptor(self.sharing.clone(), Self::bearer(org))
    }

    pub fn audit(&self, org: &str) -> AuditServiceClient<Authed> {
        AuditServiceClient::with_interceptor(self.sharing.clone(), Self::bearer(org))
    }

    /// The first batch of coded observations the sharing service publishes
    /// (the referrals service's are on the same topic, and skipped).
    pub async fn sharing_observations(&self) -> ObservationsRecorded {
        let topic = self.bus.topic(topics::OBSERVATIONS);
        let mut subscription = self
            .bus
            .subscribe(&unique("test-reader"), &[topic])
            .await
            .unwrap();
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let received = tokio::time::timeout(left, subscription.next())
                .await
                .expect("the sharing service's observations in time")
                .unwrap();
            let event = Event::from_record(&received.record).expect("a cloudevent");
            if event.source == throughcare_sharing::app::SOURCE
                && event.is::<ObservationsRecorded>()
            {
                assert_eq!(received.record.key, event.key, "keyed by person key");
                return event.decode().unwrap();
            }
        }
    }

    /// A number from a query on the sharing database.
    pub async fn count(&self, sql: &'static str) -> i64 {
        throughcare_platform::on_db!(&self.db, p => sqlx::query_scalar(sql).fetch_one(p).await.unwrap())
    }

    /// Waits until the sharing database answers `sql` with at least `n`.
    pub async fn wait_count(&self, what: &str, sql: &'static str, n: i64) {
        eventually(WAIT, what, || async {
            (self.count(sql).await >= n).then_some(())
        })
        .await;
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
