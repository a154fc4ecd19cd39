//! The sharing use cases. Each is one unit of work ([`Work`]): state, outbox
//! events, feed entries and the audit entry together, the locked rows (feeds,
//! then the audit head) last and always in that order.

mod agreements;
mod audit;
mod consents;
mod consume;
mod deliveries;
mod disclosure;
mod receipts;

pub use consume::Consumer;

use crate::domain::audit::{Checkpoint, CheckpointKey, Entry};
use crate::domain::decision::{Agreement, Consent};
use crate::domain::minimise;
use crate::store::{self, Reader, people, records};
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;
use throughcare_platform::bus::Event;
use throughcare_platform::clock::SharedClock;
use throughcare_platform::db::Db;
use throughcare_platform::error::{Error, Result};
use throughcare_platform::feed::FeedEntry;
use throughcare_platform::identifiers::{PersonIds, PseudonymKey};
use throughcare_platform::identity::{Caller, OrganisationKind, Registry};
use throughcare_platform::sealing::{Keyring, Sealed};
use throughcare_platform::work::{Transactions, Work};
use throughcare_proto::events::v1 as events;
use throughcare_proto::sharing::v1 as pb;
use throughcare_proto::types::v1::{DataCategory, HealthSummary};

pub const SOURCE: &str = "/throughcare/sharing";
/// The feed each recipient's pushed deliveries are announced on.
pub const DELIVERIES: &str = "deliveries";

#[derive(Debug)]
pub struct App {
    /// Units of work on this service's database, and its change feeds.
    pub transactions: Transactions,
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
    /// Signs the audit chain's checkpoints.
    pub audit_key: CheckpointKey,
    /// The latest checkpoint this process signed: verification holds the
    /// chain to it even if the database lost it.
    pub checkpoint: std::sync::Mutex<Option<Checkpoint>>,
    /// How long a push's recipient has to read it before it is overdue.
    pub delivery_due: chrono::Duration,
}

impl App {
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn db(&self) -> &Db {
        self.transactions.db()
    }

    /// One of this service's events about a person.
    pub(crate) fn event<M: prost::Message + prost::Name>(
        &self,
        person_key: &str,
        message: &M,
    ) -> Event {
        Event::new(&self.events_topic, person_key, SOURCE, message)
    }

    /// Coded, pseudonymised observations about one person, as one batch.
    pub(crate) fn observed(
        &self,
        person_key: &str,
        observations: Vec<events::Observation>,
    ) -> Event {
        let batch = events::ObservationsRecorded {
            person_key: person_key.to_owned(),
            observations,
        };
        Event::new(&self.observations_topic, person_key, SOURCE, &batch)
    }

    /// The consents and agreements that bear on a person, as the decision sees them.
    /// The key of the person `ids` names, if `caller` may read what is held
    /// about them: a national organisation about anyone, any other only about
    /// a person it has a relationship with ([`people::related`]). The read is
    /// audited as `action` either way; one that may not is answered
    /// NOT_FOUND, as about a person never seen.
    pub(crate) async fn readable(
        &self,
        caller: &Caller,
        ids: &PersonIds,
        action: pb::AuditedAction,
    ) -> Result<String> {
        let mut work = self.transactions.begin().await?;
        let person = people::locate(Reader::Tx(work.tx()), &self.pseudonyms, ids).await?;
        let key = person.key.clone();
        let allowed = caller.kind() == OrganisationKind::National
            || (person.held && people::related(Reader::Tx(work.tx()), &key, caller.code()).await?);
        let reader = (
            caller.code(),
            caller.kind().to_proto(),
            caller.role.as_str(),
        );
        let entry = Entry::read(action, reader, &key, self.now(), allowed);
        audit::commit_audited(work, entry).await?;
        if allowed {
            Ok(key)
        } else {
            Err(Error::NotFound("person"))
        }
    }

    pub(crate) async fn bases_for(
        &self,
        work: &mut Work,
        person_key: Option<&str>,
    ) -> Result<(Vec<Consent>, Vec<Agreement>)> {
        let consents = match person_key {
            Some(key) => store::consents(Reader::Tx(work.tx()), key)
                .await?
                .iter()
                .map(consents::stored_consent)
                .collect::<Result<_>>()?,
            None => Vec::new(),
        };
        let agreements = store::agreements(Reader::Tx(work.tx()))
            .await?
            .iter()
            .map(|row| agreements::stored_agreement(row).map(|(domain, _)| domain))
            .collect::<Result<_>>()?;
        Ok((consents, agreements))
    }

    /// Opens what this service sealed at rest and decodes it.
    fn unseal<M: prost::Message + Default>(&self, sealed: &Sealed, binding: &[u8]) -> Result<M> {
        let bytes = self
            .at_rest
            .open(sealed, binding)
            .map_err(|e| Error::internal("opening a record sealed at rest", e))?;
        M::decode(bytes.as_slice()).map_err(|e| Error::internal("decoding a stored record", e))
    }

    /// The person's latest health information in the permitted categories.
    pub(crate) async fn permitted_health(
        &self,
        work: &mut Work,
        person_key: &str,
        permitted: &BTreeSet<DataCategory>,
    ) -> Result<HealthSummary> {
        let mut parts = Vec::new();
        for (category, record_id, sealed) in records::latest_parts(work.tx(), person_key).await? {
            let Some(kind) = DataCategory::from_str_name(&category) else {
                continue;
            };
            if !permitted.contains(&kind) {
                continue;
            }
            let binding = records::at_rest_binding(&record_id, &category);
            let part: HealthSummary = self.unseal(&sealed, &binding)?;
            parts.push(minimise::only(&part, kind));
        }
        Ok(minimise::merge(parts))
    }
}

/// The value of a validation that found nothing wrong: every part it checked
/// is there.
pub(crate) fn complete<T>(checked: Option<T>) -> Result<T> {
    checked.ok_or_else(|| Error::internal("validation", "a checked part is missing"))
}

/// A delivery announced on its recipient's feed.
pub(crate) fn delivery_entry(recipient: &str, delivery_id: &str, at: DateTime<Utc>) -> FeedEntry {
    FeedEntry {
        organisation: recipient.to_owned(),
        feed: DELIVERIES,
        entity_id: delivery_id.to_owned(),
        snapshot: Vec::new(),
        at,
    }
}
