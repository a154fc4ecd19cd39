//! The referrals use cases: validated commands in, one transaction each (state,
//! change feeds and outbox events together), responses out. The gRPC layer
//! only authenticates, authorises and delegates here.

mod feeds;
mod referrals;
mod releases;
mod tasks;
pub mod transitions;

pub use feeds::Feed;
pub use releases::ReleaseQueue;

use crate::domain::fields::timestamp_to_proto;
use crate::domain::observations::Subject;
use crate::domain::person::Person;
use crate::domain::rules::PathwayRules;
use crate::domain::task::Task;
use crate::error::Result;
use crate::events::Topics;
use crate::store::Store;
use crate::store::rows::PersonRow;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use throughcare_platform::bus::Event;
use throughcare_platform::clock::SharedClock;
use throughcare_platform::db::Tx;
use throughcare_platform::feed::{FeedEntry, Feeds};
use throughcare_platform::identifiers::PseudonymKey;
use throughcare_platform::identity::Registry;
use throughcare_platform::outbox::OutboxWaker;
use throughcare_platform::sealing::Keyring;
use throughcare_platform::validation::FieldViolation;
use throughcare_proto::events::v1::{Observation, ObservationAreas};
use throughcare_proto::referrals::v1 as pb;

/// Everything the use cases need, shared by the gRPC services and the
/// background tasks.
#[derive(Debug)]
pub struct App {
    pub store: Store,
    pub registry: Registry,
    pub pseudonyms: PseudonymKey,
    pub keyring: Keyring,
    pub rules: PathwayRules,
    pub clock: SharedClock,
    pub topics: Topics,
    pub waker: OutboxWaker,
    pub feeds: Feeds,
    pub release_queue: ReleaseQueue,
}

pub type SharedApp = Arc<App>;

/// What one transaction announces: events for the outbox and entries for the
/// organisations' change feeds, written together at its end.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    events: Vec<Event>,
    observations: Vec<Observation>,
    feed: Vec<FeedEntry>,
}

impl Effects {
    pub(crate) fn push(&mut self, event: Event) {
        self.events.push(event);
    }

    /// An observation, published with the transaction's others in one batch.
    pub(crate) fn observe(&mut self, observation: Observation) {
        self.observations.push(observation);
    }

    pub(crate) fn feed(
        &mut self,
        organisation: &str,
        feed: Feed,
        entity_id: &str,
        snapshot: Vec<u8>,
        at: DateTime<Utc>,
    ) {
        self.feed.push(FeedEntry {
            organisation: organisation.to_owned(),
            feed: feed.name(),
            entity_id: entity_id.to_owned(),
            snapshot,
            at,
        });
    }

    /// Adds another use case's effects after these, to be written together;
    /// its observations still go out as a batch of their own.
    pub(crate) fn absorb(&mut self, mut other: Effects, topics: &Topics) {
        other.batch_observations(topics);
        self.events.append(&mut other.events);
        self.feed.append(&mut other.feed);
    }

    fn batch_observations(&mut self, topics: &Topics) {
        if let Some(first) = self.observations.first() {
            let person_key = first.person_key.clone();
            self.events
                .push(topics.batch(&person_key, std::mem::take(&mut self.observations)));
        }
    }

    /// Writes the events to the outbox and the feed entries to their feeds.
    /// Call it last: appending takes each feed's counter lock, held to commit.
    pub(crate) async fn enqueue(mut self, tx: &mut Tx, topics: &Topics) -> Result<()> {
        self.batch_observations(topics);
        tx.enqueue_all(&self.events).await?;
        throughcare_platform::feed::append(tx, self.feed).await?;
        Ok(())
    }
}

impl App {
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// After a commit: wake the relay and the watch streams.
    pub(crate) fn committed(&self) {
        self.waker.wake();
        self.feeds.notify();
    }

    pub(crate) fn episode_key(&self, kind: &str, id: &str) -> String {
        self.pseudonyms.episode_key(kind, id)
    }

    /// Who and where observations about this person are, for one episode.
    pub(crate) fn subject(
        &self,
        person: &PersonRow,
        areas: ObservationAreas,
        episode_key: String,
        on: chrono::NaiveDate,
    ) -> Result<Subject> {
        let demographics = Person {
            ids: person.ids()?,
            date_of_birth: person.date_of_birth,
            sex: person.sex()?,
            ethnic_group: person.ethnic_group()?,
        };
        Ok(Subject {
            person_key: person.person_key.clone(),
            areas,
            sex: demographics.sex,
            age_band: demographics.age_band(on),
            ethnic_group: demographics.ethnic_group,
            episode_key,
        })
    }

    pub(crate) fn task_to_proto(
        &self,
        task: &Task,
        person: &throughcare_proto::types::v1::PersonIdentifiers,
    ) -> pb::ContinuityTask {
        pb::ContinuityTask {
            task_id: task.task_id.clone(),
            release_id: task.release_id.clone(),
            rule_id: task.rule_id.clone(),
            kind: task.kind.to_proto() as i32,
            service: task.service.map_or(0, |s| s as i32),
            responsible_organisation: task.responsible.clone(),
            state: task.state.to_proto() as i32,
            opened_at: Some(timestamp_to_proto(task.opened_at)),
            due_at: Some(timestamp_to_proto(task.due_at)),
            closed_at: task.closed_at.map(timestamp_to_proto),
            referral_id: task.referral_id.clone().unwrap_or_default(),
            person: Some(person.clone()),
        }
    }
}

/// A new id: a UUIDv7 (time-ordered), as text.
pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Page sizes: 0 means 50; at most 500.
pub(crate) fn page_size(requested: i32) -> Result<i64> {
    match requested {
        0 => Ok(50),
        1..=500 => Ok(i64::from(requested)),
        _ => Err(FieldViolation::new("page_size", "must be between 0 and 500").into()),
    }
}

impl From<FieldViolation> for crate::error::Error {
    fn from(violation: throughcare_platform::validation::FieldViolation) -> Self {
        crate::error::Error::Rejected(violation.into())
    }
}

/// A page token: the (time, id) of the last item, opaque to clients.
pub(crate) fn encode_token(at: DateTime<Utc>, id: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("{}|{id}", at.timestamp_micros()))
}

pub(crate) fn decode_token(
    token: &str,
) -> std::result::Result<Option<(DateTime<Utc>, String)>, FieldViolation> {
    use base64::Engine;
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || FieldViolation::new("page_token", "is not a page token this service issued");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (micros, id) = text.split_once('|').ok_or_else(bad)?;
    let at = micros
        .parse::<i64>()
        .ok()
        .and_then(DateTime::from_timestamp_micros)
        .ok_or_else(bad)?;
    Ok(Some((at, id.to_owned())))
}
