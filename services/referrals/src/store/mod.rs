//! The referrals store. SQL is written once and runs on PostgreSQL or SQLite
//! through the platform's [`Tx`](throughcare_platform::db::Tx) and
//! [`on_db!`](throughcare_platform::on_db): rather than a repository trait with
//! two near-identical implementations, one implementation over two
//! connections, proven by one contract suite run against both.

mod persons;
pub mod receipts;
pub mod rows;
pub mod write;

use crate::domain::referral::ReferralState;
use crate::domain::release::Release;
use crate::domain::task::{Task, TaskState};
use chrono::{DateTime, Utc};
use rows::{CorruptRow, HistoryRow, PersonRow, ReferralRow, Stored, StoredReferral, TaskRow};
use throughcare_platform::db::Db;
use throughcare_platform::identifiers::PersonIds;
use throughcare_platform::on_db;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Corrupt(#[from] CorruptRow),
    #[error("{0}")]
    Conflict(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A row type both backends decode.
pub trait Row:
    for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
    + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
    + Send
    + Unpin
{
}

impl<R> Row for R where
    R: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
        + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
        + Send
        + Unpin
{
}

/// Which side of referrals to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Referrer,
    Provider,
    Either,
}

/// A worklist query.
#[derive(Debug, Clone)]
pub struct ReferralFilter {
    pub organisation: String,
    pub side: Side,
    pub states: Vec<ReferralState>,
    pub services: Vec<&'static str>,
    pub requested_after: Option<DateTime<Utc>>,
    pub requested_before: Option<DateTime<Utc>>,
    /// Continue after this (requested_at, referral_id).
    pub after: Option<(DateTime<Utc>, String)>,
    pub limit: i64,
}

/// A referral with its person's identifiers.
#[derive(Debug, Clone)]
pub struct Listed {
    pub referral: StoredReferral,
    pub person: PersonIds,
}

/// A row joined with its person's identifiers (the `p.` columns).
#[derive(Debug, sqlx::FromRow)]
struct WithPerson<Row> {
    #[sqlx(flatten)]
    row: Row,
    nhs_number: Option<String>,
    prison_number: Option<String>,
    crn: Option<String>,
}

impl<Row> WithPerson<Row> {
    fn ids(&self, person_key: &str) -> Result<PersonIds, CorruptRow> {
        rows::person_ids(person_key, &self.nhs_number, &self.prison_number, &self.crn)
    }
}

/// A page of releases an organisation may see.
#[derive(Debug, Clone)]
pub struct ReleaseFilter {
    pub organisation: String,
    pub states: Vec<crate::domain::release::ReleaseState>,
    /// After this (notified_at, release_id).
    pub after: Option<(DateTime<Utc>, String)>,
    pub limit: i64,
}

/// The columns of `select` (a `SELECT … FROM table`), each under `alias`.
fn prefixed(select: &str, table: &str, alias: &str) -> String {
    select
        .trim_start_matches("SELECT ")
        .trim_end_matches(&format!(" FROM {table}"))
        .split(',')
        .map(|c| format!("{alias}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn quoted(names: impl Iterator<Item = &'static str>) -> String {
    names
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
}

impl Store {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub async fn person(&self, person_key: &str) -> StoreResult<Option<PersonRow>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {PERSON_COLUMNS} FROM persons WHERE person_key = $1"
        ));
        Ok(on_db!(&self.db, p => sqlx::query_as(sql).bind(person_key).fetch_optional(p).await)?)
    }

    /// The key of the person these identifiers name, if known.
    pub async fn person_key_of(&self, ids: &PersonIds) -> StoreResult<Option<String>> {
        let [nhs, noms, crn] = ids.columns();
        let rows: Vec<PersonRow> = on_db!(&self.db, p => sqlx::query_as(person_candidates())
            .bind(nhs).bind(noms).bind(crn).fetch_all(p).await)?;
        Ok(choose(ids, rows).map(|row| row.person_key))
    }

    pub async fn release(&self, release_id: &str) -> StoreResult<Option<Release>> {
        let sql = format!("{} WHERE release_id = $1", write::RELEASE_SELECT);
        Ok(self.select(sql, release_id).await?.pop())
    }

    /// The receipts of the pushes a release or referral caused.
    pub async fn receipts(
        &self,
        kind: &str,
        id: &str,
    ) -> StoreResult<Vec<throughcare_proto::types::v1::DeliveryReceipt>> {
        Ok(receipts::of_triggers(&self.db, kind, &[id])
            .await?
            .remove(id)
            .unwrap_or_default())
    }

    pub async fn tasks_of_release(&self, release_id: &str) -> StoreResult<Vec<Task>> {
        let sql = format!(
            "{} WHERE release_id = $1 ORDER BY opened_at, task_id",
            write::TASK_SELECT
        );
        self.select(sql, release_id).await
    }

    /// What `sql` selects with `$1` bound to `value`, each row parsed into its
    /// domain value.
    async fn select<T: Stored>(&self, sql: String, value: &str) -> StoreResult<Vec<T>> {
        let sql = sqlx::AssertSqlSafe(sql);
        let rows: Vec<T::Row> =
            on_db!(&self.db, p => sqlx::query_as(sql).bind(value).fetch_all(p).await)?;
        Ok(rows::parse_all(rows)?)
    }

    /// Tasks an organisation is responsible for, optionally of one release and
    /// in some states, after the (opened_at, task_id) cursor.
    pub async fn list_tasks(
        &self,
        organisation: &str,
        release_id: Option<&str>,
        states: &[TaskState],
        after: Option<(DateTime<Utc>, String)>,
        limit: i64,
    ) -> StoreResult<Vec<Task>> {
        let state_filter = if states.is_empty() {
            String::new()
        } else {
            format!(
                " AND state IN ({})",
                quoted(states.iter().map(|s| s.as_str()))
            )
        };
        let (after_at, after_id) = after.unzip();
        let sql = sqlx::AssertSqlSafe(format!(
            "{} WHERE responsible = $1 AND ($2 IS NULL OR release_id = $2){state_filter}
               AND ($3 IS NULL OR (opened_at, task_id) > ($3, $4))
             ORDER BY opened_at, task_id LIMIT $5",
            write::TASK_SELECT
        ));
        let rows: Vec<TaskRow> = on_db!(&self.db, p => sqlx::query_as(sql)
            .bind(organisation).bind(release_id).bind(after_at).bind(after_id).bind(limit)
            .fetch_all(p).await)?;
        Ok(rows::parse_all(rows)?)
    }

    pub async fn referral(&self, referral_id: &str) -> StoreResult<Option<StoredReferral>> {
        let sql = format!("{} WHERE referral_id = $1", write::REFERRAL_SELECT);
        Ok(self.select(sql, referral_id).await?.pop())
    }

    pub async fn history(&self, referral_id: &str) -> StoreResult<Vec<HistoryRow>> {
        Ok(on_db!(&self.db, p => sqlx::query_as(
            "SELECT from_state, to_state, actor, at FROM referral_history WHERE referral_id = $1 ORDER BY version")
            .bind(referral_id).fetch_all(p).await)?)
    }

    /// A page of an organisation's worklist, oldest request first.
    pub async fn list_referrals(&self, f: &ReferralFilter) -> StoreResult<Vec<Listed>> {
        let side = match f.side {
            Side::Referrer => "r.referrer = $1",
            Side::Provider => "r.provider = $1",
            Side::Either => "(r.referrer = $1 OR r.provider = $1)",
        };
        let mut filters = String::new();
        if !f.states.is_empty() {
            filters += &format!(
                " AND r.state IN ({})",
                quoted(f.states.iter().map(|s| s.as_str()))
            );
        }
        if !f.services.is_empty() {
            filters += &format!(" AND r.service IN ({})", quoted(f.services.iter().copied()));
        }
        let columns = prefixed(write::REFERRAL_SELECT, "referrals", "r");
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {columns}, p.nhs_number, p.prison_number, p.crn
             FROM referrals r JOIN persons p ON p.person_key = r.person_key
             WHERE {side}{filters}
               AND ($2 IS NULL OR r.requested_at >= $2) AND ($3 IS NULL OR r.requested_at < $3)
               AND ($4 IS NULL OR (r.requested_at, r.referral_id) > ($4, $5))
             ORDER BY r.requested_at, r.referral_id LIMIT $6"
        ));
        let (after_at, after_id) = f.after.clone().unzip();
        let rows: Vec<WithPerson<ReferralRow>> = on_db!(&self.db, p => sqlx::query_as(sql)
            .bind(&f.organisation).bind(f.requested_after).bind(f.requested_before)
            .bind(after_at).bind(after_id).bind(f.limit)
            .fetch_all(p).await)?;
        rows.into_iter()
            .map(|listed| {
                let person = listed.ids(&listed.row.person_key)?;
                Ok(Listed {
                    referral: StoredReferral::parse(listed.row)?,
                    person,
                })
            })
            .collect()
    }

    /// A page of the releases an organisation notified, released from its
    /// prison or supervises, oldest notification first, with their people.
    pub async fn list_releases(&self, f: &ReleaseFilter) -> StoreResult<Vec<(Release, PersonIds)>> {
        let mut filters = String::new();
        if !f.states.is_empty() {
            filters += &format!(
                " AND r.state IN ({})",
                quoted(f.states.iter().map(|s| s.as_str()))
            );
        }
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {}, p.nhs_number, p.prison_number, p.crn
             FROM releases r JOIN persons p ON p.person_key = r.person_key
             WHERE (r.notified_by = $1 OR r.releasing_prison = $1 OR r.probation_delivery_unit = $1){filters}
               AND ($2 IS NULL OR (r.notified_at, r.release_id) > ($2, $3))
             ORDER BY r.notified_at, r.release_id LIMIT $4",
            prefixed(write::RELEASE_SELECT, "releases", "r")
        ));
        let (after_at, after_id) = f.after.clone().unzip();
        let rows: Vec<WithPerson<rows::ReleaseRow>> = on_db!(&self.db, p => sqlx::query_as(sql)
            .bind(&f.organisation).bind(after_at).bind(after_id).bind(f.limit)
            .fetch_all(p).await)?;
        rows.into_iter()
            .map(|listed| {
                let person = listed.ids(&listed.row.person_key)?;
                Ok((Release::parse(listed.row)?, person))
            })
            .collect()
    }

    /// Assessments `recorded_by` made for a person: (id, assessed_on, area, sealed findings, recorded_at).
    pub async fn assessments(
        &self,
        person_key: &str,
        recorded_by: &str,
    ) -> StoreResult<Vec<AssessmentRow>> {
        Ok(on_db!(&self.db, p => sqlx::query_as(
            "SELECT assessment_id, assessed_on, probation_region, probation_delivery_unit, local_authority,
                    integrated_care_board, findings_key_id, findings_nonce, findings, recorded_at
             FROM assessments WHERE person_key = $1 AND recorded_by = $2 ORDER BY recorded_at, assessment_id")
            .bind(person_key).bind(recorded_by).fetch_all(p).await)?)
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct AssessmentRow {
    pub assessment_id: String,
    pub assessed_on: chrono::NaiveDate,
    pub probation_region: Option<String>,
    pub probation_delivery_unit: Option<String>,
    pub local_authority: Option<String>,
    pub integrated_care_board: Option<String>,
    pub findings_key_id: String,
    pub findings_nonce: Vec<u8>,
    pub findings: Vec<u8>,
    pub recorded_at: DateTime<Utc>,
}

/// The columns of a [`PersonRow`], for SELECT and RETURNING.
const PERSON_COLUMNS: &str =
    "person_key, nhs_number, prison_number, crn, date_of_birth, sex, ethnic_group,
        probation_region, probation_delivery_unit, integrated_care_board, local_authority, prison";

/// Everyone holding any of the identifiers `$1` (NHS number), `$2` (prison
/// number) or `$3` (CRN): the candidates [`choose`] decides between.
fn person_candidates() -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(format!(
        "SELECT {PERSON_COLUMNS} FROM persons WHERE nhs_number = $1 OR prison_number = $2 OR crn = $3"
    ))
}

/// The person these identifiers name among `candidates`, by the one person
/// rule ([`PersonIds::choose`]).
fn choose(ids: &PersonIds, candidates: Vec<PersonRow>) -> Option<PersonRow> {
    ids.choose(
        candidates
            .into_iter()
            .map(|row| {
                let held = [
                    row.nhs_number.clone(),
                    row.prison_number.clone(),
                    row.crn.clone(),
                ];
                (row, held)
            })
            .collect(),
    )
}
