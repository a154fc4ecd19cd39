//! The idempotent inbox: a consumer records each event id in the same
//! transaction as the event's effect. The primary key (consumer, event_id)
//! makes the second recording of a redelivered event a no-op, and the effect
//! is skipped. [`Inbox::begin`] owns that step for every consumer.

use crate::bus::Event;
use crate::db::Tx;
use crate::work::{Transactions, Work};
use uuid::Uuid;

/// One consumer's inbox.
#[derive(Debug, Clone)]
pub struct Inbox {
    consumer: &'static str,
    transactions: Transactions,
}

impl Inbox {
    pub fn new(consumer: &'static str, transactions: Transactions) -> Self {
        Self {
            consumer,
            transactions,
        }
    }

    /// Begins the unit of work that applies `event`, with the event already
    /// recorded in it; `None` if it was applied before (skip it). Commit the
    /// work after writing the effect, and the event counts as done.
    pub async fn begin(&self, event: &Event) -> sqlx::Result<Option<Work>> {
        let mut work = self.transactions.begin().await?;
        Ok(record(work.tx(), self.consumer, event.id)
            .await?
            .then_some(work))
    }
}

/// Records `event_id` for `consumer` inside the caller's transaction. Returns
/// `true` the first time, `false` if it was already there (skip the effect).
pub async fn record(tx: &mut Tx, consumer: &str, event_id: Uuid) -> sqlx::Result<bool> {
    let done = match tx {
        Tx::Postgres(c) => sqlx::query(
            "INSERT INTO inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(consumer)
        .bind(event_id)
        .execute(&mut **c)
        .await?
        .rows_affected(),
        Tx::Sqlite(c) => sqlx::query(
            "INSERT INTO inbox (consumer, event_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(consumer)
        .bind(event_id.to_string())
        .execute(&mut **c)
        .await?
        .rows_affected(),
    };
    Ok(done == 1)
}
