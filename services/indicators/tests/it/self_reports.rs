//! The self-reported outcome and experience indicators, from surveys that
//! probation and providers record through the referrals service.

use crate::fixtures::*;
use crate::harness::Rig;
use chrono::{NaiveDate, TimeZone, Utc};
use throughcare_indicators::domain::period::Period;
use throughcare_proto::referrals::v1 as referrals;
use throughcare_proto::types::v1 as types;

fn survey(
    n: u32,
    on: NaiveDate,
    status: referrals::SelfReportStatus,
    answers: Option<referrals::SelfReportAnswers>,
) -> referrals::RecordSelfReportRequest {
    referrals::RecordSelfReportRequest {
        idempotency_key: format!("survey-{n}-{on}"),
        person: release(n, march()).person,
        reported_on: Some(date(on)),
        area: Some(types::Destination {
            probation_delivery_unit: "EMR-LEI".into(),
            local_authority: "E06000016".into(),
            ..Default::default()
        }),
        status: status as i32,
        answers,
    }
}

pub async fn self_reports_feed_the_outcome_and_experience_indicators(rig: Rig) {
    use referrals::SelfReportAnswer::{No, Yes};
    use referrals::SelfReportStatus::{Declined, Offered, Returned};
    // Twelve people released in March; six of them misusing drugs.
    for n in 0..12 {
        let mut request = release(n, march());
        if n < 6 {
            let health = request.health.as_mut().unwrap();
            health.substance_misuse = Some(types::SubstanceMisuse {
                drug_screening: types::ScreeningOutcome::NeedIdentified as i32,
                ..Default::default()
            });
        }
        rig.transitions("LEI")
            .notify_release(request)
            .await
            .unwrap();
    }
    // In April (before March closes): eight surveys come back, two are
    // declined, two not yet.
    let in_april = NaiveDate::from_ymd_opt(2026, 4, 13).unwrap();
    rig.clock
        .set(Utc.with_ymd_and_hms(2026, 4, 14, 10, 0, 0).unwrap());
    for n in 0..12 {
        let (status, answers) = match n {
            0..8 => (
                Returned,
                Some(referrals::SelfReportAnswers {
                    mental_health_well_managed: if n < 5 { Yes } else { No } as i32,
                    physical_health_well_managed: if n < 3 { Yes } else { No } as i32,
                    practising_safe_sex: if n % 2 == 0 { Yes as i32 } else { 0 },
                    experience: if n < 6 {
                        referrals::ExperienceRating::Positive
                    } else {
                        referrals::ExperienceRating::Negative
                    } as i32,
                    barriers_to_access: if n >= 6 { Yes } else { No } as i32,
                    // Of the six misusing drugs, 0..4 returned a reduction.
                    drug_use: if n < 4 {
                        referrals::DrugUseChange::Reduced
                    } else {
                        referrals::DrugUseChange::Unchanged
                    } as i32,
                }),
            ),
            8..10 => (Declined, None),
            _ => (Offered, None),
        };
        rig.assessments("EMR-NOT")
            .record_self_report(survey(n, in_april, status, answers))
            .await
            .unwrap();
    }
    rig.settle().await;
    publish(&rig, Utc.with_ymd_and_hms(2026, 5, 15, 1, 0, 0).unwrap(), 1).await;
    let (march, april) = (Period::month(2026, 3), Period::month(2026, 4));
    for (indicator, period, expected) in [
        ("experience-surveys-returned", april, (12, 8)),
        ("mental-health-well-managed", april, (8, 5)),
        ("physical-health-well-managed", april, (8, 3)),
        ("practising-safe-sex", april, (8, 4)),
        ("positive-experience", april, (8, 6)),
        ("barriers-to-access", april, (8, 2)),
        // A cohort of the March drug misusers, followed into April.
        ("drug-misuse-reduced", march, (6, 4)),
    ] {
        assert_eq!(
            truth(&rig, indicator, "ENG", period).await,
            expected,
            "{indicator}"
        );
    }
}

/// A survey that cannot be counted is refused whole, naming each field.
pub async fn a_malformed_self_report_is_refused_by_field(rig: Rig) {
    use referrals::SelfReportStatus::{Declined, Returned};
    let today = rig_today(&rig);
    let refused = |request| async {
        let status = rig
            .assessments("EMR-NOT")
            .record_self_report(request)
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        fields(&status)
    };
    let mut no_answers = survey(1, today, Returned, None);
    no_answers.status = Returned as i32;
    assert_eq!(refused(no_answers).await, vec!["answers"]);
    let answered = Some(referrals::SelfReportAnswers {
        experience: 42,
        ..Default::default()
    });
    assert_eq!(
        refused(survey(1, today, Declined, answered)).await,
        vec!["answers"]
    );
    let mut bad = survey(1, today + chrono::Duration::days(3), Returned, answered);
    bad.status = 0;
    bad.area = None;
    let mut named = refused(bad).await;
    named.sort();
    assert_eq!(
        named,
        vec![
            "answers.experience",
            "area.probation_delivery_unit",
            "reported_on",
            "status"
        ]
    );
    // Probation records them: a prison or a provider may not (it could
    // create or re-place a person).
    for org in ["LEI", "C82010"] {
        let status = rig
            .assessments(org)
            .record_self_report(survey(1, today, Declined, None))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::PermissionDenied, "{org}");
    }
}

fn rig_today(rig: &Rig) -> NaiveDate {
    use throughcare_platform::clock::Clock;
    rig.clock.now().date_naive()
}
