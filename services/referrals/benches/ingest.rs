//! Release notifications per second and acknowledgement latency over gRPC, at
//! 1, 16 and 64 concurrent callers, through PostgreSQL and the Kafka broker on
//! this machine; beside it, in the same run, this machine's single-row durable
//! PostgreSQL commits at the same concurrency. Prints figures, asserts nothing.
//! Run with `tests/bench.sh ingest [notifications per level]`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use throughcare_platform::config::{
    BusBackend, BusConfig, DatabaseConfig, GrpcConfig, PlatformConfig, Secret,
};
use throughcare_platform::identifiers::NhsNumber;
use throughcare_platform::identity::{
    AreaConfig, AreaType, AuthConfig, OrganisationConfig, OrganisationKind, Role, TokenConfig,
};
use throughcare_platform::sealing::SealingConfig;
use throughcare_platform::service::Runtime;
use throughcare_platform::telemetry::Metrics;
use throughcare_platform::testing::{fresh_postgres, kafka_config, unique};
use throughcare_proto::referrals::v1::transitions_service_client::TransitionsServiceClient;
use throughcare_proto::referrals::v1::{NotifyReleaseRequest, ReleaseReason};
use throughcare_proto::types::v1 as types;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

const TOKEN: &str = "benchmark-prison-system-token";

fn organisation(code: &str, kind: OrganisationKind, areas: Vec<AreaConfig>) -> OrganisationConfig {
    OrganisationConfig {
        code: code.into(),
        name: code.into(),
        kind,
        areas,
    }
}

fn config(url: String) -> throughcare_referrals::Config {
    throughcare_referrals::Config {
        platform: PlatformConfig {
            grpc: GrpcConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                tls: None,
            },
            database: DatabaseConfig {
                url: Secret::new(url),
                max_connections: 32,
            },
            bus: BusConfig {
                topic_prefix: format!("{}.", unique("bench")),
                backend: BusBackend::Kafka(kafka_config()),
            },
            auth: AuthConfig {
                organisations: vec![
                    organisation(
                        "LEI",
                        OrganisationKind::PrisonHealthcare,
                        vec![AreaConfig {
                            area_type: AreaType::Prison,
                            code: "LEI".into(),
                        }],
                    ),
                    organisation(
                        "EMR-LEI",
                        OrganisationKind::Probation,
                        vec![AreaConfig {
                            area_type: AreaType::ProbationRegion,
                            code: "EMR".into(),
                        }],
                    ),
                ],
                tokens: vec![TokenConfig {
                    token: Secret::new(TOKEN),
                    organisation: "LEI".into(),
                    role: Role::System,
                }],
            },
            telemetry: Default::default(),
            pseudonym_key: Secret::generate(32),
        },
        sealing: SealingConfig {
            current: "k".into(),
            keys: [("k".to_owned(), Secret::generate(32))].into(),
        },
        pathways_file: None,
        overdue_sweep_interval_ms: 60_000,
    }
}

fn nhs(n: u32) -> String {
    (0..)
        .map(|i| format!("{:09}", 100_000_000 + n * 11 + i))
        .find_map(|prefix| {
            NhsNumber::check_digit(prefix.as_bytes().try_into().unwrap())
                .map(|c| format!("{prefix}{c}"))
        })
        .unwrap()
}

/// A realistic notification: supervised release with substance misuse, GP
/// and mental health needs (four continuity tasks, about twenty events).
fn notification(n: u32) -> NotifyReleaseRequest {
    let today = chrono::Utc::now().date_naive();
    let date = |d: chrono::NaiveDate| {
        use chrono::Datelike;
        types::Date {
            year: d.year(),
            month: d.month() as i32,
            day: d.day() as i32,
        }
    };
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
            gp_registration: Some(types::GpRegistration {
                status: types::RegistrationStatus::NotRegistered as i32,
                practice_code: String::new(),
            }),
            substance_misuse: Some(types::SubstanceMisuse {
                drug_screening: types::ScreeningOutcome::NeedIdentified as i32,
                on_opioid_substitution_therapy: true,
                in_treatment: true,
                ..Default::default()
            }),
            mental_health: Some(types::MentalHealth {
                screening: types::ScreeningOutcome::NeedIdentified as i32,
                under_treatment: true,
                ..Default::default()
            }),
            self_harm_risk: Some(types::SelfHarmRisk {
                level: types::SelfHarmRiskLevel::Medium as i32,
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

struct Figures {
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

fn figures(mut latencies: Vec<Duration>, elapsed: Duration) -> Figures {
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Figures {
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
    }
}

/// Runs `count` operations over `concurrency` workers, timing each.
async fn drive<F, Fut>(concurrency: usize, count: u32, op: F) -> Figures
where
    F: Fn(u32) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let next = Arc::new(AtomicU32::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (next, op) = (next.clone(), op.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= count {
                        return latencies;
                    }
                    let t = Instant::now();
                    op(n).await;
                    latencies.push(t.elapsed());
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await.unwrap());
    }
    figures(all, started.elapsed())
}

#[tokio::main]
async fn main() {
    let per_level: u32 = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map_or(3_000, |a| a.parse().expect("a count"));
    let url = fresh_postgres().await;
    let shutdown = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let runtime = Runtime::new(shutdown.clone(), Metrics::disabled());
    tokio::spawn(throughcare_referrals::run(
        config(url.clone()),
        listener,
        runtime,
    ));
    let channel = loop {
        if let Ok(c) = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
        {
            break c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let auth: tonic::metadata::MetadataValue<_> = format!("Bearer {TOKEN}").parse().unwrap();
    let client =
        TransitionsServiceClient::with_interceptor(channel, move |mut r: tonic::Request<()>| {
            r.metadata_mut().insert("authorization", auth.clone());
            Ok(r)
        });
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
    let backlog: i64 = throughcare_platform::on_db!(&db, p => sqlx::query_scalar("SELECT count(*) FROM outbox").fetch_one(p).await.unwrap());
    let started = Instant::now();
    loop {
        let left: i64 = throughcare_platform::on_db!(&db, p => sqlx::query_scalar("SELECT count(*) FROM outbox").fetch_one(p).await.unwrap());
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "outbox backlog at the end: {backlog} events, drained to the broker in {:.1?}",
        started.elapsed()
    );
    shutdown.cancel();
}
