//! Pushed disclosures at transition points. A delivery's content is decided
//! and assembled at the moment it is sent, in the same transaction that records
//! it: whatever is withdrawn before then — a consent, the release, the referral
//! — is never sent, however it was queued, streamed or retried. Once made, a
//! delivery is a fixed record: read again, it is what was sent.

use super::audit::commit_audited;
use super::disclosure::trigger;
use super::{App, DELIVERIES};
use crate::domain::audit::Entry;
use crate::domain::decision::{Outcome, Request, decide};
use crate::store::{people, records};
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;
use std::sync::Arc;
use throughcare_platform::clock::to_timestamp;
use throughcare_platform::error::{Error, Result};
use throughcare_platform::identity::{Caller, OrganisationKind};
use throughcare_platform::work::Work;
use throughcare_proto::events::v1 as events;
use throughcare_proto::sharing::v1 as pb;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// What a made delivery's contents are sealed to.
fn sent_binding(delivery_id: &str) -> Vec<u8> {
    format!("throughcare.sharing.sent-delivery\u{1f}{delivery_id}").into_bytes()
}

/// What a delivery stream item is.
pub(crate) type Item = Result<pb::WatchDeliveriesResponse>;

/// What a push to `recipient` asks, decided when it leaves (and when a
/// withdrawal asks whether anything still covers it).
pub(super) fn push(recipient: &str, kind: OrganisationKind, at: DateTime<Utc>) -> Request {
    Request {
        recipient: recipient.to_owned(),
        recipient_kind: kind,
        purpose: pb::Purpose::DirectCare,
        categories: Vec::new(),
        at,
        // Nobody writes a push's justification: it may rest on an agreement
        // regardless, and its audit entry says none was written and is
        // flagged when it does (`Entry::pushed`).
        justified: true,
    }
}

impl App {
    /// Withdraws the person's pushes not yet made that no basis still in
    /// force covers (after a consent is withdrawn): those resting on another
    /// consent or an agreement stay owed. Returns how many were withdrawn.
    pub(super) async fn withdraw_uncovered(
        &self,
        work: &mut Work,
        person_key: &str,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let (consents, agreements) = self.bases_for(work, Some(person_key)).await?;
        let mut withdrawn = 0;
        for owed in people::pending_for_person(work.tx(), person_key).await? {
            let covered = self.registry.get(&owed.recipient).is_some_and(|org| {
                decide(
                    &consents,
                    &agreements,
                    &push(&owed.recipient, org.kind, now),
                )
                .permits()
            });
            if covered {
                continue;
            }
            // Made meanwhile (read under the consent before this withdrawal
            // committed): it stays made.
            let withheld =
                people::set_delivery_state(work.tx(), &owed.delivery_id, "withdrawn", now).await?;
            if let Some(withheld) = withheld {
                self.receipts_changed(work, &[withheld]);
                withdrawn += 1;
            }
        }
        Ok(withdrawn)
    }

    /// The coded observation of a first push at release: in the release's
    /// episode, placed where the release's health record placed the person,
    /// valued in days from the release day. `None` when the release or its
    /// record's subject is not here.
    async fn shared_at_release(
        &self,
        work: &mut Work,
        delivery: &people::DeliveryRow,
        now: DateTime<Utc>,
    ) -> Result<Option<events::Observation>> {
        let release_id = &delivery.trigger_id;
        let Some(released_at) = people::released_at(work.tx(), release_id).await? else {
            return Ok(None);
        };
        let Some((record_id, sealed)) = records::subject_of(work.tx(), release_id).await? else {
            return Ok(None);
        };
        let subject: events::Observation =
            self.unseal(&sealed, &records::subject_binding(&record_id))?;
        Ok(Some(events::Observation {
            person_key: delivery.person_key.clone(),
            fact: events::ObservedFact::HealthInformationSharedAtRelease as i32,
            value: (now.date_naive() - released_at.date_naive()).num_days(),
            observed_at: Some(to_timestamp(now)),
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
        let mut follower = self
            .transactions
            .feeds()
            .follow(caller.code(), DELIVERIES, after);
        let app = self.clone();
        // Deliveries are made in the watch call's trace.
        let span = tracing::Span::current();
        tokio::spawn(
            async move {
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
                            Err(error) => Err(error),
                        },
                        Ok(None) => Err(Error::Unavailable(
                            "server is shutting down; resume from the last cursor".into(),
                        )),
                        Err(error) => Err(Error::from(error)),
                    };
                    let last = item.is_err();
                    permit.send(item);
                    if last {
                        return;
                    }
                }
            }
            .instrument(span),
        );
        ReceiverStream::new(receiver)
    }

    /// Decides and records one delivery; `None` when it is withdrawn, refused,
    /// retracted or not the caller's. (It is announced only once the person's
    /// record is here.) One already made is a fixed record: read again, it is
    /// exactly what was sent, with no new decision or disclosure.
    async fn make_delivery(
        &self,
        caller: &Caller,
        delivery_id: &str,
    ) -> Result<Option<pb::Delivery>> {
        let now = self.now();
        let mut work = self.transactions.begin().await?;
        let Some(delivery) = people::lock_delivery(work.tx(), delivery_id).await? else {
            return Ok(None);
        };
        if delivery.recipient != caller.code() {
            return Ok(None);
        }
        match delivery.state.as_str() {
            "pending" => {}
            "made" => return self.sent(&mut work, delivery_id).await,
            _ => return Ok(None),
        }
        let request = push(caller.code(), caller.kind(), now);
        let (consents, agreements) = self
            .bases_for(&mut work, Some(&delivery.person_key))
            .await?;
        let outcome = decide(&consents, &agreements, &request);
        let mut entry = Entry::pushed(
            caller.role.as_str(),
            &delivery.person_key,
            &request,
            &outcome,
            (&delivery.trigger_kind, &delivery.trigger_id),
            delivery_id,
        );
        if !outcome.permits() {
            let withheld =
                people::set_delivery_state(work.tx(), delivery_id, "refused", now).await?;
            self.receipts_changed(&mut work, withheld.as_slice());
            work.publish(self.denied(&delivery.person_key, &request, Vec::new()));
            commit_audited(work, entry).await?;
            return Ok(None);
        }
        let sent = self
            .deliver(&mut work, delivery, &request, &outcome, &mut entry)
            .await?;
        commit_audited(work, entry).await?;
        Ok(Some(sent))
    }

    /// What a made delivery carried, opened from its seal.
    async fn sent(&self, work: &mut Work, delivery_id: &str) -> Result<Option<pb::Delivery>> {
        let Some(sealed) = people::sent(work.tx(), delivery_id).await? else {
            return Ok(None); // made before contents were kept: never re-decided
        };
        let plain = self
            .at_rest
            .open(&sealed, &sent_binding(delivery_id))
            .map_err(|e| Error::internal("a sent delivery cannot be opened", e))?;
        let delivery = prost::Message::decode(plain.as_slice())
            .map_err(|e| Error::internal("a sent delivery does not decode", e))?;
        Ok(Some(delivery))
    }

    /// Assembles and records a permitted delivery (and, at a release's first,
    /// observes that health information reached probation): the delivery as sent.
    async fn deliver(
        &self,
        work: &mut Work,
        delivery: people::DeliveryRow,
        request: &Request,
        outcome: &Outcome,
        entry: &mut Entry,
    ) -> Result<pb::Delivery> {
        let now = request.at;
        let person_key = &delivery.person_key;
        let permitted: BTreeSet<_> = outcome.permitted.keys().copied().collect();
        let health = self.permitted_health(work, person_key, &permitted).await?;
        let ids = people::ids(work.tx(), person_key)
            .await?
            .ok_or(Error::NotFound("person"))?;
        // Counted once, at the first delivery (a resend is not a new fact).
        let first_at_release = delivery.state == "pending" && delivery.trigger_kind == "release";
        if first_at_release
            && let Some(observation) = self.shared_at_release(work, &delivery, now).await?
        {
            work.publish(self.observed(person_key, vec![observation]));
        }
        let at = (delivery.trigger_kind.as_str(), delivery.trigger_id.as_str());
        let made = self
            .disclose(work, person_key, request, outcome, at)
            .await?;
        entry.disclosure_id = made.disclosure_id.clone();
        let made_now =
            people::set_delivery_state(work.tx(), &delivery.delivery_id, "made", now).await?;
        self.receipts_changed(work, made_now.as_slice());
        let sent = pb::Delivery {
            trigger: trigger(&delivery.trigger_kind) as i32,
            delivery_id: delivery.delivery_id,
            person: Some(ids.to_proto()),
            trigger_id: delivery.trigger_id,
            purpose: request.purpose as i32,
            bases: made.bases,
            categories: made.categories,
            health: Some(health),
            disclosed_at: Some(to_timestamp(now)),
        };
        let binding = sent_binding(&sent.delivery_id);
        let sealed = self
            .at_rest
            .seal(&prost::Message::encode_to_vec(&sent), &binding);
        people::record_sent(work.tx(), &sent.delivery_id, &sealed).await?;
        Ok(sent)
    }
}
