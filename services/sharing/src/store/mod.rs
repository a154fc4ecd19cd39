//! The sharing store: SQL written once, run on PostgreSQL or SQLite through the
//! platform's `Tx` (writes, in the caller's transaction) and `on_db!` (reads).

pub mod audit;
pub mod people;
pub mod records;

use chrono::{DateTime, Utc};
use throughcare_platform::db::Tx;
use throughcare_platform::{on_db, on_tx};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("a stored {0} is not valid")]
    Corrupt(&'static str),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A list of enum names stored as one comma-separated text column.
pub fn join_names(names: impl IntoIterator<Item = &'static str>) -> String {
    names.into_iter().collect::<Vec<_>>().join(",")
}

pub fn split_names(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').filter(|s| !s.is_empty())
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

pub async fn insert_consent(tx: &mut Tx, c: &ConsentRow) -> StoreResult<()> {
    on_tx!(tx, conn => sqlx::query(
        "INSERT INTO consents (consent_id, person_key, provision, period_start, period_end, method, recorded_by, recorded_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
        .bind(&c.consent_id).bind(&c.person_key).bind(&c.provision).bind(c.period_start).bind(c.period_end)
        .bind(&c.method).bind(&c.recorded_by).bind(c.recorded_at)
        .execute(&mut **conn).await.map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn lock_consent(tx: &mut Tx, consent_id: &str) -> StoreResult<Option<ConsentRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {CONSENT_COLUMNS} FROM consents WHERE consent_id = $1{}",
        tx.for_update()
    ));
    Ok(on_tx!(tx, c => sqlx::query_as(sql).bind(consent_id).fetch_optional(&mut **c).await)?)
}

pub async fn withdraw_consent(tx: &mut Tx, consent_id: &str, at: DateTime<Utc>) -> StoreResult<()> {
    on_tx!(tx, c => sqlx::query("UPDATE consents SET withdrawn_at = $2 WHERE consent_id = $1")
        .bind(consent_id).bind(at).execute(&mut **c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// A person's consents (all, withdrawn included), oldest first.
pub async fn consents_in(tx: &mut Tx, person_key: &str) -> StoreResult<Vec<ConsentRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {CONSENT_COLUMNS} FROM consents WHERE person_key = $1 ORDER BY recorded_at, consent_id"
    ));
    Ok(on_tx!(tx, c => sqlx::query_as(sql).bind(person_key).fetch_all(&mut **c).await)?)
}

pub async fn consents_of(
    db: &throughcare_platform::db::Db,
    person_key: &str,
) -> StoreResult<Vec<ConsentRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {CONSENT_COLUMNS} FROM consents WHERE person_key = $1 ORDER BY recorded_at, consent_id"
    ));
    Ok(on_db!(db, p => sqlx::query_as(sql).bind(person_key).fetch_all(p).await)?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AgreementRow {
    pub agreement_id: String,
    pub basis_type: String,
    pub body: Vec<u8>,
    pub registered_by: String,
    pub registered_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

const AGREEMENT_COLUMNS: &str =
    "agreement_id, basis_type, body, registered_by, registered_at, revoked_at";

pub async fn insert_agreement(tx: &mut Tx, a: &AgreementRow) -> StoreResult<()> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO agreements (agreement_id, basis_type, body, registered_by, registered_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(&a.agreement_id).bind(&a.basis_type).bind(&a.body).bind(&a.registered_by).bind(a.registered_at)
        .execute(&mut **c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn lock_agreement(tx: &mut Tx, agreement_id: &str) -> StoreResult<Option<AgreementRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {AGREEMENT_COLUMNS} FROM agreements WHERE agreement_id = $1{}",
        tx.for_update()
    ));
    Ok(on_tx!(tx, c => sqlx::query_as(sql).bind(agreement_id).fetch_optional(&mut **c).await)?)
}

pub async fn revoke_agreement(
    tx: &mut Tx,
    agreement_id: &str,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    on_tx!(tx, c => sqlx::query("UPDATE agreements SET revoked_at = $2 WHERE agreement_id = $1")
        .bind(agreement_id).bind(at).execute(&mut **c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn agreements_in(tx: &mut Tx) -> StoreResult<Vec<AgreementRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {AGREEMENT_COLUMNS} FROM agreements ORDER BY registered_at, agreement_id"
    ));
    Ok(on_tx!(tx, c => sqlx::query_as(sql).fetch_all(&mut **c).await)?)
}

pub async fn agreements_of(db: &throughcare_platform::db::Db) -> StoreResult<Vec<AgreementRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {AGREEMENT_COLUMNS} FROM agreements ORDER BY registered_at, agreement_id"
    ));
    Ok(on_db!(db, p => sqlx::query_as(sql).fetch_all(p).await)?)
}
