//! Reading what the services publish, from the start of their topics.

use crate::WAIT;
use std::time::Instant;
use throughcare_platform::bus::{Bus, BusSubscription, Event, Subscriber, Subscription};
use throughcare_platform::testing::unique;

/// What the services published on some topics, accumulated as it arrives:
/// each event with its record's key.
#[derive(Debug)]
pub struct EventLog {
    subscription: BusSubscription,
    pub events: Vec<(Event, String)>,
}

impl EventLog {
    /// Reads `topics` (names without the stack's prefix) from their start.
    pub async fn subscribe(bus: &Bus, topics: &[&str]) -> Self {
        let topics: Vec<_> = topics.iter().map(|t| bus.topic(t)).collect();
        Self {
            subscription: bus
                .subscribe(&unique("test-reader"), &topics)
                .await
                .expect("a subscription"),
            events: Vec::new(),
        }
    }

    /// Reads until `find` finds what it wants in the events so far, failing
    /// after [`WAIT`].
    pub async fn wait_for<T>(
        &mut self,
        what: &str,
        mut find: impl FnMut(&[(Event, String)]) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(found) = find(&self.events) {
                return found;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let received = tokio::time::timeout(left, self.subscription.next())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "timed out waiting for {what}; saw {} events",
                        self.events.len()
                    )
                })
                .expect("the next record");
            let key = received.record.key.clone();
            self.events.push((
                Event::from_record(&received.record).expect("a cloudevent"),
                key,
            ));
        }
    }

    /// Every event of type `M` so far, decoded.
    pub fn all<M: prost::Message + prost::Name + Default>(&self) -> Vec<M> {
        self.events
            .iter()
            .filter(|(e, _)| e.is::<M>())
            .map(|(e, _)| e.decode().unwrap())
            .collect()
    }
}
