//! What the platform's benchmarks share: the record count from the command
//! line, a Kafka bus on the test broker under a fresh topic prefix, the
//! sample event they send, and a rate.

use std::time::Duration;
use throughcare_platform::bus::{Bus, Event};
use throughcare_platform::config::{BusBackend, BusConfig, KafkaConfig};
use throughcare_platform::telemetry::Metrics;
use throughcare_platform::testing::{self, unique};
use throughcare_proto::events::v1::ReferralRequested;

/// The first argument that is not a flag, as a record count, or `default`.
pub(crate) fn record_count(default: usize) -> usize {
    std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map_or(default, |a| a.parse().expect("record count"))
}

/// A bus on the test broker with topics of its own, and the broker's config.
pub(crate) async fn kafka_bus() -> (Bus, KafkaConfig) {
    let kafka = testing::kafka_config();
    let bus = Bus::connect(
        &BusConfig {
            topic_prefix: format!("{}.", unique("bench")),
            backend: BusBackend::Kafka(kafka.clone()),
        },
        Metrics::disabled(),
    )
    .await
    .unwrap();
    (bus, kafka)
}

/// Event `i` of a run, over 1,000 keys; `referrer` sets its size.
pub(crate) fn sample_event(topic: &str, i: usize, referrer: &str) -> Event {
    let key = format!("{:032x}", i % 1000);
    Event::new(
        topic,
        key.clone(),
        "/throughcare/bench",
        &ReferralRequested {
            referral_id: uuid::Uuid::now_v7().to_string(),
            person_key: key,
            service: 3,
            referrer: referrer.to_owned(),
            provider: "TP-LEI".into(),
            release_id: uuid::Uuid::now_v7().to_string(),
            requested_at: None,
        },
    )
}

pub(crate) fn rate(records: usize, elapsed: Duration) -> f64 {
    records as f64 / elapsed.as_secs_f64()
}
