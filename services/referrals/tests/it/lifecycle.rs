use crate::fixtures::{self, release, update};
use crate::harness::TestService;
use prost_types::Timestamp;
use throughcare_proto::events::v1 as events;
use throughcare_proto::referrals::v1::update_referral_request::Action as A;
use throughcare_proto::referrals::v1::*;
use throughcare_proto::types::v1::ServiceType;
use tonic::Code;

fn appointment() -> A {
    A::BookAppointment(BookAppointmentAction {
        appointment_at: Some(Timestamp {
            seconds: crate::harness::start().timestamp() + 3 * 86_400,
            nanos: 0,
        }),
    })
}

/// Every action, by name, as the tests take it.
fn actions() -> Vec<(&'static str, A)> {
    vec![
        ("acknowledge", A::Acknowledge(AcknowledgeAction {})),
        ("accept", A::Accept(AcceptAction {})),
        (
            "reject",
            A::Reject(RejectAction {
                reason: RejectionReason::NoCapacity as i32,
                reason_text: String::new(),
            }),
        ),
        ("book", appointment()),
        ("attend", A::RecordAttendance(RecordAttendanceAction {})),
        ("dna", A::RecordDidNotAttend(RecordDidNotAttendAction {})),
        ("complete", A::Complete(CompleteAction {})),
        ("discharge", A::Discharge(DischargeAction {})),
        (
            "cancel",
            A::Cancel(CancelAction {
                reason: CancellationReason::NoLongerNeeded as i32,
            }),
        ),
        ("decline", A::Decline(DeclineAction {})),
    ]
}

fn action(name: &str) -> A {
    actions().into_iter().find(|(n, _)| *n == name).unwrap().1
}

async fn request(svc: &TestService, n: u32, service: ServiceType, provider: &str) -> Referral {
    svc.referrals("EMR-LEI")
        .request_referral(fixtures::referral(
            &format!("req-{n}-{provider}"),
            n,
            service,
            provider,
        ))
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap()
}

/// Takes `steps` (by provider, except cancel) and returns the referral after the last.
async fn walk(svc: &TestService, referral: &Referral, steps: &[&str]) -> Referral {
    let mut current = referral.clone();
    for (i, step) in steps.iter().enumerate() {
        let who = if *step == "cancel" {
            "EMR-LEI"
        } else {
            &*current.provider
        };
        let key = format!("{}-{i}-{step}", current.referral_id);
        current = svc
            .referrals(who)
            .update_referral(update(&key, &current.referral_id, action(step)))
            .await
            .unwrap()
            .into_inner()
            .referral
            .unwrap();
    }
    current
}

pub async fn the_whole_lifecycle_closes_the_continuity_task(svc: TestService) {
    let notified = svc
        .transitions("LEI")
        .notify_release(release("rel", 10, fixtures::complex_needs()))
        .await
        .unwrap()
        .into_inner();
    let ost = notified
        .tasks_opened
        .iter()
        .find(|t| t.rule_id == "opioid-substitution-continuity")
        .unwrap()
        .clone();
    let referral = request(&svc, 10, ServiceType::SubstanceMisuseTreatment, "TP-LEI").await;
    assert_eq!(referral.state, ReferralState::Requested as i32);
    let accepted = walk(&svc, &referral, &["acknowledge", "accept"]).await;
    assert_eq!(accepted.state, ReferralState::Accepted as i32);

    let tasks = svc
        .continuity("EMR-LEI")
        .list_continuity_tasks(ListContinuityTasksRequest {
            release_id: ost.release_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .tasks;
    let closed = tasks.iter().find(|t| t.task_id == ost.task_id).unwrap();
    assert_eq!(
        closed.state,
        ContinuityTaskState::Closed as i32,
        "accepting the referral closes the OST task"
    );
    assert_eq!(closed.referral_id, referral.referral_id);

    let done = walk(&svc, &accepted, &["book", "attend", "complete"]).await;
    assert_eq!(done.state, ReferralState::Completed as i32);
    assert_eq!(done.version, 6);
    let states: Vec<i32> = done.history.iter().map(|h| h.to_state).collect();
    assert_eq!(states, [1, 2, 3, 5, 6, 8], "the full history is kept");
    assert!(done.history.iter().skip(1).all(|h| h.actor == "TP-LEI"));
    assert!(done.appointment_at.is_some());

    let mut log = svc.events().await;
    log.wait_for("the lifecycle's events", |es| {
        let changes = es
            .iter()
            .filter(|(e, _)| e.is::<events::ReferralStateChanged>())
            .count();
        let closed = es
            .iter()
            .any(|(e, _)| e.is::<events::ContinuityTaskClosed>());
        let engaged = crate::harness::observations(es)
            .iter()
            .any(|o| o.fact == events::ObservedFact::EngagedWithCommunityTreatment as i32);
        (changes == 5 && closed && engaged).then_some(())
    })
    .await;
    let accepted_event = log
        .all::<events::ReferralStateChanged>()
        .into_iter()
        .find(|c| c.to_state == ReferralState::Accepted as i32)
        .unwrap();
    assert_eq!(
        (
            accepted_event.actor.as_str(),
            accepted_event.provider.as_str()
        ),
        ("TP-LEI", "TP-LEI")
    );
}

/// The paths that reach every state, and who may act from each.
const REACH: &[(&[&str], ReferralState)] = &[
    (&[], ReferralState::Requested),
    (&["acknowledge"], ReferralState::Acknowledged),
    (&["acknowledge", "accept"], ReferralState::Accepted),
    (&["acknowledge", "reject"], ReferralState::Rejected),
    (
        &["acknowledge", "accept", "book"],
        ReferralState::AppointmentBooked,
    ),
    (
        &["acknowledge", "accept", "book", "attend"],
        ReferralState::Attended,
    ),
    (
        &["acknowledge", "accept", "book", "dna"],
        ReferralState::DidNotAttend,
    ),
    (
        &["acknowledge", "accept", "book", "attend", "complete"],
        ReferralState::Completed,
    ),
    (
        &["acknowledge", "accept", "book", "dna", "discharge"],
        ReferralState::Discharged,
    ),
    (&["cancel"], ReferralState::Cancelled),
    (&["decline"], ReferralState::Declined),
];

pub async fn every_illegal_transition_is_refused_with_the_current_state(svc: TestService) {
    use throughcare_referrals::domain::referral::{self as domain, Party};
    let sample = |name: &str| -> domain::Action {
        match name {
            "acknowledge" => domain::Action::Acknowledge,
            "accept" => domain::Action::Accept,
            "reject" => domain::Action::Reject {
                reason: RejectionReason::NoCapacity,
                text: None,
            },
            "book" => domain::Action::BookAppointment {
                at: chrono::Utc::now(),
            },
            "attend" => domain::Action::RecordAttendance,
            "dna" => domain::Action::RecordDidNotAttend,
            "complete" => domain::Action::Complete,
            "discharge" => domain::Action::Discharge,
            "cancel" => domain::Action::Cancel {
                reason: CancellationReason::NoLongerNeeded,
            },
            _ => domain::Action::Decline,
        }
    };
    let mut refused = 0;
    for (i, (path, state)) in REACH.iter().enumerate() {
        let referral = request(&svc, 100 + i as u32, ServiceType::GpRegistration, "C82010").await;
        let reached = walk(&svc, &referral, path).await;
        assert_eq!(reached.state, *state as i32);
        let current = domain::ReferralState::from_proto(*state).unwrap();
        for (name, wire) in actions() {
            for (who, party) in [("EMR-LEI", Party::Referrer), ("C82010", Party::Provider)] {
                let Err(expected) = domain::transition(current, &sample(name), &[party]) else {
                    continue;
                };
                let key = format!("illegal-{i}-{name}-{who}");
                let status = svc
                    .referrals(who)
                    .update_referral(update(&key, &referral.referral_id, wire.clone()))
                    .await
                    .unwrap_err();
                match expected {
                    domain::TransitionError::WrongParty { .. } => assert_eq!(
                        status.code(),
                        Code::PermissionDenied,
                        "{name} by {who} from {state:?}"
                    ),
                    domain::TransitionError::WrongState { .. } => {
                        assert_eq!(
                            status.code(),
                            Code::FailedPrecondition,
                            "{name} by {who} from {state:?}"
                        );
                        assert!(
                            status.message().contains(current.as_str()),
                            "names the current state: {}",
                            status.message()
                        );
                    }
                }
                refused += 1;
            }
        }
        let after = svc
            .referrals("EMR-LEI")
            .get_referral(GetReferralRequest {
                referral_id: referral.referral_id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .referral
            .unwrap();
        assert_eq!(
            after.version, reached.version,
            "refused actions change nothing"
        );
    }
    assert!(refused > 150, "checked {refused} refusals");
}

pub async fn strangers_see_nothing_and_parties_only_their_part(svc: TestService) {
    let referral = request(&svc, 20, ServiceType::MentalHealthAssessment, "RT5").await;
    let get = GetReferralRequest {
        referral_id: referral.referral_id.clone(),
    };
    for stranger in ["TP-LEI", "EMR-NOT", "LEI"] {
        let status = svc
            .referrals(stranger)
            .get_referral(get.clone())
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::NotFound, "{stranger}");
        let status = svc
            .referrals(stranger)
            .update_referral(update("x", &referral.referral_id, action("acknowledge")))
            .await
            .unwrap_err();
        assert_eq!(
            status.code(),
            Code::NotFound,
            "{stranger} may not even learn it exists"
        );
    }
    assert_eq!(
        svc.referrals("QK1")
            .get_referral(get)
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    let status = svc
        .referrals("EMR-LEI")
        .update_referral(update("y", &referral.referral_id, action("acknowledge")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(status.message().contains("receiving provider"));
    let status = svc
        .referrals("RT5")
        .update_referral(update("z", &referral.referral_id, action("cancel")))
        .await
        .unwrap_err();
    assert!(status.message().contains("referrer"), "{status:?}");
    let status = svc
        .referrals("TP-LEI")
        .request_referral(fixtures::referral(
            "p",
            21,
            ServiceType::SexualHealth,
            "RT5",
        ))
        .await
        .unwrap_err();
    assert_eq!(
        status.code(),
        Code::PermissionDenied,
        "providers do not request referrals"
    );
}

pub async fn one_active_referral_per_person_service_and_provider(svc: TestService) {
    let first = request(&svc, 30, ServiceType::SmokingCessation, "C82010").await;
    let duplicate = svc
        .referrals("EMR-LEI")
        .request_referral(fixtures::referral(
            "again",
            30,
            ServiceType::SmokingCessation,
            "C82010",
        ))
        .await
        .unwrap_err();
    assert_eq!(duplicate.code(), Code::AlreadyExists);
    assert!(duplicate.message().contains(&first.referral_id));
    request(&svc, 30, ServiceType::SmokingCessation, "RT5").await;
    walk(&svc, &first, &["cancel"]).await;
    svc.referrals("EMR-LEI")
        .request_referral(fixtures::referral(
            "after-cancel",
            30,
            ServiceType::SmokingCessation,
            "C82010",
        ))
        .await
        .unwrap();
}

pub async fn replayed_updates_change_nothing(svc: TestService) {
    let referral = request(&svc, 40, ServiceType::Vaccination, "C82010").await;
    let ack = update("ack-once", &referral.referral_id, action("acknowledge"));
    let first = svc
        .referrals("C82010")
        .update_referral(ack.clone())
        .await
        .unwrap()
        .into_inner();
    let replay = svc
        .referrals("C82010")
        .update_referral(ack)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first, replay);
    let current = svc
        .referrals("C82010")
        .get_referral(GetReferralRequest {
            referral_id: referral.referral_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap();
    assert_eq!(current.version, 2);
    let reused = svc
        .referrals("C82010")
        .update_referral(update("ack-once", &referral.referral_id, action("accept")))
        .await
        .unwrap_err();
    assert_eq!(reused.code(), Code::AlreadyExists);
    let rejected_other = svc
        .referrals("C82010")
        .update_referral(update(
            "rej",
            &referral.referral_id,
            A::Reject(RejectAction {
                reason: RejectionReason::Other as i32,
                reason_text: String::new(),
            }),
        ))
        .await
        .unwrap_err();
    assert_eq!(fixtures::fields(&rejected_other), ["reject.reason_text"]);
}
