//! The audit log's storage: append under the head's lock, verify by streaming.

use super::{join_names, split_names};
use crate::domain::audit::{Broken, Checkpoint, Entry, Verifier};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use throughcare_platform::db::{Db, Tx};
use throughcare_platform::{on_db, on_tx};
use throughcare_proto::sharing::v1 as pb;
use throughcare_proto::types::v1::{DataCategory, OrganisationKind};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRow {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor_organisation: String,
    pub actor_kind: String,
    pub actor_role: String,
    pub person_key: String,
    pub purpose: String,
    pub decision: String,
    pub bases: String,
    pub categories: String,
    pub justification: String,
    pub flagged: bool,
    pub previous_hash: Vec<u8>,
    pub hash: Vec<u8>,
    pub action: String,
    pub refused_categories: String,
    pub disclosure_id: String,
    pub delivery_id: String,
    pub trigger_kind: String,
    pub trigger_id: String,
}

const COLUMNS: &str =
    "seq, at, actor_organisation, actor_kind, actor_role, person_key, purpose, decision, bases,
    categories, justification, flagged, previous_hash, hash, action, refused_categories,
    disclosure_id, delivery_id, trigger_kind, trigger_id";

pub fn bases_text(bases: &[pb::LawfulBasis]) -> String {
    bases
        .iter()
        .map(|b| {
            let kind = pb::LawfulBasisType::try_from(b.r#type)
                .unwrap_or_default()
                .as_str_name();
            format!("{kind}:{}", b.basis_id)
        })
        .collect::<Vec<_>>()
        .join(",")
}

pub fn parse_bases(text: &str) -> Option<Vec<pb::LawfulBasis>> {
    split_names(text)
        .map(|item| {
            let (kind, id) = item.split_once(':')?;
            Some(pb::LawfulBasis {
                r#type: pb::LawfulBasisType::from_str_name(kind)? as i32,
                basis_id: id.to_owned(),
            })
        })
        .collect()
}

impl AuditRow {
    /// The entry this row holds, as a read error if it no longer parses.
    fn parsed(&self) -> sqlx::Result<Entry> {
        self.entry()
            .ok_or_else(|| sqlx::Error::Decode("a stored audit entry no longer parses".into()))
    }

    /// The entry this row holds; `None` if a column no longer parses (tampering).
    pub fn entry(&self) -> Option<Entry> {
        Some(Entry {
            seq: self.seq,
            at: self.at,
            actor_organisation: self.actor_organisation.clone(),
            actor_kind: OrganisationKind::from_str_name(&self.actor_kind)?,
            actor_role: self.actor_role.clone(),
            person_key: self.person_key.clone(),
            purpose: pb::Purpose::from_str_name(&self.purpose)?,
            decision: pb::Decision::from_str_name(&self.decision)?,
            bases: parse_bases(&self.bases)?,
            categories: split_names(&self.categories)
                .map(DataCategory::from_str_name)
                .collect::<Option<_>>()?,
            justification: self.justification.clone(),
            flagged: self.flagged,
            action: pb::AuditedAction::from_str_name(&self.action)?,
            refused: split_names(&self.refused_categories)
                .map(DataCategory::from_str_name)
                .collect::<Option<_>>()?,
            disclosure_id: self.disclosure_id.clone(),
            delivery_id: self.delivery_id.clone(),
            trigger_kind: self.trigger_kind.clone(),
            trigger_id: self.trigger_id.clone(),
        })
    }
}

/// Appends `entry` (its `seq` is assigned here) and returns it with its hash.
/// Locks the head until commit: call it last in the transaction.
pub async fn append(tx: &mut Tx, mut entry: Entry) -> sqlx::Result<(Entry, Vec<u8>)> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT last_seq, last_hash FROM audit_head WHERE id = 1{}",
        tx.for_update()
    ));
    let (last_seq, last_hash): (i64, Vec<u8>) =
        on_tx!(tx, c => sqlx::query_as(sql).fetch_one(&mut **c).await)?;
    entry.seq = last_seq + 1;
    let hash = entry.hash(&last_hash).to_vec();
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO audit_log (seq, at, actor_organisation, actor_kind, actor_role, person_key, purpose, decision,
            bases, categories, justification, flagged, previous_hash, hash, action, refused_categories,
            disclosure_id, delivery_id, trigger_kind, trigger_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)")
        .bind(entry.seq).bind(entry.at).bind(&entry.actor_organisation).bind(entry.actor_kind.as_str_name())
        .bind(&entry.actor_role).bind(&entry.person_key).bind(entry.purpose.as_str_name())
        .bind(entry.decision.as_str_name()).bind(bases_text(&entry.bases))
        .bind(join_names(entry.categories.iter().map(|c| c.as_str_name())))
        .bind(&entry.justification).bind(entry.flagged).bind(&last_hash).bind(&hash)
        .bind(entry.action.as_str_name())
        .bind(join_names(entry.refused.iter().map(|c| c.as_str_name())))
        .bind(&entry.disclosure_id).bind(&entry.delivery_id).bind(&entry.trigger_kind).bind(&entry.trigger_id)
        .execute(&mut **c).await.map(|r| r.rows_affected()))?;
    on_tx!(tx, c => sqlx::query("UPDATE audit_head SET last_seq = $1, last_hash = $2 WHERE id = 1")
        .bind(entry.seq).bind(&hash).execute(&mut **c).await.map(|r| r.rows_affected()))?;
    Ok((entry, hash))
}

/// Verifies the whole chain in one snapshot (appends running meanwhile are
/// not seen half-done): every link, the head, and every stored checkpoint —
/// plus `known`, the latest the service signed, should the table have lost it
/// — each of which must carry `public_key`'s signature. The number of entries
/// checked, or the first broken one.
pub async fn verify(
    db: &Db,
    public_key: &[u8],
    known: Option<Checkpoint>,
) -> sqlx::Result<Result<i64, Broken>> {
    let mut tx = db.begin().await?;
    if let Tx::Postgres(c) = &mut tx {
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut **c)
            .await?;
    }
    let mut checkpoints = checkpoints(&mut tx).await?;
    checkpoints.extend(known);
    if let Some(forged) = checkpoints.iter().find(|c| !c.is_signed_by(public_key)) {
        return Ok(Err(Broken {
            seq: forged.seq,
            reason: "a checkpoint does not carry the sharing service's signature",
        }));
    }
    let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM audit_log ORDER BY seq"));
    let outcome: Result<Verifier, Broken> = on_tx!(&mut tx, c => {
        let mut rows = sqlx::query_as::<_, AuditRow>(sql).fetch(&mut **c);
        let mut verifier = Verifier::against(checkpoints);
        let mut outcome = Ok(());
        while let Some(row) = rows.try_next().await? {
            let checked = match row.entry() {
                Some(entry) => verifier.check(&entry, &row.previous_hash, &row.hash),
                None => Err(Broken { seq: row.seq, reason: "entry was altered: a field no longer parses" }),
            };
            if let Err(broken) = checked {
                outcome = Err(broken);
                break;
            }
        }
        outcome.map(|()| verifier)
    });
    let verifier = match outcome {
        Ok(verifier) => verifier,
        Err(broken) => return Ok(Err(broken)),
    };
    let (seq, hash) = head(&mut tx).await?;
    Ok(verifier.finish(seq, &hash))
}

/// The chain's head: its last sequence and hash.
pub async fn head(tx: &mut Tx) -> sqlx::Result<(i64, Vec<u8>)> {
    on_tx!(tx, c => sqlx::query_as("SELECT last_seq, last_hash FROM audit_head WHERE id = 1")
        .fetch_one(&mut **c).await)
}

type CheckpointRow = (i64, Vec<u8>, DateTime<Utc>, Vec<u8>);

fn checkpoint((seq, hash, at, signature): CheckpointRow) -> Checkpoint {
    Checkpoint {
        seq,
        hash,
        at,
        signature,
    }
}

/// The latest stored checkpoint.
pub async fn latest_checkpoint(tx: &mut Tx) -> sqlx::Result<Option<Checkpoint>> {
    let row: Option<CheckpointRow> = on_tx!(tx, c => sqlx::query_as(
        "SELECT seq, hash, at, signature FROM audit_checkpoints ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut **c).await)?;
    Ok(row.map(checkpoint))
}

/// The chain hash of entry `seq`, if it is there.
pub async fn hash_at(tx: &mut Tx, seq: i64) -> sqlx::Result<Option<Vec<u8>>> {
    on_tx!(tx, c => sqlx::query_scalar("SELECT hash FROM audit_log WHERE seq = $1")
        .bind(seq).fetch_optional(&mut **c).await)
}

/// Every stored checkpoint, oldest first.
pub async fn checkpoints(tx: &mut Tx) -> sqlx::Result<Vec<Checkpoint>> {
    let rows: Vec<CheckpointRow> = on_tx!(tx, c => sqlx::query_as(
        "SELECT seq, hash, at, signature FROM audit_checkpoints ORDER BY seq")
        .fetch_all(&mut **c).await)?;
    Ok(rows.into_iter().map(checkpoint).collect())
}

pub async fn insert_checkpoint(tx: &mut Tx, c: &Checkpoint) -> sqlx::Result<()> {
    on_tx!(tx, x => sqlx::query(
        "INSERT INTO audit_checkpoints (seq, hash, at, signature) VALUES ($1, $2, $3, $4)
         ON CONFLICT DO NOTHING")
        .bind(c.seq).bind(&c.hash).bind(c.at).bind(&c.signature)
        .execute(&mut **x).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Every disclosure decision about the person keyed `person_key` that
/// refused something — a deny, or a permit that refused some categories —
/// under that key or any key since linked to it, oldest first.
pub async fn refusals_of(db: &Db, person_key: &str) -> sqlx::Result<Vec<Entry>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM audit_log
         WHERE person_key IN (SELECT $1 UNION SELECT merged_key FROM person_links WHERE surviving_key = $1)
           AND action = 'AUDITED_ACTION_UNSPECIFIED'
           AND (decision = 'DECISION_DENY' OR refused_categories <> '')
         ORDER BY seq"
    ));
    let rows: Vec<AuditRow> =
        on_db!(db, p => sqlx::query_as(sql).bind(person_key).fetch_all(p).await)?;
    rows.iter().map(AuditRow::parsed).collect()
}

/// A page of the log after `after_seq`: optionally only flagged entries,
/// and only those `actor` (an organisation code) is the actor of, if given.
pub async fn entries(
    db: &Db,
    flagged_only: bool,
    actor: Option<&str>,
    after_seq: i64,
    limit: i64,
) -> sqlx::Result<Vec<pb::AuditEntry>> {
    let flagged = if flagged_only { " AND flagged" } else { "" };
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM audit_log WHERE seq > $1{flagged}
           AND ($3 IS NULL OR actor_organisation = $3) ORDER BY seq LIMIT $2"
    ));
    let rows: Vec<AuditRow> = on_db!(db, p => sqlx::query_as(sql).bind(after_seq).bind(limit)
        .bind(actor).fetch_all(p).await)?;
    rows.into_iter()
        .map(|row| Ok(row.parsed()?.to_proto(row.previous_hash, row.hash)))
        .collect()
}
