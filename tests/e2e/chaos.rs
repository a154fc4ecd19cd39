//! The split deployment under faults. The three services run as separate
//! processes on PostgreSQL and a broker of their own, each reached through a
//! TCP fault proxy, while concurrent callers record consents, notify and
//! reverse releases and ask for disclosures, retrying what is not
//! acknowledged with the same idempotency key as real systems do. A schedule
//! meanwhile SIGKILLs each service, SIGKILLs the broker, takes PostgreSQL
//! away and back, and cuts and stalls connections mid-stream. At the end every
//! effect is counted against what was acknowledged: nothing lost, nothing
//! twice, each person's events in the order they happened, the audit chain
//! intact, nothing dead-lettered.
//!
//! A short schedule runs with the suite; `tests/bench.sh chaos` runs a long
//! one (`THROUGHCARE_CHAOS_EVENTS`, `THROUGHCARE_CHAOS_ROUNDS`).

use crate::faults::{Broker, Proxy};
use crate::journey::{consent_request, release_request, valid_nhs_number};
use crate::split::{Running, Split};
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use throughcare_platform::bus::{Bus, Event};
use throughcare_platform::grpc::Bearer;
use throughcare_platform::testing::{POSTGRES_ENV, fresh_postgres};
use throughcare_proto::events::v1::{
    ConsentRecorded, DisclosureMade, ReleaseNotified, ReleaseReversed,
};
use throughcare_proto::referrals::v1 as referrals;
use throughcare_proto::referrals::v1::transitions_service_client::TransitionsServiceClient;
use throughcare_proto::sharing::v1 as sharing;
use throughcare_proto::sharing::v1::audit_service_client::AuditServiceClient;
use throughcare_proto::sharing::v1::consent_service_client::ConsentServiceClient;
use throughcare_proto::sharing::v1::disclosure_service_client::DisclosureServiceClient;
use throughcare_proto::topics;
use throughcare_proto::types::v1 as types;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// Every fault a round injects, in the order it does
/// (`THROUGHCARE_CHAOS_FAULTS` picks fewer).
const FAULTS: [&str; 6] = [
    "broker-cut",
    "service-kill",
    "postgres-outage",
    "broker-stall",
    "broker-kill",
    "postgres-cut",
];

/// How long one call may take before the caller gives up on it and retries.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// How long an operation may go unacknowledged across its retries.
const GIVE_UP_AFTER: Duration = Duration::from_secs(300);

#[tokio::test]
async fn nothing_acknowledged_is_lost_or_doubled_through_crashes_and_cut_connections() {
    let events = setting("THROUGHCARE_CHAOS_EVENTS", 240);
    let rounds = setting("THROUGHCARE_CHAOS_ROUNDS", 1);
    // People a second. Far above it (60 a second) the test broker itself gives
    // way: tansu 0.6.0's SQLite engine panics in its idempotent-producer check
    // ("more or less than one row", tansu-storage lite.rs) and answers nothing
    // after, which no client can mend.
    let rate = setting("THROUGHCARE_CHAOS_RATE", 10);
    let report = Chaos::start().await.run(events, rounds, rate).await;
    eprintln!("{report}");
    report.assert_clean();
}

fn setting(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v} is not a number"))
        })
        .unwrap_or(default)
}

/// The deployment under test and its fault points.
struct Chaos {
    broker: Broker,
    database: Proxy,
    split: Split,
    services: Vec<Running>,
}

impl Chaos {
    async fn start() -> Self {
        let broker = Broker::start().await;
        let database = Proxy::start(postgres_address()).await;
        // Two partitions a topic: enough to interleave people, few enough
        // for the test broker's fetch rate.
        let split =
            Split::with_brokers(broker.address()).with_env("THROUGHCARE_BUS__PARTITIONS", "2");
        let mut services = Vec::new();
        for service in ["referrals", "sharing", "indicators"] {
            let url = through(&database, &fresh_postgres().await);
            services.push(split.spawn(service, url).await);
        }
        Self {
            broker,
            database,
            split,
            services,
        }
    }

    fn endpoint(&self, service: usize) -> String {
        self.services[service].endpoint.clone()
    }

    /// Drives the load while the schedule runs `rounds` times, then waits for
    /// the deployment to settle and counts.
    async fn run(mut self, events: u32, rounds: u32, rate: u32) -> Report {
        let feed = Feed::watch(&self.endpoint(1));
        let mut load = Load::start(&self.endpoint(0), &self.endpoint(1), events, rate);
        // The rounds spread over the run: round n starts once (n-1)/rounds
        // of the operations were sent.
        for round in 1..=rounds {
            let due = u64::from(events) * u64::from(round - 1) / u64::from(rounds);
            while u64::from(load.sent.load(Ordering::SeqCst)) < due {
                load.check();
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            self.round(round).await;
        }
        load.faults_over.store(true, Ordering::SeqCst);
        let ledger = load.finish().await;
        self.count(ledger, feed).await
    }

    /// One of each fault, a few seconds apart, with the load running.
    async fn round(&mut self, round: u32) {
        let gap = Duration::from_secs(2);
        let faults = std::env::var("THROUGHCARE_CHAOS_FAULTS").unwrap_or_else(|_| FAULTS.join(","));
        let step = |name: &str, what: &str| {
            assert!(FAULTS.contains(&name));
            let on = faults.split(',').any(|s| s.trim() == name);
            eprintln!(
                "chaos round {round}: {what}{}",
                if on { "" } else { " (skipped)" }
            );
            on
        };
        tokio::time::sleep(gap).await;
        if step("broker-cut", "broker connections cut") {
            self.broker.proxy.cut();
        }
        tokio::time::sleep(gap).await;
        for service in 0..self.services.len() {
            let name = self.services[service].process.name.clone();
            if step("service-kill", &format!("SIGKILL {name}, started again")) {
                self.kill_and_restart(service).await;
            }
            tokio::time::sleep(gap).await;
        }
        if step(
            "postgres-outage",
            "PostgreSQL down for 2 s (every connection reset, new ones refused)",
        ) {
            self.database.outage(Duration::from_secs(2)).await;
        }
        tokio::time::sleep(gap).await;
        if step("broker-stall", "broker stalled for 3 s") {
            self.broker.proxy.stall(Duration::from_secs(3)).await;
        }
        tokio::time::sleep(gap).await;
        if step("broker-kill", "SIGKILL the broker, started again after 1 s") {
            self.broker.kill();
            tokio::time::sleep(Duration::from_secs(1)).await;
            self.broker.run().await;
        }
        tokio::time::sleep(gap).await;
        if step("postgres-cut", "database connections cut mid-stream") {
            self.database.cut();
        }
        tokio::time::sleep(gap).await;
    }

    async fn kill_and_restart(&mut self, service: usize) {
        let placeholder = self.services.remove(service);
        let mut stopped = placeholder;
        stopped.kill();
        let restarted = self.split.restart(stopped).await;
        self.services.insert(service, restarted);
    }

    /// Waits until every acknowledged effect can have happened, then counts.
    async fn count(mut self, ledger: Ledger, feed: Feed) -> Report {
        let national = crate::split::TOKEN.to_owned();
        let prison = token("LEI", "system");
        let mut report = Report::new(&ledger);
        let phase = |what: &str| eprintln!("chaos: counting {what}");

        phase("releases as referrals holds them");
        let transitions = TransitionsServiceClient::new(authed(&self.endpoint(0), &prison));
        let mut stored = BTreeMap::new();
        for person in ledger.people.values() {
            let Some(release_id) = person.release_ids.first() else {
                continue;
            };
            let found = answered(|| {
                let mut client = transitions.clone();
                let request = referrals::GetReleaseRequest {
                    release_id: release_id.clone(),
                };
                async move { client.get_release(request).await }
            })
            .await;
            let state = match found {
                Ok(found) => Some(found.release.expect("a release").state),
                Err(status) if status.code() == Code::NotFound => None,
                Err(status) => panic!("reading a release: {status:?}"),
            };
            stored.insert(release_id.clone(), state);
        }

        if let Some(why) = self.broker.exited() {
            panic!("the broker itself failed under the faults: {why}");
        }
        phase("what the services published");
        let bus = self.bus().await;
        let broker_failed = |e: String| -> Vec<Event> {
            panic!("{e}\nthe broker's output:\n{}", self.broker.logs())
        };
        // The relays publish what was committed, at least once: wait until
        // every acknowledged release and consent is on the bus, then count.
        let deadline = Instant::now() + Duration::from_secs(180);
        let (referral_events, sharing_events) = loop {
            let referral_events = published(&bus, topics::REFERRALS_EVENTS)
                .await
                .unwrap_or_else(broker_failed);
            let sharing_events = published(&bus, topics::SHARING_EVENTS)
                .await
                .unwrap_or_else(broker_failed);
            let notified = subjects::<ReleaseNotified>(&referral_events, |e| e.release_id);
            let consents = subjects::<ConsentRecorded>(&sharing_events, |e| e.consent_id);
            let all = ledger.people.values().all(|p| {
                p.release_ids.iter().all(|id| notified.contains_key(id))
                    && p.consent_ids.iter().all(|id| consents.contains_key(id))
            });
            if all || Instant::now() > deadline {
                break (referral_events, sharing_events);
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        };
        let notified = subjects::<ReleaseNotified>(&referral_events, |e| e.release_id);
        let reversed = subjects::<ReleaseReversed>(&referral_events, |e| e.release_id);
        let consents = subjects::<ConsentRecorded>(&sharing_events, |e| e.consent_id);
        let disclosures = subjects::<DisclosureMade>(&sharing_events, |e| e.disclosure_id);
        let mut out_of_order = 0;
        let mut seen_notified = std::collections::BTreeSet::new();
        for event in &referral_events {
            if event.is::<ReleaseNotified>() {
                seen_notified.insert(event.decode::<ReleaseNotified>().unwrap().release_id);
            } else if event.is::<ReleaseReversed>() {
                let id = event.decode::<ReleaseReversed>().unwrap().release_id;
                out_of_order += u32::from(!seen_notified.contains(&id));
            }
        }
        report.row("reversal").out_of_order += out_of_order;
        report.redelivered = [&referral_events, &sharing_events]
            .into_iter()
            .map(|events| {
                let ids: std::collections::BTreeSet<_> = events.iter().map(|e| e.id).collect();
                events.len() - ids.len()
            })
            .sum();

        for person in ledger.people.values() {
            // A release counts as kept when referrals holds it and published
            // it; as lost when either is missing.
            if let Some(id) = person.release_ids.first() {
                let state = stored.get(id).copied().flatten();
                let is_reversed = state == Some(referrals::ReleaseState::Reversed as i32);
                report.kept("release", state.is_some(), notified.get(id).copied());
                if person.reversed {
                    report.kept("reversal", is_reversed, reversed.get(id).copied());
                } else if is_reversed || reversed.contains_key(id) {
                    // Reversed, though no one asked: an effect never acknowledged.
                    report.row("reversal").duplicated += 1;
                }
            }
            // Published in the unit of work that stored it: on the bus is stored.
            let published = report.published("consent", &consents, &person.consent_ids);
            report.row("consent").stored += u32::from(published);
            for id in &person.disclosure_ids {
                let name = "disclosure request";
                let published = report.published(name, &disclosures, std::slice::from_ref(id));
                report.row(name).stored += u32::from(published);
            }
        }
        // A retry whose first attempt committed unseen would have made a
        // second release or consent under another id: anything on the bus
        // that no acknowledgement named.
        let named = |ids: fn(&Person) -> &Vec<String>| -> std::collections::BTreeSet<String> {
            ledger
                .people
                .values()
                .flat_map(|p| ids(p).iter().cloned())
                .collect()
        };
        let release_ids = named(|p| &p.release_ids);
        let consent_ids = named(|p| &p.consent_ids);
        report.row("release").duplicated += notified
            .keys()
            .filter(|id| !release_ids.contains(*id))
            .count() as u32;
        report.row("consent").duplicated += consents
            .keys()
            .filter(|id| !consent_ids.contains(*id))
            .count() as u32;

        phase("the probation unit's feed");
        let pushes = feed.settle(&ledger).await;
        for person in ledger.people.values() {
            let Some(release_id) = person.release_ids.first() else {
                continue;
            };
            let seen = pushes.get(release_id).copied().unwrap_or(0);
            let row = report.row("push to probation");
            if !person.reversed {
                // Every standing release owes one push.
                row.sent += 1;
                row.acknowledged += 1;
                if seen == 0 {
                    row.lost += 1;
                } else {
                    row.stored += 1;
                }
            }
            // A reversed release may have been pushed before it was reversed,
            // never twice.
            row.duplicated += seen.saturating_sub(1);
        }
        let triggers: std::collections::BTreeSet<&String> = release_ids.iter().collect();
        report.row("push to probation").duplicated +=
            pushes.keys().filter(|id| !triggers.contains(id)).count() as u32;

        phase("the audit chain");
        let verified = answered(|| {
            let mut client = AuditServiceClient::new(authed(&self.endpoint(1), &national));
            async move {
                client
                    .verify_audit_chain(sharing::VerifyAuditChainRequest::default())
                    .await
            }
        })
        .await
        .expect("the audit chain verified");
        report.audit = Some((verified.intact, verified.entries_verified));
        phase("dead letters");
        report.dead_letters = bus
            .dead_letters()
            .await
            .map(|d| d.len())
            .map_err(|e| e.to_string());
        report
    }

    async fn bus(&self) -> Bus {
        self.split.bus().await
    }
}

/// The probation unit's delivery feed, watched from its start for the whole
/// run as the unit's own system would (reading it is what makes each push),
/// reconnecting from its cursor whenever the stream breaks.
struct Feed {
    seen: Arc<Mutex<BTreeMap<String, u32>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Feed {
    fn watch(sharing: &str) -> Self {
        let seen = Arc::new(Mutex::new(BTreeMap::new()));
        let client =
            DisclosureServiceClient::new(authed(sharing, &token("EMR-LEI", "practitioner")));
        let counts = seen.clone();
        let task = tokio::spawn(async move {
            let mut cursor = String::new();
            loop {
                let mut client = client.clone();
                let request = sharing::WatchDeliveriesRequest {
                    cursor: cursor.clone(),
                };
                if let Ok(stream) = client.watch_deliveries(request).await {
                    let mut stream = stream.into_inner();
                    while let Ok(Some(message)) = stream.message().await {
                        cursor = message.cursor;
                        if let Some(delivery) = message.delivery {
                            *counts
                                .lock()
                                .unwrap()
                                .entry(delivery.trigger_id)
                                .or_default() += 1;
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
        Self { seen, task }
    }

    /// Waits until a push for every standing release has been read (or the
    /// wait runs out), reads on until the feed has been quiet for a few
    /// seconds, then stops: how many times each trigger was pushed.
    async fn settle(self, ledger: &Ledger) -> BTreeMap<String, u32> {
        let expected: Vec<&String> = ledger
            .people
            .values()
            .filter(|p| !p.reversed)
            .filter_map(|p| p.release_ids.first())
            .collect();
        let deadline = Instant::now() + Duration::from_secs(180);
        let total = || self.seen.lock().unwrap().values().sum::<u32>();
        while Instant::now() < deadline
            && !expected
                .iter()
                .all(|id| self.seen.lock().unwrap().contains_key(*id))
        {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let mut last = total();
        loop {
            tokio::time::sleep(Duration::from_secs(3)).await;
            let now = total();
            if now == last {
                break;
            }
            last = now;
        }
        self.task.abort();
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

/// How many distinct events of type `E` name each subject (a record the
/// relay published again after a fault carries the same event id, and is
/// the same event).
fn subjects<E: prost::Message + prost::Name + Default>(
    events: &[Event],
    subject: impl Fn(E) -> String,
) -> BTreeMap<String, u32> {
    let mut ids: BTreeMap<String, std::collections::BTreeSet<uuid::Uuid>> = BTreeMap::new();
    for event in events.iter().filter(|e| e.is::<E>()) {
        let decoded: E = event.decode().unwrap();
        ids.entry(subject(decoded)).or_default().insert(event.id);
    }
    ids.into_iter().map(|(k, v)| (k, v.len() as u32)).collect()
}

/// Every event on `topic`, in the order a consumer reads them (each
/// partition in offset order; one person's events share a partition).
async fn published(bus: &Bus, topic: &str) -> Result<Vec<Event>, String> {
    // The broker may still be catching up with the rejoins and refetches the
    // faults caused: give its metadata a few tries.
    let mut tries = 0;
    let mut replay = loop {
        tries += 1;
        match bus.replay(&bus.topic(topic)).await {
            Ok(replay) => break replay,
            Err(e) if tries < 6 => eprintln!("chaos: reading {topic}, try {tries}: {e}"),
            Err(e) => return Err(format!("reading {topic}: {e}")),
        }
    };
    let mut events = Vec::new();
    while let Some(received) = replay
        .next()
        .await
        .map_err(|e| format!("reading {topic}: {e}"))?
    {
        events.push(Event::from_record(&received.record).unwrap());
    }
    Ok(events)
}

/// PostgreSQL as the suite reaches it.
fn postgres_address() -> SocketAddr {
    let url = std::env::var(POSTGRES_ENV).expect("the PostgreSQL URL from tests/run.sh");
    let host_port = url
        .split_once("://")
        .map(|(_, rest)| rest)
        .and_then(|rest| rest.rsplit_once('@').map_or(Some(rest), |(_, h)| Some(h)))
        .and_then(|rest| rest.split('/').next())
        .expect("host:port in the PostgreSQL URL");
    let host_port = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:5432")
    };
    std::net::ToSocketAddrs::to_socket_addrs(&host_port)
        .expect("PostgreSQL's address")
        .next()
        .expect("an address")
}

/// `url`, reached through `proxy`.
fn through(proxy: &Proxy, url: &str) -> String {
    let address = postgres_address();
    let direct = [
        format!("@{}:{}/", address.ip(), address.port()),
        format!("@localhost:{}/", address.port()),
    ];
    for direct in direct {
        if url.contains(&direct) {
            return url.replacen(&direct, &format!("@127.0.0.1:{}/", proxy.port()), 1);
        }
    }
    panic!("cannot route the test database through the proxy");
}

fn token(organisation: &str, role: &str) -> String {
    format!("e2e-token-{organisation}-{role}")
}

type Authed = InterceptedService<Channel, Bearer>;

/// A client channel that connects when first used and reconnects after the
/// service comes back, as a long-running caller's would.
fn authed(endpoint: &str, token: &str) -> Authed {
    let channel = Channel::from_shared(endpoint.to_owned())
        .unwrap()
        .connect_timeout(Duration::from_secs(2))
        .connect_lazy();
    InterceptedService::new(channel, Bearer::new(token).unwrap())
}

/// Codes a caller retries: the service or what it depends on is away, or the
/// call's fate is unknown.
fn retryable(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Cancelled
            | Code::Unknown
            | Code::Aborted
            | Code::ResourceExhausted
    )
}

/// Calls until answered, retrying what [`retryable`] allows; any other
/// refusal is the answer.
async fn answered<T, F, Fut>(mut call: F) -> Result<T, tonic::Status>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let deadline = Instant::now() + GIVE_UP_AFTER;
    loop {
        match tokio::time::timeout(CALL_TIMEOUT, call()).await {
            Ok(Ok(response)) => return Ok(response.into_inner()),
            Ok(Err(status)) if retryable(status.code()) => {}
            Ok(Err(status)) => return Err(status),
            Err(_) => {}
        }
        assert!(
            Instant::now() < deadline,
            "not answered within {GIVE_UP_AFTER:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// What the callers were told, per person.
#[derive(Default)]
struct Person {
    /// Every consent id an acknowledgement carried (one, unless a retry
    /// recorded it twice).
    consent_ids: Vec<String>,
    /// Every release id an acknowledgement carried.
    release_ids: Vec<String>,
    reversed: bool,
    disclosures_asked: u32,
    /// The disclosures the answers named (a deny names none).
    disclosure_ids: Vec<String>,
}

#[derive(Default)]
struct Ledger {
    people: BTreeMap<u32, Person>,
    /// Calls made, including retries.
    attempts: u32,
}

/// The callers: each takes the next person and runs their story, until the
/// faults are over and at least `events` operations were sent.
struct Load {
    faults_over: Arc<AtomicBool>,
    /// Operations sent so far.
    sent: Arc<AtomicU32>,
    callers: tokio::task::JoinSet<()>,
    ledger: Arc<Mutex<Ledger>>,
}

const CALLERS: usize = 6;

impl Load {
    /// `rate`: people a second whose stories start, across all callers.
    fn start(referrals: &str, sharing: &str, events: u32, rate: u32) -> Self {
        let pause = Duration::from_secs_f64(CALLERS as f64 / f64::from(rate.max(1)));
        let faults_over = Arc::new(AtomicBool::new(false));
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let next = Arc::new(AtomicU32::new(0));
        let sent = Arc::new(AtomicU32::new(0));
        let mut callers = tokio::task::JoinSet::new();
        for _ in 0..CALLERS {
            let caller = Caller {
                transitions: TransitionsServiceClient::new(authed(
                    referrals,
                    &token("LEI", "system"),
                )),
                consents: ConsentServiceClient::new(authed(
                    sharing,
                    &token("EMR-LEI", "practitioner"),
                )),
                disclosure: DisclosureServiceClient::new(authed(
                    sharing,
                    &token("EMR-LEI", "practitioner"),
                )),
                ledger: ledger.clone(),
            };
            let (faults_over, next, sent) = (faults_over.clone(), next.clone(), sent.clone());
            callers.spawn(async move {
                while !(faults_over.load(Ordering::SeqCst) && sent.load(Ordering::SeqCst) >= events)
                {
                    let seed = next.fetch_add(1, Ordering::SeqCst);
                    let started = Instant::now();
                    let operations = caller.story(seed).await;
                    sent.fetch_add(operations, Ordering::SeqCst);
                    tokio::time::sleep(pause.saturating_sub(started.elapsed())).await;
                }
            });
        }
        Self {
            faults_over,
            sent,
            callers,
            ledger,
        }
    }

    /// Fails the run at once if a caller has failed (rather than waiting
    /// for operations that will never be sent).
    fn check(&mut self) {
        if let Some(done) = self.callers.try_join_next() {
            if let Err(failed) = done {
                std::panic::resume_unwind(failed.into_panic());
            }
            panic!("a caller stopped before the faults were over");
        }
    }

    async fn finish(self) -> Ledger {
        self.callers.join_all().await;
        std::mem::take(&mut *self.ledger.lock().unwrap())
    }
}

struct Caller {
    transitions: TransitionsServiceClient<Authed>,
    consents: ConsentServiceClient<Authed>,
    disclosure: DisclosureServiceClient<Authed>,
    ledger: Arc<Mutex<Ledger>>,
}

impl Caller {
    /// One person's story, in order: consent, release, for some a reversal,
    /// for some a disclosure request. Returns the operations it sent.
    async fn story(&self, seed: u32) -> u32 {
        let who = chaos_person(seed);
        let consent = self
            .acknowledged(|| {
                let mut client = self.consents.clone();
                let request = consent_request(seed, &who);
                async move { client.record_consent(request).await }
            })
            .await;
        self.note(seed, |p| {
            p.consent_ids.extend(consent.consent.map(|c| c.consent_id))
        });
        let release = self
            .acknowledged(|| {
                let mut client = self.transitions.clone();
                let request = release_request(seed, &who);
                async move { client.notify_release(request).await }
            })
            .await
            .release
            .expect("the release");
        let release_id = release.release_id;
        self.note(seed, |p| p.release_ids.push(release_id.clone()));
        let mut operations = 2;
        if seed.is_multiple_of(4) {
            self.acknowledged(|| {
                let mut client = self.transitions.clone();
                let request = referrals::ReverseReleaseRequest {
                    idempotency_key: format!("chaos-reversal-{seed}"),
                    release_id: release_id.clone(),
                    reason: referrals::ReversalReason::NotifiedInError as i32,
                };
                async move { client.reverse_release(request).await }
            })
            .await;
            self.note(seed, |p| p.reversed = true);
            operations += 1;
        }
        if seed.is_multiple_of(3) {
            let answer = self
                .acknowledged(|| {
                    let mut client = self.disclosure.clone();
                    let request = sharing::RequestDisclosureRequest {
                        person: Some(who.clone()),
                        purpose: sharing::Purpose::DirectCare as i32,
                        categories: vec![],
                        justification: String::new(),
                    };
                    async move { client.request_disclosure(request).await }
                })
                .await;
            self.note(seed, |p| {
                p.disclosures_asked += 1;
                p.disclosure_ids
                    .extend(Some(answer.disclosure_id).filter(|id| !id.is_empty()));
            });
            operations += 1;
        }
        operations
    }

    async fn acknowledged<T, F, Fut>(&self, call: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let ledger = self.ledger.clone();
        let mut call = call;
        answered(move || {
            ledger.lock().unwrap().attempts += 1;
            call()
        })
        .await
        // The load sends only valid requests.
        .unwrap_or_else(|status| panic!("a valid request refused: {status:?}"))
    }

    fn note(&self, seed: u32, change: impl FnOnce(&mut Person)) {
        change(self.ledger.lock().unwrap().people.entry(seed).or_default());
    }
}

/// The person `seed` of a chaos run: distinct identifiers for every seed.
fn chaos_person(seed: u32) -> types::PersonIdentifiers {
    let nhs_number = (500_000_000 + seed * 2..)
        .find_map(valid_nhs_number)
        .unwrap();
    let letters = |n: u32| char::from(b'A' + (n % 26) as u8);
    types::PersonIdentifiers {
        nhs_number,
        prison_number: format!(
            "A{:04}{}{}",
            seed % 10_000,
            letters(seed / 10_000),
            letters(seed / 260_000)
        ),
        crn: String::new(),
    }
}

/// One line of the closing table.
#[derive(Default, Clone, Copy)]
struct Row {
    sent: u32,
    acknowledged: u32,
    stored: u32,
    lost: u32,
    duplicated: u32,
    out_of_order: u32,
}

struct Report {
    rows: Vec<(&'static str, Row)>,
    attempts: u32,
    audit: Option<(bool, i64)>,
    /// Records published more than once with the same event id (the
    /// consumers' inboxes drop the repeats).
    redelivered: usize,
    dead_letters: Result<usize, String>,
}

impl Report {
    fn new(ledger: &Ledger) -> Self {
        let mut report = Self {
            rows: Vec::new(),
            attempts: ledger.attempts,
            audit: None,
            redelivered: 0,
            dead_letters: Ok(0),
        };
        for person in ledger.people.values() {
            let count = |row: &mut Row, done: bool| {
                row.sent += 1;
                row.acknowledged += u32::from(done);
            };
            count(report.row("consent"), !person.consent_ids.is_empty());
            count(report.row("release"), !person.release_ids.is_empty());
            if person.reversed {
                count(report.row("reversal"), true);
            }
            for _ in 0..person.disclosures_asked {
                count(report.row("disclosure request"), true);
            }
            // A retry answered with another id than the first answer's is
            // the same thing recorded twice.
            let twice = |ids: &[String]| ids.iter().filter(|id| **id != ids[0]).count() as u32;
            report.row("consent").duplicated += twice(&person.consent_ids);
            report.row("release").duplicated += twice(&person.release_ids);
        }
        report
    }

    fn row(&mut self, name: &'static str) -> &mut Row {
        if let Some(i) = self.rows.iter().position(|(n, _)| *n == name) {
            return &mut self.rows[i].1;
        }
        self.rows.push((name, Row::default()));
        &mut self.rows.last_mut().unwrap().1
    }

    /// Counts one acknowledged change: kept when it is stored and was
    /// published (`published` times), lost otherwise; duplicated for every
    /// publication beyond one.
    fn kept(&mut self, name: &'static str, stored: bool, published: Option<u32>) {
        let times = published.unwrap_or(0);
        let row = self.row(name);
        if stored && times > 0 {
            row.stored += 1;
        } else {
            row.lost += 1;
        }
        row.duplicated += times.saturating_sub(1);
    }

    /// Counts `ids` on the bus: lost if none was published, duplicated for
    /// every publication beyond one. Whether it was published at all.
    fn published(
        &mut self,
        name: &'static str,
        on_bus: &BTreeMap<String, u32>,
        ids: &[String],
    ) -> bool {
        let Some(id) = ids.first() else { return false };
        let times = on_bus.get(id).copied().unwrap_or(0);
        let row = self.row(name);
        if times == 0 {
            row.lost += 1;
        }
        row.duplicated += times.saturating_sub(1);
        times > 0
    }

    fn assert_clean(&self) {
        for (name, row) in &self.rows {
            assert_eq!(row.acknowledged, row.sent, "{name}: every call answered");
            assert_eq!(row.lost, 0, "{name}: nothing acknowledged is lost");
            assert_eq!(row.duplicated, 0, "{name}: nothing happens twice");
            assert_eq!(row.out_of_order, 0, "{name}: each person's events in order");
        }
        let (intact, _) = self.audit.expect("the audit chain verified");
        assert!(intact, "the audit chain is intact");
        assert_eq!(self.dead_letters, Ok(0), "nothing dead-lettered");
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{:<20} {:>8} {:>13} {:>8} {:>6} {:>11} {:>13}",
            "", "sent", "acknowledged", "stored", "lost", "duplicated", "out of order"
        )?;
        for (name, r) in &self.rows {
            writeln!(
                f,
                "{:<20} {:>8} {:>13} {:>8} {:>6} {:>11} {:>13}",
                name, r.sent, r.acknowledged, r.stored, r.lost, r.duplicated, r.out_of_order
            )?;
        }
        writeln!(f, "calls made, retries included: {}", self.attempts)?;
        writeln!(
            f,
            "records published again with the same event id: {}",
            self.redelivered
        )?;
        if let Some((intact, entries)) = self.audit {
            writeln!(
                f,
                "audit chain: {} ({entries} entries verified)",
                if intact { "intact" } else { "BROKEN" }
            )?;
        }
        match &self.dead_letters {
            Ok(n) => write!(f, "dead-lettered: {n}"),
            Err(e) => write!(f, "dead letters unreadable: {e}"),
        }
    }
}
