//! Idempotent mutations: every mutating RPC carries a caller-chosen key. The
//! first call's response is stored with its effect, in one transaction; a replay
//! with the same body gets that response back and has no second effect; the
//! same key with a different body is refused (ALREADY_EXISTS). Keys are scoped
//! to the calling organisation and the operation.

use crate::db::{Db, Tx};
use crate::error::Error;
use crate::on_tx;
use crate::validation::FieldViolation;
use crate::work::{Transactions, Work};
use ring::digest;
use std::collections::BTreeMap;
use std::future::Future;
use throughcare_proto::IdempotentRequest;

const MAX_KEY_LEN: usize = 128;

/// A validated idempotency key for one call.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    organisation: String,
    operation: String,
    key: String,
    request_hash: Vec<u8>,
}

impl IdempotencyKey {
    /// Whether `self` comes again after `earlier` in one batch of calls: `None`
    /// for another key, `Some(Ok(()))` for a replay of the same request,
    /// `Some(Err(Reused))` for the same key on a different request.
    pub fn again_after(&self, earlier: &IdempotencyKey) -> Option<Result<(), IdempotencyError>> {
        let same_key = self.organisation == earlier.organisation
            && self.operation == earlier.operation
            && self.key == earlier.key;
        same_key.then(|| {
            if self.request_hash == earlier.request_hash {
                Ok(())
            } else {
                Err(IdempotencyError::Reused)
            }
        })
    }

    /// `key` must be 1 to 128 visible ASCII characters. The operation is the
    /// request's message type, so keys are scoped to it without a name to keep
    /// in step. The whole request is hashed, so any difference in its body is
    /// noticed.
    pub fn of<M: IdempotentRequest>(
        organisation: &str,
        request: &M,
    ) -> Result<Self, FieldViolation> {
        Self::new(organisation, request.idempotency_key(), request)
    }

    /// As [`of`](Self::of), for a key given apart from its request.
    pub fn new<M: prost::Message + prost::Name>(
        organisation: &str,
        key: &str,
        request: &M,
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
            operation: M::full_name(),
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

impl From<IdempotencyError> for Error {
    fn from(error: IdempotencyError) -> Self {
        match error {
            IdempotencyError::Reused => {
                Error::Conflict("idempotency_key was already used for a different request".into())
            }
            IdempotencyError::Database(error) => error.into(),
            other => Error::internal("idempotency", other),
        }
    }
}

/// Runs a mutating request once per idempotency key of `organisation`: the
/// key is checked and scoped to the request's type, then [`idempotent`].
pub async fn once<M, R, E, F, Fut>(
    transactions: &Transactions,
    organisation: &str,
    request: &M,
    apply: F,
) -> Result<R, E>
where
    M: IdempotentRequest,
    R: prost::Message + Default,
    E: From<IdempotencyError> + From<FieldViolation>,
    F: FnMut(Work) -> Fut,
    Fut: Future<Output = Result<(Work, R), E>>,
{
    let key = IdempotencyKey::of(organisation, request)?;
    idempotent(transactions, &key, apply).await
}

/// Runs `apply` once per key: returns the stored response on a replay, or runs
/// `apply` in a fresh unit of work, stores its response with it and commits.
/// `apply` gets the work, does all its writes through it and hands it back
/// with the response. Concurrent first calls with one key resolve to one
/// effect: the loser's work rolls back and it returns the winner's response.
pub async fn idempotent<R, E, F, Fut>(
    transactions: &Transactions,
    key: &IdempotencyKey,
    mut apply: F,
) -> Result<R, E>
where
    R: prost::Message + Default,
    E: From<IdempotencyError>,
    F: FnMut(Work) -> Fut,
    Fut: Future<Output = Result<(Work, R), E>>,
{
    for attempt in 0..2 {
        let mut work = transactions.begin().await.map_err(IdempotencyError::from)?;
        let stored = lookup_all::<R>(work.tx(), &[key])
            .await
            .map_err(IdempotencyError::from)?;
        if let Some(stored) = stored.into_iter().next().transpose()?.flatten() {
            return Ok(stored);
        }
        let (mut work, response) = apply(work).await?;
        match remember_all(work.tx(), &[(key, &response)]).await {
            Ok(()) => {
                work.commit().await.map_err(IdempotencyError::from)?;
                return Ok(response);
            }
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() && attempt == 0 => continue,
            Err(e) => return Err(IdempotencyError::from(e).into()),
        }
    }
    Err(IdempotencyError::Reused.into())
}

/// For each key, the response stored for it in `tx`'s view if the call was made
/// before, or [`IdempotencyError::Reused`] if the key was used for a different
/// request; one statement per caller and operation. With [`remember_all`], for callers that
/// write several calls in one transaction ([`idempotent`] is the one-call form).
pub async fn lookup_all<R: prost::Message + Default>(
    tx: &mut Tx,
    keys: &[&IdempotencyKey],
) -> sqlx::Result<Vec<Result<Option<R>, IdempotencyError>>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    type Row = (String, String, String, Vec<u8>, Vec<u8>);
    // One index range per caller and operation (a batch usually has one).
    let mut groups: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
    for key in keys {
        groups
            .entry((&key.organisation, &key.operation))
            .or_default()
            .push(&key.key);
    }
    let mut rows: Vec<Row> = Vec::new();
    for ((organisation, operation), names) in groups {
        rows.extend(on_tx!(tx, c => {
            let mut select = sqlx::QueryBuilder::new(
                "SELECT organisation, operation, idempotency_key, request_hash, response
                 FROM idempotency_keys WHERE organisation = ",
            );
            select.push_bind(organisation).push(" AND operation = ").push_bind(operation);
            select.push(" AND idempotency_key IN (");
            let mut list = select.separated(", ");
            for name in names {
                list.push_bind(name);
            }
            select.push(")");
            select.build_query_as::<Row>().fetch_all(&mut **c).await?
        }));
    }
    Ok(keys
        .iter()
        .map(|key| {
            let stored = rows.iter().find(|(organisation, operation, k, _, _)| {
                *organisation == key.organisation && *operation == key.operation && *k == key.key
            });
            match stored {
                None => Ok(None),
                Some((.., hash, _)) if *hash != key.request_hash => Err(IdempotencyError::Reused),
                Some((.., response)) => R::decode(response.as_slice())
                    .map(Some)
                    .map_err(|_| IdempotencyError::Corrupt),
            }
        })
        .collect())
}

/// Stores each response as the answer to its key, in `tx`, in one statement. A
/// unique violation means another transaction stored one of them first.
pub async fn remember_all<R: prost::Message>(
    tx: &mut Tx,
    answers: &[(&IdempotencyKey, &R)],
) -> sqlx::Result<()> {
    if answers.is_empty() {
        return Ok(());
    }
    // created_at is bound, not defaulted, so both backends store one format.
    let now = chrono::Utc::now();
    on_tx!(tx, c => {
        let mut insert = sqlx::QueryBuilder::new(
            "INSERT INTO idempotency_keys
                (organisation, operation, idempotency_key, request_hash, response, created_at) ",
        );
        insert.push_values(answers, |mut row, (key, response)| {
            row.push_bind(&key.organisation)
                .push_bind(&key.operation)
                .push_bind(&key.key)
                .push_bind(&key.request_hash)
                .push_bind(response.encode_to_vec())
                .push_bind(now);
        });
        insert.build().execute(&mut **c).await.map(|done| done.rows_affected())
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
