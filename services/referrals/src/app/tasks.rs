//! Continuity tasks after they open: listing, alert acknowledgement, and the
//! sweep that marks missed deadlines overdue.

use super::{App, Effects, decode_token, encode_token, page_size};
use crate::domain::fields::{self, timestamp_to_proto};
use crate::domain::task::{Task, TaskKind, TaskState};
use crate::error::{Error, Result};
use crate::store::write;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use throughcare_platform::db::Tx;
use throughcare_platform::idempotency::{IdempotencyKey, idempotent};
use throughcare_platform::identity::Caller;
use throughcare_platform::validation::{FieldViolation, Violations};
use throughcare_proto::events::v1 as events;
use throughcare_proto::referrals::v1 as pb;

/// Tasks marked overdue per sweep transaction.
const SWEEP_BATCH: i64 = 200;

impl App {
    pub async fn list_tasks(
        &self,
        caller: &Caller,
        r: &pb::ListContinuityTasksRequest,
    ) -> Result<pb::ListContinuityTasksResponse> {
        let mut v = Violations::new();
        let states: Vec<TaskState> = r
            .states
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                v.check(fields::required_enum::<pb::ContinuityTaskState>(
                    *s,
                    &format!("states[{i}]"),
                ))
                .and_then(TaskState::from_proto)
            })
            .collect();
        let limit = v.check(
            page_size(r.page_size)
                .map_err(|_| FieldViolation::new("page_size", "must be between 0 and 500")),
        );
        let after = v.check(decode_token(&r.page_token)).flatten();
        v.finish(|| ())?;
        let limit = limit.unwrap_or(50);
        let release = (!r.release_id.is_empty()).then_some(r.release_id.as_str());
        let tasks = self
            .store
            .list_tasks(caller.code(), release, &states, after, limit)
            .await?;
        let mut people = HashMap::new();
        let mut listed = Vec::with_capacity(tasks.len());
        for task in &tasks {
            if !people.contains_key(&task.person_key) {
                let person = self
                    .store
                    .person(&task.person_key)
                    .await?
                    .ok_or(Error::NotFound("person"))?;
                people.insert(task.person_key.clone(), person.ids()?.to_proto());
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
        let key = IdempotencyKey::new(
            caller.code(),
            "AcknowledgeAlert",
            &request.idempotency_key,
            request,
        )?;
        let now = self.now();
        let response = idempotent(self.store.db(), &key, |mut tx| async move {
            let response = self
                .record_acknowledgement(&mut tx, caller, &request.task_id, now)
                .await?;
            Ok::<_, Error>((tx, response))
        })
        .await?;
        self.committed();
        Ok(response)
    }

    async fn record_acknowledgement(
        &self,
        tx: &mut Tx,
        caller: &Caller,
        task_id: &str,
        now: DateTime<Utc>,
    ) -> Result<pb::AcknowledgeAlertResponse> {
        let task = write::lock_task(tx, task_id)
            .await?
            .filter(|t| t.responsible == caller.code())
            .ok_or(Error::NotFound("continuity task"))?;
        let subject = format!("continuity-task/{task_id}");
        if task.kind != TaskKind::Alert {
            return Err(Error::Precondition {
                subject,
                message: "only alerts are acknowledged; referral tasks close when their referral progresses".into(),
            });
        }
        if !task.state.is_pending() {
            return Err(Error::Precondition {
                subject,
                message: format!("alert is already {}", task.state.as_str()),
            });
        }
        write::set_task_state(tx, &task, TaskState::Closed, now, None).await?;
        let closed = Task {
            state: TaskState::Closed,
            closed_at: Some(now),
            ..task
        };
        let person = self.store_person(tx, &closed.person_key).await?;
        let mut effects = Effects::default();
        let proto = self.task_changed(&mut effects, &closed, &person.ids()?.to_proto());
        effects.push(self.topics.lifecycle(
            &closed.person_key,
            &events::ContinuityTaskClosed {
                task_id: closed.task_id.clone(),
                release_id: closed.release_id.clone(),
                person_key: closed.person_key.clone(),
                referral_id: String::new(),
                closed_at: Some(timestamp_to_proto(now)),
            },
        ));
        effects.enqueue(tx, &self.topics).await?;
        Ok(pb::AcknowledgeAlertResponse { task: Some(proto) })
    }

    /// Marks open tasks past their deadline overdue, announcing each. Safe to
    /// run on several instances at once. Returns how many it marked.
    pub async fn sweep_overdue(&self) -> Result<usize> {
        let mut marked = 0;
        loop {
            let now = self.now();
            let mut tx = self.store.db().begin().await?;
            let due = write::claim_due_tasks(&mut tx, now, SWEEP_BATCH).await?;
            let count = due.len();
            let mut effects = Effects::default();
            for task in due {
                write::set_task_state(&mut tx, &task, TaskState::Overdue, now, None).await?;
                let overdue = Task {
                    state: TaskState::Overdue,
                    ..task
                };
                let person = self.store_person(&mut tx, &overdue.person_key).await?;
                self.task_changed(&mut effects, &overdue, &person.ids()?.to_proto());
                effects.push(self.topics.lifecycle(
                    &overdue.person_key,
                    &events::ContinuityTaskOverdue {
                        task_id: overdue.task_id.clone(),
                        release_id: overdue.release_id.clone(),
                        person_key: overdue.person_key.clone(),
                        responsible_organisation: overdue.responsible.clone(),
                        due_at: Some(timestamp_to_proto(overdue.due_at)),
                        detected_at: Some(timestamp_to_proto(now)),
                    },
                ));
            }
            effects.enqueue(&mut tx, &self.topics).await?;
            tx.commit().await?;
            marked += count;
            if count > 0 {
                self.committed();
            }
            if (count as i64) < SWEEP_BATCH {
                return Ok(marked);
            }
        }
    }
}
