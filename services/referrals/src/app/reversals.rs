//! Reversing a release notified in error (or a release that did not happen),
//! and reading a release back with its tasks.

use super::App;
use crate::domain::fields;
use crate::domain::release::{ReleaseState, serves_prison};
use crate::domain::task::{Task, TaskState};
use crate::error::{Error, Result};
use crate::events;
use crate::store::rows::enum_name;
use crate::store::write;
use chrono::{DateTime, Utc};
use throughcare_platform::clock::to_timestamp;
use throughcare_platform::idempotency::once;
use throughcare_platform::identity::Caller;
use throughcare_platform::validation::FieldViolation;
use throughcare_platform::work::Work;
use throughcare_proto::events::v1 as pb_events;
use throughcare_proto::referrals::v1 as pb;
use throughcare_proto::types::v1::PersonIdentifiers;

impl App {
    pub async fn reverse_release(
        &self,
        caller: &Caller,
        request: &pb::ReverseReleaseRequest,
    ) -> Result<pb::ReverseReleaseResponse> {
        let now = self.now();
        let reason = fields::required_enum::<pb::ReversalReason>(request.reason, "reason")?;
        if request.release_id.is_empty() {
            return Err(FieldViolation::missing("release_id").into());
        }
        once(&self.transactions, caller.code(), request, move |work| {
            self.record_reversal(work, caller, &request.release_id, reason, now)
        })
        .await
    }

    async fn record_reversal(
        &self,
        mut work: Work,
        caller: &Caller,
        release_id: &str,
        reason: pb::ReversalReason,
        now: DateTime<Utc>,
    ) -> Result<(Work, pb::ReverseReleaseResponse)> {
        let mut release = write::lock_release(work.tx(), release_id)
            .await?
            .filter(|r| r.visible_to(caller.code()))
            .ok_or(Error::NotFound("release"))?;
        serves_prison(caller, &release.releasing_prison)?;
        if release.state == ReleaseState::Reversed {
            return Err(Error::precondition(
                format!("release/{release_id}"),
                "release is already reversed",
            ));
        }
        write::mark_release_reversed(work.tx(), release_id, enum_name(reason), now).await?;
        release.state = ReleaseState::Reversed;
        release.reversed_at = Some(now);
        let person = self.store_person(&mut work, &release.person_key).await?;
        let ids = person.ids()?.to_proto();

        let tasks_revoked = self.revoke_tasks(&mut work, release_id, now, &ids).await?;
        let mut referrals_cancelled = 0;
        for referral in write::active_referrals_of_release(work.tx(), release_id).await? {
            self.cancel_for_reversal(&mut work, referral, caller.code(), now, &ids)
                .await?;
            referrals_cancelled += 1;
        }
        let reversed = events::release_reversed(&release, reason, now);
        work.publish(self.topics.lifecycle(&release.person_key, &reversed));
        work.publish(self.topics.retraction(&pb_events::ObservationsRetracted {
            person_key: release.person_key.clone(),
            episode_key: self.episode_key("release", release_id),
            retracted_at: Some(to_timestamp(now)),
        }));
        let proto = self.release_proto(&mut work, &release, ids).await?;
        self.release_changed(&mut work, &release, &proto);
        let response = pb::ReverseReleaseResponse {
            release: Some(proto),
            tasks_revoked,
            referrals_cancelled,
        };
        Ok((work, response))
    }

    /// Revokes a reversed release's tasks that are not already revoked;
    /// returns how many.
    async fn revoke_tasks(
        &self,
        work: &mut Work,
        release_id: &str,
        now: DateTime<Utc>,
        ids: &PersonIdentifiers,
    ) -> Result<i32> {
        let mut revoked = 0;
        for task in write::tasks_of_release(work.tx(), release_id).await? {
            if task.state == TaskState::Revoked {
                continue;
            }
            write::set_task_state(work.tx(), &task, TaskState::Revoked, now, None).await?;
            let task = Task {
                state: TaskState::Revoked,
                closed_at: Some(now),
                ..task
            };
            self.task_changed(work, &task, ids);
            let event = events::task_revoked(&task, now);
            work.publish(self.topics.lifecycle(&task.person_key, &event));
            revoked += 1;
        }
        Ok(revoked)
    }

    pub async fn get_release(
        &self,
        caller: &Caller,
        release_id: &str,
    ) -> Result<pb::GetReleaseResponse> {
        let release = self
            .store
            .release(release_id)
            .await?
            .filter(|r| r.visible_to(caller.code()))
            .ok_or(Error::NotFound("release"))?;
        let ids = self.person_ids(&release.person_key, "release").await?;
        // Receipts before tasks: an overdue receipt commits with the alerts
        // it opens, so whoever sees the one sees the other.
        let deliveries = self.store.receipts("release", release_id).await?;
        let tasks = self.store.tasks_of_release(release_id).await?;
        Ok(pb::GetReleaseResponse {
            tasks: tasks.iter().map(|t| self.task_to_proto(t, &ids)).collect(),
            release: Some(pb::Release {
                deliveries,
                ..release.to_proto(ids)
            }),
        })
    }
}
