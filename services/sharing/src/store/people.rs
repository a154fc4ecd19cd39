//! People, releases, deliveries and disclosures.

use super::{Reader, read};
use chrono::{DateTime, Utc};
use throughcare_platform::db::{Db, Tx};
use throughcare_platform::identifiers::{Crn, NhsNumber, PersonIds, PrisonNumber, PseudonymKey};
use throughcare_platform::{on_db, on_tx};

/// A stored person: their key, and the identifiers held, as [`PersonIds::columns`].
type Candidate = (String, Option<String>, Option<String>, Option<String>);

/// The key of the person these identifiers name: the stored people sharing
/// any of them are fetched, and [`PersonIds::choose`] (the person rule) picks.
pub async fn key_of(reader: Reader<'_>, ids: &PersonIds) -> sqlx::Result<Option<String>> {
    let [nhs, noms, crn] = ids.columns();
    let sql = "SELECT person_key, nhs_number, prison_number, crn FROM persons
               WHERE nhs_number = $1 OR prison_number = $2 OR crn = $3";
    let candidates: Vec<Candidate> = read!(reader, c => sqlx::query_as(sql)
        .bind(nhs).bind(noms).bind(crn).fetch_all(c).await)?;
    Ok(ids.choose(
        candidates
            .into_iter()
            .map(|(key, nhs, noms, crn)| (key, [nhs, noms, crn]))
            .collect(),
    ))
}

/// The person these identifiers name, created (keyed as the referrals service
/// would key a first sighting) if unknown.
pub async fn resolve(
    tx: &mut Tx,
    keys: &PseudonymKey,
    ids: &PersonIds,
    now: DateTime<Utc>,
) -> sqlx::Result<String> {
    if let Some(key) = key_of(Reader::Tx(&mut *tx), ids).await? {
        return Ok(key);
    }
    let key = keys.person_key(ids).as_str().to_owned();
    insert(tx, &key, ids, now).await?;
    Ok(key_of(Reader::Tx(&mut *tx), ids).await?.unwrap_or(key))
}

async fn insert(tx: &mut Tx, key: &str, ids: &PersonIds, now: DateTime<Utc>) -> sqlx::Result<()> {
    let [nhs, noms, crn] = ids.columns();
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO persons (person_key, nhs_number, prison_number, crn, updated_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT DO NOTHING")
        .bind(key).bind(nhs).bind(noms).bind(crn).bind(now)
        .execute(&mut **c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Records that `key` (minted by the referrals service) names the person with
/// these identifiers. If sharing knew them under another key (a consent came
/// first, keyed by a different identifier), everything moves to `key`.
pub async fn adopt(
    tx: &mut Tx,
    key: &str,
    ids: &PersonIds,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    match key_of(Reader::Tx(&mut *tx), ids).await? {
        Some(existing) if existing == key => {}
        Some(existing) => {
            for table in [
                "consents",
                "health_records",
                "deliveries",
                "disclosures",
                "releases",
            ] {
                let sql = sqlx::AssertSqlSafe(format!(
                    "UPDATE {table} SET person_key = $2 WHERE person_key = $1"
                ));
                on_tx!(tx, c => sqlx::query(sql).bind(&existing).bind(key).execute(&mut **c).await.map(|r| r.rows_affected()))?;
            }
            on_tx!(tx, c => sqlx::query("UPDATE persons SET person_key = $2, updated_at = $3 WHERE person_key = $1")
                .bind(&existing).bind(key).bind(now).execute(&mut **c).await.map(|r| r.rows_affected()))?;
        }
        None => insert(tx, key, ids, now).await?,
    }
    for (column, value) in ["nhs_number", "prison_number", "crn"]
        .into_iter()
        .zip(ids.columns())
    {
        let Some(value) = value else { continue };
        let sql = sqlx::AssertSqlSafe(format!(
            "UPDATE persons SET {column} = $2 WHERE person_key = $1 AND {column} IS NULL
               AND NOT EXISTS (SELECT 1 FROM persons other WHERE other.{column} = $2)"
        ));
        on_tx!(tx, c => sqlx::query(sql).bind(key).bind(value).execute(&mut **c).await.map(|r| r.rows_affected()))?;
    }
    Ok(())
}

/// A person's identifiers, for the deliveries that name them.
pub async fn ids(tx: &mut Tx, key: &str) -> sqlx::Result<Option<PersonIds>> {
    let row: Option<(Option<String>, Option<String>, Option<String>)> = on_tx!(tx, c => sqlx::query_as(
        "SELECT nhs_number, prison_number, crn FROM persons WHERE person_key = $1")
        .bind(key).fetch_optional(&mut **c).await)?;
    Ok(row.and_then(|(nhs, noms, crn)| {
        PersonIds::new(
            nhs.and_then(|n| NhsNumber::parse(&n).ok()),
            noms.and_then(|n| PrisonNumber::parse(&n).ok()),
            crn.and_then(|n| Crn::parse(&n).ok()),
        )
        .ok()
    }))
}

pub async fn insert_release(
    tx: &mut Tx,
    release_id: &str,
    person_key: &str,
    pdu: Option<&str>,
    released_at: Option<DateTime<Utc>>,
) -> sqlx::Result<()> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO releases (release_id, person_key, probation_delivery_unit, state, released_at)
         VALUES ($1, $2, $3, 'notified', $4) ON CONFLICT DO NOTHING")
        .bind(release_id).bind(person_key).bind(pdu).bind(released_at)
        .execute(&mut **c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// The start of a release's day, if the release is known and not reversed.
pub async fn released_at(tx: &mut Tx, release_id: &str) -> sqlx::Result<Option<DateTime<Utc>>> {
    let row: Option<(Option<DateTime<Utc>>,)> = on_tx!(tx, c => sqlx::query_as(
        "SELECT released_at FROM releases WHERE release_id = $1 AND state = 'notified'")
        .bind(release_id).fetch_optional(&mut **c).await)?;
    Ok(row.and_then(|(at,)| at))
}

pub async fn reverse_release(tx: &mut Tx, release_id: &str) -> sqlx::Result<()> {
    on_tx!(tx, c => sqlx::query("UPDATE releases SET state = 'reversed' WHERE release_id = $1")
        .bind(release_id).execute(&mut **c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// A push owed to `recipient`, unless one for this trigger exists. Returns
/// whether it was created.
pub async fn insert_delivery(
    tx: &mut Tx,
    delivery_id: &str,
    recipient: &str,
    person_key: &str,
    trigger: (&str, &str),
    now: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let inserted = on_tx!(tx, c => sqlx::query(
        "INSERT INTO deliveries (delivery_id, recipient, person_key, trigger_kind, trigger_id, state, created_at)
         VALUES ($1, $2, $3, $4, $5, 'pending', $6) ON CONFLICT DO NOTHING")
        .bind(delivery_id).bind(recipient).bind(person_key).bind(trigger.0).bind(trigger.1).bind(now)
        .execute(&mut **c).await.map(|r| r.rows_affected()))?;
    Ok(inserted == 1)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryRow {
    pub delivery_id: String,
    pub recipient: String,
    pub person_key: String,
    pub trigger_kind: String,
    pub trigger_id: String,
    pub state: String,
}

const DELIVERY_COLUMNS: &str =
    "delivery_id, recipient, person_key, trigger_kind, trigger_id, state";

pub async fn lock_delivery(tx: &mut Tx, delivery_id: &str) -> sqlx::Result<Option<DeliveryRow>> {
    super::lock_row(
        tx,
        "deliveries",
        DELIVERY_COLUMNS,
        "delivery_id",
        delivery_id,
    )
    .await
}

pub async fn set_delivery_state(
    tx: &mut Tx,
    delivery_id: &str,
    state: &str,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    on_tx!(tx, c => sqlx::query(
        "UPDATE deliveries SET state = $2, withdrawn_at = CASE WHEN $2 = 'withdrawn' THEN $3 ELSE withdrawn_at END
         WHERE delivery_id = $1")
        .bind(delivery_id).bind(state).bind(at).execute(&mut **c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Withdraws deliveries not yet made that match `condition` (`$2`.. bound to
/// `binds`; `$1` is the time); returns how many.
async fn withdraw_where(
    tx: &mut Tx,
    condition: &str,
    binds: &[&str],
    at: DateTime<Utc>,
) -> sqlx::Result<u64> {
    let sql = sqlx::AssertSqlSafe(format!(
        "UPDATE deliveries SET state = 'withdrawn', withdrawn_at = $1 WHERE {condition} AND state = 'pending'"
    ));
    on_tx!(tx, c => {
        let mut query = sqlx::query(sql).bind(at);
        for value in binds {
            query = query.bind(*value);
        }
        query.execute(&mut **c).await.map(|r| r.rows_affected())
    })
}

pub async fn withdraw_for_person(
    tx: &mut Tx,
    person_key: &str,
    at: DateTime<Utc>,
) -> sqlx::Result<u64> {
    withdraw_where(tx, "person_key = $2", &[person_key], at).await
}

pub async fn withdraw_for_trigger(
    tx: &mut Tx,
    kind: &str,
    id: &str,
    at: DateTime<Utc>,
) -> sqlx::Result<u64> {
    withdraw_where(tx, "trigger_kind = $2 AND trigger_id = $3", &[kind, id], at).await
}

/// Deliveries owed for a person that were waiting for their record.
pub async fn unannounced_for_person(
    tx: &mut Tx,
    person_key: &str,
) -> sqlx::Result<Vec<DeliveryRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE person_key = $1 AND state = 'pending' AND NOT announced"
    ));
    on_tx!(tx, c => sqlx::query_as(sql).bind(person_key).fetch_all(&mut **c).await)
}

pub async fn mark_announced(tx: &mut Tx, delivery_id: &str) -> sqlx::Result<()> {
    on_tx!(tx, c => sqlx::query("UPDATE deliveries SET announced = TRUE WHERE delivery_id = $1")
        .bind(delivery_id).execute(&mut **c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Whether any health information is held for a person.
pub async fn has_records(tx: &mut Tx, person_key: &str) -> sqlx::Result<bool> {
    let found: Option<i32> = on_tx!(tx, c => sqlx::query_scalar("SELECT 1 FROM health_records WHERE person_key = $1 LIMIT 1")
        .bind(person_key).fetch_optional(&mut **c).await)?;
    Ok(found.is_some())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DisclosureRow {
    pub disclosure_id: String,
    pub person_key: String,
    pub recipient: String,
    pub recipient_kind: String,
    pub purpose: String,
    pub bases: String,
    pub categories: String,
    pub trigger_kind: String,
    pub trigger_id: String,
    pub disclosed_at: DateTime<Utc>,
}

pub async fn insert_disclosure(tx: &mut Tx, d: &DisclosureRow) -> sqlx::Result<()> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO disclosures (disclosure_id, person_key, recipient, recipient_kind, purpose, bases, categories,
            trigger_kind, trigger_id, disclosed_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
        .bind(&d.disclosure_id).bind(&d.person_key).bind(&d.recipient).bind(&d.recipient_kind).bind(&d.purpose)
        .bind(&d.bases).bind(&d.categories).bind(&d.trigger_kind).bind(&d.trigger_id).bind(d.disclosed_at)
        .execute(&mut **c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn disclosures_of(db: &Db, person_key: &str) -> sqlx::Result<Vec<DisclosureRow>> {
    on_db!(db, p => sqlx::query_as(
        "SELECT disclosure_id, person_key, recipient, recipient_kind, purpose, bases, categories, trigger_kind,
                trigger_id, disclosed_at
         FROM disclosures WHERE person_key = $1 ORDER BY disclosed_at, disclosure_id")
        .bind(person_key).fetch_all(p).await)
}
