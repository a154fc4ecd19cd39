//! Starts the referrals service for one test, on real parts, and talks to it.

use chrono::{DateTime, NaiveDate, Utc};
use std::sync::Arc;
use throughcare_platform::bus::{Bus, Event};
use throughcare_platform::db::Db;
use throughcare_platform::sealing::Keyring;
use throughcare_proto::referrals::v1::assessments_service_client::AssessmentsServiceClient;
use throughcare_proto::referrals::v1::continuity_service_client::ContinuityServiceClient;
use throughcare_proto::referrals::v1::referrals_service_client::ReferralsServiceClient;
use throughcare_proto::referrals::v1::transitions_service_client::TransitionsServiceClient;
use throughcare_proto::topics;
use throughcare_testkit::organisations::{
    C82010, EMR, EMR_LEI, EMR_NOT, LEI, NMI, QK1, RT5, TP_LEI,
};
use throughcare_testkit::{Authed, Backend, EventLog, Organisation, Stack, TestClock, bearer};
use tonic::transport::Channel;

pub use throughcare_testkit::WAIT;

/// The organisations every test can act as.
const ORGANISATIONS: &[Organisation] = &[LEI, NMI, EMR, EMR_LEI, EMR_NOT, TP_LEI, RT5, C82010, QK1];

/// The day the tests' clock starts on.
pub fn start() -> DateTime<Utc> {
    throughcare_testkit::start()
}

pub fn today() -> NaiveDate {
    start().date_naive()
}

/// The nth valid NHS number of the test population.
pub fn nhs(n: u32) -> String {
    throughcare_testkit::nhs_number(900_000_000 + n * 13)
}

pub struct TestService {
    pub clock: Arc<TestClock>,
    pub db: Db,
    pub bus: Bus,
    pub keyring: Keyring,
    channel: Channel,
    _stack: Stack,
}

impl TestService {
    pub async fn start(backend: Backend) -> Self {
        let stack = Stack::new(backend, ORGANISATIONS).await;
        let url = stack.database("referrals").await;
        let mut config = stack.referrals_config(&url);
        config.overdue_sweep_interval_ms = 50;
        let channel = stack.start_referrals(config).await.channel;
        Self {
            clock: stack.clock.clone(),
            db: Db::connect(&url, 2, throughcare_referrals::MIGRATIONS)
                .await
                .unwrap(),
            bus: stack.bus.clone(),
            keyring: Keyring::new(&stack.transport).unwrap(),
            channel,
            _stack: stack,
        }
    }

    pub fn transitions(&self, organisation: &str) -> TransitionsServiceClient<Authed> {
        TransitionsServiceClient::with_interceptor(self.channel.clone(), bearer(organisation))
    }

    pub fn referrals(&self, organisation: &str) -> ReferralsServiceClient<Authed> {
        ReferralsServiceClient::with_interceptor(self.channel.clone(), bearer(organisation))
    }

    pub fn continuity(&self, organisation: &str) -> ContinuityServiceClient<Authed> {
        ContinuityServiceClient::with_interceptor(self.channel.clone(), bearer(organisation))
    }

    pub fn assessments(&self, organisation: &str) -> AssessmentsServiceClient<Authed> {
        AssessmentsServiceClient::with_interceptor(self.channel.clone(), bearer(organisation))
    }

    /// Everything the service publishes, read from the start of its topics.
    pub async fn events(&self) -> EventLog {
        let published = [
            topics::REFERRALS_EVENTS,
            topics::HEALTH_RECORDS,
            topics::OBSERVATIONS,
        ];
        EventLog::subscribe(&self.bus, &published).await
    }

    pub async fn count(&self, table: &str) -> i64 {
        throughcare_testkit::count(&self.db, &format!("SELECT count(*) FROM {table}")).await
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
