//! Rebuilding the indicators from the log: replay the observations topic from
//! offset zero into a fresh core, compare it with the stored state, and
//! optionally replace the stored state with it.

use super::consume::input_of;
use super::encode;
use crate::catalogue::Catalogue;
use crate::domain::core::{Aggregator, RecordKeys};
use crate::store;
use chrono::Utc;
use throughcare_platform::bus::{Bus, BusError, Event};
use throughcare_platform::db::Db;

/// What a replay read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayStats {
    pub records: u64,
    pub bytes: u64,
    /// Records that were undecodable or malformed (the live consumer
    /// dead-letters the same ones, so they count nowhere).
    pub skipped: u64,
}

/// Replays `topic` (its full name) from offset zero into a fresh core, with
/// open spells of supervision running through the month `horizon`.
pub async fn from_log(
    bus: &Bus,
    topic: &str,
    catalogue: &'static Catalogue,
    keys: RecordKeys,
    horizon: u32,
) -> Result<(Aggregator, ReplayStats), BusError> {
    let mut replay = bus.replay(topic).await?;
    let mut core = Aggregator::keyed(catalogue, keys);
    core.stage();
    core.set_horizon(horizon);
    let mut stats = ReplayStats::default();
    while let Some(received) = replay.next().await? {
        stats.records += 1;
        stats.bytes += received.record.payload.len() as u64;
        let input = Event::from_record(&received.record)
            .ok()
            .and_then(|event| input_of(&event));
        let usable = match input {
            Some(Ok(input)) => core.ingest(&input).is_ok(),
            Some(Err(_)) => false,
            None => true, // another event type: not the indicators' concern
        };
        stats.skipped += u64::from(!usable);
    }
    let core = tokio::task::spawn_blocking(move || {
        core.count_all();
        core
    })
    .await
    .map_err(|e| BusError::Replay(e.to_string()))?;
    Ok((core, stats))
}

/// Replaces every stored person with the rebuilt core's. Run it with the
/// service stopped: the service loads the stored state when it starts.
pub async fn replace(db: &Db, core: &Aggregator) -> sqlx::Result<usize> {
    let people: Vec<(String, Vec<u8>)> = core
        .each_person()
        .map(|(key, person)| (key.to_owned(), encode(person, core)))
        .collect();
    let links: Vec<(String, String)> = core
        .each_alias()
        .map(|(merged, survivor)| (merged.to_owned(), survivor.to_owned()))
        .collect();
    store::replace_people(db, &people, &links, Utc::now()).await?;
    Ok(people.len())
}
