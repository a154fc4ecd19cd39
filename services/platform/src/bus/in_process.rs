//! The in-process bus for the embedded mode: a durable log in SQLite (or in
//! memory), so the embedded mode keeps Kafka's semantics — topics created up
//! front, per-topic order, consumer groups that resume after their last
//! acknowledged record across restarts, and replay from offset zero.
//!
//! Each topic is one partition, so a group has one active member at a time: as
//! with Kafka, an extra member idles until the active one leaves, and a leaving
//! member's acknowledged positions are committed before the next one starts.

use super::{BusError, Publisher, Received, Record, Subscriber, Subscription};
use crate::telemetry::Metrics;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, OwnedMutexGuard};

const FETCH_BATCH: i64 = 512;
const REPLAY_BATCH: i64 = 4096;
const COMMIT_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Clone, Debug)]
pub struct InProcessBus {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: SqlitePool,
    appended: Notify,
    writer: tokio::sync::Mutex<()>,
    /// One lock per consumer group: held by the group's active member.
    groups: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    metrics: Metrics,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS bus_topics (
    topic       TEXT PRIMARY KEY,
    next_offset INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS bus_records (
    topic      TEXT    NOT NULL,
    offset     INTEGER NOT NULL,
    record_key TEXT    NOT NULL,
    headers    BLOB    NOT NULL,
    payload    BLOB    NOT NULL,
    PRIMARY KEY (topic, offset)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bus_group_offsets (
    group_id    TEXT    NOT NULL,
    topic       TEXT    NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (group_id, topic)
);";

impl InProcessBus {
    /// Opens (creating if need be) the log at `path`, or an in-memory one.
    pub async fn open(path: Option<&Path>, metrics: Metrics) -> Result<Self, BusError> {
        // An in-memory database lives as long as its one connection.
        let connections = if path.is_some() { 4 } else { 1 };
        let pool_options = SqlitePoolOptions::new()
            .max_connections(connections)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None);
        let pool = match path {
            Some(path) => {
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10));
                crate::db::sqlite_wal_pool(options, pool_options).await?
            }
            None => {
                let options = SqliteConnectOptions::new().in_memory(true);
                pool_options.connect_with(options).await?
            }
        };
        sqlx::raw_sql(SCHEMA).execute(&pool).await?;
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                appended: Notify::new(),
                writer: tokio::sync::Mutex::new(()),
                groups: Mutex::new(HashMap::new()),
                metrics,
            }),
        })
    }

    pub async fn ensure_topics(&self, topics: &[String]) -> Result<(), BusError> {
        for topic in topics {
            sqlx::query("INSERT INTO bus_topics (topic) VALUES (?) ON CONFLICT DO NOTHING")
                .bind(topic)
                .execute(&self.inner.pool)
                .await?;
        }
        Ok(())
    }
}

impl Publisher for InProcessBus {
    async fn publish(&self, records: &[Record]) -> Result<(), BusError> {
        let _writer = self.inner.writer.lock().await;
        let mut tx = self.inner.pool.begin().await?;
        for record in records {
            let offset: Option<i64> = sqlx::query_scalar(
                "UPDATE bus_topics SET next_offset = next_offset + 1 WHERE topic = ? RETURNING next_offset - 1",
            )
            .bind(&record.topic)
            .fetch_optional(&mut *tx)
            .await?;
            let offset = offset.ok_or_else(|| BusError::UnknownTopic(record.topic.clone()))?;
            sqlx::query("INSERT INTO bus_records (topic, offset, record_key, headers, payload) VALUES (?, ?, ?, ?, ?)")
                .bind(&record.topic)
                .bind(offset)
                .bind(&record.key)
                .bind(encode_headers(&record.headers))
                .bind(&record.payload)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.inner.appended.notify_waiters();
        Ok(())
    }
}

impl Subscriber for InProcessBus {
    type Subscription = InProcessSubscription;

    async fn subscribe(
        &self,
        group: &str,
        topics: &[String],
    ) -> Result<InProcessSubscription, BusError> {
        for topic in topics {
            let exists: Option<i64> =
                sqlx::query_scalar("SELECT 1 FROM bus_topics WHERE topic = ?")
                    .bind(topic)
                    .fetch_optional(&self.inner.pool)
                    .await?;
            if exists.is_none() {
                return Err(BusError::UnknownTopic(topic.clone()));
            }
        }
        Ok(InProcessSubscription {
            bus: self.clone(),
            group: group.to_owned(),
            topics: topics.to_vec(),
            membership: None,
            positions: HashMap::new(),
            acked: HashMap::new(),
            buffer: VecDeque::new(),
            last_commit: Instant::now(),
        })
    }
}

impl InProcessBus {
    fn group_lock(&self, group: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.inner
            .groups
            .lock()
            .expect("group locks")
            .entry(group.to_owned())
            .or_default()
            .clone()
    }
}

/// The one member of a consumer group.
#[derive(Debug)]
pub struct InProcessSubscription {
    bus: InProcessBus,
    group: String,
    topics: Vec<String>,
    /// Held while this is the group's active member.
    membership: Option<OwnedMutexGuard<()>>,
    /// Next offset to fetch, per topic.
    positions: HashMap<String, i64>,
    /// Next offset to commit, per topic (one past the last acknowledged record).
    acked: HashMap<String, i64>,
    buffer: VecDeque<Received>,
    last_commit: Instant,
}

impl InProcessSubscription {
    /// Waits to become the group's active member, then starts from its committed positions.
    async fn join(&mut self) -> Result<(), BusError> {
        let guard = self.bus.group_lock(&self.group).lock_owned().await;
        for topic in &self.topics {
            let committed: Option<i64> = sqlx::query_scalar(
                "SELECT next_offset FROM bus_group_offsets WHERE group_id = ? AND topic = ?",
            )
            .bind(&self.group)
            .bind(topic)
            .fetch_optional(&self.bus.inner.pool)
            .await?;
            self.positions.insert(topic.clone(), committed.unwrap_or(0));
        }
        self.membership = Some(guard);
        Ok(())
    }

    async fn fill(&mut self) -> Result<(), BusError> {
        let pool = &self.bus.inner.pool;
        for (topic, position) in self.positions.iter_mut() {
            let rows = sqlx::query(
                "SELECT offset, record_key, headers, payload FROM bus_records
                 WHERE topic = ? AND offset >= ? ORDER BY offset LIMIT ?",
            )
            .bind(topic.as_str())
            .bind(*position)
            .bind(FETCH_BATCH)
            .fetch_all(pool)
            .await?;
            for row in rows {
                let offset: i64 = row.get(0);
                *position = offset + 1;
                self.buffer.push_back(Received {
                    record: Record {
                        topic: topic.clone(),
                        key: row.get(1),
                        headers: decode_headers(row.get::<&[u8], _>(2)),
                        payload: row.get(3),
                    },
                    partition: 0,
                    offset,
                });
            }
            let end: i64 = sqlx::query_scalar("SELECT next_offset FROM bus_topics WHERE topic = ?")
                .bind(topic.as_str())
                .fetch_one(pool)
                .await?;
            let committed = self.acked.get(topic).copied().unwrap_or(0);
            self.bus
                .inner
                .metrics
                .record_consumer_lag(&self.group, topic, 0, end - committed);
        }
        Ok(())
    }
}

impl Subscription for InProcessSubscription {
    async fn next(&mut self) -> Result<Received, BusError> {
        if self.membership.is_none() {
            self.join().await?;
        }
        loop {
            if self.last_commit.elapsed() >= COMMIT_INTERVAL {
                self.commit().await?;
            }
            if let Some(received) = self.buffer.pop_front() {
                return Ok(received);
            }
            let inner = self.bus.inner.clone();
            let appended = inner.appended.notified();
            tokio::pin!(appended);
            appended.as_mut().enable();
            self.fill().await?;
            if self.buffer.is_empty() {
                // The timeout only bounds how long a commit can wait while idle.
                let _ = tokio::time::timeout(COMMIT_INTERVAL, appended).await;
            }
        }
    }

    fn ack(&mut self, received: &Received) -> Result<(), BusError> {
        let next = received.offset + 1;
        let entry = self
            .acked
            .entry(received.record.topic.clone())
            .or_insert(next);
        *entry = (*entry).max(next);
        Ok(())
    }

    async fn commit(&mut self) -> Result<(), BusError> {
        persist(&self.bus.inner.pool, &self.group, &self.acked).await?;
        self.last_commit = Instant::now();
        Ok(())
    }
}

impl Drop for InProcessSubscription {
    fn drop(&mut self) {
        // Like a Kafka consumer closing: acknowledged positions are committed,
        // then the group is free for its next member.
        let Some(membership) = self.membership.take() else {
            return;
        };
        let pool = self.bus.inner.pool.clone();
        let group = std::mem::take(&mut self.group);
        let acked = std::mem::take(&mut self.acked);
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                if let Err(error) = persist(&pool, &group, &acked).await {
                    tracing::warn!(%group, %error, "could not commit in-process offsets on close");
                }
                drop(membership);
            });
        }
    }
}

async fn persist(
    pool: &SqlitePool,
    group: &str,
    acked: &HashMap<String, i64>,
) -> Result<(), BusError> {
    for (topic, next) in acked {
        sqlx::query(
            "INSERT INTO bus_group_offsets (group_id, topic, next_offset) VALUES (?, ?, ?)
             ON CONFLICT (group_id, topic) DO UPDATE SET next_offset = max(next_offset, excluded.next_offset)",
        )
        .bind(group)
        .bind(topic)
        .bind(next)
        .execute(pool)
        .await?;
    }
    Ok(())
}

impl InProcessBus {
    /// Every topic of the log.
    pub async fn topics(&self) -> Result<Vec<String>, BusError> {
        Ok(
            sqlx::query_scalar("SELECT topic FROM bus_topics ORDER BY topic")
                .fetch_all(&self.inner.pool)
                .await?,
        )
    }

    pub async fn replay(&self, topic: &str) -> Result<InProcessReplay, BusError> {
        let end: Option<i64> =
            sqlx::query_scalar("SELECT next_offset FROM bus_topics WHERE topic = ?")
                .bind(topic)
                .fetch_optional(&self.inner.pool)
                .await?;
        let end = end.ok_or_else(|| BusError::UnknownTopic(topic.to_owned()))?;
        Ok(InProcessReplay {
            pool: self.inner.pool.clone(),
            topic: topic.to_owned(),
            position: 0,
            end,
            buffer: VecDeque::new(),
        })
    }
}

/// Reads a topic's log from offset zero up to its end when the replay began.
#[derive(Debug)]
pub struct InProcessReplay {
    pool: SqlitePool,
    topic: String,
    position: i64,
    end: i64,
    buffer: VecDeque<Received>,
}

impl InProcessReplay {
    pub async fn next(&mut self) -> Result<Option<Received>, BusError> {
        if self.buffer.is_empty() && self.position < self.end {
            let rows = sqlx::query(
                "SELECT offset, record_key, headers, payload FROM bus_records
                 WHERE topic = ? AND offset >= ? AND offset < ? ORDER BY offset LIMIT ?",
            )
            .bind(&self.topic)
            .bind(self.position)
            .bind(self.end)
            .bind(REPLAY_BATCH)
            .fetch_all(&self.pool)
            .await?;
            if rows.is_empty() {
                self.position = self.end;
            }
            for row in rows {
                let offset: i64 = row.get(0);
                self.position = offset + 1;
                self.buffer.push_back(Received {
                    record: Record {
                        topic: self.topic.clone(),
                        key: row.get(1),
                        headers: decode_headers(row.get::<&[u8], _>(2)),
                        payload: row.get(3),
                    },
                    partition: 0,
                    offset,
                });
            }
        }
        Ok(self.buffer.pop_front())
    }
}

/// Headers as `u16 name length, name, u32 value length, value`, repeated.
fn encode_headers(headers: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in headers {
        out.extend_from_slice(&(name.len() as u16).to_be_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(value.len() as u32).to_be_bytes());
        out.extend_from_slice(value);
    }
    out
}

fn decode_headers(mut bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut headers = Vec::new();
    while bytes.len() >= 2 {
        let name_len = usize::from(u16::from_be_bytes([bytes[0], bytes[1]]));
        let Some(name) = bytes.get(2..2 + name_len) else {
            break;
        };
        let rest = &bytes[2 + name_len..];
        let Some(len) = rest.get(..4) else { break };
        let value_len = u32::from_be_bytes(len.try_into().expect("4 bytes")) as usize;
        let Some(value) = rest.get(4..4 + value_len) else {
            break;
        };
        headers.push((String::from_utf8_lossy(name).into_owned(), value.to_vec()));
        bytes = &rest[4 + value_len..];
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn headers_round_trip(headers in proptest::collection::vec(("[a-z_-]{1,20}", proptest::collection::vec(any::<u8>(), 0..64)), 0..8)) {
            prop_assert_eq!(decode_headers(&encode_headers(&headers)), headers);
        }
    }
}
