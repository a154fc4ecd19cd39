//! Raw rdkafka produce rate against the outbox relay's end-to-end publish rate,
//! on the same broker and database, in one run. Prints figures; asserts nothing.
//! Run with `tests/bench.sh relay [records]`.

mod common;

use common::{kafka_bus, rate, record_count, sample_event};
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::time::{Duration, Instant};
use throughcare_platform::bus::Bus;
use throughcare_platform::db::{Db, Migrations};
use throughcare_platform::outbox::{OutboxWaker, Relay, RelayOptions};
use throughcare_platform::telemetry::Metrics;
use throughcare_platform::testing::fresh_postgres;
use throughcare_platform::work::Transactions;
use tokio_util::sync::CancellationToken;

static NONE: sqlx::migrate::Migrator = sqlx::migrate::Migrator::DEFAULT;

/// The relay's records: a referral request's size.
const REFERRER: &str = "EMR-LEI";

async fn raw_produce(brokers: &str, topic: &str, records: usize) -> Duration {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "2")
        .create()
        .expect("producer");
    let events: Vec<_> = (0..records)
        .map(|i| sample_event(topic, i, REFERRER).to_record())
        .collect();
    let started = Instant::now();
    let mut deliveries = Vec::with_capacity(records);
    for record in &events {
        let headers = record
            .headers
            .iter()
            .fold(OwnedHeaders::new(), |h, (k, v)| {
                h.insert(Header {
                    key: k,
                    value: Some(v),
                })
            });
        let mut pending = FutureRecord::to(&record.topic)
            .key(&record.key)
            .payload(&record.payload)
            .headers(headers);
        loop {
            match producer.send_result(pending) {
                Ok(delivery) => break deliveries.push(delivery),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    pending = back;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err((e, _)) => panic!("produce: {e}"),
            }
        }
    }
    for delivery in deliveries {
        delivery.await.expect("delivered").expect("acknowledged");
    }
    started.elapsed()
}

async fn outbox_relay(db: &Db, bus: &Bus, topic: &str, records: usize) -> (Duration, Duration) {
    let Db::Postgres(pool) = db else {
        unreachable!()
    };
    let transactions = Transactions::new(db.clone(), OutboxWaker::new());
    let started = Instant::now();
    for chunk in (0..records).collect::<Vec<_>>().chunks(100) {
        let mut work = transactions.begin().await.unwrap();
        for i in chunk {
            work.publish(sample_event(topic, *i, REFERRER));
        }
        work.commit().await.unwrap();
    }
    let enqueued = started.elapsed();

    let shutdown = CancellationToken::new();
    let relay = Relay::new(
        db.clone(),
        bus.clone(),
        OutboxWaker::new(),
        Metrics::disabled(),
    )
    .with_options(RelayOptions {
        batch_size: 1000,
        poll_interval: Duration::from_millis(5),
    });
    let started = Instant::now();
    let task = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { relay.run(shutdown).await }
    });
    loop {
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
            .fetch_one(pool)
            .await
            .unwrap();
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let drained = started.elapsed();
    shutdown.cancel();
    task.await.unwrap();
    (enqueued, drained)
}

#[tokio::main]
async fn main() {
    let records = record_count(50_000);
    let (bus, kafka) = kafka_bus().await;
    let (raw_topic, relay_topic) = (bus.topic("raw"), bus.topic("relay"));
    bus.ensure_topics(&[raw_topic.clone(), relay_topic.clone()])
        .await
        .unwrap();
    let db = Db::connect(
        &fresh_postgres().await,
        8,
        Migrations {
            postgres: &NONE,
            sqlite: &NONE,
        },
    )
    .await
    .unwrap();

    println!(
        "throughcare relay benchmark: {records} records of ~{} bytes, 1000 keys",
        sample_event("t", 0, REFERRER).payload.len()
    );
    let raw = raw_produce(&kafka.brokers, &raw_topic, records).await;
    let (enqueued, relayed) = outbox_relay(&db, &bus, &relay_topic, records).await;
    let (raw_rate, relay_rate) = (rate(records, raw), rate(records, relayed));
    println!(
        "  raw rdkafka produce (idempotent, acks=all)  {raw_rate:>10.0} records/s  ({raw:.2?})"
    );
    println!(
        "  outbox enqueue (100 per transaction)        {:>10.0} records/s  ({enqueued:.2?})",
        rate(records, enqueued)
    );
    println!(
        "  outbox relay, committed row -> acked record {relay_rate:>10.0} records/s  ({relayed:.2?})"
    );
    println!(
        "  relay / raw                                 {:>10.2}",
        relay_rate / raw_rate
    );
}
