//! Continuity tasks after they open: listing, alert acknowledgement, closing,
//! and the sweep that marks missed deadlines overdue.

use super::{App, Feed, encode_token, page};
use crate::domain::fields;
use crate::domain::task::{Task, TaskKind, TaskState};
use crate::error::{Error, Result};
use crate::events;
use crate::store::rows::PersonRow;
use crate::store::write;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use throughcare_platform::idempotency::once;
use throughcare_platform::identity::Caller;
use throughcare_platform::validation::{FieldViolation, Violations};
use throughcare_platform::work::Work;
use throughcare_proto::referrals::v1 as pb;
use throughcare_proto::types::v1::PersonIdentifiers;

/// Tasks marked overdue per sweep transaction.
const SWEEP_BATCH: i64 = 200;

impl App {
    pub async fn list_tasks(
        &self,
        caller: &Caller,
        r: &pb::ListContinuityTasksRequest,
    ) -> Result<pb::ListContinuityTasksResponse> {
        let mut v = Violations::new();
        let states: Vec<TaskState> =
            fields::required_enums::<pb::ContinuityTaskState>(&mut v, &r.states, "states")
                .into_iter()
                .filter_map(TaskState::from_proto)
                .collect();
        let (limit, after) = page(&mut v, r.page_size, &r.page_token);
        v.finish(|| ())?;
        let release = (!r.release_id.is_empty()).then_some(r.release_id.as_str());
        let tasks = self
            .store
            .list_tasks(caller.code(), release, &states, after, limit)
            .await?;
        let mut people = HashMap::new();
        let mut listed = Vec::with_capacity(tasks.len());
        for task in &tasks {
            if !people.contains_key(&task.person_key) {
                let ids = self.person_ids(&task.person_key, "person").await?;
                people.insert(task.person_key.clone(), ids);
            }
            listed.push(self.task_to_proto(task, &people[&task.person_key]));
        }
        let next_page_token = match tasks.last() {
            Some(last) if tasks.len() as i64 == limit => {
                encode_token(last.opened_at, &last.task_id)
            }
            _ => String::new(),
        };
        Ok(pb::ListContinuityTasksResponse {
            tasks: listed,
            next_page_token,
        })
    }

    pub async fn acknowledge_alert(
        &self,
        caller: &Caller,
        request: &pb::AcknowledgeAlertRequest,
    ) -> Result<pb::AcknowledgeAlertResponse> {
        if request.task_id.is_empty() {
            return Err(FieldViolation::missing("task_id").into());
        }
        let now = self.now();
        once(&self.transactions, caller.code(), request, move |work| {
            self.record_acknowledgement(work, caller, &request.task_id, now)
        })
        .await
    }

    async fn record_acknowledgement(
        &self,
        mut work: Work,
        caller: &Caller,
        task_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(Work, pb::AcknowledgeAlertResponse)> {
        let task = write::lock_task(work.tx(), task_id)
            .await?
            .filter(|t| t.responsible == caller.code())
            .ok_or(Error::NotFound("continuity task"))?;
        let subject = format!("continuity-task/{task_id}");
        if task.kind != TaskKind::Alert {
            return Err(Error::precondition(
                subject,
                "only alerts are acknowledged; referral tasks close when their referral progresses",
            ));
        }
        if !task.state.is_pending() {
            return Err(Error::precondition(
                subject,
                format!("alert is already {}", task.state.as_str()),
            ));
        }
        let person = self.store_person(&mut work, &task.person_key).await?;
        let ids = person.ids()?.to_proto();
        let task = self.close_task(&mut work, task, None, now, &ids).await?;
        Ok((work, pb::AcknowledgeAlertResponse { task: Some(task) }))
    }

    /// Closes a task (by `referral_id`, if a referral closed it) and
    /// announces it.
    pub(crate) async fn close_task(
        &self,
        work: &mut Work,
        task: Task,
        referral_id: Option<&str>,
        now: DateTime<Utc>,
        ids: &PersonIdentifiers,
    ) -> Result<pb::ContinuityTask> {
        write::set_task_state(work.tx(), &task, TaskState::Closed, now, referral_id).await?;
        let closed = Task {
            state: TaskState::Closed,
            closed_at: Some(now),
            referral_id: referral_id.map(str::to_owned).or(task.referral_id.clone()),
            ..task
        };
        let proto = self.task_changed(work, &closed, ids);
        let event = events::task_closed(&closed, now);
        work.publish(self.topics.lifecycle(&closed.person_key, &event));
        Ok(proto)
    }

    /// Marks open tasks past their deadline overdue, announcing each. Safe to
    /// run on several instances at once. Returns how many it marked.
    pub async fn sweep_overdue(&self) -> Result<usize> {
        let mut marked = 0;
        loop {
            let now = self.now();
            let mut work = self.transactions.begin().await?;
            let due = write::claim_due_tasks(work.tx(), now, SWEEP_BATCH).await?;
            let count = due.len();
            for task in due {
                write::set_task_state(work.tx(), &task, TaskState::Overdue, now, None).await?;
                let overdue = Task {
                    state: TaskState::Overdue,
                    ..task
                };
                let person = self.store_person(&mut work, &overdue.person_key).await?;
                self.task_changed(&mut work, &overdue, &person.ids()?.to_proto());
                let event = events::task_overdue(&overdue, now);
                work.publish(self.topics.lifecycle(&overdue.person_key, &event));
            }
            work.commit().await?;
            marked += count;
            if (count as i64) < SWEEP_BATCH {
                return Ok(marked);
            }
        }
    }

    /// The stored person, read in this unit of work.
    pub(crate) async fn store_person(
        &self,
        work: &mut Work,
        person_key: &str,
    ) -> Result<PersonRow> {
        write::person(work.tx(), person_key)
            .await?
            .ok_or(Error::NotFound("person"))
    }

    /// Records a task change in its responsible organisation's feed.
    pub(crate) fn task_changed(
        &self,
        work: &mut Work,
        task: &Task,
        ids: &PersonIdentifiers,
    ) -> pb::ContinuityTask {
        let proto = self.task_to_proto(task, ids);
        work.announce(Feed::Tasks.entry(&task.responsible, &task.task_id, &proto, self.now()));
        proto
    }
}
