//! Observations from the referrals service turning into published,
//! disclosure-controlled indicators: queried, watched, exported, carried on
//! the snapshots topic, surviving restarts and rebuilds from the log.

use crate::fixtures::*;
use crate::harness::{Rig, WAIT};
use chrono::{NaiveDate, TimeZone, Utc};
use std::collections::BTreeSet;
use throughcare_indicators::app::CSV_HEADER;
use throughcare_indicators::domain::period::Period;
use throughcare_platform::bus::{Event, Subscriber, Subscription};
use throughcare_platform::testing::unique;
use throughcare_proto::events::v1 as events;
use throughcare_proto::indicators::v1 as pb;
use throughcare_proto::topics;
use throughcare_proto::types::v1 as types;

/// Just after March 2026 closes (its end plus the 14 grace days).
fn march_closed() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 4, 15, 1, 0, 0).unwrap()
}

fn april_closed() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 15, 1, 0, 0).unwrap()
}

fn every_stratum() -> Vec<i32> {
    [
        pb::StratumType::All,
        pb::StratumType::Sex,
        pb::StratumType::AgeBand,
        pb::StratumType::EthnicGroup,
        pb::StratumType::SexByEthnicGroup,
        pb::StratumType::SexByAgeBand,
    ]
    .map(|s| s as i32)
    .to_vec()
}

fn icb() -> types::Area {
    area(types::AreaType::IntegratedCareBoard, "QK1")
}

fn areas_of(cells: &[pb::Cell]) -> BTreeSet<(i32, String)> {
    cells
        .iter()
        .map(|c| {
            let a = c.area.as_ref().unwrap();
            (a.r#type, a.code.clone())
        })
        .collect()
}

fn key(a: &types::Area) -> (i32, String) {
    (a.r#type, a.code.clone())
}

pub async fn observations_become_suppressed_values_per_area_period_and_stratum(rig: Rig) {
    caseload(&rig).await;
    rig.settle().await;
    let before = rig
        .indicators("QK1")
        .query_indicators(pb::QueryIndicatorsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (before.sequence, before.cells.len()),
        (0, 0),
        "nothing is published before March closes"
    );

    publish(&rig, march_closed(), 1).await;
    let march = month(2026, 3);
    let cells = query_all(
        &rig,
        "QK1",
        pb::QueryIndicatorsRequest {
            periods: vec![march],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        areas_of(&cells),
        [key(&icb()), key(&la())].into(),
        "a commissioner sees its own areas only"
    );
    // 23 released, one reversed: 22 people.
    for area in [la(), icb()] {
        let mortality = cell(&cells, "mortality", &area, &march);
        assert_near(mortality.denominator, 22);
        assert_eq!(mortality.numerator, count(0));
        assert_eq!(mortality.value, Some(0.0));
        // The same 22 people over 22: the same cell key, the same figure.
        let recorded = cell(&cells, "gp-registration-recorded", &area, &march);
        assert_near(recorded.denominator, 22);
        assert_eq!(recorded.numerator, recorded.denominator);
        assert_eq!(recorded.value, Some(1.0));
        // 11 of 22 registered; the value is of the rounded figures.
        let registered = cell(&cells, "gp-registered", &area, &march);
        assert_near(registered.numerator, 11);
        assert_eq!(registered.denominator, mortality.denominator);
        let [num, den] = [registered.numerator, registered.denominator].map(|c| c.unwrap().value);
        assert_eq!(registered.value, Some(num as f64 / den as f64));
        // Five smokers: suppressed, and no value.
        let smoking = cell(&cells, "smoking", &area, &march);
        assert_eq!(smoking.numerator, suppressed());
        assert_eq!(smoking.denominator, mortality.denominator);
        assert_eq!(smoking.value, None);
        let unregistered = cell(&cells, "gp-unregistered-go-on-to-register", &area, &march);
        assert_near(unregistered.denominator, 11);
    }

    // By sex: the two men are suppressed, and so is the women's count, or the
    // men's could be had by subtracting it from the total.
    let by_sex = query_all(
        &rig,
        "QK1",
        pb::QueryIndicatorsRequest {
            indicator_ids: vec!["mortality".into()],
            areas: vec![la()],
            periods: vec![march],
            strata: vec![pb::StratumType::Sex as i32],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(by_sex.len(), 2, "women and men");
    for c in &by_sex {
        assert_eq!(c.denominator, suppressed(), "{:?}", c.stratum);
    }
    // Sex by ethnic group and by age band: everyone here is white and of one
    // age band, so each combined cell holds its sex's people and is
    // published exactly as that sex's cell is — the two men's suppressed.
    let combined = query_all(
        &rig,
        "QK1",
        pb::QueryIndicatorsRequest {
            indicator_ids: vec!["mortality".into()],
            areas: vec![la()],
            periods: vec![march],
            strata: vec![
                pb::StratumType::SexByEthnicGroup as i32,
                pb::StratumType::SexByAgeBand as i32,
            ],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        combined.len(),
        4,
        "two sexes, each by ethnic group and age band"
    );
    for c in &combined {
        let both = c.stratum.unwrap();
        let alone = by_sex
            .iter()
            .find(|s| s.stratum.as_ref().is_some_and(|s| s.sex == both.sex))
            .unwrap();
        let pair = (both.ethnic_group, both.age_band);
        assert!(
            pair == (types::EthnicGroup::White as i32, 0)
                || pair == (0, types::AgeBand::AgeBand35To49 as i32),
            "{both:?}"
        );
        assert_eq!(
            (&c.numerator, &c.denominator),
            (&alone.numerator, &alone.denominator)
        );
    }
    // The quarter closes with March.
    let q1 = quarter(2026, 1);
    let quarterly = query_all(
        &rig,
        "QK1",
        pb::QueryIndicatorsRequest {
            indicator_ids: vec!["gp-registered".into()],
            periods: vec![q1],
            ..Default::default()
        },
    )
    .await;
    assert_near(cell(&quarterly, "gp-registered", &la(), &q1).numerator, 11);

    // National users see every area; a region's health lead sees its
    // delivery units too.
    let national = query_all(
        &rig,
        "NHSE-HJ",
        pb::QueryIndicatorsRequest {
            indicator_ids: vec!["gp-registered".into()],
            periods: vec![march],
            ..Default::default()
        },
    )
    .await;
    let expected: BTreeSet<(i32, String)> = [
        key(&area(types::AreaType::National, "ENG")),
        key(&area(types::AreaType::ProbationRegion, "EMR")),
        key(&area(types::AreaType::ProbationDeliveryUnit, "EMR-LEI")),
        key(&icb()),
        key(&la()),
        key(&area(types::AreaType::Prison, "LEI")),
    ]
    .into();
    assert_eq!(areas_of(&national), expected);
    let region = query_all(&rig, "EMR", pb::QueryIndicatorsRequest::default()).await;
    assert_eq!(
        areas_of(&region),
        [
            key(&area(types::AreaType::ProbationRegion, "EMR")),
            key(&area(types::AreaType::ProbationDeliveryUnit, "EMR-LEI")),
        ]
        .into()
    );
}

/// Reads one snapshot's parts from a watch stream.
async fn parts(
    stream: &mut tonic::Streaming<pb::WatchSnapshotsResponse>,
) -> Vec<pb::WatchSnapshotsResponse> {
    let mut parts = Vec::new();
    loop {
        let part = tokio::time::timeout(WAIT, stream.message())
            .await
            .expect("a snapshot in time")
            .unwrap()
            .expect("the stream stays open");
        let last = part.last;
        parts.push(part);
        if last {
            return parts;
        }
    }
}

pub async fn watchers_and_the_topic_receive_each_snapshot_of_their_areas(rig: Rig) {
    let mut qk1 = rig
        .indicators("QK1")
        .watch_snapshots(pb::WatchSnapshotsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut national_la = rig
        .indicators("NHSE-HJ")
        .watch_snapshots(pb::WatchSnapshotsRequest {
            areas: vec![la()],
            after_sequence: 0,
        })
        .await
        .unwrap()
        .into_inner();
    caseload(&rig).await;
    rig.settle().await;
    rig.clock.set(march_closed());

    let first = parts(&mut qk1).await;
    assert_eq!(
        first
            .iter()
            .map(|p| key(p.area.as_ref().unwrap()))
            .collect::<BTreeSet<_>>(),
        [key(&icb()), key(&la())].into(),
        "one part per area of the commissioner's"
    );
    for part in &first {
        let snapshot = part.snapshot.as_ref().unwrap();
        assert_eq!(snapshot.sequence, 1);
        assert_eq!(snapshot.periods, vec![month(2026, 3), quarter(2026, 1)]);
        assert!(!snapshot.cells.is_empty());
        assert!(snapshot.cells.iter().all(|c| c.area == part.area));
    }
    let la_only = parts(&mut national_la).await;
    assert_eq!(la_only.len(), 1);
    assert_eq!(la_only[0].area, Some(la()));

    // The snapshot also went out on the topic, one record per area.
    let topic = rig.bus.topic(topics::INDICATOR_SNAPSHOTS);
    let mut subscription = rig
        .bus
        .subscribe(&unique("snapshot-reader"), std::slice::from_ref(&topic))
        .await
        .unwrap();
    let mut published = Vec::new();
    loop {
        let received = tokio::time::timeout(WAIT, subscription.next())
            .await
            .expect("a snapshot record")
            .unwrap();
        let record: events::SnapshotPublished = Event::from_record(&received.record)
            .unwrap()
            .decode()
            .unwrap();
        let parts = record.parts;
        published.push(record);
        if published.len() as i32 == parts {
            break;
        }
    }
    let areas: BTreeSet<(i32, String)> = published
        .iter()
        .map(|r| key(r.area.as_ref().unwrap()))
        .collect();
    assert_eq!(
        areas.len(),
        6,
        "national, region, delivery unit, ICB, LA, prison"
    );
    assert!(
        published
            .iter()
            .all(|r| r.snapshot.as_ref().unwrap().sequence == 1)
    );

    // Nobody new came in April: its snapshot carries only the caseload (the
    // people released in March, still under supervision), and a watcher
    // resuming after the first snapshot gets only the second.
    let mut resumed = rig
        .indicators("QK1")
        .watch_snapshots(pb::WatchSnapshotsRequest {
            areas: Vec::new(),
            after_sequence: 1,
        })
        .await
        .unwrap()
        .into_inner();
    rig.clock.set(april_closed());
    let caseload = ["mortality", "suicide", "attempting-suicide", "self-harm"];
    for stream in [&mut qk1, &mut resumed] {
        let second = parts(stream).await;
        assert_eq!(second.len(), 2, "one part per area of the commissioner's");
        for part in &second {
            let snapshot = part.snapshot.as_ref().unwrap();
            assert_eq!(snapshot.sequence, 2);
            assert_eq!(snapshot.periods, vec![month(2026, 4)]);
            assert!(
                !snapshot.cells.is_empty()
                    && snapshot
                        .cells
                        .iter()
                        .all(|c| caseload.contains(&c.indicator_id.as_str())),
                "only the caseload's indicators"
            );
        }
    }
}

pub async fn the_csv_export_has_a_row_per_cell_with_its_suppression(rig: Rig) {
    caseload(&rig).await;
    rig.settle().await;
    publish(&rig, march_closed(), 1).await;
    let mut stream = rig
        .indicators("QK1")
        .export_indicators_csv(pb::ExportIndicatorsCsvRequest {
            indicator_ids: vec!["gp-registered".into(), "smoking".into()],
            areas: vec![la()],
            periods: vec![month(2026, 3)],
            strata: vec![pb::StratumType::All as i32, pb::StratumType::Sex as i32],
        })
        .await
        .unwrap()
        .into_inner();
    let mut csv = Vec::new();
    while let Some(chunk) = stream.message().await.unwrap() {
        csv.extend(chunk.chunk);
    }
    let csv = String::from_utf8(csv).unwrap();
    let lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(format!("{}\r\n", lines[0]), CSV_HEADER);
    let rows = &lines[1..];
    assert_eq!(rows.len(), 6, "two indicators, all and both sexes:\n{csv}");
    let all = |indicator: &str| -> Vec<&str> {
        let row = rows
            .iter()
            .find(|r| r.starts_with(indicator) && r.contains(",all,all,"))
            .unwrap_or_else(|| panic!("{indicator}:\n{csv}"));
        row.split(',').collect()
    };
    // 11 of 22 registered, rounded by cell key, the value from the figures.
    let gp = all("gp-registered,");
    assert_eq!(
        gp[..7],
        [
            "gp-registered",
            "Registered with a GP",
            "local_authority",
            "E06000016",
            "2026-03",
            "all",
            "all"
        ]
    );
    let [num, den]: [i64; 2] = [gp[7], gp[8]].map(|f| f.parse().unwrap());
    assert_near(count(num), 11);
    assert_near(count(den), 22);
    assert_eq!(
        gp[9..],
        [
            format!("{:.4}", num as f64 / den as f64).as_str(),
            "false",
            "0"
        ]
    );
    let smoking = all("smoking,");
    assert_eq!(smoking[7..], ["", gp[8], "", "true", "0"]);
    let men: Vec<&&str> = rows.iter().filter(|r| r.contains(",sex,male,")).collect();
    assert_eq!(men.len(), 2);
    for row in men {
        let fields: Vec<&str> = row.split(',').collect();
        assert_eq!(fields[8], "", "the men's denominator is suppressed: {row}");
        assert_eq!(fields[10], "true");
    }
}

/// Runs `throughcare-indicators rebuild` against the rig's database and bus.
fn rebuild_cli(rig: &Rig, replace: bool) -> std::process::Output {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("indicators.toml");
    std::fs::write(&path, toml::to_string(rig.config()).unwrap()).unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_throughcare-indicators"));
    command.arg("--config").arg(&path).arg("rebuild");
    if replace {
        command.arg("--replace");
    }
    command.output().unwrap()
}

pub async fn a_restart_and_a_rebuild_from_offset_zero_give_identical_results(mut rig: Rig) {
    release_all(&rig, 0..12, march()).await;
    let half = rig.settle().await;
    rig.restart_indicators().await;
    // The restarted service carries on from what it stored...
    let later = release_all(&rig, 12..RELEASED, march()).await;
    rig.transitions("LEI")
        .reverse_release(throughcare_proto::referrals::v1::ReverseReleaseRequest {
            idempotency_key: "reverse".into(),
            release_id: later.last().unwrap().clone(),
            reason: throughcare_proto::referrals::v1::ReversalReason::NotifiedInError as i32,
        })
        .await
        .unwrap();
    let stored = rig.settle().await;
    assert!(stored.observations() > half.observations());
    assert_eq!(stored.people(), 22);
    // ...and what it stored is exactly what replaying the log from offset
    // zero gives, cell by cell.
    let rebuilt = rig.rebuilt().await;
    assert_eq!(stored.all_cells(), rebuilt.all_cells());
    let cli = rebuild_cli(&rig, false);
    let report = String::from_utf8_lossy(&cli.stdout);
    assert!(
        cli.status.success() && report.contains("identical"),
        "{report}"
    );

    // Lose the stored state; rebuild it from the log with the service
    // stopped, then start again and publish.
    rig.stop_indicators().await;
    throughcare_platform::on_db!(&rig.db, p =>
        sqlx::query("DELETE FROM indicator_people").execute(p).await.unwrap().rows_affected());
    let cli = rebuild_cli(&rig, false);
    assert_eq!(
        cli.status.code(),
        Some(1),
        "the empty state differs from the log"
    );
    let cli = rebuild_cli(&rig, true);
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stdout)
    );
    assert_eq!(rig.stored().await.all_cells(), rebuilt.all_cells());
    rig.start_indicators().await;
    publish(&rig, march_closed(), 1).await;
    let request = pb::QueryIndicatorsRequest {
        strata: every_stratum(),
        ..Default::default()
    };
    let published = query_all(&rig, "NHSE-HJ", request.clone()).await;
    let march = month(2026, 3);
    let registered = cell(&published, "gp-registered", &la(), &march);
    assert!(!registered.numerator.unwrap().suppressed);
    assert!(!registered.denominator.unwrap().suppressed);
    rig.restart_indicators().await;
    assert_eq!(query_all(&rig, "NHSE-HJ", request).await, published);
}

pub async fn late_records_publish_a_numbered_revision_of_their_period(mut rig: Rig) {
    // Late records arrive in a burst: March is revised once the burst has
    // settled, not part-way through it.
    rig.config_mut().publication.settle_ms = 2_000;
    rig.restart_indicators().await;
    caseload(&rig).await;
    rig.settle().await;
    publish(&rig, march_closed(), 1).await;
    let request = |period| pb::QueryIndicatorsRequest {
        periods: vec![period],
        strata: every_stratum(),
        ..Default::default()
    };
    let in_march = month(2026, 3);
    let national = area(types::AreaType::National, "ENG");
    let first = query_all(&rig, "NHSE-HJ", request(in_march)).await;
    assert!(first.iter().all(|c| c.revision == 0));
    let before = cell(&first, "mortality", &national, &in_march).clone();

    // Twenty more March releases, reported after March was published, and
    // one in April.
    release_all(&rig, 30..50, march()).await;
    release_all(&rig, 60..61, NaiveDate::from_ymd_opt(2026, 4, 20).unwrap()).await;
    rig.settle().await;
    let topic = rig.bus.topic(topics::INDICATOR_SNAPSHOTS);
    let mut subscription = rig
        .bus
        .subscribe(&unique("snapshot-reader"), std::slice::from_ref(&topic))
        .await
        .unwrap();
    let mut watcher = rig
        .indicators("NHSE-HJ")
        .watch_snapshots(pb::WatchSnapshotsRequest {
            areas: vec![national.clone()],
            after_sequence: 1,
        })
        .await
        .unwrap()
        .into_inner();
    // April's first publication and March's revision may come in one
    // snapshot or two, as each settles.
    publish(&rig, april_closed(), 2).await;
    // Wait for the revision that counts all 42 (what it counts is never
    // shown, so it is read from the store).
    let march_id = Period::month_of(march()).id();
    let counted = format!(
        "SELECT count(*) FROM indicator_cells WHERE indicator_id = 'mortality' \
         AND area_code = 'ENG' AND period = {march_id} AND stratum = 0 \
         AND superseded_by IS NULL AND revision > 0 AND true_denominator = 42"
    );
    throughcare_platform::testing::eventually(WAIT, "March revised", || async {
        (throughcare_testkit::count(&rig.db, &counted).await == 1).then_some(())
    })
    .await;
    let revised = query_all(&rig, "NHSE-HJ", request(in_march)).await;

    // The query shows March's latest revision, not the first release.
    let revisions: BTreeSet<u32> = revised.iter().map(|c| c.revision).collect();
    assert_eq!(revisions.len(), 1, "March is revised whole: {revisions:?}");
    let now = cell(&revised, "mortality", &national, &in_march);
    assert!(now.revision >= 1);
    // Rounded by cell key: a multiple of 5 within 4 of the truth.
    let near = |shown: &Option<pb::PublishedCount>, truth: i64| {
        let shown = shown.as_ref().unwrap();
        !shown.suppressed && shown.value % 5 == 0 && (shown.value - truth).abs() <= 4
    };
    assert!(near(&before.denominator, 22), "22 released: {before:?}");
    assert!(near(&now.denominator, 42), "42 released: {now:?}");
    let q1 = query_all(&rig, "NHSE-HJ", request(quarter(2026, 1))).await;
    assert!(
        !q1.is_empty()
            && q1
                .iter()
                .all(|c| c.revision >= 1 && c.revision == q1[0].revision),
        "and its quarter, whole"
    );
    let april = throughcare_platform::testing::eventually(WAIT, "April published", || async {
        let cells = query_all(&rig, "NHSE-HJ", request(month(2026, 4))).await;
        (!cells.is_empty()).then_some(cells)
    })
    .await;
    assert!(april.iter().all(|c| c.revision == 0));
    let one = cell(
        &april,
        "mortality-after-release",
        &national,
        &month(2026, 4),
    );
    assert_eq!(
        one.denominator,
        suppressed(),
        "one person released in April"
    );
    // The March releases are still under supervision in April.
    let caseload = cell(&april, "mortality", &national, &month(2026, 4));
    assert_near(caseload.denominator, 43);

    // Watchers and the topic get each revision, saying what it revises.
    let snapshot = loop {
        let watched = parts(&mut watcher).await;
        let snapshot = watched[0].snapshot.clone().unwrap();
        let revises = snapshot
            .cells
            .iter()
            .any(|c| c.period.as_ref() == Some(&in_march) && c.revision == now.revision);
        if revises {
            break snapshot;
        }
    };
    // (Records reach back: a month before March may be revised with it.)
    assert!(
        snapshot.revised_periods.contains(&in_march)
            && snapshot.revised_periods.contains(&quarter(2026, 1)),
        "revises March and its quarter: {:?}",
        snapshot.revised_periods
    );
    assert!(snapshot.periods.contains(&in_march));
    let watched_march = cell(&snapshot.cells, "mortality", &national, &in_march);
    assert_eq!(watched_march, now);
    let mut on_topic = None;
    while on_topic.is_none() {
        let received = tokio::time::timeout(WAIT, subscription.next())
            .await
            .expect("a snapshot record")
            .unwrap();
        let record: events::SnapshotPublished = Event::from_record(&received.record)
            .unwrap()
            .decode()
            .unwrap();
        on_topic = record
            .snapshot
            .filter(|s| s.sequence == snapshot.sequence && record.area.as_ref() == Some(&national));
    }
    let on_topic = on_topic.unwrap();
    assert_eq!(on_topic.revised_periods, snapshot.revised_periods);
    assert_eq!(
        cell(&on_topic.cells, "mortality", &national, &in_march),
        watched_march
    );

    // The CSV says which revision each row is.
    let mut stream = rig
        .indicators("NHSE-HJ")
        .export_indicators_csv(pb::ExportIndicatorsCsvRequest {
            indicator_ids: vec!["mortality".into()],
            areas: vec![national.clone()],
            periods: vec![in_march],
            strata: vec![pb::StratumType::All as i32],
        })
        .await
        .unwrap()
        .into_inner();
    let mut csv = Vec::new();
    while let Some(chunk) = stream.message().await.unwrap() {
        csv.extend(chunk.chunk);
    }
    let csv = String::from_utf8(csv).unwrap();
    let rows: Vec<&str> = csv
        .split("\r\n")
        .skip(1)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(rows.len(), 1, "{csv}");
    let shown = now.denominator.as_ref().unwrap().value;
    assert!(
        rows[0].ends_with(&format!(",0,{shown},0.0000,false,{}", now.revision)),
        "{csv}"
    );
}

pub async fn a_month_still_receiving_records_is_published_only_once_it_settles(mut rig: Rig) {
    // A backlog for March arriving after March closed: while records keep
    // changing March, it is not published part-way.
    rig.config_mut().publication.settle_ms = 3_600_000;
    rig.restart_indicators().await;
    caseload(&rig).await;
    rig.settle().await;
    rig.clock.set(march_closed());
    rig.clock
        .wait_for_periodic_runs(10, "ten publisher checks after March closed")
        .await;
    let response = rig
        .indicators("NHSE-HJ")
        .query_indicators(pb::QueryIndicatorsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.sequence, 0, "March is still changing: held");

    // Once quiet (here: settle time zero), March is published whole.
    rig.config_mut().publication.settle_ms = 0;
    rig.restart_indicators().await;
    publish(&rig, march_closed(), 1).await;
    let cells = query_all(
        &rig,
        "NHSE-HJ",
        pb::QueryIndicatorsRequest {
            indicator_ids: vec!["mortality".into()],
            areas: vec![area(types::AreaType::National, "ENG")],
            periods: vec![month(2026, 3)],
            ..Default::default()
        },
    )
    .await;
    // All 22 March people, rounded.
    assert_near(cells[0].denominator, 22);
}

/// Released twice, first known only by prison number, then only by NHS
/// number, then with both: the referrals service links the keys, and the
/// indicators count one person — live, after a restart, and rebuilt.
pub async fn people_found_to_be_one_are_counted_once(mut rig: Rig) {
    let release_with = |key: &str, on: NaiveDate, keep: fn(&mut types::PersonIdentifiers)| {
        let mut request = release(90, on);
        request.idempotency_key = key.into();
        keep(
            request
                .person
                .as_mut()
                .unwrap()
                .identifiers
                .as_mut()
                .unwrap(),
        );
        request
    };
    let day = |d| NaiveDate::from_ymd_opt(2026, 3, d).unwrap();
    let prison = rig.transitions("LEI");
    for request in [
        release_with("by-prison", day(3), |ids| ids.nhs_number.clear()),
        release_with("by-nhs", day(10), |ids| ids.prison_number.clear()),
    ] {
        prison.clone().notify_release(request).await.unwrap();
    }
    assert_eq!(rig.settle().await.people(), 2, "two keys, two people");
    prison
        .clone()
        .notify_release(release_with("both", day(17), |_| {}))
        .await
        .unwrap();
    let stored = rig.settle().await;
    assert_eq!(stored.people(), 1, "one person, counted once");
    assert_eq!(stored.all_cells(), rig.rebuilt().await.all_cells());
    let links =
        throughcare_testkit::count(&rig.db, "SELECT count(*) FROM indicator_person_links").await;
    assert!(links >= 1, "the link is stored");
    rig.restart_indicators().await;
    let restarted = rig.settle().await;
    assert_eq!(restarted.people(), 1);
    assert_eq!(restarted.all_cells(), stored.all_cells());
}

/// Released on 30 March without a GP; the GP registration referral is made
/// and accepted on 2 April. The person counts in March's cohort — in the
/// numerator, although the acceptance came in another month.
pub async fn follow_through_after_the_month_end_counts_in_the_month_of_release(rig: Rig) {
    use throughcare_proto::referrals::v1 as referrals;
    use throughcare_proto::referrals::v1::update_referral_request::Action;
    let end_of_march = NaiveDate::from_ymd_opt(2026, 3, 30).unwrap();
    // Odd people are not registered with a GP: ten of them.
    let people: Vec<u32> = (101..121).filter(|n| n % 2 == 1).collect();
    let mut released = Vec::new();
    for &n in &people {
        let response = rig
            .transitions("LEI")
            .notify_release(release(n, end_of_march))
            .await
            .unwrap()
            .into_inner();
        released.push((n, response.release.unwrap().release_id));
    }
    rig.clock
        .set(Utc.with_ymd_and_hms(2026, 4, 2, 10, 0, 0).unwrap());
    for (n, release_id) in &released {
        let referral = rig
            .referrals("LEI")
            .request_referral(referrals::RequestReferralRequest {
                idempotency_key: format!("gp-{n}"),
                person: release(*n, end_of_march).person,
                service: types::ServiceType::GpRegistration as i32,
                provider: "C82010".into(),
                urgency: referrals::Urgency::Routine as i32,
                release_id: release_id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .referral
            .unwrap();
        for (step, action) in [
            ("ack", Action::Acknowledge(referrals::AcknowledgeAction {})),
            ("accept", Action::Accept(referrals::AcceptAction {})),
        ] {
            rig.referrals("C82010")
                .update_referral(referrals::UpdateReferralRequest {
                    idempotency_key: format!("{step}-{n}"),
                    referral_id: referral.referral_id.clone(),
                    action: Some(action),
                })
                .await
                .unwrap();
        }
    }
    rig.settle().await;
    publish(&rig, march_closed(), 1).await;
    let march = month(2026, 3);
    let cells = query_all(
        &rig,
        "NHSE-HJ",
        pb::QueryIndicatorsRequest {
            indicator_ids: vec!["gp-unregistered-go-on-to-register".into()],
            periods: vec![march, month(2026, 4)],
            strata: vec![pb::StratumType::All as i32],
            ..Default::default()
        },
    )
    .await;
    let national = area(types::AreaType::National, "ENG");
    let cohort = cell(
        &cells,
        "gp-unregistered-go-on-to-register",
        &national,
        &march,
    );
    // All ten went on to register, within the 7-day window, across the
    // month end (the same people, so the same figure).
    assert_near(cohort.denominator, 10);
    assert_eq!(
        (cohort.numerator, cohort.value),
        (cohort.denominator, Some(1.0))
    );
    assert!(
        cells.iter().all(|c| c.period.as_ref() == Some(&march)),
        "April has no cohort of its own: the follow-up is not a denominator"
    );
}
