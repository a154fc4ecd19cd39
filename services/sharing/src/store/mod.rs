//! The sharing store: SQL written once, run on PostgreSQL or SQLite through the
//! platform's `Tx` (writes, in the caller's transaction) and `on_db!` (reads).

pub mod audit;
pub mod people;
pub mod records;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use throughcare_platform::db::{Db, Tx};
use throughcare_platform::on_tx;

/// Where a read runs: in a use case's transaction, or straight on the pool.
#[derive(Debug)]
pub enum Reader<'a> {
    Tx(&'a mut Tx),
    Db(&'a Db),
}

impl Reader<'_> {
    /// The same place to read, for one more read before this one is used up.
    pub fn again(&mut self) -> Reader<'_> {
        match self {
            Reader::Tx(tx) => Reader::Tx(tx),
            Reader::Db(db) => Reader::Db(db),
        }
    }
}

/// Runs one read statement on a [`Reader`]: `read!(reader, c => query.fetch_all(c))`,
/// where `c` is the transaction's connection or the pool.
macro_rules! read {
    ($reader:expr, $c:ident => $body:expr) => {
        match $reader {
            $crate::store::Reader::Tx(tx) => throughcare_platform::on_tx!(tx, $c => { let $c = &mut **$c; $body }),
            $crate::store::Reader::Db(db) => throughcare_platform::on_db!(db, $c => $body),
        }
    };
}
pub(crate) use read;

/// A list of enum names stored as one comma-separated text column.
pub fn join_names(names: impl IntoIterator<Item = &'static str>) -> String {
    names.into_iter().collect::<Vec<_>>().join(",")
}

pub fn split_names(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').filter(|s| !s.is_empty())
}

/// The row of `table` whose `key` column is `id` (its `columns`), locked
/// until commit.
pub(crate) async fn lock_row<T>(
    tx: &mut Tx,
    table: &str,
    columns: &str,
    key: &str,
    id: &str,
) -> sqlx::Result<Option<T>>
where
    T: for<'r> sqlx::FromRow<'r, PgRow> + for<'r> sqlx::FromRow<'r, SqliteRow> + Send + Unpin,
{
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {columns} FROM {table} WHERE {key} = $1{}",
        tx.for_update()
    ));
    on_tx!(tx, c => sqlx::query_as(sql).bind(id).fetch_optional(&mut **c).await)
}

/// Sets `column` (when it was withdrawn, revoked) to `at` on the row of
/// `table` whose `key` column is `id`.
async fn stamp(
    tx: &mut Tx,
    table: &str,
    key: &str,
    column: &str,
    id: &str,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    let sql = sqlx::AssertSqlSafe(format!("UPDATE {table} SET {column} = $2 WHERE {key} = $1"));
    on_tx!(tx, c => sqlx::query(sql).bind(id).bind(at).execute(&mut **c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConsentRow {
    pub consent_id: String,
    pub person_key: String,
    pub provision: Vec<u8>,
    pub period_start: Option<DateTime<Utc>>,
    pub period_end: Option<DateTime<Utc>>,
    pub method: String,
    pub recorded_by: String,
    pub recorded_at: DateTime<Utc>,
    pub withdrawn_at: Option<DateTime<Utc>>,
}

const CONSENT_COLUMNS: &str = "consent_id, person_key, provision, period_start, period_end, method, recorded_by, recorded_at, withdrawn_at";

pub async fn insert_consent(tx: &mut Tx, c: &ConsentRow) -> sqlx::Result<()> {
    on_tx!(tx, conn => sqlx::query(
        "INSERT INTO consents (consent_id, person_key, provision, period_start, period_end, method, recorded_by, recorded_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
        .bind(&c.consent_id).bind(&c.person_key).bind(&c.provision).bind(c.period_start).bind(c.period_end)
        .bind(&c.method).bind(&c.recorded_by).bind(c.recorded_at)
        .execute(&mut **conn).await.map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn lock_consent(tx: &mut Tx, consent_id: &str) -> sqlx::Result<Option<ConsentRow>> {
    lock_row(tx, "consents", CONSENT_COLUMNS, "consent_id", consent_id).await
}

pub async fn withdraw_consent(
    tx: &mut Tx,
    consent_id: &str,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    stamp(tx, "consents", "consent_id", "withdrawn_at", consent_id, at).await
}

/// A person's consents (all, withdrawn included), oldest first.
pub async fn consents(reader: Reader<'_>, person_key: &str) -> sqlx::Result<Vec<ConsentRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {CONSENT_COLUMNS} FROM consents WHERE person_key = $1 ORDER BY recorded_at, consent_id"
    ));
    read!(reader, c => sqlx::query_as(sql).bind(person_key).fetch_all(c).await)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AgreementRow {
    pub agreement_id: String,
    pub basis_type: String,
    pub body: Vec<u8>,
    pub registered_by: String,
    pub registered_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// The disclosing parties' codes, comma-separated (see [`join_codes`]);
    /// empty for agreements registered before parties were recorded.
    pub disclosing_parties: String,
}

const AGREEMENT_COLUMNS: &str =
    "agreement_id, basis_type, body, registered_by, registered_at, revoked_at, disclosing_parties";

/// Organisation codes as one comma-separated text column (the registry's
/// codes hold no commas).
pub fn join_codes(codes: &[String]) -> String {
    codes.join(",")
}

pub fn split_codes(text: &str) -> Vec<String> {
    split_names(text).map(str::to_owned).collect()
}

pub async fn insert_agreement(tx: &mut Tx, a: &AgreementRow) -> sqlx::Result<()> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO agreements (agreement_id, basis_type, body, registered_by, registered_at, disclosing_parties) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(&a.agreement_id).bind(&a.basis_type).bind(&a.body).bind(&a.registered_by).bind(a.registered_at).bind(&a.disclosing_parties)
        .execute(&mut **c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn lock_agreement(tx: &mut Tx, agreement_id: &str) -> sqlx::Result<Option<AgreementRow>> {
    lock_row(
        tx,
        "agreements",
        AGREEMENT_COLUMNS,
        "agreement_id",
        agreement_id,
    )
    .await
}

pub async fn revoke_agreement(
    tx: &mut Tx,
    agreement_id: &str,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    stamp(
        tx,
        "agreements",
        "agreement_id",
        "revoked_at",
        agreement_id,
        at,
    )
    .await
}

/// Every agreement (revoked included), oldest first.
pub async fn agreements(reader: Reader<'_>) -> sqlx::Result<Vec<AgreementRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {AGREEMENT_COLUMNS} FROM agreements ORDER BY registered_at, agreement_id"
    ));
    read!(reader, c => sqlx::query_as(sql).fetch_all(c).await)
}
