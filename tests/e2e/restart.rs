//! A service killed mid-flight (SIGKILL: no goodbye to its consumer group)
//! and started again must resume consuming promptly, on the test broker as on
//! Apache Kafka: its consumers rejoin as the static group members they were
//! (`THROUGHCARE_BUS__INSTANCE_ID`) and take their partitions straight back,
//! rather than waiting on the coordinator to notice a dead member.

use crate::journey::{System, person, release_reaches_probation, release_request};
use crate::split::{Running, Split};
use std::time::Duration;

/// Long enough for a rejoin and a delivery; shorter than the consumers'
/// session timeout (30 s), so a replacement that had to wait for the dead
/// member to expire would fail here.
const RESUMED_WITHIN: Duration = Duration::from_secs(25);

#[tokio::test]
async fn a_killed_sharing_service_resumes_consuming_when_restarted() {
    let split = Split::new().await;
    let referrals = split.start("referrals").await;
    let mut sharing = split.start("sharing").await;
    let token = |organisation: &str, role: &str| format!("e2e-token-{organisation}-{role}");
    let before = system(&referrals, &sharing, &token);
    release_reaches_probation(&before, 11, Duration::from_secs(60)).await;

    sharing.kill();
    let sharing = split.restart(sharing).await;
    let after = system(&referrals, &sharing, &token);
    release_reaches_probation(&after, 12, RESUMED_WITHIN).await;
}

fn system<'a>(
    referrals: &'a Running,
    sharing: &'a Running,
    token: &'a dyn Fn(&str, &str) -> String,
) -> System<'a> {
    System {
        referrals: &referrals.endpoint,
        sharing: &sharing.endpoint,
        indicators: "",
        token,
    }
}

/// Stopped as Kubernetes stops a pod (SIGTERM) while a prison's system is
/// notifying releases: calls in flight are drained, the process exits 0
/// within the default grace period, every acknowledged release is kept and
/// published, and callers retrying what was not acknowledged (same keys)
/// leave each release stored and published exactly once.
#[tokio::test]
async fn a_terminated_service_drains_exits_in_time_and_loses_nothing() {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::{Arc, Mutex};
    use throughcare_platform::bus::Event;
    use throughcare_proto::events::v1::ReleaseNotified;
    use throughcare_proto::referrals::v1::GetReleaseRequest;
    use throughcare_proto::referrals::v1::transitions_service_client::TransitionsServiceClient;
    use throughcare_proto::topics;

    let split = Split::new().await;
    let referrals = split.start("referrals").await;
    let token = |organisation: &str, role: &str| format!("e2e-token-{organisation}-{role}");
    let prison = |endpoint: String| async move {
        let system = System {
            referrals: &endpoint,
            sharing: "",
            indicators: "",
            token: &token,
        };
        TransitionsServiceClient::new(system.authed(&endpoint, "LEI", "system").await)
    };
    // Eight callers notify releases one after another, each until a call of
    // theirs is not answered (the service has gone).
    let next = Arc::new(AtomicU32::new(500));
    let answers = Arc::new(Mutex::new((BTreeMap::new(), Vec::new())));
    let mut callers = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let mut client = prison(referrals.endpoint.clone()).await;
        let (next, answers) = (next.clone(), answers.clone());
        callers.spawn(async move {
            loop {
                let seed = next.fetch_add(1, Ordering::SeqCst);
                let answer = client
                    .notify_release(release_request(seed, &person(seed)))
                    .await;
                let mut answers = answers.lock().unwrap();
                match answer {
                    Ok(response) => {
                        let release = response.into_inner().release.unwrap();
                        answers.0.insert(seed, release.release_id);
                    }
                    Err(_) => {
                        answers.1.push(seed);
                        return;
                    }
                }
            }
        });
    }
    // Under way: stop it as Kubernetes would.
    while answers.lock().unwrap().0.len() < 20 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let Running {
        process, database, ..
    } = referrals;
    let exit = process.terminate(Duration::from_secs(30)).await;
    assert!(exit.success(), "exits 0 within the grace period: {exit:?}");
    callers.join_all().await;
    let (mut acknowledged, unanswered) = std::mem::take(&mut *answers.lock().unwrap());
    let sent = acknowledged.len() + unanswered.len();
    eprintln!(
        "at SIGTERM: {} acknowledged, {} unanswered",
        acknowledged.len(),
        unanswered.len()
    );
    // Started again, every acknowledged release is there; the callers retry
    // the rest with the same keys.
    let referrals = split.spawn("referrals", database).await;
    let mut client = prison(referrals.endpoint.clone()).await;
    for release_id in acknowledged.values() {
        let found = client
            .get_release(GetReleaseRequest {
                release_id: release_id.clone(),
            })
            .await;
        assert!(found.is_ok(), "acknowledged release kept: {found:?}");
    }
    for seed in unanswered {
        let release = client
            .notify_release(release_request(seed, &person(seed)))
            .await
            .expect("a retry after the restart is answered")
            .into_inner()
            .release
            .unwrap();
        acknowledged.insert(seed, release.release_id);
    }

    // Each release published exactly once.
    let bus = split.bus().await;
    let topic = bus.topic(topics::REFERRALS_EVENTS);
    let published = throughcare_platform::testing::eventually(
        Duration::from_secs(60),
        "every release published",
        || async {
            let mut replay = bus.replay(&topic).await.unwrap();
            let mut seen: BTreeMap<String, usize> = BTreeMap::new();
            while let Some(received) = replay.next().await.unwrap() {
                let event = Event::from_record(&received.record).unwrap();
                if event.is::<ReleaseNotified>() {
                    let notified: ReleaseNotified = event.decode().unwrap();
                    *seen.entry(notified.release_id).or_default() += 1;
                }
            }
            (seen.len() >= sent).then_some(seen)
        },
    )
    .await;
    assert_eq!(published.len(), sent);
    assert!(published.values().all(|n| *n == 1), "{published:?}");
    for release_id in acknowledged.values() {
        assert!(published.contains_key(release_id));
    }
}
