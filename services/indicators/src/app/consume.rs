//! The observations consumer: each record changes one person's stored state
//! (with its inbox entry, in one transaction) and then the counts.

use super::{App, encode};
use crate::domain::person::Input;
use crate::store;
use std::sync::Arc;
use throughcare_platform::bus::{Event, HandleError, Handler};
use throughcare_proto::events::v1 as events;

/// The inbox name of this consumer.
const INBOX: &str = "indicators";

#[derive(Debug, Clone)]
pub struct Consumer(pub Arc<App>);

/// The input an event carries, if it is one the indicators use.
pub(super) fn input_of(event: &Event) -> Option<Result<Input, String>> {
    if event.is::<events::ObservationsRecorded>() {
        Some(
            event
                .decode()
                .map(Input::Recorded)
                .map_err(|e| e.to_string()),
        )
    } else if event.is::<events::ObservationsRetracted>() {
        Some(
            event
                .decode()
                .map(Input::Retracted)
                .map_err(|e| e.to_string()),
        )
    } else {
        None
    }
}

impl Handler for Consumer {
    async fn handle(&self, event: &Event) -> Result<(), HandleError> {
        let Some(input) = input_of(event) else {
            return Ok(());
        };
        let input = input.map_err(HandleError::Permanent)?;
        self.0.apply(event, &input).await
    }
}

impl App {
    async fn apply(&self, event: &Event, input: &Input) -> Result<(), HandleError> {
        let transient = |e: sqlx::Error| HandleError::Transient(e.to_string());
        let (change, state) = {
            let mut core = self.core();
            let Some(change) = core
                .prepare(input)
                .map_err(|e| HandleError::Permanent(e.to_string()))?
            else {
                return Ok(()); // nothing new: a duplicate
            };
            let state = encode(&change.person, &core);
            (change, state)
        };
        let mut tx = self.db.begin().await.map_err(transient)?;
        if !tx.record_inbox(INBOX, event.id).await.map_err(transient)? {
            return Ok(());
        }
        store::save_person(&mut tx, &change.person_key, &state, self.now())
            .await
            .map_err(transient)?;
        tx.commit().await.map_err(transient)?;
        self.changed(change.months());
        self.core().apply(change);
        Ok(())
    }
}
