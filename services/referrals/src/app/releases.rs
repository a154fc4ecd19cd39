//! Release notifications: validated, queued, and written by one writer in
//! batches.

use super::App;
use crate::domain::observations;
use crate::domain::release::{Release, ReleaseNotification, ReleaseState};
use crate::domain::task::{Task, TaskState};
use crate::error::{Error, Result};
use crate::events::{self, Recorded};
use crate::store::rows::PersonRow;
use crate::store::write::{self, Placement};
use chrono::{DateTime, Utc};
use std::sync::{Arc, Mutex};
use throughcare_platform::db::Tx;
use throughcare_platform::idempotency::{self, IdempotencyError, IdempotencyKey, idempotent};
use throughcare_platform::identifiers::new_id;
use throughcare_platform::identity::Caller;
use throughcare_platform::work::Work;
use throughcare_proto::events::v1 as pb_events;
use throughcare_proto::referrals::v1 as pb;
use throughcare_proto::types::v1::PersonIdentifiers;
use tokio::sync::oneshot;
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
/// transaction: releases, then their tasks (what they announce waits in the
/// unit of work, written last at its commit).
#[derive(Debug, Default)]
struct ReleaseWrites {
    releases: Vec<Release>,
    tasks: Vec<Task>,
}

impl ReleaseWrites {
    async fn write(self, tx: &mut Tx) -> Result<()> {
        write::insert_releases(tx, &self.releases).await?;
        write::insert_tasks(tx, &self.tasks).await?;
        Ok(())
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
        let key = IdempotencyKey::of(caller.code(), request)?;
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
            Error::Unavailable(
                "the release was not written; retry with the same idempotency_key".into(),
            )
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
                        for (queued, answer) in batch.into_iter().zip(answers) {
                            let _ = queued.reply.send(answer);
                        }
                        continue;
                    }
                    Err(error) => tracing::warn!(
                        error = %error.chain(),
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
        idempotent(&self.transactions, &queued.key, |mut work| async move {
            let mut writes = ReleaseWrites::default();
            let response = self.record_release(&mut work, &mut writes, queued).await?;
            writes.write(work.tx()).await?;
            Ok((work, response))
        })
        .instrument(queued.span.clone())
        .await
    }

    /// Several notifications in one transaction, in order: the answers, or an
    /// error if the batch must be written one by one instead. A key reused for
    /// a different request is that caller's answer, not the batch's failure;
    /// a key sent twice in one batch is answered as a replay.
    async fn write_together(
        &self,
        batch: &[Queued],
    ) -> Result<Vec<Result<pb::NotifyReleaseResponse>>> {
        let mut work = self.transactions.begin().await?;
        let keys: Vec<&IdempotencyKey> = batch.iter().map(|q| &q.key).collect();
        let stored = idempotency::lookup_all(work.tx(), &keys).await?;
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
                        .record_release(&mut work, &mut writes, queued)
                        .instrument(queued.span.clone())
                        .await?;
                    recorded.push((queued, answer.clone()));
                    Ok(answer)
                }
            };
            answers.push(answer);
        }
        writes.write(work.tx()).await?;
        let remembered: Vec<(&IdempotencyKey, &pb::NotifyReleaseResponse)> = recorded
            .iter()
            .map(|(q, answer)| (&q.key, answer))
            .collect();
        idempotency::remember_all(work.tx(), &remembered).await?;
        work.commit().await?;
        Ok(answers)
    }

    /// Resolves the person and plans a release and its tasks into `writes`;
    /// returns the answer. Nothing is written but the person, so a batch writes
    /// its releases, tasks and announcements once, after all are recorded.
    async fn record_release(
        &self,
        work: &mut Work,
        writes: &mut ReleaseWrites,
        queued: &Queued,
    ) -> Result<pb::NotifyReleaseResponse> {
        let Queued {
            caller,
            command,
            now,
            ..
        } = queued;
        let placement = Placement {
            area: &command.destination,
            prison: Some(&command.releasing_prison),
        };
        let person = self
            .person(work, &command.person, Some(placement), *now)
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
            notified_at: *now,
            reversed_at: None,
        };
        let (mut tasks, opened) = self.open_tasks(work, &release, command, &ids);
        self.announce_release(work, &release, &person, command, &ids)?;
        writes.tasks.append(&mut tasks);
        // New: no push has been owed for it yet.
        let proto = release.to_proto(ids);
        self.release_changed(work, &release, &proto);
        let response = pb::NotifyReleaseResponse {
            release: Some(proto),
            tasks_opened: opened,
        };
        writes.releases.push(release);
        Ok(response)
    }

    /// The continuity tasks the pathway rules open for a release, announced.
    fn open_tasks(
        &self,
        work: &mut Work,
        release: &Release,
        command: &ReleaseNotification,
        ids: &PersonIdentifiers,
    ) -> (Vec<Task>, Vec<pb::ContinuityTask>) {
        let now = release.notified_at;
        let planned = self.rules.plan(
            command.pathway(),
            &command.health,
            command.release_date,
            now,
        );
        planned
            .into_iter()
            .map(|planned| {
                let task = Task {
                    task_id: new_id(),
                    release_id: release.release_id.clone(),
                    person_key: release.person_key.clone(),
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
                let proto = self.task_changed(work, &task, ids);
                let opened = events::task_opened(&task);
                work.publish(self.topics.lifecycle(&task.person_key, &opened));
                (task, proto)
            })
            .unzip()
    }

    /// What a release announces: the event, the health record sealed for the
    /// sharing service, and its observations.
    fn announce_release(
        &self,
        work: &mut Work,
        release: &Release,
        person: &PersonRow,
        command: &ReleaseNotification,
        ids: &PersonIdentifiers,
    ) -> Result<()> {
        let notified = events::release_notified(release);
        work.publish(self.topics.lifecycle(&release.person_key, &notified));
        let record = events::health_record(
            new_id(),
            Recorded {
                source: pb_events::HealthRecordSource::Release,
                source_id: &release.release_id,
                person_key: &release.person_key,
                ids,
                person: &command.person,
                area: &release.destination,
                health: &command.health,
                recorded_by: &release.notified_by,
                at: release.notified_at,
            },
        );
        work.publish(self.topics.sealed_record(&self.keyring, &record));
        let subject = self.subject(
            person,
            release
                .destination
                .observation_areas(Some(&release.releasing_prison)),
            self.episode_key("release", &release.release_id),
            command.release_date,
        )?;
        let released_at = observations::start_of(command.release_date);
        let observed = observations::for_release(&subject, command, released_at);
        self.observe(work, observed);
        Ok(())
    }
}
