//! Every indicator in the catalogue, proven on one small synthetic cohort
//! driven through the real path (gRPC → referrals → the bus → indicators):
//! the exact national March 2026 figures before disclosure control, as
//! first published and as revised by a late record. Who the people are and
//! what happens to them: [`cohort`].

mod calls;
mod cohort;

use crate::fixtures::{area, month, query_all, truth};
use crate::harness::{Rig, WAIT};
use chrono::{TimeZone, Utc};
use std::collections::BTreeSet;
use throughcare_indicators::catalogue::Catalogue;
use throughcare_indicators::domain::area::Area;
use throughcare_indicators::domain::period::Period;
use throughcare_platform::testing::eventually;
use throughcare_proto::indicators::v1 as pb;
use throughcare_proto::types::v1 as types;

/// Indicators this rig cannot drive, and why.
const EXCLUDED: &[(&str, &str)] = &[(
    "health-information-shared-at-release",
    "its numerator comes from the sharing service, which this rig does not run",
)];

/// Each indicator's (denominator, numerator) for England in March 2026, as
/// first published. The numbers are the cohort's people (see [`cohort`]).
/// In contact with probation in March: 1-5 and 9 (released on licence), 6
/// (an order) and 10 (assessed) — not 8 (unsupervised) nor 7 and 11
/// (released in February).
#[rustfmt::skip]
const MARCH: &[(&str, (i64, i64))] = &[
    // Recorded: 1, 2, 3, 5, 9 (and 8, not in contact).
    ("gp-registration-recorded", (8, 5)),
    // Recorded: 1, 2, 3, 5, 8, 9. Registered: 3 (assessed on day 2), 5, 9
    // (not the 4 who are not).
    ("gp-registered", (6, 3)),
    // Not registered: 1, 2, 3, 8. 2 accepted on 6 April (day 7, across the
    // month end), 3 assessed registered on day 2; 1 accepted on day 8.
    ("gp-unregistered-go-on-to-register", (4, 2)),
    // 1, 2, 4, 10.
    ("dentist-registration-recorded", (8, 4)),
    // Recorded 1, 2, 4, 10; registered 2 (4 only in April).
    ("dentist-registered", (4, 1)),
    // Not registered 1, 4, 10: 1 accepted day 21, 4 assessed registered
    // day 4 (1 April); 10 accepted day 22.
    ("dentist-unregistered-go-on-to-register", (3, 2)),
    // 1, 2, 3, 6, 10.
    ("alcohol-screened", (8, 5)),
    // Hazardous 1, 3, 6, 8, 10: offered 1 (day 5), 6 and 8 (day 21), 3 in
    // treatment (offered only on day 22); 10 offered day 22.
    ("hazardous-drinkers-offered-treatment", (5, 4)),
    // Accepted 1 (day 5), 8 (day 21), 3 in treatment; 6 accepted day 22.
    ("hazardous-drinkers-accepting-treatment", (5, 3)),
    // 1, 2, 3, 4, 6, 10.
    ("drugs-screened", (8, 6)),
    // Misusing 1, 2, 3, 6, 8, 10: as the hazardous drinkers, and 2 offered
    // on 3 April (day 4).
    ("drug-misusers-offered-treatment", (6, 5)),
    // 1, 2, 3, 8.
    ("drug-misusers-accepting-treatment", (6, 4)),
    // 1, 2, 3, 6, 9, 10.
    ("mental-illness-screened", (8, 6)),
    // Ill 2, 3, 6, 9, 10: 2 an assessment (3 April, day 4), 3 in treatment,
    // 9 treatment day 4, 10 treatment day 21; 6 treatment day 22.
    ("mental-illness-offered-treatment", (5, 4)),
    // Accepted 2 (the assessment), 9 (treatment); 3 in treatment.
    ("mental-illness-accepting-treatment", (5, 3)),
    // All in contact but 9.
    ("smoking-status-recorded", (8, 7)),
    // Smokers 1, 3, 6, 8, 10: offered 3 (day 2), 6 (day 21); 1 on day 22;
    // 10 was offered other services only.
    ("smokers-offered-cessation", (5, 2)),
    // 3.
    ("smokers-accepting-cessation", (5, 1)),
    // Recorded 1-6, 8, 10; smoking 1, 3, 6, 8, 10.
    ("smoking", (8, 5)),
    // Screened 1, 2, 3, 6, 8, 10; all but 2 hazardous.
    ("drinking-hazardously", (6, 5)),
    // Screened 1, 2, 3, 4, 6, 8, 10; all but 4 misusing.
    ("misusing-drugs", (7, 6)),
    // 1, 3, 5, 6, 10.
    ("vaccination-need-recorded", (8, 5)),
    // Needing 1, 3, 6, 10 (5 needs none): 1 at release, 3 day 2, 10 day 0.
    ("vaccination-offered", (4, 3)),
    // 1 at release, 3 day 21; 10 day 22.
    ("vaccination-accepted", (4, 2)),
    // 1.
    ("vaccinated", (4, 1)),
    // 1, 3, 5, 9, 10.
    ("communicable-disease-screened", (8, 5)),
    // Found 3, 5, 9, 10: 3 in treatment, 9 offered day 4, 10 day 21.
    ("communicable-disease-offered-treatment", (4, 3)),
    // 3 in treatment, 9 accepted.
    ("communicable-disease-accepting-treatment", (4, 2)),
    // Screened 1, 3, 5, 9, 10; found all but 1.
    ("with-communicable-disease", (5, 4)),
    // 1, 3.
    ("physical-health-measured", (8, 2)),
    // 1.
    ("safe-sex-education-offered", (8, 1)),
    // Released with a need 1, 2, 3, 8: 1 attended day 10, 2 day 11 (10
    // April), 8 day 21; 3 day 22.
    ("continuity-of-care-after-release", (4, 3)),
    // First appointments in March: 5 (9 days), 1 (10), 3 (14); median 10.
    // 1's second (20) is not their first; 2's, 3's second and 8's came in
    // April.
    ("timely-access", (3, 3)),
    // Supervised: those in contact and 7 (released in February); not 8, nor
    // 11 (ended 25 February). Died in March: 5 (4 died on 11 April).
    ("mortality", (9, 1)),
    ("suicide", (9, 0)),
    // 1 on 1 March; 3's was in February.
    ("attempting-suicide", (9, 1)),
    // 3 on 2 March, 9 on 18 March.
    ("self-harm", (9, 2)),
    // Released 1-5, 8, 9: 4 died on day 14 (11 April); 5 on day 15.
    ("mortality-after-release", (7, 1)),
    ("suicide-after-release", (7, 0)),
    // Misusing 1, 2, 3, 6, 8, 10: reduced, 1 on 20 March, 6 on 10 April (3
    // reported it unchanged).
    ("drug-misuse-reduced", (6, 2)),
    // Returned by 1, 3, 5, 10: 1, 3, 5.
    ("mental-health-well-managed", (4, 3)),
    // 3.
    ("physical-health-well-managed", (4, 1)),
    // 1, 5 (3 left it unanswered).
    ("practising-safe-sex", (4, 2)),
    // Offered 1, 2, 3, 5, 6, 10; returned 1, 3, 5, 10.
    ("experience-surveys-returned", (6, 4)),
    // 1, 5.
    ("positive-experience", (4, 2)),
    // 3, 5, 10.
    ("barriers-to-access", (4, 3)),
];

/// The median days to a first appointment in March: of 9, 10 and 14.
const MEDIAN_DAYS: f64 = 10.0;

/// What person 9's suicide on 26 March (day 6 after release), notified
/// after March was published, revises; every other figure stays.
const REVISED: &[(&str, (i64, i64))] = &[
    ("mortality", (9, 2)),
    ("suicide", (9, 1)),
    ("mortality-after-release", (7, 2)),
    ("suicide-after-release", (7, 1)),
];

pub async fn every_indicator_counts_exactly_its_people_in_a_synthetic_cohort(rig: Rig) {
    the_table_covers_the_catalogue();
    let mut calls = calls::Calls::new(&rig);
    cohort::drive(&mut calls).await;
    rig.settle().await;
    rig.clock
        .set(Utc.with_ymd_and_hms(2026, 4, 15, 1, 0, 0).unwrap());
    eventually(WAIT, "March published", || async {
        (truth(&rig, "mortality", "ENG", march()).await.0 >= 0).then_some(())
    })
    .await;
    assert_eq!(
        revisions(&rig).await,
        BTreeSet::from([0]),
        "first published"
    );
    assert_figures(&rig, &expected(&[]), "as first published").await;
    assert_eq!(median(&rig).await, Some(MEDIAN_DAYS), "timely-access");

    cohort::late_death(&mut calls).await;
    eventually(WAIT, "March revised", || async {
        (revisions(&rig).await == BTreeSet::from([1])).then_some(())
    })
    .await;
    assert_figures(&rig, &expected(REVISED), "as revised").await;
    assert_eq!(median(&rig).await, Some(MEDIAN_DAYS), "timely-access");
}

/// One row per catalogue indicator, or a named exclusion; never both.
fn the_table_covers_the_catalogue() {
    let catalogue: BTreeSet<&str> = Catalogue::standard()
        .indicators
        .iter()
        .map(|i| i.id.as_str())
        .collect();
    let rows = MARCH
        .iter()
        .map(|r| r.0)
        .chain(EXCLUDED.iter().map(|e| e.0));
    let covered: BTreeSet<&str> = rows.clone().collect();
    assert_eq!(rows.count(), covered.len(), "an indicator has two rows");
    let missing: Vec<&str> = catalogue.difference(&covered).copied().collect();
    assert!(missing.is_empty(), "no row nor exclusion for {missing:?}");
    let unknown: Vec<&str> = covered.difference(&catalogue).copied().collect();
    assert!(unknown.is_empty(), "rows for no indicator: {unknown:?}");
    for (id, _) in REVISED {
        assert!(
            MARCH.iter().any(|r| r.0 == *id),
            "{id} revised, not in the table"
        );
    }
}

fn march() -> Period {
    Period::month(2026, 3)
}

/// The table, with `revised` rows in place of theirs.
fn expected(revised: &[(&'static str, (i64, i64))]) -> Vec<(&'static str, (i64, i64))> {
    MARCH
        .iter()
        .map(|&(id, figures)| {
            let revision = revised.iter().find(|r| r.0 == id);
            (id, revision.map_or(figures, |r| r.1))
        })
        .collect()
}

/// Asserts the true national March figures of every row, naming each that
/// differs.
async fn assert_figures(rig: &Rig, rows: &[(&str, (i64, i64))], when: &str) {
    let mut wrong = Vec::new();
    for &(indicator, figures) in rows {
        let found = truth(rig, indicator, "ENG", march()).await;
        if found != figures {
            wrong.push(format!(
                "{indicator}: expected {figures:?}, found {found:?}"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "(denominator, numerator) {when}:\n{}",
        wrong.join("\n")
    );
}

/// The revision numbers of the published national March cells.
async fn revisions(rig: &Rig) -> BTreeSet<u32> {
    let request = pb::QueryIndicatorsRequest {
        areas: vec![area(types::AreaType::National, "ENG")],
        periods: vec![month(2026, 3)],
        ..Default::default()
    };
    let cells = query_all(rig, "NHSE-HJ", request).await;
    cells.iter().map(|c| c.revision).collect()
}

/// The true national median of timely-access in March, from the stored
/// state (the published value is withheld for so few people).
async fn median(rig: &Rig) -> Option<f64> {
    let index = Catalogue::standard().index("timely-access").unwrap();
    let cells = rig.stored().await.cells(&[march()]);
    let (_, figures) = cells.into_iter().find(|(name, _)| {
        usize::from(name.indicator) == index && name.area == Area::national() && name.stratum == 0
    })?;
    figures.median
}
