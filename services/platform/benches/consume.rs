//! The project's consume paths against a bare rdkafka consumer, on the same
//! topic of the same broker, in one run: how close the bus reads to the
//! broker's own fetch rate. Prints figures; asserts no times. The bare
//! consumer's time starts once its partitions are assigned; the replay's
//! includes its metadata and watermark probe, the consume loop's its group
//! join.
//! Run with `tests/bench.sh consume [records]`.

mod common;

use common::{kafka_bus, rate, record_count, sample_event};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use throughcare_platform::bus::{
    Bus, ConsumerOptions, Event, HandleError, Handler, Publisher, run_consumer,
};
use throughcare_platform::telemetry::Metrics;
use throughcare_platform::testing::unique;
use tokio_util::sync::CancellationToken;

/// A bare consumer: every partition assigned from offset zero, defaults
/// otherwise, each record read and dropped.
async fn bare(brokers: &str, topic: &str, partitions: i32, records: usize) -> Duration {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique("bare"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment
            .add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let started = Instant::now();
    for _ in 0..records {
        consumer.recv().await.expect("record");
    }
    started.elapsed()
}

/// `Bus::replay`: what a rebuild from the log reads through.
async fn replay(bus: &Bus, topic: &str) -> (usize, Duration) {
    let started = Instant::now();
    let mut replay = bus.replay(topic).await.unwrap();
    let mut read = 0;
    while replay.next().await.unwrap().is_some() {
        read += 1;
    }
    (read, started.elapsed())
}

#[derive(Clone, Default)]
struct Count(Arc<AtomicUsize>);

impl Handler for Count {
    async fn handle(&self, _event: &Event) -> Result<(), HandleError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// The live consume loop (`run_consumer`: decode, span, ack) with a handler
/// that does nothing, as a fresh group from offset zero.
async fn live(bus: &Bus, topic: &str, records: usize) -> Duration {
    let count = Count::default();
    let shutdown = CancellationToken::new();
    let options = ConsumerOptions::new(unique("live"), vec![topic.to_owned()]);
    let consumer = {
        let (bus, count, shutdown) = (bus.clone(), count.clone(), shutdown.clone());
        tokio::spawn(async move {
            run_consumer(&bus, &options, &count, &Metrics::disabled(), shutdown).await
        })
    };
    let started = Instant::now();
    while count.0.load(Ordering::Relaxed) < records {
        // A consumer that stopped (its error is below) or stalled ends the wait.
        if consumer.is_finished() || started.elapsed() > Duration::from_secs(1_800) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    shutdown.cancel();
    consumer.await.unwrap().unwrap();
    assert!(
        count.0.load(Ordering::Relaxed) >= records,
        "the consume loop read every record in time"
    );
    elapsed
}

#[tokio::main]
async fn main() {
    let records = record_count(20_000);
    let (bus, kafka) = kafka_bus().await;
    // About the size of an observations record (~870 bytes with headers).
    let referrer = "x".repeat(500);
    let topic = bus.topic("consume");
    bus.ensure_topics(std::slice::from_ref(&topic))
        .await
        .unwrap();
    let size = sample_event(&topic, 0, &referrer).to_record().payload.len();
    println!(
        "throughcare consume benchmark: {records} records of ~{size} bytes, {} partitions",
        kafka.partitions
    );
    let produced = Instant::now();
    let events: Vec<_> = (0..records)
        .map(|i| sample_event(&topic, i, &referrer).to_record())
        .collect();
    for batch in events.chunks(1_000) {
        bus.publish(batch).await.unwrap();
    }
    println!(
        "  produce                                {:>8.0} records/s",
        rate(records, produced.elapsed())
    );

    // Each path twice, in mirrored order (A B C C B A), on the same topic:
    // the broker's fetch rate drifts over a run, and this shows by how much.
    let mut times: Vec<(&str, Vec<Duration>)> = vec![
        ("bare rdkafka consumer, offset zero", vec![]),
        ("Bus::replay (rebuild from the log)", vec![]),
        ("run_consumer, no-op handler", vec![]),
    ];
    for path in [0, 1, 2, 2, 1, 0] {
        let elapsed = match path {
            0 => bare(&kafka.brokers, &topic, kafka.partitions, records).await,
            1 => {
                let (read, elapsed) = replay(&bus, &topic).await;
                assert_eq!(read, records, "the replay reads every record");
                elapsed
            }
            _ => live(&bus, &topic, records).await,
        };
        times[path].1.push(elapsed);
    }
    let mean = |ts: &[Duration]| ts.iter().sum::<Duration>() / ts.len() as u32;
    let bare_rate = rate(records, mean(&times[0].1));
    for (name, runs) in &times {
        let r = rate(records, mean(runs));
        let each: Vec<String> = runs
            .iter()
            .map(|t| format!("{:.0}", rate(records, *t)))
            .collect();
        println!(
            "  {name:<38} {r:>8.0} records/s (runs: {})  {:.2}x bare",
            each.join(", "),
            r / bare_rate
        );
    }
}
