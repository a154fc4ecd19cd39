//! When a call shows that people stored apart are one — someone released by
//! prison number, referred by NHS number, then named by both — the referrals
//! service merges them and says so on the bus, once.

use crate::fixtures::{self, person, referral};
use crate::harness::TestService;
use throughcare_proto::events::v1 as events;
use throughcare_proto::topics;
use throughcare_proto::types::v1::{self as types, ServiceType};

fn only(n: u32, keep: fn(&mut types::PersonIdentifiers)) -> types::PersonDetails {
    let mut details = person(n);
    keep(details.identifiers.as_mut().unwrap());
    details
}

pub async fn people_found_to_be_one_are_merged_and_announced_once(svc: TestService) {
    let mut log = svc.events().await;
    let mut release = fixtures::release("release-80", 80, fixtures::complex_needs());
    release.person = Some(only(80, |ids| ids.nhs_number.clear()));
    svc.transitions("LEI")
        .notify_release(release)
        .await
        .unwrap();
    let mut by_nhs = referral("by-nhs", 80, ServiceType::GpRegistration, "TP-LEI");
    by_nhs.person = Some(only(80, |ids| ids.prison_number.clear()));
    svc.referrals("EMR-LEI")
        .request_referral(by_nhs)
        .await
        .unwrap();
    assert_eq!(svc.count("persons").await, 2, "two people so far");

    let both = referral("both", 80, ServiceType::SubstanceMisuseTreatment, "TP-LEI");
    svc.referrals("EMR-LEI")
        .request_referral(both.clone())
        .await
        .unwrap();
    // Replayed, and asked again under a new key: nothing new is learnt.
    svc.referrals("EMR-LEI")
        .request_referral(both)
        .await
        .unwrap();
    let again = referral("again", 80, ServiceType::MentalHealthTreatment, "TP-LEI");
    svc.referrals("EMR-LEI")
        .request_referral(again)
        .await
        .unwrap();

    log.wait_for("the three referrals and the link on both topics", |seen| {
        let count = |is: fn(&throughcare_platform::bus::Event) -> bool| {
            seen.iter().filter(|(e, _)| is(e)).count()
        };
        let requested = count(|e| e.is::<events::ReferralRequested>());
        let linked = count(|e| e.is::<events::PersonsLinked>());
        (requested == 3 && linked >= 2).then_some(())
    })
    .await;
    let released: Vec<events::ReleaseNotified> = log.all();
    let requested: Vec<events::ReferralRequested> = log.all();
    // Announced once on each topic: the lifecycle topic (for sharing) and
    // the observations topic (for indicators).
    let linked: Vec<(String, events::PersonsLinked)> = log
        .events
        .iter()
        .filter(|(e, _)| e.is::<events::PersonsLinked>())
        .map(|(e, _)| (e.topic.clone(), e.decode().unwrap()))
        .collect();
    let [(first, linked), (second, copy)] = linked.as_slice() else {
        panic!("one announcement per topic, got {linked:?}");
    };
    assert_ne!(first, second);
    assert_eq!(linked, copy);
    // The person rule picks the one known by NHS number; the other is merged
    // into them, announced before the referral that showed it.
    let (by_prison, by_nhs) = (&released[0].person_key, &requested[0].person_key);
    assert_ne!(by_prison, by_nhs);
    assert_eq!(&linked.surviving_key, by_nhs);
    assert!(linked.merged_keys.contains(by_prison), "{linked:?}");
    assert!(!linked.merged_keys.contains(by_nhs));
    assert!(requested[1..].iter().all(|r| &r.person_key == by_nhs));
    let order: Vec<_> = log
        .events
        .iter()
        .filter(|(e, _)| e.topic.ends_with(topics::REFERRALS_EVENTS))
        .filter(|(e, _)| e.is::<events::PersonsLinked>() || e.is::<events::ReferralRequested>())
        .map(|(e, key)| (e.is::<events::PersonsLinked>(), key.clone()))
        .collect();
    assert_eq!(
        order[1],
        (true, by_nhs.clone()),
        "the link comes first: {order:?}"
    );

    // One person holds both identifiers; everything is theirs; the other row
    // is a tombstone naming them.
    let live = "persons WHERE merged_into IS NULL AND nhs_number IS NOT NULL AND prison_number IS NOT NULL";
    assert_eq!(svc.count(live).await, 1);
    assert_eq!(svc.count("persons WHERE merged_into IS NOT NULL").await, 1);
    for table in ["releases", "referrals", "continuity_tasks"] {
        let sql = format!("(SELECT DISTINCT person_key FROM {table}) AS keys");
        assert_eq!(svc.count(&sql).await, 1, "{table} under one key");
    }
}
