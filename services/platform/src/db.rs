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

/// The calling service's [`Migrations`], from its `migrations/postgres` and
/// `migrations/sqlite` folders: `pub static MIGRATIONS: Migrations =
/// throughcare_platform::migrations!();`
#[macro_export]
macro_rules! migrations {
    () => {{
        static POSTGRES: ::sqlx::migrate::Migrator = ::sqlx::migrate!("migrations/postgres");
        static SQLITE: ::sqlx::migrate::Migrator = ::sqlx::migrate!("migrations/sqlite");
        $crate::db::Migrations {
            postgres: &POSTGRES,
            sqlite: &SQLITE,
        }
    }};
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
                // With WAL, NORMAL is durable across process crashes (not power loss),
                // which is what the embedded mode promises.
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            let pool = SqlitePoolOptions::new().max_connections(max_connections.max(1));
            let pool = sqlite_wal_pool(options, pool)
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

    /// Starts a write transaction. On SQLite it is `BEGIN IMMEDIATE`: it takes
    /// the write lock up front, so a transaction that reads and then writes
    /// never fails half-way on a lock upgrade.
    pub async fn begin(&self) -> sqlx::Result<Tx> {
        Ok(match self {
            Db::Postgres(pool) => Tx::Postgres(pool.begin().await?),
            Db::Sqlite(pool) => Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
        })
    }
}

/// A write transaction on either backend. Services write their SQL once (with
/// `$1`-style parameters, which both backends accept) and run it on whichever
/// connection this holds, through [`on_tx!`](crate::on_tx) and
/// [`on_db!`](crate::on_db).
#[derive(Debug)]
pub enum Tx {
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
}

impl Tx {
    /// Holds the lock called `name` until this transaction ends: exclusive,
    /// or shared with other shared holders. On PostgreSQL an advisory lock;
    /// on SQLite nothing, since its write transaction already holds the only
    /// write lock.
    pub async fn lock_named(&mut self, name: &str, exclusive: bool) -> sqlx::Result<()> {
        if let Tx::Postgres(c) = self {
            let sql = if exclusive {
                "SELECT pg_advisory_xact_lock(hashtext($1))::text"
            } else {
                "SELECT pg_advisory_xact_lock_shared(hashtext($1))::text"
            };
            sqlx::query(sql).bind(name).execute(&mut **c).await?;
        }
        Ok(())
    }

    /// `" FOR UPDATE"` on PostgreSQL; nothing on SQLite, whose write
    /// transaction already holds the only write lock.
    pub fn for_update(&self) -> &'static str {
        match self {
            Tx::Postgres(_) => " FOR UPDATE",
            Tx::Sqlite(_) => "",
        }
    }

    /// `" FOR UPDATE SKIP LOCKED"` on PostgreSQL (so several instances share
    /// work without waiting on each other); nothing on SQLite.
    pub fn for_update_skip_locked(&self) -> &'static str {
        match self {
            Tx::Postgres(_) => " FOR UPDATE SKIP LOCKED",
            Tx::Sqlite(_) => "",
        }
    }

    pub async fn commit(self) -> sqlx::Result<()> {
        match self {
            Tx::Postgres(tx) => tx.commit().await,
            Tx::Sqlite(tx) => tx.commit().await,
        }
    }
}

/// Runs `$body` with `$conn` bound to the transaction's connection, whichever
/// backend it is: `on_tx!(tx, c => sqlx::query(SQL).bind(x).fetch_one(&mut **c).await)`.
/// The body is compiled once per backend, so the same SQL text serves both;
/// both arms must yield one type (map `execute` results to `rows_affected()`).
#[macro_export]
macro_rules! on_tx {
    ($tx:expr, $conn:ident => $body:expr) => {
        match $tx {
            $crate::db::Tx::Postgres($conn) => $body,
            $crate::db::Tx::Sqlite($conn) => $body,
        }
    };
}

/// Like [`on_tx!`] for reads outside a transaction: `$pool` is the pool.
#[macro_export]
macro_rules! on_db {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Postgres($pool) => $body,
            $crate::db::Db::Sqlite($pool) => $body,
        }
    };
}

/// Opens a pool on a SQLite file in WAL mode. The file is switched to WAL on one
/// connection before the pool opens any: switching takes an exclusive lock that
/// SQLite's busy timeout does not wait for, so connections that switch together
/// fail at random with "database is locked". WAL is a property of the file, so
/// the pool's connections (which leave the journal mode alone) inherit it.
pub(crate) async fn sqlite_wal_pool(
    options: SqliteConnectOptions,
    pool: SqlitePoolOptions,
) -> sqlx::Result<SqlitePool> {
    // Another process may be opening the same file; retry its brief lock.
    let mut attempt = 0;
    loop {
        match switch_to_wal(&options).await {
            Ok(()) => break,
            Err(error) if attempt < 100 && is_busy(&error) => attempt += 1,
            Err(error) => return Err(error),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    pool.connect_with(options).await
}

async fn switch_to_wal(options: &SqliteConnectOptions) -> sqlx::Result<()> {
    use sqlx::{ConnectOptions, Connection};
    let mut connection = options
        .clone()
        .journal_mode(SqliteJournalMode::Wal)
        .connect()
        .await?;
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut connection)
        .await?;
    connection.close().await?;
    if mode.eq_ignore_ascii_case("wal") {
        Ok(())
    } else {
        Err(sqlx::Error::Protocol(format!(
            "SQLite kept journal mode {mode}; WAL is required"
        )))
    }
}

fn is_busy(error: &sqlx::Error) -> bool {
    // SQLITE_BUSY (5) and its extended codes (5 + n * 256).
    matches!(error, sqlx::Error::Database(db)
        if db.code().and_then(|code| code.parse::<i32>().ok()).is_some_and(|code| code & 0xff == 5))
}

fn platform_migrator(base: &Migrator) -> Migrator {
    let mut migrator = Migrator::with_migrations(base.migrations.to_vec());
    migrator.dangerous_set_table_name(PLATFORM_MIGRATIONS_TABLE);
    migrator
}
