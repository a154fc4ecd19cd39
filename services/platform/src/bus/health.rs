//! Whether a service's consumers are really consuming. A group member that
//! has been assigned no partitions, or that has records waiting (lag) while it
//! receives none, for longer than the stall window is stalled: the gRPC health
//! service then answers NOT_SERVING (for the server and each service) and the
//! reason is logged, so a health check turns unhealthy and an operator sees
//! why. A member with no partitions counts as stalled: run no more replicas
//! of a service than its topics have partitions. A handler stuck on one
//! record while nothing else waits is not seen here.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a group member may go without partitions, or without progress
/// while records wait, before it counts as stalled: twice the session timeout
/// the Kafka consumers use, so an ordinary rebalance never trips it.
pub const STALL_AFTER: Duration = Duration::from_secs(60);

/// The consumers of one process, shared by their subscriptions and the health
/// reporter.
#[derive(Clone, Debug, Default)]
pub struct ConsumerHealth {
    members: Arc<Mutex<BTreeMap<MemberId, Member>>>,
    next: Arc<AtomicU64>,
}

/// One group member of this process: its group's name and a number.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct MemberId {
    group: String,
    n: u64,
}

#[derive(Debug, Clone, Copy)]
struct Member {
    assigned: usize,
    /// When the member last had no partitions, if it has none now.
    unassigned_since: Option<Instant>,
    /// Records waiting in its partitions, as the client last reported.
    lag: i64,
    /// When it last received a record, or last had nothing to do.
    progressed_at: Instant,
}

impl ConsumerHealth {
    pub fn new() -> Self {
        Self::default()
    }

    fn update(&self, member: &MemberId, change: impl FnOnce(&mut Member, Instant)) {
        let now = Instant::now();
        let mut members = self.members.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(state) = members.get_mut(member) {
            change(state, now);
        }
    }

    /// A member of `group` joined, with nothing assigned yet.
    pub fn joined(&self, group: &str) -> MemberId {
        let id = MemberId {
            group: group.to_owned(),
            n: self.next.fetch_add(1, Ordering::Relaxed),
        };
        let now = Instant::now();
        let state = Member {
            assigned: 0,
            unassigned_since: Some(now),
            lag: 0,
            progressed_at: now,
        };
        let mut members = self.members.lock().unwrap_or_else(|p| p.into_inner());
        members.insert(id.clone(), state);
        id
    }

    /// The member now holds `partitions` partitions.
    pub fn assigned(&self, member: &MemberId, partitions: usize) {
        self.update(member, |m, now| {
            m.assigned = partitions;
            m.unassigned_since = match (partitions, m.unassigned_since) {
                (0, since) => since.or(Some(now)),
                _ => None,
            };
            m.progressed_at = now;
        });
    }

    /// The total records waiting in the member's partitions.
    pub fn lag(&self, member: &MemberId, lag: i64) {
        self.update(member, |m, now| {
            if lag == 0 || m.lag == 0 {
                m.progressed_at = now;
            }
            m.lag = lag;
        });
    }

    /// The member received a record.
    pub fn progressed(&self, member: &MemberId) {
        self.update(member, |m, now| m.progressed_at = now);
    }

    /// The member left (shut down): it no longer counts.
    pub fn left(&self, member: &MemberId) {
        let mut members = self.members.lock().unwrap_or_else(|p| p.into_inner());
        members.remove(member);
    }

    /// Why this process is not consuming, if it is not: the first stalled
    /// group and how. Names only groups and counts.
    pub fn problem(&self, stall_after: Duration) -> Option<String> {
        let now = Instant::now();
        let members = self.members.lock().unwrap_or_else(|p| p.into_inner());
        members.iter().find_map(|(MemberId { group, .. }, m)| {
            if let Some(since) = m.unassigned_since
                && now.duration_since(since) > stall_after
            {
                return Some(format!(
                    "consumer group {group} has had no partitions assigned for {}s",
                    now.duration_since(since).as_secs()
                ));
            }
            (m.lag > 0 && now.duration_since(m.progressed_at) > stall_after).then(|| {
                format!(
                    "consumer group {group} has {} records waiting and has received none for {}s",
                    m.lag,
                    now.duration_since(m.progressed_at).as_secs()
                )
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_without_partitions_is_stalled_after_the_window() {
        let health = ConsumerHealth::new();
        let g = health.joined("g");
        assert_eq!(health.problem(Duration::from_secs(60)), None);
        std::thread::sleep(Duration::from_millis(2));
        let problem = health.problem(Duration::from_millis(1)).expect("stalled");
        assert!(
            problem.contains("consumer group g has had no partitions"),
            "{problem}"
        );
        health.assigned(&g, 3);
        assert_eq!(health.problem(Duration::ZERO), None);
        health.assigned(&g, 0);
        health.left(&g);
        assert_eq!(health.problem(Duration::ZERO), None);
    }

    #[test]
    fn waiting_records_without_progress_are_a_stall() {
        let health = ConsumerHealth::new();
        let g = health.joined("g");
        health.assigned(&g, 2);
        health.lag(&g, 0);
        assert_eq!(health.problem(Duration::ZERO), None);
        health.lag(&g, 40);
        std::thread::sleep(Duration::from_millis(5));
        let problem = health.problem(Duration::from_millis(1)).expect("stalled");
        assert!(problem.contains("40 records waiting"), "{problem}");
        health.progressed(&g);
        assert_eq!(health.problem(Duration::from_secs(60)), None);
    }
}
