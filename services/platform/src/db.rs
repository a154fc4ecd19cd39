//! Databases: PostgreSQL for deployments, SQLite for the embedded mode. The
//! platform's own tables (outbox, inbox) are migrated with their own history
//! table, so each service keeps sqlx's default one for its migrations.

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};
use std::str::FromStr;
use std::time::Duration;

static PLATFORM_POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");
static PLATFORM_SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");
const PLATFORM_MIGRATIONS_TABLE: &str = "_throughcare_platform_migrations";

/// A service's migrations for both backends (`sqlx::migrate!` of each folder).
#[derive(Debug, Clone, Copy)]
pub struct Migrations {
    pub postgres: &'static Migrator,
    pub sqlite: &'static Migrator,
}

/// A connection pool to the service's own database.
#[derive(Debug, Clone)]
pub enum Db {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database url must start with postgres:// or sqlite://")]
    UnknownScheme,
    #[error("connecting to the database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("migrating the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl Db {
    /// Connects, then applies the platform's and the service's migrations.
    pub async fn connect(
        url: &str,
        max_connections: u32,
        migrations: Migrations,
    ) -> Result<Self, DbError> {
        let db = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url).map_err(DbError::Connect)?;
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await
                .map_err(DbError::Connect)?;
            Db::Postgres(pool)
        } else if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(DbError::Connect)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // With WAL, NORMAL is durable across process crashes (not power loss),
                // which is what the embedded mode promises.
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections.max(1))
                .connect_with(options)
                .await
                .map_err(DbError::Connect)?;
            Db::Sqlite(pool)
        } else {
            return Err(DbError::UnknownScheme);
        };
        db.migrate(migrations).await?;
        Ok(db)
    }

    async fn migrate(&self, migrations: Migrations) -> Result<(), sqlx::migrate::MigrateError> {
        match self {
            Db::Postgres(pool) => {
                platform_migrator(&PLATFORM_POSTGRES).run(pool).await?;
                migrations.postgres.run(pool).await
            }
            Db::Sqlite(pool) => {
                platform_migrator(&PLATFORM_SQLITE).run(pool).await?;
                migrations.sqlite.run(pool).await
            }
        }
    }

    pub async fn close(&self) {
        match self {
            Db::Postgres(pool) => pool.close().await,
            Db::Sqlite(pool) => pool.close().await,
        }
    }
}

fn platform_migrator(base: &Migrator) -> Migrator {
    let mut migrator = Migrator::with_migrations(base.migrations.to_vec());
    migrator.dangerous_set_table_name(PLATFORM_MIGRATIONS_TABLE);
    migrator
}
