//! Requests the sharing tests send.

use crate::harness::{nhs, start};
use chrono::Duration;
use throughcare_proto::referrals::v1 as referrals;
use throughcare_proto::sharing::v1 as pb;
use throughcare_proto::types::v1 as types;
use tonic_types::StatusExt;

pub fn ids(n: u32) -> types::PersonIdentifiers {
    types::PersonIdentifiers {
        nhs_number: nhs(n),
        prison_number: format!("B{:04}CD", n % 10_000),
        crn: String::new(),
    }
}

fn date(d: chrono::NaiveDate) -> types::Date {
    use chrono::Datelike;
    types::Date {
        year: d.year(),
        month: d.month() as i32,
        day: d.day() as i32,
    }
}

/// A health summary touching five categories.
pub fn health() -> types::HealthSummary {
    types::HealthSummary {
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
        self_harm_risk: Some(types::SelfHarmRisk {
            level: types::SelfHarmRiskLevel::Medium as i32,
            ..Default::default()
        }),
        smoking: Some(types::Smoking {
            status: types::SmokingStatus::CurrentSmoker as i32,
        }),
        ..Default::default()
    }
}

pub fn release(n: u32) -> referrals::NotifyReleaseRequest {
    referrals::NotifyReleaseRequest {
        idempotency_key: format!("release-{n}"),
        person: Some(types::PersonDetails {
            identifiers: Some(ids(n)),
            date_of_birth: Some(date(chrono::NaiveDate::from_ymd_opt(1984, 7, 9).unwrap())),
            sex: types::Sex::Female as i32,
            ethnic_group: types::EthnicGroup::Mixed as i32,
        }),
        release_date: Some(date((start() + Duration::days(1)).date_naive())),
        reason: referrals::ReleaseReason::OnLicence as i32,
        releasing_prison: "LEI".into(),
        destination: Some(types::Destination {
            probation_delivery_unit: "EMR-LEI".into(),
            local_authority: "E06000016".into(),
            ..Default::default()
        }),
        health: Some(health()),
    }
}

pub fn to_kind(kind: types::OrganisationKind) -> pb::Recipient {
    pb::Recipient {
        recipient: Some(pb::recipient::Recipient::OrganisationKind(kind as i32)),
    }
}

pub fn to_org(code: &str) -> pb::Recipient {
    pb::Recipient {
        recipient: Some(pb::recipient::Recipient::Organisation(code.into())),
    }
}

pub fn provision(
    kind: pb::ProvisionType,
    recipients: Vec<pb::Recipient>,
    purposes: &[pb::Purpose],
    categories: &[types::DataCategory],
    exceptions: Vec<pb::Provision>,
) -> pb::Provision {
    pb::Provision {
        r#type: kind as i32,
        recipients,
        purposes: purposes.iter().map(|p| *p as i32).collect(),
        categories: categories.iter().map(|c| *c as i32).collect(),
        period: None,
        exceptions,
    }
}

pub fn consent(key: &str, n: u32, provision: pb::Provision) -> pb::RecordConsentRequest {
    pb::RecordConsentRequest {
        idempotency_key: key.into(),
        person: Some(ids(n)),
        provision: Some(provision),
        period: None,
        method: pb::ConsentMethod::Written as i32,
    }
}

pub fn ask(
    n: u32,
    purpose: pb::Purpose,
    categories: &[types::DataCategory],
    justification: &str,
) -> pb::RequestDisclosureRequest {
    pb::RequestDisclosureRequest {
        person: Some(ids(n)),
        purpose: purpose as i32,
        categories: categories.iter().map(|c| *c as i32).collect(),
        justification: justification.into(),
    }
}

/// The categories a summary holds something for.
pub fn present(health: &Option<types::HealthSummary>) -> Vec<types::DataCategory> {
    let mut present: Vec<_> =
        throughcare_sharing::domain::minimise::present(&health.clone().unwrap_or_default())
            .into_iter()
            .collect();
    present.sort();
    present
}

pub fn categories(list: &[i32]) -> Vec<types::DataCategory> {
    let mut categories: Vec<_> = list
        .iter()
        .map(|c| types::DataCategory::try_from(*c).unwrap())
        .collect();
    categories.sort();
    categories
}

pub fn fields(status: &tonic::Status) -> Vec<String> {
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|f| f.field.clone()).collect())
        .unwrap_or_default()
}
