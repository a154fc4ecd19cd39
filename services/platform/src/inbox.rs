//! The idempotent inbox: a consumer records each event id in the same
//! transaction as the event's effect. The primary key (consumer, event_id)
//! makes the second recording of a redelivered event a no-op, and the caller
//! skips the effect.

use sqlx::{PgConnection, SqliteConnection};
use uuid::Uuid;

/// Records `event_id` for `consumer` inside the caller's transaction. Returns
/// `true` the first time, `false` if it was already there (skip the effect).
pub async fn record_postgres(
    tx: &mut PgConnection,
    consumer: &str,
    event_id: Uuid,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(consumer)
    .bind(event_id)
    .execute(tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The SQLite twin of [`record_postgres`].
pub async fn record_sqlite(
    tx: &mut SqliteConnection,
    consumer: &str,
    event_id: Uuid,
) -> sqlx::Result<bool> {
    let done =
        sqlx::query("INSERT INTO inbox (consumer, event_id) VALUES (?, ?) ON CONFLICT DO NOTHING")
            .bind(consumer)
            .bind(event_id.to_string())
            .execute(tx)
            .await?;
    Ok(done.rows_affected() == 1)
}
