//! What became of the pushes each release and referral caused, as the
//! sharing service reported it: the latest receipt of each push, whole.

use super::{StoreError, StoreResult};
use std::collections::HashMap;
use throughcare_platform::db::{Db, Tx};
use throughcare_platform::{on_db, on_tx};
use throughcare_proto::types::v1::DeliveryReceipt;

/// Which release or referral a push was for: ("release" | "referral", id).
pub type Trigger<'a> = (&'a str, &'a str);

fn decode(bytes: &[u8]) -> StoreResult<DeliveryReceipt> {
    prost::Message::decode(bytes).map_err(|_| {
        StoreError::Corrupt(super::rows::CorruptRow {
            what: "delivery receipt",
        })
    })
}

/// The receipt held for a push, locked for the change. A push not seen
/// before gets an empty row first, so two first receipts handled at once
/// wait for each other rather than both starting from nothing; the change
/// overwrites it in the same unit of work, so no reader sees it.
pub async fn lock(
    tx: &mut Tx,
    trigger: Trigger<'_>,
    delivery_id: &str,
) -> StoreResult<Option<DeliveryReceipt>> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO delivery_receipts (delivery_id, trigger_kind, trigger_id, receipt)
         VALUES ($1, $2, $3, $4) ON CONFLICT (delivery_id) DO NOTHING")
        .bind(delivery_id).bind(trigger.0).bind(trigger.1).bind(Vec::<u8>::new())
        .execute(&mut **c).await.map(|r| r.rows_affected()))?;
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT receipt FROM delivery_receipts WHERE delivery_id = $1{}",
        tx.for_update()
    ));
    let row: Vec<u8> = on_tx!(tx, c => sqlx::query_scalar(sql)
        .bind(delivery_id).fetch_one(&mut **c).await)?;
    // Empty: the placeholder (no receipt has an empty delivery id).
    (!row.is_empty()).then(|| decode(&row)).transpose()
}

/// Keeps `receipt` as the push's latest.
pub async fn put(tx: &mut Tx, trigger: Trigger<'_>, receipt: &DeliveryReceipt) -> StoreResult<()> {
    let bytes = prost::Message::encode_to_vec(receipt);
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO delivery_receipts (delivery_id, trigger_kind, trigger_id, receipt)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (delivery_id) DO UPDATE SET receipt = EXCLUDED.receipt")
        .bind(&receipt.delivery_id).bind(trigger.0).bind(trigger.1).bind(bytes)
        .execute(&mut **c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// The receipts of the pushes one release or referral caused, by delivery id.
pub async fn of_trigger(tx: &mut Tx, trigger: Trigger<'_>) -> StoreResult<Vec<DeliveryReceipt>> {
    let rows: Vec<Vec<u8>> = on_tx!(tx, c => sqlx::query_scalar(
        "SELECT receipt FROM delivery_receipts WHERE trigger_kind = $1 AND trigger_id = $2
         ORDER BY delivery_id")
        .bind(trigger.0).bind(trigger.1).fetch_all(&mut **c).await)?;
    rows.iter().map(|r| decode(r)).collect()
}

/// The receipts of the pushes each of `ids` (all of one kind) caused, by id.
pub async fn of_triggers(
    db: &Db,
    kind: &str,
    ids: &[&str],
) -> StoreResult<HashMap<String, Vec<DeliveryReceipt>>> {
    let mut by_trigger: HashMap<String, Vec<DeliveryReceipt>> = HashMap::new();
    if ids.is_empty() {
        return Ok(by_trigger);
    }
    let rows: Vec<(String, Vec<u8>)> = on_db!(db, p => {
        let mut query = sqlx::QueryBuilder::new(
            "SELECT trigger_id, receipt FROM delivery_receipts WHERE trigger_kind = ",
        );
        query.push_bind(kind).push(" AND trigger_id IN (");
        let mut listed = query.separated(", ");
        for id in ids {
            listed.push_bind(*id);
        }
        query.push(") ORDER BY trigger_id, delivery_id");
        query.build_query_as().fetch_all(p).await
    })?;
    for (trigger_id, bytes) in rows {
        by_trigger
            .entry(trigger_id)
            .or_default()
            .push(decode(&bytes)?);
    }
    Ok(by_trigger)
}
