//! Idempotent mutations: every mutating RPC carries a caller-chosen key. The
//! first call's response is stored with its effect, in one transaction; a replay
//! with the same body gets that response back and has no second effect; the
//! same key with a different body is refused (ALREADY_EXISTS). Keys are scoped
//! to the calling organisation and the operation.

use crate::db::{Db, Tx};
use crate::on_tx;
use crate::validation::FieldViolation;
use ring::digest;
use std::future::Future;
use tonic::Status;

const MAX_KEY_LEN: usize = 128;

/// A validated idempotency key for one call.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    organisation: String,
    operation: &'static str,
    key: String,
    request_hash: Vec<u8>,
}

impl IdempotencyKey {
    /// `key` must be 1 to 128 visible ASCII characters. The whole request is
    /// hashed, so any difference in its body is noticed.
    pub fn new(
        organisation: &str,
        operation: &'static str,
        key: &str,
        request: &impl prost::Message,
    ) -> Result<Self, FieldViolation> {
        if key.is_empty() {
            return Err(FieldViolation::missing("idempotency_key"));
        }
        if key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(FieldViolation::new(
                "idempotency_key",
                "must be at most 128 visible ASCII characters",
            ));
        }
        Ok(Self {
            organisation: organisation.to_owned(),
            operation,
            key: key.to_owned(),
            request_hash: digest::digest(&digest::SHA256, &request.encode_to_vec())
                .as_ref()
                .to_vec(),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IdempotencyError {
    #[error("idempotency key was already used for a different request")]
    Reused,
    #[error("stored response cannot be decoded")]
    Corrupt,
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl From<IdempotencyError> for Status {
    fn from(error: IdempotencyError) -> Self {
        match error {
            IdempotencyError::Reused => {
                Status::already_exists("idempotency_key was already used for a different request")
            }
            other => crate::grpc::internal("idempotency", &other),
        }
    }
}

/// Runs `work` once per key: returns the stored response on a replay, or runs
/// `work` in a fresh transaction, stores its response and commits. `work` gets
/// the transaction, does all its writes through it and hands it back with the
/// response. Concurrent first calls with one key resolve to one effect: the
/// loser's transaction rolls back and it returns the winner's response.
pub async fn idempotent<R, E, F, Fut>(db: &Db, key: &IdempotencyKey, mut work: F) -> Result<R, E>
where
    R: prost::Message + Default,
    E: From<IdempotencyError>,
    F: FnMut(Tx) -> Fut,
    Fut: Future<Output = Result<(Tx, R), E>>,
{
    for attempt in 0..2 {
        let mut tx = db.begin().await.map_err(IdempotencyError::from)?;
        if let Some(stored) = lookup::<R>(&mut tx, key).await? {
            return Ok(stored);
        }
        let (mut tx, response) = work(tx).await?;
        match remember(&mut tx, key, &response).await {
            Ok(()) => {
                tx.commit().await.map_err(IdempotencyError::from)?;
                return Ok(response);
            }
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() && attempt == 0 => continue,
            Err(e) => return Err(IdempotencyError::from(e).into()),
        }
    }
    Err(IdempotencyError::Reused.into())
}

/// The response stored for `key` in `tx`'s view, if the call was made before;
/// [`IdempotencyError::Reused`] if the key was made for a different request.
/// With [`remember`], for callers that write several calls in one transaction
/// ([`idempotent`] is the one-call form).
pub async fn lookup<R: prost::Message + Default>(
    tx: &mut Tx,
    key: &IdempotencyKey,
) -> Result<Option<R>, IdempotencyError> {
    const SQL: &str = "SELECT request_hash, response FROM idempotency_keys
                       WHERE organisation = $1 AND operation = $2 AND idempotency_key = $3";
    let row: Option<(Vec<u8>, Vec<u8>)> = on_tx!(tx, c => {
        sqlx::query_as(SQL)
            .bind(&key.organisation)
            .bind(key.operation)
            .bind(&key.key)
            .fetch_optional(&mut **c)
            .await?
    });
    match row {
        None => Ok(None),
        Some((hash, _)) if hash != key.request_hash => Err(IdempotencyError::Reused),
        Some((_, response)) => R::decode(response.as_slice())
            .map(Some)
            .map_err(|_| IdempotencyError::Corrupt),
    }
}

/// Stores `response` as the answer to `key`, in `tx`. A unique violation means
/// another transaction stored it first.
pub async fn remember<R: prost::Message>(
    tx: &mut Tx,
    key: &IdempotencyKey,
    response: &R,
) -> sqlx::Result<()> {
    // created_at is bound, not defaulted, so both backends store one format.
    const SQL: &str = "INSERT INTO idempotency_keys
                           (organisation, operation, idempotency_key, request_hash, response, created_at)
                       VALUES ($1, $2, $3, $4, $5, $6)";
    on_tx!(tx, c => {
        sqlx::query(SQL)
            .bind(&key.organisation)
            .bind(key.operation)
            .bind(&key.key)
            .bind(&key.request_hash)
            .bind(response.encode_to_vec())
            .bind(chrono::Utc::now())
            .execute(&mut **c)
            .await
            .map(|done| done.rows_affected())
    })?;
    Ok(())
}

/// Forgets keys older than `days` (replays are expected within minutes or hours).
pub async fn prune(db: &Db, days: i64) -> sqlx::Result<u64> {
    let cutoff = chrono::Utc::now() - chrono::Duration::days(days);
    Ok(crate::on_db!(db, pool => {
        sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1").bind(cutoff).execute(pool).await?.rows_affected()
    }))
}
