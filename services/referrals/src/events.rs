//! What the referrals service tells the others, always through the outbox:
//! pseudonymised lifecycle events, health records sealed for the sharing
//! service, and coded observations for the indicators service.

use throughcare_platform::bus::{Bus, Event};
use throughcare_platform::sealing::Keyring;
use throughcare_proto::events::v1::{
    HealthRecord, Observation, ObservationsRecorded, ObservationsRetracted, SealedHealthRecord,
};
use throughcare_proto::topics;

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

    /// One person's observations from one change, as one record.
    pub fn batch(&self, person_key: &str, observations: Vec<Observation>) -> Event {
        let batch = ObservationsRecorded {
            person_key: person_key.to_owned(),
            observations,
        };
        Event::new(&self.observations, person_key, SOURCE, &batch)
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
