//! The caseload: everyone under probation supervision at any time in a
//! period, from spells the referrals service's transitions begin and end.

use crate::fixtures::*;
use crate::harness::Rig;
use chrono::{NaiveDate, TimeZone, Utc};
use throughcare_indicators::domain::period::Period;
use throughcare_proto::indicators::v1 as pb;
use throughcare_proto::referrals::v1 as referrals;
use throughcare_proto::types::v1 as types;

fn day(month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, month, day).unwrap()
}

pub async fn the_caseload_counts_everyone_under_supervision_until_their_spell_ends(rig: Rig) {
    // Twelve people released on licence in early March: the last one's
    // licence is due to end on 20 April.
    release_all(&rig, 0..11, march()).await;
    let mut short = release(11, march());
    short.supervision_ends_on = Some(date(day(4, 20)));
    rig.transitions("LEI").notify_release(short).await.unwrap();
    // And a community order in Nottingham, due to end on 20 April.
    rig.transitions("EMR-NOT")
        .notify_community_sentence(referrals::NotifyCommunitySentenceRequest {
            idempotency_key: "order-50".into(),
            person: release(50, march()).person,
            sentence_type: referrals::SentenceType::CommunityOrder as i32,
            start_date: Some(date(march())),
            end_date: Some(date(day(4, 20))),
            requirements: Vec::new(),
            supervising_area: Some(types::Destination {
                probation_delivery_unit: "EMR-NOT".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    // On 2 April two of them die and a third is recalled to prison.
    rig.clock
        .set(Utc.with_ymd_and_hms(2026, 4, 2, 10, 0, 0).unwrap());
    let person = |n: u32| release(n, march()).person;
    for n in 0..2 {
        rig.transitions("EMR-NOT")
            .notify_death(referrals::NotifyDeathRequest {
                idempotency_key: format!("death-{n}"),
                person: person(n),
                date_of_death: Some(date(day(4, 2))),
                category: referrals::DeathCategory::NaturalCauses as i32,
                supervising_area: Some(types::Destination {
                    probation_delivery_unit: "EMR-NOT".into(),
                    ..Default::default()
                }),
            })
            .await
            .unwrap();
    }
    rig.transitions("LEI")
        .notify_reception(referrals::NotifyReceptionRequest {
            idempotency_key: "recall-2".into(),
            person: person(2),
            prison: "LEI".into(),
            received_on: Some(date(day(4, 2))),
            reception_type: referrals::ReceptionType::Recall as i32,
        })
        .await
        .unwrap();
    rig.settle().await;
    // March and April close and are published together; then May.
    publish(&rig, Utc.with_ymd_and_hms(2026, 5, 15, 1, 0, 0).unwrap(), 1).await;
    let (march, april, may) = (
        Period::month(2026, 3),
        Period::month(2026, 4),
        Period::month(2026, 5),
    );
    // All twelve were supervised in March and, for a day at least, in
    // April, when the two deaths count although they came a month after
    // the releases (nobody was in contact with probation in April).
    assert_eq!(truth(&rig, "mortality", "EMR-LEI", march).await, (12, 0));
    assert_eq!(truth(&rig, "mortality", "EMR-LEI", april).await, (12, 2));
    assert_eq!(truth(&rig, "mortality", "ENG", april).await, (13, 2));
    // Counted where they were supervised: not where the deaths were
    // reported from, which has only its own order.
    assert_eq!(truth(&rig, "mortality", "EMR-NOT", march).await, (1, 0));
    assert_eq!(truth(&rig, "mortality", "EMR-NOT", april).await, (1, 0));
    // Nor in the prison that released them.
    assert_eq!(truth(&rig, "mortality", "LEI", april).await, (-1, -1));
    assert_eq!(truth(&rig, "mortality", "LEI", march).await.0, -1);
    assert_eq!(
        truth(&rig, "mortality", "EMR-LEI", may).await,
        (-1, -1),
        "May not yet published"
    );

    publish(&rig, Utc.with_ymd_and_hms(2026, 6, 15, 1, 0, 0).unwrap(), 2).await;
    // The deaths and the recall ended three spells and a licence ended when
    // it was due: eight remain in May; the order ended when it was due too.
    assert_eq!(truth(&rig, "mortality", "EMR-LEI", may).await, (8, 0));
    assert_eq!(truth(&rig, "mortality", "EMR-NOT", may).await, (-1, -1));
    assert_eq!(truth(&rig, "mortality", "ENG", may).await, (8, 0));
    let cells = query_all(
        &rig,
        "NHSE-HJ",
        pb::QueryIndicatorsRequest {
            indicator_ids: vec!["mortality".into()],
            periods: vec![month(2026, 5)],
            strata: vec![pb::StratumType::All as i32],
            ..Default::default()
        },
    )
    .await;
    let pdu = area(types::AreaType::ProbationDeliveryUnit, "EMR-LEI");
    assert_near(
        cell(&cells, "mortality", &pdu, &month(2026, 5)).denominator,
        8,
    );
}
