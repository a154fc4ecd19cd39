//! The transactional outbox. A service writes its state change and the event
//! announcing it in one transaction ([`enqueue_all`] inside the service's own
//! transaction, usually through a [`Work`](crate::work::Work)); the [`Relay`] publishes committed rows
//! and deletes them only after the bus has acknowledged them. A crash between
//! publish and delete republishes — never loses — and the consumers' inbox
//! makes the duplicate harmless.

mod relay;

pub use relay::{AfterPublishHook, Relay, RelayError, RelayOptions};

use crate::bus::Event;
use crate::db::Tx;
use sqlx::{PgConnection, SqliteConnection};
use std::sync::Arc;
use tokio::sync::Notify;

/// Number of lanes in the PostgreSQL outbox (see the migration).
pub(crate) const LANES: u32 = 16;

/// Wakes the relay right after a commit instead of waiting for its next poll.
#[derive(Clone, Debug, Default)]
pub struct OutboxWaker(Arc<Notify>);

impl OutboxWaker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Call after committing a transaction that enqueued events.
    pub fn wake(&self) {
        self.0.notify_one();
    }

    pub(crate) async fn woken(&self) {
        self.0.notified().await
    }
}

/// Stable lane of a record key (FNV-1a), so one key always uses one lane.
pub(crate) fn lane(key: &str) -> i16 {
    let hash = key.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    (hash % LANES) as i16
}

/// Rows per multi-row insert (10 columns each, well under both backends'
/// parameter limits).
const INSERT_CHUNK: usize = 500;

/// Adds `events` to the outbox inside the caller's transaction, in as few
/// statements as possible: they are published if and only if it commits.
pub async fn enqueue_all(tx: &mut Tx, events: &[Event]) -> sqlx::Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    match tx {
        Tx::Postgres(tx) => enqueue_all_postgres(tx, events).await,
        Tx::Sqlite(tx) => enqueue_all_sqlite(tx, events).await,
    }
}

/// The columns every backend's outbox row has after its id (and lane).
const EVENT_COLUMNS: &str =
    "topic, record_key, event_type, event_source, event_time, payload, traceparent, tracestate";

/// Binds an event's [`EVENT_COLUMNS`] to a row of a multi-row insert.
macro_rules! bind_event_columns {
    ($row:expr, $event:expr) => {
        $row.push_bind(&$event.topic)
            .push_bind(&$event.key)
            .push_bind(&$event.event_type)
            .push_bind(&$event.source)
            .push_bind($event.time)
            .push_bind(&$event.payload)
            .push_bind(&$event.trace.traceparent)
            .push_bind(&$event.trace.tracestate)
    };
}

async fn enqueue_all_postgres(tx: &mut PgConnection, events: &[Event]) -> sqlx::Result<()> {
    for chunk in events.chunks(INSERT_CHUNK) {
        let mut insert = sqlx::QueryBuilder::<sqlx::Postgres>::new(format!(
            "INSERT INTO outbox (event_id, lane, {EVENT_COLUMNS}) "
        ));
        insert.push_values(chunk, |mut row, e| {
            row.push_bind(e.id).push_bind(lane(&e.key));
            bind_event_columns!(row, e);
        });
        insert.build().execute(&mut *tx).await?;
    }
    Ok(())
}

/// SQLite has one writer, so its outbox has no lanes; ids are text.
async fn enqueue_all_sqlite(tx: &mut SqliteConnection, events: &[Event]) -> sqlx::Result<()> {
    for chunk in events.chunks(INSERT_CHUNK) {
        let mut insert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(format!(
            "INSERT INTO outbox (event_id, {EVENT_COLUMNS}) "
        ));
        insert.push_values(chunk, |mut row, e| {
            row.push_bind(e.id.to_string());
            bind_event_columns!(row, e);
        });
        insert.build().execute(&mut *tx).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_are_stable_and_in_range() {
        assert_eq!(lane("abc"), lane("abc"));
        let used: std::collections::HashSet<i16> =
            (0..1000).map(|i| lane(&format!("key-{i}"))).collect();
        assert_eq!(used.len(), LANES as usize);
        assert!(used.iter().all(|l| (0..LANES as i16).contains(l)));
    }
}
