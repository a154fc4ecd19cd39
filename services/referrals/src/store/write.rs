//! Writes, inside the caller's transaction. One SQL text per statement runs on
//! PostgreSQL or SQLite ([`on_tx!`]).

pub use super::persons::{Placement, Resolved, person, resolve_person};

use super::rows::{Stored, StoredReferral, TaskRow, enum_name, parse_all};
use super::{StoreError, StoreResult};
use crate::domain::area::Destination;
use crate::domain::referral::ReferralState;
use crate::domain::release::Release;
use crate::domain::task::{Task, TaskState};
use chrono::{DateTime, Utc};
use throughcare_platform::db::Tx;
use throughcare_platform::on_tx;

/// Inserts releases in one statement.
pub async fn insert_releases(tx: &mut Tx, releases: &[Release]) -> StoreResult<()> {
    if releases.is_empty() {
        return Ok(());
    }
    on_tx!(tx, c => {
        let mut insert = sqlx::QueryBuilder::new(
            "INSERT INTO releases (release_id, person_key, release_date, reason, releasing_prison, local_authority,
                probation_region, probation_delivery_unit, integrated_care_board, approved_premises, state,
                notified_by, notified_at) ",
        );
        insert.push_values(releases, |mut row, r| {
            let d = &r.destination;
            row.push_bind(&r.release_id).push_bind(&r.person_key).push_bind(r.release_date)
                .push_bind(enum_name(r.reason)).push_bind(&r.releasing_prison).push_bind(&d.local_authority)
                .push_bind(&d.probation_region).push_bind(&d.probation_delivery_unit)
                .push_bind(&d.integrated_care_board).push_bind(&d.approved_premises)
                .push_bind(r.state.as_str()).push_bind(&r.notified_by).push_bind(r.notified_at);
        });
        insert.build().execute(&mut **c).await.map(|r| r.rows_affected())
    })?;
    Ok(())
}

pub(super) const RELEASE_SELECT: &str = "SELECT release_id, person_key, release_date, reason, releasing_prison, local_authority,
        probation_region, probation_delivery_unit, integrated_care_board, approved_premises, state, notified_by,
        notified_at, reversed_at FROM releases";

/// The release, locked for the rest of the transaction.
pub async fn lock_release(tx: &mut Tx, release_id: &str) -> StoreResult<Option<Release>> {
    let sql = format!("{RELEASE_SELECT} WHERE release_id = $1{}", tx.for_update());
    Ok(select(tx, sql, &[release_id]).await?.pop())
}

pub async fn mark_release_reversed(
    tx: &mut Tx,
    release_id: &str,
    reason: &str,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    on_tx!(tx, c => sqlx::query(
        "UPDATE releases SET state = 'reversed', reversed_at = $2, reversal_reason = $3 WHERE release_id = $1")
        .bind(release_id).bind(at).bind(reason)
        .execute(&mut **c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Inserts tasks in one statement.
pub async fn insert_tasks(tx: &mut Tx, tasks: &[Task]) -> StoreResult<()> {
    if tasks.is_empty() {
        return Ok(());
    }
    on_tx!(tx, c => {
        let mut insert = sqlx::QueryBuilder::new(
            "INSERT INTO continuity_tasks (task_id, release_id, person_key, rule_id, kind, service, closes_on,
                responsible, state, opened_at, due_at, referral_id) ",
        );
        insert.push_values(tasks, |mut row, t| {
            row.push_bind(&t.task_id).push_bind(&t.release_id).push_bind(&t.person_key).push_bind(&t.rule_id)
                .push_bind(t.kind.as_str()).push_bind(t.service.map(enum_name))
                .push_bind(t.closes_on.map(|c| c.state().as_str())).push_bind(&t.responsible)
                .push_bind(t.state.as_str()).push_bind(t.opened_at).push_bind(t.due_at)
                .push_bind(&t.referral_id);
        });
        insert.build().execute(&mut **c).await.map(|r| r.rows_affected())
    })?;
    Ok(())
}

pub(super) const TASK_SELECT: &str =
    "SELECT task_id, release_id, person_key, rule_id, kind, service, closes_on,
        responsible, state, opened_at, due_at, closed_at, referral_id FROM continuity_tasks";

/// Tasks matching `condition` (with `$1`.. bound to `binds`), locked.
async fn tasks_where(tx: &mut Tx, condition: &str, binds: &[&str]) -> StoreResult<Vec<Task>> {
    let sql = format!(
        "{TASK_SELECT} WHERE {condition} ORDER BY opened_at, task_id{}",
        tx.for_update()
    );
    select(tx, sql, binds).await
}

/// What `sql` selects with `$1`.. bound to `binds`, each row parsed into its
/// domain value.
async fn select<T: Stored>(tx: &mut Tx, sql: String, binds: &[&str]) -> StoreResult<Vec<T>> {
    let sql = sqlx::AssertSqlSafe(sql);
    let rows: Vec<T::Row> = on_tx!(tx, c => {
        let mut query = sqlx::query_as(sql);
        for value in binds {
            query = query.bind(*value);
        }
        query.fetch_all(&mut **c).await
    })?;
    Ok(parse_all(rows)?)
}

/// Every task of a release, locked.
pub async fn tasks_of_release(tx: &mut Tx, release_id: &str) -> StoreResult<Vec<Task>> {
    tasks_where(tx, "release_id = $1", &[release_id]).await
}

/// Referral tasks still waiting for this person and service, locked.
pub async fn pending_tasks(tx: &mut Tx, person_key: &str, service: &str) -> StoreResult<Vec<Task>> {
    tasks_where(
        tx,
        "person_key = $1 AND service = $2 AND state IN ('open', 'overdue')",
        &[person_key, service],
    )
    .await
}

/// Open tasks past their deadline, claimed for this transaction (other
/// instances skip them).
pub async fn claim_due_tasks(
    tx: &mut Tx,
    now: DateTime<Utc>,
    limit: i64,
) -> StoreResult<Vec<Task>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "{TASK_SELECT} WHERE state = 'open' AND due_at <= $1 ORDER BY due_at, task_id LIMIT $2{}",
        tx.for_update_skip_locked()
    ));
    let rows: Vec<TaskRow> =
        on_tx!(tx, c => sqlx::query_as(sql).bind(now).bind(limit).fetch_all(&mut **c).await)?;
    Ok(parse_all(rows)?)
}

pub async fn lock_task(tx: &mut Tx, task_id: &str) -> StoreResult<Option<Task>> {
    Ok(tasks_where(tx, "task_id = $1", &[task_id]).await?.pop())
}

pub async fn set_task_state(
    tx: &mut Tx,
    task: &Task,
    state: TaskState,
    at: DateTime<Utc>,
    referral_id: Option<&str>,
) -> StoreResult<()> {
    let closed_at = matches!(state, TaskState::Closed | TaskState::Revoked).then_some(at);
    on_tx!(tx, c => sqlx::query(
        "UPDATE continuity_tasks SET state = $2, closed_at = COALESCE($3, closed_at), referral_id = COALESCE($4, referral_id)
         WHERE task_id = $1")
        .bind(&task.task_id).bind(state.as_str()).bind(closed_at).bind(referral_id)
        .execute(&mut **c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn insert_referral(tx: &mut Tx, r: &StoredReferral) -> StoreResult<()> {
    let result = on_tx!(tx, c => sqlx::query(
        "INSERT INTO referrals (referral_id, person_key, service, referrer, provider, state, urgency, release_id,
            requested_at, updated_at, version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)")
        .bind(&r.referral_id).bind(&r.person_key).bind(enum_name(r.service)).bind(&r.referrer).bind(&r.provider)
        .bind(r.state.as_str()).bind(enum_name(r.urgency)).bind(&r.release_id)
        .bind(r.requested_at).bind(r.updated_at).bind(r.version)
        .execute(&mut **c).await.map(|r| r.rows_affected()));
    match result {
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(StoreError::Conflict(
            "an active referral for this person, service and provider already exists".into(),
        )),
        other => other.map(drop).map_err(Into::into),
    }
}

pub(super) const REFERRAL_SELECT: &str = "SELECT referral_id, person_key, service, referrer, provider, state, urgency,
        release_id, appointment_at, rejection_reason, rejection_text, cancellation_reason, requested_at, updated_at,
        version FROM referrals";

/// The release a referral serves, read without locking the referral (it
/// never changes), so its release can be locked first, in the order a
/// reversal takes them.
pub async fn release_of_referral(tx: &mut Tx, referral_id: &str) -> StoreResult<Option<String>> {
    let release: Option<Option<String>> = on_tx!(tx, c => sqlx::query_scalar(
        "SELECT release_id FROM referrals WHERE referral_id = $1")
        .bind(referral_id).fetch_optional(&mut **c).await)?;
    Ok(release.flatten())
}

pub async fn lock_referral(tx: &mut Tx, referral_id: &str) -> StoreResult<Option<StoredReferral>> {
    let sql = format!(
        "{REFERRAL_SELECT} WHERE referral_id = $1{}",
        tx.for_update()
    );
    Ok(select(tx, sql, &[referral_id]).await?.pop())
}

/// The active referral for this person, service and provider, if any.
pub async fn active_referral(
    tx: &mut Tx,
    person_key: &str,
    service: &str,
    provider: &str,
) -> StoreResult<Option<StoredReferral>> {
    let sql = format!(
        "{REFERRAL_SELECT} WHERE person_key = $1 AND service = $2 AND provider = $3 AND state IN ({})",
        active_states()
    );
    Ok(select(tx, sql, &[person_key, service, provider])
        .await?
        .pop())
}

/// Active referrals a release started, locked.
pub async fn active_referrals_of_release(
    tx: &mut Tx,
    release_id: &str,
) -> StoreResult<Vec<StoredReferral>> {
    let sql = format!(
        "{REFERRAL_SELECT} WHERE release_id = $1 AND state IN ({}) ORDER BY requested_at, referral_id{}",
        active_states(),
        tx.for_update()
    );
    select(tx, sql, &[release_id]).await
}

fn active_states() -> String {
    super::quoted(ReferralState::ACTIVE.iter().map(|s| s.as_str()))
}

/// Saves a referral's new state and appends its history entry.
pub async fn update_referral(
    tx: &mut Tx,
    r: &StoredReferral,
    from: ReferralState,
    actor: &str,
) -> StoreResult<()> {
    on_tx!(tx, c => sqlx::query(
        "UPDATE referrals SET state = $2, appointment_at = $3, rejection_reason = $4, rejection_text = $5,
            cancellation_reason = $6, release_id = $7, updated_at = $8, version = $9
         WHERE referral_id = $1")
        .bind(&r.referral_id).bind(r.state.as_str()).bind(r.appointment_at)
        .bind(r.rejection_reason.map(enum_name)).bind(&r.rejection_text)
        .bind(r.cancellation_reason.map(enum_name)).bind(&r.release_id).bind(r.updated_at).bind(r.version)
        .execute(&mut **c).await.map(|r| r.rows_affected()))?;
    insert_history(tx, r, Some(from), actor).await
}

pub async fn history(tx: &mut Tx, referral_id: &str) -> StoreResult<Vec<super::rows::HistoryRow>> {
    Ok(on_tx!(tx, c => sqlx::query_as(
        "SELECT from_state, to_state, actor, at FROM referral_history WHERE referral_id = $1 ORDER BY version")
        .bind(referral_id).fetch_all(&mut **c).await)?)
}

pub async fn insert_history(
    tx: &mut Tx,
    r: &StoredReferral,
    from: Option<ReferralState>,
    actor: &str,
) -> StoreResult<()> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO referral_history (referral_id, version, from_state, to_state, actor, at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(&r.referral_id).bind(r.version).bind(from.map(|s| s.as_str())).bind(r.state.as_str())
        .bind(actor).bind(r.updated_at)
        .execute(&mut **c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn insert_transition(
    tx: &mut Tx,
    transition_id: &str,
    person_key: &str,
    t: &crate::domain::transitions::Transition,
    recorded_by: &str,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO transitions (transition_id, person_key, kind, occurred_on, prison, probation_delivery_unit,
            local_authority, approved_premises, details, recorded_by, recorded_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)")
        .bind(transition_id).bind(person_key).bind(crate::domain::transitions::kind_name(t.kind))
        .bind(t.occurred_on).bind(&t.prison).bind(&t.area.probation_delivery_unit)
        .bind(&t.area.local_authority).bind(&t.area.approved_premises).bind(t.details.to_string())
        .bind(recorded_by).bind(at)
        .execute(&mut **c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// An assessment, its findings sealed at rest.
#[derive(Debug)]
pub struct NewAssessment<'a> {
    pub assessment_id: &'a str,
    pub person_key: &'a str,
    pub assessed_on: chrono::NaiveDate,
    pub area: &'a Destination,
    pub sealed: &'a throughcare_platform::sealing::Sealed,
    pub recorded_by: &'a str,
    pub recorded_at: DateTime<Utc>,
}

pub async fn insert_assessment(tx: &mut Tx, a: NewAssessment<'_>) -> StoreResult<()> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO assessments (assessment_id, person_key, assessed_on, probation_region, probation_delivery_unit,
            local_authority, integrated_care_board, findings_key_id, findings_nonce, findings, recorded_by, recorded_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)")
        .bind(a.assessment_id).bind(a.person_key).bind(a.assessed_on).bind(&a.area.probation_region)
        .bind(&a.area.probation_delivery_unit).bind(&a.area.local_authority).bind(&a.area.integrated_care_board)
        .bind(&a.sealed.key_id).bind(&a.sealed.nonce).bind(&a.sealed.ciphertext)
        .bind(a.recorded_by).bind(a.recorded_at)
        .execute(&mut **c).await.map(|r| r.rows_affected()))?;
    Ok(())
}
