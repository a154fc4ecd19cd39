//! People: found by the one person rule, created when new, and kept up to
//! date with identifiers, demographics and placement as transitions arrive.

use super::rows::{PersonRow, enum_name};
use super::{PERSON_COLUMNS, StoreError, StoreResult};
use crate::domain::area::Destination;
use crate::domain::person::Person;
use chrono::{DateTime, Utc};
use throughcare_platform::db::Tx;
use throughcare_platform::identifiers::{PersonIds, PseudonymKey};
use throughcare_platform::on_tx;

/// Where a transition places a person (None leaves their placement alone).
#[derive(Debug, Clone, Copy)]
pub struct Placement<'a> {
    pub area: &'a Destination,
    pub prison: Option<&'a str>,
}

/// The lock every call that finds, creates or merges people holds until it
/// commits: two calls must not merge and write the same people at once (one
/// would write under a key the other just retired).
const IDENTITIES: &str = "throughcare.referrals.identities";

/// A person found or created by [`resolve_person`], and the keys that call
/// learnt name them.
pub struct Resolved {
    pub row: PersonRow,
    /// Every key that names this person besides their own: the key a first
    /// sighting by each identifier they hold would get, and the keys of people
    /// merged into them. Empty when the call learnt nothing new about who
    /// they are, so there is nothing to announce.
    pub merged_keys: Vec<String>,
}

/// Finds the person these identifiers name ([`PersonIds::choose`] decides
/// between the stored people sharing any of them), or creates them, keyed by
/// a pseudonym of their strongest identifier. Identifiers learnt now are
/// added; one already held by another stored person shows the two are one, so
/// that person is merged into this one (unless their identifiers conflict).
/// Someone first seen with a prison number keeps one key when their NHS
/// number arrives. Demographics and placement are updated when given.
pub async fn resolve_person(
    tx: &mut Tx,
    keys: &PseudonymKey,
    person: &Person,
    placement: Option<Placement<'_>>,
    now: DateTime<Utc>,
) -> StoreResult<Resolved> {
    tx.lock_named(IDENTITIES, true).await?;
    let (row, mut learnt) = match find_person(tx, &person.ids).await? {
        Some(row) => (row, false),
        None => match insert_person(tx, keys, person, placement, now).await? {
            Some(row) => {
                let merged_keys = linked_keys(keys, &row, Vec::new())?;
                return Ok(Resolved { row, merged_keys });
            }
            // Another transaction created them at the same moment.
            None => (
                find_person(tx, &person.ids)
                    .await?
                    .ok_or_else(|| StoreError::Conflict("person could not be created".into()))?,
                false,
            ),
        },
    };
    let mut merged = Vec::new();
    let held = [&row.nhs_number, &row.prison_number, &row.crn];
    for ((column, value), held) in PERSON_ID_COLUMNS
        .into_iter()
        .zip(person.ids.columns())
        .zip(held)
    {
        let (Some(value), None) = (value, held) else {
            continue;
        };
        match add_identifier(tx, &row.person_key, column, value).await? {
            Holder::Nobody => learnt = true,
            Holder::This => {}
            Holder::Other(other) => {
                if merge_person(tx, &row.person_key, &other, &person.ids, now).await? {
                    merged.push(other);
                    learnt = true;
                }
            }
        }
    }
    let row = update_person(tx, &row.person_key, person, placement, now).await?;
    let merged_keys = if learnt {
        linked_keys(keys, &row, merged)?
    } else {
        Vec::new()
    };
    Ok(Resolved { row, merged_keys })
}

/// Every key besides `row`'s own that names its person: see
/// [`Resolved::merged_keys`].
fn linked_keys(
    keys: &PseudonymKey,
    row: &PersonRow,
    merged: Vec<String>,
) -> StoreResult<Vec<String>> {
    let sightings = keys.sighting_keys(&row.ids()?);
    let mut linked: Vec<String> = sightings
        .iter()
        .map(|k| k.as_str().to_owned())
        .chain(merged)
        .filter(|k| *k != row.person_key)
        .collect();
    linked.sort();
    linked.dedup();
    Ok(linked)
}

/// Names the person by key only: the row holds identifiers.
impl std::fmt::Debug for Resolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolved")
            .field("person_key", &self.row.person_key)
            .field("merged_keys", &self.merged_keys)
            .finish()
    }
}

/// The identifier columns, in the order of [`PersonIds::columns`].
const PERSON_ID_COLUMNS: [&str; 3] = ["nhs_number", "prison_number", "crn"];

/// Someone new, in one statement; `None` if another transaction created them
/// at the same moment (the insert then does nothing).
async fn insert_person(
    tx: &mut Tx,
    keys: &PseudonymKey,
    person: &Person,
    placement: Option<Placement<'_>>,
    now: DateTime<Utc>,
) -> StoreResult<Option<PersonRow>> {
    let (area, prison) = placed(placement);
    let [nhs, noms, crn] = person.ids.columns();
    let sql = sqlx::AssertSqlSafe(format!(
        "INSERT INTO persons (person_key, nhs_number, prison_number, crn, date_of_birth, sex, ethnic_group,
            probation_region, probation_delivery_unit, integrated_care_board, local_authority, prison, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         ON CONFLICT DO NOTHING RETURNING {PERSON_COLUMNS}"
    ));
    let key = keys.person_key(&person.ids);
    Ok(on_tx!(tx, c => sqlx::query_as(sql)
        .bind(key.as_str()).bind(nhs).bind(noms).bind(crn).bind(person.date_of_birth)
        .bind(enum_name(person.sex)).bind(enum_name(person.ethnic_group))
        .bind(&area.probation_region).bind(&area.probation_delivery_unit)
        .bind(&area.integrated_care_board).bind(&area.local_authority).bind(prison).bind(now)
        .fetch_optional(&mut **c).await)?)
}

fn placed(placement: Option<Placement<'_>>) -> (Destination, Option<&str>) {
    match placement {
        Some(p) => (p.area.clone(), p.prison),
        None => (Destination::default(), None),
    }
}

/// Updates demographics that are given and the placement when there is one.
async fn update_person(
    tx: &mut Tx,
    person_key: &str,
    person: &Person,
    placement: Option<Placement<'_>>,
    now: DateTime<Utc>,
) -> StoreResult<PersonRow> {
    let (area, prison) = placed(placement);
    let unspecified = |name: &'static str, unset: &'static str| (name != unset).then_some(name);
    let sex = unspecified(enum_name(person.sex), "SEX_UNSPECIFIED");
    let ethnic = unspecified(enum_name(person.ethnic_group), "ETHNIC_GROUP_UNSPECIFIED");
    let sql = sqlx::AssertSqlSafe(format!(
        "UPDATE persons SET
            date_of_birth = COALESCE($2, date_of_birth),
            sex = COALESCE($3, sex),
            ethnic_group = COALESCE($4, ethnic_group),
            probation_region = CASE WHEN $5 THEN $6 ELSE probation_region END,
            probation_delivery_unit = CASE WHEN $5 THEN $7 ELSE probation_delivery_unit END,
            integrated_care_board = CASE WHEN $5 THEN $8 ELSE integrated_care_board END,
            local_authority = CASE WHEN $5 THEN $9 ELSE local_authority END,
            prison = CASE WHEN $5 THEN $10 ELSE prison END,
            updated_at = $11
         WHERE person_key = $1 RETURNING {PERSON_COLUMNS}"
    ));
    Ok(on_tx!(tx, c => sqlx::query_as(sql)
        .bind(person_key).bind(person.date_of_birth).bind(sex).bind(ethnic)
        .bind(placement.is_some())
        .bind(&area.probation_region).bind(&area.probation_delivery_unit)
        .bind(&area.integrated_care_board).bind(&area.local_authority).bind(prison)
        .bind(now)
        .fetch_one(&mut **c).await)?)
}

pub async fn person(tx: &mut Tx, person_key: &str) -> StoreResult<Option<PersonRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {PERSON_COLUMNS} FROM persons WHERE person_key = $1"
    ));
    Ok(on_tx!(tx, c => sqlx::query_as(sql).bind(person_key).fetch_optional(&mut **c).await)?)
}

/// The stored person these identifiers name, if any.
async fn find_person(tx: &mut Tx, ids: &PersonIds) -> StoreResult<Option<PersonRow>> {
    let [nhs, noms, crn] = ids.columns();
    let rows: Vec<PersonRow> = on_tx!(tx, c => sqlx::query_as(super::person_candidates())
        .bind(nhs).bind(noms).bind(crn).fetch_all(&mut **c).await)?;
    Ok(super::choose(ids, rows))
}

/// Who holds an identifier already.
enum Holder {
    Nobody,
    This,
    Other(String),
}

/// Adds an identifier to `person_key` unless someone holds it already.
async fn add_identifier(
    tx: &mut Tx,
    person_key: &str,
    column: &'static str,
    value: &str,
) -> StoreResult<Holder> {
    let held = sqlx::AssertSqlSafe(format!(
        "SELECT person_key FROM persons WHERE {column} = $1"
    ));
    let holder: Option<String> =
        on_tx!(tx, c => sqlx::query_scalar(held).bind(value).fetch_optional(&mut **c).await)?;
    Ok(match holder {
        Some(holder) if holder == person_key => Holder::This,
        Some(holder) => Holder::Other(holder),
        None => {
            let update = sqlx::AssertSqlSafe(format!(
                "UPDATE persons SET {column} = $2 WHERE person_key = $1 AND {column} IS NULL"
            ));
            on_tx!(tx, c => sqlx::query(update).bind(person_key).bind(value).execute(&mut **c).await.map(|r| r.rows_affected()))?;
            Holder::Nobody
        }
    })
}

/// The tables whose rows belong to one person, by key.
const PERSON_TABLES: [&str; 4] = ["releases", "transitions", "assessments", "continuity_tasks"];

/// Referral states in which a referral is active (one per person, service and
/// provider).
const ACTIVE_REFERRAL: &str =
    "('requested', 'acknowledged', 'accepted', 'appointment_booked', 'attended', 'did_not_attend')";

/// Merges the person keyed `other` into `survivor`: their identifiers move
/// (the other's row stays as a tombstone naming the survivor) and their
/// history is re-keyed, except an active referral the survivor already has
/// the twin of, which stays with the tombstone. Returns false, merging
/// nothing, when the two — or the other and the identifiers the call names —
/// hold different values of one identifier: they are not provably one person.
async fn merge_person(
    tx: &mut Tx,
    survivor: &str,
    other: &str,
    named: &PersonIds,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    let (Some(s), Some(o)) = (person(tx, survivor).await?, person(tx, other).await?) else {
        return Ok(false);
    };
    let [nhs, noms, crn] = named.columns();
    let differ =
        |a: Option<&str>, b: &Option<String>| matches!((a, b), (Some(a), Some(b)) if a != b);
    let contradicts = differ(s.nhs_number.as_deref(), &o.nhs_number)
        || differ(s.prison_number.as_deref(), &o.prison_number)
        || differ(s.crn.as_deref(), &o.crn)
        || differ(nhs, &o.nhs_number)
        || differ(noms, &o.prison_number)
        || differ(crn, &o.crn);
    if contradicts {
        tracing::warn!("two people share an identifier but hold different others; not merged");
        return Ok(false);
    }
    on_tx!(tx, c => sqlx::query(
        "UPDATE persons SET nhs_number = NULL, prison_number = NULL, crn = NULL, merged_into = $2,
            updated_at = $3 WHERE person_key = $1")
        .bind(other).bind(survivor).bind(now).execute(&mut **c).await.map(|r| r.rows_affected()))?;
    on_tx!(tx, c => sqlx::query(
        "UPDATE persons SET nhs_number = COALESCE(nhs_number, $2), prison_number = COALESCE(prison_number, $3),
            crn = COALESCE(crn, $4) WHERE person_key = $1")
        .bind(survivor).bind(&o.nhs_number).bind(&o.prison_number).bind(&o.crn)
        .execute(&mut **c).await.map(|r| r.rows_affected()))?;
    for table in PERSON_TABLES {
        let sql = sqlx::AssertSqlSafe(format!(
            "UPDATE {table} SET person_key = $2 WHERE person_key = $1"
        ));
        on_tx!(tx, c => sqlx::query(sql).bind(other).bind(survivor).execute(&mut **c).await.map(|r| r.rows_affected()))?;
    }
    let referrals = sqlx::AssertSqlSafe(format!(
        "UPDATE referrals SET person_key = $2 WHERE person_key = $1
           AND NOT (state IN {ACTIVE_REFERRAL} AND EXISTS (
               SELECT 1 FROM referrals twin WHERE twin.person_key = $2 AND twin.service = referrals.service
                 AND twin.provider = referrals.provider AND twin.state IN {ACTIVE_REFERRAL}))"
    ));
    on_tx!(tx, c => sqlx::query(referrals).bind(other).bind(survivor).execute(&mut **c).await.map(|r| r.rows_affected()))?;
    Ok(true)
}
