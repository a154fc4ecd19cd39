use crate::fixtures::{self, complex_needs, date, fields, release};
use crate::harness::{TestService, today};
use throughcare_proto::referrals::v1::*;
use throughcare_proto::types::v1 as types;

pub async fn bad_input_is_refused_by_field_and_nothing_is_written(svc: TestService) {
    let mut client = svc.transitions("LEI");
    let refuse = |request: NotifyReleaseRequest| {
        let mut client = client.clone();
        async move { fields(&client.notify_release(request).await.unwrap_err()) }
    };

    let mut r = release("b1", 80, complex_needs());
    r.person
        .as_mut()
        .unwrap()
        .identifiers
        .as_mut()
        .unwrap()
        .nhs_number = "943 476 5918".into();
    assert_eq!(refuse(r).await, ["person.identifiers.nhs_number"]);

    let mut r = release("b2", 80, complex_needs());
    r.person.as_mut().unwrap().identifiers = Some(types::PersonIdentifiers::default());
    assert_eq!(refuse(r).await, ["person.identifiers"]);

    let mut r = release("b3", 80, complex_needs());
    r.destination.as_mut().unwrap().probation_delivery_unit = "NOWHERE".into();
    r.destination.as_mut().unwrap().local_authority = "E99000001".into();
    assert_eq!(
        refuse(r).await,
        [
            "destination.local_authority",
            "destination.probation_delivery_unit"
        ]
    );

    let mut r = release("b4", 80, complex_needs());
    r.person.as_mut().unwrap().date_of_birth = Some(date(today() + chrono::Duration::days(30)));
    assert_eq!(
        refuse(r).await,
        ["person.date_of_birth"],
        "born after the release"
    );

    let mut r = release("b5", 80, complex_needs());
    r.release_date = None;
    r.reason = 0;
    r.releasing_prison = "leicester".into();
    assert_eq!(
        refuse(r).await,
        ["release_date", "reason", "releasing_prison"]
    );

    let mut r = release("b6", 80, complex_needs());
    r.release_date = Some(types::Date {
        year: 2026,
        month: 2,
        day: 30,
    });
    assert_eq!(refuse(r).await, ["release_date"]);

    let mut r = release("b7", 80, complex_needs());
    r.health
        .as_mut()
        .unwrap()
        .substance_misuse
        .as_mut()
        .unwrap()
        .last_opioid_substitution_dose = Some(date(today() + chrono::Duration::days(20)));
    assert_eq!(
        refuse(r).await,
        ["health.substance_misuse.last_opioid_substitution_dose"],
        "a dose after release"
    );

    // Supervision cannot end before the release, nor be due for a release
    // nobody supervises.
    let mut r = release("b10", 80, complex_needs());
    r.supervision_ends_on = Some(date(today() - chrono::Duration::days(1)));
    assert_eq!(refuse(r).await, ["supervision_ends_on"]);
    let mut r = release("b11", 80, complex_needs());
    r.reason = ReleaseReason::TemporaryAbsence as i32;
    r.supervision_ends_on = Some(date(today() + chrono::Duration::days(300)));
    assert_eq!(refuse(r).await, ["supervision_ends_on"]);

    // Oversize content is refused by the field that is too big.
    let mut r = release("b8", 80, complex_needs());
    let item = types::MedicationItem {
        medicine: None,
        dosage: "once daily".into(),
        days_supplied: 28,
    };
    r.health.as_mut().unwrap().medication = Some(types::Medication {
        items: vec![item; 60],
    });
    assert_eq!(refuse(r).await, ["health.medication.items"]);
    let mut r = release("b9", 80, complex_needs());
    r.health
        .as_mut()
        .unwrap()
        .mental_health
        .as_mut()
        .unwrap()
        .conditions = vec![types::ClinicalCode {
        system: "x".into(),
        code: "1".into(),
        display: "y".repeat(5_000),
    }];
    assert_eq!(refuse(r).await, ["health.mental_health.conditions[0]"]);
    let mut r = release("b10", 80, complex_needs());
    r.idempotency_key = String::new();
    assert_eq!(refuse(r).await, ["idempotency_key"]);

    // A body beyond the transport limit never reaches a handler.
    let mut r = release("b11", 80, complex_needs());
    r.health
        .as_mut()
        .unwrap()
        .mental_health
        .as_mut()
        .unwrap()
        .care_coordinator_organisation = "X".repeat(2 << 20);
    let status = client.notify_release(r).await.unwrap_err();
    assert!(
        matches!(
            status.code(),
            tonic::Code::OutOfRange | tonic::Code::ResourceExhausted | tonic::Code::InvalidArgument
        ),
        "{status:?}"
    );

    let referral = svc
        .referrals("EMR-LEI")
        .request_referral(fixtures::referral(
            "r1",
            81,
            types::ServiceType::Unspecified,
            "EMR-NOT",
        ))
        .await
        .unwrap_err();
    assert_eq!(
        fields(&referral),
        ["service", "provider"],
        "EMR-NOT is not a provider"
    );
    let referral = svc
        .referrals("EMR-LEI")
        .request_referral(fixtures::referral(
            "r2",
            81,
            types::ServiceType::SexualHealth,
            "ZZZ99",
        ))
        .await
        .unwrap_err();
    assert_eq!(fields(&referral), ["provider"]);
    let update = svc
        .referrals("EMR-LEI")
        .update_referral(UpdateReferralRequest {
            idempotency_key: "u".into(),
            referral_id: "r".into(),
            action: None,
        })
        .await
        .unwrap_err();
    assert_eq!(fields(&update), ["action"]);

    for table in [
        "persons",
        "releases",
        "continuity_tasks",
        "referrals",
        "outbox",
        "idempotency_keys",
    ] {
        assert_eq!(svc.count(table).await, 0, "{table} after refused requests");
    }
}
