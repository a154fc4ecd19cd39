//! Reads are scoped like writes: a person's consents are read or withdrawn
//! only by an organisation with a relationship with them (the one that
//! recorded one, their prison, their probation unit, a provider with an
//! active referral), subject access is run by national oversight or for such
//! a person, and an organisation's auditors see their own organisation's
//! entries. Every read is audited; to anyone else the person does not exist.

use crate::fixtures::*;
use crate::harness::Rig;
use throughcare_proto::sharing::v1::{self as pb, Purpose};
use throughcare_proto::types::v1::{DataCategory as C, OrganisationKind as K};
use tonic::Code;

async fn list(rig: &Rig, org: &str, n: u32) -> Result<usize, (Code, String)> {
    rig.consents(org)
        .list_consents(pb::ListConsentsRequest {
            person: Some(ids(n)),
        })
        .await
        .map(|r| r.into_inner().consents.len())
        .map_err(|s| (s.code(), s.message().to_owned()))
}

async fn subject_access(rig: &Rig, org: &str, n: u32) -> Result<usize, (Code, String)> {
    rig.disclosures(org)
        .list_disclosures(pb::ListDisclosuresRequest {
            person: Some(ids(n)),
        })
        .await
        .map(|r| r.into_inner().disclosures.len())
        .map_err(|s| (s.code(), s.message().to_owned()))
}

pub async fn only_organisations_related_to_the_person_read_or_withdraw_consents(rig: Rig) {
    let permit = provision(
        pb::ProvisionType::Permit,
        vec![to_kind(K::Probation)],
        &[Purpose::DirectCare],
        &[C::MentalHealth],
        vec![],
    );
    let consent_id = rig
        .consents("EMR-LEI")
        .record_consent(consent("c-70", 70, permit))
        .await
        .unwrap()
        .into_inner()
        .consent
        .unwrap()
        .consent_id;
    // The one that recorded it reads it; nobody else knows it yet, and
    // another probation unit is answered as for a person never seen.
    assert_eq!(list(&rig, "EMR-LEI", 70).await, Ok(1));
    let unseen = list(&rig, "EMR-NOT", 71).await.unwrap_err();
    assert_eq!(unseen.0, Code::NotFound);
    for org in ["EMR-NOT", "LEI", "TP-LEI", "RT5"] {
        assert_eq!(list(&rig, org, 70).await, Err(unseen.clone()), "{org}");
    }
    let withdrawn = rig
        .consents("EMR-NOT")
        .withdraw_consent(pb::WithdrawConsentRequest {
            idempotency_key: "w-70".into(),
            consent_id: consent_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(withdrawn.code(), Code::NotFound);

    // Released from LEI: the prison may read; a referral to TP-LEI makes it
    // a party too; RT5 still is not.
    rig.transitions("LEI")
        .notify_release(release(70))
        .await
        .unwrap();
    rig.wait_count("the release", "SELECT count(*) FROM releases", 1)
        .await;
    assert_eq!(list(&rig, "LEI", 70).await, Ok(1));
    rig.referrals("EMR-LEI")
        .request_referral(referral_to_the_provider("ref-70", 70))
        .await
        .unwrap();
    rig.wait_count(
        "the referral's push",
        "SELECT count(*) FROM deliveries WHERE trigger_kind = 'referral'",
        1,
    )
    .await;
    assert_eq!(list(&rig, "TP-LEI", 70).await, Ok(1));
    assert_eq!(list(&rig, "RT5", 70).await, Err(unseen));

    // Every read was audited: the refused ones as denies.
    let reads = |decision: &'static str| {
        if decision == "permit" {
            "SELECT count(*) FROM audit_log WHERE action = 'AUDITED_ACTION_CONSENTS_READ' AND decision = 'DECISION_PERMIT'"
        } else {
            "SELECT count(*) FROM audit_log WHERE action = 'AUDITED_ACTION_CONSENTS_READ' AND decision = 'DECISION_DENY'"
        }
    };
    assert_eq!(rig.count(reads("permit")).await, 3);
    assert_eq!(rig.count(reads("deny")).await, 6);

    // The one that recorded it withdraws it.
    rig.consents("EMR-LEI")
        .withdraw_consent(pb::WithdrawConsentRequest {
            idempotency_key: "w-70-ok".into(),
            consent_id,
        })
        .await
        .unwrap();
}

pub async fn subject_access_and_the_audit_log_are_scoped(rig: Rig) {
    rig.transitions("LEI")
        .notify_release(release(72))
        .await
        .unwrap();
    rig.wait_count("the release", "SELECT count(*) FROM releases", 1)
        .await;
    rig.disclosures("EMR-LEI")
        .request_disclosure(ask(72, Purpose::DirectCare, &[C::MentalHealth], "review"))
        .await
        .unwrap();
    // National oversight runs subject access for anyone; the governance of
    // another prison, for someone it has no relationship with, cannot.
    assert_eq!(subject_access(&rig, "NHSE-HJ", 72).await, Ok(0));
    let refused = subject_access(&rig, "NMI", 72).await.unwrap_err();
    assert_eq!(refused.0, Code::NotFound);
    assert_eq!(
        subject_access(&rig, "NMI", 73).await,
        Err(refused),
        "as for a person never seen"
    );
    assert_eq!(
        rig.count("SELECT count(*) FROM audit_log WHERE action = 'AUDITED_ACTION_SUBJECT_ACCESS'")
            .await,
        3
    );

    // A trust's auditors see only their own organisation's entries; national
    // oversight sees every entry.
    let entries = |org: &'static str| {
        let rig = &rig;
        async move {
            rig.audit(org)
                .list_audit_entries(pb::ListAuditEntriesRequest::default())
                .await
                .unwrap()
                .into_inner()
                .entries
        }
    };
    assert!(entries("RXA").await.is_empty());
    let all = entries("NHSE-HJ").await;
    assert!(all.iter().any(|e| e.actor_organisation == "EMR-LEI"));
    assert!(all.iter().any(|e| e.actor_organisation == "NMI"));
}
