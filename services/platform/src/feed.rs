//! Per-organisation change feeds: the resumable streams a provider's or
//! probation unit's system keeps open. A service appends entries (what changed,
//! and a snapshot) in the same transaction as the change; a watcher follows its
//! organisation's feed from a cursor, so a reconnect neither skips nor repeats.

use crate::db::{Db, Tx};
use crate::validation::FieldViolation;
use crate::{on_db, on_tx};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How often a follower looks for entries committed by other instances.
const POLL: Duration = Duration::from_secs(1);
const BATCH: i64 = 100;

/// One change for an organisation's feed.
#[derive(Debug, Clone)]
pub struct FeedEntry {
    pub organisation: String,
    pub feed: &'static str,
    pub entity_id: String,
    pub snapshot: Vec<u8>,
    pub at: DateTime<Utc>,
}

/// Appends entries to their organisations' feeds, in the given order within
/// each feed. Each feed's counter row is bumped once, which locks it until
/// commit: call this last in the transaction. Locks are taken in a fixed order,
/// so two transactions never deadlock on them.
pub async fn append(tx: &mut Tx, entries: Vec<FeedEntry>) -> sqlx::Result<()> {
    let mut groups: BTreeMap<(String, &'static str), Vec<FeedEntry>> = BTreeMap::new();
    for entry in entries {
        groups
            .entry((entry.organisation.clone(), entry.feed))
            .or_default()
            .push(entry);
    }
    for ((organisation, feed), entries) in groups {
        let count = entries.len() as i64;
        let last: i64 = on_tx!(tx, c => sqlx::query_scalar(
            "INSERT INTO feed_counters (organisation, feed, last_seq) VALUES ($1, $2, $3)
             ON CONFLICT (organisation, feed) DO UPDATE SET last_seq = feed_counters.last_seq + $3
             RETURNING last_seq")
            .bind(&organisation).bind(feed).bind(count)
            .fetch_one(&mut **c).await)?;
        let first = last - count + 1;
        on_tx!(tx, c => {
            let mut insert = sqlx::QueryBuilder::new("INSERT INTO feed_entries (organisation, feed, seq, entity_id, snapshot, at) ");
            insert.push_values(entries.iter().enumerate(), |mut row, (i, e)| {
                row.push_bind(&e.organisation)
                    .push_bind(e.feed)
                    .push_bind(first + i as i64)
                    .push_bind(&e.entity_id)
                    .push_bind(&e.snapshot)
                    .push_bind(e.at);
            });
            insert.build().execute(&mut **c).await.map(|r| r.rows_affected())
        })?;
    }
    Ok(())
}

/// A cursor from a client: empty for the beginning, else a sequence number.
pub fn parse_cursor(cursor: &str) -> Result<i64, FieldViolation> {
    if cursor.is_empty() {
        return Ok(0);
    }
    cursor
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| FieldViolation::new("cursor", "is not a cursor this service issued"))
}

/// One entry as a follower reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedItem {
    pub seq: i64,
    pub entity_id: String,
    pub snapshot: Vec<u8>,
}

/// A service's feeds, and the signal that something committed in this process.
#[derive(Debug)]
pub struct Feeds {
    db: Db,
    changed: watch::Sender<u64>,
}

impl Feeds {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            changed: watch::channel(0).0,
        }
    }

    /// Call after committing feed entries: wakes this process's followers.
    pub fn notify(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The latest sequence number of a feed (0 when empty).
    pub async fn head(&self, organisation: &str, feed: &str) -> sqlx::Result<i64> {
        let seq: Option<i64> = on_db!(&self.db, p => sqlx::query_scalar(
            "SELECT last_seq FROM feed_counters WHERE organisation = $1 AND feed = $2")
            .bind(organisation).bind(feed).fetch_optional(p).await)?;
        Ok(seq.unwrap_or(0))
    }

    /// Follows `organisation`'s `feed` from just after `after`.
    pub fn follow(&self, organisation: &str, feed: &'static str, after: i64) -> Follower {
        Follower {
            db: self.db.clone(),
            changed: self.changed.subscribe(),
            organisation: organisation.to_owned(),
            feed,
            cursor: after,
            buffer: VecDeque::new(),
        }
    }
}

/// Reads one organisation's feed in order, waiting for new entries.
#[derive(Debug)]
pub struct Follower {
    db: Db,
    changed: watch::Receiver<u64>,
    organisation: String,
    feed: &'static str,
    cursor: i64,
    buffer: VecDeque<FeedItem>,
}

impl Follower {
    /// The next entry, waiting for one; `None` once `shutdown` is cancelled.
    pub async fn next(&mut self, shutdown: &CancellationToken) -> sqlx::Result<Option<FeedItem>> {
        loop {
            if let Some(item) = self.buffer.pop_front() {
                return Ok(Some(item));
            }
            self.changed.borrow_and_update();
            let rows: Vec<(i64, String, Vec<u8>)> = on_db!(&self.db, p => sqlx::query_as(
                "SELECT seq, entity_id, snapshot FROM feed_entries
                 WHERE organisation = $1 AND feed = $2 AND seq > $3 ORDER BY seq LIMIT $4")
                .bind(&self.organisation).bind(self.feed).bind(self.cursor).bind(BATCH)
                .fetch_all(p).await)?;
            if let Some((seq, _, _)) = rows.last() {
                self.cursor = *seq;
                self.buffer
                    .extend(rows.into_iter().map(|(seq, entity_id, snapshot)| FeedItem {
                        seq,
                        entity_id,
                        snapshot,
                    }));
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(None),
                _ = self.changed.changed() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_cursor;

    #[test]
    fn cursors_are_sequence_numbers() {
        assert_eq!(parse_cursor("").unwrap(), 0);
        assert_eq!(parse_cursor("42").unwrap(), 42);
        assert!(parse_cursor("-1").is_err());
        assert!(parse_cursor("abc").is_err());
    }
}
