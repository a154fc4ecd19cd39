//! The sharing use cases. Each is one transaction: state, outbox events, feed
//! entries and the audit entry together, the locked rows (feeds, audit head)
//! last and always in that order.

mod agreements;
mod consents;
mod consume;
mod deliveries;
mod disclosure;

pub use consume::Consumer;

use crate::domain::audit::Entry;
use crate::domain::decision::{Agreement, Basis, Consent, Outcome, Request};
use crate::domain::minimise;
use crate::error::{Error, Result};
use crate::store::{self, records};
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;
use throughcare_platform::bus::Event;
use throughcare_platform::clock::SharedClock;
use throughcare_platform::db::{Db, Tx};
use throughcare_platform::feed::{FeedEntry, Feeds};
use throughcare_platform::identifiers::PseudonymKey;
use throughcare_platform::identity::{Caller, Registry};
use throughcare_platform::outbox::OutboxWaker;
use throughcare_platform::sealing::Keyring;
use throughcare_proto::events::v1 as events;
use throughcare_proto::sharing::v1 as pb;
use throughcare_proto::types::v1::{DataCategory, HealthSummary};

pub const SOURCE: &str = "/throughcare/sharing";
/// The feed each recipient's pushed deliveries are announced on.
pub const DELIVERIES: &str = "deliveries";

#[derive(Debug)]
pub struct App {
    pub db: Db,
    pub registry: Registry,
    pub pseudonyms: PseudonymKey,
    /// Opens health records sealed by the referrals service.
    pub transport: Keyring,
    /// Seals health records at rest in this service's database.
    pub at_rest: Keyring,
    pub clock: SharedClock,
    /// The topic this service publishes its events on.
    pub events_topic: String,
    /// The topic of coded observations, for the indicators service.
    pub observations_topic: String,
    pub waker: OutboxWaker,
    pub feeds: Feeds,
}

/// What a transaction announces, written at its end.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    events: Vec<Event>,
    feed: Vec<FeedEntry>,
    audit: Option<Entry>,
}

impl Effects {
    pub(crate) fn event<M: prost::Message + prost::Name>(
        &mut self,
        app: &App,
        person_key: &str,
        message: &M,
    ) {
        self.events
            .push(Event::new(&app.events_topic, person_key, SOURCE, message));
    }

    /// Coded, pseudonymised observations about one person, as one batch.
    pub(crate) fn observe(
        &mut self,
        app: &App,
        person_key: &str,
        observations: Vec<events::Observation>,
    ) {
        let batch = events::ObservationsRecorded {
            person_key: person_key.to_owned(),
            observations,
        };
        self.events.push(Event::new(
            &app.observations_topic,
            person_key,
            SOURCE,
            &batch,
        ));
    }

    pub(crate) fn announce(&mut self, recipient: &str, delivery_id: &str, at: DateTime<Utc>) {
        self.feed.push(FeedEntry {
            organisation: recipient.to_owned(),
            feed: DELIVERIES,
            entity_id: delivery_id.to_owned(),
            snapshot: Vec::new(),
            at,
        });
    }

    pub(crate) fn audit(&mut self, entry: Entry) {
        self.audit = Some(entry);
    }

    /// Outbox, then feeds, then the audit head: the locks come last, in one order.
    pub(crate) async fn write(self, tx: &mut Tx) -> Result<()> {
        tx.enqueue_all(&self.events).await?;
        throughcare_platform::feed::append(tx, self.feed).await?;
        if let Some(entry) = self.audit {
            store::audit::append(tx, entry).await?;
        }
        Ok(())
    }
}

impl App {
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub(crate) fn committed(&self) {
        self.waker.wake();
        self.feeds.notify();
    }

    /// The consents and agreements that bear on a person, as the decision sees them.
    pub(crate) async fn bases_for(
        &self,
        tx: &mut Tx,
        person_key: Option<&str>,
    ) -> Result<(Vec<Consent>, Vec<Agreement>)> {
        let consents = match person_key {
            Some(key) => store::consents_in(tx, key)
                .await?
                .iter()
                .map(consents::stored_consent)
                .collect::<Result<_>>()?,
            None => Vec::new(),
        };
        let agreements = store::agreements_in(tx)
            .await?
            .iter()
            .map(|row| agreements::stored_agreement(row).map(|(domain, _)| domain))
            .collect::<Result<_>>()?;
        Ok((consents, agreements))
    }

    /// The person's latest health information in the permitted categories.
    pub(crate) async fn permitted_health(
        &self,
        tx: &mut Tx,
        person_key: &str,
        permitted: &BTreeSet<DataCategory>,
    ) -> Result<HealthSummary> {
        let mut parts = Vec::new();
        for (category, record_id, sealed) in records::latest_parts(tx, person_key).await? {
            let Some(kind) = DataCategory::from_str_name(&category) else {
                continue;
            };
            if !permitted.contains(&kind) {
                continue;
            }
            let bytes = self
                .at_rest
                .open(&sealed, &records::at_rest_binding(&record_id, &category))
                .map_err(|e| Error::Internal(format!("opening a stored record: {e}")))?;
            let part: HealthSummary = prost::Message::decode(bytes.as_slice())
                .map_err(|_| Error::Internal("a stored record does not decode".into()))?;
            parts.push(minimise::only(&part, kind));
        }
        Ok(minimise::merge(parts))
    }

    /// The audit entry for a decision.
    pub(crate) fn audit_entry(
        &self,
        caller: &Caller,
        person_key: &str,
        request: &Request,
        outcome: &Outcome,
        justification: &str,
    ) -> Entry {
        let decision = if outcome.permits() {
            pb::Decision::Permit
        } else {
            pb::Decision::Deny
        };
        let categories: Vec<DataCategory> = if outcome.permits() {
            outcome.permitted.keys().copied().collect()
        } else {
            crate::domain::decision::wanted(request)
                .into_iter()
                .collect()
        };
        Entry {
            seq: 0,
            at: request.at,
            actor_organisation: caller.code().to_owned(),
            actor_kind: caller.kind().to_proto(),
            actor_role: caller.role.as_str().to_owned(),
            person_key: person_key.to_owned(),
            purpose: request.purpose,
            decision,
            bases: lawful_bases(outcome),
            categories,
            justification: justification.to_owned(),
            flagged: outcome.flagged(),
        }
    }
}

pub(crate) fn lawful_bases(outcome: &Outcome) -> Vec<pb::LawfulBasis> {
    outcome
        .bases()
        .into_iter()
        .map(|basis| match basis {
            Basis::Consent(id) => pb::LawfulBasis {
                r#type: pb::LawfulBasisType::Consent as i32,
                basis_id: id,
            },
            Basis::Agreement(kind, id) => pb::LawfulBasis {
                r#type: kind as i32,
                basis_id: id,
            },
        })
        .collect()
}

pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

pub(crate) fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: at.timestamp_subsec_nanos() as i32,
    }
}
