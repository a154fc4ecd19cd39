//! Two-level acknowledgement of pushes, for their senders: a push is owed
//! (due by a set time), delivered when its recipient reads it from its feed,
//! processed when the recipient says so, overdue when not read in time, or
//! withheld. Every change is published whole, as a `DeliveryReceiptChanged`
//! on the sharing events topic, in the unit of work that made it.

use super::App;
use super::disclosure::trigger;
use crate::store::people::{self, DeliveryRow};
use std::time::Duration;
use throughcare_platform::clock::to_timestamp;
use throughcare_platform::error::{Error, Result};
use throughcare_platform::identity::Caller;
use throughcare_platform::validation::FieldViolation;
use throughcare_platform::work::Work;
use throughcare_proto::events::v1 as events;
use throughcare_proto::sharing::v1 as pb;
use throughcare_proto::types::v1::{DeliveryReceipt, DeliveryStatus};
use tokio_util::sync::CancellationToken;

/// Most pushes one sweep marks overdue in one unit of work.
const OVERDUE_BATCH: i64 = 500;

/// Where a push stands, as its sender sees it.
fn status(row: &DeliveryRow) -> DeliveryStatus {
    match row.state.as_str() {
        "made" | "retracted" if row.processed_at.is_some() => DeliveryStatus::Processed,
        "made" | "retracted" => DeliveryStatus::Delivered,
        "pending" if row.overdue_at.is_some() => DeliveryStatus::Overdue,
        "pending" => DeliveryStatus::Pending,
        _ => DeliveryStatus::Withheld,
    }
}

/// A push's receipt: its status and every time so far, never its contents.
pub(crate) fn receipt(row: &DeliveryRow) -> DeliveryReceipt {
    let stamp = |at: Option<chrono::DateTime<chrono::Utc>>| at.map(to_timestamp);
    let withheld = status(row) == DeliveryStatus::Withheld;
    DeliveryReceipt {
        delivery_id: row.delivery_id.clone(),
        recipient: row.recipient.clone(),
        status: status(row) as i32,
        owed_at: Some(to_timestamp(row.created_at)),
        due_by: stamp(row.due_by),
        delivered_at: stamp(row.made_at),
        processed_at: stamp(row.processed_at),
        overdue_at: stamp(row.overdue_at),
        withheld_at: stamp(row.withdrawn_at.filter(|_| withheld)),
    }
}

impl App {
    /// Publishes, in `work`, the receipt of each push that changed.
    pub(super) fn receipts_changed(&self, work: &mut Work, changed: &[DeliveryRow]) {
        for row in changed {
            let event = events::DeliveryReceiptChanged {
                person_key: row.person_key.clone(),
                trigger: trigger(&row.trigger_kind) as i32,
                trigger_id: row.trigger_id.clone(),
                receipt: Some(receipt(row)),
            };
            work.publish(self.event(&row.person_key, &event));
        }
    }

    /// The caller, a push's recipient, has processed a delivery it read.
    /// Acknowledging again changes nothing and returns the same receipt.
    pub async fn acknowledge_delivery(
        &self,
        caller: &Caller,
        r: &pb::AcknowledgeDeliveryRequest,
    ) -> Result<pb::AcknowledgeDeliveryResponse> {
        let delivery_id = r.delivery_id.trim();
        if delivery_id.is_empty() {
            return Err(FieldViolation::missing("delivery_id").into());
        }
        let mut work = self.transactions.begin().await?;
        // Another recipient's push, or one withheld from the caller, is
        // answered as one that does not exist.
        let row = people::lock_delivery(work.tx(), delivery_id)
            .await?
            .filter(|row| row.recipient == caller.code())
            .filter(|row| status(row) != DeliveryStatus::Withheld)
            .ok_or(Error::NotFound("delivery"))?;
        if row.state == "retracted" {
            // Its release was reversed or its referral ended after it was
            // read: it is served to no one again, nor acknowledged.
            return Err(Error::NotFound("delivery"));
        }
        if row.state != "made" {
            return Err(Error::precondition(
                "delivery_id",
                "the delivery has not been read from the feed yet; read it before acknowledging it",
            ));
        }
        if row.processed_at.is_some() {
            return Ok(pb::AcknowledgeDeliveryResponse {
                receipt: Some(receipt(&row)),
            });
        }
        let processed = people::set_processed(work.tx(), delivery_id, self.now()).await?;
        self.receipts_changed(&mut work, std::slice::from_ref(&processed));
        work.commit().await?;
        Ok(pb::AcknowledgeDeliveryResponse {
            receipt: Some(receipt(&processed)),
        })
    }

    /// Marks overdue every push still owed past its due time, and publishes
    /// each one's receipt (the referrals service raises the continuity
    /// alert). Returns how many.
    pub async fn mark_overdue(&self) -> Result<usize> {
        let mut marked = 0;
        loop {
            let mut work = self.transactions.begin().await?;
            let overdue = people::mark_overdue(work.tx(), self.now(), OVERDUE_BATCH).await?;
            self.receipts_changed(&mut work, &overdue);
            work.commit().await?;
            marked += overdue.len();
            if (overdue.len() as i64) < OVERDUE_BATCH {
                return Ok(marked);
            }
        }
    }

    /// Looks for overdue pushes every `every` until `shutdown`.
    pub async fn watch_overdue(&self, every: Duration, shutdown: CancellationToken) -> Result<()> {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(every) => {}
            }
            match self.mark_overdue().await {
                Ok(0) => {}
                Ok(marked) => tracing::warn!(marked, "pushes not read by their due time"),
                Err(error) => {
                    tracing::warn!(%error, "looking for overdue pushes failed; trying again later")
                }
            }
        }
    }
}
