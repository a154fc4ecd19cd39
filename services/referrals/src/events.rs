//! What the referrals service tells the others, always through the outbox:
//! pseudonymised lifecycle events, health records sealed for the sharing
//! service, and coded observations for the indicators service. The events are
//! built here from domain values; the use cases decide when.

use crate::domain::area::Destination;
use crate::domain::fields::date_to_proto;
use crate::domain::person::Person;
use crate::domain::referral::ReferralState;
use crate::domain::release::Release;
use crate::domain::task::Task;
use crate::store::rows::StoredReferral;
use chrono::{DateTime, Utc};
use throughcare_platform::bus::{Bus, Event};
use throughcare_platform::clock::to_timestamp;
use throughcare_platform::sealing::Keyring;
use throughcare_proto::events::v1::{
    self as events, HealthRecord, Observation, ObservationsRecorded, ObservationsRetracted,
    SealedHealthRecord,
};
use throughcare_proto::referrals::v1 as pb;
use throughcare_proto::topics;
use throughcare_proto::types::v1 as types;

pub const SOURCE: &str = "/throughcare/referrals";

/// The full names of this service's topics (with the deployment prefix).
#[derive(Debug, Clone)]
pub struct Topics {
    pub events: String,
    pub health_records: String,
    pub observations: String,
}

impl Topics {
    pub fn new(bus: &Bus) -> Self {
        Self {
            events: bus.topic(topics::REFERRALS_EVENTS),
            health_records: bus.topic(topics::HEALTH_RECORDS),
            observations: bus.topic(topics::OBSERVATIONS),
        }
    }

    /// A lifecycle event about `person_key`.
    pub fn lifecycle<M: prost::Message + prost::Name>(
        &self,
        person_key: &str,
        message: &M,
    ) -> Event {
        Event::new(&self.events, person_key, SOURCE, message)
    }

    /// That keys name one person: for the sharing service on the lifecycle
    /// topic, and for the indicators service on the observations topic (which
    /// it rebuilds from, so the link is kept with what it joins).
    pub fn linked(&self, linked: &events::PersonsLinked) -> [Event; 2] {
        let key = &linked.surviving_key;
        [
            Event::new(&self.events, key.clone(), SOURCE, linked),
            Event::new(&self.observations, key.clone(), SOURCE, linked),
        ]
    }

    /// One person's observations from one change, as one record (none when
    /// nothing was observed).
    pub fn batch(&self, observations: Vec<Observation>) -> Option<Event> {
        let person_key = observations.first()?.person_key.clone();
        let batch = ObservationsRecorded {
            person_key: person_key.clone(),
            observations,
        };
        Some(Event::new(&self.observations, person_key, SOURCE, &batch))
    }

    /// Withdraws every observation of an episode (a reversed release).
    pub fn retraction(&self, retraction: &ObservationsRetracted) -> Event {
        Event::new(
            &self.observations,
            retraction.person_key.clone(),
            SOURCE,
            retraction,
        )
    }

    /// The record sealed so only the sharing service can read it, bound to its
    /// record id and person key.
    pub fn sealed_record(&self, keyring: &Keyring, record: &HealthRecord) -> Event {
        let binding =
            throughcare_proto::sealed_health_record_binding(&record.record_id, &record.person_key);
        let sealed = keyring.seal(&prost::Message::encode_to_vec(record), &binding);
        let message = SealedHealthRecord {
            record_id: record.record_id.clone(),
            person_key: record.person_key.clone(),
            key_id: sealed.key_id,
            nonce: sealed.nonce,
            ciphertext: sealed.ciphertext,
        };
        Event::new(
            &self.health_records,
            record.person_key.clone(),
            SOURCE,
            &message,
        )
    }
}

/// That `merged_keys` name the person keyed `surviving_key` from now on.
pub fn persons_linked(
    surviving_key: &str,
    merged_keys: Vec<String>,
    at: DateTime<Utc>,
) -> events::PersonsLinked {
    events::PersonsLinked {
        surviving_key: surviving_key.to_owned(),
        merged_keys,
        linked_at: Some(to_timestamp(at)),
    }
}

pub fn release_notified(release: &Release) -> events::ReleaseNotified {
    events::ReleaseNotified {
        release_id: release.release_id.clone(),
        person_key: release.person_key.clone(),
        release_date: Some(date_to_proto(release.release_date)),
        reason: release.reason as i32,
        releasing_prison: release.releasing_prison.clone(),
        destination: Some(release.destination.to_proto()),
        notified_at: Some(to_timestamp(release.notified_at)),
        notified_by: release.notified_by.clone(),
    }
}

pub fn release_reversed(
    release: &Release,
    reason: pb::ReversalReason,
    at: DateTime<Utc>,
) -> events::ReleaseReversed {
    events::ReleaseReversed {
        release_id: release.release_id.clone(),
        person_key: release.person_key.clone(),
        reason: reason as i32,
        reversed_at: Some(to_timestamp(at)),
    }
}

pub fn task_opened(task: &Task) -> events::ContinuityTaskOpened {
    events::ContinuityTaskOpened {
        task_id: task.task_id.clone(),
        release_id: task.release_id.clone(),
        person_key: task.person_key.clone(),
        rule_id: task.rule_id.clone(),
        kind: task.kind.to_proto() as i32,
        service: task.service.map_or(0, |s| s as i32),
        responsible_organisation: task.responsible.clone(),
        due_at: Some(to_timestamp(task.due_at)),
        opened_at: Some(to_timestamp(task.opened_at)),
    }
}

/// A task closed at `at`, by its referral if it has one.
pub fn task_closed(task: &Task, at: DateTime<Utc>) -> events::ContinuityTaskClosed {
    events::ContinuityTaskClosed {
        task_id: task.task_id.clone(),
        release_id: task.release_id.clone(),
        person_key: task.person_key.clone(),
        referral_id: task.referral_id.clone().unwrap_or_default(),
        closed_at: Some(to_timestamp(at)),
    }
}

pub fn task_revoked(task: &Task, at: DateTime<Utc>) -> events::ContinuityTaskRevoked {
    events::ContinuityTaskRevoked {
        task_id: task.task_id.clone(),
        release_id: task.release_id.clone(),
        person_key: task.person_key.clone(),
        revoked_at: Some(to_timestamp(at)),
    }
}

pub fn task_overdue(task: &Task, detected_at: DateTime<Utc>) -> events::ContinuityTaskOverdue {
    events::ContinuityTaskOverdue {
        task_id: task.task_id.clone(),
        release_id: task.release_id.clone(),
        person_key: task.person_key.clone(),
        responsible_organisation: task.responsible.clone(),
        due_at: Some(to_timestamp(task.due_at)),
        detected_at: Some(to_timestamp(detected_at)),
    }
}

pub fn referral_requested(referral: &StoredReferral) -> events::ReferralRequested {
    events::ReferralRequested {
        referral_id: referral.referral_id.clone(),
        person_key: referral.person_key.clone(),
        service: referral.service as i32,
        referrer: referral.referrer.clone(),
        provider: referral.provider.clone(),
        release_id: referral.release_id.clone().unwrap_or_default(),
        requested_at: Some(to_timestamp(referral.requested_at)),
    }
}

pub fn referral_state_changed(
    referral: &StoredReferral,
    from: ReferralState,
    actor: &str,
) -> events::ReferralStateChanged {
    events::ReferralStateChanged {
        referral_id: referral.referral_id.clone(),
        person_key: referral.person_key.clone(),
        service: referral.service as i32,
        from_state: from.to_proto() as i32,
        to_state: referral.state.to_proto() as i32,
        actor: actor.to_owned(),
        referrer: referral.referrer.clone(),
        provider: referral.provider.clone(),
        rejection_reason: referral.rejection_reason.map_or(0, |r| r as i32),
        version: referral.version,
        changed_at: Some(to_timestamp(referral.updated_at)),
    }
}

/// What a sealed health record says, and about whom.
#[derive(Debug, Clone, Copy)]
pub struct Recorded<'a> {
    pub source: events::HealthRecordSource,
    pub source_id: &'a str,
    pub person_key: &'a str,
    /// The identifiers the service holds for the person (maybe more than given).
    pub ids: &'a types::PersonIdentifiers,
    pub person: &'a Person,
    pub area: &'a Destination,
    pub health: &'a types::HealthSummary,
    pub recorded_by: &'a str,
    pub at: DateTime<Utc>,
}

/// The health record sent (sealed) to the sharing service, under `record_id`.
pub fn health_record(record_id: String, r: Recorded<'_>) -> HealthRecord {
    HealthRecord {
        record_id,
        source: r.source as i32,
        source_id: r.source_id.to_owned(),
        person_key: r.person_key.to_owned(),
        person: Some(types::PersonDetails {
            identifiers: Some(r.ids.clone()),
            date_of_birth: r.person.date_of_birth.map(date_to_proto),
            sex: r.person.sex as i32,
            ethnic_group: r.person.ethnic_group as i32,
        }),
        destination: Some(r.area.to_proto()),
        health: Some(r.health.clone()),
        recorded_by: r.recorded_by.to_owned(),
        recorded_at: Some(to_timestamp(r.at)),
    }
}
