use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Gauge, Histogram, Meter, MeterProvider as _};
use opentelemetry_sdk::metrics::SdkMeterProvider;
use std::sync::Arc;
use std::time::Duration;

/// The platform's instruments. Cheap to clone; passed down explicitly rather
/// than fetched from a global. Attributes are methods, topics, partitions and
/// consumer groups only.
#[derive(Clone, Debug)]
pub struct Metrics {
    inner: Arc<Instruments>,
}

#[derive(Debug)]
struct Instruments {
    rpc_duration: Histogram<f64>,
    outbox_pending: Gauge<u64>,
    outbox_oldest_age: Gauge<f64>,
    outbox_published: Counter<u64>,
    consumer_lag: Gauge<i64>,
    consumer_processed: Counter<u64>,
    consumer_dead_lettered: Counter<u64>,
    dead_letters_unreplayed: Gauge<u64>,
}

impl Metrics {
    pub fn new(provider: &SdkMeterProvider) -> Self {
        Self::from_meter(&provider.meter("throughcare"))
    }

    /// Instruments that record nowhere (for code paths exercised without telemetry).
    pub fn disabled() -> Self {
        Self::new(&SdkMeterProvider::builder().build())
    }

    fn from_meter(meter: &Meter) -> Self {
        Self {
            inner: Arc::new(Instruments {
                rpc_duration: meter
                    .f64_histogram("rpc.server.duration")
                    .with_unit("ms")
                    .with_description("gRPC server latency to response headers")
                    .build(),
                outbox_pending: meter
                    .u64_gauge("outbox.pending")
                    .with_description("outbox rows not yet published")
                    .build(),
                outbox_oldest_age: meter
                    .f64_gauge("outbox.lag")
                    .with_unit("s")
                    .with_description("age of the oldest unpublished outbox row")
                    .build(),
                outbox_published: meter
                    .u64_counter("outbox.published")
                    .with_description("outbox rows published to the bus")
                    .build(),
                consumer_lag: meter
                    .i64_gauge("consumer.lag")
                    .with_description("records behind the end of the partition")
                    .build(),
                consumer_processed: meter
                    .u64_counter("consumer.processed")
                    .with_description("records handled and acknowledged")
                    .build(),
                consumer_dead_lettered: meter
                    .u64_counter("consumer.dead_lettered")
                    .with_description("records sent to a dead-letter topic")
                    .build(),
                dead_letters_unreplayed: meter
                    .u64_gauge("consumer.dead_letters.unreplayed")
                    .with_description("dead letters of a consumer group not yet replayed")
                    .build(),
            }),
        }
    }

    pub fn record_rpc(&self, method: &str, status: &str, elapsed: Duration) {
        self.inner.rpc_duration.record(
            elapsed.as_secs_f64() * 1000.0,
            &[
                KeyValue::new("rpc.method", method.to_owned()),
                KeyValue::new("rpc.grpc.status_code", status.to_owned()),
            ],
        );
    }

    pub fn record_outbox(&self, pending: u64, oldest_age: Duration) {
        self.inner.outbox_pending.record(pending, &[]);
        self.inner
            .outbox_oldest_age
            .record(oldest_age.as_secs_f64(), &[]);
    }

    pub fn outbox_published(&self, count: u64) {
        self.inner.outbox_published.add(count, &[]);
    }

    pub fn record_consumer_lag(&self, group: &str, topic: &str, partition: i32, lag: i64) {
        self.inner.consumer_lag.record(
            lag,
            &[
                KeyValue::new("consumer.group", group.to_owned()),
                KeyValue::new("topic", topic.to_owned()),
                KeyValue::new("partition", i64::from(partition)),
            ],
        );
    }

    pub fn consumer_processed(&self, group: &str, topic: &str) {
        self.inner.consumer_processed.add(
            1,
            &[
                KeyValue::new("consumer.group", group.to_owned()),
                KeyValue::new("topic", topic.to_owned()),
            ],
        );
    }

    pub fn consumer_dead_lettered(&self, group: &str, topic: &str) {
        self.inner.consumer_dead_lettered.add(
            1,
            &[
                KeyValue::new("consumer.group", group.to_owned()),
                KeyValue::new("topic", topic.to_owned()),
            ],
        );
    }

    pub fn dead_letters_unreplayed(&self, group: &str, count: u64) {
        self.inner
            .dead_letters_unreplayed
            .record(count, &[KeyValue::new("consumer.group", group.to_owned())]);
    }
}
