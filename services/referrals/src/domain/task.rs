//! Continuity tasks: what a release's pathway rules opened, and their life.

use super::referral::ReferralState;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use throughcare_proto::referrals::v1 as pb;
use throughcare_proto::types::v1::ServiceType;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    Referral,
    Alert,
}

impl TaskKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::Referral => "referral",
            TaskKind::Alert => "alert",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [TaskKind::Referral, TaskKind::Alert]
            .into_iter()
            .find(|k| k.as_str() == value)
    }

    pub fn to_proto(self) -> pb::ContinuityTaskKind {
        match self {
            TaskKind::Referral => pb::ContinuityTaskKind::Referral,
            TaskKind::Alert => pb::ContinuityTaskKind::Alert,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    Open,
    Overdue,
    Closed,
    Revoked,
}

impl TaskState {
    pub const ALL: [TaskState; 4] = [
        TaskState::Open,
        TaskState::Overdue,
        TaskState::Closed,
        TaskState::Revoked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Open => "open",
            TaskState::Overdue => "overdue",
            TaskState::Closed => "closed",
            TaskState::Revoked => "revoked",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == value)
    }

    /// Still waiting for something to happen.
    pub fn is_pending(self) -> bool {
        matches!(self, TaskState::Open | TaskState::Overdue)
    }

    pub fn to_proto(self) -> pb::ContinuityTaskState {
        match self {
            TaskState::Open => pb::ContinuityTaskState::Open,
            TaskState::Overdue => pb::ContinuityTaskState::Overdue,
            TaskState::Closed => pb::ContinuityTaskState::Closed,
            TaskState::Revoked => pb::ContinuityTaskState::Revoked,
        }
    }

    pub fn from_proto(state: pb::ContinuityTaskState) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.to_proto() == state)
    }
}

/// A continuity task as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub task_id: String,
    pub release_id: String,
    pub person_key: String,
    pub rule_id: String,
    pub kind: TaskKind,
    pub service: Option<ServiceType>,
    pub closes_on: Option<ClosesOn>,
    pub responsible: String,
    pub state: TaskState,
    pub opened_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub referral_id: Option<String>,
}

/// The referral state that closes a referral task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClosesOn {
    Accepted,
    AppointmentBooked,
    Attended,
}

impl ClosesOn {
    pub fn state(self) -> ReferralState {
        match self {
            ClosesOn::Accepted => ReferralState::Accepted,
            ClosesOn::AppointmentBooked => ReferralState::AppointmentBooked,
            ClosesOn::Attended => ReferralState::Attended,
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            ClosesOn::Accepted,
            ClosesOn::AppointmentBooked,
            ClosesOn::Attended,
        ]
        .into_iter()
        .find(|c| c.state().as_str() == value)
    }

    /// Whether a referral now in `state` satisfies this.
    pub fn satisfied_by(self, state: ReferralState) -> bool {
        match (state.progress(), self.state().progress()) {
            (Some(reached), Some(needed)) => reached >= needed,
            _ => false,
        }
    }
}
