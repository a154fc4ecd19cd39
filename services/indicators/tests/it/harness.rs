//! Starts the referrals and indicators services together, on real parts,
//! sharing a bus, a pseudonym key and a clock, the way they run in a
//! deployment; the indicators service can be restarted on its database.

use std::sync::Arc;
use std::time::Duration;
use throughcare_indicators::app::{self, PublicationConfig};
use throughcare_indicators::catalogue::Catalogue;
use throughcare_indicators::domain::core::Aggregator;
use throughcare_indicators::domain::period::Period;
use throughcare_platform::bus::Bus;
use throughcare_platform::db::Db;
use throughcare_platform::identity::{AreaType, OrganisationKind, Role};
use throughcare_proto::indicators::v1::indicators_service_client::IndicatorsServiceClient;
use throughcare_proto::referrals::v1::assessments_service_client::AssessmentsServiceClient;
use throughcare_proto::referrals::v1::referrals_service_client::ReferralsServiceClient;
use throughcare_proto::referrals::v1::transitions_service_client::TransitionsServiceClient;
use throughcare_proto::topics;
use throughcare_testkit::organisations::{C82010, EMR, EMR_LEI, EMR_NOT, LEI, with_role};
use throughcare_testkit::{Authed, Backend, Organisation, Running, Stack, TestClock, bearer};
use tonic::transport::Channel;

pub use throughcare_testkit::start;

pub const WAIT: Duration = Duration::from_secs(60);

/// Who the tests act as (one role each).
const ORGANISATIONS: &[Organisation] = &[
    LEI,
    C82010,
    with_role(EMR, Role::HealthLead),
    with_role(EMR_LEI, Role::Governance),
    EMR_NOT,
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

pub fn nhs(n: u32) -> String {
    throughcare_testkit::nhs_number(700_000_000 + n * 17)
}

pub struct Rig {
    pub clock: Arc<TestClock>,
    /// The indicators service's database.
    pub db: Db,
    referrals_db: Db,
    /// The bus, for replaying the log and reading the snapshots topic.
    pub bus: Bus,
    config: throughcare_indicators::Config,
    referrals: Channel,
    indicators: Option<Running>,
    stack: Stack,
}

impl Rig {
    pub async fn start(backend: Backend) -> Self {
        let stack = Stack::new(backend, ORGANISATIONS).await;
        let referrals_url = stack.database("referrals").await;
        let indicators_url = stack.database("indicators").await;
        let referrals = stack
            .start_referrals(stack.referrals_config(&referrals_url))
            .await;
        let config = throughcare_indicators::Config {
            platform: stack.platform(&indicators_url),
            publication: PublicationConfig {
                grace_days: 14,
                check_interval_ms: 50,
                settle_ms: 0,
            },
        };
        let mut rig = Self {
            clock: stack.clock.clone(),
            db: Db::connect(&indicators_url, 2, throughcare_indicators::MIGRATIONS)
                .await
                .unwrap(),
            referrals_db: Db::connect(&referrals_url, 2, throughcare_referrals::MIGRATIONS)
                .await
                .unwrap(),
            bus: stack.bus.clone(),
            config,
            referrals: referrals.channel,
            indicators: None,
            stack,
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
        let config = self.config.clone();
        let running = self
            .stack
            .serve(
                "throughcare.indicators.v1.IndicatorsService",
                move |listener, runtime| throughcare_indicators::run(config, listener, runtime),
            )
            .await;
        self.indicators = Some(running);
    }

    /// Stops the indicators service and starts it again on its database.
    pub async fn restart_indicators(&mut self) {
        self.stop_indicators().await;
        self.start_indicators().await;
    }

    pub async fn stop_indicators(&mut self) {
        if let Some(running) = self.indicators.take() {
            running.stop().await;
        }
    }

    pub fn transitions(&self, org: &str) -> TransitionsServiceClient<Authed> {
        TransitionsServiceClient::with_interceptor(self.referrals.clone(), bearer(org))
    }

    pub fn assessments(&self, org: &str) -> AssessmentsServiceClient<Authed> {
        AssessmentsServiceClient::with_interceptor(self.referrals.clone(), bearer(org))
    }

    pub fn referrals(&self, org: &str) -> ReferralsServiceClient<Authed> {
        ReferralsServiceClient::with_interceptor(self.referrals.clone(), bearer(org))
    }

    pub fn indicators(&self, org: &str) -> IndicatorsServiceClient<Authed> {
        let channel = self
            .indicators
            .as_ref()
            .expect("indicators running")
            .channel
            .clone();
        IndicatorsServiceClient::with_interceptor(channel, bearer(org))
    }

    /// The current month by the rig's clock, as the service counts open
    /// spells of supervision through it.
    pub fn horizon(&self) -> u32 {
        use throughcare_platform::clock::Clock;
        Period::month_index_of(self.clock.now().date_naive())
    }

    /// The stored state, loaded as the service loads it at start-up.
    pub async fn stored(&self) -> Aggregator {
        app::load(&self.db, Catalogue::standard(), self.horizon())
            .await
            .unwrap()
    }

    /// The state rebuilt from the observations topic, from offset zero.
    pub async fn rebuilt(&self) -> Aggregator {
        let topic = self.bus.topic(topics::OBSERVATIONS);
        let keys = app::record_keys(&self.db).await.unwrap();
        app::rebuild::from_log(
            &self.bus,
            &topic,
            Catalogue::standard(),
            keys,
            self.horizon(),
        )
        .await
        .unwrap()
        .0
    }

    /// Waits until everything the referrals service has recorded has reached
    /// the log and the indicators service has applied all of it: its stored
    /// state then equals the state rebuilt from offset zero.
    pub async fn settle(&self) -> Aggregator {
        throughcare_testkit::eventually(WAIT, "indicators caught up with the log", || async {
            let pending =
                throughcare_testkit::count(&self.referrals_db, "SELECT count(*) FROM outbox").await;
            if pending > 0 {
                return None;
            }
            let stored = self.stored().await;
            (stored.fingerprint() == self.rebuilt().await.fingerprint()).then_some(stored)
        })
        .await
    }
}
