//! The bus: narrow publish / consume traits with two implementations that pass
//! one contract suite — Kafka ([`kafka`], rdkafka with bundled librdkafka) and
//! in-process ([`in_process`], a durable log in SQLite for the embedded mode).
//!
//! Semantics both keep: topics exist only once created ([`Bus::ensure_topics`]);
//! records of one key stay in order; every consumer group sees every record;
//! a group resumes after the last record it acknowledged, so an unacknowledged
//! record is delivered again (consumers make that harmless with the inbox).

mod consumer;
mod dead_letters;
mod event;
mod health;
pub mod in_process;
pub mod kafka;

pub use consumer::{ConsumerOptions, HandleError, Handler, run_consumer};
pub use dead_letters::{
    BadDeadLetterId, DEAD_LETTER_SCAN, DeadLetter, DeadLetterId, DeadLetterWatch, ReplayError,
    dead_letter_topic, is_dead_letter_topic,
};
pub use event::{CONTENT_TYPE, Event, EventDecodeError};
pub use health::{ConsumerHealth, MemberId, STALL_AFTER};

use crate::config::{BusBackend, BusConfig};
use crate::telemetry::Metrics;
use std::fmt;
use std::future::Future;

/// One record: what is published and what is consumed.
#[derive(Clone, PartialEq, Eq)]
pub struct Record {
    pub topic: String,
    /// The pseudonymous person key (or another aggregate key): it picks the
    /// partition, so one key's records stay in order.
    pub key: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub payload: Vec<u8>,
}

impl Record {
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(|v| std::str::from_utf8(v).ok())
    }
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("topic", &self.topic)
            .field("key", &self.key)
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

/// A consumed record and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    pub record: Record,
    pub partition: i32,
    pub offset: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("topic {0} does not exist (topics are created at start-up, never automatically)")]
    UnknownTopic(String),
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("in-process bus storage: {0}")]
    Storage(#[from] sqlx::Error),
    #[error("publishing timed out or was cancelled")]
    PublishCancelled,
    #[error("replaying the log: {0}")]
    Replay(String),
    #[error("creating topic {topic}: {reason}")]
    CreateTopic { topic: String, reason: String },
}

/// Publishes records. Returns once the bus holds every record durably
/// (`acks=all` on Kafka); records are appended in slice order.
pub trait Publisher: Send + Sync {
    fn publish(&self, records: &[Record]) -> impl Future<Output = Result<(), BusError>> + Send;
}

/// Joins a consumer group on some topics.
pub trait Subscriber: Send + Sync {
    type Subscription: Subscription;

    fn subscribe(
        &self,
        group: &str,
        topics: &[String],
    ) -> impl Future<Output = Result<Self::Subscription, BusError>> + Send;
}

/// One member of a consumer group.
pub trait Subscription: Send {
    /// The next record, waiting for one if need be.
    fn next(&mut self) -> impl Future<Output = Result<Received, BusError>> + Send;

    /// Marks `received` (and everything before it on its partition) as done.
    /// Call only after the record's effect has committed. The position is
    /// committed soon after, and always by [`Subscription::commit`].
    fn ack(&mut self, received: &Received) -> Result<(), BusError>;

    /// Commits every acknowledged position now (graceful shutdown).
    fn commit(&mut self) -> impl Future<Output = Result<(), BusError>> + Send;
}

/// The bus a service was configured with, and its topic prefix.
#[derive(Clone, Debug)]
pub struct Bus {
    backend: Backend,
    prefix: String,
}

#[derive(Clone, Debug)]
enum Backend {
    Kafka(kafka::KafkaBus),
    InProcess(in_process::InProcessBus),
}

impl Bus {
    pub async fn connect(config: &BusConfig, metrics: Metrics) -> Result<Self, BusError> {
        let backend = match &config.backend {
            BusBackend::Kafka(kafka) => Backend::Kafka(kafka::KafkaBus::connect(kafka, metrics)?),
            BusBackend::InProcess { path } => {
                Backend::InProcess(in_process::InProcessBus::open(path.as_deref(), metrics).await?)
            }
        };
        Ok(Self {
            backend,
            prefix: config.topic_prefix.clone(),
        })
    }

    /// Wraps an already open in-process bus (the embedded mode shares one).
    pub fn in_process(bus: in_process::InProcessBus, prefix: &str) -> Self {
        Self {
            backend: Backend::InProcess(bus),
            prefix: prefix.to_owned(),
        }
    }

    /// Whether this process's consumers are consuming (Kafka only: the
    /// in-process bus cannot leave a member without its partitions).
    pub fn consumer_health(&self) -> Option<ConsumerHealth> {
        match &self.backend {
            Backend::Kafka(bus) => Some(bus.consumer_health()),
            Backend::InProcess(_) => None,
        }
    }

    /// The full name of a topic: the configured prefix plus `name`.
    pub fn topic(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Creates the topics with the broker's default retention (and their
    /// dead-letter topics, kept for ever), if they do not exist.
    pub async fn ensure_topics(&self, topics: &[String]) -> Result<(), BusError> {
        let specs: Vec<(String, Retention)> = topics
            .iter()
            .map(|t| (t.clone(), Retention::BrokerDefault))
            .collect();
        self.ensure_topics_with(&specs).await
    }

    /// Creates the topics (full names) with the retention each one's owner
    /// declared, and their dead-letter topics kept for ever, if they do not
    /// exist; an existing topic is left as it is.
    pub async fn ensure_topics_with(&self, topics: &[(String, Retention)]) -> Result<(), BusError> {
        let mut all: Vec<(String, Retention)> = topics.to_vec();
        all.extend(
            topics
                .iter()
                // Kept until replayed, not until the broker's default expires
                // them unseen.
                .map(|(t, _)| (dead_letter_topic(t), Retention::Forever)),
        );
        match &self.backend {
            Backend::Kafka(bus) => {
                let specs: Vec<(&str, Retention)> =
                    all.iter().map(|(t, r)| (t.as_str(), *r)).collect();
                bus.ensure_topics(&specs).await
            }
            Backend::InProcess(bus) => {
                let names: Vec<String> = all.into_iter().map(|(t, _)| t).collect();
                bus.ensure_topics(&names).await
            }
        }
    }
}

/// How long a topic keeps its records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retention {
    /// The broker's configured default (seven days on a stock Apache Kafka).
    BrokerDefault,
    /// Never deleted: the topic is a log that state is rebuilt from.
    Forever,
}

impl Bus {
    /// Every topic the bus has (full names, whatever their prefix).
    pub async fn topics(&self) -> Result<Vec<String>, BusError> {
        match &self.backend {
            Backend::Kafka(bus) => bus.topics().await,
            Backend::InProcess(bus) => bus.topics().await,
        }
    }

    /// Reads `topic` (a full name, as for subscribing) from offset zero to
    /// where it ends now, outside any consumer group: for rebuilding a
    /// service's state from the log.
    pub async fn replay(&self, topic: &str) -> Result<Replay, BusError> {
        Ok(match &self.backend {
            Backend::Kafka(bus) => Replay::Kafka(bus.replay(topic).await?),
            Backend::InProcess(bus) => Replay::InProcess(bus.replay(topic).await?),
        })
    }
}

/// A read of one topic from its beginning to where it ended when the replay
/// started. Records of one partition come in order.
#[derive(Debug)]
pub enum Replay {
    Kafka(kafka::KafkaReplay),
    InProcess(in_process::InProcessReplay),
}

impl Replay {
    /// The next record, or `None` once every partition has been read to the end.
    pub async fn next(&mut self) -> Result<Option<Received>, BusError> {
        match self {
            Replay::Kafka(r) => r.next().await,
            Replay::InProcess(r) => r.next().await,
        }
    }
}

impl Publisher for Bus {
    async fn publish(&self, records: &[Record]) -> Result<(), BusError> {
        match &self.backend {
            Backend::Kafka(bus) => bus.publish(records).await,
            Backend::InProcess(bus) => bus.publish(records).await,
        }
    }
}

/// A subscription on whichever backend the [`Bus`] has.
#[derive(Debug)]
pub enum BusSubscription {
    Kafka(kafka::KafkaSubscription),
    InProcess(in_process::InProcessSubscription),
}

impl Subscriber for Bus {
    type Subscription = BusSubscription;

    async fn subscribe(&self, group: &str, topics: &[String]) -> Result<BusSubscription, BusError> {
        Ok(match &self.backend {
            Backend::Kafka(bus) => BusSubscription::Kafka(bus.subscribe(group, topics).await?),
            Backend::InProcess(bus) => {
                BusSubscription::InProcess(bus.subscribe(group, topics).await?)
            }
        })
    }
}

impl Subscription for BusSubscription {
    async fn next(&mut self) -> Result<Received, BusError> {
        match self {
            BusSubscription::Kafka(s) => s.next().await,
            BusSubscription::InProcess(s) => s.next().await,
        }
    }

    fn ack(&mut self, received: &Received) -> Result<(), BusError> {
        match self {
            BusSubscription::Kafka(s) => s.ack(received),
            BusSubscription::InProcess(s) => s.ack(received),
        }
    }

    async fn commit(&mut self) -> Result<(), BusError> {
        match self {
            BusSubscription::Kafka(s) => s.commit().await,
            BusSubscription::InProcess(s) => s.commit().await,
        }
    }
}
