//! The referrals use cases: validated commands in, one transaction each (state,
//! change feeds and outbox events together), responses out. The gRPC layer
//! only authenticates, authorises and delegates here.

mod assessments;
mod consume;
mod feeds;
mod receipts;
mod referrals;
mod release_views;
mod releases;
mod reversals;
mod self_reports;
mod tasks;
pub mod transitions;
mod worklist;

pub use consume::Consumer;
pub use feeds::Feed;
pub use receipts::OVERDUE_RULE;
pub use releases::ReleaseQueue;

use crate::domain::observations::Subject;
use crate::domain::person::Person;
use crate::domain::rules::PathwayRules;
use crate::domain::task::Task;
use crate::error::{Error, Result};
use crate::events::Topics;
use crate::store::Store;
use crate::store::rows::PersonRow;
use crate::store::write::{self, Placement, Resolved};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use throughcare_platform::clock::SharedClock;
use throughcare_platform::clock::to_timestamp;
use throughcare_platform::identifiers::PseudonymKey;
use throughcare_platform::identity::Registry;
use throughcare_platform::sealing::Keyring;
use throughcare_platform::validation::{FieldViolation, Violations};
use throughcare_platform::work::{Transactions, Work};
use throughcare_proto::events::v1::{Observation, ObservationAreas};
use throughcare_proto::referrals::v1 as pb;
use throughcare_proto::types::v1::PersonIdentifiers;

/// Everything the use cases need, shared by the gRPC services and the
/// background tasks.
#[derive(Debug)]
pub struct App {
    pub store: Store,
    /// Where each use case's unit of work begins; it owns the change feeds.
    pub transactions: Transactions,
    pub registry: Registry,
    pub pseudonyms: PseudonymKey,
    pub keyring: Keyring,
    pub rules: PathwayRules,
    pub clock: SharedClock,
    pub topics: Topics,
    pub release_queue: ReleaseQueue,
}

pub type SharedApp = Arc<App>;

impl App {
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The person a call names, found or created by the person rule. When the
    /// call shows that more keys name them, that is said on the bus first,
    /// before anything else the call publishes about them.
    async fn person(
        &self,
        work: &mut Work,
        person: &Person,
        placement: Option<Placement<'_>>,
        now: DateTime<Utc>,
    ) -> Result<PersonRow> {
        let resolved =
            write::resolve_person(work.tx(), &self.pseudonyms, person, placement, now).await?;
        let Resolved { row, merged_keys } = resolved;
        if !merged_keys.is_empty() {
            let linked = crate::events::persons_linked(&row.person_key, merged_keys, now);
            for event in self.topics.linked(&linked) {
                work.publish(event);
            }
        }
        Ok(row)
    }

    /// Publishes one person's observations from one change as one event.
    pub(crate) fn observe(&self, work: &mut Work, observations: Vec<Observation>) {
        if let Some(event) = self.topics.batch(observations) {
            work.publish(event);
        }
    }

    /// The identifiers of a stored person; `missing` is what is not found
    /// when they are not (what the caller asked for, not the person).
    pub(crate) async fn person_ids(
        &self,
        person_key: &str,
        missing: &'static str,
    ) -> Result<PersonIdentifiers> {
        let person = self
            .store
            .person(person_key)
            .await?
            .ok_or(Error::NotFound(missing))?;
        Ok(person.ids()?.to_proto())
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
        person: &PersonIdentifiers,
    ) -> pb::ContinuityTask {
        pb::ContinuityTask {
            task_id: task.task_id.clone(),
            release_id: task.release_id.clone(),
            rule_id: task.rule_id.clone(),
            kind: task.kind.to_proto() as i32,
            service: task.service.map_or(0, |s| s as i32),
            responsible_organisation: task.responsible.clone(),
            state: task.state.to_proto() as i32,
            opened_at: Some(to_timestamp(task.opened_at)),
            due_at: Some(to_timestamp(task.due_at)),
            closed_at: task.closed_at.map(to_timestamp),
            referral_id: task.referral_id.clone().unwrap_or_default(),
            person: Some(person.clone()),
        }
    }
}

/// A page of a listing: its size (0 means 50; at most 500) and where it
/// continues, each violation collected in `v`.
pub(crate) fn page(
    v: &mut Violations,
    page_size: i32,
    page_token: &str,
) -> (i64, Option<(DateTime<Utc>, String)>) {
    let limit = match page_size {
        0 => Some(50),
        1..=500 => Some(i64::from(page_size)),
        _ => v.check(Err(FieldViolation::new(
            "page_size",
            "must be between 0 and 500",
        ))),
    };
    let after = v.check(decode_token(page_token)).flatten();
    (limit.unwrap_or(50), after)
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
