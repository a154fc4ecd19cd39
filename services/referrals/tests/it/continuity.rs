use crate::fixtures::{self, release};
use crate::harness::{TestService, WAIT};
use throughcare_platform::testing::eventually;
use throughcare_proto::events::v1 as events;
use throughcare_proto::referrals::v1::*;
use tokio_stream::StreamExt;
use tonic::Code;

async fn task_state(svc: &TestService, release_id: &str, rule: &str) -> i32 {
    let tasks = svc
        .continuity("EMR-LEI")
        .list_continuity_tasks(ListContinuityTasksRequest {
            release_id: release_id.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .tasks;
    tasks.iter().find(|t| t.rule_id == rule).unwrap().state
}

pub async fn missed_deadlines_go_overdue_and_alerts_are_acknowledged(svc: TestService) {
    let mut watch = svc
        .continuity("EMR-LEI")
        .watch_continuity_tasks(WatchContinuityTasksRequest::default())
        .await
        .unwrap()
        .into_inner();
    let notified = svc
        .transitions("LEI")
        .notify_release(release("rel", 50, fixtures::complex_needs()))
        .await
        .unwrap()
        .into_inner();
    let release_id = notified.release.unwrap().release_id;
    let alert = notified
        .tasks_opened
        .iter()
        .find(|t| t.kind == ContinuityTaskKind::Alert as i32)
        .unwrap()
        .clone();
    let opened = tokio::time::timeout(WAIT, watch.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        opened.task.unwrap().state,
        ContinuityTaskState::Open as i32,
        "probation hears at once"
    );

    // Nothing is overdue before its deadline...
    svc.clock.advance(chrono::Duration::hours(12));
    svc.clock
        .wait_for_periodic_runs(2, "two overdue sweeps at the new time")
        .await;
    assert_eq!(
        task_state(&svc, &release_id, "opioid-substitution-continuity").await,
        ContinuityTaskState::Open as i32
    );

    // ...and the OST deadline (the end of the day after release day, so two
    // days after the release two days from now) passes first.
    svc.clock.advance(chrono::Duration::days(4));
    eventually(WAIT, "the OST task to go overdue", || async {
        (task_state(&svc, &release_id, "opioid-substitution-continuity").await
            == ContinuityTaskState::Overdue as i32)
            .then_some(())
    })
    .await;
    assert_eq!(
        task_state(&svc, &release_id, "gp-registration").await,
        ContinuityTaskState::Open as i32,
        "due in 7 days"
    );

    let ack = |key: &str, task_id: &str| AcknowledgeAlertRequest {
        idempotency_key: key.into(),
        task_id: task_id.into(),
    };
    let acknowledged = svc
        .continuity("EMR-LEI")
        .acknowledge_alert(ack("ack", &alert.task_id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        acknowledged.task.unwrap().state,
        ContinuityTaskState::Closed as i32
    );
    let again = svc
        .continuity("EMR-LEI")
        .acknowledge_alert(ack("ack-2", &alert.task_id))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    let gp = svc
        .continuity("EMR-LEI")
        .list_continuity_tasks(ListContinuityTasksRequest {
            release_id: release_id.clone(),
            states: vec![ContinuityTaskState::Open as i32],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .tasks;
    assert!(
        gp.iter()
            .all(|t| t.state == ContinuityTaskState::Open as i32)
    );
    let not_an_alert = svc
        .continuity("EMR-LEI")
        .acknowledge_alert(ack("ack-3", &gp[0].task_id))
        .await
        .unwrap_err();
    assert_eq!(not_an_alert.code(), Code::FailedPrecondition);
    let stranger = svc
        .continuity("EMR-NOT")
        .acknowledge_alert(ack("ack-4", &alert.task_id))
        .await
        .unwrap_err();
    assert_eq!(stranger.code(), Code::NotFound);

    let mut log = svc.events().await;
    let overdue: events::ContinuityTaskOverdue = log
        .wait_for("the overdue event", |es| {
            es.iter()
                .find(|(e, _)| e.is::<events::ContinuityTaskOverdue>())
                .map(|(e, _)| e.decode().unwrap())
        })
        .await;
    assert_eq!(overdue.responsible_organisation, "EMR-LEI");
    // The watch sees the rest: three more openings, the two missed deadlines
    // (OST and the unacknowledged alert) and the acknowledgement.
    let mut changes = Vec::new();
    while changes.len() < 6 {
        let item = tokio::time::timeout(WAIT, watch.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let task = item.task.unwrap();
        changes.push((task.rule_id, task.state));
    }
    let overdue: Vec<&str> = changes
        .iter()
        .filter(|(_, s)| *s == ContinuityTaskState::Overdue as i32)
        .map(|(r, _)| r.as_str())
        .collect();
    assert_eq!(overdue.len(), 2);
    assert!(
        overdue.contains(&"opioid-substitution-continuity") && overdue.contains(&"self-harm-alert")
    );
    assert_eq!(
        changes.last().unwrap(),
        &(
            "self-harm-alert".to_owned(),
            ContinuityTaskState::Closed as i32
        )
    );
}

pub async fn a_release_without_supervision_makes_the_prison_responsible(svc: TestService) {
    let mut request = release("rel", 51, fixtures::gp_only());
    request.reason = ReleaseReason::SentenceEnd as i32;
    fixtures::without_supervision(&mut request);
    let notified = svc
        .transitions("LEI")
        .notify_release(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(notified.tasks_opened[0].responsible_organisation, "LEI");
    let on_licence_needs_pdu = {
        let mut r = release("rel-2", 52, fixtures::gp_only());
        r.destination
            .as_mut()
            .unwrap()
            .probation_delivery_unit
            .clear();
        svc.transitions("LEI").notify_release(r).await.unwrap_err()
    };
    assert_eq!(
        fixtures::fields(&on_licence_needs_pdu),
        ["destination.probation_delivery_unit"]
    );
}
