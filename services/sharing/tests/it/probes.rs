//! No free probes: every request that depends on what is held about a person
//! is decided and audited, and a refusal reads the same whoever it is about —
//! a person who refused, one never seen, one with no basis that covers the
//! request, or one asked about without the justification a basis needs.

use crate::fixtures::*;
use crate::harness::Rig;
use prost::Message;
use throughcare_proto::sharing::v1::{self as pb, Decision, Purpose};
use throughcare_proto::types::v1::{DataCategory as C, OrganisationKind as K};
use throughcare_sharing::domain::audit::NOT_WRITTEN;
use tonic::Code;

/// Everything the caller is told: the status code, its message and details,
/// and the whole response message's bytes.
type Answer = (Code, String, Vec<u8>, Vec<u8>);

async fn released(rig: &Rig, n: u32, records: i64) {
    rig.transitions("LEI")
        .notify_release(release(n))
        .await
        .unwrap();
    rig.wait_count(
        "the sealed record to be stored",
        "SELECT count(DISTINCT record_id) FROM health_records",
        records,
    )
    .await;
}

/// Asks as `org` and returns what the caller is told, checking the request
/// left exactly one audit entry behind.
async fn asked(rig: &Rig, org: &str, request: pb::RequestDisclosureRequest) -> Answer {
    let before = rig.count("SELECT count(*) FROM audit_log").await;
    let answer = match rig.disclosures(org).request_disclosure(request).await {
        Ok(response) => (
            Code::Ok,
            String::new(),
            Vec::new(),
            response.into_inner().encode_to_vec(),
        ),
        Err(status) => (
            status.code(),
            status.message().to_owned(),
            status.details().to_vec(),
            Vec::new(),
        ),
    };
    assert_eq!(
        rig.count("SELECT count(*) FROM audit_log").await,
        before + 1,
        "exactly one audit entry for {answer:?}"
    );
    answer
}

/// The answer of a deny: nothing but "deny".
fn deny() -> Answer {
    let response = pb::RequestDisclosureResponse {
        decision: Decision::Deny as i32,
        ..Default::default()
    };
    (
        Code::Ok,
        String::new(),
        Vec::new(),
        response.encode_to_vec(),
    )
}

fn gp_agreement() -> pb::RegisterAgreementRequest {
    agreement(
        "isa",
        pb::LawfulBasisType::InformationSharingAgreement,
        vec![to_kind(K::Provider)],
        &[C::GpRegistration],
        &["LEI", "NMI"],
    )
}

async fn intact(rig: &Rig) {
    let verified = rig
        .audit("NHSE-HJ")
        .verify_audit_chain(pb::VerifyAuditChainRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(verified.intact, "{verified:?}");
    assert_eq!(
        verified.entries_verified,
        rig.count("SELECT count(*) FROM audit_log").await
    );
}

pub async fn a_request_without_its_justification_is_denied_and_audited(rig: Rig) {
    released(&rig, 11, 1).await;
    rig.agreements("NMI")
        .register_agreement(gp_agreement())
        .await
        .unwrap();

    let unjustified = asked(
        &rig,
        "TP-LEI",
        ask(11, Purpose::DirectCare, &[C::GpRegistration], ""),
    )
    .await;
    assert_eq!(unjustified, deny(), "decided, and answered as a deny");
    let uncovered = asked(
        &rig,
        "TP-LEI",
        ask(11, Purpose::DirectCare, &[C::Smoking], ""),
    )
    .await;
    assert_eq!(unjustified, uncovered, "like any other deny");

    let entries = rig
        .audit("NHSE-HJ")
        .list_audit_entries(pb::ListAuditEntriesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .entries;
    let entry = &entries[entries.len() - 2];
    assert_eq!(entry.decision, Decision::Deny as i32);
    assert_eq!(entry.actor_organisation, "TP-LEI");
    assert_eq!(entry.categories, [C::GpRegistration as i32]);
    assert!(entry.bases.is_empty());
    assert!(!entry.flagged_for_review, "nothing was disclosed under it");
    assert_eq!(
        entry.justification,
        format!("{NOT_WRITTEN} refused: JUSTIFICATION_REQUIRED"),
        "the refusal and why, in a plain code"
    );
    let person = ids(11);
    for identifier in [&person.nhs_number, &person.prison_number] {
        assert!(!entry.justification.contains(identifier.as_str()));
        assert!(!entry.person_key.contains(identifier.as_str()));
    }
    intact(&rig).await;

    // With its justification the same request is permitted: the agreement
    // covers it.
    let why = "registering at the practice on release day";
    let justified = rig
        .disclosures("TP-LEI")
        .request_disclosure(ask(11, Purpose::DirectCare, &[C::GpRegistration], why))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(justified.decision, Decision::Permit as i32);
    intact(&rig).await;
}

pub async fn refused_unseen_and_uncovered_people_are_answered_alike(rig: Rig) {
    const REFUSED: u32 = 12;
    const UNSEEN: u32 = 999;
    const UNCOVERED: u32 = 13;
    released(&rig, REFUSED, 1).await;
    released(&rig, UNCOVERED, 2).await;
    let refusal = provision(pb::ProvisionType::Deny, vec![], &[], &[], vec![]);
    rig.consents("EMR-LEI")
        .record_consent(consent("refusal", REFUSED, refusal))
        .await
        .unwrap();
    // The uncovered person consented, but not to this recipient.
    let elsewhere = provision(
        pb::ProvisionType::Permit,
        vec![to_org("EMR-LEI")],
        &[],
        &[],
        vec![],
    );
    rig.consents("EMR-LEI")
        .record_consent(consent("elsewhere", UNCOVERED, elsewhere))
        .await
        .unwrap();

    let gp = |n, why| ask(n, Purpose::DirectCare, &[C::GpRegistration], why);
    let people = [REFUSED, UNSEEN, UNCOVERED];

    // With nothing but consents recorded.
    for n in people {
        assert_eq!(asked(&rig, "TP-LEI", gp(n, "")).await, deny(), "person {n}");
    }

    // With an agreement that would cover the request if it were justified: the
    // person who refused is refused whatever is written, and the others
    // without a justification are refused in the same words.
    rig.agreements("NMI")
        .register_agreement(gp_agreement())
        .await
        .unwrap();
    for n in people {
        assert_eq!(asked(&rig, "TP-LEI", gp(n, "")).await, deny(), "person {n}");
    }
    assert_eq!(
        asked(&rig, "TP-LEI", gp(REFUSED, "for the practice")).await,
        deny(),
        "a refusal beats the agreement"
    );
    intact(&rig).await;
}
