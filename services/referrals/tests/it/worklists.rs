use crate::fixtures::{self, update};
use crate::harness::{TestService, WAIT};
use std::collections::BTreeSet;
use throughcare_proto::referrals::v1::update_referral_request::Action as A;
use throughcare_proto::referrals::v1::*;
use throughcare_proto::types::v1::ServiceType;
use tokio_stream::StreamExt;
use tonic::Code;

async fn seed(
    svc: &TestService,
    people: std::ops::Range<u32>,
    service: ServiceType,
    provider: &str,
) -> Vec<Referral> {
    let mut made = Vec::new();
    for n in people {
        svc.clock.advance(chrono::Duration::minutes(1));
        let request = fixtures::referral(&format!("seed-{n}-{provider}"), n, service, provider);
        made.push(
            svc.referrals("EMR-LEI")
                .request_referral(request)
                .await
                .unwrap()
                .into_inner()
                .referral
                .unwrap(),
        );
    }
    made
}

pub async fn worklists_filter_and_page_without_gaps_or_repeats(svc: TestService) {
    let substance = seed(
        &svc,
        200..207,
        ServiceType::SubstanceMisuseTreatment,
        "TP-LEI",
    )
    .await;
    let mental = seed(&svc, 207..210, ServiceType::MentalHealthTreatment, "RT5").await;
    svc.referrals("TP-LEI")
        .update_referral(update(
            "ack",
            &substance[0].referral_id,
            A::Acknowledge(AcknowledgeAction {}),
        ))
        .await
        .unwrap();

    // The provider's whole worklist, three at a time.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = svc
            .referrals("TP-LEI")
            .list_referrals(ListReferralsRequest {
                role: ReferralRole::Provider as i32,
                page_size: 3,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.referrals.len() <= 3);
        seen.extend(page.referrals.into_iter().map(|r| r.referral_id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let expected: Vec<String> = substance.iter().map(|r| r.referral_id.clone()).collect();
    assert_eq!(seen, expected, "oldest first, each once");

    let only = |r: ListReferralsRequest| async {
        let org = "EMR-LEI";
        svc.referrals(org)
            .list_referrals(r)
            .await
            .unwrap()
            .into_inner()
            .referrals
            .into_iter()
            .map(|r| r.referral_id)
            .collect::<BTreeSet<_>>()
    };
    let acknowledged = only(ListReferralsRequest {
        states: vec![ReferralState::Acknowledged as i32],
        ..Default::default()
    })
    .await;
    assert_eq!(
        acknowledged,
        BTreeSet::from([substance[0].referral_id.clone()])
    );
    let mh = only(ListReferralsRequest {
        services: vec![ServiceType::MentalHealthTreatment as i32],
        ..Default::default()
    })
    .await;
    assert_eq!(mh, mental.iter().map(|r| r.referral_id.clone()).collect());
    let since = mental[0].requested_at;
    let recent = only(ListReferralsRequest {
        requested_after: since,
        role: ReferralRole::Referrer as i32,
        ..Default::default()
    })
    .await;
    assert_eq!(recent.len(), 3);
    let rt5 = svc
        .referrals("RT5")
        .list_referrals(ListReferralsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .referrals;
    assert_eq!(
        rt5.len(),
        3,
        "a provider lists only what is addressed to it"
    );

    let bad = svc
        .referrals("RT5")
        .list_referrals(ListReferralsRequest {
            page_size: 501,
            page_token: "%%".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(fixtures::fields(&bad), ["page_size", "page_token"]);
}

/// (referral id, version) of each change a watch delivers.
type Change = (String, i64);

async fn take(
    stream: &mut tonic::Streaming<WatchReferralsResponse>,
    n: usize,
) -> (Vec<Change>, String) {
    let mut changes = Vec::new();
    let mut cursor = String::new();
    while changes.len() < n {
        let item = tokio::time::timeout(WAIT, stream.next())
            .await
            .expect("a change in time")
            .unwrap()
            .unwrap();
        let referral = item.referral.unwrap();
        changes.push((referral.referral_id, referral.version));
        cursor = item.cursor;
    }
    (changes, cursor)
}

pub async fn a_watch_resumes_after_a_dropped_connection_without_gaps_or_duplicates(
    svc: TestService,
) {
    let made = seed(&svc, 300..303, ServiceType::GpRegistration, "C82010").await;
    let mut stream = svc
        .referrals("C82010")
        .watch_referrals(WatchReferralsRequest {
            cursor: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let (first, cursor) = take(&mut stream, 2).await;
    drop(stream); // the provider's system loses its connection

    // Changes made while it was away, plus one request it already saw change.
    for (i, referral) in made.iter().enumerate() {
        svc.referrals("C82010")
            .update_referral(update(
                &format!("away-{i}"),
                &referral.referral_id,
                A::Acknowledge(AcknowledgeAction {}),
            ))
            .await
            .unwrap();
    }
    let mut resumed = svc
        .referrals("C82010")
        .watch_referrals(WatchReferralsRequest { cursor })
        .await
        .unwrap()
        .into_inner();
    let (rest, _) = take(&mut resumed, 4).await;

    let mut all = first;
    all.extend(rest);
    let expected: Vec<Change> = made
        .iter()
        .map(|r| (r.referral_id.clone(), 1))
        .chain(made.iter().map(|r| (r.referral_id.clone(), 2)))
        .collect();
    assert_eq!(all, expected, "every change exactly once, in order");

    // A live change reaches the open stream.
    svc.referrals("EMR-LEI")
        .update_referral(update(
            "cancel",
            &made[0].referral_id,
            A::Cancel(CancelAction {
                reason: CancellationReason::ReferredElsewhere as i32,
            }),
        ))
        .await
        .unwrap();
    let (live, _) = take(&mut resumed, 1).await;
    assert_eq!(live, vec![(made[0].referral_id.clone(), 3)]);

    let status = svc
        .referrals("C82010")
        .watch_referrals(WatchReferralsRequest {
            cursor: "not-a-cursor".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}
