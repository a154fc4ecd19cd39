//! People, releases, deliveries and disclosures.

use super::{Reader, read};
use chrono::{DateTime, Utc};
use throughcare_platform::db::{Db, Tx};
use throughcare_platform::identifiers::{Crn, NhsNumber, PersonIds, PrisonNumber, PseudonymKey};
use throughcare_platform::sealing::Sealed;
use throughcare_platform::{on_db, on_tx};

/// A stored person: their key, and the identifiers held, as [`PersonIds::columns`].
type Candidate = (String, Option<String>, Option<String>, Option<String>);

/// The identifier columns, in the order of [`PersonIds::columns`].
const ID_COLUMNS: [&str; 3] = ["nhs_number", "prison_number", "crn"];

/// The stored people sharing any of these identifiers, with what they hold.
async fn candidates(
    reader: Reader<'_>,
    ids: &PersonIds,
) -> sqlx::Result<Vec<(String, [Option<String>; 3])>> {
    let [nhs, noms, crn] = ids.columns();
    let sql = "SELECT person_key, nhs_number, prison_number, crn FROM persons
               WHERE nhs_number = $1 OR prison_number = $2 OR crn = $3";
    let rows: Vec<Candidate> = read!(reader, c => sqlx::query_as(sql)
        .bind(nhs).bind(noms).bind(crn).fetch_all(c).await)?;
    Ok(rows
        .into_iter()
        .map(|(key, nhs, noms, crn)| (key, [nhs, noms, crn]))
        .collect())
}

/// The key of the stored person these identifiers name: the stored people
/// sharing any of them are fetched, and [`PersonIds::choose`] (the person
/// rule) picks.
pub async fn key_of(reader: Reader<'_>, ids: &PersonIds) -> sqlx::Result<Option<String>> {
    Ok(ids.choose(candidates(reader, ids).await?))
}

/// The person some identifiers name, and whether anything is held about them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub key: String,
    pub held: bool,
}

impl Located {
    /// The key, if anything is held under it.
    pub fn held_key(&self) -> Option<&str> {
        self.held.then_some(self.key.as_str())
    }
}

/// The person these identifiers name: the stored person the person rule
/// picks, else the person a first sighting by them is, or has since been
/// linked to (held if a row for that key exists).
pub async fn locate(
    mut reader: Reader<'_>,
    keys: &PseudonymKey,
    ids: &PersonIds,
) -> sqlx::Result<Located> {
    if let Some(key) = key_of(reader.again(), ids).await? {
        return Ok(Located { key, held: true });
    }
    // Referrals' links carry keys, not identifiers: the person a first
    // sighting by these identifiers would be may be held (or linked to one
    // held) without them.
    let sighted = keys.person_key(ids);
    let key = canonical(reader.again(), sighted.as_str()).await?;
    let held: Option<i32> = read!(reader, c => sqlx::query_scalar(
        "SELECT 1 FROM persons WHERE person_key = $1")
        .bind(&key).fetch_optional(c).await)?;
    Ok(Located {
        key,
        held: held.is_some(),
    })
}

/// The lock held while people's keys are linked (exclusive) or while
/// anything is written under a person's key (shared): a write must not land
/// under a key a link is retiring at the same moment.
const IDENTITIES: &str = "throughcare.sharing.identities";

/// Holds the identities lock, shared, until the transaction ends: for writes
/// under a person's key.
pub async fn hold_keys(tx: &mut Tx) -> sqlx::Result<()> {
    tx.lock_named(IDENTITIES, false).await
}

/// The key that `key` names now: the survivor it was linked to, else itself.
pub async fn canonical(reader: Reader<'_>, key: &str) -> sqlx::Result<String> {
    let survivor: Option<String> = read!(reader, c => sqlx::query_scalar(
        "SELECT surviving_key FROM person_links WHERE merged_key = $1")
        .bind(key).fetch_optional(c).await)?;
    Ok(survivor.unwrap_or_else(|| key.to_owned()))
}

/// The person these identifiers name, created (keyed as the referrals service
/// would key a first sighting) if unknown.
pub async fn resolve(
    tx: &mut Tx,
    keys: &PseudonymKey,
    ids: &PersonIds,
    now: DateTime<Utc>,
) -> sqlx::Result<String> {
    tx.lock_named(IDENTITIES, true).await?;
    let key = locate(Reader::Tx(&mut *tx), keys, ids).await?.key;
    ensure(tx, &key, now).await?;
    add_identifiers(tx, &key, ids.columns()).await?;
    Ok(key)
}

/// A row for `key`, holding no identifiers yet if it is new.
async fn ensure(tx: &mut Tx, key: &str, now: DateTime<Utc>) -> sqlx::Result<()> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO persons (person_key, updated_at) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(key).bind(now)
        .execute(&mut **c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Gives `key` each of these identifiers (as [`PersonIds::columns`]) it lacks
/// and no one else holds (a different value it holds already stays).
async fn add_identifiers(tx: &mut Tx, key: &str, ids: [Option<&str>; 3]) -> sqlx::Result<()> {
    for (column, value) in ID_COLUMNS.into_iter().zip(ids) {
        let Some(value) = value else { continue };
        let sql = sqlx::AssertSqlSafe(format!(
            "UPDATE persons SET {column} = $2 WHERE person_key = $1 AND {column} IS NULL
               AND NOT EXISTS (SELECT 1 FROM persons other WHERE other.{column} = $2)"
        ));
        on_tx!(tx, c => sqlx::query(sql).bind(key).bind(value).execute(&mut **c).await.map(|r| r.rows_affected()))?;
    }
    Ok(())
}

/// Records that `key` (minted by the referrals service) names the person with
/// these identifiers, and returns the key they are held under now. Every other
/// stored person sharing one of them, and holding nothing that contradicts
/// them, is the same person: they are linked into `key`, so a consent that came
/// first under another identifier keeps counting.
pub async fn adopt(
    tx: &mut Tx,
    key: &str,
    ids: &PersonIds,
    now: DateTime<Utc>,
) -> sqlx::Result<String> {
    tx.lock_named(IDENTITIES, true).await?;
    let key = canonical(Reader::Tx(&mut *tx), key).await?;
    let wanted = ids.columns();
    let others: Vec<String> = candidates(Reader::Tx(&mut *tx), ids)
        .await?
        .into_iter()
        .filter(|(other, held)| {
            *other != key
                && held
                    .iter()
                    .zip(wanted)
                    .all(|(held, wanted)| match (held.as_deref(), wanted) {
                        (Some(held), Some(wanted)) => held == wanted,
                        _ => true,
                    })
        })
        .map(|(other, _)| other)
        .collect();
    link(tx, &key, &others, now).await?;
    ensure(tx, &key, now).await?;
    add_identifiers(tx, &key, wanted).await?;
    Ok(key)
}

/// The tables whose rows belong to one person, by key.
const PERSON_TABLES: [&str; 5] = [
    "consents",
    "health_records",
    "deliveries",
    "disclosures",
    "releases",
];

/// Links `merged` into `survivor`: from now on each names the survivor's
/// person, everything held under them moves there (consents, records,
/// deliveries owed and made, disclosures, releases) and their identifiers
/// join the survivor's. Idempotent and order-free: keys already linked, or
/// never seen, are recorded and nothing else happens. The audit log keeps the
/// keys it was written with (its hashes cover them); the links resolve them.
/// Returns the key the survivor is held under.
pub async fn link(
    tx: &mut Tx,
    survivor: &str,
    merged: &[String],
    now: DateTime<Utc>,
) -> sqlx::Result<String> {
    tx.lock_named(IDENTITIES, true).await?;
    let survivor = canonical(Reader::Tx(&mut *tx), survivor).await?;
    for key in merged.iter().filter(|k| **k != survivor) {
        let current = canonical(Reader::Tx(&mut *tx), key).await?;
        if current != survivor {
            merge_into(tx, &current, &survivor, now).await?;
            on_tx!(tx, c => sqlx::query(
                "UPDATE person_links SET surviving_key = $2 WHERE surviving_key = $1")
                .bind(&current).bind(&survivor).execute(&mut **c).await.map(|r| r.rows_affected()))?;
            remember_link(tx, &current, &survivor, now).await?;
        }
        remember_link(tx, key, &survivor, now).await?;
    }
    Ok(survivor)
}

async fn remember_link(
    tx: &mut Tx,
    merged: &str,
    survivor: &str,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO person_links (merged_key, surviving_key, linked_at) VALUES ($1, $2, $3)
         ON CONFLICT (merged_key) DO UPDATE SET surviving_key = excluded.surviving_key")
        .bind(merged).bind(survivor).bind(now).execute(&mut **c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Moves what is held under `from` to `into`, identifiers included.
async fn merge_into(tx: &mut Tx, from: &str, into: &str, now: DateTime<Utc>) -> sqlx::Result<()> {
    for table in PERSON_TABLES {
        let sql = sqlx::AssertSqlSafe(format!(
            "UPDATE {table} SET person_key = $2 WHERE person_key = $1"
        ));
        on_tx!(tx, c => sqlx::query(sql).bind(from).bind(into).execute(&mut **c).await.map(|r| r.rows_affected()))?;
    }
    let held: Option<(Option<String>, Option<String>, Option<String>)> = on_tx!(tx, c => sqlx::query_as(
        "DELETE FROM persons WHERE person_key = $1 RETURNING nhs_number, prison_number, crn")
        .bind(from).fetch_optional(&mut **c).await)?;
    if let Some((nhs, noms, crn)) = held {
        ensure(tx, into, now).await?;
        let ids = [nhs.as_deref(), noms.as_deref(), crn.as_deref()];
        add_identifiers(tx, into, ids).await?;
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

/// A release as sharing keeps it: whose it is, where from and to, and when.
#[derive(Debug, Clone, Copy)]
pub struct NewRelease<'a> {
    pub release_id: &'a str,
    pub person_key: &'a str,
    pub releasing_prison: &'a str,
    pub probation_delivery_unit: Option<&'a str>,
    pub released_at: Option<DateTime<Utc>>,
}

/// Records a notified release; returns whether it stands (a release already
/// reversed — its reversal came first, as after a dead letter's replay —
/// stays reversed).
pub async fn insert_release(tx: &mut Tx, r: NewRelease<'_>) -> sqlx::Result<bool> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO releases (release_id, person_key, releasing_prison, probation_delivery_unit, state, released_at)
         VALUES ($1, $2, $3, $4, 'notified', $5)
         ON CONFLICT DO NOTHING")
        .bind(r.release_id).bind(r.person_key).bind(r.releasing_prison).bind(r.probation_delivery_unit)
        .bind(r.released_at)
        .execute(&mut **c).await.map(|r| r.rows_affected()))?;
    let state: String = on_tx!(tx, c => sqlx::query_scalar(
        "SELECT state FROM releases WHERE release_id = $1")
        .bind(r.release_id).fetch_one(&mut **c).await)?;
    Ok(state == "notified")
}

/// Whether `organisation` has a relationship with the person keyed
/// `person_key`: it recorded one of their consents, released them from its
/// prison or supervises them (a release not reversed), or is a provider with
/// an active referral for them (a push owed or made, not withdrawn).
pub async fn related(
    reader: Reader<'_>,
    person_key: &str,
    organisation: &str,
) -> sqlx::Result<bool> {
    let sql = "SELECT 1 FROM persons WHERE person_key = $1 AND (
            EXISTS (SELECT 1 FROM consents WHERE person_key = $1 AND recorded_by = $2)
         OR EXISTS (SELECT 1 FROM releases WHERE person_key = $1 AND state = 'notified'
                      AND (releasing_prison = $2 OR probation_delivery_unit = $2))
         OR EXISTS (SELECT 1 FROM deliveries WHERE person_key = $1 AND recipient = $2
                      AND trigger_kind = 'referral' AND state IN ('pending', 'made', 'refused')))";
    let found: Option<i32> = read!(reader, c => sqlx::query_scalar(sql)
        .bind(person_key).bind(organisation).fetch_optional(c).await)?;
    Ok(found.is_some())
}

/// The start of a release's day, if the release is known and not reversed.
pub async fn released_at(tx: &mut Tx, release_id: &str) -> sqlx::Result<Option<DateTime<Utc>>> {
    let row: Option<(Option<DateTime<Utc>>,)> = on_tx!(tx, c => sqlx::query_as(
        "SELECT released_at FROM releases WHERE release_id = $1 AND state = 'notified'")
        .bind(release_id).fetch_optional(&mut **c).await)?;
    Ok(row.and_then(|(at,)| at))
}

/// Marks a release reversed; one not known yet is recorded as reversed, so
/// its notification, should it come later, does not bring it back.
pub async fn reverse_release(tx: &mut Tx, release_id: &str, person_key: &str) -> sqlx::Result<()> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO releases (release_id, person_key, state) VALUES ($1, $2, 'reversed')
         ON CONFLICT (release_id) DO UPDATE SET state = 'reversed'")
        .bind(release_id).bind(person_key).execute(&mut **c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// How a push starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owed {
    /// Owed: to be made once deliverable.
    Pending,
    /// Withdrawn from the start: its trigger was undone before it was heard
    /// of (as when its event was dead-lettered and replayed after the
    /// undoing), so when the trigger comes it owes nothing.
    Withdrawn,
}

/// A push to `recipient`, due by `due_by`, unless one for this trigger
/// exists. Returns it if it was created.
#[allow(clippy::too_many_arguments)]
pub async fn insert_delivery(
    tx: &mut Tx,
    delivery_id: &str,
    recipient: &str,
    person_key: &str,
    trigger: (&str, &str),
    now: DateTime<Utc>,
    due_by: DateTime<Utc>,
    owed: Owed,
) -> sqlx::Result<Option<DeliveryRow>> {
    let (state, withdrawn_at) = match owed {
        Owed::Pending => ("pending", None),
        Owed::Withdrawn => ("withdrawn", Some(now)),
    };
    let sql = sqlx::AssertSqlSafe(format!(
        "INSERT INTO deliveries (delivery_id, recipient, person_key, trigger_kind, trigger_id, state, created_at, withdrawn_at, due_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING RETURNING {DELIVERY_COLUMNS}"
    ));
    on_tx!(tx, c => sqlx::query_as(sql)
        .bind(delivery_id).bind(recipient).bind(person_key).bind(trigger.0).bind(trigger.1).bind(state)
        .bind(now).bind(withdrawn_at).bind(due_by)
        .fetch_optional(&mut **c).await)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryRow {
    pub delivery_id: String,
    pub recipient: String,
    pub person_key: String,
    pub trigger_kind: String,
    pub trigger_id: String,
    /// pending, made, refused, withdrawn or retracted.
    pub state: String,
    pub created_at: DateTime<Utc>,
    pub due_by: Option<DateTime<Utc>>,
    pub made_at: Option<DateTime<Utc>>,
    pub processed_at: Option<DateTime<Utc>>,
    pub overdue_at: Option<DateTime<Utc>>,
    pub withdrawn_at: Option<DateTime<Utc>>,
}

const DELIVERY_COLUMNS: &str =
    "delivery_id, recipient, person_key, trigger_kind, trigger_id, state,
     created_at, due_by, made_at, processed_at, overdue_at, withdrawn_at";

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

/// Moves a push still owed to `state` at `at` (made: read by its recipient;
/// refused or withdrawn: withheld); returns it as it now stands, or `None`
/// if it was no longer owed (made or withheld meanwhile).
pub async fn set_delivery_state(
    tx: &mut Tx,
    delivery_id: &str,
    state: &str,
    at: DateTime<Utc>,
) -> sqlx::Result<Option<DeliveryRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "UPDATE deliveries SET state = $2,
             made_at = CASE WHEN $2 = 'made' THEN COALESCE(made_at, $3) ELSE made_at END,
             withdrawn_at = CASE WHEN $2 IN ('withdrawn', 'refused') THEN $3 ELSE withdrawn_at END
         WHERE delivery_id = $1 AND state = 'pending' RETURNING {DELIVERY_COLUMNS}"
    ));
    on_tx!(tx, c => sqlx::query_as(sql).bind(delivery_id).bind(state).bind(at).fetch_optional(&mut **c).await)
}

/// Records that a push's recipient processed it (the first time only);
/// returns it as it now stands.
pub async fn set_processed(
    tx: &mut Tx,
    delivery_id: &str,
    at: DateTime<Utc>,
) -> sqlx::Result<DeliveryRow> {
    let sql = sqlx::AssertSqlSafe(format!(
        "UPDATE deliveries SET processed_at = COALESCE(processed_at, $2)
         WHERE delivery_id = $1 RETURNING {DELIVERY_COLUMNS}"
    ));
    on_tx!(tx, c => sqlx::query_as(sql).bind(delivery_id).bind(at).fetch_one(&mut **c).await)
}

/// Marks overdue up to `limit` pushes still owed whose due time has passed by
/// `now` and returns them. Each is marked once, however many sweep at once.
pub async fn mark_overdue(
    tx: &mut Tx,
    now: DateTime<Utc>,
    limit: i64,
) -> sqlx::Result<Vec<DeliveryRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "UPDATE deliveries SET overdue_at = $1
         WHERE delivery_id IN (
             SELECT delivery_id FROM deliveries
             WHERE state = 'pending' AND overdue_at IS NULL AND due_by <= $1
             ORDER BY due_by LIMIT $2)
           AND state = 'pending' AND overdue_at IS NULL
         RETURNING {DELIVERY_COLUMNS}"
    ));
    on_tx!(tx, c => sqlx::query_as(sql).bind(now).bind(limit).fetch_all(&mut **c).await)
}

pub async fn pending_for_person(tx: &mut Tx, person_key: &str) -> sqlx::Result<Vec<DeliveryRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE person_key = $1 AND state = 'pending'
         ORDER BY delivery_id"
    ));
    on_tx!(tx, c => sqlx::query_as(sql).bind(person_key).fetch_all(&mut **c).await)
}

/// A reversed or ended trigger: its pushes not yet made are withdrawn, and
/// those made are retracted (served to no one again). Returns those
/// withdrawn.
pub async fn withdraw_for_trigger(
    tx: &mut Tx,
    kind: &str,
    id: &str,
    at: DateTime<Utc>,
) -> sqlx::Result<Vec<DeliveryRow>> {
    on_tx!(tx, c => sqlx::query(
        "UPDATE deliveries SET state = 'retracted', withdrawn_at = $3
         WHERE trigger_kind = $1 AND trigger_id = $2 AND state = 'made'")
        .bind(kind).bind(id).bind(at).execute(&mut **c).await.map(|r| r.rows_affected()))?;
    let sql = sqlx::AssertSqlSafe(format!(
        "UPDATE deliveries SET state = 'withdrawn', withdrawn_at = $3
         WHERE trigger_kind = $1 AND trigger_id = $2 AND state = 'pending'
         RETURNING {DELIVERY_COLUMNS}"
    ));
    on_tx!(tx, c => sqlx::query_as(sql).bind(kind).bind(id).bind(at).fetch_all(&mut **c).await)
}

/// Keeps what a delivery carried when it was made, sealed at rest.
pub async fn record_sent(tx: &mut Tx, delivery_id: &str, sent: &Sealed) -> sqlx::Result<()> {
    on_tx!(tx, c => sqlx::query(
        "UPDATE deliveries SET sent_key_id = $2, sent_nonce = $3, sent_ciphertext = $4 WHERE delivery_id = $1")
        .bind(delivery_id).bind(&sent.key_id).bind(&sent.nonce).bind(&sent.ciphertext)
        .execute(&mut **c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// What a made delivery carried, sealed; `None` if it was made before this
/// was kept.
pub async fn sent(tx: &mut Tx, delivery_id: &str) -> sqlx::Result<Option<Sealed>> {
    type Columns = (Option<String>, Option<Vec<u8>>, Option<Vec<u8>>);
    let row: Option<Columns> = on_tx!(tx, c => sqlx::query_as(
        "SELECT sent_key_id, sent_nonce, sent_ciphertext FROM deliveries WHERE delivery_id = $1")
        .bind(delivery_id).fetch_optional(&mut **c).await)?;
    Ok(match row {
        Some((Some(key_id), Some(nonce), Some(ciphertext))) => Some(Sealed {
            key_id,
            nonce,
            ciphertext,
        }),
        _ => None,
    })
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
