//! The aggregation core's figures on a synthetic national caseload (261,196
//! people, about 10M observations over 22 months, in realistic episodes):
//!
//! 1. observations aggregated per second on one core, fed in-process change
//!    by change (target ≥ 200,000);
//! 2. the time to rebuild every indicator for the whole caseload (target < 60 s);
//! 3. the same rebuild read from the Kafka broker, beside the broker's own raw
//!    fetch rate for the same records;
//! 4. disclosure control over a quarter's national publication (three months and the quarter).
//!
//! Prints, never asserts. Run with `tests/bench.sh aggregation`; options:
//! `--people N` (default 261196), `--skip-kafka`.

use prost_types::Timestamp;
use std::time::{Duration, Instant};
use throughcare_indicators::app::rebuild;
use throughcare_indicators::catalogue::Catalogue;
use throughcare_indicators::domain::core::{Aggregator, RecordKeys};
use throughcare_indicators::domain::disclosure;
use throughcare_indicators::domain::period::Period;
use throughcare_indicators::domain::person::Input;
use throughcare_platform::bus::{Event, Publisher, Record};
use throughcare_proto::events::v1::{
    Observation, ObservationAreas, ObservationsRecorded, ObservationsRetracted, ObservedFact as F,
};
use throughcare_proto::topics;
use throughcare_proto::types::v1::ServiceType as S;
use throughcare_testkit::Stack;

const NATIONAL_CASELOAD: u32 = 261_196;
const REGIONS: u32 = 12;
const UNITS_PER_REGION: u32 = 9;
const ICBS: u32 = 42;
const LOCAL_AUTHORITIES: u32 = 309;
const PRISONS: u32 = 117;
/// Releases happen from January 2025 over this many days.
const DAYS: i64 = 660;

/// SplitMix64: small, fast and deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u32) -> u32 {
        (self.next() % u64::from(n)) as u32
    }

    /// True with probability `percent`/100.
    fn chance(&mut self, percent: u32) -> bool {
        self.below(100) < percent
    }
}

fn prison_code(i: u32) -> String {
    let letter = |n: u32| char::from(b'A' + (n % 26) as u8);
    [letter(i / 676), letter(i / 26), letter(i)]
        .iter()
        .collect()
}

fn place(rng: &mut Rng) -> ObservationAreas {
    let region = rng.below(REGIONS);
    ObservationAreas {
        probation_region: format!("R{region:02}"),
        probation_delivery_unit: format!("R{region:02}-U{}", rng.below(UNITS_PER_REGION)),
        integrated_care_board: format!("Q{:02}", rng.below(ICBS)),
        local_authority: format!("E06{:06}", rng.below(LOCAL_AUTHORITIES)),
        prison: prison_code(rng.below(PRISONS)),
    }
}

/// One person's records, in the order the referrals service would publish them.
fn person(n: u32, rng: &mut Rng) -> Vec<Input> {
    let key = format!("person-key-{n:08}-0123456789abcdef0123456789");
    let mut areas = place(rng);
    let (sex, age, ethnic) = (
        1 + rng.below(2) as i32,
        1 + rng.below(4) as i32,
        1 + rng.below(6) as i32,
    );
    let start = chrono::NaiveDate::from_ymd_opt(2025, 1, 1)
        .unwrap()
        .and_hms_opt(9, 0, 0)
        .unwrap()
        .and_utc();
    let mut records = Vec::new();
    let episodes = 1 + rng.below(2) + u32::from(rng.chance(20));
    for e in 0..episodes {
        if rng.chance(10) {
            areas = place(rng); // moved
        }
        let episode = format!("episode-{n:08}-{e}-0123456789abcdef012345678");
        let released = start + chrono::Duration::days(rng.next() as i64 % DAYS);
        let observe = |fact: F, service: S, value: i64, days: i64| Observation {
            person_key: key.clone(),
            areas: Some(areas.clone()),
            sex,
            age_band: age,
            ethnic_group: ethnic,
            fact: fact as i32,
            service: service as i32,
            value,
            observed_at: Some(Timestamp {
                seconds: (released + chrono::Duration::days(days)).timestamp(),
                nanos: 0,
            }),
            episode_key: episode.clone(),
        };
        let mut summary = vec![
            observe(F::Released, S::Unspecified, 0, 0),
            observe(F::InContact, S::Unspecified, 0, 0),
            observe(F::SupervisionStarted, S::Unspecified, 0, 0),
            observe(F::GpRegistrationRecorded, S::Unspecified, 0, 0),
            observe(F::DentalRegistrationRecorded, S::Unspecified, 0, 0),
            observe(F::AlcoholScreened, S::Unspecified, 0, 0),
            observe(F::DrugScreened, S::Unspecified, 0, 0),
            observe(F::MentalIllnessScreened, S::Unspecified, 0, 0),
            observe(F::SmokingStatusRecorded, S::Unspecified, 0, 0),
            observe(F::VaccinationNeedRecorded, S::Unspecified, 0, 0),
            observe(F::CommunicableDiseaseScreened, S::Unspecified, 0, 0),
            observe(F::PhysicalHealthMeasured, S::Unspecified, 0, 0),
        ];
        let mut fact = |f: F, percent: u32, summary: &mut Vec<Observation>| {
            let yes = rng.chance(percent);
            if yes {
                summary.push(observe(f, S::Unspecified, 0, 0));
            }
            yes
        };
        let gp = fact(F::GpRegistered, 55, &mut summary);
        if !gp {
            summary.push(observe(F::GpNotRegistered, S::Unspecified, 0, 0));
        }
        fact(F::DentalRegistered, 30, &mut summary);
        let drinking = fact(F::HazardousDrinking, 30, &mut summary);
        let drugs = fact(F::DrugMisuse, 40, &mut summary);
        let mental = fact(F::MentalIllnessIdentified, 35, &mut summary);
        fact(F::Smoker, 60, &mut summary);
        fact(F::VaccinationNeeded, 50, &mut summary);
        fact(F::CommunicableDiseaseFound, 5, &mut summary);
        fact(F::SafeSexEducationOffered, 20, &mut summary);
        let substance = drinking || drugs;
        if substance {
            summary.push(observe(F::ReleasedWithSubstanceNeed, S::Unspecified, 0, 0));
        }
        records.push(Input::Recorded(ObservationsRecorded {
            person_key: key.clone(),
            observations: summary,
        }));
        // A referral, then (often) its acceptance and first appointment.
        let service = if substance {
            S::SubstanceMisuseTreatment
        } else if mental {
            S::MentalHealthTreatment
        } else if gp {
            S::SmokingCessation
        } else {
            S::GpRegistration
        };
        let offered = rng.below(5) as i64;
        records.push(Input::Recorded(ObservationsRecorded {
            person_key: key.clone(),
            observations: vec![observe(F::ReferralOffered, service, 0, offered)],
        }));
        if rng.chance(75) {
            let accepted = offered + 1 + rng.below(7) as i64;
            records.push(Input::Recorded(ObservationsRecorded {
                person_key: key.clone(),
                observations: vec![observe(F::ReferralAccepted, service, 0, accepted)],
            }));
            if rng.chance(80) {
                let days = accepted + rng.below(30) as i64;
                let mut attended = vec![observe(F::FirstAppointmentAttended, service, days, days)];
                if service == S::SubstanceMisuseTreatment {
                    attended.push(observe(
                        F::EngagedWithCommunityTreatment,
                        service,
                        days,
                        days,
                    ));
                }
                records.push(Input::Recorded(ObservationsRecorded {
                    person_key: key.clone(),
                    observations: attended,
                }));
            }
        }
        // Most spells of supervision end within the year (licence, PSS).
        if rng.chance(60) {
            let ended = 30 + rng.below(335) as i64;
            records.push(Input::Recorded(ObservationsRecorded {
                person_key: key.clone(),
                observations: vec![observe(F::SupervisionEnded, S::Unspecified, 0, ended)],
            }));
        }
        if rng.chance(3) {
            records.push(Input::Retracted(ObservationsRetracted {
                person_key: key.clone(),
                episode_key: episode.clone(),
                retracted_at: None,
            }));
        }
    }
    if rng.chance(1) {
        records.push(Input::Recorded(ObservationsRecorded {
            person_key: key.clone(),
            observations: vec![Observation {
                fact: F::Died as i32,
                ..match &records[0] {
                    Input::Recorded(r) => r.observations[0].clone(),
                    Input::Retracted(_) | Input::Linked(_) => {
                        unreachable!("the first record is a release")
                    }
                }
            }],
        }));
    }
    records
}

fn observations(records: &[Input]) -> usize {
    records
        .iter()
        .map(|r| match r {
            Input::Recorded(r) => r.observations.len(),
            Input::Retracted(_) | Input::Linked(_) => 0,
        })
        .sum()
}

/// Feeds the caseload to a core (counting change by change, or staged for a
/// rebuild); the time spent in the core only, and the observations fed.
fn feed(people: u32, core: &mut Aggregator) -> (Duration, usize) {
    let mut rng = Rng(7);
    let (mut spent, mut fed) = (Duration::ZERO, 0);
    for n in 0..people {
        let records = person(n, &mut rng);
        fed += observations(&records);
        let started = Instant::now();
        for record in &records {
            core.ingest(record).expect("well-formed");
        }
        spent += started.elapsed();
    }
    (spent, fed)
}

fn rate(count: usize, took: Duration) -> String {
    format!("{:.0}/s", count as f64 / took.as_secs_f64())
}

fn to_event(topic: &str, input: &Input) -> Record {
    match input {
        Input::Recorded(r) => Event::new(topic, &r.person_key, "bench", r),
        Input::Retracted(r) => Event::new(topic, &r.person_key, "bench", r),
        Input::Linked(l) => Event::new(topic, &l.surviving_key, "bench", l),
    }
    .to_record()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let people = args
        .iter()
        .position(|a| a == "--people")
        .and_then(|i| args.get(i + 1))
        .map_or(NATIONAL_CASELOAD, |n| n.parse().expect("--people N"));
    let skip_kafka = args.iter().any(|a| a == "--skip-kafka");
    let catalogue = Catalogue::standard();
    println!(
        "caseload: {people} people; {} indicators",
        catalogue.indicators.len()
    );

    // 1. Change by change, as the live consumer counts.
    let mut live = Aggregator::new(catalogue);
    let (took, fed) = feed(people, &mut live);
    println!(
        "1. in-process, change by change: {fed} observations in {:.1}s on one core = {} (target >= 200000/s)",
        took.as_secs_f64(),
        rate(fed, took)
    );

    // 2. A rebuild: stage everyone, then count each person once.
    let mut rebuilt = Aggregator::new(catalogue);
    rebuilt.stage();
    let (staging, _) = feed(people, &mut rebuilt);
    let started = Instant::now();
    rebuilt.count_all();
    let counting = started.elapsed();
    let total = staging + counting;
    println!(
        "2. rebuild of every indicator: {:.1}s ({:.1}s staging {} observations, {:.1}s counting) = {} (target < 60s)",
        total.as_secs_f64(),
        staging.as_secs_f64(),
        rebuilt.observations(),
        counting.as_secs_f64(),
        rate(fed, total)
    );
    let fingerprint = rebuilt.fingerprint();
    assert_eq!(
        live.fingerprint(),
        fingerprint,
        "a rebuild counts what change-by-change counting did"
    );
    println!(
        "   {} cells, {} people with observations",
        rebuilt.all_cells().len(),
        rebuilt.people()
    );
    drop(live);

    // 4. Disclosure control over a national quarter's first publication:
    // its three months and the quarter, as the publisher does at its close.
    let periods = [
        Period::month(2026, 1),
        Period::month(2026, 2),
        Period::month(2026, 3),
        Period::quarter(2026, 1),
    ];
    let cells = rebuilt.cells(&periods);
    let areas = rebuilt.areas().clone();
    let cell_count = cells.len();
    let started = Instant::now();
    let published = disclosure::protect(catalogue, cells, Vec::new(), move |a| {
        let id = areas.id(a)?;
        areas.region_of(id).map(|r| areas.get(r).code.clone())
    })
    .expect("a fresh publication has nothing to contradict");
    let suppressed = published
        .iter()
        .filter(|(_, p)| p.numerator.suppressed || p.denominator.suppressed)
        .count();
    println!(
        "4. disclosure control for 2026-01 to 03 and 2026-Q1: {cell_count} cells in {:.2}s ({suppressed} with a suppressed count)",
        started.elapsed().as_secs_f64()
    );
    drop(rebuilt);

    if skip_kafka {
        return;
    }
    // 3. The same rebuild read from the broker.
    let stack = Stack::bench(&[]).await;
    let bus = &stack.bus;
    let topic = bus.topic(topics::OBSERVATIONS);
    bus.ensure_topics(std::slice::from_ref(&topic))
        .await
        .unwrap();
    let mut rng = Rng(7);
    let (mut batch, mut records, mut bytes) = (Vec::new(), 0usize, 0usize);
    let started = Instant::now();
    for n in 0..people {
        for input in person(n, &mut rng) {
            let record = to_event(&topic, &input);
            bytes += record.payload.len();
            batch.push(record);
        }
        if batch.len() >= 2_000 {
            records += batch.len();
            bus.publish(&batch).await.unwrap();
            batch.clear();
        }
    }
    records += batch.len();
    bus.publish(&batch).await.unwrap();
    let producing = started.elapsed();
    println!(
        "3. produced {records} records ({:.0} MB) to the broker in {:.1}s ({})",
        bytes as f64 / 1e6,
        producing.as_secs_f64(),
        rate(records, producing)
    );
    let started = Instant::now();
    let mut replay = bus.replay(&topic).await.unwrap();
    let (mut fetched, mut fetched_bytes) = (0usize, 0usize);
    while let Some(received) = replay.next().await.unwrap() {
        fetched += 1;
        fetched_bytes += received.record.payload.len();
    }
    let raw = started.elapsed();
    println!(
        "   broker raw fetch: {fetched} records, {:.0} MB in {:.1}s = {} ({:.1} MB/s)",
        fetched_bytes as f64 / 1e6,
        raw.as_secs_f64(),
        rate(fetched, raw),
        fetched_bytes as f64 / 1e6 / raw.as_secs_f64()
    );
    let started = Instant::now();
    let horizon = Aggregator::new(catalogue).horizon();
    let (from_log, stats) =
        rebuild::from_log(bus, &topic, catalogue, RecordKeys::public(), horizon)
            .await
            .unwrap();
    let took = started.elapsed();
    println!(
        "   rebuild from the broker: {:.1}s = {} records/s, {} observations/s ({} skipped)",
        took.as_secs_f64(),
        rate(stats.records as usize, took).trim_end_matches("/s"),
        rate(from_log.observations(), took).trim_end_matches("/s"),
        stats.skipped
    );
    assert_eq!(
        from_log.fingerprint(),
        fingerprint,
        "the log rebuilds the same"
    );
}
