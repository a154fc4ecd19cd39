use crate::fixtures::*;
use crate::harness::Rig;
use throughcare_proto::sharing::v1::{self as pb, Decision, Purpose};
use throughcare_proto::types::v1::{DataCategory as C, OrganisationKind};
use tonic::Code;

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

pub async fn consent_permits_exactly_the_permitted_categories(rig: Rig) {
    released(&rig, 1, 1).await;
    let probation = provision(
        pb::ProvisionType::Permit,
        vec![to_kind(OrganisationKind::Probation)],
        &[Purpose::DirectCare],
        &[C::MentalHealth, C::SubstanceMisuse],
        vec![],
    );
    rig.consents("EMR-LEI")
        .record_consent(consent("c1", 1, probation))
        .await
        .unwrap();

    let answer = rig
        .disclosures("EMR-LEI")
        .request_disclosure(ask(1, Purpose::DirectCare, &[], ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.decision, Decision::Permit as i32);
    assert_eq!(
        categories(&answer.categories),
        [C::MentalHealth, C::SubstanceMisuse]
    );
    assert_eq!(
        present(&answer.health),
        [C::MentalHealth, C::SubstanceMisuse],
        "exactly the permitted categories leave"
    );
    assert!(
        answer
            .health
            .unwrap()
            .substance_misuse
            .unwrap()
            .on_opioid_substitution_therapy
    );
    assert_eq!(answer.bases[0].r#type, pb::LawfulBasisType::Consent as i32);

    // Asking for one permitted and one refused category yields only the permitted one.
    let narrow = rig
        .disclosures("EMR-LEI")
        .request_disclosure(ask(
            1,
            Purpose::DirectCare,
            &[C::MentalHealth, C::Smoking],
            "",
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(present(&narrow.health), [C::MentalHealth]);
    let other_purpose = rig
        .disclosures("EMR-LEI")
        .request_disclosure(ask(1, Purpose::RiskManagement, &[], ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(other_purpose.decision, Decision::Deny as i32);

    // A deny is the same whether or not anything is held about the person.
    let provider = rig
        .disclosures("TP-LEI")
        .request_disclosure(ask(1, Purpose::DirectCare, &[], ""))
        .await
        .unwrap()
        .into_inner();
    let stranger = rig
        .disclosures("TP-LEI")
        .request_disclosure(ask(999, Purpose::DirectCare, &[], ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        provider,
        pb::RequestDisclosureResponse {
            decision: Decision::Deny as i32,
            ..Default::default()
        }
    );
    assert_eq!(
        provider, stranger,
        "a deny does not reveal whether a record exists"
    );
    rig.wait_count(
        "every decision audited",
        "SELECT count(*) FROM audit_log",
        5,
    )
    .await;
}

pub async fn deny_overrides_permit(rig: Rig) {
    released(&rig, 2, 1).await;
    let everything = provision(
        pb::ProvisionType::Permit,
        vec![to_kind(OrganisationKind::Probation)],
        &[],
        &[],
        vec![],
    );
    let no_substance = provision(
        pb::ProvisionType::Deny,
        vec![],
        &[],
        &[C::SubstanceMisuse],
        vec![],
    );
    let except_mental = provision(
        pb::ProvisionType::Permit,
        vec![to_org("EMR-LEI")],
        &[],
        &[],
        vec![provision(
            pb::ProvisionType::Deny,
            vec![],
            &[Purpose::DirectCare],
            &[C::MentalHealth],
            vec![],
        )],
    );
    for (i, p) in [everything, no_substance, except_mental]
        .into_iter()
        .enumerate()
    {
        rig.consents("EMR-LEI")
            .record_consent(consent(&format!("c{i}"), 2, p))
            .await
            .unwrap();
    }
    let answer = rig
        .disclosures("EMR-LEI")
        .request_disclosure(ask(2, Purpose::DirectCare, &[], ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        present(&answer.health),
        [C::GpRegistration, C::SelfHarmRisk, C::Smoking],
        "the two denials win over the permits"
    );

    // A MAPPA basis covering substance misuse does not beat the person's refusal.
    let mappa = pb::RegisterAgreementRequest {
        idempotency_key: "mappa".into(),
        basis_type: pb::LawfulBasisType::Mappa as i32,
        title: "MAPPA category 2".into(),
        legal_reference: "Criminal Justice Act 2003 s.325".into(),
        recipients: vec![to_org("EMR-LEI")],
        purposes: vec![Purpose::RiskManagement as i32],
        categories: vec![C::SubstanceMisuse as i32],
        period: None,
        disclosing_parties: vec!["LEI".into(), "NMI".into()],
    };
    rig.agreements("NMI")
        .register_agreement(mappa)
        .await
        .unwrap();
    let refused = rig
        .disclosures("EMR-LEI")
        .request_disclosure(ask(
            2,
            Purpose::RiskManagement,
            &[C::SubstanceMisuse],
            "MAPPA meeting on the 4th",
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(refused.decision, Decision::Deny as i32);
}

pub async fn agreements_need_a_justification_and_are_flagged(rig: Rig) {
    released(&rig, 3, 1).await;
    let isa = pb::RegisterAgreementRequest {
        idempotency_key: "isa".into(),
        basis_type: pb::LawfulBasisType::InformationSharingAgreement as i32,
        title: "Leicester GP registration information sharing agreement".into(),
        legal_reference: "LLR-ISA-2026-07".into(),
        recipients: vec![to_kind(OrganisationKind::Provider)],
        purposes: vec![Purpose::DirectCare as i32],
        categories: vec![C::GpRegistration as i32],
        period: None,
        disclosing_parties: vec!["LEI".into(), "NMI".into()],
    };
    let agreement = rig
        .agreements("NMI")
        .register_agreement(isa)
        .await
        .unwrap()
        .into_inner()
        .agreement
        .unwrap();
    let before = rig.count("SELECT count(*) FROM audit_log").await;
    let unjustified = rig
        .disclosures("TP-LEI")
        .request_disclosure(ask(3, Purpose::DirectCare, &[C::GpRegistration], ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        unjustified.decision,
        Decision::Deny as i32,
        "without its justification it is refused, like any deny"
    );
    assert_eq!(
        rig.count("SELECT count(*) FROM audit_log").await,
        before + 1,
        "and audited"
    );

    let why = "registering at the practice on release day";
    let answer = rig
        .disclosures("TP-LEI")
        .request_disclosure(ask(3, Purpose::DirectCare, &[C::GpRegistration], why))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.decision, Decision::Permit as i32);
    assert_eq!(
        answer.bases,
        [pb::LawfulBasis {
            r#type: pb::LawfulBasisType::InformationSharingAgreement as i32,
            basis_id: agreement.agreement_id.clone()
        }]
    );
    assert_eq!(present(&answer.health), [C::GpRegistration]);

    let flagged = rig
        .audit("NHSE-HJ")
        .list_audit_entries(pb::ListAuditEntriesRequest {
            flagged_only: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert_eq!(flagged.len(), 1);
    assert_eq!(
        (
            flagged[0].justification.as_str(),
            flagged[0].actor_organisation.as_str()
        ),
        (why, "TP-LEI")
    );
    assert!(flagged[0].flagged_for_review);

    rig.agreements("NMI")
        .revoke_agreement(pb::RevokeAgreementRequest {
            idempotency_key: "revoke".into(),
            agreement_id: agreement.agreement_id,
        })
        .await
        .unwrap();
    let after = rig
        .disclosures("TP-LEI")
        .request_disclosure(ask(3, Purpose::DirectCare, &[C::GpRegistration], why))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        after.decision,
        Decision::Deny as i32,
        "a revoked basis permits nothing"
    );
}

pub async fn a_consent_covers_only_its_period(rig: Rig) {
    released(&rig, 4, 1).await;
    let now = throughcare_platform::clock::Clock::now(rig.clock.as_ref()).timestamp();
    let mut request = consent(
        "dated",
        4,
        provision(
            pb::ProvisionType::Permit,
            vec![to_org("EMR-LEI")],
            &[],
            &[],
            vec![],
        ),
    );
    request.period = Some(throughcare_proto::types::v1::TimeRange {
        start: Some(prost_types::Timestamp {
            seconds: now,
            nanos: 0,
        }),
        end: Some(prost_types::Timestamp {
            seconds: now + 86_400,
            nanos: 0,
        }),
    });
    rig.consents("EMR-LEI")
        .record_consent(request)
        .await
        .unwrap();
    let during = rig
        .disclosures("EMR-LEI")
        .request_disclosure(ask(4, Purpose::DirectCare, &[], ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(during.decision, Decision::Permit as i32);
    rig.clock.advance(chrono::Duration::days(2));
    let after = rig
        .disclosures("EMR-LEI")
        .request_disclosure(ask(4, Purpose::DirectCare, &[], ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        after.decision,
        Decision::Deny as i32,
        "an expired consent permits nothing"
    );
}

pub async fn bad_input_is_refused_by_field_and_nothing_is_written(rig: Rig) {
    let mut consents = rig.consents("EMR-LEI");
    let mut bad = consent(
        "b1",
        5,
        provision(
            pb::ProvisionType::Permit,
            vec![to_org("NOWHERE")],
            &[Purpose::Commissioning],
            &[],
            vec![],
        ),
    );
    bad.person.as_mut().unwrap().nhs_number = "123".into();
    bad.provision.as_mut().unwrap().categories = vec![99];
    bad.period = Some(throughcare_proto::types::v1::TimeRange {
        start: Some(prost_types::Timestamp {
            seconds: 2_000_000_000,
            nanos: 0,
        }),
        end: Some(prost_types::Timestamp {
            seconds: 1_900_000_000,
            nanos: 0,
        }),
    });
    bad.method = 0;
    assert_eq!(
        fields(&consents.record_consent(bad).await.unwrap_err()),
        [
            "person.nhs_number",
            "provision.recipients[0].organisation",
            "provision.purposes[0]",
            "provision.categories[0]",
            "period.end",
            "method"
        ]
    );
    let no_type = consent("b2", 5, pb::Provision::default());
    assert_eq!(
        fields(&consents.record_consent(no_type).await.unwrap_err()),
        ["provision.type"]
    );

    let mut disclosures = rig.disclosures("EMR-LEI");
    let commissioning = disclosures
        .request_disclosure(ask(5, Purpose::Commissioning, &[], ""))
        .await
        .unwrap_err();
    assert_eq!(fields(&commissioning), ["purpose"]);
    let mut unknown = ask(5, Purpose::DirectCare, &[], "");
    unknown.categories = vec![0, 77];
    assert_eq!(
        fields(&disclosures.request_disclosure(unknown).await.unwrap_err()),
        ["categories[0]", "categories[1]"]
    );

    let agreement = pb::RegisterAgreementRequest {
        basis_type: pb::LawfulBasisType::Consent as i32,
        ..Default::default()
    };
    let status = rig
        .agreements("NHSE")
        .register_agreement(agreement)
        .await
        .unwrap_err();
    assert_eq!(
        fields(&status),
        [
            "basis_type",
            "title",
            "legal_reference",
            "recipients",
            "disclosing_parties"
        ]
    );

    for table in [
        "consents",
        "agreements",
        "audit_log",
        "disclosures",
        "outbox",
        "idempotency_keys",
    ] {
        let sql: &'static str = Box::leak(format!("SELECT count(*) FROM {table}").into_boxed_str());
        assert_eq!(rig.count(sql).await, 0, "{table}");
    }
}

pub async fn each_rpc_needs_the_right_role(rig: Rig) {
    let denied =
        |status: tonic::Status| assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    denied(
        rig.disclosures("QK1")
            .request_disclosure(ask(6, Purpose::DirectCare, &[], ""))
            .await
            .unwrap_err(),
    );
    denied(
        rig.audit("EMR-LEI")
            .verify_audit_chain(pb::VerifyAuditChainRequest {})
            .await
            .unwrap_err(),
    );
    denied(
        rig.agreements("EMR-LEI")
            .register_agreement(pb::RegisterAgreementRequest::default())
            .await
            .unwrap_err(),
    );
    denied(
        rig.disclosures("EMR-LEI")
            .list_disclosures(pb::ListDisclosuresRequest {
                person: Some(ids(6)),
            })
            .await
            .unwrap_err(),
    );
    denied(
        rig.consents("NHSE-HJ")
            .record_consent(consent("x", 6, pb::Provision::default()))
            .await
            .unwrap_err(),
    );
}
