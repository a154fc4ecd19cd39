//! Two-level acknowledgement: what became of a push, as receipts on the
//! sharing events topic — owed, delivered, processed, overdue, withheld.

use crate::harness::{Rig, WAIT, nhs};
use crate::pushes::{consent_to_both, next, notified, watch};
use throughcare_platform::bus::Event;
use throughcare_proto::events::v1::DeliveryReceiptChanged;
use throughcare_proto::referrals::v1 as referrals;
use throughcare_proto::sharing::v1 as pb;
use throughcare_proto::topics;
use throughcare_proto::types::v1::{DeliveryReceipt, DeliveryStatus as S, ServiceType};
use throughcare_testkit::{EventLog, eventually};
use tokio_stream::StreamExt;
use tonic::Code;

/// The first receipt in `status` for the push `trigger_id` caused.
async fn receipt(log: &mut EventLog, trigger_id: &str, status: S) -> DeliveryReceipt {
    log.wait_for(&format!("a {status:?} receipt"), |events| {
        changes(events)
            .into_iter()
            .filter(|c| c.trigger_id == trigger_id)
            .filter_map(|c| c.receipt)
            .find(|r| r.status() == status)
    })
    .await
}

/// Every receipt change so far, each checked to be keyed by its person key.
fn changes(events: &[(Event, String)]) -> Vec<DeliveryReceiptChanged> {
    events
        .iter()
        .filter(|(e, _)| e.is::<DeliveryReceiptChanged>())
        .map(|(e, key)| {
            let change: DeliveryReceiptChanged = e.decode().unwrap();
            assert_eq!(&change.person_key, key, "keyed by its person key");
            change
        })
        .collect()
}

/// The release as its sender reads it, once its receipts show `status`.
async fn release_showing(rig: &Rig, release_id: &str, status: S) -> referrals::GetReleaseResponse {
    eventually(WAIT, "the release to show its push's receipt", || async {
        let got = rig
            .transitions("LEI")
            .get_release(referrals::GetReleaseRequest {
                release_id: release_id.into(),
            })
            .await
            .unwrap()
            .into_inner();
        let release = got.release.as_ref().unwrap();
        release
            .deliveries
            .iter()
            .any(|d| d.status() == status)
            .then_some(got)
    })
    .await
}

/// Reads a watch stream until `found` holds for a change, failing after
/// [`WAIT`].
async fn until<T>(stream: &mut tonic::Streaming<T>, what: &str, found: impl Fn(&T) -> bool) {
    let reading = async {
        loop {
            if found(&stream.next().await.unwrap().unwrap()) {
                return;
            }
        }
    };
    tokio::time::timeout(WAIT, reading)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

async fn acknowledge(
    rig: &Rig,
    org: &str,
    delivery_id: &str,
) -> Result<DeliveryReceipt, tonic::Status> {
    rig.disclosures(org)
        .acknowledge_delivery(pb::AcknowledgeDeliveryRequest {
            delivery_id: delivery_id.into(),
        })
        .await
        .map(|r| r.into_inner().receipt.unwrap())
}

pub async fn a_push_is_owed_delivered_and_processed_and_its_sender_sees_each(rig: Rig) {
    consent_to_both(&rig, 60).await;
    let mut log = EventLog::subscribe(&rig.bus, &[topics::SHARING_EVENTS]).await;
    let release_id = notified(&rig, 60).await;

    let owed = receipt(&mut log, &release_id, S::Pending).await;
    assert_eq!(owed.recipient, "EMR-LEI");
    // Due by the end of the day after the release (the day after tomorrow).
    let release_day = (crate::harness::start() + chrono::Duration::days(1)).date_naive();
    let day_after = release_day + chrono::Duration::days(2);
    let due_by = owed.due_by.unwrap().seconds;
    assert_eq!(
        due_by,
        day_after
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp()
    );
    assert!(owed.delivered_at.is_none() && owed.processed_at.is_none());

    // Not read yet: it cannot be acknowledged; nor by anyone but its
    // recipient; nor without an id.
    let early = acknowledge(&rig, "EMR-LEI", &owed.delivery_id)
        .await
        .unwrap_err();
    assert_eq!(early.code(), Code::FailedPrecondition, "{early:?}");
    assert!(early.message().contains("not been read"), "{early:?}");
    let subject = String::from_utf8_lossy(early.details()).into_owned();
    assert!(subject.contains("delivery_id"), "the subject: {early:?}");
    let other = acknowledge(&rig, "EMR-NOT", &owed.delivery_id)
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::NotFound, "{other:?}");
    let blank = acknowledge(&rig, "EMR-LEI", " ").await.unwrap_err();
    assert_eq!(blank.code(), Code::InvalidArgument, "{blank:?}");
    assert!(blank.message().contains("delivery_id"), "{blank:?}");

    let mut probation = watch(&rig, "EMR-LEI").await;
    let delivered = next(&mut probation).await;
    assert_eq!(delivered.delivery_id, owed.delivery_id);
    assert_eq!(delivered.person.unwrap().nhs_number, nhs(60));
    let read = receipt(&mut log, &release_id, S::Delivered).await;
    assert!(read.delivered_at.is_some() && read.processed_at.is_none());

    let processed = acknowledge(&rig, "EMR-LEI", &owed.delivery_id)
        .await
        .unwrap();
    assert_eq!(processed.status(), S::Processed);
    assert_eq!(processed.delivered_at, read.delivered_at);
    assert!(processed.processed_at.is_some());
    let published = receipt(&mut log, &release_id, S::Processed).await;
    assert_eq!(
        published, processed,
        "the receipt published is the one answered"
    );
    // The prison that notified the release sees it on the release.
    let seen = release_showing(&rig, &release_id, S::Processed).await;
    assert_eq!(
        seen.release.unwrap().deliveries,
        std::slice::from_ref(&processed)
    );
    // Listed for the prison, and followed live by the unit it went to.
    let listed = rig
        .transitions("LEI")
        .list_releases(referrals::ListReleasesRequest::default())
        .await
        .unwrap()
        .into_inner();
    let [mine] = listed.releases.as_slice() else {
        panic!("one release, got {}", listed.releases.len());
    };
    assert_eq!(
        (mine.release_id.as_str(), mine.deliveries.as_slice()),
        (release_id.as_str(), std::slice::from_ref(&processed))
    );
    let mut releases = rig
        .transitions("EMR-LEI")
        .watch_releases(referrals::WatchReleasesRequest {
            cursor: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    until(
        &mut releases,
        "the unit's release feed to show the push processed",
        |w| w.release.as_ref().unwrap().deliveries == std::slice::from_ref(&processed),
    )
    .await;
    let bad = rig
        .transitions("LEI")
        .list_releases(referrals::ListReleasesRequest {
            states: vec![99],
            page_size: 501,
            page_token: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(
        bad.message().contains("states[0]") && bad.message().contains("page_size"),
        "{bad:?}"
    );
    // Again: the first receipt, unchanged.
    rig.clock.advance(chrono::Duration::minutes(5));
    let again = acknowledge(&rig, "EMR-LEI", &owed.delivery_id)
        .await
        .unwrap();
    assert_eq!(again, processed);
    // Once its release is reversed, it is served to no one again, nor
    // acknowledged.
    rig.transitions("LEI")
        .reverse_release(referrals::ReverseReleaseRequest {
            idempotency_key: "reverse-60".into(),
            release_id: release_id.clone(),
            reason: referrals::ReversalReason::NotifiedInError as i32,
        })
        .await
        .unwrap();
    eventually(
        WAIT,
        "the reversed release's push to be retracted",
        || async {
            let answer = acknowledge(&rig, "EMR-LEI", &owed.delivery_id).await;
            answer
                .err()
                .filter(|e| e.code() == Code::NotFound)
                .map(drop)
        },
    )
    .await;
    let keys: std::collections::BTreeSet<_> = changes(&log.events)
        .into_iter()
        .map(|c| c.person_key)
        .collect();
    assert_eq!(keys.len(), 1, "one person, one key");
}

pub async fn an_unread_push_is_found_overdue_and_a_withheld_one_says_so(rig: Rig) {
    consent_to_both(&rig, 61).await;
    let mut log = EventLog::subscribe(&rig.bus, &[topics::SHARING_EVENTS]).await;
    // The release brings the person's record; its push to probation and the
    // referral's to the provider are owed.
    let release_id = notified(&rig, 61).await;
    let referral_id = rig
        .referrals("EMR-LEI")
        .request_referral(referrals::RequestReferralRequest {
            idempotency_key: "ref-61".into(),
            person: crate::fixtures::release(61).person,
            service: ServiceType::SubstanceMisuseTreatment as i32,
            provider: "TP-LEI".into(),
            urgency: referrals::Urgency::Urgent as i32,
            release_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap()
        .referral_id;
    let owed = receipt(&mut log, &referral_id, S::Pending).await;
    assert_eq!(owed.recipient, "TP-LEI");
    let release_owed = receipt(&mut log, &release_id, S::Pending).await;

    // The referral serves the person's release (it was linked to it), so
    // its push is due when the release's is, by the end of the day after the
    // release: a day and a minute on, neither is late.
    assert_eq!(owed.due_by, release_owed.due_by);
    rig.clock
        .advance(chrono::Duration::hours(24) + chrono::Duration::minutes(1));
    let marked = "SELECT count(*) FROM deliveries WHERE overdue_at IS NOT NULL";
    rig.clock
        .wait_for_periodic_runs(2, "two sweeps for overdue pushes")
        .await;
    assert_eq!(rig.count(marked).await, 0, "nothing is due yet");
    // Past the due time, both are overdue.
    let release_due = release_owed.due_by.unwrap();
    let release_due = chrono::DateTime::from_timestamp(release_due.seconds, 0).unwrap();
    rig.clock.set(release_due + chrono::Duration::minutes(1));
    let overdue = receipt(&mut log, &referral_id, S::Overdue).await;
    assert_eq!(overdue.delivery_id, owed.delivery_id);
    assert!(overdue.overdue_at.unwrap().seconds >= owed.due_by.unwrap().seconds);
    let release_overdue = receipt(&mut log, &release_id, S::Overdue).await;
    // The referral's late push: an alert on its release to the referrer,
    // naming it.
    let alerts = |got: &referrals::GetReleaseResponse, referral: &str| {
        let mut alerted: Vec<_> = got
            .tasks
            .iter()
            .filter(|t| t.rule_id == "health-information-overdue" && t.referral_id == referral)
            .map(|t| (t.responsible_organisation.clone(), t.kind(), t.state()))
            .collect();
        alerted.sort();
        alerted
    };
    let (alert, open) = (
        referrals::ContinuityTaskKind::Alert,
        referrals::ContinuityTaskState::Open,
    );
    let referral_alerts = eventually(WAIT, "alerts for the referral's late push", || async {
        let got = rig
            .transitions("LEI")
            .get_release(referrals::GetReleaseRequest {
                release_id: release_id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        Some(alerts(&got, &referral_id)).filter(|a| !a.is_empty())
    })
    .await;
    assert_eq!(referral_alerts, [("EMR-LEI".to_owned(), alert, open)]);
    // The referral's parties see it late on their lists.
    let mut worklist = rig
        .referrals("TP-LEI")
        .watch_referrals(referrals::WatchReferralsRequest {
            cursor: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    until(
        &mut worklist,
        "the provider's worklist to show the push late",
        |w| {
            let deliveries = &w.referral.as_ref().unwrap().deliveries;
            deliveries.iter().any(|d| d.status() == S::Overdue)
        },
    )
    .await;
    let listed = rig
        .referrals("EMR-LEI")
        .list_referrals(referrals::ListReferralsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let [listed] = listed.referrals.as_slice() else {
        panic!("one referral, got {}", listed.referrals.len());
    };
    assert_eq!(listed.deliveries, std::slice::from_ref(&overdue));
    // Read late, it is delivered, and stays marked late.
    let mut provider = watch(&rig, "TP-LEI").await;
    assert_eq!(next(&mut provider).await.delivery_id, owed.delivery_id);
    let late = receipt(&mut log, &referral_id, S::Delivered).await;
    assert_eq!(late.overdue_at, overdue.overdue_at);
    eventually(WAIT, "the referral to show its push delivered", || async {
        let referral = rig
            .referrals("EMR-LEI")
            .get_referral(referrals::GetReferralRequest {
                referral_id: referral_id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .referral
            .unwrap();
        (referral.deliveries == [late.clone()]).then_some(())
    })
    .await;

    // The release's late push: a continuity alert to the prison that sent it
    // and the unit that did not read it.
    let seen = release_showing(&rig, &release_id, S::Overdue).await;
    assert_eq!(
        alerts(&seen, ""),
        [("EMR-LEI".into(), alert, open), ("LEI".into(), alert, open)]
    );

    // The release is reversed before its push is read: withheld.
    rig.transitions("LEI")
        .reverse_release(referrals::ReverseReleaseRequest {
            idempotency_key: "reverse-61".into(),
            release_id: release_id.clone(),
            reason: referrals::ReversalReason::NotifiedInError as i32,
        })
        .await
        .unwrap();
    let withheld = receipt(&mut log, &release_id, S::Withheld).await;
    assert_eq!(withheld.delivery_id, release_overdue.delivery_id);
    assert!(withheld.withheld_at.is_some() && withheld.delivered_at.is_none());
    let gone = acknowledge(&rig, "EMR-LEI", &withheld.delivery_id)
        .await
        .unwrap_err();
    assert_eq!(
        gone.code(),
        Code::NotFound,
        "a withheld push is not the recipient's"
    );
}
