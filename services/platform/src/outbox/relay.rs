use super::OutboxWaker;
use crate::bus::{BusError, Event, Publisher};
use crate::db::Db;
use crate::telemetry::{Metrics, TraceHeaders};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use sqlx::Row;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct RelayOptions {
    pub batch_size: i64,
    /// How often to look for rows when nobody wakes the relay (rows committed by
    /// another process, or after an error).
    pub poll_interval: Duration,
}

impl Default for RelayOptions {
    fn default() -> Self {
        Self {
            batch_size: 500,
            poll_interval: Duration::from_millis(200),
        }
    }
}

/// Fault injection for crash tests: runs after a batch is published and before
/// its rows are deleted. A test makes it hang, then kills the relay there.
pub type AfterPublishHook = Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("outbox storage: {0}")]
    Storage(#[from] sqlx::Error),
    #[error("publishing: {0}")]
    Bus(#[from] BusError),
    #[error("outbox row {seq} is malformed: {reason}")]
    Malformed { seq: i64, reason: String },
}

/// Publishes committed outbox rows in order. With PostgreSQL, several relays
/// (in several processes) can run at once: each claims whole lanes with
/// `FOR UPDATE SKIP LOCKED`, so no row is published by two relays at a time and
/// one key's rows are never reordered.
pub struct Relay<P> {
    db: Db,
    publisher: P,
    options: RelayOptions,
    waker: OutboxWaker,
    metrics: Metrics,
    after_publish: Option<AfterPublishHook>,
}

impl<P> std::fmt::Debug for Relay<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("options", &self.options)
            .finish()
    }
}

impl<P: Publisher> Relay<P> {
    pub fn new(db: Db, publisher: P, waker: OutboxWaker, metrics: Metrics) -> Self {
        Self {
            db,
            publisher,
            options: RelayOptions::default(),
            waker,
            metrics,
            after_publish: None,
        }
    }

    pub fn with_options(mut self, options: RelayOptions) -> Self {
        self.options = options;
        self
    }

    pub fn with_after_publish_hook(mut self, hook: AfterPublishHook) -> Self {
        self.after_publish = Some(hook);
        self
    }

    /// Relays until `shutdown`, then drains what is already committed.
    pub async fn run(&self, shutdown: CancellationToken) {
        let mut last_gauge = Instant::now() - Duration::from_secs(60);
        loop {
            let published = match self.relay_once().await {
                Ok(n) => n,
                Err(error) => {
                    tracing::warn!(%error, "outbox relay failed; retrying");
                    0
                }
            };
            if last_gauge.elapsed() >= Duration::from_secs(5) {
                self.record_lag().await;
                last_gauge = Instant::now();
            }
            if published as i64 >= self.options.batch_size {
                continue;
            }
            if shutdown.is_cancelled() {
                break;
            }
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = self.waker.woken() => {}
                _ = tokio::time::sleep(self.options.poll_interval) => {}
            }
        }
        tracing::info!("outbox relay stopped");
    }

    /// Publishes one batch; returns how many rows it published.
    pub async fn relay_once(&self) -> Result<usize, RelayError> {
        let published = match &self.db {
            Db::Postgres(pool) => self.relay_postgres(pool).await?,
            Db::Sqlite(pool) => self.relay_sqlite(pool).await?,
        };
        if published > 0 {
            self.metrics.outbox_published(published as u64);
        }
        Ok(published)
    }

    async fn relay_postgres(&self, pool: &sqlx::PgPool) -> Result<usize, RelayError> {
        let mut tx = pool.begin().await?;
        let lanes: Vec<i16> = sqlx::query_scalar(
            "SELECT l.lane FROM outbox_lanes l
             WHERE EXISTS (SELECT 1 FROM outbox o WHERE o.lane = l.lane)
             FOR UPDATE SKIP LOCKED",
        )
        .fetch_all(&mut *tx)
        .await?;
        if lanes.is_empty() {
            return Ok(0);
        }
        let rows = sqlx::query(
            "SELECT seq, event_id, topic, record_key, event_type, event_source, event_time,
                    payload, traceparent, tracestate
             FROM outbox WHERE lane = ANY($1) ORDER BY seq LIMIT $2",
        )
        .bind(&lanes)
        .bind(self.options.batch_size)
        .fetch_all(&mut *tx)
        .await?;
        let mut seqs = Vec::with_capacity(rows.len());
        let mut events = Vec::with_capacity(rows.len());
        for row in &rows {
            seqs.push(row.get::<i64, _>("seq"));
            events.push(Event {
                id: row.get("event_id"),
                topic: row.get("topic"),
                key: row.get("record_key"),
                event_type: row.get("event_type"),
                source: row.get("event_source"),
                time: row.get("event_time"),
                payload: row.get("payload"),
                trace: TraceHeaders {
                    traceparent: row.get("traceparent"),
                    tracestate: row.get("tracestate"),
                },
            });
        }
        self.publish(&events).await?;
        sqlx::query("DELETE FROM outbox WHERE seq = ANY($1)")
            .bind(&seqs)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(events.len())
    }

    async fn relay_sqlite(&self, pool: &sqlx::SqlitePool) -> Result<usize, RelayError> {
        // One relay per SQLite database (the embedded mode runs one), and
        // SQLite commits in sequence order, so a plain ordered read is enough; not
        // holding a write transaction while publishing keeps writers unblocked.
        let rows = sqlx::query(
            "SELECT seq, event_id, topic, record_key, event_type, event_source, event_time,
                    payload, traceparent, tracestate
             FROM outbox ORDER BY seq LIMIT ?",
        )
        .bind(self.options.batch_size)
        .fetch_all(pool)
        .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut seqs = Vec::with_capacity(rows.len());
        let mut events = Vec::with_capacity(rows.len());
        for row in &rows {
            let seq: i64 = row.get("seq");
            let malformed = |reason: &str| RelayError::Malformed {
                seq,
                reason: reason.to_owned(),
            };
            seqs.push(seq);
            events.push(Event {
                id: Uuid::parse_str(row.get("event_id"))
                    .map_err(|_| malformed("event_id is not a uuid"))?,
                topic: row.get("topic"),
                key: row.get("record_key"),
                event_type: row.get("event_type"),
                source: row.get("event_source"),
                time: row.get::<DateTime<Utc>, _>("event_time"),
                payload: row.get("payload"),
                trace: TraceHeaders {
                    traceparent: row.get("traceparent"),
                    tracestate: row.get("tracestate"),
                },
            });
        }
        self.publish(&events).await?;
        sqlx::query("DELETE FROM outbox WHERE seq IN (SELECT value FROM json_each(?))")
            .bind(serde_json::to_string(&seqs).expect("integers serialise"))
            .execute(pool)
            .await?;
        Ok(events.len())
    }

    async fn publish(&self, events: &[Event]) -> Result<(), RelayError> {
        let records: Vec<_> = events.iter().map(Event::to_record).collect();
        self.publisher.publish(&records).await?;
        if let Some(hook) = &self.after_publish {
            hook().await;
        }
        Ok(())
    }

    async fn record_lag(&self) {
        let result: Result<(i64, Option<DateTime<Utc>>), sqlx::Error> = match &self.db {
            Db::Postgres(pool) => {
                sqlx::query_as("SELECT count(*), min(created_at) FROM outbox")
                    .fetch_one(pool)
                    .await
            }
            Db::Sqlite(pool) => {
                sqlx::query_as("SELECT count(*), min(created_at) FROM outbox")
                    .fetch_one(pool)
                    .await
            }
        };
        match result {
            Ok((pending, oldest)) => {
                let age = oldest
                    .map(|t| (Utc::now() - t).to_std().unwrap_or_default())
                    .unwrap_or_default();
                self.metrics.record_outbox(pending as u64, age);
            }
            Err(error) => tracing::debug!(%error, "could not read outbox lag"),
        }
    }
}
