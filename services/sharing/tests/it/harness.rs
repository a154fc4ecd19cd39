//! Starts the referrals and sharing services together, on real parts, sharing
//! a bus and keys, the way they run in a deployment.

use chrono::{DateTime, Utc};
use std::sync::Arc;
use throughcare_platform::bus::Bus;
use throughcare_platform::db::Db;
use throughcare_platform::identifiers::PseudonymKey;
use throughcare_platform::identity::{AreaType, OrganisationKind, Role};
use throughcare_proto::events::v1::ObservationsRecorded;
use throughcare_proto::referrals::v1::referrals_service_client::ReferralsServiceClient;
use throughcare_proto::referrals::v1::transitions_service_client::TransitionsServiceClient;
use throughcare_proto::sharing::v1::agreements_service_client::AgreementsServiceClient;
use throughcare_proto::sharing::v1::audit_service_client::AuditServiceClient;
use throughcare_proto::sharing::v1::consent_service_client::ConsentServiceClient;
use throughcare_proto::sharing::v1::disclosure_service_client::DisclosureServiceClient;
use throughcare_proto::topics;
use throughcare_testkit::organisations::{C82010, EMR, LEI, NMI, RT5, TP_LEI, with_role};
use throughcare_testkit::{
    Authed, Backend, EventLog, Organisation, Stack, TestClock, bearer, eventually,
};
use tonic::transport::Channel;

pub use throughcare_testkit::WAIT;

/// Who the tests act as (one role each). The delivery units here name only
/// their region.
const ORGANISATIONS: &[Organisation] = &[
    LEI,
    with_role(EMR, Role::Governance),
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
    TP_LEI,
    RT5,
    ("QK1", OrganisationKind::Commissioner, Role::Analyst, &[]),
    ("NHSE-HJ", OrganisationKind::National, Role::Auditor, &[]),
    // An NHS trust's own auditors.
    ("RXA", OrganisationKind::Provider, Role::Auditor, &[]),
    // Information governance: of a prison's healthcare and of a GP practice
    // (data controllers, which disclose), and national (the testkit has no
    // national organisation).
    with_role(NMI, Role::Governance),
    with_role(C82010, Role::Governance),
    ("NHSE", OrganisationKind::National, Role::Governance, &[]),
];

pub fn start() -> DateTime<Utc> {
    throughcare_testkit::start()
}

pub fn nhs(n: u32) -> String {
    throughcare_testkit::nhs_number(800_000_000 + n * 17)
}

pub struct Rig {
    pub clock: Arc<TestClock>,
    /// The sharing service's database.
    pub db: Db,
    pub db_url: String,
    /// The bus both services use, for reading what they publish.
    pub bus: Bus,
    /// The services' pseudonym key, to derive the keys they publish.
    pub pseudonyms: PseudonymKey,
    /// The sharing service's audit checkpoint key (its Ed25519 seed).
    pub audit_key: String,
    referrals: Channel,
    sharing: Channel,
    _stack: Stack,
}

impl Rig {
    /// `throughcare-sharing verify-audit` on the sharing database.
    pub fn verify_audit_cli(&self) -> std::process::Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_throughcare-sharing"))
            .arg("verify-audit")
            .env("THROUGHCARE_DATABASE__URL", &self.db_url)
            .env("THROUGHCARE_AUDIT__SIGNING_KEY", &self.audit_key)
            .output()
            .unwrap()
    }

    pub async fn start(backend: Backend) -> Self {
        let stack = Stack::new(backend, ORGANISATIONS).await;
        let (referrals_url, sharing_url) = (
            stack.database("referrals").await,
            stack.database("sharing").await,
        );
        let referrals = stack
            .start_referrals(stack.referrals_config(&referrals_url))
            .await;
        let config = stack.sharing_config(&sharing_url);
        let audit_key = config.audit.signing_key.expose().to_owned();
        let sharing = stack.start_sharing(config).await;
        Self {
            clock: stack.clock.clone(),
            db: Db::connect(&sharing_url, 2, throughcare_sharing::MIGRATIONS)
                .await
                .unwrap(),
            db_url: sharing_url,
            bus: stack.bus.clone(),
            pseudonyms: PseudonymKey::from_hex(stack.pseudonym_key.expose()).unwrap(),
            audit_key,
            referrals: referrals.channel,
            sharing: sharing.channel,
            _stack: stack,
        }
    }

    pub fn transitions(&self, org: &str) -> TransitionsServiceClient<Authed> {
        TransitionsServiceClient::with_interceptor(self.referrals.clone(), bearer(org))
    }

    pub fn referrals(&self, org: &str) -> ReferralsServiceClient<Authed> {
        ReferralsServiceClient::with_interceptor(self.referrals.clone(), bearer(org))
    }

    pub fn consents(&self, org: &str) -> ConsentServiceClient<Authed> {
        ConsentServiceClient::with_interceptor(self.sharing.clone(), bearer(org))
    }

    pub fn agreements(&self, org: &str) -> AgreementsServiceClient<Authed> {
        AgreementsServiceClient::with_interceptor(self.sharing.clone(), bearer(org))
    }

    pub fn disclosures(&self, org: &str) -> DisclosureServiceClient<Authed> {
        DisclosureServiceClient::with_interceptor(self.sharing.clone(), bearer(org))
    }

    pub fn audit(&self, org: &str) -> AuditServiceClient<Authed> {
        AuditServiceClient::with_interceptor(self.sharing.clone(), bearer(org))
    }

    /// The first batch of coded observations the sharing service publishes
    /// (the referrals service's are on the same topic, and skipped).
    pub async fn sharing_observations(&self) -> ObservationsRecorded {
        let mut log = EventLog::subscribe(&self.bus, &[topics::OBSERVATIONS]).await;
        let (event, key) = log
            .wait_for("the sharing service's observations", |events| {
                events
                    .iter()
                    .find(|(e, _)| {
                        e.source == throughcare_sharing::app::SOURCE
                            && e.is::<ObservationsRecorded>()
                    })
                    .cloned()
            })
            .await;
        assert_eq!(key, event.key, "keyed by person key");
        event.decode().unwrap()
    }

    /// A number from a query on the sharing database.
    pub async fn count(&self, sql: &'static str) -> i64 {
        throughcare_testkit::count(&self.db, sql).await
    }

    /// Waits until the sharing database answers `sql` with at least `n`.
    pub async fn wait_count(&self, what: &str, sql: &'static str, n: i64) {
        eventually(WAIT, what, || async {
            (self.count(sql).await >= n).then_some(())
        })
        .await;
    }
}
