use crate::fixtures::*;
use crate::harness::{Rig, WAIT, nhs};
use throughcare_platform::bus::{Event, Record};
use throughcare_proto::events::v1::ObservedFact;
use throughcare_proto::referrals::v1 as referrals;
use throughcare_proto::sharing::v1::{self as pb, Purpose};
use throughcare_proto::types::v1::{
    AgeBand, DataCategory as C, Date, Destination, EthnicGroup, OrganisationKind, ServiceType, Sex,
};
use tokio_stream::StreamExt;

pub(crate) type Deliveries = tonic::Streaming<pb::WatchDeliveriesResponse>;

/// Notifies the release of person `n` from LEI; returns its id.
pub(crate) async fn notified(rig: &Rig, n: u32) -> String {
    rig.transitions("LEI")
        .notify_release(release(n))
        .await
        .unwrap()
        .into_inner()
        .release
        .unwrap()
        .release_id
}

pub(crate) async fn watch(rig: &Rig, org: &str) -> Deliveries {
    rig.disclosures(org)
        .watch_deliveries(pb::WatchDeliveriesRequest {
            cursor: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
}

pub(crate) async fn next(stream: &mut Deliveries) -> pb::Delivery {
    tokio::time::timeout(WAIT, stream.next())
        .await
        .expect("a delivery in time")
        .unwrap()
        .unwrap()
        .delivery
        .unwrap()
}

fn for_probation_and_the_provider() -> pb::Provision {
    provision(
        pb::ProvisionType::Permit,
        vec![to_kind(OrganisationKind::Probation)],
        &[Purpose::DirectCare],
        &[C::MentalHealth, C::SubstanceMisuse, C::SelfHarmRisk],
        vec![],
    )
}

pub(crate) async fn consent_to_both(rig: &Rig, n: u32) {
    rig.consents("EMR-LEI")
        .record_consent(consent(
            &format!("probation-{n}"),
            n,
            for_probation_and_the_provider(),
        ))
        .await
        .unwrap();
    let provider = provision(
        pb::ProvisionType::Permit,
        vec![to_org("TP-LEI")],
        &[Purpose::DirectCare],
        &[C::SubstanceMisuse],
        vec![],
    );
    rig.consents("EMR-LEI")
        .record_consent(consent(&format!("provider-{n}"), n, provider))
        .await
        .unwrap();
}

pub async fn the_permitted_part_is_pushed_at_release_and_at_referral(rig: Rig) {
    consent_to_both(&rig, 10).await;
    let mut probation = watch(&rig, "EMR-LEI").await;
    let mut provider = watch(&rig, "TP-LEI").await;
    let release_id = notified(&rig, 10).await;

    let at_release = next(&mut probation).await;
    assert_eq!(
        (at_release.trigger, at_release.trigger_id.as_str()),
        (pb::DeliveryTrigger::Release as i32, release_id.as_str())
    );
    assert_eq!(at_release.person.unwrap().nhs_number, nhs(10));
    assert_eq!(
        categories(&at_release.categories),
        [C::MentalHealth, C::SubstanceMisuse, C::SelfHarmRisk]
    );
    assert_eq!(
        present(&at_release.health),
        [C::MentalHealth, C::SubstanceMisuse, C::SelfHarmRisk]
    );
    // The indicators service learns that it arrived, coded and pseudonymised,
    // in the release's episode, the day before release.
    let observed = rig.sharing_observations().await;
    let [shared] = observed.observations.as_slice() else {
        panic!("one observation per push, got {:?}", observed.observations);
    };
    assert_eq!(
        (shared.fact(), shared.value, shared.person_key.as_str()),
        (
            ObservedFact::HealthInformationSharedAtRelease,
            -1,
            observed.person_key.as_str()
        )
    );
    assert_eq!(
        shared.episode_key,
        rig.pseudonyms.episode_key("release", &release_id)
    );
    let areas = shared.areas.clone().unwrap();
    assert_eq!(
        (
            areas.probation_delivery_unit.as_str(),
            areas.local_authority.as_str()
        ),
        ("EMR-LEI", "E06000016")
    );
    assert_eq!(
        (shared.sex(), shared.age_band(), shared.ethnic_group()),
        (Sex::Female, AgeBand::AgeBand35To49, EthnicGroup::Mixed)
    );

    let mut referral = referrals::RequestReferralRequest {
        idempotency_key: "ref-10".into(),
        person: release(10).person,
        service: ServiceType::SubstanceMisuseTreatment as i32,
        provider: "TP-LEI".into(),
        urgency: 0,
        release_id: String::new(),
    };
    referral.urgency = referrals::Urgency::Urgent as i32;
    let referral_id = rig
        .referrals("EMR-LEI")
        .request_referral(referral)
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap()
        .referral_id;
    let at_referral = next(&mut provider).await;
    assert_eq!(
        (at_referral.trigger, at_referral.trigger_id.as_str()),
        (pb::DeliveryTrigger::Referral as i32, referral_id.as_str())
    );
    assert_eq!(
        present(&at_referral.health),
        [C::SubstanceMisuse],
        "the provider sees only what it may"
    );
}

/// Releases person `n` and waits until sharing owes the probation unit a push.
async fn owed(rig: &Rig, n: u32, deliveries: i64) -> String {
    let release_id = notified(rig, n).await;
    rig.wait_count(
        "the push to be owed",
        "SELECT count(*) FROM deliveries",
        deliveries,
    )
    .await;
    release_id
}

pub async fn withdrawing_consent_cuts_off_deliveries_not_yet_made(rig: Rig) {
    consent_to_both(&rig, 20).await;
    consent_to_both(&rig, 21).await;
    let consent_id = rig
        .consents("EMR-LEI")
        .list_consents(pb::ListConsentsRequest {
            person: Some(ids(20)),
        })
        .await
        .unwrap()
        .into_inner()
        .consents[0]
        .consent_id
        .clone();
    owed(&rig, 20, 1).await;
    owed(&rig, 21, 2).await;
    rig.wait_count(
        "both records",
        "SELECT count(DISTINCT record_id) FROM health_records",
        2,
    )
    .await;

    // The probation unit's system is offline; the person withdraws consent.
    let withdrawn = rig
        .consents("EMR-LEI")
        .withdraw_consent(pb::WithdrawConsentRequest {
            idempotency_key: "w".into(),
            consent_id,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(withdrawn.deliveries_withdrawn, 1);
    assert_eq!(
        withdrawn.consent.unwrap().state,
        pb::ConsentState::Withdrawn as i32
    );

    // When it reconnects, only the other person's delivery comes; a later one
    // after it proves nothing for person 20 was waiting in between.
    let mut probation = watch(&rig, "EMR-LEI").await;
    assert_eq!(
        next(&mut probation).await.person.unwrap().nhs_number,
        nhs(21)
    );
    consent_to_both(&rig, 22).await;
    owed(&rig, 22, 3).await;
    assert_eq!(
        next(&mut probation).await.person.unwrap().nhs_number,
        nhs(22)
    );
    let ask_again = rig
        .disclosures("EMR-LEI")
        .request_disclosure(ask(20, Purpose::DirectCare, &[], ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        ask_again.decision,
        pb::Decision::Deny as i32,
        "nor is it disclosed on request"
    );
}

pub async fn a_reversal_withdraws_what_the_release_caused(rig: Rig) {
    consent_to_both(&rig, 30).await;
    consent_to_both(&rig, 31).await;
    let release_id = owed(&rig, 30, 1).await;
    rig.transitions("LEI")
        .reverse_release(referrals::ReverseReleaseRequest {
            idempotency_key: "reverse".into(),
            release_id,
            reason: referrals::ReversalReason::NotifiedInError as i32,
        })
        .await
        .unwrap();
    rig.wait_count(
        "the delivery to be withdrawn",
        "SELECT count(*) FROM deliveries WHERE state = 'withdrawn'",
        1,
    )
    .await;
    owed(&rig, 31, 2).await;
    let mut probation = watch(&rig, "EMR-LEI").await;
    assert_eq!(
        next(&mut probation).await.person.unwrap().nhs_number,
        nhs(31),
        "the reversed release's push never comes"
    );
}

pub async fn a_tampered_audit_row_is_found_at_that_row(rig: Rig) {
    for n in 40..45 {
        rig.disclosures("EMR-LEI")
            .request_disclosure(ask(n, Purpose::DirectCare, &[], ""))
            .await
            .unwrap();
    }
    let verified = rig
        .audit("NHSE-HJ")
        .verify_audit_chain(pb::VerifyAuditChainRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(verified.intact);
    assert_eq!(verified.entries_verified, 5);
    let cli = |rig: &Rig| rig.verify_audit_cli();
    let intact = cli(&rig);
    assert!(
        intact.status.success(),
        "{}",
        String::from_utf8_lossy(&intact.stdout)
    );

    throughcare_platform::on_db!(&rig.db, p => sqlx::query("UPDATE audit_log SET actor_organisation = 'SOMEONE-ELSE' WHERE seq = 3").execute(p).await.unwrap().rows_affected());
    let verified = rig
        .audit("NHSE-HJ")
        .verify_audit_chain(pb::VerifyAuditChainRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(!verified.intact);
    assert_eq!(
        (verified.first_broken_sequence, verified.entries_verified),
        (3, 2)
    );
    let broken = cli(&rig);
    assert_eq!(broken.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&broken.stdout).contains("broken at entry 3"));
}

pub async fn subject_access_lists_every_disclosure(rig: Rig) {
    consent_to_both(&rig, 50).await;
    let mut probation = watch(&rig, "EMR-LEI").await;
    rig.transitions("LEI")
        .notify_release(release(50))
        .await
        .unwrap();
    next(&mut probation).await;
    rig.disclosures("EMR-LEI")
        .request_disclosure(ask(50, Purpose::DirectCare, &[C::MentalHealth], ""))
        .await
        .unwrap();
    rig.disclosures("TP-LEI")
        .request_disclosure(ask(50, Purpose::DirectCare, &[C::SubstanceMisuse], ""))
        .await
        .unwrap();
    rig.disclosures("RT5")
        .request_disclosure(ask(50, Purpose::DirectCare, &[], ""))
        .await
        .unwrap(); // denied: not a disclosure

    let listed = rig
        .disclosures("NHSE-HJ")
        .list_disclosures(pb::ListDisclosuresRequest {
            person: Some(ids(50)),
        })
        .await
        .unwrap()
        .into_inner()
        .disclosures;
    let seen: Vec<(String, i32, Vec<C>)> = listed
        .iter()
        .map(|d| (d.recipient.clone(), d.trigger, categories(&d.categories)))
        .collect();
    assert_eq!(
        seen,
        [
            (
                "EMR-LEI".to_owned(),
                pb::DeliveryTrigger::Release as i32,
                vec![C::MentalHealth, C::SubstanceMisuse, C::SelfHarmRisk]
            ),
            (
                "EMR-LEI".to_owned(),
                pb::DeliveryTrigger::Unspecified as i32,
                vec![C::MentalHealth]
            ),
            (
                "TP-LEI".to_owned(),
                pb::DeliveryTrigger::Unspecified as i32,
                vec![C::SubstanceMisuse]
            ),
        ]
    );
    assert!(
        listed
            .iter()
            .all(|d| d.purpose == Purpose::DirectCare as i32
                && !d.bases.is_empty()
                && d.disclosed_at.is_some())
    );
    assert_eq!(listed[2].recipient_kind, OrganisationKind::Provider as i32);
    // And every refusal: RT5 asked and was refused.
    let refusals = rig
        .disclosures("NHSE-HJ")
        .list_disclosures(pb::ListDisclosuresRequest {
            person: Some(ids(50)),
        })
        .await
        .unwrap()
        .into_inner()
        .refusals;
    let refused: Vec<_> = refusals
        .iter()
        .map(|r| (r.recipient.as_str(), r.purpose, r.refused_at.is_some()))
        .collect();
    // The push at release left out what its consent does not cover: a
    // refusal of those categories too.
    assert_eq!(
        refused,
        [
            ("EMR-LEI", Purpose::DirectCare as i32, true),
            ("RT5", Purpose::DirectCare as i32, true)
        ]
    );
    assert!(!refusals[0].categories.is_empty());
}

pub async fn withdrawing_one_consent_leaves_pushes_another_basis_covers(rig: Rig) {
    // Two consents cover the probation unit: one by kind, one by its code
    // (for mental health only).
    consent_to_both(&rig, 50).await;
    let by_code = provision(
        pb::ProvisionType::Permit,
        vec![to_org("EMR-LEI")],
        &[Purpose::DirectCare],
        &[C::MentalHealth],
        vec![],
    );
    rig.consents("EMR-LEI")
        .record_consent(consent("probation-by-code-50", 50, by_code))
        .await
        .unwrap();
    owed(&rig, 50, 1).await;
    rig.wait_count(
        "the record",
        "SELECT count(DISTINCT record_id) FROM health_records",
        1,
    )
    .await;
    let by_kind = rig
        .consents("EMR-LEI")
        .list_consents(pb::ListConsentsRequest {
            person: Some(ids(50)),
        })
        .await
        .unwrap()
        .into_inner()
        .consents
        .into_iter()
        .find(|c| {
            c.provision.as_ref().unwrap().recipients == [to_kind(OrganisationKind::Probation)]
        })
        .unwrap()
        .consent_id;
    let withdrawn = rig
        .consents("EMR-LEI")
        .withdraw_consent(pb::WithdrawConsentRequest {
            idempotency_key: "w-50".into(),
            consent_id: by_kind,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        withdrawn.deliveries_withdrawn, 0,
        "the push still rests on the other consent"
    );
    let mut probation = watch(&rig, "EMR-LEI").await;
    let delivered = next(&mut probation).await;
    assert_eq!(
        present(&delivered.health),
        [C::MentalHealth],
        "only what the remaining consent covers"
    );
}

/// Every delivery the stream holds from its start, until it goes quiet.
async fn all_from_start(rig: &Rig, org: &str) -> Vec<pb::Delivery> {
    let mut stream = watch(rig, org).await;
    let mut all = Vec::new();
    while let Ok(Some(item)) =
        tokio::time::timeout(std::time::Duration::from_millis(500), stream.next()).await
    {
        all.push(item.unwrap().delivery.unwrap());
    }
    all
}

pub async fn a_delivery_once_made_is_a_fixed_record(rig: Rig) {
    consent_to_both(&rig, 60).await;
    let release_id = owed(&rig, 60, 1).await;
    let mut probation = watch(&rig, "EMR-LEI").await;
    let sent = next(&mut probation).await;
    drop(probation);
    let audited = rig.count("SELECT count(*) FROM audit_log").await;
    let disclosed = rig.count("SELECT count(*) FROM disclosures").await;

    // Re-read from the start, the delivery is exactly what was sent, and
    // nothing is decided or disclosed again.
    assert_eq!(all_from_start(&rig, "EMR-LEI").await, vec![sent]);
    assert_eq!(rig.count("SELECT count(*) FROM audit_log").await, audited);
    assert_eq!(
        rig.count("SELECT count(*) FROM disclosures").await,
        disclosed
    );

    // Its release is reversed: it is served to no one any more, and subject
    // access still lists that it was made.
    rig.transitions("LEI")
        .reverse_release(referrals::ReverseReleaseRequest {
            idempotency_key: "reverse-60".into(),
            release_id,
            reason: referrals::ReversalReason::NotifiedInError as i32,
        })
        .await
        .unwrap();
    rig.wait_count(
        "the delivery to be retracted",
        "SELECT count(*) FROM deliveries WHERE state = 'retracted'",
        1,
    )
    .await;
    assert!(all_from_start(&rig, "EMR-LEI").await.is_empty());
    let listed = rig
        .disclosures("NHSE-HJ")
        .list_disclosures(pb::ListDisclosuresRequest {
            person: Some(ids(60)),
        })
        .await
        .unwrap()
        .into_inner()
        .disclosures;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].trigger, pb::DeliveryTrigger::Release as i32);
}

/// `message` as the referrals service publishes it, keyed by `person_key`.
fn referrals_event<M: prost::Message + prost::Name>(
    rig: &Rig,
    person_key: &str,
    message: &M,
) -> Record {
    let topic = rig.bus.topic(throughcare_proto::topics::REFERRALS_EVENTS);
    Event::new(topic, person_key, "/throughcare/referrals", message).to_record()
}

/// A reversal that reaches sharing before its release notification — as when
/// the notification was dead-lettered and replayed after the fix — keeps the
/// release reversed: no push is owed for it and it relates no one to the
/// person. A release after it is handled as usual.
pub async fn a_release_replayed_after_its_reversal_stays_reversed(rig: Rig) {
    use throughcare_platform::bus::Publisher;
    use throughcare_proto::events::v1 as events;
    let person_key = format!("{:064x}", 0x5eed_u64);
    let notified = |release_id: &str| events::ReleaseNotified {
        release_id: release_id.into(),
        person_key: person_key.clone(),
        release_date: Some(Date {
            year: 2026,
            month: 12,
            day: 7,
        }),
        releasing_prison: "LEI".into(),
        destination: Some(Destination {
            probation_delivery_unit: "EMR-LEI".into(),
            ..Default::default()
        }),
        notified_by: "LEI".into(),
        ..Default::default()
    };
    let reversed = events::ReleaseReversed {
        release_id: "late".into(),
        person_key: person_key.clone(),
        ..Default::default()
    };
    rig.bus
        .publish(&[
            referrals_event(&rig, &person_key, &reversed),
            referrals_event(&rig, &person_key, &notified("late")),
            referrals_event(&rig, &person_key, &notified("after")),
        ])
        .await
        .unwrap();
    // One key, one partition: once the last is in, the two before it are.
    rig.wait_count(
        "the release after",
        "SELECT count(*) FROM releases WHERE release_id = 'after'",
        1,
    )
    .await;
    let count = |sql: &'static str| rig.count(sql);
    assert_eq!(
        count("SELECT count(*) FROM releases WHERE release_id = 'late' AND state = 'reversed'")
            .await,
        1
    );
    assert_eq!(
        count("SELECT count(*) FROM deliveries WHERE trigger_id = 'late'").await,
        0,
        "no push for the reversed release"
    );
    assert_eq!(
        count("SELECT count(*) FROM deliveries WHERE trigger_id = 'after'").await,
        1,
        "the release after it owes its push"
    );
}

/// Likewise a referral ended before its request reached sharing owes its
/// provider nothing when the request comes; a referral after it does.
pub async fn a_referral_replayed_after_it_ended_owes_nothing(rig: Rig) {
    use throughcare_platform::bus::Publisher;
    use throughcare_proto::events::v1 as events;
    let person_key = format!("{:064x}", 0x5eee_u64);
    let requested = |referral_id: &str| events::ReferralRequested {
        referral_id: referral_id.into(),
        person_key: person_key.clone(),
        service: ServiceType::SubstanceMisuseTreatment as i32,
        referrer: "EMR-LEI".into(),
        provider: "TP-LEI".into(),
        ..Default::default()
    };
    let cancelled = events::ReferralStateChanged {
        referral_id: "ended".into(),
        person_key: person_key.clone(),
        from_state: referrals::ReferralState::Requested as i32,
        to_state: referrals::ReferralState::Cancelled as i32,
        referrer: "EMR-LEI".into(),
        provider: "TP-LEI".into(),
        ..Default::default()
    };
    rig.bus
        .publish(&[
            referrals_event(&rig, &person_key, &cancelled),
            referrals_event(&rig, &person_key, &requested("ended")),
            referrals_event(&rig, &person_key, &requested("later")),
        ])
        .await
        .unwrap();
    rig.wait_count(
        "the referral after",
        "SELECT count(*) FROM deliveries WHERE trigger_id = 'later'",
        1,
    )
    .await;
    assert_eq!(
        rig.count(
            "SELECT count(*) FROM deliveries WHERE trigger_id = 'ended' AND state = 'withdrawn'"
        )
        .await,
        1,
        "the ended referral's push is withdrawn before it was owed"
    );
    assert_eq!(
        rig.count("SELECT count(*) FROM deliveries WHERE trigger_id = 'ended'")
            .await,
        1
    );
    assert_eq!(
        rig.count(
            "SELECT count(*) FROM deliveries WHERE trigger_id = 'later' AND state = 'pending'"
        )
        .await,
        1,
        "the referral after it owes its push"
    );
}
