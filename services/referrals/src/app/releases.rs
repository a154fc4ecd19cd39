//! Release notifications and their reversal.

use super::{App, Effects, Feed, new_id};
use crate::domain::fields::{date_to_proto, timestamp_to_proto};
use crate::domain::observations;
use crate::domain::release::{Release, ReleaseNotification, ReleaseState, serves_prison};
use crate::domain::task::{Task, TaskState};
use crate::error::{Error, Result};
use crate::store::rows::enum_name;
use crate::store::write::{self, Placement};
use throughcare_platform::db::Tx;
use throughcare_platform::idempotency::{IdempotencyKey, idempotent};
use throughcare_platform::identity::Caller;
use throughcare_proto::events::v1 as events;
use throughcare_proto::referrals::v1 as pb;
use throughcare_proto::types::v1::PersonIdentifiers;

impl App {
    pub async fn notify_release(
        &self,
        caller: &Caller,
        request: &pb::NotifyReleaseRequest,
    ) -> Result<pb::NotifyReleaseResponse> {
        let now = self.now();
        let command =
            ReleaseNotification::validate(request, caller, &self.registry, now.date_naive())?;
        let key = IdempotencyKey::new(
            caller.code(),
            "NotifyRelease",
            &request.idempotency_key,
            request,
        )?;
        let command = &command;
        let response = idempotent(self.store.db(), &key, |mut tx| async move {
            let response = self.record_release(&mut tx, caller, command, now).await?;
            Ok::<_, Error>((tx, response))
        })
        .await?;
        self.committed();
        Ok(response)
    }

    async fn record_release(
        &self,
        tx: &mut Tx,
        caller: &Caller,
        command: &ReleaseNotification,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<pb::NotifyReleaseResponse> {
        let placement = Placement {
            area: &command.destination,
            prison: Some(&command.releasing_prison),
        };
        let person =
            write::resolve_person(tx, &self.pseudonyms, &command.person, Some(placement), now)
                .await?;
        let ids = person.ids()?.to_proto();
        let release = Release {
            release_id: new_id(),
            person_key: person.person_key.clone(),
            release_date: command.release_date,
            reason: command.reason,
            releasing_prison: command.releasing_prison.clone(),
            destination: command.destination.clone(),
            state: ReleaseState::Notified,
            notified_by: caller.code().to_owned(),
            notified_at: now,
            reversed_at: None,
        };
        write::insert_release(tx, &release).await?;

        let mut effects = Effects::default();
        let mut opened = Vec::new();
        let mut tasks = Vec::new();
        for planned in self.rules.plan(&command.health, command.release_date, now) {
            let task = Task {
                task_id: new_id(),
                release_id: release.release_id.clone(),
                person_key: person.person_key.clone(),
                rule_id: planned.rule_id,
                kind: planned.kind,
                service: planned.service,
                closes_on: planned.closes_on,
                responsible: command.responsible(),
                state: TaskState::Open,
                opened_at: now,
                due_at: planned.due_at,
                closed_at: None,
                referral_id: None,
            };
            let proto = self.task_changed(&mut effects, &task, &ids);
            effects.push(self.topics.lifecycle(
                &task.person_key,
                &events::ContinuityTaskOpened {
                    task_id: task.task_id.clone(),
                    release_id: task.release_id.clone(),
                    person_key: task.person_key.clone(),
                    rule_id: task.rule_id.clone(),
                    kind: task.kind.to_proto() as i32,
                    service: task.service.map_or(0, |s| s as i32),
                    responsible_organisation: task.responsible.clone(),
                    due_at: Some(timestamp_to_proto(task.due_at)),
                    opened_at: Some(timestamp_to_proto(now)),
                },
            ));
            opened.push(proto);
            tasks.push(task);
        }
        write::insert_tasks(tx, &tasks).await?;

        effects.push(self.topics.lifecycle(
            &person.person_key,
            &events::ReleaseNotified {
                release_id: release.release_id.clone(),
                person_key: person.person_key.clone(),
                release_date: Some(date_to_proto(release.release_date)),
                reason: release.reason as i32,
                releasing_prison: release.releasing_prison.clone(),
                destination: Some(release.destination.to_proto()),
                notified_at: Some(timestamp_to_proto(now)),
                notified_by: release.notified_by.clone(),
            },
        ));
        effects.push(self.topics.sealed_record(
            &self.keyring,
            &events::HealthRecord {
                record_id: new_id(),
                source: events::HealthRecordSource::Release as i32,
                source_id: release.release_id.clone(),
                person_key: person.person_key.clone(),
                person: Some(person_details(&command.person, ids.clone())),
                destination: Some(release.destination.to_proto()),
                health: Some(command.health.clone()),
                recorded_by: caller.code().to_owned(),
                recorded_at: Some(timestamp_to_proto(now)),
            },
        ));
        let subject = self.subject(
            &person,
            release
                .destination
                .observation_areas(Some(&release.releasing_prison)),
            self.episode_key("release", &release.release_id),
            command.release_date,
        )?;
        let released_at = observations::start_of(command.release_date);
        for observation in
            observations::for_release(&subject, &command.health, command.supervised(), released_at)
        {
            effects.observe(observation);
        }
        effects.enqueue(tx, &self.topics).await?;
        Ok(pb::NotifyReleaseResponse {
            release: Some(release.to_proto(ids)),
            tasks_opened: opened,
        })
    }

    pub async fn reverse_release(
        &self,
        caller: &Caller,
        request: &pb::ReverseReleaseRequest,
    ) -> Result<pb::ReverseReleaseResponse> {
        let now = self.now();
        let reason =
            crate::domain::fields::required_enum::<pb::ReversalReason>(request.reason, "reason")?;
        if request.release_id.is_empty() {
            return Err(
                throughcare_platform::validation::FieldViolation::missing("release_id").into(),
            );
        }
        let key = IdempotencyKey::new(
            caller.code(),
            "ReverseRelease",
            &request.idempotency_key,
            request,
        )?;
        let response = idempotent(self.store.db(), &key, |mut tx| async move {
            let response = self
                .record_reversal(&mut tx, caller, &request.release_id, reason, now)
                .await?;
            Ok::<_, Error>((tx, response))
        })
        .await?;
        self.committed();
        Ok(response)
    }

    async fn record_reversal(
        &self,
        tx: &mut Tx,
        caller: &Caller,
        release_id: &str,
        reason: pb::ReversalReason,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<pb::ReverseReleaseResponse> {
        let mut release = write::lock_release(tx, release_id)
            .await?
            .filter(|r| r.visible_to(caller.code()))
            .ok_or(Error::NotFound("release"))?;
        serves_prison(caller, &release.releasing_prison)?;
        if release.state == ReleaseState::Reversed {
            return Err(Error::Precondition {
                subject: format!("release/{release_id}"),
                message: "release is already reversed".into(),
            });
        }
        write::mark_release_reversed(tx, release_id, enum_name(reason), now).await?;
        release.state = ReleaseState::Reversed;
        release.reversed_at = Some(now);
        let person = self.store_person(tx, &release.person_key).await?;
        let ids = person.ids()?.to_proto();

        let mut effects = Effects::default();
        let mut tasks_revoked = 0;
        for task in write::tasks_of_release(tx, release_id).await? {
            if task.state == TaskState::Revoked {
                continue;
            }
            write::set_task_state(tx, &task, TaskState::Revoked, now, None).await?;
            let revoked = Task {
                state: TaskState::Revoked,
                closed_at: Some(now),
                ..task
            };
            self.task_changed(&mut effects, &revoked, &ids);
            effects.push(self.topics.lifecycle(
                &revoked.person_key,
                &events::ContinuityTaskRevoked {
                    task_id: revoked.task_id.clone(),
                    release_id: revoked.release_id.clone(),
                    person_key: revoked.person_key.clone(),
                    revoked_at: Some(timestamp_to_proto(now)),
                },
            ));
            tasks_revoked += 1;
        }
        let mut referrals_cancelled = 0;
        for referral in write::active_referrals_of_release(tx, release_id).await? {
            self.cancel_for_reversal(tx, &mut effects, referral, caller.code(), now, &ids)
                .await?;
            referrals_cancelled += 1;
        }
        effects.push(self.topics.lifecycle(
            &release.person_key,
            &events::ReleaseReversed {
                release_id: release_id.to_owned(),
                person_key: release.person_key.clone(),
                reason: reason as i32,
                reversed_at: Some(timestamp_to_proto(now)),
            },
        ));
        effects.push(self.topics.retraction(&events::ObservationsRetracted {
            person_key: release.person_key.clone(),
            episode_key: self.episode_key("release", release_id),
            retracted_at: Some(timestamp_to_proto(now)),
        }));
        effects.enqueue(tx, &self.topics).await?;
        Ok(pb::ReverseReleaseResponse {
            release: Some(release.to_proto(ids)),
            tasks_revoked,
            referrals_cancelled,
        })
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
        let person = self
            .store
            .person(&release.person_key)
            .await?
            .ok_or(Error::NotFound("release"))?;
        let ids = person.ids()?.to_proto();
        let tasks = self.store.tasks_of_release(release_id).await?;
        Ok(pb::GetReleaseResponse {
            tasks: tasks.iter().map(|t| self.task_to_proto(t, &ids)).collect(),
            release: Some(release.to_proto(ids)),
        })
    }

    pub(crate) async fn store_person(
        &self,
        tx: &mut Tx,
        person_key: &str,
    ) -> Result<crate::store::rows::PersonRow> {
        write::person(tx, person_key)
            .await?
            .ok_or(Error::NotFound("person"))
    }

    /// Records a task change in its responsible organisation's feed.
    pub(crate) fn task_changed(
        &self,
        effects: &mut Effects,
        task: &Task,
        ids: &PersonIdentifiers,
    ) -> pb::ContinuityTask {
        let proto = self.task_to_proto(task, ids);
        effects.feed(
            &task.responsible,
            Feed::Tasks,
            &task.task_id,
            prost::Message::encode_to_vec(&proto),
            self.now(),
        );
        proto
    }
}

/// The person as the sealed health record carries them.
fn person_details(
    person: &crate::domain::person::Person,
    ids: PersonIdentifiers,
) -> throughcare_proto::types::v1::PersonDetails {
    throughcare_proto::types::v1::PersonDetails {
        identifiers: Some(ids),
        date_of_birth: person.date_of_birth.map(date_to_proto),
        sex: person.sex as i32,
        ethnic_group: person.ethnic_group as i32,
    }
}
