//! `throughcare demo`: a synthetic population driven through the running
//! system over gRPC, as the organisations themselves would — releases from
//! four prisons into four probation delivery units, consents (some later
//! withdrawn), assessments, referrals worked by providers through their
//! lifecycle (rejections, did-not-attends, cancellations), reversals and
//! disclosure requests — then the indicator table a commissioner sees.
//!
//! Releases are dated in the last three closed months (their assessments a
//! few days later), so the indicators service publishes them as soon as the
//! backlog settles. Referrals happen now, so their indicators are published
//! when this month closes.

use crate::client::{Connection, Service, dev_token};
use anyhow::{Context, anyhow};
use chrono::{Datelike, Duration, NaiveDate, Utc};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::sync::Arc;
use throughcare_platform::grpc::Bearer;
use throughcare_proto::indicators::v1 as ind;
use throughcare_proto::indicators::v1::indicators_service_client::IndicatorsServiceClient;
use throughcare_proto::referrals::v1 as refs;
use throughcare_proto::referrals::v1::assessments_service_client::AssessmentsServiceClient;
use throughcare_proto::referrals::v1::referrals_service_client::ReferralsServiceClient;
use throughcare_proto::referrals::v1::transitions_service_client::TransitionsServiceClient;
use throughcare_proto::sharing::v1 as sh;
use throughcare_proto::sharing::v1::consent_service_client::ConsentServiceClient;
use throughcare_proto::sharing::v1::disclosure_service_client::DisclosureServiceClient;
use throughcare_proto::types::v1 as types;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// The national caseload (people in contact with probation in England).
const NATIONAL_CASELOAD: u32 = 261_196;

#[derive(Debug, clap::Args)]
pub(crate) struct DemoArgs {
    /// How many people to release: a handful up to the national caseload.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(1..=i64::from(NATIONAL_CASELOAD)))]
    people: u32,
    /// People driven at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Seed of the synthetic population (the same seed, the same people).
    #[arg(long)]
    seed: Option<u64>,
    /// The probation delivery unit whose indicators to print.
    #[arg(long, default_value = "EMR-LEI")]
    unit: String,
    /// How long to wait for the publication, in seconds.
    #[arg(long, default_value_t = 180)]
    wait: u64,
}

/// One prison and the community it releases into.
struct Site {
    prison: &'static str,
    unit: &'static str,
    region: &'static str,
    local_authority: &'static str,
    icb: &'static str,
    substance_service: &'static str,
    mental_health_trust: &'static str,
}

/// The development registry's prisons and where their people go.
const SITES: [Site; 4] = [
    Site {
        prison: "LEI",
        unit: "EMR-LEI",
        region: "EMR",
        local_authority: "E06000016",
        icb: "QK1",
        substance_service: "TP-LEI",
        mental_health_trust: "RT5",
    },
    Site {
        prison: "NMI",
        unit: "EMR-NOT",
        region: "EMR",
        local_authority: "E06000018",
        icb: "QT1",
        substance_service: "TP-NOT",
        mental_health_trust: "RHA",
    },
    Site {
        prison: "LCI",
        unit: "EMR-LIN",
        region: "EMR",
        local_authority: "E10000019",
        icb: "QJM",
        substance_service: "TP-NOT",
        mental_health_trust: "RHA",
    },
    Site {
        prison: "BMI",
        unit: "WMR-BIR",
        region: "WMR",
        local_authority: "E08000025",
        icb: "QHL",
        substance_service: "TP-LEI",
        mental_health_trust: "RT5",
    },
];

/// SplitMix64: small, fast and reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// A valid NHS number (modulus 11) for the `n`th synthetic person.
fn nhs_number(n: u64) -> String {
    (n * 11..)
        .find_map(|candidate| {
            let body = format!("{:09}", 100_000_000 + candidate % 800_000_000);
            let sum: u32 = body
                .bytes()
                .zip((2..=10).rev())
                .map(|(b, w)| u32::from(b - b'0') * w)
                .sum();
            match 11 - sum % 11 {
                10 => None,
                11 => Some(format!("{body}0")),
                check => Some(format!("{body}{check}")),
            }
        })
        .expect("a valid number within eleven tries")
}

fn date(d: NaiveDate) -> types::Date {
    types::Date {
        year: d.year(),
        month: d.month() as i32,
        day: d.day() as i32,
    }
}

fn timestamp(at: chrono::DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: 0,
    }
}

type Authed = InterceptedService<Channel, Bearer>;

/// Channels to the three services and every development identity.
struct System {
    referrals: Channel,
    sharing: Channel,
    indicators: Channel,
    tokens: HashMap<(String, String), Bearer>,
}

impl System {
    fn channel(&self, service: Service) -> Channel {
        match service {
            Service::Referrals => self.referrals.clone(),
            Service::Sharing => self.sharing.clone(),
            Service::Indicators => self.indicators.clone(),
        }
    }

    fn authed(&self, service: Service, organisation: &str, role: &str) -> Authed {
        let bearer = self.tokens[&(organisation.to_owned(), role.to_owned())].clone();
        InterceptedService::new(self.channel(service), bearer)
    }

    fn transitions(&self, prison: &str) -> TransitionsServiceClient<Authed> {
        TransitionsServiceClient::new(self.authed(Service::Referrals, prison, "system"))
    }

    fn referrals(&self, organisation: &str, role: &str) -> ReferralsServiceClient<Authed> {
        ReferralsServiceClient::new(self.authed(Service::Referrals, organisation, role))
    }
}

/// Counts of what the demo did, for its summary.
#[derive(Debug, Default)]
struct Tally {
    releases: u64,
    reversals: u64,
    assessments: u64,
    consents: u64,
    withdrawals: u64,
    referrals: u64,
    rejected: u64,
    attended: u64,
    did_not_attend: u64,
    cancelled: u64,
    disclosures_permitted: u64,
    disclosures_denied: u64,
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        self.releases += other.releases;
        self.reversals += other.reversals;
        self.assessments += other.assessments;
        self.consents += other.consents;
        self.withdrawals += other.withdrawals;
        self.referrals += other.referrals;
        self.rejected += other.rejected;
        self.attended += other.attended;
        self.did_not_attend += other.did_not_attend;
        self.cancelled += other.cancelled;
        self.disclosures_permitted += other.disclosures_permitted;
        self.disclosures_denied += other.disclosures_denied;
    }
}

/// The first day of the month `months` before `day`'s month.
fn month_start(day: NaiveDate, months_back: u32) -> NaiveDate {
    let index = day.year() * 12 + day.month0() as i32 - months_back as i32;
    NaiveDate::from_ymd_opt(index.div_euclid(12), index.rem_euclid(12) as u32 + 1, 1)
        .expect("a month start")
}

/// The last three months closed (ended at least the 14 grace days ago).
fn closed_months(today: NaiveDate) -> (NaiveDate, NaiveDate) {
    let last_closed_end = month_start(today - Duration::days(14), 0) - Duration::days(1);
    let first = month_start(last_closed_end, 2);
    (first, last_closed_end)
}

/// One person's journey; what it did.
async fn person(
    system: &System,
    run: u64,
    n: u64,
    first: NaiveDate,
    last: NaiveDate,
) -> anyhow::Result<Tally> {
    let mut rng = Rng(run ^ n.wrapping_mul(0x2545_F491_4F6C_DD1D));
    let mut tally = Tally::default();
    let site = &SITES[rng.below(SITES.len() as u64) as usize];
    let key = |what: &str| format!("demo-{run:x}-{n}-{what}");
    let ids = types::PersonIdentifiers {
        nhs_number: nhs_number(run % 1_000_000 * 300_000 + n),
        prison_number: format!(
            "{}{:04}{}{}",
            char::from(b'A' + rng.below(26) as u8),
            rng.below(10_000),
            char::from(b'A' + rng.below(26) as u8),
            char::from(b'A' + rng.below(26) as u8)
        ),
        crn: String::new(),
    };
    let released = first + Duration::days(rng.below((last - first).num_days() as u64 + 1) as i64);
    let details = types::PersonDetails {
        identifiers: Some(ids.clone()),
        date_of_birth: Some(date(
            NaiveDate::from_ymd_opt(
                1950 + rng.below(55) as i32,
                1 + rng.below(12) as u32,
                1 + rng.below(28) as u32,
            )
            .expect("a date"),
        )),
        sex: if rng.chance(91) {
            types::Sex::Male
        } else {
            types::Sex::Female
        } as i32,
        ethnic_group: [
            types::EthnicGroup::White,
            types::EthnicGroup::White,
            types::EthnicGroup::White,
            types::EthnicGroup::Black,
            types::EthnicGroup::Asian,
            types::EthnicGroup::Mixed,
            types::EthnicGroup::Other,
        ][rng.below(7) as usize] as i32,
    };
    let screening = |need: bool| {
        let outcome = if need {
            types::ScreeningOutcome::NeedIdentified
        } else {
            types::ScreeningOutcome::NoNeedIdentified
        };
        outcome as i32
    };
    let gp_registered = rng.chance(55);
    let drinking = rng.chance(30);
    let drugs = rng.chance(40);
    let mental = rng.chance(35);
    let on_ost = drugs && rng.chance(40);
    let health = types::HealthSummary {
        gp_registration: Some(types::GpRegistration {
            status: if gp_registered {
                types::RegistrationStatus::Registered
            } else {
                types::RegistrationStatus::NotRegistered
            } as i32,
            practice_code: String::new(),
        }),
        dental_registration: Some(types::DentalRegistration {
            status: if rng.chance(30) {
                types::RegistrationStatus::Registered
            } else {
                types::RegistrationStatus::NotRegistered
            } as i32,
            practice_code: String::new(),
        }),
        mental_health: Some(types::MentalHealth {
            screening: screening(mental),
            under_treatment: mental && rng.chance(50),
            ..Default::default()
        }),
        substance_misuse: Some(types::SubstanceMisuse {
            alcohol_screening: screening(drinking),
            drug_screening: screening(drugs),
            in_treatment: on_ost,
            on_opioid_substitution_therapy: on_ost,
            ..Default::default()
        }),
        self_harm_risk: Some(types::SelfHarmRisk {
            level: if rng.chance(10) {
                types::SelfHarmRiskLevel::Medium
            } else {
                types::SelfHarmRiskLevel::NoneKnown
            } as i32,
            ..Default::default()
        }),
        smoking: Some(types::Smoking {
            status: if rng.chance(60) {
                types::SmokingStatus::CurrentSmoker
            } else {
                types::SmokingStatus::NeverSmoked
            } as i32,
        }),
        vaccination: Some(types::Vaccination {
            need_assessed: true,
            needs: if rng.chance(50) {
                vec![types::VaccinationNeed {
                    vaccine: types::Vaccine::HepatitisB as i32,
                    status: types::VaccinationStatus::Needed as i32,
                }]
            } else {
                vec![]
            },
        }),
        communicable_disease: Some(types::CommunicableDisease {
            screening: screening(rng.chance(5)),
            ..Default::default()
        }),
        ..Default::default()
    };
    let destination = types::Destination {
        local_authority: site.local_authority.into(),
        probation_region: site.region.into(),
        probation_delivery_unit: site.unit.into(),
        integrated_care_board: site.icb.into(),
        approved_premises: String::new(),
    };

    // The person's consent, recorded by their probation practitioner.
    let mut consents =
        ConsentServiceClient::new(system.authed(Service::Sharing, site.unit, "practitioner"));
    let consent_id = if rng.chance(60) {
        let recipients = [
            sh::recipient::Recipient::OrganisationKind(types::OrganisationKind::Probation as i32),
            sh::recipient::Recipient::OrganisationKind(types::OrganisationKind::Provider as i32),
        ];
        let consent = consents
            .record_consent(sh::RecordConsentRequest {
                idempotency_key: key("consent"),
                person: Some(ids.clone()),
                provision: Some(sh::Provision {
                    r#type: sh::ProvisionType::Permit as i32,
                    recipients: recipients
                        .into_iter()
                        .map(|r| sh::Recipient { recipient: Some(r) })
                        .collect(),
                    purposes: vec![sh::Purpose::DirectCare as i32],
                    categories: vec![
                        types::DataCategory::MentalHealth as i32,
                        types::DataCategory::SubstanceMisuse as i32,
                        types::DataCategory::SelfHarmRisk as i32,
                    ],
                    period: None,
                    exceptions: vec![],
                }),
                period: None,
                method: sh::ConsentMethod::Written as i32,
            })
            .await
            .context("recording consent")?
            .into_inner()
            .consent
            .map(|c| c.consent_id);
        tally.consents += 1;
        consent
    } else {
        None
    };

    let release = system
        .transitions(site.prison)
        .notify_release(refs::NotifyReleaseRequest {
            idempotency_key: key("release"),
            person: Some(details.clone()),
            release_date: Some(date(released)),
            reason: refs::ReleaseReason::OnLicence as i32,
            releasing_prison: site.prison.into(),
            destination: Some(destination.clone()),
            health: Some(health.clone()),
        })
        .await
        .context("notifying the release")?
        .into_inner()
        .release
        .ok_or_else(|| anyhow!("a release in the response"))?;
    tally.releases += 1;
    if rng.chance(3) {
        system
            .transitions(site.prison)
            .reverse_release(refs::ReverseReleaseRequest {
                idempotency_key: key("reversal"),
                release_id: release.release_id,
                reason: refs::ReversalReason::FurtherCharges as i32,
            })
            .await
            .context("reversing the release")?;
        tally.reversals += 1;
        return Ok(tally);
    }

    // Probation's own assessment a few days after release.
    let today = Utc::now().date_naive();
    if rng.chance(70) {
        let assessed = (released + Duration::days(2 + rng.below(8) as i64)).min(today);
        AssessmentsServiceClient::new(system.authed(Service::Referrals, site.unit, "practitioner"))
            .record_assessment(refs::RecordAssessmentRequest {
                idempotency_key: key("assessment"),
                person: Some(details.clone()),
                assessed_on: Some(date(assessed)),
                area: Some(destination.clone()),
                findings: Some(health.clone()),
            })
            .await
            .context("recording the assessment")?;
        tally.assessments += 1;
    }

    // Referrals for each need, worked by the receiving provider.
    let mut needs = Vec::new();
    if drinking || drugs {
        needs.push((
            types::ServiceType::SubstanceMisuseTreatment,
            site.substance_service,
        ));
    }
    if mental {
        needs.push((
            types::ServiceType::MentalHealthTreatment,
            site.mental_health_trust,
        ));
    }
    if !gp_registered {
        needs.push((types::ServiceType::GpRegistration, "C82010"));
    }
    for (service, provider) in needs {
        if !rng.chance(85) {
            continue; // not referred: shows in the "offered" indicators
        }
        let referral = system
            .referrals(site.unit, "practitioner")
            .request_referral(refs::RequestReferralRequest {
                idempotency_key: key(&format!("referral-{}", service as i32)),
                person: Some(details.clone()),
                service: service as i32,
                provider: provider.into(),
                urgency: refs::Urgency::Routine as i32,
                release_id: release.release_id.clone(),
            })
            .await
            .context("requesting a referral")?
            .into_inner()
            .referral
            .ok_or_else(|| anyhow!("a referral in the response"))?;
        tally.referrals += 1;
        let id = referral.referral_id;
        let step = |action: refs::update_referral_request::Action, what: &str| {
            refs::UpdateReferralRequest {
                idempotency_key: key(&format!("{id}-{what}")),
                referral_id: id.clone(),
                action: Some(action),
            }
        };
        use refs::update_referral_request::Action;
        if rng.chance(5) {
            system
                .referrals(site.unit, "practitioner")
                .update_referral(step(
                    Action::Cancel(refs::CancelAction {
                        reason: refs::CancellationReason::ReferredElsewhere as i32,
                    }),
                    "cancel",
                ))
                .await
                .context("cancelling a referral")?;
            tally.cancelled += 1;
            continue;
        }
        let mut provider = system.referrals(provider, "system");
        provider
            .update_referral(step(
                Action::Acknowledge(refs::AcknowledgeAction {}),
                "acknowledge",
            ))
            .await
            .context("acknowledging a referral")?;
        if rng.chance(15) {
            provider
                .update_referral(step(
                    Action::Reject(refs::RejectAction {
                        reason: [
                            refs::RejectionReason::CriteriaNotMet,
                            refs::RejectionReason::NoCapacity,
                            refs::RejectionReason::DualDiagnosis,
                        ][rng.below(3) as usize] as i32,
                        reason_text: String::new(),
                    }),
                    "reject",
                ))
                .await
                .context("rejecting a referral")?;
            tally.rejected += 1;
            continue;
        }
        provider
            .update_referral(step(Action::Accept(refs::AcceptAction {}), "accept"))
            .await
            .context("accepting a referral")?;
        let appointment = Utc::now() + Duration::days(1 + rng.below(14) as i64);
        provider
            .update_referral(step(
                Action::BookAppointment(refs::BookAppointmentAction {
                    appointment_at: Some(timestamp(appointment)),
                }),
                "book",
            ))
            .await
            .context("booking an appointment")?;
        if rng.chance(75) {
            provider
                .update_referral(step(
                    Action::RecordAttendance(refs::RecordAttendanceAction {}),
                    "attended",
                ))
                .await
                .context("recording attendance")?;
            tally.attended += 1;
            if rng.chance(50) {
                provider
                    .update_referral(step(Action::Complete(refs::CompleteAction {}), "complete"))
                    .await
                    .context("completing a referral")?;
            }
        } else {
            provider
                .update_referral(step(
                    Action::RecordDidNotAttend(refs::RecordDidNotAttendAction {}),
                    "dna",
                ))
                .await
                .context("recording a did-not-attend")?;
            tally.did_not_attend += 1;
            provider
                .update_referral(step(
                    Action::Discharge(refs::DischargeAction {}),
                    "discharge",
                ))
                .await
                .context("discharging")?;
        }
    }

    // Probation asks to see what it may; some people later withdraw consent.
    if rng.chance(20) {
        let decision = DisclosureServiceClient::new(system.authed(
            Service::Sharing,
            site.unit,
            "practitioner",
        ))
        .request_disclosure(sh::RequestDisclosureRequest {
            person: Some(ids.clone()),
            purpose: sh::Purpose::DirectCare as i32,
            categories: vec![
                types::DataCategory::MentalHealth as i32,
                types::DataCategory::SubstanceMisuse as i32,
            ],
            justification: String::new(),
        })
        .await
        .context("requesting a disclosure")?
        .into_inner();
        if decision.categories.is_empty() {
            tally.disclosures_denied += 1;
        } else {
            tally.disclosures_permitted += 1;
        }
    }
    if let Some(consent_id) = consent_id
        && rng.chance(5)
    {
        consents
            .withdraw_consent(sh::WithdrawConsentRequest {
                idempotency_key: key("withdrawal"),
                consent_id,
            })
            .await
            .context("withdrawing consent")?;
        tally.withdrawals += 1;
    }
    Ok(tally)
}

pub(crate) async fn run(args: DemoArgs, connection: &Connection) -> anyhow::Result<()> {
    let mut tokens = HashMap::new();
    for organisation in crate::dev_registry::organisations() {
        for role in crate::dev_registry::roles_for(organisation.kind) {
            let token = dev_token(connection.data_dir(), &organisation.code, role.as_str())?;
            let bearer = Bearer::new(&token).context("a token")?;
            tokens.insert(
                (organisation.code.clone(), role.as_str().to_owned()),
                bearer,
            );
        }
    }
    let system = Arc::new(System {
        referrals: connection.channel(Service::Referrals).await?,
        sharing: connection.channel(Service::Sharing).await?,
        indicators: connection.channel(Service::Indicators).await?,
        tokens,
    });
    let run = args
        .seed
        .unwrap_or_else(|| Utc::now().timestamp_micros() as u64);
    let today = Utc::now().date_naive();
    let (first, last) = closed_months(today);
    let mut analyst =
        IndicatorsServiceClient::new(system.authed(Service::Indicators, "NHSE-HJ", "analyst"));
    let before = analyst
        .query_indicators(ind::QueryIndicatorsRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .context("asking the indicators service what it has published")?
        .into_inner()
        .sequence;

    println!(
        "Releasing {} people from {} prisons, dated {first} to {last} (seed {run})",
        args.people,
        SITES.len()
    );
    let bar = ProgressBar::new(u64::from(args.people)).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} people  {per_sec}  eta {eta}")
            .expect("a progress template"),
    );
    let mut tally = Tally::default();
    let mut journeys = futures::stream::iter(0..u64::from(args.people))
        .map(|n| {
            let system = Arc::clone(&system);
            async move { person(&system, run, n, first, last).await }
        })
        .buffer_unordered(args.concurrency.max(1));
    while let Some(result) = journeys.next().await {
        tally.add(&result?);
        bar.inc(1);
    }
    bar.finish();
    println!(
        "{} releases ({} reversed), {} assessments, {} referrals ({} rejected, {} cancelled; \
         {} attended, {} did not attend), {} consents ({} withdrawn), {} disclosures permitted, \
         {} denied",
        tally.releases,
        tally.reversals,
        tally.assessments,
        tally.referrals,
        tally.rejected,
        tally.cancelled,
        tally.attended,
        tally.did_not_attend,
        tally.consents,
        tally.withdrawals,
        tally.disclosures_permitted,
        tally.disclosures_denied
    );

    // Wait for the months to settle and be published.
    let spinner =
        ProgressBar::new_spinner().with_message("waiting for the indicators to be published");
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(args.wait);
    let month = types::Period {
        granularity: types::PeriodGranularity::Month as i32,
        year: last.year(),
        number: last.month() as i32,
    };
    let published = loop {
        let response = analyst
            .query_indicators(ind::QueryIndicatorsRequest {
                page_size: 1,
                ..Default::default()
            })
            .await?
            .into_inner();
        if response.sequence > before {
            break true;
        }
        if std::time::Instant::now() > deadline {
            break false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    spinner.finish_and_clear();
    if !published {
        println!(
            "Nothing new was published within {}s: these months were published before this run \
             (a period is published once), or the service is still settling. Showing what is published.",
            args.wait
        );
    }
    print_table(&mut analyst, &args.unit, month).await
}

/// The published indicators for one probation delivery unit and month.
async fn print_table(
    client: &mut IndicatorsServiceClient<Authed>,
    unit: &str,
    month: types::Period,
) -> anyhow::Result<()> {
    let catalogue = client
        .list_indicators(ind::ListIndicatorsRequest {})
        .await?
        .into_inner()
        .indicators;
    let cells = client
        .query_indicators(ind::QueryIndicatorsRequest {
            areas: vec![types::Area {
                r#type: types::AreaType::ProbationDeliveryUnit as i32,
                code: unit.to_owned(),
            }],
            periods: vec![month],
            strata: vec![ind::StratumType::All as i32],
            page_size: 1_000,
            ..Default::default()
        })
        .await?
        .into_inner()
        .cells;
    println!();
    println!(
        "Indicators for probation delivery unit {unit}, {}-{:02}, all people (as published):",
        month.year, month.number
    );
    println!(
        "{:<64} {:>9} {:>11} {:>8}",
        "indicator", "numerator", "denominator", "value"
    );
    let count = |c: &Option<ind::PublishedCount>| match c {
        Some(c) if c.suppressed => "*".to_owned(),
        Some(c) => c.value.to_string(),
        None => "-".to_owned(),
    };
    for indicator in &catalogue {
        let Some(cell) = cells
            .iter()
            .find(|c| c.indicator_id == indicator.indicator_id)
        else {
            continue;
        };
        let value = match (cell.value, indicator.unit()) {
            (None, _) => "*".to_owned(),
            (Some(v), ind::IndicatorUnit::MedianDays) => format!("{v:.0} d"),
            (Some(v), ind::IndicatorUnit::RatePerThousand) => format!("{v:.0}/1000"),
            (Some(v), _) => format!("{:.0}%", v * 100.0),
        };
        let mut title = indicator.title.clone();
        if title.chars().count() > 63 {
            title = title.chars().take(62).collect::<String>() + "…";
        }
        println!(
            "{title:<64} {:>9} {:>11} {value:>8}",
            count(&cell.numerator),
            count(&cell.denominator)
        );
    }
    if cells.is_empty() {
        println!("(nothing published for this unit and month yet)");
    }
    println!();
    println!(
        "* suppressed: a count of 1 to 7, or one that would let a suppressed count be worked out. \
         Other counts are rounded to the nearest 5."
    );
    Ok(())
}
