//! One contract, two buses: every body below runs against Kafka and against
//! the in-process bus.

use crate::common::{TestBus, WAIT, event, publish_events, seq_of};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use throughcare_platform::bus::{
    Bus, BusError, ConsumerOptions, DeadLetterId, DeadLetterWatch, Event, HandleError, Handler,
    Publisher, Received, Record, ReplayError, Subscriber, Subscription, dead_letter_topic,
    run_consumer,
};
use throughcare_platform::telemetry::Metrics;
use throughcare_platform::testing::unique;
use tokio_util::sync::CancellationToken;

async fn next_event<S: Subscription>(sub: &mut S) -> (Received, Event) {
    let received = tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("a record in time")
        .expect("receive");
    let event = Event::from_record(&received.record).expect("cloudevent");
    (received, event)
}

async fn topic(bus: &Bus) -> String {
    let topic = bus.topic(&unique("contract"));
    bus.ensure_topics(std::slice::from_ref(&topic))
        .await
        .unwrap();
    topic
}

pub async fn delivers_every_record_in_key_order_with_its_headers(bus: TestBus) {
    let bus = &bus.bus;
    let topic = topic(bus).await;
    let keys = ["k-a", "k-b", "k-c", "k-d", "k-e"];
    let events: Vec<Event> = (0..50)
        .map(|i| event(&topic, keys[i % keys.len()], i))
        .collect();
    publish_events(bus, &events).await;

    let mut sub = bus
        .subscribe(&unique("g"), std::slice::from_ref(&topic))
        .await
        .unwrap();
    let mut last_per_key: HashMap<String, usize> = HashMap::new();
    let mut seen = BTreeSet::new();
    for _ in 0..events.len() {
        let (received, got) = next_event(&mut sub).await;
        let original = &events[seq_of(&got)];
        assert_eq!(
            &got, original,
            "event and its cloudevents headers survive the bus"
        );
        assert_eq!(received.record.key, original.key);
        assert_eq!(
            received.record.header_str("content-type"),
            Some("application/protobuf")
        );
        if let Some(previous) = last_per_key.insert(got.key.clone(), seq_of(&got)) {
            assert!(
                previous < seq_of(&got),
                "records of one key arrive in order"
            );
        }
        seen.insert(seq_of(&got));
    }
    assert_eq!(seen.len(), events.len());
}

pub async fn a_new_member_resumes_after_the_last_acknowledged_record(bus: TestBus) {
    let bus = &bus.bus;
    let topic = topic(bus).await;
    let group = unique("g");
    let events: Vec<Event> = (0..10)
        .map(|i| event(&topic, &format!("k{}", i % 3), i))
        .collect();
    publish_events(bus, &events).await;

    let mut first = bus
        .subscribe(&group, std::slice::from_ref(&topic))
        .await
        .unwrap();
    let mut acked = BTreeSet::new();
    let mut unacked = BTreeSet::new();
    for i in 0..events.len() {
        let (received, got) = next_event(&mut first).await;
        if i < 4 {
            first.ack(&received).unwrap();
            acked.insert(seq_of(&got));
        } else {
            unacked.insert(seq_of(&got));
        }
    }
    first.commit().await.unwrap();
    drop(first);

    let sentinel = event(&topic, "k0", 99);
    publish_events(bus, std::slice::from_ref(&sentinel)).await;
    let mut second = bus
        .subscribe(&group, std::slice::from_ref(&topic))
        .await
        .unwrap();
    let mut redelivered = BTreeSet::new();
    while !(redelivered.is_superset(&unacked) && redelivered.contains(&99)) {
        let (_, got) = next_event(&mut second).await;
        assert!(
            !acked.contains(&seq_of(&got)),
            "acknowledged record {} came back",
            seq_of(&got)
        );
        redelivered.insert(seq_of(&got));
    }
}

pub async fn every_group_sees_every_record(bus: TestBus) {
    let bus = &bus.bus;
    let topic = topic(bus).await;
    let events: Vec<Event> = (0..12)
        .map(|i| event(&topic, &format!("k{i}"), i))
        .collect();
    publish_events(bus, &events).await;
    for _ in 0..2 {
        let mut sub = bus
            .subscribe(&unique("g"), std::slice::from_ref(&topic))
            .await
            .unwrap();
        let mut seen = BTreeSet::new();
        for _ in 0..events.len() {
            seen.insert(seq_of(&next_event(&mut sub).await.1));
        }
        assert_eq!(seen, (0..12).collect());
    }
}

pub async fn topics_are_never_created_implicitly(bus: TestBus) {
    let bus = &bus.bus;
    let missing = bus.topic(&unique("never-created"));
    let result = bus.publish(&[event(&missing, "k", 0).to_record()]).await;
    assert!(
        matches!(result, Err(BusError::UnknownTopic(ref t)) if *t == missing),
        "publishing to a missing topic must fail, got {result:?}"
    );
    let existing = topic(bus).await;
    bus.ensure_topics(std::slice::from_ref(&existing))
        .await
        .expect("ensure_topics is idempotent");
    bus.publish(&[event(&existing, "k", 0).to_record()])
        .await
        .unwrap();
}

/// Records what it handled; fails the events whose sequence is in `poison`.
#[derive(Default, Clone)]
struct Recorder {
    handled: Arc<Mutex<Vec<usize>>>,
    attempts: Arc<Mutex<HashMap<usize, u32>>>,
    /// Shared, so a test can fix what failed and replay it.
    poison: Arc<Mutex<BTreeSet<usize>>>,
    /// Calls still to answer "unavailable" (a database down), whatever the event.
    outage: Arc<Mutex<u32>>,
}

impl Handler for Recorder {
    async fn handle(&self, event: &Event) -> Result<(), HandleError> {
        let seq = seq_of(event);
        *self.attempts.lock().unwrap().entry(seq).or_default() += 1;
        {
            let mut outage = self.outage.lock().unwrap();
            if *outage > 0 {
                *outage -= 1;
                return Err(HandleError::Unavailable("database unreachable".into()));
            }
        }
        if self.poison.lock().unwrap().contains(&seq) {
            return Err(HandleError::Transient("downstream unavailable".into()));
        }
        self.handled.lock().unwrap().push(seq);
        Ok(())
    }
}

impl Recorder {
    fn handled(&self) -> Vec<usize> {
        self.handled.lock().unwrap().clone()
    }
}

fn fast_options(topic: &str) -> ConsumerOptions {
    ConsumerOptions {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        ..ConsumerOptions::new(unique("g"), vec![topic.to_owned()])
    }
}

pub async fn failing_records_are_dead_lettered_and_the_partition_moves_on(bus: TestBus) {
    let bus = Arc::new(bus);
    let topic = topic(&bus.bus).await;
    let foreign = Record {
        topic: topic.clone(),
        key: "same-key".into(),
        headers: vec![],
        payload: b"not a cloudevent".to_vec(),
    };
    bus.bus
        .publish(&[event(&topic, "same-key", 0).to_record()])
        .await
        .unwrap();
    bus.bus
        .publish(&[event(&topic, "same-key", 1).to_record(), foreign])
        .await
        .unwrap();
    bus.bus
        .publish(&[event(&topic, "same-key", 2).to_record()])
        .await
        .unwrap();

    let recorder = Recorder {
        poison: Arc::new(Mutex::new([1].into())),
        ..Default::default()
    };
    let options = fast_options(&topic);
    let shutdown = CancellationToken::new();
    let consumer = spawn_consumer(&bus, &options, &recorder, &shutdown);
    throughcare_platform::testing::eventually(WAIT, "records after the poison", || async {
        (recorder.handled() == vec![0, 2]).then_some(())
    })
    .await;
    assert_eq!(recorder.attempts.lock().unwrap()[&1], 3, "bounded retries");

    let mut dead = bus
        .bus
        .subscribe(&unique("dlq-reader"), &[dead_letter_topic(&topic)])
        .await
        .unwrap();
    let (first, _) = next_dead_letter(&mut dead).await;
    let (second, _) = next_dead_letter(&mut dead).await;
    let poisoned = Event::from_record(&first.record).expect("the poisoned event keeps its headers");
    assert_eq!(seq_of(&poisoned), 1);
    assert_eq!(
        first.record.header_str("dlq_reason"),
        Some("after 3 attempts: downstream unavailable")
    );
    assert_eq!(first.record.header_str("dlq_topic"), Some(topic.as_str()));
    assert_eq!(
        first.record.header_str("dlq_group"),
        Some(options.group.as_str())
    );
    assert!(first.record.header_str("dlq_offset").is_some());
    assert_eq!(second.record.payload, b"not a cloudevent");
    assert!(
        second
            .record
            .header_str("dlq_reason")
            .unwrap()
            .starts_with("undecodable")
    );

    shutdown.cancel();
    consumer.await.unwrap().unwrap();
}

/// A dependency down for longer than the retries last (a database restart)
/// holds the partition until it is back: the record is not the one at fault,
/// so it is neither dead-lettered nor overtaken by the key's later records.
pub async fn an_unavailable_dependency_holds_the_partition_until_it_returns(bus: TestBus) {
    let bus = Arc::new(bus);
    let topic = topic(&bus.bus).await;
    let recorder = Recorder {
        outage: Arc::new(Mutex::new(10)),
        ..Default::default()
    };
    let events: Vec<_> = (0..3).map(|i| event(&topic, "same-key", i)).collect();
    publish_events(&bus.bus, &events).await;
    let options = fast_options(&topic);
    let shutdown = CancellationToken::new();
    let consumer = spawn_consumer(&bus, &options, &recorder, &shutdown);
    throughcare_platform::testing::eventually(WAIT, "every record, in order", || async {
        (recorder.handled().len() == 3).then_some(())
    })
    .await;
    assert_eq!(recorder.handled(), vec![0, 1, 2], "nothing skipped ahead");
    assert_eq!(
        recorder.attempts.lock().unwrap()[&0],
        11,
        "waited out the outage beyond the {} attempts a failing record gets",
        options.max_attempts
    );
    shutdown.cancel();
    consumer.await.unwrap().unwrap();
}

/// Runs `recorder` as a member of `options.group` until the token is cancelled.
fn spawn_consumer(
    bus: &Arc<TestBus>,
    options: &ConsumerOptions,
    recorder: &Recorder,
    shutdown: &CancellationToken,
) -> tokio::task::JoinHandle<Result<(), BusError>> {
    let (bus, recorder, options, shutdown) = (
        bus.clone(),
        recorder.clone(),
        options.clone(),
        shutdown.clone(),
    );
    tokio::spawn(async move {
        run_consumer(
            &bus.bus,
            &options,
            &recorder,
            &Metrics::disabled(),
            shutdown,
        )
        .await
    })
}

pub async fn a_dead_letter_is_listed_and_once_fixed_replayed_to_its_group_alone(bus: TestBus) {
    let bus = Arc::new(bus);
    let topic = topic(&bus.bus).await;
    publish_events(
        &bus.bus,
        &(0..3).map(|i| event(&topic, "k", i)).collect::<Vec<_>>(),
    )
    .await;
    // Group `failing` cannot handle record 1 yet; group `other` handles everything.
    let failing = Recorder {
        poison: Arc::new(Mutex::new([1].into())),
        ..Default::default()
    };
    let other = Recorder::default();
    let (failing_options, other_options) = (fast_options(&topic), fast_options(&topic));
    let shutdown = CancellationToken::new();
    let consumers = [
        spawn_consumer(&bus, &failing_options, &failing, &shutdown),
        spawn_consumer(&bus, &other_options, &other, &shutdown),
    ];
    throughcare_platform::testing::eventually(WAIT, "both groups past record 1", || async {
        (failing.handled() == vec![0, 2] && other.handled() == vec![0, 1, 2]).then_some(())
    })
    .await;

    let letters = bus.bus.dead_letters().await.unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = &letters[0];
    assert_eq!(letter.id.topic, dead_letter_topic(&topic));
    assert_eq!(letter.topic, topic);
    assert_eq!(letter.group, failing_options.group);
    assert_eq!(
        letter.event_type.as_deref(),
        Some("throughcare.events.v1.ReleaseReversed")
    );
    assert_eq!(letter.reason, "after 3 attempts: downstream unavailable");
    assert!(letter.at.is_some() && letter.offset.is_some() && letter.replayed_at.is_none());
    // What a service's dead-letter watch counts for each group.
    let waiting = |group: &str| {
        let watch = DeadLetterWatch::new(bus.bus.clone(), Metrics::disabled());
        watch.add(group, std::slice::from_ref(&topic));
        async move { watch.scan().await.unwrap() }
    };
    assert_eq!(waiting(&failing_options.group).await, 1);
    assert_eq!(waiting(&other_options.group).await, 0);

    // The fix, then the replay: the failing group applies record 1 once; the
    // other group, which had it already, never sees it again.
    failing.poison.lock().unwrap().clear();
    let replayed = bus.bus.replay_dead_letter(&letter.id).await.unwrap();
    assert!(replayed.replayed_at.is_some());
    publish_events(&bus.bus, &[event(&topic, "k", 3)]).await;
    throughcare_platform::testing::eventually(WAIT, "the replay and record 3", || async {
        (failing.handled() == vec![0, 2, 1, 3] && other.handled() == vec![0, 1, 2, 3]).then_some(())
    })
    .await;
    assert_eq!(waiting(&failing_options.group).await, 0);
    let letters = bus.bus.dead_letters().await.unwrap();
    assert_eq!(letters.len(), 1, "the replay marker is not a dead letter");
    assert!(letters[0].replayed_at.is_some());
    assert!(matches!(
        bus.bus.replay_dead_letter(&letter.id).await,
        Err(ReplayError::AlreadyReplayed { .. })
    ));
    let unknown = DeadLetterId {
        offset: letter.id.offset + 100,
        ..letter.id.clone()
    };
    assert!(matches!(
        bus.bus.replay_dead_letter(&unknown).await,
        Err(ReplayError::NotFound(_))
    ));

    shutdown.cancel();
    for consumer in consumers {
        consumer.await.unwrap().unwrap();
    }
}

async fn next_dead_letter<S: Subscription>(sub: &mut S) -> (Received, ()) {
    let received = tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("dead letter")
        .unwrap();
    (received, ())
}

pub async fn a_restarted_consumer_continues_where_it_stopped(bus: TestBus) {
    let bus = Arc::new(bus);
    let topic = topic(&bus.bus).await;
    let options = fast_options(&topic);
    let first_half: Vec<Event> = (0..5).map(|i| event(&topic, "k", i)).collect();
    publish_events(&bus.bus, &first_half).await;

    for (round, expected) in [(0, (0..5).collect::<Vec<_>>()), (1, (5..10).collect())] {
        if round == 1 {
            let second_half: Vec<Event> = (5..10).map(|i| event(&topic, "k", i)).collect();
            publish_events(&bus.bus, &second_half).await;
        }
        let recorder = Recorder::default();
        let shutdown = CancellationToken::new();
        let consumer = spawn_consumer(&bus, &options, &recorder, &shutdown);
        throughcare_platform::testing::eventually(WAIT, "this round's records", || async {
            (recorder.handled().len() >= expected.len()).then_some(())
        })
        .await;
        shutdown.cancel();
        consumer.await.unwrap().unwrap();
        assert_eq!(
            recorder.handled(),
            expected,
            "round {round} handles only what is new"
        );
    }
}

/// A replay reads everything from offset zero up to where the topic ended
/// when it started, in key order, whatever any group has consumed.
pub async fn a_replay_reads_the_log_from_offset_zero_to_its_end(bus: TestBus) {
    let bus = &bus.bus;
    let empty = topic(bus).await;
    let topic = topic(bus).await;
    let keys = ["k-a", "k-b", "k-c"];
    let events: Vec<Event> = (0..30)
        .map(|i| event(&topic, keys[i % keys.len()], i))
        .collect();
    publish_events(bus, &events).await;
    // A group that has consumed and committed everything changes nothing.
    let mut sub = bus
        .subscribe(&unique("g"), std::slice::from_ref(&topic))
        .await
        .unwrap();
    for _ in 0..events.len() {
        let (received, _) = next_event(&mut sub).await;
        sub.ack(&received).unwrap();
    }
    sub.commit().await.unwrap();
    drop(sub);

    let mut replay = bus.replay(&topic).await.unwrap();
    publish_events(bus, &[event(&topic, "k-a", 30)]).await;
    let mut seen = Vec::new();
    let mut last_per_key: HashMap<String, usize> = HashMap::new();
    while let Some(received) = tokio::time::timeout(WAIT, replay.next())
        .await
        .expect("replay makes progress")
        .unwrap()
    {
        let seq = seq_of(&Event::from_record(&received.record).unwrap());
        if let Some(previous) = last_per_key.insert(received.record.key.clone(), seq) {
            assert!(previous < seq, "records of one key replay in order");
        }
        seen.push(seq);
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        (0..events.len()).collect::<Vec<_>>(),
        "every record before the replay began, once, and nothing after"
    );

    let mut replay = bus.replay(&empty).await.unwrap();
    assert!(
        replay.next().await.unwrap().is_none(),
        "an empty topic ends at once"
    );
    assert!(matches!(
        bus.replay(&bus.topic(&unique("missing"))).await,
        Err(BusError::UnknownTopic(_))
    ));
}

macro_rules! contract {
    ($($test:ident),* $(,)?) => {
        mod kafka {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(crate::common::kafka_bus().await).await
                }
            )*
        }
        mod in_process {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(crate::common::in_process_bus().await).await
                }
            )*
        }
    };
}

contract!(
    delivers_every_record_in_key_order_with_its_headers,
    a_new_member_resumes_after_the_last_acknowledged_record,
    every_group_sees_every_record,
    topics_are_never_created_implicitly,
    failing_records_are_dead_lettered_and_the_partition_moves_on,
    an_unavailable_dependency_holds_the_partition_until_it_returns,
    a_dead_letter_is_listed_and_once_fixed_replayed_to_its_group_alone,
    a_restarted_consumer_continues_where_it_stopped,
    a_replay_reads_the_log_from_offset_zero_to_its_end,
);

/// The embedded bus is durable: records and group positions survive reopening.
#[tokio::test]
async fn in_process_log_survives_reopening() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("bus.db");
    let open = || async {
        let config = throughcare_platform::config::BusConfig {
            topic_prefix: String::new(),
            backend: throughcare_platform::config::BusBackend::InProcess {
                path: Some(path.clone()),
            },
        };
        Bus::connect(&config, Metrics::disabled()).await.unwrap()
    };
    let topic = "durable".to_owned();
    {
        let bus = open().await;
        bus.ensure_topics(std::slice::from_ref(&topic))
            .await
            .unwrap();
        publish_events(
            &bus,
            &(0..3).map(|i| event(&topic, "k", i)).collect::<Vec<_>>(),
        )
        .await;
        let mut sub = bus
            .subscribe("g", std::slice::from_ref(&topic))
            .await
            .unwrap();
        let (received, _) = next_event(&mut sub).await;
        sub.ack(&received).unwrap();
        sub.commit().await.unwrap();
    }
    let bus = open().await;
    let mut sub = bus
        .subscribe("g", std::slice::from_ref(&topic))
        .await
        .unwrap();
    assert_eq!(seq_of(&next_event(&mut sub).await.1), 1);
    let mut replay = bus
        .subscribe("from-zero", std::slice::from_ref(&topic))
        .await
        .unwrap();
    assert_eq!(seq_of(&next_event(&mut replay).await.1), 0);
}

/// The topics a service is rebuilt from are created to keep every record;
/// the rest keep the broker's default (so sealed health records age out).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_topics_are_created_with_unlimited_retention() {
    use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
    use rdkafka::client::DefaultClientContext;
    use throughcare_platform::bus::Retention;
    use throughcare_proto::topics;

    let test = crate::common::kafka_bus().await;
    let bus = &test.bus;
    let log = bus.topic(topics::OBSERVATIONS);
    let events = bus.topic(topics::REFERRALS_EVENTS);
    bus.ensure_topics_with(&[
        (log.clone(), Retention::Forever),
        (events.clone(), Retention::BrokerDefault),
    ])
    .await
    .unwrap();

    let admin: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
        .set(
            "bootstrap.servers",
            throughcare_platform::testing::kafka_config().brokers,
        )
        .create()
        .unwrap();
    let described = admin
        .describe_configs(
            &[
                ResourceSpecifier::Topic(&log),
                ResourceSpecifier::Topic(&events),
            ],
            &AdminOptions::new(),
        )
        .await
        .unwrap();
    let retention: Vec<Option<String>> = described
        .into_iter()
        .map(|resource| {
            let resource = resource.expect("the topic's configuration");
            resource
                .get("retention.ms")
                .and_then(|entry| entry.value.clone())
        })
        .collect();
    assert_eq!(retention[0].as_deref(), Some("-1"), "{log}");
    assert_ne!(retention[1].as_deref(), Some("-1"), "{events}");
}
