//! Release notifications per second and acknowledgement latency over gRPC, at
//! 1, 16 and 64 concurrent callers, through PostgreSQL and the Kafka broker on
//! this machine; beside it, in the same run, this machine's single-row durable
//! PostgreSQL commits at the same concurrency. Prints figures, asserts nothing.
//! Run with `tests/bench.sh ingest [notifications per level]`.

use std::time::{Duration, Instant};
use throughcare_platform::identity::{AreaType, OrganisationKind, Role};
use throughcare_proto::referrals::v1::transitions_service_client::TransitionsServiceClient;
use throughcare_proto::referrals::v1::{NotifyReleaseRequest, ReleaseReason};
use throughcare_proto::types::v1 as types;
use throughcare_testkit::bench::drive;
use throughcare_testkit::health::{gp_not_registered, mental_health_treated, self_harm};
use throughcare_testkit::organisations::LEI;
use throughcare_testkit::{Organisation, Stack, bearer, count, date, nhs_number};

/// The releasing prison, and a delivery unit naming only its region.
const ORGANISATIONS: &[Organisation] = &[
    LEI,
    (
        "EMR-LEI",
        OrganisationKind::Probation,
        Role::Practitioner,
        &[(AreaType::ProbationRegion, "EMR")],
    ),
];

fn nhs(n: u32) -> String {
    nhs_number(100_000_000 + n * 11)
}

/// A realistic notification: supervised release with substance misuse, GP
/// and mental health needs (four continuity tasks, about twenty events).
fn notification(n: u32) -> NotifyReleaseRequest {
    let today = chrono::Utc::now().date_naive();
    NotifyReleaseRequest {
        idempotency_key: format!("bench-{n}"),
        person: Some(types::PersonDetails {
            identifiers: Some(types::PersonIdentifiers {
                nhs_number: nhs(n),
                prison_number: String::new(),
                crn: String::new(),
            }),
            date_of_birth: Some(date(chrono::NaiveDate::from_ymd_opt(1980, 1, 1).unwrap())),
            sex: types::Sex::Male as i32,
            ethnic_group: types::EthnicGroup::White as i32,
        }),
        release_date: Some(date(today)),
        reason: ReleaseReason::OnLicence as i32,
        releasing_prison: "LEI".into(),
        destination: Some(types::Destination {
            local_authority: "E06000016".into(),
            probation_delivery_unit: "EMR-LEI".into(),
            ..Default::default()
        }),
        health: Some(types::HealthSummary {
            gp_registration: gp_not_registered(),
            substance_misuse: Some(types::SubstanceMisuse {
                drug_screening: types::ScreeningOutcome::NeedIdentified as i32,
                on_opioid_substitution_therapy: true,
                in_treatment: true,
                ..Default::default()
            }),
            mental_health: mental_health_treated(),
            self_harm_risk: self_harm(types::SelfHarmRiskLevel::Medium),
            ..Default::default()
        }),
        supervision_ends_on: None,
    }
}

#[tokio::main]
async fn main() {
    let per_level: u32 = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map_or(3_000, |a| a.parse().expect("a count"));
    let stack = Stack::bench(ORGANISATIONS).await;
    let url = stack.database("referrals").await;
    let mut config = stack.referrals_config(&url);
    config.platform.database.max_connections = 32;
    let channel = stack.start_referrals(config).await.channel;
    let client = TransitionsServiceClient::with_interceptor(channel, bearer("LEI"));
    // Warm up connections, statements and the JIT of the database's plans.
    for n in 0..50 {
        client
            .clone()
            .notify_release(notification(10_000_000 + n))
            .await
            .unwrap();
    }

    let baseline_pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(64)
        .connect(&url)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE bench_commits (id BIGINT PRIMARY KEY, body TEXT NOT NULL)")
        .execute(&baseline_pool)
        .await
        .unwrap();

    println!(
        "referrals ingest benchmark: {per_level} release notifications per level, each opening 4 tasks and ~20 outbox events"
    );
    println!(
        "{:>11} | {:>14} {:>9} {:>9} | {:>16} {:>9} {:>9} | {:>7}",
        "concurrency", "releases/s", "p50", "p99", "pg commits/s", "p50", "p99", "ratio"
    );
    let mut offset = 0;
    for concurrency in [1usize, 16, 64] {
        let base = offset;
        let c = client.clone();
        let releases = drive(concurrency, per_level, move |n| {
            let mut c = c.clone();
            async move {
                c.notify_release(notification(base + n))
                    .await
                    .expect("notify");
            }
        })
        .await;
        let pool = baseline_pool.clone();
        let commits = drive(concurrency, per_level, move |n| {
            let pool = pool.clone();
            async move {
                sqlx::query("INSERT INTO bench_commits (id, body) VALUES ($1, $2)")
                    .bind(i64::from(base + n))
                    .bind("a durable single-row commit")
                    .execute(&pool)
                    .await
                    .unwrap();
            }
        })
        .await;
        offset += per_level;
        println!(
            "{concurrency:>11} | {:>14.0} {:>9.2?} {:>9.2?} | {:>16.0} {:>9.2?} {:>9.2?} | {:>7.2}",
            releases.per_second,
            releases.p50,
            releases.p99,
            commits.per_second,
            commits.p50,
            commits.p99,
            releases.per_second / commits.per_second
        );
    }

    let db = throughcare_platform::db::Db::connect(&url, 2, throughcare_referrals::MIGRATIONS)
        .await
        .unwrap();
    let backlog = count(&db, "SELECT count(*) FROM outbox").await;
    let started = Instant::now();
    while count(&db, "SELECT count(*) FROM outbox").await > 0 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "outbox backlog at the end: {backlog} events, drained to the broker in {:.1?}",
        started.elapsed()
    );
    drop(stack);
}
