use std::time::Duration;
use tempfile::TempDir;
use throughcare_platform::bus::{Bus, Event, Publisher};
use throughcare_platform::config::{BusBackend, BusConfig};
use throughcare_platform::telemetry::Metrics;
use throughcare_platform::testing;
use throughcare_proto::events::v1::ReleaseReversed;

pub const WAIT: Duration = Duration::from_secs(60);

/// A bus for one test, with its own topic namespace.
pub struct TestBus {
    pub bus: Bus,
    _dir: Option<TempDir>,
}

impl TestBus {
    pub fn clone_bus(&self) -> Bus {
        self.bus.clone()
    }
}

pub async fn kafka_bus() -> TestBus {
    kafka_bus_with(Metrics::disabled()).await
}

pub async fn kafka_bus_with(metrics: Metrics) -> TestBus {
    let mut kafka = testing::kafka_config();
    // Fail fast when producing to a topic that does not exist.
    kafka
        .properties
        .insert("topic.metadata.propagation.max.ms".into(), "2000".into());
    let config = BusConfig {
        topic_prefix: format!("{}.", testing::unique("t")),
        backend: BusBackend::Kafka(kafka),
    };
    TestBus {
        bus: Bus::connect(&config, metrics).await.expect("kafka bus"),
        _dir: None,
    }
}

pub async fn in_process_bus() -> TestBus {
    let dir = TempDir::new().unwrap();
    let config = BusConfig {
        topic_prefix: String::new(),
        backend: BusBackend::InProcess {
            path: Some(dir.path().join("bus.db")),
        },
    };
    TestBus {
        bus: Bus::connect(&config, Metrics::disabled())
            .await
            .expect("in-process bus"),
        _dir: Some(dir),
    }
}

/// A small event whose payload carries `seq`, keyed by `key`.
pub fn event(topic: &str, key: &str, seq: usize) -> Event {
    Event::new(
        topic,
        key,
        "/throughcare/test",
        &ReleaseReversed {
            release_id: seq.to_string(),
            person_key: key.to_owned(),
            ..Default::default()
        },
    )
}

pub fn seq_of(event: &Event) -> usize {
    event
        .decode::<ReleaseReversed>()
        .unwrap()
        .release_id
        .parse()
        .unwrap()
}

pub async fn publish_events(bus: &Bus, events: &[Event]) {
    let records: Vec<_> = events.iter().map(Event::to_record).collect();
    bus.publish(&records).await.expect("publish");
}
