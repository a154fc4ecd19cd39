//! The unit of work: one transaction that writes a state change together with
//! what it announces — events for the outbox and entries for the
//! organisations' change feeds — and, once committed, wakes the outbox relay
//! and this process's feed watchers. Every use case and every consumer goes
//! through it, so none of them can forget a step or take the locks out of
//! order.

use crate::bus::Event;
use crate::db::{Db, Tx};
use crate::feed::{FeedEntry, Feeds};
use crate::outbox::{self, OutboxWaker};
use std::sync::Arc;

/// Where units of work begin: the service's database, its feeds, and the relay
/// to wake after a commit.
#[derive(Debug, Clone)]
pub struct Transactions {
    db: Db,
    waker: OutboxWaker,
    feeds: Arc<Feeds>,
}

impl Transactions {
    pub fn new(db: Db, waker: OutboxWaker) -> Self {
        let feeds = Arc::new(Feeds::new(db.clone()));
        Self { db, waker, feeds }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn feeds(&self) -> &Feeds {
        &self.feeds
    }

    /// Begins a unit of work (a write transaction).
    pub async fn begin(&self) -> sqlx::Result<Work> {
        Ok(Work {
            tx: self.db.begin().await?,
            events: Vec::new(),
            feed: Vec::new(),
            waker: self.waker.clone(),
            feeds: self.feeds.clone(),
        })
    }
}

/// One transaction and what it will announce when it commits.
#[derive(Debug)]
pub struct Work {
    tx: Tx,
    events: Vec<Event>,
    feed: Vec<FeedEntry>,
    waker: OutboxWaker,
    feeds: Arc<Feeds>,
}

impl Work {
    /// The transaction, for the service's own statements.
    pub fn tx(&mut self) -> &mut Tx {
        &mut self.tx
    }

    /// Publishes `event` if and only if this unit of work commits.
    pub fn publish(&mut self, event: Event) {
        self.events.push(event);
    }

    /// Appends `entry` to its organisation's feed when this commits.
    pub fn announce(&mut self, entry: FeedEntry) {
        self.feed.push(entry);
    }

    /// Writes what is pending: the events to the outbox, then the feed
    /// entries, whose counter rows stay locked until commit. Call it before
    /// taking any lock that must come after the feeds' (e.g. an audit head);
    /// [`commit`](Self::commit) calls it anyway.
    pub async fn flush(&mut self) -> sqlx::Result<()> {
        outbox::enqueue_all(&mut self.tx, &std::mem::take(&mut self.events)).await?;
        crate::feed::append(&mut self.tx, std::mem::take(&mut self.feed)).await
    }

    /// Flushes, commits, then wakes the relay and the feed watchers.
    pub async fn commit(mut self) -> sqlx::Result<()> {
        self.flush().await?;
        self.tx.commit().await?;
        self.waker.wake();
        self.feeds.notify();
        Ok(())
    }
}
