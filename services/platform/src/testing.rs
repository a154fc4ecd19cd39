//! Support for tests that run against the real parts. The test harness
//! (`tests/run.sh`) starts PostgreSQL and the Kafka-protocol broker and exports
//! where they are; a test that needs one and cannot find it fails — it never
//! skips silently.

use crate::config::KafkaConfig;
use sqlx::Connection;
use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

pub const POSTGRES_ENV: &str = "THROUGHCARE_TEST_POSTGRES_URL";
pub const KAFKA_ENV: &str = "THROUGHCARE_TEST_KAFKA_BROKERS";

fn required_env(name: &str, what: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: this test needs {what}; run the tests through tests/run.sh, which starts it")
    })
}

/// A name unique to this test run: `{prefix}_{random}`, lowercase.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// Creates a fresh, empty PostgreSQL database and returns its URL. The harness
/// drops every `tc_test_*` database when the run ends.
pub async fn fresh_postgres() -> String {
    let admin_url = required_env(POSTGRES_ENV, "PostgreSQL");
    let name = unique("tc_test");
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at {POSTGRES_ENV}: {e}"));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("create test database");
    with_database(&admin_url, &name)
}

/// `url` with its database replaced by `database`, options kept.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let trimmed = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{trimmed}/{database}?{q}"),
        None => format!("{trimmed}/{database}"),
    }
}

/// The broker the harness started, as Kafka config for a test.
pub fn kafka_config() -> KafkaConfig {
    KafkaConfig {
        brokers: required_env(KAFKA_ENV, "a Kafka-protocol broker"),
        partitions: 3,
        replication_factor: 1,
        properties: BTreeMap::new(),
        instance_id: None,
    }
}

/// Polls `check` until it returns `Some`, failing the test after `timeout`.
/// For waiting on asynchronous effects without fixed sleeps.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_the_database_and_keeps_options() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "t1"),
            "postgres://u:p@h/t1?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "t1"), "postgres://h/t1");
    }
}
