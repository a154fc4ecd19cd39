//! Bad input gets a clear error naming the field, and nothing is written;
//! areas and organisations are kept to those the caller may see.

use crate::fixtures::*;
use crate::harness::Rig;
use chrono::{TimeZone, Utc};
use throughcare_proto::indicators::v1 as pb;
use throughcare_proto::types::v1 as types;
use tonic::Code;

pub async fn unknown_codes_and_malformed_periods_are_refused_by_field(rig: Rig) {
    let client = || rig.indicators("NHSE-HJ");
    let refused = |request: pb::QueryIndicatorsRequest| async move {
        fields(&client().query_indicators(request).await.unwrap_err())
    };
    assert_eq!(
        refused(pb::QueryIndicatorsRequest {
            indicator_ids: vec!["not-an-indicator".into(), "mortality-review-process".into()],
            ..Default::default()
        })
        .await,
        ["indicator_ids[0]", "indicator_ids[1]"]
    );
    let unspecified = types::Period {
        granularity: 0,
        year: 2026,
        number: 1,
    };
    assert_eq!(
        refused(pb::QueryIndicatorsRequest {
            periods: vec![
                month(2026, 13),
                quarter(2026, 5),
                unspecified,
                month(12026, 1)
            ],
            ..Default::default()
        })
        .await,
        ["periods[0]", "periods[1]", "periods[2]", "periods[3]"]
    );
    assert_eq!(
        refused(pb::QueryIndicatorsRequest {
            areas: vec![
                area(types::AreaType::LocalAuthority, "E0600"),
                area(types::AreaType::Unspecified, "E06000016"),
                // Well formed, but nowhere Throughcare knows.
                area(types::AreaType::LocalAuthority, "E06000999"),
                area(types::AreaType::National, "WLS"),
            ],
            ..Default::default()
        })
        .await,
        [
            "areas[0].code",
            "areas[1].type",
            "areas[2].code",
            "areas[3].code"
        ]
    );
    assert_eq!(
        refused(pb::QueryIndicatorsRequest {
            strata: vec![0, 99],
            page_size: 20_000,
            page_token: "not-a-token".into(),
            ..Default::default()
        })
        .await,
        ["page_size", "page_token"],
        "paging is checked first"
    );
    assert_eq!(
        refused(pb::QueryIndicatorsRequest {
            strata: vec![0, 99],
            ..Default::default()
        })
        .await,
        ["strata[0]", "strata[1]"]
    );
    let export = client()
        .export_indicators_csv(pb::ExportIndicatorsCsvRequest {
            indicator_ids: vec!["nope".into()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(fields(&export), ["indicator_ids[0]"]);
    let watch = client()
        .watch_snapshots(pb::WatchSnapshotsRequest {
            areas: Vec::new(),
            after_sequence: -1,
        })
        .await
        .unwrap_err();
    assert_eq!(fields(&watch), ["after_sequence"]);
}

pub async fn commissioners_see_only_their_own_areas(rig: Rig) {
    caseload(&rig).await;
    rig.settle().await;
    publish(&rig, Utc.with_ymd_and_hms(2026, 4, 15, 1, 0, 0).unwrap(), 1).await;
    let ask = |org: &'static str, areas: Vec<types::Area>| {
        let client = rig.indicators(org);
        async move {
            let mut client = client;
            client
                .query_indicators(pb::QueryIndicatorsRequest {
                    areas,
                    ..Default::default()
                })
                .await
        }
    };
    let pdu = area(types::AreaType::ProbationDeliveryUnit, "EMR-LEI");
    let denied = ask("QHM", vec![la()]).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    assert!(denied.message().contains("areas[0]"));
    assert_eq!(
        ask("QK1", vec![la(), pdu.clone()])
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    let region = ask("EMR", vec![pdu]).await.unwrap().into_inner();
    assert!(!region.cells.is_empty(), "a region sees its delivery units");
    let elsewhere = ask("QHM", Vec::new()).await.unwrap().into_inner();
    assert!(
        elsewhere.cells.is_empty(),
        "nothing was observed in QHM's area"
    );
    assert_eq!(elsewhere.sequence, 1);
    let prison = ask("LEI", Vec::new()).await.unwrap_err();
    assert_eq!(
        prison.code(),
        Code::PermissionDenied,
        "a prison system is not a commissioner"
    );
    // The catalogue is open to anyone known.
    let catalogue = rig
        .indicators("LEI")
        .list_indicators(pb::ListIndicatorsRequest {})
        .await
        .unwrap()
        .into_inner()
        .indicators;
    let structure = catalogue
        .iter()
        .filter(|i| i.r#type == pb::DonabedianType::Structure as i32)
        .count();
    assert_eq!((catalogue.len() - structure, structure), (47, 8));
    // Follow-through indicators say their window and where it comes from.
    let by_id = |id: &str| catalogue.iter().find(|i| i.indicator_id == id).unwrap();
    assert_eq!(by_id("gp-unregistered-go-on-to-register").window_days, 7);
    assert_eq!(by_id("continuity-of-care-after-release").window_days, 21);
    assert_eq!(by_id("gp-registered").window_days, 0);
    for i in &catalogue {
        let windowed = i.window_days > 0;
        assert_eq!(windowed, !i.window_source.is_empty(), "{}", i.indicator_id);
    }
    assert!(
        catalogue
            .iter()
            .all(|i| i.dimension != 0 && !i.numerator_definition.is_empty())
    );
}

fn record(
    org: &str,
    indicator: &str,
    key: &str,
    present: bool,
    day: u32,
) -> pb::RecordStructureIndicatorRequest {
    pb::RecordStructureIndicatorRequest {
        idempotency_key: key.into(),
        organisation: org.into(),
        indicator_id: indicator.into(),
        present,
        assessed_on: Some(types::Date {
            year: 2026,
            month: 2,
            day: day as i32,
        }),
    }
}

pub async fn an_organisation_records_only_its_own_structure_indicators(rig: Rig) {
    let list = |org: &'static str, organisations: Vec<String>| {
        let client = rig.indicators(org);
        async move {
            let mut client = client;
            client
                .list_structure_indicators(pb::ListStructureIndicatorsRequest { organisations })
                .await
        }
    };
    let mut unit = rig.indicators("EMR-LEI");
    let other = unit
        .record_structure_indicator(record("EMR", "mortality-review-process", "k1", true, 1))
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::PermissionDenied, "{other:?}");
    let bad = unit
        .record_structure_indicator(pb::RecordStructureIndicatorRequest {
            idempotency_key: String::new(),
            assessed_on: None,
            ..record("EMR-LEI", "mortality", "", true, 1)
        })
        .await
        .unwrap_err();
    assert_eq!(
        fields(&bad),
        ["idempotency_key", "indicator_id", "assessed_on"]
    );
    let future = unit
        .record_structure_indicator(pb::RecordStructureIndicatorRequest {
            assessed_on: Some(types::Date {
                year: 2027,
                month: 1,
                day: 1,
            }),
            ..record("EMR-LEI", "no-such-thing", "k2", true, 1)
        })
        .await
        .unwrap_err();
    assert_eq!(fields(&future), ["indicator_id", "assessed_on"]);
    let nothing = list("NHSE-HJ", Vec::new()).await.unwrap().into_inner();
    assert!(nothing.records.is_empty(), "nothing was written");

    let first = record("EMR-LEI", "mortality-review-process", "k3", true, 1);
    let recorded = unit
        .record_structure_indicator(first.clone())
        .await
        .unwrap()
        .into_inner();
    let again = unit
        .record_structure_indicator(first.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(recorded, again, "a replay returns the first answer");
    let reused = unit
        .record_structure_indicator(pb::RecordStructureIndicatorRequest {
            present: false,
            ..first
        })
        .await
        .unwrap_err();
    assert_eq!(reused.code(), Code::AlreadyExists);
    unit.record_structure_indicator(record(
        "EMR-LEI",
        "mortality-review-process",
        "k4",
        false,
        20,
    ))
    .await
    .unwrap();
    unit.record_structure_indicator(record("EMR-LEI", "experience-survey", "k5", true, 5))
        .await
        .unwrap();

    let national = list("NHSE-HJ", Vec::new())
        .await
        .unwrap()
        .into_inner()
        .records;
    let current: Vec<(&str, bool)> = national
        .iter()
        .map(|r| (r.indicator_id.as_str(), r.present))
        .collect();
    assert_eq!(
        current,
        [
            ("experience-survey", true),
            ("mortality-review-process", false)
        ],
        "the latest assessment is current"
    );
    let region = list("EMR", Vec::new()).await.unwrap().into_inner().records;
    assert_eq!(region.len(), 2, "the region sees its delivery unit");
    let commissioner = list("QK1", Vec::new()).await.unwrap().into_inner().records;
    assert!(
        commissioner.is_empty(),
        "QK1 covers none of the unit's areas"
    );
    assert_eq!(
        list("QK1", vec!["EMR-LEI".into()])
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    assert_eq!(
        fields(&list("NHSE-HJ", vec!["NOPE".into()]).await.unwrap_err()),
        ["organisations[0]"]
    );
}
