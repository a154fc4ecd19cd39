//! The observations consumer: each record changes one person's stored state
//! (with its inbox entry, in one transaction) and then the counts.

use super::{App, encode};
use crate::domain::person::Input;
use crate::store;
use std::sync::Arc;
use throughcare_platform::bus::{Event, HandleError, Handler};
use throughcare_platform::inbox::Inbox;
use throughcare_proto::events::v1 as events;

/// The inbox name of this consumer.
const INBOX: &str = "indicators";

/// Hands each event to its use case, recorded in this service's inbox.
#[derive(Debug, Clone)]
pub struct Consumer(Arc<App>);

impl Consumer {
    pub fn new(app: Arc<App>) -> Self {
        Self(app)
    }

    fn inbox(&self) -> Inbox {
        Inbox::new(INBOX, self.0.transactions.clone())
    }
}

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
    } else if event.is::<events::PersonsLinked>() {
        Some(event.decode().map(Input::Linked).map_err(|e| e.to_string()))
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
        self.0.apply(&self.inbox(), event, &input).await
    }
}

impl App {
    /// Stores the person's new state with the event's inbox entry, then
    /// counts the change.
    async fn apply(&self, inbox: &Inbox, event: &Event, input: &Input) -> Result<(), HandleError> {
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
        let Some(mut work) = inbox.begin(event).await? else {
            return Ok(()); // applied before
        };
        let now = self.now();
        store::save_person(work.tx(), &change.person_key, &state, now).await?;
        if !change.merged.is_empty() {
            store::link_people(work.tx(), &change.merged, &change.person_key, now).await?;
        }
        for absorbed in &change.absorbed {
            store::delete_person(work.tx(), absorbed).await?;
        }
        work.commit().await?;
        self.changed(change.months());
        self.core().apply(change);
        Ok(())
    }
}
