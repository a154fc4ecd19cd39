//! The indicators application: the aggregation core kept in memory over the
//! stored per-person state, fed by the observations topic, published at each
//! period's close, and read by commissioners within their own areas. A published period whose
//! figures change later (late records) is published again as a revision.

mod consume;
mod export;
mod publish;
mod query;
pub mod rebuild;
mod scope;
mod snapshot;
mod stream;
mod structure;
mod watcher;

pub use consume::Consumer;
pub use export::CSV_HEADER;
pub use stream::Streamed;

use crate::catalogue::Catalogue;
use crate::domain::core::{Aggregator, RecordKeys};
use crate::domain::period::Period;
use crate::domain::person::{Person, StoredPerson};
use crate::store;
use chrono::{DateTime, Utc};
use prost::Message;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;
use throughcare_platform::clock::SharedClock;
use throughcare_platform::db::Db;
use throughcare_platform::identity::Registry;
use throughcare_platform::work::Transactions;
use tokio::sync::watch;

/// The CloudEvents source of this service's events.
const SOURCE: &str = "/throughcare/indicators";

/// When periods are published.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PublicationConfig {
    /// Days after a period ends before it is first published, so late
    /// records can arrive. Anything arriving later publishes a revision.
    pub grace_days: u32,
    /// How often to check whether a period has closed.
    pub check_interval_ms: u64,
    /// A closed month is published only once no record has changed it for
    /// this long, so a backlog being loaded (a migration, a replay, a demo) is
    /// published whole, never part-way. (A month that never goes quiet this
    /// long is never published: a minute is far beyond any real trickle of
    /// late records.)
    pub settle_ms: u64,
}

impl Default for PublicationConfig {
    fn default() -> Self {
        Self {
            grace_days: 14,
            check_interval_ms: 60_000,
            settle_ms: 60_000,
        }
    }
}

/// The running service's state.
#[derive(Debug)]
pub struct App {
    /// Units of work on the service's database (they wake the relay).
    pub transactions: Transactions,
    pub catalogue: &'static Catalogue,
    pub registry: Registry,
    pub clock: SharedClock,
    /// Full name of the snapshots topic.
    pub snapshots_topic: String,
    pub publication: PublicationConfig,
    core: Mutex<Aggregator>,
    /// The latest published sequence, for watchers.
    published: watch::Sender<i64>,
    /// When each month's figures last changed (since start-up).
    changed: Mutex<BTreeMap<u32, Instant>>,
    /// Published months that may have changed since their last release, with
    /// when they last changed: each is compared with what was published, and
    /// revised if it differs. All of them at start-up.
    dirty: Mutex<BTreeMap<u32, Instant>>,
    /// The snapshot sequence held by disclosure control, once alerted.
    held: Mutex<Option<i64>>,
}

impl App {
    /// Loads the stored state and counts it.
    pub async fn start(
        transactions: Transactions,
        registry: Registry,
        clock: SharedClock,
        snapshots_topic: String,
        publication: PublicationConfig,
    ) -> sqlx::Result<Self> {
        let catalogue = Catalogue::standard();
        let horizon = Period::month_index_of(clock.now().date_naive());
        let core = load(transactions.db(), catalogue, horizon).await?;
        let latest = store::latest_snapshot(transactions.db()).await?;
        // Whatever changed before a restart and was not yet revised.
        let dirty = match (&latest, core.earliest_month()) {
            (Some(s), Some(crate::domain::period::Period::Month(first))) => {
                let now = Instant::now();
                (first..=s.through_month as u32).map(|m| (m, now)).collect()
            }
            _ => BTreeMap::new(),
        };
        let latest = latest.map_or(0, |s| s.sequence);
        Ok(Self {
            transactions,
            catalogue,
            registry,
            clock,
            snapshots_topic,
            publication,
            core: Mutex::new(core),
            published: watch::Sender::new(latest),
            changed: Mutex::default(),
            dirty: Mutex::new(dirty),
            held: Mutex::default(),
        })
    }

    /// The service's database, for reads.
    pub fn db(&self) -> &Db {
        self.transactions.db()
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Brings the current month up to the clock: people in open spells of
    /// supervision count in each month as it begins.
    pub fn advance_horizon(&self) {
        let horizon = Period::month_index_of(self.now().date_naive());
        let mut core = self.core();
        if core.horizon() != horizon {
            core.set_horizon(horizon);
        }
    }

    fn core(&self) -> MutexGuard<'_, Aggregator> {
        // A panic while counting leaves figures that cannot be trusted: stop.
        self.core.lock().expect("aggregation core poisoned")
    }

    /// The fingerprint of every cell's true figures (for restart and rebuild checks).
    pub fn fingerprint(&self) -> String {
        self.core().fingerprint()
    }

    /// Every cell's true figures, sorted (tests compare restarts and rebuilds).
    pub fn all_cells(
        &self,
    ) -> Vec<(
        crate::domain::core::CellName,
        crate::domain::core::CellFigures,
    )> {
        self.core().all_cells()
    }
}

/// The record keys of the cell key method, drawn with the service's secret
/// (made, randomly, at its first start).
pub async fn record_keys(db: &Db) -> sqlx::Result<RecordKeys> {
    use ring::rand::SecureRandom;
    let mut fresh = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut fresh)
        .expect("the system's random number generator");
    let fresh: String = fresh.iter().map(|b| format!("{b:02x}")).collect();
    let secret = store::secret(db, "record_keys", &fresh).await?;
    Ok(RecordKeys::new(secret.as_bytes()))
}

/// Builds the core from the stored people, counting everyone once, with
/// open spells of supervision running through the month `horizon`.
pub async fn load(
    db: &Db,
    catalogue: &'static Catalogue,
    horizon: u32,
) -> sqlx::Result<Aggregator> {
    let mut core = Aggregator::keyed(catalogue, record_keys(db).await?);
    core.stage();
    core.set_horizon(horizon);
    for (merged, survivor) in store::load_links(db).await? {
        core.alias(&merged, &survivor);
    }
    let mut unreadable = 0usize;
    store::load_people(db, |key, state| {
        let person = StoredPerson::decode(state.as_slice())
            .ok()
            .and_then(|stored| Person::from_stored(stored, core.areas_mut()));
        match person {
            Some(person) => core.load(&key, person),
            None => unreadable += 1,
        }
    })
    .await?;
    if unreadable > 0 {
        tracing::error!(
            unreadable,
            "stored people that cannot be read were left out; rebuild from the log"
        );
    }
    let core = tokio::task::spawn_blocking(move || {
        core.count_all();
        core
    })
    .await
    .expect("counting the stored people");
    tracing::info!(
        people = core.people(),
        observations = core.observations(),
        "indicator state loaded"
    );
    Ok(core)
}

/// The stored form of a person.
fn encode(person: &Person, core: &Aggregator) -> Vec<u8> {
    person.to_stored(core.areas()).encode_to_vec()
}
