//! Requests the tests send, built from a few numbered people.

use crate::harness::{nhs, today};
use chrono::{Duration, NaiveDate};
use throughcare_proto::referrals::v1 as pb;
use throughcare_proto::types::v1 as types;

pub use throughcare_testkit::date;
pub use throughcare_testkit::health::gp_only;
use throughcare_testkit::health::{gp_not_registered, mental_health_treated, smoker};

pub fn release_day() -> NaiveDate {
    today() + Duration::days(2)
}

/// Person n: an NHS number, a prison number, a date of birth and demographics.
pub fn person(n: u32) -> types::PersonDetails {
    types::PersonDetails {
        identifiers: Some(types::PersonIdentifiers {
            nhs_number: nhs(n),
            prison_number: format!("A{:04}BC", n % 10_000),
            crn: String::new(),
        }),
        date_of_birth: Some(date(
            NaiveDate::from_ymd_opt(1970 + (n % 30) as i32, 5, 1).unwrap(),
        )),
        sex: types::Sex::Male as i32,
        ethnic_group: types::EthnicGroup::White as i32,
    }
}

pub fn ids(n: u32) -> types::PersonIdentifiers {
    person(n).identifiers.unwrap()
}

/// On opioid substitution therapy, not registered with a GP, in mental health
/// treatment, at high risk of self-harm.
pub fn complex_needs() -> types::HealthSummary {
    types::HealthSummary {
        gp_registration: gp_not_registered(),
        substance_misuse: Some(types::SubstanceMisuse {
            drug_screening: types::ScreeningOutcome::NeedIdentified as i32,
            alcohol_screening: types::ScreeningOutcome::NoNeedIdentified as i32,
            in_treatment: true,
            on_opioid_substitution_therapy: true,
            opioid_substitution_medicine: Some(types::ClinicalCode {
                system: "https://dmd.nhs.uk".into(),
                code: "39720311000001101".into(),
                display: "Methadone 1mg/ml oral solution".into(),
            }),
            last_opioid_substitution_dose: Some(date(today())),
        }),
        mental_health: mental_health_treated(),
        self_harm_risk: Some(types::SelfHarmRisk {
            level: types::SelfHarmRiskLevel::High as i32,
            open_case_plan: true,
            last_incident: None,
            last_suicide_attempt: None,
        }),
        smoking: smoker(),
        ..Default::default()
    }
}

pub fn release(key: &str, n: u32, health: types::HealthSummary) -> pb::NotifyReleaseRequest {
    pb::NotifyReleaseRequest {
        idempotency_key: key.into(),
        person: Some(person(n)),
        release_date: Some(date(release_day())),
        reason: pb::ReleaseReason::OnLicence as i32,
        releasing_prison: "LEI".into(),
        destination: Some(types::Destination {
            local_authority: "E06000016".into(),
            probation_region: String::new(),
            probation_delivery_unit: "EMR-LEI".into(),
            integrated_care_board: "QK1".into(),
            approved_premises: String::new(),
        }),
        health: Some(health),
        supervision_ends_on: None,
    }
}

/// No probation delivery unit will supervise the person released.
pub fn without_supervision(request: &mut pb::NotifyReleaseRequest) {
    request
        .destination
        .as_mut()
        .expect("a destination")
        .probation_delivery_unit
        .clear();
}

pub fn referral(
    key: &str,
    n: u32,
    service: types::ServiceType,
    provider: &str,
) -> pb::RequestReferralRequest {
    pb::RequestReferralRequest {
        idempotency_key: key.into(),
        person: Some(person(n)),
        service: service as i32,
        provider: provider.into(),
        urgency: pb::Urgency::Urgent as i32,
        release_id: String::new(),
    }
}

pub fn update(
    key: &str,
    referral_id: &str,
    action: pb::update_referral_request::Action,
) -> pb::UpdateReferralRequest {
    pb::UpdateReferralRequest {
        idempotency_key: key.into(),
        referral_id: referral_id.into(),
        action: Some(action),
    }
}

/// The fields an INVALID_ARGUMENT names.
pub fn fields(status: &tonic::Status) -> Vec<String> {
    throughcare_testkit::bad_request_fields(status)
        .expect("INVALID_ARGUMENT carries BadRequest details")
}
