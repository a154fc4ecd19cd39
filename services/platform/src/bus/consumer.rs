//! The consume loop every service uses: decode the CloudEvent, run the handler
//! in a span that continues the producer's trace, retry failures with backoff,
//! dead-letter what still fails (with the reason) so the partition moves on, and
//! acknowledge only after the handler's effect has committed.

use super::dead_letters::{header, replayed_for, strip_dead_letter_headers};
use super::{
    BusError, Event, Publisher, Received, Record, Subscriber, Subscription, dead_letter_topic,
};
use crate::telemetry::Metrics;
use chrono::{SecondsFormat, Utc};
use std::future::Future;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

#[derive(Debug, Clone)]
pub struct ConsumerOptions {
    pub group: String,
    pub topics: Vec<String>,
    /// Attempts for a transient failure before the record is dead-lettered.
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl ConsumerOptions {
    pub fn new(group: impl Into<String>, topics: Vec<String>) -> Self {
        Self {
            group: group.into(),
            topics,
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// Why a handler could not process an event. The reason goes into logs and
/// the dead-letter record: it must not contain identifiers or health facts.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// Will never succeed (undecodable, violates an invariant): dead-letter at once.
    #[error("{0}")]
    Permanent(String),
    /// May succeed later (a lock timeout, a conflict): retry, then dead-letter.
    #[error("{0}")]
    Transient(String),
    /// What the handler needs is down (the database unreachable): retry until
    /// it is back, holding the partition. The record is not at fault, and
    /// dead-lettering it would put the person's later events ahead of it.
    #[error("{0}")]
    Unavailable(String),
}

impl From<sqlx::Error> for HandleError {
    fn from(error: sqlx::Error) -> Self {
        if crate::error::database_unreachable(&error) {
            HandleError::Unavailable(error.to_string())
        } else {
            HandleError::Transient(error.to_string())
        }
    }
}

impl From<crate::error::Error> for HandleError {
    /// A use case's failure, as the consume loop treats it: unavailable
    /// waits, anything else is retried and then dead-lettered.
    fn from(error: crate::error::Error) -> Self {
        match error {
            crate::error::Error::Unavailable(reason) => HandleError::Unavailable(reason),
            other => HandleError::Transient(other.chain()),
        }
    }
}

/// Applies one event. Must record the event id in the inbox in the same
/// transaction as its effect, so a redelivery is a no-op.
pub trait Handler: Send + Sync {
    fn handle(&self, event: &Event) -> impl Future<Output = Result<(), HandleError>> + Send;
}

/// Consumes until `shutdown` is cancelled, then commits acknowledged offsets.
pub async fn run_consumer<B, H>(
    bus: &B,
    options: &ConsumerOptions,
    handler: &H,
    metrics: &Metrics,
    shutdown: CancellationToken,
) -> Result<(), BusError>
where
    B: Subscriber + Publisher,
    H: Handler,
{
    let mut subscription = bus.subscribe(&options.group, &options.topics).await?;
    tracing::info!(group = %options.group, topics = ?options.topics, "consumer started");
    loop {
        let received = tokio::select! {
            _ = shutdown.cancelled() => break,
            next = subscription.next() => match next {
                Ok(received) => received,
                Err(error) => {
                    tracing::warn!(group = %options.group, %error, "consumer receive failed; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(options.initial_backoff) => continue,
                    }
                }
            },
        };
        if replayed_for(&received.record).is_some_and(|group| group != options.group) {
            // A dead letter another group failed, replayed for that group alone.
            subscription.ack(&received)?;
            continue;
        }
        let Some(outcome) = process(&received, options, handler, &shutdown).await else {
            break; // shutting down mid-retry: leave it unacknowledged for the next member
        };
        if let Err(reason) = outcome {
            dead_letter(bus, &received, &options.group, &reason, &shutdown).await?;
            metrics.consumer_dead_lettered(&options.group, &received.record.topic);
        } else {
            metrics.consumer_processed(&options.group, &received.record.topic);
        }
        subscription.ack(&received)?;
    }
    subscription.commit().await?;
    tracing::info!(group = %options.group, "consumer stopped");
    Ok(())
}

/// `None` when shutdown interrupted the retries; otherwise the outcome, with
/// the reason when the record must be dead-lettered.
async fn process<H: Handler>(
    received: &Received,
    options: &ConsumerOptions,
    handler: &H,
    shutdown: &CancellationToken,
) -> Option<Result<(), String>> {
    let record = &received.record;
    let span = tracing::info_span!(
        "consume",
        otel.name = %format!("{} process", record.topic),
        otel.kind = "consumer",
        messaging.system = "kafka",
        messaging.destination.name = %record.topic,
        messaging.kafka.partition = received.partition,
        messaging.kafka.offset = received.offset,
        messaging.consumer.group.name = %options.group,
        messaging.message.id = tracing::field::Empty,
        event.type = tracing::field::Empty,
    );
    let event = match Event::from_record(record) {
        Ok(event) => event,
        Err(error) => {
            let _entered = span.enter();
            tracing::warn!(%error, "undecodable record");
            return Some(Err(format!("undecodable: {error}")));
        }
    };
    event.trace.adopt(&span);
    span.record("messaging.message.id", event.id.to_string());
    span.record("event.type", event.event_type.as_str());
    async {
        // One backoff for a failing record, another for waiting out a dependency.
        let (mut backoff, mut waiting) = (options.initial_backoff, options.initial_backoff);
        let mut attempt = 0;
        while attempt < options.max_attempts {
            match handler.handle(&event).await {
                Ok(()) => return Some(Ok(())),
                Err(HandleError::Permanent(reason)) => {
                    tracing::warn!(%reason, "event cannot be processed");
                    return Some(Err(reason));
                }
                Err(HandleError::Unavailable(reason)) => {
                    // Not an attempt: the record has not had its chance.
                    tracing::warn!(%reason, "a dependency is unavailable; waiting");
                    tokio::select! {
                        _ = shutdown.cancelled() => return None,
                        _ = tokio::time::sleep(waiting) => {}
                    }
                    waiting = (waiting * 2).min(options.max_backoff);
                    continue;
                }
                Err(HandleError::Transient(reason)) if attempt + 1 == options.max_attempts => {
                    attempt += 1;
                    tracing::warn!(%reason, attempt, "event still failing after retries");
                    return Some(Err(format!("after {attempt} attempts: {reason}")));
                }
                Err(HandleError::Transient(reason)) => {
                    attempt += 1;
                    tracing::info!(%reason, attempt, "event failed; retrying");
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return None,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(options.max_backoff);
        }
        Some(Err("no attempts configured".to_owned()))
    }
    .instrument(span)
    .await
}

/// Republishes the record to its dead-letter topic with where it came from and
/// why. Retries until the bus takes it: moving on without it would lose it.
async fn dead_letter<B: Publisher>(
    bus: &B,
    received: &Received,
    group: &str,
    reason: &str,
    shutdown: &CancellationToken,
) -> Result<(), BusError> {
    let mut record: Record = received.record.clone();
    record.topic = dead_letter_topic(&received.record.topic);
    strip_dead_letter_headers(&mut record);
    let at = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    record.headers.extend(
        [
            (header::REASON, reason.to_owned()),
            (header::GROUP, group.to_owned()),
            (header::TOPIC, received.record.topic.clone()),
            (header::PARTITION, received.partition.to_string()),
            (header::OFFSET, received.offset.to_string()),
            (header::AT, at),
        ]
        .map(|(name, value)| (name.to_owned(), value.into_bytes())),
    );
    loop {
        match bus.publish(std::slice::from_ref(&record)).await {
            Ok(()) => {
                tracing::warn!(
                    topic = %received.record.topic,
                    partition = received.partition,
                    offset = received.offset,
                    %group,
                    "record dead-lettered"
                );
                return Ok(());
            }
            Err(error) if shutdown.is_cancelled() => return Err(error),
            Err(error) => {
                tracing::warn!(%error, "dead-letter publish failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
