//! What the referrals service learns from the sharing service: what became
//! of the pushes its releases and referrals caused. Each event is applied in
//! one unit of work with its inbox entry.

use super::App;
use std::sync::Arc;
use throughcare_platform::bus::{Event, HandleError, Handler};
use throughcare_platform::inbox::Inbox;
use throughcare_proto::events::v1::DeliveryReceiptChanged;
use throughcare_proto::sharing::v1::DeliveryTrigger;

/// The inbox name of this consumer.
const INBOX: &str = "referrals";

fn permanent(reason: &str) -> HandleError {
    HandleError::Permanent(reason.to_owned())
}

/// Hands each receipt to its use case, recorded in this service's inbox.
#[derive(Debug, Clone)]
pub struct Consumer(Arc<App>);

impl Consumer {
    pub fn new(app: Arc<App>) -> Self {
        Self(app)
    }
}

impl Handler for Consumer {
    async fn handle(&self, event: &Event) -> Result<(), HandleError> {
        if !event.is::<DeliveryReceiptChanged>() {
            return Ok(());
        }
        let changed: DeliveryReceiptChanged = event
            .decode()
            .map_err(|_| permanent("a delivery receipt does not decode"))?;
        let kind = match changed.trigger() {
            DeliveryTrigger::Release => "release",
            DeliveryTrigger::Referral => "referral",
            DeliveryTrigger::Unspecified => return Err(permanent("a receipt names no trigger")),
        };
        let receipt = changed
            .receipt
            .filter(|r| !r.delivery_id.is_empty() && !changed.trigger_id.is_empty())
            .ok_or_else(|| permanent("a receipt names no delivery or trigger"))?;
        let inbox = Inbox::new(INBOX, self.0.transactions.clone());
        let Some(mut work) = inbox.begin(event).await? else {
            return Ok(());
        };
        let trigger = (kind, changed.trigger_id.as_str());
        self.0
            .receipt_changed(&mut work, trigger, receipt)
            .await
            .map_err(HandleError::from)?;
        work.commit().await?;
        Ok(())
    }
}
