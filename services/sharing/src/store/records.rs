//! Health records, one row per record and category, sealed at rest.

use chrono::{DateTime, Utc};
use throughcare_platform::db::Tx;
use throughcare_platform::on_tx;
use throughcare_platform::sealing::Sealed;

/// What a stored part is sealed to: its record and category (not the person
/// key, which can change when two sightings of one person are joined).
pub fn at_rest_binding(record_id: &str, category: &str) -> Vec<u8> {
    format!("throughcare.sharing.at-rest\u{1f}{record_id}\u{1f}{category}").into_bytes()
}

/// What a record's subject (who and where it places the person) is sealed to.
pub fn subject_binding(record_id: &str) -> Vec<u8> {
    at_rest_binding(record_id, "subject")
}

/// Stores a record's subject, sealed at rest, under the release it came from.
pub async fn insert_subject(
    tx: &mut Tx,
    record_id: &str,
    source_id: &str,
    sealed: &Sealed,
) -> sqlx::Result<()> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO record_subjects (record_id, source_id, key_id, nonce, ciphertext)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING")
        .bind(record_id).bind(source_id).bind(&sealed.key_id).bind(&sealed.nonce).bind(&sealed.ciphertext)
        .execute(&mut **c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// The subject of the (latest) record that came from `source_id`: its record
/// id and the sealed subject.
pub async fn subject_of(tx: &mut Tx, source_id: &str) -> sqlx::Result<Option<(String, Sealed)>> {
    let row: Option<(String, String, Vec<u8>, Vec<u8>)> = on_tx!(tx, c => sqlx::query_as(
        "SELECT record_id, key_id, nonce, ciphertext FROM record_subjects
         WHERE source_id = $1 ORDER BY record_id DESC LIMIT 1")
        .bind(source_id).fetch_optional(&mut **c).await)?;
    Ok(row.map(|(record_id, key_id, nonce, ciphertext)| {
        (
            record_id,
            Sealed {
                key_id,
                nonce,
                ciphertext,
            },
        )
    }))
}

/// One category of one record.
#[derive(Debug, Clone)]
pub struct Part<'a> {
    pub record_id: &'a str,
    pub category: &'static str,
    pub person_key: &'a str,
    pub source: &'static str,
    pub source_id: &'a str,
    pub recorded_by: &'a str,
    pub recorded_at: DateTime<Utc>,
    pub sealed: Sealed,
}

pub async fn insert_part(tx: &mut Tx, p: &Part<'_>) -> sqlx::Result<()> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO health_records (record_id, category, person_key, source, source_id, recorded_by, recorded_at,
            key_id, nonce, ciphertext)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING")
        .bind(p.record_id).bind(p.category).bind(p.person_key).bind(p.source).bind(p.source_id)
        .bind(p.recorded_by).bind(p.recorded_at).bind(&p.sealed.key_id).bind(&p.sealed.nonce).bind(&p.sealed.ciphertext)
        .execute(&mut **c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// A stored part: category, record id, key id, nonce, ciphertext.
type PartRow = (String, String, String, Vec<u8>, Vec<u8>);

/// The latest part per category for a person: (category, record id, sealed).
pub async fn latest_parts(
    tx: &mut Tx,
    person_key: &str,
) -> sqlx::Result<Vec<(String, String, Sealed)>> {
    let rows: Vec<PartRow> = on_tx!(tx, c => sqlx::query_as(
        "SELECT h.category, h.record_id, h.key_id, h.nonce, h.ciphertext FROM health_records h
         WHERE h.person_key = $1 AND h.recorded_at = (
             SELECT max(m.recorded_at) FROM health_records m WHERE m.person_key = h.person_key AND m.category = h.category)
         ORDER BY h.category, h.record_id DESC")
        .bind(person_key).fetch_all(&mut **c).await)?;
    let mut latest: Vec<(String, String, Sealed)> = Vec::new();
    for (category, record_id, key_id, nonce, ciphertext) in rows {
        if latest.last().is_some_and(|(c, _, _)| *c == category) {
            continue;
        }
        latest.push((
            category,
            record_id,
            Sealed {
                key_id,
                nonce,
                ciphertext,
            },
        ));
    }
    Ok(latest)
}
