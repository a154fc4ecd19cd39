//! Requests the sharing tests send.

use crate::harness::{nhs, start};
use chrono::Duration;
use throughcare_proto::referrals::v1 as referrals;
use throughcare_proto::sharing::v1 as pb;
use throughcare_proto::types::v1 as types;
use throughcare_testkit::date;
use throughcare_testkit::health::{four_categories, smoker};

pub fn ids(n: u32) -> types::PersonIdentifiers {
    types::PersonIdentifiers {
        nhs_number: nhs(n),
        prison_number: format!("B{:04}CD", n % 10_000),
        crn: String::new(),
    }
}

/// A health summary touching five categories.
pub fn health() -> types::HealthSummary {
    types::HealthSummary {
        smoking: smoker(),
        ..four_categories()
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
        supervision_ends_on: None,
    }
}

/// Probation refers person `n` to TP-LEI for substance misuse treatment.
pub fn referral_to_the_provider(key: &str, n: u32) -> referrals::RequestReferralRequest {
    referrals::RequestReferralRequest {
        idempotency_key: key.into(),
        person: release(n).person,
        service: types::ServiceType::SubstanceMisuseTreatment as i32,
        provider: "TP-LEI".into(),
        urgency: referrals::Urgency::Routine as i32,
        release_id: String::new(),
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

/// An agreement disclosed by `parties` to `recipients`, for direct care.
pub fn agreement(
    key: &str,
    basis: pb::LawfulBasisType,
    recipients: Vec<pb::Recipient>,
    categories: &[types::DataCategory],
    parties: &[&str],
) -> pb::RegisterAgreementRequest {
    pb::RegisterAgreementRequest {
        idempotency_key: key.into(),
        basis_type: basis as i32,
        title: format!("agreement {key}"),
        legal_reference: "LLR-ISA-2026-07".into(),
        recipients,
        purposes: vec![pb::Purpose::DirectCare as i32],
        categories: categories.iter().map(|c| *c as i32).collect(),
        period: None,
        disclosing_parties: parties.iter().map(|p| (*p).to_owned()).collect(),
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
    throughcare_testkit::bad_request_fields(status)
        .expect("INVALID_ARGUMENT carries BadRequest details")
}
