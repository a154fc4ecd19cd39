//! The indicators service's SQL, written once for PostgreSQL and SQLite.

use chrono::{DateTime, NaiveDate, Utc};
use futures::TryStreamExt;
use throughcare_platform::db::{Db, Tx};
use throughcare_platform::{on_db, on_tx};

/// Rows per multi-row INSERT (well under both backends' parameter limits).
const BATCH: usize = 400;

/// Adds or replaces one person's stored state.
pub async fn save_person(
    tx: &mut Tx,
    person_key: &str,
    state: &[u8],
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    const SQL: &str = "INSERT INTO indicator_people (person_key, state, updated_at) VALUES ($1, $2, $3)
                       ON CONFLICT (person_key) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at";
    on_tx!(tx, c => sqlx::query(SQL).bind(person_key).bind(state).bind(now)
        .execute(&mut **c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Records that `merged` name the person keyed `survivor` from now on,
/// keeping links path-compressed (links that named a merged key name the
/// survivor now).
pub async fn link_people(
    tx: &mut Tx,
    merged: &[Box<str>],
    survivor: &str,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    for key in merged {
        on_tx!(tx, c => sqlx::query(
            "UPDATE indicator_person_links SET surviving_key = $2 WHERE surviving_key = $1")
            .bind(&**key).bind(survivor).execute(&mut **c).await.map(|r| r.rows_affected()))?;
        on_tx!(tx, c => sqlx::query(
            "INSERT INTO indicator_person_links (merged_key, surviving_key, linked_at) VALUES ($1, $2, $3)
             ON CONFLICT (merged_key) DO UPDATE SET surviving_key = excluded.surviving_key")
            .bind(&**key).bind(survivor).bind(now).execute(&mut **c).await.map(|r| r.rows_affected()))?;
    }
    Ok(())
}

/// Forgets a person whose observations joined another's.
pub async fn delete_person(tx: &mut Tx, person_key: &str) -> sqlx::Result<()> {
    on_tx!(tx, c => sqlx::query("DELETE FROM indicator_people WHERE person_key = $1")
        .bind(person_key).execute(&mut **c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Every stored link: merged key, surviving key.
pub async fn load_links(db: &Db) -> sqlx::Result<Vec<(String, String)>> {
    on_db!(db, p => sqlx::query_as("SELECT merged_key, surviving_key FROM indicator_person_links")
        .fetch_all(p).await)
}

/// Streams every stored person to `each`.
pub async fn load_people(
    db: &Db,
    mut each: impl FnMut(String, Vec<u8>) + Send,
) -> sqlx::Result<()> {
    const SQL: &str = "SELECT person_key, state FROM indicator_people";
    on_db!(db, p => {
        let mut rows = sqlx::query_as::<_, (String, Vec<u8>)>(SQL).fetch(p);
        while let Some((key, state)) = rows.try_next().await? {
            each(key, state);
        }
    });
    Ok(())
}

/// Replaces every stored person and link (a rebuild from the log), in one
/// transaction.
pub async fn replace_people(
    db: &Db,
    people: &[(String, Vec<u8>)],
    links: &[(String, String)],
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    let mut tx = db.begin().await?;
    on_tx!(&mut tx, c => sqlx::query("DELETE FROM indicator_people")
        .execute(&mut **c).await.map(|r| r.rows_affected()))?;
    on_tx!(&mut tx, c => sqlx::query("DELETE FROM indicator_person_links")
        .execute(&mut **c).await.map(|r| r.rows_affected()))?;
    for (merged, survivor) in links {
        on_tx!(&mut tx, c => sqlx::query(
            "INSERT INTO indicator_person_links (merged_key, surviving_key, linked_at) VALUES ($1, $2, $3)")
            .bind(merged).bind(survivor).bind(now).execute(&mut **c).await.map(|r| r.rows_affected()))?;
    }
    for chunk in people.chunks(BATCH) {
        let sql = values_sql(
            "INSERT INTO indicator_people (person_key, state, updated_at) VALUES ",
            chunk.len(),
            3,
        );
        on_tx!(&mut tx, c => {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()));
            for (key, state) in chunk {
                query = query.bind(key).bind(state).bind(now);
            }
            query.execute(&mut **c).await.map(|r| r.rows_affected())
        })?;
    }
    tx.commit().await
}

/// `prefix` then `rows` groups of `columns` numbered placeholders.
fn values_sql(prefix: &str, rows: usize, columns: usize) -> String {
    let mut sql = String::from(prefix);
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", row * columns + column + 1));
        }
        sql.push(')');
    }
    sql
}

/// A publication.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SnapshotRow {
    pub sequence: i64,
    pub snapshot_id: String,
    pub published_at: DateTime<Utc>,
    pub through_month: i32,
    /// Period ids, comma-separated.
    pub periods: String,
    /// Of those, the ones it revises.
    pub revised: String,
}

impl SnapshotRow {
    pub fn period_ids(&self) -> Vec<u32> {
        ids(&self.periods)
    }

    pub fn revised_ids(&self) -> Vec<u32> {
        ids(&self.revised)
    }
}

fn ids(list: &str) -> Vec<u32> {
    list.split(',').filter_map(|p| p.parse().ok()).collect()
}

const SNAPSHOT_COLUMNS: &str =
    "sequence, snapshot_id, published_at, through_month, periods, revised";

pub async fn latest_snapshot(db: &Db) -> sqlx::Result<Option<SnapshotRow>> {
    let sql = format!(
        "SELECT {SNAPSHOT_COLUMNS} FROM indicator_snapshots ORDER BY sequence DESC LIMIT 1"
    );
    on_db!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).fetch_optional(p).await)
}

/// Every snapshot, oldest first (one a month, and one per revision).
pub async fn snapshots(db: &Db) -> sqlx::Result<Vec<SnapshotRow>> {
    let sql = format!("SELECT {SNAPSHOT_COLUMNS} FROM indicator_snapshots ORDER BY sequence");
    on_db!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).fetch_all(p).await)
}

/// Snapshots after `sequence`, oldest first.
pub async fn snapshots_after(db: &Db, sequence: i64, limit: i64) -> sqlx::Result<Vec<SnapshotRow>> {
    let sql = format!(
        "SELECT {SNAPSHOT_COLUMNS} FROM indicator_snapshots WHERE sequence > $1 ORDER BY sequence LIMIT $2"
    );
    on_db!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(sequence).bind(limit).fetch_all(p).await)
}

pub async fn insert_snapshot(tx: &mut Tx, row: &SnapshotRow) -> sqlx::Result<()> {
    let sql = format!(
        "INSERT INTO indicator_snapshots ({SNAPSHOT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
    );
    on_tx!(tx, c => sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(row.sequence).bind(&row.snapshot_id).bind(row.published_at)
        .bind(row.through_month).bind(&row.periods).bind(&row.revised)
        .execute(&mut **c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// A published cell.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct CellRow {
    pub cell_id: i64,
    pub sequence: i64,
    pub indicator_id: String,
    pub area_type: i16,
    pub area_code: String,
    pub parent_code: Option<String>,
    pub period: i32,
    pub stratum: i16,
    pub numerator: i64,
    pub numerator_suppressed: bool,
    pub denominator: i64,
    pub denominator_suppressed: bool,
    pub value: Option<f64>,
    /// 0 for a period's first publication, then 1, 2... for its revisions.
    pub revision: i32,
}

const CELL_COLUMNS: &str = "cell_id, sequence, indicator_id, area_type, area_code, parent_code, period, stratum, \
     numerator, numerator_suppressed, denominator, denominator_suppressed, value, revision";

/// What the next revision's audit must know of a published cell (never
/// shown): its true counts when published and the attacker's intervals.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AuditRow {
    pub indicator_id: String,
    pub area_type: i16,
    pub area_code: String,
    pub period: i32,
    pub stratum: i16,
    pub true_denominator: i64,
    pub true_numerator: i64,
    pub known_den_lo: i64,
    pub known_den_hi: i64,
    pub known_num_lo: i64,
    pub known_num_hi: i64,
}

/// Adds a publication's cells (their `cell_id` is assigned here, in order),
/// each with its audit (only its truth and intervals are taken from it).
pub async fn insert_cells(tx: &mut Tx, cells: &[(CellRow, AuditRow)]) -> sqlx::Result<()> {
    const COLUMNS: usize = 19;
    for chunk in cells.chunks(BATCH / 2) {
        let sql = values_sql(
            "INSERT INTO indicator_cells (sequence, indicator_id, area_type, area_code, parent_code, \
             period, stratum, numerator, numerator_suppressed, denominator, denominator_suppressed, value, \
             revision, true_denominator, true_numerator, known_den_lo, known_den_hi, known_num_lo, known_num_hi) VALUES ",
            chunk.len(),
            COLUMNS,
        );
        on_tx!(tx, c => {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()));
            for (cell, audit) in chunk {
                query = query
                    .bind(cell.sequence)
                    .bind(&cell.indicator_id)
                    .bind(cell.area_type)
                    .bind(&cell.area_code)
                    .bind(&cell.parent_code)
                    .bind(cell.period)
                    .bind(cell.stratum)
                    .bind(cell.numerator)
                    .bind(cell.numerator_suppressed)
                    .bind(cell.denominator)
                    .bind(cell.denominator_suppressed)
                    .bind(cell.value)
                    .bind(cell.revision)
                    .bind(audit.true_denominator)
                    .bind(audit.true_numerator)
                    .bind(audit.known_den_lo)
                    .bind(audit.known_den_hi)
                    .bind(audit.known_num_lo)
                    .bind(audit.known_num_hi);
            }
            query.execute(&mut **c).await.map(|r| r.rows_affected())
        })?;
    }
    Ok(())
}

/// Which published cells to read.
#[derive(Debug, Clone, Default)]
pub struct CellFilter {
    pub indicator_ids: Vec<String>,
    /// `None`: every area. Otherwise these areas (type, code)...
    pub areas: Option<Vec<(i16, String)>>,
    /// ...and the delivery units of these regions.
    pub regions: Vec<String>,
    pub periods: Vec<i32>,
    pub strata: Vec<i16>,
    /// Only this snapshot's cells, as it published them; otherwise only the
    /// current cells (not superseded by a revision).
    pub sequence: Option<i64>,
    /// Cells after this id, in id order.
    pub after: i64,
    pub limit: i64,
}

enum Param {
    Text(String),
    Int(i64),
}

/// The numbered parameters of a statement being written.
#[derive(Default)]
struct Params(Vec<Param>);

impl Params {
    /// A placeholder for `param`.
    fn param(&mut self, param: Param) -> String {
        self.0.push(param);
        format!("${}", self.0.len())
    }

    /// Placeholders for `values`, comma-separated.
    fn list(&mut self, values: impl IntoIterator<Item = Param>) -> String {
        values
            .into_iter()
            .map(|v| self.param(v))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Published cells matching `filter`, in id order.
pub async fn query_cells(db: &Db, filter: &CellFilter) -> sqlx::Result<Vec<CellRow>> {
    let mut sql = Params::default();
    let after = sql.param(Param::Int(filter.after));
    let mut text = format!("SELECT {CELL_COLUMNS} FROM indicator_cells WHERE cell_id > {after}");
    if !filter.indicator_ids.is_empty() {
        let ids = sql.list(filter.indicator_ids.iter().cloned().map(Param::Text));
        text.push_str(&format!(" AND indicator_id IN ({ids})"));
    }
    if !filter.periods.is_empty() {
        let periods = sql.list(filter.periods.iter().map(|&p| Param::Int(p.into())));
        text.push_str(&format!(" AND period IN ({periods})"));
    }
    if !filter.strata.is_empty() {
        let strata = sql.list(filter.strata.iter().map(|&s| Param::Int(s.into())));
        text.push_str(&format!(" AND stratum IN ({strata})"));
    }
    match filter.sequence {
        Some(sequence) => {
            let sequence = sql.param(Param::Int(sequence));
            text.push_str(&format!(" AND sequence = {sequence}"));
        }
        None => text.push_str(" AND superseded_by IS NULL"),
    }
    if let Some(areas) = &filter.areas {
        let mut any: Vec<String> = areas
            .iter()
            .map(|(t, c)| {
                let t = sql.param(Param::Int((*t).into()));
                let c = sql.param(Param::Text(c.clone()));
                format!("(area_type = {t} AND area_code = {c})")
            })
            .collect();
        if !filter.regions.is_empty() {
            let regions = sql.list(filter.regions.iter().cloned().map(Param::Text));
            any.push(format!("parent_code IN ({regions})"));
        }
        if any.is_empty() {
            return Ok(Vec::new());
        }
        text.push_str(&format!(" AND ({})", any.join(" OR ")));
    }
    let limit = sql.param(Param::Int(filter.limit));
    text.push_str(&format!(" ORDER BY cell_id LIMIT {limit}"));
    on_db!(db, p => {
        let mut query = sqlx::query_as::<_, CellRow>(sqlx::AssertSqlSafe(text.as_str()));
        for param in &sql.0 {
            query = match param {
                Param::Text(s) => query.bind(s.as_str()),
                Param::Int(i) => query.bind(*i),
            };
        }
        query.fetch_all(p).await
    })
}

/// Every published cell of these periods (frozen cells the next publication
/// must reason about).
pub async fn cells_of_periods(db: &Db, periods: &[i32]) -> sqlx::Result<Vec<CellRow>> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = query_cells(
            db,
            &CellFilter {
                periods: periods.to_vec(),
                after,
                limit: 10_000,
                ..CellFilter::default()
            },
        )
        .await?;
        let Some(last) = page.last() else {
            return Ok(out);
        };
        after = last.cell_id;
        out.extend(page);
    }
}

/// The audits of the current cells of these periods.
pub async fn audits_of_periods(db: &Db, periods: &[i32]) -> sqlx::Result<Vec<AuditRow>> {
    if periods.is_empty() {
        return Ok(Vec::new());
    }
    let list = (1..=periods.len())
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT indicator_id, area_type, area_code, period, stratum, true_denominator, true_numerator, \
         known_den_lo, known_den_hi, known_num_lo, known_num_hi FROM indicator_cells \
         WHERE superseded_by IS NULL AND period IN ({list})"
    );
    on_db!(db, p => {
        let mut query = sqlx::query_as::<_, AuditRow>(sqlx::AssertSqlSafe(sql.as_str()));
        for &period in periods {
            query = query.bind(period);
        }
        query.fetch_all(p).await
    })
}

/// Marks the current cells of these periods superseded by snapshot `sequence`.
pub async fn supersede(tx: &mut Tx, periods: &[i32], sequence: i64) -> sqlx::Result<()> {
    if periods.is_empty() {
        return Ok(());
    }
    let list = (2..periods.len() + 2)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "UPDATE indicator_cells SET superseded_by = $1 WHERE superseded_by IS NULL AND period IN ({list})"
    );
    on_tx!(tx, c => {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).bind(sequence);
        for &period in periods {
            query = query.bind(period);
        }
        query.execute(&mut **c).await.map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// The secret named `name`, made from `fresh` by whichever instance asks first.
pub async fn secret(db: &Db, name: &str, fresh: &str) -> sqlx::Result<String> {
    const INSERT: &str =
        "INSERT INTO indicator_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING";
    const SELECT: &str = "SELECT value FROM indicator_secrets WHERE name = $1";
    on_db!(db, p => sqlx::query(INSERT).bind(name).bind(fresh).execute(p).await.map(|r| r.rows_affected()))?;
    let (value,): (String,) =
        on_db!(db, p => sqlx::query_as(SELECT).bind(name).fetch_one(p).await)?;
    Ok(value)
}

/// Every area anything was published for.
pub async fn published_areas(db: &Db) -> sqlx::Result<Vec<(i16, String)>> {
    const SQL: &str = "SELECT DISTINCT area_type, area_code FROM indicator_cells";
    on_db!(db, p => sqlx::query_as(SQL).fetch_all(p).await)
}

/// A structure indicator as recorded.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StructureRow {
    pub organisation: String,
    pub indicator_id: String,
    pub present: bool,
    pub assessed_on: NaiveDate,
    pub recorded_at: DateTime<Utc>,
}

pub async fn insert_structure(
    tx: &mut Tx,
    record_id: &str,
    row: &StructureRow,
) -> sqlx::Result<()> {
    const SQL: &str = "INSERT INTO structure_indicator_records
                           (record_id, organisation, indicator_id, present, assessed_on, recorded_at)
                       VALUES ($1, $2, $3, $4, $5, $6)";
    on_tx!(tx, c => sqlx::query(SQL)
        .bind(record_id).bind(&row.organisation).bind(&row.indicator_id).bind(row.present)
        .bind(row.assessed_on).bind(row.recorded_at)
        .execute(&mut **c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// The current (latest assessed, then latest recorded) structure indicators
/// of every organisation.
pub async fn current_structures(db: &Db) -> sqlx::Result<Vec<StructureRow>> {
    const SQL: &str = "SELECT organisation, indicator_id, present, assessed_on, recorded_at
                       FROM structure_indicator_records r
                       WHERE NOT EXISTS (
                           SELECT 1 FROM structure_indicator_records n
                           WHERE n.organisation = r.organisation AND n.indicator_id = r.indicator_id
                             AND (n.assessed_on > r.assessed_on
                                  OR (n.assessed_on = r.assessed_on AND n.recorded_at > r.recorded_at)))
                       ORDER BY organisation, indicator_id";
    on_db!(db, p => sqlx::query_as(SQL).fetch_all(p).await)
}

#[cfg(test)]
mod tests {
    #[test]
    fn values_are_numbered_row_by_row() {
        assert_eq!(
            super::values_sql("INSERT INTO t (a, b) VALUES ", 2, 2),
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4)"
        );
    }
}
