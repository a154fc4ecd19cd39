//! The embedded mode's SQLite files: opened by many connections at once, a new
//! file still ends up in WAL mode and no opener fails on the switch.

use crate::outbox::MIGRATIONS;
use sqlx::{ConnectOptions, sqlite::SqliteConnectOptions};
use std::path::Path;
use tempfile::TempDir;
use throughcare_platform::bus::in_process::InProcessBus;
use throughcare_platform::db::Db;
use throughcare_platform::telemetry::Metrics;
use tokio::task::JoinSet;

async fn journal_mode(path: &Path) -> String {
    let mut connection = SqliteConnectOptions::new()
        .filename(path)
        .connect()
        .await
        .unwrap();
    sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut connection)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_bus_file_opened_by_many_at_once_is_in_wal_mode() {
    // Switching a file to WAL takes a lock SQLite's busy timeout does not wait
    // for; openers that each switched used to fail now and then.
    for _ in 0..10 {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("bus.db");
        let mut openers = JoinSet::new();
        for _ in 0..6 {
            let path = path.clone();
            openers
                .spawn(async move { InProcessBus::open(Some(&path), Metrics::disabled()).await });
        }
        while let Some(opened) = openers.join_next().await {
            opened.unwrap().expect("every opener opens the bus");
        }
        assert_eq!(journal_mode(&path).await, "wal");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_database_is_in_wal_mode_with_foreign_keys() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("service.db");
    let db = Db::connect(&format!("sqlite://{}", path.display()), 4, MIGRATIONS)
        .await
        .unwrap();
    let Db::Sqlite(pool) = &db else {
        panic!("a sqlite:// url opens SQLite")
    };
    let foreign_keys: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(foreign_keys, 1);
    db.close().await;
    assert_eq!(journal_mode(&path).await, "wal");
}
