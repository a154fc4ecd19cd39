use crate::fixtures::{self, complex_needs, release};
use crate::harness::{TestService, nhs};
use throughcare_platform::sealing::Sealed;
use throughcare_proto::events::v1 as events;
use throughcare_proto::referrals::v1 as pb;
use throughcare_proto::types::v1 as types;
use tonic::Code;

pub async fn a_release_opens_its_pathway_and_announces_it(svc: TestService) {
    let response = svc
        .transitions("LEI")
        .notify_release(release("rel-1", 1, complex_needs()))
        .await
        .unwrap()
        .into_inner();
    let released = response.release.unwrap();
    assert_eq!(released.state, pb::ReleaseState::Notified as i32);
    assert_eq!(
        released.destination.as_ref().unwrap().probation_region,
        "EMR",
        "region comes from the registry"
    );
    let mut rules: Vec<&str> = response
        .tasks_opened
        .iter()
        .map(|t| t.rule_id.as_str())
        .collect();
    rules.sort();
    assert_eq!(
        rules,
        [
            "gp-registration",
            "mental-health-continuity",
            "opioid-substitution-continuity",
            "self-harm-alert"
        ]
    );
    assert!(
        response
            .tasks_opened
            .iter()
            .all(|t| t.responsible_organisation == "EMR-LEI")
    );

    // The supervising probation delivery unit sees the release and its tasks.
    let seen = svc
        .transitions("EMR-LEI")
        .get_release(pb::GetReleaseRequest {
            release_id: released.release_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(seen.tasks.len(), 4);

    let mut log = svc.events().await;
    let notified: events::ReleaseNotified = log
        .wait_for("ReleaseNotified", |es| {
            es.iter()
                .find(|(e, _)| e.is::<events::ReleaseNotified>())
                .map(|(e, _)| e.decode().unwrap())
        })
        .await;
    assert_eq!(notified.release_id, released.release_id);
    let person_key = notified.person_key.clone();
    let (event, key) = log
        .events
        .iter()
        .find(|(e, _)| e.is::<events::ReleaseNotified>())
        .unwrap();
    assert_eq!(key, &person_key, "records are keyed by the person key");
    assert_eq!(event.source, "/throughcare/referrals");
    let record = event.to_record();
    for header in [
        "ce_id",
        "ce_type",
        "ce_source",
        "ce_specversion",
        "ce_time",
        "content-type",
    ] {
        assert!(record.header(header).is_some(), "{header}");
    }

    // The health summary travels sealed; the right key opens it, and it is bound to its record.
    let sealed: events::SealedHealthRecord = log
        .wait_for("SealedHealthRecord", |es| {
            es.iter()
                .find(|(e, _)| e.is::<events::SealedHealthRecord>())
                .map(|(e, _)| e.decode().unwrap())
        })
        .await;
    let binding =
        throughcare_proto::sealed_health_record_binding(&sealed.record_id, &sealed.person_key);
    let body = Sealed {
        key_id: sealed.key_id.clone(),
        nonce: sealed.nonce.clone(),
        ciphertext: sealed.ciphertext.clone(),
    };
    let plain: events::HealthRecord =
        prost::Message::decode(svc.keyring.open(&body, &binding).unwrap().as_slice()).unwrap();
    assert!(
        plain
            .health
            .unwrap()
            .substance_misuse
            .unwrap()
            .on_opioid_substitution_therapy
    );
    assert_eq!(
        plain.person.unwrap().identifiers.unwrap().nhs_number,
        nhs(1)
    );
    assert!(svc.keyring.open(&body, b"another record").is_err());

    // Observations and lifecycle events carry codes and pseudonyms only.
    log.wait_for("observations and the alert", |es| {
        let observations = crate::harness::observations(es).len();
        let opened = es
            .iter()
            .filter(|(e, _)| e.is::<events::ContinuityTaskOpened>())
            .count();
        (observations >= 8 && opened == 4).then_some(())
    })
    .await;
    let facts: Vec<i32> = crate::harness::observations(&log.events)
        .iter()
        .map(|o| o.fact)
        .collect();
    for fact in [
        events::ObservedFact::Released,
        events::ObservedFact::InContact,
        events::ObservedFact::ReleasedWithSubstanceNeed,
        events::ObservedFact::GpNotRegistered,
    ] {
        assert!(facts.contains(&(fact as i32)), "{fact:?}");
    }
    let prison_number = fixtures::ids(1).prison_number;
    for (event, _) in &log.events {
        if event.is::<events::SealedHealthRecord>() {
            continue;
        }
        let bytes = String::from_utf8_lossy(&event.payload);
        assert!(
            !bytes.contains(&nhs(1)) && !bytes.contains(&prison_number),
            "{} leaks an identifier",
            event.event_type
        );
        assert!(
            !bytes.contains("Methadone"),
            "{} leaks a health fact in text",
            event.event_type
        );
    }
}

pub async fn replays_return_the_first_response_and_reused_keys_are_refused(svc: TestService) {
    let mut client = svc.transitions("LEI");
    let first = client
        .notify_release(release("same-key", 2, complex_needs()))
        .await
        .unwrap()
        .into_inner();
    let (releases, tasks) = (
        svc.count("releases").await,
        svc.count("continuity_tasks").await,
    );
    let again = client
        .notify_release(release("same-key", 2, complex_needs()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        first, again,
        "a replay answers exactly as the first call did"
    );
    assert_eq!(
        (
            svc.count("releases").await,
            svc.count("continuity_tasks").await
        ),
        (releases, tasks),
        "no second effect"
    );

    let different = client
        .notify_release(release("same-key", 3, complex_needs()))
        .await
        .unwrap_err();
    assert_eq!(different.code(), Code::AlreadyExists);
    // Keys belong to the caller: another organisation's identical key is its own.
    let nmi = pb::NotifyReleaseRequest {
        releasing_prison: "NMI".into(),
        ..release("same-key", 3, complex_needs())
    };
    svc.transitions("NMI").notify_release(nmi).await.unwrap();
}

pub async fn a_reversal_undoes_what_the_release_started(svc: TestService) {
    let notified = svc
        .transitions("LEI")
        .notify_release(release("rel", 4, complex_needs()))
        .await
        .unwrap()
        .into_inner();
    let release_id = notified.release.unwrap().release_id;
    let referral = svc
        .referrals("EMR-LEI")
        .request_referral(fixtures::referral(
            "ref",
            4,
            types::ServiceType::SubstanceMisuseTreatment,
            "TP-LEI",
        ))
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap();
    assert_eq!(
        referral.release_id, release_id,
        "a referral answering a continuity task joins its release"
    );

    let reverse = |key: &str| pb::ReverseReleaseRequest {
        idempotency_key: key.into(),
        release_id: release_id.clone(),
        reason: pb::ReversalReason::FurtherCharges as i32,
    };
    let denied = svc
        .transitions("NMI")
        .reverse_release(reverse("rev"))
        .await
        .unwrap_err();
    assert_eq!(
        denied.code(),
        Code::NotFound,
        "another prison cannot see this release"
    );
    let reversed = svc
        .transitions("LEI")
        .reverse_release(reverse("rev"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        reversed.release.unwrap().state,
        pb::ReleaseState::Reversed as i32
    );
    assert_eq!(
        (reversed.tasks_revoked, reversed.referrals_cancelled),
        (4, 1)
    );

    let cancelled = svc
        .referrals("TP-LEI")
        .get_referral(pb::GetReferralRequest {
            referral_id: referral.referral_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap();
    assert_eq!(cancelled.state, pb::ReferralState::Cancelled as i32);
    assert_eq!(
        cancelled.cancellation_reason,
        pb::CancellationReason::ReleaseReversed as i32
    );
    let tasks = svc
        .transitions("EMR-LEI")
        .get_release(pb::GetReleaseRequest {
            release_id: release_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .tasks;
    assert!(
        tasks
            .iter()
            .all(|t| t.state == pb::ContinuityTaskState::Revoked as i32)
    );

    let again = svc
        .transitions("LEI")
        .reverse_release(reverse("rev-2"))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);

    let mut log = svc.events().await;
    let (retracted, episode) = log
        .wait_for("the retraction", |es| {
            let retracted = es
                .iter()
                .find(|(e, _)| e.is::<events::ObservationsRetracted>())?;
            let retraction: events::ObservationsRetracted = retracted.0.decode().unwrap();
            let released = crate::harness::observations(es)
                .into_iter()
                .find(|o| o.fact == events::ObservedFact::Released as i32)?;
            Some((retraction, released.episode_key))
        })
        .await;
    assert_eq!(
        retracted.episode_key, episode,
        "the retraction names the release's observations"
    );
    log.wait_for("revocations and the cancellation", |es| {
        let revoked = es
            .iter()
            .filter(|(e, _)| e.is::<events::ContinuityTaskRevoked>())
            .count();
        let cancelled = es
            .iter()
            .filter(|(e, _)| e.is::<events::ReferralStateChanged>())
            .any(|(e, _)| {
                e.decode::<events::ReferralStateChanged>().unwrap().to_state
                    == pb::ReferralState::Cancelled as i32
            });
        let reversed = es.iter().any(|(e, _)| e.is::<events::ReleaseReversed>());
        (revoked == 4 && cancelled && reversed).then_some(())
    })
    .await;
}

pub async fn releases_are_visible_only_to_those_involved(svc: TestService) {
    let release_id = svc
        .transitions("LEI")
        .notify_release(release("rel", 5, fixtures::gp_only()))
        .await
        .unwrap()
        .into_inner()
        .release
        .unwrap()
        .release_id;
    let get = pb::GetReleaseRequest { release_id };
    svc.transitions("LEI")
        .get_release(get.clone())
        .await
        .unwrap();
    svc.transitions("EMR-LEI")
        .get_release(get.clone())
        .await
        .unwrap();
    assert_eq!(
        svc.transitions("EMR-NOT")
            .get_release(get.clone())
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    assert_eq!(
        svc.transitions("NMI")
            .get_release(get.clone())
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    assert_eq!(
        svc.transitions("QK1")
            .get_release(get)
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    let not_a_prison = svc
        .transitions("EMR-LEI")
        .notify_release(release("x", 6, fixtures::gp_only()))
        .await
        .unwrap_err();
    assert_eq!(not_a_prison.code(), Code::PermissionDenied);
    let other_prison = svc
        .transitions("NMI")
        .notify_release(release("x", 6, fixtures::gp_only()))
        .await
        .unwrap_err();
    assert_eq!(
        other_prison.code(),
        Code::PermissionDenied,
        "NMI does not serve LEI"
    );
}

/// Many notifications at once are written in shared transactions; each caller
/// must still get exactly the answer it would have had alone: replays the
/// first answer, a reused key ALREADY_EXISTS, a returning person one identity.
pub async fn concurrent_releases_answer_as_if_each_were_alone(svc: TestService) {
    let client = svc.transitions("LEI");
    let mut calls = Vec::new();
    // People 1..=16, each released once, and each notification sent twice.
    for n in 1..=16 {
        calls.push(release(&format!("first-{n}"), n, complex_needs()));
        calls.push(release(&format!("first-{n}"), n, complex_needs()));
    }
    // People 1..=8 again under new keys: a second release each, same person.
    for n in 1..=8 {
        calls.push(release(&format!("second-{n}"), n, complex_needs()));
    }
    // Keys 1..=4 each used for two different requests: one wins.
    for k in 1..=4 {
        calls.push(release(&format!("contested-{k}"), 100 + k, complex_needs()));
        calls.push(release(&format!("contested-{k}"), 200 + k, complex_needs()));
    }
    let answers = futures::future::join_all(calls.into_iter().map(|request| {
        let mut client = client.clone();
        async move {
            let key = request.idempotency_key.clone();
            (key, client.notify_release(request).await)
        }
    }))
    .await;

    let mut by_key: std::collections::BTreeMap<String, Vec<_>> = Default::default();
    for (key, answer) in answers {
        by_key.entry(key).or_default().push(answer);
    }
    for (key, answers) in &by_key {
        if key.starts_with("first-") {
            let [a, b] = answers.as_slice() else {
                panic!("two calls")
            };
            let (a, b) = (a.as_ref().unwrap().get_ref(), b.as_ref().unwrap().get_ref());
            assert_eq!(
                a, b,
                "{key}: a replay answers exactly as the first call did"
            );
        } else if key.starts_with("contested-") {
            let refused: Vec<Code> = answers
                .iter()
                .filter_map(|a| a.as_ref().err().map(|s| s.code()))
                .collect();
            assert_eq!(
                refused,
                [Code::AlreadyExists],
                "{key}: one wins, one is refused"
            );
        } else {
            assert!(answers[0].is_ok(), "{key}: {:?}", answers[0]);
        }
    }
    let tasks_per_release = by_key["first-1"][0]
        .as_ref()
        .unwrap()
        .get_ref()
        .tasks_opened
        .len() as i64;
    assert_eq!(
        svc.count("releases").await,
        16 + 8 + 4,
        "one release per winning key"
    );
    assert_eq!(
        svc.count("persons").await,
        16 + 4,
        "a returning person keeps one identity"
    );
    assert_eq!(
        svc.count("continuity_tasks").await,
        (16 + 8 + 4) * tasks_per_release
    );
    assert_eq!(svc.count("idempotency_keys").await, 16 + 8 + 4);
}

/// Release reasons mean different things: temporary absence, court and
/// transfer open nothing and count as nothing; a release to hospital opens
/// the hospital pathway and is not a release into the community; a sentence
/// end without supervision opens the community pathway without probation.
pub async fn release_reasons_decide_the_pathway_and_what_is_counted(svc: TestService) {
    use pb::ReleaseReason as R;
    let mut client = svc.transitions("LEI");
    let mut released = Vec::new();
    for (n, reason) in [
        (11, R::TemporaryAbsence),
        (12, R::SentToCourt),
        (13, R::Transferred),
        (14, R::ToHospital),
        (15, R::SentenceEnd),
    ] {
        let mut request = release(&format!("reason-{n}"), n, complex_needs());
        request.reason = reason as i32;
        if reason == R::SentenceEnd {
            fixtures::without_supervision(&mut request);
        }
        let response = client.notify_release(request).await.unwrap().into_inner();
        let mut rules: Vec<String> = response
            .tasks_opened
            .iter()
            .map(|t| t.rule_id.clone())
            .collect();
        rules.sort();
        released.push((reason, response.release.unwrap().release_id, rules));
    }
    let rules_of = |reason| &released.iter().find(|r| r.0 == reason).unwrap().2;
    for reason in [R::TemporaryAbsence, R::SentToCourt, R::Transferred] {
        assert!(
            rules_of(reason).is_empty(),
            "{reason:?} opened {:?}",
            rules_of(reason)
        );
    }
    assert_eq!(
        rules_of(R::ToHospital),
        &["hospital-handover", "self-harm-alert"]
    );
    assert!(rules_of(R::SentenceEnd).contains(&"gp-registration".to_owned()));

    // Each release's person, by its announcement.
    let mut log = svc.events().await;
    let keys: Vec<(R, String)> = log
        .wait_for("five releases announced", |es| {
            let keys: Vec<(R, String)> = released
                .iter()
                .filter_map(|(reason, id, _)| {
                    es.iter()
                        .filter(|(e, _)| e.is::<events::ReleaseNotified>())
                        .map(|(e, _)| e.decode::<events::ReleaseNotified>().unwrap())
                        .find(|n| n.release_id == *id)
                        .map(|n| (*reason, n.person_key))
                })
                .collect();
            (keys.len() == 5).then_some(keys)
        })
        .await;
    let key_of = |reason| keys.iter().find(|k| k.0 == reason).unwrap().1.clone();
    // Those two were notified last: by the time theirs are here, any of the
    // others' would be too (the outbox publishes in order).
    let last = [key_of(R::ToHospital), key_of(R::SentenceEnd)];
    log.wait_for("the last releases' observations", |es| {
        let observed = crate::harness::observations(es);
        last.iter()
            .all(|key| observed.iter().any(|o| o.person_key == *key))
            .then_some(())
    })
    .await;
    let observed = crate::harness::observations(&log.events);
    let facts_of = |reason| -> Vec<events::ObservedFact> {
        let key = key_of(reason);
        observed
            .iter()
            .filter(|o| o.person_key == key)
            .map(|o| o.fact())
            .collect()
    };
    for reason in [R::TemporaryAbsence, R::SentToCourt, R::Transferred] {
        assert!(facts_of(reason).is_empty(), "{reason:?} was counted");
    }
    assert_eq!(
        facts_of(R::ToHospital),
        [events::ObservedFact::ReleasedToHospital]
    );
    let ended = facts_of(R::SentenceEnd);
    assert!(ended.contains(&events::ObservedFact::Released));
    assert!(ended.contains(&events::ObservedFact::GpNotRegistered));
    assert!(
        !ended.contains(&events::ObservedFact::InContact),
        "no supervision, no probation contact"
    );
}
