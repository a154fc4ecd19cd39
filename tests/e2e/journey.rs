//! One release through every service, the same steps whichever way the
//! services run (one embedded process, or separate processes on PostgreSQL
//! and Kafka): consent recorded on sharing, a release notified to referrals,
//! the permitted part of the health summary pushed to the probation delivery
//! unit, continuity tasks opened for it, and the release counted — suppressed
//! — in the indicators published for the month it happened in.

use chrono::Datelike;
use std::time::Duration;
use throughcare_platform::identifiers::NhsNumber;
use throughcare_platform::testing::eventually;
use throughcare_proto::indicators::v1 as indicators;
use throughcare_proto::indicators::v1::indicators_service_client::IndicatorsServiceClient;
use throughcare_proto::referrals::v1 as referrals;
use throughcare_proto::referrals::v1::continuity_service_client::ContinuityServiceClient;
use throughcare_proto::referrals::v1::transitions_service_client::TransitionsServiceClient;
use throughcare_proto::sharing::v1 as sharing;
use throughcare_proto::sharing::v1::consent_service_client::ConsentServiceClient;
use throughcare_proto::sharing::v1::disclosure_service_client::DisclosureServiceClient;
use throughcare_proto::types::v1 as types;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// Where the three services are and how to act as an organisation in a role.
pub(crate) struct System<'a> {
    pub(crate) referrals: &'a str,
    pub(crate) sharing: &'a str,
    pub(crate) indicators: &'a str,
    pub(crate) token: &'a dyn Fn(&str, &str) -> String,
}

pub(crate) type Authed = InterceptedService<
    Channel,
    Box<dyn FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Send>,
>;

async fn channel(
    endpoint: &str,
    token: String,
) -> (
    Channel,
    Box<dyn FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Send>,
) {
    let channel = Channel::from_shared(endpoint.to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connecting to {endpoint}: {e}"));
    let header: tonic::metadata::MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
    let interceptor = Box::new(move |mut request: tonic::Request<()>| {
        request
            .metadata_mut()
            .insert("authorization", header.clone());
        Ok(request)
    });
    (channel, interceptor)
}

impl System<'_> {
    pub(crate) async fn authed(&self, endpoint: &str, organisation: &str, role: &str) -> Authed {
        let (channel, interceptor) = channel(endpoint, (self.token)(organisation, role)).await;
        InterceptedService::new(channel, interceptor)
    }
}

fn date(d: chrono::NaiveDate) -> types::Date {
    types::Date {
        year: d.year(),
        month: d.month() as i32,
        day: d.day() as i32,
    }
}

/// The NHS number 943 476 59n9 style: nine digits and a valid modulus-11 check digit.
fn nhs_number(seed: u32) -> String {
    (seed..)
        .find_map(|n| valid_nhs_number(400_000_000 + n % 500_000_000))
        .unwrap()
}

/// The nine digits `body` with their modulus-11 check digit, when they have one.
pub(crate) fn valid_nhs_number(body: u32) -> Option<String> {
    let body = format!("{body:09}");
    let check = NhsNumber::check_digit(body.as_bytes().try_into().ok()?)?;
    Some(format!("{body}{check}"))
}

/// Drives one release through the running system and checks every service's part.
pub(crate) async fn one_release_through_every_service(system: &System<'_>, seed: u32) {
    let release = release_reaches_probation(system, seed, Duration::from_secs(60)).await;
    tasks_are_opened(system, &release).await;
    the_month_is_published(system, released_on()).await;
}

/// Released in a month long closed (its end plus the grace days has passed),
/// so the indicators publish it once it settles.
/// The identifiers of the person `seed`.
pub(crate) fn person(seed: u32) -> types::PersonIdentifiers {
    types::PersonIdentifiers {
        nhs_number: nhs_number(seed),
        prison_number: format!("A{:04}BC", seed % 10_000),
        crn: String::new(),
    }
}

/// A prison's notification that the person `seed` (named by `person`) is
/// released on licence to EMR-LEI, with a health summary in four categories.
pub(crate) fn release_request(
    seed: u32,
    person: &types::PersonIdentifiers,
) -> referrals::NotifyReleaseRequest {
    let released = released_on();
    referrals::NotifyReleaseRequest {
        idempotency_key: format!("journey-release-{seed}"),
        person: Some(types::PersonDetails {
            identifiers: Some(person.clone()),
            date_of_birth: Some(date(chrono::NaiveDate::from_ymd_opt(1985, 4, 2).unwrap())),
            sex: types::Sex::Male as i32,
            ethnic_group: types::EthnicGroup::White as i32,
        }),
        release_date: Some(date(released)),
        reason: referrals::ReleaseReason::OnLicence as i32,
        releasing_prison: "LEI".into(),
        destination: Some(types::Destination {
            probation_delivery_unit: "EMR-LEI".into(),
            local_authority: "E06000016".into(),
            ..Default::default()
        }),
        health: Some(types::HealthSummary {
            gp_registration: Some(types::GpRegistration {
                status: types::RegistrationStatus::NotRegistered as i32,
                practice_code: String::new(),
            }),
            mental_health: Some(types::MentalHealth {
                screening: types::ScreeningOutcome::NeedIdentified as i32,
                under_treatment: true,
                ..Default::default()
            }),
            substance_misuse: Some(types::SubstanceMisuse {
                on_opioid_substitution_therapy: true,
                ..Default::default()
            }),
            smoking: Some(types::Smoking {
                status: types::SmokingStatus::CurrentSmoker as i32,
            }),
            ..Default::default()
        }),
        supervision_ends_on: None,
    }
}

fn released_on() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive() - chrono::Duration::days(60)
}

/// The person `seed`'s consent to probation seeing their mental health and
/// substance misuse information for direct care — nothing else.
pub(crate) fn consent_request(
    seed: u32,
    person: &types::PersonIdentifiers,
) -> sharing::RecordConsentRequest {
    sharing::RecordConsentRequest {
        idempotency_key: format!("journey-consent-{seed}"),
        person: Some(person.clone()),
        provision: Some(sharing::Provision {
            r#type: sharing::ProvisionType::Permit as i32,
            recipients: vec![sharing::Recipient {
                recipient: Some(sharing::recipient::Recipient::OrganisationKind(
                    types::OrganisationKind::Probation as i32,
                )),
            }],
            purposes: vec![sharing::Purpose::DirectCare as i32],
            categories: vec![
                types::DataCategory::MentalHealth as i32,
                types::DataCategory::SubstanceMisuse as i32,
            ],
            period: None,
            exceptions: vec![],
        }),
        period: None,
        method: sharing::ConsentMethod::Written as i32,
    }
}

/// A consent on sharing, then a release on referrals: exactly the consented
/// categories of the health summary reach the probation unit `within`.
pub(crate) async fn release_reaches_probation(
    system: &System<'_>,
    seed: u32,
    within: Duration,
) -> referrals::Release {
    let person = person(seed);

    // The person consents to probation seeing their mental health and
    // substance misuse information for direct care — nothing else.
    ConsentServiceClient::new(
        system
            .authed(system.sharing, "EMR-LEI", "practitioner")
            .await,
    )
    .record_consent(consent_request(seed, &person))
    .await
    .expect("consent recorded");
    let mut deliveries = DisclosureServiceClient::new(
        system
            .authed(system.sharing, "EMR-LEI", "practitioner")
            .await,
    )
    .watch_deliveries(sharing::WatchDeliveriesRequest {
        cursor: String::new(),
    })
    .await
    .expect("watching deliveries")
    .into_inner();

    let release =
        TransitionsServiceClient::new(system.authed(system.referrals, "LEI", "system").await)
            .notify_release(release_request(seed, &person))
            .await
            .expect("release notified")
            .into_inner()
            .release
            .expect("the release");

    // Sharing: exactly the consented categories reach the probation unit.
    // The feed is read from its start: earlier releases' deliveries come first.
    let this_release = async {
        loop {
            let delivery = deliveries
                .message()
                .await
                .expect("the delivery stream")
                .and_then(|r| r.delivery)
                .expect("a delivery");
            if delivery.trigger_id == release.release_id {
                return delivery;
            }
        }
    };
    let delivery = tokio::time::timeout(within, this_release)
        .await
        .unwrap_or_else(|_| panic!("no delivery at release within {within:?}"));
    let mut categories = delivery.categories.clone();
    categories.sort_unstable();
    assert_eq!(
        categories,
        vec![
            types::DataCategory::MentalHealth as i32,
            types::DataCategory::SubstanceMisuse as i32
        ]
    );
    let health = delivery.health.expect("the permitted summary");
    assert!(health.mental_health.is_some() && health.substance_misuse.is_some());
    assert!(
        health.gp_registration.is_none() && health.smoking.is_none(),
        "nothing beyond the consented categories leaves"
    );
    release
}

async fn tasks_are_opened(system: &System<'_>, release: &referrals::Release) {
    // Referrals: continuity tasks for the probation unit (GP, mental health,
    // substance misuse).
    let tasks = ContinuityServiceClient::new(
        system
            .authed(system.referrals, "EMR-LEI", "practitioner")
            .await,
    )
    .list_continuity_tasks(referrals::ListContinuityTasksRequest {
        release_id: release.release_id.clone(),
        ..Default::default()
    })
    .await
    .expect("tasks listed")
    .into_inner()
    .tasks;
    assert!(tasks.len() >= 3, "continuity tasks opened: {}", tasks.len());
}

async fn the_month_is_published(system: &System<'_>, released: chrono::NaiveDate) {
    // Indicators: the month of release is published with this person counted,
    // and, being one person, suppressed.
    let month = types::Period {
        granularity: types::PeriodGranularity::Month as i32,
        year: released.year(),
        number: released.month() as i32,
    };
    let client = tokio::sync::Mutex::new(IndicatorsServiceClient::new(
        system.authed(system.indicators, "NHSE-HJ", "analyst").await,
    ));
    let request = indicators::QueryIndicatorsRequest {
        indicator_ids: vec!["gp-registration-recorded".into()],
        areas: vec![types::Area {
            r#type: types::AreaType::ProbationDeliveryUnit as i32,
            code: "EMR-LEI".into(),
        }],
        periods: vec![month],
        strata: vec![indicators::StratumType::All as i32],
        ..Default::default()
    };
    let cells = eventually(
        Duration::from_secs(120),
        "the month of release to be published",
        || {
            let (client, request) = (&client, request.clone());
            async move {
                // Until the first observation arrives the area is unknown (an error).
                let answer = client.lock().await.query_indicators(request).await;
                let cells = answer.ok()?.into_inner().cells;
                (!cells.is_empty()).then_some(cells)
            }
        },
    )
    .await;
    assert_eq!(cells.len(), 1);
    let suppressed = Some(indicators::PublishedCount {
        value: 0,
        suppressed: true,
    });
    assert_eq!(cells[0].numerator, suppressed, "one person is never shown");
    assert_eq!(cells[0].denominator, suppressed);
    assert_eq!(cells[0].value, None);
}
