//! The caseload the tests release, and how they read cells back.

use crate::harness::{Rig, nhs, start};
use chrono::{Duration, NaiveDate};
use throughcare_indicators::domain::period::Period;
use throughcare_proto::indicators::v1 as pb;
use throughcare_proto::referrals::v1 as referrals;
use throughcare_proto::types::v1 as types;

/// People released in the standard caseload, and the one whose release is
/// then reversed.
pub const RELEASED: u32 = 23;
pub const REVERSED: u32 = 22;

pub use throughcare_testkit::date;

/// Person `n` of the caseload: registered with a GP when even, a smoker
/// below 5, a man from 20 (so the men are a small group).
pub fn release(n: u32, on: NaiveDate) -> referrals::NotifyReleaseRequest {
    let gp = if n.is_multiple_of(2) {
        types::RegistrationStatus::Registered
    } else {
        types::RegistrationStatus::NotRegistered
    };
    let smoking = if n < 5 {
        types::SmokingStatus::CurrentSmoker
    } else {
        types::SmokingStatus::NeverSmoked
    };
    referrals::NotifyReleaseRequest {
        idempotency_key: format!("release-{n}-{on}"),
        person: Some(types::PersonDetails {
            identifiers: Some(types::PersonIdentifiers {
                nhs_number: nhs(n),
                prison_number: format!("C{:04}DE", n % 10_000),
                crn: String::new(),
            }),
            date_of_birth: Some(date(NaiveDate::from_ymd_opt(1984, 7, 9).unwrap())),
            sex: if n < 20 {
                types::Sex::Female
            } else {
                types::Sex::Male
            } as i32,
            ethnic_group: types::EthnicGroup::White as i32,
        }),
        release_date: Some(date(on)),
        reason: referrals::ReleaseReason::OnLicence as i32,
        releasing_prison: "LEI".into(),
        destination: Some(types::Destination {
            probation_delivery_unit: "EMR-LEI".into(),
            local_authority: "E06000016".into(),
            integrated_care_board: "QK1".into(),
            ..Default::default()
        }),
        health: Some(types::HealthSummary {
            gp_registration: Some(types::GpRegistration {
                status: gp as i32,
                practice_code: String::new(),
            }),
            smoking: Some(types::Smoking {
                status: smoking as i32,
            }),
            ..Default::default()
        }),
        supervision_ends_on: None,
    }
}

/// The day after the tests' first morning: 3 March 2026.
pub fn march() -> NaiveDate {
    (start() + Duration::days(1)).date_naive()
}

/// Releases people `from..to` on `on`; the release ids.
pub async fn release_all(rig: &Rig, people: std::ops::Range<u32>, on: NaiveDate) -> Vec<String> {
    let mut ids = Vec::new();
    for n in people {
        let response = rig
            .transitions("LEI")
            .notify_release(release(n, on))
            .await
            .unwrap()
            .into_inner();
        ids.push(response.release.unwrap().release_id);
    }
    ids
}

/// Releases the standard caseload in March and reverses the last release.
pub async fn caseload(rig: &Rig) {
    let ids = release_all(rig, 0..RELEASED, march()).await;
    rig.transitions("LEI")
        .reverse_release(referrals::ReverseReleaseRequest {
            idempotency_key: "reverse".into(),
            release_id: ids[REVERSED as usize].clone(),
            reason: referrals::ReversalReason::NotifiedInError as i32,
        })
        .await
        .unwrap();
}

pub fn month(year: i32, number: i32) -> types::Period {
    types::Period {
        granularity: types::PeriodGranularity::Month as i32,
        year,
        number,
    }
}

pub fn quarter(year: i32, number: i32) -> types::Period {
    types::Period {
        granularity: types::PeriodGranularity::Quarter as i32,
        year,
        number,
    }
}

pub fn area(kind: types::AreaType, code: &str) -> types::Area {
    types::Area {
        r#type: kind as i32,
        code: code.into(),
    }
}

pub fn la() -> types::Area {
    area(types::AreaType::LocalAuthority, "E06000016")
}

/// Moves the clock past a period's close (its end plus the 14 grace days)
/// and waits for the publication with this sequence.
pub async fn publish(rig: &Rig, to: chrono::DateTime<chrono::Utc>, sequence: i64) {
    rig.clock.set(to);
    throughcare_platform::testing::eventually(crate::harness::WAIT, "a publication", || async {
        let response = rig
            .indicators("NHSE-HJ")
            .query_indicators(pb::QueryIndicatorsRequest {
                page_size: 1,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        (response.sequence >= sequence).then_some(())
    })
    .await;
}

/// Every cell a query returns, following its pages.
pub async fn query_all(
    rig: &Rig,
    org: &str,
    mut request: pb::QueryIndicatorsRequest,
) -> Vec<pb::Cell> {
    let mut cells = Vec::new();
    loop {
        let response = rig
            .indicators(org)
            .query_indicators(request.clone())
            .await
            .unwrap()
            .into_inner();
        cells.extend(response.cells);
        if response.next_page_token.is_empty() {
            return cells;
        }
        request.page_token = response.next_page_token;
    }
}

/// The one cell for an indicator and area (stratum all) in `cells`.
pub fn cell<'a>(
    cells: &'a [pb::Cell],
    indicator: &str,
    area: &types::Area,
    period: &types::Period,
) -> &'a pb::Cell {
    cells
        .iter()
        .find(|c| {
            c.indicator_id == indicator
                && c.area.as_ref() == Some(area)
                && c.period.as_ref() == Some(period)
                && c.stratum == Some(pb::Stratum::default())
        })
        .unwrap_or_else(|| panic!("no cell for {indicator} in {area:?} {period:?}"))
}

pub fn count(value: i64) -> Option<pb::PublishedCount> {
    Some(pb::PublishedCount {
        value,
        suppressed: false,
    })
}

pub fn suppressed() -> Option<pb::PublishedCount> {
    Some(pb::PublishedCount {
        value: 0,
        suppressed: true,
    })
}

pub fn fields(status: &tonic::Status) -> Vec<String> {
    throughcare_testkit::bad_request_fields(status).expect("bad request details")
}

/// Asserts `shown` is how `truth` (not small) may be published: rounded by
/// cell key to a multiple of 5 within 4 of it (and never below 10). Which
/// way it rounds depends on the service's secret, so tests do not fix it.
#[track_caller]
pub fn assert_near(shown: Option<pb::PublishedCount>, truth: i64) {
    let shown = shown.expect("a published count");
    assert!(
        !shown.suppressed
            && shown.value % 5 == 0
            && (shown.value - truth).abs() <= 4
            && shown.value >= 10,
        "{shown:?} does not publish {truth}"
    );
}

/// The true figures of an indicator's current cell (stratum all) for an
/// area and period, read from the store (what is published is rounded and
/// suppressed); -1 where there is no cell.
pub async fn truth(rig: &Rig, indicator: &str, code: &str, period: Period) -> (i64, i64) {
    let row = |column: &str| {
        format!(
            "SELECT coalesce(max({column}), -1) FROM indicator_cells WHERE indicator_id = '{indicator}' \
             AND area_code = '{code}' AND period = {} AND stratum = 0 AND superseded_by IS NULL",
            period.id()
        )
    };
    (
        throughcare_testkit::count(&rig.db, &row("true_denominator")).await,
        throughcare_testkit::count(&rig.db, &row("true_numerator")).await,
    )
}
