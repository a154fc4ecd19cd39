//! One person, whatever identifiers arrive when: people often leave prison
//! with no NHS number known, and probation may record their consent with one
//! before the referrals service has linked it to the prison number. When
//! referrals learns the identifiers are one person it says so, and sharing
//! joins everything it held apart — a refusal keeps counting, and no record is
//! lost.

use crate::fixtures::*;
use crate::harness::{Rig, nhs};
use throughcare_proto::referrals::v1 as referrals;
use throughcare_proto::sharing::v1::{self as pb, Purpose};
use throughcare_proto::types::v1::{self as types, DataCategory as C, ServiceType};

fn nhs_only(n: u32) -> types::PersonIdentifiers {
    types::PersonIdentifiers {
        nhs_number: nhs(n),
        ..Default::default()
    }
}

fn prison_only(n: u32) -> types::PersonIdentifiers {
    types::PersonIdentifiers {
        prison_number: ids(n).prison_number,
        ..Default::default()
    }
}

/// The person refuses sharing with the provider (recorded with their NHS
/// number); an earlier permit for it was recorded with their prison number.
async fn refusal_and_permit_under_different_identifiers(rig: &Rig, n: u32) {
    let to_provider = |kind| {
        provision(
            kind,
            vec![to_org("TP-LEI")],
            &[Purpose::DirectCare],
            &[C::SubstanceMisuse],
            vec![],
        )
    };
    let mut permit = consent(
        &format!("permit-{n}"),
        n,
        to_provider(pb::ProvisionType::Permit),
    );
    permit.person = Some(prison_only(n));
    let mut refusal = consent(
        &format!("refusal-{n}"),
        n,
        to_provider(pb::ProvisionType::Deny),
    );
    refusal.person = Some(nhs_only(n));
    for request in [permit, refusal] {
        rig.consents("EMR-LEI")
            .record_consent(request)
            .await
            .unwrap();
    }
}

/// Released knowing only the prison number; waits for the record.
async fn released_by_prison_number(rig: &Rig, n: u32, key: &str, records: i64) -> String {
    let mut request = release(n);
    request.idempotency_key = key.into();
    request.person.as_mut().unwrap().identifiers = Some(prison_only(n));
    let release_id = rig
        .transitions("LEI")
        .notify_release(request)
        .await
        .unwrap()
        .into_inner()
        .release
        .unwrap()
        .release_id;
    rig.wait_count(
        "the release's record",
        "SELECT count(DISTINCT record_id) FROM health_records",
        records,
    )
    .await;
    release_id
}

/// The consents sharing lists for these identifiers.
async fn consents_of(rig: &Rig, person: types::PersonIdentifiers) -> usize {
    rig.consents("EMR-LEI")
        .list_consents(pb::ListConsentsRequest {
            person: Some(person),
        })
        .await
        .unwrap()
        .into_inner()
        .consents
        .len()
}

pub async fn a_refusal_keeps_counting_when_referrals_links_the_identifiers(rig: Rig) {
    refusal_and_permit_under_different_identifiers(&rig, 40).await;
    released_by_prison_number(&rig, 40, "first-release-40", 1).await;
    assert_eq!(rig.count("SELECT count(*) FROM persons").await, 2);

    // Probation refers them with both identifiers: referrals learns the NHS
    // number belongs to the person it knew by prison number, and says so.
    let mut provider = rig
        .disclosures("TP-LEI")
        .watch_deliveries(pb::WatchDeliveriesRequest::default())
        .await
        .unwrap()
        .into_inner();
    rig.referrals("EMR-LEI")
        .request_referral(referrals::RequestReferralRequest {
            idempotency_key: "ref-40".into(),
            person: release(40).person,
            service: ServiceType::SubstanceMisuseTreatment as i32,
            provider: "TP-LEI".into(),
            urgency: referrals::Urgency::Routine as i32,
            release_id: String::new(),
        })
        .await
        .unwrap();
    rig.wait_count(
        "the provider's push to be decided",
        "SELECT count(*) FROM deliveries WHERE state <> 'pending'",
        1,
    )
    .await;
    assert_eq!(
        rig.count("SELECT count(*) FROM deliveries WHERE state = 'refused'")
            .await,
        1,
        "the refusal recorded under the NHS number still wins over the permit"
    );
    assert_eq!(rig.count("SELECT count(*) FROM persons").await, 1);
    assert_eq!(
        rig.count("SELECT count(DISTINCT person_key) FROM consents")
            .await,
        1
    );
    for person in [nhs_only(40), prison_only(40), ids(40)] {
        assert_eq!(
            consents_of(&rig, person).await,
            2,
            "one person, both consents"
        );
    }
    // Nothing was sent, so nothing waits on the stream.
    let nothing = tokio::time::timeout(std::time::Duration::from_millis(200), async {
        tokio_stream::StreamExt::next(&mut provider).await
    })
    .await;
    assert!(nothing.is_err(), "no delivery was made: {nothing:?}");
}

pub async fn a_record_joining_two_known_people_is_stored_not_lost(rig: Rig) {
    refusal_and_permit_under_different_identifiers(&rig, 41).await;
    // The provider asks, naming the NHS number only: refused, and audited
    // under the key sharing knows that number by.
    let mut by_nhs = ask(41, Purpose::DirectCare, &[C::SubstanceMisuse], "");
    by_nhs.person = Some(nhs_only(41));
    let refused = rig
        .disclosures("TP-LEI")
        .request_disclosure(by_nhs)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(refused.decision, pb::Decision::Deny as i32);
    let first = released_by_prison_number(&rig, 41, "first-release-41", 1).await;
    rig.transitions("LEI")
        .reverse_release(referrals::ReverseReleaseRequest {
            idempotency_key: "reverse-41".into(),
            release_id: first,
            reason: referrals::ReversalReason::NotifiedInError as i32,
        })
        .await
        .unwrap();
    // Released again, now with the NHS number too: the sealed record names
    // both identifiers, each of which sharing holds under its own key.
    rig.transitions("LEI")
        .notify_release(release(41))
        .await
        .unwrap();
    rig.wait_count(
        "the second record",
        "SELECT count(DISTINCT record_id) FROM health_records",
        2,
    )
    .await;
    rig.wait_count("the link", "SELECT count(*) FROM person_links", 1)
        .await;
    assert_eq!(rig.count("SELECT count(*) FROM persons").await, 1);
    assert_eq!(
        rig.count("SELECT count(DISTINCT person_key) FROM health_records")
            .await,
        1
    );
    for person in [nhs_only(41), prison_only(41)] {
        assert_eq!(consents_of(&rig, person).await, 2);
    }
    let asked = rig
        .disclosures("TP-LEI")
        .request_disclosure(ask(41, Purpose::DirectCare, &[C::SubstanceMisuse], ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        asked.decision,
        pb::Decision::Deny as i32,
        "the refusal counts"
    );
    // Subject access by the prison number lists both refusals, the one
    // audited under the NHS number's key included.
    let subject = rig
        .disclosures("NHSE-HJ")
        .list_disclosures(pb::ListDisclosuresRequest {
            person: Some(prison_only(41)),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(subject.refusals.len(), 2, "{:?}", subject.refusals);
    assert!(subject.refusals.iter().all(|r| r.recipient == "TP-LEI"));
}
