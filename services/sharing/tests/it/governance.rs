//! Who may grant a lawful basis: governance of a disclosing party, or national
//! governance, and never a recipient; and what a push made under one records.

use crate::fixtures::*;
use crate::harness::{Rig, WAIT};
use throughcare_proto::sharing::v1::{self as pb, LawfulBasisType as B};
use throughcare_proto::types::v1::{DataCategory as C, OrganisationKind as K};
use throughcare_sharing::domain::audit::NOT_WRITTEN;
use tokio_stream::StreamExt;
use tonic::Code;

fn isa(
    key: &str,
    recipients: Vec<pb::Recipient>,
    parties: &[&str],
) -> pb::RegisterAgreementRequest {
    agreement(
        key,
        B::InformationSharingAgreement,
        recipients,
        &[C::GpRegistration],
        parties,
    )
}

/// PERMISSION_DENIED, with a message that names no organisation.
fn refused(status: tonic::Status) {
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    for code in ["EMR", "NMI", "LEI", "C82010", "NHSE"] {
        assert!(!status.message().contains(code), "{status:?}");
    }
}

async fn register(rig: &Rig, org: &str, request: pb::RegisterAgreementRequest) -> pb::Agreement {
    rig.agreements(org)
        .register_agreement(request)
        .await
        .unwrap()
        .into_inner()
        .agreement
        .unwrap()
}

pub async fn only_a_disclosing_party_or_national_governance_registers(rig: Rig) {
    // A recipient names itself, by code or by kind: refused, even when it is
    // also a disclosing party, and even for national governance.
    let refusals = [
        ("EMR", isa("a", vec![to_org("EMR")], &["LEI"])),
        ("EMR", isa("b", vec![to_kind(K::Probation)], &["LEI"])),
        ("NMI", isa("c", vec![to_org("NMI")], &["NMI"])),
        (
            "NMI",
            isa("d", vec![to_kind(K::PrisonHealthcare)], &["NMI"]),
        ),
        ("NHSE", isa("e", vec![to_kind(K::National)], &["LEI"])),
        // Governance of a data controller that is not a disclosing party.
        ("C82010", isa("f", vec![to_kind(K::Probation)], &["LEI"])),
        // Probation governance, not a recipient here, grants nothing either.
        ("EMR", isa("g", vec![to_kind(K::Provider)], &["LEI"])),
    ];
    for (org, request) in refusals {
        refused(
            rig.agreements(org)
                .register_agreement(request)
                .await
                .unwrap_err(),
        );
    }
    assert_eq!(rig.count("SELECT count(*) FROM agreements").await, 0);

    let by_party = register(
        &rig,
        "NMI",
        isa("h", vec![to_kind(K::Probation)], &["LEI", "NMI"]),
    )
    .await;
    assert_eq!(by_party.disclosing_parties, ["LEI", "NMI"]);
    assert_eq!(by_party.registered_by, "NMI");
    let by_provider = register(
        &rig,
        "C82010",
        isa("i", vec![to_org("EMR-LEI")], &["C82010"]),
    )
    .await;
    assert_eq!(by_provider.disclosing_parties, ["C82010"]);
    let national = register(&rig, "NHSE", isa("j", vec![to_kind(K::Provider)], &["LEI"])).await;
    assert_eq!(national.disclosing_parties, ["LEI"]);

    let listed = rig
        .agreements("NHSE")
        .list_agreements(pb::ListAgreementsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .agreements;
    let parties: Vec<_> = listed
        .iter()
        .map(|a| a.disclosing_parties.clone())
        .collect();
    assert_eq!(parties, [vec!["LEI", "NMI"], vec!["C82010"], vec!["LEI"]]);
}

async fn revoke(rig: &Rig, org: &str, key: &str, id: &str) -> Result<pb::Agreement, tonic::Status> {
    rig.agreements(org)
        .revoke_agreement(pb::RevokeAgreementRequest {
            idempotency_key: key.into(),
            agreement_id: id.into(),
        })
        .await
        .map(|r| r.into_inner().agreement.unwrap())
}

pub async fn only_a_disclosing_party_or_national_governance_revokes(rig: Rig) {
    let nmi = register(
        &rig,
        "NHSE",
        isa("nmi", vec![to_kind(K::Probation)], &["NMI"]),
    )
    .await;
    for stranger in ["EMR", "C82010"] {
        refused(
            revoke(&rig, stranger, "r", &nmi.agreement_id)
                .await
                .unwrap_err(),
        );
    }
    assert_eq!(
        rig.count("SELECT count(*) FROM agreements WHERE revoked_at IS NOT NULL")
            .await,
        0
    );
    let revoked = revoke(&rig, "NMI", "r", &nmi.agreement_id).await.unwrap();
    assert_eq!(revoked.state, pb::AgreementState::Revoked as i32);

    let lei = register(
        &rig,
        "NHSE",
        isa("lei", vec![to_kind(K::Probation)], &["LEI"]),
    )
    .await;
    refused(
        revoke(&rig, "NMI", "r2", &lei.agreement_id)
            .await
            .unwrap_err(),
    );
    revoke(&rig, "NHSE", "r2", &lei.agreement_id).await.unwrap();

    // An agreement registered before parties were recorded has none: only
    // national governance revokes it.
    let old = register(
        &rig,
        "NMI",
        isa("old", vec![to_kind(K::Probation)], &["NMI"]),
    )
    .await;
    throughcare_platform::on_db!(&rig.db, p => sqlx::query("UPDATE agreements SET disclosing_parties = '' WHERE revoked_at IS NULL").execute(p).await.unwrap().rows_affected());
    refused(
        revoke(&rig, "NMI", "r3", &old.agreement_id)
            .await
            .unwrap_err(),
    );
    let revoked = revoke(&rig, "NHSE", "r3", &old.agreement_id).await.unwrap();
    assert!(revoked.disclosing_parties.is_empty());
}

pub async fn invalid_parties_are_refused_by_field_and_nothing_is_written(rig: Rig) {
    let none = isa("none", vec![to_kind(K::Probation)], &[]);
    let status = rig
        .agreements("NHSE")
        .register_agreement(none)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(fields(&status), ["disclosing_parties"]);

    // Unknown; probation, a commissioner and national are no data
    // controllers; a party twice.
    let bad = isa(
        "bad",
        vec![to_kind(K::Probation)],
        &["ZZZ9", "EMR", "QK1", "NHSE", "LEI", "LEI"],
    );
    for org in ["NHSE", "NMI"] {
        let status = rig
            .agreements(org)
            .register_agreement(bad.clone())
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            fields(&status),
            [
                "disclosing_parties[0]",
                "disclosing_parties[1]",
                "disclosing_parties[2]",
                "disclosing_parties[3]",
                "disclosing_parties[5]"
            ]
        );
    }
    for table in ["agreements", "idempotency_keys", "audit_log", "outbox"] {
        let sql: &'static str = Box::leak(format!("SELECT count(*) FROM {table}").into_boxed_str());
        assert_eq!(rig.count(sql).await, 0, "{table}");
    }
}

pub async fn a_push_under_an_agreement_names_it_writes_no_justification_and_is_flagged(rig: Rig) {
    let basis = register(
        &rig,
        "NHSE",
        agreement(
            "pdu",
            B::InformationSharingAgreement,
            vec![to_org("EMR-LEI")],
            &[C::GpRegistration, C::MentalHealth],
            &["LEI"],
        ),
    )
    .await;
    let mut deliveries = rig
        .disclosures("EMR-LEI")
        .watch_deliveries(pb::WatchDeliveriesRequest::default())
        .await
        .unwrap()
        .into_inner();
    rig.transitions("LEI")
        .notify_release(release(40))
        .await
        .unwrap();
    let delivery = tokio::time::timeout(WAIT, deliveries.next())
        .await
        .expect("a delivery in time")
        .unwrap()
        .unwrap()
        .delivery
        .unwrap();
    let named = [pb::LawfulBasis {
        r#type: B::InformationSharingAgreement as i32,
        basis_id: basis.agreement_id.clone(),
    }];
    assert_eq!(delivery.bases, named, "the delivery names the agreement");
    assert_eq!(
        categories(&delivery.categories),
        [C::GpRegistration, C::MentalHealth]
    );

    let entries = rig
        .audit("NHSE-HJ")
        .list_audit_entries(pb::ListAuditEntriesRequest {
            flagged_only: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    let [entry] = entries.as_slice() else {
        panic!("one flagged entry, got {entries:?}");
    };
    assert!(entry.flagged_for_review);
    assert_eq!(entry.bases, named, "the audit entry names the agreement");
    assert!(
        entry.justification.starts_with(NOT_WRITTEN),
        "nobody wrote a justification: {:?}",
        entry.justification
    );
    let subject: Vec<_> = rig
        .disclosures("NHSE-HJ")
        .list_disclosures(pb::ListDisclosuresRequest {
            person: Some(ids(40)),
        })
        .await
        .unwrap()
        .into_inner()
        .disclosures;
    assert_eq!(subject.len(), 1);
    assert_eq!(
        subject[0].bases, named,
        "the disclosure names the agreement"
    );
    let chain = rig
        .audit("NHSE-HJ")
        .verify_audit_chain(pb::VerifyAuditChainRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(chain.intact);

    // A person cannot pass their words off as nobody's.
    let forged = ask(
        40,
        pb::Purpose::DirectCare,
        &[C::GpRegistration],
        &format!("{NOT_WRITTEN} automatic disclosure at release x"),
    );
    let status = rig
        .disclosures("EMR-LEI")
        .request_disclosure(forged)
        .await
        .unwrap_err();
    assert_eq!(fields(&status), ["justification"]);
}
