use crate::fixtures::{self, date, person};
use crate::harness::{TestService, today};
use throughcare_proto::events::v1 as events;
use throughcare_proto::referrals::v1::*;
use throughcare_proto::types::v1 as types;

fn supervising() -> Option<types::Destination> {
    Some(types::Destination {
        probation_delivery_unit: "EMR-LEI".into(),
        local_authority: "E06000016".into(),
        ..Default::default()
    })
}

pub async fn every_transition_is_recorded_and_announced(svc: TestService) {
    let day = Some(date(today()));
    let prison = svc.transitions("LEI");
    let probation = svc.transitions("EMR-LEI");
    let reception = prison
        .clone()
        .notify_reception(NotifyReceptionRequest {
            idempotency_key: "rec".into(),
            person: Some(person(60)),
            prison: "LEI".into(),
            received_on: day,
            reception_type: ReceptionType::Remand as i32,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!reception.transition_id.is_empty());
    prison
        .clone()
        .notify_transfer(NotifyTransferRequest {
            idempotency_key: "tr".into(),
            person: Some(person(60)),
            from_prison: "LEI".into(),
            to_prison: "NMI".into(),
            transferred_on: day,
        })
        .await
        .unwrap();
    probation
        .clone()
        .notify_community_sentence(NotifyCommunitySentenceRequest {
            idempotency_key: "cs".into(),
            person: Some(person(61)),
            sentence_type: SentenceType::CommunityOrder as i32,
            start_date: day,
            end_date: Some(date(today() + chrono::Duration::days(365))),
            requirements: vec![HealthRequirement::DrugRehabilitation as i32],
            supervising_area: supervising(),
        })
        .await
        .unwrap();
    let mut ap = supervising();
    ap.as_mut().unwrap().approved_premises = "AP-LEI-1".into();
    probation
        .clone()
        .notify_approved_premises_move(NotifyApprovedPremisesMoveRequest {
            idempotency_key: "ap".into(),
            person: Some(person(61)),
            destination: ap,
            moved_on: day,
        })
        .await
        .unwrap();
    probation
        .clone()
        .notify_supervision_end(NotifySupervisionEndRequest {
            idempotency_key: "se".into(),
            person: Some(person(61)),
            ended_on: day,
            reason: SupervisionEndReason::Completed as i32,
            supervising_area: supervising(),
        })
        .await
        .unwrap();
    probation
        .clone()
        .notify_death(NotifyDeathRequest {
            idempotency_key: "d".into(),
            person: Some(person(62)),
            date_of_death: day,
            category: DeathCategory::SelfInflicted as i32,
            supervising_area: supervising(),
        })
        .await
        .unwrap();
    assert_eq!(svc.count("transitions").await, 6);

    let refused = svc
        .transitions("EMR-LEI")
        .notify_reception(NotifyReceptionRequest {
            idempotency_key: "x".into(),
            person: Some(person(63)),
            prison: "LEI".into(),
            received_on: day,
            reception_type: ReceptionType::Remand as i32,
        })
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        tonic::Code::PermissionDenied,
        "receptions come from prison healthcare"
    );

    let mut log = svc.events().await;
    log.wait_for("six transitions and the death observations", |es| {
        let recorded = es
            .iter()
            .filter(|(e, _)| e.is::<events::TransitionRecorded>())
            .count();
        let facts: Vec<i32> = crate::harness::observations(es)
            .iter()
            .map(|o| o.fact)
            .collect();
        let died = facts.contains(&(events::ObservedFact::DiedSelfInflicted as i32))
            && facts.contains(&(events::ObservedFact::Died as i32));
        (recorded == 6 && died).then_some(())
    })
    .await;
}

pub async fn assessments_are_sealed_at_rest_and_read_back_by_their_author(svc: TestService) {
    let findings = types::HealthSummary {
        mental_health: Some(types::MentalHealth {
            screening: types::ScreeningOutcome::NeedIdentified as i32,
            conditions: vec![types::ClinicalCode {
                system: "http://snomed.info/sct".into(),
                code: "35489007".into(),
                display: "Depressive disorder".into(),
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    let recorded = svc
        .assessments("EMR-LEI")
        .record_assessment(RecordAssessmentRequest {
            idempotency_key: "a1".into(),
            person: Some(person(70)),
            assessed_on: Some(date(today())),
            area: supervising(),
            findings: Some(findings.clone()),
        })
        .await
        .unwrap()
        .into_inner()
        .assessment
        .unwrap();
    assert_eq!(recorded.area.unwrap().probation_region, "EMR");

    let stored: Vec<u8> = throughcare_platform::on_db!(&svc.db, p => sqlx::query_scalar("SELECT findings FROM assessments").fetch_one(p).await.unwrap());
    assert!(
        !String::from_utf8_lossy(&stored).contains("Depressive"),
        "findings are sealed at rest"
    );

    let listed = svc
        .assessments("EMR-LEI")
        .list_assessments(ListAssessmentsRequest {
            person: Some(fixtures::ids(70)),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.assessments.len(), 1);
    assert_eq!(listed.assessments[0].findings, Some(findings));
    let others = svc
        .assessments("EMR-NOT")
        .list_assessments(ListAssessmentsRequest {
            person: Some(fixtures::ids(70)),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        others.assessments.is_empty(),
        "another unit does not read this unit's assessments"
    );

    let mut log = svc.events().await;
    log.wait_for("the assessment's record and observations", |es| {
        let sealed = es
            .iter()
            .filter(|(e, _)| e.is::<events::SealedHealthRecord>())
            .count();
        let screened = crate::harness::observations(es)
            .iter()
            .any(|o| o.fact == events::ObservedFact::MentalIllnessIdentified as i32);
        (sealed == 1 && screened).then_some(())
    })
    .await;
}
