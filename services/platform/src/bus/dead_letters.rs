//! Dead letters an operator can see and fix.
//!
//! A record its consumer group could not process is republished to the
//! topic's dead-letter topic (`<topic>.dlq`) with where it came from, which
//! group failed it, why and when (the `dlq_*` headers). This module reads
//! those topics back: [`Bus::dead_letters`] lists every dead letter and
//! whether it has been replayed; [`Bus::replay_dead_letter`] sends one back to
//! its own topic, marked for the one group that failed it (every other group
//! passes over it), and then records the replay in the dead-letter topic as a
//! `DeadLetterReplayed` event, which settles the dead letter. A replay that
//! fails again is dead-lettered again, as a new dead letter. A replay cut off
//! between the two steps leaves the dead letter unsettled; replaying it again
//! is harmless, because consumers record each event id in their inbox. A
//! replayed record comes after whatever its key's partition received since:
//! the group applies it later than it would have, which an operator weighs
//! before replaying (the README says what to check).
//!
//! Nothing here reads a payload: listings show positions, event types,
//! reasons and times, never what the record says.

use super::{Bus, BusError, Event, EventDecodeError, Publisher, Received, Record};
use crate::telemetry::Metrics;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use throughcare_proto::events::v1::DeadLetterReplayed;

/// The headers the consumer loop adds when it dead-letters a record.
pub(super) mod header {
    pub(crate) const REASON: &str = "dlq_reason";
    pub(crate) const GROUP: &str = "dlq_group";
    pub(crate) const TOPIC: &str = "dlq_topic";
    pub(crate) const PARTITION: &str = "dlq_partition";
    pub(crate) const OFFSET: &str = "dlq_offset";
    pub(crate) const AT: &str = "dlq_at";
    /// On a replayed record: the one consumer group that is to handle it.
    pub(crate) const REPLAY_FOR: &str = "dlq_replay_for";
}

/// The `ce_source` of the events operators' tools write.
const OPERATOR_SOURCE: &str = "/throughcare/operator";

/// Where records of `topic` that cannot be processed go.
pub fn dead_letter_topic(topic: &str) -> String {
    format!("{topic}.dlq")
}

/// Whether `topic` is a dead-letter topic.
pub fn is_dead_letter_topic(topic: &str) -> bool {
    topic.ends_with(".dlq")
}

/// Where a dead letter stands: its dead-letter topic, partition and offset,
/// written `topic/partition/offset`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeadLetterId {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

impl fmt::Display for DeadLetterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.topic, self.partition, self.offset)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a dead letter's id (topic.dlq/partition/offset, as `list` prints it)")]
pub struct BadDeadLetterId(String);

impl FromStr for DeadLetterId {
    type Err = BadDeadLetterId;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || BadDeadLetterId(text.to_owned());
        let mut parts = text.rsplitn(3, '/');
        let (Some(offset), Some(partition), Some(topic)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        if !is_dead_letter_topic(topic) {
            return Err(bad());
        }
        Ok(Self {
            topic: topic.to_owned(),
            partition: partition.parse().map_err(|_| bad())?,
            offset: offset.parse().map_err(|_| bad())?,
        })
    }
}

/// One dead letter, as an operator sees it: no payload, no key.
#[derive(Clone)]
pub struct DeadLetter {
    pub id: DeadLetterId,
    /// The topic the record was consumed from, and where it stood there.
    pub topic: String,
    pub partition: Option<i32>,
    pub offset: Option<i64>,
    /// The consumer group that failed it.
    pub group: String,
    /// `ce_type` and `ce_id`, when the record is a CloudEvent.
    pub event_type: Option<String>,
    pub event_id: Option<String>,
    pub reason: String,
    /// When it was dead-lettered.
    pub at: Option<DateTime<Utc>>,
    pub payload_bytes: usize,
    /// When it was replayed, if it has been.
    pub replayed_at: Option<DateTime<Utc>>,
    record: Record,
}

impl fmt::Debug for DeadLetter {
    /// Everything but the record (its key is a person's pseudonym).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadLetter")
            .field("id", &self.id)
            .field("topic", &self.topic)
            .field("partition", &self.partition)
            .field("offset", &self.offset)
            .field("group", &self.group)
            .field("event_type", &self.event_type)
            .field("event_id", &self.event_id)
            .field("reason", &self.reason)
            .field("at", &self.at)
            .field("payload_bytes", &self.payload_bytes)
            .field("replayed_at", &self.replayed_at)
            .finish_non_exhaustive()
    }
}

impl DeadLetter {
    fn from_received(received: Received) -> Self {
        let record = received.record;
        let text = |name: &str| record.header_str(name).map(str::to_owned);
        Self {
            id: DeadLetterId {
                topic: record.topic.clone(),
                partition: received.partition,
                offset: received.offset,
            },
            topic: text(header::TOPIC).unwrap_or_default(),
            partition: text(header::PARTITION).and_then(|p| p.parse().ok()),
            offset: text(header::OFFSET).and_then(|o| o.parse().ok()),
            group: text(header::GROUP).unwrap_or_default(),
            event_type: text("ce_type"),
            event_id: text("ce_id"),
            reason: text(header::REASON).unwrap_or_default(),
            at: text(header::AT)
                .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                .map(|t| t.with_timezone(&Utc)),
            payload_bytes: record.payload.len(),
            replayed_at: None,
            record,
        }
    }

    /// The record as it goes back to its topic: without the dead-letter
    /// headers, marked for the group that failed it.
    fn replayed_record(&self) -> Record {
        let mut record = self.record.clone();
        record.topic.clone_from(&self.topic);
        strip_dead_letter_headers(&mut record);
        record.headers.push((
            header::REPLAY_FOR.to_owned(),
            self.group.as_bytes().to_vec(),
        ));
        record
    }
}

/// Drops the `dlq_*` headers (a record dead-lettered again gets fresh ones).
pub(super) fn strip_dead_letter_headers(record: &mut Record) {
    record.headers.retain(|(name, _)| !name.starts_with("dlq_"));
}

/// The group a replayed record is meant for, if it is a replay.
pub(super) fn replayed_for(record: &Record) -> Option<&str> {
    record.header_str(header::REPLAY_FOR)
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("no dead letter {0}")]
    NotFound(DeadLetterId),
    #[error("dead letter {id} was replayed at {at}; if it failed again it is a new dead letter")]
    AlreadyReplayed { id: DeadLetterId, at: DateTime<Utc> },
    #[error("dead letter {0} does not say which topic it came from")]
    NoOrigin(DeadLetterId),
    #[error("dead letter {0} is not a CloudEvent: no consumer could ever process it")]
    NotAnEvent(DeadLetterId),
}

impl Bus {
    /// Every dead letter under this bus's topic prefix, in dead-letter topic
    /// and offset order, each with when it was replayed, if it was.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, BusError> {
        let prefix = self.topic("");
        let mut topics: Vec<String> = self
            .topics()
            .await?
            .into_iter()
            .filter(|t| t.starts_with(&prefix) && is_dead_letter_topic(t))
            .collect();
        topics.sort();
        let mut all = Vec::new();
        for topic in topics {
            all.extend(self.dead_letters_of(&topic).await?);
        }
        Ok(all)
    }

    /// The dead letters of one dead-letter topic (a full name).
    async fn dead_letters_of(&self, topic: &str) -> Result<Vec<DeadLetter>, BusError> {
        let mut letters = BTreeMap::new();
        let mut replays = Vec::new();
        let mut replay = self.replay(topic).await?;
        while let Some(received) = replay.next().await? {
            match replayed(&received.record) {
                Some(Ok(marker)) => replays.push(marker),
                Some(Err(error)) => {
                    tracing::warn!(%topic, offset = received.offset, %error, "unreadable replay marker")
                }
                None => {
                    let letter = DeadLetter::from_received(received);
                    letters.insert((letter.id.partition, letter.id.offset), letter);
                }
            }
        }
        for Marker {
            partition,
            offset,
            at,
        } in replays
        {
            if let Some(letter) = letters.get_mut(&(partition, offset)) {
                letter.replayed_at.get_or_insert(at);
            }
        }
        Ok(letters.into_values().collect())
    }

    /// Dead letter `id`, if there is one under this bus's topic prefix.
    pub async fn dead_letter(&self, id: &DeadLetterId) -> Result<Option<DeadLetter>, BusError> {
        if !id.topic.starts_with(&self.topic("")) {
            return Ok(None);
        }
        match self.dead_letters_of(&id.topic).await {
            Err(BusError::UnknownTopic(_)) => Ok(None),
            letters => Ok(letters?.into_iter().find(|l| l.id == *id)),
        }
    }

    /// Sends dead letter `id` back to its topic for the group that failed it,
    /// then records the replay in the dead-letter topic.
    pub async fn replay_dead_letter(&self, id: &DeadLetterId) -> Result<DeadLetter, ReplayError> {
        let letter = self
            .dead_letter(id)
            .await?
            .ok_or_else(|| ReplayError::NotFound(id.clone()))?;
        if let Some(at) = letter.replayed_at {
            return Err(ReplayError::AlreadyReplayed { id: id.clone(), at });
        }
        if letter.topic.is_empty() || letter.group.is_empty() {
            return Err(ReplayError::NoOrigin(id.clone()));
        }
        if Event::from_record(&letter.record).is_err() {
            return Err(ReplayError::NotAnEvent(id.clone()));
        }
        self.publish(&[letter.replayed_record()]).await?;
        let marker = Event::new(
            &id.topic,
            &letter.record.key,
            OPERATOR_SOURCE,
            &DeadLetterReplayed {
                partition: id.partition,
                offset: id.offset,
                group: letter.group.clone(),
            },
        );
        self.publish(&[marker.to_record()]).await?;
        tracing::info!(dead_letter = %id, group = %letter.group, "dead letter replayed");
        Ok(DeadLetter {
            replayed_at: Some(marker.time),
            ..letter
        })
    }
}

/// How often a service counts its groups' unreplayed dead letters.
pub const DEAD_LETTER_SCAN: std::time::Duration = std::time::Duration::from_secs(30);

/// A service's consumer groups and their topics, watched for dead letters
/// that await a replay: the count goes to a metric per group and, through
/// the gRPC server, to a health signal.
#[derive(Clone, Debug)]
pub struct DeadLetterWatch {
    bus: Bus,
    metrics: Metrics,
    groups: Arc<Mutex<Vec<WatchedGroup>>>,
}

#[derive(Clone, Debug)]
struct WatchedGroup {
    group: String,
    /// Full names of the topics it consumes.
    topics: Vec<String>,
}

impl DeadLetterWatch {
    pub fn new(bus: Bus, metrics: Metrics) -> Self {
        Self {
            bus,
            metrics,
            groups: Arc::default(),
        }
    }

    /// Watches `group`'s dead letters from `topics` (full names) too.
    pub fn add(&self, group: &str, topics: &[String]) {
        self.groups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(WatchedGroup {
                group: group.to_owned(),
                topics: topics.to_vec(),
            });
    }

    /// Counts the unreplayed dead letters of every watched group, recording
    /// each group's count as a metric; returns the total, or the first
    /// failure (the groups that could be counted are recorded all the same).
    pub async fn scan(&self) -> Result<u64, BusError> {
        let groups = self
            .groups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        // Each dead-letter topic is read once, however many groups consume
        // the topic it belongs to.
        let topics: BTreeSet<&str> = groups
            .iter()
            .flat_map(|g| g.topics.iter().map(String::as_str))
            .collect();
        let (mut read, mut failed) = (BTreeMap::new(), None);
        for topic in topics {
            match self.bus.dead_letters_of(&dead_letter_topic(topic)).await {
                Ok(letters) => {
                    read.insert(topic, letters);
                }
                Err(error) => {
                    failed.get_or_insert(error);
                }
            }
        }
        let mut total = 0;
        for WatchedGroup { group, topics } in &groups {
            let waiting = |letters: &Vec<DeadLetter>| {
                letters
                    .iter()
                    .filter(|l| l.group == *group && l.replayed_at.is_none())
                    .count() as u64
            };
            // A group with a topic that could not be read keeps its last count.
            let Some(count) = topics
                .iter()
                .map(|t| read.get(t.as_str()).map(waiting))
                .sum::<Option<u64>>()
            else {
                continue;
            };
            self.metrics.dead_letters_unreplayed(group, count);
            total += count;
        }
        failed.map_or(Ok(total), Err)
    }
}

/// A replay recorded in a dead-letter topic: which dead letter, and when.
struct Marker {
    partition: i32,
    offset: i64,
    at: DateTime<Utc>,
}

/// The replay `record` records; `None` for a dead letter itself.
fn replayed(record: &Record) -> Option<Result<Marker, EventDecodeError>> {
    let event = Event::from_record(record).ok()?;
    if !event.is::<DeadLetterReplayed>() {
        return None;
    }
    Some(event.decode::<DeadLetterReplayed>().map(|m| Marker {
        partition: m.partition,
        offset: m.offset,
        at: event.time,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_read_back_what_they_print() {
        let id = DeadLetterId {
            topic: "t.throughcare.referrals.events.dlq".into(),
            partition: 3,
            offset: 17,
        };
        assert_eq!(id.to_string().parse::<DeadLetterId>().unwrap(), id);
        for bad in ["", "x/1/2", "a.dlq/1", "a.dlq/x/2", "a.dlq/1/y", "a.dlq"] {
            assert!(bad.parse::<DeadLetterId>().is_err(), "{bad}");
        }
    }
}
