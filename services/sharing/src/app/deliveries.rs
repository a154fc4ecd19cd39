//! Pushed disclosures at transition points. A delivery's content is decided
//! and assembled at the moment it is sent, in the same transaction that records
//! it: whatever is withdrawn before then — a consent, the release, the referral
//! — is never sent, however it was queued, streamed or retried.

use super::{App, DELIVERIES, Effects, lawful_bases, new_id, timestamp};
use crate::domain::decision::{Request, decide};
use crate::error::{Error, Result};
use crate::store::{self, join_names, people, records};
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;
use std::sync::Arc;
use throughcare_platform::db::Tx;
use throughcare_platform::identity::Caller;
use throughcare_proto::events::v1 as events;
use throughcare_proto::sharing::v1 as pb;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::Status;

/// What a delivery stream item is.
pub(crate) type Item = std::result::Result<pb::WatchDeliveriesResponse, Status>;

fn trigger(kind: &str) -> pb::DeliveryTrigger {
    match kind {
        "release" => pb::DeliveryTrigger::Release,
        _ => pb::DeliveryTrigger::Referral,
    }
}

impl App {
    /// The coded observation of a first push at release: in the release's
    /// episode, placed where the release's health record placed the person,
    /// valued in days from the release day. `None` when the release or its
    /// record's subject is not here.
    async fn shared_at_release(
        &self,
        tx: &mut Tx,
        delivery: &people::DeliveryRow,
        now: DateTime<Utc>,
    ) -> Result<Option<events::Observation>> {
        let release_id = &delivery.trigger_id;
        let Some(released_at) = people::released_at(tx, release_id).await? else {
            return Ok(None);
        };
        let Some((record_id, sealed)) = records::subject_of(tx, release_id).await? else {
            return Ok(None);
        };
        let bytes = self
            .at_rest
            .open(&sealed, &records::subject_binding(&record_id))
            .map_err(|e| Error::Internal(format!("opening a stored subject: {e}")))?;
        let subject: events::Observation = prost::Message::decode(bytes.as_slice())
            .map_err(|_| Error::Internal("a stored subject does not decode".into()))?;
        Ok(Some(events::Observation {
            person_key: delivery.person_key.clone(),
            fact: events::ObservedFact::HealthInformationSharedAtRelease as i32,
            value: (now.date_naive() - released_at.date_naive()).num_days(),
            observed_at: Some(timestamp(now)),
            episode_key: self.pseudonyms.episode_key("release", release_id),
            ..subject
        }))
    }

    /// The caller's deliveries after `after`, live, until it hangs up or the
    /// service shuts down.
    pub fn watch_deliveries(
        self: &Arc<Self>,
        caller: Caller,
        after: i64,
        shutdown: CancellationToken,
    ) -> ReceiverStream<Item> {
        // Capacity 1: a delivery is decided only when the stream can take it.
        let (sender, receiver) = mpsc::channel(1);
        let mut follower = self.feeds.follow(caller.code(), DELIVERIES, after);
        let app = self.clone();
        tokio::spawn(async move {
            loop {
                let Ok(permit) = sender.reserve().await else {
                    return;
                };
                let next = tokio::select! {
                    _ = shutdown.cancelled() => Ok(None),
                    next = follower.next(&shutdown) => next,
                };
                let item = match next {
                    Ok(Some(item)) => match app.make_delivery(&caller, &item.entity_id).await {
                        Ok(Some(delivery)) => Ok(pb::WatchDeliveriesResponse {
                            cursor: item.seq.to_string(),
                            delivery: Some(delivery),
                        }),
                        Ok(None) => continue,
                        Err(error) => Err(Status::from(error)),
                    },
                    Ok(None) => Err(Status::unavailable(
                        "server is shutting down; resume from the last cursor",
                    )),
                    Err(error) => Err(Status::from(Error::from(error))),
                };
                let last = item.is_err();
                permit.send(item);
                if last {
                    return;
                }
            }
        });
        ReceiverStream::new(receiver)
    }

    /// Decides and records one delivery; `None` when it is withdrawn, refused or
    /// not the caller's. (It is announced only once the person's record is here.)
    async fn make_delivery(
        &self,
        caller: &Caller,
        delivery_id: &str,
    ) -> Result<Option<pb::Delivery>> {
        let now = self.now();
        let mut tx = self.db.begin().await?;
        let Some(delivery) = people::lock_delivery(&mut tx, delivery_id).await? else {
            return Ok(None);
        };
        if delivery.recipient != caller.code()
            || !matches!(delivery.state.as_str(), "pending" | "made")
        {
            return Ok(None);
        }
        let request = Request {
            recipient: caller.code().to_owned(),
            recipient_kind: caller.kind(),
            purpose: pb::Purpose::DirectCare,
            categories: Vec::new(),
            at: now,
            justified: true,
        };
        let justification = format!(
            "continuity of care: automatic disclosure at {} {}",
            delivery.trigger_kind, delivery.trigger_id
        );
        let (consents, agreements) = self.bases_for(&mut tx, Some(&delivery.person_key)).await?;
        let outcome = decide(&consents, &agreements, &request);
        let mut effects = Effects::default();
        effects.audit(self.audit_entry(
            caller,
            &delivery.person_key,
            &request,
            &outcome,
            &justification,
        ));
        if !outcome.permits() {
            people::set_delivery_state(&mut tx, delivery_id, "refused", now).await?;
            effects.event(
                self,
                &delivery.person_key,
                &events::DisclosureDenied {
                    decision_id: new_id(),
                    person_key: delivery.person_key.clone(),
                    recipient: caller.code().to_owned(),
                    recipient_kind: caller.kind().to_proto() as i32,
                    purpose: request.purpose as i32,
                    categories: Vec::new(),
                    decided_at: Some(timestamp(now)),
                },
            );
            effects.write(&mut tx).await?;
            tx.commit().await?;
            self.committed();
            return Ok(None);
        }
        let permitted: BTreeSet<_> = outcome.permitted.keys().copied().collect();
        let health = self
            .permitted_health(&mut tx, &delivery.person_key, &permitted)
            .await?;
        let ids = people::ids(&mut tx, &delivery.person_key)
            .await?
            .ok_or(Error::NotFound("person"))?;
        let bases = lawful_bases(&outcome);
        let categories: Vec<i32> = permitted.iter().map(|c| *c as i32).collect();
        let disclosure_id = new_id();
        people::insert_disclosure(
            &mut tx,
            &people::DisclosureRow {
                disclosure_id: disclosure_id.clone(),
                person_key: delivery.person_key.clone(),
                recipient: caller.code().to_owned(),
                recipient_kind: caller.kind().to_proto().as_str_name().to_owned(),
                purpose: request.purpose.as_str_name().to_owned(),
                bases: store::audit::bases_text(&bases),
                categories: join_names(permitted.iter().map(|c| c.as_str_name())),
                trigger_kind: delivery.trigger_kind.clone(),
                trigger_id: delivery.trigger_id.clone(),
                disclosed_at: now,
            },
        )
        .await?;
        people::set_delivery_state(&mut tx, delivery_id, "made", now).await?;
        // Counted once, at the first delivery (a resend is not a new fact).
        let first_at_release = delivery.state == "pending" && delivery.trigger_kind == "release";
        if first_at_release
            && let Some(observation) = self.shared_at_release(&mut tx, &delivery, now).await?
        {
            effects.observe(self, &delivery.person_key, vec![observation]);
        }
        effects.event(
            self,
            &delivery.person_key,
            &events::DisclosureMade {
                disclosure_id: disclosure_id.clone(),
                person_key: delivery.person_key.clone(),
                recipient: caller.code().to_owned(),
                recipient_kind: caller.kind().to_proto() as i32,
                purpose: request.purpose as i32,
                bases: bases.clone(),
                categories: categories.clone(),
                trigger: trigger(&delivery.trigger_kind) as i32,
                disclosed_at: Some(timestamp(now)),
            },
        );
        effects.write(&mut tx).await?;
        tx.commit().await?;
        self.committed();
        Ok(Some(pb::Delivery {
            delivery_id: delivery.delivery_id,
            person: Some(ids.to_proto()),
            trigger: trigger(&delivery.trigger_kind) as i32,
            trigger_id: delivery.trigger_id,
            purpose: request.purpose as i32,
            bases,
            categories,
            health: Some(health),
            disclosed_at: Some(timestamp(now)),
        }))
    }
}
