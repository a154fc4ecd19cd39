//! Release notifications and their reversal.

use super::{App, Effects, Feed, new_id};
use crate::domain::fields::{date_to_proto, timestamp_to_proto};
use crate::domain::observations;
use crate::domain::release::{Release, ReleaseNotification, ReleaseState, serves_prison};
use crate::domain::task::{Task, TaskState};
use crate::error::{Error, Result};
use crate::events::Topics;
use crate::store::rows::enum_name;
use crate::store::write::{self, Placement};
use chrono::{DateTime, Utc};
use std::sync::{Arc, Mutex};
use throughcare_platform::db::Tx;
use throughcare_platform::idempotency::{self, IdempotencyError, IdempotencyKey, idempotent};
use throughcare_platform::identity::Caller;
use throughcare_proto::events::v1 as events;
use throughcare_proto::referrals::v1 as pb;
use throughcare_proto::types::v1::PersonIdentifiers;
use tokio::sync::oneshot;
use tonic::Status;
use tracing::Instrument;

/// The most notifications written in one transaction.
const MAX_BATCH: usize = 64;

/// Release notifications waiting to be written, and whether a writer is at it.
///
/// A notification that arrives while no writer is at work is written in its
/// own transaction. Those that arrive while one is wait, and the writer's next
/// transaction takes them all: on a busy estate each commit (and each
/// change feed's counter lock, held to commit) is paid once per batch, not once
/// per release. A batch runs its notifications one after another, exactly as
/// if each were alone — a later one finds an earlier one's person and
/// idempotency key — and if anything in it fails (a concurrent batch with the
/// same key, a deadlock) it is rolled back and each notification runs alone, so
/// every caller gets the answer (or the error) it would have had on its own.
///
/// One writer: a second, tried once on PostgreSQL, gave no more rate and a
/// worse tail (its batches wait on the first's feed counter locks and keys).
#[derive(Debug, Default)]
pub struct ReleaseQueue(Mutex<QueueState>);

#[derive(Debug, Default)]
struct QueueState {
    waiting: Vec<Queued>,
    writing: bool,
}

#[derive(Debug)]
struct Queued {
    caller: Caller,
    command: ReleaseNotification,
    key: IdempotencyKey,
    now: DateTime<Utc>,
    /// The caller's request span: the notification's events carry its trace.
    span: tracing::Span,
    reply: oneshot::Sender<Result<pb::NotifyReleaseResponse>>,
}

impl ReleaseQueue {
    /// Queues a notification; `true` if the caller must start the writer.
    fn push(&self, queued: Queued) -> bool {
        let mut state = self.0.lock().expect("release queue lock");
        state.waiting.push(queued);
        !std::mem::replace(&mut state.writing, true)
    }

    /// The next batch, or `None` (and the writer stops) when none is waiting.
    fn next_batch(&self) -> Option<Vec<Queued>> {
        let mut state = self.0.lock().expect("release queue lock");
        if state.waiting.is_empty() {
            state.writing = false;
            return None;
        }
        let take = state.waiting.len().min(MAX_BATCH);
        Some(state.waiting.drain(..take).collect())
    }
}

/// What recorded notifications write together at the end of their
/// transaction: releases, then their tasks, then what they announce.
#[derive(Debug, Default)]
struct ReleaseWrites {
    releases: Vec<Release>,
    tasks: Vec<Task>,
    effects: Effects,
}

impl ReleaseWrites {
    async fn write(self, tx: &mut Tx, topics: &Topics) -> Result<()> {
        write::insert_releases(tx, &self.releases).await?;
        write::insert_tasks(tx, &self.tasks).await?;
        // Last: each feed's counter lock is then held only to commit.
        self.effects.enqueue(tx, topics).await
    }
}

/// Held by the writer: if it ends other than by emptying the queue (a panic, or
/// the runtime stopping), those still waiting are answered UNAVAILABLE and the
/// next notification starts a new writer, so no caller waits for ever.
struct WriterGuard<'a> {
    queue: &'a ReleaseQueue,
    emptied: bool,
}

impl Drop for WriterGuard<'_> {
    fn drop(&mut self) {
        if !self.emptied {
            let mut state = self.queue.0.lock().unwrap_or_else(|p| p.into_inner());
            state.writing = false;
            state.waiting.clear();
        }
    }
}

impl App {
    pub async fn notify_release(
        self: &Arc<Self>,
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
        let (reply, answer) = oneshot::channel();
        let queued = Queued {
            caller: caller.clone(),
            command,
            key,
            now,
            span: tracing::Span::current(),
            reply,
        };
        if self.release_queue.push(queued) {
            // A task of its own, so a caller that hangs up mid-batch cannot
            // abandon the others' writes.
            let writer = self.clone().write_queued_releases();
            tokio::spawn(writer.instrument(tracing::info_span!("release writer")));
        }
        answer.await.map_err(|_| {
            Status::unavailable("the release was not written; retry with the same idempotency_key")
        })?
    }

    async fn write_queued_releases(self: Arc<Self>) {
        let mut guard = WriterGuard {
            queue: &self.release_queue,
            emptied: false,
        };
        loop {
            let Some(mut batch) = self.release_queue.next_batch() else {
                guard.emptied = true;
                return;
            };
            if batch.len() > 1 {
                let written = self
                    .write_together(&batch)
                    .instrument(tracing::info_span!("release batch", size = batch.len()))
                    .await;
                match written {
                    Ok(answers) => {
                        self.committed();
                        for (queued, answer) in batch.into_iter().zip(answers) {
                            let _ = queued.reply.send(answer);
                        }
                        continue;
                    }
                    Err(error) => tracing::warn!(
                        %error,
                        size = batch.len(),
                        "release batch rolled back; writing its notifications one by one"
                    ),
                }
            }
            for queued in batch.drain(..) {
                let answer = self.write_alone(&queued).await;
                let _ = queued.reply.send(answer);
            }
        }
    }

    /// One notification in its own transaction.
    async fn write_alone(&self, queued: &Queued) -> Result<pb::NotifyReleaseResponse> {
        let response = idempotent(self.store.db(), &queued.key, |mut tx| async move {
            let mut writes = ReleaseWrites::default();
            let response = self.record_release(&mut tx, &mut writes, queued).await?;
            writes.write(&mut tx, &self.topics).await?;
            Ok::<_, Error>((tx, response))
        })
        .instrument(queued.span.clone())
        .await?;
        self.committed();
        Ok(response)
    }

    /// Several notifications in one transaction, in order: the answers, or an
    /// error if the batch must be written one by one instead. A key reused for
    /// a different request is that caller's answer, not the batch's failure;
    /// a key sent twice in one batch is answered as a replay.
    async fn write_together(
        &self,
        batch: &[Queued],
    ) -> Result<Vec<Result<pb::NotifyReleaseResponse>>> {
        let mut tx = self.store.db().begin().await?;
        let keys: Vec<&IdempotencyKey> = batch.iter().map(|q| &q.key).collect();
        let stored = idempotency::lookup_all(&mut tx, &keys).await?;
        let mut answers: Vec<Result<pb::NotifyReleaseResponse>> = Vec::with_capacity(batch.len());
        // The notifications this batch records, with their answers.
        let mut recorded: Vec<(&Queued, pb::NotifyReleaseResponse)> = Vec::new();
        let mut writes = ReleaseWrites::default();
        for (queued, stored) in batch.iter().zip(stored) {
            let earlier = recorded
                .iter()
                .find_map(|(first, answer)| Some((answer, queued.key.again_after(&first.key)?)));
            let answer = match (stored, earlier) {
                (Err(IdempotencyError::Reused), _) => Err(IdempotencyError::Reused.into()),
                (Err(other), _) => return Err(other.into()),
                (Ok(Some(stored)), _) => Ok(stored),
                (Ok(None), Some((first, again))) => {
                    again.map(|()| first.clone()).map_err(Error::from)
                }
                (Ok(None), None) => {
                    let answer = self
                        .record_release(&mut tx, &mut writes, queued)
                        .instrument(queued.span.clone())
                        .await?;
                    recorded.push((queued, answer.clone()));
                    Ok(answer)
                }
            };
            answers.push(answer);
        }
        writes.write(&mut tx, &self.topics).await?;
        let remembered: Vec<(&IdempotencyKey, &pb::NotifyReleaseResponse)> = recorded
            .iter()
            .map(|(q, answer)| (&q.key, answer))
            .collect();
        idempotency::remember_all(&mut tx, &remembered).await?;
        tx.commit().await?;
        Ok(answers)
    }

    /// Resolves the person and plans a release and its tasks into `writes`;
    /// returns the answer. Nothing is written but the person, so a batch writes
    /// its releases, tasks and announcements once, after all are recorded.
    async fn record_release(
        &self,
        tx: &mut Tx,
        writes: &mut ReleaseWrites,
        queued: &Queued,
    ) -> Result<pb::NotifyReleaseResponse> {
        let Queued {
            caller,
            command,
            now,
            ..
        } = queued;
        let now = *now;
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
        writes.effects.absorb(effects, &self.topics);
        writes.tasks.append(&mut tasks);
        let response = pb::NotifyReleaseResponse {
            release: Some(release.to_proto(ids)),
            tasks_opened: opened,
        };
        writes.releases.push(release);
        Ok(response)
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
