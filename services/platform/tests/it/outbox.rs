//! The outbox and inbox together: no loss and no duplicate effect, even when
//! the relay is killed between publishing and deleting.

use crate::common::{self, TestBus, WAIT, event, seq_of};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tempfile::TempDir;
use throughcare_platform::bus::{
    ConsumerOptions, Event, HandleError, Handler, Subscriber, Subscription, run_consumer,
};
use throughcare_platform::db::{Db, Migrations};
use throughcare_platform::inbox::Inbox;
use throughcare_platform::on_tx;
use throughcare_platform::outbox::{OutboxWaker, Relay, RelayOptions};
use throughcare_platform::telemetry::Metrics;
use throughcare_platform::testing::{eventually, fresh_postgres, unique};
use throughcare_platform::work::Transactions;
use tokio_util::sync::CancellationToken;

static TEST_POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("tests/it/migrations/postgres");
static TEST_SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("tests/it/migrations/sqlite");
pub const MIGRATIONS: Migrations = Migrations {
    postgres: &TEST_POSTGRES,
    sqlite: &TEST_SQLITE,
};

/// A producing service's database, a consuming service's database, and a bus.
struct Rig {
    producer: Db,
    consumer: Db,
    bus: Arc<TestBus>,
    _dir: Option<TempDir>,
}

async fn postgres_and_kafka() -> Rig {
    Rig {
        producer: Db::connect(&fresh_postgres().await, 8, MIGRATIONS)
            .await
            .unwrap(),
        consumer: Db::connect(&fresh_postgres().await, 8, MIGRATIONS)
            .await
            .unwrap(),
        bus: Arc::new(common::kafka_bus().await),
        _dir: None,
    }
}

async fn sqlite_and_in_process() -> Rig {
    let dir = TempDir::new().unwrap();
    let url = |name: &str| format!("sqlite://{}", dir.path().join(name).display());
    Rig {
        producer: Db::connect(&url("producer.db"), 4, MIGRATIONS)
            .await
            .unwrap(),
        consumer: Db::connect(&url("consumer.db"), 4, MIGRATIONS)
            .await
            .unwrap(),
        bus: Arc::new(common::in_process_bus().await),
        _dir: Some(dir),
    }
}

/// A state change and the event announcing it, in one unit of work.
async fn change_state(db: &Db, event: &Event) {
    let item = seq_of(event) as i64;
    let mut work = Transactions::new(db.clone(), OutboxWaker::new())
        .begin()
        .await
        .unwrap();
    on_tx!(work.tx(), c => sqlx::query("INSERT INTO items (id) VALUES ($1)")
        .bind(item)
        .execute(&mut **c)
        .await
        .map(|done| done.rows_affected()))
    .unwrap();
    work.publish(event.clone());
    work.commit().await.unwrap();
}

async fn scalar(db: &Db, sql: &'static str) -> i64 {
    match db {
        Db::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
        Db::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
    }
}

/// The consuming service: its effect and the inbox entry commit together.
#[derive(Clone)]
struct Effects {
    inbox: Inbox,
    calls: Arc<AtomicUsize>,
}

impl Handler for Effects {
    async fn handle(&self, event: &Event) -> Result<(), HandleError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let Some(mut work) = self.inbox.begin(event).await? else {
            return Ok(());
        };
        on_tx!(work.tx(), c => sqlx::query("INSERT INTO effects (item) VALUES ($1)")
            .bind(seq_of(event) as i64)
            .execute(&mut **c)
            .await
            .map(|done| done.rows_affected()))?;
        work.commit().await?;
        Ok(())
    }
}

async fn killed_relay_loses_nothing_and_duplicates_no_effect(rig: Rig) {
    const EVENTS: usize = 40;
    const BATCH: i64 = 16;
    let bus = &rig.bus.bus;
    let topic = bus.topic(&unique("outbox"));
    bus.ensure_topics(std::slice::from_ref(&topic))
        .await
        .unwrap();
    for i in 0..EVENTS {
        change_state(
            &rig.producer,
            &event(&topic, &format!("person-{}", i % 4), i),
        )
        .await;
    }

    // Relay A publishes its first batch, then hangs before deleting; we kill it there.
    let (published_tx, published_rx) = tokio::sync::oneshot::channel::<()>();
    let published_tx = Arc::new(std::sync::Mutex::new(Some(published_tx)));
    let doomed = Relay::new(
        rig.producer.clone(),
        rig.bus.clone_bus(),
        OutboxWaker::new(),
        Metrics::disabled(),
    )
    .with_options(RelayOptions {
        batch_size: BATCH,
        ..Default::default()
    })
    .with_after_publish_hook(Arc::new(move || {
        if let Some(tx) = published_tx.lock().unwrap().take() {
            let _ = tx.send(());
        }
        Box::pin(std::future::pending())
    }));
    let doomed = tokio::spawn(async move { doomed.run(CancellationToken::new()).await });
    tokio::time::timeout(WAIT, published_rx)
        .await
        .expect("relay A published")
        .unwrap();
    doomed.abort();
    assert!(doomed.await.unwrap_err().is_cancelled());
    assert_eq!(
        scalar(&rig.producer, "SELECT count(*) FROM outbox").await,
        EVENTS as i64,
        "nothing was marked sent"
    );

    // Relay B starts from what is committed: the first batch goes out again.
    let shutdown = CancellationToken::new();
    let relay = Relay::new(
        rig.producer.clone(),
        rig.bus.clone_bus(),
        OutboxWaker::new(),
        Metrics::disabled(),
    )
    .with_options(RelayOptions {
        batch_size: BATCH,
        ..Default::default()
    });
    let relay = {
        let shutdown = shutdown.clone();
        tokio::spawn(async move { relay.run(shutdown).await })
    };
    let effects = Effects {
        inbox: Inbox::new(
            "effects",
            Transactions::new(rig.consumer.clone(), OutboxWaker::new()),
        ),
        calls: Arc::new(AtomicUsize::new(0)),
    };
    let consumer = {
        let (bus, effects, shutdown) = (rig.bus.clone(), effects.clone(), shutdown.clone());
        let options = ConsumerOptions::new(unique("effects"), vec![topic.clone()]);
        tokio::spawn(async move {
            run_consumer(&bus.bus, &options, &effects, &Metrics::disabled(), shutdown).await
        })
    };

    let on_the_wire = EVENTS + BATCH as usize;
    eventually(
        WAIT,
        "every record, duplicates included, handled",
        || async { (effects.calls.load(Ordering::SeqCst) >= on_the_wire).then_some(()) },
    )
    .await;
    assert_eq!(
        scalar(&rig.consumer, "SELECT count(*) FROM effects").await,
        EVENTS as i64,
        "no duplicate effect"
    );
    assert_eq!(
        scalar(&rig.consumer, "SELECT count(DISTINCT item) FROM effects").await,
        EVENTS as i64,
        "no loss"
    );
    eventually(WAIT, "the outbox to drain", || async {
        (scalar(&rig.producer, "SELECT count(*) FROM outbox").await == 0).then_some(())
    })
    .await;

    // The wire really carried the duplicates the inbox absorbed.
    let mut raw = bus
        .subscribe(&unique("raw"), std::slice::from_ref(&topic))
        .await
        .unwrap();
    let mut ids: HashMap<uuid::Uuid, usize> = HashMap::new();
    for _ in 0..on_the_wire {
        let received = tokio::time::timeout(WAIT, raw.next())
            .await
            .unwrap()
            .unwrap();
        *ids.entry(Event::from_record(&received.record).unwrap().id)
            .or_default() += 1;
    }
    assert_eq!(ids.len(), EVENTS);
    assert_eq!(ids.values().filter(|n| **n == 2).count(), BATCH as usize);

    shutdown.cancel();
    relay.await.unwrap();
    consumer.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_kafka_killed_relay_loses_nothing_and_duplicates_no_effect() {
    killed_relay_loses_nothing_and_duplicates_no_effect(postgres_and_kafka().await).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_in_process_killed_relay_loses_nothing_and_duplicates_no_effect() {
    killed_relay_loses_nothing_and_duplicates_no_effect(sqlite_and_in_process().await).await
}

/// Several relays on one PostgreSQL outbox: each lane is claimed by one relay at
/// a time, so nothing is published twice and no key's events are reordered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_postgres_relays_neither_duplicate_nor_reorder() {
    const EVENTS: usize = 300;
    let rig = postgres_and_kafka().await;
    let bus = &rig.bus.bus;
    let topic = bus.topic(&unique("relays"));
    bus.ensure_topics(std::slice::from_ref(&topic))
        .await
        .unwrap();
    for i in 0..EVENTS {
        change_state(
            &rig.producer,
            &event(&topic, &format!("person-{}", i % 10), i),
        )
        .await;
    }
    let shutdown = CancellationToken::new();
    let relays: Vec<_> = (0..3)
        .map(|_| {
            let relay = Relay::new(
                rig.producer.clone(),
                rig.bus.clone_bus(),
                OutboxWaker::new(),
                Metrics::disabled(),
            )
            .with_options(RelayOptions {
                batch_size: 7,
                ..Default::default()
            });
            let shutdown = shutdown.clone();
            tokio::spawn(async move { relay.run(shutdown).await })
        })
        .collect();

    eventually(WAIT, "the outbox to drain", || async {
        (scalar(&rig.producer, "SELECT count(*) FROM outbox").await == 0).then_some(())
    })
    .await;
    shutdown.cancel();
    for relay in relays {
        relay.await.unwrap();
    }
    // One sentinel per key after everything: a duplicate of a key's event would
    // have to arrive before that key's sentinel.
    const SENTINEL: usize = 1_000_000;
    let sentinels: Vec<Event> = (0..10)
        .map(|k| event(&topic, &format!("person-{k}"), SENTINEL + k))
        .collect();
    common::publish_events(bus, &sentinels).await;

    let mut raw = bus
        .subscribe(&unique("raw"), std::slice::from_ref(&topic))
        .await
        .unwrap();
    let mut seen = BTreeSet::new();
    let mut sentinels_seen = 0;
    let mut last: HashMap<String, usize> = HashMap::new();
    while sentinels_seen < sentinels.len() {
        let received = tokio::time::timeout(WAIT, raw.next())
            .await
            .unwrap()
            .unwrap();
        let event = Event::from_record(&received.record).unwrap();
        let seq = seq_of(&event);
        if let Some(previous) = last.insert(event.key.clone(), seq) {
            assert!(
                previous < seq,
                "key {} reordered: {previous} after {seq}",
                event.key
            );
        }
        if seq >= SENTINEL {
            sentinels_seen += 1;
        } else {
            assert!(seen.insert(seq), "event {seq} published twice");
        }
    }
    assert_eq!(seen, (0..EVENTS).collect::<BTreeSet<_>>());
}
