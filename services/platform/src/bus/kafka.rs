//! The Kafka bus: rdkafka over bundled librdkafka. Works with Apache Kafka and
//! with any Kafka-protocol broker that has consumer groups and the idempotent
//! producer; it uses no Kafka transactions and never relies on auto-creation.

use super::health::{ConsumerHealth, MemberId};
use super::{BusError, Publisher, Received, Record, Retention, Subscriber, Subscription};
use crate::config::KafkaConfig;
use crate::telemetry::Metrics;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::statistics::Statistics;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

const PUBLISH_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the group coordinator waits for a silent member before it
/// reassigns the member's partitions. A static member that comes back within
/// it takes its partitions straight back, without a rebalance.
const SESSION_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct KafkaBus {
    producer: FutureProducer,
    config: Arc<KafkaConfig>,
    metrics: Metrics,
    health: ConsumerHealth,
}

impl fmt::Debug for KafkaBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaBus")
            .field("brokers", &self.config.brokers)
            .finish()
    }
}

impl KafkaBus {
    pub fn connect(config: &KafkaConfig, metrics: Metrics) -> Result<Self, BusError> {
        let producer: FutureProducer = client_config(config)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "2")
            .set(
                "message.timeout.ms",
                PUBLISH_TIMEOUT.as_millis().to_string(),
            )
            .set_all(&config.properties)
            .create()?;
        Ok(Self {
            producer,
            config: Arc::new(config.clone()),
            metrics,
            health: ConsumerHealth::new(),
        })
    }

    pub fn consumer_health(&self) -> ConsumerHealth {
        self.health.clone()
    }

    /// Creates each topic with the configured partitions and replication and
    /// its retention, unless it already exists.
    pub async fn ensure_topics(&self, topics: &[(&str, Retention)]) -> Result<(), BusError> {
        let admin: AdminClient<DefaultClientContext> = client_config(&self.config)
            .set_all(&self.config.properties)
            .create()?;
        let new_topics: Vec<NewTopic<'_>> = topics
            .iter()
            .map(|&(t, retention)| {
                let topic = NewTopic::new(
                    t,
                    self.config.partitions,
                    TopicReplication::Fixed(self.config.replication_factor),
                );
                match retention {
                    Retention::BrokerDefault => topic,
                    Retention::Forever => {
                        topic.set("retention.ms", "-1").set("retention.bytes", "-1")
                    }
                }
            })
            .collect();
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        for result in admin.create_topics(&new_topics, &options).await? {
            match result {
                Ok(topic) => tracing::info!(topic, "created topic"),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => {
                    return Err(BusError::CreateTopic {
                        topic,
                        reason: code.to_string(),
                    });
                }
            }
        }
        Ok(())
    }
}

impl Publisher for KafkaBus {
    async fn publish(&self, records: &[Record]) -> Result<(), BusError> {
        // Enqueue strictly in order (retrying a full queue before moving on), then
        // wait for every acknowledgement. The idempotent producer keeps the order
        // within each partition across retries.
        let mut deliveries = Vec::with_capacity(records.len());
        for record in records {
            let headers = record.headers.iter().fold(
                OwnedHeaders::new_with_capacity(record.headers.len()),
                |h, (k, v)| {
                    h.insert(Header {
                        key: k,
                        value: Some(v),
                    })
                },
            );
            let mut pending = FutureRecord::to(&record.topic)
                .key(&record.key)
                .payload(&record.payload)
                .headers(headers);
            loop {
                match self.producer.send_result(pending) {
                    Ok(delivery) => break deliveries.push(delivery),
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        pending = back;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err((error, _)) => return Err(error.into()),
                }
            }
        }
        for delivery in deliveries {
            match delivery.await {
                Ok(Ok(_)) => {}
                Ok(Err((
                    KafkaError::MessageProduction(
                        RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic,
                    ),
                    message,
                ))) => {
                    return Err(BusError::UnknownTopic(message.topic().to_owned()));
                }
                Ok(Err((error, _))) => return Err(error.into()),
                Err(_) => return Err(BusError::PublishCancelled),
            }
        }
        Ok(())
    }
}

impl Subscriber for KafkaBus {
    type Subscription = KafkaSubscription;

    async fn subscribe(
        &self,
        group: &str,
        topics: &[String],
    ) -> Result<KafkaSubscription, BusError> {
        let context = GroupContext {
            group: group.to_owned(),
            metrics: self.metrics.clone(),
            member: self.health.joined(group),
            health: self.health.clone(),
        };
        let mut config = client_config(&self.config);
        config
            .set("group.id", group)
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "1000")
            // Offsets are stored only by `ack`, i.e. after the effect committed.
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("statistics.interval.ms", "5000")
            .set(
                "session.timeout.ms",
                SESSION_TIMEOUT.as_millis().to_string(),
            )
            .set("heartbeat.interval.ms", "3000");
        if let Some(instance) = &self.config.instance_id {
            // Static membership: a restarted replica rejoins as the member it
            // was and gets its partitions back at once, rather than waiting on
            // the coordinator to notice the dead member (which some
            // Kafka-protocol brokers never do).
            config.set("group.instance.id", format!("{group}-{instance}"));
        }
        let consumer: StreamConsumer<GroupContext> = config
            .set_all(&self.config.properties)
            .create_with_context(context)?;
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer.subscribe(&names)?;
        Ok(KafkaSubscription {
            consumer,
            acked: HashMap::new(),
        })
    }
}

/// A consumer group member.
pub struct KafkaSubscription {
    consumer: StreamConsumer<GroupContext>,
    /// The next offset to commit per partition: one past the last acknowledged record.
    acked: HashMap<(String, i32), i64>,
}

impl fmt::Debug for KafkaSubscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaSubscription")
            .field("group", &self.consumer.context().group)
            .finish()
    }
}

impl Subscription for KafkaSubscription {
    async fn next(&mut self) -> Result<Received, BusError> {
        let message = self.consumer.recv().await?;
        let context = self.consumer.context();
        context.health.progressed(&context.member);
        Ok(received(&message))
    }

    fn ack(&mut self, received: &Received) -> Result<(), BusError> {
        // librdkafka stores offset + 1: the position of the next record to read.
        self.consumer
            .store_offset(&received.record.topic, received.partition, received.offset)?;
        let next = received.offset + 1;
        let entry = self
            .acked
            .entry((received.record.topic.clone(), received.partition))
            .or_insert(next);
        *entry = (*entry).max(next);
        Ok(())
    }

    async fn commit(&mut self) -> Result<(), BusError> {
        if self.acked.is_empty() {
            return Ok(());
        }
        let mut positions = TopicPartitionList::new();
        for ((topic, partition), next) in &self.acked {
            positions.add_partition_offset(topic, *partition, Offset::Offset(*next))?;
        }
        match self.consumer.commit(&positions, CommitMode::Sync) {
            // Partitions revoked since: their new owner continues from the last
            // commit, and the inbox absorbs the redelivery.
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => Ok(()),
            other => other.map_err(Into::into),
        }
    }
}

/// Logs rebalances, turns librdkafka statistics into consumer-lag metrics,
/// and tells the process's [`ConsumerHealth`] what it holds and what waits.
struct GroupContext {
    group: String,
    metrics: Metrics,
    member: MemberId,
    health: ConsumerHealth,
}

impl Drop for GroupContext {
    fn drop(&mut self) {
        self.health.left(&self.member);
    }
}

impl ClientContext for GroupContext {
    fn stats(&self, statistics: Statistics) {
        let mut waiting = 0;
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                if *partition >= 0 && p.consumer_lag >= 0 {
                    // librdkafka keeps reporting partitions it no longer
                    // fetches (revoked ones): only what it fetches now waits
                    // on this member.
                    if p.fetch_state == "active" {
                        waiting += p.consumer_lag;
                    }
                    self.metrics.record_consumer_lag(
                        &self.group,
                        topic,
                        *partition,
                        p.consumer_lag,
                    );
                }
            }
        }
        self.health.lag(&self.member, waiting);
    }
}

impl ConsumerContext for GroupContext {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        // The list is the whole assignment with the default (eager)
        // assignors. Never ask the consumer here: `assignment()` waits on the
        // thread that is running this callback while the consumer closes.
        match rebalance {
            Rebalance::Assign(list) => {
                self.health.assigned(&self.member, list.count());
                tracing::info!(group = %self.group, partitions = list.count(), "partitions assigned")
            }
            Rebalance::Revoke(list) => {
                self.health.assigned(&self.member, 0);
                tracing::info!(group = %self.group, partitions = list.count(), "partitions revoked")
            }
            Rebalance::Error(error) => {
                tracing::warn!(group = %self.group, %error, "rebalance failed")
            }
        }
    }
}

fn client_config(config: &KafkaConfig) -> ClientConfig {
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &config.brokers)
        .set("client.id", "throughcare")
        .set("log_level", "4");
    client
}

trait SetAll {
    fn set_all(&mut self, properties: &std::collections::BTreeMap<String, String>) -> &mut Self;
}

impl SetAll for ClientConfig {
    fn set_all(&mut self, properties: &std::collections::BTreeMap<String, String>) -> &mut Self {
        for (key, value) in properties {
            self.set(key, value);
        }
        self
    }
}

/// Reads one topic from its beginning to where it ended when the replay
/// started, outside any consumer group (nothing is committed).
pub struct KafkaReplay {
    /// `None` when there is nothing to read.
    consumer: Option<StreamConsumer>,
    topic: String,
    /// Per unfinished partition: the end offset to read up to (exclusive).
    remaining: HashMap<i32, i64>,
}

impl fmt::Debug for KafkaReplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaReplay")
            .field("topic", &self.topic)
            .field("remaining", &self.remaining)
            .finish()
    }
}

const METADATA_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a replay waits for a record before checking whether the
/// partitions it waits on have in fact been read to their end.
const REPLAY_IDLE: Duration = Duration::from_secs(1);

impl KafkaBus {
    /// Every topic the broker has (internal ones included).
    pub async fn topics(&self) -> Result<Vec<String>, BusError> {
        let mut client = client_config(&self.config);
        client.set_all(&self.config.properties);
        tokio::task::spawn_blocking(move || -> Result<Vec<String>, BusError> {
            let probe: BaseConsumer = client.create()?;
            let metadata = probe.fetch_metadata(None, METADATA_TIMEOUT)?;
            Ok(metadata
                .topics()
                .iter()
                .filter(|t| t.error().is_none())
                .map(|t| t.name().to_owned())
                .collect())
        })
        .await
        .map_err(|e| BusError::Replay(e.to_string()))?
    }

    pub async fn replay(&self, topic: &str) -> Result<KafkaReplay, BusError> {
        let mut client = client_config(&self.config);
        client
            .set("group.id", "throughcare-replay")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set_all(&self.config.properties);
        let (probe_client, name) = (client.clone(), topic.to_owned());
        // Metadata and watermark requests block: keep them off the runtime.
        let bounds = tokio::task::spawn_blocking(move || -> Result<Vec<_>, BusError> {
            let probe: BaseConsumer = probe_client.create()?;
            let metadata = probe.fetch_metadata(Some(&name), METADATA_TIMEOUT)?;
            let Some(found) = metadata
                .topics()
                .iter()
                .find(|t| t.name() == name && t.error().is_none() && !t.partitions().is_empty())
            else {
                return Err(BusError::UnknownTopic(name));
            };
            found
                .partitions()
                .iter()
                .map(|p| {
                    let (low, high) = probe.fetch_watermarks(&name, p.id(), METADATA_TIMEOUT)?;
                    Ok((p.id(), low, high))
                })
                .collect()
        })
        .await
        .map_err(|e| BusError::Replay(e.to_string()))??;
        let mut assignment = TopicPartitionList::new();
        let mut remaining = HashMap::new();
        for (partition, low, high) in bounds {
            if high > low {
                assignment.add_partition_offset(topic, partition, Offset::Offset(low))?;
                remaining.insert(partition, high);
            }
        }
        // An empty topic (most dead-letter topics, most of the time) needs
        // no consumer at all.
        let consumer = if remaining.is_empty() {
            None
        } else {
            let consumer: StreamConsumer = client.create()?;
            consumer.assign(&assignment)?;
            Some(consumer)
        };
        Ok(KafkaReplay {
            consumer,
            topic: topic.to_owned(),
            remaining,
        })
    }
}

impl KafkaReplay {
    pub async fn next(&mut self) -> Result<Option<Received>, BusError> {
        loop {
            let Some(consumer) = self
                .consumer
                .as_ref()
                .filter(|_| !self.remaining.is_empty())
            else {
                return Ok(None);
            };
            let message = match tokio::time::timeout(REPLAY_IDLE, consumer.recv()).await {
                Ok(message) => message?,
                Err(_) => {
                    // Compaction or control records can leave the last offsets
                    // undelivered: the position says whether we are at the end.
                    let positions = consumer.position()?;
                    self.remaining.retain(|partition, end| {
                        !matches!(
                            positions.find_partition(&self.topic, *partition).map(|p| p.offset()),
                            Some(Offset::Offset(at)) if at >= *end
                        )
                    });
                    continue;
                }
            };
            let partition = message.partition();
            let Some(&end) = self.remaining.get(&partition) else {
                continue; // that partition is finished: records after the start are not replayed
            };
            if message.offset() >= end {
                self.remaining.remove(&partition);
                continue;
            }
            if message.offset() + 1 >= end {
                self.remaining.remove(&partition);
            }
            return Ok(Some(received(&message)));
        }
    }
}

fn received(message: &rdkafka::message::BorrowedMessage<'_>) -> Received {
    let headers = message
        .headers()
        .map(|hs| {
            hs.iter()
                .map(|h| {
                    (
                        h.key.to_owned(),
                        h.value.map(<[u8]>::to_vec).unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Received {
        record: Record {
            topic: message.topic().to_owned(),
            key: message
                .key()
                .map(|k| String::from_utf8_lossy(k).into_owned())
                .unwrap_or_default(),
            headers,
            payload: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
        },
        partition: message.partition(),
        offset: message.offset(),
    }
}
