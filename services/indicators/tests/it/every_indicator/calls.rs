//! The referrals service's RPCs as the cohort uses them, one short helper
//! each, and the parts of a health summary.

use crate::fixtures::{date, release};
use crate::harness::Rig;
use chrono::{NaiveDate, TimeZone, Utc};
use std::collections::HashMap;
use throughcare_platform::clock::{Clock, to_timestamp};
use throughcare_proto::referrals::v1 as referrals;
use throughcare_proto::referrals::v1::update_referral_request::Action;
use throughcare_proto::types::v1 as types;

/// A day of 2026.
pub fn day(month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, month, day).unwrap()
}

/// Person `n` as every record names them.
fn person(n: u32) -> Option<types::PersonDetails> {
    release(n, day(3, 1)).person
}

fn supervised_by(unit: &str) -> Option<types::Destination> {
    Some(types::Destination {
        probation_delivery_unit: unit.into(),
        ..Default::default()
    })
}

/// Person `n` released from LEI on `on`, on licence to EMR-LEI.
pub fn on_licence(
    n: u32,
    on: NaiveDate,
    health: types::HealthSummary,
) -> referrals::NotifyReleaseRequest {
    referrals::NotifyReleaseRequest {
        health: Some(health),
        ..release(n, on)
    }
}

/// Person `n` released from LEI on `on` at sentence end, with nobody to
/// supervise them (no probation delivery unit): released, not in contact.
pub fn at_sentence_end(
    n: u32,
    on: NaiveDate,
    health: types::HealthSummary,
) -> referrals::NotifyReleaseRequest {
    let mut request = on_licence(n, on, health);
    request.reason = referrals::ReleaseReason::SentenceEnd as i32;
    if let Some(destination) = request.destination.as_mut() {
        destination.probation_delivery_unit.clear();
    }
    request
}

/// What a provider does next with a referral.
#[derive(Debug, Clone, Copy)]
pub enum Step {
    Acknowledge,
    Accept,
    Book,
    Attend,
}

pub const ACCEPT: &[Step] = &[Step::Acknowledge, Step::Accept];
pub const BOOK: &[Step] = &[Step::Acknowledge, Step::Accept, Step::Book];

/// The cohort's records, made through the referrals service on the day the
/// clock shows.
pub struct Calls<'a> {
    rig: &'a Rig,
    today: NaiveDate,
    releases: HashMap<u32, String>,
    referrals: HashMap<(u32, types::ServiceType), String>,
}

impl<'a> Calls<'a> {
    pub fn new(rig: &'a Rig) -> Self {
        Self {
            rig,
            today: day(3, 2),
            releases: HashMap::new(),
            referrals: HashMap::new(),
        }
    }

    /// Moves the clock to 10:00 on a day of 2026: what is recorded next is
    /// recorded then.
    pub fn at(&mut self, month: u32, d: u32) {
        self.today = day(month, d);
        let ten = self.today.and_hms_opt(10, 0, 0).unwrap();
        self.rig.clock.set(Utc.from_utc_datetime(&ten));
    }

    pub async fn release(&mut self, n: u32, request: referrals::NotifyReleaseRequest) {
        let response = self.rig.transitions("LEI").notify_release(request).await;
        let release = response.unwrap().into_inner().release.unwrap();
        self.releases.insert(n, release.release_id);
    }

    /// A community order for person `n`, starting today, supervised by `unit`.
    pub async fn order(&self, n: u32, unit: &str) {
        let request = referrals::NotifyCommunitySentenceRequest {
            idempotency_key: format!("order-{n}"),
            person: person(n),
            sentence_type: referrals::SentenceType::CommunityOrder as i32,
            start_date: Some(date(self.today)),
            end_date: None,
            requirements: Vec::new(),
            supervising_area: supervised_by(unit),
        };
        self.rig
            .transitions("EMR-NOT")
            .notify_community_sentence(request)
            .await
            .unwrap();
    }

    /// Probation records person `n`'s health assessment today, in `unit`.
    pub async fn assess(&self, n: u32, unit: &str, findings: types::HealthSummary) {
        let request = referrals::RecordAssessmentRequest {
            idempotency_key: format!("assess-{n}-{}", self.today),
            person: person(n),
            assessed_on: Some(date(self.today)),
            area: supervised_by(unit),
            findings: Some(findings),
        };
        self.rig
            .assessments("EMR-NOT")
            .record_assessment(request)
            .await
            .unwrap();
    }

    /// Probation records a self-report survey for person `n` today.
    pub async fn survey(
        &self,
        n: u32,
        status: referrals::SelfReportStatus,
        answers: Option<referrals::SelfReportAnswers>,
    ) {
        let request = referrals::RecordSelfReportRequest {
            idempotency_key: format!("survey-{n}-{}", self.today),
            person: person(n),
            reported_on: Some(date(self.today)),
            area: supervised_by("EMR-LEI"),
            status: status as i32,
            answers,
        };
        self.rig
            .assessments("EMR-NOT")
            .record_self_report(request)
            .await
            .unwrap();
    }

    /// Probation notifies person `n`'s death on `on` (today or earlier).
    pub async fn die(&self, n: u32, on: NaiveDate, category: referrals::DeathCategory) {
        let request = referrals::NotifyDeathRequest {
            idempotency_key: format!("death-{n}"),
            person: person(n),
            date_of_death: Some(date(on)),
            category: category as i32,
            supervising_area: supervised_by("EMR-LEI"),
        };
        self.rig
            .transitions("EMR-NOT")
            .notify_death(request)
            .await
            .unwrap();
    }

    /// LEI refers person `n` to C82010 for `service` (for their release,
    /// if they were released), and the provider takes `steps` today.
    pub async fn refer(&mut self, n: u32, service: types::ServiceType, steps: &[Step]) {
        let request = referrals::RequestReferralRequest {
            idempotency_key: format!("refer-{n}-{}", service.as_str_name()),
            person: person(n),
            service: service as i32,
            provider: "C82010".into(),
            urgency: referrals::Urgency::Routine as i32,
            release_id: self.releases.get(&n).cloned().unwrap_or_default(),
        };
        let response = self.rig.referrals("LEI").request_referral(request).await;
        let referral = response.unwrap().into_inner().referral.unwrap();
        self.referrals.insert((n, service), referral.referral_id);
        self.act(n, service, steps).await;
    }

    /// The provider takes `steps` today on person `n`'s referral for `service`.
    pub async fn act(&self, n: u32, service: types::ServiceType, steps: &[Step]) {
        let id = &self.referrals[&(n, service)];
        for step in steps {
            let action = match step {
                Step::Acknowledge => Action::Acknowledge(referrals::AcknowledgeAction {}),
                Step::Accept => Action::Accept(referrals::AcceptAction {}),
                Step::Book => Action::BookAppointment(referrals::BookAppointmentAction {
                    appointment_at: Some(to_timestamp(self.rig.clock.now())),
                }),
                Step::Attend => Action::RecordAttendance(referrals::RecordAttendanceAction {}),
            };
            let request = referrals::UpdateReferralRequest {
                idempotency_key: format!("{id}-{step:?}"),
                referral_id: id.clone(),
                action: Some(action),
            };
            self.rig
                .referrals("C82010")
                .update_referral(request)
                .await
                .unwrap();
        }
    }
}

pub fn gp(status: types::RegistrationStatus) -> Option<types::GpRegistration> {
    Some(types::GpRegistration {
        status: status as i32,
        practice_code: String::new(),
    })
}

pub fn dentist(status: types::RegistrationStatus) -> Option<types::DentalRegistration> {
    Some(types::DentalRegistration {
        status: status as i32,
        practice_code: String::new(),
    })
}

/// Drink and drug screenings, and whether in treatment already.
pub fn substances(
    alcohol: types::ScreeningOutcome,
    drugs: types::ScreeningOutcome,
    in_treatment: bool,
) -> Option<types::SubstanceMisuse> {
    Some(types::SubstanceMisuse {
        alcohol_screening: alcohol as i32,
        drug_screening: drugs as i32,
        in_treatment,
        ..Default::default()
    })
}

pub fn mind(
    screening: types::ScreeningOutcome,
    under_treatment: bool,
) -> Option<types::MentalHealth> {
    Some(types::MentalHealth {
        screening: screening as i32,
        under_treatment,
        ..Default::default()
    })
}

pub fn smoking(status: types::SmokingStatus) -> Option<types::Smoking> {
    Some(types::Smoking {
        status: status as i32,
    })
}

/// Vaccination need assessed: one vaccine, in this state.
pub fn vaccine(
    vaccine: types::Vaccine,
    status: types::VaccinationStatus,
) -> Option<types::Vaccination> {
    Some(types::Vaccination {
        need_assessed: true,
        needs: vec![types::VaccinationNeed {
            vaccine: vaccine as i32,
            status: status as i32,
        }],
    })
}

pub fn infections(
    screening: types::ScreeningOutcome,
    found: &[types::Infection],
    in_treatment: bool,
) -> Option<types::CommunicableDisease> {
    Some(types::CommunicableDisease {
        screening: screening as i32,
        infections: found.iter().map(|&i| i as i32).collect(),
        in_treatment,
    })
}

pub fn physical(measured: bool, safe_sex_education: bool) -> Option<types::PhysicalHealth> {
    Some(types::PhysicalHealth {
        measures_recorded: measured,
        safe_sex_education_offered: safe_sex_education,
        ..Default::default()
    })
}

/// The last self-harm incident and suicide attempt known, if any.
pub fn incidents(
    self_harm: Option<NaiveDate>,
    attempt: Option<NaiveDate>,
) -> Option<types::SelfHarmRisk> {
    Some(types::SelfHarmRisk {
        last_incident: self_harm.map(date),
        last_suicide_attempt: attempt.map(date),
        ..Default::default()
    })
}

/// A returned survey's answers: mental and physical health well managed,
/// practising safe sex, barriers to access; experience; drug use.
pub fn answers(
    [mental, physical, safe_sex, barriers]: [referrals::SelfReportAnswer; 4],
    experience: referrals::ExperienceRating,
    drugs: referrals::DrugUseChange,
) -> Option<referrals::SelfReportAnswers> {
    Some(referrals::SelfReportAnswers {
        mental_health_well_managed: mental as i32,
        physical_health_well_managed: physical as i32,
        practising_safe_sex: safe_sex as i32,
        experience: experience as i32,
        barriers_to_access: barriers as i32,
        drug_use: drugs as i32,
    })
}
