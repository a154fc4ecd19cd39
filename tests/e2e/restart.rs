//! A service killed mid-flight (SIGKILL: no goodbye to its consumer group)
//! and started again must resume consuming promptly, on the test broker as on
//! Apache Kafka: its consumers rejoin as the static group members they were
//! (`THROUGHCARE_BUS__INSTANCE_ID`) and take their partitions straight back,
//! rather than waiting on the coordinator to notice a dead member.

use crate::journey::{System, release_reaches_probation};
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
